"""h5py + hdf5plugin and photonqa's HDF5 filters in one process: hdf5plugin binds its plugin
files to h5py's HDF5 library, photonqa binds private copies to its own (src/data/hdf5plugins.rs),
and each keeps working after the other ran."""

import h5py
import hdf5plugin
import numpy as np

import photonqa
from conftest import REFERENCE

# The error bound of the SZ3 file h5py writes and of the SZ3 and ZFP points photonqa measures.
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

    # The same SZ3 and ZFP filters by h5py, on the array photonqa reads from the SZ3 file.
    expected = {}
    for name, options in [
        ("sz3", hdf5plugin.SZ3(absolute=TOLERANCE)),
        ("zfp", hdf5plugin.Zfp(accuracy=TOLERANCE)),
    ]:
        with h5py.File(tmp_path / f"{name}.h5", "w") as f:
            f.create_dataset("volume", data=decoded, chunks=chunked(decoded), **options)
        # Read from the closed file: in the writing one, h5py's chunk cache holds unfiltered
        # chunks.
        with h5py.File(tmp_path / f"{name}.h5", "r") as f:
            error = np.abs(f["volume"][...].astype(np.float64) - decoded).max()
            expected[name] = (stored_bytes(f["volume"]), error)

    scenario = photonqa.Scenario.from_toml(
        f"""
[scenario]
name = "hdf5plugin-in-python"
chunk_slices = 16
artifact = "hdf5"

[input]
source = "{compressed}::/volume"

[[variant]]
name = "sz3"

[[variant.pipeline]]
stage = "sz3"
mode = "abs"
abs_error = {TOLERANCE}

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
    rows = photonqa.run(scenario, tmp_path / "out", progress=False).rows
    rows = sorted(rows, key=lambda row: row["index"])
    assert [row["params"]["variant"] for row in rows] == ["sz3", "zfp"]
    for row in rows:
        assert row["status"] == "ok", row.get("error")
        measured = (row["rate"]["compressed_bytes"], row["distortion"]["max_abs_error"])
        assert measured == expected[row["params"]["variant"]], row["params"]

    # h5py's own plugin instances still decode.
    with h5py.File(compressed, "r") as f:
        assert np.array_equal(f["volume"][...], decoded)
