//! Malformed and unacceptable SDPs produce errors that name the line / attribute.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a test failure"
)]

use relais_whip::sdp::{
    answer, parse, AnswerParams, Direction, SdpError, MAX_LINES, MAX_LINE_LENGTH,
    MAX_MEDIA_SECTIONS, MAX_SDP_BYTES,
};

const CHROMIUM_WHIP: &str = include_str!("fixtures/chromium_whip_offer.sdp");
const FP: &str = "sha-256 AB:CD:EF:01";

fn parse_err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

fn answer_err(offer: &str) -> SdpError {
    let params = AnswerParams::new("u", "p", FP.parse().unwrap(), Direction::RecvOnly);
    answer(&parse(offer).unwrap(), &params).unwrap_err()
}

/// Line number (1-based) of the first line of the fixture containing `needle`.
fn line_of(needle: &str) -> usize {
    CHROMIUM_WHIP
        .lines()
        .position(|l| l.contains(needle))
        .unwrap()
        + 1
}

#[test]
fn missing_v_line() {
    assert_eq!(
        parse_err("o=- 1 1 IN IP4 0.0.0.0\r\n"),
        "line 1: the first line must be v=0"
    );
    assert_eq!(parse(""), Err(SdpError::MissingLine("v=")));
    assert_eq!(parse("\n\n"), Err(SdpError::MissingLine("v=")));
    assert_eq!(parse_err("v=1\n"), "line 1: v= must be 0, found '1'");
}

#[test]
fn missing_origin() {
    assert_eq!(parse("v=0\ns=-\n"), Err(SdpError::MissingLine("o=")));
    assert!(parse_err("v=0\no=- x 1 IN IP4 0.0.0.0\n")
        .contains("line 2: o=: session id 'x' is not a number"));
    assert!(parse_err("v=0\no=- 1\n").contains("line 2: o= needs 6 fields"));
}

#[test]
fn not_a_type_value_line() {
    assert!(parse_err("v=0\nhello\n").starts_with("line 2: expected '<type>=<value>'"));
}

#[test]
fn bad_m_line() {
    let line = line_of("m=video");
    let text = CHROMIUM_WHIP.replace(
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "m=video nine UDP/TLS/RTP/SAVPF 96 97",
    );
    assert_eq!(
        parse_err(&text),
        format!("line {line}: m=: port 'nine' is not a number")
    );
    let text = CHROMIUM_WHIP.replace(
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "m=video 9 UDP/TLS/RTP/SAVPF x 97",
    );
    assert_eq!(
        parse_err(&text),
        format!("line {line}: m=: payload type 'x' is not a number")
    );
    assert!(parse_err("v=0\no=- 1 1 IN IP4 0.0.0.0\nm=video 9\n").contains("line 3: m= needs"));
    assert!(
        parse_err("v=0\no=- 1 1 IN IP4 0.0.0.0\nm=video 9 RTP/AVP\n")
            .contains("line 3: m= line has no format")
    );
    assert!(
        parse_err("v=0\no=- 1 1 IN IP4 0.0.0.0\nm=video 9 RTP/AVP 200\n")
            .contains("payload type 200 is above 127")
    );
}

#[test]
fn rtpmap_payload_type_not_a_number() {
    let line = line_of("a=rtpmap:111 opus");
    let text = CHROMIUM_WHIP.replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:x opus/48000/2");
    assert_eq!(
        parse_err(&text),
        format!("line {line}: a=rtpmap: payload type 'x' is not a number")
    );
    let text = CHROMIUM_WHIP.replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 opus");
    assert_eq!(
        parse_err(&text),
        format!("line {line}: a=rtpmap: clock rate missing for 'opus'")
    );
    let text = CHROMIUM_WHIP.replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 opus/fast/2");
    assert_eq!(
        parse_err(&text),
        format!("line {line}: a=rtpmap: clock rate 'fast' is not a number")
    );
}

#[test]
fn other_attribute_syntax_errors_name_the_attribute() {
    let cases = [
        (
            "a=fmtp:111 minptime",
            "a=fmtp:abc minptime",
            "a=fmtp: payload type 'abc'",
        ),
        (
            "a=rtcp-fb:111 transport-cc",
            "a=rtcp-fb:111",
            "a=rtcp-fb: feedback type missing",
        ),
        (
            "a=extmap:1 urn",
            "a=extmap:0 urn",
            "a=extmap: id 0 is reserved",
        ),
        (
            "a=extmap:1 urn",
            "a=extmap:1/sideways urn",
            "a=extmap: unknown direction 'sideways'",
        ),
        (
            "a=rid:q send",
            "a=rid:q both",
            "a=rid: direction must be send or recv",
        ),
        (
            "a=simulcast:send q;h;f",
            "a=simulcast:send",
            "a=simulcast: rid list missing",
        ),
        (
            "a=simulcast:send q;h;f",
            "a=simulcast:send ;",
            "a=simulcast: empty rid list after 'send'",
        ),
        (
            "a=setup:actpass",
            "a=setup:whatever",
            "a=setup: unknown role 'whatever'",
        ),
        (
            "a=fingerprint:sha-256 7B",
            "a=fingerprint:sha-256 ZZ",
            "a=fingerprint: expected",
        ),
        (
            "a=ssrc:1001 cname",
            "a=ssrc:-5 cname",
            "a=ssrc: SSRC '-5' is not a number",
        ),
        (
            "a=candidate:1467250027 1 udp 2122260223",
            "a=candidate:1467250027 1 udp high",
            "a=candidate: priority 'high' is not a number",
        ),
        (
            "typ host generation",
            "typ nat generation",
            "a=candidate: unknown candidate type 'nat'",
        ),
        ("a=mid:1", "a=mid:", "a=mid: value missing"),
    ];
    for (needle, replacement, expected) in cases {
        let line = line_of(needle);
        let text = CHROMIUM_WHIP.replacen(needle, replacement, 1);
        let err = parse_err(&text);
        assert!(
            err.starts_with(&format!("line {line}: {expected}")),
            "{needle}: got {err}"
        );
    }
}

#[test]
fn no_rtcp_mux() {
    let err = answer_err(&CHROMIUM_WHIP.replacen("a=rtcp-mux\r\n", "", 1));
    assert_eq!(
        err,
        SdpError::MissingAttribute {
            index: 0,
            mid: "0".into(),
            attribute: "a=rtcp-mux"
        }
    );
    assert_eq!(err.to_string(), "m-line 0 (mid 0): a=rtcp-mux is missing");
}

#[test]
fn no_ice_credentials() {
    let offer = CHROMIUM_WHIP.replace("a=ice-ufrag:Xk7a\r\n", "");
    assert_eq!(
        answer_err(&offer).to_string(),
        "m-line 0 (mid 0): a=ice-ufrag is missing"
    );
    let offer = CHROMIUM_WHIP.replace("a=ice-pwd:3pOqmRN8dD2hBqvU8p0Jc8mT\r\n", "");
    assert_eq!(
        answer_err(&offer).to_string(),
        "m-line 0 (mid 0): a=ice-pwd is missing"
    );
}

#[test]
fn session_level_credentials_suffice() {
    let offer = CHROMIUM_WHIP.replace("a=ice-ufrag:Xk7a\r\n", "").replace(
        "a=extmap-allow-mixed\r\n",
        "a=extmap-allow-mixed\r\na=ice-ufrag:Xk7a\r\n",
    );
    let params = AnswerParams::new("u", "p", FP.parse().unwrap(), Direction::RecvOnly);
    assert!(answer(&parse(&offer).unwrap(), &params).is_ok());
}

#[test]
fn no_fingerprint() {
    let offer: String = CHROMIUM_WHIP
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("a=fingerprint"))
        .collect();
    assert_eq!(
        answer_err(&offer).to_string(),
        "m-line 0 (mid 0): a=fingerprint is missing"
    );
}

#[test]
fn several_m_lines_without_bundle() {
    let offer = CHROMIUM_WHIP.replace("a=group:BUNDLE 0 1\r\n", "");
    assert!(matches!(answer_err(&offer), SdpError::Unacceptable(m) if m.contains("BUNDLE")));
}

#[test]
fn caps() {
    let mut many = String::from("v=0\n");
    many.push_str(&"a=x\n".repeat(MAX_LINES));
    assert_eq!(parse(&many), Err(SdpError::TooManyLines { max: MAX_LINES }));

    let long = format!(
        "v=0\no=- 1 1 IN IP4 0.0.0.0\na={}\n",
        "x".repeat(MAX_LINE_LENGTH)
    );
    assert_eq!(
        parse(&long),
        Err(SdpError::LineTooLong {
            line: 3,
            max: MAX_LINE_LENGTH
        })
    );

    let huge = "a".repeat(MAX_SDP_BYTES + 1);
    assert!(matches!(parse(&huge), Err(SdpError::TooLarge { .. })));

    let mut sections = String::from("v=0\no=- 1 1 IN IP4 0.0.0.0\n");
    sections.push_str(&"m=audio 9 RTP/AVP 0\n".repeat(MAX_MEDIA_SECTIONS));
    assert_eq!(parse(&sections).unwrap().media.len(), MAX_MEDIA_SECTIONS);
    sections.push_str("m=audio 9 RTP/AVP 0\n");
    assert_eq!(
        parse(&sections),
        Err(SdpError::TooManyMediaSections {
            line: MAX_MEDIA_SECTIONS + 3,
            max: MAX_MEDIA_SECTIONS
        })
    );
}

#[test]
fn long_values_are_truncated_in_messages() {
    let text = format!(
        "v=0\no=- 1 1 IN IP4 0.0.0.0\nm=video 9 RTP/AVP {}\n",
        "9".repeat(1000)
    );
    assert!(parse_err(&text).len() < 200);
}

#[test]
fn unknown_attributes_and_lines_are_tolerated() {
    let text = CHROMIUM_WHIP.replace(
        "a=mid:1\r\n",
        "a=mid:1\r\na=x-google-flag:conference\r\na=weird\r\nb=AS:2500\r\nz=whatever\r\n",
    );
    let sdp = parse(&text).unwrap();
    assert!(sdp.media[1].has_attribute("x-google-flag"));
    assert!(sdp.media[1].has_attribute("weird"));
}
