//! Helpers shared by the integration tests that run the `photonqa` binary.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::Path;
use std::process::{Command, Output};

/// A committed fixture's `expected.json` (under `tests/fixtures/<folder>`), made by `script`.
pub fn expected_json(folder: &str, script: &str) -> serde_json::Value {
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
pub fn load_npy(rel: &str, dtype: photonqa::data::DType) -> photonqa::data::NdArray {
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

/// A result row as written, with the values of its timing fields (which legitimately differ
/// between runs) blanked out. Rows are compared as text, digit for digit.
pub fn without_timing(line: &str) -> String {
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
    out
}
