//! One receiver's downlink: the transport-wide send history, the bandwidth estimate its
//! feedback gives, probing for headroom and the pacer its packets leave through.
//!
//! The pacer spreads packets at 2.5 × the estimate, but no faster than the last probe result
//! (what the path was measured to carry); media it sends while a probe cluster is out counts
//! toward the cluster. The allocation gets [`ALLOCATION_SHARE`] of the estimate.
//!
//! Only receivers that negotiated transport-cc have one; the others get packets unpaced
//! and the allocation without a bandwidth limit.

use std::time::{Duration, Instant};

use relais_bwe::estimator::BandwidthEstimator;
use relais_bwe::pacer::{Pacer, PacerConfig, PacketClass};
use relais_bwe::probe::{ProbeController, ProbeResultEstimator, ProbeSender};
use relais_bwe::twcc::TwccSendHistory;
use relais_bwe::{BweConfig, PacketResult};

/// Bytes the SRTP tag adds to what the pacer and the history count.
pub(crate) const SRTP_OVERHEAD: usize = 16;
/// How often a receiver is told its estimate (ConnectionStats).
pub(crate) const CONNECTION_STATS_INTERVAL: Duration = Duration::from_secs(5);
/// Granularity of probe timers.
pub(crate) const PROBE_TICK: Duration = Duration::from_millis(5);
/// The allocation is redone when the estimate moved this much (relative) since the last.
const REALLOCATE_CHANGE: f64 = 0.1;
/// The share of the estimate the video allocation may use. The estimate covers everything
/// sent to the receiver as counted on the wire (RTP headers and extensions, SRTP tags, audio,
/// RTCP, retransmissions, probes), while the layers' bitrates count video payload only,
/// averaged over key frames: allocating the whole estimate to them fills the link (behind
/// 2 Mbit/s, an estimate of 0.95 × that would take a 1.5 Mbit/s 720p layer whose headers,
/// audio and key frames then keep the bottleneck queue growing).
const ALLOCATION_SHARE: f64 = 0.9;

/// A packet waiting in the pacer.
#[derive(Debug)]
pub(crate) struct PacedPacket {
    pub(crate) packet: Vec<u8>,
    pub(crate) rtp: bool,
    /// The transport-wide sequence number written into it.
    pub(crate) transport_seq: Option<u16>,
    pub(crate) probe_cluster: Option<u32>,
}

/// The downlink state of one receiver.
#[derive(Debug)]
pub(crate) struct ReceiverBandwidth {
    history: TwccSendHistory,
    estimator: BandwidthEstimator,
    probes: ProbeController,
    prober: ProbeSender,
    probe_results: ProbeResultEstimator,
    pub(crate) pacer: Pacer<PacedPacket>,
    results: Vec<PacketResult>,
    /// The estimate the last allocation used.
    allocated_with: Option<u64>,
    pub(crate) next_stats: Instant,
}

impl ReceiverBandwidth {
    pub(crate) fn new(now: Instant, config: BweConfig) -> Self {
        let estimator = BandwidthEstimator::new(config, now);
        let mut pacer = Pacer::new(PacerConfig::default());
        pacer.set_rate(estimator.estimate_bps());
        Self {
            history: TwccSendHistory::new(),
            probes: ProbeController::with_config(now, config),
            prober: ProbeSender::new(),
            probe_results: ProbeResultEstimator::new(),
            pacer,
            estimator,
            results: Vec::new(),
            allocated_with: None,
            next_stats: now + CONNECTION_STATS_INTERVAL,
        }
    }

    /// The current estimate, bits per second.
    pub(crate) fn estimate_bps(&self) -> u64 {
        self.estimator.estimate_bps()
    }

    /// Records a packet leaving the pacer (for the feedback to come). An RTP packet leaving
    /// while a probe cluster is being sent is part of the cluster (see
    /// [`ProbeSender::on_media_sent`]).
    pub(crate) fn on_sent(&mut self, now: Instant, packet: &PacedPacket) {
        let probe_cluster = match (packet.probe_cluster, packet.transport_seq) {
            (None, Some(_)) => self
                .prober
                .on_media_sent(now, packet.packet.len() + SRTP_OVERHEAD),
            (cluster, _) => cluster,
        };
        self.on_sent_packet(
            now,
            packet.transport_seq,
            packet.packet.len(),
            probe_cluster,
        );
    }

    /// Records a packet of `len` bytes (before SRTP) leaving.
    pub(crate) fn on_sent_packet(
        &mut self,
        now: Instant,
        transport_seq: Option<u16>,
        len: usize,
        probe_cluster: Option<u32>,
    ) {
        if let Some(seq) = transport_seq {
            self.history
                .on_sent(now, seq, len + SRTP_OVERHEAD, probe_cluster);
        }
    }

    /// A TWCC feedback packet from the receiver; returns whether the estimate moved enough
    /// to redo the allocation.
    pub(crate) fn on_feedback(&mut self, now: Instant, packet: &[u8]) -> bool {
        self.results.clear();
        if self
            .history
            .on_rtcp(now, packet, &mut self.results)
            .is_err()
        {
            return false;
        }
        self.estimator.on_feedback(now, &self.results);
        if let Some((_, bps)) = self.probe_results.on_results(&self.results) {
            self.estimator.on_probe_result(now, bps);
        }
        if self.estimator.is_overusing() {
            self.probes.on_overuse(now);
        }
        let estimate = self.estimator.estimate_bps();
        self.probes.on_estimate(now, estimate);
        // Bursts leave no faster than a probe found the path to carry (a narrow link behind
        // a shaper); a probe the path kept up with bounds nothing.
        self.pacer
            .set_rate_bounded(estimate, self.probe_results.path_limit_bps());
        match self.allocated_with {
            None => true,
            Some(before) => {
                (estimate as f64 - before as f64).abs() > before as f64 * REALLOCATE_CHANGE
            }
        }
    }

    /// The bandwidth the allocation may use ([`ALLOCATION_SHARE`] of the estimate),
    /// remembering the estimate for the hysteresis above.
    pub(crate) fn allocation_bps(&mut self) -> u64 {
        let estimate = self.estimator.estimate_bps();
        self.allocated_with = Some(estimate);
        (estimate as f64 * ALLOCATION_SHARE) as u64
    }

    /// The allocation would use `wanted_bps` of video with more bandwidth: probe toward the
    /// estimate that would allow it.
    pub(crate) fn want(&mut self, now: Instant, wanted_bps: u64) {
        let wanted = (wanted_bps as f64 / ALLOCATION_SHARE) as u64;
        if wanted > self.estimator.estimate_bps() {
            self.probes.request_headroom(now, wanted);
        }
    }

    /// Probe bytes due now: `(cluster, bytes)` to send as padding.
    pub(crate) fn poll_probe(&mut self, now: Instant) -> Option<(u32, usize)> {
        while let Some(cluster) = self.probes.poll_cluster(now) {
            self.probe_results.add_cluster(&cluster);
            self.prober.add_cluster(now, cluster);
        }
        self.prober
            .poll_send(now)
            .map(|send| (send.cluster, send.bytes))
    }

    /// Whether a probe cluster is due or being sent at `now` (so [`Self::poll_probe`] may
    /// have something): lets the caller skip looking for a stream to pad on otherwise.
    pub(crate) fn probe_due(&self, now: Instant) -> bool {
        [self.probes.poll_timeout(), self.prober.poll_timeout()]
            .into_iter()
            .flatten()
            .any(|t| t <= now)
    }

    /// When the pacer or the probing want to run. Probing may have to wait for a stream to
    /// pad on, so its timers are looked at no more often than every [`PROBE_TICK`].
    pub(crate) fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        let probing = [self.probes.poll_timeout(), self.prober.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t.max(now + PROBE_TICK));
        [probing, self.pacer.poll_timeout(now)]
            .into_iter()
            .flatten()
            .min()
    }
}

/// The pacer class of a packet.
pub(crate) fn class(audio: bool, retransmission: bool) -> PacketClass {
    match (audio, retransmission) {
        (true, _) => PacketClass::Audio,
        (false, true) => PacketClass::Retransmission,
        (false, false) => PacketClass::Video,
    }
}
