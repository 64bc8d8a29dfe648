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

/// Metrics computed over windows rather than from point sums (see [`super::comparison`]).
pub static WINDOWED: &[&str] = &["ssim"];

/// The point metric named `name`.
pub fn find(name: &str) -> Option<&'static MetricDef> {
    DISTORTION.iter().find(|m| m.name == name)
}

/// The registered name equal to `name`, point or windowed.
pub fn known(name: &str) -> Option<&'static str> {
    names().into_iter().find(|n| *n == name)
}

/// All metric names, point metrics first.
pub fn names() -> Vec<&'static str> {
    DISTORTION
        .iter()
        .map(|m| m.name)
        .chain(WINDOWED.iter().copied())
        .collect()
}
