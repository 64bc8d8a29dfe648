//! Every metric of data whose squares overflow (float32 near `f32::MAX`, float64 around
//! 1e300), from `photonqa metrics`, against NumPy, SciPy and scikit-image on the same data
//! divided by their range (`tests/peers/huge_fixtures.py`, fixtures in `tests/fixtures/huge/`).
//! photonqa divides by a power of two of its own (`CompareSpec::scale`), so the two sides share
//! no rounding. Lossless pairs give PSNR inf and SSIM exactly 1.
//!
//! Tolerances (one place, [`Tolerance`]): `max_abs_error` and `data_range` exact (one float64
//! subtraction on both sides); `max_rel_error` 1e-12 relative (one division per value);
//! `mse / R^2`, `rmse`, `nrmse`, `psnr`, `snr`, the error's `std` and the power spectra's
//! largest relative error 1e-9 relative (sums in another order, and the peer's division by `R`
//! rounds); `mean_error` 1e-6 relative plus 1e-9 of the rmse (a mean of signed errors cancels);
//! `pearson`, skewness, kurtosis, autocorrelations and the FRC and FSC resolutions 1e-9
//! absolute; `ssim` 2e-5 absolute, as `tests/ssim_crosscheck.rs` (photonqa's filters run in
//! float32, scikit-image's in float64); the KS statistic inside photonqa's bracket
//! `[statistic, statistic_upper_bound]` (binned).

mod common;

use common::{Failures, fixture_cases, float_field, parse_exact, photonqa, repo_root, str_field};
use serde_json::Value;

/// How a photonqa value must match the peer's.
#[derive(Clone, Copy)]
enum Tolerance {
    /// Bit for bit.
    Exact,
    /// `|a - b| <= tol |b|`.
    Relative(f64),
    /// `|a - b| <= tol`.
    Absolute(f64),
}

impl Tolerance {
    fn holds(self, actual: f64, expected: f64) -> bool {
        if actual.is_infinite() || expected.is_infinite() || actual == expected {
            return actual == expected;
        }
        match self {
            Tolerance::Exact => false,
            Tolerance::Relative(tol) => (actual - expected).abs() <= tol * expected.abs(),
            Tolerance::Absolute(tol) => (actual - expected).abs() <= tol,
        }
    }
}

/// A value of photonqa's JSON (`"inf"` strings included) as a float.
fn number(value: &Value, what: &str) -> f64 {
    match value {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => parse_exact(s),
        _ => panic!("{what}: {value} is not a number"),
    }
}

#[test]
fn metrics_of_huge_values_match_the_peers_on_scaled_data() {
    let expected = common::expected_json("huge", "tests/peers/huge_fixtures.py");
    let mut failures = Failures::default();
    for case in fixture_cases(&expected, 4, "huge") {
        let name = str_field(case, "name");
        let [original, decoded] =
            ["original", "decoded"].map(|role| repo_root().join(str_field(case, role)));
        let out = photonqa(
            &repo_root(),
            &[
                "metrics",
                original.to_str().unwrap(),
                decoded.to_str().unwrap(),
                "--json",
            ],
        );
        common::assert_ok(&out, name);
        let got: Value = serde_json::from_slice(&out.stdout).unwrap();
        let text = got.to_string();
        failures.check(!text.contains("nan"), || format!("{name}: a NaN in {text}"));
        failures.check(got["nonfinite_decoded"] == 0, || {
            format!("{name}: nonfinite_decoded {}", got["nonfinite_decoded"])
        });
        let r = float_field(case, "data_range");
        let rmse = float_field(case, "rmse");
        let mse_over_r2 = float_field(case, "mse_over_r2");
        let mut check = |what: &str, actual: f64, expected: f64, tolerance: Tolerance| {
            failures.check(tolerance.holds(actual, expected), || {
                format!("{name}: {what} {actual:e}, peer {expected:e}")
            });
        };
        let field = |path: &str| {
            let mut value = &got;
            for key in path.split('.') {
                value = &value[key];
            }
            number(value, path)
        };
        check("data_range", field("data_range"), r, Tolerance::Exact);
        // mse of data near 1e300 is beyond float64: inf, exactly when the peer's is.
        check(
            "mse",
            field("mse"),
            mse_over_r2 * r * r,
            Tolerance::Relative(1e-9),
        );
        if (mse_over_r2 * r * r).is_finite() {
            check(
                "mse / R^2",
                field("mse") / r / r,
                mse_over_r2,
                Tolerance::Relative(1e-9),
            );
        }
        let mean_error = float_field(case, "mean_error");
        let mean_error_tolerance = Tolerance::Absolute(1e-6 * mean_error.abs() + 1e-9 * rmse);
        for (path, key, tolerance) in [
            ("rmse", "rmse", Tolerance::Relative(1e-9)),
            ("nrmse", "nrmse", Tolerance::Relative(1e-9)),
            ("psnr", "psnr", Tolerance::Relative(1e-9)),
            ("snr", "snr", Tolerance::Relative(1e-9)),
            ("max_abs_error", "max_abs_error", Tolerance::Exact),
            ("max_rel_error", "max_rel_error", Tolerance::Relative(1e-12)),
            ("mean_error", "mean_error", mean_error_tolerance),
            ("pearson", "pearson", Tolerance::Absolute(1e-9)),
            ("ssim", "ssim", Tolerance::Absolute(2e-5)),
            (
                "error_histogram.std",
                "error_std",
                Tolerance::Relative(1e-9),
            ),
            (
                "frc.resolution",
                "frc_resolution",
                Tolerance::Absolute(1e-9),
            ),
            (
                "fsc.resolution",
                "fsc_resolution",
                Tolerance::Absolute(1e-9),
            ),
            (
                "power_spectrum.max_abs_relative_error",
                "power_spectrum_max_abs_relative_error",
                Tolerance::Relative(1e-9),
            ),
        ] {
            check(path, field(path), float_field(case, key), tolerance);
        }
        if case.get("error_skewness").is_some() {
            for (path, key) in [
                ("error_histogram.skewness", "error_skewness"),
                ("error_histogram.kurtosis", "error_kurtosis"),
            ] {
                check(
                    path,
                    field(path),
                    float_field(case, key),
                    Tolerance::Absolute(1e-9),
                );
            }
            let axes = case["error_autocorrelation"].as_array().unwrap();
            for (axis, peer) in axes.iter().enumerate() {
                let path = format!("error_autocorrelation.axis{axis}");
                let peer = parse_exact(peer.as_str().unwrap());
                check(&path, field(&path), peer, Tolerance::Absolute(1e-9));
            }
        } else {
            // Identical: exactly what identical data give.
            check("ssim", field("ssim"), 1.0, Tolerance::Exact);
            check(
                "ssim_detail.min",
                field("ssim_detail.min"),
                1.0,
                Tolerance::Exact,
            );
            check("pearson", field("pearson"), 1.0, Tolerance::Exact);
        }
        let ks = float_field(case, "ks_statistic");
        let (low, high) = (
            field("ks_test.statistic"),
            field("ks_test.statistic_upper_bound"),
        );
        failures.check(low <= ks + 1e-12 && ks <= high + 1e-12, || {
            format!("{name}: KS statistic {ks} outside photonqa's [{low}, {high}]")
        });
    }
    failures.finish("huge values");
}
