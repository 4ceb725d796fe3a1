//! The per-SSRC state maps: a `HashMap<u32, T>` with a cheap seeded hasher.
//!
//! SipHash (std's default) costs about as much as a third of an audio packet's AES-GCM here.
//! A per-context random seed followed by a bijective 64-bit mix (the splitmix64 finalizer)
//! is enough: the maps never hold more than [`crate::SrtpConfig::max_ssrcs`] entries, so
//! even SSRCs chosen to collide can only lengthen a probe sequence up to that bound, and the
//! seed keeps collisions from being precomputed.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// Map from SSRC to per-SSRC state.
pub(crate) type SsrcMap<T> = HashMap<u32, T, SsrcHashBuilder>;

/// An empty map with room for `capacity` SSRCs and a fresh random seed.
pub(crate) fn ssrc_map<T>(capacity: usize) -> SsrcMap<T> {
    HashMap::with_capacity_and_hasher(capacity, SsrcHashBuilder::new())
}

/// Builds [`SsrcHasher`]s sharing one random seed.
#[derive(Clone)]
pub(crate) struct SsrcHashBuilder {
    seed: u64,
}

impl SsrcHashBuilder {
    fn new() -> Self {
        // RandomState is seeded from the OS once per thread and varied per instance.
        Self {
            seed: RandomState::new().hash_one(0x5352_5450u32),
        }
    }
}

impl BuildHasher for SsrcHashBuilder {
    type Hasher = SsrcHasher;

    fn build_hasher(&self) -> SsrcHasher {
        SsrcHasher { state: self.seed }
    }
}

/// Hashes one `u32` key (other inputs are folded in byte by byte, for completeness).
pub(crate) struct SsrcHasher {
    state: u64,
}

impl Hasher for SsrcHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state = mix(self.state ^ u64::from(b));
        }
    }

    fn write_u32(&mut self, ssrc: u32) {
        self.state = mix(self.state ^ u64::from(ssrc));
    }

    fn finish(&self) -> u64 {
        self.state
    }
}

/// The splitmix64 finalizer: a bijection with full avalanche.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_seeds_and_keys() {
        let a = SsrcHashBuilder::new();
        let b = SsrcHashBuilder::new();
        assert_ne!(a.hash_one(1u32), b.hash_one(1u32));
        assert_ne!(a.hash_one(1u32), a.hash_one(2u32));
        let mut m = ssrc_map(4);
        for ssrc in 0..100u32 {
            m.insert(ssrc, ssrc);
        }
        assert!((0..100u32).all(|s| m.get(&s) == Some(&s)));
    }
}
