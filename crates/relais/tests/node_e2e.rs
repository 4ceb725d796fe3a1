//! End to end over loopback UDP against the running `relais` binary: client-side controlling
//! ICE agents and DTLS clients, WHIP/WHEP signalling, SRTP the node decrypts and, with a
//! viewer, SRTP the node forwards.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::client::{opus_packet, Client};
use common::{http, Node, CHROMIUM_WHEP_OFFER, CHROMIUM_WHIP_OFFER};
use relais_rtp::demux::{classify, DatagramKind};
use relais_srtp::{SrtpConfig, SrtpReceiver, SrtpSender};
use relais_transport::ice::IceCredentials;
use relais_whip::sdp;
use tokio::net::UdpSocket;

async fn stats(node: SocketAddr) -> String {
    tokio::task::spawn_blocking(move || http(node, "GET", "/about/stats", None).unwrap().body)
        .await
        .unwrap()
}

fn counter(stats: &str, name: &str) -> u64 {
    let key = format!("\"{name}\":");
    stats
        .split_once(&key)
        .and_then(|(_, rest)| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Publishes to a node started with `args` until it has decrypted one RTP packet; returns
/// the client's port and the node's log.
async fn publish(args: &[&str]) -> (u16, String) {
    publish_to(Node::start(args)).await
}

async fn publish_to(node: Node) -> (u16, String) {
    let mut client = Client::connect(&node, "/whip/e2e", CHROMIUM_WHIP_OFFER).await;
    let mut sender: Option<SrtpSender> = None;
    let mut seq: u16 = 1;
    let mut last_rtp = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "no end-to-end in time; node log:\n{}\nstats: {}",
            node.log_text(),
            stats(node.private).await
        );
        client.step(Duration::from_millis(10)).await;
        if sender.is_none() {
            if let Some(o) = &client.outcome {
                sender = Some(SrtpSender::new(&o.keys.local, SrtpConfig::default()).unwrap());
            }
        }
        if let Some(sender) = sender.as_mut() {
            if last_rtp.elapsed() > Duration::from_millis(50) {
                last_rtp = Instant::now();
                let mut packet = opus_packet(seq);
                seq += 1;
                sender.protect_rtp_vec(&mut packet).unwrap();
                client.send(&packet).await;
                let s = stats(node.private).await;
                if counter(&s, "rtp_received") >= 1 {
                    assert_eq!(counter(&s, "dtls_completed"), 1, "{s}");
                    assert_eq!(counter(&s, "dtls_failed"), 0, "{s}");
                    break;
                }
            }
        }
    }
    (client.local.port(), node.log_text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_completes_ice_dtls_and_sends_srtp() {
    let (port, log) = publish(&["--log-level", "debug"]).await;
    // The node never logs the client's address at default privacy settings.
    assert!(!log.contains(&format!(":{port}")), "{log}");
    assert!(log.contains("ICE selected [redacted]"), "{log}");
    assert!(log.contains("DTLS done"), "{log}");
}

/// The default bind, `[::]`: an IPv4 client arrives IPv4-mapped and is answered on the
/// same socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_client_on_a_dual_stack_socket() {
    let node = Node::start_dual_stack(&[
        "--log-level",
        "debug",
        "--privacy-log-client-addresses",
        "true",
    ]);
    let (_, log) = publish_to(node).await;
    // Normalised: the IPv4 form, not ::ffff:127.0.0.1.
    assert!(log.contains("ICE selected 127.0.0.0/24"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_addresses_are_logged_only_when_opted_in() {
    let (_, log) = publish(&[
        "--log-level",
        "debug",
        "--privacy-log-client-addresses",
        "true",
    ])
    .await;
    assert!(log.contains("ICE selected 127.0.0.0/24"), "{log}");
    let (port, log) = publish(&[
        "--log-level",
        "debug",
        "--privacy-log-client-addresses",
        "true",
        "--privacy-anonymise-client-addresses",
        "false",
    ])
    .await;
    assert!(
        log.contains(&format!("ICE selected 127.0.0.1:{port}")),
        "{log}"
    );
}

/// WHIP publisher → node → WHEP viewer: the viewer decrypts the audio the publisher sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_receives_the_publishers_audio() {
    let node = Node::start(&[]);
    let mut viewer = Client::connect(&node, "/whep/live", CHROMIUM_WHEP_OFFER).await;
    let mut publisher = Client::connect(&node, "/whip/live", CHROMIUM_WHIP_OFFER).await;
    let viewer_audio_pt = viewer
        .answer
        .media
        .iter()
        .find(|m| m.kind == sdp::MediaKind::Audio && m.port != 0)
        .and_then(|m| m.codecs.iter().find(|c| c.name == "opus"))
        .map(|c| c.payload_type)
        .unwrap();
    let mut sender: Option<SrtpSender> = None;
    let mut receiver: Option<SrtpReceiver> = None;
    let mut seq: u16 = 1;
    let mut last_rtp = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "viewer got no media in time; node log:\n{}\nstats: {}",
            node.log_text(),
            stats(node.private).await
        );
        publisher.step(Duration::from_millis(5)).await;
        if let Some(mut datagram) = viewer.step(Duration::from_millis(5)).await {
            if let (Some(receiver), DatagramKind::Rtp) = (receiver.as_mut(), classify(&datagram)) {
                let len = receiver.unprotect_rtp(&mut datagram).unwrap();
                assert_eq!(len, 12 + 40);
                assert_eq!(datagram[1] & 0x7f, viewer_audio_pt);
                assert_eq!(&datagram[12..len], &[0xab; 40][..]);
                break;
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
            if last_rtp.elapsed() > Duration::from_millis(20) {
                last_rtp = Instant::now();
                let mut packet = opus_packet(seq);
                seq += 1;
                sender.protect_rtp_vec(&mut packet).unwrap();
                publisher.send(&packet).await;
            }
        }
    }
    let s = stats(node.private).await;
    assert!(counter(&s, "rtp_sent") >= 1, "{s}");
}

async fn patch(node: &Node, path: &str, content_type: &str, body: &str) -> common::Response {
    let (public, path, content_type, body) = (
        node.public,
        path.to_owned(),
        content_type.to_owned(),
        body.to_owned(),
    );
    tokio::task::spawn_blocking(move || {
        http(
            public,
            "PATCH",
            &path,
            Some((content_type.as_str(), body.as_str())),
        )
        .unwrap()
    })
    .await
    .unwrap()
}

const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

/// A publisher on `/whip/e2e` of `node` stepped until the node decrypted its RTP; returns
/// the client, its SRTP sender and the next sequence number.
async fn flowing_publisher(node: &Node) -> (Client, SrtpSender, u16) {
    let mut client = Client::connect(node, "/whip/e2e", CHROMIUM_WHIP_OFFER).await;
    let mut sender: Option<SrtpSender> = None;
    let mut seq: u16 = 1;
    let mut last_rtp = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "no end-to-end in time; node log:\n{}\nstats: {}",
            node.log_text(),
            stats(node.private).await
        );
        client.step(Duration::from_millis(10)).await;
        if sender.is_none() {
            if let Some(o) = &client.outcome {
                sender = Some(SrtpSender::new(&o.keys.local, SrtpConfig::default()).unwrap());
            }
        }
        if let Some(s) = sender.as_mut() {
            if last_rtp.elapsed() > Duration::from_millis(50) {
                last_rtp = Instant::now();
                let mut packet = opus_packet(seq);
                seq += 1;
                s.protect_rtp_vec(&mut packet).unwrap();
                client.send(&packet).await;
                if counter(&stats(node.private).await, "rtp_received") >= 1 {
                    break;
                }
            }
        }
    }
    (client, sender.unwrap(), seq)
}

/// An ICE connectivity check to the node, signed with `pwd`, from a fresh socket; returns
/// whether any answer arrived within 500 ms.
async fn check_answered(node: &Node, username: &str, pwd: &str) -> bool {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = [0u8; 512];
    let mut writer =
        relais_rtp::stun::StunWriter::binding_request(&mut buf, rand::random()).unwrap();
    writer
        .username(username.as_bytes())
        .unwrap()
        .priority(0x6e00_01ff)
        .unwrap()
        .ice_controlling(rand::random())
        .unwrap()
        .message_integrity_with_password(pwd.as_bytes())
        .unwrap()
        .fingerprint()
        .unwrap();
    let len = writer.finish();
    socket.send_to(&buf[..len], node.media).await.unwrap();
    let mut reply = [0u8; 2048];
    tokio::time::timeout(Duration::from_millis(500), socket.recv_from(&mut reply))
        .await
        .is_ok()
}

fn sdpfrag_value<'a>(fragment: &'a str, name: &str) -> &'a str {
    fragment
        .lines()
        .find_map(|l| l.trim_end().strip_prefix(name))
        .unwrap()
}

/// RFC 9725 §4.4: the publisher restarts ICE with a PATCH after media flows; the node
/// answers with new credentials and candidates, the client re-checks with them and the
/// node keeps decrypting its media.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_restart_by_patch_keeps_media_flowing() {
    let node = Node::start(&["--log-level", "debug"]);
    let (mut client, mut sender, mut seq) = flowing_publisher(&node).await;
    let old_local = client.ice.local_credentials().clone();
    let old_node = client.ice.remote_credentials().unwrap().clone();

    // Trickled candidates alone: 204.
    let r = patch(
        &node,
        &client.location,
        SDPFRAG,
        "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\na=end-of-candidates\n",
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    // Garbage: 400; unknown session: 404.
    let r = patch(&node, &client.location, SDPFRAG, "this is not sdp\r\n").await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = patch(
        &node,
        "/whip/e2e/00000000000000000000000000000000",
        SDPFRAG,
        "a=end-of-candidates\r\n",
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);

    let new_local = client.ice.restart().unwrap();
    let fragment = format!(
        "a=group:BUNDLE 0 1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
         a=ice-ufrag:{}\r\na=ice-pwd:{}\r\n",
        new_local.ufrag, new_local.pwd
    );
    let r = patch(&node, &client.location, SDPFRAG, &fragment).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("content-type").unwrap().starts_with(SDPFRAG));
    let new_node = IceCredentials::new(
        sdpfrag_value(&r.body, "a=ice-ufrag:"),
        sdpfrag_value(&r.body, "a=ice-pwd:"),
    )
    .unwrap();
    assert_ne!(new_node, old_node);
    assert!(
        r.body.contains(&format!(" {} typ host", node.media.port())),
        "{}",
        r.body
    );
    assert!(r.body.contains("a=end-of-candidates"), "{}", r.body);
    client.ice.set_remote_credentials(new_node.clone());
    // The same credentials again: nothing to restart.
    let r = patch(&node, &client.location, SDPFRAG, &fragment).await;
    assert_eq!(r.status, 204, "{}", r.body);

    // Re-check and nominate with the new credentials while media keeps flowing.
    let before = counter(&stats(node.private).await, "rtp_received");
    let requests_before = client.ice.stats().requests_sent;
    let until = Instant::now() + Duration::from_secs(2);
    let mut last_rtp = Instant::now();
    while Instant::now() < until {
        client.step(Duration::from_millis(10)).await;
        if last_rtp.elapsed() > Duration::from_millis(50) {
            last_rtp = Instant::now();
            let mut packet = opus_packet(seq);
            seq += 1;
            sender.protect_rtp_vec(&mut packet).unwrap();
            client.send(&packet).await;
        }
    }
    assert!(client.ice.stats().requests_sent > requests_before);
    assert!(client.ice.can_send());
    let s = stats(node.private).await;
    assert!(counter(&s, "rtp_received") > before + 10, "{s}");
    assert_eq!(counter(&s, "ice_restarts"), 1, "{s}");
    assert_eq!(counter(&s, "endpoints"), 1, "{s}");

    // The node's agent saw the new credentials in use: the old ones are refused now.
    let old_username = format!("{}:{}", old_node.ufrag, old_local.ufrag);
    assert!(!check_answered(&node, &old_username, &old_node.pwd).await);
    let new_username = format!("{}:{}", new_node.ufrag, new_local.ufrag);
    assert!(check_answered(&node, &new_username, &new_node.pwd).await);
    let s = stats(node.private).await;
    assert!(counter(&s, "stun_dropped_bad_username") >= 1, "{s}");
}

/// A STUN check with the session's ufrag and a wrong password is dropped unanswered and
/// counted node-wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stun_integrity_is_counted_node_wide() {
    let node = Node::start(&[]);
    let (client, _, _) = flowing_publisher(&node).await;
    let node_creds = client.ice.remote_credentials().unwrap().clone();
    let username = format!(
        "{}:{}",
        node_creds.ufrag,
        client.ice.local_credentials().ufrag
    );
    assert!(!check_answered(&node, &username, "wrong-password-wrong-password").await);
    let s = stats(node.private).await;
    assert_eq!(counter(&s, "stun_dropped_bad_integrity"), 1, "{s}");
    // The right password is answered (the drop was the integrity check's).
    assert!(check_answered(&node, &username, &node_creds.pwd).await);
}

/// A client that vanishes after ICE + DTLS + SRTP is expired after the 30 s consent
/// timeout and every trace of it freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_client_is_freed_after_consent_expiry() {
    let node = Node::start(&[]);
    let (client, _, _) = flowing_publisher(&node).await;
    let vanished = Instant::now();
    let s = stats(node.private).await;
    for (name, value) in [
        ("endpoints", 1),
        ("forwarder_endpoints", 1),
        ("ufrag_map_entries", 1),
        ("remote_map_entries", 1),
        ("session_map_entries", 1),
        ("endpoints_closed", 0),
    ] {
        assert!(s.contains(&format!("\"{name}\":")), "{s}");
        assert_eq!(counter(&s, name), value, "{name}: {s}");
    }
    // Still open at ~20 s (consent is 30 s).
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(vanished.elapsed())).await;
    let s = stats(node.private).await;
    assert_eq!(counter(&s, "endpoints"), 1, "{s}");
    let s = loop {
        let s = stats(node.private).await;
        if counter(&s, "endpoints") == 0 {
            break s;
        }
        assert!(
            vanished.elapsed() < Duration::from_secs(45),
            "not expired; stats: {s}\nlog:\n{}",
            node.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(vanished.elapsed() >= Duration::from_secs(25), "{s}");
    for (name, value) in [
        ("endpoints_closed", 1),
        ("endpoints_consent_expired", 1),
        ("forwarder_endpoints", 0),
        ("ufrag_map_entries", 0),
        ("remote_map_entries", 0),
        ("session_map_entries", 0),
    ] {
        assert_eq!(counter(&s, name), value, "{name}: {s}");
    }
    drop(client);
}
