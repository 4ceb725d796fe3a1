//! The impairment stage: loss, bursts, delay and jitter, reordering, duplication, the rate
//! limit, determinism and the flag syntax, over a simulated clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use relais_loadtest::impair::{
    BurstLoss, ImpairError, Impairment, ImpairmentConfig, JitterDistribution, QueueLimit, RateLimit,
};

const SEED: u64 = 46_105_641;

/// A datagram of `len` bytes whose first eight carry `id`.
fn datagram(id: u64, len: usize) -> Bytes {
    let mut bytes = vec![0u8; len.max(8)];
    bytes[..8].copy_from_slice(&id.to_be_bytes());
    Bytes::from(bytes)
}

fn id_of(datagram: &Bytes) -> u64 {
    u64::from_be_bytes(datagram[..8].try_into().unwrap())
}

/// A released datagram: its id, when it was pushed and when it came out (since start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Release {
    id: u64,
    pushed: Duration,
    released: Duration,
}

/// Pushes `count` datagrams of `len` bytes, one every `interval`, polling at every release
/// time the stage asks for, and returns what came out in order.
fn run(stage: &mut Impairment, count: u64, interval: Duration, len: usize) -> Vec<Release> {
    let start = Instant::now();
    let mut pushed_at = Vec::with_capacity(count as usize);
    let mut out = Vec::new();
    let mut drain = |stage: &mut Impairment, until: Instant, pushed_at: &[Duration]| {
        while let Some(due) = stage.poll_timeout().filter(|due| *due <= until) {
            while let Some(datagram) = stage.poll(due) {
                let id = id_of(&datagram);
                out.push(Release {
                    id,
                    pushed: pushed_at[id as usize],
                    released: due - start,
                });
            }
        }
    };
    for id in 0..count {
        let now = start + interval * id as u32;
        drain(stage, now, &pushed_at);
        pushed_at.push(now - start);
        stage.push(now, datagram(id, len));
    }
    drain(stage, start + Duration::from_secs(3600), &pushed_at);
    assert_eq!(stage.in_flight(), 0);
    out
}

fn inversions(releases: &[Release]) -> usize {
    releases.windows(2).filter(|w| w[1].id < w[0].id).count()
}

#[test]
fn transparent_stage_passes_everything_at_once() {
    let mut stage = Impairment::new(ImpairmentConfig::default(), SEED);
    assert!(stage.config().is_transparent());
    let now = Instant::now();
    stage.push(now, datagram(1, 100));
    assert_eq!(stage.poll_timeout(), Some(now));
    assert_eq!(id_of(&stage.poll(now).unwrap()), 1);
    assert_eq!(stage.poll(now), None);
    assert_eq!(stage.poll_timeout(), None);
}

#[test]
fn random_loss_lands_near_its_rate() {
    let config = ImpairmentConfig {
        loss_pct: 2.0,
        ..ImpairmentConfig::default()
    };
    let mut stage = Impairment::new(config, SEED);
    let out = run(&mut stage, 100_000, Duration::from_micros(100), 100);
    let stats = stage.stats();
    assert_eq!(stats.pushed, 100_000);
    assert!((1_800..=2_200).contains(&stats.dropped_random), "{stats:?}");
    assert_eq!(out.len() as u64, 100_000 - stats.dropped_random);
    assert_eq!(stats.released, out.len() as u64);
    assert_eq!(inversions(&out), 0);
}

#[test]
fn gilbert_elliott_bursts_last_one_over_p_bad_to_good() {
    let config = ImpairmentConfig {
        burst: Some(BurstLoss::gilbert(1.0, 25.0)),
        ..ImpairmentConfig::default()
    };
    let mut stage = Impairment::new(config, SEED);
    let out = run(&mut stage, 100_000, Duration::from_micros(100), 100);
    let mut received = vec![false; 100_000];
    for release in &out {
        received[release.id as usize] = true;
    }
    let mut bursts = Vec::new();
    let mut current = 0u64;
    for got in received {
        if got {
            if current > 0 {
                bursts.push(current);
            }
            current = 0;
        } else {
            current += 1;
        }
    }
    let mean = bursts.iter().sum::<u64>() as f64 / bursts.len() as f64;
    assert!(
        (3.6..=4.4).contains(&mean),
        "mean burst {mean} over {}",
        bursts.len()
    );
    // Stationary loss: p / (p + r) = 1 / 26.
    let loss = stage.stats().dropped_burst as f64 / 100_000.0;
    assert!((0.033..=0.044).contains(&loss), "{loss}");
    assert_eq!(stage.stats().dropped_random, 0);
}

#[test]
fn delay_and_jitter_keep_order_within_bounds() {
    for distribution in [JitterDistribution::Uniform, JitterDistribution::Normal] {
        let config = ImpairmentConfig {
            delay: Duration::from_millis(40),
            jitter: Duration::from_millis(10),
            jitter_distribution: distribution,
            ..ImpairmentConfig::default()
        };
        let mut stage = Impairment::new(config, SEED);
        let out = run(&mut stage, 20_000, Duration::from_millis(1), 200);
        assert_eq!(out.len(), 20_000);
        assert_eq!(inversions(&out), 0, "{distribution:?}");
        let delays: Vec<Duration> = out.iter().map(|r| r.released - r.pushed).collect();
        let (min, max) = (*delays.iter().min().unwrap(), *delays.iter().max().unwrap());
        assert!(min >= Duration::from_millis(30), "{distribution:?} {min:?}");
        assert!(max <= Duration::from_millis(50), "{distribution:?} {max:?}");
        // The spread is used, not collapsed onto the maximum by the ordering rule (which at
        // one packet per millisecond does lift the low end).
        assert!(
            max - min > Duration::from_millis(8),
            "{distribution:?} {min:?}..{max:?}"
        );
        assert_eq!(stage.stats().reordered, 0);
    }
}

#[test]
fn reorder_pct_lets_packets_overtake_and_zero_does_not() {
    let config = ImpairmentConfig {
        delay: Duration::from_millis(40),
        jitter: Duration::from_millis(10),
        reorder_pct: 5.0,
        ..ImpairmentConfig::default()
    };
    let mut stage = Impairment::new(config, SEED);
    let out = run(&mut stage, 20_000, Duration::from_millis(1), 200);
    assert_eq!(out.len(), 20_000);
    let reordered = stage.stats().reordered;
    assert!((800..=1_200).contains(&reordered), "{reordered}");
    assert!(inversions(&out) > 500, "{}", inversions(&out));
    for release in &out {
        let delay = release.released - release.pushed;
        assert!(delay >= Duration::from_millis(30) && delay <= Duration::from_millis(50));
    }

    let config = ImpairmentConfig {
        reorder_pct: 0.0,
        ..config
    };
    let mut stage = Impairment::new(config, SEED);
    let out = run(&mut stage, 20_000, Duration::from_millis(1), 200);
    assert_eq!(inversions(&out), 0);
    assert_eq!(stage.stats().reordered, 0);
}

#[test]
fn duplicates_near_their_rate() {
    let config = ImpairmentConfig {
        duplicate_pct: 1.0,
        ..ImpairmentConfig::default()
    };
    let mut stage = Impairment::new(config, SEED);
    let out = run(&mut stage, 100_000, Duration::from_micros(100), 100);
    let stats = stage.stats();
    assert!((900..=1_100).contains(&stats.duplicated), "{stats:?}");
    assert_eq!(out.len() as u64, 100_000 + stats.duplicated);
    let copies = out.windows(2).filter(|w| w[0].id == w[1].id).count() as u64;
    assert_eq!(copies, stats.duplicated, "a copy follows its original");
}

#[test]
fn rate_cap_releases_at_the_rate_and_drops_the_excess() {
    let config = ImpairmentConfig {
        rate: Some(RateLimit {
            bits_per_second: 1_000_000,
            queue_limit: QueueLimit::Time(Duration::from_millis(50)),
        }),
        ..ImpairmentConfig::default()
    };
    let mut stage = Impairment::new(config, SEED);
    // 1200 bytes every 4.8 ms: 2 Mbit/s offered for 10 s.
    let out = run(&mut stage, 2_084, Duration::from_micros(4_800), 1_200);
    let stats = stage.stats();
    // Released over the steady state (from 1 s on): 1 Mbit/s, one datagram per 9.6 ms.
    let steady: Vec<&Release> = out
        .iter()
        .filter(|r| r.released >= Duration::from_secs(1))
        .collect();
    let span = steady.last().unwrap().released - steady.first().unwrap().released;
    let rate = (steady.len() - 1) as f64 * 1_200.0 * 8.0 / span.as_secs_f64();
    assert!((rate - 1_000_000.0).abs() < 10_000.0, "{rate}");
    // About half dropped, at the tail, once the 50 ms queue filled.
    assert!((1_000..=1_060).contains(&stats.dropped_queue), "{stats:?}");
    assert_eq!(stats.released + stats.dropped_queue, stats.pushed);
    assert_eq!(inversions(&out), 0);
    let worst = out.iter().map(|r| r.released - r.pushed).max().unwrap();
    assert!(
        worst <= Duration::from_millis(50),
        "queueing + serialisation {worst:?}"
    );
    assert!(worst >= Duration::from_millis(40), "{worst:?}");

    // A byte limit of three datagrams: at most three wait.
    let config = ImpairmentConfig {
        rate: Some(RateLimit {
            bits_per_second: 1_000_000,
            queue_limit: QueueLimit::Bytes(3_600),
        }),
        ..ImpairmentConfig::default()
    };
    let mut stage = Impairment::new(config, SEED);
    let now = Instant::now();
    for id in 0..10 {
        stage.push(now, datagram(id, 1_200));
    }
    assert_eq!(stage.stats().dropped_queue, 7);
    assert_eq!(
        stage.poll_timeout(),
        Some(now + Duration::from_micros(9_600))
    );
}

#[test]
fn same_seed_same_output() {
    let config: ImpairmentConfig =
        "loss=2%,burst=1%/30%,delay=40ms,jitter=10ms,dist=normal,reorder=1%,dup=1%,rate=2mbit,queue=30ms"
            .parse()
            .unwrap();
    let once = run(
        &mut Impairment::new(config, SEED),
        20_000,
        Duration::from_micros(2_000),
        500,
    );
    let twice = run(
        &mut Impairment::new(config, SEED),
        20_000,
        Duration::from_micros(2_000),
        500,
    );
    let other = run(
        &mut Impairment::new(config, SEED + 1),
        20_000,
        Duration::from_micros(2_000),
        500,
    );
    // Release times are compared relative to each run's own start.
    assert_eq!(once, twice);
    assert_ne!(once, other);
}

#[test]
fn from_network_takes_the_lossy_variant() {
    let scenario = relais_loadtest::scenario::Scenario::load("hostsharing-lossy").unwrap();
    let config = ImpairmentConfig::from_network(&scenario.network);
    assert_eq!(config.loss_pct, 2.0);
    assert_eq!(config.delay, Duration::from_millis(40));
    assert_eq!(config.jitter, Duration::from_millis(10));
    assert_eq!(config.jitter_distribution, JitterDistribution::Uniform);
    assert_eq!(config.burst, None);
    assert_eq!(config.rate, None);
    config.validate().unwrap();
}

#[test]
fn flag_parser_accepts() {
    let config: ImpairmentConfig =
        "loss=2%,delay=40ms,jitter=10ms,rate=1mbit,queue=50ms,dup=0.1%,reorder=0.5%,burst=1%/25%"
            .parse()
            .unwrap();
    assert_eq!(
        config,
        ImpairmentConfig {
            loss_pct: 2.0,
            burst: Some(BurstLoss::gilbert(1.0, 25.0)),
            delay: Duration::from_millis(40),
            jitter: Duration::from_millis(10),
            jitter_distribution: JitterDistribution::Uniform,
            reorder_pct: 0.5,
            duplicate_pct: 0.1,
            rate: Some(RateLimit {
                bits_per_second: 1_000_000,
                queue_limit: QueueLimit::Time(Duration::from_millis(50)),
            }),
        }
    );
    assert_eq!(
        ImpairmentConfig::parse_flags("").unwrap(),
        ImpairmentConfig::default()
    );
    let config = ImpairmentConfig::parse_flags(
        " Loss = 0.5 , queue=64kib, rate=500kbit, duplicate=1, burst=2%/20%/50%/0.1%, \
         dist=NORMAL, delay=0.5s, jitter=800us,",
    )
    .unwrap();
    assert_eq!(config.loss_pct, 0.5);
    assert_eq!(config.duplicate_pct, 1.0);
    assert_eq!(
        config.rate,
        Some(RateLimit {
            bits_per_second: 500_000,
            queue_limit: QueueLimit::Bytes(65_536),
        })
    );
    assert_eq!(
        config.burst,
        Some(BurstLoss {
            good_to_bad_pct: 2.0,
            bad_to_good_pct: 20.0,
            bad_loss_pct: 50.0,
            good_loss_pct: 0.1,
        })
    );
    assert_eq!(config.jitter_distribution, JitterDistribution::Normal);
    assert_eq!(config.delay, Duration::from_millis(500));
    assert_eq!(config.jitter, Duration::from_micros(800));
    // A rate without a queue gets the default 50 ms.
    let config = ImpairmentConfig::parse_flags("rate=1gbit").unwrap();
    assert_eq!(
        config.rate.unwrap().queue_limit,
        QueueLimit::Time(Duration::from_millis(50))
    );
    assert_eq!(
        config.rate.unwrap().queue_limit.bytes(1_000_000_000),
        6_250_000
    );
}

#[test]
fn flag_parser_rejects() {
    type Check = fn(&ImpairError) -> bool;
    let cases: &[(&str, Check)] = &[
        ("loss", |e| matches!(e, ImpairError::NotKeyValue { .. })),
        ("foo=1", |e| matches!(e, ImpairError::UnknownKey { .. })),
        ("loss=1%,loss=2%", |e| {
            matches!(e, ImpairError::DuplicateKey { .. })
        }),
        ("dup=1,duplicate=2", |e| {
            matches!(e, ImpairError::DuplicateKey { .. })
        }),
        ("loss=2x", |e| matches!(e, ImpairError::BadPercent { .. })),
        ("loss=nan", |e| matches!(e, ImpairError::BadPercent { .. })),
        ("loss=-1%", |e| matches!(e, ImpairError::BadPercent { .. })),
        ("loss=", |e| matches!(e, ImpairError::BadPercent { .. })),
        ("loss=120%", |e| {
            matches!(e, ImpairError::PercentOutOfRange { .. })
        }),
        ("reorder=100.5", |e| {
            matches!(e, ImpairError::PercentOutOfRange { .. })
        }),
        ("delay=40", |e| matches!(e, ImpairError::BadDuration { .. })),
        ("delay=40min", |e| {
            matches!(e, ImpairError::BadDuration { .. })
        }),
        ("jitter=-5ms", |e| {
            matches!(e, ImpairError::BadDuration { .. })
        }),
        ("delay=1e9s", |e| {
            matches!(e, ImpairError::BadDuration { .. })
        }),
        ("delay=99999999999999999999s", |e| {
            matches!(e, ImpairError::BadDuration { .. })
        }),
        ("delay=100s", |e| matches!(e, ImpairError::TooLong { .. })),
        ("rate=1mbps", |e| matches!(e, ImpairError::BadRate { .. })),
        ("rate=1", |e| matches!(e, ImpairError::BadRate { .. })),
        ("rate=5tbit", |e| matches!(e, ImpairError::BadRate { .. })),
        ("rate=0bit", |e| matches!(e, ImpairError::ZeroRate)),
        ("rate=1mbit,queue=50", |e| {
            matches!(e, ImpairError::BadQueue { .. })
        }),
        ("rate=1mbit,queue=5gb", |e| {
            matches!(e, ImpairError::BadQueue { .. })
        }),
        ("queue=50ms", |e| matches!(e, ImpairError::QueueWithoutRate)),
        ("burst=1%", |e| matches!(e, ImpairError::BadBurst { .. })),
        ("burst=1%/2%/3%/4%/5%", |e| {
            matches!(e, ImpairError::BadBurst { .. })
        }),
        ("burst=a/b", |e| matches!(e, ImpairError::BadBurst { .. })),
        ("burst=1%/200%", |e| {
            matches!(e, ImpairError::PercentOutOfRange { .. })
        }),
        ("dist=pareto", |e| {
            matches!(e, ImpairError::BadDistribution { .. })
        }),
    ];
    for (flags, expected) in cases {
        let error = ImpairmentConfig::parse_flags(flags).unwrap_err();
        assert!(expected(&error), "{flags:?} gave {error:?}");
        assert!(!error.to_string().is_empty());
    }
    assert_eq!(
        ImpairmentConfig::parse_flags("rate=1mbps")
            .unwrap_err()
            .to_string(),
        "rate=\"1mbps\": expected a rate in bit, kbit, mbit or gbit (tc units; kbps-style units \
         are refused because tc reads them as bytes), such as 1mbit"
    );
}

#[test]
fn out_of_range_struct_values_are_clamped_not_panicking() {
    let config = ImpairmentConfig {
        loss_pct: f64::NAN,
        duplicate_pct: 250.0,
        delay: Duration::from_secs(1_000_000),
        rate: Some(RateLimit {
            bits_per_second: 0,
            queue_limit: QueueLimit::Bytes(0),
        }),
        ..ImpairmentConfig::default()
    };
    assert!(config.validate().is_err());
    let mut stage = Impairment::new(config, SEED);
    assert_eq!(stage.config().loss_pct, 0.0);
    assert_eq!(stage.config().duplicate_pct, 100.0);
    let now = Instant::now();
    stage.push(now, datagram(0, 10));
    assert_eq!(stage.stats().duplicated, 1);
    assert!(stage.poll_timeout().unwrap() > now + Duration::from_secs(59));
}

proptest! {
    /// Any text: an error or a valid configuration, never a panic.
    #[test]
    fn flag_parser_never_panics(flags in ".{0,80}") {
        if let Ok(config) = ImpairmentConfig::parse_flags(&flags) {
            prop_assert!(config.validate().is_ok());
        }
    }

    /// Plausible-looking text too.
    #[test]
    fn flag_parser_never_panics_on_near_misses(
        items in proptest::collection::vec(
            ("(loss|delay|jitter|rate|queue|dup|reorder|burst|dist)", "[0-9./%a-z]{0,10}"),
            0..6,
        )
    ) {
        let flags: Vec<String> = items.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = ImpairmentConfig::parse_flags(&flags.join(","));
    }
}
