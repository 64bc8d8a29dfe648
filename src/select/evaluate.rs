//! Each result row against the limits: its column values, pass or fail, and the margin to every
//! limit.

use std::fmt;

use serde_json::{Map, Value, json};

use super::limits::{Margin, Side};
use crate::metrics::values::{metric_json, metric_value, short};
use crate::runner::results::{PointResult, Status};
use crate::scenario::limits::{Limit, Objective};

/// The value of `column` in `row`: a rate field (see [`crate::runner::results::Rate::COLUMNS`]), else a metric or
/// analysis column through [`PointResult::value`] (the strings `"inf"`, `"-inf"`, `"nan"` as
/// numbers). `None` when the row has no such column or its value is not a number.
pub fn column_value(row: &PointResult, column: &str) -> Option<f64> {
    match row.rate.as_ref().and_then(|rate| rate.get(column)) {
        Some(value) => metric_value(&value),
        None => row.value(column).and_then(metric_value),
    }
}

/// Why a row has no usable value in a column.
#[derive(Debug, Clone, PartialEq)]
pub enum Unusable {
    /// The row has no such column.
    Missing,
    /// The column holds something other than a number (an array, an object).
    NotANumber,
    /// The value is NaN.
    Nan,
    /// The working point failed; the error of its row.
    PointFailed(String),
    /// This many decoded values are NaN or infinite: no value of the row counts.
    NonfiniteDecoded(u64),
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::Missing => f.write_str("missing"),
            Unusable::NotANumber => f.write_str("not a number"),
            Unusable::Nan => f.write_str("nan"),
            Unusable::PointFailed(error) => write!(f, "point failed: {error}"),
            Unusable::NonfiniteDecoded(n) => {
                write!(f, "{n} decoded values are NaN or infinite")
            }
        }
    }
}

/// The value of `column` in `row` (see [`column_value`]), or why there is none. Infinite values
/// are usable: PSNR of identical data is `+inf` and meets any lower bound. No value of a row
/// whose decoded data hold NaN or infinite values is usable, whatever the column (its rate and
/// science included): such a point fails every limit and has no objective value, so it is
/// never recommended.
pub fn observe(row: &PointResult, column: &str) -> Result<f64, Unusable> {
    if row.status == Status::Error {
        let error = row.error.as_deref().unwrap_or("no error recorded");
        return Err(Unusable::PointFailed(error.to_string()));
    }
    if let Some(n) = row.nonfinite() {
        return Err(Unusable::NonfiniteDecoded(n));
    }
    match column_value(row, column) {
        Some(value) if value.is_nan() => Err(Unusable::Nan),
        Some(value) => Ok(value),
        None if row.value(column).is_some() => Err(Unusable::NotANumber),
        None => Err(Unusable::Missing),
    }
}

/// How a row stands against one limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Check<'a> {
    /// The limit.
    pub limit: &'a Limit,
    /// The row's value of the limit's column.
    pub observed: Result<f64, Unusable>,
}

impl Check<'_> {
    /// The margin to the binding bound; `None` without a usable value or without bounds.
    pub fn margin(&self) -> Option<Margin> {
        self.observed
            .as_ref()
            .ok()
            .and_then(|&v| self.limit.margin(v))
    }

    /// Whether the row meets the limit: a usable value on or inside every bound.
    pub fn passes(&self) -> bool {
        self.observed.is_ok() && self.margin().is_none_or(|m| m.margin >= 0.0)
    }

    /// Why the row fails the limit (`below min`, `above max`, `missing`, `nan`,
    /// `point failed: ...`); `None` when it passes.
    pub fn reason(&self) -> Option<String> {
        match (&self.observed, self.margin()) {
            (Err(unusable), _) => Some(unusable.to_string()),
            (Ok(_), Some(m)) if !self.passes() => {
                Some(format!("{} {}", side_word(m.side), m.side.name()))
            }
            _ => None,
        }
    }

    /// How far outside the limit the value lies, relative to the bound (see
    /// [`Margin::relative`]): 0 when it passes, `+inf` without a usable value.
    pub fn violation(&self) -> f64 {
        match (&self.observed, self.margin()) {
            (Err(_), _) => f64::INFINITY,
            (Ok(_), Some(m)) => (-m.relative()).max(0.0),
            (Ok(_), None) => 0.0,
        }
    }

    /// The check as JSON: `column`, the limit's `min`/`max`, `value` (number, `"inf"`,
    /// `"nan"`, or null when missing), the binding `bound` (`"min"`/`"max"`), `margin` and
    /// `relative_margin` (null without a value), and `reason` when it fails.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("column".into(), json!(self.limit.column));
        self.limit.bounds_json(&mut map);
        let value = match &self.observed {
            Ok(v) => metric_json(*v),
            Err(Unusable::Nan) => metric_json(f64::NAN),
            Err(_) => Value::Null,
        };
        map.insert("value".into(), value);
        let margin = self.margin();
        map.insert(
            "bound".into(),
            margin.map_or(Value::Null, |m| json!(m.side.name())),
        );
        map.insert(
            "margin".into(),
            margin.map_or(Value::Null, |m| metric_json(m.margin)),
        );
        map.insert(
            "relative_margin".into(),
            margin.map_or(Value::Null, |m| metric_json(m.relative())),
        );
        if let Some(reason) = self.reason() {
            map.insert("reason".into(), json!(reason));
        }
        Value::Object(map)
    }

    /// A few words for sentences: `ssim 0.9 < min 0.95`, `psnr missing`.
    pub(crate) fn describe(&self) -> String {
        let column = &self.limit.column;
        match (&self.observed, self.margin()) {
            (Err(unusable), _) => format!("{column} {unusable}"),
            (Ok(v), Some(m)) => {
                let op = match (m.side, m.margin < 0.0) {
                    (Side::Min, true) => "<",
                    (Side::Max, true) => ">",
                    (Side::Min, false) => ">=",
                    (Side::Max, false) => "<=",
                };
                format!(
                    "{column} {} {op} {} {}",
                    short(*v),
                    m.side.name(),
                    short(m.bound)
                )
            }
            (Ok(v), None) => format!("{column} {}", short(*v)),
        }
    }
}

fn side_word(side: Side) -> &'static str {
    match side {
        Side::Min => "below",
        Side::Max => "above",
    }
}

/// One row against every limit and its objective value.
#[derive(Debug, Clone, PartialEq)]
pub struct RowEvaluation<'a> {
    /// The row.
    pub row: &'a PointResult,
    /// One check per limit, in the order of the limits.
    pub checks: Vec<Check<'a>>,
    /// The row's value of the objective column, or why there is none (such a row cannot be
    /// ranked, so it does not pass).
    pub objective: Result<f64, Unusable>,
}

impl<'a> RowEvaluation<'a> {
    /// `row` against `limits`, with its value of `objective`.
    pub fn of(row: &'a PointResult, limits: &'a [Limit], objective: &Objective) -> Self {
        RowEvaluation {
            row,
            checks: limits
                .iter()
                .map(|limit| Check {
                    limit,
                    observed: observe(row, &limit.column),
                })
                .collect(),
            objective: observe(row, &objective.column),
        }
    }

    /// Whether the row meets every limit and has an objective value.
    pub fn passes(&self) -> bool {
        self.objective.is_ok() && self.checks.iter().all(Check::passes)
    }

    /// The limits the row fails.
    pub fn failed(&self) -> impl Iterator<Item = &Check<'a>> {
        self.checks.iter().filter(|c| !c.passes())
    }

    /// How many things keep the row from passing: failed limits, plus one without an
    /// objective value.
    pub fn failures(&self) -> usize {
        self.failed().count() + usize::from(self.objective.is_err())
    }

    /// What keeps the row from passing, in a few words each: every failed limit (`ssim 0.5 <
    /// min 0.9`, `psnr nan`), then `objective COLUMN <why>`; for a point with NaN or infinite
    /// decoded values, which fails everything for that one reason, `every limit: <why>`.
    pub fn reasons(&self, objective: &Objective) -> Vec<String> {
        if let Some(n) = self.row.nonfinite() {
            return vec![format!("every limit: {}", Unusable::NonfiniteDecoded(n))];
        }
        let mut reasons: Vec<String> = self.failed().map(|c| c.describe()).collect();
        if let Err(unusable) = &self.objective {
            reasons.push(format!("objective {} {unusable}", objective.column));
        }
        reasons
    }

    /// The largest [`Check::violation`] over the limits; `+inf` without an objective value.
    pub fn worst_violation(&self) -> f64 {
        let limits = self.checks.iter().map(Check::violation).fold(0.0, f64::max);
        if self.objective.is_err() {
            f64::INFINITY
        } else {
            limits
        }
    }

    /// The smallest relative margin over the limits (how close the row comes to failing);
    /// `+inf` without limits, `-inf` when a limit has no usable value.
    pub fn smallest_relative_margin(&self) -> f64 {
        self.checks
            .iter()
            .map(|c| match (&c.observed, c.margin()) {
                (Err(_), _) => f64::NEG_INFINITY,
                (Ok(_), Some(m)) => m.relative(),
                (Ok(_), None) => f64::INFINITY,
            })
            .fold(f64::INFINITY, f64::min)
    }

    /// The row's verdict as JSON: `point_id`, `index`, `pass`, `objective` (the value, or null)
    /// and `failed`: the failing checks (see [`Check::to_json`]), then
    /// `{"objective": column, "reason": ..}` when the objective has no value.
    pub fn to_json(&self, objective: &Objective) -> Value {
        let mut failed: Vec<Value> = self.failed().map(Check::to_json).collect();
        if let Err(unusable) = &self.objective {
            failed.push(json!({"objective": objective.column, "reason": unusable.to_string()}));
        }
        json!({
            "point_id": self.row.point_id,
            "index": self.row.index,
            "pass": self.passes(),
            "objective": self.objective.as_ref().map_or(Value::Null, |v| metric_json(*v)),
            "failed": failed,
        })
    }
}

/// Every row against `limits`, in row order.
pub fn evaluate<'a>(
    rows: &'a [PointResult],
    limits: &'a [Limit],
    objective: &Objective,
) -> Vec<RowEvaluation<'a>> {
    rows.iter()
        .map(|row| RowEvaluation::of(row, limits, objective))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::runner::provenance::Provenance;
    use crate::runner::results::Rate;

    /// A measured row with the given ratio, distortion and science values.
    pub(crate) fn row(index: usize, ratio: f64, distortion: Value, science: Value) -> PointResult {
        let map = |v: Value| match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let provenance = Provenance {
            photonqa_version: "0".into(),
            codecs: Default::default(),
            scenario: "test".into(),
            scenario_hash: String::new(),
            input: "phantom".into(),
            input_hash: String::new(),
            input_shape: vec![4, 4],
            input_dtype: crate::data::DType::Float32,
            chunk_slices: 4,
            side_files: Default::default(),
        };
        PointResult {
            rate: Some(Rate {
                original_bytes: 1000,
                compressed_bytes: (1000.0 / ratio) as u64,
                ratio,
                bits_per_value: 32.0 / ratio,
                encode_mb_s: 100.0,
                decode_mb_s: 200.0,
                side_bytes: None,
                amortize_over: None,
                ratio_payload: None,
            }),
            nonfinite_decoded: Some(0),
            distortion: map(distortion),
            science: map(science),
            ..PointResult::new(
                format!("p{index}"),
                index,
                map(json!({"sz3.abs": index as f64 * 0.5})),
                provenance,
            )
        }
    }

    /// A row whose point failed.
    pub(crate) fn failed_row(index: usize, error: &str) -> PointResult {
        let mut r = row(index, 1.0, json!({}), json!({}));
        r.status = Status::Error;
        r.error = Some(error.into());
        r.rate = None;
        r.nonfinite_decoded = None;
        r
    }

    pub(crate) fn min(column: &str, bound: f64) -> Limit {
        Limit {
            column: column.into(),
            min: Some(bound),
            max: None,
        }
    }

    pub(crate) fn max(column: &str, bound: f64) -> Limit {
        Limit {
            column: column.into(),
            min: None,
            max: Some(bound),
        }
    }

    #[test]
    fn columns_cover_rate_metrics_and_analyses() {
        let r = row(
            0,
            8.0,
            json!({"psnr": "inf", "ssim": 0.5, "frc": {"resolution": 0.75}}),
            json!({"segmentation": {"dice_foreground": 0.25, "dice": [0.5, 0.75]}}),
        );
        assert_eq!(column_value(&r, "ratio"), Some(8.0));
        assert_eq!(column_value(&r, "bits_per_value"), Some(4.0));
        assert_eq!(column_value(&r, "compressed_bytes"), Some(125.0));
        assert_eq!(column_value(&r, "original_bytes"), Some(1000.0));
        assert_eq!(column_value(&r, "decode_mb_s"), Some(200.0));
        assert!(Rate::COLUMNS.iter().all(|c| column_value(&r, c).is_some()));
        assert_eq!(column_value(&r, "psnr"), Some(f64::INFINITY));
        assert_eq!(column_value(&r, "frc.resolution"), Some(0.75));
        assert_eq!(column_value(&r, "segmentation.dice_foreground"), Some(0.25));
        assert_eq!(column_value(&r, "segmentation.dice"), None);
        assert_eq!(column_value(&r, "mse"), None);
        assert_eq!(observe(&r, "segmentation.dice"), Err(Unusable::NotANumber));
        assert_eq!(observe(&r, "mse"), Err(Unusable::Missing));
        assert_eq!(observe(&r, "psnr"), Ok(f64::INFINITY));
        let bad = failed_row(1, "sz3: bound must be > 0");
        assert_eq!(column_value(&bad, "ratio"), None);
        assert_eq!(
            observe(&bad, "ratio").unwrap_err().to_string(),
            "point failed: sz3: bound must be > 0"
        );
    }

    #[test]
    fn checks_give_reasons_for_every_kind_of_failure() {
        let r = row(
            0,
            4.0,
            json!({"psnr": "inf", "ssim": 0.5, "mse": "nan", "nrmse": 0.25}),
            json!({}),
        );
        let limits = [
            min("psnr", 40.0),
            min("ssim", 0.75),
            max("mse", 1.0),
            max("nrmse", 0.5),
            min("pearson", 0.5),
            max("psnr", 100.0),
        ];
        let e = RowEvaluation::of(&r, &limits, &Objective::default());
        let reasons: Vec<Option<String>> = e.checks.iter().map(Check::reason).collect();
        assert_eq!(
            reasons,
            [
                None,
                Some("below min".into()),
                Some("nan".into()),
                None,
                Some("missing".into()),
                Some("above max".into()),
            ]
        );
        assert!(!e.passes());
        assert_eq!(e.failures(), 4);
        assert_eq!(e.worst_violation(), f64::INFINITY);
        // +inf PSNR against a min limit passes with an infinite margin, written as "inf".
        assert_eq!(
            e.checks[0].to_json(),
            json!({"column": "psnr", "min": 40.0, "value": "inf", "bound": "min",
                   "margin": "inf", "relative_margin": "inf"})
        );
        assert_eq!(
            e.checks[1].to_json(),
            json!({"column": "ssim", "min": 0.75, "value": 0.5, "bound": "min",
                   "margin": -0.25, "relative_margin": -0.25 / 0.75, "reason": "below min"})
        );
        assert_eq!(
            e.checks[2].to_json(),
            json!({"column": "mse", "max": 1.0, "value": "nan", "bound": null,
                   "margin": null, "relative_margin": null, "reason": "nan"})
        );
        assert_eq!(
            e.checks[3].to_json(),
            json!({"column": "nrmse", "max": 0.5, "value": 0.25, "bound": "max",
                   "margin": 0.25, "relative_margin": 0.5})
        );
        assert_eq!(
            e.checks[5].to_json()["margin"],
            json!("-inf"),
            "+inf PSNR exceeds any max"
        );
        assert_eq!(e.checks[1].describe(), "ssim 0.5 < min 0.75");
        assert_eq!(e.checks[3].describe(), "nrmse 0.25 <= max 0.5");
        assert_eq!(e.checks[4].describe(), "pearson missing");
    }

    #[test]
    fn a_value_on_the_bound_passes() {
        let r = row(0, 4.0, json!({"ssim": 0.75}), json!({}));
        let limits = [Limit {
            column: "ssim".into(),
            min: Some(0.75),
            max: Some(0.75),
        }];
        let e = RowEvaluation::of(&r, &limits, &Objective::default());
        assert!(e.passes());
        assert_eq!(e.smallest_relative_margin(), 0.0);
        assert_eq!(e.worst_violation(), 0.0);
    }

    #[test]
    fn failed_points_fail_every_limit_and_have_no_objective() {
        let r = failed_row(3, "zfp: rate out of range");
        let limits = [min("ssim", 0.9)];
        let objective = Objective::default();
        let e = RowEvaluation::of(&r, &limits, &objective);
        assert!(!e.passes());
        assert_eq!(e.failures(), 2);
        assert_eq!(e.smallest_relative_margin(), f64::NEG_INFINITY);
        assert_eq!(
            e.to_json(&objective),
            json!({
                "point_id": "p3", "index": 3, "pass": false, "objective": null,
                "failed": [
                    {"column": "ssim", "min": 0.9, "value": null, "bound": null, "margin": null,
                     "relative_margin": null, "reason": "point failed: zfp: rate out of range"},
                    {"objective": "ratio", "reason": "point failed: zfp: rate out of range"},
                ],
            })
        );
    }

    #[test]
    fn a_nan_objective_keeps_a_row_from_passing() {
        let r = row(0, 4.0, json!({"psnr": "nan"}), json!({}));
        let objective = Objective::parse("max psnr").unwrap();
        let e = RowEvaluation::of(&r, &[], &objective);
        assert_eq!(e.objective, Err(Unusable::Nan));
        assert!(!e.passes());
        assert_eq!(e.failures(), 1);
        assert_eq!(e.smallest_relative_margin(), f64::INFINITY);
    }
}
