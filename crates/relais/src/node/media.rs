//! The media task: owns the UDP socket, every endpoint's transport state and the forwarder.
//!
//! One tokio task for now (DESIGN.md: sharded workers later; per-endpoint state lives in
//! [`Endpoint`] so sharding is a refactor, not a rewrite). It loops over the socket, the
//! command channel from signalling, the DTLS driver events and the next timer of all ICE
//! agents and the forwarder.
//!
//! Socket I/O is batched ([`batch_io`]): a wake-up reads up to a few `recvmmsg` batches, and
//! after each batch the packets it caused are protected and sent with `sendmmsg`.
//!
//! Demultiplexing (DESIGN.md principle 3): STUN is routed by the local ufrag of its
//! USERNAME to an endpoint's ICE agent, which verifies MESSAGE-INTEGRITY; every other
//! datagram is accepted only from a remote address that an authenticated STUN exchange
//! selected (`IceEvent::SelectedPairChanged`), and dropped (counted) before any other work
//! otherwise.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use relais_conference::{
    EndpointId, Forwarder, ForwarderConfig, ForwarderOutput, ForwarderStats, MediaKind, MediaLine,
};
use relais_metrics::{BridgeMessages, DroppedPackets, MetricsSnapshot, StunDropped};
use relais_rtp::demux::{classify, DatagramKind};
use relais_rtp::stun::StunMessage;
use relais_srtp::{DtlsRole, SrtpConfig, SrtpReceiver, SrtpSender};
use relais_transport::dtls_srtp::{
    DtlsEvent, DtlsSrtpConfig, DtlsSrtpHandshake, Fingerprint, NodeCertificate,
};
use relais_transport::ice::{IceAgent, IceCredentials, IceEvent, IceState, IceStats, Receive};
use relais_whip::http::SessionKind;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

mod batch_io;
pub(crate) mod colibri;

use batch_io::{BatchReceiver, SendBatch};
use colibri::ColibriConference;
use relais_colibri::colibri2::{ColibriError, ConferenceModify};

use super::bridge_io::{BridgeCounter, BridgeInput, BridgeRefusal, BridgeSession};
use super::colibri::ColibriOutcome;
use super::endpoint::{drive_dtls, Endpoint, Srtp, DTLS_INBOUND_QUEUE};
use crate::config::{redact, LimitsConfig, PrivacyConfig};
use crate::logging::stream_tag;

/// Receive batches handled per wake-up before timers, commands and DTLS get their turn.
const RECEIVE_BATCHES_PER_WAKE: usize = 4;
/// The loop wakes at least this often even with no timer pending.
const IDLE_WAKE: Duration = Duration::from_secs(1);
/// Endpoints whose DTLS handshake has not completed this long after creation are closed (a
/// session that never connects would otherwise hold its slots until deleted).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Connectivity checks of full ICE agents remembered for routing their responses.
const MAX_PENDING_TRANSACTIONS: usize = 16_384;
/// How often the media task samples its counters into [`Rates`] (JVB refreshes
/// `/colibri/stats` every 5 s).
pub(crate) const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// What signalling asks the media task to create.
pub(crate) struct CreateEndpoint {
    pub(crate) kind: SessionKind,
    pub(crate) stream: String,
    pub(crate) session: String,
    /// A lite agent whose local credentials are in the answer; remote credentials set.
    pub(crate) ice: IceAgent,
    pub(crate) dtls_role: DtlsRole,
    pub(crate) remote_fingerprint: Fingerprint,
    pub(crate) lines: Vec<MediaLine>,
    /// Media sources the offer announces (simulcast rids or non-RTX SSRCs, summed over the
    /// publisher's lines; 0 for a viewer).
    pub(crate) announced_sources: u64,
}

/// Why the media task refused to create an endpoint.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CreateError {
    /// The forwarder refused the media lines.
    #[error("forwarder: {0}")]
    Conference(#[from] relais_conference::ConferenceError),
    /// The DTLS handshake could not be set up.
    #[error("DTLS: {0}")]
    Dtls(#[from] relais_transport::dtls_srtp::DtlsSrtpError),
    /// The node is draining and the stream has no endpoints (a new conference).
    #[error("GRACEFUL_SHUTDOWN: the node is draining and accepts no new conference")]
    Draining,
    /// More session creations per second than `limits.max_sessions_per_second`.
    #[error("too many new sessions per second (limits.max_sessions_per_second {0})")]
    RateLimited(u64),
    /// A new conference while stress is at or above `limits.max_stress`.
    #[error("overloaded: stress {stress:.3} >= limits.max_stress {max:.3}; no new conference")]
    Overloaded {
        /// The last sampled stress.
        stress: f64,
        /// The limit.
        max: f64,
    },
    /// A new conference beyond `limits.max_conferences`.
    #[error("too many conferences (limits.max_conferences {0})")]
    TooManyConferences(u64),
    /// The conference has `limits.max_endpoints_per_conference` endpoints.
    #[error("the conference is full (limits.max_endpoints_per_conference {0})")]
    ConferenceFull(u64),
    /// `limits.max_dtls_handshakes_in_flight` handshakes are in progress.
    #[error("too many DTLS handshakes in progress (limits.max_dtls_handshakes_in_flight {0})")]
    DtlsBusy(u64),
    /// The offer announces more media sources than `limits.max_ssrcs_per_endpoint`.
    #[error(
        "the offer announces {announced} media sources (SSRCs or simulcast rids), more than \
         limits.max_ssrcs_per_endpoint {max}"
    )]
    TooManySsrcs {
        /// Announced by the offer.
        announced: u64,
        /// The limit.
        max: u64,
    },
}

impl CreateError {
    /// Whether this is a capacity or drain refusal (503) rather than a property of the
    /// offer (422).
    pub(crate) fn is_unavailable(&self) -> bool {
        matches!(
            self,
            CreateError::Draining
                | CreateError::Overloaded { .. }
                | CreateError::RateLimited(_)
                | CreateError::TooManyConferences(_)
                | CreateError::ConferenceFull(_)
                | CreateError::DtlsBusy(_)
        )
    }
}

/// A token bucket: `rate` tokens per second, at most `burst` saved up; starts full.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `rate` per second with a burst of one second's worth.
    pub(crate) fn per_second(rate: u64, now: Instant) -> Self {
        let rate = rate.max(1) as f64;
        Self {
            tokens: rate,
            rate,
            burst: rate,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Commands from signalling and the HTTP listeners.
pub(crate) enum Command {
    /// Add an endpoint; the reply is its id.
    Create(
        Box<CreateEndpoint>,
        oneshot::Sender<Result<EndpointId, CreateError>>,
    ),
    /// Remove the endpoint of `session` if it is of that kind and stream; the reply tells
    /// whether it existed.
    Delete {
        kind: SessionKind,
        stream: String,
        session: String,
        reply: oneshot::Sender<bool>,
    },
    /// Trickle ICE or ICE restart (WHIP/WHEP PATCH) for `session` if it is of that kind
    /// and stream: with `remote` credentials different from the session's current ones the
    /// endpoint's agent restarts.
    Patch {
        kind: SessionKind,
        stream: String,
        session: String,
        remote: Option<IceCredentials>,
        reply: oneshot::Sender<PatchReply>,
    },
    /// Connects the bridge channel of endpoint `endpoint` (its Colibri2 id) of conference
    /// `meeting_id`, authenticated by the endpoint's local ICE pwd.
    BridgeAttach {
        meeting_id: String,
        endpoint: String,
        pwd: String,
        reply: oneshot::Sender<Result<BridgeSession, BridgeRefusal>>,
    },
    /// A client message from the bridge channel of `id`.
    BridgeInput { id: EndpointId, input: BridgeInput },
    /// Something the bridge channel counted.
    BridgeCount(BridgeCounter),
    /// The bridge channel of `id` closed.
    BridgeDetach { id: EndpointId },
    /// A validated Colibri2 `conference-modify`.
    Colibri(
        Box<ConferenceModify>,
        oneshot::Sender<Result<ColibriOutcome, ColibriError>>,
    ),
    /// The speech activity of a conference (`None`: no such conference).
    DominantSpeaker {
        meeting_id: String,
        reply: oneshot::Sender<Option<serde_json::Value>>,
    },
    /// Liveness probe (health check): answered by the loop itself.
    Ping(oneshot::Sender<()>),
    /// A snapshot of the counters.
    Stats(oneshot::Sender<MediaStats>),
    /// A snapshot for `/metrics` and `/colibri/stats`.
    Snapshot(oneshot::Sender<NodeSnapshot>),
}

/// Rates over the last sampling interval ([`SAMPLE_INTERVAL`]); zero before the first.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rates {
    /// Kilobits per second received on the media port (UDP payload).
    pub(crate) bit_rate_download_kbps: f64,
    /// Kilobits per second sent.
    pub(crate) bit_rate_upload_kbps: f64,
    /// Datagrams per second received.
    pub(crate) packet_rate_download: f64,
    /// Datagrams per second sent.
    pub(crate) packet_rate_upload: f64,
    /// Packet rate in+out / `limits.capacity_pps` (not clamped).
    pub(crate) stress: f64,
}

/// What the media task answers to [`Command::Snapshot`].
#[derive(Debug, Clone)]
pub(crate) struct NodeSnapshot {
    /// Counters and current values for the Prometheus registry.
    pub(crate) metrics: MetricsSnapshot,
    /// The last sampled rates.
    pub(crate) rates: Rates,
}

/// The counter values at the last sample.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    datagrams_received: u64,
    datagrams_sent: u64,
    bytes_received: u64,
    bytes_sent: u64,
}

/// The media task's answer to [`Command::Patch`].
pub(crate) enum PatchReply {
    /// No such session (of that kind and stream).
    NotFound,
    /// Nothing to restart: no credentials, or the session's current ones.
    Unchanged,
    /// The agent restarted: the node's new local credentials.
    Restarted(IceCredentials),
    /// The agent refused the restart (closed or failed).
    Failed,
}

/// Counters of the media task (aggregates only: no addresses, no names).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MediaStats {
    /// Endpoints currently open.
    pub endpoints: u64,
    /// Endpoints created since start.
    pub endpoints_created: u64,
    /// Endpoints closed since start.
    pub endpoints_closed: u64,
    /// Endpoints consent expiry closed (included in `endpoints_closed`).
    pub endpoints_consent_expired: u64,
    /// Endpoints closed because DTLS did not complete within 30 s of their creation
    /// (included in `endpoints_closed`).
    pub endpoints_connect_timeout: u64,
    /// Endpoints the forwarder holds (added and not yet removed).
    pub forwarder_endpoints: u64,
    /// Entries of the local ufrag → endpoint map (one per endpoint, two for an endpoint
    /// whose ICE restart the peer has not completed yet).
    pub ufrag_map_entries: u64,
    /// Entries of the selected remote address → endpoint map.
    pub remote_map_entries: u64,
    /// Entries of the session → endpoint map.
    pub session_map_entries: u64,
    /// ICE restarts (WHIP/WHEP PATCH with new credentials).
    pub ice_restarts: u64,
    /// Datagrams received on the media port.
    pub datagrams_received: u64,
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// UDP payload bytes received on the media port.
    pub bytes_received: u64,
    /// UDP payload bytes sent.
    pub bytes_sent: u64,
    /// Endpoints whose ICE selected a pair (counted once per endpoint).
    pub ice_succeeded: u64,
    /// Endpoints whose ICE failed or whose consent expired before a pair was ever selected.
    pub ice_failed: u64,
    /// Sends that failed (socket full or error); the datagram is dropped.
    pub send_failures: u64,
    /// `sendmmsg` calls of the outbound batches (with `datagrams_sent`: the batch size the
    /// fan-out reaches).
    pub send_batches: u64,
    /// STUN messages whose USERNAME names no endpoint (or that do not parse).
    pub stun_unknown_ufrag: u64,
    /// STUN routed to an endpoint and dropped by its agent: malformed or missing a required
    /// attribute (summed over all endpoints, also closed ones).
    pub stun_dropped_malformed: u64,
    /// STUN dropped by an endpoint's agent: FINGERPRINT missing or wrong.
    pub stun_dropped_bad_fingerprint: u64,
    /// STUN dropped by an endpoint's agent: USERNAME not the session's.
    pub stun_dropped_bad_username: u64,
    /// STUN dropped by an endpoint's agent: MESSAGE-INTEGRITY missing or wrong.
    pub stun_dropped_bad_integrity: u64,
    /// Valid STUN an endpoint's agent did not expect.
    pub stun_dropped_unexpected: u64,
    /// STUN an endpoint's agent could not queue or write.
    pub stun_dropped_overflow: u64,
    /// Non-STUN datagrams from a remote address no endpoint has selected.
    pub dropped_unknown_source: u64,
    /// Datagrams that are neither STUN, DTLS, RTP nor RTCP.
    pub dropped_unknown_kind: u64,
    /// DTLS datagrams dropped because the endpoint's queue was full.
    pub dtls_queue_full: u64,
    /// DTLS datagrams dropped because the peer's fingerprint is not known yet (a Colibri2
    /// endpoint whose transport has not arrived).
    pub dtls_not_ready: u64,
    /// Bridge channels connected.
    pub bridge_connected: u64,
    /// Bridge channel connections refused (wrong credentials).
    pub bridge_refused: u64,
    /// Bridge channel messages handled.
    pub bridge_messages_received: u64,
    /// Bridge channel messages that were not JSON objects with a class (ignored).
    pub bridge_messages_malformed: u64,
    /// Bridge channel messages of a class relais does not know (ignored).
    pub bridge_messages_unknown_class: u64,
    /// Bridge channel messages refused: wrong types, duplicate keys, too large, or not
    /// applicable (an unknown source).
    pub bridge_messages_invalid: u64,
    /// Bridge channel messages of a class only the bridge sends (ignored).
    pub bridge_messages_not_from_clients: u64,
    /// Bridge channel messages sent to clients.
    pub bridge_messages_sent: u64,
    /// Bridge channel messages not delivered (no channel connected, or its queue full).
    pub bridge_messages_undeliverable: u64,
    /// DTLS handshakes completed.
    pub dtls_completed: u64,
    /// DTLS handshakes failed (the endpoint is closed).
    pub dtls_failed: u64,
    /// SRTP/SRTCP received before the handshake completed.
    pub srtp_not_ready: u64,
    /// RTP packets decrypted and handed to the forwarder.
    pub rtp_received: u64,
    /// RTCP packets decrypted and handed to the forwarder.
    pub rtcp_received: u64,
    /// RTP packets protected and sent.
    pub rtp_sent: u64,
    /// RTCP packets protected and sent.
    pub rtcp_sent: u64,
    /// Forwarder outputs not sent: no SRTP yet, no selected pair, or consent expired.
    pub output_not_sendable: u64,
    /// SRTP/SRTCP errors by reason (unprotect and protect).
    pub srtp_errors: BTreeMap<&'static str, u64>,
    /// RTP/RTCP dropped before decryption: the endpoint exceeded
    /// `limits.max_packet_rate_per_source`.
    pub dropped_rate_limited: u64,
    /// Sessions refused while draining (a new conference).
    pub refused_draining: u64,
    /// New conferences refused while stress was at or above `limits.max_stress`.
    pub refused_overloaded: u64,
    /// Sessions refused by `limits.max_sessions_per_second`.
    pub refused_rate_limited: u64,
    /// Sessions refused by `limits.max_conferences`.
    pub refused_too_many_conferences: u64,
    /// Sessions refused by `limits.max_endpoints_per_conference`.
    pub refused_conference_full: u64,
    /// Sessions refused by `limits.max_dtls_handshakes_in_flight`.
    pub refused_dtls_busy: u64,
    /// Publish offers refused by `limits.max_ssrcs_per_endpoint`.
    pub refused_too_many_ssrcs: u64,
}

/// Why an endpoint was closed (logged, never with an address).
#[derive(Debug, Clone, Copy)]
enum CloseReason {
    Deleted,
    ConsentExpired,
    DtlsFailed,
    ConnectTimeout,
    Shutdown,
}

impl CloseReason {
    fn as_str(self) -> &'static str {
        match self {
            CloseReason::Deleted => "deleted by signalling",
            CloseReason::ConsentExpired => "ICE consent expired",
            CloseReason::DtlsFailed => "DTLS handshake failed",
            CloseReason::ConnectTimeout => "not connected within 30 s",
            CloseReason::Shutdown => "node shutting down",
        }
    }
}

/// `::ffff:a.b.c.d` → `a.b.c.d`: one form of every address in the maps and logs.
pub(crate) fn normalise(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// The media task's state.
pub(crate) struct MediaTask {
    socket: UdpSocket,
    socket_is_v6: bool,
    /// Protected packets of this loop iteration, sent with one `sendmmsg` per batch.
    outbound: SendBatch,
    /// The local address full ICE agents pair with and checks are received on: the bound
    /// address, or the first announced one when bound to all interfaces.
    ice_local: SocketAddr,
    certificate: Arc<NodeCertificate>,
    privacy: PrivacyConfig,
    endpoints: HashMap<EndpointId, Endpoint>,
    /// Selected remote address → endpoint (only pairs selected by authenticated STUN).
    by_remote: HashMap<SocketAddr, EndpointId>,
    /// Local ICE ufrag → endpoint, for STUN routing.
    by_ufrag: HashMap<String, EndpointId>,
    /// Transaction id of a connectivity check a full agent sent → its endpoint: responses
    /// carry no USERNAME, so they are routed by the transaction they answer.
    by_transaction: HashMap<[u8; 12], EndpointId>,
    /// Insertion order of `by_transaction`, to bound it (unanswered checks age out).
    transactions: std::collections::VecDeque<[u8; 12]>,
    /// Session id → endpoint.
    by_session: HashMap<String, EndpointId>,
    forwarder: Forwarder,
    /// Jitsi Meet conferences by meeting id.
    conferences: HashMap<String, ColibriConference>,
    /// Forwarding counters of conferences that ended (so totals never go back).
    ended_conferences: ForwarderStats,
    next_id: u64,
    dtls_events_tx: mpsc::Sender<(EndpointId, DtlsEvent)>,
    stats: MediaStats,
    /// Packets per second (in + out) that make stress 1.0.
    capacity_pps: u64,
    last_sample: Sample,
    rates: Rates,
    /// The abuse limits (`[limits]`).
    limits: LimitsConfig,
    /// Set when the node drains: no new conferences.
    draining: Arc<AtomicBool>,
    /// Endpoints per stream (only streams with endpoints).
    streams: HashMap<String, u64>,
    /// Node-wide session creations (`limits.max_sessions_per_second`).
    sessions: TokenBucket,
    /// The number of endpoints, published after every loop iteration (the drain waits for 0).
    endpoint_count: watch::Sender<usize>,
}

impl MediaTask {
    /// A task over `socket` (already bound).
    /// `announced`: the media addresses the node announces (the first is the full ICE
    /// agents' local candidate when the socket is bound to all interfaces).
    pub(crate) fn new(
        socket: UdpSocket,
        certificate: Arc<NodeCertificate>,
        config: &crate::config::Config,
        dtls_events_tx: mpsc::Sender<(EndpointId, DtlsEvent)>,
        draining: Arc<AtomicBool>,
        endpoint_count: watch::Sender<usize>,
        announced: &[IpAddr],
    ) -> std::io::Result<Self> {
        let (privacy, limits) = (config.privacy.clone(), config.limits.clone());
        let bound = socket.local_addr()?;
        let local = normalise(bound);
        let ice_local = match announced.first() {
            Some(ip) if local.ip().is_unspecified() => SocketAddr::new(*ip, local.port()),
            _ => local,
        };
        Ok(Self {
            socket_is_v6: bound.is_ipv6(),
            outbound: SendBatch::new(bound.is_ipv6()),
            ice_local,
            socket,
            certificate,
            privacy,
            endpoints: HashMap::new(),
            by_remote: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_transaction: HashMap::new(),
            transactions: std::collections::VecDeque::new(),
            by_session: HashMap::new(),
            forwarder: Forwarder::new(ForwarderConfig::default()),
            conferences: HashMap::new(),
            ended_conferences: ForwarderStats::default(),
            next_id: 1,
            dtls_events_tx,
            stats: MediaStats::default(),
            capacity_pps: limits.capacity_pps.max(1),
            sessions: TokenBucket::per_second(limits.max_sessions_per_second, Instant::now()),
            limits,
            draining,
            streams: HashMap::new(),
            endpoint_count,
            last_sample: Sample {
                at: Instant::now(),
                datagrams_received: 0,
                datagrams_sent: 0,
                bytes_received: 0,
                bytes_sent: 0,
            },
            rates: Rates::default(),
        })
    }

    /// Runs until `shutdown` turns true or every command sender is gone.
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut dtls_events: mpsc::Receiver<(EndpointId, DtlsEvent)>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut receiver = match BatchReceiver::new(&self.socket) {
            Ok(receiver) => receiver,
            Err(e) => {
                tracing::error!("media socket: cannot set up batched receive: {}", e.kind());
                return;
            }
        };
        let mut sampler =
            tokio::time::interval_at((Instant::now() + SAMPLE_INTERVAL).into(), SAMPLE_INTERVAL);
        sampler.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self.next_timeout();
            tokio::select! {
                ready = self.socket.readable() => match ready {
                    Ok(()) => self.receive(&mut receiver),
                    Err(e) => tracing::debug!("media socket readiness error: {}", e.kind()),
                },
                command = commands.recv() => match command {
                    Some(command) => self.handle_command(command),
                    None => break,
                },
                Some((id, event)) = dtls_events.recv() => {
                    self.handle_dtls_event(id, event);
                }
                () = tokio::time::sleep_until(deadline.into()) => {
                    self.handle_timeout(Instant::now());
                }
                _ = sampler.tick() => {
                    let now = Instant::now();
                    self.sample(now);
                    self.expire_unconnected(now);
                }
                _ = shutdown.changed() => break,
            }
            self.drain_forwarder();
            self.drain_conferences();
            self.flush_outbound();
            let count = self.endpoints.len();
            self.endpoint_count.send_if_modified(|c| {
                let changed = *c != count;
                *c = count;
                changed
            });
        }
        let ids: Vec<EndpointId> = self.endpoints.keys().copied().collect();
        for id in ids {
            self.close(Instant::now(), id, CloseReason::Shutdown);
        }
        let s = &self.stats;
        tracing::info!(
            "media task stopped: {} datagrams sent; {} SRTP/SRTCP packets queued in {} sendmmsg calls",
            s.datagrams_sent,
            s.rtp_sent + s.rtcp_sent,
            s.send_batches
        );
    }

    /// Reads what the socket has, a few batches at most, and sends what each batch caused
    /// before reading the next (so the first packets of a burst do not wait for the last).
    fn receive(&mut self, receiver: &mut BatchReceiver) {
        for _ in 0..RECEIVE_BATCHES_PER_WAKE {
            match receiver.try_receive(&self.socket) {
                Ok(true) => {
                    let now = Instant::now();
                    for (from, datagram) in receiver.datagrams() {
                        self.stats.bytes_received += datagram.len() as u64;
                        self.handle_datagram(now, normalise(from), datagram);
                    }
                    self.drain_forwarder();
                    self.drain_conferences();
                    self.flush_outbound();
                }
                Ok(false) => break,
                // ICMP errors (port unreachable of a gone peer) and the like: keep going.
                Err(e) => {
                    tracing::debug!("media socket receive error: {}", e.kind());
                    break;
                }
            }
        }
    }

    /// Closes endpoints that did not complete DTLS within [`CONNECT_TIMEOUT`].
    fn expire_unconnected(&mut self, now: Instant) {
        let stale: Vec<EndpointId> = self
            .endpoints
            .iter()
            .filter(|(_, e)| {
                e.srtp.is_none() && now.saturating_duration_since(e.created) >= CONNECT_TIMEOUT
            })
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.stats.endpoints_connect_timeout += 1;
            self.close(now, id, CloseReason::ConnectTimeout);
        }
    }

    /// Turns the counter deltas since the last sample into [`Rates`].
    fn sample(&mut self, now: Instant) {
        let elapsed = now.duration_since(self.last_sample.at).as_secs_f64();
        if elapsed <= 0.0 {
            return;
        }
        let s = &self.stats;
        let per_second = |now: u64, then: u64| now.saturating_sub(then) as f64 / elapsed;
        let last = self.last_sample;
        let packet_rate_download = per_second(s.datagrams_received, last.datagrams_received);
        let packet_rate_upload = per_second(s.datagrams_sent, last.datagrams_sent);
        self.rates = Rates {
            bit_rate_download_kbps: per_second(s.bytes_received, last.bytes_received) * 8.0
                / 1000.0,
            bit_rate_upload_kbps: per_second(s.bytes_sent, last.bytes_sent) * 8.0 / 1000.0,
            packet_rate_download,
            packet_rate_upload,
            stress: (packet_rate_download + packet_rate_upload) / self.capacity_pps as f64,
        };
        self.last_sample = Sample {
            at: now,
            datagrams_received: s.datagrams_received,
            datagrams_sent: s.datagrams_sent,
            bytes_received: s.bytes_received,
            bytes_sent: s.bytes_sent,
        };
    }

    /// The metrics snapshot: current composition and totals (O(endpoints), at scrape time).
    fn snapshot(&self) -> NodeSnapshot {
        let mut sizes: HashMap<&str, u64> = HashMap::new();
        let (mut audio, mut video) = (0, 0);
        for endpoint in self.endpoints.values() {
            *sizes.entry(endpoint.stream.as_str()).or_default() += 1;
            audio += u64::from(endpoint.sends_audio);
            video += u64::from(endpoint.sends_video);
        }
        let s = &self.stats;
        let f = self.forwarding_stats();
        let srtp = |reasons: &[&str]| -> u64 {
            s.srtp_errors
                .iter()
                .filter(|(r, _)| reasons.contains(r))
                .map(|(_, n)| n)
                .sum()
        };
        let srtp_all: u64 = s.srtp_errors.values().sum();
        let auth = srtp(&["auth_failed"]);
        let replay = srtp(&["replayed", "too_old"]);
        let metrics = MetricsSnapshot {
            conference_sizes: sizes.into_values().collect(),
            endpoints: self.endpoints.len() as u64,
            endpoints_sending_audio: audio,
            endpoints_sending_video: video,
            stress: self.rates.stress,
            draining: self.draining.load(Ordering::Relaxed),
            packets_received: s.datagrams_received,
            packets_sent: s.datagrams_sent,
            bytes_received: s.bytes_received,
            bytes_sent: s.bytes_sent,
            rtp_forwarded: f.rtp_forwarded,
            retransmissions: f.retransmitted,
            keyframe_requests: f.keyframe_requests,
            ice_succeeded: s.ice_succeeded,
            ice_failed: s.ice_failed,
            dtls_succeeded: s.dtls_completed,
            dtls_failed: s.dtls_failed,
            endpoints_created: s.endpoints_created,
            endpoints_expired: s.endpoints_consent_expired,
            dropped: DroppedPackets {
                malformed: s.dropped_unknown_kind + f.dropped_malformed + f.dropped_rtcp,
                unknown_tuple: s.dropped_unknown_source + f.dropped_unknown_endpoint,
                unknown_ufrag: s.stun_unknown_ufrag,
                srtp_auth_failed: auth,
                srtp_replay: replay,
                srtp_other: srtp_all.saturating_sub(auth + replay),
                no_keys: s.srtp_not_ready + s.output_not_sendable,
                send_failed: s.send_failures,
                // Rate-limited drops have no label of their own yet (relais-metrics); they
                // are policing drops, counted with the queue overflows.
                queue_full: s.dtls_queue_full,
                rate_limited: s.dropped_rate_limited,
                unknown_stream: f.dropped_unknown_stream,
                unsupported_rtx: f.dropped_publisher_rtx,
            },
            stun_dropped: StunDropped {
                bad_integrity: s.stun_dropped_bad_integrity,
                bad_username: s.stun_dropped_bad_username,
                bad_fingerprint: s.stun_dropped_bad_fingerprint,
                malformed: s.stun_dropped_malformed,
                unexpected: s.stun_dropped_unexpected,
                overflow: s.stun_dropped_overflow,
            },
            nacks_received: f.nacks_received,
            nacked_packets: f.nacked_packets,
            plis_received: f.plis_received,
            firs_received: f.firs_received,
            packets_lost: f.packets_lost_reported,
            upstream_nacks_sent: f.upstream_nacks_sent,
            upstream_nacked_packets: f.upstream_nacked_packets,
            publisher_rtx_recovered: f.publisher_rtx_recovered,
            publisher_rtx_duplicate: f.publisher_rtx_duplicate,
            upstream_repairs_abandoned: f.upstream_repairs_abandoned,
            rtt_buckets: f.rtt_buckets_ms,
            bridge_messages: BridgeMessages {
                received: s.bridge_messages_received,
                malformed: s.bridge_messages_malformed,
                unknown_class: s.bridge_messages_unknown_class,
                invalid: s.bridge_messages_invalid,
                not_from_clients: s.bridge_messages_not_from_clients,
                sent: s.bridge_messages_sent,
                undeliverable: s.bridge_messages_undeliverable,
            },
            bridge_connected: s.bridge_connected,
            bridge_refused: s.bridge_refused,
            thinned_packets: f.dropped_thinned,
            silence_suppressed: f.silence_suppressed,
            probe_packets: f.probe_packets,
        };
        NodeSnapshot {
            metrics,
            rates: self.rates,
        }
    }

    /// Forwarding counters since start: the WHIP forwarder's and every conference's,
    /// running or ended.
    fn forwarding_stats(&self) -> ForwarderStats {
        let mut stats = self.forwarder.stats();
        stats.add(&self.ended_conferences);
        for conference in self.conferences.values() {
            stats.add(&conference.conference.stats());
        }
        stats
    }

    fn next_timeout(&self) -> Instant {
        let mut next = Instant::now() + IDLE_WAKE;
        // O(endpoints) per iteration: fine for one node's first version; a timer wheel per
        // worker replaces it with sharding.
        for endpoint in self.endpoints.values() {
            if let Some(t) = endpoint.ice.poll_timeout() {
                next = next.min(t);
            }
        }
        if let Some(t) = self.forwarder.poll_timeout() {
            next = next.min(t);
        }
        for conference in self.conferences.values() {
            if let Some(t) = conference.conference.poll_timeout() {
                next = next.min(t);
            }
        }
        next
    }

    fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<EndpointId> = self
            .endpoints
            .iter()
            .filter(|(_, e)| e.ice.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(endpoint) = self.endpoints.get_mut(&id) {
                endpoint.ice.handle_timeout(now);
            }
            self.drain_ice(now, id);
        }
        if self.forwarder.poll_timeout().is_some_and(|t| t <= now) {
            self.forwarder.handle_timeout(now);
        }
        for conference in self.conferences.values_mut() {
            if conference
                .conference
                .poll_timeout()
                .is_some_and(|t| t <= now)
            {
                conference.conference.handle_timeout(now);
            }
        }
    }

    fn handle_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Create(request, reply) => {
                let result = self
                    .admit(now, &request)
                    .and_then(|()| self.create(now, *request));
                let _ = reply.send(result);
            }
            Command::Delete {
                kind,
                stream,
                session,
                reply,
            } => {
                let id = self.by_session.get(&session).copied().filter(|id| {
                    self.endpoints
                        .get(id)
                        .is_some_and(|e| e.kind == kind && e.stream == stream)
                });
                if let Some(id) = id {
                    self.close(now, id, CloseReason::Deleted);
                }
                let _ = reply.send(id.is_some());
            }
            Command::Patch {
                kind,
                stream,
                session,
                remote,
                reply,
            } => {
                let _ = reply.send(self.patch(kind, &stream, &session, remote));
            }
            Command::Colibri(request, reply) => {
                let _ = reply.send(self.colibri_modify(now, *request));
            }
            Command::DominantSpeaker { meeting_id, reply } => {
                let _ = reply.send(self.dominant_speaker_state(&meeting_id));
            }
            Command::BridgeAttach {
                meeting_id,
                endpoint,
                pwd,
                reply,
            } => {
                let _ = reply.send(self.bridge_attach(&meeting_id, &endpoint, &pwd));
            }
            Command::BridgeInput { id, input } => self.bridge_input(now, id, input),
            Command::BridgeCount(counter) => self.bridge_count(counter),
            Command::BridgeDetach { id } => self.bridge_detach(id),
            Command::Ping(reply) => {
                let _ = reply.send(());
            }
            Command::Stats(reply) => {
                let mut stats = self.stats.clone();
                stats.endpoints = self.endpoints.len() as u64;
                stats.ufrag_map_entries = self.by_ufrag.len() as u64;
                stats.remote_map_entries = self.by_remote.len() as u64;
                stats.session_map_entries = self.by_session.len() as u64;
                let _ = reply.send(stats);
            }
            Command::Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
            }
        }
    }

    /// Applies a PATCH: an ICE restart when `remote` differs from the current credentials.
    fn patch(
        &mut self,
        kind: SessionKind,
        stream: &str,
        session: &str,
        remote: Option<IceCredentials>,
    ) -> PatchReply {
        let Some(&id) = self.by_session.get(session) else {
            return PatchReply::NotFound;
        };
        let Some(endpoint) = self
            .endpoints
            .get_mut(&id)
            .filter(|e| e.kind == kind && e.stream == stream)
        else {
            return PatchReply::NotFound;
        };
        let Some(remote) = remote else {
            return PatchReply::Unchanged;
        };
        if endpoint.ice.remote_credentials() == Some(&remote) {
            return PatchReply::Unchanged;
        }
        let old = endpoint.ice.local_credentials().ufrag.clone();
        let Ok(new) = endpoint.ice.restart() else {
            return PatchReply::Failed;
        };
        endpoint.ice.set_remote_credentials(remote);
        // The agent accepts the current and the previous local ufrag only: older ones go.
        if let Some(older) = endpoint.previous_ufrag.replace(old) {
            if self.by_ufrag.get(&older) == Some(&id) {
                self.by_ufrag.remove(&older);
            }
        }
        self.by_ufrag.insert(new.ufrag.clone(), id);
        self.stats.ice_restarts += 1;
        tracing::debug!("endpoint {}: ICE restart", id.0);
        PatchReply::Restarted(new)
    }

    /// Applies drain and the abuse limits to a session about to be created; counts refusals.
    fn admit(&mut self, now: Instant, request: &CreateEndpoint) -> Result<(), CreateError> {
        let size = self.streams.get(&request.stream).copied().unwrap_or(0);
        let l = &self.limits;
        let refusal = if size == 0 && self.draining.load(Ordering::Relaxed) {
            self.stats.refused_draining += 1;
            Some(CreateError::Draining)
        } else if size == 0 && self.rates.stress >= l.max_stress {
            // Admission by load: running conferences still take joins (a meeting must not
            // split), new ones go to a less loaded node.
            self.stats.refused_overloaded += 1;
            Some(CreateError::Overloaded {
                stress: self.rates.stress,
                max: l.max_stress,
            })
        } else if !self.sessions.take(now) {
            self.stats.refused_rate_limited += 1;
            Some(CreateError::RateLimited(l.max_sessions_per_second))
        } else if request.announced_sources > l.max_ssrcs_per_endpoint {
            self.stats.refused_too_many_ssrcs += 1;
            Some(CreateError::TooManySsrcs {
                announced: request.announced_sources,
                max: l.max_ssrcs_per_endpoint,
            })
        } else if size == 0 && self.streams.len() as u64 >= l.max_conferences {
            self.stats.refused_too_many_conferences += 1;
            Some(CreateError::TooManyConferences(l.max_conferences))
        } else if size >= l.max_endpoints_per_conference {
            self.stats.refused_conference_full += 1;
            Some(CreateError::ConferenceFull(l.max_endpoints_per_conference))
        } else if self.endpoints.values().filter(|e| e.srtp.is_none()).count() as u64
            >= l.max_dtls_handshakes_in_flight
        {
            self.stats.refused_dtls_busy += 1;
            Some(CreateError::DtlsBusy(l.max_dtls_handshakes_in_flight))
        } else {
            None
        };
        match refusal {
            Some(e) => {
                tracing::debug!(
                    "session refused on stream #{}: {}",
                    stream_tag(&request.stream),
                    e
                );
                Err(e)
            }
            None => Ok(()),
        }
    }

    fn create(&mut self, now: Instant, request: CreateEndpoint) -> Result<EndpointId, CreateError> {
        let id = EndpointId(self.next_id);
        self.next_id += 1;
        let CreateEndpoint {
            kind,
            stream,
            session,
            ice,
            dtls_role,
            remote_fingerprint,
            lines,
            announced_sources: _,
        } = request;
        let publisher = matches!(kind, SessionKind::Publish);
        let sends = |media: MediaKind| publisher && lines.iter().any(|l| l.kind == media);
        let (sends_audio, sends_video) = (sends(MediaKind::Audio), sends(MediaKind::Video));
        let (handle, task) = DtlsSrtpHandshake::start(
            dtls_role,
            &self.certificate,
            remote_fingerprint,
            DtlsSrtpConfig::default(),
        )?;
        match kind {
            SessionKind::Publish => self.forwarder.add_publisher(now, &stream, id, lines)?,
            SessionKind::Play => self.forwarder.add_viewer(now, &stream, id, lines)?,
        }
        self.stats.forwarder_endpoints += 1;
        let (dtls_in, inbound) = mpsc::channel(DTLS_INBOUND_QUEUE);
        tokio::spawn(task);
        tokio::spawn(drive_dtls(id, handle, inbound, self.dtls_events_tx.clone()));
        self.by_ufrag
            .insert(ice.local_credentials().ufrag.clone(), id);
        self.by_session.insert(session.clone(), id);
        *self.streams.entry(stream.clone()).or_default() += 1;
        tracing::debug!(
            "endpoint {} created: {} on stream #{}, DTLS {:?}",
            id.0,
            kind_name(kind),
            stream_tag(&stream),
            dtls_role
        );
        self.endpoints.insert(
            id,
            Endpoint {
                kind,
                stream,
                session,
                ice_counted: ice.stats(),
                ice,
                previous_ufrag: None,
                remote: None,
                dtls_in: Some(dtls_in),
                srtp: None,
                sends_audio,
                sends_video,
                ice_outcome_counted: false,
                rate: TokenBucket::per_second(self.limits.max_packet_rate_per_source, now),
                created: now,
                colibri: None,
            },
        );
        self.stats.endpoints_created += 1;
        Ok(id)
    }

    fn close(&mut self, now: Instant, id: EndpointId, reason: CloseReason) {
        let Some(endpoint) = self.endpoints.remove(&id) else {
            return;
        };
        if let Some(remote) = endpoint.remote {
            if self.by_remote.get(&remote) == Some(&id) {
                self.by_remote.remove(&remote);
            }
        }
        for ufrag in std::iter::once(&endpoint.ice.local_credentials().ufrag)
            .chain(endpoint.previous_ufrag.as_ref())
        {
            if self.by_ufrag.get(ufrag) == Some(&id) {
                self.by_ufrag.remove(ufrag);
            }
        }
        if self.by_session.get(&endpoint.session) == Some(&id) {
            self.by_session.remove(&endpoint.session);
        }
        if let Some(size) = self.streams.get_mut(&endpoint.stream) {
            *size = size.saturating_sub(1);
            if *size == 0 {
                self.streams.remove(&endpoint.stream);
            }
        }
        match &endpoint.colibri {
            Some(link) => self.colibri_closed(now, id, link),
            None => {
                self.forwarder.remove_endpoint(now, id);
                self.stats.forwarder_endpoints = self.stats.forwarder_endpoints.saturating_sub(1);
            }
        }
        self.stats.endpoints_closed += 1;
        if matches!(reason, CloseReason::ConsentExpired) {
            self.stats.endpoints_consent_expired += 1;
        }
        if matches!(
            reason,
            CloseReason::ConsentExpired | CloseReason::ConnectTimeout
        ) && !endpoint.ice_outcome_counted
        {
            self.stats.ice_failed += 1;
        }
        // Dropping `endpoint` drops the DTLS sender: its driver task and handshake end.
        tracing::info!("endpoint {} closed: {}", id.0, reason.as_str());
    }

    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &mut [u8]) {
        self.stats.datagrams_received += 1;
        let kind = classify(datagram);
        if kind == DatagramKind::Stun {
            self.handle_stun(now, from, datagram);
            return;
        }
        if kind == DatagramKind::Unknown {
            self.stats.dropped_unknown_kind += 1;
            return;
        }
        let Some(&id) = self.by_remote.get(&from) else {
            self.stats.dropped_unknown_source += 1;
            return;
        };
        let Some(endpoint) = self.endpoints.get_mut(&id) else {
            self.stats.dropped_unknown_source += 1;
            return;
        };
        match kind {
            DatagramKind::Dtls => match &endpoint.dtls_in {
                Some(dtls_in) => {
                    if dtls_in.try_send(datagram.to_vec()).is_err() {
                        self.stats.dtls_queue_full += 1;
                    }
                }
                None => self.stats.dtls_not_ready += 1,
            },
            DatagramKind::Rtp | DatagramKind::Rtcp if !endpoint.rate.take(now) => {
                self.stats.dropped_rate_limited += 1;
            }
            DatagramKind::Rtp => {
                let Some(srtp) = endpoint.srtp.as_mut() else {
                    self.stats.srtp_not_ready += 1;
                    return;
                };
                match srtp.receiver.unprotect_rtp(datagram) {
                    Ok(len) => {
                        self.stats.rtp_received += 1;
                        if let Some(packet) = datagram.get(..len) {
                            match endpoint.colibri.as_ref() {
                                Some(link) => {
                                    if let Some(c) = self.conferences.get_mut(&link.meeting_id) {
                                        c.conference.handle_rtp(now, id, packet);
                                    }
                                }
                                None => self.forwarder.handle_rtp(now, id, packet),
                            }
                        }
                    }
                    Err(e) => *self.stats.srtp_errors.entry(e.reason()).or_default() += 1,
                }
            }
            DatagramKind::Rtcp => {
                let Some(srtp) = endpoint.srtp.as_mut() else {
                    self.stats.srtp_not_ready += 1;
                    return;
                };
                match srtp.receiver.unprotect_rtcp(datagram) {
                    Ok(len) => {
                        self.stats.rtcp_received += 1;
                        if let Some(packet) = datagram.get(..len) {
                            match endpoint.colibri.as_ref() {
                                Some(link) => {
                                    if let Some(c) = self.conferences.get_mut(&link.meeting_id) {
                                        c.conference.handle_rtcp(now, id, packet);
                                    }
                                }
                                None => self.forwarder.handle_rtcp(now, id, packet),
                            }
                        }
                    }
                    Err(e) => *self.stats.srtp_errors.entry(e.reason()).or_default() += 1,
                }
            }
            DatagramKind::Stun | DatagramKind::Unknown => {}
        }
    }

    fn handle_stun(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        // Just enough parsing to route; the agent verifies everything.
        let message = StunMessage::parse(datagram).ok();
        let id = match &message {
            Some(m) if m.is_binding_success() || m.is_binding_error() => {
                self.by_transaction.remove(&m.transaction_id())
            }
            Some(m) => m
                .ice_ufrags()
                .and_then(|(ours, _)| std::str::from_utf8(ours).ok())
                .and_then(|ufrag| self.by_ufrag.get(ufrag).copied()),
            None => None,
        };
        let Some(id) = id else {
            self.stats.stun_unknown_ufrag += 1;
            return;
        };
        if let Some(endpoint) = self.endpoints.get_mut(&id) {
            endpoint.ice.handle_receive(
                now,
                Receive {
                    source: from,
                    destination: self.ice_local,
                    datagram,
                },
            );
        }
        self.drain_ice(now, id);
    }

    /// Sends the agent's transmits and applies its events.
    fn drain_ice(&mut self, now: Instant, id: EndpointId) {
        let mut consent_expired = false;
        let Some(endpoint) = self.endpoints.get_mut(&id) else {
            return;
        };
        let counted = endpoint.ice.stats();
        add_ice_drops(
            &mut self.stats,
            &std::mem::replace(&mut endpoint.ice_counted, counted),
            &counted,
        );
        while let Some(transmit) = endpoint.ice.poll_transmit() {
            // A request of a full agent: remember whose it is for the response.
            if let Some(transaction) = StunMessage::parse(&transmit.contents)
                .ok()
                .filter(|m| m.is_binding_request())
                .map(|m| m.transaction_id())
            {
                if self.transactions.len() >= MAX_PENDING_TRANSACTIONS {
                    if let Some(oldest) = self.transactions.pop_front() {
                        self.by_transaction.remove(&oldest);
                    }
                }
                self.transactions.push_back(transaction);
                self.by_transaction.insert(transaction, id);
            }
            send(
                &self.socket,
                self.socket_is_v6,
                &mut self.stats,
                &transmit.contents,
                transmit.destination,
            );
        }
        while let Some(event) = endpoint.ice.poll_event() {
            match event {
                IceEvent::SelectedPairChanged { remote, .. } => {
                    let remote = normalise(remote);
                    if let Some(old) = endpoint.remote.replace(remote) {
                        if self.by_remote.get(&old) == Some(&id) {
                            self.by_remote.remove(&old);
                        }
                    }
                    // A 5-tuple belongs to the endpoint that authenticated on it last.
                    self.by_remote.insert(remote, id);
                    if !std::mem::replace(&mut endpoint.ice_outcome_counted, true) {
                        self.stats.ice_succeeded += 1;
                    }
                    tracing::debug!(
                        "endpoint {}: ICE selected {}",
                        id.0,
                        redact(remote, &self.privacy)
                    );
                }
                IceEvent::StateChanged(state) => {
                    if state == IceState::Failed
                        && !std::mem::replace(&mut endpoint.ice_outcome_counted, true)
                    {
                        self.stats.ice_failed += 1;
                    }
                    tracing::debug!("endpoint {}: ICE {:?}", id.0, state);
                }
                IceEvent::ConsentExpired => consent_expired = true,
                _ => {}
            }
        }
        if consent_expired {
            self.close(now, id, CloseReason::ConsentExpired);
        }
    }

    fn handle_dtls_event(&mut self, id: EndpointId, event: DtlsEvent) {
        let Some(endpoint) = self.endpoints.get_mut(&id) else {
            return; // closed meanwhile
        };
        match event {
            DtlsEvent::Transmit(bytes) => match endpoint.send_target() {
                Some(to) => {
                    send(&self.socket, self.socket_is_v6, &mut self.stats, &bytes, to);
                }
                None => self.stats.output_not_sendable += 1,
            },
            DtlsEvent::Completed(Ok(outcome)) => {
                let receiver_config = SrtpConfig {
                    max_ssrcs: usize::try_from(self.limits.max_ssrcs_per_endpoint)
                        .unwrap_or(usize::MAX),
                    ..SrtpConfig::default()
                };
                let contexts = SrtpSender::new(&outcome.keys.local, SrtpConfig::default())
                    .and_then(|sender| {
                        SrtpReceiver::new(&outcome.keys.remote, receiver_config)
                            .map(|receiver| Srtp { sender, receiver })
                    });
                match contexts {
                    Ok(srtp) => {
                        endpoint.srtp = Some(srtp);
                        self.stats.dtls_completed += 1;
                        tracing::debug!("endpoint {}: DTLS done, {:?}", id.0, outcome.profile);
                    }
                    Err(e) => {
                        *self.stats.srtp_errors.entry(e.reason()).or_default() += 1;
                        self.stats.dtls_failed += 1;
                        self.close(Instant::now(), id, CloseReason::DtlsFailed);
                    }
                }
            }
            DtlsEvent::Completed(Err(e)) => {
                self.stats.dtls_failed += 1;
                tracing::debug!("endpoint {}: DTLS failed: {}", id.0, e);
                self.close(Instant::now(), id, CloseReason::DtlsFailed);
            }
        }
    }

    /// Protects and sends what the forwarder produced.
    fn drain_forwarder(&mut self) {
        while let Some(output) = self.forwarder.poll_output() {
            let (to, packet, rtp) = match output {
                ForwarderOutput::Rtp { to, packet } => (to, packet, true),
                ForwarderOutput::Rtcp { to, packet } => (to, packet, false),
            };
            if let Some(unsent) = self.protect_and_queue(to, packet, rtp) {
                self.forwarder.recycle(unsent);
            }
        }
        self.flush_outbound();
        for spent in self.outbound.take_spent() {
            self.forwarder.recycle(spent);
        }
    }

    /// SRTP-protects `packet` for `to` and queues it on the outbound batch (sending the
    /// batch when it is full). Returns the buffer when it was not queued; queued buffers
    /// come back through [`SendBatch::take_spent`] after the flush.
    fn protect_and_queue(
        &mut self,
        to: EndpointId,
        mut packet: Vec<u8>,
        rtp: bool,
    ) -> Option<Vec<u8>> {
        let target = self.endpoints.get_mut(&to).and_then(|e| {
            let target = e.send_target()?;
            Some((target, e.srtp.as_mut()?))
        });
        let Some((target, srtp)) = target else {
            self.stats.output_not_sendable += 1;
            return Some(packet);
        };
        let protected = if rtp {
            srtp.sender.protect_rtp_vec(&mut packet)
        } else {
            srtp.sender.protect_rtcp_vec(&mut packet)
        };
        if let Err(e) = protected {
            *self.stats.srtp_errors.entry(e.reason()).or_default() += 1;
            return Some(packet);
        }
        if rtp {
            self.stats.rtp_sent += 1;
        } else {
            self.stats.rtcp_sent += 1;
        }
        if self.outbound.push(packet, target) {
            self.flush_outbound();
        }
        None
    }

    /// Hands the queued packets to the kernel (one `sendmmsg` per [`batch_io::SEND_BATCH`]).
    fn flush_outbound(&mut self) {
        if self.outbound.is_empty() {
            return;
        }
        let flushed = self.outbound.flush(&self.socket);
        self.stats.datagrams_sent += flushed.datagrams;
        self.stats.bytes_sent += flushed.bytes;
        self.stats.send_failures += flushed.failed;
        self.stats.send_batches += flushed.syscalls;
    }
}

/// Sends without waiting: a full socket buffer drops the datagram (counted), like a router.
fn send(
    socket: &UdpSocket,
    socket_is_v6: bool,
    stats: &mut MediaStats,
    datagram: &[u8],
    to: SocketAddr,
) -> bool {
    let to = match (socket_is_v6, to) {
        (true, SocketAddr::V4(v4)) => {
            SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
        }
        _ => to,
    };
    match socket.try_send_to(datagram, to) {
        Ok(sent) => {
            stats.datagrams_sent += 1;
            stats.bytes_sent += sent as u64;
            true
        }
        Err(_) => {
            stats.send_failures += 1;
            false
        }
    }
}

/// Adds an agent's dropped-STUN counters that grew from `before` to `after` to the node's.
fn add_ice_drops(stats: &mut MediaStats, before: &IceStats, after: &IceStats) {
    let delta = |f: fn(&IceStats) -> u64| f(after).saturating_sub(f(before));
    stats.stun_dropped_malformed += delta(|s| s.dropped_malformed);
    stats.stun_dropped_bad_fingerprint += delta(|s| s.dropped_bad_fingerprint);
    stats.stun_dropped_bad_username += delta(|s| s.dropped_bad_username);
    stats.stun_dropped_bad_integrity += delta(|s| s.dropped_bad_integrity);
    stats.stun_dropped_unexpected += delta(|s| s.dropped_unexpected);
    stats.stun_dropped_overflow += delta(|s| s.dropped_overflow);
}

fn kind_name(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::Publish => "publisher",
        SessionKind::Play => "viewer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_bursts_one_second_then_refills() {
        let start = Instant::now();
        let mut bucket = TokenBucket::per_second(10, start);
        let passed = (0..20).filter(|_| bucket.take(start)).count();
        assert_eq!(passed, 10);
        assert!(!bucket.take(start + Duration::from_millis(50)));
        assert!(bucket.take(start + Duration::from_millis(150)));
        // Never more than the burst, however long it was idle.
        let later = start + Duration::from_secs(60);
        let passed = (0..20).filter(|_| bucket.take(later)).count();
        assert_eq!(passed, 10);
    }
}
