//! `deflate`: zlib-wrapped DEFLATE, as the HDF5 deflate filter and zip use it (`flate2`).

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;

use crate::pipeline::params::Default;
use crate::pipeline::{
    BytesToBytes, CodecError, ParamDef, ParamKind, Stage, StageConfig, StageDef, StageInput,
    StageKind,
};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "deflate",
    aliases: &["zip", "gzip", "zlib"],
    kind: StageKind::BytesToBytes,
    summary: "DEFLATE in a zlib stream (HDF5 filter 1, the zip/gzip algorithm)",
    lossless: true,
    params: &[ParamDef {
        name: "level",
        kind: ParamKind::Int { min: 0, max: 9 },
        default: Default::Int(6),
        doc: "compression level (0: store, 9: strongest)",
    }],
    create,
};

fn create(config: &StageConfig, _: StageInput) -> Result<Stage, String> {
    Ok(Stage::BytesToBytes(Box::new(Deflate {
        level: config.int("level") as u32,
    })))
}

struct Deflate {
    level: u32,
}

impl BytesToBytes for Deflate {
    fn encode(&self, input: &[u8]) -> Result<Vec<u8>, CodecError> {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::new(self.level));
        encoder
            .write_all(input)
            .and_then(|_| encoder.finish())
            .map_err(|e| CodecError::new(DEF.id, e.to_string()))
    }
    fn decode(&self, encoded: &[u8]) -> Result<Vec<u8>, CodecError> {
        let mut decoder = ZlibDecoder::new(encoded);
        let mut out = Vec::new();
        decoder
            .read_to_end(&mut out)
            .map_err(|e| CodecError::new(DEF.id, format!("corrupt stream: {e}")))?;
        if decoder.total_in() != encoded.len() as u64 {
            return Err(CodecError::new(
                DEF.id,
                format!(
                    "corrupt stream: {} trailing bytes after the end of the zlib stream",
                    encoded.len() as u64 - decoder.total_in()
                ),
            ));
        }
        Ok(out)
    }
}
