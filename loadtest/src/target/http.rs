//! The one HTTP client exchange the signalling adapters share: one request per connection,
//! through hyper's `client::conn::http1` over a tokio TcpStream. Signalling is not the hot
//! path, and a fresh connection per request keeps failures (and a Janus long poll)
//! independent of each other. What a status or a body means is each adapter's business.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST, LOCATION};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::TargetError;

/// Largest answer body read (signalling answers are a few kB).
const MAX_BODY_BYTES: usize = 256 * 1024;

/// One request.
#[derive(Debug, Clone)]
pub(crate) struct HttpRequest<'a> {
    /// The method.
    pub(crate) method: Method,
    /// The path (with its query).
    pub(crate) path: &'a str,
    /// The `Host` header.
    pub(crate) host: &'a str,
    /// Sent as `Authorization: Bearer …` when set.
    pub(crate) bearer_token: Option<&'a str>,
    /// The body and its content type; `None`: an empty body.
    pub(crate) body: Option<(&'a str, &'a [u8])>,
}

/// What came back, uninterpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpResponse {
    /// The status.
    pub(crate) status: u16,
    /// The `Location` header, when present and text.
    pub(crate) location: Option<String>,
    /// The body (at most [`MAX_BODY_BYTES`]).
    pub(crate) body: Bytes,
}

/// Sends `request` to `address` on a connection of its own and reads the whole answer.
/// Unbounded in time: callers wrap it in their own timeout.
pub(crate) async fn exchange(
    address: SocketAddr,
    request: HttpRequest<'_>,
) -> Result<HttpResponse, TargetError> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection future does the I/O; it ends when the server closes after the answer.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut builder = Request::builder()
        .method(request.method)
        .uri(request.path)
        .header(HOST, request.host)
        .header(CONNECTION, "close");
    if let Some(token) = request.bearer_token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match request.body {
        Some((content_type, bytes)) => {
            builder = builder.header(CONTENT_TYPE, content_type);
            Bytes::copy_from_slice(bytes)
        }
        None => Bytes::new(),
    };
    let response = sender.send_request(builder.body(Full::new(body))?).await?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = http_body_util::Limited::new(response.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|_| TargetError::Protocol("the answer body is too large or broken"))?
        .to_bytes();
    Ok(HttpResponse {
        status,
        location,
        body,
    })
}
