//! The `xpcs` analysis against its NumPy/SciPy peer (`tests/peers/xpcs_fixtures.py`, fixtures
//! in `tests/fixtures/xpcs/`) on the committed speckle series `reference-data/xpcs-speckle.h5`:
//! g2 per ring and lag, the decay fits, the generator's known tau_c, streamed partials against
//! the whole arrays, and one-line errors for bad inputs.

mod common;

use std::path::Path;

use common::{
    Failures, assert_ok, expected_json, float_field, float_list, photonqa, repo_root,
    run_first_row, text,
};
use ndarray::ArrayD;
use photonqa::analysis::{Context, Slabs};
use photonqa::data::{IntoNdArray, NdArray, SourceSpec};
use photonqa::pipeline::{Chain, ParamValue, StageConfig};
use photonqa::runner::science::Analyses;
use photonqa::scenario::Scenario;
use serde_json::Value;

const SCRIPT: &str = "tests/peers/xpcs_fixtures.py";
/// A lossless pipeline for the scenarios that only need the analysis.
const ZSTD: &str = "[[pipeline]]\nstage = \"zstd\"\n";

fn source() -> String {
    repo_root()
        .join("reference-data/xpcs-speckle.h5::/frames")
        .display()
        .to_string()
}

fn read_original() -> NdArray {
    let source = SourceSpec::parse(&source(), Path::new(""), None)
        .unwrap()
        .open()
        .unwrap();
    source.read_slab(0..source.shape()[0]).unwrap()
}

/// The peer's lossy version: counts rounded to multiples of 4, `4 floor((x + 2) / 4)`.
fn quantised4(original: &NdArray) -> NdArray {
    let NdArray::Uint16(a) = original else {
        panic!("the speckle series is uint16")
    };
    let q: ArrayD<u16> = a.mapv(|x| 4 * ((x + 2) / 4));
    q.into_nd()
}

/// A scenario on the speckle series with `analyses` (TOML `[[analysis]]` blocks).
fn scenario(chunk_slices: usize, pipeline: &str, analyses: &str) -> String {
    format!(
        "[scenario]\nname = \"xpcs\"\nchunk_slices = {chunk_slices}\n[input]\nsource = \"{}\"\n\
         {pipeline}\n[metrics]\ndistortion = [\"max_abs_error\"]\n{analyses}",
        source()
    )
}

/// The analyses' results on the whole arrays in one partial, by label.
fn whole(original: &NdArray, decoded: &NdArray, toml: &str) -> serde_json::Map<String, Value> {
    let parsed = Scenario::parse(toml, Path::new("s.toml")).unwrap();
    let shape = original.shape().to_vec();
    let mut context = Context::new(&shape, Path::new("."), || Err("unused".into()));
    let analyses = Analyses::prepare(&parsed.analyses, &mut context).unwrap();
    let fits = analyses.fit(None).unwrap();
    let slabs = Slabs::whole(original, decoded, &shape);
    let partial = analyses.partial(&fits, &slabs).unwrap();
    analyses.finish(&fits, partial, &shape).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("{v} is not a list"))
        .iter()
        .map(|x| x.as_f64().unwrap_or_else(|| panic!("{x} is not a number")))
        .collect()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// photonqa's results of every peer case: alpha fitted and alpha = 1.
fn photonqa_cases(expected: &Value) -> Vec<(String, Value, Value)> {
    let original = read_original();
    let decoded = quantised4(&original);
    common::fixture_cases(expected, 3, "xpcs")
        .iter()
        .map(|case| {
            let name = common::str_field(case, "name").to_string();
            let mask = match case["mask"].as_str() {
                Some(m) => format!("mask = \"{}\"\n", repo_root().join(m).display()),
                None => String::new(),
            };
            let analyses = format!(
                "[[analysis]]\nkind = \"xpcs\"\ntwo_time = \"on\"\n{mask}[[analysis]]\nkind = \"xpcs\"\nalpha = 1.0\n{mask}"
            );
            let toml = scenario(64, ZSTD, &analyses);
            let decoded = if name == "lossless" { &original } else { &decoded };
            let mut results = whole(&original, decoded, &toml);
            let free = results.remove("1:xpcs").unwrap();
            let fixed = results.remove("2:xpcs").unwrap();
            (name, free, fixed)
        })
        .collect()
}

#[test]
fn g2_and_fits_match_numpy_and_scipy() {
    let expected = expected_json("xpcs", SCRIPT);
    let mut failures = Failures::default();
    let tau = float_list(&expected["tau"]);
    for ((name, free, fixed), case) in photonqa_cases(&expected)
        .into_iter()
        .zip(expected["cases"].as_array().unwrap())
    {
        assert_eq!(floats(&free["tau"]), tau, "{name}: lags");
        assert_eq!(free["levels"], expected["levels"], "{name}: levels");
        assert_eq!(
            free["ring_pixels"], case["ring_pixels"],
            "{name}: ring pixels"
        );
        for side in ["original", "decoded"] {
            let peer = &case[side];
            for (ring, (want, got)) in peer["g2"]
                .as_array()
                .unwrap()
                .iter()
                .zip(free[side]["g2"].as_array().unwrap())
                .enumerate()
            {
                // Same formulas in float64; only the summation order differs (NumPy sums
                // pairwise): 1e-12 relative per lag (seen: 1.1e-15).
                for (lag, (w, g)) in float_list(want).iter().zip(floats(got)).enumerate() {
                    failures.check(rel(g, *w) <= 1e-12, || {
                        format!("{name} {side} ring {ring} lag {lag}: g2 {g} vs numpy {w}")
                    });
                }
                let want = float_list(&peer["g2_sigma"][ring]);
                for (lag, (w, g)) in want
                    .iter()
                    .zip(floats(&free[side]["g2_sigma"][ring]))
                    .enumerate()
                {
                    // The same for their standard error (seen: 7e-16).
                    failures.check(rel(g, *w) <= 1e-12, || {
                        format!("{name} {side} ring {ring} lag {lag}: sigma {g} vs numpy {w}")
                    });
                }
            }
            for (results, key, free_params) in [(&free, "fit", 4), (&fixed, "fit_alpha1", 3)] {
                for (ring, want) in peer[key].as_array().unwrap().iter().enumerate() {
                    let got = &results[side]["fits"][ring];
                    let names = ["baseline", "beta", "tau_c", "alpha"];
                    let params = float_list(&want["params"]);
                    let sigma = float_list(&want["sigma"]);
                    // Both minimise the same chi2 to tolerances near rounding (photonqa's LM
                    // stops when a step changes no parameter by 1e-13 relative, SciPy's trf at
                    // ftol = xtol = gtol = 1e-15); the chi2 is flat to second order at the
                    // minimum, so the parameters agree to ~sqrt(1e-15) relative at worst: 1e-6
                    // (seen: 1.3e-8). The covariances come from the same analytic Jacobian at
                    // these points: 1e-6 too (seen: 2.8e-8).
                    for i in 0..free_params {
                        let g = got[names[i]].as_f64().unwrap();
                        failures.check(rel(g, params[i]) <= 1e-6, || {
                            format!(
                                "{name} {side} {key} ring {ring}: {} {g} vs curve_fit {}",
                                names[i], params[i]
                            )
                        });
                        let s = got[format!("{}_sigma", names[i])].as_f64().unwrap();
                        failures.check(rel(s, sigma[i]) <= 1e-6, || {
                            format!(
                                "{name} {side} {key} ring {ring}: {}_sigma {s} vs curve_fit {}",
                                names[i], sigma[i]
                            )
                        });
                    }
                    let chi2_reduced = float_field(want, "chi2") / (tau.len() - free_params) as f64;
                    let g = got["chi2_reduced"].as_f64().unwrap();
                    failures.check(rel(g, chi2_reduced) <= 1e-6, || {
                        format!(
                            "{name} {side} {key} ring {ring}: chi2_reduced {g} vs {chi2_reduced}"
                        )
                    });
                }
            }
        }
        // Two-time maps: the same products summed in another order (NumPy's matmul); their
        // differences are ~0.01-0.1, so 1e-9 relative leaves room for ~1e-15 per entry.
        for key in ["max_abs_error", "rms_error"] {
            let want = float_field(&case["two_time"], key);
            let got = free[format!("two_time_{key}")].as_f64().unwrap();
            failures.check((got - want).abs() <= 1e-9 * want, || {
                format!("{name}: two_time_{key} {got} vs numpy {want}")
            });
        }
        assert!(
            fixed.get("two_time_max_abs_error").is_none(),
            "two_time is off by default"
        );
        // The columns follow from the fits; the lossless pair changes nothing.
        if name == "lossless" {
            for column in [
                "tau_c_rel_change_max",
                "tau_c_change_sigma_max",
                "beta_rel_change_max",
                "g2_max_abs_error",
            ] {
                assert_eq!(free[column].as_f64(), Some(0.0), "lossless {column}");
            }
        } else {
            let o: Vec<f64> = (0..4)
                .map(|r| free["original"]["fits"][r]["tau_c"].as_f64().unwrap())
                .collect();
            let d: Vec<f64> = (0..4)
                .map(|r| free["decoded"]["fits"][r]["tau_c"].as_f64().unwrap())
                .collect();
            let most = o
                .iter()
                .zip(&d)
                .map(|(o, d)| (d - o).abs() / o)
                .fold(0.0, f64::max);
            assert_eq!(free["tau_c_rel_change_max"].as_f64(), Some(most), "{name}");
            assert!(most > 0.0, "{name}: quantised counts must move tau_c");
        }
    }
    failures.finish("xpcs");
}

/// The generator's truth (the dataset's provenance attribute, as the peer recorded it).
fn true_tau_c(expected: &Value) -> f64 {
    let generator: Value =
        serde_json::from_str(common::str_field(&expected["provenance"], "generator")).unwrap();
    generator["params"]["tau_c"].as_f64().unwrap()
}

#[test]
fn tau_c_is_recovered_within_three_fit_sigmas() {
    // Done-when "tau_c within the fit uncertainty": |tau_c - truth| <= 3 sigma(tau_c) in every
    // ring, sigma from the fit's covariance (absolute weights), alpha fitted and fixed to 1.
    // The fit treats the lags as independent although neighbouring lags share most frames, and
    // the per-pixel normalisation is biased by O(tau_c / T): with tau_c = 4 frames in 512 the
    // seeds tried stay within 2 sigma (with tau_c = 10 one ring of seed 0 was 5.8 sigma off).
    let expected = expected_json("xpcs", SCRIPT);
    let truth = true_tau_c(&expected);
    assert_eq!(truth, 4.0);
    let (_, free, fixed) = photonqa_cases(&expected).remove(0);
    for (label, results) in [("alpha fitted", &free), ("alpha = 1", &fixed)] {
        for (ring, fit) in results["original"]["fits"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let tau_c = fit["tau_c"].as_f64().unwrap();
            let sigma = fit["tau_c_sigma"].as_f64().unwrap();
            assert!(
                (tau_c - truth).abs() <= 3.0 * sigma && sigma < 0.1 * truth,
                "{label}, ring {ring}: tau_c {tau_c} +- {sigma}, truth {truth}"
            );
        }
    }
}

#[test]
fn streamed_partials_equal_the_whole_arrays() {
    let pipeline = "[[pipeline]]\nstage = \"quantize\"\ndtype = \"uint8\"\nbits = 5\nrange = [0.0, 124.0]\n\
                    [[pipeline]]\nstage = \"zstd\"\n";
    let analyses = "[[analysis]]\nkind = \"xpcs\"\nq_rings = 3\ntwo_time = \"on\"\n";
    let original = read_original();
    let stages = [StageConfig {
        stage: "quantize",
        params: vec![
            ("dtype", ParamValue::Str("uint8".into())),
            ("bits", ParamValue::Int(5)),
            ("range", ParamValue::Interval([0.0, 124.0])),
        ],
    }];
    let chain = Chain::build(&stages, original.dtype()).unwrap();
    let decoded = chain.round_trip(&original).unwrap().decoded;
    let expected = Value::Object(whole(
        &original,
        &decoded,
        &scenario(512, pipeline, analyses),
    ));
    // Chunks of 7 frames (the last one shorter) on 2 threads.
    let dir = tempfile::tempdir().unwrap();
    let row = run_first_row(dir.path(), "c7", &scenario(7, pipeline, analyses), "2");
    assert_eq!(row["science"]["xpcs"], expected["xpcs"]);
    assert!(expected["xpcs"]["g2_max_abs_error"].as_f64().unwrap() > 0.0);
    assert!(expected["xpcs"]["two_time_max_abs_error"].as_f64().unwrap() > 0.0);
}

#[test]
fn bad_inputs_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "levels = 7\n",
            "levels = 7 with per_level = 8 needs at least 1024 frames",
        ),
        ("per_level = 16\nlevels = 6\n", "needs at least 1024 frames"),
        (
            "beam_x = 40.0\n",
            "beam_x = 40 is outside the detector (0..32)",
        ),
        (
            "beam_y = -1.0\n",
            "beam_y = -1 is outside the detector (0..32)",
        ),
        ("r_min = 0.0\nr_max = 1.0\nq_rings = 2\n", "q_rings: ring 0"),
        ("per_level = 7\n", "per_level = 7 must be even"),
        (
            "r_min = 5.0\nr_max = 4.0\n",
            "r_max = 4 must exceed r_min = 5",
        ),
        ("mask = \"nowhere.npy\"\n", "mask:"),
    ];
    for (i, (params, message)) in cases.iter().enumerate() {
        let toml = scenario(
            64,
            ZSTD,
            &format!("[[analysis]]\nkind = \"xpcs\"\n{params}"),
        );
        std::fs::write(dir.path().join(format!("bad{i}.toml")), toml).unwrap();
        let out = photonqa(
            dir.path(),
            &["run", &format!("bad{i}.toml"), "--out", &format!("o{i}")],
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{params}: {err}");
        assert!(
            err.contains(message),
            "{params}: expected '{message}' in: {err}"
        );
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{params}: not one line: {err}"
        );
    }
    let ok = photonqa(dir.path(), &["run", "bad0.toml", "--out", "x", "--help"]);
    assert_ok(&ok, "photonqa run --help");
}

#[test]
fn the_generator_reproduces_the_reference_series() {
    // `photonqa gen xpcs` with its defaults made reference-data/xpcs-speckle.h5: same seed, same
    // counts, so the committed series and the fixtures stay reproducible.
    let dir = tempfile::tempdir().unwrap();
    let out = photonqa(dir.path(), &["gen", "xpcs", "--out", "s.h5"]);
    assert_ok(&out, "photonqa gen xpcs");
    let made = dir.path().join("s.h5::/frames").display().to_string();
    let source = SourceSpec::parse(&made, Path::new(""), None)
        .unwrap()
        .open()
        .unwrap();
    assert_eq!(source.read_slab(0..512).unwrap(), read_original());
    let bad = photonqa(
        dir.path(),
        &["gen", "xpcs", "--out", "b.h5", "--beta", "1.5"],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("beta = 1.5 must be in (0, 1]"));
}
