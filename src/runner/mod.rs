//! The runner: measures the working points of a scenario and returns their rows. It streams
//! the input chunk by chunk along axis 0 under a memory budget, fits the data-derived stage
//! parameters, and measures the rate, distortion and science of every point. What to do with
//! the rows (choose a point, write the report, gate) is the layers' above
//! ([`crate::workflow`]).
//!
//! A run is a [`session`]: it locks `OUT`, reads a resumed log, summarises the input (its hash
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
pub mod lock;
pub mod measure;
pub mod passes;
pub mod provenance;
pub mod reconstruction;
pub mod replay;
pub mod results;
pub mod science;
pub mod seal;
pub mod slabs;
pub mod slices;
pub mod slurm;
pub mod stream;
pub mod sweep;
pub mod units;

use std::ops::Range;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::{Map, Value};

use crate::analysis::Context;
use crate::analysis::registry as analysis_registry;
use crate::data::VolumeSource;
use crate::data::hdf5io::check_filters_available;
use crate::metrics::comparison::{BoundSums, CompareSpec, DataFacts, fsc_memory, unmet};
use crate::metrics::registry as metric_registry;
use crate::pipeline::Chain;
use crate::pipeline::chain::StatsProvider;
use crate::pipeline::hdf5::Storage;
use crate::scenario::{Scenario, WorkingPoint};
use external::Commands;
use measure::{PointMeasure, Science, measure_batch};
use passes::{FitCache, Passes};
use provenance::Provenance;
use reconstruction::Reconstruction;
use replay::Replay;
use results::{EarlierResults, PointResult, Rate, ResultsLog, Status};
use science::Analyses;

/// Default size of a compressed chunk when the scenario does not set `chunk_slices`.
pub const DEFAULT_CHUNK_BYTES: usize = 4 << 20;

/// Bytes held per byte of an input chunk while one thread round-trips it (input, encoded
/// intermediates, decoded copy). Measured 3.4 for the seed chain (2 threads x 64 MiB chunks:
/// 434 MiB peak RSS); 6 leaves room for chains with more intermediates.
pub const WORKING_SET_FACTOR: usize = 6;

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
}

impl RunOptions {
    /// Options writing to `out`: a fresh run (no resume) within [`DEFAULT_MEMORY_BUDGET`], on
    /// every core, with sharing.
    pub fn new(out: impl Into<PathBuf>) -> RunOptions {
        RunOptions {
            out: out.into(),
            resume: false,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            threads: None,
            share: true,
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

    /// A thread pool of the plan's thread count.
    pub fn pool(&self) -> Result<rayon::ThreadPool, String> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .build()
            .map_err(|e| format!("cannot start {} threads: {e}", self.threads))
    }

    /// A plan for tools whose chunks are no compression unit (`metrics`, `analyze`): the default
    /// chunk, shrunk until one fits the budget.
    pub fn within(shape: &[usize], row_bytes: usize, memory_budget: u64) -> Result<Plan, String> {
        let per_row = (row_bytes.max(1) * WORKING_SET_FACTOR) as u64;
        let affordable = (memory_budget / per_row).max(1) as usize;
        let rows = (DEFAULT_CHUNK_BYTES / row_bytes.max(1)).clamp(1, affordable);
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
    let mut chain =
        Chain::build(&point.stages, source.dtype()).map_err(|e| error(e.stage, &e.message))?;
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
        check_filters_available(
            &storage.filter_values(),
            &scenario.path.display().to_string(),
        )
        .map_err(|e| e.to_string())?;
        let chunk_rows = chunk_rows(source.shape()[0], source.row_bytes(), scenario.chunk_slices);
        chain.store_as_hdf5(storage, chunk_rows);
    }
    Ok(chain)
}

/// Rows per compressed chunk of an input of `rows` rows of `row_bytes` each: `chunk_slices`
/// (a scenario's), else about [`DEFAULT_CHUNK_BYTES`], never more than the input.
fn chunk_rows(rows: usize, row_bytes: usize, chunk_slices: Option<usize>) -> usize {
    chunk_slices
        .unwrap_or((DEFAULT_CHUNK_BYTES / row_bytes.max(1)).max(1))
        .min(rows)
}

/// What a session measured: the rows of its log and the columns of its table.
pub struct RunRows {
    /// Every row in `results.jsonl`, in sweep order (earlier rows of a resumed run included).
    pub rows: Vec<PointResult>,
    /// Points measured in this invocation.
    pub measured: usize,
    /// Points skipped because a resumed log already had them.
    pub skipped: usize,
    /// The scalar metric columns of the table and `results.csv`.
    pub columns: Vec<String>,
}

/// A run in progress, as [`session`] prepares it: the input summarised, the results log open
/// (and `OUT` locked), the analyses, commands, reconstruction and comparison prepared. It
/// measures the points it is given into the log.
pub struct Session<'a> {
    scenario: &'a Scenario,
    options: &'a RunOptions,
    only: Option<&'a [usize]>,
    source: &'a dyn VolumeSource,
    plan: &'a Plan,
    pool: &'a rayon::ThreadPool,
    passes: &'a Passes<'a>,
    fits: FitCache<'a>,
    spec: &'a CompareSpec,
    science: Science<'a>,
    provenance: &'a Provenance,
    log: &'a ResultsLog,
    progress: &'a ProgressBar,
    points: Vec<(WorkingPoint, Chain)>,
    measured: usize,
    skipped: usize,
}

/// Opens a run of `scenario` into `options.out` and hands it to `work`, which measures points
/// through the [`Session`]; returns what `work` returns.
///
/// Points whose sweep index is not in `only` (every point when `None`) and points already in
/// `OUT/results.jsonl` (`--resume`) are skipped. With `only`, the run is a part of a larger one
/// (a unit, see [`units`]). A scenario with an adaptive search picks its points as it goes, so
/// it has no subsets. Before the first pass over the input, `OUT` is locked (until `work`
/// returns, so that it may write the outputs) and a resumed log read.
pub fn session<T>(
    scenario: &Scenario,
    options: &RunOptions,
    only: Option<&[usize]>,
    work: impl FnOnce(&mut Session) -> Result<T, String>,
) -> Result<T, String> {
    if only.is_some() && scenario.search.is_some() {
        return Err(format!(
            "{}: an adaptive search picks its points while it runs, so they cannot run apart",
            scenario.path.display()
        ));
    }
    let source = scenario.source.open().map_err(|e| e.to_string())?;
    let points = build_chains(scenario, source.as_ref())?;
    check_only(scenario, only, points.len())?;
    let plan = run_plan(scenario, source.as_ref(), options)?;
    let pool = plan.pool()?;
    let passes = Passes::new(source.as_ref(), &plan, &pool);

    // Before the first pass over the input: a busy or wrong --out, or --resume, fails at once.
    let _lock = lock::Lock::exclusive(&options.out, "run")?;
    let earlier = EarlierResults::read(&options.out, options.resume)?;
    for note in &earlier.notes {
        eprintln!("photonqa: {note}");
    }

    let progress = progress_bar(&plan);
    progress.set_message("input");
    let summary = passes::summarize(&passes, &progress)?;
    let provenance = Provenance::new(
        scenario,
        source.as_ref(),
        summary.hash.clone(),
        plan.chunk_slices,
    );
    let log = earlier.resume(|row| provenance.check(row))?;
    let skipped = log.done().len();

    progress.set_message("fitting");
    let mut fits = FitCache::new(&passes, &progress, &summary);
    let prepared = PreparedScience::new(scenario, &passes, &mut fits, &progress)?;

    progress.set_message("points");
    let spec = compare_spec(scenario, source.as_ref(), &summary, options.memory_budget)?;
    work(&mut Session {
        scenario,
        options,
        only,
        source: source.as_ref(),
        plan: &plan,
        pool: &pool,
        passes: &passes,
        fits,
        spec: &spec,
        science: prepared.science(),
        provenance: &provenance,
        log: &log,
        progress: &progress,
        points,
        measured: 0,
        skipped,
    })
}

/// Measures the working points whose sweep index is in `only` (every point when `None`) that
/// are not already in `OUT/results.jsonl`, and returns every row of the log (see [`session`]).
pub fn measure(
    scenario: &Scenario,
    options: &RunOptions,
    only: Option<&[usize]>,
) -> Result<RunRows, String> {
    session(scenario, options, only, |session| {
        session.measure_all()?;
        Ok(session.finish())
    })
}

/// Refuses indices of `only` beyond the `count` working points of `scenario`.
fn check_only(scenario: &Scenario, only: Option<&[usize]>, count: usize) -> Result<(), String> {
    match only.and_then(|o| o.iter().find(|&&i| i >= count)) {
        Some(bad) => Err(format!(
            "{}: no working point {bad}: the scenario has {} (0 to {})",
            scenario.path.display(),
            count,
            count.saturating_sub(1)
        )),
        None => Ok(()),
    }
}

/// The chunks and threads of a run of `scenario` on `source`: the reconstruction's share of
/// the memory budget is set aside before the chunks get theirs.
fn run_plan(
    scenario: &Scenario,
    source: &dyn VolumeSource,
    options: &RunOptions,
) -> Result<Plan, String> {
    let wanted_threads = options
        .threads
        .unwrap_or_else(rayon::current_num_threads)
        .max(1);
    let reconstruction_need = match &scenario.reconstruction {
        Some(spec) => {
            reconstruction::memory(spec, source.shape(), wanted_threads, options.memory_budget)
                .map_err(|e| format!("{}: {e}", scenario.path.display()))?
        }
        None => 0,
    };
    Plan::new(
        source.shape(),
        source.row_bytes(),
        scenario.chunk_slices,
        options.memory_budget.saturating_sub(reconstruction_need),
        options.threads,
    )
}

/// The progress bar of a run over the chunks of `plan`.
fn progress_bar(plan: &Plan) -> ProgressBar {
    ProgressBar::new(plan.chunks.len() as u64).with_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} chunks, {eta} left")
            .expect("valid template")
            .progress_chars("=> "),
    )
}

/// What measures the science of every point: the streamed analyses (none with a
/// reconstruction, whose slices they then analyse), the `command` analyses, the reconstruction.
struct PreparedScience {
    analyses: Analyses,
    commands: Option<Commands>,
    reconstruction: Option<Reconstruction>,
}

impl PreparedScience {
    /// Prepares the science of `scenario` on the input of `passes`, fitting on `fits`.
    fn new(
        scenario: &Scenario,
        passes: &Passes,
        fits: &mut FitCache,
        progress: &ProgressBar,
    ) -> Result<PreparedScience, String> {
        // With a reconstruction, the analyses run on its slices, not on the projections.
        let analyses = match scenario.reconstruction {
            Some(_) => Analyses::default(),
            None => prepare_analyses(scenario, passes.source.shape(), fits)?,
        };
        let commands = Commands::prepare(&scenario.analyses, passes, progress)?;
        let reconstruction = match &scenario.reconstruction {
            Some(spec) => {
                progress.set_message("reconstruct");
                let prepared = Reconstruction::prepare(scenario, spec)
                    .map_err(|e| format!("{}: {e}", scenario.path.display()))?;
                Some(prepared)
            }
            None => None,
        };
        Ok(PreparedScience {
            analyses,
            commands,
            reconstruction,
        })
    }

    fn science(&self) -> Science<'_> {
        Science {
            analyses: &self.analyses,
            reconstruction: self.reconstruction.as_ref(),
            commands: self.commands.as_ref(),
        }
    }
}

impl Session<'_> {
    /// The working points of the scenario with their chains, in sweep order; empty when taken
    /// before.
    pub fn take_points(&mut self) -> Vec<(WorkingPoint, Chain)> {
        std::mem::take(&mut self.points)
    }

    /// The chain of `point` on the session's input (see [`build_chain`]).
    pub fn build_chain(&self, point: &WorkingPoint) -> Result<Chain, String> {
        build_chain(self.scenario, point, self.source)
    }

    /// The row of the point with id `id` in the log, if it has one.
    pub fn row(&self, id: &str) -> Option<PointResult> {
        self.log.row(id)
    }

    /// Measures every working point of the session.
    pub fn measure_all(&mut self) -> Result<usize, String> {
        let points = self.take_points();
        self.measure(points)
    }

    /// Fits and measures those of `points` in the session's subset that the log does not
    /// have yet, in batches, appending their rows to the log; returns how many.
    pub fn measure(&mut self, points: Vec<(WorkingPoint, Chain)>) -> Result<usize, String> {
        let (ready, count) = self.fit(points)?;
        self.measure_batches(&ready)?;
        self.measured += count;
        Ok(count)
    }

    /// Fits the chains of those of `points` to measure; a point whose fit fails gets its
    /// error row. Returns the fitted points and how many there were to measure.
    fn fit(
        &mut self,
        points: Vec<(WorkingPoint, Chain)>,
    ) -> Result<(Vec<(WorkingPoint, Chain)>, usize), String> {
        let done = self.log.done();
        let mut ready = Vec::new();
        let mut count = 0;
        for (point, mut chain) in points {
            if done.contains_key(&point.id) || !self.only.is_none_or(|o| o.contains(&point.index)) {
                continue;
            }
            count += 1;
            match chain.fit(&mut self.fits) {
                Ok(()) => ready.push((point, chain)),
                Err(e) => self
                    .log
                    .append(result_row(&point, &chain, Err(e), self.provenance))?,
            }
        }
        Ok((ready, count))
    }

    /// Measures the fitted points `ready` in batches ([`sweep::batches`]) on the pool, and
    /// appends their rows to the log.
    fn measure_batches(&self, ready: &[(WorkingPoint, Chain)]) -> Result<(), String> {
        let (plan, options) = (self.plan, self.options);
        let chunk_bytes = plan.chunk_slices * self.source.row_bytes();
        let capacity = sweep::Capacity::of(
            options.memory_budget / 4 * 3,
            plan.threads,
            (plan.chunks.len(), chunk_bytes),
        );
        let batches = sweep::batches(ready, options.share, capacity);
        // A quarter of the budget keeps lossy chains' bytes for the passes after the first.
        let replay_budget = options.memory_budget / 4 / batches.len().clamp(1, plan.threads) as u64;
        self.pool.install(|| {
            batches.par_iter().try_for_each(|batch| {
                let replay = Replay::new(replay_budget, &options.out);
                let names = &self.scenario.distortion;
                let measured = measure_batch(
                    self.passes,
                    batch,
                    (self.spec, names),
                    self.science,
                    Some(&replay),
                    self.progress,
                )?;
                for ((point, chain), m) in batch.points.iter().zip(measured) {
                    self.log
                        .append(result_row(point, chain, m, self.provenance))?;
                }
                Ok::<(), String>(())
            })
        })
    }

    /// Ends the measuring (clears the progress bar) and returns every row of the log.
    pub fn finish(&mut self) -> RunRows {
        self.progress.finish_and_clear();
        RunRows {
            rows: self.log.rows(),
            measured: self.measured,
            skipped: self.skipped,
            columns: columns(self.scenario, self.source.shape()),
        }
    }
}

/// The analyses of `scenario` on an input of shape `shape`, prepared on the original's
/// histogram from `fits`.
fn prepare_analyses(
    scenario: &Scenario,
    shape: &[usize],
    fits: &mut FitCache,
) -> Result<Analyses, String> {
    let base = scenario.path.parent().unwrap_or(Path::new("."));
    let histogram = || fits.stats_for(&[], "").histogram();
    Analyses::prepare(
        &scenario.analyses,
        &mut Context::new(shape, base, histogram),
    )
    .map_err(|e| format!("{}: {e}", scenario.path.display()))
}

/// What the comparison of every point measures on `source` (whose first pass gave `summary`);
/// refuses metrics the data cannot give, and the FSC beyond the memory budget.
fn compare_spec(
    scenario: &Scenario,
    source: &dyn VolumeSource,
    summary: &passes::InputSummary,
    memory_budget: u64,
) -> Result<CompareSpec, String> {
    let data_range = scenario.data_range.unwrap_or(summary.max - summary.min);
    if let Some(name) = scenario
        .distortion
        .iter()
        .find(|name| unmet(name, source.shape(), Some(data_range), scenario.ssim_window).is_some())
    {
        return Err(format!(
            "{}: metric {name} needs a data range > 0, but {} is constant; set metrics.data_range",
            scenario.path.display(),
            source.label()
        ));
    }
    let fsc_need = fsc_memory(source.shape(), source.dtype().size());
    if scenario.distortion.contains(&"fsc") && fsc_need > memory_budget {
        return Err(format!(
            "{}: metric fsc needs the whole volume in memory, {} > --memory-budget {}; select frc (per slice) or raise the budget",
            scenario.path.display(),
            format_size(fsc_need),
            format_size(memory_budget)
        ));
    }
    let facts = DataFacts {
        shape: source.shape(),
        range: (summary.min, summary.max),
        data_range,
        dtypes: (source.dtype(), source.dtype()),
    };
    let max_rel_floor = scenario
        .max_rel_floor
        .unwrap_or(DEFAULT_REL_FLOOR * data_range);
    CompareSpec::new(
        &scenario.distortion,
        facts,
        max_rel_floor,
        scenario.ssim_window,
    )
    .map_err(|e| {
        format!(
            "{}: {}: {e}; set metrics.data_range",
            scenario.path.display(),
            source.label()
        )
    })
}

/// The scalar metric columns of a scenario's results on an input of shape `shape`: the
/// distortion metrics, those of the reconstructed slices (`reconstructed.` prefix), then the
/// analyses' fields (`label.field`).
pub fn columns(scenario: &Scenario, shape: &[usize]) -> Vec<String> {
    let mut columns = metric_registry::columns(&scenario.distortion, shape.len());
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

/// The row of `point` (whose fitted chain is `chain`) from its measurements or its failure.
fn result_row(
    point: &WorkingPoint,
    chain: &Chain,
    measured: Result<PointMeasure, String>,
    provenance: &Provenance,
) -> PointResult {
    let params: Map<String, Value> = point
        .swept
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::to_value(v).expect("params serialise"),
            )
        })
        .collect();
    let mut row = PointResult {
        point_id: point.id.clone(),
        index: point.index,
        status: Status::Ok,
        error: None,
        params,
        pipeline: point.stages.iter().map(|s| s.to_json()).collect(),
        fitted: chain.fitted(),
        rate: None,
        nonfinite_decoded: None,
        distortion: Map::new(),
        science: Map::new(),
        reconstructed: Map::new(),
        bounds: Vec::new(),
        shares_decoded_with: None,
        provenance: provenance.clone(),
    };
    let measured = measured.and_then(|m| match &m.group.distortion {
        Ok(distortion) => Ok((distortion.clone(), m)),
        Err(e) => Err(e.clone()),
    });
    match measured {
        Ok((distortion, m)) => {
            let values = m.group.values;
            let value_size = provenance.input_dtype.size();
            let original_bytes = values * value_size as u64;
            let mb = original_bytes as f64 / 1e6;
            row.rate = Some(Rate {
                original_bytes,
                compressed_bytes: m.compressed_bytes,
                ratio: original_bytes as f64 / m.compressed_bytes as f64,
                bits_per_value: 8.0 * m.compressed_bytes as f64 / values as f64,
                encode_mb_s: mb / m.encode_seconds.max(1e-9),
                decode_mb_s: mb / m.decode_seconds.max(1e-9),
            });
            row.bounds = m.bounds.iter().map(BoundSums::check).collect();
            row.nonfinite_decoded = Some(m.group.nonfinite_decoded);
            row.distortion = distortion;
            row.science = m.group.science.clone();
            row.reconstructed = m.group.reconstructed.clone();
            row.shares_decoded_with = m.shares_decoded_with;
        }
        Err(e) => {
            row.status = Status::Error;
            row.error = Some(e);
        }
    }
    row
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
