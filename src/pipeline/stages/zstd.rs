//! `zstd`: Zstandard compression (the `zstd` crate, bundling libzstd).

use crate::pipeline::params::Default;
use crate::pipeline::{
    BytesToBytes, CodecError, ParamDef, ParamKind, Stage, StageConfig, StageDef, StageInput,
    StageKind,
};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "zstd",
    aliases: &[],
    kind: StageKind::BytesToBytes,
    summary: "Zstandard compression, one frame per chunk",
    lossless: true,
    params: &[ParamDef {
        name: "level",
        kind: ParamKind::Int { min: -7, max: 22 },
        default: Default::Int(3),
        doc: "compression level (negative: faster, 22: strongest)",
    }],
    create,
};

fn create(config: &StageConfig, _: StageInput) -> Result<Stage, String> {
    Ok(Stage::BytesToBytes(Box::new(Zstd {
        level: config.int("level") as i32,
    })))
}

struct Zstd {
    level: i32,
}

impl BytesToBytes for Zstd {
    fn encode(&self, input: &[u8]) -> Result<Vec<u8>, CodecError> {
        zstd::bulk::compress(input, self.level).map_err(|e| CodecError::new(DEF.id, e.to_string()))
    }
    fn decode(&self, encoded: &[u8]) -> Result<Vec<u8>, CodecError> {
        zstd::stream::decode_all(encoded)
            .map_err(|e| CodecError::new(DEF.id, format!("corrupt stream: {e}")))
    }
}
