//! Sequence-number rewriting that hides intentional drops.
//!
//! A receiver must see a gap only where the network lost packets: a packet the node drops on
//! purpose (a thinned temporal or spatial layer, suppressed silence) shifts the numbering of
//! every later packet down by one. A packet that arrives late (reordered, or repaired by
//! the sender) keeps the number it would have had if no drop came after it; one from before
//! a later drop, or from before the sequence was (re)started, cannot be placed any more and
//! is dropped too (its number was reused).

/// How far behind the newest packet a late one may be and still be placed: beyond this,
/// 16-bit order is no longer trustworthy (and no repair is that late).
pub(crate) const MAX_LATENESS: u16 = 0x2000;

/// `a` is after `b` in RTP sequence order.
#[inline]
pub(crate) fn seq_newer(a: u16, b: u16) -> bool {
    (a.wrapping_sub(b) as i16) > 0
}

/// Maps one incoming SSRC's sequence numbers to an outgoing sequence without gaps for drops.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SequenceRewriter {
    offset: u16,
    highest: Option<u16>,
    last_drop: Option<u16>,
}

impl SequenceRewriter {
    /// Starts a new incoming sequence so that its packet `seq` comes out as `next_out`.
    /// Packets from before `seq` can no longer be placed: their numbers went out already.
    pub(crate) fn resync(&mut self, seq: u16, next_out: u16) {
        self.offset = next_out.wrapping_sub(seq);
        self.highest = None;
        self.last_drop = Some(seq.wrapping_sub(1));
    }

    /// The outgoing number of a forwarded packet, or `None` when it arrived too late to be
    /// numbered (a later packet was dropped on purpose already).
    pub(crate) fn forward(&mut self, seq: u16) -> Option<u16> {
        match self.highest {
            Some(highest) if !seq_newer(seq, highest) => {
                if highest.wrapping_sub(seq) > MAX_LATENESS
                    || self.last_drop.is_some_and(|drop| !seq_newer(seq, drop))
                {
                    return None;
                }
            }
            _ => self.advance(seq),
        }
        Some(seq.wrapping_add(self.offset))
    }

    /// `seq` is the newest packet. A drop far enough behind is forgotten: every packet it
    /// could refuse is refused by [`MAX_LATENESS`] already, and after half the sequence
    /// space its order relative to new packets would invert.
    fn advance(&mut self, seq: u16) {
        self.highest = Some(seq);
        if self
            .last_drop
            .is_some_and(|drop| seq.wrapping_sub(drop) > MAX_LATENESS)
        {
            self.last_drop = None;
        }
    }

    /// Accounts for a packet dropped on purpose.
    pub(crate) fn drop_packet(&mut self, seq: u16) {
        match self.highest {
            Some(highest) if !seq_newer(seq, highest) => {}
            _ => {
                self.advance(seq);
                self.offset = self.offset.wrapping_sub(1);
                self.last_drop = Some(seq);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_leave_no_gap() {
        let mut r = SequenceRewriter::default();
        r.resync(100, 5000);
        assert_eq!(r.forward(100), Some(5000));
        r.drop_packet(101);
        r.drop_packet(102);
        assert_eq!(r.forward(103), Some(5001));
        assert_eq!(r.forward(104), Some(5002));
    }

    #[test]
    fn reordered_packet_before_a_drop_is_refused() {
        let mut r = SequenceRewriter::default();
        r.resync(65534, 10);
        assert_eq!(r.forward(65534), Some(10));
        assert_eq!(r.forward(0), Some(12));
        r.drop_packet(1);
        // 65535 arrives late: its number (11) would collide with the shifted sequence.
        assert_eq!(r.forward(65535), None);
        assert_eq!(r.forward(2), Some(13));
    }

    #[test]
    fn packets_from_before_a_resync_are_refused() {
        let mut r = SequenceRewriter::default();
        r.resync(500, 20);
        assert_eq!(r.forward(500), Some(20));
        assert_eq!(r.forward(502), Some(22));
        // 501 was lost and is repaired: it takes the number it would have had.
        assert_eq!(r.forward(501), Some(21));
        // 499 precedes the switch: 19 went out for another stream already.
        assert_eq!(r.forward(499), None);
    }

    #[test]
    fn an_old_drop_does_not_refuse_late_packets_forever() {
        let mut r = SequenceRewriter::default();
        r.resync(0, 0);
        r.forward(0);
        r.drop_packet(1);
        // Long after the drop (past half the sequence space), a late packet is placed.
        for seq in (2..=40_000u16).step_by(100) {
            r.forward(seq);
        }
        assert_eq!(r.forward(40_001), Some(40_000));
        assert_eq!(r.forward(39_995), Some(39_994));
        // Far too late is refused.
        assert_eq!(r.forward(40_001 - MAX_LATENESS - 1), None);
    }

    #[test]
    fn late_packet_without_later_drop_keeps_its_number() {
        let mut r = SequenceRewriter::default();
        r.resync(10, 10);
        assert_eq!(r.forward(10), Some(10));
        assert_eq!(r.forward(12), Some(12));
        assert_eq!(r.forward(11), Some(11));
    }
}
