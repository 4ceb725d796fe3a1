//! The participant's own send-side bandwidth estimate, as a browser's transport controller
//! keeps one: every packet it sends with a transport-wide sequence number is remembered
//! (send time, size, probe cluster), the node's transport-cc feedback about those packets
//! drives the workspace's GCC-style estimator (`relais_bwe`, the one the node runs toward
//! its receivers), and the node's REMB caps the result. Effective target = min(TWCC
//! estimate, latest REMB), as libwebrtc's send-side controller combines them.
//!
//! With probing on ([`SendEstimateConfig::probe_padding`]) it also probes as libwebrtc
//! does, with `relais_bwe::probe`: clusters at 3× and 6× the start rate once connected,
//! further ones while results keep up, and toward the rate the sender would like to use
//! ([`SendEstimate::request_bitrate`]) — at once when that rises, every 5 s while the
//! estimate stays far below it. Without probes an estimate can only grow as far as what the
//! sender already sends shows, so a camera that dropped a layer would never get it back.
//! The participant sends the probe bytes as padding-only RTP packets.
//!
//! Sans-IO: time is passed in. Recording a sent packet is a ring-buffer write (no
//! allocation once the history has grown to its working size); the estimator runs once per
//! feedback packet.

use std::time::{Duration, Instant};

use relais_bwe::estimator::BandwidthEstimator;
use relais_bwe::probe::{
    ProbeCluster, ProbeController, ProbeResultEstimator, ProbeSend, ProbeSender,
    MIN_PROBE_DURATION, MIN_PROBE_PACKETS,
};
use relais_bwe::twcc::TwccSendHistory;
use relais_bwe::{BweConfig, PacketResult};
use relais_rtp::rtcp::packets::TransportLayerCc;

/// Where probe padding goes: an RTP stream of its own (the node records the packets'
/// transport-wide numbers, then drops them as an unknown stream). A browser pads on its RTX
/// stream; here the retransmissions own those sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbePadding {
    /// The padding stream's SSRC.
    pub ssrc: u32,
    /// Its payload type.
    pub payload_type: u8,
}

/// How a participant estimates its uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendEstimateConfig {
    /// The estimate's start and bounds (libwebrtc starts at 300 kbit/s).
    pub bwe: BweConfig,
    /// Probe with padding on this stream; `None`: no probing.
    pub probe_padding: Option<ProbePadding>,
}

/// What the participant currently estimates it may send (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendEstimateUpdate {
    /// The effective target (bit/s): the lower of the TWCC estimate and the latest REMB.
    pub target_bps: u64,
    /// The TWCC-based estimate alone (bit/s); its initial value until feedback arrived.
    pub twcc_bps: u64,
    /// The latest REMB (bit/s), if the node sent one.
    pub remb_bps: Option<u64>,
}

/// The three probing parts of `relais_bwe::probe`.
#[derive(Debug)]
struct Probing {
    controller: ProbeController,
    sender: ProbeSender,
    results: ProbeResultEstimator,
}

/// One participant's send-side estimate. See the [module documentation](self).
#[derive(Debug)]
pub struct SendEstimate {
    history: TwccSendHistory,
    estimator: BandwidthEstimator,
    probing: Option<Probing>,
    probe_padding: Option<ProbePadding>,
    remb_bps: Option<u64>,
    /// Reused for every feedback's results.
    results: Vec<PacketResult>,
}

impl SendEstimate {
    /// An estimate starting at `config.bwe.initial_bps` at `now`; with probing, the first
    /// clusters are due at once.
    pub fn new(config: SendEstimateConfig, now: Instant) -> Self {
        Self {
            history: TwccSendHistory::new(),
            estimator: BandwidthEstimator::new(config.bwe, now),
            probing: config.probe_padding.map(|_| Probing {
                controller: ProbeController::with_config(now, config.bwe),
                sender: ProbeSender::new(),
                results: ProbeResultEstimator::new(),
            }),
            probe_padding: config.probe_padding,
            remb_bps: None,
            results: Vec::with_capacity(256),
        }
    }

    /// Where probe padding goes, when probing.
    pub fn probe_padding(&self) -> Option<ProbePadding> {
        self.probe_padding
    }

    /// A media packet with transport-wide sequence number `transport_seq`, `size` bytes on
    /// the wire (RTP with its SRTP tag), left at `now`. While a probe cluster is being sent
    /// the packet counts toward it, as libwebrtc's pacer sends media as part of a probe.
    pub fn on_sent(&mut self, now: Instant, transport_seq: u16, size: usize) {
        let cluster = self
            .probing
            .as_mut()
            .and_then(|p| p.sender.on_media_sent(now, size));
        self.history.on_sent(now, transport_seq, size, cluster);
    }

    /// The next probe bytes due at `now` (call until `None`), for the participant to send as
    /// padding and report with [`on_probe_sent`](Self::on_probe_sent).
    pub fn poll_probe(&mut self, now: Instant) -> Option<ProbeSend> {
        let probing = self.probing.as_mut()?;
        while let Some(cluster) = probing.controller.poll_cluster(now) {
            let cluster = browser_sized(cluster);
            probing.results.add_cluster(&cluster);
            probing.sender.add_cluster(now, cluster);
        }
        probing.sender.poll_send(now)
    }

    /// A probe padding packet of `cluster` left at `now`.
    pub fn on_probe_sent(&mut self, now: Instant, transport_seq: u16, size: usize, cluster: u32) {
        self.history
            .on_sent(now, transport_seq, size, Some(cluster));
    }

    /// When [`poll_probe`](Self::poll_probe) may have something next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let probing = self.probing.as_ref()?;
        match (
            probing.controller.poll_timeout(),
            probing.sender.poll_timeout(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The sender would use `wanted_bps` (e.g. to turn its next layer on): probe toward it
    /// when it is above the estimate.
    pub fn request_bitrate(&mut self, now: Instant, wanted_bps: u64) {
        if let Some(probing) = self.probing.as_mut() {
            probing.controller.request_headroom(now, wanted_bps);
        }
    }

    /// Reads the node's transport-cc feedback about the participant's packets.
    pub fn on_feedback(&mut self, now: Instant, feedback: &TransportLayerCc) {
        self.results.clear();
        if self.history.on_feedback(now, feedback, &mut self.results) == 0 {
            return;
        }
        self.estimator.on_feedback(now, &self.results);
        let Some(probing) = self.probing.as_mut() else {
            return;
        };
        if let Some((_, bps)) = probing.results.on_results(&self.results) {
            self.estimator.on_probe_result(now, bps);
        }
        if self.estimator.is_overusing() {
            probing.controller.on_overuse(now);
        }
        probing
            .controller
            .on_estimate(now, self.estimator.estimate_bps());
    }

    /// The node's latest REMB.
    pub fn on_remb(&mut self, bitrate_bps: u64) {
        self.remb_bps = Some(bitrate_bps);
    }

    /// A round-trip time measured from the node's receiver reports.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.estimator.set_rtt(rtt);
    }

    /// The estimate now.
    pub fn current(&self) -> SendEstimateUpdate {
        let twcc_bps = self.estimator.estimate_bps();
        SendEstimateUpdate {
            target_bps: self.remb_bps.map_or(twcc_bps, |remb| remb.min(twcc_bps)),
            twcc_bps,
            remb_bps: self.remb_bps,
        }
    }
}

/// `cluster` as libwebrtc sizes it: [`MIN_PROBE_DURATION`] at its rate (and at least
/// [`MIN_PROBE_PACKETS`] packets), without the node's floor of
/// [`relais_bwe::probe::MIN_PROBE_BYTES`]. That floor is for the node's egress toward links
/// with a burst allowance; on a sender's uplink with a short drop-tail queue (50 ms at
/// 600 kbit/s holds under 4 kB) a 10 kB burst at twice the estimate loses media packets at
/// every probe.
fn browser_sized(mut cluster: ProbeCluster) -> ProbeCluster {
    let bytes = u128::from(cluster.target_bps) * MIN_PROBE_DURATION.as_nanos() / 8_000_000_000;
    cluster.min_bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
    cluster.min_packets = cluster.min_packets.max(MIN_PROBE_PACKETS);
    cluster.duration = MIN_PROBE_DURATION;
    cluster
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remb_below_the_twcc_estimate_is_the_target() {
        let t0 = Instant::now();
        let config = SendEstimateConfig {
            bwe: BweConfig {
                initial_bps: 2_000_000,
                ..BweConfig::default()
            },
            probe_padding: None,
        };
        let mut estimate = SendEstimate::new(config, t0);
        assert_eq!(estimate.current().target_bps, 2_000_000);
        assert_eq!(estimate.current().remb_bps, None);
        estimate.on_remb(700_000);
        let now = estimate.current();
        assert_eq!(now.target_bps, 700_000);
        assert_eq!(now.twcc_bps, 2_000_000);
        assert_eq!(now.remb_bps, Some(700_000));
        estimate.on_remb(3_000_000);
        assert_eq!(estimate.current().target_bps, 2_000_000);
    }
}
