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
pub mod passes;
pub mod provenance;
pub mod reconstruction;
pub mod results;
pub mod science;
pub mod seal;
pub mod slabs;
pub mod slices;
pub mod slurm;
pub mod units;

use std::collections::VecDeque;
use std::ops::Range;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::{Map, Value};

use crate::analysis::registry as analysis_registry;
use crate::analysis::{Context, Slabs};
use crate::data::hdf5io::check_filters_available;
use crate::data::{NdArray, VolumeSource};
use crate::gate::Baseline;
use crate::metrics::comparison::{BoundSums, CompareSpec, DataFacts, Partial, fsc_memory, unmet};
use crate::metrics::histogram::Binning;
use crate::metrics::registry as metric_registry;
use crate::pipeline::Chain;
use crate::pipeline::ParamValue;
use crate::pipeline::chain::StatsProvider;
use crate::pipeline::hdf5::Storage;
use crate::report;
use crate::scenario::{Scenario, WorkingPoint};
use crate::select::{self, Evaluation};
use external::Commands;
use passes::{FitCache, Passes, min_max};
use provenance::Provenance;
use reconstruction::{Gathered, Reconstruction};
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
    check_columns(scenario, &columns(scenario, source.shape()))?;
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
    // Fits and measures the points not in the log yet, in parallel; returns how many.
    let run_points = |points: Vec<(WorkingPoint, Chain)>, fits: &mut FitCache| {
        let done = log.done();
        let mut fitted = Vec::new();
        for (point, mut chain) in points {
            if !done.contains_key(&point.id) && only.is_none_or(|o| o.contains(&point.index)) {
                let fit = chain.fit(fits);
                fitted.push((point, chain, fit));
            }
        }
        progress.inc_length((fitted.len() * plan.chunks.len()) as u64);
        let outcomes: Vec<Result<(), String>> = pool.install(|| {
            fitted
                .par_iter()
                .map(|(point, chain, fit)| {
                    let measured = match fit {
                        Ok(()) => measure_point(
                            &passes,
                            (point, chain),
                            &spec,
                            Science {
                                analyses: &analyses,
                                reconstruction: reconstruction.as_ref(),
                                commands: commands.as_ref(),
                            },
                            &progress,
                        ),
                        Err(e) => Err(e.clone()),
                    };
                    let row = result_row(scenario, point, chain, measured, &spec, &provenance);
                    log.append(row)
                })
                .collect()
        });
        outcomes
            .into_iter()
            .collect::<Result<(), String>>()
            .map(|()| fitted.len())
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

/// Checks that the limits, the objective and the gate's tolerances name columns the results
/// will have (`columns`, or a rate column).
fn check_columns(scenario: &Scenario, columns: &[String]) -> Result<(), String> {
    let known = |c: &str| Rate::COLUMNS.contains(&c) || columns.iter().any(|k| k == c);
    let listing = || {
        let mut all: Vec<&str> = Rate::COLUMNS[..4].to_vec();
        all.extend(columns.iter().map(String::as_str));
        all.join(", ")
    };
    let file = scenario.path.display();
    for (limit, (line, col)) in scenario.limits.iter().zip(&scenario.limit_positions) {
        if !known(&limit.column) {
            return Err(format!(
                "{file}:{line}:{col}: limit on '{}': the results have no such column (columns: {})",
                limit.column,
                listing()
            ));
        }
    }
    if !known(&scenario.objective.column) {
        return Err(format!(
            "{file}: objective '{}': the results have no such column (columns: {})",
            scenario.objective.column,
            listing()
        ));
    }
    scenario
        .tolerances
        .check_columns(&Baseline::gated_columns(columns))
        .map_err(|e| format!("{file}: {e}"))
}

/// Rate and comparison partials of one working point, or of one of its chunks. Slab units
/// ([`slabs`]) store a chunk's: what a reconstruction and the analyses add is not stored.
#[derive(serde::Serialize, serde::Deserialize)]
struct Measured {
    compressed_bytes: u64,
    partial: Partial,
    encode_seconds: f64,
    decode_seconds: f64,
    /// Smallest and largest decoded value (when asked for).
    decoded_range: (f64, f64),
    /// Results of the science analyses by label.
    #[serde(skip)]
    science: Map<String, Value>,
    /// The reconstructed rows' decoded projections (empty without a reconstruction).
    #[serde(skip)]
    gathered: Vec<Gathered>,
    /// Distortion metrics of the reconstructed slices.
    #[serde(skip)]
    reconstructed: Map<String, Value>,
}

/// One chunk through the chain: its rows, the original and the decoded data, and the cost.
struct Trip {
    rows: Range<usize>,
    original: NdArray,
    decoded: NdArray,
    bytes: u64,
    encode_seconds: f64,
    decode_seconds: f64,
    /// The chunk's measurements of the bounds the chain's stages promise.
    bounds: Vec<BoundSums>,
}

/// The science of a run: the streamed analyses, the reconstruction (whose slices they then
/// analyse), the external programs.
#[derive(Clone, Copy)]
struct Science<'a> {
    analyses: &'a Analyses,
    reconstruction: Option<&'a Reconstruction>,
    commands: Option<&'a Commands>,
}

/// Rate, distortion and the science analyses of one working point: of its decoded data, or of
/// the slices reconstructed from it.
fn measure_point(
    passes: &Passes,
    (point, chain): (&WorkingPoint, &Chain),
    spec: &CompareSpec,
    science: Science,
    progress: &ProgressBar,
) -> Result<Measured, String> {
    let Science {
        analyses,
        reconstruction,
        commands,
    } = science;
    let mut measured = measure(
        passes,
        chain,
        spec,
        (analyses.needs_histogram(), reconstruction),
        progress,
    )?;
    if let Some(r) = reconstruction {
        (measured.reconstructed, measured.science) =
            r.measure(std::mem::take(&mut measured.gathered))?;
    } else if !analyses.is_empty() {
        measured.science = analyse(passes, chain, analyses, measured.decoded_range, progress)?;
    }
    if let Some(commands) = commands {
        measured
            .science
            .extend(commands.measure(passes, chain, &point.id, progress)?);
    }
    Ok(measured)
}

/// Round-trips every chunk through the chain and merges the partials in chunk order; keeps the
/// decoded range when asked, and gathers what a reconstruction needs.
fn measure(
    passes: &Passes,
    chain: &Chain,
    spec: &CompareSpec,
    (with_range, reconstruction): (bool, Option<&Reconstruction>),
    progress: &ProgressBar,
) -> Result<Measured, String> {
    let all = 0..passes.chunks.len();
    let chunks = measure_chunks(
        passes,
        chain,
        spec,
        (with_range, reconstruction),
        all,
        progress,
    )?;
    Measured::fold(chunks)
}

/// The measurements of chunks `range` (chunk indices), one per chunk in order, but that the
/// exact counts of a group of chunks are folded into its first; [`Measured::fold`] merges them.
fn measure_chunks(
    passes: &Passes,
    chain: &Chain,
    spec: &CompareSpec,
    (with_range, reconstruction): (bool, Option<&Reconstruction>),
    range: Range<usize>,
    progress: &ProgressBar,
) -> Result<Vec<Measured>, String> {
    let measure_chunk = |x: &NdArray, y: &NdArray, held, core, own: &Trip| {
        let mut partial = spec.partial(x, y, held, core)?;
        partial.bounds = own.bounds.clone();
        let (lo, hi, _) = if with_range {
            min_max(&own.decoded)
        } else {
            (f64::INFINITY, f64::NEG_INFINITY, 0)
        };
        Ok(Measured {
            compressed_bytes: own.bytes,
            partial,
            encode_seconds: own.encode_seconds,
            decode_seconds: own.decode_seconds,
            decoded_range: (lo, hi),
            science: Map::new(),
            gathered: reconstruction
                .map(|r| vec![r.gather(&own.decoded)])
                .unwrap_or_default(),
            reconstructed: Map::new(),
        })
    };
    // Histogram counts are exact: fold them into the group's first partial right away.
    let absorb =
        |first: &mut Measured, next: &mut Measured| first.partial.absorb_counts(&mut next.partial);
    stream(
        passes,
        chain,
        (spec.halo(), range),
        progress,
        measure_chunk,
        absorb,
    )
}

impl Measured {
    /// Merges chunk measurements given in chunk order.
    fn fold(chunks: Vec<Measured>) -> Result<Measured, String> {
        let mut total = Measured {
            compressed_bytes: 0,
            partial: Partial::default(),
            encode_seconds: 0.0,
            decode_seconds: 0.0,
            decoded_range: (f64::INFINITY, f64::NEG_INFINITY),
            science: Map::new(),
            gathered: Vec::new(),
            reconstructed: Map::new(),
        };
        for chunk in chunks {
            total.compressed_bytes += chunk.compressed_bytes;
            total.partial.merge(&chunk.partial)?;
            total.encode_seconds += chunk.encode_seconds;
            total.decode_seconds += chunk.decode_seconds;
            total.decoded_range.0 = total.decoded_range.0.min(chunk.decoded_range.0);
            total.decoded_range.1 = total.decoded_range.1.max(chunk.decoded_range.1);
            total.gathered.extend(chunk.gathered);
        }
        Ok(total)
    }
}

/// The science analyses of one working point: the decoded data's thresholds (one more pass
/// for its histogram when a method fits them), then the partials (one more pass).
fn analyse(
    passes: &Passes,
    chain: &Chain,
    analyses: &Analyses,
    decoded_range: (f64, f64),
    progress: &ProgressBar,
) -> Result<Map<String, Value>, String> {
    let source = passes.source;
    let all = 0..passes.chunks.len();
    let histogram = if analyses.needs_histogram() {
        let binning = science::decoded_binning(source.dtype(), decoded_range)?;
        let counts = decoded_counts(passes, chain, &binning, all.clone(), progress)?;
        Some(binning.finish(counts))
    } else {
        None
    };
    let fits = analyses.fit(histogram.as_ref())?;
    let parts = science_partials(passes, chain, (analyses, &fits), all, progress)?;
    let total = analyses.merge(parts)?;
    analyses.finish(&fits, total, source.shape())
}

/// The histogram counts of the decoded data of chunks `range` in `binning`.
fn decoded_counts(
    passes: &Passes,
    chain: &Chain,
    binning: &Binning,
    range: Range<usize>,
    progress: &ProgressBar,
) -> Result<Vec<u64>, String> {
    progress.inc_length(range.len() as u64);
    let count = |_: &NdArray, _: &NdArray, _, _, own: &Trip| {
        let mut counts = binning.zeros();
        binning.accumulate(&own.decoded, &mut counts);
        Ok(counts)
    };
    let parts = stream(passes, chain, (0, range), progress, count, |_, _| Ok(()))?;
    let mut counts = binning.zeros();
    for part in parts {
        counts.iter_mut().zip(part).for_each(|(c, p)| *c += p);
    }
    Ok(counts)
}

/// The analyses' partials of chunks `range`, with the decoded data's fits, in chunk order.
fn science_partials(
    passes: &Passes,
    chain: &Chain,
    (analyses, fits): (&Analyses, &science::Fits),
    range: Range<usize>,
    progress: &ProgressBar,
) -> Result<Vec<science::SciencePartial>, String> {
    progress.inc_length(range.len() as u64);
    let shape = passes.source.shape();
    let partial = |x: &NdArray, y: &NdArray, held, core, _: &Trip| {
        let slabs = Slabs {
            original: x,
            decoded: y,
            held,
            core,
            shape,
        };
        analyses.partial(fits, &slabs)
    };
    let halo = analyses.halo();
    stream(passes, chain, (halo, range), progress, partial, |_, _| {
        Ok(())
    })
}

/// Round-trips the chunks of `range` (chunk indices) through the chain and maps each with
/// `f(original, decoded, held, core, own trip)`, where `held` is the chunk's rows `core`
/// extended by up to `halo` rows on each side; results in chunk order. `absorb(first, next)` may move what merges in any order
/// (exact counts) from each result into its group's first, to bound memory.
///
/// Chunks run in groups of consecutive chunks, the groups in parallel and the chunks of a group
/// in order, so that the decoded rows beyond a chunk (its halo, e.g. the SSIM window) come from
/// the neighbouring chunks' round trips, kept while needed. A group starts by round-tripping
/// the chunks before it that its halo reaches (not counted in the rate). The grouping changes
/// neither the data nor the order of merges, so results do not depend on it.
fn stream<P: Send>(
    passes: &Passes,
    chain: &Chain,
    (halo, range): (usize, Range<usize>),
    progress: &ProgressBar,
    f: impl Fn(&NdArray, &NdArray, Range<usize>, Range<usize>, &Trip) -> Result<P, String> + Sync,
    absorb: impl Fn(&mut P, &mut P) -> Result<(), String> + Sync,
) -> Result<Vec<P>, String> {
    let groups = split_evenly(range.len(), passes.pool.current_num_threads() * 4)
        .into_iter()
        .map(|g| g.start + range.start..g.end + range.start);
    let groups: Vec<Range<usize>> = groups.collect();
    let per_group: Vec<Vec<P>> = passes.pool.install(|| {
        groups
            .par_iter()
            .map(|group| {
                let mut out = stream_group(passes, chain, halo, group.clone(), progress, &f)?;
                if let [first, rest @ ..] = out.as_mut_slice() {
                    for next in rest {
                        absorb(first, next)?;
                    }
                }
                Ok(out)
            })
            .collect::<Result<_, String>>()
    })?;
    Ok(per_group.into_iter().flatten().collect())
}

/// `n` items cut into at most `parts` contiguous, nearly equal ranges.
fn split_evenly(n: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.clamp(1, n.max(1));
    (0..parts)
        .map(|i| i * n / parts..(i + 1) * n / parts)
        .filter(|r| !r.is_empty())
        .collect()
}

fn stream_group<P>(
    passes: &Passes,
    chain: &Chain,
    halo: usize,
    group: Range<usize>,
    progress: &ProgressBar,
    f: &(impl Fn(&NdArray, &NdArray, Range<usize>, Range<usize>, &Trip) -> Result<P, String> + Sync),
) -> Result<Vec<P>, String> {
    let chunks = &passes.chunks;
    let rows = passes.source.shape()[0];
    let chunk_of = |row: usize| chunks.partition_point(|c| c.end <= row);
    let round_trip = |k: usize| -> Result<Trip, String> {
        let rows = chunks[k].clone();
        let original = passes
            .source
            .read_slab(rows.clone())
            .map_err(|e| e.to_string())?;
        let trip = chain.round_trip(&original).map_err(|e| e.to_string())?;
        Ok(Trip {
            rows,
            original,
            decoded: trip.decoded,
            bytes: trip.encoded_bytes as u64,
            encode_seconds: trip.encode_seconds,
            decode_seconds: trip.decode_seconds,
            bounds: trip.bounds,
        })
    };
    // Round trips of consecutive chunks, oldest first, kept while a halo may reach them.
    let mut kept: VecDeque<(usize, Trip)> = VecDeque::new();
    let mut out = Vec::with_capacity(group.len());
    for k in group {
        let core = chunks[k].clone();
        let held = core.start.saturating_sub(halo)..(core.end + halo).min(rows);
        let (first, last) = (chunk_of(held.start), chunk_of(held.end - 1));
        while kept.front().is_some_and(|(j, _)| *j < first) {
            kept.pop_front();
        }
        let next = kept.back().map_or(first, |(j, _)| j + 1);
        for j in next..=last {
            kept.push_back((j, round_trip(j)?));
        }
        let trips: Vec<&Trip> = kept.iter().map(|(_, t)| t).collect();
        let own = &kept.iter().find(|(j, _)| *j == k).expect("kept above").1;
        let value = if let [only] = trips.as_slice() {
            f(&only.original, &only.decoded, held, core, own)?
        } else {
            let cut = |t: &Trip, a: &NdArray| {
                let from = held.start.max(t.rows.start) - t.rows.start;
                let to = held.end.min(t.rows.end) - t.rows.start;
                a.slice_rows(from..to)
            };
            let original: Vec<NdArray> = trips.iter().map(|t| cut(t, &t.original)).collect();
            let decoded: Vec<NdArray> = trips.iter().map(|t| cut(t, &t.decoded)).collect();
            f(
                &NdArray::concatenate(&original)?,
                &NdArray::concatenate(&decoded)?,
                held,
                core,
                own,
            )?
        };
        out.push(value);
        progress.inc(1);
    }
    Ok(out)
}

fn result_row(
    scenario: &Scenario,
    point: &WorkingPoint,
    chain: &Chain,
    measured: Result<Measured, String>,
    spec: &CompareSpec,
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
        provenance: provenance.clone(),
    };
    match measured {
        Ok(m) => {
            let values = m.partial.point.count;
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
            row.bounds = m.partial.bounds.iter().map(BoundSums::check).collect();
            match spec.finish(&m.partial, &scenario.distortion) {
                Ok(values) => {
                    row.nonfinite_decoded = Some(m.partial.point.nonfinite_decoded);
                    row.distortion = values;
                    row.science = m.science;
                    row.reconstructed = m.reconstructed;
                }
                Err(e) => {
                    row.status = Status::Error;
                    row.error = Some(e);
                    row.rate = None;
                }
            }
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
