//! Statistics of the error `e = decoded - original`, as mergeable partials:
//!
//! - **moments**: mean, standard deviation (population, NumPy `std`), skewness
//!   `g1 = m3 / m2^1.5` and excess kurtosis `g2 = m4 / m2^2 - 3` with the central moments
//!   `m_k = sum (e - mean)^k / N` (SciPy `stats.skew` and `stats.kurtosis` with their defaults,
//!   `bias=True`, Fisher). Skewness and kurtosis are undefined (`null`) for a constant error.
//!   Within a part two passes (mean, then deviations); parts merge with Pébay's update
//!   (P. Pébay, "Formulas for robust, one-pass parallel computation of covariances and
//!   arbitrary-order statistical moments", Sandia report SAND2008-6212, 2008, eq. 3.1).
//! - **histogram** (PDF): the sign and magnitude of errors span many orders of magnitude (exact
//!   zeros where the codec kept values, rounding errors, outliers), and the bins must be fixed
//!   before any error is seen for partials to merge. So the bins are signed and log-spaced
//!   relative to the data range `R`: magnitude edges `m_k = R 10^(k/10 - 8)`, `k = 0..=80`
//!   (ten per decade from `1e-8 R` to `R`), edges `[-m_80 .. -m_0, m_0 .. m_80]` with one central
//!   bin `[-m_0, m_0)` holding the zeros. Bins are half-open `[a, b)` and the last one closed,
//!   as NumPy's `histogram(e, bins=edges)`; errors beyond `R` are counted in `below`/`above`,
//!   and errors that are NaN or infinite (a decoded NaN or infinity) in `nonfinite`, in no
//!   bin. The density is `count / (N width)` over all `N` errors (equal to NumPy's
//!   `density=True` when nothing lies outside).
//!
//! Values are those of the data divided by the comparison's scale (see
//! [`super::comparison::CompareSpec::scale`]); the JSON puts the unit back.
//! - **lag-1 autocorrelation** along each axis `a`: the Pearson correlation of the pairs
//!   `(e[i], e[i + 1 along a])` over all pairs inside the array (pandas `Series.autocorr()` per
//!   line, pooled over lines; NumPy `corrcoef(e[:-1].ravel(), e[1:].ravel())` along the axis).
//!   Undefined (`null`) for a constant error or an axis of length 1. Near 0 the error is white;
//!   near 1 it is smooth along that axis (blocky artefacts, smoothing).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::sums::{CoMoments, f64x4, lane_sums, tally};
use crate::data::{Element, NdArray, c_order, typed_like};
use crate::metrics::values::metric_json;
use crate::with_array;

/// Decades of error magnitude below the data range covered by the histogram.
const DECADES: i32 = 8;
/// Histogram bins per decade.
const PER_DECADE: i32 = 10;
/// Index of the magnitude edge `R`.
const TOP: usize = (DECADES * PER_DECADE) as usize;

/// `decoded - original` as float64, in C order, appended to `out`; the arrays must have the
/// same shape.
pub fn errors_into(
    original: &NdArray,
    decoded: &NdArray,
    out: &mut Vec<f64>,
) -> Result<(), String> {
    original.check_same_shape(decoded)?;
    if original.dtype() != decoded.dtype() {
        let (x, y) = (original.to_f64(), decoded.to_f64());
        out.extend(x.iter().zip(y.iter()).map(|(a, b)| b - a));
        return Ok(());
    }
    with_array!(original, x => {
        let y = typed_like(x, decoded).expect("dtype checked");
        let (x, y) = (c_order(x), c_order(y));
        out.extend(x.iter().zip(y.iter()).map(|(a, b)| b.to_f64() - a.to_f64()));
    });
    Ok(())
}

/// Count, mean and central moment sums `M_k = sum (e - mean)^k`, k = 2..4, of the error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorMoments {
    /// Number of errors.
    pub count: u64,
    /// Mean error.
    pub mean: f64,
    /// Second central moment sum.
    pub m2: f64,
    /// Third central moment sum.
    pub m3: f64,
    /// Fourth central moment sum.
    pub m4: f64,
}

impl ErrorMoments {
    /// Moments of `errors`.
    pub fn of(errors: &[f64]) -> ErrorMoments {
        let [sum] = lane_sums(errors, errors, |e, _| [e]);
        ErrorMoments::with_sum(errors, sum)
    }

    /// Moments of `errors` whose sum `sum` is known: [`lane_sums`] of the errors, e.g.
    /// [`super::distortion::PointSums::sum`] over the same values, bit for bit the sum that
    /// [`ErrorMoments::of`] computes.
    pub fn with_sum(errors: &[f64], sum: f64) -> ErrorMoments {
        if errors.is_empty() {
            return ErrorMoments::default();
        }
        let mean = sum / errors.len() as f64;
        let centre = f64x4::splat(mean);
        let [m2, m3, m4] = lane_sums(errors, errors, |e, _| {
            let d = e - centre;
            let d2 = d * d;
            [d2, d2 * d, d2 * d2]
        });
        ErrorMoments {
            count: errors.len() as u64,
            mean,
            m2,
            m3,
            m4,
        }
    }

    /// Adds the moments of more errors (Pébay's pairwise update; call in a fixed order).
    pub fn merge(&mut self, b: &ErrorMoments) {
        if b.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *b;
            return;
        }
        let a = *self;
        let (na, nb) = (a.count as f64, b.count as f64);
        let n = na + nb;
        let d = b.mean - a.mean;
        let (d_n, d2) = (d / n, d * d);
        self.m4 = a.m4
            + b.m4
            + d2 * d2 * na * nb * (na * na - na * nb + nb * nb) / (n * n * n)
            + 6.0 * d2 * (na * na * b.m2 + nb * nb * a.m2) / (n * n)
            + 4.0 * d_n * (na * b.m3 - nb * a.m3);
        self.m3 = a.m3
            + b.m3
            + d2 * d * na * nb * (na - nb) / (n * n)
            + 3.0 * d_n * (na * b.m2 - nb * a.m2);
        self.m2 = a.m2 + b.m2 + d2 * na * nb / n;
        self.mean = a.mean + d * nb / n;
        self.count += b.count;
    }

    /// Population standard deviation.
    pub fn std(&self) -> f64 {
        (self.m2 / self.count as f64).sqrt()
    }

    /// Skewness `m3 / m2^1.5`; `None` for a constant error.
    pub fn skewness(&self) -> Option<f64> {
        let n = self.count as f64;
        (self.m2 > 0.0).then(|| (self.m3 / n) / (self.m2 / n).powf(1.5))
    }

    /// Excess kurtosis `m4 / m2^2 - 3`; `None` for a constant error.
    pub fn kurtosis(&self) -> Option<f64> {
        let n = self.count as f64;
        (self.m2 > 0.0).then(|| (self.m4 / n) / (self.m2 / n).powi(2) - 3.0)
    }
}

/// Counts of the error in the signed log-spaced bins (see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorHistogram {
    /// Counts of the `2 * 80 + 1` bins, most negative first.
    pub counts: Vec<u64>,
    /// Errors below `-R`.
    pub below: u64,
    /// Errors above `R`.
    pub above: u64,
    /// Errors exactly 0 (also counted in the central bin).
    pub exact_zero: u64,
    /// Errors that are NaN or infinite, in no bin.
    pub nonfinite: u64,
}

impl Default for ErrorHistogram {
    fn default() -> Self {
        ErrorHistogram {
            counts: vec![0; 2 * TOP + 1],
            below: 0,
            above: 0,
            exact_zero: 0,
            nonfinite: 0,
        }
    }
}

/// Magnitude edges `m_k = R 10^(k/10 - 8)`, `k = 0..=80`.
fn magnitudes(data_range: f64) -> Vec<f64> {
    (0..=TOP)
        .map(|k| data_range * 10f64.powf(k as f64 / PER_DECADE as f64 - DECADES as f64))
        .collect()
}

/// The magnitude edges with, for each sixteenth of a binade of float64 (`[2^E, 2^(E + 1))` cut
/// in 16 by the top four bits of the mantissa; indexed by the top 15 bits of the float), how
/// many edges lie below it and the first edge not below it. A sixteenth of an octave is a
/// factor 1.044 and neighbouring edges are a factor 10^(1/10) = 1.259 apart, so at most one
/// edge lies inside a bucket: an edge count is two independent lookups and a comparison, where
/// a binary search over all 81 edges takes 7 unpredictable branches per error. Built once per
/// data range and part (32768 buckets), not per call of [`ErrorHistogram::add`].
pub struct ErrorEdges {
    /// The edges `m_0..=m_TOP`.
    magnitudes: Vec<f64>,
    /// Per bucket, the number of edges below its start.
    below: Vec<u8>,
    /// Per bucket, the first edge at or above its start (infinity past the last).
    next: Vec<f64>,
    /// Whether some bucket holds two edges or more (only edges in the subnormals, far below
    /// any data range photonqa compares unscaled): counts then search all edges.
    crowded: bool,
}

/// Bits of a float64 (below the sign) that index [`ErrorEdges`]' buckets.
const BUCKET_BITS: u32 = 11 + 4;

impl ErrorEdges {
    /// The edges of the data range `data_range` (> 0).
    pub fn new(data_range: f64) -> ErrorEdges {
        let magnitudes = magnitudes(data_range);
        let start = |bucket: u64| f64::from_bits(bucket << (63 - BUCKET_BITS));
        let below_start = |bucket: u64| magnitudes.partition_point(|&m| m < start(bucket));
        // Bucket 0 holds 0 and the smallest subnormals: no edge lies below them.
        let below: Vec<u8> = (0..1u64 << BUCKET_BITS)
            .map(|bucket| below_start(bucket) as u8)
            .collect();
        let next = below
            .iter()
            .map(|&k| magnitudes.get(k as usize).copied().unwrap_or(f64::INFINITY))
            .collect();
        // (The buckets of NaN, past infinity, count no edge below them.)
        let crowded = below.windows(2).any(|w| w[1] > w[0] + 1);
        ErrorEdges {
            magnitudes,
            below,
            next,
            crowded,
        }
    }

    /// How many edges are `< a` (`strict`) or `<= a`, for finite `a >= 0`: the
    /// `partition_point` of the edges by that predicate. The comparison is added, not branched
    /// on, since whether an error lies above the edge in its bucket is unpredictable.
    #[inline]
    fn count(&self, a: f64, strict: bool) -> usize {
        let below = |m: f64| (m < a) | (!strict & (m == a));
        if self.crowded {
            return self.magnitudes.partition_point(|&m| below(m));
        }
        let bucket = (a.to_bits() >> (63 - BUCKET_BITS)) as usize;
        usize::from(self.below[bucket]) + usize::from(below(self.next[bucket]))
    }
}

impl ErrorHistogram {
    /// Adds `errors`, binned with `edges`, the magnitude edges of the data range.
    pub fn add(&mut self, errors: &[f64], edges: &ErrorEdges) {
        let top = edges.magnitudes[TOP];
        let bins = self.counts.len();
        // Slots past the bins count the errors outside them.
        let (below, above, nonfinite) = (bins, bins + 1, bins + 2);
        let slot = |&e: &f64| {
            let a = e.abs();
            if a > top || a.is_nan() {
                // Rare: beyond the outer edges, or not finite.
                return if !e.is_finite() {
                    nonfinite
                } else if e > 0.0 {
                    above
                } else {
                    below
                };
            }
            // A positive error goes to the largest k with m_k <= e (e = R in the last, closed
            // bin; e < m_0 in the central one); a negative one with a = -e to [-m_k, -m_(k-1))
            // for the smallest k with a <= m_k (a <= m_0 in the central one); 0 to the central.
            let negative = e < 0.0;
            let k = edges.count(a, negative);
            if negative { TOP - k } else { TOP + k.min(TOP) }
        };
        let mut counts = vec![0; bins + 3];
        tally(&mut counts, errors.iter().map(slot));
        for (mine, new) in self.counts.iter_mut().zip(&counts) {
            *mine += new;
        }
        self.below += counts[below];
        self.above += counts[above];
        self.nonfinite += counts[nonfinite];
        self.exact_zero += errors.iter().filter(|&&e| e == 0.0).count() as u64;
    }

    /// Adds the counts of another part (exact, in any order).
    pub fn merge(&mut self, other: &ErrorHistogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.below += other.below;
        self.above += other.above;
        self.exact_zero += other.exact_zero;
        self.nonfinite += other.nonfinite;
    }

    /// The histogram with the error moments as JSON: `edges`, `counts`, `density`, `below`,
    /// `above`, `exact_zero`, `nonfinite`, `mean`, `std`, `skewness`, `kurtosis`. The counts
    /// and moments are of errors divided by `scale` (binned with the data range divided by it
    /// too); edges, density, mean and std are given in the data's units (`data_range`).
    pub fn json(&self, moments: &ErrorMoments, data_range: f64, scale: f64) -> Value {
        let m = magnitudes(data_range);
        let edges: Vec<f64> = m
            .iter()
            .rev()
            .map(|v| -v)
            .chain(m.iter().copied())
            .collect();
        let n = moments.count as f64;
        let density: Vec<Value> = self
            .counts
            .iter()
            .zip(edges.windows(2))
            .map(|(&c, w)| metric_json(c as f64 / (n * (w[1] - w[0]))))
            .collect();
        let optional = |v: Option<f64>| v.map_or(Value::Null, metric_json);
        json!({
            "edges": edges.into_iter().map(metric_json).collect::<Vec<_>>(),
            "counts": self.counts,
            "density": density,
            "below": self.below,
            "above": self.above,
            "exact_zero": self.exact_zero,
            "nonfinite": self.nonfinite,
            "mean": metric_json(moments.mean * scale),
            "std": metric_json(moments.std() * scale),
            "skewness": optional(moments.skewness()),
            "kurtosis": optional(moments.kurtosis()),
        })
    }
}

/// Co-moments of the lag-1 pairs of the error along each axis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Autocorrelation {
    /// One entry per axis.
    pub axes: Vec<CoMoments>,
}

impl Autocorrelation {
    /// Pairs of `errors`, a C-order slab of shape `shape`. With `previous_row`, the slab's first
    /// row (along axis 0) precedes the part: it pairs with the next row along axis 0 only.
    pub fn of(errors: &[f64], shape: &[usize], previous_row: bool) -> Autocorrelation {
        // Sums of values centred on the slab's mean error: the lagged sides' own means are
        // within a row's worth of it, so the raw co-moment formulas do not cancel.
        let centre = if errors.is_empty() {
            0.0
        } else {
            let [sum] = lane_sums(errors, errors, |e, _| [e]);
            sum / errors.len() as f64
        };
        let row = shape[1..].iter().product::<usize>();
        let axes = (0..shape.len())
            .map(|axis| {
                let (values, dims) = if axis > 0 && previous_row {
                    let mut dims = shape.to_vec();
                    dims[0] -= 1;
                    (&errors[row..], dims)
                } else {
                    (errors, shape.to_vec())
                };
                let mut sums = PairSums::default();
                for_lag_pairs(values, &dims, axis, |a, b| sums.add(a, b, centre));
                sums.co_moments(centre)
            })
            .collect();
        Autocorrelation { axes }
    }
    /// Adds the pairs of the next part (call in a fixed order).
    pub fn merge(&mut self, other: &Autocorrelation) {
        if self.axes.is_empty() {
            self.axes = other.axes.clone();
        } else {
            for (a, b) in self.axes.iter_mut().zip(&other.axes) {
                a.merge(b);
            }
        }
    }

    /// `{"axis0": r, "axis1": r, ...}`, `null` where undefined.
    pub fn json(&self) -> Value {
        let axes: Map<String, Value> = self
            .axes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let r = c.correlation().map_or(Value::Null, metric_json);
                (format!("axis{i}"), r)
            })
            .collect();
        Value::Object(axes)
    }
}

/// Calls `f` on the runs of lagged pairs `(v[i..i + len], v[i + stride..i + stride + len])` of
/// a C-order array of shape `dims` along `axis`: contiguous slices, so the sums vectorise.
fn for_lag_pairs(values: &[f64], dims: &[usize], axis: usize, mut f: impl FnMut(&[f64], &[f64])) {
    let outer: usize = dims[..axis].iter().product();
    let n = dims[axis];
    let inner: usize = dims[axis + 1..].iter().product();
    if n < 2 {
        return;
    }
    for o in 0..outer {
        let block = &values[o * n * inner..(o + 1) * n * inner];
        let span = (n - 1) * inner;
        f(&block[..span], &block[inner..inner + span]);
    }
}

/// Plain sums of centred lagged pairs in four lanes (vectorised; the centring keeps them small).
#[derive(Default)]
struct PairSums {
    count: u64,
    lanes: [[f64; 4]; 5],
}

impl PairSums {
    fn add(&mut self, a: &[f64], b: &[f64], centre: f64) {
        self.count += a.len() as u64;
        let [sa, sb, saa, sbb, sab] = &mut self.lanes;
        let (head_a, tail_a) = a.split_at(a.len() / 4 * 4);
        let (head_b, tail_b) = b.split_at(head_a.len());
        for (qa, qb) in head_a.chunks_exact(4).zip(head_b.chunks_exact(4)) {
            for lane in 0..4 {
                let (x, y) = (qa[lane] - centre, qb[lane] - centre);
                sa[lane] += x;
                sb[lane] += y;
                saa[lane] += x * x;
                sbb[lane] += y * y;
                sab[lane] += x * y;
            }
        }
        for (&x, &y) in tail_a.iter().zip(tail_b) {
            let (x, y) = (x - centre, y - centre);
            sa[0] += x;
            sb[0] += y;
            saa[0] += x * x;
            sbb[0] += y * y;
            sab[0] += x * y;
        }
    }

    fn co_moments(&self, centre: f64) -> CoMoments {
        if self.count == 0 {
            return CoMoments::default();
        }
        let n = self.count as f64;
        let [sa, sb, saa, sbb, sab] = self.lanes.map(|l| (l[0] + l[1]) + (l[2] + l[3]));
        CoMoments {
            count: self.count,
            mean_x: centre + sa / n,
            mean_y: centre + sb / n,
            m2_x: (saa - sa * sa / n).max(0.0),
            m2_y: (sbb - sb * sb / n).max(0.0),
            c_xy: sab - sa * sb / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// The bucket lookups change no count: every edge, its neighbouring floats and random
    /// magnitudes over 20 decades, for data ranges of several binades, with edges spread out
    /// and crowded in the subnormals.
    #[test]
    fn edge_counts_equal_a_binary_search() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for data_range in [1.0, 0.3, 1e-300, 7.5e12, 2f64.powi(-1070)] {
            let edges = ErrorEdges::new(data_range);
            assert_eq!(edges.crowded, data_range < 1e-305, "{data_range}");
            let m = &edges.magnitudes;
            let mut probes: Vec<f64> = m
                .iter()
                .flat_map(|&v| [v.next_down(), v, v.next_up()])
                .collect();
            probes.extend((0..2000).map(|_| data_range * 10f64.powf(rng.random_range(-12.0..8.0))));
            for a in probes.into_iter().filter(|a| a.is_finite() && *a > 0.0) {
                assert_eq!(
                    edges.count(a, true),
                    m.partition_point(|&v| v < a),
                    "{data_range} {a}"
                );
                assert_eq!(
                    edges.count(a, false),
                    m.partition_point(|&v| v <= a),
                    "{data_range} {a}"
                );
            }
        }
    }

    #[test]
    fn merged_moments_equal_the_whole() {
        let e: Vec<f64> = (0..300)
            .map(|i| (i as f64 * 0.71).sin().powi(3) + 0.2)
            .collect();
        let whole = ErrorMoments::of(&e);
        let mut parts = ErrorMoments::default();
        for r in [0..0, 0..1, 1..120, 120..121, 121..300] {
            parts.merge(&ErrorMoments::of(&e[r]));
        }
        assert_eq!(parts.count, whole.count);
        for (a, b) in [
            (parts.mean, whole.mean),
            (parts.m2, whole.m2),
            (parts.m3, whole.m3),
            (parts.m4, whole.m4),
        ] {
            assert!((a / b - 1.0).abs() < 1e-12, "{a} vs {b}");
        }
        assert_eq!(ErrorMoments::of(&[2.0; 5]).skewness(), None);
    }

    #[test]
    fn bins_follow_numpy_edge_conventions() {
        let m = magnitudes(1.0);
        let mut h = ErrorHistogram::default();
        h.add(
            &[0.0, m[0], -m[0], m[80], -m[80], 2.0, -2.0, m[3], -m[3]],
            &ErrorEdges::new(1.0),
        );
        assert_eq!((h.exact_zero, h.below, h.above), (1, 1, 1));
        // 0 and -m_0 in the central bin, m_0 in the first positive one.
        assert_eq!(h.counts[TOP], 2);
        assert_eq!(h.counts[TOP + 1], 1);
        // m_80 = R closes the last bin; -R opens the first.
        assert_eq!((h.counts[2 * TOP], h.counts[0]), (1, 1));
        // m_3 opens bin [m_3, m_4) and -m_3 bin [-m_3, -m_2), whose left edge has index 80 - 3.
        assert_eq!((h.counts[TOP + 4], h.counts[TOP - 3]), (1, 1));
    }

    #[test]
    fn lag_pairs_walk_each_axis() {
        let v: Vec<f64> = (0..24).map(f64::from).collect();
        let pairs = |dims: &[usize], axis| {
            let mut out = Vec::new();
            for_lag_pairs(&v, dims, axis, |a, b| {
                out.extend(a.iter().zip(b).map(|(x, y)| y - x))
            });
            out
        };
        assert_eq!(pairs(&[2, 3, 4], 0), vec![12.0; 12]);
        assert_eq!(pairs(&[2, 3, 4], 1), vec![4.0; 16]);
        assert_eq!(pairs(&[2, 3, 4], 2), vec![1.0; 18]);
        assert!(pairs(&[1, 24], 0).is_empty());
    }

    #[test]
    fn autocorrelation_equals_pearson_of_the_lagged_pairs() {
        let e: Vec<f64> = (0..60)
            .map(|i| 5.0 + (i as f64 * 0.9).sin() + (i % 7) as f64)
            .collect();
        let auto = Autocorrelation::of(&e, &[3, 4, 5], false);
        for (axis, stride) in [(0, 20), (1, 5), (2, 1)] {
            let mut pairs = Vec::new();
            for i in 0..60 {
                let index = [i / 20, i / 5 % 4, i % 5][axis];
                if index + 1 < [3, 4, 5][axis] {
                    pairs.push((e[i], e[i + stride]));
                }
            }
            let (x, y): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
            let want = CoMoments::of(&x, &y);
            let got = auto.axes[axis];
            assert_eq!(got.count, want.count);
            let (r, s) = (got.correlation().unwrap(), want.correlation().unwrap());
            assert!((r - s).abs() < 1e-14, "axis {axis}: {r} vs {s}");
        }
    }
}
