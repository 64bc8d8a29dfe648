//! `nbit`: HDF5's own N-bit filter (filter 5, `H5Pset_nbit`) on integers: the chunk is stored
//! as integers of `bits` significant bits, packed without the unused high bits, by the HDF5
//! library photonqa links ([`Hdf5FilterCodec`]). Packing is lossless when every value fits in
//! `bits`; HDF5 would clip a value that does not (its conversion to the narrower type
//! saturates), so such a value is an error of its point instead. The usual pipeline quantises
//! to `bits` first (`quantize` with the same `bits`).
//!
//! HDF5's N-bit filter also packs floats of custom sizes; photonqa does not write those types,
//! so floats are refused (bitround or quantize them first).

use super::hdf5_filter::Hdf5FilterCodec;
use crate::data::hdf5io::StoredType;
use crate::data::{DType, Element, NdArray};
use crate::pipeline::hdf5::NBIT;
use crate::pipeline::params::Default;
use crate::pipeline::{
    ArrayToBytes, CodecError, ParamDef, ParamKind, Stage, StageConfig, StageDef, StageInput,
    StageKind,
};
use crate::with_array;

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "nbit",
    aliases: &["n-bit"],
    kind: StageKind::ArrayToBytes,
    summary: "HDF5's N-bit filter: integers packed to `bits` significant bits (lossless when they fit)",
    lossless: true,
    params: &[ParamDef {
        name: "bits",
        kind: ParamKind::Int { min: 1, max: 64 },
        default: Default::Int(12),
        doc: "significant bits stored per integer; every value must fit",
    }],
    create,
};

fn create(config: &StageConfig, input: StageInput) -> Result<Stage, String> {
    let bits = config.int("bits") as u32;
    let width = 8 * input.dtype.size() as u32;
    if input.dtype.is_float() {
        return Err(format!(
            "packs integers, not {} (quantize or bitround floats first)",
            input.dtype
        ));
    }
    if bits > width {
        return Err(format!(
            "bits = {bits} does not fit dtype {} ({width} bits)",
            input.dtype
        ));
    }
    Ok(Stage::ArrayToBytes(Box::new(NBitStage {
        codec: Hdf5FilterCodec {
            stage: DEF.id,
            filter: [(NBIT, Vec::new())],
            stored: StoredType {
                dtype: input.dtype,
                precision: Some(bits),
            },
            promise: None,
        },
        bits,
        signed: matches!(
            input.dtype,
            DType::Int8 | DType::Int16 | DType::Int32 | DType::Int64
        ),
    })))
}

struct NBitStage {
    codec: Hdf5FilterCodec,
    bits: u32,
    signed: bool,
}

impl NBitStage {
    /// Whether an integer whose bits widened to `u64` are `raw` fits in `self.bits`.
    fn fits(&self, raw: u64) -> bool {
        if self.bits == 64 {
            return true;
        }
        if self.signed {
            let v = raw as i64;
            let half = 1i64 << (self.bits - 1);
            (-half..half).contains(&v)
        } else {
            raw >> self.bits == 0
        }
    }
}

impl ArrayToBytes for NBitStage {
    fn encode(&self, input: &NdArray) -> Result<Vec<u8>, CodecError> {
        let misfit = with_array!(input, a => a.iter().copied().find(|v| !self.fits(v.bits())).map(|v| format!("{v:?}")));
        if let Some(value) = misfit {
            return Err(CodecError::new(
                DEF.id,
                format!(
                    "value {value} does not fit in bits = {} (quantize to {} bits first)",
                    self.bits, self.bits
                ),
            ));
        }
        self.codec.encode(input)
    }

    fn decode(&self, bytes: &[u8], shape: &[usize]) -> Result<NdArray, CodecError> {
        self.codec.decode(bytes, shape)
    }
}
