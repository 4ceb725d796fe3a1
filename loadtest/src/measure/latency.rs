//! Latency: the HDR histogram that holds the samples, its summary, and the conversion
//! between abs-capture-time (NTP 32.32) and time since the start of the run.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::{Serialize, Serializer};

/// Highest latency the histogram resolves, µs; larger samples are recorded as this. A minute
/// is far beyond any latency worth distinguishing.
const HIGHEST_TRACKABLE_US: u64 = 60_000_000;
/// Three significant digits: 0.1 % resolution at any magnitude, ~140 KiB per histogram.
const SIGNIFICANT_DIGITS: u8 = 3;

/// Latency samples in microseconds, in bounded memory.
///
/// One per receiver (not per stream: a receiver has hundreds of streams); merged across
/// receivers with [`LatencyHistogram::add`].
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    /// `None` only if the histogram crate rejected the constant bounds, which cannot happen
    /// with the values above; samples are then counted but not binned, rather than panicking.
    histogram: Option<Histogram<u64>>,
    samples: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram from 1 µs to 60 s at three significant digits.
    pub fn new() -> Self {
        Self {
            histogram: Histogram::new_with_bounds(1, HIGHEST_TRACKABLE_US, SIGNIFICANT_DIGITS).ok(),
            samples: 0,
        }
    }

    /// Records one sample (saturating at 60 s).
    pub fn record(&mut self, latency: Duration) {
        self.samples += 1;
        if let Some(histogram) = &mut self.histogram {
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            histogram.saturating_record(micros);
        }
    }

    /// Adds every sample of `other`.
    pub fn add(&mut self, other: &Self) {
        self.samples += other.samples;
        if let (Some(mine), Some(theirs)) = (&mut self.histogram, &other.histogram) {
            // Same bounds on both sides, so `add` cannot fail; if it did, re-record value by
            // value, saturating, rather than lose the samples.
            if mine.add(theirs).is_err() {
                for value in theirs.iter_recorded() {
                    mine.saturating_record_n(value.value_iterated_to(), value.count_at_value());
                }
            }
        }
    }

    /// Samples recorded.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The value at `quantile` (0.0..=1.0), µs; 0 when empty.
    pub fn quantile_us(&self, quantile: f64) -> u64 {
        self.histogram
            .as_ref()
            .map_or(0, |h| h.value_at_quantile(quantile))
    }

    /// Largest sample, µs (to histogram resolution); 0 when empty.
    pub fn max_us(&self) -> u64 {
        self.histogram.as_ref().map_or(0, Histogram::max)
    }

    /// p50, p90, p99 and max.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            samples: self.samples,
            p50_us: self.quantile_us(0.50),
            p90_us: self.quantile_us(0.90),
            p99_us: self.quantile_us(0.99),
            max_us: self.max_us(),
        }
    }
}

impl Serialize for LatencyHistogram {
    /// Serialises as its [`LatencySummary`]: the report wants percentiles, not bins.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.summary().serialize(serializer)
    }
}

/// Percentiles of a [`LatencyHistogram`], µs (each value is the highest value equivalent to
/// the sample at that rank, within 0.1 %).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LatencySummary {
    /// Samples recorded.
    pub samples: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest.
    pub max_us: u64,
}

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// The NTP time (32.32 fixed point, as abs-capture-time carries it) at which a run started:
/// converts between NTP timestamps and [`Duration`]s since that start.
///
/// Conversions round to the nearest unit both ways, so a `Duration` survives a round trip
/// through NTP exactly (one NTP unit is ~0.23 ns). NTP era rollover (2036) is handled: the
/// difference is taken modulo 2^64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NtpEpoch {
    ntp: u64,
}

impl NtpEpoch {
    /// The epoch at NTP timestamp `ntp`.
    pub const fn from_ntp(ntp: u64) -> Self {
        Self { ntp }
    }

    /// The epoch at wall-clock time `time`; `None` before 1900.
    pub fn from_system_time(time: SystemTime) -> Option<Self> {
        let ntp_offset = Duration::from_secs(NTP_UNIX_OFFSET_SECS);
        let since_1900 = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => after.checked_add(ntp_offset)?,
            Err(before) => ntp_offset.checked_sub(before.duration())?,
        };
        Some(Self {
            ntp: duration_to_q32(since_1900),
        })
    }

    /// The epoch as an NTP timestamp.
    pub const fn ntp(&self) -> u64 {
        self.ntp
    }

    /// The NTP timestamp `since_epoch` after the epoch.
    pub fn to_ntp(&self, since_epoch: Duration) -> u64 {
        self.ntp.wrapping_add(duration_to_q32(since_epoch))
    }

    /// Time from the epoch to NTP timestamp `ntp`; `None` if `ntp` is before the epoch.
    pub fn since_epoch(&self, ntp: u64) -> Option<Duration> {
        let delta = ntp.wrapping_sub(self.ntp);
        // More than half the space ahead means behind, across rollover.
        if delta > u64::MAX / 2 {
            return None;
        }
        Some(q32_to_duration(delta))
    }
}

/// `duration` as 32.32 fixed-point seconds (seconds beyond 2^32 wrap, as NTP does).
fn duration_to_q32(duration: Duration) -> u64 {
    let fraction = ((u64::from(duration.subsec_nanos()) << 32) + NANOS_PER_SEC / 2) / NANOS_PER_SEC;
    (duration.as_secs() << 32).wrapping_add(fraction)
}

/// 32.32 fixed-point seconds as a `Duration`.
fn q32_to_duration(q32: u64) -> Duration {
    let seconds = q32 >> 32;
    let nanos = ((q32 & 0xFFFF_FFFF) * NANOS_PER_SEC + (1 << 31)) >> 32;
    Duration::from_secs(seconds) + Duration::from_nanos(nanos)
}

/// Serialises a `Duration` as milliseconds (floating point), the unit of the report.
pub(crate) fn serialize_duration_ms<S: Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64() * 1000.0)
}
