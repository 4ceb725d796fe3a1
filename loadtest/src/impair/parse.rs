//! The compact flag syntax for an impairment, as `--impair` takes it:
//! `loss=2%,delay=40ms,jitter=10ms,rate=1mbit,queue=50ms,dup=0.1%,reorder=0.5%,burst=1%/25%`.
//!
//! | key | value | meaning |
//! |---|---|---|
//! | `loss` | percent (`2%` or `2`) | random loss |
//! | `burst` | `p/r[/bad[/good]]`, percents | Gilbert–Elliott: p(good→bad), p(bad→good), loss in the bad state (100 %), in the good state (0 %) |
//! | `delay` | duration (`40ms`, `0.5s`, `800us`) | added one-way delay |
//! | `jitter` | duration | spread around the delay |
//! | `dist` | `uniform` or `normal` | jitter distribution |
//! | `reorder` | percent | packets allowed to overtake |
//! | `dup` (or `duplicate`) | percent | packets sent twice |
//! | `rate` | `bit`, `kbit`, `mbit`, `gbit` (powers of 1000) | link rate |
//! | `queue` | duration, or bytes (`b`, `kb`, `kib`, `mb`, `mib`) | queue before the link; 50 ms by default |
//!
//! Units follow tc: `kbit` is kilobits, and `kbps`-style units are refused because tc reads
//! them as kilo*bytes*.

use std::str::FromStr;
use std::time::Duration;

use super::config::{
    check_pct, BurstLoss, ImpairmentConfig, JitterDistribution, QueueLimit, RateLimit,
    DEFAULT_QUEUE_LIMIT, MAX_DELAY,
};

/// The keys the flag syntax knows, for error messages.
const KEYS: &str = "loss, burst, delay, jitter, dist, reorder, dup, rate, queue";

/// Why an impairment description was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImpairError {
    /// An item without `=`.
    #[error("impairment item {item:?} is not key=value (keys: {KEYS})")]
    NotKeyValue {
        /// The item.
        item: String,
    },
    /// A key the syntax does not know.
    #[error("unknown impairment key {key:?} (keys: {KEYS})")]
    UnknownKey {
        /// The key.
        key: String,
    },
    /// A key given twice.
    #[error("impairment key {key:?} given twice")]
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// Not a percentage.
    #[error("{key}={value:?}: expected a percentage such as 2% or 0.5")]
    BadPercent {
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
    },
    /// A percentage outside 0..=100.
    #[error("{key}: {value}% is outside 0..=100%")]
    PercentOutOfRange {
        /// The key.
        key: &'static str,
        /// The value.
        value: f64,
    },
    /// Not a duration.
    #[error("{key}={value:?}: expected a duration with a unit, such as 40ms, 0.5s or 800us")]
    BadDuration {
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
    },
    /// A delay or jitter over 60 s.
    #[error("{key}: {value} s is more than the 60 s accepted")]
    TooLong {
        /// The key.
        key: &'static str,
        /// The value, seconds.
        value: f64,
    },
    /// Not a rate.
    #[error(
        "rate={value:?}: expected a rate in bit, kbit, mbit or gbit (tc units; kbps-style units \
         are refused because tc reads them as bytes), such as 1mbit"
    )]
    BadRate {
        /// The value given.
        value: String,
    },
    /// A rate of zero.
    #[error("rate must be above 0")]
    ZeroRate,
    /// Not a queue size.
    #[error("queue={value:?}: expected a duration (50ms) or a size in b, kb, kib, mb or mib")]
    BadQueue {
        /// The value given.
        value: String,
    },
    /// A queue without a rate to drain it.
    #[error("queue needs rate: a queue only builds up before a rate limit")]
    QueueWithoutRate,
    /// Not a burst description.
    #[error("burst={value:?}: expected p/r[/bad[/good]] in percent, such as 1%/25%")]
    BadBurst {
        /// The value given.
        value: String,
    },
    /// Not a jitter distribution.
    #[error("dist={value:?}: expected uniform or normal")]
    BadDistribution {
        /// The value given.
        value: String,
    },
}

impl FromStr for ImpairmentConfig {
    type Err = ImpairError;

    /// Parses the flag syntax (see the module documentation); an empty string impairs nothing.
    fn from_str(flags: &str) -> Result<Self, Self::Err> {
        let mut config = Self::default();
        let mut seen: Vec<&str> = Vec::new();
        let mut queue = None;
        for item in flags.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| ImpairError::NotKeyValue { item: item.into() })?;
            let key = canonical_key(key)?;
            if seen.contains(&key) {
                return Err(ImpairError::DuplicateKey { key: key.into() });
            }
            seen.push(key);
            match key {
                "loss" => config.loss_pct = parse_pct("loss", value)?,
                "reorder" => config.reorder_pct = parse_pct("reorder", value)?,
                "dup" => config.duplicate_pct = parse_pct("dup", value)?,
                "burst" => config.burst = Some(parse_burst(value)?),
                "delay" => config.delay = parse_delay("delay", value)?,
                "jitter" => config.jitter = parse_delay("jitter", value)?,
                "dist" => config.jitter_distribution = parse_distribution(value)?,
                "rate" => {
                    config.rate = Some(RateLimit {
                        bits_per_second: parse_rate(value)?,
                        queue_limit: DEFAULT_QUEUE_LIMIT,
                    });
                }
                _ => queue = Some(parse_queue(value)?),
            }
        }
        if let Some(queue_limit) = queue {
            let rate = config.rate.as_mut().ok_or(ImpairError::QueueWithoutRate)?;
            rate.queue_limit = queue_limit;
        }
        config.validate()?;
        Ok(config)
    }
}

impl ImpairmentConfig {
    /// Parses the flag syntax (see the [module documentation](super)); the same as
    /// `str::parse`.
    pub fn parse_flags(flags: &str) -> Result<Self, ImpairError> {
        flags.parse()
    }
}

fn canonical_key(key: &str) -> Result<&'static str, ImpairError> {
    Ok(match key.to_ascii_lowercase().as_str() {
        "loss" => "loss",
        "burst" => "burst",
        "delay" => "delay",
        "jitter" => "jitter",
        "dist" | "distribution" => "dist",
        "reorder" => "reorder",
        "dup" | "duplicate" => "dup",
        "rate" => "rate",
        "queue" => "queue",
        _ => return Err(ImpairError::UnknownKey { key: key.into() }),
    })
}

/// Splits `12.5ms` into `(12.5, "ms")`. Only digits and one dot make the number, so `inf`,
/// `nan`, signs and exponents are refused.
fn split_number(value: &str) -> Option<(f64, &str)> {
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at_checked(end)?;
    if number.is_empty() {
        return None;
    }
    let number: f64 = number.parse().ok()?;
    Some((number, unit.trim()))
}

fn parse_pct(key: &'static str, value: &str) -> Result<f64, ImpairError> {
    let bad = || ImpairError::BadPercent {
        key,
        value: value.into(),
    };
    let (number, unit) = split_number(value).ok_or_else(bad)?;
    if !(unit.is_empty() || unit == "%") {
        return Err(bad());
    }
    check_pct(key, number)?;
    Ok(number)
}

fn parse_burst(value: &str) -> Result<BurstLoss, ImpairError> {
    let bad = || ImpairError::BadBurst {
        value: value.into(),
    };
    let mut parts = value.split('/');
    let mut next = |default: Option<f64>| match (parts.next(), default) {
        (Some(part), _) => parse_pct("burst", part.trim()).map_err(|error| match error {
            ImpairError::BadPercent { .. } => bad(),
            other => other,
        }),
        (None, Some(default)) => Ok(default),
        (None, None) => Err(bad()),
    };
    let burst = BurstLoss {
        good_to_bad_pct: next(None)?,
        bad_to_good_pct: next(None)?,
        bad_loss_pct: next(Some(100.0))?,
        good_loss_pct: next(Some(0.0))?,
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(burst)
}

/// A duration from a number and `us`, `ms` or `s`, rounded to the nanosecond; `None` for
/// anything else.
fn parse_duration(value: &str) -> Option<Duration> {
    let (number, unit) = split_number(value)?;
    let nanos_per_unit = match unit.to_ascii_lowercase().as_str() {
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return None,
    };
    let nanos = (number * nanos_per_unit).round();
    // Bounded (to 1000 times the longest delay) before the cast, so that it is exact.
    (nanos <= MAX_DELAY.as_secs_f64() * 1e12).then(|| Duration::from_nanos(nanos as u64))
}

fn parse_delay(key: &'static str, value: &str) -> Result<Duration, ImpairError> {
    let delay = parse_duration(value).ok_or_else(|| ImpairError::BadDuration {
        key,
        value: value.into(),
    })?;
    if delay > MAX_DELAY {
        return Err(ImpairError::TooLong {
            key,
            value: delay.as_secs_f64(),
        });
    }
    Ok(delay)
}

fn parse_distribution(value: &str) -> Result<JitterDistribution, ImpairError> {
    match value.to_ascii_lowercase().as_str() {
        "uniform" => Ok(JitterDistribution::Uniform),
        "normal" => Ok(JitterDistribution::Normal),
        _ => Err(ImpairError::BadDistribution {
            value: value.into(),
        }),
    }
}

fn parse_rate(value: &str) -> Result<u64, ImpairError> {
    let bad = || ImpairError::BadRate {
        value: value.into(),
    };
    let (number, unit) = split_number(value).ok_or_else(bad)?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        _ => return Err(bad()),
    };
    let bits = (number * scale).round();
    if bits < 1.0 {
        return Err(ImpairError::ZeroRate);
    }
    // 1 Tbit/s is beyond any loopback; refusing more keeps the cast exact.
    if bits > 1e12 {
        return Err(bad());
    }
    Ok(bits as u64)
}

fn parse_queue(value: &str) -> Result<QueueLimit, ImpairError> {
    let bad = || ImpairError::BadQueue {
        value: value.into(),
    };
    if let Some(time) = parse_duration(value) {
        return Ok(QueueLimit::Time(time));
    }
    let (number, unit) = split_number(value).ok_or_else(bad)?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "b" => 1.0,
        "kb" => 1e3,
        "kib" => 1024.0,
        "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let bytes = (number * scale).round();
    // 1 GB of queue is beyond any link this tool models; refusing more keeps the cast exact.
    if bytes > 1e9 {
        return Err(bad());
    }
    Ok(QueueLimit::Bytes(bytes as u64))
}
