//! Abuse limits end to end against the `relais` binary: exceeding each limit is refused (or
//! the packets dropped) and counted in `/about/stats`, and other conferences keep working.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::client::{key_all, pump, Call};
use common::{http, http_auth, Node, CHROMIUM_WHEP_OFFER, CHROMIUM_WHIP_OFFER};

async fn post_offer(addr: SocketAddr, path: String, offer: &'static str) -> common::Response {
    tokio::task::spawn_blocking(move || {
        http(addr, "POST", &path, Some(("application/sdp", offer))).unwrap()
    })
    .await
    .unwrap()
}

async fn delete(addr: SocketAddr, path: String) -> u16 {
    tokio::task::spawn_blocking(move || http_auth(addr, "DELETE", &path, None).unwrap().status)
        .await
        .unwrap()
}

/// A counter of `/about/stats` (flat JSON).
async fn stat(node: &Node, name: &str) -> u64 {
    let addr = node.private;
    let body = tokio::task::spawn_blocking(move || {
        http_auth(addr, "GET", "/about/stats", None).unwrap().body
    })
    .await
    .unwrap();
    let key = format!("\"{name}\":");
    let rest = &body[body
        .find(&key)
        .unwrap_or_else(|| panic!("{name} in {body}"))
        + key.len()..];
    rest[..rest.find([',', '}']).unwrap()].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conference_and_endpoint_limits() {
    let node = Node::start(&[
        "--limits-max-endpoints-per-conference",
        "2",
        "--limits-max-conferences",
        "1",
    ]);
    let mut locations = Vec::new();
    for _ in 0..2 {
        let r = post_offer(node.public, "/whep/fullstream".into(), CHROMIUM_WHEP_OFFER).await;
        assert_eq!(r.status, 201, "{}", r.body);
        locations.push(r.header("location").unwrap().to_owned());
    }
    // A third endpoint in the conference, and a second conference: refused.
    let r = post_offer(node.public, "/whep/fullstream".into(), CHROMIUM_WHEP_OFFER).await;
    assert_eq!(r.status, 503, "{}", r.body);
    let r = post_offer(
        node.public,
        "/whip/secondstream".into(),
        CHROMIUM_WHIP_OFFER,
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(stat(&node, "refused_conference_full").await, 1);
    assert_eq!(stat(&node, "refused_too_many_conferences").await, 1);
    assert_eq!(stat(&node, "endpoints").await, 2);

    // A freed slot is usable again; an empty conference frees the node's slot.
    assert_eq!(delete(node.public, locations.pop().unwrap()).await, 200);
    let r = post_offer(node.public, "/whep/fullstream".into(), CHROMIUM_WHEP_OFFER).await;
    assert_eq!(r.status, 201, "{}", r.body);
    locations.push(r.header("location").unwrap().to_owned());
    for location in locations {
        assert_eq!(delete(node.public, location).await, 200);
    }
    let r = post_offer(
        node.public,
        "/whep/secondstream".into(),
        CHROMIUM_WHEP_OFFER,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_rate_limit() {
    let node = Node::start(&["--limits-max-sessions-per-second", "3"]);
    let mut statuses = Vec::new();
    for i in 0..4 {
        let r = post_offer(node.public, format!("/whep/rate{i}"), CHROMIUM_WHEP_OFFER).await;
        statuses.push(r.status);
    }
    assert_eq!(statuses, [201, 201, 201, 503]);
    assert_eq!(stat(&node, "refused_rate_limited").await, 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = post_offer(node.public, "/whep/rate4".into(), CHROMIUM_WHEP_OFFER).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtls_handshakes_in_flight_limit() {
    let node = Node::start(&["--limits-max-dtls-handshakes-in-flight", "2"]);
    for i in 0..2 {
        let r = post_offer(node.public, format!("/whep/dtls{i}"), CHROMIUM_WHEP_OFFER).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = post_offer(node.public, "/whep/dtls2".into(), CHROMIUM_WHEP_OFFER).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(stat(&node, "refused_dtls_busy").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_ssrcs_in_the_offer() {
    let node = Node::start(&["--limits-max-ssrcs-per-endpoint", "2"]);
    // The Chromium offer: one audio SSRC and three simulcast rids.
    let r = post_offer(node.public, "/whip/simulcast".into(), CHROMIUM_WHIP_OFFER).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("4 media sources") && r.body.contains("max_ssrcs_per_endpoint 2"),
        "{}",
        r.body
    );
    assert_eq!(stat(&node, "refused_too_many_ssrcs").await, 1);
    // Viewers announce no sources.
    let r = post_offer(node.public, "/whep/simulcast".into(), CHROMIUM_WHEP_OFFER).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_rate_limit_drops_and_other_calls_continue() {
    let node = Node::start(&["--limits-max-packet-rate-per-source", "50"]);
    let mut flood = Call::connect(&node, "floodstream").await;
    let mut calm = Call::connect(&node, "calmstream").await;
    key_all(&mut [&mut flood, &mut calm], Duration::from_secs(20)).await;
    // Let the buckets fill (one second's worth at most).
    tokio::time::sleep(Duration::from_millis(200)).await;
    pump(
        &mut [&mut flood, &mut calm],
        &[200, 25],
        Duration::from_secs(1),
    )
    .await;
    let dropped = stat(&node, "dropped_rate_limited").await;
    // 200 packets in 1 s against 50/s with a burst of 50: about 100 pass, 100 dropped.
    assert!(
        (60..=160).contains(&dropped),
        "dropped {dropped}; flood viewer got {}",
        flood.received
    );
    assert!(
        flood.received <= 200 - dropped,
        "flood viewer got {} with {dropped} dropped",
        flood.received
    );
    assert!(flood.received > 0);
    // The other conference is untouched: its viewer decrypts (nearly) all 25 packets.
    assert!(calm.received >= 20, "calm viewer got {}", calm.received);
    eprintln!(
        "rate limit: dropped {dropped}, flood viewer {}, calm viewer {}",
        flood.received, calm.received
    );
    // Counted in the scrape under its own reason.
    let addr = node.private;
    let text =
        tokio::task::spawn_blocking(move || http_auth(addr, "GET", "/metrics", None).unwrap().body)
            .await
            .unwrap();
    let rate_limited: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("relais_dropped_packets_total{reason=\"rate_limited\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(rate_limited, dropped);
}

/// The SRTP receiver of a publisher tracks at most `limits.max_ssrcs_per_endpoint` SSRCs:
/// packets of more distinct SSRCs are dropped and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srtp_receiver_caps_ssrcs() {
    let node = Node::start(&["--limits-max-ssrcs-per-endpoint", "4"]);
    let mut call = Call::connect(&node, "ssrcstream").await;
    key_all(&mut [&mut call], Duration::from_secs(20)).await;
    let sender = call.sender.as_mut().unwrap();
    // SSRCs 2001..=2006: the first four get tracked, the last two are refused.
    for ssrc in 2001u32..=2006 {
        let mut packet = common::client::opus_packet(1);
        packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
        sender.protect_rtp_vec(&mut packet).unwrap();
        call.publisher.send(&packet).await;
    }
    let addr = node.private;
    let until = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let body = tokio::task::spawn_blocking(move || {
            http_auth(addr, "GET", "/about/stats", None).unwrap().body
        })
        .await
        .unwrap();
        if body.contains("\"too_many_ssrcs\":2") {
            break;
        }
        assert!(std::time::Instant::now() < until, "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stat(&node, "rtp_received").await, 4);
}
