//! Answering WHIP / WHEP offers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a test failure"
)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use relais_whip::sdp::{
    answer, h264_profile, host_candidate_priority, host_candidates, parse, AnswerParams,
    CandidateType, Direction, Fingerprint, H264Profile, MediaKind, Msid, RidDirection, SdpError,
    SendStream, SessionDescription, Setup,
};

const CHROMIUM_WHIP: &str = include_str!("fixtures/chromium_whip_offer.sdp");
const CHROMIUM_WHEP: &str = include_str!("fixtures/chromium_whep_offer.sdp");
const GSTREAMER: &str = include_str!("fixtures/gstreamer_offer.sdp");
const AIORTC: &str = include_str!("fixtures/aiortc_offer.sdp");

const FP: &str = "sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

fn params(direction: Direction) -> AnswerParams {
    let mut p = AnswerParams::new(
        "nodeufrag",
        "nodepassword0123456789",
        FP.parse().unwrap(),
        direction,
    );
    p.session_id = 42;
    p.candidates = host_candidates(
        &[
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ],
        3478,
    );
    p
}

fn whip(offer: &str) -> SessionDescription {
    answer(&parse(offer).unwrap(), &params(Direction::RecvOnly)).unwrap()
}

fn pts(sdp: &SessionDescription, index: usize) -> Vec<u8> {
    sdp.media[index]
        .codecs
        .iter()
        .map(|c| c.payload_type)
        .collect()
}

#[test]
fn whip_chromium_codecs_keep_offer_payload_types() {
    let ans = whip(CHROMIUM_WHIP);
    assert_eq!(pts(&ans, 0), [111]);
    let opus = &ans.media[0].codecs[0];
    assert_eq!(
        (opus.name.as_str(), opus.clock_rate, opus.channels),
        ("opus", 48_000, Some(2))
    );
    assert_eq!(
        opus.fmtp.as_ref().unwrap().to_string(),
        "minptime=10;useinbandfec=1"
    );
    assert_eq!(opus.rtcp_fb.len(), 1);
    // VP8 + its RTX, then the constrained-baseline packetization-mode=1 H264 (106) + RTX;
    // not VP9, AV1, H264 42001f (baseline), 42e01f mode 0, 64001f, red, ulpfec.
    assert_eq!(pts(&ans, 1), [96, 97, 106, 107]);
    assert_eq!(ans.media[1].formats, ["96", "97", "106", "107"]);
    let v = &ans.media[1];
    assert_eq!(v.codec(97).unwrap().apt(), Some(96));
    assert_eq!(v.codec(107).unwrap().apt(), Some(106));
    assert_eq!(v.codec(96).unwrap().rtcp_fb.len(), 5);
    let h264 = v.codec(106).unwrap();
    assert_eq!(h264.fmtp_param("profile-level-id"), Some("42e01f"));
    assert_eq!(h264.fmtp_param("packetization-mode"), Some("1"));
    assert_eq!(h264.fmtp_param("level-asymmetry-allowed"), Some("1"));
}

#[test]
fn whip_chromium_directions_transport_and_bundle() {
    let ans = whip(CHROMIUM_WHIP);
    assert!(ans.ice_lite);
    assert!(ans.extmap_allow_mixed);
    assert_eq!(ans.bundle, ["0", "1"]);
    assert_eq!(ans.origin.session_id, 42);
    for m in &ans.media {
        assert_eq!(m.direction, Direction::RecvOnly);
        assert_eq!(m.port, 9);
        assert_eq!(m.setup, Some(Setup::Passive));
        assert_eq!(m.ice_ufrag.as_deref(), Some("nodeufrag"));
        assert_eq!(m.ice_pwd.as_deref(), Some("nodepassword0123456789"));
        assert_eq!(m.fingerprints, [FP.parse::<Fingerprint>().unwrap()]);
        assert!(m.rtcp_mux && m.rtcp_rsize);
        assert!(m.end_of_candidates);
        assert_eq!(m.candidates.len(), 2);
        assert!(m.ssrcs.is_empty() && m.msids.is_empty());
    }
    let c = &ans.media[0].candidates;
    assert_eq!(c[0].address, "198.51.100.1");
    assert_eq!(c[1].address, "::1");
    assert!(c
        .iter()
        .all(|c| c.port == 3478 && c.transport == "udp" && c.typ == CandidateType::Host));
    assert_eq!(c[0].priority, (126 << 24) | (65535 << 8) | 255);
    assert_eq!(c[1].priority, (126 << 24) | (65534 << 8) | 255);
    assert_ne!(c[0].foundation, c[1].foundation);
}

#[test]
fn whip_chromium_extmaps_keep_offer_ids() {
    let ans = whip(CHROMIUM_WHIP);
    let ids = |i: usize| -> Vec<(u16, String)> {
        ans.media[i]
            .extmaps
            .iter()
            .map(|e| (e.id, e.uri.clone()))
            .collect()
    };
    let audio: Vec<u16> = ids(0).iter().map(|e| e.0).collect();
    assert_eq!(audio, [1, 2, 3, 4]);
    let video: Vec<u16> = ids(1).iter().map(|e| e.0).collect();
    // abs-send-time, transport-cc, mid, rid, repaired-rid; not toffset, orientation,
    // playout-delay, content type, timing, color space, dependency descriptor, VLA.
    assert_eq!(video, [2, 3, 4, 10, 11]);
}

#[test]
fn whip_chromium_simulcast_answered_with_rid_recv() {
    let ans = whip(CHROMIUM_WHIP);
    let v = &ans.media[1];
    let rids: Vec<(&str, RidDirection)> = v
        .rids
        .iter()
        .map(|r| (r.id.as_str(), r.direction))
        .collect();
    assert_eq!(
        rids,
        [
            ("q", RidDirection::Recv),
            ("h", RidDirection::Recv),
            ("f", RidDirection::Recv)
        ]
    );
    let sc = v.simulcast.as_ref().unwrap();
    assert!(sc.send.is_empty());
    let recv: Vec<&str> = sc.recv.iter().map(|s| s[0].id.as_str()).collect();
    assert_eq!(recv, ["q", "h", "f"]);
    let text = ans.to_string();
    assert!(text.contains("a=rid:q recv\r\na=rid:h recv\r\na=rid:f recv\r\n"));
    assert!(text.contains("a=simulcast:recv q;h;f\r\n"));
    assert!(ans.media[0].simulcast.is_none());
}

#[test]
fn simulcast_in_any_order_and_names() {
    let offer = CHROMIUM_WHIP
        .replace("a=rid:q send", "a=rid:hi send")
        .replace("a=rid:h send", "a=rid:lo send")
        .replace("a=rid:f send", "a=rid:mid send")
        .replace("a=simulcast:send q;h;f", "a=simulcast:send hi;mid;~lo");
    let ans = answer(&parse(&offer).unwrap(), &params(Direction::RecvOnly)).unwrap();
    assert!(ans.to_string().contains("a=simulcast:recv hi;mid;~lo\r\n"));
    let rids: Vec<&str> = ans.media[1].rids.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(rids, ["hi", "mid", "lo"]);
}

#[test]
fn answers_round_trip() {
    for (offer, dir) in [
        (CHROMIUM_WHIP, Direction::RecvOnly),
        (CHROMIUM_WHEP, Direction::SendOnly),
        (GSTREAMER, Direction::RecvOnly),
        (AIORTC, Direction::RecvOnly),
    ] {
        let ans = answer(&parse(offer).unwrap(), &params(dir)).unwrap();
        let text = ans.to_string();
        assert_eq!(parse(&text).unwrap(), ans, "{text}");
    }
}

#[test]
fn whep_chromium_sendonly_with_ssrcs() {
    let mut p = params(Direction::SendOnly);
    let msid = |t: &str| Msid {
        stream_id: "relais".into(),
        track_id: Some(t.into()),
    };
    p.send_streams = vec![
        SendStream {
            mid: "0".into(),
            ssrc: 1111,
            rtx_ssrc: None,
            cname: "relais-node".into(),
            msid: msid("a"),
        },
        SendStream {
            mid: "1".into(),
            ssrc: 2222,
            rtx_ssrc: Some(3333),
            cname: "relais-node".into(),
            msid: msid("v"),
        },
    ];
    let ans = answer(&parse(CHROMIUM_WHEP).unwrap(), &p).unwrap();
    assert_eq!(ans.bundle, ["0", "1"]);
    assert!(ans.media.iter().all(|m| m.direction == Direction::SendOnly));
    assert_eq!(pts(&ans, 1), [96, 97, 106, 107]);
    assert!(ans
        .media
        .iter()
        .all(|m| m.rids.is_empty() && m.simulcast.is_none()));
    let a = &ans.media[0];
    assert_eq!(a.msids, [msid("a")]);
    assert_eq!(a.ssrcs.len(), 1);
    assert!(a.ssrc_groups.is_empty());
    let v = &ans.media[1];
    assert_eq!(v.ssrc_groups[0].semantics, "FID");
    assert_eq!(v.ssrc_groups[0].ssrcs, [2222, 3333]);
    assert_eq!(v.ssrcs[1].ssrc, 3333);
    assert_eq!(v.ssrcs[0].cname(), Some("relais-node"));
    assert_eq!(v.ssrcs[0].msid(), Some("relais v"));
    let text = ans.to_string();
    assert!(text.contains("a=ssrc-group:FID 2222 3333\r\n"));
    assert!(text.contains("a=ssrc:2222 msid:relais v\r\n"));
    assert!(text.contains("a=msid:relais v\r\n"));
}

#[test]
fn whep_viewer_answered_without_any_publisher() {
    // No send streams configured: still a valid sendonly answer from the node's codecs.
    let ans = answer(&parse(CHROMIUM_WHEP).unwrap(), &params(Direction::SendOnly)).unwrap();
    assert_eq!(pts(&ans, 0), [111]);
    assert!(ans.media.iter().all(|m| m.ssrcs.is_empty()));
}

#[test]
fn gstreamer_uppercase_opus_and_mid_names() {
    let ans = whip(GSTREAMER);
    assert_eq!(ans.bundle, ["video0", "audio1"]);
    assert_eq!(pts(&ans, 0), [96]);
    assert_eq!(
        ans.media[0].codecs[0].rtcp_fb.len(),
        4,
        "nack, nack pli, ccm fir, transport-cc"
    );
    assert_eq!(pts(&ans, 1), [97]);
    assert_eq!(ans.media[1].extmaps[0].id, 1);
    assert!(ans.media.iter().all(|m| m.rtcp_rsize));
}

#[test]
fn aiortc_datachannel_rejected_and_left_out_of_bundle() {
    let ans = whip(AIORTC);
    assert_eq!(ans.bundle, ["0", "1"]);
    let app = &ans.media[2];
    assert_eq!(app.kind, MediaKind::Application);
    assert_eq!(app.port, 0);
    assert_eq!(app.mid.as_deref(), Some("2"));
    assert!(app.candidates.is_empty());
    // sendrecv offer, WHIP node only receives.
    assert_eq!(ans.media[0].direction, Direction::RecvOnly);
    assert!(!ans.media[0].rtcp_rsize);
    // aiortc's H264 offers 42001f first (baseline): only 42e01f (101) matches.
    assert_eq!(pts(&ans, 1), [97, 98, 101, 102]);
    // goog-remb and both nacks offered, ccm fir and transport-cc not.
    assert_eq!(ans.media[1].codecs[0].rtcp_fb.len(), 3);
    assert!(ans
        .to_string()
        .contains("m=application 0 DTLS/SCTP 5000\r\n"));
}

#[test]
fn setup_roles() {
    let answer_setup = |offer_setup: &str| {
        let offer = CHROMIUM_WHIP.replace("a=setup:actpass", offer_setup);
        answer(&parse(&offer).unwrap(), &params(Direction::RecvOnly)).map(|a| a.media[0].setup)
    };
    assert_eq!(answer_setup("a=setup:actpass"), Ok(Some(Setup::Passive)));
    assert_eq!(answer_setup("a=setup:active"), Ok(Some(Setup::Passive)));
    assert_eq!(answer_setup("a=setup:passive"), Ok(Some(Setup::Active)));
    assert_eq!(answer_setup(""), Ok(Some(Setup::Passive)));
    assert!(matches!(
        answer_setup("a=setup:holdconn"),
        Err(SdpError::Unacceptable(_))
    ));
}

#[test]
fn unsupported_codec_rejects_only_that_m_line() {
    let offer = CHROMIUM_WHIP.replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 speex/48000/2");
    let ans = answer(&parse(&offer).unwrap(), &params(Direction::RecvOnly)).unwrap();
    assert_eq!(ans.media[0].port, 0);
    assert_eq!(ans.media[0].direction, Direction::Inactive);
    assert_eq!(ans.bundle, ["1"]);
}

#[test]
fn nothing_in_common_is_an_error() {
    let offer = "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\na=group:BUNDLE 0\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 0\na=mid:0\na=rtcp-mux\n";
    let err = answer(&parse(offer).unwrap(), &params(Direction::RecvOnly)).unwrap_err();
    assert!(err.to_string().contains("codec in common"), "{err}");
}

#[test]
fn h264_profiles() {
    assert_eq!(
        h264_profile("42e01f"),
        Some(H264Profile::ConstrainedBaseline)
    );
    assert_eq!(h264_profile("42001f"), Some(H264Profile::Baseline));
    assert_eq!(h264_profile("4d001f"), Some(H264Profile::Main));
    assert_eq!(
        h264_profile("4de01f"),
        Some(H264Profile::ConstrainedBaseline)
    );
    assert_eq!(h264_profile("64001f"), Some(H264Profile::High));
    assert_eq!(h264_profile("640c1f"), Some(H264Profile::ConstrainedHigh));
    assert_eq!(h264_profile("f4001f"), Some(H264Profile::Other(0xf4)));
    assert_eq!(h264_profile("42e0"), None);
    assert_eq!(h264_profile("zze01f"), None);
    assert_eq!(h264_profile("é2e01f"), None);
}

#[test]
fn host_priority_per_rfc8445() {
    assert_eq!(host_candidate_priority(65535, 1), 2_130_706_431);
    assert_eq!(
        host_candidate_priority(65535, 0),
        host_candidate_priority(65535, 1)
    );
    assert_eq!(host_candidate_priority(0, 256), 126 << 24);
}

#[test]
fn fingerprint_from_str() {
    let fp: Fingerprint = "SHA-256 ab:cd".parse().unwrap();
    assert_eq!(fp.algorithm, "sha-256");
    assert_eq!(fp.value, "AB:CD");
    assert!("sha-256".parse::<Fingerprint>().is_err());
    assert!("sha-256 AB:C".parse::<Fingerprint>().is_err());
    assert!("sha-256 AB:CD extra".parse::<Fingerprint>().is_err());
}
