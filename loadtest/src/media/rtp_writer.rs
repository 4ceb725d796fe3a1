//! [`RtpWriter`]: a [`MediaPacket`] to RTP bytes, with the RFC 8285 one-byte header
//! extensions a browser sends.
//!
//! `relais_rtp` parses packets and rewrites them in place but builds none, so the header
//! and the extension block are laid out here; the extension values are encoded by
//! `relais_rtp::extensions`' own writers, so the two sides cannot disagree on a format.
//! Ids and `mid`/`rid` values are validated once ([`RtpWriter::new`], [`SdesTag::mid`]);
//! writing a packet then only appends to the caller's reused buffer.

use std::time::Duration;

use relais_rtp::extensions::{
    parse_mid, parse_rtp_stream_id, AbsCaptureTime, ExtensionKind, ExtensionMap,
    TransportSequenceNumber,
};
use relais_rtp::rtp::{FIXED_HEADER_LEN, ONE_BYTE_PROFILE, RTP_VERSION};

use super::packet::MediaPacket;
use super::MediaError;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
pub const NTP_UNIX_OFFSET_S: u64 = 2_208_988_800;

/// A wall-clock time since the Unix epoch as a 64-bit NTP timestamp (Q32.32 seconds since
/// 1900), the format of abs-capture-time.
pub fn ntp_from_unix(since_unix_epoch: Duration) -> u64 {
    let seconds = since_unix_epoch.as_secs().wrapping_add(NTP_UNIX_OFFSET_S);
    let fraction = (u64::from(since_unix_epoch.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

/// The negotiated one-byte header-extension ids (1..=14) of one session; `None` for an
/// extension not negotiated, which is then never written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtensionIds {
    /// RFC 6464 audio level.
    pub audio_level: Option<u8>,
    /// Transport-wide CC sequence number.
    pub transport_cc: Option<u8>,
    /// abs-capture-time (8-byte form).
    pub abs_capture_time: Option<u8>,
    /// BUNDLE `mid`.
    pub mid: Option<u8>,
    /// Simulcast `rid` (rtp-stream-id).
    pub rid: Option<u8>,
    /// `rrid` (repaired-rtp-stream-id) of RTX packets.
    pub repaired_rid: Option<u8>,
}

impl ExtensionIds {
    /// The ids a negotiated [`ExtensionMap`] gives these extensions.
    pub fn from_map(map: &ExtensionMap) -> Self {
        Self {
            audio_level: map.id(ExtensionKind::AudioLevel),
            transport_cc: map.id(ExtensionKind::TransportCc),
            abs_capture_time: map.id(ExtensionKind::AbsCaptureTime),
            mid: map.id(ExtensionKind::Mid),
            rid: map.id(ExtensionKind::RtpStreamId),
            repaired_rid: map.id(ExtensionKind::RepairedRtpStreamId),
        }
    }

    fn all(&self) -> [Option<u8>; 6] {
        [
            self.audio_level,
            self.transport_cc,
            self.abs_capture_time,
            self.mid,
            self.rid,
            self.repaired_rid,
        ]
    }

    /// Checks that every id fits the one-byte form and none is used twice.
    pub fn validate(&self) -> Result<(), MediaError> {
        let mut seen = 0u16;
        for id in self.all().into_iter().flatten() {
            if !(1..=14).contains(&id) {
                return Err(MediaError::InvalidExtensionId(id));
            }
            if seen & (1 << id) != 0 {
                return Err(MediaError::DuplicateExtensionId(id));
            }
            seen |= 1 << id;
        }
        Ok(())
    }
}

/// A validated `mid` or `rid` value, stored inline (at most 16 bytes, the one-byte form's
/// limit), so per-packet extensions are `Copy` and need no allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SdesTag {
    bytes: [u8; 16],
    len: u8,
}

impl core::fmt::Debug for SdesTag {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("SdesTag").field(&self.as_str()).finish()
    }
}

impl SdesTag {
    /// A `mid` (RFC 8843 token), checked with `relais_rtp`'s parser.
    pub fn mid(value: &str) -> Result<Self, MediaError> {
        Self::new(value, |v| parse_mid(v).map(drop))
    }

    /// A `rid` or `rrid` (RFC 8851 rid-id), checked with `relais_rtp`'s parser.
    pub fn rid(value: &str) -> Result<Self, MediaError> {
        Self::new(value, |v| parse_rtp_stream_id(v).map(drop))
    }

    fn new(
        value: &str,
        check: impl Fn(&[u8]) -> Result<(), relais_rtp::extensions::ExtensionError>,
    ) -> Result<Self, MediaError> {
        let refuse = |source| MediaError::InvalidSdesTag {
            tag: value.to_owned(),
            source,
        };
        check(value.as_bytes()).map_err(refuse)?;
        let mut bytes = [0u8; 16];
        bytes
            .get_mut(..value.len())
            .ok_or_else(|| {
                refuse(relais_rtp::extensions::ExtensionError::WrongLength {
                    kind: ExtensionKind::Mid,
                    len: value.len(),
                })
            })?
            .copy_from_slice(value.as_bytes());
        Ok(Self {
            bytes,
            // At most 16, checked by the slice above.
            len: value.len() as u8,
        })
    }

    /// The value's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The value.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

/// The header-extension values decided when a packet is sent, not when it is produced.
/// Each is written only if present here and negotiated in the writer's [`ExtensionIds`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendExtensions {
    /// The transport-wide CC sequence number the participant assigned.
    pub transport_cc_seq: Option<u16>,
    /// abs-capture-time: the send time as a 64-bit NTP timestamp (see [`ntp_from_unix`]),
    /// which the node forwards verbatim so receivers can measure latency.
    pub abs_capture_ntp: Option<u64>,
    /// The stream's `mid` (browsers send it until the first RTCP receiver report).
    pub mid: Option<SdesTag>,
    /// The simulcast layer's `rid`.
    pub rid: Option<SdesTag>,
    /// For RTX: the `rid` of the stream repaired.
    pub repaired_rid: Option<SdesTag>,
}

/// Serialises [`MediaPacket`]s for one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpWriter {
    ids: ExtensionIds,
}

impl RtpWriter {
    /// A writer using `ids`, checked with [`ExtensionIds::validate`].
    pub fn new(ids: ExtensionIds) -> Result<Self, MediaError> {
        ids.validate()?;
        Ok(Self { ids })
    }

    /// The ids in use.
    pub fn ids(&self) -> &ExtensionIds {
        &self.ids
    }

    /// Replaces `out`'s contents with the RTP packet: fixed header, the one-byte extension
    /// block (only if some element is written) and the payload. Reusing `out` across calls
    /// makes this allocation-free once the buffer has grown to a packet's size.
    pub fn write(
        &self,
        packet: &MediaPacket,
        extensions: &SendExtensions,
        out: &mut Vec<u8>,
    ) -> Result<(), MediaError> {
        out.clear();
        out.reserve(FIXED_HEADER_LEN + 4 + 40 + packet.payload.len());
        // V=2, P=0, X patched below, CC=0.
        out.push(RTP_VERSION << 6);
        out.push((u8::from(packet.marker) << 7) | (packet.payload_type & 0x7F));
        out.extend_from_slice(&packet.sequence_number.to_be_bytes());
        out.extend_from_slice(&packet.timestamp.to_be_bytes());
        out.extend_from_slice(&packet.ssrc.to_be_bytes());

        let block_start = out.len();
        out.extend_from_slice(&ONE_BYTE_PROFILE.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        let data_start = out.len();
        if let (Some(id), Some(level)) = (self.ids.audio_level, packet.audio_level) {
            level.write(element(out, id, 1))?;
        }
        if let (Some(id), Some(seq)) = (self.ids.transport_cc, extensions.transport_cc_seq) {
            TransportSequenceNumber(seq).write(element(out, id, 2))?;
        }
        if let (Some(id), Some(ntp)) = (self.ids.abs_capture_time, extensions.abs_capture_ntp) {
            let value = AbsCaptureTime {
                capture_ntp: ntp,
                clock_offset: None,
            };
            value.write(element(out, id, value.encoded_len()))?;
        }
        for (id, tag) in [
            (self.ids.mid, extensions.mid),
            (self.ids.rid, extensions.rid),
            (self.ids.repaired_rid, extensions.repaired_rid),
        ] {
            if let (Some(id), Some(tag)) = (id, tag) {
                element(out, id, tag.as_bytes().len()).copy_from_slice(tag.as_bytes());
            }
        }
        if out.len() == data_start {
            // Nothing to carry: no extension block at all.
            out.truncate(block_start);
        } else {
            // Zero bytes are padding between and after elements (RFC 8285 §4.1.1).
            let padded = (out.len() - data_start).div_ceil(4) * 4;
            out.resize(data_start + padded, 0);
            let words = u16::try_from(padded / 4).unwrap_or(u16::MAX).to_be_bytes();
            if let Some(length) = out.get_mut(block_start + 2..data_start) {
                length.copy_from_slice(&words);
            }
            if let Some(first) = out.first_mut() {
                *first |= 0x10;
            }
        }
        packet.payload.write_to(out);
        Ok(())
    }
}

/// Appends a one-byte-form element header for a value of `len` bytes (1..=16) and returns
/// the zeroed value bytes to fill.
fn element(out: &mut Vec<u8>, id: u8, len: usize) -> &mut [u8] {
    let len = len.clamp(1, 16);
    // `len - 1` fits the nibble after the clamp; ids were validated to 1..=14.
    out.push((id << 4) | (len - 1) as u8);
    let at = out.len();
    out.resize(at + len, 0);
    out.get_mut(at..).unwrap_or(&mut [])
}
