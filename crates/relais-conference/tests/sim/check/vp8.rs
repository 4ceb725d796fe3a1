//! [`Vp8StreamChecker`]: what a VP8 receiver would make of the forwarded simulcast stream.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use std::collections::BTreeMap;

use relais_rtp::codec::vp8::{self, Vp8Descriptor};

use super::super::media::{
    FrameRef, FrameStamp, VP8_INTERFRAME_HEADER_LEN, VP8_KEYFRAME_HEADER_LEN, VP8_START_CODE,
};
use super::{
    picture_id_distance, timestamp_backwards, Arrival, Delivery, InOrder, PacketCounts,
    RecentFrames, RtpView, ViolationKind, Violations,
};

/// What one received SSRC's VP8 stream did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vp8StreamStats {
    /// Packet accounting.
    pub packets: PacketCounts,
    /// Frames decoded per `(sender, encoding)`.
    pub frames_decoded: BTreeMap<(u8, u8), u64>,
    /// Key frames decoded.
    pub keyframes_decoded: u64,
    /// Frames incomplete because of packet loss.
    pub frames_lost: u64,
    /// Complete frames that could not be decoded (a reference missing).
    pub frames_undecodable: u64,
    /// Changes of `(sender, encoding)` from one frame to the next.
    pub encoding_switches: u64,
    /// Sender of the last decoded frame.
    pub current_source: Option<u8>,
    /// Encoding of the last decoded frame.
    pub current_encoding: Option<u8>,
    /// Width from the last decoded key frame.
    pub current_width: Option<u16>,
    /// Height from the last decoded key frame.
    pub current_height: Option<u16>,
}

/// The VP8 stream on one received SSRC.
#[derive(Debug, Clone, Default)]
pub struct Vp8StreamChecker {
    streams: BTreeMap<u32, Vp8Stream>,
    violations: Violations,
    last_ssrc: Option<u32>,
}

impl Vp8StreamChecker {
    /// A checker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one received packet (plaintext RTP, VP8 payload).
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
        if let Err(error) = vp8::parse(&rtp.payload) {
            self.violations.push(
                ViolationKind::Unparsable,
                rtp.ssrc,
                rtp.sequence_number,
                format!("VP8 descriptor: {error}"),
            );
            return;
        }
        self.last_ssrc = Some(rtp.ssrc);
        let stream = self.streams.entry(rtp.ssrc).or_insert_with(|| Vp8Stream {
            ssrc: rtp.ssrc,
            awaiting_keyframe: true,
            ..Vp8Stream::default()
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
            stream.deliver(delivery, &mut self.violations);
        }
    }

    /// Declares every hole still open lost and processes what was waiting behind it. The
    /// frame being assembled stays open: the run may have ended in its middle.
    pub fn flush(&mut self) {
        for stream in self.streams.values_mut() {
            let mut delivered = Vec::new();
            stream.order.flush(&mut delivered);
            for delivery in delivered {
                stream.deliver(delivery, &mut self.violations);
            }
        }
    }

    /// The SSRCs seen.
    pub fn ssrcs(&self) -> Vec<u32> {
        self.streams.keys().copied().collect()
    }

    /// What the stream on `ssrc` did.
    pub fn stats(&self, ssrc: u32) -> Option<&Vp8StreamStats> {
        self.streams.get(&ssrc).map(|stream| &stream.stats)
    }

    /// Frames of simulcast encoding `encoding` decoded, over all SSRCs and senders.
    pub fn frames_decoded(&self, encoding: u8) -> u64 {
        self.streams
            .values()
            .flat_map(|stream| &stream.stats.frames_decoded)
            .filter(|((_, e), _)| *e == encoding)
            .map(|(_, count)| count)
            .sum()
    }

    /// Frames decoded in all.
    pub fn total_frames_decoded(&self) -> u64 {
        self.streams
            .values()
            .flat_map(|stream| stream.stats.frames_decoded.values())
            .sum()
    }

    /// Encoding of the last frame decoded on the SSRC that received the last packet.
    pub fn current_encoding(&self) -> Option<u8> {
        self.last_stats()?.current_encoding
    }

    /// Height of the picture decoded on the SSRC that received the last packet.
    pub fn current_height(&self) -> Option<u16> {
        self.last_stats()?.current_height
    }

    /// Encoding switches over all SSRCs.
    pub fn encoding_switches(&self) -> u64 {
        self.streams
            .values()
            .map(|stream| stream.stats.encoding_switches)
            .sum()
    }

    fn last_stats(&self) -> Option<&Vp8StreamStats> {
        self.stats(self.last_ssrc?)
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
struct Vp8Packet {
    rtp: RtpView,
    descriptor: Vp8Descriptor,
}

#[derive(Debug, Clone)]
struct FrameInProgress {
    timestamp: u32,
    packets: Vec<Vp8Packet>,
    /// Packets were declared lost while it was assembled.
    loss: bool,
}

#[derive(Debug, Clone, Copy)]
struct PreviousFrame {
    timestamp: u32,
    picture_id: Option<u16>,
    tl0_pic_idx: Option<u8>,
}

/// A decoded or undecodable frame: `(sender, encoding, original picture id)`.
type FrameKey = (u8, u8, u16);

#[derive(Debug, Clone, Default)]
struct Vp8Stream {
    ssrc: u32,
    order: InOrder,
    frame: Option<FrameInProgress>,
    /// Packets were declared lost since the previous frame ended.
    loss_since_previous: bool,
    previous: Option<PreviousFrame>,
    /// `(sender, encoding)` of the last complete frame.
    identity: Option<(u8, u8)>,
    /// The decoder has no valid state (start, or a switch on a delta frame): only a key
    /// frame helps, and the failures until then are one violation, not one per frame.
    awaiting_keyframe: bool,
    loss_since_keyframe: bool,
    decoded: RecentFrames<FrameKey>,
    undecodable: RecentFrames<FrameKey>,
    stats: Vp8StreamStats,
}

/// Width and height of a VP8 key frame header (P=0, start code), `None` if it is not one.
fn keyframe_dimensions(data: &[u8]) -> Option<(u16, u16)> {
    let header = data.get(..VP8_KEYFRAME_HEADER_LEN)?;
    (header[0] & 0x01 == 0 && header[3..6] == VP8_START_CODE).then(|| {
        (
            u16::from_le_bytes([header[6], header[7]]) & 0x3FFF,
            u16::from_le_bytes([header[8], header[9]]) & 0x3FFF,
        )
    })
}

impl Vp8Stream {
    fn deliver(&mut self, delivery: Delivery, log: &mut Violations) {
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
                if let Some(frame) = &mut self.frame {
                    frame.loss = true;
                }
            }
            Delivery::Packet(bytes) => {
                let rtp = RtpView::parse(&bytes).unwrap();
                let descriptor = vp8::parse(&rtp.payload).unwrap();
                if self
                    .frame
                    .as_ref()
                    .is_some_and(|frame| frame.timestamp != rtp.timestamp)
                {
                    self.finish_frame(log);
                }
                let marker = rtp.marker;
                self.frame
                    .get_or_insert_with(|| FrameInProgress {
                        timestamp: rtp.timestamp,
                        packets: Vec::new(),
                        loss: false,
                    })
                    .packets
                    .push(Vp8Packet { rtp, descriptor });
                if marker {
                    self.finish_frame(log);
                }
            }
        }
    }

    /// Checks continuity with the previous frame; false if this is no new frame at all.
    fn check_continuity(
        &mut self,
        frame: &FrameInProgress,
        loss: bool,
        log: &mut Violations,
    ) -> bool {
        let first = &frame.packets[0];
        let at = first.rtp.sequence_number;
        let picture_id = first.descriptor.picture_id.map(|id| id.value());
        let tl0_pic_idx = first.descriptor.tl0_pic_idx;
        let temporal_id = first.descriptor.temporal_id.unwrap_or(0);
        let mut new_frame = true;
        for packet in &frame.packets[1..] {
            let d = &packet.descriptor;
            if d.picture_id.map(|id| id.value()) != picture_id
                || d.tl0_pic_idx != tl0_pic_idx
                || d.temporal_id.unwrap_or(0) != temporal_id
            {
                log.push(
                    ViolationKind::PictureIdJump,
                    self.ssrc,
                    packet.rtp.sequence_number,
                    "picture id, TL0PICIDX or TID change within a frame".to_owned(),
                );
                break;
            }
        }
        if let Some(previous) = self.previous {
            if timestamp_backwards(frame.timestamp, previous.timestamp) {
                log.push(
                    ViolationKind::TimestampBackwards,
                    self.ssrc,
                    at,
                    format!("timestamp {} after {}", frame.timestamp, previous.timestamp),
                );
            }
            if let (Some(id), Some(previous_id)) = (picture_id, previous.picture_id) {
                let distance = picture_id_distance(id, previous_id);
                if distance == 0 && frame.timestamp == previous.timestamp {
                    log.push(
                        ViolationKind::MarkerNotAtEnd,
                        self.ssrc,
                        at,
                        format!("packets of picture {id} after its marker"),
                    );
                    new_frame = false;
                } else if distance != 1 && !loss {
                    log.push(
                        ViolationKind::PictureIdJump,
                        self.ssrc,
                        at,
                        format!("picture id {previous_id} then {id}"),
                    );
                }
            }
            if let (Some(tl0), Some(previous_tl0), false) =
                (tl0_pic_idx, previous.tl0_pic_idx, loss)
            {
                let expected = if temporal_id == 0 {
                    previous_tl0.wrapping_add(1)
                } else {
                    previous_tl0
                };
                if tl0 != expected && new_frame {
                    log.push(
                        ViolationKind::Tl0PicIdx,
                        self.ssrc,
                        at,
                        format!(
                            "TL0PICIDX {tl0} on a TID {temporal_id} frame, expected {expected}"
                        ),
                    );
                }
            }
        }
        self.previous = Some(PreviousFrame {
            timestamp: frame.timestamp,
            picture_id,
            tl0_pic_idx,
        });
        new_frame
    }

    fn finish_frame(&mut self, log: &mut Violations) {
        let Some(frame) = self.frame.take() else {
            return;
        };
        let loss = frame.loss || self.loss_since_previous;
        self.loss_since_previous = false;
        if !self.check_continuity(&frame, loss, log) {
            return;
        }
        let first = &frame.packets[0];
        let at = first.rtp.sequence_number;

        let mut stamps = Vec::with_capacity(frame.packets.len());
        for packet in &frame.packets {
            let data = &packet.rtp.payload[packet.descriptor.len..];
            let header_len = match (packet.descriptor.starts_frame(), data[0] & 0x01) {
                (false, _) => 0,
                (true, 0) => VP8_KEYFRAME_HEADER_LEN,
                (true, _) => VP8_INTERFRAME_HEADER_LEN,
            };
            match data.get(header_len..).map(FrameStamp::parse_and_verify) {
                Some(Ok(stamp)) => stamps.push(stamp),
                Some(Err(error)) => {
                    log.push(
                        ViolationKind::CorruptPayload,
                        self.ssrc,
                        packet.rtp.sequence_number,
                        error,
                    );
                    return;
                }
                None => {
                    log.push(
                        ViolationKind::CorruptPayload,
                        self.ssrc,
                        packet.rtp.sequence_number,
                        "payload shorter than the VP8 header".to_owned(),
                    );
                    return;
                }
            }
        }
        let stamp = stamps[0];
        let key = (stamp.source, stamp.layer, stamp.picture_id);
        let describe = format!(
            "frame {} (TID {}) of sender {} encoding {}",
            stamp.picture_id, stamp.temporal_id, stamp.source, stamp.layer
        );

        let complete = first.descriptor.starts_frame()
            && stamps.len() == usize::from(stamp.packet_count)
            && stamps.iter().enumerate().all(|(index, s)| {
                usize::from(s.packet_index) == index
                    && (s.source, s.layer, s.picture_id)
                        == (stamp.source, stamp.layer, stamp.picture_id)
            });
        let has_marker = frame.packets.last().unwrap().rtp.marker;
        if !complete || !has_marker {
            self.undecodable.insert(key);
            if loss {
                self.stats.frames_lost += 1;
            } else if !complete {
                let indices: Vec<u16> = stamps.iter().map(|s| s.packet_index).collect();
                log.push(
                    ViolationKind::IncompleteFrame,
                    self.ssrc,
                    at,
                    format!("{describe}: packets {indices:?} of {}", stamp.packet_count),
                );
            } else {
                log.push(
                    ViolationKind::MissingMarker,
                    self.ssrc,
                    at,
                    format!("{describe} ends without the marker bit"),
                );
            }
            return;
        }

        let keyframe = first.descriptor.is_keyframe;
        let mut dimensions = None;
        if keyframe {
            dimensions = keyframe_dimensions(&first.rtp.payload[first.descriptor.len..]);
            if dimensions.is_none() {
                log.push(
                    ViolationKind::BadKeyframe,
                    self.ssrc,
                    at,
                    format!("{describe}: P=0 but no key frame header"),
                );
                self.undecodable.insert(key);
                return;
            }
        }

        let identity = (stamp.source, stamp.layer);
        if self.identity != Some(identity) {
            match self.identity {
                Some(previous) => {
                    self.stats.encoding_switches += 1;
                    if !keyframe {
                        log.push(
                            ViolationKind::SwitchWithoutKeyframe,
                            self.ssrc,
                            at,
                            format!(
                                "from sender {} encoding {} to {describe}, not a key frame",
                                previous.0, previous.1
                            ),
                        );
                    }
                }
                None if !keyframe => log.push(
                    ViolationKind::NoKeyframeAtStart,
                    self.ssrc,
                    at,
                    format!("the stream starts with {describe}, not a key frame"),
                ),
                None => {}
            }
            // The decoder's buffers now hold (or will hold) another stream's pictures.
            self.decoded.clear();
            self.identity = Some(identity);
            if !keyframe {
                self.awaiting_keyframe = true;
            }
        }

        let missing: Vec<FrameRef> = if keyframe {
            Vec::new()
        } else {
            stamp
                .references()
                .filter(|r| {
                    !self
                        .decoded
                        .contains(&(stamp.source, r.layer, r.picture_id))
                })
                .collect()
        };
        if !missing.is_empty() {
            self.stats.frames_undecodable += 1;
            let cascade = self.awaiting_keyframe
                || missing.iter().any(|r| {
                    self.undecodable
                        .contains(&(stamp.source, r.layer, r.picture_id))
                });
            self.undecodable.insert(key);
            if !cascade {
                let kind = if self.loss_since_keyframe || loss {
                    ViolationKind::UndecodableAfterLoss
                } else {
                    ViolationKind::MissingReference
                };
                let ids: Vec<u16> = missing.iter().map(|r| r.picture_id).collect();
                // Known missing from now on: what depends on them is a consequence.
                for r in &missing {
                    self.undecodable
                        .insert((stamp.source, r.layer, r.picture_id));
                }
                log.push(
                    kind,
                    self.ssrc,
                    at,
                    format!("{describe} references frames {ids:?}, not decoded"),
                );
            }
            return;
        }

        self.decoded.insert(key);
        *self.stats.frames_decoded.entry(identity).or_default() += 1;
        self.stats.current_source = Some(stamp.source);
        self.stats.current_encoding = Some(stamp.layer);
        if let Some((width, height)) = dimensions {
            self.stats.keyframes_decoded += 1;
            self.stats.current_width = Some(width);
            self.stats.current_height = Some(height);
            self.awaiting_keyframe = false;
            self.loss_since_keyframe = false;
        }
    }
}
