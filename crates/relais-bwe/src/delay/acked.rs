//! The acknowledged bitrate: bytes the receiver got over a sliding window of arrival times.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The window the rate is measured over.
pub(crate) const ACKED_WINDOW: Duration = Duration::from_millis(500);
/// No rate until the arrivals in the window span at least this.
const MIN_SPAN: Duration = Duration::from_millis(100);

/// Received bytes over the last [`ACKED_WINDOW`] of arrival times.
#[derive(Debug, Default)]
pub(crate) struct AckedBitrate {
    /// (arrival, bytes), in the order received (arrival order within a feedback).
    packets: VecDeque<(Instant, usize)>,
    bytes: usize,
    newest: Option<Instant>,
}

impl AckedBitrate {
    /// Records one received packet.
    pub(crate) fn on_packet(&mut self, arrival: Instant, size: usize) {
        let newest = match self.newest {
            Some(n) if n >= arrival => {
                if n.saturating_duration_since(arrival) > ACKED_WINDOW {
                    // Too old to matter.
                    return;
                }
                n
            }
            _ => arrival,
        };
        self.newest = Some(newest);
        self.packets.push_back((arrival, size));
        self.bytes = self.bytes.saturating_add(size);
        while let Some(&(t, s)) = self.packets.front() {
            if newest.saturating_duration_since(t) > ACKED_WINDOW {
                self.packets.pop_front();
                self.bytes = self.bytes.saturating_sub(s);
            } else {
                break;
            }
        }
    }

    /// The rate (bit/s): bytes after the window's first packet over the span of arrivals.
    pub(crate) fn bitrate_bps(&self) -> Option<f64> {
        let (&(first, first_size), newest) = (self.packets.front()?, self.newest?);
        let span = newest.saturating_duration_since(first);
        if span < MIN_SPAN {
            return None;
        }
        let bytes = self.bytes.saturating_sub(first_size);
        Some(bytes as f64 * 8.0 / span.as_secs_f64())
    }
}
