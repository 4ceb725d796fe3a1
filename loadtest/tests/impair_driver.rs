//! The driver's impairment stages with real sockets on loopback: four participants in one
//! driver, connected in pairs directly to each other (no node: one side controls ICE and is
//! the DTLS client, the other is controlled and the DTLS server). One participant of the
//! first pair is impaired — 10 % loss and 30 ms on what it receives, 20 ms on what it sends —
//! through ICE, DTLS and media; the second pair is not. Every participant sends 500 RTP
//! packets to its peer from the application's timer, and the receivers' arrival times are
//! compared with the send times. A second run adds duplication, reordering, jitter and a rate
//! limit, to check that every copy still arrives once, from the right address.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use relais_loadtest::impair::{ImpairmentConfig, ImpairmentStats};
use relais_loadtest::participant::driver::{bind, impairment_seed, DriverStats};
use relais_loadtest::participant::{
    Application, Driver, Outbox, Participant, ParticipantConfig, ParticipantEvent, ParticipantId,
    ParticipantStats, ReceivedRtp, RemoteTransport,
};
use relais_srtp::DtlsRole;
use relais_transport::dtls_srtp::NodeCertificate;
use relais_transport::ice::IceConfig;

/// RTP packets each participant sends.
const PACKETS: u16 = 500;
/// Between two packets of one sender.
const INTERVAL: Duration = Duration::from_millis(2);
/// The impaired participant's receive delay (with 10 % loss) and send delay.
const DOWN_DELAY: Duration = Duration::from_millis(30);
const UP_DELAY: Duration = Duration::from_millis(20);
/// What loopback, the runtime's timer (1 ms resolution) and a busy machine may add.
const TOLERANCE: Duration = Duration::from_millis(25);
/// The participant behind the impairment (index), and its peer.
const IMPAIRED: usize = 1;
const IMPAIRED_PEER: usize = 0;
const OPUS_PT: u8 = 111;

fn ssrc(index: usize) -> u32 {
    1000 + index as u32
}

/// A plain RTP packet of `index`'s stream: sequence number `n`, 100 bytes of payload.
fn rtp_packet(index: usize, n: u16) -> Vec<u8> {
    let mut packet = vec![0x80, OPUS_PT];
    packet.extend_from_slice(&n.to_be_bytes());
    packet.extend_from_slice(&(u32::from(n) * 960).to_be_bytes());
    packet.extend_from_slice(&ssrc(index).to_be_bytes());
    packet.extend((0..100u16).map(|k| (k as u8) ^ (n as u8)));
    packet
}

/// One participant's stream: what it sent, when.
struct Sender {
    next: Instant,
    /// Send time of sequence number `n` at `n - 1`.
    sent_at: Vec<Instant>,
}

/// Sends every participant's stream to its peer and records arrivals.
#[derive(Default)]
struct TestApp {
    index: HashMap<ParticipantId, usize>,
    failures: Vec<String>,
    sending: bool,
    senders: HashMap<ParticipantId, Sender>,
    /// Every packet received: (receiver index, sequence number, one-way delay).
    arrivals: Vec<(usize, u16, Duration)>,
    /// Packets from the wrong stream, or never sent.
    unexpected: Vec<String>,
}

impl TestApp {
    fn start(&mut self, now: Instant) {
        self.sending = true;
        for id in self.index.keys() {
            self.senders.insert(
                *id,
                Sender {
                    next: now,
                    sent_at: Vec::new(),
                },
            );
        }
    }
}

/// What the receivers got, taken out of the [`TestApp`] at the end.
struct Arrivals {
    /// Every packet received: (receiver index, sequence number, one-way delay).
    arrivals: Vec<(usize, u16, Duration)>,
    unexpected: Vec<String>,
    failures: Vec<String>,
}

impl Arrivals {
    /// The one-way delays of what `receiver` got, in arrival order.
    fn received(&self, receiver: usize) -> Vec<Duration> {
        self.arrivals
            .iter()
            .filter(|(r, _, _)| *r == receiver)
            .map(|(_, _, delay)| *delay)
            .collect()
    }

    /// Sequence numbers `receiver` got more than once.
    fn duplicates(&self, receiver: usize) -> usize {
        let mut seen = HashSet::new();
        self.arrivals
            .iter()
            .filter(|(r, n, _)| *r == receiver && !seen.insert(*n))
            .count()
    }

    /// Arrivals of `receiver` with a lower sequence number than one before it.
    fn reordered(&self, receiver: usize) -> usize {
        let mut highest = 0;
        let mut count = 0;
        for (_, n, _) in self.arrivals.iter().filter(|(r, _, _)| *r == receiver) {
            if *n < highest {
                count += 1;
            }
            highest = highest.max(*n);
        }
        count
    }
}

/// The peer of participant `index` (0↔1, 2↔3).
fn peer(index: usize) -> usize {
    index ^ 1
}

impl Application for TestApp {
    fn on_rtp(
        &mut self,
        participant: ParticipantId,
        now: Instant,
        packet: &ReceivedRtp<'_>,
        _out: &mut Outbox<'_>,
    ) {
        let receiver = self.index[&participant];
        let sender = peer(receiver);
        if packet.ssrc != ssrc(sender) {
            self.unexpected
                .push(format!("{receiver} got SSRC {}", packet.ssrc));
            return;
        }
        let sender_id = self
            .index
            .iter()
            .find(|(_, i)| **i == sender)
            .map(|(id, _)| *id)
            .unwrap();
        let n = packet.sequence_number;
        let Some(sent) = self
            .senders
            .get(&sender_id)
            .and_then(|s| s.sent_at.get(usize::from(n).wrapping_sub(1)))
        else {
            self.unexpected
                .push(format!("{receiver} got {n}, never sent"));
            return;
        };
        let delay = now.saturating_duration_since(*sent);
        self.arrivals.push((receiver, n, delay));
    }

    fn on_event(
        &mut self,
        participant: ParticipantId,
        _now: Instant,
        event: ParticipantEvent,
        _out: &mut Outbox<'_>,
    ) {
        if let ParticipantEvent::Failed(error) = event {
            self.failures.push(format!("{participant:?}: {error}"));
        }
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        if !self.sending {
            return None;
        }
        self.senders
            .values()
            .filter(|s| s.sent_at.len() < usize::from(PACKETS))
            .map(|s| s.next)
            .min()
    }

    fn on_timeout(&mut self, now: Instant, out: &mut Outbox<'_>) {
        for (id, sender) in &mut self.senders {
            while sender.sent_at.len() < usize::from(PACKETS) && sender.next <= now {
                let n = sender.sent_at.len() as u16 + 1;
                // Recorded before sending: the send is part of the measured path.
                sender.sent_at.push(now);
                out.send_rtp(*id, &rtp_packet(self.index[id], n)).unwrap();
                sender.next += INTERVAL;
            }
        }
    }
}

async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < until, "{what}: not in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The impairment of the participant at [`IMPAIRED`], and how closely it verifies.
struct Case {
    up: ImpairmentConfig,
    down: ImpairmentConfig,
    /// [`ParticipantConfig::verify_one_in`] (0 when duplicates are expected: SRTP replay
    /// protection refuses the second copy).
    verify_one_in: u32,
}

/// What a run saw: the application, the impaired participant's stage and participant
/// counters, the driver's, and the unimpaired participants' impairment stats (must be none).
struct Outcome {
    app: Arrivals,
    up: ImpairmentStats,
    down: ImpairmentStats,
    driver: DriverStats,
    impaired: ParticipantStats,
    unimpaired_stats: Vec<Option<(ImpairmentStats, ImpairmentStats)>>,
}

/// Datagrams a stage dropped, for any reason.
fn dropped(stats: &ImpairmentStats) -> u64 {
    stats.dropped_random + stats.dropped_burst + stats.dropped_queue
}

/// Whether nothing is left in a stage.
fn settled(stats: &ImpairmentStats) -> bool {
    stats.pushed + stats.duplicated == stats.released + dropped(stats)
}

/// Runs `case` on a current-thread runtime, bounded in time.
fn run(case: Case) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        tokio::time::timeout(Duration::from_secs(60), scenario(case))
            .await
            .expect("the test timed out")
    })
}

async fn scenario(case: Case) -> Outcome {
    let driver = Driver::new(TestApp::default());
    let timer_loop = tokio::task::spawn_local({
        let driver = driver.clone();
        async move { driver.run().await }
    });

    // Four participants; even ones control ICE and are DTLS clients.
    let mut ids = Vec::new();
    let mut transports = Vec::new();
    for index in 0..4usize {
        let socket = bind("127.0.0.1".parse().unwrap()).await.unwrap();
        let ice = if index % 2 == 0 {
            IceConfig::controlling()
        } else {
            IceConfig::controlled()
        };
        let participant = Participant::new(
            ParticipantConfig {
                ice,
                verify_one_in: case.verify_one_in,
                // No reports during the test: the media is what the counters are about.
                report_interval: Duration::from_secs(3600),
                rtcp_ssrc: ssrc(index),
                ..ParticipantConfig::default()
            },
            socket.local_addr().unwrap(),
            NodeCertificate::generate().unwrap(),
            &mut rand::rng(),
            Instant::now(),
        )
        .unwrap();
        transports.push(participant.local_transport());
        let id = driver.add(participant, socket).unwrap();
        driver.with(|app, _| app.index.insert(id, index)).unwrap();
        ids.push(id);
    }
    // Before ICE starts: the checks and the DTLS handshake cross the stages too.
    let seed = impairment_seed(46_105_641, IMPAIRED as u64);
    assert!(driver.set_impairment(ids[IMPAIRED], case.up, case.down, seed));
    assert!(!driver.set_impairment(ParticipantId(99), case.up, case.down, seed));
    for index in 0..4usize {
        let other = &transports[peer(index)];
        let remote = RemoteTransport {
            credentials: other.credentials.clone(),
            candidates: other.candidates.clone(),
            fingerprint: other.fingerprint.clone(),
            dtls_role: if index % 2 == 0 {
                DtlsRole::Client
            } else {
                DtlsRole::Server
            },
        };
        driver
            .with_participant(ids[index], |p| p.set_remote(Instant::now(), remote))
            .unwrap()
            .unwrap();
    }
    wait_until("ICE and DTLS", Duration::from_secs(30), || {
        driver
            .with(|app, out| {
                assert!(app.failures.is_empty(), "{:?}", app.failures);
                ids.iter()
                    .all(|id| out.participant(*id).is_some_and(|p| p.is_connected()))
            })
            .unwrap_or(false)
    })
    .await;
    // Connected participants may still be finishing the handshake's last datagrams: let the
    // peers settle before measuring.
    tokio::time::sleep(Duration::from_millis(200)).await;

    driver.with(|app, out| app.start(out.now())).unwrap();
    wait_until("all packets sent", Duration::from_secs(10), || {
        driver
            .with(|app, _| {
                app.senders
                    .values()
                    .all(|s| s.sent_at.len() == usize::from(PACKETS))
            })
            .unwrap_or(false)
    })
    .await;
    // What is still in the stages and on the wire.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The counters, once nothing is in flight (a consent check may be crossing a stage).
    // One snapshot: no await between the reads, so nothing runs in between.
    let until = Instant::now() + Duration::from_secs(5);
    let (up, down, driver_stats, impaired) = loop {
        let (up, down) = driver.impairment_stats(ids[IMPAIRED]).unwrap();
        let impaired = driver
            .with(|_, out| *out.participant(ids[IMPAIRED]).unwrap().stats())
            .unwrap();
        let driver_stats = driver.stats().unwrap();
        if (settled(&up) && settled(&down)) || Instant::now() > until {
            break (up, down, driver_stats, impaired);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    eprintln!("up {up:?}\ndown {down:?}\ndriver {driver_stats:?}\nparticipant {impaired:?}");
    let unimpaired_stats = [0, 2, 3]
        .iter()
        .map(|index| driver.impairment_stats(ids[*index]))
        .collect();
    // The same through the outbox, from inside the driver.
    driver
        .with(|_, out| {
            assert!(out.impairment_stats(ids[IMPAIRED]).is_some());
            assert_eq!(out.impairment_stats(ids[2]), None);
        })
        .unwrap();

    let app = driver
        .with(|app, _| Arrivals {
            arrivals: std::mem::take(&mut app.arrivals),
            unexpected: std::mem::take(&mut app.unexpected),
            failures: std::mem::take(&mut app.failures),
        })
        .unwrap();
    driver.shutdown();
    timer_loop.await.unwrap();
    Outcome {
        app,
        up,
        down,
        driver: driver_stats,
        impaired,
        unimpaired_stats,
    }
}

/// The counters every case must satisfy: the stages' own against the driver's totals, and
/// against what the participant was handed.
fn check_counters(outcome: &Outcome) {
    let Outcome {
        up,
        down,
        driver,
        impaired,
        app,
        unimpaired_stats,
    } = outcome;
    assert!(app.failures.is_empty(), "{:?}", app.failures);
    assert!(app.unexpected.is_empty(), "{:?}", app.unexpected);
    assert!(unimpaired_stats.iter().all(Option::is_none));
    assert!(settled(up), "{up:?}");
    assert!(settled(down), "{down:?}");
    assert_eq!(driver.impair_overflow, 0);
    assert_eq!(driver.impair_up_dropped, dropped(up));
    assert_eq!(driver.impair_down_dropped, dropped(down));
    // Every datagram the down stage released reached the participant, once.
    let handled = impaired.rtp_received
        + impaired.rtcp_received
        + impaired.rtcp_failed
        + impaired.stun_received
        + impaired.dtls_received
        + impaired.dropped;
    assert_eq!(handled, down.released, "{impaired:?}");
    assert_eq!(impaired.dropped, 0, "{impaired:?}");
    assert_eq!(impaired.srtp_verify_failed, 0, "{impaired:?}");
    // Only the peer sends it RTP, and the application saw every RTP packet handed over.
    assert_eq!(
        impaired.rtp_received,
        app.received(IMPAIRED).len() as u64,
        "{impaired:?}"
    );
    // Every participant's stream went out in full.
    assert!(up.pushed >= u64::from(PACKETS), "{up:?}");
}

#[test]
fn impaired_participant_loses_and_delays_only_its_own_traffic() {
    let down = ImpairmentConfig::parse_flags("loss=10%,delay=30ms").unwrap();
    assert_eq!(down.delay, DOWN_DELAY);
    let up = ImpairmentConfig {
        delay: UP_DELAY,
        ..ImpairmentConfig::default()
    };
    let outcome = run(Case {
        up,
        down,
        // Every packet decrypted: SRTP must come through the stages intact.
        verify_one_in: 1,
    });
    check_counters(&outcome);
    let Outcome {
        app,
        up,
        down,
        driver,
        ..
    } = &outcome;

    // The impaired receiver: about 10 % lost (binomial over ~500 draws: mean 50, σ 6.7),
    // every packet at least 30 ms late and not much more.
    let delays = app.received(IMPAIRED);
    let lost = usize::from(PACKETS) - delays.len();
    assert!((20..=85).contains(&lost), "{lost} of {PACKETS} lost");
    assert_eq!(app.duplicates(IMPAIRED), 0);
    let (min, max) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
    eprintln!(
        "impaired receiver: {} packets, {min:?}..{max:?}",
        delays.len()
    );
    assert!(*min >= DOWN_DELAY, "a packet arrived after {min:?}");
    assert!(
        *max < DOWN_DELAY + TOLERANCE,
        "a packet arrived after {max:?}"
    );
    // The media lost is part of what the stage dropped (the rest: checks, handshake).
    assert!(lost as u64 <= down.dropped_random, "{down:?}");

    // Its peer receives through the impaired participant's up stage: delayed, not lost.
    let delays = app.received(IMPAIRED_PEER);
    assert_eq!(delays.len(), usize::from(PACKETS));
    let (min, max) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
    eprintln!("its peer: {} packets, {min:?}..{max:?}", delays.len());
    assert!(*min >= UP_DELAY, "a packet arrived after {min:?}");
    assert!(
        *max < UP_DELAY + TOLERANCE,
        "a packet arrived after {max:?}"
    );

    // The other pair, unimpaired in the same driver: nothing lost, nothing held.
    for index in [2, 3] {
        let delays = app.received(index);
        assert_eq!(delays.len(), usize::from(PACKETS), "participant {index}");
        assert_eq!(app.duplicates(index), 0);
        let max = delays.iter().max().unwrap();
        eprintln!("unimpaired {index}: {} packets, max {max:?}", delays.len());
        assert!(
            *max < TOLERANCE,
            "participant {index}: a packet took {max:?}"
        );
    }

    // Pure loss and delay: every datagram released was delayed, none duplicated.
    assert_eq!(dropped(up), 0);
    assert_eq!((down.dropped_burst, down.dropped_queue), (0, 0));
    assert_eq!((up.duplicated, down.duplicated), (0, 0));
    assert_eq!(driver.impair_up_delayed, up.released);
    assert_eq!(driver.impair_down_delayed, down.released);
}

#[test]
fn duplicates_reordering_and_rate_limit_keep_every_datagram_addressed() {
    // Duplicates share one buffer and reordered datagrams overtake: the driver must still
    // deliver each copy from the right address, exactly once per copy.
    let down =
        ImpairmentConfig::parse_flags("loss=5%,dup=20%,reorder=20%,delay=10ms,jitter=8ms").unwrap();
    let up = ImpairmentConfig::parse_flags("dup=20%,rate=4mbit,queue=20ms").unwrap();
    let outcome = run(Case {
        up,
        down,
        // SRTP replay protection would refuse the second copy of a packet.
        verify_one_in: 0,
    });
    check_counters(&outcome);
    let Outcome { app, up, down, .. } = &outcome;

    assert!(down.duplicated >= 50, "{down:?}");
    assert!(down.reordered >= 50, "{down:?}");
    assert!(up.duplicated >= 50, "{up:?}");
    assert!(app.duplicates(IMPAIRED) >= 50);
    assert!(app.reordered(IMPAIRED) >= 10);
    assert!(app.duplicates(IMPAIRED_PEER) >= 50);
    // The peer loses nothing (the link is far from full); each copy arrives.
    let distinct: HashSet<u16> = app
        .arrivals
        .iter()
        .filter(|(r, _, _)| *r == IMPAIRED_PEER)
        .map(|(_, n, _)| *n)
        .collect();
    assert_eq!(distinct.len(), usize::from(PACKETS));
    assert_eq!(dropped(up), 0, "{up:?}");
    // Jitter never takes a packet below zero or above delay + jitter (+ slack).
    let delays = app.received(IMPAIRED);
    let (min, max) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
    assert!(*min >= Duration::from_millis(2), "{min:?}");
    assert!(*max < Duration::from_millis(18) + TOLERANCE, "{max:?}");
    for index in [2, 3] {
        assert_eq!(app.received(index).len(), usize::from(PACKETS));
        assert_eq!(app.duplicates(index), 0);
    }
}
