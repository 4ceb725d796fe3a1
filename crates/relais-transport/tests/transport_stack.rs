//! The whole transport stack in process: an ICE-lite node with a DTLS server and a
//! controlling ICE client with a DTLS client, over a simulated network under tokio's paused
//! clock. Both sides demultiplex with `relais_rtp::demux::classify`; DTLS, SRTP and SRTCP
//! are accepted only from the ICE agent's selected 5-tuple. ICE gets its `Instant`s from the
//! same paused clock (`tokio::time::Instant::now().into_std()`), so ICE, the dtls crate's
//! timers and the wire share one time line. No sockets, no real sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::future::pending;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use relais_rtp::demux::{classify, DatagramKind};
use relais_rtp::stun::{StunKey, StunWriter};
use relais_srtp::{DtlsRole, SrtpConfig, SrtpProfile, SrtpReceiver, SrtpSender};
use relais_transport::dtls_srtp::{
    DtlsEvent, DtlsSrtpConfig, DtlsSrtpError, DtlsSrtpHandshake, DtlsSrtpOutcome, Fingerprint,
    NodeCertificate,
};
use relais_transport::ice::{IceAgent, IceConfig, IceEvent, IceState, Receive};
use tokio::time::Instant as TokioInstant;

const HOST_PRIORITY: u32 = 0x7EFF_FFFF;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn node_addr() -> SocketAddr {
    addr("127.0.0.1:5000")
}

/// The client's own (private) address; the wire may NAT it to another public one.
fn client_addr() -> SocketAddr {
    addr("127.0.0.1:6000")
}

fn rebound_addr() -> SocketAddr {
    addr("127.0.0.1:6001")
}

/// The paused tokio clock as a std `Instant` for the ICE agents.
fn now() -> Instant {
    TokioInstant::now().into_std()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Node,
    Client,
}

/// One datagram on the wire.
#[derive(Debug, Clone)]
struct Datagram {
    source: SocketAddr,
    destination: SocketAddr,
    data: Vec<u8>,
}

/// What the harness did with received datagrams, per endpoint.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counters {
    stun_in: u64,
    /// DTLS records handed to the handshake.
    dtls_in: u64,
    /// DTLS records from a 5-tuple that is not the selected one (or without consent).
    dtls_wrong_tuple: u64,
    /// SRTP/SRTCP from a 5-tuple that is not the selected one (or without consent):
    /// dropped before any decryption attempt.
    dropped_before_decrypt: u64,
    /// SRTP/SRTCP from the right 5-tuple but before (or without) SRTP keys.
    dropped_no_keys: u64,
    dropped_unknown: u64,
    /// Calls of `SrtpReceiver::unprotect_rtp`/`unprotect_rtcp`.
    unprotect_calls: u64,
    unprotect_failures: u64,
    /// Outbound DTLS datagrams with no selected pair to send them on.
    dtls_out_dropped: u64,
}

/// How to start the DTLS handshake when ICE selects a pair.
struct PendingDtls {
    role: DtlsRole,
    cert: NodeCertificate,
    expected: Fingerprint,
}

/// One transport instance: ICE agent, DTLS handshake, SRTP contexts and a demux.
struct Endpoint {
    agent: IceAgent,
    dtls: Option<DtlsSrtpHandshake>,
    pending_dtls: Option<PendingDtls>,
    outcome: Option<Result<DtlsSrtpOutcome, DtlsSrtpError>>,
    sender: Option<SrtpSender>,
    receiver: Option<SrtpReceiver>,
    events: Vec<(Instant, IceEvent)>,
    received_rtp: Vec<Vec<u8>>,
    received_rtcp: Vec<Vec<u8>>,
    counters: Counters,
    /// When the agent last accepted an authenticated STUN request or response.
    last_valid_stun: Option<Instant>,
}

impl Endpoint {
    fn new(agent: IceAgent, dtls: PendingDtls) -> Self {
        Endpoint {
            agent,
            dtls: None,
            pending_dtls: Some(dtls),
            outcome: None,
            sender: None,
            receiver: None,
            events: Vec::new(),
            received_rtp: Vec::new(),
            received_rtcp: Vec::new(),
            counters: Counters::default(),
            last_valid_stun: None,
        }
    }

    fn start_dtls(&mut self) {
        if let Some(p) = self.pending_dtls.take() {
            self.dtls = Some(
                DtlsSrtpHandshake::spawn(p.role, &p.cert, p.expected, DtlsSrtpConfig::default())
                    .unwrap(),
            );
        }
    }

    /// The 5-tuple gate for everything that is not STUN.
    fn accepts(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        self.agent.is_valid_source(local, remote)
            && self.agent.selected_pair() == Some((local, remote))
    }

    fn receive(&mut self, at: Instant, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        let kind = classify(data);
        match kind {
            DatagramKind::Stun => {
                self.counters.stun_in += 1;
                let before = self.agent.stats();
                self.agent.handle_receive(
                    at,
                    Receive {
                        source,
                        destination,
                        datagram: data,
                    },
                );
                let after = self.agent.stats();
                if after.requests_received > before.requests_received
                    || after.responses_received > before.responses_received
                {
                    self.last_valid_stun = Some(at);
                }
            }
            DatagramKind::Dtls => {
                if !self.accepts(destination, source) {
                    self.counters.dtls_wrong_tuple += 1;
                } else if let Some(h) = &self.dtls {
                    self.counters.dtls_in += 1;
                    h.handle_datagram(data);
                }
            }
            DatagramKind::Rtp | DatagramKind::Rtcp => {
                if !self.accepts(destination, source) {
                    self.counters.dropped_before_decrypt += 1;
                    return;
                }
                let Some(rx) = self.receiver.as_mut() else {
                    self.counters.dropped_no_keys += 1;
                    return;
                };
                self.counters.unprotect_calls += 1;
                let mut buf = data.to_vec();
                let result = if kind == DatagramKind::Rtp {
                    rx.unprotect_rtp(&mut buf)
                } else {
                    rx.unprotect_rtcp(&mut buf)
                };
                match result {
                    Ok(n) => {
                        buf.truncate(n);
                        if kind == DatagramKind::Rtp {
                            self.received_rtp.push(buf);
                        } else {
                            self.received_rtcp.push(buf);
                        }
                    }
                    Err(_) => self.counters.unprotect_failures += 1,
                }
            }
            DatagramKind::Unknown => self.counters.dropped_unknown += 1,
        }
    }

    fn complete(&mut self, result: Result<DtlsSrtpOutcome, DtlsSrtpError>) {
        if let Ok(o) = &result {
            self.sender = Some(SrtpSender::new(&o.keys.local, SrtpConfig::default()).unwrap());
            self.receiver = Some(SrtpReceiver::new(&o.keys.remote, SrtpConfig::default()).unwrap());
        }
        self.outcome = Some(result);
    }

    /// A DTLS datagram from the handshake goes to the selected 5-tuple.
    fn dtls_out(&mut self, data: Vec<u8>, out: &mut Vec<Datagram>) {
        match self.agent.selected_pair() {
            Some((local, remote)) if self.agent.can_send() => out.push(Datagram {
                source: local,
                destination: remote,
                data,
            }),
            _ => self.counters.dtls_out_dropped += 1,
        }
    }

    fn on_dtls_event(&mut self, ev: DtlsEvent, out: &mut Vec<Datagram>) {
        match ev {
            DtlsEvent::Transmit(d) => self.dtls_out(d, out),
            DtlsEvent::Completed(r) => self.complete(r),
        }
    }

    /// Everything ready to go out now; also collects ICE events and DTLS results.
    fn poll_outgoing(&mut self, at: Instant, out: &mut Vec<Datagram>) {
        while let Some(t) = self.agent.poll_transmit() {
            out.push(Datagram {
                source: t.source,
                destination: t.destination,
                data: t.contents,
            });
        }
        while let Some(e) = self.agent.poll_event() {
            if matches!(e, IceEvent::SelectedPairChanged { .. }) {
                self.start_dtls();
            }
            self.events.push((at, e));
        }
        let mut transmits = Vec::new();
        let mut result = None;
        if let Some(h) = self.dtls.as_mut() {
            while let Some(d) = h.poll_transmit() {
                transmits.push(d);
            }
            result = h.poll_outcome();
        }
        for d in transmits {
            self.dtls_out(d, out);
        }
        if let Some(r) = result {
            self.complete(r);
        }
    }

    /// SRTP-protects `plain` (RTP or RTCP by its second byte) regardless of ICE state.
    fn protect(&mut self, plain: &[u8]) -> Vec<u8> {
        let sender = self.sender.as_mut().expect("SRTP keys");
        let mut p = plain.to_vec();
        match classify(plain) {
            DatagramKind::Rtp => sender.protect_rtp_vec(&mut p).unwrap(),
            DatagramKind::Rtcp => sender.protect_rtcp_vec(&mut p).unwrap(),
            k => panic!("not media: {k:?}"),
        }
        p
    }

    fn has_event(&self, e: &IceEvent) -> bool {
        self.events.iter().any(|(_, x)| x == e)
    }
}

type Filter = Box<dyn FnMut(&Datagram) -> bool>;

struct Sim {
    start: Instant,
    node: Endpoint,
    client: Endpoint,
    latency: Duration,
    in_flight: Vec<(TokioInstant, Datagram)>,
    /// Returns true to deliver.
    filter: Filter,
    /// The client's public address when a NAT rewrites its source port.
    nat: Option<SocketAddr>,
    wire_dropped: u64,
    undeliverable: u64,
}

/// Next DTLS event of an endpoint, or never.
async fn next_dtls(h: &mut Option<DtlsSrtpHandshake>) -> DtlsEvent {
    match h {
        Some(h) => match h.next_event().await {
            Some(e) => e,
            None => pending().await,
        },
        None => pending().await,
    }
}

impl Sim {
    /// A lite node expecting `node_expects` (default: the client's certificate) and a
    /// controlling client, seeded with `seed`.
    fn new(seed: u64, node_expects: Option<Fingerprint>) -> Self {
        let start = now();
        let node_cert = NodeCertificate::generate().unwrap();
        let client_cert = NodeCertificate::generate().unwrap();
        let mut node_agent =
            IceAgent::new(IceConfig::lite(), &mut StdRng::seed_from_u64(seed), start);
        let mut client_agent = IceAgent::new(
            IceConfig::controlling(),
            &mut StdRng::seed_from_u64(seed + 1000),
            start,
        );
        node_agent.set_remote_credentials(client_agent.local_credentials().clone());
        client_agent.set_remote_credentials(node_agent.local_credentials().clone());
        client_agent.add_local_candidate(client_addr()).unwrap();
        client_agent
            .add_remote_candidate(node_addr(), HOST_PRIORITY)
            .unwrap();
        let mut node = Endpoint::new(
            node_agent,
            PendingDtls {
                role: DtlsRole::Server,
                cert: node_cert.clone(),
                expected: node_expects.unwrap_or_else(|| client_cert.fingerprint().clone()),
            },
        );
        // The DTLS server (a=setup:passive) waits from the start; the client starts its
        // handshake once ICE selected a pair.
        node.start_dtls();
        let client = Endpoint::new(
            client_agent,
            PendingDtls {
                role: DtlsRole::Client,
                cert: client_cert,
                expected: node_cert.fingerprint().clone(),
            },
        );
        Sim {
            start,
            node,
            client,
            latency: Duration::from_millis(5),
            in_flight: Vec::new(),
            filter: Box::new(|_| true),
            nat: None,
            wire_dropped: 0,
            undeliverable: 0,
        }
    }

    fn ep(&mut self, side: Side) -> &mut Endpoint {
        match side {
            Side::Node => &mut self.node,
            Side::Client => &mut self.client,
        }
    }

    fn client_public(&self) -> SocketAddr {
        self.nat.unwrap_or(client_addr())
    }

    /// Puts a datagram on the wire (through the client's NAT when it is from the client).
    fn send(&mut self, mut d: Datagram) {
        if d.source == client_addr() {
            d.source = self.client_public();
        }
        if (self.filter)(&d) {
            self.in_flight.push((TokioInstant::now() + self.latency, d));
        } else {
            self.wire_dropped += 1;
        }
    }

    fn deliver(&mut self, d: Datagram) {
        let at = now();
        if d.destination == node_addr() {
            self.node.receive(at, d.source, d.destination, &d.data);
        } else if d.destination == self.client_public() {
            self.client.receive(at, d.source, client_addr(), &d.data);
        } else {
            self.undeliverable += 1;
        }
    }

    /// Does everything due at the current instant.
    fn step(&mut self) {
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds < 10_000, "no progress");
            let at = now();
            let mut out = Vec::new();
            for side in [Side::Node, Side::Client] {
                let ep = self.ep(side);
                if ep.agent.poll_timeout().is_some_and(|t| t <= at) {
                    ep.agent.handle_timeout(at);
                }
                ep.poll_outgoing(at, &mut out);
            }
            let t = TokioInstant::now();
            let (due, later): (Vec<_>, Vec<_>) =
                self.in_flight.drain(..).partition(|(when, _)| *when <= t);
            self.in_flight = later;
            let idle = out.is_empty() && due.is_empty();
            for d in out {
                self.send(d);
            }
            for (_, d) in due {
                self.deliver(d);
            }
            if idle {
                return;
            }
        }
    }

    async fn run_until(&mut self, deadline: TokioInstant) {
        loop {
            self.step();
            if TokioInstant::now() >= deadline {
                return;
            }
            let next = self
                .in_flight
                .iter()
                .map(|(t, _)| *t)
                .chain(self.node.agent.poll_timeout().map(TokioInstant::from_std))
                .chain(self.client.agent.poll_timeout().map(TokioInstant::from_std))
                .fold(deadline, TokioInstant::min);
            let mut out = Vec::new();
            tokio::select! {
                biased;
                ev = next_dtls(&mut self.node.dtls) => self.node.on_dtls_event(ev, &mut out),
                ev = next_dtls(&mut self.client.dtls) => self.client.on_dtls_event(ev, &mut out),
                () = tokio::time::sleep_until(next) => {}
            }
            for d in out {
                self.send(d);
            }
        }
    }

    async fn run_for(&mut self, d: Duration) {
        self.run_until(TokioInstant::now() + d).await;
    }

    /// Sends one SRTP/SRTCP packet from `side` on its selected pair if ICE allows it.
    fn send_media(&mut self, side: Side, plain: &[u8]) -> Vec<u8> {
        let ep = self.ep(side);
        assert!(ep.agent.can_send(), "{side:?} may send");
        let (local, remote) = ep.agent.selected_pair().unwrap();
        let data = ep.protect(plain);
        self.send(Datagram {
            source: local,
            destination: remote,
            data: data.clone(),
        });
        data
    }

    /// Runs until ICE selected on both sides and DTLS finished on both sides.
    async fn connect(&mut self) {
        let deadline = TokioInstant::now() + Duration::from_secs(5);
        while (self.node.outcome.is_none() || self.client.outcome.is_none())
            && TokioInstant::now() < deadline
        {
            self.run_for(Duration::from_millis(50)).await;
        }
        assert_eq!(
            self.node.agent.selected_pair(),
            Some((node_addr(), client_addr()))
        );
        assert_eq!(
            self.client.agent.selected_pair(),
            Some((client_addr(), node_addr()))
        );
        assert!(self.node.outcome.is_some(), "node DTLS finished");
        assert!(self.client.outcome.is_some(), "client DTLS finished");
    }

    async fn connected(seed: u64) -> Self {
        let mut sim = Sim::new(seed, None);
        sim.connect().await;
        assert!(sim.node.sender.is_some() && sim.client.sender.is_some());
        sim
    }

    /// Sends `count` RTP packets each way (SSRCs differ per side) and checks they arrive
    /// decrypted and byte-identical.
    async fn exchange_media(&mut self, first_seq: u16, count: u16) {
        let node_before = self.node.received_rtp.len();
        let client_before = self.client.received_rtp.len();
        let mut up = Vec::new();
        let mut down = Vec::new();
        for i in 0..count {
            let seq = first_seq.wrapping_add(i);
            let a = rtp_packet(0x1111_1111, seq, 80 + usize::from(i % 7));
            let b = rtp_packet(0x2222_2222, seq, 120 + usize::from(i % 5));
            let wire_a = self.send_media(Side::Client, &a);
            let wire_b = self.send_media(Side::Node, &b);
            assert_ne!(wire_a[12..a.len()], a[12..], "payload encrypted");
            assert_ne!(wire_b[12..b.len()], b[12..], "payload encrypted");
            up.push(a);
            down.push(b);
            self.run_for(Duration::from_millis(20)).await;
        }
        assert_eq!(self.node.received_rtp[node_before..], up[..]);
        assert_eq!(self.client.received_rtp[client_before..], down[..]);
    }
}

fn rtp_packet(ssrc: u32, seq: u16, payload_len: usize) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 960).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..payload_len).map(|i| (i as u8) ^ (seq as u8)));
    p
}

/// An RTCP sender report (28 bytes).
fn sender_report(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 200, 0, 6];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0x11; 8]); // NTP timestamp
    p.extend_from_slice(&4800u32.to_be_bytes());
    p.extend_from_slice(&50u32.to_be_bytes());
    p.extend_from_slice(&5000u32.to_be_bytes());
    p
}

/// A Binding request with USE-CANDIDATE as the controlling client would send it.
fn nomination(sim: &Sim, tid: [u8; 12]) -> Vec<u8> {
    let node = sim.node.agent.local_credentials();
    let client = sim.client.agent.local_credentials();
    let username = format!("{}:{}", node.ufrag, client.ufrag);
    let mut buf = vec![0u8; 256];
    let mut w = StunWriter::binding_request(&mut buf, tid).unwrap();
    w.username(username.as_bytes())
        .unwrap()
        .priority(0x6E00_01FF)
        .unwrap()
        .ice_controlling(42)
        .unwrap()
        .use_candidate()
        .unwrap()
        .message_integrity(&StunKey::new(node.pwd.as_bytes()))
        .unwrap()
        .fingerprint()
        .unwrap();
    let len = w.finish();
    buf.truncate(len);
    buf
}

#[tokio::test(start_paused = true)]
async fn full_stack_connects_and_carries_srtp_and_srtcp_both_ways() {
    let started = TokioInstant::now();
    let mut sim = Sim::connected(1).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sim.node.agent.state(), IceState::Connected);
    assert_eq!(sim.client.agent.state(), IceState::Connected);
    assert!(sim.node.has_event(&IceEvent::SelectedPairChanged {
        local: node_addr(),
        remote: client_addr(),
    }));
    let node_out = sim.node.outcome.clone().unwrap().unwrap();
    let client_out = sim.client.outcome.clone().unwrap().unwrap();
    assert_eq!(node_out.profile, SrtpProfile::AeadAes128Gcm);
    assert_eq!(client_out.profile, SrtpProfile::AeadAes128Gcm);
    assert_eq!(node_out.role, DtlsRole::Server);
    assert_eq!(client_out.role, DtlsRole::Client);
    assert_eq!(node_out.keys.local, client_out.keys.remote);
    assert_eq!(node_out.keys.remote, client_out.keys.local);
    assert_ne!(node_out.keys.local, node_out.keys.remote);
    // Every DTLS record went through the selected 5-tuple; nothing was refused.
    assert!(sim.node.counters.dtls_in > 0 && sim.client.counters.dtls_in > 0);
    assert_eq!(sim.node.counters.dtls_wrong_tuple, 0);
    assert_eq!(sim.node.counters.dtls_out_dropped, 0);

    sim.exchange_media(1000, 50).await;
    assert_eq!(sim.node.received_rtp.len(), 50);
    assert_eq!(sim.client.received_rtp.len(), 50);

    let sr_up = sender_report(0x1111_1111);
    let sr_down = sender_report(0x2222_2222);
    let wire_up = sim.send_media(Side::Client, &sr_up);
    sim.send_media(Side::Node, &sr_down);
    assert_eq!(classify(&wire_up), DatagramKind::Rtcp);
    assert_ne!(wire_up[8..sr_up.len()], sr_up[8..], "SRTCP encrypted");
    sim.run_for(Duration::from_millis(20)).await;
    assert_eq!(sim.node.received_rtcp, vec![sr_up]);
    assert_eq!(sim.client.received_rtcp, vec![sr_down]);

    for c in [sim.node.counters, sim.client.counters] {
        assert_eq!(c.dropped_before_decrypt, 0, "{c:?}");
        assert_eq!(c.unprotect_failures, 0, "{c:?}");
        assert_eq!(c.unprotect_calls, 51, "{c:?}");
        assert_eq!(c.dropped_unknown, 0, "{c:?}");
    }
    assert_eq!(sim.undeliverable, 0);
}

#[tokio::test(start_paused = true)]
async fn wrong_remote_fingerprint_fails_dtls_but_not_ice() {
    let other = NodeCertificate::generate().unwrap().fingerprint().clone();
    let mut sim = Sim::new(2, Some(other));
    sim.connect().await;
    assert_eq!(
        sim.node.outcome.clone().unwrap().unwrap_err(),
        DtlsSrtpError::FingerprintMismatch
    );
    assert!(sim.client.outcome.clone().unwrap().is_err());
    assert!(sim.node.sender.is_none() && sim.node.receiver.is_none());
    assert!(sim.client.sender.is_none() && sim.client.receiver.is_none());

    // ICE is unaffected: consent goes on for a while on both sides.
    sim.run_for(Duration::from_secs(40)).await;
    assert_eq!(sim.node.agent.state(), IceState::Connected);
    assert_eq!(sim.client.agent.state(), IceState::Connected);
    assert!(sim.node.agent.can_send() && sim.client.agent.can_send());
    assert!(!sim.node.has_event(&IceEvent::ConsentExpired));

    // Media-looking datagrams on the selected pair find no SRTP context.
    sim.send(Datagram {
        source: client_addr(),
        destination: node_addr(),
        data: rtp_packet(7, 1, 40),
    });
    sim.run_for(Duration::from_millis(20)).await;
    assert_eq!(sim.node.counters.dropped_no_keys, 1);
    assert_eq!(sim.node.counters.unprotect_calls, 0);
    assert!(sim.node.received_rtp.is_empty());
}

#[tokio::test(start_paused = true)]
async fn nat_rebinding_moves_media_only_after_an_authenticated_nomination() {
    let mut sim = Sim::connected(3).await;
    sim.exchange_media(1, 5).await;

    // The client's NAT now maps it to another port.
    sim.nat = Some(rebound_addr());

    // SRTP from the new, not yet authenticated port: dropped before decryption.
    let before = sim.node.counters;
    let early = rtp_packet(0x1111_1111, 100, 60);
    sim.send_media(Side::Client, &early);
    sim.run_for(Duration::from_millis(20)).await;
    assert_eq!(
        sim.node.counters.dropped_before_decrypt,
        before.dropped_before_decrypt + 1
    );
    assert_eq!(sim.node.counters.unprotect_calls, before.unprotect_calls);
    assert_eq!(sim.node.received_rtp.len(), 5);
    assert_eq!(
        sim.node.agent.selected_pair(),
        Some((node_addr(), client_addr()))
    );

    // The client re-nominates (through the NAT): the node switches its selected pair.
    let request = nomination(&sim, [7; 12]);
    sim.send(Datagram {
        source: client_addr(),
        destination: node_addr(),
        data: request,
    });
    sim.run_for(Duration::from_millis(20)).await;
    assert_eq!(
        sim.node.agent.selected_pair(),
        Some((node_addr(), rebound_addr()))
    );
    assert!(sim.node.has_event(&IceEvent::SelectedPairChanged {
        local: node_addr(),
        remote: rebound_addr(),
    }));
    // The client still sees its own 5-tuple.
    assert_eq!(
        sim.client.agent.selected_pair(),
        Some((client_addr(), node_addr()))
    );

    // Media flows again both ways, via the new port.
    sim.exchange_media(200, 10).await;
    assert_eq!(sim.node.received_rtp.len(), 15);
    assert_eq!(sim.client.received_rtp.len(), 15);

    // The old port is no longer accepted by the node.
    let stale = sim.client.protect(&rtp_packet(0x1111_1111, 300, 60));
    let before = sim.node.counters;
    sim.in_flight.push((
        TokioInstant::now(),
        Datagram {
            source: client_addr(),
            destination: node_addr(),
            data: stale,
        },
    ));
    sim.run_for(Duration::from_millis(20)).await;
    assert_eq!(
        sim.node.counters.dropped_before_decrypt,
        before.dropped_before_decrypt + 1
    );
    assert_eq!(sim.node.counters.unprotect_calls, before.unprotect_calls);

    // Consent from the new port keeps both sides connected.
    sim.run_for(Duration::from_secs(40)).await;
    assert_eq!(sim.node.agent.state(), IceState::Connected);
    assert_eq!(sim.client.agent.state(), IceState::Connected);
    sim.exchange_media(400, 3).await;
}

#[tokio::test(start_paused = true)]
async fn consent_expires_30s_after_the_last_valid_binding() {
    let mut sim = Sim::connected(4).await;
    sim.exchange_media(1, 5).await;
    sim.run_for(Duration::from_secs(7)).await;

    // Everything from the client is lost from now on.
    sim.filter = Box::new(|d| d.destination != node_addr());
    sim.run_for(Duration::from_millis(50)).await;
    let last = sim.node.last_valid_stun.unwrap();
    let tolerance = Duration::from_millis(100);
    let expiry = TokioInstant::from_std(last + Duration::from_secs(30));

    sim.run_until(expiry - tolerance).await;
    assert!(sim.node.agent.can_send(), "consent still fresh before 30 s");
    assert!(!sim.node.has_event(&IceEvent::ConsentExpired));
    assert_ne!(sim.node.agent.state(), IceState::Failed);

    sim.run_until(expiry + tolerance).await;
    assert!(!sim.node.agent.can_send(), "consent expired after 30 s");
    let (at, _) = sim
        .node
        .events
        .iter()
        .find(|(_, e)| *e == IceEvent::ConsentExpired)
        .expect("ConsentExpired");
    assert!(
        *at >= last + Duration::from_secs(30) && *at <= last + Duration::from_secs(30) + tolerance
    );

    // The wire heals, but SRTP from the client is refused before decryption.
    sim.filter = Box::new(|_| true);
    let before = sim.node.counters;
    let late = sim.client.protect(&rtp_packet(0x1111_1111, 500, 60));
    sim.send(Datagram {
        source: client_addr(),
        destination: node_addr(),
        data: late,
    });
    sim.run_for(Duration::from_millis(20)).await;
    assert_eq!(
        sim.node.counters.dropped_before_decrypt,
        before.dropped_before_decrypt + 1
    );
    assert_eq!(sim.node.counters.unprotect_calls, before.unprotect_calls);
    assert_eq!(sim.node.received_rtp.len(), 5);
}

#[tokio::test(start_paused = true)]
async fn data_from_an_unknown_5_tuple_is_dropped_before_decryption() {
    let stranger = addr("127.0.0.1:7000");
    let mut sim = Sim::new(5, None);

    // Before ICE: an SRTP-looking packet and a DTLS-looking record.
    sim.node
        .receive(now(), stranger, node_addr(), &rtp_packet(9, 1, 40));
    sim.node.receive(
        now(),
        stranger,
        node_addr(),
        &[22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1],
    );
    assert_eq!(sim.node.counters.dropped_before_decrypt, 1);
    assert_eq!(sim.node.counters.dtls_wrong_tuple, 1);
    assert_eq!(sim.node.counters.dtls_in, 0);
    assert_eq!(sim.node.counters.unprotect_calls, 0);

    sim.connect().await;
    sim.exchange_media(1, 3).await;

    // A correctly protected packet replayed from a stranger is never decrypted: the same
    // bytes from the selected 5-tuple afterwards still pass the replay check.
    let plain = rtp_packet(0x1111_1111, 10, 70);
    let protected = sim.client.protect(&plain);
    let before = sim.node.counters;
    sim.node.receive(now(), stranger, node_addr(), &protected);
    assert_eq!(
        sim.node.counters.dropped_before_decrypt,
        before.dropped_before_decrypt + 1
    );
    assert_eq!(sim.node.counters.unprotect_calls, before.unprotect_calls);
    sim.node
        .receive(now(), client_addr(), node_addr(), &protected);
    assert_eq!(
        sim.node.counters.unprotect_calls,
        before.unprotect_calls + 1
    );
    assert_eq!(sim.node.counters.unprotect_failures, 0);
    assert_eq!(sim.node.received_rtp.last(), Some(&plain));
    // A stranger's STUN without credentials does not change the selected pair.
    assert_eq!(
        sim.node.agent.selected_pair(),
        Some((node_addr(), client_addr()))
    );
}

#[tokio::test(start_paused = true)]
async fn runs_are_deterministic_in_ice_timing() {
    // Certificates and DTLS randoms are not seeded, but ICE timing and the selected pairs
    // are the same for the same seed.
    let a = Sim::connected(6).await;
    let b = Sim::connected(6).await;
    let events = |s: &Sim| -> Vec<(Duration, IceEvent)> {
        s.client
            .events
            .iter()
            .chain(&s.node.events)
            .map(|(at, e)| (*at - s.start, e.clone()))
            .collect()
    };
    assert_eq!(events(&a), events(&b));
    assert_eq!(
        a.node.agent.local_credentials(),
        b.node.agent.local_credentials()
    );
}
