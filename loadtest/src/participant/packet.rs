//! What a participant reports about one received SRTP packet without decrypting it: the RTP
//! header and its extensions travel in the clear, so a load generator reads them from the
//! ciphertext and authenticates only a sample of the packets.

use relais_rtp::rtp::Extensions;

/// Whether a received packet was authenticated and decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification<'a> {
    /// Not in the sample: only the clear header was read.
    NotSampled,
    /// In the sample, authentic: the decrypted RTP packet (header and payload).
    Verified(&'a [u8]),
    /// In the sample, and the SRTP tag did not verify (or the packet was a replay).
    Failed,
}

/// The clear facts of one received SRTP packet.
///
/// Borrowed from the datagram buffer the driver received into: read what is needed inside
/// the callback, nothing here is kept.
#[derive(Debug, Clone, Copy)]
pub struct ReceivedRtp<'a> {
    /// Synchronisation source.
    pub ssrc: u32,
    /// RTP sequence number.
    pub sequence_number: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Marker bit.
    pub marker: bool,
    /// Padding bit (the padding itself is encrypted).
    pub padding: bool,
    /// Payload type.
    pub payload_type: u8,
    /// Length of the RTP header (fixed part, CSRCs and extension block).
    pub header_len: usize,
    /// Length of the (encrypted) payload, padding included: the datagram without header
    /// and SRTP overhead.
    pub payload_len: usize,
    /// Length of the whole datagram.
    pub datagram_len: usize,
    /// The extension block's profile (0xBEDE one-byte, 0x100x two-byte), if the packet has
    /// an extension block.
    pub extension_profile: Option<u16>,
    /// The extension block's data (after its 4-byte header); empty without one.
    pub extension_data: &'a [u8],
    /// The transport-wide sequence number, when the participant knows the extension id and
    /// the packet carries it.
    pub transport_sequence: Option<u16>,
    /// Whether it was authenticated (and if so, the plaintext).
    pub verification: Verification<'a>,
}

impl<'a> ReceivedRtp<'a> {
    /// The value of header extension `id` (RFC 8285 one- or two-byte form), if present.
    pub fn extension(&self, id: u8) -> Option<&'a [u8]> {
        find_extension(self.extension_profile, self.extension_data, id)
    }

    /// The decrypted payload, when this packet was verified.
    pub fn verified_payload(&self) -> Option<&'a [u8]> {
        match self.verification {
            Verification::Verified(packet) => packet.get(self.header_len..),
            _ => None,
        }
    }
}

/// The value of extension `id` in an extension block of `profile` with `data`.
pub(crate) fn find_extension(profile: Option<u16>, data: &[u8], id: u8) -> Option<&[u8]> {
    Extensions::from_block(profile?, data).find_map(|(found, value)| (found == id).then_some(value))
}

/// The clear header fields of an (S)RTP datagram, `None` if it is no valid RTP header.
pub(crate) struct ClearHeader {
    pub(crate) ssrc: u32,
    pub(crate) sequence_number: u16,
    pub(crate) timestamp: u32,
    pub(crate) marker: bool,
    pub(crate) padding: bool,
    pub(crate) payload_type: u8,
    pub(crate) header_len: usize,
    pub(crate) extension_profile: Option<u16>,
    /// Range of the extension data within the datagram.
    pub(crate) extension_range: std::ops::Range<usize>,
}

impl ClearHeader {
    pub(crate) fn parse(datagram: &[u8]) -> Option<Self> {
        // `header_len` validates version, CSRCs and the extension block's length without
        // looking at the (encrypted) padding.
        let header_len = relais_rtp::rtp::header_len(datagram).ok()?;
        let fixed: &[u8; 12] = datagram.first_chunk()?;
        let [b0, b1, s0, s1, t0, t1, t2, t3, c0, c1, c2, c3] = *fixed;
        let (extension_profile, extension_range) = if b0 & 0x10 != 0 {
            let csrc_end = 12 + 4 * usize::from(b0 & 0x0F);
            let profile = datagram.get(csrc_end..csrc_end + 2)?;
            (
                Some(u16::from_be_bytes([*profile.first()?, *profile.get(1)?])),
                csrc_end + 4..header_len,
            )
        } else {
            (None, header_len..header_len)
        };
        Some(Self {
            ssrc: u32::from_be_bytes([c0, c1, c2, c3]),
            sequence_number: u16::from_be_bytes([s0, s1]),
            timestamp: u32::from_be_bytes([t0, t1, t2, t3]),
            marker: b1 & 0x80 != 0,
            padding: b0 & 0x20 != 0,
            payload_type: b1 & 0x7F,
            header_len,
            extension_profile,
            extension_range,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use relais_rtp::rtp::{ONE_BYTE_PROFILE, TWO_BYTE_PROFILE};

    #[test]
    fn one_byte_extensions_are_found() {
        // id 1 (1 byte), padding, id 5 (2 bytes).
        let data = [0x10, 0xAA, 0x00, 0x51, 0x12, 0x34, 0x00, 0x00];
        assert_eq!(
            find_extension(Some(ONE_BYTE_PROFILE), &data, 1),
            Some(&[0xAA][..])
        );
        assert_eq!(
            find_extension(Some(ONE_BYTE_PROFILE), &data, 5),
            Some(&[0x12, 0x34][..])
        );
        assert_eq!(find_extension(Some(ONE_BYTE_PROFILE), &data, 3), None);
        // Truncated value: nothing, no panic.
        assert_eq!(
            find_extension(Some(ONE_BYTE_PROFILE), &[0x53, 0x01], 5),
            None
        );
    }

    #[test]
    fn two_byte_extensions_are_found() {
        let data = [0x07, 0x03, 1, 2, 3, 0x00, 0x09, 0x00];
        assert_eq!(
            find_extension(Some(TWO_BYTE_PROFILE), &data, 7),
            Some(&[1, 2, 3][..])
        );
        assert_eq!(
            find_extension(Some(TWO_BYTE_PROFILE), &data, 9),
            Some(&[][..])
        );
    }

    #[test]
    fn clear_header_of_a_packet_with_extensions() {
        let mut packet = vec![0x90, 0xE4, 0x01, 0x02, 0, 0, 0x10, 0, 0, 0, 0x30, 0x39];
        packet.extend_from_slice(&[0xBE, 0xDE, 0x00, 0x01, 0x51, 0x00, 0x07, 0x00]);
        packet.extend_from_slice(&[0xEE; 20]);
        let header = ClearHeader::parse(&packet).unwrap();
        assert_eq!(header.ssrc, 12345);
        assert_eq!(header.sequence_number, 0x0102);
        assert_eq!(header.timestamp, 0x1000);
        assert!(header.marker);
        assert_eq!(header.payload_type, 100);
        assert_eq!(header.header_len, 20);
        assert_eq!(header.extension_profile, Some(0xBEDE));
        assert_eq!(&packet[header.extension_range], &[0x51, 0x00, 0x07, 0x00]);
        assert!(ClearHeader::parse(&packet[..10]).is_none());
    }
}
