//! What an impairment stage does: the configuration, its checks, and its derivation from a
//! scenario's `[network]` section.

use std::time::Duration;

use crate::scenario::NetworkSection;

use super::ImpairError;

/// Longest delay or jitter accepted: anything more is a typo, not a network.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(60);

/// The impairment of one direction. Every part is optional: the default impairs nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ImpairmentConfig {
    /// Independent random loss, percent of packets.
    pub loss_pct: f64,
    /// Bursty loss (Gilbert–Elliott), on top of `loss_pct`.
    pub burst: Option<BurstLoss>,
    /// Fixed one-way delay added to every packet.
    pub delay: Duration,
    /// Spread around `delay`: each packet's delay is within `delay ± jitter` (never below 0).
    pub jitter: Duration,
    /// How jitter is drawn.
    pub jitter_distribution: JitterDistribution,
    /// Percent of packets that skip the in-order release rule: their release time is their
    /// own `delay ± jitter`, so they may overtake earlier packets (and later ones may
    /// overtake them).
    pub reorder_pct: f64,
    /// Percent of packets sent twice.
    pub duplicate_pct: f64,
    /// A bottleneck link: rate and queue.
    pub rate: Option<RateLimit>,
}

/// Gilbert–Elliott bursty loss: a two-state Markov chain advanced once per packet.
///
/// With `bad_loss_pct` 100 and `good_loss_pct` 0, bursts of loss last `100 / bad_to_good_pct`
/// packets on average and start with probability `good_to_bad_pct` per packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurstLoss {
    /// Chance per packet of moving from the good state to the bad one, percent.
    pub good_to_bad_pct: f64,
    /// Chance per packet of moving from the bad state to the good one, percent.
    pub bad_to_good_pct: f64,
    /// Loss in the bad state, percent (100 in the simple Gilbert model).
    pub bad_loss_pct: f64,
    /// Loss in the good state, percent (0 in the simple Gilbert model).
    pub good_loss_pct: f64,
}

impl BurstLoss {
    /// The simple Gilbert model: every packet in the bad state is lost, none in the good one.
    pub fn gilbert(good_to_bad_pct: f64, bad_to_good_pct: f64) -> Self {
        Self {
            good_to_bad_pct,
            bad_to_good_pct,
            bad_loss_pct: 100.0,
            good_loss_pct: 0.0,
        }
    }
}

/// How jitter is drawn within `± jitter`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JitterDistribution {
    /// Every value in the range equally likely.
    #[default]
    Uniform,
    /// Bell-shaped (sum of three uniforms, standard deviation `jitter / 3`), still bounded
    /// to the range.
    Normal,
}

/// A bottleneck: packets are serialised at `bits_per_second` one after another, and dropped
/// at the tail when the queue before the link is full (tc `tbf` without a burst allowance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Link rate.
    pub bits_per_second: u64,
    /// How much may wait for the link.
    pub queue_limit: QueueLimit,
}

/// The size of a [`RateLimit`]'s queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueLimit {
    /// At most this many bytes waiting.
    Bytes(u64),
    /// At most this much waiting time at the link rate (tc `tbf latency`).
    Time(Duration),
}

impl QueueLimit {
    /// The queue limit in bytes at `bits_per_second`.
    pub fn bytes(&self, bits_per_second: u64) -> u64 {
        match *self {
            Self::Bytes(bytes) => bytes,
            Self::Time(time) => {
                let bytes = u128::from(bits_per_second) * time.as_nanos() / 8_000_000_000;
                u64::try_from(bytes).unwrap_or(u64::MAX)
            }
        }
    }
}

/// The queue a rate limit gets when none is given: 50 ms at the link rate, like a typical
/// home router's buffer.
pub const DEFAULT_QUEUE_LIMIT: QueueLimit = QueueLimit::Time(Duration::from_millis(50));

impl ImpairmentConfig {
    /// The lossy variant of a scenario: `lossy_loss_pct` random loss, `lossy_delay_ms` ±
    /// `lossy_jitter_ms` uniform (whether or not `apply` is set: the caller decides).
    ///
    /// The scenario means this per direction; a packet from one participant to another
    /// crosses two such stages, so the delay to subtract from latency is twice `delay`.
    pub fn from_network(network: &NetworkSection) -> Self {
        Self {
            loss_pct: network.lossy_loss_pct,
            delay: Duration::from_millis(u64::from(network.lossy_delay_ms)),
            jitter: Duration::from_millis(u64::from(network.lossy_jitter_ms)),
            ..Self::default()
        }
    }

    /// Whether this impairs nothing (the stage then only passes packets through).
    pub fn is_transparent(&self) -> bool {
        self.loss_pct <= 0.0
            && self.burst.is_none()
            && self.delay.is_zero()
            && self.jitter.is_zero()
            && self.duplicate_pct <= 0.0
            && self.rate.is_none()
    }

    /// Checks every value: percentages in 0..=100, delay and jitter at most 60 s, a rate
    /// above zero.
    pub fn validate(&self) -> Result<(), ImpairError> {
        check_pct("loss", self.loss_pct)?;
        check_pct("reorder", self.reorder_pct)?;
        check_pct("dup", self.duplicate_pct)?;
        if let Some(burst) = &self.burst {
            check_pct("burst", burst.good_to_bad_pct)?;
            check_pct("burst", burst.bad_to_good_pct)?;
            check_pct("burst", burst.bad_loss_pct)?;
            check_pct("burst", burst.good_loss_pct)?;
        }
        for (key, value) in [("delay", self.delay), ("jitter", self.jitter)] {
            if value > MAX_DELAY {
                return Err(ImpairError::TooLong {
                    key,
                    value: value.as_secs_f64(),
                });
            }
        }
        if let Some(rate) = &self.rate {
            if rate.bits_per_second == 0 {
                return Err(ImpairError::ZeroRate);
            }
        }
        Ok(())
    }

    /// A copy that [`Impairment`](super::Impairment) can run without checks: percentages
    /// clamped to 0..=100 (NaN to 0), delay and jitter to 60 s, the rate to at least 1 bit/s.
    pub(crate) fn clamped(&self) -> Self {
        let mut config = *self;
        config.loss_pct = clamp_pct(config.loss_pct);
        config.reorder_pct = clamp_pct(config.reorder_pct);
        config.duplicate_pct = clamp_pct(config.duplicate_pct);
        if let Some(burst) = &mut config.burst {
            burst.good_to_bad_pct = clamp_pct(burst.good_to_bad_pct);
            burst.bad_to_good_pct = clamp_pct(burst.bad_to_good_pct);
            burst.bad_loss_pct = clamp_pct(burst.bad_loss_pct);
            burst.good_loss_pct = clamp_pct(burst.good_loss_pct);
        }
        config.delay = config.delay.min(MAX_DELAY);
        config.jitter = config.jitter.min(MAX_DELAY);
        if let Some(rate) = &mut config.rate {
            rate.bits_per_second = rate.bits_per_second.max(1);
        }
        config
    }
}

pub(crate) fn check_pct(key: &'static str, value: f64) -> Result<(), ImpairError> {
    if (0.0..=100.0).contains(&value) {
        Ok(())
    } else {
        Err(ImpairError::PercentOutOfRange { key, value })
    }
}

fn clamp_pct(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 100.0)
    }
}
