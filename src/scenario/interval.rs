//! The interval of an adaptive search, `{ search = [lo, hi], scale, tolerance }`: plain data
//! of the schema, parsed by [`super::sweep::search_interval`] and bisected by
//! `select::search`.

/// How the parameter's values are spaced, which sets where bisection splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Arithmetic midpoints, `(a + b) / 2`.
    Linear,
    /// Geometric midpoints, `sqrt(a b)`: for error bounds spanning decades. Needs `lo > 0`.
    Log,
}

/// The searched parameter's interval and resolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Smallest value (finite; > 0 on a log scale; whole for integers).
    pub lo: f64,
    /// Largest value (finite, > `lo`; whole for integers).
    pub hi: f64,
    /// Spacing of the values.
    pub scale: Scale,
    /// Whether only whole values are meaningful (bits, levels): bisection stops at adjacent
    /// integers and `tolerance` is not used.
    pub integer: bool,
    /// For a float parameter, bisection stops when the bracket `[a, b]` is this narrow: the
    /// width `b - a` on a linear scale, the relative step `b / a - 1` on a log scale
    /// (finite, > 0).
    pub tolerance: f64,
}

impl Interval {
    /// Checks the interval; the error names the field.
    pub fn check(&self) -> Result<(), String> {
        let Interval { lo, hi, .. } = *self;
        if !lo.is_finite() || !hi.is_finite() {
            return Err(format!("search interval [{lo}, {hi}] must be finite"));
        }
        if lo >= hi {
            return Err(format!("search interval: lo {lo} must be below hi {hi}"));
        }
        if self.scale == Scale::Log && lo <= 0.0 {
            return Err(format!(
                "search interval: lo {lo} must be > 0 on a log scale"
            ));
        }
        if self.integer {
            // Whole and exactly representable, so that midpoints stay integers.
            let whole = |x: f64| x.fract() == 0.0 && x.abs() <= 2f64.powi(53);
            if !whole(lo) || !whole(hi) {
                return Err(format!(
                    "search interval [{lo}, {hi}] of an integer parameter must have whole ends"
                ));
            }
        } else if !(self.tolerance.is_finite() && self.tolerance > 0.0) {
            return Err(format!(
                "search tolerance {} must be finite and > 0",
                self.tolerance
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A float interval.
    pub(crate) fn float(lo: f64, hi: f64, scale: Scale, tolerance: f64) -> Interval {
        Interval {
            lo,
            hi,
            scale,
            integer: false,
            tolerance,
        }
    }

    #[test]
    fn bad_intervals_are_errors() {
        let err = |interval: Interval| interval.check().unwrap_err();
        assert_eq!(
            err(float(1.0, 1.0, Scale::Linear, 0.1)),
            "search interval: lo 1 must be below hi 1"
        );
        assert_eq!(
            err(float(0.0, f64::INFINITY, Scale::Linear, 0.1)),
            "search interval [0, inf] must be finite"
        );
        assert_eq!(
            err(float(0.0, 1.0, Scale::Log, 0.1)),
            "search interval: lo 0 must be > 0 on a log scale"
        );
        assert_eq!(
            err(float(0.0, 1.0, Scale::Linear, 0.0)),
            "search tolerance 0 must be finite and > 0"
        );
        assert_eq!(
            err(float(0.0, 1.0, Scale::Linear, f64::NAN)),
            "search tolerance NaN must be finite and > 0"
        );
        let mut integer = float(0.5, 4.0, Scale::Linear, 0.0);
        integer.integer = true;
        assert_eq!(
            err(integer),
            "search interval [0.5, 4] of an integer parameter must have whole ends"
        );
    }
}
