#!/usr/bin/env python3
"""Segmentation peer fixtures for tests/segmentation_crosscheck.rs: Otsu and multi-level Otsu
thresholds, class maps and their comparison, as scikit-image, SciPy and NumPy compute them.

Writes tests/fixtures/segmentation/ (one original.npy and decoded.npy per case) and
tests/fixtures/segmentation/expected.json (the peers' values and a provenance block).
Deterministic: every random input comes from a numpy Generator seeded from the case name, and
the provenance date is kept when nothing else changed, so running the script again reproduces
the same files.

    python3 tests/peers/segmentation_fixtures.py            # (re)write the fixtures
    python3 tests/peers/segmentation_fixtures.py --check    # regenerate in a temp dir, compare, exit 1 on drift

Needs: numpy, scipy, scikit-image (0.26 recorded).

For each case and each segmentation of it ("otsu", or "multiotsu" with a number of classes),
expected.json holds: the thresholds of the original and of the decoded array, each fitted on its
own data (skimage.filters.threshold_otsu(image) / threshold_multiotsu(image, classes)); the
classes x classes confusion counts of the class maps numpy.digitize(image, thresholds,
right=True); the boundary voxels of each map (skimage.segmentation.find_boundaries(labels,
connectivity=1, mode='thick')) and the boundary voxels of one map within Chebyshev distance 1
of the other's (scipy.ndimage.binary_dilation(boundary, generate_binary_structure(rank, rank)));
and the scores derived from these integers with the definitions of src/analysis/segmentation.rs.
Where the peer raises (fewer occupied bins than classes) the segmentation records its message.
Each case also lists threshold_multiotsu of the original for 2..4 classes (and 5 with few bins).

Floats in expected.json are strings holding Python's repr of the float64 value (shortest
round-trip text) so the Rust side parses them bit-exactly with str::parse::<f64>.
"""

import math
from pathlib import Path

import numpy as np
import scipy
import skimage
from scipy import ndimage
from skimage.filters import threshold_multiotsu, threshold_otsu
from skimage.segmentation import find_boundaries

from fixture_kit import SeededCases, Writer, fmt, main, pair_entries, peer_provenance, write_expected  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "segmentation"


def smooth_field(rng, shape, sigma=2.0):
    """A smooth random field scaled to [0, 1]."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return (f - f.min()) / (f.max() - f.min())


def three_phase(rng, shape):
    """Pores (0.1) and bright crystals (0.85) in a matrix (0.45): balls/disks, in [0, 1]."""
    grids = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    image = np.full(shape, 0.45)
    for value, count in ((0.1, 7), (0.85, 5)):
        for _ in range(count):
            centre = [rng.uniform(0, n) for n in shape]
            radius = rng.uniform(2, min(shape) / 4)
            dist2 = sum((g - c) ** 2 for g, c in zip(grids, centre))
            image = np.where(dist2 < radius**2, value, image)
    return image


def quantize(x, bits):
    lo, hi = float(x.min()), float(x.max())
    levels = 2**bits - 1
    return lo + np.round((x - lo) / (hi - lo) * levels) / levels * (hi - lo)


OTSU = {"method": "otsu"}


def multi(classes):
    return {"method": "multiotsu", "classes": classes}


def cases():
    """(name, original, decoded, segmentations, note) of every case."""
    out = SeededCases()

    def f32_3d(rng):
        shape = (14, 22, 20)
        x = (smooth_field(rng, shape, 1.5) + 0.05 * rng.standard_normal(shape)).astype(np.float32)
        return x, quantize(x.astype(np.float64), 3).astype(np.float32)

    def f32_vs_u8_3d(rng):
        shape = (12, 18, 21)
        x = (smooth_field(rng, shape, 1.2) + 0.04 * rng.standard_normal(shape)).astype(np.float32)
        lo, hi = float(x.min()), float(x.max())
        y = np.round((x.astype(np.float64) - lo) / (hi - lo) * 15).astype(np.uint8)
        return x, y

    def f64_2d_nonsquare(rng):
        x = smooth_field(rng, (45, 71))
        return x, x + 0.04 * rng.standard_normal(x.shape)

    def u8_2d(rng):
        x = np.round(255 * three_phase(rng, (50, 64)) + 8 * rng.standard_normal((50, 64)))
        x = np.clip(x, 0, 255).astype(np.uint8)
        y = np.clip(x.astype(np.float64) + np.round(10 * rng.standard_normal(x.shape)), 0, 255)
        return x, y.astype(np.uint8)

    def three_phase_f32_3d(rng):
        shape = (16, 26, 24)
        x = (three_phase(rng, shape) + 0.04 * rng.standard_normal(shape)).astype(np.float32)
        y = quantize(x.astype(np.float64), 3).astype(np.float32)
        return x, y

    def shifted_f32_2d(rng):
        x = (three_phase(rng, (60, 48)) + 0.03 * rng.standard_normal((60, 48)))
        x = np.clip(x, 0, None)
        return x.astype(np.float32), (x**1.6 + 0.02 * rng.standard_normal(x.shape)).astype(np.float32)

    def int16_2d(rng):
        x = np.round(-300 + 800 * three_phase(rng, (40, 44)) + 25 * rng.standard_normal((40, 44)))
        y = np.round(x / 16) * 16
        return x.astype(np.int16), y.astype(np.int16)

    def u8_few_values_2d(rng):
        x = np.round(60 * smooth_field(rng, (36, 40), 3.0)).astype(np.uint8)
        return x, ((x // 3) * 3).astype(np.uint8)

    def u8_four_values_2d(rng):
        x = rng.choice(np.array([10, 20, 40, 90], np.uint8), size=(20, 25), p=[0.4, 0.3, 0.2, 0.1])
        y = x.copy()
        y[rng.random(x.shape) < 0.1] = 20
        return x, y

    def identical_f32_3d(rng):
        shape = (10, 16, 15)
        x = (smooth_field(rng, shape) + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        return x, x.copy()

    def constant_f32_2d(rng):
        del rng
        return np.full((16, 20), 0.25, np.float32), np.full((16, 20), 0.25, np.float32)

    def constant_decoded_f32_2d(rng):
        x = smooth_field(rng, (24, 30)).astype(np.float32)
        return x, np.zeros_like(x)

    def f64_3d_single_line(rng):
        x = smooth_field(rng, (9, 1, 23), 1.0)
        return x, x + 0.05 * rng.standard_normal(x.shape)

    def f64_2d_column(rng):
        x = smooth_field(rng, (40, 1), 2.0)
        return x, x + 0.05 * rng.standard_normal(x.shape)

    out.add("f32_3d", f32_3d, [OTSU, multi(3)], "float32 14x22x20 smooth field + noise vs 3-bit quantised")
    out.add("f32_vs_u8_3d", f32_vs_u8_3d, [OTSU, multi(3)],
        "float32 12x18x21 vs its uint8 quantisation to 16 levels (thresholds in other units)")
    out.add("f64_2d_nonsquare", f64_2d_nonsquare, [OTSU, multi(3)], "float64 45x71 smooth field vs + noise")
    out.add("u8_2d", u8_2d, [OTSU, multi(3), multi(4)], "uint8 50x64 three phases + noise vs + rounded noise")
    out.add("three_phase_f32_3d", three_phase_f32_3d, [OTSU, multi(3), multi(4)],
        "float32 16x26x24 pores, matrix, crystals + noise vs 3-bit quantised")
    out.add("shifted_f32_2d", shifted_f32_2d, [OTSU, multi(3)],
        "float32 60x48 three phases vs x^1.6 + noise: the decoded thresholds move")
    out.add("int16_2d", int16_2d, [OTSU, multi(3)], "int16 40x44 with negatives vs rounded to multiples of 16")
    out.add("u8_few_values_2d", u8_few_values_2d, [OTSU, multi(3), multi(5)],
        "uint8 36x40 with values 0..60 (61 bins: five classes are cheap) vs multiples of 3")
    out.add("u8_four_values_2d", u8_four_values_2d, [OTSU, multi(3), multi(4), multi(5)],
        "uint8 20x25 with four values: 4 classes take the occupied bins, 5 is an error")
    out.add("identical_f32_3d", identical_f32_3d, [OTSU, multi(3)], "identical pair")
    out.add("constant_f32_2d", constant_f32_2d, [OTSU, multi(3)],
        "constant pair: Otsu threshold = value, one class present; multi-Otsu is an error")
    out.add("constant_decoded_f32_2d", constant_decoded_f32_2d, [OTSU],
        "smooth field vs all zeros: boundaries on the original's side only")
    out.add("f64_3d_single_line", f64_3d_single_line, [OTSU, multi(3)], "float64 9x1x23: one line per row")
    out.add("f64_2d_column", f64_2d_column, [OTSU, multi(3)], "float64 40x1: one voxel per row")
    return out


def thresholds(image, segmentation):
    if segmentation["method"] == "otsu":
        return np.atleast_1d(threshold_otsu(image))
    return threshold_multiotsu(image, segmentation["classes"])


def boundary_and_near(labels):
    rank = labels.ndim
    boundary = find_boundaries(labels, connectivity=1, mode="thick")
    # The definition photonqa documents: a face neighbour inside the array of another class.
    mine = np.zeros_like(boundary)
    for axis in range(rank):
        n = labels.shape[axis]
        if n < 2:
            continue
        lo = [slice(None)] * rank
        hi = [slice(None)] * rank
        lo[axis], hi[axis] = slice(0, n - 1), slice(1, n)
        differ = labels[tuple(lo)] != labels[tuple(hi)]
        mine[tuple(lo)] |= differ
        mine[tuple(hi)] |= differ
    assert np.array_equal(boundary, mine), "find_boundaries disagrees with the documented definition"
    near = ndimage.binary_dilation(boundary, structure=ndimage.generate_binary_structure(rank, rank))
    return boundary, near


def scores(k, confusion, boundary, matched):
    """The scores of src/analysis/segmentation.rs from the integers (Python ints: int / int is
    correctly rounded, as the float64 division of the exactly converted integers in Rust)."""
    total = int(confusion.sum())
    a = [int(v) for v in confusion.sum(axis=1)]
    b = [int(v) for v in confusion.sum(axis=0)]
    diag = [int(confusion[c, c]) for c in range(k)]

    def dice(both, x, y):
        return 1.0 if x + y == 0 else (2 * both) / (x + y)

    def iou(both, x, y):
        return 1.0 if x + y == 0 else both / (x + y - both)

    fo = [c / total for c in a]
    fd = [c / total for c in b]
    fg_both = int(confusion[1:, 1:].sum())
    fg_a, fg_b = total - a[0], total - b[0]
    bo, bd = boundary
    mo, md = matched
    if bo == 0 and bd == 0:
        p = r = f1 = 1.0
    elif bo == 0 or bd == 0:
        p = r = f1 = 0.0
    else:
        p, r = md / bd, mo / bo
        f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return {
        "fractions_original": [fmt(v) for v in fo],
        "fractions_decoded": [fmt(v) for v in fd],
        "fraction_change_max": fmt(max(abs(d - o) for o, d in zip(fo, fd))),
        "dice": [fmt(dice(diag[c], a[c], b[c])) for c in range(k)],
        "iou": [fmt(iou(diag[c], a[c], b[c])) for c in range(k)],
        "dice_foreground": fmt(dice(fg_both, fg_a, fg_b)),
        "iou_foreground": fmt(iou(fg_both, fg_a, fg_b)),
        "boundary_precision": fmt(p),
        "boundary_recall": fmt(r),
        "boundary_f1": fmt(f1),
    }


def peer(original, decoded, segmentation):
    result = dict(segmentation)
    try:
        to, td = thresholds(original, segmentation), thresholds(decoded, segmentation)
    except ValueError as e:
        result["error"] = str(e)
        return result
    k = len(to) + 1
    la = np.digitize(original, to, right=True)
    lb = np.digitize(decoded, td, right=True)
    if segmentation["method"] == "otsu":
        assert np.array_equal(la, original > to[0]) and np.array_equal(lb, decoded > td[0])
    confusion = np.bincount((la * k + lb).ravel(), minlength=k * k).reshape(k, k)
    ba, na = boundary_and_near(la)
    bb, nb = boundary_and_near(lb)
    boundary = (int(ba.sum()), int(bb.sum()))
    matched = (int((ba & nb).sum()), int((bb & na).sum()))
    result.update({
        "thresholds_original": [fmt(t) for t in to],
        "thresholds_decoded": [fmt(t) for t in td],
        "threshold_shift": [fmt(float(d) - float(o)) for o, d in zip(to, td)],
        "confusion": confusion.tolist(),
        "boundary_original": boundary[0],
        "boundary_decoded": boundary[1],
        "matched_original": matched[0],
        "matched_decoded": matched[1],
        **scores(k, confusion, boundary, matched),
    })
    return result


def multiotsu_more(original):
    """threshold_multiotsu(original, classes) for 2..4 classes, and 5 where the search is short
    (C(bins - 1, 4) candidates: 1.7e8 for 256 bins take scikit-image a minute per image)."""
    more = {}
    bins = 256 if original.dtype.kind == "f" else int(original.max()) - int(original.min()) + 1
    for classes in range(2, 6 if math.comb(bins - 1, 4) < 10**7 else 5):
        try:
            more[str(classes)] = [fmt(t) for t in threshold_multiotsu(original, classes)]
        except ValueError as e:
            more[str(classes)] = {"error": str(e)}
    return more


def provenance():
    return peer_provenance(
        "segmentation_fixtures.py",
        versions={
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "scikit-image": skimage.__version__,
        },
        calls={
            "otsu": "skimage.filters.threshold_otsu(image) (nbins=256)",
            "multiotsu": "skimage.filters.threshold_multiotsu(image, classes) (nbins=256)",
            "classes": "numpy.digitize(image, thresholds, right=True) (otsu: also == image > t)",
            "confusion": "numpy.bincount(a * k + b, minlength=k * k).reshape(k, k)",
            "boundary": "skimage.segmentation.find_boundaries(labels, connectivity=1, mode='thick'); "
                        "asserted equal to 'a face neighbour inside the array of another class'",
            "matched": "(boundary & scipy.ndimage.binary_dilation(other_boundary, "
                       "structure=generate_binary_structure(rank, rank))).sum()",
            "scores": "from the integers with the definitions of src/analysis/segmentation.rs "
                      "(see scores() in this script)",
            "multiotsu_original": "threshold_multiotsu(original, classes) for classes 2..4, and 5 where "
                                  "C(bins - 1, 4) < 1e7 (integer data with at most 126 bins)",
        },
    )


def generate(out, previous):
    entries = pair_entries(Writer(out, FIXTURES, ROOT), cases, lambda original, decoded, segmentations: {
        "segmentations": [peer(original, decoded, s) for s in segmentations],
        "multiotsu_original": multiotsu_more(original),
    })
    expected = {"provenance": provenance(), "cases": entries}
    write_expected(out, expected, previous)


if __name__ == "__main__":
    main(__doc__, FIXTURES, ROOT, generate)
