#!/usr/bin/env python3
"""Peer fixtures for tests/peer_crosscheck.rs: what independent tools compute on small inputs.

Writes tests/fixtures/peers/ (input arrays, peer outputs, peer-made compressed streams) and
tests/fixtures/peers/expected.json (peer values and a provenance block). Deterministic: every
random input comes from a numpy Generator seeded from the case name, and the provenance date is
kept when nothing else changed, so running the script again reproduces the same files.

    python3 tests/peers/make_fixtures.py            # (re)write the fixtures
    python3 tests/peers/make_fixtures.py --check    # regenerate in a temp dir, compare, exit 1 on drift

Needs: numpy, scipy, scikit-image, h5py, hdf5plugin, numcodecs, lz4, zstandard (zlib is in Python).

Floats in expected.json are strings holding Python's repr of the float64 value (shortest
round-trip text; "inf", "nan" for non-finite) so the Rust side parses them bit-exactly with
str::parse::<f64> (serde_json's default float parser may be off by one ULP).
"""

import hashlib
import platform
import sys
import tempfile
import warnings
import zlib
from pathlib import Path

import h5py
import hdf5plugin
import lz4
import lz4.block
import numcodecs
import numpy as np
import scipy
import skimage
import zstandard
from numcodecs import BitRound
from scipy import ndimage
from skimage.filters import threshold_multiotsu, threshold_otsu
from scipy.stats import ConstantInputWarning, kurtosis, ks_2samp, kstwo, pearsonr, skew
from skimage.metrics import mean_squared_error, normalized_root_mse, peak_signal_noise_ratio

from fixture_kit import Writer, fmt, main, rng_for, warnings_as_errors, write_expected  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "peers"
POROUS_SOURCE = "reference-data/porous-tomo.h5::/volume"
TOOTH_FILE = "reference-data/tooth.h5"
TOOTH_DATASET = "/exchange/data"


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# a. Otsu


def otsu_case(name, image, source, note):
    t = threshold_otsu(image)
    return {
        "name": name,
        "source": source,
        "dtype": str(image.dtype),
        "shape": list(image.shape),
        "min": fmt(image.min()),
        "max": fmt(image.max()),
        "threshold": fmt(t),
        "foreground": int(np.count_nonzero(image > t)),
        "note": note,
    }


def make_otsu(w):
    cases = []
    with h5py.File(ROOT / "reference-data" / "porous-tomo.h5", "r") as f:
        volume = f["volume"][...]
    cases.append(otsu_case("porous_tomo", volume, POROUS_SOURCE,
                           "committed reference volume, float32 64x128x128"))

    r = rng_for("otsu/f32_2d")
    a = np.where(r.random((37, 53)) < 0.4,
                 r.normal(0.2, 0.05, (37, 53)), r.normal(0.7, 0.08, (37, 53))).astype(np.float32)
    cases.append(otsu_case("f32_2d", a, w.npy("otsu/f32_2d.npy", a), "bimodal float32, non-square 37x53"))

    r = rng_for("otsu/f64_3d")
    a = np.where(r.random((9, 14, 19)) < 0.3,
                 r.gamma(2.0, 1.5, (9, 14, 19)), 12.0 + r.gamma(3.0, 1.0, (9, 14, 19)))
    cases.append(otsu_case("f64_3d", a, w.npy("otsu/f64_3d.npy", a), "bimodal float64, 9x14x19"))

    r = rng_for("otsu/u8_2d")
    a = np.clip(np.where(r.random((48, 71)) < 0.5, r.normal(60, 15, (48, 71)),
                         r.normal(170, 25, (48, 71))), 0, 255).round().astype(np.uint8)
    cases.append(otsu_case("u8_2d", a, w.npy("otsu/u8_2d.npy", a), "bimodal uint8, 48x71"))

    r = rng_for("otsu/u16_2d")
    a = np.clip(np.where(r.random((40, 61)) < 0.35, r.normal(9000, 2500, (40, 61)),
                         r.normal(47000, 6000, (40, 61))), 0, 65535).round().astype(np.uint16)
    a[0, 0], a[-1, -1] = 3, 65535
    cases.append(otsu_case("u16_2d_wide", a, w.npy("otsu/u16_2d_wide.npy", a),
                           "uint16 spanning 3..65535 (one bin per value, ~65k bins)"))

    r = rng_for("otsu/i16_2d")
    a = np.clip(np.where(r.random((45, 38)) < 0.5, r.normal(-12000, 3000, (45, 38)),
                         r.normal(6000, 4000, (45, 38))), -32768, 32767).round().astype(np.int16)
    cases.append(otsu_case("i16_2d_negative", a, w.npy("otsu/i16_2d_negative.npy", a),
                           "int16 with negative values"))

    r = rng_for("otsu/f32_tiny_range")
    a = (1000.0 + 1e-3 * np.where(r.random((29, 31)) < 0.5, r.normal(-5, 2, (29, 31)),
                                  r.normal(6, 2.5, (29, 31)))).astype(np.float32)
    cases.append(otsu_case("f32_tiny_range", a, w.npy("otsu/f32_tiny_range.npy", a),
                           "float32 1000 + 1e-3 * noise: a range of a few hundred ULPs (bins of "
                           "~1.5 ULP), stresses float32 bin-edge arithmetic"))

    r = rng_for("otsu/f32_two_value")
    a = np.where(r.random((20, 30)) < 0.3, 0.25, 3.5).astype(np.float32)
    cases.append(otsu_case("f32_two_value", a, w.npy("otsu/f32_two_value.npy", a),
                           "two values only: every split ties, the first maximum wins"))

    a = np.full((12, 17), 2.0, dtype=np.float32)
    constant = otsu_case("f32_constant", a, w.npy("otsu/f32_constant.npy", a),
                         "constant image: threshold_otsu returns the value itself")

    # A range narrower than 256 float32 ULPs: np.histogram (inside threshold_otsu) refuses it.
    r = rng_for("otsu/f32_below_256_ulps")
    a = (1000.0 + 1e-3 * np.where(r.random((29, 31)) < 0.5, r.normal(-1, 0.4, (29, 31)),
                                  r.normal(1.5, 0.5, (29, 31)))).astype(np.float32)
    try:
        threshold_otsu(a)
        raise AssertionError("expected threshold_otsu to refuse a range below 256 ULPs")
    except ValueError as e:
        peer_error = str(e)
    degenerate = {
        "name": "f32_below_256_ulps",
        "source": w.npy("otsu/f32_below_256_ulps.npy", a),
        "dtype": "float32",
        "shape": list(a.shape),
        "ulps_in_range": int(round(float(a.max() - a.min()) / float(np.spacing(np.float32(a.min()))))),
        "peer_error": f"ValueError: {peer_error}",
        "note": "threshold_otsu raises: 256 equal float32 bins over this range are not all finite-sized",
    }
    return cases, constant, degenerate


# ---------------------------------------------------------------------------------------------
# c. Distortion metrics


def pearson_peer(a, b):
    """scipy.stats.pearsonr on float64 copies; (value, note). Where scipy finds the coefficient
    undefined (x or y constant: nan with a ConstantInputWarning), photonqa's convention: 1.0 if
    y == x everywhere, else 0.0."""
    x, y = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    if np.all(x == x[0]) or np.all(y == y[0]):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = pearsonr(x, y).statistic
        assert np.isnan(r) and any(issubclass(c.category, ConstantInputWarning) for c in caught), r
        value = 1.0 if np.array_equal(x, y) else 0.0
        return value, (f"scipy pearsonr: nan (ConstantInputWarning, undefined); photonqa's convention "
                       f"gives {value} ({'y == x everywhere' if value else 'y != x somewhere'})")
    return float(pearsonr(x, y).statistic), None


def distortion_expected(a, b, data_range=None, max_rel_floor=None):
    """skimage for MSE, PSNR and NRMSE (default range), scipy for Pearson, numpy (float64) for
    the rest. Non-finite values are the IEEE results of the documented formulas; 0/0 (nrmse of
    identical inputs with a zero range) is refused, it has no peer value."""
    r = float(a.max()) - float(a.min()) if data_range is None else float(data_range)
    x = a.astype(np.float64)
    d = b.astype(np.float64) - x
    mse64 = np.mean(d * d)
    rmse = np.sqrt(mse64)
    with np.errstate(divide="ignore"):
        psnr = peak_signal_noise_ratio(a, b, data_range=r)
        if data_range is None:
            nrmse = normalized_root_mse(a, b, normalization="min-max")
        else:
            nrmse = rmse / r
        snr = np.inf if mse64 == 0 else 10 * np.log10(np.var(x) / mse64)
    assert not np.isnan(nrmse), "nrmse 0/0 (identical inputs, zero range): no peer value"
    # A relative tolerance on a logarithm near 0 dB would be meaningless.
    assert not np.isfinite(snr) or abs(snr) > 0.1, f"snr {snr} dB too close to 0 for a relative check"
    floor = 1e-3 * r if max_rel_floor is None else float(max_rel_floor)
    denominator = np.maximum(np.abs(x), floor)
    abs_error = np.abs(d)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(abs_error == 0, 0.0,
                         np.where(denominator > 0, abs_error / denominator, np.inf))
    pearson, pearson_note = pearson_peer(a, b)
    expected = {
        "mse": fmt(mean_squared_error(a, b)),
        "rmse": fmt(rmse),
        "psnr": fmt(psnr),
        "max_abs_error": fmt(np.max(abs_error)),
        "mean_error": fmt(np.mean(d)),
        "mean_abs_error": fmt(np.mean(abs_error)),
        "data_range": fmt(r),
        "count": int(a.size),
        "nrmse": fmt(nrmse),
        "snr": fmt(snr),
        "pearson": fmt(pearson),
        "max_rel_error": fmt(np.max(terms)),
        "max_rel_floor": fmt(floor),
    }
    if pearson_note:
        expected["pearson_note"] = pearson_note
    expected["error_histogram"] = error_histogram_peer(d, r)
    expected["error_autocorrelation"] = autocorrelation_peer(d)
    ks = ks_2samp(a.ravel(), b.ravel(), method="asymp")
    expected["ks_test"] = {
        "statistic": fmt(ks.statistic),
        "p_value": fmt(ks.pvalue),
        "effective_n": fmt(a.size * b.size / (a.size + b.size)),
    }
    return expected


# Magnitude edges of the error histogram: R 10^(k/10 - 8), k = 0..80 (src/metrics/error_stats.rs).
DECADES, PER_DECADE = 8, 10


def error_histogram_peer(d, r):
    """numpy.histogram of the error over the signed log-spaced edges; numpy/scipy moments."""
    if r <= 0:
        return None  # no bins without a data range: photonqa reports the metric as skipped
    m = np.array([r * 10.0 ** (k / PER_DECADE - DECADES) for k in range(DECADES * PER_DECADE + 1)])
    edges = np.concatenate([-m[::-1], m])
    counts, _ = np.histogram(d, bins=edges)
    constant = bool(np.all(d == d.flat[0]))
    return {
        "edges": [fmt(v) for v in edges],
        "counts": [int(c) for c in counts],
        "density": [fmt(c / (d.size * w)) for c, w in zip(counts, np.diff(edges))],
        "below": int(np.count_nonzero(d < edges[0])),
        "above": int(np.count_nonzero(d > edges[-1])),
        "exact_zero": int(np.count_nonzero(d == 0)),
        "mean": fmt(np.mean(d)),
        "std": fmt(np.std(d)),
        # Undefined for a constant error: photonqa reports null.
        "skewness": None if constant else fmt(skew(d, axis=None)),
        "kurtosis": None if constant else fmt(kurtosis(d, axis=None)),
    }


def autocorrelation_peer(d):
    """Lag-1 autocorrelation along each axis: numpy.corrcoef of the pooled lagged pairs."""
    out = {}
    for axis in range(d.ndim):
        n = d.shape[axis]
        lead = np.take(d, range(0, n - 1), axis=axis).ravel()
        lag = np.take(d, range(1, n), axis=axis).ravel()
        if lead.size == 0 or np.all(lead == lead[0]) or np.all(lag == lag[0]):
            out[f"axis{axis}"] = None  # undefined: photonqa reports null
        else:
            out[f"axis{axis}"] = fmt(np.corrcoef(lead, lag)[0, 1])
    return out


def make_distortion(w):
    cases = []

    def pair(name, a, b, data_range=None, note="", max_rel_floor=None, files=None):
        """One `photonqa metrics` case; `files` reuses the arrays written for another case."""
        files = files or name
        cases.append({
            "name": name,
            "original": w.npy(f"distortion/{files}.original.npy", a),
            "decoded": w.npy(f"distortion/{files}.decoded.npy", b),
            "data_range_arg": None if data_range is None else fmt(data_range),
            "max_rel_floor_arg": None if max_rel_floor is None else fmt(max_rel_floor),
            "dtype": str(a.dtype),
            "expected": distortion_expected(a, b, data_range, max_rel_floor),
            "note": note,
        })
        return cases[-1]["expected"]

    r = rng_for("distortion/f32_3d")
    a = (r.normal(0, 1, (8, 16, 24)) * 40 + 100).astype(np.float32)
    b = (a + r.normal(0, 0.3, a.shape)).astype(np.float32)
    pair("f32_3d", a, b, note="float32 3D, gaussian noise")

    r = rng_for("distortion/f64_2d")
    a = np.cumsum(r.normal(0, 1, (33, 47)), axis=1)
    b = a + r.uniform(-0.01, 0.02, a.shape)
    pair("f64_2d", a, b, note="float64 non-square, biased uniform error")

    r = rng_for("distortion/u8_2d")
    a = r.integers(0, 256, (40, 50), dtype=np.uint8)
    b = np.clip(a.astype(np.int16) + r.integers(-3, 4, a.shape), 0, 255).astype(np.uint8)
    pair("u8_2d", a, b, note="uint8, integer errors -3..3 clipped")

    r = rng_for("distortion/u16_3d")
    a = r.integers(100, 60000, (6, 20, 30), dtype=np.uint16)
    b = (a.astype(np.int64) // 16 * 16 + 8).astype(np.uint16)
    pair("u16_3d", a, b, note="uint16 3D, coarse requantisation")

    r = rng_for("distortion/identical")
    a = r.normal(0, 1, (20, 25)).astype(np.float32)
    pair("identical", a, a.copy(), note="identical arrays: mse 0, PSNR inf")

    r = rng_for("distortion/constant")
    a = np.full((16, 18), 5.0, dtype=np.float32)
    b = (a + r.normal(0, 0.05, a.shape)).astype(np.float32)
    pair("constant_with_range", a, b, data_range=10.0,
         note="constant original (max - min = 0) with data_range given: pearson undefined "
              "(reported 0.0), snr = 10 log10(0 / mse) = -inf")

    # Values near zero: |x| < floor = 1e-3 R for a few values (exact zeros, subnormal-sized,
    # tiny), where the floor, not |x|, sets the largest relative error. Also run with
    # --max-rel-floor 0.5 on the same files.
    r = rng_for("distortion/near_zero")
    a = np.sin(np.linspace(0, 7, 4 * 12 * 16)).reshape(4, 12, 16)
    a.flat[r.choice(a.size, 12, replace=False)] = [0, 0, 0, -0.0, 1e-30, -1e-30, 1e-9, -1e-9,
                                                   1e-6, -1e-6, 5e-4, -5e-4]
    a = a.astype(np.float32)
    b = (a + r.normal(0, 2e-4, a.shape)).astype(np.float32)
    want = pair("near_zero", a, b, note="float32 3D, some |x| below the default floor 1e-3 R "
                "(zeros, +-1e-30, +-1e-9, +-1e-6, +-5e-4): the floor sets max_rel_error")
    x, e = a.astype(np.float64), np.abs(b.astype(np.float64) - a.astype(np.float64))
    floor = float(want["max_rel_floor"])
    small = np.abs(x) < floor
    assert np.max(e[small] / floor) == float(want["max_rel_error"]), "the floor does not matter"
    with np.errstate(divide="ignore"):
        assert np.max(e / np.abs(x)) > 1e3 * float(want["max_rel_error"]), "no floor gives the same"
    want_05 = pair("near_zero_floor_0.5", a, b, max_rel_floor=0.5, files="near_zero",
                   note="the near_zero arrays with --max-rel-floor 0.5: |x| < 0.5 divided by 0.5")
    assert want_05["max_rel_error"] != want["max_rel_error"]
    assert {k: v for k, v in want_05.items() if k not in ("max_rel_error", "max_rel_floor")} == \
        {k: v for k, v in want.items() if k not in ("max_rel_error", "max_rel_floor")}

    # All-zero original, default range: R = 0 and floor = 0, so every relative term has a zero
    # denominator (0 where e == 0, inf elsewhere); psnr and snr are 10 log10(0 / mse) = -inf,
    # nrmse = rmse / 0 = inf, pearson undefined (reported 0.0).
    r = rng_for("distortion/constant_zero")
    a = np.zeros((10, 12), dtype=np.float32)
    b = np.where(r.random(a.shape) < 0.5, 0, r.normal(0, 0.01, a.shape)).astype(np.float32)
    pair("constant_zero", a, b, note="all-zero original, default range (R = 0, floor 0): "
         "max_rel_error inf, nrmse inf, psnr and snr -inf, pearson 0.0")

    # Constant and identical: pearson undefined (reported 1.0); with --max-rel-floor 0 every
    # relative term is 0 / 0, which counts as 0 (e == 0). --data-range 1 keeps nrmse = 0 / 1.
    a = np.zeros((6, 7), dtype=np.float32)
    pair("constant_identical", a, a.copy(), data_range=1.0, max_rel_floor=0.0,
         note="all-zero original and decoded, --data-range 1 --max-rel-floor 0: pearson 1.0, "
              "max_rel_error 0 (zero denominators with e == 0), snr and psnr inf, nrmse 0")

    # int16 with negatives, zeros and both extremes (|-32768| does not fit int16).
    r = rng_for("distortion/i16_2d")
    a = r.integers(-32768, 32768, (30, 40), dtype=np.int16)
    a.flat[r.choice(a.size, 8, replace=False)] = [-32768, 32767, 0, 0, 1, -1, 40, -65]
    b = np.clip(a.astype(np.int32) + r.integers(-40, 41, a.shape), -32768, 32767).astype(np.int16)
    pair("i16_2d", a, b, note="int16 with -32768, 32767, zeros and |x| below the floor 65.535")

    # A large offset: mean 1e8, standard deviation 1. Raw sums of squares lose every digit of
    # the (co)variances; Pearson and snr need centred co-moments.
    r = rng_for("distortion/f64_offset")
    a = 1e8 + r.normal(0, 1, (20, 30))
    b = a + r.normal(0, 0.1, a.shape)
    want = pair("f64_offset", a, b, note="float64, mean 1e8 and standard deviation 1: raw sums "
                "of squares cancel, pearson needs centred co-moments")
    x, y, n = a.ravel(), b.ravel(), a.size
    with np.errstate(invalid="ignore", divide="ignore"):  # the raw-sum formula may give 0/0
        naive = (np.sum(x * y) - np.sum(x) * np.sum(y) / n) / np.sqrt(
            abs(np.sum(x * x) - np.sum(x) ** 2 / n) * abs(np.sum(y * y) - np.sum(y) ** 2 / n))
    assert not abs(naive - float(want["pearson"])) < 1e-6, "raw sums would pass: not a stress case"

    # Errors beyond the data range (counted below/above the histogram) and exact zeros.
    r = rng_for("distortion/f64_outliers")
    a = r.uniform(0, 1, (12, 40))
    b = a + np.where(r.random(a.shape) < 0.3, 0.0, r.normal(0, 1e-3, a.shape))
    b.flat[r.choice(a.size, 6, replace=False)] += [3.0, -2.5, 1.5, -1.2, 4e-9, -7e-10]
    pair("f64_outliers", a, b, note="float64, 30% exact zeros, six errors beyond +-R or below "
         "1e-8 R: histogram below/above and central bin")

    r = rng_for("distortion/f64_anticorrelated")
    a = r.normal(0, 1, (9, 11))
    b = -0.5 * a + r.normal(0, 0.2, a.shape)
    pair("f64_anticorrelated", a, b, note="float64, decoded = -0.5 original + noise: negative "
         "pearson, negative snr, nrmse > 0.1")

    # One HDF5 input: file.h5::/dataset on both sides.
    r = rng_for("distortion/hdf5")
    a = (r.normal(0, 1, (24, 30)) * 3).astype(np.float32)
    b = (np.round(a * 8) / 8).astype(np.float32)
    path = w.out / "distortion" / "pair.h5"
    with h5py.File(path, "w", track_order=False) as f:
        f.create_dataset("original", data=a, track_times=False)
        f.create_dataset("decoded", data=b, track_times=False)
    cases.append({
        "name": "hdf5_pair",
        "original": w.name("distortion/pair.h5") + "::/original",
        "decoded": w.name("distortion/pair.h5") + "::/decoded",
        "data_range_arg": None,
        "max_rel_floor_arg": None,
        "dtype": "float32",
        "expected": distortion_expected(a, b),
        "note": "HDF5 input path (file.h5::/dataset), float32 rounded to 1/8",
    })
    return cases


# ---------------------------------------------------------------------------------------------
# b. Real data from reference-data/ (expected values only)


def analyze_expected(volume, method, connectivity):
    """`photonqa analyze` peers: skimage thresholds, numpy.digitize classes, scipy.ndimage.label
    pores (class 0), numpy diffs for the pore-boundary faces."""
    otsu = float(threshold_otsu(volume))
    thresholds = [otsu] if method == "otsu" else [float(t) for t in threshold_multiotsu(volume, classes=3)]
    classes = np.digitize(volume.astype(np.float64), thresholds, right=True)
    mask = classes == 0
    rank = volume.ndim
    structure = ndimage.generate_binary_structure(rank, 1 if connectivity == "face" else rank)
    labels, count = ndimage.label(mask, structure)
    sizes = np.bincount(labels.ravel())[1:]
    border = np.zeros(count + 1, dtype=bool)
    for axis in range(rank):
        for index in (0, -1):
            border[np.unique(np.take(labels, index, axis=axis))] = True
    faces = sum(int(np.count_nonzero(np.diff(mask.astype(np.int8), axis=a))) for a in range(rank))
    if rank == 3:
        diameters = (6 * sizes / np.pi) ** (1 / 3)
    else:
        diameters = np.sqrt(4 * sizes / np.pi)
    return {
        "otsu_threshold": fmt(otsu),
        "thresholds": [fmt(t) for t in thresholds],
        "fractions": [fmt(np.count_nonzero(classes == c) / volume.size) for c in range(len(thresholds) + 1)],
        "porosity": fmt(np.count_nonzero(mask) / volume.size),
        "pore_count": int(count),
        "pores_touching_border": int(np.count_nonzero(border[1:])),
        "pore_sizes": sorted(int(v) for v in sizes),
        "diameter_mean": fmt(np.mean(diameters) if count else 0.0),
        "specific_surface": fmt(faces / volume.size),
    }


def make_analyze(w):
    with h5py.File(ROOT / "reference-data" / "porous-tomo.h5", "r") as f:
        volume = f["volume"][...]
    slice2d = w.npy("analyze/slice_20.npy", np.ascontiguousarray(volume[20]))
    cases = []
    for source, array in ((POROUS_SOURCE, volume), (slice2d, volume[20])):
        for method in ("otsu", "multiotsu"):
            for connectivity in ("face", "full"):
                cases.append({
                    "input": source,
                    "method": method,
                    "connectivity": connectivity,
                    "expected": analyze_expected(array, method, connectivity),
                })
    return cases


def make_shared(previous):
    path = ROOT / TOOTH_FILE
    if not path.is_file():
        if previous is None:
            sys.exit(f"{path} not found and no previous expected.json to keep its values from")
        print(f"note: {path} not found; keeping the shared-data values of the existing expected.json")
        return previous
    with h5py.File(path, "r") as f:
        a = f[TOOTH_DATASET][...]
    t = threshold_otsu(a)
    rounds = []
    for k in (3, 7):
        b = BitRound(keepbits=k).encode(a).view(a.dtype)
        rounds.append({"keepbits": k, **distortion_expected(a, b)})
    return {
        "file": TOOTH_FILE,
        "dataset": TOOTH_DATASET,
        "sha256": sha256(path),
        "dtype": str(a.dtype),
        "shape": list(a.shape),
        "min": fmt(a.min()),
        "max": fmt(a.max()),
        "threshold": fmt(t),
        "foreground": int(np.count_nonzero(a > t)),
        "bitround": rounds,
    }


# ---------------------------------------------------------------------------------------------
# d. Stages


def special_floats(dtype):
    f = np.finfo(dtype)
    one = dtype(1.0)
    eps = f.eps
    values = [0.0, -0.0, np.inf, -np.inf, np.nan, f.max, -f.max, f.tiny, f.smallest_subnormal,
              -f.smallest_subnormal, 1.0, -1.0, 1.5, 0.1, -0.1, 3.0, 1e-30, -123456.789]
    # Exact ties for several keepbits: 1 + 2^-(k+1) (next-to-last kept bit 0 -> round down)
    # and 1 + 3 * 2^-(k+1) (kept bit 1 -> round up).
    for k in (0, 1, 7, 10):
        values += [float(one + dtype(2.0 ** -(k + 1))), float(one + dtype(3 * 2.0 ** -(k + 1))),
                   -float(one + dtype(2.0 ** -(k + 1)))]
    values += [float(one + eps), float(one - eps / 2)]
    a = np.array(values, dtype=dtype)
    # A NaN with a payload in the low mantissa bits (rounding carries into the exponent).
    bits = a.view(np.uint32 if dtype == np.float32 else np.uint64)
    extra = np.array([0x7F800001 if dtype == np.float32 else 0x7FF0000000000001], dtype=bits.dtype)
    return np.concatenate([a, extra.view(dtype)])


def make_bitround(w):
    cases = []
    for dtype, ks in ((np.float32, [0, 1, 7, 10, 22, 23]), (np.float64, [0, 1, 7, 10, 23, 51, 52])):
        name = np.dtype(dtype).name
        r = rng_for(f"bitround/{name}")
        body = np.concatenate([
            r.normal(0, 1, 600) * 10.0 ** r.integers(-20, 20, 600),
            r.uniform(-1, 1, 300),
        ]).astype(dtype)
        a = np.concatenate([special_floats(dtype), body])
        outs = np.stack([BitRound(keepbits=k).encode(a).view(dtype) for k in ks])
        cases.append({
            "dtype": name,
            "input": w.npy(f"bitround/{name}.input.npy", a),
            "output": w.npy(f"bitround/{name}.numcodecs.npy", outs),
            "keepbits": ks,
            "note": "row i of output = numcodecs BitRound(keepbits=keepbits[i]).encode(input)",
        })
    return cases


def quantize_numpy(x, lo, hi, bits, qdtype, out_dtype):
    """The formula documented in src/pipeline/stages/quantize.rs, in float64 numpy:
    q = clamp(round((x - lo) * L / (hi - lo)), 0, L), x' = lo + q (hi - lo) / L."""
    levels = float(2 ** bits - 1)
    xf = x.astype(np.float64)
    v = (xf - lo) * levels / (hi - lo)
    q = np.clip(np.round(v), 0, levels)
    xd = lo + q * (hi - lo) / levels
    if np.issubdtype(out_dtype, np.integer):
        xd = np.round(xd)
    return v, q.astype(qdtype), xd.astype(out_dtype)


def make_quantize(w):
    cases = []

    def case(name, x, lo, hi, bits, qdtype, note):
        v, q, xd = quantize_numpy(x, lo, hi, bits, qdtype, x.dtype)
        frac = v - np.floor(v)
        assert not np.any(frac == 0.5), f"{name}: a value falls on an exact .5 tie"
        # The same formula with photonqa's evaluation order (scale = L / (hi - lo) first);
        # recorded so that a mismatch can be told apart from a rounding-order difference.
        levels = float(2 ** bits - 1)
        scale = levels / (hi - lo)
        q_alt = np.clip(np.round((x.astype(np.float64) - lo) * scale), 0, levels).astype(qdtype)
        xd_alt = (lo + q.astype(np.float64) / scale)
        if np.issubdtype(x.dtype, np.integer):
            xd_alt = np.round(xd_alt)
        xd_alt = xd_alt.astype(x.dtype)
        cases.append({
            "name": name,
            "dtype": x.dtype.name,
            "input": w.npy(f"quantize/{name}.input.npy", x),
            "levels": w.npy(f"quantize/{name}.levels.npy", q),
            "decoded": w.npy(f"quantize/{name}.decoded.npy", xd),
            "params": {"dtype": np.dtype(qdtype).name, "bits": bits, "range": [fmt(lo), fmt(hi)]},
            "clipped": int(np.count_nonzero((x < lo) | (x > hi))),
            "levels_differing_with_scale_first": int(np.count_nonzero(q_alt != q)),
            "decoded_differing_with_scale_first": int(np.count_nonzero(
                xd_alt.view(f"u{x.dtype.itemsize}") != xd.view(f"u{x.dtype.itemsize}"))),
            "note": note,
        })

    r = rng_for("quantize/f32")
    x = r.uniform(-0.6, 2.2, (37, 41)).astype(np.float32)
    lo, hi = -0.37, 1.91
    case("f32_u8_8bits", x, lo, hi, 8, np.uint8, "float32 -> uint8, 8 bits, values outside the range clipped")
    case("f32_u8_4bits", x, lo, hi, 4, np.uint8, "float32 -> uint8, 4 bits")
    case("f32_u8_1bit", x, lo, hi, 1, np.uint8, "float32 -> uint8, 1 bit")
    case("f32_u16_12bits", x, lo, hi, 12, np.uint16, "float32 -> uint16, 12 bits")
    case("f32_u16_16bits", x, lo, hi, 16, np.uint16, "float32 -> uint16, 16 bits")

    r = rng_for("quantize/f64")
    x = r.normal(3.0, 2.0, (23, 29))
    case("f64_u16_16bits", x, -1.3, 7.77, 16, np.uint16, "float64 -> uint16, 16 bits")
    case("f64_u8_8bits", x, -1.3, 7.77, 8, np.uint8, "float64 -> uint8, 8 bits")

    r = rng_for("quantize/u16")
    x = r.integers(0, 65536, (31, 33), dtype=np.uint16)
    case("u16_u8_8bits", x, 100.0, 40000.0, 8, np.uint8,
         "uint16 -> uint8; decoded integers rounded (numpy: np.round before astype)")

    # Exact .5 ties: numpy rounds half to even, Rust's f64::round half away from zero.
    x = np.array([[0.5, 1.5, 2.5, 3.5, 100.5, 127.5, 253.5, 254.5, -0.5, 0.49999997]], dtype=np.float32)
    v, q_even, xd_even = quantize_numpy(x, 0.0, 255.0, 8, np.uint8, x.dtype)
    q_away = np.clip(np.floor(v + 0.5), 0, 255).astype(np.uint8)  # v >= -0.5: floor(v+.5) is half-up
    q_away[v < 0] = 0
    ties = {
        "name": "f32_u8_ties",
        "input": w.npy("quantize/f32_u8_ties.input.npy", x),
        "levels_numpy_half_even": w.npy("quantize/f32_u8_ties.levels_half_even.npy", q_even),
        "levels_half_away_from_zero": w.npy("quantize/f32_u8_ties.levels_half_away.npy", q_away),
        "params": {"dtype": "uint8", "bits": 8, "range": [fmt(0.0), fmt(255.0)]},
        "note": "scale = 255/255 = 1 exactly, so (x - lo) * scale are exact .5 ties; "
                "np.round gives half-to-even levels, f64::round half-away-from-zero",
    }
    return cases, ties


def raw_chunk(path, array, **filters):
    with h5py.File(path, "w") as f:
        d = f.create_dataset("x", data=array, chunks=array.shape, track_times=False, **filters)
        f.flush()
        mask, raw = d.id.read_direct_chunk((0,) * array.ndim)
        plist = d.id.get_create_plist()
        pipeline = [plist.get_filter(i) for i in range(plist.get_nfilters())]
    assert mask == 0, "filter skipped"
    return raw, [[int(p[0]), [int(v) for v in p[2]], p[3].decode()] for p in pipeline]


def make_shuffle(w, tmp):
    cases = []
    r = rng_for("shuffle")
    arrays = {
        "f32_2d": (r.normal(0, 1, (37, 53)) * 1000).astype("<f4"),
        "u16_3d": r.integers(0, 65536, (5, 7, 11), dtype="<u2"),
        "f64_2d": r.normal(0, 1, (13, 29)).astype("<f8"),
    }
    for name, a in arrays.items():
        raw, pipeline = raw_chunk(Path(tmp) / f"shuffle_{name}.h5", a, shuffle=True)
        assert len(raw) == a.nbytes
        cases.append({
            "name": name,
            "dtype": a.dtype.name,
            "input": w.npy(f"shuffle/{name}.input.npy", a),
            "chunk": w.bin(f"shuffle/{name}.h5chunk.bin", raw),
            "hdf5_filters": pipeline,
        })
    return cases


def make_bitshuffle(w, tmp):
    cases = []
    r = rng_for("bitshuffle")
    # Block = 8192 bytes (bitshuffle's default for nelems=0): 8192 / size elements. Each length
    # has full blocks, a partial last block (a multiple of 8 elements) and a tail of < 8 elements.
    specs = [
        ("u8_partial_tail", "<u1", 2 * 8192 + 8 * 13 + 5),
        ("i16_partial_tail", "<i2", 2 * 4096 + 8 * 21 + 3),
        ("f32_partial_tail", "<f4", 3 * 2048 + 8 * 7 + 7),
        ("f64_partial_tail", "<f8", 2 * 1024 + 8 * 37 + 1),
        ("f32_tail_only", "<f4", 5),
        ("u16_under_one_block", "<u2", 8 * 9),
    ]
    for name, dt, n in specs:
        dt = np.dtype(dt)
        if dt.kind == "f":
            a = r.normal(0, 1, n).astype(dt) * dt.type(1000)
        else:
            info = np.iinfo(dt)
            a = r.integers(info.min, int(info.max) + 1, n, dtype=dt)
        raw, pipeline = raw_chunk(Path(tmp) / f"bitshuffle_{name}.h5", a,
                                  **hdf5plugin.Bitshuffle(nelems=0, cname="none"))
        # cname='none' writes no header: the 12-byte header (uint64 BE size, uint32 BE block
        # bytes) is only written with lz4/zstd (bshuf_h5filter.c). Checked here.
        assert len(raw) == a.nbytes, (name, len(raw), a.nbytes)
        cases.append({
            "name": name,
            "dtype": dt.name,
            "elements": n,
            "element_size": dt.itemsize,
            "input": w.npy(f"bitshuffle/{name}.input.npy", a),
            "chunk": w.bin(f"bitshuffle/{name}.h5chunk.bin", raw),
            "header_bytes": len(raw) - a.nbytes,
            "hdf5_filters": pipeline,
        })
    return cases


def payloads(w):
    r = rng_for("payloads")
    lines = [f"{i:05d} angle={i * 0.35:.2f} counts={int(1e4 * np.exp(-i / 300))}\n" for i in range(400)]
    smooth = np.sin(np.linspace(0, 20, 3000)).astype("<f4") * np.float32(100)
    data = {
        "text": "".join(lines).encode(),
        "f32_smooth": smooth.tobytes(),
        "random": r.bytes(3000),
        "empty": b"",
    }
    return {name: (w.bin(f"payloads/{name}.bin", d), d) for name, d in data.items()}


def make_codecs(w):
    p = payloads(w)
    deflate, zstd_cases, lz4_cases = [], [], []

    def add(cases, folder, ext, payload, variant, stream, call, check):
        assert check(stream) == p[payload][1], (folder, payload, variant)
        cases.append({
            "name": f"{payload}.{variant}",
            "payload": p[payload][0],
            "stream": w.bin(f"{folder}/{payload}.{variant}.{ext}", stream),
            "call": call,
        })

    for name, (_, data) in p.items():
        for level in (0, 1, 6, 9):
            add(deflate, "deflate", "zlib", name, f"level{level}", zlib.compress(data, level),
                f"zlib.compress(data, {level})", zlib.decompress)
    data = p["f32_smooth"][1]
    for strategy in ("Z_FILTERED", "Z_HUFFMAN_ONLY", "Z_RLE", "Z_FIXED"):
        c = zlib.compressobj(9, zlib.DEFLATED, 15, 9, getattr(zlib, strategy))
        add(deflate, "deflate", "zlib", "f32_smooth", strategy.lower(), c.compress(data) + c.flush(),
            f"zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.{strategy}); compress + flush", zlib.decompress)
    c = zlib.compressobj(6, zlib.DEFLATED, 9)
    add(deflate, "deflate", "zlib", "text", "wbits9", c.compress(p["text"][1]) + c.flush(),
        "zlib.compressobj(6, zlib.DEFLATED, 9) (512-byte window); compress + flush", zlib.decompress)

    def zdec(stream):
        out, rest = b"", stream
        while rest:
            d = zstandard.ZstdDecompressor().decompressobj()
            out += d.decompress(rest)
            rest = d.unused_data
        return out

    for name, (_, data) in p.items():
        for level in (-5, 3, 19):
            add(zstd_cases, "zstd", "zst", name, f"level{level}",
                zstandard.ZstdCompressor(level=level).compress(data),
                f"zstandard.ZstdCompressor(level={level}).compress(data)", zdec)
    data = p["text"][1]
    add(zstd_cases, "zstd", "zst", "text", "checksum_no_size",
        zstandard.ZstdCompressor(level=3, write_checksum=True, write_content_size=False).compress(data),
        "zstandard.ZstdCompressor(level=3, write_checksum=True, write_content_size=False).compress(data)", zdec)
    c = zstandard.ZstdCompressor(level=3).compressobj()
    add(zstd_cases, "zstd", "zst", "text", "streamed", c.compress(data) + c.flush(),
        "zstandard.ZstdCompressor(level=3).compressobj(): compress + flush (no content size)", zdec)
    half = len(data) // 2
    two = zstandard.ZstdCompressor(level=1).compress(data[:half]) + \
        zstandard.ZstdCompressor(level=1).compress(data[half:])
    add(zstd_cases, "zstd", "zst", "text", "two_frames", two,
        "two concatenated frames: ZstdCompressor(level=1).compress(data[:n//2]) + ...compress(data[n//2:])", zdec)

    def ldec(stream):
        return lz4.block.decompress(stream)

    for name, (_, data) in p.items():
        add(lz4_cases, "lz4", "lz4", name, "default", lz4.block.compress(data, store_size=True),
            "lz4.block.compress(data, store_size=True)", ldec)
        add(lz4_cases, "lz4", "lz4", name, "hc9",
            lz4.block.compress(data, mode="high_compression", compression=9, store_size=True),
            "lz4.block.compress(data, mode='high_compression', compression=9, store_size=True)", ldec)
    data = p["f32_smooth"][1]
    add(lz4_cases, "lz4", "lz4", "f32_smooth", "fast8",
        lz4.block.compress(data, mode="fast", acceleration=8, store_size=True),
        "lz4.block.compress(data, mode='fast', acceleration=8, store_size=True)", ldec)
    add(lz4_cases, "lz4", "lz4", "f32_smooth", "hc12",
        lz4.block.compress(data, mode="high_compression", compression=12, store_size=True),
        "lz4.block.compress(data, mode='high_compression', compression=12, store_size=True)", ldec)
    return deflate, zstd_cases, lz4_cases


# ---------------------------------------------------------------------------------------------


def provenance():
    return {
        "script": "tests/peers/make_fixtures.py",
        "python": platform.python_version(),
        "versions": {
            "numpy": np.__version__,
            "scikit-image": skimage.__version__,
            "scipy": scipy.__version__,
            "h5py": h5py.version.version,
            "hdf5 (h5py)": h5py.version.hdf5_version,
            "hdf5plugin": hdf5plugin.version,
            "numcodecs": numcodecs.__version__,
            "lz4": lz4.__version__,
            "lz4 library": lz4.library_version_string(),
            "zstandard": zstandard.__version__,
            "zstd library": ".".join(map(str, zstandard.ZSTD_VERSION)),
            "zlib (runtime)": zlib.ZLIB_RUNTIME_VERSION,
        },
        "reference_data_sha256": {"reference-data/porous-tomo.h5": sha256(ROOT / "reference-data" / "porous-tomo.h5")},
        "calls": {
            "otsu": "skimage.filters.threshold_otsu(image) (nbins=256); foreground = numpy.count_nonzero(image > t)",
            "distortion": {
                "mse": "skimage.metrics.mean_squared_error(original, decoded)",
                "psnr": "skimage.metrics.peak_signal_noise_ratio(original, decoded, data_range=R), "
                        "R = float(original.max()) - float(original.min()) unless data_range_arg is given",
                "rmse": "numpy.sqrt(numpy.mean(d * d)), d = decoded.astype(float64) - original.astype(float64)",
                "max_abs_error": "numpy.max(numpy.abs(d))",
                "mean_error": "numpy.mean(d)",
                "mean_abs_error": "numpy.mean(numpy.abs(d)) (scale for the mean_error tolerance)",
                "nrmse": "skimage.metrics.normalized_root_mse(original, decoded, normalization='min-max') "
                         "without data_range_arg; numpy rmse / R with it",
                "snr": "10 * numpy.log10(numpy.var(x) / numpy.mean(d * d)) (population variance, "
                       "x = original.astype(float64)); inf when the mse is 0",
                "pearson": "scipy.stats.pearsonr(x.ravel(), y.ravel()).statistic on float64 copies; where "
                           "scipy returns nan (x or y constant, ConstantInputWarning): 1.0 if y == x, else 0.0",
                "max_rel_error": "numpy.max(|d| / numpy.maximum(|x|, floor)), floor = max_rel_floor_arg or "
                                 "1e-3 * R (recorded as max_rel_floor); a term is 0 where d == 0 and inf where "
                                 "the denominator is 0",
                "error_histogram": "numpy.histogram(d, bins=edges), edges = [-m[::-1], m], m_k = R * 10.0 ** "
                                   "(k / 10 - 8), k = 0..80; density = count / (d.size * width); mean and std "
                                   "numpy (population); skewness, kurtosis = scipy.stats.skew(d, axis=None), "
                                   "scipy.stats.kurtosis(d, axis=None) (bias=True, Fisher); null for a constant "
                                   "error; null instead of the object when R = 0",
                "error_autocorrelation": "numpy.corrcoef(take(d, 0..n-1, axis).ravel(), take(d, 1..n, "
                                         "axis).ravel())[0, 1] per axis; null when either side is constant",
                "ks_test": "scipy.stats.ks_2samp(original.ravel(), decoded.ravel(), method='asymp') "
                           "(p-value: scipy.stats.kstwo.sf(D, round(n_e)))",
                "ks_p_value": "scipy.stats.kstwo.sf(d, round(effective_n)) at the sizes of real volumes",
                "analyze": "skimage.filters.threshold_otsu(v), threshold_multiotsu(v, classes=3); classes = "
                           "numpy.digitize(v, thresholds, right=True); pores = class 0 labelled by "
                           "scipy.ndimage.label(mask, generate_binary_structure(rank, 1 or rank)); sizes "
                           "numpy.bincount; faces = sum of count_nonzero(diff(mask, axis)); diameters "
                           "(6V/pi)^(1/3) (3-D), sqrt(4A/pi) (2-D)",
                "cli": "photonqa metrics ORIGINAL DECODED --json [--data-range data_range_arg] "
                       "[--max-rel-floor max_rel_floor_arg]",
            },
            "bitround": "numcodecs.BitRound(keepbits=k).encode(input).view(input.dtype)",
            "quantize": "numpy float64, formula of src/pipeline/stages/quantize.rs: v = (x - lo) * L / (hi - lo); "
                        "q = clip(numpy.round(v), 0, L); x' = lo + q * (hi - lo) / L (numpy.round(x') for integer "
                        "input), cast with astype to the input dtype; L = 2**bits - 1",
            "shuffle": "h5py create_dataset(data=a, chunks=a.shape, shuffle=True); dset.id.read_direct_chunk((0,...))",
            "bitshuffle": "h5py create_dataset(data=a, chunks=a.shape, **hdf5plugin.Bitshuffle(nelems=0, cname='none')); "
                          "dset.id.read_direct_chunk((0,...)); no header with cname='none'",
            "deflate": "see each case's call; every stream checked with zlib.decompress",
            "zstd": "see each case's call; every stream checked with zstandard.ZstdDecompressor",
            "lz4": "see each case's call; every stream checked with lz4.block.decompress",
            "shared tooth": "threshold_otsu(data); bitround pairs: decoded = BitRound(keepbits=k).encode(data).view(float32)",
        },
        "float_encoding": "floats are strings with Python repr(float(x)); parse with str::parse::<f64>",
        "paths": "relative to the repository root",
    }


def generate(out, previous):
    w = Writer(out, FIXTURES, ROOT)
    otsu, constant, degenerate = make_otsu(w)
    quantize, ties = make_quantize(w)
    with tempfile.TemporaryDirectory() as tmp:
        shuffle = make_shuffle(w, tmp)
        bitshuffle = make_bitshuffle(w, tmp)
    deflate, zstd_cases, lz4_cases = make_codecs(w)
    with warnings_as_errors():
        distortion = make_distortion(w)
    expected = {
        "provenance": provenance(),
        "otsu": otsu,
        "otsu_constant": constant,
        "otsu_below_256_ulps": degenerate,
        "shared_tooth": make_shared(previous.get("shared_tooth") if previous else None),
        "distortion": distortion,
        "analyze": make_analyze(w),
        "ks_p_value": [
            {"d": fmt(lam / np.sqrt(n_e)), "effective_n": fmt(n_e),
             "p_value": fmt(kstwo.sf(lam / np.sqrt(n_e), round(n_e)))}
            for n_e in (2e4, 1e6, 5e8) for lam in (0.5, 1.0, 1.5, 2.0, 2.5)
        ],
        "bitround": make_bitround(w),
        "quantize": quantize,
        "quantize_ties": ties,
        "shuffle": shuffle,
        "bitshuffle": bitshuffle,
        "deflate": deflate,
        "zstd": zstd_cases,
        "lz4": lz4_cases,
    }
    write_expected(out, expected, previous)


if __name__ == "__main__":
    main(__doc__, FIXTURES, ROOT, generate)
