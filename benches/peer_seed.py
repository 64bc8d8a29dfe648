"""The seed workflow in NumPy + scikit-image + zlib, timed against a photonqa run of the same data.

Usage: python3 benches/peer_seed.py VOLUME.h5 PHOTONQA_RESULTS.jsonl PHOTONQA_SECONDS

Reads /volume, applies skimage threshold_otsu (zero-below), quantises to 4, 6, 8 bits over the
thresholded range, zlib-compresses each chunk of the same 16 slices photonqa uses at levels
1, 6, 9, and decodes; compares MSE, PSNR and the Otsu threshold with photonqa's results and prints
the ratio of wall times (both single-threaded).
"""

import json
import sys
import time
import zlib

import h5py
import numpy as np
from skimage.filters import threshold_otsu
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio

path, results_path, photonqa_seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
rows = [json.loads(line) for line in open(results_path)]
chunk = rows[0]["provenance"]["chunk_slices"]

start = time.perf_counter()
volume = h5py.File(path, "r")["/volume"][...]
threshold = threshold_otsu(volume)
kept = np.where(volume > threshold, volume, np.float32(0))
lo, hi = float(kept.min()), float(kept.max())
data_range = float(volume.max()) - float(volume.min())
peer = {}
for bits in (4, 6, 8):
    levels = 2**bits - 1
    q = np.clip(np.floor((kept.astype(np.float64) - lo) * levels / (hi - lo) + 0.5), 0, levels).astype(np.uint8)
    decoded = (lo + q.astype(np.float64) * (hi - lo) / levels).astype(np.float32)
    mse = mean_squared_error(volume, decoded)
    psnr = peak_signal_noise_ratio(volume, decoded, data_range=data_range)
    for level in (1, 6, 9):
        size = 0
        for z in range(0, q.shape[0], chunk):
            stream = zlib.compress(q[z : z + chunk].tobytes(), level)
            size += len(stream)
            assert zlib.decompress(stream) == q[z : z + chunk].tobytes()
        peer[(bits, level)] = (volume.nbytes / size, mse, psnr)
peer_seconds = time.perf_counter() - start

print(f"Otsu threshold: peer {threshold!r}, photonqa {rows[0]['fitted'][0]['threshold']!r}")
print(f"{'bits':>4} {'level':>5} {'ratio peer':>11} {'ratio pqa':>10} {'mse rel diff':>13} {'psnr diff dB':>13}")
for row in sorted(rows, key=lambda r: r["index"]):
    bits, level = row["params"]["quantize.bits"], row["params"]["deflate.level"]
    ratio, mse, psnr = peer[(bits, level)]
    d = row["distortion"]
    print(f"{bits:>4} {level:>5} {ratio:>11.3f} {row['rate']['ratio']:>10.3f} "
          f"{abs(d['mse'] - mse) / mse:>13.2e} {abs(d['psnr'] - psnr):>13.2e}")
print(f"wall time, one thread each: peer {peer_seconds:.1f} s, photonqa {photonqa_seconds:.1f} s, "
      f"photonqa is {peer_seconds / photonqa_seconds:.2f}x the peer's speed")
