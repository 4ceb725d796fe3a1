//! [`Vp9SvcSource`]: VP9 full SVC (L3T3) in one SSRC, non-flexible mode.

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
    KEYFRAME_WEIGHT, TEMPORAL_WEIGHTS, VIDEO_CLOCK_RATE, VP9_PT, VP9_RTX_PT,
};

/// libwebrtc's non-flexible 3-temporal-layer picture group (`kTemporalStructureMode3`):
/// `(temporal id, picture id distance of the one reference)`; every entry is a switching-up
/// point (U=1). The group restarts at every key picture.
const VP9_PICTURE_GROUP: [(u8, u16); 4] = [(0, 4), (2, 1), (1, 2), (2, 1)];
/// Length of the VP9 payload descriptor without a scalability structure: I (M=1), L with
/// TL0PICIDX.
pub const VP9_DESCRIPTOR_LEN: usize = 5;

/// One spatial layer's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpatialLayerConfig {
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Bitrate of this layer alone.
    pub bitrate_bps: u32,
}

/// Configuration of a [`Vp9SvcSource`].
#[derive(Debug, Clone)]
pub struct Vp9SvcConfig {
    /// The sender's id, written into every payload.
    pub source_id: u8,
    /// Spatial layers, lowest first (at most 8; 3 by default).
    pub layers: Vec<SpatialLayerConfig>,
    /// Media SSRC.
    pub ssrc: u32,
    /// RTX SSRC.
    pub rtx_ssrc: u32,
    /// Pictures per second.
    pub fps: u32,
    /// Periodic key pictures; `None` for key pictures only on request.
    pub keyframe_interval: Option<Duration>,
    /// Largest RTP payload (descriptor included).
    pub max_payload_len: usize,
    /// Seed of initial sequence number, timestamp, picture id and frame-size noise.
    pub seed: u64,
    /// The sender's transport-wide sequence counter.
    pub transport_seq: TransportSeq,
}

impl Vp9SvcConfig {
    /// L3T3: 320x180 at 150 kbit/s, 640x360 at 350 kbit/s, 1280x720 at 1 Mbit/s (each layer
    /// alone; upper layers predict from lower ones, so they cost less than simulcast),
    /// SSRC `default_ssrc(source_id, 0x30)`, RTX `0x31`; 30 fps, key picture every 10 s,
    /// payloads up to 1100 bytes.
    pub fn new(source_id: u8) -> Self {
        let layers = [
            (320, 180, 150_000),
            (640, 360, 350_000),
            (1280, 720, 1_000_000),
        ];
        Self {
            source_id,
            layers: layers
                .iter()
                .map(|&(width, height, bitrate_bps)| SpatialLayerConfig {
                    width,
                    height,
                    bitrate_bps,
                })
                .collect(),
            ssrc: default_ssrc(source_id, 0x30),
            rtx_ssrc: default_ssrc(source_id, 0x31),
            fps: 30,
            keyframe_interval: Some(Duration::from_secs(10)),
            max_payload_len: 1100,
            seed: 0x0B90_0000 + u64::from(source_id),
            transport_seq: TransportSeq::default(),
        }
    }
}

/// VP9 full SVC (L3T3) in one SSRC, as libwebrtc sends it in non-flexible mode.
///
/// Choices, following libwebrtc's `LibvpxVp9Encoder` with inter-layer prediction on:
/// - every picture has all spatial layers, sent lowest first, with one timestamp and picture
///   id; the marker bit ends the top layer's last packet, E every layer frame's;
/// - a key picture's base layer is intra, its upper layers predict from the layer below only;
///   all its layer frames have P=0 (so each is a spatial switch-up point);
/// - in delta pictures every layer frame predicts from the same layer of one earlier picture
///   (the picture group's distance: 4, 1, 2, 1 for TIDs 0, 2, 1, 2) and upper layers also
///   from the layer below (D=1): full SVC, not K-SVC;
/// - Z=1 on the top layer (nothing predicts from it), U=1 everywhere (libwebrtc's mode 3
///   group), TL0PICIDX increments on TID 0 pictures;
/// - the first packet of a key picture carries the scalability structure: resolutions and
///   the 4-picture group.
#[derive(Debug)]
pub struct Vp9SvcSource {
    config: Vp9SvcConfig,
    start: Instant,
    rng: SimRng,
    next_picture: u64,
    sequence_number: u16,
    rtx_sequence_number: u16,
    timestamp_offset: u32,
    picture_id: u16,
    tl0_pic_idx: u8,
    pictures_since_keyframe: u64,
    keyframe_pending: bool,
    last_keyframe: Option<Instant>,
    history: RtxHistory,
    layer_stats: Vec<VideoSendStats>,
}

impl Vp9SvcSource {
    /// A source whose first picture is captured at `start`.
    pub fn new(config: Vp9SvcConfig, start: Instant) -> Self {
        assert!(
            (1..=8).contains(&config.layers.len()),
            "1..=8 spatial layers"
        );
        let mut rng = SimRng::new(config.seed);
        Self {
            sequence_number: rng.next_u16(),
            rtx_sequence_number: rng.next_u16(),
            timestamp_offset: rng.next_u32(),
            picture_id: rng.next_u16() & 0x7FFF,
            tl0_pic_idx: rng.next_u32() as u8,
            layer_stats: vec![VideoSendStats::default(); config.layers.len()],
            config,
            start,
            rng,
            next_picture: 0,
            pictures_since_keyframe: 0,
            keyframe_pending: true,
            last_keyframe: None,
            history: RtxHistory::default(),
        }
    }

    /// The media SSRC.
    pub fn ssrc(&self) -> u32 {
        self.config.ssrc
    }

    /// The RTX SSRC.
    pub fn rtx_ssrc(&self) -> u32 {
        self.config.rtx_ssrc
    }

    /// The sender id written into payloads.
    pub fn source_id(&self) -> u8 {
        self.config.source_id
    }

    /// Number of spatial layers.
    pub fn spatial_layers(&self) -> usize {
        self.config.layers.len()
    }

    /// The configuration of spatial layer `spatial_id`.
    pub fn layer_config(&self, spatial_id: usize) -> SpatialLayerConfig {
        self.config.layers[spatial_id]
    }

    /// What spatial layer `spatial_id` has sent.
    pub fn stats(&self, spatial_id: usize) -> VideoSendStats {
        self.layer_stats[spatial_id]
    }

    /// Makes the next picture a key picture.
    pub fn request_keyframe(&mut self) {
        self.keyframe_pending = true;
    }

    fn picture_time(&self, picture: u64) -> Instant {
        self.start + Duration::from_nanos(picture * 1_000_000_000 / u64::from(self.config.fps))
    }

    /// When the next picture is captured.
    pub fn next_due(&self) -> Instant {
        self.picture_time(self.next_picture)
    }

    /// The packets of every picture captured at or before `now`.
    pub fn poll(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while self.picture_time(self.next_picture) <= now {
            let picture = self.next_picture;
            self.next_picture += 1;
            self.encode(picture, &mut out);
        }
        out
    }

    /// The scalability structure: N_S, Y=1, G=1, resolutions, then the picture group.
    fn scalability_structure(&self) -> Vec<u8> {
        let layers = self.config.layers.len() as u8;
        let mut ss = vec![((layers - 1) << 5) | 0x10 | 0x08];
        for layer in &self.config.layers {
            ss.extend_from_slice(&layer.width.to_be_bytes());
            ss.extend_from_slice(&layer.height.to_be_bytes());
        }
        ss.push(VP9_PICTURE_GROUP.len() as u8);
        for &(temporal_id, distance) in &VP9_PICTURE_GROUP {
            // T, U=1, R=1; then the one P_DIFF.
            ss.push((temporal_id << 5) | 0x10 | (1 << 2));
            ss.push(distance as u8);
        }
        ss
    }

    fn encode(&mut self, picture: u64, out: &mut Vec<Vec<u8>>) {
        let at = self.picture_time(picture);
        let periodic = match (self.config.keyframe_interval, self.last_keyframe) {
            (Some(interval), Some(last)) => at.saturating_duration_since(last) >= interval,
            _ => false,
        };
        let keyframe = self.keyframe_pending || self.last_keyframe.is_none() || periodic;
        if keyframe {
            self.pictures_since_keyframe = 0;
            self.keyframe_pending = false;
            self.last_keyframe = Some(at);
        }
        let (temporal_id, distance) =
            VP9_PICTURE_GROUP[(self.pictures_since_keyframe % 4) as usize];
        self.pictures_since_keyframe += 1;
        let picture_id = self.picture_id;
        self.picture_id = (picture_id + 1) & 0x7FFF;
        if temporal_id == 0 {
            self.tl0_pic_idx = self.tl0_pic_idx.wrapping_add(1);
        }
        let timestamp = self.timestamp_offset.wrapping_add(
            (picture * u64::from(VIDEO_CLOCK_RATE) / u64::from(self.config.fps)) as u32,
        );
        let top = self.config.layers.len() - 1;
        for spatial_id in 0..=top {
            let sid = spatial_id as u8;
            let mut references = [None; 2];
            let mut slots = references.iter_mut();
            if !keyframe {
                *slots.next().unwrap() = Some(FrameRef {
                    layer: sid,
                    picture_id: picture_id.wrapping_sub(distance) & 0x7FFF,
                });
            }
            if spatial_id > 0 {
                *slots.next().unwrap() = Some(FrameRef {
                    layer: sid - 1,
                    picture_id,
                });
            }
            let weight = if keyframe {
                KEYFRAME_WEIGHT
            } else {
                TEMPORAL_WEIGHTS[usize::from(temporal_id)]
            };
            let layer = self.config.layers[spatial_id];
            let size = frame_bytes(&mut self.rng, layer.bitrate_bps, self.config.fps, weight);
            let ss = if keyframe && spatial_id == 0 {
                self.scalability_structure()
            } else {
                Vec::new()
            };
            // The first packet also carries the scalability structure; size the others by
            // the plain descriptor, and give the first the room it needs.
            let max_data = self.config.max_payload_len - VP9_DESCRIPTOR_LEN;
            let mut sizes = split_frame(size, max_data, FRAME_STAMP_LEN, FRAME_STAMP_LEN);
            if sizes[0] + ss.len() > max_data {
                let excess = sizes[0] + ss.len() - max_data;
                sizes[0] -= excess;
                sizes.push(excess.max(FRAME_STAMP_LEN));
            }
            let count = sizes.len();
            for (index, &data_len) in sizes.iter().enumerate() {
                let (first, last) = (index == 0, index + 1 == count);
                let stamp = FrameStamp {
                    source: self.config.source_id,
                    layer: sid,
                    temporal_id,
                    picture_id,
                    packet_index: index as u16,
                    packet_count: count as u16,
                    references,
                };
                let with_ss = first && !ss.is_empty();
                let mut payload = vec![
                    // I, P, L (F=0), B, E, V, Z.
                    0x80 | flag(!keyframe, 0x40)
                        | 0x20
                        | flag(first, 0x08)
                        | flag(last, 0x04)
                        | flag(with_ss, 0x02)
                        | flag(spatial_id == top, 0x01),
                    0x80 | (picture_id >> 8) as u8,
                    picture_id as u8,
                    (temporal_id << 5) | 0x10 | (sid << 1) | u8::from(spatial_id > 0),
                    self.tl0_pic_idx,
                ];
                if with_ss {
                    payload.extend_from_slice(&ss);
                }
                payload.extend(packet_data(&[], &stamp, data_len));
                let (abs_send_time, transport_seq) =
                    video_extensions(self.start, at, self.config.transport_seq.next());
                let packet = write_rtp(
                    &RtpFields {
                        payload_type: VP9_PT,
                        marker: last && spatial_id == top,
                        sequence_number: self.sequence_number,
                        timestamp,
                        ssrc: self.config.ssrc,
                    },
                    &[
                        (EXT_ABS_SEND_TIME, &abs_send_time),
                        (EXT_TRANSPORT_CC, &transport_seq),
                    ],
                    &payload,
                );
                self.history.push(self.sequence_number, &packet);
                self.sequence_number = self.sequence_number.wrapping_add(1);
                let stats = &mut self.layer_stats[spatial_id];
                stats.packets += 1;
                stats.media_bytes += data_len as u64;
                out.push(packet);
            }
            let stats = &mut self.layer_stats[spatial_id];
            stats.frames += 1;
            stats.keyframes += u64::from(keyframe);
        }
    }

    /// An RTX retransmission of packet `sequence_number`, if `ssrc` is the media SSRC.
    pub fn retransmit(&mut self, now: Instant, ssrc: u32, sequence_number: u16) -> Option<Vec<u8>> {
        if ssrc != self.config.ssrc {
            return None;
        }
        let original = self.history.get(sequence_number)?;
        let (abs_send_time, transport_seq) =
            video_extensions(self.start, now, self.config.transport_seq.next());
        let packet = rtx_packet(
            original,
            &RtxTarget {
                payload_type: VP9_RTX_PT,
                ssrc: self.config.rtx_ssrc,
                sequence_number: self.rtx_sequence_number,
                abs_send_time,
                transport_seq: u16::from_be_bytes(transport_seq),
            },
        );
        self.rtx_sequence_number = self.rtx_sequence_number.wrapping_add(1);
        Some(packet)
    }
}

impl MediaSource for Vp9SvcSource {
    fn poll(&mut self, now: Instant) -> Vec<Vec<u8>> {
        Vp9SvcSource::poll(self, now)
    }
    fn next_due(&self) -> Instant {
        Vp9SvcSource::next_due(self)
    }
    fn request_keyframe(&mut self) {
        Vp9SvcSource::request_keyframe(self);
    }
    fn media_ssrcs(&self) -> Vec<u32> {
        vec![self.ssrc()]
    }
    fn retransmit(&mut self, now: Instant, ssrc: u32, sequence_number: u16) -> Option<Vec<u8>> {
        Vp9SvcSource::retransmit(self, now, ssrc, sequence_number)
    }
}
