//! A scenario from start to end, written once for the CLI's `run`, `check`, `bless` and
//! `merge` (and any other caller of the library): the runner measures the working points
//! (adaptively, when the scenario searches a parameter), the selection chooses one, and the
//! outputs are written: `results.csv`, `recommendation.json` (with the Pareto fronts and the
//! searches) and the report with its slice triptych.
//!
//! The layer sits above the runner, the selection, the report and the gate, and below the CLI:
//! the runner only measures and returns rows ([`runner::session()`]).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::pipeline::{Chain, ParamValue};
use crate::report;
use crate::runner::results::{self, PointResult, Status};
use crate::runner::slices::worst_slice;
use crate::runner::{self, RunOptions, RunRows, Session, units};
use crate::scenario::{Scenario, SearchSpec, WorkingPoint};
use crate::select::{self, Evaluation, Search};

/// What a run did.
pub struct RunSummary {
    /// Every row in `results.jsonl`, in sweep order (earlier rows of a resumed run included).
    pub rows: Vec<PointResult>,
    /// Points measured in this invocation.
    pub measured: usize,
    /// Points skipped because a resumed log already had them.
    pub skipped: usize,
    /// The scalar metric columns of the table and `results.csv`.
    pub columns: Vec<String>,
    /// `OUT/recommendation.json`: the chosen point, or why none passes, and the Pareto fronts.
    pub recommendation: Value,
}

impl RunSummary {
    /// The summary of `run`, whose outputs made `recommendation`.
    fn of(run: RunRows, recommendation: Value) -> RunSummary {
        let RunRows {
            rows,
            measured,
            skipped,
            columns,
        } = run;
        RunSummary {
            rows,
            measured,
            skipped,
            columns,
            recommendation,
        }
    }
}

/// The environment variable that allows commands as `--allow-commands` does.
pub const ALLOW_COMMANDS_ENV: &str = "PHOTONQA_ALLOW_COMMANDS";

/// Whether shell commands may run: `allowed` (`--allow-commands`), or
/// PHOTONQA_ALLOW_COMMANDS=1.
pub fn commands_allowed(allowed: bool) -> bool {
    allowed || std::env::var_os(ALLOW_COMMANDS_ENV).is_some_and(|v| v == "1")
}

/// Refuses `scenario`, before anything runs, when it declares shell commands (`command` stages
/// and analyses) that the user did not allow ([`commands_allowed`]): a scenario file from
/// someone else is code.
pub fn refuse_commands(scenario: &Scenario, allowed: bool) -> Result<(), String> {
    let commands = scenario.commands();
    if commands.is_empty() || commands_allowed(allowed) {
        return Ok(());
    }
    Err(format!(
        "{}: runs shell commands, refused without --allow-commands (or {ALLOW_COMMANDS_ENV}=1): {}",
        scenario.path.display(),
        commands
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    ))
}

/// Runs a scenario: measures every working point not already in `OUT/results.jsonl` (by
/// adaptive searches, when the scenario has one), then writes the outputs
/// ([`write_outputs`]) while `OUT` is still locked.
pub fn run(scenario: &Scenario, options: &RunOptions) -> Result<RunSummary, String> {
    runner::session(scenario, options, None, |session| {
        let searches = match &scenario.search {
            None => {
                session.measure_all()?;
                None
            }
            Some(search) => Some(search_families(scenario, search, session)?),
        };
        let run = session.finish();
        let recommendation = write_outputs(
            scenario,
            (&options.out, &run.rows, &run.columns),
            searches,
            (options.memory_budget, options.threads),
        )?;
        Ok(RunSummary::of(run, recommendation))
    })
}

/// [`run`] with `options` into `out`, or (`None`) into a temporary directory removed afterwards
/// (`options.out` is replaced): the reruns of `check` and `bless`, whose results are kept only
/// on request.
pub fn run_kept_or_temporary(
    scenario: &Scenario,
    out: Option<PathBuf>,
    options: RunOptions,
) -> Result<RunSummary, String> {
    let temporary = match out {
        Some(_) => None,
        None => Some(
            tempfile::tempdir().map_err(|e| format!("cannot make a temporary directory: {e}"))?,
        ),
    };
    let out = out.unwrap_or_else(|| temporary.as_ref().expect("made above").path().to_path_buf());
    run(scenario, &RunOptions { out, ..options })
}

/// Merges the units of `scenario` in `out` ([`units::merge`]) and writes the outputs as `run`
/// writes them, while `out` is still locked.
pub fn merge(
    scenario: &Scenario,
    out: &Path,
    resources: (u64, Option<usize>),
) -> Result<RunSummary, String> {
    // `merged` keeps `out` locked until the outputs are written.
    let merged = units::merge(scenario, out, resources)?;
    let run = merged.run;
    let recommendation = write_outputs(scenario, (out, &run.rows, &run.columns), None, resources)?;
    Ok(RunSummary::of(run, recommendation))
}

/// Searches the scenario's adaptive parameter `search` in each family of points (the points
/// that share the values of every other swept parameter): measures the values the search
/// asks for, and the family's whole grid when the search finds the points not monotone.
/// Returns the searches' reports, for `recommendation.json`.
fn search_families(
    scenario: &Scenario,
    search: &SearchSpec,
    session: &mut Session,
) -> Result<Vec<Value>, String> {
    let points = session.take_points();
    // Values off the grid are numbered after it, in the (deterministic) order the searches
    // reach them, so a resumed run numbers them alike.
    let mut next_index = points.len();
    let mut searches = Vec::new();
    for family in families(points, &search.label) {
        let template = family[0].0.clone();
        let mut evaluate = |value: f64| -> Result<Evaluation, String> {
            let value = if search.interval.integer {
                ParamValue::Int(value as i64)
            } else {
                ParamValue::Float(value)
            };
            let at = (search.stage, search.param, search.label.as_str());
            let mut point = template.with_value(at, value, next_index);
            match family.iter().find(|(p, _)| p.id == point.id) {
                Some((on_grid, _)) => point.index = on_grid.index,
                None => next_index += 1,
            }
            let chain = session.build_chain(&point)?;
            let id = point.id.clone();
            session.measure(vec![(point, chain)])?;
            let row = session.row(&id).expect("measured or logged above");
            Evaluation::of(&row, &scenario.limits, &scenario.objective)
        };
        let result = select::search(&search.interval, &mut evaluate)?;
        if result.falls_back() {
            session.measure(family)?;
        }
        searches.push(search_json(search, &template, &result));
    }
    Ok(searches)
}

/// The report of `result`, the search of `search` in the family of `template`.
fn search_json(search: &SearchSpec, template: &WorkingPoint, result: &Search) -> Value {
    let others: Map<String, Value> = template
        .swept
        .iter()
        .filter(|(k, _)| *k != search.label)
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::to_value(v).expect("params serialise"),
            )
        })
        .collect();
    serde_json::json!({
        "parameter": search.label,
        "others": others,
        "summary": result.summary(),
        "search": result.to_json(),
    })
}

/// Writes `OUT/results.csv`, `OUT/recommendation.json` and the report (`OUT/report.html`,
/// `OUT/summary.md`, `OUT/plots/`) from the rows of every point (in sweep order) with the metric
/// columns `columns`, and returns the recommendation; `searches` are the reports of the
/// adaptive searches, when the scenario has them. The report's slice triptychs of the chosen
/// (or closest) point and of the first point to fail a limit take one more pass over the input
/// each within `resources` (memory budget, threads). A run ends with it, and so does a merge of units ([`merge`]).
pub fn write_outputs(
    scenario: &Scenario,
    (out, rows, columns): (&Path, &[PointResult], &[String]),
    searches: Option<Vec<Value>>,
    (memory_budget, threads): (u64, Option<usize>),
) -> Result<Value, String> {
    results::write_csv(out, rows, columns)?;
    let mut recommendation = select::recommendation(rows, &scenario.limits, &scenario.objective);
    let fronts = select::fronts(rows, &scenario.objective, columns, &scenario.limits);
    recommendation["pareto"] = select::pareto::fronts_json(rows, &scenario.objective, &fronts);
    if let Some(searches) = searches {
        recommendation["searches"] = Value::Array(searches);
    }
    select::write_recommendation(out, &recommendation)?;
    let selection = select::select(rows, &scenario.limits, &scenario.objective);
    // A failed point has no decoded data to show. Beside the featured point, the first to
    // fail a limit.
    let featured = report::featured(&selection)
        .filter(|(row, _)| row.status == Status::Ok)
        .map(|(row, _)| row);
    let failing = featured.and(report::first_failing(&selection, "").map(|(row, _)| row));
    let triptychs = featured
        .into_iter()
        .chain(failing)
        .map(|row| worst_slice(scenario, row, memory_budget, threads))
        .collect::<Result<Vec<_>, String>>()?;
    report::write_report(
        out,
        scenario,
        rows,
        columns,
        &scenario.limits,
        &scenario.objective,
        &triptychs,
    )?;
    Ok(recommendation)
}

/// The working points grouped by the values of every swept parameter but `searched`, in sweep
/// order: each group is one adaptive search.
fn families(points: Vec<(WorkingPoint, Chain)>, searched: &str) -> Vec<Vec<(WorkingPoint, Chain)>> {
    type Family = Vec<(WorkingPoint, Chain)>;
    let mut families: Vec<(Vec<(String, ParamValue)>, Family)> = Vec::new();
    for (point, chain) in points {
        let key: Vec<_> = point
            .swept
            .iter()
            .filter(|(k, _)| k != searched)
            .cloned()
            .collect();
        match families.iter_mut().find(|(k, _)| *k == key) {
            Some((_, family)) => family.push((point, chain)),
            None => families.push((key, vec![(point, chain)])),
        }
    }
    families.into_iter().map(|(_, family)| family).collect()
}
