//! Scenarios from Python: load, validate, list the working points, run and check, each through
//! the library call of the CLI's `validate`, `run` and `check`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use photonqa::gate::{self, Baseline};
use photonqa::report;
use photonqa::runner::{self, DEFAULT_MEMORY_BUDGET, RunOptions};
use photonqa::scenario;
use photonqa::workflow;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::Value;

use crate::convert::{to_python, to_toml};
use crate::errors::{data_error, gate_error, photonqa_error, scenario_error};

/// The name of a scenario given as text or a dict, in errors; relative input paths are
/// relative to the working directory.
const DEFAULT_PATH: &str = "scenario.toml";

/// A validated scenario (the TOML schema of `photonqa run`).
#[pyclass(module = "photonqa", name = "Scenario", frozen)]
pub struct Scenario {
    inner: scenario::Scenario,
}

#[pymethods]
impl Scenario {
    /// Reads and validates a scenario file; relative input paths are relative to its folder.
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Scenario> {
        let inner = scenario::Scenario::load(&path).map_err(scenario_error)?;
        Ok(Scenario { inner })
    }

    /// Validates scenario text; `path` [default: scenario.toml] names it in errors and anchors
    /// relative input paths.
    #[staticmethod]
    #[pyo3(signature = (text, path=None))]
    fn from_toml(text: &str, path: Option<PathBuf>) -> PyResult<Scenario> {
        let path = path.unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
        let inner = scenario::Scenario::parse(text, &path).map_err(scenario_error)?;
        Ok(Scenario { inner })
    }

    /// Validates a scenario given as a dict of its TOML tables (`{"scenario": {...},
    /// "input": {...}, "pipeline": [{...}, ...], ...}`), written as TOML and read as
    /// [`Scenario::from_toml`] reads it: the same checks, the same messages (positions refer
    /// to that TOML text).
    #[staticmethod]
    #[pyo3(signature = (scenario, path=None))]
    fn from_dict(scenario: &Bound<'_, PyDict>, path: Option<PathBuf>) -> PyResult<Scenario> {
        let path = path.unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
        let text = match to_toml(scenario.as_any(), "")? {
            toml::Value::Table(table) => toml::to_string(&table)
                .map_err(|e| photonqa_error(format!("{}: {e}", path.display())))?,
            _ => unreachable!("a dict converts to a table"),
        };
        Self::from_toml(&text, Some(path))
    }

    /// `[scenario] name`.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// The scenario file (or the `path` it was given as text under).
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path.clone()
    }

    /// Opens the input and builds every working point's chain without running anything, as
    /// `photonqa validate`: a dict with `working_points`, `input`, `dtype`, `shape` and the
    /// shell `commands` the scenario would run.
    fn validate<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let source = self.inner.source.open().map_err(data_error)?;
        let chains = py
            .detach(|| runner::build_chains(&self.inner, source.as_ref()))
            .map_err(photonqa_error)?;
        let dict = PyDict::new(py);
        dict.set_item("working_points", chains.len())?;
        dict.set_item("input", source.label())?;
        dict.set_item("dtype", source.dtype().name())?;
        dict.set_item("shape", source.shape().to_vec())?;
        let commands: Vec<String> = self
            .inner
            .commands()
            .iter()
            .map(ToString::to_string)
            .collect();
        dict.set_item("commands", commands)?;
        Ok(dict)
    }

    /// The working points of the sweep, in sweep order: dicts with `index`, `id`, `swept`
    /// (`{"stage.param": value}`) and `pipeline` (every stage's configuration).
    fn working_points<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for point in self.inner.working_points() {
            let swept: serde_json::Map<String, Value> = point
                .swept
                .iter()
                .map(|(name, value)| (name.clone(), serde_json::json!(value)))
                .collect();
            let pipeline: Vec<Value> = point.stages.iter().map(|s| s.to_json()).collect();
            let dict = PyDict::new(py);
            dict.set_item("index", point.index)?;
            dict.set_item("id", &point.id)?;
            dict.set_item("swept", to_python(py, &Value::Object(swept))?)?;
            dict.set_item("pipeline", to_python(py, &Value::from(pipeline))?)?;
            list.append(dict)?;
        }
        Ok(list)
    }

    fn __repr__(&self) -> String {
        format!(
            "Scenario({:?}, {} working points, from {})",
            self.inner.name,
            self.inner.working_points().len(),
            self.inner.path.display()
        )
    }
}

/// Runs `work` (a run with `stop` as its interrupt) on a worker thread, while this thread looks
/// for signals between naps without the GIL: on Ctrl-C it sets `stop`, waits for the run to
/// stop at its next chunk (the points measured so far are kept, `resume=True` runs the rest) and
/// raises `KeyboardInterrupt`. Without a signal, returns what `work` returned.
fn until_interrupted<T: Send>(
    py: Python<'_>,
    stop: &AtomicBool,
    work: impl FnOnce() -> Result<T, String> + Send,
) -> PyResult<Result<T, String>> {
    std::thread::scope(|scope| {
        let worker = scope.spawn(work);
        let mut interrupted = None;
        while !worker.is_finished() {
            py.detach(|| std::thread::sleep(SIGNAL_CHECK));
            if interrupted.is_none()
                && let Err(signal) = py.check_signals()
            {
                stop.store(true, Ordering::Relaxed);
                interrupted = Some(signal);
            }
        }
        let result = worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match interrupted {
            Some(signal) => Err(signal),
            None => Ok(result),
        }
    })
}

/// How often a run looks for Ctrl-C: short beside a run, long beside a thread wake-up.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// Runs `scenario` into `out` as `photonqa run` does (the same files); returns a dict with the
/// rows (`results.jsonl`), the columns, the recommendation, the answer line and the counts.
#[pyfunction]
#[pyo3(signature = (scenario, out, *, resume=false, threads=None, progress=true, memory_budget=DEFAULT_MEMORY_BUDGET, allow_commands=false))]
pub fn run<'py>(
    py: Python<'py>,
    scenario: &Scenario,
    out: PathBuf,
    resume: bool,
    threads: Option<usize>,
    progress: bool,
    memory_budget: u64,
    allow_commands: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let scenario = &scenario.inner;
    workflow::refuse_commands(scenario, allow_commands).map_err(photonqa_error)?;
    let stop = Arc::new(AtomicBool::new(false));
    let options = RunOptions {
        resume,
        memory_budget,
        threads,
        progress,
        interrupt: Some(stop.clone()),
        ..RunOptions::new(out.clone())
    };
    let summary = until_interrupted(py, &stop, || workflow::run(scenario, &options))?
        .map_err(photonqa_error)?;
    let rows: Vec<Value> = summary
        .rows
        .iter()
        .map(|row| serde_json::to_value(row).expect("a row serialises"))
        .collect();
    let dict = PyDict::new(py);
    dict.set_item("rows", to_python(py, &Value::from(rows))?)?;
    dict.set_item("columns", summary.columns.clone())?;
    dict.set_item("recommendation", to_python(py, &summary.recommendation)?)?;
    dict.set_item("answer", report::answer(&summary.recommendation))?;
    dict.set_item("measured", summary.measured)?;
    dict.set_item("skipped", summary.skipped)?;
    dict.set_item("out", out)?;
    Ok(dict)
}

/// Reruns `scenario` and compares it with `baseline` as `photonqa check` does; returns a dict
/// with `passed`, `report` (the CLI's text), `notes` and `drifts` (one dict per failed case).
#[pyfunction]
#[pyo3(signature = (scenario, baseline, *, out=None, threads=None, memory_budget=DEFAULT_MEMORY_BUDGET, allow_commands=false))]
pub fn check<'py>(
    py: Python<'py>,
    scenario: &Scenario,
    baseline: PathBuf,
    out: Option<PathBuf>,
    threads: Option<usize>,
    memory_budget: u64,
    allow_commands: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let scenario = &scenario.inner;
    workflow::refuse_commands(scenario, allow_commands).map_err(photonqa_error)?;
    // A wrong baseline fails before the run.
    let baseline = Baseline::read(&baseline).map_err(gate_error)?;
    let stop = Arc::new(AtomicBool::new(false));
    let options = RunOptions {
        memory_budget,
        threads,
        progress: false,
        interrupt: Some(stop.clone()),
        ..RunOptions::new(PathBuf::new())
    };
    let report = until_interrupted(py, &stop, || {
        workflow::run_kept_or_temporary(scenario, out, options).map(|summary| {
            gate::check(
                &baseline,
                &summary.rows,
                &summary.columns,
                &scenario.tolerances,
            )
        })
    })?
    .map_err(photonqa_error)?;
    let drifts = PyList::empty(py);
    let cases =
        report
            .columns
            .iter()
            .map(|case| (None, case))
            .chain(report.points.iter().flat_map(|point| {
                point
                    .cases
                    .iter()
                    .map(move |case| (Some(&point.point_id), case))
            }));
    for (point_id, case) in cases {
        let Some(drift) = &case.drift else { continue };
        let entry = PyDict::new(py);
        entry.set_item("point_id", point_id)?;
        entry.set_item("name", &case.name)?;
        let value = |v: &Option<Value>| to_python(py, v.as_ref().unwrap_or(&Value::Null));
        entry.set_item("old", value(&case.old)?)?;
        entry.set_item("new", value(&case.new)?)?;
        entry.set_item("kind", drift.kind())?;
        entry.set_item("description", case.describe())?;
        drifts.append(entry)?;
    }
    let dict = PyDict::new(py);
    dict.set_item("passed", report.passed())?;
    dict.set_item("report", report.to_string())?;
    dict.set_item("notes", report.notes.clone())?;
    dict.set_item("drifts", drifts)?;
    Ok(dict)
}

/// Adds the class and the functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Scenario>()?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    Ok(())
}
