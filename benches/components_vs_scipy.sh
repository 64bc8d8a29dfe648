#!/usr/bin/env bash
# photonqa's connected components against scipy.ndimage.label on a 256^3 mask, in the same run,
# for both connectivities (face: scipy's default structure; full: generate_binary_structure(3, 3)).
#
#   bash benches/components_vs_scipy.sh                 # N=256, random-porous mask
#   N=128 KIND=noise REPEATS=1 bash benches/components_vs_scipy.sh
#
# Builds examples/components_bench.rs in release mode (best of REPEATS calls of
# photonqa::analysis::components::components: slabs labelled in parallel on the rayon pool, one
# thread per core, merged in row order; and the same on one thread), generates the mask with
# benches/components_vs_scipy.py (seeded; KIND porous or noise, see there), times
# scipy.ndimage.label (best of REPEATS) and prints both times, the ratio, whether the summaries
# (count, voxels, faces, border count, largest, sum of squared sizes) agree exactly, and the
# peak resident memory of the photonqa process (GNU time; it includes the 16 MiB mask).
# Ratios, not absolute times, are the result: these machines are shared and noisy.
#
# Target: photonqa >= 2x faster than scipy on 2 threads. Measured 2026-11-25 (2 cores, shared):
# porous, face: scipy 1.17.1 0.130 s, photonqa 0.019 s on 2 threads (6.9x; one thread 0.036 s,
# 3.6x); porous, full: scipy 0.216 s, photonqa 0.026 s (8.4x; one thread 4.3x); peak memory
# 34 MiB. KIND=noise (about a million components with face connectivity, the worst case for
# runs): face 2.2x on 2 threads (1.2x on one), full 3.7x (1.9x on one), 180 MiB resident (about
# 75 MiB live heap; the rest is glibc keeping freed slab buffers). Summaries agree exactly.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-256}
KIND=${KIND:-porous}
REPEATS=${REPEATS:-5}
WORK=${WORK:-/tmp/photonqa-components-bench}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --example components_bench
python3 benches/components_vs_scipy.py gen "$WORK" "$N" "$KIND"
for connectivity in face full; do
    echo "== $KIND ${N}^3, $connectivity connectivity"
    line=$(/usr/bin/time -f "%M" -o "$WORK/rss_kib" \
        "$target/release/examples/components_bench" "$WORK/mask.npy" "$connectivity" "$REPEATS")
    python3 benches/components_vs_scipy.py compare "$WORK" "$connectivity" "$REPEATS" "$line"
    echo "photonqa peak memory: $(( $(cat "$WORK/rss_kib") / 1024 )) MiB (mask: $(( N * N * N / 1048576 )) MiB)"
done
