//! photonqa's filtered back-projection (`photonqa::analysis::fbp`) against scikit-image 0.26
//! `skimage.transform.iradon(sinogram.T, theta, filter_name=..., circle=True)`, on the fixtures
//! that `tests/peers/fbp_fixtures.py` writes to `tests/fixtures/fbp/` (these tests need no
//! Python), and on one detector row of the real projections `reference-data/tooth.h5`.
//!
//! Tolerance: relative RMSE `||photonqa - scikit-image|| / ||scikit-image||` over the whole
//! slice at most [`REL_TOL`] (the issue asks for 1e-2). Only the FFTs round differently
//! (rustfft against pocketfft); every later operation is the same float64 arithmetic.
//!
//! Exact checks: 0.0 outside the inscribed circle; [`theta_range`] equals NumPy's
//! `linspace(start, stop, count, endpoint=False)` bit for bit; results do not depend on the
//! thread count; errors name the bad parameter on one line.

mod common;

use common::{float_field, float_list, on_threads, repo_root, str_field};

use photonqa::analysis::fbp::{Fbp, Filter, theta_range};
use photonqa::data::exchange::{Exchange, LOG_FLOOR};
use photonqa::data::{DType, IntoNdArray, NdArray};
use serde_json::Value;

/// Largest relative RMSE against scikit-image, whole slice (the tooth slice: its subsample, centre
/// row and centre column). Largest seen: 2.7e-15 on the synthetic cases (smooth63_nonuniform,
/// ramp) and 2.1e-14 on the tooth subsample (centre row and column 1.4e-14); the 720 x 1024
/// bench slice of `benches/fbp_vs_skimage.sh` is at 5.4e-14 (not a test). The deviations grow with the detector length (longer FFTs).
const REL_TOL: f64 = 5e-14;

/// Relative tolerance (relative to the norm, or the value if larger) on the sums, norms and
/// extrema of the tooth sinogram and slice. Largest seen: 6.4e-14 (the slice's sum). NumPy
/// sums pairwise and takes norms with BLAS, photonqa adds in order.
const STATS_TOL: f64 = 2e-13;

fn expected() -> Value {
    common::expected_json("fbp", "tests/peers/fbp_fixtures.py")
}

/// A float64 `.npy` fixture as a flat C-order vector.
fn npy(rel: &str) -> Vec<f64> {
    common::load_npy(rel, DType::Float64)
        .to_f64()
        .iter()
        .copied()
        .collect()
}

/// `||a - b|| / ||b||`.
fn rel_rmse(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let diff: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let norm: f64 = b.iter().map(|y| y * y).sum();
    (diff / norm).sqrt()
}

/// True for pixel `(i, j)` of an `n x n` slice outside the inscribed circle.
fn outside(n: usize, i: usize, j: usize) -> bool {
    let (r, di, dj) = (
        (n / 2) as i64,
        i as i64 - (n / 2) as i64,
        j as i64 - (n / 2) as i64,
    );
    di * di + dj * dj > r * r
}

/// Pixels outside the circle that are not exactly 0.0.
fn nonzero_outside(image: &[f64], n: usize) -> usize {
    (0..n * n)
        .filter(|&p| outside(n, p / n, p % n) && image[p].to_bits() != 0)
        .count()
}

struct Case {
    name: String,
    detector: usize,
    theta: Vec<f64>,
    sinogram: Vec<f64>,
    reconstructions: Vec<(Filter, Vec<f64>)>,
    linspace: Option<(f64, f64, usize)>,
}

fn cases() -> Vec<Case> {
    let exp = expected();
    let cases = exp["cases"].as_array().expect("cases is a list");
    assert!(cases.len() >= 6, "too few FBP fixture cases");
    cases
        .iter()
        .map(|c| Case {
            name: str_field(c, "name").to_string(),
            detector: c["detector"].as_u64().expect("detector") as usize,
            theta: float_list(&c["theta"]),
            sinogram: npy(str_field(c, "sinogram")),
            reconstructions: c["reconstructions"]
                .as_object()
                .expect("reconstructions is an object")
                .iter()
                .map(|(f, rel)| (Filter::parse(f).unwrap(), npy(rel.as_str().unwrap())))
                .collect(),
            linspace: c.get("theta_linspace").map(|l| {
                let count = l["count"].as_u64().unwrap() as usize;
                (float_field(l, "start"), float_field(l, "stop"), count)
            }),
        })
        .collect()
}

#[test]
fn fbp_matches_scikit_image_iradon() {
    let mut failures = Vec::new();
    let (mut checked, mut worst) = (0, (0.0, String::new()));
    let mut filters_seen = Vec::new();
    for case in cases() {
        let n = case.detector;
        for (filter, expected) in &case.reconstructions {
            let label = format!("{} {}", case.name, filter.name());
            let fbp = Fbp::new(n, &case.theta, *filter).unwrap_or_else(|e| panic!("{label}: {e}"));
            let ours = fbp
                .reconstruct(&case.sinogram)
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(ours.len(), n * n, "{label}");
            let err = rel_rmse(&ours, expected);
            if err.is_nan() || err > REL_TOL {
                failures.push(format!("{label}: relative RMSE {err:e} > {REL_TOL:e}"));
            }
            if err > worst.0 {
                worst = (err, label.clone());
            }
            let stray = nonzero_outside(&ours, n);
            if stray > 0 {
                failures.push(format!(
                    "{label}: {stray} pixels outside the circle are not 0.0"
                ));
            }
            checked += 1;
            filters_seen.push(*filter);
        }
    }
    println!("largest relative RMSE: {:e} ({})", worst.0, worst.1);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 15, "only {checked} reconstructions checked");
    for f in Filter::ALL {
        assert!(filters_seen.contains(&f), "no fixture for filter {f}");
    }
}

#[test]
fn theta_range_is_numpy_linspace() {
    let mut checked = 0;
    for case in cases() {
        if let Some((start, stop, count)) = case.linspace {
            let ours = theta_range(start, stop, count);
            let same = ours.len() == case.theta.len()
                && ours
                    .iter()
                    .zip(&case.theta)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{}: {ours:?} != {:?}", case.name, case.theta);
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} linspace cases");
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let case = cases().into_iter().next().expect("a case");
    let fbp = Fbp::new(case.detector, &case.theta, Filter::Hann).unwrap();
    let run = |threads: usize| on_threads(threads, || fbp.reconstruct(&case.sinogram).unwrap());
    let one = run(1);
    for threads in [2, 3] {
        let other = run(threads);
        assert!(
            one.iter()
                .zip(&other)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{threads} threads differ from 1"
        );
    }
}

#[test]
fn any_dtype_array_is_reconstructed_as_float64() {
    let n = 21;
    let theta = theta_range(0.0, 180.0, 30);
    let values: Vec<u16> = (0..theta.len() * n)
        .map(|i| (i * 37 % 1000) as u16)
        .collect();
    let array = ndarray::ArrayD::from_shape_vec(vec![theta.len(), n], values.clone())
        .unwrap()
        .into_nd();
    let fbp = Fbp::new(n, &theta, Filter::SheppLogan).unwrap();
    let floats: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
    assert_eq!(
        fbp.reconstruct_array(&array).unwrap(),
        fbp.reconstruct(&floats).unwrap()
    );
    let wrong = NdArray::from_le_bytes(DType::Uint16, &[n, theta.len()], &vec![0; 2 * n * 30]);
    let e = fbp.reconstruct_array(&wrong.unwrap()).unwrap_err();
    assert!(e.starts_with("sinogram:") && e.contains("shape"), "{e}");
}

#[test]
fn bad_parameters_are_one_line_errors_naming_them() {
    let theta = theta_range(0.0, 180.0, 4);
    let check = |result: Result<Fbp, String>, parameter: &str| {
        let e = result.expect_err(parameter);
        assert!(
            e.starts_with(&format!("{parameter}:")) && !e.contains('\n'),
            "{e}"
        );
    };
    check(Fbp::new(0, &theta, Filter::Ramp), "detector");
    check(Fbp::new(1, &theta, Filter::Ramp), "detector");
    check(Fbp::new(8, &[], Filter::Ramp), "theta");
    check(Fbp::new(8, &[0.0, f64::NAN], Filter::Ramp), "theta");
    check(Fbp::new(8, &[f64::INFINITY], Filter::Ramp), "theta");
    check(
        Fbp::new(8, &[0.0, f64::NEG_INFINITY], Filter::Ramp),
        "theta",
    );
    for bad in ["", "Ramp", "shepp_logan", "none", "hanning"] {
        let e = Filter::parse(bad).unwrap_err();
        assert!(
            e.starts_with("filter:") && e.contains("hann") && !e.contains('\n'),
            "{e}"
        );
    }
    let fbp = Fbp::new(8, &theta, Filter::Ramp).unwrap();
    let sinogram = |len: usize, bad: Option<f64>| {
        let mut s = vec![1.0; len];
        if let (Some(v), Some(first)) = (bad, s.get_mut(5)) {
            *first = v;
        }
        fbp.reconstruct(&s)
    };
    for (result, what) in [
        (sinogram(0, None), "empty"),
        (sinogram(31, None), "31 values"),
        (sinogram(33, None), "33 values"),
        (sinogram(32, Some(f64::NAN)), "not finite"),
        (sinogram(32, Some(f64::INFINITY)), "not finite"),
    ] {
        let e = result.unwrap_err();
        assert!(
            e.starts_with("sinogram:") && e.contains(what) && !e.contains('\n'),
            "{e}"
        );
    }
}

/// Sum, norm, minimum and maximum of `values` against the peer's, relative to its norm.
fn check_stats(label: &str, values: &[f64], expected: &Value, failures: &mut Vec<String>) {
    let sum: f64 = values.iter().sum();
    let norm = values.iter().map(|v| v * v).sum::<f64>().sqrt();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let scale = float_field(expected, "norm");
    for (key, ours) in [("sum", sum), ("norm", norm), ("min", min), ("max", max)] {
        let peer = float_field(expected, key);
        // Sums and extrema relative to the norm: a signed sum can be near 0.
        if (ours - peer).abs() > STATS_TOL * scale.max(peer.abs()) {
            failures.push(format!("{label} {key}: photonqa {ours:?}, NumPy {peer:?}"));
        }
    }
}

#[test]
fn tooth_slice_matches_scikit_image_iradon() {
    let exp = expected();
    let tooth = &exp["tooth"];
    let path = repo_root().join(str_field(tooth, "file"));
    let row = tooth["row"].as_u64().unwrap() as usize;
    assert_eq!(float_field(tooth, "floor"), LOG_FLOOR);
    let exchange = Exchange::open(&path).unwrap();
    let [angles, _, n] = exchange.shape;
    let sinogram = exchange.sinogram(row).unwrap();
    let theta = exchange.theta().unwrap();
    assert_eq!(theta.len(), angles);
    let mut failures = Vec::new();
    check_stats(
        "sinogram",
        &sinogram,
        &tooth["sinogram_stats"],
        &mut failures,
    );

    let filter = Filter::parse(str_field(tooth, "filter")).unwrap();
    let image = Fbp::new(n, &theta, filter)
        .and_then(|fbp| fbp.reconstruct(&sinogram))
        .unwrap_or_else(|e| panic!("tooth: {e}"));
    assert_eq!(
        [n, n],
        [
            tooth["shape"][0].as_u64().unwrap() as usize,
            tooth["shape"][1].as_u64().unwrap() as usize
        ]
    );
    check_stats("slice", &image, &tooth["stats"], &mut failures);
    let stray = nonzero_outside(&image, n);
    if stray > 0 {
        failures.push(format!("{stray} pixels outside the circle are not 0.0"));
    }
    let step = tooth["step"].as_u64().unwrap() as usize;
    let every: Vec<f64> = (0..n)
        .step_by(step)
        .flat_map(|i| (0..n).step_by(step).map(move |j| (i, j)))
        .map(|(i, j)| image[i * n + j])
        .collect();
    let centre_row = image[(n / 2) * n..(n / 2 + 1) * n].to_vec();
    let centre_column: Vec<f64> = (0..n).map(|i| image[i * n + n / 2]).collect();
    for (key, ours) in [
        ("every8", every),
        ("centre_row", centre_row),
        ("centre_column", centre_column),
    ] {
        let err = rel_rmse(&ours, &npy(str_field(tooth, key)));
        println!("tooth {key}: relative RMSE {err:e}");
        if err.is_nan() || err > REL_TOL {
            failures.push(format!("tooth {key}: relative RMSE {err:e} > {REL_TOL:e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The command line reads the same file the same way and writes the same slice.
    let dir = tempfile::tempdir().unwrap();
    let file = path.display().to_string();
    let filter = str_field(tooth, "filter");
    let written = reconstruct_command(
        dir.path(),
        &[&file, "--row", &row.to_string(), "--filter", filter],
    );
    assert_eq!(
        written.as_slice().unwrap(),
        image.as_slice(),
        "photonqa reconstruct --row"
    );
}

/// Runs `photonqa reconstruct ARGS --out DIR/slice.npy --force` (replacing the slice of the
/// previous call), which must succeed, and reads the slice.
fn reconstruct_command(dir: &std::path::Path, args: &[&str]) -> ndarray::ArrayD<f64> {
    let out = dir.join("slice.npy");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_photonqa"))
        .arg("reconstruct")
        .args(args)
        .args(["--out", &out.display().to_string(), "--force"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    ndarray_npy::read_npy(&out).unwrap()
}

/// `photonqa reconstruct` writes what `iradon` gives, with the default angles (count equal
/// steps over [0, 180)) and with `--theta-deg`; a sinogram of another rank or a wrong angle
/// count is a one-line error.
#[test]
fn reconstruct_command_writes_iradon_slices() {
    let exp = expected();
    let case = exp["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| str_field(c, "name") == "shepp64_180")
        .expect("the shepp64_180 case");
    let dir = tempfile::tempdir().unwrap();
    let sinogram = repo_root()
        .join(str_field(case, "sinogram"))
        .display()
        .to_string();
    for (filter, theta) in [("ramp", None), ("hann", Some("0:180:180"))] {
        let mut args = vec![sinogram.as_str(), "--filter", filter];
        if let Some(t) = theta {
            args.extend(["--theta-deg", t]);
        }
        let written = reconstruct_command(dir.path(), &args);
        assert_eq!(written.shape(), &[64, 64]);
        let expected = npy(case["reconstructions"][filter].as_str().unwrap());
        let err = rel_rmse(written.as_slice().unwrap(), &expected);
        assert!(err <= REL_TOL, "{filter}: relative RMSE {err:e}");
    }
    for (args, needle) in [
        (
            vec!["--theta-deg", "0:180:90"],
            "90 angles, but the sinogram has 180",
        ),
        (vec!["--theta-deg", "0:x:180"], "start:stop:count"),
        (vec!["--filter", "gauss"], "gauss"),
    ] {
        let out = dir.path().join("bad.npy").display().to_string();
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_photonqa"))
            .args(["reconstruct", &sinogram, "--out", &out])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(needle) && stderr.lines().count() == 1,
            "{stderr}"
        );
    }
    // --row reads a DataExchange file: another HDF5 layout is a one-line error naming it.
    let porous = common::repo_root()
        .join("reference-data/porous-tomo.h5")
        .display()
        .to_string();
    let out = dir.path().join("bad.npy").display().to_string();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_photonqa"))
        .args(["reconstruct", &porous, "--row", "0", "--out", &out])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("porous-tomo.h5") && stderr.contains("/exchange/data"),
        "{stderr}"
    );
}
