//! TWCC: the recorder's feedback on the wire, and recorder → marshal → typed parse → send
//! history round trips over simulated networks (seeded loss, jitter, reordering, sequence
//! wrap, long gaps), plus malformed input.

#![allow(clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use relais_bwe::twcc::{
    TwccRecorder, TwccSendHistory, MAX_FEEDBACK_SIZE, RECORDER_MAX_SPAN, SEND_HISTORY_CAPACITY,
};
use relais_bwe::PacketResult;
use relais_rtp::rtcp::packets::{
    PacketStatusChunk, RecvDelta, RunLengthChunk, StatusChunkTypeTcc, StatusVectorChunk,
    SymbolSizeTypeTcc, SymbolTypeTcc, TransportLayerCc,
};
use relais_rtp::rtcp::{parse_typed, RtcpPacket};

const SENDER_SSRC: u32 = 0x1111_1111;
const MEDIA_SSRC: u32 = 0x2222_2222;

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn us(us: u64) -> Duration {
    Duration::from_micros(us)
}

/// SplitMix64: small, seeded, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The one TWCC packet in `bytes`, through the typed parser.
fn parse_feedback(bytes: &[u8]) -> TransportLayerCc {
    let packets = parse_typed(bytes).expect("recorder output parses");
    assert_eq!(packets.len(), 1);
    match packets.into_iter().next() {
        Some(RtcpPacket::TransportCc(feedback)) => feedback,
        other => panic!("not TWCC: {other:?}"),
    }
}

/// Signed `a - b` in microseconds.
fn diff_us(a: Instant, b: Instant) -> i128 {
    if a >= b {
        (a - b).as_micros() as i128
    } else {
        -((b - a).as_micros() as i128)
    }
}

/// One simulated packet: its sequence number, when it is sent and when (if) it arrives,
/// as offsets from the simulation start.
#[derive(Debug, Clone)]
struct SimPacket {
    seq: u16,
    sent: Duration,
    arrival: Option<Duration>,
    size: usize,
    probe_cluster: Option<u32>,
}

/// `count` packets `spacing` apart from sequence number `first`, arriving after `delay` plus
/// up to `jitter_us` of seeded jitter, each lost with probability `loss_per_mille`/1000.
fn packets(
    rng: &mut Rng,
    first: u16,
    count: usize,
    spacing: Duration,
    delay: Duration,
    jitter_us: u64,
    loss_per_mille: u64,
) -> Vec<SimPacket> {
    (0..count)
        .map(|i| {
            let sent = spacing * i as u32;
            // The last one arrives, so feedback covers every packet.
            let lost = i + 1 < count && rng.below(1000) < loss_per_mille;
            let jitter = us(if jitter_us == 0 {
                0
            } else {
                rng.below(jitter_us)
            });
            SimPacket {
                seq: first.wrapping_add(i as u16),
                sent,
                arrival: (!lost).then_some(sent + delay + jitter),
                size: 200 + (rng.below(1000) as usize),
                probe_cluster: (i % 50 < 5).then_some(i as u32 / 50),
            }
        })
        .collect()
}

/// What a simulation produced.
struct SimOutcome {
    start: Instant,
    results: Vec<PacketResult>,
    feedback: Vec<TransportLayerCc>,
}

/// Run `packets` through a send history, a network, a recorder polled every millisecond and
/// back (feedback takes `feedback_delay`).
fn simulate(packets: &[SimPacket], feedback_delay: Duration) -> SimOutcome {
    let start = Instant::now();
    let mut recorder = TwccRecorder::default();
    let mut history = TwccSendHistory::new();
    // (time, order, packet index, is_arrival): sends before arrivals at the same instant.
    let mut events: Vec<(Duration, u8, usize)> = Vec::new();
    for (i, packet) in packets.iter().enumerate() {
        events.push((packet.sent, 0, i));
        if let Some(arrival) = packet.arrival {
            events.push((arrival, 1, i));
        }
    }
    events.sort();
    let end = events.last().map_or(Duration::ZERO, |e| e.0) + ms(500);
    let mut events = events.into_iter().peekable();
    let mut in_flight: VecDeque<(Duration, Vec<u8>)> = VecDeque::new();
    let mut results = Vec::new();
    let mut feedback = Vec::new();
    let mut tick = Duration::ZERO;
    while tick <= end {
        while let Some(&(at, kind, i)) = events.peek() {
            if at > tick {
                break;
            }
            events.next();
            let packet = &packets[i];
            if kind == 0 {
                history.on_sent(start + at, packet.seq, packet.size, packet.probe_cluster);
            } else {
                recorder.on_packet(start + at, packet.seq);
            }
        }
        while let Some(bytes) = recorder.poll_feedback(start + tick, SENDER_SSRC, MEDIA_SSRC) {
            assert!(bytes.len() <= MAX_FEEDBACK_SIZE);
            feedback.push(parse_feedback(&bytes));
            in_flight.push_back((tick + feedback_delay, bytes));
        }
        while in_flight.front().is_some_and(|(at, _)| *at <= tick) {
            let (_, bytes) = in_flight.pop_front().expect("front");
            history
                .on_rtcp(start + tick, &bytes, &mut results)
                .expect("feedback reads");
        }
        tick += ms(1);
    }
    SimOutcome {
        start,
        results,
        feedback,
    }
}

/// Results by transport sequence number, in the order they came.
fn by_seq(results: &[PacketResult]) -> BTreeMap<u64, Vec<PacketResult>> {
    let mut map: BTreeMap<u64, Vec<PacketResult>> = BTreeMap::new();
    for result in results {
        map.entry(result.transport_seq).or_default().push(*result);
    }
    map
}

/// Every packet has a result with the right fields, lost ones `None`; received ones' last
/// result has an arrival whose difference to the first received packet's matches the
/// simulated one within 250 µs. With `strict`, each packet has exactly one result.
fn check(packets: &[SimPacket], outcome: &SimOutcome, strict: bool) {
    let first_seq = u64::from(packets[0].seq);
    let results = by_seq(&outcome.results);
    assert_eq!(results.len(), packets.len(), "one entry per packet sent");
    let mut reference: Option<(Duration, Instant)> = None;
    for (i, packet) in packets.iter().enumerate() {
        let seq = first_seq + i as u64;
        let got = results
            .get(&seq)
            .unwrap_or_else(|| panic!("no result for {seq}"));
        if strict {
            assert_eq!(got.len(), 1, "one result for {seq}: {got:?}");
        }
        assert!(got.len() <= 2);
        if got.len() == 2 {
            // Reported lost, then received late.
            assert_eq!(got[0].arrival, None);
            assert!(got[1].arrival.is_some());
        }
        let last = got[got.len() - 1];
        assert_eq!(last.transport_seq, seq);
        assert_eq!(last.size, packet.size);
        assert_eq!(last.sent, outcome.start + packet.sent);
        assert_eq!(last.probe_cluster, packet.probe_cluster);
        match packet.arrival {
            None => assert_eq!(last.arrival, None, "lost packet {seq}"),
            Some(simulated) => {
                let arrival = last.arrival.unwrap_or_else(|| panic!("{seq} arrived"));
                let &mut (sim0, got0) = reference.get_or_insert((simulated, arrival));
                let expected = simulated.as_micros() as i128 - sim0.as_micros() as i128;
                let error = diff_us(arrival, got0) - expected;
                assert!(error.abs() <= 250, "packet {seq}: off by {error} µs");
            }
        }
    }
}

#[test]
fn round_trip_1000_packets_with_jitter_and_loss() {
    let mut rng = Rng(0x7477_6363);
    // Starts near the top of the sequence space: wraps during the run.
    let packets = packets(&mut rng, 65_000, 1000, ms(5), ms(30), 4000, 30);
    let lost = packets.iter().filter(|p| p.arrival.is_none()).count();
    assert!((10..=60).contains(&lost), "{lost} lost");
    let outcome = simulate(&packets, ms(20));
    check(&packets, &outcome, true);
    assert_eq!(outcome.results.len(), 1000);
    assert_eq!(
        outcome
            .results
            .iter()
            .filter(|r| r.arrival.is_none())
            .count(),
        lost
    );
    // The results' sequence numbers continue past 65535.
    assert_eq!(
        outcome.results.last().map(|r| r.transport_seq),
        Some(66_000 - 1)
    );

    // Feedback every 50 ms: about 5 s / 50 ms of them, counted up by one, covering every
    // sequence number exactly once, with reference times that never go back.
    let feedback = &outcome.feedback;
    assert!((95..=105).contains(&feedback.len()), "{}", feedback.len());
    let mut next_base = 65_000u16;
    for (i, fb) in feedback.iter().enumerate() {
        assert_eq!(fb.fb_pkt_count, i as u8);
        assert_eq!(fb.sender_ssrc, SENDER_SSRC);
        assert_eq!(fb.media_ssrc, MEDIA_SSRC);
        assert_eq!(fb.base_sequence_number, next_base);
        next_base = next_base.wrapping_add(fb.packet_status_count);
        assert!(fb.recv_deltas.iter().all(|d| d.delta % 250 == 0));
    }
    assert_eq!(next_base, 65_000u16.wrapping_add(1000));
    assert!(feedback
        .windows(2)
        .all(|w| w[0].reference_time <= w[1].reference_time));
}

#[test]
fn feedback_fields_on_the_wire() {
    let t0 = Instant::now();
    let mut recorder = TwccRecorder::default();
    recorder.on_packet(t0, 10);
    recorder.on_packet(t0 + ms(1), 11);
    // 12 lost; 13 arrives 69 ms after the first: a large delta (more than 63.75 ms).
    recorder.on_packet(t0 + ms(70), 13);
    let fb = parse_feedback(&recorder.poll_feedback(t0 + ms(70), 1, 2).expect("due"));
    assert_eq!(fb.sender_ssrc, 1);
    assert_eq!(fb.media_ssrc, 2);
    assert_eq!(fb.base_sequence_number, 10);
    assert_eq!(fb.packet_status_count, 4);
    assert_eq!(fb.reference_time, 0);
    assert_eq!(fb.fb_pkt_count, 0);
    let deltas: Vec<(SymbolTypeTcc, i64)> = fb
        .recv_deltas
        .iter()
        .map(|d| (d.type_tcc_packet, d.delta))
        .collect();
    assert_eq!(
        deltas,
        [
            (SymbolTypeTcc::PacketReceivedSmallDelta, 0),
            (SymbolTypeTcc::PacketReceivedSmallDelta, 1000),
            (SymbolTypeTcc::PacketReceivedLargeDelta, 69_000),
        ]
    );

    // 200.3 ms after the first: reference time 3 (192 ms), first delta 8.25 ms (rounded to
    // 250 µs), feedback count 1.
    recorder.on_packet(t0 + us(200_300), 14);
    assert_eq!(recorder.poll_feedback(t0 + ms(100), 1, 2), None);
    let fb = parse_feedback(&recorder.poll_feedback(t0 + ms(250), 1, 2).expect("due"));
    assert_eq!(fb.base_sequence_number, 14);
    assert_eq!(fb.packet_status_count, 1);
    assert_eq!(fb.reference_time, 3);
    assert_eq!(fb.fb_pkt_count, 1);
    assert_eq!(fb.recv_deltas.len(), 1);
    assert_eq!(fb.recv_deltas[0].delta, 8250);
}

#[test]
fn feedback_is_due_at_the_interval_only_when_packets_arrived() {
    let t0 = Instant::now();
    let mut recorder = TwccRecorder::default();
    assert_eq!(recorder.interval(), ms(50));
    assert_eq!(recorder.poll_timeout(), None);
    assert_eq!(recorder.poll_feedback(t0 + ms(1000), 1, 2), None);

    recorder.on_packet(t0, 0);
    assert_eq!(recorder.poll_timeout(), Some(t0 + ms(50)));
    assert_eq!(recorder.poll_feedback(t0 + ms(49), 1, 2), None);
    assert!(recorder.poll_feedback(t0 + ms(50), 1, 2).is_some());
    assert_eq!(recorder.poll_feedback(t0 + ms(50), 1, 2), None);
    assert_eq!(recorder.poll_timeout(), None);
    // Nothing arrived: nothing is due, however long we wait.
    assert_eq!(recorder.poll_feedback(t0 + ms(90), 1, 2), None);

    // Traffic again: due one interval after the last feedback.
    recorder.on_packet(t0 + ms(60), 1);
    recorder.on_packet(t0 + ms(70), 2);
    assert_eq!(recorder.poll_timeout(), Some(t0 + ms(100)));
    assert_eq!(recorder.poll_feedback(t0 + ms(99), 1, 2), None);
    assert!(recorder.poll_feedback(t0 + ms(100), 1, 2).is_some());
    assert_eq!(recorder.poll_timeout(), None);

    // After a quiet second, a packet is due at once (the interval has long passed).
    recorder.on_packet(t0 + ms(1100), 3);
    assert_eq!(recorder.poll_timeout(), Some(t0 + ms(1100)));

    // A duplicate does not make feedback due.
    let mut recorder = TwccRecorder::new(ms(100));
    recorder.on_packet(t0, 7);
    assert_eq!(recorder.poll_timeout(), Some(t0 + ms(100)));
    assert!(recorder.poll_feedback(t0 + ms(100), 1, 2).is_some());
    recorder.on_packet(t0 + ms(110), 7);
    assert_eq!(recorder.poll_timeout(), None);
}

#[test]
fn sequence_wrap() {
    let t0 = Instant::now();
    let mut recorder = TwccRecorder::default();
    let mut history = TwccSendHistory::new();
    let seqs: Vec<u16> = (65_530..=65_535).chain(0..10).collect();
    for (i, &seq) in seqs.iter().enumerate() {
        history.on_sent(t0 + ms(i as u64), seq, 100, None);
        recorder.on_packet(t0 + ms(i as u64 + 20), seq);
    }
    let bytes = recorder.poll_feedback(t0 + ms(100), 1, 2).expect("due");
    let fb = parse_feedback(&bytes);
    assert_eq!(fb.base_sequence_number, 65_530);
    assert_eq!(fb.packet_status_count, 16);
    let mut results = Vec::new();
    assert_eq!(history.on_rtcp(t0 + ms(110), &bytes, &mut results), Ok(16));
    let seqs: Vec<u64> = results.iter().map(|r| r.transport_seq).collect();
    assert_eq!(seqs, (65_530..65_546).collect::<Vec<u64>>());
    for (i, result) in results.iter().enumerate() {
        let arrival = result.arrival.expect("received");
        assert_eq!(
            diff_us(arrival, results[0].arrival.expect("received")),
            i as i128 * 1000
        );
    }
}

#[test]
fn five_second_gap() {
    let mut rng = Rng(5);
    let mut packets = packets(&mut rng, 100, 200, ms(5), ms(40), 2000, 30);
    for packet in &mut packets[100..] {
        packet.sent += Duration::from_secs(5);
        packet.arrival = packet.arrival.map(|a| a + Duration::from_secs(5));
    }
    let outcome = simulate(&packets, ms(20));
    check(&packets, &outcome, true);
}

#[test]
fn deltas_beyond_8_seconds_split_the_feedback() {
    let t0 = Instant::now();
    let mut recorder = TwccRecorder::default();
    let mut history = TwccSendHistory::new();
    for seq in 0..6 {
        history.on_sent(t0, seq, 100, None);
    }
    // No feedback in between: +10 s and −8.5 s do not fit a delta, +7 s and −7 s do.
    recorder.on_packet(t0, 0);
    recorder.on_packet(t0 + Duration::from_secs(10), 1);
    recorder.on_packet(t0 + Duration::from_secs(10) + ms(3), 3);
    recorder.on_packet(t0 + Duration::from_secs(17), 2);
    recorder.on_packet(t0 + ms(17_500), 4);
    recorder.on_packet(t0 + Duration::from_secs(9), 5);
    let now = t0 + ms(17_500);
    let mut packets = Vec::new();
    while let Some(bytes) = recorder.poll_feedback(now, 1, 2) {
        packets.push(bytes);
        assert!(packets.len() < 10);
    }
    let covered: Vec<(u16, u16)> = packets
        .iter()
        .map(|b| parse_feedback(b))
        .map(|fb| (fb.base_sequence_number, fb.packet_status_count))
        .collect();
    assert_eq!(covered, [(0, 1), (1, 4), (5, 1)]);
    assert_eq!(recorder.poll_timeout(), None);

    let mut results = Vec::new();
    for bytes in &packets {
        history.on_rtcp(now, bytes, &mut results).expect("reads");
    }
    let arrivals: Vec<i128> = results
        .iter()
        .map(|r| {
            diff_us(
                r.arrival.expect("received"),
                results[0].arrival.expect("received"),
            )
        })
        .collect();
    assert_eq!(
        results.iter().map(|r| r.transport_seq).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
    // 3 arrived 7 s before 2: a negative large delta.
    assert_eq!(
        arrivals,
        [0, 10_000_000, 17_000_000, 10_003_000, 17_500_000, 9_000_000]
    );
}

#[test]
fn reordering() {
    let mut rng = Rng(0x5EED);
    // 30 ms of jitter on 5 ms spacing: packets overtake each other, and some arrive after
    // feedback called them lost.
    let packets = packets(&mut rng, 40_000, 1000, ms(5), ms(30), 30_000, 0);
    let outcome = simulate(&packets, ms(20));
    check(&packets, &outcome, false);
    let late = by_seq(&outcome.results)
        .values()
        .filter(|r| r.len() == 2)
        .count();
    assert!(late > 0, "some packets were reported lost, then late");
    // Negative deltas were on the wire.
    assert!(outcome
        .feedback
        .iter()
        .flat_map(|fb| &fb.recv_deltas)
        .any(|d| d.delta < 0));
}

#[test]
fn late_packet_is_re_reported_and_read_once() {
    let t0 = Instant::now();
    let mut recorder = TwccRecorder::default();
    let mut history = TwccSendHistory::new();
    for seq in 0..4 {
        history.on_sent(t0 + ms(seq.into()), seq, 100, None);
    }
    for seq in [0, 1, 3] {
        recorder.on_packet(t0 + ms(10 + u64::from(seq)), seq);
    }
    let mut results = Vec::new();
    let first = recorder.poll_feedback(t0 + ms(60), 1, 2).expect("due");
    history
        .on_rtcp(t0 + ms(70), &first, &mut results)
        .expect("reads");
    let seen: Vec<(u64, bool)> = results
        .iter()
        .map(|r| (r.transport_seq, r.arrival.is_some()))
        .collect();
    assert_eq!(seen, [(0, true), (1, true), (2, false), (3, true)]);
    let zero = results[0].arrival.expect("received");

    recorder.on_packet(t0 + ms(80), 2);
    let second = recorder.poll_feedback(t0 + ms(110), 1, 2).expect("due");
    let fb = parse_feedback(&second);
    assert_eq!((fb.base_sequence_number, fb.packet_status_count), (2, 2));
    results.clear();
    assert_eq!(history.on_rtcp(t0 + ms(120), &second, &mut results), Ok(1));
    assert_eq!(results[0].transport_seq, 2);
    // 2 arrived 70 ms after 0 (whose arrival came with the first feedback).
    let arrival = results[0].arrival.expect("received");
    assert_eq!(diff_us(arrival, zero), 70_000);
}

/// Sequence numbers written before the pacer releases the packets: 1 waits in the queue
/// while 2 (audio, say) leaves first. Feedback sent before 1 arrives says it is missing, but
/// nothing sent after it has arrived: it is held back, not reported lost, and reported once,
/// received, when it arrives.
#[test]
fn missing_packet_sent_after_every_received_one_is_not_lost_yet() {
    let t0 = Instant::now();
    let mut recorder = TwccRecorder::default();
    let mut history = TwccSendHistory::new();
    history.on_sent(t0, 0, 100, None);
    recorder.on_packet(t0 + ms(20), 0);
    history.on_sent(t0 + ms(5), 2, 100, None);
    recorder.on_packet(t0 + ms(25), 2);
    history.on_sent(t0 + ms(40), 1, 1200, None);
    let first = recorder.poll_feedback(t0 + ms(70), 1, 2).expect("due");
    let fb = parse_feedback(&first);
    assert_eq!((fb.base_sequence_number, fb.packet_status_count), (0, 3));
    let mut results = Vec::new();
    history
        .on_rtcp(t0 + ms(80), &first, &mut results)
        .expect("reads");
    let seen: Vec<(u64, bool)> = results
        .iter()
        .map(|r| (r.transport_seq, r.arrival.is_some()))
        .collect();
    assert_eq!(seen, [(0, true), (2, true)], "1 is held back");

    recorder.on_packet(t0 + ms(75), 1);
    let second = recorder.poll_feedback(t0 + ms(120), 1, 2).expect("due");
    results.clear();
    history
        .on_rtcp(t0 + ms(130), &second, &mut results)
        .expect("reads");
    let seen: Vec<(u64, bool)> = results
        .iter()
        .map(|r| (r.transport_seq, r.arrival.is_some()))
        .collect();
    assert_eq!(seen, [(1, true)]);
}

/// A held-back packet that never arrives is reported lost once a packet sent after it has
/// been reported received, although the receiver does not report it again.
#[test]
fn held_back_packet_is_lost_once_overtaken() {
    let t0 = Instant::now();
    let mut recorder = TwccRecorder::default();
    let mut history = TwccSendHistory::new();
    history.on_sent(t0, 0, 100, None);
    recorder.on_packet(t0 + ms(20), 0);
    history.on_sent(t0 + ms(5), 2, 100, None);
    recorder.on_packet(t0 + ms(25), 2);
    history.on_sent(t0 + ms(40), 1, 1200, None);
    let first = recorder.poll_feedback(t0 + ms(70), 1, 2).expect("due");
    let mut results = Vec::new();
    history
        .on_rtcp(t0 + ms(80), &first, &mut results)
        .expect("reads");
    assert_eq!(results.len(), 2);

    // 1 is dropped on the way; 3, sent after it, arrives.
    history.on_sent(t0 + ms(50), 3, 100, None);
    recorder.on_packet(t0 + ms(90), 3);
    let second = recorder.poll_feedback(t0 + ms(120), 1, 2).expect("due");
    let fb = parse_feedback(&second);
    assert_eq!((fb.base_sequence_number, fb.packet_status_count), (3, 1));
    results.clear();
    history
        .on_rtcp(t0 + ms(130), &second, &mut results)
        .expect("reads");
    let seen: Vec<(u64, bool)> = results
        .iter()
        .map(|r| (r.transport_seq, r.arrival.is_some()))
        .collect();
    assert_eq!(seen, [(3, true), (1, false)]);
    assert_eq!(results[1].size, 1200);
}

#[test]
fn duplicates_are_ignored() {
    let t0 = Instant::now();
    let mut recorder = TwccRecorder::default();
    let mut history = TwccSendHistory::new();
    for seq in 0..5 {
        history.on_sent(t0, seq, 100, None);
        recorder.on_packet(t0 + ms(seq.into()), seq);
        // The network duplicates every packet.
        recorder.on_packet(t0 + ms(u64::from(seq) + 2), seq);
    }
    let bytes = recorder.poll_feedback(t0 + ms(50), 1, 2).expect("due");
    assert_eq!(parse_feedback(&bytes).packet_status_count, 5);
    let mut results = Vec::new();
    assert_eq!(history.on_rtcp(t0 + ms(60), &bytes, &mut results), Ok(5));
    // The same feedback again: ignored.
    assert_eq!(history.on_rtcp(t0 + ms(61), &bytes, &mut results), Ok(0));
    assert_eq!(results.len(), 5);

    // Another feedback with the same feedback packet count: ignored as a duplicate.
    for seq in 5..7 {
        history.on_sent(t0 + ms(100), seq, 100, None);
    }
    let mut fb = parse_feedback(&bytes);
    fb.base_sequence_number = 5;
    fb.packet_status_count = 2;
    assert_eq!(history.on_feedback(t0 + ms(120), &fb, &mut results), 0);
    // With the next count it is read (5 and 6 received).
    fb.fb_pkt_count = fb.fb_pkt_count.wrapping_add(1);
    assert_eq!(history.on_feedback(t0 + ms(120), &fb, &mut results), 2);
    // Packets already reported received are not reported again, whatever the count.
    fb.fb_pkt_count = fb.fb_pkt_count.wrapping_add(1);
    assert_eq!(history.on_feedback(t0 + ms(130), &fb, &mut results), 0);
}

#[test]
fn unknown_and_forgotten_sequence_numbers_are_ignored() {
    let t0 = Instant::now();
    let mut history = TwccSendHistory::new();
    let mut results = Vec::new();
    let feedback = |count: u8, base: u16, packets: u16| TransportLayerCc {
        sender_ssrc: 1,
        media_ssrc: 2,
        base_sequence_number: base,
        packet_status_count: packets,
        reference_time: 0,
        fb_pkt_count: count,
        packet_chunks: vec![PacketStatusChunk::RunLengthChunk(RunLengthChunk {
            type_tcc: StatusChunkTypeTcc::RunLengthChunk,
            packet_status_symbol: SymbolTypeTcc::PacketReceivedSmallDelta,
            run_length: packets,
        })],
        recv_deltas: vec![
            RecvDelta {
                type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta,
                delta: 250,
            };
            usize::from(packets)
        ],
    };
    // Nothing sent yet.
    assert_eq!(
        history.on_feedback(t0, &feedback(0, 0, 10), &mut results),
        0
    );
    // More than the history holds: the first ones are forgotten.
    for i in 0..SEND_HISTORY_CAPACITY + 100 {
        history.on_sent(t0 + us(i as u64), i as u16, 100, None);
    }
    assert_eq!(history.len(), SEND_HISTORY_CAPACITY);
    assert_eq!(
        history.on_feedback(t0, &feedback(1, 0, 50), &mut results),
        0
    );
    // Never sent (ahead of the history).
    assert_eq!(
        history.on_feedback(t0, &feedback(2, 30_000, 50), &mut results),
        0
    );
    // Straddling the end: only the sent ones.
    let last = (SEND_HISTORY_CAPACITY + 100) as u16;
    assert_eq!(
        history.on_feedback(t0, &feedback(3, last - 5, 20), &mut results),
        5
    );
    let seqs: Vec<u64> = results.iter().map(|r| r.transport_seq).collect();
    assert_eq!(
        seqs,
        (u64::from(last) - 5..u64::from(last)).collect::<Vec<_>>()
    );
    // Older than 5 s: dropped at the next send.
    history.on_sent(t0 + Duration::from_secs(6), last, 100, None);
    assert_eq!(history.len(), 1);
}

#[test]
fn recorder_memory_is_bounded() {
    let t0 = Instant::now();
    let mut recorder = TwccRecorder::default();
    for i in 0..100_000u32 {
        recorder.on_packet(t0 + us(u64::from(i) * 100), i as u16);
    }
    let now = t0 + Duration::from_secs(11);
    let mut statuses = 0u64;
    let mut packets = 0;
    while let Some(bytes) = recorder.poll_feedback(now, 1, 2) {
        assert!(bytes.len() <= MAX_FEEDBACK_SIZE);
        statuses += u64::from(parse_feedback(&bytes).packet_status_count);
        packets += 1;
        assert!(packets < 1000);
    }
    assert_eq!(statuses, RECORDER_MAX_SPAN);
    // A jump far ahead drops what was before it.
    recorder.on_packet(now, 5);
    recorder.on_packet(now, 30_005);
    let fb = parse_feedback(&recorder.poll_feedback(now + ms(50), 1, 2).expect("due"));
    assert_eq!(
        (fb.base_sequence_number, fb.packet_status_count),
        (30_005, 1)
    );
}

fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x7477_6363),
        ..ProptestConfig::default()
    }
}

/// A send history with packets 0..200 sent.
fn busy_history(t0: Instant) -> TwccSendHistory {
    let mut history = TwccSendHistory::new();
    for seq in 0..200 {
        history.on_sent(t0 + ms(seq.into()), seq, 100, None);
    }
    history
}

fn symbol() -> impl Strategy<Value = SymbolTypeTcc> {
    (0u16..4).prop_map(SymbolTypeTcc::from)
}

fn chunk() -> impl Strategy<Value = PacketStatusChunk> {
    prop_oneof![
        (symbol(), any::<u16>()).prop_map(|(packet_status_symbol, run_length)| {
            PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                packet_status_symbol,
                run_length,
            })
        }),
        (any::<bool>(), prop::collection::vec(symbol(), 0..20)).prop_map(
            |(one_bit, symbol_list)| {
                PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                    type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
                    symbol_size: if one_bit {
                        SymbolSizeTypeTcc::OneBit
                    } else {
                        SymbolSizeTypeTcc::TwoBit
                    },
                    symbol_list,
                })
            }
        ),
    ]
}

proptest! {
    #![proptest_config(proptest_config())]

    /// Random bytes through the typed parser into the send history never panic.
    #[test]
    fn random_rtcp_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let t0 = Instant::now();
        let mut history = busy_history(t0);
        let mut results = Vec::new();
        let _ = history.on_rtcp(t0 + ms(300), &bytes, &mut results);
    }

    /// TWCC-shaped packets (right header, random body, length and padding) never panic.
    #[test]
    fn random_twcc_body_never_panics(
        padding in any::<bool>(),
        body in prop::collection::vec(any::<u8>(), 0..400),
        length in prop::option::of(any::<u16>()),
        repeat in 1usize..3,
    ) {
        let t0 = Instant::now();
        let mut history = busy_history(t0);
        let mut packet = vec![0x8F | if padding { 0x20 } else { 0 }, 205];
        let words = length.unwrap_or((body.len() / 4) as u16);
        packet.extend_from_slice(&words.to_be_bytes());
        packet.extend_from_slice(&body);
        let compound = packet.repeat(repeat);
        let mut results = Vec::new();
        let _ = history.on_rtcp(t0 + ms(300), &compound, &mut results);
        for result in &results {
            prop_assert!(result.transport_seq < 200);
        }
    }

    /// Any `TransportLayerCc` (not only what the parser produces) never panics.
    #[test]
    fn random_feedback_struct_never_panics(
        base in any::<u16>(),
        count in any::<u16>(),
        reference in any::<u32>(),
        fb_count in any::<u8>(),
        chunks in prop::collection::vec(chunk(), 0..20),
        deltas in prop::collection::vec(any::<i64>(), 0..100),
    ) {
        let t0 = Instant::now();
        let mut history = busy_history(t0);
        let feedback = TransportLayerCc {
            sender_ssrc: 1,
            media_ssrc: 2,
            base_sequence_number: base,
            packet_status_count: count,
            reference_time: reference,
            fb_pkt_count: fb_count,
            packet_chunks: chunks,
            recv_deltas: deltas
                .into_iter()
                .map(|delta| RecvDelta {
                    type_tcc_packet: SymbolTypeTcc::PacketReceivedLargeDelta,
                    delta,
                })
                .collect(),
        };
        let mut results = Vec::new();
        history.on_feedback(t0 + ms(300), &feedback, &mut results);
        // Twice, with other counts, to exercise the reference time unwrapping.
        let mut again = feedback.clone();
        again.fb_pkt_count = fb_count.wrapping_add(1);
        again.reference_time = reference.wrapping_add(1 << 23);
        history.on_feedback(t0 + ms(400), &again, &mut results);
        prop_assert!(results.len() <= 400);
    }

    /// Whatever arrives, in whatever order, the recorder's feedback parses and the send
    /// history reads every packet at most once as received.
    #[test]
    fn recorder_output_always_reads_back(
        arrivals in prop::collection::vec((0u16..300, 0u64..20_000), 1..300),
        polls in prop::collection::vec(any::<bool>(), 300),
    ) {
        let t0 = Instant::now();
        let mut recorder = TwccRecorder::default();
        let mut history = TwccSendHistory::new();
        for seq in 0..300u16 {
            history.on_sent(t0, seq.wrapping_add(65_400), 100, None);
        }
        // The lowest sequence number comes first: nothing arrives before the record starts.
        let arrivals: Vec<(u16, u64)> = std::iter::once((0, 0)).chain(arrivals).collect();
        let mut now = t0;
        let mut results = Vec::new();
        for (&(seq, step_us), &poll) in arrivals.iter().zip(polls.iter().cycle()) {
            now += us(step_us);
            recorder.on_packet(now, seq.wrapping_add(65_400));
            if poll {
                now += ms(50);
                while let Some(bytes) = recorder.poll_feedback(now, 1, 2) {
                    prop_assert!(bytes.len() <= MAX_FEEDBACK_SIZE);
                    prop_assert!(history.on_rtcp(now, &bytes, &mut results).is_ok());
                }
            }
        }
        now += Duration::from_secs(1);
        while let Some(bytes) = recorder.poll_feedback(now, 1, 2) {
            prop_assert!(history.on_rtcp(now, &bytes, &mut results).is_ok());
        }
        let received = by_seq(&results);
        for (seq, got) in &received {
            prop_assert!(got.iter().filter(|r| r.arrival.is_some()).count() <= 1);
            prop_assert!(got.iter().filter(|r| r.arrival.is_none()).count() <= 1);
            let arrived = arrivals.iter().any(|&(s, _)| u64::from(s) + 65_400 == *seq);
            prop_assert_eq!(got.iter().any(|r| r.arrival.is_some()), arrived);
        }
        // Every packet that arrived was read as received.
        for &(seq, _) in &arrivals {
            let got = received.get(&(u64::from(seq) + 65_400));
            prop_assert!(got.is_some_and(|got| got.iter().any(|r| r.arrival.is_some())));
        }
    }
}
