//! One request to Janus's HTTP API per connection (hyper's `client::conn::http1` over a
//! tokio TcpStream, as the Colibri2 adapter does): signalling is not the hot path, and a
//! fresh connection per request keeps a long poll from blocking the requests of the same
//! session.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::target::TargetError;

/// Sends `body` (`None`: a GET) to `path` and returns the JSON answer. Janus reports its own
/// errors inside a 200 answer (`"janus": "error"`); those become [`TargetError::Refused`]
/// with Janus's error code as the status.
pub(super) async fn request(
    address: SocketAddr,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
    what: &'static str,
) -> Result<Value, TargetError> {
    let value = tokio::time::timeout(timeout, exchange(address, path, body))
        .await
        .map_err(|_| TargetError::Timeout(what))??;
    if value.get("janus").and_then(Value::as_str) == Some("error") {
        return Err(refused(&value));
    }
    Ok(value)
}

/// A Janus `error` message (core errors: `error`; plugin errors: `plugindata.data`) as
/// [`TargetError::Refused`].
pub(super) fn refused(value: &Value) -> TargetError {
    let core = value.get("error");
    let plugin = value.get("plugindata").and_then(|p| p.get("data"));
    let code = core
        .and_then(|e| e.get("code"))
        .or_else(|| plugin.and_then(|d| d.get("error_code")))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let message = core
        .and_then(|e| e.get("reason"))
        .or_else(|| plugin.and_then(|d| d.get("error")))
        .and_then(Value::as_str)
        .unwrap_or_default();
    TargetError::Refused {
        status: u16::try_from(code).unwrap_or(u16::MAX),
        reason: if plugin.is_some() {
            "videoroom"
        } else {
            "janus"
        }
        .to_owned(),
        message: message.to_owned(),
    }
}

async fn exchange(
    address: SocketAddr,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, TargetError> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection future does the I/O; it ends when the server closes after the answer.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let builder = Request::builder()
        .uri(path)
        .header(HOST, "janus")
        .header(CONNECTION, "close");
    let request = match body {
        Some(body) => builder
            .method(Method::POST)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))?,
        None => builder.method(Method::GET).body(Full::new(Bytes::new()))?,
    };
    let response = sender.send_request(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        return Err(TargetError::Refused {
            status: status.as_u16(),
            reason: "http".to_owned(),
            message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
        });
    }
    Ok(serde_json::from_slice(&bytes)?)
}
