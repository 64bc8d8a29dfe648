//! A run in progress: [`session`] opens the input, the results log and everything that
//! measures points (fits, analyses, commands, reconstruction, comparison), and a [`Session`]
//! measures the points it is given into the log, in batches.

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::{Map, Value};

use super::external::Commands;
use super::interrupt::Interruptible;
use super::measure::{PointMeasure, Science, measure_batch};
use super::passes::{self, FitCache, InputSummary, Passes};
use super::provenance::Provenance;
use super::reconstruction::{self, Reconstruction};
use super::replay::Replay;
use super::results::{EarlierResults, PointResult, Rate, ResultsLog, Status};
use super::science::Analyses;
use super::{
    DEFAULT_REL_FLOOR, Plan, RunOptions, build_chain, build_chains, columns, format_size, lock,
    sweep,
};
use crate::analysis::Context;
use crate::data::VolumeSource;
use crate::metrics::comparison::{BoundSums, CompareSpec, DataFacts, unmet};
use crate::metrics::spectral::fsc_memory;
use crate::pipeline::Chain;
use crate::pipeline::chain::StatsProvider;
use crate::scenario::{Scenario, WorkingPoint};

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
/// (a unit, see [`super::units`]). A scenario with an adaptive search picks its points as it goes, so
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
    let opened = scenario.source.open().map_err(|e| e.to_string())?;
    let stop = options.interrupt.clone().unwrap_or_default();
    let source = &Interruptible::new(opened.as_ref(), &stop);
    let points = build_chains(scenario, source)?;
    check_only(scenario, only, points.len())?;
    let plan = run_plan(scenario, source, options)?;
    let pool = plan.pool()?;
    let passes = Passes::new(source, &plan, &pool);

    // Before the first pass over the input: a busy or wrong --out, or --resume, fails at once.
    let _lock = lock::Lock::exclusive(&options.out, "run")?;
    let earlier = EarlierResults::read(&options.out, options.resume)?;
    for note in &earlier.notes {
        eprintln!("photonqa: {note}");
    }

    let progress = if options.progress {
        progress_bar(&plan)
    } else {
        ProgressBar::hidden()
    };
    progress.set_message("input");
    let summary = passes::summarize(&passes, &progress)?;
    let provenance = Provenance::new(scenario, source, summary.hash.clone(), plan.chunk_slices)?;
    let log = earlier.resume(|row| provenance.check(row))?;
    let skipped = log.done().len();

    progress.set_message("fitting");
    let mut fits = FitCache::new(&passes, &progress, &summary);
    let prepared = PreparedScience::new(scenario, &passes, &mut fits, &progress)?;

    progress.set_message("points");
    let spec = compare_spec(scenario, source, &summary, options.memory_budget)?;
    work(&mut Session {
        scenario,
        options,
        only,
        source,
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

    /// The chain of `point` on the session's input (its codec stages, or the HDF5 dataset of
    /// `artifact = "hdf5"`); errors name the stage's line and the point's swept values.
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
        // A group measuring the FSC holds its spectra until the pass ends.
        let whole_input = if self.spec.fsc {
            fsc_memory(self.source.shape())
        } else {
            0
        };
        let capacity = sweep::Capacity::of(
            options.memory_budget / 4 * 3,
            plan.threads,
            (plan.chunks.len(), chunk_bytes),
            whole_input,
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
pub(super) fn prepare_analyses(
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
pub(super) fn compare_spec(
    scenario: &Scenario,
    source: &dyn VolumeSource,
    summary: &InputSummary,
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
    let fsc_need = fsc_memory(source.shape());
    if scenario.distortion.contains(&"fsc") && fsc_need > memory_budget {
        return Err(format!(
            "{}: metric fsc needs the spectra of the whole volume in memory, {} > --memory-budget {}; select frc (per slice) or raise the budget",
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

/// The row of `point` (whose fitted chain is `chain`) from its measurements or its failure.
pub(super) fn result_row(
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
        pipeline: point.stages.iter().map(|s| s.to_json()).collect(),
        fitted: chain.fitted(),
        ..PointResult::new(point.id.clone(), point.index, params, provenance.clone())
    };
    let measured = measured.and_then(|m| match &m.group.distortion {
        Ok(distortion) => Ok((distortion.clone(), m)),
        Err(e) => Err(e.clone()),
    });
    match measured {
        Ok((distortion, m)) => {
            row.rate = Some(Rate::new(
                m.group.values,
                provenance.input_dtype.size(),
                m.compressed_bytes,
                (m.encode_seconds, m.decode_seconds),
                chain.side_files(),
            ));
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
