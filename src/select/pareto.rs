//! Pareto fronts: for the objective (the rate by default) against each metric column, the
//! points no other point beats on both.

use std::cmp::Ordering;

use serde_json::{Value, json};

use super::evaluate::{column_value, observe};
use crate::metrics::values::metric_json;
use crate::runner::results::PointResult;
use crate::scenario::limits::{Limit, Objective};

/// Which way a column improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Larger values are better (PSNR, SSIM, Dice).
    Higher,
    /// Smaller values are better (MSE, errors, changes).
    Lower,
}

impl Direction {
    /// `"higher"` or `"lower"`.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Higher => "higher",
            Direction::Lower => "lower",
        }
    }

    /// How `a` ranks against `b`: `Less` when `a` is better.
    fn rank(self, a: f64, b: f64) -> Ordering {
        match self {
            Direction::Higher => b.total_cmp(&a),
            Direction::Lower => a.total_cmp(&b),
        }
    }
}

/// Metric columns with a known direction, by full column name (see
/// `metrics::registry`).
const METRIC_DIRECTIONS: &[(&str, Direction)] = &[
    ("psnr", Direction::Higher),
    ("snr", Direction::Higher),
    ("ssim", Direction::Higher),
    ("pearson", Direction::Higher),
    ("ks_test.p_value", Direction::Higher),
    // Half-bit resolution as a fraction of Nyquist: correlation kept to higher frequencies.
    ("frc.resolution", Direction::Higher),
    ("fsc.resolution", Direction::Higher),
    ("mse", Direction::Lower),
    ("rmse", Direction::Lower),
    ("nrmse", Direction::Lower),
    ("max_abs_error", Direction::Lower),
    ("max_rel_error", Direction::Lower),
    ("error_histogram.std", Direction::Lower),
    ("ks_test.statistic", Direction::Lower),
    ("power_spectrum.max_abs_relative_error", Direction::Lower),
];

/// Analysis fields with a known direction, by the field after the analysis label (labels are
/// the scenario's: `segmentation`, `pores`, `2:segmentation`; see `analysis::registry`).
const ANALYSIS_DIRECTIONS: &[(&str, Direction)] = &[
    ("dice_foreground", Direction::Higher),
    ("iou_foreground", Direction::Higher),
    ("boundary_f1", Direction::Higher),
    ("boundary_precision", Direction::Higher),
    ("boundary_recall", Direction::Higher),
    ("diameter_ks_p_value", Direction::Higher),
    ("threshold_shift_max", Direction::Lower),
    ("fraction_change_max", Direction::Lower),
    ("porosity_abs_change", Direction::Lower),
    ("diameter_ks_statistic", Direction::Lower),
    ("diameter_wasserstein", Direction::Lower),
];

/// The direction of a column from the tables of known metrics and analysis fields:
///
/// - higher is better: `psnr`, `snr`, `ssim`, `pearson`, `ks_test.p_value`, `frc.resolution`,
///   `fsc.resolution`; analysis fields `dice_foreground`, `iou_foreground`, `boundary_f1`,
///   `boundary_precision`, `boundary_recall`, `diameter_ks_p_value`;
/// - lower is better: `mse`, `rmse`, `nrmse`, `max_abs_error`, `max_rel_error`,
///   `error_histogram.std`, `ks_test.statistic`, `power_spectrum.max_abs_relative_error`;
///   analysis fields `threshold_shift_max`, `fraction_change_max`, `porosity_abs_change`,
///   `diameter_ks_statistic`, `diameter_wasserstein`.
///
/// Signed quantities, whose best value is 0 rather than an end (`mean_error`,
/// `error_histogram.skewness`, `error_autocorrelation.axisN`, `pore_count_change`,
/// `specific_surface_change`), and unknown columns have none.
pub fn known_direction(column: &str) -> Option<Direction> {
    let lookup = |table: &[(&str, Direction)], name: &str| {
        table.iter().find(|(n, _)| *n == name).map(|(_, d)| *d)
    };
    lookup(METRIC_DIRECTIONS, column).or_else(|| {
        let (_, field) = column.split_once('.')?;
        lookup(ANALYSIS_DIRECTIONS, field)
    })
}

/// The direction of `column`: from its limit when that sets one bound (a `min` means higher is
/// better, a `max` lower), otherwise from [`known_direction`].
pub fn direction(column: &str, limits: &[Limit]) -> Option<Direction> {
    let declared =
        limits
            .iter()
            .filter(|l| l.column == column)
            .find_map(|l| match (l.min, l.max) {
                (Some(_), None) => Some(Direction::Higher),
                (None, Some(_)) => Some(Direction::Lower),
                _ => None,
            });
    declared.or_else(|| known_direction(column))
}

/// The non-dominated points of the objective against one column.
#[derive(Debug, Clone, PartialEq)]
pub struct Front {
    /// The metric column.
    pub column: String,
    /// Its direction.
    pub direction: Direction,
    /// Positions in the rows of the points on the front, best objective first (then lower
    /// sweep index).
    pub points: Vec<usize>,
}

/// The points of `rows` on the Pareto front of `objective` against `column` (improving in
/// `direction`): measured points with both values usable (see [`observe`]: not NaN, not of a
/// point with NaN or infinite decoded values; infinities count) that no other point matches or
/// beats on both and beats on one. Points with equal values are all kept. Best objective
/// first, then lower sweep index.
pub fn front(
    rows: &[PointResult],
    objective: &Objective,
    column: &str,
    direction: Direction,
) -> Vec<usize> {
    let values: Vec<(usize, f64, f64)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let o = observe(r, &objective.column).ok()?;
            let m = observe(r, column).ok()?;
            Some((i, o, m))
        })
        .collect();
    let dominates = |a: &(usize, f64, f64), b: &(usize, f64, f64)| {
        let (o, m) = (objective.rank(a.1, b.1), direction.rank(a.2, b.2));
        o != Ordering::Greater
            && m != Ordering::Greater
            && (o, m) != (Ordering::Equal, Ordering::Equal)
    };
    // Quadratic, which is plenty for sweeps of a few thousand points and plainly correct.
    let mut on_front: Vec<&(usize, f64, f64)> = values
        .iter()
        .filter(|p| !values.iter().any(|q| dominates(q, p)))
        .collect();
    on_front.sort_by(|a, b| {
        objective
            .rank(a.1, b.1)
            .then_with(|| rows[a.0].index.cmp(&rows[b.0].index))
    });
    on_front.into_iter().map(|p| p.0).collect()
}

/// The fronts of `objective` against each of `columns` that has a [`direction`]; columns
/// without one, and the objective's own column, are left out.
pub fn fronts(
    rows: &[PointResult],
    objective: &Objective,
    columns: &[String],
    limits: &[Limit],
) -> Vec<Front> {
    columns
        .iter()
        .filter(|c| **c != objective.column)
        .filter_map(|column| {
            let direction = direction(column, limits)?;
            Some(Front {
                column: column.clone(),
                direction,
                points: front(rows, objective, column, direction),
            })
        })
        .collect()
}

/// The fronts as JSON: `[{"column": "psnr", "direction": "higher", "points": [{"point_id":
/// .., "index": .., "objective": .., "value": ..}, ..]}, ..]`.
pub fn fronts_json(rows: &[PointResult], objective: &Objective, fronts: &[Front]) -> Value {
    let value = |row: &PointResult, column: &str| {
        column_value(row, column).map_or(Value::Null, metric_json)
    };
    fronts
        .iter()
        .map(|f| {
            let points: Vec<Value> = f
                .points
                .iter()
                .map(|&i| {
                    let row = &rows[i];
                    json!({
                        "point_id": row.point_id,
                        "index": row.index,
                        "objective": value(row, &objective.column),
                        "value": value(row, &f.column),
                    })
                })
                .collect();
            json!({"column": f.column, "direction": f.direction.name(), "points": points})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::evaluate::tests::{failed_row, max, min, row};

    #[test]
    fn directions_come_from_limits_then_the_tables() {
        assert_eq!(known_direction("psnr"), Some(Direction::Higher));
        assert_eq!(known_direction("frc.resolution"), Some(Direction::Higher));
        assert_eq!(known_direction("ks_test.statistic"), Some(Direction::Lower));
        assert_eq!(
            known_direction("segmentation.dice_foreground"),
            Some(Direction::Higher)
        );
        assert_eq!(
            known_direction("2:porosity.porosity_abs_change"),
            Some(Direction::Lower)
        );
        assert_eq!(known_direction("mean_error"), None);
        assert_eq!(known_direction("porosity.pore_count_change"), None);
        assert_eq!(known_direction("error_autocorrelation.axis0"), None);
        assert_eq!(
            known_direction("dice_foreground"),
            None,
            "a field needs its label"
        );
        let limits = [
            max("mean_error", 0.5),
            min("ssim", 0.9),
            Limit {
                column: "pearson".into(),
                min: Some(0.5),
                max: Some(1.0),
            },
        ];
        assert_eq!(direction("mean_error", &limits), Some(Direction::Lower));
        assert_eq!(direction("ssim", &limits), Some(Direction::Higher));
        // Bounded both ways: the table decides.
        assert_eq!(direction("pearson", &limits), Some(Direction::Higher));
        assert_eq!(direction("error_histogram.kurtosis", &limits), None);
    }

    #[test]
    fn fronts_keep_the_non_dominated_points_in_both_directions() {
        let rows = [
            row(0, 2.0, json!({"psnr": 60.0, "mse": 0.5}), json!({})),
            row(1, 4.0, json!({"psnr": 50.0, "mse": 1.0}), json!({})),
            // Dominated in PSNR by p1 (lower ratio, lower PSNR); on the MSE front.
            row(2, 3.0, json!({"psnr": 45.0, "mse": 0.75}), json!({})),
            row(3, 8.0, json!({"psnr": 30.0, "mse": 4.0}), json!({})),
            // The same values as p3: both stay.
            row(4, 8.0, json!({"psnr": 30.0, "mse": 4.0}), json!({})),
            // Dominated by p3 on both.
            row(5, 6.0, json!({"psnr": 20.0, "mse": 8.0}), json!({})),
            row(6, 1.0, json!({"psnr": "inf", "mse": 0.0}), json!({})),
            row(7, 16.0, json!({"psnr": "nan", "mse": "nan"}), json!({})),
            failed_row(8, "boom"),
        ];
        let objective = Objective::default();
        assert_eq!(
            front(&rows, &objective, "psnr", Direction::Higher),
            [3, 4, 1, 0, 6]
        );
        assert_eq!(
            front(&rows, &objective, "mse", Direction::Lower),
            [3, 4, 1, 2, 0, 6]
        );
        let columns = ["psnr", "mean_error", "mse", "ratio"].map(String::from);
        let limits = [max("mse", 2.0)];
        let all = fronts(&rows, &objective, &columns, &limits);
        assert_eq!(
            all.iter()
                .map(|f| (f.column.as_str(), f.direction))
                .collect::<Vec<_>>(),
            [("psnr", Direction::Higher), ("mse", Direction::Lower)]
        );
        let value = fronts_json(&rows, &objective, &all[..1]);
        assert_eq!(
            value,
            json!([{"column": "psnr", "direction": "higher", "points": [
                {"point_id": "p3", "index": 3, "objective": 8.0, "value": 30.0},
                {"point_id": "p4", "index": 4, "objective": 8.0, "value": 30.0},
                {"point_id": "p1", "index": 1, "objective": 4.0, "value": 50.0},
                {"point_id": "p0", "index": 0, "objective": 2.0, "value": 60.0},
                {"point_id": "p6", "index": 6, "objective": 1.0, "value": "inf"},
            ]}])
        );
    }

    #[test]
    fn a_minimised_objective_flips_the_rate_axis() {
        let rows = [
            row(0, 2.0, json!({"psnr": 60.0}), json!({})), // 16 bits per value
            row(1, 4.0, json!({"psnr": 50.0}), json!({})), // 8
            row(2, 4.0, json!({"psnr": 40.0}), json!({})), // 8, dominated by p1
        ];
        let objective = Objective::parse("min bits_per_value").unwrap();
        assert_eq!(front(&rows, &objective, "psnr", Direction::Higher), [1, 0]);
    }
}
