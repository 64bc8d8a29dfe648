//! `bytes`: plain little-endian packing in C order (Zarr v3 `bytes` codec).

use crate::data::DType;
use crate::data::NdArray;
use crate::pipeline::{
    ArrayToBytes, CodecError, Stage, StageConfig, StageDef, StageInput, StageKind,
};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "bytes",
    aliases: &["pack"],
    kind: StageKind::ArrayToBytes,
    summary: "plain little-endian packing in C order (inserted when no array->bytes stage is given)",
    lossless: true,
    params: &[],
    create,
};

fn create(_: &StageConfig, input: StageInput) -> Result<Stage, String> {
    Ok(Stage::ArrayToBytes(Box::new(Bytes { dtype: input.dtype })))
}

struct Bytes {
    dtype: DType,
}

impl ArrayToBytes for Bytes {
    fn encode(&self, input: &NdArray) -> Result<Vec<u8>, CodecError> {
        Ok(input.to_le_bytes())
    }
    fn decode(&self, bytes: &[u8], shape: &[usize]) -> Result<NdArray, CodecError> {
        NdArray::from_le_bytes(self.dtype, shape, bytes).map_err(|e| CodecError::new(DEF.id, e))
    }
}
