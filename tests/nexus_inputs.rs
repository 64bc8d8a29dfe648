//! An HDF5 file named without a dataset path (`source = "scan.nxs"`) means its NeXus default
//! signal (`src/data/nexus.rs`): root `default` -> NXentry `default` -> NXdata `signal`, with
//! the only NXentry / NXdata of a level standing in for a missing `default`, else the only
//! dataset of rank 2-3. The files are written by h5py (`tests/peers/nexus_files.py`) and the
//! arrays photonqa reads equal h5py's exactly; a file with no default and several candidates
//! is a one-line error listing them.
//!
//! Needs python3 with numpy and h5py (`bash .ci/setup --python`); without them the test says
//! so and skips, unless PHOTONQA_REQUIRE_PEERS=1 (set in CI).

mod common;

use std::path::Path;

use common::{
    assert_ok, assert_one_line_error, parse_exact, peer_script_cases, photonqa, repo_root, text,
};
use serde_json::Value;

/// `photonqa validate` of a scenario on `source`, written in `dir`.
fn validate(dir: &Path, source: &str) -> std::process::Output {
    let scenario = format!(
        "[scenario]\nname = \"nexus\"\n[input]\nsource = \"{source}\"\n\
         [[pipeline]]\nstage = \"zstd\"\nlevel = 1\n"
    );
    std::fs::write(dir.join("s.toml"), scenario).unwrap();
    photonqa(dir, &["validate", "s.toml"])
}

#[test]
fn a_file_without_a_dataset_path_reads_its_default_signal() {
    if !common::python_peers("import numpy, h5py", "h5py") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    peer_script_cases("nexus_files.py", dir);
    let cases = [
        (
            "scan.nxs",
            "scan.nxs::/entry/data/counts",
            "counts.npy",
            "uint32 [4, 6, 5]",
        ),
        (
            "classes.nxs",
            "classes.nxs::/scan_1/measurement/frames",
            "frames.npy",
            "float32 [3, 7, 4]",
        ),
        (
            "single.h5",
            "single.h5::/volume",
            "volume.npy",
            "int16 [5, 3, 4]",
        ),
    ];
    for (file, label, peer, layout) in cases {
        let out = validate(dir, file);
        assert_ok(&out, file);
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains(&format!("on {label} ({layout})")),
            "{file}: {stdout}"
        );
        // The array itself: exactly h5py's.
        let metrics = photonqa(dir, &["metrics", file, peer, "--json"]);
        assert_ok(&metrics, file);
        let json: Value = serde_json::from_str(&text(&metrics.stdout)).unwrap();
        let error = &json["max_abs_error"];
        let error = error
            .as_str()
            .map_or_else(|| error.as_f64().unwrap(), parse_exact);
        assert_eq!(error, 0.0, "{file}: {json}");
    }
}

#[test]
fn a_file_without_a_default_and_several_candidates_is_a_one_line_error() {
    if !common::python_peers("import numpy, h5py", "h5py") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    peer_script_cases("nexus_files.py", dir);
    assert_one_line_error(
        &validate(dir, "many.h5"),
        &[
            "many.h5: no NeXus default signal",
            "2 candidate datasets (/a/first, /b/second)",
            "::/path",
        ],
        "many.h5",
    );
    assert_one_line_error(
        &validate(dir, "broken.nxs"),
        &[
            "broken.nxs",
            "`default` attribute of / names /entry, which does not exist",
        ],
        "broken.nxs",
    );
    // The real DataExchange file: projections, darks and flats, no NeXus default.
    let tooth = repo_root().join("reference-data/tooth.h5");
    assert_one_line_error(
        &validate(dir, tooth.to_str().unwrap()),
        &[
            "tooth.h5: no NeXus default signal",
            "3 candidate datasets (/exchange/data, /exchange/data_dark, /exchange/data_white)",
        ],
        "tooth.h5",
    );
}
