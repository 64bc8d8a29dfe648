//! Adaptive search over one continuous parameter (an error bound, a number of bits, a rate):
//! the value with the largest objective (the compression ratio) that still meets the limits,
//! found by bracketing and bisection in O(log(range / tolerance)) evaluations instead of a
//! dense grid.
//!
//! Assumptions, checked on every evaluated point:
//! 1. the objective is monotone in the parameter (either way: a larger error bound raises the
//!    ratio, more bits lower it);
//! 2. the limits switch between pass and fail at most once over the interval, passing on the
//!    side of the lower objective (compressing harder costs quality).
//!
//! When the evaluated points contradict either, the search stops with
//! [`Outcome::NotMonotone`] naming the points, and the caller falls back to its grid. The
//! search evaluates both ends and the middle before bisecting, so that a pass/fail pattern
//! with two switches across the middle (fail, pass, fail) is seen; narrower ones can slip
//! through, as with any search that does not evaluate every point.

use std::cmp::Ordering;

use serde_json::{Value, json};

use super::evaluate::RowEvaluation;
use crate::metrics::values::metric_json;
use crate::metrics::values::short;
use crate::runner::results::{PointResult, Status};
use crate::scenario::interval::{Interval, Scale};
use crate::scenario::limits::{Limit, Objective};

impl Interval {
    /// The value between `a < b` where bisection evaluates next; `None` when the bracket is
    /// within the tolerance (or no representable value lies strictly between).
    fn midpoint(&self, a: f64, b: f64) -> Option<f64> {
        let narrow = match (self.integer, self.scale) {
            (true, _) => b - a <= 1.0,
            (false, Scale::Linear) => b - a <= self.tolerance,
            (false, Scale::Log) => b / a <= 1.0 + self.tolerance,
        };
        if narrow {
            return None;
        }
        let m = match self.scale {
            Scale::Linear => a + (b - a) / 2.0,
            // Through logarithms: a * b can overflow.
            Scale::Log => ((a.ln() + b.ln()) / 2.0).exp(),
        };
        // Integers: b - a >= 2 here, so a whole value lies strictly between.
        let m = if self.integer {
            m.round().clamp(a + 1.0, b - 1.0)
        } else {
            m
        };
        (a < m && m < b).then_some(m)
    }
}

/// What one evaluation of the parameter found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Whether the point meets every limit.
    pub passes: bool,
    /// The value to maximise, larger is better (the compression ratio; see
    /// [`Evaluation::of`] for other objectives).
    pub objective: f64,
}

impl Evaluation {
    /// The evaluation of a measured row: whether it meets `limits`, and its `objective`
    /// value, negated when the objective is minimised (so larger is always better). A failed
    /// point or a row without an objective value is an error.
    pub fn of(
        row: &PointResult,
        limits: &[Limit],
        objective: &Objective,
    ) -> Result<Evaluation, String> {
        if row.status == Status::Error {
            let error = row.error.as_deref().unwrap_or("no error recorded");
            return Err(format!("point {} failed: {error}", row.point_id));
        }
        let e = RowEvaluation::of(row, limits, objective);
        let value = e.objective.clone().map_err(|unusable| {
            format!(
                "point {}: objective {} is {unusable}",
                row.point_id, objective.column
            )
        })?;
        Ok(Evaluation {
            passes: e.passes(),
            objective: if objective.maximize { value } else { -value },
        })
    }
}

/// One evaluated parameter value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probe {
    /// The parameter value.
    pub value: f64,
    /// What it gave.
    pub evaluation: Evaluation,
}

/// How a search ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The passing value with the largest objective, to the interval's resolution.
    Found {
        /// The parameter value; it was evaluated and passes.
        value: f64,
        /// Its objective.
        objective: f64,
        /// The nearest evaluated value beyond it that fails; `None` when every evaluated value
        /// passes (then `value` is the end of the interval with the larger objective).
        failing: Option<f64>,
    },
    /// No evaluated value passes: under the assumptions, no value in the interval does.
    NonePasses,
    /// The evaluated points contradict the assumptions; fall back to the grid.
    NotMonotone {
        /// Which points show it, e.g. `objective 4 at 1, 6 at 2, 5 at 3`.
        evidence: String,
    },
    /// An evaluation returned an error; fall back to the grid (where that point's row records
    /// the error).
    Failed {
        /// The parameter value.
        value: f64,
        /// The error.
        error: String,
    },
}

/// The result of a [`search`]: every evaluation, in order, and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// The evaluated values in evaluation order (a failed evaluation is not among them).
    pub probes: Vec<Probe>,
    /// How the search ended.
    pub outcome: Outcome,
}

impl Search {
    /// How many times the closure was called (including a failed call).
    pub fn evaluations(&self) -> usize {
        self.probes.len() + usize::from(matches!(self.outcome, Outcome::Failed { .. }))
    }

    /// Whether the caller should evaluate its grid instead.
    pub fn falls_back(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::NotMonotone { .. } | Outcome::Failed { .. }
        )
    }

    /// One sentence: the value found, or why the search gave up, and the evaluation count.
    pub fn summary(&self) -> String {
        let n = self.evaluations();
        match &self.outcome {
            Outcome::Found {
                value,
                objective,
                failing: Some(failing),
            } => format!(
                "{} passes with objective {} and {} fails ({n} evaluations)",
                short(*value),
                short(*objective),
                short(*failing)
            ),
            Outcome::Found {
                value, objective, ..
            } => format!(
                "every evaluated value passes; {} has the largest objective, {} ({n} evaluations)",
                short(*value),
                short(*objective)
            ),
            Outcome::NonePasses => format!("no evaluated value passes ({n} evaluations)"),
            Outcome::NotMonotone { evidence } => {
                format!("not monotone: {evidence}; falling back to the grid ({n} evaluations)")
            }
            Outcome::Failed { value, error } => format!(
                "the evaluation at {} failed: {error}; falling back to the grid ({n} evaluations)",
                short(*value)
            ),
        }
    }

    /// The search as JSON: `outcome` (`found`, `none_passes`, `not_monotone`, `failed`), its
    /// fields (`value`, `objective`, `failing`, `evidence`, `error`), `evaluations`, and
    /// `probes`: `[{"value": .., "passes": .., "objective": ..}, ..]` in evaluation order.
    pub fn to_json(&self) -> Value {
        let mut value = match &self.outcome {
            Outcome::Found {
                value,
                objective,
                failing,
            } => json!({
                "outcome": "found",
                "value": metric_json(*value),
                "objective": metric_json(*objective),
                "failing": failing.map_or(Value::Null, metric_json),
            }),
            Outcome::NonePasses => json!({"outcome": "none_passes"}),
            Outcome::NotMonotone { evidence } => {
                json!({"outcome": "not_monotone", "evidence": evidence})
            }
            Outcome::Failed { value, error } => {
                json!({"outcome": "failed", "value": metric_json(*value), "error": error})
            }
        };
        value["evaluations"] = json!(self.evaluations());
        value["probes"] = self
            .probes
            .iter()
            .map(|p| {
                json!({
                    "value": metric_json(p.value),
                    "passes": p.evaluation.passes,
                    "objective": metric_json(p.evaluation.objective),
                })
            })
            .collect();
        value
    }
}

/// Searches `interval` for the passing value with the largest objective, calling `evaluate`
/// once per value (deterministically: the same answers give the same calls).
///
/// Evaluates `lo`, `hi` and the midpoint, then bisects the bracket where pass turns to fail
/// until it is within the interval's resolution: at most `2 + ceil(log2(n))` evaluations,
/// where `n` is `(hi - lo) / tolerance` on a linear scale, `ln(hi / lo) / ln(1 + tolerance)`
/// on a log scale and `hi - lo` for integers on a linear scale (on a log scale, rounding the
/// geometric midpoints to integers can add a few). See the module documentation for the
/// assumptions and how their failure is reported. An invalid interval is an error.
pub fn search(
    interval: &Interval,
    mut evaluate: impl FnMut(f64) -> Result<Evaluation, String>,
) -> Result<Search, String> {
    interval.check()?;
    let mut probes = Vec::new();
    let outcome = match run(interval, &mut evaluate, &mut probes) {
        Ok(outcome) | Err(outcome) => outcome,
    };
    Ok(Search { probes, outcome })
}

/// The search proper, recording the probes in evaluation order; `Err` ends it early (an
/// evaluation failed or contradicted the assumptions).
fn run(
    interval: &Interval,
    evaluate: &mut impl FnMut(f64) -> Result<Evaluation, String>,
    probes: &mut Vec<Probe>,
) -> Result<Outcome, Outcome> {
    // The same probes sorted by value, where the assumptions are checked.
    let mut sorted: Vec<Probe> = Vec::new();
    let (lo, hi) = (interval.lo, interval.hi);
    for value in [Some(lo), Some(hi), interval.midpoint(lo, hi)]
        .into_iter()
        .flatten()
    {
        probe(value, evaluate, probes, &mut sorted)?;
    }
    loop {
        // At most one switch (checked), from pass at the lower objective to fail.
        let switch = sorted
            .windows(2)
            .find(|w| w[0].evaluation.passes != w[1].evaluation.passes);
        let Some(&[a, b]) = switch else {
            let best = sorted
                .iter()
                .filter(|p| p.evaluation.passes)
                .max_by(|a, b| a.evaluation.objective.total_cmp(&b.evaluation.objective));
            return Ok(match best {
                Some(p) => Outcome::Found {
                    value: p.value,
                    objective: p.evaluation.objective,
                    failing: None,
                },
                None => Outcome::NonePasses,
            });
        };
        let Some(m) = interval.midpoint(a.value, b.value) else {
            let (pass, fail) = if a.evaluation.passes { (a, b) } else { (b, a) };
            return Ok(Outcome::Found {
                value: pass.value,
                objective: pass.evaluation.objective,
                failing: Some(fail.value),
            });
        };
        probe(m, evaluate, probes, &mut sorted)?;
    }
}

/// Evaluates `value`, records it, and checks the assumptions on everything evaluated so far.
fn probe(
    value: f64,
    evaluate: &mut impl FnMut(f64) -> Result<Evaluation, String>,
    probes: &mut Vec<Probe>,
    sorted: &mut Vec<Probe>,
) -> Result<(), Outcome> {
    let evaluation = evaluate(value).map_err(|error| Outcome::Failed { value, error })?;
    let probe = Probe { value, evaluation };
    probes.push(probe);
    sorted.insert(sorted.partition_point(|p| p.value < value), probe);
    match contradiction(sorted) {
        Some(evidence) => Err(Outcome::NotMonotone { evidence }),
        None => Ok(()),
    }
}

/// What in `probes` (sorted by value) contradicts the assumptions, or `None`.
fn contradiction(probes: &[Probe]) -> Option<String> {
    let at = |p: &Probe| format!("{} at {}", short(p.evaluation.objective), short(p.value));
    if let Some(p) = probes.iter().find(|p| p.evaluation.objective.is_nan()) {
        return Some(format!("the objective is nan at {}", short(p.value)));
    }
    // The objective must not both rise and fall: find the first turn (no NaN here, and
    // comparisons rather than differences keep infinite ratios in order).
    let mut trend = Ordering::Equal;
    for w in probes.windows(2) {
        let step = w[1]
            .evaluation
            .objective
            .total_cmp(&w[0].evaluation.objective);
        if step == Ordering::Equal {
            continue;
        }
        if trend == step.reverse() {
            let before = probes
                .iter()
                .rev()
                .skip_while(|p| p.value >= w[0].value)
                .find(|p| p.evaluation.objective != w[0].evaluation.objective);
            let before = before.map_or(String::new(), |p| format!("{}, ", at(p)));
            return Some(format!(
                "the objective turns: {before}{}, {}",
                at(&w[0]),
                at(&w[1])
            ));
        }
        trend = step;
    }
    let verdict = |p: &Probe| {
        let word = if p.evaluation.passes {
            "passes"
        } else {
            "fails"
        };
        format!("{word} at {}", short(p.value))
    };
    let switches: Vec<usize> = (1..probes.len())
        .filter(|&i| probes[i].evaluation.passes != probes[i - 1].evaluation.passes)
        .collect();
    if let [first, second, ..] = switches[..] {
        return Some(format!(
            "pass and fail alternate: {}, {}, {}",
            verdict(&probes[first - 1]),
            verdict(&probes[first]),
            verdict(&probes[second])
        ));
    }
    if let [i] = switches[..] {
        let (a, b) = (&probes[i - 1], &probes[i]);
        let (pass, fail) = if a.evaluation.passes { (a, b) } else { (b, a) };
        if pass.evaluation.objective > fail.evaluation.objective {
            return Some(format!(
                "the limits fail at a lower objective than they pass: {} with objective {}, {} with objective {}",
                verdict(fail),
                short(fail.evaluation.objective),
                verdict(pass),
                short(pass.evaluation.objective)
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::interval::tests::float;
    use crate::select::evaluate::tests::{failed_row, min, row};

    /// A codec whose ratio grows with the error bound and which meets the limits up to
    /// `threshold`, counting its calls.
    fn monotone(
        threshold: f64,
        calls: &mut usize,
    ) -> impl FnMut(f64) -> Result<Evaluation, String> + '_ {
        move |bound| {
            *calls += 1;
            Ok(Evaluation {
                passes: bound <= threshold,
                objective: 1.0 + 10.0 * bound,
            })
        }
    }

    #[test]
    fn bisection_converges_on_a_monotone_function_in_log_evaluations() {
        let interval = float(0.0, 1.0, Scale::Linear, 1e-3);
        let mut calls = 0;
        let s = search(&interval, monotone(0.3, &mut calls)).unwrap();
        let Outcome::Found {
            value,
            objective,
            failing: Some(failing),
        } = s.outcome
        else {
            panic!("{:?}", s.outcome)
        };
        assert!(value <= 0.3 && 0.3 - value <= 1e-3, "{value}");
        assert!(failing > 0.3 && failing - value <= 1e-3, "{failing}");
        assert_eq!(objective, 1.0 + 10.0 * value);
        // 2 ends + ceil(log2(range / tolerance)) midpoints.
        let bound = 2 + (1.0f64 / 1e-3).log2().ceil() as usize;
        assert_eq!(bound, 12);
        assert!(s.evaluations() <= bound, "{}", s.evaluations());
        assert_eq!(s.evaluations(), calls);
        assert_eq!(s.probes.len(), calls);
        // Evaluation order: the ends, then the middle.
        assert_eq!(
            s.probes[..3].iter().map(|p| p.value).collect::<Vec<_>>(),
            [0.0, 1.0, 0.5]
        );
        assert!(!s.falls_back());
    }

    #[test]
    fn log_scale_bisection_reaches_the_relative_tolerance() {
        let interval = float(1e-6, 1.0, Scale::Log, 0.01);
        let mut calls = 0;
        let s = search(&interval, monotone(2.5e-3, &mut calls)).unwrap();
        let Outcome::Found {
            value,
            failing: Some(failing),
            ..
        } = s.outcome
        else {
            panic!("{:?}", s.outcome)
        };
        assert!(value <= 2.5e-3 && failing > 2.5e-3);
        assert!(failing / value <= 1.01, "{value} {failing}");
        let bound = 2 + ((1e6f64).ln() / 1.01f64.ln()).log2().ceil() as usize;
        assert_eq!(bound, 13);
        assert!(calls <= bound, "{calls}");
        // The first midpoint is geometric: 1e-3.
        assert!((s.probes[2].value - 1e-3).abs() < 1e-15);
    }

    #[test]
    fn integer_bisection_finds_the_exact_boundary() {
        // Bits per value: the ratio falls with more bits; 11 bits or more meet the limits.
        let interval = Interval {
            lo: 1.0,
            hi: 32.0,
            scale: Scale::Linear,
            integer: true,
            tolerance: f64::NAN,
        };
        let mut asked = Vec::new();
        let s = search(&interval, |bits| {
            asked.push(bits);
            Ok(Evaluation {
                passes: bits >= 11.0,
                objective: 32.0 / bits,
            })
        })
        .unwrap();
        assert_eq!(
            s.outcome,
            Outcome::Found {
                value: 11.0,
                objective: 32.0 / 11.0,
                failing: Some(10.0)
            }
        );
        assert!(asked.iter().all(|b| b.fract() == 0.0), "{asked:?}");
        assert!(asked.len() <= 2 + 31f64.log2().ceil() as usize, "{asked:?}");
        // Midpoints round to the nearest integer: (1 + 32) / 2 -> 17.
        assert_eq!(asked, [1.0, 32.0, 17.0, 9.0, 13.0, 11.0, 10.0]);
        assert_eq!(
            s.summary(),
            "11 passes with objective 2.909 and 10 fails (7 evaluations)"
        );
    }

    #[test]
    fn integer_log_scale_midpoints_stay_whole_and_inside() {
        let interval = Interval {
            lo: 1.0,
            hi: 1024.0,
            scale: Scale::Log,
            integer: true,
            tolerance: 0.0,
        };
        let s = search(&interval, |level| {
            Ok(Evaluation {
                passes: level <= 300.0,
                objective: level,
            })
        })
        .unwrap();
        assert!(matches!(
            s.outcome,
            Outcome::Found {
                value: 300.0,
                failing: Some(301.0),
                ..
            }
        ));
        assert_eq!(s.probes[2].value, 32.0);
        assert!(s.probes.iter().all(|p| p.value.fract() == 0.0));
    }

    #[test]
    fn a_non_monotone_objective_is_detected_and_named() {
        // The ratio peaks inside the interval.
        let interval = float(0.0, 4.0, Scale::Linear, 0.01);
        let s = search(&interval, |x| {
            Ok(Evaluation {
                passes: x <= 3.0,
                objective: 10.0 - (x - 2.5) * (x - 2.5),
            })
        })
        .unwrap();
        assert_eq!(
            s.outcome,
            Outcome::NotMonotone {
                evidence: "the objective turns: 3.75 at 0, 9.75 at 2, 7.75 at 4".into()
            }
        );
        assert!(s.falls_back());
        assert_eq!(s.evaluations(), 3);
    }

    #[test]
    fn a_turn_found_while_bisecting_stops_the_search() {
        // Monotone at the ends and the middle, with a dip near the boundary.
        let interval = float(0.0, 1.0, Scale::Linear, 1e-3);
        let s = search(&interval, |x| {
            let dip = if (0.3..0.4).contains(&x) { -5.0 } else { 0.0 };
            Ok(Evaluation {
                passes: x <= 0.35,
                objective: 1.0 + 10.0 * x + dip,
            })
        })
        .unwrap();
        assert_eq!(
            s.outcome,
            Outcome::NotMonotone {
                evidence: "the objective turns: 1 at 0, 3.5 at 0.25, -0.25 at 0.375".into()
            }
        );
        assert_eq!(s.evaluations(), 5);
    }

    #[test]
    fn pass_fail_flipping_twice_is_detected() {
        // Fails at both ends, passes in the middle: two switches.
        let interval = float(0.0, 1.0, Scale::Linear, 1e-3);
        let s = search(&interval, |x| {
            Ok(Evaluation {
                passes: (0.4..0.6).contains(&x),
                objective: x,
            })
        })
        .unwrap();
        assert_eq!(
            s.outcome,
            Outcome::NotMonotone {
                evidence: "pass and fail alternate: fails at 0, passes at 0.5, fails at 1".into()
            }
        );
        // Passes at both ends, fails in the middle.
        let s = search(&interval, |x| {
            Ok(Evaluation {
                passes: !(0.4..0.6).contains(&x),
                objective: x,
            })
        })
        .unwrap();
        assert_eq!(
            s.outcome,
            Outcome::NotMonotone {
                evidence: "pass and fail alternate: passes at 0, fails at 0.5, passes at 1".into()
            }
        );
    }

    #[test]
    fn passing_at_the_higher_objective_only_is_detected() {
        let interval = float(0.0, 1.0, Scale::Linear, 1e-3);
        let s = search(&interval, |x| {
            Ok(Evaluation {
                passes: x >= 0.7,
                objective: 1.0 + x,
            })
        })
        .unwrap();
        assert_eq!(
            s.outcome,
            Outcome::NotMonotone {
                evidence: "the limits fail at a lower objective than they pass: fails at 0 with objective 1, passes at 1 with objective 2".into()
            }
        );
        // Seen at the two ends already.
        assert_eq!(s.evaluations(), 2);
    }

    #[test]
    fn all_passing_takes_the_best_end_and_all_failing_finds_none() {
        let interval = float(0.0, 1.0, Scale::Linear, 1e-3);
        // Ratio falls with the parameter (e.g. bits): the best end is lo.
        let s = search(&interval, |x| {
            Ok(Evaluation {
                passes: true,
                objective: 2.0 - x,
            })
        })
        .unwrap();
        assert_eq!(
            s.outcome,
            Outcome::Found {
                value: 0.0,
                objective: 2.0,
                failing: None
            }
        );
        assert_eq!(s.evaluations(), 3);
        assert_eq!(
            s.summary(),
            "every evaluated value passes; 0 has the largest objective, 2 (3 evaluations)"
        );
        let s = search(&interval, |x| {
            Ok(Evaluation {
                passes: false,
                objective: x,
            })
        })
        .unwrap();
        assert_eq!(s.outcome, Outcome::NonePasses);
        assert_eq!(s.summary(), "no evaluated value passes (3 evaluations)");
        assert_eq!(
            s.to_json(),
            json!({"outcome": "none_passes", "evaluations": 3, "probes": [
                {"value": 0.0, "passes": false, "objective": 0.0},
                {"value": 1.0, "passes": false, "objective": 1.0},
                {"value": 0.5, "passes": false, "objective": 0.5},
            ]})
        );
    }

    #[test]
    fn a_failed_evaluation_ends_the_search_and_counts() {
        let interval = float(0.0, 1.0, Scale::Linear, 1e-3);
        let s = search(&interval, |x| {
            if x > 0.9 {
                Err("sz3: bound too large".into())
            } else {
                Ok(Evaluation {
                    passes: true,
                    objective: x,
                })
            }
        })
        .unwrap();
        assert_eq!(
            s.outcome,
            Outcome::Failed {
                value: 1.0,
                error: "sz3: bound too large".into()
            }
        );
        assert_eq!((s.probes.len(), s.evaluations()), (1, 2));
        assert!(s.falls_back());
        assert_eq!(
            s.to_json(),
            json!({"outcome": "failed", "value": 1.0, "error": "sz3: bound too large",
                   "evaluations": 2, "probes": [{"value": 0.0, "passes": true, "objective": 0.0}]})
        );
    }

    #[test]
    fn a_nan_objective_is_evidence_too() {
        let interval = float(0.0, 1.0, Scale::Linear, 1e-3);
        let s = search(&interval, |x| {
            Ok(Evaluation {
                passes: true,
                objective: if x == 1.0 { f64::NAN } else { x },
            })
        })
        .unwrap();
        assert_eq!(
            s.outcome,
            Outcome::NotMonotone {
                evidence: "the objective is nan at 1".into()
            }
        );
    }

    #[test]
    fn infinite_objectives_keep_their_order() {
        // Lossless at the top of the range: ratio inf there, still monotone.
        let interval = float(0.0, 1.0, Scale::Linear, 0.01);
        let s = search(&interval, |x| {
            Ok(Evaluation {
                passes: x <= 0.6,
                objective: if x == 1.0 { f64::INFINITY } else { x },
            })
        })
        .unwrap();
        assert!(matches!(
            s.outcome,
            Outcome::Found {
                failing: Some(_),
                ..
            }
        ));
        let s = search(&interval, |x| {
            Ok(Evaluation {
                passes: true,
                objective: if x == 0.5 { f64::INFINITY } else { x },
            })
        })
        .unwrap();
        assert_eq!(
            s.outcome,
            Outcome::NotMonotone {
                evidence: "the objective turns: 0 at 0, inf at 0.5, 1 at 1".into()
            }
        );
    }

    #[test]
    fn a_tiny_tolerance_stops_at_adjacent_floats() {
        let interval = float(0.0, 1.0, Scale::Linear, 1e-300);
        let mut calls = 0;
        let s = search(&interval, monotone(0.3, &mut calls)).unwrap();
        let Outcome::Found {
            value,
            failing: Some(failing),
            ..
        } = s.outcome
        else {
            panic!("{:?}", s.outcome)
        };
        assert_eq!(failing, value.next_up());
        assert!(calls < 100, "{calls}");
    }

    #[test]
    fn searches_are_deterministic() {
        let interval = float(1e-5, 1e-1, Scale::Log, 0.05);
        let run = || {
            let mut calls = 0;
            search(&interval, monotone(3e-3, &mut calls)).unwrap()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn bad_intervals_are_errors() {
        let interval = float(1.0, 1.0, Scale::Linear, 0.1);
        assert_eq!(
            search(&interval, |_| unreachable!()).unwrap_err(),
            "search interval: lo 1 must be below hi 1"
        );
    }

    #[test]
    fn evaluations_come_from_result_rows() {
        let limits = [min("ssim", 0.5)];
        let objective = Objective::default();
        let good = row(0, 4.0, json!({"ssim": 0.75}), json!({}));
        assert_eq!(
            Evaluation::of(&good, &limits, &objective),
            Ok(Evaluation {
                passes: true,
                objective: 4.0
            })
        );
        let poor = row(1, 8.0, json!({"ssim": 0.25}), json!({}));
        assert!(!Evaluation::of(&poor, &limits, &objective).unwrap().passes);
        // A minimised objective is negated: larger is better.
        let bits = Objective::parse("min bits_per_value").unwrap();
        assert_eq!(
            Evaluation::of(&good, &limits, &bits).unwrap().objective,
            -8.0
        );
        assert_eq!(
            Evaluation::of(&failed_row(2, "boom"), &limits, &objective),
            Err("point p2 failed: boom".into())
        );
        let psnr = Objective::parse("max psnr").unwrap();
        assert_eq!(
            Evaluation::of(&good, &limits, &psnr),
            Err("point p0: objective psnr is missing".into())
        );
    }
}
