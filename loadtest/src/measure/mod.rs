//! What receivers observe, and whether that is a pass.
//!
//! This module owns every number the load tester reports about the media it gets back from
//! the node. It is sans-IO: callers feed it the clear RTP header facts of each arriving packet
//! with the time of arrival (a [`Duration`](std::time::Duration) since the start of the run),
//! and read counters, histograms and reports back. No clock, socket or thread lives here.
//!
//! - [`ReceivedStream`]: one received SSRC at one receiver — sequence unwrapping, loss and
//!   recovery, latency samples, frames and freezes, layer switches and time per keyframe
//!   height (against the height the receiver's view asks for, [`HeightView`]), counters.
//! - [`ReceiverMeasurements`]: every stream of one receiver, its latency histogram and its
//!   [`TimeSeries`]; [`ReceiverReport`] is its serialisable summary.
//! - [`RunMeasurements`]: every receiver of a run, merged, and the input to [`evaluate`], which
//!   checks the scenario's `[pass]` criteria.
//! - [`NtpEpoch`]: abs-capture-time (NTP 32.32) to and from run time.
//! - [`process`]: parsing `/proc/<pid>/stat`, `/proc/<pid>/status` and Prometheus text that the
//!   caller has read, to put the node's CPU and memory cost next to the traffic.

mod latency;
mod pass;
pub mod process;
mod receiver;
mod run;
mod sequence;
mod series;
mod stream;

pub use latency::{LatencyHistogram, LatencySummary, NtpEpoch};
pub use pass::{evaluate, Bound, CriterionResult, LossyCriteria};
pub use process::{
    cpu_per_packet, parse_stat_cpu, parse_status_rss_bytes, prometheus_counter_sum, ProcParseError,
    ProcessSample,
};
pub use receiver::{
    ExpectedStreams, HeightView, ReceiverMeasurements, ReceiverReport, VIEW_HEIGHT_OK_PCT,
};
pub use run::RunMeasurements;
pub use sequence::SEQUENCE_WINDOW;
pub use series::{TimeBucket, TimeSeries};
pub use stream::{
    Disposition, LayerSwitch, MeasureConfig, PacketOutcome, ReceivedPacket, ReceivedStream,
    StreamKind, StreamStats, SWITCH_GRACE,
};
