//! In-process tests of the sans-IO ICE agent: two agents over a simulated network with
//! injected time and seeded RNGs. No sockets, no sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use relais_rtp::stun::{StunKey, StunMessage, StunWriter};
use relais_transport::ice::{
    IceAgent, IceConfig, IceCredentials, IceEvent, IceRole, IceState, Receive, Transmit,
};

const HOST_PRIORITY: u32 = 0x7EFF_FFFF;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Which agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

/// One datagram seen on the simulated wire.
#[derive(Debug, Clone)]
struct Logged {
    at: Instant,
    from: Side,
    transmit: Transmit,
    dropped: bool,
}

impl Logged {
    fn delivered(&self) -> bool {
        !self.dropped
    }
}

type Filter = Box<dyn FnMut(Side, &Transmit, Instant) -> bool>;

/// Two agents, a wire with fixed latency, and a drop filter.
struct Sim {
    start: Instant,
    now: Instant,
    a: IceAgent,
    b: IceAgent,
    a_addrs: Vec<SocketAddr>,
    b_addrs: Vec<SocketAddr>,
    latency: Duration,
    in_flight: Vec<(Instant, Side, Transmit)>,
    /// Returns true to deliver.
    filter: Filter,
    log: Vec<Logged>,
    a_events: Vec<(Instant, IceEvent)>,
    b_events: Vec<(Instant, IceEvent)>,
    /// Last time a datagram was delivered to A / to B.
    last_rx_a: Option<Instant>,
    last_rx_b: Option<Instant>,
}

impl Sim {
    fn new(
        start: Instant,
        a: IceAgent,
        a_addrs: &[SocketAddr],
        b: IceAgent,
        b_addrs: &[SocketAddr],
    ) -> Self {
        Sim {
            start,
            now: start,
            a,
            b,
            a_addrs: a_addrs.to_vec(),
            b_addrs: b_addrs.to_vec(),
            latency: Duration::from_millis(10),
            in_flight: Vec::new(),
            filter: Box::new(|_, _, _| true),
            log: Vec::new(),
            a_events: Vec::new(),
            b_events: Vec::new(),
            last_rx_a: None,
            last_rx_b: None,
        }
    }

    fn agent(&mut self, side: Side) -> &mut IceAgent {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// Run the simulation until `deadline` (absolute).
    fn run_until(&mut self, deadline: Instant) {
        let mut iterations = 0u32;
        loop {
            iterations += 1;
            assert!(iterations < 1_000_000, "simulation does not make progress");
            let mut progressed = false;
            for side in [Side::A, Side::B] {
                while let Some(t) = self.agent(side).poll_transmit() {
                    progressed = true;
                    let deliver = (self.filter)(side, &t, self.now);
                    self.log.push(Logged {
                        at: self.now,
                        from: side,
                        transmit: t.clone(),
                        dropped: !deliver,
                    });
                    if deliver {
                        self.in_flight.push((self.now + self.latency, side, t));
                    }
                }
            }
            let now = self.now;
            let (due, later): (Vec<_>, Vec<_>) =
                self.in_flight.drain(..).partition(|(at, _, _)| *at <= now);
            self.in_flight = later;
            for (_, from, t) in due {
                progressed = true;
                let to = if self.a_addrs.contains(&t.destination) {
                    Side::A
                } else if self.b_addrs.contains(&t.destination) {
                    Side::B
                } else {
                    continue;
                };
                assert_ne!(to, from);
                match to {
                    Side::A => self.last_rx_a = Some(now),
                    Side::B => self.last_rx_b = Some(now),
                }
                self.agent(to).handle_receive(
                    now,
                    Receive {
                        source: t.source,
                        destination: t.destination,
                        datagram: &t.contents,
                    },
                );
            }
            for side in [Side::A, Side::B] {
                if self.agent(side).poll_timeout().is_some_and(|t| t <= now) {
                    progressed = true;
                    self.agent(side).handle_timeout(now);
                }
            }
            while let Some(e) = self.a.poll_event() {
                self.a_events.push((now, e));
            }
            while let Some(e) = self.b.poll_event() {
                self.b_events.push((now, e));
            }
            if progressed {
                continue;
            }
            let next = self
                .in_flight
                .iter()
                .map(|(at, _, _)| *at)
                .chain(self.a.poll_timeout())
                .chain(self.b.poll_timeout())
                .min();
            match next {
                Some(next) if next <= deadline => self.now = next.max(self.now),
                _ => {
                    self.now = deadline;
                    return;
                }
            }
        }
    }

    fn run_for(&mut self, d: Duration) {
        let deadline = self.now + d;
        self.run_until(deadline);
    }

    fn events(&self, side: Side) -> Vec<IceEvent> {
        let list = match side {
            Side::A => &self.a_events,
            Side::B => &self.b_events,
        };
        list.iter().map(|(_, e)| e.clone()).collect()
    }

    fn sent_by(&self, side: Side) -> impl Iterator<Item = &Logged> {
        self.log.iter().filter(move |l| l.from == side)
    }
}

fn agent(config: IceConfig, seed: u64, now: Instant) -> IceAgent {
    IceAgent::new(config, &mut StdRng::seed_from_u64(seed), now)
}

fn exchange_credentials(a: &mut IceAgent, b: &mut IceAgent) {
    let ca = a.local_credentials().clone();
    let cb = b.local_credentials().clone();
    a.set_remote_credentials(cb);
    b.set_remote_credentials(ca);
}

const NODE: &str = "10.0.0.1:10000";
const CLIENT: &str = "192.168.1.2:50000";

/// A lite node (A) and a controlling client (B) with the given addresses.
fn lite_pair(start: Instant, node: SocketAddr, client: &[SocketAddr], seed: u64) -> Sim {
    let mut node_agent = agent(IceConfig::lite(), seed, start);
    let mut client_agent = agent(IceConfig::controlling(), seed + 1000, start);
    exchange_credentials(&mut node_agent, &mut client_agent);
    for c in client {
        client_agent.add_local_candidate(*c).unwrap();
    }
    client_agent
        .add_remote_candidate(node, HOST_PRIORITY)
        .unwrap();
    Sim::new(start, node_agent, &[node], client_agent, client)
}

fn connected_lite_sim(seed: u64) -> Sim {
    let start = Instant::now();
    let mut sim = lite_pair(start, addr(NODE), &[addr(CLIENT)], seed);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.a.selected_pair(), Some((addr(NODE), addr(CLIENT))));
    assert_eq!(sim.b.selected_pair(), Some((addr(CLIENT), addr(NODE))));
    sim
}

/// A Binding request as a controlling client would send it.
fn request(username: &str, pwd: &str, use_candidate: bool, tid: [u8; 12]) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let mut w = StunWriter::binding_request(&mut buf, tid).unwrap();
    w.username(username.as_bytes())
        .unwrap()
        .priority(0x6E00_01FF)
        .unwrap()
        .ice_controlling(42)
        .unwrap();
    if use_candidate {
        w.use_candidate().unwrap();
    }
    w.message_integrity(&StunKey::new(pwd.as_bytes()))
        .unwrap()
        .fingerprint()
        .unwrap();
    let len = w.finish();
    buf.truncate(len);
    buf
}

fn deliver(agent: &mut IceAgent, now: Instant, source: SocketAddr, dest: SocketAddr, data: &[u8]) {
    agent.handle_receive(
        now,
        Receive {
            source,
            destination: dest,
            datagram: data,
        },
    );
}

fn drain_transmits(agent: &mut IceAgent) -> Vec<Transmit> {
    std::iter::from_fn(|| agent.poll_transmit()).collect()
}

#[test]
fn lite_and_controlling_connect_with_correct_usernames_and_integrity() {
    let start = Instant::now();
    // The client has two unreachable extra candidates on the node side, so pacing and the
    // nomination delay are exercised.
    let mut sim = lite_pair(start, addr(NODE), &[addr(CLIENT)], 1);
    sim.b
        .add_remote_candidate(addr("10.9.9.9:1"), HOST_PRIORITY - 1)
        .unwrap();
    sim.b
        .add_remote_candidate(addr("10.9.9.9:2"), HOST_PRIORITY - 2)
        .unwrap();
    sim.run_for(Duration::from_secs(2));

    assert_eq!(sim.a.state(), IceState::Connected);
    assert_eq!(sim.b.state(), IceState::Connected);
    assert_eq!(sim.a.selected_pair(), Some((addr(NODE), addr(CLIENT))));
    assert_eq!(sim.b.selected_pair(), Some((addr(CLIENT), addr(NODE))));
    assert!(sim.a.can_send() && sim.b.can_send());
    assert!(sim.a.is_valid_source(addr(NODE), addr(CLIENT)));
    assert!(!sim.a.is_valid_source(addr(NODE), addr("192.168.1.2:50001")));
    assert!(sim
        .events(Side::A)
        .contains(&IceEvent::SelectedPairChanged {
            local: addr(NODE),
            remote: addr(CLIENT)
        }));
    assert!(sim
        .events(Side::B)
        .contains(&IceEvent::SelectedPairChanged {
            local: addr(CLIENT),
            remote: addr(NODE)
        }));
    assert!(sim
        .events(Side::B)
        .starts_with(&[IceEvent::StateChanged(IceState::Checking)]));

    let node_creds = sim.a.local_credentials().clone();
    let client_creds = sim.b.local_credentials().clone();
    let node_key = StunKey::new(node_creds.pwd.as_bytes());
    let expected_username = format!("{}:{}", node_creds.ufrag, client_creds.ufrag);

    // Every check from the client: USERNAME node:client, integrity with the node's pwd.
    let mut nominations = 0;
    let mut first_sends = Vec::new();
    for l in sim.sent_by(Side::B) {
        let m = StunMessage::parse(&l.transmit.contents).unwrap();
        assert!(m.is_binding_request());
        assert_eq!(m.username_str(), Some(expected_username.as_str()));
        m.verify_message_integrity_with(&node_key).unwrap();
        m.verify_fingerprint().unwrap();
        assert!(m.ice_controlling().is_some());
        assert!(m.priority().is_some());
        if m.use_candidate() {
            nominations += 1;
            assert_eq!(l.transmit.destination, addr(NODE));
        }
        if !m.use_candidate() && !first_sends.iter().any(|(id, _)| *id == m.transaction_id()) {
            first_sends.push((m.transaction_id(), l.at));
        }
    }
    assert_eq!(
        nominations, 1,
        "regular nomination: exactly one USE-CANDIDATE check"
    );
    // Ordinary checks are paced by Ta (the nomination is sent on its own).
    let times: Vec<Instant> = first_sends.iter().map(|(_, t)| *t).take(3).collect();
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(50),
            "{:?}",
            w[1] - w[0]
        );
    }

    // Every answer from the node: success, XOR-MAPPED-ADDRESS = the client, signed with the
    // node's pwd. The lite node never sends a request.
    let answers: Vec<_> = sim.sent_by(Side::A).collect();
    assert!(!answers.is_empty());
    for l in answers {
        let m = StunMessage::parse(&l.transmit.contents).unwrap();
        assert!(m.is_binding_success(), "lite sends only responses");
        assert_eq!(m.xor_mapped_address(), Some(addr(CLIENT)));
        m.verify_message_integrity_with(&node_key).unwrap();
        m.verify_fingerprint().unwrap();
        assert_eq!(l.transmit.source, addr(NODE));
    }
}

#[test]
fn controlling_node_with_controlled_full_peer_dual_stack() {
    let start = Instant::now();
    let node_addrs = [addr("10.0.0.1:10000"), addr("[2001:db8::1]:10000")];
    let peer_addrs = [addr("192.168.1.2:50000"), addr("[2001:db8::2]:50000")];
    let mut node = agent(IceConfig::controlling(), 7, start);
    let mut peer = agent(IceConfig::controlled(), 8, start);
    exchange_credentials(&mut node, &mut peer);
    for a in node_addrs {
        node.add_local_candidate(a).unwrap();
        peer.add_remote_candidate(a, HOST_PRIORITY).unwrap();
    }
    // The peer prefers its IPv6 candidate.
    peer.add_local_candidate(peer_addrs[1]).unwrap();
    peer.add_local_candidate(peer_addrs[0]).unwrap();
    node.add_remote_candidate(peer_addrs[1], HOST_PRIORITY)
        .unwrap();
    node.add_remote_candidate(peer_addrs[0], HOST_PRIORITY - 256)
        .unwrap();
    let mut sim = Sim::new(start, node, &node_addrs, peer, &peer_addrs);
    sim.run_for(Duration::from_secs(3));

    assert_eq!(sim.a.state(), IceState::Connected);
    assert_eq!(sim.b.state(), IceState::Connected);
    let selected = sim.a.selected_pair().unwrap();
    assert_eq!(sim.b.selected_pair(), Some((selected.1, selected.0)));
    assert_eq!(sim.a.role(), IceRole::Controlling);
    assert_eq!(sim.b.role(), IceRole::Controlled);
    // Same family only.
    assert_eq!(selected.0.is_ipv4(), selected.1.is_ipv4());

    // The controlled peer checks too, with ICE-CONTROLLED and USERNAME node:peer.
    let expected = format!(
        "{}:{}",
        sim.a.local_credentials().ufrag,
        sim.b.local_credentials().ufrag
    );
    let node_key = StunKey::new(sim.a.local_credentials().pwd.as_bytes());
    let peer_requests: Vec<_> = sim
        .sent_by(Side::B)
        .filter_map(|l| {
            let m = StunMessage::parse(&l.transmit.contents).unwrap();
            m.is_binding_request().then(|| {
                assert_eq!(m.username_str(), Some(expected.as_str()));
                assert!(m.ice_controlled().is_some() && m.ice_controlling().is_none());
                assert!(!m.use_candidate());
                m.verify_message_integrity_with(&node_key).unwrap();
            })
        })
        .collect();
    assert!(!peer_requests.is_empty());

    // Consent keeps both connected for a minute.
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.a.state(), IceState::Connected);
    assert_eq!(sim.b.state(), IceState::Connected);
    assert!(sim.a.stats().requests_sent > 10);
}

#[test]
fn role_conflict_between_two_controlling_agents_resolves() {
    let start = Instant::now();
    let (x, y) = (addr("10.0.0.1:10000"), addr("10.0.0.2:20000"));
    let mut a = agent(IceConfig::controlling(), 21, start);
    let mut b = agent(IceConfig::controlling(), 22, start);
    exchange_credentials(&mut a, &mut b);
    a.add_local_candidate(x).unwrap();
    a.add_remote_candidate(y, HOST_PRIORITY).unwrap();
    b.add_local_candidate(y).unwrap();
    b.add_remote_candidate(x, HOST_PRIORITY).unwrap();
    let mut sim = Sim::new(start, a, &[x], b, &[y]);
    sim.run_for(Duration::from_secs(3));
    let roles = [sim.a.role(), sim.b.role()];
    assert!(roles.contains(&IceRole::Controlling) && roles.contains(&IceRole::Controlled));
    assert_eq!(sim.a.selected_pair(), Some((x, y)));
    assert_eq!(sim.b.selected_pair(), Some((y, x)));
    let changed = sim
        .events(Side::A)
        .into_iter()
        .chain(sim.events(Side::B))
        .filter(|e| matches!(e, IceEvent::RoleChanged { .. }))
        .count();
    assert_eq!(changed, 1);
}

#[test]
fn consent_expires_30s_after_the_last_valid_binding() {
    let mut sim = connected_lite_sim(3);
    sim.run_for(Duration::from_secs(20));
    assert_eq!(sim.a.state(), IceState::Connected);
    sim.filter = Box::new(|_, _, _| false);
    sim.run_for(Duration::from_millis(100));
    let last_a = sim.last_rx_a.unwrap();
    let last_b = sim.last_rx_b.unwrap();
    let tolerance = Duration::from_millis(100);
    let mut checks = [(last_a, Side::A), (last_b, Side::B)];
    checks.sort_by_key(|(t, _)| *t);
    for (last, side) in checks {
        sim.run_until(last + Duration::from_secs(30) - tolerance);
        let agent = sim.agent(side);
        assert!(agent.can_send(), "{side:?} still has consent before 30 s");
        assert_ne!(agent.state(), IceState::Failed);
        assert!(!sim.events(side).contains(&IceEvent::ConsentExpired));
    }
    for (last, side) in checks {
        sim.run_until(last.max(sim.now) + Duration::from_secs(30) + tolerance);
        let agent = sim.agent(side);
        assert!(!agent.can_send(), "{side:?} lost consent after 30 s");
        assert_eq!(agent.state(), IceState::Failed);
        assert!(agent.poll_transmit().is_none());
        assert!(agent.poll_timeout().is_none());
        assert!(sim.events(side).contains(&IceEvent::ConsentExpired));
        assert!(sim
            .events(side)
            .contains(&IceEvent::StateChanged(IceState::Disconnected)));
    }
    // Nothing more is sent after expiry.
    let sent = sim.log.len();
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.log.len(), sent);
}

#[test]
fn nat_rebinding_needs_a_valid_request_with_use_candidate() {
    let mut sim = connected_lite_sim(4);
    let now = sim.now;
    let node_creds = sim.a.local_credentials().clone();
    let client_creds = sim.b.local_credentials().clone();
    let username = format!("{}:{}", node_creds.ufrag, client_creds.ufrag);
    let rebound = addr("192.168.1.2:50123");

    // Wrong password from the new port: dropped, unanswered, counted, no switch.
    let before = sim.a.stats();
    let forged = request(&username, "WrongPasswordWrongPassword", true, [1; 12]);
    deliver(&mut sim.a, now, rebound, addr(NODE), &forged);
    assert!(drain_transmits(&mut sim.a).is_empty());
    assert_eq!(
        sim.a.stats().dropped_bad_integrity,
        before.dropped_bad_integrity + 1
    );
    assert_eq!(sim.a.selected_pair(), Some((addr(NODE), addr(CLIENT))));

    // Valid but without USE-CANDIDATE: answered, no switch.
    let plain = request(&username, &node_creds.pwd, false, [2; 12]);
    deliver(&mut sim.a, now, rebound, addr(NODE), &plain);
    let out = drain_transmits(&mut sim.a);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].destination, rebound);
    assert_eq!(sim.a.selected_pair(), Some((addr(NODE), addr(CLIENT))));

    // Valid with USE-CANDIDATE: takes over.
    let nominate = request(&username, &node_creds.pwd, true, [3; 12]);
    deliver(&mut sim.a, now, rebound, addr(NODE), &nominate);
    let out = drain_transmits(&mut sim.a);
    assert_eq!(out.len(), 1);
    let m = StunMessage::parse(&out[0].contents).unwrap();
    assert_eq!(m.xor_mapped_address(), Some(rebound));
    assert_eq!(sim.a.selected_pair(), Some((addr(NODE), rebound)));
    let events: Vec<_> = std::iter::from_fn(|| sim.a.poll_event()).collect();
    assert_eq!(
        events,
        vec![IceEvent::SelectedPairChanged {
            local: addr(NODE),
            remote: rebound
        }]
    );
    assert_eq!(sim.a.state(), IceState::Connected);
}

#[test]
fn invalid_input_is_dropped_unanswered_and_counted() {
    let start = Instant::now();
    let mut node = agent(IceConfig::lite(), 5, start);
    let client = IceCredentials::new("clnt", "ClientPasswordClientPassword").unwrap();
    node.set_remote_credentials(client.clone());
    let creds = node.local_credentials().clone();
    let good_user = format!("{}:{}", creds.ufrag, client.ufrag);
    let (src, dst) = (addr(CLIENT), addr(NODE));

    let wrong_pwd = request(&good_user, "ThisIsNotTheRightPassword", true, [1; 12]);
    let wrong_local_ufrag = request(&format!("nope:{}", client.ufrag), &creds.pwd, true, [2; 12]);
    let wrong_remote_ufrag = request(&format!("{}:other", creds.ufrag), &creds.pwd, true, [3; 12]);
    let no_colon = request(&creds.ufrag, &creds.pwd, true, [4; 12]);
    let mut bad_fingerprint = request(&good_user, &creds.pwd, true, [5; 12]);
    *bad_fingerprint.last_mut().unwrap() ^= 1;
    let garbage = vec![0xFFu8; 100];
    let mut truncated = request(&good_user, &creds.pwd, true, [6; 12]);
    truncated.truncate(30);
    // A success response no transaction of ours waits for.
    let mut buf = [0u8; 128];
    let mut w = StunWriter::binding_success(&mut buf, [7; 12]).unwrap();
    w.xor_mapped_address(dst).unwrap().fingerprint().unwrap();
    let len = w.finish();
    let stray_response = buf[..len].to_vec();

    for d in [
        &wrong_pwd,
        &wrong_local_ufrag,
        &wrong_remote_ufrag,
        &no_colon,
        &bad_fingerprint,
        &garbage,
        &truncated,
        &stray_response,
        &Vec::new(),
    ] {
        deliver(&mut node, start, src, dst, d);
    }
    assert!(drain_transmits(&mut node).is_empty());
    assert_eq!(node.selected_pair(), None);
    assert_eq!(node.state(), IceState::New);
    assert!(node.poll_event().is_none());
    let s = node.stats();
    assert_eq!(s.dropped_bad_integrity, 1);
    assert_eq!(s.dropped_bad_username, 3);
    assert_eq!(s.dropped_bad_fingerprint, 1);
    assert_eq!(s.dropped_malformed, 3);
    assert_eq!(s.dropped_unexpected, 1);
    assert_eq!(s.requests_received, 0);
    assert_eq!(s.responses_sent, 0);

    // And a good one is answered.
    let good = request(&good_user, &creds.pwd, true, [8; 12]);
    deliver(&mut node, start, src, dst, &good);
    assert_eq!(drain_transmits(&mut node).len(), 1);
    assert_eq!(node.selected_pair(), Some((dst, src)));
}

#[test]
fn ipv6_pair_connects() {
    let start = Instant::now();
    let node = addr("[2001:db8::1]:10000");
    let client_v6 = addr("[2001:db8::2]:50000");
    // The client's IPv4 candidate cannot pair with the IPv6 node.
    let mut sim = lite_pair(start, node, &[addr(CLIENT), client_v6], 6);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.a.selected_pair(), Some((node, client_v6)));
    assert_eq!(sim.b.selected_pair(), Some((client_v6, node)));
    assert!(sim.sent_by(Side::B).all(|l| l.transmit.source == client_v6));
    let m = StunMessage::parse(&sim.sent_by(Side::A).next().unwrap().transmit.contents).unwrap();
    assert_eq!(m.xor_mapped_address(), Some(client_v6));
}

#[test]
fn retransmits_lost_checks_and_still_connects() {
    let start = Instant::now();
    let mut sim = lite_pair(start, addr(NODE), &[addr(CLIENT)], 9);
    let mut dropped = 0;
    sim.filter = Box::new(move |side, _, _| {
        if side == Side::B && dropped < 3 {
            dropped += 1;
            return false;
        }
        true
    });
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.sent_by(Side::B).filter(|l| !l.delivered()).count(), 3);
    assert_eq!(sim.b.state(), IceState::Connected);
    assert_eq!(sim.a.selected_pair(), Some((addr(NODE), addr(CLIENT))));
    assert!(sim.b.stats().retransmissions >= 3);
}

#[test]
fn gives_up_when_the_peer_never_answers() {
    let start = Instant::now();
    let mut sim = lite_pair(start, addr(NODE), &[addr(CLIENT)], 10);
    sim.filter = Box::new(|_, _, _| false);
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.b.state(), IceState::Failed);
    assert_eq!(sim.b.selected_pair(), None);
    assert!(!sim.b.can_send());
    let sends: Vec<Instant> = sim.sent_by(Side::B).map(|l| l.at).collect();
    assert_eq!(sends.len(), 7, "one pair, seven sends");
    // RTO doubles from 250 ms, capped at 3 s.
    let gaps: Vec<u64> = sends
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis() as u64)
        .collect();
    assert_eq!(gaps, vec![250, 500, 1000, 2000, 3000, 3000]);
    let failed_at = sim
        .b_events
        .iter()
        .find(|(_, e)| *e == IceEvent::StateChanged(IceState::Failed))
        .map(|(t, _)| *t)
        .unwrap();
    assert!(failed_at - start < Duration::from_secs(15));
    assert!(sim.sent_by(Side::A).next().is_none());
}

#[test]
fn ice_restart_is_make_before_break() {
    let mut sim = connected_lite_sim(11);
    let old_node = sim.a.local_credentials().clone();
    let old_client = sim.b.local_credentials().clone();
    let new_node = sim.a.restart().unwrap();
    let new_client = sim.b.restart().unwrap();
    assert_ne!(new_node, old_node);
    assert_ne!(new_client, old_client);
    // Until the new remote credentials arrive, consent on the old pair goes on.
    sim.run_for(Duration::from_secs(8));
    assert!(sim.a.can_send() && sim.b.can_send());
    sim.a.set_remote_credentials(new_client.clone());
    sim.b.set_remote_credentials(new_node.clone());
    let changes_before = sim.events(Side::B).len();
    sim.run_for(Duration::from_secs(40));
    assert_eq!(sim.a.state(), IceState::Connected);
    assert_eq!(sim.b.state(), IceState::Connected);
    assert_eq!(sim.a.selected_pair(), Some((addr(NODE), addr(CLIENT))));
    // The client re-nominated (with the new credentials) on the same pair: no change event.
    assert!(!sim.events(Side::B)[changes_before..]
        .iter()
        .any(|e| matches!(e, IceEvent::SelectedPairChanged { .. })));
    let new_user = format!("{}:{}", new_node.ufrag, new_client.ufrag);
    let last = sim.sent_by(Side::B).last().unwrap();
    let m = StunMessage::parse(&last.transmit.contents).unwrap();
    assert_eq!(m.username_str(), Some(new_user.as_str()));
    // The old credentials are no longer accepted.
    let before = sim.a.stats().dropped_bad_username;
    let old = request(
        &format!("{}:{}", old_node.ufrag, old_client.ufrag),
        &old_node.pwd,
        true,
        [9; 12],
    );
    let now = sim.now;
    deliver(&mut sim.a, now, addr(CLIENT), addr(NODE), &old);
    assert_eq!(sim.a.stats().dropped_bad_username, before + 1);
}

#[test]
fn close_stops_everything() {
    let mut sim = connected_lite_sim(12);
    sim.b.close();
    assert_eq!(sim.b.state(), IceState::Closed);
    assert!(!sim.b.can_send());
    assert!(sim.b.poll_timeout().is_none());
    assert!(sim.b.add_remote_candidate(addr("10.0.0.9:9"), 1).is_err());
}

#[test]
fn runs_are_deterministic() {
    let a = connected_lite_sim(13);
    let b = connected_lite_sim(13);
    let pa: Vec<_> = a
        .log
        .iter()
        .map(|l| (l.at - a.start, l.transmit.clone()))
        .collect();
    let pb: Vec<_> = b
        .log
        .iter()
        .map(|l| (l.at - b.start, l.transmit.clone()))
        .collect();
    assert_eq!(pa, pb);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary datagrams, and valid requests with one byte changed, never panic and never
    /// move the selected pair of a connected lite node or a connected controlling client.
    #[test]
    fn arbitrary_datagrams_never_change_the_selected_pair(
        datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20),
        flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..10),
        port in 1u16..,
    ) {
        let mut sim = connected_lite_sim(14);
        let now = sim.now;
        let source = SocketAddr::from(([203, 0, 113, 7], port));
        let node_creds = sim.a.local_credentials().clone();
        let username = format!("{}:{}", node_creds.ufrag, sim.b.local_credentials().ufrag);
        let valid = request(&username, &node_creds.pwd, true, [5; 12]);
        let selected_a = sim.a.selected_pair();
        let selected_b = sim.b.selected_pair();
        for d in &datagrams {
            deliver(&mut sim.a, now, source, addr(NODE), d);
            deliver(&mut sim.b, now, source, addr(CLIENT), d);
        }
        for (index, xor) in &flips {
            let mut d = valid.clone();
            let i = index % d.len();
            d[i] ^= xor;
            deliver(&mut sim.a, now, source, addr(NODE), &d);
        }
        prop_assert_eq!(sim.a.selected_pair(), selected_a);
        prop_assert_eq!(sim.b.selected_pair(), selected_b);
        prop_assert_eq!(sim.a.stats().requests_received, sim.a.stats().responses_sent);
        sim.run_for(Duration::from_secs(10));
        prop_assert_eq!(sim.a.selected_pair(), selected_a);
        prop_assert_eq!(sim.b.selected_pair(), selected_b);
        prop_assert!(sim.a.can_send() && sim.b.can_send());
    }
}
