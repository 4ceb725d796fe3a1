//! [`Vp8SimulcastSource`]: VP8 simulcast with three temporal layers per encoding.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use std::time::{Duration, Instant};

use super::{
    default_ssrc, flag, frame_bytes, packet_data, rtx_packet, split_frame, video_extensions,
    write_rtp, FrameRef, FrameStamp, MediaSource, RtpFields, RtxHistory, RtxTarget, SimRng,
    TransportSeq, VideoSendStats, EXT_ABS_SEND_TIME, EXT_TRANSPORT_CC, FRAME_STAMP_LEN,
    KEYFRAME_WEIGHT, TEMPORAL_WEIGHTS, VIDEO_CLOCK_RATE, VP8_PT, VP8_RTX_PT,
};

/// One step of libwebrtc's 3-temporal-layer VP8 pattern (`DefaultTemporalLayers`, the
/// 8-frame default): the temporal layer, whether libwebrtc flags it layer sync, and how many
/// frames back its references are.
struct Vp8PatternStep {
    temporal_id: u8,
    layer_sync: bool,
    reference_distances: &'static [u16],
}

/// TL0 references and updates `last`; TL1 references `last` and updates `golden`; TL2
/// references `last` (and `golden` once TL1 has updated it this cycle) and updates nothing.
/// Layer sync: TL1/TL2 frames that reference only `last` (steps 1 and 2). The pattern
/// restarts at every key frame.
const VP8_PATTERN: [Vp8PatternStep; 8] = [
    Vp8PatternStep {
        temporal_id: 0,
        layer_sync: false,
        reference_distances: &[4],
    },
    Vp8PatternStep {
        temporal_id: 2,
        layer_sync: true,
        reference_distances: &[1],
    },
    Vp8PatternStep {
        temporal_id: 1,
        layer_sync: true,
        reference_distances: &[2],
    },
    Vp8PatternStep {
        temporal_id: 2,
        layer_sync: false,
        reference_distances: &[3, 1],
    },
    Vp8PatternStep {
        temporal_id: 0,
        layer_sync: false,
        reference_distances: &[4],
    },
    Vp8PatternStep {
        temporal_id: 2,
        layer_sync: false,
        reference_distances: &[3, 1],
    },
    Vp8PatternStep {
        temporal_id: 1,
        layer_sync: false,
        reference_distances: &[4, 2],
    },
    Vp8PatternStep {
        temporal_id: 2,
        layer_sync: false,
        reference_distances: &[3, 1],
    },
];

/// Length of the VP8 payload descriptor the source writes: X, I (M=1), L, T/K.
pub const VP8_DESCRIPTOR_LEN: usize = 6;
/// Length of a VP8 key frame's header: 3-byte frame tag, start code, width, height.
pub const VP8_KEYFRAME_HEADER_LEN: usize = 10;
/// Length of a VP8 inter frame's frame tag.
pub const VP8_INTERFRAME_HEADER_LEN: usize = 3;
/// The VP8 key frame start code.
pub const VP8_START_CODE: [u8; 3] = [0x9D, 0x01, 0x2A];

/// The first bytes of a VP8 frame (RFC 6386 §9.1): the frame tag (P=0 on key frames,
/// version 0, show_frame 1, first partition size) and, on key frames, the start code and
/// the 14-bit width and height (scale bits 0).
pub fn vp8_frame_header(
    keyframe: bool,
    first_partition_len: usize,
    width: u16,
    height: u16,
) -> Vec<u8> {
    let size = (first_partition_len as u32).min(0x7_FFFF);
    let tag = (size << 5) | (1 << 4) | u32::from(!keyframe);
    let mut header = tag.to_le_bytes()[..3].to_vec();
    if keyframe {
        header.extend_from_slice(&VP8_START_CODE);
        header.extend_from_slice(&(width & 0x3FFF).to_le_bytes());
        header.extend_from_slice(&(height & 0x3FFF).to_le_bytes());
    }
    header
}

/// One simulcast encoding's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8EncodingConfig {
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Target bitrate.
    pub bitrate_bps: u32,
    /// Media SSRC.
    pub ssrc: u32,
    /// RTX SSRC.
    pub rtx_ssrc: u32,
}

/// Configuration of a [`Vp8SimulcastSource`].
#[derive(Debug, Clone)]
pub struct Vp8SimulcastConfig {
    /// The sender's id, written into every payload.
    pub source_id: u8,
    /// Encodings, lowest first.
    pub encodings: Vec<Vp8EncodingConfig>,
    /// Frames per second of every encoding.
    pub fps: u32,
    /// Periodic key frames; `None` for key frames only on request.
    pub keyframe_interval: Option<Duration>,
    /// Largest RTP payload (descriptor included).
    pub max_payload_len: usize,
    /// Seed of initial sequence numbers, timestamps, picture ids and frame-size noise.
    pub seed: u64,
    /// The sender's transport-wide sequence counter.
    pub transport_seq: TransportSeq,
}

impl Vp8SimulcastConfig {
    /// Three encodings, 320x180 at 150 kbit/s, 640x360 at 500 kbit/s and 1280x720 at
    /// 1.5 Mbit/s, SSRCs `default_ssrc(source_id, 0x10 + i)` and RTX `0x20 + i`; 30 fps, key
    /// frame every 10 s, payloads up to 1100 bytes.
    pub fn new(source_id: u8) -> Self {
        let layers = [
            (320, 180, 150_000),
            (640, 360, 500_000),
            (1280, 720, 1_500_000),
        ];
        Self {
            source_id,
            encodings: layers
                .iter()
                .zip(0u32..)
                .map(|(&(width, height, bitrate_bps), i)| Vp8EncodingConfig {
                    width,
                    height,
                    bitrate_bps,
                    ssrc: default_ssrc(source_id, 0x10 + i),
                    rtx_ssrc: default_ssrc(source_id, 0x20 + i),
                })
                .collect(),
            fps: 30,
            keyframe_interval: Some(Duration::from_secs(10)),
            max_payload_len: 1100,
            seed: 0x0B80_0000 + u64::from(source_id),
            transport_seq: TransportSeq::default(),
        }
    }
}

/// One encoding's sender state.
#[derive(Debug)]
struct Vp8EncodingState {
    config: Vp8EncodingConfig,
    active: bool,
    sequence_number: u16,
    rtx_sequence_number: u16,
    timestamp_offset: u32,
    /// The picture id the next frame gets.
    picture_id: u16,
    /// TL0PICIDX of the last TL0 frame.
    tl0_pic_idx: u8,
    frames_since_keyframe: u64,
    keyframe_pending: bool,
    last_keyframe: Option<Instant>,
    history: RtxHistory,
    stats: VideoSendStats,
}

/// VP8 simulcast as libwebrtc sends it: every encoding its own SSRC (and RTX SSRC),
/// sequence numbers, random timestamp offset and 15-bit picture id; L1T3 in each; key frames
/// on every encoding at once on request and periodically; an encoding that is (re)started
/// starts with a key frame.
#[derive(Debug)]
pub struct Vp8SimulcastSource {
    config: Vp8SimulcastConfig,
    start: Instant,
    rng: SimRng,
    next_frame: u64,
    encodings: Vec<Vp8EncodingState>,
}

impl Vp8SimulcastSource {
    /// A source whose first frame is captured at `start`.
    pub fn new(config: Vp8SimulcastConfig, start: Instant) -> Self {
        let mut rng = SimRng::new(config.seed);
        let encodings = config
            .encodings
            .iter()
            .map(|&encoding| Vp8EncodingState {
                config: encoding,
                active: true,
                sequence_number: rng.next_u16(),
                rtx_sequence_number: rng.next_u16(),
                timestamp_offset: rng.next_u32(),
                picture_id: rng.next_u16() & 0x7FFF,
                tl0_pic_idx: rng.next_u32() as u8,
                frames_since_keyframe: 0,
                keyframe_pending: true,
                last_keyframe: None,
                history: RtxHistory::default(),
                stats: VideoSendStats::default(),
            })
            .collect();
        Self {
            config,
            start,
            rng,
            next_frame: 0,
            encodings,
        }
    }

    /// Number of encodings.
    pub fn encoding_count(&self) -> usize {
        self.encodings.len()
    }

    /// Media SSRCs, lowest encoding first.
    pub fn ssrcs(&self) -> Vec<u32> {
        self.encodings.iter().map(|e| e.config.ssrc).collect()
    }

    /// RTX SSRCs, lowest encoding first.
    pub fn rtx_ssrcs(&self) -> Vec<u32> {
        self.encodings.iter().map(|e| e.config.rtx_ssrc).collect()
    }

    /// The media SSRC of `encoding`.
    pub fn ssrc(&self, encoding: usize) -> u32 {
        self.encodings[encoding].config.ssrc
    }

    /// The RTX SSRC of `encoding`.
    pub fn rtx_ssrc(&self, encoding: usize) -> u32 {
        self.encodings[encoding].config.rtx_ssrc
    }

    /// The encoding a media SSRC belongs to.
    pub fn encoding_of(&self, ssrc: u32) -> Option<usize> {
        self.encodings.iter().position(|e| e.config.ssrc == ssrc)
    }

    /// The configuration of `encoding`.
    pub fn encoding_config(&self, encoding: usize) -> Vp8EncodingConfig {
        self.encodings[encoding].config
    }

    /// The sender id written into payloads.
    pub fn source_id(&self) -> u8 {
        self.config.source_id
    }

    /// Stops or (re)starts `encoding`; a restarted encoding begins with a key frame.
    pub fn set_active(&mut self, encoding: usize, active: bool) {
        let state = &mut self.encodings[encoding];
        if active && !state.active {
            state.keyframe_pending = true;
        }
        state.active = active;
    }

    /// Whether `encoding` is sending.
    pub fn is_active(&self, encoding: usize) -> bool {
        self.encodings[encoding].active
    }

    /// Changes the target bitrate of `encoding` from the next frame on.
    pub fn set_bitrate(&mut self, encoding: usize, bitrate_bps: u32) {
        self.encodings[encoding].config.bitrate_bps = bitrate_bps;
    }

    /// What `encoding` has sent.
    pub fn stats(&self, encoding: usize) -> VideoSendStats {
        self.encodings[encoding].stats
    }

    /// Makes the next frame of every encoding a key frame, as libwebrtc does for a PLI on
    /// any of them.
    pub fn request_keyframe(&mut self) {
        for encoding in &mut self.encodings {
            encoding.keyframe_pending = true;
        }
    }

    fn frame_time(&self, frame: u64) -> Instant {
        self.start + Duration::from_nanos(frame * 1_000_000_000 / u64::from(self.config.fps))
    }

    /// When the next frame is captured.
    pub fn next_due(&self) -> Instant {
        self.frame_time(self.next_frame)
    }

    /// The packets of every frame captured at or before `now`, encoding by encoding.
    pub fn poll(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while self.frame_time(self.next_frame) <= now {
            let frame = self.next_frame;
            self.next_frame += 1;
            for encoding in 0..self.encodings.len() {
                if self.encodings[encoding].active {
                    self.encode(encoding, frame, &mut out);
                }
            }
        }
        out
    }

    /// Encodes and packetises frame `frame` of `encoding`.
    fn encode(&mut self, encoding: usize, frame: u64, out: &mut Vec<Vec<u8>>) {
        let at = self.frame_time(frame);
        let fps = self.config.fps;
        let interval = self.config.keyframe_interval;
        let state = &mut self.encodings[encoding];
        let periodic = match (interval, state.last_keyframe) {
            (Some(interval), Some(last)) => at.saturating_duration_since(last) >= interval,
            _ => false,
        };
        let keyframe = state.keyframe_pending || state.last_keyframe.is_none() || periodic;
        if keyframe {
            state.frames_since_keyframe = 0;
            state.keyframe_pending = false;
            state.last_keyframe = Some(at);
        }
        let step = &VP8_PATTERN[(state.frames_since_keyframe % 8) as usize];
        state.frames_since_keyframe += 1;
        let picture_id = state.picture_id;
        state.picture_id = (picture_id + 1) & 0x7FFF;
        if step.temporal_id == 0 {
            state.tl0_pic_idx = state.tl0_pic_idx.wrapping_add(1);
        }
        let mut references = [None; 2];
        if !keyframe {
            for (slot, &distance) in references.iter_mut().zip(step.reference_distances) {
                *slot = Some(FrameRef {
                    layer: encoding as u8,
                    picture_id: picture_id.wrapping_sub(distance) & 0x7FFF,
                });
            }
        }
        let weight = if keyframe {
            KEYFRAME_WEIGHT
        } else {
            TEMPORAL_WEIGHTS[usize::from(step.temporal_id)]
        };
        let size = frame_bytes(&mut self.rng, state.config.bitrate_bps, fps, weight);
        let header = vp8_frame_header(keyframe, size / 8, state.config.width, state.config.height);
        let sizes = split_frame(
            size,
            self.config.max_payload_len - VP8_DESCRIPTOR_LEN,
            header.len() + FRAME_STAMP_LEN,
            FRAME_STAMP_LEN,
        );
        let timestamp = state
            .timestamp_offset
            .wrapping_add((frame * u64::from(VIDEO_CLOCK_RATE) / u64::from(fps)) as u32);
        let count = sizes.len();
        for (index, &data_len) in sizes.iter().enumerate() {
            let first = index == 0;
            let stamp = FrameStamp {
                source: self.config.source_id,
                layer: encoding as u8,
                temporal_id: step.temporal_id,
                picture_id,
                packet_index: index as u16,
                packet_count: count as u16,
                references,
            };
            let mut payload = vec![
                // X, N on TL2 (libvpx marks frames that update no buffer droppable), S on
                // the first packet, PID 0.
                0x80 | flag(step.temporal_id == 2, 0x20) | flag(first, 0x10),
                0xE0, // I, L, T.
                0x80 | (picture_id >> 8) as u8,
                picture_id as u8,
                state.tl0_pic_idx,
                (step.temporal_id << 6) | (u8::from(keyframe || step.layer_sync) << 5),
            ];
            let prefix: &[u8] = if first { &header } else { &[] };
            payload.extend(packet_data(prefix, &stamp, data_len));
            let (abs_send_time, transport_seq) =
                video_extensions(self.start, at, self.config.transport_seq.next());
            let packet = write_rtp(
                &RtpFields {
                    payload_type: VP8_PT,
                    marker: index + 1 == count,
                    sequence_number: state.sequence_number,
                    timestamp,
                    ssrc: state.config.ssrc,
                },
                &[
                    (EXT_ABS_SEND_TIME, &abs_send_time),
                    (EXT_TRANSPORT_CC, &transport_seq),
                ],
                &payload,
            );
            state.history.push(state.sequence_number, &packet);
            state.sequence_number = state.sequence_number.wrapping_add(1);
            state.stats.packets += 1;
            state.stats.media_bytes += data_len as u64;
            out.push(packet);
        }
        state.stats.frames += 1;
        state.stats.keyframes += u64::from(keyframe);
    }

    /// An RTX retransmission of packet `sequence_number` of media SSRC `ssrc`.
    pub fn retransmit(&mut self, now: Instant, ssrc: u32, sequence_number: u16) -> Option<Vec<u8>> {
        let encoding = self.encoding_of(ssrc)?;
        let state = &mut self.encodings[encoding];
        let original = state.history.get(sequence_number)?;
        let (abs_send_time, transport_seq) =
            video_extensions(self.start, now, self.config.transport_seq.next());
        let packet = rtx_packet(
            original,
            &RtxTarget {
                payload_type: VP8_RTX_PT,
                ssrc: state.config.rtx_ssrc,
                sequence_number: state.rtx_sequence_number,
                abs_send_time,
                transport_seq: u16::from_be_bytes(transport_seq),
            },
        );
        state.rtx_sequence_number = state.rtx_sequence_number.wrapping_add(1);
        Some(packet)
    }
}

impl MediaSource for Vp8SimulcastSource {
    fn poll(&mut self, now: Instant) -> Vec<Vec<u8>> {
        Vp8SimulcastSource::poll(self, now)
    }
    fn next_due(&self) -> Instant {
        Vp8SimulcastSource::next_due(self)
    }
    fn request_keyframe(&mut self) {
        Vp8SimulcastSource::request_keyframe(self);
    }
    fn media_ssrcs(&self) -> Vec<u32> {
        self.ssrcs()
    }
    fn retransmit(&mut self, now: Instant, ssrc: u32, sequence_number: u16) -> Option<Vec<u8>> {
        Vp8SimulcastSource::retransmit(self, now, ssrc, sequence_number)
    }
}
