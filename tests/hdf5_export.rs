//! `photonqa export` writes the deployed artifact: every supported filter pipeline, written by
//! photonqa, read back by Python h5py + hdf5plugin (`tests/peers/read_export.py`), gives
//! exactly photonqa's decoded array, bit for bit (the lossy preprocessing inverted from the
//! dataset's attributes as documented; the filters are lossless). The last chunk is partial (64
//! rows in chunks of 24), so the zero padding of edge chunks is exercised.
//!
//! Needs python3 with h5py and hdf5plugin (`bash .ci/setup --python`); without them the test
//! says so and skips, unless PHOTONQA_REQUIRE_PEERS=1 (set in CI).

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_ok, photonqa, read_reference_volume, reference_volume, text};
use photonqa::data::npy::write_npy;
use photonqa::pipeline::Chain;
use photonqa::scenario::Scenario;
use serde_json::Value;

/// Expected filters: `(id, cd_values)` in pipeline order.
type Filters = &'static [(u64, &'static [u64])];

/// Whether Python can read the files; panics when it cannot and CI requires it.
fn python_peers() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import h5py, hdf5plugin, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("PHOTONQA_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("python3 with h5py and hdf5plugin is required (PHOTONQA_REQUIRE_PEERS=1)");
        }
        println!("skipped: python3 with h5py and hdf5plugin not found (bash .ci/setup --python)");
    }
    ok
}

/// Writes a one-point scenario with `pipeline` (TOML `[[pipeline]]` entries).
fn scenario(dir: &Path, pipeline: &str) -> Scenario {
    let text = format!(
        "[scenario]\nname = \"export\"\nchunk_slices = 24\n[input]\nsource = \"{}\"\n{pipeline}",
        reference_volume()
    );
    let path = dir.join("s.toml");
    std::fs::write(&path, text).unwrap();
    Scenario::load(&path).unwrap()
}

#[test]
fn every_filter_pipeline_reads_back_bit_exact_with_h5py_and_hdf5plugin() {
    if !python_peers() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let original = read_reference_volume();
    let script = common::repo_root().join("tests/peers/read_export.py");
    let quantize =
        "[[pipeline]]\nstage = \"quantize\"\ndtype = \"uint8\"\nbits = 6\nrange = [-0.2, 1.1]\n";
    let cases: [(&str, String, Filters, &str); 8] = [
        ("zstd", "[[pipeline]]\nstage = \"zstd\"\nlevel = 5\n".into(), &[(32015, &[5])], "float32"),
        (
            "shuffle+deflate",
            "[[pipeline]]\nstage = \"shuffle\"\n[[pipeline]]\nstage = \"deflate\"\nlevel = 6\n".into(),
            &[(2, &[4]), (1, &[6])],
            "float32",
        ),
        (
            "bitshuffle+lz4",
            "[[pipeline]]\nstage = \"bitshuffle\"\n[[pipeline]]\nstage = \"lz4\"\n".into(),
            &[(32008, &[0, 4, 4, 0, 0]), (32004, &[0])],
            "float32",
        ),
        (
            "quantize+bitshuffle+zstd",
            format!("{quantize}[[pipeline]]\nstage = \"bitshuffle\"\n[[pipeline]]\nstage = \"zstd\"\n"),
            &[(32008, &[0, 4, 1, 0, 0]), (32015, &[3])],
            "uint8",
        ),
        (
            "bitround+shuffle+zstd",
            "[[pipeline]]\nstage = \"bitround\"\nkeepbits = 7\n[[pipeline]]\nstage = \"shuffle\"\n[[pipeline]]\nstage = \"zstd\"\n".into(),
            &[(2, &[4]), (32015, &[3])],
            "float32",
        ),
        (
            "threshold+deflate",
            "[[pipeline]]\nstage = \"threshold\"\nmethod = \"value\"\nvalue = 0.3\n[[pipeline]]\nstage = \"deflate\"\nlevel = 1\n".into(),
            &[(1, &[1])],
            "float32",
        ),
        (
            "binarise+lz4",
            "[[pipeline]]\nstage = \"threshold\"\nmethod = \"value\"\nvalue = 0.3\nmode = \"binarise\"\n[[pipeline]]\nstage = \"lz4\"\n".into(),
            &[(32004, &[0])],
            "uint8",
        ),
        (
            "quantize+dictionary+zstd",
            format!("{quantize}[[pipeline]]\nstage = \"dictionary\"\n[[pipeline]]\nstage = \"zstd\"\nlevel = 1\n"),
            &[(32015, &[1])],
            "uint8",
        ),
    ];
    for (name, pipeline, filters, stored) in cases {
        let scenario = scenario(dir, &pipeline);
        let point = &scenario.working_points()[0];
        let out = photonqa(
            dir,
            &[
                "export",
                "s.toml",
                "--point",
                &point.id,
                "--out",
                "x.h5::/g/data",
            ],
        );
        assert_ok(&out, name);
        let stdout = text(&out.stdout);
        assert_eq!(
            stdout.contains("note: stage dictionary has no registered HDF5 filter"),
            name.contains("dictionary"),
            "{name}: {stdout}"
        );
        // photonqa's decoded array: the chain's round trip (elementwise stages, so the
        // chunking does not matter).
        let chain = Chain::build(&point.stages, original.dtype()).unwrap();
        let decoded = chain.round_trip(&original).unwrap().decoded;
        write_npy(&dir.join("decoded.npy"), &decoded).unwrap();
        let read = Command::new("python3")
            .arg(&script)
            .args([dir.join("x.h5").to_str().unwrap(), "/g/data"])
            .arg(dir.join("decoded.npy"))
            .output()
            .unwrap();
        assert!(read.status.success(), "{name}: {}", text(&read.stderr));
        let report: Value = serde_json::from_str(&text(&read.stdout)).unwrap();
        assert_eq!(report["equal"], true, "{name}: {report}");
        assert_eq!(report["max_abs_diff"], 0.0, "{name}: {report}");
        assert_eq!(report["dtype"], stored, "{name}: {report}");
        assert_eq!(
            report["chunks"],
            serde_json::json!([24, 128, 128]),
            "{name}"
        );
        let expected: Vec<Value> = filters
            .iter()
            .map(|(id, cd)| serde_json::json!([id, cd]))
            .collect();
        assert_eq!(
            report["filters"],
            Value::Array(expected),
            "{name}: {report}"
        );
    }
}

#[test]
fn export_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    scenario(
        dir,
        "[[pipeline]]\nstage = \"zstd\"\nlevel = { sweep = [1, 3] }\n",
    );
    let cases: [(&[&str], &str); 2] = [
        (
            &[
                "export",
                "s.toml",
                "--point",
                "wp-0000000000",
                "--out",
                "x.h5::/d",
            ],
            "no working point wp-0000000000 (points: wp-",
        ),
        (
            &[
                "export",
                "s.toml",
                "--point",
                "wp-0000000000",
                "--out",
                "x.h5",
            ],
            "--out x.h5: expected file.h5::/path",
        ),
    ];
    for (args, message) in cases {
        let out = photonqa(dir, args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(message), "expected {message:?} in {stderr}");
    }
}
