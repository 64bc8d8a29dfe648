//! The native part of the Python package `photonqa` (`photonqa._photonqa`): NumPy arrays in,
//! the numbers of the CLI out. Every function calls the library function the CLI calls; this
//! crate only converts arguments and results and releases the GIL while the library computes.

// A Python function's keyword arguments (the CLI's options) are its Rust parameters.
#![allow(clippy::too_many_arguments)]

mod convert;
mod errors;
mod scenario;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use numpy::{IntoPyArray, PyArrayDyn, PyReadonlyArrayDyn};
use photonqa::analysis::components::Connectivity;
use photonqa::analysis::fbp::{self, Fbp, Filter};
use photonqa::data::{Element, IntoNdArray, MemorySource, ViewSource, VolumeSource};
use photonqa::metrics::ssim::SsimWindow;
use photonqa::pipeline::registry;
use photonqa::runner::analyze::Segmenting;
use photonqa::runner::compare::CompareOptions;
use photonqa::runner::{self, DEFAULT_MEMORY_BUDGET};
use photonqa::with_array;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use convert::{to_python, to_toml};
use errors::{data_error, photonqa_error, scenario_error};

/// A NumPy array of one of photonqa's dtypes, borrowed read-only for the length of a call.
enum Borrowed<'py> {
    Uint8(PyReadonlyArrayDyn<'py, u8>),
    Uint16(PyReadonlyArrayDyn<'py, u16>),
    Uint32(PyReadonlyArrayDyn<'py, u32>),
    Uint64(PyReadonlyArrayDyn<'py, u64>),
    Int8(PyReadonlyArrayDyn<'py, i8>),
    Int16(PyReadonlyArrayDyn<'py, i16>),
    Int32(PyReadonlyArrayDyn<'py, i32>),
    Int64(PyReadonlyArrayDyn<'py, i64>),
    Float32(PyReadonlyArrayDyn<'py, f32>),
    Float64(PyReadonlyArrayDyn<'py, f64>),
}

/// Runs `$body` with `$view` bound to the typed `ArrayViewD` of a [`Borrowed`].
macro_rules! with_view {
    ($borrowed:expr, $view:ident => $body:expr) => {
        match $borrowed {
            Borrowed::Uint8(a) => {
                let $view = a.as_array();
                $body
            }
            Borrowed::Uint16(a) => {
                let $view = a.as_array();
                $body
            }
            Borrowed::Uint32(a) => {
                let $view = a.as_array();
                $body
            }
            Borrowed::Uint64(a) => {
                let $view = a.as_array();
                $body
            }
            Borrowed::Int8(a) => {
                let $view = a.as_array();
                $body
            }
            Borrowed::Int16(a) => {
                let $view = a.as_array();
                $body
            }
            Borrowed::Int32(a) => {
                let $view = a.as_array();
                $body
            }
            Borrowed::Int64(a) => {
                let $view = a.as_array();
                $body
            }
            Borrowed::Float32(a) => {
                let $view = a.as_array();
                $body
            }
            Borrowed::Float64(a) => {
                let $view = a.as_array();
                $body
            }
        }
    };
}

impl<'py> Borrowed<'py> {
    /// Borrows `object`, a NumPy array of a supported dtype (native byte order); `name` (the
    /// argument) labels the error.
    fn extract(object: &Bound<'py, PyAny>, name: &str) -> PyResult<Self> {
        macro_rules! try_dtype {
            ($($variant:ident $t:ty),*) => {
                $(if let Ok(a) = object.extract::<PyReadonlyArrayDyn<'py, $t>>() {
                    return Ok(Borrowed::$variant(a));
                })*
            };
        }
        try_dtype!(
            Uint8 u8, Uint16 u16, Uint32 u32, Uint64 u64, Int8 i8, Int16 i16, Int32 i32,
            Int64 i64, Float32 f32, Float64 f64
        );
        let found = object
            .getattr("dtype")
            .map(|d| d.to_string())
            .unwrap_or_else(|_| object.get_type().to_string());
        Err(PyTypeError::new_err(format!(
            "{name}: expected a numpy.ndarray of uint8, uint16, uint32, uint64, int8, int16, int32, int64, float32 or float64 (native byte order), got {found}"
        )))
    }

    /// The array as a source labelled `label`: its own buffer when C-contiguous (slabs are
    /// copied one at a time as they are read, as from a file), else one copy in C order.
    fn source(&self, label: &str) -> Result<Box<dyn VolumeSource + '_>, PyErr> {
        with_view!(self, view => view_source(view, label))
    }
}

/// A source over `view` without a copy when it is in C order, else over one C-order copy.
fn view_source<'a, T: Element>(
    view: ArrayViewD<'a, T>,
    label: &str,
) -> PyResult<Box<dyn VolumeSource + 'a>>
where
    ArrayD<T>: IntoNdArray,
{
    if view.is_standard_layout() {
        let source = ViewSource::new(view, label).map_err(data_error)?;
        Ok(Box::new(source))
    } else {
        let copy = view.as_standard_layout().into_owned().into_nd();
        let source = MemorySource::new(copy, label).map_err(data_error)?;
        Ok(Box::new(source))
    }
}

/// Distortion metrics between two arrays, as `photonqa metrics --json` computes them.
#[pyfunction]
#[pyo3(signature = (original, decoded, *, data_range=None, ssim_window="gaussian", metrics=None, max_rel_floor=None, memory_budget=DEFAULT_MEMORY_BUDGET))]
fn metrics<'py>(
    py: Python<'py>,
    original: &Bound<'py, PyAny>,
    decoded: &Bound<'py, PyAny>,
    data_range: Option<f64>,
    ssim_window: &str,
    metrics: Option<Vec<String>>,
    max_rel_floor: Option<f64>,
    memory_budget: u64,
) -> PyResult<Py<PyAny>> {
    let ssim_window = SsimWindow::parse(ssim_window).map_err(PyValueError::new_err)?;
    let (a, b) = (
        Borrowed::extract(original, "original")?,
        Borrowed::extract(decoded, "decoded")?,
    );
    let (a, b) = (a.source("original")?, b.source("decoded")?);
    let options = CompareOptions {
        data_range,
        max_rel_floor,
        ssim_window,
        memory_budget,
        only: metrics,
    };
    let (a, b) = (a.as_ref(), b.as_ref());
    let object = py
        .detach(|| runner::compare::compare(a, b, &options))
        .map_err(photonqa_error)?
        .into_json();
    to_python(py, &serde_json::Value::Object(object))
}

/// Science of one array, as `photonqa analyze --json` computes it.
#[pyfunction]
#[pyo3(signature = (array, *, method="otsu", classes=None, value=None, pore_class=0, connectivity="face", memory_budget=DEFAULT_MEMORY_BUDGET))]
fn analyze<'py>(
    py: Python<'py>,
    array: &Bound<'py, PyAny>,
    method: &str,
    classes: Option<usize>,
    value: Option<f64>,
    pore_class: u8,
    connectivity: &str,
    memory_budget: u64,
) -> PyResult<Py<PyAny>> {
    let connectivity = Connectivity::parse(connectivity).map_err(PyValueError::new_err)?;
    let how = Segmenting::new(method.to_string(), classes, value, pore_class, connectivity)
        .map_err(PyValueError::new_err)?;
    let borrowed = Borrowed::extract(array, "array")?;
    let source = borrowed.source("array")?;
    let source = source.as_ref();
    let result = py
        .detach(|| runner::analyze::analyze(source, &how, Some(memory_budget)))
        .map_err(photonqa_error)?;
    to_python(py, &serde_json::Value::Object(result))
}

/// Filtered back-projection of a parallel-beam sinogram, as `photonqa reconstruct` computes it.
#[pyfunction]
#[pyo3(signature = (sinogram, *, theta=None, filter="ramp"))]
fn reconstruct<'py>(
    py: Python<'py>,
    sinogram: &Bound<'py, PyAny>,
    theta: Option<Vec<f64>>,
    filter: &str,
) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
    let filter = Filter::parse(filter).map_err(PyValueError::new_err)?;
    let borrowed = Borrowed::extract(sinogram, "sinogram")?;
    let (shape, values): (Vec<usize>, Vec<f64>) = with_view!(&borrowed, view => (view.shape().to_vec(), view.iter().map(|v| v.to_f64()).collect()));
    let &[angles, detector] = shape.as_slice() else {
        return Err(data_error(photonqa::data::DataError::new(
            "sinogram",
            format!("a sinogram has shape (angles, detector), not {shape:?}"),
        )));
    };
    let theta = theta.unwrap_or_else(|| fbp::theta_range(0.0, 180.0, angles));
    let slice = py
        .detach(|| Fbp::new(detector, &theta, filter).and_then(|fbp| fbp.reconstruct(&values)))
        .map_err(|e| photonqa_error(format!("sinogram: {e}")))?;
    let slice = ArrayD::from_shape_vec(IxDyn(&[detector, detector]), slice)
        .expect("detector x detector values");
    Ok(slice.into_pyarray(py))
}

/// Encodes and decodes `array` through `pipeline` (a list of stage dicts, as the `[[pipeline]]`
/// tables of a scenario, without sweeps), as `photonqa run` measures a working point: the
/// decoded array (same dtype and shape) and the rate dict of `results.jsonl`.
#[pyfunction]
#[pyo3(signature = (array, pipeline, *, chunk_slices=None, memory_budget=DEFAULT_MEMORY_BUDGET, threads=None))]
fn roundtrip<'py>(
    py: Python<'py>,
    array: &Bound<'py, PyAny>,
    pipeline: &Bound<'py, PyList>,
    chunk_slices: Option<usize>,
    memory_budget: u64,
    threads: Option<usize>,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    let mut head = toml::Table::new();
    head.insert("name".into(), "roundtrip".into());
    if let Some(rows) = chunk_slices {
        head.insert("chunk_slices".into(), toml::Value::Integer(rows as i64));
    }
    let mut input = toml::Table::new();
    // Never opened: the array stands for it.
    input.insert("source".into(), "array.npy".into());
    let mut table = toml::Table::new();
    table.insert("scenario".into(), toml::Value::Table(head));
    table.insert("input".into(), toml::Value::Table(input));
    table.insert("pipeline".into(), to_toml(pipeline.as_any(), "pipeline")?);
    let text =
        toml::to_string(&table).map_err(|e| PyValueError::new_err(format!("pipeline: {e}")))?;
    let scenario = photonqa::scenario::Scenario::parse(&text, std::path::Path::new("pipeline"))
        .map_err(scenario_error)?;
    let borrowed = Borrowed::extract(array, "array")?;
    let source = borrowed.source("array")?;
    let source = source.as_ref();
    let (decoded, rate) = py
        .detach(|| runner::roundtrip::round_trip(&scenario, source, memory_budget, threads))
        .map_err(photonqa_error)?;
    let decoded = with_array!(decoded, a => a.into_pyarray(py).into_any().unbind());
    let rate = serde_json::to_value(&rate).expect("a rate serialises");
    Ok((decoded, to_python(py, &rate)?))
}

/// Every pipeline stage with its kind, aliases and parameters, as `photonqa stages` lists them.
#[pyfunction]
fn stages(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let list = PyList::empty(py);
    for def in registry::STAGES {
        let stage = PyDict::new(py);
        stage.set_item("id", def.id)?;
        stage.set_item("kind", def.kind.name())?;
        stage.set_item("lossless", def.lossless)?;
        stage.set_item("aliases", def.aliases.to_vec())?;
        stage.set_item("summary", def.summary)?;
        let params = PyList::empty(py);
        for p in def.params {
            let param = PyDict::new(py);
            param.set_item("name", p.name)?;
            param.set_item("kind", p.kind.to_string())?;
            param.set_item("default", p.default.to_string())?;
            param.set_item("doc", p.doc)?;
            params.append(param)?;
        }
        stage.set_item("params", params)?;
        list.append(stage)?;
    }
    Ok(list)
}

/// The native module `photonqa._photonqa`; `photonqa/__init__.py` re-exports it.
#[pymodule]
fn _photonqa(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(metrics, m)?)?;
    m.add_function(wrap_pyfunction!(analyze, m)?)?;
    m.add_function(wrap_pyfunction!(reconstruct, m)?)?;
    m.add_function(wrap_pyfunction!(roundtrip, m)?)?;
    m.add_function(wrap_pyfunction!(stages, m)?)?;
    errors::register(m)?;
    scenario::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
