//! A simulated camera sender follows its own bandwidth estimate, in closed loop and
//! deterministic time: the VP8 simulcast model sends through a bottleneck link (FIFO at a
//! fixed rate, drop-tail queue, 20 ms propagation) to a "node" that records arrivals in the
//! node's own `TwccRecorder` and sends its transport-cc feedback every 50 ms (20 ms back);
//! the sender's `SendEstimate` reads it and a `SimulcastAllocator` picks the layers, which
//! the model then sends. No sockets, no clock: `Instant`s are one base plus offsets.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a test failure"
)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use relais_bwe::twcc::TwccRecorder;
use relais_bwe::BweConfig;
use relais_loadtest::media::{
    LayerSet, SimulcastAllocator, VideoCodec, VideoConfig, VideoLayerConfig, VideoSource,
};
use relais_loadtest::participant::{ProbePadding, SendEstimate, SendEstimateConfig};
use relais_rtp::rtcp::{parse_typed, RtcpPacket};

const PROPAGATION: Duration = Duration::from_millis(20);
const FEEDBACK_INTERVAL: Duration = Duration::from_millis(50);
/// RTP header, one-byte extensions (transport-cc, abs-capture-time) and the SRTP tag.
const PACKET_OVERHEAD: usize = 12 + 16 + 16;
/// The `small` scenario's layers.
const LAYERS_KBPS: [u32; 3] = [150, 500, 1500];
/// Where the estimate starts (libwebrtc's start rate).
const START_BPS: u64 = 300_000;
/// From when the estimate over a narrow link must have settled (s).
const SETTLED_S: u64 = 3;

/// A bottleneck: one FIFO at `capacity_bps`, dropping what finds more than `queue` ahead.
struct Link {
    capacity_bps: u64,
    queue: Duration,
    free_at: Duration,
}

impl Link {
    /// When a packet of `size` bytes sent at `now` arrives, or `None` if the queue drops it.
    fn send(&mut self, now: Duration, size: usize) -> Option<Duration> {
        if self.free_at.saturating_sub(now) > self.queue {
            return None;
        }
        let transmission =
            Duration::from_nanos(size as u64 * 8 * 1_000_000_000 / self.capacity_bps);
        self.free_at = self.free_at.max(now) + transmission;
        Some(self.free_at + PROPAGATION)
    }
}

/// What one simulated run shows: the effective estimate and the layers sent, sampled every
/// 100 ms, and the number of layer-set changes.
struct Trace {
    /// (time, target bit/s, layers sent).
    samples: Vec<(Duration, u64, LayerSet)>,
    changes: u32,
}

impl Trace {
    fn window(&self, from: Duration) -> impl Iterator<Item = &(Duration, u64, LayerSet)> {
        self.samples.iter().filter(move |(t, _, _)| *t >= from)
    }
}

fn camera() -> VideoSource {
    let layers = LAYERS_KBPS
        .iter()
        .enumerate()
        .map(|(i, &kbps)| VideoLayerConfig {
            ssrc: 100 + i as u32,
            width: 320 << i,
            height: 180 << i,
            fps: if i == 0 { 15 } else { 30 },
            kbps,
        })
        .collect();
    let config = VideoConfig {
        codec: VideoCodec::Vp8,
        payload_type: 96,
        keyframe_interval: Duration::from_secs(10),
        mtu_payload_bytes: 1160,
        layers,
    };
    VideoSource::new(config, 7, Duration::ZERO).unwrap()
}

/// `duration` of the camera over a link of `capacity_bps`, with the node's REMB at
/// `remb_bps` (sent with every feedback) if given.
fn run(capacity_bps: u64, remb_bps: Option<u64>, duration: Duration) -> Trace {
    let t0 = Instant::now();
    // As the runner starts it: libwebrtc's start rate, probing.
    let config = SendEstimateConfig {
        bwe: BweConfig {
            initial_bps: START_BPS,
            ..BweConfig::default()
        },
        probe_padding: Some(ProbePadding {
            ssrc: 9,
            payload_type: 97,
        }),
    };
    let mut estimate = SendEstimate::new(config, t0);
    let mut allocator = SimulcastAllocator::new(LAYERS_KBPS);
    allocator.allocate(START_BPS);
    let mut video = camera();
    video.set_active_layers(Duration::ZERO, allocator.enabled());
    let mut link = Link {
        capacity_bps,
        queue: Duration::from_millis(100),
        free_at: Duration::ZERO,
    };
    let mut recorder = TwccRecorder::new(FEEDBACK_INTERVAL);
    let mut in_flight: VecDeque<(Duration, u16)> = VecDeque::new();
    let mut feedback: VecDeque<(Duration, RtcpPacket)> = VecDeque::new();
    let mut transport_seq = 0u16;
    let mut trace = Trace {
        samples: Vec::new(),
        changes: 0,
    };
    let tick = Duration::from_millis(1);
    let mut now = Duration::ZERO;
    while now < duration {
        // The node: arrivals, then its feedback (and REMB) toward the sender.
        while in_flight.front().is_some_and(|(at, _)| *at <= now) {
            let (at, seq) = in_flight.pop_front().unwrap();
            recorder.on_packet(t0 + at, seq);
        }
        while let Some(bytes) = recorder.poll_feedback(t0 + now, 1, 100) {
            for packet in parse_typed(&bytes).unwrap() {
                feedback.push_back((now + PROPAGATION, packet));
            }
        }
        // The sender: feedback in, layers decided.
        while feedback.front().is_some_and(|(at, _)| *at <= now) {
            let (_, packet) = feedback.pop_front().unwrap();
            if let RtcpPacket::TransportCc(fb) = packet {
                estimate.on_feedback(t0 + now, &fb);
                if let Some(remb) = remb_bps {
                    estimate.on_remb(remb);
                }
                let set = allocator.allocate(estimate.current().target_bps);
                estimate.request_bitrate(t0 + now, allocator.wanted_bps(LayerSet::first(3)));
                if set != video.active_layers() {
                    video.set_active_layers(now, set);
                    trace.changes += 1;
                }
            }
        }
        // The camera's packets, each recorded with its transport-wide sequence number.
        while let Some(packet) = video.poll(now) {
            transport_seq = transport_seq.wrapping_add(1);
            let size = packet.payload.len() + PACKET_OVERHEAD;
            estimate.on_sent(t0 + now, transport_seq, size);
            if let Some(arrival) = link.send(now, size) {
                in_flight.push_back((arrival, transport_seq));
            }
        }
        // Probe bytes as padding packets of at most 255 + 36 bytes.
        while let Some(probe) = estimate.poll_probe(t0 + now) {
            let mut left = probe.bytes;
            while left > 0 {
                let size = left.clamp(37, 255 + 36);
                transport_seq = transport_seq.wrapping_add(1);
                estimate.on_probe_sent(t0 + now, transport_seq, size, probe.cluster);
                if let Some(arrival) = link.send(now, size) {
                    in_flight.push_back((arrival, transport_seq));
                }
                left = left.saturating_sub(size);
            }
        }
        if now.as_millis() % 100 == 0 {
            trace
                .samples
                .push((now, estimate.current().target_bps, video.active_layers()));
        }
        now += tick;
    }
    trace
}

#[test]
fn a_500_kbps_link_brings_the_estimate_near_it_and_keeps_the_top_layers_off() {
    let trace = run(500_000, None, Duration::from_secs(30));
    let window: Vec<u64> = trace
        .window(Duration::from_secs(SETTLED_S))
        .map(|s| s.1)
        .collect();
    let (min, max) = (*window.iter().min().unwrap(), *window.iter().max().unwrap());
    eprintln!(
        "500 kbit/s link: estimate {SETTLED_S}-30 s within {min}..={max} bit/s, {} layer changes",
        trace.changes
    );
    // The probes (900 k, 1.8 M) find the link: about 0.8-1 × its rate.
    assert!(min >= 350_000, "estimate fell to {min}");
    assert!(max <= 550_000, "estimate stayed at {max}");
    // 150 + 1.35 × 500 kbit/s never fit: only the lowest layer is ever sent.
    assert!(trace.samples.iter().all(|s| s.2 == LayerSet::first(1)));
    assert_eq!(trace.changes, 0);
}

#[test]
fn an_ample_link_brings_every_layer_on_within_two_seconds() {
    let trace = run(20_000_000, None, Duration::from_secs(20));
    let settled: Vec<&(Duration, u64, LayerSet)> = trace.window(Duration::from_secs(2)).collect();
    let lowest = settled.iter().map(|s| s.1).min().unwrap();
    eprintln!(
        "20 Mbit/s link: lowest estimate after 2 s {lowest} bit/s, {} layer changes",
        trace.changes
    );
    // From 300 kbit/s, the probes raise the estimate: layer 1, then layer 2, each once.
    assert_eq!(trace.changes, 2);
    assert!(settled.iter().all(|s| s.2 == LayerSet::first(3)));
    // Enough for the top layer to have come on: 150 + 500 + 1.35 × 1500 kbit/s.
    assert!(lowest >= 2_675_000, "{lowest}");
}

#[test]
fn a_remb_below_the_twcc_estimate_limits_the_layers() {
    // The link carries everything; the node's REMB says 900 kbit/s: 150 + 1.35 × 500 fit,
    // the top layer does not.
    let trace = run(20_000_000, Some(900_000), Duration::from_secs(10));
    assert!(trace
        .window(Duration::from_secs(2))
        .all(|s| s.2 == LayerSet::first(2) && s.1 == 900_000));
    assert_eq!(trace.changes, 1);
}

#[test]
fn a_link_near_a_layer_threshold_does_not_make_the_layers_flap() {
    // 900 kbit/s: layer 1 comes on (150 + 1.35 × 500 = 825 k) and, sent, brings the
    // estimate near the 650 k it needs to stay on.
    let trace = run(900_000, None, Duration::from_secs(30));
    let layers: Vec<usize> = trace.samples.iter().map(|s| s.2.len()).collect();
    eprintln!(
        "900 kbit/s link: {} layer changes, layers at 5 s {:?}, at the end {:?}",
        trace.changes,
        layers.get(50),
        layers.last()
    );
    assert_eq!(trace.changes, 1, "{layers:?}");
    assert_eq!(layers.last(), Some(&2));
}
