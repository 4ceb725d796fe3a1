//! One receiver's view of one source: which packets it gets, and how they are rewritten so
//! that layer switches and intentional drops look like one continuous stream.
//!
//! - **Simulcast**: the projection forwards one encoding at a time. It moves to the target
//!   encoding only on a key frame of it (asking the sender for one meanwhile) and keeps
//!   forwarding the current encoding until then. Temporal layers above the target are
//!   dropped; the temporal target goes up only where the stream allows it (TL0 frames or a
//!   layer-sync / switching-up frame).
//! - **SVC (VP9, or the dependency descriptor)**: one SSRC; packets of spatial and temporal
//!   layers above the target are dropped. The spatial layer goes down at the next picture
//!   and up at a key picture (requested when needed); the marker bit moves to the end of the
//!   highest forwarded layer frame. With the dependency descriptor, frames are kept by the
//!   decode target they are part of.
//! - **Rewriting**: SSRC (the source's primary SSRC), payload type and header extension ids
//!   of the receiver; sequence numbers without gaps for intentional drops
//!   ([`SequenceRewriter`]); timestamps, VP8/VP9 picture ids and TL0PICIDX continuous across
//!   encoding switches; picture ids continuous across dropped pictures.
//! - **Late packets** (reordered, or repaired upstream and unwrapped from the sender's RTX)
//!   are forwarded with the sequence number the original would have had, so the receiver
//!   sees its gap filled; they never move the layer state. One the projection can no longer
//!   place (it switched encoding or restarted since, or its number was reused after an
//!   intentional drop) is dropped and counted as late.
//! - **Retransmission**: the projection remembers, per outgoing sequence number, which
//!   original packet it sent and how it rewrote it; a NACK is answered from the source's
//!   cache of originals, rewritten the same way again (as RTX when negotiated).

use std::time::{Duration, Instant};

use relais_rtp::codec::av1::{DependencyDescriptor, TemplateStructure};
use relais_rtp::codec::{vp8, vp9};
use relais_rtp::extensions::{ExtensionKind, ExtensionMap, TransportSequenceNumber};
use relais_rtp::rtcp::ReportBlock;
use relais_rtp::rtp::{ExtensionForm, RtpPacket};

use relais_bwe::pacer::PacketClass;

use super::bandwidth::{self, PacedPacket, ReceiverBandwidth, SRTP_OVERHEAD};
use super::rewrite::{seq_newer, SequenceRewriter};
use super::source::{LayerScheme, PacketCache, PacketInfo};
use super::Io;
use crate::{CodecName, EndpointId, ForwarderStats, NegotiatedCodec};

/// Outgoing packets remembered per projection for NACKs.
const SENT_HISTORY: usize = 256;
/// Dependency-descriptor frames remembered per projection to check chains (a chain's
/// previous frame is at most a few temporal units back).
const FORWARDED_FRAMES: usize = 32;
/// Translated SRs remembered per projection for RTT measurement.
const SR_HISTORY: usize = 4;

/// The layer a receiver should get: simulcast encoding (or SVC spatial layer) and temporal
/// layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LayerTarget {
    /// Simulcast encoding index, or the SVC spatial layer.
    pub(crate) encoding: u8,
    /// Highest temporal layer.
    pub(crate) temporal: u8,
}

/// What a receiver's transport needs for rewriting: its codecs and extension ids.
#[derive(Debug)]
pub(crate) struct ReceiverLink {
    pub(crate) endpoint: EndpointId,
    pub(crate) codecs: Vec<NegotiatedCodec>,
    pub(crate) extensions: ExtensionMap,
    pub(crate) tcc_id: Option<u8>,
    /// The receiver's transport-wide sequence counter (all its streams).
    pub(crate) tcc_seq: u16,
    /// Its downlink estimate and pacer, when it negotiated transport-cc.
    pub(crate) bandwidth: Option<Box<ReceiverBandwidth>>,
}

impl ReceiverLink {
    /// Queues an RTP packet for the receiver: through its pacer when it has one (what is due
    /// leaves at once), straight to the output otherwise.
    pub(crate) fn emit(
        &mut self,
        now: Instant,
        io: &mut Io,
        packet: Vec<u8>,
        class: PacketClass,
        transport_seq: Option<u16>,
        probe_cluster: Option<u32>,
    ) {
        let Some(bandwidth) = self.bandwidth.as_mut() else {
            io.push_rtp(self.endpoint, packet);
            return;
        };
        let size = packet.len() + SRTP_OVERHEAD;
        bandwidth.pacer.push(
            now,
            PacedPacket {
                packet,
                rtp: true,
                transport_seq,
                probe_cluster,
            },
            size,
            class,
        );
        self.release(now, io);
    }

    /// Moves what the pacer lets go now to the output.
    pub(crate) fn release(&mut self, now: Instant, io: &mut Io) {
        let Some(bandwidth) = self.bandwidth.as_mut() else {
            return;
        };
        while let Some(paced) = bandwidth.pacer.poll(now) {
            bandwidth.on_sent(now, &paced);
            if paced.rtp {
                io.push_rtp(self.endpoint, paced.packet);
            } else {
                io.push_rtcp(self.endpoint, paced.packet);
            }
        }
    }

    /// Writes the receiver's next transport-wide sequence number into `packet`, if it
    /// negotiated the extension and the packet has room for it.
    pub(crate) fn stamp(&mut self, packet: &mut RtpPacket<&mut [u8]>) -> Option<u16> {
        let value = self.tcc_id.and_then(|id| packet.extension_mut(id))?;
        let seq = self.tcc_seq;
        TransportSequenceNumber(seq).write(value).ok()?;
        self.tcc_seq = self.tcc_seq.wrapping_add(1);
        Some(seq)
    }

    fn payload_type(&self, codec: CodecName) -> Option<u8> {
        self.codecs
            .iter()
            .find(|c| c.name == codec)
            .map(|c| c.payload_type)
    }

    fn rtx_payload_type(&self, payload_type: u8) -> Option<u8> {
        self.codecs
            .iter()
            .find(|c| c.payload_type == payload_type)
            .and_then(|c| c.rtx_payload_type)
    }
}

/// The decision for one incoming packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Forward it, with this marker bit.
    Forward { marker: bool },
    /// Drop it. `intentional`: the receiver is getting this stream and the packet is thinned
    /// out (it must leave no sequence gap). `wants_keyframe`: the receiver waits for a key
    /// frame of this packet's encoding.
    Drop {
        intentional: bool,
        wants_keyframe: bool,
    },
    /// Drop it: a late packet from before the receiver's stream switched or (re)started.
    Late,
}

const DROP: Verdict = Verdict::Drop {
    intentional: false,
    wants_keyframe: false,
};

/// The last packet sent.
#[derive(Debug, Clone, Copy)]
struct LastOutput {
    seq: u16,
    ts: u32,
    at: Instant,
}

/// How one outgoing packet was made, for retransmission.
#[derive(Debug, Clone, Copy, Default)]
struct SentPacket {
    valid: bool,
    out_seq: u16,
    in_ssrc: u32,
    in_seq: u16,
    out_ts: u32,
    out_picture_id: Option<u16>,
    out_tl0: Option<u8>,
    marker: bool,
}

/// The rewrite applied to one packet.
#[derive(Debug, Clone, Copy)]
struct Rewrite {
    ssrc: u32,
    payload_type: u8,
    seq: u16,
    ts: u32,
    marker: bool,
    picture_id: Option<u16>,
    tl0: Option<u8>,
}

/// One receiver's projection of one source.
#[derive(Debug)]
pub(crate) struct Projection {
    /// The receiving endpoint.
    pub(crate) receiver: EndpointId,
    /// What the allocation wants; `None`: not forwarded.
    target: Option<LayerTarget>,
    /// Simulcast: the encoding being forwarded.
    current_encoding: Option<u8>,
    /// Simulcast: the encoding forwarded before (its late packets count as dropped late).
    previous_encoding: Option<u8>,
    /// SVC: a key frame started the forwarded stream.
    started: bool,
    /// Dependency descriptor: the decode target being forwarded.
    decode_target: Option<u8>,
    /// Dependency descriptor: the wanted decode target needs a key frame (the timer keeps
    /// asking for one).
    decode_target_blocked: bool,
    /// Dependency descriptor: frame numbers of the last frames forwarded (a ring).
    forwarded_frames: [Option<u16>; FORWARDED_FRAMES],
    next_forwarded_frame: usize,
    current_spatial: u8,
    current_temporal: u8,
    out_ssrc: u32,
    out_rtx_ssrc: Option<u32>,
    /// The incoming SSRC the offsets refer to.
    source_ssrc: Option<u32>,
    seq: SequenceRewriter,
    ts_offset: u32,
    picture_offset: u16,
    tl0_offset: u8,
    last: Option<LastOutput>,
    last_picture_id: Option<u16>,
    last_tl0: Option<u8>,
    last_dropped_picture: Option<u16>,
    rtx_seq: u16,
    sent: Vec<SentPacket>,
    packets_sent: u32,
    octets_sent: u32,
    sr_sent: [Option<(u32, Instant)>; SR_HISTORY],
    sr_next: usize,
    last_cumulative_lost: Option<i32>,
}

impl Projection {
    /// A projection sending on `out_ssrc` (RTX on `out_rtx_ssrc`), forwarding nothing yet.
    pub(crate) fn new(receiver: EndpointId, out_ssrc: u32, out_rtx_ssrc: Option<u32>) -> Self {
        Self {
            receiver,
            target: None,
            current_encoding: None,
            previous_encoding: None,
            started: false,
            decode_target: None,
            decode_target_blocked: false,
            forwarded_frames: [None; FORWARDED_FRAMES],
            next_forwarded_frame: 0,
            current_spatial: 0,
            current_temporal: 0,
            out_ssrc,
            out_rtx_ssrc,
            source_ssrc: None,
            seq: SequenceRewriter::default(),
            ts_offset: 0,
            picture_offset: 0,
            tl0_offset: 0,
            last: None,
            last_picture_id: None,
            last_tl0: None,
            last_dropped_picture: None,
            rtx_seq: 0,
            sent: Vec::new(),
            packets_sent: 0,
            octets_sent: 0,
            sr_sent: [None; SR_HISTORY],
            sr_next: 0,
            last_cumulative_lost: None,
        }
    }

    /// The allocation's target.
    pub(crate) fn target(&self) -> Option<LayerTarget> {
        self.target
    }

    /// Sets the allocation's target; `None` stops forwarding (a later restart waits for a
    /// key frame and continues the numbering).
    pub(crate) fn set_target(&mut self, target: Option<LayerTarget>) {
        if target.is_none() {
            self.previous_encoding = self.current_encoding.take();
            self.started = false;
            self.decode_target = None;
            self.decode_target_blocked = false;
            self.forwarded_frames = [None; FORWARDED_FRAMES];
            self.source_ssrc = None;
        }
        self.target = target;
    }

    /// The encoding the receiver waits for a key frame of, if any.
    pub(crate) fn waiting_for_keyframe(&self) -> Option<u8> {
        let target = self.target?;
        match self.current_encoding {
            Some(current) if current == target.encoding => None,
            _ if self.started && !self.decode_target_blocked => None,
            _ if self.started => Some(0),
            _ => Some(target.encoding),
        }
    }

    /// Decides what to do with a video packet. `structure`: the source's dependency
    /// descriptor structure, for packets that carry the descriptor.
    pub(crate) fn select(
        &mut self,
        info: &PacketInfo,
        scheme: LayerScheme,
        structure: Option<&TemplateStructure>,
    ) -> Verdict {
        let Some(target) = self.target else {
            return DROP;
        };
        if info.late {
            return self.select_late(info, scheme, structure);
        }
        match (scheme, info.dependency, structure) {
            (_, Some(dependency), Some(structure)) => {
                self.select_decode_target(info, &dependency, structure, target)
            }
            (LayerScheme::Simulcast, _, _) => self.select_simulcast(info, target),
            (LayerScheme::Svc, _, _) => self.select_svc(info, target),
        }
    }

    /// The decision for a late packet, by the layer state as it is (which a late packet
    /// must not change): forwarded when it belongs to what the receiver gets now.
    fn select_late(
        &self,
        info: &PacketInfo,
        scheme: LayerScheme,
        structure: Option<&TemplateStructure>,
    ) -> Verdict {
        const THINNED: Verdict = Verdict::Drop {
            intentional: true,
            wants_keyframe: false,
        };
        match (scheme, info.dependency, structure) {
            (_, Some(dependency), Some(structure)) => {
                let Some(current) = self.decode_target.filter(|_| self.started) else {
                    return DROP;
                };
                if !dependency.is_part_of(current) {
                    return THINNED;
                }
                let top_spatial = structure
                    .decode_target_layers(current)
                    .map_or(0, |(s, _)| s);
                Verdict::Forward {
                    marker: info.end_of_layer_frame && info.spatial >= top_spatial,
                }
            }
            (LayerScheme::Simulcast, _, _) => {
                if self.current_encoding != Some(info.encoding) {
                    // Counted when the receiver got that encoding before the switch.
                    if self.previous_encoding == Some(info.encoding) {
                        Verdict::Late
                    } else {
                        DROP
                    }
                } else if info.temporal <= self.current_temporal {
                    Verdict::Forward {
                        marker: info.marker,
                    }
                } else {
                    THINNED
                }
            }
            (LayerScheme::Svc, _, _) => {
                if !self.started {
                    DROP
                } else if info.spatial <= self.current_spatial
                    && info.temporal <= self.current_temporal
                {
                    let marker = (info.spatial == self.current_spatial && info.end_of_layer_frame)
                        || info.marker;
                    Verdict::Forward { marker }
                } else {
                    THINNED
                }
            }
        }
    }

    /// Whether the frames of the chain protecting `decode_target` before this frame were
    /// forwarded to this receiver (the chain starts here, or its previous frame went out).
    fn chain_intact(
        &self,
        structure: &TemplateStructure,
        dependency: &DependencyDescriptor,
        decode_target: u8,
    ) -> bool {
        let Some(chain) = structure.chain_protecting(decode_target) else {
            return true;
        };
        match dependency.previous_frame_in_chain(chain) {
            None => true,
            Some(previous) => self.forwarded_frames.contains(&Some(previous)),
        }
    }

    fn remember_frame(&mut self, frame_number: u16) {
        if let Some(slot) = self
            .forwarded_frames
            .get_mut(self.next_forwarded_frame % FORWARDED_FRAMES)
        {
            *slot = Some(frame_number);
        }
        self.next_forwarded_frame = (self.next_forwarded_frame + 1) % FORWARDED_FRAMES;
    }

    /// SVC by the dependency descriptor: a frame is forwarded when it is part of the
    /// current decode target; the decode target moves up at a switch indication (or a key
    /// frame) and down at any frame start.
    fn select_decode_target(
        &mut self,
        info: &PacketInfo,
        dependency: &DependencyDescriptor,
        structure: &TemplateStructure,
        target: LayerTarget,
    ) -> Verdict {
        let Some(wanted) = structure.best_decode_target_within(
            target.encoding,
            target.temporal,
            structure.all_decode_targets(),
        ) else {
            return DROP;
        };
        let current = match self.decode_target {
            Some(current) if self.started => current,
            _ => {
                if !(info.keyframe && info.frame_start) {
                    return Verdict::Drop {
                        intentional: false,
                        wants_keyframe: true,
                    };
                }
                self.started = true;
                self.decode_target = Some(wanted);
                wanted
            }
        };
        // Decode targets change at the start of a temporal unit only (so the marker bit
        // stays at the end of what the receiver gets of each unit), at a key frame or at a
        // switch indication whose chain this receiver has intact; otherwise a key frame is
        // asked for — going down too: with K-SVC the lower layers were not forwarded.
        let mut wants_keyframe = false;
        if wanted != current && info.picture_start {
            if info.keyframe
                || (dependency.is_switch_point(wanted)
                    && self.chain_intact(structure, dependency, wanted))
            {
                self.decode_target = Some(wanted);
                self.decode_target_blocked = false;
            } else {
                wants_keyframe = true;
                self.decode_target_blocked = true;
            }
        }
        let current = self.decode_target.unwrap_or(current);
        if dependency.is_part_of(current) {
            if info.frame_start {
                self.remember_frame(dependency.frame_number);
            }
            let top_spatial = structure
                .decode_target_layers(current)
                .map_or(0, |(s, _)| s);
            let marker = info.end_of_layer_frame && info.spatial >= top_spatial;
            Verdict::Forward { marker }
        } else {
            Verdict::Drop {
                intentional: true,
                wants_keyframe,
            }
        }
    }

    /// Temporal layer changes at a frame start: down at once; up one layer at a time, at a
    /// frame of the next layer that is a switching point (VP8 layer sync, VP9 switching
    /// up): libwebrtc's temporal patterns let a TL0 frame be followed by frames that
    /// reference an earlier TL1 frame, so TL0 is no switching point for the layers above.
    fn adjust_temporal(&mut self, info: &PacketInfo, target: u8) {
        if !info.frame_start {
            return;
        }
        if target < self.current_temporal {
            self.current_temporal = target;
        } else if target > self.current_temporal
            && info.temporal == self.current_temporal + 1
            && info.temporal_switch
        {
            self.current_temporal = info.temporal;
        }
    }

    fn select_simulcast(&mut self, info: &PacketInfo, target: LayerTarget) -> Verdict {
        if self.current_encoding != Some(info.encoding) {
            if info.encoding != target.encoding {
                return DROP;
            }
            if !(info.keyframe && info.frame_start) {
                return Verdict::Drop {
                    intentional: false,
                    wants_keyframe: true,
                };
            }
            self.previous_encoding = self.current_encoding.replace(info.encoding);
            self.current_temporal = target.temporal;
        }
        self.adjust_temporal(info, target.temporal);
        if info.temporal <= self.current_temporal {
            Verdict::Forward {
                marker: info.marker,
            }
        } else {
            Verdict::Drop {
                intentional: true,
                wants_keyframe: false,
            }
        }
    }

    fn select_svc(&mut self, info: &PacketInfo, target: LayerTarget) -> Verdict {
        if !self.started {
            if !(info.keyframe && info.frame_start) {
                return Verdict::Drop {
                    intentional: false,
                    wants_keyframe: true,
                };
            }
            self.started = true;
            self.current_spatial = target.encoding;
            self.current_temporal = target.temporal;
        }
        // Spatial changes at a picture start only, so the marker bit can go on the last
        // forwarded layer of every picture: down at any picture, up at a key picture.
        if info.picture_start && (info.keyframe || target.encoding < self.current_spatial) {
            self.current_spatial = target.encoding;
        }
        if info.spatial == 0 {
            self.adjust_temporal(info, target.temporal);
        }
        let mut wants_keyframe = false;
        if info.frame_start
            && info.spatial > self.current_spatial
            && info.spatial <= target.encoding
        {
            wants_keyframe = true;
        }
        if info.spatial <= self.current_spatial && info.temporal <= self.current_temporal {
            let marker = (info.spatial == self.current_spatial && info.end_of_layer_frame)
                || (info.marker && info.spatial <= self.current_spatial);
            Verdict::Forward { marker }
        } else {
            Verdict::Drop {
                intentional: true,
                wants_keyframe,
            }
        }
    }

    /// Accounts for an intentionally dropped packet of the forwarded stream: later packets
    /// and pictures are renumbered so the receiver sees no gap.
    pub(crate) fn skip(&mut self, info: &PacketInfo, packet: &RtpPacket<&[u8]>) {
        if self.source_ssrc != Some(packet.ssrc()) {
            return;
        }
        self.seq.drop_packet(packet.sequence_number());
        // A whole picture is gone when its temporal layer is not forwarded.
        if info.temporal > self.current_temporal {
            if let Some(picture_id) = info.picture_id {
                let value = picture_id.value();
                if self.last_dropped_picture != Some(value) {
                    self.last_dropped_picture = Some(value);
                    self.picture_offset = self.picture_offset.wrapping_sub(1);
                }
            }
        }
    }

    /// New incoming SSRC: offsets so the output continues where it stopped.
    fn resync(&mut self, now: Instant, info: &PacketInfo, in_seq: u16, in_ts: u32) {
        match self.last {
            Some(last) => {
                self.seq.resync(in_seq, last.seq.wrapping_add(1));
                let elapsed = now.saturating_duration_since(last.at);
                let ticks =
                    (elapsed.as_nanos() * u128::from(info.clock_rate) / 1_000_000_000) as u32;
                self.ts_offset = last.ts.wrapping_add(ticks.max(1)).wrapping_sub(in_ts);
            }
            None => {
                self.seq.resync(in_seq, in_seq);
                self.ts_offset = 0;
            }
        }
        if let Some(picture_id) = info.picture_id {
            self.picture_offset = self
                .last_picture_id
                .map_or(0, |p| p.wrapping_add(1).wrapping_sub(picture_id.value()));
        }
        if let Some(tl0) = info.tl0_pic_idx {
            self.tl0_offset = self
                .last_tl0
                .map_or(0, |p| p.wrapping_add(1).wrapping_sub(tl0));
        }
        self.last_dropped_picture = None;
    }

    /// Rewrites `packet` for the receiver into a pooled buffer and queues it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward(
        &mut self,
        now: Instant,
        info: &PacketInfo,
        marker: bool,
        packet: &RtpPacket<&[u8]>,
        sender_extensions: &ExtensionMap,
        receiver: &mut ReceiverLink,
        io: &mut Io,
    ) -> bool {
        let Some(payload_type) = receiver.payload_type(info.codec) else {
            return false;
        };
        let (in_ssrc, in_seq, in_ts) =
            (packet.ssrc(), packet.sequence_number(), packet.timestamp());
        if self.source_ssrc != Some(in_ssrc) {
            if info.late {
                // From a stream the receiver no longer (or not yet) gets: no number for it.
                io.stats.dropped_late += 1;
                return false;
            }
            self.resync(now, info, in_seq, in_ts);
            self.source_ssrc = Some(in_ssrc);
        }
        let Some(out_seq) = self.seq.forward(in_seq) else {
            io.stats.dropped_late += 1;
            return false;
        };
        let modulus = info.picture_id.map(|p| p.modulus());
        let rewrite = Rewrite {
            ssrc: self.out_ssrc,
            payload_type,
            seq: out_seq,
            ts: in_ts.wrapping_add(self.ts_offset),
            marker,
            picture_id: info
                .picture_id
                .zip(modulus)
                .map(|(p, m)| p.value().wrapping_add(self.picture_offset) % m),
            tl0: info.tl0_pic_idx.map(|t| t.wrapping_add(self.tl0_offset)),
        };
        let Some((buffer, transport_seq)) = write_packet(
            packet.as_bytes(),
            info.codec,
            &rewrite,
            sender_extensions,
            receiver,
            io,
        ) else {
            return false;
        };
        if self.last.is_none_or(|last| seq_newer(out_seq, last.seq)) {
            self.last = Some(LastOutput {
                seq: out_seq,
                ts: rewrite.ts,
                at: now,
            });
            self.last_picture_id = rewrite.picture_id.or(self.last_picture_id);
            self.last_tl0 = rewrite.tl0.or(self.last_tl0);
        }
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(packet.payload().len() as u32);
        if self.sent.is_empty() && info.codec != CodecName::Opus {
            self.sent.resize(SENT_HISTORY, SentPacket::default());
        }
        if let Some(slot) = self.sent.get_mut(usize::from(out_seq) % SENT_HISTORY) {
            *slot = SentPacket {
                valid: true,
                out_seq,
                in_ssrc,
                in_seq,
                out_ts: rewrite.ts,
                out_picture_id: rewrite.picture_id,
                out_tl0: rewrite.tl0,
                marker,
            };
        }
        io.stats.rtp_forwarded += 1;
        let class = bandwidth::class(info.codec == CodecName::Opus, false);
        receiver.emit(now, io, buffer, class, transport_seq, None);
        true
    }

    /// Sends outgoing packet `seq` again (as RTX when the receiver negotiated it).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn retransmit(
        &mut self,
        now: Instant,
        seq: u16,
        cache: &PacketCache,
        sender_codecs: &[NegotiatedCodec],
        sender_extensions: &ExtensionMap,
        receiver: &mut ReceiverLink,
        io: &mut Io,
    ) -> bool {
        let Some(sent) = self
            .sent
            .get(usize::from(seq) % SENT_HISTORY)
            .filter(|s| s.valid && s.out_seq == seq)
            .copied()
        else {
            return false;
        };
        let Some(original) = cache.get(sent.in_ssrc, sent.in_seq) else {
            return false;
        };
        let Ok(parsed) = RtpPacket::parse(original) else {
            return false;
        };
        let Some(codec) = sender_codecs
            .iter()
            .find(|c| c.payload_type == parsed.payload_type())
        else {
            return false;
        };
        let Some(payload_type) = receiver.payload_type(codec.name) else {
            return false;
        };
        let rewrite = Rewrite {
            ssrc: self.out_ssrc,
            payload_type,
            seq,
            ts: sent.out_ts,
            marker: sent.marker,
            picture_id: sent.out_picture_id,
            tl0: sent.out_tl0,
        };
        let Some((mut buffer, transport_seq)) = write_packet(
            original,
            codec.name,
            &rewrite,
            sender_extensions,
            receiver,
            io,
        ) else {
            return false;
        };
        if let (Some(rtx_ssrc), Some(rtx_pt)) =
            (self.out_rtx_ssrc, receiver.rtx_payload_type(payload_type))
        {
            // RFC 4588: the original sequence number leads the payload; padding is not copied.
            let Ok(header_len) = relais_rtp::rtp::header_len(&buffer) else {
                io.recycle(buffer);
                return false;
            };
            let payload_end = RtpPacket::parse(buffer.as_slice())
                .map(|p| p.header_len() + p.payload().len())
                .unwrap_or(buffer.len());
            buffer.truncate(payload_end);
            let osn = seq.to_be_bytes();
            buffer.splice(header_len..header_len, osn);
            if let Some(first) = buffer.first_mut() {
                *first &= !0x20;
            }
            if let Ok(mut out) = RtpPacket::parse(buffer.as_mut_slice()) {
                out.set_ssrc(rtx_ssrc);
                out.set_payload_type(rtx_pt);
                out.set_sequence_number(self.rtx_seq);
                self.rtx_seq = self.rtx_seq.wrapping_add(1);
            }
        }
        io.stats.retransmitted += 1;
        let class = bandwidth::class(false, true);
        receiver.emit(now, io, buffer, class, transport_seq, None);
        true
    }

    /// Whether [`Projection::probe_padding`] can send on this projection: forwarded, with
    /// an RTX SSRC and media sent already.
    pub(crate) fn can_pad(&self) -> bool {
        self.target.is_some() && self.out_rtx_ssrc.is_some() && self.last.is_some()
    }

    /// A padding-only RTX packet of `padding` bytes (at most 255) for probing the receiver's
    /// downlink, on this projection's RTX SSRC; `None` without RTX or before any media.
    pub(crate) fn probe_padding(
        &mut self,
        receiver: &mut ReceiverLink,
        padding: usize,
        io: &mut Io,
    ) -> Option<(Vec<u8>, Option<u16>)> {
        let rtx_ssrc = self.out_rtx_ssrc?;
        let last = self.last?;
        let media_pt = receiver
            .codecs
            .iter()
            .find(|c| c.rtx_payload_type.is_some() && c.name != CodecName::Opus)?
            .payload_type;
        let rtx_pt = receiver.rtx_payload_type(media_pt)?;
        let padding = padding.clamp(1, 255);
        let mut buffer = io.buffer();
        // V=2, P=1, X=1; one one-byte-form extension word for transport-cc.
        buffer.extend_from_slice(&[0xB0, rtx_pt & 0x7F]);
        buffer.extend_from_slice(&self.rtx_seq.to_be_bytes());
        buffer.extend_from_slice(&last.ts.to_be_bytes());
        buffer.extend_from_slice(&rtx_ssrc.to_be_bytes());
        let tcc_id = receiver.tcc_id.filter(|id| (1..=14).contains(id))?;
        buffer.extend_from_slice(&[0xBE, 0xDE, 0, 1, (tcc_id << 4) | 1, 0, 0, 0]);
        buffer.resize(buffer.len() + padding - 1, 0);
        buffer.push(padding as u8);
        self.rtx_seq = self.rtx_seq.wrapping_add(1);
        let transport_seq = match RtpPacket::parse(buffer.as_mut_slice()) {
            Ok(mut packet) => receiver.stamp(&mut packet),
            Err(_) => None,
        };
        Some((buffer, transport_seq))
    }

    /// A reduced-size SR for the receiver, from the sender's SR of the forwarded SSRC.
    pub(crate) fn sender_report(
        &mut self,
        now: Instant,
        sender_ssrc: u32,
        ntp: u64,
        rtp_time: u32,
        io: &mut Io,
        to: EndpointId,
    ) {
        if self.source_ssrc != Some(sender_ssrc) || self.last.is_none() {
            return;
        }
        let mut packet = io.buffer();
        packet.extend_from_slice(&[0x80, 200, 0, 6]);
        packet.extend_from_slice(&self.out_ssrc.to_be_bytes());
        packet.extend_from_slice(&ntp.to_be_bytes());
        packet.extend_from_slice(&rtp_time.wrapping_add(self.ts_offset).to_be_bytes());
        packet.extend_from_slice(&self.packets_sent.to_be_bytes());
        packet.extend_from_slice(&self.octets_sent.to_be_bytes());
        io.push_rtcp(to, packet);
        if let Some(slot) = self.sr_sent.get_mut(self.sr_next % SR_HISTORY) {
            *slot = Some(((ntp >> 16) as u32, now));
        }
        self.sr_next = (self.sr_next + 1) % SR_HISTORY;
    }

    /// A receiver report block about this projection: loss accounting and RTT.
    pub(crate) fn report_block(
        &mut self,
        now: Instant,
        block: &ReportBlock<'_>,
        stats: &mut ForwarderStats,
    ) {
        let cumulative = block.cumulative_lost();
        let last = self.last_cumulative_lost.unwrap_or(0);
        if cumulative > last {
            stats.packets_lost_reported += u64::from(cumulative.abs_diff(last));
            self.last_cumulative_lost = Some(cumulative);
        }
        let lsr = block.last_sender_report();
        if lsr == 0 {
            return;
        }
        let Some((_, sent)) = self.sr_sent.iter().flatten().find(|(ntp, _)| *ntp == lsr) else {
            return;
        };
        let dlsr = Duration::from_nanos(
            u64::from(block.delay_since_last_sender_report()) * 1_000_000_000 / 65_536,
        );
        if let Some(rtt) = now.saturating_duration_since(*sent).checked_sub(dlsr) {
            stats.record_rtt_ms(u64::try_from(rtt.as_millis()).unwrap_or(u64::MAX));
        }
    }
}

/// Copies `original` into a pooled buffer with the rewrite applied, the sender's extension
/// ids mapped to the receiver's (mid and rid dropped) and the receiver's transport-wide
/// sequence number written.
fn write_packet(
    original: &[u8],
    codec: CodecName,
    rewrite: &Rewrite,
    sender_extensions: &ExtensionMap,
    receiver: &mut ReceiverLink,
    io: &mut Io,
) -> Option<(Vec<u8>, Option<u16>)> {
    let mut buffer = io.buffer();
    buffer.extend_from_slice(original);
    let mut transport_seq = None;
    let ok = {
        match RtpPacket::parse(buffer.as_mut_slice()) {
            Ok(mut out) => {
                out.set_ssrc(rewrite.ssrc);
                out.set_payload_type(rewrite.payload_type);
                out.set_sequence_number(rewrite.seq);
                out.set_timestamp(rewrite.ts);
                out.set_marker(rewrite.marker);
                let two_byte = out.extension_form() == Some(ExtensionForm::TwoByte);
                let receiver_extensions = &receiver.extensions;
                // Ids are checked against the form, so this cannot fail; on error the packet
                // keeps the sender's ids, which the receiver ignores.
                let _ = out.remap_extension_ids(|id| match sender_extensions.kind(id)? {
                    ExtensionKind::Mid
                    | ExtensionKind::RtpStreamId
                    | ExtensionKind::RepairedRtpStreamId => None,
                    kind => receiver_extensions
                        .id(kind)
                        .filter(|&new| two_byte || new <= 14),
                });
                transport_seq = receiver.stamp(&mut out);
                let payload = out.payload_mut();
                match codec {
                    CodecName::Vp8 => {
                        if let Some(p) = rewrite.picture_id {
                            let _ = vp8::rewrite_picture_id(payload, p);
                        }
                        if let Some(t) = rewrite.tl0 {
                            let _ = vp8::rewrite_tl0_pic_idx(payload, t);
                        }
                    }
                    CodecName::Vp9 => {
                        if let Some(p) = rewrite.picture_id {
                            let _ = vp9::rewrite_picture_id(payload, p);
                        }
                        if let Some(t) = rewrite.tl0 {
                            let _ = vp9::rewrite_tl0_pic_idx(payload, t);
                        }
                    }
                    CodecName::H264 | CodecName::Av1 | CodecName::Opus => {}
                }
                true
            }
            Err(_) => false,
        }
    };
    if ok {
        Some((buffer, transport_seq))
    } else {
        io.recycle(buffer);
        None
    }
}
