//! relais: a media relay (SFU) for self-hosted video conferencing.
//!
//! The library side of the node binary; for now it holds the node's configuration.

pub mod config;
