//! `denoise`: filters each 2-D plane (the last two axes) of a 3-D array before compression,
//! with a Gaussian, median or total-variation filter; decode is the identity (the filtered
//! array is what the codecs after it see, and what the metrics compare with the original).
//!
//! Denoising before a lossy codec can raise its ratio at equal science: the codec no longer
//! spends bits on noise. The filters are those of the Python peers, to their definitions:
//! - `gaussian`: `scipy.ndimage.gaussian_filter(plane, sigma, mode="reflect", truncate=4.0)`:
//!   separable correlation with the weights `exp(-x^2 / (2 sigma^2))`, `x = -r..=r`,
//!   `r = floor(4 sigma + 0.5)`, normalised to sum 1, along axis 0 then axis 1 of the plane;
//! - `median`: `scipy.ndimage.median_filter(plane, size, mode="reflect")`: the median of the
//!   `size x size` window centred on each pixel (`size` odd, so the median is one of them);
//! - `tv`: `skimage.restoration.denoise_tv_chambolle(plane, weight)`: Chambolle's projection
//!   algorithm for the Rudin-Osher-Fatemi total-variation model (A. Chambolle, "An algorithm
//!   for total variation minimization and applications", J. Math. Imaging Vis. 20 (2004)
//!   89-97, doi:10.1023/B:JMIV.0000011325.36760.1e), step `1/4`, stopped when the energy per
//!   pixel changes by less than `2e-4` of its first value, or after `max_iter` iterations.
//!
//! Beyond the edges the planes are mirrored about the edge pixels' outer sides
//! (`d c b a | a b c d | d c b a`, SciPy's `reflect`). Values are filtered in float64; float
//! inputs are returned in their dtype, integer inputs rounded to the nearest integer (ties to
//! even) and clamped to their dtype. The TV weight is in the data's units (scikit-image first
//! scales integer images to `[0, 1]`; photonqa does not). Each plane is filtered on its own, so
//! the result does not depend on how the array is cut into chunks along axis 0; a 2-D input
//! (one image, whose chunks are rows) is refused. Written here: the filters are short, and the
//! image-processing crates (`imageproc`, `image`) have no SciPy-compatible reflect mode,
//! float64 planes or Chambolle's TV.

use ndarray::ArrayD;

use crate::data::{Element, IntoNdArray, NdArray, c_order};
use crate::pipeline::params::Default;
use crate::pipeline::{
    ArrayToArray, CodecError, ParamDef, ParamKind, Stage, StageConfig, StageDef, StageInput,
    StageKind,
};
use crate::with_array;

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "denoise",
    aliases: &[],
    kind: StageKind::ArrayToArray,
    summary: "Gaussian, median or total-variation (Chambolle) filter of each 2-D plane before compression (SciPy / scikit-image definitions)",
    lossless: false,
    params: &[
        ParamDef {
            name: "filter",
            kind: ParamKind::Choice(&["gaussian", "median", "tv"]),
            default: Default::Str("gaussian"),
            doc: "the filter; its strength is the parameter of the same meaning below",
        },
        ParamDef {
            name: "sigma",
            kind: ParamKind::Float { min: 0.0, max: 1e3 },
            default: Default::Derived("required with filter = \"gaussian\""),
            doc: "standard deviation of the Gaussian in pixels, > 0",
        },
        ParamDef {
            name: "size",
            kind: ParamKind::Int { min: 1, max: 99 },
            default: Default::Derived("required with filter = \"median\""),
            doc: "width of the square median window in pixels, odd",
        },
        ParamDef {
            name: "weight",
            kind: ParamKind::Float {
                min: 0.0,
                max: f64::MAX,
            },
            default: Default::Derived("required with filter = \"tv\""),
            doc: "total-variation weight in the data's units, > 0 (larger: smoother)",
        },
        ParamDef {
            name: "max_iter",
            kind: ParamKind::Int {
                min: 1,
                max: 100_000,
            },
            default: Default::Int(200),
            doc: "most iterations of the TV filter (scikit-image's default)",
        },
    ],
    create,
};

/// The strength parameter of each filter.
const STRENGTHS: [(&str, &str); 3] = [("gaussian", "sigma"), ("median", "size"), ("tv", "weight")];

/// Relative change of the TV energy per pixel (of its first value) that ends the iterations
/// (scikit-image's `eps`).
const TV_EPS: f64 = 2e-4;

/// Half-width of the Gaussian in standard deviations (SciPy's `truncate`).
const TRUNCATE: f64 = 4.0;

fn create(config: &StageConfig, input: StageInput) -> Result<Stage, String> {
    let filter = config.str("filter");
    config.selected("filter", &STRENGTHS)?;
    let filter = match filter {
        "gaussian" => {
            let sigma = config.float("sigma");
            if sigma <= 0.0 {
                return Err(format!("sigma = {sigma} must be > 0"));
            }
            Filter::Gaussian(gaussian_weights(sigma))
        }
        "median" => {
            let size = config.int("size");
            if size % 2 == 0 {
                return Err(format!(
                    "size = {size} must be odd (the window is centred on its pixel)"
                ));
            }
            Filter::Median(size as usize)
        }
        _ => {
            let weight = config.float("weight");
            if weight <= 0.0 {
                return Err(format!("weight = {weight} must be > 0"));
            }
            Filter::Tv {
                weight,
                max_iter: config.int("max_iter") as usize,
            }
        }
    };
    Ok(Stage::ArrayToArray(
        Box::new(Denoise { filter }),
        input.dtype,
    ))
}

/// A filter and its settings.
enum Filter {
    /// The normalised Gaussian weights, `2 r + 1` of them.
    Gaussian(Vec<f64>),
    /// The median window's width (odd).
    Median(usize),
    /// Chambolle's total-variation filter.
    Tv { weight: f64, max_iter: usize },
}

struct Denoise {
    filter: Filter,
}

impl ArrayToArray for Denoise {
    fn encode(&self, input: NdArray) -> Result<NdArray, CodecError> {
        let shape = input.shape().to_vec();
        let [_, n0, n1] = shape[..] else {
            return Err(CodecError::new(
                DEF.id,
                format!(
                    "filters the 2-D planes of a 3-D array (one chunk holds whole planes), got a chunk of shape {shape:?}"
                ),
            ));
        };
        Ok(with_array!(input, a => self.filter.planes(&a, [n0, n1]).into_nd()))
    }

    fn decode(&self, encoded: NdArray, _shape: &[usize]) -> Result<NdArray, CodecError> {
        Ok(encoded)
    }
}

impl Filter {
    /// Every plane `[n0, n1]` of the 3-D array `a` filtered, in `a`'s element type.
    fn planes<T: Element>(&self, a: &ArrayD<T>, [n0, n1]: [usize; 2]) -> ArrayD<T> {
        // Converted to float64 a plane at a time: a chunk-sized float64 copy would double the
        // stage's memory for nothing.
        let values = c_order(a);
        let mut plane = Vec::with_capacity(n0 * n1);
        let mut out = Vec::with_capacity(values.len());
        for x in values.chunks_exact((n0 * n1).max(1)) {
            plane.clear();
            plane.extend(x.iter().map(|v| v.to_f64()));
            out.extend(self.plane(&plane, [n0, n1]).into_iter().map(T::from_f64));
        }
        ArrayD::from_shape_vec(a.shape(), out).expect("one value per input value")
    }

    /// The filtered plane `x` of shape `[n0, n1]`, in C order.
    fn plane(&self, x: &[f64], [n0, n1]: [usize; 2]) -> Vec<f64> {
        match self {
            Filter::Gaussian(weights) => {
                let along_0 = correlate(x, [n0, n1], weights, 0);
                correlate(&along_0, [n0, n1], weights, 1)
            }
            Filter::Median(size) => median(x, [n0, n1], *size),
            Filter::Tv { weight, max_iter } => tv_chambolle(x, [n0, n1], *weight, *max_iter),
        }
    }
}

/// SciPy's Gaussian kernel (`scipy.ndimage._gaussian_kernel1d`, order 0): `exp(-x^2 / (2
/// sigma^2))` for `x = -r..=r`, `r = floor(truncate sigma + 0.5)`, divided by their sum.
fn gaussian_weights(sigma: f64) -> Vec<f64> {
    let radius = (TRUNCATE * sigma + 0.5) as i64;
    let weights: Vec<f64> = (-radius..=radius)
        .map(|x| (-0.5 / (sigma * sigma) * (x * x) as f64).exp())
        .collect();
    let sum: f64 = weights.iter().sum();
    weights.iter().map(|w| w / sum).collect()
}

/// Index `i` (any integer) mirrored into `0..n` with SciPy's `reflect` extension (period
/// `2 n`: `d c b a | a b c d | d c b a`).
fn reflect(i: i64, n: usize) -> usize {
    let period = 2 * n as i64;
    let i = i.rem_euclid(period);
    (if i < n as i64 { i } else { period - 1 - i }) as usize
}

/// Correlation of the plane `x` (`[n0, n1]`, C order) with `weights` (centred) along `axis`.
fn correlate(x: &[f64], [n0, n1]: [usize; 2], weights: &[f64], axis: usize) -> Vec<f64> {
    let radius = (weights.len() / 2) as i64;
    let mut out = vec![0.0; x.len()];
    for r in 0..n0 {
        for c in 0..n1 {
            out[r * n1 + c] = weights
                .iter()
                .zip(-radius..)
                .map(|(w, k)| {
                    let at = if axis == 0 {
                        reflect(r as i64 + k, n0) * n1 + c
                    } else {
                        r * n1 + reflect(c as i64 + k, n1)
                    };
                    w * x[at]
                })
                .sum();
        }
    }
    out
}

/// The median of the `size x size` window (odd `size`, mirrored beyond the edges) around each
/// pixel of the plane `x`.
fn median(x: &[f64], [n0, n1]: [usize; 2], size: usize) -> Vec<f64> {
    let half = (size / 2) as i64;
    let mut window = Vec::with_capacity(size * size);
    let mut out = vec![0.0; x.len()];
    for r in 0..n0 {
        for c in 0..n1 {
            window.clear();
            for dr in -half..=half {
                let row = reflect(r as i64 + dr, n0) * n1;
                for dc in -half..=half {
                    window.push(x[row + reflect(c as i64 + dc, n1)]);
                }
            }
            let middle = window.len() / 2;
            out[r * n1 + c] = *window.select_nth_unstable_by(middle, f64::total_cmp).1;
        }
    }
    out
}

/// Chambolle's projection algorithm for `min_u |u - x|^2 / (2 weight) + TV(u)` on the plane
/// `x`, as scikit-image iterates it (`_denoise_tv_chambolle_nd` with two dimensions): the dual
/// field `p` (one component per axis, forward differences, 0 on the last row or column) is
/// updated `p <- (p - tau g) / (1 + tau |g| / weight)` with `g` the gradient of
/// `u = x - div p` and `tau = 1/4`; the energy per pixel `E = (|div p|^2 + weight sum |g|) / N`
/// is computed before each update, and the iterations stop when it changes by less than
/// `2e-4` of its first value (or after `max_iter`), returning the `u` of that iteration.
fn tv_chambolle(x: &[f64], [n0, n1]: [usize; 2], weight: f64, max_iter: usize) -> Vec<f64> {
    let n = x.len();
    let tau = 0.25;
    let (mut p0, mut p1) = (vec![0.0; n], vec![0.0; n]);
    let (mut g0, mut g1) = (vec![0.0; n], vec![0.0; n]);
    let mut d = vec![0.0; n];
    let mut u = x.to_vec();
    let (mut first, mut previous) = (0.0, 0.0);
    for i in 0..max_iter {
        if i > 0 {
            // d = div p with backward differences (the negative adjoint of the gradient).
            for r in 0..n0 {
                for c in 0..n1 {
                    let at = r * n1 + c;
                    let mut v = -p0[at] - p1[at];
                    if r > 0 {
                        v += p0[at - n1];
                    }
                    if c > 0 {
                        v += p1[at - 1];
                    }
                    d[at] = v;
                }
            }
            for ((u, x), d) in u.iter_mut().zip(x).zip(&d) {
                *u = x + d;
            }
        }
        let mut energy: f64 = d.iter().map(|v| v * v).sum();
        for r in 0..n0 {
            for c in 0..n1 {
                let at = r * n1 + c;
                g0[at] = if r + 1 < n0 { u[at + n1] - u[at] } else { 0.0 };
                g1[at] = if c + 1 < n1 { u[at + 1] - u[at] } else { 0.0 };
            }
        }
        let mut total_variation = 0.0;
        for at in 0..n {
            let norm = (g0[at] * g0[at] + g1[at] * g1[at]).sqrt();
            total_variation += norm;
            let scale = 1.0 + norm * (tau / weight);
            p0[at] = (p0[at] - tau * g0[at]) / scale;
            p1[at] = (p1[at] - tau * g1[at]) / scale;
        }
        energy = (energy + weight * total_variation) / n as f64;
        if i == 0 {
            (first, previous) = (energy, energy);
        } else if (previous - energy).abs() < TV_EPS * first {
            break;
        } else {
            previous = energy;
        }
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DType;
    use crate::pipeline::ParamValue;

    #[test]
    fn reflect_mirrors_about_the_outer_sides() {
        // np.pad(np.arange(4), 5, mode="symmetric"), SciPy's `reflect`.
        let mirrored: Vec<usize> = (-5..9).map(|i| reflect(i, 4)).collect();
        assert_eq!(mirrored, [3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0]);
    }

    #[test]
    fn gaussian_weights_are_scipys() {
        // scipy.ndimage._filters._gaussian_kernel1d(1.0, 0, 4), SciPy 1.17.
        let w = gaussian_weights(1.0);
        assert_eq!(w.len(), 9);
        for (got, want) in w.iter().zip([
            0.00013383062461474175,
            0.0044318616200312655,
            0.05399112742070441,
            0.24197144565660073,
            0.39894346935609776,
        ]) {
            assert!((got / want - 1.0).abs() < 1e-14, "{got} vs {want}");
        }
    }

    fn built(params: Vec<(&'static str, ParamValue)>) -> Result<Stage, String> {
        let mut all = vec![("max_iter", ParamValue::Int(200))];
        all.extend(params);
        let config = StageConfig {
            stage: DEF.id,
            params: all,
        };
        create(
            &config,
            StageInput {
                dtype: DType::Float32,
            },
        )
    }

    #[test]
    fn bad_settings_and_2d_chunks_are_one_line_errors() {
        let filter = |f: &str| ("filter", ParamValue::Str(f.into()));
        let refused = |params| built(params).err().expect("refused");
        assert_eq!(
            refused(vec![filter("median"), ("size", ParamValue::Int(4))]),
            "size = 4 must be odd (the window is centred on its pixel)"
        );
        assert_eq!(refused(vec![filter("tv")]), "filter = \"tv\" needs weight");
        assert_eq!(
            refused(vec![filter("gaussian"), ("size", ParamValue::Int(3))]),
            "size is set but filter = \"gaussian\" (use filter = \"median\", or sigma)"
        );
        let Ok(Stage::ArrayToArray(stage, DType::Float32)) =
            built(vec![filter("gaussian"), ("sigma", ParamValue::Float(1.0))])
        else {
            panic!("a Gaussian filter of float32 builds");
        };
        let image = ndarray::ArrayD::<f32>::zeros(vec![4, 5]).into_nd();
        let error = stage.encode(image).expect_err("a 2-D chunk is refused");
        assert!(
            error.to_string().contains("got a chunk of shape [4, 5]"),
            "{error}"
        );
    }

    #[test]
    fn median_of_a_plane_with_one_outlier_removes_it() {
        let mut x = vec![1.0; 25];
        x[12] = 100.0;
        assert_eq!(median(&x, [5, 5], 3), vec![1.0; 25]);
    }
}
