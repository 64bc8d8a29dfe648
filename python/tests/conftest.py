"""Shared helpers: the CLI binary the Python results are compared with, and exact comparison of
JSON-like values."""

import json
import math
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "reference-data"


def photonqa_binary() -> Path:
    """The CLI built from the same sources: $PHOTONQA_BIN, else target/debug/photonqa."""
    path = Path(os.environ.get("PHOTONQA_BIN", ROOT / "target" / "debug" / "photonqa"))
    if not path.is_file():
        pytest.fail(f"{path}: no photonqa binary (cargo build, or set PHOTONQA_BIN)")
    return path


def cli(*args, cwd=None, check=True):
    """Runs the CLI; returns the completed process (stdout, stderr as text)."""
    done = subprocess.run(
        [str(photonqa_binary()), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"photonqa {' '.join(map(str, args))}: {done.stderr}")
    return done


def cli_json(*args, cwd=None):
    """The CLI's `--json` output, with the strings JSON writes for non-finite numbers read as
    the floats the Python API returns."""
    return from_json(json.loads(cli(*args, "--json", cwd=cwd).stdout))


def cli_error(*args, cwd=None) -> str:
    """The CLI's one-line error, without `photonqa: `, from a run that must fail with exit 2."""
    done = cli(*args, cwd=cwd, check=False)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    line = done.stderr.strip()
    assert line.startswith("photonqa: "), line
    return line[len("photonqa: ") :]


def from_json(value):
    """`"inf"`, `"-inf"`, `"nan"` as floats, recursively (what photonqa's Python API does)."""
    if isinstance(value, dict):
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if value in ("inf", "-inf", "nan"):
        return float(value)
    return value


def assert_same(python, cli, at="value"):
    """Exact equality of JSON-like values: same keys in the same order, same types, floats
    bit for bit (NaN equal to NaN)."""
    if isinstance(cli, dict):
        assert isinstance(python, dict), at
        assert list(python) == list(cli), f"{at}: keys {list(python)} != {list(cli)}"
        for key in cli:
            assert_same(python[key], cli[key], f"{at}.{key}")
    elif isinstance(cli, list):
        assert isinstance(python, list) and len(python) == len(cli), at
        for i, (p, c) in enumerate(zip(python, cli)):
            assert_same(p, c, f"{at}[{i}]")
    elif isinstance(cli, float):
        assert isinstance(python, float), f"{at}: {python!r} is not a float like {cli!r}"
        same = (math.isnan(python) and math.isnan(cli)) or python == cli
        assert same, f"{at}: python {python!r} != cli {cli!r}"
    else:
        assert type(python) is type(cli) and python == cli, f"{at}: {python!r} != {cli!r}"
