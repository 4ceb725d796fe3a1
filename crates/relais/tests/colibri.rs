//! Jitsi Meet's allocation path end to end: a conference allocated with Colibri2 over the
//! private HTTP API, two endpoints connected as Jitsi clients connect (the node ICE
//! controlling, the client DTLS client), audio from one decrypted by the other, and the
//! API's refusals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::{Duration, Instant};

use common::client::{opus_packet, Client};
use common::{http, Node};
use relais_rtp::demux::{classify, DatagramKind};
use relais_rtp::rtp::RtpPacket;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{self, Message};

const MEETING: &str = "b1f0c1a2-0000-4000-8000-00000000c0de";

fn medias() -> Value {
    json!([
        {"type": "audio", "payload-types": [
            {"name": "opus", "id": "111", "clockrate": "48000", "channels": "2",
             "parameters": {"minptime": "10", "useinbandfec": "1"}}],
         "rtp-hdrexts": [{"uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level", "id": 1}]},
        {"type": "video", "payload-types": [
            {"name": "VP8", "id": "100", "clockrate": "90000",
             "rtcp-fbs": [{"type": "nack"}, {"type": "nack", "subtype": "pli"}]},
            {"name": "rtx", "id": "96", "clockrate": "90000", "parameters": {"apt": "100"}}],
         "rtp-hdrexts": [{"uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "id": 3}]}
    ])
}

fn colibri(node: &Node, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let text = body.to_string();
    let response = http(
        node.private,
        method,
        path,
        Some(("application/json", text.as_str())),
    )
    .unwrap();
    let value = serde_json::from_str(&response.body).unwrap_or(Value::Null);
    (response.status, value)
}

fn client_transport(client: &Client) -> Value {
    let credentials = client.ice.local_credentials();
    let fingerprint = client.certificate.fingerprint().to_string();
    let (hash, hex) = fingerprint.split_once(' ').unwrap();
    json!({"transport": {
        "ufrag": credentials.ufrag, "pwd": credentials.pwd, "rtcp-mux": true,
        "fingerprints": [{"fingerprint": hex, "setup": "active", "hash": hash}],
        "candidates": [{"foundation": "1", "component": "1", "protocol": "udp",
            "priority": "2130706431", "ip": client.local.ip().to_string(),
            "port": client.local.port().to_string(), "type": "host", "generation": "0"}]
    }})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_jitsi_endpoints_exchange_audio() {
    let node = Node::start(&["--log-level", "debug"]);
    let endpoints: Vec<Value> = ["aaaa0001", "bbbb0002"]
        .iter()
        .map(|id| {
            json!({
                "id": id, "create": true, "stats-id": "someone", "muc-role": "participant",
                "medias": medias(), "transport": {"ice-controlling": true},
                "capabilities": ["source-names"]
            })
        })
        .collect();
    let create = json!({
        "meeting-id": MEETING, "name": "room@conference.meet.example", "create": true,
        "endpoints": endpoints
    });
    let (status, answer) = {
        let node = &node;
        let create = create.clone();
        tokio::task::block_in_place(|| colibri(node, "POST", "/colibri/v2/conferences", &create))
    };
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["sources"][0]["id"], "jvb-a0");
    assert_eq!(answer["sources"][1]["id"], "jvb-v0");
    let mut clients = Vec::new();
    let mut web_sockets = Vec::new();
    for (index, name) in ["aaaa0001", "bbbb0002"].iter().enumerate() {
        let endpoint = &answer["endpoints"][index];
        assert_eq!(endpoint["id"], *name);
        let transport = &endpoint["transport"]["transport"];
        assert_eq!(transport["xmlns"], "urn:xmpp:jingle:transports:ice-udp:1");
        assert_eq!(transport["rtcp-mux"], true);
        let candidate = &transport["candidates"][0];
        assert_eq!(candidate["port"], node.media.port().to_string());
        assert_eq!(candidate["type"], "host");
        let fingerprint = &transport["fingerprints"][0];
        assert_eq!(fingerprint["setup"], "actpass");
        let pwd = transport["pwd"].as_str().unwrap();
        let web_socket = transport["web-sockets"][0].as_str().unwrap();
        let encoded: String = pwd
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        assert!(
            web_socket.starts_with("ws://")
                && web_socket.ends_with(&format!(
                    "/colibri-ws/relais/{MEETING}/{name}?pwd={encoded}"
                )),
            "{web_socket}"
        );

        web_sockets.push(web_socket[web_socket.find("/colibri-ws/").unwrap()..].to_owned());
        let mut client = Client::colibri(&node).await;
        client.set_node_transport(
            transport["ufrag"].as_str().unwrap(),
            pwd,
            candidate["priority"].as_str().unwrap().parse().unwrap(),
            &format!(
                "{} {}",
                fingerprint["hash"].as_str().unwrap(),
                fingerprint["fingerprint"].as_str().unwrap()
            ),
        );
        clients.push(client);
    }
    // The clients' transports and sources, as Jicofo sends them after the session-accept.
    let patch = json!({"meeting-id": MEETING, "endpoints": [
        {"id": "aaaa0001", "transport": client_transport(&clients[0]),
         "sources": [{"type": "audio", "id": "aaaa0001-a0", "sources": [1001]}]},
        {"id": "bbbb0002", "transport": client_transport(&clients[1]),
         "sources": [{"type": "audio", "id": "bbbb0002-a0", "sources": [2002]}]}
    ]});
    let (status, body) = tokio::task::block_in_place(|| {
        colibri(
            &node,
            "PATCH",
            &format!("/colibri/v2/conferences/{MEETING}"),
            &patch,
        )
    });
    assert_eq!(status, 200, "{body}");

    // ICE (the node checks), DTLS (the clients start it), SRTP.
    let until = Instant::now() + Duration::from_secs(15);
    while clients.iter().any(|c| c.outcome.is_none()) {
        assert!(Instant::now() < until, "not connected: {}", node.log_text());
        for client in &mut clients {
            client.step(Duration::from_millis(2)).await;
        }
    }
    let keys = |c: &Client| c.outcome.as_ref().unwrap().keys.clone();
    let mut sender =
        relais_srtp::SrtpSender::new(&keys(&clients[0]).local, Default::default()).unwrap();
    let mut receiver =
        relais_srtp::SrtpReceiver::new(&keys(&clients[1]).remote, Default::default()).unwrap();
    let mut received = Vec::new();
    let start = Instant::now();
    let mut sent = 0u16;
    while start.elapsed() < Duration::from_secs(3) && received.len() < 50 {
        if sent < 50 && start.elapsed() >= Duration::from_millis(20) * u32::from(sent) {
            sent += 1;
            let mut packet = opus_packet(sent);
            sender.protect_rtp_vec(&mut packet).unwrap();
            clients[0].send(&packet).await;
        }
        clients[0].step(Duration::from_millis(1)).await;
        if let Some(mut datagram) = clients[1].step(Duration::from_millis(1)).await {
            if classify(&datagram) == DatagramKind::Rtp {
                let len = receiver.unprotect_rtp(&mut datagram).unwrap();
                received.push(datagram[..len].to_vec());
            }
        }
    }
    assert!(
        received.len() >= 45,
        "received {} of {sent}",
        received.len()
    );
    for packet in &received {
        let rtp = RtpPacket::parse(packet.as_slice()).unwrap();
        assert_eq!(rtp.ssrc(), 1001);
        assert_eq!(rtp.payload_type(), 111);
        assert_eq!(rtp.payload(), &[0xab; 40][..]);
    }
    let sequence: Vec<u16> = received
        .iter()
        .map(|p| RtpPacket::parse(p.as_slice()).unwrap().sequence_number())
        .collect();
    assert!(
        sequence.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "{sequence:?}"
    );

    // The bridge channel: garbage is ignored, an EndpointMessage from A reaches B with
    // `from` set by the node, and media keeps flowing (checked below).
    let mut channels: Vec<_> = web_sockets
        .iter()
        .map(|path| {
            let stream = std::net::TcpStream::connect(node.public).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            tungstenite::client(format!("ws://{}{path}", node.public), stream)
                .unwrap()
                .0
        })
        .collect();
    tokio::task::block_in_place(|| {
        let a = &mut channels[0];
        for garbage in [
            "not json",
            "{}",
            r#"{"colibriClass":"NoSuchClass"}"#,
            r#"{"colibriClass":"ReceiverVideoConstraints","lastN":"five"}"#,
            r#"{"colibriClass":"EndpointMessage","to":"x","to":"y"}"#,
        ] {
            a.send(Message::text(garbage)).unwrap();
        }
        a.send(Message::text(
            r#"{"colibriClass":"EndpointMessage","to":"bbbb0002","msgPayload":{"type":"e2e-ping","n":7}}"#,
        ))
        .unwrap();
        let b = &mut channels[1];
        let message = loop {
            let Message::Text(text) = b.read().unwrap() else {
                continue;
            };
            let value: Value = serde_json::from_str(text.as_str()).unwrap();
            if value["colibriClass"] == "EndpointMessage" {
                break value;
            }
        };
        assert_eq!(message["from"], "aaaa0001");
        assert_eq!(message["msgPayload"]["n"], 7);
    });

    // Counted, by kind (the counters reach the media task asynchronously).
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let stats: Value = tokio::task::block_in_place(|| {
            serde_json::from_str(
                &http(node.private, "GET", "/about/stats", None)
                    .unwrap()
                    .body,
            )
            .unwrap()
        });
        let count = |key: &str| stats[key].as_u64().unwrap_or(0);
        if count("bridge_messages_malformed") >= 2
            && count("bridge_messages_unknown_class") >= 1
            && count("bridge_messages_invalid") >= 2
            && count("bridge_messages_sent") >= 1
        {
            break;
        }
        assert!(Instant::now() < until, "bridge counters: {stats}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The documented refusals, and the conference keeps working meanwhile.
    let refusals = [
        (
            "POST",
            "/colibri/v2/conferences",
            create.clone(),
            409,
            "CONFERENCE_ALREADY_EXISTS",
        ),
        (
            "PATCH",
            "/colibri/v2/conferences/00000000-0000-4000-8000-000000000000",
            json!({"endpoints": [{"id": "cccc0003"}]}),
            404,
            "CONFERENCE_NOT_FOUND",
        ),
        (
            "PATCH",
            "/colibri/v2/conferences/b1f0c1a2-0000-4000-8000-00000000c0de",
            json!({"endpoints": [{"id": "cccc0003", "transport": {"ice-controlling": true}}]}),
            404,
            "UNKNOWN_ENDPOINT",
        ),
        (
            "PATCH",
            "/colibri/v2/conferences/b1f0c1a2-0000-4000-8000-00000000c0de",
            json!({"endpoints": [{"id": "aaaa0001", "create": true,
                "transport": {"ice-controlling": true}, "capabilities": ["source-names"]}]}),
            409,
            "",
        ),
        (
            "PATCH",
            "/colibri/v2/conferences/b1f0c1a2-0000-4000-8000-00000000c0de",
            json!({"connects": [{"url": "wss://transcriber.example/", "protocol": "mediajson",
                "type": "transcriber", "audio": true}]}),
            501,
            "FEATURE_NOT_IMPLEMENTED",
        ),
    ];
    // A huge body and a body that is not JSON at all.
    let huge = format!(
        "{{\"meeting-id\": \"{MEETING}\", \"x\": \"{}\"}}",
        "a".repeat(2 << 20)
    );
    for (body, status) in [
        (huge.as_str(), 413),
        ("{\"endpoints\": [", 400),
        ("[]", 400),
    ] {
        let response = tokio::task::block_in_place(|| {
            http(
                node.private,
                "POST",
                "/colibri/v2/conferences",
                Some(("application/json", body)),
            )
        })
        .unwrap();
        assert_eq!(response.status, status, "{}", response.body);
    }
    for (method, path, body, status, reason) in refusals {
        let (got, answer) = tokio::task::block_in_place(|| colibri(&node, method, path, &body));
        assert_eq!(got, status, "{method} {path}: {answer}");
        if !reason.is_empty() {
            assert_eq!(answer["error"]["reason"], reason, "{answer}");
        }
    }
    let mut packet = opus_packet(sent + 1);
    sender.protect_rtp_vec(&mut packet).unwrap();
    clients[0].send(&packet).await;
    let until = Instant::now() + Duration::from_secs(2);
    let mut still = false;
    while Instant::now() < until && !still {
        if let Some(mut datagram) = clients[1].step(Duration::from_millis(5)).await {
            if classify(&datagram) == DatagramKind::Rtp {
                still = receiver.unprotect_rtp(&mut datagram).is_ok();
            }
        }
    }
    assert!(still, "audio stopped after refused requests");

    // ICE restart (make-before-break): new local credentials in the answer, and media keeps
    // flowing on the selected pair meanwhile.
    let old_ufrag = answer["endpoints"][0]["transport"]["transport"]["ufrag"].clone();
    let (status, restart) = tokio::task::block_in_place(|| {
        colibri(
            &node,
            "PATCH",
            &format!("/colibri/v2/conferences/{MEETING}"),
            &json!({"endpoints": [{"id": "aaaa0001", "transport": {"ice-restart": true}}]}),
        )
    });
    assert_eq!(status, 200, "{restart}");
    let restarted = &restart["endpoints"][0]["transport"]["transport"];
    assert_eq!(restart["endpoints"][0]["id"], "aaaa0001");
    assert!(
        restarted["ufrag"].is_string() && restarted["ufrag"] != old_ufrag,
        "{restart}"
    );
    assert!(restarted["pwd"].is_string(), "{restart}");
    let mut flowing = 0;
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until && flowing < 5 {
        sent = sent.wrapping_add(1);
        let mut packet = opus_packet(sent);
        sender.protect_rtp_vec(&mut packet).unwrap();
        clients[0].send(&packet).await;
        clients[0].step(Duration::from_millis(1)).await;
        if let Some(mut datagram) = clients[1].step(Duration::from_millis(20)).await {
            if classify(&datagram) == DatagramKind::Rtp
                && receiver.unprotect_rtp(&mut datagram).is_ok()
            {
                flowing += 1;
            }
        }
    }
    assert!(flowing >= 5, "audio stopped during the ICE restart");

    // Expire: the conference and its endpoints are gone.
    let (status, _) = tokio::task::block_in_place(|| {
        colibri(
            &node,
            "POST",
            "/colibri/v2/conferences",
            &json!({"meeting-id": MEETING, "expire": true}),
        )
    });
    assert_eq!(status, 200);
    let (status, answer) = tokio::task::block_in_place(|| {
        colibri(
            &node,
            "PATCH",
            &format!("/colibri/v2/conferences/{MEETING}"),
            &json!({"endpoints": [{"id": "aaaa0001"}]}),
        )
    });
    assert_eq!(status, 404, "{answer}");
}
