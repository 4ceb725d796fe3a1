//! Jitsi Meet compatibility: the Colibri2 allocation API (as jitsi-videobridge serves it over
//! HTTP/JSON) and the bridge channel messages clients exchange with the bridge over
//! colibri-ws.
//!
//! This crate owns the wire formats and their rules (what is accepted, what is refused and
//! with which reason). It holds no conference state and no forwarding logic: the node
//! implements [`http::ColibriBackend`] over its conferences.

pub mod bridge_channel;
pub mod colibri2;
pub mod http;
