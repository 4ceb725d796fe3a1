//! Non-allocating views over compound RTCP.
//!
//! Validation per packet (RFC 3550 §6.4.1, Appendix A.2, RFC 4585 §6.1):
//! - version 2;
//! - the length field fits in what is left of the compound;
//! - with the padding bit set, the last byte is a count of at least 1 that leaves the header
//!   intact;
//! - known types are at least as long as their fixed part and announced count need.
//!
//! Padding is accepted on any packet of a compound, not only the last one as RFC 3550 asks:
//! the length field delimits every packet regardless, and the `rtcp` crate (and so webrtc-rs
//! peers) pads individual packets such as TWCC inside a compound.
//! Nor is an SR/RR first packet required, so reduced-size RTCP (RFC 5506) passes.

use std::iter::FusedIterator;

use ::rtcp::transport_feedbacks::transport_layer_nack::NackPair;

use super::{RtcpError, RtcpKind};

/// Length of the common RTCP header.
const HEADER_LEN: usize = 4;

/// Length of a reception report block.
const REPORT_BLOCK_LEN: usize = 24;

/// Length of an SR's sender info after its SSRC.
const SENDER_INFO_LEN: usize = 20;

/// Iterator over the packets of a compound RTCP packet.
///
/// Yields `Err` once for the first malformed packet and then stops: after a bad length the
/// remaining bytes cannot be delimited.
#[derive(Debug, Clone)]
pub struct RtcpCompound<'a> {
    rest: &'a [u8],
}

impl<'a> RtcpCompound<'a> {
    /// Iterate over the packets in `compound` (a decrypted SRTCP payload or plain RTCP).
    #[inline]
    pub fn new(compound: &'a [u8]) -> Self {
        RtcpCompound { rest: compound }
    }

    /// Validate the whole compound and return how many packets it holds.
    pub fn validate(compound: &'a [u8]) -> Result<usize, RtcpError> {
        RtcpCompound::new(compound).try_fold(0, |count, packet| packet.map(|_| count + 1))
    }
}

impl<'a> Iterator for RtcpCompound<'a> {
    type Item = Result<RtcpPacketView<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match RtcpPacketView::parse_first(self.rest) {
            Ok((packet, rest)) => {
                self.rest = rest;
                Some(Ok(packet))
            }
            Err(error) => {
                self.rest = &[];
                Some(Err(error))
            }
        }
    }
}

impl FusedIterator for RtcpCompound<'_> {}

/// One validated RTCP packet inside a compound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpPacketView<'a> {
    bytes: &'a [u8],
    padding_len: usize,
    kind: RtcpKind,
}

impl<'a> RtcpPacketView<'a> {
    /// Parse the first packet of `compound`; returns it and the bytes after it.
    pub fn parse_first(compound: &'a [u8]) -> Result<(Self, &'a [u8]), RtcpError> {
        let available = compound.len();
        let [b0, pt, l0, l1] =
            *compound
                .first_chunk::<HEADER_LEN>()
                .ok_or(RtcpError::Truncated {
                    needed: HEADER_LEN,
                    available,
                })?;
        let version = b0 >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion { version });
        }
        let len = (usize::from(u16::from_be_bytes([l0, l1])) + 1) * 4;
        let (bytes, rest) = compound.split_at_checked(len).ok_or(RtcpError::Truncated {
            needed: len,
            available,
        })?;
        let padding_len = if b0 & 0x20 != 0 {
            let padding = bytes.last().copied().unwrap_or(0);
            if padding == 0 || usize::from(padding) > len - HEADER_LEN {
                return Err(RtcpError::BadPadding { padding, len });
            }
            usize::from(padding)
        } else {
            0
        };
        let payload = bytes.get(HEADER_LEN..len - padding_len).unwrap_or_default();
        let count = b0 & 0x1F;
        let kind = RtcpKind::classify(pt, count, payload);
        check_min_len(kind, count, payload.len())?;
        Ok((
            RtcpPacketView {
                bytes,
                padding_len,
                kind,
            },
            rest,
        ))
    }

    /// Parse a buffer holding exactly one packet.
    pub fn parse(packet: &'a [u8]) -> Result<Self, RtcpError> {
        let (view, rest) = Self::parse_first(packet)?;
        if rest.is_empty() {
            Ok(view)
        } else {
            Err(RtcpError::TrailingBytes { extra: rest.len() })
        }
    }

    /// The RTP version field (always 2 for a parsed view).
    #[inline]
    pub fn version(&self) -> u8 {
        self.first_byte() >> 6
    }

    /// Whether the padding bit is set.
    #[inline]
    pub fn has_padding(&self) -> bool {
        self.padding_len > 0
    }

    /// Number of padding bytes at the end (0 without the padding bit).
    #[inline]
    pub fn padding_len(&self) -> usize {
        self.padding_len
    }

    /// The 5-bit count field: reception report / source / chunk count, or FMT for feedback.
    #[inline]
    pub fn count(&self) -> u8 {
        self.first_byte() & 0x1F
    }

    /// The feedback message type of RTPFB/PSFB (the count field under its RFC 4585 name).
    #[inline]
    pub fn fmt(&self) -> u8 {
        self.count()
    }

    /// The packet type number (see [`packet_type`](super::packet_type)).
    #[inline]
    pub fn packet_type(&self) -> u8 {
        self.bytes.get(1).copied().unwrap_or(0)
    }

    /// What the packet is.
    #[inline]
    pub fn kind(&self) -> RtcpKind {
        self.kind
    }

    /// The length field: packet length in 32-bit words minus one.
    #[inline]
    pub fn length_words(&self) -> u16 {
        (self.bytes.len() / 4 - 1) as u16
    }

    /// Packet length in bytes, header and padding included.
    #[inline]
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// The whole packet: header, payload and padding.
    #[inline]
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The bytes after the header, without padding.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.bytes
            .get(HEADER_LEN..self.bytes.len() - self.padding_len)
            .unwrap_or_default()
    }

    /// The SSRC of the packet's originator: the first word of SR, RR, APP, XR and feedback;
    /// for SDES and BYE, which have no sender field, the first chunk's or source's SSRC (if
    /// the count is not zero). `None` for unknown packet types.
    #[inline]
    pub fn sender_ssrc(&self) -> Option<u32> {
        let has_sender = match self.kind {
            RtcpKind::SourceDescription | RtcpKind::Goodbye => self.count() > 0,
            RtcpKind::Unknown(_) => false,
            _ => true,
        };
        if has_sender {
            self.word(0)
        } else {
            None
        }
    }

    /// The media source SSRC of RTPFB/PSFB feedback: whose stream the feedback is about.
    /// (FIR and REMB put 0 here and name their targets in the FCI.)
    #[inline]
    pub fn media_ssrc(&self) -> Option<u32> {
        if self.kind.is_feedback() {
            self.word(4)
        } else {
            None
        }
    }

    /// The sender info of an SR.
    #[inline]
    pub fn sender_info(&self) -> Option<SenderInfo> {
        if self.kind != RtcpKind::SenderReport {
            return None;
        }
        let info = self.payload().get(4..4 + SENDER_INFO_LEN)?;
        let (ntp, rest) = info.split_first_chunk::<8>()?;
        let (rtp, rest) = rest.split_first_chunk::<4>()?;
        let (packets, rest) = rest.split_first_chunk::<4>()?;
        let octets = rest.first_chunk::<4>()?;
        Some(SenderInfo {
            ntp_time: u64::from_be_bytes(*ntp),
            rtp_time: u32::from_be_bytes(*rtp),
            packet_count: u32::from_be_bytes(*packets),
            octet_count: u32::from_be_bytes(*octets),
        })
    }

    /// The reception report blocks of an SR or RR (empty for other packets).
    #[inline]
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        let offset = match self.kind {
            RtcpKind::SenderReport => 4 + SENDER_INFO_LEN,
            RtcpKind::ReceiverReport => 4,
            _ => return ReportBlocks { rest: &[] },
        };
        let blocks_len = usize::from(self.count()) * REPORT_BLOCK_LEN;
        ReportBlocks {
            rest: self
                .payload()
                .get(offset..offset + blocks_len)
                .unwrap_or_default(),
        }
    }

    /// The (PID, BLP) pairs of a Generic NACK (empty for other packets). Each pair iterates
    /// over its lost sequence numbers.
    #[inline]
    pub fn nack_pairs(&self) -> NackPairs<'a> {
        let fci = match self.kind {
            RtcpKind::Nack => self.payload().get(8..).unwrap_or_default(),
            _ => &[],
        };
        NackPairs { rest: fci }
    }

    #[inline]
    fn first_byte(&self) -> u8 {
        self.bytes.first().copied().unwrap_or(0)
    }

    /// The big-endian 32-bit word at `offset` in the payload.
    #[inline]
    fn word(&self, offset: usize) -> Option<u32> {
        let word = self.payload().get(offset..offset + 4)?;
        <[u8; 4]>::try_from(word).ok().map(u32::from_be_bytes)
    }
}

/// Reject packets shorter than their type's fixed part and announced count.
fn check_min_len(kind: RtcpKind, count: u8, len: usize) -> Result<(), RtcpError> {
    let count = usize::from(count);
    let min = match kind {
        RtcpKind::SenderReport => 4 + SENDER_INFO_LEN + count * REPORT_BLOCK_LEN,
        RtcpKind::ReceiverReport => 4 + count * REPORT_BLOCK_LEN,
        RtcpKind::Goodbye => 4 * count,
        // SSRC and four-character name.
        RtcpKind::ApplicationDefined => 8,
        RtcpKind::ExtendedReport => 4,
        kind if kind.is_feedback() => 8,
        // SDES chunks are variable and walked only by the typed layer.
        _ => 0,
    };
    if len < min {
        Err(RtcpError::TooShortForType { kind, len, min })
    } else {
        Ok(())
    }
}

/// The sender info block of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    /// NTP timestamp of the report, 32.32 fixed point seconds since 1900.
    pub ntp_time: u64,
    /// RTP timestamp corresponding to `ntp_time`.
    pub rtp_time: u32,
    /// Sender's packet count.
    pub packet_count: u32,
    /// Sender's payload octet count.
    pub octet_count: u32,
}

impl SenderInfo {
    /// The middle 32 bits of the NTP timestamp: the LSR value a receiver echoes back.
    #[inline]
    pub fn compact_ntp(&self) -> u32 {
        (self.ntp_time >> 16) as u32
    }
}

/// A reception report block (RFC 3550 §6.4.1), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock<'a> {
    bytes: &'a [u8; REPORT_BLOCK_LEN],
}

impl ReportBlock<'_> {
    #[inline]
    fn word(&self, index: usize) -> u32 {
        let mut word = [0u8; 4];
        if let Some(bytes) = self.bytes.get(index * 4..index * 4 + 4) {
            word.copy_from_slice(bytes);
        }
        u32::from_be_bytes(word)
    }

    /// SSRC of the source this block reports on.
    #[inline]
    pub fn ssrc(&self) -> u32 {
        self.word(0)
    }

    /// Fraction of packets lost since the last report, in 1/256.
    #[inline]
    pub fn fraction_lost(&self) -> u8 {
        (self.word(1) >> 24) as u8
    }

    /// Cumulative number of packets lost (24-bit signed, sign-extended).
    #[inline]
    pub fn cumulative_lost(&self) -> i32 {
        // Shift the 24-bit field to the top and back down to sign-extend it.
        ((self.word(1) << 8) as i32) >> 8
    }

    /// Extended highest sequence number received.
    #[inline]
    pub fn extended_highest_sequence(&self) -> u32 {
        self.word(2)
    }

    /// Interarrival jitter in RTP timestamp units.
    #[inline]
    pub fn jitter(&self) -> u32 {
        self.word(3)
    }

    /// Last SR timestamp (LSR): middle 32 bits of the NTP time of the last SR received.
    #[inline]
    pub fn last_sender_report(&self) -> u32 {
        self.word(4)
    }

    /// Delay since last SR (DLSR), in 1/65536 seconds.
    #[inline]
    pub fn delay_since_last_sender_report(&self) -> u32 {
        self.word(5)
    }
}

/// Iterator over the reception report blocks of an SR or RR.
#[derive(Debug, Clone)]
pub struct ReportBlocks<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ReportBlocks<'a> {
    type Item = ReportBlock<'a>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (bytes, rest) = self.rest.split_first_chunk::<REPORT_BLOCK_LEN>()?;
        self.rest = rest;
        Some(ReportBlock { bytes })
    }
}

/// Iterator over the FCI entries of a Generic NACK.
#[derive(Debug, Clone)]
pub struct NackPairs<'a> {
    rest: &'a [u8],
}

impl Iterator for NackPairs<'_> {
    type Item = NackPair;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let ([p0, p1, b0, b1], rest) = self.rest.split_first_chunk::<4>()?;
        self.rest = rest;
        Some(NackPair {
            packet_id: u16::from_be_bytes([*p0, *p1]),
            lost_packets: u16::from_be_bytes([*b0, *b1]),
        })
    }
}

impl<'a> NackPairs<'a> {
    /// All NACKed sequence numbers, flattened (PID, then each BLP bit set, per pair).
    #[inline]
    pub fn sequence_numbers(self) -> impl Iterator<Item = u16> + 'a {
        self.flat_map(IntoIterator::into_iter)
    }
}
