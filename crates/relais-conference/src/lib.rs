//! The forwarding core of relais, sans-IO: it takes decrypted RTP/RTCP and time, and returns
//! the plaintext packets to protect and send to each endpoint.
//!
//! Two shapes share the packet handling: [`Forwarder`] serves one publisher's streams to
//! many viewers (WHIP/WHEP); [`Conference`] is the multi-party model Jitsi Meet uses
//! (endpoints publishing named sources, per-receiver allocation with last-N, simulcast and
//! SVC layer selection, dominant speaker, silence suppression).

use relais_rtp::extensions::ExtensionMap;

pub mod allocation;
pub mod conference;
mod forwarder;
pub mod repair;
pub mod speech;

pub use conference::{
    AudioSubscription, Conference, ConferenceConfig, ConferenceEvent, ConferenceOutput,
    EndpointDescription, PublishedSource,
};
pub use forwarder::Forwarder;
pub use repair::RepairConfig;

/// One endpoint: one ICE/DTLS transport (a WHIP publisher or a WHEP viewer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(pub u64);

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// An audio m-line.
    Audio,
    /// A video m-line.
    Video,
}

/// The codecs the forwarder knows how to inspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecName {
    /// Opus audio.
    Opus,
    /// VP8 video.
    Vp8,
    /// VP9 video.
    Vp9,
    /// H264 video.
    H264,
    /// AV1 video (layers from the dependency descriptor extension).
    Av1,
}

/// A codec as negotiated on one endpoint's m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedCodec {
    /// The payload type this endpoint uses for the codec.
    pub payload_type: u8,
    /// Which codec.
    pub name: CodecName,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// The RTX (RFC 4588) payload type for this codec, when negotiated.
    pub rtx_payload_type: Option<u8>,
}

/// What one endpoint negotiated for one m-line.
#[derive(Debug, Clone)]
pub struct MediaLine {
    /// The m-line's mid.
    pub mid: String,
    /// Audio or video.
    pub kind: MediaKind,
    /// The codecs, with this endpoint's payload types.
    pub codecs: Vec<NegotiatedCodec>,
    /// The header extensions, with this endpoint's ids.
    pub extensions: ExtensionMap,
    /// Publisher: the simulcast rids in the order of the offer's `a=simulcast:send` (Chromium:
    /// lowest resolution first); empty without simulcast.
    pub simulcast_rids: Vec<String>,
    /// Publisher: SSRCs announced with `a=ssrc` (clients without rid/mid extensions).
    pub announced_ssrcs: Vec<u32>,
    /// Viewer: the SSRC the node sends on this m-line.
    pub send_ssrc: Option<u32>,
    /// Viewer: the RTX SSRC the node sends retransmissions on, when RTX is negotiated.
    pub send_rtx_ssrc: Option<u32>,
}

/// Tunables of the forwarder.
#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    /// Minimum spacing of keyframe requests (PLI) to one publisher stream.
    pub keyframe_request_interval: std::time::Duration,
    /// Packets kept per outgoing video stream to answer NACKs.
    pub retransmission_cache_packets: usize,
    /// Bitrate announced to publishers with REMB until bandwidth estimation exists.
    pub publisher_remb_bps: u64,
    /// REMB interval.
    pub publisher_remb_interval: std::time::Duration,
    /// NACKs to publishers for what they lost on the way to the node, and unwrapping of
    /// their RTX.
    pub upstream_repair: RepairConfig,
}

impl Default for ForwarderConfig {
    fn default() -> Self {
        Self {
            keyframe_request_interval: std::time::Duration::from_millis(500),
            retransmission_cache_packets: 512,
            publisher_remb_bps: 3_000_000,
            publisher_remb_interval: std::time::Duration::from_secs(1),
            upstream_repair: RepairConfig::default(),
        }
    }
}

/// A packet for the driver to SRTP-protect and send to `to`'s selected 5-tuple.
///
/// The buffer comes from the forwarder's pool and has room after the packet for the SRTP
/// tag; hand it back with [`Forwarder::recycle`] once sent, so steady-state forwarding does
/// not allocate.
#[derive(Debug)]
pub enum ForwarderOutput {
    /// A plaintext RTP packet.
    Rtp {
        /// The receiving endpoint.
        to: EndpointId,
        /// The packet (`packet.len()` is the plaintext length; capacity has tag room).
        packet: Vec<u8>,
    },
    /// A plaintext (compound) RTCP packet.
    Rtcp {
        /// The receiving endpoint.
        to: EndpointId,
        /// The packet.
        packet: Vec<u8>,
    },
}

/// Why the forwarder refused a control call.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConferenceError {
    /// The endpoint id is already in use.
    #[error("endpoint already exists")]
    EndpointExists,
    /// No endpoint with this id.
    #[error("unknown endpoint")]
    UnknownEndpoint,
    /// No source with this name belongs to the endpoint.
    #[error("unknown source")]
    UnknownSource,
    /// More SSRCs announced than an endpoint may have.
    #[error("too many SSRCs (at most {})", conference::MAX_SSRCS_PER_ENDPOINT)]
    TooManySsrcs,
    /// The same SSRC announced twice.
    #[error("SSRC {0} announced twice")]
    DuplicateSsrc(u32),
    /// A source without any SSRC.
    #[error("source {0:?} has no SSRC")]
    NoSsrc(String),
    /// The source name or one of its SSRCs belongs to another endpoint.
    #[error("source {0:?} or its SSRCs belong to another endpoint")]
    SourceInUse(String),
    /// A media line has no codec the forwarder can use.
    #[error("m-line {mid:?} has no usable codec")]
    NoUsableCodec {
        /// The m-line.
        mid: String,
    },
}

/// Counters of what the forwarder dropped, by reason (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForwarderStats {
    /// RTP packets forwarded (one per receiver copy).
    pub rtp_forwarded: u64,
    /// Packets answered from the retransmission cache.
    pub retransmitted: u64,
    /// Keyframe requests sent to publishers.
    pub keyframe_requests: u64,
    /// Dropped: not a parsable RTP packet.
    pub dropped_malformed: u64,
    /// Dropped: SSRC / payload type not mapped to any stream.
    pub dropped_unknown_stream: u64,
    /// Dropped: from an endpoint the forwarder does not know.
    pub dropped_unknown_endpoint: u64,
    /// Dropped RTCP (malformed or unsupported).
    pub dropped_rtcp: u64,
    /// Dropped: an RTX (RFC 4588) retransmission from a publisher that repairs nothing:
    /// padding only (a bandwidth probe), not mapped to a media stream, or upstream repair
    /// switched off. (Repairs of numbers not missing count in
    /// [`ForwarderStats::publisher_rtx_duplicate`].)
    pub dropped_publisher_rtx: u64,
    /// Generic NACK packets sent to publishers for packets lost on the way to the node.
    pub upstream_nacks_sent: u64,
    /// Sequence numbers requested by those NACKs (a number asked for again counts again).
    pub upstream_nacked_packets: u64,
    /// Publisher RTX retransmissions unwrapped that filled a missing packet (then handled
    /// like the original: cached and forwarded).
    pub publisher_rtx_recovered: u64,
    /// Publisher RTX retransmissions dropped because their packet was not missing (it had
    /// arrived, or was given up on).
    pub publisher_rtx_duplicate: u64,
    /// Packets lost upstream whose repair was given up on (too many requests, too old, or
    /// too many missing at once).
    pub upstream_repairs_abandoned: u64,
    /// Generic NACK packets received from viewers.
    pub nacks_received: u64,
    /// Sequence numbers requested by those NACKs.
    pub nacked_packets: u64,
    /// PLI packets received from viewers.
    pub plis_received: u64,
    /// FIR packets received from viewers.
    pub firs_received: u64,
    /// Packets viewers reported lost: the sum, over each viewer's receiver report blocks,
    /// of the increase of the cumulative number of packets lost per (viewer, media SSRC).
    /// Decreases are ignored.
    pub packets_lost_reported: u64,
    /// Round-trip times measured from viewers' report blocks (LSR/DLSR echoing a translated
    /// SR), per bucket (not cumulative): bucket `i` counts samples `<=`
    /// [`RTT_BUCKET_BOUNDS_MS`]`[i]` and above the previous bound; the last bucket is +Inf.
    pub rtt_buckets_ms: [u64; RTT_BUCKETS],
    /// Sum of the measured round-trip times, in milliseconds.
    pub rtt_sum_ms: u64,
    /// Round-trip time samples measured.
    pub rtt_count: u64,
    /// Dropped: arrived late (reordered, or repaired upstream) where it can no longer be
    /// placed: a later packet of the same stream was dropped on purpose (its outgoing
    /// sequence number was reused), or the receiver's stream moved to another layer or
    /// source since. One count per receiver copy.
    pub dropped_late: u64,
    /// Packet copies not sent to a receiver because their layer is above the receiver's
    /// (temporal or spatial thinning, one count per receiver).
    pub dropped_thinned: u64,
    /// Audio packets of non-speakers below the silence threshold that were not forwarded
    /// (one count per packet, not per receiver).
    pub silence_suppressed: u64,
    /// Padding packets sent to probe receivers' downlinks.
    pub probe_packets: u64,
}

/// Upper bounds, in milliseconds, of the RTT histogram buckets of
/// [`ForwarderStats::rtt_buckets_ms`] (a last, +Inf bucket follows).
pub const RTT_BUCKET_BOUNDS_MS: [u64; RTT_BUCKETS - 1] = [10, 20, 50, 100, 200, 500, 1000];

/// Buckets of [`ForwarderStats::rtt_buckets_ms`], the +Inf one included.
pub const RTT_BUCKETS: usize = 8;

impl ForwarderStats {
    /// Adds `other`'s counts to these (totals over several forwarders or conferences).
    pub fn add(&mut self, other: &ForwarderStats) {
        let ForwarderStats {
            rtp_forwarded,
            retransmitted,
            keyframe_requests,
            dropped_malformed,
            dropped_unknown_stream,
            dropped_unknown_endpoint,
            dropped_rtcp,
            dropped_publisher_rtx,
            upstream_nacks_sent,
            upstream_nacked_packets,
            publisher_rtx_recovered,
            publisher_rtx_duplicate,
            upstream_repairs_abandoned,
            nacks_received,
            nacked_packets,
            plis_received,
            firs_received,
            packets_lost_reported,
            rtt_buckets_ms,
            rtt_sum_ms,
            rtt_count,
            dropped_late,
            dropped_thinned,
            silence_suppressed,
            probe_packets,
        } = other;
        self.rtp_forwarded += rtp_forwarded;
        self.retransmitted += retransmitted;
        self.keyframe_requests += keyframe_requests;
        self.dropped_malformed += dropped_malformed;
        self.dropped_unknown_stream += dropped_unknown_stream;
        self.dropped_unknown_endpoint += dropped_unknown_endpoint;
        self.dropped_rtcp += dropped_rtcp;
        self.dropped_publisher_rtx += dropped_publisher_rtx;
        self.upstream_nacks_sent += upstream_nacks_sent;
        self.upstream_nacked_packets += upstream_nacked_packets;
        self.publisher_rtx_recovered += publisher_rtx_recovered;
        self.publisher_rtx_duplicate += publisher_rtx_duplicate;
        self.upstream_repairs_abandoned += upstream_repairs_abandoned;
        self.nacks_received += nacks_received;
        self.nacked_packets += nacked_packets;
        self.plis_received += plis_received;
        self.firs_received += firs_received;
        self.packets_lost_reported += packets_lost_reported;
        for (mine, theirs) in self.rtt_buckets_ms.iter_mut().zip(rtt_buckets_ms) {
            *mine += theirs;
        }
        self.rtt_sum_ms = self.rtt_sum_ms.saturating_add(*rtt_sum_ms);
        self.rtt_count += rtt_count;
        self.dropped_late += dropped_late;
        self.dropped_thinned += dropped_thinned;
        self.silence_suppressed += silence_suppressed;
        self.probe_packets += probe_packets;
    }

    /// Records one round-trip time sample, in milliseconds.
    pub fn record_rtt_ms(&mut self, rtt_ms: u64) {
        let bucket = RTT_BUCKET_BOUNDS_MS
            .iter()
            .position(|&bound| rtt_ms <= bound)
            .unwrap_or(RTT_BUCKETS - 1);
        if let Some(count) = self.rtt_buckets_ms.get_mut(bucket) {
            *count += 1;
        }
        self.rtt_sum_ms = self.rtt_sum_ms.saturating_add(rtt_ms);
        self.rtt_count += 1;
    }
}
