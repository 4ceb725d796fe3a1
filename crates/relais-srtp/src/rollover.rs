//! Rollover counter tracking: which 48-bit packet index (ROC || SEQ) a 16-bit RTP sequence
//! number stands for.
//!
//! Both directions use the estimation of RFC 3711 §3.3.1 / Appendix A relative to the
//! highest index seen so far. On send this is what makes the ROC step from n to n + 1 when
//! the sequence number wraps 65535 → 0 (and keeps a late retransmission of 65535 on ROC n).
//! On receive it also tolerates reordering across the wrap.

/// Largest valid SRTP packet index (RFC 3711 §3.3.1: the index is 48 bits).
pub(crate) const MAX_RTP_INDEX: u64 = (1 << 48) - 1;

/// RFC 3711 Appendix A: the index `v || SEQ` where `v` is ROC - 1, ROC or ROC + 1 of the
/// highest index `highest`, whichever puts `seq` closest to it.
///
/// May return an index above [`MAX_RTP_INDEX`] when the ROC would pass 2^32 - 1; callers
/// refuse that (the key is exhausted).
pub(crate) fn estimate_index(highest: u64, seq: u16) -> u64 {
    let roc = highest >> 16;
    let s_l = i64::from((highest & 0xffff) as u16);
    let s = i64::from(seq);
    let v = if s_l < 0x8000 {
        if s - s_l > 0x8000 {
            // Before the wrap we are already past. With ROC 0 there is no earlier cycle:
            // such a packet can only be a forward jump (this is where libsrtp's guess
            // underflows instead).
            roc.checked_sub(1).unwrap_or(roc)
        } else {
            roc
        }
    } else if s_l - 0x8000 > s {
        roc + 1
    } else {
        roc
    };
    (v << 16) | u64::from(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3711_appendix_a() {
        // In the middle: no ROC change.
        assert_eq!(estimate_index(0x0001_4000, 0x4005), 0x0001_4005);
        assert_eq!(estimate_index(0x0001_4000, 0x3ff0), 0x0001_3ff0);
        // Just past the wrap: ROC + 1.
        assert_eq!(estimate_index(0x0001_fffe, 0x0001), 0x0002_0001);
        // Late packet from before the wrap: ROC - 1.
        assert_eq!(estimate_index(0x0002_0001, 0xfffe), 0x0001_fffe);
        // ROC 0 has no previous cycle.
        assert_eq!(estimate_index(100, 40_000), 40_000);
        // Sender wrap: 65535 -> 0.
        assert_eq!(estimate_index(0xffff, 0), 0x1_0000);
    }

    #[test]
    fn roc_overflow_is_visible() {
        let last = MAX_RTP_INDEX - 1; // ROC 2^32 - 1, SEQ 0xfffe
        assert!(estimate_index(last, 0xffff) <= MAX_RTP_INDEX);
        assert!(estimate_index(MAX_RTP_INDEX, 0) > MAX_RTP_INDEX);
    }
}
