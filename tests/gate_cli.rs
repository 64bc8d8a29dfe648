//! `photonqa bless` and `photonqa check` as CI runs them: an unchanged rerun passes (exit 0,
//! JUnit without failures); a changed pipeline fails (exit 1, the drifts listed, JUnit
//! failures on the moved metrics); a looser declared tolerance lets a small drift pass; bad
//! baselines and tolerances are one-line errors (exit 2).

mod common;

use std::path::Path;

use common::{assert_ok, assert_one_line_error, photonqa, reference_volume, text};

/// A scenario on the reference volume: quantize at 4 and `bits` bits, deflate at `level`, with
/// `extra` appended.
fn scenario(dir: &Path, bits: u32, level: u32, extra: &str) {
    let text = format!(
        "[scenario]\nname = \"gate\"\n[input]\nsource = \"{}\"\n\
         [[pipeline]]\nstage = \"quantize\"\ndtype = \"uint8\"\nrange = [-0.2, 1.1]\nbits = {{ sweep = [4, {bits}] }}\n\
         [[pipeline]]\nstage = \"deflate\"\nlevel = {level}\n\
         [metrics]\ndistortion = [\"mse\", \"psnr\", \"ssim\"]\n\
         [[analysis]]\nkind = \"porosity\"\nmethod = \"otsu\"\n{extra}",
        reference_volume()
    );
    std::fs::write(dir.join("s.toml"), text).unwrap();
}

/// A fresh directory with the scenario at 6 bits, level 6, blessed into `base.json`.
fn blessed() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    scenario(dir.path(), 6, 6, "");
    assert_ok(
        &photonqa(dir.path(), &["bless", "s.toml", "--baseline", "base.json"]),
        "photonqa bless",
    );
    dir
}

fn check(dir: &Path) -> std::process::Output {
    photonqa(
        dir,
        &[
            "check",
            "s.toml",
            "--baseline",
            "base.json",
            "--junit",
            "gate.xml",
        ],
    )
}

#[test]
fn check_passes_unchanged_and_fails_on_a_changed_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    scenario(dir, 6, 6, "");
    let blessed = photonqa(dir, &["bless", "s.toml", "--baseline", "base.json"]);
    assert_ok(&blessed, "photonqa bless");
    assert!(
        text(&blessed.stdout).starts_with("base.json: 2 points x "),
        "{}",
        text(&blessed.stdout)
    );

    let unchanged = check(dir);
    assert_ok(&unchanged, "photonqa check, unchanged");
    let junit = std::fs::read_to_string(dir.join("gate.xml")).unwrap();
    assert!(junit.contains("failures=\"0\""), "{junit}");
    assert!(junit.contains("<testcase name=\"psnr\""), "{junit}");
    // Timing is never gated.
    assert!(!junit.contains("encode_mb_s"), "{junit}");

    // Another deflate level: the same decoded data, other compressed sizes.
    scenario(dir, 6, 1, "");
    let changed = check(dir);
    let stdout = text(&changed.stdout);
    assert_eq!(changed.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("compressed_bytes") && stdout.contains("(quantize.bits=4)"),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("gate failed: ")),
        "{stdout}"
    );
    // Only the rate moved: the metrics of the decoded data are the same.
    assert!(!stdout.contains(": psnr "), "{stdout}");
    let junit = std::fs::read_to_string(dir.join("gate.xml")).unwrap();
    let totals = junit
        .lines()
        .find(|l| l.starts_with("<testsuites"))
        .unwrap();
    assert!(
        junit.contains("<failure") && !totals.contains("failures=\"0\""),
        "{junit}"
    );
}

#[test]
fn declared_tolerances_are_respected() {
    let dir = blessed();
    let dir = dir.path();
    // A baseline from a machine whose PSNR differs by 1e-6 relative: beyond the default
    // tolerance (1e-9), within a declared one of 1e-5.
    let path = dir.join("base.json");
    let mut baseline: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for point in baseline["points"].as_object_mut().unwrap().values_mut() {
        let psnr = point["values"]["psnr"].as_f64().unwrap();
        point["values"]["psnr"] = serde_json::json!(psnr * (1.0 + 1e-6));
    }
    std::fs::write(&path, serde_json::to_string_pretty(&baseline).unwrap()).unwrap();
    for (extra, expected) in [
        ("", 1),
        ("[gate.tolerances]\npsnr = { rel = 1e-5 }\n", 0),
        ("[gate.tolerances]\npsnr = { rel = 1e-7 }\n", 1),
    ] {
        scenario(dir, 6, 6, extra);
        let out = check(dir);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(expected), "{extra}\n{stdout}");
        if expected == 1 {
            let drifts: Vec<&str> = stdout.lines().filter(|l| l.starts_with("point ")).collect();
            assert_eq!(drifts.len(), 2, "{stdout}");
            assert!(drifts.iter().all(|l| l.contains(": psnr ")), "{stdout}");
        }
    }
}

#[test]
fn bad_baselines_and_tolerances_are_one_line_errors() {
    let dir = blessed();
    let dir = dir.path();
    let cases: [(&str, &str); 3] = [
        ("[gate.tolerances]\npsnr = { rel = -1.0 }\n", "s.toml:"),
        (
            "[gate.tolerances]\npsnrr = { rel = 1e-6 }\n",
            "[gate.tolerances] psnrr: no such gated column or metric",
        ),
        (
            "[limits]\n\"segmentation.dice\" = { min = 0.9 }\n",
            "limit on 'segmentation.dice': the results have no such column",
        ),
    ];
    for (extra, message) in cases {
        scenario(dir, 6, 6, extra);
        assert_one_line_error(&check(dir), &[message], extra);
    }
    scenario(dir, 6, 6, "");
    std::fs::write(
        dir.join("base.json"),
        "{\n  \"format_version\": 1,\n  oops\n}\n",
    )
    .unwrap();
    let malformed = check(dir);
    assert_eq!(malformed.status.code(), Some(2));
    let stderr = text(&malformed.stderr);
    assert!(
        stderr.starts_with("photonqa: base.json:3:3: malformed JSON")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
    let missing = photonqa(dir, &["check", "s.toml", "--baseline", "none.json"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing.stderr).contains("none.json: cannot read the baseline"),
        "{}",
        text(&missing.stderr)
    );
}
