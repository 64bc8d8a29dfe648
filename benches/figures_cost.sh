#!/usr/bin/env bash
# What the report (figures, triptychs, page) costs of a whole run, in the same invocation: for
# each scenario, a full `photonqa run` into a fresh directory, then `photonqa run --resume` on
# that finished directory, which measures no point again and only writes the outputs (the
# report with its figures and the worst slices of the featured and first failing points).
#
#   bash benches/figures_cost.sh                               # saxs and seed, 5 rounds
#   SCENARIOS="scenarios/sx.toml" ROUNDS=9 bash benches/figures_cost.sh
#   BASE=/path/to/older/photonqa bash benches/figures_cost.sh  # also this binary's full runs
#
# Prints, per scenario, the medians of CPU seconds (user + sys) and the largest peak RSS of the
# full runs and of the report-only reruns, and the report's share of the full run's CPU; with
# BASE, the full runs of that binary interleaved with this checkout's, and the ratios (the
# figures' goal, issue 21: within 5 % of the binary before them). Ratios, not absolute times,
# are the result: these machines are shared and noisy.
#
# Both binaries are copied afresh into the work directory before timing: a binary's resident
# file pages depend on how its file entered the page cache (a freshly written file maps in
# larger pieces), which alone moved the peak RSS of a SAXS run by 4 MiB (7 %).
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIOS=${SCENARIOS:-scenarios/saxs.toml scenarios/seed-otsu-uint8-zip.toml}
ROUNDS=${ROUNDS:-5}
THREADS=${THREADS:-2}
WORK=${WORK:-/tmp/photonqa-figures-cost}
rm -rf "$WORK"
mkdir -p "$WORK"
# PHOTONQA=BINARY times that binary instead of building this checkout's.
bin=${PHOTONQA:-}
[ -n "$bin" ] || { cargo build --release --quiet; bin=target/release/photonqa; }
cp "$bin" "$WORK/photonqa"
[ -z "${BASE:-}" ] || cp "$BASE" "$WORK/photonqa-base"

# timed NAME BINARY ARGS...: appends "cpu_seconds peak_rss_kib" to $WORK/NAME.txt
timed() {
  local name=$1
  shift
  /usr/bin/time -f "%U %S %M" -o "$WORK/time.txt" "$@" > /dev/null
  awk '{ print $1 + $2, $3 }' "$WORK/time.txt" >> "$WORK/$name.txt"
}

# summary NAME: "median_cpu max_rss_kib" of $WORK/NAME.txt
summary() {
  python3 -c '
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
print(statistics.median(float(r[0]) for r in rows), max(int(r[1]) for r in rows))' "$WORK/$1.txt"
}

for scenario in $SCENARIOS; do
  name=$(basename "$scenario" .toml)
  for round in $(seq "$ROUNDS"); do
    out="$WORK/out-$name"
    rm -rf "$out"
    timed "$name-full" "$WORK/photonqa" run "$scenario" --out "$out" --threads "$THREADS"
    timed "$name-report" "$WORK/photonqa" run "$scenario" --out "$out" --threads "$THREADS" --resume
    if [ -n "${BASE:-}" ]; then
      rm -rf "$out-base"
      timed "$name-base" "$WORK/photonqa-base" run "$scenario" --out "$out-base" --threads "$THREADS"
    fi
  done
  read -r full_cpu full_rss < <(summary "$name-full")
  read -r report_cpu report_rss < <(summary "$name-report")
  echo "$name ($ROUNDS rounds, $THREADS threads): full run ${full_cpu} CPU s, peak RSS $((full_rss / 1024)) MiB;" \
    "report alone ${report_cpu} CPU s, peak RSS $((report_rss / 1024)) MiB;" \
    "the report is $(python3 -c "print(f'{100 * $report_cpu / $full_cpu:.0f}')") % of the run's CPU"
  if [ -n "${BASE:-}" ]; then
    read -r base_cpu base_rss < <(summary "$name-base")
    echo "  BASE: full run ${base_cpu} CPU s, peak RSS $((base_rss / 1024)) MiB;" \
      "this checkout / BASE: CPU $(python3 -c "print(f'{$full_cpu / $base_cpu:.3f}')")," \
      "peak RSS $(python3 -c "print(f'{$full_rss / $base_rss:.3f}')")"
  fi
done
