//! A codec chain: array->array stages, one array->bytes stage, bytes->bytes stages.
//!
//! The round trips of working points whose chains begin alike share their common part through
//! a [`TripCache`] per chunk: the output of each prefix of array->array stages (same stages,
//! same parameters, same fitted values), the array->bytes stage's output on it, and the decoded
//! array itself, which the lossless rest of a chain cannot change. Only what differs (the
//! bytes->bytes stages, whose output is the rate) runs per chain, and is still checked to
//! reproduce its input bit for bit. A shared part's time counts in every chain that uses it,
//! so each chain's throughput is that of the whole chain.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::hdf5::Storage;
use super::registry;
use super::{
    ArrayToArray, ArrayToBytes, BytesToBytes, CodecError, InputStats, Promise, Stage, StageConfig,
    StageInput, StageKind,
};
use crate::data::{DType, NdArray, c_order, hdf5chunk};
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
    /// The array->bytes stage's configuration as canonical JSON.
    to_bytes_key: String,
    byte_stages: Vec<(&'static str, Box<dyn BytesToBytes>)>,
    /// The bytes->bytes stages' configurations as canonical JSON, joined.
    byte_stages_key: String,
    to_bytes_lossless: bool,
    /// Dtype after the array->array stages.
    prepared: DType,
    /// How HDF5 stores the prepared chunks instead of the codec stages (a scenario's
    /// `artifact = "hdf5"`).
    hdf5: Option<Hdf5Artifact>,
    /// What identifies the chain's intermediate results, once fitted.
    keys: OnceLock<Keys>,
}

/// What identifies the intermediate results of a chain: two chains with equal keys compute
/// equal arrays there.
#[derive(Debug, Clone, PartialEq)]
struct Keys {
    /// Per array->array stage, the prefix of stages up to it: every stage's configuration and
    /// fitted values (the empty prefix, the input, is "").
    prefixes: Vec<String>,
    /// The array->bytes stage's output on the last prefix (with HDF5 storage: the whole
    /// storage).
    packed: String,
    /// The decoded array: the last prefix when the array->bytes stage is lossless (its
    /// decoding is checked to be its input), else `packed`.
    decoded: String,
}

/// The HDF5 dataset a chain's chunks are stored in, as an export writes it.
struct Hdf5Artifact {
    storage: Storage,
    /// The dataset's chunk rows (an edge chunk is padded to them).
    chunk_rows: usize,
}

impl Hdf5Artifact {
    fn layout<'a>(&self, filters: &'a [(u32, Vec<u32>)]) -> hdf5chunk::Layout<'a> {
        hdf5chunk::Layout {
            chunk_rows: self.chunk_rows,
            stored: self.storage.stored,
            filters,
        }
    }

    /// The prepared chunk stored and read back by HDF5.
    fn pack(&self, prepared: &NdArray, shape: &[usize]) -> Result<Packed, CodecError> {
        let start = Instant::now();
        let hdf5 = |e: String| CodecError::new("hdf5", e);
        let filters = self.storage.filter_values();
        let layout = self.layout(&filters);
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
            serialised_bytes: (stored_bytes * shape[0]).div_ceil(self.chunk_rows),
            stored_bytes,
            bytes: Arc::new(stored),
            unpacked: Arc::new(unpacked),
            encode_seconds,
            decode_seconds: start.elapsed().as_secs_f64(),
            check: None,
        })
    }

    /// A chunk of `shape` read back from its stored bytes (filter mask first).
    fn load(&self, stored: &[u8], shape: &[usize]) -> Result<NdArray, CodecError> {
        let filters = self.storage.filter_values();
        hdf5chunk::load(stored, shape, &self.layout(&filters))
            .map_err(|e| CodecError::new("hdf5", e))
    }
}

/// What a stage's promised bound is checked on, for one chunk: the stage's own input against
/// its own decoding of what it encoded (see [`Promise`]).
#[derive(Debug, Clone)]
pub struct PromiseCheck {
    /// Identifies the check among a chunk's (chains sharing the stage list the same check).
    pub key: String,
    /// Id of the promising stage.
    pub stage: &'static str,
    /// What it promises.
    pub promise: Promise,
    /// The stage's input.
    pub input: Arc<NdArray>,
    /// The stage's decoding of what it encoded.
    pub output: Arc<NdArray>,
    /// Bytes the stage encoded the chunk into (0 for an array->array stage).
    pub encoded_bytes: usize,
}

/// The output of a prefix of array->array stages on one chunk.
struct Prefixed {
    array: Arc<NdArray>,
    /// The stage's side information ([`ArrayToArray::has_side`]; empty for most stages).
    side: Vec<u8>,
    /// Time the prefix's stages took to encode.
    encode_seconds: f64,
    /// The last stage's promise, when it makes one.
    check: Option<PromiseCheck>,
}

/// A prepared chunk through the array->bytes stage and back (or stored and read back by HDF5).
struct Packed {
    /// The array->bytes stage's output (HDF5: the stored chunk, filter mask first).
    bytes: Arc<Vec<u8>>,
    /// Bytes stored for the chunk with HDF5 (the bytes->bytes stages make them otherwise).
    stored_bytes: usize,
    /// Bytes the array->bytes stage made (its rate promise is about them).
    serialised_bytes: usize,
    /// The array->bytes stage's decoded output.
    unpacked: Arc<NdArray>,
    encode_seconds: f64,
    decode_seconds: f64,
    /// The array->bytes stage's promise, when it makes one.
    check: Option<PromiseCheck>,
}

/// A decoded chunk.
struct Decoded {
    array: Arc<NdArray>,
    /// Time the array->array stages took to decode.
    decode_seconds: f64,
}

/// The intermediate results of the round trips of one chunk through several chains, by key:
/// a chain finds there what another chain computed on the same chunk and computes the rest.
/// A failure is kept too, so every chain that shares the failing part fails alike. Use one
/// cache per chunk.
#[derive(Default)]
pub struct TripCache {
    prefixes: HashMap<String, Result<Arc<Prefixed>, CodecError>>,
    packed: HashMap<String, Result<Arc<Packed>, CodecError>>,
    decoded: HashMap<String, Result<Arc<Decoded>, CodecError>>,
}

/// The entry `key` of `map`, computed by `make` when absent.
fn cached<T>(
    map: &mut HashMap<String, Result<Arc<T>, CodecError>>,
    key: &str,
    make: impl FnOnce() -> Result<T, CodecError>,
) -> Result<Arc<T>, CodecError> {
    if let Some(entry) = map.get(key) {
        return entry.clone();
    }
    let entry = make().map(Arc::new);
    map.insert(key.to_string(), entry.clone());
    entry
}

/// The outcome of encoding and decoding one chunk.
pub struct RoundTrip {
    /// Size of the encoded chunk in bytes.
    pub encoded_bytes: usize,
    /// What is stored for the chunk, from which [`Chain::decode_stored`] decodes it again.
    pub stored: Arc<Vec<u8>>,
    /// The decoded chunk, same dtype and shape as the input.
    pub decoded: Arc<NdArray>,
    /// Wall time spent encoding.
    pub encode_seconds: f64,
    /// Wall time spent decoding.
    pub decode_seconds: f64,
    /// What each bound a stage promises is checked on, in chain order (see
    /// [`Chain::promises`]).
    pub checks: Vec<PromiseCheck>,
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
        let mut byte_keys = Vec::new();
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
                    to_bytes = Some((def.id, codec, config.to_json().to_string()));
                }
                Stage::BytesToBytes(codec) => {
                    byte_stages.push((def.id, codec));
                    byte_keys.push(config.to_json().to_string());
                }
            }
        }
        let (id, codec, to_bytes_key) = match to_bytes {
            Some(stage) => stage,
            None => Self::default_to_bytes(current).map_err(|message| ChainError {
                stage: configs.len().saturating_sub(1),
                message,
            })?,
        };
        Ok(Chain {
            array_stages,
            to_bytes: (id, codec),
            to_bytes_key,
            byte_stages,
            byte_stages_key: byte_keys.join("|"),
            to_bytes_lossless,
            prepared: current,
            hdf5: None,
            keys: OnceLock::new(),
        })
    }

    /// The plain `bytes` packing of `dtype`, with its key.
    fn default_to_bytes(
        dtype: DType,
    ) -> Result<(&'static str, Box<dyn ArrayToBytes>, String), String> {
        let def = registry::find("bytes").expect("bytes is registered");
        let config = StageConfig {
            stage: def.id,
            params: vec![],
        };
        match (def.create)(&config, StageInput { dtype })? {
            Stage::ArrayToBytes(codec) => Ok((def.id, codec, config.to_json().to_string())),
            _ => unreachable!("bytes is an array->bytes stage"),
        }
    }

    /// The first array->array stage (its index in the pipeline) that cannot take the chunks of
    /// `chunk_rows` rows of an input of `shape` (a full chunk and the last one), and why (the
    /// stage's own one-line error): a run refuses it before it starts (`veto` on an input
    /// that is not a series of frames, a beam centre outside the frames).
    pub fn refusing_stage(&self, shape: &[usize], chunk_rows: usize) -> Option<(usize, String)> {
        let rows = shape[0];
        let chunk_rows = chunk_rows.clamp(1, rows.max(1));
        for last in [
            chunk_rows.min(rows),
            rows - rows.saturating_sub(1) / chunk_rows * chunk_rows,
        ] {
            let mut chunk = shape.to_vec();
            chunk[0] = last;
            for (index, stage) in self.array_stages.iter().enumerate() {
                match stage.codec.encoded_shape(&chunk) {
                    Ok(next) => chunk = next,
                    Err(error) => return Some((index, error.message)),
                }
            }
        }
        None
    }

    /// The first array->array stage (its index in the pipeline, where array->array stages come
    /// first) that changes the shape of a chunk of one of `shapes` or cannot take it, and why:
    /// what an HDF5 dataset of the input's shape cannot store.
    pub fn reshaping_stage(&self, shapes: &[&[usize]]) -> Option<(usize, String)> {
        for &shape in shapes {
            // Stages before the first that changes the shape all see `shape`.
            for (index, stage) in self.array_stages.iter().enumerate() {
                if stage.codec.has_side() {
                    return Some((
                        index,
                        "keeps a part of each chunk that depends on the data, with side information to decode it".into(),
                    ));
                }
                match stage.codec.encoded_shape(shape) {
                    Ok(next) if next == shape => {}
                    Ok(next) => {
                        return Some((
                            index,
                            format!("changes the shape of a chunk from {shape:?} to {next:?}"),
                        ));
                    }
                    Err(error) => return Some((index, error.message)),
                }
            }
        }
        None
    }

    /// The first array->array stage (its index) whose blocks along axis 0 would straddle the
    /// chunks of `chunk_rows` rows of an input of `shape`, and why: a stage that encodes
    /// blocks of rows (`bin` along axis 0) encodes each chunk on its own, so unless its blocks
    /// divide the chunks, every chunk ends in a short block and the results depend on where
    /// the chunks end. Found from the encoded shapes alone: the chunks' encoded rows must add
    /// up to the whole input's.
    pub fn block_straddling_stage(
        &self,
        shape: &[usize],
        chunk_rows: usize,
    ) -> Option<(usize, String)> {
        let rows = shape[0];
        let chunk_rows = chunk_rows.clamp(1, rows.max(1));
        let with_rows = |n: usize| {
            let mut s = shape.to_vec();
            s[0] = n;
            s
        };
        let (mut whole, mut chunk, mut last) = (
            with_rows(rows),
            with_rows(chunk_rows),
            with_rows(rows - rows.saturating_sub(1) / chunk_rows * chunk_rows),
        );
        let full_chunks = rows.saturating_sub(1) / chunk_rows;
        // The stage before with side information, whose rows per chunk depend on the data.
        let mut data_rows: Option<&str> = None;
        for (index, stage) in self.array_stages.iter().enumerate() {
            let encoded = |s: &[usize]| stage.codec.encoded_shape(s).ok();
            let (Some(w), Some(c), Some(l)) = (encoded(&whole), encoded(&chunk), encoded(&last))
            else {
                // A shape the stage refuses is reported where the chunk is encoded.
                return None;
            };
            if let Some(before) = data_rows
                && c[0] != chunk[0]
            {
                return Some((
                    index,
                    format!(
                        "encodes blocks of rows along axis 0 after {before}, which keeps a number of rows per chunk that depends on the data (the blocks would depend on it): bin axis 0 before {before}"
                    ),
                ));
            }
            if stage.codec.has_side() {
                data_rows = Some(stage.id);
            }
            if full_chunks * c[0] + l[0] != w[0] {
                return Some((
                    index,
                    format!(
                        "encodes blocks of rows along axis 0 that do not divide the chunks of {chunk_rows} rows (the chunks would end in short blocks, so results would depend on the chunking): set [scenario] chunk_slices to a multiple of the block"
                    ),
                ));
            }
            (whole, chunk, last) = (w, c, l);
        }
        None
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
        self.keys = OnceLock::new();
        Ok(())
    }

    /// The bound the array->bytes stage promises on a prepared chunk of `shape` (what the
    /// array->array stages made of a chunk, e.g. binned: the shape the array->bytes stage
    /// packs), with its id. [`Chain::round_trip`] lists its check on every chunk, on the
    /// stage's own input and output, after those of the array->array stages
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

    /// The shapes of a chunk of `shape` through the array->array stages, as the Zarr v3 codec
    /// chain records the representations on the way: the input's, then each stage's output's
    /// (given its side information, one per stage in `sides`). Decoding goes back through
    /// them, each stage decoding to the shape its input had.
    fn shapes_through(
        &self,
        shape: &[usize],
        sides: &[&[u8]],
    ) -> Result<Vec<Vec<usize>>, CodecError> {
        let mut shapes = vec![shape.to_vec()];
        for (stage, side) in self.array_stages.iter().zip(sides) {
            let next = stage
                .codec
                .encoded_shape_with(shapes.last().expect("never empty"), side)?;
            shapes.push(next);
        }
        Ok(shapes)
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
        self.keys = OnceLock::new();
    }

    /// What identifies the chain's intermediate results (after [`Chain::fit`]).
    fn keys(&self) -> &Keys {
        self.keys.get_or_init(|| {
            let mut prefixes = Vec::with_capacity(self.array_stages.len());
            let mut prefix = String::new();
            for stage in &self.array_stages {
                prefix = format!("{prefix}|{}{}", stage.key, stage.codec.fitted());
                prefixes.push(prefix.clone());
            }
            let packed = match &self.hdf5 {
                None => format!("{prefix} > {}", self.to_bytes_key),
                Some(artifact) => format!(
                    "{prefix} > hdf5 {} {} in {} rows",
                    self.to_bytes_key, self.byte_stages_key, artifact.chunk_rows
                ),
            };
            let decoded = if self.to_bytes_lossless {
                format!("{prefix} > lossless")
            } else {
                packed.clone()
            };
            Keys {
                prefixes,
                packed,
                decoded,
            }
        })
    }

    /// The files the chain's decoder needs besides the stream (its array->bytes stage's, see
    /// [`crate::pipeline::side`]), when there are any.
    pub fn side_files(&self) -> Option<&crate::pipeline::side::SideFiles> {
        self.to_bytes.1.side_files()
    }

    /// What identifies the chain's decoded data (after [`Chain::fit`]): chains with equal
    /// keys decode every chunk to the same array, whatever their lossless stages.
    pub fn decoded_key(&self) -> &str {
        &self.keys().decoded
    }

    /// One chunk through the array->array stages only (fitted first).
    pub fn prepare(&self, chunk: &NdArray) -> Result<NdArray, CodecError> {
        encode_through(&self.array_stages, chunk.clone())
    }

    /// Encodes and decodes one chunk, checking that the lossless part of the chain (array->bytes
    /// and bytes->bytes stages) reproduced its input bit for bit.
    pub fn round_trip(&self, chunk: &NdArray) -> Result<RoundTrip, CodecError> {
        self.round_trip_in(&Arc::new(chunk.clone()), &mut TripCache::default())
    }

    /// [`Chain::round_trip`] of `chunk`, taking from `cache` what chains that share a part
    /// with this one computed on the same chunk, and leaving there what it computes.
    pub fn round_trip_in(
        &self,
        chunk: &Arc<NdArray>,
        cache: &mut TripCache,
    ) -> Result<RoundTrip, CodecError> {
        let keys = self.keys();
        let (prefixes, packed) = self.packed_in(chunk, cache)?;
        let mut checks: Vec<PromiseCheck> =
            prefixes.iter().filter_map(|p| p.check.clone()).collect();
        checks.extend(packed.check.clone());
        let encode_seconds: f64 = prefixes.iter().map(|p| p.encode_seconds).sum();
        let (stored, stored_bytes, tail_encode, tail_decode) = match &self.hdf5 {
            Some(_) => (Arc::clone(&packed.bytes), packed.stored_bytes, 0.0, 0.0),
            // A chunk the array->array stages emptied: nothing but the side information.
            None if packed.unpacked.is_empty() => {
                let stored = Arc::new(self.with_sides(&prefixes, &[]));
                (Arc::clone(&stored), stored.len(), 0.0, 0.0)
            }
            None => {
                let (stored, encode, decode) = self.tail(&packed.bytes)?;
                let stored = if self.has_side() {
                    Arc::new(self.with_sides(&prefixes, &stored))
                } else {
                    stored
                };
                let bytes = stored.len();
                (stored, bytes, encode, decode)
            }
        };
        let decoded = cached(&mut cache.decoded, &keys.decoded, || {
            self.decode_prepared(&packed.unpacked, chunk, &sides_of(&prefixes))
        })?;
        Ok(RoundTrip {
            encoded_bytes: stored_bytes,
            stored,
            decoded: Arc::clone(&decoded.array),
            encode_seconds: encode_seconds + packed.encode_seconds + tail_encode,
            decode_seconds: tail_decode + packed.decode_seconds + decoded.decode_seconds,
            checks,
        })
    }

    /// The decoded chunk of [`Chain::round_trip_in`] without what the rest of the chain makes
    /// of the array->bytes stage's output: the bytes->bytes stages, lossless, cannot change it.
    pub fn decoded_in(
        &self,
        chunk: &Arc<NdArray>,
        cache: &mut TripCache,
    ) -> Result<Arc<NdArray>, CodecError> {
        let (prefixes, packed) = self.packed_in(chunk, cache)?;
        let decoded = cached(&mut cache.decoded, &self.keys().decoded, || {
            self.decode_prepared(&packed.unpacked, chunk, &sides_of(&prefixes))
        })?;
        Ok(Arc::clone(&decoded.array))
    }

    /// The chunk through the array->array stages (each prefix's node) and the array->bytes
    /// stage, from `cache` where another chain left them.
    fn packed_in(
        &self,
        chunk: &Arc<NdArray>,
        cache: &mut TripCache,
    ) -> Result<(Vec<Arc<Prefixed>>, Arc<Packed>), CodecError> {
        let keys = self.keys();
        let mut prepared = Arc::clone(chunk);
        let mut prefixes = Vec::with_capacity(keys.prefixes.len());
        for (index, key) in keys.prefixes.iter().enumerate() {
            let node = cached(&mut cache.prefixes, key, || {
                self.encode_stage(index, &prepared, key)
            })?;
            prepared = Arc::clone(&node.array);
            prefixes.push(node);
        }
        let packed = cached(&mut cache.packed, &keys.packed, || {
            self.pack(&prepared, &keys.packed)
        })?;
        Ok((prefixes, packed))
    }

    /// Whether the array->bytes stage is lossless, so that the decoded data are the
    /// array->array stages' decoding of what they encoded ([`Chain::decoded_in`] then encodes
    /// nothing lossy).
    pub fn lossless_packing(&self) -> bool {
        self.to_bytes_lossless
    }

    /// The decoded chunk of `shape` from what [`RoundTrip::stored`] holds for it, as a reader
    /// of the stored data decodes it: no stage encodes.
    pub fn decode_stored(&self, stored: &[u8], shape: &[usize]) -> Result<NdArray, CodecError> {
        let (sides, stored) = self.split_sides(stored)?;
        let shapes = self.shapes_through(shape, &sides)?;
        let prepared = shapes.last().expect("the input's shape is first");
        let unpacked = match &self.hdf5 {
            Some(artifact) => artifact.load(stored, prepared)?,
            None if prepared.contains(&0) => empty(self.prepared, prepared),
            None => {
                let mut restored = stored.to_vec();
                for (_, stage) in self.byte_stages.iter().rev() {
                    restored = stage.decode(&restored)?;
                }
                self.to_bytes.1.decode(&restored, prepared)?
            }
        };
        decode_through(&self.array_stages, unpacked, &shapes, &sides)
    }

    /// Whether an array->array stage of the chain makes side information
    /// ([`ArrayToArray::has_side`]), which the stored bytes then begin with.
    fn has_side(&self) -> bool {
        self.array_stages.iter().any(|s| s.codec.has_side())
    }

    /// The stored bytes of a chunk: for each stage with side information, in chain order, its
    /// length (4 bytes, little-endian) and its bytes; then `rest`, what the array->bytes and
    /// bytes->bytes stages made.
    fn with_sides(&self, prefixes: &[Arc<Prefixed>], rest: &[u8]) -> Vec<u8> {
        let mut stored = Vec::new();
        for (stage, node) in self.array_stages.iter().zip(prefixes) {
            if stage.codec.has_side() {
                stored.extend_from_slice(&(node.side.len() as u32).to_le_bytes());
                stored.extend_from_slice(&node.side);
            }
        }
        stored.extend_from_slice(rest);
        stored
    }

    /// The side information of every array->array stage (empty for those without) and the
    /// rest of the stored bytes, as [`Chain::with_sides`] wrote them.
    fn split_sides<'a>(
        &self,
        mut stored: &'a [u8],
    ) -> Result<(Vec<&'a [u8]>, &'a [u8]), CodecError> {
        let mut sides = Vec::with_capacity(self.array_stages.len());
        for stage in &self.array_stages {
            if !stage.codec.has_side() {
                sides.push(&stored[..0]);
                continue;
            }
            let cut = || {
                CodecError::new(
                    stage.id,
                    "corrupt stream: its side information is cut short",
                )
            };
            let (length, rest) = stored.split_first_chunk::<4>().ok_or_else(cut)?;
            let length = u32::from_le_bytes(*length) as usize;
            if rest.len() < length {
                return Err(cut());
            }
            let (side, rest) = rest.split_at(length);
            sides.push(side);
            stored = rest;
        }
        Ok((sides, stored))
    }

    /// Array->array stage `index` on `input` (the output of the stages before it): its
    /// output, the time it took, and its promise's check (measured outside that time).
    fn encode_stage(
        &self,
        index: usize,
        input: &Arc<NdArray>,
        key: &str,
    ) -> Result<Prefixed, CodecError> {
        let stage = &self.array_stages[index];
        let start = Instant::now();
        let (array, side) = stage.codec.encode_with_side(input.as_ref().clone())?;
        let array = Arc::new(array);
        let encode_seconds = start.elapsed().as_secs_f64();
        let check = match stage.codec.promised() {
            Some(promise) => Some(PromiseCheck {
                key: key.to_string(),
                stage: stage.id,
                promise,
                input: Arc::clone(input),
                output: Arc::new(stage.codec.decode_with(
                    array.as_ref().clone(),
                    input.shape(),
                    &side,
                )?),
                encoded_bytes: 0,
            }),
            None => None,
        };
        Ok(Prefixed {
            array,
            side,
            encode_seconds,
            check,
        })
    }

    /// The prepared chunk through the array->bytes stage and back (or stored and read back by
    /// HDF5), checking that a lossless one reproduced it bit for bit.
    fn pack(&self, prepared: &Arc<NdArray>, key: &str) -> Result<Packed, CodecError> {
        let shape = prepared.shape();
        let mut packed = match &self.hdf5 {
            Some(artifact) => artifact.pack(prepared, shape)?,
            // Nothing to pack (a stage with side information kept nothing of the chunk).
            None if prepared.is_empty() => Packed {
                stored_bytes: 0,
                serialised_bytes: 0,
                bytes: Arc::new(Vec::new()),
                unpacked: Arc::clone(prepared),
                encode_seconds: 0.0,
                decode_seconds: 0.0,
                check: None,
            },
            None => {
                let start = Instant::now();
                let serialised = self.to_bytes.1.encode(prepared)?;
                let encode_seconds = start.elapsed().as_secs_f64();
                let start = Instant::now();
                let unpacked = self.to_bytes.1.decode(&serialised, shape)?;
                Packed {
                    stored_bytes: serialised.len(),
                    serialised_bytes: serialised.len(),
                    bytes: Arc::new(serialised),
                    unpacked: Arc::new(unpacked),
                    encode_seconds,
                    decode_seconds: start.elapsed().as_secs_f64(),
                    check: None,
                }
            }
        };
        if self.to_bytes_lossless && !bit_equal(&packed.unpacked, prepared) {
            return Err(CodecError::new(
                self.to_bytes.0,
                "decoded array differs from the encoded one (a lossless stage must round-trip bit for bit)",
            ));
        }
        // Also on an empty chunk (nothing checked), so that every chunk lists the same checks.
        packed.check = self.to_bytes.1.promised(shape).map(|promise| PromiseCheck {
            key: key.to_string(),
            stage: self.to_bytes.0,
            promise,
            input: Arc::clone(prepared),
            output: Arc::clone(&packed.unpacked),
            encoded_bytes: packed.serialised_bytes,
        });
        Ok(packed)
    }

    /// The array->bytes stage's output through the bytes->bytes stages and back, checked bit
    /// for bit: the stored bytes and the encoding and decoding times.
    fn tail(&self, serialised: &Arc<Vec<u8>>) -> Result<(Arc<Vec<u8>>, f64, f64), CodecError> {
        if self.byte_stages.is_empty() {
            return Ok((Arc::clone(serialised), 0.0, 0.0));
        }
        let start = Instant::now();
        let mut bytes = self.byte_stages[0].1.encode(serialised)?;
        for (_, stage) in &self.byte_stages[1..] {
            bytes = stage.encode(&bytes)?;
        }
        let encode_seconds = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let mut restored = bytes.clone();
        for (_, stage) in self.byte_stages.iter().rev() {
            restored = stage.decode(&restored)?;
        }
        let decode_seconds = start.elapsed().as_secs_f64();
        if restored != **serialised {
            let ids: Vec<_> = self.byte_stages.iter().map(|(id, _)| *id).collect();
            return Err(CodecError::new(
                "chain",
                format!(
                    "bytes->bytes stages [{}] did not reproduce their input bit for bit",
                    ids.join(", ")
                ),
            ));
        }
        Ok((Arc::new(bytes), encode_seconds, decode_seconds))
    }

    /// The array->bytes stage's decoded output through the array->array stages' decoders,
    /// checked to have the dtype and shape of the input `chunk`.
    fn decode_prepared(
        &self,
        unpacked: &Arc<NdArray>,
        chunk: &NdArray,
        sides: &[&[u8]],
    ) -> Result<Decoded, CodecError> {
        let start = Instant::now();
        let array = if self.array_stages.is_empty() {
            Arc::clone(unpacked)
        } else {
            Arc::new(decode_through(
                &self.array_stages,
                unpacked.as_ref().clone(),
                &self.shapes_through(chunk.shape(), sides)?,
                sides,
            )?)
        };
        let decode_seconds = start.elapsed().as_secs_f64();
        if array.dtype() != chunk.dtype() || array.shape() != chunk.shape() {
            return Err(CodecError::new(
                "chain",
                format!(
                    "decoded {} {:?} does not match the input {} {:?}",
                    array.dtype(),
                    array.shape(),
                    chunk.dtype(),
                    chunk.shape()
                ),
            ));
        }
        Ok(Decoded {
            array,
            decode_seconds,
        })
    }
}

/// Decodes through array->array stages in reverse order, each to the shape its input had
/// (`shapes`: [`Chain::shapes_through`], one more than the stages) with its side information
/// (`sides`, one per stage).
fn decode_through(
    stages: &[ArrayStage],
    mut array: NdArray,
    shapes: &[Vec<usize>],
    sides: &[&[u8]],
) -> Result<NdArray, CodecError> {
    for ((stage, shape), side) in stages.iter().zip(shapes).zip(sides).rev() {
        array = stage.codec.decode_with(array, shape, side)?;
    }
    Ok(array)
}

/// The side information of each array->array stage of a chunk (empty for most).
fn sides_of(prefixes: &[Arc<Prefixed>]) -> Vec<&[u8]> {
    prefixes.iter().map(|p| p.side.as_slice()).collect()
}

/// An array of `dtype` and `shape` without elements (`shape` holds a 0).
fn empty(dtype: DType, shape: &[usize]) -> NdArray {
    NdArray::from_le_bytes(dtype, shape, &[]).expect("no elements, no bytes")
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
