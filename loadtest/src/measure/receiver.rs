//! One receiver: all its streams, its latency histogram and its time series, and the report
//! that summarises them.

use std::collections::{BTreeMap, HashMap};
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

/// Share of the measured time a receiver's video streams must show the heights its view
/// asks for to count as having got them: a view change costs a keyframe round trip, so
/// 100 % is out of reach.
pub const VIEW_HEIGHT_OK_PCT: f64 = 90.0;

/// The heights a receiver's view asks for: its on-stage camera at one height, every other
/// camera at another (each already the height of the simulcast layer that fits the view's
/// limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeightView {
    /// The SSRC (as the receiver sees it) of the camera on stage, if any.
    pub on_stage: Option<u32>,
    /// The height asked of the camera on stage.
    pub on_stage_height: u32,
    /// The height asked of every other camera.
    pub other_height: u32,
}

impl HeightView {
    /// The height asked of the camera with SSRC `ssrc`.
    pub fn height_for(&self, ssrc: u32) -> u32 {
        if self.on_stage == Some(ssrc) {
            self.on_stage_height
        } else {
            self.other_height
        }
    }
}

/// Everything one receiver observed.
#[derive(Debug, Clone)]
pub struct ReceiverMeasurements {
    config: MeasureConfig,
    streams: HashMap<u32, ReceivedStream>,
    view: Option<HeightView>,
    latency: LatencyHistogram,
    series: TimeSeries,
}

impl ReceiverMeasurements {
    /// A receiver with no streams yet; `bucket` is the width of its time series.
    pub fn new(config: MeasureConfig, bucket: Duration) -> Self {
        Self {
            config,
            streams: HashMap::new(),
            view: None,
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
        let view = self.view;
        let outcome = self
            .streams
            .entry(ssrc)
            .or_insert_with(|| {
                let mut stream = ReceivedStream::new(kind, config);
                if let (StreamKind::Video, Some(view)) = (kind, view) {
                    stream.set_target_height(packet.arrival, Some(view.height_for(ssrc)));
                }
                stream
            })
            .on_packet(packet);
        if let Some(latency) = outcome.latency {
            self.latency.record(latency);
        }
        self.series
            .record(packet.arrival, packet.payload_len, &outcome);
        outcome
    }

    /// The receiver's view asks for `view`'s heights from `at` on: every video stream's
    /// target height follows (streams that appear later get theirs on their first packet).
    pub fn set_view(&mut self, at: Duration, view: HeightView) {
        self.view = Some(view);
        for (ssrc, stream) in &mut self.streams {
            if stream.kind() == StreamKind::Video {
                stream.set_target_height(at, Some(view.height_for(*ssrc)));
            }
        }
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
                    for &(height, time) in stream.time_at_height() {
                        *report.time_at_height_ms.entry(height).or_default() +=
                            time.as_secs_f64() * 1000.0;
                    }
                }
            }
        }
        report.got_every_stream = report.video_streams_received >= expected.video
            && report.audio_streams_received >= expected.audio;
        report.at_view_height_pct = report.video.at_view_height_pct();
        report.got_view_heights = report
            .at_view_height_pct
            .map(|pct| pct >= VIEW_HEIGHT_OK_PCT);
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
    /// Time its video streams showed each height after ramp-up (summed over streams), ms.
    pub time_at_height_ms: BTreeMap<u32, f64>,
    /// Share of the time with a known view that its video streams showed the height the
    /// view asks for, percent (`None`: no view, or no keyframe height seen).
    pub at_view_height_pct: Option<f64>,
    /// Whether that share reached [`VIEW_HEIGHT_OK_PCT`] (`None` when not measured).
    pub got_view_heights: Option<bool>,
}

impl ReceiverReport {
    /// Audio and video together.
    pub fn total(&self) -> StreamStats {
        let mut total = self.audio;
        total.add(&self.video);
        total
    }
}
