#!/usr/bin/env python3
"""Serial-crystallography and counting peer fixtures for tests/sx.rs: the peakfinder8-like peak
finder of src/analysis/sx.rs and the Poisson-sigma error of src/analysis/counting.rs, written
independently with NumPy and SciPy, on the committed reference frames
(reference-data/sx-frames.h5, made by `photonqa gen sx`) and on lossy versions of them.

Writes tests/fixtures/sx/expected.json (and the counting mask tests/fixtures/sx/mask.npy).
Deterministic; the provenance date is kept when nothing else changed.

    python3 tests/peers/sx_fixtures.py            # (re)write the fixtures
    python3 tests/peers/sx_fixtures.py --check    # regenerate in a temp dir, compare, exit 1 on drift

Needs: numpy, scipy, h5py.

Lossy versions (the Rust test makes the same arrays from the frames):
- "lossless": the frames themselves;
- "threshold3": counts <= 3 set to 0 (the `threshold` stage, zero-below, value 3);
- "bin4": floor(x / 4) * 4 + 1.5 in float64 (4-photon bins, decoded to their centre).

Peak finder (same rule as src/analysis/sx.rs): radial bins k = floor(sqrt(dy^2 + dx^2)) around
the beam centre; `iterations` passes of per-bin n, sum, sum of squares over the active pixels
(numpy.bincount with weights, which sums in index order as photonqa does), mu = S / n,
sigma = sqrt(max(Q / n - mu^2, 0)), active = I - mu <= snr * sigma; peak pixels
I - mu > snr * sigma and I > adc; scipy.ndimage.label with the 3x3 structure (8-connected);
sizes by bincount, kept within [min_pixels, max_pixels]; weights w = I - mu;
ndimage.sum_labels(w) and ndimage.center_of_mass(w). Matching: greedy by distance within
match_radius (ties by original then decoded index), in plain Python.

Counting: e = |d - o| / sqrt(max(o, 1)) over pixels neither masked nor saturated (o >=
saturation); numpy mean, max, numpy.percentile(e, 99, method='inverted_cdf'), count(e > 1) / n;
changed zeros, integer counts broken, saturated and masked pixels changed by count_nonzero.
"""

import platform
from pathlib import Path

import h5py
import numpy as np
import scipy
from scipy import ndimage

from fixture_kit import fmt, main, rng_for, write_expected  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "sx"
SOURCE = "reference-data/sx-frames.h5"

FINDER = {"snr_threshold": 6.0, "adc_threshold": 0.0, "min_pixels": 2, "max_pixels": 200,
          "clip_snr": 3.0, "iterations": 10, "match_radius": 2.0, "hit_threshold": 5}
# Distance within which a found peak matches a true spot of the generator.
TRUTH_RADIUS = 1.0


def variants(frames):
    x = frames.astype(np.float64)
    yield "lossless", x
    yield "threshold3", np.where(x <= 3, 0.0, x)
    yield "bin4", np.floor(x / 4) * 4 + 1.5


def find_peaks(frame, p):
    ny, nx = frame.shape
    cy, cx = (ny - 1) / 2, (nx - 1) / 2
    yy, xx = np.meshgrid(np.arange(ny, dtype=np.float64) - cy, np.arange(nx, dtype=np.float64) - cx,
                         indexing="ij")
    bins = np.floor(np.sqrt(yy * yy + xx * xx)).astype(np.int64).ravel()
    v = frame.ravel()
    nb = bins.max() + 1
    active = np.ones(v.size, bool)
    mu, sigma = np.zeros(nb), np.zeros(nb)
    for _ in range(p["iterations"]):
        n = np.bincount(bins[active], minlength=nb).astype(np.float64)
        s = np.bincount(bins[active], weights=v[active], minlength=nb)
        q = np.bincount(bins[active], weights=v[active] * v[active], minlength=nb)
        ok = n > 0
        mu[ok] = s[ok] / n[ok]
        sigma[ok] = np.sqrt(np.maximum(q[ok] / n[ok] - mu[ok] * mu[ok], 0.0))
        active = v - mu[bins] <= p["clip_snr"] * sigma[bins]
    w = v - mu[bins]
    is_peak = (w > p["snr_threshold"] * sigma[bins]) & (v > p["adc_threshold"])
    labels, count = ndimage.label(is_peak.reshape(ny, nx), structure=np.ones((3, 3), int))
    if count == 0:
        return []
    sizes = np.bincount(labels.ravel())
    first = np.unique(labels.ravel(), return_index=True)[1]  # first raster index per label
    keep = [lab for lab in range(1, count + 1) if p["min_pixels"] <= sizes[lab] <= p["max_pixels"]]
    keep.sort(key=lambda lab: first[lab])
    w2 = w.reshape(ny, nx)
    intensity = ndimage.sum_labels(w2, labels, keep)
    centres = ndimage.center_of_mass(w2, labels, keep)
    return [(float(c[0]), float(c[1]), float(i), int(sizes[lab]))
            for lab, c, i in zip(keep, centres, intensity)]


def match(a, b, radius):
    pairs = sorted((float(np.hypot(p[0] - q[0], p[1] - q[1])), i, j)
                   for i, p in enumerate(a) for j, q in enumerate(b)
                   if np.hypot(p[0] - q[0], p[1] - q[1]) <= radius)
    used_a, used_b, taken = set(), set(), []
    for _, i, j in pairs:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            taken.append((i, j))
    return taken


def sx_summary(orig, dec, p):
    n_o = sum(map(len, orig))
    n_d = sum(map(len, dec))
    errors = []
    for a, b in zip(orig, dec):
        for i, j in match(a, b, p["match_radius"]):
            errors.append(abs(b[j][2] - a[i][2]) / a[i][2])
    frames = len(orig)
    hits_o = sum(len(a) >= p["hit_threshold"] for a in orig) / frames
    hits_d = sum(len(b) >= p["hit_threshold"] for b in dec) / frames
    return {
        "recall": fmt(len(errors) / n_o if n_o else 1.0),
        "precision": fmt(len(errors) / n_d if n_d else 1.0),
        "intensity_rel_error_mean": fmt(np.mean(errors) if errors else 0.0),
        "intensity_rel_error_max": fmt(max(errors) if errors else 0.0),
        "hit_rate_change": fmt(hits_d - hits_o),
        "peaks_original": n_o,
        "peaks_decoded": n_d,
        "matched": len(errors),
    }


def peak_list(per_frame):
    return [[f, fmt(y), fmt(x), fmt(i), n] for f, peaks in enumerate(per_frame) for y, x, i, n in peaks]


def counting(o, d, saturation=None, mask=None):
    counted = np.ones(o.shape, bool)
    masked = np.zeros(o.shape, bool)
    if mask is not None:
        masked = np.broadcast_to(mask != 0, o.shape)
        counted &= ~masked
    saturated = np.zeros(o.shape, bool) if saturation is None else (o >= saturation) & ~masked
    counted &= ~saturated
    e = np.abs(d - o)[counted] / np.sqrt(np.maximum(o[counted], 1.0))
    return {
        "sigma_error_mean": fmt(e.mean()),
        "sigma_error_p99": fmt(np.percentile(e, 99, method="inverted_cdf")),
        "sigma_error_max": fmt(e.max()),
        "fraction_above_1sigma": fmt(np.count_nonzero(e > 1) / e.size),
        "changed_zeros": int(np.count_nonzero((o == 0) & (d != 0))),
        "integer_counts_broken": int(np.count_nonzero((o == np.floor(o)) & (d != np.floor(d)))),
        "saturated_changed": int(np.count_nonzero(saturated & (d != o))),
        "masked_changed": int(np.count_nonzero(masked & (d != o))),
        "counted_pixels": int(e.size),
    }


def generate(out, previous):
    out = Path(out)
    with h5py.File(ROOT / SOURCE, "r") as f:
        frames = f["frames"][...]
        truth = f["peaks"][...]
    mask = (rng_for("sx-mask").random(frames.shape[1:]) < 0.02).astype(np.uint8)
    mask[:, 60:62] = 1  # a gap between two modules
    np.save(out / "mask.npy", mask, allow_pickle=False)
    original = [find_peaks(fr, FINDER) for fr in frames.astype(np.float64)]
    truth_frames = [[(t[1], t[2]) for t in truth if int(t[0]) == f] for f in range(len(frames))]
    found = sum(len(match(t, o, TRUTH_RADIUS)) for t, o in zip(truth_frames, original))
    cases, counts = [], []
    for name, decoded in variants(frames):
        dec = [find_peaks(fr, FINDER) for fr in decoded]
        cases.append({"name": name, "peak_list_decoded": peak_list(dec), **sx_summary(original, dec, FINDER)})
        o = frames.astype(np.float64)
        counts.append({"name": name, "saturation": None, "mask": None, **counting(o, decoded)})
        counts.append({"name": name, "saturation": 1000.0, "mask": "tests/fixtures/sx/mask.npy",
                       **counting(o, decoded, 1000.0, mask)})
    expected = {
        "provenance": {
            "script": "tests/peers/sx_fixtures.py",
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "calls": "bincount radial sums; ndimage.label(structure=ones((3, 3))); ndimage.sum_labels, "
                     "center_of_mass on I - mu; numpy.percentile(e, 99, method='inverted_cdf')",
        },
        "source": SOURCE + "::/frames",
        "finder": FINDER,
        "truth_radius": TRUTH_RADIUS,
        "truth_spots": int(len(truth)),
        "truth_found": found,
        "peak_list_original": peak_list(original),
        "cases": cases,
        "counting": counts,
    }
    write_expected(out, expected, previous)


if __name__ == "__main__":
    main(__doc__, FIXTURES, ROOT, generate)
