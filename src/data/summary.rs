//! A one-pass summary of an array's values: what `photonqa init` chooses a starting scenario
//! by (counting data or not).

use super::{DataError, Element, VolumeSource, c_order};
use crate::with_array;

/// Bytes of the slabs read at once.
const SLAB_BYTES: usize = 16 << 20;

/// Range, zeros and integrality of an array's values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValueSummary {
    /// Number of values.
    pub count: u64,
    /// Smallest finite value (+inf when there is none).
    pub min: f64,
    /// Largest finite value (-inf when there is none).
    pub max: f64,
    /// Values equal to 0.
    pub zeros: u64,
    /// NaN or infinite values.
    pub nonfinite: u64,
    /// Every finite value is a whole number.
    pub integer_valued: bool,
}

impl ValueSummary {
    /// The summary of `source`, read slab by slab (16 MiB at a time).
    pub fn of(source: &dyn VolumeSource) -> Result<ValueSummary, DataError> {
        let rows = source.shape()[0];
        let step = (SLAB_BYTES / source.row_bytes().max(1)).clamp(1, rows.max(1));
        let mut summary = ValueSummary {
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            zeros: 0,
            nonfinite: 0,
            integer_valued: true,
        };
        for start in (0..rows).step_by(step) {
            let slab = source.read_slab(start..(start + step).min(rows))?;
            with_array!(&slab, a => {
                for v in c_order(a).iter() {
                    summary.add(v.to_f64());
                }
            });
        }
        Ok(summary)
    }

    fn add(&mut self, v: f64) {
        self.count += 1;
        if !v.is_finite() {
            self.nonfinite += 1;
            return;
        }
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.zeros += u64::from(v == 0.0);
        self.integer_valued &= v.fract() == 0.0;
    }

    /// Photon counts: finite, non-negative whole numbers (and at least one value).
    pub fn counts_like(&self) -> bool {
        self.count > 0 && self.nonfinite == 0 && self.integer_valued && self.min >= 0.0
    }

    /// The fraction of values equal to 0.
    pub fn zero_fraction(&self) -> f64 {
        self.zeros as f64 / (self.count.max(1)) as f64
    }
}

#[cfg(test)]
mod tests {
    use ndarray::ArrayD;

    use super::*;
    use crate::data::{MemorySource, NdArray};

    fn summary(array: NdArray) -> ValueSummary {
        ValueSummary::of(&MemorySource::new(array, "test").unwrap()).unwrap()
    }

    /// Slabs of 16 MiB: a 3 x 1500 x 1500 float64 array (18 MB) is read in two, and its
    /// summary is the one of all its values.
    #[test]
    fn values_are_summarised_across_slabs() {
        let values = ArrayD::from_shape_fn(&[3, 1500, 1500][..], |ix| {
            (ix[0] * 7 + ix[1] % 5 + ix[2] % 3) as f64 - 2.0
        });
        let s = summary(NdArray::Float64(values.clone()));
        assert_eq!(s.count, 3 * 1500 * 1500);
        assert_eq!((s.min, s.max), (-2.0, 14.0 + 4.0 + 2.0 - 2.0));
        assert_eq!(s.zeros, values.iter().filter(|v| **v == 0.0).count() as u64);
        assert!(s.integer_valued && !s.counts_like());
        let mut counts = values.mapv(|v| (v + 2.0) as u16);
        assert!(summary(NdArray::Uint16(counts.clone())).counts_like());
        counts[[2, 1499, 1499]] = 0;
        let fractional = counts.mapv(f32::from) * 0.5;
        let s = summary(NdArray::Float32(fractional));
        assert!(!s.integer_valued && !s.counts_like());
    }

    #[test]
    fn nonfinite_values_are_counted_apart_and_are_no_counts() {
        let mut values = ArrayD::from_elem(&[2, 3][..], 4.0f32);
        values[[0, 1]] = f32::NAN;
        values[[1, 2]] = 0.0;
        let s = summary(NdArray::Float32(values));
        assert_eq!((s.count, s.nonfinite, s.zeros), (6, 1, 1));
        assert_eq!((s.min, s.max), (0.0, 4.0));
        assert!((s.zero_fraction() - 1.0 / 6.0).abs() < 1e-15);
        assert!(!s.counts_like());
    }
}
