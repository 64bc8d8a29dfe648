//! Point-wise distortion metrics from streaming error sums.
//!
//! With original `x`, decoded `y`, error `e = y - x` over `N` values and data range `R`
//! (max - min of the original unless the scenario gives `data_range`):
//! - `mse = sum(e^2) / N`, `rmse = sqrt(mse)`;
//! - `psnr = 10 log10(R^2 / mse)` dB, `+inf` when `mse = 0` (scikit-image
//!   `peak_signal_noise_ratio(x, y, data_range=R)`);
//! - `max_abs_error = max |e|`; `mean_error = sum(e) / N` (bias).
//!
//! Sums are accumulated in float64 per chunk and merged in chunk order, so a run is
//! deterministic whatever the thread count.

use serde::{Deserialize, Serialize};

use crate::data::{Element, NdArray, c_order, typed_like};
use crate::with_array;

/// Sums over a part of the volume from which every point metric follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorSums {
    /// Number of values.
    pub count: u64,
    /// Sum of squared errors.
    pub sum_sq: f64,
    /// Sum of errors (decoded - original).
    pub sum: f64,
    /// Largest absolute error.
    pub max_abs: f64,
}

impl ErrorSums {
    /// Sums over one chunk; the arrays must have the same shape (dtypes may differ: values are
    /// compared as float64).
    pub fn of(original: &NdArray, decoded: &NdArray) -> Result<ErrorSums, String> {
        if original.shape() != decoded.shape() {
            return Err(format!(
                "cannot compare shape {:?} with shape {:?}",
                original.shape(),
                decoded.shape()
            ));
        }
        if original.dtype() != decoded.dtype() {
            return ErrorSums::of(
                &NdArray::Float64(original.to_f64()),
                &NdArray::Float64(decoded.to_f64()),
            );
        }
        Ok(with_array!(original, x => {
            let y = typed_like(x, decoded).expect("dtype checked");
            let mut sums = ErrorSums { count: x.len() as u64, ..ErrorSums::default() };
            for (a, b) in c_order(x).iter().zip(c_order(y).iter()) {
                let e = b.to_f64() - a.to_f64();
                sums.sum += e;
                sums.sum_sq += e * e;
                sums.max_abs = sums.max_abs.max(e.abs());
            }
            sums
        }))
    }

    /// Adds the sums of another part (call in a fixed order for reproducible results).
    pub fn merge(&mut self, other: &ErrorSums) {
        self.count += other.count;
        self.sum_sq += other.sum_sq;
        self.sum += other.sum;
        self.max_abs = self.max_abs.max(other.max_abs);
    }

    /// Mean squared error.
    pub fn mse(&self) -> f64 {
        self.sum_sq / self.count as f64
    }
}

/// A registered point metric.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// Name in scenarios, results and `photonqa metrics` output.
    pub name: &'static str,
    /// One-line description.
    pub doc: &'static str,
    /// Value from the error sums and the data range.
    pub compute: fn(&ErrorSums, f64) -> f64,
}

/// Mean squared error.
pub const MSE: MetricDef = MetricDef {
    name: "mse",
    doc: "mean squared error",
    compute: |s, _| s.mse(),
};

/// Root mean squared error.
pub const RMSE: MetricDef = MetricDef {
    name: "rmse",
    doc: "root mean squared error",
    compute: |s, _| s.mse().sqrt(),
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
};

/// Largest absolute error.
pub const MAX_ABS_ERROR: MetricDef = MetricDef {
    name: "max_abs_error",
    doc: "largest absolute error",
    compute: |s, _| s.max_abs,
};

/// Mean error (bias).
pub const MEAN_ERROR: MetricDef = MetricDef {
    name: "mean_error",
    doc: "mean of decoded - original (bias)",
    compute: |s, _| s.sum / s.count as f64,
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
        let s = ErrorSums::of(
            &arr(vec![0.0, 1.0, 2.0, 3.0]),
            &arr(vec![0.0, 1.5, 2.0, 2.0]),
        )
        .unwrap();
        assert_eq!(s.mse(), (0.25 + 1.0) / 4.0);
        assert_eq!((MAX_ABS_ERROR.compute)(&s, 3.0), 1.0);
        assert_eq!((MEAN_ERROR.compute)(&s, 3.0), -0.5 / 4.0);
        let psnr = (PSNR.compute)(&s, 3.0);
        assert!((psnr - 10.0 * (9.0f64 / 0.3125).log10()).abs() < 1e-12);
        let same = ErrorSums::of(&arr(vec![1.0; 3]), &arr(vec![1.0; 3])).unwrap();
        assert_eq!((PSNR.compute)(&same, 1.0), f64::INFINITY);
    }

    #[test]
    fn merged_parts_equal_the_whole() {
        let x: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        let y: Vec<f32> = x.iter().map(|v| (v * 16.0).round() / 16.0).collect();
        let whole = ErrorSums::of(&arr(x.clone()), &arr(y.clone())).unwrap();
        let mut parts = ErrorSums::of(&arr(x[..40].to_vec()), &arr(y[..40].to_vec())).unwrap();
        parts.merge(&ErrorSums::of(&arr(x[40..].to_vec()), &arr(y[40..].to_vec())).unwrap());
        assert_eq!(parts.count, whole.count);
        assert_eq!(parts.max_abs, whole.max_abs);
        assert!((parts.sum_sq / whole.sum_sq - 1.0).abs() < 1e-12);
    }

    #[test]
    fn rejects_shape_mismatch() {
        assert!(
            ErrorSums::of(&arr(vec![0.0; 3]), &arr(vec![0.0; 4]))
                .unwrap_err()
                .contains("cannot compare")
        );
    }
}
