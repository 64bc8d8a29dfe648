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
//! | `blosc` | 32001 | `[0, 0, 0, 0, clevel, shuffle, compressor]` as `hdf5plugin.Blosc` (shuffle 0 none, 1 byte, 2 bit; compressor 0 blosclz, 1 lz4, 2 lz4hc) | the stage's output (a Blosc 1 buffer) |
//! | `lz4` | 32004 | `[0]` | HDF5's lz4 framing (below), not the stage's size-prepended block |
//!
//! The lz4 filter's chunk: the decoded size (u64 big-endian), the block size (u32 big-endian,
//! here the whole chunk), then per block its compressed size (u32 big-endian) and the LZ4 block,
//! or the block itself when compressing does not make it smaller.
//!
//! `dictionary` has no registered filter: an export stores the values it encodes, plainly.
//!
//! The lossy array->bytes stages and N-bit are written through their HDF5 filters run by the
//! HDF5 library itself (their chunk formats are the filters' own; third-party ones are loaded from
//! `HDF5_PLUGIN_PATH`, e.g. hdf5plugin's), with the `cd_values` hdf5plugin's classes make:
//!
//! | stage | HDF5 filter | `cd_values` |
//! |---|---|---|
//! | `sz3` | 32024 | `[mode, abs, rel, l2, psnr]`, mode 0 abs, 1 rel, 2 l2, 3 psnr; each bound a float64 as two u32, high word first (`hdf5plugin.SZ3`) |
//! | `zfp` | 32013 | accuracy `[3, 0, lo, hi, 0, 0]`, precision `[2, 0, p, 0, 0, 0]`, rate `[1, 0, lo, hi, 0, 0]`, the float64 as two u32, low word first (`hdf5plugin.Zfp`) |
//! | `nbit` | 5 (built in) | none given: HDF5 computes them from the stored integer type of `bits` precision, as `H5Pset_nbit` |
//! | `scaleoffset` | 6 (built in) | floats `[0, decimals]` (D-scale), integers `[2, 0]` (minimum bits), as `H5Pset_scaleoffset` |
//!
//! Those filters are other builds of the codecs than photonqa's stages (hdf5plugin's SZ3 and
//! ZFP) or see other chunk boundaries (scale-offset's edge chunk), so the stored values differ
//! from the scenario's decoded ones; the export checks the stage's promised bound on the file.

use super::registry;
use super::stages::blosc;
use super::{BytesToBytes, Stage, StageConfig, StageInput, StageKind};
use crate::data::DType;
use crate::data::hdf5io::StoredType;

/// HDF5's N-bit filter id.
pub const NBIT: u32 = 5;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packing {
    /// As the dataset's own little-endian type (`bytes`).
    Native,
    /// The stage has no registered filter; its values are stored plainly (`dictionary`).
    Plain,
    /// Through this filter, run by the HDF5 library (the lossy codecs, N-bit, scale-offset).
    Filter(Hdf5Filter),
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

/// How an array->bytes stage is stored on data whose elements are `dtype`; an error for one
/// that has no HDF5 form.
pub fn packing(config: &StageConfig, dtype: DType) -> Result<Packing, String> {
    let filter = |id, cd_values| {
        Ok(Packing::Filter(Hdf5Filter {
            id,
            cd_values,
            stage: registry::find(config.stage).expect("validated stage").id,
        }))
    };
    // hdf5plugin's word orders: SZ3 big-endian halves, ZFP the little-endian memory order.
    let high_low = |v: f64| [(v.to_bits() >> 32) as u32, v.to_bits() as u32];
    let low_high = |v: f64| [v.to_bits() as u32, (v.to_bits() >> 32) as u32];
    match config.stage {
        "bytes" => Ok(Packing::Native),
        "dictionary" => Ok(Packing::Plain),
        "sz3" => {
            if config.str("predictor") != "interpolation-lorenzo" {
                return Err(format!(
                    "predictor = \"{}\" has no cd_values in the HDF5 SZ3 filter (32024), which always uses SZ3's default (interpolation-lorenzo)",
                    config.str("predictor")
                ));
            }
            let (mode, name) = match config.str("mode") {
                "abs" => (0, "abs_error"),
                "rel" => (1, "rel_error"),
                "l2" => (2, "l2_norm"),
                _ => (3, "psnr"),
            };
            let mut bounds = [0.0; 4];
            bounds[mode as usize] = config.float(name);
            let mut cd_values = vec![mode];
            cd_values.extend(bounds.iter().flat_map(|&b| high_low(b)));
            filter(32024, cd_values)
        }
        "zfp" => {
            let cd_values = match config.str("mode") {
                "accuracy" => [[3, 0], low_high(config.float("tolerance")), [0, 0]].concat(),
                "precision" => vec![2, 0, config.int("precision") as u32, 0, 0, 0],
                _ => [[1, 0], low_high(config.float("rate")), [0, 0]].concat(),
            };
            filter(32013, cd_values)
        }
        // N-bit's cd_values are computed by HDF5 from the stored type's precision.
        "nbit" => filter(NBIT, Vec::new()),
        "scaleoffset" if dtype.is_float() => filter(6, vec![0, config.int("decimals") as u32]),
        "scaleoffset" => filter(6, vec![2, 0]),
        _ => Err(
            "photonqa does not write it as an HDF5 filter (export supports bytes, dictionary, sz3, zfp, nbit, scaleoffset, shuffle, bitshuffle, blosc, deflate, zstd, lz4)"
                .into(),
        ),
    }
}

/// How a chain is stored in an HDF5 dataset: what an export writes and what a scenario with
/// `artifact = "hdf5"` measures.
pub struct Storage {
    /// The array->bytes stage's filter run by the HDF5 library (sz3, zfp, nbit,
    /// scaleoffset): with it, the library runs every filter.
    pub library: Option<Hdf5Filter>,
    /// The bytes->bytes stages' filters; without a library filter their chunk bytes are made
    /// here and written as they are stored (direct chunk write).
    pub byte_filters: Vec<FilterStage>,
    /// The array->bytes stage that has no registered filter (its values are stored plainly).
    pub unfiltered: Option<&'static str>,
    /// The stored element type (N-bit: only the significant bits).
    pub stored: StoredType,
}

impl Storage {
    /// The storage of a chain of `stages` whose array->array stages make `dtype`; the error
    /// gives the index of the stage that cannot be stored.
    pub fn of(stages: &[StageConfig], dtype: DType) -> Result<Storage, (usize, String)> {
        let mut storage = Storage {
            library: None,
            byte_filters: Vec::new(),
            unfiltered: None,
            stored: dtype.into(),
        };
        for (index, config) in stages.iter().enumerate() {
            let at = |message: String| (index, message);
            let def = registry::find(config.stage).expect("validated stage");
            match def.kind {
                StageKind::ArrayToArray => {}
                StageKind::ArrayToBytes => match packing(config, dtype).map_err(at)? {
                    Packing::Native => {}
                    Packing::Plain => storage.unfiltered = Some(def.id),
                    Packing::Filter(filter) => {
                        if filter.id == NBIT {
                            storage.stored.precision = Some(config.int("bits") as u32);
                        }
                        storage.library = Some(filter);
                    }
                },
                StageKind::BytesToBytes => {
                    storage
                        .byte_filters
                        .push(filter(config, dtype).map_err(at)?);
                }
            }
        }
        Ok(storage)
    }

    /// The dataset's filter pipeline, in order.
    pub fn filters(&self) -> Vec<Hdf5Filter> {
        self.library
            .iter()
            .cloned()
            .chain(self.byte_filters.iter().map(|f| f.filter.clone()))
            .collect()
    }

    /// The filters as `(id, cd_values)`, as the HDF5 writers take them.
    pub fn filter_values(&self) -> Vec<(u32, Vec<u32>)> {
        self.filters()
            .into_iter()
            .map(|f| (f.id, f.cd_values))
            .collect()
    }

    /// The stored chunk of the little-endian `bytes` of a chunk, made here (no library filter).
    pub fn encode_direct(&self, bytes: Vec<u8>) -> Result<Vec<u8>, String> {
        self.byte_filters
            .iter()
            .try_fold(bytes, |bytes, filter| filter.encode(&bytes))
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
        // As hdf5plugin.Blosc: the first four are the filter's to fill in.
        "blosc" => (
            32001,
            vec![
                0,
                0,
                0,
                0,
                config.int("clevel") as u32,
                blosc::shuffle_code(config.str("shuffle")),
                blosc::compressor_code(config.str("cname")),
            ],
        ),
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
        _ => return Err("has no registered HDF5 filter that photonqa writes".into()),
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
        assert_eq!(
            packing(&config("dictionary", vec![]), DType::Uint8),
            Ok(Packing::Plain)
        );
        // hdf5plugin.SZ3(absolute=1e-3).filter_options and hdf5plugin.Zfp(accuracy=1e-3)'s.
        let sz3 = config(
            "sz3",
            vec![
                ("mode", ParamValue::Str("abs".into())),
                ("abs_error", ParamValue::Float(1e-3)),
                ("predictor", ParamValue::Str("interpolation-lorenzo".into())),
            ],
        );
        let Ok(Packing::Filter(f)) = packing(&sz3, DType::Float32) else {
            panic!("sz3 has a filter")
        };
        assert_eq!(
            (f.id, f.cd_values),
            (32024, vec![0, 1062232653, 3539053052, 0, 0, 0, 0, 0, 0])
        );
        let zfp = config(
            "zfp",
            vec![
                ("mode", ParamValue::Str("accuracy".into())),
                ("tolerance", ParamValue::Float(1e-3)),
            ],
        );
        let Ok(Packing::Filter(f)) = packing(&zfp, DType::Float32) else {
            panic!("zfp has a filter")
        };
        assert_eq!(
            (f.id, f.cd_values),
            (32013, vec![3, 0, 3539053052, 1062232653, 0, 0])
        );
    }
}
