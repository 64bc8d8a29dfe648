//! The codec shootout through the real binary: both shootout scenarios validate, `[[variant]]`
//! pipelines run as one sweep, a bound that holds reads `ok` in the table, and a bound that a codec breaks
//! (OpenJPEG's PSNR target, per plane) reads `VIOLATED: ...` in the table, the CSV and
//! `results.jsonl`, while the point itself is still measured.

mod common;

use common::{assert_ok, photonqa, reference_volume, repo_root, text};
use serde_json::Value;

#[test]
fn both_shootout_scenarios_validate() {
    let folder = repo_root().join("scenarios");
    let out = photonqa(&folder, &["validate", "codec-shootout.toml"]);
    assert_ok(&out, "photonqa validate codec-shootout.toml");
    assert!(
        text(&out.stdout).contains("46 working points"),
        "{}",
        text(&out.stdout)
    );
    let out = photonqa(&folder, &["validate", "codec-shootout-tooth.toml"]);
    assert_ok(&out, "photonqa validate codec-shootout-tooth.toml");
}

/// Two `[[variant]]` pipelines run as one sweep: points numbered pipeline after pipeline, the
/// variant a swept column, and one recommendation across both.
#[test]
fn variants_run_as_one_sweep_with_one_recommendation() {
    let variants = "[[variant]]\nname = \"sz3\"\n[[variant.pipeline]]\nstage = \"sz3\"\nabs_error = { sweep = [1e-3, 1e-1] }\n\
                    [[variant]]\nname = \"lossless\"\n[[variant.pipeline]]\nstage = \"shuffle\"\n[[variant.pipeline]]\nstage = \"zstd\"\nlevel = { sweep = [1, 3] }\n\
                    [limits]\npsnr = { min = 50.0 }\n";
    let (table, mut rows, csv, dir) = run_in(variants);
    rows.sort_by_key(|r| r["index"].as_u64());
    let summary: Vec<(u64, &str, String)> = rows
        .iter()
        .map(|r| {
            let params = &r["params"];
            let value = params
                .get("sz3.abs_error")
                .or(params.get("zstd.level"))
                .unwrap()
                .to_string();
            (
                r["index"].as_u64().unwrap(),
                params["variant"].as_str().unwrap(),
                value,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (0, "sz3", "0.001".to_string()),
            (1, "sz3", "0.1".to_string()),
            (2, "lossless", "1".to_string()),
            (3, "lossless", "3".to_string()),
        ]
    );
    assert!(header(&table).contains("variant"), "{table}");
    assert!(csv.lines().next().unwrap().contains("variant"), "{csv}");
    // sz3 at 1e-3 keeps 65 dB at a ratio near 4.8; the lossless points reach about 1.1.
    let recommendation: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/recommendation.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        recommendation["chosen"]["point_id"], rows[0]["point_id"],
        "{recommendation}"
    );
}

#[test]
fn variant_errors_name_the_key() {
    let cases = [
        (
            "[[pipeline]]\nstage = \"zstd\"\n[[variant]]\nname = \"a\"\n[[variant.pipeline]]\nstage = \"zstd\"\n",
            ":7:1: a scenario has either [[pipeline]] stages or [[variant]] pipelines, not both",
        ),
        (
            "[[variant]]\nname = \"a\"\n[[variant.pipeline]]\nstage = \"zstd\"\n[[variant]]\nname = \"a\"\n[[variant.pipeline]]\nstage = \"lz4\"\n",
            ":10:8: variant 'a' is named twice",
        ),
        (
            "[[variant]]\nname = \"a b\"\n[[variant.pipeline]]\nstage = \"zstd\"\n",
            ":6:8: variant name 'a b' must be letters, digits, '-' or '_'",
        ),
        (
            "[[variant]]\nname = \"a\"\n[[variant.pipeline]]\nstage = \"zstd\"\nlevel = { search = [1, 9] }\n",
            ":9:9: a parameter of a [[variant]] cannot be searched; sweep it",
        ),
        (
            "[[variant]]\nname = \"a\"\n[[variant.pipeline]]\nstage = \"zstdx\"\n",
            ":8:9: unknown stage 'zstdx'",
        ),
        ("[[variant]]\nname = \"a\"\n", "missing field `pipeline`"),
    ];
    for (body, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let scenario = format!(
            "[scenario]\nname = \"t\"\n[input]\nsource = \"{}\"\n{body}",
            reference_volume()
        );
        std::fs::write(dir.path().join("s.toml"), scenario).unwrap();
        let out = photonqa(dir.path(), &["validate", "s.toml"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in {stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

/// Runs `pipeline` on the reference volume in a fresh directory; returns the table, rows and
/// CSV.
/// The line of the printed table that names the columns (after the line of the prefixes of
/// dotted names).
fn header(table: &str) -> &str {
    table.lines().find(|l| l.starts_with("point ")).unwrap()
}

/// The point lines of the printed table.
fn points(table: &str) -> impl Iterator<Item = &str> {
    table
        .lines()
        .skip_while(|l| !l.starts_with("point "))
        .skip(1)
        .take_while(|l| !l.is_empty())
}

fn run(pipeline: &str) -> (String, Vec<Value>, String) {
    let (table, rows, csv, _dir) = run_in(pipeline);
    (table, rows, csv)
}

/// [`run`], also returning the directory (holding `out/`).
fn run_in(pipeline: &str) -> (String, Vec<Value>, String, tempfile::TempDir) {
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
    (text(&out.stdout), rows, csv, dir)
}

#[test]
fn a_bound_that_holds_reads_ok() {
    let (table, rows, csv) =
        run("[[pipeline]]\nstage = \"sz3\"\nabs_error = { sweep = [1e-3, 1e-2] }\n");
    assert!(header(&table).contains(" bound "), "{table}");
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
        points(&table).take(2).all(|l| l.contains("  ok  ")),
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
    // The quantiser's own bound comes first and holds.
    assert_eq!(row["bounds"][0]["stage"], "quantize", "{row}");
    assert_eq!(row["bounds"][0]["bound_ok"], true, "{row}");
    let check = &row["bounds"][1];
    assert_eq!(check["bound_ok"], false, "{row}");
    assert_eq!(check["counted"], "planes");
    assert_eq!(check["checked"], 64);
    let violations = check["violations"].as_u64().unwrap();
    assert!(violations > 0);
    assert!(check["observed_worst"].as_f64().unwrap() < 40.0);
    let flag = format!("VIOLATED: jpeg2000 psnr 40, {violations} planes");
    assert!(table.contains(&flag), "{flag}\n{table}");
    assert!(csv.contains(&flag), "{flag}\n{csv}");
    // The only point is chosen (no limits); the answer warns that its bound broke.
    let warning = format!("beware, its stage's promised bound is {flag}");
    assert!(table.contains(&warning), "{warning}\n{table}");
}

/// The array->array stages promise bounds too, checked on their own round trip: quantize
/// half a step (so values clipped outside a given range break it, one violation each) and
/// bitround a pointwise relative error of 2^-(keepbits + 1).
#[test]
fn quantize_and_bitround_promises_are_checked() {
    let (lo, hi, levels) = (0.0, 0.5, 255.0);
    let (_, rows, _) = run(&format!(
        "[[pipeline]]\nstage = \"quantize\"\nrange = [{lo:.1}, {hi:.1}]\n[[pipeline]]\nstage = \"zstd\"\n"
    ));
    let check = &rows[0]["bounds"][0];
    assert_eq!(check["stage"], "quantize", "{check}");
    assert_eq!(check["kind"], "abs");
    let bound = check["promised"].as_f64().unwrap();
    let half_step = (hi - lo) / (2.0 * levels);
    assert!(bound >= half_step && bound < half_step * 1.001, "{bound}");
    let original = common::read_reference_volume().to_f64();
    let clipped = original
        .iter()
        .filter(|&&x| x < lo - bound || x > hi + bound)
        .count() as u64;
    assert!(clipped > 1000, "the range must clip: {clipped}");
    assert_eq!(check["violations"].as_u64(), Some(clipped), "{check}");
    assert_eq!(check["bound_ok"], false);

    let (_, rows, _) = run("[[pipeline]]\nstage = \"bitround\"\nkeepbits = 5\n");
    let check = &rows[0]["bounds"][0];
    assert_eq!(check["stage"], "bitround", "{check}");
    assert_eq!(check["kind"], "pointwise_rel");
    assert_eq!(check["promised"].as_f64(), Some(2f64.powi(-6)));
    assert_eq!(check["bound_ok"], true, "{check}");
    let worst = check["observed_worst"].as_f64().unwrap();
    assert!(worst > 2f64.powi(-7) && worst <= 2f64.powi(-6), "{worst}");
}
