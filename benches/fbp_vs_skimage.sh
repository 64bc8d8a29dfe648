#!/usr/bin/env bash
# photonqa's filtered back-projection against scikit-image's iradon, in the same run: ramp
# filter, circle=True, a 181 angles x 640 detector sinogram (the tooth.h5 geometry) and a
# 720 x 1024 one.
#
#   bash benches/fbp_vs_skimage.sh                 # both sizes, ~1 min after the build
#   SIZES="181x640" REPEATS=1 bash benches/fbp_vs_skimage.sh
#
# Builds examples/fbp_bench.rs in release mode (best of 5 calls of Fbp::new + Fbp::reconstruct
# on the global rayon pool, one thread per core), generates seeded analytic sinograms with
# benches/fbp_vs_skimage.py, times scikit-image (best of REPEATS; iradon is single-threaded NumPy)
# and prints both times, the ratio and the relative RMSE of the two reconstructions.
# Ratios, not absolute times, are the result: these machines are shared and noisy.
#
# Target: photonqa >= 5x faster than iradon (2 cores, x86-64 built for the default SSE2 target).
# Measured 2026-11-25 (2 cores, shared, load average 7-9 from other builds): 181x640 scikit-image
# 0.99-1.12 s, photonqa 0.10-0.14 s, ratio 7.8-9.6x; 720x1024 scikit-image 11.0-13.4 s, photonqa
# 1.4-1.6 s, ratio 7.8-8.4x; relative RMSE 3.4e-14 and 5.4e-14.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"181x640 720x1024"}
REPEATS=${REPEATS:-2}
WORK=${WORK:-/tmp/photonqa-fbp-bench}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --example fbp_bench
for size in $SIZES; do
    angles=${size%x*}
    detector=${size#*x}
    python3 benches/fbp_vs_skimage.py gen "$WORK" "$angles" "$detector"
    line=$("$target/release/examples/fbp_bench" "$WORK/sino_${size}.npy" "$WORK/theta_${angles}.npy" \
        ramp 5 "$WORK/photonqa_${size}.npy")
    python3 benches/fbp_vs_skimage.py compare "$WORK" "$angles" "$detector" "$REPEATS" "$line"
done
