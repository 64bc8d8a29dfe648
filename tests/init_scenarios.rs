//! `photonqa init` on every reference file: the scenario it writes names the data relative to
//! itself, guesses the technique from the values, and runs: every working point measured
//! without error, the lossless base exact.

mod common;

use std::path::Path;

use common::{assert_ok, photonqa, repo_root};
use serde_json::Value;

/// Runs `init` on `input` (relative to the repository) with `extra` arguments into a fresh
/// folder, checks the technique it chose and the source it wrote, then runs the scenario and
/// checks its rows.
fn init_then_run(input: &str, extra: &[&str], technique: &str) {
    init_then_run_on(&repo_root().join(input).to_string_lossy(), extra, technique);
}

/// [`init_then_run`] on `data`, an absolute path.
fn init_then_run_on(data: &str, extra: &[&str], technique: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["init", data, "--out", "scenarios/mine.toml"];
    args.extend(extra);
    let init = photonqa(dir.path(), &args);
    assert_ok(&init, "init");
    let said = String::from_utf8_lossy(&init.stdout).into_owned();
    assert!(
        said.starts_with(&format!("scenarios/mine.toml: {technique} scenario, ")),
        "{said}"
    );
    let points: usize = said
        .split(" working points")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no point count in {said}"));
    let toml = std::fs::read_to_string(dir.path().join("scenarios/mine.toml")).unwrap();
    // The source, relative to the scenario's folder or absolute, names the data.
    let source = toml
        .lines()
        .find_map(|l| l.strip_prefix("source = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no source in {toml}"));
    let named = dir.path().join("scenarios").join(source);
    let resolved: std::path::PathBuf = named.components().fold(Default::default(), |mut p, c| {
        match c {
            std::path::Component::ParentDir => {
                p.pop();
            }
            c => p.push(c),
        }
        p
    });
    assert_eq!(resolved, Path::new(data), "{toml}");

    let run = photonqa(dir.path(), &["run", "scenarios/mine.toml", "--out", "out"]);
    assert_ok(&run, "run");
    let text = std::fs::read_to_string(dir.path().join("out/results.jsonl")).unwrap();
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), points, "{data}");
    for row in &rows {
        assert_eq!(row["status"], "ok", "{data}: {row}");
        assert!(row["rate"]["ratio"].as_f64().unwrap() > 0.0, "{row}");
    }
    let lossless = rows
        .iter()
        .find(|r| r["params"]["variant"] == "lossless")
        .expect("a lossless variant");
    assert_eq!(lossless["distortion"]["max_abs_error"], 0.0, "{data}");
    assert!(lossless["rate"]["ratio"].as_f64().unwrap() > 1.0, "{data}");
}

#[test]
fn tomography_projections_get_a_tomography_scenario() {
    init_then_run("reference-data/tooth.h5::/exchange/data", &[], "tomo");
}

#[test]
fn a_porous_volume_gets_a_tomography_scenario() {
    init_then_run("reference-data/porous-tomo.h5::/volume", &[], "tomo");
}

#[test]
fn a_counting_saxs_pattern_gets_a_saxs_scenario() {
    init_then_run("reference-data/saxs-spheres.h5::/data", &[], "saxs");
}

#[test]
fn a_reduced_saxs_intensity_with_negative_values_is_generic() {
    init_then_run(
        "reference-data/BAM_2D.h5::/sasentry01/data/I",
        &[],
        "generic",
    );
}

#[test]
fn counting_series_take_the_technique_they_are_told() {
    init_then_run("reference-data/xpcs-speckle.h5::/frames", &[], "generic");
    init_then_run(
        "reference-data/xpcs-speckle.h5::/frames",
        &["--technique", "xpcs"],
        "xpcs",
    );
    init_then_run(
        "reference-data/sx-frames.h5::/frames",
        &["--technique", "sx"],
        "sx",
    );
}

/// The source is relative to the scenario when both share more than the root; an existing
/// scenario is kept unless `--force`; an unknown technique is a one-line error.
#[test]
fn sources_are_relative_to_the_scenario_and_files_are_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("data/v.npy");
    std::fs::create_dir_all(volume.parent().unwrap()).unwrap();
    let values = ndarray::ArrayD::from_shape_fn(&[8, 9, 10][..], |ix| {
        (ix[0] * 90 + ix[1] * 10 + ix[2]) as f32 * 0.5
    });
    photonqa::data::npy::write_npy(&volume, &photonqa::data::NdArray::Float32(values)).unwrap();
    let init = |extra: &[&str]| {
        let mut args = vec!["init", "data/v.npy", "--out", "s/deep/x.toml"];
        args.extend(extra);
        photonqa(dir.path(), &args)
    };
    assert_ok(&init(&[]), "init");
    let toml = std::fs::read_to_string(dir.path().join("s/deep/x.toml")).unwrap();
    assert!(toml.contains("source = \"../../data/v.npy\""), "{toml}");
    assert!(toml.contains("[scenario]\nname = \"x\""), "{toml}");
    let again = init(&[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--force replaces it"),
        "{again:?}"
    );
    assert_ok(&init(&["--force"]), "init --force");
    let unknown = init(&["--force", "--technique", "cryo"]);
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(2));
    assert_eq!(
        stderr.trim_end(),
        "photonqa: --technique cryo: unknown (one of tomo, saxs, xpcs, sx, generic)"
    );
    assert!(Path::new(&dir.path().join("s/deep/x.toml")).exists());
}

/// A TIFF stack written by tifffile (one float32 image per file) and Zarr v2 and v3 stores
/// written by zarr-python (uint16 counts): `init` reads each, and its scenario runs.
#[test]
fn tiff_stacks_and_zarr_stores_get_scenarios_that_run() {
    if !common::python_peers("import numpy, tifffile, zarr", "tifffile and zarr") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import sys, numpy as np, tifffile, zarr
out = sys.argv[1]
rng = np.random.default_rng(17)
z, y, x = np.mgrid[0:12, 0:32, 0:32]
volume = (np.sin(z / 3.0) + np.cos(y / 5.0) * np.sin(x / 4.0)).astype(np.float32)
volume += rng.normal(0, 0.05, volume.shape).astype(np.float32)
for i, image in enumerate(volume):
    tifffile.imwrite(f"{out}/scan/img_{i:04d}.tif", image)
counts = rng.poisson(20.0, (16, 32, 32)).astype(np.uint16)
for version in (2, 3):
    a = zarr.create_array(f"{out}/counts-v{version}.zarr", shape=counts.shape, chunks=(4, 32, 32),
                          dtype="uint16", zarr_format=version)
    a[:] = counts
"#;
    std::fs::create_dir_all(dir.path().join("scan")).unwrap();
    let written = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(written.status.success(), "{written:?}");
    let at = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    init_then_run_on(&at("scan/*.tif"), &[], "tomo");
    init_then_run_on(&at("counts-v2.zarr"), &[], "generic");
    init_then_run_on(&at("counts-v3.zarr"), &[], "generic");
}
