//! One WHIP/WHEP request per connection, through hyper's `client::conn::http1` over a tokio
//! TcpStream (as the Colibri2 and Janus adapters do): signalling is not the hot path, and a
//! fresh connection per request keeps failures independent.
//!
//! This layer only moves bytes: what a status, a `Location` or a body means is decided by
//! the sans-IO [`super::created_session`].

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST, LOCATION};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::target::TargetError;

/// The content type of WHIP/WHEP offers and answers.
pub(super) const SDP_CONTENT_TYPE: &str = "application/sdp";

/// Largest answer body read (an SDP answer is a few kB; the node caps offers at 64 kB).
const MAX_BODY_BYTES: usize = 256 * 1024;

/// What came back, uninterpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HttpAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The `Location` header, when present and text.
    pub location: Option<String>,
    /// The body as text (lossy UTF-8, at most [`MAX_BODY_BYTES`]).
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
    tokio::time::timeout(timeout, exchange(address, token, method, path, sdp))
        .await
        .map_err(|_| TargetError::Timeout("WHIP/WHEP request"))?
}

async fn exchange(
    address: SocketAddr,
    token: Option<&str>,
    method: Method,
    path: &str,
    sdp: Option<String>,
) -> Result<HttpAnswer, TargetError> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection future does the I/O; it ends when the server closes after the answer.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, "relais")
        .header(CONNECTION, "close");
    if let Some(token) = token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = match sdp {
        Some(sdp) => builder
            .header(CONTENT_TYPE, SDP_CONTENT_TYPE)
            .body(Full::new(Bytes::from(sdp)))?,
        None => builder.body(Full::new(Bytes::new()))?,
    };
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = http_body_util::Limited::new(response.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|_| TargetError::Protocol("the answer body is too large or broken"))?
        .to_bytes();
    Ok(HttpAnswer {
        status,
        location,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}
