//! The node's side of a run: its CPU time and memory from `/proc`, and its counters from the
//! Prometheus `/metrics` text, so that cost per packet can be reported next to the traffic.
//!
//! Parsing only: the caller reads the files and the HTTP body, on whatever schedule it likes.

use std::time::Duration;

/// Why `/proc` text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcParseError {
    /// `/proc/<pid>/stat` has no `(comm)` field.
    #[error("/proc stat: no command name in parentheses")]
    MissingComm,
    /// `/proc/<pid>/stat` ends before the named field.
    #[error("/proc stat: missing field {0}")]
    MissingField(&'static str),
    /// A field is not a number.
    #[error("/proc {file}: field {field} is not a number: {value:?}")]
    NotANumber {
        /// `stat` or `status`.
        file: &'static str,
        /// The field's name.
        field: &'static str,
        /// What was there (truncated to 32 characters).
        value: String,
    },
    /// `/proc/<pid>/status` has no `VmRSS:` line (a kernel thread, or a zombie).
    #[error("/proc status: no VmRSS line")]
    MissingRss,
    /// The clock tick rate given was zero.
    #[error("clock ticks per second must be above 0")]
    ZeroTickRate,
}

/// One sample of a process's resource use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessSample {
    /// User plus system CPU time since the process started.
    pub cpu: Duration,
    /// Resident set size.
    pub rss_bytes: u64,
}

impl ProcessSample {
    /// Parses the text of `/proc/<pid>/stat` and `/proc/<pid>/status`; `ticks_per_second` is
    /// `sysconf(_SC_CLK_TCK)` (100 on Linux in practice).
    pub fn parse(stat: &str, status: &str, ticks_per_second: u64) -> Result<Self, ProcParseError> {
        Ok(Self {
            cpu: parse_stat_cpu(stat, ticks_per_second)?,
            rss_bytes: parse_status_rss_bytes(status)?,
        })
    }
}

/// User plus system CPU time from the text of `/proc/<pid>/stat`.
///
/// The command name (field 2) is in parentheses and may itself contain spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn parse_stat_cpu(stat: &str, ticks_per_second: u64) -> Result<Duration, ProcParseError> {
    if ticks_per_second == 0 {
        return Err(ProcParseError::ZeroTickRate);
    }
    let after_comm = stat
        .rfind(')')
        .and_then(|end| stat.get(end + 1..))
        .ok_or(ProcParseError::MissingComm)?;
    // After the command name: state (field 3), ..., utime (14), stime (15).
    let mut fields = after_comm.split_ascii_whitespace().skip(11);
    let utime = stat_field(fields.next(), "utime")?;
    let stime = stat_field(fields.next(), "stime")?;
    let ticks = utime.saturating_add(stime);
    let seconds = ticks / ticks_per_second;
    let nanos = (ticks % ticks_per_second) * 1_000_000_000 / ticks_per_second;
    Ok(Duration::from_secs(seconds) + Duration::from_nanos(nanos))
}

fn stat_field(field: Option<&str>, name: &'static str) -> Result<u64, ProcParseError> {
    let value = field.ok_or(ProcParseError::MissingField(name))?;
    value.parse().map_err(|_| ProcParseError::NotANumber {
        file: "stat",
        field: name,
        value: value.chars().take(32).collect(),
    })
}

/// Resident set size in bytes from the `VmRSS:` line of `/proc/<pid>/status` (which the
/// kernel gives in kB, meaning KiB).
pub fn parse_status_rss_bytes(status: &str) -> Result<u64, ProcParseError> {
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .ok_or(ProcParseError::MissingRss)?;
    let value = line.split_ascii_whitespace().next().unwrap_or_default();
    let kib: u64 = value.parse().map_err(|_| ProcParseError::NotANumber {
        file: "status",
        field: "VmRSS",
        value: value.chars().take(32).collect(),
    })?;
    Ok(kib.saturating_mul(1024))
}

/// CPU time per packet, µs: `cpu_delta` spent over `packets_delta` packets; `None` without
/// packets.
pub fn cpu_per_packet(cpu_delta: Duration, packets_delta: u64) -> Option<f64> {
    (packets_delta > 0).then(|| cpu_delta.as_secs_f64() * 1e6 / packets_delta as f64)
}

/// The sum of every sample of metric `name` in Prometheus text exposition format, whatever
/// its labels; `None` if there is none.
///
/// Comments, other metrics and lines that do not parse are skipped; label values may contain
/// spaces, braces and escaped quotes. A trailing timestamp is ignored.
pub fn prometheus_counter_sum(metrics: &str, name: &str) -> Option<f64> {
    let mut sum = None;
    for line in metrics.lines() {
        if let Some(value) = sample_value(line.trim_start(), name) {
            *sum.get_or_insert(0.0) += value;
        }
    }
    sum
}

/// The value of `line` if it is a sample of metric `name`.
fn sample_value(line: &str, name: &str) -> Option<f64> {
    let rest = line.strip_prefix(name)?;
    let rest = match rest.chars().next()? {
        '{' => skip_labels(rest)?,
        c if c.is_ascii_whitespace() => rest,
        // A longer metric name sharing the prefix.
        _ => return None,
    };
    rest.split_ascii_whitespace().next()?.parse().ok()
}

/// What follows the label set `{...}` at the start of `text`, honouring quoted values.
fn skip_labels(text: &str) -> Option<&str> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (index, c) in text.char_indices() {
        match (in_quotes, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_quotes = false,
            (false, _, '"') => in_quotes = true,
            (false, _, '}') => return text.get(index + 1..),
            _ => {}
        }
    }
    None
}
