//! SSIM through the runner, where chunks need decoded rows of their neighbours (the window's
//! halo): the result must not depend on the chunking, and must equal SSIM of the whole arrays.

mod common;

use std::path::Path;

use common::{assert_ok, photonqa};
use photonqa::data::{NdArray, SourceSpec};
use photonqa::metrics::ssim::{SsimWindow, ssim};
use photonqa::pipeline::{Chain, ParamValue, StageConfig};
use serde_json::Value;

fn reference_volume() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("reference-data/porous-tomo.h5::/volume")
        .display()
        .to_string()
}

fn scenario(chunk_slices: usize, window: &str) -> String {
    format!(
        "[scenario]\nname = \"ssim-halo\"\nchunk_slices = {chunk_slices}\n[input]\nsource = \"{}\"\n\
         [[pipeline]]\nstage = \"quantize\"\nrange = [-0.2, 1.1]\nbits = 3\n\
         [[pipeline]]\nstage = \"zstd\"\n\
         [metrics]\ndistortion = [\"mse\", \"ssim\"]\n[metrics.ssim]\nwindow = \"{window}\"\n",
        reference_volume()
    )
}

fn run_ssim(dir: &Path, chunk_slices: usize, window: &str, threads: &str) -> Value {
    let name = format!("s{chunk_slices}-{window}-{threads}");
    std::fs::write(
        dir.join(format!("{name}.toml")),
        scenario(chunk_slices, window),
    )
    .unwrap();
    let out = photonqa(
        dir,
        &[
            "run",
            &format!("{name}.toml"),
            "--out",
            &name,
            "--threads",
            threads,
        ],
    );
    assert_ok(&out, "photonqa run");
    let text = std::fs::read_to_string(dir.join(name).join("results.jsonl")).unwrap();
    let row: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    row["distortion"].clone()
}

/// The decoded volume, made in memory by the same stages.
fn decoded(original: &NdArray) -> NdArray {
    let stages = [StageConfig {
        stage: "quantize",
        params: vec![
            ("dtype", ParamValue::Str("uint8".into())),
            ("bits", ParamValue::Int(3)),
            ("range", ParamValue::Interval([-0.2, 1.1])),
        ],
    }];
    let chain = Chain::build(&stages, original.dtype()).unwrap();
    chain.round_trip(original).unwrap().decoded
}

#[test]
fn ssim_does_not_depend_on_chunking_and_equals_the_whole_array_value() {
    let dir = tempfile::tempdir().unwrap();
    let source = SourceSpec::parse(&reference_volume(), Path::new(""), None)
        .unwrap()
        .open()
        .unwrap();
    let original = source.read_slab(0..source.shape()[0]).unwrap();
    let decoded = decoded(&original);
    let (lo, hi, _) = photonqa::runner::passes::min_max(&original);
    let range = hi - lo;
    for window in ["gaussian", "uniform"] {
        let whole = ssim(
            &original,
            &decoded,
            SsimWindow::parse(window).unwrap(),
            range,
        )
        .unwrap();
        // Chunks of 3 rows are narrower than the halo (5 or 3 rows): SSIM of a chunk then needs
        // rows from two neighbours on each side.
        let small = run_ssim(dir.path(), 3, window, "2");
        let large = run_ssim(dir.path(), 64, window, "1");
        // SSIM sums are kept per slice, so they do not depend on the chunking at all; point sums
        // are merged per chunk, so another chunking may move their last digits.
        assert_eq!(
            small["ssim"], large["ssim"],
            "{window}: chunking changed SSIM"
        );
        assert_eq!(
            small["ssim_detail"], large["ssim_detail"],
            "{window}: SSIM details"
        );
        let (a, b) = (
            small["mse"].as_f64().unwrap(),
            large["mse"].as_f64().unwrap(),
        );
        assert!((a / b - 1.0).abs() < 1e-12, "{window}: mse {a} vs {b}");
        let reported = small["ssim"].as_f64().unwrap();
        assert_eq!(
            reported,
            whole.mean(),
            "{window}: runner vs whole-array SSIM"
        );
        assert_eq!(small["ssim_detail"]["min"].as_f64().unwrap(), whole.min);
        let per_slice: Vec<f64> = small["ssim_detail"]["per_slice"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(per_slice, whole.per_slice(), "{window}: per-slice SSIM");
        assert_eq!(small["ssim_detail"]["window"], window);
        assert!((0.5..0.9).contains(&reported), "{window}: {reported}");
    }
}
