//! Side information of learned codecs: a `command` stage declares the files its decoder needs
//! besides the stream (`side_files`) and how many arrays share them (`amortize_over`); the rate
//! reports `ratio` with their share and `ratio_payload` without, and the report says so.
//!
//! The codec is a toy "learned" one (`tests/fixtures/codebook_codec.py`): it quantises every
//! value to the nearest entry of a codebook stored in a side file, which the decoder reads. Its
//! stream size follows from its format (4 (1 + rank) bytes of header and one byte per value
//! per chunk), the side bytes from the files' sizes: the expected rates below are computed
//! from those, the expected error from the codebook, independently of photonqa.

mod common;

use std::fs;
use std::path::Path;

use common::{
    assert_ok, assert_one_line_error, photonqa, python_peers, repo_root, sorted_rows, text,
};
use serde_json::Value;

/// Input shape: 2 chunks of 4 slices.
const SHAPE: [usize; 3] = [8, 16, 16];
const CHUNK_SLICES: usize = 4;
/// Codebook entries: (k + 0.5) / 16 for k in 0..16, exact in float32.
const LEVELS: usize = 16;
/// Size of the second side file (a "prior" the decoder is given but does not read).
const PRIOR_BYTES: usize = 936;

/// The input: float32 values in [0, 1) from a fixed linear congruential generator.
fn input() -> Vec<f32> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..SHAPE.iter().product::<usize>())
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

fn codebook() -> Vec<f32> {
    (0..LEVELS)
        .map(|k| (k as f32 + 0.5) / LEVELS as f32)
        .collect()
}

/// A scenario in `dir/scen/` (its files beside it, so that they resolve against its folder,
/// not photonqa's working directory): the learned codec with the codebook and the prior as
/// side files, `amortize_over` swept over 1 and 3, and plain zstd without side files.
fn setup(dir: &Path) {
    let scen = dir.join("scen");
    fs::create_dir_all(scen.join("model")).unwrap();
    let array = ndarray::Array::from_shape_vec(SHAPE, input()).unwrap();
    ndarray_npy::write_npy(scen.join("input.npy"), &array).unwrap();
    let book: Vec<u8> = codebook().iter().flat_map(|v| v.to_le_bytes()).collect();
    fs::write(scen.join("model/codebook.bin"), book).unwrap();
    fs::write(scen.join("model/prior.bin"), vec![7u8; PRIOR_BYTES]).unwrap();
    write_scenario(
        dir,
        "side_files = [\"model/codebook.bin\", \"model/prior.bin\"]\namortize_over = { sweep = [1, 3] }\n",
    );
}

/// A fresh folder set up by [`setup`], when python3 with NumPy runs the codec (else the test
/// says so and skips).
fn with_codec() -> Option<tempfile::TempDir> {
    if !python_peers("import numpy", "numpy") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    Some(dir)
}

/// Writes `dir/scen/learned.toml` with `side` (TOML lines) in the learned codec's stage.
fn write_scenario(dir: &Path, side: &str) {
    let codec = repo_root().join("tests/fixtures/codebook_codec.py");
    let command = |mode: &str, from: &str, to: &str| {
        format!(
            "\"python3 '{}' {mode} {from} {to} {{side_files}}\"",
            codec.display()
        )
    };
    let text = format!(
        "[scenario]\nname = \"learned\"\nchunk_slices = {CHUNK_SLICES}\n\
         [input]\nsource = \"input.npy\"\n\
         [[variant]]\nname = \"learned\"\n[[variant.pipeline]]\nstage = \"command\"\n\
         encode = {}\ndecode = {}\n{side}\
         [[variant]]\nname = \"zstd\"\n[[variant.pipeline]]\nstage = \"zstd\"\nlevel = 1\n\
         [metrics]\ndistortion = [\"max_abs_error\"]\n",
        command("encode", "{input}", "{output}"),
        command("decode", "{input}", "{output}"),
    );
    fs::write(dir.join("scen/learned.toml"), text).unwrap();
}

fn run(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "run",
        "scen/learned.toml",
        "--out",
        "out",
        "--allow-commands",
    ];
    args.extend(extra);
    photonqa(dir, &args)
}

#[test]
fn ratio_counts_the_amortised_side_files_and_ratio_payload_the_stream() {
    let Some(dir) = with_codec() else {
        return;
    };
    let dir = dir.path();
    let out = run(dir, &[]);
    assert_ok(&out, "photonqa run");

    // What the rate must be, from the files and the stream format.
    let values = SHAPE.iter().product::<usize>() as f64;
    let original = values * 4.0;
    let chunks = SHAPE[0] / CHUNK_SLICES;
    let stream = (chunks * (4 * (1 + SHAPE.len())) + SHAPE.iter().product::<usize>()) as u64;
    let side_bytes: u64 = ["codebook.bin", "prior.bin"]
        .iter()
        .map(|f| fs::metadata(dir.join("scen/model").join(f)).unwrap().len())
        .sum();
    assert_eq!(side_bytes, (LEVELS * 4 + PRIOR_BYTES) as u64);
    // What the decoded data must be: every value replaced by its nearest codebook entry.
    let book = codebook();
    let max_error = input()
        .iter()
        .map(|&x| {
            book.iter()
                .map(|&c| (x as f64 - c as f64).abs())
                .fold(f64::INFINITY, f64::min)
        })
        .fold(0.0, f64::max);

    let rows = sorted_rows(&dir.join("out"));
    assert_eq!(rows.len(), 3);
    for (row, arrays) in rows[..2].iter().zip([1u64, 3]) {
        let rate = &row["rate"];
        assert_eq!(row["status"], "ok", "{row}");
        assert_eq!(rate["original_bytes"], original as u64);
        assert_eq!(rate["compressed_bytes"], stream);
        assert_eq!(rate["side_bytes"], side_bytes);
        assert_eq!(rate["amortize_over"], arrays);
        let charged = stream as f64 + side_bytes as f64 / arrays as f64;
        assert_eq!(rate["ratio"].as_f64(), Some(original / charged), "{rate}");
        assert_eq!(
            rate["bits_per_value"].as_f64(),
            Some(8.0 * charged / values)
        );
        assert_eq!(
            rate["ratio_payload"].as_f64(),
            Some(original / stream as f64),
            "{rate}"
        );
        assert_eq!(row["distortion"]["max_abs_error"].as_f64(), Some(max_error));
    }
    // 8192 / (2080 + 1000) and 8192 / (2080 + 1000 / 3), against 8192 / 2080 for the stream.
    assert_eq!(rows[0]["rate"]["ratio"].as_f64(), Some(8192.0 / 3080.0));
    assert_eq!(
        rows[1]["rate"]["ratio"].as_f64(),
        Some(8192.0 / (2080.0 + 1000.0 / 3.0))
    );
    assert_eq!(
        rows[0]["rate"]["ratio_payload"].as_f64(),
        Some(8192.0 / 2080.0)
    );

    // A point without side files has none in its row; its ratio is its payload's.
    let zstd = &rows[2]["rate"];
    for key in ["side_bytes", "amortize_over", "ratio_payload"] {
        assert!(zstd.get(key).is_none(), "{zstd}");
    }

    // The provenance of every row names the side files with their hashes.
    for row in &rows {
        let hashes = &row["provenance"]["side_files"];
        for file in ["codebook.bin", "prior.bin"] {
            let bytes = fs::read(dir.join("scen/model").join(file)).unwrap();
            assert_eq!(
                hashes[format!("model/{file}")],
                blake3::hash(&bytes).to_hex().as_str(),
                "{hashes}"
            );
        }
    }

    // results.csv: both ratios and the side bytes for every point (zstd's: its ratio, 0).
    let csv = fs::read_to_string(dir.join("out/results.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let records: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    for (record, row) in records.iter().zip(&rows) {
        let rate = &row["rate"];
        let payload: f64 = record[column("ratio_payload")].parse().unwrap();
        let expected = rate.get("ratio_payload").unwrap_or(&rate["ratio"]);
        assert_eq!(Some(payload), expected.as_f64(), "{record:?}");
        let side: u64 = record[column("side_bytes")].parse().unwrap();
        assert_eq!(
            side,
            rate.get("side_bytes").map_or(0, |v| v.as_u64().unwrap())
        );
    }

    // The table, the summary and the report say what the ratio counts.
    let note = "ratio amortises 1000 bytes of side files over 1 array (all of them charged to it, \
                on top of the stream, 1 point); 1000 bytes of side files over 3 arrays (333.333 \
                bytes each, on top of the stream, 1 point); ratio_payload is the stream alone.";
    let stdout = text(&out.stdout);
    assert!(stdout.contains("ratio_payload"), "{stdout}");
    assert!(stdout.contains(note), "{stdout}");
    let summary = fs::read_to_string(dir.join("out/summary.md")).unwrap();
    assert!(summary.contains(note), "{summary}");
    assert!(summary.contains("| ratio | ratio_payload |"), "{summary}");
    let report = fs::read_to_string(dir.join("out/report.html")).unwrap();
    assert!(report.contains(note), "the HTML report lacks the note");
    assert!(
        report.contains("model/codebook.bin ("),
        "the provenance lacks the side files"
    );
}

#[test]
fn a_changed_model_is_another_result() {
    let Some(dir) = with_codec() else {
        return;
    };
    let dir = dir.path();
    let bless = photonqa(
        dir,
        &[
            "bless",
            "scen/learned.toml",
            "--baseline",
            "base.json",
            "--allow-commands",
        ],
    );
    assert_ok(&bless, "photonqa bless");
    let baseline: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("base.json")).unwrap()).unwrap();
    let columns: Vec<&str> = baseline["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "original_bytes",
            "compressed_bytes",
            "ratio",
            "bits_per_value",
            "ratio_payload",
            "side_bytes",
            "max_abs_error"
        ]
    );
    assert!(
        baseline["side_files"]["model/prior.bin"].is_string(),
        "{baseline}"
    );
    assert_ok(&run(dir, &[]), "photonqa run");

    // A bigger prior: a resumed run refuses the rows made with the old one ...
    fs::write(
        dir.join("scen/model/prior.bin"),
        vec![7u8; PRIOR_BYTES + 24],
    )
    .unwrap();
    assert_one_line_error(
        &run(dir, &["--resume"]),
        &["was made with other side files (model/prior.bin); use a fresh --out"],
        "resume with another prior",
    );
    // ... and the gate reports the change, and the ratios and side bytes that moved with it.
    let check = photonqa(
        dir,
        &[
            "check",
            "scen/learned.toml",
            "--baseline",
            "base.json",
            "--allow-commands",
        ],
    );
    let stdout = text(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("the side files changed since the baseline: model/prior.bin"),
        "{stdout}"
    );
    assert!(stdout.contains("side_bytes 1000 -> 1024"), "{stdout}");
    assert!(
        !stdout.contains("ratio_payload"),
        "the stream did not change: {stdout}"
    );
}

#[test]
fn side_files_are_checked_in_one_line_naming_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    setup(dir);
    let validate = |side: &str, needles: &[&str], what: &str| {
        write_scenario(dir, side);
        assert_one_line_error(
            &photonqa(dir, &["validate", "scen/learned.toml"]),
            needles,
            what,
        );
    };
    validate(
        "side_files = [\"model/model.onnx\"]\n",
        &[
            "learned.toml:",
            "stage 'command': side_files: ",
            // Resolved against the scenario's folder, shown from the working directory.
            "scen/model/model.onnx: No such file or directory",
        ],
        "a missing file",
    );
    validate(
        "side_files = [\"model\"]\n",
        &["side_files: ", "is a folder, not a regular file"],
        "a folder",
    );
    validate(
        "amortize_over = 4\n",
        &["stage 'command': amortize_over needs side_files"],
        "amortize_over alone",
    );
    validate(
        "side_files = []\n",
        &["side_files is an empty list (leave it out instead)"],
        "an empty list",
    );
    validate(
        "side_files = [\"model/prior.bin\", 3]\n",
        &[
            "side_files: item 2 = 3 is not a string (expected list of file paths relative to the scenario file)",
        ],
        "a number",
    );
    validate(
        "side_files = [\"model/prior.bin\", \"model/prior.bin\"]\n",
        &["side_files: \"model/prior.bin\" is listed twice (item 2)"],
        "a repeat",
    );
    validate(
        "side_files = [\"model/prior.bin\"]\namortize_over = 0\n",
        &["amortize_over = 0 is not in 1..="],
        "no arrays",
    );
    // `{side_files}` in a command needs side files.
    validate(
        "",
        &["encode uses {side_files} but side_files is not set"],
        "the placeholder alone",
    );
}
