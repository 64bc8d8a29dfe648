//! `shuffle`: byte shuffle by element size (HDF5 filter 2, Blosc shuffle; `byteshuffle`).

use crate::pipeline::{
    BytesToBytes, CodecError, Stage, StageConfig, StageDef, StageInput, StageKind,
};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "shuffle",
    aliases: &["byteshuffle"],
    kind: StageKind::BytesToBytes,
    summary: "byte shuffle: groups the i-th bytes of all elements (element size from the array dtype)",
    lossless: true,
    params: &[],
    create,
};

fn create(_: &StageConfig, input: StageInput) -> Result<Stage, String> {
    Ok(Stage::BytesToBytes(Box::new(Shuffle {
        element_size: input.dtype.size(),
    })))
}

struct Shuffle {
    element_size: usize,
}

impl BytesToBytes for Shuffle {
    fn encode(&self, input: &[u8]) -> Result<Vec<u8>, CodecError> {
        Ok(byteshuffle::shuffle(self.element_size, input))
    }
    fn decode(&self, encoded: &[u8]) -> Result<Vec<u8>, CodecError> {
        Ok(byteshuffle::unshuffle(self.element_size, encoded))
    }
}
