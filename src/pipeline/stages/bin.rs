//! `bin`: k-fold binning (detector binning, volume blocking) before compression: each block of
//! `factor_z x factor_y x factor_x` values becomes one value, their mean or their sum, and the
//! decoder brings the blocks' means (a sum divided back by the block's element count) to the
//! input's shape, so every metric compares element by element: `decode = "replicate"` repeats
//! each mean over its block, `decode = "linear"` interpolates between them as
//! `scipy.ndimage.zoom(means, shape / binned_shape, order=1, grid_mode=True, mode="nearest")`
//! does (bit for bit: `tests/bin_crosscheck.rs`): element `o` of an axis of `n` elements reads
//! the means at `(o + 1/2) m / n - 1/2` (`m` means), linearly between its two neighbours, the
//! edge mean beyond the first and last. Where the factor divides the axis that is the centre of
//! each block; a short trailing block makes the scale `m / n` slightly other than `1 / f`.
//!
//! Binning trades resolution for rate: the array->bytes stage packs `1 / (fz fy fx)` of the
//! values (its promised bound is about the binned chunk), and averaging `n` values of
//! independent noise divides its variance by `n`.
//!
//! - **Axes.** `factor_x` bins the last axis (a detector's columns), `factor_y` the one before
//!   (rows), `factor_z` the one before that (axis 0 of a 3-D array: planes or frames); any
//!   leading axes beyond are not binned. A factor above 1 on an axis the array lacks is an
//!   error.
//! - **Remainders.** A trailing block that the axis's length leaves short is binned over the
//!   values it has: its mean is over fewer values, its sum is a sum of fewer values (and is
//!   divided by that count when decoded). This is `numpy.add.reduceat` over the block starts
//!   `0, f, 2f, ...` of each axis, divided by the block's element count for the mean; for
//!   lengths that are multiples of the factors, NumPy's
//!   `x.reshape(nz, fz, ny, fy, nx, fx).mean(axis=(1, 3, 5))`.
//! - **Chunks.** photonqa streams the input in chunks of rows along axis 0 and bins each chunk
//!   on its own, so a block never spans two chunks. When `factor_z` (of a 3-D input; `factor_y`
//!   of a 2-D one, whose chunks are rows) divides the scenario's `chunk_slices`, the blocks of
//!   the chunks are those of the whole array and the result does not depend on the chunking;
//!   otherwise the last block of every chunk would be a short one, and a run refuses the
//!   scenario in one line (`Chain::block_straddling_stage`; the stage itself, given such a
//!   chunk, applies the remainder rule to it). The
//!   other axes are whole in every chunk. `decode = "linear"` interpolates within each chunk
//!   (the edge means beyond its first and last planes), so along axis 0 it depends on where the
//!   chunks end.
//! - **Arithmetic.** Sums are taken in float64 in C order within the block, the mean is the sum
//!   divided by the block's element count; float results are then rounded to the input's
//!   float type, integer means to the nearest integer (ties to even) as every stage converts
//!   ([`crate::data::Element::from_f64`]). For integers up to 32 bits every sum is exact
//!   (a block has at most `64^3 = 2^18` values); 64-bit integers beyond `2^53` are rounded to
//!   float64 first.
//! - **Sum of integers.** A sum of `n` values can overflow the input's type, so `reduce = "sum"`
//!   encodes integers into the narrowest integer type of the same signedness that holds `n`
//!   times the input type's extremes (uint16 binned 2x2: uint32); 64-bit integers are refused
//!   (no wider type) unless every factor is 1. Floats keep their type.

use ndarray::{ArrayD, IxDyn};

use crate::data::{DType, Element, IntoNdArray, NdArray, c_order};
use crate::pipeline::params::Default;
use crate::pipeline::{
    ArrayToArray, CodecError, ParamDef, ParamKind, Stage, StageConfig, StageDef, StageInput,
    StageKind,
};
use crate::{with_array, with_dtype};

/// Largest bin factor along one axis.
const MAX_FACTOR: i64 = 64;

const FACTOR: ParamKind = ParamKind::Int {
    min: 1,
    max: MAX_FACTOR,
};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "bin",
    aliases: &["binning"],
    kind: StageKind::ArrayToArray,
    summary: "k-fold binning: each block of factor_z x factor_y x factor_x values (the last three axes; a short trailing block, per chunk along axis 0, over the values it has) becomes its mean or sum, as NumPy's reshape-mean; decoded by repeating each block's mean (a sum divided by the block's count) over it, or by linear interpolation between the means as SciPy's zoom",
    lossless: false,
    params: &[
        ParamDef {
            name: "factor_z",
            kind: FACTOR,
            default: Default::Int(1),
            doc: "block length along the third-last axis (axis 0 of a 3-D array: planes, frames); 1: not binned",
        },
        ParamDef {
            name: "factor_y",
            kind: FACTOR,
            default: Default::Int(1),
            doc: "block length along the second-last axis (rows); 1: not binned",
        },
        ParamDef {
            name: "factor_x",
            kind: FACTOR,
            default: Default::Int(1),
            doc: "block length along the last axis (columns); 1: not binned",
        },
        ParamDef {
            name: "reduce",
            kind: ParamKind::Choice(&["mean", "sum"]),
            default: Default::Str("mean"),
            doc: "what a block becomes: its mean (the input's dtype) or its sum (integers: a wider integer dtype that cannot overflow)",
        },
        ParamDef {
            name: "decode",
            kind: ParamKind::Choice(&["replicate", "linear"]),
            default: Default::Str("replicate"),
            doc: "how the block means come back to the input's shape: each repeated over its block, or interpolated linearly between them (scipy.ndimage.zoom, order 1, grid_mode, nearest)",
        },
    ],
    create,
};

fn create(config: &StageConfig, input: StageInput) -> Result<Stage, String> {
    let factors = ["factor_z", "factor_y", "factor_x"].map(|name| config.int(name) as usize);
    let block: usize = factors.iter().product();
    let sum = config.str("reduce") == "sum";
    let encoded = if sum {
        sum_dtype(input.dtype, block)?
    } else {
        input.dtype
    };
    let interpolation = match config.str("decode") {
        "linear" => Interpolation::Linear,
        _ => Interpolation::Replicate,
    };
    Ok(Stage::ArrayToArray(
        Box::new(Bin {
            factors,
            sum,
            interpolation,
            input: input.dtype,
            encoded,
        }),
        encoded,
    ))
}

/// The dtype that holds the sum of `block` values of `dtype` without overflow: floats keep
/// theirs, integers get the narrowest of their signedness that holds `block` times their
/// extremes.
fn sum_dtype(dtype: DType, block: usize) -> Result<DType, String> {
    if dtype.is_float() || block == 1 {
        return Ok(dtype);
    }
    let signed = matches!(
        dtype,
        DType::Int8 | DType::Int16 | DType::Int32 | DType::Int64
    );
    let bits = 8 * dtype.size() as i32;
    // |min| for signed types (one more than max), max for unsigned ones.
    let extreme = if signed {
        2f64.powi(bits - 1)
    } else {
        2f64.powi(bits) - 1.0
    };
    let needed = extreme * block as f64;
    let candidates = if signed {
        [DType::Int8, DType::Int16, DType::Int32, DType::Int64]
    } else {
        [DType::Uint8, DType::Uint16, DType::Uint32, DType::Uint64]
    };
    candidates
        .into_iter()
        .filter(|wider| wider.size() > dtype.size())
        .find(|wider| {
            let bits = 8 * wider.size() as i32;
            let room = if signed {
                2f64.powi(bits - 1)
            } else {
                2f64.powi(bits) - 1.0
            };
            needed <= room
        })
        .ok_or_else(|| {
            format!(
                "reduce = \"sum\" of {dtype} values can overflow every integer dtype: use reduce = \"mean\""
            )
        })
}

/// How the decoder brings the block means back to the input's shape.
enum Interpolation {
    /// Each mean repeated over its block.
    Replicate,
    /// Linear interpolation between the means (SciPy's `zoom`, order 1).
    Linear,
}

struct Bin {
    /// Block lengths along the third-last, second-last and last axes.
    factors: [usize; 3],
    /// Whether a block becomes its sum (else its mean).
    sum: bool,
    /// How the decoder brings the block means back to the input's shape.
    interpolation: Interpolation,
    /// The input's dtype (what decoding returns).
    input: DType,
    /// The binned array's dtype.
    encoded: DType,
}

/// A chunk's shape seen as `[lead, z, y, x]`: the leading axes beyond the last three folded
/// into `lead`, the axes an array lacks of length 1.
fn as_4d(shape: &[usize]) -> [usize; 4] {
    let rank = shape.len();
    let axis = |from_end: usize| {
        if rank >= from_end {
            shape[rank - from_end]
        } else {
            1
        }
    };
    let lead = shape[..rank.saturating_sub(3)].iter().product();
    [lead, axis(3), axis(2), axis(1)]
}

impl Bin {
    /// The binned shape `[lead, z, y, x]` of a chunk of `shape`, the `[lead, z, y, x]` shape
    /// itself and the factors; an error when a factor above 1 falls on an axis `shape` lacks.
    fn geometry(&self, shape: &[usize]) -> Result<[[usize; 4]; 3], CodecError> {
        const NAMES: [&str; 3] = ["factor_z", "factor_y", "factor_x"];
        for (k, &factor) in self.factors.iter().enumerate() {
            if factor > 1 && shape.len() < 3 - k {
                return Err(CodecError::new(
                    DEF.id,
                    format!(
                        "{} = {factor} bins an axis that a chunk of shape {shape:?} does not have",
                        NAMES[k]
                    ),
                ));
            }
        }
        let full = as_4d(shape);
        let [fz, fy, fx] = self.factors;
        let factors = [1, fz, fy, fx];
        let binned = std::array::from_fn(|k| full[k].div_ceil(factors[k]));
        Ok([binned, full, factors])
    }
}

impl ArrayToArray for Bin {
    fn encoded_shape(&self, shape: &[usize]) -> Result<Vec<usize>, CodecError> {
        self.geometry(shape)?;
        let rank = shape.len();
        Ok(shape
            .iter()
            .enumerate()
            .map(|(axis, &n)| {
                // Axis `axis` is `rank - axis` from the end; factors are of the last three.
                let from_end = rank - axis;
                if from_end <= 3 {
                    n.div_ceil(self.factors[3 - from_end])
                } else {
                    n
                }
            })
            .collect())
    }

    fn encode(&self, input: NdArray) -> Result<NdArray, CodecError> {
        let shape = self.encoded_shape(input.shape())?;
        let [binned, full, factors] = self.geometry(input.shape())?;
        let sums = with_array!(&input, a => block_sums(&c_order(a), full, binned, factors));
        let values = sums.into_iter().enumerate().map(|(at, sum)| {
            if self.sum {
                sum
            } else {
                sum / block_count(at, full, binned, factors) as f64
            }
        });
        Ok(with_dtype!(self.encoded, T => ArrayD::from_shape_vec(
            IxDyn(&shape),
            values.map(T::from_f64).collect(),
        )
        .expect("one value per block")
        .into_nd()))
    }

    fn decode(&self, encoded: NdArray, shape: &[usize]) -> Result<NdArray, CodecError> {
        let expected = self.encoded_shape(shape)?;
        if encoded.dtype() != self.encoded || encoded.shape() != expected {
            return Err(CodecError::new(
                DEF.id,
                format!(
                    "a chunk of {} {shape:?} bins to {} {expected:?}, got {} {:?}",
                    self.input,
                    self.encoded,
                    encoded.dtype(),
                    encoded.shape()
                ),
            ));
        }
        let [binned, full, factors] = self.geometry(shape)?;
        // Each block's mean (a sum divided by the block's count), in float64.
        let means: Vec<f64> = with_array!(&encoded, e => c_order(e)
            .iter()
            .enumerate()
            .map(|(at, v)| if self.sum {
                v.to_f64() / block_count(at, full, binned, factors) as f64
            } else {
                v.to_f64()
            })
            .collect());
        let out = match self.interpolation {
            Interpolation::Replicate => replicate(&means, full, binned, factors),
            Interpolation::Linear => linear(&means, &expected, shape),
        };
        Ok(with_dtype!(self.input, T => ArrayD::from_shape_vec(
            IxDyn(shape),
            out.into_iter().map(T::from_f64).collect(),
        )
        .expect("one value per element")
        .into_nd()))
    }
}

/// Every element of a `full` (`[lead, z, y, x]`) array: the mean of its block.
fn replicate(means: &[f64], full: [usize; 4], binned: [usize; 4], factors: [usize; 4]) -> Vec<f64> {
    let [lead, nz, ny, nx] = full;
    let [_, mz, my, mx] = binned;
    let [_, fz, fy, fx] = factors;
    let mut out = Vec::with_capacity(full.iter().product());
    for l in 0..lead {
        for z in 0..nz {
            for y in 0..ny {
                let row = ((l * mz + z / fz) * my + y / fy) * mx;
                out.extend((0..nx).map(|x| means[row + x / fx]));
            }
        }
    }
    out
}

/// The two taps of linear interpolation for every index `0..n` of an axis of `n` elements from
/// `m` values, as `scipy.ndimage.zoom(order=1, grid_mode=True, mode="nearest")` maps them:
/// output index `o` reads the input at `(o + 1/2) m / n - 1/2`, between its floor `i` (weight
/// `1 - t`) and `i + 1` (weight `t`), indices clamped to `0..m` (the edge value beyond).
fn linear_taps(m: usize, n: usize) -> Vec<[(usize, f64); 2]> {
    let zoom = m as f64 / n as f64;
    let clamp = |i: f64| (i.max(0.0) as usize).min(m.saturating_sub(1));
    (0..n)
        .map(|o| {
            let at = (o as f64 + 0.5) * zoom - 0.5;
            let start = at.floor();
            let t = at - start;
            [(clamp(start), 1.0 - t), (clamp(start + 1.0), t)]
        })
        .collect()
}

/// The block means `means` (C order, shape `binned`) interpolated linearly to `shape` along
/// every axis, as `scipy.ndimage.zoom(means, shape / binned, order=1, grid_mode=True,
/// mode="nearest")` computes it: for each element the `2^rank` corners in C order, each
/// value multiplied by its weights axis by axis, summed in that order.
fn linear(means: &[f64], binned: &[usize], shape: &[usize]) -> Vec<f64> {
    let rank = shape.len();
    let taps: Vec<_> = binned
        .iter()
        .zip(shape)
        .map(|(&m, &n)| linear_taps(m, n))
        .collect();
    let mut strides = vec![1; rank];
    for k in (0..rank.saturating_sub(1)).rev() {
        strides[k] = strides[k + 1] * binned[k + 1];
    }
    let total: usize = shape.iter().product();
    let mut out = Vec::with_capacity(total);
    let mut index = vec![0; rank];
    let mut weights = vec![0.0; rank];
    for _ in 0..total {
        let mut value = 0.0;
        for corner in 0..1usize << rank {
            let mut at = 0;
            for k in 0..rank {
                let (i, w) = taps[k][index[k]][(corner >> (rank - 1 - k)) & 1];
                at += i * strides[k];
                weights[k] = w;
            }
            value += weights.iter().fold(means[at], |c, w| c * w);
        }
        out.push(value);
        // The next index in C order.
        for k in (0..rank).rev() {
            index[k] += 1;
            if index[k] < shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
    out
}

/// The float64 sum of every block of `values` (C order, `[lead, z, y, x]` = `full`), in the
/// blocks' C order (`binned`), each summed in C order within the block.
fn block_sums<T: Element>(
    values: &[T],
    full: [usize; 4],
    binned: [usize; 4],
    factors: [usize; 4],
) -> Vec<f64> {
    let [lead, nz, ny, nx] = full;
    let [_, mz, my, mx] = binned;
    let [_, fz, fy, fx] = factors;
    let mut sums = vec![0.0; binned.iter().product()];
    let mut at = 0;
    // Over the blocks in C order, then over each block's values in C order.
    for l in 0..lead {
        for bz in 0..mz {
            for by in 0..my {
                for bx in 0..mx {
                    let mut sum = 0.0;
                    for z in bz * fz..((bz + 1) * fz).min(nz) {
                        for y in by * fy..((by + 1) * fy).min(ny) {
                            let row = ((l * nz + z) * ny + y) * nx;
                            for x in bx * fx..((bx + 1) * fx).min(nx) {
                                sum += values[row + x].to_f64();
                            }
                        }
                    }
                    sums[at] = sum;
                    at += 1;
                }
            }
        }
    }
    sums
}

/// How many values the block at flat index `at` of the binned array holds (fewer than the
/// factors' product for a trailing block that an axis leaves short).
fn block_count(at: usize, full: [usize; 4], binned: [usize; 4], factors: [usize; 4]) -> usize {
    let mut rest = at;
    let mut count = 1;
    for k in (1..4).rev() {
        let index = rest % binned[k];
        rest /= binned[k];
        count *= factors[k].min(full[k] - index * factors[k]);
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_of_integers_widen_to_a_dtype_that_cannot_overflow() {
        assert_eq!(sum_dtype(DType::Uint8, 4), Ok(DType::Uint16));
        assert_eq!(sum_dtype(DType::Uint8, 257), Ok(DType::Uint16));
        assert_eq!(sum_dtype(DType::Uint8, 258), Ok(DType::Uint32));
        assert_eq!(sum_dtype(DType::Uint16, 4), Ok(DType::Uint32));
        assert_eq!(sum_dtype(DType::Int16, 4), Ok(DType::Int32));
        assert_eq!(sum_dtype(DType::Uint32, 8), Ok(DType::Uint64));
        assert_eq!(sum_dtype(DType::Float32, 8), Ok(DType::Float32));
        assert_eq!(sum_dtype(DType::Int64, 1), Ok(DType::Int64));
        assert_eq!(
            sum_dtype(DType::Int64, 2),
            Err("reduce = \"sum\" of int64 values can overflow every integer dtype: use reduce = \"mean\"".into())
        );
    }

    #[test]
    fn trailing_blocks_count_the_values_they_have() {
        // 5 x 7 binned by 2 x 3: blocks of 2, 2, 1 rows and 3, 3, 1 columns.
        let full = [1, 1, 5, 7];
        let binned = [1, 1, 3, 3];
        let factors = [1, 1, 2, 3];
        let counts: Vec<usize> = (0..9)
            .map(|at| block_count(at, full, binned, factors))
            .collect();
        assert_eq!(counts, [6, 6, 2, 6, 6, 2, 3, 3, 1]);
    }
}
