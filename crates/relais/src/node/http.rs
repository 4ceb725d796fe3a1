//! The HTTP listeners: public (WHIP/WHEP and the demo page) and private (health, version,
//! counters).

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header::AUTHORIZATION, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use relais_whip::http::WhipConfig;

use super::signalling::NodeHandle;
use crate::config::Config;

/// How long the health check waits for the media task.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The public listener's routes.
pub(crate) fn public_router(handle: NodeHandle, config: &Config) -> Router {
    let whip = WhipConfig {
        bearer_token: config
            .http
            .whip_bearer_token
            .as_ref()
            .map(|t| t.expose().to_owned()),
        ..WhipConfig::default()
    };
    relais_whip::http::router(handle, whip).merge(relais_whip::demo::router())
}

#[derive(Clone)]
struct PrivateState {
    handle: NodeHandle,
    token: Option<String>,
}

/// The private listener's routes: `/about/health` (200, empty, while the media task
/// answers; 503 otherwise), `/about/version` (JSON) and `/about/stats` (the media task's
/// counters, JSON). With `http.private_api_token` set every route needs the bearer token.
pub(crate) fn private_router(handle: NodeHandle, config: &Config) -> Router {
    let state = PrivateState {
        handle,
        token: config
            .http
            .private_api_token
            .as_ref()
            .map(|t| t.expose().to_owned()),
    };
    Router::new()
        .route("/about/health", get(health))
        .route("/about/version", get(version))
        .route("/about/stats", get(stats))
        .layer(middleware::from_fn_with_state(state.clone(), authorise))
        .with_state(state)
}

async fn authorise(
    State(state): State<PrivateState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &state.token {
        let presented = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.as_bytes())) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn health(State(state): State<PrivateState>) -> StatusCode {
    if state.handle.media_alive(HEALTH_TIMEOUT).await {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

#[derive(serde::Serialize)]
struct Version {
    name: &'static str,
    version: &'static str,
    os: &'static str,
}

async fn version() -> Json<Version> {
    Json(Version {
        name: "relais",
        version: env!("CARGO_PKG_VERSION"),
        os: std::env::consts::OS,
    })
}

async fn stats(State(state): State<PrivateState>) -> Response {
    match state.handle.media_stats().await {
        Some(stats) => Json(stats).into_response(),
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
