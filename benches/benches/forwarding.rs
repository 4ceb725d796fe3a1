//! The conference core's cost per forwarded packet: what the node's user-space hot path
//! spends between "decrypted packet in" and "protected packet ready for `sendmmsg`", without
//! sockets.
//!
//! One publisher sends Chrome-like media into a [`Conference`] with N receivers; every
//! receiver has the publisher's video on stage at 720p, so every packet of the top simulcast
//! layer is forwarded to all N. The conference uses [`ConferenceConfig::default`] and every
//! endpoint negotiates transport-cc (as Chromium does), so the receivers' pacers and the
//! per-receiver transport-wide sequence numbers are on the measured path. Time is a
//! synthetic `Instant` that advances per packet; before each packet the bench calls
//! `handle_timeout` when `poll_timeout` says so and after it drains every output, recycling
//! the buffers, as the node's event loop does.
//!
//! * `conference/fanout_N` (N = 1, 25, 100): one packet of the top VP8 simulcast layer
//!   (1100 bytes, L1T3, with abs-send-time, transport-cc, abs-capture-time, mid and rid)
//!   through `handle_rtp`, then `poll_output` until empty: parse, route, layer selection per
//!   receiver projection, the copy and rewrite per receiver, pacer, plus the timers that fall
//!   due. Throughput is N elements per iteration, so criterion's time per element is the
//!   time per forwarded packet.
//! * `conference_and_srtp/fanout_25`: the same, and every output SRTP-protected in place with
//!   relais-srtp's AEAD_AES_128_GCM sender of its receiver (`protect_rtp_vec`, as the node):
//!   everything a forwarded packet costs in user space but the decryption of the incoming
//!   packet (shared by all N copies) and the `sendmmsg` syscall.
//! * `audio/fanout_25`: a 100-byte Opus packet with an audio level from a speaking
//!   publisher, through silence suppression and dominant speaker identification, to 25.
//! * `bare_forwarder/fanout_25`: the baseline, what a bare forwarder does in user space for
//!   the same top-layer packet: per receiver, copy it into a buffer, set SSRC and sequence
//!   number and SRTP-protect it with the same sender. `conference_and_srtp` over it is the
//!   conference core's share of the user-space cost.
//!
//! The node's whole cost per forwarded packet is `conference_and_srtp` plus 1/N of the
//! incoming packet's SRTP decryption, the driver's demultiplexing and batching, feedback
//! handling, and the kernel's UDP path (the larger part: about 3.6 µs per datagram on the
//! development machine, see DESIGN.md's budget).
//!
//! What is not timed (`iter_custom` times stretches of consecutive top-layer packets):
//! building the synthetic packets, and the publisher's two lower simulcast layers (one
//! 600-byte and two 1000-byte packets per frame), which are fed to the conference between
//! timed stretches so the source looks like Chrome's, but which no receiver gets (the node
//! pays a parse and N layer selections for each of them, not counted here). The receivers' transport-cc feedback
//! brings their estimates up to the top layer during an untimed warm-up and then stops
//! (nothing is lost, so the estimates stay): reading a feedback is `bwe/feedback` in
//! `bwe.rs`.
//!
//! Every fixture is checked before it is measured: for 3 s of media, each top-layer (or
//! audio) packet must give exactly N RTP outputs, or setup panics; after the measurement the
//! totals are checked again over everything the timed loop fed.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "benchmark harness: a panic aborts the run"
)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use relais_bwe::twcc::TwccRecorder;
use relais_conference::allocation::{ReceiverConstraintsUpdate, VideoConstraints, VideoType};
use relais_conference::{
    CodecName, Conference, ConferenceConfig, ConferenceOutput, EndpointDescription, EndpointId,
    MediaKind, NegotiatedCodec, PublishedSource,
};
use relais_rtp::extensions::{ExtensionKind, ExtensionMap, TransportSequenceNumber};
use relais_rtp::rtp::RtpPacket;
use relais_srtp::{DtlsRole, SrtpConfig, SrtpKeys, SrtpProfile, SrtpSender};

const OPUS_PT: u8 = 111;
const VP8_PT: u8 = 100;
const VP8_RTX_PT: u8 = 96;

// One-byte header-extension ids, the same for every endpoint (Jicofo offers one map).
const EXT_AUDIO_LEVEL: u8 = 1;
const EXT_ABS_SEND_TIME: u8 = 2;
const EXT_TRANSPORT_CC: u8 = 3;
const EXT_MID: u8 = 4;
const EXT_ABS_CAPTURE_TIME: u8 = 7;
const EXT_RID: u8 = 10;

const PUBLISHER: EndpointId = EndpointId(0);
const AUDIO_SSRC: u32 = 0x1000_0001;
const VIDEO_SSRCS: [u32; 3] = [0x1000_0010, 0x1000_0011, 0x1000_0012];
const RTX_SSRCS: [u32; 3] = [0x1000_0020, 0x1000_0021, 0x1000_0022];

const FPS: u64 = 30;
const FRAME_INTERVAL: Duration = Duration::from_nanos(1_000_000_000 / FPS);
/// Opus frame length.
const AUDIO_INTERVAL: Duration = Duration::from_millis(20);

/// One simulcast encoding as Chrome sends a 720p camera: 180p ≈ 140 kbit/s, 360p ≈ 480
/// kbit/s, 720p ≈ 2.1 Mbit/s of payload at 30 fps (sizes fixed, key frames the same size).
struct Encoding {
    width: u16,
    height: u16,
    rid: &'static [u8],
    packets_per_frame: usize,
    packet_len: usize,
}

const ENCODINGS: [Encoding; 3] = [
    Encoding {
        width: 320,
        height: 180,
        rid: b"q",
        packets_per_frame: 1,
        packet_len: 600,
    },
    Encoding {
        width: 640,
        height: 360,
        rid: b"h",
        packets_per_frame: 2,
        packet_len: 1000,
    },
    Encoding {
        width: 1280,
        height: 720,
        rid: b"f",
        packets_per_frame: 8,
        packet_len: 1100,
    },
];
const TOP: usize = ENCODINGS.len() - 1;

/// Warm-up with transport-cc feedback: long enough for the estimates to reach the top layer.
const WARM_UP: Duration = Duration::from_secs(15);
/// How much media the setup check looks at.
const CHECK: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------------------
// The publisher: Chrome-like RTP.
// ---------------------------------------------------------------------------------------

/// An RTP packet of `len` bytes in all: header, one-byte extensions, `prefix`, filler.
#[allow(clippy::too_many_arguments)]
fn rtp_packet(
    payload_type: u8,
    marker: bool,
    seq: u16,
    timestamp: u32,
    ssrc: u32,
    extensions: &[(u8, &[u8])],
    prefix: &[u8],
    len: usize,
) -> Vec<u8> {
    let mut p = Vec::with_capacity(len);
    p.extend_from_slice(&[0x90, payload_type | if marker { 0x80 } else { 0 }]);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&timestamp.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    let elements: usize = extensions.iter().map(|(_, v)| 1 + v.len()).sum();
    let words = elements.div_ceil(4);
    p.extend_from_slice(&[0xBE, 0xDE]);
    p.extend_from_slice(&(words as u16).to_be_bytes());
    for (id, value) in extensions {
        p.push((id << 4) | (value.len() as u8 - 1));
        p.extend_from_slice(value);
    }
    p.resize(16 + 4 * words, 0);
    p.extend_from_slice(prefix);
    p.resize(len, 0xA5);
    p
}

/// libwebrtc's 3-temporal-layer VP8 pattern: temporal id and layer-sync flag per frame.
const TEMPORAL_PATTERN: [(u8, bool); 4] = [(0, false), (2, true), (1, true), (2, false)];

/// The publishing browser: VP8 simulcast and Opus on one transport-cc sequence.
struct Publisher {
    start: Instant,
    frame: u64,
    frames_since_keyframe: u64,
    keyframe_pending: bool,
    seq: [u16; 3],
    picture_id: [u16; 3],
    tl0_pic_idx: [u8; 3],
    audio_seq: u16,
    audio_frame: u64,
    transport_seq: u16,
}

impl Publisher {
    fn new(start: Instant) -> Self {
        Self {
            start,
            frame: 0,
            frames_since_keyframe: 0,
            keyframe_pending: true,
            seq: [1000, 2000, 3000],
            picture_id: [100, 200, 300],
            tl0_pic_idx: [10, 20, 30],
            audio_seq: 5000,
            audio_frame: 0,
            transport_seq: 1,
        }
    }

    fn sources() -> Vec<PublishedSource> {
        vec![
            PublishedSource {
                name: "pub-a0".to_owned(),
                kind: MediaKind::Audio,
                ssrcs: vec![AUDIO_SSRC],
                rtx: Vec::new(),
                video_type: VideoType::Camera,
            },
            PublishedSource {
                name: "pub-v0".to_owned(),
                kind: MediaKind::Video,
                ssrcs: VIDEO_SSRCS.to_vec(),
                rtx: VIDEO_SSRCS.into_iter().zip(RTX_SSRCS).collect(),
                video_type: VideoType::Camera,
            },
        ]
    }

    /// abs-send-time (6.18 fixed-point seconds), transport-cc and abs-capture-time (NTP
    /// 32.32) values for a packet sent at `at`.
    fn timing_extensions(&mut self, at: Instant) -> ([u8; 3], [u8; 2], [u8; 8]) {
        let since = at.saturating_duration_since(self.start);
        let abs_send = ((since.as_nanos() << 18) / 1_000_000_000) as u32;
        let capture = ((since.as_nanos() << 32) / 1_000_000_000) as u64;
        let transport = self.transport_seq;
        self.transport_seq = self.transport_seq.wrapping_add(1);
        let abs_send = abs_send.to_be_bytes();
        (
            [abs_send[1], abs_send[2], abs_send[3]],
            transport.to_be_bytes(),
            capture.to_be_bytes(),
        )
    }

    /// The next video frame: its capture time and each encoding's packets, lowest first.
    fn video_frame(&mut self) -> (Instant, [Vec<Vec<u8>>; 3]) {
        let at = self.start + FRAME_INTERVAL * self.frame as u32;
        let keyframe = std::mem::take(&mut self.keyframe_pending);
        if keyframe {
            self.frames_since_keyframe = 0;
        }
        let (temporal_id, layer_sync) =
            TEMPORAL_PATTERN[(self.frames_since_keyframe % TEMPORAL_PATTERN.len() as u64) as usize];
        let timestamp = (self.frame * 90_000 / FPS) as u32;
        let mut out: [Vec<Vec<u8>>; 3] = Default::default();
        for (e, encoding) in ENCODINGS.iter().enumerate() {
            if temporal_id == 0 {
                self.tl0_pic_idx[e] = self.tl0_pic_idx[e].wrapping_add(1);
            }
            let picture_id = self.picture_id[e];
            self.picture_id[e] = (picture_id + 1) & 0x7FFF;
            for index in 0..encoding.packets_per_frame {
                let first = index == 0;
                // X, N on TL2, S on the first packet; I (15-bit picture id), L, T; Y.
                let mut prefix = vec![
                    0x80 | if temporal_id == 2 { 0x20 } else { 0 } | if first { 0x10 } else { 0 },
                    0xE0,
                    0x80 | (picture_id >> 8) as u8,
                    picture_id as u8,
                    self.tl0_pic_idx[e],
                    (temporal_id << 6) | (u8::from(keyframe || layer_sync) << 5),
                ];
                if first {
                    // VP8 frame tag (P=0 on key frames, show_frame), then on key frames the
                    // start code and the dimensions.
                    prefix.extend_from_slice(&[u8::from(!keyframe) | 0x10, 0x02, 0x00]);
                    if keyframe {
                        prefix.extend_from_slice(&[0x9D, 0x01, 0x2A]);
                        prefix.extend_from_slice(&encoding.width.to_le_bytes());
                        prefix.extend_from_slice(&encoding.height.to_le_bytes());
                    }
                }
                let (abs_send, transport, capture) = self.timing_extensions(at);
                out[e].push(rtp_packet(
                    VP8_PT,
                    index + 1 == encoding.packets_per_frame,
                    self.seq[e],
                    timestamp.wrapping_add(e as u32 * 0x1000_0000),
                    VIDEO_SSRCS[e],
                    &[
                        (EXT_ABS_SEND_TIME, &abs_send),
                        (EXT_TRANSPORT_CC, &transport),
                        (EXT_ABS_CAPTURE_TIME, &capture),
                        (EXT_MID, b"1"),
                        (EXT_RID, encoding.rid),
                    ],
                    &prefix,
                    encoding.packet_len,
                ));
                self.seq[e] = self.seq[e].wrapping_add(1);
            }
        }
        self.frame += 1;
        self.frames_since_keyframe += 1;
        (at, out)
    }

    /// The next 20 ms Opus packet (100 bytes) and its send time; the level (-dBov) moves
    /// between -25 and -40 as speech does.
    fn audio_packet(&mut self) -> (Instant, Vec<u8>) {
        let at = self.start + AUDIO_INTERVAL * self.audio_frame as u32;
        let level = 25 + (self.audio_frame % 16) as u8;
        let (abs_send, transport, capture) = self.timing_extensions(at);
        let packet = rtp_packet(
            OPUS_PT,
            false,
            self.audio_seq,
            (self.audio_frame * 960) as u32,
            AUDIO_SSRC,
            &[
                (EXT_AUDIO_LEVEL, &[0x80 | level]),
                (EXT_ABS_SEND_TIME, &abs_send),
                (EXT_TRANSPORT_CC, &transport),
                (EXT_ABS_CAPTURE_TIME, &capture),
                (EXT_MID, b"0"),
            ],
            &[0xFC],
            100,
        );
        self.audio_seq = self.audio_seq.wrapping_add(1);
        self.audio_frame += 1;
        (at, packet)
    }
}

// ---------------------------------------------------------------------------------------
// The node side: the conference and one SRTP sender per endpoint.
// ---------------------------------------------------------------------------------------

/// What Jicofo offers every endpoint, with Chrome's extensions.
fn description(name: &str) -> EndpointDescription {
    let mut extensions = ExtensionMap::new();
    for (id, kind) in [
        (EXT_AUDIO_LEVEL, ExtensionKind::AudioLevel),
        (EXT_ABS_SEND_TIME, ExtensionKind::AbsSendTime),
        (EXT_TRANSPORT_CC, ExtensionKind::TransportCc),
        (EXT_MID, ExtensionKind::Mid),
        (EXT_ABS_CAPTURE_TIME, ExtensionKind::AbsCaptureTime),
        (EXT_RID, ExtensionKind::RtpStreamId),
    ] {
        extensions.insert(id, kind).unwrap();
    }
    let codec = |payload_type, name, clock_rate, rtx_payload_type| NegotiatedCodec {
        payload_type,
        name,
        clock_rate,
        rtx_payload_type,
    };
    EndpointDescription {
        name: name.to_owned(),
        codecs: vec![
            codec(OPUS_PT, CodecName::Opus, 48_000, None),
            codec(VP8_PT, CodecName::Vp8, 90_000, Some(VP8_RTX_PT)),
        ],
        extensions,
    }
}

/// An AEAD_AES_128_GCM sender with keys of its own for `endpoint`.
fn srtp_sender(endpoint: u64) -> SrtpSender {
    let profile = SrtpProfile::AeadAes128Gcm;
    let material: Vec<u8> = (0..profile.keying_material_len() as u64)
        .map(|b| (b.wrapping_mul(37) ^ endpoint) as u8)
        .collect();
    let keys = SrtpKeys::from_dtls_keying_material(profile, &material, DtlsRole::Server).unwrap();
    SrtpSender::new(&keys.local, SrtpConfig::default()).unwrap()
}

/// The conference and what the node keeps per endpoint to send to it.
struct Node {
    conference: Conference,
    /// Indexed by endpoint id (0 is the publisher).
    srtp: Vec<SrtpSender>,
}

impl Node {
    /// Runs the timers if due, hands the conference one packet and drains the outputs as the
    /// node does (SRTP-protecting them when `protect`); returns the RTP packets sent.
    fn forward(&mut self, at: Instant, packet: &[u8], protect: bool) -> usize {
        if self.conference.poll_timeout().is_some_and(|t| t <= at) {
            self.conference.handle_timeout(at);
        }
        self.conference.handle_rtp(at, PUBLISHER, packet);
        self.drain(protect, |_| {})
    }

    /// Drains every output, recycling buffers; `inspect` sees each output first.
    fn drain(&mut self, protect: bool, mut inspect: impl FnMut(&ConferenceOutput)) -> usize {
        let mut rtp = 0;
        while let Some(output) = self.conference.poll_output() {
            inspect(&output);
            match output {
                ConferenceOutput::Rtp { to, mut packet } => {
                    rtp += 1;
                    if protect {
                        let sender = &mut self.srtp[to.0 as usize];
                        std::hint::black_box(sender.protect_rtp_vec(&mut packet)).unwrap();
                    }
                    self.conference.recycle(packet);
                }
                ConferenceOutput::Rtcp { to, mut packet } => {
                    if protect {
                        let sender = &mut self.srtp[to.0 as usize];
                        std::hint::black_box(sender.protect_rtcp_vec(&mut packet)).unwrap();
                    }
                    self.conference.recycle(packet);
                }
                ConferenceOutput::Event { .. } => {}
            }
        }
        rtp
    }
}

/// Which of the publisher's streams the fixture measures.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Media {
    /// The top simulcast layer (the lower ones are fed untimed).
    Video,
    /// Opus.
    Audio,
}

/// A conference with one publisher and `receivers` receivers, warmed up.
struct Fixture {
    node: Node,
    publisher: Publisher,
    receivers: usize,
    media: Media,
    /// Packets to feed in timed stretches, with their arrival times.
    queue: Vec<(Instant, Vec<u8>)>,
    next: usize,
    /// Packets fed and RTP outputs counted since the last [`Fixture::assert_fanout`].
    fed: u64,
    sent: u64,
}

impl Fixture {
    fn new(receivers: usize, media: Media) -> Self {
        let start = Instant::now();
        let mut conference = Conference::new(start, ConferenceConfig::default());
        conference
            .add_endpoint(start, PUBLISHER, description("pub"))
            .unwrap();
        conference
            .set_sources(start, PUBLISHER, Publisher::sources())
            .unwrap();
        for r in 1..=receivers as u64 {
            let id = EndpointId(r);
            conference
                .add_endpoint(start, id, description(&format!("r{r:03}")))
                .unwrap();
            let on_stage = VideoConstraints {
                max_height: 720,
                max_frame_rate: 30.0,
            };
            let update = ReceiverConstraintsUpdate {
                last_n: Some(-1),
                on_stage_sources: Some(vec!["pub-v0".to_owned()]),
                constraints: Some(BTreeMap::from([("pub-v0".to_owned(), on_stage)])),
                ..Default::default()
            };
            conference
                .set_receiver_constraints(start, id, update)
                .unwrap();
        }
        let mut fixture = Self {
            node: Node {
                conference,
                srtp: (0..=receivers as u64).map(srtp_sender).collect(),
            },
            publisher: Publisher::new(start),
            receivers,
            media,
            queue: Vec::new(),
            next: 0,
            fed: 0,
            sent: 0,
        };
        fixture.warm_up();
        fixture.check();
        fixture
    }

    /// Runs the call with the receivers' transport-cc feedback and the publisher answering
    /// key frame requests, until the estimates allow the top layer.
    fn warm_up(&mut self) {
        // The receiving browsers, reporting arrivals with transport-cc feedback.
        let mut receivers: Vec<TwccRecorder> = (0..self.receivers)
            .map(|_| TwccRecorder::default())
            .collect();
        let end = self.publisher.start + WARM_UP;
        loop {
            let packets = self.next_packets(true);
            if packets[0].0 >= end {
                break;
            }
            for (at, packet) in &packets {
                let at = *at;
                if self.node.conference.poll_timeout().is_some_and(|t| t <= at) {
                    self.node.conference.handle_timeout(at);
                }
                self.node.conference.handle_rtp(at, PUBLISHER, packet);
                let mut keyframe_request = false;
                self.node.drain(false, |output| match output {
                    ConferenceOutput::Rtp { to, packet } => {
                        let parsed = RtpPacket::parse(packet.as_slice()).unwrap();
                        if let Some(seq) = parsed
                            .extension(EXT_TRANSPORT_CC)
                            .and_then(|v| TransportSequenceNumber::parse(v).ok())
                        {
                            receivers[to.0 as usize - 1].on_packet(at, seq.0);
                        }
                    }
                    // A PLI or FIR (payload-specific feedback) to the publisher.
                    ConferenceOutput::Rtcp { to, packet } => {
                        keyframe_request |= *to == PUBLISHER && packet.get(1) == Some(&206);
                    }
                    ConferenceOutput::Event { .. } => {}
                });
                self.publisher.keyframe_pending |= keyframe_request;
                for (index, receiver) in receivers.iter_mut().enumerate() {
                    let id = EndpointId(index as u64 + 1);
                    while let Some(feedback) = receiver.poll_feedback(at, 0x5EED, 0) {
                        self.node.conference.handle_rtcp(at, id, &feedback);
                    }
                }
                self.node.drain(false, |_| {});
            }
        }
        self.queue.clear();
        self.next = 0;
    }

    /// The next frame's (or audio packet's) packets in arrival order. For video, the lower
    /// layers are fed here at once unless `all`, and only the top layer's are returned.
    fn next_packets(&mut self, all: bool) -> Vec<(Instant, Vec<u8>)> {
        match self.media {
            Media::Audio => vec![self.publisher.audio_packet()],
            Media::Video => {
                let (at, [low, mid, top]) = self.publisher.video_frame();
                let mut packets = Vec::new();
                for packet in low.into_iter().chain(mid) {
                    if all {
                        packets.push((at, packet));
                    } else {
                        self.node.forward(at, &packet, false);
                    }
                }
                // The top layer's packets leave the browser's pacer spread over the frame.
                let spacing = FRAME_INTERVAL / ENCODINGS[TOP].packets_per_frame as u32;
                packets.extend(
                    top.into_iter()
                        .enumerate()
                        .map(|(i, p)| (at + spacing * i as u32, p)),
                );
                packets
            }
        }
    }

    /// Feeds `count` measured packets, timing only the node's work on them.
    fn run(&mut self, count: u64, protect: bool) -> Duration {
        let mut timed = Duration::ZERO;
        let mut left = count;
        while left > 0 {
            if self.next == self.queue.len() {
                self.queue = self.next_packets(false);
                self.next = 0;
            }
            let take = (left as usize).min(self.queue.len() - self.next);
            let mut sent = 0;
            let start = Instant::now();
            for (at, packet) in &self.queue[self.next..self.next + take] {
                sent += self.node.forward(*at, packet, protect);
            }
            timed += start.elapsed();
            self.next += take;
            left -= take as u64;
            self.fed += take as u64;
            self.sent += sent as u64;
        }
        timed
    }

    /// Panics unless every packet fed since the last check gave one RTP packet per receiver
    /// (nothing fed passes: a filtered-out bench feeds nothing).
    fn assert_fanout(&mut self, when: &str) {
        let (fed, sent) = (
            std::mem::take(&mut self.fed),
            std::mem::take(&mut self.sent),
        );
        let expected = fed * self.receivers as u64;
        assert!(
            sent == expected,
            "{when}: {fed} packets to {} receivers gave {sent} RTP outputs, not {expected}: \
             the bench would not measure forwarding to every receiver",
            self.receivers,
        );
    }

    fn check(&mut self) {
        let interval = match self.media {
            Media::Video => FRAME_INTERVAL / ENCODINGS[TOP].packets_per_frame as u32,
            Media::Audio => AUDIO_INTERVAL,
        };
        // Packet by packet: a pacer that held packets back and let them go later would pass
        // a check of the sum.
        for _ in 0..CHECK.as_nanos() / interval.as_nanos() {
            self.run(1, true);
            self.assert_fanout("setup check");
        }
    }
}

fn bench(c: &mut Criterion, group: &str, media: Media, fanouts: &[usize], protect: bool) {
    let mut group = c.benchmark_group(group);
    for &n in fanouts {
        let mut fixture = Fixture::new(n, media);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter(format!("fanout_{n}")), |b| {
            b.iter_custom(|iters| fixture.run(iters, protect));
        });
        fixture.assert_fanout("after the measurement");
    }
    group.finish();
}

/// The user-space work of a bare forwarder, for the ratio: per receiver, copy the packet
/// into a buffer, set its SSRC and sequence number, SRTP-protect it in place.
fn bare_forwarder(c: &mut Criterion) {
    const N: usize = 25;
    let mut group = c.benchmark_group("bare_forwarder");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function(BenchmarkId::from_parameter(format!("fanout_{N}")), |b| {
        let mut publisher = Publisher::new(Instant::now());
        let (_, [_, _, top]) = publisher.video_frame();
        let packet = &top[1];
        let mut senders: Vec<SrtpSender> = (1..=N as u64).map(srtp_sender).collect();
        let mut buffers: Vec<Vec<u8>> = (0..N)
            .map(|_| Vec::with_capacity(relais_conference::conference::BUFFER_CAPACITY))
            .collect();
        let mut seq = 0u16;
        b.iter(|| {
            seq = seq.wrapping_add(1);
            for (sender, buffer) in senders.iter_mut().zip(&mut buffers) {
                buffer.clear();
                buffer.extend_from_slice(packet);
                buffer[2..4].copy_from_slice(&seq.to_be_bytes());
                buffer[8..12].copy_from_slice(&0x2000_0000u32.to_be_bytes());
                std::hint::black_box(sender.protect_rtp_vec(buffer)).unwrap();
            }
        });
    });
    group.finish();
}

fn forwarding(c: &mut Criterion) {
    bench(c, "conference", Media::Video, &[1, 25, 100], false);
    bench(c, "conference_and_srtp", Media::Video, &[25], true);
    bench(c, "audio", Media::Audio, &[25], false);
}

criterion_group!(benches, bare_forwarder, forwarding);
criterion_main!(benches);
