//! The H264 simulcast model end to end through the public API: a scenario with
//! `codec = "H264"` gives RFC 6184 packets that the node's parser reads (keyframes from the
//! STAP-A with the SPS, FU-A fragments under the MTU), and the receive side's reading of
//! decrypted first packets ([`inspect::frame_start`]) finds keyframes and their resolution
//! for H264 and VP8 alike.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::time::Duration;

use relais_loadtest::media::{
    inspect, MediaKind, MediaPacket, VideoCodec, VideoConfig, VideoSource,
};
use relais_loadtest::scenario::Scenario;
use relais_rtp::codec::h264::{self, H264Packet};

const SSRCS: [u32; 3] = [0x2000, 0x2001, 0x2002];

fn source(scenario: &str, payload_type: u8) -> VideoSource {
    let scenario = Scenario::load(scenario).unwrap();
    let config = VideoConfig::from_scenario(&scenario.video, &SSRCS, payload_type).unwrap();
    VideoSource::new(config, 7, Duration::ZERO).unwrap()
}

/// Every packet the source sends in `until`, polled at each timeout.
fn run(source: &mut VideoSource, until: Duration) -> Vec<MediaPacket> {
    let mut packets = Vec::new();
    while let Some(t) = source.poll_timeout().filter(|&t| t < until) {
        while let Some(packet) = source.poll(t) {
            packets.push(packet);
        }
    }
    packets
}

#[test]
fn small_h264_sends_h264_with_keyframes_that_carry_the_layer_resolution() {
    let mut source = source("small-h264", 107);
    assert_eq!(source.codec(), VideoCodec::H264);
    let packets = run(&mut source, Duration::from_secs(12));
    let mtu = 1160;
    // Per layer: keyframe heights read from the first packet of every keyframe.
    let mut keyframes: BTreeMap<u8, Vec<u32>> = BTreeMap::new();
    let mut frames_started = 0;
    for (i, packet) in packets.iter().enumerate() {
        let payload = packet.payload.to_vec();
        assert!(payload.len() <= mtu, "{} bytes", payload.len());
        assert_eq!(packet.payload_type, 107);
        let descriptor = h264::parse(&payload).unwrap();
        // The node switches layers on this: keyframe starts and only those.
        let first_of_frame = i == 0 || packets[i - 1].marker;
        assert_eq!(
            descriptor.is_keyframe() && first_of_frame,
            packet.keyframe_start,
            "packet {i}"
        );
        let start = inspect::frame_start(VideoCodec::H264, &payload);
        if !first_of_frame {
            // Inside a frame only the IDR's first fragment (after the STAP-A) reads as a
            // start; a receiver never decrypts it (its timestamp is not new).
            let idr_start = matches!(descriptor.packet, H264Packet::FuA { start: true, .. })
                && descriptor.has_idr;
            assert_eq!(start.is_some(), idr_start, "packet {i}: {descriptor:?}");
            continue;
        }
        if let Some(start) = start {
            frames_started += 1;
            assert_eq!(start.keyframe, packet.keyframe_start);
            if start.keyframe {
                assert!(matches!(
                    descriptor.packet,
                    H264Packet::StapA { nal_count: 2 }
                ));
                let MediaKind::Video { layer } = packet.kind else {
                    panic!("audio from a video source");
                };
                let (_, height) = start.resolution.unwrap();
                keyframes.entry(layer).or_default().push(height);
            } else {
                assert_eq!(start.resolution, None);
            }
        }
    }
    // 12 s: 15 + 30 + 30 fps, and keyframes at 0 s and 10 s on each layer.
    assert_eq!(frames_started, 12 * (15 + 30 + 30));
    assert_eq!(keyframes[&0], [180, 180]);
    assert_eq!(keyframes[&1], [360, 360]);
    assert_eq!(keyframes[&2], [720, 720]);
    // FU-A is used: the 1500 kbps layer's frames do not fit one packet.
    let fragments = packets
        .iter()
        .filter(|p| {
            matches!(
                h264::parse(&p.payload.to_vec()).unwrap().packet,
                H264Packet::FuA { .. }
            )
        })
        .count();
    assert!(fragments > 1000, "{fragments}");
}

#[test]
fn vp8_frame_starts_tell_keyframes_and_their_resolution() {
    let mut source = source("small", 100);
    assert_eq!(source.codec(), VideoCodec::Vp8);
    let packets = run(&mut source, Duration::from_millis(200));
    let mut heights = Vec::new();
    let mut deltas = 0;
    for (i, packet) in packets.iter().enumerate() {
        let payload = packet.payload.to_vec();
        let start = inspect::frame_start(VideoCodec::Vp8, &payload);
        let first_of_frame = i == 0 || packets[i - 1].marker;
        assert_eq!(start.is_some(), first_of_frame, "packet {i}");
        match start {
            Some(s) if s.keyframe => heights.push(s.resolution.unwrap()),
            Some(s) => {
                assert_eq!(s.resolution, None);
                deltas += 1;
            }
            None => {}
        }
    }
    // The first frame of each layer is a keyframe, the rest deltas.
    assert_eq!(heights, [(320, 180), (640, 360), (1280, 720)]);
    assert!(deltas > 10, "{deltas}");
    // Garbage and continuation packets are no frame start.
    assert_eq!(inspect::frame_start(VideoCodec::Vp8, &[]), None);
    assert_eq!(
        inspect::frame_start(VideoCodec::H264, &[0x7C, 0x05, 1, 2]),
        None
    );
    assert_eq!(inspect::frame_start(VideoCodec::H264, &[0x1D]), None);
}

#[test]
fn h264_needs_even_dimensions() {
    let mut scenario = Scenario::load("small-h264").unwrap();
    scenario.video.layers[0].height = 181;
    assert!(VideoConfig::from_scenario(&scenario.video, &SSRCS, 107).is_err());
    scenario.video.codec = "VP9".into();
    assert!(VideoConfig::from_scenario(&scenario.video, &SSRCS, 107).is_err());
}
