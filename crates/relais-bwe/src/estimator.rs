//! One receiver's bandwidth estimate: the delay-based estimate bounded by the loss-based
//! controller, set by probe results (raised at once, lowered within limits, as libwebrtc's
//! goog_cc does), within the configured bounds.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use relais_bwe::{estimator::BandwidthEstimator, BweConfig, PacketResult};
//!
//! let t0 = Instant::now();
//! let mut bwe = BandwidthEstimator::new(BweConfig::default(), t0);
//! let results: Vec<PacketResult> = (0..10u64)
//!     .map(|i| PacketResult {
//!         transport_seq: i,
//!         size: 1200,
//!         sent: t0 + Duration::from_millis(5 * i),
//!         arrival: Some(t0 + Duration::from_millis(20 + 5 * i)),
//!         probe_cluster: None,
//!     })
//!     .collect();
//! bwe.on_feedback(t0 + Duration::from_millis(100), &results);
//! assert!(bwe.estimate_bps() >= BweConfig::default().min_bps);
//! ```

use std::time::{Duration, Instant};

use crate::delay::{to_bps, BandwidthUsage, DelayBasedEstimator};
use crate::loss::{LossBasedController, LossState};
use crate::{BweConfig, PacketResult};

/// A probe result below the estimate lowers it no further than this fraction of the
/// acknowledged rate (libwebrtc's `kProbeDropThroughputFraction`).
const PROBE_DROP_THROUGHPUT_FRACTION: f64 = 0.85;

/// A receiver's downlink estimate from transport-wide feedback.
#[derive(Debug)]
pub struct BandwidthEstimator {
    config: BweConfig,
    delay: DelayBasedEstimator,
    loss: LossBasedController,
    last_feedback: Option<Instant>,
    last_probe_bps: Option<u64>,
}

impl BandwidthEstimator {
    /// An estimator at `config.initial_bps` from `now` (the clock every later call shares).
    pub fn new(config: BweConfig, now: Instant) -> Self {
        let config = BweConfig {
            max_bps: config.max_bps.max(config.min_bps),
            ..config
        };
        let _ = now;
        Self {
            config,
            delay: DelayBasedEstimator::new(config),
            loss: LossBasedController::new(config),
            last_feedback: None,
            last_probe_bps: None,
        }
    }

    /// Reads the results of one transport-wide feedback (received and lost packets, any
    /// order). Call as each feedback arrives.
    pub fn on_feedback(&mut self, now: Instant, results: &[PacketResult]) {
        if results.is_empty() {
            return;
        }
        self.last_feedback = Some(now);
        self.delay.on_feedback(now, results);
        let current = self.estimate_bps();
        self.loss.on_feedback(now, results, current);
    }

    /// A probe cluster measured `bps` (ignored while the delay detector shows overuse: the
    /// probe's rate is then not what the path carries). As in libwebrtc's goog_cc, the
    /// delay-based estimate takes the result: at once if it is higher; if it is lower, no
    /// lower than min(estimate, 0.85 × the acknowledged rate) (a probe far below what the
    /// receiver gets is more likely wrong than the path; without an acknowledged rate a lower
    /// result is ignored). The loss-based bound rises to the result if below it. While the
    /// sender stays below the result, it also bounds the delay-based increase and the next
    /// decrease (see [`crate::delay`]).
    pub fn on_probe_result(&mut self, now: Instant, bps: u64) {
        if self.is_overusing() {
            return;
        }
        let bps = bps.min(self.config.max_bps);
        let delay = self.delay.estimate_bps();
        let estimate = if bps >= delay {
            bps
        } else {
            let Some(acked) = self.delay.acknowledged_bps() else {
                return;
            };
            let floor = delay.min(to_bps(acked as f64 * PROBE_DROP_THROUGHPUT_FRACTION));
            bps.max(floor)
        };
        self.delay.on_probe(now, bps, estimate);
        self.loss.on_probe_result(bps);
        self.last_probe_bps = Some(bps);
    }

    /// The last probe result taken (bit/s): what the path was last measured to carry.
    pub fn last_probe_bps(&self) -> Option<u64> {
        self.last_probe_bps
    }

    /// The round-trip time to the receiver, if known (200 ms is assumed until set): paces
    /// the delay-based decreases and additive increase.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.delay.set_rtt(rtt);
    }

    /// The estimate (bit/s): the lower of the delay- and loss-based ones, within the
    /// configured bounds.
    pub fn estimate_bps(&self) -> u64 {
        self.delay
            .estimate_bps()
            .min(self.loss.bound_bps())
            .clamp(self.config.min_bps, self.config.max_bps)
    }

    /// Whether the delay detector sees a queue building.
    pub fn is_overusing(&self) -> bool {
        self.delay.usage() == BandwidthUsage::Overusing
    }

    /// The delay detector's state.
    pub fn usage(&self) -> BandwidthUsage {
        self.delay.usage()
    }

    /// The rate the receiver got recently (bit/s), once enough has arrived to tell.
    pub fn acknowledged_bps(&self) -> Option<u64> {
        self.delay.acknowledged_bps()
    }

    /// The loss ratio of the last judged loss interval (see [`crate::loss`]).
    pub fn loss_ratio(&self) -> f64 {
        self.loss.loss_ratio()
    }

    /// The loss controller's last decision.
    pub fn loss_state(&self) -> LossState {
        self.loss.state()
    }

    /// The delay-based estimate alone (bit/s).
    pub fn delay_based_bps(&self) -> u64 {
        self.delay.estimate_bps()
    }

    /// The loss-based bound alone (bit/s).
    pub fn loss_based_bps(&self) -> u64 {
        self.loss.bound_bps()
    }

    /// When the last non-empty feedback was read.
    pub fn last_feedback(&self) -> Option<Instant> {
        self.last_feedback
    }

    /// The delay-based half, for diagnostics.
    pub fn delay_based(&self) -> &DelayBasedEstimator {
        &self.delay
    }
}
