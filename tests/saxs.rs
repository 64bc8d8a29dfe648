//! The `saxs` analysis through `photonqa run`, against the NumPy peer
//! (`tests/peers/saxs_fixtures.py`, fixtures in `tests/fixtures/saxs/`): I(q) per bin on the
//! real BAM_2D.h5 pattern (lossless and bit-rounded, Idev and Poisson uncertainties, linear
//! and logarithmic bins) and on the generated spheres (lossless and through the `poisson`
//! stage); the spheres' known Rg; chunked runs equal whole ones; bad parameters are one-line
//! errors naming the parameter.
//!
//! Tolerance: 1e-9 relative per value (the bound for I(q)). Sums differ from NumPy's
//! only by their order (photonqa adds per-row sums), a few ULPs; bin edges and pixel counts
//! are exact.

mod common;

use std::path::Path;

use common::{Failures, assert_ok, expected_json, photonqa, repo_root, sorted_rows, text};
use serde_json::Value;

const SCRIPT: &str = "tests/peers/saxs_fixtures.py";
const REL: f64 = 1e-9;

fn case<'a>(expected: &'a Value, name: &str) -> &'a Value {
    expected["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no fixture case {name}; run python3 {SCRIPT}"))
}

fn peer_float(v: &Value) -> Option<f64> {
    v.as_str().map(common::parse_exact)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= REL * a.abs().max(b.abs())
}

/// Compares photonqa's `saxs` results `got` with the peer's case `want`.
fn compare(failures: &mut Failures, want: &Value, got: &Value) {
    let name = want["name"].as_str().unwrap();
    let edges: Vec<f64> = got["q_edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let want_edges: Vec<f64> = want["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| peer_float(v).unwrap())
        .collect();
    // Linear edges are the same float64 operations; log edges go through pow, whose last bit
    // may differ between libm and NumPy.
    let exact = want["q_scale"] != "log";
    let same = edges.len() == want_edges.len()
        && edges.iter().zip(&want_edges).all(|(a, b)| {
            if exact {
                a == b
            } else {
                (a - b).abs() <= 1e-14 * a.abs()
            }
        });
    failures.check(same, || format!("{name}: bin edges differ"));
    failures.check(got["pixels"] == want["pixels"], || {
        format!("{name}: pixels per bin differ")
    });
    failures.check(got["empty_bins"] == want["empty_bins"], || {
        format!("{name}: empty bins")
    });
    for key in ["q", "i_original", "i_decoded", "sigma_original"] {
        // photonqa lists every bin (null when empty), the peer the non-empty ones.
        let ours: Vec<f64> = got[key]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        let theirs: Vec<f64> = want[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| peer_float(v).unwrap())
            .collect();
        failures.check(ours.len() == theirs.len(), || {
            format!(
                "{name}: {key} has {} bins, peer {}",
                ours.len(),
                theirs.len()
            )
        });
        for (b, (x, y)) in ours.iter().zip(&theirs).enumerate() {
            failures.check(close(*x, *y), || {
                format!("{name}: {key}[{b}] = {x}, peer {y}")
            });
        }
    }
    for key in [
        "rel_error_max",
        "rel_error_mean",
        "chi2_reduced",
        "guinier_q_start",
        "porod_invariant_original",
        "porod_invariant_decoded",
        "porod_rel_change",
        "rg_original",
        "rg_decoded",
        "i0_original",
        "i0_decoded",
    ] {
        match (got[key].as_f64(), peer_float(&want[key])) {
            (Some(x), Some(y)) => {
                failures.check(close(x, y), || format!("{name}: {key} = {x}, peer {y}"))
            }
            (None, None) => failures.check(got[key].is_null(), || {
                format!("{name}: {key} = {}, peer none", got[key])
            }),
            (x, y) => failures.check(false, || format!("{name}: {key} = {x:?}, peer {y:?}")),
        }
    }
    for key in ["guinier_points_original", "guinier_points_decoded"] {
        failures.check(got[key] == want[key], || {
            format!("{name}: {key} = {}, peer {}", got[key], want[key])
        });
    }
}

/// Runs `scenario` (written to `dir/<name>.toml`) and returns its rows in sweep order.
fn run(dir: &Path, name: &str, scenario: &str) -> Vec<Value> {
    std::fs::write(dir.join(format!("{name}.toml")), scenario).unwrap();
    let out = photonqa(
        dir,
        &[
            "run",
            &format!("{name}.toml"),
            "--out",
            name,
            "--threads",
            "2",
        ],
    );
    assert_ok(&out, &format!("photonqa run {name}"));
    sorted_rows(&dir.join(name))
}

fn spheres() -> String {
    repo_root()
        .join("reference-data/saxs-spheres.h5")
        .display()
        .to_string()
}

/// The generator's geometry and mask as `[[analysis]]` keys.
fn spheres_analysis() -> String {
    format!(
        "[[analysis]]\nkind = \"saxs\"\nbeam_x = 127.5\nbeam_y = 127.5\npixel_size = 172e-6\n\
         distance = 2.0\nwavelength = 1e-10\nmask = \"{}::/mask\"\n",
        spheres()
    )
}

fn spheres_scenario(chunk_slices: usize, pipeline: &str) -> String {
    format!(
        "[scenario]\nname = \"saxs\"\nchunk_slices = {chunk_slices}\n[input]\nsource = \"{}::/data\"\n\
         {pipeline}\n[metrics]\ndistortion = [\"mse\"]\n{}",
        spheres(),
        spheres_analysis()
    )
}

const POISSON_1: &str =
    "[[pipeline]]\nstage = \"poisson\"\nstep = 1.0\n[[pipeline]]\nstage = \"zstd\"";

#[test]
fn bam_2d_integration_equals_numpy_lossless_and_bit_rounded() {
    let bam = repo_root().join("reference-data/BAM_2D.h5");
    let bam = bam.display();
    let expected = expected_json("saxs", SCRIPT);
    let dir = tempfile::tempdir().unwrap();
    // keepbits = 52 keeps every bit of float64: the lossless point.
    let scenario = format!(
        "[scenario]\nname = \"bam\"\nchunk_slices = 100\n[input]\nsource = \"{bam}::/sasentry01/data/I\"\n\
         [[pipeline]]\nstage = \"bitround\"\nkeepbits = {{ sweep = [52, 8] }}\n[[pipeline]]\nstage = \"zstd\"\n\
         [metrics]\ndistortion = [\"mse\"]\n\
         [[analysis]]\nkind = \"saxs\"\nq_map = \"{bam}::/sasentry01/data/Q\"\nmask = \"{bam}::/sasentry01/data/Imask\"\n\
         idev = \"{bam}::/sasentry01/data/Idev\"\n\
         [[analysis]]\nkind = \"saxs\"\nq_map = \"{bam}::/sasentry01/data/Q\"\nmask = \"{bam}::/sasentry01/data/Imask\"\n\
         q_bins = 60\nq_scale = \"log\"\n"
    );
    let rows = run(dir.path(), "bam", &scenario);
    let mut failures = Failures::default();
    compare(
        &mut failures,
        case(&expected, "bam_lossless_idev"),
        &rows[0]["science"]["1:saxs"],
    );
    compare(
        &mut failures,
        case(&expected, "bam_bitround8_idev"),
        &rows[1]["science"]["1:saxs"],
    );
    compare(
        &mut failures,
        case(&expected, "bam_bitround8_poisson_log"),
        &rows[1]["science"]["2:saxs"],
    );
    failures.finish("BAM_2D I(q)");
    let lossless = &rows[0]["science"]["1:saxs"];
    assert_eq!(lossless["chi2_reduced"], 0.0);
    assert_eq!(lossless["q_unit"], "as q_map");
    // The linear bins' Guinier range holds too few points on this steep curve: reported, not NaN.
    assert!(lossless["rg_rel_change"].is_null());
    assert!(
        lossless["guinier_original"]
            .as_str()
            .unwrap()
            .contains("3 needed")
    );
}

#[test]
fn spheres_integration_equals_numpy_and_recovers_rg() {
    let expected = expected_json("saxs", SCRIPT);
    let dir = tempfile::tempdir().unwrap();
    let lossless = run(
        dir.path(),
        "lossless",
        &spheres_scenario(
            256,
            "[[pipeline]]\nstage = \"bitshuffle\"\n[[pipeline]]\nstage = \"zstd\"",
        ),
    );
    let poisson = run(dir.path(), "poisson", &spheres_scenario(256, POISSON_1));
    let mut failures = Failures::default();
    let want = case(&expected, "spheres_lossless");
    compare(&mut failures, want, &lossless[0]["science"]["saxs"]);
    compare(
        &mut failures,
        case(&expected, "spheres_poisson1"),
        &poisson[0]["science"]["saxs"],
    );
    failures.finish("spheres I(q)");

    // Rg = sqrt(3/5) R of the generated 5 nm spheres within 2 % (the Guinier approximation
    // itself overestimates a sphere's Rg by about 2 % at q Rg <= 1.3).
    let truth = peer_float(&want["rg_true"]).unwrap();
    assert!((truth - 3.872_983_346_207_417).abs() < 1e-12);
    let saxs = &lossless[0]["science"]["saxs"];
    let rg = saxs["rg_original"].as_f64().unwrap();
    assert!((rg / truth - 1.0).abs() <= 0.02, "Rg {rg} vs truth {truth}");
    assert_eq!(saxs["guinier_converged_original"], true);
    assert_eq!(saxs["q_unit"], "1/nm");
    // The Anscombe step of one sigma leaves I(q) well inside its noise.
    let chi2 = poisson[0]["science"]["saxs"]["chi2_reduced"]
        .as_f64()
        .unwrap();
    assert!(chi2 > 0.0 && chi2 < 0.5, "chi2 {chi2}");
}

#[test]
fn chunked_runs_equal_the_whole_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let whole = run(dir.path(), "whole", &spheres_scenario(256, POISSON_1));
    let chunked = run(dir.path(), "chunked", &spheres_scenario(7, POISSON_1));
    assert_eq!(
        chunked[0]["science"], whole[0]["science"],
        "7-row chunks vs the whole 256-row pattern"
    );
}

/// Runs the spheres scenario with `analysis` keys and returns its one-line error.
fn error_of(dir: &Path, name: &str, analysis: &str) -> String {
    let scenario = format!(
        "[scenario]\nname = \"bad\"\n[input]\nsource = \"{}::/data\"\n[[pipeline]]\nstage = \"zstd\"\n\
         [metrics]\ndistortion = [\"mse\"]\n[[analysis]]\nkind = \"saxs\"\n{analysis}",
        spheres()
    );
    std::fs::write(dir.join(format!("{name}.toml")), scenario).unwrap();
    let out = photonqa(dir, &["run", &format!("{name}.toml"), "--out", name]);
    assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{name}: not one line:\n{stderr}"
    );
    stderr
}

#[test]
fn bad_geometry_mask_shape_and_empty_rings_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let geometry = |beam_x: &str, distance: &str, wavelength: &str| {
        format!(
            "beam_x = {beam_x}\nbeam_y = 127.5\npixel_size = 172e-6\ndistance = {distance}\nwavelength = {wavelength}\n"
        )
    };
    let good = geometry("127.5", "2.0", "1e-10");
    let small = dir.path().join("small.npy");
    ndarray_npy::write_npy(&small, &ndarray::Array2::<u8>::zeros((10, 12))).unwrap();
    let cases = [
        (
            "beam",
            geometry("2000", "2.0", "1e-10"),
            "beam_x = 2000 is outside the detector (-0.5..255.5 pixels)",
        ),
        (
            "distance",
            geometry("127.5", "0", "1e-10"),
            "distance = 0 must be > 0",
        ),
        (
            "wavelength",
            geometry("127.5", "2.0", "-1e-10"),
            "wavelength = -0.0000000001 must be > 0",
        ),
        (
            "missing",
            "beam_x = 1.0\n".into(),
            "needs q_map or the geometry: beam_y, pixel_size, distance, wavelength missing",
        ),
        (
            "mask",
            format!("{good}mask = \"{}\"\n", small.display()),
            "mask shape [10, 12] differs from the detector's [256, 256]",
        ),
        (
            "qmap",
            format!("q_map = \"{}\"\n", small.display()),
            "q_map shape [10, 12] differs from the detector's [256, 256]",
        ),
        (
            "rings",
            format!("{good}q_min = 50.0\nq_max = 60.0\n"),
            "every q bin is empty: no unmasked pixel has q in [q_min, q_max] = [50, 60]",
        ),
        (
            "range",
            format!("{good}q_min = 0.5\nq_max = 0.1\n"),
            "q_min = 0.5 is not below q_max = 0.1",
        ),
    ];
    let mut failures = Failures::default();
    for (name, analysis, message) in cases {
        let stderr = error_of(dir.path(), name, &analysis);
        failures.check(stderr.contains(message) && stderr.contains("saxs"), || {
            format!("{name}: expected '{message}' in: {stderr}")
        });
    }
    failures.finish("saxs errors");
}

#[test]
fn the_committed_pattern_is_what_its_recorded_command_makes() {
    let dir = tempfile::tempdir().unwrap();
    let read = |path: &Path, dataset: &str| {
        let spec = format!("{}::{dataset}", path.display());
        let source = photonqa::data::SourceSpec::parse(&spec, Path::new(""), None)
            .unwrap()
            .open()
            .unwrap();
        source.read_slab(0..source.shape()[0]).unwrap()
    };
    let committed = repo_root().join("reference-data/saxs-spheres.h5");
    let provenance: Value = {
        let file = hdf5::File::open(&committed).unwrap();
        let attr: hdf5::types::VarLenUnicode = file
            .dataset("data")
            .unwrap()
            .attr("photonqa")
            .unwrap()
            .read_scalar()
            .unwrap();
        serde_json::from_str(attr.as_str()).unwrap()
    };
    let command = provenance["command"].as_str().unwrap();
    assert_eq!(
        command,
        "photonqa gen saxs --out reference-data/saxs-spheres.h5"
    );
    std::fs::create_dir(dir.path().join("reference-data")).unwrap();
    let args: Vec<&str> = command.split(' ').skip(1).collect();
    assert_ok(&photonqa(dir.path(), &args), "photonqa gen saxs");
    let made = dir.path().join("reference-data/saxs-spheres.h5");
    for dataset in ["/data", "/mask"] {
        assert!(
            read(&made, dataset) == read(&committed, dataset),
            "{dataset} differs"
        );
    }
}
