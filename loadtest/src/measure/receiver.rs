//! One receiver: all its streams, its latency histogram and its time series, and the report
//! that summarises them.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use super::latency::{LatencyHistogram, LatencySummary};
use super::series::TimeSeries;
use super::stream::{
    MeasureConfig, PacketOutcome, ReceivedPacket, ReceivedStream, StreamKind, StreamStats,
};

/// How many streams a receiver's view asks for (from the scenario's `[view]` and the senders
/// present): the receiver passes when it got at least that many.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExpectedStreams {
    /// Video streams (sources) allocated to it.
    pub video: u32,
    /// Audio streams it should hear.
    pub audio: u32,
}

/// Everything one receiver observed.
#[derive(Debug, Clone)]
pub struct ReceiverMeasurements {
    config: MeasureConfig,
    streams: HashMap<u32, ReceivedStream>,
    latency: LatencyHistogram,
    series: TimeSeries,
}

impl ReceiverMeasurements {
    /// A receiver with no streams yet; `bucket` is the width of its time series.
    pub fn new(config: MeasureConfig, bucket: Duration) -> Self {
        Self {
            config,
            streams: HashMap::new(),
            latency: LatencyHistogram::new(),
            series: TimeSeries::new(bucket),
        }
    }

    /// Accounts one packet of stream `ssrc`, creating the stream (as `kind`) on its first
    /// packet, recording its latency and its share of the time series.
    pub fn on_packet(
        &mut self,
        ssrc: u32,
        kind: StreamKind,
        packet: &ReceivedPacket,
    ) -> PacketOutcome {
        let config = self.config;
        let outcome = self
            .streams
            .entry(ssrc)
            .or_insert_with(|| ReceivedStream::new(kind, config))
            .on_packet(packet);
        if let Some(latency) = outcome.latency {
            self.latency.record(latency);
        }
        self.series
            .record(packet.arrival, packet.payload_len, &outcome);
        outcome
    }

    /// Ends every video stream at `end` (see [`ReceivedStream::finish`]).
    pub fn finish(&mut self, end: Duration) {
        for stream in self.streams.values_mut() {
            stream.finish(end);
        }
    }

    /// Pauses stream `ssrc` (see [`ReceivedStream::pause`]), if it exists.
    pub fn pause(&mut self, ssrc: u32) {
        if let Some(stream) = self.streams.get_mut(&ssrc) {
            stream.pause();
        }
    }

    /// The stream with SSRC `ssrc`, if any packet of it arrived.
    pub fn stream(&self, ssrc: u32) -> Option<&ReceivedStream> {
        self.streams.get(&ssrc)
    }

    /// Every stream by SSRC, in no particular order.
    pub fn streams(&self) -> impl Iterator<Item = (u32, &ReceivedStream)> + '_ {
        self.streams.iter().map(|(ssrc, stream)| (*ssrc, stream))
    }

    /// Latency of first transmissions across its streams.
    pub fn latency(&self) -> &LatencyHistogram {
        &self.latency
    }

    /// Traffic over time.
    pub fn series(&self) -> &TimeSeries {
        &self.series
    }

    /// Summarises this receiver, numbered `receiver`, against what its view asks for.
    pub fn report(&self, receiver: u32, expected: ExpectedStreams) -> ReceiverReport {
        let mut report = ReceiverReport {
            receiver,
            expected,
            latency: self.latency.summary(),
            ..ReceiverReport::default()
        };
        for stream in self.streams.values() {
            let stats = stream.stats();
            let live = stream.received_after_ramp_up();
            match stream.kind() {
                StreamKind::Audio => {
                    report.audio.add(&stats);
                    report.audio_streams_received += u32::from(live);
                }
                StreamKind::Video => {
                    report.video.add(&stats);
                    report.video_streams_received += u32::from(live);
                }
            }
        }
        report.got_every_stream = report.video_streams_received >= expected.video
            && report.audio_streams_received >= expected.audio;
        report
    }
}

/// A receiver's summary, as the JSON report shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReceiverReport {
    /// The receiver's number in the run.
    pub receiver: u32,
    /// Audio streams summed.
    pub audio: StreamStats,
    /// Video streams summed.
    pub video: StreamStats,
    /// Audio streams that delivered a packet after ramp-up.
    pub audio_streams_received: u32,
    /// Video streams that completed a frame after ramp-up.
    pub video_streams_received: u32,
    /// What its view asks for.
    pub expected: ExpectedStreams,
    /// Whether it got at least the expected number of each.
    pub got_every_stream: bool,
    /// Latency of first transmissions.
    pub latency: LatencySummary,
}

impl ReceiverReport {
    /// Audio and video together.
    pub fn total(&self) -> StreamStats {
        let mut total = self.audio;
        total.add(&self.video);
        total
    }
}
