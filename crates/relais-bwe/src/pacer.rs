//! A receiver's egress pacer: packets leave at a multiple of the estimate (a leaky bucket with
//! a small burst budget) instead of in the bursts they arrive in; audio bypasses the queue.
//!
//! After libwebrtc's `PacingController` and str0m's leaky-bucket pacer:
//!
//! - the pacing rate is `pacing_factor` (2.5) × the estimate, never below
//!   [`MIN_PACING_BPS`]; with [`Pacer::set_rate_bounded`], no faster than a rate the path
//!   was measured to carry (a probe result), when that is above the estimate;
//! - sent bytes add to a *media debt* that drains at the pacing rate; a queued packet may
//!   leave while the debt is within [`BURST_INTERVAL`] (5 ms) worth of the rate, so a few
//!   back-to-back packets can leave together (one GSO send);
//! - audio leaves at once (its bytes still count toward the debt); then retransmissions,
//!   video, and queued padding-class packets, in that order, each FIFO;
//! - nothing is dropped: when the queue would otherwise wait longer than `max_queue_time`, the
//!   rate rises to drain it in time;
//! - with `padding` on and a padding rate set, [`Pacer::poll_padding`] says how many bytes of
//!   padding to send while the queue is empty, to keep the link at the padding rate.
//!
//! The pacer holds items of any type `T` (the packets); time is passed in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The pacing rate never goes below this (also when the estimate is 0).
pub const MIN_PACING_BPS: u64 = 50_000;

/// Burst budget: a queued packet may leave while the media debt is within this much time at
/// the pacing rate.
pub const BURST_INTERVAL: Duration = Duration::from_millis(5);

/// The media debt never exceeds this much time at the pacing rate (an audio burst does not
/// hold video back for longer).
const MAX_DEBT_TIME: Duration = Duration::from_millis(500);

/// Padding packets are at least this large…
const MIN_PADDING_PACKET: usize = 50;
/// …and at most this large.
const MAX_PADDING_PACKET: usize = 1200;

/// Shortest time left to drain the queue in, when it is already at its bound.
const MIN_DRAIN_TIME: Duration = Duration::from_millis(1);

/// Nanoseconds per second: debts are kept in nano-bits (bits × 10⁹), so that draining
/// `elapsed_ns × rate_bps` is exact.
const NANOS: u128 = 1_000_000_000;

/// `t + d`, saturating at `t` instead of panicking on overflow.
fn add(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or(t)
}

/// What kind of packet is queued; decides its priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketClass {
    /// Leaves at once, bypassing the queue.
    Audio,
    /// Paced, after retransmissions.
    Video,
    /// Paced, before video.
    Retransmission,
    /// Paced, after everything else (e.g. probe padding pushed by the SFU).
    Padding,
}

/// How a [`Pacer`] behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PacerConfig {
    /// The pacing rate is this multiple of the estimate (libwebrtc: 2.5).
    pub pacing_factor: f64,
    /// No packet should wait longer than this; the rate rises to make it so (libwebrtc: 2 s).
    /// Zero: no bound.
    pub max_queue_time: Duration,
    /// Whether [`Pacer::poll_padding`] generates padding up to the padding rate.
    pub padding: bool,
}

impl Default for PacerConfig {
    fn default() -> Self {
        Self {
            pacing_factor: 2.5,
            max_queue_time: Duration::from_secs(2),
            padding: false,
        }
    }
}

/// A queued item.
#[derive(Debug)]
struct Entry<T> {
    item: T,
    size: usize,
    enqueued: Instant,
}

/// Paces one receiver's egress; see the [module docs](self).
#[derive(Debug)]
pub struct Pacer<T> {
    config: PacerConfig,
    pacing_bps: u64,
    padding_bps: u64,
    audio: VecDeque<Entry<T>>,
    retransmission: VecDeque<Entry<T>>,
    video: VecDeque<Entry<T>>,
    padding: VecDeque<Entry<T>>,
    queue_bytes: usize,
    /// Nano-bits sent and not yet drained at the (effective) pacing rate.
    media_debt: u128,
    /// Nano-bits sent and not yet drained at the padding rate.
    padding_debt: u128,
    last_update: Option<Instant>,
}

impl<T> Pacer<T> {
    /// A pacer at the minimum rate until [`set_rate`](Self::set_rate) is called. A
    /// non-finite or non-positive `pacing_factor` is taken as 2.5.
    pub fn new(config: PacerConfig) -> Self {
        let mut config = config;
        if !(config.pacing_factor.is_finite() && config.pacing_factor > 0.0) {
            config.pacing_factor = PacerConfig::default().pacing_factor;
        }
        Self {
            config,
            pacing_bps: MIN_PACING_BPS,
            padding_bps: 0,
            audio: VecDeque::new(),
            retransmission: VecDeque::new(),
            video: VecDeque::new(),
            padding: VecDeque::new(),
            queue_bytes: 0,
            media_debt: 0,
            padding_debt: 0,
            last_update: None,
        }
    }

    /// Sets the estimate: the pacing rate becomes `pacing_factor × estimate_bps`, at least
    /// [`MIN_PACING_BPS`].
    pub fn set_rate(&mut self, estimate_bps: u64) {
        let rate = estimate_bps as f64 * self.config.pacing_factor;
        let rate = if rate.is_finite() && rate > 0.0 {
            rate as u64
        } else {
            0
        };
        self.pacing_bps = rate.max(MIN_PACING_BPS);
    }

    /// Sets the estimate and what the path was last measured to carry (`path_bps`, e.g. a
    /// probe result): the pacing rate becomes `pacing_factor × estimate_bps`, but no more
    /// than `path_bps` if that is above the estimate (at least the estimate, at least
    /// [`MIN_PACING_BPS`]). Without `path_bps`, as [`set_rate`](Self::set_rate).
    ///
    /// Pacing faster than the estimate lets bursts (key frames) through without delay when
    /// the path can take them. Faster than the path, it only moves the queue from the pacer
    /// into the network: the last packet of a burst arrives no sooner, the bottleneck may
    /// drop, and the delay-based estimate reads the queue as congestion. A receiver behind
    /// a narrow link, with key frames of several streams at once, gets exactly that.
    pub fn set_rate_bounded(&mut self, estimate_bps: u64, path_bps: Option<u64>) {
        self.set_rate(estimate_bps);
        if let Some(path) = path_bps {
            let bound = path.max(estimate_bps).max(MIN_PACING_BPS);
            self.pacing_bps = self.pacing_bps.min(bound);
        }
    }

    /// Sets the rate [`poll_padding`](Self::poll_padding) fills the link up to (0: none).
    /// Only used with `padding` on.
    pub fn set_padding_rate(&mut self, padding_bps: u64) {
        self.padding_bps = padding_bps;
    }

    /// The pacing rate from the estimate (before any raise to honour `max_queue_time`).
    pub fn pacing_bps(&self) -> u64 {
        self.pacing_bps
    }

    /// The rate packets leave at, at `now`: the pacing rate, raised if the queue would
    /// otherwise not drain within `max_queue_time` of its oldest packet.
    pub fn effective_rate_bps(&self, now: Instant) -> u64 {
        self.effective_rate(now)
    }

    /// Queues `item` of `size` bytes (on the wire) at `now`.
    pub fn push(&mut self, now: Instant, item: T, size: usize, class: PacketClass) {
        if self.last_update.is_none() {
            self.last_update = Some(now);
        }
        let entry = Entry {
            item,
            size,
            enqueued: now,
        };
        self.queue_bytes = self.queue_bytes.saturating_add(size);
        match class {
            PacketClass::Audio => self.audio.push_back(entry),
            PacketClass::Retransmission => self.retransmission.push_back(entry),
            PacketClass::Video => self.video.push_back(entry),
            PacketClass::Padding => self.padding.push_back(entry),
        }
    }

    /// The next item that may leave at `now`: audio at once; others when the media debt is
    /// within the burst budget, retransmissions first. The item counts as sent at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<T> {
        // Advancing changes neither the queue nor the oldest entry: one rate serves both.
        let rate = self.effective_rate(now);
        self.advance_at(now, rate);
        if let Some(entry) = self.audio.pop_front() {
            return Some(self.sent(now, entry));
        }
        if !self.has_paced() {
            return None;
        }
        if self.media_debt > burst(rate) {
            return None;
        }
        let entry = self
            .retransmission
            .pop_front()
            .or_else(|| self.video.pop_front())
            .or_else(|| self.padding.pop_front())?;
        Some(self.sent(now, entry))
    }

    /// Everything due at `now`, up to `max` items, appended to `out` (packets that can leave
    /// back to back, e.g. in one GSO send). Returns how many were appended.
    pub fn poll_burst(&mut self, now: Instant, max: usize, out: &mut Vec<T>) -> usize {
        let mut n = 0;
        while n < max {
            match self.poll(now) {
                Some(item) => {
                    out.push(item);
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    /// Bytes of padding to send at `now` (the SFU builds the packet, e.g. RTX of a recent
    /// packet or a padding-only packet): only with `padding` on, a padding rate set, nothing
    /// queued and both the media and the padding debt within their burst budgets. The bytes
    /// count as sent.
    pub fn poll_padding(&mut self, now: Instant) -> Option<usize> {
        if !self.config.padding || self.padding_bps == 0 || !self.is_empty() {
            return None;
        }
        self.advance(now);
        let rate = self.effective_rate(now);
        if self.media_debt > burst(rate) || self.padding_debt > burst(self.padding_bps) {
            return None;
        }
        let bytes = usize::try_from(burst(self.padding_bps) / NANOS / 8)
            .unwrap_or(MAX_PADDING_PACKET)
            .clamp(MIN_PADDING_PACKET, MAX_PADDING_PACKET);
        self.add_debt(now, bytes);
        Some(bytes)
    }

    /// When [`poll`](Self::poll) (or, with nothing queued, [`poll_padding`](Self::poll_padding))
    /// has something next, never before `now`; `None`: nothing queued and no padding to send.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        if !self.audio.is_empty() {
            return Some(now);
        }
        let rate = self.effective_rate(now);
        let elapsed = self.elapsed(now);
        let media_debt = self
            .media_debt
            .saturating_sub(elapsed.saturating_mul(u128::from(rate)));
        let media_ready = add(now, time_to_drain(media_debt, burst(rate), rate));
        if self.has_paced() {
            return Some(media_ready);
        }
        if self.config.padding && self.padding_bps > 0 {
            let padding_debt = self
                .padding_debt
                .saturating_sub(elapsed.saturating_mul(u128::from(self.padding_bps)));
            let padding_ready = add(
                now,
                time_to_drain(padding_debt, burst(self.padding_bps), self.padding_bps),
            );
            return Some(media_ready.max(padding_ready));
        }
        None
    }

    /// Items queued (all classes, audio included until polled).
    pub fn queue_len(&self) -> usize {
        self.audio.len() + self.retransmission.len() + self.video.len() + self.padding.len()
    }

    /// Bytes queued.
    pub fn queue_bytes(&self) -> usize {
        self.queue_bytes
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue_len() == 0
    }

    /// How long the oldest queued item has waited at `now`; `None`: nothing queued.
    pub fn oldest_age(&self, now: Instant) -> Option<Duration> {
        self.oldest_enqueued()
            .map(|t| now.saturating_duration_since(t))
    }

    fn oldest_enqueued(&self) -> Option<Instant> {
        [
            &self.audio,
            &self.retransmission,
            &self.video,
            &self.padding,
        ]
        .iter()
        .filter_map(|q| q.front().map(|e| e.enqueued))
        .min()
    }

    fn has_paced(&self) -> bool {
        !(self.retransmission.is_empty() && self.video.is_empty() && self.padding.is_empty())
    }

    /// Nanoseconds since the last update, at `now`.
    fn elapsed(&self, now: Instant) -> u128 {
        self.last_update
            .map_or(0, |t| now.saturating_duration_since(t).as_nanos())
    }

    fn effective_rate(&self, now: Instant) -> u64 {
        let max = self.config.max_queue_time;
        if max.is_zero() || self.queue_bytes == 0 {
            return self.pacing_bps;
        }
        let Some(age) = self.oldest_age(now) else {
            return self.pacing_bps;
        };
        let left = max.saturating_sub(age).max(MIN_DRAIN_TIME).as_nanos();
        let bits = (self.queue_bytes as u128).saturating_mul(8 * NANOS);
        // The usual case, checked without a 128-bit division (this runs per packet).
        if bits <= u128::from(self.pacing_bps).saturating_mul(left) {
            return self.pacing_bps;
        }
        let needed = u64::try_from(bits.div_ceil(left.max(1))).unwrap_or(u64::MAX);
        self.pacing_bps.max(needed)
    }

    /// Drains the debts up to `now`.
    fn advance(&mut self, now: Instant) {
        let rate = self.effective_rate(now);
        self.advance_at(now, rate);
    }

    /// [`advance`](Self::advance) with the effective rate at `now` already known.
    fn advance_at(&mut self, now: Instant, rate: u64) {
        let elapsed = self.elapsed(now);
        if elapsed > 0 {
            self.media_debt = self
                .media_debt
                .saturating_sub(elapsed.saturating_mul(u128::from(rate)));
            self.padding_debt = self
                .padding_debt
                .saturating_sub(elapsed.saturating_mul(u128::from(self.padding_bps)));
        }
        self.last_update = Some(self.last_update.map_or(now, |t| t.max(now)));
    }

    fn sent(&mut self, now: Instant, entry: Entry<T>) -> T {
        self.queue_bytes = self.queue_bytes.saturating_sub(entry.size);
        self.add_debt(now, entry.size);
        entry.item
    }

    fn add_debt(&mut self, now: Instant, size: usize) {
        let bits = (size as u128).saturating_mul(8 * NANOS);
        let rate = u128::from(self.effective_rate(now));
        let cap = rate.saturating_mul(MAX_DEBT_TIME.as_nanos());
        self.media_debt = self.media_debt.saturating_add(bits).min(cap.max(bits));
        self.padding_debt = self.padding_debt.saturating_add(bits).min(cap.max(bits));
    }
}

/// The burst budget at `rate_bps`, in nano-bits.
fn burst(rate_bps: u64) -> u128 {
    u128::from(rate_bps).saturating_mul(BURST_INTERVAL.as_nanos())
}

/// How long until `debt` drains to `budget` at `rate_bps` (rounded up to whole nanoseconds).
fn time_to_drain(debt: u128, budget: u128, rate_bps: u64) -> Duration {
    let excess = debt.saturating_sub(budget);
    let nanos = excess.div_ceil(u128::from(rate_bps.max(1)));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}
