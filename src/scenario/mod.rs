//! Scenarios: the TOML schema, its validation (errors name the file, line, column and key),
//! and the expansion of sweeps into working points.
//!
//! ```toml
//! [scenario]
//! name = "seed-otsu-uint8-zip"
//! chunk_slices = 16                 # optional: rows along axis 0 per compressed chunk
//! [input]
//! source = "../reference-data/porous-tomo.h5::/volume"   # relative to this file
//! [[pipeline]]
//! stage = "threshold"
//! method = "otsu"
//! [[pipeline]]
//! stage = "quantize"
//! bits = { sweep = [4, 6, 8] }
//! [[pipeline]]
//! stage = "deflate"
//! level = { range = [1, 9], steps = 3 }
//! [metrics]
//! distortion = ["mse", "psnr", "max_abs_error"]
//! data_range = 1.0                  # optional: default max - min of the original
//! ```
//!
//! `[input] source` is `file.h5::/dataset` (an HDF5 or NeXus file without `::/dataset`: its
//! NeXus default signal, or its only dataset of rank 2-3), an array of a Zarr v2 or v3 store
//! (`data.zarr::/path`; `data.zarr` for the store's root array), `file.npy`, a TIFF file
//! (`.tif`, `.tiff`: its grayscale pages as axis 0, one page being one slice), or a raw file
//! with `shape` and `dtype`.
//! It may also name many files read as ONE array stacked along axis 0, as a beamline writes a
//! scan one file per N frames:
//!
//! ```toml
//! [input]
//! source = "scans/scan_*.h5::/entry/data"   # a glob pattern (`*`, `?`, `[...]`) in the file part
//! # source = "scan/*.tif"                   # a folder of 2-D images, one per file, in name order
//! # or a list, stacked in the order given; an item may be a pattern, expanded in place:
//! # source = ["first.h5::/entry/data", "scans/scan_*.h5::/entry/data"]
//! ```
//!
//! - Paths are relative to the scenario file, as for one file. A pattern's matches are sorted
//!   by path (byte-wise lexicographic, a stable order): number the files with zero padding
//!   (`scan_0001.h5`, `scan_0002.h5`, ...) so that it is the frame order, for `scan_10.h5`
//!   sorts before `scan_2.h5`. `*` and `?` do not match `/` or a leading `.` (hidden files).
//! - A pattern that matches no file is an error naming it, and so is a file whose shape after
//!   axis 0 or dtype differs from the first file's, or an empty list.
//! - A name without metacharacters, or one that names an existing file as written
//!   (`run[1].h5`), is that one file. `shape` and `dtype` of raw files apply to every file.
//! - Each slab reads only the rows of the files it overlaps. The results name the input as the
//!   pattern or list and the number of files (`scans/scan_*.h5::/entry/data (12 files)`);
//!   their input hash covers the stacked content only, so it equals that of one file holding
//!   the same array.
//! - `[reconstruction]` needs one DataExchange file.
//!
//! Acceptance limits on any column of the results, the objective of the choice among the
//! points that meet them, and the drift tolerances of the CI gate:
//!
//! ```toml
//! [limits]
//! ssim = { min = 0.95 }
//! "porosity.porosity_abs_change" = { max = 0.005 }
//! [objective]
//! maximize = "ratio"                # the default
//! [gate.tolerances]
//! psnr = { rel = 1e-6 }
//! ```
//!
//! Projections of a DataExchange file may be reconstructed after the pipeline: the metrics of
//! `[reconstruction] distortion` and every `[[analysis]]` then compare the filtered
//! back-projections of the original and the decoded projections.
//!
//! ```toml
//! [input]
//! source = "tooth.h5::/exchange/data"
//! [reconstruction]
//! filter = "shepp-logan"            # optional: ramp (default), shepp-logan, cosine, hamming, hann
//! rows = [0]                        # optional: detector rows (default: all)
//! theta_range_deg = [0.0, 180.0]    # optional: angles in equal steps (default: /exchange/theta)
//! distortion = ["psnr", "ssim"]     # optional: default the point metrics, as [metrics]
//! ```

pub mod interval;
pub mod limits;
pub mod sweep;
pub mod template;
pub mod tolerances;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::analysis::fbp::Filter;
use crate::analysis::registry as analysis_registry;
use crate::data::{DType, SourceSpec};
use crate::metrics::registry as metric_registry;
use crate::metrics::ssim::SsimWindow;
use crate::pipeline::registry as stage_registry;
use crate::pipeline::{ParamDef, ParamKind, ParamValue, StageConfig};
use interval::Interval;
use limits::{Limit, Objective};
pub use sweep::{StageSweep, WorkingPoint};
use tolerances::{RATE_COLUMNS, TIMING_COLUMNS, Tolerances, gated_columns};

/// A scenario error: file, position when known, and message.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", .position.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct ScenarioError {
    /// The scenario file.
    pub file: String,
    /// Line and column (1-based) of the offending key or value.
    pub position: Option<(usize, usize)>,
    /// What is wrong, with the allowed values where there is a fixed set.
    pub message: String,
}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The scenario file.
    pub path: PathBuf,
    /// `[scenario] name`.
    pub name: String,
    /// `[scenario] description`.
    pub description: String,
    /// Rows along axis 0 per compressed chunk (`None`: chosen from the input shape).
    pub chunk_slices: Option<usize>,
    /// `[scenario] artifact = "hdf5"`: each point's chunks are stored through the HDF5 filters
    /// its export writes, run by the HDF5 library, so the rate is what the file stores and the
    /// decoded data what HDF5 reads back.
    pub hdf5_artifact: bool,
    /// The input array: one file, or many stacked along axis 0 (a glob pattern or a list; see
    /// the module documentation).
    pub source: SourceSpec,
    /// The pipelines with each parameter's values: the `[[pipeline]]`, or every
    /// `[[variant]]` in scenario order.
    pub pipelines: Vec<Pipeline>,
    /// Distortion metrics to report, registry names in scenario order.
    pub distortion: Vec<&'static str>,
    /// Data range for PSNR, NRMSE and SSIM (`None`: max - min of the original).
    pub data_range: Option<f64>,
    /// Floor of the relative error's denominator (`None`: 1e-3 of the data range).
    pub max_rel_floor: Option<f64>,
    /// Window of SSIM (`[metrics.ssim] window`, default gaussian).
    pub ssim_window: SsimWindow,
    /// Science analyses, in scenario order (on the reconstructed slices when `reconstruction`
    /// is set).
    pub analyses: Vec<AnalysisSpec>,
    /// Reconstruction of the projections after the pipeline (`[reconstruction]`).
    pub reconstruction: Option<ReconstructionSpec>,
    /// The parameter searched adaptively (`{ search = [lo, hi] }`); its grid is the fallback.
    pub search: Option<SearchSpec>,
    /// Acceptance limits (`[limits]`), in scenario order.
    pub limits: Vec<Limit>,
    /// Line and column of each limit's key.
    pub limit_positions: Vec<(usize, usize)>,
    /// What the recommendation optimises among the points within the limits (`[objective]`,
    /// default: the largest compression ratio).
    pub objective: Objective,
    /// Drift tolerances of `photonqa check` (`[gate.tolerances]`).
    pub tolerances: Tolerances,
    /// BLAKE3 hash of the scenario file's bytes.
    pub hash: String,
}

/// A pipeline of a scenario: its stages with each parameter's values.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The `[[variant]]`'s name (`None` for the scenario's `[[pipeline]]`).
    pub variant: Option<String>,
    /// The stages.
    pub stages: Vec<StageSweep>,
}

/// One `[[analysis]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisSpec {
    /// The kind and every parameter's value (the `stage` field holds the kind).
    pub config: StageConfig,
    /// Key of its results: the kind, or `N:kind` when a kind appears more than once.
    pub label: String,
    /// Line and column of its `kind` key.
    pub position: (usize, usize),
}

/// A parameter searched adaptively: per combination of the other swept parameters, the value
/// with the best objective that meets the limits, by bisection (see `select::search`).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSpec {
    /// Position of the stage in the pipeline.
    pub stage: usize,
    /// The parameter.
    pub param: &'static str,
    /// Its column among the swept parameters, `stage.param`.
    pub label: String,
    /// The interval and its resolution.
    pub interval: Interval,
}

/// The `[reconstruction]` table: filtered back-projection of the original and the decoded
/// projections (`input.source` must be a DataExchange file's `/exchange/data`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReconstructionSpec {
    /// Filter of the back-projection.
    pub filter: Filter,
    /// Detector rows to reconstruct, in order (`None`: all).
    pub rows: Option<Vec<usize>>,
    /// First and last-excluded angle in degrees (`None`: `/exchange/theta` of the file).
    pub theta_range_deg: Option<(f64, f64)>,
    /// Distortion metrics of the reconstructed slices, registry names.
    pub distortion: Vec<&'static str>,
    /// Line and column of the table.
    pub position: (usize, usize),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    scenario: RawMeta,
    input: RawInput,
    #[serde(default)]
    pipeline: Vec<RawEntry>,
    #[serde(default)]
    variant: Vec<Spanned<RawVariant>>,
    #[serde(default)]
    metrics: Option<RawMetrics>,
    #[serde(default)]
    analysis: Vec<RawEntry>,
    reconstruction: Option<Spanned<RawReconstruction>>,
    limits: Option<BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
    objective: Option<Spanned<toml::Value>>,
    gate: Option<RawGate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    name: Spanned<String>,
    pipeline: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGate {
    tolerances: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReconstruction {
    filter: Option<Spanned<String>>,
    rows: Option<Spanned<Vec<i64>>>,
    theta_range_deg: Option<Spanned<Vec<f64>>>,
    distortion: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeta {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    chunk_slices: Option<Spanned<i64>>,
    artifact: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    /// A string, or a list of strings stacked along axis 0.
    source: Spanned<toml::Value>,
    shape: Option<Spanned<Vec<i64>>>,
    dtype: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    distortion: Option<Vec<Spanned<String>>>,
    data_range: Option<Spanned<f64>>,
    max_rel_floor: Option<Spanned<f64>>,
    ssim: Option<RawSsim>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSsim {
    window: Option<Spanned<String>>,
}

impl Scenario {
    /// Checks that the limits, the objective and the gate's tolerances name columns the results
    /// will have: `columns` (the scalar metric columns of its results), or a rate column.
    pub fn check_columns(&self, columns: &[String]) -> Result<(), String> {
        let known = |c: &str| {
            RATE_COLUMNS.contains(&c)
                || TIMING_COLUMNS.contains(&c)
                || columns.iter().any(|k| k == c)
        };
        let listing = || {
            let mut all: Vec<&str> = RATE_COLUMNS.to_vec();
            all.extend(columns.iter().map(String::as_str));
            all.join(", ")
        };
        let file = self.path.display();
        for (limit, (line, col)) in self.limits.iter().zip(&self.limit_positions) {
            if !known(&limit.column) {
                return Err(format!(
                    "{file}:{line}:{col}: limit on '{}': the results have no such column (columns: {})",
                    limit.column,
                    listing()
                ));
            }
        }
        if !known(&self.objective.column) {
            return Err(format!(
                "{file}: objective '{}': the results have no such column (columns: {})",
                self.objective.column,
                listing()
            ));
        }
        self.tolerances
            .check_columns(&gated_columns(columns))
            .map_err(|e| format!("{file}: {e}"))
    }

    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = crate::data::files::refuse_special_file(path)
            .and_then(|()| std::fs::read_to_string(path).map_err(|e| e.to_string()))
            .map_err(|e| ScenarioError {
                file: path.display().to_string(),
                position: None,
                message: format!("cannot read: {e}"),
            })?;
        Scenario::parse(&text, path)
    }

    /// Validates scenario text; `path` names it in errors and anchors relative input paths.
    ///
    /// ```
    /// use std::path::Path;
    /// use photonqa::scenario::Scenario;
    ///
    /// let text = r#"
    /// [scenario]
    /// name = "demo"
    /// [input]
    /// source = "volume.npy"
    /// [[pipeline]]
    /// stage = "zstd"
    /// level = { sweep = [1, 3, 9] }
    /// "#;
    /// let scenario = Scenario::parse(text, Path::new("demo.toml")).unwrap();
    /// let points = scenario.working_points();
    /// assert_eq!(points.len(), 3);
    /// assert_eq!(points[2].swept[0].0, "zstd.level");
    ///
    /// let typo = text.replace("level", "levle");
    /// let error = Scenario::parse(&typo, Path::new("demo.toml")).unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     "demo.toml:8:1: unknown parameter 'levle' for stage 'zstd' (allowed: level)"
    /// );
    /// ```
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let fail = |span: Option<std::ops::Range<usize>>, message: String| ScenarioError {
            file: path.display().to_string(),
            position: span.map(|s| line_col(text, s.start)),
            message,
        };
        let raw: RawScenario = toml::from_str(text)
            .map_err(|e| fail(e.span(), e.message().trim().replace('\n', "; ")))?;

        let base = path.parent().unwrap_or(Path::new("."));
        let raw_layout = match (&raw.input.shape, &raw.input.dtype) {
            (Some(shape), Some(dtype)) => {
                let dims = shape
                    .get_ref()
                    .iter()
                    .map(|&d| usize::try_from(d).ok().filter(|&d| d > 0))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        fail(
                            Some(shape.span()),
                            "input.shape needs positive integers".into(),
                        )
                    })?;
                let dtype = DType::parse(dtype.get_ref())
                    .map_err(|e| fail(Some(dtype.span()), format!("input.dtype: {e}")))?;
                Some((dims, dtype))
            }
            (None, None) => None,
            (Some(s), None) => {
                return Err(fail(
                    Some(s.span()),
                    "input.shape needs input.dtype too".into(),
                ));
            }
            (None, Some(d)) => {
                return Err(fail(
                    Some(d.span()),
                    "input.dtype needs input.shape too".into(),
                ));
            }
        };
        let source = match raw.input.source.get_ref() {
            toml::Value::String(text) => SourceSpec::parse_input(text, base, raw_layout.clone()),
            toml::Value::Array(items) => items
                .iter()
                .map(toml::Value::as_str)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| "a list of inputs holds strings only".to_string())
                .and_then(|items| SourceSpec::parse_list(&items, base, raw_layout.clone())),
            other => Err(format!(
                "invalid type: {}, expected a string or a list of strings",
                other.type_str()
            )),
        }
        .map_err(|e| fail(Some(raw.input.source.span()), format!("input.source: {e}")))?;
        if raw_layout.is_some() && !source.is_raw() {
            return Err(fail(
                Some(raw.input.source.span()),
                "input.shape and input.dtype apply only to raw files".into(),
            ));
        }

        let name = raw.scenario.name.get_ref();
        if !is_safe_name(name) {
            return Err(fail(
                Some(raw.scenario.name.span()),
                format!(
                    "scenario.name {name:?} must be letters, digits, '.', '_' or '-', not starting with '.' (it names the output directory runs/<name>)"
                ),
            ));
        }

        let chunk_slices = match &raw.scenario.chunk_slices {
            Some(c) if *c.get_ref() >= 1 => Some(*c.get_ref() as usize),
            Some(c) => {
                return Err(fail(
                    Some(c.span()),
                    "scenario.chunk_slices must be >= 1".into(),
                ));
            }
            None => None,
        };

        let hdf5_artifact = match &raw.scenario.artifact {
            None => false,
            Some(a) if a.get_ref() == "hdf5" => true,
            Some(a) => {
                return Err(fail(
                    Some(a.span()),
                    format!(
                        "scenario.artifact = \"{}\" is not known (allowed: hdf5; without it the codec stages run themselves)",
                        a.get_ref()
                    ),
                ));
            }
        };
        let pipelines = match (raw.pipeline.is_empty(), raw.variant.is_empty()) {
            (true, true) => {
                return Err(fail(
                    None,
                    "the scenario has no [[pipeline]] stage and no [[variant]]".into(),
                ));
            }
            (false, false) => {
                return Err(fail(
                    Some(raw.variant[0].span()),
                    "a scenario has either [[pipeline]] stages or [[variant]] pipelines, not both"
                        .into(),
                ));
            }
            (false, true) => vec![(None, parse_stages(text, &raw.pipeline, "[[pipeline]]"))],
            (true, false) => {
                let mut names: Vec<&str> = Vec::new();
                raw.variant
                    .iter()
                    .map(|v| {
                        let name = &v.get_ref().name;
                        let ok = name
                            .get_ref()
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
                        if name.get_ref().is_empty() || !ok {
                            return Err(fail(
                                Some(name.span()),
                                format!(
                                    "variant name '{}' must be letters, digits, '-' or '_'",
                                    name.get_ref()
                                ),
                            ));
                        }
                        if names.contains(&name.get_ref().as_str()) {
                            return Err(fail(
                                Some(name.span()),
                                format!("variant '{}' is named twice", name.get_ref()),
                            ));
                        }
                        names.push(name.get_ref());
                        if v.get_ref().pipeline.is_empty() {
                            return Err(fail(
                                Some(v.span()),
                                format!(
                                    "variant '{}' has no [[variant.pipeline]] stage",
                                    name.get_ref()
                                ),
                            ));
                        }
                        Ok((
                            Some(name.get_ref().clone()),
                            parse_stages(text, &v.get_ref().pipeline, "[[variant.pipeline]]"),
                        ))
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        let mut search = None;
        let pipelines = pipelines
            .into_iter()
            .map(|(variant, parsed)| {
                let (stages, searched) = parsed.map_err(|(span, e)| fail(span, e))?;
                if let Some((stage, param, interval, span)) = searched {
                    if variant.is_some() {
                        return Err(fail(
                            Some(span),
                            "a parameter of a [[variant]] cannot be searched; sweep it".into(),
                        ));
                    }
                    search = Some(SearchSpec {
                        stage,
                        param,
                        label: format!("{}.{param}", stages[stage].label),
                        interval,
                    });
                }
                Ok(Pipeline { variant, stages })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let points: usize = pipelines.iter().map(|p| sweep::count(&p.stages)).sum();
        if points > sweep::MAX_WORKING_POINTS {
            return Err(fail(
                None,
                format!(
                    "the sweeps expand to {points} working points (at most {})",
                    sweep::MAX_WORKING_POINTS
                ),
            ));
        }
        if let Some((earlier, later)) = sweep::first_repeat(&expand(&pipelines)) {
            return Err(ScenarioError {
                file: path.display().to_string(),
                position: Some(pipelines[later.pipeline].stages[0].position),
                message: repeated_point(earlier, later),
            });
        }

        let metrics = raw.metrics.unwrap_or(RawMetrics {
            distortion: None,
            data_range: None,
            max_rel_floor: None,
            ssim: None,
        });
        let metric_names = |names: &Option<Vec<Spanned<String>>>| match names {
            None => Ok(metric_registry::DISTORTION.iter().map(|m| m.name).collect()),
            Some(names) => names
                .iter()
                .map(|n| {
                    metric_registry::known(n.get_ref()).ok_or_else(|| {
                        fail(
                            Some(n.span()),
                            format!(
                                "unknown distortion metric '{}' (allowed: {})",
                                n.get_ref(),
                                metric_registry::names().join(", ")
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>(),
        };
        let distortion = metric_names(&metrics.distortion)?;
        let data_range = match &metrics.data_range {
            Some(r) if r.get_ref().is_finite() && *r.get_ref() > 0.0 => Some(*r.get_ref()),
            Some(r) => {
                return Err(fail(
                    Some(r.span()),
                    "metrics.data_range must be a finite number > 0".into(),
                ));
            }
            None => None,
        };

        let ssim_window = match metrics.ssim.as_ref().and_then(|s| s.window.as_ref()) {
            Some(w) => SsimWindow::parse(w.get_ref())
                .map_err(|e| fail(Some(w.span()), format!("metrics.ssim.window: {e}")))?,
            None => SsimWindow::Gaussian,
        };
        let max_rel_floor = match &metrics.max_rel_floor {
            Some(f) if f.get_ref().is_finite() && *f.get_ref() >= 0.0 => Some(*f.get_ref()),
            Some(f) => {
                return Err(fail(
                    Some(f.span()),
                    "metrics.max_rel_floor must be a finite number >= 0".into(),
                ));
            }
            None => None,
        };

        let mut analyses = Vec::new();
        for entry in &raw.analysis {
            let (kind, span) =
                kind_of(entry, "[[analysis]]", "kind").map_err(|(span, e)| fail(span, e))?;
            let def = analysis_registry::find(kind).ok_or_else(|| {
                fail(
                    Some(span.clone()),
                    format!(
                        "unknown analysis '{kind}' (allowed: {})",
                        analysis_registry::kinds().join(", ")
                    ),
                )
            })?;
            let mut params = Vec::new();
            for (name, values) in entry_params(entry, "kind", def.kind, def.params)
                .map_err(|(span, e)| fail(span, e))?
            {
                match <[ParamValue; 1]>::try_from(values) {
                    Ok([value]) => params.push((name, value)),
                    Err(_) => {
                        return Err(fail(
                            Some(span),
                            format!("analysis '{kind}': {name} takes one value, not a sweep"),
                        ));
                    }
                }
            }
            let mut config = StageConfig {
                stage: def.kind,
                params,
            };
            analysis_registry::complete(&mut config)
                .map_err(|e| fail(Some(span.clone()), format!("analysis '{kind}': {e}")))?;
            if kind == "command" && raw.reconstruction.is_some() {
                return Err(fail(
                    Some(span),
                    "analysis 'command' does not run on reconstructed slices; drop [reconstruction] or the analysis".into(),
                ));
            }
            analyses.push((config, line_col(text, span.start)));
        }
        let analyses = analyses
            .iter()
            .enumerate()
            .map(|(i, (config, position))| {
                let repeated = analyses
                    .iter()
                    .filter(|(other, _)| other.stage == config.stage)
                    .count()
                    > 1;
                AnalysisSpec {
                    config: config.clone(),
                    label: if repeated {
                        format!("{}:{}", i + 1, config.stage)
                    } else {
                        config.stage.to_string()
                    },
                    position: *position,
                }
            })
            .collect();

        let reconstruction = match &raw.reconstruction {
            None => None,
            Some(table) => {
                let r = table.get_ref();
                if source.is_stack() {
                    return Err(fail(
                        Some(raw.input.source.span()),
                        "[reconstruction] needs input.source to be one DataExchange file, `file.h5::/exchange/data`, not a pattern or a list".into(),
                    ));
                }
                let on_exchange_data = matches!(
                    &source,
                    SourceSpec::Hdf5 { dataset, .. } if dataset.trim_start_matches('/') == "exchange/data"
                );
                if !on_exchange_data {
                    return Err(fail(
                        Some(raw.input.source.span()),
                        "[reconstruction] needs input.source to be the projections of a DataExchange file, `file.h5::/exchange/data`".into(),
                    ));
                }
                let filter = match &r.filter {
                    Some(f) => Filter::parse(f.get_ref())
                        .map_err(|e| fail(Some(f.span()), format!("reconstruction.{e}")))?,
                    None => Filter::Ramp,
                };
                let rows = match &r.rows {
                    Some(rows) => {
                        let list: Option<Vec<usize>> = rows
                            .get_ref()
                            .iter()
                            .map(|&v| usize::try_from(v).ok())
                            .collect();
                        // Consecutive rows make a sub-volume, so 3-D analyses connect real
                        // neighbours.
                        match list {
                            Some(list)
                                if !list.is_empty()
                                    && list.windows(2).all(|w| w[1] == w[0] + 1) =>
                            {
                                Some(list)
                            }
                            _ => {
                                return Err(fail(
                                    Some(rows.span()),
                                    "reconstruction.rows needs consecutive detector rows in increasing order, e.g. [4, 5, 6]".into(),
                                ));
                            }
                        }
                    }
                    None => None,
                };
                let theta_range_deg = match &r.theta_range_deg {
                    Some(range) => match range.get_ref()[..] {
                        [start, stop] if start.is_finite() && stop.is_finite() && start != stop => {
                            Some((start, stop))
                        }
                        _ => {
                            return Err(fail(
                                Some(range.span()),
                                "reconstruction.theta_range_deg needs [start, stop] in degrees, finite and different".into(),
                            ));
                        }
                    },
                    None => None,
                };
                Some(ReconstructionSpec {
                    filter,
                    rows,
                    theta_range_deg,
                    distortion: metric_names(&r.distortion)?,
                    position: line_col(text, table.span().start),
                })
            }
        };

        // In file order: the report lists the limits as the user wrote them.
        let mut limit_entries: Vec<_> = raw.limits.iter().flatten().collect();
        limit_entries.sort_by_key(|(key, _)| key.span().start);
        let mut limits = Vec::new();
        let mut limit_positions = Vec::new();
        for (key, value) in limit_entries {
            let limit = Limit::from_toml(key.get_ref(), value.get_ref())
                .map_err(|e| fail(Some(value.span()), e))?;
            limits.push(limit);
            limit_positions.push(line_col(text, key.span().start));
        }
        let objective = match &raw.objective {
            Some(value) => {
                Objective::from_toml(value.get_ref()).map_err(|e| fail(Some(value.span()), e))?
            }
            None => Objective::default(),
        };
        let tolerances = match raw.gate.as_ref().and_then(|g| g.tolerances.as_ref()) {
            Some(table) => Tolerances::from_toml(table.get_ref())
                .map_err(|e| fail(Some(table.span()), e.to_string()))?,
            None => Tolerances::default(),
        };

        Ok(Scenario {
            path: path.to_path_buf(),
            name: raw.scenario.name.into_inner(),
            description: raw.scenario.description,
            chunk_slices,
            hdf5_artifact,
            source,
            pipelines,
            distortion,
            data_range,
            max_rel_floor,
            ssim_window,
            analyses,
            reconstruction,
            search,
            limits,
            limit_positions,
            objective,
            tolerances,
            hash: blake3::hash(text.as_bytes()).to_hex().to_string(),
        })
    }

    /// The working points, in expansion order (pipeline after pipeline).
    pub fn working_points(&self) -> Vec<WorkingPoint> {
        expand(&self.pipelines)
    }

    /// The files its parameters of kind [`ParamKind::Files`] name (a `command` stage's
    /// `side_files`, every swept value), each once in file order: as written, and resolved
    /// against the scenario's folder as [`Scenario::resolve_files`] resolves them.
    pub fn side_files(&self) -> Vec<(String, PathBuf)> {
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        for stage in self.pipelines.iter().flat_map(|p| &p.stages) {
            let defs = stage_registry::find(stage.stage).map_or(&[][..], |d| d.params);
            for (name, values) in &stage.params {
                if !defs
                    .iter()
                    .any(|d| d.name == *name && matches!(d.kind, ParamKind::Files))
                {
                    continue;
                }
                for value in values {
                    if let ParamValue::List(items) = value {
                        for item in items {
                            if !files.iter().any(|(written, _)| written == item) {
                                files.push((item.clone(), self.folder().join(item)));
                            }
                        }
                    }
                }
            }
        }
        files
    }

    /// The folder relative paths of the scenario start from: the scenario file's.
    pub fn folder(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new(""))
    }

    /// `stages` (a working point's) with the paths of their [`ParamKind::Files`] parameters
    /// resolved against the scenario's folder (an absolute path stays as it is), as the stages
    /// are built; the point keeps the paths as written, so that its id and its results do not
    /// depend on where the scenario lies.
    pub fn resolve_files(&self, stages: &[StageConfig]) -> Vec<StageConfig> {
        stages
            .iter()
            .map(|config| {
                let defs = stage_registry::find(config.stage).map_or(&[][..], |d| d.params);
                let mut config = config.clone();
                for (name, value) in &mut config.params {
                    let files = defs
                        .iter()
                        .any(|d| d.name == *name && matches!(d.kind, ParamKind::Files));
                    if let (true, ParamValue::List(items)) = (files, value) {
                        for item in items {
                            *item = self.folder().join(&*item).display().to_string();
                        }
                    }
                }
                config
            })
            .collect()
    }

    /// Every shell command the scenario runs, in file order, placeholders as written: each
    /// value of a parameter of kind [`ParamKind::Command`] (a `command` stage's `encode` and
    /// `decode`, every swept value, and a `command` analysis's `run`). A scenario that has any
    /// is code, run with the rights of whoever runs it: the command line runs it only when the
    /// user allows commands (`--allow-commands`), and `validate` lists them.
    pub fn commands(&self) -> Vec<DeclaredCommand> {
        let mut commands = Vec::new();
        let mut add =
            |position, owner: String, defs: &[ParamDef], name: &str, value: &ParamValue| {
                if defs
                    .iter()
                    .any(|d| d.name == name && matches!(d.kind, ParamKind::Command))
                {
                    commands.push(DeclaredCommand {
                        position,
                        owner: format!("{owner} {name}"),
                        line: value.to_string(),
                    });
                }
            };
        for stage in self.pipelines.iter().flat_map(|p| &p.stages) {
            let defs = stage_registry::find(stage.stage).map_or(&[][..], |d| d.params);
            for (name, values) in &stage.params {
                for value in values {
                    add(
                        stage.position,
                        format!("stage {}", stage.label),
                        defs,
                        name,
                        value,
                    );
                }
            }
        }
        for analysis in &self.analyses {
            let defs = analysis_registry::find(analysis.config.stage).map_or(&[][..], |d| d.params);
            for (name, value) in &analysis.config.params {
                let owner = format!("analysis {}", analysis.label);
                add(analysis.position, owner, defs, name, value);
            }
        }
        commands.sort_by_key(|c| c.position);
        commands.dedup();
        commands
    }
}

/// A shell command a scenario declares (see [`Scenario::commands`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredCommand {
    /// Line and column of its stage's `stage` or its analysis's `kind` key.
    pub position: (usize, usize),
    /// What runs it: `stage command encode`, `analysis 2:command run`.
    pub owner: String,
    /// The command line as written, before its placeholders are replaced.
    pub line: String,
}

impl std::fmt::Display for DeclaredCommand {
    /// `line 8, stage command encode: gzip -c {input} > {output}`, on one line (control
    /// characters escaped).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, {}: ", self.position.0, self.owner)?;
        for c in self.line.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// Whether `name` is safe as a file name and in a script: ASCII letters, digits, `.`, `_` and
/// `-`, not empty and not starting with `.` (so neither `..` nor a hidden file).
/// The value of a TOML integer or float as `f64`; `None` for any other TOML type.
pub(crate) fn toml_number(value: &toml::Value) -> Option<f64> {
    match value {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(x) => Some(*x),
        _ => None,
    }
}

fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// The working points of `pipelines`, in expansion order (pipeline after pipeline).
fn expand(pipelines: &[Pipeline]) -> Vec<WorkingPoint> {
    let mut points = Vec::new();
    for (p, pipeline) in pipelines.iter().enumerate() {
        let first = points.len();
        points.extend(
            sweep::working_points(&pipeline.stages)
                .into_iter()
                .map(|mut point| {
                    point.index += first;
                    point.pipeline = p;
                    if let Some(name) = &pipeline.variant {
                        point
                            .swept
                            .insert(0, (VARIANT.into(), ParamValue::Str(name.clone())));
                    }
                    point
                }),
        );
    }
    points
}

/// Why working point `later` may not follow `earlier`, which has its id: both are one concrete
/// pipeline (named with its every parameter), or, rarer than a sweep ever meets, two pipelines
/// whose ids collide.
fn repeated_point(earlier: &WorkingPoint, later: &WorkingPoint) -> String {
    let named = |point: &WorkingPoint| {
        let values: Vec<String> = point
            .swept
            .iter()
            .map(|(key, value)| format!("{key} = {value}"))
            .collect();
        match values.is_empty() {
            true => format!("working point {}", point.index),
            false => format!("working point {} ({})", point.index, values.join(", ")),
        }
    };
    if earlier.stages != later.stages {
        return format!(
            "{} and {} have the same id {}; change a value of one slightly",
            named(earlier),
            named(later),
            later.id
        );
    }
    let pipeline: Vec<String> = later
        .stages
        .iter()
        .map(|stage| {
            let params: Vec<String> = stage
                .params
                .iter()
                .map(|(name, value)| format!("{name} = {value}"))
                .collect();
            format!("{}({})", stage.stage, params.join(", "))
        })
        .collect();
    format!(
        "{} is the same pipeline as {}, {}: it would be measured twice; remove one",
        named(later),
        named(earlier),
        pipeline.join(" -> ")
    )
}

/// The swept "parameter" that names a point's `[[variant]]`.
pub const VARIANT: &str = "variant";

/// What one parameter search of a pipeline needs: stage index, parameter, interval, and the
/// span of its value.
type Searched = (usize, &'static str, Interval, std::ops::Range<usize>);

/// The stages of a `[[pipeline]]` list (`section` names it in errors), and the parameter it
/// searches, if any.
fn parse_stages(
    text: &str,
    entries: &[RawEntry],
    section: &str,
) -> Result<(Vec<StageSweep>, Option<Searched>), SpanError> {
    let mut stages = Vec::new();
    let mut searched = None;
    for entry in entries {
        let (kind, span) = kind_of(entry, section, "stage")?;
        let def = stage_registry::find(kind).ok_or_else(|| {
            (
                Some(span.clone()),
                format!(
                    "unknown stage '{kind}' (allowed: {})",
                    stage_registry::ids().join(", ")
                ),
            )
        })?;
        let params = entry_params(entry, "stage", def.id, def.params)?;
        for (key, value) in entry.get_ref() {
            let Some(param) = def.params.iter().find(|p| p.name == key.get_ref()) else {
                continue;
            };
            if let Some(interval) = sweep::search_interval(param, value.get_ref()) {
                let interval = interval.map_err(|e| (Some(value.span()), e))?;
                if searched.is_some() {
                    return Err((
                        Some(value.span()),
                        "only one parameter per scenario can be searched".into(),
                    ));
                }
                searched = Some((stages.len(), param.name, interval, value.span()));
            }
        }
        stages.push((def.id, params, line_col(text, span.start)));
    }
    let stages = stages
        .iter()
        .enumerate()
        .map(|(i, (id, params, position))| {
            let repeated = stages.iter().filter(|(other, _, _)| other == id).count() > 1;
            StageSweep {
                stage: id,
                label: if repeated {
                    format!("{}:{id}", i + 1)
                } else {
                    id.to_string()
                },
                params: params.clone(),
                position: *position,
            }
        })
        .collect();
    Ok((stages, searched))
}

/// 1-based line and column of a byte offset.
/// A TOML table of a `[[pipeline]]` or `[[analysis]]` entry.
type RawEntry = Spanned<BTreeMap<Spanned<String>, Spanned<toml::Value>>>;

/// An error at a byte span of the scenario text.
type SpanError = (Option<std::ops::Range<usize>>, String);

/// The value of the `key` (`stage` or `kind`) of an entry of `section`, and its span.
fn kind_of<'a>(
    entry: &'a RawEntry,
    section: &str,
    key: &str,
) -> Result<(&'a str, std::ops::Range<usize>), SpanError> {
    let value = entry
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(_, v)| v)
        .ok_or_else(|| {
            (
                Some(entry.span()),
                format!("{section} entry has no `{key}` key"),
            )
        })?;
    let kind = value
        .get_ref()
        .as_str()
        .ok_or_else(|| (Some(value.span()), format!("`{key}` must be a string")))?;
    Ok((kind, value.span()))
}

/// Every declared parameter of an entry with its values (sweeps expanded), defaults filled in;
/// unknown keys are errors that list the allowed ones.
fn entry_params(
    entry: &RawEntry,
    key: &str,
    id: &str,
    defs: &[ParamDef],
) -> Result<Vec<(&'static str, Vec<ParamValue>)>, SpanError> {
    let table = entry.get_ref();
    for (name, _) in table.iter().filter(|(k, _)| k.get_ref() != key) {
        if !defs.iter().any(|p| p.name == name.get_ref()) {
            let allowed: Vec<_> = defs.iter().map(|p| p.name).collect();
            let allowed = if allowed.is_empty() {
                "none".to_string()
            } else {
                allowed.join(", ")
            };
            return Err((
                Some(name.span()),
                format!(
                    "unknown parameter '{}' for {key} '{id}' (allowed: {allowed})",
                    name.get_ref()
                ),
            ));
        }
    }
    let mut params = Vec::new();
    for def in defs {
        match table.iter().find(|(k, _)| k.get_ref() == def.name) {
            Some((_, value)) => {
                let values = sweep::expand_value(def, value.get_ref())
                    .map_err(|e| (Some(value.span()), format!("{key} '{id}': {e}")))?;
                params.push((def.name, values));
            }
            None => {
                if let Some(v) = def.default_value() {
                    params.push((def.name, vec![v]));
                }
            }
        }
    }
    Ok(params)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"
[scenario]
name = "seed"
[input]
source = "data.h5::/volume"
[[pipeline]]
stage = "threshold"
method = "otsu"
[[pipeline]]
stage = "quantize"
dtype = "uint8"
bits = { sweep = [4, 6, 8] }
[[pipeline]]
stage = "deflate"
level = { sweep = [1, 6, 9] }
[metrics]
distortion = ["mse", "psnr", "max_abs_error"]
"#;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, Path::new("/s/x.toml"))
    }

    #[test]
    fn seed_expands_to_nine_points() {
        let s = parse(SEED).unwrap();
        assert_eq!(
            s.source,
            SourceSpec::Hdf5 {
                file: "/s/data.h5".into(),
                dataset: "/volume".into()
            }
        );
        let points = s.working_points();
        assert_eq!(points.len(), 9);
        assert_eq!(points[0].swept[0].0, "quantize.bits");
        assert_eq!(
            points[8].stages[2].params,
            [("level", crate::pipeline::ParamValue::Int(9))]
        );
        assert_eq!(s.distortion, ["mse", "psnr", "max_abs_error"]);
    }

    #[test]
    fn errors_name_line_column_and_allowed_values() {
        let err = parse(&SEED.replace("stage = \"deflate\"", "stage = \"deflat\""))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/s/x.toml:14:9: unknown stage 'deflat' (allowed: "),
            "{err}"
        );
        assert!(err.contains("deflate") && err.contains("zstd"), "{err}");
        let err = parse(&SEED.replace("level = {", "levl = {"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "/s/x.toml:15:1: unknown parameter 'levl' for stage 'deflate' (allowed: level)"
            ),
            "{err}"
        );
        let err = parse(&SEED.replace("6, 9]", "6, 19]"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":15:9:") && err.contains("level = 19 is not in 0..=9"),
            "{err}"
        );
        let err = parse(&SEED.replace("\"psnr\"", "\"psnrr\""))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown distortion metric 'psnrr' (allowed: mse, rmse, nrmse, psnr"),
            "{err}"
        );
        let err = parse(&SEED.replace("[metrics]", "[metric]"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/s/x.toml:16:") && err.contains("unknown field `metric`"),
            "{err}"
        );
    }

    #[test]
    fn names_are_safe_as_a_folder_and_in_a_script() {
        for bad in [
            "../../x", "/any/dir", "a\\nb", ".hidden", "..", "", "a b", "x$(id)",
        ] {
            let err = parse(&SEED.replace("\"seed\"", &format!("\"{bad}\"")))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("/s/x.toml:3:8: scenario.name ")
                    && err.ends_with("must be letters, digits, '.', '_' or '-', not starting with '.' (it names the output directory runs/<name>)"),
                "{bad}: {err}"
            );
        }
        let good = parse(&SEED.replace("\"seed\"", "\"v1.2_final-B\"")).unwrap();
        assert_eq!(good.name, "v1.2_final-B");
    }

    #[test]
    fn commands_lists_every_shell_command_in_file_order() {
        assert_eq!(parse(SEED).unwrap().commands(), []);
        let text = "[scenario]\nname = \"c\"\n[input]\nsource = \"v.npy\"\n\
                    [[analysis]]\nkind = \"command\"\nrun = \"a {original} {decoded}\"\n\
                    [[pipeline]]\nstage = \"command\"\n\
                    encode = { sweep = [\"e1 {input} {output}\", \"e2\\n{input} {output}\"] }\n\
                    decode = \"d {input} {output}\"\n[[pipeline]]\nstage = \"zstd\"\n";
        let listed: Vec<String> = parse(text)
            .unwrap()
            .commands()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            listed,
            [
                "line 6, analysis command run: a {original} {decoded}",
                "line 9, stage command encode: e1 {input} {output}",
                "line 9, stage command encode: e2\\n{input} {output}",
                "line 9, stage command decode: d {input} {output}",
            ]
        );
    }

    #[test]
    fn side_files_resolve_against_the_scenario_folder_and_sweep_as_lists() {
        assert_eq!(parse(SEED).unwrap().side_files(), []);
        let text = "[scenario]\nname = \"c\"\n[input]\nsource = \"v.npy\"\n\
                    [[pipeline]]\nstage = \"command\"\n\
                    encode = \"e {input} {output}\"\ndecode = \"d {input} {output}\"\n\
                    side_files = { sweep = [[\"m/a.onnx\", \"prior.bin\"], [\"/abs/b.onnx\", \"prior.bin\"]] }\n";
        let scenario = parse(text).unwrap();
        assert_eq!(
            scenario.side_files(),
            [
                ("m/a.onnx".to_string(), PathBuf::from("/s/m/a.onnx")),
                ("prior.bin".to_string(), PathBuf::from("/s/prior.bin")),
                ("/abs/b.onnx".to_string(), PathBuf::from("/abs/b.onnx")),
            ]
        );
        let points = scenario.working_points();
        assert_eq!(points.len(), 2);
        // The point keeps the paths as written (its id does not depend on the folder) ...
        let written = ParamValue::List(vec!["m/a.onnx".into(), "prior.bin".into()]);
        assert_eq!(points[0].stages[0].params[3], ("side_files", written));
        // ... and its stages are built with them resolved.
        let resolved = scenario.resolve_files(&points[1].stages);
        let paths = ParamValue::List(vec!["/abs/b.onnx".into(), "/s/prior.bin".into()]);
        assert_eq!(resolved[0].params[3], ("side_files", paths));
    }

    #[test]
    fn malformed_toml_is_one_line_with_position() {
        let err = parse("[scenario]\nname = \"x\n").unwrap_err().to_string();
        assert!(err.starts_with("/s/x.toml:2:"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn inputs_may_be_patterns_and_lists() {
        let s = parse(&SEED.replace("data.h5::/volume", "scans/s_*.h5::/volume")).unwrap();
        let SourceSpec::Glob { pattern, template } = &s.source else {
            panic!("{:?}", s.source)
        };
        assert_eq!(pattern, "/s/scans/s_*.h5");
        assert_eq!(template.describe(), "/s/scans/s_*.h5::/volume");
        let list = SEED.replace(
            "\"data.h5::/volume\"",
            "[\"b.h5::/volume\", \"../a_?.h5::/v\"]",
        );
        let s = parse(&list).unwrap();
        let SourceSpec::Stack(parts) = &s.source else {
            panic!("{:?}", s.source)
        };
        assert_eq!(
            parts[0],
            SourceSpec::Hdf5 {
                file: "/s/b.h5".into(),
                dataset: "/volume".into()
            }
        );
        assert!(matches!(&parts[1], SourceSpec::Glob { pattern, .. } if pattern == "/a_?.h5"));
        let err = |text: &str| parse(text).unwrap_err().to_string();
        assert_eq!(
            err(&SEED.replace("\"data.h5::/volume\"", "[]")),
            "/s/x.toml:5:10: input.source: the list of inputs is empty"
        );
        assert_eq!(
            err(&SEED.replace("\"data.h5::/volume\"", "[\"a.h5::/v\", 3]")),
            "/s/x.toml:5:10: input.source: a list of inputs holds strings only"
        );
        assert_eq!(
            err(&SEED.replace("\"data.h5::/volume\"", "3")),
            "/s/x.toml:5:10: input.source: invalid type: integer, expected a string or a list of strings"
        );
        assert!(
            err(&SEED.replace("\"data.h5::/volume\"", "[\"a.bin\"]"))
                .contains("input.source: 'a.bin' is not an HDF5 file, a Zarr store,")
        );
        // Raw files: the declared layout applies to each one.
        let raw = SEED.replace(
            "source = \"data.h5::/volume\"",
            "source = [\"a.raw\", \"b_*.raw\"]\nshape = [4, 5]\ndtype = \"uint16\"",
        );
        assert!(parse(&raw).unwrap().source.is_raw());
        assert!(
            err(&raw.replace("b_*.raw", "b.npy"))
                .contains("input.shape and input.dtype apply only to raw files")
        );
        let tomo = "[scenario]\nname = \"t\"\n[input]\nsource = \"p_*.h5::/exchange/data\"\n\
                    [[pipeline]]\nstage = \"zstd\"\n[reconstruction]\n";
        assert!(
            err(tomo).contains("[reconstruction] needs input.source to be one DataExchange file")
        );
    }

    #[test]
    fn raw_inputs_need_shape_and_dtype() {
        let raw = SEED.replace("data.h5::/volume", "v.raw");
        assert!(
            parse(&raw)
                .unwrap_err()
                .to_string()
                .contains("needs `shape` and `dtype`")
        );
        let ok = raw.replace(
            "source = \"v.raw\"",
            "source = \"v.raw\"\nshape = [4, 5]\ndtype = \"uint16\"",
        );
        assert!(matches!(parse(&ok).unwrap().source, SourceSpec::Raw { .. }));
        let bad = raw.replace(
            "source = \"v.raw\"",
            "source = \"v.raw\"\nshape = [4, 5]\ndtype = \"float16\"",
        );
        assert!(
            parse(&bad)
                .unwrap_err()
                .to_string()
                .contains("unknown dtype 'float16'")
        );
    }

    #[test]
    fn working_points_that_repeat_a_pipeline_are_refused() {
        let err = |text: &str| parse(text).unwrap_err().to_string();
        assert_eq!(
            err(&SEED.replace("[4, 6, 8]", "[4, 6, 4]")),
            "/s/x.toml:12:8: stage 'quantize': bits: `sweep` gives the value 4 twice (values 1 and 3 of 3): two working points would be the same pipeline; list each value once"
        );
        // 1 + 2^-52: the middle step of three rounds to an end.
        assert_eq!(
            err(&SEED.replace(
                "stage = \"deflate\"\nlevel = { sweep = [1, 6, 9] }",
                "stage = \"sz3\"\nabs_error = { range = [1.0, 1.0000000000000002], steps = 3 }"
            )),
            "/s/x.toml:15:13: stage 'sz3': abs_error: `range` gives the value 1 twice (values 1 and 2 of 3): two working points would be the same pipeline; its steps are closer than floating point resolves; use fewer steps"
        );
        let variants = |second: &str| {
            format!(
                "[scenario]\nname = \"v\"\n[input]\nsource = \"data.h5::/volume\"\n\
                 [[variant]]\nname = \"fast\"\n[[variant.pipeline]]\nstage = \"zstd\"\nlevel = {{ sweep = [1, 3] }}\n\
                 [[variant]]\nname = \"copy\"\n[[variant.pipeline]]\nstage = \"zstd\"\nlevel = {second}\n"
            )
        };
        assert_eq!(parse(&variants("9")).unwrap().working_points().len(), 3);
        // Two variants alike under other names, or sweeping over one value of another.
        assert_eq!(
            err(&variants("{ sweep = [1, 3] }")),
            "/s/x.toml:13:9: working point 2 (variant = copy, zstd.level = 1) is the same pipeline as working point 0 (variant = fast, zstd.level = 1), zstd(level = 1): it would be measured twice; remove one"
        );
        assert_eq!(
            err(&variants("3")),
            "/s/x.toml:13:9: working point 2 (variant = copy) is the same pipeline as working point 1 (variant = fast, zstd.level = 3), zstd(level = 3): it would be measured twice; remove one"
        );
    }
}
