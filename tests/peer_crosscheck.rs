//! Every number photonqa computes, checked against an independent peer: scikit-image (Otsu, MSE,
//! PSNR, NRMSE), SciPy (Pearson), NumPy (RMSE, SNR, errors, the quantize formula), numcodecs
//! (BitRound), h5py + hdf5plugin (HDF5 shuffle and bitshuffle filters), and Python's zlib,
//! zstandard and lz4 (streams).
//!
//! The peer values are committed in `tests/fixtures/peers/` by `tests/peers/make_fixtures.py`
//! (see `tests/peers/README.md`); these tests need no Python. Floats in `expected.json` are
//! strings holding Python's shortest round-trip repr and are parsed with `str::parse::<f64>`,
//! which is correctly rounded (serde_json's default float parser is not), so "bit-identical"
//! means bit-identical. Numbers printed by photonqa are read the same way, from the raw text.
//!
//! Tolerance policy (one place, see [`REL_TOL`] and [`mean_error_tolerance`]):
//! - Otsu thresholds, foreground counts, stage outputs and decoded streams: exact (bits/bytes).
//! - `max_abs_error`, `count`, `data_range`: exact (the inputs' differences are exactly
//!   representable in float64, and both sides take one float64 subtraction).
//! - `mse`, `rmse`, `psnr`: relative [`REL_TOL`] = 1e-6. Not exact because scikit-image
//!   subtracts and squares float32 inputs in float32 before a pairwise float64 mean, while
//!   photonqa converts to float64 first and sums sequentially per chunk; the float32 squares
//!   alone differ by up to 2^-24 relative.
//! - `mean_error`: relative 1e-6 plus an absolute 1e-9 x mean |error|, because the mean of
//!   signed errors cancels (its relative error is unbounded when the bias is near zero).
//! - `nrmse`, `snr`: relative [`REL_TOL`] (same reasons; the fixtures keep |snr| > 0.1 dB so a
//!   relative tolerance on the logarithm means something).
//! - `pearson`: absolute [`PEARSON_TOL`] = 1e-9 against SciPy on float64 copies (photonqa uses
//!   Chan's pairwise co-moment updates, SciPy centred vectors; `f64_offset` has a mean of 1e8 so
//!   raw sums of squares would fail). Where SciPy returns NaN (a constant input) photonqa
//!   reports 1.0 if decoded == original everywhere, else 0.0, never NaN.
//! - `max_rel_error`, `max_rel_floor`: relative [`MAX_REL_TOL`] = 1e-12 (one float64 division
//!   per value on both sides; only the floor 1e-3 x R may be computed in another order).
//! - Infinite values (PSNR and SNR of identical inputs, and everything divided by a zero range or
//!   variance): the strings "inf" / "-inf", exactly.

mod common;

use common::{Failures, float_field, int_field, parse_exact, repo_root, str_field};

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use photonqa::data::{DType, IntoNdArray, NdArray, SourceSpec};
use photonqa::pipeline::{
    ArrayToArray, ArrayToBytes, BytesToBytes, ParamValue, Stage, StageConfig, StageInput, registry,
};
use photonqa::stats::histogram::Binning;
use photonqa::stats::otsu;
use serde_json::Value;

/// Relative tolerance for mse, rmse, psnr, nrmse and snr (see the module documentation for why).
const REL_TOL: f64 = 1e-6;

/// Absolute tolerance for the Pearson correlation (photonqa: Chan co-moments; SciPy: centred
/// float64 vectors).
const PEARSON_TOL: f64 = 1e-9;

/// Relative tolerance for max_rel_error and max_rel_floor.
const MAX_REL_TOL: f64 = 1e-12;

// ------------------------------------------------------------------------------------------------
// Helpers: fixtures, exact numbers, stages, the binary.

fn expected() -> Value {
    common::expected_json("peers", "tests/peers/make_fixtures.py")
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("expected.json: {key} is not a list"))
}

/// Resolves a path of expected.json (relative to the repository root); keeps `::/dataset`.
fn resolve(rel: &str) -> String {
    repo_root().join(rel).display().to_string()
}

/// The raw text of the value of `key` in a one-line JSON object printed by photonqa, so that
/// numbers are parsed exactly with `str::parse` (e.g. `0.125`, `"inf"`).
fn raw_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!("\"{key}\":");
    let start = line.find(&pattern)? + pattern.len();
    let rest = &line[start..];
    let end = rest.find([',', '}', ']']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

fn raw_number(line: &str, key: &str) -> f64 {
    let raw =
        raw_field(line, key).unwrap_or_else(|| panic!("no \"{key}\" in photonqa output {line}"));
    parse_exact(raw)
}

fn dtype(name: &str) -> DType {
    DType::parse(name).unwrap_or_else(|e| panic!("{e}"))
}

/// The data bytes of a `.npy` file, taken from the file itself (header skipped per the format
/// spec), independently of any array library.
fn npy_payload(rel: &str) -> Vec<u8> {
    let bytes = fs::read(repo_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{rel}: not a .npy file");
    let start = match bytes[6] {
        1 => 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize,
        _ => 12 + u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
    };
    bytes[start..].to_vec()
}

fn read_fixture(rel: &str) -> Vec<u8> {
    fs::read(repo_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Bit patterns of every element (floats by their bits, integers by their value).
fn bits(a: &NdArray) -> Vec<u64> {
    match a {
        NdArray::Float32(x) => x.iter().map(|v| v.to_bits() as u64).collect(),
        NdArray::Float64(x) => x.iter().map(|v| v.to_bits()).collect(),
        NdArray::Uint8(x) => x.iter().map(|&v| v as u64).collect(),
        NdArray::Uint16(x) => x.iter().map(|&v| v as u64).collect(),
        NdArray::Int16(x) => x.iter().map(|&v| v as i64 as u64).collect(),
        other => panic!("no fixture of dtype {}", other.dtype()),
    }
}

/// Compares two arrays bit for bit; describes the first differences.
fn compare_bits(expected: &NdArray, actual: &NdArray, input: &NdArray) -> Result<(), String> {
    if expected.dtype() != actual.dtype() || expected.shape() != actual.shape() {
        return Err(format!(
            "expected {} {:?}, got {} {:?}",
            expected.dtype(),
            expected.shape(),
            actual.dtype(),
            actual.shape()
        ));
    }
    let (e, a) = (bits(expected), bits(actual));
    let (ev, av, iv) = (expected.to_f64(), actual.to_f64(), input.to_f64());
    let (ev, av, iv) = (
        ev.as_slice().unwrap(),
        av.as_slice().unwrap(),
        iv.as_slice().unwrap(),
    );
    let differing: Vec<usize> = (0..e.len()).filter(|&i| e[i] != a[i]).collect();
    if differing.is_empty() {
        return Ok(());
    }
    let examples: Vec<String> = differing
        .iter()
        .take(4)
        .map(|&i| {
            format!(
                "[{i}] input {:e}: expected {:e} (bits {:#x}), got {:e} (bits {:#x})",
                iv[i], ev[i], e[i], av[i], a[i]
            )
        })
        .collect();
    Err(format!(
        "{} of {} values differ; {}",
        differing.len(),
        e.len(),
        examples.join("; ")
    ))
}

fn build(id: &str, params: Vec<(&'static str, ParamValue)>, dtype: DType) -> Stage {
    let def = registry::find(id).unwrap_or_else(|| panic!("stage {id} is not registered"));
    let config = StageConfig {
        stage: def.id,
        params,
    };
    (def.create)(&config, StageInput { dtype })
        .unwrap_or_else(|e| panic!("cannot build stage {id} for {dtype}: {e}"))
}

fn array_stage(
    id: &str,
    params: Vec<(&'static str, ParamValue)>,
    dtype: DType,
) -> Box<dyn ArrayToArray> {
    match build(id, params, dtype) {
        Stage::ArrayToArray(codec, _) => codec,
        _ => panic!("{id} is not an array->array stage"),
    }
}

fn to_bytes_stage(id: &str, dtype: DType) -> Box<dyn ArrayToBytes> {
    match build(id, vec![], dtype) {
        Stage::ArrayToBytes(codec) => codec,
        _ => panic!("{id} is not an array->bytes stage"),
    }
}

fn bytes_stage(
    id: &str,
    params: Vec<(&'static str, ParamValue)>,
    dtype: DType,
) -> Box<dyn BytesToBytes> {
    match build(id, params, dtype) {
        Stage::BytesToBytes(codec) => codec,
        _ => panic!("{id} is not a bytes->bytes stage"),
    }
}

/// Runs `photonqa run` on a scenario; returns the lines of results.jsonl or the error printed.
fn run_scenario(dir: &Path, name: &str, scenario: &str) -> Result<Vec<String>, String> {
    let path = dir.join(format!("{name}.toml"));
    fs::write(&path, scenario).unwrap();
    let out = dir.join(format!("{name}-out"));
    let output = Command::new(env!("CARGO_BIN_EXE_photonqa"))
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .args(["--threads", "4"])
        .output()
        .expect("photonqa runs");
    if !output.status.success() {
        return Err(format!(
            "photonqa run failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(fs::read_to_string(out.join("results.jsonl"))
        .expect("results.jsonl written")
        .lines()
        .map(String::from)
        .collect())
}

/// A scenario whose only stage is Otsu thresholding (zero-below) of `source`.
fn otsu_scenario(name: &str, source: &str, chunk_slices: usize) -> String {
    format!(
        "[scenario]\nname = \"{name}\"\nchunk_slices = {chunk_slices}\n\n[input]\nsource = '{source}'\n\n\
         [[pipeline]]\nstage = \"threshold\"\nmethod = \"otsu\"\nmode = \"zero-below\"\n\n\
         [metrics]\ndistortion = [\"mse\"]\n"
    )
}

/// The Otsu threshold photonqa's runner fitted (`fitted[0].threshold` of the only row).
fn runner_threshold(
    dir: &Path,
    name: &str,
    source: &str,
    chunk_slices: usize,
) -> Result<f64, String> {
    let lines = run_scenario(dir, name, &otsu_scenario(name, source, chunk_slices))?;
    let row: Value = serde_json::from_str(&lines[0]).expect("a JSON row");
    if row["status"] != "ok" {
        return Err(format!("point failed: {}", row["error"]));
    }
    let fitted = row["fitted"][0]["threshold"]
        .as_f64()
        .ok_or("no fitted threshold")?;
    let exact = raw_number(&lines[0], "threshold");
    assert!(
        (exact - fitted).abs() <= 1e-12 * fitted.abs().max(1.0),
        "raw threshold text {exact} does not match the parsed row {fitted}"
    );
    Ok(exact)
}

/// The whole array of a source, read through photonqa.
fn read_all(source: &str) -> NdArray {
    let spec = SourceSpec::parse(source, Path::new(""), None).expect("a source");
    let src = spec.open().unwrap_or_else(|e| panic!("{e}"));
    src.read_slab(0..src.shape()[0])
        .unwrap_or_else(|e| panic!("{e}"))
}

fn min_max(a: &NdArray) -> (f64, f64) {
    a.to_f64()
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// Otsu through the library: scikit-image's histogram (`Binning`) and threshold.
fn library_threshold(a: &NdArray) -> f64 {
    let (lo, hi) = min_max(a);
    let binning = Binning::new(a.dtype(), lo, hi).unwrap_or_else(|e| panic!("{e}"));
    let mut counts = binning.zeros();
    binning.accumulate(a, &mut counts);
    otsu::threshold(&binning.finish(counts))
}

/// Number of values > `t`, from the threshold stage in binarise mode (0/1 mask).
fn foreground(a: &NdArray, t: f64) -> u64 {
    let stage = array_stage(
        "threshold",
        vec![
            ("method", ParamValue::Str("value".into())),
            ("value", ParamValue::Float(t)),
            ("mode", ParamValue::Str("binarise".into())),
            ("fill", ParamValue::Float(0.0)),
        ],
        a.dtype(),
    );
    match stage.encode(a.clone()).expect("binarise encodes") {
        NdArray::Uint8(mask) => mask.iter().map(|&v| v as u64).sum(),
        other => panic!("binarise gave {}", other.dtype()),
    }
}

/// Checks one Otsu case through the runner and the library against scikit-image.
fn check_otsu_case(case: &Value, dir: &Path, fails: &mut Failures) {
    let name = str_field(case, "name");
    let source = resolve(str_field(case, "source"));
    let want = float_field(case, "threshold");
    let array = read_all(&source);
    let (lo, hi) = min_max(&array);
    fails.check(
        array.dtype() == dtype(str_field(case, "dtype"))
            && lo == float_field(case, "min")
            && hi == float_field(case, "max"),
        || format!("{name}: input is not the array the fixture was made from"),
    );
    let library = library_threshold(&array);
    fails.check(library.to_bits() == want.to_bits(), || {
        format!(
            "{name}: Binning + otsu::threshold gave {library:?}, skimage threshold_otsu {want:?}"
        )
    });
    // Many chunks on several threads, as a volume is processed in practice.
    let chunk_slices = (array.shape()[0] / 16).max(1);
    let hint = if library.to_bits() == want.to_bits() {
        " (the in-memory library path agrees with skimage: the difference comes from the runner's \
         chunked, multi-threaded reading or merging)"
    } else {
        ""
    };
    match runner_threshold(dir, &format!("otsu-{name}"), &source, chunk_slices) {
        Ok(got) => fails.check(got.to_bits() == want.to_bits(), || {
            format!(
                "{name} ({}): photonqa run fitted threshold {got:?}, skimage threshold_otsu {want:?}{hint}",
                str_field(case, "dtype")
            )
        }),
        Err(e) => fails.check(false, || format!("{name}: photonqa run: {e}{hint}")),
    }
    let (fg, want_fg) = (foreground(&array, want), int_field(case, "foreground"));
    fails.check(fg == want_fg, || {
        format!("{name}: {fg} values > {want:?} after binarise, numpy count_nonzero(image > t) = {want_fg}")
    });
}

// ------------------------------------------------------------------------------------------------
// a. Otsu

#[test]
fn otsu_threshold_is_bit_identical_to_scikit_image() {
    let exp = expected();
    let dir = tempfile::tempdir().unwrap();
    let mut fails = Failures::default();
    let cases = list(&exp, "otsu");
    assert!(
        cases.len() >= 8,
        "expected.json lists {} Otsu cases",
        cases.len()
    );
    for case in cases {
        check_otsu_case(case, dir.path(), &mut fails);
    }
    fails.finish("Otsu threshold vs skimage.filters.threshold_otsu");
}

/// scikit-image returns the value of a constant image (`threshold_otsu` checks
/// `np.all(image == first_pixel)` before any histogram); otsu.rs says it does the same.
#[test]
fn otsu_of_a_constant_float_image_is_its_value() {
    let exp = expected();
    let dir = tempfile::tempdir().unwrap();
    let mut fails = Failures::default();
    check_otsu_case(&exp["otsu_constant"], dir.path(), &mut fails);
    fails.finish("Otsu threshold of a constant float32 image vs skimage");
}

/// With fewer than 256 float32 ULPs between min and max, np.histogram (inside
/// `threshold_otsu`) raises "Too many bins for data range"; photonqa must not silently report a
/// threshold from degenerate bins either.
#[test]
fn otsu_refuses_a_float_range_narrower_than_256_bins_like_scikit_image() {
    let exp = expected();
    let case = &exp["otsu_below_256_ulps"];
    let dir = tempfile::tempdir().unwrap();
    let source = resolve(str_field(case, "source"));
    let result = runner_threshold(dir.path(), "otsu-below-256-ulps", &source, 5);
    assert!(
        result.is_err(),
        "skimage threshold_otsu raises ({}) on this {}-ULP range, but photonqa run fitted threshold {:?}",
        str_field(case, "peer_error"),
        int_field(case, "ulps_in_range"),
        result.unwrap()
    );
}

// ------------------------------------------------------------------------------------------------
// b. Real data (reference-data/tooth.h5)

#[test]
fn real_tomography_projections_match_scikit_image_and_numcodecs() {
    let exp = expected();
    let tooth = &exp["shared_tooth"];
    let path = fs::canonicalize(repo_root().join(str_field(tooth, "file"))).unwrap();
    let source = format!("{}::{}", path.display(), str_field(tooth, "dataset"));
    let mut fails = Failures::default();

    let array = read_all(&source);
    let (lo, hi) = min_max(&array);
    let shape: Vec<u64> = list(tooth, "shape")
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(
        array.dtype() == dtype(str_field(tooth, "dtype"))
            && array
                .shape()
                .iter()
                .map(|&d| d as u64)
                .eq(shape.iter().copied())
            && lo == float_field(tooth, "min")
            && hi == float_field(tooth, "max"),
        "{source} is not the file the fixtures were made from (sha256 {}): {} {:?} min {lo} max {hi}",
        str_field(tooth, "sha256"),
        array.dtype(),
        array.shape()
    );

    let dir = tempfile::tempdir().unwrap();
    let want = float_field(tooth, "threshold");
    match runner_threshold(dir.path(), "tooth-otsu", &source, 16) {
        Ok(got) => fails.check(got.to_bits() == want.to_bits(), || {
            format!("tooth: photonqa run fitted threshold {got:?}, skimage threshold_otsu {want:?}")
        }),
        Err(e) => fails.check(false, || format!("tooth: photonqa run: {e}")),
    }
    let fg = foreground(&array, want);
    fails.check(fg == int_field(tooth, "foreground"), || {
        format!(
            "tooth: {fg} values > threshold, numpy {}",
            int_field(tooth, "foreground")
        )
    });

    let rounds = list(tooth, "bitround");
    let keepbits: Vec<String> = rounds
        .iter()
        .map(|r| int_field(r, "keepbits").to_string())
        .collect();
    let scenario = format!(
        "[scenario]\nname = \"tooth-bitround\"\nchunk_slices = 16\n\n[input]\nsource = '{source}'\n\n\
         [[pipeline]]\nstage = \"bitround\"\nkeepbits = {{ sweep = [{}] }}\n\n\
         [metrics]\ndistortion = [\"mse\", \"rmse\", \"psnr\", \"max_abs_error\", \"mean_error\", \
         \"nrmse\", \"snr\", \"pearson\", \"max_rel_error\"]\n",
        keepbits.join(", ")
    );
    let lines = run_scenario(dir.path(), "tooth-bitround", &scenario)
        .unwrap_or_else(|e| panic!("tooth bitround: {e}"));
    for round in rounds {
        let k = int_field(round, "keepbits");
        let line = lines.iter().find(|line| {
            let row: Value = serde_json::from_str(line).unwrap();
            row["pipeline"][0]["keepbits"].as_u64() == Some(k)
        });
        let Some(line) = line else {
            fails.check(false, || {
                format!("tooth bitround keepbits={k}: no result row")
            });
            continue;
        };
        let label = format!("tooth bitround keepbits={k}");
        check_metrics(&label, line, round, false, &mut fails);
        check_point_metrics(&label, line, round, false, &mut fails);
    }
    fails.finish("real data reference-data/tooth.h5 vs skimage + numcodecs");
}

// ------------------------------------------------------------------------------------------------
// c. Distortion metrics

/// The tolerance for mean_error (see the module documentation).
fn mean_error_tolerance(want: f64, mean_abs_error: f64) -> f64 {
    REL_TOL * want.abs() + 1e-9 * mean_abs_error
}

/// How one value printed by photonqa is compared with the peer's.
#[derive(Clone, Copy)]
enum Tol {
    /// Bit-identical.
    Exact,
    /// `|got - want| <= tol * |want|`.
    Rel(f64),
    /// `|got - want| <= tol`.
    Abs(f64),
}

impl Tol {
    fn accepts(self, got: f64, want: f64) -> bool {
        match self {
            Tol::Exact => got.to_bits() == want.to_bits(),
            Tol::Rel(tol) => got == want || (got - want).abs() <= tol * want.abs(),
            Tol::Abs(tol) => (got - want).abs() <= tol,
        }
    }

    fn describe(self, got: f64, want: f64) -> String {
        if got.is_nan() {
            return "NaN is never a valid value".into();
        }
        match self {
            Tol::Exact => "must be bit-identical".into(),
            Tol::Rel(tol) => format!(
                "relative difference {:.2e} > {tol:.0e}",
                ((got - want) / want).abs()
            ),
            Tol::Abs(tol) => format!("difference {:.2e} > {tol:.2e}", (got - want).abs()),
        }
    }
}

/// Compares the value of `key` in a line of photonqa JSON output with the peer's `want` (one
/// message per key: expected, peer, actual). Infinite peer values must be the exact strings
/// "inf" / "-inf"; an absent key, NaN or a non-number is reported as such.
fn check_key(
    label: &str,
    line: &str,
    key: &str,
    want: f64,
    peer: &str,
    tol: Tol,
    fails: &mut Failures,
) {
    let Some(raw) = raw_field(line, key) else {
        fails.check(false, || {
            format!("{label}: {key}: expected {want:?} ({peer}), got nothing (no \"{key}\" key in photonqa's output)")
        });
        return;
    };
    if want.is_infinite() {
        let string = if want > 0.0 { "\"inf\"" } else { "\"-inf\"" };
        fails.check(raw == string, || {
            format!("{label}: {key}: expected the string {string} ({peer}), got {raw}")
        });
        return;
    }
    match raw.trim_matches('"').parse::<f64>() {
        Ok(got) => fails.check(tol.accepts(got, want), || {
            format!(
                "{label}: {key}: expected {want:?} ({peer}), got {raw} ({})",
                tol.describe(got, want)
            )
        }),
        Err(_) => fails.check(false, || {
            format!("{label}: {key}: expected {want:?} ({peer}), got {raw} (not a number)")
        }),
    }
}

/// Compares the metrics in one line of photonqa JSON output with the peer's values.
fn check_metrics(
    label: &str,
    line: &str,
    want: &Value,
    with_range_and_count: bool,
    fails: &mut Failures,
) {
    let mean_error = float_field(want, "mean_error");
    let mean_error_tol = mean_error_tolerance(mean_error, float_field(want, "mean_abs_error"));
    let mut keys = vec![
        ("mse", "skimage mean_squared_error", Tol::Rel(REL_TOL)),
        ("rmse", "numpy", Tol::Rel(REL_TOL)),
        ("psnr", "skimage peak_signal_noise_ratio", Tol::Rel(REL_TOL)),
        ("max_abs_error", "numpy", Tol::Exact),
        ("mean_error", "numpy", Tol::Abs(mean_error_tol)),
    ];
    if with_range_and_count {
        keys.push(("data_range", "max - min or --data-range", Tol::Exact));
    }
    for (key, peer, tol) in keys {
        check_key(label, line, key, float_field(want, key), peer, tol, fails);
    }
    if with_range_and_count {
        let count = int_field(want, "count") as f64;
        check_key(label, line, "count", count, "numpy size", Tol::Exact, fails);
    }
}

/// Compares nrmse, snr, pearson and max_rel_error in one line of photonqa JSON output with the
/// peers' values (see the module documentation for the tolerances).
fn check_point_metrics(
    label: &str,
    line: &str,
    want: &Value,
    data_range_given: bool,
    fails: &mut Failures,
) {
    let nrmse_peer = if data_range_given {
        "numpy rmse / R"
    } else {
        "skimage normalized_root_mse(normalization='min-max')"
    };
    let pearson_peer = want["pearson_note"]
        .as_str()
        .unwrap_or("scipy pearsonr on float64");
    let max_rel_peer = format!(
        "numpy max |e| / max(|x|, floor), floor {}",
        str_field(want, "max_rel_floor")
    );
    let keys = [
        ("nrmse", nrmse_peer, Tol::Rel(REL_TOL)),
        ("snr", "numpy 10 log10(var(x) / mse)", Tol::Rel(REL_TOL)),
        ("pearson", pearson_peer, Tol::Abs(PEARSON_TOL)),
        ("max_rel_error", &max_rel_peer, Tol::Rel(MAX_REL_TOL)),
    ];
    for (key, peer, tol) in keys {
        check_key(label, line, key, float_field(want, key), peer, tol, fails);
    }
}

/// The arguments of `photonqa metrics` for one distortion case.
fn metrics_args(case: &Value) -> Vec<String> {
    let mut args = vec![
        "metrics".to_string(),
        resolve(str_field(case, "original")),
        resolve(str_field(case, "decoded")),
        "--json".to_string(),
    ];
    if let Some(range) = case["data_range_arg"].as_str() {
        args.extend(["--data-range".to_string(), range.to_string()]);
    }
    if let Some(floor) = case["max_rel_floor_arg"].as_str() {
        args.extend(["--max-rel-floor".to_string(), floor.to_string()]);
    }
    args
}

#[test]
fn distortion_metrics_match_scikit_image_and_numpy() {
    let exp = expected();
    let mut fails = Failures::default();
    let cases = list(&exp, "distortion");
    assert!(
        cases
            .iter()
            .any(|c| str_field(c, "original").contains("::/")),
        "no HDF5 input case"
    );
    assert!(
        cases.iter().any(|c| c["max_rel_floor_arg"].is_string()),
        "no --max-rel-floor case"
    );
    for case in cases {
        let name = str_field(case, "name");
        let args = metrics_args(case);
        let output = Command::new(env!("CARGO_BIN_EXE_photonqa"))
            .args(&args)
            .output()
            .expect("photonqa runs");
        if !output.status.success() {
            fails.check(false, || {
                format!(
                    "{name}: `photonqa {}` failed ({}): {}",
                    args.join(" "),
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                )
            });
            continue;
        }
        let stdout = String::from_utf8(output.stdout).unwrap();
        let line = stdout.trim();
        let json: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{name}: photonqa metrics --json printed {line}: {e}"));
        assert!(json.is_object(), "{name}: not a JSON object: {line}");
        let want = &case["expected"];
        check_metrics(name, line, want, true, &mut fails);
        let range_given = case["data_range_arg"].is_string();
        check_point_metrics(name, line, want, range_given, &mut fails);
        let floor = float_field(want, "max_rel_floor");
        let peer = "--max-rel-floor, else 1e-3 x data_range";
        let tol = Tol::Rel(MAX_REL_TOL);
        check_key(name, line, "max_rel_floor", floor, peer, tol, &mut fails);
        check_error_histogram(name, &json, want, &mut fails);
        check_autocorrelation(name, &json, want, &mut fails);
        check_ks_test(name, &json, want, &case["dtype"], &mut fails);
    }
    fails.finish("photonqa metrics vs skimage.metrics + scipy.stats + numpy");
}

/// A number of photonqa's JSON (serde_json parses correctly rounded with `float_roundtrip`),
/// or the non-finite strings.
fn number(v: &Value) -> f64 {
    match v {
        Value::String(s) => parse_exact(s),
        _ => v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")),
    }
}

/// Relative tolerance on the error moments (mean, std, skewness, kurtosis) and the density:
/// photonqa sums with compensation and merges with Pébay's formulas, NumPy and SciPy sum
/// pairwise; largest deviation seen 2e-15 relative (skewness, kurtosis: 1.1e-15 absolute).
const MOMENT_TOL: f64 = 1e-12;

/// Absolute tolerance on the lag-1 autocorrelation (Chan co-moments vs numpy.corrcoef; largest
/// deviation seen 6.2e-17).
const AUTOCORRELATION_TOL: f64 = 1e-12;

/// The error histogram against numpy.histogram over the same edges (bit-identical edges, exact
/// counts) and the moments against NumPy/SciPy.
fn check_error_histogram(name: &str, got: &Value, want: &Value, fails: &mut Failures) {
    let (want, got) = (&want["error_histogram"], &got["error_histogram"]);
    if want.is_null() {
        fails.check(got["skipped"].is_string(), || {
            format!("{name}: error_histogram without a data range must be skipped, got {got}")
        });
        return;
    }
    let floats = |v: &Value, key: &str| -> Vec<f64> {
        v[key]
            .as_array()
            .map_or(vec![], |a| a.iter().map(number).collect())
    };
    let exact = floats(want, "edges") == floats(got, "edges");
    fails.check(exact, || {
        format!("{name}: error_histogram edges differ from numpy's")
    });
    for key in ["counts", "below", "above", "exact_zero"] {
        fails.check(want[key] == got[key], || {
            format!(
                "{name}: error_histogram.{key}: numpy.histogram {}, photonqa {}",
                want[key], got[key]
            )
        });
    }
    let (want_density, got_density) = (floats(want, "density"), floats(got, "density"));
    let close = |a: f64, b: f64| (a - b).abs() <= MOMENT_TOL * a.abs().max(b.abs());
    let density_ok = want_density.len() == got_density.len()
        && want_density
            .iter()
            .zip(&got_density)
            .all(|(a, b)| close(*a, *b));
    fails.check(density_ok, || {
        format!("{name}: error_histogram.density differs")
    });
    for key in ["mean", "std", "skewness", "kurtosis"] {
        let ok = match (&want[key], &got[key]) {
            (Value::Null, Value::Null) => true,
            (w, g) if !w.is_null() && !g.is_null() => {
                let (w, g) = (number(w), number(g));
                // The mean of signed errors cancels: scale its tolerance by the error spread.
                let scale = if key == "mean" {
                    number(&want["std"])
                } else {
                    1.0
                };
                (w - g).abs() <= MOMENT_TOL * w.abs().max(g.abs()).max(scale)
            }
            _ => false,
        };
        fails.check(ok, || {
            format!(
                "{name}: error_histogram.{key}: numpy/scipy {}, photonqa {}",
                want[key], got[key]
            )
        });
    }
}

/// The lag-1 autocorrelation per axis against numpy.corrcoef (null where undefined).
fn check_autocorrelation(name: &str, got: &Value, want: &Value, fails: &mut Failures) {
    let (want, got) = (
        &want["error_autocorrelation"],
        &got["error_autocorrelation"],
    );
    let axes = want
        .as_object()
        .expect("error_autocorrelation is an object");
    fails.check(got.as_object().map(|o| o.len()) == Some(axes.len()), || {
        format!("{name}: error_autocorrelation has axes {got}, numpy {want}")
    });
    for (axis, w) in axes {
        let ok = match (w, &got[axis]) {
            (Value::Null, Value::Null) => true,
            (w, g) if !w.is_null() && !g.is_null() => {
                (number(w) - number(g)).abs() <= AUTOCORRELATION_TOL
            }
            _ => false,
        };
        fails.check(ok, || {
            format!(
                "{name}: error_autocorrelation.{axis}: numpy {w}, photonqa {}",
                got[axis]
            )
        });
    }
}

/// Relative tolerance on the KS p-value against SciPy's `kstwo` at the fixtures' sizes
/// (effective n 21 to 1800), where Stephens' asymptotic formula is least accurate: largest
/// deviation seen 7 % at n_e = 50; below 1e-10 the p-values are compared absolutely.
const KS_SMALL_N_TOL: f64 = 0.1;

/// The KS statistic: exact (bit-identical) for integer inputs; for floats SciPy's exact value
/// must lie within photonqa's `[statistic, statistic_upper_bound]`.
fn check_ks_test(name: &str, got: &Value, want: &Value, dtype: &Value, fails: &mut Failures) {
    let (want, got) = (&want["ks_test"], &got["ks_test"]);
    let d = float_field(want, "statistic");
    let (low, high) = (
        number(&got["statistic"]),
        number(&got["statistic_upper_bound"]),
    );
    let integer = !dtype.as_str().unwrap_or_default().starts_with("float");
    if integer {
        fails.check(got["exact"] == true && low == d && high == d, || {
            format!("{name}: ks_test on integers must be exact: scipy D = {d}, photonqa {got}")
        });
    } else {
        fails.check(low <= d && d <= high, || {
            format!("{name}: ks_test: scipy D = {d} outside photonqa's bounds [{low}, {high}]")
        });
    }
    let n_e = float_field(want, "effective_n");
    fails.check(number(&got["effective_n"]) == n_e, || {
        format!(
            "{name}: ks_test.effective_n: {n_e} expected, photonqa {}",
            got["effective_n"]
        )
    });
    let (p, p_want) = (number(&got["p_value"]), float_field(want, "p_value"));
    // photonqa's p-value belongs to its lower-bound D: compare only where D is exact.
    if low == d {
        let ok = (p - p_want).abs() <= KS_SMALL_N_TOL * p_want + 1e-10;
        fails.check(ok, || {
            format!("{name}: ks_test.p_value: scipy {p_want}, photonqa {p}")
        });
    }
}

/// `photonqa analyze` against scikit-image (thresholds), NumPy (classes, faces) and
/// scipy.ndimage.label (pores): thresholds bit-identical, every count exact, fractions,
/// porosity and specific surface bit-identical (the same integer ratios), the mean equivalent
/// diameter within 1e-12 relative (summation order).
#[test]
fn analyze_matches_scikit_image_and_scipy_label() {
    let exp = expected();
    let mut fails = Failures::default();
    for case in list(&exp, "analyze") {
        let (input, method) = (str_field(case, "input"), str_field(case, "method"));
        let connectivity = str_field(case, "connectivity");
        let label = format!("{input} {method} {connectivity}");
        let args = [
            "analyze",
            &resolve(input),
            "--json",
            "--method",
            method,
            "--connectivity",
            connectivity,
        ];
        let output = Command::new(env!("CARGO_BIN_EXE_photonqa"))
            .args(args)
            .output()
            .expect("photonqa runs");
        assert!(
            output.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let got: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
        let want = &case["expected"];
        let floats = |v: &Value| -> Vec<f64> {
            v.as_array()
                .map_or(vec![], |a| a.iter().map(number).collect())
        };
        for key in ["otsu_threshold", "porosity", "specific_surface"] {
            fails.check(number(&got[key]) == float_field(want, key), || {
                format!("{label}: {key}: peer {}, photonqa {}", want[key], got[key])
            });
        }
        for key in ["thresholds", "fractions"] {
            fails.check(floats(&got[key]) == floats(&want[key]), || {
                format!("{label}: {key}: peer {}, photonqa {}", want[key], got[key])
            });
        }
        for key in ["pore_count", "pores_touching_border", "pore_sizes"] {
            fails.check(got[key] == want[key], || {
                format!("{label}: {key}: scipy {}, photonqa {}", want[key], got[key])
            });
        }
        let (d, e) = (
            number(&got["diameter_mean"]),
            float_field(want, "diameter_mean"),
        );
        fails.check((d - e).abs() <= 1e-12 * e.abs(), || {
            format!("{label}: diameter_mean: numpy {e}, photonqa {d}")
        });
    }
    fails.finish("photonqa analyze vs skimage + scipy.ndimage.label");
}

/// Relative tolerance of the KS p-value at the sizes of real volumes (n_e from 2e4 to 5e8):
/// Stephens' formula against SciPy's exact `kstwo.sf`; largest deviation seen 0.9 % (n_e = 2e4,
/// p = 7e-6), 0.03 % at n_e = 5e8.
const KS_TOL: f64 = 0.01;

#[test]
fn ks_p_value_matches_scipy_kstwo_at_volume_sizes() {
    let exp = expected();
    let mut fails = Failures::default();
    for row in list(&exp, "ks_p_value") {
        let (d, n_e, want) = (
            float_field(row, "d"),
            float_field(row, "effective_n"),
            float_field(row, "p_value"),
        );
        let got = photonqa::metrics::ks::p_value(d, n_e);
        fails.check((got / want - 1.0).abs() <= KS_TOL, || {
            format!("D = {d}, n_e = {n_e}: scipy kstwo.sf {want}, photonqa {got}")
        });
    }
    fails.finish("KS p-value vs scipy.stats.kstwo");
}

// ------------------------------------------------------------------------------------------------
// d. Stages

#[test]
fn bitround_is_bit_identical_to_numcodecs() {
    let exp = expected();
    let mut fails = Failures::default();
    for case in list(&exp, "bitround") {
        let dt = dtype(str_field(case, "dtype"));
        let input = common::load_npy(str_field(case, "input"), dt);
        let outputs = common::load_npy(str_field(case, "output"), dt);
        for (row, k) in list(case, "keepbits").iter().enumerate() {
            let k = k.as_i64().unwrap();
            let stage = array_stage("bitround", vec![("keepbits", ParamValue::Int(k))], dt);
            let got = stage.encode(input.clone()).expect("bitround encodes");
            let want = match &outputs {
                NdArray::Float32(o) => o.index_axis(ndarray::Axis(0), row).to_owned().into_nd(),
                NdArray::Float64(o) => o.index_axis(ndarray::Axis(0), row).to_owned().into_nd(),
                _ => unreachable!(),
            };
            if let Err(e) = compare_bits(&want, &got, &input) {
                fails.check(false, || format!("{dt} keepbits={k}: {e}"));
            }
            let decoded = stage
                .decode(got.clone(), got.shape())
                .expect("bitround decodes");
            fails.check(bits(&decoded) == bits(&got), || {
                format!("{dt} keepbits={k}: decode is not the identity")
            });
        }
    }
    fails.finish("bitround vs numcodecs.BitRound");
}

fn quantize_stage(case: &Value, input: DType) -> Box<dyn ArrayToArray> {
    let params = &case["params"];
    let range = list(params, "range");
    let (lo, hi) = (
        parse_exact(range[0].as_str().unwrap()),
        parse_exact(range[1].as_str().unwrap()),
    );
    array_stage(
        "quantize",
        vec![
            ("dtype", ParamValue::Str(str_field(params, "dtype").into())),
            ("bits", ParamValue::Int(int_field(params, "bits") as i64)),
            ("range", ParamValue::Interval([lo, hi])),
        ],
        input,
    )
}

/// The levels and the decoded values of `quantize` equal the formula documented in
/// src/pipeline/stages/quantize.rs evaluated by NumPy in float64 (inputs chosen without exact
/// .5 ties; see the next test for ties).
#[test]
fn quantize_matches_its_documented_formula_in_numpy() {
    let exp = expected();
    let mut fails = Failures::default();
    for case in list(&exp, "quantize") {
        let name = str_field(case, "name");
        let dt = dtype(str_field(case, "dtype"));
        let qt = dtype(str_field(&case["params"], "dtype"));
        let input = common::load_npy(str_field(case, "input"), dt);
        let stage = quantize_stage(case, dt);
        let levels = stage.encode(input.clone()).expect("quantize encodes");
        if let Err(e) = compare_bits(
            &common::load_npy(str_field(case, "levels"), qt),
            &levels,
            &input,
        ) {
            fails.check(false, || format!("{name}: levels: {e}"));
        }
        let decoded = stage
            .decode(levels, input.shape())
            .expect("quantize decodes");
        if let Err(e) = compare_bits(
            &common::load_npy(str_field(case, "decoded"), dt),
            &decoded,
            &input,
        ) {
            fails.check(false, || {
                format!(
                    "{name}: decoded: {e} (numpy computes lo + q * (hi - lo) / L as documented; the fixture \
                     records {} values that differ when evaluated as lo + q / (L / (hi - lo)))",
                    int_field(case, "decoded_differing_with_scale_first")
                )
            });
        }
    }
    fails.finish("quantize vs its documented formula in numpy float64");
}

/// Exact .5 ties: photonqa rounds half to even, as NumPy's `np.round` (and numcodecs) do; the
/// fixture also holds the half-away-from-zero levels to prove it contains ties where the rules
/// differ.
#[test]
fn quantize_rounds_exact_ties_half_to_even_like_numpy() {
    let exp = expected();
    let case = &exp["quantize_ties"];
    let input = common::load_npy(str_field(case, "input"), DType::Float32);
    let levels = quantize_stage(case, DType::Float32)
        .encode(input.clone())
        .expect("quantize encodes");
    let away = common::load_npy(str_field(case, "levels_half_away_from_zero"), DType::Uint8);
    let even = common::load_npy(str_field(case, "levels_numpy_half_even"), DType::Uint8);
    assert_ne!(
        bits(&away),
        bits(&even),
        "the fixture must contain ties where the rules differ"
    );
    if let Err(e) = compare_bits(&even, &levels, &input) {
        panic!("quantize ties: {e}");
    }
}

/// The `bytes` stage packs exactly the little-endian bytes NumPy wrote to the .npy file.
fn check_bytes_stage(name: &str, input: &NdArray, payload: &[u8], fails: &mut Failures) {
    let packed = to_bytes_stage("bytes", input.dtype())
        .encode(input)
        .expect("bytes encodes");
    fails.check(packed == payload, || {
        format!("{name}: bytes stage output differs from numpy's tobytes() in the .npy file")
    });
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    if a.len() != b.len() {
        return format!("lengths {} and {}", a.len(), b.len());
    }
    let i = (0..a.len()).find(|&i| a[i] != b[i]).unwrap_or(0);
    let count = (0..a.len()).filter(|&i| a[i] != b[i]).count();
    format!(
        "{count} of {} bytes differ, first at offset {i}: expected {:#04x}, got {:#04x}",
        a.len(),
        a[i],
        b[i]
    )
}

/// Checks a bytes->bytes stage against a raw HDF5 chunk made by the peer filter.
fn check_against_chunks(family: &str, stage_id: &str, exp: &Value) {
    let mut fails = Failures::default();
    for case in list(exp, family) {
        let name = str_field(case, "name");
        let dt = dtype(str_field(case, "dtype"));
        let payload = npy_payload(str_field(case, "input"));
        let input = common::load_npy(str_field(case, "input"), dt);
        check_bytes_stage(name, &input, &payload, &mut fails);
        let chunk = read_fixture(str_field(case, "chunk"));
        let stage = bytes_stage(stage_id, vec![], dt);
        let encoded = stage.encode(&payload).expect("encodes");
        fails.check(encoded == chunk, || {
            format!(
                "{name} ({dt}, {} bytes): {stage_id} encode vs HDF5 raw chunk: {}",
                payload.len(),
                first_difference(&chunk, &encoded)
            )
        });
        let decoded = stage.decode(&chunk).expect("decodes");
        fails.check(decoded == payload, || {
            format!(
                "{name} ({dt}): {stage_id} decode of the HDF5 chunk: {}",
                first_difference(&payload, &decoded)
            )
        });
    }
    fails.finish(&format!(
        "{stage_id} vs the HDF5 filter ({family} fixtures)"
    ));
}

#[test]
fn shuffle_is_byte_identical_to_hdf5_shuffle_filter() {
    check_against_chunks("shuffle", "shuffle", &expected());
}

/// hdf5plugin `Bitshuffle(nelems=0, cname='none')` (filter 32008): with no compressor the
/// filter writes no header (the 12-byte header, u64 BE size + u32 BE block bytes, comes only
/// with lz4/zstd; checked when the fixtures are made), so the raw chunk is the shuffled data.
#[test]
fn bitshuffle_is_byte_identical_to_hdf5plugin_bitshuffle() {
    let exp = expected();
    for case in list(&exp, "bitshuffle") {
        assert_eq!(
            int_field(case, "header_bytes"),
            0,
            "fixture {}",
            str_field(case, "name")
        );
    }
    let sizes: Vec<u64> = list(&exp, "bitshuffle")
        .iter()
        .map(|c| int_field(c, "element_size"))
        .collect();
    assert!(
        [1, 2, 4, 8].iter().all(|s| sizes.contains(s)),
        "element sizes {sizes:?}"
    );
    check_against_chunks("bitshuffle", "bitshuffle", &exp);
}

/// Decodes every peer-made stream of `family` with photonqa's stage.
fn check_decodes_peer_streams(family: &str, stage: &dyn BytesToBytes) {
    let exp = expected();
    let mut fails = Failures::default();
    let cases = list(&exp, family);
    assert!(!cases.is_empty());
    for case in cases {
        let name = str_field(case, "name");
        let payload = read_fixture(str_field(case, "payload"));
        let stream = read_fixture(str_field(case, "stream"));
        match stage.decode(&stream) {
            Ok(decoded) => fails.check(decoded == payload, || {
                format!(
                    "{name} ({}): decoded {}",
                    str_field(case, "call"),
                    first_difference(&payload, &decoded)
                )
            }),
            Err(e) => fails.check(false, || {
                format!("{name} ({}): {e}", str_field(case, "call"))
            }),
        }
    }
    fails.finish(&format!(
        "photonqa {family} decoding streams made by the Python peer"
    ));
}

fn payloads() -> Vec<(String, Vec<u8>)> {
    let exp = expected();
    let mut names: Vec<&str> = list(&exp, "deflate")
        .iter()
        .map(|c| str_field(c, "payload"))
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|p| (p.to_string(), read_fixture(p)))
        .collect()
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + byte as u32) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

#[test]
fn deflate_decodes_python_zlib_streams() {
    let stage = bytes_stage("deflate", vec![("level", ParamValue::Int(6))], DType::Uint8);
    check_decodes_peer_streams("deflate", stage.as_ref());
}

/// photonqa's deflate output is a valid zlib stream (RFC 1950 header and Adler-32 of the input,
/// checked here by hand) that flate2's decoder reads back (internal: same backend).
#[test]
fn deflate_output_is_a_valid_zlib_stream() {
    let mut fails = Failures::default();
    for (name, payload) in payloads() {
        for level in 0..=9 {
            let stage = bytes_stage(
                "deflate",
                vec![("level", ParamValue::Int(level))],
                DType::Uint8,
            );
            let stream = stage.encode(&payload).expect("deflate encodes");
            let (cmf, flg) = (stream[0], stream[1]);
            fails.check(
                cmf & 0x0f == 8
                    && cmf >> 4 <= 7
                    && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
                    && flg & 0x20 == 0,
                || format!("{name} level {level}: bad zlib header {cmf:#04x} {flg:#04x}"),
            );
            let trailer = u32::from_be_bytes(stream[stream.len() - 4..].try_into().unwrap());
            fails.check(trailer == adler32(&payload), || {
                format!(
                    "{name} level {level}: Adler-32 trailer {trailer:#010x}, input's {:#010x}",
                    adler32(&payload)
                )
            });
            let mut decoded = Vec::new();
            flate2::read::ZlibDecoder::new(stream.as_slice())
                .read_to_end(&mut decoded)
                .expect("flate2 decodes");
            fails.check(decoded == payload, || {
                format!("{name} level {level}: flate2 decoded other bytes")
            });
        }
    }
    fails.finish("photonqa deflate output");
}

#[test]
fn zstd_decodes_python_zstandard_frames() {
    let stage = bytes_stage("zstd", vec![("level", ParamValue::Int(3))], DType::Uint8);
    check_decodes_peer_streams("zstd", stage.as_ref());
    for (name, payload) in payloads() {
        let frame = stage.encode(&payload).expect("zstd encodes");
        assert_eq!(
            frame[..4],
            [0x28, 0xB5, 0x2F, 0xFD],
            "{name}: not a zstd frame (magic number)"
        );
    }
}

#[test]
fn lz4_decodes_python_lz4_blocks_with_stored_size() {
    let stage = bytes_stage("lz4", vec![], DType::Uint8);
    check_decodes_peer_streams("lz4", stage.as_ref());
    for (name, payload) in payloads() {
        let block = stage.encode(&payload).expect("lz4 encodes");
        let size = u32::from_le_bytes(block[..4].try_into().unwrap()) as usize;
        assert_eq!(
            size,
            payload.len(),
            "{name}: stored size (u32 LE, as lz4.block store_size=True)"
        );
    }
}

// ------------------------------------------------------------------------------------------------

#[test]
fn fixtures_are_small_and_carry_provenance() {
    let exp = expected();
    let provenance = &exp["provenance"];
    for key in ["date", "versions", "calls", "script"] {
        assert!(
            !provenance[key].is_null(),
            "expected.json provenance has no {key}"
        );
    }
    fn size(dir: &Path) -> u64 {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                if p.is_dir() {
                    size(&p)
                } else {
                    p.metadata().unwrap().len()
                }
            })
            .sum()
    }
    let total = size(&repo_root().join("tests/fixtures/peers"));
    assert!(
        total < 1_500_000,
        "tests/fixtures/peers holds {total} bytes (keep it under 1.5 MB)"
    );
}
