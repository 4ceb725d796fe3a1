//! The clear part of an SRTP packet: the RTP header with its CSRCs and header extensions
//! (RFC 3711 §3.1 encrypts only the payload), from a capture that may have cut the packet.

use relais_rtp::rtp::Extensions;

/// Most one-byte extension values kept per packet: audio level, and room for the other
/// one-byte extensions that share the header with it (mid "0", a VAD or orientation flag).
pub(super) const MAX_SHORT_EXTENSIONS: usize = 6;

/// The clear RTP header of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ClearHeader {
    pub ssrc: u32,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub padding: bool,
    pub payload_type: u8,
    /// Header length: fixed part, CSRCs and the extension block.
    pub header_len: usize,
    /// One-byte-long extension elements as `(id, value)`, in header order (the first
    /// [`MAX_SHORT_EXTENSIONS`]; ids of the one-byte or two-byte form alike).
    pub short_extensions: [(u8, u8); MAX_SHORT_EXTENSIONS],
    /// Number of valid entries in `short_extensions`.
    pub short_extension_count: u8,
}

impl ClearHeader {
    /// The value of the one-byte extension `id`, if the packet carries it.
    pub fn short_extension(&self, id: u8) -> Option<u8> {
        self.short_extensions
            .get(..usize::from(self.short_extension_count))?
            .iter()
            .find(|(i, _)| *i == id)
            .map(|&(_, value)| value)
    }
}

/// Reads the clear header from the captured bytes of a datagram whose full length is
/// `length`. `None` when the bytes are not a well-formed RTP header, or when the capture
/// cut the packet before the extension block's length field (the header's end is then
/// unknown). Extension elements beyond the captured bytes are not read.
pub(super) fn parse(captured: &[u8], length: usize) -> Option<ClearHeader> {
    let fixed = captured.first_chunk::<12>()?;
    let [b0, b1, s0, s1, t0, t1, t2, t3, c0, c1, c2, c3] = *fixed;
    if b0 >> 6 != 2 {
        return None;
    }
    let mut header = ClearHeader {
        ssrc: u32::from_be_bytes([c0, c1, c2, c3]),
        sequence_number: u16::from_be_bytes([s0, s1]),
        timestamp: u32::from_be_bytes([t0, t1, t2, t3]),
        marker: b1 & 0x80 != 0,
        padding: b0 & 0x20 != 0,
        payload_type: b1 & 0x7F,
        header_len: 12 + usize::from(b0 & 0x0F) * 4,
        short_extensions: [(0, 0); MAX_SHORT_EXTENSIONS],
        short_extension_count: 0,
    };
    if b0 & 0x10 != 0 {
        let at = header.header_len;
        let [p0, p1, l0, l1] = *captured.get(at..)?.first_chunk::<4>()?;
        let profile = u16::from_be_bytes([p0, p1]);
        let block_len = usize::from(u16::from_be_bytes([l0, l1])) * 4;
        let start = at + 4;
        header.header_len = start + block_len;
        let block = captured.get(start..).unwrap_or(&[]);
        let block = block.get(..block_len).unwrap_or(block);
        for (id, value) in Extensions::from_block(profile, block) {
            if let [byte] = *value {
                push_short(&mut header, id, byte);
            }
        }
    }
    (header.header_len <= length).then_some(header)
}

fn push_short(header: &mut ClearHeader, id: u8, value: u8) {
    if let Some(slot) = header
        .short_extensions
        .get_mut(usize::from(header.short_extension_count))
    {
        *slot = (id, value);
        header.short_extension_count += 1;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn reads_header_and_extensions() {
        let mut packet = vec![0x90, 0x80 | 111, 0x12, 0x34, 0, 0, 0x10, 0, 1, 2, 3, 4];
        // One-byte form: audio level id 1 (0x9E), padding, mid id 3 = "0", 3-byte id 2.
        packet.extend_from_slice(&[0xBE, 0xDE, 0, 3, 0x10, 0x9E, 0, 0x30, 0x30, 0x22, 1, 2, 3]);
        packet.extend_from_slice(&[0, 0, 0]);
        packet.extend_from_slice(&[0xFF; 20]);
        let header = parse(&packet, packet.len()).unwrap();
        assert_eq!(header.ssrc, 0x0102_0304);
        assert_eq!(header.sequence_number, 0x1234);
        assert_eq!(header.timestamp, 0x1000);
        assert!(header.marker);
        assert_eq!(header.payload_type, 111);
        assert_eq!(header.header_len, 28);
        assert_eq!(header.short_extension(1), Some(0x9E));
        assert_eq!(header.short_extension(3), Some(0x30));
        assert_eq!(header.short_extension(2), None);
        // The block's length field alone fixes the header length.
        let cut = parse(&packet[..18], packet.len()).unwrap();
        assert_eq!(cut.header_len, 28);
        assert_eq!(cut.short_extension(1), Some(0x9E));
        assert!(parse(&packet[..14], packet.len()).is_none());
        assert!(parse(&packet, 27).is_none());
    }

    #[test]
    fn two_byte_form() {
        let mut packet = vec![0x90, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9];
        packet.extend_from_slice(&[0x10, 0x00, 0, 2, 5, 1, 0x7F, 0, 7, 2, 1, 2]);
        let header = parse(&packet, 100).unwrap();
        assert_eq!(header.short_extension(5), Some(0x7F));
        assert_eq!(header.short_extension(7), None);
    }

    /// What the capture reader keeps: relais-rtp's classification, RTP only.
    #[test]
    fn demultiplexes() {
        use relais_rtp::demux::{classify, DatagramKind};
        assert_eq!(classify(&[0x80, 111]), DatagramKind::Rtp);
        assert_eq!(classify(&[0x80, 0x80 | 96]), DatagramKind::Rtp);
        assert_eq!(classify(&[0x81, 200]), DatagramKind::Rtcp);
        assert_ne!(classify(&[0x00, 0x01]), DatagramKind::Rtp);
        assert_ne!(classify(&[22, 254]), DatagramKind::Rtp);
        assert_ne!(classify(&[0x80]), DatagramKind::Rtp);
    }
}
