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
    #[error("service unavailable")]
    Unavailable,
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
