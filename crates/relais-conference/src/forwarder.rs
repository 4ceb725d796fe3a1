//! The forwarder: one publisher's streams to many viewers.

use std::time::Instant;

use crate::{
    ConferenceError, EndpointId, ForwarderConfig, ForwarderOutput, ForwarderStats, MediaLine,
};

/// Forwards each stream's publisher media to the stream's viewers (sans-IO).
#[derive(Debug)]
pub struct Forwarder {
    config: ForwarderConfig,
    stats: ForwarderStats,
}

impl Forwarder {
    /// An empty forwarder.
    pub fn new(config: ForwarderConfig) -> Self {
        Self {
            config,
            stats: ForwarderStats::default(),
        }
    }

    /// Makes `endpoint` the publisher of `stream`. An existing publisher of the stream is
    /// replaced (a reconnect): viewers keep their SSRCs and see continuous sequence numbers
    /// and timestamps.
    pub fn add_publisher(
        &mut self,
        now: Instant,
        stream: &str,
        endpoint: EndpointId,
        lines: Vec<MediaLine>,
    ) -> Result<(), ConferenceError> {
        let _ = (now, stream, endpoint, lines, &self.config);
        Ok(())
    }

    /// Adds `endpoint` as a viewer of `stream` (which may have no publisher yet).
    pub fn add_viewer(
        &mut self,
        now: Instant,
        stream: &str,
        endpoint: EndpointId,
        lines: Vec<MediaLine>,
    ) -> Result<(), ConferenceError> {
        let _ = (now, stream, endpoint, lines);
        Ok(())
    }

    /// Removes a publisher or viewer and frees its state.
    pub fn remove_endpoint(&mut self, now: Instant, endpoint: EndpointId) {
        let _ = (now, endpoint);
    }

    /// A decrypted RTP packet from `from`.
    pub fn handle_rtp(&mut self, now: Instant, from: EndpointId, packet: &[u8]) {
        let _ = (now, from, packet);
    }

    /// A decrypted (compound) RTCP packet from `from`.
    pub fn handle_rtcp(&mut self, now: Instant, from: EndpointId, compound: &[u8]) {
        let _ = (now, from, compound);
    }

    /// Drives timers (REMB to publishers, keyframe request retries).
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
    }

    /// When [`Forwarder::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// The next packet to protect and send.
    pub fn poll_output(&mut self) -> Option<ForwarderOutput> {
        None
    }

    /// Returns a sent output buffer to the pool.
    pub fn recycle(&mut self, buffer: Vec<u8>) {
        let _ = buffer;
    }

    /// Counters.
    pub fn stats(&self) -> ForwarderStats {
        self.stats
    }
}
