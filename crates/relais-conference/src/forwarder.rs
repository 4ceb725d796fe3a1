//! The forwarder: one publisher's streams to many viewers.
//!
//! # Model
//!
//! A *stream* (keyed by name) has at most one publisher endpoint and any number of viewer
//! endpoints. A viewer's m-line is fed from the publisher's m-line of the same kind and the
//! same ordinal among the lines of that kind (the viewer's first video line from the
//! publisher's first video line, ...): WHEP viewers have their own mids.
//!
//! # Decisions
//!
//! - **SSRC identification** (first sight, then cached): the `sdes:mid` extension names the
//!   m-line and `rtp-stream-id` the simulcast layer (position in `simulcast_rids`, lowest
//!   first); then `announced_ssrcs` (position = layer with simulcast); then the payload type
//!   when exactly one m-line carries it. A new SSRC for a known layer replaces the old one.
//! - **Upstream repair** ([`crate::repair`]): a gap in a publisher's video layer is asked
//!   for at once with a NACK to the publisher, and again every retry interval up to a
//!   maximum. Publisher RTX (`repaired-rtp-stream-id` naming the layer's rid, or an RTX
//!   payload type on a line with one layer) is unwrapped into a reused buffer and, when its
//!   packet is still missing, forwarded like the original; otherwise it is dropped and
//!   counted ([`ForwarderStats::publisher_rtx_duplicate`]; padding-only or unmapped RTX in
//!   [`ForwarderStats::dropped_publisher_rtx`]). Viewers repair what they lose downstream
//!   through their own NACKs against the per-viewer cache.
//! - **Late packets** (reordered or repaired) go out with the sequence number the original
//!   would have had; they never switch a viewer's layer, and one from before the viewer's
//!   last change of source SSRC is dropped and counted in [`ForwarderStats::dropped_late`].
//! - **Layer choice**: every viewer video line is fed by the highest layer that had a packet
//!   within [`LAYER_ACTIVE_TIMEOUT`]; a switch happens only on a keyframe of the target
//!   layer, and each non-keyframe of the target layer while switching asks for a keyframe
//!   (PLI, rate limited per publisher SSRC by `keyframe_request_interval`).
//! - **Continuity**: at each change of source SSRC (switch, reconnect) the sequence offset is
//!   recomputed so the output continues at last + 1, the timestamp continues from the last
//!   output timestamp plus the elapsed wall time in clock ticks (at least 1), and the VP8
//!   picture id and TL0PICIDX continue at last + 1.
//! - **Publisher padding-only packets** on a media SSRC are forwarded like any other packet
//!   (VP8 payloads without a descriptor are counted as malformed and dropped).
//! - **Feedback sender SSRC**: RTCP the node emits to an endpoint uses
//!   [`Forwarder::node_ssrc`] of that endpoint, a fixed value derived from its id.
//! - **RTCP** is emitted in reduced size (RFC 5506, no leading RR): PLI, REMB, SR.
//! - **Allocation**: output buffers come from a free list (capacity [`BUFFER_CAPACITY`]); the
//!   retransmission cache slots are filled lazily and then reused. After warm-up (every
//!   cache slot written once and buffers recycled) forwarding RTP does not allocate (see
//!   `tests/no_alloc.rs`). RTCP building for REMB goes through the `rtcp` crate and
//!   allocates (the accepted exception).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use relais_rtp::codec::vp8::{self, Vp8Descriptor};
use relais_rtp::codec::{h264, vp9};
use relais_rtp::extensions::{ExtensionKind, ExtensionMap, TransportSequenceNumber};
use relais_rtp::rtcp::{feedback, ReportBlock, RtcpCompound, RtcpKind, RtcpPacket, RtcpPacketView};
use relais_rtp::rtp::{ExtensionForm, RtpPacket};

use crate::conference::rewrite::{seq_newer, MAX_LATENESS};
use crate::repair::{self, RetransmissionRequester, RtxPayload};
use crate::{
    CodecName, ConferenceError, EndpointId, ForwarderConfig, ForwarderOutput, ForwarderStats,
    MediaKind, MediaLine, NegotiatedCodec,
};

/// A simulcast layer is active while its last packet is at most this old.
pub const LAYER_ACTIVE_TIMEOUT: Duration = Duration::from_secs(1);

/// While a viewer waits for a keyframe, the request is repeated this often from the timer.
pub const KEYFRAME_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Longest RTP packet accepted from a publisher (longer ones count as malformed).
pub const MAX_RTP_LEN: usize = 1500;

/// Capacity of pooled output buffers: the largest packet plus room for the SRTP tag (and the
/// two bytes an RTX retransmission adds).
pub const BUFFER_CAPACITY: usize = MAX_RTP_LEN + 32;

/// Most SSRC routes cached per publisher (bounds what garbage SSRCs can make it remember).
const MAX_SSRC_ROUTES: usize = 64;

/// Most buffers kept in the free list.
const MAX_POOLED_BUFFERS: usize = 8192;

/// Translated SRs remembered per viewer line for RTT measurement (compact NTP, send time).
const SR_HISTORY: usize = 4;

/// Output side shared by all streams: buffer pool, output queue, counters.
#[derive(Debug, Default)]
struct Io {
    pool: Vec<Vec<u8>>,
    out: VecDeque<ForwarderOutput>,
    stats: ForwarderStats,
}

impl Io {
    fn buffer(&mut self) -> Vec<u8> {
        let mut buffer = self
            .pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BUFFER_CAPACITY));
        buffer.clear();
        buffer
    }

    fn recycle(&mut self, buffer: Vec<u8>) {
        if buffer.capacity() >= BUFFER_CAPACITY && self.pool.len() < MAX_POOLED_BUFFERS {
            self.pool.push(buffer);
        }
    }

    /// Queues a PLI (RFC 4585 §6.3.1), written by hand: 12 bytes, no allocation.
    fn pli(&mut self, to: EndpointId, sender_ssrc: u32, media_ssrc: u32) {
        let mut packet = self.buffer();
        packet.extend_from_slice(&[0x81, 206, 0, 2]);
        packet.extend_from_slice(&sender_ssrc.to_be_bytes());
        packet.extend_from_slice(&media_ssrc.to_be_bytes());
        self.stats.keyframe_requests += 1;
        self.out.push_back(ForwarderOutput::Rtcp { to, packet });
    }

    fn rtcp(&mut self, to: EndpointId, packet: &RtcpPacket) {
        let mut buffer = self.buffer();
        buffer.resize(packet.marshal_size(), 0);
        match packet.marshal_to(&mut buffer) {
            Ok(len) => {
                buffer.truncate(len);
                self.out
                    .push_back(ForwarderOutput::Rtcp { to, packet: buffer });
            }
            Err(_) => self.recycle(buffer),
        }
    }
}

/// Where a media packet (original or unwrapped repair) belongs.
#[derive(Debug, Clone, Copy)]
struct MediaArrival {
    line: usize,
    layer: usize,
    /// Its SSRC was seen for the first time.
    first_sight: bool,
    /// Unwrapped from the publisher's RTX.
    repaired: bool,
}

/// Buffers reused by upstream repair, so that it does not allocate per packet.
#[derive(Debug, Default)]
struct RepairScratch {
    /// The original packet unwrapped from an RTX packet.
    rtx: Vec<u8>,
    /// Sequence numbers due for a NACK.
    due: Vec<u16>,
}

/// Sends `publisher` the NACKs `requester` wants now (new gaps, retries) for `media_ssrc`,
/// from the node's SSRC for that publisher; `due` is a reused list.
fn request_repairs(
    io: &mut Io,
    now: Instant,
    publisher: EndpointId,
    node_ssrc: u32,
    media_ssrc: u32,
    requester: &mut RetransmissionRequester,
    due: &mut Vec<u16>,
) {
    let outcome = requester.poll_requests(now, due);
    io.stats.upstream_repairs_abandoned += outcome.abandoned;
    for (nack, count) in repair::nack_packets(node_ssrc, media_ssrc, due) {
        io.stats.upstream_nacks_sent += 1;
        io.stats.upstream_nacked_packets += count as u64;
        io.rtcp(publisher, &nack);
    }
}

/// What an incoming publisher SSRC is: a layer of a line, or RTX repairing a line's layer
/// (`None` when the layer cannot be told: RTX by payload type on a simulcast line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SsrcRoute {
    Media { line: usize, layer: usize },
    Rtx { line: usize, layer: Option<usize> },
}

#[derive(Debug, Default)]
struct Layer {
    ssrc: Option<u32>,
    last_packet: Option<Instant>,
    last_keyframe_request: Option<Instant>,
    /// The newest sequence number received.
    highest_seq: Option<u16>,
    /// Upstream loss repair (video, when enabled).
    repair: Option<RetransmissionRequester>,
}

#[derive(Debug)]
struct PublisherLine {
    mid: String,
    kind: MediaKind,
    ordinal: usize,
    codecs: Vec<NegotiatedCodec>,
    extensions: ExtensionMap,
    rids: Vec<String>,
    announced: Vec<u32>,
    layers: Vec<Layer>,
}

impl PublisherLine {
    fn is_rtx_pt(&self, pt: u8) -> bool {
        self.codecs.iter().any(|c| c.rtx_payload_type == Some(pt))
    }

    /// The only layer, when the line has one (no simulcast).
    fn single_layer(&self) -> Option<usize> {
        (self.layers.len() == 1).then_some(0)
    }

    fn highest_active(&self, now: Instant) -> Option<usize> {
        self.layers.iter().rposition(|l| {
            l.last_packet
                .is_some_and(|t| now.saturating_duration_since(t) <= LAYER_ACTIVE_TIMEOUT)
        })
    }
}

#[derive(Debug)]
struct Publisher {
    endpoint: EndpointId,
    node_ssrc: u32,
    lines: Vec<PublisherLine>,
    routes: Vec<(u32, SsrcRoute)>,
    next_remb: Instant,
    next_retry: Instant,
}

impl Publisher {
    fn route<B: AsRef<[u8]>>(&mut self, packet: &RtpPacket<B>) -> Option<SsrcRoute> {
        let ssrc = packet.ssrc();
        if let Some(&(_, route)) = self.routes.iter().find(|(s, _)| *s == ssrc) {
            return Some(route);
        }
        let route = self.classify(packet)?;
        match route {
            SsrcRoute::Media { line, layer } => {
                if let Some(l) = self
                    .lines
                    .get_mut(line)
                    .and_then(|l| l.layers.get_mut(layer))
                {
                    if let Some(old) = l.ssrc.replace(ssrc) {
                        self.routes.retain(|(s, _)| *s != old);
                    }
                    l.last_keyframe_request = None;
                    l.highest_seq = None;
                    if let Some(requester) = l.repair.as_mut() {
                        requester.clear();
                    }
                }
                self.routes.push((ssrc, route));
            }
            SsrcRoute::Rtx { .. } => {
                if self.routes.len() < MAX_SSRC_ROUTES {
                    self.routes.push((ssrc, route));
                }
            }
        }
        Some(route)
    }

    fn classify<B: AsRef<[u8]>>(&self, packet: &RtpPacket<B>) -> Option<SsrcRoute> {
        let pt = packet.payload_type();
        let ssrc = packet.ssrc();
        for (index, line) in self.lines.iter().enumerate() {
            let ext = &line.extensions;
            let Some(mid) = ext.get(packet, ExtensionKind::Mid) else {
                continue;
            };
            if mid != line.mid.as_bytes() {
                continue;
            }
            if let Some(rid) = ext.get(packet, ExtensionKind::RepairedRtpStreamId) {
                let layer = line.rids.iter().position(|r| r.as_bytes() == rid);
                return Some(SsrcRoute::Rtx {
                    line: index,
                    layer: layer.or_else(|| line.single_layer()),
                });
            }
            if line.is_rtx_pt(pt) {
                return Some(SsrcRoute::Rtx {
                    line: index,
                    layer: line.single_layer(),
                });
            }
            if line.rids.is_empty() {
                return Some(SsrcRoute::Media {
                    line: index,
                    layer: 0,
                });
            }
            let rid = ext.get(packet, ExtensionKind::RtpStreamId)?;
            let layer = line.rids.iter().position(|r| r.as_bytes() == rid)?;
            return Some(SsrcRoute::Media { line: index, layer });
        }
        for (index, line) in self.lines.iter().enumerate() {
            if let Some(position) = line.announced.iter().position(|&s| s == ssrc) {
                if line.is_rtx_pt(pt) {
                    return Some(SsrcRoute::Rtx {
                        line: index,
                        layer: line.single_layer(),
                    });
                }
                let layer = if line.layers.len() > 1 {
                    position.min(line.layers.len() - 1)
                } else {
                    0
                };
                return Some(SsrcRoute::Media { line: index, layer });
            }
        }
        let mut found = None;
        for (index, line) in self.lines.iter().enumerate() {
            if line
                .codecs
                .iter()
                .any(|c| c.payload_type == pt || c.rtx_payload_type == Some(pt))
            {
                if found.is_some() {
                    return None;
                }
                found = Some((index, line));
            }
        }
        let (index, line) = found?;
        if line.is_rtx_pt(pt) {
            return Some(SsrcRoute::Rtx {
                line: index,
                layer: line.single_layer(),
            });
        }
        let layer = if line.layers.len() > 1 {
            let rid = line.extensions.get(packet, ExtensionKind::RtpStreamId)?;
            line.rids.iter().position(|r| r.as_bytes() == rid)?
        } else {
            0
        };
        Some(SsrcRoute::Media { line: index, layer })
    }

    /// One PLI for `(line, layer)`, unless one was sent less than `interval` ago.
    fn request_keyframe(
        &mut self,
        io: &mut Io,
        line: usize,
        layer: usize,
        now: Instant,
        interval: Duration,
    ) {
        let (endpoint, node_ssrc) = (self.endpoint, self.node_ssrc);
        let Some(l) = self
            .lines
            .get_mut(line)
            .and_then(|l| l.layers.get_mut(layer))
        else {
            return;
        };
        let Some(ssrc) = l.ssrc else {
            return;
        };
        if l.last_keyframe_request
            .is_some_and(|t| now.saturating_duration_since(t) < interval)
        {
            return;
        }
        l.last_keyframe_request = Some(now);
        io.pli(endpoint, node_ssrc, ssrc);
    }

    fn video_ssrcs(&self) -> Vec<u32> {
        self.lines
            .iter()
            .filter(|l| l.kind == MediaKind::Video)
            .flat_map(|l| l.layers.iter().filter_map(|layer| layer.ssrc))
            .collect()
    }
}

/// The last packet sent on a viewer line.
#[derive(Debug, Clone, Copy)]
struct LastOutput {
    seq: u16,
    ts: u32,
    at: Instant,
}

#[derive(Debug, Default)]
struct CacheSlot {
    seq: u16,
    valid: bool,
    data: Vec<u8>,
}

/// What the forwarder read from a publisher packet, passed to each viewer line.
#[derive(Debug, Clone, Copy)]
struct Incoming {
    clock_rate: u32,
    vp8: Option<Vp8Descriptor>,
}

#[derive(Debug)]
struct ViewerLine {
    kind: MediaKind,
    ordinal: usize,
    codecs: Vec<NegotiatedCodec>,
    extensions: ExtensionMap,
    send_ssrc: Option<u32>,
    send_rtx_ssrc: Option<u32>,
    tcc_id: Option<u8>,
    /// The publisher layer feeding this line (video).
    layer: Option<usize>,
    /// The layer that fed it before (its late packets are counted as dropped late).
    previous_layer: Option<usize>,
    /// The publisher SSRC the offsets below refer to.
    source: Option<u32>,
    /// The first sequence number of `source` forwarded: a late packet from before it has
    /// no number left (forgotten once far behind, before 16-bit order turns around).
    first_in_seq: Option<u16>,
    last: Option<LastOutput>,
    seq_offset: u16,
    ts_offset: u32,
    pic_offset: u16,
    tl0_offset: u8,
    last_pic: Option<u16>,
    last_tl0: Option<u8>,
    rtx_seq: u16,
    packets_sent: u32,
    octets_sent: u32,
    cache: Vec<CacheSlot>,
    /// The last translated SRs sent on this line: (compact NTP, send time), a ring.
    sr_sent: [Option<(u32, Instant)>; SR_HISTORY],
    sr_next: usize,
    /// The viewer's last reported cumulative number of packets lost for this line.
    last_cumulative_lost: Option<i32>,
}

impl ViewerLine {
    fn reset_source(&mut self) {
        self.layer = None;
        self.source = None;
        self.first_in_seq = None;
    }

    /// New source SSRC: offsets so the output continues where it stopped.
    fn resync(&mut self, now: Instant, in_seq: u16, in_ts: u32, incoming: &Incoming) {
        match self.last {
            Some(last) => {
                self.seq_offset = last.seq.wrapping_add(1).wrapping_sub(in_seq);
                let elapsed = now.saturating_duration_since(last.at);
                let ticks =
                    (elapsed.as_nanos() * u128::from(incoming.clock_rate) / 1_000_000_000) as u32;
                self.ts_offset = last.ts.wrapping_add(ticks.max(1)).wrapping_sub(in_ts);
            }
            None => {
                self.seq_offset = 0;
                self.ts_offset = 0;
            }
        }
        if let Some(d) = incoming.vp8 {
            if let Some(pid) = d.picture_id {
                self.pic_offset = self
                    .last_pic
                    .map_or(0, |p| p.wrapping_add(1).wrapping_sub(pid.value()));
            }
            if let Some(tl0) = d.tl0_pic_idx {
                self.tl0_offset = self
                    .last_tl0
                    .map_or(0, |p| p.wrapping_add(1).wrapping_sub(tl0));
            }
        }
    }

    /// Copies `packet` for this line, rewritten, into a pooled buffer and queues it.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &mut self,
        now: Instant,
        to: EndpointId,
        packet: &RtpPacket<&[u8]>,
        publisher_ext: &ExtensionMap,
        incoming: &Incoming,
        late: bool,
        out_pt: u8,
        tcc_seq: &mut u16,
        io: &mut Io,
    ) {
        let Some(send_ssrc) = self.send_ssrc else {
            return;
        };
        let (in_ssrc, in_seq, in_ts) =
            (packet.ssrc(), packet.sequence_number(), packet.timestamp());
        if self.source != Some(in_ssrc) {
            if late {
                io.stats.dropped_late += 1;
                return;
            }
            self.resync(now, in_seq, in_ts, incoming);
            self.source = Some(in_ssrc);
            self.first_in_seq = Some(in_seq);
        }
        match self.first_in_seq {
            Some(first) if late && seq_newer(first, in_seq) => {
                // Its outgoing number went out for the previous source already.
                io.stats.dropped_late += 1;
                return;
            }
            Some(first) if in_seq.wrapping_sub(first) > MAX_LATENESS => self.first_in_seq = None,
            _ => {}
        }
        let out_seq = in_seq.wrapping_add(self.seq_offset);
        let out_ts = in_ts.wrapping_add(self.ts_offset);
        let mut buffer = io.buffer();
        buffer.extend_from_slice(packet.as_bytes());
        let (mut out_pic, mut out_tl0, payload_len) = (None, None, packet.payload().len());
        {
            let Ok(mut out) = RtpPacket::parse(buffer.as_mut_slice()) else {
                io.recycle(buffer);
                return;
            };
            out.set_ssrc(send_ssrc);
            out.set_payload_type(out_pt);
            out.set_sequence_number(out_seq);
            out.set_timestamp(out_ts);
            let two_byte = out.extension_form() == Some(ExtensionForm::TwoByte);
            let viewer_ext = &self.extensions;
            // Ids are checked against the form, so this cannot fail; on error the packet keeps
            // the publisher's ids, which the viewer ignores.
            let _ = out.remap_extension_ids(|id| match publisher_ext.kind(id)? {
                ExtensionKind::Mid
                | ExtensionKind::RtpStreamId
                | ExtensionKind::RepairedRtpStreamId => None,
                kind => viewer_ext.id(kind).filter(|&new| two_byte || new <= 14),
            });
            if let Some(value) = self.tcc_id.and_then(|id| out.extension_mut(id)) {
                if TransportSequenceNumber(*tcc_seq).write(value).is_ok() {
                    *tcc_seq = tcc_seq.wrapping_add(1);
                }
            }
            if let Some(d) = incoming.vp8 {
                let payload = out.payload_mut();
                if let Some(pid) = d.picture_id {
                    let value = pid.value().wrapping_add(self.pic_offset);
                    if vp8::rewrite_picture_id(payload, value).is_ok() {
                        out_pic = Some(pid.with_value(value).value());
                    }
                }
                if let Some(tl0) = d.tl0_pic_idx {
                    let value = tl0.wrapping_add(self.tl0_offset);
                    if vp8::rewrite_tl0_pic_idx(payload, value).is_ok() {
                        out_tl0 = Some(value);
                    }
                }
            }
        }
        if self.last.is_none_or(|last| seq_newer(out_seq, last.seq)) {
            self.last = Some(LastOutput {
                seq: out_seq,
                ts: out_ts,
                at: now,
            });
            self.last_pic = out_pic.or(self.last_pic);
            self.last_tl0 = out_tl0.or(self.last_tl0);
        }
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(payload_len as u32);
        let slots = self.cache.len();
        if let Some(slot) = slots
            .checked_sub(1)
            .and_then(|_| self.cache.get_mut(usize::from(out_seq) % slots))
        {
            slot.data.clear();
            slot.data.extend_from_slice(&buffer);
            slot.seq = out_seq;
            slot.valid = true;
        }
        io.stats.rtp_forwarded += 1;
        io.out
            .push_back(ForwarderOutput::Rtp { to, packet: buffer });
    }

    /// Sends output packet `seq` again from the cache (as RTX when negotiated).
    fn retransmit(&mut self, to: EndpointId, seq: u16, tcc_seq: &mut u16, io: &mut Io) -> bool {
        let slots = self.cache.len();
        if slots == 0 {
            return false;
        }
        let Some(slot) = self.cache.get(usize::from(seq) % slots) else {
            return false;
        };
        if !slot.valid || slot.seq != seq {
            return false;
        }
        let Ok(original) = RtpPacket::parse(slot.data.as_slice()) else {
            return false;
        };
        let rtx_pt = self
            .codecs
            .iter()
            .find(|c| c.payload_type == original.payload_type())
            .and_then(|c| c.rtx_payload_type);
        let mut buffer = io.buffer();
        let rtx = match (self.send_rtx_ssrc, rtx_pt) {
            (Some(rtx_ssrc), Some(rtx_pt)) => {
                let header = slot.data.get(..original.header_len()).unwrap_or_default();
                buffer.extend_from_slice(header);
                buffer.extend_from_slice(&seq.to_be_bytes());
                buffer.extend_from_slice(original.payload());
                if let Some(first) = buffer.first_mut() {
                    // The padding, if any, was not copied.
                    *first &= !0x20;
                }
                Some((rtx_ssrc, rtx_pt))
            }
            _ => {
                buffer.extend_from_slice(&slot.data);
                None
            }
        };
        let Ok(mut out) = RtpPacket::parse(buffer.as_mut_slice()) else {
            io.recycle(buffer);
            return false;
        };
        if let Some((rtx_ssrc, rtx_pt)) = rtx {
            out.set_ssrc(rtx_ssrc);
            out.set_payload_type(rtx_pt);
            out.set_sequence_number(self.rtx_seq);
            self.rtx_seq = self.rtx_seq.wrapping_add(1);
        }
        if let Some(value) = self.tcc_id.and_then(|id| out.extension_mut(id)) {
            if TransportSequenceNumber(*tcc_seq).write(value).is_ok() {
                *tcc_seq = tcc_seq.wrapping_add(1);
            }
        }
        io.stats.retransmitted += 1;
        io.out
            .push_back(ForwarderOutput::Rtp { to, packet: buffer });
        true
    }

    /// A reduced-size SR for this line from the publisher's SR of the source SSRC.
    fn sender_report(
        &mut self,
        now: Instant,
        to: EndpointId,
        ntp: u64,
        rtp_time: u32,
        io: &mut Io,
    ) {
        let (Some(ssrc), Some(_)) = (self.send_ssrc, self.last) else {
            return;
        };
        let mut packet = io.buffer();
        packet.extend_from_slice(&[0x80, 200, 0, 6]);
        packet.extend_from_slice(&ssrc.to_be_bytes());
        packet.extend_from_slice(&ntp.to_be_bytes());
        packet.extend_from_slice(&rtp_time.wrapping_add(self.ts_offset).to_be_bytes());
        packet.extend_from_slice(&self.packets_sent.to_be_bytes());
        packet.extend_from_slice(&self.octets_sent.to_be_bytes());
        io.out.push_back(ForwarderOutput::Rtcp { to, packet });
        if let Some(slot) = self.sr_sent.get_mut(self.sr_next % SR_HISTORY) {
            *slot = Some(((ntp >> 16) as u32, now));
        }
        self.sr_next = (self.sr_next + 1) % SR_HISTORY;
    }

    /// A viewer's report block about this line: loss accounting and RTT (RFC 3550 §6.4.1).
    fn report_block(&mut self, now: Instant, block: &ReportBlock<'_>, stats: &mut ForwarderStats) {
        // Counted from 0 on the first report; a decrease (duplicates, a reset) is ignored
        // until the cumulative count passes its highest value again.
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
        let Some(rtt) = now.saturating_duration_since(*sent).checked_sub(dlsr) else {
            return;
        };
        stats.record_rtt_ms(u64::try_from(rtt.as_millis()).unwrap_or(u64::MAX));
    }
}

#[derive(Debug)]
struct Viewer {
    endpoint: EndpointId,
    lines: Vec<ViewerLine>,
    /// The viewer endpoint's transport-wide sequence counter (all its m-lines).
    tcc_seq: u16,
}

#[derive(Debug, Default)]
struct Stream {
    publisher: Option<Publisher>,
    viewers: Vec<Viewer>,
}

impl Stream {
    fn reset_viewers(&mut self) {
        for line in self.viewers.iter_mut().flat_map(|v| v.lines.iter_mut()) {
            line.reset_source();
        }
    }

    fn forward_rtp(
        &mut self,
        now: Instant,
        packet: &[u8],
        config: &ForwarderConfig,
        io: &mut Io,
        scratch: &mut RepairScratch,
    ) {
        let Some(publisher) = self.publisher.as_mut() else {
            io.stats.dropped_unknown_endpoint += 1;
            return;
        };
        if packet.len() > MAX_RTP_LEN {
            io.stats.dropped_malformed += 1;
            return;
        }
        let Ok(packet) = RtpPacket::parse(packet) else {
            io.stats.dropped_malformed += 1;
            return;
        };
        let known_before = publisher.routes.len();
        let route = publisher.route(&packet);
        let first_sight = publisher.routes.len() != known_before;
        match route {
            Some(SsrcRoute::Media { line, layer }) => {
                let arrival = MediaArrival {
                    line,
                    layer,
                    first_sight,
                    repaired: false,
                };
                self.forward_media(now, &packet, arrival, config, io, &mut scratch.due);
            }
            Some(SsrcRoute::Rtx { line, layer }) => {
                self.publisher_rtx(now, &packet, line, layer, config, io, scratch);
            }
            None => io.stats.dropped_unknown_stream += 1,
        }
    }

    /// A publisher's RTX packet: unwrapped and forwarded as the original when that is still
    /// missing; dropped (counted) otherwise.
    #[allow(clippy::too_many_arguments)]
    fn publisher_rtx(
        &mut self,
        now: Instant,
        packet: &RtpPacket<&[u8]>,
        line_index: usize,
        layer_index: Option<usize>,
        config: &ForwarderConfig,
        io: &mut Io,
        scratch: &mut RepairScratch,
    ) {
        let RepairScratch { rtx, due } = scratch;
        let line = self
            .publisher
            .as_ref()
            .and_then(|p| p.lines.get(line_index))
            .filter(|_| config.upstream_repair.enabled);
        let rtx_pt = packet.payload_type();
        let media_pt = line.and_then(|l| {
            l.codecs
                .iter()
                .find(|c| c.rtx_payload_type == Some(rtx_pt))
                .map(|c| c.payload_type)
        });
        let layer = layer_index.and_then(|index| Some((index, line?.layers.get(index)?)));
        let (Some(media_pt), Some((layer_index, layer))) = (media_pt, layer) else {
            io.stats.dropped_publisher_rtx += 1;
            return;
        };
        let Some(media_ssrc) = layer.ssrc else {
            io.stats.dropped_publisher_rtx += 1;
            return;
        };
        match repair::unwrap_rtx(packet, media_ssrc, media_pt, rtx) {
            RtxPayload::Padding => io.stats.dropped_publisher_rtx += 1,
            RtxPayload::Original(seq) => {
                if !layer.repair.as_ref().is_some_and(|r| r.is_missing(seq)) {
                    io.stats.publisher_rtx_duplicate += 1;
                    return;
                }
                let Ok(original) = RtpPacket::parse(rtx.as_slice()) else {
                    io.stats.dropped_malformed += 1;
                    return;
                };
                let arrival = MediaArrival {
                    line: line_index,
                    layer: layer_index,
                    first_sight: false,
                    repaired: true,
                };
                self.forward_media(now, &original, arrival, config, io, due);
            }
        }
    }

    /// A media packet of a publisher layer, original or repaired.
    fn forward_media(
        &mut self,
        now: Instant,
        packet: &RtpPacket<&[u8]>,
        arrival: MediaArrival,
        config: &ForwarderConfig,
        io: &mut Io,
        due: &mut Vec<u16>,
    ) {
        let MediaArrival {
            line: line_index,
            layer: layer_index,
            first_sight,
            repaired,
        } = arrival;
        let Stream { publisher, viewers } = self;
        let Some(publisher) = publisher.as_mut() else {
            io.stats.dropped_unknown_endpoint += 1;
            return;
        };
        let (endpoint, node_ssrc) = (publisher.endpoint, publisher.node_ssrc);
        let Some(line) = publisher.lines.get_mut(line_index) else {
            io.stats.dropped_unknown_stream += 1;
            return;
        };
        let pt = packet.payload_type();
        let Some(codec) = line.codecs.iter().find(|c| c.payload_type == pt) else {
            if line.is_rtx_pt(pt) {
                io.stats.dropped_publisher_rtx += 1;
            } else {
                io.stats.dropped_unknown_stream += 1;
            }
            return;
        };
        let (codec_name, clock_rate) = (codec.name, codec.clock_rate);
        let payload = packet.payload();
        let (keyframe, vp8) = match codec_name {
            CodecName::Vp8 => match vp8::parse(payload) {
                Ok(d) => (d.is_keyframe, Some(d)),
                Err(_) => {
                    io.stats.dropped_malformed += 1;
                    return;
                }
            },
            CodecName::Vp9 => (vp9::parse(payload).is_ok_and(|d| d.is_keyframe()), None),
            CodecName::H264 => (h264::parse(payload).is_ok_and(|d| d.is_keyframe()), None),
            CodecName::Av1 => (relais_rtp::codec::av1::starts_keyframe(payload), None),
            CodecName::Opus => (false, None),
        };
        let (kind, ordinal) = (line.kind, line.ordinal);
        let seq = packet.sequence_number();
        let mut late = false;
        if let Some(layer) = line.layers.get_mut(layer_index) {
            match layer.highest_seq {
                Some(highest) if !seq_newer(seq, highest) => {
                    if highest.wrapping_sub(seq) > MAX_LATENESS {
                        io.stats.dropped_late += 1;
                        return;
                    }
                    // Not a sign of life: a repair of a layer that stopped must not make
                    // viewers switch back to it.
                    late = true;
                }
                _ => {
                    layer.highest_seq = Some(seq);
                    layer.last_packet = Some(now);
                }
            }
            if let Some(requester) = layer.repair.as_mut() {
                let arrival = if repaired {
                    requester.on_repair(now, seq)
                } else {
                    requester.on_packet(now, seq)
                };
                match arrival {
                    // A new gap is asked for at once.
                    repair::Arrival::Newest { gap } if gap > 0 => {
                        request_repairs(io, now, endpoint, node_ssrc, packet.ssrc(), requester, due)
                    }
                    repair::Arrival::Filled if repaired => io.stats.publisher_rtx_recovered += 1,
                    _ => {}
                }
            }
        }
        let target = line.highest_active(now).unwrap_or(layer_index);
        let incoming = Incoming { clock_rate, vp8 };
        let mut want_keyframe = first_sight && kind == MediaKind::Video && !keyframe;
        for viewer in viewers.iter_mut() {
            let Viewer {
                endpoint,
                lines,
                tcc_seq,
            } = viewer;
            for vline in lines
                .iter_mut()
                .filter(|v| v.kind == kind && v.ordinal == ordinal && v.send_ssrc.is_some())
            {
                if kind == MediaKind::Video && vline.layer != Some(layer_index) {
                    if late {
                        // A late packet never starts a layer (what followed it is gone).
                        // Counted when the viewer got its layer before: then it is a
                        // packet the viewer misses.
                        if vline.previous_layer == Some(layer_index) {
                            io.stats.dropped_late += 1;
                        }
                        continue;
                    }
                    if layer_index != target {
                        continue;
                    }
                    if !keyframe {
                        want_keyframe = true;
                        continue;
                    }
                    vline.previous_layer = vline.layer.replace(layer_index);
                }
                let Some(out_pt) = vline
                    .codecs
                    .iter()
                    .find(|c| c.name == codec_name)
                    .map(|c| c.payload_type)
                else {
                    continue;
                };
                vline.forward(
                    now,
                    *endpoint,
                    packet,
                    &line.extensions,
                    &incoming,
                    late,
                    out_pt,
                    tcc_seq,
                    io,
                );
            }
        }
        if want_keyframe && !viewers.is_empty() {
            publisher.request_keyframe(
                io,
                line_index,
                target,
                now,
                config.keyframe_request_interval,
            );
        }
    }

    fn viewer_rtcp(
        &mut self,
        now: Instant,
        viewer_index: usize,
        compound: &[u8],
        config: &ForwarderConfig,
        io: &mut Io,
    ) {
        for item in RtcpCompound::new(compound) {
            let Ok(view) = item else {
                io.stats.dropped_rtcp += 1;
                break;
            };
            match view.kind() {
                RtcpKind::SenderReport | RtcpKind::ReceiverReport => {
                    if let Some(viewer) = self.viewers.get_mut(viewer_index) {
                        for block in view.report_blocks() {
                            if let Some(vline) = viewer
                                .lines
                                .iter_mut()
                                .find(|l| l.send_ssrc == Some(block.ssrc()))
                            {
                                vline.report_block(now, &block, &mut io.stats);
                            }
                        }
                    }
                }
                RtcpKind::Pli => {
                    io.stats.plis_received += 1;
                    if let Some(ssrc) = view.media_ssrc() {
                        self.viewer_keyframe_request(now, viewer_index, ssrc, config, io);
                    }
                }
                RtcpKind::Fir => {
                    io.stats.firs_received += 1;
                    let fci = view.payload().get(8..).unwrap_or_default();
                    for entry in fci.chunks_exact(8) {
                        if let Some(ssrc) = entry.first_chunk::<4>() {
                            let ssrc = u32::from_be_bytes(*ssrc);
                            self.viewer_keyframe_request(now, viewer_index, ssrc, config, io);
                        }
                    }
                }
                RtcpKind::Nack => {
                    io.stats.nacks_received += 1;
                    io.stats.nacked_packets += view.nack_pairs().sequence_numbers().count() as u64;
                    self.viewer_nack(viewer_index, &view, io);
                }
                _ => {}
            }
        }
    }

    fn viewer_keyframe_request(
        &mut self,
        now: Instant,
        viewer_index: usize,
        ssrc: u32,
        config: &ForwarderConfig,
        io: &mut Io,
    ) {
        let Some(vline) = self
            .viewers
            .get(viewer_index)
            .and_then(|v| v.lines.iter().find(|l| l.send_ssrc == Some(ssrc)))
        else {
            io.stats.dropped_rtcp += 1;
            return;
        };
        let (kind, ordinal, layer) = (vline.kind, vline.ordinal, vline.layer);
        let Some(publisher) = self.publisher.as_mut() else {
            return;
        };
        let Some((line_index, line)) = publisher
            .lines
            .iter()
            .enumerate()
            .find(|(_, l)| l.kind == kind && l.ordinal == ordinal)
        else {
            return;
        };
        if kind != MediaKind::Video {
            return;
        }
        let Some(layer) = layer.or_else(|| line.highest_active(now)) else {
            return;
        };
        publisher.request_keyframe(io, line_index, layer, now, config.keyframe_request_interval);
    }

    fn viewer_nack(&mut self, viewer_index: usize, view: &RtcpPacketView<'_>, io: &mut Io) {
        let Some(viewer) = self.viewers.get_mut(viewer_index) else {
            return;
        };
        let Viewer {
            endpoint,
            lines,
            tcc_seq,
        } = viewer;
        let media_ssrc = view.media_ssrc();
        let Some(vline) = lines
            .iter_mut()
            .find(|l| l.send_ssrc.is_some() && l.send_ssrc == media_ssrc)
        else {
            io.stats.dropped_rtcp += 1;
            return;
        };
        for seq in view.nack_pairs().sequence_numbers() {
            vline.retransmit(*endpoint, seq, tcc_seq, io);
        }
    }

    fn publisher_rtcp(&mut self, now: Instant, compound: &[u8], io: &mut Io) {
        for item in RtcpCompound::new(compound) {
            let Ok(view) = item else {
                io.stats.dropped_rtcp += 1;
                break;
            };
            if view.kind() != RtcpKind::SenderReport {
                continue;
            }
            let (Some(ssrc), Some(info)) = (view.sender_ssrc(), view.sender_info()) else {
                continue;
            };
            for viewer in &mut self.viewers {
                let endpoint = viewer.endpoint;
                for vline in viewer.lines.iter_mut().filter(|l| l.source == Some(ssrc)) {
                    vline.sender_report(now, endpoint, info.ntp_time, info.rtp_time, io);
                }
            }
        }
    }
}

/// What an endpoint is, and of which stream.
#[derive(Debug)]
enum Role {
    Publisher(String),
    Viewer(String),
}

/// Forwards each stream's publisher media to the stream's viewers (sans-IO).
#[derive(Debug)]
pub struct Forwarder {
    config: ForwarderConfig,
    io: Io,
    scratch: RepairScratch,
    streams: HashMap<String, Stream>,
    endpoints: HashMap<EndpointId, Role>,
}

/// Gives each line its ordinal among the endpoint's lines of the same kind.
fn ordinals(lines: &[MediaLine]) -> impl Iterator<Item = (usize, &MediaLine)> {
    let (mut audio, mut video) = (0, 0);
    lines.iter().map(move |line| {
        let counter = match line.kind {
            MediaKind::Audio => &mut audio,
            MediaKind::Video => &mut video,
        };
        let ordinal = *counter;
        *counter += 1;
        (ordinal, line)
    })
}

fn check_codecs(lines: &[MediaLine]) -> Result<(), ConferenceError> {
    match lines.iter().find(|l| l.codecs.is_empty()) {
        Some(line) => Err(ConferenceError::NoUsableCodec {
            mid: line.mid.clone(),
        }),
        None => Ok(()),
    }
}

impl Forwarder {
    /// An empty forwarder.
    pub fn new(config: ForwarderConfig) -> Self {
        Self {
            config,
            io: Io::default(),
            scratch: RepairScratch {
                rtx: Vec::with_capacity(MAX_RTP_LEN),
                due: Vec::with_capacity(repair::MAX_MISSING),
            },
            streams: HashMap::new(),
            endpoints: HashMap::new(),
        }
    }

    /// The sender SSRC of the RTCP the node sends to `endpoint` (PLI, REMB): a fixed,
    /// non-zero value derived from the endpoint id.
    pub fn node_ssrc(endpoint: EndpointId) -> u32 {
        let folded = (endpoint.0 as u32) ^ ((endpoint.0 >> 32) as u32);
        match folded.wrapping_mul(0x9E37_79B1) ^ 0x524C_5300 {
            0 => 1,
            ssrc => ssrc,
        }
    }

    /// Makes `endpoint` the publisher of `stream`. An existing publisher of the stream is
    /// replaced (a reconnect): viewers keep their SSRCs and see continuous sequence numbers
    /// and timestamps.
    pub fn add_publisher(
        &mut self,
        now: Instant,
        stream: &str,
        endpoint: EndpointId,
        lines: Vec<MediaLine>,
    ) -> Result<(), ConferenceError> {
        if self.endpoints.contains_key(&endpoint) {
            return Err(ConferenceError::EndpointExists);
        }
        check_codecs(&lines)?;
        let mut publisher = Publisher {
            endpoint,
            node_ssrc: Self::node_ssrc(endpoint),
            lines: Vec::with_capacity(lines.len()),
            routes: Vec::new(),
            next_remb: now,
            next_retry: now + KEYFRAME_RETRY_INTERVAL,
        };
        for (ordinal, line) in ordinals(&lines) {
            let repair = (line.kind == MediaKind::Video && self.config.upstream_repair.enabled)
                .then_some(self.config.upstream_repair);
            let mut layers: Vec<Layer> = (0..line.simulcast_rids.len().max(1))
                .map(|_| Layer {
                    repair: repair.map(RetransmissionRequester::new),
                    ..Layer::default()
                })
                .collect();
            let index = publisher.lines.len();
            for (position, &ssrc) in line.announced_ssrcs.iter().enumerate() {
                if line.simulcast_rids.is_empty() && position > 0 {
                    // Without simulcast, further announced SSRCs are RTX (FID): found by PT.
                    break;
                }
                if let Some(layer) = layers.get_mut(position) {
                    layer.ssrc = Some(ssrc);
                    publisher.routes.push((
                        ssrc,
                        SsrcRoute::Media {
                            line: index,
                            layer: position,
                        },
                    ));
                }
            }
            if line.kind == MediaKind::Audio {
                layers.truncate(1);
            }
            publisher.lines.push(PublisherLine {
                mid: line.mid.clone(),
                kind: line.kind,
                ordinal,
                codecs: line.codecs.clone(),
                extensions: line.extensions.clone(),
                rids: line.simulcast_rids.clone(),
                announced: line.announced_ssrcs.clone(),
                layers,
            });
        }
        let entry = self.streams.entry(stream.to_owned()).or_default();
        if let Some(old) = entry.publisher.take() {
            self.endpoints.remove(&old.endpoint);
        }
        entry.reset_viewers();
        // Keyframes for the viewers right away where the SSRCs are already known.
        if !entry.viewers.is_empty() {
            for line_index in 0..publisher.lines.len() {
                let layers = publisher
                    .lines
                    .get(line_index)
                    .filter(|l| l.kind == MediaKind::Video)
                    .map_or(0, |l| l.layers.len());
                for layer in 0..layers {
                    publisher.request_keyframe(
                        &mut self.io,
                        line_index,
                        layer,
                        now,
                        self.config.keyframe_request_interval,
                    );
                }
            }
        }
        entry.publisher = Some(publisher);
        self.endpoints
            .insert(endpoint, Role::Publisher(stream.to_owned()));
        Ok(())
    }

    /// Adds `endpoint` as a viewer of `stream` (which may have no publisher yet).
    pub fn add_viewer(
        &mut self,
        now: Instant,
        stream: &str,
        endpoint: EndpointId,
        lines: Vec<MediaLine>,
    ) -> Result<(), ConferenceError> {
        let _ = now;
        if self.endpoints.contains_key(&endpoint) {
            return Err(ConferenceError::EndpointExists);
        }
        check_codecs(&lines)?;
        let cache_len = self.config.retransmission_cache_packets;
        let viewer_lines = ordinals(&lines)
            .map(|(ordinal, line)| ViewerLine {
                kind: line.kind,
                ordinal,
                codecs: line.codecs.clone(),
                extensions: line.extensions.clone(),
                send_ssrc: line.send_ssrc,
                send_rtx_ssrc: line.send_rtx_ssrc,
                tcc_id: line.extensions.id(ExtensionKind::TransportCc),
                layer: None,
                previous_layer: None,
                source: None,
                first_in_seq: None,
                last: None,
                seq_offset: 0,
                ts_offset: 0,
                pic_offset: 0,
                tl0_offset: 0,
                last_pic: None,
                last_tl0: None,
                rtx_seq: 0,
                packets_sent: 0,
                octets_sent: 0,
                sr_sent: [None; SR_HISTORY],
                sr_next: 0,
                last_cumulative_lost: None,
                cache: if line.kind == MediaKind::Video {
                    (0..cache_len).map(|_| CacheSlot::default()).collect()
                } else {
                    Vec::new()
                },
            })
            .collect();
        self.streams
            .entry(stream.to_owned())
            .or_default()
            .viewers
            .push(Viewer {
                endpoint,
                lines: viewer_lines,
                tcc_seq: 1,
            });
        self.endpoints
            .insert(endpoint, Role::Viewer(stream.to_owned()));
        Ok(())
    }

    /// Removes a publisher or viewer and frees its state.
    pub fn remove_endpoint(&mut self, now: Instant, endpoint: EndpointId) {
        let _ = now;
        let Some(role) = self.endpoints.remove(&endpoint) else {
            return;
        };
        let name = match &role {
            Role::Publisher(name) | Role::Viewer(name) => name,
        };
        let Some(stream) = self.streams.get_mut(name.as_str()) else {
            return;
        };
        match role {
            Role::Publisher(_) => {
                if stream
                    .publisher
                    .as_ref()
                    .is_some_and(|p| p.endpoint == endpoint)
                {
                    stream.publisher = None;
                    stream.reset_viewers();
                }
            }
            Role::Viewer(_) => stream.viewers.retain(|v| v.endpoint != endpoint),
        }
        if stream.publisher.is_none() && stream.viewers.is_empty() {
            self.streams.remove(name.as_str());
        }
    }

    /// A decrypted RTP packet from `from`.
    pub fn handle_rtp(&mut self, now: Instant, from: EndpointId, packet: &[u8]) {
        match self.endpoints.get(&from) {
            Some(Role::Publisher(name)) => match self.streams.get_mut(name.as_str()) {
                Some(stream) => {
                    stream.forward_rtp(now, packet, &self.config, &mut self.io, &mut self.scratch)
                }
                None => self.io.stats.dropped_unknown_endpoint += 1,
            },
            // Viewers send no media to the forwarder.
            Some(Role::Viewer(_)) => self.io.stats.dropped_unknown_stream += 1,
            None => self.io.stats.dropped_unknown_endpoint += 1,
        }
    }

    /// A decrypted (compound) RTCP packet from `from`.
    pub fn handle_rtcp(&mut self, now: Instant, from: EndpointId, compound: &[u8]) {
        let (name, viewer) = match self.endpoints.get(&from) {
            Some(Role::Publisher(name)) => (name, false),
            Some(Role::Viewer(name)) => (name, true),
            None => {
                self.io.stats.dropped_unknown_endpoint += 1;
                return;
            }
        };
        let Some(stream) = self.streams.get_mut(name.as_str()) else {
            self.io.stats.dropped_unknown_endpoint += 1;
            return;
        };
        if viewer {
            if let Some(index) = stream.viewers.iter().position(|v| v.endpoint == from) {
                stream.viewer_rtcp(now, index, compound, &self.config, &mut self.io);
            }
        } else {
            stream.publisher_rtcp(now, compound, &mut self.io);
        }
    }

    /// Drives timers (REMB to publishers, keyframe request retries, NACK retries).
    pub fn handle_timeout(&mut self, now: Instant) {
        let config = &self.config;
        let io = &mut self.io;
        for stream in self.streams.values_mut() {
            let Stream { publisher, viewers } = stream;
            let Some(publisher) = publisher.as_mut() else {
                continue;
            };
            if now >= publisher.next_remb {
                publisher.next_remb = now + config.publisher_remb_interval;
                let ssrcs = publisher.video_ssrcs();
                if !ssrcs.is_empty() {
                    if let Ok(remb) =
                        feedback::remb(publisher.node_ssrc, config.publisher_remb_bps, &ssrcs)
                    {
                        io.rtcp(publisher.endpoint, &RtcpPacket::from(remb));
                    }
                }
            }
            let (endpoint, node_ssrc) = (publisher.endpoint, publisher.node_ssrc);
            for layer in publisher.lines.iter_mut().flat_map(|l| l.layers.iter_mut()) {
                let (Some(ssrc), Some(requester)) = (layer.ssrc, layer.repair.as_mut()) else {
                    continue;
                };
                if requester.poll_timeout().is_some_and(|due| due <= now) {
                    let due = &mut self.scratch.due;
                    request_repairs(io, now, endpoint, node_ssrc, ssrc, requester, due);
                }
            }
            if now >= publisher.next_retry {
                publisher.next_retry = now + KEYFRAME_RETRY_INTERVAL;
                for line_index in 0..publisher.lines.len() {
                    let Some(line) = publisher.lines.get(line_index) else {
                        continue;
                    };
                    if line.kind != MediaKind::Video {
                        continue;
                    }
                    let Some(target) = line.highest_active(now) else {
                        continue;
                    };
                    let ordinal = line.ordinal;
                    let waiting = viewers.iter().flat_map(|v| v.lines.iter()).any(|l| {
                        l.kind == MediaKind::Video
                            && l.ordinal == ordinal
                            && l.send_ssrc.is_some()
                            && l.layer != Some(target)
                    });
                    if waiting {
                        publisher.request_keyframe(
                            io,
                            line_index,
                            target,
                            now,
                            config.keyframe_request_interval,
                        );
                    }
                }
            }
        }
    }

    /// When [`Forwarder::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.streams
            .values()
            .filter_map(|s| s.publisher.as_ref())
            .map(|p| {
                let repairs = p
                    .lines
                    .iter()
                    .flat_map(|l| l.layers.iter())
                    .filter_map(|l| l.repair.as_ref()?.poll_timeout());
                repairs.fold(p.next_remb.min(p.next_retry), Instant::min)
            })
            .min()
    }

    /// The next packet to protect and send.
    pub fn poll_output(&mut self) -> Option<ForwarderOutput> {
        self.io.out.pop_front()
    }

    /// Returns a sent output buffer to the pool.
    pub fn recycle(&mut self, buffer: Vec<u8>) {
        self.io.recycle(buffer);
    }

    /// Counters.
    pub fn stats(&self) -> ForwarderStats {
        self.io.stats
    }
}
