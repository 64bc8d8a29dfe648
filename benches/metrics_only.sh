#!/usr/bin/env bash
# `photonqa metrics A B` as a user runs it (whole process, both files read), with --only ssim and
# with every metric, against scikit-image's SSIM alone (Gaussian window, Wang et al. 2004, on
# arrays already in memory), in the same run, on the 256^3 float32 pair of
# benches/ssim_vs_skimage.py.
#
#   bash benches/metrics_only.sh              # N=256, best of 3 each
#   N=128 REPEATS=1 bash benches/metrics_only.sh
#
# Goals (issue 15): --only ssim >= 15x faster than scikit-image; every metric within 3x of
# --only ssim. The SSIM means must agree within 2e-5 (exit 1 otherwise).
# Ratios, not absolute times, are the result: these machines are shared and noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-256}
REPEATS=${REPEATS:-3}
WORK=${WORK:-/tmp/photonqa-metrics-bench}
# PHOTONQA=BINARY times that binary instead of building this checkout's.
bin=${PHOTONQA:-}
[ -n "$bin" ] || { cargo build --release --quiet; bin=target/release/photonqa; }
range=$(python3 benches/ssim_vs_skimage.py gen "$WORK" "$N")
pair=("$WORK/original.npy" "$WORK/decoded.npy" --json --data-range "$range")

best_of() { # command... -> best wall seconds of REPEATS runs; its output in $WORK/last.json
  local best=""
  for _ in $(seq "$REPEATS"); do
    local start end
    start=$(date +%s.%N)
    "$@" > "$WORK/last.json"
    end=$(date +%s.%N)
    best=$(echo "$end - $start" | bc | awk -v b="$best" '{ print (b == "" || $1 < b) ? $1 : b }')
  done
  echo "$best"
}

only=$(best_of "$bin" metrics "${pair[@]}" --only ssim)
ours_mean=$(python3 -c 'import json, sys; print(repr(json.load(open(sys.argv[1]))["ssim"]))' "$WORK/last.json")
all=$(best_of "$bin" metrics "${pair[@]}")
read -r skimage_mean skimage_s < <(python3 benches/ssim_vs_skimage.py skimage "$WORK" "$range" "$REPEATS")
echo "input: ${N}^3 float32 pair, data range $range; best of $REPEATS"
echo "scikit-image SSIM: ${skimage_s} s (mean $skimage_mean)"
echo "photonqa metrics --only ssim: ${only} s (mean $ours_mean), $(echo "scale=1; $skimage_s / $only" | bc)x faster than scikit-image (goal >= 15)"
echo "photonqa metrics, every metric: ${all} s, $(echo "scale=2; $all / $only" | bc)x --only ssim (goal <= 3)"
python3 -c 'import sys; d = abs(float(sys.argv[1]) - float(sys.argv[2])); print(f"|difference of SSIM means|: {d:.2e} (tolerance 2e-5)"); sys.exit(d > 2e-5)' "$ours_mean" "$skimage_mean"
