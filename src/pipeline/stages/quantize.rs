//! `quantize`: linear quantisation to `bits` levels stored as uint8 or uint16, over the data
//! range or a given range (values outside are clipped), with the inverse mapping on decode.
//!
//! With `L = 2^bits - 1` and range `[lo, hi]`: `q = clamp(round((x - lo) * L / (hi - lo)), 0, L)`
//! and `x' = lo + q * (hi - lo) / L` (float64, evaluated left to right as written, then cast to
//! the input dtype), so `|x - x'| <= (hi - lo) / (2 L)` inside the range. `round` takes ties to
//! even, as NumPy's `np.round` and numcodecs do. A constant input (`lo = hi`) maps to level 0 and
//! decodes to `lo`.
//!
//! The stage promises `|x - x'| <= (hi - lo) / (2 L) + r` on every value, where `r` is the
//! rounding of `x'` to the input dtype: half an ulp of float32 (`2^-24 max(|lo|, |hi|)`) or of
//! float64 (`2^-53 max(|lo|, |hi|)`), or 0.5 for integers. Values clipped because they lie
//! outside a given `range` break it, so the check shows how many were clipped.

use serde_json::json;

use crate::data::{DType, Element, FromNdArray, IntoNdArray, NdArray};
use crate::pipeline::params::Default;
use crate::pipeline::{
    ArrayToArray, CodecError, InputStats, ParamDef, ParamKind, Promise, Stage, StageConfig,
    StageDef, StageInput, StageKind,
};
use crate::{with_array, with_dtype};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "quantize",
    aliases: &["quantise", "linear-quantize"],
    kind: StageKind::ArrayToArray,
    summary: "linear quantisation to 2^bits levels in uint8/uint16 over the data range or `range`; decode maps back",
    lossless: false,
    params: &[
        ParamDef {
            name: "dtype",
            kind: ParamKind::Choice(&["uint8", "uint16"]),
            default: Default::Str("uint8"),
            doc: "storage type of the quantised values",
        },
        ParamDef {
            name: "bits",
            kind: ParamKind::Int { min: 1, max: 16 },
            default: Default::Derived("all bits of `dtype`"),
            doc: "number of bits of the levels (<= the width of `dtype`)",
        },
        ParamDef {
            name: "range",
            kind: ParamKind::Interval,
            default: Default::Derived("min and max of the stage input over the whole volume"),
            doc: "[lo, hi] mapped to levels 0 and 2^bits - 1; values outside are clipped",
        },
    ],
    create,
};

fn create(config: &StageConfig, input: StageInput) -> Result<Stage, String> {
    let dtype = DType::parse(config.str("dtype"))?;
    let width = 8 * dtype.size() as i64;
    let bits = match config.params.iter().find(|(n, _)| *n == "bits") {
        Some(_) => config.int("bits"),
        None => width,
    };
    if bits > width {
        return Err(format!(
            "bits = {bits} does not fit dtype {dtype} ({width} bits)"
        ));
    }
    Ok(Stage::ArrayToArray(
        Box::new(Quantize {
            levels: ((1u32 << bits) - 1) as f64,
            range: config.opt_interval("range").map(|[lo, hi]| (lo, hi)),
            dtype,
            input: input.dtype,
        }),
        dtype,
    ))
}

struct Quantize {
    levels: f64,
    range: Option<(f64, f64)>,
    dtype: DType,
    input: DType,
}

impl Quantize {
    fn range(&self) -> Result<(f64, f64), CodecError> {
        self.range
            .ok_or_else(|| CodecError::new(DEF.id, "data range used before fitting"))
    }
}

impl ArrayToArray for Quantize {
    fn needs_fit(&self) -> bool {
        self.range.is_none()
    }

    fn fit(&mut self, stats: &mut dyn InputStats) -> Result<(), String> {
        self.range = Some(stats.range()?);
        Ok(())
    }

    fn fitted(&self) -> serde_json::Value {
        json!({ "range": self.range.map(|(lo, hi)| [lo, hi]) })
    }

    fn encode(&self, input: NdArray) -> Result<NdArray, CodecError> {
        let (lo, hi) = self.range()?;
        let levels = self.levels;
        // The documented formula, evaluated in this order; a constant input maps to level 0.
        let level = |v: f64| {
            if hi > lo {
                level_of((v - lo) * levels / (hi - lo), levels)
            } else {
                0.0
            }
        };
        Ok(with_array!(input, a => with_dtype!(self.dtype, Q => {
            a.mapv(|v| Q::from_f64(level(v.to_f64()))).into_nd()
        })))
    }

    fn promised(&self) -> Option<Promise> {
        let (lo, hi) = self.range?;
        let magnitude = lo.abs().max(hi.abs());
        let rounding = match self.input {
            DType::Float32 => magnitude * f64::from(f32::EPSILON) / 2.0,
            DType::Float64 => magnitude * f64::EPSILON / 2.0,
            _ => 0.5,
        };
        // The float64 evaluation of `lo + q (hi - lo) / L` adds a few more roundings.
        let evaluation = 4.0 * f64::EPSILON * magnitude;
        Some(Promise::AbsError(
            (hi - lo) / (2.0 * self.levels) + rounding + evaluation,
        ))
    }

    fn decode(&self, encoded: NdArray, _shape: &[usize]) -> Result<NdArray, CodecError> {
        let (lo, hi) = self.range()?;
        let levels = self.levels;
        let value = |q: f64| lo + q * (hi - lo) / levels;
        with_dtype!(self.dtype, Q => {
            let q = Q::from_nd(encoded)
                .ok_or_else(|| CodecError::new(DEF.id, format!("encoded data is not {}", self.dtype)))?;
            Ok(with_dtype!(self.input, T => q.mapv(|v| T::from_f64(value(v.to_f64()))).into_nd()))
        })
    }
}

/// `t.round_ties_even().clamp(0.0, levels)`, as the level of a quantised value, in the same
/// integer once cast. Adding and subtracting 2^52 rounds a float64 in `[0, 2^52)` to an
/// integer, ties to even (the default rounding mode), where `round_ties_even` is a libm call
/// (`rint`) on the x86-64 baseline, 8 % of a quantised point's time; above 2^52 every float64
/// is an integer, and a negative `t` gives at most 0, clamped to 0 as its rounding is (`-0.0`
/// there and `0.0` here cast alike). NaN stays NaN.
fn level_of(t: f64, levels: f64) -> f64 {
    const SHIFT: f64 = (1u64 << 52) as f64;
    let rounded = if t < SHIFT { (t + SHIFT) - SHIFT } else { t };
    rounded.clamp(0.0, levels)
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// The level equals `round_ties_even` then `clamp`, cast as the stage casts it: at every
    /// tie and its neighbours, at the ends of the levels, on random values (seed 5) of every
    /// magnitude, and on NaN and infinities.
    #[test]
    fn levels_equal_rounding_ties_to_even() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut values: Vec<f64> = (-3..300)
            .flat_map(|k| {
                let tie = k as f64 + 0.5;
                [tie.next_down(), tie, tie.next_up(), k as f64]
            })
            .collect();
        values.extend((0..20_000).map(|_| rng.random_range(-1e3..1e3)));
        values.extend(
            (0..2_000).map(|_| rng.random::<f64>() * 10f64.powi(rng.random_range(-20..40))),
        );
        let big = (1u64 << 52) as f64;
        values.extend([
            big.next_down(),
            big,
            big + 1.0,
            -big,
            -big.next_down(),
            f64::MAX,
            -f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
        ]);
        for levels in [15.0, 255.0, 65535.0] {
            for &t in &values {
                let expected = t.round_ties_even().clamp(0.0, levels);
                assert_eq!(
                    u16::from_f64(level_of(t, levels)),
                    u16::from_f64(expected),
                    "t = {t:e}, levels {levels}"
                );
            }
        }
    }
}
