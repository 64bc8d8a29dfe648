//! Point-wise distortion metrics from streaming, mergeable sums.
//!
//! With original `x`, decoded `y`, error `e = y - x` over `N` values and data range `R`
//! (max - min of the original unless the scenario gives `data_range`):
//! - `mse = sum(e^2) / N`, `rmse = sqrt(mse)`, `nrmse = rmse / R` (scikit-image
//!   `normalized_root_mse(x, y, normalization='min-max')`);
//! - `psnr = 10 log10(R^2 / mse)` dB, `+inf` when `mse = 0` (scikit-image
//!   `peak_signal_noise_ratio(x, y, data_range=R)`);
//! - `snr = 10 log10(var(x) / mse)` dB with the population variance of the original (`+inf`
//!   when `mse = 0`, `-inf` for a constant original with `mse > 0`);
//! - `max_abs_error = max |e|`; `mean_error = sum(e) / N` (bias);
//! - `max_rel_error = max |e| / max(|x|, floor)`, the floor (`max_rel_floor`, default `1e-3 R`)
//!   keeping values near zero from dominating; a zero denominator gives 0 where `e = 0`, else inf;
//! - `pearson = cov(x, y) / (sd(x) sd(y))` (SciPy `pearsonr`); undefined when `x` or `y` is
//!   constant, then reported as 1 when `y = x` everywhere and 0 otherwise (never NaN).
//!
//! Sums within a chunk are compensated; means, variances and the covariance are co-moments
//! merged pairwise (see [`super::sums`]).
//! Partials are merged in chunk order, so a run is deterministic whatever the thread count.
//!
//! Non-finite decoded values: a decoded value that is NaN or infinite where the original is
//! finite (or that does not reproduce the original's own NaN or infinity, see [`reproduces`])
//! is counted in [`PointSums::nonfinite_decoded`]. Its error is undefined, and `f64::max`
//! would drop a NaN error silently (a decoder that writes NaN would get `max_abs_error = 0`),
//! so every metric of such a comparison is NaN
//! ([`CompareSpec::finish`](super::comparison::CompareSpec::finish)): NaN meets no limit,
//! neither a `min` nor a `max`. `run` and `metrics` refuse an original that is not finite.

use serde::{Deserialize, Serialize};

use wide::CmpEq;

use super::sums::{CoMoments, f64x4, lane_sums};
use crate::data::{Element, NdArray, c_order, typed_like};
use crate::with_array;

/// Sums and co-moments over a part of the volume from which every point metric follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PointSums {
    /// Number of values.
    pub count: u64,
    /// Values whose decoded value is NaN or infinite where the original is finite, or that do
    /// not reproduce the original's NaN or infinity (see [`reproduces`]).
    pub nonfinite_decoded: u64,
    /// Sum of squared errors.
    pub sum_sq: f64,
    /// Sum of errors (decoded - original).
    pub sum: f64,
    /// Largest absolute error.
    pub max_abs: f64,
    /// Largest relative error `|e| / max(|x|, floor)`.
    pub max_rel: f64,
    /// Co-moments of original (`x`) and decoded (`y`) values.
    pub moments: CoMoments,
}

impl PointSums {
    /// Sums over one chunk with the relative-error floor `floor`; the arrays must have the
    /// same shape (dtypes may differ: values are compared as float64).
    pub fn of(original: &NdArray, decoded: &NdArray, floor: f64) -> Result<PointSums, String> {
        original.check_same_shape(decoded)?;
        if original.dtype() != decoded.dtype() {
            return PointSums::of(
                &NdArray::Float64(original.to_f64()),
                &NdArray::Float64(decoded.to_f64()),
                floor,
            );
        }
        Ok(with_array!(original, x => {
            let y = typed_like(x, decoded).expect("dtype checked");
            let (x, y) = (c_order(x), c_order(y));
            let n = x.len() as f64;
            // The extremes ride along the sums' pass over the values.
            let mut extremes = Extremes::new(floor);
            let [sum, sum_sq, sx, sy] = lane_sums(&x, &y, |a, b| {
                extremes.add(a, b);
                let e = b - a;
                [e, e * e, a, b]
            });
            let (max_abs, max_rel, nonfinite_decoded) = extremes.finish();
            PointSums {
                count: x.len() as u64,
                nonfinite_decoded,
                sum_sq,
                sum,
                max_abs,
                max_rel,
                moments: CoMoments::around(&x, &y, sx / n, sy / n),
            }
        }))
    }

    /// The counts alone of [`PointSums::of`] (`count` and `nonfinite_decoded`, every sum 0):
    /// what a comparison without point metrics needs, at a fraction of the cost.
    pub fn counts_of(original: &NdArray, decoded: &NdArray) -> Result<PointSums, String> {
        original.check_same_shape(decoded)?;
        if original.dtype() != decoded.dtype() {
            return PointSums::counts_of(
                &NdArray::Float64(original.to_f64()),
                &NdArray::Float64(decoded.to_f64()),
            );
        }
        Ok(with_array!(original, x => {
            let y = typed_like(x, decoded).expect("dtype checked");
            let (x, y) = (c_order(x), c_order(y));
            let pairs = x.iter().zip(y.iter());
            PointSums {
                count: x.len() as u64,
                nonfinite_decoded: pairs.filter(|(a, b)| spoils(a.to_f64(), b.to_f64())).count() as u64,
                ..PointSums::default()
            }
        }))
    }

    /// Adds the sums of the next part (call in a fixed order for reproducible results).
    pub fn merge(&mut self, other: &PointSums) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        self.moments.merge(&other.moments);
        self.count += other.count;
        self.nonfinite_decoded += other.nonfinite_decoded;
        self.sum_sq += other.sum_sq;
        self.sum += other.sum;
        self.max_abs = self.max_abs.max(other.max_abs);
        self.max_rel = self.max_rel.max(other.max_rel);
    }

    /// Mean squared error.
    pub fn mse(&self) -> f64 {
        self.sum_sq / self.count as f64
    }

    /// The value of the metric `def` of sums over values divided by `scale` (a power of two,
    /// see [`super::comparison::CompareSpec::scale`]), in the units of the undivided values:
    /// `compute(sums, range) scale^unit`, with `range` the data range divided by `scale` too.
    pub fn value(&self, def: &MetricDef, range: f64, scale: f64) -> f64 {
        // One multiplication per power: `scale^2` alone may overflow where the value does not.
        (0..def.unit).fold((def.compute)(self, range), |v, _| v * scale)
    }
}

/// The largest absolute error `|e| = |y - x|`, the largest relative error `|e| / max(|x|, floor)`
/// (0 for `e = 0`, inf for a zero denominator otherwise) and the number of decoded values that
/// spoil their original ([`spoils`]), four lanes at a time (a maximum is exact in any order;
/// [`f64x4::max`], like [`f64::max`], ignores a NaN).
struct Extremes {
    floor: f64x4,
    max_abs: f64x4,
    max_rel: f64x4,
    spoiled: u64,
}

impl Extremes {
    fn new(floor: f64) -> Extremes {
        Extremes {
            floor: f64x4::splat(floor),
            max_abs: f64x4::ZERO,
            max_rel: f64x4::ZERO,
            spoiled: 0,
        }
    }

    /// Adds four pairs (lanes that pad a last, shorter quad are pairs of zeros: no error,
    /// nothing spoiled).
    #[inline(always)]
    fn add(&mut self, a: f64x4, b: f64x4) {
        let e = b - a;
        let magnitude = e.abs();
        self.max_abs = self.max_abs.max(magnitude);
        // Branch-free: a zero denominator gives inf by itself, only 0 / 0 needs the select.
        let rel = e
            .cmp_eq(f64x4::ZERO)
            .blend(f64x4::ZERO, magnitude / a.abs().max(self.floor));
        self.max_rel = self.max_rel.max(rel);
        if !(a.is_finite() & b.is_finite()).all() {
            let (a, b) = (a.to_array(), b.to_array());
            self.spoiled += a.iter().zip(&b).filter(|&(&a, &b)| spoils(a, b)).count() as u64;
        }
    }

    /// `(max_abs, max_rel, spoiled)`.
    fn finish(&self) -> (f64, f64, u64) {
        let max = |lanes: f64x4| lanes.to_array().into_iter().fold(0.0, f64::max);
        (max(self.max_abs), max(self.max_rel), self.spoiled)
    }
}

/// Whether the decoded value `y` reproduces the original `x`: equal, or both NaN (equal
/// infinities are equal). A bound check counts no error there.
pub fn reproduces(x: f64, y: f64) -> bool {
    x == y || (x.is_nan() && y.is_nan())
}

/// Whether the decoded value `y` is NaN or infinite where the original `x` is finite, or does
/// not reproduce the original's NaN or infinity: what [`PointSums::nonfinite_decoded`] counts.
fn spoils(x: f64, y: f64) -> bool {
    (!x.is_finite() || !y.is_finite()) && !reproduces(x, y)
}

/// A registered point metric.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// Name in scenarios, results and `photonqa metrics` output.
    pub name: &'static str,
    /// One-line description.
    pub doc: &'static str,
    /// Value from the error sums and the data range.
    pub compute: fn(&PointSums, f64) -> f64,
    /// Power of the data's unit in the value: 2 for `mse`; 1 for `rmse`, `max_abs_error` and
    /// `mean_error`; 0 for ratios, correlations and decibels, which do not change when the
    /// data are scaled (see [`PointSums::value`]).
    pub unit: u32,
}

/// Mean squared error.
pub const MSE: MetricDef = MetricDef {
    name: "mse",
    doc: "mean squared error",
    compute: |s, _| s.mse(),
    unit: 2,
};

/// Root mean squared error.
pub const RMSE: MetricDef = MetricDef {
    name: "rmse",
    doc: "root mean squared error",
    compute: |s, _| s.mse().sqrt(),
    unit: 1,
};

/// Root mean squared error over the data range.
pub const NRMSE: MetricDef = MetricDef {
    name: "nrmse",
    doc: "rmse / data range",
    compute: |s, range| ratio_or_inf(s.mse().sqrt(), range),
    unit: 0,
};

/// Peak signal-to-noise ratio in dB.
pub const PSNR: MetricDef = MetricDef {
    name: "psnr",
    doc: "peak signal-to-noise ratio 10 log10(R^2 / mse) in dB (inf when identical)",
    compute: |s, range| {
        let mse = s.mse();
        if mse == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (range * range / mse).log10()
        }
    },
    unit: 0,
};

/// Signal-to-noise ratio in dB.
pub const SNR: MetricDef = MetricDef {
    name: "snr",
    doc: "signal-to-noise ratio 10 log10(var(original) / mse) in dB",
    compute: |s, _| {
        let mse = s.mse();
        if mse == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (s.moments.m2_x / s.count as f64 / mse).log10()
        }
    },
    unit: 0,
};

/// Pearson correlation of original and decoded.
pub const PEARSON: MetricDef = MetricDef {
    name: "pearson",
    doc: "Pearson correlation of original and decoded (1 if identical constants, 0 if one is constant)",
    compute: |s, _| {
        if s.sum_sq == 0.0 {
            // Identical arrays: exactly 1, also where rounding would give 1 - 1 ulp.
            1.0
        } else {
            s.moments.correlation().unwrap_or(0.0)
        }
    },
    unit: 0,
};

/// Largest relative error.
pub const MAX_REL_ERROR: MetricDef = MetricDef {
    name: "max_rel_error",
    doc: "largest |decoded - original| / max(|original|, max_rel_floor)",
    compute: |s, _| s.max_rel,
    unit: 0,
};

/// `a / b`, with 0/0 = 0 and a/0 = inf.
fn ratio_or_inf(a: f64, b: f64) -> f64 {
    match (a == 0.0, b > 0.0) {
        (true, _) => 0.0,
        (false, true) => a / b,
        (false, false) => f64::INFINITY,
    }
}

/// Largest absolute error.
pub const MAX_ABS_ERROR: MetricDef = MetricDef {
    name: "max_abs_error",
    doc: "largest absolute error",
    compute: |s, _| s.max_abs,
    unit: 1,
};

/// Mean error (bias).
pub const MEAN_ERROR: MetricDef = MetricDef {
    name: "mean_error",
    doc: "mean of decoded - original (bias)",
    compute: |s, _| s.sum / s.count as f64,
    unit: 1,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::IntoNdArray;
    use ndarray::{ArrayD, IxDyn};

    fn arr(v: Vec<f32>) -> NdArray {
        ArrayD::from_shape_vec(IxDyn(&[1, v.len()]), v)
            .unwrap()
            .into_nd()
    }

    #[test]
    fn known_values() {
        let x = arr(vec![0.0, 1.0, 2.0, 3.0]);
        let s = PointSums::of(&x, &arr(vec![0.0, 1.5, 2.0, 2.0]), 0.5).unwrap();
        assert_eq!(s.mse(), (0.25 + 1.0) / 4.0);
        assert_eq!((MAX_ABS_ERROR.compute)(&s, 3.0), 1.0);
        assert_eq!((MEAN_ERROR.compute)(&s, 3.0), -0.5 / 4.0);
        // |e| / max(|x|, 0.5): 0.5 / 1 and 1 / 3.
        assert_eq!((MAX_REL_ERROR.compute)(&s, 3.0), 0.5);
        assert_eq!((NRMSE.compute)(&s, 3.0), 0.3125f64.sqrt() / 3.0);
        let psnr = (PSNR.compute)(&s, 3.0);
        assert!((psnr - 10.0 * (9.0f64 / 0.3125).log10()).abs() < 1e-12);
        // var(x) = 1.25, mse = 0.3125.
        assert!(((SNR.compute)(&s, 3.0) - 10.0 * 4.0f64.log10()).abs() < 1e-12);
        // x - 1.5 = (-1.5, -0.5, 0.5, 1.5); y - 1.375 = (-1.375, 0.125, 0.625, 0.625).
        let r = (2.0625 - 0.0625 + 0.3125 + 0.9375) / (5.0f64.sqrt() * 2.6875f64.sqrt());
        assert!(((PEARSON.compute)(&s, 3.0) - r).abs() < 1e-15);
    }

    #[test]
    fn identical_and_constant_pairs_are_never_nan() {
        let same = PointSums::of(&arr(vec![1.0; 3]), &arr(vec![1.0; 3]), 0.0).unwrap();
        assert_eq!((PSNR.compute)(&same, 0.0), f64::INFINITY);
        assert_eq!((SNR.compute)(&same, 0.0), f64::INFINITY);
        assert_eq!((PEARSON.compute)(&same, 0.0), 1.0);
        assert_eq!((NRMSE.compute)(&same, 0.0), 0.0);
        assert_eq!((MAX_REL_ERROR.compute)(&same, 0.0), 0.0);
        let x = arr((0..1000).map(|i| (i as f32 * 0.731).sin() * 1e3).collect());
        let copy = PointSums::of(&x, &x, 0.0).unwrap();
        assert_eq!((PEARSON.compute)(&copy, 2e3), 1.0);
        let off = PointSums::of(&arr(vec![0.0; 3]), &arr(vec![0.0, 1.0, 0.0]), 0.0).unwrap();
        assert_eq!((PEARSON.compute)(&off, 0.0), 0.0);
        assert_eq!((SNR.compute)(&off, 0.0), f64::NEG_INFINITY);
        assert_eq!((MAX_REL_ERROR.compute)(&off, 0.0), f64::INFINITY);
    }

    #[test]
    fn merged_parts_equal_the_whole() {
        let x: Vec<f32> = (0..100).map(|i| 1000.0 + (i as f32 * 0.37).sin()).collect();
        let y: Vec<f32> = x.iter().map(|v| (v * 16.0).round() / 16.0).collect();
        let whole = PointSums::of(&arr(x.clone()), &arr(y.clone()), 1e-3).unwrap();
        let mut parts = PointSums::default();
        for range in [0..1, 1..40, 40..41, 41..100] {
            let part = PointSums::of(
                &arr(x[range.clone()].to_vec()),
                &arr(y[range].to_vec()),
                1e-3,
            );
            parts.merge(&part.unwrap());
        }
        assert_eq!(parts.count, whole.count);
        assert_eq!(parts.max_abs, whole.max_abs);
        assert_eq!(parts.max_rel, whole.max_rel);
        for (a, b) in [
            (parts.sum_sq, whole.sum_sq),
            (parts.moments.mean_x, whole.moments.mean_x),
            (parts.moments.m2_x, whole.moments.m2_x),
            (parts.moments.m2_y, whole.moments.m2_y),
            (parts.moments.c_xy, whole.moments.c_xy),
        ] {
            assert!((a / b - 1.0).abs() < 1e-12, "{a} vs {b}");
        }
    }

    #[test]
    fn rejects_shape_mismatch() {
        assert!(
            PointSums::of(&arr(vec![0.0; 3]), &arr(vec![0.0; 4]), 0.0)
                .unwrap_err()
                .contains("cannot compare")
        );
    }
}
