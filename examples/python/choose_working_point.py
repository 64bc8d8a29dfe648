"""Choose a working point from Python: try codecs on an array in memory, then run the seed
scenario and read its recommendation from the DataFrame.

    pip install ./python pandas h5py
    python examples/python/choose_working_point.py [OUT]

OUT keeps the run (default: a temporary directory). Run from anywhere: paths are relative to
the repository.
"""

import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

import photonqa

ROOT = Path(__file__).resolve().parents[2]

# 1. The array as a notebook has it: read with h5py.
with h5py.File(ROOT / "reference-data" / "porous-tomo.h5", "r") as f:
    volume = f["/volume"][...]
print(f"porous-tomo.h5::/volume: {volume.shape} {volume.dtype}")

# 2. Three pipelines tried on it, measured as `photonqa run` measures a working point.
pipelines = {
    "sz3 1e-3 + zstd": [{"stage": "sz3", "abs_error": 1e-3}, {"stage": "zstd"}],
    "zfp 1e-3": [{"stage": "zfp", "mode": "accuracy", "tolerance": 1e-3}],
    "otsu + uint8 6 bits + deflate": [
        {"stage": "threshold", "method": "otsu", "mode": "zero-below"},
        {"stage": "quantize", "dtype": "uint8", "bits": 6},
        {"stage": "deflate", "level": 6},
    ],
}
for name, pipeline in pipelines.items():
    decoded, rate = photonqa.roundtrip(volume, pipeline)
    m = photonqa.metrics(volume, decoded, metrics=["psnr", "ssim", "max_abs_error"])
    science = photonqa.analyze(decoded)
    print(
        f"{name:32} ratio {rate['ratio']:7.2f}  PSNR {m['psnr']:6.2f} dB  SSIM {m['ssim']:.4f}  "
        f"max |error| {m['max_abs_error']:.2e}  porosity {science['porosity']:.4f}"
    )

# 3. The seed scenario: every working point, the limits, the recommendation.
scenario = photonqa.Scenario.load(ROOT / "scenarios" / "seed-otsu-uint8-zip.toml")
with tempfile.TemporaryDirectory() as temporary:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(temporary) / "seed"
    results = photonqa.run(scenario, out, progress=False)
    frame = results.to_pandas()
    print(frame[["point_id", "quantize.bits", "deflate.level", "ratio", "psnr", "ssim"]])
    chosen = results.recommendation["chosen"]
    best = frame[frame["point_id"] == chosen["point_id"]].iloc[0]
    print(
        f"recommended: {best['point_id']} (quantize.bits {best['quantize.bits']}, "
        f"deflate.level {best['deflate.level']}), ratio {best['ratio']:.2f}"
    )
    print(results.answer)
