//! Sequence-number bookkeeping of one received stream: 16-bit unwrapping, which sequence
//! numbers arrived within a sliding window, and the gaps still open in it.
//!
//! Loss is counted when a gap is seen (a packet arrives more than one ahead of the highest so
//! far) and un-counted when the original transmission turns up late (reordering). A gap filled
//! by a retransmission stays counted as loss and is counted as recovered as well, so raw loss
//! tells how the network and node behaved and residual loss (raw minus recovered) tells what
//! the application was left with.

use std::collections::VecDeque;
use std::time::Duration;

/// How many sequence numbers behind the highest one a packet may arrive and still be matched
/// against its gap (and recognised as a duplicate). Older packets are counted as too late.
///
/// 2048 packets is about 8 s of a 2.5 Mbit/s video stream and far more of an audio stream, so
/// a 1 s recovery deadline is always inside the window.
pub const SEQUENCE_WINDOW: u64 = 2048;

const WORD_BITS: u64 = 64;
const WORDS: usize = (SEQUENCE_WINDOW / WORD_BITS) as usize;

/// Where an arriving sequence number landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeqEvent {
    /// Ahead of everything so far; `new_gaps` sequence numbers were skipped.
    Advanced {
        /// Sequence numbers skipped by this packet.
        new_gaps: u64,
    },
    /// Filled a gap (or preceded the first packet); `waited` is how long ago the gap was
    /// seen.
    Filled {
        /// Time since the gap was detected.
        waited: Duration,
        /// Gaps newly detected by this packet (only when it lowers the start of the stream).
        new_gaps: u64,
    },
    /// Already received.
    Duplicate,
    /// Older than the window: cannot be matched.
    TooLate,
}

/// A run of consecutive missing sequence numbers `[start, end)`, and when it was seen.
#[derive(Debug, Clone, Copy)]
struct GapRange {
    start: u64,
    end: u64,
    detected_at: Duration,
}

/// Unwraps sequence numbers and remembers which ones arrived, over [`SEQUENCE_WINDOW`].
///
/// Per packet this is O(1) amortised: advancing clears one bit per skipped sequence number,
/// and the gap list grows only when there is loss (its allocation is kept and reused).
#[derive(Debug, Clone)]
pub(crate) struct SequenceWindow {
    /// Extended sequence number of the first packet (lowered if an earlier one arrives late).
    base: u64,
    /// Highest extended sequence number received; `None` before the first packet.
    highest: Option<u64>,
    /// One bit per extended sequence number modulo the window: received or not.
    received: [u64; WORDS],
    /// Open (or partly filled) gaps inside the window, sorted by `start`.
    gaps: VecDeque<GapRange>,
}

/// The first packet's extended sequence number: its 16-bit value in "cycle" 2^16, so that late
/// packets from before it and many rollovers after it stay in range without signed arithmetic.
const FIRST_CYCLE: u64 = 1 << 32;

impl SequenceWindow {
    pub(crate) fn new() -> Self {
        Self {
            base: 0,
            highest: None,
            received: [0; WORDS],
            gaps: VecDeque::new(),
        }
    }

    /// Sequence numbers from the first to the highest received, inclusive.
    pub(crate) fn expected(&self) -> u64 {
        self.highest.map_or(0, |h| h - self.base + 1)
    }

    /// The extended form of `seq`, the one closest to the highest so far.
    pub(crate) fn unwrap(&self, seq: u16) -> u64 {
        match self.highest {
            None => FIRST_CYCLE + u64::from(seq),
            Some(highest) => {
                // The truncation to 16 bits is the point: the signed distance in sequence
                // space, valid for jumps of less than half the space either way.
                let delta = i64::from(seq.wrapping_sub(highest as u16) as i16);
                highest.saturating_add_signed(delta)
            }
        }
    }

    /// Records the arrival of `seq` at `now`. A `retransmission` that lands ahead of the
    /// highest sequence number has, by definition, replaced an original that never arrived, so
    /// its own sequence number is treated as a gap that it fills at once.
    pub(crate) fn on_arrival(&mut self, seq: u16, now: Duration, retransmission: bool) -> SeqEvent {
        let ext = self.unwrap(seq);
        let Some(highest) = self.highest else {
            self.base = ext;
            self.highest = Some(ext);
            self.set_bit(ext);
            if retransmission {
                // Its original was lost; nothing to lower the base with, so the RTX counts as
                // the gap it fills.
                return SeqEvent::Filled {
                    waited: Duration::ZERO,
                    new_gaps: 1,
                };
            }
            return SeqEvent::Advanced { new_gaps: 0 };
        };

        if ext > highest {
            self.advance_to(highest, ext);
            self.highest = Some(ext);
            let gap_end = if retransmission { ext + 1 } else { ext };
            let new_gaps = gap_end - (highest + 1);
            if new_gaps > 0 {
                self.gaps.push_back(GapRange {
                    start: highest + 1,
                    end: gap_end,
                    detected_at: now,
                });
            }
            self.set_bit(ext);
            self.prune_gaps(ext);
            if retransmission {
                return SeqEvent::Filled {
                    waited: Duration::ZERO,
                    new_gaps,
                };
            }
            return SeqEvent::Advanced { new_gaps };
        }

        if highest - ext >= SEQUENCE_WINDOW {
            return SeqEvent::TooLate;
        }
        if self.bit(ext) {
            return SeqEvent::Duplicate;
        }
        let mut new_gaps = 0;
        if ext < self.base {
            // Arrived before the first packet we saw: the stream started earlier, and the
            // sequence numbers in between are missing as of now.
            new_gaps = self.base - ext;
            self.gaps.push_front(GapRange {
                start: ext,
                end: self.base,
                detected_at: now,
            });
            self.base = ext;
        }
        self.set_bit(ext);
        let detected_at = self.gap_detected_at(ext).unwrap_or(now);
        SeqEvent::Filled {
            waited: now.saturating_sub(detected_at),
            new_gaps,
        }
    }

    /// When the gap holding `ext` was detected, if one does.
    fn gap_detected_at(&self, ext: u64) -> Option<Duration> {
        let after = self.gaps.partition_point(|g| g.start <= ext);
        let index = after.checked_sub(1)?;
        let gap = self.gaps.get(index)?;
        (ext < gap.end).then_some(gap.detected_at)
    }

    /// Clears the bits of the sequence numbers that the window slides over.
    fn advance_to(&mut self, highest: u64, ext: u64) {
        if ext - highest >= SEQUENCE_WINDOW {
            self.received = [0; WORDS];
            return;
        }
        for skipped in highest + 1..=ext {
            self.clear_bit(skipped);
        }
    }

    /// Drops gaps that lie wholly behind the window ending at `highest`.
    fn prune_gaps(&mut self, highest: u64) {
        let oldest_in_window = (highest + 1).saturating_sub(SEQUENCE_WINDOW);
        while self.gaps.front().is_some_and(|g| g.end <= oldest_in_window) {
            self.gaps.pop_front();
        }
    }

    fn slot(ext: u64) -> (usize, u64) {
        let index = ext % SEQUENCE_WINDOW;
        ((index / WORD_BITS) as usize, 1 << (index % WORD_BITS))
    }

    fn bit(&self, ext: u64) -> bool {
        let (word, mask) = Self::slot(ext);
        self.received.get(word).is_some_and(|w| w & mask != 0)
    }

    fn set_bit(&mut self, ext: u64) {
        let (word, mask) = Self::slot(ext);
        if let Some(w) = self.received.get_mut(word) {
            *w |= mask;
        }
    }

    fn clear_bit(&mut self, ext: u64) {
        let (word, mask) = Self::slot(ext);
        if let Some(w) = self.received.get_mut(word) {
            *w &= !mask;
        }
    }
}
