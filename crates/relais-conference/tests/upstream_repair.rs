//! Upstream repair through [`Conference`]: a packet a sender lost on the way to the node is
//! asked for with a NACK to that sender, its RTX is unwrapped, and the receiver gets the
//! original back in its gap; duplicate and padding-only RTX are dropped and counted.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::time::{Duration, Instant};

use common::{rtp, vp8_payload};
use relais_conference::allocation::VideoType;
use relais_conference::{
    CodecName, Conference, ConferenceConfig, ConferenceOutput, EndpointDescription, EndpointId,
    MediaKind, NegotiatedCodec, PublishedSource,
};
use relais_rtp::extensions::{ExtensionKind, ExtensionMap};
use relais_rtp::rtcp::{RtcpCompound, RtcpKind};
use relais_rtp::rtp::RtpPacket;

const ALICE: EndpointId = EndpointId(1);
const BOB: EndpointId = EndpointId(2);
const VIDEO_SSRC: u32 = 0x1000;
const RTX_SSRC: u32 = 0x1001;
/// Alice's payload types.
const VP8_PT: u8 = 96;
const RTX_PT: u8 = 97;
/// Bob's payload types.
const BOB_VP8_PT: u8 = 100;
const EXT_ABS_CAPTURE: u8 = 7;

fn description(name: &str, vp8_pt: u8, rtx_pt: u8) -> EndpointDescription {
    let mut extensions = ExtensionMap::new();
    extensions
        .insert(EXT_ABS_CAPTURE, ExtensionKind::AbsCaptureTime)
        .unwrap();
    EndpointDescription {
        name: name.into(),
        codecs: vec![NegotiatedCodec {
            payload_type: vp8_pt,
            name: CodecName::Vp8,
            clock_rate: 90_000,
            rtx_payload_type: Some(rtx_pt),
        }],
        extensions,
    }
}

fn conference(t0: Instant) -> Conference {
    let mut c = Conference::new(
        t0,
        ConferenceConfig {
            bandwidth_estimation: false,
            ..ConferenceConfig::default()
        },
    );
    c.add_endpoint(t0, ALICE, description("alice", VP8_PT, RTX_PT))
        .unwrap();
    c.add_endpoint(t0, BOB, description("bob", BOB_VP8_PT, 101))
        .unwrap();
    c.set_sources(
        t0,
        ALICE,
        vec![PublishedSource {
            name: "alice-v0".into(),
            kind: MediaKind::Video,
            ssrcs: vec![VIDEO_SSRC],
            rtx: vec![(VIDEO_SSRC, RTX_SSRC)],
            video_type: VideoType::Camera,
        }],
    )
    .unwrap();
    c
}

/// Alice's VP8 packet `seq` (picture id = seq, one packet per frame).
fn media(seq: u16, keyframe: bool) -> Vec<u8> {
    rtp(
        VP8_PT,
        true,
        seq,
        u32::from(seq) * 3000,
        VIDEO_SSRC,
        &[(EXT_ABS_CAPTURE, &[1, 2, 3, 4, 5, 6, 7, 8])],
        &vp8_payload(seq, seq as u8, keyframe),
    )
}

/// Alice's RTX retransmission of `original` with RTX sequence number `rtx_seq`.
fn rtx_of(original: &[u8], rtx_seq: u16) -> Vec<u8> {
    let parsed = RtpPacket::parse(original).unwrap();
    let mut payload = parsed.sequence_number().to_be_bytes().to_vec();
    payload.extend_from_slice(parsed.payload());
    rtp(
        RTX_PT,
        parsed.marker(),
        rtx_seq,
        parsed.timestamp(),
        RTX_SSRC,
        &[(EXT_ABS_CAPTURE, &[1, 2, 3, 4, 5, 6, 7, 8])],
        &payload,
    )
}

/// A padding-only RTX packet (a bandwidth probe): P bit, no payload, 16 bytes of padding.
fn padding_rtx(rtx_seq: u16) -> Vec<u8> {
    let mut p = rtp(RTX_PT, false, rtx_seq, 0, RTX_SSRC, &[], &[]);
    p[0] |= 0x20;
    p.extend_from_slice(&[0; 15]);
    p.push(16);
    p
}

struct Drained {
    rtp_to_bob: Vec<Vec<u8>>,
    /// `(sender ssrc, media ssrc, sequence numbers)` of the NACKs to Alice.
    nacks_to_alice: Vec<(u32, u32, Vec<u16>)>,
}

fn drain(c: &mut Conference) -> Drained {
    let mut drained = Drained {
        rtp_to_bob: Vec::new(),
        nacks_to_alice: Vec::new(),
    };
    while let Some(output) = c.poll_output() {
        match output {
            ConferenceOutput::Rtp { to: BOB, packet } => drained.rtp_to_bob.push(packet),
            ConferenceOutput::Rtcp { to: ALICE, packet } => {
                for view in RtcpCompound::new(&packet) {
                    let view = view.unwrap();
                    if view.kind() == RtcpKind::Nack {
                        drained.nacks_to_alice.push((
                            view.sender_ssrc().unwrap(),
                            view.media_ssrc().unwrap(),
                            view.nack_pairs().sequence_numbers().collect(),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    drained
}

/// A conference where Bob receives Alice's video from packet 10 (a key frame) on.
fn forwarding(t0: Instant) -> Conference {
    let mut c = conference(t0);
    c.handle_rtp(t0, ALICE, &media(1, true));
    c.handle_timeout(t0 + Duration::from_millis(1));
    for seq in 2..10 {
        c.handle_rtp(t0 + Duration::from_millis(2), ALICE, &media(seq, false));
    }
    c.handle_rtp(t0 + Duration::from_millis(2), ALICE, &media(10, true));
    let d = drain(&mut c);
    assert_eq!(d.rtp_to_bob.len(), 1, "bob receives from the key frame on");
    assert!(d.nacks_to_alice.is_empty(), "nothing lost");
    c
}

#[test]
fn a_packet_lost_upstream_is_nacked_repaired_from_rtx_and_forwarded_in_its_gap() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut c = forwarding(t0);
    let before = c.stats();
    c.handle_rtp(ms(10), ALICE, &media(11, false));
    // 12 is lost between Alice and the node.
    let lost = media(12, false);
    c.handle_rtp(ms(20), ALICE, &media(13, false));
    let d = drain(&mut c);
    let forwarded: Vec<u16> = d
        .rtp_to_bob
        .iter()
        .map(|p| RtpPacket::parse(p.as_slice()).unwrap().sequence_number())
        .collect();
    assert_eq!(forwarded, [11, 13]);
    // The gap is asked for at once, from the node's SSRC for Alice.
    assert_eq!(
        d.nacks_to_alice,
        [(Conference::node_ssrc(ALICE), VIDEO_SSRC, vec![12])]
    );
    let s = c.stats();
    assert_eq!(s.upstream_nacks_sent - before.upstream_nacks_sent, 1);
    assert_eq!(
        s.upstream_nacked_packets - before.upstream_nacked_packets,
        1
    );

    // Alice answers with RTX: Bob gets packet 12 in its gap, on Alice's SSRC with his
    // payload type, payload byte for byte the original's.
    c.handle_rtp(ms(30), ALICE, &rtx_of(&lost, 500));
    let d = drain(&mut c);
    assert_eq!(d.rtp_to_bob.len(), 1);
    let repaired = RtpPacket::parse(d.rtp_to_bob[0].as_slice()).unwrap();
    let original = RtpPacket::parse(lost.as_slice()).unwrap();
    assert_eq!(repaired.sequence_number(), 12);
    assert_eq!(repaired.ssrc(), VIDEO_SSRC);
    assert_eq!(repaired.payload_type(), BOB_VP8_PT);
    assert_eq!(repaired.timestamp(), original.timestamp());
    assert_eq!(repaired.payload(), original.payload());
    assert_eq!(c.stats().publisher_rtx_recovered, 1);

    // The repaired packet is in the cache: Bob's own NACK for it is answered.
    let nack = relais_rtp::rtcp::feedback::nack(0xB0B, VIDEO_SSRC, &[12]).unwrap();
    let nack = relais_rtp::rtcp::RtcpPacket::from(nack).to_bytes().unwrap();
    let retransmitted = c.stats().retransmitted;
    c.handle_rtcp(ms(31), BOB, &nack);
    assert_eq!(c.stats().retransmitted, retransmitted + 1);
    drain(&mut c);

    // A second RTX of 12 repairs nothing: dropped and counted.
    c.handle_rtp(ms(40), ALICE, &rtx_of(&lost, 501));
    assert!(drain(&mut c).rtp_to_bob.is_empty());
    assert_eq!(c.stats().publisher_rtx_duplicate, 1);

    // Padding-only RTX (a probe) is dropped.
    let dropped = c.stats().dropped_publisher_rtx;
    c.handle_rtp(ms(41), ALICE, &padding_rtx(502));
    assert!(drain(&mut c).rtp_to_bob.is_empty());
    assert_eq!(c.stats().dropped_publisher_rtx, dropped + 1);
    assert_eq!(c.stats().publisher_rtx_recovered, 1);
}

#[test]
fn a_missing_packet_is_asked_for_again_until_given_up() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut c = forwarding(t0);
    c.handle_rtp(ms(10), ALICE, &media(12, false));
    assert_eq!(
        drain(&mut c).nacks_to_alice.len(),
        1,
        "11 asked for at once"
    );
    let mut requests = 1;
    let mut now = ms(10);
    // Driven by the conference's timer, as the node does.
    while now < ms(2_000) {
        now = c
            .poll_timeout()
            .unwrap()
            .max(now + Duration::from_millis(1));
        c.handle_timeout(now);
        for (_, media_ssrc, seqs) in drain(&mut c).nacks_to_alice {
            assert_eq!((media_ssrc, seqs), (VIDEO_SSRC, vec![11]));
            requests += 1;
        }
    }
    let s = c.stats();
    assert_eq!(requests, 10, "the default maximum of requests");
    assert_eq!(s.upstream_nacked_packets, 10);
    assert_eq!(s.upstream_repairs_abandoned, 1);
    // Given up: a late repair is a duplicate.
    c.handle_rtp(now, ALICE, &rtx_of(&media(11, false), 9));
    assert!(drain(&mut c).rtp_to_bob.is_empty());
    assert_eq!(c.stats().publisher_rtx_duplicate, 1);
}

#[test]
fn with_repair_off_publisher_rtx_is_dropped_and_nothing_is_nacked() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut c = Conference::new(
        t0,
        ConferenceConfig {
            bandwidth_estimation: false,
            upstream_repair: relais_conference::RepairConfig {
                enabled: false,
                ..Default::default()
            },
            ..ConferenceConfig::default()
        },
    );
    c.add_endpoint(t0, ALICE, description("alice", VP8_PT, RTX_PT))
        .unwrap();
    c.set_sources(
        t0,
        ALICE,
        vec![PublishedSource {
            name: "alice-v0".into(),
            kind: MediaKind::Video,
            ssrcs: vec![VIDEO_SSRC],
            rtx: vec![(VIDEO_SSRC, RTX_SSRC)],
            video_type: VideoType::Camera,
        }],
    )
    .unwrap();
    c.handle_rtp(ms(0), ALICE, &media(1, true));
    c.handle_rtp(ms(1), ALICE, &media(3, false));
    c.handle_rtp(ms(2), ALICE, &rtx_of(&media(2, false), 1));
    let d = drain(&mut c);
    assert!(d.nacks_to_alice.is_empty());
    assert_eq!(c.stats().dropped_publisher_rtx, 1);
    assert_eq!(c.stats().upstream_nacks_sent, 0);
}

#[test]
fn across_a_simulcast_switch_repairs_fill_the_new_encoding_and_the_old_one_is_late() {
    use relais_conference::allocation::{ReceiverConstraintsUpdate, VideoConstraints};
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let ssrcs = [0x1000u32, 0x2000, 0x3000];
    let mut c = conference(t0);
    c.set_sources(
        t0,
        ALICE,
        vec![PublishedSource {
            name: "alice-v0".into(),
            kind: MediaKind::Video,
            ssrcs: ssrcs.to_vec(),
            rtx: ssrcs.iter().map(|&s| (s, s + 1)).collect(),
            video_type: VideoType::Camera,
        }],
    )
    .unwrap();
    c.set_receiver_constraints(
        t0,
        BOB,
        ReceiverConstraintsUpdate {
            default_constraints: Some(VideoConstraints::UNLIMITED),
            ..Default::default()
        },
    )
    .unwrap();
    let packet = |encoding: usize, frame: u16, keyframe: bool| {
        rtp(
            VP8_PT,
            true,
            1000 * (encoding as u16 + 1) + frame,
            u32::from(frame) * 3000,
            ssrcs[encoding],
            &[],
            &vp8_payload(frame, frame as u8, keyframe),
        )
    };
    let (mut lost_top, mut lost_low) = (None, None);
    let mut to_bob = Vec::new();
    for frame in 0..11u16 {
        let now = ms(u64::from(frame) * 33);
        if frame == 7 {
            // Bob's view shrinks: he moves to the lowest encoding at its next key frame.
            c.set_receiver_constraints(
                now,
                BOB,
                ReceiverConstraintsUpdate {
                    default_constraints: Some(VideoConstraints {
                        max_height: 180,
                        max_frame_rate: -1.0,
                    }),
                    ..Default::default()
                },
            )
            .unwrap();
        }
        for encoding in 0..3 {
            let p = packet(encoding, frame, frame < 2 || frame == 8);
            match (encoding, frame) {
                (2, 5) => lost_top = Some(p),
                (0, 9) => lost_low = Some(p),
                _ => c.handle_rtp(now, ALICE, &p),
            }
        }
        c.handle_timeout(now);
        let d = drain(&mut c);
        match frame {
            6 => assert_eq!(
                d.nacks_to_alice,
                [(Conference::node_ssrc(ALICE), ssrcs[2], vec![3005])]
            ),
            // (3005 is asked for again in the same turn: its retry interval passed.)
            10 => assert!(d.nacks_to_alice.contains(&(
                Conference::node_ssrc(ALICE),
                ssrcs[0],
                vec![1009]
            ))),
            _ => {}
        }
        to_bob.extend(d.rtp_to_bob.iter().map(|p| {
            let p = RtpPacket::parse(p.as_slice()).unwrap();
            (p.ssrc(), p.sequence_number())
        }));
    }
    // The top encoding (but 5), then the lowest one from its key frame 8 (but 9), continuing
    // the numbering on the primary SSRC: the lowest encoding's 1008 went out as 3008.
    let expected: Vec<(u32, u16)> = [3000, 3001, 3002, 3003, 3004, 3006, 3007, 3008, 3010]
        .into_iter()
        .map(|seq| (ssrcs[0], seq))
        .collect();
    assert_eq!(to_bob, expected);
    // The lowest encoding's repair fills Bob's gap at 3009, rewritten like its neighbours.
    let lost_low = lost_low.unwrap();
    c.handle_rtp(ms(400), ALICE, &rtx_like(&lost_low, ssrcs[0] + 1));
    let d = drain(&mut c);
    assert_eq!(d.rtp_to_bob.len(), 1);
    let repaired = RtpPacket::parse(d.rtp_to_bob[0].as_slice()).unwrap();
    assert_eq!(
        (repaired.ssrc(), repaired.sequence_number()),
        (ssrcs[0], 3009)
    );
    assert_eq!(
        repaired.payload(),
        RtpPacket::parse(lost_low.as_slice()).unwrap().payload()
    );
    // The top encoding's repair comes after Bob left it: dropped, counted late.
    let late = c.stats().dropped_late;
    c.handle_rtp(ms(401), ALICE, &rtx_like(&lost_top.unwrap(), ssrcs[2] + 1));
    let d = drain(&mut c);
    assert!(d.rtp_to_bob.is_empty(), "Bob left that encoding");
    assert_eq!(c.stats().publisher_rtx_recovered, 2);
    assert_eq!(c.stats().dropped_late, late + 1);
}

/// Alice's RTX of `original` on `rtx_ssrc`.
fn rtx_like(original: &[u8], rtx_ssrc: u32) -> Vec<u8> {
    let mut rtx = rtx_of(original, 1);
    rtx[8..12].copy_from_slice(&rtx_ssrc.to_be_bytes());
    rtx
}

/// The same through the WHIP/WHEP [`relais_conference::Forwarder`]: simulcast publisher,
/// RTX identified by `repaired-rtp-stream-id`.
mod forwarder {
    use super::*;
    use common::{
        forwarder, parse, publisher_lines, rtcp_to, rtp_to, video_packet, viewer_lines, Clock,
        Source, LAYER_SSRCS, PUB, P_MID, P_RRID, STREAM, V1, V2,
    };
    use relais_conference::Forwarder;

    const PUB_RTX_SSRC: u32 = 0x77;

    /// Publisher RTX (PT 97) of `original` for layer `rid`.
    fn rtx(original: &[u8], rtx_seq: u16, rid: &[u8]) -> Vec<u8> {
        let parsed = parse(original);
        let mut payload = parsed.sequence_number().to_be_bytes().to_vec();
        payload.extend_from_slice(parsed.payload());
        rtp(
            97,
            parsed.marker(),
            rtx_seq,
            parsed.timestamp(),
            PUB_RTX_SSRC,
            &[(P_MID, b"1"), (P_RRID, rid)],
            &payload,
        )
    }

    fn nacks(packets: &[Vec<u8>]) -> Vec<(u32, u32, Vec<u16>)> {
        packets
            .iter()
            .flat_map(|p| RtcpCompound::new(p).map(Result::unwrap).collect::<Vec<_>>())
            .filter(|v| v.kind() == RtcpKind::Nack)
            .map(|v| {
                (
                    v.sender_ssrc().unwrap(),
                    v.media_ssrc().unwrap(),
                    v.nack_pairs().sequence_numbers().collect(),
                )
            })
            .collect()
    }

    fn start(f: &mut Forwarder, clock: &Clock, source: &mut Source) {
        f.add_publisher(clock.at(0), STREAM, PUB, publisher_lines())
            .unwrap();
        f.add_viewer(clock.at(0), STREAM, V1, viewer_lines(1000, true, true))
            .unwrap();
        f.add_viewer(clock.at(0), STREAM, V2, viewer_lines(2000, false, false))
            .unwrap();
        for i in 0..3 {
            source.frame(f, PUB, clock.at(i * 33), &[2, 1, 0], i == 0);
        }
        common::drain(f);
    }

    #[test]
    fn a_lost_layer_packet_is_nacked_and_its_rtx_reaches_every_viewer_in_its_gap() {
        let clock = Clock::new();
        let mut f = forwarder();
        let mut source = Source::new(LAYER_SSRCS);
        start(&mut f, &clock, &mut source);
        // Frame 3's top-layer packet is lost on the way; frame 4 arrives.
        let lost = video_packet(
            2,
            LAYER_SSRCS[2],
            source.seq[2],
            source.ts,
            source.pic,
            false,
            999,
        );
        let lost_seq = source.seq[2];
        source.seq[2] += 1;
        source.ts += 2970;
        source.pic += 1;
        source.frame(&mut f, PUB, clock.at(132), &[2, 1, 0], false);
        let out = common::drain(&mut f);
        assert_eq!(
            nacks(&rtcp_to(&out, PUB)),
            [(Forwarder::node_ssrc(PUB), LAYER_SSRCS[2], vec![lost_seq])]
        );
        assert_eq!(f.stats().upstream_nacks_sent, 1);
        // Viewers got frames 0, 1, 2 and 4 of the top layer: 3003 is their gap.
        let video = |out: &[relais_conference::ForwarderOutput], viewer, ssrc| -> Vec<Vec<u8>> {
            rtp_to(out, viewer)
                .into_iter()
                .filter(|p| parse(p).ssrc() == ssrc)
                .collect()
        };
        assert_eq!(
            video(&out, V1, 1002)
                .iter()
                .map(|p| parse(p).sequence_number())
                .collect::<Vec<_>>(),
            [3004]
        );

        f.handle_rtp(clock.at(140), PUB, &rtx(&lost, 1, b"f"));
        let out = common::drain(&mut f);
        for (viewer, ssrc) in [(V1, 1002), (V2, 2002)] {
            let got = video(&out, viewer, ssrc);
            assert_eq!(got.len(), 1, "the repair reaches {viewer:?}");
            let repaired = parse(&got[0]);
            assert_eq!(repaired.sequence_number(), 3003);
            assert_eq!(repaired.payload_type(), 120);
            assert_eq!(repaired.timestamp(), parse(&lost).timestamp());
            assert_eq!(repaired.payload(), parse(&lost).payload());
        }
        assert_eq!(f.stats().publisher_rtx_recovered, 1);

        // Again: not missing any more.
        f.handle_rtp(clock.at(150), PUB, &rtx(&lost, 2, b"f"));
        assert!(common::drain(&mut f).is_empty());
        assert_eq!(f.stats().publisher_rtx_duplicate, 1);
        assert_eq!(f.stats().publisher_rtx_recovered, 1);
    }

    #[test]
    fn a_repair_from_before_a_layer_switch_is_dropped_as_late() {
        let clock = Clock::new();
        let mut f = forwarder();
        let mut source = Source::new(LAYER_SSRCS);
        start(&mut f, &clock, &mut source);
        // Top-layer packet of frame 3 lost; then the top layer stops and viewers switch
        // down to the middle layer at its next key frame.
        let lost = video_packet(
            2,
            LAYER_SSRCS[2],
            source.seq[2],
            source.ts,
            source.pic,
            false,
            999,
        );
        source.seq[2] += 1;
        source.ts += 2970;
        source.pic += 1;
        source.frame(&mut f, PUB, clock.at(132), &[2, 1, 0], false);
        let mut t = 132;
        while t < 1300 {
            t += 33;
            source.frame(&mut f, PUB, clock.at(t), &[1, 0], t > 1200);
        }
        let out = common::drain(&mut f);
        assert!(
            rtp_to(&out, V1)
                .iter()
                .any(|p| parse(p).sequence_number() > 3004 && parse(p).ssrc() == 1002),
            "V1 switched to the middle layer"
        );
        let late = f.stats().dropped_late;
        // The top layer's repair arrives after the switch (it is still missing there).
        f.handle_rtp(clock.at(t + 1), PUB, &rtx(&lost, 1, b"f"));
        let out = common::drain(&mut f);
        assert!(rtp_to(&out, V1).is_empty() && rtp_to(&out, V2).is_empty());
        assert_eq!(f.stats().dropped_late, late + 2, "one per viewer");
    }
}
