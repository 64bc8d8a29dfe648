//! The `bin` stage against NumPy and SciPy: the binned array against `x.reshape(nz, fz, ny, fy,
//! nx, fx).mean(axis=(1, 3, 5))` (or `.sum`) in float64 where the factors divide the axes, and
//! against `numpy.add.reduceat` over the block starts divided by the blocks' element counts
//! where a trailing block is short; the decoded array against `numpy.repeat` of the blocks'
//! means (`decode = "replicate"`) and `scipy.ndimage.zoom(means, shape / binned_shape,
//! order=1, grid_mode=True, mode="nearest")` (`decode = "linear"`), both of NumPy's binned
//! array and of the stage's (the decoder alone, bit for bit). On real tooth projections
//! (float32 counts, and the same rounded to uint16) and on synthetic float64, float32 and
//! uint16 arrays whose lengths leave remainders. The peer casts to the stage's dtypes at the
//! end: floats rounded, integers `numpy.rint` and clipped, as the stage does.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use photonqa::data::npy::write_npy;
use photonqa::data::source::RawSource;
use photonqa::data::{DType, Element, IntoNdArray, NdArray, VolumeSource};
use photonqa::pipeline::registry;
use photonqa::pipeline::{ParamValue, Stage, StageConfig, StageInput};
use photonqa::{with_array, with_dtype};

/// For each line of stdin (`in binned decoded ours decoded_ours fz fy fx reduce dtype
/// decode`, paths then parameters): bins `in` along its last three axes into `binned` (in
/// `dtype`), decodes it into `decoded` (repetition or zoom), and decodes the stage's binned
/// array `ours` the same way into `decoded_ours` (the decoder alone, on the same input).
const PEER: &str = "
import sys
import numpy as np
from scipy import ndimage
def cast(values, dtype):
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        values = np.clip(np.rint(values), info.min, info.max)
    return values.astype(dtype)
def decoded(binned, counts, shape, factors, reduce, decode, dtype):
    means = binned.astype(np.float64)
    if reduce == 'sum':
        means = means / counts
    if decode == 'linear':
        out = ndimage.zoom(means, np.array(shape) / np.array(means.shape), order=1,
                           grid_mode=True, mode='nearest')
        assert out.shape == shape, (out.shape, shape)
    else:
        out = means
        for axis, (n, f) in enumerate(zip(shape, factors)):
            out = np.repeat(out, f, axis=axis).take(np.arange(n), axis=axis)
    return cast(out, dtype)
for line in sys.stdin:
    source, binned_path, decoded_path, ours_path, decoded_ours_path, fz, fy, fx, reduce, \\
        binned_dtype, decode = line.split()
    factors = [int(fz), int(fy), int(fx)]
    x = np.load(source)
    if x.ndim == 2:
        factors = factors[1:]
    x64 = x.astype(np.float64)
    shape = x.shape
    if all(n % f == 0 for n, f in zip(shape, factors)):
        split = [d for n, f in zip(shape, factors) for d in (n // f, f)]
        blocks = x64.reshape(split)
        axes = tuple(range(1, 2 * len(shape), 2))
        sums = blocks.sum(axis=axes)
        counts = np.full(sums.shape, float(np.prod(factors)))
        binned = blocks.mean(axis=axes) if reduce == 'mean' else sums
    else:
        sums, counts = x64, np.ones(shape)
        for axis, (n, f) in enumerate(zip(shape, factors)):
            starts = np.arange(0, n, f)
            sums = np.add.reduceat(sums, starts, axis=axis)
            counts = np.add.reduceat(counts, starts, axis=axis)
        binned = sums / counts if reduce == 'mean' else sums
    binned = cast(binned, np.dtype(binned_dtype))
    np.save(binned_path, binned)
    args = (counts, shape, factors, reduce, decode, x.dtype)
    np.save(decoded_path, decoded(binned, *args))
    np.save(decoded_ours_path, decoded(np.load(ours_path), *args))
";

/// One comparison: the input, the stage's settings, its output and what NumPy and SciPy make.
struct Case {
    name: String,
    factors: [i64; 3],
    reduce: &'static str,
    decode: &'static str,
    binned: NdArray,
    decoded: NdArray,
}

/// The stage's binned and decoded arrays of `x`.
fn ours(x: &NdArray, factors: [i64; 3], reduce: &str, decode: &str) -> (NdArray, NdArray) {
    let def = registry::find("bin").expect("bin is registered");
    let config = StageConfig {
        stage: def.id,
        params: vec![
            ("factor_z", ParamValue::Int(factors[0])),
            ("factor_y", ParamValue::Int(factors[1])),
            ("factor_x", ParamValue::Int(factors[2])),
            ("reduce", ParamValue::Str(reduce.into())),
            ("decode", ParamValue::Str(decode.into())),
        ],
    };
    match (def.create)(&config, StageInput { dtype: x.dtype() }) {
        Ok(Stage::ArrayToArray(stage, _)) => {
            let binned = stage.encode(x.clone()).expect("bins");
            let decoded = stage.decode(binned.clone(), x.shape()).expect("decodes");
            (binned, decoded)
        }
        _ => panic!("bin builds as an array->array stage"),
    }
}

/// Runs the peer on every case (inputs `x` written in `dir`) and returns, per case, NumPy's
/// binned array, its decoding, and the decoding of the stage's binned array.
fn peer(dir: &Path, cases: &[(Case, NdArray)]) -> Vec<[NdArray; 3]> {
    let mut lines = String::new();
    let paths: Vec<[std::path::PathBuf; 5]> = (0..cases.len())
        .map(|k| {
            ["in", "binned", "decoded", "ours", "decoded_ours"]
                .map(|n| dir.join(format!("{n}{k}.npy")))
        })
        .collect();
    for ((case, x), paths) in cases.iter().zip(&paths) {
        write_npy(&paths[0], x).unwrap();
        write_npy(&paths[3], &case.binned).unwrap();
        let [fz, fy, fx] = case.factors;
        let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        lines += &format!(
            "{} {fz} {fy} {fx} {} {} {}\n",
            files.join(" "),
            case.reduce,
            case.binned.dtype(),
            case.decode
        );
    }
    let mut child = Command::new("python3")
        .args(["-c", PEER])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |path: &Path| {
        let source = RawSource::open_npy(path).unwrap();
        source.read_slab(0..source.shape()[0]).unwrap()
    };
    paths
        .iter()
        .map(|p| [read(&p[1]), read(&p[2]), read(&p[4])])
        .collect()
}

/// The largest difference between `a` and `b` (same dtype and shape) in units in the last
/// place of their float type, or in integer steps.
fn largest_ulps(a: &NdArray, b: &NdArray) -> u64 {
    assert_eq!((a.dtype(), a.shape()), (b.dtype(), b.shape()));
    let ordered = |bits: i64, sign: i64| if bits < 0 { sign - bits } else { bits };
    with_array!(a, x => {
        let y = photonqa::data::typed_like(x, b).expect("same dtype");
        x.iter()
            .zip(y.iter())
            .map(|(&p, &q)| match a.dtype() {
                DType::Float32 => {
                    let key = |v: f64| ordered((v as f32).to_bits() as i32 as i64, i32::MIN as i64);
                    key(p.to_f64()).abs_diff(key(q.to_f64()))
                }
                DType::Float64 => {
                    let key = |v: f64| ordered(v.to_bits() as i64, i64::MIN);
                    key(p.to_f64()).abs_diff(key(q.to_f64()))
                }
                _ => (p.to_f64() - q.to_f64()).abs() as u64,
            })
            .max()
            .unwrap_or(0)
    })
}

/// The largest `|a - b| / |b|` (same dtype and shape; `b` nonzero where `a` differs).
fn largest_relative(a: &NdArray, b: &NdArray) -> f64 {
    let (a, b) = (a.to_f64(), b.to_f64());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| if x == y { 0.0 } else { (x - y).abs() / y.abs() })
        .fold(0.0, f64::max)
}

/// A deterministic array of `shape` in `dtype`: a ramp plus a pseudo-random texture, values
/// in 0..60000 (so a uint16 copy neither clips nor is constant).
fn synthetic(shape: &[usize], dtype: DType) -> NdArray {
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n)
        .map(|i| (i * 37 % 997) as f64 * 50.0 + (i * 7919 % 1009) as f64 / 7.0)
        .collect();
    in_dtype(&values, shape, dtype)
}

/// `values` of `shape` converted to `dtype` (integers rounded ties to even).
fn in_dtype(values: &[f64], shape: &[usize], dtype: DType) -> NdArray {
    with_dtype!(dtype, T => ndarray::ArrayD::from_shape_vec(
        shape.to_vec(),
        values.iter().map(|&v| T::from_f64(v)).collect(),
    )
    .unwrap()
    .into_nd())
}

#[test]
fn bin_matches_numpy_reshape_mean_and_reduceat() {
    if !common::python_peers("import numpy", "NumPy") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tooth = common::tooth_projections(12);
    assert_eq!(tooth.dtype(), DType::Float32);
    let counts: Vec<f64> = tooth.to_f64().iter().copied().collect();
    let tooth_counts = in_dtype(&counts, tooth.shape(), DType::Uint16);
    let inputs: Vec<(&str, NdArray)> = vec![
        ("tooth float32", tooth.clone()),
        ("tooth uint16", tooth_counts),
        ("synthetic float64", synthetic(&[7, 9, 11], DType::Float64)),
        ("synthetic float32", synthetic(&[7, 9, 11], DType::Float32)),
        ("synthetic uint16", synthetic(&[7, 9, 11], DType::Uint16)),
        (
            "synthetic 2-D float64",
            synthetic(&[13, 10], DType::Float64),
        ),
    ];
    // Factors that divide the tooth's axes (reshape-mean), and factors that leave short
    // trailing blocks on every axis (reduceat).
    let factors: [[i64; 3]; 4] = [[1, 2, 2], [3, 2, 4], [5, 1, 3], [2, 2, 3]];
    let mut cases = Vec::new();
    for (name, x) in &inputs {
        for factors in factors {
            if x.shape().len() == 2 && factors[0] > 1 {
                continue;
            }
            for (reduce, decode) in [
                ("mean", "replicate"),
                ("sum", "replicate"),
                ("mean", "linear"),
                ("sum", "linear"),
            ] {
                let (binned, decoded) = ours(x, factors, reduce, decode);
                let name = format!("{name} {factors:?} {reduce} {decode}");
                cases.push((
                    Case {
                        name,
                        factors,
                        reduce,
                        decode,
                        binned,
                        decoded,
                    },
                    x.clone(),
                ));
            }
        }
    }
    let peers = peer(dir.path(), &cases);
    for ((case, x), [want_binned, want_decoded, decoded_ours]) in cases.iter().zip(&peers) {
        let Case {
            name,
            factors,
            binned,
            decoded,
            ..
        } = case;
        let (off_binned, off_decoded) = (
            largest_ulps(binned, want_binned),
            largest_ulps(decoded, want_decoded),
        );
        println!(
            "{name}: {} -> {:?} {}: binned {off_binned} ulp, decoded {off_decoded} ulp",
            x.dtype(),
            binned.shape(),
            binned.dtype()
        );
        // The decoder alone, on the same binned array: SciPy's zoom and NumPy's repeat bit for
        // bit (the same float64 operations in the same order).
        assert_eq!(
            largest_ulps(decoded, decoded_ours),
            0,
            "{name}: the decoder differs from its peer"
        );
        if binned.dtype() == DType::Float64 {
            // NumPy adds a block's values in another order (pairwise over the reduced
            // axes, or axis by axis with reduceat): each order's sum of n positive
            // values is within (n - 1) u of the exact one (u = 2^-53), so the two
            // within 2 (n - 1) u of each other, plus one rounding of the division; the
            // decoder's interpolation adds no more than a few roundings of such values.
            let block = factors.iter().product::<i64>() as f64;
            let allowed = (2.0 * (block - 1.0) + 4.0) * f64::EPSILON / 2.0;
            let (rel_binned, rel_decoded) = (
                largest_relative(binned, want_binned),
                largest_relative(decoded, want_decoded),
            );
            assert!(
                rel_binned <= allowed && rel_decoded <= allowed,
                "{name}: binned differs by {rel_binned:e}, decoded by {rel_decoded:e} relative (allowed {allowed:e})"
            );
        } else {
            // Float32 and integer results are float64 values rounded once, equal bit
            // for bit (measured on these data; a float64 sum one rounding from a
            // float32 tie could round the other way).
            assert!(
                off_binned == 0 && off_decoded == 0,
                "{name}: binned differs by {off_binned} ulp, decoded by {off_decoded} ulp"
            );
        }
    }
}
