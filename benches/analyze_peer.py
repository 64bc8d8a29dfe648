"""The peer of `photonqa analyze` for benches/analyze_full_scale.sh: scikit-image's Otsu
threshold and scipy.ndimage.label of the pores (values <= threshold) on a whole HDF5 dataset,
timed, with its peak memory; prints one JSON line."""

import json
import resource
import sys
import time

import h5py
import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

path, dataset, connectivity = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.perf_counter()
with h5py.File(path, "r") as f:
    volume = f[dataset][...]
read = time.perf_counter() - start
t = float(threshold_otsu(volume))
mask = volume <= t
del volume
structure = ndimage.generate_binary_structure(3, 1 if connectivity == "face" else 3)
labels, count = ndimage.label(mask, structure)
seconds = time.perf_counter() - start
print(json.dumps({
    "otsu_threshold": t,
    "porosity": float(np.count_nonzero(mask) / mask.size),
    "pore_count": int(count),
    "seconds": seconds,
    "read_seconds": read,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
