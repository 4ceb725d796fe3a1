//! A WebRTC client reduced to what the node needs (controlling ICE, DTLS client, SRTP), as
//! in `node_metrics.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    dead_code
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use relais_rtp::demux::{classify, DatagramKind};
use relais_srtp::DtlsRole;
use relais_transport::dtls_srtp::{
    DtlsSrtpConfig, DtlsSrtpHandshake, DtlsSrtpOutcome, Fingerprint, NodeCertificate,
};
use relais_transport::ice::{IceAgent, IceConfig, IceCredentials, IceEvent, Receive};
use relais_whip::sdp;
use tokio::net::UdpSocket;

use super::{http, Node};

/// `template` with this client's ICE credentials and certificate fingerprint, no candidates.
pub fn offer(template: &str, creds: &IceCredentials, fingerprint: &Fingerprint) -> String {
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

/// A WebRTC client reduced to what the node needs: controlling ICE, DTLS client, SRTP.
pub struct Client {
    pub socket: UdpSocket,
    pub local: SocketAddr,
    pub media: SocketAddr,
    pub certificate: NodeCertificate,
    pub ice: IceAgent,
    pub node_fingerprint: Fingerprint,
    /// The node's SDP answer.
    pub answer: sdp::SessionDescription,
    /// The session URL path (`Location`).
    pub location: String,
    pub dtls: Option<DtlsSrtpHandshake>,
    pub outcome: Option<DtlsSrtpOutcome>,
    pub buf: Vec<u8>,
    /// Datagrams this client sent to the node.
    pub sent: u64,
}

impl Client {
    /// POSTs an offer made from `template` to `path` and prepares ICE from the answer.
    pub async fn connect(node: &Node, path: &str, template: &str) -> Client {
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
        let location = response.header("location").unwrap().to_owned();
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
            location,
            dtls: None,
            outcome: None,
            buf: vec![0u8; 2048],
            sent: 0,
        }
    }

    /// A client for a Colibri2 endpoint, as a Jitsi Meet client is: ICE controlled (the
    /// node controls), DTLS client. The node's transport comes later through
    /// [`Client::set_node_transport`].
    pub async fn colibri(node: &Node) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = socket.local_addr().unwrap();
        let certificate = NodeCertificate::generate().unwrap();
        let mut ice = IceAgent::new(IceConfig::controlled(), &mut rand::rng(), Instant::now());
        ice.add_local_candidate(local).unwrap();
        let node_fingerprint = certificate.fingerprint().clone();
        Client {
            socket,
            local,
            media: node.media,
            certificate,
            ice,
            node_fingerprint,
            answer: sdp::SessionDescription::default(),
            location: String::new(),
            dtls: None,
            outcome: None,
            buf: vec![0u8; 2048],
            sent: 0,
        }
    }

    /// The node's ICE credentials, its candidate's priority and its DTLS fingerprint (from
    /// a Colibri2 answer).
    pub fn set_node_transport(&mut self, ufrag: &str, pwd: &str, priority: u32, fingerprint: &str) {
        self.ice
            .set_remote_credentials(IceCredentials::new(ufrag, pwd).unwrap());
        self.ice.add_remote_candidate(self.media, priority).unwrap();
        self.node_fingerprint = Fingerprint::parse(fingerprint).unwrap();
    }

    /// One round: timers, ICE and DTLS output, then up to `wait` for one datagram. Returns
    /// a received SRTP/SRTCP datagram.
    pub async fn step(&mut self, wait: Duration) -> Option<Vec<u8>> {
        self.ice.handle_timeout(Instant::now());
        while let Some(t) = self.ice.poll_transmit() {
            assert_eq!(t.destination, self.media);
            self.socket
                .send_to(&t.contents, t.destination)
                .await
                .unwrap();
            self.sent += 1;
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
                self.sent += 1;
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

    pub async fn send(&mut self, datagram: &[u8]) {
        self.socket.send_to(datagram, self.media).await.unwrap();
        self.sent += 1;
    }
}

/// An Opus RTP packet on SSRC 1001 (the Chromium fixture's audio SSRC).
pub fn opus_packet(seq: u16) -> Vec<u8> {
    let mut packet = vec![0x80, 111];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&(u32::from(seq) * 960).to_be_bytes());
    packet.extend_from_slice(&1001u32.to_be_bytes());
    packet.extend_from_slice(&[0xab; 40]);
    packet
}

/// A WHIP publisher and a WHEP viewer on one stream, with their SRTP contexts once keyed.
pub struct Call {
    pub publisher: Client,
    pub viewer: Client,
    pub sender: Option<relais_srtp::SrtpSender>,
    pub receiver: Option<relais_srtp::SrtpReceiver>,
    /// RTP packets the publisher sent.
    pub seq: u16,
    /// RTP packets the viewer received and decrypted.
    pub received: u64,
}

impl Call {
    /// Connects a viewer, then a publisher (Chromium offers) on `stream`.
    pub async fn connect(node: &Node, stream: &str) -> Call {
        let viewer =
            Client::connect(node, &format!("/whep/{stream}"), super::CHROMIUM_WHEP_OFFER).await;
        let publisher =
            Client::connect(node, &format!("/whip/{stream}"), super::CHROMIUM_WHIP_OFFER).await;
        Call {
            publisher,
            viewer,
            sender: None,
            receiver: None,
            seq: 0,
            received: 0,
        }
    }

    /// Whether both handshakes completed.
    pub fn keyed(&self) -> bool {
        self.sender.is_some() && self.receiver.is_some()
    }

    /// One round of both clients; counts the RTP the viewer decrypts.
    pub async fn step(&mut self) {
        self.publisher.step(Duration::from_millis(1)).await;
        if let Some(mut datagram) = self.viewer.step(Duration::from_millis(1)).await {
            if let (Some(receiver), DatagramKind::Rtp) =
                (self.receiver.as_mut(), classify(&datagram))
            {
                if receiver.unprotect_rtp(&mut datagram).is_ok() {
                    self.received += 1;
                }
            }
        }
        if self.receiver.is_none() {
            if let Some(o) = &self.viewer.outcome {
                self.receiver = Some(
                    relais_srtp::SrtpReceiver::new(
                        &o.keys.remote,
                        relais_srtp::SrtpConfig::default(),
                    )
                    .unwrap(),
                );
            }
        }
        if self.sender.is_none() {
            if let Some(o) = &self.publisher.outcome {
                self.sender = Some(
                    relais_srtp::SrtpSender::new(&o.keys.local, relais_srtp::SrtpConfig::default())
                        .unwrap(),
                );
            }
        }
    }

    /// Sends the next Opus packet (once keyed).
    pub async fn send_rtp(&mut self) {
        let Some(sender) = self.sender.as_mut() else {
            return;
        };
        self.seq = self.seq.wrapping_add(1);
        let mut packet = opus_packet(self.seq);
        sender.protect_rtp_vec(&mut packet).unwrap();
        self.publisher.send(&packet).await;
    }
}

/// Steps every call until all are keyed (panics after `within`).
pub async fn key_all(calls: &mut [&mut Call], within: Duration) {
    let until = Instant::now() + within;
    while !calls.iter().all(|c| c.keyed()) {
        assert!(Instant::now() < until, "calls not keyed in time");
        for call in calls.iter_mut() {
            call.step().await;
        }
    }
}

/// For `duration`, each call sends RTP at its rate (packets per second, catching up when the
/// loop is slow) while every call is stepped; then steps 300 ms more for what is in flight.
pub async fn pump(calls: &mut [&mut Call], rates: &[u32], duration: Duration) {
    let start = Instant::now();
    let mut sent = vec![0u64; calls.len()];
    while start.elapsed() < duration + Duration::from_millis(300) {
        let elapsed = start.elapsed().min(duration).as_secs_f64();
        for (i, call) in calls.iter_mut().enumerate() {
            let due = (elapsed * f64::from(rates[i])) as u64;
            while sent[i] < due {
                call.send_rtp().await;
                sent[i] += 1;
            }
            call.step().await;
        }
    }
}
