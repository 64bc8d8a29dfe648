//! The HDF5 filters of a chain's stages: the registered filter id and `cd_values` that h5py +
//! hdf5plugin read back, and the chunk bytes each filter expects.
//!
//! | stage | HDF5 filter | `cd_values` | chunk bytes |
//! |---|---|---|---|
//! | `bytes` | none (the dataset's little-endian type) | | |
//! | `shuffle` | 2 (built in) | `[element size]` | the stage's output |
//! | `deflate` | 1 (built in) | `[level]` | the stage's output (a zlib stream) |
//! | `zstd` | 32015 | `[level]` | the stage's output (a zstd frame) |
//! | `bitshuffle` | 32008 | `[0, 4, element size, 0, 0]` (no compression) | the stage's output |
//! | `lz4` | 32004 | `[0]` | HDF5's lz4 framing (below), not the stage's size-prepended block |
//!
//! The lz4 filter's chunk: the decoded size (u64 big-endian), the block size (u32 big-endian,
//! here the whole chunk), then per block its compressed size (u32 big-endian) and the LZ4 block,
//! or the block itself when compressing does not make it smaller.
//!
//! `dictionary` has no registered filter: an export stores the values it encodes, plainly.

use super::registry;
use super::{BytesToBytes, Stage, StageConfig, StageInput, StageKind};
use crate::data::DType;

/// One filter of an HDF5 dataset's pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hdf5Filter {
    /// Registered filter id.
    pub id: u32,
    /// Its parameters.
    pub cd_values: Vec<u32>,
    /// The stage it stands for.
    pub stage: &'static str,
}

/// How an array->bytes stage is stored in HDF5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// As the dataset's own little-endian type (`bytes`).
    Native,
    /// The stage has no registered filter; its values are stored plainly (`dictionary`).
    Plain,
}

/// A bytes->bytes stage as an HDF5 filter: its filter, and the chunk encoder that filter
/// reads.
pub struct FilterStage {
    /// The filter.
    pub filter: Hdf5Filter,
    encoder: Encoder,
}

/// What makes a filter's chunk bytes.
enum Encoder {
    /// The stage's own output is the filter's format.
    Stage(Box<dyn BytesToBytes>),
    /// HDF5's lz4 framing.
    Lz4,
}

impl FilterStage {
    /// The chunk bytes of this filter for its input `bytes`.
    pub fn encode(&self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        match &self.encoder {
            Encoder::Stage(codec) => codec.encode(bytes).map_err(|e| e.to_string()),
            Encoder::Lz4 => Ok(lz4_chunk(bytes)),
        }
    }
}

/// How an array->bytes stage is stored; an error for one that has no HDF5 form.
pub fn packing(config: &StageConfig) -> Result<Packing, String> {
    match config.stage {
        "bytes" => Ok(Packing::Native),
        "dictionary" => Ok(Packing::Plain),
        other => Err(format!(
            "stage {other}: photonqa does not write it as an HDF5 filter (export supports bytes, dictionary, shuffle, bitshuffle, deflate, zstd, lz4)"
        )),
    }
}

/// The HDF5 filter of a bytes->bytes stage on data whose elements are `dtype`.
pub fn filter(config: &StageConfig, dtype: DType) -> Result<FilterStage, String> {
    let def = registry::find(config.stage).expect("validated stage");
    assert_eq!(def.kind, StageKind::BytesToBytes, "a bytes->bytes stage");
    let element = dtype.size() as u32;
    let (id, cd_values) = match config.stage {
        "shuffle" => (2, vec![element]),
        "deflate" => (1, vec![config.int("level") as u32]),
        "zstd" => (32015, vec![config.int("level") as u32]),
        "bitshuffle" => (32008, vec![0, 4, element, 0, 0]),
        "lz4" => {
            return Ok(FilterStage {
                filter: Hdf5Filter {
                    id: 32004,
                    cd_values: vec![0],
                    stage: def.id,
                },
                encoder: Encoder::Lz4,
            });
        }
        other => {
            return Err(format!(
                "stage {other} has no registered HDF5 filter that photonqa writes"
            ));
        }
    };
    let Stage::BytesToBytes(codec) = (def.create)(config, StageInput { dtype })? else {
        unreachable!("a bytes->bytes stage")
    };
    Ok(FilterStage {
        filter: Hdf5Filter {
            id,
            cd_values,
            stage: def.id,
        },
        encoder: Encoder::Stage(codec),
    })
}

/// `bytes` in the chunk format of HDF5's lz4 filter (32004), as one block.
fn lz4_chunk(bytes: &[u8]) -> Vec<u8> {
    let compressed = lz4_flex::block::compress(bytes);
    let block = if compressed.len() < bytes.len() {
        compressed.as_slice()
    } else {
        bytes
    };
    let mut chunk = Vec::with_capacity(16 + block.len());
    chunk.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    chunk.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    chunk.extend_from_slice(&(block.len() as u32).to_be_bytes());
    chunk.extend_from_slice(block);
    chunk
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::ParamValue;

    #[test]
    fn lz4_chunks_carry_big_endian_sizes_and_store_incompressible_blocks() {
        let zeros = vec![0u8; 1000];
        let chunk = lz4_chunk(&zeros);
        assert_eq!(&chunk[..8], &1000u64.to_be_bytes());
        assert_eq!(&chunk[8..12], &1000u32.to_be_bytes());
        let size = u32::from_be_bytes(chunk[12..16].try_into().unwrap()) as usize;
        assert_eq!(chunk.len(), 16 + size);
        assert_eq!(
            lz4_flex::block::decompress(&chunk[16..], 1000).unwrap(),
            zeros
        );
        let noise: Vec<u8> = (0..64u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let chunk = lz4_chunk(&noise);
        assert_eq!(&chunk[12..16], &64u32.to_be_bytes());
        assert_eq!(&chunk[16..], noise.as_slice());
    }

    #[test]
    fn filters_have_registered_ids_and_parameters() {
        let config = |stage, params| StageConfig { stage, params };
        let zstd = filter(
            &config("zstd", vec![("level", ParamValue::Int(5))]),
            DType::Uint16,
        )
        .unwrap();
        assert_eq!((zstd.filter.id, zstd.filter.cd_values), (32015, vec![5]));
        let shuffle = filter(&config("shuffle", vec![]), DType::Float32).unwrap();
        assert_eq!((shuffle.filter.id, shuffle.filter.cd_values), (2, vec![4]));
        let bitshuffle = filter(&config("bitshuffle", vec![]), DType::Uint16).unwrap();
        assert_eq!(bitshuffle.filter.cd_values, vec![0, 4, 2, 0, 0]);
        assert_eq!(packing(&config("dictionary", vec![])), Ok(Packing::Plain));
    }
}
