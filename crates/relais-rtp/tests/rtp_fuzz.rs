//! Bad input is normal input: every parser in relais-rtp's RTP side (demux, RTP view,
//! extension values, codec descriptors) gets arbitrary and mutated bytes and must return,
//! never panic, and keep its invariants when it accepts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod rtp_common;

use proptest::collection::vec;
use proptest::prelude::*;
use relais_rtp::codec::{h264, opus, vp8, vp9, PictureId};
use relais_rtp::demux::{classify, DatagramKind};
use relais_rtp::extensions::{
    parse_mid, parse_repaired_rtp_stream_id, parse_rtp_stream_id, AbsCaptureTime, AbsSendTime,
    AudioLevel, TransportSequenceNumber,
};
use relais_rtp::rtp::{header_len, RtpError, RtpPacket};
use rtp_common::{check_view, config, marshal, packet};
use webrtc_util::marshal::MarshalSize;

/// A valid packet's bytes plus a header-shaped prefix, so mutations hit interesting fields.
fn rtp_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..200),
        // Version 2 with random flags and counts, random rest.
        (any::<u8>(), vec(any::<u8>(), 0..200)).prop_map(|(b0, mut rest)| {
            rest.insert(0, (b0 & 0x3F) | 0x80);
            rest
        }),
        packet().prop_map(|p| marshal(&p)),
    ]
}

fn check_codecs(payload: &[u8]) {
    if let Ok(d) = vp8::parse(payload) {
        assert!(d.len < payload.len(), "VP8 needs data after the descriptor");
        let mut copy = payload.to_vec();
        if vp8::rewrite_picture_id(&mut copy, 0xFFFF).is_ok() {
            let again = vp8::parse(&copy).unwrap();
            assert_eq!(again.picture_id, d.picture_id.map(|p| p.with_value(0xFFFF)));
            assert_eq!(again.len, d.len);
        }
        if vp8::rewrite_tl0_pic_idx(&mut copy, 0xAB).is_ok() {
            assert_eq!(vp8::parse(&copy).unwrap().tl0_pic_idx, Some(0xAB));
        }
    } else {
        assert!(vp8::rewrite_picture_id(&mut payload.to_vec(), 1).is_err());
    }
    if let Ok(d) = vp9::parse(payload) {
        assert!(d.len <= payload.len());
        assert!(d.p_diffs().len() <= vp9::MAX_REFERENCES);
        let _ = (d.is_keyframe(), d.is_layer_switch_point(1, 1));
        if let Some(ss) = d.scalability {
            for sid in 0..=8 {
                let _ = ss.resolution(sid);
            }
        }
        let mut copy = payload.to_vec();
        if vp9::rewrite_picture_id(&mut copy, 0x1234).is_ok() {
            let again = vp9::parse(&copy).unwrap();
            assert_eq!(again.picture_id, d.picture_id.map(|p| p.with_value(0x1234)));
        }
        if vp9::rewrite_tl0_pic_idx(&mut copy, 7).is_ok() {
            assert_eq!(vp9::parse(&copy).unwrap().tl0_pic_idx, Some(7));
        }
    }
    if let Ok(d) = h264::parse(payload) {
        if let h264::H264Packet::StapA { nal_count } = d.packet {
            let units: Vec<_> = h264::stap_a_nal_units(payload).collect();
            assert_eq!(units.len(), nal_count);
            assert_eq!(
                units.iter().map(|u| u.len() + 2).sum::<usize>() + 1,
                payload.len()
            );
        }
    }
    let _ = (opus::is_dtx(payload), opus::frame_count(payload));
    if let Ok(toc) = opus::OpusToc::parse(payload) {
        let _ = (toc.mode(), toc.bandwidth(), toc.frame_duration_us());
    }
}

fn check_extension_values(value: &[u8]) {
    let _ = AudioLevel::parse(value);
    let _ = AbsSendTime::parse(value);
    if let Ok(t) = AbsCaptureTime::parse(value) {
        let mut out = value.to_vec();
        t.write(&mut out).unwrap();
        assert_eq!(out, value);
    }
    if let Ok(seq) = TransportSequenceNumber::parse(value) {
        let mut out = [0; 2];
        seq.write(&mut out).unwrap();
        assert_eq!(out, value);
    }
    for token in [
        parse_mid(value),
        parse_rtp_stream_id(value),
        parse_repaired_rtp_stream_id(value),
    ]
    .into_iter()
    .flatten()
    {
        assert!(!token.is_empty() && token.is_ascii());
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in rtp_like()) {
        let _ = classify(&bytes);
        let _ = header_len(&bytes);
        check_view(&bytes);
        check_codecs(&bytes);
        check_extension_values(&bytes);
    }

    #[test]
    fn demux_agrees_with_parsers(bytes in rtp_like()) {
        if RtpPacket::parse(&bytes[..]).is_ok() {
            prop_assert!(matches!(classify(&bytes), DatagramKind::Rtp | DatagramKind::Rtcp));
        }
    }

    #[test]
    fn bit_flips_of_valid_packets(p in packet(), flips in vec((any::<prop::sample::Index>(), 0u8..8), 1..4)) {
        let mut bytes = marshal(&p);
        for (at, bit) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        check_view(&bytes);
        let payload_start = header_len(&bytes).unwrap_or(0).min(bytes.len());
        check_codecs(&bytes[payload_start..]);
    }

    #[test]
    fn truncation_at_every_length(p in packet()) {
        let bytes = marshal(&p);
        let full_header = p.header.marshal_size();
        for len in 0..=bytes.len() {
            let prefix = &bytes[..len];
            check_view(prefix);
            let parsed = RtpPacket::parse(prefix);
            if len < full_header {
                let truncated = matches!(parsed, Err(RtpError::Truncated { .. }));
                prop_assert!(truncated, "len {len}: {parsed:?}");
            } else if !p.header.padding {
                // Without padding any cut after the header is a shorter payload.
                let view = parsed.unwrap();
                prop_assert_eq!(view.payload(), &p.payload[..len - full_header]);
            }
            check_codecs(prefix);
        }
    }

    #[test]
    fn huge_extension_length_is_truncation(p in packet(), words in any::<u16>()) {
        let mut bytes = marshal(&p);
        if !p.header.extension {
            return Ok(());
        }
        let at = 12 + 4 * p.header.csrc.len() + 2;
        bytes[at..at + 2].copy_from_slice(&words.to_be_bytes());
        let needed = at + 2 + 4 * usize::from(words);
        match RtpPacket::parse(&bytes[..]) {
            Err(RtpError::Truncated { needed: n, available }) => {
                prop_assert_eq!(n, needed);
                prop_assert_eq!(available, bytes.len());
            }
            other => {
                prop_assert!(needed <= bytes.len(), "{other:?}");
                check_view(&bytes);
            }
        }
    }

    #[test]
    fn picture_id_keeps_width(width15 in any::<bool>(), value in any::<u16>()) {
        let id = if width15 { PictureId::Bits15(0) } else { PictureId::Bits7(0) };
        let v = id.with_value(value);
        prop_assert!(v.value() < v.modulus());
        prop_assert_eq!(v.value(), value % v.modulus());
    }
}
