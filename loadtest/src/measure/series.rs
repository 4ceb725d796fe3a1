//! Counters over time in fixed buckets (e.g. one second), for plots of a run.

use std::time::Duration;

use serde::Serialize;

use super::stream::{Disposition, PacketOutcome};

/// Buckets a series grows to at most: one day of one-second buckets. Arrivals later than that
/// land in the last bucket, so a wrong clock cannot make the series allocate without bound.
const MAX_BUCKETS: usize = 86_400;

/// Traffic in one bucket of a [`TimeSeries`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TimeBucket {
    /// Packets arrived.
    pub packets: u64,
    /// Payload bytes arrived.
    pub bytes: u64,
    /// Sequence numbers detected missing in this bucket.
    pub gaps: u64,
    /// Missing first transmissions that arrived late in this bucket (their gap was no loss).
    pub late_fills: u64,
    /// Gaps filled by a retransmission in this bucket.
    pub recovered: u64,
}

impl TimeBucket {
    /// Gaps minus late fills: the loss attributed to this bucket.
    pub fn lost(&self) -> u64 {
        self.gaps.saturating_sub(self.late_fills)
    }

    fn add(&mut self, other: &Self) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.gaps += other.gaps;
        self.late_fills += other.late_fills;
        self.recovered += other.recovered;
    }
}

/// Packets, bytes and loss per fixed time bucket since run start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeSeries {
    /// Bucket width.
    #[serde(
        serialize_with = "super::latency::serialize_duration_ms",
        rename = "bucket_ms"
    )]
    bucket: Duration,
    buckets: Vec<TimeBucket>,
}

impl TimeSeries {
    /// An empty series with buckets `bucket` wide (at least 1 ms).
    pub fn new(bucket: Duration) -> Self {
        Self {
            bucket: bucket.max(Duration::from_millis(1)),
            buckets: Vec::new(),
        }
    }

    /// Bucket width.
    pub fn bucket_width(&self) -> Duration {
        self.bucket
    }

    /// The buckets, from run start; the last one is the latest that saw traffic.
    pub fn buckets(&self) -> &[TimeBucket] {
        &self.buckets
    }

    /// Accounts one packet of `payload_len` bytes arriving at `arrival` with `outcome`.
    pub fn record(&mut self, arrival: Duration, payload_len: usize, outcome: &PacketOutcome) {
        let Some(bucket) = self.bucket_mut(arrival) else {
            return;
        };
        bucket.packets += 1;
        bucket.bytes += payload_len as u64;
        bucket.gaps += outcome.new_gaps;
        match outcome.disposition {
            Disposition::Reordered => bucket.late_fills += 1,
            Disposition::Recovered { .. } => bucket.recovered += 1,
            Disposition::InOrder | Disposition::Duplicate | Disposition::TooLate => {}
        }
    }

    /// Adds `other` bucket by bucket (bucket widths should match; `other`'s buckets are placed
    /// by their start time otherwise).
    pub fn add(&mut self, other: &Self) {
        for (index, theirs) in other.buckets.iter().enumerate() {
            let start = other
                .bucket
                .saturating_mul(u32::try_from(index).unwrap_or(u32::MAX));
            if let Some(mine) = self.bucket_mut(start) {
                mine.add(theirs);
            }
        }
    }

    /// Packets per second in each bucket.
    pub fn packets_per_second(&self) -> impl Iterator<Item = f64> + '_ {
        let seconds = self.bucket.as_secs_f64();
        self.buckets.iter().map(move |b| b.packets as f64 / seconds)
    }

    /// Bits per second in each bucket.
    pub fn bits_per_second(&self) -> impl Iterator<Item = f64> + '_ {
        let seconds = self.bucket.as_secs_f64();
        self.buckets
            .iter()
            .map(move |b| b.bytes as f64 * 8.0 / seconds)
    }

    fn bucket_mut(&mut self, at: Duration) -> Option<&mut TimeBucket> {
        let index = (at.as_nanos() / self.bucket.as_nanos()).min(MAX_BUCKETS as u128 - 1) as usize;
        if index >= self.buckets.len() {
            // Grows about once per bucket width, not per packet.
            self.buckets.resize(index + 1, TimeBucket::default());
        }
        self.buckets.get_mut(index)
    }
}
