#!/usr/bin/env bash
# The seed sweep against the codec-alone floor, in the same run: photonqa's whole run of
# scenarios/seed-otsu-uint8-zip.toml (threshold -> quantize 4/6/8 bits -> deflate 1/6/9, with
# SSIM, segmentation and porosity) against zlib compressing and decompressing the very same
# quantised bytes with the same chunking and levels, nothing else (benches/sweep_floor.py).
#
#   bash benches/sweep_floor.sh                          # 1000x256x256, 1 and 2 threads
#   SLICES=15000 THREADS=2 bash benches/sweep_floor.sh   # full scale (3.75 GB), 2 threads
#
# For each thread count: photonqa's wall time and peak RSS (GNU time), the floor on as many
# threads, and their ratio (the goal: <= 1.5); with 1 and 2, photonqa's speed-up (goal >= 1.8).
# Ratios, not absolute times, are the result: these machines are shared and noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/seed_scenario.sh
SLICES=${SLICES:-1000}
THREADS=${THREADS:-1 2}
WORK=${WORK:-/tmp/photonqa-sweep-floor}
mkdir -p "$WORK"
# PHOTONQA=BINARY times that binary instead of building this checkout's.
bin=${PHOTONQA:-}
[ -n "$bin" ] || { cargo build --release --quiet; bin=target/release/photonqa; }

volume="$WORK/porous-tomo-${SLICES}.h5"
[ -f "$volume" ] || "$bin" gen porous-tomo --shape "$SLICES,256,256" --out "$volume"
scenario=$(seed_scenario_for "$volume" "seed-floor-$SLICES" "$WORK")
declare -A wall
for threads in $THREADS; do
  out="$WORK/out-$SLICES-$threads"
  rm -rf "$out"
  /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$bin" run "$scenario" --out "$out" \
    --threads "$threads" > "$WORK/run-$SLICES-$threads.txt"
  read -r seconds rss_kib < "$WORK/time.txt"
  wall[$threads]=$seconds
  floor=$(python3 benches/sweep_floor.py "$volume" "$out/results.jsonl" "$threads" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["floor_seconds"])')
  echo "${SLICES}x256x256, $threads thread(s): photonqa ${seconds} s (peak RSS $((rss_kib / 1024)) MiB), zlib floor ${floor} s, ratio $(echo "scale=2; $seconds / $floor" | bc)"
done
if [ -n "${wall[1]:-}" ] && [ -n "${wall[2]:-}" ]; then
  echo "2 threads are $(echo "scale=2; ${wall[1]} / ${wall[2]}" | bc)x faster than 1"
fi
