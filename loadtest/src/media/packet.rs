//! [`MediaPacket`], what the sources emit, and its compact [`MediaPayload`].

use std::time::Duration;

use relais_rtp::extensions::AudioLevel;

use super::MediaError;

/// Longest codec header a [`MediaPayload`] holds inline: an H264 STAP-A with SPS and PPS
/// (at most 30 bytes; a VP8 descriptor and keyframe header take 16) plus the 2-byte original
/// sequence number of an RTX packet.
pub const MAX_PAYLOAD_PREFIX: usize = 32;

/// Length of the filler pattern; payloads repeat it.
const FILLER_LEN: usize = 2048;

/// Deterministic filler bytes standing in for encoded media: a fixed pseudo-random pattern,
/// so payloads look like compressed data (no long runs) and are identical across runs.
static FILLER: [u8; FILLER_LEN] = filler_pattern();

// The loop bound keeps `i` below FILLER_LEN; const fns cannot use iterators.
#[allow(clippy::indexing_slicing)]
const fn filler_pattern() -> [u8; FILLER_LEN] {
    let mut table = [0u8; FILLER_LEN];
    let mut state: u32 = 0x1234_5678;
    let mut i = 0;
    while i < FILLER_LEN {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        table[i] = (state >> 24) as u8;
        i += 1;
    }
    table
}

/// Which stream of a participant a packet belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// The Opus stream.
    Audio,
    /// A VP8 simulcast layer, 0 being the lowest.
    Video {
        /// Index into the scenario's `[video].layers`.
        layer: u8,
    },
}

/// An RTP payload as a short codec header followed by filler: the bytes are produced only
/// when the packet is serialised ([`write_to`](Self::write_to)), so a payload is `Copy`,
/// costs 38 bytes and never allocates.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MediaPayload {
    prefix: [u8; MAX_PAYLOAD_PREFIX],
    prefix_len: u8,
    filler_len: u16,
    filler_phase: u16,
}

impl core::fmt::Debug for MediaPayload {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MediaPayload")
            .field("prefix", &self.prefix())
            .field("filler_len", &self.filler_len)
            .field("filler_phase", &self.filler_phase)
            .finish()
    }
}

impl MediaPayload {
    /// `prefix` followed by `filler_len` filler bytes starting at `filler_phase` in the
    /// pattern (different phases make consecutive packets differ).
    pub fn new(prefix: &[u8], filler_len: usize, filler_phase: u16) -> Result<Self, MediaError> {
        let mut inline = [0u8; MAX_PAYLOAD_PREFIX];
        let dst = inline
            .get_mut(..prefix.len())
            .ok_or(MediaError::PrefixTooLong(prefix.len()))?;
        dst.copy_from_slice(prefix);
        let total = prefix.len() + filler_len;
        let filler_len =
            u16::try_from(filler_len).map_err(|_| MediaError::PayloadTooLong(total))?;
        if total > usize::from(u16::MAX) {
            return Err(MediaError::PayloadTooLong(total));
        }
        Ok(Self {
            prefix: inline,
            // Bounded by MAX_PAYLOAD_PREFIX above.
            prefix_len: prefix.len() as u8,
            filler_len,
            filler_phase,
        })
    }

    /// Total payload length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.prefix_len) + usize::from(self.filler_len)
    }

    /// Whether the payload has no bytes at all.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The codec header at the start of the payload (Opus TOC, VP8 descriptor and frame
    /// header, RTX original sequence number).
    #[inline]
    pub fn prefix(&self) -> &[u8] {
        self.prefix
            .get(..usize::from(self.prefix_len))
            .unwrap_or(&self.prefix)
    }

    /// Number of filler bytes after the prefix.
    #[inline]
    pub fn filler_len(&self) -> usize {
        usize::from(self.filler_len)
    }

    /// The same payload with `bytes` in front (RFC 4588: the RTX payload is the original
    /// sequence number followed by the original payload).
    pub fn prepended(&self, bytes: &[u8]) -> Result<Self, MediaError> {
        let new_len = bytes.len() + self.prefix().len();
        let mut prefix = [0u8; MAX_PAYLOAD_PREFIX];
        let (head, tail) = prefix
            .get_mut(..new_len)
            .ok_or(MediaError::PrefixTooLong(new_len))?
            .split_at_mut(bytes.len());
        head.copy_from_slice(bytes);
        tail.copy_from_slice(self.prefix());
        Self::new(
            prefix.get(..new_len).unwrap_or(&[]),
            self.filler_len(),
            self.filler_phase,
        )
    }

    /// Appends the payload's bytes to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.prefix());
        let mut remaining = self.filler_len();
        let mut at = usize::from(self.filler_phase) % FILLER_LEN;
        while remaining > 0 {
            let chunk = FILLER.get(at..).unwrap_or(&[]);
            let take = chunk.len().min(remaining);
            out.extend_from_slice(chunk.get(..take).unwrap_or(&[]));
            remaining -= take;
            at = 0;
        }
    }

    /// The payload's bytes in a new vector (tests and diagnostics; the send path uses
    /// [`write_to`](Self::write_to) into a reused buffer).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        self.write_to(&mut out);
        out
    }
}

/// One RTP packet as a source produced it, before the participant adds its send-time
/// header extensions (transport-wide sequence number, abs-capture-time) and serialises it
/// with [`RtpWriter`](super::RtpWriter). `Copy` and heap-free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaPacket {
    /// Audio, or which video layer.
    pub kind: MediaKind,
    /// The stream's SSRC (the RTX SSRC for a retransmission).
    pub ssrc: u32,
    /// RTP payload type.
    pub payload_type: u8,
    /// RTP sequence number.
    pub sequence_number: u16,
    /// RTP timestamp (48 kHz audio, 90 kHz video).
    pub timestamp: u32,
    /// Marker bit: first packet of a talkspurt (audio), last packet of a frame (video).
    pub marker: bool,
    /// The payload.
    pub payload: MediaPayload,
    /// The RFC 6464 level the sender's VAD reports (audio only).
    pub audio_level: Option<AudioLevel>,
    /// Whether the packet starts a keyframe.
    pub keyframe_start: bool,
    /// When the media was captured, since the run's start.
    pub capture_time: Duration,
    /// For an RTX packet: the sequence number of the packet it repairs.
    pub original_sequence_number: Option<u16>,
}
