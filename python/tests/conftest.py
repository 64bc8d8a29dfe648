"""Shared helpers: the CLI binary the Python results are compared with, the runs of a scenario
by both, and exact comparison of JSON-like values."""

import contextlib
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


def without_timing(row):
    """A results row without what depends on the clock: the rate's throughputs
    (`encode_mb_s`, `decode_mb_s`)."""
    row = json.loads(json.dumps(row))
    for key in ["encode_mb_s", "decode_mb_s"]:
        row.get("rate", {}).pop(key, None)
    return row


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


# Where .ci/gate keeps the CLI's run of each reference scenario (`photonqa check --out`), for
# the comparison of every scenario with photonqa.run (test_scenarios.py) to reuse instead of
# running the CLI again; .ci/run sets it. Unset, or without a scenario's folder, the tests run
# the CLI themselves.
CLI_RUNS_ENV = "PHOTONQA_CLI_RUNS"


@contextlib.contextmanager
def working_directory(path):
    """Runs the block in `path` (the scenarios' input labels are relative to it)."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


@pytest.fixture(scope="session")
def scenario_runs(tmp_path_factory):
    """`runs(name)`: scenarios/NAME.toml run by the CLI and by `photonqa.run`, both from the
    repository root and loaded by the same relative path (as .ci/gate runs it), so that the
    input labels of the provenance agree: (the CLI's output folder, the Python `Results`).
    Each scenario runs once per session. The CLI's run is the one in $PHOTONQA_CLI_RUNS/NAME
    when there is one."""
    import photonqa

    done = {}

    def runs(name):
        if name not in done:
            relative = f"scenarios/{name}.toml"
            base = tmp_path_factory.mktemp(name)
            kept = os.environ.get(CLI_RUNS_ENV)
            cli_out = Path(kept) / name if kept else None
            if cli_out is None or not cli_out.is_dir():
                cli_out = base / "cli"
                cli("run", relative, "--out", cli_out, cwd=ROOT)
            with working_directory(ROOT):
                results = photonqa.run(
                    photonqa.Scenario.load(relative), base / "python", progress=False
                )
            done[name] = (cli_out, results)
        return done[name]

    return runs
