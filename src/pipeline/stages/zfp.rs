//! `zfp`: the ZFP transform codec (Lindstrom 2014, doi:10.1109/TVCG.2014.2346458) through
//! `numcodecs-zfp` (ZFP 1.0.1 vendored in `zfp-sys`, built with `ZFP_ROUNDING_MODE=ROUND_FIRST`
//! and `ZFP_WITH_TIGHT_ERROR`), one stream per chunk; axes of length 1 are dropped (ZFP blocks
//! are 4^d values for the d remaining axes, at most 4).
//!
//! Modes and what each promises (checked on every run, see [`crate::pipeline::Promise`]):
//! - `accuracy`: `|y - x| <= tolerance` for every value;
//! - `precision`: `precision` bit planes of the transform coefficients; no bound;
//! - `rate`: exactly `round(4^d rate)` bits per block (at least 9 for float32, 12 for float64
//!   blocks: a lower rate is refused). The check allows what ZFP documents beyond the blocks:
//!   the partial blocks at the edges of a chunk are padded, ZFP's header (at most 96 bits) and
//!   word alignment (at most 63 bits), numcodecs' header (dtype, shape, version: at most
//!   `16 + 10 rank` bytes) and photonqa's 4-byte checksum.
//!
//! ZFP compresses int32/int64/float32/float64 and refuses NaN and infinities. photonqa gives it
//! floats: 8- and 16-bit integers as float32 and 32-bit integers as float64 (both exact), and
//! rounds the decoded values back (ties to even, saturated to the dtype), so `accuracy`
//! promises `floor(tolerance + 0.5)` on integer input. 64-bit integers are refused.

use ndarray::ArrayD;
use numcodecs_zfp::{ZfpCompressionMode, ZfpNonFiniteValuesMode};

use crate::data::{DType, Element, IntoNdArray, NdArray};
use crate::pipeline::params::{ANY_FLOAT, Default};
use crate::pipeline::stages::guard::{self, CHECKSUM_BYTES, Numcodecs};
use crate::pipeline::{
    ArrayToBytes, CodecError, ParamDef, ParamKind, Promise, Stage, StageConfig, StageDef,
    StageInput, StageKind,
};
use crate::with_dtype;

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "zfp",
    aliases: &[],
    kind: StageKind::ArrayToBytes,
    summary: "ZFP lossy compression: fixed accuracy (bounded error), precision or rate, checked on every run",
    lossless: false,
    params: &[
        ParamDef {
            name: "mode",
            kind: ParamKind::Choice(&["accuracy", "precision", "rate"]),
            default: Default::Str("accuracy"),
            doc: "accuracy (uses tolerance), precision (uses precision) or rate (uses rate)",
        },
        ParamDef {
            name: "tolerance",
            kind: ANY_FLOAT,
            default: Default::Derived("required with mode = \"accuracy\""),
            doc: "absolute error tolerance, > 0",
        },
        ParamDef {
            name: "precision",
            kind: ParamKind::Int { min: 1, max: 64 },
            default: Default::Derived("required with mode = \"precision\""),
            doc: "bit planes encoded per block",
        },
        ParamDef {
            name: "rate",
            kind: ANY_FLOAT,
            default: Default::Derived("required with mode = \"rate\""),
            doc: "bits per value, > 0 and <= 64 (at least 9 bits per block for float32, 12 for float64)",
        },
    ],
    create,
};

/// The parameter of each mode.
const MODES: [(&str, &str); 3] = [
    ("accuracy", "tolerance"),
    ("precision", "precision"),
    ("rate", "rate"),
];

/// The float type ZFP compresses for an input dtype.
fn working_dtype(input: DType) -> Result<DType, String> {
    match input {
        DType::Float32 | DType::Float64 => Ok(input),
        DType::Uint8 | DType::Int8 | DType::Uint16 | DType::Int16 => Ok(DType::Float32),
        DType::Uint32 | DType::Int32 => Ok(DType::Float64),
        DType::Uint64 | DType::Int64 => Err(format!(
            "cannot compress {input}: zfp gets floats, and float64 does not hold every 64-bit integer"
        )),
    }
}

/// Bits ZFP spends at least on a block of floats of `dtype`: sign and exponent.
fn min_block_bits(dtype: DType) -> u64 {
    if dtype == DType::Float32 { 9 } else { 12 }
}

fn create(config: &StageConfig, input: StageInput) -> Result<Stage, String> {
    let working = working_dtype(input.dtype)?;
    let mode = config.str("mode");
    config.selected("mode", &MODES)?;
    let (zfp_mode, promise) = match mode {
        "accuracy" => {
            let tolerance = config.float("tolerance");
            if tolerance.is_nan() || tolerance <= 0.0 {
                return Err(format!("tolerance = {tolerance} must be > 0"));
            }
            let bound = if input.dtype.is_float() {
                tolerance
            } else {
                (tolerance + 0.5).floor()
            };
            (
                ZfpCompressionMode::FixedAccuracy { tolerance },
                Some(Promise::AbsError(bound)),
            )
        }
        "precision" => {
            let precision = config.int("precision") as u32;
            (ZfpCompressionMode::FixedPrecision { precision }, None)
        }
        _ => {
            let rate = config.float("rate");
            // The lowest rate any block shape allows: the minimum bits over a 4-D block.
            let lowest = min_block_bits(working) as f64 / 256.0;
            if rate.is_nan() || rate <= 0.0 || rate > 64.0 {
                return Err(format!("rate = {rate} must be in (0, 64] bits per value"));
            }
            if rate < lowest {
                return Err(format!(
                    "rate = {rate} is too low: zfp spends at least {} bits on every block of {working} values, {lowest} bits per value even for 4-D blocks of 256",
                    min_block_bits(working)
                ));
            }
            (ZfpCompressionMode::FixedRate { rate }, None)
        }
    };
    Ok(Stage::ArrayToBytes(Box::new(Zfp {
        dtype: input.dtype,
        working,
        mode: zfp_mode,
        accuracy: promise,
    })))
}

struct Zfp {
    dtype: DType,
    working: DType,
    mode: ZfpCompressionMode,
    accuracy: Option<Promise>,
}

/// The shape ZFP sees: axes of length 1 dropped (a single value stays one axis of 1).
fn zfp_shape(shape: &[usize]) -> Vec<usize> {
    let kept: Vec<usize> = shape.iter().copied().filter(|&n| n != 1).collect();
    if kept.is_empty() && shape.iter().all(|&n| n == 1) {
        vec![1]
    } else {
        kept
    }
}

impl Zfp {
    /// Bits per block in fixed-rate mode for blocks of `dims` axes, as `zfp_stream_set_rate`
    /// computes them; an error where ZFP would silently raise them.
    fn block_bits(&self, rate: f64, dims: usize) -> Result<u64, CodecError> {
        let n = 1u64 << (2 * dims);
        let bits = (n as f64 * rate + 0.5).floor() as u64;
        let least = min_block_bits(self.working);
        if bits < least {
            return Err(CodecError::new(
                DEF.id,
                format!(
                    "rate = {rate} is too low for {dims}-D blocks of {}: zfp spends at least {least} bits per block of {n} values ({} bits per value)",
                    self.working,
                    least as f64 / n as f64
                ),
            ));
        }
        Ok(bits)
    }

    /// `a` reshaped to the axes ZFP sees, after checking that ZFP takes it.
    fn prepare<F: Element>(&self, a: &ArrayD<F>) -> Result<ArrayD<F>, CodecError> {
        let shape = zfp_shape(a.shape());
        if shape.len() > 4 {
            return Err(CodecError::new(
                DEF.id,
                format!(
                    "zfp takes at most 4 axes longer than 1, not {:?}",
                    a.shape()
                ),
            ));
        }
        if let ZfpCompressionMode::FixedRate { rate } = self.mode {
            self.block_bits(rate, shape.len())?;
        }
        let data = crate::data::c_order(a).into_owned();
        Ok(ArrayD::from_shape_vec(ndarray::IxDyn(&shape), data).expect("same number of values"))
    }

    fn decompress<F: Element + Numcodecs>(
        &self,
        payload: &[u8],
        shape: &[usize],
    ) -> Result<ArrayD<F>, CodecError> {
        let decoded = guard::decode_into::<F, _>(&zfp_shape(shape), |view| {
            numcodecs_zfp::decompress_into(payload, F::any_mut(view))
        })
        .map_err(|e| {
            CodecError::new(
                DEF.id,
                format!("corrupt stream: {}", guard::chain_message(&e)),
            )
        })?;
        decoded
            .into_shape_with_order(ndarray::IxDyn(shape))
            .map_err(|e| CodecError::new(DEF.id, e.to_string()))
    }
}

impl ArrayToBytes for Zfp {
    fn encode(&self, input: &NdArray) -> Result<Vec<u8>, CodecError> {
        let mode = (&self.mode, ZfpNonFiniteValuesMode::Deny);
        let encoded = match (input, self.working) {
            (NdArray::Float32(a), _) => guard::with_view(&self.prepare(a)?, |view| {
                numcodecs_zfp::compress(view, mode.0, mode.1)
            }),
            (NdArray::Float64(a), _) => guard::with_view(&self.prepare(a)?, |view| {
                numcodecs_zfp::compress(view, mode.0, mode.1)
            }),
            (other, DType::Float32) => {
                let a = self.prepare(&other.to_f64().mapv(|v| v as f32))?;
                guard::with_view(&a, |view| numcodecs_zfp::compress(view, mode.0, mode.1))
            }
            (other, _) => guard::with_view(&self.prepare(&other.to_f64())?, |view| {
                numcodecs_zfp::compress(view, mode.0, mode.1)
            }),
        }
        .map_err(|e| CodecError::new(DEF.id, guard::chain_message(&e)))?;
        Ok(guard::seal(encoded))
    }

    fn decode(&self, bytes: &[u8], shape: &[usize]) -> Result<NdArray, CodecError> {
        let payload = guard::open(DEF.id, bytes)?;
        let decoded = match self.working {
            DType::Float32 => self.decompress::<f32>(payload, shape)?.into_nd(),
            _ => self.decompress::<f64>(payload, shape)?.into_nd(),
        };
        if decoded.dtype() == self.dtype {
            return Ok(decoded);
        }
        let values = decoded.to_f64();
        Ok(with_dtype!(self.dtype, T => values.mapv(T::from_f64).into_nd()))
    }

    fn promised(&self, shape: &[usize]) -> Option<Promise> {
        match self.mode {
            ZfpCompressionMode::FixedRate { rate } => {
                let squeezed = zfp_shape(shape);
                let bits = self.block_bits(rate, squeezed.len()).ok()?;
                let blocks: u64 = squeezed.iter().map(|&n| n.div_ceil(4) as u64).product();
                let stream_bits = (96 + blocks * bits).div_ceil(64) * 64;
                let header_bytes = 16 + 10 * shape.len() + CHECKSUM_BYTES;
                let values: usize = shape.iter().product();
                Some(Promise::BitsPerValue {
                    nominal: rate,
                    bits: (stream_bits + 8 * header_bytes as u64) as f64 / values.max(1) as f64,
                })
            }
            _ => self.accuracy,
        }
    }
}
