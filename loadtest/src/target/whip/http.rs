//! One WHIP/WHEP request per connection (the shared [`crate::target::http`] exchange).
//!
//! This layer only moves bytes: what a status, a `Location` or a body means is decided by
//! the sans-IO [`super::created_session`].

use std::net::SocketAddr;
use std::time::Duration;

use hyper::Method;

use crate::target::http::{exchange, HttpRequest};
use crate::target::TargetError;

/// The content type of WHIP/WHEP offers and answers.
pub(super) const SDP_CONTENT_TYPE: &str = "application/sdp";

/// What came back, uninterpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HttpAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The `Location` header, when present and text.
    pub location: Option<String>,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

/// Sends `method` to `path` with `sdp` as an `application/sdp` body (none for a DELETE),
/// with the bearer token when there is one, bounded by `timeout`.
pub(super) async fn request(
    address: SocketAddr,
    token: Option<&str>,
    method: Method,
    path: &str,
    sdp: Option<String>,
    timeout: Duration,
) -> Result<HttpAnswer, TargetError> {
    let request = HttpRequest {
        method,
        path,
        host: "relais",
        bearer_token: token,
        body: sdp.as_deref().map(|sdp| (SDP_CONTENT_TYPE, sdp.as_bytes())),
    };
    let response = tokio::time::timeout(timeout, exchange(address, request))
        .await
        .map_err(|_| TargetError::Timeout("WHIP/WHEP request"))??;
    Ok(HttpAnswer {
        status: response.status,
        location: response.location,
        body: String::from_utf8_lossy(&response.body).into_owned(),
    })
}
