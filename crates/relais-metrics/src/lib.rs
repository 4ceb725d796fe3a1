//! relais-metrics: the node's Prometheus registry.
//!
//! The media task keeps plain `u64` counters on its hot path; at scrape time the node fills
//! a [`MetricsSnapshot`] from them and [`Metrics::observe`] turns it into Prometheus metrics:
//! gauges are set, counters advance by the delta since the previous snapshot (never
//! backwards), and [`Metrics::encode`] renders the text exposition format
//! ([`CONTENT_TYPE`]).
//!
//! Privacy (DESIGN.md principle 4): every label value is a fixed string of this crate
//! (`reason`, `version`); no address, port, endpoint, session or stream name can reach a
//! label, because the snapshot carries only numbers.
//!
//! Metric names (all prefixed `relais_`):
//!
//! | name | type | meaning |
//! |---|---|---|
//! | `relais_conferences` | gauge | streams with at least one endpoint |
//! | `relais_endpoints` | gauge | endpoints open |
//! | `relais_largest_conference` | gauge | endpoints in the largest stream |
//! | `relais_endpoints_sending_audio` | gauge | publishers with an audio line |
//! | `relais_endpoints_sending_video` | gauge | publishers with a video line |
//! | `relais_stress` | gauge | packet rate in+out / `limits.capacity_pps` (not clamped) |
//! | `relais_healthy` | gauge | 1 when the media task answers, else 0 |
//! | `relais_draining` | gauge | 1 while draining (always 0 for now) |
//! | `relais_info{version}` | gauge | 1 |
//! | `relais_packets_received_total` / `relais_packets_sent_total` | counter | UDP datagrams on the media port |
//! | `relais_bytes_received_total` / `relais_bytes_sent_total` | counter | UDP payload bytes on the media port |
//! | `relais_rtp_forwarded_total` | counter | RTP packets forwarded (one per receiver copy) |
//! | `relais_retransmissions_total` | counter | packets answered from the retransmission cache |
//! | `relais_keyframe_requests_total` | counter | PLIs sent to publishers |
//! | `relais_ice_succeeded_total` / `relais_ice_failed_total` | counter | ICE outcomes per endpoint |
//! | `relais_dtls_succeeded_total` / `relais_dtls_failed_total` | counter | DTLS handshake outcomes |
//! | `relais_endpoints_created_total` / `relais_endpoints_expired_total` | counter | endpoint lifecycle |
//! | `relais_dropped_packets_total{reason}` | counter | see [`DroppedPackets`] |
//! | `relais_stun_dropped_total{reason}` | counter | see [`StunDropped`] |
//! | `relais_nacks_received_total` | counter | Generic NACK packets received from viewers |
//! | `relais_nacked_packets_total` | counter | sequence numbers those NACKs requested |
//! | `relais_plis_received_total` / `relais_firs_received_total` | counter | PLI / FIR packets received from viewers |
//! | `relais_packets_lost_total` | counter | packets viewers reported lost (RTCP report blocks, cumulative-lost increases) |
//! | `relais_upstream_nacks_sent_total` | counter | Generic NACK packets sent to publishers for packets lost on the way to the node |
//! | `relais_upstream_nacked_packets_total` | counter | sequence numbers those NACKs requested (re-requests count again) |
//! | `relais_publisher_rtx_recovered_total` | counter | publisher RTX unwrapped that filled a missing packet |
//! | `relais_publisher_rtx_duplicate_total` | counter | publisher RTX dropped: its packet was not missing |
//! | `relais_upstream_repairs_abandoned_total` | counter | packets lost upstream whose repair was given up |
//! | `relais_bridge_messages_total{result}` | counter | bridge channel (colibri-ws) messages, see [`BridgeMessages`] |
//! | `relais_bridge_channels_total{result}` | counter | bridge channel connections: `connected`, `refused` |
//! | `relais_thinned_packets_total` | counter | packet copies not sent because the receiver's layer is lower (simulcast/SVC thinning) |
//! | `relais_silence_suppressed_total` | counter | audio packets of non-speakers not forwarded (below the silence threshold) |
//! | `relais_probe_packets_total` | counter | padding packets sent to probe receivers' downlinks |
//! | `relais_conferences_by_size` | histogram | each scrape observes every conference's size |
//! | `relais_rtt_seconds` | histogram | round-trip times to viewers (SR → report block LSR/DLSR) |
//!
//! `relais_rtt_seconds` is fed from per-bucket totals ([`MetricsSnapshot::rtt_buckets`]): at
//! each scrape every new sample is observed at its bucket's upper bound (2 s for the +Inf
//! bucket), so the bucket counts and `_count` are exact but `_sum` is an upper-bound
//! approximation.
//!
//! On Linux the standard `process_*` metrics (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_open_fds`, …) are exported too.

use std::sync::Mutex;

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

pub use prometheus::Error;

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Bucket upper bounds of `relais_conferences_by_size` (endpoints per conference).
pub const CONFERENCE_SIZE_BUCKETS: [f64; 10] =
    [1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0];

/// Bucket upper bounds of `relais_rtt_seconds`, in seconds (a +Inf bucket follows).
pub const RTT_BUCKETS: [f64; 7] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0];

/// The value observed for a sample in `relais_rtt_seconds`' +Inf bucket.
const RTT_OVERFLOW_SECONDS: f64 = 2.0;

/// Packets dropped by the node, by reason (`relais_dropped_packets_total{reason}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DroppedPackets {
    /// `malformed`: neither STUN, DTLS, RTP nor RTCP, or RTP/RTCP the forwarder cannot parse.
    pub malformed: u64,
    /// `unknown_tuple`: non-STUN from a 5-tuple no endpoint selected (or from an endpoint the
    /// forwarder no longer knows).
    pub unknown_tuple: u64,
    /// `unknown_ufrag`: STUN whose USERNAME names no endpoint.
    pub unknown_ufrag: u64,
    /// `srtp_auth_failed`: SRTP/SRTCP authentication failed.
    pub srtp_auth_failed: u64,
    /// `srtp_replay`: replayed or too old for the replay window.
    pub srtp_replay: u64,
    /// `srtp_other`: any other SRTP/SRTCP error.
    pub srtp_other: u64,
    /// `no_keys`: SRTP received before the handshake completed, or media to an endpoint
    /// without keys or selected pair.
    pub no_keys: u64,
    /// `send_failed`: the socket refused a datagram.
    pub send_failed: u64,
    /// `queue_full`: an endpoint's DTLS queue was full.
    pub queue_full: u64,
    /// `unknown_stream`: RTP whose SSRC / payload type maps to no stream.
    pub unknown_stream: u64,
    /// `unsupported_rtx`: an RTX retransmission from a publisher that repairs nothing:
    /// padding only (a bandwidth probe), not mapped to a media stream, or upstream repair
    /// switched off.
    pub unsupported_rtx: u64,
    /// `rate_limited`: over `limits.max_packet_rate_per_source` for its endpoint.
    pub rate_limited: u64,
}

impl DroppedPackets {
    fn by_reason(&self) -> [(&'static str, u64); 12] {
        [
            ("malformed", self.malformed),
            ("unknown_tuple", self.unknown_tuple),
            ("unknown_ufrag", self.unknown_ufrag),
            ("srtp_auth_failed", self.srtp_auth_failed),
            ("srtp_replay", self.srtp_replay),
            ("srtp_other", self.srtp_other),
            ("no_keys", self.no_keys),
            ("send_failed", self.send_failed),
            ("queue_full", self.queue_full),
            ("unknown_stream", self.unknown_stream),
            ("unsupported_rtx", self.unsupported_rtx),
            ("rate_limited", self.rate_limited),
        ]
    }
}

/// STUN messages an endpoint's ICE agent dropped, by reason
/// (`relais_stun_dropped_total{reason}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StunDropped {
    /// `bad_integrity`: MESSAGE-INTEGRITY missing or wrong.
    pub bad_integrity: u64,
    /// `bad_username`: USERNAME not the session's.
    pub bad_username: u64,
    /// `bad_fingerprint`: FINGERPRINT missing or wrong.
    pub bad_fingerprint: u64,
    /// `malformed`: malformed or missing a required attribute.
    pub malformed: u64,
    /// `unexpected`: valid but not expected.
    pub unexpected: u64,
    /// `overflow`: could not be queued or answered.
    pub overflow: u64,
}

impl StunDropped {
    fn by_reason(&self) -> [(&'static str, u64); 6] {
        [
            ("bad_integrity", self.bad_integrity),
            ("bad_username", self.bad_username),
            ("bad_fingerprint", self.bad_fingerprint),
            ("malformed", self.malformed),
            ("unexpected", self.unexpected),
            ("overflow", self.overflow),
        ]
    }
}

/// Bridge channel (colibri-ws) messages by result (`relais_bridge_messages_total{result}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgeMessages {
    /// `received`: parsed and handled.
    pub received: u64,
    /// `malformed`: not a JSON object with a class (ignored).
    pub malformed: u64,
    /// `unknown_class`: a class relais does not know (ignored).
    pub unknown_class: u64,
    /// `invalid`: wrong types, duplicate keys, too large, or not applicable (refused).
    pub invalid: u64,
    /// `not_from_clients`: a class only the bridge sends (ignored).
    pub not_from_clients: u64,
    /// `sent`: messages sent to clients.
    pub sent: u64,
    /// `undeliverable`: messages for a client without a connected channel, or whose queue
    /// was full.
    pub undeliverable: u64,
}

impl BridgeMessages {
    fn by_result(&self) -> [(&'static str, u64); 7] {
        [
            ("received", self.received),
            ("malformed", self.malformed),
            ("unknown_class", self.unknown_class),
            ("invalid", self.invalid),
            ("not_from_clients", self.not_from_clients),
            ("sent", self.sent),
            ("undeliverable", self.undeliverable),
        ]
    }
}

/// What the node reports at a scrape: current values and monotonic totals since start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// Endpoints of every conference (stream) with at least one endpoint; order irrelevant.
    pub conference_sizes: Vec<u64>,
    /// Endpoints open.
    pub endpoints: u64,
    /// Publishers with an audio line.
    pub endpoints_sending_audio: u64,
    /// Publishers with a video line.
    pub endpoints_sending_video: u64,
    /// Packet rate in+out over the last sampling interval / configured capacity.
    pub stress: f64,
    /// Whether the node is draining.
    pub draining: bool,
    /// UDP datagrams received on the media port.
    pub packets_received: u64,
    /// UDP datagrams sent from the media port.
    pub packets_sent: u64,
    /// UDP payload bytes received on the media port.
    pub bytes_received: u64,
    /// UDP payload bytes sent from the media port.
    pub bytes_sent: u64,
    /// RTP packets forwarded (one per receiver copy).
    pub rtp_forwarded: u64,
    /// Packets answered from the retransmission cache.
    pub retransmissions: u64,
    /// Keyframe requests (PLI) sent to publishers.
    pub keyframe_requests: u64,
    /// Endpoints whose ICE selected a pair (first time only).
    pub ice_succeeded: u64,
    /// Endpoints whose ICE failed or expired before ever selecting a pair.
    pub ice_failed: u64,
    /// DTLS handshakes completed.
    pub dtls_succeeded: u64,
    /// DTLS handshakes failed.
    pub dtls_failed: u64,
    /// Endpoints created.
    pub endpoints_created: u64,
    /// Endpoints closed by ICE consent expiry.
    pub endpoints_expired: u64,
    /// Dropped packets by reason.
    pub dropped: DroppedPackets,
    /// Dropped STUN by reason.
    pub stun_dropped: StunDropped,
    /// Generic NACK packets received from viewers.
    pub nacks_received: u64,
    /// Sequence numbers requested by those NACKs.
    pub nacked_packets: u64,
    /// PLI packets received from viewers.
    pub plis_received: u64,
    /// FIR packets received from viewers.
    pub firs_received: u64,
    /// Packets viewers reported lost in their RTCP report blocks.
    pub packets_lost: u64,
    /// NACK packets sent to publishers (upstream repair).
    pub upstream_nacks_sent: u64,
    /// Sequence numbers requested by those NACKs.
    pub upstream_nacked_packets: u64,
    /// Publisher RTX that filled a missing packet.
    pub publisher_rtx_recovered: u64,
    /// Publisher RTX dropped because its packet was not missing.
    pub publisher_rtx_duplicate: u64,
    /// Packets lost upstream whose repair was given up.
    pub upstream_repairs_abandoned: u64,
    /// Round-trip time samples per bucket (not cumulative), totals since start: bucket `i`
    /// counts samples `<=` [`RTT_BUCKETS`]`[i]` and above the previous bound; the last one
    /// is +Inf.
    pub rtt_buckets: [u64; RTT_BUCKETS.len() + 1],
    /// Bridge channel messages by result.
    pub bridge_messages: BridgeMessages,
    /// Bridge channel connections accepted.
    pub bridge_connected: u64,
    /// Bridge channel connections refused.
    pub bridge_refused: u64,
    /// Packet copies thinned out (a receiver's lower layer).
    pub thinned_packets: u64,
    /// Audio packets suppressed as silence.
    pub silence_suppressed: u64,
    /// Probe padding packets sent.
    pub probe_packets: u64,
}

struct Counters {
    packets_received: IntCounter,
    packets_sent: IntCounter,
    bytes_received: IntCounter,
    bytes_sent: IntCounter,
    rtp_forwarded: IntCounter,
    retransmissions: IntCounter,
    keyframe_requests: IntCounter,
    ice_succeeded: IntCounter,
    ice_failed: IntCounter,
    dtls_succeeded: IntCounter,
    dtls_failed: IntCounter,
    endpoints_created: IntCounter,
    endpoints_expired: IntCounter,
    dropped: IntCounterVec,
    stun_dropped: IntCounterVec,
    bridge_messages: IntCounterVec,
    bridge_channels: IntCounterVec,
    thinned_packets: IntCounter,
    silence_suppressed: IntCounter,
    probe_packets: IntCounter,
    nacks_received: IntCounter,
    nacked_packets: IntCounter,
    plis_received: IntCounter,
    firs_received: IntCounter,
    packets_lost: IntCounter,
    upstream_nacks_sent: IntCounter,
    upstream_nacked_packets: IntCounter,
    publisher_rtx_recovered: IntCounter,
    publisher_rtx_duplicate: IntCounter,
    upstream_repairs_abandoned: IntCounter,
}

/// The node's registry: owns every `relais_*` metric (and the process collector).
pub struct Metrics {
    registry: Registry,
    conferences: IntGauge,
    endpoints: IntGauge,
    largest_conference: IntGauge,
    endpoints_sending_audio: IntGauge,
    endpoints_sending_video: IntGauge,
    stress: Gauge,
    healthy: IntGauge,
    draining: IntGauge,
    conferences_by_size: Histogram,
    rtt: Histogram,
    counters: Counters,
    /// Serialises [`Metrics::observe`] (two concurrent scrapes must not both add a delta);
    /// holds the RTT bucket totals already observed.
    observe_lock: Mutex<[u64; RTT_BUCKETS.len() + 1]>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Result<IntGauge, Error> {
    let g = IntGauge::new(name, help)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn counter(registry: &Registry, name: &str, help: &str) -> Result<IntCounter, Error> {
    let c = IntCounter::new(name, help)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn counter_vec(registry: &Registry, name: &str, help: &str) -> Result<IntCounterVec, Error> {
    labelled_counter(registry, name, help, "reason")
}

fn labelled_counter(
    registry: &Registry,
    name: &str,
    help: &str,
    label: &str,
) -> Result<IntCounterVec, Error> {
    let c = IntCounterVec::new(Opts::new(name, help), &[label])?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

/// Advances `counter` to `total` if `total` is ahead; never moves it backwards.
fn advance(counter: &IntCounter, total: u64) {
    let delta = total.saturating_sub(counter.get());
    if delta > 0 {
        counter.inc_by(delta);
    }
}

impl Metrics {
    /// A registry with every metric registered; `version` is the `relais_info` label.
    pub fn new(version: &str) -> Result<Self, Error> {
        let r = Registry::new();
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let info = IntGaugeVec::new(
            Opts::new("relais_info", "relais build information (always 1)"),
            &["version"],
        )?;
        r.register(Box::new(info.clone()))?;
        info.get_metric_with_label_values(&[version])?.set(1);

        let stress = Gauge::new(
            "relais_stress",
            "Packet rate in+out over the last sampling interval divided by limits.capacity_pps (not clamped at 1)",
        )?;
        r.register(Box::new(stress.clone()))?;
        let conferences_by_size = Histogram::with_opts(
            HistogramOpts::new(
                "relais_conferences_by_size",
                "Conference sizes in endpoints; every scrape observes each current conference",
            )
            .buckets(CONFERENCE_SIZE_BUCKETS.to_vec()),
        )?;
        r.register(Box::new(conferences_by_size.clone()))?;
        let rtt = Histogram::with_opts(
            HistogramOpts::new(
                "relais_rtt_seconds",
                "Round-trip times to viewers from RTCP report blocks (sum approximated: samples counted at their bucket's upper bound)",
            )
            .buckets(RTT_BUCKETS.to_vec()),
        )?;
        r.register(Box::new(rtt.clone()))?;

        let counters = Counters {
            packets_received: counter(
                &r,
                "relais_packets_received_total",
                "UDP datagrams received on the media port",
            )?,
            packets_sent: counter(
                &r,
                "relais_packets_sent_total",
                "UDP datagrams sent from the media port",
            )?,
            bytes_received: counter(
                &r,
                "relais_bytes_received_total",
                "UDP payload bytes received on the media port",
            )?,
            bytes_sent: counter(
                &r,
                "relais_bytes_sent_total",
                "UDP payload bytes sent from the media port",
            )?,
            rtp_forwarded: counter(
                &r,
                "relais_rtp_forwarded_total",
                "RTP packets forwarded (one per receiver copy)",
            )?,
            retransmissions: counter(
                &r,
                "relais_retransmissions_total",
                "Packets retransmitted from the cache on a receiver's NACK",
            )?,
            keyframe_requests: counter(
                &r,
                "relais_keyframe_requests_total",
                "Keyframe requests (PLI) sent to publishers",
            )?,
            ice_succeeded: counter(
                &r,
                "relais_ice_succeeded_total",
                "Endpoints whose ICE selected a candidate pair",
            )?,
            ice_failed: counter(
                &r,
                "relais_ice_failed_total",
                "Endpoints whose ICE failed or expired before selecting a pair",
            )?,
            dtls_succeeded: counter(
                &r,
                "relais_dtls_succeeded_total",
                "DTLS-SRTP handshakes completed",
            )?,
            dtls_failed: counter(
                &r,
                "relais_dtls_failed_total",
                "DTLS-SRTP handshakes failed",
            )?,
            endpoints_created: counter(&r, "relais_endpoints_created_total", "Endpoints created")?,
            endpoints_expired: counter(
                &r,
                "relais_endpoints_expired_total",
                "Endpoints closed because ICE consent expired",
            )?,
            dropped: counter_vec(
                &r,
                "relais_dropped_packets_total",
                "Packets dropped, by reason",
            )?,
            stun_dropped: counter_vec(
                &r,
                "relais_stun_dropped_total",
                "STUN messages dropped by an endpoint's ICE agent, by reason",
            )?,
            nacks_received: counter(
                &r,
                "relais_nacks_received_total",
                "Generic NACK packets received from viewers",
            )?,
            nacked_packets: counter(
                &r,
                "relais_nacked_packets_total",
                "Sequence numbers requested by NACKs received from viewers",
            )?,
            plis_received: counter(
                &r,
                "relais_plis_received_total",
                "PLI packets received from viewers",
            )?,
            firs_received: counter(
                &r,
                "relais_firs_received_total",
                "FIR packets received from viewers",
            )?,
            packets_lost: counter(
                &r,
                "relais_packets_lost_total",
                "Packets viewers reported lost in their RTCP receiver reports",
            )?,
            upstream_nacks_sent: counter(
                &r,
                "relais_upstream_nacks_sent_total",
                "Generic NACK packets sent to publishers for packets lost on the way to the node",
            )?,
            upstream_nacked_packets: counter(
                &r,
                "relais_upstream_nacked_packets_total",
                "Sequence numbers requested by NACKs sent to publishers",
            )?,
            publisher_rtx_recovered: counter(
                &r,
                "relais_publisher_rtx_recovered_total",
                "Publisher RTX retransmissions that filled a missing packet",
            )?,
            publisher_rtx_duplicate: counter(
                &r,
                "relais_publisher_rtx_duplicate_total",
                "Publisher RTX retransmissions dropped because their packet was not missing",
            )?,
            upstream_repairs_abandoned: counter(
                &r,
                "relais_upstream_repairs_abandoned_total",
                "Packets lost on the way from a publisher whose repair was given up",
            )?,
            bridge_messages: labelled_counter(
                &r,
                "relais_bridge_messages_total",
                "Bridge channel (colibri-ws) messages, by result",
                "result",
            )?,
            bridge_channels: labelled_counter(
                &r,
                "relais_bridge_channels_total",
                "Bridge channel connections, by result",
                "result",
            )?,
            thinned_packets: counter(
                &r,
                "relais_thinned_packets_total",
                "Packet copies not sent because the receiver gets a lower layer",
            )?,
            silence_suppressed: counter(
                &r,
                "relais_silence_suppressed_total",
                "Audio packets of non-speakers not forwarded as silence",
            )?,
            probe_packets: counter(
                &r,
                "relais_probe_packets_total",
                "Padding packets sent to probe receivers' downlinks",
            )?,
        };
        for (result, _) in BridgeMessages::default().by_result() {
            counters
                .bridge_messages
                .get_metric_with_label_values(&[result])?;
        }
        for result in ["connected", "refused"] {
            counters
                .bridge_channels
                .get_metric_with_label_values(&[result])?;
        }
        // Every reason exists from the start (at 0), so rate() sees the first drop.
        for (reason, _) in DroppedPackets::default().by_reason() {
            counters.dropped.get_metric_with_label_values(&[reason])?;
        }
        for (reason, _) in StunDropped::default().by_reason() {
            counters
                .stun_dropped
                .get_metric_with_label_values(&[reason])?;
        }

        Ok(Self {
            conferences: gauge(
                &r,
                "relais_conferences",
                "Conferences (streams with at least one endpoint)",
            )?,
            endpoints: gauge(&r, "relais_endpoints", "Endpoints open")?,
            largest_conference: gauge(
                &r,
                "relais_largest_conference",
                "Endpoints in the largest conference",
            )?,
            endpoints_sending_audio: gauge(
                &r,
                "relais_endpoints_sending_audio",
                "Publishers with an audio line",
            )?,
            endpoints_sending_video: gauge(
                &r,
                "relais_endpoints_sending_video",
                "Publishers with a video line",
            )?,
            healthy: gauge(
                &r,
                "relais_healthy",
                "1 when the media task answers, 0 otherwise",
            )?,
            draining: gauge(&r, "relais_draining", "1 while the node drains")?,
            stress,
            conferences_by_size,
            rtt,
            counters,
            registry: r,
            observe_lock: Mutex::new([0; RTT_BUCKETS.len() + 1]),
        })
    }

    /// Applies a snapshot: sets the gauges (and `relais_healthy` to 1), advances counters by
    /// their delta since the last snapshot, observes every conference size.
    pub fn observe(&self, s: &MetricsSnapshot) {
        let mut rtt_seen = self.observe_lock.lock().unwrap_or_else(|e| e.into_inner());
        let g = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.conferences.set(g(s.conference_sizes.len() as u64));
        self.endpoints.set(g(s.endpoints));
        self.largest_conference
            .set(g(s.conference_sizes.iter().copied().max().unwrap_or(0)));
        self.endpoints_sending_audio
            .set(g(s.endpoints_sending_audio));
        self.endpoints_sending_video
            .set(g(s.endpoints_sending_video));
        self.stress.set(s.stress);
        self.healthy.set(1);
        self.draining.set(i64::from(s.draining));
        for &size in &s.conference_sizes {
            self.conferences_by_size.observe(size as f64);
        }
        let c = &self.counters;
        advance(&c.packets_received, s.packets_received);
        advance(&c.packets_sent, s.packets_sent);
        advance(&c.bytes_received, s.bytes_received);
        advance(&c.bytes_sent, s.bytes_sent);
        advance(&c.rtp_forwarded, s.rtp_forwarded);
        advance(&c.retransmissions, s.retransmissions);
        advance(&c.keyframe_requests, s.keyframe_requests);
        advance(&c.ice_succeeded, s.ice_succeeded);
        advance(&c.ice_failed, s.ice_failed);
        advance(&c.dtls_succeeded, s.dtls_succeeded);
        advance(&c.dtls_failed, s.dtls_failed);
        advance(&c.endpoints_created, s.endpoints_created);
        advance(&c.endpoints_expired, s.endpoints_expired);
        advance(&c.nacks_received, s.nacks_received);
        advance(&c.nacked_packets, s.nacked_packets);
        advance(&c.plis_received, s.plis_received);
        advance(&c.firs_received, s.firs_received);
        advance(&c.packets_lost, s.packets_lost);
        advance(&c.upstream_nacks_sent, s.upstream_nacks_sent);
        advance(&c.upstream_nacked_packets, s.upstream_nacked_packets);
        advance(&c.publisher_rtx_recovered, s.publisher_rtx_recovered);
        advance(&c.publisher_rtx_duplicate, s.publisher_rtx_duplicate);
        advance(&c.upstream_repairs_abandoned, s.upstream_repairs_abandoned);
        advance(&c.thinned_packets, s.thinned_packets);
        advance(&c.silence_suppressed, s.silence_suppressed);
        advance(&c.probe_packets, s.probe_packets);
        for (result, total) in s.bridge_messages.by_result() {
            if let Ok(counter) = c.bridge_messages.get_metric_with_label_values(&[result]) {
                advance(&counter, total);
            }
        }
        for (result, total) in [
            ("connected", s.bridge_connected),
            ("refused", s.bridge_refused),
        ] {
            if let Ok(counter) = c.bridge_channels.get_metric_with_label_values(&[result]) {
                advance(&counter, total);
            }
        }
        for (i, (seen, &total)) in rtt_seen.iter_mut().zip(&s.rtt_buckets).enumerate() {
            let value = RTT_BUCKETS.get(i).copied().unwrap_or(RTT_OVERFLOW_SECONDS);
            for _ in 0..total.saturating_sub(*seen) {
                self.rtt.observe(value);
            }
            *seen = (*seen).max(total);
        }
        for (reason, total) in s.dropped.by_reason() {
            if let Ok(counter) = c.dropped.get_metric_with_label_values(&[reason]) {
                advance(&counter, total);
            }
        }
        for (reason, total) in s.stun_dropped.by_reason() {
            if let Ok(counter) = c.stun_dropped.get_metric_with_label_values(&[reason]) {
                advance(&counter, total);
            }
        }
    }

    /// Marks the node unhealthy (the media task did not answer); other metrics keep their
    /// last values.
    pub fn set_unhealthy(&self) {
        self.healthy.set(0);
    }

    /// The registry's metrics in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> Result<String, Error> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| Error::Msg(e.to_string()))
    }

    /// The registry, to gather metric families directly.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;
    use prometheus::proto::MetricType;

    fn value(m: &Metrics, name: &str, reason: Option<&str>) -> f64 {
        let families = m.registry().gather();
        let family = families
            .iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        let metric = family
            .get_metric()
            .iter()
            .find(|m| {
                reason.is_none_or(|r| {
                    m.get_label()
                        .iter()
                        .any(|l| (l.name() == "reason" || l.name() == "result") && l.value() == r)
                })
            })
            .unwrap();
        match family.get_field_type() {
            MetricType::COUNTER => metric.get_counter().get_value(),
            MetricType::GAUGE => metric.get_gauge().get_value(),
            other => panic!("{other:?}"),
        }
    }

    fn snapshot(n: u64) -> MetricsSnapshot {
        MetricsSnapshot {
            conference_sizes: vec![1, 3, 7],
            endpoints: 11,
            endpoints_sending_audio: 2,
            endpoints_sending_video: 3,
            stress: 1.5,
            draining: false,
            packets_received: 100 * n,
            packets_sent: 200 * n,
            bytes_received: 1000 * n,
            bytes_sent: 2000 * n,
            rtp_forwarded: 50 * n,
            retransmissions: n,
            keyframe_requests: n,
            ice_succeeded: n,
            ice_failed: n,
            dtls_succeeded: n,
            dtls_failed: n,
            endpoints_created: 4 * n,
            endpoints_expired: n,
            dropped: DroppedPackets {
                srtp_auth_failed: 5 * n,
                queue_full: n,
                ..DroppedPackets::default()
            },
            stun_dropped: StunDropped {
                bad_integrity: 3 * n,
                ..StunDropped::default()
            },
            nacks_received: 2 * n,
            nacked_packets: 5 * n,
            plis_received: n,
            firs_received: n,
            packets_lost: 7 * n,
            upstream_nacks_sent: 8 * n,
            upstream_nacked_packets: 10 * n,
            publisher_rtx_recovered: 9 * n,
            publisher_rtx_duplicate: n,
            upstream_repairs_abandoned: 2 * n,
            rtt_buckets: [0, n, 0, 2 * n, 0, 0, 0, n],
            bridge_messages: BridgeMessages {
                received: 10 * n,
                malformed: n,
                ..BridgeMessages::default()
            },
            bridge_connected: 2 * n,
            bridge_refused: n,
            thinned_packets: 9 * n,
            silence_suppressed: 6 * n,
            probe_packets: 4 * n,
        }
    }

    #[test]
    fn observe_advances_counters_by_deltas_never_backwards() {
        let m = Metrics::new("1.2.3").unwrap();
        m.observe(&snapshot(1));
        assert_eq!(value(&m, "relais_packets_received_total", None), 100.0);
        m.observe(&snapshot(3));
        assert_eq!(
            value(&m, "relais_bridge_messages_total", Some("received")),
            30.0
        );
        assert_eq!(
            value(&m, "relais_bridge_channels_total", Some("refused")),
            3.0
        );
        assert_eq!(value(&m, "relais_thinned_packets_total", None), 27.0);
        assert_eq!(value(&m, "relais_packets_received_total", None), 300.0);
        assert_eq!(value(&m, "relais_bytes_sent_total", None), 6000.0);
        assert_eq!(
            value(&m, "relais_dropped_packets_total", Some("srtp_auth_failed")),
            15.0
        );
        assert_eq!(
            value(&m, "relais_dropped_packets_total", Some("malformed")),
            0.0
        );
        assert_eq!(
            value(&m, "relais_stun_dropped_total", Some("bad_integrity")),
            9.0
        );
        assert_eq!(value(&m, "relais_nacks_received_total", None), 6.0);
        assert_eq!(value(&m, "relais_nacked_packets_total", None), 15.0);
        assert_eq!(value(&m, "relais_plis_received_total", None), 3.0);
        assert_eq!(value(&m, "relais_firs_received_total", None), 3.0);
        assert_eq!(value(&m, "relais_packets_lost_total", None), 21.0);
        assert_eq!(value(&m, "relais_upstream_nacks_sent_total", None), 24.0);
        assert_eq!(
            value(&m, "relais_upstream_nacked_packets_total", None),
            30.0
        );
        assert_eq!(
            value(&m, "relais_publisher_rtx_recovered_total", None),
            27.0
        );
        assert_eq!(value(&m, "relais_publisher_rtx_duplicate_total", None), 3.0);
        assert_eq!(
            value(&m, "relais_upstream_repairs_abandoned_total", None),
            6.0
        );
        // A smaller total (a bug or a reset) never moves a counter back.
        m.observe(&snapshot(2));
        assert_eq!(value(&m, "relais_packets_received_total", None), 300.0);
        m.observe(&snapshot(3));
        assert_eq!(value(&m, "relais_packets_received_total", None), 300.0);
        assert_eq!(value(&m, "relais_conferences", None), 3.0);
        assert_eq!(value(&m, "relais_largest_conference", None), 7.0);
        assert_eq!(value(&m, "relais_stress", None), 1.5);
        assert_eq!(value(&m, "relais_healthy", None), 1.0);
        m.set_unhealthy();
        assert_eq!(value(&m, "relais_healthy", None), 0.0);
    }

    #[test]
    fn histogram_counts_every_conference_at_each_scrape() {
        let m = Metrics::new("x").unwrap();
        m.observe(&snapshot(1));
        m.observe(&snapshot(1));
        let families = m.registry().gather();
        let h = families
            .iter()
            .find(|f| f.name() == "relais_conferences_by_size")
            .unwrap()
            .get_metric()[0]
            .get_histogram();
        assert_eq!(h.get_sample_count(), 6);
        assert_eq!(h.get_sample_sum(), 22.0);
        let buckets: Vec<(f64, u64)> = h
            .get_bucket()
            .iter()
            .map(|b| (b.upper_bound(), b.cumulative_count()))
            .collect();
        assert_eq!(buckets.len(), CONFERENCE_SIZE_BUCKETS.len());
        assert_eq!(buckets[0], (1.0, 2));
        assert_eq!(buckets[2], (3.0, 4));
        assert_eq!(buckets[3], (5.0, 4));
        assert_eq!(buckets[4], (10.0, 6));
    }

    #[test]
    fn rtt_histogram_observes_bucket_deltas() {
        let m = Metrics::new("x").unwrap();
        m.observe(&snapshot(1));
        m.observe(&snapshot(3));
        // Smaller totals never remove samples.
        m.observe(&snapshot(2));
        let families = m.registry().gather();
        let h = families
            .iter()
            .find(|f| f.name() == "relais_rtt_seconds")
            .unwrap()
            .get_metric()[0]
            .get_histogram();
        assert_eq!(h.get_sample_count(), 12);
        // 3 at 0.02, 6 at 0.1, 3 at the overflow value.
        assert!((h.get_sample_sum() - (0.06 + 0.6 + 6.0)).abs() < 1e-9);
        let buckets: Vec<(f64, u64)> = h
            .get_bucket()
            .iter()
            .map(|b| (b.upper_bound(), b.cumulative_count()))
            .collect();
        assert_eq!(buckets.len(), RTT_BUCKETS.len());
        assert_eq!(buckets[0], (0.01, 0));
        assert_eq!(buckets[1], (0.02, 3));
        assert_eq!(buckets[3], (0.1, 9));
        assert_eq!(buckets[6], (1.0, 9));
    }

    #[test]
    fn exposition_has_every_name_and_parses() {
        let m = Metrics::new("0.1.0").unwrap();
        m.observe(&snapshot(1));
        let text = m.encode().unwrap();
        for name in [
            "relais_conferences",
            "relais_endpoints",
            "relais_largest_conference",
            "relais_endpoints_sending_audio",
            "relais_endpoints_sending_video",
            "relais_stress",
            "relais_healthy",
            "relais_draining",
            "relais_packets_received_total",
            "relais_packets_sent_total",
            "relais_bytes_received_total",
            "relais_bytes_sent_total",
            "relais_rtp_forwarded_total",
            "relais_retransmissions_total",
            "relais_keyframe_requests_total",
            "relais_ice_succeeded_total",
            "relais_ice_failed_total",
            "relais_dtls_succeeded_total",
            "relais_dtls_failed_total",
            "relais_endpoints_created_total",
            "relais_endpoints_expired_total",
            "relais_dropped_packets_total",
            "relais_stun_dropped_total",
            "relais_conferences_by_size",
            "relais_nacks_received_total",
            "relais_nacked_packets_total",
            "relais_plis_received_total",
            "relais_firs_received_total",
            "relais_packets_lost_total",
            "relais_upstream_nacks_sent_total",
            "relais_upstream_nacked_packets_total",
            "relais_publisher_rtx_recovered_total",
            "relais_publisher_rtx_duplicate_total",
            "relais_upstream_repairs_abandoned_total",
            "relais_rtt_seconds",
            "relais_info",
        ] {
            assert!(
                text.lines().any(|l| l == format!("# TYPE {name} gauge")
                    || l == format!("# TYPE {name} counter")
                    || l == format!("# TYPE {name} histogram")),
                "{name} has no TYPE line"
            );
        }
        assert!(text.contains("relais_info{version=\"0.1.0\"} 1\n"));
        assert!(text.contains("relais_conferences_by_size_bucket{le=\"500\"} 3\n"));
        assert!(text.contains("relais_conferences_by_size_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("relais_dropped_packets_total{reason=\"queue_full\"} 1\n"));
        #[cfg(target_os = "linux")]
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
        ] {
            assert!(text.contains(&format!("\n{name} ")), "{name} missing");
        }
        // Every sample line is `name[{labels}] value` with a number as value.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(
                value.parse::<f64>().is_ok() || value == "+Inf",
                "bad value in {line}"
            );
            let name = series.split('{').next().unwrap();
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "bad name in {line}"
            );
        }
    }
}
