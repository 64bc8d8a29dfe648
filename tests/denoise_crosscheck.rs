//! The `denoise` stage against its peers, plane by plane: `scipy.ndimage.gaussian_filter`
//! (`mode="reflect"`, `truncate=4.0`) and `median_filter` (`mode="reflect"`), and
//! `skimage.restoration.denoise_tv_chambolle`, on real tooth projections (float32 counts)
//! and on a synthetic float64 volume whose planes have odd sizes smaller than some windows.
//! The peers filter each plane in float64 and cast to the input's dtype at the end, as the
//! stage does.

mod common;

use std::path::Path;
use std::process::Command;

use photonqa::data::npy::write_npy;
use photonqa::data::source::RawSource;
use photonqa::data::{DType, IntoNdArray, NdArray, VolumeSource};
use photonqa::pipeline::registry;
use photonqa::pipeline::{ParamValue, Stage, StageConfig, StageInput};

/// Filters every plane of `in.npy` as the stage's parameters say (argv: in, out, filter,
/// strength) and saves the result in the input's dtype.
const PEER: &str = "
import sys
import numpy as np
from scipy import ndimage
from skimage.restoration import denoise_tv_chambolle
source, target, kind, strength = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
x = np.load(source)
def filtered(plane):
    plane = plane.astype(np.float64)
    if kind == 'gaussian':
        return ndimage.gaussian_filter(plane, strength, mode='reflect', truncate=4.0)
    if kind == 'median':
        return ndimage.median_filter(plane, size=int(strength), mode='reflect')
    return denoise_tv_chambolle(plane, weight=strength, eps=2e-4, max_num_iter=200)
np.save(target, np.stack([filtered(p) for p in x]).astype(x.dtype))
";

/// The stage's output on `x`.
fn denoised(x: &NdArray, filter: &str, strength: (&'static str, ParamValue)) -> NdArray {
    let def = registry::find("denoise").expect("denoise is registered");
    let config = StageConfig {
        stage: def.id,
        params: vec![
            ("filter", ParamValue::Str(filter.into())),
            strength,
            ("max_iter", ParamValue::Int(200)),
        ],
    };
    match (def.create)(&config, StageInput { dtype: x.dtype() }) {
        Ok(Stage::ArrayToArray(stage, _)) => stage.encode(x.clone()).expect("filters"),
        _ => panic!("denoise builds as an array->array stage"),
    }
}

/// The peer's output on `x` (saved in `dir`).
fn peer(dir: &Path, x: &NdArray, filter: &str, strength: f64) -> NdArray {
    let (source, target) = (dir.join("in.npy"), dir.join("out.npy"));
    write_npy(&source, x).unwrap();
    let out = Command::new("python3")
        .args(["-c", PEER])
        .args([&source, &target])
        .args([filter, &strength.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = RawSource::open_npy(&target).unwrap();
    read.read_slab(0..read.shape()[0]).unwrap()
}

/// The largest `|a - b|` and the largest `|b|`.
fn largest_difference(a: &NdArray, b: &NdArray) -> (f64, f64) {
    assert_eq!((a.dtype(), a.shape()), (b.dtype(), b.shape()));
    let (a, b) = (a.to_f64(), b.to_f64());
    a.iter().zip(b.iter()).fold((0.0, 0.0), |(d, m), (x, y)| {
        (f64::max(d, (x - y).abs()), f64::max(m, y.abs()))
    })
}

/// A deterministic float64 volume of 3 planes of 13x11: a ramp, a disc and a pseudo-random
/// texture (odd sizes, smaller than the widest windows, so the mirrors repeat).
fn synthetic() -> NdArray {
    let values: Vec<f64> = (0..3 * 13 * 11)
        .map(|i| {
            let (z, y, x) = ((i / 143) as f64, ((i / 11) % 13) as f64, (i % 11) as f64);
            let disc = if (y - 6.0).powi(2) + (x - 5.0).powi(2) < 12.0 {
                3.0
            } else {
                0.0
            };
            let texture = ((i * 7919 % 1009) as f64 / 1009.0 - 0.5) * 0.8;
            0.1 * x + 0.05 * y * z + disc + texture
        })
        .collect();
    ndarray::ArrayD::from_shape_vec(vec![3, 13, 11], values)
        .unwrap()
        .into_nd()
}

#[test]
fn denoise_matches_scipy_and_scikit_image_plane_by_plane() {
    if !common::python_peers(
        "import scipy.ndimage, skimage.restoration",
        "SciPy and scikit-image",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (tooth, synthetic) = (common::tooth_projections(12), synthetic());
    assert_eq!(tooth.dtype(), DType::Float32);
    // (filter, strength, tolerance relative to the largest output value): float32 results
    // are the float64 ones rounded, so they agree within one rounding (2^-24 relative); the
    // median is a selection, equal bit for bit; TV iterates sums taken in another order.
    let cases: [(&NdArray, &str, f64, f64); 8] = [
        (&tooth, "gaussian", 1.5, 1.2e-7),
        (&tooth, "median", 3.0, 0.0),
        (&tooth, "tv", 50.0, 1.2e-7),
        (&synthetic, "gaussian", 0.7, 1e-14),
        (&synthetic, "gaussian", 4.0, 1e-14),
        (&synthetic, "median", 5.0, 0.0),
        (&synthetic, "median", 15.0, 0.0),
        (&synthetic, "tv", 0.3, 1e-10),
    ];
    for (x, filter, strength, tolerance) in cases {
        let value = match filter {
            "median" => ("size", ParamValue::Int(strength as i64)),
            "gaussian" => ("sigma", ParamValue::Float(strength)),
            _ => ("weight", ParamValue::Float(strength)),
        };
        let ours = denoised(x, filter, value);
        let theirs = peer(dir.path(), x, filter, strength);
        let (difference, largest) = largest_difference(&ours, &theirs);
        println!(
            "{filter} {strength} on {:?}: {difference:e} of {largest}",
            x.shape()
        );
        assert!(
            difference <= tolerance * largest,
            "{filter} {strength} on {:?}: differs by {difference:e} (largest value {largest})",
            x.shape()
        );
        let (change, _) = largest_difference(&ours, x);
        assert!(change > 0.0, "{filter} {strength} changed nothing");
    }
}
