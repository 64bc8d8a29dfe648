//! Comparing two arrays (original and decoded), streamed chunk by chunk: `photonqa metrics`.

use rayon::prelude::*;

use super::Plan;
use super::passes::min_max;
use crate::data::{NdArray, VolumeSource};
use crate::metrics::ErrorSums;
use crate::metrics::registry as metric_registry;

/// Every distortion metric between two arrays.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Number of values compared.
    pub count: u64,
    /// The data range used for PSNR.
    pub data_range: f64,
    /// `(name, value)` for every registered distortion metric.
    pub metrics: Vec<(&'static str, f64)>,
}

/// Compares `decoded` with `original`; the data range defaults to max - min of `original`.
pub fn compare(
    original: &dyn VolumeSource,
    decoded: &dyn VolumeSource,
    data_range: Option<f64>,
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
    let parts: Vec<(ErrorSums, f64, f64)> = plan
        .chunks
        .par_iter()
        .map(|rows| {
            let a = original
                .read_slab(rows.clone())
                .map_err(|e| e.to_string())?;
            let b = decoded.read_slab(rows.clone()).map_err(|e| e.to_string())?;
            let (lo, hi) = finite_range(&a, original.label())?;
            finite_range(&b, decoded.label())?;
            Ok((ErrorSums::of(&a, &b)?, lo, hi))
        })
        .collect::<Result<_, String>>()?;
    let mut sums = ErrorSums::default();
    for (part, _, _) in &parts {
        sums.merge(part);
    }
    let lo = parts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = parts.iter().map(|p| p.2).fold(f64::NEG_INFINITY, f64::max);
    let data_range = data_range.unwrap_or(hi - lo);
    Ok(Comparison {
        count: sums.count,
        data_range,
        metrics: metric_registry::DISTORTION
            .iter()
            .map(|m| (m.name, (m.compute)(&sums, data_range)))
            .collect(),
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
