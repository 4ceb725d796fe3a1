//! What one transport-wide feedback packet from a receiver costs the node.
//!
//! - `bwe/feedback`: reading a TWCC feedback that covers 20 packets (50 ms of a receiver
//!   getting ~400 packets/s) against the send history, and the delay- and loss-based
//!   estimate update.
//! - `bwe/allocation`: the receiver's allocation within the new estimate, in the reference
//!   meeting's shape: 40 video senders with 3 simulcast encodings × 3 temporal layers,
//!   last-N unlimited, one source on stage, thumbnails at 180p.
//! - `bwe/feedback_and_allocation`: both, as the conference runs them when the estimate moved.

#![allow(
    missing_docs,
    clippy::expect_used,
    reason = "benchmark harness: a panic aborts the run"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use relais_bwe::estimator::BandwidthEstimator;
use relais_bwe::twcc::{TwccRecorder, TwccSendHistory};
use relais_bwe::{BweConfig, PacketResult};
use relais_conference::allocation::{
    allocate, LayerDescription, ReceiverConstraints, ReceiverConstraintsUpdate, SourceDescription,
    VideoConstraints, VideoType,
};
use relais_conference::EndpointId;

const PACKETS_PER_FEEDBACK: u16 = 20;
const SOURCES: usize = 40;

/// State after `rounds` feedback rounds of steady traffic, and the next feedback to read.
struct Receiver {
    history: TwccSendHistory,
    estimator: BandwidthEstimator,
    recorder: TwccRecorder,
    seq: u16,
    now: Instant,
    results: Vec<PacketResult>,
}

impl Receiver {
    fn new() -> Self {
        let now = Instant::now();
        let mut receiver = Self {
            history: TwccSendHistory::new(),
            estimator: BandwidthEstimator::new(BweConfig::default(), now),
            recorder: TwccRecorder::default(),
            seq: 0,
            now,
            results: Vec::with_capacity(64),
        };
        for _ in 0..100 {
            let feedback = receiver.next_feedback();
            receiver.read(&feedback);
        }
        receiver
    }

    /// Sends a feedback interval's packets (2.5 ms apart, 1 ms one-way delay) and returns
    /// the feedback the receiver sends for them.
    fn next_feedback(&mut self) -> Vec<u8> {
        for _ in 0..PACKETS_PER_FEEDBACK {
            self.history.on_sent(self.now, self.seq, 1200, None);
            self.recorder
                .on_packet(self.now + Duration::from_millis(1), self.seq);
            self.seq = self.seq.wrapping_add(1);
            self.now += Duration::from_micros(2500);
        }
        // Due 50 ms after the previous one: the last arrivals are 1 ms late, give it 5.
        self.now += Duration::from_millis(5);
        self.recorder
            .poll_feedback(self.now, 1, 2)
            .expect("a feedback is due after 55 ms of packets")
    }

    fn read(&mut self, feedback: &[u8]) {
        self.results.clear();
        let _ = self.history.on_rtcp(self.now, feedback, &mut self.results);
        self.estimator.on_feedback(self.now, &self.results);
    }
}

fn layers() -> Vec<LayerDescription> {
    let mut layers = Vec::new();
    for (encoding, (height, bitrate)) in [(180u16, 150_000u64), (360, 500_000), (720, 1_500_000)]
        .into_iter()
        .enumerate()
    {
        for temporal in 0..3u8 {
            layers.push(LayerDescription {
                encoding: encoding as u8,
                temporal,
                height,
                frame_rate: 7.5 * f64::from(1u8 << temporal),
                bitrate_bps: bitrate * (u64::from(temporal) + 2) / 4,
                active: true,
            });
        }
    }
    layers
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("bwe");
    group.bench_function("feedback", |b| {
        b.iter_batched_ref(
            || {
                let mut receiver = Receiver::new();
                let feedback = receiver.next_feedback();
                (receiver, feedback)
            },
            |(receiver, feedback)| {
                receiver.read(feedback);
                black_box(receiver.estimator.estimate_bps())
            },
            BatchSize::SmallInput,
        )
    });

    let names: Vec<String> = (0..SOURCES).map(|i| format!("ep{i:02}-v0")).collect();
    let layers = layers();
    let sources: Vec<SourceDescription<'_>> = names
        .iter()
        .enumerate()
        .map(|(i, name)| SourceDescription {
            name,
            owner: EndpointId(i as u64 + 1),
            video_type: VideoType::Camera,
            layers: &layers,
        })
        .collect();
    let speakers: Vec<EndpointId> = (1..=SOURCES as u64).map(EndpointId).collect();
    let mut constraints = ReceiverConstraints::default();
    constraints.apply(ReceiverConstraintsUpdate {
        last_n: Some(-1),
        on_stage_sources: Some(vec!["ep03-v0".to_owned()]),
        default_constraints: Some(VideoConstraints {
            max_height: 180,
            max_frame_rate: 30.0,
        }),
        ..Default::default()
    });
    let receiver = EndpointId(10_000);
    group.bench_function("allocation", |b| {
        b.iter(|| {
            black_box(allocate(
                receiver,
                &constraints,
                &sources,
                &speakers,
                Some(black_box(4_000_000)),
            ))
        })
    });
    group.bench_function("feedback_and_allocation", |b| {
        b.iter_batched_ref(
            || {
                let mut receiver = Receiver::new();
                let feedback = receiver.next_feedback();
                (receiver, feedback)
            },
            |(state, feedback)| {
                state.read(feedback);
                black_box(allocate(
                    receiver,
                    &constraints,
                    &sources,
                    &speakers,
                    Some(state.estimator.estimate_bps()),
                ))
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
