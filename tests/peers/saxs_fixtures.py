#!/usr/bin/env python3
"""SAXS peer fixtures for tests/saxs.rs: azimuthal integration I(q), Guinier fit, Porod invariant
and the original-vs-decoded comparison, computed with NumPy independently of photonqa.

Writes tests/fixtures/saxs/expected.json only (no arrays: the inputs are
reference-data/BAM_2D.h5 and reference-data/saxs-spheres.h5).
Without reference-data/BAM_2D.h5 the BAM cases keep their previous values.

    python3 tests/peers/saxs_fixtures.py            # (re)write the fixtures
    python3 tests/peers/saxs_fixtures.py --check    # regenerate in a temp dir, compare, exit 1 on drift

Needs: numpy (>= 2.0 for np.trapezoid), h5py, numcodecs (BitRound for the lossy BAM case).

The rules, as src/analysis/saxs.rs documents them:
- |q| per pixel: the norm of NXcanSAS Q (3, Y, X), or from the geometry
  q = 4 pi sin(atan(r / distance) / 2) / wavelength * 1e-9 (1/nm), r = pixel_size * distance
  of the pixel centre (integer coordinates) from the beam centre;
- pixels used: mask == 0 and edges[0] <= q <= edges[-1]; bin = searchsorted(edges, q, 'right') - 1,
  q == edges[-1] in the last bin; edges lo + (hi - lo) * i / n (lin) or lo * (hi / lo) ** (i / n)
  (log), lo/hi the min/max q of the unmasked pixels (positive ones for log);
- per bin (np.bincount): n pixels, q = mean q, I = sum I / n, sigma^2 = sum sigma_p^2 / n^2 with
  sigma_p^2 = Idev^2 or max(I, 1) of the original;
- rel_error over non-empty bins with I_o != 0; chi2_reduced = mean over bins with sigma > 0 of
  (I_d - I_o)^2 / sigma^2;
- Guinier: bins with I > 0, from the lowest q up to a limit starting at the q of the original's
  tenth such bin, then 1.3 / Rg, until the number of points repeats (at most 50 fits);
  np.polyfit(q**2, log(I), 1); Rg = sqrt(-3 slope), I0 = exp(intercept);
- Porod: np.trapezoid(q**2 * I, q) over the non-empty bins.
"""

import math
import platform
from pathlib import Path

import h5py
import numcodecs
import numpy as np

from fixture_kit import fmt, main, write_expected  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "saxs"
BAM = ROOT / "reference-data" / "BAM_2D.h5"
SPHERES = ROOT / "reference-data" / "saxs-spheres.h5"


def edges_of(q, used, n, log):
    qs = q[used]
    lo = qs[qs > 0].min() if log else qs.min()
    hi = qs.max()
    i = np.arange(n + 1, dtype=np.float64)
    return lo * (hi / lo) ** (i / n) if log else lo + (hi - lo) * i / n


def integrate(q, used, edges, original, decoded, variance):
    n = len(edges) - 1
    inside = used & (q >= edges[0]) & (q <= edges[-1])
    idx = np.searchsorted(edges, q[inside], side="right") - 1
    idx[idx == n] = n - 1
    pixels = np.bincount(idx, minlength=n)
    total = lambda w: np.bincount(idx, weights=w[inside], minlength=n)  # noqa: E731
    nonempty = pixels > 0
    safe = np.where(nonempty, pixels, 1).astype(np.float64)
    return {
        "pixels": pixels,
        "nonempty": nonempty,
        "q": total(q) / safe,
        "i_o": total(original) / safe,
        "i_d": total(decoded) / safe,
        "var": total(variance) / (safe * safe),
    }


def guinier(q, i, start):
    limit, last = start, None
    for _ in range(50):
        n = int(np.searchsorted(q, limit, side="right"))
        if last is not None and last["points"] == n:
            return {**last, "converged": True}
        if n < 3:
            return None
        slope, intercept = np.polyfit(q[:n] ** 2, np.log(i[:n]), 1)
        if not slope < 0:
            return None
        rg = math.sqrt(-3.0 * slope)
        last = {"rg": rg, "i0": math.exp(intercept), "points": n, "converged": False}
        limit = 1.3 / rg
    return last


def rel_change(a, b):
    return 0.0 if a == b else abs(b - a) / abs(a)


def compare(b):
    ne = b["nonempty"]
    q, i_o, i_d, var = b["q"][ne], b["i_o"][ne], b["i_d"][ne], b["var"][ne]
    nz = i_o != 0
    rel = np.abs(i_d[nz] - i_o[nz]) / np.abs(i_o[nz])
    pos = var > 0
    chi2 = float(np.mean((i_d[pos] - i_o[pos]) ** 2 / var[pos]))
    po, pd = i_o > 0, i_d > 0
    qo = q[po]
    start = qo[min(10, len(qo)) - 1]
    fits = {"original": guinier(qo, i_o[po], start), "decoded": guinier(q[pd], i_d[pd], start)}
    porod = {k: float(np.trapezoid(q**2 * v, q)) for k, v in (("original", i_o), ("decoded", i_d))}
    out = {
        "bins": len(b["pixels"]),
        "empty_bins": int((~ne).sum()),
        "pixels": [int(c) for c in b["pixels"]],
        "q": [fmt(v) for v in q],
        "i_original": [fmt(v) for v in i_o],
        "i_decoded": [fmt(v) for v in i_d],
        "sigma_original": [fmt(math.sqrt(v)) for v in var],
        "rel_error_max": fmt(rel.max() if rel.size else 0.0),
        "rel_error_mean": fmt(rel.mean() if rel.size else 0.0),
        "chi2_reduced": fmt(chi2),
        "guinier_q_start": fmt(start),
        "porod_invariant_original": fmt(porod["original"]),
        "porod_invariant_decoded": fmt(porod["decoded"]),
        "porod_rel_change": fmt(rel_change(porod["original"], porod["decoded"])),
    }
    for role, fit in fits.items():
        out[f"guinier_points_{role}"] = fit["points"] if fit else 0
        out[f"rg_{role}"] = fmt(fit["rg"]) if fit else None
        out[f"i0_{role}"] = fmt(fit["i0"]) if fit else None
    return out


def bam_cases():
    with h5py.File(BAM, "r") as f:
        d = f["sasentry01/data"]
        intensity = d["I"][()]
        idev = d["Idev"][()]
        mask = d["Imask"][()].astype(bool)
        q = np.sqrt((d["Q"][()] ** 2).sum(axis=0))
    used = ~mask
    bitround = numcodecs.BitRound(keepbits=8)
    rounded = bitround.encode(intensity).view(np.float64).reshape(intensity.shape)
    cases = []
    for name, decoded, variance, n, log, note in (
        ("bam_lossless_idev", intensity, idev**2, 100, False, "lossless pipeline, Idev, 100 lin bins"),
        ("bam_bitround8_idev", rounded, idev**2, 100, False, "numcodecs BitRound(keepbits=8), Idev, 100 lin bins"),
        ("bam_bitround8_poisson_log", rounded, np.maximum(intensity, 1.0), 60, True,
         "BitRound(keepbits=8), Poisson max(I, 1), 60 log bins"),
    ):
        edges = edges_of(q, used, n, log)
        b = integrate(q, used, edges, intensity, decoded, variance)
        cases.append({"name": name, "note": note, "q_bins": n, "q_scale": "log" if log else "lin",
                      "decoded": "bitround8" if decoded is rounded else "lossless",
                      "uncertainty": "poisson" if log else "idev",
                      "edges": [fmt(e) for e in edges], **compare(b)})
    return cases


def sphere_q(shape, g):
    y, x = np.meshgrid(np.arange(shape[0], dtype=np.float64), np.arange(shape[1], dtype=np.float64),
                       indexing="ij")
    dx, dy = x - g["beam_x"], y - g["beam_y"]
    r = g["pixel_size"] * np.sqrt(dx * dx + dy * dy)
    theta = 0.5 * np.arctan(r / g["distance"])
    return 4.0 * np.pi * np.sin(theta) / g["wavelength"] * 1e-9


def anscombe(x, step):
    """The poisson stage's round trip (src/pipeline/stages/poisson.rs), float32 output."""
    code = np.rint(2.0 * np.sqrt(x + 0.375) / step)
    a = code * step
    return np.maximum(0.25 * a * a - 0.375, 0.0).astype(np.float32).astype(np.float64)


def sphere_cases():
    with h5py.File(SPHERES, "r") as f:
        counts = f["data"][()].astype(np.float64)
        mask = f["mask"][()] != 0
        g = {k: float(f["data"].attrs[k]) for k in ("beam_x", "beam_y", "pixel_size", "distance", "wavelength")}
        rg_true = float(f["data"].attrs["rg_nm"])
    q = sphere_q(counts.shape, g)
    used = ~mask
    cases = []
    for name, step in (("spheres_lossless", None), ("spheres_poisson1", 1.0)):
        decoded = counts if step is None else anscombe(counts, step)
        edges = edges_of(q, used, 100, False)
        b = integrate(q, used, edges, counts, decoded, np.maximum(counts, 1.0))
        cases.append({"name": name, "note": "generated spheres, geometry, Poisson, 100 lin bins"
                      + ("" if step is None else f", poisson step {step}"),
                      "poisson_step": step, "geometry": {k: fmt(v) for k, v in g.items()},
                      "rg_true": fmt(rg_true), "edges": [fmt(e) for e in edges], **compare(b)})
    return cases


def generate(out, previous):
    if BAM.is_file():
        bam = bam_cases()
    elif previous is not None:
        print(f"{BAM} not found: keeping the previous BAM cases")
        bam = [c for c in previous["cases"] if c["name"].startswith("bam_")]
    else:
        raise SystemExit(f"{BAM} not found and no previous fixtures")
    expected = {
        "provenance": {
            "script": "tests/peers/saxs_fixtures.py",
            "python": platform.python_version(),
            "numpy": np.__version__,
            "h5py": h5py.__version__,
            "numcodecs": numcodecs.__version__,
            "inputs": ["reference-data/BAM_2D.h5 (/sasentry01/data/I, Idev, Imask, Q)",
                       "reference-data/saxs-spheres.h5 (/data, /mask, geometry attributes)"],
            "peer": "np.searchsorted + np.bincount integration, np.polyfit Guinier, np.trapezoid Porod",
        },
        "cases": bam + sphere_cases(),
    }
    Path(out).mkdir(parents=True, exist_ok=True)
    write_expected(out, expected, previous)


if __name__ == "__main__":
    main(__doc__, FIXTURES, ROOT, generate)
