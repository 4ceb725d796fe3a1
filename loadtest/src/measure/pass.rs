//! The scenario's `[pass]` criteria (and the lossy variant's `[network]` ones) checked against
//! a run's measurements.

use serde::Serialize;

use super::run::RunMeasurements;
use crate::scenario::{NetworkSection, PassSection};

/// The criteria that replace plain loss when the lossy impairment applies: some loss is then
/// expected, and what counts is what NACK/RTX left and repaired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LossyCriteria {
    /// Most loss left after recovery, percent, on any receiver. When absent, `max_loss_pct`
    /// applies to residual loss instead.
    pub max_residual_loss_pct: Option<f64>,
    /// Least share of lost video packets repaired within the recovery deadline, percent.
    pub min_recovered_pct: Option<f64>,
}

impl LossyCriteria {
    /// The `lossy_*` criteria of `network`, whether or not `apply` is set (the caller knows
    /// whether impairment is on: `--impair` flags can turn it on too).
    pub fn from_network(network: &NetworkSection) -> Self {
        Self {
            max_residual_loss_pct: network.lossy_max_residual_loss_pct,
            min_recovered_pct: network.lossy_min_recovered_pct,
        }
    }
}

/// Which side of the limit passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// Passes when the measured value is at most the limit.
    AtMost,
    /// Passes when the measured value is at least the limit.
    AtLeast,
}

/// One criterion, its limit, what was measured and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CriterionResult {
    /// The criterion's key in the scenario file.
    pub name: &'static str,
    /// Which side of the limit passes.
    pub bound: Bound,
    /// The limit from the scenario.
    pub limit: f64,
    /// The measured value, in the criterion's unit; NaN when the run could not measure it
    /// (see [`CriterionResult::is_measured`]).
    pub measured: f64,
    /// Whether it passed (a non-finite measurement never does: a criterion that could not be
    /// measured is not shown to hold).
    pub passed: bool,
}

impl CriterionResult {
    fn new(name: &'static str, bound: Bound, limit: f64, measured: f64) -> Self {
        let passed = match bound {
            Bound::AtMost => measured <= limit,
            Bound::AtLeast => measured >= limit,
        };
        Self {
            name,
            bound,
            limit,
            measured,
            passed,
        }
    }

    /// A criterion the run had nothing to measure with (e.g. latency through a target that
    /// strips abs-capture-time): NaN, never passed.
    fn not_measured(name: &'static str, bound: Bound, limit: f64) -> Self {
        Self {
            name,
            bound,
            limit,
            measured: f64::NAN,
            passed: false,
        }
    }

    /// Whether the run measured this criterion at all (false: "not measured").
    pub fn is_measured(&self) -> bool {
        self.measured.is_finite()
    }
}

/// Checks every criterion of `pass` against `run`; with `lossy`, loss is checked as residual
/// loss and recovered share instead of raw loss.
///
/// Loss is measured per receiver and the worst receiver counts ("measured on every
/// receiver"); latency is the p99 over all first transmissions of all receivers (without a
/// single sample, e.g. through a target that does not forward abs-capture-time, it is not
/// measured: NaN and not passed, never a vacuous pass); the freeze is the longest in any video
/// stream after ramp-up; the recovered share is over all video.
pub fn evaluate(
    pass: &PassSection,
    lossy: Option<&LossyCriteria>,
    run: &RunMeasurements,
) -> Vec<CriterionResult> {
    let mut results = Vec::with_capacity(5);
    match lossy {
        None => results.push(CriterionResult::new(
            "max_loss_pct",
            Bound::AtMost,
            pass.max_loss_pct,
            run.worst_loss_pct(),
        )),
        Some(lossy) => {
            let (name, limit) = match lossy.max_residual_loss_pct {
                Some(limit) => ("lossy_max_residual_loss_pct", limit),
                None => ("max_loss_pct", pass.max_loss_pct),
            };
            results.push(CriterionResult::new(
                name,
                Bound::AtMost,
                limit,
                run.worst_residual_loss_pct(),
            ));
            if let Some(limit) = lossy.min_recovered_pct {
                results.push(CriterionResult::new(
                    "lossy_min_recovered_pct",
                    Bound::AtLeast,
                    limit,
                    run.video.recovered_in_time_pct(),
                ));
            }
        }
    }
    results.push(if run.latency.samples() == 0 {
        CriterionResult::not_measured(
            "max_added_latency_p99_ms",
            Bound::AtMost,
            pass.max_added_latency_p99_ms,
        )
    } else {
        CriterionResult::new(
            "max_added_latency_p99_ms",
            Bound::AtMost,
            pass.max_added_latency_p99_ms,
            run.latency.quantile_us(0.99) as f64 / 1000.0,
        )
    });
    results.push(CriterionResult::new(
        "min_streams_received_pct",
        Bound::AtLeast,
        pass.min_streams_received_pct,
        run.streams_received_pct(),
    ));
    results.push(CriterionResult::new(
        "max_video_freeze_ms",
        Bound::AtMost,
        f64::from(pass.max_video_freeze_ms),
        run.longest_freeze().as_secs_f64() * 1000.0,
    ));
    results
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use std::time::Duration;

    use super::*;

    #[test]
    fn latency_without_samples_is_not_measured_and_not_passed() {
        let pass = PassSection {
            max_loss_pct: 0.1,
            max_added_latency_p99_ms: 10.0,
            min_streams_received_pct: 99.0,
            max_video_freeze_ms: 500,
        };
        let run = RunMeasurements::new(Duration::from_secs(1));
        let results = evaluate(&pass, None, &run);
        let latency = results
            .iter()
            .find(|r| r.name == "max_added_latency_p99_ms")
            .unwrap();
        assert!(!latency.is_measured());
        assert!(latency.measured.is_nan());
        assert!(!latency.passed);
        assert_eq!(latency.limit, 10.0);
        // The others are measured (over nothing).
        assert!(results
            .iter()
            .filter(|r| r.name != "max_added_latency_p99_ms")
            .all(CriterionResult::is_measured));
        // JSON: `null`.
        let json = serde_json::to_value(latency).unwrap();
        assert!(json["measured"].is_null());
    }
}
