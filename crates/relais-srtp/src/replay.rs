//! The per-SSRC sliding replay window (RFC 3711 §3.3.2).
//!
//! A 128-bit bitmap behind the highest accepted index: bit `i` set means index
//! `highest - i` was accepted. Checking and committing are separate so a packet only
//! enters the window after its tag verified (a forged packet must not move it). The same
//! window serves SRTP (48-bit packet index) and SRTCP (31-bit SRTCP index).

/// Largest replay window this crate supports, in packets.
pub const MAX_REPLAY_WINDOW: u32 = 128;

/// Why [`ReplayWindow::check`] refused an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Already accepted.
    Replayed,
    /// Behind the window.
    TooOld,
}

/// Replay state of one SSRC; also carries the highest index (which the ROC estimation
/// needs even with replay protection off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplayWindow {
    highest: u64,
    seen: u128,
}

impl ReplayWindow {
    /// The window after accepting `first` as the first index of an SSRC.
    pub(crate) fn new(first: u64) -> Self {
        Self {
            highest: first,
            seen: 1,
        }
    }

    /// Highest index accepted so far.
    pub(crate) fn highest(&self) -> u64 {
        self.highest
    }

    /// Whether `index` may be accepted with a window of `window` packets (0 = replay
    /// protection off: everything passes).
    pub(crate) fn check(&self, index: u64, window: u32) -> Result<(), Refusal> {
        if window == 0 || index > self.highest {
            return Ok(());
        }
        let behind = self.highest - index;
        if behind >= u64::from(window.min(MAX_REPLAY_WINDOW)) {
            return Err(Refusal::TooOld);
        }
        if (self.seen >> behind) & 1 == 1 {
            return Err(Refusal::Replayed);
        }
        Ok(())
    }

    /// Records `index` as accepted (after its tag verified).
    pub(crate) fn accept(&mut self, index: u64) {
        if index > self.highest {
            let shift = index - self.highest;
            self.seen = if shift >= u64::from(MAX_REPLAY_WINDOW) {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.highest = index;
        } else {
            let behind = self.highest - index;
            if behind < u64::from(MAX_REPLAY_WINDOW) {
                self.seen |= 1u128 << behind;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_old_and_reordered() {
        let mut w = ReplayWindow::new(1000);
        assert_eq!(w.check(1000, 64), Err(Refusal::Replayed));
        assert_eq!(w.check(1001, 64), Ok(()));
        w.accept(1003);
        // 1001 and 1002 arrive late: accepted once.
        for late in [1002, 1001] {
            assert_eq!(w.check(late, 64), Ok(()));
            w.accept(late);
            assert_eq!(w.check(late, 64), Err(Refusal::Replayed));
        }
        // Window of 64 behind 1003: 940 is the oldest acceptable.
        assert_eq!(w.check(939, 64), Err(Refusal::TooOld));
        assert_eq!(w.check(940, 64), Ok(()));
        // A 128-packet window reaches further back.
        assert_eq!(w.check(939, 128), Ok(()));
        assert_eq!(w.check(875, 128), Err(Refusal::TooOld));
        // Off: anything passes.
        assert_eq!(w.check(1003, 0), Ok(()));
        assert_eq!(w.check(1, 0), Ok(()));
    }

    #[test]
    fn big_jumps_clear_the_bitmap() {
        let mut w = ReplayWindow::new(5);
        w.accept(5 + 1000);
        assert_eq!(w.highest(), 1005);
        assert_eq!(w.check(1004, 128), Ok(()));
        assert_eq!(w.check(1005, 128), Err(Refusal::Replayed));
        w.accept(1005 + 127);
        assert_eq!(w.check(1005, 128), Err(Refusal::Replayed));
        w.accept(1005 + 128);
        assert_eq!(w.check(1005, 128), Err(Refusal::TooOld));
    }
}
