#!/usr/bin/env python3
"""SSIM peer fixtures for tests/ssim_crosscheck.rs: what scikit-image computes on small inputs.

Writes tests/fixtures/ssim/ (one original.npy and decoded.npy per case) and
tests/fixtures/ssim/expected.json (scikit-image's values and a provenance block). Deterministic:
every random input comes from a numpy Generator seeded from the case name, and the provenance
date is kept when nothing else changed, so running the script again reproduces the same files.

    python3 tests/peers/ssim_fixtures.py            # (re)write the fixtures
    python3 tests/peers/ssim_fixtures.py --check    # regenerate in a temp dir, compare, exit 1 on drift

Needs: numpy, scipy, scikit-image (0.26 recorded).

For each case and each window ("gaussian": Wang et al.'s 11-tap Gaussian window, "uniform":
scikit-image's default 7-tap box with sample covariance), expected.json holds the mean SSIM
returned by structural_similarity, and from its full=True map S cropped by pad = (win_size-1)//2
on every side of every axis: the minimum, and for 3D arrays the mean of each slice along axis 0.
A window longer than an axis makes scikit-image raise: the case then records the error message.
Each window also records float64_centred_mean, an evaluation of the same formula in float64 on
centred data (not scikit-image; see float64_centred_mean below): near-exact, it shows which
side of a disagreement rounding comes from.

Floats in expected.json are strings holding Python's repr of the float64 value (shortest
round-trip text) so the Rust side parses them bit-exactly with str::parse::<f64>.
"""

from pathlib import Path

import numpy as np
import scipy
import skimage
from scipy import ndimage
from skimage.metrics import structural_similarity
from skimage.util import crop

from fixture_kit import SeededCases, Writer, fmt, main, pair_entries, peer_provenance, write_expected  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "ssim"

WINDOWS = {
    "gaussian": {
        "kwargs": {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False},
        "pad": 5,
        "call": "structural_similarity(original, decoded, data_range=R, gaussian_weights=True, "
                "sigma=1.5, use_sample_covariance=False, full=True)",
    },
    "uniform": {
        "kwargs": {},
        "pad": 3,
        "call": "structural_similarity(original, decoded, data_range=R, full=True)",
    },
}


def smooth_field(rng, shape, sigma=2.0):
    """A smooth random field scaled to [0, 1]."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return (f - f.min()) / (f.max() - f.min())


def phantom(rng, shape):
    """Bright disks/balls on a gentle gradient: sharp edges and flat regions, in [0, 1]."""
    grids = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    image = 0.1 + 0.2 * grids[-1] / shape[-1]
    for _ in range(6):
        centre = [rng.uniform(0, n) for n in shape]
        radius = rng.uniform(3, min(shape) / 3)
        dist2 = sum((g - c) ** 2 for g, c in zip(grids, centre))
        image = np.where(dist2 < radius**2, rng.uniform(0.4, 0.9), image)
    return image


def quantize(x, bits, lo, hi):
    levels = 2**bits - 1
    return lo + np.round((x - lo) / (hi - lo) * levels) / levels * (hi - lo)


def cases():
    """(name, original, decoded, data_range, note) of every case."""
    out = SeededCases()

    def f32_2d_square(rng):
        x = (phantom(rng, (64, 64)) + 0.02 * rng.standard_normal((64, 64))).astype(np.float32)
        y = quantize(x.astype(np.float64), 5, float(x.min()), float(x.max())).astype(np.float32)
        return x, y, float(x.max()) - float(x.min())

    def f64_2d_nonsquare(rng):
        x = smooth_field(rng, (45, 71))
        return x, x + 0.05 * rng.standard_normal(x.shape), float(x.max()) - float(x.min())

    def f32_3d(rng):
        shape = (24, 20, 22)
        x = (smooth_field(rng, shape, 1.5) + 0.03 * rng.standard_normal(shape)).astype(np.float32)
        y = quantize(x.astype(np.float64), 4, float(x.min()), float(x.max()))
        y = (y + 0.01 * rng.standard_normal(shape)).astype(np.float32)
        return x, y, float(x.max()) - float(x.min())

    def f64_3d_blurred(rng):
        x = phantom(rng, (20, 23, 21)) + 0.01 * rng.standard_normal((20, 23, 21))
        return x, ndimage.gaussian_filter(x, 0.8), float(x.max()) - float(x.min())

    def f32_3d_smallest(rng):
        x = smooth_field(rng, (11, 12, 13), 1.0).astype(np.float32)
        y = (x + 0.05 * rng.standard_normal(x.shape)).astype(np.float32)
        return x, y, float(x.max()) - float(x.min())

    def u8_2d(rng):
        x = np.round(255 * phantom(rng, (50, 64))).astype(np.uint8)
        noise = np.round(6 * rng.standard_normal(x.shape))
        y = np.clip(x.astype(np.float64) + noise, 0, 255).astype(np.uint8)
        return x, y, 255.0

    def u16_3d(rng):
        x = (1000 + 39000 * smooth_field(rng, (22, 18, 20), 1.5)).astype(np.uint16)
        y = ((x >> 6) << 6).astype(np.uint16)  # low 6 bits dropped
        return x, y, float(x.max()) - float(x.min())

    def mixed_u16_f32_2d(rng):
        x = np.round(4000 * phantom(rng, (40, 36))).astype(np.uint16)
        y = (x + 40 * rng.standard_normal(x.shape)).astype(np.float32)
        return x, y, float(x.max()) - float(x.min())

    def identical_f32_3d(rng):
        x = (smooth_field(rng, (16, 14, 15)) + 0.1 * rng.standard_normal((16, 14, 15))).astype(np.float32)
        return x, x.copy(), float(x.max()) - float(x.min())

    def constant_f32_2d(rng):
        del rng
        return np.full((16, 20), 0.25, np.float32), np.full((16, 20), 0.3, np.float32), 1.0

    def tiny_range_f64_2d(rng):
        x = 1000.0 + 1e-3 * rng.standard_normal((40, 48))
        y = x + 2e-4 * rng.standard_normal(x.shape)
        return x, y, float(x.max()) - float(x.min())

    def blurred_noisy_f32_2d(rng):
        x = phantom(rng, (96, 80)).astype(np.float32)
        y = (ndimage.gaussian_filter(x.astype(np.float64), 1.2) + 0.03 * rng.standard_normal(x.shape))
        return x, y.astype(np.float32), float(x.max()) - float(x.min())

    def too_small_for_gaussian_f32_2d(rng):
        x = rng.random((8, 9)).astype(np.float32)
        return x, (x + 0.1 * rng.random(x.shape)).astype(np.float32), 1.0

    out.add("f32_2d_square", f32_2d_square, "float32 64x64 disks + noise vs 5-bit quantized")
    out.add("f64_2d_nonsquare", f64_2d_nonsquare, "float64 45x71 smooth field vs + noise")
    out.add("f32_3d", f32_3d, "float32 24x20x22 smooth field + noise vs 4-bit quantized + noise")
    out.add("f64_3d_blurred", f64_3d_blurred, "float64 20x23x21 balls + noise vs Gaussian blur 0.8")
    out.add("f32_3d_smallest", f32_3d_smallest, "float32 11x12x13: one interior slice for gaussian")
    out.add("u8_2d", u8_2d, "uint8 50x64 disks vs + rounded noise, R = 255")
    out.add("u16_3d", u16_3d, "uint16 22x18x20 wide range vs low 6 bits dropped")
    out.add("mixed_u16_f32_2d", mixed_u16_f32_2d, "uint16 original vs float32 decoded (float64 in skimage)")
    out.add("identical_f32_3d", identical_f32_3d, "identical pair: 1.0")
    out.add("constant_f32_2d", constant_f32_2d, "constant 0.25 vs constant 0.3, R = 1: luminance term only")
    out.add("tiny_range_f64_2d", tiny_range_f64_2d, "float64 1000 + 1e-3 noise vs + 2e-4 noise, R = max - min")
    out.add("blurred_noisy_f32_2d", blurred_noisy_f32_2d, "float32 96x80 disks vs Gaussian blur 1.2 + noise")
    out.add("too_small_for_gaussian_f32_2d", too_small_for_gaussian_f32_2d,
        "8x9: shorter than the 11-tap Gaussian window (error), long enough for the 7-tap box")
    return out


def float64_centred_mean(original, decoded, data_range, window):
    """Not scikit-image: the same formula in float64 on data shifted by the original's mean
    (SSIM's variances do not change; the shift is added back to the means), which avoids the
    cancellation in <x x> - ux^2 that scikit-image's uncentred evaluation suffers far from zero."""
    x, y = original.astype(np.float64), decoded.astype(np.float64)
    c = x.mean()
    x, y = x - c, y - c
    if window == "gaussian":
        def f(a):
            return ndimage.gaussian_filter(a, 1.5, truncate=3.5, mode="reflect")
        k = 1.0
    else:
        def f(a):
            return ndimage.uniform_filter(a, 7)
        n = 7.0**x.ndim
        k = n / (n - 1)
    ux, uy = f(x), f(y)
    vx, vy, vxy = k * (f(x * x) - ux * ux), k * (f(y * y) - uy * uy), k * (f(x * y) - ux * uy)
    ux, uy = ux + c, uy + c
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return crop(s, WINDOWS[window]["pad"]).mean()


def peer(original, decoded, data_range, window):
    spec = WINDOWS[window]
    try:
        mean, full = structural_similarity(original, decoded, data_range=data_range, full=True,
                                           **spec["kwargs"])
    except ValueError as e:
        return {"error": str(e)}
    interior = crop(full, spec["pad"]).astype(np.float64)
    result = {"mean": fmt(mean), "min": fmt(interior.min()), "map_dtype": str(full.dtype),
              "float64_centred_mean": fmt(float64_centred_mean(original, decoded, data_range, window))}
    if original.ndim == 3:
        result["per_slice"] = [fmt(v) for v in interior.mean(axis=(1, 2))]
    return result


def provenance():
    return peer_provenance(
        "ssim_fixtures.py",
        versions={
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "scikit-image": skimage.__version__,
        },
        calls={
            window: {
                "ssim": spec["call"],
                "mean": "the returned mssim",
                "min": f"skimage.util.crop(S, {spec['pad']}).astype(float64).min()",
                "per_slice": f"skimage.util.crop(S, {spec['pad']}).astype(float64).mean(axis=(1, 2)) (3D only)",
                "float64_centred_mean": "not scikit-image: the same formula in float64 with scipy.ndimage "
                                        + ("gaussian_filter(a, 1.5, truncate=3.5)" if window == "gaussian"
                                           else "uniform_filter(a, 7), sample covariance")
                                        + " on original - c and decoded - c, c = original.mean(), c added "
                                        "back to the means; crop and mean as above (see float64_centred_mean)",
            }
            for window, spec in WINDOWS.items()
        },
    )


def generate(out, previous):
    entries = pair_entries(Writer(out, FIXTURES, ROOT), cases, lambda original, decoded, data_range: {
        "data_range": fmt(data_range),
        "windows": {w: peer(original, decoded, data_range, w) for w in WINDOWS},
    })
    expected = {"provenance": provenance(), "cases": entries}
    write_expected(out, expected, previous)


if __name__ == "__main__":
    main(__doc__, FIXTURES, ROOT, generate)
