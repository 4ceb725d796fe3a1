//! The machine's floor (`--floor`): the same packet rate through a bare `sendmmsg` +
//! AES-GCM forwarder, measured in the same run with `../shared/tools/udp-ceiling`, so the
//! node's CPU per forwarded packet can be given as a ratio to what the hardware needs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::report::FloorTotals;

/// Where the floor tool is built (outside the read-only source folder, as its README says).
const BUILD_DIR: &str = "/var/tmp/udp-ceiling";

/// Why the floor could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum FloorError {
    /// Building or running the tool failed.
    #[error("{0}")]
    Tool(String),
    /// Its output had no `us/sent=` figure.
    #[error("udp-ceiling printed no us/sent figure: {0}")]
    Output(String),
}

/// The floor tool's source folder in this checkout (`../shared/tools/udp-ceiling` from
/// the workspace root).
pub fn default_tool_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/udp-ceiling")
}

/// Builds the tool if needed, then forwards `sent_pps` packets per second of `size` bytes
/// to `fanout` receivers each for `duration_s`, sealed with ring's AES-128-GCM, and reads
/// its CPU µs per sent packet.
pub fn measure(
    tool_dir: &Path,
    size: u32,
    fanout: u32,
    sent_pps: u64,
    duration_s: u32,
) -> Result<(String, f64), FloorError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = tool_dir.join("Cargo.toml");
    let status = Command::new(&cargo)
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", BUILD_DIR)
        .status()
        .map_err(|e| FloorError::Tool(format!("cargo build of udp-ceiling: {e}")))?;
    if !status.success() {
        return Err(FloorError::Tool(format!(
            "cargo build of udp-ceiling failed ({status})"
        )));
    }
    let binary = Path::new(BUILD_DIR).join("release/udp-ceiling");
    let args = [
        "trial".to_owned(),
        "--mode".to_owned(),
        "mmsg".to_owned(),
        "--crypto".to_owned(),
        "ring-gcm".to_owned(),
        "--size".to_owned(),
        size.clamp(64, 1400).to_string(),
        "--fanout".to_owned(),
        fanout.clamp(1, 64).to_string(),
        "--duration".to_owned(),
        duration_s.clamp(1, 30).to_string(),
        "--sent-pps".to_owned(),
        sent_pps.max(1000).to_string(),
    ];
    let command = format!("{} {}", binary.display(), args.join(" "));
    let output = Command::new(&binary)
        .args(&args)
        .output()
        .map_err(|e| FloorError::Tool(format!("running udp-ceiling: {e}")))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let us = parse_us_per_sent(&text).ok_or_else(|| FloorError::Output(text.clone()))?;
    Ok((command, us))
}

/// The `us/sent=` figure of a `udp-ceiling trial` line.
pub fn parse_us_per_sent(output: &str) -> Option<f64> {
    output
        .split_whitespace()
        .find_map(|field| field.strip_prefix("us/sent="))
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
}

/// The floor figures for a node that spent `node_us` per forwarded packet.
pub fn totals(command: String, floor_us: f64, node_us: f64) -> FloorTotals {
    FloorTotals {
        command,
        us_per_sent_packet: floor_us,
        ratio: if floor_us > 0.0 {
            node_us / floor_us
        } else {
            0.0
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_trial_line() {
        let line = "bg=0.02 target=200000 gen_pps=8000 fwd_recv_pps=8000 fwd_sent_pps=200000 loss=0.00000 fwd_cpu_frac=0.810 us/sent=4.050 cpu1_busy=0.9";
        assert_eq!(parse_us_per_sent(line), Some(4.05));
        assert_eq!(parse_us_per_sent("us/sent=NaN"), None);
        assert_eq!(parse_us_per_sent("nothing"), None);
    }
}
