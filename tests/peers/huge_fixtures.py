#!/usr/bin/env python3
"""Peer fixtures for tests/huge_crosscheck.rs: every metric of data whose squares overflow
(float32 near FLT_MAX, float64 around 1e300), from NumPy, SciPy and scikit-image on the data
divided by their range.

Writes tests/fixtures/huge/ (one original.npy and decoded.npy per case) and
tests/fixtures/huge/expected.json (the peers' values and a provenance block). Deterministic:
every random input comes from a numpy Generator seeded from the case name, and the provenance
date is kept when nothing else changed, so running the script again reproduces the same files.

    python3 tests/peers/huge_fixtures.py            # (re)write the fixtures
    python3 tests/peers/huge_fixtures.py --check    # regenerate in a temp dir, compare, exit 1 on drift

Needs: numpy, scipy, scikit-image (2.4 / 1.16 / 0.26 recorded).

The peers cannot take these values as they are (squares overflow: NaN or inf with a warning),
so each case is divided by its data range R = max - min of the original, in float64 (xs = x / R,
ys = y / R, not a power of two: photonqa scales by its own power of two, so the two sides share
no rounding), and the dimensioned results are given back in the data's units where float64
holds them: rmse = sqrt(mse(xs, ys)) R, mean and std of the error times R; mse itself as
mse / R^2 (mse of float64 data near 1e300 is beyond float64). Errors that need no square
(max_abs_error, max_rel_error) come from the unscaled float64 values. The FRC, FSC and power
spectra are those of tests/peers/spectral_fixtures.py (imported) on xs and ys. Identical pairs
record scikit-image's PSNR inf and SSIM 1.

Floats in expected.json are strings holding Python's repr of the float64 value (shortest
round-trip text, "inf" for infinity) so the Rust side parses them bit-exactly with
str::parse::<f64>.
"""

from pathlib import Path

import numpy as np
import scipy
import skimage
from scipy import stats
from skimage.metrics import mean_squared_error, normalized_root_mse, peak_signal_noise_ratio
from skimage.metrics import structural_similarity

from fixture_kit import SeededCases, Writer, fmt, main, pair_entries, peer_provenance, write_expected  # noqa: E402
from spectral_fixtures import frc_curve, fsc_peer, power_spectrum, ring_sums, smooth_field

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "huge"
SHAPE = (14, 24, 24)
F32_MAX = float(np.finfo(np.float32).max)


def cases():
    out = SeededCases()

    def field(rng):
        return smooth_field(rng, SHAPE) + 0.05 * rng.standard_normal(SHAPE)

    def f32_near_max(rng):
        x = (F32_MAX * (0.2 + 0.75 * np.clip(field(rng), 0, 1))).astype(np.float32)
        step = F32_MAX / 40
        return x, (np.round(x.astype(np.float64) / step) * step).astype(np.float32)

    def f32_near_max_identical(rng):
        x, _ = f32_near_max(rng)
        return x, x.copy()

    def f64_1e300(rng):
        x = 1e300 * (field(rng) - 0.4)
        return x, x + 4e299 * rng.standard_normal(SHAPE)

    def f64_1e300_identical(rng):
        x, _ = f64_1e300(rng)
        return x, x.copy()

    out.add("f32_near_max", f32_near_max, "float32 up to 0.95 FLT_MAX vs rounded to FLT_MAX / 40")
    out.add("f32_near_max_identical", f32_near_max_identical, "the same original, decoded identical")
    out.add("f64_1e300", f64_1e300, "float64 about +-1e300 vs + 4e299 noise (the FRC crosses)")
    out.add("f64_1e300_identical", f64_1e300_identical, "the same original, decoded identical")
    return out


def peer(original, decoded):
    x, y = original.astype(np.float64), decoded.astype(np.float64)
    r = x.max() - x.min()
    xs, ys = x / r, y / r
    e = ys - xs
    mse = mean_squared_error(xs, ys)
    identical = bool(np.array_equal(x, y))
    result = {
        "data_range": fmt(r),
        "mse_over_r2": fmt(mse),
        "rmse": fmt(np.sqrt(mse) * r),
        "nrmse": fmt(normalized_root_mse(xs, ys, normalization="min-max")),
        "psnr": fmt(peak_signal_noise_ratio(xs, ys, data_range=1.0)) if not identical else "inf",
        "snr": fmt(10 * np.log10(xs.var() / mse)) if not identical else "inf",
        "max_abs_error": fmt(np.abs(y - x).max()),
        "max_rel_error": fmt((np.abs(y - x) / np.maximum(np.abs(x), 1e-3 * r)).max()),
        "mean_error": fmt(e.mean() * r),
        "pearson": fmt(stats.pearsonr(xs.ravel(), ys.ravel()).statistic) if not identical else "1.0",
        "ssim": fmt(structural_similarity(xs, ys, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                          use_sample_covariance=False)),
        "error_std": fmt(e.std() * r),
        "ks_statistic": fmt(stats.ks_2samp(xs.ravel(), ys.ravel()).statistic),
    }
    if not identical:
        result["error_skewness"] = fmt(stats.skew(e.ravel()))
        result["error_kurtosis"] = fmt(stats.kurtosis(e.ravel()))
        result["error_autocorrelation"] = [
            fmt(np.corrcoef(np.moveaxis(e, axis, 0)[:-1].ravel(), np.moveaxis(e, axis, 0)[1:].ravel())[0, 1])
            for axis in range(e.ndim)
        ]
    n1, n2 = SHAPE[1:]
    sums = ring_sums(xs, ys)
    _, _, resolution, _ = frc_curve(sums, min(n1, n2), flat=False)
    _, _, relative = power_spectrum(sums, n1, n2)
    result["frc_resolution"] = fmt(resolution)
    result["power_spectrum_max_abs_relative_error"] = fmt(np.abs(relative).max())
    result["fsc_resolution"] = fsc_peer(xs, ys)["resolution"]
    return result


def provenance():
    return peer_provenance(
        "huge_fixtures.py",
        versions={"numpy": np.__version__, "scipy": scipy.__version__, "scikit-image": skimage.__version__},
        calls={
            "scaling": "x, y as float64; R = x.max() - x.min(); xs = x / R, ys = y / R; e = ys - xs",
            "mse_over_r2": "skimage.metrics.mean_squared_error(xs, ys)",
            "rmse": "sqrt(mse_over_r2) * R",
            "nrmse": "skimage.metrics.normalized_root_mse(xs, ys, normalization='min-max')",
            "psnr": "skimage.metrics.peak_signal_noise_ratio(xs, ys, data_range=1.0) (inf when identical)",
            "snr": "10 log10(xs.var() / mse_over_r2) (inf when identical)",
            "max_abs_error": "abs(y - x).max() in float64",
            "max_rel_error": "(abs(y - x) / maximum(abs(x), 1e-3 R)).max() in float64",
            "mean_error": "e.mean() * R",
            "pearson": "scipy.stats.pearsonr(xs.ravel(), ys.ravel()).statistic (1.0 when identical)",
            "ssim": "skimage.metrics.structural_similarity(xs, ys, data_range=1.0, gaussian_weights=True, "
                    "sigma=1.5, use_sample_covariance=False)",
            "error_std": "e.std() * R",
            "error_skewness, error_kurtosis": "scipy.stats.skew(e.ravel()), scipy.stats.kurtosis(e.ravel())",
            "error_autocorrelation": "np.corrcoef of the lag-1 pairs of e along each axis",
            "ks_statistic": "scipy.stats.ks_2samp(xs.ravel(), ys.ravel()).statistic",
            "frc_resolution, power_spectrum_max_abs_relative_error, fsc_resolution":
                "tests/peers/spectral_fixtures.py on xs, ys",
        },
    )


def generate(out, previous):
    entries = pair_entries(Writer(out, FIXTURES, ROOT), cases, peer)
    write_expected(out, {"provenance": provenance(), "cases": entries}, previous)


if __name__ == "__main__":
    main(__doc__, FIXTURES, ROOT, generate)
