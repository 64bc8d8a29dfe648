//! Numerical building blocks of the mergeable metrics: compensated sums and the co-moments of a
//! pair of variables.
//!
//! Means, variances and covariances are kept as co-moments: two passes within a part (means,
//! then deviations), then Chan et al.'s pairwise update across parts (T. F. Chan, G. H. Golub,
//! R. J. LeVeque, "Algorithms for computing the sample variance", Am. Stat. 37 (1983) 242-247,
//! doi:10.1080/00031305.1983.10483115), which stays accurate where raw sums of squares cancel.

use serde::{Deserialize, Serialize};
pub use wide::f64x4;

use crate::data::Element;

/// Compensated summation (Neumaier's variant of Kahan's): the rounding error of each addition
/// is carried in a second term, so a chunk's sum is exact to a few ulp whatever its length and
/// partials merge to the same digits whatever the chunking. A. Neumaier, "Rundungsfehleranalyse
/// einiger Verfahren zur Summation endlicher Summen", ZAMM 54 (1974) 39-51,
/// doi:10.1002/zamm.19740540106.
#[derive(Debug, Clone, Copy, Default)]
pub struct Neumaier {
    sum: f64,
    compensation: f64,
}

impl Neumaier {
    /// Adds `v`. The rounding error of `sum + v` is taken with Knuth's branch-free TwoSum rather
    /// than Neumaier's branch on the larger magnitude: both give it exactly, so the sums are
    /// the same to the bit, and the branch-free form vectorises over [`lane_sums`]' lanes.
    #[inline]
    pub fn add(&mut self, v: f64) {
        let t = self.sum + v;
        let v_part = t - self.sum;
        self.compensation += (self.sum - (t - v_part)) + (v - v_part);
        self.sum = t;
    }

    /// The compensated total.
    pub fn total(&self) -> f64 {
        self.sum + self.compensation
    }
}

/// Lanes of [`for_each_quad`] and [`lane_sums`].
pub const LANES: usize = 4;

/// Calls `step(a, b, filled)` with the pairs of two slices of equal length as float64 lanes, in
/// order, four at a time: `filled` is 4, except for a last, shorter quad, padded with zeros.
///
/// Lane-wise accumulators (sums, maxima) are independent chains: one [`f64x4`] steps four of
/// them with one operation per two lanes (SSE2), where a scalar accumulator waits for each
/// update before the next.
#[inline(always)]
pub fn for_each_quad<A: Element, B: Element>(
    x: &[A],
    y: &[B],
    mut step: impl FnMut(f64x4, f64x4, usize),
) {
    assert_eq!(x.len(), y.len(), "lanes of slices of different lengths");
    let (x_quads, y_quads) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let (x_rest, y_rest) = (x_quads.remainder(), y_quads.remainder());
    for (xq, yq) in x_quads.zip(y_quads) {
        step(quad(xq), quad(yq), LANES);
    }
    if !x_rest.is_empty() {
        step(quad(x_rest), quad(y_rest), x_rest.len());
    }
}

/// The compensated sums of the `K` quantities `f(x[i], y[i])` over the pairs of two slices of
/// equal length, `f` evaluated on four pairs at a time.
///
/// Value `i` goes to lane `i % 4`, each lane a [`Neumaier`] sum, and the lanes are added in
/// order at the end. The result depends on the order of the values only through the lanes'
/// rounding, a few ulp at most, and is the same on every run. The four lanes are one
/// [`f64x4`] (`wide`): each step is the same IEEE operation on every lane, so the sums are
/// those of four scalar [`Neumaier`] sums, bit for bit, at a fraction of the instructions.
pub fn lane_sums<A: Element, B: Element, const K: usize>(
    x: &[A],
    y: &[B],
    mut f: impl FnMut(f64x4, f64x4) -> [f64x4; K],
) -> [f64; K] {
    let mut lanes = [Lanes::default(); K];
    for_each_quad(x, y, |a, b, filled| {
        let values = f(a, b);
        for (sums, v) in lanes.iter_mut().zip(values) {
            if filled == LANES {
                sums.add(v);
            } else {
                // Only the lanes of the last values themselves.
                for (lane, &v) in v.as_array_ref().iter().take(filled).enumerate() {
                    sums.add_to(lane, v);
                }
            }
        }
    });
    lanes.map(|sums| {
        let mut total = Neumaier::default();
        sums.sum.as_array_ref().iter().for_each(|&s| total.add(s));
        sums.compensation
            .as_array_ref()
            .iter()
            .for_each(|&c| total.add(c));
        total.total()
    })
}

/// Up to [`LANES`] values as float64 lanes, zeros beyond them.
#[inline(always)]
fn quad<T: Element>(values: &[T]) -> f64x4 {
    let mut lanes = [0.0; LANES];
    for (lane, v) in lanes.iter_mut().zip(values) {
        *lane = v.to_f64();
    }
    f64x4::new(lanes)
}

/// [`LANES`] [`Neumaier`] sums side by side.
#[derive(Debug, Clone, Copy, Default)]
struct Lanes {
    sum: f64x4,
    compensation: f64x4,
}

impl Lanes {
    /// [`Neumaier::add`] of each lane of `v` to its lane.
    #[inline(always)]
    fn add(&mut self, v: f64x4) {
        let s = self.sum;
        let t = s + v;
        let v_part = t - s;
        self.compensation += (s - (t - v_part)) + (v - v_part);
        self.sum = t;
    }

    /// [`Neumaier::add`] of `v` to lane `lane` alone.
    fn add_to(&mut self, lane: usize, v: f64) {
        let mut one = Neumaier {
            sum: self.sum.as_array_ref()[lane],
            compensation: self.compensation.as_array_ref()[lane],
        };
        one.add(v);
        self.sum.as_array_mut()[lane] = one.sum;
        self.compensation.as_array_mut()[lane] = one.compensation;
    }
}

/// Adds to `counts[slot]` one for each of `slots` (each `< counts.len()`).
///
/// The counts are kept in four interleaved copies, summed at the end: a run of values falling
/// in one slot would otherwise have each increment wait for the previous one's store to reach
/// the next load, where with four copies four increments are in flight. Exact, like any count.
pub fn tally(counts: &mut [u64], slots: impl Iterator<Item = usize>) {
    const COPIES: usize = 4;
    let len = counts.len();
    let mut copies = vec![0u64; COPIES * len];
    for (i, slot) in slots.enumerate() {
        copies[(i % COPIES) * len + slot] += 1;
    }
    for copy in copies.chunks_exact(len) {
        for (count, part) in counts.iter_mut().zip(copy) {
            *count += part;
        }
    }
}

/// Count, means, sums of squared deviations and the co-moment of pairs `(x, y)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CoMoments {
    /// Number of pairs.
    pub count: u64,
    /// Mean of `x`.
    pub mean_x: f64,
    /// Mean of `y`.
    pub mean_y: f64,
    /// Sum of squared deviations of `x` from its mean.
    pub m2_x: f64,
    /// Sum of squared deviations of `y` from its mean.
    pub m2_y: f64,
    /// Sum of products of the deviations.
    pub c_xy: f64,
}

impl CoMoments {
    /// Co-moments of the pairs `(x[i], y[i])` (two passes: means, then deviations).
    pub fn of<A: Element, B: Element>(x: &[A], y: &[B]) -> CoMoments {
        if x.is_empty() {
            return CoMoments::default();
        }
        let n = x.len() as f64;
        let [sx, sy] = lane_sums(x, y, |a, b| [a, b]);
        CoMoments::around(x, y, sx / n, sy / n)
    }

    /// Co-moments of the pairs `(x[i], y[i])` whose means are already known.
    pub fn around<A: Element, B: Element>(x: &[A], y: &[B], mean_x: f64, mean_y: f64) -> CoMoments {
        let (centre_x, centre_y) = (f64x4::splat(mean_x), f64x4::splat(mean_y));
        let [m2_x, m2_y, c_xy] = lane_sums(x, y, |a, b| {
            let (dx, dy) = (a - centre_x, b - centre_y);
            [dx * dx, dy * dy, dx * dy]
        });
        CoMoments {
            count: x.len() as u64,
            mean_x,
            mean_y,
            m2_x,
            m2_y,
            c_xy,
        }
    }

    /// Adds the co-moments of more pairs (call in a fixed order for reproducible results).
    pub fn merge(&mut self, other: &CoMoments) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        let (dx, dy) = (other.mean_x - self.mean_x, other.mean_y - self.mean_y);
        let weight = na * nb / n;
        self.m2_x += other.m2_x + dx * dx * weight;
        self.m2_y += other.m2_y + dy * dy * weight;
        self.c_xy += other.c_xy + dx * dy * weight;
        self.mean_x += dx * nb / n;
        self.mean_y += dy * nb / n;
        self.count += other.count;
    }

    /// Pearson correlation of `x` and `y`; `None` where either is constant (undefined).
    pub fn correlation(&self) -> Option<f64> {
        (self.m2_x > 0.0 && self.m2_y > 0.0)
            .then(|| (self.c_xy / (self.m2_x.sqrt() * self.m2_y.sqrt())).clamp(-1.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensation_keeps_small_terms() {
        let mut s = Neumaier::default();
        for v in [1e16, 1.0, -1e16, 1.0] {
            s.add(v);
        }
        assert_eq!(s.total(), 2.0);
    }

    #[test]
    fn merged_parts_equal_the_whole() {
        let x: Vec<f64> = (0..200).map(|i| 1e3 + (i as f64 * 0.37).sin()).collect();
        let y: Vec<f64> = x.iter().map(|v| v * 2.0 + (v * 7.0).cos()).collect();
        let pairs = |r: std::ops::Range<usize>| (&x[r.clone()], &y[r]);
        let whole = CoMoments::of(&x, &y);
        let mut parts = CoMoments::default();
        for r in [0..0, 0..1, 1..90, 90..91, 91..200] {
            let (x, y) = pairs(r);
            parts.merge(&CoMoments::of(x, y));
        }
        assert_eq!(parts.count, 200);
        for (a, b) in [
            (parts.mean_x, whole.mean_x),
            (parts.mean_y, whole.mean_y),
            (parts.m2_x, whole.m2_x),
            (parts.m2_y, whole.m2_y),
            (parts.c_xy, whole.c_xy),
        ] {
            assert!((a / b - 1.0).abs() < 1e-12, "{a} vs {b}");
        }
        let (x, y) = pairs(3..4);
        assert_eq!(CoMoments::of(x, y).correlation(), None);
    }
}
