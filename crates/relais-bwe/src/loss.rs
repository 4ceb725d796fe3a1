//! Loss-based controller: the classic GCC send-side rule (draft-ietf-rmcat-gcc-02 §6,
//! libwebrtc's `SendSideBandwidthEstimation`) judged once per loss interval.
//!
//! Feedback is counted over intervals of at least [`LOSS_INTERVAL`] holding at least
//! [`MIN_PACKETS`] reported packets (like the RTCP receiver-report intervals the classic
//! rule was made for). When an interval closes, its loss ratio decides:
//!
//! - below 2 %: the bound rises by 8 % per second since the last decision (+ 1 kbit/s/s);
//! - above 10 %: the bound falls to the current estimate × (1 − 0.5 × loss);
//! - in between: the bound holds.
//!
//! The bound starts at the configured maximum: loss lowers the estimate below the
//! delay-based one only once seen. Judging whole, non-overlapping intervals rather than
//! each 50–100 ms feedback (or a window sliding with it) is what keeps random loss around
//! 5 % — a wireless hop, no congestion — from reading above 10 % by chance: over 1 s at
//! 1–2 Mbit/s (100–200 packets) that happens in about 1 % of intervals or fewer, where a
//! window re-judged at every feedback gets twenty chances a second. A steady random loss
//! nearer 10 % still pulls the bound down now and then, and the hold zone then keeps it
//! there until loss falls below 2 % or a probe shows more
//! ([`LossBasedController::on_probe_result`]): the classic rule's known weakness.

use std::time::{Duration, Instant};

use crate::delay::to_bps;
use crate::{BweConfig, PacketResult};

/// An interval lasts at least this long (measured on feedback arrival).
pub const LOSS_INTERVAL: Duration = Duration::from_secs(1);
/// An interval holds at least this many reported packets before it is judged.
pub const MIN_PACKETS: u64 = 20;
/// Below this loss ratio the bound may rise.
pub const LOW_LOSS: f64 = 0.02;
/// Above this loss ratio the bound falls.
pub const HIGH_LOSS: f64 = 0.10;
/// Growth of the bound per second under low loss.
const INCREASE_PER_SECOND: f64 = 1.08;
/// Additive part of the growth (bit/s per second).
const INCREASE_BPS_PER_SECOND: f64 = 1_000.0;
/// Growth never counts more than this since the last decision.
const MAX_GROWTH_STEP: Duration = Duration::from_secs(1);

/// The last decision of the loss-based controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LossState {
    /// No interval judged yet.
    #[default]
    Observing,
    /// Loss below 2 %: the bound rises.
    Increase,
    /// Loss between 2 and 10 %: the bound holds.
    Hold,
    /// Loss above 10 %: the bound fell.
    Decrease,
}

/// The loss-based bound on a receiver's estimate.
#[derive(Debug)]
pub struct LossBasedController {
    interval_start: Option<Instant>,
    received: u64,
    lost: u64,
    last_ratio: Option<f64>,
    last_decision: Option<Instant>,
    bound_bps: f64,
    min_bps: f64,
    max_bps: f64,
    state: LossState,
}

impl LossBasedController {
    /// A controller whose bound starts at `config.max_bps` and stays within the configured
    /// bounds.
    pub fn new(config: BweConfig) -> Self {
        let min_bps = config.min_bps as f64;
        let max_bps = (config.max_bps as f64).max(min_bps);
        Self {
            interval_start: None,
            received: 0,
            lost: 0,
            last_ratio: None,
            last_decision: None,
            bound_bps: max_bps,
            min_bps,
            max_bps,
            state: LossState::Observing,
        }
    }

    /// Counts one feedback's results and, when the interval closes, applies the rule;
    /// `current_bps` is the receiver's estimate now (what a decrease is taken from).
    pub fn on_feedback(&mut self, now: Instant, results: &[PacketResult], current_bps: u64) {
        if results.is_empty() {
            return;
        }
        let lost = results.iter().filter(|r| r.arrival.is_none()).count() as u64;
        let received = (results.len() as u64).saturating_sub(lost);
        self.received = self.received.saturating_add(received);
        self.lost = self.lost.saturating_add(lost);
        let start = *self.interval_start.get_or_insert(now);
        let total = self.received.saturating_add(self.lost);
        if total < MIN_PACKETS || now.saturating_duration_since(start) < LOSS_INTERVAL {
            return;
        }

        let ratio = self.lost as f64 / total as f64;
        self.last_ratio = Some(ratio);
        self.received = 0;
        self.lost = 0;
        self.interval_start = Some(now);
        let elapsed = self.last_decision.map_or(MAX_GROWTH_STEP, |t| {
            now.saturating_duration_since(t).min(MAX_GROWTH_STEP)
        });
        self.last_decision = Some(now);

        if ratio < LOW_LOSS {
            self.state = LossState::Increase;
            let secs = elapsed.as_secs_f64();
            let grown =
                self.bound_bps * INCREASE_PER_SECOND.powf(secs) + INCREASE_BPS_PER_SECOND * secs;
            self.bound_bps = grown.clamp(self.min_bps, self.max_bps);
        } else if ratio > HIGH_LOSS {
            self.state = LossState::Decrease;
            let decreased = current_bps as f64 * (1.0 - 0.5 * ratio);
            self.bound_bps = self
                .bound_bps
                .min(decreased)
                .clamp(self.min_bps, self.max_bps);
        } else {
            self.state = LossState::Hold;
        }
    }

    /// A probe showed the path carries `bps`: the bound rises to it if below.
    pub fn on_probe_result(&mut self, bps: u64) {
        self.bound_bps = self
            .bound_bps
            .max(bps as f64)
            .clamp(self.min_bps, self.max_bps);
    }

    /// The loss-based bound (bit/s).
    pub fn bound_bps(&self) -> u64 {
        to_bps(self.bound_bps)
    }

    /// The loss ratio of the last judged interval; before the first, of the packets
    /// counted so far (0 when none).
    pub fn loss_ratio(&self) -> f64 {
        if let Some(r) = self.last_ratio {
            return r;
        }
        let total = self.received.saturating_add(self.lost);
        if total == 0 {
            0.0
        } else {
            self.lost as f64 / total as f64
        }
    }

    /// The last decision.
    pub fn state(&self) -> LossState {
        self.state
    }
}
