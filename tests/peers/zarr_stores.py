"""Writes Zarr v2 and v3 stores with zarr-python and what it reads back, for tests/zarr_inputs.rs.

Usage: python3 zarr_stores.py OUTDIR

Each case is one store OUTDIR/CASE.zarr holding one array (at the root or in a group), with
chunks that do not divide the shape (edge chunks are partial), and OUTDIR/CASE.npy: the array
zarr-python reads from the store, which photonqa must equal exactly. Compression: zarr-python's
default (zstd, for both formats), none, gzip, and sharding (v3). Values come from a numpy
Generator seeded from the case's name and include each dtype's extremes. Prints the cases as
JSON lines. OUTDIR/errors/ holds stores photonqa must refuse (blosc, complex, a 1-D array).
"""

import json
import sys
from pathlib import Path

import numpy as np
from fixture_kit import extreme_values
import zarr
from zarr.codecs import BloscCodec, GzipCodec

# (name, format, dtype, shape, chunks, compression, path in the store)
CASES = [
    ("v3_u16_default", 3, "uint16", (5, 7, 6), (2, 4, 4), "default", "/"),
    ("v3_f32_none", 3, "float32", (6, 5, 9), (4, 5, 4), None, "/"),
    ("v3_i16_gzip_group", 3, "int16", (7, 6, 5), (3, 3, 3), "gzip", "/scan/data"),
    ("v3_f64_sharded", 3, "float64", (8, 6, 6), (2, 3, 3), "shards", "/"),
    ("v3_u8_2d", 3, "uint8", (11, 13), (4, 5), "default", "/"),
    ("v2_f32_default", 2, "float32", (5, 7, 6), (2, 4, 4), "default", "/"),
    ("v2_u8_none", 2, "uint8", (6, 5, 4), (4, 2, 3), None, "/"),
    ("v2_i32_gzip_group", 2, "int32", (7, 3, 8), (3, 3, 3), "gzip", "/entry/frames"),
    ("v2_u64_default", 2, "uint64", (4, 4, 4), (3, 3, 3), "default", "/"),
]


def create(store, path, zarr_format, array, chunks, compression):
    options = dict(shape=array.shape, dtype=array.dtype, chunks=chunks)
    if compression is None:
        options["compressors"] = None
    elif compression == "gzip":
        options["compressors"] = GzipCodec(level=5) if zarr_format == 3 else {"id": "gzip", "level": 5}
    elif compression == "shards":
        options["shards"] = tuple(2 * c for c in chunks)
    elif compression == "blosc":
        options["compressors"] = BloscCodec(cname="lz4")
    if path == "/":
        target = zarr.create_array(store, zarr_format=zarr_format, **options)
    else:
        group, name = path.strip("/").rsplit("/", 1)
        root = zarr.open_group(store, mode="w", zarr_format=zarr_format)
        target = root.require_group(group).create_array(name, **options)
    target[...] = array


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, zarr_format, dtype, shape, chunks, compression, path in CASES:
        array = extreme_values(name, dtype, shape)
        store = out / f"{name}.zarr"
        create(store, path, zarr_format, array, chunks, compression)
        read = zarr.open_array(store, path=path.strip("/"), mode="r")[...]
        assert read.dtype == array.dtype and np.array_equal(read, array), name
        np.save(out / f"{name}.npy", read)
        source = f"{name}.zarr" if path == "/" else f"{name}.zarr::{path}"
        print(json.dumps({"name": name, "source": source, "shape": list(read.shape), "dtype": str(read.dtype)}))
    errors = out / "errors"
    create(errors / "blosc.zarr", "/", 3, extreme_values("blosc", "uint16", (4, 4, 4)), (2, 2, 2), "blosc")
    create(errors / "complex.zarr", "/", 3, np.zeros((3, 3, 3), np.complex64), (3, 3, 3), "default")
    create(errors / "line.zarr", "/", 3, np.zeros(9, np.float32), (4,), "default")


if __name__ == "__main__":
    main()
