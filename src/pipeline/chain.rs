//! A codec chain: array->array stages, one array->bytes stage, bytes->bytes stages.

use std::borrow::Cow;
use std::time::Instant;

use super::hdf5::Storage;
use super::registry;
use super::{
    ArrayToArray, ArrayToBytes, BytesToBytes, CodecError, InputStats, Promise, Stage, StageConfig,
    StageInput, StageKind,
};
use crate::data::{DType, NdArray, c_order, hdf5chunk};
use crate::metrics::comparison::BoundSums;
use crate::with_array;

/// An array->array stage of a chain with its identity.
pub struct ArrayStage {
    /// Stage id.
    pub id: &'static str,
    /// The codec.
    pub codec: Box<dyn ArrayToArray>,
    /// The stage's configuration as canonical JSON (identifies the stage's output).
    pub key: String,
}

/// Gives the whole-volume statistics of the output of a chain prefix.
pub trait StatsProvider {
    /// Statistics of the input after `prefix` has encoded it; `key` identifies the prefix.
    fn stats_for<'a>(&'a mut self, prefix: &'a [ArrayStage], key: &str)
    -> Box<dyn InputStats + 'a>;
}

/// Why a chain cannot be built: the offending stage (index in the pipeline) and the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("pipeline stage {}: {message}", .stage + 1)]
pub struct ChainError {
    /// Index of the stage in the pipeline.
    pub stage: usize,
    /// What is wrong.
    pub message: String,
}

/// A built codec chain for one working point.
pub struct Chain {
    array_stages: Vec<ArrayStage>,
    to_bytes: (&'static str, Box<dyn ArrayToBytes>),
    byte_stages: Vec<(&'static str, Box<dyn BytesToBytes>)>,
    to_bytes_lossless: bool,
    /// Dtype after the array->array stages.
    prepared: DType,
    /// How HDF5 stores the prepared chunks instead of the codec stages (a scenario's
    /// `artifact = "hdf5"`).
    hdf5: Option<Hdf5Artifact>,
}

/// The HDF5 dataset a chain's chunks are stored in, as an export writes it.
struct Hdf5Artifact {
    storage: Storage,
    /// The dataset's chunk rows (an edge chunk is padded to them).
    chunk_rows: usize,
}

/// A prepared chunk packed and unpacked again, by the codec stages or by HDF5's filters.
struct Packed {
    /// Bytes stored for the chunk.
    stored_bytes: usize,
    /// Bytes the array->bytes stage made (its rate promise is about them).
    serialised_bytes: usize,
    /// The array->bytes stage's decoded output.
    unpacked: NdArray,
    encode_seconds: f64,
    decode_seconds: f64,
}

impl Hdf5Artifact {
    /// The prepared chunk stored and read back by HDF5; `start` is when the chunk's encoding
    /// began.
    fn pack(
        &self,
        prepared: &NdArray,
        shape: &[usize],
        start: Instant,
    ) -> Result<Packed, CodecError> {
        let hdf5 = |e: String| CodecError::new("hdf5", e);
        let filters = self.storage.filter_values();
        let layout = hdf5chunk::Layout {
            chunk_rows: self.chunk_rows,
            stored: self.storage.stored,
            filters: &filters,
        };
        let stored = if self.storage.library.is_some() {
            hdf5chunk::store(prepared, &layout).map_err(hdf5)?
        } else {
            let mut bytes = prepared.to_le_bytes();
            bytes.resize(bytes.len() / shape[0] * self.chunk_rows, 0);
            // Filter mask 0: every filter was applied.
            let mut stored = vec![0; 4];
            stored.extend(self.storage.encode_direct(bytes).map_err(hdf5)?);
            stored
        };
        let encode_seconds = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let unpacked = hdf5chunk::load(&stored, shape, &layout).map_err(hdf5)?;
        // The chunk as the file stores it, without the filter mask; a rate promise is about
        // the edge chunk's share of its padded chunk, as on the file.
        let stored_bytes = stored.len() - 4;
        Ok(Packed {
            stored_bytes,
            serialised_bytes: (stored_bytes * shape[0]).div_ceil(self.chunk_rows),
            unpacked,
            encode_seconds,
            decode_seconds: start.elapsed().as_secs_f64(),
        })
    }
}

/// The outcome of encoding and decoding one chunk.
pub struct RoundTrip {
    /// Size of the encoded chunk in bytes.
    pub encoded_bytes: usize,
    /// The decoded chunk, same dtype and shape as the input.
    pub decoded: NdArray,
    /// Wall time spent encoding.
    pub encode_seconds: f64,
    /// Wall time spent decoding.
    pub decode_seconds: f64,
    /// The measurement of every bound a stage promises, on this chunk (see [`Chain::promises`]).
    pub bounds: Vec<BoundSums>,
}

/// Applies array->array stages in order.
pub fn encode_through(stages: &[ArrayStage], mut array: NdArray) -> Result<NdArray, CodecError> {
    for stage in stages {
        array = stage.codec.encode(array)?;
    }
    Ok(array)
}

impl Chain {
    /// Builds a chain from stage configurations for an input of `dtype`. Inserts the plain
    /// `bytes` packing when no array->bytes stage is given; rejects a wrong order.
    pub fn build(configs: &[StageConfig], dtype: DType) -> Result<Chain, ChainError> {
        let mut array_stages = Vec::new();
        let mut to_bytes = None;
        let mut to_bytes_lossless = true;
        let mut byte_stages = Vec::new();
        let mut current = dtype;
        for (index, config) in configs.iter().enumerate() {
            let def = registry::find(config.stage).expect("stage ids are validated");
            let context = |message: String| ChainError {
                stage: index,
                message,
            };
            // The order is checked before the stage is built, so that the error names it.
            match def.kind {
                StageKind::ArrayToArray if to_bytes.is_some() => {
                    return Err(context(
                        "an array->array stage cannot follow an array->bytes or bytes->bytes stage"
                            .into(),
                    ));
                }
                StageKind::ArrayToBytes if to_bytes.is_some() => {
                    return Err(context(
                        "a chain has exactly one array->bytes stage, after the array->array stages"
                            .into(),
                    ));
                }
                StageKind::BytesToBytes if to_bytes.is_none() => {
                    to_bytes = Some(Self::default_to_bytes(current).map_err(context)?);
                }
                _ => {}
            }
            match (def.create)(config, StageInput { dtype: current }).map_err(context)? {
                Stage::ArrayToArray(codec, out) => {
                    array_stages.push(ArrayStage {
                        id: def.id,
                        codec,
                        key: config.to_json().to_string(),
                    });
                    current = out;
                }
                Stage::ArrayToBytes(codec) => {
                    to_bytes_lossless = def.lossless;
                    to_bytes = Some((def.id, codec));
                }
                Stage::BytesToBytes(codec) => byte_stages.push((def.id, codec)),
            }
        }
        let to_bytes = match to_bytes {
            Some(stage) => stage,
            None => Self::default_to_bytes(current).map_err(|message| ChainError {
                stage: configs.len().saturating_sub(1),
                message,
            })?,
        };
        Ok(Chain {
            array_stages,
            to_bytes,
            byte_stages,
            to_bytes_lossless,
            prepared: current,
            hdf5: None,
        })
    }

    fn default_to_bytes(dtype: DType) -> Result<(&'static str, Box<dyn ArrayToBytes>), String> {
        let def = registry::find("bytes").expect("bytes is registered");
        let config = StageConfig {
            stage: def.id,
            params: vec![],
        };
        match (def.create)(&config, StageInput { dtype })? {
            Stage::ArrayToBytes(codec) => Ok((def.id, codec)),
            _ => unreachable!("bytes is an array->bytes stage"),
        }
    }

    /// Fits every array->array stage that needs whole-volume statistics, in chain order.
    pub fn fit(&mut self, provider: &mut dyn StatsProvider) -> Result<(), String> {
        for index in 0..self.array_stages.len() {
            let (prefix, rest) = self.array_stages.split_at_mut(index);
            let stage = &mut rest[0];
            if stage.codec.needs_fit() {
                let key: String = prefix
                    .iter()
                    .map(|s| s.key.as_str())
                    .collect::<Vec<_>>()
                    .join("|");
                let mut stats = provider.stats_for(prefix, &key);
                stage
                    .codec
                    .fit(stats.as_mut())
                    .map_err(|e| format!("stage {}: {e}", stage.id))?;
            }
        }
        Ok(())
    }

    /// The bound the array->bytes stage promises on a chunk of `shape` (the chain's input
    /// shape; array->array stages keep shapes), with its id. [`Chain::round_trip`] checks it on
    /// every chunk on the stage's own input and output, after those of the array->array stages
    /// ([`ArrayToArray::promised`]).
    pub fn promises(&self, shape: &[usize]) -> Vec<(&'static str, Promise)> {
        self.to_bytes
            .1
            .promised(shape)
            .map(|p| (self.to_bytes.0, p))
            .into_iter()
            .collect()
    }

    /// Data-derived parameters of the array->array stages, `null` for stages without any.
    pub fn fitted(&self) -> Vec<serde_json::Value> {
        self.array_stages.iter().map(|s| s.codec.fitted()).collect()
    }

    /// The dtype the array->array stages make (what the array->bytes stage packs).
    pub fn prepared_dtype(&self) -> DType {
        self.prepared
    }

    /// Stores the prepared chunks as an export writes them into a dataset of `chunk_rows`-row
    /// chunks, instead of running the codec stages: through the HDF5 library's filters when
    /// `storage` has a library one, else as the bytes photonqa's filter encoders make; either
    /// way the HDF5 library reads them back ([`hdf5chunk`], in memory). The rate is what the
    /// file stores and the decoded data what HDF5 reads (a scenario's `artifact = "hdf5"`).
    pub fn store_as_hdf5(&mut self, storage: Storage, chunk_rows: usize) {
        self.hdf5 = Some(Hdf5Artifact {
            storage,
            chunk_rows,
        });
    }

    /// The prepared chunk through the array->bytes and bytes->bytes stages and back, checking
    /// that the bytes->bytes stages reproduce their input bit for bit; `start` is when the
    /// chunk's encoding began.
    fn pack(
        &self,
        prepared: &NdArray,
        shape: &[usize],
        start: Instant,
    ) -> Result<Packed, CodecError> {
        let serialised = self.to_bytes.1.encode(prepared)?;
        let mut bytes = Cow::Borrowed(serialised.as_slice());
        for (_, stage) in &self.byte_stages {
            bytes = Cow::Owned(stage.encode(&bytes)?);
        }
        let encode_seconds = start.elapsed().as_secs_f64();

        let start = Instant::now();
        let mut restored = Cow::Borrowed(bytes.as_ref());
        for (_, stage) in self.byte_stages.iter().rev() {
            restored = Cow::Owned(stage.decode(&restored)?);
        }
        if *restored != *serialised {
            let ids: Vec<_> = self.byte_stages.iter().map(|(id, _)| *id).collect();
            return Err(CodecError::new(
                "chain",
                format!(
                    "bytes->bytes stages [{}] did not reproduce their input bit for bit",
                    ids.join(", ")
                ),
            ));
        }
        let unpacked = self.to_bytes.1.decode(&restored, shape)?;
        Ok(Packed {
            stored_bytes: bytes.len(),
            serialised_bytes: serialised.len(),
            unpacked,
            encode_seconds,
            decode_seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// One chunk through the array->array stages only (fitted first).
    pub fn prepare(&self, chunk: &NdArray) -> Result<NdArray, CodecError> {
        encode_through(&self.array_stages, chunk.clone())
    }

    /// Encodes and decodes one chunk, checking that the lossless part of the chain (array->bytes
    /// and bytes->bytes stages) reproduced its input bit for bit.
    pub fn round_trip(&self, chunk: &NdArray) -> Result<RoundTrip, CodecError> {
        let shape = chunk.shape().to_vec();
        let start = Instant::now();
        // The promising array->array stages' inputs and outputs, checked after the timings.
        let mut own_trips = Vec::new();
        let mut prepared = chunk.clone();
        for (i, stage) in self.array_stages.iter().enumerate() {
            match stage.codec.promised() {
                Some(promise) => {
                    let encoded = stage.codec.encode(prepared.clone())?;
                    let input = std::mem::replace(&mut prepared, encoded.clone());
                    own_trips.push((i, promise, input, encoded));
                }
                None => prepared = stage.codec.encode(prepared)?,
            }
        }
        let packed = match &self.hdf5 {
            None => self.pack(&prepared, &shape, start)?,
            Some(artifact) => artifact.pack(&prepared, &shape, start)?,
        };
        let Packed {
            stored_bytes,
            serialised_bytes,
            unpacked,
            encode_seconds,
            decode_seconds: unpack_seconds,
        } = packed;
        if self.to_bytes_lossless && !bit_equal(&unpacked, &prepared) {
            return Err(CodecError::new(
                self.to_bytes.0,
                "decoded array differs from the encoded one (a lossless stage must round-trip bit for bit)",
            ));
        }
        // Without array->array stages the decoded chunk is the stage's output itself.
        let checked_output = (!self.array_stages.is_empty()
            && self.to_bytes.1.promised(&shape).is_some())
        .then(|| unpacked.clone());
        let start = Instant::now();
        let mut decoded = unpacked;
        for stage in self.array_stages.iter().rev() {
            decoded = stage.codec.decode(decoded)?;
        }
        let decode_seconds = unpack_seconds + start.elapsed().as_secs_f64();
        // The promised bounds, measured outside the timings on each promising stage's own input
        // and output: an array->array stage's own decoding of what it encoded, and the
        // array->bytes stage's `unpacked` against `prepared`.
        let mut bounds = own_trips
            .into_iter()
            .map(|(i, promise, input, encoded)| {
                let stage = &self.array_stages[i];
                let own = stage.codec.decode(encoded)?;
                BoundSums::of(stage.id, promise, &input, &own, 0)
                    .map_err(|e| CodecError::new("chain", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for (stage, promise) in self.promises(&shape) {
            let output = checked_output.as_ref().unwrap_or(&decoded);
            bounds.push(
                BoundSums::of(stage, promise, &prepared, output, serialised_bytes)
                    .map_err(|e| CodecError::new("chain", e))?,
            );
        }
        if decoded.dtype() != chunk.dtype() || decoded.shape() != shape.as_slice() {
            return Err(CodecError::new(
                "chain",
                format!(
                    "decoded {} {:?} does not match the input {} {:?}",
                    decoded.dtype(),
                    decoded.shape(),
                    chunk.dtype(),
                    shape
                ),
            ));
        }
        Ok(RoundTrip {
            encoded_bytes: stored_bytes,
            decoded,
            encode_seconds,
            decode_seconds,
            bounds,
        })
    }
}

/// True when two arrays have the same dtype, shape and bit patterns.
pub fn bit_equal(a: &NdArray, b: &NdArray) -> bool {
    if a.dtype() != b.dtype() || a.shape() != b.shape() {
        return false;
    }
    with_array!(a, x => {
        let y = crate::data::typed_like(x, b).expect("dtype checked");
        bytemuck::cast_slice::<_, u8>(&c_order(x)) == bytemuck::cast_slice::<_, u8>(&c_order(y))
    })
}
