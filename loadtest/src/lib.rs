//! `relais-loadtest`: simulated WebRTC participants that load a relay node with the work of a
//! real meeting, and measure what they get back.
//!
//! The crate is layered like the node: protocol and media logic without I/O, a thin async
//! shell around it.
//!
//! - [`scenario`]: the scenario files (`loadtest/scenarios/`, or any file) and their model.
//! - [`media`]: what participants send — Opus with DTX and scripted speaker turns, VP8 or
//!   H264 simulcast frames packetised with the header extensions a browser sends — and how a
//!   receiver reads a decrypted frame start (keyframe, resolution).
//! - [`measure`]: what receivers observe — loss, latency, freezes, layer switches, heights
//!   against the view — and the scenario's pass criteria.
//! - [`impair`]: the userspace impairment layer (loss, delay, jitter, reordering, duplication,
//!   rate cap) between participants and the node.
//! - [`participant`]: one simulated WebRTC endpoint (ICE, DTLS, SRTP, RTCP feedback) and the
//!   I/O driver that serves many of them from few threads.
//! - [`run`]: one run: the meeting on a target, the node observed, the results.
//! - [`report`]: what a run found, as JSON, a terminal table and an HTML report.
//! - [`target`]: adapters that bring participants into a meeting on a target SFU (relais
//!   Colibri2 and bridge channel, WHIP/WHEP, Janus videoroom).

pub mod impair;
pub mod measure;
pub mod media;
pub mod participant;
pub mod report;
pub mod run;
pub mod scenario;
pub mod target;
