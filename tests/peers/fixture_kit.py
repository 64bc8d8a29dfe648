"""What the fixture scripts share: exact float text, seeded generators, the dated expected.json,
and the command line (regenerate, or --check that a fresh generation reproduces every file)."""

import argparse
import datetime
import filecmp
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np


def fmt(x):
    """A float as its exact shortest repr (parsed back bit for bit by Rust's str::parse)."""
    return repr(float(x))


def rng_for(name):
    """A Generator seeded from the case name: adding a case never changes another one's data."""
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    return np.random.default_rng(seed)


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
