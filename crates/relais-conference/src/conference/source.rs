//! Incoming sources: what each sender publishes, parsed once per packet for all receivers.
//!
//! A source is one audio or video track of an endpoint, named as Jitsi names it
//! (`<endpoint>-a0`, `<endpoint>-v0`). A video source has one *encoding* per simulcast SSRC
//! (lowest first) or a single encoding carrying SVC layers (VP9, or any codec with the AV1
//! dependency descriptor). The source owns what all receivers share: layer activity, measured
//! heights, frame and bit rates, the cache of original packets that answers receivers' NACKs,
//! the keyframe request rate limit and, per video encoding, the requester that asks the
//! sender again for what it lost on the way to the node ([`crate::repair`]).

use std::time::{Duration, Instant};

use relais_rtp::codec::av1::{self, DependencyDescriptor, DependencyDescriptorReader};
use relais_rtp::codec::vp8::{self, Vp8Descriptor};
use relais_rtp::codec::vp9::{self, Vp9Descriptor};
use relais_rtp::codec::{h264, PictureId};
use relais_rtp::rtp::RtpPacket;

use crate::allocation::{LayerDescription, VideoType};
use crate::conference::rewrite::seq_newer;
use crate::repair::{RepairConfig, RetransmissionRequester};
use crate::{CodecName, EndpointId, MediaKind};

/// Temporal layers tracked per encoding or spatial layer.
pub(crate) const MAX_TEMPORAL: usize = 4;
/// Spatial layers tracked in one SVC encoding.
pub(crate) const MAX_SPATIAL: usize = 4;
/// A layer is active while its last packet is at most this old.
pub(crate) const LAYER_ACTIVE_TIMEOUT: Duration = Duration::from_secs(1);
/// Original packets kept per video source to answer NACKs.
const PACKET_CACHE_SLOTS: usize = 512;
/// Rates are measured over windows of this length.
pub(crate) const RATE_WINDOW: Duration = Duration::from_secs(1);

/// Stable handle of a source inside a conference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SourceId(pub(crate) u32);

/// How the layers of a video source are carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LayerScheme {
    /// One SSRC per encoding (simulcast), or a single-layer stream; temporal layers inside.
    Simulcast,
    /// SVC: spatial and temporal layers in one SSRC, read from the VP9 payload descriptor
    /// or the dependency descriptor extension.
    Svc,
}

/// What the source read from one packet, for every receiver's decision.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PacketInfo {
    /// Simulcast encoding index (0 with SVC and for audio).
    pub(crate) encoding: u8,
    /// SVC spatial layer (0 without SVC).
    pub(crate) spatial: u8,
    /// Temporal layer (0 without temporal scalability).
    pub(crate) temporal: u8,
    /// First packet of a frame (of a layer frame with SVC).
    pub(crate) frame_start: bool,
    /// First packet of a picture: with SVC, the start of its base spatial layer frame.
    pub(crate) picture_start: bool,
    /// A decodable start: a key frame (its first packet).
    pub(crate) keyframe: bool,
    /// Last packet of a layer frame (VP9 E bit); the marker bit for other codecs.
    pub(crate) end_of_layer_frame: bool,
    /// A receiver getting the temporal layers below this packet's may add this packet's
    /// layer here (VP8 layer sync, VP9 switching up point, a key frame).
    pub(crate) temporal_switch: bool,
    /// A receiver already getting the lower spatial layers may start this one here.
    pub(crate) spatial_switch: bool,
    /// VP8/VP9 picture id.
    pub(crate) picture_id: Option<PictureId>,
    /// VP8/VP9 TL0PICIDX.
    pub(crate) tl0_pic_idx: Option<u8>,
    /// The codec of the packet.
    pub(crate) codec: CodecName,
    /// The RTP clock rate of the codec.
    pub(crate) clock_rate: u32,
    /// The RTP marker bit as received.
    pub(crate) marker: bool,
    /// Older than the newest packet of its encoding (reordered, or repaired upstream):
    /// receivers' layer state must not move on it.
    pub(crate) late: bool,
    /// The dependency descriptor, when the packet has one (AV1, or any codec sent with it):
    /// layer decisions then follow its decode target indications.
    pub(crate) dependency: Option<DependencyDescriptor>,
}

/// Reads layer information from a packet's payload descriptor, or from its dependency
/// descriptor (`dependency`, the extension's value) through the source's `reader`.
pub(crate) fn inspect(
    packet: &RtpPacket<&[u8]>,
    codec: CodecName,
    clock_rate: u32,
    encoding: u8,
    dependency: Option<&[u8]>,
    reader: &mut DependencyDescriptorReader,
) -> Result<(PacketInfo, Option<(u16, u16)>), ()> {
    let payload = packet.payload();
    let marker = packet.marker();
    let mut info = PacketInfo {
        encoding,
        spatial: 0,
        temporal: 0,
        frame_start: true,
        picture_start: true,
        keyframe: false,
        end_of_layer_frame: marker,
        temporal_switch: true,
        spatial_switch: false,
        picture_id: None,
        tl0_pic_idx: None,
        codec,
        clock_rate,
        marker,
        late: false,
        dependency: None,
    };
    let mut dimensions = None;
    if let Some(value) = dependency.filter(|_| codec != CodecName::Opus) {
        // Without the structure (sent with key frames) a descriptor cannot be read: the
        // packet is useless to every receiver until the next key frame.
        let d = reader.read(value).map_err(|_| ())?;
        info.spatial = d.spatial_id;
        info.temporal = d.temporal_id;
        info.frame_start = d.start_of_frame;
        info.picture_start = d.start_of_frame && d.spatial_id == 0;
        info.keyframe = d.carries_structure && d.start_of_frame;
        info.end_of_layer_frame = d.end_of_frame;
        info.dependency = Some(d);
        dimensions = d.resolution.map(|r| {
            (
                u16::try_from(r.width).unwrap_or(u16::MAX),
                u16::try_from(r.height).unwrap_or(u16::MAX),
            )
        });
        return Ok((info, dimensions));
    }
    match codec {
        CodecName::Opus => {}
        CodecName::Vp8 => {
            let d: Vp8Descriptor = vp8::parse(payload).map_err(|_| ())?;
            info.frame_start = d.starts_frame();
            info.picture_start = info.frame_start;
            info.keyframe = d.is_keyframe;
            info.temporal = d.temporal_id.unwrap_or(0);
            info.temporal_switch = d.layer_sync || d.is_keyframe;
            info.picture_id = d.picture_id;
            info.tl0_pic_idx = d.tl0_pic_idx;
            dimensions = vp8::keyframe_dimensions(payload, &d);
        }
        CodecName::Vp9 => {
            let d: Vp9Descriptor = vp9::parse(payload).map_err(|_| ())?;
            info.spatial = d.spatial_id();
            info.temporal = d.temporal_id();
            info.frame_start = d.start_of_frame;
            info.picture_start = d.start_of_frame && d.spatial_id() == 0;
            info.keyframe = d.is_keyframe();
            info.end_of_layer_frame = d.end_of_frame;
            info.temporal_switch = d.is_temporal_switch_up_point() || d.is_keyframe();
            info.spatial_switch = d.is_spatial_switch_up_point();
            info.picture_id = d.picture_id;
            info.tl0_pic_idx = d.tl0_pic_idx;
            if let Some(ss) = d.scalability {
                dimensions = ss.resolution(d.spatial_id());
            }
        }
        CodecName::Av1 => {
            info.keyframe = av1::starts_keyframe(payload);
        }
        CodecName::H264 => {
            info.keyframe = h264::parse(payload).is_ok_and(|d| d.is_keyframe());
            // Without a descriptor, a frame starts where the previous one ended: the caller
            // tracks that through the marker bit.
        }
    }
    Ok((info, dimensions))
}

/// Activity and rates of one temporal layer of an encoding or spatial layer.
#[derive(Debug, Clone, Copy, Default)]
struct TemporalStats {
    last_packet: Option<Instant>,
    /// Activity at the last rate window (to notice layers that stopped).
    was_active: bool,
    bytes: u64,
    bitrate_bps: u64,
}

/// One simulcast encoding (or the single SVC encoding, or an audio stream).
#[derive(Debug, Clone)]
pub(crate) struct Encoding {
    /// The sender's SSRC of this encoding.
    pub(crate) ssrc: u32,
    /// The sender's RTX SSRC paired with it (FID), if any.
    pub(crate) rtx_ssrc: Option<u32>,
    /// Frame height per spatial layer (index 0 without SVC), measured from key frames.
    heights: [Option<u16>; MAX_SPATIAL],
    /// Per spatial layer, per temporal layer.
    temporal: [[TemporalStats; MAX_TEMPORAL]; MAX_SPATIAL],
    last_keyframe_request: Option<Instant>,
    /// H264: the previous packet had the marker bit (so this one starts a frame).
    after_marker: bool,
    /// The newest sequence number received.
    highest_seq: Option<u16>,
    /// Upstream loss repair (video, when enabled).
    pub(crate) repair: Option<RetransmissionRequester>,
}

impl Encoding {
    fn new(ssrc: u32, rtx_ssrc: Option<u32>, repair: Option<RepairConfig>) -> Self {
        Self {
            ssrc,
            rtx_ssrc,
            heights: [None; MAX_SPATIAL],
            temporal: [[TemporalStats::default(); MAX_TEMPORAL]; MAX_SPATIAL],
            last_keyframe_request: None,
            after_marker: true,
            highest_seq: None,
            repair: repair.map(RetransmissionRequester::new),
        }
    }

    fn stats_mut(&mut self, spatial: u8, temporal: u8) -> Option<&mut TemporalStats> {
        self.temporal
            .get_mut(usize::from(spatial))?
            .get_mut(usize::from(temporal))
    }
}

fn active(stats: &TemporalStats, now: Instant) -> bool {
    stats
        .last_packet
        .is_some_and(|t| now.saturating_duration_since(t) <= LAYER_ACTIVE_TIMEOUT)
}

/// A ring of original packets, keyed by (SSRC, sequence number).
#[derive(Debug, Default)]
pub(crate) struct PacketCache {
    slots: Vec<CachedPacket>,
}

#[derive(Debug, Default)]
struct CachedPacket {
    ssrc: u32,
    seq: u16,
    valid: bool,
    data: Vec<u8>,
}

impl PacketCache {
    fn slot(&self, ssrc: u32, seq: u16) -> usize {
        // Encodings of one source get distinct slots for the same sequence number.
        (usize::from(seq) + (ssrc as usize).wrapping_mul(97)) % self.slots.len().max(1)
    }

    fn insert(&mut self, ssrc: u32, seq: u16, packet: &[u8]) {
        if self.slots.is_empty() {
            self.slots
                .resize_with(PACKET_CACHE_SLOTS, CachedPacket::default);
        }
        let index = self.slot(ssrc, seq);
        if let Some(slot) = self.slots.get_mut(index) {
            slot.data.clear();
            slot.data.extend_from_slice(packet);
            slot.ssrc = ssrc;
            slot.seq = seq;
            slot.valid = true;
        }
    }

    /// The original packet `seq` of `ssrc`, if still cached.
    pub(crate) fn get(&self, ssrc: u32, seq: u16) -> Option<&[u8]> {
        let slot = self.slots.get(self.slot(ssrc, seq))?;
        (slot.valid && slot.ssrc == ssrc && slot.seq == seq).then_some(slot.data.as_slice())
    }
}

/// One published source.
#[derive(Debug)]
pub(crate) struct Source {
    /// The Jitsi source name (`<endpoint>-v0`).
    pub(crate) name: String,
    /// The publishing endpoint.
    pub(crate) owner: EndpointId,
    /// Audio or video.
    pub(crate) kind: MediaKind,
    /// Camera, desktop, or disabled.
    pub(crate) video_type: VideoType,
    /// Encodings, lowest first (one for audio and SVC).
    pub(crate) encodings: Vec<Encoding>,
    /// How layers are carried, known from the first video packet.
    pub(crate) scheme: LayerScheme,
    /// Original packets for NACKs (video only).
    pub(crate) cache: PacketCache,
    /// The dependency descriptor state of the source's stream.
    pub(crate) dependency_reader: DependencyDescriptorReader,
    /// Highest temporal layer seen + 1.
    temporal_layers: u8,
    /// Highest spatial layer seen + 1 (SVC).
    spatial_layers: u8,
    /// Start of the current rate window.
    window_start: Option<Instant>,
}

impl Source {
    /// A source with the given SSRCs: `ssrcs` lowest encoding first, `rtx` pairs (media, rtx);
    /// video encodings get a retransmission requester when `repair` is enabled.
    pub(crate) fn new(
        name: String,
        owner: EndpointId,
        kind: MediaKind,
        video_type: VideoType,
        ssrcs: &[u32],
        rtx: &[(u32, u32)],
        repair: RepairConfig,
    ) -> Self {
        let repair = (kind == MediaKind::Video && repair.enabled).then_some(repair);
        let encodings = ssrcs
            .iter()
            .map(|&ssrc| {
                let rtx_ssrc = rtx.iter().find(|(m, _)| *m == ssrc).map(|(_, r)| *r);
                Encoding::new(ssrc, rtx_ssrc, repair)
            })
            .collect();
        Self {
            name,
            owner,
            kind,
            video_type,
            encodings,
            scheme: LayerScheme::Simulcast,
            cache: PacketCache::default(),
            dependency_reader: DependencyDescriptorReader::new(),
            temporal_layers: 1,
            spatial_layers: 1,
            window_start: None,
        }
    }

    /// The SSRC receivers see this source on: the first (lowest) encoding's, as Jitsi
    /// clients expect without SSRC rewriting.
    pub(crate) fn primary_ssrc(&self) -> Option<u32> {
        self.encodings.first().map(|e| e.ssrc)
    }

    /// The RTX SSRC receivers see retransmissions on.
    pub(crate) fn primary_rtx_ssrc(&self) -> Option<u32> {
        self.encodings.first().and_then(|e| e.rtx_ssrc)
    }

    /// Records a parsed packet; returns whether the set of active layers changed (a new
    /// layer appeared), which calls for a new allocation.
    pub(crate) fn record(
        &mut self,
        now: Instant,
        info: &mut PacketInfo,
        dimensions: Option<(u16, u16)>,
        packet: &RtpPacket<&[u8]>,
    ) -> bool {
        // Decided on the first packet, before any receiver's selection: one SSRC carrying
        // VP9 or the dependency descriptor is SVC (a single-layer stream is SVC with one
        // layer); several SSRCs are simulcast.
        if self.encodings.len() == 1 && (info.codec == CodecName::Vp9 || info.dependency.is_some())
        {
            self.scheme = LayerScheme::Svc;
        }
        let Some(encoding) = self.encodings.get_mut(usize::from(info.encoding)) else {
            return false;
        };
        let seq = packet.sequence_number();
        info.late = encoding
            .highest_seq
            .is_some_and(|highest| !seq_newer(seq, highest));
        if !info.late {
            encoding.highest_seq = Some(seq);
        }
        if matches!(info.codec, CodecName::H264 | CodecName::Av1) && info.dependency.is_none() {
            if info.late {
                // Where a late packet's frame starts is not known from the marker chain,
                // which it must not break either.
                info.frame_start = false;
                info.picture_start = false;
            } else {
                info.frame_start = encoding.after_marker;
                info.picture_start = info.frame_start;
                encoding.after_marker = info.marker;
            }
        }
        if let Some((_, height)) = dimensions {
            if let Some(slot) = encoding.heights.get_mut(usize::from(info.spatial)) {
                *slot = Some(height);
            }
        }
        let spatial = info.spatial.min(MAX_SPATIAL as u8 - 1);
        let temporal = info.temporal.min(MAX_TEMPORAL as u8 - 1);
        info.spatial = spatial;
        info.temporal = temporal;
        let mut changed = false;
        if let Some(stats) = encoding.stats_mut(spatial, temporal) {
            // A late packet (a repair) is no sign of life: a layer that stopped must not
            // come back for it.
            if !info.late {
                changed = !active(stats, now);
                stats.last_packet = Some(now);
                stats.was_active = true;
            }
            stats.bytes += packet.payload().len() as u64;
        }
        if temporal + 1 > self.temporal_layers {
            self.temporal_layers = temporal + 1;
            changed = true;
        }
        if spatial + 1 > self.spatial_layers {
            self.spatial_layers = spatial + 1;
            changed = true;
        }
        if self.kind == MediaKind::Video {
            self.cache
                .insert(packet.ssrc(), packet.sequence_number(), packet.as_bytes());
        }
        changed
    }

    /// Closes a rate window; returns whether the set of active layers changed.
    pub(crate) fn tick(&mut self, now: Instant) -> bool {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed < RATE_WINDOW {
            return false;
        }
        self.window_start = Some(now);
        let seconds = elapsed.as_secs_f64();
        let mut changed = false;
        for encoding in &mut self.encodings {
            for stats in encoding.temporal.iter_mut().flatten() {
                let is_active = active(stats, now);
                if is_active != stats.was_active {
                    stats.was_active = is_active;
                    changed = true;
                }
                stats.bitrate_bps = (stats.bytes as f64 * 8.0 / seconds) as u64;
                stats.bytes = 0;
            }
        }
        changed
    }

    /// The layers for the allocator, ascending quality: for simulcast (encoding, temporal),
    /// for SVC (spatial, temporal), in that order. Index = outer * temporal_layers + temporal.
    pub(crate) fn layers(&self, now: Instant, out: &mut Vec<LayerDescription>) {
        out.clear();
        let temporal_layers = usize::from(self.temporal_layers);
        let outer: Vec<(usize, usize)> = match self.scheme {
            LayerScheme::Simulcast => (0..self.encodings.len()).map(|e| (e, 0)).collect(),
            LayerScheme::Svc => (0..usize::from(self.spatial_layers))
                .map(|s| (0, s))
                .collect(),
        };
        let count = outer.len();
        for (position, &(encoding_index, spatial)) in outer.iter().enumerate() {
            let Some(encoding) = self.encodings.get(encoding_index) else {
                continue;
            };
            let height = encoding
                .heights
                .get(spatial)
                .copied()
                .flatten()
                .unwrap_or_else(|| assumed_height(position, count));
            let mut bitrate = 0u64;
            for temporal in 0..temporal_layers {
                let (stats_active, rate) = match self.scheme {
                    LayerScheme::Simulcast => encoding
                        .temporal
                        .first()
                        .and_then(|row| row.get(temporal))
                        .map_or((false, 0), |s| (active(s, now), s.bitrate_bps)),
                    LayerScheme::Svc => {
                        // An SVC layer needs every lower spatial layer of the same temporal ones.
                        let mut all = true;
                        let mut rate = 0;
                        for s in 0..=spatial {
                            if let Some(stats) =
                                encoding.temporal.get(s).and_then(|row| row.get(temporal))
                            {
                                all &= active(stats, now);
                                rate += stats.bitrate_bps;
                            }
                        }
                        (all, rate)
                    }
                };
                bitrate += rate;
                out.push(LayerDescription {
                    encoding: position as u8,
                    temporal: temporal as u8,
                    height,
                    // Nominal, not measured: a one-second count jitters around the encoder's
                    // rate (31 frames in a window), which must not fail a 30 fps limit.
                    frame_rate: assumed_frame_rate(temporal, temporal_layers),
                    bitrate_bps: bitrate,
                    active: stats_active,
                });
            }
        }
    }

    /// Asks for a key frame on `encoding` unless one was asked less than `interval` ago;
    /// returns the SSRC to send the PLI for.
    pub(crate) fn keyframe_request(
        &mut self,
        now: Instant,
        encoding: u8,
        interval: Duration,
    ) -> Option<u32> {
        let encoding = self.encodings.get_mut(usize::from(encoding))?;
        if encoding
            .last_keyframe_request
            .is_some_and(|t| now.saturating_duration_since(t) < interval)
        {
            return None;
        }
        encoding.last_keyframe_request = Some(now);
        Some(encoding.ssrc)
    }
}

/// Height assumed for encoding `position` of `count` until a key frame tells: the top one
/// 720p, each lower one half of the next (Chromium's simulcast ladder).
fn assumed_height(position: usize, count: usize) -> u16 {
    let steps = count.saturating_sub(position + 1).min(4);
    720 >> steps
}

/// Frame rate assumed for temporal layer `temporal` of `layers` at 30 fps in total.
fn assumed_frame_rate(temporal: usize, layers: usize) -> f64 {
    let steps = layers.saturating_sub(temporal + 1).min(4) as i32;
    30.0 / 2f64.powi(steps)
}
