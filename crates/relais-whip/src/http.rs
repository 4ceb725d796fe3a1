//! The WHIP (RFC 9725) and WHEP HTTP endpoints, as an axum router over a backend the node
//! implements.
//!
//! - `POST /whip/{stream}` (publish) and `POST /whep/{stream}` (play): body `application/sdp`
//!   offer → `201 Created`, the SDP answer, `Location: /whip/{stream}/{session}`.
//! - `DELETE` on the session resource ends it; `PATCH` (`application/trickle-ice-sdpfrag`)
//!   carries ICE restarts.
//! - CORS on every route, so pages on other origins can publish and play.
//! - An optional bearer token guards all of them.

use std::future::Future;

use crate::sdp::{SdpError, SessionDescription};

/// Publish (WHIP) or play (WHEP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionKind {
    /// A WHIP publisher.
    Publish,
    /// A WHEP viewer.
    Play,
}

/// A session the backend created.
#[derive(Debug, Clone)]
pub struct CreatedSession {
    /// Opaque, unguessable session id (goes into the `Location` URL).
    pub session: String,
    /// The SDP answer.
    pub answer: SessionDescription,
}

/// Why a WHIP/WHEP request failed; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum WhipError {
    /// The offer is not acceptable SDP (400, the message names what is wrong).
    #[error("bad SDP offer: {0}")]
    BadOffer(#[from] SdpError),
    /// Unknown stream or session (404).
    #[error("no such session")]
    NotFound,
    /// The request is well-formed but the node cannot do it (422).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The node is shutting down or full (503).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Anything else (500); the text is logged, not sent.
    #[error("internal error")]
    Internal,
}

/// What the node does for the WHIP/WHEP routes.
pub trait WhipBackend: Clone + Send + Sync + 'static {
    /// Creates a publish or play session on `stream` for `offer` and returns the answer.
    fn create_session(
        &self,
        kind: SessionKind,
        stream: String,
        offer: SessionDescription,
    ) -> impl Future<Output = Result<CreatedSession, WhipError>> + Send;

    /// Ends a session.
    fn delete_session(
        &self,
        kind: SessionKind,
        stream: String,
        session: String,
    ) -> impl Future<Output = Result<(), WhipError>> + Send;

    /// Applies a trickle-ice-sdpfrag (ICE restart); returns the answer fragment, if any.
    fn patch_session(
        &self,
        kind: SessionKind,
        stream: String,
        session: String,
        fragment: String,
    ) -> impl Future<Output = Result<Option<String>, WhipError>> + Send;
}

/// Settings of the WHIP/WHEP routes.
#[derive(Debug, Clone)]
pub struct WhipConfig {
    /// When set, requests must carry `Authorization: Bearer <token>` (401 otherwise).
    pub bearer_token: Option<String>,
    /// Largest accepted body (413 beyond).
    pub max_body_bytes: usize,
}

impl Default for WhipConfig {
    fn default() -> Self {
        Self {
            bearer_token: None,
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Content type of SDP offers and answers.
pub const SDP_CONTENT_TYPE: &str = "application/sdp";
/// Content type of trickle-ICE / ICE-restart fragments (RFC 8840).
pub const SDPFRAG_CONTENT_TYPE: &str = "application/trickle-ice-sdpfrag";
/// Longest accepted stream name.
pub const MAX_STREAM_NAME_LEN: usize = 64;
/// Longest session id accepted in a URL (longer ones are answered 404 without asking the
/// backend).
pub const MAX_SESSION_ID_LEN: usize = 256;

/// Whether `name` is a valid stream name: 1–64 characters of `[A-Za-z0-9_-]`.
pub fn is_valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_STREAM_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The WHIP/WHEP routes over `backend`: `POST /whip/{stream}`, `POST /whep/{stream}`, and
/// `DELETE` / `PATCH` on `/whip/{stream}/{session}` and `/whep/{stream}/{session}`, with CORS
/// (any origin) and, when configured, a bearer token on every non-`OPTIONS` request.
///
/// Statuses: 201 (created), 200 (deleted, or patched with an answer fragment), 204 (patched
/// without one), 400 (bad stream name, non-UTF-8 body, SDP the parser or backend rejects; the
/// body names the problem), 401 (token missing or wrong), 404 (unknown stream or session),
/// 413 (body over `max_body_bytes`), 415 (wrong `Content-Type`), 422 (unsupported offer),
/// 500 (internal error; the body says nothing more), 503 (node full or shutting down).
pub fn router<B: WhipBackend>(backend: B, config: WhipConfig) -> axum::Router {
    routes::router(backend, config)
}

mod routes {
    use std::sync::Arc;

    use axum::body::Bytes;
    use axum::extract::rejection::{BytesRejection, PathRejection};
    use axum::extract::{DefaultBodyLimit, Path, Request, State};
    use axum::http::header::{
        AUTHORIZATION, CONTENT_TYPE, ETAG, IF_MATCH, LINK, LOCATION, WWW_AUTHENTICATE,
    };
    use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
    use axum::middleware::{self, Next};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use axum::Router;
    use tower_http::cors::{Any, CorsLayer};

    use super::{
        is_valid_stream_name, SessionKind, WhipBackend, WhipConfig, WhipError, MAX_SESSION_ID_LEN,
        SDPFRAG_CONTENT_TYPE, SDP_CONTENT_TYPE,
    };

    const ACCEPT_POST: HeaderName = HeaderName::from_static("accept-post");

    /// Per-kind handler state.
    #[derive(Clone)]
    struct Ctx<B> {
        backend: B,
        kind: SessionKind,
    }

    impl<B> Ctx<B> {
        fn prefix(&self) -> &'static str {
            match self.kind {
                SessionKind::Publish => "whip",
                SessionKind::Play => "whep",
            }
        }
    }

    pub(super) fn router<B: WhipBackend>(backend: B, config: WhipConfig) -> Router {
        let token: Option<Arc<[u8]>> = config.bearer_token.map(|t| Arc::from(t.into_bytes()));
        let kind_routes = |kind: SessionKind, prefix: &str| {
            Router::new()
                .route(
                    &format!("/{prefix}/{{stream}}"),
                    post(create::<B>).options(options_post),
                )
                .route(
                    &format!("/{prefix}/{{stream}}/{{session}}"),
                    axum::routing::delete(delete::<B>)
                        .patch(patch::<B>)
                        .options(options_session),
                )
                .with_state(Ctx {
                    backend: backend.clone(),
                    kind,
                })
        };
        let cors = CorsLayer::new()
            .allow_origin(Any)
            .allow_methods([Method::POST, Method::DELETE, Method::PATCH, Method::OPTIONS])
            .allow_headers([CONTENT_TYPE, AUTHORIZATION, IF_MATCH])
            .expose_headers([LOCATION, LINK, ETAG]);
        Router::new()
            .merge(kind_routes(SessionKind::Publish, "whip"))
            .merge(kind_routes(SessionKind::Play, "whep"))
            .layer(middleware::from_fn_with_state(token, require_bearer))
            .layer(DefaultBodyLimit::max(config.max_body_bytes))
            .layer(cors)
            .layer(middleware::from_fn(accept_post_on_preflight))
    }

    /// Rejects non-`OPTIONS` requests without the configured bearer token.
    async fn require_bearer(
        State(token): State<Option<Arc<[u8]>>>,
        request: Request,
        next: Next,
    ) -> Response {
        if let Some(expected) = token.as_deref() {
            if request.method() != Method::OPTIONS {
                let presented = request
                    .headers()
                    .get(AUTHORIZATION)
                    .and_then(|v| bearer_token(v.as_bytes()));
                let ok = presented.is_some_and(|p| constant_time_eq(p, expected));
                if !ok {
                    return (
                        StatusCode::UNAUTHORIZED,
                        [(WWW_AUTHENTICATE, "Bearer")],
                        "missing or invalid bearer token",
                    )
                        .into_response();
                }
            }
        }
        next.run(request).await
    }

    /// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
    fn bearer_token(value: &[u8]) -> Option<&[u8]> {
        let (scheme, rest) = value.split_at_checked(6)?;
        if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first().is_none_or(|b| *b != b' ') {
            return None;
        }
        let token = rest.trim_ascii();
        (!token.is_empty()).then_some(token)
    }

    /// Compares without an early exit; the time depends only on the expected token's length.
    fn constant_time_eq(presented: &[u8], expected: &[u8]) -> bool {
        let mut diff = u8::from(presented.len() != expected.len());
        for (i, e) in expected.iter().enumerate() {
            diff |= e ^ presented.get(i).copied().unwrap_or(0);
        }
        diff == 0
    }

    /// Adds `Accept-Post: application/sdp` to CORS preflights of the POST URLs (the CORS layer
    /// answers those itself, so the route's own `OPTIONS` handler does not run).
    async fn accept_post_on_preflight(request: Request, next: Next) -> Response {
        let is_post_url = request.method() == Method::OPTIONS && {
            let mut segments = request.uri().path().trim_start_matches('/').split('/');
            matches!(
                (segments.next(), segments.next(), segments.next()),
                (Some("whip" | "whep"), Some(_), None)
            )
        };
        let mut response = next.run(request).await;
        if is_post_url && !response.headers().contains_key(ACCEPT_POST) {
            response
                .headers_mut()
                .insert(ACCEPT_POST, HeaderValue::from_static(SDP_CONTENT_TYPE));
        }
        response
    }

    async fn options_post() -> impl IntoResponse {
        (StatusCode::NO_CONTENT, [(ACCEPT_POST, SDP_CONTENT_TYPE)])
    }

    async fn options_session() -> StatusCode {
        StatusCode::NO_CONTENT
    }

    /// Whether the request's `Content-Type` is `expected` (parameters ignored).
    fn has_content_type(headers: &HeaderMap, expected: &str) -> bool {
        headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(expected))
    }

    fn text(status: StatusCode, body: impl Into<String>) -> Response {
        (
            status,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            body.into(),
        )
            .into_response()
    }

    fn unsupported_media_type(expected: &str) -> Response {
        text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be {expected}"),
        )
    }

    const BAD_STREAM_NAME: &str =
        "stream name must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'";

    fn bad_stream_name() -> Response {
        text(StatusCode::BAD_REQUEST, BAD_STREAM_NAME)
    }

    fn body_error(rejection: &BytesRejection) -> Response {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            text(status, "request body too large")
        } else {
            text(StatusCode::BAD_REQUEST, "could not read the request body")
        }
    }

    fn whip_error(error: &WhipError, kind: SessionKind, action: &str) -> Response {
        match error {
            WhipError::BadOffer(e) => text(StatusCode::BAD_REQUEST, e.to_string()),
            WhipError::NotFound => text(StatusCode::NOT_FOUND, error.to_string()),
            WhipError::Unsupported(m) => text(StatusCode::UNPROCESSABLE_ENTITY, m.clone()),
            WhipError::Unavailable(_) => text(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
            WhipError::Internal => {
                tracing::error!(
                    ?kind,
                    action,
                    "WHIP/WHEP backend failed with an internal error"
                );
                text(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
            }
        }
    }

    /// A failure response before the backend is asked (small, unlike [`Response`]).
    struct Reject(StatusCode, String);

    impl IntoResponse for Reject {
        fn into_response(self) -> Response {
            text(self.0, self.1)
        }
    }

    fn utf8_body(body: Bytes) -> Result<String, Reject> {
        String::from_utf8(body.into()).map_err(|_| {
            Reject(
                StatusCode::BAD_REQUEST,
                "request body is not valid UTF-8".to_owned(),
            )
        })
    }

    async fn create<B: WhipBackend>(
        State(ctx): State<Ctx<B>>,
        path: Result<Path<String>, PathRejection>,
        headers: HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Response {
        let stream = match path {
            Ok(Path(s)) if is_valid_stream_name(&s) => s,
            _ => return bad_stream_name(),
        };
        if !has_content_type(&headers, SDP_CONTENT_TYPE) {
            return unsupported_media_type(SDP_CONTENT_TYPE);
        }
        let body = match body {
            Ok(b) => b,
            Err(e) => return body_error(&e),
        };
        let sdp = match utf8_body(body) {
            Ok(s) => s,
            Err(r) => return r.into_response(),
        };
        let offer = match crate::sdp::parse(&sdp) {
            Ok(o) => o,
            Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let created = match ctx
            .backend
            .create_session(ctx.kind, stream.clone(), offer)
            .await
        {
            Ok(c) => c,
            Err(e) => return whip_error(&e, ctx.kind, "create"),
        };
        let location = format!("/{}/{stream}/{}", ctx.prefix(), created.session);
        let Ok(location) = HeaderValue::from_str(&location) else {
            tracing::error!(kind = ?ctx.kind, "backend returned a session id unfit for a URL");
            return text(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        };
        (
            StatusCode::CREATED,
            [
                (CONTENT_TYPE, HeaderValue::from_static(SDP_CONTENT_TYPE)),
                (LOCATION, location),
            ],
            created.answer.to_string(),
        )
            .into_response()
    }

    /// Stream and session from a session URL; `Err` is the response to send.
    fn session_path(
        path: Result<Path<(String, String)>, PathRejection>,
    ) -> Result<(String, String), Reject> {
        let Ok(Path((stream, session))) = path else {
            return Err(Reject(
                StatusCode::BAD_REQUEST,
                "bad session URL".to_owned(),
            ));
        };
        if !is_valid_stream_name(&stream) {
            return Err(Reject(StatusCode::BAD_REQUEST, BAD_STREAM_NAME.to_owned()));
        }
        if session.is_empty() || session.len() > MAX_SESSION_ID_LEN {
            return Err(Reject(
                StatusCode::NOT_FOUND,
                WhipError::NotFound.to_string(),
            ));
        }
        Ok((stream, session))
    }

    async fn delete<B: WhipBackend>(
        State(ctx): State<Ctx<B>>,
        path: Result<Path<(String, String)>, PathRejection>,
    ) -> Response {
        let (stream, session) = match session_path(path) {
            Ok(p) => p,
            Err(r) => return r.into_response(),
        };
        match ctx.backend.delete_session(ctx.kind, stream, session).await {
            Ok(()) => StatusCode::OK.into_response(),
            Err(e) => whip_error(&e, ctx.kind, "delete"),
        }
    }

    async fn patch<B: WhipBackend>(
        State(ctx): State<Ctx<B>>,
        path: Result<Path<(String, String)>, PathRejection>,
        headers: HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Response {
        let (stream, session) = match session_path(path) {
            Ok(p) => p,
            Err(r) => return r.into_response(),
        };
        if !has_content_type(&headers, SDPFRAG_CONTENT_TYPE) {
            return unsupported_media_type(SDPFRAG_CONTENT_TYPE);
        }
        let body = match body {
            Ok(b) => b,
            Err(e) => return body_error(&e),
        };
        let fragment = match utf8_body(body) {
            Ok(s) => s,
            Err(r) => return r.into_response(),
        };
        match ctx
            .backend
            .patch_session(ctx.kind, stream, session, fragment)
            .await
        {
            Ok(Some(answer)) => (
                StatusCode::OK,
                [(CONTENT_TYPE, SDPFRAG_CONTENT_TYPE)],
                answer,
            )
                .into_response(),
            Ok(None) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => whip_error(&e, ctx.kind, "patch"),
        }
    }
}
