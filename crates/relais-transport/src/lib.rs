//! The WebRTC transport of one relais endpoint: ICE and the DTLS-SRTP handshake.
//!
//! - [`ice`]: sans-IO ICE agent, lite (the node answers) and controlling (the node checks and
//!   nominates), consent freshness, 5-tuple binding and NAT rebinding.
//! - [`dtls_srtp`]: the DTLS 1.2 handshake through the `dtls` crate driven without a socket,
//!   the node certificate and fingerprints, SRTP profile negotiation and key export.

pub mod dtls_srtp;
pub mod ice;
