//! The HTTP listeners: public (WHIP/WHEP and the demo page) and private (health, readiness,
//! version, counters, Prometheus metrics, JVB-style stats).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{
    header::{AUTHORIZATION, CONTENT_TYPE},
    HeaderMap, StatusCode,
};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use relais_colibri::http::ColibriConfig;
use relais_metrics::Metrics;
use relais_whip::http::WhipConfig;

use tokio::sync::mpsc;

use super::signalling::NodeHandle;
use super::Control;
use crate::config::Config;

/// How long the health check waits for the media task.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The public listener's routes: WHIP/WHEP, the demo page and the bridge channel
/// (colibri-ws, authenticated per endpoint by its ICE pwd).
pub(crate) fn public_router(handle: NodeHandle, config: &Config) -> Router {
    let whip = WhipConfig {
        bearer_token: config
            .http
            .whip_bearer_token
            .as_ref()
            .map(|t| t.expose().to_owned()),
        ..WhipConfig::default()
    };
    relais_whip::http::router(handle.clone(), whip)
        .merge(relais_whip::demo::router())
        .merge(super::bridge::router(handle))
}

#[derive(Clone)]
struct PrivateState {
    handle: NodeHandle,
    token: Option<String>,
    metrics: Arc<Metrics>,
    max_stress: f64,
    control: mpsc::Sender<Control>,
}

/// The private listener's routes: `/about/health` (200, empty, while the media task
/// answers; 503 otherwise), `/about/ready` (200 when healthy, not draining and under
/// `limits.max_stress`; 503 with the reason otherwise), `/about/version` (JSON),
/// `/about/stats` (the media task's counters, JSON), `/metrics` (Prometheus text) and
/// `/colibri/stats` (JVB-style flat JSON), `POST /colibri/shutdown` (start a graceful
/// drain; 200 `draining`) and the Colibri2 allocation API under `/colibri/v2/` (Jitsi
/// Meet's focus allocates conferences and endpoints there). With `http.private_api_token` set every route but
/// the two probes needs the bearer token: liveness and readiness reveal nothing but a status,
/// and orchestrators (systemd, Kubernetes' kubelet) cannot present a secret.
pub(crate) fn private_router(
    handle: NodeHandle,
    config: &Config,
    metrics: Arc<Metrics>,
    control: mpsc::Sender<Control>,
) -> Router {
    let state = PrivateState {
        handle,
        token: config
            .http
            .private_api_token
            .as_ref()
            .map(|t| t.expose().to_owned()),
        metrics,
        max_stress: config.limits.max_stress,
        control,
    };
    let probes = Router::new()
        .route("/about/health", get(health))
        .route("/about/ready", get(ready));
    let authenticated = Router::new()
        .route("/about/version", get(version))
        .route("/about/stats", get(stats))
        .route("/metrics", get(metrics_text))
        .route("/colibri/stats", get(colibri_stats))
        .route("/colibri/shutdown", post(shutdown))
        .layer(middleware::from_fn_with_state(state.clone(), authorise));
    let colibri = relais_colibri::http::router(
        state.handle.clone(),
        ColibriConfig {
            bearer_token: state.token.clone(),
            ..ColibriConfig::default()
        },
    );
    probes.merge(authenticated).with_state(state).merge(colibri)
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

/// `POST /colibri/shutdown`: starts a graceful drain (idempotent), like the first SIGTERM.
async fn shutdown(State(state): State<PrivateState>) -> Response {
    match state.control.try_send(Control::Drain) {
        // A full queue already holds a drain request.
        Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::info!("graceful shutdown requested on the private listener");
            (StatusCode::OK, "draining\n").into_response()
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response()
        }
    }
}

/// Liveness: 200 with an empty body while the media task answers (also while draining);
/// 500 with the reason otherwise.
async fn health(State(state): State<PrivateState>) -> Response {
    if state.handle.media_alive(HEALTH_TIMEOUT).await {
        StatusCode::OK.into_response()
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "unhealthy: media task not answering",
        )
            .into_response()
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

/// Readiness: 503 with a short reason unless the media task answers, the node is not
/// draining and stress is below `limits.max_stress`.
async fn ready(State(state): State<PrivateState>) -> Response {
    let Some(snapshot) = state.handle.media_snapshot(HEALTH_TIMEOUT).await else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "unhealthy: media task not answering\n",
        )
            .into_response();
    };
    if snapshot.metrics.draining {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response();
    }
    let stress = snapshot.rates.stress;
    if stress >= state.max_stress {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "overloaded: stress {stress:.3} >= {:.3}\n",
                state.max_stress
            ),
        )
            .into_response();
    }
    (StatusCode::OK, "ready\n").into_response()
}

/// Prometheus scrape: a snapshot from the media task applied to the registry (gauges set,
/// counters advanced by their deltas); `relais_healthy` 0 if the media task does not answer.
async fn metrics_text(State(state): State<PrivateState>) -> Response {
    match state.handle.media_snapshot(HEALTH_TIMEOUT).await {
        Some(snapshot) => state.metrics.observe(&snapshot.metrics),
        None => state.metrics.set_unhealthy(),
    }
    match state.metrics.encode() {
        Ok(text) => ([(CONTENT_TYPE, relais_metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::warn!("metrics encoding failed: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `/colibri/stats`: the JVB keys that apply to relais (flat JSON). Counts are current;
/// rates and stress are those of the media task's last 5 s sample.
#[derive(serde::Serialize)]
struct ColibriStats {
    conferences: u64,
    endpoints: u64,
    participants: u64,
    local_endpoints: u64,
    largest_conference: u64,
    endpoints_sending_audio: u64,
    endpoints_sending_video: u64,
    bit_rate_download: f64,
    bit_rate_upload: f64,
    packet_rate_download: f64,
    packet_rate_upload: f64,
    stress_level: f64,
    graceful_shutdown: bool,
    total_ice_succeeded: u64,
    total_ice_failed: u64,
    dtls_failed_endpoints: u64,
    /// UTC, RFC 3339 with milliseconds (e.g. `2026-11-25T13:40:24.123Z`).
    current_timestamp: String,
}

async fn colibri_stats(State(state): State<PrivateState>) -> Response {
    let Some(snapshot) = state.handle.media_snapshot(HEALTH_TIMEOUT).await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let m = &snapshot.metrics;
    let r = &snapshot.rates;
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    Json(ColibriStats {
        conferences: m.conference_sizes.len() as u64,
        endpoints: m.endpoints,
        participants: m.endpoints,
        local_endpoints: m.endpoints,
        largest_conference: m.conference_sizes.iter().copied().max().unwrap_or(0),
        endpoints_sending_audio: m.endpoints_sending_audio,
        endpoints_sending_video: m.endpoints_sending_video,
        bit_rate_download: round(r.bit_rate_download_kbps),
        bit_rate_upload: round(r.bit_rate_upload_kbps),
        packet_rate_download: round(r.packet_rate_download),
        packet_rate_upload: round(r.packet_rate_upload),
        stress_level: r.stress,
        graceful_shutdown: m.draining,
        total_ice_succeeded: m.ice_succeeded,
        total_ice_failed: m.ice_failed,
        dtls_failed_endpoints: m.dtls_failed,
        current_timestamp: rfc3339_now(),
    })
    .into_response()
}

/// The current UTC time as RFC 3339 with milliseconds.
fn rfc3339_now() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(since.as_secs(), since.subsec_millis())
}

/// `secs` since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (civil-from-days, H. Hinnant).
fn rfc3339(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(1_795_613_424, 123), "2026-11-25T13:30:24.123Z");
    }
}
