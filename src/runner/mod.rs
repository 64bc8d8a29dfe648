//! The runner: measures the working points of a scenario and returns their rows. It streams
//! the input chunk by chunk along axis 0 under a memory budget, fits the data-derived stage
//! parameters, and measures the rate, distortion and science of every point. What to do with
//! the rows (choose a point, write the report, gate) is the layers' above
//! (`workflow`).
//!
//! A run is a [`session()`]: it locks `OUT`, reads a resumed log, summarises the input (its hash
//! and range), prepares the fits, analyses, commands, reconstruction and comparison, and then
//! measures the points it is given ([`Session::measure`]), appending each row to
//! `OUT/results.jsonl`. Points are measured in batches ([`sweep`]): a batch's points run
//! chunk-major, every chunk read once for all of them, sharing the stages their chains have in
//! common and, for points that decode alike, the decoded data and what is computed on it
//! ([`measure`](mod@measure), [`stream`]); the passes after the measuring one decode lossy
//! chains' stored bytes again instead of encoding again ([`replay`]).
//!
//! Work also splits into independent units (working point x chunk) whose partial results
//! ([`Partial`](crate::metrics::comparison::Partial): point sums, SSIM row sums; byte counts)
//! merge in chunk order, so a point's row does not depend on what it is measured with; a
//! chunk's partial may need decoded rows of its neighbours (the SSIM window's halo). Units run
//! apart on a cluster ([`units`], [`slabs`], [`slurm`]).

pub mod analyze;
pub mod compare;
pub mod export;
pub mod external;
pub mod interrupt;
pub mod lock;
pub mod measure;
pub mod passes;
pub mod provenance;
pub mod reconstruction;
pub mod replay;
pub mod results;
pub mod roundtrip;
pub mod science;
pub mod seal;
pub mod session;
pub mod slabs;
pub mod slices;
pub mod slurm;
pub mod stream;
pub mod sweep;
pub mod units;

pub use session::{RunRows, Session, measure, session};

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::analysis::registry as analysis_registry;
use crate::data::VolumeSource;
use crate::data::hdf5io::check_filters_available;
use crate::metrics::comparison::unmet;
use crate::metrics::registry as metric_registry;
use crate::pipeline::Chain;
use crate::pipeline::hdf5::Storage;
use crate::scenario::tolerances::SIDE_COLUMNS;
use crate::scenario::{Scenario, WorkingPoint};

/// Default size of a compressed chunk when the scenario does not set `chunk_slices`.
pub const DEFAULT_CHUNK_BYTES: usize = 4 << 20;

/// Bytes held per byte of an input chunk while one thread round-trips it (input, encoded
/// intermediates, decoded copy). Measured 3.4 for the seed chain (2 threads x 64 MiB chunks:
/// 434 MiB peak RSS); 6 leaves room for chains with more intermediates.
pub const WORKING_SET_FACTOR: usize = 6;

/// A chunk read with halos is at least this many times its halo rows, so that rows read and
/// filtered twice cost at most a quarter more.
pub const HALO_SHARE: usize = 4;

/// Default floor of the relative error, as a fraction of the data range.
pub const DEFAULT_REL_FLOOR: f64 = 1e-3;

/// Default memory budget.
pub const DEFAULT_MEMORY_BUDGET: u64 = 1 << 30;

/// How a run is carried out (not what it measures: that is the scenario's).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output directory.
    pub out: PathBuf,
    /// Continue an interrupted run in `out`.
    pub resume: bool,
    /// Bytes the chunks in flight may occupy.
    pub memory_budget: u64,
    /// Worker threads (default: all cores), lowered to fit the memory budget.
    pub threads: Option<usize>,
    /// Whether points that decode alike share their decoded data's metrics and science, and
    /// points measured together the stages their chains share (always, but in tests that
    /// check that sharing changes nothing).
    pub share: bool,
    /// Whether the run draws its progress bar on stderr (when stderr is a terminal).
    pub progress: bool,
    /// Set from another thread, stops the run at its next chunk with an error, keeping the
    /// points already measured ([`interrupt`]).
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl RunOptions {
    /// Options writing to `out`: a fresh run (no resume) within [`DEFAULT_MEMORY_BUDGET`], on
    /// every core, with sharing and a progress bar.
    pub fn new(out: impl Into<PathBuf>) -> RunOptions {
        RunOptions {
            out: out.into(),
            resume: false,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            threads: None,
            share: true,
            progress: true,
            interrupt: None,
        }
    }
}

/// The chunks and the thread count of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Rows per chunk along axis 0.
    pub chunk_slices: usize,
    /// Row ranges of the chunks.
    pub chunks: Vec<Range<usize>>,
    /// Worker threads.
    pub threads: usize,
}

impl Plan {
    /// Chunks the input and sizes the thread pool so that the chunks in flight fit the budget.
    pub fn new(
        shape: &[usize],
        row_bytes: usize,
        chunk_slices: Option<usize>,
        memory_budget: u64,
        threads: Option<usize>,
    ) -> Result<Plan, String> {
        let rows = shape[0];
        let chunk_slices = chunk_rows(rows, row_bytes, chunk_slices);
        let per_thread = (chunk_slices * row_bytes * WORKING_SET_FACTOR) as u64;
        let affordable = (memory_budget / per_thread.max(1)) as usize;
        if affordable == 0 {
            return Err(format!(
                "a chunk of {chunk_slices} rows needs about {} per thread, more than the memory budget of {}; lower scenario.chunk_slices or raise --memory-budget",
                format_size(per_thread),
                format_size(memory_budget)
            ));
        }
        let wanted = threads.unwrap_or_else(rayon::current_num_threads).max(1);
        let chunks = (0..rows)
            .step_by(chunk_slices)
            .map(|start| start..(start + chunk_slices).min(rows))
            .collect();
        Ok(Plan {
            chunk_slices,
            chunks,
            threads: wanted.min(affordable),
        })
    }

    /// The plan of a run of `scenario` over `source` (its chunk setting).
    pub fn of_run(
        scenario: &Scenario,
        source: &dyn VolumeSource,
        memory_budget: u64,
        threads: Option<usize>,
    ) -> Result<Plan, String> {
        Plan::new(
            source.shape(),
            source.row_bytes(),
            scenario.chunk_slices,
            memory_budget,
            threads,
        )
    }

    /// A thread pool of the plan's thread count.
    pub fn pool(&self) -> Result<rayon::ThreadPool, String> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .build()
            .map_err(|e| format!("cannot start {} threads: {e}", self.threads))
    }

    /// A plan for tools whose chunks are no compression unit (`metrics`, `analyze`): the default
    /// chunk, or [`HALO_SHARE`] times the `halo` rows each chunk reads again on both sides when
    /// that is more, shrunk until one fits the budget.
    pub fn within(
        shape: &[usize],
        row_bytes: usize,
        memory_budget: u64,
        halo: usize,
    ) -> Result<Plan, String> {
        let per_row = (row_bytes.max(1) * WORKING_SET_FACTOR) as u64;
        let affordable = (memory_budget / per_row).max(1) as usize;
        let rows = (DEFAULT_CHUNK_BYTES / row_bytes.max(1))
            .max(HALO_SHARE * 2 * halo)
            .clamp(1, affordable);
        Plan::new(shape, row_bytes, Some(rows), memory_budget, None)
    }
}

/// A byte count in binary units, e.g. `768 KiB`, `1.5 GiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Builds the chain of every working point (no data read): the check `validate` makes.
pub fn build_chains(
    scenario: &Scenario,
    source: &dyn VolumeSource,
) -> Result<Vec<(WorkingPoint, Chain)>, String> {
    for name in &scenario.distortion {
        if let Some(reason) = unmet(name, source.shape(), None, scenario.ssim_window) {
            return Err(format!(
                "{}: metric {name}: {reason}",
                scenario.path.display()
            ));
        }
    }
    if let Some(spec) = &scenario.reconstruction {
        reconstruction::check(scenario, spec, source.shape())
            .map_err(|e| format!("{}: {e}", scenario.path.display()))?;
    }
    scenario.check_columns(&columns(scenario, source.shape()))?;
    scenario
        .working_points()
        .into_iter()
        .map(|point| {
            let chain = build_chain(scenario, &point, source)?;
            Ok((point, chain))
        })
        .collect()
}

/// The chain of working point `point` of `scenario` on `source`: its codec stages, or with
/// `artifact = "hdf5"` the HDF5 dataset an export writes. Errors name the stage's line in the
/// scenario and the point's swept values.
pub(crate) fn build_chain(
    scenario: &Scenario,
    point: &WorkingPoint,
    source: &dyn VolumeSource,
) -> Result<Chain, String> {
    let error = |index: usize, message: &str| {
        let stage = &scenario.pipelines[point.pipeline].stages[index];
        let (line, column) = stage.position;
        let at = if point.swept.is_empty() {
            String::new()
        } else {
            let values: Vec<String> = point
                .swept
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect();
            format!(" (at {})", values.join(", "))
        };
        format!(
            "{}:{line}:{column}: stage '{}': {message}{at}",
            scenario.path.display(),
            stage.stage,
        )
    };
    let mut chain = Chain::build(&scenario.resolve_files(&point.stages), source.dtype())
        .map_err(|e| error(e.stage, &e.message))?;
    let chunk_rows = chunk_rows(source.shape()[0], source.row_bytes(), scenario.chunk_slices);
    if let Some((index, why)) = chain.refusing_stage(source.shape(), chunk_rows) {
        return Err(error(index, &why));
    }
    if let Some((index, why)) = chain.block_straddling_stage(source.shape(), chunk_rows) {
        return Err(error(index, &why));
    }
    if scenario.hdf5_artifact {
        let storage = Storage::of(&point.stages, chain.prepared_dtype())
            .map_err(|(index, message)| error(index, &message))?;
        if let Some(stage) = storage.unfiltered {
            let index = point.stages.iter().position(|s| s.stage == stage);
            return Err(error(
                index.expect("a stage of the point"),
                "has no registered HDF5 filter, and artifact = \"hdf5\" measures what the filters store",
            ));
        }
        reshaping_refused(&chain, source.shape(), chunk_rows)
            .map_err(|(index, message)| error(index, &message))?;
        check_filters_available(
            &storage.filter_values(),
            &scenario.path.display().to_string(),
        )
        .map_err(|e| e.to_string())?;
        chain.store_as_hdf5(storage, chunk_rows);
    }
    Ok(chain)
}

/// Refuses a chain that changes the shape of the chunks (`bin`) of an input of `shape` cut in
/// `chunk_rows` rows, for an HDF5 dataset (export, `artifact = "hdf5"`): it stores chunks of
/// the input's shape. The error gives the stage's index in the pipeline.
pub(crate) fn reshaping_refused(
    chain: &Chain,
    shape: &[usize],
    chunk_rows: usize,
) -> Result<(), (usize, String)> {
    let (rows, chunk_rows) = (shape[0], chunk_rows.max(1));
    let mut full = shape.to_vec();
    full[0] = chunk_rows.min(rows);
    let mut last = shape.to_vec();
    last[0] = rows - rows.saturating_sub(1) / chunk_rows * chunk_rows;
    match chain.reshaping_stage(&[&full, &last]) {
        None => Ok(()),
        Some((index, why)) => Err((
            index,
            format!(
                "{why}: an HDF5 dataset stores chunks of the input's shape, so export and artifact = \"hdf5\" take only chains that keep it"
            ),
        )),
    }
}

/// Rows per compressed chunk of an input of `rows` rows of `row_bytes` each: `chunk_slices`
/// (a scenario's), else about [`DEFAULT_CHUNK_BYTES`], never more than the input.
fn chunk_rows(rows: usize, row_bytes: usize, chunk_slices: Option<usize>) -> usize {
    chunk_slices
        .unwrap_or((DEFAULT_CHUNK_BYTES / row_bytes.max(1)).max(1))
        .min(rows)
}

/// The scalar metric columns of a scenario's results on an input of shape `shape`: when its
/// stages declare side files, the [`SIDE_COLUMNS`] of the rate (`ratio_payload`,
/// `side_bytes`); the distortion metrics, those of the reconstructed slices (`reconstructed.` prefix), then the
/// analyses' fields (`label.field`).
pub fn columns(scenario: &Scenario, shape: &[usize]) -> Vec<String> {
    let mut columns = Vec::new();
    if !scenario.side_files().is_empty() {
        columns.extend(SIDE_COLUMNS.map(String::from));
    }
    columns.extend(metric_registry::columns(&scenario.distortion, shape.len()));
    if let Some(spec) = &scenario.reconstruction {
        let rank = reconstruction::layout(spec, shape).map_or(3, |(_, slices)| slices.len());
        columns.extend(
            metric_registry::columns(&spec.distortion, rank)
                .into_iter()
                .map(|c| format!("{}{c}", results::RECONSTRUCTED)),
        );
    }
    columns.extend(scenario.analyses.iter().flat_map(|a| {
        analysis_registry::fields(&a.config)
            .into_iter()
            .map(|field| format!("{}.{field}", a.label))
    }));
    columns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_defaults_to_4_mib_chunks_and_fits_threads_to_budget() {
        let plan = Plan::new(&[1000, 256, 256], 256 * 256 * 4, None, 1 << 30, Some(8)).unwrap();
        assert_eq!(plan.chunk_slices, 16);
        assert_eq!(plan.chunks.len(), 63);
        assert_eq!(plan.chunks[62], 992..1000);
        assert_eq!(plan.threads, 8);
        let tight = Plan::new(&[1000, 256, 256], 256 * 256 * 4, None, 60 << 20, Some(8)).unwrap();
        assert_eq!(tight.threads, 2);
        let err =
            Plan::new(&[1000, 256, 256], 256 * 256 * 4, Some(500), 60 << 20, None).unwrap_err();
        assert!(
            err.contains("chunk_slices") && err.contains("--memory-budget"),
            "{err}"
        );
    }
}
