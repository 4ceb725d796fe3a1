//! [`VideoSource`]: one participant's VP8 or H264 simulcast, as a browser's encoder and
//! packetiser produce it.
//!
//! Each layer is its own RTP stream (SSRC, sequence numbers, random timestamp base) with its
//! own frame clock at the layer's fps. Frame sizes follow the layer's bitrate through a
//! small rate controller: a keyframe is about four average delta frames, and the bytes it
//! costs are paid back by shrinking the delta frames of the following second, so the layer
//! averages its target bitrate whatever the keyframe pattern (periodic, requested through
//! PLI/FIR, or after re-activation). Frames are split into payloads of at most the MTU
//! budget, with sizes differing by at most a byte (as libwebrtc's packetiser does). The rate
//! control is the same for both codecs; only the packetisation differs ([`VideoCodec`]): VP8
//! packets start with the descriptor written by [`vp8`](super::vp8), H264 frames are RFC 6184
//! single NAL units or FU-A fragments written by [`h264`](super::h264), keyframes led by a
//! STAP-A with SPS and PPS.
//!
//! Like a browser under a low bandwidth estimate the sender can switch layers off
//! ([`VideoSource::set_layer_active`], or the policy in [`layers_for_bitrate`]); a layer
//! switched back on starts with a keyframe.

use std::time::Duration;

use super::h264::{H264Frame, H264_MAX_PREFIX_LEN};
use super::packet::{MediaKind, MediaPacket, MediaPayload};
use super::vp8::{Vp8PacketHeader, VP8_DESCRIPTOR_LEN, VP8_MAX_PREFIX_LEN};
use super::{MediaError, XorShift};
use crate::scenario::VideoSection;

/// Most simulcast layers a source models.
pub const MAX_LAYERS: usize = 4;
/// Keyframe requests closer than this to the layer's previous keyframe wait until it has
/// passed: senders rate-limit PLI/FIR answers, since every keyframe costs ~4 frames of bits.
pub const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_millis(500);
/// RTP clock rate of video.
const VIDEO_CLOCK_RATE: u128 = 90_000;
/// A keyframe's size relative to an average delta frame.
const KEYFRAME_SIZE_FACTOR: f64 = 4.0;
/// Frame-to-frame size variation of delta frames, in thousandths (±8 %).
const DELTA_JITTER_PERMILLE: u32 = 80;
/// Smallest frame, VP8 data only: enough for a keyframe header and a few bytes.
const MIN_FRAME_BYTES: u32 = 16;
/// Smallest `mtu_payload_bytes` accepted: the descriptor, a keyframe header and some data.
const MIN_MTU_PAYLOAD: usize = 64;
/// How late a frame may be polled and still be encoded (see the audio source's rule).
const MAX_LATENESS: Duration = Duration::from_millis(200);

/// How a [`VideoSource`] packetises its frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// VP8 (RFC 7741), the keyframe header carrying the resolution.
    #[default]
    Vp8,
    /// H264 constrained baseline in packetization mode 1 (RFC 6184), the keyframe's SPS
    /// carrying the resolution.
    H264,
}

impl VideoCodec {
    /// The codec a scenario's `codec` names (case-insensitive).
    pub fn from_name(name: &str) -> Result<Self, MediaError> {
        if name.eq_ignore_ascii_case("vp8") {
            Ok(Self::Vp8)
        } else if name.eq_ignore_ascii_case("h264") {
            Ok(Self::H264)
        } else {
            Err(MediaError::UnsupportedCodec(name.to_owned()))
        }
    }

    /// Packets of a frame of `bytes` bytes of codec data.
    fn packets(self, bytes: u32, keyframe: bool, mtu_payload: u32) -> u32 {
        match self {
            Self::Vp8 => {
                let per_packet = mtu_payload.saturating_sub(VP8_DESCRIPTOR_LEN as u32).max(1);
                bytes.div_ceil(per_packet).max(1)
            }
            Self::H264 => H264Frame {
                keyframe,
                nal_bytes: bytes,
                frame_num: 0,
                mtu_payload,
                width: 0,
                height: 0,
            }
            .packets(),
        }
    }
}

/// Longest codec prefix either codec writes.
const MAX_CODEC_PREFIX: usize = if VP8_MAX_PREFIX_LEN > H264_MAX_PREFIX_LEN {
    VP8_MAX_PREFIX_LEN
} else {
    H264_MAX_PREFIX_LEN
};

/// One simulcast layer of a [`VideoConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoLayerConfig {
    /// The layer's SSRC.
    pub ssrc: u32,
    /// Frame width, at most 16383 (VP8's 14 bits).
    pub width: u16,
    /// Frame height, at most 16383.
    pub height: u16,
    /// Frames per second.
    pub fps: u32,
    /// Target bitrate of the layer's VP8 data.
    pub kbps: u32,
}

/// What a [`VideoSource`] sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConfig {
    /// How frames are packetised.
    pub codec: VideoCodec,
    /// The negotiated payload type of the codec.
    pub payload_type: u8,
    /// Periodic keyframe interval; zero for none.
    pub keyframe_interval: Duration,
    /// Largest RTP payload of a packet.
    pub mtu_payload_bytes: usize,
    /// The layers, lowest first.
    pub layers: Vec<VideoLayerConfig>,
}

impl VideoConfig {
    /// The scenario's `[video]`, with one SSRC per layer.
    pub fn from_scenario(
        video: &VideoSection,
        ssrcs: &[u32],
        payload_type: u8,
    ) -> Result<Self, MediaError> {
        let codec = VideoCodec::from_name(&video.codec)?;
        if ssrcs.len() != video.layers.len() {
            return Err(MediaError::SsrcCountMismatch {
                layers: video.layers.len(),
                ssrcs: ssrcs.len(),
            });
        }
        let dimension = |value: u32| {
            u16::try_from(value)
                .ok()
                .filter(|&v| v <= 0x3FFF)
                .ok_or(MediaError::InvalidConfig("video dimensions above 16383"))
        };
        let layers = video
            .layers
            .iter()
            .zip(ssrcs)
            .map(|(layer, &ssrc)| {
                Ok(VideoLayerConfig {
                    ssrc,
                    width: dimension(layer.width)?,
                    height: dimension(layer.height)?,
                    fps: layer.fps,
                    kbps: layer.kbps,
                })
            })
            .collect::<Result<Vec<_>, MediaError>>()?;
        let config = Self {
            codec,
            payload_type,
            keyframe_interval: Duration::from_secs(u64::from(video.keyframe_interval_s)),
            mtu_payload_bytes: usize::try_from(video.mtu_payload_bytes).unwrap_or(usize::MAX),
            layers,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), MediaError> {
        if self.layers.is_empty() || self.layers.len() > MAX_LAYERS {
            return Err(MediaError::InvalidConfig("video needs 1 to 4 layers"));
        }
        if self
            .layers
            .iter()
            .any(|l| l.fps == 0 || l.fps > 1000 || l.kbps == 0)
        {
            return Err(MediaError::InvalidConfig(
                "video layers need fps in 1..=1000 and kbps above 0",
            ));
        }
        if self
            .layers
            .iter()
            .any(|l| l.width > 0x3FFF || l.height > 0x3FFF)
        {
            return Err(MediaError::InvalidConfig("video dimensions above 16383"));
        }
        if self.codec == VideoCodec::H264
            && self
                .layers
                .iter()
                .any(|l| l.width == 0 || l.height == 0 || l.width % 2 != 0 || l.height % 2 != 0)
        {
            return Err(MediaError::InvalidConfig(
                "H264 layers need even, non-zero dimensions (4:2:0 cropping)",
            ));
        }
        if self.mtu_payload_bytes < MIN_MTU_PAYLOAD
            || self.mtu_payload_bytes > usize::from(u16::MAX)
        {
            return Err(MediaError::InvalidConfig(
                "mtu_payload_bytes must be within 64..=65535",
            ));
        }
        Ok(())
    }
}

/// A set of simulcast layer indices (a bit mask; layer `i` is bit `i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LayerSet(u8);

impl LayerSet {
    /// No layer.
    pub const EMPTY: Self = Self(0);

    /// Layers `0..count`.
    pub fn first(count: usize) -> Self {
        let count = count.min(8);
        Self(((1u16 << count) - 1) as u8)
    }

    /// Whether `layer` is in the set.
    pub fn contains(self, layer: usize) -> bool {
        layer < 8 && self.0 & (1 << layer) != 0
    }

    /// The set with `layer` added (ignored above 7).
    #[must_use]
    pub fn with(self, layer: usize) -> Self {
        if layer < 8 {
            Self(self.0 | (1 << layer))
        } else {
            self
        }
    }

    /// The set without `layer`.
    #[must_use]
    pub fn without(self, layer: usize) -> Self {
        if layer < 8 {
            Self(self.0 & !(1 << layer))
        } else {
            self
        }
    }

    /// Number of layers in the set.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The layers in increasing order.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..8).filter(move |&layer| self.contains(layer))
    }
}

/// The layers a browser keeps sending under a bandwidth estimate of `bps`: the lowest
/// layers whose summed target bitrates fit, dropping the highest first. The lowest layer
/// always stays on, as browsers keep a minimal stream even below its bitrate.
pub fn layers_for_bitrate(layers: &[VideoLayerConfig], bps: u64) -> LayerSet {
    layers_for_kbps(layers.iter().map(|l| l.kbps), bps)
}

/// [`layers_for_bitrate`] over the layers' target bitrates, lowest layer first.
fn layers_for_kbps(kbps: impl Iterator<Item = u32>, bps: u64) -> LayerSet {
    let mut set = LayerSet::first(1);
    let mut sum = 0u64;
    for (index, layer_kbps) in kbps.enumerate() {
        sum += u64::from(layer_kbps) * 1000;
        if sum > bps {
            break;
        }
        set = set.with(index);
    }
    set
}

/// What [`VideoSource::request_keyframe`] did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyframeRequest {
    /// The layer's next frame will be a keyframe.
    NextFrame,
    /// The previous keyframe is younger than [`KEYFRAME_MIN_INTERVAL`]: the first frame
    /// captured at or after `not_before` will be a keyframe.
    Deferred {
        /// When the keyframe may come.
        not_before: Duration,
    },
    /// A keyframe is already scheduled on the layer; the request adds nothing.
    AlreadyPending,
    /// The layer is off; it will start with a keyframe when switched on.
    Inactive,
}

/// The frame a layer is packetising.
#[derive(Debug, Clone, Copy)]
struct FrameInProgress {
    capture_time: Duration,
    timestamp: u32,
    picture_id: u16,
    tl0_pic_idx: u8,
    keyframe: bool,
    /// H264 `frame_num`: frames since the last keyframe, modulo 16.
    frame_num: u32,
    /// Codec data bytes of the frame (VP8 frame, or the H264 slice NAL unit).
    bytes: u32,
    packets: u32,
    next_packet: u32,
}

/// One layer's stream state.
#[derive(Debug, Clone)]
struct LayerState {
    config: VideoLayerConfig,
    active: bool,
    /// The next frame on the layer's frame clock (frame `i` is captured at
    /// `start + i / fps`).
    next_frame: u64,
    next_sequence_number: u16,
    timestamp_base: u32,
    next_picture_id: u16,
    next_tl0_pic_idx: u8,
    /// The next frame must be a keyframe (first frame, re-activation).
    keyframe_due: bool,
    /// A requested keyframe and the earliest capture time it may have.
    keyframe_requested: Option<Duration>,
    /// Frame clock index of the last keyframe.
    last_keyframe_frame: Option<u64>,
    /// Bytes per frame at the target bitrate.
    average_frame_bytes: f64,
    /// A keyframe's size: four delta frames of the size that keeps the average when one
    /// keyframe opens every periodic interval.
    keyframe_bytes: f64,
    /// Bytes the layer is under (positive) or over (negative) its budget.
    balance: f64,
    frame: Option<FrameInProgress>,
}

impl LayerState {
    fn frame_time(&self, start: Duration, frame: u64) -> Duration {
        let nanos = u128::from(frame) * 1_000_000_000 / u128::from(self.config.fps.max(1));
        start + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// The first frame clock index captured at or after `t`.
    fn frame_at_or_after(&self, start: Duration, t: Duration) -> u64 {
        let since = t.saturating_sub(start).as_nanos() * u128::from(self.config.fps);
        u64::try_from(since.div_ceil(1_000_000_000)).unwrap_or(u64::MAX)
    }

    /// The last frame clock index captured at or before `t`.
    fn frame_at_or_before(&self, start: Duration, t: Duration) -> u64 {
        let since = t.saturating_sub(start).as_nanos() * u128::from(self.config.fps);
        u64::try_from(since / 1_000_000_000).unwrap_or(u64::MAX)
    }

    fn frames_per_keyframe_interval(&self, interval: Duration) -> u64 {
        let frames = interval.as_nanos() * u128::from(self.config.fps) / 1_000_000_000;
        u64::try_from(frames).unwrap_or(u64::MAX)
    }

    /// Starts encoding frame `self.next_frame`.
    fn start_frame(
        &mut self,
        start: Duration,
        keyframe_interval: Duration,
        packetiser: Packetiser,
        jitter: &mut XorShift,
    ) {
        let frame = self.next_frame;
        self.next_frame += 1;
        let capture_time = self.frame_time(start, frame);
        let interval_frames = self.frames_per_keyframe_interval(keyframe_interval);
        let periodic = interval_frames > 0
            && self
                .last_keyframe_frame
                .is_none_or(|last| frame.saturating_sub(last) >= interval_frames);
        let requested = self
            .keyframe_requested
            .is_some_and(|not_before| capture_time >= not_before);
        let keyframe = self.keyframe_due || periodic || requested;

        let target = if keyframe {
            self.keyframe_bytes
        } else {
            let fps = f64::from(self.config.fps);
            let average = self.average_frame_bytes;
            let repaid = (average + self.balance / fps).clamp(average / 4.0, average * 2.0);
            let variation = jitter.symmetric(DELTA_JITTER_PERMILLE) as f64 / 1000.0;
            repaid * (1.0 + variation)
        };
        // Float to int saturates; the clamp keeps frames within what one u32 frame holds.
        let bytes = (target.round() as u32).max(MIN_FRAME_BYTES);
        let ceiling = self.keyframe_bytes * 4.0;
        self.balance = (self.balance + self.average_frame_bytes - f64::from(bytes)).clamp(
            -ceiling,
            self.average_frame_bytes * f64::from(self.config.fps),
        );

        if keyframe {
            self.keyframe_due = false;
            self.keyframe_requested = None;
            self.last_keyframe_frame = Some(frame);
        }
        let since_keyframe = self
            .last_keyframe_frame
            .map_or(0, |last| frame.saturating_sub(last));
        let timestamp_offset =
            u128::from(frame) * VIDEO_CLOCK_RATE / u128::from(self.config.fps.max(1));
        let picture_id = self.next_picture_id;
        self.next_picture_id = (picture_id + 1) & 0x7FFF;
        let tl0_pic_idx = self.next_tl0_pic_idx;
        self.next_tl0_pic_idx = tl0_pic_idx.wrapping_add(1);
        self.frame = Some(FrameInProgress {
            capture_time,
            // RTP timestamps wrap: keeping the low 32 bits is the arithmetic.
            timestamp: self.timestamp_base.wrapping_add(timestamp_offset as u32),
            picture_id,
            tl0_pic_idx,
            keyframe,
            // Modulo 16 fits any u32.
            frame_num: (since_keyframe % 16) as u32,
            bytes,
            packets: packetiser
                .codec
                .packets(bytes, keyframe, packetiser.mtu_payload),
            next_packet: 0,
        });
    }

    /// The next packet of the frame in progress.
    fn next_packet(&mut self, layer: u8, packetiser: Packetiser) -> Option<MediaPacket> {
        let frame = self.frame.as_mut()?;
        let index = frame.next_packet;
        frame.next_packet += 1;
        let frame = *frame;
        let last = frame.next_packet >= frame.packets;
        if last {
            self.frame = None;
        }
        let mut prefix = [0u8; MAX_CODEC_PREFIX];
        let (prefix_len, filler) = match packetiser.codec {
            VideoCodec::Vp8 => self.write_vp8(&frame, index, &mut prefix)?,
            VideoCodec::H264 => {
                let h264 = H264Frame {
                    keyframe: frame.keyframe,
                    nal_bytes: frame.bytes,
                    frame_num: frame.frame_num,
                    mtu_payload: packetiser.mtu_payload,
                    width: self.config.width,
                    height: self.config.height,
                };
                h264.write_packet(index, prefix.first_chunk_mut()?)?
            }
        };
        let sequence_number = self.next_sequence_number;
        self.next_sequence_number = sequence_number.wrapping_add(1);
        // Cannot fail: the prefix fits MAX_PAYLOAD_PREFIX and the MTU was validated to 64 KiB.
        let payload = MediaPayload::new(prefix.get(..prefix_len)?, filler, sequence_number).ok()?;
        Some(MediaPacket {
            kind: MediaKind::Video { layer },
            ssrc: self.config.ssrc,
            payload_type: packetiser.payload_type,
            sequence_number,
            timestamp: frame.timestamp,
            marker: last,
            payload,
            audio_level: None,
            keyframe_start: frame.keyframe && index == 0,
            capture_time: frame.capture_time,
            original_sequence_number: None,
        })
    }

    /// VP8 packet `index` of `frame`: the descriptor and frame header into `prefix`; returns
    /// their length and the filler length.
    fn write_vp8(
        &self,
        frame: &FrameInProgress,
        index: u32,
        prefix: &mut [u8; MAX_CODEC_PREFIX],
    ) -> Option<(usize, usize)> {
        // Even split: the first `bytes % packets` packets carry one byte more.
        let data_bytes =
            frame.bytes / frame.packets + u32::from(index < frame.bytes % frame.packets);
        let header = Vp8PacketHeader {
            picture_id: frame.picture_id,
            tl0_pic_idx: frame.tl0_pic_idx,
            keyframe: frame.keyframe,
            first_packet: index == 0,
            frame_bytes: frame.bytes,
            width: self.config.width,
            height: self.config.height,
        };
        let prefix_len = header.write(prefix.first_chunk_mut()?);
        let vp8_header_len = prefix_len - VP8_DESCRIPTOR_LEN;
        Some((
            prefix_len,
            (data_bytes as usize).saturating_sub(vp8_header_len),
        ))
    }
}

/// What a frame's packets need besides the layer: codec, MTU budget and payload type.
#[derive(Debug, Clone, Copy)]
struct Packetiser {
    codec: VideoCodec,
    mtu_payload: u32,
    payload_type: u8,
}

/// One participant's simulcast sender (VP8 or H264).
#[derive(Debug, Clone)]
pub struct VideoSource {
    packetiser: Packetiser,
    keyframe_interval: Duration,
    start: Duration,
    layers: Vec<LayerState>,
    jitter: XorShift,
}

impl VideoSource {
    /// A sender whose layers all start, active, with a keyframe captured at `start`; `seed`
    /// picks the random initial sequence numbers, timestamps and picture ids and the frame
    /// size variation.
    pub fn new(config: VideoConfig, seed: u64, start: Duration) -> Result<Self, MediaError> {
        config.validate()?;
        let mut rng = XorShift::new(seed);
        let interval = config.keyframe_interval;
        let layers = config
            .layers
            .iter()
            .map(|&layer| {
                let initial = rng.next_u64();
                let fps = f64::from(layer.fps);
                let average_frame_bytes = f64::from(layer.kbps) * 1000.0 / 8.0 / fps;
                // With N frames per interval, one keyframe of 4·D and N-1 deltas of D
                // average `average` when D = N·average / (N + 3).
                let interval_frames = interval.as_secs_f64() * fps;
                let delta = if interval_frames >= 1.0 {
                    interval_frames * average_frame_bytes
                        / (interval_frames + KEYFRAME_SIZE_FACTOR - 1.0)
                } else {
                    average_frame_bytes
                };
                LayerState {
                    config: layer,
                    active: true,
                    next_frame: 0,
                    next_sequence_number: initial as u16,
                    timestamp_base: (initial >> 32) as u32,
                    next_picture_id: ((initial >> 16) as u16) & 0x7FFF,
                    next_tl0_pic_idx: (initial >> 24) as u8,
                    keyframe_due: true,
                    keyframe_requested: None,
                    last_keyframe_frame: None,
                    average_frame_bytes,
                    keyframe_bytes: delta * KEYFRAME_SIZE_FACTOR,
                    balance: 0.0,
                    frame: None,
                }
            })
            .collect();
        Ok(Self {
            packetiser: Packetiser {
                codec: config.codec,
                // Validated to at most 65535.
                mtu_payload: u32::try_from(config.mtu_payload_bytes).unwrap_or(u32::MAX),
                payload_type: config.payload_type,
            },
            keyframe_interval: interval,
            start,
            layers,
            jitter: rng,
        })
    }

    /// Number of layers.
    pub fn layer_count(&self) -> usize {
        self.layers.len()
    }

    /// A layer's configuration.
    pub fn layer(&self, layer: usize) -> Option<&VideoLayerConfig> {
        self.layers.get(layer).map(|l| &l.config)
    }

    /// Every layer's configuration, lowest first.
    pub fn layers(&self) -> impl Iterator<Item = &VideoLayerConfig> + '_ {
        self.layers.iter().map(|l| &l.config)
    }

    /// The layer that sends with `ssrc`.
    pub fn layer_of_ssrc(&self, ssrc: u32) -> Option<usize> {
        self.layers.iter().position(|l| l.config.ssrc == ssrc)
    }

    /// The layers currently sending.
    pub fn active_layers(&self) -> LayerSet {
        self.layers
            .iter()
            .enumerate()
            .filter(|(_, l)| l.active)
            .fold(LayerSet::EMPTY, |set, (index, _)| set.with(index))
    }

    /// Switches a layer on or off at `now`. An inactive layer sends nothing (a frame being
    /// packetised is finished); a layer switched back on resumes on its frame clock with a
    /// keyframe.
    pub fn set_layer_active(
        &mut self,
        now: Duration,
        layer: usize,
        active: bool,
    ) -> Result<(), MediaError> {
        let start = self.start;
        let state = self
            .layers
            .get_mut(layer)
            .ok_or(MediaError::NoSuchLayer(layer))?;
        if active && !state.active {
            state.next_frame = state.next_frame.max(state.frame_at_or_after(start, now));
            state.keyframe_due = true;
            state.balance = 0.0;
        }
        state.active = active;
        Ok(())
    }

    /// Makes exactly the layers in `set` active (see [`set_layer_active`](Self::set_layer_active)).
    pub fn set_active_layers(&mut self, now: Duration, set: LayerSet) {
        for layer in 0..self.layers.len() {
            // Indices come from the range, so the layer exists.
            let _ = self.set_layer_active(now, layer, set.contains(layer));
        }
    }

    /// Applies the browser policy of [`layers_for_bitrate`] to a bandwidth estimate and
    /// returns the layers left on.
    pub fn apply_bitrate_estimate(&mut self, now: Duration, bps: u64) -> LayerSet {
        let set = layers_for_kbps(self.layers.iter().map(|l| l.config.kbps), bps);
        self.set_active_layers(now, set);
        set
    }

    /// Asks for a keyframe on `layer` (a PLI or FIR arrived at `now`). At most one
    /// keyframe per [`KEYFRAME_MIN_INTERVAL`] per layer: a request inside that window is
    /// deferred to its end, not dropped, since the receiver still needs the keyframe.
    pub fn request_keyframe(
        &mut self,
        now: Duration,
        layer: usize,
    ) -> Result<KeyframeRequest, MediaError> {
        let start = self.start;
        let state = self
            .layers
            .get_mut(layer)
            .ok_or(MediaError::NoSuchLayer(layer))?;
        if !state.active {
            return Ok(KeyframeRequest::Inactive);
        }
        if state.keyframe_due || state.keyframe_requested.is_some() {
            return Ok(KeyframeRequest::AlreadyPending);
        }
        let earliest = state
            .last_keyframe_frame
            .map(|frame| state.frame_time(start, frame) + KEYFRAME_MIN_INTERVAL)
            .unwrap_or(Duration::ZERO);
        let not_before = earliest.max(now);
        state.keyframe_requested = Some(not_before);
        Ok(if not_before <= now {
            KeyframeRequest::NextFrame
        } else {
            KeyframeRequest::Deferred { not_before }
        })
    }

    /// [`request_keyframe`](Self::request_keyframe) for the layer sending with `ssrc` (what
    /// a PLI names).
    pub fn request_keyframe_for_ssrc(
        &mut self,
        now: Duration,
        ssrc: u32,
    ) -> Option<KeyframeRequest> {
        let layer = self.layer_of_ssrc(ssrc)?;
        self.request_keyframe(now, layer).ok()
    }

    /// When to poll next: now if a frame is being packetised, else the next frame of an
    /// active layer; `None` when every layer is off.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let start = self.start;
        self.layers
            .iter()
            .filter_map(|l| match l.frame {
                Some(frame) => Some(frame.capture_time),
                None if l.active => Some(l.frame_time(start, l.next_frame)),
                None => None,
            })
            .min()
    }

    /// The next packet due at `now`, if any; call until it returns `None`. A frame's packets
    /// come back to back (pacing is the sender's job); frames of different layers captured
    /// at the same instant come lowest layer first. Frames more than 200 ms late are
    /// dropped, not sent in a burst.
    pub fn poll(&mut self, now: Duration) -> Option<MediaPacket> {
        let in_progress = self
            .layers
            .iter()
            .enumerate()
            .filter_map(|(index, l)| Some((l.frame?.capture_time, index)))
            .min();
        if let Some((_, index)) = in_progress {
            return self.emit(index);
        }
        let start = self.start;
        for layer in self.layers.iter_mut().filter(|l| l.active) {
            let due = layer.frame_time(start, layer.next_frame);
            if now.saturating_sub(due) > MAX_LATENESS {
                layer.next_frame = layer.frame_at_or_before(start, now);
            }
        }
        let (_, index) = self
            .layers
            .iter()
            .enumerate()
            .filter(|(_, l)| l.active)
            .map(|(index, l)| (l.frame_time(start, l.next_frame), index))
            .filter(|&(due, _)| due <= now)
            .min()?;
        let (interval, packetiser) = (self.keyframe_interval, self.packetiser);
        let layer = self.layers.get_mut(index)?;
        layer.start_frame(start, interval, packetiser, &mut self.jitter);
        self.emit(index)
    }

    fn emit(&mut self, index: usize) -> Option<MediaPacket> {
        let packetiser = self.packetiser;
        let layer = u8::try_from(index).ok()?;
        self.layers.get_mut(index)?.next_packet(layer, packetiser)
    }

    /// The codec the frames are packetised with.
    pub fn codec(&self) -> VideoCodec {
        self.packetiser.codec
    }
}
