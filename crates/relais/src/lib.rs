//! relais: a media relay (SFU) for self-hosted video conferencing.
//!
//! The library side of the node binary: its configuration ([`config`]), logging
//! ([`logging`]) and the node itself ([`node`]: the media task, WHIP/WHEP signalling and the
//! HTTP listeners).

pub mod config;
pub mod logging;
pub mod node;
