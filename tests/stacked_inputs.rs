//! A scenario input named as many files (a glob pattern, a list) is read as one volume
//! stacked along axis 0: its results are those of the same volume in one file, but for the
//! input's label.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};

use photonqa::data::{DType, FromNdArray, NdArray, SourceSpec, c_order};
use serde_json::Value;

mod common;

use common::{BIN, assert_ok, read_reference_volume, reference_volume, text};

/// Rows of the three parts: unequal, and not multiples of the 16-row chunks, so that chunks
/// straddle the files.
const CUTS: [usize; 2] = [21, 13];

/// The scenario on `source` (a TOML value): quantize + deflate, with metrics whose windows
/// cross chunk (and file) boundaries and an analysis.
fn scenario(source: &str) -> String {
    format!(
        r#"[scenario]
name = "stacked"
chunk_slices = 16
[input]
source = {source}
[[pipeline]]
stage = "quantize"
dtype = "uint8"
bits = {{ sweep = [4, 8] }}
[[pipeline]]
stage = "deflate"
level = {{ sweep = [1, 6] }}
[metrics]
distortion = ["mse", "psnr", "max_abs_error", "ssim"]
[[analysis]]
kind = "porosity"
method = "otsu"
"#
    )
}

/// HDF5 opens files without close-on-exec, and its file locks follow the descriptor into a
/// child process started meanwhile: a `photonqa run` that another test starts while this
/// process writes a part would keep that part locked (and unreadable) for its whole run. The
/// tests hold this lock while they have an HDF5 file of the parts open and while they start a
/// child.
static HDF5_FILES: Mutex<()> = Mutex::new(());

fn hdf5_files() -> MutexGuard<'static, ()> {
    HDF5_FILES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs photonqa with `args` in `dir` (started under [`HDF5_FILES`]).
fn photonqa(dir: &Path, args: &[&str]) -> Output {
    let child = {
        let _files = hdf5_files();
        Command::new(BIN)
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start photonqa")
    };
    child.wait_with_output().expect("photonqa did not finish")
}

/// Writes `array` as the dataset `/volume` of a new `dir/name`, with the hdf5 crate.
fn write_part(dir: &Path, name: &str, array: &NdArray) {
    let _files = hdf5_files();
    let file = hdf5::File::create(dir.join(name)).unwrap();
    photonqa::with_dtype!(array.dtype(), T => {
        let typed = T::ref_nd(array).unwrap();
        file.new_dataset::<T>()
            .shape(array.shape())
            .create("volume")
            .unwrap()
            .write_raw(&c_order(typed))
            .unwrap();
    });
}

/// The reference volume split along axis 0 into `part_0.h5`, `part_1.h5`, `part_2.h5`.
fn split_reference(dir: &Path) -> usize {
    let whole = read_reference_volume();
    let rows = whole.shape()[0];
    assert!(
        rows > CUTS.iter().sum::<usize>() + 16,
        "reference volume too small"
    );
    let bounds = [0, CUTS[0], CUTS[0] + CUTS[1], rows];
    for (i, w) in bounds.windows(2).enumerate() {
        write_part(dir, &format!("part_{i}.h5"), &whole.slice_rows(w[0]..w[1]));
    }
    rows
}

/// Runs `scenario` as `dir/<name>.toml` into `dir/<name>`; returns the rows of its
/// results.jsonl by index, without their timing fields (which differ between runs).
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
    let log = std::fs::read_to_string(dir.join(name).join("results.jsonl")).unwrap();
    let mut rows: Vec<Value> = log
        .lines()
        .map(|line| {
            let mut row: Value = serde_json::from_str(line).unwrap();
            let rate = row["rate"].as_object_mut().expect("rate");
            for key in ["encode_mb_s", "decode_mb_s"] {
                assert!(rate.remove(key).is_some(), "{key} missing in {line}");
            }
            row
        })
        .collect();
    rows.sort_by_key(|r| r["index"].as_u64());
    rows
}

/// The provenance fields that name the input, removed from `row`: its label, and the hash of
/// the scenario file (whose `source` line names it). Everything else must not depend on how
/// the input is split into files.
fn take_input_names(row: &mut Value) -> (String, String) {
    let provenance = row["provenance"].as_object_mut().expect("provenance");
    let mut take = |key: &str| {
        provenance
            .remove(key)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("provenance.{key}"))
    };
    (take("input"), take("scenario_hash"))
}

/// Checks that `stacked` equals `whole` row for row but for the input label, which must be
/// `label`; the input hash, shape and dtype are the same.
fn assert_same_results(mut whole: Vec<Value>, mut stacked: Vec<Value>, label: &str) {
    assert_eq!(whole.len(), 4, "working points");
    assert_eq!(stacked.len(), whole.len(), "working points");
    for (w, s) in whole.iter_mut().zip(&mut stacked) {
        let (whole_label, whole_scenario) = take_input_names(w);
        let (stacked_label, stacked_scenario) = take_input_names(s);
        assert_eq!(whole_label, reference_volume());
        assert_eq!(stacked_label, label);
        assert_ne!(
            whole_scenario, stacked_scenario,
            "the scenario files differ"
        );
        assert_eq!(
            s["provenance"]["input_hash"], w["provenance"]["input_hash"],
            "input hash"
        );
        if w != s {
            common::differ(
                "a stacked input changed a result row",
                &w.to_string(),
                &s.to_string(),
            );
        }
    }
}

#[test]
fn glob_and_list_of_parts_give_the_results_of_the_whole_volume() {
    let dir = tempfile::tempdir().unwrap();
    let rows = split_reference(dir.path());
    let whole = run(
        dir.path(),
        "whole",
        &scenario(&format!("\"{}\"", reference_volume())),
    );
    assert_eq!(
        whole[0]["provenance"]["input_shape"][0].as_u64(),
        Some(rows as u64)
    );

    let globbed = run(dir.path(), "glob", &scenario("\"part_*.h5::/volume\""));
    // Paths relative to the scenario, whose folder is the working directory here.
    assert_same_results(whole.clone(), globbed, "part_*.h5::/volume (3 files)");

    // A list in the order given; an item may itself be a pattern, expanded in place.
    let listed = run(
        dir.path(),
        "list",
        &scenario("[\"part_0.h5::/volume\", \"part_[12].h5::/volume\"]"),
    );
    let label = "[part_0.h5::/volume, part_[12].h5::/volume] (3 files)";
    assert_same_results(whole, listed, label);
}

#[test]
fn parts_stack_in_path_order_or_in_list_order() {
    let dir = tempfile::tempdir().unwrap();
    let rows = split_reference(dir.path());
    let whole = read_reference_volume();
    let files = hdf5_files();
    let open = |spec: SourceSpec| spec.open().unwrap_or_else(|e| panic!("{e}"));
    let globbed = open(SourceSpec::parse_input("part_*.h5::/volume", dir.path(), None).unwrap());
    assert_eq!(globbed.shape(), whole.shape());
    assert_eq!(globbed.read_slab(0..rows).unwrap(), whole);
    // Slabs across the files' boundaries.
    for start in [0, CUTS[0] - 1, CUTS[0] + CUTS[1] - 2] {
        let end = (start + 16).min(rows);
        assert_eq!(
            globbed.read_slab(start..end).unwrap(),
            whole.slice_rows(start..end)
        );
    }
    // Listed out of order: another volume, in the order given.
    let swapped = open(
        SourceSpec::parse_list(
            &[
                "part_1.h5::/volume",
                "part_0.h5::/volume",
                "part_2.h5::/volume",
            ],
            dir.path(),
            None,
        )
        .unwrap(),
    );
    let (a, b) = (CUTS[0], CUTS[0] + CUTS[1]);
    let expected = NdArray::concatenate(&[
        whole.slice_rows(a..b),
        whole.slice_rows(0..a),
        whole.slice_rows(b..rows),
    ])
    .unwrap();
    assert_eq!(swapped.read_slab(0..rows).unwrap(), expected);
    drop((globbed, swapped, files));

    std::fs::write(
        dir.path().join("v.toml"),
        scenario("\"part_*.h5::/volume\""),
    )
    .unwrap();
    let out = photonqa(dir.path(), &["validate", "v.toml"]);
    assert_ok(&out, "photonqa validate");
    let expected = format!(
        "v.toml: ok: 4 working points on part_*.h5::/volume (3 files) (float32 {:?})",
        whole.shape()
    );
    assert!(
        text(&out.stdout).contains(&expected),
        "{}",
        text(&out.stdout)
    );
}

/// Runs a scenario on `source` in `dir` and returns its one-line stderr, checking exit code 2.
fn failure(dir: &Path, source: &str) -> String {
    std::fs::write(dir.join("bad.toml"), scenario(source)).unwrap();
    let out = photonqa(dir, &["run", "bad.toml", "--out", "bad"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    stderr.trim_end().to_string()
}

#[test]
fn a_pattern_matching_nothing_is_named() {
    let dir = tempfile::tempdir().unwrap();
    split_reference(dir.path());
    let err = failure(dir.path(), "\"scan_*.h5::/volume\"");
    assert_eq!(
        err,
        "photonqa: scan_*.h5::/volume: no file matches this pattern"
    );
    // Also as an item of a list.
    let err = failure(
        dir.path(),
        "[\"part_0.h5::/volume\", \"scan_*.h5::/volume\"]",
    );
    assert_eq!(
        err,
        "photonqa: scan_*.h5::/volume: no file matches this pattern"
    );
}

#[test]
fn a_part_of_another_trailing_shape_is_named() {
    let dir = tempfile::tempdir().unwrap();
    split_reference(dir.path());
    let whole = read_reference_volume();
    let shape = whole.shape().to_vec();
    // part_1 made of rows one column narrower.
    let narrow: Vec<f32> = c_order(f32::ref_nd(&whole).unwrap())
        .chunks(shape[2])
        .take(CUTS[1] * shape[1])
        .flat_map(|row| row[..shape[2] - 1].to_vec())
        .collect();
    let narrow =
        ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[CUTS[1], shape[1], shape[2] - 1]), narrow)
            .unwrap();
    write_part(
        dir.path(),
        "part_1.h5",
        &photonqa::data::IntoNdArray::into_nd(narrow),
    );
    let err = failure(dir.path(), "\"part_*.h5::/volume\"");
    let theirs = format!("{:?}", [CUTS[1], shape[1], shape[2] - 1]);
    let ours = format!("{:?}", [CUTS[0], shape[1], shape[2]]);
    assert_eq!(
        err,
        format!(
            "photonqa: part_1.h5::/volume: shape {theirs} does not stack on shape {ours} of \
             part_0.h5::/volume: every file needs the same shape after axis 0"
        )
    );
}

#[test]
fn a_part_of_another_dtype_is_named() {
    let dir = tempfile::tempdir().unwrap();
    split_reference(dir.path());
    let whole = read_reference_volume();
    assert_eq!(whole.dtype(), DType::Float32);
    let ints = whole
        .slice_rows(CUTS[0]..CUTS[0] + CUTS[1])
        .to_f64()
        .mapv(|v| (v * 1000.0).clamp(0.0, 65535.0) as u16);
    write_part(
        dir.path(),
        "part_1.h5",
        &photonqa::data::IntoNdArray::into_nd(ints),
    );
    let err = failure(dir.path(), "\"part_*.h5::/volume\"");
    assert_eq!(
        err,
        "photonqa: part_1.h5::/volume: dtype uint16 does not stack on dtype float32 of \
         part_0.h5::/volume: every file needs the same dtype"
    );
}
