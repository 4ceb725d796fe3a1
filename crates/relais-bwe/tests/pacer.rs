//! The leaky-bucket pacer, in simulated time: every poll happens at the time the pacer asked
//! for, and the tests look at the simulated timestamps.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a test failure"
)]

use std::time::{Duration, Instant};

use relais_bwe::pacer::{Pacer, PacerConfig, PacketClass, MIN_PACING_BPS};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Polls at the pacer's own timeouts until it is empty; returns (item, time it left).
fn run<T>(pacer: &mut Pacer<T>, start: Instant) -> Vec<(T, Instant)> {
    let mut out = Vec::new();
    let mut now = start;
    for _ in 0..100_000 {
        let mut burst = Vec::new();
        pacer.poll_burst(now, usize::MAX, &mut burst);
        out.extend(burst.into_iter().map(|item| (item, now)));
        if pacer.is_empty() {
            break;
        }
        let next = pacer
            .poll_timeout(now)
            .expect("a timeout while items are queued");
        assert!(next >= now);
        now = next;
    }
    assert!(pacer.is_empty(), "the pacer did not drain");
    out
}

#[test]
fn defaults_match_libwebrtc() {
    let c = PacerConfig::default();
    assert_eq!(c.pacing_factor, 2.5);
    assert_eq!(c.max_queue_time, Duration::from_secs(2));
    let mut pacer: Pacer<u32> = Pacer::new(c);
    pacer.set_rate(1_000_000);
    assert_eq!(pacer.pacing_bps(), 2_500_000);
}

#[test]
fn bounded_rate_is_no_faster_than_the_path() {
    let mut pacer: Pacer<u32> = Pacer::new(PacerConfig::default());
    // No measurement of the path: 2.5 × the estimate.
    pacer.set_rate_bounded(1_000_000, None);
    assert_eq!(pacer.pacing_bps(), 2_500_000);
    // The path carried 1.9 Mbit/s: bursts leave no faster.
    pacer.set_rate_bounded(1_000_000, Some(1_900_000));
    assert_eq!(pacer.pacing_bps(), 1_900_000);
    // Never slower than the estimate, never faster than 2.5 × it.
    pacer.set_rate_bounded(2_000_000, Some(1_900_000));
    assert_eq!(pacer.pacing_bps(), 2_000_000);
    pacer.set_rate_bounded(1_000_000, Some(9_000_000));
    assert_eq!(pacer.pacing_bps(), 2_500_000);
    pacer.set_rate_bounded(0, Some(0));
    assert_eq!(pacer.pacing_bps(), MIN_PACING_BPS);
}

#[test]
fn audio_bypasses_the_queue() {
    let t0 = Instant::now();
    let mut pacer = Pacer::new(PacerConfig::default());
    pacer.set_rate(100_000);
    for i in 0..20 {
        pacer.push(t0, i, 1200, PacketClass::Video);
    }
    // The burst budget is spent by the first video packet.
    assert_eq!(pacer.poll(t0), Some(0));
    assert_eq!(pacer.poll(t0), None);
    pacer.push(t0 + ms(1), 1000, 100, PacketClass::Audio);
    assert_eq!(pacer.poll_timeout(t0 + ms(1)), Some(t0 + ms(1)));
    assert_eq!(pacer.poll(t0 + ms(1)), Some(1000));
    assert_eq!(pacer.poll(t0 + ms(1)), None);
}

#[test]
fn keyframe_burst_leaves_at_pacing_rate() {
    let t0 = Instant::now();
    let mut pacer = Pacer::new(PacerConfig::default());
    pacer.set_rate(1_000_000);
    for i in 0..100u32 {
        pacer.push(t0, i, 1200, PacketClass::Video);
    }
    assert_eq!(pacer.queue_len(), 100);
    assert_eq!(pacer.queue_bytes(), 120_000);
    let sent = run(&mut pacer, t0);
    assert_eq!(sent.len(), 100);
    // In order.
    assert!(sent
        .iter()
        .enumerate()
        .all(|(i, (item, _))| *item == i as u32));
    // 960 000 bits at 2.5 Mbit/s = 384 ms, less the burst allowance at the start.
    let last = sent.last().map(|(_, t)| *t - t0).unwrap();
    assert!(last >= ms(370) && last <= ms(385), "last left at {last:?}");
    // The steady rate between the 10th and the last packet: 2.5 Mbit/s.
    let (_, t10) = sent[10];
    let (_, t99) = sent[99];
    let rate = (89.0 * 1200.0 * 8.0) / (t99 - t10).as_secs_f64();
    assert!((rate - 2_500_000.0).abs() < 25_000.0, "rate {rate}");
    // Never more than the burst budget (5 ms ≈ 1 562 bytes) plus one packet at one instant.
    let mut max_same_instant = 0;
    let mut i = 0;
    while i < sent.len() {
        let n = sent[i..]
            .iter()
            .take_while(|(_, t)| *t == sent[i].1)
            .count();
        max_same_instant = max_same_instant.max(n);
        i += n;
    }
    assert!(
        max_same_instant <= 2,
        "{max_same_instant} packets at one instant"
    );
}

#[test]
fn retransmissions_before_video_and_padding_last() {
    let t0 = Instant::now();
    let mut pacer = Pacer::new(PacerConfig::default());
    pacer.set_rate(1_000_000);
    pacer.push(t0, "pad", 300, PacketClass::Padding);
    pacer.push(t0, "v1", 1200, PacketClass::Video);
    pacer.push(t0, "v2", 1200, PacketClass::Video);
    pacer.push(t0, "r1", 1200, PacketClass::Retransmission);
    pacer.push(t0, "r2", 1200, PacketClass::Retransmission);
    pacer.push(t0, "a1", 100, PacketClass::Audio);
    let order: Vec<&str> = run(&mut pacer, t0).into_iter().map(|(i, _)| i).collect();
    assert_eq!(order, vec!["a1", "r1", "r2", "v1", "v2", "pad"]);
}

#[test]
fn queue_time_bound_raises_the_rate() {
    let t0 = Instant::now();
    // 200 × 1200 bytes at 250 kbit/s (estimate 100 kbit/s) would take ~7.7 s.
    let mut unbounded = Pacer::new(PacerConfig {
        max_queue_time: Duration::ZERO,
        ..PacerConfig::default()
    });
    unbounded.set_rate(100_000);
    for i in 0..200 {
        unbounded.push(t0, i, 1200, PacketClass::Video);
    }
    let slow = run(&mut unbounded, t0);
    assert!(slow.last().unwrap().1 - t0 > Duration::from_secs(7));

    let mut pacer = Pacer::new(PacerConfig::default());
    pacer.set_rate(100_000);
    for i in 0..200 {
        pacer.push(t0, i, 1200, PacketClass::Video);
    }
    assert!(pacer.effective_rate_bps(t0) > pacer.pacing_bps());
    let sent = run(&mut pacer, t0);
    assert_eq!(sent.len(), 200);
    let last = sent.last().unwrap().1 - t0;
    assert!(last <= Duration::from_secs(2), "last left at {last:?}");
    // It does not simply flush: the queue is spread over most of the bound.
    assert!(last >= ms(1900), "last left at {last:?}");
}

#[test]
fn poll_burst_returns_only_what_is_due() {
    let t0 = Instant::now();
    let mut pacer = Pacer::new(PacerConfig::default());
    pacer.set_rate(1_000_000); // 2.5 Mbit/s: 5 ms ≈ 1 562 bytes
    for i in 0..10 {
        pacer.push(t0, i, 1200, PacketClass::Video);
    }
    let mut out = Vec::new();
    assert_eq!(pacer.poll_burst(t0, 1, &mut out), 1);
    assert_eq!(pacer.poll_burst(t0, 100, &mut out), 1);
    assert_eq!(out, vec![0, 1]);
    assert_eq!(pacer.poll_burst(t0, 100, &mut out), 0);
    // The debt (19 200 bits) drains to the budget (12 500 bits) in 2.68 ms.
    let next = pacer.poll_timeout(t0).unwrap();
    assert_eq!(next - t0, Duration::from_micros(2680));
    assert_eq!(
        pacer.poll_burst(next - Duration::from_nanos(1), 100, &mut out),
        0
    );
    assert_eq!(pacer.poll_burst(next, 100, &mut out), 1);
    assert_eq!(pacer.queue_len(), 7);
    assert_eq!(pacer.queue_bytes(), 7 * 1200);
    assert_eq!(pacer.oldest_age(t0 + ms(3)), Some(ms(3)));
}

#[test]
fn rate_zero_uses_a_minimum_rate() {
    let t0 = Instant::now();
    let mut pacer = Pacer::new(PacerConfig {
        pacing_factor: f64::NAN,
        max_queue_time: Duration::ZERO,
        padding: true,
    });
    pacer.set_rate(0);
    pacer.set_padding_rate(0);
    assert_eq!(pacer.pacing_bps(), MIN_PACING_BPS);
    assert_eq!(pacer.poll(t0), None);
    assert_eq!(pacer.poll_timeout(t0), None);
    assert_eq!(pacer.poll_padding(t0), None);
    for i in 0..5 {
        pacer.push(t0, i, 1200, PacketClass::Video);
    }
    pacer.push(t0, 99, 0, PacketClass::Retransmission);
    let sent = run(&mut pacer, t0);
    assert_eq!(sent.len(), 6);
    // 4 × 9 600 bits (after the first) at 50 kbit/s, less the burst: ~0.75 s.
    let last = sent.last().unwrap().1 - t0;
    assert!(last > ms(500) && last < ms(1000), "last left at {last:?}");
    // Time going backwards does not panic either.
    pacer.push(t0 + ms(10), 7, 1200, PacketClass::Video);
    let _ = pacer.poll(t0);
    let _ = pacer.poll_timeout(t0);
}

#[test]
fn padding_fills_up_to_the_padding_rate_when_idle() {
    let t0 = Instant::now();
    let mut pacer: Pacer<u32> = Pacer::new(PacerConfig {
        padding: true,
        ..PacerConfig::default()
    });
    pacer.set_rate(1_000_000);
    pacer.set_padding_rate(400_000);
    let mut now = t0;
    let mut bytes = 0;
    while now < t0 + Duration::from_secs(1) {
        while let Some(b) = pacer.poll_padding(now) {
            bytes += b;
        }
        now = pacer.poll_timeout(now).unwrap();
    }
    let bits = bytes as f64 * 8.0;
    assert!(
        (bits - 400_000.0).abs() < 10_000.0,
        "padding {bits} bits in 1 s"
    );

    // No padding while media is queued; none at all with padding off.
    pacer.push(now, 1, 1200, PacketClass::Video);
    assert_eq!(pacer.poll_padding(now + ms(100)), None);
    let mut off: Pacer<u32> = Pacer::new(PacerConfig::default());
    off.set_padding_rate(400_000);
    assert_eq!(off.poll_padding(t0), None);
    assert_eq!(off.poll_timeout(t0), None);
}

mod arbitrary {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Push(usize, u8),
        SetRate(u64),
        Padding(u64),
        Poll,
        Burst(usize),
        PollPadding,
        Advance(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0usize..70_000, 0u8..4).prop_map(|(s, c)| Op::Push(s, c)),
            prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>(), 0u64..10_000_000]
                .prop_map(Op::SetRate),
            prop_oneof![Just(0u64), Just(u64::MAX), 0u64..10_000_000].prop_map(Op::Padding),
            Just(Op::Poll),
            (0usize..50).prop_map(Op::Burst),
            Just(Op::PollPadding),
            (-50_000i64..3_000_000).prop_map(Op::Advance),
        ]
    }

    /// Fixed seed (deterministic runs); no regression files written into the tree.
    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: 256,
            failure_persistence: None,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x7265_6c61_6973),
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]
        #[test]
        fn never_panics_and_accounts_items(ops in proptest::collection::vec(op(), 1..200)) {
            let t0 = Instant::now() + Duration::from_secs(1);
            let mut pacer = Pacer::new(PacerConfig { padding: true, ..PacerConfig::default() });
            let mut now = t0;
            let mut pushed = 0usize;
            let mut popped = 0usize;
            for op in ops {
                match op {
                    Op::Push(size, c) => {
                        let class = match c {
                            0 => PacketClass::Audio,
                            1 => PacketClass::Video,
                            2 => PacketClass::Retransmission,
                            _ => PacketClass::Padding,
                        };
                        pacer.push(now, pushed, size, class);
                        pushed += 1;
                    }
                    Op::SetRate(r) => pacer.set_rate(r),
                    Op::Padding(r) => pacer.set_padding_rate(r),
                    Op::Poll => popped += usize::from(pacer.poll(now).is_some()),
                    Op::Burst(max) => {
                        let mut out = Vec::new();
                        let n = pacer.poll_burst(now, max, &mut out);
                        prop_assert!(n <= max);
                        prop_assert_eq!(n, out.len());
                        popped += n;
                    }
                    Op::PollPadding => { let _ = pacer.poll_padding(now); }
                    Op::Advance(us) => {
                        now = if us < 0 {
                            now.checked_sub(Duration::from_micros(us.unsigned_abs())).unwrap_or(now)
                        } else {
                            now + Duration::from_micros(us.unsigned_abs())
                        };
                    }
                }
                if let Some(t) = pacer.poll_timeout(now) {
                    prop_assert!(t >= now);
                }
                prop_assert_eq!(pacer.queue_len(), pushed - popped);
            }
        }
    }
}
