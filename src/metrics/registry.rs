//! Every distortion metric a scenario can select in `[metrics] distortion`.

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

/// The metric named `name`.
pub fn find(name: &str) -> Option<&'static MetricDef> {
    DISTORTION.iter().find(|m| m.name == name)
}

/// All metric names, for error messages.
pub fn names() -> Vec<&'static str> {
    DISTORTION.iter().map(|m| m.name).collect()
}
