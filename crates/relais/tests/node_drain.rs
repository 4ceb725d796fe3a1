//! Graceful drain end to end against the `relais` binary: SIGTERM or `POST /colibri/shutdown`
//! during a running call refuses new conferences, still admits endpoints to the running one,
//! keeps liveness while readiness fails, keeps media flowing, and exits 0 once the last
//! endpoint is gone (or at the drain timeout, or on a second SIGTERM).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::client::{key_all, pump, Call};
use common::{http, http_auth, Node, CHROMIUM_WHEP_OFFER, CHROMIUM_WHIP_OFFER};

const TOKEN: &str = "drain-test-token";

async fn request(
    addr: SocketAddr,
    method: &'static str,
    path: String,
    token: Option<&'static str>,
) -> common::Response {
    tokio::task::spawn_blocking(move || http_auth(addr, method, &path, token).unwrap())
        .await
        .unwrap()
}

async fn post_offer(addr: SocketAddr, path: String, offer: &'static str) -> common::Response {
    tokio::task::spawn_blocking(move || {
        http(addr, "POST", &path, Some(("application/sdp", offer))).unwrap()
    })
    .await
    .unwrap()
}

/// Polls `/about/ready` until it answers 503 `draining` (bounded).
async fn wait_draining(node: &Node) {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let r = request(node.private, "GET", "/about/ready".into(), None).await;
        if r.status == 503 {
            assert_eq!(r.body, "draining\n");
            return;
        }
        assert!(
            Instant::now() < until,
            "not draining: {} {}",
            r.status,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_running_call_then_exits_0() {
    let started = Instant::now();
    let mut node = Node::start(&["--http-private-api-token", TOKEN]);
    let mut call = Call::connect(&node, "drainstreama").await;
    key_all(&mut [&mut call], Duration::from_secs(20)).await;
    pump(&mut [&mut call], &[100], Duration::from_millis(300)).await;
    let before = call.received;
    assert!(before > 0, "no media before the drain: {}", node.log_text());

    // Without the token the shutdown route is refused and nothing changes.
    let r = request(node.private, "POST", "/colibri/shutdown".into(), None).await;
    assert_eq!(r.status, 401);
    let r = request(node.private, "GET", "/about/ready".into(), None).await;
    assert_eq!(r.status, 200, "{}", r.body);

    node.sigterm();
    wait_draining(&node).await;

    // A new conference is refused; the running one still admits a viewer.
    let r = post_offer(
        node.public,
        "/whip/drainstreamb".into(),
        CHROMIUM_WHIP_OFFER,
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("GRACEFUL_SHUTDOWN"), "{}", r.body);
    let r = post_offer(
        node.public,
        "/whep/drainstreama".into(),
        CHROMIUM_WHEP_OFFER,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let late_viewer = r.header("location").unwrap().to_owned();

    let r = request(node.private, "GET", "/about/health".into(), None).await;
    assert_eq!(r.status, 200);
    let r = request(node.private, "GET", "/colibri/stats".into(), Some(TOKEN)).await;
    assert!(r.body.contains("\"graceful_shutdown\":true"), "{}", r.body);
    let r = request(node.private, "GET", "/metrics".into(), Some(TOKEN)).await;
    assert!(r.body.contains("\nrelais_draining 1\n"), "{}", r.body);
    let r = request(node.private, "GET", "/about/stats".into(), Some(TOKEN)).await;
    assert!(r.body.contains("\"refused_draining\":1"), "{}", r.body);

    // The call continues.
    pump(&mut [&mut call], &[100], Duration::from_millis(500)).await;
    assert!(
        call.received > before + 10,
        "viewer got {} after the drain began (had {before})",
        call.received
    );
    assert!(node.is_running());

    for location in [
        call.viewer.location.clone(),
        call.publisher.location.clone(),
        late_viewer,
    ] {
        assert!(node.is_running(), "exited before the last endpoint left");
        let r = request(node.public, "DELETE", location, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let status = node
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running after the last endpoint left"));
    assert!(status.success(), "{status}: {}", node.log_text());
    eprintln!("drain test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colibri_shutdown_needs_the_token_and_drains() {
    let mut node = Node::start(&["--http-private-api-token", TOKEN]);
    let r = post_offer(
        node.public,
        "/whep/shutdownstream".into(),
        CHROMIUM_WHEP_OFFER,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let first = r.header("location").unwrap().to_owned();

    let r = request(node.private, "POST", "/colibri/shutdown".into(), None).await;
    assert_eq!(r.status, 401);
    let r = request(
        node.private,
        "POST",
        "/colibri/shutdown".into(),
        Some("wrong"),
    )
    .await;
    assert_eq!(r.status, 401);
    let r = request(node.private, "GET", "/about/ready".into(), None).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let r = request(
        node.private,
        "POST",
        "/colibri/shutdown".into(),
        Some(TOKEN),
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (200, "draining\n"));
    wait_draining(&node).await;
    // Idempotent.
    let r = request(
        node.private,
        "POST",
        "/colibri/shutdown".into(),
        Some(TOKEN),
    )
    .await;
    assert_eq!(r.status, 200);

    let r = post_offer(node.public, "/whep/otherstream".into(), CHROMIUM_WHEP_OFFER).await;
    assert_eq!(r.status, 503, "{}", r.body);
    let r = post_offer(
        node.public,
        "/whep/shutdownstream".into(),
        CHROMIUM_WHEP_OFFER,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let second = r.header("location").unwrap().to_owned();

    for location in [first, second] {
        let r = request(node.public, "DELETE", location, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let status = node.wait_exit(Duration::from_secs(5)).expect("exit");
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_sigterm_stops_at_once() {
    let mut node = Node::start(&[]);
    let r = post_offer(node.public, "/whep/stuckstream".into(), CHROMIUM_WHEP_OFFER).await;
    assert_eq!(r.status, 201, "{}", r.body);
    node.sigterm();
    wait_draining(&node).await;
    assert!(node.is_running());
    node.sigterm();
    let status = node.wait_exit(Duration::from_secs(5)).expect("exit");
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_timeout_closes_what_is_left() {
    let mut node = Node::start(&["--limits-drain-timeout-s", "1"]);
    let r = post_offer(node.public, "/whep/stuckstream".into(), CHROMIUM_WHEP_OFFER).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let start = Instant::now();
    node.sigterm();
    let status = node.wait_exit(Duration::from_secs(6)).expect("exit");
    assert!(status.success(), "{status}");
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "exited before the timeout"
    );
    assert!(
        node.log_text().contains("drain timeout"),
        "{}",
        node.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_at_once() {
    let mut node = Node::start(&[]);
    let r = post_offer(node.public, "/whep/stuckstream".into(), CHROMIUM_WHEP_OFFER).await;
    assert_eq!(r.status, 201, "{}", r.body);
    node.signal("-INT");
    let status = node.wait_exit(Duration::from_secs(5)).expect("exit");
    assert!(status.success(), "{status}");
    assert!(node.log_text().contains("closed: node shutting down"));
}
