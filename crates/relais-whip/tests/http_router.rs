//! The WHIP/WHEP router over a fake backend, and the demo page.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a test failure"
)]

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use relais_whip::http::{router, CreatedSession, SessionKind, WhipBackend, WhipConfig, WhipError};
use relais_whip::sdp::{answer, parse, AnswerParams, Direction, SessionDescription};
use tower::ServiceExt;

const CHROMIUM_WHIP: &str = include_str!("fixtures/chromium_whip_offer.sdp");
const FP: &str = "sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Create(SessionKind, String),
    Delete(SessionKind, String, String),
    Patch(SessionKind, String, String, String),
}

#[derive(Clone, Default)]
struct Fake {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Fake {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

fn canned_answer(offer: &SessionDescription) -> SessionDescription {
    let params = AnswerParams::new(
        "nodeufrag",
        "nodepassword0123456789",
        FP.parse().unwrap(),
        Direction::RecvOnly,
    );
    answer(offer, &params).unwrap()
}

impl WhipBackend for Fake {
    async fn create_session(
        &self,
        kind: SessionKind,
        stream: String,
        offer: SessionDescription,
    ) -> Result<CreatedSession, WhipError> {
        self.calls
            .lock()
            .unwrap()
            .push(Call::Create(kind, stream.clone()));
        match stream.as_str() {
            "full" => Err(WhipError::Unavailable("the node is full".to_owned())),
            "broken" => Err(WhipError::Internal),
            "nope" => Err(WhipError::Unsupported("no video codec in common".into())),
            _ => Ok(CreatedSession {
                session: "s3ss10n".into(),
                answer: canned_answer(&offer),
            }),
        }
    }

    async fn delete_session(
        &self,
        kind: SessionKind,
        stream: String,
        session: String,
    ) -> Result<(), WhipError> {
        self.calls
            .lock()
            .unwrap()
            .push(Call::Delete(kind, stream, session.clone()));
        if session == "s3ss10n" {
            Ok(())
        } else {
            Err(WhipError::NotFound)
        }
    }

    async fn patch_session(
        &self,
        kind: SessionKind,
        stream: String,
        session: String,
        fragment: String,
    ) -> Result<Option<String>, WhipError> {
        self.calls
            .lock()
            .unwrap()
            .push(Call::Patch(kind, stream, session, fragment.clone()));
        if fragment.contains("ice-ufrag") {
            Ok(Some(
                "a=ice-ufrag:new\r\na=ice-pwd:newpassword0123456789\r\n".into(),
            ))
        } else {
            Ok(None)
        }
    }
}

fn app(fake: &Fake, config: WhipConfig) -> axum::Router {
    router(fake.clone(), config)
}

async fn send(app: axum::Router, request: Request<Body>) -> (Response<Body>, String) {
    let response = app.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (Response::from_parts(parts, Body::empty()), text)
}

fn post(uri: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .body(body.into())
        .unwrap()
}

fn header_str(response: &Response<Body>, name: header::HeaderName) -> &str {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

#[tokio::test]
async fn post_whip_creates_a_session() {
    let fake = Fake::default();
    let (resp, body) = send(
        app(&fake, WhipConfig::default()),
        post("/whip/cam-1", "application/sdp", CHROMIUM_WHIP),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{body}");
    assert_eq!(header_str(&resp, header::LOCATION), "/whip/cam-1/s3ss10n");
    assert_eq!(header_str(&resp, header::CONTENT_TYPE), "application/sdp");
    let answer = parse(&body).unwrap();
    assert!(!answer.media.is_empty());
    assert_eq!(
        fake.calls(),
        vec![Call::Create(SessionKind::Publish, "cam-1".into())]
    );
}

#[tokio::test]
async fn post_whep_plays_and_accepts_content_type_parameters() {
    let fake = Fake::default();
    let (resp, _) = send(
        app(&fake, WhipConfig::default()),
        post(
            "/whep/room_2",
            "Application/SDP; charset=utf-8",
            CHROMIUM_WHIP,
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(header_str(&resp, header::LOCATION), "/whep/room_2/s3ss10n");
    assert_eq!(
        fake.calls(),
        vec![Call::Create(SessionKind::Play, "room_2".into())]
    );
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let fake = Fake::default();
    let (resp, _) = send(
        app(&fake, WhipConfig::default()),
        post("/whip/cam", "text/plain", CHROMIUM_WHIP),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let no_type = Request::builder()
        .method(Method::POST)
        .uri("/whip/cam")
        .body(Body::from(CHROMIUM_WHIP))
        .unwrap();
    let (resp, _) = send(app(&fake, WhipConfig::default()), no_type).await;
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn malformed_sdp_is_400_naming_the_problem() {
    let fake = Fake::default();
    let bad = CHROMIUM_WHIP.replacen("m=audio 9 ", "m=audio nine ", 1);
    let (resp, body) = send(
        app(&fake, WhipConfig::default()),
        post("/whip/cam", "application/sdp", bad.clone()),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body, parse(&bad).unwrap_err().to_string());
    assert!(body.contains("line "), "{body}");
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn non_utf8_body_is_400() {
    let fake = Fake::default();
    let (resp, body) = send(
        app(&fake, WhipConfig::default()),
        post("/whip/cam", "application/sdp", vec![b'v', b'=', 0xff, 0xfe]),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(body.contains("UTF-8"));
}

#[tokio::test]
async fn oversized_body_is_413() {
    let fake = Fake::default();
    let config = WhipConfig {
        max_body_bytes: 1024,
        ..WhipConfig::default()
    };
    let (resp, _) = send(
        app(&fake, config),
        post("/whip/cam", "application/sdp", CHROMIUM_WHIP),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn bad_stream_names_are_400() {
    let fake = Fake::default();
    let long = "a".repeat(65);
    for name in ["a.b", "caf%C3%A9", "x%20y", long.as_str(), "a%2Fb"] {
        let (resp, _) = send(
            app(&fake, WhipConfig::default()),
            post(&format!("/whip/{name}"), "application/sdp", CHROMIUM_WHIP),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{name}");
    }
    let ok = "a".repeat(64);
    let (resp, _) = send(
        app(&fake, WhipConfig::default()),
        post(&format!("/whip/{ok}"), "application/sdp", CHROMIUM_WHIP),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn backend_errors_map_to_statuses() {
    let fake = Fake::default();
    for (stream, status) in [
        ("full", StatusCode::SERVICE_UNAVAILABLE),
        ("broken", StatusCode::INTERNAL_SERVER_ERROR),
        ("nope", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (resp, body) = send(
            app(&fake, WhipConfig::default()),
            post(&format!("/whip/{stream}"), "application/sdp", CHROMIUM_WHIP),
        )
        .await;
        assert_eq!(resp.status(), status, "{stream}");
        if stream == "nope" {
            assert_eq!(body, "no video codec in common");
        }
        if stream == "broken" {
            assert_eq!(body, "internal error");
        }
    }
}

fn request(method: Method, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn delete_ends_a_session_or_is_404() {
    let fake = Fake::default();
    let (resp, _) = send(
        app(&fake, WhipConfig::default()),
        request(Method::DELETE, "/whip/cam/s3ss10n"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (resp, _) = send(
        app(&fake, WhipConfig::default()),
        request(Method::DELETE, "/whep/cam/unknown"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        fake.calls(),
        vec![
            Call::Delete(SessionKind::Publish, "cam".into(), "s3ss10n".into()),
            Call::Delete(SessionKind::Play, "cam".into(), "unknown".into()),
        ]
    );
}

fn patch(uri: &str, content_type: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(Method::PATCH)
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn patch_checks_content_type_and_returns_the_fragment() {
    let fake = Fake::default();
    let (resp, _) = send(
        app(&fake, WhipConfig::default()),
        patch("/whip/cam/s3ss10n", "application/sdp", "a=ice-ufrag:x\r\n"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(fake.calls().is_empty());

    let frag = "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n";
    let (resp, body) = send(
        app(&fake, WhipConfig::default()),
        patch("/whip/cam/s3ss10n", "application/trickle-ice-sdpfrag", frag),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header_str(&resp, header::CONTENT_TYPE),
        "application/trickle-ice-sdpfrag"
    );
    assert!(body.starts_with("a=ice-ufrag:new"));

    let (resp, _) = send(
        app(&fake, WhipConfig::default()),
        patch(
            "/whep/cam/s3ss10n",
            "application/trickle-ice-sdpfrag",
            "a=end-of-candidates\r\n",
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(fake.calls().len(), 2);
}

#[tokio::test]
async fn bearer_token_is_required_when_configured() {
    let fake = Fake::default();
    let config = WhipConfig {
        bearer_token: Some("s3cret-token".into()),
        ..WhipConfig::default()
    };
    let (resp, _) = send(
        app(&fake, config.clone()),
        post("/whip/cam", "application/sdp", CHROMIUM_WHIP),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header_str(&resp, header::WWW_AUTHENTICATE), "Bearer");

    for auth in [
        "Bearer wrong",
        "Bearer s3cret-toke",
        "Bearer s3cret-tokenX",
        "Basic s3cret-token",
        "Bearers3cret-token",
        "",
    ] {
        let mut req = post("/whip/cam", "application/sdp", CHROMIUM_WHIP);
        req.headers_mut()
            .insert(header::AUTHORIZATION, auth.parse().unwrap());
        let (resp, _) = send(app(&fake, config.clone()), req).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth}");
    }

    let mut req = request(Method::DELETE, "/whip/cam/s3ss10n");
    req.headers_mut()
        .insert(header::AUTHORIZATION, "Bearer nope".parse().unwrap());
    let (resp, _) = send(app(&fake, config.clone()), req).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(fake.calls().is_empty());

    for auth in ["Bearer s3cret-token", "bearer s3cret-token"] {
        let mut req = post("/whip/cam", "application/sdp", CHROMIUM_WHIP);
        req.headers_mut()
            .insert(header::AUTHORIZATION, auth.parse().unwrap());
        let (resp, _) = send(app(&fake, config.clone()), req).await;
        assert_eq!(resp.status(), StatusCode::CREATED, "{auth}");
    }
}

#[tokio::test]
async fn cors_preflight_is_answered_without_a_token() {
    let fake = Fake::default();
    let config = WhipConfig {
        bearer_token: Some("s3cret-token".into()),
        ..WhipConfig::default()
    };
    let req = Request::builder()
        .method(Method::OPTIONS)
        .uri("/whip/cam")
        .header(header::ORIGIN, "https://example.com")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "content-type,authorization",
        )
        .body(Body::empty())
        .unwrap();
    let (resp, _) = send(app(&fake, config.clone()), req).await;
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(header_str(&resp, header::ACCESS_CONTROL_ALLOW_ORIGIN), "*");
    let methods = header_str(&resp, header::ACCESS_CONTROL_ALLOW_METHODS).to_ascii_uppercase();
    for m in ["POST", "DELETE", "PATCH", "OPTIONS"] {
        assert!(methods.contains(m), "{methods}");
    }
    let headers = header_str(&resp, header::ACCESS_CONTROL_ALLOW_HEADERS).to_ascii_lowercase();
    for h in ["content-type", "authorization", "if-match"] {
        assert!(headers.contains(h), "{headers}");
    }
    assert_eq!(
        header_str(&resp, header::HeaderName::from_static("accept-post")),
        "application/sdp"
    );

    // Actual responses carry the CORS headers too, including 401s.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/whip/cam")
        .header(header::ORIGIN, "https://example.com")
        .header(header::CONTENT_TYPE, "application/sdp")
        .body(Body::from(CHROMIUM_WHIP))
        .unwrap();
    let (resp, _) = send(app(&fake, config.clone()), req).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header_str(&resp, header::ACCESS_CONTROL_ALLOW_ORIGIN), "*");

    let mut req = post("/whip/cam", "application/sdp", CHROMIUM_WHIP);
    req.headers_mut()
        .insert(header::ORIGIN, "https://example.com".parse().unwrap());
    req.headers_mut().insert(
        header::AUTHORIZATION,
        "Bearer s3cret-token".parse().unwrap(),
    );
    let (resp, _) = send(app(&fake, config), req).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let exposed = header_str(&resp, header::ACCESS_CONTROL_EXPOSE_HEADERS).to_ascii_lowercase();
    for h in ["location", "link", "etag"] {
        assert!(exposed.contains(h), "{exposed}");
    }
}

#[tokio::test]
async fn plain_options_on_post_url_advertises_accept_post() {
    let fake = Fake::default();
    let (resp, _) = send(
        app(&fake, WhipConfig::default()),
        request(Method::OPTIONS, "/whep/cam"),
    )
    .await;
    assert!(resp.status().is_success());
    assert_eq!(
        header_str(&resp, header::HeaderName::from_static("accept-post")),
        "application/sdp"
    );
}

#[tokio::test]
async fn demo_pages_are_served() {
    for (path, content_type, needle) in [
        ("/", "text/html", "WHIP"),
        ("/publish.html", "text/html", "data-role=\"publish\""),
        ("/watch.html", "text/html", "data-role=\"watch\""),
        ("/demo.js", "text/javascript", "window.relaisDemo"),
        ("/style.css", "text/css", "video"),
    ] {
        let (resp, body) = send(relais_whip::demo::router(), request(Method::GET, path)).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert!(
            header_str(&resp, header::CONTENT_TYPE).starts_with(content_type),
            "{path}"
        );
        assert!(body.contains(needle), "{path}");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path}: external resource"
        );
    }
}
