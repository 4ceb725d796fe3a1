//! Why a Colibri2 request is refused: the reason, its HTTP status, and the JSON error body.
//!
//! jitsi-videobridge answers Colibri2 errors over XMPP as a stanza error (a condition such as
//! `item-not-found`) carrying `<error xmlns='jitsi:colibri2' reason='…'/>`. Its REST handler
//! has no JSON error body: it answers 400 with the text in the status line (404 for a PATCH of
//! an unknown conference). relais keeps the reasons and gives each the HTTP status of the
//! stanza condition JVB pairs it with, and a small JSON body:
//!
//! ```json
//! {"error": {"reason": "CONFERENCE_NOT_FOUND", "message": "conference not found"}}
//! ```
//!
//! `reason` is absent when the HTTP layer refused the request before reading it as Colibri2
//! (401 missing token, 413 body too large, 415 wrong content type).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The Colibri2 error reasons (`Colibri2Error.Reason` in jitsi-xmpp-extensions), plus the two
/// kinds JVB sends without a reason (`bad-request` and `conflict` stanza errors), which relais
/// names so that every refusal has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// No conference with that meeting-id (404, `item-not-found`).
    ConferenceNotFound,
    /// `create` for a meeting-id that already has a conference (409, `conflict`).
    ConferenceAlreadyExists,
    /// The request asks for something relais does not do, e.g. `connects` or `relays`
    /// (501, `feature-not-implemented`).
    FeatureNotImplemented,
    /// The node is shutting down; Jicofo moves the participants to another bridge
    /// (503, `service-unavailable`).
    GracefulShutdown,
    /// An update for an endpoint the conference does not have; Jicofo re-invites the
    /// participant (404, `item-not-found`).
    UnknownEndpoint,
    /// Any other failure (500, `internal-server-error`).
    Unspecified,
    /// Malformed or invalid input: bad JSON, a wrong type, a missing field, a broken rule
    /// (400, `bad-request`; JVB sends no reason with it).
    BadRequest,
    /// Creating an endpoint whose id already exists (409, `conflict`; JVB sends no reason).
    Conflict,
}

impl Reason {
    /// The wire name, e.g. `CONFERENCE_NOT_FOUND`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ConferenceNotFound => "CONFERENCE_NOT_FOUND",
            Self::ConferenceAlreadyExists => "CONFERENCE_ALREADY_EXISTS",
            Self::FeatureNotImplemented => "FEATURE_NOT_IMPLEMENTED",
            Self::GracefulShutdown => "GRACEFUL_SHUTDOWN",
            Self::UnknownEndpoint => "UNKNOWN_ENDPOINT",
            Self::Unspecified => "UNSPECIFIED",
            Self::BadRequest => "BAD_REQUEST",
            Self::Conflict => "CONFLICT",
        }
    }

    /// The XMPP stanza error condition JVB sends with this reason (what Jicofo switches on).
    pub const fn xmpp_condition(self) -> &'static str {
        match self {
            Self::ConferenceNotFound | Self::UnknownEndpoint => "item-not-found",
            Self::ConferenceAlreadyExists | Self::Conflict => "conflict",
            Self::FeatureNotImplemented => "feature-not-implemented",
            Self::GracefulShutdown => "service-unavailable",
            Self::Unspecified => "internal-server-error",
            Self::BadRequest => "bad-request",
        }
    }

    /// The HTTP status: that of the stanza condition (RFC 6120 / XEP-0086 mapping).
    pub const fn http_status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::ConferenceNotFound | Self::UnknownEndpoint => 404,
            Self::ConferenceAlreadyExists | Self::Conflict => 409,
            Self::Unspecified => 500,
            Self::FeatureNotImplemented => 501,
            Self::GracefulShutdown => 503,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused Colibri2 request: the reason and a message for the caller.
///
/// Messages go to the caller verbatim: they must not carry IP addresses, ports or the
/// conference `name` (the constructors here never do).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct ColibriError {
    /// Why.
    pub reason: Reason,
    /// What was wrong, for a human.
    pub message: String,
}

impl ColibriError {
    /// An error with `reason` and `message`.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }

    /// Malformed or invalid input.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Reason::BadRequest, message)
    }

    /// No conference with the request's meeting-id.
    pub fn conference_not_found() -> Self {
        Self::new(Reason::ConferenceNotFound, "conference not found")
    }

    /// `create` for a meeting-id that already has a conference.
    pub fn conference_already_exists() -> Self {
        Self::new(
            Reason::ConferenceAlreadyExists,
            "a conference with this meeting-id already exists",
        )
    }

    /// An update for an unknown endpoint. The id is in the message because Jicofo needs to
    /// know whom to re-invite (JVB attaches the endpoint to the error for the same reason).
    pub fn unknown_endpoint(endpoint_id: &str) -> Self {
        Self::new(
            Reason::UnknownEndpoint,
            format!("unknown endpoint `{endpoint_id}`"),
        )
    }

    /// Creating an endpoint whose id already exists.
    pub fn endpoint_already_exists(endpoint_id: &str) -> Self {
        Self::new(
            Reason::Conflict,
            format!("endpoint `{endpoint_id}` already exists"),
        )
    }

    /// Something relais does not do.
    pub fn feature_not_implemented(message: impl Into<String>) -> Self {
        Self::new(Reason::FeatureNotImplemented, message)
    }

    /// The node is shutting down and takes no new conferences or endpoints.
    pub fn graceful_shutdown() -> Self {
        Self::new(Reason::GracefulShutdown, "the bridge is shutting down")
    }

    /// The HTTP status of [`Self::reason`].
    pub fn http_status(&self) -> u16 {
        self.reason.http_status()
    }

    /// The JSON error body for this error.
    pub fn to_response(&self) -> ErrorResponse {
        ErrorResponse {
            error: ErrorDetail {
                reason: Some(self.reason),
                message: self.message.clone(),
            },
        }
    }
}

/// The JSON body of every error answer: `{"error": {"reason": …, "message": …}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorDetail,
}

/// The `error` object of an [`ErrorResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// The Colibri2 reason; absent when the HTTP layer refused the request (401, 413, 415).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// What was wrong, for a human.
    pub message: String,
}
