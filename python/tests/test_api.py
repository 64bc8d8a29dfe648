"""The Python API gives exactly the CLI's numbers: every call is run both ways on the same data
(the reference data, read with h5py on the Python side and by the CLI from the file) and the
results compared with == (floats bit for bit)."""

import _thread
import json
import signal
import subprocess
import sys
import threading
import time
from html import escape

import h5py
import numpy as np
import pytest

import photonqa
from conftest import (
    REFERENCE,
    ROOT,
    assert_same,
    cli,
    cli_error,
    cli_json,
    from_json,
    without_timing,
    working_directory,
)

SEED = ROOT / "scenarios" / "seed-otsu-uint8-zip.toml"

# (file, dataset): the array of each file of reference-data/ that its scenario reads: 3-D
# float32, 2-D float32, 3-D uint16 (crystallography frames, then sparse ones), 2-D float64, 3-D
# float32 (projections), 3-D uint16.
ARRAYS = [
    ("porous-tomo.h5", "/volume"),
    ("saxs-spheres.h5", "/data"),
    ("sx-frames.h5", "/frames"),
    ("sx-sparse.h5", "/frames"),
    ("BAM_2D.h5", "/sasentry01/data/I"),
    ("tooth.h5", "/exchange/data"),
    ("xpcs-speckle.h5", "/frames"),
]


def test_the_arrays_are_one_of_every_reference_file():
    assert sorted(file for file, _ in ARRAYS) == sorted(p.name for p in REFERENCE.glob("*.h5"))


def read(file, dataset):
    with h5py.File(REFERENCE / file, "r") as f:
        return f[dataset][...]


def perturbed(original, seed=7):
    """A deterministic "decoded" array: the original plus noise of about 1% of its range, in
    its dtype (integers rounded and clipped)."""
    rng = np.random.default_rng(seed)
    spread = 0.01 * float(original.max() - original.min())
    noisy = original.astype(np.float64) + rng.normal(0.0, spread, original.shape)
    if np.issubdtype(original.dtype, np.integer):
        info = np.iinfo(original.dtype)
        noisy = np.clip(np.rint(noisy), info.min, info.max)
    return noisy.astype(original.dtype)


def write_h5(path, array):
    with h5py.File(path, "w") as f:
        f["decoded"] = array
    return f"{path}::/decoded"


@pytest.mark.parametrize("file,dataset", ARRAYS)
def test_metrics_of_h5py_arrays_equal_the_cli_on_the_files(tmp_path, file, dataset):
    original = read(file, dataset)
    decoded = perturbed(original)
    written = write_h5(tmp_path / "decoded.h5", decoded)
    expected = cli_json("metrics", f"{REFERENCE / file}::{dataset}", written)
    assert_same(photonqa.metrics(original, decoded), expected)


def test_metrics_options_equal_the_cli_options(tmp_path):
    original = read("porous-tomo.h5", "/volume")
    decoded = perturbed(original, seed=3)
    written = write_h5(tmp_path / "decoded.h5", decoded)
    expected = cli_json(
        "metrics",
        f"{REFERENCE}/porous-tomo.h5::/volume",
        written,
        "--data-range",
        "2.5",
        "--ssim-window",
        "uniform",
        "--only",
        "ssim,psnr,max_rel_error",
        "--max-rel-floor",
        "0.01",
    )
    python = photonqa.metrics(
        original,
        decoded,
        data_range=2.5,
        ssim_window="uniform",
        metrics=["ssim", "psnr", "max_rel_error"],
        max_rel_floor=0.01,
    )
    assert_same(python, expected)
    assert {"ssim", "psnr", "max_rel_error"} <= set(python) and "mse" not in python


def test_identical_arrays_give_infinite_psnr_and_ssim_one():
    original = read("saxs-spheres.h5", "/data")
    result = photonqa.metrics(original, original.copy())
    assert result["psnr"] == float("inf")
    assert result["ssim"] == 1.0
    assert result["count"] == original.size


ANALYZE_OPTIONS = [
    ({}, []),
    ({"method": "multiotsu", "classes": 3}, ["--method", "multiotsu", "--classes", "3"]),
]


@pytest.mark.parametrize("file,dataset", ARRAYS)
@pytest.mark.parametrize("options,arguments", ANALYZE_OPTIONS)
def test_analyze_equals_the_cli(file, dataset, options, arguments):
    assert_analyze_equals_the_cli(file, dataset, options, arguments)


def test_analyze_by_value_with_full_connectivity_equals_the_cli():
    assert_analyze_equals_the_cli(
        "porous-tomo.h5", "/volume", {"method": "value", "value": 0.4, "connectivity": "full"},
        ["--method", "value", "--value", "0.4", "--connectivity", "full"],
    )


def assert_analyze_equals_the_cli(file, dataset, options, arguments):
    expected = cli_json("analyze", f"{REFERENCE / file}::{dataset}", *arguments)
    python = photonqa.analyze(read(file, dataset), **options)
    # The input's label: the file for the CLI, the argument's name for Python.
    assert python.pop("input") == "array"
    expected.pop("input")
    assert_same(python, expected)


def tooth_sinogram():
    """Row 0 of tooth.h5, flat- and dark-corrected as reference-data/README.md says."""
    with h5py.File(REFERENCE / "tooth.h5", "r") as f:
        data = f["/exchange/data"][:, 0, :].astype(np.float64)
        white = f["/exchange/data_white"][:, 0, :].mean(axis=0)
        dark = f["/exchange/data_dark"][:, 0, :].mean(axis=0)
    ratio = np.clip((data - dark) / (white - dark), 1e-6, None)
    return (-np.log(ratio)).astype(np.float32)


@pytest.mark.parametrize("filter", ["ramp", "hann"])
def test_reconstruct_equals_the_cli(tmp_path, filter):
    sinogram = tooth_sinogram()
    np.save(tmp_path / "sinogram.npy", sinogram)
    cli("reconstruct", tmp_path / "sinogram.npy", "--out", tmp_path / "slice.npy",
        "--filter", filter)
    expected = np.load(tmp_path / "slice.npy")
    python = photonqa.reconstruct(sinogram, filter=filter)
    assert python.dtype == np.float64 and python.shape == expected.shape
    assert np.array_equal(python, expected)


def test_reconstruct_with_angles_equals_the_cli_theta(tmp_path):
    sinogram = tooth_sinogram()[:90]
    np.save(tmp_path / "sinogram.npy", sinogram)
    cli("reconstruct", tmp_path / "sinogram.npy", "--out", tmp_path / "slice.npy",
        "--theta-deg", "0:90:90")
    theta = np.arange(90, dtype=np.float64)
    assert np.array_equal(photonqa.reconstruct(sinogram, theta=theta.tolist()),
                          np.load(tmp_path / "slice.npy"))


def test_stages_are_the_cli_stages():
    listed = [line.split(" ")[0] for line in cli("stages").stdout.splitlines()
              if line and not line.startswith(" ")]
    stages = photonqa.stages()
    assert [s["id"] for s in stages] == listed
    zstd = next(s for s in stages if s["id"] == "zstd")
    assert zstd["kind"] == "bytes->bytes" and zstd["lossless"]
    assert [p["name"] for p in zstd["params"]] == ["level"]


def one_point_scenario(tmp_path, pipeline_toml, name):
    text = f"""[scenario]
name = "{name}"
[input]
source = "volume.npy"
{pipeline_toml}
[metrics]
distortion = ["max_abs_error", "mse"]
"""
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "pipeline,toml",
    [
        ([{"stage": "sz3", "abs_error": 1e-3}, {"stage": "zstd"}],
         '[[pipeline]]\nstage = "sz3"\nabs_error = 1e-3\n[[pipeline]]\nstage = "zstd"\n'),
        ([{"stage": "threshold", "method": "otsu", "mode": "zero-below"},
          {"stage": "quantize", "dtype": "uint8", "bits": 6}, {"stage": "deflate", "level": 6}],
         '[[pipeline]]\nstage = "threshold"\nmethod = "otsu"\nmode = "zero-below"\n'
         '[[pipeline]]\nstage = "quantize"\ndtype = "uint8"\nbits = 6\n'
         '[[pipeline]]\nstage = "deflate"\nlevel = 6\n'),
    ],
)
def test_roundtrip_gives_the_runs_bytes_and_errors(tmp_path, pipeline, toml):
    volume = read("porous-tomo.h5", "/volume")
    np.save(tmp_path / "volume.npy", volume)
    scenario = one_point_scenario(tmp_path, toml, "one")
    cli("run", scenario, "--out", tmp_path / "out")
    row = from_json(json.loads((tmp_path / "out" / "results.jsonl").read_text()))
    decoded, rate = photonqa.roundtrip(volume, pipeline)
    assert decoded.dtype == volume.dtype and decoded.shape == volume.shape
    for key in ["original_bytes", "compressed_bytes", "ratio", "bits_per_value"]:
        assert rate[key] == row["rate"][key], key
    error = np.abs(decoded.astype(np.float64) - volume.astype(np.float64))
    assert error.max() == row["distortion"]["max_abs_error"]


def test_roundtrip_refuses_a_sweep():
    volume = read("porous-tomo.h5", "/volume")
    with pytest.raises(photonqa.PhotonqaError, match="2 working points"):
        photonqa.roundtrip(volume, [{"stage": "zstd", "level": {"sweep": [1, 3]}}])


@pytest.fixture(scope="module")
def seed_runs(scenario_runs):
    """The seed scenario's runs: (the CLI's output folder, the Python `Results`)."""
    return scenario_runs("seed-otsu-uint8-zip")


def test_run_of_the_seed_scenario_writes_the_report_jupyter_shows(seed_runs):
    """(Rows and recommendation equal the CLI's: test_scenarios.py, for every scenario.)"""
    _, results = seed_runs
    assert len(results.rows) == 9 and results.measured == 9 and results.skipped == 0
    assert results.report_path.is_file()
    html = results._repr_html_()
    assert escape(results.answer) in html
    assert html.count("data:image/png;base64,") == 2  # rd-psnr.png, rd-ssim.png


def test_ctrl_c_stops_a_run_that_resumes_to_the_same_rows(tmp_path, seed_runs):
    """Ctrl-C (SIGINT, raised here by a timer a quarter into the time the run takes) stops
    photonqa.run at its next chunk with KeyboardInterrupt; the points it measured are kept and
    resume=True measures the rest, to the rows of an uninterrupted run. Python's own Ctrl-C
    handler is installed for the test: a process started in the background of a shell without
    job control (CI may be) inherits SIGINT ignored, and then Python installs none."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # Loaded and run as seed_runs runs it, for the same input label in the provenance.
        with working_directory(ROOT):
            interrupt_and_resume(tmp_path, seed_runs)
    finally:
        signal.signal(signal.SIGINT, previous)


def interrupt_and_resume(tmp_path, seed_runs):
    _, whole = seed_runs
    scenario = photonqa.Scenario.load(SEED.relative_to(ROOT))
    started = time.monotonic()
    photonqa.run(scenario, tmp_path / "timed", progress=False)
    duration = time.monotonic() - started
    out = tmp_path / "interrupted"
    timer = threading.Timer(duration / 4, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        photonqa.run(scenario, out, progress=False)
    timer.join()
    log = out / "results.jsonl"
    kept = len(log.read_text().splitlines()) if log.exists() else 0
    assert kept < 9, "the run ended before the interrupt"
    resumed = photonqa.run(scenario, out, resume=True, progress=False)
    assert (resumed.skipped, resumed.measured) == (kept, 9 - kept)
    for python, expected in zip(resumed.rows, whole.rows):
        python, expected = without_timing(python), without_timing(expected)
        assert_same(python, expected, python["point_id"])


def test_results_to_pandas_round_trip(seed_runs):
    _, results = seed_runs
    frame = results.to_pandas()
    assert list(frame["point_id"]) == [row["point_id"] for row in results.rows]
    for row, (_, record) in zip(results.rows, frame.iterrows()):
        for key in ["compressed_bytes", "ratio", "bits_per_value"]:
            assert record[key] == row["rate"][key], key
        for column in ["mse", "psnr", "ssim", "max_abs_error"]:
            assert record[column] == row["distortion"][column], column
        assert record["segmentation.dice_foreground"] == (
            row["science"]["segmentation"]["dice_foreground"]
        )
    chosen = results.recommendation["chosen"]
    best = frame.loc[frame["point_id"] == chosen["point_id"]] if isinstance(chosen, dict) \
        else frame.loc[frame["point_id"] == chosen]
    assert len(best) == 1


def test_check_against_the_committed_baseline_equals_the_cli():
    baseline = REFERENCE / "baselines" / "seed-otsu-uint8-zip.json"
    done = cli("check", SEED, "--baseline", baseline, cwd=ROOT, check=False)
    result = photonqa.check(SEED, baseline)
    assert result["passed"] == (done.returncode == 0)
    assert result["report"].strip() == done.stdout.strip()
    assert (result["drifts"] == []) == result["passed"]


def test_check_reports_drifts_as_the_cli(tmp_path):
    """A baseline of a run with another zstd level: the same report and drifts both ways."""
    np.save(tmp_path / "volume.npy", read("porous-tomo.h5", "/volume")[:16])

    def scenario(levels):
        return one_point_scenario(
            tmp_path, f'[[pipeline]]\nstage = "zstd"\nlevel = {{ sweep = {levels} }}\n',
            f"zstd-{levels[0]}",
        )

    cli("bless", scenario([1, 3]), "--baseline", tmp_path / "baseline.json")
    rerun = scenario([2, 3])
    done = cli("check", rerun, "--baseline", tmp_path / "baseline.json", check=False)
    assert done.returncode == 1
    result = photonqa.check(rerun, tmp_path / "baseline.json")
    assert not result["passed"]
    assert result["report"].strip() == done.stdout.strip()
    kinds = sorted(d["kind"] for d in result["drifts"])
    assert "point-missing" in kinds and "point-new" in kinds, kinds


def test_scenario_from_toml_and_from_dict_equal_the_file():
    loaded = photonqa.Scenario.load(SEED)
    text = SEED.read_text()
    from_text = photonqa.Scenario.from_toml(text, SEED)
    import tomllib

    from_dict = photonqa.Scenario.from_dict(tomllib.loads(text), SEED)
    assert loaded.working_points() == from_text.working_points() == from_dict.working_points()
    assert loaded.name == "seed-otsu-uint8-zip" and len(loaded.working_points()) == 9
    validated = loaded.validate()
    line = cli("validate", SEED, cwd=ROOT).stdout.splitlines()[0]
    assert f"ok: {validated['working_points']} working points" in line
    assert f"({validated['dtype']} {validated['shape']})" in line


# Errors: the right class, the CLI's message.


def test_a_bad_scenario_raises_scenario_error_with_the_cli_message(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(SEED.read_text().replace("level = {", "levle = {"))
    message = cli_error("validate", bad)
    with pytest.raises(photonqa.ScenarioError) as raised:
        photonqa.Scenario.load(bad)
    assert str(raised.value) == message
    assert isinstance(raised.value, photonqa.PhotonqaError)


def test_a_missing_baseline_raises_gate_error_with_the_cli_message(tmp_path):
    missing = tmp_path / "none.json"
    message = cli_error("check", SEED, "--baseline", missing, cwd=ROOT)
    with pytest.raises(photonqa.GateError) as raised:
        photonqa.check(SEED, missing)
    assert str(raised.value) == message


def test_a_bad_data_range_raises_the_cli_message(tmp_path):
    volume = read("saxs-spheres.h5", "/data")
    message = cli_error("metrics", f"{REFERENCE}/saxs-spheres.h5::/data",
                        f"{REFERENCE}/saxs-spheres.h5::/data", "--data-range", "0")
    with pytest.raises(photonqa.PhotonqaError) as raised:
        photonqa.metrics(volume, volume, data_range=0.0)
    assert str(raised.value) == message


def test_analyze_argument_errors_are_the_cli_messages():
    volume = read("porous-tomo.h5", "/volume")
    message = cli_error("analyze", f"{REFERENCE}/porous-tomo.h5::/volume", "--method", "value")
    with pytest.raises(ValueError) as raised:
        photonqa.analyze(volume, method="value")
    assert str(raised.value) == message


def test_arrays_photonqa_cannot_use_raise_data_error_or_type_error():
    with pytest.raises(photonqa.DataError, match="rank 1"):
        photonqa.metrics(np.zeros(10, np.float32), np.zeros(10, np.float32))
    with pytest.raises(TypeError, match="got bool"):
        photonqa.metrics(np.zeros((4, 4), bool), np.zeros((4, 4), bool))
    with pytest.raises(TypeError, match="expected a numpy.ndarray"):
        photonqa.metrics([[1.0]], [[1.0]])
    with pytest.raises(photonqa.PhotonqaError, match="shape mismatch"):
        photonqa.metrics(np.zeros((4, 4), np.float32), np.zeros((4, 5), np.float32))


def test_commands_are_refused_without_consent_as_by_the_cli(tmp_path):
    scenario = tmp_path / "command.toml"
    np.save(tmp_path / "volume.npy", np.zeros((4, 8, 8), np.float32))
    scenario.write_text(
        '[scenario]\nname = "c"\n[input]\nsource = "volume.npy"\n'
        '[[pipeline]]\nstage = "command"\nencode = "cat"\ndecode = "cat"\n'
    )
    message = cli_error("run", scenario, "--out", tmp_path / "cli")
    with pytest.raises(photonqa.PhotonqaError) as raised:
        photonqa.run(scenario, tmp_path / "python", progress=False)
    assert str(raised.value) == message


def test_non_contiguous_input_is_copied_and_gives_the_same_numbers():
    volume = read("porous-tomo.h5", "/volume")
    decoded = perturbed(volume)
    fortran, fortran_decoded = np.asfortranarray(volume), np.asfortranarray(decoded)
    assert not fortran.flags.c_contiguous
    assert_same(photonqa.metrics(fortran, fortran_decoded), photonqa.metrics(volume, decoded))
    strided = volume[:, ::2, :]
    assert_same(photonqa.metrics(strided, decoded[:, ::2, :]),
                photonqa.metrics(np.ascontiguousarray(strided),
                                 np.ascontiguousarray(decoded[:, ::2, :])))


def test_the_example_recommends_the_clis_point(seed_runs):
    cli_out, _ = seed_runs
    example = ROOT / "examples" / "python" / "choose_working_point.py"
    done = subprocess.run([sys.executable, str(example)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    chosen = json.loads((cli_out / "recommendation.json").read_text())["chosen"]
    assert f"recommended: {chosen['point_id']} " in done.stdout
    tried = [line for line in done.stdout.splitlines() if " dB " in line]
    assert len(tried) == 3, done.stdout
