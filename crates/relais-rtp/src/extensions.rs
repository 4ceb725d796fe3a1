//! The RTP header extensions an SFU reads and rewrites, by meaning rather than by id.
//!
//! Header-extension ids are negotiated per session in SDP (`a=extmap:<id> <uri>`), so the
//! same meaning has a different id on every participant's session. This module owns:
//! - the URIs relais understands, as [`ExtensionKind`] and `*_URI` constants;
//! - [`ExtensionMap`], one session's id ↔ kind table, a fixed array with no allocation on
//!   lookup, which also translates a sender's ids into a receiver's;
//! - typed parse/write helpers over an element's value bytes (as returned by
//!   [`RtpPacket::extension`]) for the extensions relais interprets: audio level,
//!   transport-wide CC sequence number, abs-send-time, abs-capture-time and the SDES
//!   `mid` / `rid` / `rrid` tokens. The others are forwarded verbatim.
//!
//! Lengths are checked strictly, as libwebrtc does, so a malformed value is an error here
//! rather than a misread.

use thiserror::Error;

use crate::rtp::RtpPacket;

/// RFC 6464 client-to-mixer audio level.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// Transport-wide congestion control sequence number (draft-holmer-rmcat-transport-wide-cc).
pub const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
/// Absolute send time, 6.18 fixed-point seconds (used by REMB / receive-side estimation).
pub const ABS_SEND_TIME_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
/// Absolute capture time: NTP capture timestamp and optional capture clock offset.
pub const ABS_CAPTURE_TIME_URI: &str =
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time";
/// RFC 8843 media identification (BUNDLE `mid`).
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// RFC 8852 RTP stream id (simulcast `rid`).
pub const RTP_STREAM_ID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
/// RFC 8852 repaired RTP stream id (the `rid` an RTX stream repairs).
pub const REPAIRED_RTP_STREAM_ID_URI: &str =
    "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";
/// RFC 5450 transmission time offset.
pub const TRANSMISSION_OFFSET_URI: &str = "urn:ietf:params:rtp-hdrext:toffset";
/// 3GPP coordination of video orientation (CVO).
pub const VIDEO_ORIENTATION_URI: &str = "urn:3gpp:video-orientation";
/// libwebrtc playout delay limits.
pub const PLAYOUT_DELAY_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";
/// AV1 RTP specification dependency descriptor (also used with VP8/VP9 SVC by libwebrtc).
pub const DEPENDENCY_DESCRIPTOR_URI: &str =
    "https://aomedia.org/2019/08/01/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";
/// libwebrtc video layers allocation.
pub const VIDEO_LAYERS_ALLOCATION_URI: &str =
    "http://www.webrtc.org/experiments/rtp-hdrext/video-layers-allocation00";

/// Why an extension value could not be read or written, or a mapping was refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionError {
    /// The value has a length the extension does not allow.
    #[error("{kind:?} extension value of {len} bytes has the wrong length")]
    WrongLength {
        /// The extension.
        kind: ExtensionKind,
        /// Length of the value found (or of the buffer offered for writing).
        len: usize,
    },
    /// An SDES token (`mid`, `rid`, `rrid`) contains a byte its grammar forbids.
    #[error("{kind:?} token has invalid byte {byte:#04x} at position {position}")]
    InvalidTokenByte {
        /// The extension.
        kind: ExtensionKind,
        /// The offending byte.
        byte: u8,
        /// Its position in the value.
        position: usize,
    },
    /// An audio level above 127 -dBov.
    #[error("audio level {0} out of range 0..=127")]
    LevelOutOfRange(u8),
    /// Id 0 is padding and cannot be negotiated.
    #[error("header extension id {0} cannot be mapped")]
    InvalidId(u8),
}

/// The header extensions relais knows by URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ExtensionKind {
    /// [`AUDIO_LEVEL_URI`], read with [`AudioLevel`].
    AudioLevel,
    /// [`TRANSPORT_CC_URI`], read and rewritten with [`TransportSequenceNumber`].
    TransportCc,
    /// [`ABS_SEND_TIME_URI`], read and written with [`AbsSendTime`].
    AbsSendTime,
    /// [`ABS_CAPTURE_TIME_URI`], read with [`AbsCaptureTime`]; forwarded verbatim.
    AbsCaptureTime,
    /// [`MID_URI`], read with [`parse_mid`].
    Mid,
    /// [`RTP_STREAM_ID_URI`], read with [`parse_rtp_stream_id`].
    RtpStreamId,
    /// [`REPAIRED_RTP_STREAM_ID_URI`], read with [`parse_rtp_stream_id`].
    RepairedRtpStreamId,
    /// [`TRANSMISSION_OFFSET_URI`]; forwarded verbatim.
    TransmissionOffset,
    /// [`VIDEO_ORIENTATION_URI`]; forwarded verbatim.
    VideoOrientation,
    /// [`PLAYOUT_DELAY_URI`]; forwarded verbatim.
    PlayoutDelay,
    /// [`DEPENDENCY_DESCRIPTOR_URI`]; parsed elsewhere.
    DependencyDescriptor,
    /// [`VIDEO_LAYERS_ALLOCATION_URI`]; forwarded verbatim.
    VideoLayersAllocation,
}

impl ExtensionKind {
    /// Number of kinds.
    pub const COUNT: usize = 12;

    /// Every kind, in declaration order (`ALL[k.index()] == k`).
    pub const ALL: [Self; Self::COUNT] = [
        Self::AudioLevel,
        Self::TransportCc,
        Self::AbsSendTime,
        Self::AbsCaptureTime,
        Self::Mid,
        Self::RtpStreamId,
        Self::RepairedRtpStreamId,
        Self::TransmissionOffset,
        Self::VideoOrientation,
        Self::PlayoutDelay,
        Self::DependencyDescriptor,
        Self::VideoLayersAllocation,
    ];

    /// Dense index `0..COUNT`, for tables indexed by kind.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The URI that names this extension in SDP.
    pub const fn uri(self) -> &'static str {
        match self {
            Self::AudioLevel => AUDIO_LEVEL_URI,
            Self::TransportCc => TRANSPORT_CC_URI,
            Self::AbsSendTime => ABS_SEND_TIME_URI,
            Self::AbsCaptureTime => ABS_CAPTURE_TIME_URI,
            Self::Mid => MID_URI,
            Self::RtpStreamId => RTP_STREAM_ID_URI,
            Self::RepairedRtpStreamId => REPAIRED_RTP_STREAM_ID_URI,
            Self::TransmissionOffset => TRANSMISSION_OFFSET_URI,
            Self::VideoOrientation => VIDEO_ORIENTATION_URI,
            Self::PlayoutDelay => PLAYOUT_DELAY_URI,
            Self::DependencyDescriptor => DEPENDENCY_DESCRIPTOR_URI,
            Self::VideoLayersAllocation => VIDEO_LAYERS_ALLOCATION_URI,
        }
    }

    /// The kind an SDP `extmap` URI names; `None` for URIs relais does not know. URIs are
    /// compared exactly (RFC 8285 §5: they are case-sensitive).
    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.uri() == uri)
    }
}

/// One session's negotiated header-extension ids: id → kind and kind → id, both O(1) array
/// lookups. 256 + [`ExtensionKind::COUNT`] bytes, no allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct ExtensionMap {
    kinds: [Option<ExtensionKind>; 256],
    /// Id per kind; 0 (the padding id, never negotiated) means "not negotiated".
    ids: [u8; ExtensionKind::COUNT],
}

impl Default for ExtensionMap {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for ExtensionMap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl ExtensionMap {
    /// An empty map: nothing negotiated.
    pub const fn new() -> Self {
        Self {
            kinds: [None; 256],
            ids: [0; ExtensionKind::COUNT],
        }
    }

    /// Maps `id` to `kind`, replacing whatever `id` meant and whatever id `kind` had (a
    /// session negotiates each URI at most once).
    pub fn insert(&mut self, id: u8, kind: ExtensionKind) -> Result<(), ExtensionError> {
        if id == 0 {
            return Err(ExtensionError::InvalidId(id));
        }
        self.remove_id(id);
        if let Some(old) = self.id(kind) {
            self.remove_id(old);
        }
        if let Some(slot) = self.kinds.get_mut(usize::from(id)) {
            *slot = Some(kind);
        }
        if let Some(slot) = self.ids.get_mut(kind.index()) {
            *slot = id;
        }
        Ok(())
    }

    /// Maps `id` to the kind `uri` names. Returns the kind, or `None` (and maps nothing)
    /// for an unknown URI, which relais then neither reads nor forwards.
    pub fn insert_uri(
        &mut self,
        id: u8,
        uri: &str,
    ) -> Result<Option<ExtensionKind>, ExtensionError> {
        match ExtensionKind::from_uri(uri) {
            Some(kind) => self.insert(id, kind).map(|()| Some(kind)),
            None => Ok(None),
        }
    }

    /// Forgets `id`; returns what it meant.
    pub fn remove_id(&mut self, id: u8) -> Option<ExtensionKind> {
        let kind = self.kinds.get_mut(usize::from(id))?.take()?;
        if let Some(slot) = self.ids.get_mut(kind.index()) {
            *slot = 0;
        }
        Some(kind)
    }

    /// What `id` means in this session.
    #[inline]
    pub fn kind(&self, id: u8) -> Option<ExtensionKind> {
        self.kinds.get(usize::from(id)).copied().flatten()
    }

    /// The id `kind` was negotiated with in this session.
    #[inline]
    pub fn id(&self, kind: ExtensionKind) -> Option<u8> {
        self.ids.get(kind.index()).copied().filter(|&id| id != 0)
    }

    /// The id that means, in `receiver`'s session, what `id` means in this one: the
    /// argument to [`RtpPacket::remap_extension_ids`] when forwarding from this session to
    /// `receiver` (`None` drops the element).
    #[inline]
    pub fn translate(&self, receiver: &ExtensionMap, id: u8) -> Option<u8> {
        receiver.id(self.kind(id)?)
    }

    /// Whether some id needs the RFC 8285 two-byte form (id above 14).
    pub fn needs_two_byte_form(&self) -> bool {
        self.ids.iter().any(|&id| id > 14)
    }

    /// The negotiated `(id, kind)` pairs by increasing id.
    pub fn iter(&self) -> impl Iterator<Item = (u8, ExtensionKind)> + '_ {
        (0..=u8::MAX).filter_map(|id| Some((id, self.kind(id)?)))
    }

    /// The value of extension `kind` in `packet`, if negotiated and present.
    #[inline]
    pub fn get<'a, B: AsRef<[u8]>>(
        &self,
        packet: &'a RtpPacket<B>,
        kind: ExtensionKind,
    ) -> Option<&'a [u8]> {
        packet.extension(self.id(kind)?)
    }

    /// Every known extension value of `packet` in one walk over its extension block, for
    /// code that reads several (the per-packet ingress path). Unknown ids are skipped; for
    /// a kind present twice the first element wins, as with [`RtpPacket::extension`].
    pub fn values<'a, B: AsRef<[u8]>>(&self, packet: &'a RtpPacket<B>) -> ExtensionValues<'a> {
        let mut values = ExtensionValues::default();
        for (id, value) in packet.extensions() {
            if let Some(slot) = self
                .kind(id)
                .and_then(|kind| values.values.get_mut(kind.index()))
            {
                slot.get_or_insert(value);
            }
        }
        values
    }
}

/// The known header-extension values of one packet, by kind (see [`ExtensionMap::values`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtensionValues<'a> {
    values: [Option<&'a [u8]>; ExtensionKind::COUNT],
}

impl<'a> ExtensionValues<'a> {
    /// The value of `kind`, if the packet carried it.
    #[inline]
    pub fn get(&self, kind: ExtensionKind) -> Option<&'a [u8]> {
        self.values.get(kind.index()).copied().flatten()
    }
}

/// Checks that `value` is exactly `N` bytes long.
#[inline]
fn exact<const N: usize>(kind: ExtensionKind, value: &[u8]) -> Result<&[u8; N], ExtensionError> {
    value.try_into().map_err(|_| ExtensionError::WrongLength {
        kind,
        len: value.len(),
    })
}

/// Mutable [`exact`].
#[inline]
fn exact_mut<const N: usize>(
    kind: ExtensionKind,
    value: &mut [u8],
) -> Result<&mut [u8; N], ExtensionError> {
    let len = value.len();
    value
        .try_into()
        .map_err(|_| ExtensionError::WrongLength { kind, len })
}

/// RFC 6464 audio level: one byte, `V` flag and the level in -dBov.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AudioLevel {
    /// The sender's voice activity detection thinks this packet holds speech.
    pub voice_activity: bool,
    /// Level in -dBov, 0 (loudest) ..= 127 (silence or muted).
    pub level: u8,
}

impl AudioLevel {
    /// Reads the one-byte value.
    #[inline]
    pub fn parse(value: &[u8]) -> Result<Self, ExtensionError> {
        let [byte] = *exact::<1>(ExtensionKind::AudioLevel, value)?;
        Ok(Self {
            voice_activity: byte & 0x80 != 0,
            level: byte & 0x7F,
        })
    }

    /// Writes into a one-byte value.
    #[inline]
    pub fn write(&self, value: &mut [u8]) -> Result<(), ExtensionError> {
        if self.level > 127 {
            return Err(ExtensionError::LevelOutOfRange(self.level));
        }
        let [byte] = exact_mut::<1>(ExtensionKind::AudioLevel, value)?;
        *byte = (u8::from(self.voice_activity) << 7) | self.level;
        Ok(())
    }
}

/// Transport-wide CC sequence number: 2 bytes, big-endian. The SFU reads the sender's to
/// build feedback and writes its own per receiver, in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransportSequenceNumber(pub u16);

impl TransportSequenceNumber {
    /// Reads the two-byte value.
    #[inline]
    pub fn parse(value: &[u8]) -> Result<Self, ExtensionError> {
        exact::<2>(ExtensionKind::TransportCc, value).map(|b| Self(u16::from_be_bytes(*b)))
    }

    /// Writes into a two-byte value.
    #[inline]
    pub fn write(&self, value: &mut [u8]) -> Result<(), ExtensionError> {
        *exact_mut::<2>(ExtensionKind::TransportCc, value)? = self.0.to_be_bytes();
        Ok(())
    }
}

/// abs-send-time: 24 bits, seconds in unsigned 6.18 fixed point (wraps every 64 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AbsSendTime(pub u32);

impl AbsSendTime {
    /// The value's width.
    const MASK: u32 = 0x00FF_FFFF;

    /// From a 64-bit NTP timestamp (32.32): the middle 24 bits, 6 of seconds and 18 of
    /// fraction.
    #[inline]
    pub const fn from_ntp(ntp: u64) -> Self {
        Self(((ntp >> 14) as u32) & Self::MASK)
    }

    /// From microseconds on any clock (only the time modulo 64 s matters).
    #[inline]
    pub const fn from_micros(micros: u64) -> Self {
        // Reduce first: shifting a wall-clock microsecond count left by 18 would lose bits.
        let within_wrap = micros % 64_000_000;
        Self((((within_wrap << 18) / 1_000_000) as u32) & Self::MASK)
    }

    /// The time modulo 64 s in microseconds.
    #[inline]
    pub const fn as_micros(self) -> u32 {
        (((self.0 & Self::MASK) as u64 * 1_000_000) >> 18) as u32
    }

    /// Reads the three-byte value.
    #[inline]
    pub fn parse(value: &[u8]) -> Result<Self, ExtensionError> {
        let [a, b, c] = *exact::<3>(ExtensionKind::AbsSendTime, value)?;
        Ok(Self(u32::from_be_bytes([0, a, b, c])))
    }

    /// Writes the low 24 bits into a three-byte value.
    #[inline]
    pub fn write(&self, value: &mut [u8]) -> Result<(), ExtensionError> {
        let [_, a, b, c] = self.0.to_be_bytes();
        *exact_mut::<3>(ExtensionKind::AbsSendTime, value)? = [a, b, c];
        Ok(())
    }
}

/// abs-capture-time: when the media was captured, on the capturer's NTP clock, and
/// optionally that clock's estimated offset to the sender's. relais forwards it verbatim;
/// this is for inspection and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AbsCaptureTime {
    /// Capture time, NTP 32.32 fixed point.
    pub capture_ntp: u64,
    /// Estimated capture clock offset, signed 32.32 fixed point seconds (16-byte form).
    pub clock_offset: Option<i64>,
}

impl AbsCaptureTime {
    /// Reads the 8-byte or 16-byte value.
    pub fn parse(value: &[u8]) -> Result<Self, ExtensionError> {
        let wrong_length = ExtensionError::WrongLength {
            kind: ExtensionKind::AbsCaptureTime,
            len: value.len(),
        };
        let (ntp, offset) = match value.split_first_chunk::<8>() {
            Some((ntp, [])) => (ntp, None),
            Some((ntp, rest)) => (
                ntp,
                Some(<[u8; 8]>::try_from(rest).map_err(|_| wrong_length)?),
            ),
            None => return Err(wrong_length),
        };
        Ok(Self {
            capture_ntp: u64::from_be_bytes(*ntp),
            clock_offset: offset.map(i64::from_be_bytes),
        })
    }

    /// Length of the encoded value: 8, or 16 with a clock offset.
    #[inline]
    pub const fn encoded_len(&self) -> usize {
        if self.clock_offset.is_some() {
            16
        } else {
            8
        }
    }

    /// Writes into a value of [`encoded_len`](Self::encoded_len) bytes.
    pub fn write(&self, value: &mut [u8]) -> Result<(), ExtensionError> {
        let wrong_length = ExtensionError::WrongLength {
            kind: ExtensionKind::AbsCaptureTime,
            len: value.len(),
        };
        if value.len() != self.encoded_len() {
            return Err(wrong_length);
        }
        let (ntp, rest) = value.split_first_chunk_mut::<8>().ok_or(wrong_length)?;
        *ntp = self.capture_ntp.to_be_bytes();
        if let Some(offset) = self.clock_offset {
            rest.copy_from_slice(&offset.to_be_bytes());
        }
        Ok(())
    }
}

/// An SDES text value up to its first NUL: libwebrtc reads string extensions that way, so a
/// sender padding with zeros is tolerated rather than rejected.
#[inline]
fn sdes_text(value: &[u8]) -> &[u8] {
    match value.iter().position(|&b| b == 0) {
        Some(end) => value.get(..end).unwrap_or(value),
        None => value,
    }
}

/// Validates a non-empty token against `allowed` and returns it as text.
fn token(
    kind: ExtensionKind,
    value: &[u8],
    allowed: fn(u8) -> bool,
) -> Result<&str, ExtensionError> {
    let text = sdes_text(value);
    if text.is_empty() {
        return Err(ExtensionError::WrongLength { kind, len: 0 });
    }
    if let Some((position, &byte)) = text.iter().enumerate().find(|(_, &b)| !allowed(b)) {
        return Err(ExtensionError::InvalidTokenByte {
            kind,
            byte,
            position,
        });
    }
    // Every allowed byte is ASCII, so this cannot fail; map rather than unwrap anyway.
    core::str::from_utf8(text).map_err(|_| ExtensionError::InvalidTokenByte {
        kind,
        byte: 0,
        position: 0,
    })
}

/// RFC 4566 `token-char`, the grammar of an RFC 5888 identification-tag (a `mid`).
#[inline]
fn is_token_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x27 | 0x2A..=0x2B | 0x2D..=0x2E | 0x30..=0x39 | 0x41..=0x5A | 0x5E..=0x7E)
}

/// RFC 8851 `rid-id`: alphanumerics, `-` and `_`.
#[inline]
fn is_rid_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Reads a `mid` value (RFC 8843): a non-empty RFC 4566 token, ending at the first NUL.
pub fn parse_mid(value: &[u8]) -> Result<&str, ExtensionError> {
    token(ExtensionKind::Mid, value, is_token_char)
}

/// Reads an `rtp-stream-id` value (RFC 8852, a simulcast `rid`): non-empty, alphanumerics,
/// `-` and `_` (RFC 8851 `rid-id`), ending at the first NUL.
pub fn parse_rtp_stream_id(value: &[u8]) -> Result<&str, ExtensionError> {
    token(ExtensionKind::RtpStreamId, value, is_rid_char)
}

/// Reads a `repaired-rtp-stream-id` value: the same grammar as [`parse_rtp_stream_id`].
pub fn parse_repaired_rtp_stream_id(value: &[u8]) -> Result<&str, ExtensionError> {
    token(ExtensionKind::RepairedRtpStreamId, value, is_rid_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_dense_and_round_trip_uris() {
        for (i, kind) in ExtensionKind::ALL.into_iter().enumerate() {
            assert_eq!(kind.index(), i);
            assert_eq!(ExtensionKind::from_uri(kind.uri()), Some(kind));
        }
        assert_eq!(ExtensionKind::from_uri("urn:example:unknown"), None);
    }

    #[test]
    fn map_keeps_both_directions_consistent() {
        let mut map = ExtensionMap::new();
        map.insert(3, ExtensionKind::TransportCc).unwrap();
        map.insert(5, ExtensionKind::TransportCc).unwrap();
        assert_eq!(map.kind(3), None);
        assert_eq!(map.id(ExtensionKind::TransportCc), Some(5));
        map.insert(5, ExtensionKind::Mid).unwrap();
        assert_eq!(map.id(ExtensionKind::TransportCc), None);
        assert_eq!(map.kind(5), Some(ExtensionKind::Mid));
        assert_eq!(
            map.insert(0, ExtensionKind::Mid),
            Err(ExtensionError::InvalidId(0))
        );
        assert!(!map.needs_two_byte_form());
        map.insert(200, ExtensionKind::AudioLevel).unwrap();
        assert!(map.needs_two_byte_form());
        assert_eq!(
            map.iter().collect::<Vec<_>>(),
            vec![(5, ExtensionKind::Mid), (200, ExtensionKind::AudioLevel)]
        );
    }

    #[test]
    fn audio_level() {
        let level = AudioLevel::parse(&[0x80 | 42]).unwrap();
        assert_eq!(
            level,
            AudioLevel {
                voice_activity: true,
                level: 42
            }
        );
        let mut out = [0u8];
        level.write(&mut out).unwrap();
        assert_eq!(out, [0xAA]);
        assert!(AudioLevel::parse(&[1, 2]).is_err());
        let loud = AudioLevel {
            voice_activity: false,
            level: 128,
        };
        assert_eq!(
            loud.write(&mut out),
            Err(ExtensionError::LevelOutOfRange(128))
        );
    }

    #[test]
    fn abs_send_time_fixed_point() {
        // 1.5 s = 0b000001.100000000000000000
        let t = AbsSendTime::from_micros(1_500_000);
        assert_eq!(t.0, (1 << 18) | (1 << 17));
        assert_eq!(t.as_micros(), 1_500_000);
        let mut out = [0u8; 3];
        t.write(&mut out).unwrap();
        assert_eq!(AbsSendTime::parse(&out).unwrap(), t);
        // NTP 1.5 s: seconds in the high 32 bits, fraction 0x8000_0000.
        assert_eq!(AbsSendTime::from_ntp((1 << 32) | 0x8000_0000), t);
        // Wall-clock microseconds wrap every 64 s rather than overflow.
        assert_eq!(
            AbsSendTime::from_micros(1_700_000_000 * 64_000_000 + 1_500_000),
            t
        );
    }

    #[test]
    fn abs_capture_time_both_lengths() {
        let short = AbsCaptureTime {
            capture_ntp: 0x0102_0304_0506_0708,
            clock_offset: None,
        };
        let long = AbsCaptureTime {
            clock_offset: Some(-2),
            ..short
        };
        for t in [short, long] {
            let mut out = [0u8; 16];
            let out = &mut out[..t.encoded_len()];
            t.write(out).unwrap();
            assert_eq!(AbsCaptureTime::parse(out).unwrap(), t);
        }
        assert!(AbsCaptureTime::parse(&[0; 12]).is_err());
        assert!(AbsCaptureTime::parse(&[0; 7]).is_err());
        assert!(short.write(&mut [0; 16]).is_err());
    }

    #[test]
    fn sdes_tokens() {
        assert_eq!(parse_mid(b"0").unwrap(), "0");
        assert_eq!(parse_mid(b"audio\0\0").unwrap(), "audio");
        assert_eq!(parse_rtp_stream_id(b"hi-res_1").unwrap(), "hi-res_1");
        assert!(matches!(
            parse_rtp_stream_id(b"a b"),
            Err(ExtensionError::InvalidTokenByte {
                byte: b' ',
                position: 1,
                ..
            })
        ));
        assert!(parse_rtp_stream_id(b"r.1").is_err());
        assert!(parse_mid(b"\0").is_err());
        assert!(parse_mid(&[0xC3, 0xA9]).is_err());
        assert_eq!(parse_repaired_rtp_stream_id(b"q").unwrap(), "q");
    }
}
