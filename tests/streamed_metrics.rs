//! Every structured metric through the runner: chunks merged in order (with the error histogram
//! and KS counts folded early per group of chunks) must give what one pass over the whole
//! arrays gives, whatever the chunking, and bit-identical results whatever the thread count.

mod common;

use std::path::Path;

use common::{
    assert_ok, photonqa, quantized, read_reference_volume, reference_volume, run_first_row,
};
use photonqa::data::NdArray;
use photonqa::metrics::comparison::{CompareSpec, DataFacts};
use photonqa::metrics::registry;
use photonqa::metrics::ssim::SsimWindow;
use serde_json::Value;

/// Relative tolerance between chunked and whole-array floating results (merge order changes
/// the last digits of sums).
const MERGE_TOL: f64 = 1e-12;

/// Absolute tolerance for values that are differences of nearly equal sums (mean error,
/// relative power-spectrum error), whose relative error the cancellation amplifies.
const CANCEL_TOL: f64 = 1e-13;

fn scenario(chunk_slices: usize) -> String {
    let names: Vec<String> = registry::names()
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect();
    format!(
        "[scenario]\nname = \"streamed\"\nchunk_slices = {chunk_slices}\n[input]\nsource = \"{}\"\n\
         [[pipeline]]\nstage = \"quantize\"\nrange = [-0.2, 1.1]\nbits = 5\n\
         [[pipeline]]\nstage = \"zstd\"\n\
         [metrics]\ndistortion = [{}]\n",
        reference_volume(),
        names.join(", ")
    )
}

fn run(dir: &Path, chunk_slices: usize, threads: &str) -> Value {
    let name = format!("c{chunk_slices}-t{threads}");
    let row = run_first_row(dir, &name, &scenario(chunk_slices), threads);
    row["distortion"].clone()
}

/// Every metric over the whole arrays in one partial, no chunking.
fn whole(original: &NdArray, decoded: &NdArray) -> Value {
    let (lo, hi, _) = photonqa::runner::passes::min_max(original);
    let names = registry::names();
    let facts = DataFacts {
        shape: original.shape(),
        range: (lo, hi),
        data_range: hi - lo,
        dtypes: (original.dtype(), decoded.dtype()),
    };
    let spec = CompareSpec::new(&names, facts, 1e-3 * (hi - lo), SsimWindow::Gaussian).unwrap();
    let rows = 0..original.shape()[0];
    let partial = spec.partial(original, decoded, rows.clone(), rows).unwrap();
    Value::Object(spec.finish(&partial, &names).unwrap())
}

/// Asserts `a` equals `b`: integers, strings and nulls exactly, floats within [`MERGE_TOL`]
/// relative or [`CANCEL_TOL`] absolute.
fn assert_close(a: &Value, b: &Value, path: &str) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{path}: keys"
            );
            for (k, v) in x {
                assert_close(v, &y[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}: length");
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                assert_close(u, v, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (u, v) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (u - v).abs() <= (MERGE_TOL * u.abs().max(v.abs())).max(CANCEL_TOL),
                "{path}: {u} vs {v}"
            );
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

#[test]
fn chunked_runs_equal_the_whole_arrays_and_ignore_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let original = read_reference_volume();
    let decoded = quantized(&original, 5);
    let reference = whole(&original, &decoded);

    // Chunks of 3 rows: many groups, halos across chunk borders, counts folded per group.
    let one_thread = run(dir.path(), 3, "1");
    let two_threads = run(dir.path(), 3, "2");
    assert_eq!(one_thread, two_threads, "the thread count changed a result");
    let large = run(dir.path(), 40, "2");
    for result in [&one_thread, &large] {
        assert_close(result, &reference, "distortion");
    }
    // The counts are exact: equal, not close.
    for key in ["error_histogram", "ks_test"] {
        for field in [
            "counts",
            "statistic",
            "statistic_upper_bound",
            "below",
            "above",
        ] {
            assert_eq!(
                one_thread[key][field], reference[key][field],
                "{key}.{field}"
            );
        }
    }
    // The phantom is noisy, so 5-bit quantisation error is nearly white along every axis;
    // the coarse levels change the value distribution, which the KS statistic must see.
    for axis in ["axis0", "axis1", "axis2"] {
        let lag = one_thread["error_autocorrelation"][axis].as_f64().unwrap();
        assert!(lag.abs() < 0.05, "{axis} autocorrelation {lag}");
    }
    let d = one_thread["ks_test"]["statistic"].as_f64().unwrap();
    assert!(d > 0.0 && d < 0.2, "KS statistic {d}");
    assert!(one_thread["frc"]["resolution"].as_f64().unwrap() <= 1.0);
}

/// The FSC holds both volumes whole: beyond the memory budget `photonqa metrics` skips it with
/// the reason and `photonqa run` refuses the scenario, naming the sizes.
#[test]
fn fsc_beyond_the_memory_budget_is_skipped_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let volume = reference_volume();
    let args = [
        "metrics",
        &volume,
        &volume,
        "--json",
        "--memory-budget",
        "16MiB",
    ];
    let out = photonqa(dir.path(), &args);
    assert_ok(&out, "photonqa metrics");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reason = json["fsc"]["skipped"].as_str().unwrap();
    assert!(
        reason.contains("needs the spectra of the whole volume in memory"),
        "{reason}"
    );
    assert_eq!(json["frc"]["resolution"], 1.0);
    let fits = photonqa(dir.path(), &["metrics", &volume, &volume, "--json"]);
    let json: Value = serde_json::from_slice(&fits.stdout).unwrap();
    assert_eq!(json["fsc"]["resolution"], 1.0, "identical volumes");

    let text = scenario(16).replace("distortion = [", "distortion = [\"fsc\", ");
    std::fs::write(dir.path().join("f.toml"), text).unwrap();
    let run = photonqa(
        dir.path(),
        &["run", "f.toml", "--out", "f", "--memory-budget", "16MiB"],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("metric fsc needs the spectra of the whole volume"),
        "{stderr}"
    );
}

/// `photonqa metrics --only` computes the metrics asked for, with the values the full set has;
/// an unknown name is a one-line error listing the metrics.
#[test]
fn metrics_only_computes_what_is_asked_with_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let original = read_reference_volume();
    let decoded = quantized(&original, 5);
    photonqa::data::npy::write_npy(&dir.path().join("d.npy"), &decoded).unwrap();
    let volume = reference_volume();
    let json = |extra: &[&str]| -> serde_json::Map<String, Value> {
        let mut args = vec!["metrics", "--json", volume.as_str(), "d.npy"];
        args.extend(extra);
        let out = photonqa(dir.path(), &args);
        assert_ok(&out, "metrics");
        match serde_json::from_slice(&out.stdout).unwrap() {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    };
    let all = json(&[]);
    let only = json(&["--only", "psnr,ssim"]);
    let keys: Vec<&str> = only.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "psnr",
            "ssim",
            "ssim_detail",
            "data_range",
            "max_rel_floor",
            "count",
            "nonfinite_decoded"
        ]
    );
    for (key, value) in &only {
        assert_eq!(value, &all[key], "{key}");
    }
    let text = photonqa(
        dir.path(),
        &["metrics", volume.as_str(), "d.npy", "--only", "ssim"],
    );
    assert_ok(&text, "metrics --only ssim");
    let printed = String::from_utf8_lossy(&text.stdout);
    assert!(
        printed.contains("ssim") && !printed.contains("psnr"),
        "{printed}"
    );
    let unknown = photonqa(
        dir.path(),
        &["metrics", volume.as_str(), "d.npy", "--only", "ssim,psnrr"],
    );
    assert_eq!(unknown.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.starts_with("photonqa: --only psnrr: no such metric (metrics: mse, ")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
}

/// With `--data-range`, the original's range is gathered in the metrics' own pass instead of a
/// pass before them: the values equal those of the path with the pass first (which the KS
/// test, binning the values, still takes), also for values so large against the data range
/// that their scale differs from the one the data range alone gives (the pass is repeated);
/// and a non-finite original is still refused.
#[test]
fn a_given_data_range_saves_the_range_pass_with_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let shape = [30, 24, 20];
    // float64 values at offsets 0 and 1e200 (spreads 1 and 1e188), given data ranges 2 and
    // 1e100: the second's values divided by the scale its data range gives overflow float32.
    for (offset, spread, range) in [(0.0f64, 1.0f64, 2.0f64), (1e200, 1e188, 1e100)] {
        let value = |i: usize, noise: f64| {
            offset + spread * ((i as f64 * 0.37).sin() + noise * (i as f64 * 1.91).cos())
        };
        let original = ndarray::ArrayD::from_shape_fn(&shape[..], |ix| {
            value(ix[0] * 480 + ix[1] * 20 + ix[2], 0.0)
        });
        let decoded = ndarray::ArrayD::from_shape_fn(&shape[..], |ix| {
            value(ix[0] * 480 + ix[1] * 20 + ix[2], 0.01)
        });
        let write = |name: &str, values: &ndarray::ArrayD<f64>| {
            let array = NdArray::Float64(values.clone());
            photonqa::data::npy::write_npy(&dir.path().join(name), &array).unwrap();
        };
        write("o.npy", &original);
        write("d.npy", &decoded);
        let range = range.to_string();
        let metrics = |only: &str| -> serde_json::Map<String, Value> {
            let args = [
                "metrics",
                "--json",
                "o.npy",
                "d.npy",
                "--data-range",
                &range,
                "--only",
                only,
            ];
            let out = photonqa(dir.path(), &args);
            assert_ok(&out, only);
            match serde_json::from_slice(&out.stdout).unwrap() {
                Value::Object(map) => map,
                other => panic!("not an object: {other}"),
            }
        };
        let gathered = metrics("psnr,ssim,max_abs_error,error_histogram");
        let first = metrics("psnr,ssim,max_abs_error,error_histogram,ks_test");
        assert!(
            gathered["ssim"].as_f64().is_some_and(f64::is_finite),
            "{gathered:?}"
        );
        for (key, value) in &gathered {
            assert_eq!(value, &first[key], "offset {offset}: {key}");
        }
    }
    let mut spoilt = ndarray::ArrayD::<f64>::zeros(&shape[..]);
    spoilt[[17, 3, 4]] = f64::NAN;
    photonqa::data::npy::write_npy(&dir.path().join("o.npy"), &NdArray::Float64(spoilt)).unwrap();
    let out = photonqa(
        dir.path(),
        &[
            "metrics",
            "o.npy",
            "d.npy",
            "--data-range",
            "1",
            "--only",
            "ssim",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("o.npy: contains NaN or infinite values") && stderr.lines().count() == 1,
        "{stderr}"
    );
}
