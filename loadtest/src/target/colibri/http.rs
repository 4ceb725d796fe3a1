//! One JSON request to the node's private HTTP API per connection, through hyper's
//! `client::conn::http1` over a tokio TcpStream (no pool: allocation is not the hot path,
//! and a fresh connection per request keeps failures independent).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::target::TargetError;

/// Sends `body` with `method` to `path` and returns the JSON answer (`Null` for an empty
/// body). Non-2xx statuses become [`TargetError::Refused`] with the Colibri2 reason.
pub(super) async fn request(
    address: SocketAddr,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: &Value,
    timeout: Duration,
) -> Result<Value, TargetError> {
    tokio::time::timeout(timeout, exchange(address, token, method, path, body))
        .await
        .map_err(|_| TargetError::Timeout("Colibri2 request"))?
}

async fn exchange(
    address: SocketAddr,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: &Value,
) -> Result<Value, TargetError> {
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
        .header(CONNECTION, "close")
        .header(CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = builder.body(Full::new(Bytes::from(body.to_string())))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    if !status.is_success() {
        let field = |name: &str| {
            value
                .get("error")
                .and_then(|e| e.get(name))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        return Err(TargetError::Refused {
            status: status.as_u16(),
            reason: field("reason"),
            message: field("message"),
        });
    }
    Ok(value)
}
