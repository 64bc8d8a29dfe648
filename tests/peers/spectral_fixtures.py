#!/usr/bin/env python3
"""FRC, power-spectrum and FSC peer fixtures for tests/spectral_crosscheck.rs: full NumPy FFTs.

Writes tests/fixtures/spectral/ (one original.npy and decoded.npy per case) and
tests/fixtures/spectral/expected.json (the peer's ring values and a provenance block); the
Fourier shell correlation cases go to tests/fixtures/spectral/fsc/ with their own
expected.json.
Deterministic: every random input comes from a numpy Generator seeded from the case name, and
the provenance date is kept when nothing else changed, so running the script again reproduces
the same files.

    python3 tests/peers/spectral_fixtures.py            # (re)write the fixtures
    python3 tests/peers/spectral_fixtures.py --check    # regenerate in a temp dir, compare, exit 1 on drift

Needs: numpy, scipy (2.4 / 1.16 recorded; scipy only smooths the inputs).

The peer (ring_sums, frc_curve, power_spectrum below) is written from the definitions in the
module documentation of src/metrics/spectral.rs (van Heel & Schatz 2005,
doi:10.1016/j.jsb.2005.05.009), not from photonqa's code: per plane the full unnormalised 2D
transforms X = np.fft.fft2(original), Y = np.fft.fft2(decoded) (float64), the frequency of every
sample from np.fft.fftfreq, f = sqrt(fy^2 + fx^2), the ring floor(f / d + 0.5) with
d = 1 / min(n1, n2), samples beyond ring min(n1, n2) // 2 dropped, and per-ring sums with
np.bincount over all planes. Where f / d is within 1e-9 of a half-integer the float ring is
replaced by the exact one (integer arithmetic, ties to the outer ring); expected.json records
how many samples that concerned ("exact_ties").

The generator refuses a case where FRC - threshold is within 1e-6 of 0 at some ring i >= 1, where
the crossing ring would depend on rounding (ring 0 of a single plane is its DC sample alone, with
FRC = +-1 and threshold 1: it only enters the interpolation, continuously).

The FSC peer (shells, fsc_peer below) is the 3-D generalisation, from the same definitions: the
full unnormalised transforms X = np.fft.fftn(original), Y = np.fft.fftn(decoded) (float64) of
each whole volume, f = sqrt(fz^2 + fy^2 + fx^2) from np.fft.fftfreq of every axis, the shell
floor(f / d + 0.5) with d = 1 / min(n0, n1, n2) (the exact integer test within 1e-9 of a tie,
as for rings), samples beyond shell min(n0, n1, n2) // 2 dropped, np.bincount sums, and the FRC
formulas for the FSC, the half-bit curve (n = samples per shell), resolution and crossing, with
the same 1e-6 margin at shells i >= 1.

Degenerate case (frc_curve, for rings and shells alike): when every plane (for the FSC, the
volume) of both arrays is constant, the resolution is 1.0 if the cross and power sums are equal
in every ring (the arrays are identical) and 0.0, crossed, otherwise (two different constants
resolve nothing).

Floats in expected.json are strings holding Python's repr of the float64 value (shortest
round-trip text, "inf" for infinity) so the Rust side parses them bit-exactly with
str::parse::<f64>.
"""

import json
from pathlib import Path

import numpy as np
import scipy
from scipy import ndimage

from fixture_kit import SeededCases, Writer, fmt, main, pair_entries, peer_provenance, write_expected  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "spectral"

#: Smallest |FRC - threshold| accepted at any ring of a case.
MARGIN = 1e-6


def smooth_field(rng, shape, sigma=2.0):
    """A smooth random field (Gaussian-filtered white noise over the last two axes) in [0, 1]."""
    sigmas = (0,) * (len(shape) - 2) + (sigma, sigma)
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigmas)
    return (f - f.min()) / (f.max() - f.min())


def disks(rng, shape):
    """Bright disks on a gentle gradient: sharp edges, power up to Nyquist; in [0, 1]."""
    yy, xx = np.meshgrid(np.arange(shape[0], dtype=np.float64),
                         np.arange(shape[1], dtype=np.float64), indexing="ij")
    image = 0.1 + 0.2 * xx / shape[1]
    for _ in range(8):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        radius = rng.uniform(2, min(shape) / 4)
        image = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < radius**2, rng.uniform(0.4, 0.9), image)
    return image


def cases():
    """(name, original, decoded, note) of every case."""
    out = SeededCases()

    def f32_2d_square_u8(rng):
        x = (2.0 + 3.0 * smooth_field(rng, (64, 64))).astype(np.float32)
        lo, hi = float(x.min()), float(x.max())
        q = np.round((x.astype(np.float64) - lo) / (hi - lo) * 255).astype(np.uint8)
        return x, (lo + q.astype(np.float64) / 255 * (hi - lo)).astype(np.float32)

    def f64_2d_nonsquare(rng):
        x = smooth_field(rng, (48, 80), 1.5) + 0.05 * rng.standard_normal((48, 80))
        return x, x + 0.05 * rng.standard_normal(x.shape)

    def f32_2d_odd(rng):
        x = disks(rng, (33, 45)) + 0.02 * rng.standard_normal((33, 45))
        return x.astype(np.float32), ndimage.gaussian_filter(x, 1.0).astype(np.float32)

    def u16_3d_stack(rng):
        x = np.round(1000 + 30000 * smooth_field(rng, (5, 40, 40), 1.5)).astype(np.uint16)
        noise = np.round(300 * rng.standard_normal(x.shape))
        return x, np.clip(x.astype(np.float64) + noise, 0, 65535).astype(np.uint16)

    def identical_f32_3d(rng):
        x = (smooth_field(rng, (3, 32, 24)) + 0.1 * rng.standard_normal((3, 32, 24))).astype(np.float32)
        return x, x.copy()

    def constant_f32_2d(rng):
        del rng
        return np.full((32, 32), 0.25, np.float32), np.full((32, 32), 0.3, np.float32)

    def constant_vs_noisy_f64_2d(rng):
        x = np.full((16, 32), 1.0)
        return x, x + 0.01 * rng.standard_normal(x.shape)

    def crossing_f32_2d(rng):
        x = disks(rng, (64, 64)) + 0.01 * rng.standard_normal((64, 64))
        y = ndimage.gaussian_filter(x, 2.0) + 0.05 * rng.standard_normal(x.shape)
        return x.astype(np.float32), y.astype(np.float32)

    def no_crossing_f64_2d(rng):
        x = disks(rng, (40, 56)) + 0.3 * rng.standard_normal((40, 56))
        return x, x + 1e-3 * rng.standard_normal(x.shape)

    def ties_f64_2d(rng):
        x = smooth_field(rng, (30, 40), 1.0) + 0.1 * rng.standard_normal((30, 40))
        return x, x + 0.1 * rng.standard_normal(x.shape)

    def negated_f64_2d(rng):
        x = 1.0 + smooth_field(rng, (24, 24), 1.0)
        return x, -x

    def mixed_u8_f32_2d(rng):
        x = np.round(255 * disks(rng, (36, 36))).astype(np.uint8)
        return x, (x + 8.0 * rng.standard_normal(x.shape)).astype(np.float32)

    out.add("f32_2d_square_u8", f32_2d_square_u8,
        "float32 64x64 smooth field vs its uint8-quantised-and-dequantised version")
    out.add("f64_2d_nonsquare", f64_2d_nonsquare, "float64 48x80 smooth field + noise vs + noise")
    out.add("f32_2d_odd", f32_2d_odd, "float32 33x45 (odd sizes) disks + noise vs Gaussian blur 1.0")
    out.add("u16_3d_stack", u16_3d_stack, "uint16 5x40x40 stack vs + rounded noise (sd 300)")
    out.add("identical_f32_3d", identical_f32_3d, "identical 3x32x24 pair: FRC 1, no crossing, relative error 0")
    out.add("constant_f32_2d", constant_f32_2d,
        "constant 0.25 vs 0.3, 32x32: power only at DC (FFTs of constants are exactly 0 elsewhere)")
    out.add("constant_vs_noisy_f64_2d", constant_vs_noisy_f64_2d,
        "constant 1.0 vs + noise, 16x32: Px = 0 beyond DC, FRC 0 and relative error inf there")
    out.add("crossing_f32_2d", crossing_f32_2d, "float32 64x64 disks vs blurred (sigma 2) + noise: crosses")
    out.add("no_crossing_f64_2d", no_crossing_f64_2d, "float64 40x56 disks + strong noise vs + 1e-3 noise: no crossing")
    out.add("ties_f64_2d", ties_f64_2d, "float64 30x40: samples exactly half-way between rings (e.g. (2, 2))")
    out.add("negated_f64_2d", negated_f64_2d, "decoded = -original, 24x24: FRC -1, ring 0 below the curve")
    out.add("mixed_u8_f32_2d", mixed_u8_f32_2d, "uint8 original vs float32 decoded, 36x36")
    return out


def rings(n1, n2):
    """Ring of every sample of an n1 x n2 plane (fftfreq layout), and the number of samples whose
    float ring was replaced by the exact one (near-ties)."""
    m0 = min(n1, n2)
    fy, fx = np.fft.fftfreq(n1), np.fft.fftfreq(n2)
    scaled = np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) / (1.0 / m0)
    ring = np.floor(scaled + 0.5).astype(np.int64)
    near = np.abs((scaled + 0.5) - np.round(scaled + 0.5)) < 1e-9
    ky = np.minimum(np.arange(n1), n1 - np.arange(n1))
    kx = np.minimum(np.arange(n2), n2 - np.arange(n2))
    for a, b in zip(*np.nonzero(near)):
        # Exact: ring i is reached when (2 i - 1)^2 n1^2 n2^2 <= 4 m0^2 (ky^2 n2^2 + kx^2 n1^2).
        four_q = 4 * m0**2 * (int(ky[a]) ** 2 * n2**2 + int(kx[b]) ** 2 * n1**2)
        i = int(np.round(scaled[a, b] + 0.5))  # the ring on the outer side of the tie
        ring[a, b] = i if (2 * i - 1) ** 2 * n1**2 * n2**2 <= four_q else i - 1
    return ring, int(near.sum())


def ring_sums(original, decoded):
    """Per ring, summed over all planes: samples, C = sum Re(X conj Y), Px, Py."""
    x = np.asarray(original, dtype=np.float64)
    y = np.asarray(decoded, dtype=np.float64)
    if x.ndim == 2:
        x, y = x[None], y[None]
    _, n1, n2 = x.shape
    X, Y = np.fft.fft2(x), np.fft.fft2(y)
    ring, ties = rings(n1, n2)
    m = min(n1, n2) // 2
    keep = np.broadcast_to(ring <= m, X.shape)
    index = np.broadcast_to(ring, X.shape)[keep]

    def per_ring(values):
        return np.bincount(index, weights=values[keep], minlength=m + 1)

    return {
        "samples": np.bincount(index, minlength=m + 1),
        "cross": per_ring((X * np.conj(Y)).real),
        "px": per_ring(np.abs(X) ** 2),
        "py": per_ring(np.abs(Y) ** 2),
        "ties": ties,
    }


def frc_curve(sums, m0, flat):
    c, px, py, n = sums["cross"], sums["px"], sums["py"], sums["samples"].astype(np.float64)
    denominator = np.sqrt(px * py)
    with np.errstate(divide="ignore", invalid="ignore"):
        frc = np.where(denominator > 0, c / denominator, np.where((px == 0) & (py == 0), 1.0, 0.0))
    half_bit = (0.2071 + 1.9102 / np.sqrt(n)) / (1.2071 + 0.9102 / np.sqrt(n))
    g = frc - half_bit
    # Ring 0 (T = 1 for a single plane's lone DC sample) only enters the interpolation, continuously.
    if len(g) > 1 and np.abs(g[1:]).min() < MARGIN:
        raise SystemExit(f"FRC within {MARGIN} of the half-bit curve at ring {1 + np.abs(g[1:]).argmin()}: "
                         "choose another case")
    resolution, crossed = 1.0, False
    if flat:
        # Degenerate: every plane (volume) constant on both sides, nothing beyond DC to
        # correlate. Identical sums (identical arrays) resolve everything, different ones
        # nothing (crossed at ring 0).
        if not (np.array_equal(c, px) and np.array_equal(px, py)):
            resolution, crossed = 0.0, True
        return frc, half_bit, resolution, crossed
    for i in range(1, len(g)):
        if g[i] < 0:
            # Linear in FRC - T between rings i - 1 and i; ring 0 below the curve: at ring 0.
            t = g[i - 1] / (g[i - 1] - g[i]) if g[i - 1] > 0 else 0.0
            resolution, crossed = 2 * (i - 1 + t) / m0, True
            break
    return frc, half_bit, resolution, crossed


def power_spectrum(sums, n1, n2):
    n = sums["samples"].astype(np.float64)
    sx, sy = sums["px"] / (n * n1 * n2), sums["py"] / (n * n1 * n2)
    relative = np.array([0.0 if a == 0 and b == 0 else np.inf if a == 0 else (b - a) / a
                         for a, b in zip(sx, sy)])
    return sx, sy, relative


def peer(original, decoded):
    n1, n2 = original.shape[-2:]
    m0 = min(n1, n2)
    sums = ring_sums(original, decoded)
    planes = [a.reshape(-1, n1 * n2) for a in (original, decoded)]
    flat = all(np.all(p == p[:, :1]) for p in planes)
    frc, half_bit, resolution, crossed = frc_curve(sums, m0, flat)
    sx, sy, relative = power_spectrum(sums, n1, n2)
    return {
        "planes": 1 if original.ndim == 2 else original.shape[0],
        "exact_ties": sums["ties"],
        "samples": [int(v) for v in sums["samples"]],
        "frequency": [fmt(2 * i / m0) for i in range(len(frc))],
        "frc": [fmt(v) for v in frc],
        "half_bit": [fmt(v) for v in half_bit],
        "resolution": fmt(resolution),
        "crossed": crossed,
        "power_original": [fmt(v) for v in sx],
        "power_decoded": [fmt(v) for v in sy],
        "relative_error": [fmt(v) for v in relative],
        "max_abs_relative_error": fmt(np.abs(relative).max()),
    }


def provenance():
    return peer_provenance(
        "spectral_fixtures.py",
        versions={"numpy": np.__version__, "scipy": scipy.__version__},
        calls={
            "transform": "X = np.fft.fft2(original.astype(float64)), Y likewise, per plane (last two axes)",
            "rings": "floor(sqrt(fftfreq(n1)[:, None]**2 + fftfreq(n2)[None, :]**2) / (1 / min(n1, n2)) + 0.5), "
                     "exact integer test within 1e-9 of a tie; rings > min(n1, n2) // 2 dropped",
            "sums": "np.bincount(ring, weights=...) of Re(X conj Y), |X|^2, |Y|^2 over all planes",
            "frc": "C / sqrt(Px Py); 1 where Px = Py = 0, 0 where only one is 0",
            "half_bit": "(0.2071 + 1.9102 / sqrt(n)) / (1.2071 + 0.9102 / sqrt(n))",
            "resolution": "first ring i >= 1 with FRC < T; 2 (i - 1 + t) / min(n1, n2), "
                          "t = g[i-1] / (g[i-1] - g[i]) with g = FRC - T (t = 0 if g[i-1] <= 0); 1.0 without; "
                          "every plane of both arrays constant: 1.0 if C = Px = Py in every ring, else 0.0 (crossed)",
            "power": "Px / (n n1 n2), Py likewise; relative (Sy - Sx) / Sx, 0 if both 0, inf if only Sx is 0",
        },
    )


def generate(out, previous):
    entries = pair_entries(Writer(out, FIXTURES, ROOT), cases, peer)
    expected = {"provenance": provenance(), "cases": entries}
    write_expected(out, expected, previous)
    generate_fsc(Path(out) / "fsc")


# --- Fourier shell correlation (whole volumes) ---------------------------------------------------

FSC_FIXTURES = FIXTURES / "fsc"


def smooth_volume(rng, shape, sigma=1.5):
    """A smooth random field (Gaussian-filtered white noise over all three axes) in [0, 1]."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return (f - f.min()) / (f.max() - f.min())


def balls(rng, shape, count=10):
    """Bright balls on a gentle gradient: sharp edges, power up to Nyquist; in [0, 1]."""
    zz, yy, xx = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in shape), indexing="ij")
    volume = 0.1 + 0.2 * xx / shape[2]
    for _ in range(count):
        c = [rng.uniform(0, n) for n in shape]
        radius = rng.uniform(1.5, min(shape) / 3)
        inside = (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 < radius**2
        volume = np.where(inside, rng.uniform(0.4, 0.9), volume)
    return volume


def fsc_cases():
    """(name, original, decoded, note) of every FSC case."""
    out = SeededCases("fsc/")

    def f32_cubic_quantised(rng):
        x = (1.0 + 4.0 * smooth_volume(rng, (16, 16, 16))).astype(np.float32)
        lo, hi = float(x.min()), float(x.max())
        q = np.round((x.astype(np.float64) - lo) / (hi - lo) * 15)
        return x, (lo + q / 15 * (hi - lo)).astype(np.float32)

    def f64_noncubic(rng):
        shape = (8, 12, 20)
        x = smooth_volume(rng, shape, 1.0) + 0.05 * rng.standard_normal(shape)
        return x, x + 0.05 * rng.standard_normal(shape)

    def f32_odd(rng):
        shape = (9, 11, 13)
        x = balls(rng, shape) + 0.02 * rng.standard_normal(shape)
        return x.astype(np.float32), ndimage.gaussian_filter(x, 0.8).astype(np.float32)

    def u16_noisy(rng):
        shape = (10, 16, 12)
        x = np.round(1000 + 30000 * smooth_volume(rng, shape, 1.2)).astype(np.uint16)
        noise = np.round(400 * rng.standard_normal(shape))
        return x, np.clip(x.astype(np.float64) + noise, 0, 65535).astype(np.uint16)

    def identical_f32(rng):
        shape = (12, 10, 14)
        x = (smooth_volume(rng, shape) + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        return x, x.copy()

    def crossing_f32(rng):
        shape = (20, 24, 28)
        x = balls(rng, shape, 14) + 0.01 * rng.standard_normal(shape)
        y = ndimage.gaussian_filter(x, 2.0) + 0.08 * rng.standard_normal(shape)
        return x.astype(np.float32), y.astype(np.float32)

    def no_crossing_f64(rng):
        shape = (12, 16, 20)
        x = balls(rng, shape) + 0.3 * rng.standard_normal(shape)
        return x, x + 1e-3 * rng.standard_normal(shape)

    def mixed_u8_f32(rng):
        shape = (6, 8, 10)
        x = np.round(255 * balls(rng, shape, 4)).astype(np.uint8)
        return x, (x + 8.0 * rng.standard_normal(shape)).astype(np.float32)

    def tiny_f64(rng):
        shape = (2, 5, 7)
        x = rng.standard_normal(shape) + 2.0
        return x, x + 0.2 * rng.standard_normal(shape)

    def constant_f32(rng):
        del rng
        return np.full((8, 8, 8), 0.25, np.float32), np.full((8, 8, 8), 0.3, np.float32)

    def constant_vs_noisy_f64(rng):
        x = np.full((4, 8, 8), 1.0)
        return x, x + 0.01 * rng.standard_normal(x.shape)

    out.add("f32_cubic_quantised", f32_cubic_quantised,
        "float32 16^3 smooth field vs its 4-bit quantised-and-dequantised version")
    out.add("f64_noncubic", f64_noncubic, "float64 8x12x20 smooth field + noise vs + noise")
    out.add("f32_odd", f32_odd, "float32 9x11x13 (odd sizes) balls + noise vs Gaussian blur 0.8")
    out.add("u16_noisy", u16_noisy, "uint16 10x16x12 smooth field vs + rounded noise (sd 400); exact ties")
    out.add("identical_f32", identical_f32, "identical 12x10x14 pair: FSC 1, no crossing; exact ties")
    out.add("crossing_f32", crossing_f32,
        "float32 20x24x28 balls vs blurred (sigma 2) + noise (sd 0.08): crosses; exact ties")
    out.add("no_crossing_f64", no_crossing_f64,
        "float64 12x16x20 balls + strong noise vs + 1e-3 noise: no crossing; exact ties")
    out.add("mixed_u8_f32", mixed_u8_f32, "uint8 original vs float32 decoded, 6x8x10; exact ties")
    out.add("tiny_f64", tiny_f64, "float64 2x5x7: the shortest axis allowed, shells 0 and 1")
    out.add("constant_f32", constant_f32,
        "constant 0.25 vs 0.3, 8^3: power only at DC (FFTs of constants are exactly 0 elsewhere)")
    out.add("constant_vs_noisy_f64", constant_vs_noisy_f64,
        "constant 1.0 vs + noise, 4x8x8: Px = 0 beyond DC, FSC 0 there")
    return out


def shells(shape):
    """Shell of every sample of a volume (fftfreq layout), and the number of samples whose float
    shell was replaced by the exact one (near-ties)."""
    n0, n1, n2 = shape
    m0 = min(shape)
    fz, fy, fx = (np.fft.fftfreq(n) for n in shape)
    scaled = np.sqrt(fz[:, None, None] ** 2 + fy[None, :, None] ** 2 + fx[None, None, :] ** 2) / (1.0 / m0)
    shell = np.floor(scaled + 0.5).astype(np.int64)
    near = np.abs((scaled + 0.5) - np.round(scaled + 0.5)) < 1e-9
    k = [np.minimum(np.arange(n), n - np.arange(n)) for n in shape]
    for a, b, c in zip(*np.nonzero(near)):
        # Exact (Python integers): shell i is reached when
        # (2 i - 1)^2 n0^2 n1^2 n2^2 <= 4 m0^2 (k0^2 n1^2 n2^2 + k1^2 n0^2 n2^2 + k2^2 n0^2 n1^2).
        k0, k1, k2 = int(k[0][a]), int(k[1][b]), int(k[2][c])
        four_q = 4 * m0**2 * (k0**2 * n1**2 * n2**2 + k1**2 * n0**2 * n2**2 + k2**2 * n0**2 * n1**2)
        i = int(np.round(scaled[a, b, c] + 0.5))  # the shell on the outer side of the tie
        shell[a, b, c] = i if (2 * i - 1) ** 2 * n0**2 * n1**2 * n2**2 <= four_q else i - 1
    return shell, int(near.sum())


def fsc_peer(original, decoded):
    x = np.asarray(original, dtype=np.float64)
    y = np.asarray(decoded, dtype=np.float64)
    X, Y = np.fft.fftn(x), np.fft.fftn(y)
    shell, ties = shells(x.shape)
    m0 = min(x.shape)
    m = m0 // 2
    keep = shell <= m
    index = shell[keep]

    def per_shell(values):
        return np.bincount(index, weights=values[keep], minlength=m + 1)

    sums = {
        "samples": np.bincount(index, minlength=m + 1),
        "cross": per_shell((X * np.conj(Y)).real),
        "px": per_shell(np.abs(X) ** 2),
        "py": per_shell(np.abs(Y) ** 2),
    }
    flat = bool(np.all(x == x.flat[0]) and np.all(y == y.flat[0]))
    fsc, half_bit, resolution, crossed = frc_curve(sums, m0, flat)
    return {
        "exact_ties": ties,
        "samples": [int(v) for v in sums["samples"]],
        "frequency": [fmt(2 * i / m0) for i in range(len(fsc))],
        "fsc": [fmt(v) for v in fsc],
        "half_bit": [fmt(v) for v in half_bit],
        "resolution": fmt(resolution),
        "crossed": crossed,
    }


def fsc_provenance():
    return peer_provenance(
        "spectral_fixtures.py",
        versions={"numpy": np.__version__, "scipy": scipy.__version__},
        calls={
            "transform": "X = np.fft.fftn(original.astype(float64)), Y likewise, whole volume",
            "shells": "floor(sqrt(fftfreq(n0)[:, None, None]**2 + fftfreq(n1)[None, :, None]**2 + "
                      "fftfreq(n2)[None, None, :]**2) / (1 / min(n0, n1, n2)) + 0.5), exact integer test "
                      "within 1e-9 of a tie; shells > min(n0, n1, n2) // 2 dropped",
            "sums": "np.bincount(shell, weights=...) of Re(X conj Y), |X|^2, |Y|^2",
            "fsc": "C / sqrt(Px Py); 1 where Px = Py = 0, 0 where only one is 0",
            "half_bit": "(0.2071 + 1.9102 / sqrt(n)) / (1.2071 + 0.9102 / sqrt(n)), n = samples in the shell",
            "resolution": "first shell i >= 1 with FSC < T; 2 (i - 1 + t) / min(n0, n1, n2), "
                          "t = g[i-1] / (g[i-1] - g[i]) with g = FSC - T (t = 0 if g[i-1] <= 0); 1.0 without; "
                          "both volumes constant: 1.0 if C = Px = Py in every shell, else 0.0 (crossed)",
        },
    )


def generate_fsc(out):
    """Writes the FSC cases and out/expected.json (the recorded date kept from the committed
    tests/fixtures/spectral/fsc/expected.json when nothing else changed)."""
    previous = None
    if (FSC_FIXTURES / "expected.json").is_file():
        previous = json.loads((FSC_FIXTURES / "expected.json").read_text())
    entries = pair_entries(Writer(out, FSC_FIXTURES, ROOT), fsc_cases, fsc_peer)
    write_expected(out, {"provenance": fsc_provenance(), "cases": entries}, previous)


if __name__ == "__main__":
    main(__doc__, FIXTURES, ROOT, generate)
