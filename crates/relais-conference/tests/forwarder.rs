//! Behaviour of the forwarder, deterministic with injected time.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use common::*;
use relais_conference::{EndpointId, Forwarder};
use relais_rtp::extensions::{ExtensionKind, TransportSequenceNumber};
use relais_rtp::rtcp::{feedback, parse_typed, RtcpPacket};

fn seq(p: &[u8]) -> u16 {
    parse(p).sequence_number()
}

fn ts(p: &[u8]) -> u32 {
    parse(p).timestamp()
}

fn vp8_pic(p: &[u8]) -> u16 {
    relais_rtp::codec::vp8::parse(parse(p).payload())
        .unwrap()
        .picture_id
        .unwrap()
        .value()
}

/// Publisher + two viewers (V1 with RTX and transport-cc, V2 without either), frame 0 a
/// keyframe on every layer, then `frames - 1` delta frames. Returns the time of the last.
fn setup(f: &mut Forwarder, clock: &Clock, source: &mut Source, frames: u64) -> u64 {
    f.add_publisher(clock.at(0), STREAM, PUB, publisher_lines())
        .unwrap();
    f.add_viewer(clock.at(0), STREAM, V1, viewer_lines(1000, true, true))
        .unwrap();
    f.add_viewer(clock.at(0), STREAM, V2, viewer_lines(2000, false, false))
        .unwrap();
    let mut t = 0;
    for i in 0..frames {
        t = i * 33;
        source.frame(f, PUB, clock.at(t), &[2, 1, 0], i == 0);
    }
    t
}

#[test]
fn each_viewer_gets_audio_and_highest_layer_rewritten() {
    let clock = Clock::new();
    let mut f = forwarder();
    let mut source = Source::new(LAYER_SSRCS);
    setup(&mut f, &clock, &mut source, 10);
    let out = drain(&mut f);
    for (viewer, base, tcc) in [(V1, 1000, true), (V2, 2000, false)] {
        let packets = rtp_to(&out, viewer);
        assert_eq!(packets.len(), 20, "10 video + 10 audio");
        let video: Vec<_> = packets
            .iter()
            .filter(|p| parse(p).ssrc() == base + 2)
            .collect();
        let audio: Vec<_> = packets
            .iter()
            .filter(|p| parse(p).ssrc() == base + 1)
            .collect();
        assert_eq!(video.len(), 10);
        assert_eq!(audio.len(), 10);
        for (i, p) in video.iter().enumerate() {
            let v = parse(p);
            assert_eq!(v.payload_type(), 120);
            // Only the highest layer (seq base 3000) feeds the viewer, continuous.
            assert_eq!(v.sequence_number(), 3000 + i as u16);
            assert_eq!(v.extension(V_ABS_CAPTURE).unwrap(), &ABS_CAPTURE);
            assert!(v.extension(P_MID).is_none());
            assert!(v.extension(P_RID).is_none());
            assert!(v.extension(P_ABS_CAPTURE).is_none());
            assert_eq!(vp8_pic(p), 100 + i as u16);
        }
        for (i, p) in audio.iter().enumerate() {
            let a = parse(p);
            assert_eq!(a.payload_type(), 109);
            assert_eq!(a.sequence_number(), 500 + i as u16);
            assert_eq!(a.extension(V_AUDIO_LEVEL).unwrap(), &[0x85]);
            assert_eq!(a.extension(V_ABS_CAPTURE).unwrap(), &ABS_CAPTURE);
        }
        // transport-cc: one counter per viewer endpoint across both m-lines.
        let tccs: Vec<u16> = packets
            .iter()
            .filter_map(|p| {
                parse(p)
                    .extension(V_TCC)
                    .map(|v| TransportSequenceNumber::parse(v).unwrap().0)
            })
            .collect();
        if tcc {
            assert_eq!(tccs, (1..=20).collect::<Vec<u16>>());
        } else {
            assert!(tccs.is_empty());
            // Not negotiated: the publisher's element is gone (ids 3 and 5 unused).
            assert!(packets.iter().all(|p| parse(p).extension(P_TCC).is_none()));
        }
    }
    assert_eq!(f.stats().rtp_forwarded, 40);
    // Viewer ids differ from the publisher's: check the mapping used.
    assert_ne!(V_ABS_CAPTURE, P_ABS_CAPTURE);
    let _ = ExtensionKind::AbsCaptureTime;
}

#[test]
fn switches_down_at_keyframe_after_high_layer_stops() {
    let clock = Clock::new();
    let mut f = forwarder();
    let mut source = Source::new(LAYER_SSRCS);
    let last_high = setup(&mut f, &clock, &mut source, 10);
    let out = drain(&mut f);
    let before = rtp_to(&out, V1);
    let last_video = before
        .iter()
        .rfind(|p| parse(p).ssrc() == 1002)
        .unwrap()
        .clone();
    // The high layer stops; mid and low go on, deltas only.
    let mut t = last_high;
    let mut plis = Vec::new();
    for _ in 0..40 {
        t += 33;
        source.frame(&mut f, PUB, clock.at(t), &[1, 0], false);
        let out = drain(&mut f);
        assert!(
            rtp_to(&out, V1).iter().all(|p| parse(p).ssrc() == 1001),
            "no video while waiting"
        );
        plis.extend(pli_targets(&rtcp_to(&out, PUB)));
    }
    assert!(t - last_high > 1000);
    assert_eq!(plis.first(), Some(&LAYER_SSRCS[1]), "PLI for the mid layer");
    assert!(plis.iter().all(|&s| s == LAYER_SSRCS[1]));
    // Keyframe on mid.
    t += 33;
    source.frame(&mut f, PUB, clock.at(t), &[1, 0], true);
    let out = drain(&mut f);
    let video: Vec<_> = rtp_to(&out, V1)
        .into_iter()
        .filter(|p| parse(p).ssrc() == 1002)
        .collect();
    assert_eq!(video.len(), 1);
    assert_eq!(seq(&video[0]), seq(&last_video) + 1);
    let elapsed_ticks = (t - last_high) as u32 * 90;
    assert_eq!(ts(&video[0]), ts(&last_video) + elapsed_ticks);
    assert_eq!(vp8_pic(&video[0]), vp8_pic(&last_video) + 1);
    // And keeps following mid.
    t += 33;
    source.frame(&mut f, PUB, clock.at(t), &[1, 0], false);
    let out = drain(&mut f);
    let next: Vec<_> = rtp_to(&out, V1)
        .into_iter()
        .filter(|p| parse(p).ssrc() == 1002)
        .collect();
    assert_eq!(seq(&next[0]), seq(&video[0]) + 1);
    assert_eq!(ts(&next[0]), ts(&video[0]) + 2970);
}

#[test]
fn viewer_before_publisher_gets_media_after_keyframe() {
    let clock = Clock::new();
    let mut f = forwarder();
    f.add_viewer(clock.at(0), STREAM, V1, viewer_lines(1000, true, true))
        .unwrap();
    f.handle_timeout(clock.at(0));
    assert!(drain(&mut f).is_empty());
    f.add_publisher(clock.at(100), STREAM, PUB, publisher_lines())
        .unwrap();
    let mut source = Source::new(LAYER_SSRCS);
    source.frame(&mut f, PUB, clock.at(200), &[2, 1, 0], false);
    let out = drain(&mut f);
    let video = rtp_to(&out, V1)
        .into_iter()
        .filter(|p| parse(p).ssrc() == 1002)
        .count();
    assert_eq!(video, 0);
    assert_eq!(rtp_to(&out, V1).len(), 1, "audio flows at once");
    assert!(pli_targets(&rtcp_to(&out, PUB)).contains(&LAYER_SSRCS[2]));
    source.frame(&mut f, PUB, clock.at(233), &[2, 1, 0], true);
    let out = drain(&mut f);
    let video: Vec<_> = rtp_to(&out, V1)
        .into_iter()
        .filter(|p| parse(p).ssrc() == 1002)
        .collect();
    assert_eq!(video.len(), 1);
    assert_eq!(seq(&video[0]), 3001);
}

#[test]
fn publisher_reconnect_keeps_viewer_stream_continuous() {
    let clock = Clock::new();
    let mut f = forwarder();
    let mut source = Source::new(LAYER_SSRCS);
    let t0 = setup(&mut f, &clock, &mut source, 5);
    let out = drain(&mut f);
    let before = rtp_to(&out, V1);
    let last_video = before
        .iter()
        .rfind(|p| parse(p).ssrc() == 1002)
        .unwrap()
        .clone();
    let last_audio = before
        .iter()
        .rfind(|p| parse(p).ssrc() == 1001)
        .unwrap()
        .clone();

    let t1 = t0 + 2000;
    f.add_publisher(clock.at(t1), STREAM, PUB2, publisher_lines())
        .unwrap();
    // The old publisher is gone.
    source.frame(&mut f, PUB, clock.at(t1), &[2], false);
    assert!(rtp_to(&drain(&mut f), V1).is_empty());
    assert!(f.stats().dropped_unknown_endpoint >= 2);

    let mut new_source = Source::new([0xB1, 0xB2, 0xB3]);
    new_source.seq = [7, 8, 9];
    new_source.audio_seq = 40_000;
    new_source.ts = 12_345;
    let t2 = t1 + 10;
    new_source.frame(&mut f, PUB2, clock.at(t2), &[2, 1, 0], false);
    let out = drain(&mut f);
    assert!(
        pli_targets(&rtcp_to(&out, PUB2)).contains(&0xB3),
        "PLI to the new publisher"
    );
    let audio: Vec<_> = rtp_to(&out, V1);
    assert_eq!(audio.len(), 1);
    assert_eq!(parse(&audio[0]).ssrc(), 1001);
    assert_eq!(seq(&audio[0]), seq(&last_audio) + 1);
    assert_eq!(ts(&audio[0]), ts(&last_audio) + (t2 - t0) as u32 * 48);

    let t3 = t2 + 33;
    new_source.frame(&mut f, PUB2, clock.at(t3), &[2, 1, 0], true);
    let out = drain(&mut f);
    let video: Vec<_> = rtp_to(&out, V1)
        .into_iter()
        .filter(|p| parse(p).ssrc() == 1002)
        .collect();
    assert_eq!(video.len(), 1);
    assert_eq!(seq(&video[0]), seq(&last_video) + 1);
    assert_eq!(ts(&video[0]), ts(&last_video) + (t3 - t0) as u32 * 90);
    assert_eq!(vp8_pic(&video[0]), vp8_pic(&last_video) + 1);
}

fn pli_from(viewer_ssrc: u32, media: u32) -> Vec<u8> {
    let mut p = vec![0x81, 206, 0, 2];
    p.extend_from_slice(&viewer_ssrc.to_be_bytes());
    p.extend_from_slice(&media.to_be_bytes());
    p
}

#[test]
fn viewer_keyframe_requests_are_rate_limited() {
    let clock = Clock::new();
    let mut f = forwarder();
    let mut source = Source::new(LAYER_SSRCS);
    let t = setup(&mut f, &clock, &mut source, 3);
    drain(&mut f);
    let mut plis = Vec::new();
    for i in 0..5 {
        let viewer = if i % 2 == 0 { V1 } else { V2 };
        let media = if i % 2 == 0 { 1002 } else { 2002 };
        f.handle_rtcp(clock.at(t + i * 100), viewer, &pli_from(7, media));
        plis.extend(pli_targets(&rtcp_to(&drain(&mut f), PUB)));
    }
    assert_eq!(plis, vec![LAYER_SSRCS[2]]);
    // FIR (media SSRC in the FCI) counts as a keyframe request too.
    let fir = RtcpPacket::from(feedback::fir(7, &[(1002, 1)]).unwrap())
        .to_bytes()
        .unwrap();
    f.handle_rtcp(clock.at(t + 500), V1, &fir);
    let plis = pli_targets(&rtcp_to(&drain(&mut f), PUB));
    assert_eq!(plis, vec![LAYER_SSRCS[2]]);
    assert_eq!(f.stats().keyframe_requests, 2);
    // Audio SSRC or unknown SSRC: nothing.
    f.handle_rtcp(clock.at(t + 2000), V1, &pli_from(7, 1001));
    f.handle_rtcp(clock.at(t + 2000), V1, &pli_from(7, 999));
    assert!(rtcp_to(&drain(&mut f), PUB).is_empty());
}

fn nack_from(media: u32, seqs: &[u16]) -> Vec<u8> {
    RtcpPacket::from(feedback::nack(7, media, seqs).unwrap())
        .to_bytes()
        .unwrap()
        .to_vec()
}

#[test]
fn nack_is_answered_from_cache_as_rtx_or_plain() {
    let clock = Clock::new();
    let mut f = forwarder();
    let mut source = Source::new(LAYER_SSRCS);
    let t = setup(&mut f, &clock, &mut source, 10);
    let out = drain(&mut f);
    let v1_video: Vec<_> = rtp_to(&out, V1)
        .into_iter()
        .filter(|p| parse(p).ssrc() == 1002)
        .collect();
    let v2_video: Vec<_> = rtp_to(&out, V2)
        .into_iter()
        .filter(|p| parse(p).ssrc() == 2002)
        .collect();

    // V1 negotiated RTX: RFC 4588 packets.
    f.handle_rtcp(
        clock.at(t + 10),
        V1,
        &nack_from(1002, &[3003, 3005, 60_000]),
    );
    let out = drain(&mut f);
    let rtx = rtp_to(&out, V1);
    assert_eq!(rtx.len(), 2, "unknown seq ignored");
    for (i, (p, original)) in rtx.iter().zip([&v1_video[3], &v1_video[5]]).enumerate() {
        let r = parse(p);
        let o = parse(original);
        assert_eq!(r.ssrc(), 1003);
        assert_eq!(r.payload_type(), 121);
        assert_eq!(r.sequence_number(), i as u16);
        assert_eq!(r.timestamp(), o.timestamp());
        assert_eq!(r.marker(), o.marker());
        assert_eq!(&r.payload()[..2], &o.sequence_number().to_be_bytes());
        assert_eq!(&r.payload()[2..], o.payload());
        assert_eq!(r.extension(V_ABS_CAPTURE), o.extension(V_ABS_CAPTURE));
        // A fresh transport-wide sequence number.
        assert_eq!(
            TransportSequenceNumber::parse(r.extension(V_TCC).unwrap())
                .unwrap()
                .0,
            21 + i as u16
        );
    }
    // V2 without RTX: the packet as sent.
    f.handle_rtcp(clock.at(t + 10), V2, &nack_from(2002, &[3004]));
    let plain = rtp_to(&drain(&mut f), V2);
    assert_eq!(plain, vec![v2_video[4].clone()]);
    assert_eq!(f.stats().retransmitted, 3);
    // A NACK for an SSRC the viewer does not receive is dropped.
    f.handle_rtcp(clock.at(t + 10), V2, &nack_from(1002, &[3004]));
    assert!(drain(&mut f).is_empty());
}

#[test]
fn remb_is_sent_to_publishers_on_timer() {
    let clock = Clock::new();
    let mut f = forwarder();
    let mut source = Source::new(LAYER_SSRCS);
    let t = setup(&mut f, &clock, &mut source, 3);
    drain(&mut f);
    let deadline = f.poll_timeout().unwrap();
    assert!(deadline <= clock.at(t));
    f.handle_timeout(clock.at(t));
    let rtcp = rtcp_to(&drain(&mut f), PUB);
    assert_eq!(rtcp.len(), 1);
    let packets = parse_typed(&rtcp[0]).unwrap();
    let RtcpPacket::Remb(remb) = &packets[0] else {
        panic!("not a REMB: {packets:?}");
    };
    assert_eq!(remb.sender_ssrc, Forwarder::node_ssrc(PUB));
    let mut ssrcs = remb.ssrcs.clone();
    ssrcs.sort_unstable();
    assert_eq!(ssrcs, LAYER_SSRCS.to_vec());
    assert!((remb.bitrate - 3_000_000.0).abs() < 20_000.0);
    // Not again before the interval, again after it.
    f.handle_timeout(clock.at(t + 500));
    assert!(rtcp_to(&drain(&mut f), PUB)
        .iter()
        .all(|p| p[1] != 206 || p[0] & 0x1F != 15));
    let next = f.poll_timeout().unwrap();
    assert!(next > clock.at(t) && next <= clock.at(t + 1000));
    f.handle_timeout(clock.at(t + 1000));
    let rtcp = rtcp_to(&drain(&mut f), PUB);
    assert!(rtcp
        .iter()
        .any(|p| matches!(parse_typed(p).unwrap()[0], RtcpPacket::Remb(_))));
}

#[test]
fn sender_reports_are_translated_for_viewers() {
    let clock = Clock::new();
    let mut f = forwarder();
    let mut source = Source::new(LAYER_SSRCS);
    let t = setup(&mut f, &clock, &mut source, 3);
    drain(&mut f);
    let mut sr = vec![0x80, 200, 0, 6];
    sr.extend_from_slice(&LAYER_SSRCS[2].to_be_bytes());
    sr.extend_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
    sr.extend_from_slice(&90_000u32.to_be_bytes());
    sr.extend_from_slice(&[0; 8]);
    f.handle_rtcp(clock.at(t), PUB, &sr);
    let out = drain(&mut f);
    let v1 = rtcp_to(&out, V1);
    assert_eq!(v1.len(), 1);
    assert_eq!(&v1[0][4..8], &1002u32.to_be_bytes());
    assert_eq!(&v1[0][8..16], &0x1122_3344_5566_7788u64.to_be_bytes());
    // Offset 0 for a viewer that saw this publisher from the start.
    assert_eq!(&v1[0][16..20], &90_000u32.to_be_bytes());
    assert_eq!(rtcp_to(&out, V2).len(), 1);
}

#[test]
fn removed_viewer_gets_nothing_more() {
    let clock = Clock::new();
    let mut f = forwarder();
    let mut source = Source::new(LAYER_SSRCS);
    let t = setup(&mut f, &clock, &mut source, 3);
    drain(&mut f);
    f.remove_endpoint(clock.at(t), V1);
    source.frame(&mut f, PUB, clock.at(t + 33), &[2, 1, 0], false);
    let out = drain(&mut f);
    assert!(rtp_to(&out, V1).is_empty());
    assert_eq!(rtp_to(&out, V2).len(), 2);
    f.handle_rtcp(clock.at(t + 40), V1, &nack_from(1002, &[3001]));
    assert!(drain(&mut f).is_empty());
    // Re-adding the same id works after removal.
    f.add_viewer(clock.at(t + 50), STREAM, V1, viewer_lines(1000, true, true))
        .unwrap();
    assert_eq!(
        f.add_viewer(clock.at(t + 50), STREAM, V1, viewer_lines(1000, true, true)),
        Err(relais_conference::ConferenceError::EndpointExists)
    );
    // Removing the publisher and all viewers frees the stream: no more timers.
    f.remove_endpoint(clock.at(t + 60), PUB);
    f.remove_endpoint(clock.at(t + 60), V1);
    f.remove_endpoint(clock.at(t + 60), V2);
    assert_eq!(f.poll_timeout(), None);
}

#[test]
fn publisher_rtx_and_unknown_streams_are_counted() {
    let clock = Clock::new();
    let mut f = forwarder();
    let mut source = Source::new(LAYER_SSRCS);
    let t = setup(&mut f, &clock, &mut source, 2);
    drain(&mut f);
    let rtx = rtp(
        97,
        false,
        1,
        1,
        0x77,
        &[(P_MID, b"1"), (P_RRID, b"f")],
        &[0, 1, 2],
    );
    f.handle_rtp(clock.at(t), PUB, &rtx);
    let unknown = rtp(50, false, 1, 1, 0x78, &[], &[0, 1, 2]);
    f.handle_rtp(clock.at(t), PUB, &unknown);
    f.handle_rtp(clock.at(t), EndpointId(99), &unknown);
    f.handle_rtp(clock.at(t), PUB, &[0x80, 1, 2]);
    // Padding only (a probe): nothing to unwrap.
    let mut probe = rtp(97, false, 2, 1, 0x77, &[(P_MID, b"1"), (P_RRID, b"f")], &[]);
    probe[0] |= 0x20;
    probe.extend_from_slice(&[0, 0, 0, 4]);
    f.handle_rtp(clock.at(t), PUB, &probe);
    let s = f.stats();
    // The RTX repairs packet 1 of layer "f", which is not missing.
    assert_eq!(s.publisher_rtx_duplicate, 1);
    assert_eq!(s.dropped_publisher_rtx, 1);
    assert_eq!(s.dropped_unknown_stream, 1);
    assert_eq!(s.dropped_unknown_endpoint, 1);
    assert_eq!(s.dropped_malformed, 1);
    assert!(drain(&mut f).is_empty());
}

#[test]
fn buffers_are_recycled() {
    let clock = Clock::new();
    let mut f = forwarder();
    let mut source = Source::new(LAYER_SSRCS);
    let t = setup(&mut f, &clock, &mut source, 2);
    for o in drain(&mut f) {
        match o {
            relais_conference::ForwarderOutput::Rtp { packet, .. }
            | relais_conference::ForwarderOutput::Rtcp { packet, .. } => {
                assert!(packet.capacity() >= 1532);
                f.recycle(packet);
            }
        }
    }
    source.frame(&mut f, PUB, clock.at(t + 33), &[2, 1, 0], false);
    assert_eq!(drain(&mut f).len(), 4);
}

mod garbage {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_input_never_panics(
            inputs in prop::collection::vec((0u8..4, prop::collection::vec(any::<u8>(), 0..200)), 1..40),
        ) {
            let clock = Clock::new();
            let mut f = forwarder();
            let mut source = Source::new(LAYER_SSRCS);
            let t = setup(&mut f, &clock, &mut source, 2);
            drain(&mut f);
            let before = f.stats();
            for (i, (what, bytes)) in inputs.iter().enumerate() {
                let now = clock.at(t + i as u64 * 7);
                match what {
                    0 => f.handle_rtp(now, PUB, bytes),
                    1 => f.handle_rtcp(now, V1, bytes),
                    2 => f.handle_rtcp(now, PUB, bytes),
                    _ => f.handle_rtp(now, V2, bytes),
                }
                f.handle_timeout(now);
                drain(&mut f);
            }
            let after = f.stats();
            // Every RTP input was either forwarded or counted.
            let rtp_inputs = inputs.iter().filter(|(w, _)| *w == 0 || *w == 3).count() as u64;
            let counted = (after.dropped_malformed - before.dropped_malformed)
                + (after.dropped_unknown_stream - before.dropped_unknown_stream)
                + (after.dropped_publisher_rtx - before.dropped_publisher_rtx)
                + (after.publisher_rtx_duplicate - before.publisher_rtx_duplicate)
                + (after.dropped_late - before.dropped_late);
            prop_assert!(counted + (after.rtp_forwarded - before.rtp_forwarded) >= rtp_inputs);
        }

        #[test]
        fn mutated_packets_never_panic(
            flips in prop::collection::vec((0usize..64, any::<u8>()), 1..8),
            which in 0usize..3,
        ) {
            let clock = Clock::new();
            let mut f = forwarder();
            let mut source = Source::new(LAYER_SSRCS);
            let t = setup(&mut f, &clock, &mut source, 2);
            drain(&mut f);
            let mut p = match which {
                0 => video_packet(2, LAYER_SSRCS[2], 5000, 1, 1, true, 1),
                1 => audio_packet(1, 1, 1),
                _ => nack_from(1002, &[3000, 3001]),
            };
            let len = p.len();
            for (at, byte) in flips {
                if let Some(b) = p.get_mut(at % len) {
                    *b ^= byte;
                }
            }
            if which == 2 {
                f.handle_rtcp(clock.at(t), V1, &p);
            } else {
                f.handle_rtp(clock.at(t), PUB, &p);
            }
            drain(&mut f);
        }
    }
}

/// An RR from a viewer with one report block about `media`.
fn rr_from(media: u32, cumulative_lost: u32, lsr: u32, dlsr: u32) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&7u32.to_be_bytes());
    p.extend_from_slice(&media.to_be_bytes());
    p.extend_from_slice(&(cumulative_lost & 0x00ff_ffff).to_be_bytes());
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(&lsr.to_be_bytes());
    p.extend_from_slice(&dlsr.to_be_bytes());
    p
}

#[test]
fn viewer_feedback_is_counted() {
    let clock = Clock::new();
    let mut f = forwarder();
    let mut source = Source::new(LAYER_SSRCS);
    let t = setup(&mut f, &clock, &mut source, 3);
    drain(&mut f);
    f.handle_rtcp(clock.at(t + 10), V1, &nack_from(1002, &[1, 2, 3]));
    f.handle_rtcp(clock.at(t + 20), V2, &nack_from(2002, &[4]));
    f.handle_rtcp(clock.at(t + 30), V1, &pli_from(7, 1002));
    let fir = RtcpPacket::from(feedback::fir(7, &[(1002, 1)]).unwrap())
        .to_bytes()
        .unwrap();
    f.handle_rtcp(clock.at(t + 40), V1, &fir);
    let stats = f.stats();
    assert_eq!(stats.nacks_received, 2);
    assert_eq!(stats.nacked_packets, 4);
    assert_eq!(stats.plis_received, 1);
    assert_eq!(stats.firs_received, 1);
}

#[test]
fn receiver_report_losses_accumulate_per_viewer_stream() {
    let clock = Clock::new();
    let mut f = forwarder();
    let mut source = Source::new(LAYER_SSRCS);
    let t = setup(&mut f, &clock, &mut source, 3);
    drain(&mut f);
    f.handle_rtcp(clock.at(t), V1, &rr_from(1002, 5, 0, 0));
    assert_eq!(f.stats().packets_lost_reported, 5);
    f.handle_rtcp(clock.at(t + 1000), V1, &rr_from(1002, 12, 0, 0));
    assert_eq!(f.stats().packets_lost_reported, 12);
    // Another viewer's stream is counted on its own.
    f.handle_rtcp(clock.at(t + 1000), V2, &rr_from(2002, 3, 0, 0));
    assert_eq!(f.stats().packets_lost_reported, 15);
    // A decrease or a negative value adds nothing; the next increase counts from the highest.
    f.handle_rtcp(clock.at(t + 2000), V1, &rr_from(1002, 10, 0, 0));
    f.handle_rtcp(clock.at(t + 2000), V1, &rr_from(1002, 0x00ff_fffe, 0, 0));
    assert_eq!(f.stats().packets_lost_reported, 15);
    f.handle_rtcp(clock.at(t + 3000), V1, &rr_from(1002, 13, 0, 0));
    assert_eq!(f.stats().packets_lost_reported, 16);
    // Unknown media SSRC: ignored.
    f.handle_rtcp(clock.at(t + 3000), V1, &rr_from(999, 100, 0, 0));
    assert_eq!(f.stats().packets_lost_reported, 16);
}

#[test]
fn rtt_is_measured_from_translated_sender_reports() {
    let clock = Clock::new();
    let mut f = forwarder();
    let mut source = Source::new(LAYER_SSRCS);
    let t = setup(&mut f, &clock, &mut source, 3);
    drain(&mut f);
    let mut sr = vec![0x80, 200, 0, 6];
    sr.extend_from_slice(&LAYER_SSRCS[2].to_be_bytes());
    sr.extend_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
    sr.extend_from_slice(&90_000u32.to_be_bytes());
    sr.extend_from_slice(&[0; 8]);
    f.handle_rtcp(clock.at(t), PUB, &sr);
    assert_eq!(rtcp_to(&drain(&mut f), V1).len(), 1);
    // Report 150 ms later, after holding the SR for 50 ms (DLSR in 1/65536 s): RTT 100 ms.
    let dlsr = 50 * 65_536 / 1000;
    f.handle_rtcp(clock.at(t + 150), V1, &rr_from(1002, 0, 0x3344_5566, dlsr));
    let stats = f.stats();
    assert_eq!(stats.rtt_count, 1);
    assert_eq!(stats.rtt_buckets_ms, [0, 0, 0, 1, 0, 0, 0, 0]);
    assert!(
        (99..=101).contains(&stats.rtt_sum_ms),
        "{}",
        stats.rtt_sum_ms
    );
    // An LSR the forwarder never sent, or no LSR: no sample.
    f.handle_rtcp(clock.at(t + 200), V1, &rr_from(1002, 0, 0x1234_5678, dlsr));
    f.handle_rtcp(clock.at(t + 200), V1, &rr_from(1002, 0, 0, 0));
    assert_eq!(f.stats().rtt_count, 1);
}

#[test]
fn rtt_buckets_include_their_upper_bound() {
    let mut stats = relais_conference::ForwarderStats::default();
    for ms in [0, 10, 11, 1000, 1001] {
        stats.record_rtt_ms(ms);
    }
    assert_eq!(stats.rtt_buckets_ms, [2, 1, 0, 0, 0, 0, 1, 1]);
    assert_eq!(stats.rtt_sum_ms, 2022);
    assert_eq!(stats.rtt_count, 5);
}
