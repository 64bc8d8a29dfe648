//! The `command` stage: a user program as the codec. A lossless program (gzip of the chunk's
//! .npy) round-trips exactly; a failing, hanging or misbehaving program is an error of its
//! working point with the reason, and the sweep goes on; a command without its placeholders is
//! a one-line scenario error.

mod common;

use std::path::Path;

use common::{assert_one_line_error, photonqa, reference_volume, sorted_rows, text};

const GZIP: (&str, &str) = ("gzip -c {input} > {output}", "gzip -dc {input} > {output}");

/// A scenario whose only stage is `command` with `encode` and `decode` (TOML values).
fn scenario(dir: &Path, encode: &str, decode: &str, extra: &str) {
    let text = format!(
        "[scenario]\nname = \"command\"\nchunk_slices = 32\n[input]\nsource = \"{}\"\n\
         [[pipeline]]\nstage = \"command\"\nencode = {encode}\ndecode = {decode}\n{extra}\
         [metrics]\ndistortion = [\"mse\", \"psnr\"]\n",
        reference_volume()
    );
    std::fs::write(dir.join("s.toml"), text).unwrap();
}

#[test]
fn a_lossless_program_round_trips_and_failures_are_per_point() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // Three points: gzip; a program that fails; a decoder that writes no .npy.
    let encode = format!(
        "{{ sweep = [\"{}\", \"echo no codec here >&2; exit 3 # {{input}} {{output}}\"] }}",
        GZIP.0
    );
    scenario(dir, &encode, &format!("\"{}\"", GZIP.1), "");
    let out = photonqa(dir, &["run", "s.toml", "--out", "out", "--allow-commands"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows = sorted_rows(&dir.join("out"));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["status"], "ok", "{}", rows[0]);
    assert_eq!(rows[0]["distortion"]["mse"], 0.0);
    assert_eq!(rows[0]["distortion"]["psnr"], "inf");
    let ratio = rows[0]["rate"]["ratio"].as_f64().unwrap();
    assert!(
        ratio > 1.0 && ratio < 10.0,
        "gzip of float32 noise: {ratio}"
    );
    assert_eq!(rows[1]["status"], "error");
    let error = rows[1]["error"].as_str().unwrap();
    assert!(
        error.contains("encode: `echo no codec here")
            && error.ends_with("(exit status: 3): no codec here"),
        "{error}"
    );
}

#[test]
fn hanging_and_misbehaving_programs_are_errors_of_their_point() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let quoted = |command: &str| format!("\"{command}\"");
    // The hanging program notes its pid (`exec` keeps the shell's) for each chunk it gets.
    let pids = dir.join("sleepers.pid");
    let sleeper = format!(
        "echo $$ >> {}; exec sleep 600 # {{input}} {{output}}",
        pids.display()
    );
    let cases = [
        (
            quoted(&sleeper),
            quoted(GZIP.1),
            "timeout = 0.2\n",
            "timed out after 0.2 s and was killed",
        ),
        (
            quoted(GZIP.0),
            quoted("cp {input} {output}"),
            "",
            "decode: not a .npy",
        ),
        (
            quoted("true {input} {output}"),
            quoted(GZIP.1),
            "",
            "encode: `true {input} {output}` wrote no {output}",
        ),
    ];
    for (encode, decode, extra, message) in cases {
        scenario(dir, &encode, &decode, extra);
        let _ = std::fs::remove_dir_all(dir.join("out"));
        let out = photonqa(dir, &["run", "s.toml", "--out", "out", "--allow-commands"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let rows = sorted_rows(&dir.join("out"));
        assert_eq!(rows[0]["status"], "error", "{encode}");
        let error = rows[0]["error"].as_str().unwrap();
        assert!(
            error.contains(message),
            "{encode}: expected {message:?} in {error}"
        );
    }
    // The run ended while the sleepers had ten minutes left: photonqa killed each of them.
    let pids = std::fs::read_to_string(&pids).unwrap();
    assert!(!pids.trim().is_empty(), "the hanging program never ran");
    for pid in pids.lines() {
        // A zombie ('Z', not yet reaped by init after photonqa exited) is dead too.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| stat.rsplit(") ").next().and_then(|s| s.chars().next()));
        assert!(
            state.is_none_or(|state| state == 'Z'),
            "the hanging program {pid} is still running ({state:?})"
        );
    }
}

#[test]
fn commands_need_their_placeholders() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    for (encode, decode, message) in [
        (
            "\"gzip -c\"",
            "\"gzip -dc {input} > {output}\"",
            "stage 'command': encode must use {input}",
        ),
        ("\"gzip -c {input} > {output}\"", "\"\"", "decode is empty"),
    ] {
        scenario(dir, encode, decode, "");
        let out = photonqa(dir, &["run", "s.toml", "--out", "out", "--allow-commands"]);
        assert_one_line_error(&out, &[message], encode);
    }
}

/// A sweep of variants whose every point fails still ends with its table and report (each
/// failure in its row), not a crash.
#[test]
fn a_sweep_whose_every_point_fails_still_reports() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let variant = |name: &str, code: u8| {
        format!(
            "[[variant]]\nname = \"{name}\"\n[[variant.pipeline]]\nstage = \"command\"\n\
             encode = \"exit {code} # {{input}} {{output}}\"\ndecode = \"{}\"\n",
            GZIP.1
        )
    };
    let text_ = format!(
        "[scenario]\nname = \"failing\"\nchunk_slices = 32\n[input]\nsource = \"{}\"\n{}{}",
        reference_volume(),
        variant("a", 3),
        variant("b", 4)
    );
    std::fs::write(dir.join("s.toml"), text_).unwrap();
    let out = photonqa(dir, &["run", "s.toml", "--out", "out", "--allow-commands"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows = sorted_rows(&dir.join("out"));
    assert_eq!(rows.len(), 2);
    for (row, code) in rows.iter().zip([3, 4]) {
        assert_eq!(row["status"], "error", "{row}");
        let error = row["error"].as_str().unwrap();
        assert!(error.contains(&format!("(exit status: {code})")), "{error}");
    }
    let report = std::fs::read_to_string(dir.join("out/report.html")).unwrap();
    assert!(report.contains("exit 3"), "the report shows the failure");
}
