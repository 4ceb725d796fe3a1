//! [`Av1StreamChecker`]: what an AV1 receiver would make of the thinned SVC stream, read
//! through the dependency descriptor as libwebrtc's receiver reads it.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use relais_rtp::codec::av1::{self, DependencyDescriptor, DependencyDescriptorReader};
use relais_rtp::rtp::RtpPacket;

use super::super::media::{
    av1_aggregation_header, FrameStamp, AV1_AGGREGATION_HEADER_LEN, EXT_DEPENDENCY_DESCRIPTOR,
};
use super::{
    timestamp_backwards, Arrival, Delivery, InOrder, PacketCounts, RecentFrames, RtpView,
    ViolationKind, Violations,
};

/// Temporal units whose layers [`Av1StreamChecker::max_layers_over_last`] remembers.
const RECENT_UNITS: usize = 300;

/// What one received SSRC's AV1 stream did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Av1StreamStats {
    /// Packet accounting.
    pub packets: PacketCounts,
    /// Temporal units with at least one decoded layer frame.
    pub units_decoded: u64,
    /// Layer frames decoded per `(spatial id, temporal id)`.
    pub frames_decoded: BTreeMap<(u8, u8), u64>,
    /// Key frames decoded.
    pub keyframes_decoded: u64,
    /// Layer frames incomplete because of packet loss.
    pub frames_lost: u64,
    /// Complete layer frames that could not be decoded (a reference missing).
    pub frames_undecodable: u64,
    /// Changes of sender from one temporal unit to the next.
    pub source_switches: u64,
    /// Sender of the last decoded temporal unit.
    pub current_source: Option<u8>,
    /// Render resolutions per spatial layer from the last structure.
    pub resolutions: Vec<(u32, u32)>,
    /// Top spatial layer decoded in the last decoded temporal unit.
    pub decoded_spatial_id: Option<u8>,
    /// Height of that layer, from the structure.
    pub decoded_height: Option<u32>,
}

/// The AV1 stream on one received SSRC (or several), after the SFU's decode-target
/// selection. Reads the dependency descriptor (extension id 11 unless told otherwise) with
/// its own [`DependencyDescriptorReader`] per SSRC, assembles temporal units (one RTP
/// timestamp, ended by the marker bit) and layer frames (one frame number, start to end of
/// frame), and decodes a frame when it is complete and every frame its frame diffs name was
/// decoded (the key frame references nothing). The payload's [`FrameStamp`] is the
/// bitstream's truth: the descriptor must agree with it.
#[derive(Debug, Clone)]
pub struct Av1StreamChecker {
    streams: BTreeMap<u32, Av1Stream>,
    violations: Violations,
    layer_limit: Option<(u8, u8)>,
    last_ssrc: Option<u32>,
    extension_id: u8,
}

// Named through `check`'s re-export, so that the re-export counts as used in the test
// binaries that include the simulator without checking AV1.
impl Default for super::Av1StreamChecker {
    fn default() -> Self {
        Self::new()
    }
}

impl Av1StreamChecker {
    /// A checker that has seen nothing, with no layer limit, reading the descriptor from
    /// extension id [`EXT_DEPENDENCY_DESCRIPTOR`].
    pub fn new() -> Self {
        Self::with_extension_id(EXT_DEPENDENCY_DESCRIPTOR)
    }

    /// A checker reading the descriptor from extension `id`.
    pub fn with_extension_id(id: u8) -> Self {
        Self {
            streams: BTreeMap::new(),
            violations: Violations::default(),
            layer_limit: None,
            last_ssrc: None,
            extension_id: id,
        }
    }

    /// From now on, every layer frame above spatial layer `max_spatial` or temporal layer
    /// `max_temporal` is a [`ViolationKind::LayerAboveLimit`].
    pub fn set_layer_limit(&mut self, max_spatial: u8, max_temporal: u8) {
        self.layer_limit = Some((max_spatial, max_temporal));
    }

    /// Removes the layer limit.
    pub fn clear_layer_limit(&mut self) {
        self.layer_limit = None;
    }

    /// Feeds one received packet (plaintext RTP, AV1 payload, dependency descriptor).
    pub fn on_packet(&mut self, packet: &[u8]) {
        let Some(rtp) = RtpView::parse(packet) else {
            self.violations.push(
                ViolationKind::Unparsable,
                0,
                0,
                "not an RTP packet".to_owned(),
            );
            return;
        };
        let has_descriptor = RtpPacket::parse(packet)
            .ok()
            .and_then(|p| p.extension(self.extension_id).map(<[u8]>::len))
            .is_some_and(|len| len >= av1::MANDATORY_LEN);
        if !has_descriptor || rtp.payload.len() < AV1_AGGREGATION_HEADER_LEN {
            self.violations.push(
                ViolationKind::Unparsable,
                rtp.ssrc,
                rtp.sequence_number,
                "no dependency descriptor or no AV1 payload".to_owned(),
            );
            return;
        }
        self.last_ssrc = Some(rtp.ssrc);
        let stream = self.streams.entry(rtp.ssrc).or_insert_with(|| Av1Stream {
            ssrc: rtp.ssrc,
            awaiting_keyframe: true,
            ..Av1Stream::default()
        });
        stream.stats.packets.received += 1;
        let mut delivered = Vec::new();
        match stream
            .order
            .push(rtp.sequence_number, packet.to_vec(), &mut delivered)
        {
            Arrival::Accepted => {}
            Arrival::Late => stream.stats.packets.late += 1,
            Arrival::Duplicate => {
                stream.stats.packets.duplicates += 1;
                self.violations.push(
                    ViolationKind::DuplicatePacket,
                    rtp.ssrc,
                    rtp.sequence_number,
                    "received twice".to_owned(),
                );
            }
        }
        for delivery in delivered {
            stream.deliver(
                delivery,
                self.extension_id,
                self.layer_limit,
                &mut self.violations,
            );
        }
    }

    /// Declares every hole still open lost and processes what was waiting behind it. The
    /// temporal unit being assembled stays open: the run may have ended in its middle.
    pub fn flush(&mut self) {
        for stream in self.streams.values_mut() {
            let mut delivered = Vec::new();
            stream.order.flush(&mut delivered);
            for delivery in delivered {
                stream.deliver(
                    delivery,
                    self.extension_id,
                    self.layer_limit,
                    &mut self.violations,
                );
            }
        }
    }

    /// The SSRCs seen.
    pub fn ssrcs(&self) -> Vec<u32> {
        self.streams.keys().copied().collect()
    }

    /// What the stream on `ssrc` did.
    pub fn stats(&self, ssrc: u32) -> Option<&Av1StreamStats> {
        self.streams.get(&ssrc).map(|stream| &stream.stats)
    }

    /// Highest spatial and highest temporal id received in the last `units` temporal units
    /// (at most 300) on the SSRC that received the last packet.
    pub fn max_layers_over_last(&self, units: usize) -> Option<(u8, u8)> {
        let stream = self.streams.get(&self.last_ssrc?)?;
        stream
            .recent_layers
            .iter()
            .rev()
            .take(units)
            .copied()
            .reduce(|(s, t), (s2, t2)| (s.max(s2), t.max(t2)))
    }

    /// Height of the last decoded temporal unit on the SSRC that received the last packet.
    pub fn decoded_height(&self) -> Option<u32> {
        self.stats(self.last_ssrc?)?.decoded_height
    }

    /// Temporal units decoded over all SSRCs.
    pub fn units_decoded(&self) -> u64 {
        self.streams
            .values()
            .map(|stream| stream.stats.units_decoded)
            .sum()
    }

    /// Layer frames of `(spatial id, temporal id)` decoded over all SSRCs.
    pub fn frames_decoded(&self, spatial_id: u8, temporal_id: u8) -> u64 {
        self.streams
            .values()
            .filter_map(|stream| stream.stats.frames_decoded.get(&(spatial_id, temporal_id)))
            .sum()
    }

    /// What went wrong so far.
    pub fn violations(&self) -> &Violations {
        &self.violations
    }

    /// Flushes, then panics if anything went wrong.
    pub fn assert_clean(&mut self) {
        self.flush();
        self.violations.assert_clean();
    }

    /// Flushes, then panics on any violation not of an `allowed` kind.
    pub fn assert_only(&mut self, allowed: &[ViolationKind]) {
        self.flush();
        self.violations.assert_only(allowed);
    }
}

#[derive(Debug, Clone)]
struct Av1Packet {
    rtp: RtpView,
    descriptor: DependencyDescriptor,
}

#[derive(Debug, Clone)]
struct UnitInProgress {
    timestamp: u32,
    packets: Vec<Av1Packet>,
    /// Packets were declared lost while it was assembled.
    loss: bool,
}

/// A decoded or undecodable layer frame: `(sender, frame number)`.
type FrameKey = (u8, u16);

#[derive(Debug, Clone, Default)]
struct Av1Stream {
    ssrc: u32,
    order: InOrder,
    reader: DependencyDescriptorReader,
    unit: Option<UnitInProgress>,
    /// Timestamp of the last finished temporal unit.
    previous_timestamp: Option<u32>,
    /// Frame number of the last layer frame received.
    previous_frame_number: Option<u16>,
    loss_since_previous: bool,
    source: Option<u8>,
    awaiting_keyframe: bool,
    loss_since_keyframe: bool,
    /// An unresolvable descriptor was reported; quiet until the next structure.
    unresolvable_reported: bool,
    decoded: RecentFrames<FrameKey>,
    undecodable: RecentFrames<FrameKey>,
    /// `(top spatial id, temporal id)` received per temporal unit, oldest first.
    recent_layers: VecDeque<(u8, u8)>,
    stats: Av1StreamStats,
}

impl Av1Stream {
    fn deliver(
        &mut self,
        delivery: Delivery,
        extension_id: u8,
        limit: Option<(u8, u8)>,
        log: &mut Violations,
    ) {
        match delivery {
            Delivery::Lost { first, count } => {
                self.stats.packets.lost += count;
                log.push(
                    ViolationKind::SequenceGap,
                    self.ssrc,
                    first,
                    format!("{count} packet(s) from seq {first} never arrived"),
                );
                self.loss_since_previous = true;
                self.loss_since_keyframe = true;
                if let Some(unit) = &mut self.unit {
                    unit.loss = true;
                }
            }
            Delivery::Packet(bytes) => {
                let rtp = RtpView::parse(&bytes).unwrap();
                let value = RtpPacket::parse(bytes.as_slice())
                    .unwrap()
                    .extension(extension_id)
                    .unwrap()
                    .to_vec();
                let descriptor = match self.reader.read(&value) {
                    Ok(descriptor) => {
                        if descriptor.carries_structure {
                            self.unresolvable_reported = false;
                        }
                        descriptor
                    }
                    Err(error) => {
                        if !self.unresolvable_reported {
                            self.unresolvable_reported = true;
                            let kind = if self.reader.structure().is_none() {
                                ViolationKind::NoKeyframeAtStart
                            } else {
                                ViolationKind::Unparsable
                            };
                            log.push(
                                kind,
                                self.ssrc,
                                rtp.sequence_number,
                                format!("dependency descriptor not resolvable: {error:?}"),
                            );
                        }
                        return;
                    }
                };
                if self.previous_timestamp == Some(rtp.timestamp) && self.unit.is_none() {
                    log.push(
                        ViolationKind::MarkerNotAtEnd,
                        self.ssrc,
                        rtp.sequence_number,
                        format!(
                            "frame {} S{} of a temporal unit after its marker",
                            descriptor.frame_number, descriptor.spatial_id
                        ),
                    );
                    // A receiver has handed the unit to the decoder: the frame is gone.
                    self.undecodable
                        .insert((self.source.unwrap_or(0), descriptor.frame_number));
                    return;
                }
                if self
                    .unit
                    .as_ref()
                    .is_some_and(|unit| unit.timestamp != rtp.timestamp)
                {
                    self.finish_unit(limit, log);
                }
                let marker = rtp.marker;
                self.unit
                    .get_or_insert_with(|| UnitInProgress {
                        timestamp: rtp.timestamp,
                        packets: Vec::new(),
                        loss: false,
                    })
                    .packets
                    .push(Av1Packet { rtp, descriptor });
                if marker {
                    self.finish_unit(limit, log);
                }
            }
        }
    }

    /// Checks the payload of one layer frame; returns its stamp and whether it is complete,
    /// or `None` if the payload is corrupt.
    fn check_frame(
        &mut self,
        packets: &[&Av1Packet],
        loss: bool,
        log: &mut Violations,
    ) -> Option<(FrameStamp, bool)> {
        let first = packets[0];
        let d = first.descriptor;
        let mut stamps = Vec::with_capacity(packets.len());
        for packet in packets {
            match FrameStamp::parse_and_verify(&packet.rtp.payload[AV1_AGGREGATION_HEADER_LEN..]) {
                Ok(stamp) => stamps.push(stamp),
                Err(error) => {
                    log.push(
                        ViolationKind::CorruptPayload,
                        self.ssrc,
                        packet.rtp.sequence_number,
                        error,
                    );
                    return None;
                }
            }
        }
        let stamp = stamps[0];
        // The descriptor must describe the bitstream: layer, frame number, references.
        let dd_refs: BTreeSet<u16> = d.referenced_frames().collect();
        let stamp_refs: BTreeSet<u16> = stamp.references().map(|r| r.picture_id).collect();
        if (stamp.layer, stamp.temporal_id, stamp.picture_id)
            != (d.spatial_id, d.temporal_id, d.frame_number)
            || dd_refs != stamp_refs
        {
            log.push(
                ViolationKind::CorruptPayload,
                self.ssrc,
                first.rtp.sequence_number,
                format!(
                    "descriptor S{}T{} frame {} refs {dd_refs:?} disagrees with the bitstream S{}T{} frame {} refs {stamp_refs:?}",
                    d.spatial_id, d.temporal_id, d.frame_number,
                    stamp.layer, stamp.temporal_id, stamp.picture_id
                ),
            );
            return None;
        }
        let complete = d.start_of_frame
            && packets.last().unwrap().descriptor.end_of_frame
            && stamps.len() == usize::from(stamp.packet_count)
            && stamps.iter().enumerate().all(|(index, s)| {
                usize::from(s.packet_index) == index
                    && (s.source, s.layer, s.picture_id)
                        == (stamp.source, stamp.layer, stamp.picture_id)
            });
        if complete {
            // Aggregation headers: one OBU element across the packets, N on a key frame.
            let count = packets.len();
            let keyframe = d.carries_structure;
            if let Some((index, packet)) = packets.iter().enumerate().find(|(index, p)| {
                p.rtp.payload[0] != av1_aggregation_header(*index, count, keyframe)
            }) {
                let kind = if packet.rtp.payload[0] & 0x08 != 0 || (index == 0 && keyframe) {
                    ViolationKind::BadKeyframe
                } else {
                    ViolationKind::CorruptPayload
                };
                log.push(
                    kind,
                    self.ssrc,
                    packet.rtp.sequence_number,
                    format!(
                        "aggregation header {:#04x} on packet {index} of {count} of frame {}{}",
                        packet.rtp.payload[0],
                        d.frame_number,
                        if keyframe { " (key frame)" } else { "" }
                    ),
                );
            }
        } else if loss {
            self.stats.frames_lost += 1;
        } else {
            let indices: Vec<u16> = stamps.iter().map(|s| s.packet_index).collect();
            log.push(
                ViolationKind::IncompleteFrame,
                self.ssrc,
                first.rtp.sequence_number,
                format!(
                    "frame {} S{}: packets {indices:?} of {}",
                    d.frame_number, d.spatial_id, stamp.packet_count
                ),
            );
        }
        Some((stamp, complete))
    }

    fn finish_unit(&mut self, limit: Option<(u8, u8)>, log: &mut Violations) {
        let Some(unit) = self.unit.take() else {
            return;
        };
        let loss = unit.loss || self.loss_since_previous;
        self.loss_since_previous = false;
        let first = &unit.packets[0];
        let last = unit.packets.last().unwrap();
        let at = first.rtp.sequence_number;
        if let Some(previous) = self.previous_timestamp {
            if timestamp_backwards(unit.timestamp, previous) {
                log.push(
                    ViolationKind::TimestampBackwards,
                    self.ssrc,
                    at,
                    format!("timestamp {} after {previous}", unit.timestamp),
                );
            }
        }
        self.previous_timestamp = Some(unit.timestamp);
        if !last.rtp.marker && !loss {
            log.push(
                ViolationKind::MissingMarker,
                self.ssrc,
                last.rtp.sequence_number,
                format!(
                    "temporal unit ending with frame {} S{} has no marker bit",
                    last.descriptor.frame_number, last.descriptor.spatial_id
                ),
            );
        }

        // Layer frames: consecutive packets with one frame number.
        let mut frames: Vec<Vec<&Av1Packet>> = Vec::new();
        for packet in &unit.packets {
            match frames.last_mut() {
                Some(frame)
                    if frame[0].descriptor.frame_number == packet.descriptor.frame_number =>
                {
                    frame.push(packet)
                }
                _ => frames.push(vec![packet]),
            }
        }
        for frame in &frames {
            let d = frame[0].descriptor;
            if let Some(previous) = self.previous_frame_number {
                let step = d.frame_number.wrapping_sub(previous) as i16;
                if step <= 0 {
                    log.push(
                        ViolationKind::PictureIdJump,
                        self.ssrc,
                        frame[0].rtp.sequence_number,
                        format!("frame number {} after {previous}", d.frame_number),
                    );
                }
            }
            self.previous_frame_number = Some(d.frame_number);
        }
        let layers: Vec<(u8, u8)> = frames
            .iter()
            .map(|f| (f[0].descriptor.spatial_id, f[0].descriptor.temporal_id))
            .collect();
        let top_spatial = layers.iter().map(|&(s, _)| s).max().unwrap_or(0);
        let top_temporal = layers.iter().map(|&(_, t)| t).max().unwrap_or(0);
        self.recent_layers.push_back((top_spatial, top_temporal));
        if self.recent_layers.len() > RECENT_UNITS {
            self.recent_layers.pop_front();
        }
        if let Some((max_spatial, max_temporal)) = limit {
            if let Some((index, &(s, t))) = layers
                .iter()
                .enumerate()
                .find(|(_, &(s, t))| s > max_spatial || t > max_temporal)
            {
                log.push(
                    ViolationKind::LayerAboveLimit,
                    self.ssrc,
                    frames[index][0].rtp.sequence_number,
                    format!(
                        "frame {} is S{s}T{t}, limit S{max_spatial}T{max_temporal}",
                        frames[index][0].descriptor.frame_number
                    ),
                );
            }
        }
        // Spatial layers ascending, one temporal layer per unit.
        let ascending = layers
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 == w[1].1);
        if !ascending && !loss {
            log.push(
                ViolationKind::LayerHole,
                self.ssrc,
                at,
                format!("temporal unit has layer frames (S, T) {layers:?}"),
            );
        }

        let mut checked: Vec<(DependencyDescriptor, FrameStamp, bool)> = Vec::new();
        for frame in &frames {
            let Some((stamp, complete)) = self.check_frame(frame, loss, log) else {
                return;
            };
            checked.push((frame[0].descriptor, stamp, complete));
        }
        // A packet carrying the structure (or the N bit) anywhere but at a key frame start.
        for packet in &unit.packets {
            let n_bit = packet.rtp.payload[0] & 0x08 != 0;
            let d = &packet.descriptor;
            if (d.carries_structure || n_bit)
                && !(d.carries_structure && n_bit && d.start_of_frame && d.spatial_id == 0)
            {
                log.push(
                    ViolationKind::BadKeyframe,
                    self.ssrc,
                    packet.rtp.sequence_number,
                    format!(
                        "frame {}: structure {}, N bit {n_bit}, start of frame {}, S{}",
                        d.frame_number, d.carries_structure, d.start_of_frame, d.spatial_id
                    ),
                );
            }
        }

        let Some(&(base, base_stamp, _)) = checked.first() else {
            return;
        };
        let keyframe = base.carries_structure && base.start_of_frame && base.spatial_id == 0;
        if keyframe {
            if let Some(structure) = self.reader.structure() {
                self.stats.resolutions = structure
                    .resolutions()
                    .iter()
                    .map(|r| (r.width, r.height))
                    .collect();
            }
        }
        let source = base_stamp.source;
        if self.source != Some(source) {
            match self.source {
                Some(previous) => {
                    self.stats.source_switches += 1;
                    if !keyframe {
                        log.push(
                            ViolationKind::SwitchWithoutKeyframe,
                            self.ssrc,
                            at,
                            format!(
                                "from sender {previous} to sender {source} at frame {}, not a key frame",
                                base.frame_number
                            ),
                        );
                    }
                }
                None if !keyframe => log.push(
                    ViolationKind::NoKeyframeAtStart,
                    self.ssrc,
                    at,
                    format!(
                        "the stream starts with frame {} S{}T{}, not a key frame",
                        base.frame_number, base.spatial_id, base.temporal_id
                    ),
                ),
                None => {}
            }
            self.decoded.clear();
            self.source = Some(source);
            if !keyframe {
                self.awaiting_keyframe = true;
            }
        }

        let mut top_decoded = None;
        for &(d, stamp, complete) in &checked {
            let key = (source, d.frame_number);
            if !complete {
                self.undecodable.insert(key);
                continue;
            }
            let is_key = d.carries_structure && d.spatial_id == 0 && d.frame_diffs.is_empty();
            let missing: Vec<u16> = d
                .referenced_frames()
                .filter(|number| !self.decoded.contains(&(source, *number)))
                .collect();
            if !missing.is_empty() || (self.awaiting_keyframe && !is_key) {
                self.stats.frames_undecodable += 1;
                let cascade = self.awaiting_keyframe
                    || missing
                        .iter()
                        .any(|number| self.undecodable.contains(&(source, *number)));
                self.undecodable.insert(key);
                if !cascade {
                    let kind = if self.loss_since_keyframe || loss {
                        ViolationKind::UndecodableAfterLoss
                    } else {
                        ViolationKind::MissingReference
                    };
                    // Known missing from now on: what depends on them is a consequence.
                    for number in &missing {
                        self.undecodable.insert((source, *number));
                    }
                    log.push(
                        kind,
                        self.ssrc,
                        at,
                        format!(
                            "frame {} S{}T{} of sender {source} references frames {missing:?}, not decoded",
                            d.frame_number, d.spatial_id, d.temporal_id
                        ),
                    );
                }
                continue;
            }
            self.decoded.insert(key);
            *self
                .stats
                .frames_decoded
                .entry((d.spatial_id, stamp.temporal_id))
                .or_default() += 1;
            top_decoded = Some(d.spatial_id);
            if is_key {
                // The decoder has a valid state again, for the upper layers of this unit too.
                self.awaiting_keyframe = false;
                self.loss_since_keyframe = false;
            }
        }

        let Some(top) = top_decoded else {
            return;
        };
        self.stats.units_decoded += 1;
        self.stats.current_source = Some(source);
        self.stats.decoded_spatial_id = Some(top);
        self.stats.decoded_height = self
            .stats
            .resolutions
            .get(usize::from(top))
            .map(|&(_, height)| height);
        if keyframe {
            self.stats.keyframes_decoded += 1;
        }
    }
}
