//! RTCP: compound packets (RFC 3550 §6), feedback (RFC 4585, RFC 5104), REMB and
//! transport-wide congestion control feedback.
//!
//! This module owns two layers:
//! - [`RtcpCompound`] / [`RtcpPacketView`]: a non-allocating walk over a (decrypted) compound
//!   packet with the header fields and the few values the SFU routes on — sender SSRC, media
//!   SSRC of feedback, feedback type, an SR's NTP/RTP timestamps, NACKed sequence numbers.
//!   Every packet's header, length and padding are validated here, and so is the minimum size
//!   of each known type, so the getters are plain reads.
//! - [`RtcpPacket`]: typed parsing and building through the webrtc-rs `rtcp` crate. It
//!   allocates (the crate's packets own `Vec`s and `Bytes`); that is the accepted exception of
//!   DESIGN.md principle 2, as RTCP rates are two orders of magnitude below RTP. The crate
//!   only ever sees a packet that passed this module's validation plus per-type guards
//!   against inputs that make the crate panic or allocate far beyond the packet size (listed
//!   on [`RtcpPacket::parse`]).
//!
//! [`feedback`] builds the feedback relais sends itself: NACK, PLI, FIR, REMB and TWCC.
//!
//! SRTCP is not handled here: views and typed packets are over plaintext RTCP.

pub mod feedback;
mod typed;
mod view;

pub use typed::{marshal_compound, parse_typed, RtcpPacket};
pub use view::{NackPairs, ReportBlock, ReportBlocks, RtcpCompound, RtcpPacketView, SenderInfo};

/// The `rtcp` crate's packet types used by [`RtcpPacket`], re-exported so callers need not
/// depend on the crate directly.
pub mod packets {
    pub use ::rtcp::goodbye::Goodbye;
    pub use ::rtcp::payload_feedbacks::full_intra_request::{FirEntry, FullIntraRequest};
    pub use ::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
    pub use ::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
    pub use ::rtcp::receiver_report::ReceiverReport;
    pub use ::rtcp::reception_report::ReceptionReport;
    pub use ::rtcp::sender_report::SenderReport;
    pub use ::rtcp::source_description::{
        SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
    };
    pub use ::rtcp::transport_feedbacks::transport_layer_cc::{
        PacketStatusChunk, RecvDelta, RunLengthChunk, StatusChunkTypeTcc, StatusVectorChunk,
        SymbolSizeTypeTcc, SymbolTypeTcc, TransportLayerCc, TYPE_TCC_DELTA_SCALE_FACTOR,
    };
    pub use ::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
}

/// RTCP packet type numbers (IANA "RTP Control Protocol (RTCP) Control Packet Types").
pub mod packet_type {
    /// Sender report (RFC 3550 §6.4.1).
    pub const SENDER_REPORT: u8 = 200;
    /// Receiver report (RFC 3550 §6.4.2).
    pub const RECEIVER_REPORT: u8 = 201;
    /// Source description (RFC 3550 §6.5).
    pub const SOURCE_DESCRIPTION: u8 = 202;
    /// Goodbye (RFC 3550 §6.6).
    pub const GOODBYE: u8 = 203;
    /// Application-defined (RFC 3550 §6.7).
    pub const APPLICATION_DEFINED: u8 = 204;
    /// Transport-layer feedback, RTPFB (RFC 4585 §6.2).
    pub const TRANSPORT_FEEDBACK: u8 = 205;
    /// Payload-specific feedback, PSFB (RFC 4585 §6.3).
    pub const PAYLOAD_FEEDBACK: u8 = 206;
    /// Extended report (RFC 3611).
    pub const EXTENDED_REPORT: u8 = 207;
}

/// Feedback message types (FMT, the header's count field) of RTPFB and PSFB packets.
pub mod fmt {
    /// RTPFB: Generic NACK (RFC 4585 §6.2.1).
    pub const NACK: u8 = 1;
    /// RTPFB: Rapid Resynchronisation Request (RFC 6051).
    pub const RAPID_RESYNC: u8 = 5;
    /// RTPFB: transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc).
    pub const TRANSPORT_CC: u8 = 15;
    /// PSFB: Picture Loss Indication (RFC 4585 §6.3.1).
    pub const PLI: u8 = 1;
    /// PSFB: Slice Loss Indication (RFC 4585 §6.3.2).
    pub const SLI: u8 = 2;
    /// PSFB: Full Intra Request (RFC 5104 §4.3.1).
    pub const FIR: u8 = 4;
    /// PSFB: application layer feedback; REMB when it carries the "REMB" identifier.
    pub const APPLICATION_LAYER: u8 = 15;
}

/// What an RTCP packet is, from its packet type and, for feedback, its FMT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RtcpKind {
    /// SR.
    SenderReport,
    /// RR.
    ReceiverReport,
    /// SDES.
    SourceDescription,
    /// BYE.
    Goodbye,
    /// APP.
    ApplicationDefined,
    /// RTPFB Generic NACK.
    Nack,
    /// RTPFB Rapid Resynchronisation Request.
    RapidResync,
    /// RTPFB transport-wide congestion control feedback (TWCC).
    TransportCc,
    /// Another RTPFB message, with its FMT.
    OtherTransportFeedback(u8),
    /// PSFB Picture Loss Indication.
    Pli,
    /// PSFB Slice Loss Indication.
    Sli,
    /// PSFB Full Intra Request.
    Fir,
    /// PSFB application layer feedback carrying REMB.
    Remb,
    /// Another PSFB message (including non-REMB application layer feedback), with its FMT.
    OtherPayloadFeedback(u8),
    /// XR.
    ExtendedReport,
    /// A packet type this module does not know, with its number.
    Unknown(u8),
}

impl RtcpKind {
    /// Classify a packet from its type, FMT/count field and payload (the bytes after the
    /// 4-byte header). The payload is only looked at to tell REMB from other application
    /// layer feedback.
    pub fn classify(packet_type: u8, fmt_or_count: u8, payload: &[u8]) -> Self {
        use crate::rtcp::packet_type as pt;
        match packet_type {
            pt::SENDER_REPORT => RtcpKind::SenderReport,
            pt::RECEIVER_REPORT => RtcpKind::ReceiverReport,
            pt::SOURCE_DESCRIPTION => RtcpKind::SourceDescription,
            pt::GOODBYE => RtcpKind::Goodbye,
            pt::APPLICATION_DEFINED => RtcpKind::ApplicationDefined,
            pt::EXTENDED_REPORT => RtcpKind::ExtendedReport,
            pt::TRANSPORT_FEEDBACK => match fmt_or_count {
                fmt::NACK => RtcpKind::Nack,
                fmt::RAPID_RESYNC => RtcpKind::RapidResync,
                fmt::TRANSPORT_CC => RtcpKind::TransportCc,
                other => RtcpKind::OtherTransportFeedback(other),
            },
            pt::PAYLOAD_FEEDBACK => match fmt_or_count {
                fmt::PLI => RtcpKind::Pli,
                fmt::SLI => RtcpKind::Sli,
                fmt::FIR => RtcpKind::Fir,
                fmt::APPLICATION_LAYER if payload.get(8..12) == Some(b"REMB") => RtcpKind::Remb,
                other => RtcpKind::OtherPayloadFeedback(other),
            },
            other => RtcpKind::Unknown(other),
        }
    }

    /// Whether this is RTPFB or PSFB feedback (which has sender and media SSRC fields).
    #[inline]
    pub fn is_feedback(self) -> bool {
        matches!(
            self,
            RtcpKind::Nack
                | RtcpKind::RapidResync
                | RtcpKind::TransportCc
                | RtcpKind::OtherTransportFeedback(_)
                | RtcpKind::Pli
                | RtcpKind::Sli
                | RtcpKind::Fir
                | RtcpKind::Remb
                | RtcpKind::OtherPayloadFeedback(_)
        )
    }
}

/// Why RTCP could not be parsed or built.
///
/// Variants carry sizes, counts and kinds, never packet contents.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum RtcpError {
    /// Fewer bytes than a header, or than the header's length field declares.
    #[error("RTCP packet truncated: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the header says the packet has (4 if the header itself is cut off).
        needed: usize,
        /// Bytes left in the compound.
        available: usize,
    },
    /// Bytes follow a packet that was expected to stand alone.
    #[error("{extra} bytes follow the RTCP packet")]
    TrailingBytes {
        /// Bytes after the packet.
        extra: usize,
    },
    /// The version field is not 2.
    #[error("RTCP version {version} is not 2")]
    BadVersion {
        /// The version field.
        version: u8,
    },
    /// The padding bit is set but the last byte is 0 or counts past the header.
    #[error("RTCP padding count {padding} is invalid for a {len}-byte packet")]
    BadPadding {
        /// The last byte of the packet.
        padding: u8,
        /// The packet length.
        len: usize,
    },
    /// The packet is shorter than its type requires (e.g. an SR whose report count does not
    /// fit, or feedback without both SSRCs).
    #[error("RTCP {kind:?} payload of {len} bytes is shorter than the {min} its type needs")]
    TooShortForType {
        /// What the packet claims to be.
        kind: RtcpKind,
        /// Payload bytes after the header, without padding.
        len: usize,
        /// Payload bytes its type and count need.
        min: usize,
    },
    /// FIR FCI entries are 8 bytes each; the payload does not divide into them.
    #[error("FIR payload of {len} bytes does not divide into 8-byte entries")]
    FirMisaligned {
        /// Payload bytes after the header, without padding.
        len: usize,
    },
    /// REMB's SSRC count does not match the payload.
    #[error("REMB announces {declared} SSRCs, payload of {len} bytes disagrees")]
    RembSsrcCountMismatch {
        /// The Num SSRC field.
        declared: u8,
        /// Payload bytes after the header, without padding.
        len: usize,
    },
    /// TWCC packet status count too large to process without overflowing the parser.
    #[error("TWCC packet status count {count} is too large")]
    TwccStatusCountTooLarge {
        /// The packet status count field.
        count: u16,
    },
    /// TWCC status chunks or receive deltas run past the end of the packet.
    #[error("TWCC chunks and deltas need {needed} bytes, packet has {available}")]
    TwccTruncated {
        /// Bytes the chunks and deltas need.
        needed: usize,
        /// Bytes the packet has.
        available: usize,
    },
    /// A packet larger than typed parsing or building supports (the length field's range).
    #[error("RTCP packet of {len} bytes is too large")]
    PacketTooLarge {
        /// The packet length.
        len: usize,
    },
    /// The `rtcp` crate rejected a packet that passed this module's validation.
    #[error("RTCP {kind:?} did not decode")]
    Decode {
        /// What the packet claims to be.
        kind: RtcpKind,
        /// The crate's error.
        #[source]
        source: ::rtcp::Error,
    },
    /// The `rtcp` crate could not encode a packet (e.g. a field out of range).
    #[error("RTCP {kind:?} did not encode")]
    Encode {
        /// The packet being encoded.
        kind: RtcpKind,
        /// The crate's error.
        #[source]
        source: ::rtcp::Error,
    },
    /// The output buffer cannot hold the packet(s).
    #[error("RTCP output buffer too small: need {needed} bytes, have {available}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A feedback packet would carry more items than its format allows.
    #[error("RTCP {kind:?} cannot carry {count} items (at most {max})")]
    TooManyItems {
        /// The packet being built.
        kind: RtcpKind,
        /// Items asked for.
        count: usize,
        /// Most the format carries.
        max: usize,
    },
    /// A feedback packet would carry no items (e.g. a NACK without sequence numbers).
    #[error("RTCP {kind:?} needs at least one item")]
    NoItems {
        /// The packet being built.
        kind: RtcpKind,
    },
}
