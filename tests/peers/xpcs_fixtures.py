#!/usr/bin/env python3
"""XPCS peer fixtures for tests/xpcs.rs: the multi-tau intensity autocorrelation g2(q, tau)
with symmetric normalisation in rings, computed with NumPy, and the fit of
g2 = baseline + beta exp(-2 (tau / tau_c)^alpha) per ring with scipy.optimize.curve_fit.

Reads reference-data/xpcs-speckle.h5::/frames (made by `photonqa gen xpcs`, never copied) and
writes tests/fixtures/xpcs/expected.json (and the mask of the masked case, mask.npy).
Deterministic: the provenance date is kept when nothing else changed.

    python3 tests/peers/xpcs_fixtures.py            # (re)write the fixtures
    python3 tests/peers/xpcs_fixtures.py --check    # regenerate in a temp dir, compare, exit 1 on drift

Needs: numpy, scipy, h5py.

Definitions (those of src/analysis/xpcs.rs, written here independently): rings of equal width
w = (r_max - r_min) / n over r_min <= r < r_max, r = sqrt((x - beam_x)^2 + (y - beam_y)^2),
ring min(floor((r - r_min) / w), n - 1); defaults beam (X / 2, Y / 2), r_min = 1, r_max = the
distance to the nearest edge, 4 rings, per_level m = 8, levels = the most with
T >= 2 m 2^(levels - 1). Multi-tau: level 0 lags 1..m, level l >= 1 lags m/2+1..m of the
series averaged pairwise l times (an odd last frame dropped), tau = k 2^l. Per pixel with
N = T_l - k: G2 = mean(I[:N] I[k:]), past = mean(I[:N]), future = mean(I[k:]),
g2_p = G2 / (past future) where both are positive; ring g2 = mean of g2_p, sigma = std(ddof=1)
/ sqrt(n).

Fits: curve_fit(model, tau, g2, sigma=sigma, absolute_sigma=True, method="trf", bounds tau_c,
alpha >= 0, analytic jac, ftol = xtol = gtol = 1e-15), p0 = [1, g2[0] - 1, sqrt(tau[0] tau[-1]),
1] (its own start, not photonqa's); alpha fitted, and fixed to 1 ("fit_alpha1").

Two-time (Sutton et al. 2003): per ring C = (X X^T / n) / outer(m, m) with X the ring's (T, n)
counts and m = X.mean(axis=1); the largest and the rms |C_decoded - C_original| over every
ring's pairs t1 < t2.

Cases: the original against itself ("lossless"), against counts rounded to multiples of 4
(4 floor((x + 2) / 4): "quantised4"), and the quantised pair with the pixels x < 8 masked
("masked", mask.npy).
"""

import platform
from pathlib import Path

import h5py
import numpy as np
import scipy
from scipy.optimize import curve_fit

from fixture_kit import Writer, fmt, main, warnings_as_errors, write_expected  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "xpcs"
SOURCE = "reference-data/xpcs-speckle.h5"
PER_LEVEL = 8
RINGS = 4
R_MIN = 1.0


def lags(levels, m):
    return [(l, k) for l in range(levels) for k in (range(1, m + 1) if l == 0 else range(m // 2 + 1, m + 1))]


def pixel_g2(series, levels, m):
    """g2_p at every lag of every pixel of `series` (T, P): an array (lags, P), NaN where
    skipped."""
    s = series.astype(np.float64)
    out = []
    for level, k in lags(levels, m):
        if level > 0 and k == m // 2 + 1:
            half = s.shape[0] // 2
            s = (s[0:2 * half:2] + s[1:2 * half:2]) / 2.0
        n = s.shape[0] - k
        a, b = s[:n], s[k:]
        g = (a * b).sum(axis=0) / n
        past = a.sum(axis=0) / n
        future = b.sum(axis=0) / n
        ok = (past > 0) & (future > 0)
        out.append(np.where(ok, g / np.where(ok, past * future, 1.0), np.nan))
    return np.array(out)


def model(t, baseline, beta, tau_c, alpha):
    return baseline + beta * np.exp(-2.0 * (t / tau_c) ** alpha)


def jac(t, baseline, beta, tau_c, alpha):
    u = (t / tau_c) ** alpha
    e = np.exp(-2.0 * u)
    return np.stack([np.ones_like(t), e, 2.0 * beta * e * alpha * u / tau_c,
                     -2.0 * beta * e * u * np.log(t / tau_c)], axis=1)


def fit(tau, g2, sigma, alpha):
    tight = dict(method="trf", ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=100000)
    p0 = [1.0, g2[0] - 1.0, float(np.sqrt(tau[0] * tau[-1])), 1.0]
    if alpha is None:
        p, cov = curve_fit(model, tau, g2, p0=p0, sigma=sigma, absolute_sigma=True, jac=jac,
                           bounds=([-np.inf, -np.inf, 0, 0], np.inf), **tight)
        errors = np.sqrt(np.diag(cov))
    else:
        p, cov = curve_fit(lambda t, b, beta, tc: model(t, b, beta, tc, alpha), tau, g2, p0=p0[:3],
                           sigma=sigma, absolute_sigma=True,
                           jac=lambda t, b, beta, tc: jac(t, b, beta, tc, alpha)[:, :3],
                           bounds=([-np.inf, -np.inf, 0], np.inf), **tight)
        p, errors = np.append(p, alpha), np.append(np.sqrt(np.diag(cov)), 0.0)
    chi2 = float((((g2 - model(tau, *p)) / sigma) ** 2).sum())
    return {"params": [fmt(v) for v in p], "sigma": [fmt(v) for v in errors],
            "chi2": fmt(chi2)}


def side(frames, rings, levels, tau):
    """g2, sigma and both fits of one array, ring by ring."""
    flat = frames.reshape(frames.shape[0], -1)
    out = {"g2": [], "g2_sigma": [], "fit": [], "fit_alpha1": []}
    for members in rings:
        per_pixel = pixel_g2(flat[:, members], levels, PER_LEVEL)
        count = np.sum(~np.isnan(per_pixel), axis=1)
        g2 = np.nanmean(per_pixel, axis=1)
        sigma = np.nanstd(per_pixel, axis=1, ddof=1) / np.sqrt(count)
        out["g2"].append([fmt(v) for v in g2])
        out["g2_sigma"].append([fmt(v) for v in sigma])
        out["fit"].append(fit(tau, g2, sigma, None))
        out["fit_alpha1"].append(fit(tau, g2, sigma, 1.0))
    return out


def two_time(original, decoded, rings):
    """Largest and rms |C_decoded - C_original| over rings and frame pairs t1 < t2, with
    C = (X X^T / n) / outer(m, m), X the ring's (T, n) counts, m its per-frame means."""
    diffs = []
    for members in rings:
        maps = []
        for frames in (original, decoded):
            x = frames.reshape(frames.shape[0], -1)[:, members].astype(np.float64)
            m = x.mean(axis=1)
            maps.append((x @ x.T / x.shape[1]) / np.outer(m, m))
        upper = np.triu_indices(original.shape[0], k=1)
        diffs.append((maps[1] - maps[0])[upper])
    d = np.concatenate(diffs)
    return {"max_abs_error": fmt(np.abs(d).max()), "rms_error": fmt(np.sqrt(np.mean(d * d)))}


def rings_of(shape, mask):
    _, ny, nx = shape
    beam_x, beam_y = nx / 2, ny / 2
    r_max = min(beam_x, nx - 1 - beam_x, beam_y, ny - 1 - beam_y)
    width = (r_max - R_MIN) / RINGS
    y, x = np.mgrid[0:ny, 0:nx]
    dx, dy = x.ravel() - beam_x, y.ravel() - beam_y
    r = np.sqrt(dx * dx + dy * dy)
    index = np.minimum(np.floor((r - R_MIN) / width), RINGS - 1)
    inside = (r >= R_MIN) & (r < r_max) & (mask.ravel() == 0)
    return [np.nonzero(inside & (index == i))[0] for i in range(RINGS)]


def generate(out, previous):
    writer = Writer(out, FIXTURES, ROOT)
    with h5py.File(ROOT / SOURCE, "r") as f:
        original = f["frames"][...]
        generator = f["frames"].attrs["photonqa"]
    frames = original.shape[0]
    levels = max(l for l in range(1, 31) if frames >= 2 * PER_LEVEL * 2 ** (l - 1))
    tau = np.array([k * 2 ** l for l, k in lags(levels, PER_LEVEL)], dtype=np.float64)
    quantised = 4 * ((original.astype(np.int64) + 2) // 4)
    no_mask = np.zeros(original.shape[1:], dtype=np.uint8)
    mask = no_mask.copy()
    mask[:, :8] = 1
    cases = [
        ("lossless", original, no_mask, None),
        ("quantised4", quantised, no_mask, None),
        ("masked", quantised, mask, writer.npy("mask.npy", mask)),
    ]
    entries = []
    with warnings_as_errors():
        for name, decoded, m, mask_path in cases:
            rings = rings_of(original.shape, m)
            entries.append({
                "name": name,
                "mask": mask_path,
                "ring_pixels": [len(r) for r in rings],
                "original": side(original, rings, levels, tau),
                "decoded": side(decoded, rings, levels, tau),
                "two_time": two_time(original, decoded, rings),
            })
    expected = {
        "provenance": {
            "script": "tests/peers/xpcs_fixtures.py",
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "h5py": h5py.__version__,
            "source": SOURCE + "::/frames",
            "generator": generator if isinstance(generator, str) else generator.decode(),
        },
        "levels": levels,
        "per_level": PER_LEVEL,
        "tau": [fmt(t) for t in tau],
        "cases": entries,
    }
    write_expected(out, expected, previous)


if __name__ == "__main__":
    main(__doc__, FIXTURES, ROOT, generate)
