//! The bridge channel (colibri-ws) of a running node: a conference and an endpoint are
//! allocated through the private Colibri2 API, then a WebSocket client connects to the URL of
//! the answer: wrong credentials are refused with 403, `ClientHello` is answered with
//! `ServerHello`, and refused messages (malformed JSON, unknown class, binary, oversized)
//! leave the channel open.
//!
//! The client is tungstenite's blocking one (re-exported by tokio-tungstenite) over a
//! `TcpStream` with read and write timeouts, so every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{http, Node};
use serde_json::Value;
use tokio_tungstenite::tungstenite::{self, handshake::HandshakeError, Message, WebSocket};

/// The longest any single read or write on the WebSocket may take.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

const CREATE_CONFERENCE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../relais-colibri/tests/fixtures/colibri2/rest-doc/create-conference.request.json"
));

/// Allocates a conference with one endpoint; returns the endpoint's colibri-ws URL path
/// (from `/colibri-ws/`, with its query) and its pwd.
fn allocate(node: &Node, meeting_id: &str) -> (String, String) {
    let mut request: Value = serde_json::from_str(CREATE_CONFERENCE).unwrap();
    let object = request.as_object_mut().unwrap();
    // `connects` (transcriber/recorder exports) is not implemented (501).
    object.remove("connects");
    object.insert("meeting-id".to_owned(), Value::from(meeting_id));
    let body = request.to_string();
    let r = http(
        node.private,
        "POST",
        "/colibri/v2/conferences",
        Some(("application/json", &body)),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let answer: Value = serde_json::from_str(&r.body).unwrap();
    let transport = &answer["endpoints"][0]["transport"]["transport"];
    let pwd = transport["pwd"].as_str().expect("pwd").to_owned();
    let url = transport["web-sockets"][0].as_str().expect("web-sockets");
    // The URL's host is the node's announced one; the test connects to the listener itself.
    let start = url.find("/colibri-ws/").expect("colibri-ws path");
    let path = url[start..].to_owned();
    // The pwd is percent-encoded in the URL (it may hold `+` and `/`).
    let (_, query) = path.split_once("?pwd=").expect("pwd query");
    let mut decoded = Vec::new();
    let mut bytes = query.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex: String = [bytes.next().unwrap(), bytes.next().unwrap()]
                .iter()
                .map(|&c| char::from(c))
                .collect();
            decoded.push(u8::from_str_radix(&hex, 16).unwrap());
        } else {
            decoded.push(b);
        }
    }
    assert_eq!(String::from_utf8(decoded).unwrap(), pwd, "{path}");
    (path, pwd)
}

/// Opens a WebSocket to `path` on the public listener; the handshake's HTTP error (e.g. 403)
/// as `Err`.
fn connect(node: &Node, path: &str) -> Result<WebSocket<TcpStream>, tungstenite::Error> {
    let stream = TcpStream::connect_timeout(&node.public, IO_TIMEOUT).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    match tungstenite::client(format!("ws://{}{path}", node.public), stream) {
        Ok((socket, _response)) => Ok(socket),
        Err(HandshakeError::Failure(error)) => Err(error),
        Err(HandshakeError::Interrupted(_)) => panic!("handshake timed out"),
    }
}

/// The handshake status of a refused connection.
fn refused_status(node: &Node, path: &str) -> u16 {
    match connect(node, path) {
        Ok(_) => panic!("{path}: accepted"),
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("{path}: {other}"),
    }
}

/// Reads text messages until one of `class` arrives (the node may push others, e.g.
/// `ForwardedSources`, at any time), within `IO_TIMEOUT` overall.
fn expect_class(socket: &mut WebSocket<TcpStream>, class: &str) -> Value {
    let deadline = Instant::now() + IO_TIMEOUT;
    while Instant::now() < deadline {
        // Each read is bounded by the stream's read timeout (an error then).
        match socket.read().unwrap() {
            Message::Text(text) => {
                let message: Value = serde_json::from_str(text.as_str()).unwrap();
                if message["colibriClass"] == class {
                    return message;
                }
            }
            Message::Close(frame) => panic!("closed while waiting for {class}: {frame:?}"),
            _ => {}
        }
    }
    panic!("no {class} in time");
}

fn send_text(socket: &mut WebSocket<TcpStream>, text: &str) {
    socket.send(Message::text(text)).unwrap();
}

#[test]
fn bridge_channel_hello_and_refusals() {
    let node = Node::start(&[]);
    let (path, pwd) = allocate(&node, "5c6b3a52-1c8e-4f0e-9d51-2f8f4c3b7a10");

    // Refusals: wrong pwd, no pwd, unknown endpoint, unknown conference; all alike.
    let (base, _) = path.split_once('?').unwrap();
    assert_eq!(refused_status(&node, &format!("{base}?pwd=wrong")), 403);
    assert_eq!(refused_status(&node, base), 403);
    let (conference_path, _endpoint) = base.rsplit_once('/').unwrap();
    assert_eq!(
        refused_status(&node, &format!("{conference_path}/nobody?pwd={pwd}")),
        403
    );
    let (server_path, conference) = conference_path.rsplit_once('/').unwrap();
    assert_eq!(
        refused_status(
            &node,
            &format!("{server_path}/{conference}x/79f0273d?pwd={pwd}")
        ),
        403
    );

    // The right URL: ClientHello → ServerHello.
    let mut socket = connect(&node, &path).unwrap();
    send_text(&mut socket, r#"{"colibriClass":"ClientHello"}"#);
    let hello = expect_class(&mut socket, "ServerHello");
    assert_eq!(hello, serde_json::json!({"colibriClass": "ServerHello"}));

    // Refused messages are answered by nothing and leave the channel open.
    send_text(&mut socket, "{not json");
    send_text(&mut socket, r#"{"colibriClass":"SomethingNew","x":1}"#);
    send_text(&mut socket, r#"{"colibriClass":"ServerHello"}"#);
    socket.send(Message::binary(vec![1u8, 2, 3])).unwrap();
    // Over the protocol's 64 KiB cap but within the socket's limit: dropped, not fatal.
    let oversized = format!(
        r#"{{"colibriClass":"EndpointMessage","to":"","p":"{}"}}"#,
        "x".repeat(66 * 1024)
    );
    send_text(&mut socket, &oversized);
    // A message the node accepts (no answer either).
    send_text(
        &mut socket,
        r#"{"colibriClass":"ReceiverVideoConstraints","lastN":1}"#,
    );
    send_text(&mut socket, r#"{"colibriClass":"ClientHello"}"#);
    expect_class(&mut socket, "ServerHello");

    socket.close(None).unwrap();
    // The node answers the close; reads end with ConnectionClosed (bounded by the timeout).
    loop {
        match socket.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(other) => panic!("closing: {other}"),
        }
    }
    // The node is still healthy after the session.
    assert_eq!(
        http(node.private, "GET", "/about/health", None)
            .unwrap()
            .status,
        200
    );
}

#[test]
fn expiring_the_conference_closes_the_channel_normally() {
    let node = Node::start(&[]);
    let meeting_id = "0d3f6a1e-7b2c-4c55-8f0a-6e9b1d2c3a44";
    let (path, pwd) = allocate(&node, meeting_id);
    // The pwd percent-encoded (ICE pwds may hold `+` and `/`) is the same pwd.
    let (base, _) = path.split_once('?').unwrap();
    let encoded: String = pwd
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let mut socket = connect(&node, &format!("{base}?pwd={encoded}")).unwrap();
    send_text(&mut socket, r#"{"colibriClass":"ClientHello"}"#);
    expect_class(&mut socket, "ServerHello");

    let body = serde_json::json!({"meeting-id": meeting_id, "expire": true}).to_string();
    let r = http(
        node.private,
        "POST",
        "/colibri/v2/conferences",
        Some(("application/json", &body)),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    // A normal close frame, then the end of the connection (each read bounded).
    let deadline = Instant::now() + IO_TIMEOUT;
    let frame = loop {
        assert!(Instant::now() < deadline, "no close frame in time");
        if let Message::Close(frame) = socket.read().unwrap() {
            break frame;
        }
    };
    let frame = frame.expect("a close frame with a code");
    assert_eq!(
        frame.code,
        tungstenite::protocol::frame::coding::CloseCode::Normal
    );
    loop {
        match socket.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(other) => panic!("closing: {other}"),
        }
    }
}
