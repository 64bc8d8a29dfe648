//! `poisson`: variance-stabilised quantisation of photon counts. The Anscombe transform makes
//! the Poisson noise of every count level about 1, so one quantisation step, given in units of
//! the Poisson sigma, costs the same fraction of the noise in dark and in bright pixels.
//!
//! Encode: `a = 2 sqrt(x + 3/8)`, `c = round(a / step)` (ties to even) stored as `dtype`; a
//! negative, NaN or infinite input, or a code beyond `dtype`, is an error naming the stage.
//! Decode: `a' = c * step`, `x' = max((a' / 2)^2 - 3/8, 0)` (the algebraic inverse, clamped at
//! 0; not the unbiased inverse of Makitalo and Foi), then with `decode = "integer"` rounded to
//! the nearest integer (ties to even), and converted to the input dtype (integer dtypes round
//! ties to even). Since `|a' - a| <= step / 2` and `x' - x = (a' - a)(a' + a) / 4`:
//! `|x' - x| <= (step / 2) sqrt(x + 3/8) + step^2 / 16` (+ 1/2 with `decode = "integer"`), about
//! `step / 2` Poisson sigmas. Zero counts decode to exactly 0 with `decode = "integer"` and
//! `step <= 1`, and with `decode = "real"` when `round(sqrt(3/2) / step) * step <= sqrt(3/2)`
//! (e.g. step 0.1, 0.5, 1, 2; not 0.25, which decodes 0 as 1/64).
//!
//! Reference: F. J. Anscombe, "The transformation of Poisson, binomial and negative-binomial
//! data", Biometrika 35 (1948) 246, doi:10.1093/biomet/35.3-4.246.

use crate::data::{DType, Element, FromNdArray, IntoNdArray, NdArray};
use crate::pipeline::params::Default;
use crate::pipeline::{
    ArrayToArray, CodecError, ParamDef, ParamKind, Stage, StageConfig, StageDef, StageInput,
    StageKind,
};
use crate::{with_array, with_dtype};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "poisson",
    aliases: &["anscombe"],
    kind: StageKind::ArrayToArray,
    summary: "photon counts quantised after the Anscombe transform 2 sqrt(x + 3/8), `step` in Poisson sigmas; integer codes",
    lossless: false,
    params: &[
        ParamDef {
            name: "step",
            kind: ParamKind::Float {
                min: 1e-6,
                max: 100.0,
            },
            default: Default::Float(0.5),
            doc: "quantisation step of the Anscombe transform, in Poisson sigmas (error <= about step / 2 sigma)",
        },
        ParamDef {
            name: "dtype",
            kind: ParamKind::Choice(&["uint8", "uint16", "uint32"]),
            default: Default::Str("uint16"),
            doc: "storage type of the codes (a code beyond it is an error)",
        },
        ParamDef {
            name: "decode",
            kind: ParamKind::Choice(&["real", "integer"]),
            default: Default::Str("real"),
            doc: "decoded counts as the real inverse, or rounded to the nearest integer count",
        },
    ],
    create,
};

fn create(config: &StageConfig, input: StageInput) -> Result<Stage, String> {
    let dtype = DType::parse(config.str("dtype"))?;
    Ok(Stage::ArrayToArray(
        Box::new(Anscombe {
            step: config.float("step"),
            integer: config.str("decode") == "integer",
            dtype,
            input: input.dtype,
        }),
        dtype,
    ))
}

struct Anscombe {
    step: f64,
    integer: bool,
    dtype: DType,
    input: DType,
}

impl Anscombe {
    fn largest_code(&self) -> f64 {
        match self.dtype {
            DType::Uint8 => u8::MAX as f64,
            DType::Uint16 => u16::MAX as f64,
            _ => u32::MAX as f64,
        }
    }

    fn code(&self, x: f64) -> Result<f64, CodecError> {
        if !(x >= 0.0 && x.is_finite()) {
            return Err(CodecError::new(
                DEF.id,
                format!("input {x} is not a photon count (needs finite values >= 0)"),
            ));
        }
        let code = (2.0 * (x + 0.375).sqrt() / self.step).round_ties_even();
        if code > self.largest_code() {
            return Err(CodecError::new(
                DEF.id,
                format!(
                    "count {x} needs code {code}, beyond {} (use a larger dtype or step)",
                    self.dtype
                ),
            ));
        }
        Ok(code)
    }

    fn count(&self, code: f64) -> f64 {
        let a = code * self.step;
        let x = (0.25 * a * a - 0.375).max(0.0);
        if self.integer { x.round_ties_even() } else { x }
    }
}

impl ArrayToArray for Anscombe {
    fn encode(&self, input: NdArray) -> Result<NdArray, CodecError> {
        with_array!(input, a => {
            let codes = a
                .iter()
                .map(|v| self.code(v.to_f64()))
                .collect::<Result<Vec<f64>, _>>()?;
            let shape = a.shape().to_vec();
            Ok(with_dtype!(self.dtype, Q => {
                ndarray::ArrayD::from_shape_vec(shape, codes.into_iter().map(Q::from_f64).collect())
                    .expect("one code per element")
                    .into_nd()
            }))
        })
    }

    fn decode(&self, encoded: NdArray, _shape: &[usize]) -> Result<NdArray, CodecError> {
        with_dtype!(self.dtype, Q => {
            let codes = Q::from_nd(encoded).ok_or_else(|| {
                CodecError::new(DEF.id, format!("encoded data is not {}", self.dtype))
            })?;
            Ok(with_dtype!(self.input, T => codes.mapv(|c| T::from_f64(self.count(c.to_f64()))).into_nd()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(step: f64, integer: bool) -> Anscombe {
        Anscombe {
            step,
            integer,
            dtype: DType::Uint16,
            input: DType::Float64,
        }
    }

    #[test]
    fn round_trip_error_is_within_half_a_step_in_sigmas() {
        for step in [0.1, 0.5, 1.0] {
            let s = stage(step, false);
            for x in (0..2000).map(|i| (i * i) as f64 / 7.0) {
                let y = s.count(s.code(x).unwrap());
                let bound = step / 2.0 * (x + 0.375).sqrt() + step * step / 16.0;
                assert!(
                    (y - x).abs() <= bound * (1.0 + 1e-12),
                    "step {step}: {x} -> {y}"
                );
            }
        }
        let s = stage(0.5, true);
        assert_eq!(s.count(s.code(0.0).unwrap()), 0.0);
        assert_eq!(s.count(s.code(100.0).unwrap()), 100.0);
        assert_eq!(s.count(s.code(10_000.0).unwrap()).fract(), 0.0);
    }

    #[test]
    fn negative_input_and_overflowing_codes_are_errors() {
        let err = stage(0.5, false).code(-1.0).unwrap_err();
        assert_eq!(err.stage, "poisson");
        assert!(err.message.contains("-1"), "{}", err.message);
        let mut s = stage(0.5, false);
        s.dtype = DType::Uint8;
        assert!(s.code(1e6).unwrap_err().message.contains("uint8"));
    }
}
