"""What the fixture scripts share: exact float text, seeded generators and cases, the dated
expected.json and its provenance block, and the command line (regenerate, or --check that a
fresh generation reproduces every file)."""

import argparse
import contextlib
import datetime
import filecmp
import hashlib
import json
import platform
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np


def fmt(x):
    """A float as its exact shortest repr (parsed back bit for bit by Rust's str::parse)."""
    return repr(float(x))


def rng_for(name):
    """A Generator seeded from the case name: adding a case never changes another one's data."""
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    return np.random.default_rng(seed)


class SeededCases(list):
    """The cases of a fixture script, each made from a Generator seeded from its name (see
    `rng_for`): `add(name, make, *rest)` records `(name, *make(rng), *rest)`, where `make`
    returns the original and the decoded array (and whatever else the peer takes) and `rest`
    ends with the case's note, as `pair_entries` reads them. `prefix` goes before every name in
    the seed, so that two families may share a case name."""

    def __init__(self, prefix=""):
        super().__init__()
        self.prefix = prefix

    def add(self, name, make, *rest):
        self.append((name, *make(rng_for(self.prefix + name)), *rest))


def extreme_values(name, dtype, shape):
    """Seeded values of `dtype` (from the case name) that hold its extremes: for floats the
    largest, the negative smallest normal and zero among normal noise of scale 1e3; for integers
    the minimum and maximum among uniform values."""
    rng = rng_for(name)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        array = rng.normal(0.0, 1e3, size=shape).astype(dtype)
        array.flat[0] = np.finfo(dtype).max
        array.flat[1] = -np.finfo(dtype).tiny
        array.flat[2] = 0.0
    else:
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
        array.flat[0] = info.min
        array.flat[1] = info.max
    return array


def peer_provenance(script, versions, calls):
    """The provenance block of an expected.json made by tests/peers/`script` with the libraries
    `versions` ({name: version}) through the peer `calls` ({value: call}); `write_expected`
    adds the date."""
    return {
        "script": f"tests/peers/{script}",
        "python": platform.python_version(),
        "versions": versions,
        "calls": calls,
        "float_encoding": "floats are strings with Python repr(float(x)); parse with str::parse::<f64>",
        "paths": "relative to the repository root",
    }


def write_expected(out, expected, previous):
    """Writes out/expected.json, keeping the recorded date when nothing else changed, so that
    regeneration is byte-identical."""
    date = datetime.date.today().isoformat()
    if previous is not None:
        old = json.loads(json.dumps(previous))
        old_date = old.get("provenance", {}).pop("date", None)
        if old == json.loads(json.dumps(expected)) and old_date:
            date = old_date
    expected["provenance"]["date"] = date
    (Path(out) / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


class Writer:
    """Writes fixture files under `out` (a scratch folder standing in for `fixtures`); returns
    their paths as recorded in expected.json: relative to the repository `root`, as if `out`
    were `fixtures`."""

    def __init__(self, out, fixtures, root):
        self.out = Path(out)
        self.fixtures = Path(fixtures)
        self.root = Path(root)

    def name(self, rel):
        """The recorded path of `rel` (relative to the fixture folder)."""
        return (self.fixtures / rel).relative_to(self.root).as_posix()

    def npy(self, rel, array):
        """Saves `array` (C order, no pickle) as `rel`; returns its recorded path."""
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.ascontiguousarray(array), allow_pickle=False)
        return self.name(rel)

    def bin(self, rel, data):
        """Writes the bytes `data` as `rel`; returns its recorded path."""
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(data))
        return self.name(rel)

    def pair(self, name, note, original, decoded):
        """Saves a case's `name/original.npy` and `name/decoded.npy`; returns the start of its
        expected.json entry: name, note, both paths, both dtypes and the shape."""
        return {
            "name": name,
            "note": note,
            "original": self.npy(f"{name}/original.npy", original),
            "decoded": self.npy(f"{name}/decoded.npy", decoded),
            "original_dtype": str(original.dtype),
            "decoded_dtype": str(decoded.dtype),
            "shape": list(original.shape),
        }


def pair_entries(writer, cases, peer):
    """The expected.json entries of the cases `cases()` yields as `(name, original, decoded,
    *extra, note)`: each `writer.pair(...)` followed by `peer(original, decoded, *extra)`, with
    every warning raised as an error (see `warnings_as_errors`)."""
    entries = []
    with warnings_as_errors():
        for name, original, decoded, *extra, note in cases():
            entries.append({**writer.pair(name, note, original, decoded), **peer(original, decoded, *extra)})
    return entries


@contextlib.contextmanager
def warnings_as_errors():
    """Turns every warning into an error while the peers run: a peer warning (e.g. an RGB guess,
    or radon's "image must be zero outside the circle") would mean a wrong call."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def tree(path):
    return sorted(p.relative_to(path) for p in Path(path).rglob("*") if p.is_file())


def main(doc, fixtures, root, generate):
    """Regenerates `fixtures` with `generate(folder, previous_expected)`, or with --check fails
    when a fresh generation differs from the committed files."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="regenerate into a temporary folder and fail if anything differs")
    args = parser.parse_args()
    previous = None
    if (fixtures / "expected.json").is_file():
        previous = json.loads((fixtures / "expected.json").read_text())
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            generate(tmp, previous)
            a, b = tree(fixtures), tree(tmp)
            diff = sorted(set(a) ^ set(b))
            diff += [p for p in a if p in b and not filecmp.cmp(fixtures / p, Path(tmp) / p, shallow=False)]
            if diff:
                print("fixtures differ from a fresh generation:", *map(str, diff), sep="\n  ")
                sys.exit(1)
            print(f"ok: {len(a)} fixture files reproduce exactly")
        return
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, previous)  # into a scratch folder first: a failure leaves the old fixtures
        if fixtures.exists():
            shutil.rmtree(fixtures)
        shutil.copytree(tmp, fixtures)
    size = sum((fixtures / p).stat().st_size for p in tree(fixtures))
    print(f"wrote {len(tree(fixtures))} files, {size / 1e6:.2f} MB, to {fixtures.relative_to(root)}")
