//! One JSON request to the node's private HTTP API per connection (the shared
//! [`crate::target::http`] exchange: allocation is not the hot path, and a fresh connection
//! per request keeps failures independent).

use std::net::SocketAddr;
use std::time::Duration;

use hyper::Method;
use serde_json::Value;

use crate::target::http::{self, HttpRequest};
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
    let json = body.to_string();
    let response = http::exchange(
        address,
        HttpRequest {
            method,
            path,
            host: "relais",
            bearer_token: token,
            body: Some(("application/json", json.as_bytes())),
        },
    )
    .await?;
    let value = if response.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&response.body).unwrap_or(Value::Null)
    };
    if !(200..300).contains(&response.status) {
        let field = |name: &str| {
            value
                .get("error")
                .and_then(|e| e.get(name))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        return Err(TargetError::Refused {
            status: response.status,
            reason: field("reason"),
            message: field("message"),
        });
    }
    Ok(value)
}
