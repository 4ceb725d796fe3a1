//! Probing: short bursts sent above the current estimate to find out whether the link has
//! headroom before the allocator raises layers, and the rate the feedback of such a burst shows.
//!
//! Three sans-IO parts, after libwebrtc's `ProbeController`, `BitrateProber` and
//! `ProbeBitrateEstimator`:
//!
//! - [`ProbeController`] decides *when* to probe and at which rates: an exponential start
//!   (3× and 6× the initial estimate), probes toward the rate the allocator would like to use
//!   ([`ProbeController::request_headroom`]), further probing while results keep confirming
//!   the target, periodic probing while the estimate stays far below what is wanted, and a
//!   back-off after overuse. It hands out [`ProbeCluster`]s.
//! - [`ProbeSender`] turns a cluster into a schedule of [`ProbeSend`]s: how many bytes to send
//!   when. The SFU fills them with padding or with RTX of recently sent packets and tags the
//!   packets with the cluster id (they come back as [`PacketResult::probe_cluster`]). Media
//!   the pacer sends meanwhile is part of the cluster too ([`ProbeSender::on_media_sent`]),
//!   as in libwebrtc, where the pacer sends the probe's bytes from the media queue first.
//! - [`ProbeResultEstimator`] reads the feedback of a cluster's packets and computes the rate
//!   the path delivered, which the estimator adopts.
//!
//! Typical wiring for one receiver:
//!
//! ```
//! use std::time::Instant;
//! use relais_bwe::probe::{ProbeController, ProbeResultEstimator, ProbeSender};
//!
//! let now = Instant::now();
//! let mut controller = ProbeController::new(now);
//! let mut sender = ProbeSender::new();
//! let mut results = ProbeResultEstimator::new();
//! while let Some(cluster) = controller.poll_cluster(now) {
//!     results.add_cluster(&cluster);
//!     sender.add_cluster(now, cluster);
//! }
//! while let Some(send) = sender.poll_send(now) {
//!     // send `send.bytes` of padding/RTX tagged with `send.cluster`
//!     let _ = send;
//! }
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::{BweConfig, PacketResult};

/// Fewest packets a probe cluster consists of (libwebrtc: 5).
pub const MIN_PROBE_PACKETS: usize = 5;

/// How long a probe cluster lasts at its target rate, at least (libwebrtc: 15 ms).
pub const MIN_PROBE_DURATION: Duration = Duration::from_millis(15);

/// Fewest bytes in a probe cluster. libwebrtc has no such floor; at low rates its 15 ms fit
/// in the burst allowance of a token-bucket shaper (`tc tbf rate 1mbit burst 32kbit`, a
/// policer), which then passes the whole cluster at line rate: the later half of 10 000
/// bytes is paced by the shaper for the common bursts (see `tail_rate`).
pub const MIN_PROBE_BYTES: usize = 10_000;

/// Scales of the initial estimate the first two clusters probe at.
const INITIAL_PROBE_SCALES: [f64; 2] = [3.0, 6.0];
/// Scales of the wanted rate a headroom request probes at.
const HEADROOM_PROBE_SCALES: [f64; 2] = [1.0, 2.0];
/// A headroom probe never goes above this multiple of the current estimate.
const HEADROOM_LIMIT_BY_ESTIMATE: f64 = 2.0;
/// Probing never goes above this multiple of the wanted rate (once one is known).
const WANTED_CAP_SCALE: f64 = 1.2;
/// A result at least this fraction of the last target probes further.
const FURTHER_PROBE_THRESHOLD: f64 = 0.7;
/// Further probing targets this multiple of the new estimate.
const FURTHER_PROBE_SCALE: f64 = 2.0;
/// How long a round waits for results (and further probing) after its last cluster.
const RESULT_WAIT: Duration = Duration::from_secs(1);
/// Fewest time between the starts of two probing rounds.
const MIN_ROUND_INTERVAL: Duration = Duration::from_secs(1);
/// Periodic probing interval while the estimate is far below the wanted rate.
const PERIODIC_INTERVAL: Duration = Duration::from_secs(5);
/// "Far below": the estimate is under this fraction of the wanted rate.
const PERIODIC_GAP: f64 = 0.8;
/// First back-off after an overuse; doubles when probing caused it.
const BACKOFF_INITIAL: Duration = Duration::from_secs(2);
/// Longest back-off.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Most clusters waiting to be polled.
const MAX_PENDING: usize = 4;

/// Probe packets are at least this large (libwebrtc: 200 bytes)…
const MIN_PROBE_PACKET: usize = 200;
/// …and at most this large (fits one RTP packet on a 1280-byte-MTU path).
const MAX_PROBE_PACKET: usize = 1200;
/// A probe packet carries about this much time at the cluster's rate.
const PROBE_PACKET_TIME_NS: u128 = 2_000_000;
/// A sender drops a cluster it could not start within this time (libwebrtc: 5 s).
const CLUSTER_START_TIMEOUT: Duration = Duration::from_secs(5);
/// Polling later than this behind schedule restarts the schedule from `now` (no catch-up burst).
const MAX_LATE: Duration = Duration::from_millis(10);
/// Most clusters a sender queues.
const MAX_SENDER_CLUSTERS: usize = 8;

/// Received fraction of a cluster's `min_packets` needed for a result (libwebrtc: 80 %).
const MIN_RECEIVED_PACKETS_RATIO: f64 = 0.8;
/// Received fraction of a cluster's `min_bytes` needed for a result (libwebrtc: 80 %).
const MIN_RECEIVED_BYTES_RATIO: f64 = 0.8;
/// A receive rate above this multiple of the send rate is not believable.
const MAX_VALID_RATIO: f64 = 2.0;
/// Below this receive/send ratio, the link is taken as saturated…
const MIN_RATIO_FOR_UNSATURATED_LINK: f64 = 0.9;
/// …and the result is this fraction of the receive rate.
const TARGET_UTILIZATION_FRACTION: f64 = 0.95;
/// A cluster with a larger lost fraction gives no result.
const MAX_LOSS_FRACTION: f64 = 0.2;
/// The first and last packet of a cluster are at most this far apart (send and receive side).
const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Clusters whose newest packet was sent this long before the newest packet seen are
/// forgotten.
const MAX_CLUSTER_HISTORY: Duration = Duration::from_secs(2);
/// Most clusters an estimator tracks (aggregates and registrations each).
const MAX_TRACKED_CLUSTERS: usize = 16;
/// Arrivals kept per cluster for the tail rate (a cluster is a few dozen packets).
const MAX_TAIL_SAMPLES: usize = 128;

/// `t + d`, saturating at `t` instead of panicking on overflow.
fn add(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or(t)
}

/// A rate from a float, saturating (non-finite or negative values give 0).
fn to_bps(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        // `as` saturates at u64::MAX.
        v as u64
    } else {
        0
    }
}

/// `bps × factor`, saturating.
fn scale(bps: u64, factor: f64) -> u64 {
    to_bps(bps as f64 * factor)
}

/// One burst at a target rate, to be sent back to back and measured by its feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeCluster {
    /// Identifies the cluster in [`PacketResult::probe_cluster`].
    pub id: u32,
    /// The rate the cluster is sent at.
    pub target_bps: u64,
    /// The cluster consists of at least this many packets.
    pub min_packets: usize,
    /// … and at least this many bytes (the target rate over `duration`).
    pub min_bytes: usize,
    /// How long the cluster lasts at its target rate.
    pub duration: Duration,
}

impl ProbeCluster {
    /// A cluster at `target_bps`: at least [`MIN_PROBE_PACKETS`] packets, and
    /// [`MIN_PROBE_DURATION`] worth of bytes at the target rate but no fewer than
    /// [`MIN_PROBE_BYTES`].
    pub fn new(id: u32, target_bps: u64) -> Self {
        let by_duration = u128::from(target_bps) * MIN_PROBE_DURATION.as_nanos() / 8_000_000_000;
        let bytes = by_duration.max(MIN_PROBE_BYTES as u128);
        let duration = if target_bps == 0 {
            MIN_PROBE_DURATION
        } else {
            let nanos = bytes * 8_000_000_000 / u128::from(target_bps);
            Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
        };
        Self {
            id,
            target_bps,
            min_packets: MIN_PROBE_PACKETS,
            min_bytes: usize::try_from(bytes).unwrap_or(usize::MAX),
            duration,
        }
    }
}

/// An ongoing probing round: clusters were handed out, results are awaited.
#[derive(Debug, Clone, Copy)]
struct Round {
    /// The round ends (without overuse: successfully) at this time.
    until: Instant,
    /// The highest target probed in this round.
    last_target: u64,
}

/// Decides when to probe and at which rates.
///
/// Feed it the current estimate ([`on_estimate`](Self::on_estimate)), the rate the allocator
/// would like to use ([`request_headroom`](Self::request_headroom)) and overuse signals
/// ([`on_overuse`](Self::on_overuse)); take clusters with [`poll_cluster`](Self::poll_cluster)
/// and call it again at [`poll_timeout`](Self::poll_timeout).
#[derive(Debug, Clone)]
pub struct ProbeController {
    config: BweConfig,
    /// The latest time the controller was told.
    now: Instant,
    estimate_bps: u64,
    wanted_bps: Option<u64>,
    /// A headroom request (an increase of the wanted rate) not yet served.
    headroom_requested: bool,
    pending: VecDeque<ProbeCluster>,
    round: Option<Round>,
    last_round_start: Option<Instant>,
    backoff: Duration,
    backoff_until: Option<Instant>,
    next_id: u32,
}

impl ProbeController {
    /// A controller with [`BweConfig::default`]; see [`with_config`](Self::with_config).
    pub fn new(now: Instant) -> Self {
        Self::with_config(now, BweConfig::default())
    }

    /// A controller whose first round probes at 3× and 6× `config.initial_bps` (capped at
    /// `config.max_bps`); the clusters are ready at `now`.
    pub fn with_config(now: Instant, config: BweConfig) -> Self {
        let estimate_bps = config.initial_bps.max(config.min_bps).min(config.max_bps);
        let mut controller = Self {
            config,
            now,
            estimate_bps,
            wanted_bps: None,
            headroom_requested: false,
            pending: VecDeque::new(),
            round: None,
            last_round_start: None,
            backoff: BACKOFF_INITIAL,
            backoff_until: None,
            next_id: 0,
        };
        let targets =
            INITIAL_PROBE_SCALES.map(|s| scale(estimate_bps, s).min(controller.config.max_bps));
        controller.start_round(now, &targets);
        controller
    }

    /// The current estimate changed (or was confirmed). While a round waits for results, an
    /// estimate of at least 70 % of the round's highest target probes further at twice the
    /// estimate (capped at the wanted rate × 1.2, or the configured maximum).
    pub fn on_estimate(&mut self, now: Instant, estimate_bps: u64) {
        self.set_now(now);
        self.estimate_bps = estimate_bps;
        self.expire_round(now);
        let cap = self.cap_bps();
        if let Some(round) = self.round {
            if self.pending.is_empty()
                && estimate_bps as f64 >= round.last_target as f64 * FURTHER_PROBE_THRESHOLD
            {
                let target = scale(estimate_bps, FURTHER_PROBE_SCALE).min(cap);
                if target > round.last_target && target > estimate_bps {
                    self.push_cluster(target);
                    self.round = Some(Round {
                        until: add(now, RESULT_WAIT),
                        last_target: target,
                    });
                }
            }
        }
        if self.wanted_bps.is_some_and(|w| w <= estimate_bps) {
            self.headroom_requested = false;
        }
    }

    /// The allocator would use `wanted_bps` (more than the estimate): probe toward it. An
    /// increase of the wanted rate starts a round at 1× and 2× the wanted rate, each capped at
    /// 2× the estimate and at the wanted rate × 1.2, as soon as rate limiting allows (at most
    /// one round a second, none while a round is on or after an overuse). While the estimate
    /// stays below 80 % of the wanted rate, a round follows every 5 s.
    pub fn request_headroom(&mut self, now: Instant, wanted_bps: u64) {
        self.set_now(now);
        let increased = self.wanted_bps.is_none_or(|w| wanted_bps > w);
        self.wanted_bps = Some(wanted_bps);
        if wanted_bps <= self.estimate_bps {
            self.headroom_requested = false;
        } else if increased {
            self.headroom_requested = true;
        }
        self.tick(now);
    }

    /// The delay- or loss-based controller saw overuse: drop clusters not handed out yet, end
    /// the round and probe no more for a back-off time (2 s, doubling up to 30 s each time a
    /// probing round was on; reset by a round that ends without overuse).
    pub fn on_overuse(&mut self, now: Instant) {
        self.set_now(now);
        let probe_induced = self.round.is_some() || !self.pending.is_empty();
        self.pending.clear();
        self.round = None;
        self.headroom_requested = false;
        self.backoff_until = Some(add(now, self.backoff));
        if probe_induced {
            self.backoff = self.backoff.saturating_mul(2).min(BACKOFF_MAX);
        }
    }

    /// The next cluster to send, if one is due.
    pub fn poll_cluster(&mut self, now: Instant) -> Option<ProbeCluster> {
        self.set_now(now);
        self.tick(now);
        self.pending.pop_front()
    }

    /// When to call [`poll_cluster`](Self::poll_cluster) next; `None`: only after new input.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.pending.is_empty() {
            return Some(self.now);
        }
        let mut next = self.round.map(|r| r.until);
        let allowed = self.allowed_at();
        if self.headroom_requested {
            next = Some(next.map_or(allowed, |n| n.min(allowed)));
        }
        if self.periodic_wanted() {
            let periodic = self
                .last_round_start
                .map_or(allowed, |t| add(t, PERIODIC_INTERVAL).max(allowed));
            next = Some(next.map_or(periodic, |n| n.min(periodic)));
        }
        next.map(|n| n.max(self.now))
    }

    /// The estimate last given to [`on_estimate`](Self::on_estimate) (or the initial one).
    pub fn estimate_bps(&self) -> u64 {
        self.estimate_bps
    }

    /// Whether a probing round is on (clusters pending or results awaited).
    pub fn is_probing(&self) -> bool {
        self.round.is_some() || !self.pending.is_empty()
    }

    fn set_now(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Probing never goes above this.
    fn cap_bps(&self) -> u64 {
        let max = self.config.max_bps;
        match self.wanted_bps {
            Some(w) => max.min(scale(w, WANTED_CAP_SCALE)),
            None => max,
        }
    }

    /// The wanted rate is far above the estimate: periodic probing applies.
    fn periodic_wanted(&self) -> bool {
        self.wanted_bps
            .is_some_and(|w| (self.estimate_bps as f64) < w as f64 * PERIODIC_GAP)
    }

    /// The earliest time a new round may start.
    fn allowed_at(&self) -> Instant {
        let mut t = self.now;
        if let Some(b) = self.backoff_until {
            t = t.max(b);
        }
        if let Some(s) = self.last_round_start {
            t = t.max(add(s, MIN_ROUND_INTERVAL));
        }
        if let Some(r) = self.round {
            t = t.max(r.until);
        }
        t
    }

    fn expire_round(&mut self, now: Instant) {
        if self.round.is_some_and(|r| now >= r.until) {
            self.round = None;
            self.backoff = BACKOFF_INITIAL;
        }
    }

    /// Starts a round if one is due.
    fn tick(&mut self, now: Instant) {
        self.expire_round(now);
        if self.round.is_some() || !self.pending.is_empty() || now < self.allowed_at() {
            return;
        }
        let Some(wanted) = self.wanted_bps else {
            return;
        };
        let periodic_due = self.periodic_wanted()
            && self
                .last_round_start
                .is_none_or(|t| now >= add(t, PERIODIC_INTERVAL));
        let headroom_due = self.headroom_requested && wanted > self.estimate_bps;
        if !headroom_due && !periodic_due {
            return;
        }
        self.headroom_requested = false;
        let basis = self.estimate_bps.max(self.config.min_bps);
        let limit = self.cap_bps().min(scale(basis, HEADROOM_LIMIT_BY_ESTIMATE));
        let targets = HEADROOM_PROBE_SCALES.map(|s| scale(wanted, s).min(limit));
        self.start_round(now, &targets);
    }

    /// Queues clusters at `targets` (those above the estimate, ascending, deduplicated) and
    /// opens a round.
    fn start_round(&mut self, now: Instant, targets: &[u64]) {
        let mut last = self.estimate_bps;
        for &target in targets {
            if target > last {
                self.push_cluster(target);
                last = target;
            }
        }
        if last > self.estimate_bps {
            self.round = Some(Round {
                until: add(now, RESULT_WAIT),
                last_target: last,
            });
            self.last_round_start = Some(now);
        }
    }

    fn push_cluster(&mut self, target_bps: u64) {
        if self.pending.len() >= MAX_PENDING {
            return;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.pending.push_back(ProbeCluster::new(id, target_bps));
    }
}

/// Bytes of probe traffic to send now for a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSend {
    /// The cluster the packet belongs to (tag it so its feedback carries the id).
    pub cluster: u32,
    /// About how many bytes to send in one packet (padding, or RTX of a recently sent packet
    /// of about that size).
    pub bytes: usize,
}

/// A cluster being sent.
#[derive(Debug, Clone, Copy)]
struct ActiveCluster {
    cluster: ProbeCluster,
    added: Instant,
    started: bool,
    next_send: Instant,
    sent_bytes: usize,
    sent_packets: usize,
}

impl ActiveCluster {
    fn done(&self) -> bool {
        self.sent_packets >= self.cluster.min_packets && self.sent_bytes >= self.cluster.min_bytes
    }

    /// Bytes per probe packet: about 2 ms at the target rate, within [200, 1200].
    fn packet_bytes(&self) -> usize {
        let b = u128::from(self.cluster.target_bps) * PROBE_PACKET_TIME_NS / 8_000_000_000;
        usize::try_from(b)
            .unwrap_or(usize::MAX)
            .clamp(MIN_PROBE_PACKET, MAX_PROBE_PACKET)
    }

    /// How long `bytes` take at the target rate.
    fn send_time(&self, bytes: usize) -> Duration {
        let rate = u128::from(self.cluster.target_bps.max(1));
        let nanos = (bytes as u128 * 8_000_000_000).div_ceil(rate);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)).min(MAX_PROBE_INTERVAL)
    }
}

/// Schedules the packets of probe clusters: one cluster after the other, each at its target
/// rate until it has sent its `min_packets` and `min_bytes`.
#[derive(Debug, Clone, Default)]
pub struct ProbeSender {
    clusters: VecDeque<ActiveCluster>,
}

impl ProbeSender {
    /// A sender with no clusters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `cluster`; it starts at `now`, or when the clusters before it are done.
    pub fn add_cluster(&mut self, now: Instant, cluster: ProbeCluster) {
        if self.clusters.len() >= MAX_SENDER_CLUSTERS {
            return;
        }
        self.clusters.push_back(ActiveCluster {
            cluster,
            added: now,
            started: false,
            next_send: now,
            sent_bytes: 0,
            sent_packets: 0,
        });
    }

    /// The next probe packet, if one is due at `now`. The sender assumes `bytes` were sent.
    pub fn poll_send(&mut self, now: Instant) -> Option<ProbeSend> {
        // Clusters that could not start in time are stale.
        while let Some(front) = self.clusters.front() {
            if !front.started && now.saturating_duration_since(front.added) > CLUSTER_START_TIMEOUT
            {
                self.clusters.pop_front();
            } else {
                break;
            }
        }
        let active = self.clusters.front_mut()?;
        if now < active.next_send {
            return None;
        }
        // On schedule (or a little late): keep the schedule; far behind: restart from now.
        let base = if now.saturating_duration_since(active.next_send) > MAX_LATE {
            now
        } else {
            active.next_send
        };
        active.started = true;
        let bytes = active.packet_bytes();
        active.sent_bytes = active.sent_bytes.saturating_add(bytes);
        active.sent_packets = active.sent_packets.saturating_add(1);
        let next = add(base, active.send_time(bytes));
        active.next_send = next;
        let send = ProbeSend {
            cluster: active.cluster.id,
            bytes,
        };
        if active.done() {
            self.finish_front(next);
        }
        Some(send)
    }

    /// A media packet of `bytes` left at `now` (through the pacer). While a cluster is being
    /// sent (its first probe packet is out, its last not yet), the packet is part of it:
    /// returns the cluster's id, for the caller to tag the packet with, and the cluster
    /// counts the bytes as sent, so its own packets make up only the rest of its rate.
    ///
    /// This is libwebrtc's way (its pacer sends queued media as part of a probe and pads
    /// only the rest). Probe packets sent beside the media instead would share the
    /// bottleneck with it, and their feedback would show only their share of the capacity.
    pub fn on_media_sent(&mut self, now: Instant, bytes: usize) -> Option<u32> {
        let active = self.clusters.front_mut()?;
        if !active.started {
            return None;
        }
        active.sent_bytes = active.sent_bytes.saturating_add(bytes);
        active.sent_packets = active.sent_packets.saturating_add(1);
        // The media took its share of the cluster's time at the target rate.
        let base = active
            .next_send
            .max(now.checked_sub(MAX_LATE).unwrap_or(now));
        let next = add(base, active.send_time(bytes));
        active.next_send = next;
        let id = active.cluster.id;
        if active.done() {
            self.finish_front(next);
        }
        Some(id)
    }

    /// The cluster being sent is complete: the next one starts once its last packet has
    /// drained (at `next`).
    fn finish_front(&mut self, next: Instant) {
        self.clusters.pop_front();
        if let Some(following) = self.clusters.front_mut() {
            following.next_send = following.next_send.max(next);
        }
    }

    /// When [`poll_send`](Self::poll_send) has the next packet; `None`: no cluster queued.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.clusters.front().map(|c| c.next_send)
    }

    /// Whether a cluster is queued or being sent.
    pub fn is_probing(&self) -> bool {
        !self.clusters.is_empty()
    }
}

/// What the feedback so far says about one cluster's packets.
#[derive(Debug, Clone)]
struct ClusterAggregate {
    id: u32,
    first_send: Instant,
    last_send: Instant,
    size_last_send: usize,
    first_receive: Instant,
    last_receive: Instant,
    size_first_receive: usize,
    /// Bytes of the received packets.
    size_total: usize,
    received: usize,
    lost: usize,
    /// The newest send time of any of the cluster's packets (received or lost).
    newest_sent: Instant,
    /// Arrival time and size of the first [`MAX_TAIL_SAMPLES`] received packets, for the
    /// tail rate.
    arrivals: Vec<(Instant, usize)>,
}

/// The receive rate of the later half of a cluster's arrivals (without the first one of that
/// half), or `None` when that half is too short to tell.
///
/// A token-bucket shaper (a policer, `tc tbf`) lets a burst through at line rate before it
/// paces at its rate: a short cluster that fits the bucket arrives as fast as it was sent and
/// the whole-cluster rate overstates the link several times. The later half has drained the
/// bucket when the cluster is at least twice the burst, so its rate is the link's.
fn tail_rate(arrivals: &[(Instant, usize)]) -> Option<f64> {
    const MIN_TAIL_PACKETS: usize = 3;
    let mut sorted: Vec<(Instant, usize)> = arrivals.to_vec();
    sorted.sort_by_key(|&(at, _)| at);
    let tail = sorted.get(sorted.len() / 2..)?;
    if tail.len() < MIN_TAIL_PACKETS {
        return None;
    }
    let (first, _) = *tail.first()?;
    let (last, _) = *tail.last()?;
    let span = last.saturating_duration_since(first);
    if span.is_zero() {
        return None;
    }
    let bytes: usize = tail.iter().skip(1).map(|&(_, size)| size).sum();
    Some(bytes as f64 * 8.0 / span.as_secs_f64())
}

/// Computes the rate a probe cluster's feedback shows (libwebrtc's `ProbeBitrateEstimator`).
///
/// For each cluster: the send rate over its received packets (without the last one sent) and
/// the receive rate (without the first one received), or the rate of the later half of the
/// arrivals when that is lower (see [`tail_rate`]: shapers with a burst allowance). A result needs 80 % of the cluster's
/// `min_packets` and `min_bytes` received, at most 20 % of its reported packets lost, send
/// and receive spans within (0, 1 s], and a receive rate no more than twice the send rate.
/// The result is `min(send, receive)`, or 95 % of the receive rate when that is below 90 % of
/// the send rate (the probe found the link's capacity).
#[derive(Debug, Clone, Default)]
pub struct ProbeResultEstimator {
    known: VecDeque<ProbeCluster>,
    clusters: VecDeque<ClusterAggregate>,
    newest_sent: Option<Instant>,
    /// The rate of the last probe that found the link's capacity, until a later probe
    /// carried more.
    path_limit: Option<u64>,
}

impl ProbeResultEstimator {
    /// An estimator that knows no cluster yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a cluster's sizes (its `min_packets` and `min_bytes` set the bar for a
    /// result). A cluster seen in feedback without registration is judged against
    /// [`MIN_PROBE_PACKETS`] packets and no byte minimum.
    pub fn add_cluster(&mut self, cluster: &ProbeCluster) {
        self.known.retain(|c| c.id != cluster.id);
        if self.known.len() >= MAX_TRACKED_CLUSTERS {
            self.known.pop_front();
        }
        self.known.push_back(*cluster);
    }

    /// Reads a batch of feedback; packets without `probe_cluster` are ignored. Returns the
    /// cluster and rate of the last cluster in the batch that gives a valid result.
    pub fn on_results(&mut self, results: &[PacketResult]) -> Option<(u32, u64)> {
        let mut touched: Vec<u32> = Vec::new();
        for r in results {
            let Some(id) = r.probe_cluster else {
                continue;
            };
            self.newest_sent = Some(self.newest_sent.map_or(r.sent, |t| t.max(r.sent)));
            self.aggregate(id, r);
            touched.retain(|&t| t != id);
            touched.push(id);
        }
        self.erase_old();
        let (id, bps, saturated) = touched.iter().rev().find_map(|&id| self.evaluate(id))?;
        if saturated {
            self.path_limit = Some(bps);
        } else if self.path_limit.is_some_and(|limit| bps >= limit) {
            // The path carried more than the limit measured earlier: that limit is gone.
            self.path_limit = None;
        }
        Some((id, bps))
    }

    /// What the path was last measured to carry at most: the result of the last probe whose
    /// receive rate fell below its send rate (the probe found the link's capacity), unless a
    /// later probe carried as much. `None` when no probe hit a limit.
    ///
    /// A probe the path kept up with measures only its own send rate, not the path: in an
    /// application-limited call on a fast path that is all probes show, and bounding the
    /// pacer by it would queue every key frame burst.
    pub fn path_limit_bps(&self) -> Option<u64> {
        self.path_limit
    }

    fn aggregate(&mut self, id: u32, r: &PacketResult) {
        let index = match self.clusters.iter().position(|c| c.id == id) {
            Some(i) => i,
            None => {
                if self.clusters.len() >= MAX_TRACKED_CLUSTERS {
                    self.clusters.pop_front();
                }
                let arrival = r.arrival.unwrap_or(r.sent);
                self.clusters.push_back(ClusterAggregate {
                    id,
                    first_send: r.sent,
                    last_send: r.sent,
                    size_last_send: 0,
                    first_receive: arrival,
                    last_receive: arrival,
                    size_first_receive: 0,
                    size_total: 0,
                    received: 0,
                    lost: 0,
                    newest_sent: r.sent,
                    arrivals: Vec::new(),
                });
                self.clusters.len().saturating_sub(1)
            }
        };
        let Some(c) = self.clusters.get_mut(index) else {
            return;
        };
        c.newest_sent = c.newest_sent.max(r.sent);
        let Some(arrival) = r.arrival else {
            c.lost = c.lost.saturating_add(1);
            return;
        };
        if c.received == 0 {
            c.first_send = r.sent;
            c.last_send = r.sent;
            c.size_last_send = r.size;
            c.first_receive = arrival;
            c.last_receive = arrival;
            c.size_first_receive = r.size;
        } else {
            if r.sent < c.first_send {
                c.first_send = r.sent;
            }
            if r.sent > c.last_send {
                c.last_send = r.sent;
                c.size_last_send = r.size;
            }
            if arrival < c.first_receive {
                c.first_receive = arrival;
                c.size_first_receive = r.size;
            }
            if arrival > c.last_receive {
                c.last_receive = arrival;
            }
        }
        c.size_total = c.size_total.saturating_add(r.size);
        c.received = c.received.saturating_add(1);
        if c.arrivals.len() < MAX_TAIL_SAMPLES {
            c.arrivals.push((arrival, r.size));
        }
    }

    fn erase_old(&mut self) {
        if let Some(newest) = self.newest_sent {
            self.clusters
                .retain(|c| newest.saturating_duration_since(c.newest_sent) <= MAX_CLUSTER_HISTORY);
        }
    }

    /// `(cluster, rate, whether the probe found the link's capacity)`.
    fn evaluate(&self, id: u32) -> Option<(u32, u64, bool)> {
        let c = self.clusters.iter().find(|c| c.id == id)?;
        let (min_packets, min_bytes) = self
            .known
            .iter()
            .find(|k| k.id == id)
            .map_or((MIN_PROBE_PACKETS, 0), |k| (k.min_packets, k.min_bytes));
        if (c.received as f64) < min_packets as f64 * MIN_RECEIVED_PACKETS_RATIO
            || (c.size_total as f64) < min_bytes as f64 * MIN_RECEIVED_BYTES_RATIO
        {
            return None;
        }
        let reported = c.received.saturating_add(c.lost);
        if reported == 0 || c.lost as f64 > reported as f64 * MAX_LOSS_FRACTION {
            return None;
        }
        let send_interval = c.last_send.saturating_duration_since(c.first_send);
        let receive_interval = c.last_receive.saturating_duration_since(c.first_receive);
        if send_interval.is_zero()
            || send_interval > MAX_PROBE_INTERVAL
            || receive_interval.is_zero()
            || receive_interval > MAX_PROBE_INTERVAL
        {
            return None;
        }
        let send_size = c.size_total.checked_sub(c.size_last_send)?;
        let receive_size = c.size_total.checked_sub(c.size_first_receive)?;
        if send_size == 0 || receive_size == 0 {
            return None;
        }
        let send_rate = send_size as f64 * 8.0 / send_interval.as_secs_f64();
        let whole_rate = receive_size as f64 * 8.0 / receive_interval.as_secs_f64();
        let receive_rate = tail_rate(&c.arrivals).map_or(whole_rate, |tail| whole_rate.min(tail));
        if receive_rate > send_rate * MAX_VALID_RATIO {
            return None;
        }
        let saturated = receive_rate < send_rate * MIN_RATIO_FOR_UNSATURATED_LINK;
        let result = if saturated {
            receive_rate * TARGET_UTILIZATION_FRACTION
        } else {
            send_rate.min(receive_rate)
        };
        Some((id, to_bps(result), saturated))
    }
}
