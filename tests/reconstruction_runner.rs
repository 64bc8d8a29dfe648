//! `[reconstruction]` in a scenario: the bundled `scenarios/tomo-projections.toml` on the real
//! APS tooth projections (`reference-data/tooth.h5`) gives, per working point, exactly what the
//! separate tools give on the same slices: the decoded projections made in memory by the
//! point's chain, flat/dark-normalised and reconstructed by the library; the original slice by
//! `photonqa reconstruct --row`; their distortion by `photonqa metrics` and each slice's Otsu
//! threshold, porosity and pore count by `photonqa analyze`. Exact equality: every path runs the
//! same float64 arithmetic in the same order (the slice is one chunk for `metrics`).
//!
//! Also the scenario errors that need the file: rows beyond the detector, SSIM on a stack too
//! thin for its window, a memory budget too small for the slices.

mod common;

use std::path::Path;

use common::{assert_ok, photonqa, repo_root, text};
use photonqa::analysis::fbp::{Fbp, Filter};
use photonqa::data::exchange::Exchange;
use photonqa::data::npy::write_npy;
use photonqa::data::{IntoNdArray, SourceSpec};
use photonqa::pipeline::Chain;
use photonqa::scenario::Scenario;
use serde_json::Value;

const TOOTH: &str = "reference-data/tooth.h5";

fn json_of(out: &std::process::Output, what: &str) -> Value {
    assert_ok(out, what);
    serde_json::from_str(&text(&out.stdout)).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// `v[key]` for a dotted path, e.g. `frc.resolution`.
fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, key| &v[key])
}

#[test]
fn runner_equals_reconstruct_metrics_and_analyze_on_tooth() {
    let tooth = repo_root().join(TOOTH);
    let dir = tempfile::tempdir().unwrap();
    let scenario_path = repo_root().join("scenarios/tomo-projections.toml");
    let scenario = Scenario::load(&scenario_path).unwrap();
    let out = dir.path().join("run");
    let run = photonqa(
        dir.path(),
        &["run", scenario_path.to_str().unwrap(), "--out", "run"],
    );
    assert_ok(&run, "photonqa run tomo-projections");
    let rows: Vec<Value> = std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 6);

    // The original slice, by the CLI.
    assert_ok(
        &photonqa(
            dir.path(),
            &[
                "reconstruct",
                tooth.to_str().unwrap(),
                "--row",
                "0",
                "--filter",
                "shepp-logan",
                "--out",
                "original.npy",
            ],
        ),
        "photonqa reconstruct",
    );
    let analysed_original = json_of(
        &photonqa(dir.path(), &["analyze", "original.npy", "--json"]),
        "photonqa analyze original",
    );

    let source = SourceSpec::parse(
        &format!("{}::/exchange/data", tooth.display()),
        Path::new(""),
        None,
    )
    .unwrap()
    .open()
    .unwrap();
    let projections = source.read_slab(0..source.shape()[0]).unwrap();
    let exchange = Exchange::open(&tooth).unwrap();
    let fields = exchange.flat_dark(0).unwrap();
    let fbp = Fbp::new(640, &exchange.theta().unwrap(), Filter::SheppLogan).unwrap();
    for point in scenario.working_points() {
        let row = rows
            .iter()
            .find(|r| r["point_id"] == point.id.as_str())
            .unwrap_or_else(|| panic!("no row of {}", point.id));
        let chain = Chain::build(&point.stages, projections.dtype()).unwrap();
        let decoded = chain.round_trip(&projections).unwrap().decoded.to_f64();
        let raw: Vec<f64> = decoded
            .index_axis(ndarray::Axis(1), 0)
            .iter()
            .copied()
            .collect();
        let slice = fbp.reconstruct(&fields.normalise(&raw).unwrap()).unwrap();
        let slice = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[640, 640]), slice)
            .unwrap()
            .into_nd();
        write_npy(&dir.path().join("decoded.npy"), &slice).unwrap();
        let metrics = json_of(
            &photonqa(
                dir.path(),
                &["metrics", "original.npy", "decoded.npy", "--json"],
            ),
            "photonqa metrics",
        );
        let analysed = json_of(
            &photonqa(dir.path(), &["analyze", "decoded.npy", "--json"]),
            "photonqa analyze decoded",
        );
        let id = &point.id;
        for column in ["psnr", "nrmse", "ssim", "frc.resolution"] {
            let expected = at(&metrics, column);
            let actual = at(&row["reconstructed"], column);
            assert_eq!(actual, expected, "{id}: reconstructed.{column}");
        }
        let science = &row["science"];
        for (side, analysed) in [("original", &analysed_original), ("decoded", &analysed)] {
            let threshold = &science["segmentation"][format!("thresholds_{side}")][0];
            assert_eq!(
                threshold, &analysed["otsu_threshold"],
                "{id}: {side} threshold"
            );
            let porosity = &science["porosity"];
            assert_eq!(
                porosity[format!("porosity_{side}")],
                analysed["porosity"],
                "{id}: {side} porosity"
            );
            assert_eq!(
                porosity[format!("pore_count_{side}")],
                analysed["pore_count"],
                "{id}: {side} pore count"
            );
        }
    }
}

#[test]
fn reconstruction_errors_are_one_line_and_name_the_key() {
    let tooth = repo_root().join(TOOTH);
    let dir = tempfile::tempdir().unwrap();
    let scenario = |reconstruction: &str, source: &str| {
        format!(
            "[scenario]\nname = \"r\"\n[input]\nsource = \"{source}\"\n[[pipeline]]\nstage = \"zstd\"\n[metrics]\ndistortion = [\"psnr\"]\n[reconstruction]\n{reconstruction}\n"
        )
    };
    let data = format!("{}::/exchange/data", tooth.display());
    let cases = [
        (
            "rows = [2]",
            data.as_str(),
            &[][..],
            "reconstruction.rows: row 2 is beyond the 2 detector rows",
        ),
        (
            "distortion = [\"ssim\"]",
            data.as_str(),
            &[][..],
            "reconstruction.distortion: metric ssim on slices of shape [2, 640, 640]: SSIM: the gaussian window",
        ),
        (
            "rows = [0, 1]",
            data.as_str(),
            &["--memory-budget", "20MiB"][..],
            "reconstruction: 2 rows of 640x640 slices need about",
        ),
        (
            "rows = [1, 0]",
            data.as_str(),
            &[][..],
            "reconstruction.rows needs consecutive detector rows in increasing order",
        ),
        (
            "filter = \"ramp\"",
            &format!("{}::/exchange/data_white", tooth.display()),
            &[][..],
            "[reconstruction] needs input.source to be the projections of a DataExchange file",
        ),
        (
            "filter = \"sheplogan\"",
            data.as_str(),
            &[][..],
            "reconstruction.filter: unknown FBP filter 'sheplogan' (allowed: ramp, shepp-logan",
        ),
    ];
    for (table, source, extra, message) in cases {
        std::fs::write(dir.path().join("r.toml"), scenario(table, source)).unwrap();
        let mut args = vec!["run", "r.toml", "--out", "out"];
        args.extend(extra);
        let out = photonqa(dir.path(), &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{table}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{table}: {stderr}");
        assert!(
            stderr.starts_with("photonqa: r.toml") && stderr.contains(message),
            "{table}: expected {message:?} in {stderr}"
        );
    }
}
