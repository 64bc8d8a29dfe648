//! TIFF inputs (`src/data/tiff.rs`) read exactly the arrays tifffile reads from the same files:
//! `tests/peers/tiff_stacks.py` writes stacks with tifffile (uint8, uint16, int16, uint32,
//! int32, float32; uncompressed, LZW, deflate, with and without predictors; strips and tiles;
//! a folder of one-image files and multi-page files) and saves what `tifffile.imread` reads
//! back as `.npy`. photonqa must give the same dtype, shape and bytes, read whole and slab by
//! slab, through a scenario's `[input] source` (resolved relative to the scenario like every
//! input) and through `photonqa metrics` and `photonqa run`. Inputs it cannot read are one-line
//! errors naming the file.
//!
//! Needs python3 with numpy, tifffile and imagecodecs (tifffile's LZW encoder) (`bash .ci/setup
//! --python`); without them the test says so and skips, unless PHOTONQA_REQUIRE_PEERS=1 (set
//! in CI).

mod common;

use common::{
    assert_ok, assert_one_line_error, lossless_scenario, parse_exact, peer_script_cases, photonqa,
    text,
};
use photonqa::data::{NdArray, SourceSpec};
use serde_json::Value;

/// Whether tifffile (and imagecodecs, its LZW encoder) are here to write the stacks.
fn tiff_peers() -> bool {
    common::python_peers(
        "import numpy, tifffile, imagecodecs",
        "tifffile and imagecodecs",
    )
}

fn read_all(spec: &SourceSpec) -> NdArray {
    let source = spec.open().unwrap_or_else(|e| panic!("{e}"));
    source.read_slab(0..source.shape()[0]).unwrap()
}

#[test]
fn tiff_stacks_equal_what_tifffile_reads() {
    if !tiff_peers() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cases = peer_script_cases("tiff_stacks.py", dir.path());
    assert_eq!(cases.len(), 14, "cases written");
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let folder = dir.path().join(name);
        let written = case["source"].as_str().unwrap();
        let peer = read_all(&SourceSpec::Npy(folder.join("tifffile.npy")));

        // As a scenario resolves it: relative to the scenario's folder.
        let spec = SourceSpec::parse_input(written, &folder, None).unwrap();
        let source = spec.open().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(source.dtype(), peer.dtype(), "{name}: dtype");
        assert_eq!(source.shape(), peer.shape(), "{name}: shape");
        let whole = source.read_slab(0..source.shape()[0]).unwrap();
        assert!(
            whole.to_le_bytes() == peer.to_le_bytes(),
            "{name}: photonqa's array differs from tifffile's"
        );
        // Slab by slab, two pages at a time (so slabs straddle the files of a folder), from
        // the end first: a decoder reused after a later page must seek back.
        let pages = source.shape()[0];
        let mut slabs: Vec<NdArray> = (0..pages)
            .step_by(2)
            .rev()
            .map(|start| source.read_slab(start..(start + 2).min(pages)).unwrap())
            .collect();
        slabs.reverse();
        let stacked = NdArray::concatenate(&slabs).unwrap();
        assert!(
            stacked.to_le_bytes() == peer.to_le_bytes(),
            "{name}: slab-by-slab reading differs from tifffile's"
        );

        // The scenario from another working directory: `photonqa validate` reports the stack.
        std::fs::write(folder.join("s.toml"), lossless_scenario("tiff", written)).unwrap();
        let validate = photonqa(dir.path(), &["validate", &format!("{name}/s.toml")]);
        assert_ok(&validate, name);
        let shape = format!("{:?}", peer.shape());
        assert!(
            text(&validate.stdout).contains(&shape),
            "{name}: {}",
            text(&validate.stdout)
        );
    }
}

#[test]
fn a_tiff_input_runs_and_compares_through_the_cli() {
    if !tiff_peers() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    peer_script_cases("tiff_stacks.py", dir.path());
    // `photonqa metrics` on a multi-page file against tifffile's array: no difference at all.
    let folder = dir.path().join("f32_deflate_multipage");
    let metrics = photonqa(&folder, &["metrics", "stack.tif", "tifffile.npy", "--json"]);
    assert_ok(&metrics, "metrics");
    let json: Value = serde_json::from_str(&text(&metrics.stdout)).unwrap();
    let error = &json["max_abs_error"];
    let error = error
        .as_str()
        .map_or_else(|| error.as_f64().unwrap(), parse_exact);
    assert_eq!(error, 0.0, "{json}");
    assert_eq!(json["count"].as_u64(), Some(7 * 13 * 6), "{json}");

    // A run on a folder of LZW images in 2-slice chunks: lossless zstd, so no error, and the
    // rate counts every value of the stack (4 x 12 x 10 uint16).
    let folder = dir.path().join("u16_lzw_files");
    let row = common::run_first_row(
        &folder,
        "run",
        &lossless_scenario("tiff", "scan/*.tif"),
        "2",
    );
    assert_eq!(
        row["distortion"]["max_abs_error"].as_f64(),
        Some(0.0),
        "{row}"
    );
    assert_eq!(row["rate"]["original_bytes"].as_u64(), Some(960), "{row}");
    assert_eq!(row["provenance"]["input"], "scan/*.tif (4 files)", "{row}");
}

#[test]
fn unreadable_tiff_inputs_are_one_line_errors_naming_the_file() {
    if !tiff_peers() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    peer_script_cases("tiff_stacks.py", dir.path());
    let errors = dir.path().join("errors");
    let cases: [(&str, &[&str]); 7] = [
        (
            "shapes/*.tif",
            &[
                "img_0001.tif",
                "[1, 8, 9]",
                "does not stack on shape [1, 8, 8]",
            ],
        ),
        (
            "dtypes/*.tif",
            &[
                "img_0001.tif",
                "dtype float32 does not stack on dtype uint16",
            ],
        ),
        (
            "pages.tif",
            &["pages.tif", "page 2 is 8x7 uint8 but page 0 is 8x8 uint8"],
        ),
        ("rgb.tif", &["rgb.tif", "page 0", "RGB", "single-channel"]),
        (
            "half.tif",
            &["half.tif", "unsupported sample format: 16-bit float"],
        ),
        ("miniswhite.tif", &["miniswhite.tif", "WhiteIsZero"]),
        (
            "none_*.tif",
            &["none_*.tif", "no file matches this pattern"],
        ),
    ];
    for (source, needles) in cases {
        std::fs::write(errors.join("s.toml"), lossless_scenario("tiff", source)).unwrap();
        let out = photonqa(&errors, &["validate", "s.toml"]);
        assert_one_line_error(&out, needles, source);
    }
}
