//! How a value compares with its baseline under a [`Tolerance`] (the tolerances themselves,
//! `[gate.tolerances]`, are the scenario's: [`crate::scenario::tolerances`]).

use crate::scenario::tolerances::Tolerance;

impl Tolerance {
    /// The largest `|new - old|` allowed for the baseline value `old`: `max(abs, rel * |old|)`.
    pub fn allowed(&self, old: f64) -> f64 {
        self.abs.max(self.rel * old.abs())
    }

    /// Whether the finite values `old` (baseline) and `new` are within the tolerance.
    pub fn allows(&self, old: f64, new: f64) -> bool {
        (new - old).abs() <= self.allowed(old)
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::tolerances::{Tolerance, Tolerances};

    #[test]
    fn allowed_is_the_larger_of_abs_and_rel() {
        let t = Tolerance {
            abs: 0.5,
            rel: 0.25,
        };
        assert_eq!(t.allowed(1.0), 0.5);
        assert_eq!(t.allowed(-4.0), 1.0);
        // Boundaries pass: exactly representable values, no rounding involved.
        assert!(t.allows(1.0, 1.5));
        assert!(!t.allows(1.0, 1.5000000000000002));
        assert!(t.allows(-4.0, -5.0));
        assert!(!t.allows(-4.0, -5.000000000000001));
        assert!(Tolerance::EXACT.allows(3.0, 3.0));
        assert!(!Tolerance::EXACT.allows(3.0, 3.0000000000000004));
    }

    #[test]
    fn infinite_tolerance_is_allowed() {
        let doc: toml::Value =
            toml::from_str("[gate.tolerances]\n\"ks_test.p_value\" = { abs = inf }").unwrap();
        let t = Tolerances::from_toml(&doc["gate"]["tolerances"]).unwrap();
        assert!(t.entry("ks_test.p_value").unwrap().1.allows(0.0, 1e300));
    }
}
