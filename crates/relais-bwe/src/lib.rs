//! Bandwidth estimation for relais, sans-IO (time is passed in; nothing here does I/O).
//!
//! - [`twcc`]: transport-wide congestion control (draft-holmer-rmcat-transport-wide-cc-
//!   extensions-01): toward senders, the arrival record and the feedback the node sends;
//!   toward receivers, the send history and the reading of their feedback into
//!   [`PacketResult`]s.
//! - [`delay`], [`loss`], [`estimator`]: the estimate of one receiver's downlink from those
//!   results — delay-based (inter-arrival trendline, overuse detector, AIMD rate control as in
//!   draft-ietf-rmcat-gcc-02) combined with a loss-based controller.
//! - [`probe`]: probe clusters that look for headroom before layers go up, and the rate a
//!   cluster's feedback shows.
//! - [`pacer`]: each receiver's egress spread at a multiple of its estimate, no faster than
//!   the path was last probed to carry; audio bypasses the queue.
//!
//! The split follows str0m's `bwe` module: each part is a small state machine with its own
//! tests; [`estimator::BandwidthEstimator`] combines them for one receiver.

use std::time::Instant;

pub mod delay;
pub mod estimator;
pub mod loss;
pub mod pacer;
pub mod probe;
pub mod twcc;

/// What the receiver's feedback says about one packet the node sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketResult {
    /// The node's transport-wide sequence number of the packet, unwrapped (64 bits).
    pub transport_seq: u64,
    /// Bytes on the wire (the RTP packet with its SRTP tag; UDP/IP overhead not included).
    pub size: usize,
    /// When the node sent it.
    pub sent: Instant,
    /// When the receiver got it (in the receiver's clock, shifted to ours by the feedback's
    /// reference time: only differences between arrivals are meaningful); `None`: lost.
    pub arrival: Option<Instant>,
    /// The probe cluster the packet belonged to, if any.
    pub probe_cluster: Option<u32>,
}

/// Rates the estimate stays within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BweConfig {
    /// The estimate before any feedback.
    pub initial_bps: u64,
    /// The estimate never goes below this.
    pub min_bps: u64,
    /// The estimate never goes above this.
    pub max_bps: u64,
}

impl Default for BweConfig {
    fn default() -> Self {
        Self {
            initial_bps: 1_000_000,
            min_bps: 50_000,
            max_bps: 50_000_000,
        }
    }
}
