//! Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-
//! extensions-01): RTPFB (PT 205) with FMT 15.
//!
//! - [`TwccRecorder`], toward a sending endpoint: records when its packets arrive (by their
//!   transport-wide sequence number) and builds the feedback the node sends back.
//! - [`TwccSendHistory`], toward a receiving endpoint: remembers what the node sent and turns
//!   that endpoint's feedback into [`PacketResult`](crate::PacketResult)s.
//!
//! Wire facts both sides rely on (as libwebrtc's `TransportFeedback` encodes them):
//! - the reference time is the arrival of the first received packet of the feedback, rounded
//!   down to 64 ms, in 24 bits (it wraps after about 12.4 days);
//! - each received packet carries a receive delta in 250 µs units from the previous received
//!   packet of the feedback (the first from the reference time): one unsigned byte for
//!   0..=63.75 ms ("small"), a signed 16-bit value otherwise ("large", ±8.19 s);
//! - a delta that fits neither ends the feedback packet; the next one starts at that packet
//!   with its own reference time;
//! - the feedback packet count increments (mod 256) with every feedback packet sent.

mod chunks;
mod history;
mod recorder;

pub use history::{TwccSendHistory, SEND_HISTORY_CAPACITY, SEND_HISTORY_MAX_AGE};
pub use recorder::{
    TwccRecorder, DEFAULT_FEEDBACK_INTERVAL, MAX_FEEDBACK_SIZE, RECORDER_MAX_SPAN,
    RECORDER_REREPORT_SPAN,
};

use relais_rtp::rtcp::RtcpError;

/// Length of one receive delta tick.
pub const DELTA_TICK_US: i64 = 250;

/// Length of one reference time unit.
pub const REFERENCE_TIME_UNIT_US: i64 = 64_000;

/// Receive delta ticks per reference time unit.
const TICKS_PER_REFERENCE: i64 = REFERENCE_TIME_UNIT_US / DELTA_TICK_US;

/// The reference time field's width.
const REFERENCE_TIME_BITS: u32 = 24;

/// Why TWCC feedback could not be read or built.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum TwccError {
    /// The RTCP did not parse or encode.
    #[error("TWCC feedback: {0}")]
    Rtcp(#[from] RtcpError),
}
