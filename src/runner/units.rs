//! Units of work that run apart, on a cluster's nodes, and merge into what one `photonqa run`
//! writes.
//!
//! A unit is one working point over the whole input, addressed by the point's sweep index.
//! [`run_unit`] (`photonqa unit`) measures it as a run does and writes its finished row to
//! `DIR/units/<index>.json` (atomically); a unit that fails before it has a row leaves why in
//! `DIR/units/<index>.failed`. [`merge`] (`photonqa merge`) checks every row's provenance as
//! a resumed run checks its log (same scenario file, same input data, same chunking), orders
//! the rows by index and writes `results.jsonl`; the workflow's merge
//! (`workflow::merge`) then writes `results.csv`, `recommendation.json` and the report
//! as a run does. A point's row does not depend on which other
//! points run with it, so the merged results equal a single-machine run's bit for bit, timing
//! fields aside. `DIR/units/scenario.json` (the [`Manifest`]) names the scenario of the units.
//! Both are sealed ([`super::seal`]): a unit whose file is damaged is rerun, and never merged.
//!
//! Finer units, a point over a slab of the input, are [`super::slabs`]'s; a manifest with more
//! than one slab per point makes `survey` and `merge` theirs. An adaptive search has no units:
//! its points are chosen while it runs.

use std::fs;
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use super::lock::Lock;
use super::passes::{self, Passes};
use super::provenance::Provenance;
use super::results::{self, PointResult, Status};
use super::seal::{self, Sealed};
use super::{Plan, RunOptions, RunRows, columns, measure};
use crate::data::VolumeSource;
use crate::scenario::{Scenario, WorkingPoint};

/// The folder of the units in an output directory.
pub const UNITS_DIR: &str = "units";

/// The manifest's file name in [`UNITS_DIR`].
pub const MANIFEST: &str = "scenario.json";

/// Environment variable holding unit indices (comma-separated) that `photonqa unit` fails on
/// purpose, before measuring: fault injection, to test that a failed unit is reported and
/// resubmitted.
pub const FAIL_UNIT_ENV: &str = "PHOTONQA_FAIL_UNIT";

/// `DIR/units/<index>.json`: the finished row of unit `index`.
pub fn row_path(out: &Path, index: usize) -> PathBuf {
    out.join(UNITS_DIR).join(format!("{index}.json"))
}

/// `DIR/units/<index>.failed`: why unit `index` failed before it had a row.
pub fn failure_path(out: &Path, index: usize) -> PathBuf {
    out.join(UNITS_DIR).join(format!("{index}.failed"))
}

/// Which scenario the units of a directory belong to (`DIR/units/scenario.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The scenario file, absolute.
    pub scenario: PathBuf,
    /// Its name.
    pub name: String,
    /// BLAKE3 of its bytes (as in the rows' provenance).
    pub scenario_hash: String,
    /// Number of units: working points x slabs.
    pub units: usize,
    /// Slabs per working point: 1 for point units, more for slab units ([`super::slabs`]).
    #[serde(default = "one")]
    pub slabs: usize,
}

fn one() -> usize {
    1
}

impl Manifest {
    /// The manifest of `scenario`'s units, `slabs` per working point.
    pub fn of(scenario: &Scenario, slabs: usize) -> Result<Manifest, String> {
        let path = std::path::absolute(&scenario.path)
            .map_err(|e| format!("{}: {e}", scenario.path.display()))?;
        Ok(Manifest {
            scenario: path,
            name: scenario.name.clone(),
            scenario_hash: scenario.hash.clone(),
            units: scenario.working_points().len() * slabs,
            slabs,
        })
    }

    /// The manifest in `out`, if there is one.
    pub fn read(out: &Path) -> Result<Option<Manifest>, String> {
        let path = out.join(UNITS_DIR).join(MANIFEST);
        match seal::read(&path)? {
            Sealed::Intact(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{}: not a units manifest: {e}", path.display())),
            Sealed::Missing => Ok(None),
            // Its slabs per point say how to read every slab unit's files: not to be guessed.
            Sealed::Damaged(why) => Err(format!(
                "{why}; remove it and `photonqa submit` again with the --slabs the units ran with"
            )),
        }
    }

    /// Writes the manifest into `out` (atomically, sealed).
    pub fn write(&self, out: &Path) -> Result<(), String> {
        let path = out.join(UNITS_DIR).join(MANIFEST);
        let mut text = serde_json::to_string_pretty(self).expect("manifest serialises");
        text.push('\n');
        seal::write(&path, text.as_bytes())
    }

    /// Refuses a scenario other than the manifest's (another file, or the file changed since).
    pub fn check(&self, scenario: &Scenario, out: &Path) -> Result<(), String> {
        if self.scenario_hash != scenario.hash {
            return Err(format!(
                "{} holds units of scenario {} ({}) as it was when submitted, not of {}; use a fresh --out",
                out.display(),
                self.name,
                self.scenario.display(),
                scenario.path.display()
            ));
        }
        Ok(())
    }
}

/// A unit as its files in `DIR/units` tell.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// The unit's address: the working point's sweep index, or for slab units
    /// `point x slabs + slab`.
    pub index: usize,
    /// The working point's id, and the slab of a slab unit.
    pub label: String,
    /// What became of it.
    pub state: UnitState,
}

/// What became of a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitState {
    /// Measured.
    Done,
    /// Failed: its point failed (an error row), or the unit failed before it had a row; why.
    Failed(String),
    /// No result yet: not run, running, or ended without a trace.
    Pending,
    /// A file of its result is damaged (see [`super::seal`]); why, naming the file. It runs
    /// again as a failed unit does.
    Damaged(String),
}

impl UnitState {
    /// A point unit's state from its row and its failure record.
    fn of(row: Option<&PointResult>, failure: Option<String>) -> UnitState {
        match (row, failure) {
            (Some(row), _) if row.status == Status::Ok => UnitState::Done,
            (Some(row), _) => UnitState::Failed(row.error.clone().unwrap_or_default()),
            (None, Some(why)) => UnitState::Failed(why),
            (None, None) => UnitState::Pending,
        }
    }
}

/// The working points of `scenario` as units; refuses an adaptive search.
pub fn points(scenario: &Scenario) -> Result<Vec<WorkingPoint>, String> {
    if let Some(search) = &scenario.search {
        return Err(format!(
            "{}: {} is searched adaptively, so its working points are chosen while the search runs and cannot be units; run it with `photonqa run`, or sweep {} over a list",
            scenario.path.display(),
            search.label,
            search.label
        ));
    }
    Ok(scenario.working_points())
}

/// Reads the files of `point`'s unit, and its row (none when its file is damaged); refuses a
/// row of another scenario or point.
fn read_unit(
    out: &Path,
    scenario: &Scenario,
    point: &WorkingPoint,
) -> Result<(Unit, Option<PointResult>), String> {
    let path = row_path(out, point.index);
    let mut damaged = None;
    let row = match seal::read(&path)? {
        Sealed::Intact(bytes) => {
            let row: PointResult = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: not a result row: {e}", path.display()))?;
            if row.provenance.scenario_hash != scenario.hash
                || row.point_id != point.id
                || row.index != point.index
            {
                return Err(format!(
                    "{}: row {} was made from another scenario; use a fresh --out",
                    path.display(),
                    row.point_id
                ));
            }
            Some(row)
        }
        Sealed::Missing => None,
        Sealed::Damaged(why) => {
            damaged = Some(why);
            None
        }
    };
    let failed = failure_path(out, point.index);
    let failure = match fs::read_to_string(&failed) {
        Ok(text) => Some(text.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("{}: {e}", failed.display())),
    };
    let unit = Unit {
        index: point.index,
        label: point.id.clone(),
        state: match damaged {
            Some(why) => UnitState::Damaged(why),
            None => UnitState::of(row.as_ref(), failure),
        },
    };
    Ok((unit, row))
}

/// Every unit of `scenario` in `out` (point units, or the slab units of its manifest), in
/// index order.
pub fn survey(scenario: &Scenario, out: &Path) -> Result<Vec<Unit>, String> {
    match Manifest::read(out)? {
        Some(manifest) if manifest.slabs > 1 => super::slabs::survey(scenario, out, manifest.slabs),
        _ => points(scenario)?
            .iter()
            .map(|point| read_unit(out, scenario, point).map(|(unit, _)| unit))
            .collect(),
    }
}

/// Runs unit `index` of `scenario` into `out` with a memory budget and threads as `run`'s: the
/// point's row goes to `DIR/units/<index>.json`. A unit whose row is there and ok is not run
/// again (a failed or damaged one is); a unit that fails before it has a row records why in
/// `DIR/units/<index>.failed`. Returns the row (status ok, or error when the point failed) and
/// whether it was measured now.
pub fn run_unit(
    scenario: &Scenario,
    out: &Path,
    index: usize,
    (memory_budget, threads): (u64, Option<usize>),
) -> Result<(PointResult, bool), String> {
    let _lock = Lock::shared(out)?;
    let points = points(scenario)?;
    let point = points.get(index).ok_or_else(|| {
        format!(
            "{}: no working point {index}: the scenario has {} (0 to {})",
            scenario.path.display(),
            points.len(),
            points.len().saturating_sub(1)
        )
    })?;
    if let Some(manifest) = Manifest::read(out)?.filter(|m| m.slabs > 1) {
        return Err(format!(
            "{} holds slab units ({} per point): run a unit's phase with --phase",
            out.display(),
            manifest.slabs
        ));
    }
    let (_, row) = read_unit(out, scenario, point)?;
    if let Some(row) = row.filter(|r| r.status == Status::Ok) {
        return Ok((row, false));
    }
    let measure = || -> Result<PointResult, String> {
        if let Ok(list) = std::env::var(FAIL_UNIT_ENV)
            && list.split(',').any(|i| i.trim() == index.to_string())
        {
            return Err(format!(
                "unit {index} failed on purpose ({FAIL_UNIT_ENV}={list})"
            ));
        }
        // The run's own log and outputs go to a scratch folder; only the row is kept.
        let scratch =
            tempfile::tempdir().map_err(|e| format!("cannot make a temporary directory: {e}"))?;
        let options = RunOptions {
            memory_budget,
            threads,
            ..RunOptions::new(scratch.path())
        };
        measure(scenario, &options, Some(&[index]))?
            .rows
            .into_iter()
            .find(|r| r.index == index)
            .ok_or_else(|| format!("unit {index}: the run made no row"))
    };
    let row = match measure() {
        Ok(row) => row,
        Err(e) => {
            record_failure(out, index, &e)?;
            return Err(e);
        }
    };
    seal::write(&row_path(out, index), results::jsonl_line(&row).as_bytes())?;
    match fs::remove_file(failure_path(out, index)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("{}: {e}", failure_path(out, index).display()));
        }
        _ => {}
    }
    Ok((row, true))
}

/// Records why unit `index` failed before it had a row (`DIR/units/<index>.failed`).
pub fn record_failure(out: &Path, index: usize, why: &str) -> Result<(), String> {
    record(&failure_path(out, index), why)
}

/// Writes `why` on one line to `path` (atomically).
pub(super) fn record(path: &Path, why: &str) -> Result<(), String> {
    crate::data::write_atomically(path, format!("{}\n", why.replace('\n', " ")).as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The input, its chunks and the pool of one process.
pub(super) struct Setup {
    pub(super) source: Box<dyn VolumeSource>,
    pub(super) plan: Plan,
    pub(super) pool: rayon::ThreadPool,
}

impl Setup {
    pub(super) fn new(
        scenario: &Scenario,
        (memory_budget, threads): (u64, Option<usize>),
    ) -> Result<Setup, String> {
        let source = scenario.source.open().map_err(|e| e.to_string())?;
        let plan = Plan::of_run(scenario, source.as_ref(), memory_budget, threads)?;
        let pool = plan.pool()?;
        Ok(Setup { source, plan, pool })
    }

    pub(super) fn passes(&self) -> Passes<'_> {
        Passes::new(self.source.as_ref(), &self.plan, &self.pool)
    }
}

/// The provenance rows of `scenario` get now: reads the input once for its content hash.
pub fn current_provenance(
    scenario: &Scenario,
    resources: (u64, Option<usize>),
) -> Result<Provenance, String> {
    let setup = Setup::new(scenario, resources)?;
    let summary = passes::summarize(&setup.passes(), &ProgressBar::hidden())?;
    let (source, plan) = (&setup.source, &setup.plan);
    Provenance::new(scenario, source.as_ref(), summary.hash, plan.chunk_slices)
}

/// Merged units: their rows, and the lock on their directory, held until this is dropped (so
/// that the outputs are written under it).
pub struct Merged {
    /// The rows, in index order, and the columns.
    pub run: RunRows,
    _lock: Lock,
}

/// Merges the units of `scenario` in `out` into `OUT/results.jsonl` (rows in index order), as
/// `run` writes it, and returns the rows. Every unit must have its row (failed points included,
/// as a run includes them); every row must come from this scenario file, the input as it is now
/// (read once for its hash) and the same chunking.
pub fn merge(
    scenario: &Scenario,
    out: &Path,
    resources: (u64, Option<usize>),
) -> Result<Merged, String> {
    // No unit may write while the merge reads, nor a run or another merge write with it.
    let lock = Lock::exclusive(out, "merge")?;
    let run = merge_rows(scenario, out, resources)?;
    Ok(Merged { run, _lock: lock })
}

/// The rows of [`merge`], from point units or slab units.
fn merge_rows(
    scenario: &Scenario,
    out: &Path,
    resources: (u64, Option<usize>),
) -> Result<RunRows, String> {
    if let Some(manifest) = Manifest::read(out)? {
        manifest.check(scenario, out)?;
        if manifest.slabs > 1 {
            return super::slabs::merge(scenario, out, resources);
        }
    }
    let units: Vec<(Unit, Option<PointResult>)> = points(scenario)?
        .iter()
        .map(|point| read_unit(out, scenario, point))
        .collect::<Result<_, _>>()?;
    for (unit, _) in &units {
        if let UnitState::Damaged(why) = &unit.state {
            return Err(rerun(why));
        }
    }
    let missing: Vec<usize> = units
        .iter()
        .filter(|(_, row)| row.is_none())
        .map(|(u, _)| u.index)
        .collect();
    check_complete(out, &missing, units.len())?;
    let provenance = current_provenance(scenario, resources)?;
    let rows: Vec<PointResult> = units.into_iter().filter_map(|(_, row)| row).collect();
    for row in &rows {
        provenance
            .check(row)
            .map_err(|e| format!("{}: {e}", row_path(out, row.index).display()))?;
    }
    write_merged(scenario, out, rows, &provenance.input_shape)
}

/// Writes the merged `rows` (every point's, in index order) of an input of shape `shape` to
/// `OUT/results.jsonl` as `run` writes its log, and returns them with their columns.
pub(super) fn write_merged(
    scenario: &Scenario,
    out: &Path,
    rows: Vec<PointResult>,
    shape: &[usize],
) -> Result<RunRows, String> {
    results::write_jsonl(out, &rows)?;
    Ok(RunRows {
        measured: 0,
        skipped: rows.len(),
        columns: columns(scenario, shape),
        rows,
    })
}

/// Why a merge refuses a damaged unit file (`why` names it), and the cure.
pub(super) fn rerun(why: &str) -> String {
    format!("{why}; `photonqa submit` (or `photonqa unit`) writes it again")
}

/// Refuses a merge while units `missing` (of `units`) have no result.
pub fn check_complete(out: &Path, missing: &[usize], units: usize) -> Result<(), String> {
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}: {} of {units} units have no result yet (index {}); `photonqa status {}` tells why",
        out.display(),
        missing.len(),
        index_ranges(missing),
        out.display()
    ))
}

/// Indices as ranges, as Slurm writes arrays: `0-3,5,7-9` (`indices` ascending).
pub fn index_ranges(indices: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let mut j = i;
        while j + 1 < indices.len() && indices[j + 1] == indices[j] + 1 {
            j += 1;
        }
        parts.push(if j == i {
            indices[i].to_string()
        } else {
            format!("{}-{}", indices[i], indices[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_ranges_join_runs() {
        assert_eq!(index_ranges(&[]), "");
        assert_eq!(index_ranges(&[4]), "4");
        assert_eq!(index_ranges(&[0, 1, 2, 3, 5, 7, 8, 9]), "0-3,5,7-9");
        assert_eq!(index_ranges(&[2, 4, 6]), "2,4,6");
    }
}
