//! Logging: `tracing` to stderr at the configured level.
//!
//! Privacy (DESIGN.md principle 4): no module of the node logs a client address unless
//! `privacy.log_client_addresses` is set, and then only through [`crate::config::redact`];
//! stream names are logged as a short hash ([`stream_tag`]).

use std::hash::{Hash, Hasher};
use std::io::IsTerminal;

use crate::config::LogLevel;

/// Installs the global subscriber at `level` (`RUST_LOG`-style directives are not read: the
/// configuration decides). Does nothing if one is already installed.
pub fn init(level: LogLevel) {
    let filter = tracing_subscriber::EnvFilter::new(level.as_str());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: log files and journald get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// A short, stable tag of a stream (conference) name for logs, so names stay out of them.
pub fn stream_tag(stream: &str) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    stream.hash(&mut hasher);
    format!("{:08x}", hasher.finish() as u32)
}
