//! Times photonqa's connected components on a mask `.npy` (used by
//! `benches/components_vs_scipy.sh`).
//!
//!     cargo run --release --example components_bench -- MASK.npy [face|full] [REPEATS]
//!
//! MASK.npy holds uint8 (nonzero = in the mask) or bool values, 2-D or 3-D. Prints one line:
//! `photonqa_components connectivity=<c> count=<n> volume=<v> boundary_faces=<f>
//! touching_border=<b> largest=<s> sum_sq=<sum of squared sizes> best_s=<seconds>
//! best_1thread_s=<seconds> threads=<n>`: the best wall time of REPEATS (default 5) calls of
//! `photonqa::analysis::components::components` on the global rayon pool (slabs in parallel,
//! merged in row order) after one warm-up call, and the same on a pool of one thread.

use std::path::Path;
use std::time::Instant;

use ndarray::ArrayD;
use ndarray_npy::read_npy;
use photonqa::analysis::components::{Components, Connectivity, components};

fn load(path: &str) -> (Vec<u8>, Vec<usize>) {
    let path = Path::new(path);
    let (values, shape) = match read_npy::<_, ArrayD<u8>>(path) {
        Ok(a) => (a.iter().copied().collect(), a.shape().to_vec()),
        Err(_) => {
            let a = read_npy::<_, ArrayD<bool>>(path).unwrap_or_else(|e| {
                panic!("{}: {e} (uint8 or bool .npy expected)", path.display())
            });
            (a.iter().map(|&b| b as u8).collect(), a.shape().to_vec())
        }
    };
    (values, shape)
}

/// The result and the best wall time of `repeats` runs after a warm-up run (each result is
/// dropped before the next run, so the peak memory is that of one run).
fn best_of(repeats: usize, mut run: impl FnMut() -> Components) -> (Components, f64) {
    let mut result = run();
    let mut best = f64::INFINITY;
    for _ in 0..repeats {
        drop(result);
        let start = Instant::now();
        result = run();
        best = best.min(start.elapsed().as_secs_f64());
    }
    (result, best)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!("usage: components_bench MASK.npy [face|full] [REPEATS]");
        std::process::exit(2);
    }
    let (mask, shape) = load(&args[0]);
    let connectivity = Connectivity::parse(args.get(1).map_or("face", String::as_str))
        .unwrap_or_else(|e| panic!("{e}"));
    let repeats: usize = args
        .get(2)
        .map_or(5, |r| r.parse().expect("REPEATS must be an integer"));
    let label = || components(&mask, &shape, connectivity).unwrap_or_else(|e| panic!("{e}"));
    let (result, best) = best_of(repeats, label);
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    let summary = |c: &Components| (c.count, c.volume, c.boundary_faces, c.sizes.clone());
    let want = summary(&result);
    drop(result);
    let (result, best_1thread) = single.install(|| best_of(repeats, label));
    assert!(
        summary(&result) == want,
        "the thread count changed the result"
    );
    let sum_sq: u128 = result.sizes.iter().map(|&s| s as u128 * s as u128).sum();
    println!(
        "photonqa_components connectivity={} count={} volume={} boundary_faces={} \
         touching_border={} largest={} sum_sq={sum_sq} best_s={best:.6} \
         best_1thread_s={best_1thread:.6} threads={}",
        connectivity.name(),
        result.count,
        result.volume,
        result.boundary_faces,
        result.touching_border,
        result.sizes.last().copied().unwrap_or(0),
        rayon::current_num_threads()
    );
}
