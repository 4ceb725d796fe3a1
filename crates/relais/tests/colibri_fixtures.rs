//! Jitsi's own Colibri2 requests (jitsi-videobridge's `doc/rest-colibri2.md` examples and
//! jitsi-xmpp-extensions' serializer cases, in `relais-colibri/tests/fixtures/colibri2/`)
//! against one live node, each with the outcome `shared/fixtures/README.md` gives it; the
//! answer to a conference create compared key by key with the shape of JVB's answer; a suite
//! of malformed requests that must leave an existing conference untouched; and the private
//! API token.
//!
//! The tests at the end pin down outcomes the node first got wrong (a refused request that
//! left state behind, a payload type without `id`, the speech-activity answer's keys).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::Node;
use serde_json::{json, Value};

macro_rules! fixture {
    ($path:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../relais-colibri/tests/fixtures/colibri2/",
            $path
        ))
    };
}

const CREATE_CONFERENCE: &str = fixture!("rest-doc/create-conference.request.json");
const CREATE_CONFERENCE_RESPONSE: &str = fixture!("rest-doc/create-conference.response.json");
const DOMINANT_SPEAKER_RESPONSE: &str =
    fixture!("rest-doc/dominant-speaker-identification.response.json");
const EXPIRE_CONFERENCE: &str = fixture!("rest-doc/expire-conference.request.json");
const UPDATE_ENDPOINT: &str = fixture!("rest-doc/update-endpoint.request.json");
const UPDATE_ENDPOINT_RESPONSE: &str = fixture!("rest-doc/update-endpoint.response.json");
const CASE_01: &str =
    fixture!("serializer-cases/01-endpoint-with-sources-same-as-colibri2iqtest.json");
const CASE_02: &str =
    fixture!("serializer-cases/02-something-that-should-be-exercising-all-the-fields.json");
const CASE_04: &str =
    fixture!("serializer-cases/04-update-endpoint-with-transport-and-sources.json");
const CASE_05: &str = fixture!("serializer-cases/05-relay-with-endpoints.json");
const CASE_06: &str = fixture!("serializer-cases/06-expire-conference.json");
const CASE_07: &str = fixture!("serializer-cases/07-connect-with-http-headers.json");
const CASE_08: &str = fixture!("serializer-cases/08-connect-with-ping.json");
const CASE_09: &str = fixture!("serializer-cases/09-connect-with-http-headers-and-ping.json");
const CASE_10: &str = fixture!("serializer-cases/10-connect-with-exports-and-requests.json");

const CONFERENCES: &str = "/colibri/v2/conferences";
const JSON: &str = "application/json";

/// Keys of JVB's create answer that relais deliberately leaves out, with why. Empty: relais
/// writes every key of `create-conference.response.json` (its candidates are the first,
/// host, one; srflx candidates' `rel-addr` / `rel-port` are not compared, since arrays are
/// compared by their first element).
const DELIBERATELY_OMITTED: &[(&str, &str)] = &[];

// ---------------------------------------------------------------------------------------
// HTTP

/// An answer: status, headers, raw body and the body as JSON (`Null` when it is not JSON).
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    raw: String,
    json: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request (`Connection: close`) with any headers and body. A write error is
/// not fatal (a server may answer 413 and close before reading a huge body): the answer is
/// read anyway.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    let _ = stream.write_all(&bytes);
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                assert!(!raw.is_empty(), "{method} {path}: no answer: {e}");
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        raw: body.to_owned(),
        json: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

fn send(node: &Node, method: &str, path: &str, content_type: &str, body: &str) -> Answer {
    request(
        node.private,
        method,
        path,
        &[("Content-Type", content_type)],
        body.as_bytes(),
    )
}

fn post(node: &Node, body: &Value) -> Answer {
    send(node, "POST", CONFERENCES, JSON, &body.to_string())
}

fn patch(node: &Node, meeting: &str, body: &Value) -> Answer {
    send(
        node,
        "PATCH",
        &format!("{CONFERENCES}/{meeting}"),
        JSON,
        &body.to_string(),
    )
}

fn dominant_speaker(node: &Node, meeting: &str) -> Answer {
    request(
        node.private,
        "GET",
        &format!("{CONFERENCES}/{meeting}/dominant-speaker-identification"),
        &[],
        b"",
    )
}

/// Asserts the status and the error body: `{"error": {"reason", "message"}}` with `reason`
/// when the refusal is a Colibri2 one, without it when the HTTP layer refused (`None`).
fn expect(answer: &Answer, status: u16, reason: Option<&str>, what: &str) {
    assert_eq!(answer.status, status, "{what}: {}", answer.raw);
    if status == 200 {
        assert!(
            answer.json.is_object(),
            "{what}: not a JSON object: {}",
            answer.raw
        );
        return;
    }
    let error = &answer.json["error"];
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: no error message: {}",
        answer.raw
    );
    match reason {
        Some(reason) => assert_eq!(error["reason"], reason, "{what}: {}", answer.raw),
        None => assert!(
            error.get("reason").is_none(),
            "{what}: unexpected reason: {}",
            answer.raw
        ),
    }
    assert!(
        answer
            .header("content-type")
            .is_some_and(|c| c.starts_with(JSON)),
        "{what}: error not sent as JSON"
    );
}

// ---------------------------------------------------------------------------------------
// Requests

/// A fixture with its `meeting-id` (when it has one) replaced by `meeting`.
fn load(text: &str, meeting: &str) -> Value {
    let mut value: Value = serde_json::from_str(text).unwrap();
    if let Some(id) = value.get_mut("meeting-id") {
        *id = Value::String(meeting.to_owned());
    }
    value
}

/// Fresh meeting ids, one per case.
#[derive(Default)]
struct MeetingIds(u32);

impl MeetingIds {
    fn next(&mut self) -> String {
        self.0 += 1;
        format!("f1x70000-0000-4000-8000-{:012x}", self.0)
    }
}

/// The smallest valid endpoint create: the ICE role, the mandatory capability, Opus.
fn endpoint_create(id: &str) -> Value {
    json!({
        "id": id, "create": true, "transport": {"ice-controlling": true},
        "capabilities": ["source-names"],
        "medias": [{"type": "audio", "payload-types": [
            {"name": "opus", "id": "111", "clockrate": "48000", "channels": "2"}]}]
    })
}

/// Creates conference `meeting` with `endpoints` and checks the answer names them.
fn create_conference(node: &Node, meeting: &str, endpoints: &[&str]) {
    let answer = post(
        node,
        &json!({
            "meeting-id": meeting, "name": "fixtures@conference.meet.example", "create": true,
            "endpoints": endpoints.iter().map(|e| endpoint_create(e)).collect::<Vec<_>>()
        }),
    );
    expect(&answer, 200, None, "create conference");
    let ids: Vec<&str> = answer.json["endpoints"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, endpoints, "{}", answer.raw);
}

/// A PATCH naming each of `endpoints` without changes: 200, the same ids back.
fn expect_endpoints(node: &Node, meeting: &str, endpoints: &[&str], what: &str) {
    let body: Vec<Value> = endpoints.iter().map(|e| json!({"id": e})).collect();
    let answer = patch(node, meeting, &json!({"endpoints": body}));
    expect(&answer, 200, None, what);
    assert_eq!(answer.json, json!({"endpoints": body}), "{what}");
    let speakers = dominant_speaker(node, meeting);
    assert_eq!(speakers.status, 200, "{what}: {}", speakers.raw);
}

/// Asserts that conference `meeting` does not exist.
fn expect_no_conference(node: &Node, meeting: &str, what: &str) {
    let answer = patch(node, meeting, &json!({}));
    expect(&answer, 404, Some("CONFERENCE_NOT_FOUND"), what);
    let speakers = dominant_speaker(node, meeting);
    expect(&speakers, 404, Some("CONFERENCE_NOT_FOUND"), what);
}

// ---------------------------------------------------------------------------------------
// Shape

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key path of `expected` that `live` lacks or has with another JSON type (arrays:
/// their first elements are compared).
fn shape_differences(expected: &Value, live: &Value, path: &str, out: &mut Vec<String>) {
    match expected {
        Value::Object(map) => {
            for (key, expected) in map {
                let path = format!("{path}.{key}");
                match live.get(key) {
                    None => out.push(format!("{path}: missing")),
                    Some(live) if json_type(live) != json_type(expected) => out.push(format!(
                        "{path}: {} instead of {}",
                        json_type(live),
                        json_type(expected)
                    )),
                    Some(live) => shape_differences(expected, live, &path, out),
                }
            }
        }
        Value::Array(items) => {
            if let Some(first) = items.first() {
                match live.as_array().and_then(|a| a.first()) {
                    Some(live) if json_type(live) != json_type(first) => out.push(format!(
                        "{path}[0]: {} instead of {}",
                        json_type(live),
                        json_type(first)
                    )),
                    Some(live) => shape_differences(first, live, &format!("{path}[0]"), out),
                    None => out.push(format!("{path}: empty")),
                }
            }
        }
        _ => {}
    }
}

fn shape_check(expected: &Value, live: &Value) -> Vec<String> {
    let mut differences = Vec::new();
    shape_differences(expected, live, "$", &mut differences);
    differences.retain(|d| {
        !DELIBERATELY_OMITTED
            .iter()
            .any(|(path, _why)| d.starts_with(&format!("{path}:")))
    });
    differences
}

#[test]
fn shape_check_reports_missing_keys_and_wrong_types() {
    let expected = json!({"a": [{"port": "1", "mux": true}], "b": {"c": 1}, "d": ["x"]});
    let live = json!({"a": [{"port": 1}, {}], "b": {}, "d": [], "extra": 0});
    assert_eq!(
        shape_check(&expected, &live),
        [
            "$.a[0].mux: missing",
            "$.a[0].port: number instead of string",
            "$.b.c: missing",
            "$.d: empty"
        ]
    );
    assert!(shape_check(&expected, &expected).is_empty());
}

// ---------------------------------------------------------------------------------------
// The fixtures

/// Every request fixture, its documented outcome, and the malformed-input suite, on one node.
#[test]
fn jitsi_colibri2_fixtures_against_a_live_node() {
    let node = Node::start(&[]);
    let mut ids = MeetingIds::default();
    rest_doc_create_conference(&node, &mut ids);
    serializer_case_01(&node, &mut ids);
    connects_and_relays_are_not_implemented(&node, &mut ids);
    endpoint_updates(&node, &mut ids);
    expiry(&node, &mut ids);
    malformed_requests_change_nothing(&node, &mut ids);
}

/// rest-doc/create-conference: 501 with its `connects`; without them 200, with an answer of
/// the shape of JVB's.
fn rest_doc_create_conference(node: &Node, ids: &mut MeetingIds) {
    let meeting = ids.next();
    let mut request = load(CREATE_CONFERENCE, &meeting);
    let refused = post(node, &request);
    expect(
        &refused,
        501,
        Some("FEATURE_NOT_IMPLEMENTED"),
        "create-conference (connects)",
    );
    expect_no_conference(node, &meeting, "after the refused create-conference");

    request.as_object_mut().unwrap().remove("connects");
    let answer = post(node, &request);
    expect(&answer, 200, None, "create-conference without connects");
    let live = &answer.json;
    let differences = shape_check(
        &serde_json::from_str(CREATE_CONFERENCE_RESPONSE).unwrap(),
        live,
    );
    assert!(
        differences.is_empty(),
        "the create answer lacks keys of JVB's: {differences:#?}\n{live:#}"
    );
    // Values that must match too (not only their types).
    let endpoint = &live["endpoints"][0];
    assert_eq!(endpoint["id"], "79f0273d");
    assert_eq!(live["endpoints"].as_array().unwrap().len(), 1);
    let transport = &endpoint["transport"]["transport"];
    assert_eq!(transport["xmlns"], "urn:xmpp:jingle:transports:ice-udp:1");
    assert_eq!(transport["rtcp-mux"], true);
    assert_eq!(transport["fingerprints"][0]["setup"], "actpass");
    assert_eq!(transport["fingerprints"][0]["hash"], "sha-256");
    let candidate = &transport["candidates"][0];
    assert_eq!(candidate["port"], node.media.port().to_string());
    assert_eq!(candidate["type"], "host");
    assert_eq!(candidate["protocol"], "udp");
    assert_eq!(candidate["component"], "1");
    assert!(candidate["priority"]
        .as_str()
        .is_some_and(|p| p.parse::<u32>().is_ok()));
    let web_socket = transport["web-sockets"][0].as_str().unwrap();
    assert!(
        web_socket.contains(&format!("/colibri-ws/relais/{meeting}/79f0273d?pwd=")),
        "{web_socket}"
    );
    assert_eq!(live["sources"][0]["id"], "jvb-a0");
    assert_eq!(live["sources"][0]["type"], "audio");
    assert_eq!(live["sources"][1]["id"], "jvb-v0");
    assert_eq!(live["sources"][1]["type"], "video");
    expect_endpoints(
        node,
        &meeting,
        &["79f0273d"],
        "create-conference's endpoint",
    );
}

/// serializer-cases/01: a conference-level `create` with an endpoint that has no `create`.
fn serializer_case_01(node: &Node, ids: &mut MeetingIds) {
    let fixture: Value = serde_json::from_str(CASE_01).unwrap();
    assert_eq!(
        fixture["create"], true,
        "the fixture creates the conference"
    );
    assert!(fixture["endpoints"][0].get("create").is_none());
    let meeting = ids.next();
    let answer = post(node, &load(CASE_01, &meeting));
    expect(&answer, 404, Some("UNKNOWN_ENDPOINT"), "serializer case 01");
    // That the refused request left no conference behind: see
    // `refused_requests_leave_nothing_behind`.

    // Once the endpoint exists (in a fresh conference), the same request without the
    // conference-level `create` is an update (verbatim, payload type without `id`
    // included: `serializer_case_01_is_an_accepted_update_verbatim`); here with an id, so
    // every other part of it (sources, force-mute, initial-last-n) is checked on its own.
    let meeting = ids.next();
    create_conference(node, &meeting, &["bd9b6765"]);
    let mut update = load(CASE_01, &meeting);
    update.as_object_mut().unwrap().remove("create");
    update["endpoints"][0]["medias"][0]["payload-types"][0]["id"] = json!("111");
    let answer = patch(node, &meeting, &update);
    expect(&answer, 200, None, "serializer case 01 as an update");
    assert_eq!(answer.json, json!({"endpoints": [{"id": "bd9b6765"}]}));
    let answer = post(node, &update);
    expect(&answer, 200, None, "serializer case 01 as an update (POST)");
}

/// serializer-cases/02, 07–10 (`connects`) and 05 (`relays`): 501, and nothing created.
fn connects_and_relays_are_not_implemented(node: &Node, ids: &mut MeetingIds) {
    for (name, text) in [
        ("02", CASE_02),
        ("07", CASE_07),
        ("08", CASE_08),
        ("09", CASE_09),
        ("10", CASE_10),
    ] {
        let meeting = ids.next();
        let request = load(text, &meeting);
        assert!(request["connects"].is_array(), "{name}");
        let answer = post(node, &request);
        expect(
            &answer,
            501,
            Some("FEATURE_NOT_IMPLEMENTED"),
            &format!("serializer case {name}"),
        );
        expect_no_conference(node, &meeting, &format!("after serializer case {name}"));
    }
    // 05 modifies a conference (no `create`): to an existing one, and to an unknown one.
    let meeting = ids.next();
    create_conference(node, &meeting, &["aaaa0005"]);
    let answer = patch(node, &meeting, &load(CASE_05, &meeting));
    expect(
        &answer,
        501,
        Some("FEATURE_NOT_IMPLEMENTED"),
        "serializer case 05",
    );
    expect_endpoints(node, &meeting, &["aaaa0005"], "after serializer case 05");
    let unknown = ids.next();
    let answer = post(node, &load(CASE_05, &unknown));
    expect(
        &answer,
        501,
        Some("FEATURE_NOT_IMPLEMENTED"),
        "serializer case 05, unknown conference",
    );
}

/// The client's transport and sources for an endpoint (serializer-cases/04 and
/// rest-doc/update-endpoint): 200 once the conference and endpoint exist, UNKNOWN_ENDPOINT
/// without the endpoint, CONFERENCE_NOT_FOUND without the conference.
fn endpoint_updates(node: &Node, ids: &mut MeetingIds) {
    let mut rest_doc = load(UPDATE_ENDPOINT, "");
    // The fixture's srflx candidate is a real public address; the node would send ICE checks
    // to it. A documentation address (RFC 5737) instead; nothing else changes.
    rest_doc["endpoints"][0]["transport"]["transport"]["candidates"][0]["ip"] = json!("192.0.2.10");
    let cases = [
        ("serializer case 04", CASE_04, "79f0273e"),
        ("rest-doc update-endpoint", UPDATE_ENDPOINT, "79f0273e"),
    ];
    for (name, text, endpoint) in cases {
        let meeting = ids.next();
        let request = if text == UPDATE_ENDPOINT {
            rest_doc.clone()
        } else {
            load(text, &meeting)
        };
        assert_eq!(request["endpoints"][0]["id"], endpoint, "{name}");

        let answer = patch(node, &meeting, &request);
        expect(
            &answer,
            404,
            Some("CONFERENCE_NOT_FOUND"),
            &format!("{name}: no conference"),
        );

        create_conference(node, &meeting, &[]);
        let answer = patch(node, &meeting, &request);
        expect(
            &answer,
            404,
            Some("UNKNOWN_ENDPOINT"),
            &format!("{name}: no endpoint"),
        );
        assert!(
            answer.json["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(endpoint)),
            "{name}: the refusal names the endpoint: {}",
            answer.raw
        );

        let created = patch(
            node,
            &meeting,
            &json!({"endpoints": [endpoint_create(endpoint)]}),
        );
        expect(&created, 200, None, &format!("{name}: endpoint create"));
        let answer = patch(node, &meeting, &request);
        expect(&answer, 200, None, name);
        // JVB's answer to an update is the endpoint's id only.
        let expected: Value = serde_json::from_str(UPDATE_ENDPOINT_RESPONSE).unwrap();
        assert_eq!(answer.json, expected, "{name}");
        // Sent again (Jicofo repeats transports): still accepted.
        let again = patch(node, &meeting, &request);
        expect(&again, 200, None, &format!("{name}, again"));
        expect_endpoints(node, &meeting, &[endpoint], name);
    }
}

/// serializer-cases/06 and rest-doc/expire-conference: 200; the conference and its endpoints
/// are gone.
fn expiry(node: &Node, ids: &mut MeetingIds) {
    for (name, text) in [
        ("serializer case 06", CASE_06),
        ("rest-doc expire-conference", EXPIRE_CONFERENCE),
    ] {
        let meeting = ids.next();
        create_conference(node, &meeting, &["aaaa0006", "bbbb0006"]);
        let request = load(text, &meeting);
        let answer = patch(node, &meeting, &request);
        expect(&answer, 200, None, name);
        expect_no_conference(node, &meeting, &format!("after {name}"));
        // Expiring it again: there is nothing to expire.
        let again = patch(node, &meeting, &request);
        expect(
            &again,
            404,
            Some("CONFERENCE_NOT_FOUND"),
            &format!("{name}, again"),
        );
        // The meeting-id and the endpoint ids are free again.
        create_conference(node, &meeting, &["aaaa0006", "bbbb0006"]);
    }
    // 06 carries its meeting-id: as a POST too.
    let meeting = ids.next();
    create_conference(node, &meeting, &["aaaa0006"]);
    let answer = post(node, &load(CASE_06, &meeting));
    expect(&answer, 200, None, "serializer case 06 (POST)");
    expect_no_conference(node, &meeting, "after serializer case 06 (POST)");
}

/// One malformed or refused request and its outcome.
struct Case {
    what: &'static str,
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: String,
    status: u16,
    reason: Option<&'static str>,
}

/// An expire (which must not take effect when refused).
const EXPIRE: &str = "{\"expire\": true}";
const FORM: &str = "application/x-www-form-urlencoded";

/// Malformed and refused requests while a conference with two endpoints exists: each gets
/// its status and reason, and none changes the conference.
fn malformed_requests_change_nothing(node: &Node, ids: &mut MeetingIds) {
    let meeting = ids.next();
    let existing = ["aaaa0001", "bbbb0002"];
    create_conference(node, &meeting, &existing);
    let unknown = ids.next();
    let conference = format!("{CONFERENCES}/{meeting}");
    let conference = conference.as_str();
    let unknown_conference = format!("{CONFERENCES}/{unknown}");
    let unknown_conference = unknown_conference.as_str();
    let m = meeting.as_str();

    let mut bad_pt = endpoint_create("cccc0003");
    bad_pt["medias"][0]["payload-types"][0]["id"] = json!(true);
    let mut no_transport = endpoint_create("cccc0003");
    no_transport.as_object_mut().unwrap().remove("transport");
    let mut no_capability = endpoint_create("cccc0003");
    no_capability["capabilities"] = json!(["ssrc-rewriting"]);
    let mut no_capabilities = endpoint_create("cccc0003");
    no_capabilities
        .as_object_mut()
        .unwrap()
        .remove("capabilities");
    let duplicate_create = json!({
        "meeting-id": m, "create": true,
        "endpoints": [endpoint_create("cccc0003")]
    });
    let huge = format!(
        "{{\"meeting-id\": \"{m}\", \"endpoints\": [{{\"id\": \"aaaa0001\", \"stats-id\": \"{}\"}}]}}",
        "a".repeat(2 << 20)
    );
    let huge = huge.as_str();

    const BAD: Option<&str> = Some("BAD_REQUEST");
    let case = |what: &'static str, method: &'static str, path: &str, body: &Value| Case {
        what,
        method,
        path: path.to_owned(),
        content_type: Some(JSON),
        body: body.to_string(),
        status: 400,
        reason: BAD,
    };
    let on_conference = |what, body: Value| case(what, "PATCH", conference, &body);
    let posted = |what, body: Value| case(what, "POST", CONFERENCES, &body);
    let raw = |what, method, path: &str, content_type, body: &str| Case {
        content_type,
        body: body.to_owned(),
        ..case(what, method, path, &Value::Null)
    };
    let cases = [
        posted(
            "`create` a string",
            json!({"meeting-id": m, "create": "yes"}),
        ),
        on_conference(
            "`create` a string (PATCH)",
            json!({"create": "yes", "endpoints": [endpoint_create("cccc0003")]}),
        ),
        on_conference("`endpoints` an object", json!({"endpoints": {}})),
        on_conference("payload-type `id` a bool", json!({"endpoints": [bad_pt]})),
        on_conference(
            "`initial-last-n` value a string",
            json!({"endpoints": [{"id": "aaaa0001", "initial-last-n": {"value": "x"}}]}),
        ),
        on_conference(
            "an endpoint without `id`",
            json!({"endpoints": [{"create": true, "transport": {"ice-controlling": true},
                "capabilities": ["source-names"]}]}),
        ),
        on_conference(
            "an endpoint create without `transport`",
            json!({"endpoints": [no_transport]}),
        ),
        on_conference(
            "an endpoint create without `source-names`",
            json!({"endpoints": [no_capability]}),
        ),
        on_conference(
            "an endpoint create without capabilities",
            json!({"endpoints": [no_capabilities]}),
        ),
        on_conference(
            "the same endpoint twice",
            json!({"endpoints": [endpoint_create("cccc0003"), endpoint_create("cccc0003")]}),
        ),
        posted(
            "a POST without `meeting-id`",
            json!({"endpoints": [{"id": "aaaa0001"}]}),
        ),
        posted(
            "a `meeting-id` with a '/'",
            json!({"meeting-id": "a/b", "create": true}),
        ),
        Case {
            status: 404,
            reason: Some("CONFERENCE_NOT_FOUND"),
            ..case(
                "an unknown conference",
                "PATCH",
                unknown_conference,
                &json!({"endpoints": [{"id": "aaaa0001"}]}),
            )
        },
        Case {
            status: 404,
            reason: Some("CONFERENCE_NOT_FOUND"),
            ..posted(
                "an unknown conference (POST)",
                json!({"meeting-id": unknown, "endpoints": [endpoint_create("cccc0003")]}),
            )
        },
        Case {
            status: 404,
            reason: Some("UNKNOWN_ENDPOINT"),
            ..on_conference(
                "an unknown endpoint beside a new one",
                json!({"endpoints": [endpoint_create("cccc0003"), {"id": "dddd0004"}]}),
            )
        },
        Case {
            status: 409,
            reason: Some("CONFERENCE_ALREADY_EXISTS"),
            ..posted("the conference created again", duplicate_create)
        },
        Case {
            status: 409,
            reason: Some("CONFLICT"),
            ..on_conference(
                "an existing endpoint created again",
                json!({"endpoints": [endpoint_create("cccc0003"), endpoint_create("aaaa0001")]}),
            )
        },
        on_conference(
            "a body meeting-id other than the URL's",
            json!({"meeting-id": unknown, "endpoints": [{"id": "aaaa0001"}]}),
        ),
        case(
            "a body meeting-id other than the URL's (expire)",
            "PATCH",
            unknown_conference,
            &json!({"meeting-id": m, "expire": true}),
        ),
        Case {
            status: 413,
            reason: None,
            ..raw("a 2 MiB body", "POST", CONFERENCES, Some(JSON), huge)
        },
        Case {
            status: 413,
            reason: None,
            ..raw(
                "a 2 MiB body (PATCH)",
                "PATCH",
                conference,
                Some(JSON),
                huge,
            )
        },
        raw(
            "not JSON",
            "POST",
            CONFERENCES,
            Some(JSON),
            "meeting-id=x&create=true",
        ),
        raw(
            "truncated JSON",
            "PATCH",
            conference,
            Some(JSON),
            "{\"endpoints\": [",
        ),
        raw("a JSON array", "POST", CONFERENCES, Some(JSON), "[]"),
        raw("trailing data", "PATCH", conference, Some(JSON), "{} {}"),
        raw("an empty body", "POST", CONFERENCES, Some(JSON), ""),
        raw("an empty body (PATCH)", "PATCH", conference, Some(JSON), ""),
        Case {
            status: 415,
            reason: None,
            ..raw(
                "text/plain",
                "PATCH",
                conference,
                Some("text/plain"),
                EXPIRE,
            )
        },
        Case {
            status: 415,
            reason: None,
            ..raw("form-encoded", "POST", CONFERENCES, Some(FORM), EXPIRE)
        },
        Case {
            status: 415,
            reason: None,
            ..raw("no Content-Type", "PATCH", conference, None, EXPIRE)
        },
    ];
    for case in &cases {
        let headers: Vec<(&str, &str)> = case
            .content_type
            .map(|c| ("Content-Type", c))
            .into_iter()
            .collect();
        let answer = request(
            node.private,
            case.method,
            &case.path,
            &headers,
            case.body.as_bytes(),
        );
        expect(&answer, case.status, case.reason, case.what);
        // Each refusal left the conference as it was.
        expect_endpoints(node, m, &existing, &format!("after {}", case.what));
    }

    // None of the refused requests created anything.
    for never in ["cccc0003", "dddd0004"] {
        let answer = patch(node, m, &json!({"endpoints": [{"id": never}]}));
        expect(&answer, 404, Some("UNKNOWN_ENDPOINT"), never);
    }
    expect_no_conference(node, &unknown, "the unknown conference");
    // The refused expire on the other URL did not end it either; a real one does.
    let answer = patch(node, m, &json!({"expire": true}));
    expect(&answer, 200, None, "expire");
    expect_no_conference(node, m, "after the expire");
}

// ---------------------------------------------------------------------------------------
// Authentication

#[test]
fn colibri2_requires_the_private_api_token() {
    const TOKEN: &str = "fixture-token-5Jc8w1";
    let node = Node::start(&["--http-private-api-token", TOKEN]);
    let meeting = "a0707e57-0000-4000-8000-000000000001";
    let body = json!({
        "meeting-id": meeting, "create": true, "endpoints": [endpoint_create("aaaa0001")]
    })
    .to_string();
    let authorised = |token: Option<&str>, method: &str, path: &str, body: &str| {
        let authorization = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", JSON)];
        if let Some(value) = authorization.as_deref() {
            headers.push(("Authorization", value));
        }
        request(node.private, method, path, &headers, body.as_bytes())
    };
    let wrong_length = format!("{TOKEN}x");
    let prefix = &TOKEN[..TOKEN.len() - 1];
    for (what, token) in [
        ("no token", None),
        ("a wrong token", Some("not-the-token-000000")),
        ("a longer token", Some(wrong_length.as_str())),
        ("a prefix of the token", Some(prefix)),
    ] {
        let answer = authorised(token, "POST", CONFERENCES, &body);
        expect(&answer, 401, None, what);
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"), "{what}");
    }
    // Another scheme with the right token.
    let answer = request(
        node.private,
        "POST",
        CONFERENCES,
        &[
            ("Content-Type", JSON),
            ("Authorization", &format!("Basic {TOKEN}")),
        ],
        body.as_bytes(),
    );
    expect(&answer, 401, None, "Basic scheme");
    // The other routes too.
    let patch_path = format!("{CONFERENCES}/{meeting}");
    let answer = authorised(None, "PATCH", &patch_path, "{}");
    expect(&answer, 401, None, "PATCH without a token");
    let speakers = format!("{patch_path}/dominant-speaker-identification");
    let answer = authorised(None, "GET", &speakers, "");
    expect(&answer, 401, None, "GET without a token");

    // The refused creates created nothing: the right token creates the conference (200,
    // not 409), and then reaches the other routes.
    let answer = authorised(Some(TOKEN), "POST", CONFERENCES, &body);
    expect(&answer, 200, None, "the right token");
    assert_eq!(answer.json["endpoints"][0]["id"], "aaaa0001");
    let answer = authorised(Some(TOKEN), "GET", &speakers, "");
    assert_eq!(answer.status, 200, "{}", answer.raw);
    let answer = authorised(
        Some(TOKEN),
        "PATCH",
        &patch_path,
        &json!({"endpoints": [{"id": "aaaa0001"}]}).to_string(),
    );
    expect(&answer, 200, None, "PATCH with the token");
    let answer = authorised(Some(TOKEN), "PATCH", &patch_path, "{\"expire\": true}");
    expect(&answer, 200, None, "expire with the token");
}

// ---------------------------------------------------------------------------------------
// Outcomes the node first got wrong.

/// `ColibriConference::colibri_modify` says "a refused request changes nothing", yet it
/// inserts the conference before checking the endpoints and creates endpoints one by one.
#[test]
fn refused_requests_leave_nothing_behind() {
    let node = Node::start(&[]);
    let mut ids = MeetingIds::default();
    let mut left_behind = Vec::new();
    let exists = |meeting: &str| dominant_speaker(&node, meeting).status != 404;

    // serializer case 01: UNKNOWN_ENDPOINT, but the conference stays (GET 200, a new create
    // of that meeting-id 409 CONFERENCE_ALREADY_EXISTS).
    let meeting = ids.next();
    let answer = post(&node, &load(CASE_01, &meeting));
    expect(&answer, 404, Some("UNKNOWN_ENDPOINT"), "serializer case 01");
    if exists(&meeting) {
        left_behind.push("serializer case 01 (UNKNOWN_ENDPOINT): the conference");
    }

    // A conference create whose endpoint the media task refuses (payload-type id "abc"
    // parses, the backend refuses it): 400, but the conference stays.
    let meeting = ids.next();
    let mut bad = endpoint_create("aaaa0001");
    bad["medias"][0]["payload-types"][0]["id"] = json!("abc");
    let answer = post(
        &node,
        &json!({"meeting-id": meeting, "create": true, "endpoints": [bad.clone()]}),
    );
    expect(&answer, 400, Some("BAD_REQUEST"), "bad payload type id");
    if exists(&meeting) {
        left_behind.push("a create refused for its endpoint's payload type: the conference");
    }

    // Two endpoint creates, the second refused by the backend: 400, but the first exists.
    let meeting = ids.next();
    create_conference(&node, &meeting, &["aaaa0001"]);
    bad["id"] = json!("cccc0003");
    let answer = patch(
        &node,
        &meeting,
        &json!({"endpoints": [endpoint_create("bbbb0002"), bad]}),
    );
    expect(&answer, 400, Some("BAD_REQUEST"), "second endpoint refused");
    let answer = patch(&node, &meeting, &json!({"endpoints": [{"id": "bbbb0002"}]}));
    if answer.status != 404 {
        left_behind.push("two endpoint creates, the second refused: the first endpoint");
    }
    assert!(
        left_behind.is_empty(),
        "refused requests left behind: {left_behind:#?}"
    );
}

/// README: serializer case 01 is an accepted update once its endpoint exists. The node
/// refuses its payload type without `id` (400 "payload-type Opus: id: `id` is missing");
/// JVB accepts it.
#[test]
fn serializer_case_01_is_an_accepted_update_verbatim() {
    let node = Node::start(&[]);
    let mut ids = MeetingIds::default();
    let meeting = ids.next();
    create_conference(&node, &meeting, &["bd9b6765"]);
    let mut update = load(CASE_01, &meeting);
    update.as_object_mut().unwrap().remove("create");
    let answer = patch(&node, &meeting, &update);
    expect(&answer, 200, None, "serializer case 01 as an update");
}

/// The relais-colibri router documents the dominant-speaker answer as JVB's
/// `ConferenceSpeechActivity` state (`endpointsBySpeechActivity`, `dominantEndpoint`, …,
/// rest-doc/dominant-speaker-identification.response.json); the node answers
/// `{"dominantSpeaker", "endpointsInSpeakerOrder"}`.
#[test]
fn dominant_speaker_identification_has_the_shape_of_jvb() {
    let node = Node::start(&[]);
    let meeting = MeetingIds::default().next();
    create_conference(&node, &meeting, &["79f0273d"]);
    let answer = dominant_speaker(&node, &meeting);
    assert_eq!(answer.status, 200, "{}", answer.raw);
    // `dominantSpeakerIdentification` is null in the fixture: only its presence counts.
    let expected: Value = serde_json::from_str(DOMINANT_SPEAKER_RESPONSE).unwrap();
    let differences = shape_check(&expected, &answer.json);
    assert!(differences.is_empty(), "{differences:#?}\n{}", answer.raw);
}
