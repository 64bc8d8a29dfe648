#!/usr/bin/env python3
"""Connected-component peer fixtures for tests/components_crosscheck.rs: what scipy.ndimage.label
computes on small binary masks.

Writes tests/fixtures/components/<case>.npy (uint8 masks, 1 = in the mask) and
tests/fixtures/components/expected.json (scipy's answers and a provenance block). Deterministic:
random masks come from numpy Generators seeded from the case name, and the provenance date is
kept when nothing else changed, so running the script again reproduces the same files.

    python3 tests/peers/components_fixtures.py            # (re)write the fixtures
    python3 tests/peers/components_fixtures.py --check    # regenerate in a temp dir, compare, exit 1 on drift

Needs: numpy, scipy (1.17 recorded).

For each case and each connectivity ("face": scipy's default structure
generate_binary_structure(rank, 1), 4 / 6 neighbours; "full": generate_binary_structure(rank,
rank), 8 / 26), expected.json holds from labels, count = scipy.ndimage.label(mask, structure):
the count, the sizes in label order (np.bincount(labels.ravel())[1:]), the flat C-order index
of each label's first voxel (np.unique(labels.ravel(), return_index=True)), whether each label
touches the border (appears in labels.take(0 or -1, axis=a) for some axis a), and the sorted
sizes. Per case (independent of the connectivity): the mask voxels and the boundary faces per
axis, np.count_nonzero(np.diff(mask, axis=a)) (faces between a mask and a non-mask voxel; the
outside of the array does not count). Each case also lists row cuts (slabs along axis 0) that
matter for it, e.g. a slab boundary just before the row that joins a U shape.
"""

import platform
from pathlib import Path

import numpy as np
import scipy
from scipy import ndimage

from fixture_kit import Writer, main, rng_for, warnings_as_errors, write_expected  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "components"

CONNECTIVITIES = {"face": 1, "full": None}  # None: rank (all neighbours)


def structure(connectivity, rank):
    return ndimage.generate_binary_structure(rank, CONNECTIVITIES[connectivity] or rank)


def random_mask(density):
    def make(rng, shape):
        return rng.random(shape) < density
    return make


def porous(rng, shape):
    """Gaussian-filtered noise thresholded at 35% pore: blobs near the percolation threshold."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), 1.5)
    return field > np.quantile(field, 0.65)


def u_shape_2d(rng, shape):
    """Two arms down from row 0 that join only in the last row (separate in every slab above)."""
    del rng
    m = np.zeros(shape, bool)
    m[:, 2] = m[:, shape[1] - 3] = True
    m[-1, 2:shape[1] - 2] = True
    m[0:3, 6] = True  # a separate piece cut by the top border
    return m


def spiral_2d(rng, shape):
    """A square spiral of one-voxel walls one voxel apart: one component whose wall crosses
    every row several times, closing in on the centre."""
    del rng
    m = np.zeros(shape, bool)
    y, x = 0, 0
    m[y, x] = True
    steps = [(0, 1), (1, 0), (0, -1), (-1, 0)]
    # Right, down, left along the outer ring, then each segment 2 shorter than the one two
    # turns before: walls one voxel apart.
    lengths = [shape[1] - 1, shape[0] - 1, shape[1] - 1]
    while len(lengths) < 4 or lengths[-1] > 0:
        lengths.append(lengths[-2] - 2)
    for turn, length in enumerate(lengths):
        dy, dx = steps[turn % 4]
        for _ in range(max(length, 0)):
            y, x = y + dy, x + dx
            m[y, x] = True
    return m


def comb_3d(rng, shape):
    """Teeth standing in (y, x) from row 0, joined by a plate in the last row only; with a few
    free-floating voxels."""
    m = np.zeros(shape, bool)
    m[:, 1:shape[1]:3, 1:shape[2]:3] = True
    m[-1, 1:-1, 1:-1] = True
    free = rng.integers(0, [shape[0] - 2, shape[1], shape[2]], size=(4, 3))
    for z, y, x in free:
        m[z, y, x] = True
    return m


def helix_3d(rng, shape):
    """A thick helix around axis 0 whose turns come back over earlier columns."""
    del rng
    m = np.zeros(shape, bool)
    z = np.arange(shape[0] * 8) / 8.0
    cy, cx, r = (shape[1] - 1) / 2, (shape[2] - 1) / 2, min(shape[1], shape[2]) / 2 - 2
    for t in z:
        y = int(round(cy + r * np.sin(t * 1.3)))
        x = int(round(cx + r * np.cos(t * 1.3)))
        m[int(t), y:y + 2, x:x + 2] = True
    return m


def checkerboard(rng, shape):
    """Diagonal contacts only: every voxel alone with face connectivity, one component with full."""
    del rng
    return np.indices(shape).sum(axis=0) % 2 == 0


def diagonals_3d(rng, shape):
    """Lines touching only along edges (i, i, c) and corners (i, i, i), each crossing every row."""
    del rng
    m = np.zeros(shape, bool)
    n = min(shape)
    i = np.arange(n)
    m[i, i, 0] = True                       # edge contacts
    m[i, i, i] = True                       # corner contacts; shares voxel (0, 0, 0)
    m[i, n - 1 - i, shape[2] - 1] = True    # anti-diagonal edges
    m[i[::2], 0, shape[2] - 1 - i[::2]] = True  # face gaps: separate voxels with both
    return m


def diagonal_2d(rng, shape):
    """Staircases touching only at corners, both directions."""
    del rng
    m = np.zeros(shape, bool)
    n = min(shape)
    i = np.arange(n)
    m[i, i] = True
    m[i, shape[1] - 1 - i] = True
    return m


def single_voxel(position):
    def make(rng, shape):
        del rng
        m = np.zeros(shape, bool)
        m[position] = True
        return m
    return make


def constant(value):
    def make(rng, shape):
        del rng
        return np.full(shape, value, bool)
    return make


def cases():
    """(name, mask, cuts, note) of every case."""
    out = []

    def add(name, shape, make, note, cuts=()):
        mask = make(rng_for(name), shape)
        out.append((name, mask, [list(c) for c in cuts], note))

    add("random_2d_045", (37, 53), random_mask(0.45), "2-D iid, density 0.45")
    add("random_2d_059", (41, 29), random_mask(0.5927), "2-D iid at the square-lattice site threshold 0.5927")
    add("random_2d_070", (23, 61), random_mask(0.70), "2-D iid, density 0.70")
    add("random_2d_041", (30, 30), random_mask(0.4073), "2-D iid at the 8-neighbour threshold 0.4073")
    add("random_3d_010", (19, 23, 17), random_mask(0.10), "3-D iid, density 0.10 (near the 26-neighbour threshold)")
    add("random_3d_031", (21, 17, 25), random_mask(0.3116), "3-D iid at the simple cubic site threshold 0.3116")
    add("random_3d_050", (13, 26, 11), random_mask(0.50), "3-D iid, density 0.50")
    add("porous_3d", (24, 30, 28), porous, "3-D Gaussian-filtered noise (sigma 1.5) > 65th percentile")
    add("porous_2d", (64, 48), porous, "2-D Gaussian-filtered noise (sigma 1.5) > 65th percentile")
    add("single_voxel_3d", (5, 6, 7), single_voxel((2, 3, 4)), "one interior voxel")
    add("single_voxel_2d_corner", (4, 9), single_voxel((3, 8)), "one voxel in the last corner")
    add("all_true_3d", (6, 5, 4), constant(True), "all true: one component, no faces")
    add("all_false_2d", (7, 9), constant(False), "all false: no components")
    add("one_row_3d", (1, 6, 8), random_mask(0.5), "a single row along axis 0")
    add("thin_column_2d", (17, 1), random_mask(0.6), "one voxel wide")
    add("u_shape_2d", (20, 15), u_shape_2d, "arms that join only in the last row",
        cuts=[[0, 19, 20], [0, 10, 19, 20]])
    add("spiral_2d", (23, 21), spiral_2d, "a square spiral: one wall winding across all rows")
    add("comb_3d", (12, 11, 10), comb_3d, "teeth joined only by the last row, plus free voxels",
        cuts=[[0, 11, 12], [0, 1, 2, 11, 12]])
    add("helix_3d", (16, 12, 12), helix_3d, "a 2x2 helix around axis 0 that turns back over earlier columns")
    add("checkerboard_2d", (9, 12), checkerboard, "corner contacts only")
    add("checkerboard_3d", (7, 6, 5), checkerboard, "edge contacts only")
    add("diagonals_3d", (8, 9, 10), diagonals_3d, "edge and corner contacts across every row")
    add("diagonal_2d", (10, 14), diagonal_2d, "corner-touching staircases across every row")
    return out


def peer(mask, connectivity):
    labels, count = ndimage.label(mask, structure(connectivity, mask.ndim))
    flat = labels.ravel()
    sizes = np.bincount(flat, minlength=count + 1)[1:]
    values, first = np.unique(flat, return_index=True)
    first = first[values > 0]
    border = set()
    for axis in range(mask.ndim):
        for end in (0, -1):
            border.update(np.unique(labels.take(end, axis=axis)).tolist())
    return {
        "count": int(count),
        "sizes": [int(s) for s in sizes],
        "first_voxels": [int(f) for f in first],
        "touches_border": [k in border for k in range(1, count + 1)],
        "sorted_sizes": sorted(int(s) for s in sizes),
    }


def provenance():
    return {
        "script": "tests/peers/components_fixtures.py",
        "python": platform.python_version(),
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__},
        "calls": {
            "label": "labels, count = scipy.ndimage.label(mask, structure)",
            "structure": {"face": "scipy.ndimage.generate_binary_structure(rank, 1)",
                          "full": "scipy.ndimage.generate_binary_structure(rank, rank)"},
            "sizes": "np.bincount(labels.ravel(), minlength=count + 1)[1:] (label order)",
            "first_voxels": "np.unique(labels.ravel(), return_index=True) indices of labels >= 1",
            "touches_border": "label in labels.take(0 or -1, axis=a) for some axis a",
            "sorted_sizes": "sorted(sizes)",
            "boundary_faces": "np.count_nonzero(np.diff(mask, axis=a)) per axis (outside not counted)",
            "volume": "np.count_nonzero(mask)",
        },
        "paths": "relative to the repository root",
    }


def generate(out, previous):
    w = Writer(out, FIXTURES, ROOT)
    entries = []
    with warnings_as_errors():
        for name, mask, cuts, note in cases():
            entries.append({
                "name": name,
                "note": note,
                "mask": w.npy(f"{name}.npy", mask.astype(np.uint8)),
                "shape": list(mask.shape),
                "cuts": cuts,
                "volume": int(np.count_nonzero(mask)),
                "boundary_faces": [int(np.count_nonzero(np.diff(mask, axis=a))) for a in range(mask.ndim)],
                "connectivity": {c: peer(mask, c) for c in CONNECTIVITIES},
            })
    write_expected(out, {"provenance": provenance(), "cases": entries}, previous)


if __name__ == "__main__":
    main(__doc__, FIXTURES, ROOT, generate)
