//! Adaptive search (`bits = { search = [1, 8] }`) against the grid of the same values, on the
//! reference volume: the search finds the grid's answer in O(log) evaluations with rows equal to
//! the grid's, and when pass/fail alternates (a band limit) it says so and falls back to the
//! whole grid, giving the grid's recommendation. A resumed search measures nothing again.

mod common;

use std::path::Path;

use common::{assert_ok, photonqa, reference_volume, text};
use serde_json::Value;

/// Quantise to uint8 at `bits` (a TOML value), then deflate; with `limits` appended.
fn scenario(dir: &Path, name: &str, bits: &str, limits: &str) {
    let text = format!(
        "[scenario]\nname = \"search\"\n[input]\nsource = \"{}\"\n\
         [[pipeline]]\nstage = \"quantize\"\ndtype = \"uint8\"\nrange = [-0.2, 1.1]\nbits = {bits}\n\
         [[pipeline]]\nstage = \"deflate\"\nlevel = 6\n\
         [metrics]\ndistortion = [\"mse\", \"psnr\"]\n{limits}",
        reference_volume()
    );
    std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
}

/// Runs `name.toml` into `name/` and returns its rows (by point id) and recommendation.
fn run(dir: &Path, name: &str, extra: &[&str]) -> (Vec<Value>, Value, String) {
    let mut args = vec![
        "run".to_string(),
        format!("{name}.toml"),
        "--out".into(),
        name.into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = photonqa(dir, &args);
    assert_ok(&out, name);
    let rows = std::fs::read_to_string(dir.join(name).join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let recommendation = serde_json::from_str(
        &std::fs::read_to_string(dir.join(name).join("recommendation.json")).unwrap(),
    )
    .unwrap();
    (rows, recommendation, text(&out.stdout))
}

fn psnr_at(rows: &[Value], bits: i64) -> f64 {
    let row = rows
        .iter()
        .find(|r| r["params"]["quantize.bits"] == bits)
        .unwrap();
    row["distortion"]["psnr"].as_f64().unwrap()
}

/// Rows of the same point must be equal but for the throughput, their position and the hash of
/// the scenario that made them.
fn same_row(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        v["rate"]["encode_mb_s"] = Value::Null;
        v["rate"]["decode_mb_s"] = Value::Null;
        v["index"] = Value::Null;
        v["provenance"]["scenario_hash"] = Value::Null;
        v
    };
    strip(a) == strip(b)
}

#[test]
fn search_finds_the_grid_answer_in_few_evaluations_and_falls_back_when_not_monotone() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    scenario(dir, "grid", "{ sweep = [1, 2, 3, 4, 5, 6, 7, 8] }", "");
    let (grid, _, _) = run(dir, "grid", &[]);
    assert_eq!(grid.len(), 8);
    let psnr: Vec<f64> = (1..=8).map(|b| psnr_at(&grid, b)).collect();
    assert!(
        psnr.windows(2).all(|w| w[0] < w[1]),
        "psnr rises with the bits: {psnr:?}"
    );

    // A floor between 4 and 5 bits: 5 bits is the answer of the grid.
    let floor = format!(
        "[limits]\npsnr = {{ min = {} }}\n",
        (psnr[3] + psnr[4]) / 2.0
    );
    scenario(
        dir,
        "grid-limited",
        "{ sweep = [1, 2, 3, 4, 5, 6, 7, 8] }",
        &floor,
    );
    let (_, by_grid, _) = run(dir, "grid-limited", &[]);
    scenario(dir, "searched", "{ search = [1, 8] }", &floor);
    let (searched, by_search, stdout) = run(dir, "searched", &[]);
    assert_eq!(by_grid["chosen"]["params"]["quantize.bits"], 5);
    assert_eq!(
        by_search["chosen"]["point_id"],
        by_grid["chosen"]["point_id"]
    );
    let search = &by_search["searches"][0]["search"];
    assert_eq!(search["outcome"], "found");
    assert_eq!(search["value"], 5.0);
    assert_eq!(search["failing"], 4.0);
    // lo, hi, the middle, then bisection of [1, 8]: at most 2 + ceil(log2 7) = 5 of 8.
    let evaluations = search["evaluations"].as_u64().unwrap();
    assert!(evaluations <= 5, "{search}");
    assert_eq!(searched.len() as u64, evaluations);
    for row in &searched {
        let on_grid = grid
            .iter()
            .find(|g| g["point_id"] == row["point_id"])
            .unwrap();
        assert!(same_row(row, on_grid), "{row}\n{on_grid}");
    }
    assert!(
        stdout.contains("search quantize.bits: 5 passes with objective ")
            && stdout.contains(&format!("and 4 fails ({evaluations} evaluations)")),
        "{stdout}"
    );

    // Resumed: every evaluation is in the log, nothing runs again, same answer.
    let (again, by_resume, stdout) = run(dir, "searched", &["--resume"]);
    assert!(stdout.contains("0 working points measured"), "{stdout}");
    assert_eq!(again.len(), searched.len());
    assert_eq!(by_resume["searches"], by_search["searches"]);

    // A band (4 to 6 bits pass): fail, pass, fail along the bits. The search must notice and
    // run the grid, whose answer is then the grid run's.
    let band = format!(
        "[limits]\npsnr = {{ min = {}, max = {} }}\n",
        (psnr[2] + psnr[3]) / 2.0,
        (psnr[5] + psnr[6]) / 2.0
    );
    scenario(
        dir,
        "band-grid",
        "{ sweep = [1, 2, 3, 4, 5, 6, 7, 8] }",
        &band,
    );
    let (_, band_by_grid, _) = run(dir, "band-grid", &[]);
    scenario(dir, "band-search", "{ search = [1, 8] }", &band);
    let (band_rows, band_by_search, stdout) = run(dir, "band-search", &[]);
    let search = &band_by_search["searches"][0]["search"];
    assert_eq!(search["outcome"], "not_monotone", "{search}");
    assert!(stdout.contains("falling back to the grid"), "{stdout}");
    assert_eq!(band_rows.len(), 8, "the whole grid ran");
    assert_eq!(
        band_by_search["chosen"]["point_id"],
        band_by_grid["chosen"]["point_id"]
    );
    assert_eq!(band_by_grid["chosen"]["params"]["quantize.bits"], 4);
}

#[test]
fn bad_searches_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let cases = [
        ("{ search = [1, 9] }", "bits = 9 does not fit dtype uint8"),
        ("{ search = [4, 4] }", "lo 4 must be below hi 4"),
        (
            "{ search = [1, 8], tolerance = 0.1 }",
            "an integer search stops at adjacent integers",
        ),
        (
            "{ search = [1, 8], step = 3 }",
            "unknown key 'step' in the search of bits",
        ),
    ];
    for (bits, message) in cases {
        scenario(dir, "bad", bits, "");
        let out = photonqa(dir, &["run", "bad.toml", "--out", "bad"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bits}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{bits}: {stderr}");
        assert!(
            stderr.starts_with("photonqa: bad.toml:") && stderr.contains(message),
            "{bits}: expected {message:?} in {stderr}"
        );
    }
}
