//! Probe controller, sender and result estimator, in simulated time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a test failure"
)]

use std::time::{Duration, Instant};

use relais_bwe::probe::{
    ProbeCluster, ProbeController, ProbeResultEstimator, ProbeSender, MIN_PROBE_BYTES,
    MIN_PROBE_PACKETS,
};
use relais_bwe::{BweConfig, PacketResult};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn drain(controller: &mut ProbeController, now: Instant) -> Vec<ProbeCluster> {
    let mut out = Vec::new();
    while let Some(c) = controller.poll_cluster(now) {
        out.push(c);
    }
    out
}

/// `n` packets of `size` bytes sent every `send_gap` and received every `recv_gap`.
fn synthetic(
    t0: Instant,
    cluster: u32,
    n: usize,
    size: usize,
    send_gap: Duration,
    recv_gap: Duration,
) -> Vec<PacketResult> {
    (0..n)
        .map(|i| PacketResult {
            transport_seq: i as u64,
            size,
            sent: t0 + send_gap * i as u32,
            arrival: Some(t0 + ms(40) + recv_gap * i as u32),
            probe_cluster: Some(cluster),
        })
        .collect()
}

#[test]
fn cluster_sizes_outlast_a_shaper_burst() {
    let c = ProbeCluster::new(7, 4_000_000);
    assert_eq!(c.id, 7);
    assert_eq!(c.min_packets, MIN_PROBE_PACKETS);
    // libwebrtc's 15 ms at 4 Mbit/s (60 000 bits) are fewer than MIN_PROBE_BYTES.
    assert_eq!(c.min_bytes, MIN_PROBE_BYTES);
    assert_eq!(c.duration, ms(20));
    // Above 5.33 Mbit/s, 15 ms are more.
    let c = ProbeCluster::new(8, 8_000_000);
    assert_eq!((c.min_bytes, c.duration), (15_000, ms(15)));
}

#[test]
fn start_probes_at_three_and_six_times_initial() {
    let t0 = Instant::now();
    let mut controller = ProbeController::new(t0);
    assert_eq!(controller.poll_timeout(), Some(t0));
    let clusters = drain(&mut controller, t0);
    let targets: Vec<u64> = clusters.iter().map(|c| c.target_bps).collect();
    assert_eq!(targets, vec![3_000_000, 6_000_000]);
    assert_ne!(clusters[0].id, clusters[1].id);
    assert!(controller.is_probing());

    // Capped at the configured maximum.
    let config = BweConfig {
        initial_bps: 1_000_000,
        min_bps: 50_000,
        max_bps: 4_000_000,
    };
    let mut capped = ProbeController::with_config(t0, config);
    let targets: Vec<u64> = drain(&mut capped, t0)
        .iter()
        .map(|c| c.target_bps)
        .collect();
    assert_eq!(targets, vec![3_000_000, 4_000_000]);
}

#[test]
fn good_result_probes_further_then_round_ends() {
    let t0 = Instant::now();
    let mut controller = ProbeController::new(t0);
    drain(&mut controller, t0);
    // The 6 Mbit/s cluster came back at 5.7: ≥ 70 % of the target, probe further at 2×.
    controller.on_estimate(t0 + ms(200), 5_700_000);
    let further = drain(&mut controller, t0 + ms(200));
    assert_eq!(further.len(), 1);
    assert_eq!(further[0].target_bps, 11_400_000);
    // A weak result stops the search; the round ends a second after the last cluster.
    controller.on_estimate(t0 + ms(400), 6_000_000);
    assert!(drain(&mut controller, t0 + ms(400)).is_empty());
    controller.on_estimate(t0 + ms(1300), 6_000_000);
    assert!(!controller.is_probing());
}

#[test]
fn headroom_probes_capped_by_wanted_and_estimate() {
    let t0 = Instant::now();
    let mut controller = ProbeController::new(t0);
    drain(&mut controller, t0);
    controller.on_estimate(t0 + ms(100), 1_000_000);
    let t = t0 + ms(1500);
    controller.on_estimate(t, 1_000_000);
    assert!(!controller.is_probing());

    // Wanted 1.5 Mbit/s: 1× wanted, then 2× wanted capped at wanted × 1.2.
    controller.request_headroom(t, 1_500_000);
    let targets: Vec<u64> = drain(&mut controller, t)
        .iter()
        .map(|c| c.target_bps)
        .collect();
    assert_eq!(targets, vec![1_500_000, 1_800_000]);

    // Rate limited: the same request right away gives nothing.
    controller.request_headroom(t + ms(10), 1_500_000);
    assert!(drain(&mut controller, t + ms(10)).is_empty());

    // A larger wanted rate is served once the round is over; capped at 2× the estimate.
    controller.on_estimate(t + ms(1100), 1_000_000);
    controller.request_headroom(t + ms(1100), 10_000_000);
    let t2 = t + ms(1100);
    let targets: Vec<u64> = drain(&mut controller, t2)
        .iter()
        .map(|c| c.target_bps)
        .collect();
    assert_eq!(targets, vec![2_000_000]);
}

#[test]
fn headroom_request_waits_for_rate_limit_via_poll_timeout() {
    let t0 = Instant::now();
    let mut controller = ProbeController::new(t0);
    drain(&mut controller, t0);
    controller.on_estimate(t0 + ms(50), 1_000_000);
    controller.request_headroom(t0 + ms(50), 3_000_000);
    assert!(drain(&mut controller, t0 + ms(50)).is_empty());
    let when = controller
        .poll_timeout()
        .expect("a wake-up for the pending request");
    assert!(when > t0 + ms(50));
    assert!(when <= t0 + ms(1100));
    let clusters = drain(&mut controller, when);
    assert!(!clusters.is_empty());
    assert!(clusters.iter().all(|c| c.target_bps <= 2_000_000));
}

#[test]
fn periodic_probing_while_estimate_far_below_wanted() {
    let t0 = Instant::now();
    let mut controller = ProbeController::new(t0);
    drain(&mut controller, t0);
    controller.on_estimate(t0 + ms(100), 1_000_000);
    let t = t0 + ms(1200);
    controller.request_headroom(t, 5_000_000);
    assert_eq!(drain(&mut controller, t).len(), 1); // capped at 2 Mbit/s
                                                    // The probe failed (estimate unchanged); next round only ~5 s later.
    controller.on_estimate(t + ms(2000), 1_000_000);
    assert!(drain(&mut controller, t + ms(2000)).is_empty());
    assert_eq!(controller.poll_timeout(), Some(t + ms(5000)));
    assert!(drain(&mut controller, t + ms(4999)).is_empty());
    let again = drain(&mut controller, t + ms(5000));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].target_bps, 2_000_000);

    // No periodic probing once the estimate is close to the wanted rate.
    controller.on_estimate(t + ms(7000), 4_500_000);
    assert!(drain(&mut controller, t + ms(20_000)).is_empty());
}

#[test]
fn overuse_stops_probing_and_backs_off() {
    let t0 = Instant::now();
    let mut controller = ProbeController::new(t0);
    let first = controller.poll_cluster(t0);
    assert!(first.is_some());
    controller.on_overuse(t0 + ms(5));
    assert!(!controller.is_probing());
    assert!(drain(&mut controller, t0 + ms(5)).is_empty());

    controller.on_estimate(t0 + ms(10), 800_000);
    controller.request_headroom(t0 + ms(10), 2_000_000);
    assert!(drain(&mut controller, t0 + ms(10)).is_empty());
    // The back-off (2 s from the overuse) holds the request back; then it is served.
    assert!(drain(&mut controller, t0 + ms(1900)).is_empty());
    let when = controller
        .poll_timeout()
        .expect("a wake-up for the request");
    assert!(when >= t0 + ms(2005));
    let clusters = drain(&mut controller, when);
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0].target_bps, 1_600_000);

    // A second probe-induced overuse doubles the back-off to 4 s.
    controller.on_overuse(when + ms(50));
    controller.request_headroom(when + ms(60), 3_000_000);
    assert!(drain(&mut controller, when + ms(4000)).is_empty());
    assert!(!drain(&mut controller, when + ms(5100)).is_empty());
}

#[test]
fn sender_paces_cluster_at_target_rate() {
    let t0 = Instant::now();
    let mut sender = ProbeSender::new();
    let cluster = ProbeCluster::new(3, 1_000_000);
    sender.add_cluster(t0, cluster);
    let mut sends = Vec::new();
    let mut now = t0;
    for _ in 0..1000 {
        while let Some(s) = sender.poll_send(now) {
            sends.push((now, s));
        }
        match sender.poll_timeout() {
            Some(t) => now = t,
            None => break,
        }
    }
    assert!(!sender.is_probing());
    assert!(sends.len() >= cluster.min_packets);
    let bytes: usize = sends.iter().map(|(_, s)| s.bytes).sum();
    assert!(bytes >= cluster.min_bytes);
    assert!(sends.iter().all(|(_, s)| s.cluster == 3));
    // Rate over the cluster (without the last packet): ~1 Mbit/s.
    let span = sends.last().map(|(t, _)| *t - t0).unwrap_or_default();
    let last = sends.last().map(|(_, s)| s.bytes).unwrap_or_default();
    let rate = (bytes - last) as f64 * 8.0 / span.as_secs_f64();
    assert!((rate - 1_000_000.0).abs() < 50_000.0, "rate {rate}");
    // Nothing sent before it is due.
    let mut sender = ProbeSender::new();
    sender.add_cluster(t0, cluster);
    assert!(sender.poll_send(t0).is_some());
    assert!(sender.poll_send(t0).is_none());
}

#[test]
fn media_sent_during_a_cluster_is_part_of_it() {
    let t0 = Instant::now();
    let mut sender = ProbeSender::new();
    // No cluster, or one not started yet: media is media.
    assert_eq!(sender.on_media_sent(t0, 1200), None);
    let cluster = ProbeCluster::new(4, 2_000_000);
    sender.add_cluster(t0, cluster);
    assert_eq!(sender.on_media_sent(t0, 1200), None);

    // Started: 500 bytes (2 ms at 2 Mbit/s) of probe, then 1200 bytes of media leave at
    // once; the media takes its 4.8 ms of the cluster's schedule.
    let first = sender.poll_send(t0).expect("the first probe packet");
    assert_eq!((first.cluster, first.bytes), (4, 500));
    assert_eq!(sender.on_media_sent(t0, 1200), Some(4));
    assert_eq!(
        sender.poll_timeout(),
        Some(t0 + Duration::from_micros(6_800))
    );

    // The rest is 500-byte probe packets until 10 000 bytes (40 ms) and 5 packets are out:
    // 9 000 bytes of probe with the media, where the cluster alone takes 10 000.
    let mut probe_bytes = first.bytes;
    let mut packets = 2;
    let mut now = t0;
    while let Some(t) = sender.poll_timeout() {
        now = t;
        while let Some(s) = sender.poll_send(now) {
            probe_bytes += s.bytes;
            packets += 1;
        }
    }
    assert!(!sender.is_probing());
    assert_eq!(probe_bytes, 9_000);
    assert!(packets >= cluster.min_packets);
    // Done: media after it is media again.
    assert_eq!(sender.on_media_sent(now, 1200), None);
}

#[test]
fn sender_end_to_end_with_estimator() {
    let t0 = Instant::now();
    let mut sender = ProbeSender::new();
    let mut estimator = ProbeResultEstimator::new();
    let cluster = ProbeCluster::new(9, 3_000_000);
    estimator.add_cluster(&cluster);
    sender.add_cluster(t0, cluster);
    let mut results = Vec::new();
    let mut now = t0;
    for seq in 0..1000u64 {
        if let Some(s) = sender.poll_send(now) {
            results.push(PacketResult {
                transport_seq: seq,
                size: s.bytes,
                sent: now,
                // The path delivers it unchanged, 30 ms later.
                arrival: Some(now + ms(30)),
                probe_cluster: Some(s.cluster),
            });
        }
        match sender.poll_timeout() {
            Some(t) => now = t,
            None => break,
        }
    }
    let (id, bps) = estimator.on_results(&results).expect("a probe result");
    assert_eq!(id, 9);
    assert!((bps as f64 - 3_000_000.0).abs() < 150_000.0, "bps {bps}");
}

#[test]
fn result_is_capped_by_receive_rate() {
    let t0 = Instant::now();
    let mut estimator = ProbeResultEstimator::new();
    let cluster = ProbeCluster::new(1, 4_000_000);
    estimator.add_cluster(&cluster);
    // 40 × 1000 bytes sent every 2 ms (4 Mbit/s), received every 4 ms (2 Mbit/s).
    let results = synthetic(t0, 1, 40, 1000, ms(2), ms(4));
    let (id, bps) = estimator.on_results(&results).expect("a probe result");
    assert_eq!(id, 1);
    // Saturated link: 95 % of the receive rate.
    assert!((bps as f64 - 1_900_000.0).abs() < 20_000.0, "bps {bps}");
    assert!(bps <= 2_000_000);
}

#[test]
fn only_a_probe_that_found_the_capacity_limits_the_path() {
    let t0 = Instant::now();
    let mut estimator = ProbeResultEstimator::new();
    for id in 1..=3 {
        estimator.add_cluster(&ProbeCluster::new(id, 4_000_000));
    }
    // Received as fast as sent (2 Mbit/s): the probe measured itself, not the path.
    let kept_up = synthetic(t0, 1, 40, 1000, ms(4), ms(4));
    let (_, bps) = estimator.on_results(&kept_up).expect("a probe result");
    assert!((bps as f64 - 2_000_000.0).abs() < 100_000.0, "bps {bps}");
    assert_eq!(estimator.path_limit_bps(), None);
    // Sent at 4, received at 2 Mbit/s: the link's capacity.
    let saturated = synthetic(t0 + ms(500), 2, 40, 1000, ms(2), ms(4));
    let (_, limit) = estimator.on_results(&saturated).expect("a probe result");
    assert_eq!(estimator.path_limit_bps(), Some(limit));
    // A later probe that carried more lifts the limit.
    let faster = synthetic(t0 + ms(1000), 3, 40, 1000, ms(1), ms(1));
    estimator.on_results(&faster).expect("a probe result");
    assert_eq!(estimator.path_limit_bps(), None);
}

/// What `tc tbf rate 1mbit burst 32kbit` does to a 2 Mbit/s cluster: the first 4000 bytes
/// pass at line rate, the rest leaves at 1 Mbit/s.
#[test]
fn token_bucket_burst_does_not_inflate_the_result() {
    let t0 = Instant::now();
    let mut estimator = ProbeResultEstimator::new();
    let cluster = ProbeCluster::new(3, 2_000_000);
    estimator.add_cluster(&cluster);
    let (size, rate_bps, burst_bytes) = (500_usize, 1_000_000_f64, 4_000_f64);
    let packets = cluster.min_bytes / size;
    // The bucket: `tokens` bytes at `token_time`; a packet leaves once the bucket holds its
    // size, in order.
    let (mut tokens, mut token_time) = (burst_bytes, t0);
    let results: Vec<PacketResult> = (0..packets)
        .map(|i| {
            // Sent every 2 ms: 500 bytes at 2 Mbit/s.
            let sent = t0 + ms(2) * i as u32;
            let mut leave = sent.max(token_time);
            let mut available =
                (tokens + (leave - token_time).as_secs_f64() * rate_bps / 8.0).min(burst_bytes);
            if available < size as f64 {
                leave += Duration::from_secs_f64((size as f64 - available) * 8.0 / rate_bps);
                available = size as f64;
            }
            tokens = available - size as f64;
            token_time = leave;
            PacketResult {
                transport_seq: i as u64,
                size,
                sent,
                arrival: Some(leave + ms(20)),
                probe_cluster: Some(3),
            }
        })
        .collect();
    let (_, bps) = estimator.on_results(&results).expect("a probe result");
    // Over the whole cluster the link seems to carry 1.6 Mbit/s (the bucket's 4000 bytes
    // arrive as sent); its later half, mostly paced by the shaper, shows ~1.3 Mbit/s.
    let first = results.iter().filter_map(|r| r.arrival).min().unwrap();
    let last = results.iter().filter_map(|r| r.arrival).max().unwrap();
    let whole_bps = ((packets - 1) * size * 8) as f64 / (last - first).as_secs_f64();
    assert!(whole_bps > 1_500_000.0, "whole {whole_bps}");
    assert!(bps <= 1_250_000, "bps {bps}");
    assert!(bps >= 900_000, "bps {bps}");
}

#[test]
fn unsaturated_result_is_min_of_send_and_receive() {
    let t0 = Instant::now();
    let mut estimator = ProbeResultEstimator::new();
    estimator.add_cluster(&ProbeCluster::new(2, 4_000_000));
    let results = synthetic(t0, 2, 40, 1000, ms(2), ms(2));
    let (_, bps) = estimator.on_results(&results).expect("a probe result");
    assert!((bps as f64 - 4_000_000.0).abs() < 20_000.0, "bps {bps}");
}

#[test]
fn too_few_packets_give_no_result() {
    let t0 = Instant::now();
    let mut estimator = ProbeResultEstimator::new();
    // 4 Mbit/s: min 10 000 bytes, 5 packets. 3 packets is below 80 % of 5.
    estimator.add_cluster(&ProbeCluster::new(1, 4_000_000));
    let results = synthetic(t0, 1, 3, 1000, ms(2), ms(2));
    assert_eq!(estimator.on_results(&results), None);
    // 5 packets of 1000 bytes: enough packets, but 5 000 < 80 % of 10 000 bytes.
    let mut estimator = ProbeResultEstimator::new();
    estimator.add_cluster(&ProbeCluster::new(1, 4_000_000));
    let results = synthetic(t0, 1, 5, 1000, ms(2), ms(2));
    assert_eq!(estimator.on_results(&results), None);
    // The rest of the cluster in a later feedback completes it.
    let more: Vec<PacketResult> = synthetic(t0, 1, 40, 1000, ms(2), ms(2))
        .into_iter()
        .skip(5)
        .collect();
    assert!(estimator.on_results(&more).is_some());
}

#[test]
fn lossy_cluster_and_non_probe_packets_give_no_result() {
    let t0 = Instant::now();
    let mut estimator = ProbeResultEstimator::new();
    estimator.add_cluster(&ProbeCluster::new(1, 4_000_000));
    let mut results = synthetic(t0, 1, 50, 1000, ms(2), ms(2));
    for r in results.iter_mut().skip(1).step_by(3) {
        r.arrival = None; // 17 of 50 lost: enough bytes arrive, too many are lost
    }
    assert_eq!(estimator.on_results(&results), None);

    let mut plain = synthetic(t0, 5, 10, 1000, ms(2), ms(2));
    for r in &mut plain {
        r.probe_cluster = None;
    }
    assert_eq!(estimator.on_results(&plain), None);

    // Receive rate more than twice the send rate is not believable.
    let mut estimator = ProbeResultEstimator::new();
    let results = synthetic(t0, 4, 10, 1000, ms(4), ms(1));
    assert_eq!(estimator.on_results(&results), None);
}

mod arbitrary {
    use super::*;
    use proptest::prelude::*;

    fn result() -> impl Strategy<Value = (u64, usize, u64, Option<u64>, Option<u32>)> {
        (
            any::<u64>(),
            prop_oneof![Just(0usize), 0usize..2000, Just(usize::MAX)],
            0u64..3_000_000,
            proptest::option::of(0u64..3_000_000),
            proptest::option::of(0u32..4),
        )
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
        fn estimator_never_panics(batches in proptest::collection::vec(
            proptest::collection::vec(result(), 0..40), 1..6)) {
            let t0 = Instant::now();
            let mut estimator = ProbeResultEstimator::new();
            estimator.add_cluster(&ProbeCluster::new(0, 0));
            estimator.add_cluster(&ProbeCluster::new(1, u64::MAX));
            for batch in batches {
                let results: Vec<PacketResult> = batch
                    .into_iter()
                    .map(|(seq, size, sent, arrival, cluster)| PacketResult {
                        transport_seq: seq,
                        size,
                        sent: t0 + Duration::from_micros(sent),
                        arrival: arrival.map(|a| t0 + Duration::from_micros(a)),
                        probe_cluster: cluster,
                    })
                    .collect();
                let _ = estimator.on_results(&results);
            }
        }

        #[test]
        fn controller_and_sender_never_panic(ops in proptest::collection::vec(
            (0u8..4, any::<u64>(), 0u64..3_000_000), 1..100)) {
            let t0 = Instant::now();
            let mut controller = ProbeController::new(t0);
            let mut sender = ProbeSender::new();
            let mut now = t0;
            for (kind, value, advance_us) in ops {
                now += Duration::from_micros(advance_us);
                match kind {
                    0 => controller.on_estimate(now, value),
                    1 => controller.request_headroom(now, value),
                    2 => controller.on_overuse(now),
                    _ => {}
                }
                while let Some(c) = controller.poll_cluster(now) {
                    sender.add_cluster(now, c);
                }
                for _ in 0..10_000 {
                    if sender.poll_send(now).is_none() {
                        break;
                    }
                }
                let _ = controller.poll_timeout();
                let _ = sender.poll_timeout();
            }
        }
    }
}
