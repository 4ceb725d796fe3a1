//! Delay-based estimate (draft-ietf-rmcat-gcc-02 §5, as libwebrtc's `DelayBasedBwe`).
//!
//! For each feedback, the received packets (in arrival order) are grouped into send bursts;
//! the variation of the delay between consecutive groups feeds a trendline filter whose
//! slope an overuse detector with an adaptive threshold compares; the detector's state
//! drives an AIMD rate controller that decreases to 0.85 × the acknowledged rate (received
//! bytes over a sliding window) on overuse.
//!
//! Lost packets are ignored here; [`crate::loss`] counts them.

mod acked;
mod arrival_group;
mod rate_control;
mod trendline;

use std::time::{Duration, Instant};

pub use trendline::BandwidthUsage;

use crate::{BweConfig, PacketResult};
use acked::AckedBitrate;
use arrival_group::InterArrival;
use rate_control::AimdRateControl;
use trendline::Trendline;

/// Without feedback for this long, the grouping and the trendline start over.
const STREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// `later − earlier` in milliseconds, negative if `later` is earlier.
pub(crate) fn signed_ms(later: Instant, earlier: Instant) -> f64 {
    match later.checked_duration_since(earlier) {
        Some(d) => d.as_secs_f64() * 1000.0,
        None => -(earlier.saturating_duration_since(later).as_secs_f64() * 1000.0),
    }
}

/// The delay-based half of a receiver's estimate.
#[derive(Debug)]
pub struct DelayBasedEstimator {
    inter_arrival: InterArrival,
    trendline: Trendline,
    rate: AimdRateControl,
    acked: AckedBitrate,
    last_feedback: Option<Instant>,
}

impl DelayBasedEstimator {
    /// An estimator starting at `config.initial_bps`, kept within `config.min_bps..=max_bps`.
    pub fn new(config: BweConfig) -> Self {
        Self {
            inter_arrival: InterArrival::default(),
            trendline: Trendline::default(),
            rate: AimdRateControl::new(config.initial_bps, config.min_bps, config.max_bps),
            acked: AckedBitrate::default(),
            last_feedback: None,
        }
    }

    /// Reads one feedback's results (any order; lost packets are skipped) and updates the
    /// detector and the estimate.
    pub fn on_feedback(&mut self, now: Instant, results: &[PacketResult]) {
        let mut received: Vec<(Instant, Instant, usize, u64)> = results
            .iter()
            .filter_map(|r| r.arrival.map(|a| (a, r.sent, r.size, r.transport_seq)))
            .collect();
        if received.is_empty() {
            return;
        }
        received.sort_by(|a, b| a.0.cmp(&b.0).then(a.3.cmp(&b.3)));

        if self
            .last_feedback
            .is_some_and(|t| now.saturating_duration_since(t) > STREAM_TIMEOUT)
        {
            self.inter_arrival.reset();
            self.trendline = Trendline::default();
        }
        self.last_feedback = Some(now);

        for &(arrival, sent, size, _) in &received {
            self.acked.on_packet(arrival, size);
            if let Some(delta) = self.inter_arrival.add(sent, arrival, size) {
                self.trendline
                    .update(delta.arrival_delta_ms, delta.send_delta_ms, arrival);
            }
        }

        let acked = self.acked.bitrate_bps();
        match self.trendline.state() {
            BandwidthUsage::Overusing => match acked {
                Some(a) => {
                    if self.rate.time_to_reduce_further(now, a) {
                        self.rate.update(now, BandwidthUsage::Overusing, Some(a));
                    }
                }
                None => {
                    // Overuse before any acknowledged rate: halve, once per RTT.
                    if self.rate.time_to_halve(now) {
                        let half = self.rate.estimate_bps() / 2.0;
                        self.rate.set_estimate(now, half);
                    }
                }
            },
            usage => self.rate.update(now, usage, acked),
        }
    }

    /// Sets the estimate (bit/s), within the configured bounds.
    pub fn set_estimate(&mut self, now: Instant, bps: u64) {
        self.rate.set_estimate(now, bps as f64);
    }

    /// A probe showed the path carries `probed_bps`: the estimate becomes `estimate_bps`, and
    /// while the acknowledged rate stays below the probed rate, the estimate does not rise
    /// above it and the next decrease goes no lower than 0.85 × it.
    pub fn on_probe(&mut self, now: Instant, probed_bps: u64, estimate_bps: u64) {
        self.rate
            .on_probe(now, probed_bps as f64, estimate_bps as f64);
    }

    /// The last probe result while it still bounds the estimate (see
    /// [`on_probe`](Self::on_probe)).
    pub fn probed_bps(&self) -> Option<u64> {
        self.rate.probed_bps().map(to_bps)
    }

    /// The round-trip time the rate controller paces its decreases and additive increase
    /// by (200 ms until set).
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rate.set_rtt(rtt);
    }

    /// The delay-based estimate (bit/s).
    pub fn estimate_bps(&self) -> u64 {
        to_bps(self.rate.estimate_bps())
    }

    /// The detector's state after the last feedback.
    pub fn usage(&self) -> BandwidthUsage {
        self.trendline.state()
    }

    /// The rate the receiver got over the last 500 ms of arrivals (bit/s), once the
    /// arrivals span 100 ms.
    pub fn acknowledged_bps(&self) -> Option<u64> {
        self.acked.bitrate_bps().map(to_bps)
    }

    /// The link capacity learnt from the acknowledged rates at overuse (bit/s), while the
    /// measured throughput stays near it.
    pub fn link_capacity_bps(&self) -> Option<u64> {
        self.rate.link_capacity().estimate_bps().map(to_bps)
    }

    /// The last scaled trend and the adaptive threshold it was compared with (ms).
    pub fn detector_signal(&self) -> (f64, f64) {
        (
            self.trendline.modified_trend(),
            self.trendline.threshold_ms(),
        )
    }
}

/// A non-negative finite rate rounded to whole bits per second.
pub(crate) fn to_bps(bps: f64) -> u64 {
    if bps.is_finite() && bps > 0.0 {
        // Saturating float-to-int conversion.
        bps.round() as u64
    } else {
        0
    }
}
