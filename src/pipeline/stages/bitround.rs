//! `bitround`: keeps `keepbits` mantissa bits of floats with round-to-nearest, ties to even
//! (the algorithm of numcodecs `BitRound`, Klöwer et al. 2021); decode is the identity.
//!
//! Written here rather than through `numcodecs-bit-round`: it is five integer operations, and
//! the crate would add a second ndarray version and a copy per chunk.

use crate::data::{DType, IntoNdArray, NdArray};
use crate::pipeline::params::Default;
use crate::pipeline::{
    ArrayToArray, CodecError, ParamDef, ParamKind, Promise, Stage, StageConfig, StageDef,
    StageInput, StageKind,
};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "bitround",
    aliases: &["bit-round"],
    kind: StageKind::ArrayToArray,
    summary: "keep `keepbits` mantissa bits of float32/float64 (numcodecs BitRound); lossless at full width",
    lossless: false,
    params: &[ParamDef {
        name: "keepbits",
        kind: ParamKind::Int { min: 0, max: 52 },
        default: Default::Int(10),
        doc: "mantissa bits kept (float32: <= 23, float64: <= 52)",
    }],
    create,
};

fn create(config: &StageConfig, input: StageInput) -> Result<Stage, String> {
    let keepbits = config.int("keepbits") as u32;
    let mantissa = match input.dtype {
        DType::Float32 => 23,
        DType::Float64 => 52,
        other => return Err(format!("needs float32 or float64 input, got {other}")),
    };
    if keepbits > mantissa {
        return Err(format!(
            "keepbits = {keepbits} exceeds the {mantissa} mantissa bits of {}",
            input.dtype
        ));
    }
    Ok(Stage::ArrayToArray(
        Box::new(BitRound { keepbits }),
        input.dtype,
    ))
}

struct BitRound {
    keepbits: u32,
}

/// Rounds the bit pattern `b` of a float with `mantissa` mantissa bits.
fn round_bits(b: u64, mantissa: u32, keepbits: u32, all: u64) -> u64 {
    if keepbits >= mantissa {
        return b;
    }
    let maskbits = mantissa - keepbits;
    let mask = (all >> maskbits) << maskbits;
    let half_quantum1 = (1u64 << (maskbits - 1)) - 1;
    (b.wrapping_add(((b >> maskbits) & 1) + half_quantum1) & mask) & all
}

impl ArrayToArray for BitRound {
    fn encode(&self, input: NdArray) -> Result<NdArray, CodecError> {
        let k = self.keepbits;
        match input {
            NdArray::Float32(a) => Ok(a
                .mapv(|v| {
                    f32::from_bits(round_bits(v.to_bits() as u64, 23, k, u32::MAX as u64) as u32)
                })
                .into_nd()),
            NdArray::Float64(a) => Ok(a
                .mapv(|v| f64::from_bits(round_bits(v.to_bits(), 52, k, u64::MAX)))
                .into_nd()),
            other => Err(CodecError::new(
                DEF.id,
                format!("needs float input, got {}", other.dtype()),
            )),
        }
    }
    fn decode(&self, encoded: NdArray, _shape: &[usize]) -> Result<NdArray, CodecError> {
        Ok(encoded)
    }

    /// Rounding the mantissa of `x = m 2^e` (`1 <= m < 2`) to `keepbits` bits moves it by at
    /// most half its last kept bit, `2^(e - keepbits - 1) <= 2^-(keepbits + 1) |x|` (normal
    /// values; subnormals can break it, and the check would say so).
    fn promised(&self) -> Option<Promise> {
        Some(Promise::PointwiseRel(
            2f64.powi(-(self.keepbits as i32) - 1),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round32(v: f32, k: u32) -> f32 {
        f32::from_bits(round_bits(v.to_bits() as u64, 23, k, u32::MAX as u64) as u32)
    }

    #[test]
    fn rounds_to_nearest_with_ties_to_even() {
        assert_eq!(round32(1.0, 0), 1.0);
        assert_eq!(round32(1.4, 0), 1.0);
        assert_eq!(round32(1.6, 0), 2.0);
        // Ties go to an even last kept bit: for 1.5 with no mantissa bit that bit is the
        // exponent's lowest (odd for 1.0), so 2.0 wins; 2.5 = 1.25 * 2 with one bit goes to 2.
        assert_eq!(round32(1.5, 0), 2.0);
        assert_eq!(round32(2.5, 1), 2.0);
        assert_eq!(round32(3.5, 1), 4.0);
        assert_eq!(round32(-1.6, 0), -2.0);
        assert_eq!(round32(0.1, 23), 0.1);
    }
}
