//! `photonqa inspect FILE` lists an input's arrays with shape, dtype, chunking and filters by
//! name, marks the NeXus default signal, and summarises the values; the summaries equal NumPy's
//! on the same arrays (min, max, zeros, integer-valued, counts-like), on the real
//! `reference-data/tooth.h5`, a generated NeXus file with a compressed signal, a TIFF stack
//! written by tifffile and a Zarr v3 store written by zarr-python.
//!
//! Needs python3 with numpy, h5py, tifffile, imagecodecs and zarr (`bash .ci/setup --python`);
//! without them the test says so and skips, unless PHOTONQA_REQUIRE_PEERS=1 (set in CI).

mod common;

use std::process::Command;

use common::{assert_ok, assert_one_line_error, photonqa, repo_root, text};
use serde_json::Value;

/// Writes the test inputs into `dir` and returns NumPy's summaries of every array, by name:
/// `{"min": str, "max": str, "zeros": int, "values": int, "integer": bool, "counts": bool}`.
const PEER: &str = r#"
import json, sys
from pathlib import Path
import h5py, hdf5plugin, numpy as np, tifffile, zarr

out = Path(sys.argv[1])
root = Path(sys.argv[2])
rng = np.random.default_rng(5)

def summary(a):
    finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a
    integer = bool(finite.size == a.size and np.all(np.mod(finite, 1) == 0))
    return {"min": str(finite.min()), "max": str(finite.max()), "zeros": int(np.count_nonzero(a == 0)),
            "values": int(a.size), "integer": integer, "counts": bool(integer and finite.min() >= 0)}

result = {}
with h5py.File(root / "reference-data/tooth.h5") as f:
    for name in ["data", "data_dark", "data_white"]:
        result["tooth/" + name] = summary(f["exchange/" + name][...])

counts = rng.poisson(0.7, size=(5, 6, 7)).astype(np.uint16)
with h5py.File(out / "scan.nxs", "w") as f:
    f.attrs["default"] = "entry"
    entry = f.create_group("entry")
    entry.attrs["NX_class"] = "NXentry"
    entry.attrs["default"] = "data"
    data = entry.create_group("data")
    data.attrs["NX_class"] = "NXdata"
    data.attrs["signal"] = "counts"
    data.create_dataset("counts", data=counts, chunks=(1, 6, 7), shuffle=True, compression="gzip", compression_opts=4)
    data.create_dataset("mask", data=(counts > 1).astype(np.int8) - 1)
    # Third-party filters by their registered ids (hdf5plugin writes them).
    data.create_dataset("bitshuffle", data=counts, chunks=(1, 6, 7), **hdf5plugin.Bitshuffle(cname="lz4"))
    data.create_dataset("zstd", data=counts, chunks=(1, 6, 7), **hdf5plugin.Zstd(clevel=3))
    data.create_dataset("blosc", data=counts, chunks=(1, 6, 7), **hdf5plugin.Blosc(cname="zstd"))
    data.create_dataset("sz3", data=counts.astype(np.float32), chunks=(1, 6, 7), **hdf5plugin.SZ3(absolute=0.1))
result["nexus/counts"] = summary(counts)
result["nexus/mask"] = summary((counts > 1).astype(np.int8) - 1)

stack = rng.normal(size=(3, 8, 9)).astype(np.float32)
stack[0, 0, :4] = 0
(out / "scan").mkdir()
for i, page in enumerate(stack):
    tifffile.imwrite(out / "scan" / f"p_{i:03d}.tif", page, compression="lzw", rowsperstrip=4)
result["tiff"] = summary(stack)

volume = rng.integers(-50, 50, size=(4, 5, 6)).astype(np.int32)
z = zarr.create_array(out / "v.zarr", shape=volume.shape, chunks=(2, 5, 3), dtype=volume.dtype)
z[...] = volume
result["zarr"] = summary(volume)
print(json.dumps(result))
"#;

/// The block `photonqa inspect` prints for `path`: its header line and the lines under it.
fn block<'a>(stdout: &'a str, path: &str) -> Vec<&'a str> {
    let lines: Vec<&str> = stdout.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.split("  [").next() == Some(path))
        .unwrap_or_else(|| panic!("no {path} in:\n{stdout}"));
    let mut block = vec![lines[start]];
    block.extend(
        lines[start + 1..]
            .iter()
            .take_while(|l| l.starts_with("  ")),
    );
    block
}

/// Checks the `values:` line of a block against NumPy's summary.
fn check_values(block: &[&str], peer: &Value, what: &str) {
    let line = block
        .iter()
        .find_map(|l| l.strip_prefix("  values: "))
        .unwrap_or_else(|| panic!("{what}: no values line in {block:?}"));
    let field = |prefix: &str| -> &str {
        line.split(", ")
            .find_map(|part| part.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{what}: no {prefix} in {line}"))
    };
    // Floats compare as numbers (NumPy and Rust both print the shortest round trip).
    let same = |ours: &str, theirs: &str| {
        ours == theirs || ours.parse::<f64>().ok() == theirs.parse::<f64>().ok()
    };
    assert!(
        same(field("min "), peer["min"].as_str().unwrap()),
        "{what}: {line} vs {peer}"
    );
    assert!(
        same(field("max "), peer["max"].as_str().unwrap()),
        "{what}: {line} vs {peer}"
    );
    let zeros = format!("{} of {} ", peer["zeros"], peer["values"]);
    assert!(
        field("zeros ").starts_with(&zeros),
        "{what}: {line} vs {peer}"
    );
    let integer = if peer["integer"] == true {
        "integer-valued"
    } else {
        "not integer-valued"
    };
    let counts = if peer["counts"] == true {
        "counts-like"
    } else {
        "not counts-like"
    };
    let parts: Vec<&str> = line.split(", ").collect();
    assert!(parts.contains(&integer), "{what}: {line} vs {peer}");
    assert!(parts.contains(&counts), "{what}: {line} vs {peer}");
}

#[test]
fn inspect_lists_arrays_and_summaries_equal_to_numpy() {
    if !common::python_peers(
        "import numpy, h5py, hdf5plugin, tifffile, imagecodecs, zarr",
        "h5py, tifffile, imagecodecs and zarr",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let out = Command::new("python3")
        .args(["-c", PEER])
        .arg(dir)
        .arg(repo_root())
        .output()
        .unwrap();
    assert!(out.status.success(), "peer: {}", text(&out.stderr));
    let peer: Value = serde_json::from_str(&text(&out.stdout)).unwrap();

    let tooth = repo_root().join("reference-data/tooth.h5");
    let run = photonqa(dir, &["inspect", tooth.to_str().unwrap()]);
    assert_ok(&run, "inspect tooth.h5");
    let stdout = text(&run.stdout);
    for name in ["data", "data_dark", "data_white"] {
        let block = block(&stdout, &format!("/exchange/{name}"));
        assert!(
            block[1].contains("dtype float32  chunks contiguous  filters none"),
            "{block:?}"
        );
        check_values(&block, &peer[format!("tooth/{name}")], name);
    }
    let theta = block(&stdout, "/exchange/theta");
    assert!(theta[1].starts_with("  shape [181]"), "{theta:?}");
    assert!(!stdout.contains("default signal"), "{stdout}");

    let run = photonqa(dir, &["inspect", "scan.nxs"]);
    assert_ok(&run, "inspect scan.nxs");
    let stdout = text(&run.stdout);
    let counts = block(&stdout, "/entry/data/counts");
    assert_eq!(counts[0], "/entry/data/counts  [default signal]");
    assert_eq!(
        counts[1],
        "  shape [5, 6, 7]  dtype uint16  chunks [1, 6, 7]  filters shuffle, deflate(4)"
    );
    check_values(&counts, &peer["nexus/counts"], "counts");
    for (name, filters) in [
        ("bitshuffle", "bitshuffle+lz4"),
        ("zstd", "zstd"),
        ("blosc", "blosc"),
        ("sz3", "sz3"),
    ] {
        let block = block(&stdout, &format!("/entry/data/{name}"));
        assert!(
            block[1].ends_with(&format!("  filters {filters}")),
            "{block:?}"
        );
    }
    let mask = block(&stdout, "/entry/data/mask");
    assert_eq!(mask[0], "/entry/data/mask");
    check_values(&mask, &peer["nexus/mask"], "mask");

    let run = photonqa(dir, &["inspect", "scan/p_*.tif"]);
    assert_ok(&run, "inspect tiff");
    let stdout = text(&run.stdout);
    let tiff = block(&stdout, "scan/p_*.tif (3 files)");
    assert_eq!(
        tiff[1],
        "  shape [3, 8, 9]  dtype float32  chunks [4, 9]  filters lzw"
    );
    check_values(&tiff, &peer["tiff"], "tiff");

    let run = photonqa(dir, &["inspect", "v.zarr"]);
    assert_ok(&run, "inspect zarr");
    let stdout = text(&run.stdout);
    let zarr = block(&stdout, "/");
    assert_eq!(
        zarr[1],
        "  shape [4, 5, 6]  dtype int32  chunks [2, 5, 3]  filters bytes, zstd"
    );
    check_values(&zarr, &peer["zarr"], "zarr");

    assert_one_line_error(
        &photonqa(dir, &["inspect", "missing.h5"]),
        &["missing.h5", "no such file"],
        "missing file",
    );
}
