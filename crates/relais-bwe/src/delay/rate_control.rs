//! AIMD rate control (libwebrtc's `AimdRateControl`, draft-ietf-rmcat-gcc-02 §5.5) and the
//! link capacity estimate it uses to choose between multiplicative and additive increase.
//!
//! - Normal delay: increase. Far from the link capacity estimate (none yet, or the measured
//!   throughput left its ±3σ band) by 8 % per second; near it additively, about one packet
//!   per response time. Never above 1.5 × the acknowledged rate + 10 kbit/s, and not at all
//!   while the acknowledged rate is below 85 % of the estimate (application-limited: only a
//!   probe can show the link carries more, and creeping up unseen ends in a burst of loss
//!   when the sender does use the estimate).
//! - Overuse: decrease to 0.85 × the acknowledged rate, at most once per RTT (10–200 ms)
//!   unless the acknowledged rate fell below half the estimate; then hold.
//! - Underuse: hold (queues are draining; increasing now would refill them).
//!
//! A probe result ([`AimdRateControl::on_probe`]) is what the path was seen to carry, and it
//! bounds the controller both ways while the sender is application-limited (its
//! acknowledged rate below that result):
//!
//! - the increase stops at the probed rate (libwebrtc's `DontIncreaseDelayBasedBweInAlr`
//!   idea): without traffic at the estimate, feedback cannot show the estimate is too high,
//!   and the 1.5 × throughput limit alone lets an idle estimate creep well above the link;
//! - the first decrease after the probe goes no lower than 0.85 × the probed rate: overuse
//!   while sending below a rate the path just carried is most likely a burst (key frames of
//!   several streams at once), not a smaller link, and 0.85 × an application-limited
//!   throughput would throw the estimate far below the link. Should the overuse persist, the
//!   next decrease follows the acknowledged rate again.
//!
//! Once the acknowledged rate reaches the probed rate, the probe says nothing more and the
//! rules above apply alone.

use std::time::{Duration, Instant};

use super::trendline::BandwidthUsage;

/// Multiplicative decrease factor applied to the acknowledged rate on overuse.
const BETA: f64 = 0.85;
/// Below this share of the estimate the sender is application-limited: feedback cannot show
/// that a higher estimate is too high, so only probes raise it then (libwebrtc's
/// `DontIncreaseDelayBasedBweInAlr`).
const APPLICATION_LIMITED_FRACTION: f64 = 0.85;
/// Multiplicative increase per second far from convergence.
const MULTIPLICATIVE_INCREASE: f64 = 1.08;
/// Smallest increase per update (bit/s).
const MIN_INCREASE_BPS: f64 = 1_000.0;
/// Smallest additive increase rate (bit/s per second).
const MIN_ADDITIVE_INCREASE_BPS_PER_S: f64 = 4_000.0;
/// The RTT assumed until one is set.
pub(crate) const DEFAULT_RTT: Duration = Duration::from_millis(200);
/// Added to the RTT for the detector's reaction time.
const DETECTOR_DELAY: Duration = Duration::from_millis(100);
/// Frame rate and packet size assumed for the additive increase.
const ASSUMED_FPS: f64 = 30.0;
const ASSUMED_PACKET_BITS: f64 = 1200.0 * 8.0;

/// Exponential average of the acknowledged rate at the moments overuse was detected, with a
/// normalised variance: where the link's capacity probably is.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LinkCapacity {
    estimate_kbps: Option<f64>,
    deviation_kbps: f64,
}

impl LinkCapacity {
    fn deviation_estimate_kbps(&self, estimate_kbps: f64) -> f64 {
        (self.deviation_kbps * estimate_kbps).max(0.0).sqrt()
    }

    /// Estimate + 3σ (bit/s); infinite without an estimate.
    pub(crate) fn upper_bound_bps(&self) -> f64 {
        match self.estimate_kbps {
            Some(e) => (e + 3.0 * self.deviation_estimate_kbps(e)) * 1000.0,
            None => f64::INFINITY,
        }
    }

    /// Estimate − 3σ (bit/s); zero without an estimate.
    pub(crate) fn lower_bound_bps(&self) -> f64 {
        match self.estimate_kbps {
            Some(e) => (e - 3.0 * self.deviation_estimate_kbps(e)).max(0.0) * 1000.0,
            None => 0.0,
        }
    }

    /// The estimate (bit/s).
    pub(crate) fn estimate_bps(&self) -> Option<f64> {
        self.estimate_kbps.map(|e| e * 1000.0)
    }

    fn reset(&mut self) {
        self.estimate_kbps = None;
    }

    fn on_overuse(&mut self, acknowledged_bps: f64) {
        const ALPHA: f64 = 0.05;
        let sample_kbps = acknowledged_bps / 1000.0;
        let estimate = match self.estimate_kbps {
            None => sample_kbps,
            Some(e) => (1.0 - ALPHA) * e + ALPHA * sample_kbps,
        };
        self.estimate_kbps = Some(estimate);
        let norm = estimate.max(1.0);
        let error = estimate - sample_kbps;
        self.deviation_kbps =
            ((1.0 - ALPHA) * self.deviation_kbps + ALPHA * error * error / norm).clamp(0.4, 2.5);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RateState {
    Hold,
    Increase,
    Decrease,
}

/// The AIMD controller.
#[derive(Debug)]
pub(crate) struct AimdRateControl {
    current_bps: f64,
    min_bps: f64,
    max_bps: f64,
    latest_throughput_bps: f64,
    link: LinkCapacity,
    state: RateState,
    last_change: Option<Instant>,
    rtt: Duration,
    /// The last probe result, while the acknowledged rate stays below it.
    probed_bps: Option<f64>,
    /// Whether the next decrease is bounded by the probed rate.
    probe_floor_armed: bool,
}

impl AimdRateControl {
    pub(crate) fn new(initial_bps: u64, min_bps: u64, max_bps: u64) -> Self {
        let min_bps = min_bps as f64;
        let max_bps = (max_bps as f64).max(min_bps);
        let current_bps = (initial_bps as f64).clamp(min_bps, max_bps);
        Self {
            current_bps,
            min_bps,
            max_bps,
            latest_throughput_bps: current_bps,
            link: LinkCapacity::default(),
            state: RateState::Hold,
            last_change: None,
            rtt: DEFAULT_RTT,
            probed_bps: None,
            probe_floor_armed: false,
        }
    }

    pub(crate) fn estimate_bps(&self) -> f64 {
        self.current_bps
    }

    pub(crate) fn link_capacity(&self) -> &LinkCapacity {
        &self.link
    }

    pub(crate) fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
    }

    /// Sets the estimate directly (a halving without throughput).
    pub(crate) fn set_estimate(&mut self, now: Instant, bps: f64) {
        self.current_bps = self.clamp(bps);
        self.last_change = Some(now);
    }

    /// A probe showed the path carries `probed_bps`; the estimate becomes `estimate_bps`
    /// (the caller's reading of the result). The probed rate bounds the increase and the
    /// next decrease (see the module docs).
    pub(crate) fn on_probe(&mut self, now: Instant, probed_bps: f64, estimate_bps: f64) {
        self.set_estimate(now, estimate_bps);
        if probed_bps.is_finite() && probed_bps > 0.0 {
            self.probed_bps = Some(probed_bps);
            self.probe_floor_armed = true;
        }
    }

    /// The probed rate still bounding the controller, if any.
    pub(crate) fn probed_bps(&self) -> Option<f64> {
        self.probed_bps
    }

    /// Whether an overuse may lower the estimate again now.
    pub(crate) fn time_to_reduce_further(&self, now: Instant, throughput_bps: f64) -> bool {
        let interval = self
            .rtt
            .clamp(Duration::from_millis(10), Duration::from_millis(200));
        match self.last_change {
            None => true,
            Some(t) if now.saturating_duration_since(t) >= interval => true,
            Some(_) => throughput_bps < 0.5 * self.current_bps,
        }
    }

    /// Whether the estimate may be halved now (overuse without an acknowledged rate).
    pub(crate) fn time_to_halve(&self, now: Instant) -> bool {
        let interval = self
            .rtt
            .clamp(Duration::from_millis(10), Duration::from_millis(200));
        self.last_change
            .is_none_or(|t| now.saturating_duration_since(t) >= interval)
    }

    /// One step of the controller with the detector's state and the acknowledged rate.
    pub(crate) fn update(
        &mut self,
        now: Instant,
        usage: BandwidthUsage,
        throughput_bps: Option<f64>,
    ) {
        let throughput = match throughput_bps {
            Some(t) => {
                self.latest_throughput_bps = t;
                t
            }
            None => self.latest_throughput_bps,
        };
        match usage {
            BandwidthUsage::Normal => {
                if self.state == RateState::Hold {
                    self.last_change = Some(now);
                    self.state = RateState::Increase;
                }
            }
            BandwidthUsage::Overusing => self.state = RateState::Decrease,
            BandwidthUsage::Underusing => self.state = RateState::Hold,
        }

        if self.probed_bps.is_some_and(|p| throughput >= p) {
            // The sender fills what the probe showed: feedback speaks for itself again.
            self.probed_bps = None;
            self.probe_floor_armed = false;
        }
        let mut throughput_limit = 1.5 * throughput + 10_000.0;
        if let Some(probed) = self.probed_bps {
            throughput_limit = throughput_limit.min(probed.max(self.current_bps));
        }
        let mut new_bps = None;
        match self.state {
            RateState::Hold => {}
            RateState::Increase => {
                if throughput > self.link.upper_bound_bps() {
                    // Far from where the link saturated before: ramp up fast again.
                    self.link.reset();
                }
                let application_limited =
                    throughput < APPLICATION_LIMITED_FRACTION * self.current_bps;
                if self.current_bps < throughput_limit && !application_limited {
                    let increase = if self.link.estimate_bps().is_some() {
                        self.additive_increase(now)
                    } else {
                        self.multiplicative_increase(now)
                    };
                    new_bps = Some((self.current_bps + increase).min(throughput_limit));
                }
                self.last_change = Some(now);
            }
            RateState::Decrease => {
                let mut decreased = throughput * BETA;
                if decreased > self.current_bps {
                    if let Some(capacity) = self.link.estimate_bps() {
                        decreased = BETA * capacity;
                    }
                }
                if self.probe_floor_armed {
                    self.probe_floor_armed = false;
                    if let Some(probed) = self.probed_bps {
                        decreased = decreased.max(BETA * probed);
                    }
                }
                if decreased < self.current_bps {
                    new_bps = Some(decreased);
                }
                if throughput < self.link.lower_bound_bps() {
                    // Far below the previous capacity: start the average over.
                    self.link.reset();
                }
                self.link.on_overuse(throughput);
                // Hold until the queues have drained.
                self.state = RateState::Hold;
                self.last_change = Some(now);
            }
        }
        self.current_bps = self.clamp(new_bps.unwrap_or(self.current_bps));
    }

    fn clamp(&self, bps: f64) -> f64 {
        if bps.is_nan() {
            return self.min_bps;
        }
        bps.clamp(self.min_bps, self.max_bps)
    }

    fn seconds_since_change(&self, now: Instant) -> Option<f64> {
        self.last_change
            .map(|t| now.saturating_duration_since(t).as_secs_f64())
    }

    fn multiplicative_increase(&self, now: Instant) -> f64 {
        let alpha = match self.seconds_since_change(now) {
            Some(s) => MULTIPLICATIVE_INCREASE.powf(s.min(1.0)),
            None => MULTIPLICATIVE_INCREASE,
        };
        (self.current_bps * (alpha - 1.0)).max(MIN_INCREASE_BPS)
    }

    /// About one average packet per response time (2 × (RTT + 100 ms)).
    fn near_max_increase_bps_per_s(&self) -> f64 {
        let frame_bits = self.current_bps / ASSUMED_FPS;
        let packets_per_frame = (frame_bits / ASSUMED_PACKET_BITS).ceil().max(1.0);
        let avg_packet_bits = frame_bits / packets_per_frame;
        let response_time = (self.rtt + DETECTOR_DELAY).as_secs_f64() * 2.0;
        (avg_packet_bits / response_time).max(MIN_ADDITIVE_INCREASE_BPS_PER_S)
    }

    fn additive_increase(&self, now: Instant) -> f64 {
        self.near_max_increase_bps_per_s() * self.seconds_since_change(now).unwrap_or(0.0)
    }
}
