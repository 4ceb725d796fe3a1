//! WHIP (RFC 9725) and WHEP signalling, and the SDP offer/answer model the other signalling
//! adapters reuse.
//!
//! - [`sdp`]: parsing offers and writing answers for one BUNDLE transport.
//! - [`http`]: the WHIP/WHEP routes (axum) over a backend the node implements.
//! - [`demo`]: a browser page (publish and watch) for trying a node by hand or from a test.

pub mod demo;
pub mod http;
pub mod sdp;
