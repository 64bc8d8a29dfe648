//! Numerical building blocks of the mergeable metrics: compensated sums and the co-moments of a
//! pair of variables.
//!
//! Means, variances and covariances are kept as co-moments: two passes within a part (means,
//! then deviations), then Chan et al.'s pairwise update across parts (T. F. Chan, G. H. Golub,
//! R. J. LeVeque, "Algorithms for computing the sample variance", Am. Stat. 37 (1983) 242-247,
//! doi:10.1080/00031305.1983.10483115), which stays accurate where raw sums of squares cancel.

use serde::{Deserialize, Serialize};

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
    /// Adds `v`.
    pub fn add(&mut self, v: f64) {
        let t = self.sum + v;
        self.compensation += if self.sum.abs() >= v.abs() {
            (self.sum - t) + v
        } else {
            (v - t) + self.sum
        };
        self.sum = t;
    }

    /// The compensated total.
    pub fn total(&self) -> f64 {
        self.sum + self.compensation
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
    /// Co-moments of the pairs that `pairs()` yields (called twice: means, then deviations).
    pub fn of<I: Iterator<Item = (f64, f64)>>(pairs: impl Fn() -> I) -> CoMoments {
        let (mut count, mut sx, mut sy) = (0u64, Neumaier::default(), Neumaier::default());
        for (x, y) in pairs() {
            count += 1;
            sx.add(x);
            sy.add(y);
        }
        if count == 0 {
            return CoMoments::default();
        }
        let n = count as f64;
        CoMoments::around(count, sx.total() / n, sy.total() / n, pairs())
    }

    /// Co-moments of `count` pairs whose means are already known.
    pub fn around(
        count: u64,
        mean_x: f64,
        mean_y: f64,
        pairs: impl Iterator<Item = (f64, f64)>,
    ) -> CoMoments {
        let (mut m2_x, mut m2_y, mut c_xy) = (
            Neumaier::default(),
            Neumaier::default(),
            Neumaier::default(),
        );
        for (x, y) in pairs {
            let (dx, dy) = (x - mean_x, y - mean_y);
            m2_x.add(dx * dx);
            m2_y.add(dy * dy);
            c_xy.add(dx * dy);
        }
        CoMoments {
            count,
            mean_x,
            mean_y,
            m2_x: m2_x.total(),
            m2_y: m2_y.total(),
            c_xy: c_xy.total(),
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
        let pairs = |r: std::ops::Range<usize>| {
            let (x, y) = (&x, &y);
            move || r.clone().map(move |i| (x[i], y[i]))
        };
        let whole = CoMoments::of(pairs(0..200));
        let mut parts = CoMoments::default();
        for r in [0..0, 0..1, 1..90, 90..91, 91..200] {
            parts.merge(&CoMoments::of(pairs(r)));
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
        assert_eq!(CoMoments::of(pairs(3..4)).correlation(), None);
    }
}
