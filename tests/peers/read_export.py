"""Reads a dataset written by `photonqa export` with h5py + hdf5plugin (the deployed artifact
as a facility's users open it), inverts the lossy preprocessing from its attributes as the
export documents, and compares with the decoded array photonqa computed.

    python3 tests/peers/read_export.py FILE.h5 /path DECODED.npy

Prints one JSON object: `equal` (same dtype, shape and bits), `max_abs_diff`, `mse`, `chunk_l2`
(the L2 norm of the difference over each chunk of rows along axis 0), the stored `dtype`,
`chunks`, `storage_size` (bytes the file stores for the dataset), and `filters` as
[[id, [cd_values...]], ...]. Exit code 0 unless reading fails.
"""

import json
import sys

import h5py
import hdf5plugin  # noqa: F401  (registers the third-party filters with HDF5)
import numpy as np


def invert(stored, attrs):
    """The decoded array from the stored one, as the export's attributes describe."""
    decoded_dtype = np.dtype(attrs["photonqa_decoded_dtype"])
    values = stored
    if "photonqa_quantize_lo" in attrs:
        lo = float(attrs["photonqa_quantize_lo"])
        hi = float(attrs["photonqa_quantize_hi"])
        levels = float(attrs["photonqa_quantize_levels"])
        # The documented order: lo + q * (hi - lo) / levels, in float64.
        values = lo + values.astype(np.float64) * (hi - lo) / levels
    if attrs.get("photonqa_threshold_mode") == "binarise":
        values = values.astype(np.float64)
    return values.astype(decoded_dtype)


def main():
    path, name, decoded_path = sys.argv[1:4]
    with h5py.File(path, "r") as f:
        dset = f[name]
        plist = dset.id.get_create_plist()
        filters = [list(plist.get_filter(i)[:3:2]) for i in range(plist.get_nfilters())]
        stored = dset[...]
        attrs = dict(dset.attrs)
        chunks = list(dset.chunks)
        storage_size = int(dset.id.get_storage_size())
    decoded = np.load(decoded_path)
    mine = invert(stored, attrs)
    same_shape = mine.shape == decoded.shape and mine.dtype == decoded.dtype
    equal = bool(same_shape and np.array_equal(mine.view(np.uint8), decoded.view(np.uint8)))
    diff = (
        float(np.max(np.abs(mine.astype(np.float64) - decoded.astype(np.float64))))
        if mine.shape == decoded.shape
        else None
    )
    rows = chunks[0]
    difference = (
        mine.astype(np.float64) - decoded.astype(np.float64)
        if mine.shape == decoded.shape
        else None
    )
    chunk_l2 = [
        float(np.sqrt(np.sum(difference[i:i + rows] ** 2)))
        for i in range(0, difference.shape[0], rows)
    ] if mine.shape == decoded.shape else None
    mse = float(np.mean(difference ** 2)) if mine.shape == decoded.shape else None
    print(json.dumps({
        "equal": equal,
        "max_abs_diff": diff,
        "mse": mse,
        "chunk_l2": chunk_l2,
        "dtype": str(stored.dtype),
        "chunks": chunks,
        "storage_size": storage_size,
        "filters": [[int(i), [int(v) for v in cd]] for i, cd in filters],
    }))


if __name__ == "__main__":
    main()
