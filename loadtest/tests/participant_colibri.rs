//! Simulated participants against a real relais node: three endpoints join one conference
//! through the Colibri2 adapter, connect ICE and DTLS, exchange SRTP audio (and one sends
//! VP8), check what they receive against what was sent, read the bridge channel, and
//! leave.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use relais_loadtest::participant::driver::bind;
use relais_loadtest::participant::{
    Application, Driver, Outbox, Participant, ParticipantConfig, ParticipantEvent, ParticipantId,
    ReceivedRtp, Verification,
};
use relais_loadtest::run::node::LocalNode;
use relais_loadtest::target::colibri::{
    video_source_name, ColibriConfig, ColibriTarget, AUDIO_LEVEL_ID, OPUS_PT, TRANSPORT_CC_ID,
    VP8_PT,
};
use relais_loadtest::target::{
    JoinRequest, Target, TargetError, TargetEvent, VideoSource, View, ViewChannel,
};
use relais_transport::dtls_srtp::NodeCertificate;

mod common;

const ENDPOINTS: [&str; 3] = ["aaaa0001", "bbbb0002", "cccc0003"];
const AUDIO_SSRCS: [u32; 3] = [1001, 2002, 3003];
const VIDEO_SSRCS: [u32; 3] = [1101, 1102, 1103];
const RTX_SSRCS: [u32; 3] = [1201, 1202, 1203];
const AUDIO_PACKETS: u16 = 50;
const VIDEO_FRAMES: u16 = 20;

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
    // One-byte extensions: audio level (V set, 10 dBov), transport-cc (filled in by the
    // participant), padding to a word.
    packet.extend_from_slice(&[0xBE, 0xDE, 0x00, 0x02]);
    packet.extend_from_slice(&[AUDIO_LEVEL_ID << 4, 0x80 | 10]);
    packet.extend_from_slice(&[(TRANSPORT_CC_ID << 4) | 1, 0, 0, 0, 0, 0]);
    packet.extend_from_slice(&audio_payload(sender, n));
    packet
}

/// A one-packet VP8 keyframe (320x180) on the lowest simulcast SSRC.
fn video_packet(n: u16) -> Vec<u8> {
    let mut packet = vec![0x90, 0x80 | VP8_PT];
    packet.extend_from_slice(&n.to_be_bytes());
    packet.extend_from_slice(&(u32::from(n) * 3000).to_be_bytes());
    packet.extend_from_slice(&VIDEO_SSRCS[0].to_be_bytes());
    packet.extend_from_slice(&[0xBE, 0xDE, 0x00, 0x01]);
    packet.extend_from_slice(&[(TRANSPORT_CC_ID << 4) | 1, 0, 0, 0]);
    // VP8 descriptor: X, S, partition 0; I with a 15-bit picture id.
    packet.extend_from_slice(&[0x90, 0x80, 0x80 | (n >> 8) as u8, n as u8]);
    // Keyframe tag (show_frame), start code, 320x180.
    packet.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00]);
    packet.extend((0..600u16).map(|k| (k as u8) ^ (n as u8)));
    packet
}

/// Sends the scripted audio and records what arrives.
#[derive(Default)]
struct TestApp {
    /// Participant index by driver id.
    index: HashMap<ParticipantId, u8>,
    connected: HashMap<ParticipantId, bool>,
    /// Audio packets sent so far and when the next is due, per participant.
    audio: HashMap<ParticipantId, (u16, Instant)>,
    sending: bool,
    /// Packets received, by (receiver index, SSRC).
    received: HashMap<(u8, u32), u64>,
    /// Verified packets whose payload matched what was sent, by (receiver index, SSRC).
    verified: HashMap<(u8, u32), u64>,
    /// Verified packets whose payload did not match.
    mismatched: u64,
    /// Verified packets of other streams (the node's probing), by (SSRC, payload type).
    other_streams: HashMap<(u32, u8), u64>,
    failures: Vec<String>,
    keyframe_requests: u64,
}

impl Application for TestApp {
    fn on_rtp(
        &mut self,
        participant: ParticipantId,
        _now: Instant,
        packet: &ReceivedRtp<'_>,
        _out: &mut Outbox<'_>,
    ) {
        let Some(&receiver) = self.index.get(&participant) else {
            return;
        };
        *self.received.entry((receiver, packet.ssrc)).or_default() += 1;
        if let Verification::Verified(_) = packet.verification {
            let payload = packet.verified_payload().unwrap();
            let sender = AUDIO_SSRCS.iter().position(|s| *s == packet.ssrc);
            let matches = match sender {
                Some(sender) if payload.len() >= 3 => {
                    let n = u16::from_be_bytes([payload[1], payload[2]]);
                    payload == audio_payload(sender as u8, n).as_slice()
                }
                // Video: the picture id is rewritten per receiver; the frame tag and the
                // rest are the sender's bytes.
                None if packet.ssrc == VIDEO_SSRCS[0] => {
                    payload.len() == 4 + 10 + 600
                        && payload[4..10] == [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a]
                }
                _ => {
                    *self
                        .other_streams
                        .entry((packet.ssrc, packet.payload_type))
                        .or_default() += 1;
                    return;
                }
            };
            if matches {
                *self.verified.entry((receiver, packet.ssrc)).or_default() += 1;
            } else {
                self.mismatched += 1;
            }
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
                self.connected.insert(participant, true);
                self.audio.insert(participant, (0, now));
            }
            ParticipantEvent::Failed(error) => self.failures.push(error.to_string()),
            ParticipantEvent::KeyframeRequest { .. } => self.keyframe_requests += 1,
            _ => {}
        }
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        if !self.sending {
            return None;
        }
        self.audio
            .values()
            .filter(|(sent, _)| *sent < AUDIO_PACKETS)
            .map(|(_, next)| *next)
            .min()
    }

    fn on_timeout(&mut self, now: Instant, out: &mut Outbox<'_>) {
        for (participant, (sent, next)) in &mut self.audio {
            while *sent < AUDIO_PACKETS && *next <= now {
                *sent += 1;
                let sender = self.index[participant];
                out.send_rtp(*participant, &audio_packet(sender, *sent))
                    .unwrap();
                *next += Duration::from_millis(20);
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

#[test]
fn three_participants_join_exchange_media_and_leave() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let log_dir = std::env::temp_dir().join(format!("relais-loadtest-pc-{}", std::process::id()));
    std::fs::create_dir_all(&log_dir).unwrap();
    let node = local
        .block_on(
            &runtime,
            LocalNode::start(
                &common::relais_binary(),
                &log_dir,
                &["--log-level".to_owned(), "debug".to_owned()],
            ),
        )
        .unwrap();
    let result = local.block_on(&runtime, async {
        tokio::time::timeout(Duration::from_secs(60), scenario(&node)).await
    });
    match result {
        Ok(()) => {}
        Err(_) => panic!(
            "the test timed out: {}",
            std::fs::read_to_string(node.log_path()).unwrap_or_default()
        ),
    }
    drop(node);
    let _ = std::fs::remove_dir_all(&log_dir);
}

async fn scenario(node: &LocalNode) {
    let _ = node.media;
    let mut config = ColibriConfig::new(node.private, &mut rand::rng());
    config.timeout = Duration::from_secs(5);
    let target = ColibriTarget::new(config);
    let driver = Driver::new(TestApp::default());
    let timer_loop = tokio::task::spawn_local({
        let driver = driver.clone();
        async move { driver.run().await }
    });
    let certificate = NodeCertificate::generate().unwrap();
    let events: Rc<RefCell<Vec<(usize, TargetEvent)>>> = Rc::default();
    let mut ids = Vec::new();
    let mut readers = Vec::new();
    let mut joined_all = Vec::new();
    let mut view_senders = Vec::new();
    // The scenario's view: the sender's camera on stage.
    let view = |last_n| View {
        last_n,
        on_stage_sources: vec![video_source_name(ENDPOINTS[0])],
        on_stage_max_height: 720,
        selected_sources: Vec::new(),
        default_max_height: 180,
    };
    for (index, endpoint) in ENDPOINTS.iter().enumerate() {
        let socket = bind("127.0.0.1".parse().unwrap()).await.unwrap();
        let participant = Participant::new(
            ParticipantConfig {
                verify_one_in: 4,
                transport_cc_id: Some(TRANSPORT_CC_ID),
                rtcp_ssrc: AUDIO_SSRCS[index],
                ..ParticipantConfig::default()
            },
            socket.local_addr().unwrap(),
            certificate.clone(),
            &mut rand::rng(),
            Instant::now(),
        )
        .unwrap();
        let request = JoinRequest {
            endpoint_id: (*endpoint).to_owned(),
            transport: participant.local_transport(),
            audio_ssrc: Some(AUDIO_SSRCS[index]),
            video: (index == 0).then(|| VideoSource {
                ssrcs: VIDEO_SSRCS.to_vec(),
                rtx_ssrcs: RTX_SSRCS.to_vec(),
                codec: relais_loadtest::media::VideoCodec::Vp8,
            }),
        };
        let joined = target.join(&request).await.unwrap();
        assert_eq!(joined.endpoint_id, *endpoint);
        assert!(joined.channel_url.is_some());
        let id = driver.add(participant, socket).unwrap();
        driver
            .with(|app, _| app.index.insert(id, index as u8))
            .unwrap();
        let remote = joined.remote.clone();
        driver
            .with_participant(id, |p| p.set_remote(Instant::now(), remote))
            .unwrap()
            .unwrap();
        // The bridge channel: nothing forwarded until everybody is connected (the node
        // announces forwarded sources when they change, so the change is seen), then the
        // scenario's view. One task reads events and sends the views it is given.
        let mut channel = target.open_channel(&joined).await.unwrap();
        channel.set_view(&view(0)).await.unwrap();
        let (views, mut next_view) = tokio::sync::mpsc::unbounded_channel::<View>();
        view_senders.push(views);
        let events = Rc::clone(&events);
        readers.push(tokio::task::spawn_local(async move {
            loop {
                tokio::select! {
                    view = next_view.recv() => {
                        let Some(view) = view else { break };
                        channel.set_view(&view).await.unwrap();
                    }
                    event = channel.next_event() => {
                        let Ok(Some(event)) = event else { break };
                        events.borrow_mut().push((index, event));
                    }
                }
            }
        }));
        ids.push(id);
        joined_all.push(joined);
    }

    // ICE (the node controls) and DTLS (the participants are clients).
    wait_until("ICE and DTLS", Duration::from_secs(15), || {
        driver
            .with(|app, out| {
                assert!(app.failures.is_empty(), "{:?}", app.failures);
                ids.iter()
                    .all(|id| out.participant(*id).is_some_and(|p| p.is_connected()))
            })
            .unwrap_or(false)
    })
    .await;

    for views in &view_senders {
        views.send(view(25)).unwrap();
    }
    // Audio from everybody (the application's timer), video frames from the first.
    driver.with(|app, _| app.sending = true).unwrap();
    for frame in 1..=VIDEO_FRAMES {
        driver
            .with(|_, out| out.send_rtp(ids[0], &video_packet(frame)).unwrap())
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_until("audio sent", Duration::from_secs(5), || {
        driver
            .with(|app, _| app.audio.values().all(|(sent, _)| *sent == AUDIO_PACKETS))
            .unwrap_or(false)
    })
    .await;
    // What is in flight, and a report interval for RTCP in both directions.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    driver
        .with(|app, out| {
            assert!(app.failures.is_empty(), "{:?}", app.failures);
            for receiver in 0..3u8 {
                for sender in 0..3u8 {
                    if sender == receiver {
                        continue;
                    }
                    let ssrc = AUDIO_SSRCS[usize::from(sender)];
                    let received = app.received.get(&(receiver, ssrc)).copied().unwrap_or(0);
                    assert!(
                        received >= u64::from(AUDIO_PACKETS) - 5,
                        "receiver {receiver} got {received} audio packets of sender {sender}"
                    );
                    let verified = app.verified.get(&(receiver, ssrc)).copied().unwrap_or(0);
                    assert!(
                        verified >= 5,
                        "receiver {receiver}: {verified} verified packets of sender {sender}"
                    );
                }
                assert_eq!(
                    app.received
                        .get(&(receiver, AUDIO_SSRCS[usize::from(receiver)])),
                    None,
                    "a participant's own audio came back"
                );
            }
            for receiver in 1..3u8 {
                let video = app.received.get(&(receiver, VIDEO_SSRCS[0])).copied();
                assert!(
                    video.unwrap_or(0) >= u64::from(VIDEO_FRAMES) / 2,
                    "receiver {receiver} got {video:?} video packets"
                );
            }
            assert_eq!(
                app.mismatched, 0,
                "decrypted payloads differ from what was sent ({:?})",
                app.other_streams
            );
            eprintln!("other streams: {:?}", app.other_streams);
            for (index, id) in ids.iter().enumerate() {
                let stats = *out.participant(*id).unwrap().stats();
                assert_eq!(
                    stats.srtp_verify_failed, 0,
                    "participant {index}: {stats:?}"
                );
                assert!(stats.srtp_verified >= 10, "participant {index}: {stats:?}");
                assert!(stats.rtp_sent >= u64::from(AUDIO_PACKETS), "{stats:?}");
                assert_eq!(stats.rtp_send_refused, 0, "{stats:?}");
                assert!(stats.rtcp_sent_by_kind.receiver_reports >= 1, "{stats:?}");
                assert!(stats.rtcp_sent_by_kind.sender_reports >= 1, "{stats:?}");
                assert!(stats.rtcp_sent_by_kind.transport_cc >= 1, "{stats:?}");
                assert!(stats.rtcp_received >= 1, "{stats:?}");
                assert_eq!(stats.rtcp_failed, 0, "{stats:?}");
            }
        })
        .unwrap();

    // The bridge channel: every hello answered, the camera forwarded to both others.
    {
        let events = events.borrow();
        for index in 0..3 {
            assert!(
                events
                    .iter()
                    .any(|(i, e)| *i == index && *e == TargetEvent::ServerHello),
                "no ServerHello for {index}: {events:?}"
            );
        }
        for index in 1..3 {
            assert!(
                events.iter().any(|(i, e)| *i == index
                    && matches!(e, TargetEvent::ForwardedSources(s)
                        if s.contains(&video_source_name(ENDPOINTS[0])))),
                "no ForwardedSources with the camera for {index}: {events:?}"
            );
        }
    }

    // A second endpoint with a live id is refused; leaving frees the id.
    let duplicate = JoinRequest {
        endpoint_id: ENDPOINTS[0].to_owned(),
        transport: driver
            .with(|_, out| out.participant(ids[0]).unwrap().local_transport())
            .unwrap(),
        audio_ssrc: None,
        video: None,
    };
    match target.join(&duplicate).await {
        Err(TargetError::Refused { status: 409, .. }) => {}
        other => panic!("duplicate endpoint: {other:?}"),
    }
    target.leave(ENDPOINTS[2]).await.unwrap();
    let mut leaving = driver.remove(ids[2]).unwrap();
    leaving.close();
    // The node closes the left endpoint's bridge channel.
    tokio::time::timeout(Duration::from_secs(5), readers.pop().unwrap())
        .await
        .expect("the left endpoint's bridge channel stays open")
        .unwrap();
    let rejoin = JoinRequest {
        endpoint_id: ENDPOINTS[2].to_owned(),
        transport: leaving.local_transport(),
        audio_ssrc: Some(AUDIO_SSRCS[2]),
        video: None,
    };
    target.join(&rejoin).await.unwrap();

    // Ending the conference: it is gone afterwards.
    target.end().await.unwrap();
    match target.leave(ENDPOINTS[0]).await {
        Err(TargetError::Refused {
            status: 404,
            reason,
            ..
        }) => {
            assert_eq!(reason, "CONFERENCE_NOT_FOUND");
        }
        other => panic!("leave after end: {other:?}"),
    }
    driver.shutdown();
    timer_loop.await.unwrap();
    for reader in readers {
        reader.abort();
    }
}
