"""Cross-check of the sz3 and zfp stages against the HDF5 filters of hdf5plugin (the C
libraries as the Python ecosystem ships them): the porous reference volume is written with
h5py in chunks of 16 slices through hdf5plugin's SZ3 (filter 32024) and ZFP (32013) filters,
read back after the file is closed, and the compressed size and the largest error are recorded
in tests/fixtures/codecs/expected.json. tests/codecs_crosscheck.rs runs photonqa's stages on the
same chunks and checks that the bounds hold on both sides and the ratios are of the same order
(the libraries' versions and containers differ: hdf5plugin 7 bundles SZ3 and ZFP builds of its
own, photonqa adds numcodecs' header and a checksum per chunk).

    python3 tests/peers/codecs_crosscheck.py          # regenerate
    python3 tests/peers/codecs_crosscheck.py --check  # verify the committed fixture reproduces
"""

import datetime
import json
import sys
import tempfile
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/fixtures/codecs/expected.json"
CHUNK = 16

CASES = [
    ("sz3", "abs_error", 1e-4, lambda v: hdf5plugin.SZ3(absolute=v)),
    ("sz3", "abs_error", 1e-3, lambda v: hdf5plugin.SZ3(absolute=v)),
    ("sz3", "abs_error", 1e-2, lambda v: hdf5plugin.SZ3(absolute=v)),
    ("zfp", "tolerance", 1e-4, lambda v: hdf5plugin.Zfp(accuracy=v)),
    ("zfp", "tolerance", 1e-3, lambda v: hdf5plugin.Zfp(accuracy=v)),
    ("zfp", "tolerance", 1e-2, lambda v: hdf5plugin.Zfp(accuracy=v)),
    ("zfp", "rate", 4.0, lambda v: hdf5plugin.Zfp(rate=v)),
    ("zfp", "rate", 8.0, lambda v: hdf5plugin.Zfp(rate=v)),
]


def measure(volume, compression):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.h5"
        with h5py.File(path, "w") as f:
            d = f.create_dataset(
                "v", data=volume, chunks=(CHUNK,) + volume.shape[1:], **compression
            )
            stored = d.id.get_storage_size()
        # Read after closing: HDF5's chunk cache would otherwise return the original.
        with h5py.File(path, "r") as f:
            decoded = f["v"][...]
    error = np.abs(decoded.astype(np.float64) - volume.astype(np.float64)).max()
    return stored, float(error)


def generate():
    with h5py.File(ROOT / "reference-data/porous-tomo.h5", "r") as f:
        volume = f["/volume"][...]
    cases = []
    for stage, param, value, filt in CASES:
        stored, error = measure(volume, filt(value))
        cases.append(
            {
                "stage": stage,
                "param": param,
                "value": value,
                "compressed_bytes": int(stored),
                "ratio": volume.nbytes / stored,
                "max_abs_error": repr(error),
            }
        )
    return {
        "provenance": {
            "script": "tests/peers/codecs_crosscheck.py",
            "tools": {
                "hdf5plugin": hdf5plugin.version,
                "h5py": h5py.__version__,
                "hdf5": h5py.version.hdf5_version,
                "numpy": np.__version__,
            },
            "input": "reference-data/porous-tomo.h5::/volume",
            "chunk_slices": CHUNK,
        },
        "cases": cases,
    }


def main():
    expected = generate()
    if "--check" in sys.argv:
        old = json.loads(OUT.read_text())
        old["provenance"].pop("date", None)
        if old != json.loads(json.dumps(expected)):
            sys.exit(f"{OUT} does not reproduce")
        print(f"{OUT}: reproduced")
        return
    expected["provenance"]["date"] = datetime.date.today().isoformat()
    OUT.write_text(json.dumps(expected, indent=1) + "\n")
    for c in expected["cases"]:
        print(c)


if __name__ == "__main__":
    main()
