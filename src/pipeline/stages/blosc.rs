//! `blosc`: the Blosc meta-compressor (C-Blosc 1.21, vendored and built by `blosc-rs`): the
//! bytes split into blocks, shuffled by element (byte or bit) and compressed with BloscLZ, LZ4
//! or LZ4HC. The stream is a plain Blosc buffer, the chunk format of HDF5's Blosc filter
//! (32001), so an export stores it as it is.
//!
//! Blosc's zlib and zstd compressors are not offered: `blosc-rs` would compile C-Blosc's own
//! copies of zlib and zstd into the binary, beside the zlib and zstd photonqa already links
//! (flate2 with Debian's zlib, the `zstd` crate), with the same C symbols.

use std::num::NonZeroUsize;

use blosc_rs::{CompressAlgo, Decoder, Encoder, Level, Shuffle};

use crate::pipeline::params::Default;
use crate::pipeline::{
    BytesToBytes, CodecError, ParamDef, ParamKind, Stage, StageConfig, StageDef, StageInput,
    StageKind,
};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "blosc",
    aliases: &[],
    kind: StageKind::BytesToBytes,
    summary: "Blosc (C-Blosc 1): blocked, shuffled by element and compressed with BloscLZ, LZ4 or LZ4HC",
    lossless: true,
    params: &[
        ParamDef {
            name: "cname",
            kind: ParamKind::Choice(&["blosclz", "lz4", "lz4hc"]),
            default: Default::Str("lz4"),
            doc: "the compressor inside Blosc",
        },
        ParamDef {
            name: "clevel",
            kind: ParamKind::Int { min: 0, max: 9 },
            default: Default::Int(5),
            doc: "compression level (0: stored)",
        },
        ParamDef {
            name: "shuffle",
            kind: ParamKind::Choice(&["none", "byte", "bit"]),
            default: Default::Str("byte"),
            doc: "shuffle of each block by element size before compressing",
        },
    ],
    create,
};

/// Blosc's compressor codes, as HDF5's Blosc filter numbers them in its `cd_values`.
pub fn compressor_code(cname: &str) -> u32 {
    match cname {
        "blosclz" => 0,
        "lz4" => 1,
        _ => 2,
    }
}

/// Blosc's shuffle codes (0 none, 1 byte, 2 bit), as in HDF5's Blosc filter `cd_values`.
pub fn shuffle_code(shuffle: &str) -> u32 {
    match shuffle {
        "none" => 0,
        "byte" => 1,
        _ => 2,
    }
}

fn create(config: &StageConfig, input: StageInput) -> Result<Stage, String> {
    let mut encoder = Encoder::new(Level::new(config.int("clevel") as u32).expect("0..=9"));
    encoder
        .typesize(NonZeroUsize::new(input.dtype.size()).expect("non-zero element size"))
        .compressor(match config.str("cname") {
            "blosclz" => CompressAlgo::Blosclz,
            "lz4" => CompressAlgo::Lz4,
            _ => CompressAlgo::Lz4hc,
        })
        .shuffle(match shuffle_code(config.str("shuffle")) {
            0 => Shuffle::None,
            1 => Shuffle::Byte,
            _ => Shuffle::Bit,
        })
        .numinternalthreads(1);
    Ok(Stage::BytesToBytes(Box::new(Blosc { encoder })))
}

struct Blosc {
    encoder: Encoder,
}

/// Bytes of a Blosc 1 header; its compressed size is the u32 at offset 12.
const HEADER: usize = 16;

impl BytesToBytes for Blosc {
    fn encode(&self, input: &[u8]) -> Result<Vec<u8>, CodecError> {
        self.encoder
            .compress(input)
            .map_err(|e| CodecError::new(DEF.id, e.to_string()))
    }

    fn decode(&self, encoded: &[u8]) -> Result<Vec<u8>, CodecError> {
        let corrupt = |m: String| CodecError::new(DEF.id, format!("corrupt stream: {m}"));
        // The header's own size must be the stream's: Blosc would ignore bytes after it.
        let declared = encoded
            .get(12..HEADER)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
            .ok_or_else(|| corrupt(format!("shorter than its {HEADER}-byte header")))?;
        if declared != encoded.len() {
            return Err(corrupt(format!(
                "the header declares {declared} compressed bytes, the stream has {}",
                encoded.len()
            )));
        }
        // A damaged size field must not make Blosc allocate gigabytes: neither LZ4 nor BloscLZ
        // expands a byte more than about 255 times, so more than 1024 times is a corrupt stream.
        let uncompressed = u32::from_le_bytes(encoded[4..8].try_into().expect("4 bytes")) as usize;
        if uncompressed > declared.saturating_mul(1024) {
            return Err(corrupt(format!(
                "the header declares {uncompressed} bytes decoded from {declared}, more than any Blosc compressor achieves"
            )));
        }
        let decoder = Decoder::new(encoded).map_err(|e| corrupt(e.to_string()))?;
        decoder.decompress(1).map_err(|e| corrupt(e.to_string()))
    }
}
