//! A whole run: every receiver's report, totals, the merged latency histogram and time
//! series. This is what the pass criteria are evaluated on and what the JSON report holds.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::latency::LatencyHistogram;
use super::receiver::{ExpectedStreams, ReceiverMeasurements, ReceiverReport};
use super::series::TimeSeries;
use super::stream::{percent, StreamStats};

/// Measurements of every receiver of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunMeasurements {
    /// Every receiver's report, in the order added.
    pub receivers: Vec<ReceiverReport>,
    /// Audio over all receivers.
    pub audio: StreamStats,
    /// Video over all receivers.
    pub video: StreamStats,
    /// Latency over all receivers (serialised as its summary).
    pub latency: LatencyHistogram,
    /// Traffic over time, all receivers.
    pub series: TimeSeries,
}

impl RunMeasurements {
    /// No receivers yet; `bucket` is the width of the merged time series.
    pub fn new(bucket: Duration) -> Self {
        Self {
            receivers: Vec::new(),
            audio: StreamStats::default(),
            video: StreamStats::default(),
            latency: LatencyHistogram::new(),
            series: TimeSeries::new(bucket),
        }
    }

    /// Adds receiver number `receiver` and what its view asked for.
    pub fn add_receiver(
        &mut self,
        receiver: u32,
        measurements: &ReceiverMeasurements,
        expected: ExpectedStreams,
    ) {
        let report = measurements.report(receiver, expected);
        self.audio.add(&report.audio);
        self.video.add(&report.video);
        self.latency.add(measurements.latency());
        self.series.add(measurements.series());
        self.receivers.push(report);
    }

    /// Audio and video together.
    pub fn total(&self) -> StreamStats {
        let mut total = self.audio;
        total.add(&self.video);
        total
    }

    /// Whether each receiver got every stream its view asks for, in the order added.
    pub fn streams_received(&self) -> impl Iterator<Item = bool> + '_ {
        self.receivers.iter().map(|r| r.got_every_stream)
    }

    /// Share of receivers that got every stream, percent (0 without receivers).
    pub fn streams_received_pct(&self) -> f64 {
        let got = self.streams_received().filter(|got| *got).count();
        percent(got as u64, self.receivers.len() as u64)
    }

    /// The highest raw loss of any receiver, percent.
    pub fn worst_loss_pct(&self) -> f64 {
        self.worst(|total| total.loss_pct())
    }

    /// The highest residual loss of any receiver, percent.
    pub fn worst_residual_loss_pct(&self) -> f64 {
        self.worst(|total| total.residual_loss_pct())
    }

    /// Time video streams showed each keyframe height after ramp-up, all receivers, ms.
    pub fn time_at_height_ms(&self) -> BTreeMap<u32, f64> {
        let mut total = BTreeMap::new();
        for receiver in &self.receivers {
            for (&height, &ms) in &receiver.time_at_height_ms {
                *total.entry(height).or_default() += ms;
            }
        }
        total
    }

    /// How many receivers had their view heights measured, and how many of those got them
    /// (see [`ReceiverReport::got_view_heights`]).
    pub fn view_heights(&self) -> (u32, u32) {
        self.receivers
            .iter()
            .filter_map(|r| r.got_view_heights)
            .fold((0, 0), |(measured, got), ok| {
                (measured + 1, got + u32::from(ok))
            })
    }

    /// The longest freeze of any video stream.
    pub fn longest_freeze(&self) -> Duration {
        self.video.longest_freeze
    }

    fn worst(&self, metric: impl Fn(&StreamStats) -> f64) -> f64 {
        self.receivers
            .iter()
            .map(|r| metric(&r.total()))
            .fold(0.0, f64::max)
    }
}
