//! The demo page: publish a camera over WHIP and watch a stream over WHEP from a browser.
//!
//! Plain HTML and JavaScript compiled into the binary: no build step, nothing fetched from
//! other origins. Served on the public HTTP listener next to the WHIP/WHEP routes, which the
//! page calls on its own origin.
//!
//! - `/` links to `/publish.html` and `/watch.html`.
//! - Both pages take `?stream=NAME&autostart=1` (plus `&token=...`, and `&simulcast=0` on the
//!   publish page) so that a headless browser can drive them by URL alone, and expose
//!   `window.relaisDemo = { pc, state(), stats(), stop() }`.
//! - The pages show connection states and counters, never ICE candidates or addresses.

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const INDEX_HTML: &str = include_str!("index.html");
const PUBLISH_HTML: &str = include_str!("publish.html");
const WATCH_HTML: &str = include_str!("watch.html");
const DEMO_JS: &str = include_str!("demo.js");
const STYLE_CSS: &str = include_str!("style.css");

/// Only same-origin scripts, styles and requests; media from the camera and the peer
/// connection.
const CSP: &str = "default-src 'self'; media-src 'self' blob: mediastream:; object-src 'none'; \
                   base-uri 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
        ],
        body,
    )
        .into_response()
}

/// The demo page's routes: `/`, `/index.html`, `/publish.html`, `/watch.html`, `/demo.js`,
/// `/style.css`.
pub fn router() -> Router {
    let html = "text/html; charset=utf-8";
    Router::new()
        .route("/", get(move || async move { asset(html, INDEX_HTML) }))
        .route(
            "/index.html",
            get(move || async move { asset(html, INDEX_HTML) }),
        )
        .route(
            "/publish.html",
            get(move || async move { asset(html, PUBLISH_HTML) }),
        )
        .route(
            "/watch.html",
            get(move || async move { asset(html, WATCH_HTML) }),
        )
        .route(
            "/demo.js",
            get(|| async { asset("text/javascript; charset=utf-8", DEMO_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
}
