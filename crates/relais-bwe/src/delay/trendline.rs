//! Trendline filter and overuse detector with an adaptive threshold (libwebrtc's
//! `TrendlineEstimator`; draft-ietf-rmcat-gcc-02 §5.3–5.4 with the trendline in place of the
//! Kalman filter).
//!
//! Each inter-group delay variation is accumulated; the accumulated delay is smoothed
//! exponentially and a least-squares line is fitted through the last [`WINDOW_SIZE`] points
//! (arrival time, smoothed delay). The slope, scaled by the number of deltas seen (up to 60)
//! and [`THRESHOLD_GAIN`], is compared with a threshold that follows the signal: it rises
//! slowly (`K_UP`) when the signal exceeds it and falls faster (`K_DOWN`) when below.

use std::collections::VecDeque;
use std::time::Instant;

use super::signed_ms;

/// Points the line is fitted through.
const WINDOW_SIZE: usize = 20;
/// Exponential smoothing of the accumulated delay.
const SMOOTHING_COEF: f64 = 0.9;
/// The slope is multiplied by this before it meets the threshold.
const THRESHOLD_GAIN: f64 = 4.0;
/// Threshold adaptation when the signal is above it (per ms).
const K_UP: f64 = 0.0087;
/// Threshold adaptation when the signal is below it (per ms).
const K_DOWN: f64 = 0.039;
/// The threshold before any adaptation (ms).
const INITIAL_THRESHOLD_MS: f64 = 12.5;
/// The threshold stays within these bounds (ms).
const MIN_THRESHOLD_MS: f64 = 6.0;
const MAX_THRESHOLD_MS: f64 = 600.0;
/// Signals further than this above the threshold are spikes the threshold ignores (ms).
const MAX_ADAPT_OFFSET_MS: f64 = 15.0;
/// Time above the threshold before overuse is declared (ms).
const OVERUSING_TIME_THRESHOLD_MS: f64 = 10.0;
/// The slope is scaled by the number of deltas seen, up to this.
const MIN_NUM_DELTAS: u32 = 60;
/// The count of deltas saturates here.
const DELTA_COUNTER_MAX: u32 = 1000;
/// Longest step of the threshold adaptation (ms).
const MAX_THRESHOLD_STEP_MS: f64 = 100.0;

/// What the delay signal says about the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BandwidthUsage {
    /// Delay is stable: the path carries what is sent.
    #[default]
    Normal,
    /// Delay is falling: queues are draining.
    Underusing,
    /// Delay is rising: a queue is building on the path.
    Overusing,
}

#[derive(Debug, Clone, Copy)]
struct Point {
    arrival_ms: f64,
    smoothed_delay_ms: f64,
}

/// The trendline filter with its overuse detector.
#[derive(Debug)]
pub(crate) struct Trendline {
    num_deltas: u32,
    first_arrival: Option<Instant>,
    accumulated_delay_ms: f64,
    smoothed_delay_ms: f64,
    history: VecDeque<Point>,
    threshold_ms: f64,
    last_threshold_update: Option<Instant>,
    prev_trend: f64,
    modified_trend: f64,
    time_over_using_ms: Option<f64>,
    overuse_counter: u32,
    hypothesis: BandwidthUsage,
}

impl Default for Trendline {
    fn default() -> Self {
        Self {
            num_deltas: 0,
            first_arrival: None,
            accumulated_delay_ms: 0.0,
            smoothed_delay_ms: 0.0,
            history: VecDeque::with_capacity(WINDOW_SIZE + 1),
            threshold_ms: INITIAL_THRESHOLD_MS,
            last_threshold_update: None,
            prev_trend: 0.0,
            modified_trend: 0.0,
            time_over_using_ms: None,
            overuse_counter: 0,
            hypothesis: BandwidthUsage::Normal,
        }
    }
}

impl Trendline {
    /// Feeds the delta between two groups; `arrival` is the arrival of the packet that
    /// completed the newer group.
    pub(crate) fn update(&mut self, arrival_delta_ms: f64, send_delta_ms: f64, arrival: Instant) {
        let delta_ms = arrival_delta_ms - send_delta_ms;
        self.num_deltas = (self.num_deltas + 1).min(DELTA_COUNTER_MAX);
        let first = *self.first_arrival.get_or_insert(arrival);

        self.accumulated_delay_ms += delta_ms;
        self.smoothed_delay_ms = SMOOTHING_COEF * self.smoothed_delay_ms
            + (1.0 - SMOOTHING_COEF) * self.accumulated_delay_ms;

        self.history.push_back(Point {
            arrival_ms: signed_ms(arrival, first),
            smoothed_delay_ms: self.smoothed_delay_ms,
        });
        while self.history.len() > WINDOW_SIZE {
            self.history.pop_front();
        }

        let mut trend = self.prev_trend;
        if self.history.len() == WINDOW_SIZE {
            // The slope estimates (send rate − capacity) / capacity: above 0 a queue fills.
            if let Some(slope) = linear_fit_slope(&self.history) {
                trend = slope;
            }
        }
        self.detect(trend, send_delta_ms, arrival);
    }

    /// The detector's current hypothesis.
    pub(crate) fn state(&self) -> BandwidthUsage {
        self.hypothesis
    }

    /// The adaptive threshold (ms).
    pub(crate) fn threshold_ms(&self) -> f64 {
        self.threshold_ms
    }

    /// The last scaled trend compared with the threshold.
    pub(crate) fn modified_trend(&self) -> f64 {
        self.modified_trend
    }

    fn detect(&mut self, trend: f64, send_delta_ms: f64, now: Instant) {
        if self.num_deltas < 2 {
            self.hypothesis = BandwidthUsage::Normal;
            return;
        }
        let modified_trend =
            f64::from(self.num_deltas.min(MIN_NUM_DELTAS)) * trend * THRESHOLD_GAIN;
        self.modified_trend = modified_trend;
        if modified_trend > self.threshold_ms {
            let over = match self.time_over_using_ms {
                // Assume overuse began half-way since the previous group.
                None => send_delta_ms / 2.0,
                Some(t) => t + send_delta_ms,
            };
            self.time_over_using_ms = Some(over);
            self.overuse_counter = self.overuse_counter.saturating_add(1);
            if over > OVERUSING_TIME_THRESHOLD_MS
                && self.overuse_counter > 1
                && trend >= self.prev_trend
            {
                self.time_over_using_ms = Some(0.0);
                self.overuse_counter = 0;
                self.hypothesis = BandwidthUsage::Overusing;
            }
        } else if modified_trend < -self.threshold_ms {
            self.time_over_using_ms = None;
            self.overuse_counter = 0;
            self.hypothesis = BandwidthUsage::Underusing;
        } else {
            self.time_over_using_ms = None;
            self.overuse_counter = 0;
            self.hypothesis = BandwidthUsage::Normal;
        }
        self.prev_trend = trend;
        self.update_threshold(modified_trend, now);
    }

    fn update_threshold(&mut self, modified_trend: f64, now: Instant) {
        let last = *self.last_threshold_update.get_or_insert(now);
        self.last_threshold_update = Some(now);
        let magnitude = modified_trend.abs();
        if magnitude > self.threshold_ms + MAX_ADAPT_OFFSET_MS {
            // A spike (e.g. a sudden capacity drop): the threshold does not follow it.
            return;
        }
        let k = if magnitude < self.threshold_ms {
            K_DOWN
        } else {
            K_UP
        };
        let step_ms = signed_ms(now, last).clamp(0.0, MAX_THRESHOLD_STEP_MS);
        self.threshold_ms += k * (magnitude - self.threshold_ms) * step_ms;
        self.threshold_ms = self.threshold_ms.clamp(MIN_THRESHOLD_MS, MAX_THRESHOLD_MS);
    }
}

/// Least-squares slope of smoothed delay over arrival time; `None` if all x are equal.
fn linear_fit_slope(points: &VecDeque<Point>) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let (sum_x, sum_y) = points.iter().fold((0.0, 0.0), |(sx, sy), p| {
        (sx + p.arrival_ms, sy + p.smoothed_delay_ms)
    });
    let (x_avg, y_avg) = (sum_x / n, sum_y / n);
    let (mut numerator, mut denominator) = (0.0, 0.0);
    for p in points {
        let dx = p.arrival_ms - x_avg;
        numerator += dx * (p.smoothed_delay_ms - y_avg);
        denominator += dx * dx;
    }
    if denominator == 0.0 {
        None
    } else {
        Some(numerator / denominator)
    }
}
