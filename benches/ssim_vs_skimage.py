#!/usr/bin/env python3
"""Helper of benches/ssim_vs_skimage.sh: makes the input pair and times scikit-image's SSIM.

    python3 benches/ssim_vs_skimage.py gen WORK N          # WORK/original.npy, WORK/decoded.npy; prints R
    python3 benches/ssim_vs_skimage.py compare WORK R REPEATS "PHOTONQA_LINE"
    python3 benches/ssim_vs_skimage.py skimage WORK R REPEATS   # prints "MEAN BEST_SECONDS"

The pair (seeded, N^3 float32): a smooth random field (Gaussian-filtered noise, sigma 3, scaled
to [0, 1]) plus 2% noise, and its 6-bit quantisation plus 1% noise. R = max - min of the original.
`compare` times structural_similarity(original, decoded, data_range=R, gaussian_weights=True,
sigma=1.5, use_sample_covariance=False) (best of REPEATS), parses the line printed by
examples/ssim_bench.rs, and prints both times, the ratio and the agreement of the means; exit
status 1 when the means differ by more than 2e-5.
"""

import sys
import time
from pathlib import Path

import numpy as np
import skimage
from scipy import ndimage
from skimage.metrics import structural_similarity

MEAN_TOL = 2e-5
TARGET_RATIO = 20.0


def gen(work, n):
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2004)
    shape = (n, n, n)
    a = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), 3.0)
    a = (a - a.min()) / (a.max() - a.min())
    a = (a + 0.02 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
    b = (np.round(a * 63) / 63 + 0.01 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
    np.save(work / "original.npy", a)
    np.save(work / "decoded.npy", b)
    print(repr(float(a.max()) - float(a.min())))


def skimage_ssim(work, data_range, repeats):
    """The original and decoded arrays of WORK, scikit-image's mean SSIM of them and its best
    time of `repeats` calls (the arrays already in memory)."""
    work = Path(work)
    a, b = np.load(work / "original.npy"), np.load(work / "decoded.npy")
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        mean = structural_similarity(a, b, data_range=data_range, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False)
        best = min(best, time.perf_counter() - start)
    return a, float(mean), best


def compare(work, data_range, repeats, line):
    fields = dict(f.split("=", 1) for f in line.split()[1:])
    ours_mean, ours_s = float(fields["mean"]), float(fields["best_s"])
    a, mean, best = skimage_ssim(work, data_range, repeats)
    ratio = best / ours_s
    diff = abs(float(mean) - ours_mean)
    print(f"input: {a.shape} {a.dtype}, data_range {data_range!r}, gaussian window")
    print(f"scikit-image {skimage.__version__}: mean {float(mean)!r}, best of {repeats}: {best:.3f} s")
    print(f"photonqa: mean {ours_mean!r}, best of runs: {ours_s:.3f} s ({fields['threads']} threads)")
    print(f"|difference of means|: {diff:.2e} (tolerance {MEAN_TOL:g})")
    verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
    print(f"speed ratio scikit-image / photonqa: {ratio:.1f}x ({verdict} the {TARGET_RATIO:g}x target)")
    if diff > MEAN_TOL:
        sys.exit(1)


if __name__ == "__main__":
    if sys.argv[1:2] == ["gen"]:
        gen(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:2] == ["compare"]:
        compare(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif sys.argv[1:2] == ["skimage"]:
        _, mean, best = skimage_ssim(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
        print(repr(mean), best)
    else:
        sys.exit(__doc__)
