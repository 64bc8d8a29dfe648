//! Zarr inputs (`src/data/zarr.rs`) read exactly the arrays zarr-python reads from the same
//! stores: `tests/peers/zarr_stores.py` writes Zarr v2 and v3 arrays with zarr-python 3
//! (8-64-bit integers, float32/64; its default zstd compression, none, gzip, v3 sharding; at the
//! root and in groups; 2-D and 3-D; partial edge chunks) and saves what it reads back as `.npy`.
//! photonqa must give the same dtype, shape and bytes, whole and slab by slab (slabs that cut
//! chunks), through a scenario's `[input] source` and `photonqa run`. Stores it cannot read are
//! one-line errors naming the store and the cause.
//!
//! Needs python3 with numpy and zarr (`bash .ci/setup --python`); without them the test says so
//! and skips, unless PHOTONQA_REQUIRE_PEERS=1 (set in CI).

mod common;

use common::{
    assert_ok, assert_one_line_error, lossless_scenario, peer_script_cases, photonqa, text,
};
use photonqa::data::{NdArray, SourceSpec};

#[test]
fn zarr_arrays_equal_what_zarr_python_reads() {
    if !common::python_peers(
        "import numpy, zarr; assert int(zarr.__version__.split('.')[0]) >= 3",
        "zarr >= 3",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cases = peer_script_cases("zarr_stores.py", dir.path());
    assert_eq!(cases.len(), 9, "cases written");
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let written = case["source"].as_str().unwrap();
        let peer = SourceSpec::Npy(dir.path().join(format!("{name}.npy")))
            .open()
            .unwrap();
        let peer = peer.read_slab(0..peer.shape()[0]).unwrap();

        let spec = SourceSpec::parse_input(written, dir.path(), None).unwrap();
        let source = spec.open().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(source.dtype(), peer.dtype(), "{name}: dtype");
        assert_eq!(source.shape(), peer.shape(), "{name}: shape");
        let rows = source.shape()[0];
        let whole = source.read_slab(0..rows).unwrap();
        assert!(
            whole.to_le_bytes() == peer.to_le_bytes(),
            "{name}: photonqa's array differs from zarr-python's"
        );
        // Slabs of 3 rows against chunks of 2-4 rows: most slabs cut a chunk.
        let slabs: Vec<NdArray> = (0..rows)
            .step_by(3)
            .map(|start| source.read_slab(start..(start + 3).min(rows)).unwrap())
            .collect();
        assert!(
            NdArray::concatenate(&slabs).unwrap().to_le_bytes() == peer.to_le_bytes(),
            "{name}: slab-by-slab reading differs from zarr-python's"
        );

        std::fs::write(
            dir.path().join("s.toml"),
            lossless_scenario("zarr", written),
        )
        .unwrap();
        let validate = photonqa(dir.path(), &["validate", "s.toml"]);
        assert_ok(&validate, name);
        assert!(
            text(&validate.stdout).contains(&format!("{:?}", peer.shape())),
            "{name}: {}",
            text(&validate.stdout)
        );
    }

    // A run of the v2 store in a group, 2-slice chunks against 3-row Zarr chunks: lossless.
    let row = common::run_first_row(
        dir.path(),
        "run",
        &lossless_scenario("zarr", "v2_i32_gzip_group.zarr::/entry/frames"),
        "2",
    );
    assert_eq!(
        row["distortion"]["max_abs_error"].as_f64(),
        Some(0.0),
        "{row}"
    );
    assert_eq!(
        row["rate"]["original_bytes"].as_u64(),
        Some(7 * 3 * 8 * 4),
        "{row}"
    );
}

#[test]
fn unreadable_zarr_inputs_are_one_line_errors_naming_the_store() {
    if !common::python_peers(
        "import numpy, zarr; assert int(zarr.__version__.split('.')[0]) >= 3",
        "zarr >= 3",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    peer_script_cases("zarr_stores.py", dir.path());
    let errors = dir.path().join("errors");
    let cases: [(&str, &[&str]); 5] = [
        ("blosc.zarr", &["blosc.zarr::/", "blosc"]),
        (
            "complex.zarr",
            &["complex.zarr::/", "unsupported data type complex64"],
        ),
        ("line.zarr", &["line.zarr::/", "rank 1"]),
        (
            "blosc.zarr::/missing",
            &["blosc.zarr::/missing", "not a readable Zarr array"],
        ),
        ("absent.zarr", &["absent.zarr", "is not a folder"]),
    ];
    for (source, needles) in cases {
        std::fs::write(errors.join("s.toml"), lossless_scenario("zarr", source)).unwrap();
        let out = photonqa(&errors, &["validate", "s.toml"]);
        assert_one_line_error(&out, needles, source);
    }
}
