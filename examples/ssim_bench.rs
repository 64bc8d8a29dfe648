//! Times photonqa's SSIM on a pair of `.npy` arrays (used by `benches/ssim_vs_skimage.sh`).
//!
//!     cargo run --release --example ssim_bench -- ORIGINAL.npy DECODED.npy DATA_RANGE [WINDOW] [REPEATS]
//!
//! Prints one line: `photonqa_ssim window=<w> mean=<repr> best_s=<seconds> threads=<n>`, the best
//! wall time of REPEATS (default 5) calls of `photonqa::metrics::ssim::ssim` on the global rayon
//! pool, after one warm-up call.

use std::path::Path;
use std::time::Instant;

use ndarray::ArrayD;
use ndarray_npy::read_npy;
use photonqa::data::{IntoNdArray, NdArray};
use photonqa::metrics::ssim::{SsimWindow, ssim};

fn load(path: &str) -> NdArray {
    let path = Path::new(path);
    let f32s = read_npy::<_, ArrayD<f32>>(path);
    match f32s {
        Ok(a) => a.into_nd(),
        Err(_) => read_npy::<_, ArrayD<f64>>(path)
            .unwrap_or_else(|e| {
                panic!("{}: {e} (float32 or float64 .npy expected)", path.display())
            })
            .into_nd(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: ssim_bench ORIGINAL.npy DECODED.npy DATA_RANGE [WINDOW] [REPEATS]");
        std::process::exit(2);
    }
    let (a, b) = (load(&args[0]), load(&args[1]));
    let range: f64 = args[2].parse().expect("DATA_RANGE must be a number");
    let window = SsimWindow::parse(args.get(3).map_or("gaussian", String::as_str))
        .unwrap_or_else(|e| panic!("{e}"));
    let repeats: usize = args
        .get(4)
        .map_or(5, |r| r.parse().expect("REPEATS must be an integer"));
    let mut mean = ssim(&a, &b, window, range)
        .unwrap_or_else(|e| panic!("{e}"))
        .mean();
    let mut best = f64::INFINITY;
    for _ in 0..repeats {
        let start = Instant::now();
        mean = ssim(&a, &b, window, range)
            .unwrap_or_else(|e| panic!("{e}"))
            .mean();
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "photonqa_ssim window={} mean={mean:?} best_s={best:.6} threads={}",
        window.name(),
        rayon::current_num_threads()
    );
}
