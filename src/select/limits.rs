//! How a value meets an acceptance limit (its margin to the binding bound) and how the
//! objective ranks two values. The limits and the objective themselves are the scenario's
//! ([`crate::scenario::limits`]).

use std::cmp::Ordering;

use crate::scenario::limits::{Limit, Objective};

/// Which bound of a [`Limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The lower bound, `min`.
    Min,
    /// The upper bound, `max`.
    Max,
}

impl Side {
    /// `"min"` or `"max"`, as in scenarios and `recommendation.json`.
    pub fn name(self) -> &'static str {
        match self {
            Side::Min => "min",
            Side::Max => "max",
        }
    }
}

/// How far a value lies inside the bound of a limit it is closest to violating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Margin {
    /// The bound that binds.
    pub side: Side,
    /// Its value.
    pub bound: f64,
    /// Signed distance to it: `value - min` or `max - value`; positive inside, 0 on the
    /// bound, negative outside.
    pub margin: f64,
}

impl Margin {
    /// The margin as a fraction of the bound's magnitude, `margin / |bound|` (the plain margin
    /// when the bound is 0), so that margins of columns with different units compare.
    pub fn relative(&self) -> f64 {
        if self.bound == 0.0 {
            self.margin
        } else {
            self.margin / self.bound.abs()
        }
    }
}

impl Limit {
    /// The margin of `value` to the bound it is closest to violating (the smaller of
    /// `value - min` and `max - value`); `None` for a limit without bounds.
    pub fn margin(&self, value: f64) -> Option<Margin> {
        let low = self.min.map(|bound| Margin {
            side: Side::Min,
            bound,
            margin: value - bound,
        });
        let high = self.max.map(|bound| Margin {
            side: Side::Max,
            bound,
            margin: bound - value,
        });
        match (low, high) {
            // On a tie the lower bound is named: deterministic, and either is true.
            (Some(l), Some(h)) => Some(if h.margin < l.margin { h } else { l }),
            (l, h) => l.or(h),
        }
    }
}

impl Objective {
    /// How `a` ranks against `b`: `Less` when `a` is better (so that sorting puts the best
    /// first). NaN ranks last.
    pub fn rank(&self, a: f64, b: f64) -> Ordering {
        match (a.is_nan(), b.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) if self.maximize => b.total_cmp(&a),
            (false, false) => a.total_cmp(&b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_are_signed_distances_to_the_binding_bound() {
        let both = Limit {
            column: "x".into(),
            min: Some(-2.0),
            max: Some(4.0),
        };
        let m = both.margin(3.0).unwrap();
        assert_eq!((m.side, m.bound, m.margin), (Side::Max, 4.0, 1.0));
        assert_eq!(m.relative(), 0.25);
        let m = both.margin(-3.0).unwrap();
        assert_eq!((m.side, m.margin, m.relative()), (Side::Min, -1.0, -0.5));
        // Equidistant: the lower bound is named.
        assert_eq!(both.margin(1.0).unwrap().side, Side::Min);
        let zero = Limit {
            column: "x".into(),
            min: None,
            max: Some(0.0),
        };
        assert_eq!(zero.margin(0.25).unwrap().relative(), -0.25);
        let inf = Limit {
            column: "psnr".into(),
            min: Some(40.0),
            max: None,
        };
        assert_eq!(inf.margin(f64::INFINITY).unwrap().margin, f64::INFINITY);
        assert!(inf.margin(f64::NAN).unwrap().margin.is_nan());
        let none = Limit {
            column: "x".into(),
            min: None,
            max: None,
        };
        assert_eq!(none.margin(1.0), None);
    }

    #[test]
    fn objective_ranks_best_first_and_nan_last() {
        let max = Objective::default();
        assert_eq!(max.rank(2.0, 1.0), Ordering::Less);
        assert_eq!(max.rank(f64::NAN, 1.0), Ordering::Greater);
        assert_eq!(max.rank(1.0, f64::NAN), Ordering::Less);
        let min = Objective::parse("min mse").unwrap();
        assert_eq!(min.rank(2.0, 1.0), Ordering::Greater);
        assert_eq!(min.rank(f64::NAN, 1.0), Ordering::Greater);
        assert_eq!(min.rank(1.0, 1.0), Ordering::Equal);
    }
}
