//! The Colibri2 router over an in-test bridge that keeps a small map of conferences and
//! endpoints (the state-dependent decisions are the backend's; this one decides them the way
//! JVB does).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a test failure"
)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use relais_colibri::colibri2::{
    Candidate, ColibriError, ConferenceModified, ConferenceModify, Endpoint, Fingerprint,
    IceUdpTransport, MediaSource, Transport, ICE_UDP_XMLNS,
};
use relais_colibri::http::{router, ColibriBackend, ColibriConfig};
use serde_json::{json, Value};
use tower::ServiceExt;

const CONFERENCES: &str = "/colibri/v2/conferences";
/// The meeting-id of the rest-doc fixtures and serializer case 04.
const REST_DOC_MEETING: &str = "beccf2ed-5441-4bfe-96d6-f0f3a6796378";

fn fixture(relative: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/colibri2/{relative}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[derive(Default)]
struct BridgeState {
    /// meeting-id → endpoint ids.
    conferences: HashMap<String, HashSet<String>>,
    shutting_down: bool,
    calls: usize,
}

#[derive(Clone, Default)]
struct Bridge {
    state: Arc<Mutex<BridgeState>>,
}

impl Bridge {
    fn calls(&self) -> usize {
        self.state.lock().unwrap().calls
    }
}

fn bridge_transport(endpoint_id: &str) -> Transport {
    Transport {
        transport: Some(IceUdpTransport {
            xmlns: Some(ICE_UDP_XMLNS.to_owned()),
            ufrag: Some("26ant1ioqu7qnr".to_owned()),
            pwd: Some("9q8uj7tg6j4rc4i6ulc1pmsq9".to_owned()),
            rtcp_mux: Some(true),
            fingerprints: Some(vec![Fingerprint {
                fingerprint: "F1:05:72:F8:F3:F4:B4:65:5B:9A:FC:81:24:11:23:78:D5:42:54:B1:F2:66:2F:82:CC:2B:01:1C:DB:98:BE:C0".to_owned(),
                setup: Some("actpass".to_owned()),
                hash: Some("sha-256".to_owned()),
                ..Fingerprint::default()
            }]),
            candidates: Some(vec![Candidate {
                foundation: "1".to_owned(),
                component: "1".to_owned(),
                protocol: "udp".to_owned(),
                priority: "2130706431".to_owned(),
                ip: "172.18.0.4".to_owned(),
                port: "10000".to_owned(),
                candidate_type: "host".to_owned(),
                generation: Some("0".to_owned()),
                network: Some("0".to_owned()),
                id: Some("5bbb5d5e101f870f0ffffffffdf286239".to_owned()),
                ..Candidate::default()
            }]),
            web_sockets: Some(vec![format!(
                "wss://localhost:8443/colibri-ws/default-id/7e441eda3701676e/{endpoint_id}?pwd=9q8uj7tg6j4rc4i6ulc1pmsq9"
            )]),
            ..IceUdpTransport::default()
        }),
        ..Transport::default()
    }
}

impl ColibriBackend for Bridge {
    async fn conference_modify(
        &self,
        request: ConferenceModify,
    ) -> Result<ConferenceModified, ColibriError> {
        let mut state = self.state.lock().unwrap();
        state.calls += 1;
        if state.shutting_down {
            return Err(ColibriError::graceful_shutdown());
        }
        let meeting_id = request.meeting_id.clone().unwrap();
        if request.expires_conference() {
            return match state.conferences.remove(&meeting_id) {
                Some(_) => Ok(ConferenceModified::default()),
                None => Err(ColibriError::conference_not_found()),
            };
        }
        if request.creates_conference() {
            if state.conferences.contains_key(&meeting_id) {
                return Err(ColibriError::conference_already_exists());
            }
            state.conferences.insert(meeting_id.clone(), HashSet::new());
        }
        // Like JVB, a conference created by a request that then fails stays.
        let endpoints = state
            .conferences
            .get_mut(&meeting_id)
            .ok_or_else(ColibriError::conference_not_found)?;
        let mut answers = Vec::new();
        for endpoint in request.endpoints() {
            if endpoint.expires() {
                endpoints.remove(&endpoint.id);
                answers.push(Endpoint {
                    expire: Some(true),
                    ..Endpoint::new(endpoint.id.clone())
                });
            } else if endpoint.creates() {
                if !endpoints.insert(endpoint.id.clone()) {
                    return Err(ColibriError::endpoint_already_exists(&endpoint.id));
                }
                answers.push(Endpoint {
                    transport: Some(bridge_transport(&endpoint.id)),
                    ..Endpoint::new(endpoint.id.clone())
                });
            } else if endpoints.contains(&endpoint.id) {
                answers.push(Endpoint::new(endpoint.id.clone()));
            } else {
                return Err(ColibriError::unknown_endpoint(&endpoint.id));
            }
        }
        let announces_feedback =
            request.creates_conference() || request.endpoints().iter().any(Endpoint::creates);
        Ok(ConferenceModified {
            endpoints: (!answers.is_empty()).then_some(answers),
            sources: announces_feedback
                .then(|| MediaSource::bridge_feedback_sources(3_191_927_963, 1_863_439_907)),
            ..ConferenceModified::default()
        })
    }

    async fn dominant_speaker_identification(
        &self,
        meeting_id: &str,
    ) -> Result<Value, ColibriError> {
        if self
            .state
            .lock()
            .unwrap()
            .conferences
            .contains_key(meeting_id)
        {
            Ok(fixture(
                "rest-doc/dominant-speaker-identification.response.json",
            ))
        } else {
            Err(ColibriError::conference_not_found())
        }
    }
}

fn app(bridge: &Bridge) -> Router {
    router(bridge.clone(), ColibriConfig::default())
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl Answer {
    fn reason(&self) -> Option<&str> {
        self.body["error"]["reason"].as_str()
    }

    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }
}

async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    Answer {
        status,
        headers,
        body,
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

async fn post(app: &Router, body: &Value) -> Answer {
    send(app, Method::POST, CONFERENCES, &[JSON], body.to_string()).await
}

async fn patch(app: &Router, meeting_id: &str, body: &Value) -> Answer {
    send(
        app,
        Method::PATCH,
        &format!("{CONFERENCES}/{meeting_id}"),
        &[JSON],
        body.to_string(),
    )
    .await
}

/// The rest-doc create request without its `connects` (which relais refuses).
fn rest_doc_create() -> Value {
    let mut request = fixture("rest-doc/create-conference.request.json");
    request.as_object_mut().unwrap().remove("connects");
    request
}

/// Asserts that `actual` has every key of `expected`, recursively, with values of the same
/// JSON type (arrays: compared by their first element).
fn assert_shape_covers(expected: &Value, actual: &Value, path: &str) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, value) in e {
                let Some(found) = a.get(key) else {
                    panic!("{path}.{key} missing in the answer");
                };
                assert_shape_covers(value, found, &format!("{path}.{key}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if let Some(first) = e.first() {
                let found = a.first().unwrap_or_else(|| panic!("{path} is empty"));
                assert_shape_covers(first, found, &format!("{path}[0]"));
            }
        }
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null) => {}
        _ => panic!("{path}: {expected} vs {actual}: different JSON types"),
    }
}

#[tokio::test]
async fn create_answers_in_the_shape_of_jvb() {
    let bridge = Bridge::default();
    let answer = post(&app(&bridge), &rest_doc_create()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        answer.headers[header::CONTENT_TYPE].to_str().unwrap(),
        "application/json"
    );
    assert_shape_covers(
        &fixture("rest-doc/create-conference.response.json"),
        &answer.body,
        "",
    );
    let ice = &answer.body["endpoints"][0]["transport"]["transport"];
    assert_eq!(answer.body["endpoints"][0]["id"], "79f0273d");
    assert_eq!(ice["xmlns"], ICE_UDP_XMLNS);
    assert!(ice["web-sockets"][0]
        .as_str()
        .unwrap()
        .contains("/colibri-ws/"));
    let sources = answer.body["sources"].as_array().unwrap();
    assert_eq!(sources[0]["id"], "jvb-a0");
    assert_eq!(sources[0]["type"], "audio");
    assert_eq!(sources[0]["sources"][0]["name"], "jvb-a0");
    assert_eq!(sources[1]["id"], "jvb-v0");
    assert_eq!(sources[1]["sources"][0]["ssrc"], 1_863_439_907);
    // What JVB answers is what relais' model reads back.
    let reread: ConferenceModified = serde_json::from_value(answer.body.clone()).unwrap();
    assert_eq!(serde_json::to_value(reread).unwrap(), answer.body);
}

#[tokio::test]
async fn trailing_slash_is_the_same_route() {
    let bridge = Bridge::default();
    let answer = send(
        &app(&bridge),
        Method::POST,
        "/colibri/v2/conferences/",
        &[JSON],
        rest_doc_create().to_string(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

#[tokio::test]
async fn second_create_of_a_meeting_id_is_a_conflict() {
    let bridge = Bridge::default();
    let app = app(&bridge);
    assert_eq!(post(&app, &rest_doc_create()).await.status, StatusCode::OK);
    let again = post(&app, &rest_doc_create()).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.reason(), Some("CONFERENCE_ALREADY_EXISTS"));
    assert!(!again.message().contains("hardencounterssinkright"));
}

#[tokio::test]
async fn an_existing_endpoint_id_cannot_be_created_again() {
    let bridge = Bridge::default();
    let app = app(&bridge);
    assert_eq!(post(&app, &rest_doc_create()).await.status, StatusCode::OK);
    let mut again = rest_doc_create();
    again.as_object_mut().unwrap().remove("create");
    let answer = patch(&app, REST_DOC_MEETING, &again).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(answer.reason(), Some("CONFLICT"));
}

#[tokio::test]
async fn patch_of_an_unknown_conference_is_not_found() {
    let bridge = Bridge::default();
    let app = app(&bridge);
    for relative in [
        "rest-doc/update-endpoint.request.json",
        "rest-doc/expire-conference.request.json",
    ] {
        let answer = patch(&app, REST_DOC_MEETING, &fixture(relative)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{relative}");
        assert_eq!(answer.reason(), Some("CONFERENCE_NOT_FOUND"), "{relative}");
    }
    // Serializer case 04 by POST: its meeting-id is in the body.
    let answer = post(
        &app,
        &fixture("serializer-cases/04-update-endpoint-with-transport-and-sources.json"),
    )
    .await;
    assert_eq!(answer.reason(), Some("CONFERENCE_NOT_FOUND"));
}

fn create_endpoint(id: &str) -> Value {
    json!({"endpoints": [{"id": id, "create": true, "transport": {"ice-controlling": true},
        "capabilities": ["source-names"]}]})
}

#[tokio::test]
async fn updates_are_accepted_once_the_endpoint_exists() {
    let bridge = Bridge::default();
    let app = app(&bridge);
    assert_eq!(post(&app, &rest_doc_create()).await.status, StatusCode::OK);

    // rest-doc update-endpoint names endpoint 79f0273e, which does not exist yet.
    let update = fixture("rest-doc/update-endpoint.request.json");
    let answer = patch(&app, REST_DOC_MEETING, &update).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.reason(), Some("UNKNOWN_ENDPOINT"));
    // Jicofo re-invites the participant it names.
    assert!(answer.message().contains("79f0273e"));

    let created = patch(&app, REST_DOC_MEETING, &create_endpoint("79f0273e")).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert!(created.body["endpoints"][0]["transport"]["transport"].is_object());

    let answer = patch(&app, REST_DOC_MEETING, &update).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_shape_covers(
        &fixture("rest-doc/update-endpoint.response.json"),
        &answer.body,
        "",
    );
    let case_04 = fixture("serializer-cases/04-update-endpoint-with-transport-and-sources.json");
    assert_eq!(post(&app, &case_04).await.status, StatusCode::OK);
}

#[tokio::test]
async fn serializer_case_01_is_an_unknown_endpoint_until_it_is_created() {
    let bridge = Bridge::default();
    let app = app(&bridge);
    let case_01 = fixture("serializer-cases/01-endpoint-with-sources-same-as-colibri2iqtest.json");
    let meeting_id = case_01["meeting-id"].as_str().unwrap().to_owned();
    let answer = post(&app, &case_01).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.reason(), Some("UNKNOWN_ENDPOINT"));

    // The conference stayed (as in JVB); create the endpoint, then send the update again
    // without the conference `create`.
    let created = patch(&app, &meeting_id, &create_endpoint("bd9b6765")).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let mut update = case_01;
    update.as_object_mut().unwrap().remove("create");
    let answer = patch(&app, &meeting_id, &update).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["endpoints"][0]["id"], "bd9b6765");
}

#[tokio::test]
async fn expire_ends_the_conference() {
    let bridge = Bridge::default();
    let app = app(&bridge);
    let case_06 = fixture("serializer-cases/06-expire-conference.json");
    let meeting_id = case_06["meeting-id"].as_str().unwrap().to_owned();
    let create = json!({"meeting-id": meeting_id, "create": true});
    assert_eq!(post(&app, &create).await.status, StatusCode::OK);
    let answer = post(&app, &case_06).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, json!({}));
    let gone = send(
        &app,
        Method::GET,
        &format!("{CONFERENCES}/{meeting_id}/dominant-speaker-identification"),
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    // The rest-doc form: a PATCH with only `expire`.
    assert_eq!(post(&app, &rest_doc_create()).await.status, StatusCode::OK);
    let expire = fixture("rest-doc/expire-conference.request.json");
    assert_eq!(
        patch(&app, REST_DOC_MEETING, &expire).await.status,
        StatusCode::OK
    );
    let update = fixture("rest-doc/update-endpoint.request.json");
    assert_eq!(
        patch(&app, REST_DOC_MEETING, &update).await.reason(),
        Some("CONFERENCE_NOT_FOUND")
    );
}

#[tokio::test]
async fn connects_and_relays_are_not_implemented_and_never_reach_the_backend() {
    let bridge = Bridge::default();
    let app = app(&bridge);
    for relative in [
        "rest-doc/create-conference.request.json",
        "serializer-cases/02-something-that-should-be-exercising-all-the-fields.json",
        "serializer-cases/05-relay-with-endpoints.json",
        "serializer-cases/07-connect-with-http-headers.json",
        "serializer-cases/10-connect-with-exports-and-requests.json",
    ] {
        let answer = post(&app, &fixture(relative)).await;
        assert_eq!(answer.status, StatusCode::NOT_IMPLEMENTED, "{relative}");
        assert_eq!(
            answer.reason(),
            Some("FEATURE_NOT_IMPLEMENTED"),
            "{relative}"
        );
    }
    assert_eq!(bridge.calls(), 0);
}

#[tokio::test]
async fn malformed_json_is_a_bad_request() {
    let bridge = Bridge::default();
    let app = app(&bridge);
    for body in [
        "{",
        "{\"meeting-id\": \"m\",}",
        "not json",
        "{\"meeting-id\": \"m\"} trailing",
        "",
    ] {
        let answer = send(&app, Method::POST, CONFERENCES, &[JSON], body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(answer.reason(), Some("BAD_REQUEST"));
        assert!(
            answer.message().starts_with("malformed JSON at line"),
            "{}",
            answer.message()
        );
    }
    let answer = send(&app, Method::POST, CONFERENCES, &[JSON], "[1, 2]").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.message().starts_with("request body: invalid type"),
        "{}",
        answer.message()
    );
    assert_eq!(bridge.calls(), 0);
}

#[tokio::test]
async fn wrong_types_are_bad_requests_naming_the_field() {
    let bridge = Bridge::default();
    let app = app(&bridge);
    let mut create_as_string = rest_doc_create();
    create_as_string["create"] = json!("yes");
    let mut hdrext_id_as_string = rest_doc_create();
    hdrext_id_as_string["endpoints"][0]["medias"][0]["rtp-hdrexts"][0]["id"] = json!("1");
    let mut ssrc_too_large = rest_doc_create();
    ssrc_too_large["endpoints"][0]["sources"] =
        json!([{"type": "audio", "id": "79f0273d-a0", "sources": [4_294_967_296_u64]}]);
    let mut clockrate_fraction = rest_doc_create();
    clockrate_fraction["endpoints"][0]["medias"][0]["payload-types"][0]["clockrate"] =
        json!(48000.5);
    let cases = [
        (
            create_as_string,
            "`create`: invalid type: string, expected a boolean",
        ),
        (
            hdrext_id_as_string,
            "`endpoints[0].medias[0].rtp-hdrexts[0].id`: invalid type: string",
        ),
        (
            ssrc_too_large,
            "`endpoints[0].sources[0].sources[0]`: invalid value",
        ),
        (
            clockrate_fraction,
            "`endpoints[0].medias[0].payload-types[0].clockrate`: invalid type",
        ),
    ];
    for (body, expected) in cases {
        let answer = post(&app, &body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{expected}");
        assert_eq!(answer.reason(), Some("BAD_REQUEST"));
        assert!(
            answer.message().starts_with(expected),
            "{:?} does not start with {expected:?}",
            answer.message()
        );
    }
    assert_eq!(bridge.calls(), 0);
}

/// Decided: a payload-type `clockrate` (or `id`, `channels`) sent as a JSON integer is
/// accepted, as JVB accepts it, and is a string again in relais' model.
#[tokio::test]
async fn clockrate_as_a_json_number_is_accepted() {
    let bridge = Bridge::default();
    let mut request = rest_doc_create();
    request["endpoints"][0]["medias"][0]["payload-types"][1]["clockrate"] = json!(48000);
    request["endpoints"][0]["medias"][0]["payload-types"][1]["id"] = json!(111);
    let answer = post(&app(&bridge), &request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

#[tokio::test]
async fn missing_fields_are_bad_requests_naming_the_field() {
    let bridge = Bridge::default();
    let app = app(&bridge);
    let mut no_endpoint_id = rest_doc_create();
    no_endpoint_id["endpoints"][0]
        .as_object_mut()
        .unwrap()
        .remove("id");
    let answer = post(&app, &no_endpoint_id).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.message(), "`endpoints[0]`: missing field `id`");

    let mut no_uri = rest_doc_create();
    no_uri["endpoints"][0]["medias"][1]["rtp-hdrexts"][0]
        .as_object_mut()
        .unwrap()
        .remove("uri");
    let answer = post(&app, &no_uri).await;
    assert_eq!(
        answer.message(),
        "`endpoints[0].medias[1].rtp-hdrexts[0]`: missing field `uri`"
    );

    let mut no_meeting_id = rest_doc_create();
    no_meeting_id.as_object_mut().unwrap().remove("meeting-id");
    let answer = post(&app, &no_meeting_id).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.message().contains("meeting-id"));

    let mut no_transport = rest_doc_create();
    no_transport["endpoints"][0]
        .as_object_mut()
        .unwrap()
        .remove("transport");
    let answer = post(&app, &no_transport).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.message().contains("transport"));
    assert_eq!(bridge.calls(), 0);
}

#[tokio::test]
async fn errors_never_echo_addresses_ports_or_the_conference_name() {
    let bridge = Bridge::default();
    let app = app(&bridge);
    let name = "hardencounterssinkright@muc.meet.jitsi";
    let mut name_as_create = rest_doc_create();
    name_as_create["create"] = json!(name);
    let mut address_list = fixture("rest-doc/update-endpoint.request.json");
    address_list["meeting-id"] = json!(REST_DOC_MEETING);
    address_list["endpoints"][0]["transport"]["transport"]["candidates"][0]["ip"] =
        json!(["129.80.210.199"]);
    let mut negative_port = fixture("rest-doc/update-endpoint.request.json");
    negative_port["meeting-id"] = json!(REST_DOC_MEETING);
    negative_port["endpoints"][0]["transport"]["transport"]["candidates"][0]["port"] =
        json!(-10000);
    for body in [name_as_create, address_list, negative_port] {
        let answer = post(&app, &body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        let message = answer.message();
        for secret in ["hardencounters", "129.80", "10000"] {
            assert!(!message.contains(secret), "{message:?} echoes {secret}");
        }
    }
    // A syntax error inside the name: line and column only.
    let truncated = format!("{{\"meeting-id\": \"m\", \"name\": \"{name}");
    let answer = send(&app, Method::POST, CONFERENCES, &[JSON], truncated).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(!answer.message().contains("hardencounters"));
}

#[tokio::test]
async fn a_2_mib_body_is_too_large() {
    let bridge = Bridge::default();
    let mut request = rest_doc_create();
    request["padding"] = json!("x".repeat(2 * 1024 * 1024));
    let answer = post(&app(&bridge), &request).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.reason(), None);
    assert_eq!(answer.message(), "request body too large");
    assert_eq!(bridge.calls(), 0);
}

#[tokio::test]
async fn content_type_must_be_json() {
    let bridge = Bridge::default();
    let app = app(&bridge);
    let body = rest_doc_create().to_string();
    for headers in [&[("content-type", "text/plain")][..], &[]] {
        let answer = send(&app, Method::POST, CONFERENCES, headers, body.clone()).await;
        assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(answer.reason(), None);
    }
    let answer = send(
        &app,
        Method::POST,
        CONFERENCES,
        &[("content-type", "Application/JSON; charset=utf-8")],
        body,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn bearer_token_guards_every_route() {
    let bridge = Bridge::default();
    let app = router(
        bridge.clone(),
        ColibriConfig {
            bearer_token: Some("s3cret-token".to_owned()),
            ..ColibriConfig::default()
        },
    );
    let body = rest_doc_create().to_string();
    let dominant = format!("{CONFERENCES}/{REST_DOC_MEETING}/dominant-speaker-identification");
    for authorization in [
        None,
        Some("Bearer wrong"),
        Some("Basic czNjcmV0LXRva2Vu"),
        Some("Bearer s3cret-token-longer"),
        Some("Bearer "),
    ] {
        let mut headers = vec![JSON];
        if let Some(value) = authorization {
            headers.push(("authorization", value));
        }
        for (method, uri) in [
            (Method::POST, CONFERENCES),
            (Method::GET, dominant.as_str()),
        ] {
            let answer = send(&app, method, uri, &headers, body.clone()).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{authorization:?}");
            assert_eq!(answer.headers[header::WWW_AUTHENTICATE], "Bearer");
            assert_eq!(answer.reason(), None);
        }
    }
    assert_eq!(bridge.calls(), 0);
    let answer = send(
        &app,
        Method::POST,
        CONFERENCES,
        &[JSON, ("authorization", "bearer s3cret-token")],
        body,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn path_and_body_meeting_ids_must_match() {
    let bridge = Bridge::default();
    let app = app(&bridge);
    assert_eq!(post(&app, &rest_doc_create()).await.status, StatusCode::OK);
    let case_04 = fixture("serializer-cases/04-update-endpoint-with-transport-and-sources.json");
    let calls_before = bridge.calls();
    let answer = patch(&app, "another-meeting", &case_04).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.reason(), Some("BAD_REQUEST"));
    assert!(answer.message().contains("meeting-id"));
    assert_eq!(bridge.calls(), calls_before);
    // The same body on its own conference's URL goes through to the backend (which has no
    // endpoint 79f0273e yet).
    let answer = patch(&app, REST_DOC_MEETING, &case_04).await;
    assert_eq!(answer.reason(), Some("UNKNOWN_ENDPOINT"));
}

#[tokio::test]
async fn dominant_speaker_identification_is_the_backends_json() {
    let bridge = Bridge::default();
    let app = app(&bridge);
    let uri = format!("{CONFERENCES}/{REST_DOC_MEETING}/dominant-speaker-identification");
    let unknown = send(&app, Method::GET, &uri, &[], Body::empty()).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.reason(), Some("CONFERENCE_NOT_FOUND"));

    assert_eq!(post(&app, &rest_doc_create()).await.status, StatusCode::OK);
    let answer = send(&app, Method::GET, &uri, &[], Body::empty()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.body,
        fixture("rest-doc/dominant-speaker-identification.response.json")
    );
}

#[tokio::test]
async fn graceful_shutdown_is_service_unavailable() {
    let bridge = Bridge::default();
    bridge.state.lock().unwrap().shutting_down = true;
    let answer = post(&app(&bridge), &rest_doc_create()).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.reason(), Some("GRACEFUL_SHUTDOWN"));
}

#[tokio::test]
async fn other_methods_are_not_allowed() {
    let bridge = Bridge::default();
    let app = app(&bridge);
    let answer = send(&app, Method::GET, CONFERENCES, &[], Body::empty()).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    let answer = send(
        &app,
        Method::POST,
        &format!("{CONFERENCES}/{REST_DOC_MEETING}"),
        &[JSON],
        "{}",
    )
    .await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
}
