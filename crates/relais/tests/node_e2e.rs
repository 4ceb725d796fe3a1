//! End to end over loopback UDP against the running `relais` binary: client-side controlling
//! ICE agents and DTLS clients, WHIP/WHEP signalling, SRTP the node decrypts and, with a
//! viewer, SRTP the node forwards.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{http, Node, CHROMIUM_WHEP_OFFER, CHROMIUM_WHIP_OFFER};
use relais_rtp::demux::{classify, DatagramKind};
use relais_srtp::{DtlsRole, SrtpConfig, SrtpReceiver, SrtpSender};
use relais_transport::dtls_srtp::{
    DtlsSrtpConfig, DtlsSrtpHandshake, DtlsSrtpOutcome, Fingerprint, NodeCertificate,
};
use relais_transport::ice::{IceAgent, IceConfig, IceCredentials, IceEvent, Receive};
use relais_whip::sdp;
use tokio::net::UdpSocket;

/// `template` with this client's ICE credentials and certificate fingerprint, no candidates.
fn offer(template: &str, creds: &IceCredentials, fingerprint: &Fingerprint) -> String {
    template
        .lines()
        .filter(|line| !line.starts_with("a=candidate:"))
        .map(|line| {
            if line.starts_with("a=ice-ufrag:") {
                format!("a=ice-ufrag:{}", creds.ufrag)
            } else if line.starts_with("a=ice-pwd:") {
                format!("a=ice-pwd:{}", creds.pwd)
            } else if line.starts_with("a=fingerprint:") {
                format!("a=fingerprint:{fingerprint}")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\n"
}

async fn stats(node: SocketAddr) -> String {
    tokio::task::spawn_blocking(move || http(node, "GET", "/about/stats", None).unwrap().body)
        .await
        .unwrap()
}

fn counter(stats: &str, name: &str) -> u64 {
    let key = format!("\"{name}\":");
    stats
        .split_once(&key)
        .and_then(|(_, rest)| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// A WebRTC client reduced to what the node needs: controlling ICE, DTLS client, SRTP.
struct Client {
    socket: UdpSocket,
    local: SocketAddr,
    media: SocketAddr,
    certificate: NodeCertificate,
    ice: IceAgent,
    node_fingerprint: Fingerprint,
    answer: sdp::SessionDescription,
    dtls: Option<DtlsSrtpHandshake>,
    outcome: Option<DtlsSrtpOutcome>,
    buf: Vec<u8>,
}

impl Client {
    /// POSTs an offer made from `template` to `path` and prepares ICE from the answer.
    async fn connect(node: &Node, path: &str, template: &str) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = socket.local_addr().unwrap();
        let certificate = NodeCertificate::generate().unwrap();
        let mut ice = IceAgent::new(IceConfig::controlling(), &mut rand::rng(), Instant::now());
        let offer = offer(template, ice.local_credentials(), certificate.fingerprint());
        let (public, path) = (node.public, path.to_owned());
        let response = tokio::task::spawn_blocking(move || {
            http(
                public,
                "POST",
                &path,
                Some(("application/sdp", offer.as_str())),
            )
            .unwrap()
        })
        .await
        .unwrap();
        assert_eq!(response.status, 201, "{}", response.body);
        let answer = sdp::parse(&response.body).unwrap();
        let m = answer.media.iter().find(|m| m.port != 0).unwrap();
        ice.set_remote_credentials(
            IceCredentials::new(
                m.effective_ice_ufrag(&answer).unwrap(),
                m.effective_ice_pwd(&answer).unwrap(),
            )
            .unwrap(),
        );
        let candidate = m
            .candidates
            .iter()
            .find(|c| c.port == node.media.port())
            .unwrap();
        ice.add_local_candidate(local).unwrap();
        ice.add_remote_candidate(node.media, candidate.priority)
            .unwrap();
        let node_fingerprint =
            Fingerprint::parse(&m.effective_fingerprints(&answer)[0].to_string()).unwrap();
        Client {
            socket,
            local,
            media: node.media,
            certificate,
            ice,
            node_fingerprint,
            answer,
            dtls: None,
            outcome: None,
            buf: vec![0u8; 2048],
        }
    }

    /// One round: timers, ICE and DTLS output, then up to `wait` for one datagram. Returns
    /// a received SRTP/SRTCP datagram.
    async fn step(&mut self, wait: Duration) -> Option<Vec<u8>> {
        self.ice.handle_timeout(Instant::now());
        while let Some(t) = self.ice.poll_transmit() {
            self.socket
                .send_to(&t.contents, t.destination)
                .await
                .unwrap();
        }
        while let Some(event) = self.ice.poll_event() {
            if matches!(event, IceEvent::SelectedPairChanged { .. }) && self.dtls.is_none() {
                self.dtls = Some(
                    DtlsSrtpHandshake::spawn(
                        DtlsRole::Client,
                        &self.certificate,
                        self.node_fingerprint.clone(),
                        DtlsSrtpConfig::default(),
                    )
                    .unwrap(),
                );
            }
        }
        if let Some(handle) = self.dtls.as_mut() {
            while let Some(d) = handle.poll_transmit() {
                self.socket.send_to(&d, self.media).await.unwrap();
            }
            if self.outcome.is_none() {
                if let Some(result) = handle.poll_outcome() {
                    self.outcome = Some(result.unwrap());
                }
            }
        }
        let (len, from) = tokio::time::timeout(wait, self.socket.recv_from(&mut self.buf))
            .await
            .ok()?
            .ok()?;
        let datagram = &self.buf[..len];
        match classify(datagram) {
            DatagramKind::Stun => self.ice.handle_receive(
                Instant::now(),
                Receive {
                    source: from,
                    destination: self.local,
                    datagram,
                },
            ),
            DatagramKind::Dtls => {
                if let Some(handle) = self.dtls.as_ref() {
                    handle.handle_datagram(datagram);
                }
            }
            DatagramKind::Rtp | DatagramKind::Rtcp => return Some(datagram.to_vec()),
            DatagramKind::Unknown => {}
        }
        None
    }

    async fn send(&self, datagram: &[u8]) {
        self.socket.send_to(datagram, self.media).await.unwrap();
    }
}

/// An Opus RTP packet on SSRC 1001 (the Chromium fixture's audio SSRC).
fn opus_packet(seq: u16) -> Vec<u8> {
    let mut packet = vec![0x80, 111];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&(u32::from(seq) * 960).to_be_bytes());
    packet.extend_from_slice(&1001u32.to_be_bytes());
    packet.extend_from_slice(&[0xab; 40]);
    packet
}

/// Publishes to a node started with `args` until it has decrypted one RTP packet; returns
/// the client's port and the node's log.
async fn publish(args: &[&str]) -> (u16, String) {
    publish_to(Node::start(args)).await
}

async fn publish_to(node: Node) -> (u16, String) {
    let mut client = Client::connect(&node, "/whip/e2e", CHROMIUM_WHIP_OFFER).await;
    let mut sender: Option<SrtpSender> = None;
    let mut seq: u16 = 1;
    let mut last_rtp = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "no end-to-end in time; node log:\n{}\nstats: {}",
            node.log_text(),
            stats(node.private).await
        );
        client.step(Duration::from_millis(10)).await;
        if sender.is_none() {
            if let Some(o) = &client.outcome {
                sender = Some(SrtpSender::new(&o.keys.local, SrtpConfig::default()).unwrap());
            }
        }
        if let Some(sender) = sender.as_mut() {
            if last_rtp.elapsed() > Duration::from_millis(50) {
                last_rtp = Instant::now();
                let mut packet = opus_packet(seq);
                seq += 1;
                sender.protect_rtp_vec(&mut packet).unwrap();
                client.send(&packet).await;
                let s = stats(node.private).await;
                if counter(&s, "rtp_received") >= 1 {
                    assert_eq!(counter(&s, "dtls_completed"), 1, "{s}");
                    assert_eq!(counter(&s, "dtls_failed"), 0, "{s}");
                    break;
                }
            }
        }
    }
    (client.local.port(), node.log_text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_completes_ice_dtls_and_sends_srtp() {
    let (port, log) = publish(&["--log-level", "debug"]).await;
    // The node never logs the client's address at default privacy settings.
    assert!(!log.contains(&format!(":{port}")), "{log}");
    assert!(log.contains("ICE selected [redacted]"), "{log}");
    assert!(log.contains("DTLS done"), "{log}");
}

/// The default bind, `[::]`: an IPv4 client arrives IPv4-mapped and is answered on the
/// same socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_client_on_a_dual_stack_socket() {
    let node = Node::start_dual_stack(&[
        "--log-level",
        "debug",
        "--privacy-log-client-addresses",
        "true",
    ]);
    let (_, log) = publish_to(node).await;
    // Normalised: the IPv4 form, not ::ffff:127.0.0.1.
    assert!(log.contains("ICE selected 127.0.0.0/24"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_addresses_are_logged_only_when_opted_in() {
    let (_, log) = publish(&[
        "--log-level",
        "debug",
        "--privacy-log-client-addresses",
        "true",
    ])
    .await;
    assert!(log.contains("ICE selected 127.0.0.0/24"), "{log}");
    let (port, log) = publish(&[
        "--log-level",
        "debug",
        "--privacy-log-client-addresses",
        "true",
        "--privacy-anonymise-client-addresses",
        "false",
    ])
    .await;
    assert!(
        log.contains(&format!("ICE selected 127.0.0.1:{port}")),
        "{log}"
    );
}

/// WHIP publisher → node → WHEP viewer: the viewer decrypts the audio the publisher sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_receives_the_publishers_audio() {
    let node = Node::start(&[]);
    let mut viewer = Client::connect(&node, "/whep/live", CHROMIUM_WHEP_OFFER).await;
    let mut publisher = Client::connect(&node, "/whip/live", CHROMIUM_WHIP_OFFER).await;
    let viewer_audio_pt = viewer
        .answer
        .media
        .iter()
        .find(|m| m.kind == sdp::MediaKind::Audio && m.port != 0)
        .and_then(|m| m.codecs.iter().find(|c| c.name == "opus"))
        .map(|c| c.payload_type)
        .unwrap();
    let mut sender: Option<SrtpSender> = None;
    let mut receiver: Option<SrtpReceiver> = None;
    let mut seq: u16 = 1;
    let mut last_rtp = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "viewer got no media in time; node log:\n{}\nstats: {}",
            node.log_text(),
            stats(node.private).await
        );
        publisher.step(Duration::from_millis(5)).await;
        if let Some(mut datagram) = viewer.step(Duration::from_millis(5)).await {
            if let (Some(receiver), DatagramKind::Rtp) = (receiver.as_mut(), classify(&datagram)) {
                let len = receiver.unprotect_rtp(&mut datagram).unwrap();
                assert_eq!(len, 12 + 40);
                assert_eq!(datagram[1] & 0x7f, viewer_audio_pt);
                assert_eq!(&datagram[12..len], &[0xab; 40][..]);
                break;
            }
        }
        if receiver.is_none() {
            if let Some(o) = &viewer.outcome {
                receiver = Some(SrtpReceiver::new(&o.keys.remote, SrtpConfig::default()).unwrap());
            }
        }
        if sender.is_none() {
            if let Some(o) = &publisher.outcome {
                sender = Some(SrtpSender::new(&o.keys.local, SrtpConfig::default()).unwrap());
            }
        }
        if let (Some(sender), true) = (sender.as_mut(), receiver.is_some()) {
            if last_rtp.elapsed() > Duration::from_millis(20) {
                last_rtp = Instant::now();
                let mut packet = opus_packet(seq);
                seq += 1;
                sender.protect_rtp_vec(&mut packet).unwrap();
                publisher.send(&packet).await;
            }
        }
    }
    let s = stats(node.private).await;
    assert!(counter(&s, "rtp_sent") >= 1, "{s}");
}
