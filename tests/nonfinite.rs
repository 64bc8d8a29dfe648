//! No silent wrong answer from non-finite or huge values: a decoder that writes NaN is counted
//! (`nonfinite_decoded`), every metric of its point is NaN, it fails every limit and is never
//! chosen, in the results, the table, the CSV and the report; `photonqa metrics` gives the
//! numbers `run` gives; float32 data near `f32::MAX` compare without overflow.

mod common;

use std::path::Path;
use std::process::Output;

use common::{assert_ok, photonqa, sorted_rows, text};
use ndarray::{ArrayD, IxDyn};
use serde_json::Value;

/// Every registered metric, as a scenario's `distortion` list.
const ALL_METRICS: &str = "[\"mse\", \"rmse\", \"nrmse\", \"psnr\", \"snr\", \"max_abs_error\", \
     \"max_rel_error\", \"mean_error\", \"pearson\", \"ssim\", \"error_histogram\", \
     \"error_autocorrelation\", \"ks_test\", \"frc\", \"fsc\", \"power_spectrum\"]";

/// Runs `photonqa run SCENARIO --out OUT` in `dir` for a scenario with `command` stages (the
/// one place where the tests start user programs as codecs).
fn run_with_commands(dir: &Path, scenario: &str, out: &str) -> Output {
    photonqa(dir, &["run", scenario, "--out", out, "--allow-commands"])
}

/// A 16x32x32 float32 volume with texture at several scales, values in about [0, 3].
fn volume() -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(&[16, 32, 32]), |ix| {
        let (z, y, x) = (ix[0] as f32, ix[1] as f32, ix[2] as f32);
        let h = (ix[0] * 1031 + ix[1] * 97 + ix[2] * 13) % 101;
        1.5 + (0.3 * x).sin() * (0.2 * y).cos() + 0.1 * z.sin() + h as f32 / 200.0
    })
}

/// The decoders' rule for NaN, on the values (not their position, so that a chunk and the whole
/// volume agree): `floor(1000 v) mod 7 == 0`, in float64 as NumPy computes it.
fn spoilt(v: f32) -> bool {
    (v as f64 * 1000.0).floor() % 7.0 == 0.0
}

/// `nan.py IN OUT`: the gzip-compressed .npy `IN`, with NaN where [`spoilt`], as the .npy `OUT`.
const NAN_DECODER: &str = "import gzip, sys\nimport numpy as np\n\
    a = np.load(gzip.open(sys.argv[1]))\n\
    a[np.floor(a.astype(np.float64) * 1000) % 7 == 0] = np.nan\n\
    np.save(sys.argv[2], a)\n";

/// `round.py IN OUT`: the .npy `IN` rounded to two decimals, as the .npy `OUT`.
const ROUND_DECODER: &str = "import sys\nimport numpy as np\n\
    np.save(sys.argv[2], np.round(np.load(sys.argv[1]), 2))\n";

/// Runs `program` with `args` in `dir` and checks that it succeeded.
fn shell(dir: &Path, program: &str, args: &[&str]) {
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    assert_ok(&out, program);
}

/// The NaN decoder (behind gzip, so that it has the best ratio) against a decoder that rounds
/// to 0.01 (behind a plain copy). Before NaN was counted, the NaN point had `max_abs_error 0`
/// and FRC resolution 1, met both limits and was chosen.
#[test]
fn a_decoder_writing_nan_fails_every_limit_and_metrics_agree_with_run() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let original = volume();
    ndarray_npy::write_npy(dir.join("original.npy"), &original).unwrap();
    std::fs::write(dir.join("nan.py"), NAN_DECODER).unwrap();
    std::fs::write(dir.join("round.py"), ROUND_DECODER).unwrap();
    let scenario = format!(
        "[scenario]\nname = \"nan-decoder\"\nchunk_slices = 16\n[input]\nsource = \"original.npy\"\n\
         [[variant]]\nname = \"nan\"\n[[variant.pipeline]]\nstage = \"command\"\n\
         encode = \"gzip -c {{input}} > {{output}}\"\ndecode = \"python3 nan.py {{input}} {{output}}\"\n\
         [[variant]]\nname = \"round\"\n[[variant.pipeline]]\nstage = \"command\"\n\
         encode = \"cp {{input}} {{output}}\"\ndecode = \"python3 round.py {{input}} {{output}}\"\n\
         [metrics]\ndistortion = {ALL_METRICS}\n\
         [limits]\nmax_abs_error = {{ max = 0.006 }}\n\"frc.resolution\" = {{ min = 0.5 }}\n"
    );
    std::fs::write(dir.join("s.toml"), scenario).unwrap();
    let out = run_with_commands(dir, "s.toml", "out");
    assert_ok(&out, "photonqa run");
    let expected = original.iter().filter(|&&v| spoilt(v)).count() as u64;
    assert!(expected > 100, "{expected} spoilt values");

    let rows = sorted_rows(&dir.join("out"));
    let (nan, round) = (&rows[0], &rows[1]);
    assert_eq!(nan["params"]["variant"], "nan");
    assert_eq!(nan["nonfinite_decoded"], expected);
    assert_eq!(round["nonfinite_decoded"], 0);
    let columns = [
        "mse",
        "rmse",
        "nrmse",
        "psnr",
        "snr",
        "max_abs_error",
        "max_rel_error",
        "mean_error",
        "pearson",
        "ssim",
        "error_histogram.std",
        "error_histogram.skewness",
        "error_histogram.kurtosis",
        "error_autocorrelation.axis0",
        "error_autocorrelation.axis1",
        "error_autocorrelation.axis2",
        "ks_test.statistic",
        "ks_test.p_value",
        "frc.resolution",
        "fsc.resolution",
        "power_spectrum.max_abs_relative_error",
    ];
    let value = |row: &Value, column: &str| {
        let mut value = &row["distortion"];
        for key in column.split('.') {
            value = &value[key];
        }
        value.clone()
    };
    for column in columns {
        assert_eq!(value(nan, column), "nan", "{column}");
        assert!(value(round, column).is_number(), "{column}: {round}");
    }
    assert_eq!(nan["distortion"]["error_histogram"]["nonfinite"], expected);

    let recommendation: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("out/recommendation.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(recommendation["chosen"]["point_id"], round["point_id"]);
    let reason = format!("{expected} decoded values are NaN or infinite");
    let failed = &recommendation["points"][0]["failed"];
    assert_eq!(failed.as_array().unwrap().len(), 3, "{failed}");
    assert!(
        failed
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["reason"] == reason.as_str()),
        "{failed}"
    );

    // The table counts them and says why the point fails; so do the CSV and the report.
    let stdout = text(&out.stdout);
    // The last header line names the columns (dotted names folded after their last dot).
    let mut lines = stdout.lines().skip_while(|l| !l.starts_with("point "));
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let at = header.iter().position(|&c| c == "nonfinite_decoded");
    let at = at.unwrap_or_else(|| panic!("no nonfinite_decoded column:\n{stdout}"));
    let line = lines.next().unwrap();
    assert_eq!(
        line.split_whitespace().nth(at),
        Some(&*expected.to_string())
    );
    assert!(
        line.ends_with(&format!("fails every limit: {reason}")),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(dir.join("out/results.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let at = header
        .iter()
        .position(|&c| c == "nonfinite_decoded")
        .unwrap();
    let cells: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!((cells[0][at], cells[1][at]), (&*expected.to_string(), "0"));
    let report = std::fs::read_to_string(dir.join("out/report.html")).unwrap();
    assert!(report.contains("<th>nonfinite_decoded</th>") && report.contains(&reason));

    // `photonqa metrics` on the same pairs (one chunk in both): the same JSON, value for value.
    shell(dir, "sh", &["-c", "gzip -c original.npy > original.gz"]);
    shell(dir, "python3", &["nan.py", "original.gz", "nan.npy"]);
    shell(dir, "python3", &["round.py", "original.npy", "round.npy"]);
    for (decoded, row) in [("nan.npy", nan), ("round.npy", round)] {
        let out = photonqa(dir, &["metrics", "original.npy", decoded, "--json"]);
        assert_ok(&out, "photonqa metrics");
        let metrics: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(metrics["nonfinite_decoded"], row["nonfinite_decoded"]);
        for (name, value) in row["distortion"].as_object().unwrap() {
            assert_eq!(&metrics[name], value, "{decoded}: {name}");
        }
    }
}

/// Float32 data near `f32::MAX` (squares overflow float32, SSIM's filters ran in float32):
/// stored losslessly they compare as identical (PSNR inf, SSIM 1, no NaN anywhere); SZ3 in its
/// relative mode decodes NaN there, which is counted and fails the point although no limit
/// names a metric.
#[test]
fn float32_data_near_the_largest_float_compare_without_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // Uniform in [0.5, 1) f32::MAX, negated in the first four columns (SplitMix64 of the index).
    let huge = ArrayD::from_shape_fn(IxDyn(&[16, 32, 32]), |ix| {
        let mut h = ((ix[0] * 32 + ix[1]) * 32 + ix[2]) as u64 + 0x9e37_79b9_7f4a_7c15;
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
        let v = f32::MAX * (0.5 + 0.5 * (h >> 40) as f32 / (1u64 << 24) as f32);
        if ix[2] < 4 { -v } else { v }
    });
    ndarray_npy::write_npy(dir.join("huge.npy"), &huge).unwrap();
    let scenario = format!(
        "[scenario]\nname = \"huge\"\nchunk_slices = 8\n[input]\nsource = \"huge.npy\"\n\
         [[variant]]\nname = \"zstd\"\n[[variant.pipeline]]\nstage = \"zstd\"\n\
         [[variant]]\nname = \"sz3\"\n[[variant.pipeline]]\nstage = \"sz3\"\nmode = \"rel\"\n\
         rel_error = 0.001\n[metrics]\ndistortion = {ALL_METRICS}\n"
    );
    std::fs::write(dir.join("s.toml"), scenario).unwrap();
    let out = photonqa(dir, &["run", "s.toml", "--out", "out"]);
    assert_ok(&out, "photonqa run");
    let rows = sorted_rows(&dir.join("out"));
    let (lossless, sz3) = (&rows[0], &rows[1]);
    let distortion = &lossless["distortion"];
    assert_eq!(lossless["nonfinite_decoded"], 0);
    assert_eq!(distortion["psnr"], "inf");
    assert_eq!(distortion["snr"], "inf");
    assert_eq!(distortion["ssim"], 1.0);
    assert_eq!(distortion["ssim_detail"]["min"], 1.0);
    assert_eq!(distortion["mse"], 0.0);
    assert_eq!(distortion["pearson"], 1.0);
    assert_eq!(distortion["frc"]["resolution"], 1.0);
    assert_eq!(distortion["fsc"]["resolution"], 1.0);
    assert!(
        !distortion.to_string().contains("nan"),
        "a NaN in the lossless point: {distortion}"
    );
    let nonfinite = sz3["nonfinite_decoded"].as_u64().unwrap();
    assert!(nonfinite > 0, "SZ3 rel no longer decodes NaN here: {sz3}");
    assert_eq!(sz3["distortion"]["max_abs_error"], "nan");
    assert_eq!(sz3["distortion"]["ssim"], "nan");
    assert_eq!(sz3["bounds"][0]["bound_ok"], false);
    let recommendation: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("out/recommendation.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(recommendation["chosen"]["point_id"], lossless["point_id"]);
    let stdout = text(&out.stdout);
    let sz3_line = stdout
        .lines()
        .skip_while(|l| !l.starts_with("point "))
        .nth(2)
        .unwrap();
    assert!(
        sz3_line.ends_with(&format!(
            "fails every limit: {nonfinite} decoded values are NaN or infinite"
        )),
        "{stdout}"
    );
}

/// Float64 data spanning more than `f64::MAX` have a data range of inf, which would make every
/// PSNR inf: a one-line error that asks for the range; with it given, the metrics are finite.
#[test]
fn a_data_range_beyond_float64_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let span = ArrayD::from_shape_fn(IxDyn(&[16, 16, 16]), |ix| {
        ((ix[0] * 256 + ix[1] * 16 + ix[2]) as f64 / 4095.0 * 2.0 - 1.0) * 1.5e308
    });
    ndarray_npy::write_npy(dir.join("span.npy"), &span).unwrap();
    ndarray_npy::write_npy(dir.join("decoded.npy"), &span.mapv(|v| v * 0.999)).unwrap();
    let out = photonqa(dir, &["metrics", "span.npy", "decoded.npy"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "photonqa: span.npy: the data range inf is beyond float64 (the original spans -1.5e308 \
         to 1.5e308); pass --data-range\n"
    );
    let out = photonqa(
        dir,
        &[
            "metrics",
            "span.npy",
            "decoded.npy",
            "--json",
            "--data-range",
            "1e308",
        ],
    );
    assert_ok(&out, "photonqa metrics --data-range 1e308");
    let metrics: Value = serde_json::from_slice(&out.stdout).unwrap();
    let psnr = metrics["psnr"].as_f64().unwrap();
    assert!(psnr > 50.0 && psnr < 70.0, "{psnr}");
    assert_eq!(
        metrics["ssim"].as_f64().map(|s| s > 0.99),
        Some(true),
        "{metrics}"
    );
}
