//! The receiver estimate against a deterministic bottleneck model, and its rules in isolation.
//!
//! The model: a sender paces 1200-byte packets at min(estimate, offered) into a FIFO link
//! (capacity in bit/s, possibly stepping over time; drop-tail at a queue limit in ms), then
//! 20 ms of propagation and optional random loss (an inline splitmix64, seeded). Every
//! 50 ms the receiver reports every packet up to the last one that arrived (lost ones as
//! such); the report reaches the sender 20 ms later. Optionally, every 5 s the sender sends
//! a probe cluster at 2 × the estimate and feeds the rate its feedback shows to
//! `on_probe_result`. Time is simulated: `Instant`s are one base plus offsets.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use relais_bwe::estimator::BandwidthEstimator;
use relais_bwe::loss::{LossBasedController, LossState};
use relais_bwe::{BweConfig, PacketResult};

const PACKET_BYTES: usize = 1200;
const PROPAGATION_US: f64 = 20_000.0;
const FEEDBACK_INTERVAL_US: u64 = 50_000;
const TICK_US: u64 = 1_000;

/// splitmix64, for reproducible random loss.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone)]
struct Scenario {
    /// (from second, capacity bit/s), sorted.
    capacity: Vec<(u64, u64)>,
    queue_limit_ms: u64,
    random_loss: f64,
    offered_bps: u64,
    initial_bps: u64,
    probe_every_s: Option<u64>,
    duration_s: u64,
    seed: u64,
}

impl Scenario {
    fn capacity_at(&self, us: f64) -> f64 {
        let mut cap = 1_000_000;
        for &(from_s, bps) in &self.capacity {
            if us >= (from_s * 1_000_000) as f64 {
                cap = bps;
            }
        }
        cap as f64
    }
}

struct Sent {
    seq: u64,
    send_us: f64,
    size: usize,
    arrival_us: Option<f64>,
    cluster: Option<u32>,
}

#[derive(Clone, Copy)]
struct Sample {
    t_us: u64,
    estimate: u64,
}

struct Probe {
    cluster: u32,
    remaining: usize,
    rate_bps: f64,
}

#[derive(Default)]
struct ClusterStats {
    total: usize,
    reported: usize,
    sends: Vec<(f64, usize)>,
    arrivals: Vec<(f64, usize)>,
}

impl ClusterStats {
    /// min(send rate, receive rate) over the cluster, if most of it arrived.
    fn rate_bps(&self) -> Option<u64> {
        if self.arrivals.len() * 10 < self.total * 8 || self.arrivals.len() < 2 {
            return None;
        }
        let rate = |v: &[(f64, usize)]| -> Option<f64> {
            let first = v.first()?;
            let last = v.last()?;
            let span = last.0 - first.0;
            if span <= 0.0 {
                return None;
            }
            let bytes: usize = v.iter().skip(1).map(|p| p.1).sum();
            Some(bytes as f64 * 8.0 * 1e6 / span)
        };
        let mut arrivals = self.arrivals.clone();
        arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));
        let r = rate(&self.sends)?.min(rate(&arrivals)?);
        Some(r as u64)
    }
}

struct Trace {
    samples: Vec<Sample>,
    /// (send time, queuing delay) of every packet the link accepted (µs).
    queuing: Vec<(f64, f64)>,
    /// (time, measured rate) of every probe fed to the estimator.
    probes: Vec<(u64, u64)>,
    loss_ratios: Vec<(u64, f64)>,
}

impl Trace {
    fn estimate_at(&self, s: f64) -> u64 {
        let us = (s * 1e6) as u64;
        self.samples
            .iter()
            .rev()
            .find(|x| x.t_us <= us)
            .map_or(0, |x| x.estimate)
    }

    fn in_range(&self, from_s: f64, to_s: f64) -> impl Iterator<Item = &Sample> {
        let (a, b) = ((from_s * 1e6) as u64, (to_s * 1e6) as u64);
        self.samples
            .iter()
            .filter(move |x| x.t_us >= a && x.t_us <= b)
    }

    fn min_max_mean(&self, from_s: f64, to_s: f64) -> (u64, u64, u64) {
        let v: Vec<u64> = self.in_range(from_s, to_s).map(|x| x.estimate).collect();
        let min = v.iter().copied().min().unwrap_or(0);
        let max = v.iter().copied().max().unwrap_or(0);
        let mean = if v.is_empty() {
            0
        } else {
            v.iter().sum::<u64>() / v.len() as u64
        };
        (min, max, mean)
    }

    /// First time at or after `from_s` the estimate satisfies `pred`.
    fn first_time(&self, from_s: f64, pred: impl Fn(u64) -> bool) -> Option<f64> {
        let a = (from_s * 1e6) as u64;
        self.samples
            .iter()
            .find(|x| x.t_us >= a && pred(x.estimate))
            .map(|x| x.t_us as f64 / 1e6)
    }

    /// (max, mean) queuing delay in ms of packets sent within the range.
    fn queuing_ms(&self, from_s: f64, to_s: f64) -> (f64, f64) {
        let v: Vec<f64> = self
            .queuing
            .iter()
            .filter(|(t, _)| *t >= from_s * 1e6 && *t <= to_s * 1e6)
            .map(|(_, d)| d / 1000.0)
            .collect();
        let max = v.iter().copied().fold(0.0, f64::max);
        let mean = if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        };
        (max, mean)
    }

    fn mean_loss(&self, from_s: f64) -> f64 {
        let v: Vec<f64> = self
            .loss_ratios
            .iter()
            .filter(|(t, _)| *t as f64 >= from_s * 1e6)
            .map(|x| x.1)
            .collect();
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    }
}

fn run(sc: &Scenario) -> Trace {
    let t0 = Instant::now();
    let at = |us: f64| t0 + Duration::from_micros(us.max(0.0).round() as u64);
    let config = BweConfig {
        initial_bps: sc.initial_bps,
        min_bps: 50_000,
        max_bps: 50_000_000,
    };
    let mut bwe = BandwidthEstimator::new(config, t0);
    let mut rng = SplitMix(sc.seed);

    let mut link_free_us = 0.0f64;
    let mut unreported: VecDeque<Sent> = VecDeque::new();
    let mut feedback_in_flight: VecDeque<(u64, Vec<PacketResult>)> = VecDeque::new();
    let mut next_send_us = 0.0f64;
    let mut next_feedback_us = FEEDBACK_INTERVAL_US;
    let mut next_probe_us = sc.probe_every_s.map(|s| s * 1_000_000);
    let mut probe: Option<Probe> = None;
    let mut clusters: HashMap<u32, ClusterStats> = HashMap::new();
    let mut next_cluster = 0u32;
    let mut seq = 0u64;
    let end_us = sc.duration_s * 1_000_000;
    let queue_limit_us = sc.queue_limit_ms as f64 * 1000.0;

    let mut trace = Trace {
        samples: Vec::new(),
        queuing: Vec::new(),
        probes: Vec::new(),
        loss_ratios: Vec::new(),
    };

    let mut t = 0u64;
    while t <= end_us {
        // Feedback reaching the sender.
        while feedback_in_flight.front().is_some_and(|(d, _)| *d <= t) {
            let Some((deliver_us, results)) = feedback_in_flight.pop_front() else {
                break;
            };
            let now = at(deliver_us as f64);
            bwe.on_feedback(now, &results);
            trace.loss_ratios.push((deliver_us, bwe.loss_ratio()));
            for r in &results {
                let Some(c) = r.probe_cluster else { continue };
                let Some(stats) = clusters.get_mut(&c) else {
                    continue;
                };
                stats.reported += 1;
                if let Some(a) = r.arrival {
                    let us = a.duration_since(t0).as_secs_f64() * 1e6;
                    stats.arrivals.push((us, r.size));
                }
            }
            let done: Vec<u32> = clusters
                .iter()
                .filter(|(_, s)| s.total > 0 && s.reported >= s.total)
                .map(|(c, _)| *c)
                .collect();
            for c in done {
                if let Some(stats) = clusters.remove(&c) {
                    if let Some(rate) = stats.rate_bps() {
                        bwe.on_probe_result(now, rate);
                        trace.probes.push((deliver_us, rate));
                    }
                }
            }
        }

        // A probe cluster at 2 × the estimate.
        if let Some(p_us) = next_probe_us {
            if t >= p_us && probe.is_none() {
                let rate_bps = 2.0 * bwe.estimate_bps() as f64;
                let for_15ms = (0.015 * rate_bps / (PACKET_BYTES as f64 * 8.0)).ceil() as usize;
                probe = Some(Probe {
                    cluster: next_cluster,
                    remaining: for_15ms.max(10),
                    rate_bps,
                });
                clusters.insert(next_cluster, ClusterStats::default());
                next_cluster += 1;
                next_probe_us = sc.probe_every_s.map(|s| p_us + s * 1_000_000);
            }
        }

        // Paced sending.
        while next_send_us <= t as f64 {
            let send_us = next_send_us;
            let (rate, cluster) = match probe.as_mut() {
                Some(p) => {
                    p.remaining -= 1;
                    let r = (p.rate_bps, Some(p.cluster));
                    if p.remaining == 0 {
                        probe = None;
                    }
                    r
                }
                None => ((bwe.estimate_bps().min(sc.offered_bps)) as f64, None),
            };
            if let Some(c) = cluster {
                if let Some(stats) = clusters.get_mut(&c) {
                    stats.total += 1;
                    stats.sends.push((send_us, PACKET_BYTES));
                }
            }
            let backlog_us = (link_free_us - send_us).max(0.0);
            let arrival_us = if backlog_us > queue_limit_us {
                None
            } else {
                let tx_us = PACKET_BYTES as f64 * 8.0 * 1e6 / sc.capacity_at(send_us);
                link_free_us = link_free_us.max(send_us) + tx_us;
                trace.queuing.push((send_us, backlog_us));
                if sc.random_loss > 0.0 && rng.next_f64() < sc.random_loss {
                    None
                } else {
                    Some(link_free_us + PROPAGATION_US)
                }
            };
            unreported.push_back(Sent {
                seq,
                send_us,
                size: PACKET_BYTES,
                arrival_us,
                cluster,
            });
            seq += 1;
            next_send_us += PACKET_BYTES as f64 * 8.0 * 1e6 / rate.max(1.0);
        }

        // The receiver's feedback: everything up to the last packet that arrived.
        if t >= next_feedback_us {
            let last = unreported
                .iter()
                .rposition(|p| p.arrival_us.is_some_and(|a| a <= t as f64));
            if let Some(last) = last {
                let results: Vec<PacketResult> = unreported
                    .drain(..=last)
                    .map(|p| PacketResult {
                        transport_seq: p.seq,
                        size: p.size,
                        sent: at(p.send_us),
                        arrival: p.arrival_us.map(at),
                        probe_cluster: p.cluster,
                    })
                    .collect();
                feedback_in_flight.push_back((t + PROPAGATION_US as u64, results));
            }
            next_feedback_us += FEEDBACK_INTERVAL_US;
        }

        if t % 100_000 == 0 {
            trace.samples.push(Sample {
                t_us: t,
                estimate: bwe.estimate_bps(),
            });
        }
        t += TICK_US;
    }
    trace
}

fn mbps(bps: u64) -> f64 {
    bps as f64 / 1e6
}

#[test]
fn converges_to_a_2_mbps_link() {
    let cap = 2_000_000;
    let sc = Scenario {
        capacity: vec![(0, cap)],
        queue_limit_ms: 500,
        random_loss: 0.0,
        offered_bps: 3_000_000,
        initial_bps: 1_000_000,
        probe_every_s: None,
        duration_s: 40,
        seed: 1,
    };
    let tr = run(&sc);
    let reach = tr.first_time(0.0, |e| e >= cap * 8 / 10);
    let at10 = tr.estimate_at(10.0);
    let (min, max, mean) = tr.min_max_mean(10.0, 40.0);
    let (q_max, q_mean) = tr.queuing_ms(10.0, 40.0);
    eprintln!(
        "(a) 2 Mbit/s link from 1 Mbit/s: 80 % reached at {reach:?} s; at 10 s {:.3} Mbit/s; \
         10-40 s min {:.3} max {:.3} mean {:.3} Mbit/s; queuing 10-40 s max {q_max:.1} ms mean {q_mean:.1} ms",
        mbps(at10),
        mbps(min),
        mbps(max),
        mbps(mean)
    );
    assert!(
        reach.is_some_and(|s| s <= 10.0),
        "80 % of capacity reached at {reach:?}"
    );
    assert!((cap * 8 / 10..=cap).contains(&at10), "at 10 s: {at10}");
    assert!(min >= cap * 7 / 10, "min after 10 s: {min}");
    assert!(max <= cap * 11 / 10, "max after 10 s: {max}");
    assert!(
        (cap * 8 / 10..=cap).contains(&mean),
        "mean after 10 s: {mean}"
    );
    assert!(q_max < 200.0, "queuing after convergence: {q_max} ms");
}

fn step_scenario(probe_every_s: Option<u64>) -> Scenario {
    Scenario {
        capacity: vec![(0, 5_000_000), (20, 1_000_000), (40, 5_000_000)],
        queue_limit_ms: 500,
        random_loss: 0.0,
        offered_bps: 5_000_000,
        initial_bps: 1_000_000,
        probe_every_s,
        duration_s: 55,
        seed: 2,
    }
}

#[test]
fn follows_capacity_steps_without_probes() {
    let tr = run(&step_scenario(None));
    let at20 = tr.estimate_at(20.0);
    let down = tr.first_time(20.0, |e| e < 1_100_000);
    let (min, max, mean) = tr.min_max_mean(25.0, 40.0);
    let (q_max, q_mean) = tr.queuing_ms(25.0, 40.0);
    let at55 = tr.estimate_at(55.0);
    eprintln!(
        "(b) 5 -> 1 Mbit/s at 20 s: estimate at 20 s {:.3}, < 1.1 Mbit/s at {down:?} s; \
         25-40 s min {:.3} max {:.3} mean {:.3} Mbit/s, queuing max {q_max:.1} ms mean {q_mean:.1} ms; \
         1 -> 5 Mbit/s at 40 s, no probes: {:.3} Mbit/s at 55 s",
        mbps(at20),
        mbps(min),
        mbps(max),
        mbps(mean),
        mbps(at55)
    );
    assert!(
        down.is_some_and(|s| s <= 22.0),
        "below 1.1 Mbit/s at {down:?}"
    );
    assert!(max <= 1_100_000, "25-40 s max {max}");
    assert!(at55 > 1_000_000, "recovers at all: {at55}");
}

#[test]
fn follows_capacity_steps_with_probes() {
    let tr = run(&step_scenario(Some(5)));
    let down = tr.first_time(20.0, |e| e < 1_100_000);
    let up = tr.first_time(40.0, |e| e >= 4_000_000);
    let at55 = tr.estimate_at(55.0);
    let (min, max, _) = tr.min_max_mean(25.0, 40.0);
    let probes: Vec<String> = tr
        .probes
        .iter()
        .map(|(t, r)| format!("{:.1}s:{:.2}", *t as f64 / 1e6, mbps(*r)))
        .collect();
    eprintln!(
        "(b') with a probe at 2x every 5 s: < 1.1 Mbit/s at {down:?} s; 25-40 s min {:.3} max {:.3}; \
         >= 4 Mbit/s at {up:?} s after the step up; {:.3} Mbit/s at 55 s; probes [{}]",
        mbps(min),
        mbps(max),
        mbps(at55),
        probes.join(" ")
    );
    assert!(
        down.is_some_and(|s| s <= 22.0),
        "below 1.1 Mbit/s at {down:?}"
    );
    assert!(up.is_some_and(|s| s <= 55.0), ">= 4 Mbit/s at {up:?}");
}

#[test]
fn random_loss_without_congestion_keeps_the_estimate_up() {
    let cap = 2_000_000;
    let sc = Scenario {
        capacity: vec![(0, cap)],
        queue_limit_ms: 500,
        random_loss: 0.05,
        offered_bps: 3_000_000,
        initial_bps: 1_000_000,
        probe_every_s: None,
        duration_s: 40,
        seed: 3,
    };
    let tr = run(&sc);
    let at10 = tr.estimate_at(10.0);
    let (min, max, mean) = tr.min_max_mean(10.0, 40.0);
    let loss = tr.mean_loss(2.0);
    eprintln!(
        "(c) 2 Mbit/s, 5 % random loss (measured {:.1} %): at 10 s {:.3}; 10-40 s min {:.3} max {:.3} mean {:.3} Mbit/s",
        loss * 100.0,
        mbps(at10),
        mbps(min),
        mbps(max),
        mbps(mean)
    );
    assert!(min > cap * 7 / 10, "min after 10 s: {min}");
}

// ---- the rules in isolation ----

fn results(t0: Instant, first_seq: u64, n: u64, lost_every: Option<u64>) -> Vec<PacketResult> {
    (first_seq..first_seq + n)
        .map(|i| PacketResult {
            transport_seq: i,
            size: PACKET_BYTES,
            sent: t0 + Duration::from_millis(i),
            arrival: match lost_every {
                Some(k) if i % k == 0 => None,
                _ => Some(t0 + Duration::from_millis(20 + i)),
            },
            probe_cluster: None,
        })
        .collect()
}

/// 21 feedbacks of 20 packets, 50 ms apart from `start` + 50 ms: one interval is judged
/// at `start` + 1050 ms (the first feedback opens it, the 21st closes it).
fn feed_loss(ctl: &mut LossBasedController, start: Instant, lost_every: Option<u64>, current: u64) {
    for f in 0..21u64 {
        let now = start + Duration::from_millis(50 * (f + 1));
        ctl.on_feedback(now, &results(start, f * 20, 20, lost_every), current);
    }
}

#[test]
fn loss_rule_decreases_above_10_percent() {
    let t0 = Instant::now();
    let mut ctl = LossBasedController::new(BweConfig::default());
    // 1 in 5 lost: 20 %.
    feed_loss(&mut ctl, t0, Some(5), 1_000_000);
    assert_eq!(ctl.state(), LossState::Decrease);
    assert!(
        (ctl.loss_ratio() - 0.2).abs() < 1e-9,
        "{}",
        ctl.loss_ratio()
    );
    // 1 Mbit/s × (1 − 0.5 × 0.2).
    assert_eq!(ctl.bound_bps(), 900_000);
}

#[test]
fn loss_rule_holds_between_2_and_10_percent() {
    let t0 = Instant::now();
    let mut ctl = LossBasedController::new(BweConfig::default());
    feed_loss(&mut ctl, t0, Some(5), 1_000_000);
    let after_decrease = ctl.bound_bps();
    // 1 in 20 lost: 5 %; the next interval runs from the decision at 1050 ms.
    feed_loss(
        &mut ctl,
        t0 + Duration::from_millis(1050),
        Some(20),
        after_decrease,
    );
    assert_eq!(ctl.state(), LossState::Hold);
    assert_eq!(ctl.bound_bps(), after_decrease);
    assert!(
        (ctl.loss_ratio() - 0.05).abs() < 1e-9,
        "{}",
        ctl.loss_ratio()
    );
}

#[test]
fn loss_rule_increases_below_2_percent() {
    let t0 = Instant::now();
    let mut ctl = LossBasedController::new(BweConfig::default());
    feed_loss(&mut ctl, t0, Some(5), 1_000_000);
    let after_decrease = ctl.bound_bps();
    feed_loss(
        &mut ctl,
        t0 + Duration::from_millis(1050),
        None,
        after_decrease,
    );
    assert_eq!(ctl.state(), LossState::Increase);
    // 1 s since the last decision: × 1.08 + 1 kbit/s.
    assert_eq!(ctl.bound_bps(), 973_000);
}

#[test]
fn five_percent_random_loss_rarely_reads_above_10_percent() {
    // 1 Mbit/s of 1200-byte packets (104/s) with 5 % random loss for 10 minutes, feedback
    // every 50 ms: count the intervals judged above 10 %.
    let t0 = Instant::now();
    let mut ctl = LossBasedController::new(BweConfig::default());
    let mut rng = SplitMix(7);
    let (mut decisions, mut decreases, mut seq) = (0u32, 0u32, 0u64);
    for f in 0..12_000u64 {
        let now = t0 + Duration::from_millis(50 * (f + 1));
        let batch: Vec<PacketResult> = (0..5)
            .map(|_| {
                seq += 1;
                PacketResult {
                    transport_seq: seq,
                    size: PACKET_BYTES,
                    sent: now,
                    arrival: (rng.next_f64() >= 0.05).then_some(now),
                    probe_cluster: None,
                }
            })
            .collect();
        ctl.on_feedback(now, &batch, 1_000_000);
        // The first feedback opens an interval, every 20th after it closes one.
        if f > 0 && f % 20 == 0 {
            decisions += 1;
            decreases += u32::from(ctl.state() == LossState::Decrease);
        }
    }
    eprintln!(
        "5 % random loss at 100 packets/s: {decreases} of {decisions} 1-s intervals read > 10 %"
    );
    assert!(decreases * 50 <= decisions, "{decreases} of {decisions}");
}

#[test]
fn one_lossy_feedback_does_not_decide() {
    let t0 = Instant::now();
    let mut ctl = LossBasedController::new(BweConfig::default());
    // One feedback, 20 % lost: too short a window to judge.
    ctl.on_feedback(t0, &results(t0, 0, 40, Some(5)), 1_000_000);
    assert_eq!(ctl.state(), LossState::Observing);
    assert_eq!(ctl.bound_bps(), BweConfig::default().max_bps);
}

#[test]
fn probe_result_raises_the_estimate_at_once() {
    let t0 = Instant::now();
    let config = BweConfig {
        initial_bps: 1_000_000,
        min_bps: 100_000,
        max_bps: 4_000_000,
    };
    let mut bwe = BandwidthEstimator::new(config, t0);
    assert_eq!(bwe.estimate_bps(), 1_000_000);
    bwe.on_probe_result(t0, 500_000);
    assert_eq!(
        bwe.estimate_bps(),
        1_000_000,
        "a lower probe changes nothing"
    );
    bwe.on_probe_result(t0, 2_500_000);
    assert_eq!(bwe.estimate_bps(), 2_500_000);
    bwe.on_probe_result(t0, 9_000_000);
    assert_eq!(bwe.estimate_bps(), 4_000_000, "capped at max_bps");
}

#[test]
fn growing_delay_is_overuse_and_decreases_to_085_of_acknowledged() {
    let t0 = Instant::now();
    let config = BweConfig {
        initial_bps: 3_000_000,
        min_bps: 100_000,
        max_bps: 10_000_000,
    };
    let mut bwe = BandwidthEstimator::new(config, t0);
    // Sent every 5 ms (1.92 Mbit/s), drained every 6 ms (1.6 Mbit/s): the queue grows.
    let mut seen_overuse = false;
    for f in 0..60u64 {
        let batch: Vec<PacketResult> = (f * 10..f * 10 + 10)
            .map(|i| PacketResult {
                transport_seq: i,
                size: PACKET_BYTES,
                sent: t0 + Duration::from_millis(5 * i),
                arrival: Some(t0 + Duration::from_millis(20 + 6 * i)),
                probe_cluster: None,
            })
            .collect();
        let now = t0 + Duration::from_millis(6 * (f * 10 + 10) + 40);
        bwe.on_feedback(now, &batch);
        seen_overuse |= bwe.is_overusing();
    }
    let acked = bwe.acknowledged_bps().unwrap_or(0);
    let est = bwe.estimate_bps();
    eprintln!(
        "growing delay: acknowledged {:.3} Mbit/s, estimate {:.3} Mbit/s",
        mbps(acked),
        mbps(est)
    );
    assert!(seen_overuse);
    assert!((1_550_000..=1_650_000).contains(&acked), "acked {acked}");
    assert!(
        est <= acked * 86 / 100 && est >= acked * 80 / 100,
        "estimate {est}"
    );
}

#[test]
fn steady_delay_increases_and_empty_or_all_lost_feedback_is_harmless() {
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(BweConfig::default(), t0);
    bwe.on_feedback(t0, &[]);
    let lost: Vec<PacketResult> = results(t0, 0, 10, Some(1));
    bwe.on_feedback(t0 + Duration::from_millis(50), &lost);
    assert_eq!(bwe.estimate_bps(), 1_000_000);
    assert_eq!(bwe.loss_ratio(), 1.0);
    // 1200 bytes every 4 ms = 2.4 Mbit/s offered, constant delay: no overuse, the estimate
    // rises (1.08 per second) from 1 Mbit/s.
    for f in 0..40u64 {
        let batch: Vec<PacketResult> = (f * 25..f * 25 + 25)
            .map(|i| PacketResult {
                transport_seq: 100 + i,
                size: PACKET_BYTES,
                sent: t0 + Duration::from_millis(4 * i),
                arrival: Some(t0 + Duration::from_millis(20 + 4 * i)),
                probe_cluster: None,
            })
            .collect();
        bwe.on_feedback(t0 + Duration::from_millis(100 * (f + 1) + 30), &batch);
        assert!(!bwe.is_overusing());
    }
    let est = bwe.estimate_bps();
    eprintln!("steady delay, 4 s: estimate {:.3} Mbit/s", mbps(est));
    assert!(est > 1_250_000 && est < 1_450_000, "{est}");
}

/// Feeds `estimator` 1200-byte packets sent every `send_gap_us` from `t_us` to `until_us`,
/// arriving 20 ms later plus `queue_growth` × the time since `t_us` (a queue building when
/// positive), in 50 ms feedback batches. Returns the last feedback time (µs) and the next
/// sequence number.
fn feed_rate(
    bwe: &mut BandwidthEstimator,
    t0: Instant,
    (t_us, until_us): (u64, u64),
    send_gap_us: u64,
    queue_growth: f64,
    mut seq: u64,
    mut on_batch: impl FnMut(&BandwidthEstimator),
) -> (u64, u64) {
    let at = |us: u64| t0 + Duration::from_micros(us);
    let mut sent_us = t_us;
    let mut now_us = t_us;
    while sent_us < until_us {
        let batch_end = (sent_us + FEEDBACK_INTERVAL_US).min(until_us);
        let mut batch = Vec::new();
        while sent_us < batch_end {
            let delay_us = 20_000 + ((sent_us - t_us) as f64 * queue_growth) as u64;
            batch.push(PacketResult {
                transport_seq: seq,
                size: PACKET_BYTES,
                sent: at(sent_us),
                arrival: Some(at(sent_us + delay_us)),
                probe_cluster: None,
            });
            seq += 1;
            sent_us += send_gap_us;
        }
        let last_arrival = batch
            .last()
            .and_then(|r| r.arrival)
            .map_or(now_us, |a| a.duration_since(t0).as_micros() as u64);
        now_us = now_us.max(last_arrival + 20_000);
        bwe.on_feedback(at(now_us), &batch);
        on_batch(bwe);
    }
    (now_us, seq)
}

#[test]
fn probe_result_bounds_an_application_limited_estimate() {
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(BweConfig::default(), t0);
    // 1.2 Mbit/s, steady delay, for a second: an acknowledged rate.
    let (t, seq) = feed_rate(&mut bwe, t0, (0, 1_000_000), 8_000, 0.0, 0, |_| {});
    // A probe shows 1.5 Mbit/s; the sender stays at 1.2 Mbit/s for 10 s. The 1.5 ×
    // throughput limit alone would let the estimate grow to 1.81 Mbit/s; the probed rate
    // holds it.
    bwe.on_probe_result(t0 + Duration::from_micros(t), 1_500_000);
    assert_eq!(bwe.estimate_bps(), 1_500_000);
    let (t, seq) = feed_rate(&mut bwe, t0, (t, t + 10_000_000), 8_000, 0.0, seq, |b| {
        assert!(b.estimate_bps() <= 1_500_000, "{}", b.estimate_bps());
    });
    assert_eq!(bwe.estimate_bps(), 1_500_000);

    // A lower result lowers it, but no lower than 0.85 × the acknowledged rate.
    bwe.on_probe_result(t0 + Duration::from_micros(t), 1_400_000);
    assert_eq!(bwe.estimate_bps(), 1_400_000);
    bwe.on_probe_result(t0 + Duration::from_micros(t), 500_000);
    let acked = bwe.acknowledged_bps().unwrap_or(0);
    assert_eq!(bwe.estimate_bps(), acked * 85 / 100, "acked {acked}");

    // A queue builds while the sender is below the probed rate (a burst, most likely): the
    // first decrease goes to 0.85 × the probed rate, not 0.85 × the acknowledged rate; as the
    // queue keeps building, the next one follows the acknowledged rate.
    bwe.on_probe_result(t0 + Duration::from_micros(t), 2_000_000);
    let mut decreases = Vec::new();
    let mut last = bwe.estimate_bps();
    feed_rate(&mut bwe, t0, (t, t + 2_000_000), 8_000, 0.25, seq, |b| {
        if b.estimate_bps() < last {
            decreases.push(b.estimate_bps());
        }
        last = b.estimate_bps();
    });
    eprintln!("decreases under a growing queue after a 2 Mbit/s probe: {decreases:?}");
    assert_eq!(decreases.first(), Some(&1_700_000));
    assert!(
        decreases.get(1).is_some_and(|&d| d < 1_100_000),
        "{decreases:?}"
    );
}

#[test]
fn sending_at_the_probed_rate_lifts_its_bound() {
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(BweConfig::default(), t0);
    let (t, seq) = feed_rate(&mut bwe, t0, (0, 1_000_000), 8_000, 0.0, 0, |_| {});
    bwe.on_probe_result(t0 + Duration::from_micros(t), 1_500_000);
    // 1.6 Mbit/s (one packet every 6 ms) and no queue: the path carries more than the probe
    // showed, and the estimate grows as usual.
    feed_rate(&mut bwe, t0, (t, t + 3_000_000), 6_000, 0.0, seq, |_| {});
    assert!(bwe.estimate_bps() > 1_600_000, "{}", bwe.estimate_bps());
}
