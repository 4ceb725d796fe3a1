//! Metrics end to end: a WHIP publisher and a WHEP viewer over real ICE/DTLS/SRTP on
//! loopback against the `relais` binary, then `/metrics`, `/colibri/stats` and
//! `/about/ready` on the private listener. The client is the one of `node_e2e.rs`, counting
//! every datagram it sends to the node.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::client::{opus_packet, Client};
use common::{http, Node, CHROMIUM_WHEP_OFFER, CHROMIUM_WHIP_OFFER};
use relais_rtp::demux::{classify, DatagramKind};
use relais_srtp::{SrtpConfig, SrtpReceiver, SrtpSender};

async fn get(node: SocketAddr, path: &'static str) -> common::Response {
    tokio::task::spawn_blocking(move || http(node, "GET", path, None).unwrap())
        .await
        .unwrap()
}

/// The value of the sample line `series` (name plus labels, exactly) in the exposition.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} missing from:\n{text}"))
        .parse()
        .unwrap()
}

/// `promtool check metrics` on the scrape (Debian package `prometheus`, which scripts/test
/// installs); a missing promtool fails the test with a clear message.
fn promtool_check(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => panic!("promtool cannot run: {e} (install the Debian package `prometheus`)"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\non:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const STREAM: &str = "metricsprobestream";
const RTP_PACKETS: u16 = 300;

/// Publisher → node → viewer with `RTP_PACKETS` RTP packets; then the node's counters
/// match what the clients sent, the scrape leaks no name or port, `/colibri/stats` has the
/// JVB keys and readiness follows stress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_real_call() {
    // Capacity 10 pps: the call's few hundred packets per 5 s window exceed max_stress.
    let node = Node::start(&["--limits-capacity-pps", "10", "--limits-max-stress", "0.9"]);
    // No sample yet: stress 0, ready.
    let r = get(node.private, "/about/ready").await;
    assert_eq!(r.status, 200, "{}", r.body);

    let mut viewer = Client::connect(&node, &format!("/whep/{STREAM}"), CHROMIUM_WHEP_OFFER).await;
    let mut publisher =
        Client::connect(&node, &format!("/whip/{STREAM}"), CHROMIUM_WHIP_OFFER).await;
    let mut sender: Option<SrtpSender> = None;
    let mut receiver: Option<SrtpReceiver> = None;
    let mut seq: u16 = 1;
    let mut received = 0u64;
    let mut last_rtp = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut done_at: Option<Instant> = None;
    loop {
        assert!(
            Instant::now() < deadline,
            "call did not complete; viewer got {received}; log:\n{}",
            node.log_text()
        );
        publisher.step(Duration::from_millis(2)).await;
        if let Some(mut datagram) = viewer.step(Duration::from_millis(2)).await {
            if let (Some(receiver), DatagramKind::Rtp) = (receiver.as_mut(), classify(&datagram)) {
                if receiver.unprotect_rtp(&mut datagram).is_ok() {
                    received += 1;
                }
            }
        }
        if receiver.is_none() {
            if let Some(o) = &viewer.outcome {
                receiver = Some(SrtpReceiver::new(&o.keys.remote, SrtpConfig::default()).unwrap());
            }
        }
        if sender.is_none() {
            if let Some(o) = &publisher.outcome {
                sender = Some(SrtpSender::new(&o.keys.local, SrtpConfig::default()).unwrap());
            }
        }
        if let (Some(sender), true) = (sender.as_mut(), receiver.is_some()) {
            if seq <= RTP_PACKETS && last_rtp.elapsed() >= Duration::from_millis(4) {
                last_rtp = Instant::now();
                let mut packet = opus_packet(seq);
                seq += 1;
                sender.protect_rtp_vec(&mut packet).unwrap();
                publisher.send(&packet).await;
                if seq > RTP_PACKETS {
                    done_at = Some(Instant::now());
                }
            }
        }
        // Keep stepping briefly after the last packet so the viewer reads what is in flight.
        if done_at.is_some_and(|t| t.elapsed() > Duration::from_millis(300)) {
            break;
        }
    }
    assert!(received > 0, "the viewer received nothing");
    // The clients are silent now; let the node read what is still queued.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent_to_node = publisher.sent + viewer.sent;

    let r = get(node.private, "/metrics").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4"),
        "content type"
    );
    let text = r.body;
    let packets_received = sample(&text, "relais_packets_received_total");
    assert!(
        packets_received >= f64::from(RTP_PACKETS),
        "{packets_received} < {RTP_PACKETS} RTP packets sent"
    );
    let diff = (packets_received - sent_to_node as f64).abs();
    assert!(
        diff <= sent_to_node as f64 * 0.01,
        "node counted {packets_received} datagrams, clients sent {sent_to_node}"
    );
    let forwarded = sample(&text, "relais_rtp_forwarded_total");
    assert!(
        forwarded >= received as f64,
        "forwarded {forwarded} < viewer received {received}"
    );
    assert!(sample(&text, "relais_packets_sent_total") >= received as f64);
    assert!(sample(&text, "relais_bytes_received_total") > packets_received * 40.0);
    assert_eq!(sample(&text, "relais_conferences"), 1.0);
    assert_eq!(sample(&text, "relais_endpoints"), 2.0);
    assert_eq!(sample(&text, "relais_largest_conference"), 2.0);
    assert_eq!(sample(&text, "relais_endpoints_sending_audio"), 1.0);
    assert_eq!(sample(&text, "relais_endpoints_created_total"), 2.0);
    assert_eq!(sample(&text, "relais_ice_succeeded_total"), 2.0);
    assert_eq!(sample(&text, "relais_ice_failed_total"), 0.0);
    assert_eq!(sample(&text, "relais_dtls_succeeded_total"), 2.0);
    assert_eq!(sample(&text, "relais_dtls_failed_total"), 0.0);
    assert_eq!(sample(&text, "relais_healthy"), 1.0);
    assert_eq!(sample(&text, "relais_draining"), 0.0);
    assert_eq!(
        sample(
            &text,
            "relais_dropped_packets_total{reason=\"srtp_auth_failed\"}"
        ),
        0.0
    );
    assert_eq!(
        sample(&text, "relais_stun_dropped_total{reason=\"bad_integrity\"}"),
        0.0
    );
    assert_eq!(sample(&text, "relais_conferences_by_size_count"), 1.0);
    assert_eq!(
        sample(&text, "relais_conferences_by_size_bucket{le=\"2\"}"),
        1.0
    );
    assert!(text.contains(&format!(
        "relais_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
    // Privacy: no stream name, session id, client port or node port in the scrape.
    assert!(!text.contains(STREAM), "stream name in:\n{text}");
    for location in [&publisher.location, &viewer.location] {
        let session = location.rsplit('/').next().unwrap();
        assert!(!text.contains(session), "session id in:\n{text}");
    }
    for port in [
        publisher.local.port(),
        viewer.local.port(),
        node.media.port(),
    ] {
        assert!(
            !text.contains(&format!(":{port}")),
            "port {port} in:\n{text}"
        );
        assert!(
            !text.contains(&format!("\"{port}\"")),
            "port {port} in:\n{text}"
        );
    }
    promtool_check(&text);

    // A second scrape never goes backwards.
    let again = get(node.private, "/metrics").await.body;
    assert!(sample(&again, "relais_packets_received_total") >= packets_received);
    assert_eq!(sample(&again, "relais_conferences_by_size_count"), 2.0);

    let r = get(node.private, "/colibri/stats").await;
    assert_eq!(r.status, 200, "{}", r.body);
    for key in [
        "conferences",
        "endpoints",
        "participants",
        "local_endpoints",
        "largest_conference",
        "endpoints_sending_audio",
        "endpoints_sending_video",
        "bit_rate_download",
        "bit_rate_upload",
        "packet_rate_download",
        "packet_rate_upload",
        "stress_level",
        "graceful_shutdown",
        "total_ice_succeeded",
        "total_ice_failed",
        "dtls_failed_endpoints",
        "current_timestamp",
    ] {
        assert!(
            r.body.contains(&format!("\"{key}\":")),
            "{key} in {}",
            r.body
        );
    }
    assert!(r.body.contains("\"conferences\":1,"), "{}", r.body);
    assert!(r.body.contains("\"endpoints\":2,"), "{}", r.body);
    assert!(r.body.contains("\"graceful_shutdown\":false"), "{}", r.body);
    assert!(!r.body.contains(STREAM), "{}", r.body);

    // Within one or two 5 s samples the call's packet rate (over 10 pps capacity) makes the
    // node not ready, and relais_stress exceeds 1 (not clamped).
    let until = Instant::now() + Duration::from_secs(12);
    loop {
        let r = get(node.private, "/about/ready").await;
        if r.status == 503 {
            assert!(r.body.starts_with("overloaded: stress "), "{}", r.body);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(Instant::now() < until, "never overloaded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = get(node.private, "/metrics").await.body;
    let stress = sample(&text, "relais_stress");
    assert!(stress > 1.0, "stress {stress}");
    let health = get(node.private, "/about/health").await;
    assert_eq!(health.status, 200);
    // Admission by load: a new conference is refused, a join to the running one is not.
    let public = node.public;
    let refused = tokio::task::spawn_blocking(move || {
        http(
            public,
            "POST",
            "/whip/another-conference",
            Some(("application/sdp", CHROMIUM_WHIP_OFFER)),
        )
        .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains("overloaded"), "{}", refused.body);
    let joined = tokio::task::spawn_blocking(move || {
        http(
            public,
            "POST",
            &format!("/whep/{STREAM}"),
            Some(("application/sdp", CHROMIUM_WHEP_OFFER)),
        )
        .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(joined.status, 201, "{}", joined.body);
    let stats = get(node.private, "/about/stats").await.body;
    assert!(stats.contains("\"refused_overloaded\":1"), "{stats}");
}

/// Defaults: an idle node is ready, and its scrape has every reason label at 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_node_is_ready_and_exports_every_reason() {
    let node = Node::start(&[]);
    let r = get(node.private, "/about/ready").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let text = get(node.private, "/metrics").await.body;
    for reason in [
        "malformed",
        "unknown_tuple",
        "unknown_ufrag",
        "srtp_auth_failed",
        "srtp_replay",
        "srtp_other",
        "no_keys",
        "send_failed",
        "queue_full",
    ] {
        assert_eq!(
            sample(
                &text,
                &format!("relais_dropped_packets_total{{reason=\"{reason}\"}}")
            ),
            0.0
        );
    }
    for reason in [
        "bad_integrity",
        "bad_username",
        "bad_fingerprint",
        "malformed",
        "unexpected",
        "overflow",
    ] {
        assert_eq!(
            sample(
                &text,
                &format!("relais_stun_dropped_total{{reason=\"{reason}\"}}")
            ),
            0.0
        );
    }
    assert_eq!(sample(&text, "relais_conferences"), 0.0);
    assert_eq!(sample(&text, "relais_stress"), 0.0);
    promtool_check(&text);
}
