//! [`SimulcastAllocator`]: which simulcast layers a sender keeps on under its bandwidth
//! estimate, with the hysteresis of libwebrtc's `SimulcastRateAllocator`.
//!
//! Layers are enabled lowest first, each taking its target bitrate out of the budget; the
//! first layer that does not fit ends the walk (no higher layer is sent above a gap). A
//! layer that is off needs [`ENABLE_HYSTERESIS`] × its bitrate left in the budget to come on,
//! one that is on stays on while its bitrate fits: an estimate wandering around a threshold
//! does not switch the layer on and off with every feedback. The lowest layer always stays
//! on, as a browser keeps a minimal stream even below its bitrate. (libwebrtc applies the
//! factor to a layer's minimum bitrate; the scenario models one bitrate per layer, so it is
//! applied to that.)
//!
//! Sans-IO and allocation-free: one call per estimate update.

use super::video::{LayerSet, MAX_LAYERS};

/// A layer that is off comes on only when the budget left for it is this many times its
/// bitrate (libwebrtc's simulcast/screenshare hysteresis factor).
pub const ENABLE_HYSTERESIS: f64 = 1.35;

/// One sender's layer decisions. See the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimulcastAllocator {
    /// Target bitrate of each layer, lowest first (bit/s).
    layer_bps: [u64; MAX_LAYERS],
    count: usize,
    enabled: LayerSet,
}

impl SimulcastAllocator {
    /// An allocator over layers with these target bitrates (kbit/s, lowest first; those
    /// beyond [`MAX_LAYERS`] are ignored), starting with every layer on (a camera starts
    /// with all its layers).
    pub fn new(layer_kbps: impl IntoIterator<Item = u32>) -> Self {
        let mut layer_bps = [0; MAX_LAYERS];
        let mut count = 0;
        for (slot, kbps) in layer_bps.iter_mut().zip(layer_kbps) {
            *slot = u64::from(kbps) * 1000;
            count += 1;
        }
        Self {
            layer_bps,
            count,
            enabled: LayerSet::first(count),
        }
    }

    /// The layers on after the last [`allocate`](Self::allocate).
    pub fn enabled(&self) -> LayerSet {
        self.enabled
    }

    /// The bitrate (bit/s) the layers in `set` need together.
    pub fn needed_bps(&self, set: LayerSet) -> u64 {
        set.iter()
            .filter_map(|layer| self.layer_bps.get(layer))
            .sum()
    }

    /// The budget (bit/s) the sender would like: what turns the next layer on (its
    /// bitrate with the hysteresis, on top of the layers on) when `ceiling` (the layers it
    /// may send at all) includes it, else what the layers on within `ceiling` need. What a
    /// browser asks its prober to look for.
    pub fn wanted_bps(&self, ceiling: LayerSet) -> u64 {
        let next = self.enabled.len();
        let sendable = (0..next)
            .filter(|&layer| ceiling.contains(layer))
            .fold(LayerSet::EMPTY, LayerSet::with);
        let on = self.needed_bps(sendable);
        match (next < self.count && ceiling.contains(next))
            .then(|| self.layer_bps.get(next))
            .flatten()
        {
            Some(&next) => on + (next as f64 * ENABLE_HYSTERESIS).ceil() as u64,
            None => on,
        }
    }

    /// Decides the layers for a video budget of `budget_bps` and returns them.
    pub fn allocate(&mut self, budget_bps: u64) -> LayerSet {
        let mut set = LayerSet::EMPTY;
        let mut left = budget_bps;
        for (layer, &bps) in self.layer_bps.iter().take(self.count).enumerate() {
            if layer > 0 {
                let need = if self.enabled.contains(layer) {
                    bps
                } else {
                    // Float to int saturates; bitrates are far below 2^53.
                    (bps as f64 * ENABLE_HYSTERESIS).ceil() as u64
                };
                if left < need {
                    break;
                }
            }
            set = set.with(layer);
            left = left.saturating_sub(bps);
        }
        self.enabled = set;
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocator() -> SimulcastAllocator {
        SimulcastAllocator::new([150, 500, 1500])
    }

    #[test]
    fn ample_budget_keeps_every_layer_and_a_small_one_keeps_the_lowest() {
        let mut a = allocator();
        assert_eq!(a.enabled(), LayerSet::first(3));
        assert_eq!(a.allocate(5_000_000), LayerSet::first(3));
        assert_eq!(a.allocate(2_150_000), LayerSet::first(3));
        assert_eq!(a.allocate(2_149_999), LayerSet::first(2));
        assert_eq!(a.allocate(10_000), LayerSet::first(1));
        assert_eq!(a.allocate(0), LayerSet::first(1));
        assert_eq!(a.needed_bps(LayerSet::first(2)), 650_000);
        // Layer 1 would come on at 150 k + 1.35 × 500 k; not wanted if it may not be sent.
        assert_eq!(a.wanted_bps(LayerSet::first(3)), 825_000);
        assert_eq!(a.wanted_bps(LayerSet::first(1)), 150_000);
        a.allocate(5_000_000);
        assert_eq!(a.wanted_bps(LayerSet::first(3)), 2_150_000);
        assert_eq!(a.wanted_bps(LayerSet::first(2)), 650_000);
    }

    #[test]
    fn a_layer_comes_back_only_with_headroom() {
        let mut a = allocator();
        assert_eq!(a.allocate(600_000), LayerSet::first(1));
        // Layer 1 needs 150 k + 1.35 × 500 k = 825 k to come back.
        assert_eq!(a.allocate(700_000), LayerSet::first(1));
        assert_eq!(a.allocate(824_999), LayerSet::first(1));
        assert_eq!(a.allocate(825_000), LayerSet::first(2));
        // Now on, it stays on down to 650 k.
        assert_eq!(a.allocate(650_000), LayerSet::first(2));
        assert_eq!(a.allocate(649_999), LayerSet::first(1));
    }

    #[test]
    fn an_estimate_wandering_around_a_threshold_does_not_flap() {
        let mut a = allocator();
        a.allocate(2_500_000);
        let mut changes = 0;
        let mut last = a.enabled();
        // ±10 % around the top layer's threshold (2.15 Mbit/s), 200 updates.
        for i in 0..200u64 {
            let budget = if i % 2 == 0 { 1_950_000 } else { 2_350_000 };
            let set = a.allocate(budget);
            if set != last {
                changes += 1;
                last = set;
            }
        }
        assert_eq!(changes, 1, "the top layer went off once and stayed off");
        assert_eq!(last, LayerSet::first(2));
    }
}
