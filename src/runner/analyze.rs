//! Science of one array, streamed chunk by chunk: `photonqa analyze`. Otsu's threshold (and the
//! chosen segmentation's), phase fractions, porosity, and the pores as connected components.

use rayon::prelude::*;
use serde_json::{Map, Value, json};

use super::passes::min_max;
use super::{DEFAULT_MEMORY_BUDGET, Plan};
use crate::analysis::components::{ComponentPartial, Connectivity};
use crate::analysis::segmentation::{self, Classes};
use crate::data::VolumeSource;
use crate::metrics::values::metric_json;
use crate::stats::histogram::Binning;
use crate::stats::otsu;

/// How `analyze` segments: thresholds, the pore class, the pores' connectivity.
#[derive(Debug, Clone, PartialEq)]
pub struct Segmenting {
    /// `otsu`, `multiotsu` or `value`.
    pub method: String,
    /// Classes of multiotsu.
    pub classes: usize,
    /// Threshold of `value`.
    pub value: Option<f64>,
    /// The class that is pore space.
    pub pore_class: u8,
    /// Connectivity of the pores.
    pub connectivity: Connectivity,
}

impl Segmenting {
    /// Checks the arguments of `photonqa analyze`: `classes` (3..=5, default 3) only with
    /// multiotsu, a finite `value` with (and only with) the method `value`.
    pub fn new(
        method: String,
        classes: Option<usize>,
        value: Option<f64>,
        pore_class: u8,
        connectivity: Connectivity,
    ) -> Result<Segmenting, String> {
        match (method.as_str(), classes, value) {
            (m, _, _) if !["otsu", "multiotsu", "value"].contains(&m) => {
                return Err(format!(
                    "--method {m}: no such method (methods: otsu, multiotsu, value)"
                ));
            }
            ("multiotsu", Some(c), _) if !(3..=5).contains(&c) => {
                return Err(format!("--classes {c} must be 3..=5"));
            }
            ("value", _, None) => return Err("--method value needs --value".into()),
            ("value", _, Some(v)) if !v.is_finite() => {
                return Err(format!("--value {v} must be finite"));
            }
            (m, Some(_), _) if m != "multiotsu" => {
                return Err("--classes applies only to --method multiotsu".into());
            }
            (m, _, Some(_)) if m != "value" => {
                return Err("--value applies only to --method value".into());
            }
            _ => {}
        }
        Ok(Segmenting {
            method,
            classes: classes.unwrap_or(3),
            value,
            pore_class,
            connectivity,
        })
    }
}

/// Analyses `source` (see the module documentation); the keys of the result are documented in
/// the README (`photonqa analyze` in its table of commands).
pub fn analyze(
    source: &dyn VolumeSource,
    how: &Segmenting,
    memory_budget: Option<u64>,
) -> Result<Map<String, Value>, String> {
    let label = source.label();
    let shape = source.shape().to_vec();
    let budget = memory_budget.unwrap_or(DEFAULT_MEMORY_BUDGET);
    let plan = Plan::within(&shape, source.row_bytes(), budget, 0)?;
    let read = |rows: std::ops::Range<usize>| source.read_slab(rows).map_err(|e| e.to_string());
    let ranges: Vec<(f64, f64)> = plan
        .chunks
        .par_iter()
        .map(|rows| match min_max(&read(rows.clone())?) {
            (lo, hi, 0) => Ok((lo, hi)),
            (_, _, bad) => Err(format!(
                "{label}: contains NaN or infinite values ({bad} in one chunk); photonqa needs finite data"
            )),
        })
        .collect::<Result<_, String>>()?;
    let lo = ranges.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
    let hi = ranges.iter().map(|r| r.1).fold(f64::NEG_INFINITY, f64::max);
    let binning = Binning::new(source.dtype(), lo, hi).map_err(|e| format!("{label}: {e}"))?;
    let parts: Vec<Vec<u64>> = plan
        .chunks
        .par_iter()
        .map(|rows| {
            let mut counts = binning.zeros();
            binning.accumulate(&read(rows.clone())?, &mut counts);
            Ok(counts)
        })
        .collect::<Result<_, String>>()?;
    let mut counts = binning.zeros();
    for part in parts {
        counts.iter_mut().zip(part).for_each(|(c, p)| *c += p);
    }
    let histogram = binning.finish(counts);
    let otsu_threshold = otsu::threshold(&histogram);
    let thresholds = match how.method.as_str() {
        "otsu" => vec![otsu_threshold],
        "multiotsu" => {
            segmentation::multiotsu(&histogram, how.classes).map_err(|e| format!("{label}: {e}"))?
        }
        _ => vec![how.value.ok_or("method value needs a value")?],
    };
    let classes = Classes { thresholds };
    if usize::from(how.pore_class) >= classes.count() {
        return Err(format!(
            "pore class {} but the segmentation has {} classes",
            how.pore_class,
            classes.count()
        ));
    }
    // Class counts and the pores of each chunk, merged in row order.
    let parts: Vec<(Vec<u64>, ComponentPartial)> = plan
        .chunks
        .par_iter()
        .map(|rows| {
            let chunk = read(rows.clone())?;
            let mut class_counts = vec![0u64; classes.count()];
            let mask: Vec<u8> = chunk
                .to_f64()
                .iter()
                .map(|&v| {
                    let class = classes.class_of(v);
                    class_counts[usize::from(class)] += 1;
                    u8::from(class == how.pore_class)
                })
                .collect();
            let pores =
                ComponentPartial::of(&mask, chunk.shape(), rows.start, shape[0], how.connectivity)?;
            Ok((class_counts, pores))
        })
        .collect::<Result<_, String>>()?;
    let mut class_counts = vec![0u64; classes.count()];
    let mut parts = parts.into_iter();
    let (first_counts, mut pores) = parts.next().expect("at least one chunk");
    class_counts
        .iter_mut()
        .zip(first_counts)
        .for_each(|(c, p)| *c += p);
    for (counts, next) in parts {
        class_counts
            .iter_mut()
            .zip(counts)
            .for_each(|(c, p)| *c += p);
        pores.merge(&next)?;
    }
    let pores = pores.finish();
    let total: u64 = class_counts.iter().sum();
    let fractions: Vec<Value> = class_counts
        .iter()
        .map(|&c| metric_json(c as f64 / total as f64))
        .collect();
    let diameters = crate::analysis::porosity::diameters(&pores, shape.len());
    let mean = if diameters.is_empty() {
        0.0
    } else {
        diameters.iter().sum::<f64>() / diameters.len() as f64
    };
    let Value::Object(map) = json!({
        "input": label,
        "shape": shape,
        "dtype": source.dtype().name(),
        "min": metric_json(lo),
        "max": metric_json(hi),
        "otsu_threshold": metric_json(otsu_threshold),
        "method": how.method,
        "thresholds": classes.thresholds.iter().map(|&t| metric_json(t)).collect::<Vec<_>>(),
        "fractions": fractions,
        "pore_class": how.pore_class,
        "porosity": metric_json(class_counts[usize::from(how.pore_class)] as f64 / total as f64),
        "connectivity": how.connectivity.name(),
        "pore_count": pores.count,
        "pores_touching_border": pores.touching_border,
        "pore_sizes": pores.sizes,
        "diameter_mean": metric_json(mean),
        "diameter_max": metric_json(diameters.last().copied().unwrap_or(0.0)),
        "specific_surface": metric_json(pores.boundary_faces as f64 / total as f64),
    }) else {
        unreachable!("an object literal")
    };
    Ok(map)
}
