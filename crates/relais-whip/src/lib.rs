//! WHIP (RFC 9725) and WHEP signalling, and the SDP offer/answer model the other signalling
//! adapters reuse.
//!
//! - [`sdp`]: parsing offers and writing answers for one BUNDLE transport.
//! - [`http`]: the WHIP/WHEP routes (axum) over a backend the node implements.

pub mod http;
pub mod sdp;
