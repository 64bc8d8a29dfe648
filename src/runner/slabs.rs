//! Slab units: a working point over a slab of the input (a run of consecutive compression
//! chunks), so that one point of a large volume spreads over many tasks, each reading only its
//! slab (and the halo rows its metrics need).
//!
//! A run has whole-input dependencies, so slab units come in phases, each a job array whose
//! tasks read what the earlier phases wrote into `DIR/units`:
//! 1. `prepare` (one task): the first pass over the input (range, content hash), the fits of
//!    the data-derived stage parameters of every point and the original's histogram the
//!    analyses prepare on ([`Prepared`], `prepare.bin`);
//! 2. `measure` (unit = point x slab): rate and distortion partials of every chunk of the slab,
//!    and its decoded range (`<unit>.measure.bin`);
//! 3. `histogram`, when an analysis fits thresholds on the decoded data: the decoded histogram
//!    of the slab over the point's decoded range from all its `measure` files;
//! 4. `analyse`, when the scenario has analyses: their partials of every chunk, fitted on the
//!    point's decoded histogram from all its `histogram` files;
//! 5. the merge ([`merge`]): every chunk's partial, in chunk order, through the same folds as a
//!    run's (`Measured::fold`, [`super::science::Analyses::merge`]), so the results
//!    equal a single-machine run's to the last bit, timings aside.
//!
//! Partials are stored with postcard: f64 bit patterns, infinities included, as JSON cannot;
//! every file is sealed ([`super::seal`]): a damaged one is rerun, and never merged.
//! Unit `u` is point `u / slabs`, slab `u % slabs`; the slabs split the chunks evenly.
//! Not for a reconstruction (its slices need every projection row of a point) nor `command`
//! analyses (a program reads the whole decoded volume): those run as point units.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Map;

use super::RunRows;
use super::lock::Lock;
use super::measure::{
    Findings, Measured, PointMeasure, decoded_counts, measure_chunks, science_partials,
};
use super::passes::{self, FitCache, Fitted, InputSummary, Passes};
use super::provenance::Provenance;
use super::science::{self, Analyses};
use super::seal::{self, Sealed};
use super::stream::split_evenly;
use super::units::{Manifest, Setup, Unit, UnitState};
use crate::pipeline::Chain;
use crate::scenario::{Scenario, WorkingPoint};

/// A phase of slab units (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Rate and distortion partials, decoded range.
    Measure,
    /// The decoded histogram the analyses fit on.
    Histogram,
    /// The analyses' partials.
    Analyse,
}

impl Phase {
    /// The phase's name, as in file names and `--phase`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Measure => "measure",
            Phase::Histogram => "histogram",
            Phase::Analyse => "analyse",
        }
    }
}

/// `DIR/units/prepare.bin`, what every slab unit starts from.
#[derive(Debug, Serialize, Deserialize)]
pub struct Prepared {
    /// The first pass over the input.
    pub summary: InputSummary,
    /// Rows per compression chunk.
    pub chunk_slices: usize,
    /// The statistics stages fitted on, by chain prefix.
    pub fits: Vec<(String, Fitted)>,
    /// Why a point's parameters could not be fitted, by sweep index.
    pub point_errors: Vec<Option<String>>,
}

fn prepared_path(out: &Path) -> PathBuf {
    out.join(super::units::UNITS_DIR).join("prepare.bin")
}

/// `DIR/units/<unit>.<phase>.bin`: the outcome of a unit's phase.
pub fn outcome_path(out: &Path, unit: usize, phase: Phase) -> PathBuf {
    out.join(super::units::UNITS_DIR)
        .join(format!("{unit}.{}.bin", phase.name()))
}

/// `DIR/units/<unit>.<phase>.failed` (`prepare.failed`): why a task failed before it had an
/// outcome.
pub fn failure_path(out: &Path, unit: Option<(usize, Phase)>) -> PathBuf {
    let name = match unit {
        Some((unit, phase)) => format!("{unit}.{}.failed", phase.name()),
        None => "prepare.failed".into(),
    };
    out.join(super::units::UNITS_DIR).join(name)
}

fn save<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let bytes = postcard::to_stdvec(value).map_err(|e| format!("{}: {e}", path.display()))?;
    seal::write(path, &bytes)
}

/// Decodes the intact `payload` of the file `path` that `save` wrote.
fn decode<T: DeserializeOwned>(path: &Path, payload: &[u8]) -> Result<T, String> {
    postcard::from_bytes(payload)
        .map_err(|e| format!("{}: from another photonqa version: {e}", path.display()))
}

/// Reads a file `save` wrote: `None` when there is none; a damaged file is an error naming it.
fn load<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    match seal::read(path)? {
        Sealed::Intact(payload) => decode(path, &payload).map(Some),
        Sealed::Missing => Ok(None),
        Sealed::Damaged(why) => Err(super::units::rerun(&why)),
    }
}

/// Outcome of a phase of one unit: its chunks' results, or why its point failed.
type Outcome<T> = Result<T, String>;

/// The phases a scenario's slab units run, in order: with analyses, `histogram` too, which
/// writes empty counts at once when no analysis fits on the decoded data (known only once
/// the analyses are prepared on the data, after the jobs are submitted).
pub fn phases(scenario: &Scenario) -> Vec<Phase> {
    if scenario.analyses.is_empty() {
        vec![Phase::Measure]
    } else {
        vec![Phase::Measure, Phase::Histogram, Phase::Analyse]
    }
}

/// Refuses what slab units cannot run: an adaptive search, a reconstruction, `command`
/// analyses, and more slabs than chunks.
pub fn check(scenario: &Scenario, chunks: usize, slabs: usize) -> Result<(), String> {
    let file = scenario.path.display();
    let why = if scenario.search.is_some() {
        Some("an adaptive search picks its points while it runs")
    } else if scenario.reconstruction.is_some() {
        Some("a reconstruction needs every projection row of a point in one process")
    } else if scenario
        .analyses
        .iter()
        .any(|a| a.config.stage == "command")
    {
        Some("a command analysis reads the whole decoded volume")
    } else {
        None
    };
    if let Some(why) = why {
        return Err(format!(
            "{file}: cannot split points into slabs: {why}; submit without --slabs (one unit per point)"
        ));
    }
    if slabs == 0 || slabs > chunks {
        return Err(format!(
            "--slabs {slabs}: the input has {chunks} chunks of {} rows; a slab is at least one chunk (1 to {chunks})",
            scenario
                .chunk_slices
                .map_or("default".into(), |c| c.to_string())
        ));
    }
    Ok(())
}

/// The `prepare` task: writes `DIR/units/prepare.bin` and the manifest of `slabs` slabs per
/// point. Done already when the file is there.
pub fn prepare(
    scenario: &Scenario,
    out: &Path,
    slabs: usize,
    resources: (u64, Option<usize>),
) -> Result<bool, String> {
    let _lock = Lock::shared(out)?;
    let manifest = Manifest::of(scenario, slabs)?;
    if let Some(earlier) = Manifest::read(out)? {
        earlier.check(scenario, out)?;
        if earlier.slabs != slabs {
            return Err(format!(
                "{} holds units of {} slabs per point, not {slabs}; use a fresh --out",
                out.display(),
                earlier.slabs
            ));
        }
    }
    let setup = Setup::new(scenario, resources)?;
    check(scenario, setup.plan.chunks.len(), slabs)?;
    manifest.write(out)?;
    // A damaged file is written again (the fits depend on the input only).
    if let Sealed::Intact(payload) = seal::read(&prepared_path(out))? {
        decode::<Prepared>(&prepared_path(out), &payload)?;
        return Ok(false);
    }
    let prepared = (|| -> Result<Prepared, String> {
        let passes = setup.passes();
        let chains = super::build_chains(scenario, setup.source.as_ref())?;
        let progress = ProgressBar::hidden();
        let summary = passes::summarize(&passes, &progress)?;
        let mut fits = FitCache::new(&passes, &progress, &summary);
        super::session::prepare_analyses(scenario, setup.source.shape(), &mut fits)?;
        super::session::compare_spec(scenario, setup.source.as_ref(), &summary, resources.0)?;
        let point_errors = chains
            .into_iter()
            .map(|(_, mut chain)| chain.fit(&mut fits).err())
            .collect();
        Ok(Prepared {
            summary,
            chunk_slices: setup.plan.chunk_slices,
            fits: fits.saved(),
            point_errors,
        })
    })();
    let failed = failure_path(out, None);
    match prepared {
        Ok(prepared) => {
            save(&prepared_path(out), &prepared)?;
            remove_if_there(&failed)?;
            Ok(true)
        }
        Err(e) => {
            super::units::record(&failed, &e)?;
            Err(e)
        }
    }
}

fn remove_if_there(path: &Path) -> Result<(), String> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("{}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

/// What a slab unit's process knows: the scenario's prepared state on this input.
struct Context<'a> {
    scenario: &'a Scenario,
    out: &'a Path,
    setup: &'a Setup,
    prepared: Prepared,
    slabs: usize,
    points: Vec<WorkingPoint>,
    memory_budget: u64,
}

impl<'a> Context<'a> {
    fn new(
        scenario: &'a Scenario,
        out: &'a Path,
        setup: &'a Setup,
        memory_budget: u64,
    ) -> Result<Context<'a>, String> {
        let manifest = Manifest::read(out)?
            .filter(|m| m.slabs > 1)
            .ok_or_else(|| {
                format!(
                    "{}: no slab units here; `photonqa unit {} --out {} --prepare --slabs K` starts them",
                    out.display(),
                    scenario.path.display(),
                    out.display()
                )
            })?;
        manifest.check(scenario, out)?;
        let prepared = load::<Prepared>(&prepared_path(out))?.ok_or_else(|| {
            format!(
                "{}: not prepared yet; the prepare task (`photonqa unit --prepare`) runs first",
                prepared_path(out).display()
            )
        })?;
        if prepared.chunk_slices != setup.plan.chunk_slices
            || prepared.point_errors.len() != scenario.working_points().len()
        {
            return Err(format!(
                "{}: prepared for another chunking or sweep; use a fresh --out",
                prepared_path(out).display()
            ));
        }
        Ok(Context {
            scenario,
            out,
            setup,
            prepared,
            slabs: manifest.slabs,
            points: scenario.working_points(),
            memory_budget,
        })
    }

    fn units(&self) -> usize {
        self.points.len() * self.slabs
    }

    /// The chunk indices of slab `slab`.
    fn chunks(&self, slab: usize) -> Range<usize> {
        split_evenly(self.setup.plan.chunks.len(), self.slabs)[slab].clone()
    }

    /// Point `point`'s chain, fitted as the prepare task fitted it, and whether that failed.
    fn chain(&self, passes: &Passes, point: usize) -> Result<(Chain, Outcome<()>), String> {
        let mut chain = super::build_chain(
            self.scenario,
            &self.points[point],
            self.setup.source.as_ref(),
        )?;
        if let Some(e) = &self.prepared.point_errors[point] {
            return Ok((chain, Err(e.clone())));
        }
        let progress = ProgressBar::hidden();
        let mut fits = FitCache::restore(passes, &progress, self.prepared.fits.clone());
        let fitted = chain.fit(&mut fits);
        Ok((chain, fitted))
    }

    fn spec(&self) -> Result<crate::metrics::comparison::CompareSpec, String> {
        let source = self.setup.source.as_ref();
        super::session::compare_spec(
            self.scenario,
            source,
            &self.prepared.summary,
            self.memory_budget,
        )
    }

    fn analyses(&self, passes: &Passes) -> Result<Analyses, String> {
        let progress = ProgressBar::hidden();
        let mut fits = FitCache::restore(passes, &progress, self.prepared.fits.clone());
        super::session::prepare_analyses(self.scenario, self.setup.source.shape(), &mut fits)
    }

    /// The outcomes of `phase` of every slab of `point`, in slab order; `Err` names the first
    /// missing file.
    fn point_outcomes<T: DeserializeOwned>(
        &self,
        point: usize,
        phase: Phase,
    ) -> Result<Vec<Outcome<T>>, String> {
        (0..self.slabs)
            .map(|slab| {
                let path = outcome_path(self.out, point * self.slabs + slab, phase);
                load(&path)?.ok_or_else(|| format!("{}: missing", path.display()))
            })
            .collect()
    }

    /// The decoded histogram of `point` from its `histogram` outcomes, when the analyses
    /// need one.
    fn decoded_histogram(
        &self,
        point: usize,
        analyses: &Analyses,
    ) -> Result<Outcome<Option<crate::stats::histogram::Histogram>>, String> {
        if !analyses.needs_histogram() {
            return Ok(Ok(None));
        }
        let range = match self.decoded_range(point)? {
            Ok(range) => range,
            Err(e) => return Ok(Err(e)),
        };
        let binning = science::decoded_binning(self.setup.source.dtype(), range)?;
        let mut counts = binning.zeros();
        for part in self.point_outcomes::<Vec<u64>>(point, Phase::Histogram)? {
            match part {
                Ok(part) if part.len() == counts.len() => {
                    counts.iter_mut().zip(part).for_each(|(c, p)| *c += p)
                }
                Ok(_) => return Err(format!("point {point}: histograms of another binning")),
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(Some(binning.finish(counts))))
    }

    /// The decoded range of `point` from its `measure` outcomes.
    fn decoded_range(&self, point: usize) -> Result<Outcome<(f64, f64)>, String> {
        let mut range = (f64::INFINITY, f64::NEG_INFINITY);
        for part in self.point_outcomes::<Vec<Measured>>(point, Phase::Measure)? {
            match part {
                Ok(chunks) => {
                    for c in chunks {
                        range = (
                            range.0.min(c.decoded_range.0),
                            range.1.max(c.decoded_range.1),
                        );
                    }
                }
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(range))
    }
}

/// Runs `phase` of slab unit `unit` into `DIR/units/<unit>.<phase>.bin`, unless it is done
/// (a successful outcome is there). Returns the outcome's path and whether it ran now; `Err`
/// when the task failed, or its point did (then the outcome records why, for the merge).
pub fn run_unit(
    scenario: &Scenario,
    out: &Path,
    (unit, phase): (usize, Phase),
    resources: (u64, Option<usize>),
) -> Result<(PathBuf, bool), String> {
    let _lock = Lock::shared(out)?;
    let setup = Setup::new(scenario, resources)?;
    let context = Context::new(scenario, out, &setup, resources.0)?;
    if unit >= context.units() {
        return Err(format!(
            "{}: no unit {unit}: {} points x {} slabs are units 0 to {}",
            out.display(),
            context.points.len(),
            context.slabs,
            context.units() - 1
        ));
    }
    let path = outcome_path(out, unit, phase);
    if stored(&path)? == Stored::Succeeded {
        return Ok((path, false));
    }
    let failed = failure_path(out, Some((unit, phase)));
    let written = (|| -> Result<Outcome<()>, String> {
        if let Ok(list) = std::env::var(super::units::FAIL_UNIT_ENV)
            && list.split(',').any(|i| i.trim() == unit.to_string())
        {
            return Err(format!(
                "unit {unit} failed on purpose ({}={list})",
                super::units::FAIL_UNIT_ENV
            ));
        }
        run_phase(&context, unit, phase, &path)
    })();
    match written {
        Ok(Ok(())) => {
            remove_if_there(&failed)?;
            Ok((path, true))
        }
        Ok(Err(point_failed)) => {
            remove_if_there(&failed)?;
            Err(format!(
                "unit {unit} ({} {}): the point failed: {point_failed} (recorded in {})",
                context.points[unit / context.slabs].id,
                phase.name(),
                path.display()
            ))
        }
        Err(e) => {
            super::units::record(&failed, &e)?;
            Err(e)
        }
    }
}

/// What the outcome file of a unit's phase holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stored {
    /// No outcome yet.
    Missing,
    /// A damaged file: why, naming it.
    Damaged(String),
    /// The phase's partials.
    Succeeded,
    /// Its point's failure: why.
    PointFailed(String),
}

/// What the outcome at `path` holds (its whole content checked against its seal).
fn stored(path: &Path) -> Result<Stored, String> {
    let payload = match seal::read(path)? {
        Sealed::Intact(payload) => payload,
        Sealed::Missing => return Ok(Stored::Missing),
        Sealed::Damaged(why) => return Ok(Stored::Damaged(why)),
    };
    // Postcard writes a Result's variant first; a failure reads as any `Err`, whatever the
    // `Ok` type.
    match payload.first() {
        Some(0) => Ok(Stored::Succeeded),
        Some(1) => match decode::<Outcome<()>>(path, &payload)? {
            Err(why) => Ok(Stored::PointFailed(why)),
            Ok(()) => unreachable!("variant 1 is Err"),
        },
        _ => Err(format!("{}: not an outcome", path.display())),
    }
}

/// Measures `phase` of `unit` and saves its outcome; the inner `Err` is its point's failure.
fn run_phase(
    context: &Context,
    unit: usize,
    phase: Phase,
    path: &Path,
) -> Result<Outcome<()>, String> {
    let (point, slab) = (unit / context.slabs, unit % context.slabs);
    let passes = context.setup.passes();
    let progress = ProgressBar::hidden();
    let range = context.chunks(slab);
    let analyses = context.analyses(&passes)?;
    let (chain, fitted) = context.chain(&passes, point)?;
    let chain = fitted.map(|()| (&context.points[point], chain));
    let source = context.setup.source.as_ref();
    macro_rules! finish {
        ($outcome:expr) => {{
            let outcome = $outcome;
            save(path, &outcome)?;
            Ok(outcome.map(|_| ()))
        }};
    }
    match phase {
        Phase::Measure => {
            let spec = context.spec()?;
            finish!(match chain {
                Ok((point, chain)) => measure_chunks(
                    &passes,
                    (point, &chain),
                    &spec,
                    (analyses.needs_histogram(), None),
                    range,
                    &progress,
                )?,
                Err(e) => Err(e),
            })
        }
        Phase::Histogram if !analyses.needs_histogram() => finish!(Outcome::Ok(Vec::<u64>::new())),
        Phase::Histogram => {
            let decoded_range = context.decoded_range(point)?;
            let binning = decoded_range.and_then(|range_of_point| {
                science::decoded_binning(source.dtype(), range_of_point)
            });
            finish!(match (chain, binning) {
                (Ok((point, chain)), Ok(binning)) => {
                    decoded_counts(&passes, (point, &chain), &binning, range, &progress)?
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            })
        }
        Phase::Analyse => {
            let histogram = context.decoded_histogram(point, &analyses)?;
            let fits = histogram.and_then(|histogram| analyses.fit(histogram.as_ref()));
            let parts = match (chain, fits) {
                (Ok((point, chain)), Ok(fits)) => science_partials(
                    &passes,
                    (point, &chain),
                    (&analyses, &fits),
                    range,
                    &progress,
                )?,
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
            finish!(parts.and_then(|parts| {
                parts
                    .iter()
                    .map(|p| analyses.encode(p))
                    .collect::<Result<Vec<Vec<u8>>, String>>()
            }))
        }
    }
}

/// Every slab unit of `scenario` in `out` (`slabs` per point), in index order: done when every
/// phase has a successful outcome; failed when a phase's outcome is the point's failure, or
/// its task left a failure record.
pub fn survey(scenario: &Scenario, out: &Path, slabs: usize) -> Result<Vec<Unit>, String> {
    let points = scenario.working_points();
    let phases = phases(scenario);
    let mut units = Vec::with_capacity(points.len() * slabs);
    for (index, point) in points.iter().enumerate() {
        for slab in 0..slabs {
            let unit = index * slabs + slab;
            let mut state = UnitState::Done;
            for &phase in &phases {
                let path = outcome_path(out, unit, phase);
                let failed = failure_path(out, Some((unit, phase)));
                state = match stored(&path)? {
                    Stored::Succeeded => continue,
                    Stored::PointFailed(why) => {
                        UnitState::Failed(format!("{}: {why}", phase.name()))
                    }
                    Stored::Damaged(why) => UnitState::Damaged(why),
                    Stored::Missing => match fs::read_to_string(&failed) {
                        Ok(why) => UnitState::Failed(format!("{}: {}", phase.name(), why.trim())),
                        Err(_) => UnitState::Pending,
                    },
                };
                break;
            }
            units.push(Unit {
                index: unit,
                label: format!("{} slab {}/{slabs}", point.id, slab + 1),
                state,
            });
        }
    }
    Ok(units)
}

/// Whether `phase` of unit `unit` has a successful outcome, intact.
pub fn phase_done(out: &Path, unit: usize, phase: Phase) -> bool {
    stored(&outcome_path(out, unit, phase)) == Ok(Stored::Succeeded)
}

/// Whether the prepare task is done (`Ok(true)`), not yet (`Ok(false)`), or failed or its file
/// is damaged (`Err`: why).
pub fn prepare_state(out: &Path) -> Result<Result<bool, String>, String> {
    match seal::read(&prepared_path(out))? {
        Sealed::Intact(_) => return Ok(Ok(true)),
        Sealed::Damaged(why) => return Ok(Err(why)),
        Sealed::Missing => {}
    }
    match fs::read_to_string(failure_path(out, None)) {
        Ok(why) => Ok(Err(why.trim().to_string())),
        Err(_) => Ok(Ok(false)),
    }
}

/// Merges the slab units of `scenario` in `out` into the rows a run logs: each point's chunk
/// partials, in chunk order, through a run's folds.
pub fn merge(
    scenario: &Scenario,
    out: &Path,
    resources: (u64, Option<usize>),
) -> Result<RunRows, String> {
    let setup = Setup::new(scenario, resources)?;
    let context = Context::new(scenario, out, &setup, resources.0)?;
    // A point's failure is a row of the results, as in a run; a phase with no outcome is not.
    // (Each outcome's seal is checked as the merge reads it.)
    let phases = phases(scenario);
    let missing: Vec<usize> = (0..context.units())
        .filter(|&u| phases.iter().any(|&p| !outcome_path(out, u, p).exists()))
        .collect();
    super::units::check_complete(out, &missing, context.units())?;
    let passes = setup.passes();
    let analyses = context.analyses(&passes)?;
    let spec = context.spec()?;
    let source = setup.source.as_ref();
    let provenance = Provenance::new(
        scenario,
        source,
        context.prepared.summary.hash.clone(),
        setup.plan.chunk_slices,
    )?;
    let mut rows = Vec::with_capacity(context.points.len());
    for (index, point) in context.points.iter().enumerate() {
        let (chain, fitted) = context.chain(&passes, index)?;
        let measured = match fitted {
            Ok(()) => merge_point(&context, index, &analyses)?,
            Err(e) => Err(e),
        };
        let measured = measured.map(|(measured, science)| {
            PointMeasure::alone(measured, &spec, &scenario.distortion, science)
        });
        rows.push(super::session::result_row(
            point,
            &chain,
            measured,
            &provenance,
        ));
    }
    super::units::write_merged(scenario, out, rows, source.shape())
}

/// The measurements of point `point` from its slab units' outcomes, or its failure.
fn merge_point(
    context: &Context,
    point: usize,
    analyses: &Analyses,
) -> Result<Outcome<(Measured, Findings)>, String> {
    let mut chunks = Vec::new();
    for part in context.point_outcomes::<Vec<Measured>>(point, Phase::Measure)? {
        match part {
            Ok(part) => chunks.extend(part),
            Err(e) => return Ok(Err(e)),
        }
    }
    let measured = Measured::fold(chunks)?;
    if analyses.is_empty() {
        return Ok(Ok((measured, Map::new())));
    }
    let histogram = match context.decoded_histogram(point, analyses)? {
        Ok(histogram) => histogram,
        Err(e) => return Ok(Err(e)),
    };
    let mut parts = Vec::new();
    for part in context.point_outcomes::<Vec<Vec<u8>>>(point, Phase::Analyse)? {
        match part {
            Ok(part) => {
                for bytes in part {
                    parts.push(analyses.decode(&bytes)?);
                }
            }
            Err(e) => return Ok(Err(e)),
        }
    }
    let science = analyses.fit(histogram.as_ref()).and_then(|fits| {
        let total = analyses.merge(parts)?;
        analyses.finish(&fits, total, context.setup.source.shape())
    });
    Ok(science.map(|science| (measured, science)))
}
