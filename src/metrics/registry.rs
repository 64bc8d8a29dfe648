//! Every distortion metric a scenario can select in `[metrics] distortion`.

use serde_json::{Map, Value};

use super::distortion::{self, MetricDef};

/// The registered point metrics: a new one is a function in `distortion.rs` plus one line here.
pub static DISTORTION: &[MetricDef] = &[
    distortion::MSE,
    distortion::RMSE,
    distortion::NRMSE,
    distortion::PSNR,
    distortion::SNR,
    distortion::MAX_ABS_ERROR,
    distortion::MAX_REL_ERROR,
    distortion::MEAN_ERROR,
    distortion::PEARSON,
];

/// A metric computed from its own partials (see [`super::comparison`]) and reported as a
/// number (`ssim`) or a JSON object.
#[derive(Debug, Clone, Copy)]
pub struct StructuredDef {
    /// Name in scenarios, results and `photonqa metrics` output.
    pub name: &'static str,
    /// One-line description.
    pub doc: &'static str,
    /// The scalar fields shown in tables and CSV columns as `name.field`, for an array of the
    /// given rank; empty for a metric that is itself a number.
    pub columns: fn(usize) -> Vec<String>,
}

/// The structured metrics, in report order.
pub static STRUCTURED: &[StructuredDef] = &[
    StructuredDef {
        name: "ssim",
        doc: "structural similarity (scikit-image), with the map minimum and per-slice means",
        columns: |_| Vec::new(),
    },
    StructuredDef {
        name: "error_histogram",
        doc: "histogram (PDF) of the error in log-spaced signed bins, mean, std, skewness, kurtosis",
        columns: |_| fields(&["std", "skewness", "kurtosis"]),
    },
    StructuredDef {
        name: "error_autocorrelation",
        doc: "lag-1 autocorrelation of the error along each axis",
        columns: |rank| (0..rank).map(|a| format!("axis{a}")).collect(),
    },
    StructuredDef {
        name: "ks_test",
        doc: "two-sample Kolmogorov-Smirnov test of the original and decoded value distributions",
        columns: |_| fields(&["statistic", "p_value"]),
    },
    StructuredDef {
        name: "frc",
        doc: "Fourier ring correlation of the planes of the last two axes, half-bit resolution",
        columns: |_| fields(&["resolution"]),
    },
    StructuredDef {
        name: "fsc",
        doc: "Fourier shell correlation of a 3-D volume (its spectra held whole in memory), half-bit resolution",
        columns: |_| fields(&["resolution"]),
    },
    StructuredDef {
        name: "power_spectrum",
        doc: "radially averaged power spectra of original and decoded, relative error per ring",
        columns: |_| fields(&["max_abs_relative_error"]),
    },
];

fn fields(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The point metric named `name`.
pub fn find(name: &str) -> Option<&'static MetricDef> {
    DISTORTION.iter().find(|m| m.name == name)
}

/// The registered name equal to `name`, point or structured.
pub fn known(name: &str) -> Option<&'static str> {
    names().into_iter().find(|n| *n == name)
}

/// All metric names, point metrics first.
pub fn names() -> Vec<&'static str> {
    DISTORTION
        .iter()
        .map(|m| m.name)
        .chain(STRUCTURED.iter().map(|m| m.name))
        .collect()
}

/// The scalar columns of the metrics `names` for an array of rank `rank`: a point metric or
/// `ssim` by its name, a structured metric's fields as `name.field`.
pub fn columns(names: &[&str], rank: usize) -> Vec<String> {
    names
        .iter()
        .flat_map(|name| match STRUCTURED.iter().find(|m| m.name == *name) {
            Some(def) if !(def.columns)(rank).is_empty() => (def.columns)(rank)
                .into_iter()
                .map(|field| format!("{name}.{field}"))
                .collect(),
            _ => vec![name.to_string()],
        })
        .collect()
}

/// The value of `column` (see [`columns`]) in a map of metric values.
pub fn column_value<'a>(values: &'a Map<String, Value>, column: &str) -> Option<&'a Value> {
    match column.split_once('.') {
        Some((name, field)) => values.get(name)?.get(field),
        None => values.get(column),
    }
}
