//! Comparing two arrays (original and decoded), streamed chunk by chunk: `photonqa metrics`.

use rayon::prelude::*;
use serde_json::{Map, Value, json};

use super::passes::min_max;
use super::{DEFAULT_REL_FLOOR, Plan};
use crate::data::{NdArray, VolumeSource};
use crate::metrics::comparison::{CompareSpec, Partial};
use crate::metrics::registry as metric_registry;
use crate::metrics::ssim::{self, SsimWindow};

/// Every distortion metric between two arrays.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Number of values compared.
    pub count: u64,
    /// The settings used (data range, relative-error floor).
    pub spec: CompareSpec,
    /// Every registered metric by name, as JSON (non-finite values as strings).
    pub metrics: Map<String, Value>,
}

/// Compares `decoded` with `original`. The data range defaults to max - min of `original`,
/// the relative-error floor to 1e-3 of the data range.
pub fn compare(
    original: &dyn VolumeSource,
    decoded: &dyn VolumeSource,
    data_range: Option<f64>,
    max_rel_floor: Option<f64>,
    ssim_window: SsimWindow,
    memory_budget: u64,
) -> Result<Comparison, String> {
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
    // Two inputs in flight per chunk: halve the budget for each.
    let plan = Plan::new(original.shape(), row_bytes, None, memory_budget / 2, None)?;
    let read = |source: &dyn VolumeSource, rows: std::ops::Range<usize>| {
        source.read_slab(rows).map_err(|e| e.to_string())
    };
    // The data range is needed before the metrics (PSNR, the relative-error floor, SSIM's
    // constants): a first pass over the original only when it is not given.
    let data_range = match data_range {
        Some(range) => range,
        None => {
            let ranges: Vec<(f64, f64)> = plan
                .chunks
                .par_iter()
                .map(|rows| finite_range(&read(original, rows.clone())?, original.label()))
                .collect::<Result<_, String>>()?;
            let lo = ranges.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
            let hi = ranges.iter().map(|r| r.1).fold(f64::NEG_INFINITY, f64::max);
            hi - lo
        }
    };
    let shape = original.shape().to_vec();
    // SSIM is skipped (and says why) where an axis is shorter than its window.
    let ssim_skipped = ssim::check_shape(&shape, ssim_window).err().or_else(|| {
        (data_range <= 0.0)
            .then(|| "the data range is 0 (a constant original): pass --data-range".to_string())
    });
    let spec = CompareSpec {
        shape,
        data_range,
        max_rel_floor: max_rel_floor.unwrap_or(DEFAULT_REL_FLOOR * data_range),
        ssim: ssim_skipped.is_none().then_some(ssim_window),
    };
    let rows = original.shape()[0];
    let halo = spec.halo();
    let parts: Vec<Partial> = plan
        .chunks
        .par_iter()
        .map(|core| {
            let held = core.start.saturating_sub(halo)..(core.end + halo).min(rows);
            let (a, b) = (read(original, held.clone())?, read(decoded, held.clone())?);
            finite_range(&a, original.label())?;
            finite_range(&b, decoded.label())?;
            spec.partial(&a, &b, held, core.clone())
        })
        .collect::<Result<_, String>>()?;
    let mut total = Partial::default();
    for part in &parts {
        total.merge(part)?;
    }
    let mut metrics = spec.finish(&total, &metric_registry::names());
    if let Some(reason) = ssim_skipped {
        metrics.insert("ssim".into(), Value::Null);
        metrics.insert("ssim_detail".into(), json!({ "skipped": reason }));
    }
    Ok(Comparison {
        count: total.point.count,
        metrics,
        spec,
    })
}

/// Range of a chunk, or an error naming `label` when it holds NaN or infinite values.
fn finite_range(array: &NdArray, label: &str) -> Result<(f64, f64), String> {
    match min_max(array) {
        (lo, hi, 0) => Ok((lo, hi)),
        (_, _, bad) => Err(format!(
            "{label}: contains NaN or infinite values ({bad} in one chunk); photonqa needs finite data"
        )),
    }
}
