//! SSIM through the runner, where chunks need decoded rows of their neighbours (the window's
//! halo): the result must not depend on the chunking, and must equal SSIM of the whole arrays.

mod common;

use std::path::Path;

use common::{quantized, read_reference_volume, reference_volume, run_first_row};
use photonqa::metrics::ssim::{SsimWindow, ssim};
use serde_json::Value;

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
    let row = run_first_row(dir, &name, &scenario(chunk_slices, window), threads);
    row["distortion"].clone()
}

#[test]
fn ssim_does_not_depend_on_chunking_and_equals_the_whole_array_value() {
    let dir = tempfile::tempdir().unwrap();
    let original = read_reference_volume();
    let decoded = quantized(&original, 3);
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
