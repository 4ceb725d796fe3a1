//! [`Vp9StreamChecker`]: what a VP9 receiver would make of the thinned SVC stream.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use std::collections::{BTreeMap, VecDeque};

use relais_rtp::codec::vp9::{self, Vp9Descriptor};

use super::super::media::{FrameRef, FrameStamp};
use super::{
    picture_id_distance, timestamp_backwards, Arrival, Delivery, InOrder, PacketCounts,
    RecentFrames, RtpView, ViolationKind, Violations,
};

/// Pictures whose layers [`Vp9StreamChecker::max_layers_over_last`] remembers.
const RECENT_PICTURES: usize = 300;

/// What one received SSRC's VP9 stream did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vp9StreamStats {
    /// Packet accounting.
    pub packets: PacketCounts,
    /// Pictures with at least one decoded layer frame.
    pub pictures_decoded: u64,
    /// Layer frames decoded per `(spatial id, temporal id)`.
    pub layer_frames_decoded: BTreeMap<(u8, u8), u64>,
    /// Key pictures decoded.
    pub keyframes_decoded: u64,
    /// Layer frames incomplete because of packet loss.
    pub layer_frames_lost: u64,
    /// Complete layer frames that could not be decoded (a reference missing).
    pub layer_frames_undecodable: u64,
    /// Changes of sender from one picture to the next.
    pub source_switches: u64,
    /// Sender of the last decoded picture.
    pub current_source: Option<u8>,
    /// Resolutions per spatial layer from the last scalability structure.
    pub resolutions: Vec<(u16, u16)>,
    /// Top spatial layer decoded in the last decoded picture.
    pub decoded_spatial_id: Option<u8>,
    /// Height of that layer, from the scalability structure.
    pub decoded_height: Option<u16>,
}

/// The VP9 SVC stream on one received SSRC (or several), after the SFU's layer selection.
#[derive(Debug, Clone, Default)]
pub struct Vp9StreamChecker {
    streams: BTreeMap<u32, Vp9Stream>,
    violations: Violations,
    layer_limit: Option<(u8, u8)>,
    last_ssrc: Option<u32>,
}

impl Vp9StreamChecker {
    /// A checker that has seen nothing, with no layer limit.
    pub fn new() -> Self {
        Self::default()
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

    /// Feeds one received packet (plaintext RTP, VP9 payload).
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
        if let Err(error) = vp9::parse(&rtp.payload) {
            self.violations.push(
                ViolationKind::Unparsable,
                rtp.ssrc,
                rtp.sequence_number,
                format!("VP9 descriptor: {error}"),
            );
            return;
        }
        self.last_ssrc = Some(rtp.ssrc);
        let stream = self.streams.entry(rtp.ssrc).or_insert_with(|| Vp9Stream {
            ssrc: rtp.ssrc,
            awaiting_keyframe: true,
            ..Vp9Stream::default()
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
            stream.deliver(delivery, self.layer_limit, &mut self.violations);
        }
    }

    /// Declares every hole still open lost and processes what was waiting behind it. The
    /// picture being assembled stays open: the run may have ended in its middle.
    pub fn flush(&mut self) {
        for stream in self.streams.values_mut() {
            let mut delivered = Vec::new();
            stream.order.flush(&mut delivered);
            for delivery in delivered {
                stream.deliver(delivery, self.layer_limit, &mut self.violations);
            }
        }
    }

    /// The SSRCs seen.
    pub fn ssrcs(&self) -> Vec<u32> {
        self.streams.keys().copied().collect()
    }

    /// What the stream on `ssrc` did.
    pub fn stats(&self, ssrc: u32) -> Option<&Vp9StreamStats> {
        self.streams.get(&ssrc).map(|stream| &stream.stats)
    }

    /// Highest spatial and highest temporal layer received in the last `pictures` pictures
    /// (at most 300) on the SSRC that received the last packet.
    pub fn max_layers_over_last(&self, pictures: usize) -> Option<(u8, u8)> {
        let stream = self.streams.get(&self.last_ssrc?)?;
        stream
            .recent_layers
            .iter()
            .rev()
            .take(pictures)
            .copied()
            .reduce(|(s, t), (s2, t2)| (s.max(s2), t.max(t2)))
    }

    /// Height of the last decoded picture on the SSRC that received the last packet.
    pub fn decoded_height(&self) -> Option<u16> {
        self.stats(self.last_ssrc?)?.decoded_height
    }

    /// Pictures decoded over all SSRCs.
    pub fn pictures_decoded(&self) -> u64 {
        self.streams
            .values()
            .map(|stream| stream.stats.pictures_decoded)
            .sum()
    }

    /// Layer frames of `(spatial id, temporal id)` decoded over all SSRCs.
    pub fn layer_frames_decoded(&self, spatial_id: u8, temporal_id: u8) -> u64 {
        self.streams
            .values()
            .filter_map(|stream| {
                stream
                    .stats
                    .layer_frames_decoded
                    .get(&(spatial_id, temporal_id))
            })
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
struct Vp9Packet {
    rtp: RtpView,
    descriptor: Vp9Descriptor,
}

#[derive(Debug, Clone)]
struct PictureInProgress {
    timestamp: u32,
    packets: Vec<Vp9Packet>,
    /// Packets were declared lost while it was assembled.
    loss: bool,
}

#[derive(Debug, Clone, Copy)]
struct PreviousPicture {
    timestamp: u32,
    picture_id: Option<u16>,
    tl0_pic_idx: Option<u8>,
}

/// A decoded or undecodable layer frame: `(sender, spatial id, original picture id)`.
type LayerFrameKey = (u8, u8, u16);

/// One layer frame's packets and stamps.
struct LayerFrame<'a> {
    spatial_id: u8,
    temporal_id: u8,
    packets: Vec<&'a Vp9Packet>,
}

#[derive(Debug, Clone, Default)]
struct Vp9Stream {
    ssrc: u32,
    order: InOrder,
    picture: Option<PictureInProgress>,
    loss_since_previous: bool,
    previous: Option<PreviousPicture>,
    source: Option<u8>,
    awaiting_keyframe: bool,
    loss_since_keyframe: bool,
    decoded: RecentFrames<LayerFrameKey>,
    undecodable: RecentFrames<LayerFrameKey>,
    /// `(top spatial id, temporal id)` received per picture, oldest first.
    recent_layers: VecDeque<(u8, u8)>,
    stats: Vp9StreamStats,
}

impl Vp9Stream {
    fn deliver(&mut self, delivery: Delivery, limit: Option<(u8, u8)>, log: &mut Violations) {
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
                if let Some(picture) = &mut self.picture {
                    picture.loss = true;
                }
            }
            Delivery::Packet(bytes) => {
                let rtp = RtpView::parse(&bytes).unwrap();
                let descriptor = vp9::parse(&rtp.payload).unwrap();
                if self
                    .picture
                    .as_ref()
                    .is_some_and(|picture| picture.timestamp != rtp.timestamp)
                {
                    self.finish_picture(limit, log);
                }
                let marker = rtp.marker;
                self.picture
                    .get_or_insert_with(|| PictureInProgress {
                        timestamp: rtp.timestamp,
                        packets: Vec::new(),
                        loss: false,
                    })
                    .packets
                    .push(Vp9Packet { rtp, descriptor });
                if marker {
                    self.finish_picture(limit, log);
                }
            }
        }
    }

    /// Checks continuity with the previous picture; false if this is no new picture at all.
    fn check_continuity(
        &mut self,
        picture: &PictureInProgress,
        loss: bool,
        log: &mut Violations,
    ) -> bool {
        let first = &picture.packets[0];
        let at = first.rtp.sequence_number;
        let picture_id = first.descriptor.picture_id.map(|id| id.value());
        let tl0_pic_idx = first.descriptor.tl0_pic_idx;
        let temporal_id = first.descriptor.temporal_id();
        let mut new_picture = true;
        if let Some(packet) = picture.packets[1..].iter().find(|p| {
            p.descriptor.picture_id.map(|id| id.value()) != picture_id
                || p.descriptor.tl0_pic_idx != tl0_pic_idx
                || p.descriptor.temporal_id() != temporal_id
        }) {
            log.push(
                ViolationKind::PictureIdJump,
                self.ssrc,
                packet.rtp.sequence_number,
                "picture id, TL0PICIDX or TID change within a picture".to_owned(),
            );
        }
        if let Some(previous) = self.previous {
            if timestamp_backwards(picture.timestamp, previous.timestamp) {
                log.push(
                    ViolationKind::TimestampBackwards,
                    self.ssrc,
                    at,
                    format!(
                        "timestamp {} after {}",
                        picture.timestamp, previous.timestamp
                    ),
                );
            }
            if let (Some(id), Some(previous_id)) = (picture_id, previous.picture_id) {
                // Non-flexible mode: receivers map picture ids through the picture group, so
                // an SFU that drops a temporal layer may leave holes; going back may not.
                let distance = picture_id_distance(id, previous_id);
                if distance == 0 && picture.timestamp == previous.timestamp {
                    log.push(
                        ViolationKind::MarkerNotAtEnd,
                        self.ssrc,
                        at,
                        format!("packets of picture {id} after its marker"),
                    );
                    new_picture = false;
                } else if (distance == 0 || distance >= 0x4000) && !loss {
                    log.push(
                        ViolationKind::PictureIdJump,
                        self.ssrc,
                        at,
                        format!("picture id {previous_id} then {id}"),
                    );
                }
            }
            if let (Some(tl0), Some(previous_tl0), false, true) =
                (tl0_pic_idx, previous.tl0_pic_idx, loss, new_picture)
            {
                let expected = if temporal_id == 0 {
                    previous_tl0.wrapping_add(1)
                } else {
                    previous_tl0
                };
                if tl0 != expected {
                    log.push(
                        ViolationKind::Tl0PicIdx,
                        self.ssrc,
                        at,
                        format!(
                            "TL0PICIDX {tl0} on a TID {temporal_id} picture, expected {expected}"
                        ),
                    );
                }
            }
        }
        self.previous = Some(PreviousPicture {
            timestamp: picture.timestamp,
            picture_id,
            tl0_pic_idx,
        });
        new_picture
    }

    fn finish_picture(&mut self, limit: Option<(u8, u8)>, log: &mut Violations) {
        let Some(picture) = self.picture.take() else {
            return;
        };
        let loss = picture.loss || self.loss_since_previous;
        self.loss_since_previous = false;
        if !self.check_continuity(&picture, loss, log) {
            return;
        }
        let first = &picture.packets[0];
        let last = picture.packets.last().unwrap();
        let at = first.rtp.sequence_number;
        let picture_id = first.descriptor.picture_id.map_or(0, |id| id.value());

        if !last.rtp.marker && !loss {
            log.push(
                ViolationKind::MissingMarker,
                self.ssrc,
                last.rtp.sequence_number,
                format!("picture {picture_id} ends without the marker bit"),
            );
        }

        let mut layers: Vec<LayerFrame<'_>> = Vec::new();
        for packet in &picture.packets {
            let spatial_id = packet.descriptor.spatial_id();
            match layers.last_mut() {
                Some(layer) if layer.spatial_id == spatial_id => layer.packets.push(packet),
                _ => layers.push(LayerFrame {
                    spatial_id,
                    temporal_id: packet.descriptor.temporal_id(),
                    packets: vec![packet],
                }),
            }
        }
        let top_spatial = layers.iter().map(|l| l.spatial_id).max().unwrap_or(0);
        let temporal_id = first.descriptor.temporal_id();
        self.recent_layers.push_back((top_spatial, temporal_id));
        if self.recent_layers.len() > RECENT_PICTURES {
            self.recent_layers.pop_front();
        }
        if let Some((max_spatial, max_temporal)) = limit {
            if let Some(layer) = layers
                .iter()
                .find(|l| l.spatial_id > max_spatial || l.temporal_id > max_temporal)
            {
                log.push(
                    ViolationKind::LayerAboveLimit,
                    self.ssrc,
                    layer.packets[0].rtp.sequence_number,
                    format!(
                        "picture {picture_id} has S{}T{}, limit S{max_spatial}T{max_temporal}",
                        layer.spatial_id, layer.temporal_id
                    ),
                );
            }
        }
        let in_order = layers
            .iter()
            .zip(0u8..)
            .all(|(layer, expected)| layer.spatial_id == expected);
        if !in_order && !loss {
            let order: Vec<u8> = layers.iter().map(|l| l.spatial_id).collect();
            log.push(
                ViolationKind::LayerHole,
                self.ssrc,
                at,
                format!("picture {picture_id} has spatial layers {order:?}"),
            );
        }

        // Stamps, then completeness of each layer frame.
        let mut stamped: Vec<(u8, FrameStamp, bool)> = Vec::new();
        for layer in &layers {
            let mut stamps = Vec::with_capacity(layer.packets.len());
            for packet in &layer.packets {
                match FrameStamp::parse_and_verify(&packet.rtp.payload[packet.descriptor.len..]) {
                    Ok(stamp) => stamps.push(stamp),
                    Err(error) => {
                        log.push(
                            ViolationKind::CorruptPayload,
                            self.ssrc,
                            packet.rtp.sequence_number,
                            error,
                        );
                        return;
                    }
                }
            }
            let stamp = stamps[0];
            let complete = layer.packets[0].descriptor.start_of_frame
                && layer.packets.last().unwrap().descriptor.end_of_frame
                && stamps.len() == usize::from(stamp.packet_count)
                && stamps.iter().enumerate().all(|(index, s)| {
                    usize::from(s.packet_index) == index
                        && (s.source, s.layer, s.picture_id)
                            == (stamp.source, stamp.layer, stamp.picture_id)
                });
            if !complete {
                if loss {
                    self.stats.layer_frames_lost += 1;
                } else {
                    let indices: Vec<u16> = stamps.iter().map(|s| s.packet_index).collect();
                    log.push(
                        ViolationKind::IncompleteFrame,
                        self.ssrc,
                        layer.packets[0].rtp.sequence_number,
                        format!(
                            "picture {} S{}: packets {indices:?} of {}",
                            stamp.picture_id, layer.spatial_id, stamp.packet_count
                        ),
                    );
                }
            }
            stamped.push((layer.spatial_id, stamp, complete));
        }

        let Some(&(_, base_stamp, _)) = stamped.first() else {
            return;
        };
        let keyframe = layers[0].spatial_id == 0 && first.descriptor.is_keyframe();
        if keyframe {
            if let Some(ss) = first.descriptor.scalability {
                self.stats.resolutions = (0..ss.spatial_layers)
                    .filter_map(|sid| ss.resolution(sid))
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
                            format!("from sender {previous} to sender {source} on picture {picture_id}, not a key picture"),
                        );
                    }
                }
                None if !keyframe => log.push(
                    ViolationKind::NoKeyframeAtStart,
                    self.ssrc,
                    at,
                    format!("the stream starts with picture {picture_id}, not a key picture"),
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
        for &(spatial_id, stamp, complete) in &stamped {
            let key = (source, spatial_id, stamp.picture_id);
            if !complete {
                self.undecodable.insert(key);
                continue;
            }
            let missing: Vec<FrameRef> = stamp
                .references()
                .filter(|r| !self.decoded.contains(&(source, r.layer, r.picture_id)))
                .collect();
            if !missing.is_empty() {
                self.stats.layer_frames_undecodable += 1;
                let cascade = self.awaiting_keyframe
                    || missing
                        .iter()
                        .any(|r| self.undecodable.contains(&(source, r.layer, r.picture_id)));
                self.undecodable.insert(key);
                if !cascade {
                    let kind = if self.loss_since_keyframe || loss {
                        ViolationKind::UndecodableAfterLoss
                    } else {
                        ViolationKind::MissingReference
                    };
                    // Known missing from now on: what depends on them is a consequence.
                    for r in &missing {
                        self.undecodable.insert((source, r.layer, r.picture_id));
                    }
                    let refs: Vec<String> = missing
                        .iter()
                        .map(|r| format!("S{} of picture {}", r.layer, r.picture_id))
                        .collect();
                    log.push(
                        kind,
                        self.ssrc,
                        at,
                        format!(
                            "picture {} S{spatial_id}T{} of sender {source} references {refs:?}, not decoded",
                            stamp.picture_id, stamp.temporal_id
                        ),
                    );
                }
                continue;
            }
            self.decoded.insert(key);
            *self
                .stats
                .layer_frames_decoded
                .entry((spatial_id, stamp.temporal_id))
                .or_default() += 1;
            top_decoded = Some(spatial_id);
            if keyframe && spatial_id == 0 {
                // The decoder has a valid state again, for the upper layers of this picture too.
                self.awaiting_keyframe = false;
                self.loss_since_keyframe = false;
            }
        }

        let Some(top) = top_decoded else {
            return;
        };
        self.stats.pictures_decoded += 1;
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
