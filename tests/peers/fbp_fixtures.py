#!/usr/bin/env python3
"""Filtered back-projection peer fixtures for tests/fbp_crosscheck.rs: scikit-image's iradon.

Writes tests/fixtures/fbp/ (per case its sinogram and, per filter, scikit-image's
reconstruction, as float64 .npy) and tests/fixtures/fbp/expected.json (the cases, their angles
and a provenance block). Deterministic: random phantoms and angles come from numpy Generators
seeded from the case name, and the provenance date is kept when nothing else changed, so
running the script again reproduces the same files.

    python3 tests/peers/fbp_fixtures.py            # (re)write the fixtures
    python3 tests/peers/fbp_fixtures.py --check    # regenerate in a temp dir, compare, exit 1 on drift

Needs: numpy, scipy, scikit-image (0.26 recorded), h5py (for reference-data/tooth.h5).

Layout: photonqa's sinogram is (angles, detector); scikit-image's radon_image is
(detector, angles). Each case stores sinogram.npy in photonqa's layout, made as
radon(phantom, theta, circle=True).T, and <filter>.npy = iradon(sinogram.T, theta,
filter_name=<filter>, circle=True) (interpolation="linear", output_size = detector length).
Angles are stored in expected.json as repr strings (parsed bit-exactly by Rust); uniform angle
sets also record the np.linspace(start, stop, count, endpoint=False) call that made them.

Real data: one detector row of reference-data/tooth.h5. The sinogram is
row 0 of -log(max((data - dark) / (white - dark), 1e-6)) in float64, with dark and white the
means over their 10 frames (np.mean along axis 0: sequential sums divided by 10), for the
181 projection angles of /exchange/theta. Stored: statistics of iradon(sinogram.T, theta,
circle=True) (ramp) over the whole 640 x 640 slice, every 8th pixel along both axes
(tooth/recon_every8.npy, 80 x 80), the full centre row and column, and statistics of the
sinogram itself (to check the normalisation). Without the file the script keeps the previous
values (expected.json entry and tooth/*.npy) and says so.

Floats in expected.json are strings holding Python's repr of the float64 value (shortest
round-trip text) so the Rust side parses them bit-exactly with str::parse::<f64>.
"""

import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np
import scipy
import skimage
from scipy import ndimage
from skimage.data import shepp_logan_phantom
from skimage.transform import iradon, radon, rescale

from fixture_kit import Writer, fmt, main, peer_provenance, rng_for, warnings_as_errors, write_expected  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "fbp"
FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")
TOOTH_FILE = "reference-data/tooth.h5"
#: Smallest argument of the logarithm in the flat/dark normalisation.
TOOTH_FLOOR = 1e-6
#: Pixel step of the stored subsample of the tooth slice.
TOOTH_STEP = 8


def circle_mask(n):
    """True inside the circle scikit-image's radon(circle=True) expects the image within."""
    y, x = np.ogrid[:n, :n]
    return (y - n // 2) ** 2 + (x - n // 2) ** 2 <= (n // 2) ** 2


def shepp_logan(n):
    image = rescale(shepp_logan_phantom(), n / 400)
    assert image.shape == (n, n), image.shape
    return np.where(circle_mask(n), image, 0.0)


def smooth_phantom(rng, n):
    """Gaussian-filtered noise plus two disks, zero outside the inscribed circle."""
    image = ndimage.gaussian_filter(rng.standard_normal((n, n)), 2.5)
    image = (image - image.min()) / (image.max() - image.min())
    y, x = np.mgrid[:n, :n].astype(np.float64)
    for _ in range(2):
        cy, cx, r = rng.uniform(0.3 * n, 0.7 * n), rng.uniform(0.3 * n, 0.7 * n), rng.uniform(min(3, n / 6), n / 6)
        image = np.where((y - cy) ** 2 + (x - cx) ** 2 < r * r, rng.uniform(0.5, 1.5), image)
    return np.where(circle_mask(n), image, 0.0)


def linspace(start, stop, count):
    return np.linspace(start, stop, count, endpoint=False), {"start": fmt(start), "stop": fmt(stop), "count": count}


def cases():
    """(name, note, phantom, theta, linspace call or None, filters) of every synthetic case."""
    out = []

    def add(name, note, make, filters=FILTERS):
        rng = rng_for(name)
        phantom, (theta, call) = make(rng)
        out.append((name, note, phantom, theta, call, filters))

    add("shepp64_180", "Shepp-Logan 64x64, 180 angles over [0, 180)",
        lambda rng: (shepp_logan(64), linspace(0.0, 180.0, 180)))
    add("shepp128_45", "Shepp-Logan 128x128, 45 angles over [0, 180)",
        lambda rng: (shepp_logan(128), linspace(0.0, 180.0, 45)), ("ramp",))
    add("smooth63_nonuniform", "smooth random phantom, odd detector 63, 37 sorted random angles in [0, 180)",
        lambda rng: (smooth_phantom(rng, 63), (np.sort(rng.uniform(0.0, 180.0, 37)), None)))
    add("smooth50_shuffled_360", "smooth random phantom, detector 50, 24 angles over [-30, 330) shuffled",
        lambda rng: (smooth_phantom(rng, 50), (rng.permutation(np.linspace(-30.0, 330.0, 24, endpoint=False)), None)),
        ("ramp", "cosine"))
    add("smooth5_7", "smooth random phantom, detector 5, 7 angles over [0, 180)",
        lambda rng: (smooth_phantom(rng, 5), linspace(0.0, 180.0, 7)))
    add("point2_3", "detector 2 (the smallest), 3 angles over [0, 180)",
        lambda rng: (np.array([[0.0, 0.0], [0.0, 1.0]]), linspace(0.0, 180.0, 3)), ("ramp", "hamming"))
    return out


def save(out, rel, array):
    """Saves `array` as float64 `out/rel`; returns its path as recorded in expected.json."""
    return Writer(out, FIXTURES, ROOT).npy(rel, np.asarray(array, dtype=np.float64))


def make_case(out, name, note, phantom, theta, call, filters):
    sinogram = radon(phantom, theta, circle=True).T  # (angles, detector)
    entry = {
        "name": name,
        "note": note,
        "detector": int(sinogram.shape[1]),
        "theta": [fmt(t) for t in theta],
        "sinogram": save(out, f"{name}/sinogram.npy", sinogram),
        "reconstructions": {},
    }
    if call is not None:
        entry["theta_linspace"] = call
    for f in filters:
        recon = iradon(sinogram.T, theta, filter_name=f, circle=True)
        assert recon.shape == (sinogram.shape[1],) * 2 and recon.dtype == np.float64
        entry["reconstructions"][f] = save(out, f"{name}/{f}.npy", recon)
    return entry


def stats(a):
    a = np.asarray(a, dtype=np.float64)
    return {"sum": fmt(a.sum()), "norm": fmt(np.linalg.norm(a)), "min": fmt(a.min()), "max": fmt(a.max())}


def tooth_sinogram(path):
    import h5py

    with h5py.File(path, "r") as f:
        data = f["/exchange/data"][...].astype(np.float64)
        white = f["/exchange/data_white"][...].astype(np.float64).mean(axis=0)
        dark = f["/exchange/data_dark"][...].astype(np.float64).mean(axis=0)
        theta = f["/exchange/theta"][...].astype(np.float64)
    ratio = (data[:, 0, :] - dark[0]) / (white[0] - dark[0])
    return -np.log(np.maximum(ratio, TOOTH_FLOOR)), theta


def make_tooth(out, previous):
    path = ROOT / TOOTH_FILE
    if not path.is_file():
        if previous is None or "tooth" not in previous:
            sys.exit(f"{path} not found and no previous expected.json to keep its values from")
        print(f"note: {path} not found; keeping the tooth values of the existing expected.json")
        for rel in ("recon_every8.npy", "centre_row.npy", "centre_column.npy"):
            target = Path(out) / "tooth" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(FIXTURES / "tooth" / rel, target)
        return previous["tooth"]
    sinogram, theta = tooth_sinogram(path)
    recon = iradon(sinogram.T, theta, filter_name="ramp", circle=True)
    n = recon.shape[0]
    return {
        "file": TOOTH_FILE,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "row": 0,
        "floor": fmt(TOOTH_FLOOR),
        "filter": "ramp",
        "shape": list(recon.shape),
        "sinogram_stats": stats(sinogram),
        "stats": stats(recon),
        "step": TOOTH_STEP,
        "every8": save(out, "tooth/recon_every8.npy", recon[::TOOTH_STEP, ::TOOTH_STEP]),
        "centre_row": save(out, "tooth/centre_row.npy", recon[n // 2]),
        "centre_column": save(out, "tooth/centre_column.npy", recon[:, n // 2]),
    }


def provenance():
    return peer_provenance(
        "fbp_fixtures.py",
        versions={"numpy": np.__version__, "scipy": scipy.__version__, "scikit-image": skimage.__version__},
        calls={
            "sinogram": "skimage.transform.radon(phantom, theta, circle=True).T (angles, detector)",
            "reconstruction": "skimage.transform.iradon(sinogram.T, theta, filter_name=<filter>, circle=True)",
            "shepp_logan": "rescale(skimage.data.shepp_logan_phantom(), n / 400), zeroed outside the inscribed circle",
            "tooth_sinogram": "row 0 of -log(max((data - mean(dark, 0)) / (mean(white, 0) - mean(dark, 0)), 1e-6)), float64",
            "tooth_stats": "sum, np.linalg.norm, min, max over the whole slice (or sinogram)",
        },
    )


def generate(out, previous):
    entries = []
    with warnings_as_errors():  # e.g. radon's "image must be zero outside the circle"
        for case in cases():
            entries.append(make_case(out, *case))
        tooth = make_tooth(out, previous)
    expected = {"provenance": provenance(), "filters": list(FILTERS), "cases": entries, "tooth": tooth}
    write_expected(out, expected, previous)


if __name__ == "__main__":
    main(__doc__, FIXTURES, ROOT, generate)
