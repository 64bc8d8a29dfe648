"""h5py + hdf5plugin and photonqa's HDF5 filters in one process: hdf5plugin binds its plugin
files to h5py's HDF5 library, photonqa binds private copies to its own (src/data/hdf5plugins.rs),
and each keeps working after the other ran."""

import h5py
import hdf5plugin
import numpy as np

import photonqa
from conftest import REFERENCE

# The accuracy of both the SZ3 file h5py writes and the ZFP point photonqa measures.
TOLERANCE = 1e-3


def chunked(array):
    """h5py's chunking of `array` as photonqa's `chunk_slices = 16` chunks it."""
    return (16,) + array.shape[1:]


def stored_bytes(dataset):
    """The bytes of `dataset`'s chunks as the file stores them."""
    info = dataset.id.get_chunk_info
    return sum(info(i).size for i in range(dataset.id.get_num_chunks()))


def test_h5py_and_photonqa_both_run_hdf5plugins_filters(tmp_path):
    with h5py.File(REFERENCE / "porous-tomo.h5", "r") as f:
        volume = f["/volume"][...]
    compressed = tmp_path / "sz3.h5"
    with h5py.File(compressed, "w") as f:
        f.create_dataset(
            "volume",
            data=volume,
            chunks=chunked(volume),
            **hdf5plugin.SZ3(absolute=TOLERANCE),
        )
    with h5py.File(compressed, "r") as f:
        decoded = f["volume"][...]
    assert np.abs(decoded.astype(np.float64) - volume).max() <= TOLERANCE

    # The same ZFP filter by h5py, on the array photonqa reads from the SZ3 file.
    with h5py.File(tmp_path / "zfp.h5", "w") as f:
        f.create_dataset(
            "volume",
            data=decoded,
            chunks=chunked(decoded),
            **hdf5plugin.Zfp(accuracy=TOLERANCE),
        )
    # Read from the closed file: in the writing one, h5py's chunk cache holds unfiltered chunks.
    with h5py.File(tmp_path / "zfp.h5", "r") as f:
        zfp_bytes = stored_bytes(f["volume"])
        zfp_error = np.abs(f["volume"][...].astype(np.float64) - decoded).max()

    scenario = photonqa.Scenario.from_toml(
        f"""
[scenario]
name = "hdf5plugin-in-python"
chunk_slices = 16
artifact = "hdf5"

[input]
source = "{compressed}::/volume"

[[variant]]
name = "zfp"

[[variant.pipeline]]
stage = "zfp"
mode = "accuracy"
tolerance = {TOLERANCE}

[metrics]
distortion = ["max_abs_error"]
""",
        tmp_path / "scenario.toml",
    )
    [row] = photonqa.run(scenario, tmp_path / "out", progress=False).rows
    assert row["status"] == "ok", row.get("error")
    assert row["rate"]["compressed_bytes"] == zfp_bytes
    assert row["distortion"]["max_abs_error"] == zfp_error

    # h5py's own plugin instances still decode.
    with h5py.File(compressed, "r") as f:
        assert np.array_equal(f["volume"][...], decoded)
