//! SRTP and SRTCP contexts keyed from DTLS-SRTP keying material.
//!
//! Two protection profiles behind one API (`protect_rtp(buf, len) -> len`,
//! `unprotect_rtp(buf) -> len`, ...), both working on the caller's buffer:
//!
//! * `SRTP_AEAD_AES_128_GCM` (RFC 7714): relais's own code, in place over `ring::aead`,
//!   allocation-free per packet (after an SSRC's first packet) — the path browsers use;
//! * `SRTP_AES128_CM_HMAC_SHA1_80` (RFC 3711): delegated to `webrtc-srtp` 0.17
//!   (`webrtc_srtp::context::Context`, the project's mandatory stack for this profile), whose
//!   output is copied back into the caller's buffer. It **allocates per packet**: the
//!   accepted, documented exception, only for clients that offer no GCM.
//!
//! Everything around the crypto is relais's for both profiles: RTP/RTCP header parsing and
//! length checks, the rollover counter, the replay window, the SSRC cap, index exhaustion.
//! Those checks also guard webrtc-srtp 0.17.2 against the network input it mishandles
//! (details and source locations in the `cm` module):
//!
//! 1. its RTP header parser panics on extension elements running past the end of the
//!    packet (and misplaces the payload when elements and block length disagree): relais
//!    parses the header itself and calls the crate's `*_with_header` entry points, so the
//!    crate never parses a packet;
//! 2. it returns SRTCP with the E flag clear without checking the tag: refused first
//!    ([`SrtpError::UnencryptedSrtcp`]);
//! 3. it creates per-SSRC state before authenticating: relais gives each SSRC its own
//!    crate context inside its capped maps, refuses unknown SSRCs over the cap without
//!    calling the crate, and bounds what forged first packets can leave behind;
//! 4. its rollover counter is private and estimated from the last packet rather than the
//!    highest: relais keeps its own ROC and replay window for both profiles and keeps the
//!    crate's estimate aligned with its own, so both profiles accept the same packets;
//! 5. SRTCP shorter than 14 bytes panics it: refused below 8 + 4 + 10 bytes
//!    ([`SrtpError::TooShort`]); its SRTCP index wraps silently: refused before
//!    ([`SrtpError::IndexExhausted`]).
//!
//! Interop is tested both ways against libsrtp2 (`tests/libsrtp_interop.rs`, the
//! independent check for both profiles) and webrtc-srtp used directly
//! (`tests/webrtc_srtp_interop.rs`).
//!
//! Keying: [`SrtpKeys::from_dtls_keying_material`] splits the DTLS exporter output by role
//! into a `local` key (for [`SrtpSender`]) and a `remote` key (for [`SrtpReceiver`]).
//! Session keys are derived with the RFC 3711 §4.3 AES-CM PRF (`key_derivation_rate` 0).
//!
//! Per SSRC the contexts track the rollover counter (RFC 3711 §3.3.1), a 128-packet replay
//! window on receive (on by default, [`SrtpConfig::replay`]) and the SRTCP index; the number
//! of SSRCs per context is capped ([`SrtpConfig::max_ssrcs`]). Every refusal is a distinct
//! [`SrtpError`] variant, nothing here panics on network input.
//!
//! Modules: `profile` (profile parameters), `keys` (master keys, DTLS split), `kdf` (AES-CM
//! and key derivation), `header` (minimal RTP/RTCP parsing), `gcm` (the in-place GCM
//! transform), `cm` (the AES-CM profile through webrtc-srtp, and its guards), `transform`
//! (profile dispatch), `rollover` (index estimation), `replay` (the sliding window),
//! `ssrc_map` (the per-SSRC maps), `context` (sender and receiver), `error`.
//!
//! See [`SrtpSender`] for an example.

mod cm;
mod context;
mod error;
mod gcm;
mod header;
mod kdf;
mod keys;
mod profile;
mod replay;
mod rollover;
mod ssrc_map;
mod transform;

pub use context::{ReplayProtection, SrtpConfig, SrtpReceiver, SrtpSender, DEFAULT_MAX_SSRCS};
pub use error::{HeaderError, SrtpError};
pub use keys::{DtlsRole, SrtpKey, SrtpKeys};
pub use profile::SrtpProfile;
pub use replay::MAX_REPLAY_WINDOW;
