//! Runs the built `relais` binary as a serving node on loopback: health and version, WHIP and
//! WHEP offer/answer, session deletion, and garbage on the media port.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::{http, Node, CHROMIUM_WHEP_OFFER, CHROMIUM_WHIP_OFFER};
use relais_whip::sdp::{self, Direction, Setup};

#[test]
fn health_version_and_stats() {
    let node = Node::start(&[]);
    let r = http(node.private, "GET", "/about/health", None).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    let r = http(node.private, "GET", "/about/version", None).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.contains("\"name\":\"relais\""), "{}", r.body);
    assert!(
        r.body
            .contains(&format!("\"version\":\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{}",
        r.body
    );
    assert!(r.body.contains("\"os\":"), "{}", r.body);
    let r = http(node.private, "GET", "/about/stats", None).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.contains("\"endpoints\":0"), "{}", r.body);
    // The demo page is on the public listener.
    let r = http(node.public, "GET", "/", None).unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn whip_publish_answer_then_delete() {
    let node = Node::start(&[]);
    let r = http(
        node.public,
        "POST",
        "/whip/test-stream",
        Some(("application/sdp", CHROMIUM_WHIP_OFFER)),
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let location = r.header("location").unwrap().to_owned();
    assert!(location.starts_with("/whip/test-stream/"), "{location}");
    let answer = sdp::parse(&r.body).unwrap();
    assert!(answer.ice_lite);
    let accepted: Vec<_> = answer.media.iter().filter(|m| m.port != 0).collect();
    assert!(!accepted.is_empty());
    for m in &accepted {
        assert!(
            m.candidates
                .iter()
                .any(|c| c.port == node.media.port() && c.address == "127.0.0.1"),
            "{}",
            r.body
        );
        assert!(!m.effective_fingerprints(&answer).is_empty());
        assert_eq!(m.effective_setup(&answer), Some(Setup::Passive));
        assert_eq!(m.direction, Direction::RecvOnly);
        // REMB-only for publishers until bandwidth estimation exists.
        assert!(!m
            .extmaps
            .iter()
            .any(|e| e.uri.contains("transport-wide-cc")));
        assert!(m
            .codecs
            .iter()
            .all(|c| c.rtcp_fb.iter().all(|fb| fb.kind != "transport-cc")));
    }
    let r = http(node.private, "GET", "/about/stats", None).unwrap();
    assert!(r.body.contains("\"endpoints\":1"), "{}", r.body);

    let r = http(node.public, "DELETE", &location, None).unwrap();
    assert_eq!(r.status, 200);
    let r = http(node.public, "DELETE", &location, None).unwrap();
    assert_eq!(r.status, 404);
    let r = http(node.public, "DELETE", "/whip/test-stream/0123abcd", None).unwrap();
    assert_eq!(r.status, 404);
    // The session's resource is only reachable under its own kind and stream.
    let r = http(
        node.public,
        "POST",
        "/whip/other",
        Some(("application/sdp", CHROMIUM_WHIP_OFFER)),
    )
    .unwrap();
    assert_eq!(r.status, 201);
    let location = r.header("location").unwrap().to_owned();
    let session = location.rsplit('/').next().unwrap();
    let r = http(
        node.public,
        "DELETE",
        &format!("/whep/other/{session}"),
        None,
    )
    .unwrap();
    assert_eq!(r.status, 404);
    let r = http(node.public, "DELETE", &location, None).unwrap();
    assert_eq!(r.status, 200);
    let r = http(node.private, "GET", "/about/stats", None).unwrap();
    assert!(r.body.contains("\"endpoints\":0"), "{}", r.body);
}

#[test]
fn whep_play_answer_announces_ssrcs() {
    let node = Node::start(&[]);
    let r = http(
        node.public,
        "POST",
        "/whep/test-stream",
        Some(("application/sdp", CHROMIUM_WHEP_OFFER)),
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let answer = sdp::parse(&r.body).unwrap();
    assert!(answer.ice_lite);
    let accepted: Vec<_> = answer.media.iter().filter(|m| m.port != 0).collect();
    assert!(!accepted.is_empty());
    for m in accepted {
        assert_eq!(m.direction, Direction::SendOnly);
        assert!(!m.ssrcs.is_empty(), "{}", r.body);
    }
}

#[test]
fn offer_without_media_is_refused() {
    let node = Node::start(&[]);
    let offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
    let r = http(
        node.public,
        "POST",
        "/whip/x",
        Some(("application/sdp", offer)),
    )
    .unwrap();
    assert!(
        r.status == 400 || r.status == 422,
        "{} {}",
        r.status,
        r.body
    );
}

#[test]
fn garbage_on_the_media_port_is_dropped_and_counted() {
    let mut node = Node::start(&[]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let garbage: [&[u8]; 6] = [
        b"",
        b"\x00",
        b"\x00\x01\x00\x00garbage-stun",
        b"\x16\xfe\xfd not dtls",
        b"\x80\x60 not rtp",
        &[0xffu8; 1500],
    ];
    for _ in 0..20 {
        for g in garbage {
            socket.send_to(g, node.media).unwrap();
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(node.is_running());
    let r = http(node.private, "GET", "/about/health", None).unwrap();
    assert_eq!(r.status, 200);
    let r = http(node.private, "GET", "/about/stats", None).unwrap();
    assert!(
        !r.body.contains("\"dropped_unknown_source\":0"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("\"stun_unknown_ufrag\":0"), "{}", r.body);
    // No client address in the logs at default settings.
    let port = socket.local_addr().unwrap().port().to_string();
    assert!(!node.log_text().contains(&port), "{}", node.log_text());
}

/// The first SIGTERM drains (the session stays open); the second closes it and exits 0.
#[test]
fn second_sigterm_shuts_down_cleanly_with_a_session_open() {
    let mut node = Node::start(&[]);
    let r = http(
        node.public,
        "POST",
        "/whip/bye",
        Some(("application/sdp", CHROMIUM_WHIP_OFFER)),
    )
    .unwrap();
    assert_eq!(r.status, 201);
    node.sigterm();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while http(node.private, "GET", "/about/ready", None)
        .unwrap()
        .status
        != 503
    {
        assert!(std::time::Instant::now() < until, "not draining");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(node.is_running());
    assert!(node.terminate(), "{}", node.log_text());
    let log = node.log_text();
    assert!(log.contains("closed: node shutting down"), "{log}");
    assert!(log.contains("media task stopped"), "{log}");
}

/// `GET path` with `Authorization: Bearer token`; returns the status code.
fn get_with_bearer(addr: std::net::SocketAddr, path: &str, token: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    raw.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn private_api_token_guards_everything_but_the_probes() {
    let node = Node::start(&["--http-private-api-token", "s3cret-token"]);
    // Liveness and readiness answer without the token (orchestrators cannot present one).
    assert_eq!(
        http(node.private, "GET", "/about/health", None)
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        http(node.private, "GET", "/about/ready", None)
            .unwrap()
            .status,
        200
    );
    for path in [
        "/metrics",
        "/about/stats",
        "/about/version",
        "/colibri/stats",
    ] {
        let r = http(node.private, "GET", path, None).unwrap();
        assert_eq!(r.status, 401, "{path} without the token");
        assert_eq!(get_with_bearer(node.private, path, "wrong"), 401, "{path}");
        assert_eq!(
            get_with_bearer(node.private, path, "s3cret-token"),
            200,
            "{path}"
        );
    }
}
