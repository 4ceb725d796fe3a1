//! One request to Janus's HTTP API per connection (the shared [`crate::target::http`]
//! exchange): signalling is not the hot path, and a fresh connection per request keeps a
//! long poll from blocking the requests of the same session.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::Method;
use serde_json::Value;

use crate::target::http::{self, HttpRequest};
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
    let json = body.map(Value::to_string);
    let request = HttpRequest {
        method: if body.is_some() {
            Method::POST
        } else {
            Method::GET
        },
        path,
        host: "janus",
        bearer_token: None,
        body: json.as_deref().map(|j| ("application/json", j.as_bytes())),
    };
    let response = http::exchange(address, request).await?;
    if !(200..300).contains(&response.status) {
        return Err(TargetError::Refused {
            status: response.status,
            reason: "http".to_owned(),
            message: String::from_utf8_lossy(&response.body)
                .chars()
                .take(200)
                .collect(),
        });
    }
    Ok(serde_json::from_slice(&response.body)?)
}
