//! Comparing two arrays (original and decoded), streamed chunk by chunk: `photonqa metrics`.

use std::ops::Range;

use rayon::prelude::*;
use serde_json::{Map, Value, json};

use super::passes::min_max_of_rows;
use super::{DEFAULT_REL_FLOOR, Plan, format_size};
use crate::data::{NdArray, VolumeSource, rows_with_halo};
use crate::metrics::comparison::{CompareSpec, DataFacts, Partial, unmet};
use crate::metrics::registry as metric_registry;
use crate::metrics::spectral::fsc_memory;
use crate::metrics::ssim::SsimWindow;
use crate::metrics::values::metric_json;

/// How two arrays are compared; [`CompareOptions::default`] computes every metric as
/// `photonqa metrics` does without options.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareOptions {
    /// Data range `R` [default: max - min of the original].
    pub data_range: Option<f64>,
    /// Floor of the relative error's denominator [default: 1e-3 of the data range].
    pub max_rel_floor: Option<f64>,
    /// SSIM window.
    pub ssim_window: SsimWindow,
    /// Bytes the chunks in flight (and the FSC's whole volumes) may occupy.
    pub memory_budget: u64,
    /// The metrics to compute, registry names [default: every one]: a metric costs only when
    /// asked for.
    pub only: Option<Vec<String>>,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            data_range: None,
            max_rel_floor: None,
            ssim_window: SsimWindow::Gaussian,
            memory_budget: super::DEFAULT_MEMORY_BUDGET,
            only: None,
        }
    }
}

impl CompareOptions {
    /// The registry names of the metrics to compute, in registry order; an unknown name is an
    /// error listing the known ones.
    pub fn names(&self) -> Result<Vec<&'static str>, String> {
        let all = metric_registry::names();
        let Some(only) = &self.only else {
            return Ok(all);
        };
        if let Some(unknown) = only.iter().find(|n| !all.contains(&n.as_str())) {
            return Err(format!(
                "--only {unknown}: no such metric (metrics: {})",
                all.join(", ")
            ));
        }
        Ok(all
            .into_iter()
            .filter(|name| only.iter().any(|n| n == name))
            .collect())
    }
}

/// The distortion metrics between two arrays.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Number of values compared.
    pub count: u64,
    /// Decoded values that are NaN or infinite (the original must be finite); every metric
    /// is then NaN (see [`CompareSpec::finish`]).
    pub nonfinite_decoded: u64,
    /// The settings used (data range, relative-error floor).
    pub spec: CompareSpec,
    /// Every metric asked for by name, as JSON (non-finite values as strings).
    pub metrics: Map<String, Value>,
}

impl Comparison {
    /// The JSON object `photonqa metrics --json` prints: every metric, then the settings
    /// (`data_range`, `max_rel_floor`) and the counts (`count`, `nonfinite_decoded`).
    pub fn into_json(self) -> Map<String, Value> {
        let mut object = self.metrics;
        object.insert("data_range".into(), metric_json(self.spec.data_range));
        object.insert("max_rel_floor".into(), metric_json(self.spec.max_rel_floor));
        object.insert("count".into(), Value::from(self.count));
        object.insert(
            "nonfinite_decoded".into(),
            Value::from(self.nonfinite_decoded),
        );
        object
    }
}

/// Compares `decoded` with `original` as `options` say. The original must be finite; NaN or
/// infinite decoded values are counted (as `run` counts them: the same numbers). A data range
/// that is not finite and > 0, or a relative-error floor that is not finite and >= 0, is an
/// error.
pub fn compare(
    original: &dyn VolumeSource,
    decoded: &dyn VolumeSource,
    options: &CompareOptions,
) -> Result<Comparison, String> {
    let CompareOptions {
        data_range,
        max_rel_floor,
        ssim_window,
        memory_budget,
        ..
    } = *options;
    if let Some(r) = data_range.filter(|r| !(r.is_finite() && *r > 0.0)) {
        return Err(format!("--data-range {r} must be a finite number > 0"));
    }
    if let Some(f) = max_rel_floor.filter(|f| !(f.is_finite() && *f >= 0.0)) {
        return Err(format!("--max-rel-floor {f} must be a finite number >= 0"));
    }
    let names = options.names()?;
    if original.shape() != decoded.shape() {
        return Err(format!(
            "shape mismatch: {} is {:?} but {} is {:?}",
            original.label(),
            original.shape(),
            decoded.label(),
            decoded.shape()
        ));
    }
    let row_bytes = original.row_bytes().max(decoded.row_bytes());
    let read = |source: &dyn VolumeSource, rows: Range<usize>| {
        source.read_slab(rows).map_err(|e| e.to_string())
    };
    // The metrics need the range of the original (PSNR, the relative-error floor, SSIM's
    // constants, the bins of the histograms). A given data range stands in for it unless the
    // KS test bins the values: the range is then gathered in the metrics' own pass and only
    // checked to give the same scale (see `CompareSpec::scale`), saving a pass over the
    // original.
    let range_first = options.data_range.is_none() || names.contains(&"ks_test");
    let known_range = if range_first {
        // Two inputs in flight per chunk: halve the budget for each.
        let plan = Plan::within(original.shape(), row_bytes, memory_budget / 2, 0)?;
        let ranges: Vec<(f64, f64)> = plan
            .chunks
            .par_iter()
            .map(|rows| {
                let chunk = read(original, rows.clone())?;
                finite_range(&chunk, 0..rows.len(), original.label())
            })
            .collect::<Result<_, String>>()?;
        Some(merge_ranges(&ranges))
    } else {
        None
    };
    let data_range = data_range.unwrap_or_else(|| known_range.map_or(0.0, |(lo, hi)| hi - lo));
    let shape = original.shape().to_vec();
    // A metric the data cannot give is reported as skipped, with the reason.
    let mut skipped = Map::new();
    let computed: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| {
            let reason = unmet(name, &shape, Some(data_range), ssim_window).or_else(|| {
                let need = fsc_memory(&shape);
                (*name == "fsc" && need > memory_budget).then(|| {
                    format!(
                        "needs the spectra of the whole volume in memory, {} > the budget of {}",
                        format_size(need),
                        format_size(memory_budget)
                    )
                })
            });
            match reason {
                Some(reason) if reason.contains("data range is 0") => {
                    skipped.insert(
                        name.to_string(),
                        json!(format!("{reason}: pass --data-range")),
                    );
                    false
                }
                Some(reason) => {
                    skipped.insert(name.to_string(), json!(reason));
                    false
                }
                None => true,
            }
        })
        .collect();
    let max_rel_floor = max_rel_floor.unwrap_or(DEFAULT_REL_FLOOR * data_range);
    let spec_for = |range: (f64, f64)| {
        let facts = DataFacts {
            shape: &shape,
            range,
            data_range,
            dtypes: (original.dtype(), decoded.dtype()),
        };
        CompareSpec::new(&computed, facts, max_rel_floor, ssim_window)
            .map_err(|e| format!("{}: {e}; pass --data-range", original.label()))
    };
    // Without the range, assume the values lie within the data range of 0: the scale is then
    // checked against the range the pass gathers, and the pass repeated in the rare case that
    // it differs (values beyond 2^60 or all below 2^-30 in magnitude).
    let mut spec = spec_for(known_range.unwrap_or((0.0, data_range)))?;
    let halo = spec.halo();
    let plan = Plan::within(original.shape(), row_bytes, memory_budget / 2, halo)?;
    let gather = known_range.is_none();
    let measure = |spec: &CompareSpec| -> Result<(Partial, (f64, f64)), String> {
        let rows = original.shape()[0];
        // Chunks in waves, merged in chunk order: the histograms of a partial are large, so
        // only a wave's partials are held at once.
        let wave = rayon::current_num_threads() * 4;
        let mut total = Partial::default();
        let mut ranges = Vec::new();
        for chunks in plan.chunks.chunks(wave) {
            let parts: Vec<(Partial, (f64, f64))> = chunks
                .par_iter()
                .map(|core| {
                    let held = rows_with_halo(core, halo, rows);
                    let (a, b) = (read(original, held.clone())?, read(decoded, held.clone())?);
                    let range = if gather {
                        let own = core.start - held.start..core.end - held.start;
                        finite_range(&a, own, original.label())?
                    } else {
                        (0.0, 0.0)
                    };
                    Ok((spec.partial(&a, &b, held, core.clone())?, range))
                })
                .collect::<Result<_, String>>()?;
            for (part, range) in parts {
                total.merge(part)?;
                ranges.push(range);
            }
        }
        Ok((total, merge_ranges(&ranges)))
    };
    let (mut total, gathered) = measure(&spec)?;
    if gather {
        let checked = spec_for(gathered)?;
        if checked.scale != spec.scale {
            spec = checked;
            total = measure(&spec)?.0;
        }
    }
    let mut finished = spec.finish(&total, &computed)?;
    let mut metrics = Map::new();
    for name in names {
        match skipped.remove(name) {
            Some(reason) if name == "ssim" => {
                metrics.insert("ssim".into(), Value::Null);
                metrics.insert("ssim_detail".into(), json!({ "skipped": reason }));
            }
            Some(reason) => {
                metrics.insert(name.into(), json!({ "skipped": reason }));
            }
            None => {
                for key in [name, "ssim_detail"]
                    .iter()
                    .take(1 + usize::from(name == "ssim"))
                {
                    if let Some(value) = finished.remove(*key) {
                        metrics.insert(key.to_string(), value);
                    }
                }
            }
        }
    }
    Ok(Comparison {
        count: total.point.count,
        nonfinite_decoded: total.point.nonfinite_decoded,
        metrics,
        spec,
    })
}

/// The range of the chunks whose ranges are `ranges`.
fn merge_ranges(ranges: &[(f64, f64)]) -> (f64, f64) {
    ranges
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
            (lo.min(r.0), hi.max(r.1))
        })
}

/// Range of rows `rows` of a chunk, or an error naming `label` when they hold NaN or infinite
/// values.
fn finite_range(array: &NdArray, rows: Range<usize>, label: &str) -> Result<(f64, f64), String> {
    match min_max_of_rows(array, rows) {
        (lo, hi, 0) => Ok((lo, hi)),
        (_, _, bad) => Err(format!(
            "{label}: contains NaN or infinite values ({bad} in one chunk); photonqa needs finite data"
        )),
    }
}
