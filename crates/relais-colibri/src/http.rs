//! The Colibri2 HTTP API as jitsi-videobridge serves it (`doc/rest-colibri2.md`), as an axum
//! router for the node's *private* listener, over a backend the node implements.
//!
//! - `POST /colibri/v2/conferences` (and with a trailing `/`): a `conference-modify` request
//!   (create or modify); `meeting-id` is required in the body.
//! - `PATCH /colibri/v2/conferences/{meeting-id}`: a `conference-modify` for that conference;
//!   the body's `meeting-id` may be left out, and must match the URL when present.
//! - `GET /colibri/v2/conferences/{meeting-id}/dominant-speaker-identification`: the
//!   backend's speech-activity JSON (`endpointsBySpeechActivity`, `dominantEndpoint`, …).
//!
//! Who decides what:
//! - this router: the bearer token (401), the body size (413), `Content-Type:
//!   application/json` (415), JSON syntax and types (400, the message names the field), the
//!   URL/body meeting-id match (400) and the stateless rules of
//!   [`ConferenceModify::validate`] (400, or 501 for `connects` / `relays`);
//! - the backend: everything that needs conference state (CONFERENCE_NOT_FOUND 404,
//!   CONFERENCE_ALREADY_EXISTS 409, UNKNOWN_ENDPOINT 404, CONFLICT 409 for an existing
//!   endpoint id, GRACEFUL_SHUTDOWN 503, UNSPECIFIED 500), returned as [`ColibriError`].
//!
//! Every error answer is JSON, `{"error": {"reason": …, "message": …}}` (see
//! [`crate::colibri2::error`]; statuses there). JVB itself answers 400 with a status-line
//! text for every Colibri2 error; relais gives each reason the status of the XMPP condition
//! JVB sends with it, so that callers can tell them apart. Messages never carry addresses,
//! ports, values from the request or the conference name.
//!
//! Authentication: with [`ColibriConfig::bearer_token`] set, every request needs
//! `Authorization: Bearer <token>` (compared in constant time). Whether a token is required
//! (e.g. when the listener is not on loopback) is the node's decision.

use std::future::Future;

use crate::colibri2::{ColibriError, ConferenceModified, ConferenceModify};

/// What the node does for the Colibri2 routes.
pub trait ColibriBackend: Send + Sync + 'static {
    /// Applies a validated `conference-modify` (its `meeting-id` is set) and returns the
    /// answer. State-dependent refusals are the backend's: see the module docs.
    fn conference_modify(
        &self,
        request: ConferenceModify,
    ) -> impl Future<Output = Result<ConferenceModified, ColibriError>> + Send;

    /// The speech-activity state of a conference, as JSON (the shape of JVB's
    /// `ConferenceSpeechActivity` debug state), or CONFERENCE_NOT_FOUND.
    fn dominant_speaker_identification(
        &self,
        meeting_id: &str,
    ) -> impl Future<Output = Result<serde_json::Value, ColibriError>> + Send;
}

/// Settings of the Colibri2 routes.
#[derive(Debug, Clone)]
pub struct ColibriConfig {
    /// When set, requests must carry `Authorization: Bearer <token>` (401 otherwise).
    pub bearer_token: Option<String>,
    /// Largest accepted body (413 beyond).
    pub max_body_bytes: usize,
}

/// Default largest body: 1 MiB, far above a real request (a few KiB per endpoint).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

impl Default for ColibriConfig {
    fn default() -> Self {
        Self {
            bearer_token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// Content type of requests and answers.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// The Colibri2 routes over `backend` (see the module docs for routes and statuses).
///
/// Statuses: 200 (the `conference-modified` answer, or the dominant-speaker JSON), 400
/// (malformed JSON, wrong type, missing field, broken rule, meeting-id mismatch), 401
/// (token missing or wrong), 404 (CONFERENCE_NOT_FOUND, UNKNOWN_ENDPOINT), 409
/// (CONFERENCE_ALREADY_EXISTS, CONFLICT), 413 (body over `max_body_bytes`), 415 (not
/// `application/json`), 500 (UNSPECIFIED), 501 (FEATURE_NOT_IMPLEMENTED), 503
/// (GRACEFUL_SHUTDOWN).
pub fn router<B: ColibriBackend>(backend: B, config: ColibriConfig) -> axum::Router {
    routes::router(backend, config)
}

mod routes {
    use std::sync::Arc;

    use axum::body::Bytes;
    use axum::extract::rejection::{BytesRejection, PathRejection};
    use axum::extract::{DefaultBodyLimit, Path, Request, State};
    use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
    use axum::http::{HeaderMap, StatusCode};
    use axum::middleware::{self, Next};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, patch, post};
    use axum::{Json, Router};

    use super::{ColibriBackend, ColibriConfig, JSON_CONTENT_TYPE};
    use crate::colibri2::{
        is_valid_meeting_id, parse_conference_modify, ColibriError, ConferenceModify, ErrorDetail,
        ErrorResponse,
    };

    pub(super) fn router<B: ColibriBackend>(backend: B, config: ColibriConfig) -> Router {
        let token: Option<Arc<[u8]>> = config.bearer_token.map(|t| Arc::from(t.into_bytes()));
        Router::new()
            .route("/colibri/v2/conferences", post(create_or_modify::<B>))
            .route("/colibri/v2/conferences/", post(create_or_modify::<B>))
            .route(
                "/colibri/v2/conferences/{meeting_id}",
                patch(modify_conference::<B>),
            )
            .route(
                "/colibri/v2/conferences/{meeting_id}/dominant-speaker-identification",
                get(dominant_speaker_identification::<B>),
            )
            .with_state(Arc::new(backend))
            .layer(middleware::from_fn_with_state(token, require_bearer))
            .layer(DefaultBodyLimit::max(config.max_body_bytes))
    }

    /// Rejects requests without the configured bearer token.
    async fn require_bearer(
        State(token): State<Option<Arc<[u8]>>>,
        request: Request,
        next: Next,
    ) -> Response {
        if let Some(expected) = token.as_deref() {
            let presented = request
                .headers()
                .get(AUTHORIZATION)
                .and_then(|v| bearer_token(v.as_bytes()));
            if !presented.is_some_and(|p| constant_time_eq(p, expected)) {
                let mut response =
                    http_error(StatusCode::UNAUTHORIZED, "missing or invalid bearer token");
                response.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer"),
                );
                return response;
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

    /// An error answer the HTTP layer gives before Colibri2 processing (no reason).
    fn http_error(status: StatusCode, message: &str) -> Response {
        let body = ErrorResponse {
            error: ErrorDetail {
                reason: None,
                message: message.to_owned(),
            },
        };
        (status, Json(body)).into_response()
    }

    fn colibri_error(error: &ColibriError) -> Response {
        let status =
            StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // The reason only: messages may name endpoint ids, which logs need not keep.
        tracing::debug!(reason = %error.reason, "Colibri2 request refused");
        (status, Json(error.to_response())).into_response()
    }

    /// Whether the request's `Content-Type` is JSON (parameters such as charset ignored).
    fn is_json(headers: &HeaderMap) -> bool {
        headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(JSON_CONTENT_TYPE))
    }

    /// A refusal before the backend is asked (small, unlike [`Response`]).
    enum Refusal {
        /// Refused by the HTTP layer: no Colibri2 reason.
        Http(StatusCode, &'static str),
        /// Refused by a Colibri2 rule.
        Colibri(ColibriError),
    }

    impl IntoResponse for Refusal {
        fn into_response(self) -> Response {
            match self {
                Self::Http(status, message) => http_error(status, message),
                Self::Colibri(error) => colibri_error(&error),
            }
        }
    }

    /// Content type, body and JSON checks shared by POST and PATCH.
    fn read_request(
        headers: &HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Result<ConferenceModify, Refusal> {
        if !is_json(headers) {
            return Err(Refusal::Http(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/json",
            ));
        }
        let body = body.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Refusal::Http(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
            } else {
                Refusal::Http(StatusCode::BAD_REQUEST, "could not read the request body")
            }
        })?;
        parse_conference_modify(&body).map_err(Refusal::Colibri)
    }

    async fn apply<B: ColibriBackend>(backend: &B, request: ConferenceModify) -> Response {
        if let Err(e) = request.validate() {
            return colibri_error(&e);
        }
        match backend.conference_modify(request).await {
            Ok(answer) => (StatusCode::OK, Json(answer)).into_response(),
            Err(e) => colibri_error(&e),
        }
    }

    async fn create_or_modify<B: ColibriBackend>(
        State(backend): State<Arc<B>>,
        headers: HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Response {
        match read_request(&headers, body) {
            Ok(request) => apply(backend.as_ref(), request).await,
            Err(refusal) => refusal.into_response(),
        }
    }

    async fn modify_conference<B: ColibriBackend>(
        State(backend): State<Arc<B>>,
        path: Result<Path<String>, PathRejection>,
        headers: HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Response {
        let Ok(Path(meeting_id)) = path else {
            return colibri_error(&ColibriError::bad_request("bad conference URL"));
        };
        let mut request = match read_request(&headers, body) {
            Ok(request) => request,
            Err(refusal) => return refusal.into_response(),
        };
        match request.meeting_id.as_deref() {
            None => request.meeting_id = Some(meeting_id),
            Some(in_body) if in_body == meeting_id => {}
            Some(_) => {
                return colibri_error(&ColibriError::bad_request(
                    "`meeting-id` in the body differs from the one in the URL",
                ))
            }
        }
        apply(backend.as_ref(), request).await
    }

    async fn dominant_speaker_identification<B: ColibriBackend>(
        State(backend): State<Arc<B>>,
        path: Result<Path<String>, PathRejection>,
    ) -> Response {
        let Ok(Path(meeting_id)) = path else {
            return colibri_error(&ColibriError::bad_request("bad conference URL"));
        };
        // No conference can have an id the rules refuse; spare the backend the lookup.
        if !is_valid_meeting_id(&meeting_id) {
            return colibri_error(&ColibriError::conference_not_found());
        }
        match backend.dominant_speaker_identification(&meeting_id).await {
            Ok(state) => (StatusCode::OK, Json(state)).into_response(),
            Err(e) => colibri_error(&e),
        }
    }
}
