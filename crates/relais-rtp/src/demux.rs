//! Which protocol a datagram on the media port belongs to.
//!
//! relais receives STUN, DTLS, SRTP and SRTCP on one UDP port. RFC 7983 (updated by
//! RFC 9443) tells them apart by the first byte, and RFC 5761 tells RTP from RTCP by the
//! second byte: RTCP packet types 192..=223 would be RTP payload types 64..=95 with the
//! marker bit set, a range RFC 5761 §4 forbids for RTP payload types when muxing.
//!
//! This module owns only that decision; it reads at most two bytes, never validates the
//! packet itself (the parsers do) and never panics.

/// The protocol a datagram belongs to, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatagramKind {
    /// First byte 0..=3: a STUN message (ICE connectivity checks and consent).
    Stun,
    /// First byte 20..=63: a DTLS record (handshake, alerts).
    Dtls,
    /// First byte 128..=191 and second byte outside 192..=223: (S)RTP.
    Rtp,
    /// First byte 128..=191 and second byte in 192..=223: (S)RTCP.
    Rtcp,
    /// Anything else: empty datagrams, ZRTP (16..=19) and TURN channel data (64..=79),
    /// which relais never speaks on its media port, a lone RTP-range byte, and the ranges
    /// RFC 7983 leaves unassigned. To be dropped (and counted).
    Unknown,
}

/// Classifies `datagram` by its first byte (RFC 7983) and, in the RTP range, its second
/// byte (RFC 5761).
#[inline]
pub fn classify(datagram: &[u8]) -> DatagramKind {
    match datagram {
        [0..=3, ..] => DatagramKind::Stun,
        [20..=63, ..] => DatagramKind::Dtls,
        [128..=191, 192..=223, ..] => DatagramKind::Rtcp,
        [128..=191, _, ..] => DatagramKind::Rtp,
        _ => DatagramKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_first_byte() {
        for first in 0..=u8::MAX {
            let expected = match first {
                0..=3 => DatagramKind::Stun,
                20..=63 => DatagramKind::Dtls,
                128..=191 => DatagramKind::Rtp,
                _ => DatagramKind::Unknown,
            };
            assert_eq!(classify(&[first, 96, 0, 0]), expected, "first byte {first}");
        }
    }

    #[test]
    fn rtcp_by_second_byte() {
        // Sender report (200), receiver report (201), PSFB (206); RTP PT 96 with marker (224).
        assert_eq!(classify(&[0x80, 200]), DatagramKind::Rtcp);
        assert_eq!(classify(&[0x81, 201]), DatagramKind::Rtcp);
        assert_eq!(classify(&[0x81, 206]), DatagramKind::Rtcp);
        assert_eq!(classify(&[0x80, 192]), DatagramKind::Rtcp);
        assert_eq!(classify(&[0x80, 223]), DatagramKind::Rtcp);
        assert_eq!(classify(&[0x80, 191]), DatagramKind::Rtp);
        assert_eq!(classify(&[0x80, 224]), DatagramKind::Rtp);
        assert_eq!(classify(&[0x80]), DatagramKind::Unknown);
        assert_eq!(classify(&[]), DatagramKind::Unknown);
    }
}
