//! The participant's own send-side bandwidth estimate, as a browser's transport controller
//! keeps one: every packet it sends with a transport-wide sequence number is remembered
//! (send time and size), the node's transport-cc feedback about those packets drives the
//! workspace's GCC-style estimator (`relais_bwe`, the one the node runs toward its
//! receivers), and the node's REMB caps the result. Effective target = min(TWCC estimate,
//! latest REMB), as libwebrtc's send-side controller combines them.
//!
//! Sans-IO: time is passed in. Recording a sent packet is a ring-buffer write (no
//! allocation once the history has grown to its working size); the estimator runs once per
//! feedback packet.

use std::time::{Duration, Instant};

use relais_bwe::estimator::BandwidthEstimator;
use relais_bwe::twcc::TwccSendHistory;
use relais_bwe::{BweConfig, PacketResult};
use relais_rtp::rtcp::packets::TransportLayerCc;

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

/// One participant's send-side estimate. See the [module documentation](self).
#[derive(Debug)]
pub struct SendEstimate {
    history: TwccSendHistory,
    estimator: BandwidthEstimator,
    remb_bps: Option<u64>,
    /// Reused for every feedback's results.
    results: Vec<PacketResult>,
}

impl SendEstimate {
    /// An estimate starting at `config.initial_bps` at `now`.
    pub fn new(config: BweConfig, now: Instant) -> Self {
        Self {
            history: TwccSendHistory::new(),
            estimator: BandwidthEstimator::new(config, now),
            remb_bps: None,
            results: Vec::with_capacity(256),
        }
    }

    /// The packet with transport-wide sequence number `transport_seq`, `size` bytes on the
    /// wire (RTP with its SRTP tag), left at `now`.
    pub fn on_sent(&mut self, now: Instant, transport_seq: u16, size: usize) {
        self.history.on_sent(now, transport_seq, size, None);
    }

    /// Reads the node's transport-cc feedback about the participant's packets.
    pub fn on_feedback(&mut self, now: Instant, feedback: &TransportLayerCc) {
        self.results.clear();
        if self.history.on_feedback(now, feedback, &mut self.results) > 0 {
            self.estimator.on_feedback(now, &self.results);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remb_below_the_twcc_estimate_is_the_target() {
        let t0 = Instant::now();
        let config = BweConfig {
            initial_bps: 2_000_000,
            ..BweConfig::default()
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
