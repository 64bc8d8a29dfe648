#!/usr/bin/env bash
# `photonqa.metrics` (Python, arrays in memory) against `photonqa metrics` (CLI, the same arrays
# as .npy files in the page cache) on two N^3 float32 arrays, in the same run: best of REPEATS
# wall times of each, their ratio, and whether the numbers are identical. Goal: ratio <= 1.2
# (the binding reads the NumPy buffers in place: no hidden copy).
#
#   bash benches/python_metrics.sh                      # N=256, release builds
#   PROFILE=dev N=128 bash benches/python_metrics.sh    # the dev builds already installed
#
# With PROFILE=release (the default) it builds the CLI with cargo and installs the package with
# `pip install ./python` (both release) into the python3 on PATH; with PROFILE=dev it uses
# target/debug/photonqa and the installed package as they are (.ci/python installs a dev one).
# Ratios, not absolute times, are the result: these machines are shared and noisy.
#
# Measured 2026-12-07 (2 cores, shared with builds): release, N=256, best of 3: CLI 1.09 s,
# photonqa.metrics 1.06 s, ratio 0.97, identical numbers (dev builds: 64.7 s and 60.4 s).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-256}
REPEATS=${REPEATS:-3}
PROFILE=${PROFILE:-release}
WORK=${WORK:-/tmp/photonqa-python-metrics}
mkdir -p "$WORK"
if [ "$PROFILE" = release ]; then
  cargo build --release --quiet
  python3 -m pip install -q ./python
  bin=target/release/photonqa
else
  bin=target/debug/photonqa
fi
python3 - "$bin" "$WORK" "$N" "$REPEATS" <<'PY'
import json, math, subprocess, sys, time
from pathlib import Path

import numpy as np
import photonqa

bin, work, n, repeats = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(2026)
original = rng.random((n, n, n), dtype=np.float32)
decoded = original + rng.normal(0, 1e-3, original.shape).astype(np.float32)
np.save(work / "original.npy", original)
np.save(work / "decoded.npy", decoded)

def best(run):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result

command = [bin, "metrics", str(work / "original.npy"), str(work / "decoded.npy"), "--json"]
cli_seconds, out = best(lambda: subprocess.run(command, capture_output=True, text=True, check=True).stdout)
python_seconds, python = best(lambda: photonqa.metrics(original, decoded))

def from_json(v):
    if isinstance(v, dict):
        return {k: from_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [from_json(x) for x in v]
    return float(v) if v in ("inf", "-inf", "nan") else v

def same(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    return a == b

identical = same(python, from_json(json.loads(out)))
print(f"{n}^3 float32 x 2, every metric, best of {repeats}:")
print(f"  CLI (files in the page cache): {cli_seconds:.2f} s")
print(f"  photonqa.metrics (in memory):  {python_seconds:.2f} s")
print(f"  ratio Python/CLI: {python_seconds / cli_seconds:.2f} (goal <= 1.2); identical numbers: {identical}")
PY
