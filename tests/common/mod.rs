//! Helpers shared by the integration tests that run the `photonqa` binary.
#![allow(dead_code)] // each test crate uses its own subset

pub mod allocation;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use photonqa::data::{DType, NdArray, SourceSpec};
use photonqa::pipeline::{Chain, ParamValue, StageConfig};
use serde_json::Value;

/// A committed fixture's `expected.json` (under `tests/fixtures/<folder>`), made by `script`.
pub fn expected_json(folder: &str, script: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(folder)
        .join("expected.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run python3 {script}", path.display()));
    serde_json::from_str(&text).expect("expected.json is valid JSON")
}

/// Loads a `.npy` fixture (path relative to the repository) with ndarray-npy, not photonqa's
/// reader.
pub fn load_npy(rel: &str, dtype: DType) -> NdArray {
    use photonqa::data::IntoNdArray;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    photonqa::with_dtype!(dtype, T => ndarray_npy::read_npy::<_, ndarray::ArrayD<T>>(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_nd())
}

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_photonqa");

/// Runs photonqa with `args` in `dir`.
pub fn photonqa(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("cannot start photonqa")
}

/// Runs photonqa with `args` in `dir` with the environment variable `key` set to `value`.
pub fn photonqa_env(dir: &Path, args: &[&str], (key, value): (&str, &str)) -> Output {
    Command::new(BIN)
        .args(args)
        .env(key, value)
        .current_dir(dir)
        .output()
        .expect("cannot start photonqa")
}

/// The names of the files (and folders) in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Command output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Panics with the expected and the actual value as blocks.
pub fn differ(what: &str, expected: &str, actual: &str) -> ! {
    panic!("{what}\n--- expected ---\n{expected}\n--- actual ---\n{actual}\n----------------");
}

/// Panics with the exit code and both output streams unless `out` is a success.
pub fn assert_ok(out: &Output, what: &str) {
    if out.status.code() != Some(0) {
        differ(
            &format!("{what} failed"),
            "exit code 0",
            &format!(
                "exit code {:?}\nstderr:\n{}stdout:\n{}",
                out.status.code(),
                text(&out.stderr),
                text(&out.stdout)
            ),
        );
    }
}

/// Asserts that `out` is a user error: exit code 2 and one line on stderr containing every one
/// of `needles` (`what` names the case in the messages).
pub fn assert_one_line_error(out: &Output, needles: &[&str], what: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{what}: expected {needle:?} in {stderr}"
        );
    }
}

/// A result row as written, without what legitimately differs between runs of one scenario:
/// the values of its timing fields (blanked out) and which point's decoded data gave its
/// metrics (`shares_decoded_with`, removed: it depends on which points a run measured
/// together). Rows are compared as text, digit for digit.
pub fn comparable(line: &str) -> String {
    let mut out = line.to_string();
    for key in ["encode_mb_s", "decode_mb_s"] {
        let tag = format!("\"{key}\":");
        let start = out
            .find(&tag)
            .unwrap_or_else(|| panic!("{key} missing in {line}"))
            + tag.len();
        let end = start + out[start..].find([',', '}']).unwrap();
        out.replace_range(start..end, "_");
    }
    if let Some(start) = out.find(",\"shares_decoded_with\":\"") {
        let value = start + ",\"shares_decoded_with\":\"".len();
        let end = value + out[value..].find('"').unwrap() + 1;
        out.replace_range(start..end, "");
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Fixtures of the cross-checks (`tests/fixtures/*/expected.json`, made by `tests/peers/*.py`).

/// The repository root (where the fixtures' recorded paths start).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The list `expected["cases"]` of a fixture's expected.json, checked to hold at least
/// `at_least` cases (`family` names them in the message).
pub fn fixture_cases<'a>(expected: &'a Value, at_least: usize, family: &str) -> &'a [Value] {
    let cases = expected["cases"]
        .as_array()
        .expect("expected.json: cases is a list");
    assert!(cases.len() >= at_least, "too few {family} fixture cases");
    cases
}

/// The string field `key` of an expected.json object.
pub fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("expected.json: {key} is not a string in {v}"))
}

/// The unsigned integer field `key` of an expected.json object.
pub fn int_field(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("expected.json: {key} is not an integer in {v}"))
}

/// A float written as Python's `repr` (surrounding JSON quotes allowed), parsed exactly.
pub fn parse_exact(s: &str) -> f64 {
    s.trim_matches('"')
        .parse()
        .unwrap_or_else(|e| panic!("'{s}' is not a float: {e}"))
}

/// The float field `key`, stored as its repr string, parsed exactly.
pub fn float_field(v: &Value, key: &str) -> f64 {
    parse_exact(str_field(v, key))
}

/// A list of floats stored as repr strings, parsed exactly.
pub fn float_list(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected.json: {v} is not a list"))
        .iter()
        .map(|s| parse_exact(s.as_str().expect("a float string")))
        .collect()
}

/// The cases of a fixture's expected.json with an original and a decoded array each (at least
/// `at_least`, see [`fixture_cases`]), made by `make(entry, name, original, decoded)`.
pub fn pair_cases<T>(
    expected: &Value,
    at_least: usize,
    family: &str,
    make: impl Fn(&Value, String, NdArray, NdArray) -> T,
) -> Vec<T> {
    fixture_cases(expected, at_least, family)
        .iter()
        .map(|c| {
            let (original, decoded) = load_pair(c);
            make(c, str_field(c, "name").to_string(), original, decoded)
        })
        .collect()
}

/// The original and decoded arrays of a fixture case (its keys `original`, `original_dtype`,
/// `decoded` and `decoded_dtype`).
pub fn load_pair(case: &Value) -> (NdArray, NdArray) {
    let load = |role: &str| {
        let dtype = DType::parse(str_field(case, &format!("{role}_dtype"))).unwrap();
        load_npy(str_field(case, role), dtype)
    };
    (load("original"), load("decoded"))
}

/// Collects mismatches so that one test reports all its failing cases at once.
#[derive(Default)]
pub struct Failures(pub Vec<String>);

impl Failures {
    /// Records `message()` unless `ok`.
    pub fn check(&mut self, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.0.push(message());
        }
    }

    /// Panics listing every recorded mismatch of `what`, if any.
    pub fn finish(self, what: &str) {
        assert!(
            self.0.is_empty(),
            "{what}: {} mismatch(es) with the peer\n  {}",
            self.0.len(),
            self.0.join("\n  ")
        );
    }
}

// ------------------------------------------------------------------------------------------------
// Runs of the committed reference volume.

/// The first `count` projections of the real APS tooth scan (`reference-data/tooth.h5`,
/// float32 counts, 2 x 640 each).
pub fn tooth_projections(count: usize) -> NdArray {
    let path = repo_root().join("reference-data/tooth.h5");
    photonqa::data::hdf5io::read_hdf5(&path, "/exchange/data")
        .unwrap()
        .slice_rows(0..count)
}

/// The committed reference volume (`reference-data/porous-tomo.h5`) as a source argument.
pub fn reference_volume() -> String {
    repo_root()
        .join("reference-data/porous-tomo.h5::/volume")
        .display()
        .to_string()
}

/// The whole reference volume, read in memory.
pub fn read_reference_volume() -> NdArray {
    let source = SourceSpec::parse(&reference_volume(), Path::new(""), None)
        .unwrap()
        .open()
        .unwrap();
    source.read_slab(0..source.shape()[0]).unwrap()
}

/// `original` after the round trip of the scenarios' quantize stage (`bits` bits over
/// [-0.2, 1.1], stored as uint8), made in memory.
pub fn quantized(original: &NdArray, bits: i64) -> NdArray {
    let stages = [StageConfig {
        stage: "quantize",
        params: vec![
            ("dtype", ParamValue::Str("uint8".into())),
            ("bits", ParamValue::Int(bits)),
            ("range", ParamValue::Interval([-0.2, 1.1])),
        ],
    }];
    let chain = Chain::build(&stages, original.dtype()).unwrap();
    std::sync::Arc::unwrap_or_clone(chain.round_trip(original).unwrap().decoded)
}

/// Writes `scenario` to `dir/<name>.toml`, runs it into `dir/<name>` on `threads` threads and
/// returns the first row of its `results.jsonl`.
pub fn run_first_row(dir: &Path, name: &str, scenario: &str, threads: &str) -> Value {
    std::fs::write(dir.join(format!("{name}.toml")), scenario).unwrap();
    let args = [
        "run",
        &format!("{name}.toml"),
        "--out",
        name,
        "--threads",
        threads,
    ];
    assert_ok(&photonqa(dir, &args), "photonqa run");
    let text = std::fs::read_to_string(dir.join(name).join("results.jsonl")).unwrap();
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

/// Runs `f` in a fresh rayon pool of `threads` threads.
pub fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// The rows of `OUT/results.jsonl` in sweep order.
pub fn sorted_rows(out: &Path) -> Vec<Value> {
    let mut rows: Vec<Value> = std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap_or_else(|e| panic!("{}: {e}", out.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    rows.sort_by_key(|r| r["index"].as_u64());
    rows
}

/// Whether `python3` runs `check` (imports of the Python peers a test needs, e.g. `import
/// numpy, h5py`); without them the test says so and skips, unless PHOTONQA_REQUIRE_PEERS=1
/// (set in CI), which makes their absence a failure. `what` names them in the message.
pub fn python_peers(check: &str, what: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", check])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("PHOTONQA_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("python3 with {what} is required (PHOTONQA_REQUIRE_PEERS=1)");
        }
        println!("skipped: python3 with {what} not found (bash .ci/setup --python)");
    }
    ok
}

/// Runs the Python program `program` (`python3 -c`) with `args` in the repository's root,
/// `stdin` as its standard input, and returns its standard output (it must succeed).
pub fn python_with_stdin(program: &str, args: &[String], stdin: &str) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new("python3")
        .args(["-c", program])
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start python3");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes())
        .expect("python3 reads its input");
    let out = child.wait_with_output().expect("python3 runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs the peer script `tests/peers/SCRIPT` with `dir` as its argument (it writes its files
/// there) and returns the JSON lines it prints (the cases it wrote).
pub fn peer_script_cases(script: &str, dir: &Path) -> Vec<Value> {
    let out = Command::new("python3")
        .arg(repo_root().join("tests/peers").join(script))
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}: {}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A scenario named `name` on `source` that validates and runs losslessly (zstd) in 2-slice
/// chunks, measuring `max_abs_error`.
pub fn lossless_scenario(name: &str, source: &str) -> String {
    format!(
        "[scenario]\nname = \"{name}\"\nchunk_slices = 2\n[input]\nsource = \"{source}\"\n\
         [[pipeline]]\nstage = \"zstd\"\nlevel = 1\n[metrics]\ndistortion = [\"max_abs_error\"]\n"
    )
}
