//! The runner: streams the input chunk by chunk along axis 0 under a memory budget, fits the
//! data-derived stage parameters, and measures rate and distortion of every working point.
//!
//! Work is a list of independent units (working point x chunk) whose partial results
//! ([`Partial`]: point sums, SSIM row sums; byte counts) merge in chunk order. A chunk's
//! partial may need decoded rows of its neighbours (the SSIM window's halo).

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
use crate::pipeline::ParamValue;
use crate::pipeline::chain::StatsProvider;
use crate::pipeline::hdf5::Storage;
use crate::report;
use crate::scenario::{Scenario, WorkingPoint};
use crate::select::{self, Evaluation};
use external::Commands;
use measure::{PointMeasure, Science, measure_batch};
use passes::{FitCache, Passes};
use provenance::Provenance;
use reconstruction::Reconstruction;
use replay::Replay;
use results::{EarlierResults, PointResult, Rate, Status};
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

/// Runs a scenario: every working point not already in `OUT/results.jsonl`.
pub fn run(scenario: &Scenario, options: &RunOptions) -> Result<RunSummary, String> {
    run_subset(scenario, options, None)
}

/// Runs the working points whose sweep index is in `only` (every point when `None`) that are
/// not already in `OUT/results.jsonl`. With `only`, the run is a part of a larger one (a unit,
/// see [`units`]): `OUT/results.csv` and `OUT/recommendation.json` are left to
/// [`write_outputs`] once every part is in, and the summary's recommendation is null. A
/// scenario with an adaptive search picks its points as it goes, so it has no subsets.
pub fn run_subset(
    scenario: &Scenario,
    options: &RunOptions,
    only: Option<&[usize]>,
) -> Result<RunSummary, String> {
    if only.is_some() && scenario.search.is_some() {
        return Err(format!(
            "{}: an adaptive search picks its points while it runs, so they cannot run apart",
            scenario.path.display()
        ));
    }
    let source = scenario.source.open().map_err(|e| e.to_string())?;
    let chains = build_chains(scenario, source.as_ref())?;
    if let Some(bad) = only.and_then(|o| o.iter().find(|&&i| i >= chains.len())) {
        return Err(format!(
            "{}: no working point {bad}: the scenario has {} (0 to {})",
            scenario.path.display(),
            chains.len(),
            chains.len().saturating_sub(1)
        ));
    }
    // The reconstruction's share of the budget is set aside before the chunks get theirs.
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
    let plan = Plan::new(
        source.shape(),
        source.row_bytes(),
        scenario.chunk_slices,
        options.memory_budget.saturating_sub(reconstruction_need),
        options.threads,
    )?;
    let pool = plan.pool()?;
    let passes = Passes::new(source.as_ref(), &plan, &pool);

    // Before the first pass over the input: a busy or wrong --out, or --resume, fails at once.
    // The lock is held until the outputs are written.
    let _lock = lock::Lock::exclusive(&options.out, "run")?;
    let earlier = EarlierResults::read(&options.out, options.resume)?;
    for note in &earlier.notes {
        eprintln!("photonqa: {note}");
    }

    let progress = ProgressBar::new(plan.chunks.len() as u64).with_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} chunks, {eta} left")
            .expect("valid template")
            .progress_chars("=> "),
    );
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
    // With a reconstruction, the analyses run on its slices, not on the projections.
    let analyses = match scenario.reconstruction {
        Some(_) => Analyses::default(),
        None => prepare_analyses(scenario, source.shape(), &mut fits)?,
    };
    let commands = Commands::prepare(&scenario.analyses, &passes, &progress)?;
    let reconstruction = match &scenario.reconstruction {
        Some(spec) => {
            progress.set_message("reconstruct");
            let prepared = Reconstruction::prepare(scenario, spec)
                .map_err(|e| format!("{}: {e}", scenario.path.display()))?;
            Some(prepared)
        }
        None => None,
    };

    progress.set_message("points");
    let spec = compare_spec(scenario, source.as_ref(), &summary, options.memory_budget)?;
    let science = Science {
        analyses: &analyses,
        reconstruction: reconstruction.as_ref(),
        commands: commands.as_ref(),
    };
    // Fits and measures the points not in the log yet, in batches; returns how many.
    let run_points = |points: Vec<(WorkingPoint, Chain)>, fits: &mut FitCache| {
        let done = log.done();
        let mut ready = Vec::new();
        let mut count = 0;
        for (point, mut chain) in points {
            if done.contains_key(&point.id) || !only.is_none_or(|o| o.contains(&point.index)) {
                continue;
            }
            count += 1;
            match chain.fit(fits) {
                Ok(()) => ready.push((point, chain)),
                Err(e) => log.append(result_row(&point, &chain, Err(e), &provenance))?,
            }
        }
        let chunk_bytes = plan.chunk_slices * source.row_bytes();
        let capacity = sweep::Capacity::of(
            options.memory_budget / 4 * 3,
            plan.threads,
            (plan.chunks.len(), chunk_bytes),
        );
        let batches = sweep::batches(&ready, options.share, capacity);
        // A quarter of the budget keeps lossy chains' bytes for the passes after the first.
        let replay_budget = options.memory_budget / 4 / batches.len().clamp(1, plan.threads) as u64;
        pool.install(|| {
            batches.par_iter().try_for_each(|batch| {
                let replay = Replay::new(replay_budget, &options.out);
                let names = &scenario.distortion;
                let measured = measure_batch(
                    &passes,
                    batch,
                    (&spec, names),
                    science,
                    Some(&replay),
                    &progress,
                )?;
                for ((point, chain), m) in batch.points.iter().zip(measured) {
                    log.append(result_row(point, chain, m, &provenance))?;
                }
                Ok::<(), String>(())
            })
        })?;
        Ok::<usize, String>(count)
    };
    let mut measured = 0;
    let mut searches = Vec::new();
    match &scenario.search {
        None => measured += run_points(chains, &mut fits)?,
        Some(search) => {
            // Values off the grid are numbered after it, in the (deterministic) order the
            // searches reach them, so a resumed run numbers them alike.
            let mut next_index = chains.len();
            for family in families(chains, &search.label) {
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
                    let chain = build_chain(scenario, &point, source.as_ref())?;
                    let id = point.id.clone();
                    measured += run_points(vec![(point, chain)], &mut fits)?;
                    let row = log.row(&id).expect("measured or logged above");
                    Evaluation::of(&row, &scenario.limits, &scenario.objective)
                };
                let result = select::search(&search.interval, &mut evaluate)?;
                if result.falls_back() {
                    measured += run_points(family, &mut fits)?;
                }
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
                searches.push(serde_json::json!({
                    "parameter": search.label,
                    "others": others,
                    "summary": result.summary(),
                    "search": result.to_json(),
                }));
            }
        }
    }
    progress.finish_and_clear();

    let rows = log.rows();
    let columns = columns(scenario, source.shape());
    let recommendation = match only {
        Some(_) => Value::Null,
        None => write_outputs(
            scenario,
            (&options.out, &rows, &columns),
            scenario.search.is_some().then_some(searches),
            (options.memory_budget, options.threads),
        )?,
    };
    Ok(RunSummary {
        rows,
        measured,
        skipped,
        columns,
        recommendation,
    })
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

/// Writes `OUT/results.csv`, `OUT/recommendation.json` and the report (`OUT/report.html`,
/// `OUT/summary.md`, `OUT/plots/`) from the rows of every point (in sweep order) with the metric
/// columns `columns`, and returns the recommendation; `searches` are the reports of the
/// adaptive searches, when the scenario has them. The report's slice triptych of the chosen (or
/// closest) point takes one more pass over the input within `resources` (memory budget,
/// threads). A run ends with it, and so does a merge of units ([`units::merge`]).
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
    // A failed point has no decoded data to show.
    let triptych = report::featured(&selection)
        .filter(|(row, _)| row.status == Status::Ok)
        .map(|(row, _)| slices::worst_slice(scenario, row, memory_budget, threads))
        .transpose()?;
    report::write_report(
        out,
        scenario,
        rows,
        columns,
        &scenario.limits,
        &scenario.objective,
        triptych.as_ref(),
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
