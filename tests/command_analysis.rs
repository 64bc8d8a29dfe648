//! The `command` analysis: a user program gets the original and the decoded array as `.npy`
//! files and prints JSON metrics. Checked with `cmp` (the decoded file is the original's bytes
//! exactly when the pipeline is lossless) and with NumPy (its maximum error equals photonqa's
//! `max_abs_error`); failing or malformed programs are errors of their point; bad declarations
//! are one-line scenario errors.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_one_line_error, photonqa, reference_volume, sorted_rows, text};
use serde_json::Value;

/// A scenario quantising at `bits` (a TOML value), then zstd, with `analysis` appended.
fn scenario(dir: &Path, bits: &str, analysis: &str) {
    let text = format!(
        "[scenario]\nname = \"command-analysis\"\nchunk_slices = 20\n[input]\nsource = \"{}\"\n\
         [[pipeline]]\nstage = \"bitround\"\nkeepbits = {bits}\n[[pipeline]]\nstage = \"zstd\"\n\
         [metrics]\ndistortion = [\"max_abs_error\"]\n{analysis}",
        reference_volume()
    );
    std::fs::write(dir.join("s.toml"), text).unwrap();
}

fn run_rows(dir: &Path) -> Vec<Value> {
    let _ = std::fs::remove_dir_all(dir.join("out"));
    let out = photonqa(dir, &["run", "s.toml", "--out", "out", "--allow-commands"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    sorted_rows(&dir.join("out"))
}

#[test]
fn programs_see_the_original_and_the_decoded_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // 23 kept bits of float32 is lossless: the two files are identical byte for byte.
    let cmp = "[[analysis]]\nkind = \"command\"\nrun = \"if cmp -s {original} {decoded}; then echo '{\\\"identical\\\": 1}'; else echo '{\\\"identical\\\": 0}'; fi\"\nfields = \"identical\"\n";
    scenario(dir, "{ sweep = [23, 4] }", cmp);
    let rows = run_rows(dir);
    assert_eq!(
        rows[0]["science"]["command"],
        serde_json::json!({"identical": 1})
    );
    assert_eq!(
        rows[1]["science"]["command"],
        serde_json::json!({"identical": 0})
    );
    let csv = std::fs::read_to_string(dir.join("out/results.csv")).unwrap();
    assert!(
        csv.lines().next().unwrap().contains(",command.identical,"),
        "{csv}"
    );

    let numpy = Command::new("python3")
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !numpy {
        assert!(
            std::env::var("PHOTONQA_REQUIRE_PEERS").as_deref() != Ok("1"),
            "python3 with numpy is required (PHOTONQA_REQUIRE_PEERS=1)"
        );
        println!("skipped: the NumPy half (python3 with numpy not found)");
        return;
    }
    let script = "import json, sys, numpy as np; a, b = (np.load(p).astype(np.float64) for p in sys.argv[1:]); print(json.dumps({'max_abs': float(np.abs(b - a).max()), 'shape': list(a.shape)}))";
    let analysis = format!(
        "[[analysis]]\nkind = \"command\"\nrun = \"python3 -c \\\"{script}\\\" {{original}} {{decoded}}\"\nfields = \"max_abs\"\n"
    );
    scenario(dir, "{ sweep = [3, 8] }", &analysis);
    for row in run_rows(dir) {
        let science = &row["science"]["command"];
        assert_eq!(
            science["max_abs"], row["distortion"]["max_abs_error"],
            "{row}"
        );
        assert_eq!(science["shape"], serde_json::json!([64, 128, 128]));
    }
}

#[test]
fn failing_programs_fail_their_point_and_bad_declarations_fail_the_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    for (run, message) in [
        (
            "echo broken >&2; exit 4 # {original} {decoded}",
            "(exit status: 4): broken",
        ),
        (
            "echo not json # {original} {decoded}",
            "printed no JSON object: not json",
        ),
    ] {
        scenario(
            dir,
            "10",
            &format!("[[analysis]]\nkind = \"command\"\nrun = \"{run}\"\n"),
        );
        let rows = run_rows(dir);
        assert_eq!(rows[0]["status"], "error", "{run}");
        let error = rows[0]["error"].as_str().unwrap();
        assert!(
            error.starts_with("analysis command: ") && error.contains(message),
            "{error}"
        );
    }
    for (analysis, message) in [
        (
            "[[analysis]]\nkind = \"command\"\nrun = \"true {original}\"\n",
            "analysis 'command': run must use {decoded}",
        ),
        (
            "[[analysis]]\nkind = \"command\"\n",
            "analysis 'command': `run` is required",
        ),
    ] {
        scenario(dir, "10", analysis);
        let out = photonqa(dir, &["run", "s.toml", "--out", "bad", "--allow-commands"]);
        assert_one_line_error(&out, &[message], analysis);
    }
}
