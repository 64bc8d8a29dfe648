//! Comparing a run with its baseline: one [`Case`] per gated value of each point, drifts where
//! a value moved beyond its tolerance or something is missing, and information that explains
//! (but is not itself) a drift.
//!
//! Drifts (the gate fails):
//! - a value beyond its tolerance, a non-finite value that changed, a value on one side only;
//! - a point of the baseline missing from the run, or a new point;
//! - a point whose status changed (ok <-> error); its values are then not compared;
//! - a point whose id changed while its swept parameters did not (a fixed stage of the
//!   pipeline changed); its values are compared with the old point's;
//! - a column in only one of baseline and run (a metric added or removed), once per column.
//!
//! Notes (information; the values decide):
//! - the scenario file, the input data, the photonqa version or the scenario name changed;
//! - a failed point fails with another message (messages hold paths that differ between
//!   machines).
//!
//! Points are matched by id (the id hashes the concrete pipeline). Timing is never compared.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde_json::{Map, Value};

use super::baseline::{Baseline, BaselinePoint, gated_value};
use super::one_line;
use crate::metrics::values::plain;
use crate::runner::provenance::changed_side_files;
use crate::runner::results::{PointResult, Status};
use crate::scenario::tolerances::{Tolerance, Tolerances, gated_columns, plain_number, toml_key};

/// The outcome of a check: every comparison made, and notes.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Scenario name of the baseline.
    pub scenario: String,
    /// Information that does not fail the gate (scenario file or input changed, ...).
    pub notes: Vec<String>,
    /// One case per column of the baseline or the run: a drift when on one side only.
    pub columns: Vec<Case>,
    /// The points of the baseline in its order, then the run's new points in sweep order.
    pub points: Vec<PointReport>,
}

/// The comparisons of one working point.
#[derive(Debug, Clone, PartialEq)]
pub struct PointReport {
    /// Id of the point in the run (in the baseline when it is missing from the run).
    pub point_id: String,
    /// Its swept parameters.
    pub params: Map<String, Value>,
    /// Its cases: `point_id` when the id changed, `status`, then one per shared column
    /// (neither for a point on one side only, which has the single case `point`).
    pub cases: Vec<Case>,
}

/// One comparison: a test case in JUnit terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// A column, or `status`, `point`, `point_id`.
    pub name: String,
    /// The baseline's value, if it has one.
    pub old: Option<Value>,
    /// The run's value, if it has one.
    pub new: Option<Value>,
    /// What drifted; `None` when the case passed.
    pub drift: Option<Drift>,
}

/// Where the tolerance of a comparison came from (see [`super::tolerance`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// The `[gate.tolerances]` entry with this key.
    Entry(String),
    /// Both values are JSON integers: exact.
    Integer,
    /// The default for floats.
    Default,
}

/// How a case failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Drift {
    /// Finite numbers further apart than the tolerance allows.
    Beyond {
        /// `|new - old|`.
        difference: f64,
        /// `max(abs, rel * |old|)`.
        allowed: f64,
        /// The tolerance applied.
        tolerance: Tolerance,
        /// Where it came from.
        rule: Rule,
    },
    /// Values that are not both finite numbers differ: `inf -> 41.2`, `nan -> inf`, a
    /// number -> null.
    Changed,
    /// The baseline has the value (or column), the run does not.
    MissingFromRun,
    /// The run has the value (or column), the baseline does not.
    NotInBaseline,
    /// The status changed (`old`, `new` are `"ok"`, `"error"`).
    StatusChanged {
        /// The error message of the failing side.
        error: Option<String>,
    },
    /// The baseline's point is not in the run.
    PointMissing,
    /// The run's point is not in the baseline.
    PointNew,
    /// The run holds the point id more than once.
    PointTwice,
    /// The point id changed but the swept parameters did not: the pipeline changed.
    PipelineChanged,
}

impl Drift {
    /// A short name of the kind of drift (the JUnit failure type).
    pub fn kind(&self) -> &'static str {
        match self {
            Drift::Beyond { .. } => "beyond-tolerance",
            Drift::Changed => "changed",
            Drift::MissingFromRun => "missing-from-run",
            Drift::NotInBaseline => "not-in-baseline",
            Drift::StatusChanged { .. } => "status-changed",
            Drift::PointMissing => "point-missing",
            Drift::PointNew => "point-new",
            Drift::PointTwice => "point-twice",
            Drift::PipelineChanged => "pipeline-changed",
        }
    }
}

impl Case {
    fn pass(name: &str, old: Option<Value>, new: Option<Value>) -> Case {
        Case {
            name: name.to_string(),
            old,
            new,
            drift: None,
        }
    }

    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.drift.is_none()
    }

    /// What happened, without the point: `psnr 41.2 -> 40.9 (|diff| 0.3 > tol 4.12e-8: ...)`.
    pub fn describe(&self) -> String {
        let old = self.old.as_ref().map(plain).unwrap_or_else(|| "-".into());
        let new = self.new.as_ref().map(plain).unwrap_or_else(|| "-".into());
        let name = &self.name;
        match &self.drift {
            None if self.old == self.new => format!("{name} {old} (unchanged)"),
            None => format!("{name} {old} -> {new} (within tolerance)"),
            Some(Drift::Beyond {
                difference,
                allowed,
                tolerance,
                rule,
            }) => {
                let why = match rule {
                    Rule::Entry(key) => format!("[gate.tolerances] {} {tolerance}", toml_key(key)),
                    Rule::Integer => "integer values are exact".into(),
                    Rule::Default => format!("default {tolerance}"),
                };
                let (difference, allowed) = distinct(*difference, *allowed);
                format!("{name} {old} -> {new} (|diff| {difference} > tol {allowed}: {why})")
            }
            Some(Drift::Changed) => format!("{name} {old} -> {new}"),
            Some(Drift::MissingFromRun) => format!("{name} {old} -> missing from the run"),
            Some(Drift::NotInBaseline) => format!("{name} not in the baseline (run: {new})"),
            Some(Drift::StatusChanged { error }) => match error {
                Some(e) => format!("status {old} -> {new}: {}", one_line(e)),
                None => format!("status {old} -> {new}"),
            },
            Some(Drift::PointMissing) => "in the baseline but not in the run".into(),
            Some(Drift::PointNew) => "in the run but not in the baseline".into(),
            Some(Drift::PointTwice) => "appears twice in the run".into(),
            Some(Drift::PipelineChanged) => {
                format!("id {old} -> {new}: the pipeline changed (same swept parameters)")
            }
        }
    }
}

/// The report line of a column case: `column NAME: ...`.
pub(crate) fn column_line(case: &Case) -> String {
    let what = match case.drift {
        None => "in the baseline and the run",
        Some(Drift::MissingFromRun) => "in the baseline but not measured by the run",
        Some(_) => "measured by the run but not in the baseline",
    };
    format!("column {}: {what}", case.name)
}

impl PointReport {
    /// `wp-0a1b2c3d4e (quantize.bits=8, deflate.level=6)`, or the id alone without parameters.
    pub fn label(&self) -> String {
        if self.params.is_empty() {
            return self.point_id.clone();
        }
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={}", plain(v)))
            .collect();
        format!("{} ({})", self.point_id, params.join(", "))
    }

    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        self.cases.iter().all(Case::passed)
    }
}

impl Report {
    /// Whether nothing drifted (notes do not count).
    pub fn passed(&self) -> bool {
        self.columns.iter().all(Case::passed) && self.points.iter().all(PointReport::passed)
    }

    /// Number of comparisons (test cases).
    pub fn case_count(&self) -> usize {
        self.columns.len() + self.points.iter().map(|p| p.cases.len()).sum::<usize>()
    }

    /// Number of drifts (failed cases).
    pub fn drift_count(&self) -> usize {
        self.lines().len()
    }

    /// One line per drift: `column ...` for a column on one side only, then
    /// `point ID (PARAMS): ...` in point order.
    pub fn lines(&self) -> Vec<String> {
        let columns = self.columns.iter().filter(|c| !c.passed()).map(column_line);
        let points = self.points.iter().flat_map(|p| {
            let label = p.label();
            p.cases
                .iter()
                .filter(|c| !c.passed())
                .map(move |c| format!("point {label}: {}", c.describe()))
        });
        columns.chain(points).collect()
    }

    /// One line: `gate passed: 40 checks on 4 points, no drift` or
    /// `gate failed: 3 drifts (2 of 4 points, 1 column) in 40 checks`.
    pub fn summary(&self) -> String {
        let checks = self.case_count();
        let points = self.points.len();
        if self.passed() {
            return format!(
                "gate passed: {checks} {} on {points} {}, no drift",
                plural(checks, "check"),
                plural(points, "point")
            );
        }
        let drifts = self.drift_count();
        let drifted_points = self.points.iter().filter(|p| !p.passed()).count();
        let drifted_columns = self.columns.iter().filter(|c| !c.passed()).count();
        let mut parts = Vec::new();
        if drifted_points > 0 {
            parts.push(format!(
                "{drifted_points} of {points} {}",
                plural(points, "point")
            ));
        }
        if drifted_columns > 0 {
            parts.push(format!(
                "{drifted_columns} {}",
                plural(drifted_columns, "column")
            ));
        }
        format!(
            "gate failed: {drifts} {} ({}) in {checks} {}",
            plural(drifts, "drift"),
            parts.join(", "),
            plural(checks, "check")
        )
    }
}

impl fmt::Display for Report {
    /// Notes (`note: ...`), one line per drift, and the summary, each on its own line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        for line in self.lines() {
            writeln!(f, "{line}")?;
        }
        write!(f, "{}", self.summary())
    }
}

/// Compares `rows` (a fresh run; any order) with `baseline`: every gated value of every point
/// under `tolerances`. `columns` are the run's metric columns (`RunSummary::columns`); the rate
/// columns are added and timing left out as in [`Baseline::from_rows`].
pub fn check(
    baseline: &Baseline,
    rows: &[PointResult],
    columns: &[String],
    tolerances: &Tolerances,
) -> Report {
    let run_columns = gated_columns(columns);
    let mut report = Report {
        scenario: baseline.scenario.clone(),
        notes: provenance_notes(baseline, rows),
        columns: Vec::new(),
        points: Vec::new(),
    };

    // Columns on one side only fail once here; points compare the shared ones.
    for column in &baseline.columns {
        let drift = (!run_columns.contains(column)).then_some(Drift::MissingFromRun);
        report.columns.push(Case {
            drift,
            ..Case::pass(column, None, None)
        });
    }
    for column in run_columns.iter().filter(|c| !baseline.columns.contains(c)) {
        report.columns.push(Case {
            drift: Some(Drift::NotInBaseline),
            ..Case::pass(column, None, None)
        });
    }
    let shared: Vec<&str> = baseline
        .columns
        .iter()
        .filter(|c| run_columns.contains(c))
        .map(String::as_str)
        .collect();

    // The run's rows in sweep order, each id once; repeats are drifts of their own.
    let mut ordered: Vec<&PointResult> = rows.iter().collect();
    ordered.sort_by_key(|r| r.index);
    let mut seen = HashSet::new();
    let mut run = Vec::new();
    let mut twice = Vec::new();
    for row in ordered {
        if seen.insert(row.point_id.as_str()) {
            run.push(row);
        } else {
            twice.push(row);
        }
    }

    let matches = match_points(baseline, &run);
    let mut used = vec![false; run.len()];
    for (point, matched) in baseline.points.iter().zip(&matches) {
        match *matched {
            Some(r) => {
                used[r] = true;
                let (cases, note) = compare_point(point, run[r], &shared, tolerances);
                report.notes.extend(note);
                report.points.push(PointReport {
                    point_id: run[r].point_id.clone(),
                    params: run[r].params.clone(),
                    cases,
                });
            }
            None => report.points.push(PointReport {
                point_id: point.point_id.clone(),
                params: point.params.clone(),
                cases: vec![Case {
                    drift: Some(Drift::PointMissing),
                    ..Case::pass("point", Some(Value::from(point.point_id.clone())), None)
                }],
            }),
        }
    }
    let new_points = run.iter().zip(&used).filter(|(_, used)| !**used);
    for (row, drift) in new_points
        .map(|(row, _)| (*row, Drift::PointNew))
        .chain(twice.into_iter().map(|row| (row, Drift::PointTwice)))
    {
        report.points.push(PointReport {
            point_id: row.point_id.clone(),
            params: row.params.clone(),
            cases: vec![Case {
                drift: Some(drift),
                ..Case::pass("point", None, Some(Value::from(row.point_id.clone())))
            }],
        });
    }
    report
}

/// For each baseline point, the index in `run` of its match: the row with its id, else the one
/// row with its swept parameters when exactly one unmatched baseline point and one unmatched row
/// have them (a change of a fixed stage changes every id but no parameter).
fn match_points(baseline: &Baseline, run: &[&PointResult]) -> Vec<Option<usize>> {
    let by_id: HashMap<&str, usize> = run
        .iter()
        .enumerate()
        .map(|(i, r)| (r.point_id.as_str(), i))
        .collect();
    let mut matches: Vec<Option<usize>> = baseline
        .points
        .iter()
        .map(|p| by_id.get(p.point_id.as_str()).copied())
        .collect();
    let mut used = vec![false; run.len()];
    for r in matches.iter().flatten() {
        used[*r] = true;
    }
    let unmatched: Vec<usize> = (0..matches.len())
        .filter(|&b| matches[b].is_none())
        .collect();
    for &b in &unmatched {
        let params = &baseline.points[b].params;
        let rows: Vec<usize> = (0..run.len())
            .filter(|&r| !used[r] && run[r].params == *params)
            .collect();
        let twins = unmatched
            .iter()
            .filter(|&&o| baseline.points[o].params == *params)
            .count();
        if let ([r], 1) = (rows.as_slice(), twins) {
            matches[b] = Some(*r);
            used[*r] = true;
        }
    }
    matches
}

/// The cases of a point present on both sides, and a note when a failed point fails otherwise.
fn compare_point(
    old: &BaselinePoint,
    new: &PointResult,
    shared: &[&str],
    tolerances: &Tolerances,
) -> (Vec<Case>, Option<String>) {
    let mut cases = Vec::new();
    if old.point_id != new.point_id {
        cases.push(Case {
            drift: Some(Drift::PipelineChanged),
            ..Case::pass(
                "point_id",
                Some(Value::from(old.point_id.clone())),
                Some(Value::from(new.point_id.clone())),
            )
        });
    }
    let status = |s: Status| Value::from(if s == Status::Ok { "ok" } else { "error" });
    let mut status_case = Case::pass("status", Some(status(old.status)), Some(status(new.status)));
    if old.status != new.status {
        let error = if new.status == Status::Error {
            &new.error
        } else {
            &old.error
        };
        status_case.drift = Some(Drift::StatusChanged {
            error: error.clone(),
        });
        // The values of a point that now fails (or now works) say nothing more.
        cases.push(status_case);
        return (cases, None);
    }
    cases.push(status_case);
    if old.status == Status::Error {
        let note = (old.error != new.error).then(|| {
            format!(
                "point {} fails with another error: {}",
                new.point_id,
                one_line(new.error.as_deref().unwrap_or("(none)"))
            )
        });
        return (cases, note);
    }
    for column in shared {
        cases.push(compare_value(
            column,
            old.values.get(*column).cloned(),
            gated_value(new, column),
            tolerances,
        ));
    }
    (cases, None)
}

/// A value as the gate compares it.
#[derive(Debug, Clone, Copy)]
enum Number {
    /// A JSON integer (compared exactly unless an entry says otherwise).
    Integer(i128),
    /// A JSON float, or a non-finite value written as `"inf"`, `"-inf"`, `"nan"`.
    Float(f64),
}

impl Number {
    fn of(value: &Value) -> Option<Number> {
        match value {
            Value::Number(n) => n
                .as_i64()
                .map(|i| Number::Integer(i.into()))
                .or_else(|| n.as_u64().map(|u| Number::Integer(u.into())))
                .or_else(|| n.as_f64().map(Number::Float)),
            // Only metric_json's spellings: another string is a value to compare as text.
            Value::String(s) => match s.as_str() {
                "inf" => Some(Number::Float(f64::INFINITY)),
                "-inf" => Some(Number::Float(f64::NEG_INFINITY)),
                "nan" => Some(Number::Float(f64::NAN)),
                _ => None,
            },
            _ => None,
        }
    }

    fn to_f64(self) -> f64 {
        match self {
            Number::Integer(i) => i as f64,
            Number::Float(x) => x,
        }
    }
}

/// Compares one value of `column`: the rules of [`super::tolerance`] for numbers, equality for
/// anything else (null, text).
fn compare_value(
    column: &str,
    old: Option<Value>,
    new: Option<Value>,
    tolerances: &Tolerances,
) -> Case {
    let drift = match (&old, &new) {
        (None, None) => None,
        (Some(_), None) => Some(Drift::MissingFromRun),
        (None, Some(_)) => Some(Drift::NotInBaseline),
        (Some(a), Some(b)) => match (Number::of(a), Number::of(b)) {
            (Some(x), Some(y)) => compare_numbers(column, x, y, tolerances),
            _ => (a != b).then_some(Drift::Changed),
        },
    };
    Case {
        drift,
        ..Case::pass(column, old, new)
    }
}

/// Compares two numbers of `column`; `None` when they pass.
fn compare_numbers(
    column: &str,
    old: Number,
    new: Number,
    tolerances: &Tolerances,
) -> Option<Drift> {
    let entry = tolerances.entry(column);
    let (tolerance, rule) = match (entry, old, new) {
        (Some((key, t)), _, _) => (t, Rule::Entry(key.to_string())),
        (None, Number::Integer(_), Number::Integer(_)) => (Tolerance::EXACT, Rule::Integer),
        (None, _, _) => (tolerances.default_tolerance(), Rule::Default),
    };
    let difference = match (old, new) {
        // In i128 so that byte counts beyond 2^53 still differ by their exact amount.
        (Number::Integer(a), Number::Integer(b)) => (b - a).unsigned_abs() as f64,
        _ => {
            let (a, b) = (old.to_f64(), new.to_f64());
            if !(a.is_finite() && b.is_finite()) {
                // inf == inf and nan == nan pass; any other change involving them is a change
                // no tolerance can measure.
                let same = a == b || (a.is_nan() && b.is_nan());
                return (!same).then_some(Drift::Changed);
            }
            (b - a).abs()
        }
    };
    let allowed = tolerance.allowed(old.to_f64());
    (difference > allowed).then_some(Drift::Beyond {
        difference,
        allowed,
        tolerance,
        rule,
    })
}

/// Notes on what changed around the values: scenario name and file, input, photonqa version.
fn provenance_notes(baseline: &Baseline, rows: &[PointResult]) -> Vec<String> {
    let Some(run) = rows.first().map(|r| &r.provenance) else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    if run.scenario != baseline.scenario {
        notes.push(format!(
            "scenario name {} -> {}",
            baseline.scenario, run.scenario
        ));
    }
    if run.scenario_hash != baseline.scenario_hash {
        notes.push(format!(
            "the scenario file changed since the baseline (hash {} -> {}); only values are gated",
            abbreviate(&baseline.scenario_hash),
            abbreviate(&run.scenario_hash)
        ));
    }
    if let Some(hash) = &baseline.input_hash
        && *hash != run.input_hash
    {
        notes.push(format!(
            "the input data changed since the baseline (hash {} -> {})",
            abbreviate(hash),
            abbreviate(&run.input_hash)
        ));
    }
    let side_files = changed_side_files(&baseline.side_files, &run.side_files);
    if !side_files.is_empty() {
        notes.push(format!(
            "the side files changed since the baseline: {}",
            side_files.join(", ")
        ));
    }
    if run.photonqa_version != baseline.photonqa_version {
        notes.push(format!(
            "photonqa {} blessed the baseline, {} ran the check",
            baseline.photonqa_version, run.photonqa_version
        ));
    }
    notes
}

/// The first 12 characters of a hash: enough to tell two apart in a note.
fn abbreviate(hash: &str) -> &str {
    hash.char_indices()
        .nth(12)
        .map_or(hash, |(i, _)| &hash[..i])
}

/// `a` and `b` to 3 significant digits, or to as many more as they need to read differently
/// (a value just beyond its tolerance must not read `|diff| 2 > tol 2`).
fn distinct(a: f64, b: f64) -> (String, String) {
    (3..=17)
        .map(|digits| (significant(a, digits), significant(b, digits)))
        .find(|(x, y)| x != y)
        .unwrap_or_else(|| (plain_number(a), plain_number(b)))
}

/// `x` to `digits` significant digits, in decimal between 1e-4 and 1e6, else in exponent form;
/// trailing zeros dropped.
fn significant(x: f64, digits: usize) -> String {
    if x == 0.0 || !x.is_finite() {
        return plain_number(x);
    }
    let precision = digits.saturating_sub(1);
    let scientific = format!("{x:.precision$e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) {
        let decimals = (precision as i32 - exponent).max(0) as usize;
        trim_zeros(&format!("{x:.decimals$}")).to_string()
    } else {
        format!("{}e{exponent}", trim_zeros(mantissa))
    }
}

/// `4.10` -> `4.1`, `3.00` -> `3`; integers unchanged.
fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::gate::fixtures::{columns, failed_row, row, rows};
    use crate::metrics::values::metric_json;

    fn bless(rows: &[PointResult]) -> Baseline {
        Baseline::from_rows("demo", "hash0", rows, &columns()).unwrap()
    }

    fn run(baseline: &Baseline, rows: &[PointResult]) -> Report {
        check(baseline, rows, &columns(), &Tolerances::default())
    }

    fn with_psnr(mut rows: Vec<PointResult>, point: usize, psnr: Value) -> Vec<PointResult> {
        rows[point].distortion.insert("psnr".into(), psnr);
        rows
    }

    #[test]
    fn unchanged_rows_pass() {
        let rows = rows();
        let report = run(&bless(&rows), &rows);
        assert!(report.passed(), "{report}");
        assert!(report.notes.is_empty(), "{:?}", report.notes);
        assert_eq!(report.lines(), Vec::<String>::new());
        // 10 columns, and per point a status case plus 10 values.
        assert_eq!(report.case_count(), 10 + 3 * 11);
        assert_eq!(
            report.summary(),
            "gate passed: 43 checks on 3 points, no drift"
        );
        assert_eq!(report.to_string(), report.summary());
    }

    #[test]
    fn row_order_does_not_matter() {
        let rows = rows();
        let mut shuffled = rows.clone();
        shuffled.swap(0, 2);
        assert!(run(&bless(&rows), &shuffled).passed());
    }

    #[test]
    fn value_beyond_tolerance_fails_naming_point_and_column() {
        let baseline = bless(&rows());
        let report = run(&baseline, &with_psnr(rows(), 1, json!(41.0)));
        assert!(!report.passed());
        assert_eq!(
            report.lines(),
            [
                "point wp-b (quantize.bits=6, deflate.level=6): psnr 41.25 -> 41.0 (|diff| 0.25 > tol 4.13e-8: default rel 1e-9, abs 1e-12)"
            ]
        );
        assert_eq!(
            report.summary(),
            "gate failed: 1 drift (1 of 3 points) in 43 checks"
        );
        let case = &report.points[1].cases[6];
        assert_eq!(case.name, "psnr");
        assert!(matches!(
            case.drift,
            Some(Drift::Beyond { difference, rule: Rule::Default, .. }) if difference == 0.25
        ));
    }

    #[test]
    fn relative_tolerance_boundary() {
        // rel 2^-4 of 32 = 2: a move of exactly 2 passes, the next float beyond fails.
        let baseline = bless(&with_psnr(rows(), 0, json!(32.0)));
        let mut t = Tolerances::default();
        t.set(
            "psnr",
            Tolerance {
                abs: 0.0,
                rel: 0.0625,
            },
        );
        let at = with_psnr(rows(), 0, json!(34.0));
        assert!(check(&baseline, &at, &columns(), &t).passed());
        let below = with_psnr(rows(), 0, json!(30.0));
        assert!(check(&baseline, &below, &columns(), &t).passed());
        let beyond = with_psnr(rows(), 0, json!(34.00000000000001));
        let report = check(&baseline, &beyond, &columns(), &t);
        assert_eq!(
            report.lines(),
            [
                "point wp-a (quantize.bits=4, deflate.level=6): psnr 32.0 -> 34.00000000000001 (|diff| 2.00000000000001 > tol 2: [gate.tolerances] psnr rel 0.0625)"
            ]
        );
    }

    #[test]
    fn absolute_tolerance_boundary_and_metric_entry() {
        // porosity_abs_change is 0 in the baseline: only an absolute tolerance can pass a move.
        let baseline = bless(&rows());
        let moved = |x: f64| {
            let mut rows = rows();
            rows[2].science["porosity"]["porosity_abs_change"] = json!(x);
            rows
        };
        let mut t = Tolerances::default();
        t.set(
            "porosity",
            Tolerance {
                abs: 0.125,
                rel: 0.5,
            },
        );
        assert!(check(&baseline, &moved(0.125), &columns(), &t).passed());
        assert!(check(&baseline, &moved(-0.125), &columns(), &t).passed());
        let report = check(&baseline, &moved(0.1250000000000001), &columns(), &t);
        assert_eq!(report.drift_count(), 1);
        assert!(report.lines()[0].contains(
            "porosity.porosity_abs_change 0.0 -> 0.1250000000000001 (|diff| 0.1250000000000001 > tol 0.125: [gate.tolerances] porosity rel 0.5, abs 0.125)"
        ));
        // The default's abs 1e-12 covers rounding noise around 0, not more.
        assert!(run(&baseline, &moved(1e-12)).passed());
        assert!(!run(&baseline, &moved(2e-12)).passed());
    }

    #[test]
    fn default_tolerance_absorbs_last_bit_noise() {
        let baseline = bless(&rows());
        let noisy = with_psnr(rows(), 1, json!(41.25 * (1.0 + 4.0 * f64::EPSILON)));
        assert!(run(&baseline, &noisy).passed());
    }

    #[test]
    fn integer_columns_are_exact_unless_an_entry_says_otherwise() {
        let baseline = bless(&rows());
        let mut changed = rows();
        changed[0].rate.as_mut().unwrap().compressed_bytes = 513;
        changed[0].science["porosity"]["pore_count_change"] = json!(-1);
        let report = run(&baseline, &changed);
        assert_eq!(
            report.lines(),
            [
                "point wp-a (quantize.bits=4, deflate.level=6): compressed_bytes 512 -> 513 (|diff| 1 > tol 0: integer values are exact)",
                "point wp-a (quantize.bits=4, deflate.level=6): porosity.pore_count_change -2 -> -1 (|diff| 1 > tol 0: integer values are exact)",
            ]
        );
        // A generous default does not loosen integers ...
        let mut t = Tolerances::default();
        t.set_default(Tolerance {
            abs: 10.0,
            rel: 0.0,
        });
        assert_eq!(check(&baseline, &changed, &columns(), &t).drift_count(), 2);
        // ... but an entry of the column does.
        t.set("compressed_bytes", Tolerance { abs: 1.0, rel: 0.0 });
        t.set(
            "porosity.pore_count_change",
            Tolerance { abs: 1.0, rel: 0.0 },
        );
        assert!(check(&baseline, &changed, &columns(), &t).passed());
    }

    #[test]
    fn huge_byte_counts_are_compared_exactly() {
        let mut rows = rows();
        rows[0].rate.as_mut().unwrap().original_bytes = 1 << 60;
        let baseline = bless(&rows);
        rows[0].rate.as_mut().unwrap().original_bytes += 1;
        let report = run(&baseline, &rows);
        assert_eq!(report.drift_count(), 1, "{report}");
    }

    #[test]
    fn timing_is_ignored_even_when_it_differs() {
        let baseline = bless(&rows());
        let mut slower = rows();
        for row in &mut slower {
            let rate = row.rate.as_mut().unwrap();
            rate.encode_mb_s /= 3.0;
            rate.decode_mb_s = f64::NAN;
        }
        // Even when a caller lists timing among the columns.
        let mut cols = columns();
        cols.push("encode_mb_s".into());
        let report = check(&baseline, &slower, &cols, &Tolerances::default());
        assert!(report.passed(), "{report}");
        let names: Vec<&str> = report.points[0]
            .cases
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert!(!names.contains(&"encode_mb_s") && !names.contains(&"decode_mb_s"));
    }

    #[test]
    fn missing_and_new_points_are_drifts() {
        let baseline = bless(&rows());
        let mut changed = rows();
        changed.remove(1);
        changed.push(row("wp-d", 3, 10, 60.0));
        let report = run(&baseline, &changed);
        assert_eq!(
            report.lines(),
            [
                "point wp-b (quantize.bits=6, deflate.level=6): in the baseline but not in the run",
                "point wp-d (quantize.bits=10, deflate.level=6): in the run but not in the baseline",
            ]
        );
        assert_eq!(
            report.summary(),
            "gate failed: 2 drifts (2 of 4 points) in 34 checks"
        );
    }

    #[test]
    fn changed_pipeline_with_same_params_is_matched_and_compared() {
        let baseline = bless(&rows());
        let mut changed = rows();
        changed[2].point_id = "wp-c2".into();
        changed[2].distortion.insert("psnr".into(), json!(50.0));
        let report = run(&baseline, &changed);
        assert_eq!(
            report.lines(),
            [
                "point wp-c2 (quantize.bits=8, deflate.level=6): id wp-c -> wp-c2: the pipeline changed (same swept parameters)",
                "point wp-c2 (quantize.bits=8, deflate.level=6): psnr 52.0 -> 50.0 (|diff| 2 > tol 5.2e-8: default rel 1e-9, abs 1e-12)",
            ]
        );
    }

    #[test]
    fn ambiguous_params_are_not_matched() {
        // Two points with the same params (impossible from one sweep, possible by hand) whose
        // ids both changed: which is which is unknown, so neither is matched by params.
        let mut rows = rows();
        rows[1].params = rows[0].params.clone();
        let baseline = bless(&rows);
        let mut changed = rows.clone();
        changed[0].point_id = "wp-x".into();
        changed[1].point_id = "wp-y".into();
        let report = run(&baseline, &changed);
        assert_eq!(
            report.lines(),
            [
                "point wp-a (quantize.bits=4, deflate.level=6): in the baseline but not in the run",
                "point wp-b (quantize.bits=4, deflate.level=6): in the baseline but not in the run",
                "point wp-x (quantize.bits=4, deflate.level=6): in the run but not in the baseline",
                "point wp-y (quantize.bits=4, deflate.level=6): in the run but not in the baseline",
            ]
        );
        // With one of them kept, the other is the only candidate and is matched.
        changed[1].point_id = "wp-b".into();
        let report = run(&baseline, &changed);
        assert_eq!(report.drift_count(), 1);
        assert_eq!(
            report.points[0].cases[0].drift,
            Some(Drift::PipelineChanged)
        );
    }

    #[test]
    fn status_change_is_a_drift_with_the_error() {
        let mut rows = rows();
        rows.push(failed_row("wp-f", 3, "stage zfp: rate 0 is too low"));
        let baseline = bless(&rows);
        let mut changed = rows.clone();
        // A message over two lines still gives one line per drift.
        changed[0] = failed_row("wp-a", 0, "stage deflate:\n  out of memory");
        changed[0].params = rows[0].params.clone();
        changed[3] = row("wp-f", 3, 2, 20.0);
        changed[3].params = rows[3].params.clone();
        let report = run(&baseline, &changed);
        assert_eq!(
            report.lines(),
            [
                "point wp-a (quantize.bits=4, deflate.level=6): status ok -> error: stage deflate: out of memory",
                "point wp-f (quantize.bits=2, deflate.level=9): status error -> ok: stage zfp: rate 0 is too low",
            ]
        );
        // The failing point's values are not listed as missing.
        assert_eq!(report.points[0].cases.len(), 1);
    }

    #[test]
    fn failed_points_pass_when_still_failing_and_note_another_message() {
        let mut rows = rows();
        rows.push(failed_row("wp-f", 3, "/home/a/v.h5: too small"));
        let baseline = bless(&rows);
        assert!(run(&baseline, &rows).passed());
        rows[3].error = Some("/ci/v.h5: too small".into());
        let report = run(&baseline, &rows);
        assert!(report.passed());
        assert_eq!(
            report.notes,
            ["point wp-f fails with another error: /ci/v.h5: too small"]
        );
        assert!(report.to_string().starts_with("note: point wp-f fails"));
    }

    #[test]
    fn equal_non_finite_values_pass_and_differing_ones_fail() {
        let mut base_rows = with_psnr(rows(), 0, metric_json(f64::INFINITY));
        base_rows[1]
            .distortion
            .insert("mse".into(), metric_json(f64::NAN));
        base_rows[2]
            .distortion
            .insert("psnr".into(), metric_json(f64::NEG_INFINITY));
        let baseline = bless(&base_rows);
        assert!(run(&baseline, &base_rows).passed());

        let mut changed = base_rows.clone();
        changed[0].distortion.insert("psnr".into(), json!(99.0));
        changed[1]
            .distortion
            .insert("mse".into(), metric_json(f64::INFINITY));
        changed[2]
            .distortion
            .insert("psnr".into(), metric_json(f64::INFINITY));
        let mut t = Tolerances::default();
        // Even an infinite tolerance does not pass a change to or from a non-finite value.
        t.set_default(Tolerance {
            abs: f64::INFINITY,
            rel: 0.0,
        });
        let report = check(&baseline, &changed, &columns(), &t);
        assert_eq!(
            report.lines(),
            [
                "point wp-a (quantize.bits=4, deflate.level=6): psnr inf -> 99.0",
                "point wp-b (quantize.bits=6, deflate.level=6): mse nan -> inf",
                "point wp-c (quantize.bits=8, deflate.level=6): psnr -inf -> inf",
            ]
        );
        assert!(
            report
                .points
                .iter()
                .flat_map(|p| &p.cases)
                .all(|c| { c.drift.is_none() || c.drift == Some(Drift::Changed) })
        );
    }

    #[test]
    fn values_present_on_one_side_only_are_drifts() {
        let baseline = bless(&rows());
        let mut changed = rows();
        changed[0].distortion.remove("ssim");
        changed[1].distortion.insert("ssim".into(), Value::Null);
        let report = run(&baseline, &changed);
        assert_eq!(
            report.lines(),
            [
                "point wp-a (quantize.bits=4, deflate.level=6): ssim 0.875 -> missing from the run",
                "point wp-b (quantize.bits=6, deflate.level=6): ssim 0.875 -> null",
            ]
        );
        // And the other way round.
        let report = run(&bless(&changed), &rows());
        assert_eq!(
            report.lines()[0],
            "point wp-a (quantize.bits=4, deflate.level=6): ssim not in the baseline (run: 0.875)"
        );
    }

    #[test]
    fn columns_on_one_side_only_fail_once() {
        let baseline = bless(&rows());
        let mut cols = columns();
        cols.retain(|c| c != "frc.resolution");
        cols.push("snr".into());
        let report = check(&baseline, &rows(), &cols, &Tolerances::default());
        assert_eq!(
            report.lines(),
            [
                "column frc.resolution: in the baseline but not measured by the run",
                "column snr: measured by the run but not in the baseline",
            ]
        );
        assert_eq!(
            report.summary(),
            "gate failed: 2 drifts (2 columns) in 41 checks"
        );
    }

    #[test]
    fn repeated_point_in_the_run_is_a_drift() {
        let baseline = bless(&rows());
        let mut changed = rows();
        changed.push(changed[0].clone());
        let report = run(&baseline, &changed);
        assert_eq!(
            report.lines(),
            ["point wp-a (quantize.bits=4, deflate.level=6): appears twice in the run"]
        );
    }

    #[test]
    fn empty_run_reports_every_point_missing() {
        let report = run(&bless(&rows()), &[]);
        assert_eq!(report.drift_count(), 3);
        assert!(report.notes.is_empty());
    }

    #[test]
    fn provenance_changes_are_notes_not_drifts() {
        let baseline = bless(&rows());
        let mut changed = rows();
        for row in &mut changed {
            row.provenance.scenario_hash = "0123456789abcdef".into();
            row.provenance.input_hash = "fedcba9876543210".into();
            row.provenance.photonqa_version = "9.9.9".into();
        }
        let report = run(&baseline, &changed);
        assert!(report.passed());
        assert_eq!(
            report.notes,
            [
                "the scenario file changed since the baseline (hash hash0 -> 0123456789ab); only values are gated",
                "the input data changed since the baseline (hash input0 -> fedcba987654)",
                &format!(
                    "photonqa {} blessed the baseline, 9.9.9 ran the check",
                    env!("CARGO_PKG_VERSION")
                ),
            ]
        );
    }

    #[test]
    fn other_strings_compare_by_equality() {
        let baseline = bless(&with_psnr(rows(), 0, json!("skipped")));
        assert!(run(&baseline, &with_psnr(rows(), 0, json!("skipped"))).passed());
        let report = run(&baseline, &with_psnr(rows(), 0, json!(30.5)));
        assert_eq!(report.points[0].cases[6].drift, Some(Drift::Changed));
    }

    #[test]
    fn significant_digits() {
        let short = |x| significant(x, 3);
        assert_eq!(short(0.3), "0.3");
        assert_eq!(short(0.30000000000000004), "0.3");
        assert_eq!(short(4.1234e-8), "4.12e-8");
        assert_eq!(short(41.25), "41.2");
        assert_eq!(short(2.0), "2");
        assert_eq!(short(12345.0), "12345");
        assert_eq!(short(1.5e9), "1.5e9");
        assert_eq!(short(9.996), "10");
        assert_eq!(short(0.0), "0");
        assert_eq!(
            distinct(2.00000000000001, 2.0),
            ("2.00000000000001".into(), "2".into())
        );
        assert_eq!(distinct(0.25, 4.125e-8), ("0.25".into(), "4.13e-8".into()));
        assert_eq!(short(f64::INFINITY), "inf");
    }
}
