"""Writes TIFF stacks with tifffile and what tifffile reads back from them, for tests/tiff_inputs.rs.

Usage: python3 tiff_stacks.py OUTDIR

For each case OUTDIR/CASE/ holds the TIFF file(s) (a folder `scan/` of one-image files named
with zero padding, or one multi-page `stack.tif`) and `tifffile.npy`: the array tifffile reads
from them (`tifffile.imread` of the sorted files stacked along axis 0, or of the multi-page
file), which photonqa's reading must equal exactly. Values come from a numpy Generator seeded
from the case's name and cover each dtype's extremes. Prints the cases as JSON lines.

OUTDIR/errors/ holds inputs photonqa must refuse with a one-line error (see ERRORS).
"""

import json
import sys
from pathlib import Path

import numpy as np
from fixture_kit import extreme_values
import tifffile

# (name, dtype, compression, predictor, layout, tile, pages, height, width)
CASES = [
    ("u8_none_files", "uint8", None, None, "files", None, 5, 9, 7),
    ("u16_lzw_files", "uint16", "lzw", None, "files", None, 4, 12, 10),
    ("u16_deflate_predictor_files", "uint16", "zlib", "horizontal", "files", None, 3, 11, 13),
    ("i16_lzw_predictor_files", "int16", "lzw", "horizontal", "files", None, 3, 8, 6),
    ("u32_deflate_files", "uint32", "zlib", None, "files", None, 3, 6, 5),
    ("i32_none_files", "int32", None, None, "files", None, 2, 5, 9),
    ("f32_none_files", "float32", None, None, "files", None, 4, 10, 8),
    ("f32_deflate_float_predictor_files", "float32", "zlib", "floatingpoint", "files", None, 3, 9, 11),
    ("f32_lzw_files", "float32", "lzw", None, "files", None, 3, 7, 7),
    ("u8_lzw_multipage", "uint8", "lzw", None, "multipage", None, 6, 10, 12),
    ("u16_none_multipage", "uint16", None, None, "multipage", None, 5, 9, 8),
    ("u16_deflate_tiled_multipage", "uint16", "zlib", None, "multipage", (16, 16), 3, 40, 24),
    ("f32_deflate_multipage", "float32", "zlib", None, "multipage", None, 7, 13, 6),
    ("f32_none_single_page", "float32", None, None, "multipage", None, 1, 6, 9),
]


def write_errors(folder):
    """Inputs photonqa refuses: stacks whose files differ in shape or dtype, a multi-page file
    whose pages differ, and pages it does not read (RGB, float16, WhiteIsZero)."""
    for name, second in [("shapes", np.zeros((8, 9), np.uint16)), ("dtypes", np.zeros((8, 8), np.float32))]:
        (folder / name).mkdir(parents=True)
        tifffile.imwrite(folder / name / "img_0000.tif", np.zeros((8, 8), np.uint16))
        tifffile.imwrite(folder / name / "img_0001.tif", second)
    with tifffile.TiffWriter(folder / "pages.tif") as tif:
        tif.write(np.zeros((2, 8, 8), np.uint8))
        tif.write(np.zeros((8, 7), np.uint8))
    tifffile.imwrite(folder / "rgb.tif", np.zeros((6, 5, 3), np.uint8), photometric="rgb")
    tifffile.imwrite(folder / "half.tif", np.zeros((6, 5), np.float16))
    tifffile.imwrite(folder / "miniswhite.tif", np.zeros((6, 5), np.uint8), photometric="miniswhite")


def main():
    out = Path(sys.argv[1])
    for name, dtype, compression, predictor, layout, tile, pages, height, width in CASES:
        folder = out / name
        folder.mkdir(parents=True)
        array = extreme_values(name, dtype, (pages, height, width))
        options = dict(compression=compression, predictor=predictor, tile=tile, photometric="minisblack")
        if layout == "files":
            (folder / "scan").mkdir()
            for page in range(pages):
                tifffile.imwrite(folder / "scan" / f"img_{page:04d}.tif", array[page], **options)
            files = sorted((folder / "scan").glob("*.tif"))
            read = np.stack([tifffile.imread(f) for f in files])
            source = "scan/*.tif"
        else:
            tifffile.imwrite(folder / "stack.tif", array, **options)
            read = tifffile.imread(folder / "stack.tif")
            read = read.reshape((-1,) + read.shape[-2:])
            source = "stack.tif"
        assert read.dtype == array.dtype and np.array_equal(read, array), name
        np.save(folder / "tifffile.npy", read)
        print(json.dumps({"name": name, "source": source, "shape": list(read.shape), "dtype": str(read.dtype)}))
    write_errors(out / "errors")


if __name__ == "__main__":
    main()
