//! Simulated participants against a real Janus 1.1 VideoRoom: three endpoints join one room
//! through the Janus adapter (each a publishing and a receiving participant, both ICE
//! controlling against ICE-lite Janus), connect ICE and DTLS, send SRTP audio (two of them
//! simulcast VP8 as well), check what each receives from the others against what was sent
//! (including the simulcast layer the view asked for), and leave.
//!
//! Janus needs a network namespace (libnice does no ICE over loopback), so the test runs
//! `loadtest/scripts/janus run -- <this test binary> --exact <this test>`: the script creates
//! the namespace and its veth pair, starts Janus inside, and runs the test again inside with
//! `JANUS_URL` set, which is when the participants run. Skipped (with a message) unless root
//! with `janus` installed; `JANUS_TEST_INSTALL=1` installs it with apt-get first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use relais_loadtest::participant::driver::bind;
use relais_loadtest::participant::{
    Application, Driver, Outbox, Participant, ParticipantConfig, ParticipantEvent, ParticipantId,
    ReceivedRtp, Verification,
};
use relais_loadtest::target::janus::sdp::MediaKind;
use relais_loadtest::target::janus::{
    video_source_name, JanusConfig, JanusTarget, AUDIO_LEVEL_ID, OPUS_PT, SUBSCRIBER_READY,
    TRANSPORT_CC_ID, VP8_PT,
};
use relais_loadtest::target::{JoinRequest, Target, TargetEvent, VideoSource, View, ViewChannel};
use relais_transport::dtls_srtp::NodeCertificate;
use relais_transport::ice::IceConfig;

const TEST_NAME: &str = "three_participants_publish_subscribe_and_leave";
const ENDPOINTS: [&str; 3] = ["aaaa0001", "bbbb0002", "cccc0003"];
const AUDIO_SSRCS: [u32; 3] = [1001, 2002, 3003];
/// Simulcast SSRCs (lowest first) of the two cameras.
const VIDEO_SSRCS: [[u32; 3]; 2] = [[1101, 1102, 1103], [2101, 2102, 2103]];
const RTX_SSRCS: [[u32; 3]; 2] = [[1201, 1202, 1203], [2201, 2202, 2203]];
const AUDIO_PACKETS: u16 = 75;
const VIDEO_FRAMES: u16 = 30;
/// The VP8 keyframe header every test frame carries after its 4-byte descriptor.
const KEYFRAME: [u8; 10] = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00];

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

#[test]
fn three_participants_publish_subscribe_and_leave() {
    if let Ok(url) = std::env::var("JANUS_URL") {
        inside(&url);
        return;
    }
    if !is_root() {
        eprintln!("janus test skipped: network namespaces need root");
        return;
    }
    if !in_path("janus") {
        if std::env::var("JANUS_TEST_INSTALL").as_deref() != Ok("1") {
            eprintln!(
                "janus test skipped: janus is not installed (apt-get install janus, or set \
                 JANUS_TEST_INSTALL=1)"
            );
            return;
        }
        let status = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "janus"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .unwrap();
        assert!(status.success(), "apt-get install janus failed");
    }
    // Containers may refuse namespaces even to root: that is a skip, not a failure.
    let probe = format!("relais-janus-probe-{}", std::process::id());
    let created = Command::new("ip")
        .args(["netns", "add", &probe])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !created {
        eprintln!("janus test skipped: cannot create a network namespace here");
        return;
    }
    let _ = Command::new("ip").args(["netns", "del", &probe]).status();
    let script: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/janus");
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(&script)
        .arg("run")
        .arg("--")
        .arg(exe)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(
            "JANUS_NETNS",
            format!("relais-janus-test-{}", std::process::id()),
        )
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(150);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > until {
            // SIGTERM lets the script's trap stop Janus and remove the namespace.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
            panic!("the Janus test did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "the test inside the namespace failed: {status}"
    );
}

/// The payload of `sender`'s audio packet number `n`: who, which, then a pattern.
fn audio_payload(sender: u8, n: u16) -> Vec<u8> {
    let mut payload = vec![sender];
    payload.extend_from_slice(&n.to_be_bytes());
    payload.extend((0..37u16).map(|k| (n.wrapping_add(k) as u8) ^ sender.wrapping_mul(31)));
    payload
}

/// An Opus packet with the audio level (loud) and a transport-wide sequence number slot.
fn audio_packet(sender: u8, n: u16) -> Vec<u8> {
    let mut packet = vec![0x90, OPUS_PT];
    packet.extend_from_slice(&n.to_be_bytes());
    packet.extend_from_slice(&(u32::from(n) * 960).to_be_bytes());
    packet.extend_from_slice(&AUDIO_SSRCS[usize::from(sender)].to_be_bytes());
    packet.extend_from_slice(&[0xBE, 0xDE, 0x00, 0x02]);
    packet.extend_from_slice(&[AUDIO_LEVEL_ID << 4, 0x80 | 10]);
    packet.extend_from_slice(&[(TRANSPORT_CC_ID << 4) | 1, 0, 0, 0, 0, 0]);
    packet.extend_from_slice(&audio_payload(sender, n));
    packet
}

/// A one-packet VP8 keyframe of `sender`'s simulcast `layer`; the payload after the
/// keyframe header says who and which layer.
fn video_packet(sender: u8, layer: u8, n: u16) -> Vec<u8> {
    let mut packet = vec![0x90, 0x80 | VP8_PT];
    packet.extend_from_slice(&n.to_be_bytes());
    packet.extend_from_slice(&(u32::from(n) * 3000).to_be_bytes());
    let ssrc = VIDEO_SSRCS[usize::from(sender)][usize::from(layer)];
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend_from_slice(&[0xBE, 0xDE, 0x00, 0x01]);
    packet.extend_from_slice(&[(TRANSPORT_CC_ID << 4) | 1, 0, 0, 0]);
    // VP8 descriptor: X, S, partition 0; I with a 15-bit picture id.
    packet.extend_from_slice(&[0x90, 0x80, 0x80 | (n >> 8) as u8, n as u8]);
    packet.extend_from_slice(&KEYFRAME);
    packet.extend_from_slice(&[sender, layer]);
    packet.extend((0..400u16).map(|k| (k as u8) ^ (n as u8)));
    packet
}

#[derive(Default)]
struct TestApp {
    /// Sending participants: index.
    senders: HashMap<ParticipantId, u8>,
    /// Receiving participants: index.
    receivers: HashMap<ParticipantId, u8>,
    connected: HashSet<ParticipantId>,
    sending: bool,
    /// Per sender: packets sent and when the next is due.
    audio: HashMap<ParticipantId, (u16, Instant)>,
    video: HashMap<ParticipantId, (u16, Instant)>,
    /// What each receiver's SSRCs carry: (receiver, SSRC) -> (sender, kind).
    streams: HashMap<(u8, u32), (u8, MediaKind)>,
    /// Packets by (receiver, sender, kind).
    received: HashMap<(u8, u8, MediaKind), u64>,
    /// Verified packets whose payload matched what was sent, same key.
    verified: HashMap<(u8, u8, MediaKind), u64>,
    /// The simulcast layer of the last verified video packet, by (receiver, sender).
    last_layer: HashMap<(u8, u8), u8>,
    unknown: HashMap<(u8, u32), u64>,
    mismatched: Vec<String>,
    failures: Vec<String>,
}

impl Application for TestApp {
    fn on_rtp(
        &mut self,
        participant: ParticipantId,
        _now: Instant,
        packet: &ReceivedRtp<'_>,
        _out: &mut Outbox<'_>,
    ) {
        let Some(&receiver) = self.receivers.get(&participant) else {
            return;
        };
        let Some(&(sender, kind)) = self.streams.get(&(receiver, packet.ssrc)) else {
            *self.unknown.entry((receiver, packet.ssrc)).or_default() += 1;
            return;
        };
        *self.received.entry((receiver, sender, kind)).or_default() += 1;
        if !matches!(packet.verification, Verification::Verified(_)) {
            return;
        }
        let payload = packet.verified_payload().unwrap();
        let matches = match kind {
            MediaKind::Audio if payload.len() >= 3 => {
                let n = u16::from_be_bytes([payload[1], payload[2]]);
                payload == audio_payload(sender, n).as_slice()
            }
            // Janus rewrites the VP8 picture id; the rest is the sender's.
            MediaKind::Video if payload.len() == 4 + 10 + 2 + 400 => {
                let layer = payload[15];
                self.last_layer.insert((receiver, sender), layer);
                payload[4..14] == KEYFRAME && payload[14] == sender && layer < 3
            }
            _ => false,
        };
        if matches {
            *self.verified.entry((receiver, sender, kind)).or_default() += 1;
        } else if self.mismatched.len() < 10 {
            self.mismatched.push(format!(
                "receiver {receiver} sender {sender} {kind:?}: {payload:02x?}"
            ));
        }
    }

    fn on_event(
        &mut self,
        participant: ParticipantId,
        now: Instant,
        event: ParticipantEvent,
        _out: &mut Outbox<'_>,
    ) {
        match event {
            ParticipantEvent::Connected { .. } => {
                self.connected.insert(participant);
                if let Some(&index) = self.senders.get(&participant) {
                    self.audio.insert(participant, (0, now));
                    if index < 2 {
                        self.video.insert(participant, (0, now));
                    }
                }
            }
            ParticipantEvent::Failed(error) => self.failures.push(error.to_string()),
            _ => {}
        }
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        if !self.sending {
            return None;
        }
        let audio = self
            .audio
            .values()
            .filter(|(sent, _)| *sent < AUDIO_PACKETS)
            .map(|(_, next)| *next);
        let video = self
            .video
            .values()
            .filter(|(sent, _)| *sent < VIDEO_FRAMES)
            .map(|(_, next)| *next);
        audio.chain(video).min()
    }

    fn on_timeout(&mut self, now: Instant, out: &mut Outbox<'_>) {
        if !self.sending {
            return;
        }
        for (participant, (sent, next)) in &mut self.audio {
            while *sent < AUDIO_PACKETS && *next <= now {
                *sent += 1;
                let sender = self.senders[participant];
                let _ = out.send_rtp(*participant, &audio_packet(sender, *sent));
                *next += Duration::from_millis(20);
            }
        }
        for (participant, (sent, next)) in &mut self.video {
            while *sent < VIDEO_FRAMES && *next <= now {
                *sent += 1;
                let sender = self.senders[participant];
                for layer in 0..3 {
                    let _ = out.send_rtp(*participant, &video_packet(sender, layer, *sent));
                }
                *next += Duration::from_millis(50);
            }
        }
    }
}

async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < until, "{what}: not in time");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn inside(url: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&runtime, async {
        tokio::time::timeout(Duration::from_secs(100), scenario(url)).await
    });
    assert!(result.is_ok(), "the scenario timed out");
}

async fn scenario(url: &str) {
    let client_ip: IpAddr = std::env::var("JANUS_CLIENT_IP")
        .unwrap_or_else(|_| "10.99.0.2".into())
        .parse()
        .unwrap();
    let mut config = JanusConfig::from_url(url, &mut rand::rng()).unwrap();
    config.timeout = Duration::from_secs(5);
    let target = Rc::new(JanusTarget::new(config));
    let driver = Driver::new(TestApp::default());
    let timer_loop = tokio::task::spawn_local({
        let driver = driver.clone();
        async move { driver.run().await }
    });
    let certificate = NodeCertificate::generate().unwrap();
    let events: Rc<RefCell<Vec<(usize, TargetEvent)>>> = Rc::default();
    // The first camera on stage (its highest layer), the rest thumbnails (lowest).
    let view = View {
        last_n: 25,
        on_stage_sources: vec![video_source_name(ENDPOINTS[0])],
        on_stage_max_height: 720,
        selected_sources: Vec::new(),
        default_max_height: 180,
    };
    let participant_config = |verify_one_in| ParticipantConfig {
        // Janus is ICE lite: the participants control.
        ice: IceConfig::controlling(),
        verify_one_in,
        transport_cc_id: Some(TRANSPORT_CC_ID),
        ..ParticipantConfig::default()
    };
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    let mut readers = Vec::new();
    for (index, endpoint) in ENDPOINTS.iter().enumerate() {
        let send_socket = bind(client_ip).await.unwrap();
        let receive_socket = bind(client_ip).await.unwrap();
        let sender = Participant::new(
            ParticipantConfig {
                rtcp_ssrc: AUDIO_SSRCS[index],
                ..participant_config(4)
            },
            send_socket.local_addr().unwrap(),
            certificate.clone(),
            &mut rand::rng(),
            Instant::now(),
        )
        .unwrap();
        let receiver = Participant::new(
            ParticipantConfig {
                rtcp_ssrc: AUDIO_SSRCS[index] + 1,
                transport_cc_id: None,
                ..participant_config(1)
            },
            receive_socket.local_addr().unwrap(),
            certificate.clone(),
            &mut rand::rng(),
            Instant::now(),
        )
        .unwrap();
        target.set_receiver(endpoint, receiver.local_transport());
        let request = JoinRequest {
            endpoint_id: (*endpoint).to_owned(),
            transport: sender.local_transport(),
            audio_ssrc: Some(AUDIO_SSRCS[index]),
            video: (index < 2).then(|| VideoSource {
                ssrcs: VIDEO_SSRCS[index].to_vec(),
                rtx_ssrcs: RTX_SSRCS[index].to_vec(),
                codec: relais_loadtest::media::VideoCodec::Vp8,
            }),
        };
        let joined = target.join(&request).await.unwrap();
        assert_eq!(joined.endpoint_id, *endpoint);
        let extensions = target.negotiated_extensions(endpoint).unwrap();
        eprintln!(
            "{endpoint}: Janus accepted extensions {extensions:?}, candidates {:?}",
            joined.remote.candidates
        );
        let send_id = driver.add(sender, send_socket).unwrap();
        let receive_id = driver.add(receiver, receive_socket).unwrap();
        driver
            .with(|app, _| {
                app.senders.insert(send_id, index as u8);
                app.receivers.insert(receive_id, index as u8);
            })
            .unwrap();
        let remote = joined.remote.clone();
        driver
            .with_participant(send_id, |p| p.set_remote(Instant::now(), remote))
            .unwrap()
            .unwrap();
        let mut channel = target.open_channel(&joined).await.unwrap();
        channel.set_view(&view).await.unwrap();
        // One task per participant reads its channel: the subscription follows publishers
        // joining, and the receiving participant gets its transport when it exists.
        let events = Rc::clone(&events);
        let driver_for_reader = driver.clone();
        readers.push(tokio::task::spawn_local(async move {
            loop {
                let event = match channel.next_event().await {
                    Ok(Some(event)) => event,
                    Ok(None) => break,
                    // Recorded, checked before the endpoints leave (when `end` destroys a
                    // session under a channel, its last request fails).
                    Err(error) => {
                        events.borrow_mut().push((
                            index,
                            TargetEvent::Other {
                                class: "error".into(),
                                message: error.to_string().into(),
                            },
                        ));
                        break;
                    }
                };
                if matches!(&event, TargetEvent::Other { class, .. } if class == SUBSCRIBER_READY) {
                    let remote = channel.subscriber_remote().cloned().unwrap();
                    driver_for_reader
                        .with_participant(receive_id, |p| p.set_remote(Instant::now(), remote))
                        .unwrap()
                        .unwrap();
                }
                if matches!(event, TargetEvent::ForwardedSources(_)) {
                    let streams = channel.subscribed_streams().to_vec();
                    driver_for_reader
                        .with(|app, _| {
                            for stream in streams {
                                let Some(sender) =
                                    ENDPOINTS.iter().position(|e| *e == stream.endpoint_id)
                                else {
                                    continue;
                                };
                                if let Some(ssrc) = stream.ssrc {
                                    app.streams
                                        .insert((index as u8, ssrc), (sender as u8, stream.kind));
                                }
                            }
                        })
                        .unwrap();
                }
                events.borrow_mut().push((index, event));
            }
        }));
        senders.push(send_id);
        receivers.push(receive_id);
    }

    // Every publisher and every subscription connected (ICE: the participants control;
    // DTLS: as Janus's SDP set it).
    wait_until("ICE and DTLS", Duration::from_secs(20), || {
        driver
            .with(|app, out| {
                if !app.failures.is_empty() {
                    for id in senders.iter().chain(&receivers) {
                        let p = out.participant(*id).unwrap();
                        eprintln!("{:?}: {:?}", p.ice_state(), p.stats());
                    }
                }
                assert!(app.failures.is_empty(), "{:?}", app.failures);
                senders
                    .iter()
                    .chain(&receivers)
                    .all(|id| out.participant(*id).is_some_and(|p| p.is_connected()))
            })
            .unwrap_or(false)
    })
    .await;
    // Each receiver subscribed to both others' audio and to both cameras but its own.
    wait_until("subscriptions", Duration::from_secs(10), || {
        driver
            .with(|app, _| {
                (0..3u8).all(|r| {
                    let count = |kind| {
                        app.streams
                            .iter()
                            .filter(|((receiver, _), (_, k))| *receiver == r && *k == kind)
                            .count()
                    };
                    count(MediaKind::Audio) == 2
                        && count(MediaKind::Video) == if r < 2 { 1 } else { 2 }
                })
            })
            .unwrap_or(false)
    })
    .await;
    // Janus starts relaying once the subscription's streams are ready.
    tokio::time::sleep(Duration::from_millis(500)).await;
    driver.with(|app, _| app.sending = true).unwrap();
    wait_until("media sent", Duration::from_secs(10), || {
        driver
            .with(|app, _| {
                app.audio.values().all(|(sent, _)| *sent == AUDIO_PACKETS)
                    && app.video.values().all(|(sent, _)| *sent == VIDEO_FRAMES)
            })
            .unwrap_or(false)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;

    driver
        .with(|app, out| {
            assert!(app.failures.is_empty(), "{:?}", app.failures);
            eprintln!("received: {:?}", app.received);
            eprintln!("verified: {:?}", app.verified);
            eprintln!(
                "layers: {:?}, unknown SSRCs: {:?}",
                app.last_layer, app.unknown
            );
            assert!(app.mismatched.is_empty(), "{:?}", app.mismatched);
            for receiver in 0..3u8 {
                for sender in (0..3u8).filter(|s| *s != receiver) {
                    let key = (receiver, sender, MediaKind::Audio);
                    let received = app.received.get(&key).copied().unwrap_or(0);
                    assert!(
                        received >= u64::from(AUDIO_PACKETS) - 10,
                        "receiver {receiver} got {received} audio packets of sender {sender}"
                    );
                    let verified = app.verified.get(&key).copied().unwrap_or(0);
                    assert!(
                        verified >= received - 1,
                        "receiver {receiver}: sender {sender}"
                    );
                    if sender < 2 {
                        let key = (receiver, sender, MediaKind::Video);
                        let verified = app.verified.get(&key).copied().unwrap_or(0);
                        assert!(
                            verified >= u64::from(VIDEO_FRAMES) / 2,
                            "receiver {receiver} verified {verified} frames of camera {sender}"
                        );
                        // On stage: the highest layer; a thumbnail: the lowest.
                        let layer = app.last_layer.get(&(receiver, sender)).copied();
                        assert_eq!(layer, Some(if sender == 0 { 2 } else { 0 }));
                    }
                }
            }
            for id in senders.iter().chain(&receivers) {
                let stats = *out.participant(*id).unwrap().stats();
                assert_eq!(stats.srtp_verify_failed, 0, "{stats:?}");
                assert_eq!(stats.rtp_send_refused, 0, "{stats:?}");
                assert_eq!(stats.rtcp_failed, 0, "{stats:?}");
            }
        })
        .unwrap();

    assert!(
        !events
            .borrow()
            .iter()
            .any(|(_, e)| matches!(e, TargetEvent::Other { class, .. } if class == "error")),
        "{:?}",
        events.borrow()
    );
    // Leaving: the left endpoint's channel ends, the others see it go.
    target.leave(ENDPOINTS[2]).await.unwrap();
    let mut gone = driver.remove(senders[2]).unwrap();
    gone.close();
    let mut gone = driver.remove(receivers[2]).unwrap();
    gone.close();
    tokio::time::timeout(Duration::from_secs(5), readers.pop().unwrap())
        .await
        .expect("the left endpoint's channel stays open")
        .unwrap();
    wait_until("the others see the leave", Duration::from_secs(5), || {
        let events = events.borrow();
        (0..2).all(|index| {
            events.iter().any(|(i, e)| {
                *i == index
                    && *e
                        == TargetEvent::EndpointConnectivity {
                            endpoint: ENDPOINTS[2].to_owned(),
                            active: false,
                        }
            })
        })
    })
    .await;
    assert!(target.leave(ENDPOINTS[2]).await.is_err());
    target.end().await.unwrap();
    driver.shutdown();
    timer_loop.await.unwrap();
    for reader in readers {
        reader.abort();
    }
}
