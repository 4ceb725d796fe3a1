//! Parsing real-world offers into the typed model, and writer round trips.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a test failure"
)]

use relais_whip::sdp::{
    parse, CandidateType, Direction, MediaKind, RidDirection, SessionDescription, Setup,
    SimulcastRid,
};

const CHROMIUM_WHIP: &str = include_str!("fixtures/chromium_whip_offer.sdp");
const CHROMIUM_WHEP: &str = include_str!("fixtures/chromium_whep_offer.sdp");
const GSTREAMER: &str = include_str!("fixtures/gstreamer_offer.sdp");
const AIORTC: &str = include_str!("fixtures/aiortc_offer.sdp");

const ALL: [&str; 4] = [CHROMIUM_WHIP, CHROMIUM_WHEP, GSTREAMER, AIORTC];

#[test]
fn chromium_whip_session_level() {
    let sdp = parse(CHROMIUM_WHIP).unwrap();
    assert_eq!(sdp.origin.session_id, 4_215_775_240_449_105_457);
    assert_eq!(sdp.origin.session_version, 2);
    assert_eq!(sdp.bundle, ["0", "1"]);
    assert!(sdp.extmap_allow_mixed);
    assert!(sdp.ice_ufrag.is_none());
    assert!(sdp.fingerprints.is_empty());
    assert_eq!(sdp.other_attributes.len(), 1, "msid-semantic kept raw");
    assert_eq!(sdp.other_attributes[0].name, "msid-semantic");
    assert_eq!(sdp.media.len(), 2);
}

#[test]
fn chromium_whip_audio_section() {
    let sdp = parse(CHROMIUM_WHIP).unwrap();
    let audio = &sdp.media[0];
    assert_eq!(audio.kind, MediaKind::Audio);
    assert_eq!(audio.port, 9);
    assert_eq!(audio.protocol, "UDP/TLS/RTP/SAVPF");
    assert_eq!(audio.mid.as_deref(), Some("0"));
    assert_eq!(audio.direction, Direction::SendOnly);
    assert_eq!(audio.ice_ufrag.as_deref(), Some("Xk7a"));
    assert_eq!(
        audio.effective_ice_pwd(&sdp),
        Some("3pOqmRN8dD2hBqvU8p0Jc8mT")
    );
    assert_eq!(audio.ice_options, ["trickle"]);
    assert_eq!(audio.setup, Some(Setup::ActPass));
    assert_eq!(audio.fingerprints[0].algorithm, "sha-256");
    assert!(audio.fingerprints[0].value.starts_with("7B:8B:F0"));
    assert!(audio.rtcp_mux && audio.rtcp_rsize);
    let pts: Vec<u8> = audio.codecs.iter().map(|c| c.payload_type).collect();
    assert_eq!(pts, [111, 63, 9, 0, 8, 13, 110, 126]);
    let opus = audio.codec(111).unwrap();
    assert_eq!(
        (opus.name.as_str(), opus.clock_rate, opus.channels),
        ("opus", 48_000, Some(2))
    );
    assert_eq!(opus.fmtp_param("useinbandfec"), Some("1"));
    assert_eq!(
        opus.fmtp.as_ref().unwrap().to_string(),
        "minptime=10;useinbandfec=1"
    );
    assert_eq!(opus.rtcp_fb.len(), 1);
    assert_eq!(opus.rtcp_fb[0].kind, "transport-cc");
    let red = audio.codec(63).unwrap();
    assert_eq!(red.fmtp.as_ref().unwrap().params[0].key, "111/111");
    assert_eq!(red.fmtp.as_ref().unwrap().params[0].value, None);
    assert_eq!(audio.extmaps.len(), 4);
    assert_eq!(audio.extmaps[0].id, 1);
    assert_eq!(
        audio.msids[0].stream_id,
        "2b2d8f4e-6f2a-4d2b-9d51-6b7c1f0e5a11"
    );
    assert_eq!(audio.ssrcs.len(), 1);
    assert_eq!(audio.ssrcs[0].ssrc, 1001);
    assert_eq!(audio.ssrcs[0].cname(), Some("Hk2pW0gq8Ff1aZ3c"));
    assert!(audio.ssrcs[0].msid().unwrap().ends_with("6c7d"));
    assert_eq!(audio.candidates.len(), 2);
    let host = &audio.candidates[0];
    assert_eq!(host.typ, CandidateType::Host);
    assert_eq!(host.priority, 2_122_260_223);
    assert_eq!(host.address, "192.168.1.23");
    assert_eq!(host.port, 54321);
    assert_eq!(
        host.extensions[0],
        ("generation".to_owned(), "0".to_owned())
    );
    let srflx = &audio.candidates[1];
    assert_eq!(srflx.typ, CandidateType::Srflx);
    assert_eq!(srflx.raddr.as_deref(), Some("192.168.1.23"));
    assert_eq!(srflx.rport, Some(54321));
    assert!(!audio.end_of_candidates);
}

#[test]
fn chromium_whip_video_section() {
    let sdp = parse(CHROMIUM_WHIP).unwrap();
    let video = &sdp.media[1];
    assert_eq!(video.kind, MediaKind::Video);
    assert_eq!(video.codecs.len(), 18);
    assert_eq!(video.rtx_payload_type(96), Some(97));
    assert_eq!(video.rtx_payload_type(106), Some(107));
    assert_eq!(video.codec(97).unwrap().apt(), Some(96));
    assert_eq!(video.codec(96).unwrap().rtcp_fb.len(), 5);
    let h264 = video.codec(106).unwrap();
    assert_eq!(h264.fmtp_param("profile-level-id"), Some("42e01f"));
    assert_eq!(h264.fmtp_param("packetization-mode"), Some("1"));
    let ids: Vec<u16> = video.extmaps.iter().map(|e| e.id).collect();
    assert_eq!(ids, [14, 2, 13, 3, 5, 6, 7, 8, 4, 10, 11, 9, 12]);
    let rids: Vec<(&str, RidDirection)> = video
        .rids
        .iter()
        .map(|r| (r.id.as_str(), r.direction))
        .collect();
    assert_eq!(
        rids,
        [
            ("q", RidDirection::Send),
            ("h", RidDirection::Send),
            ("f", RidDirection::Send)
        ]
    );
    let sc = video.simulcast.as_ref().unwrap();
    assert!(sc.recv.is_empty());
    let send: Vec<&str> = sc.send.iter().map(|s| s[0].id.as_str()).collect();
    assert_eq!(send, ["q", "h", "f"]);
    assert!(video.ssrcs.is_empty());
}

#[test]
fn chromium_whep_is_recvonly() {
    let sdp = parse(CHROMIUM_WHEP).unwrap();
    assert!(sdp.media.iter().all(|m| m.direction == Direction::RecvOnly));
    assert!(sdp
        .media
        .iter()
        .all(|m| m.msids.is_empty() && m.ssrcs.is_empty()));
}

#[test]
fn gstreamer_lf_only_ssrcs_and_tcp_candidate() {
    assert!(!GSTREAMER.contains('\r'));
    let sdp = parse(GSTREAMER).unwrap();
    assert_eq!(sdp.bundle, ["video0", "audio1"]);
    assert_eq!(sdp.ice_options, ["trickle"]);
    let video = &sdp.media[0];
    assert_eq!(video.mid.as_deref(), Some("video0"));
    assert_eq!(video.ssrcs[0].ssrc, 3_484_078_950);
    assert_eq!(video.ssrcs[0].cname(), Some("user1234@host-5a1f"));
    assert_eq!(
        video.ssrcs[0].msid(),
        Some("user1234/video-track webrtctransceiver0")
    );
    assert!(video.simulcast.is_none() && video.rids.is_empty());
    assert_eq!(video.candidates[1].transport, "TCP");
    assert_eq!(
        video.candidates[1].extensions,
        [("tcptype".to_owned(), "active".to_owned())]
    );
    assert_eq!(sdp.media[1].codecs[0].name, "OPUS");
}

#[test]
fn aiortc_session_fields_after_candidates_and_datachannel() {
    let sdp = parse(AIORTC).unwrap();
    assert_eq!(sdp.bundle, ["0", "1", "2"]);
    let audio = &sdp.media[0];
    assert_eq!(audio.port, 50213);
    assert_eq!(audio.connection.as_deref(), Some("IN IP4 192.168.1.40"));
    assert_eq!(audio.direction, Direction::SendRecv);
    assert!(audio.end_of_candidates);
    assert_eq!(audio.ice_ufrag.as_deref(), Some("aB3d"));
    // PCMU/PCMA carry rtpmap here; names still resolve.
    assert_eq!(audio.codec(0).unwrap().name, "PCMU");
    let video = &sdp.media[1];
    assert_eq!(video.ssrc_groups[0].semantics, "FID");
    assert_eq!(video.ssrc_groups[0].ssrcs, [1_779_426_519, 3_917_402_212]);
    let app = &sdp.media[2];
    assert_eq!(app.kind, MediaKind::Application);
    assert_eq!(app.protocol, "DTLS/SCTP");
    assert_eq!(app.formats, ["5000"]);
    assert!(app.codecs.is_empty());
    assert!(app.has_attribute("sctpmap"));
}

#[test]
fn static_payload_types_without_rtpmap_and_wildcard_feedback() {
    let text = "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\n\
        m=audio 9 RTP/SAVPF 0 8 120\n\
        a=rtcp-fb:* nack\n\
        a=rtpmap:120 foo/8000\n";
    let sdp = parse(text).unwrap();
    let codecs = &sdp.media[0].codecs;
    assert_eq!(codecs.len(), 3);
    assert_eq!(codecs[0].name, "PCMU");
    assert_eq!(codecs[1].name, "PCMA");
    assert!(codecs.iter().all(|c| c.rtcp_fb.len() == 1));
}

#[test]
fn simulcast_alternatives_paused_and_legacy_syntax() {
    let text = "v=0\no=- 1 1 IN IP4 0.0.0.0\nm=video 9 UDP/TLS/RTP/SAVPF 96\n\
        a=rtpmap:96 VP8/90000\n\
        a=simulcast:send 1,~2;3 recv r\n";
    let sdp = parse(text).unwrap();
    let sc = sdp.media[0].simulcast.as_ref().unwrap();
    assert_eq!(sc.send.len(), 2);
    assert_eq!(
        sc.send[0],
        [
            SimulcastRid {
                id: "1".into(),
                paused: false
            },
            SimulcastRid {
                id: "2".into(),
                paused: true
            }
        ]
    );
    assert_eq!(sc.recv[0][0].id, "r");
    assert_eq!(sdp.session_name, "-");

    let legacy = "v=0\no=- 1 1 IN IP4 0.0.0.0\nm=video 9 UDP/TLS/RTP/SAVPF 96\n\
        a=simulcast: send rid=a;b\n";
    let sc = parse(legacy).unwrap().media[0].simulcast.clone().unwrap();
    assert_eq!(sc.send.len(), 2);
    assert_eq!(sc.send[1][0].id, "b");
}

fn round_trip(sdp: &SessionDescription) {
    let text = sdp.to_string();
    assert!(text.ends_with("\r\n"));
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "only CRLF endings"
    );
    let again = parse(&text).unwrap();
    assert_eq!(&again, sdp, "round trip of:\n{text}");
}

#[test]
fn fixtures_round_trip() {
    for fixture in ALL {
        round_trip(&parse(fixture).unwrap());
    }
}

#[test]
fn writer_output_is_canonical() {
    for fixture in ALL {
        let once = parse(fixture).unwrap().to_string();
        let twice = parse(&once).unwrap().to_string();
        assert_eq!(once, twice);
    }
}
