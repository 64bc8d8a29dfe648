"""Writes NeXus and plain HDF5 files with h5py for tests/nexus_inputs.rs.

Usage: python3 nexus_files.py OUTDIR

- scan.nxs: the full NeXus chain (root `default` -> NXentry `default` -> NXdata `signal`) to
  /entry/data/counts (uint32), beside other datasets of rank 3; counts.npy holds the signal
  as h5py reads it.
- classes.nxs: no `default` attributes, one NXentry holding one NXdata whose `signal` names
  `frames` (float32); attributes written as fixed-length ASCII (np.bytes_), as C writers do;
  frames.npy holds it.
- single.h5: plain HDF5, one dataset of rank 3 (/volume, int16) and one of rank 1; volume.npy.
- many.h5: plain HDF5, two datasets of rank 3 and no default.
- broken.nxs: root `default` names an entry that does not exist.
"""

import sys
from pathlib import Path

import h5py
import numpy as np


def main():
    out = Path(sys.argv[1])
    rng = np.random.default_rng(17)

    counts = rng.poisson(3.0, size=(4, 6, 5)).astype(np.uint32)
    with h5py.File(out / "scan.nxs", "w") as f:
        f.attrs["default"] = "entry"
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["default"] = "data"
        data = entry.create_group("data")
        data.attrs["NX_class"] = "NXdata"
        data.attrs["signal"] = "counts"
        data.create_dataset("counts", data=counts, chunks=(1, 6, 5), compression="gzip")
        detector = entry.create_group("instrument/detector")
        detector.create_dataset("dark", data=np.zeros((4, 6, 5), np.uint32))
        f.create_group("other").attrs["NX_class"] = "NXentry"
    np.save(out / "counts.npy", counts)

    frames = rng.normal(size=(3, 7, 4)).astype(np.float32)
    with h5py.File(out / "classes.nxs", "w") as f:
        entry = f.create_group("scan_1")
        entry.attrs["NX_class"] = np.bytes_("NXentry")
        data = entry.create_group("measurement")
        data.attrs["NX_class"] = np.bytes_("NXdata")
        data.attrs["signal"] = np.bytes_("frames")
        data.create_dataset("frames", data=frames)
        entry.create_dataset("monitor", data=np.ones((3, 7, 4), np.float32))
    np.save(out / "frames.npy", frames)

    volume = rng.integers(-1000, 1000, size=(5, 3, 4), dtype=np.int16)
    with h5py.File(out / "single.h5", "w") as f:
        f.create_dataset("volume", data=volume)
        f.create_dataset("theta", data=np.arange(5.0))
    np.save(out / "volume.npy", volume)

    with h5py.File(out / "many.h5", "w") as f:
        f.create_dataset("a/first", data=np.zeros((2, 3, 4), np.float32))
        f.create_dataset("b/second", data=np.zeros((2, 3), np.float32))

    with h5py.File(out / "broken.nxs", "w") as f:
        f.attrs["default"] = "entry"
        f.create_group("scan").attrs["NX_class"] = "NXentry"


if __name__ == "__main__":
    main()
