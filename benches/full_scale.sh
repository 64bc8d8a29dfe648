#!/usr/bin/env bash
# The seed workflow at full scale, and photonqa against its Python peer on the same data.
#
#   bash benches/full_scale.sh            # 15000x256x256 float32 (3.75 GB), ~10 min on 2 cores
#   SLICES=1500 bash benches/full_scale.sh
#
# 1. Generates the porous-tomo volume (SLICES x 256 x 256 float32) and runs
#    scenarios/seed-otsu-uint8-zip.toml on it under GNU time: prints wall time and peak RSS
#    (the issue's bound: < 2 GB).
# 2. Runs the same workflow on the first PEER_SLICES slices with photonqa and with
#    benches/peer_seed.py (NumPy + scikit-image + zlib, one thread) and prints the time ratio
#    and the agreement of MSE, PSNR and Otsu threshold.
# Ratios, not absolute times, are the result: these machines are shared and noisy.
#
# Measured 2026-11-25 on the project's machine kind (2 cores, 24 GB, shared):
#   full scale 15000x256x256: peak RSS 44 MiB (bound: 2 GB), wall 8 min 49 s for 9 points with
#   2 threads while other jobs ran; ratios 9.2 (8 bits, level 1) to 26.5 (4 bits, level 9).
#   1000x256x256, one thread each: photonqa 1.03x the speed of NumPy + scikit-image + zlib
#   (zlib is 45% of photonqa's profile; photonqa also hashes, verifies and re-reads per point);
#   Otsu threshold bit-identical, compressed sizes identical, MSE within 2e-11 relative.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/seed_scenario.sh
SLICES=${SLICES:-15000}
PEER_SLICES=${PEER_SLICES:-1000}
WORK=${WORK:-/tmp/photonqa-full-scale}
mkdir -p "$WORK"
cargo build --release --quiet
bin=target/release/photonqa

echo "== full scale: ${SLICES}x256x256 float32"
full="$WORK/porous-tomo-${SLICES}.h5"
[ -f "$full" ] || /usr/bin/time -f "gen: %e s, peak RSS %M KiB" "$bin" gen porous-tomo --shape "$SLICES,256,256" --out "$full"
rm -rf "$WORK/out-full"
/usr/bin/time -v "$bin" run "$(seed_scenario_for "$full" "seed-full-$SLICES" "$WORK")" --out "$WORK/out-full" \
  > "$WORK/run-full.txt" 2> "$WORK/time-full.txt"
cat "$WORK/run-full.txt"
rss_kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time-full.txt")
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/time-full.txt")
echo "full scale: wall ${wall}, peak RSS $((rss_kib / 1024)) MiB"

echo "== photonqa vs NumPy/scikit-image/zlib on ${PEER_SLICES}x256x256"
part="$WORK/porous-tomo-${PEER_SLICES}.h5"
[ -f "$part" ] || "$bin" gen porous-tomo --shape "$PEER_SLICES,256,256" --out "$part"
rm -rf "$WORK/out-part"
start=$(date +%s.%N)
"$bin" run "$(seed_scenario_for "$part" "seed-part-$PEER_SLICES" "$WORK")" --out "$WORK/out-part" --threads 1 > /dev/null
photonqa_s=$(echo "$(date +%s.%N) - $start" | bc)
python3 benches/peer_seed.py "$part" "$WORK/out-part/results.jsonl" "$photonqa_s"
