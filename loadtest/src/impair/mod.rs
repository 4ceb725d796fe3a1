//! The userspace impairment layer: what netem and tbf would do to a direction of traffic
//! (this kernel has neither), as a sans-IO stage between participants and the node.
//!
//! This module owns the impairment model and its configuration. An [`Impairment`] takes
//! datagrams with [`push`](Impairment::push) and gives them back, lost, delayed, reordered,
//! duplicated or rate-limited, from [`poll`](Impairment::poll) once their release time has
//! come; [`poll_timeout`](Impairment::poll_timeout) tells the driver when to poll next. It owns
//! no clock and no socket, and the same seed and inputs always give the same outputs.
//!
//! Per datagram, in order:
//! 1. random loss (`loss_pct`), then bursty loss ([`BurstLoss`], whose Markov chain advances on
//!    every datagram, lost or not);
//! 2. duplication: the copy takes the rest of the path on its own;
//! 3. the rate limit: the datagram waits for the link, which serialises one datagram after
//!    another at the link rate, and is dropped if the queue before it is full;
//! 4. delay and jitter: released at `departure + delay ± jitter`, but never before the
//!    datagram released before it (jitter alone does not reorder), unless it was picked to
//!    reorder (`reorder_pct`), in which case its own time stands.

mod config;
mod parse;

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use config::{
    BurstLoss, ImpairmentConfig, JitterDistribution, QueueLimit, RateLimit, DEFAULT_QUEUE_LIMIT,
};
pub use parse::ImpairError;

/// What an [`Impairment`] did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImpairmentStats {
    /// Datagrams pushed.
    pub pushed: u64,
    /// Dropped by random loss.
    pub dropped_random: u64,
    /// Dropped by bursty loss.
    pub dropped_burst: u64,
    /// Dropped because the rate limit's queue was full.
    pub dropped_queue: u64,
    /// Datagrams sent twice (each counts once here).
    pub duplicated: u64,
    /// Datagrams (including copies) picked to skip the in-order rule.
    pub reordered: u64,
    /// Datagrams (including copies) handed back by `poll`.
    pub released: u64,
}

/// A datagram waiting for its release time.
#[derive(Debug)]
struct Pending {
    release: Instant,
    /// Push order, so that equal release times leave in the order they came.
    order: u64,
    datagram: Bytes,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest release first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.release, other.order).cmp(&(self.release, self.order))
    }
}

/// The link of a rate limit: when it is free again, and how much may queue for it.
#[derive(Debug, Clone, Copy)]
struct Link {
    bits_per_second: u64,
    queue_limit_bytes: u64,
    busy_until: Option<Instant>,
}

impl Link {
    /// Time to put `bytes` on the wire.
    fn serialisation(&self, bytes: usize) -> Duration {
        let nanos = (bytes as u128 * 8 * 1_000_000_000) / u128::from(self.bits_per_second);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Bytes still waiting for or on the link at `now`.
    fn backlog_bytes(&self, now: Instant) -> u64 {
        let waiting = self
            .busy_until
            .map_or(Duration::ZERO, |busy| busy.saturating_duration_since(now));
        let bytes = waiting.as_nanos() * u128::from(self.bits_per_second) / 8_000_000_000;
        u64::try_from(bytes).unwrap_or(u64::MAX)
    }
}

/// One direction's impairment stage.
///
/// Per datagram: a few random draws and a heap operation (O(log n) in datagrams in flight);
/// no allocation beyond the heap's growth (duplicates share the datagram's buffer).
#[derive(Debug)]
pub struct Impairment {
    config: ImpairmentConfig,
    rng: StdRng,
    /// Gilbert–Elliott state: `true` in the bad state.
    burst_bad: bool,
    link: Option<Link>,
    /// Release time of the latest in-order datagram.
    last_release: Option<Instant>,
    pending: BinaryHeap<Pending>,
    next_order: u64,
    stats: ImpairmentStats,
}

impl Impairment {
    /// A stage applying `config`, with every random choice drawn from `seed`.
    ///
    /// Out-of-range values are clamped (percentages to 0..=100, delay and jitter to 60 s, the
    /// rate to at least 1 bit/s); use [`ImpairmentConfig::validate`] to refuse them instead.
    pub fn new(config: ImpairmentConfig, seed: u64) -> Self {
        let config = config.clamped();
        let link = config.rate.map(|rate| Link {
            bits_per_second: rate.bits_per_second,
            queue_limit_bytes: rate.queue_limit.bytes(rate.bits_per_second),
            busy_until: None,
        });
        Self {
            config,
            rng: StdRng::seed_from_u64(seed),
            burst_bad: false,
            link,
            last_release: None,
            pending: BinaryHeap::new(),
            next_order: 0,
            stats: ImpairmentStats::default(),
        }
    }

    /// The configuration in force (after clamping).
    pub fn config(&self) -> &ImpairmentConfig {
        &self.config
    }

    /// What it did so far.
    pub fn stats(&self) -> ImpairmentStats {
        self.stats
    }

    /// Datagrams waiting for their release time.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Takes a datagram sent at `now`.
    pub fn push(&mut self, now: Instant, datagram: Bytes) {
        self.stats.pushed += 1;
        let random_loss = self.chance(self.config.loss_pct);
        let burst_loss = self.burst_step();
        if random_loss {
            self.stats.dropped_random += 1;
            return;
        }
        if burst_loss {
            self.stats.dropped_burst += 1;
            return;
        }
        if self.chance(self.config.duplicate_pct) {
            self.stats.duplicated += 1;
            self.enqueue(now, datagram.clone());
        }
        self.enqueue(now, datagram);
    }

    /// The next datagram whose release time is at or before `now`.
    pub fn poll(&mut self, now: Instant) -> Option<Bytes> {
        if self.pending.peek()?.release > now {
            return None;
        }
        let pending = self.pending.pop()?;
        self.stats.released += 1;
        Some(pending.datagram)
    }

    /// When the next datagram is due, if any is waiting.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.peek().map(|p| p.release)
    }

    /// Whether an event with probability `pct` percent happens. Draws nothing when `pct` is
    /// 0, so that unused features do not shift the random sequence of the others.
    fn chance(&mut self, pct: f64) -> bool {
        pct > 0.0 && self.rng.random::<f64>() * 100.0 < pct
    }

    /// Decides loss in the current Gilbert–Elliott state, then moves the chain on.
    fn burst_step(&mut self) -> bool {
        let Some(burst) = self.config.burst else {
            return false;
        };
        let (loss_pct, leave_pct) = if self.burst_bad {
            (burst.bad_loss_pct, burst.bad_to_good_pct)
        } else {
            (burst.good_loss_pct, burst.good_to_bad_pct)
        };
        let lost = self.chance(loss_pct);
        if self.chance(leave_pct) {
            self.burst_bad = !self.burst_bad;
        }
        lost
    }

    /// Passes one datagram (or copy) through the rate limit and the delay.
    fn enqueue(&mut self, now: Instant, datagram: Bytes) {
        let departure = match &mut self.link {
            None => now,
            Some(link) => {
                let backlog = link.backlog_bytes(now);
                // An idle link always takes a datagram, however small the queue.
                if backlog > 0
                    && backlog.saturating_add(datagram.len() as u64) > link.queue_limit_bytes
                {
                    self.stats.dropped_queue += 1;
                    return;
                }
                let start = link.busy_until.filter(|busy| *busy > now).unwrap_or(now);
                let done = start
                    .checked_add(link.serialisation(datagram.len()))
                    .unwrap_or(start);
                link.busy_until = Some(done);
                done
            }
        };
        let delay = self.draw_delay();
        let computed = departure.checked_add(delay).unwrap_or(departure);
        let release = if self.chance(self.config.reorder_pct) {
            self.stats.reordered += 1;
            computed
        } else {
            let release = self
                .last_release
                .map_or(computed, |last| last.max(computed));
            self.last_release = Some(release);
            release
        };
        self.pending.push(Pending {
            release,
            order: self.next_order,
            datagram,
        });
        self.next_order += 1;
    }

    /// `delay ± jitter`, never negative.
    fn draw_delay(&mut self) -> Duration {
        let jitter = self.config.jitter.as_secs_f64();
        if jitter <= 0.0 {
            return self.config.delay;
        }
        // A value in -1..1, uniform or bell-shaped.
        let unit = match self.config.jitter_distribution {
            JitterDistribution::Uniform => self.rng.random::<f64>() * 2.0 - 1.0,
            JitterDistribution::Normal => {
                let sum: f64 = (0..3).map(|_| self.rng.random::<f64>() * 2.0 - 1.0).sum();
                sum / 3.0
            }
        };
        let seconds = (self.config.delay.as_secs_f64() + jitter * unit).max(0.0);
        // Bounded by 120 s (delay and jitter are clamped to 60 s each), so this cannot panic.
        Duration::from_secs_f64(seconds)
    }
}
