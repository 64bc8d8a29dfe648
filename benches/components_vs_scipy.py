#!/usr/bin/env python3
"""Helper of benches/components_vs_scipy.sh: makes the mask and times scipy.ndimage.label.

    python3 benches/components_vs_scipy.py gen WORK N KIND         # WORK/mask.npy (uint8)
    python3 benches/components_vs_scipy.py compare WORK CONNECTIVITY REPEATS "PHOTONQA_LINE"

KIND `porous` (seeded, N^3): Gaussian-filtered white noise (sigma 2) thresholded so that 30% of
the voxels are pore (near the 3-D percolation threshold of such fields: a spanning pore network
with hundreds of smaller cut-off pores). KIND `noise`: independent voxels, 30% pore (near the
site percolation threshold 0.3116 of the simple cubic lattice): about a million components with
face connectivity, the worst case for run-based labelling.

`compare` times scipy.ndimage.label(mask, structure) (best of REPEATS; SciPy labels on one
thread), with structure generate_binary_structure(3, 1) for `face` and (3, 3) for `full`,
computes the same summary as examples/components_bench.rs (count, voxels, boundary faces with
NumPy diffs, components touching the border, largest size, sum of squared sizes), prints both
times and the ratio, and exits 1 when any summary value differs.
"""

import sys
import time
from pathlib import Path

import numpy as np
import scipy
from scipy import ndimage

TARGET_RATIO = 2.0


def gen(work, n, kind):
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1965)
    shape = (n, n, n)
    if kind == "porous":
        field = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), 2.0)
        mask = field > np.quantile(field, 0.7)
    elif kind == "noise":
        mask = rng.random(shape, dtype=np.float32) < 0.3
    else:
        sys.exit(f"unknown mask kind {kind!r} (porous or noise)")
    np.save(work / "mask.npy", mask.astype(np.uint8))


def summary(mask, labels, count):
    sizes = np.bincount(labels.ravel())[1:]
    border = set()
    for axis in range(mask.ndim):
        for end in (0, -1):
            border.update(np.unique(np.take(labels, end, axis=axis)).tolist())
    border.discard(0)
    faces = sum(int(np.count_nonzero(np.diff(mask, axis=a))) for a in range(mask.ndim))
    return {
        "count": int(count),
        "volume": int(sizes.sum()),
        "boundary_faces": faces,
        "touching_border": len(border),
        "largest": int(sizes.max()) if count else 0,
        "sum_sq": int((sizes.astype(np.int64) ** 2).sum()),
    }


def compare(work, connectivity, repeats, line):
    mask = np.load(Path(work) / "mask.npy").astype(bool)
    fields = dict(f.split("=", 1) for f in line.split()[1:])
    rank = {"face": 1, "full": mask.ndim}[connectivity]
    structure = ndimage.generate_binary_structure(mask.ndim, rank)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        labels, count = ndimage.label(mask, structure)
        best = min(best, time.perf_counter() - start)
    theirs = summary(mask, labels, count)
    ours_s, ours_1 = float(fields["best_s"]), float(fields["best_1thread_s"])
    mismatch = [k for k, v in theirs.items() if int(fields[k]) != v]
    print(f"mask: {mask.shape}, {mask.mean():.4f} of the voxels set, {connectivity} connectivity")
    print("scipy summary: " + " ".join(f"{k}={v}" for k, v in theirs.items()))
    print(f"scipy {scipy.__version__} ndimage.label: best of {repeats}: {best:.3f} s (one thread)")
    print(f"photonqa: {ours_s:.3f} s ({fields['threads']} threads), {ours_1:.3f} s (one thread)")
    verdict = "meets" if best / ours_s >= TARGET_RATIO else "BELOW"
    print(f"speed ratio scipy / photonqa: {best / ours_s:.1f}x on {fields['threads']} threads "
          f"({verdict} the {TARGET_RATIO:g}x target), {best / ours_1:.1f}x on one thread")
    if mismatch:
        print("summaries differ: " + ", ".join(f"{k} photonqa {fields[k]} scipy {theirs[k]}"
                                               for k in mismatch))
        sys.exit(1)
    print("summaries agree exactly")


if __name__ == "__main__":
    if sys.argv[1:2] == ["gen"]:
        gen(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1:2] == ["compare"]:
        compare(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        sys.exit(__doc__)
