//! What simulated participants send: the media models, sans-IO and deterministic.
//!
//! This module owns everything between "participant `p` is in the meeting" and "these RTP
//! packet bytes go out" — except the transport itself (SRTP, pacing, sockets), which the
//! participant layer owns:
//!
//! - [`SpeakerSchedule`]: who speaks when. From the scenario's seed, exactly
//!   `concurrent_speakers` distinct participants speak at any time, in turns of random length.
//! - [`AudioSource`]: one participant's Opus stream — full-rate packets while speaking,
//!   comfort noise under DTX while silent, RFC 6464 levels, talkspurt markers.
//! - [`VideoSource`]: one participant's VP8 or H264 simulcast — one RTP stream per layer,
//!   frames sized from the layer's bitrate, periodic and requested keyframes, packetised as
//!   real RFC 7741 (VP8) or RFC 6184 mode 1 ([`h264`]) payloads whose keyframes carry the
//!   resolution (VP8 keyframe header, H264 SPS), plus the browser-like policy that drops
//!   layers under a low estimate.
//! - [`SimulcastAllocator`]: that policy with libwebrtc's hysteresis, as a sender applies it
//!   to its own bandwidth estimate.
//! - [`inspect`]: the receive side's reading of a decrypted first packet of a frame —
//!   keyframe or not, and a keyframe's resolution.
//! - [`MediaPacket`]: what both sources emit. Its payload is a compact [`MediaPayload`] (a
//!   short codec header plus a length of deterministic filler) rather than a heap buffer, so
//!   producing, queueing and buffering packets for retransmission allocates nothing.
//! - [`RtpWriter`]: serialises a [`MediaPacket`] into RTP bytes with RFC 8285 one-byte
//!   header extensions (audio level, transport-wide CC, abs-capture-time, mid, rid, rrid),
//!   reusing `relais_rtp`'s value codecs.
//! - [`RetransmitBuffer`] and [`RtxStream`]: the last packets per SSRC, answered as RFC 4588
//!   RTX when a NACK arrives.
//!
//! Time is always a [`Duration`](std::time::Duration) since the run's start, passed in by the
//! caller; randomness comes from seeds (see [`derive_seed`]). Nothing here does I/O, sleeps
//! or spawns.

mod audio;
pub mod h264;
pub mod inspect;
mod packet;
mod retransmit;
mod rtp_writer;
mod simulcast;
mod speakers;
mod video;
mod vp8;

pub use audio::{AudioConfig, AudioSource, COMFORT_NOISE_PAYLOAD_BYTES};
pub use packet::{MediaKind, MediaPacket, MediaPayload, MAX_PAYLOAD_PREFIX};
pub use retransmit::{RetransmitBuffer, RtxStream};
pub use rtp_writer::{
    ntp_from_unix, ExtensionIds, RtpWriter, SdesTag, SendExtensions, NTP_UNIX_OFFSET_S,
};
pub use simulcast::{SimulcastAllocator, ENABLE_HYSTERESIS};
pub use speakers::{SpeakerParams, SpeakerSchedule, SpeakerTurn};
pub use video::{
    layers_for_bitrate, KeyframeRequest, LayerSet, VideoCodec, VideoConfig, VideoLayerConfig,
    VideoSource, KEYFRAME_MIN_INTERVAL, MAX_LAYERS,
};
pub use vp8::{VP8_DESCRIPTOR_LEN, VP8_KEYFRAME_HEADER_LEN};

use relais_rtp::extensions::ExtensionError;

/// Why a media model could not be configured, or a packet not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// A configuration value is out of the range the model supports.
    #[error("invalid media configuration: {0}")]
    InvalidConfig(&'static str),
    /// The scenario names a codec these models do not produce.
    #[error("codec {0:?} is not modelled (audio: opus, video: VP8, H264)")]
    UnsupportedCodec(String),
    /// The number of SSRCs given does not match the number of simulcast layers.
    #[error("{layers} simulcast layers but {ssrcs} SSRCs")]
    SsrcCountMismatch {
        /// Layers in the configuration.
        layers: usize,
        /// SSRCs given.
        ssrcs: usize,
    },
    /// A header-extension id that the one-byte form (RFC 8285 §4.2) cannot carry.
    #[error("header extension id {0} outside 1..=14 (one-byte form)")]
    InvalidExtensionId(u8),
    /// Two extensions were given the same id.
    #[error("header extension id {0} assigned twice")]
    DuplicateExtensionId(u8),
    /// A `mid`/`rid` value is empty, longer than 16 bytes or not a valid token.
    #[error("invalid SDES tag {tag:?}: {source}")]
    InvalidSdesTag {
        /// The refused value.
        tag: String,
        /// What is wrong with it.
        source: ExtensionError,
    },
    /// An extension value could not be encoded (e.g. an audio level above 127).
    #[error(transparent)]
    Extension(#[from] ExtensionError),
    /// A payload's codec header would exceed [`MAX_PAYLOAD_PREFIX`] bytes.
    #[error("payload prefix of {0} bytes exceeds {MAX_PAYLOAD_PREFIX}")]
    PrefixTooLong(usize),
    /// A simulcast layer index the source does not have.
    #[error("no video layer {0}")]
    NoSuchLayer(usize),
    /// A payload longer than 65535 bytes.
    #[error("payload of {0} bytes is too long")]
    PayloadTooLong(usize),
}

/// A seed for one participant's stream, derived from the scenario seed so every random
/// choice of a run follows from that one number, and different streams get unrelated
/// sequences (SplitMix64 finaliser over the three inputs).
pub fn derive_seed(scenario_seed: u64, participant: u32, stream: u32) -> u64 {
    let mut z = scenario_seed
        ^ (u64::from(participant).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        ^ (u64::from(stream).wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A tiny xorshift generator for per-frame and per-packet variation (frame sizes, audio
/// levels), where a full `StdRng` draw would cost more than the packet itself.
#[derive(Debug, Clone, Copy)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // Zero is xorshift's fixed point; any other constant would do.
        Self(if seed == 0 {
            0x2545_F491_4F6C_DD1D
        } else {
            seed
        })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish in `-span..=span` (modulo bias is irrelevant at these spans).
    fn symmetric(&mut self, span: u32) -> i64 {
        let width = u64::from(span) * 2 + 1;
        (self.next_u64() % width) as i64 - i64::from(span)
    }
}

pub mod replay;
pub use replay::{ReplayCapture, ReplayConfig, ReplayOptions, ReplaySource};
