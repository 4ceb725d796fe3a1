//! One camera's answer to its sender's bandwidth estimate, as a browser's: the layers its
//! [`SimulcastAllocator`] allows under the estimate (minus what the microphone takes), and
//! the figures the run reports about it — estimate-driven layer drops and raises, the
//! estimate's spread, and the time-weighted number of layers actually sent.
//!
//! The runner combines [`CameraEstimate::allowed`] with the node's sender constraints (the
//! tighter wins) and tells [`CameraEstimate::on_layers_sent`] what the camera then sends.
//! Per estimate update (one per transport-cc feedback or REMB): a histogram record and a
//! few comparisons, no allocation.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::media::{LayerSet, SimulcastAllocator};
use crate::report::SenderLayers;

/// Largest estimate the histogram keeps (kbit/s); larger ones are clamped to it.
const MAX_ESTIMATE_KBPS: u64 = 100_000;

/// See the [module documentation](self).
#[derive(Debug)]
pub struct CameraEstimate {
    allocator: SimulcastAllocator,
    /// Bit/s the sender's other streams (its microphone) take off the estimate first.
    reserved_bps: u64,
    layer_count: usize,
    drops: u64,
    raises: u64,
    updates: u64,
    estimates_kbps: Option<Histogram<u64>>,
    /// Since when the camera sends how many layers (`None` before it started).
    sending: Option<(Duration, usize)>,
    /// Layers × seconds sent so far, and the seconds they span.
    layer_seconds: f64,
    sent_seconds: f64,
}

impl CameraEstimate {
    /// A camera with layers of these target bitrates (kbit/s, lowest first) whose sender
    /// reserves `reserved_bps` of its estimate for other streams, starting with the layers
    /// its estimate allows at `initial_bps` (not counted as a change).
    pub fn new(layer_kbps: &[u32], reserved_bps: u64, initial_bps: u64) -> Self {
        let mut allocator = SimulcastAllocator::new(layer_kbps.iter().copied());
        allocator.allocate(initial_bps.saturating_sub(reserved_bps));
        Self {
            allocator,
            reserved_bps,
            layer_count: layer_kbps.len(),
            drops: 0,
            raises: 0,
            updates: 0,
            estimates_kbps: Histogram::new_with_bounds(1, MAX_ESTIMATE_KBPS, 2).ok(),
            sending: None,
            layer_seconds: 0.0,
            sent_seconds: 0.0,
        }
    }

    /// The layers the estimate allows.
    pub fn allowed(&self) -> LayerSet {
        self.allocator.enabled()
    }

    /// The estimate (bit/s) the camera would like: what turns its next layer on, if
    /// `ceiling` (the sender constraints) lets it be sent, its microphone included.
    pub fn wanted_bps(&self, ceiling: LayerSet) -> u64 {
        self.allocator.wanted_bps(ceiling) + self.reserved_bps
    }

    /// A new effective estimate (bit/s). Returns the allowed layers when they changed.
    pub fn on_estimate(&mut self, target_bps: u64) -> Option<LayerSet> {
        self.updates += 1;
        if let Some(histogram) = self.estimates_kbps.as_mut() {
            let kbps = (target_bps / 1000).clamp(1, MAX_ESTIMATE_KBPS);
            let _ = histogram.record(kbps);
        }
        let before = self.allocator.enabled();
        let after = self
            .allocator
            .allocate(target_bps.saturating_sub(self.reserved_bps));
        (after != before).then_some(after)
    }

    /// The estimate changed what the camera sends from `before` to `after` layers (a
    /// change of allowed layers the sender constraints hide is none).
    pub fn count_change(&mut self, before: usize, after: usize) {
        if after < before {
            self.drops += 1;
        } else if after > before {
            self.raises += 1;
        }
    }

    /// From `now` (since the run's start) the camera sends `layers` layers.
    pub fn on_layers_sent(&mut self, now: Duration, layers: usize) {
        self.account(now);
        self.sending = Some((now, layers));
    }

    /// Adds the layers sent since the last change up to `now`.
    fn account(&mut self, now: Duration) {
        if let Some((since, layers)) = self.sending {
            let seconds = now.saturating_sub(since).as_secs_f64();
            self.layer_seconds += seconds * layers as f64;
            self.sent_seconds += seconds;
            self.sending = Some((now, layers));
        }
    }

    /// The figures up to `end` (since the run's start), for the sender at `sender` (its
    /// place in the scenario).
    pub fn summary(&mut self, sender: u32, end: Duration) -> SenderLayers {
        self.account(end);
        let (min, median, max) = match self.estimates_kbps.as_ref().filter(|h| !h.is_empty()) {
            Some(h) => (h.min(), h.value_at_quantile(0.5), h.max()),
            None => (0, 0, 0),
        };
        SenderLayers {
            sender,
            layers: self.layer_count as u32,
            mean_active_layers: if self.sent_seconds > 0.0 {
                self.layer_seconds / self.sent_seconds
            } else {
                0.0
            },
            active_layers_at_end: self.sending.map_or(0, |(_, layers)| layers as u32),
            estimate_layer_drops: self.drops,
            estimate_layer_raises: self.raises,
            estimate_updates: self.updates,
            estimate_min_kbps: min,
            estimate_median_kbps: median,
            estimate_max_kbps: max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_estimate_driven_changes_and_weights_layers_by_time() {
        let mut camera = CameraEstimate::new(&[150, 500, 1500], 32_000, 3_000_000);
        assert_eq!(camera.allowed(), LayerSet::first(3));
        assert_eq!(camera.wanted_bps(LayerSet::first(3)), 2_182_000);
        camera.on_layers_sent(Duration::from_secs(0), 3);
        assert_eq!(camera.on_estimate(3_000_000), None);
        // 600 kbit/s − 32 k for audio: only the lowest layer.
        assert_eq!(camera.on_estimate(600_000), Some(LayerSet::first(1)));
        camera.count_change(3, 1);
        camera.on_layers_sent(Duration::from_secs(4), 1);
        assert_eq!(camera.on_estimate(620_000), None);
        // Layer 1 would need 150 k + 1.35 × 500 k, unless the constraints forbid it.
        assert_eq!(camera.wanted_bps(LayerSet::first(3)), 857_000);
        assert_eq!(camera.wanted_bps(LayerSet::first(1)), 182_000);
        assert_eq!(camera.on_estimate(900_000), Some(LayerSet::first(2)));
        camera.count_change(1, 2);
        camera.on_layers_sent(Duration::from_secs(8), 2);
        let summary = camera.summary(7, Duration::from_secs(10));
        assert_eq!(summary.sender, 7);
        assert_eq!(summary.layers, 3);
        assert_eq!(summary.estimate_layer_drops, 1);
        assert_eq!(summary.estimate_layer_raises, 1);
        assert_eq!(summary.estimate_updates, 4);
        assert_eq!(summary.active_layers_at_end, 2);
        // (4 s × 3 + 4 s × 1 + 2 s × 2) / 10 s.
        assert!((summary.mean_active_layers - 2.0).abs() < 1e-9);
        assert_eq!(summary.estimate_min_kbps, 600);
        assert!((2_980..=3_020).contains(&summary.estimate_max_kbps));
    }

    #[test]
    fn starts_with_the_layers_the_initial_estimate_allows() {
        let camera = CameraEstimate::new(&[150, 500, 1500], 32_000, 300_000);
        assert_eq!(camera.allowed(), LayerSet::first(1));
    }
}
