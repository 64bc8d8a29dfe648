"""The codec-alone floor of a seed sweep: zlib compress + decompress of the very bytes photonqa's
points compress, with the same chunking and levels, nothing else timed.

Usage: python3 benches/sweep_floor.py VOLUME.h5 RESULTS.jsonl THREADS

For each bit depth of RESULTS (a run of scenarios/seed-otsu-uint8-zip.toml on /volume of
VOLUME), rebuilds the quantised chunks from the fitted Otsu threshold and range photonqa
reports (threshold zero-below, then q = clip(rint((x - lo) L / (hi - lo)), 0, L), L = 2^bits - 1,
rint taking ties to even as photonqa does), untimed. Then times zlib.compress at each level of
the points and zlib.decompress of every stream, over the chunks on THREADS threads (CPython's
zlib releases the GIL on buffers this large). The compressed sizes must equal photonqa's
`compressed_bytes`, which proves the bytes the same. Prints one JSON line:
{"floor_seconds": ..., "points": ..., "threads": ...}.
"""

import json
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np

volume_path, results_path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = [json.loads(line) for line in open(results_path)]
chunk = rows[0]["provenance"]["chunk_slices"]
by_bits = {}
for row in rows:
    assert row["status"] == "ok", row
    by_bits.setdefault(row["params"]["quantize.bits"], []).append(row)


def quantised_chunks(dataset, threshold, lo, hi, bits):
    """The uint8 chunks photonqa's quantize stage makes, chunk by chunk."""
    levels = 2**bits - 1
    for z in range(0, dataset.shape[0], chunk):
        x = dataset[z : z + chunk]
        kept = np.where(x > threshold, x, np.float32(0)).astype(np.float64)
        q = np.clip(np.rint((kept - lo) * levels / (hi - lo)), 0, levels).astype(np.uint8)
        yield q.tobytes()


def round_trip(args):
    data, level = args
    stream = zlib.compress(data, level)
    if zlib.decompress(stream) != data:
        raise SystemExit("zlib did not decode bit-exact")
    return len(stream)


floor = 0.0
with h5py.File(volume_path, "r") as f, ThreadPoolExecutor(threads) as pool:
    dataset = f["/volume"]
    for bits, points in sorted(by_bits.items()):
        fitted = points[0]["fitted"]
        threshold = fitted[0]["threshold"]
        lo, hi = fitted[1]["range"]
        chunks = list(quantised_chunks(dataset, threshold, lo, hi, bits))
        for row in points:
            level = row["params"]["deflate.level"]
            start = time.perf_counter()
            size = sum(pool.map(round_trip, [(c, level) for c in chunks]))
            floor += time.perf_counter() - start
            expected = row["rate"]["compressed_bytes"]
            if size != expected:
                raise SystemExit(f"{bits} bits, level {level}: zlib {size} bytes, photonqa {expected}")
print(json.dumps({"floor_seconds": floor, "points": len(rows), "threads": threads}))
