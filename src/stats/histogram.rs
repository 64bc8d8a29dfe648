//! Histograms as scikit-image's `exposure.histogram(image, 256, source_range='image')` makes
//! them, accumulated slab by slab.
//!
//! Floats: 256 equal bins over `[min, max]`, with NumPy 2's `np.histogram` arithmetic carried
//! out in the data's own precision (float32 data: float32 edges, float32 index computation and
//! the same one-ULP corrections at the edges), so that every value lands in the bin NumPy puts
//! it in. Integers: one bin per integer value from min to max (`np.bincount`).

use num_traits::{Float, NumCast};

use crate::data::{DType, Element, NdArray, c_order};
use crate::with_array;

/// Number of bins for floating-point data (scikit-image's default `nbins`).
pub const FLOAT_BINS: usize = 256;

/// Widest integer span accepted for one-bin-per-value histograms.
pub const MAX_INTEGER_BINS: i64 = 1 << 24;

/// Counts and bin centres.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Histogram {
    /// Number of values per bin.
    pub counts: Vec<u64>,
    /// Bin centres, exactly as scikit-image returns them (float32 values for float32 data).
    pub centers: Vec<f64>,
    /// Dtype of the histogrammed data (decides the precision of derived computations).
    pub dtype: DType,
    /// Smallest value of the data.
    pub min: f64,
    /// Largest value of the data.
    pub max: f64,
}

/// The bin layout of a histogram over a known data range; accumulates slabs into counts.
#[derive(Debug, Clone)]
pub struct Binning {
    dtype: DType,
    lo: f64,
    hi: f64,
}

impl Binning {
    /// Binning for data of `dtype` with minimum `lo` and maximum `hi`.
    pub fn new(dtype: DType, lo: f64, hi: f64) -> Result<Self, String> {
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return Err(format!("cannot histogram over [{lo}, {hi}]"));
        }
        if !dtype.is_float() && hi - lo >= MAX_INTEGER_BINS as f64 {
            return Err(format!(
                "integer range [{lo}, {hi}] too wide for one bin per value (at most {MAX_INTEGER_BINS})"
            ));
        }
        // NumPy refuses ranges narrower than 256 representable steps; so do we.
        let increasing = match dtype {
            DType::Float32 => FloatEdges::<f32>::new(lo as f32, hi as f32).increasing(),
            DType::Float64 => FloatEdges::<f64>::new(lo, hi).increasing(),
            _ => true,
        };
        if !increasing {
            return Err(format!(
                "data range [{lo}, {hi}] is too narrow for {FLOAT_BINS} distinct {dtype} bins (NumPy and scikit-image refuse it too)"
            ));
        }
        Ok(Binning { dtype, lo, hi })
    }

    /// Number of bins.
    pub fn len(&self) -> usize {
        if self.dtype.is_float() {
            FLOAT_BINS
        } else {
            (self.hi - self.lo) as usize + 1
        }
    }

    /// True when there are no bins (never: a range holds at least one value).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Zeroed counts.
    pub fn zeros(&self) -> Vec<u64> {
        vec![0; self.len()]
    }

    /// Adds the values of `slab` (same dtype, inside the range) to `counts`.
    pub fn accumulate(&self, slab: &NdArray, counts: &mut [u64]) {
        match slab {
            NdArray::Float32(a) => {
                let edges = FloatEdges::<f32>::new(self.lo as f32, self.hi as f32);
                c_order(a).iter().for_each(|&v| counts[edges.index(v)] += 1);
            }
            NdArray::Float64(a) => {
                let edges = FloatEdges::<f64>::new(self.lo, self.hi);
                c_order(a).iter().for_each(|&v| counts[edges.index(v)] += 1);
            }
            _ => {
                let lo = self.lo as i64;
                with_array!(slab, a => c_order(a).iter().for_each(|&v| counts[(v.to_f64() as i64 - lo) as usize] += 1));
            }
        }
    }

    /// The finished histogram.
    pub fn finish(&self, counts: Vec<u64>) -> Histogram {
        let centers = match self.dtype {
            DType::Float32 => FloatEdges::<f32>::new(self.lo as f32, self.hi as f32).centers(),
            DType::Float64 => FloatEdges::<f64>::new(self.lo, self.hi).centers(),
            _ => (0..self.len()).map(|i| self.lo + i as f64).collect(),
        };
        Histogram {
            counts,
            centers,
            dtype: self.dtype,
            min: self.lo,
            max: self.hi,
        }
    }
}

/// NumPy's uniform bin edges and index computation in precision `F`.
struct FloatEdges<F> {
    first: F,
    denom: F,
    edges: Vec<F>,
}

impl<F: Float + NumCast> FloatEdges<F> {
    fn new(mut first: F, mut last: F) -> Self {
        // np.histogram widens an empty range by 0.5 on each side.
        if first == last {
            let half = F::from(0.5).expect("representable");
            first = first - half;
            last = last + half;
        }
        let n = F::from(FLOAT_BINS).expect("representable");
        // np.linspace(first, last, 257, dtype=F): arange * step + start, last edge set exactly.
        let step = (last - first) / n;
        let mut edges: Vec<F> = (0..=FLOAT_BINS)
            .map(|i| F::from(i).expect("representable") * step + first)
            .collect();
        edges[FLOAT_BINS] = last;
        FloatEdges {
            first,
            denom: last - first,
            edges,
        }
    }

    fn index(&self, v: F) -> usize {
        let n = F::from(FLOAT_BINS).expect("representable");
        let mut i = (((v - self.first) / self.denom) * n)
            .to_usize()
            .unwrap_or(0);
        if i >= FLOAT_BINS {
            i = FLOAT_BINS - 1;
        }
        if v < self.edges[i] {
            i = i.saturating_sub(1);
        } else if v >= self.edges[i + 1] && i != FLOAT_BINS - 1 {
            i += 1;
        }
        i
    }

    fn increasing(&self) -> bool {
        self.edges.windows(2).all(|w| w[0] < w[1])
    }

    fn centers(&self) -> Vec<f64> {
        let two = F::from(2.0).expect("representable");
        self.edges
            .windows(2)
            .map(|w| ((w[0] + w[1]) / two).to_f64().expect("finite"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::IntoNdArray;
    use ndarray::{ArrayD, IxDyn};

    #[test]
    fn float_edges_put_extremes_in_first_and_last_bin() {
        let a = ArrayD::from_shape_vec(IxDyn(&[1, 4]), vec![0.0f32, 0.5, 0.999, 1.0])
            .unwrap()
            .into_nd();
        let binning = Binning::new(DType::Float32, 0.0, 1.0).unwrap();
        let mut counts = binning.zeros();
        binning.accumulate(&a, &mut counts);
        assert_eq!(counts[0], 1);
        assert_eq!(counts[128], 1);
        assert_eq!(counts[255], 2);
        let h = binning.finish(counts);
        assert_eq!(h.centers[0], 0.001953125);
    }

    #[test]
    fn integers_get_one_bin_per_value() {
        let a = ArrayD::from_shape_vec(IxDyn(&[1, 5]), vec![-2i16, -2, 0, 3, 3])
            .unwrap()
            .into_nd();
        let binning = Binning::new(DType::Int16, -2.0, 3.0).unwrap();
        let mut counts = binning.zeros();
        binning.accumulate(&a, &mut counts);
        let h = binning.finish(counts);
        assert_eq!(h.counts, [2, 0, 1, 0, 0, 2]);
        assert_eq!(h.centers, [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]);
        assert!(Binning::new(DType::Int32, 0.0, 1e9).is_err());
        let narrow = Binning::new(DType::Float32, 1000.0, 1000.0 + 1e-3).unwrap_err();
        assert!(narrow.contains("too narrow"), "{narrow}");
        assert!(Binning::new(DType::Float64, 1000.0, 1000.0 + 1e-3).is_ok());
    }
}
