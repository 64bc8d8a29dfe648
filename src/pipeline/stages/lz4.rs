//! `lz4`: LZ4 block compression with the decoded size prepended (`lz4_flex`).

use crate::pipeline::{
    BytesToBytes, CodecError, Stage, StageConfig, StageDef, StageInput, StageKind,
};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "lz4",
    aliases: &[],
    kind: StageKind::BytesToBytes,
    summary: "LZ4 block compression, decoded size prepended as u32 little-endian",
    lossless: true,
    params: &[],
    create,
};

/// LZ4 cannot expand data by more than this factor; a larger declared size means corruption.
const MAX_LZ4_RATIO: usize = 255;

fn create(_: &StageConfig, _: StageInput) -> Result<Stage, String> {
    Ok(Stage::BytesToBytes(Box::new(Lz4)))
}

struct Lz4;

impl BytesToBytes for Lz4 {
    fn encode(&self, input: &[u8]) -> Result<Vec<u8>, CodecError> {
        Ok(lz4_flex::block::compress_prepend_size(input))
    }
    fn decode(&self, encoded: &[u8]) -> Result<Vec<u8>, CodecError> {
        let corrupt = |m: String| CodecError::new(DEF.id, format!("corrupt stream: {m}"));
        let declared = encoded
            .get(..4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
            .ok_or_else(|| corrupt("shorter than its 4-byte size header".into()))?;
        // Checked before decoding so that a corrupt header cannot make us allocate gigabytes.
        if declared > (encoded.len() - 4) * MAX_LZ4_RATIO + 16 {
            return Err(corrupt(format!(
                "declared size {declared} is impossible for {} compressed bytes",
                encoded.len() - 4
            )));
        }
        let decoded = lz4_flex::block::decompress_size_prepended(encoded)
            .map_err(|e| corrupt(e.to_string()))?;
        if decoded.len() != declared {
            return Err(corrupt(format!(
                "decoded {} bytes where the header declares {declared}",
                decoded.len()
            )));
        }
        Ok(decoded)
    }
}
