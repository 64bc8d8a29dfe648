//! `sz3`: the SZ3 error-bounded lossy compressor (Liang et al. 2023, doi:10.1109/TBDATA.2022.3201176)
//! through `numcodecs-sz3` (SZ3 3.3.2 vendored in `sz3-sys`), one stream per chunk.
//!
//! Modes and what each promises (checked on every run, see [`crate::pipeline::Promise`]):
//! - `abs`: `|y - x| <= abs_error` for every value;
//! - `rel`: `|y - x| <= rel_error * (max - min)` of the chunk (SZ3's "relative" mode is
//!   relative to the value range of what it compresses: one chunk);
//! - `psnr`: PSNR of the chunk `>= psnr` dB, with the chunk's value range as peak;
//! - `l2`: `sqrt(sum (y - x)^2) <= l2_norm` over the chunk.
//!
//! SZ3 turns `psnr` and `l2` into an absolute bound by assuming uniformly distributed errors,
//! so they are targets rather than guarantees; the check reports how they fare.

use crate::data::{DType, IntoNdArray, NdArray};
use crate::pipeline::params::{ANY_FLOAT, Default};
use crate::pipeline::stages::guard::{self, Numcodecs};
use crate::pipeline::{
    ArrayToBytes, CodecError, ParamDef, ParamKind, Promise, Stage, StageConfig, StageDef,
    StageInput, StageKind,
};
use crate::{with_array, with_dtype};

use numcodecs_sz3::{Sz3ErrorBound, Sz3Predictor};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "sz3",
    aliases: &[],
    kind: StageKind::ArrayToBytes,
    summary: "SZ3 error-bounded lossy compression (abs, rel, psnr or l2 bound), checked on every run",
    lossless: false,
    params: &[
        ParamDef {
            name: "mode",
            kind: ParamKind::Choice(&["abs", "rel", "psnr", "l2"]),
            default: Default::Str("abs"),
            doc: "error bound mode; its bound is the parameter of the same meaning below",
        },
        ParamDef {
            name: "abs_error",
            kind: ANY_FLOAT,
            default: Default::Derived("required with mode = \"abs\""),
            doc: "absolute error bound, > 0",
        },
        ParamDef {
            name: "rel_error",
            kind: ANY_FLOAT,
            default: Default::Derived("required with mode = \"rel\""),
            doc: "error bound relative to the chunk's value range, in (0, 1]",
        },
        ParamDef {
            name: "psnr",
            kind: ANY_FLOAT,
            default: Default::Derived("required with mode = \"psnr\""),
            doc: "PSNR target in dB (peak: the chunk's value range), > 0",
        },
        ParamDef {
            name: "l2_norm",
            kind: ANY_FLOAT,
            default: Default::Derived("required with mode = \"l2\""),
            doc: "bound on the L2 norm of the chunk's error, > 0",
        },
        ParamDef {
            name: "predictor",
            kind: ParamKind::Choice(&[
                "interpolation-lorenzo",
                "interpolation",
                "lorenzo",
                "lorenzo-regression",
                "regression",
            ]),
            default: Default::Str("interpolation-lorenzo"),
            doc: "SZ3's predictor",
        },
    ],
    create,
};

/// The bound parameter of each mode.
const BOUNDS: [(&str, &str); 4] = [
    ("abs", "abs_error"),
    ("rel", "rel_error"),
    ("psnr", "psnr"),
    ("l2", "l2_norm"),
];

fn create(config: &StageConfig, input: StageInput) -> Result<Stage, String> {
    let mode = config.str("mode");
    let wanted = config.selected("mode", &BOUNDS)?;
    let value = config.float(wanted);
    if value.is_nan() || value <= 0.0 {
        return Err(format!("{wanted} = {value} must be > 0"));
    }
    let (bound, promise) = match mode {
        "abs" => (
            Sz3ErrorBound::Absolute { abs: value },
            Promise::AbsError(value),
        ),
        "rel" => {
            if value > 1.0 {
                return Err(format!(
                    "rel_error = {value} must be <= 1 (a fraction of the value range)"
                ));
            }
            (
                Sz3ErrorBound::Relative { rel: value },
                Promise::RelError(value),
            )
        }
        "psnr" => (
            Sz3ErrorBound::PS2NR { psnr: value },
            Promise::Psnr {
                db: value,
                peak: None,
                per_plane: false,
            },
        ),
        _ => (Sz3ErrorBound::L2Norm { l2: value }, Promise::L2Norm(value)),
    };
    let predictor = match config.str("predictor") {
        "interpolation-lorenzo" => Sz3Predictor::InterpolationLorenzo,
        "interpolation" => Sz3Predictor::Interpolation,
        "lorenzo" => Sz3Predictor::Lorenzo,
        "lorenzo-regression" => Sz3Predictor::LorenzoRegression,
        _ => Sz3Predictor::Regression,
    };
    Ok(Stage::ArrayToBytes(Box::new(Sz3 {
        dtype: input.dtype,
        bound,
        predictor,
        promise,
    })))
}

struct Sz3 {
    dtype: DType,
    bound: Sz3ErrorBound,
    predictor: Sz3Predictor,
    promise: Promise,
}

impl ArrayToBytes for Sz3 {
    fn encode(&self, input: &NdArray) -> Result<Vec<u8>, CodecError> {
        let encoded = with_array!(input, a => guard::with_view(a, |view| {
            numcodecs_sz3::compress(view, Some(&self.predictor), &self.bound)
        }))
        .map_err(|e| CodecError::new(DEF.id, guard::chain_message(&e)))?;
        Ok(guard::seal(encoded))
    }

    fn decode(&self, bytes: &[u8], shape: &[usize]) -> Result<NdArray, CodecError> {
        let payload = guard::open(DEF.id, bytes)?;
        with_dtype!(self.dtype, T => {
            let decoded = guard::decode_into::<T, _>(shape, |view| {
                numcodecs_sz3::decompress_into(payload, T::any_mut(view))
            })
            .map_err(|e| CodecError::new(DEF.id, format!("corrupt stream: {}", guard::chain_message(&e))))?;
            Ok(decoded.into_nd())
        })
    }

    fn promised(&self, _shape: &[usize]) -> Option<Promise> {
        Some(self.promise)
    }
}
