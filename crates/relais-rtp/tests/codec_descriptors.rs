//! Codec payload descriptors on hand-built RFC-shaped payloads, and against the `rtp`
//! crate's depacketizers on the same bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use relais_rtp::codec::h264::{self, H264Error, H264Packet};
use relais_rtp::codec::vp8::{self, Vp8Error};
use relais_rtp::codec::vp9::{self, Vp9Error};
use relais_rtp::codec::{opus, PictureId, VideoCodec};
use rtp::codecs::h264::H264Packet as RtpH264;
use rtp::codecs::vp8::Vp8Packet;
use rtp::codecs::vp9::Vp9Packet;
use rtp::packetizer::Depacketizer;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        // Shrunk failures are printed; writing regression files into the source tree is
        // left to whoever pins one down.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Start of a VP8 key frame: frame tag with P=0, then the start code 9d 01 2a.
const VP8_KEY_FRAME: [u8; 6] = [0x50, 0x2D, 0x00, 0x9D, 0x01, 0x2A];
/// Start of a VP8 inter frame: P=1.
const VP8_INTER_FRAME: [u8; 3] = [0x31, 0x0B, 0x00];

fn with(descriptor: &[u8], data: &[u8]) -> Vec<u8> {
    [descriptor, data].concat()
}

// RFC 7741 §4.2 layouts.

#[test]
fn vp8_chrome_simulcast_descriptor() {
    // X S, I L T, M=1 picture id 0x1234, TL0PICIDX 5, TID 2 Y=1.
    let p = with(&[0x90, 0xE0, 0x92, 0x34, 0x05, 0xA0], &VP8_INTER_FRAME);
    let d = vp8::parse(&p).unwrap();
    assert!(d.start_of_partition && d.starts_frame() && !d.non_reference);
    assert_eq!(d.partition_index, 0);
    assert_eq!(d.picture_id, Some(PictureId::Bits15(0x1234)));
    assert_eq!(d.tl0_pic_idx, Some(5));
    assert_eq!(d.temporal_id, Some(2));
    assert!(d.layer_sync);
    assert_eq!(d.key_idx, None);
    assert_eq!(d.len, 6);
    assert!(!d.is_keyframe);
}

#[test]
fn vp8_keyframe_only_on_partition_zero_start() {
    let key = with(&[0x90, 0x80, 0x11], &VP8_KEY_FRAME);
    let d = vp8::parse(&key).unwrap();
    assert_eq!(d.picture_id, Some(PictureId::Bits7(0x11)));
    assert!(d.is_keyframe);
    // Same bytes as a continuation packet (S=0): not a key frame start.
    let cont = with(&[0x80, 0x80, 0x11], &VP8_KEY_FRAME);
    assert!(!vp8::parse(&cont).unwrap().is_keyframe);
    // Start of partition 1: its first byte is not a frame tag.
    let part1 = with(&[0x91, 0x80, 0x11], &VP8_KEY_FRAME);
    assert!(!vp8::parse(&part1).unwrap().is_keyframe);
}

#[test]
fn vp8_k_without_t_and_truncations() {
    // X N, K only: KEYIDX 0x1F, TID ignored.
    let d = vp8::parse(&with(&[0xA0, 0x10, 0xFF], &VP8_INTER_FRAME)).unwrap();
    assert!(d.non_reference);
    assert_eq!(d.key_idx, Some(0x1F));
    assert_eq!(d.temporal_id, None);
    assert!(!d.layer_sync);
    for cut in 0..6 {
        let p = [0x90, 0xE0, 0x92, 0x34, 0x05, 0xA0];
        assert_eq!(
            vp8::parse(&p[..cut]),
            Err(Vp8Error::Truncated {
                needed: cut + 1,
                available: cut
            })
        );
    }
}

#[test]
fn vp8_rewrite_per_receiver() {
    let mut p = with(&[0x90, 0xE0, 0x92, 0x34, 0x05, 0xA0], &VP8_INTER_FRAME);
    vp8::rewrite_picture_id(&mut p, 0x7FFF).unwrap();
    vp8::rewrite_tl0_pic_idx(&mut p, 0xFE).unwrap();
    assert_eq!(&p[..6], &[0x90, 0xE0, 0xFF, 0xFF, 0xFE, 0xA0]);
    assert_eq!(&p[6..], &VP8_INTER_FRAME);
    let mut none = with(&[0x10], &VP8_KEY_FRAME);
    assert_eq!(
        vp8::rewrite_picture_id(&mut none, 1),
        Err(Vp8Error::NoPictureId)
    );
}

// RFC 9628 §4.2 layouts.

/// A VP9 key frame as libwebrtc sends it with 3 spatial layers in non-flexible mode:
/// I P=0 L F=0 B E=0 V Z=0, 15-bit picture id, TID 0 U=0 SID 0 D=0, TL0PICIDX, then SS
/// with 3 resolutions and a picture group of 2 entries.
fn vp9_keyframe_with_ss() -> Vec<u8> {
    let mut p = vec![0xAA, 0x80 | 0x01, 0x02, 0x00, 0x07];
    p.push((2 << 5) | 0x10 | 0x08); // N_S=2, Y, G
    for (w, h) in [(320u16, 180u16), (640, 360), (1280, 720)] {
        p.extend_from_slice(&w.to_be_bytes());
        p.extend_from_slice(&h.to_be_bytes());
    }
    p.push(2); // N_G
    p.push(0x04); // T=0 U=0 R=1
    p.push(0x01); // P_DIFF 1
    p.push((1 << 5) | 0x10 | 0x04); // T=1 U=1 R=1
    p.push(0x01);
    p.extend_from_slice(&[0x82, 0x49, 0x83]); // frame data
    p
}

#[test]
fn vp9_keyframe_with_scalability_structure() {
    let p = vp9_keyframe_with_ss();
    let d = vp9::parse(&p).unwrap();
    assert_eq!(d.picture_id, Some(PictureId::Bits15(0x0102)));
    assert!(!d.inter_picture_predicted && !d.flexible_mode);
    assert!(d.start_of_frame && !d.end_of_frame && !d.not_upper_reference);
    let layer = d.layer.unwrap();
    assert_eq!((layer.temporal_id, layer.spatial_id), (0, 0));
    assert_eq!(d.tl0_pic_idx, Some(7));
    let ss = d.scalability.unwrap();
    assert_eq!(ss.spatial_layers, 3);
    assert_eq!(ss.resolution(0), Some((320, 180)));
    assert_eq!(ss.resolution(2), Some((1280, 720)));
    assert_eq!(ss.resolution(3), None);
    assert_eq!(ss.picture_group_len, Some(2));
    assert_eq!(d.len, p.len() - 3);
    assert!(d.is_keyframe());
    assert!(VideoCodec::Vp9.is_keyframe(&p).unwrap());

    let ours = d;
    let mut theirs = Vp9Packet::default();
    let rest = theirs.depacketize(&Bytes::from(p.clone())).unwrap();
    assert_eq!(rest.len(), p.len() - ours.len);
    assert_eq!(theirs.ns + 1, ss.spatial_layers);
    assert_eq!(theirs.width, vec![320, 640, 1280]);
    assert_eq!(theirs.height, vec![180, 360, 720]);
    assert_eq!(theirs.ng, 2);
    assert_eq!(theirs.pgpdiff, vec![vec![1], vec![1]]);

    // Truncating anywhere inside the SS is an error.
    for cut in 5..ours.len {
        assert!(
            matches!(vp9::parse(&p[..cut]), Err(Vp9Error::Truncated { .. })),
            "cut {cut}"
        );
    }
}

#[test]
fn vp9_upper_spatial_layer_is_not_a_keyframe() {
    // I P=0 L B, SID 1 D=1: intra-picture only, depends on SID 0 of the same picture.
    let p = [0xA8, 0x05, 0x03, 0x07, 0x00];
    let d = vp9::parse(&p).unwrap();
    assert_eq!(d.spatial_id(), 1);
    assert!(d.layer.unwrap().inter_layer_dependency);
    assert!(!d.is_keyframe());
    assert!(d.is_spatial_switch_up_point());
    assert!(d.is_layer_switch_point(0, 0));
    let mut q = p;
    vp9::rewrite_picture_id(&mut q, 0x85).unwrap();
    vp9::rewrite_tl0_pic_idx(&mut q, 8).unwrap();
    assert_eq!(q, [0xA8, 0x05, 0x03, 0x08, 0x00]);
}

#[test]
fn vp9_flexible_mode_has_no_tl0picidx() {
    // I P L F B, 7-bit picture id, TID 1 SID 0, P_DIFFs 1 then 2.
    let p = [0xF8, 0x10, 0x20, 0x03, 0x04, 0xAB];
    let d = vp9::parse(&p).unwrap();
    assert!(d.flexible_mode);
    assert_eq!(d.tl0_pic_idx, None);
    assert_eq!(d.p_diffs(), &[1, 2]);
    assert_eq!(d.temporal_id(), 1);
    assert_eq!(d.len, 5);
    assert_eq!(
        vp9::rewrite_tl0_pic_idx(&mut p.clone(), 1),
        Err(Vp9Error::NoTl0PicIdx)
    );
}

// RFC 6184 §5.7.1 and §5.8.

const SPS: [u8; 12] = [
    0x67, 0x42, 0xC0, 0x1F, 0xDA, 0x01, 0x40, 0x16, 0xEC, 0x04, 0x40, 0x00,
];
const PPS: [u8; 4] = [0x68, 0xCE, 0x3C, 0x80];
const IDR: [u8; 6] = [0x65, 0x88, 0x84, 0x00, 0x33, 0xFF];

fn stap_a(units: &[&[u8]]) -> Vec<u8> {
    let mut p = vec![0x78]; // F=0 NRI=3 type 24
    for u in units {
        p.extend_from_slice(&(u.len() as u16).to_be_bytes());
        p.extend_from_slice(u);
    }
    p
}

/// Splits an Annex B stream at its 4-byte start codes (the fixtures contain no others).
fn annex_b_units(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![];
    let mut rest = stream;
    while let Some(pos) = rest.windows(4).position(|w| w == [0, 0, 0, 1]) {
        if pos > 0 {
            out.push(rest[..pos].to_vec());
        }
        rest = &rest[pos + 4..];
    }
    if !rest.is_empty() {
        out.push(rest.to_vec());
    }
    out
}

#[test]
fn h264_stap_a_with_sps_pps_idr() {
    let p = stap_a(&[&SPS, &PPS, &IDR]);
    let d = h264::parse(&p).unwrap();
    assert_eq!(d.packet, H264Packet::StapA { nal_count: 3 });
    assert!(d.has_sps && d.has_pps && d.has_idr && d.is_keyframe());
    let ours: Vec<Vec<u8>> = h264::stap_a_nal_units(&p).map(<[u8]>::to_vec).collect();
    assert_eq!(ours, vec![SPS.to_vec(), PPS.to_vec(), IDR.to_vec()]);
    let theirs = RtpH264::default().depacketize(&Bytes::from(p)).unwrap();
    assert_eq!(annex_b_units(&theirs), ours);
}

#[test]
fn h264_parameter_sets_alone_and_plain_slices() {
    let d = h264::parse(&stap_a(&[&SPS, &PPS])).unwrap();
    assert!(d.has_sps && d.has_pps && !d.has_idr && d.is_keyframe());
    let d = h264::parse(&PPS).unwrap();
    assert_eq!(d.packet, H264Packet::Single { nal_type: 8 });
    assert!(d.has_pps && !d.is_keyframe());
    let d = h264::parse(&[0x41, 0x9A, 0x00]).unwrap();
    assert_eq!(d.packet, H264Packet::Single { nal_type: 1 });
    assert!(!d.is_keyframe());
    assert_eq!(
        h264::parse(&[]),
        Err(H264Error::Truncated {
            needed: 1,
            available: 0
        })
    );
    assert_eq!(
        h264::parse(&[0x7D, 0x85]),
        Err(H264Error::UnsupportedNalType(29))
    );
    assert_eq!(h264::parse(&[0x60]), Err(H264Error::UnsupportedNalType(0)));
}

#[test]
fn h264_fu_a_start_middle_end() {
    // Fragment IDR (type 5, NRI 3) into three FU-A packets.
    let body = &IDR[1..];
    let indicator = (IDR[0] & 0xE0) | 28;
    let start = [&[indicator, 0x80 | 5][..], &body[..2]].concat();
    let middle = [&[indicator, 5][..], &body[2..4]].concat();
    let end = [&[indicator, 0x40 | 5][..], &body[4..]].concat();

    let s = h264::parse(&start).unwrap();
    assert_eq!(
        s.packet,
        H264Packet::FuA {
            start: true,
            end: false,
            nal_type: 5
        }
    );
    assert!(s.has_idr && s.is_keyframe());
    let m = h264::parse(&middle).unwrap();
    assert_eq!(
        m.packet,
        H264Packet::FuA {
            start: false,
            end: false,
            nal_type: 5
        }
    );
    assert!(!m.is_keyframe());
    let e = h264::parse(&end).unwrap();
    assert_eq!(
        e.packet,
        H264Packet::FuA {
            start: false,
            end: true,
            nal_type: 5
        }
    );
    assert!(!e.is_keyframe());
    assert_eq!(
        h264::parse(&[indicator]),
        Err(H264Error::Truncated {
            needed: 2,
            available: 1
        })
    );

    // The rtp crate reassembles the same NAL unit our fields describe.
    let mut theirs = RtpH264::default();
    assert!(theirs.depacketize(&Bytes::from(start)).unwrap().is_empty());
    assert!(theirs.depacketize(&Bytes::from(middle)).unwrap().is_empty());
    let nal = theirs.depacketize(&Bytes::from(end)).unwrap();
    assert_eq!(annex_b_units(&nal), vec![IDR.to_vec()]);
    assert_eq!(nal[4] & 0x1F, 5);
}

#[test]
fn opus_dtx_and_toc() {
    assert!(opus::is_dtx(&[0xF8]));
    assert!(opus::is_dtx(&[0x78, 0x00]));
    assert!(!opus::is_dtx(&[0x78, 0x01, 0x02]));
    let toc = opus::OpusToc::parse(&[0x78]).unwrap(); // config 15, mono, code 0
    assert_eq!(toc.config, 15);
    assert!(!toc.stereo);
    assert_eq!(opus::frame_count(&[0x78]).unwrap(), 1);
    assert!(opus::OpusToc::parse(&[]).is_err());
}

// Differential tests against the rtp crate on generated descriptors.

#[derive(Debug, Clone)]
struct Vp8Fields {
    n: bool,
    s: bool,
    pid: u8,
    picture_id: Option<(bool, u16)>,
    tl0: Option<u8>,
    tid_y: Option<(u8, bool)>,
    key_idx: Option<u8>,
}

fn vp8_fields() -> impl Strategy<Value = Vp8Fields> {
    (
        (any::<bool>(), any::<bool>(), 0u8..8),
        proptest::option::of((any::<bool>(), 0u16..0x8000)),
        proptest::option::of(any::<u8>()),
        proptest::option::of((0u8..4, any::<bool>())),
        proptest::option::of(0u8..32),
    )
        .prop_map(|((n, s, pid), picture_id, tl0, tid_y, key_idx)| Vp8Fields {
            n,
            s,
            pid,
            picture_id: picture_id.map(|(wide, v)| (wide, if wide { v } else { v & 0x7F })),
            tl0,
            tid_y,
            key_idx,
        })
}

fn encode_vp8(f: &Vp8Fields) -> Vec<u8> {
    let x = f.picture_id.is_some() || f.tl0.is_some() || f.tid_y.is_some() || f.key_idx.is_some();
    let mut p = vec![(u8::from(x) << 7) | (u8::from(f.n) << 5) | (u8::from(f.s) << 4) | f.pid];
    if x {
        p.push(
            (u8::from(f.picture_id.is_some()) << 7)
                | (u8::from(f.tl0.is_some()) << 6)
                | (u8::from(f.tid_y.is_some()) << 5)
                | (u8::from(f.key_idx.is_some()) << 4),
        );
    }
    match f.picture_id {
        Some((true, v)) => p.extend_from_slice(&(v | 0x8000).to_be_bytes()),
        Some((false, v)) => p.push(v as u8),
        None => {}
    }
    p.extend(f.tl0);
    if f.tid_y.is_some() || f.key_idx.is_some() {
        let (tid, y) = f.tid_y.unwrap_or((0, false));
        p.push((tid << 6) | (u8::from(y) << 5) | f.key_idx.unwrap_or(0));
    }
    p
}

/// One picture-group entry of a VP9 SS: T, U and the P_DIFFs.
type PictureGroupEntry = (u8, bool, Vec<u8>);
/// A VP9 SS: N_S, Y, resolutions, picture group (G).
type Scalability = (u8, bool, Vec<(u16, u16)>, Option<Vec<PictureGroupEntry>>);

#[derive(Debug, Clone)]
struct Vp9Fields {
    flags: u8, // P F B E Z (I, L, V derived)
    picture_id: Option<(bool, u16)>,
    layer: Option<(u8, bool, u8, bool, u8)>,
    p_diffs: Vec<u8>,
    ss: Option<Scalability>,
}

fn vp9_fields() -> impl Strategy<Value = Vp9Fields> {
    let ss = (
        0u8..8,
        any::<bool>(),
        proptest::option::of(vec((0u8..8, any::<bool>(), vec(any::<u8>(), 0..4)), 0..4)),
    )
        .prop_flat_map(|(ns, y, pg)| {
            (
                Just(ns),
                Just(y),
                vec((any::<u16>(), any::<u16>()), usize::from(ns) + 1),
                Just(pg),
            )
        });
    (
        any::<u8>(),
        proptest::option::of((any::<bool>(), 0u16..0x8000)),
        // The rtp crate refuses SID >= 5, and 3 P_DIFFs (off by one), so stay in its range.
        proptest::option::of((0u8..8, any::<bool>(), 0u8..5, any::<bool>(), any::<u8>())),
        vec(0u8..128, 1..=2),
        proptest::option::of(ss),
    )
        .prop_map(|(flags, picture_id, layer, p_diffs, ss)| Vp9Fields {
            flags,
            picture_id: picture_id.map(|(wide, v)| (wide, if wide { v } else { v & 0x7F })),
            layer,
            p_diffs,
            ss,
        })
}

fn encode_vp9(f: &Vp9Fields) -> Vec<u8> {
    let p_bit = f.flags & 0x40 != 0;
    let flexible = f.flags & 0x10 != 0;
    let first = (u8::from(f.picture_id.is_some()) << 7)
        | (f.flags & 0x40)
        | (u8::from(f.layer.is_some()) << 5)
        | (f.flags & 0x1C)
        | (u8::from(f.ss.is_some()) << 1)
        | (f.flags & 0x01);
    let mut p = vec![first];
    match f.picture_id {
        Some((true, v)) => p.extend_from_slice(&(v | 0x8000).to_be_bytes()),
        Some((false, v)) => p.push(v as u8),
        None => {}
    }
    if let Some((tid, u, sid, d, tl0)) = f.layer {
        p.push((tid << 5) | (u8::from(u) << 4) | (sid << 1) | u8::from(d));
        if !flexible {
            p.push(tl0);
        }
    }
    if flexible && p_bit {
        for (i, diff) in f.p_diffs.iter().enumerate() {
            let more = i + 1 < f.p_diffs.len();
            p.push((diff << 1) | u8::from(more));
        }
    }
    if let Some((ns, y, resolutions, pg)) = &f.ss {
        p.push((ns << 5) | (u8::from(*y) << 4) | (u8::from(pg.is_some()) << 3));
        if *y {
            for (w, h) in resolutions {
                p.extend_from_slice(&w.to_be_bytes());
                p.extend_from_slice(&h.to_be_bytes());
            }
        }
        if let Some(pg) = pg {
            p.push(pg.len() as u8);
            for (t, u, diffs) in pg {
                p.push((t << 5) | (u8::from(*u) << 4) | ((diffs.len() as u8) << 2));
                p.extend_from_slice(diffs);
            }
        }
    }
    p
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn vp8_matches_rtp_crate(f in vp8_fields(), key in any::<bool>(), data in vec(any::<u8>(), 3..20)) {
        let mut data = data;
        data[0] = if key { data[0] & 0xFE } else { data[0] | 0x01 };
        let payload = with(&encode_vp8(&f), &data);
        let d = vp8::parse(&payload).unwrap();
        let mut theirs = Vp8Packet::default();
        let rest = theirs.depacketize(&Bytes::from(payload.clone())).unwrap();
        prop_assert_eq!(rest.len(), payload.len() - d.len);
        prop_assert_eq!(&rest[..], &data[..]);
        prop_assert_eq!(theirs.n == 1, d.non_reference);
        prop_assert_eq!(theirs.s == 1, d.start_of_partition);
        prop_assert_eq!(theirs.pid, d.partition_index);
        prop_assert_eq!(d.picture_id.map(PictureId::value), f.picture_id.map(|p| p.1));
        prop_assert_eq!(theirs.picture_id, d.picture_id.map_or(0, PictureId::value));
        prop_assert_eq!(theirs.tl0_pic_idx, d.tl0_pic_idx.unwrap_or(0));
        prop_assert_eq!(theirs.tid, d.temporal_id.unwrap_or(0));
        prop_assert_eq!(theirs.y == 1, d.layer_sync);
        prop_assert_eq!(theirs.key_idx, d.key_idx.unwrap_or(0));
        prop_assert_eq!(d.is_keyframe, key && f.s && f.pid == 0);
        prop_assert_eq!(VideoCodec::Vp8.is_keyframe(&payload).unwrap(), d.is_keyframe);
    }

    #[test]
    fn vp8_rewrite_matches_rtp_crate(f in vp8_fields(), id in any::<u16>(), tl0 in any::<u8>()) {
        let mut payload = with(&encode_vp8(&f), &VP8_INTER_FRAME);
        let before = vp8::parse(&payload).unwrap();
        prop_assert_eq!(vp8::rewrite_picture_id(&mut payload, id).is_ok(), f.picture_id.is_some());
        prop_assert_eq!(vp8::rewrite_tl0_pic_idx(&mut payload, tl0).is_ok(), f.tl0.is_some());
        let after = vp8::parse(&payload).unwrap();
        prop_assert_eq!(after.picture_id, before.picture_id.map(|p| p.with_value(id)));
        prop_assert_eq!(after.len, before.len);
        let mut theirs = Vp8Packet::default();
        theirs.depacketize(&Bytes::from(payload.clone())).unwrap();
        prop_assert_eq!(theirs.picture_id, after.picture_id.map_or(0, PictureId::value));
        prop_assert_eq!(theirs.tl0_pic_idx, if f.tl0.is_some() { tl0 } else { 0 });
    }

    #[test]
    fn vp9_matches_rtp_crate(f in vp9_fields(), data in vec(any::<u8>(), 1..20)) {
        let payload = with(&encode_vp9(&f), &data);
        let d = vp9::parse(&payload).unwrap();
        let mut theirs = Vp9Packet::default();
        let rest = theirs.depacketize(&Bytes::from(payload.clone())).unwrap();
        prop_assert_eq!(&rest[..], &data[..]);
        prop_assert_eq!(rest.len(), payload.len() - d.len);
        prop_assert_eq!(theirs.p, d.inter_picture_predicted);
        prop_assert_eq!(theirs.f, d.flexible_mode);
        prop_assert_eq!(theirs.b, d.start_of_frame);
        prop_assert_eq!(theirs.e, d.end_of_frame);
        prop_assert_eq!(theirs.z, d.not_upper_reference);
        prop_assert_eq!(theirs.picture_id, d.picture_id.map_or(0, PictureId::value));
        prop_assert_eq!(theirs.tid, d.temporal_id());
        prop_assert_eq!(theirs.sid, d.spatial_id());
        prop_assert_eq!(theirs.u, d.is_temporal_switch_up_point());
        prop_assert_eq!(theirs.d, d.layer.is_some_and(|l| l.inter_layer_dependency));
        prop_assert_eq!(theirs.tl0picidx, d.tl0_pic_idx.unwrap_or(0));
        prop_assert_eq!(&theirs.pdiff[..], d.p_diffs());
        match d.scalability {
            Some(ss) => {
                prop_assert_eq!(theirs.ns + 1, ss.spatial_layers);
                prop_assert_eq!(theirs.y, ss.has_resolutions);
                prop_assert_eq!(theirs.ng, ss.picture_group_len.unwrap_or(0));
                let ours: Vec<u16> = (0..ss.spatial_layers).filter_map(|s| ss.resolution(s)).map(|r| r.0).collect();
                prop_assert_eq!(theirs.width, ours);
            }
            None => prop_assert!(!theirs.v),
        }
        prop_assert_eq!(
            d.is_keyframe(),
            !d.inter_picture_predicted && d.start_of_frame && d.spatial_id() == 0
        );
    }

    #[test]
    fn h264_stap_a_matches_rtp_crate(units in vec(vec(any::<u8>(), 1..40), 1..5)) {
        let mut units = units;
        for u in &mut units {
            u[0] &= 0x7F; // forbidden_zero_bit
        }
        let refs: Vec<&[u8]> = units.iter().map(Vec::as_slice).collect();
        let p = stap_a(&refs);
        let d = h264::parse(&p).unwrap();
        prop_assert_eq!(d.packet, H264Packet::StapA { nal_count: units.len() });
        let types: Vec<u8> = units.iter().map(|u| u[0] & 0x1F).collect();
        prop_assert_eq!(d.has_idr, types.contains(&5));
        prop_assert_eq!(d.has_sps, types.contains(&7));
        prop_assert_eq!(d.has_pps, types.contains(&8));
        let ours: Vec<Vec<u8>> = h264::stap_a_nal_units(&p).map(<[u8]>::to_vec).collect();
        prop_assert_eq!(&ours, &units);
        // The rtp crate's AVC output is length-prefixed, which avoids start-code ambiguity.
        let mut theirs = RtpH264::default();
        theirs.is_avc = true;
        let avc = theirs.depacketize(&Bytes::from(p)).unwrap();
        let mut rest = &avc[..];
        let mut split = vec![];
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            split.push(rest[4..4 + len].to_vec());
            rest = &rest[4 + len..];
        }
        prop_assert_eq!(split, units);
    }
}
