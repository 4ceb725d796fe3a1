//! `--replay FILE`: reading the committed Chromium capture (tests/data, made by
//! `loadtest/scripts/capture-publish`), replaying it over several laps with the timing, sizes
//! and sequence numbers preserved, the size-based keyframe heuristic, hand-made captures of
//! every supported container and link type, and malformed input giving errors, not panics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use relais_loadtest::media::replay::{
    ReplayCapture, ReplayConfig, ReplayError, ReplayLayer, ReplayOptions, ReplaySource, SkipReason,
    StreamKind, GCM_TAG_LEN, HMAC_SHA1_80_TAG_LEN, LOOP_GAP,
};
use relais_loadtest::media::{
    ExtensionIds, KeyframeRequest, LayerSet, MediaKind, MediaPacket, RtpWriter, SendExtensions,
};
use relais_rtp::codec::vp8;
use relais_rtp::extensions::{AudioLevel, ExtensionKind, ExtensionMap};
use relais_rtp::rtp::RtpPacket;

/// `loadtest/scripts/capture-publish -s 5`: Chromium 156 publishing 3-layer VP8 simulcast
/// (fake camera, 1280x720 at 20 fps) and Opus to relais, captured on `lo` toward the media
/// port with a 128-byte snap length.
const CHROMIUM_CAPTURE: &str = "chromium-publish.pcapng";
/// The node's media port in that capture.
const CAPTURE_MEDIA_PORT: u16 = 41585;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn chromium() -> ReplayCapture {
    ReplayCapture::read(data(CHROMIUM_CAPTURE), &ReplayOptions::default()).unwrap()
}

const AUDIO_SSRC: u32 = 0xA0D1_0000;
const LAYER_SSRCS: [u32; 3] = [0x1111_0000, 0x2222_0000, 0x3333_0000];
const LAYER_SIZES: [(u16, u16); 3] = [(320, 180), (640, 360), (1280, 720)];

fn config() -> ReplayConfig {
    ReplayConfig {
        audio_ssrc: Some(AUDIO_SSRC),
        audio_payload_type: 109,
        video_payload_type: 100,
        video_layers: LAYER_SSRCS
            .iter()
            .zip(LAYER_SIZES)
            .map(|(&ssrc, (width, height))| ReplayLayer {
                ssrc,
                width,
                height,
            })
            .collect(),
    }
}

/// Every packet of `[start, end)`, each with the time it was polled at (the source's own
/// `poll_timeout`, as a runner without delay would).
fn drain(source: &mut ReplaySource, end: Duration) -> Vec<(Duration, MediaPacket)> {
    let mut out = Vec::new();
    let mut guard = 0;
    while let Some(at) = source.poll_timeout() {
        if at >= end {
            break;
        }
        while let Some(packet) = source.poll(at) {
            out.push((at, packet));
        }
        guard += 1;
        assert!(guard < 1_000_000, "poll loop does not progress");
    }
    out
}

fn by_ssrc(packets: &[(Duration, MediaPacket)]) -> BTreeMap<u32, Vec<(Duration, MediaPacket)>> {
    let mut map: BTreeMap<u32, Vec<_>> = BTreeMap::new();
    for &(at, packet) in packets {
        map.entry(packet.ssrc).or_default().push((at, packet));
    }
    map
}

#[test]
fn chromium_capture_has_audio_and_three_simulcast_layers() {
    let capture = chromium();
    assert_eq!(capture.destination_port, CAPTURE_MEDIA_PORT);
    let audio = capture.audio.as_ref().expect("an audio stream");
    assert_eq!(audio.kind, StreamKind::Audio);
    assert_eq!(audio.payload_type, 111, "Chromium's Opus");
    assert_eq!(audio.clock_rate, 48_000);
    assert_eq!(audio.packets.len(), 254);
    // Opus at 20 ms: one packet per frame, timestamps 960 apart.
    assert_eq!(audio.frames(), audio.packets.len());
    assert!(audio
        .packets
        .windows(2)
        .all(|w| w[1].timestamp.wrapping_sub(w[0].timestamp) % 960 == 0));
    // Chromium's audio level extension was found and every packet carries it.
    assert!(capture.audio_level_extension_id.is_some());
    assert!(audio.packets.iter().all(|p| p.audio_level.is_some()));

    assert_eq!(capture.video.len(), 3, "q, h and f layers: {capture:#?}");
    let counts: Vec<usize> = capture.video.iter().map(|s| s.packets.len()).collect();
    assert_eq!(counts, [107, 184, 304]);
    let mut bitrate = 0;
    for stream in &capture.video {
        assert_eq!(stream.kind, StreamKind::Video);
        assert_eq!(stream.payload_type, 96, "Chromium's VP8");
        assert_eq!(stream.clock_rate, 90_000);
        assert!(stream.bitrate_bps() > bitrate, "sorted by bitrate");
        bitrate = stream.bitrate_bps();
        // Frames end with the marker bit.
        for pair in stream.packets.windows(2) {
            if pair[1].frame_start {
                assert!(pair[0].marker, "a frame's last packet has the marker");
            }
        }
        assert!(stream.packets.iter().all(|p| p.payload_len > 0));
    }
    // The RTX streams (payload type 97: retransmissions and padding probes) are not replayed.
    assert!(capture.skipped.iter().any(|s| s.payload_type == 97));
    assert!(capture.skipped.iter().all(|s| matches!(
        s.reason,
        SkipReason::Padding | SkipReason::Retransmission | SkipReason::TooFewPackets
    )));
    // Time span: the capture holds about 5 s of media from the first RTP packet.
    let duration = capture.duration();
    assert!(
        duration > Duration::from_millis(4_900) && duration < Duration::from_millis(5_200),
        "{duration:?}"
    );
    assert_eq!(audio.packets[0].at, Duration::ZERO, "audio came first");
    // The highest layer starts later (Chromium enables it once the estimate allows).
    assert!(capture.video[2].packets[0].at > Duration::from_millis(500));
    assert_eq!(capture.frames.unsupported_link, 0);
}

#[test]
fn keyframe_heuristic_finds_keyframes_in_every_layer() {
    let capture = chromium();
    for stream in &capture.video {
        assert!(stream.keyframes() >= 1, "{:x}", stream.ssrc);
        // Keyframes are rare: the heuristic does not fire on every larger frame.
        assert!(
            stream.keyframes() * 10 <= stream.frames(),
            "{:x}",
            stream.ssrc
        );
        // The encoder starts each layer with a keyframe.
        assert!(stream.packets[0].keyframe, "{:x}", stream.ssrc);
        // Every keyframe is at a frame start.
        assert!(stream.packets.iter().all(|p| !p.keyframe || p.frame_start));
    }
    assert!(capture
        .audio
        .as_ref()
        .unwrap()
        .packets
        .iter()
        .all(|p| !p.keyframe));
}

#[test]
fn flow_and_payload_types_can_be_named() {
    let auto = chromium();
    let by_port = ReplayCapture::read(
        data(CHROMIUM_CAPTURE),
        &ReplayOptions {
            destination_port: Some(CAPTURE_MEDIA_PORT),
            ..ReplayOptions::default()
        },
    )
    .unwrap();
    assert_eq!(by_port, auto);
    let named = ReplayCapture::read(
        data(CHROMIUM_CAPTURE),
        &ReplayOptions {
            audio_payload_types: vec![111],
            video_payload_types: vec![96],
            ..ReplayOptions::default()
        },
    )
    .unwrap();
    assert_eq!(named.audio, auto.audio);
    assert_eq!(named.video, auto.video);
    assert!(named
        .skipped
        .iter()
        .all(|s| s.payload_type != 96 && s.payload_type != 111));
    let elsewhere = ReplayCapture::read(
        data(CHROMIUM_CAPTURE),
        &ReplayOptions {
            destination_port: Some(CAPTURE_MEDIA_PORT + 1),
            ..ReplayOptions::default()
        },
    );
    assert!(matches!(
        elsewhere,
        Err(ReplayError::NoRtp { port: Some(_) })
    ));
}

#[test]
fn tag_length_is_detected_or_given() {
    // Chromium lists AES_CM_128_HMAC_SHA1_80 first and relais, the DTLS server, takes the
    // client's order: its 3-byte Opus DTX packets leave no room for a GCM tag.
    let detected = chromium();
    assert_eq!(detected.srtp_tag_len, HMAC_SHA1_80_TAG_LEN);
    let audio = detected.audio.as_ref().unwrap();
    assert!(audio.packets.iter().all(|p| p.payload_len >= 1));
    assert!(audio.packets.iter().any(|p| p.payload_len <= 3), "DTX");
    let gcm = ReplayCapture::read(
        data(CHROMIUM_CAPTURE),
        &ReplayOptions {
            srtp_tag_len: Some(GCM_TAG_LEN),
            ..ReplayOptions::default()
        },
    )
    .unwrap();
    assert_eq!(gcm.srtp_tag_len, GCM_TAG_LEN);
    let (a, b) = (&gcm.video[0].packets, &detected.video[0].packets);
    assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(b) {
        assert_eq!(
            usize::from(b.payload_len),
            usize::from(a.payload_len) + GCM_TAG_LEN - HMAC_SHA1_80_TAG_LEN
        );
    }
}

#[test]
fn replay_over_two_laps_keeps_sequence_timing_and_sizes() {
    let capture = Arc::new(chromium());
    let start = Duration::from_secs(3);
    let mut source = ReplaySource::new(Arc::clone(&capture), &config(), 7, start).unwrap();
    // Laps after the first start when the last layer (f) started.
    let loop_start = capture.video[2].packets[0].at;
    assert_eq!(source.loop_start(), loop_start);
    assert_eq!(source.period(), capture.duration() - loop_start + LOOP_GAP);
    assert_eq!(source.layer_count(), 3);
    assert!(source.has_audio());
    assert_eq!(
        source.poll_timeout(),
        Some(start),
        "first packet at the start"
    );
    // The first lap whole, the second from the loop point.
    let end = start + source.period() * 2 + loop_start;
    let sent = drain(&mut source, end);
    let streams = by_ssrc(&sent);
    assert_eq!(streams.len(), 4);

    let originals: Vec<_> = capture.streams().collect();
    let ssrcs = [AUDIO_SSRC, LAYER_SSRCS[0], LAYER_SSRCS[1], LAYER_SSRCS[2]];
    for (original, ssrc) in originals.iter().zip(ssrcs) {
        let replayed = &streams[&ssrc];
        let n = original.packets.len();
        // Each stream's second lap starts with its first frame from the loop point on.
        let loop_first = original
            .packets
            .iter()
            .position(|p| p.frame_start && p.at >= loop_start)
            .unwrap();
        // Per packet sent: its lap and its index in the capture.
        let expected: Vec<(u32, usize)> = (0..n)
            .map(|i| (0, i))
            .chain((loop_first..n).map(|i| (1, i)))
            .collect();
        assert_eq!(replayed.len(), expected.len(), "both laps, {ssrc:x}");
        for (&(at, packet), &(lap, i)) in replayed.iter().zip(&expected) {
            let captured = &original.packets[i];
            // Timing: the capture's, shifted by the start and the lap.
            assert_eq!(at, start + source.period() * lap + captured.at);
            // Sizes and markers preserved.
            assert_eq!(packet.payload.len(), usize::from(captured.payload_len));
            assert_eq!(packet.marker, captured.marker);
            let expected_kind = if ssrc == AUDIO_SSRC {
                MediaKind::Audio
            } else {
                MediaKind::Video {
                    layer: LAYER_SSRCS.iter().position(|&s| s == ssrc).unwrap() as u8,
                }
            };
            assert_eq!(packet.kind, expected_kind);
            assert_eq!(
                packet.payload_type,
                if ssrc == AUDIO_SSRC { 109 } else { 100 }
            );
            assert_eq!(packet.audio_level, captured.audio_level);
        }
        // Inter-packet gaps within a lap equal the capture's within 1 ms (here: exactly).
        for pair in replayed.windows(2).zip(expected.windows(2)) {
            let (sent_pair, captured_pair) = pair;
            if captured_pair[0].0 != captured_pair[1].0 {
                continue;
            }
            let gap = sent_pair[1].0 - sent_pair[0].0;
            let captured =
                original.packets[captured_pair[1].1].at - original.packets[captured_pair[0].1].at;
            assert!(gap.abs_diff(captured) <= Duration::from_millis(1));
        }
        // Sequence numbers: the capture's progression, continuous across the lap boundary.
        for w in replayed.windows(2) {
            assert_eq!(
                w[1].1.sequence_number,
                w[0].1.sequence_number.wrapping_add(1),
                "{ssrc:x}"
            );
        }
        assert_eq!(
            replayed[0].1.sequence_number,
            original.packets[0].sequence_number
        );
        // Timestamps: the capture's within a lap; the next lap advances by the period.
        let clock = u64::from(original.clock_rate);
        let per_lap = (clock * source.period().as_nanos() as u64 / 1_000_000_000) as u32;
        for (&(_, packet), &(lap, i)) in replayed.iter().zip(&expected) {
            assert_eq!(
                packet.timestamp,
                original.packets[i]
                    .timestamp
                    .wrapping_add(per_lap.wrapping_mul(lap))
            );
        }
    }
    // After two laps the third starts where it should.
    assert_eq!(source.poll_timeout(), Some(end));
}

/// Chromium turns its f layer on about a second into the capture: a lap that replayed that
/// start-up again would stop the 720p layer for as long, a freeze for whoever watches it
/// on stage. Across the loop every layer keeps its frame rate, and the new lap opens with
/// keyframes (Chromium's own, sent on all layers when f started).
#[test]
fn every_layer_keeps_sending_across_the_loop() {
    let capture = Arc::new(chromium());
    let mut source = ReplaySource::new(Arc::clone(&capture), &config(), 5, Duration::ZERO).unwrap();
    let boundary = capture.duration() + LOOP_GAP;
    let sent = drain(&mut source, boundary + Duration::from_secs(2));
    for ssrc in LAYER_SSRCS {
        // A frame's first packet: a new RTP timestamp on the layer.
        let layer: Vec<&(Duration, MediaPacket)> =
            sent.iter().filter(|(_, p)| p.ssrc == ssrc).collect();
        let frames: Vec<(Duration, MediaPacket)> = layer
            .iter()
            .enumerate()
            .filter(|&(i, (_, p))| i == 0 || layer[i - 1].1.timestamp != p.timestamp)
            .map(|(_, &&frame)| frame)
            .collect();
        let longest = frames
            .windows(2)
            .filter(|w| w[1].0 > Duration::from_secs(2))
            .map(|w| w[1].0 - w[0].0)
            .max()
            .unwrap();
        assert!(
            longest < Duration::from_millis(200),
            "{ssrc:x}: {longest:?}"
        );
        let first_of_lap = frames.iter().find(|(at, _)| *at >= boundary).unwrap();
        assert!(first_of_lap.1.keyframe_start, "{ssrc:x}");
        assert!(
            first_of_lap.0 - boundary < Duration::from_millis(100),
            "{ssrc:x}"
        );
    }
}

#[test]
fn replayed_video_reads_as_vp8_with_keyframes() {
    let capture = Arc::new(chromium());
    let mut source = ReplaySource::new(Arc::clone(&capture), &config(), 1, Duration::ZERO).unwrap();
    let period = source.period();
    let sent = drain(&mut source, period);
    let mut map = ExtensionMap::new();
    map.insert(1, ExtensionKind::AudioLevel).unwrap();
    let writer = RtpWriter::new(ExtensionIds::from_map(&map)).unwrap();
    let mut out = Vec::new();
    let mut keyframes: BTreeMap<u32, usize> = BTreeMap::new();
    for (_, packet) in &sent {
        out.clear();
        writer
            .write(packet, &SendExtensions::default(), &mut out)
            .unwrap();
        let parsed = RtpPacket::parse(&out[..]).unwrap();
        assert_eq!(parsed.ssrc(), packet.ssrc);
        assert_eq!(parsed.sequence_number(), packet.sequence_number);
        let MediaKind::Video { layer } = packet.kind else {
            let level = AudioLevel::parse(parsed.extension(1).unwrap()).unwrap();
            assert_eq!(Some(level), packet.audio_level);
            continue;
        };
        let payload = parsed.payload();
        let descriptor = vp8::parse(payload).unwrap();
        if packet.keyframe_start {
            assert!(descriptor.starts_frame());
            let size = vp8::keyframe_dimensions(payload, &descriptor);
            assert_eq!(size, Some(LAYER_SIZES[usize::from(layer)]));
            *keyframes.entry(packet.ssrc).or_default() += 1;
        }
    }
    for (layer, stream) in capture.video.iter().enumerate() {
        // The heuristic's keyframes, each layer's first frame included.
        assert_eq!(keyframes[&LAYER_SSRCS[layer]], stream.keyframes());
    }
    // The first packet of each layer is a keyframe start, so the node can forward at once.
    for ssrc in LAYER_SSRCS {
        let first = sent.iter().find(|(_, p)| p.ssrc == ssrc).unwrap();
        assert!(first.1.keyframe_start);
    }
}

#[test]
fn layers_switch_and_keyframes_are_requested() {
    let capture = Arc::new(chromium());
    let mut source = ReplaySource::new(capture, &config(), 3, Duration::ZERO).unwrap();
    let one = Duration::from_secs(1);
    let mut sent = drain(&mut source, one);
    source.set_layer_active(one, 1, false).unwrap();
    assert_eq!(source.active_layers(), LayerSet::first(3).without(1));
    assert_eq!(
        source.request_keyframe(one, 1).unwrap(),
        KeyframeRequest::Inactive
    );
    let two = Duration::from_secs(2);
    let off = drain(&mut source, two);
    // A frame begun before the switch is finished, nothing after.
    let late_h: Vec<_> = off
        .iter()
        .filter(|(_, p)| p.ssrc == LAYER_SSRCS[1])
        .collect();
    assert!(late_h.iter().all(|(_, p)| !p.keyframe_start));
    assert!(late_h.len() <= 5);
    sent.extend(off);
    source.set_active_layers(two, LayerSet::first(3));
    // A requested keyframe on layer 0.
    assert_eq!(
        source.request_keyframe(two, 0).unwrap(),
        KeyframeRequest::NextFrame
    );
    assert_eq!(
        source.request_keyframe(two, 0).unwrap(),
        KeyframeRequest::AlreadyPending
    );
    assert!(source.request_keyframe(two, 7).is_err());
    let after = drain(&mut source, Duration::from_secs(3));
    let first_of = |ssrc| after.iter().find(|(_, p)| p.ssrc == ssrc).unwrap().1;
    assert!(
        first_of(LAYER_SSRCS[0]).keyframe_start,
        "requested keyframe"
    );
    assert!(
        first_of(LAYER_SSRCS[1]).keyframe_start,
        "re-activated layer"
    );
    sent.extend(after);
    // Sequence numbers of the switched layer stay continuous over the pause.
    let h: Vec<u16> = sent
        .iter()
        .filter(|(_, p)| p.ssrc == LAYER_SSRCS[1])
        .map(|(_, p)| p.sequence_number)
        .collect();
    assert!(h.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
}

#[test]
fn keyframe_requests_are_rate_limited() {
    let capture = Arc::new(chromium());
    let mut source = ReplaySource::new(Arc::clone(&capture), &config(), 3, Duration::ZERO).unwrap();
    let early = Duration::from_millis(150);
    drain(&mut source, early);
    // Layer 0's first keyframe went out at its first packet's capture time.
    let first = capture.video[0].packets[0].at;
    let KeyframeRequest::Deferred { not_before } = source.request_keyframe(early, 0).unwrap()
    else {
        panic!("a request 150 ms after a keyframe is deferred");
    };
    assert_eq!(
        not_before,
        first + relais_loadtest::media::KEYFRAME_MIN_INTERVAL
    );
    let sent = drain(&mut source, Duration::from_secs(1));
    let keyframe_at: Vec<Duration> = sent
        .iter()
        .filter(|(_, p)| p.ssrc == LAYER_SSRCS[0] && p.keyframe_start)
        .map(|(at, _)| *at)
        .collect();
    // The request is answered by the first frame at or after `not_before`, or earlier by a
    // keyframe of the capture's own, and only once.
    let expected = capture.video[0]
        .packets
        .iter()
        .find(|p| p.frame_start && p.at >= early && (p.keyframe || p.at >= not_before))
        .unwrap()
        .at;
    assert_eq!(keyframe_at.first(), Some(&expected), "{keyframe_at:?}");
    let captured_after: Vec<Duration> = capture.video[0]
        .packets
        .iter()
        .filter(|p| p.keyframe && p.at >= early && p.at < Duration::from_secs(1))
        .map(|p| p.at)
        .collect();
    let extra = usize::from(!captured_after.contains(&expected));
    assert_eq!(keyframe_at.len(), captured_after.len() + extra);
}

#[test]
fn late_polls_drop_frames_without_sequence_gaps() {
    let capture = Arc::new(chromium());
    let mut source = ReplaySource::new(capture, &config(), 3, Duration::ZERO).unwrap();
    let mut sent = drain(&mut source, Duration::from_secs(1));
    // The runner stalls for 30 s (six laps), then polls again.
    let late = Duration::from_secs(31);
    let mut burst = Vec::new();
    while let Some(packet) = source.poll(late) {
        burst.push((late, packet));
    }
    assert!(
        burst.len() < 60,
        "no burst of stale packets: {}",
        burst.len()
    );
    sent.extend(burst);
    sent.extend(drain(&mut source, Duration::from_secs(33)));
    for (ssrc, packets) in by_ssrc(&sent) {
        assert!(
            packets
                .windows(2)
                .all(|w| w[1].1.sequence_number == w[0].1.sequence_number.wrapping_add(1)),
            "{ssrc:x}"
        );
    }
}

#[test]
fn mapping_follows_the_participants_ssrcs() {
    let capture = Arc::new(chromium());
    let one_layer = ReplayConfig {
        audio_ssrc: None,
        video_layers: config().video_layers[..1].to_vec(),
        ..config()
    };
    let mut source =
        ReplaySource::new(Arc::clone(&capture), &one_layer, 0, Duration::ZERO).unwrap();
    assert!(!source.has_audio());
    assert_eq!(source.layer_count(), 1);
    let sent = drain(&mut source, Duration::from_secs(2));
    assert!(sent.iter().all(|(_, p)| p.ssrc == LAYER_SSRCS[0]));
    let nothing = ReplayConfig {
        audio_ssrc: None,
        video_layers: Vec::new(),
        ..config()
    };
    assert!(matches!(
        ReplaySource::new(capture, &nothing, 0, Duration::ZERO),
        Err(ReplayError::InvalidConfig(_))
    ));
}

// ---- hand-made captures ----

/// An RTP packet (with a one-byte audio-level extension) plus a 16-byte "tag".
fn rtp(ssrc: u32, pt: u8, seq: u16, ts: u32, marker: bool, payload: usize, level: u8) -> Vec<u8> {
    let mut p = vec![0x90, pt | if marker { 0x80 } else { 0 }];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x10, level, 0, 0]);
    p.extend(std::iter::repeat_n(0x5A, payload + 16));
    p
}

fn udp_ipv4(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
    p.extend_from_slice(&src_port.to_be_bytes());
    p.extend_from_slice(&dst_port.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

fn udp_ipv6(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[17, 64]);
    p.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    p.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    p.extend_from_slice(&src_port.to_be_bytes());
    p.extend_from_slice(&dst_port.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

#[derive(Clone, Copy, Debug)]
enum Link {
    Ethernet,
    Sll,
    Sll2,
    Raw,
    Null,
}

impl Link {
    fn code(self) -> u32 {
        match self {
            Link::Ethernet => 1,
            Link::Sll => 113,
            Link::Sll2 => 276,
            Link::Raw => 101,
            Link::Null => 0,
        }
    }

    fn frame(self, ip: &[u8], v6: bool) -> Vec<u8> {
        let ethertype: [u8; 2] = if v6 { [0x86, 0xDD] } else { [0x08, 0x00] };
        let mut f = match self {
            Link::Ethernet => {
                let mut f = vec![0; 12];
                f.extend_from_slice(&ethertype);
                f
            }
            Link::Sll => {
                let mut f = vec![0; 14];
                f.extend_from_slice(&ethertype);
                f
            }
            Link::Sll2 => {
                let mut f = ethertype.to_vec();
                f.extend_from_slice(&[0; 18]);
                f
            }
            Link::Raw => Vec::new(),
            Link::Null => if v6 { 30u32 } else { 2 }.to_le_bytes().to_vec(),
        };
        f.extend_from_slice(ip);
        f
    }
}

/// A microsecond pcap of the given `(time, frame)`s; each frame cut to `snaplen`.
fn pcap(link: Link, frames: &[(Duration, Vec<u8>)], snaplen: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&(snaplen as u32).to_le_bytes());
    out.extend_from_slice(&link.code().to_le_bytes());
    for (time, frame) in frames {
        let kept = frame.len().min(snaplen);
        out.extend_from_slice(&(time.as_secs() as u32).to_le_bytes());
        out.extend_from_slice(&time.subsec_micros().to_le_bytes());
        out.extend_from_slice(&(kept as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame[..kept]);
    }
    out
}

/// 2 s of a synthetic call toward port 10000: Opus (PT 111, 20 ms), two VP8 layers (PT 96,
/// 30 fps, a keyframe every second four times the delta frames), an RTX padding stream
/// (PT 97), RTCP and STUN; plus a smaller flow toward another port.
fn synthetic_call(link: Link, v6: bool) -> Vec<(Duration, Vec<u8>)> {
    let base = Duration::from_secs(1_700_000_000);
    let mut frames = Vec::new();
    let udp = |sp, dp, p: &[u8]| {
        let ip = if v6 {
            udp_ipv6(sp, dp, p)
        } else {
            udp_ipv4(sp, dp, p)
        };
        link.frame(&ip, v6)
    };
    for i in 0..100u32 {
        let t = base + Duration::from_millis(u64::from(i) * 20);
        let level = 30 + (i % 5) as u8;
        frames.push((
            t,
            udp(
                5000,
                10000,
                &rtp(0xAA, 111, 100 + i as u16, 960 * i, i == 0, 80, level),
            ),
        ));
        if i % 10 == 0 {
            frames.push((t, udp(5000, 10000, &[0x80, 200, 0, 6, 0, 0, 0, 0xAA])));
            frames.push((t, udp(5000, 10000, &[0, 1, 0, 8, 0x21, 0x12, 0xA4, 0x42])));
            let mut padding = rtp(0xCC, 97, i as u16, 0, false, 200, 0);
            padding[0] |= 0x20;
            frames.push((t, udp(5000, 10000, &padding)));
        }
        frames.push((
            t,
            udp(
                6000,
                20000,
                &rtp(0xEE, 111, i as u16, 960 * i, false, 50, 30),
            ),
        ));
    }
    for f in 0..60u32 {
        let t = base + Duration::from_micros(u64::from(f) * 33_333);
        let key = f % 30 == 0;
        for (layer, ssrc) in [(1usize, 0xB1u32), (2, 0xB2)] {
            let packets = if key { 4 * layer } else { layer };
            for k in 0..packets {
                let seq = (f * 20 + k as u32) as u16;
                let bytes = rtp(ssrc, 96, seq, 3000 * f, k + 1 == packets, 900, 0);
                frames.push((
                    t + Duration::from_micros(k as u64 * 100),
                    udp(5000, 10000, &bytes),
                ));
            }
        }
    }
    frames.sort_by_key(|(t, _)| *t);
    frames
}

#[test]
fn every_link_type_and_ip_version_is_read() {
    for link in [Link::Ethernet, Link::Sll, Link::Sll2, Link::Raw, Link::Null] {
        for v6 in [false, true] {
            let frames = synthetic_call(link, v6);
            // Full frames and a 96-byte snap length read the same.
            for snaplen in [65_535, 96] {
                let file = pcap(link, &frames, snaplen);
                let capture = ReplayCapture::parse(&file, &ReplayOptions::default())
                    .unwrap_or_else(|e| panic!("{link:?} v6={v6} snaplen={snaplen}: {e}"));
                assert_eq!(capture.destination_port, 10000);
                let audio = capture.audio.as_ref().unwrap();
                assert_eq!(audio.ssrc, 0xAA);
                assert_eq!(audio.packets.len(), 100);
                assert_eq!(audio.clock_rate, 48_000);
                assert!(audio.packets.iter().all(|p| p.payload_len == 80));
                assert!(audio.packets.iter().all(|p| p
                    .audio_level
                    .is_some_and(|l| !l.voice_activity && (30..35).contains(&l.level))));
                let video: Vec<u32> = capture.video.iter().map(|s| s.ssrc).collect();
                assert_eq!(video, [0xB1, 0xB2], "{link:?} v6={v6}");
                for stream in &capture.video {
                    assert!(stream.packets.iter().all(|p| p.payload_len == 900));
                    assert_eq!(stream.frames(), 60);
                    assert_eq!(stream.keyframes(), 2, "frames 0 and 30");
                }
                assert!(capture.skipped.iter().any(|s| s.ssrc == 0xCC));
                assert_eq!(capture.duration(), Duration::from_millis(99 * 20));
            }
        }
    }
}

#[test]
fn an_empty_or_rtp_free_capture_is_an_error() {
    let empty = pcap(Link::Ethernet, &[], 65_535);
    assert!(matches!(
        ReplayCapture::parse(&empty, &ReplayOptions::default()),
        Err(ReplayError::NoRtp { port: None })
    ));
    let stun = pcap(
        Link::Raw,
        &[(
            Duration::ZERO,
            udp_ipv4(1, 2, &[0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42]),
        )],
        65_535,
    );
    assert!(matches!(
        ReplayCapture::parse(&stun, &ReplayOptions::default()),
        Err(ReplayError::NoRtp { .. })
    ));
    // A handful of RTP packets: too few for a stream.
    let few: Vec<_> = (0..3u32)
        .map(|i| {
            (
                Duration::from_millis(u64::from(i) * 20),
                udp_ipv4(1, 2, &rtp(1, 111, i as u16, 960 * i, false, 50, 0)),
            )
        })
        .collect();
    assert!(matches!(
        ReplayCapture::parse(&pcap(Link::Raw, &few, 65_535), &ReplayOptions::default()),
        Err(ReplayError::NoStreams { skipped: 1 })
    ));
}

#[test]
fn truncated_and_garbage_files_are_errors() {
    let file = std::fs::read(data(CHROMIUM_CAPTURE)).unwrap();
    let options = ReplayOptions::default();
    for cut in [file.len() - 1, file.len() - 100, file.len() / 2, 30, 4] {
        let result = ReplayCapture::parse(&file[..cut], &options);
        assert!(
            matches!(
                result,
                Err(ReplayError::Truncated { .. } | ReplayError::Malformed { .. })
            ),
            "cut at {cut}: {result:?}"
        );
    }
    assert!(matches!(
        ReplayCapture::parse(b"", &options),
        Err(ReplayError::UnknownFormat)
    ));
    assert!(matches!(
        ReplayCapture::parse(b"GET / HTTP/1.1\r\n\r\n", &options),
        Err(ReplayError::UnknownFormat)
    ));
    let legacy = pcap(
        Link::Ethernet,
        &synthetic_call(Link::Ethernet, false),
        65_535,
    );
    assert!(matches!(
        ReplayCapture::parse(&legacy[..legacy.len() - 3], &options),
        Err(ReplayError::Truncated { .. })
    ));
    assert!(matches!(
        ReplayCapture::read(data("no-such-capture.pcap"), &options),
        Err(ReplayError::Io(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes, with or without a valid magic number, never panic.
    #[test]
    fn arbitrary_bytes_never_panic(
        magic in prop::sample::select(vec![
            vec![], vec![0xd4, 0xc3, 0xb2, 0xa1], vec![0x0a, 0x0d, 0x0d, 0x0a],
        ]),
        body in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = magic;
        bytes.extend(body);
        let _ = ReplayCapture::parse(&bytes, &ReplayOptions::default());
    }

    /// The real capture with bytes flipped and cut short never panics, and replaying
    /// whatever still reads does not either.
    #[test]
    fn mutated_captures_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = std::fs::read(data(CHROMIUM_CAPTURE)).unwrap();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let keep = cut.index(bytes.len() + 1);
        for input in [&bytes[..], &bytes[..keep]] {
            if let Ok(capture) = ReplayCapture::parse(input, &ReplayOptions::default()) {
                if let Ok(mut source) =
                    ReplaySource::new(Arc::new(capture), &config(), 0, Duration::ZERO)
                {
                    let _ = drain(&mut source, Duration::from_millis(300));
                }
            }
        }
    }

    /// Hand-made pcaps of random RTP-looking datagrams on every link type never panic.
    #[test]
    fn random_datagrams_never_panic(
        link in prop::sample::select(vec![Link::Ethernet, Link::Sll, Link::Sll2, Link::Raw, Link::Null]),
        datagrams in prop::collection::vec(
            (0u64..5_000, prop::collection::vec(any::<u8>(), 0..64), any::<bool>()),
            0..64,
        ),
        snaplen in 16usize..200,
    ) {
        let frames: Vec<_> = datagrams
            .into_iter()
            .map(|(ms, mut payload, v6)| {
                if let Some(first) = payload.first_mut() {
                    *first = 0x80 | (*first & 0x3F);
                }
                let ip = if v6 { udp_ipv6(1, 2, &payload) } else { udp_ipv4(1, 2, &payload) };
                (Duration::from_millis(ms), link.frame(&ip, v6))
            })
            .collect();
        let _ = ReplayCapture::parse(&pcap(link, &frames, snaplen), &ReplayOptions::default());
    }
}
