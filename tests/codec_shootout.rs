//! The codec shootout through the real binary: every scenario of `scenarios/codec-shootout/`
//! validates, a bound that holds reads `ok` in the table, and a bound that a codec breaks
//! (OpenJPEG's PSNR target, per plane) reads `VIOLATED: ...` in the table, the CSV and
//! `results.jsonl`, while the point itself is still measured.

mod common;

use common::{assert_ok, photonqa, reference_volume, repo_root, shared_file, text};
use serde_json::Value;

#[test]
fn every_shootout_scenario_validates() {
    let folder = repo_root().join("scenarios/codec-shootout");
    let tooth = shared_file("../shared/data/tooth.h5").is_some();
    let mut checked = 0;
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".toml") || (name.starts_with("tooth-") && !tooth) {
            continue;
        }
        assert_ok(
            &photonqa(&folder, &["validate", &name]),
            &format!("photonqa validate {name}"),
        );
        checked += 1;
    }
    assert!(checked >= 9, "only {checked} shootout scenarios validated");
}

/// Runs `pipeline` on the reference volume in a fresh directory; returns the table and rows.
fn run(pipeline: &str) -> (String, Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = format!(
        "[scenario]\nname = \"t\"\nchunk_slices = 16\n[input]\nsource = \"{}\"\n{pipeline}\n[metrics]\ndistortion = [\"psnr\", \"max_abs_error\"]\n",
        reference_volume()
    );
    std::fs::write(dir.path().join("s.toml"), scenario).unwrap();
    let out = photonqa(dir.path(), &["run", "s.toml", "--out", "out"]);
    assert_ok(&out, "photonqa run");
    let rows = std::fs::read_to_string(dir.path().join("out/results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let csv = std::fs::read_to_string(dir.path().join("out/results.csv")).unwrap();
    (text(&out.stdout), rows, csv)
}

#[test]
fn a_bound_that_holds_reads_ok() {
    let (table, rows, csv) =
        run("[[pipeline]]\nstage = \"sz3\"\nabs_error = { sweep = [1e-3, 1e-2] }\n");
    let header = table.lines().next().unwrap();
    assert!(header.contains(" bound "), "{table}");
    for row in &rows {
        let [check] = row["bounds"].as_array().unwrap().as_slice() else {
            panic!("one bound: {row}")
        };
        assert_eq!(check["stage"], "sz3");
        assert_eq!(check["kind"], "abs");
        assert_eq!(check["bound_ok"], true);
        assert_eq!(check["violations"], 0);
        assert_eq!(check["checked"], 64 * 128 * 128);
        let worst = check["observed_worst"].as_f64().unwrap();
        assert!(worst <= check["promised"].as_f64().unwrap());
        // The independent check agrees with the distortion metric of the whole volume.
        assert_eq!(worst, row["distortion"]["max_abs_error"].as_f64().unwrap());
    }
    assert!(
        table.lines().skip(1).take(2).all(|l| l.contains("  ok  ")),
        "{table}"
    );
    assert!(csv.lines().next().unwrap().contains(",bound,"), "{csv}");
}

#[test]
fn a_broken_bound_is_flagged_in_the_table_csv_and_results() {
    // OpenJPEG's fixed-quality mode aims at the PSNR with an estimate of the distortion; on
    // the quantised reference volume at 40 dB most planes come out just below it.
    let (table, rows, csv) = run(
        "[[pipeline]]\nstage = \"quantize\"\ndtype = \"uint16\"\n[[pipeline]]\nstage = \"jpeg2000\"\npsnr = 40.0\n",
    );
    let row = &rows[0];
    assert_eq!(row["status"], "ok", "the point is measured: {row}");
    let check = &row["bounds"][0];
    assert_eq!(check["bound_ok"], false, "{row}");
    assert_eq!(check["counted"], "planes");
    assert_eq!(check["checked"], 64);
    let violations = check["violations"].as_u64().unwrap();
    assert!(violations > 0);
    assert!(check["observed_worst"].as_f64().unwrap() < 40.0);
    let flag = format!("VIOLATED: jpeg2000 psnr 40, {violations} planes");
    assert!(table.contains(&flag), "{flag}\n{table}");
    assert!(csv.contains(&flag), "{flag}\n{csv}");
}
