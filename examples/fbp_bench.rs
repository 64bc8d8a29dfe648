//! Times photonqa's filtered back-projection on a sinogram (used by `benches/fbp_vs_skimage.sh`).
//!
//!     cargo run --release --example fbp_bench -- SINOGRAM.npy THETA.npy [FILTER] [REPEATS] [OUT.npy]
//!
//! SINOGRAM.npy: float64 `(angles, detector)`; THETA.npy: float64 angles in degrees. Prints one
//! line: `photonqa_fbp filter=<f> angles=<a> detector=<n> best_s=<seconds> threads=<t>`, the best
//! wall time of REPEATS (default 5) calls of `Fbp::new` + `Fbp::reconstruct` on the global rayon
//! pool, after one warm-up call; writes the reconstruction to OUT.npy when given.

use std::time::Instant;

use ndarray::{Array1, Array2};
use ndarray_npy::{read_npy, write_npy};
use photonqa::analysis::fbp::{Fbp, Filter};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: fbp_bench SINOGRAM.npy THETA.npy [FILTER] [REPEATS] [OUT.npy]");
        std::process::exit(2);
    }
    let sinogram: Array2<f64> =
        read_npy(&args[0]).unwrap_or_else(|e| panic!("{}: {e} (float64 2D .npy)", args[0]));
    let theta: Array1<f64> =
        read_npy(&args[1]).unwrap_or_else(|e| panic!("{}: {e} (float64 1D .npy)", args[1]));
    let filter =
        Filter::parse(args.get(2).map_or("ramp", String::as_str)).unwrap_or_else(|e| panic!("{e}"));
    let repeats: usize = args
        .get(3)
        .map_or(5, |r| r.parse().expect("REPEATS must be an integer"));
    let (angles, n) = sinogram.dim();
    let values = sinogram
        .as_standard_layout()
        .to_owned()
        .into_raw_vec_and_offset()
        .0;
    let theta = theta.to_vec();
    let run = || {
        Fbp::new(n, &theta, filter)
            .and_then(|fbp| fbp.reconstruct(&values))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let mut image = run();
    let mut best = f64::INFINITY;
    for _ in 0..repeats {
        let start = Instant::now();
        image = run();
        best = best.min(start.elapsed().as_secs_f64());
    }
    if let Some(out) = args.get(4) {
        let image = Array2::from_shape_vec((n, n), image).expect("n x n values");
        write_npy(out, &image).unwrap_or_else(|e| panic!("{out}: {e}"));
    }
    println!(
        "photonqa_fbp filter={} angles={angles} detector={n} best_s={best:.6} threads={}",
        filter.name(),
        rayon::current_num_threads()
    );
}
