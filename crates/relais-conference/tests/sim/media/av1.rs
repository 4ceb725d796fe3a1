//! [`Av1SvcSource`]: AV1 SVC (L3T3_KEY by default, or full-SVC L3T3) in one SSRC, with the
//! dependency descriptor header extension on every packet.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use relais_rtp::codec::av1::TemplateStructure;
use relais_rtp::codec::av1::{self, DescriptorFields, RenderResolution, ScalabilityMode};
use relais_rtp::rtp::RtpPacket;

use super::{
    default_ssrc, flag, frame_bytes, packet_data, split_frame, video_extensions, write_rtp,
    FrameRef, FrameStamp, MediaSource, RtpFields, RtxHistory, SimRng, SpatialLayerConfig,
    TransportSeq, VideoSendStats, AV1_PT, AV1_RTX_PT, EXT_ABS_SEND_TIME, EXT_DEPENDENCY_DESCRIPTOR,
    EXT_TRANSPORT_CC, FRAME_STAMP_LEN, KEYFRAME_WEIGHT, TEMPORAL_WEIGHTS, VIDEO_CLOCK_RATE,
};

/// Length of the AV1 aggregation header that starts every payload.
pub const AV1_AGGREGATION_HEADER_LEN: usize = 1;
/// Aggregation header bits (AV1 RTP specification §4.4): Z, the first OBU element continues
/// the previous packet's last one.
pub const AV1_AGG_Z: u8 = 0x80;
/// Y: the last OBU element continues in the next packet.
pub const AV1_AGG_Y: u8 = 0x40;
/// W = 1: one OBU element, without a length field.
pub const AV1_AGG_W1: u8 = 0x10;
/// N: the packet is the first of a coded video sequence (a key frame).
pub const AV1_AGG_N: u8 = 0x08;

/// The aggregation header of packet `index` of `count` of a layer frame: one OBU element
/// split over the frame's packets (Z on all but the first, Y on all but the last), N on the
/// first packet of a key frame.
pub fn av1_aggregation_header(index: usize, count: usize, keyframe: bool) -> u8 {
    flag(index > 0, AV1_AGG_Z)
        | flag(index + 1 < count, AV1_AGG_Y)
        | AV1_AGG_W1
        | flag(index == 0 && keyframe, AV1_AGG_N)
}

/// Configuration of an [`Av1SvcSource`].
#[derive(Debug, Clone)]
pub struct Av1SvcConfig {
    /// The sender's id, written into every payload.
    pub source_id: u8,
    /// The scalability mode: its template structure and temporal-unit pattern.
    pub mode: ScalabilityMode,
    /// Spatial layers, lowest first: exactly `mode.spatial_layers()`.
    pub layers: Vec<SpatialLayerConfig>,
    /// Media SSRC.
    pub ssrc: u32,
    /// RTX SSRC.
    pub rtx_ssrc: u32,
    /// Temporal units per second.
    pub fps: u32,
    /// Periodic key frames; `None` for key frames only on request.
    pub keyframe_interval: Option<Duration>,
    /// Largest RTP payload (aggregation header included; the descriptor is a header
    /// extension and does not count).
    pub max_payload_len: usize,
    /// Seed of initial sequence number, timestamp, frame number, template id offset and
    /// frame-size noise.
    pub seed: u64,
    /// The sender's transport-wide sequence counter.
    pub transport_seq: TransportSeq,
}

impl Av1SvcConfig {
    /// L3T3_KEY (what Jitsi Meet asks Chrome for): 320x180 at 150 kbit/s, 640x360 at
    /// 350 kbit/s, 1280x720 at 1 Mbit/s (each layer alone), SSRC
    /// `default_ssrc(source_id, 0x40)`, RTX `0x41`; 30 fps, key frame every 10 s, payloads
    /// up to 1100 bytes.
    pub fn new(source_id: u8) -> Self {
        Self {
            source_id,
            mode: ScalabilityMode::L3T3Key,
            layers: Self::ladder(3),
            ssrc: default_ssrc(source_id, 0x40),
            rtx_ssrc: default_ssrc(source_id, 0x41),
            fps: 30,
            keyframe_interval: Some(Duration::from_secs(10)),
            max_payload_len: 1100,
            seed: 0x0A71_0000 + u64::from(source_id),
            transport_seq: TransportSeq::default(),
        }
    }

    /// The same with scalability mode `mode`; a single-spatial-layer mode keeps only the
    /// top (1280x720) layer.
    pub fn with_mode(mut self, mode: ScalabilityMode) -> Self {
        self.mode = mode;
        self.layers = Self::ladder(usize::from(mode.spatial_layers()));
        self
    }

    /// The top `count` layers of the 180p/360p/720p ladder.
    fn ladder(count: usize) -> Vec<SpatialLayerConfig> {
        let all = [
            (320, 180, 150_000),
            (640, 360, 350_000),
            (1280, 720, 1_000_000),
        ];
        all[all.len() - count..]
            .iter()
            .map(|&(width, height, bitrate_bps)| SpatialLayerConfig {
                width,
                height,
                bitrate_bps,
            })
            .collect()
    }
}

/// Layer frames remembered to name the spatial layer of a referenced frame number.
const RECENT_FRAMES: usize = 64;

/// AV1 SVC in one SSRC with the dependency descriptor, as libwebrtc sends it.
///
/// Choices, following libwebrtc's `LibaomAv1Encoder` and `RtpSenderVideo`:
/// - every temporal unit has one layer frame per spatial layer, lowest first, all with the
///   unit's timestamp; [`ScalabilityMode::layer_frames`] says which template each follows
///   (unit 0 after a key frame is the key unit; then T2, T1, T2, T0, ...);
/// - each layer frame takes the next frame number (16 bits, wrapping, seeded start) and is
///   packetised alone: an aggregation header (one OBU element, Z/Y across packets, N on the
///   key frame's first packet), then the [`FrameStamp`] (layer = spatial id, picture id =
///   frame number, references = the template's frame diffs) and filler;
/// - every packet carries the descriptor (extension id 11): start/end of frame, template id,
///   frame number; the first packet of the key frame also the template structure, with the
///   render resolution of every layer. The structure is ~110 bytes, so that packet uses the
///   two-byte header-extension form (libwebrtc with extmap-allow-mixed); the others the
///   one-byte form. The template id offset is seeded and stays with the structure;
/// - the RTP marker ends the temporal unit (the top layer frame's last packet);
/// - key frames on request, first and every `keyframe_interval`.
#[derive(Debug)]
pub struct Av1SvcSource {
    config: Av1SvcConfig,
    structure: TemplateStructure,
    start: Instant,
    rng: SimRng,
    next_unit: u64,
    units_since_keyframe: u64,
    sequence_number: u16,
    rtx_sequence_number: u16,
    timestamp_offset: u32,
    frame_number: u16,
    keyframe_pending: bool,
    last_keyframe: Option<Instant>,
    history: RtxHistory,
    layer_stats: Vec<VideoSendStats>,
    /// `(frame number, spatial id)` of the latest layer frames.
    recent_frames: VecDeque<(u16, u8)>,
    structures_sent: u64,
}

impl Av1SvcSource {
    /// A source whose first temporal unit is captured at `start`.
    pub fn new(config: Av1SvcConfig, start: Instant) -> Self {
        assert_eq!(
            config.layers.len(),
            usize::from(config.mode.spatial_layers()),
            "one layer configuration per spatial layer of {}",
            config.mode.name()
        );
        let mut rng = SimRng::new(config.seed);
        let sequence_number = rng.next_u16();
        let rtx_sequence_number = rng.next_u16();
        let timestamp_offset = rng.next_u32();
        let frame_number = rng.next_u16();
        let offset = (rng.next_u32() % 64) as u8;
        let resolutions: Vec<RenderResolution> = config
            .layers
            .iter()
            .map(|l| RenderResolution::new(u32::from(l.width), u32::from(l.height)))
            .collect();
        let structure = config
            .mode
            .structure()
            .with_resolutions(&resolutions)
            .unwrap()
            .with_template_id_offset(offset)
            .unwrap();
        Self {
            layer_stats: vec![VideoSendStats::default(); config.layers.len()],
            structure,
            sequence_number,
            rtx_sequence_number,
            timestamp_offset,
            frame_number,
            config,
            start,
            rng,
            next_unit: 0,
            units_since_keyframe: 0,
            keyframe_pending: true,
            last_keyframe: None,
            history: RtxHistory::default(),
            recent_frames: VecDeque::new(),
            structures_sent: 0,
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

    /// The scalability mode.
    pub fn mode(&self) -> ScalabilityMode {
        self.config.mode
    }

    /// The template structure sent with key frames (resolutions and id offset included).
    pub fn structure(&self) -> &TemplateStructure {
        &self.structure
    }

    /// Number of spatial layers.
    pub fn spatial_layers(&self) -> usize {
        self.config.layers.len()
    }

    /// The configuration of spatial layer `spatial_id`.
    pub fn layer_config(&self, spatial_id: usize) -> SpatialLayerConfig {
        self.config.layers[spatial_id]
    }

    /// What spatial layer `spatial_id` has sent (frames: layer frames).
    pub fn stats(&self, spatial_id: usize) -> VideoSendStats {
        self.layer_stats[spatial_id]
    }

    /// Packets sent over all layers, retransmissions excluded.
    pub fn packets_sent(&self) -> u64 {
        self.layer_stats.iter().map(|s| s.packets).sum()
    }

    /// Key frames (structures) sent.
    pub fn keyframes_sent(&self) -> u64 {
        self.structures_sent
    }

    /// The frame number the next layer frame gets.
    pub fn next_frame_number(&self) -> u16 {
        self.frame_number
    }

    /// Makes the next temporal unit a key unit.
    pub fn request_keyframe(&mut self) {
        self.keyframe_pending = true;
    }

    fn unit_time(&self, unit: u64) -> Instant {
        self.start + Duration::from_nanos(unit * 1_000_000_000 / u64::from(self.config.fps))
    }

    /// When the next temporal unit is captured.
    pub fn next_due(&self) -> Instant {
        self.unit_time(self.next_unit)
    }

    /// The packets of every temporal unit captured at or before `now`.
    pub fn poll(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while self.unit_time(self.next_unit) <= now {
            let unit = self.next_unit;
            self.next_unit += 1;
            self.encode(unit, &mut out);
        }
        out
    }

    fn spatial_of(&self, frame_number: u16) -> u8 {
        self.recent_frames
            .iter()
            .rev()
            .find(|(number, _)| *number == frame_number)
            .map(|&(_, spatial)| spatial)
            .expect("a template references a frame this source sent recently")
    }

    fn encode(&mut self, unit: u64, out: &mut Vec<Vec<u8>>) {
        let at = self.unit_time(unit);
        let periodic = match (self.config.keyframe_interval, self.last_keyframe) {
            (Some(interval), Some(last)) => at.saturating_duration_since(last) >= interval,
            _ => false,
        };
        let keyframe = self.keyframe_pending || self.last_keyframe.is_none() || periodic;
        if keyframe {
            self.units_since_keyframe = 0;
            self.keyframe_pending = false;
            self.last_keyframe = Some(at);
            self.structures_sent += 1;
        }
        let index = self.units_since_keyframe;
        self.units_since_keyframe += 1;
        let timestamp = self
            .timestamp_offset
            .wrapping_add((unit * u64::from(VIDEO_CLOCK_RATE) / u64::from(self.config.fps)) as u32);
        let frames: Vec<av1::LayerFrame> = self.config.mode.layer_frames(index).collect();
        let last_frame = frames.len() - 1;
        for (position, layer_frame) in frames.iter().enumerate() {
            let frame_number = self.frame_number;
            self.frame_number = frame_number.wrapping_add(1);
            let template = self.structure.templates()[usize::from(layer_frame.template_index)];
            assert_eq!(
                (template.spatial_id, template.temporal_id),
                (layer_frame.spatial_id, layer_frame.temporal_id)
            );
            let diffs = template.frame_diffs;
            assert!(diffs.len() <= 2, "a stamp holds two references");
            let mut references = [None; 2];
            for (slot, &diff) in references.iter_mut().zip(diffs.as_slice()) {
                let number = frame_number.wrapping_sub(diff);
                *slot = Some(FrameRef {
                    layer: self.spatial_of(number),
                    picture_id: number,
                });
            }
            let spatial_id = usize::from(layer_frame.spatial_id);
            let weight = if index == 0 {
                KEYFRAME_WEIGHT
            } else {
                TEMPORAL_WEIGHTS[usize::from(layer_frame.temporal_id)]
            };
            let layer = self.config.layers[spatial_id];
            let size = frame_bytes(&mut self.rng, layer.bitrate_bps, self.config.fps, weight);
            let max_data = self.config.max_payload_len - AV1_AGGREGATION_HEADER_LEN;
            let sizes = split_frame(size, max_data, FRAME_STAMP_LEN, FRAME_STAMP_LEN);
            let count = sizes.len();
            for (packet_index, &data_len) in sizes.iter().enumerate() {
                let (first, last) = (packet_index == 0, packet_index + 1 == count);
                let stamp = FrameStamp {
                    source: self.config.source_id,
                    layer: layer_frame.spatial_id,
                    temporal_id: layer_frame.temporal_id,
                    picture_id: frame_number,
                    packet_index: packet_index as u16,
                    packet_count: count as u16,
                    references,
                };
                let header = av1_aggregation_header(packet_index, count, layer_frame.is_key_frame);
                let payload = packet_data(&[header], &stamp, AV1_AGGREGATION_HEADER_LEN + data_len);
                let descriptor = av1::to_vec(
                    &self.structure,
                    &DescriptorFields {
                        start_of_frame: first,
                        end_of_frame: last,
                        frame_number,
                        template_index: layer_frame.template_index,
                        attach_structure: first && layer_frame.is_key_frame,
                        ..DescriptorFields::default()
                    },
                )
                .unwrap();
                let (abs_send_time, transport_seq) =
                    video_extensions(self.start, at, self.config.transport_seq.next());
                let packet = write_rtp_any_form(
                    &RtpFields {
                        payload_type: AV1_PT,
                        marker: last && position == last_frame,
                        sequence_number: self.sequence_number,
                        timestamp,
                        ssrc: self.config.ssrc,
                    },
                    &[
                        (EXT_ABS_SEND_TIME, &abs_send_time),
                        (EXT_TRANSPORT_CC, &transport_seq),
                        (EXT_DEPENDENCY_DESCRIPTOR, &descriptor),
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
            stats.keyframes += u64::from(index == 0);
            if self.recent_frames.len() == RECENT_FRAMES {
                self.recent_frames.pop_front();
            }
            self.recent_frames
                .push_back((frame_number, layer_frame.spatial_id));
        }
    }

    /// An RTX retransmission of packet `sequence_number`, if `ssrc` is the media SSRC: the
    /// original's timestamp, marker and dependency descriptor, the RTX SSRC, payload type
    /// and sequence number, the original sequence number before the original payload.
    pub fn retransmit(&mut self, now: Instant, ssrc: u32, sequence_number: u16) -> Option<Vec<u8>> {
        if ssrc != self.config.ssrc {
            return None;
        }
        let original = self.history.get(sequence_number)?;
        let parsed = RtpPacket::parse(original).unwrap();
        let descriptor = parsed
            .extension(EXT_DEPENDENCY_DESCRIPTOR)
            .unwrap()
            .to_vec();
        let mut payload = parsed.sequence_number().to_be_bytes().to_vec();
        payload.extend_from_slice(parsed.payload());
        let (marker, timestamp) = (parsed.marker(), parsed.timestamp());
        let (abs_send_time, transport_seq) =
            video_extensions(self.start, now, self.config.transport_seq.next());
        let packet = write_rtp_any_form(
            &RtpFields {
                payload_type: AV1_RTX_PT,
                marker,
                sequence_number: self.rtx_sequence_number,
                timestamp,
                ssrc: self.config.rtx_ssrc,
            },
            &[
                (EXT_ABS_SEND_TIME, &abs_send_time),
                (EXT_TRANSPORT_CC, &transport_seq),
                (EXT_DEPENDENCY_DESCRIPTOR, &descriptor),
            ],
            &payload,
        );
        self.rtx_sequence_number = self.rtx_sequence_number.wrapping_add(1);
        Some(packet)
    }
}

/// Writes an RTP packet in the one-byte header-extension form when every value fits it
/// (1..=16 bytes), else in the two-byte form (RFC 8285 §4.3, profile 0x1000: id byte,
/// length byte, value), zero-padded to a 32-bit boundary.
pub fn write_rtp_any_form(
    fields: &RtpFields,
    extensions: &[(u8, &[u8])],
    payload: &[u8],
) -> Vec<u8> {
    if extensions
        .iter()
        .all(|(id, value)| *id <= 14 && (1..=16).contains(&value.len()))
    {
        return write_rtp(fields, extensions, payload);
    }
    let elements_len: usize = extensions.iter().map(|(_, value)| 2 + value.len()).sum();
    let block_len = elements_len.div_ceil(4) * 4;
    let mut packet = Vec::with_capacity(16 + block_len + payload.len());
    packet.push(0x90);
    packet.push((u8::from(fields.marker) << 7) | (fields.payload_type & 0x7F));
    packet.extend_from_slice(&fields.sequence_number.to_be_bytes());
    packet.extend_from_slice(&fields.timestamp.to_be_bytes());
    packet.extend_from_slice(&fields.ssrc.to_be_bytes());
    packet.extend_from_slice(&[0x10, 0x00]);
    packet.extend_from_slice(&u16::try_from(block_len / 4).unwrap().to_be_bytes());
    let block_start = packet.len();
    for &(id, value) in extensions {
        assert!(id >= 1, "two-byte extension id {id}");
        packet.push(id);
        packet.push(u8::try_from(value.len()).expect("extension value up to 255 bytes"));
        packet.extend_from_slice(value);
    }
    packet.resize(block_start + block_len, 0);
    packet.extend_from_slice(payload);
    packet
}

impl MediaSource for Av1SvcSource {
    fn poll(&mut self, now: Instant) -> Vec<Vec<u8>> {
        Av1SvcSource::poll(self, now)
    }
    fn next_due(&self) -> Instant {
        Av1SvcSource::next_due(self)
    }
    fn request_keyframe(&mut self) {
        Av1SvcSource::request_keyframe(self);
    }
    fn media_ssrcs(&self) -> Vec<u32> {
        vec![self.ssrc()]
    }
    fn retransmit(&mut self, now: Instant, ssrc: u32, sequence_number: u16) -> Option<Vec<u8>> {
        Av1SvcSource::retransmit(self, now, ssrc, sequence_number)
    }
}
