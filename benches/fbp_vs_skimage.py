#!/usr/bin/env python3
"""Helper of benches/fbp_vs_skimage.sh: makes the sinograms and times scikit-image's iradon.

    python3 benches/fbp_vs_skimage.py gen WORK ANGLES DETECTOR     # WORK/sino_<A>x<N>.npy, WORK/theta_<A>.npy
    python3 benches/fbp_vs_skimage.py compare WORK ANGLES DETECTOR REPEATS "PHOTONQA_LINE"

The sinogram (seeded, float64, photonqa's (angles, detector) layout) is the analytic parallel-beam
projection of 12 random disks inside the inscribed circle, at ANGLES angles over [0, 180). `compare`
times iradon(sinogram.T, theta, filter_name="ramp", circle=True) (best of REPEATS), parses the line
printed by examples/fbp_bench.rs, compares its reconstruction (WORK/photonqa_<A>x<N>.npy) with
scikit-image's, and prints both times, the ratio and the relative RMSE; exit status 1 when the
relative RMSE exceeds 1e-2 (the issue's requirement).
"""

import sys
import time
from pathlib import Path

import numpy as np
import skimage
from skimage.transform import iradon

REL_TOL = 1e-2
TARGET_RATIO = 5.0


def gen(work, angles, n):
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1917)
    theta = np.linspace(0.0, 180.0, angles, endpoint=False)
    s = np.arange(n) - n // 2
    sino = np.zeros((angles, n))
    rad = np.deg2rad(theta)[:, None]
    for _ in range(12):
        r = rng.uniform(0.03, 0.2) * n
        rho = rng.uniform(0, n / 2 - r - 1)
        phi = rng.uniform(0, 2 * np.pi)
        x0, y0, d = rho * np.cos(phi), rho * np.sin(phi), rng.uniform(0.2, 1.0)
        s0 = x0 * np.cos(rad) + y0 * np.sin(rad)
        sino += 2 * d * np.sqrt(np.maximum(r * r - (s[None, :] - s0) ** 2, 0.0))
    np.save(work / f"sino_{angles}x{n}.npy", sino)
    np.save(work / f"theta_{angles}.npy", theta)


def compare(work, angles, n, repeats, line):
    work = Path(work)
    sino = np.load(work / f"sino_{angles}x{n}.npy")
    theta = np.load(work / f"theta_{angles}.npy")
    ours = np.load(work / f"photonqa_{angles}x{n}.npy")
    fields = dict(f.split("=", 1) for f in line.split()[1:])
    ours_s = float(fields["best_s"])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        recon = iradon(sino.T, theta, filter_name="ramp", circle=True)
        best = min(best, time.perf_counter() - start)
    err = np.linalg.norm(ours - recon) / np.linalg.norm(recon)
    ratio = best / ours_s
    verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
    print(f"{angles} angles x {n} detector, ramp filter, circle=True")
    print(f"  scikit-image {skimage.__version__}: best of {repeats}: {best:.3f} s (one thread)")
    print(f"  photonqa: best of runs: {ours_s:.3f} s ({fields['threads']} threads)")
    print(f"  relative RMSE ||photonqa - skimage|| / ||skimage||: {err:.2e} (tolerance {REL_TOL:g})")
    print(f"  speed ratio scikit-image / photonqa: {ratio:.1f}x ({verdict} the {TARGET_RATIO:g}x target)")
    if not err <= REL_TOL:
        sys.exit(1)


if __name__ == "__main__":
    if sys.argv[1:2] == ["gen"]:
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1:2] == ["compare"]:
        compare(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    else:
        sys.exit(__doc__)
