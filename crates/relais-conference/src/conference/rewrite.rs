//! Sequence-number rewriting that hides intentional drops.
//!
//! A receiver must see a gap only where the network lost packets: a packet the node drops on
//! purpose (a thinned temporal or spatial layer, suppressed silence) shifts the numbering of
//! every later packet down by one. Packets that arrive late, after a later drop was already
//! accounted, cannot be placed any more and are dropped too (their number was reused).

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
    pub(crate) fn resync(&mut self, seq: u16, next_out: u16) {
        self.offset = next_out.wrapping_sub(seq);
        self.highest = None;
        self.last_drop = None;
    }

    /// The outgoing number of a forwarded packet, or `None` when it arrived too late to be
    /// numbered (a later packet was dropped on purpose already).
    pub(crate) fn forward(&mut self, seq: u16) -> Option<u16> {
        match self.highest {
            Some(highest) if !seq_newer(seq, highest) => {
                if self.last_drop.is_some_and(|drop| !seq_newer(seq, drop)) {
                    return None;
                }
            }
            _ => self.highest = Some(seq),
        }
        Some(seq.wrapping_add(self.offset))
    }

    /// Accounts for a packet dropped on purpose.
    pub(crate) fn drop_packet(&mut self, seq: u16) {
        match self.highest {
            Some(highest) if !seq_newer(seq, highest) => {}
            _ => {
                self.highest = Some(seq);
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
    fn late_packet_without_later_drop_keeps_its_number() {
        let mut r = SequenceRewriter::default();
        r.resync(10, 10);
        assert_eq!(r.forward(10), Some(10));
        assert_eq!(r.forward(12), Some(12));
        assert_eq!(r.forward(11), Some(11));
    }
}
