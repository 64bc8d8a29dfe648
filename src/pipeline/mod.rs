//! Lossy pipelines as codec chains, modelled on the Zarr v3 codec chain: any number of
//! array->array stages, exactly one array->bytes stage (implicitly `bytes`), any number of
//! bytes->bytes stages. Every stage decodes; the chain is itself array->bytes.
//!
//! As in Zarr v3, an array->array stage may change the shape (and dtype) of a chunk (`bin`):
//! the array->bytes stage packs, and its promised bound is about, the chunk the array->array
//! stages made; decoding goes back through the shapes recorded on the way
//! ([`ArrayToArray::encoded_shape`]), so the decoded chunk has the input's dtype and shape and
//! every metric (with its halo of decoded neighbouring rows) compares element by element. A
//! chain that changes the shape cannot be stored as an HDF5 dataset of the input's shape
//! (`photonqa export`, `artifact = "hdf5"`): refused with the stage named.
//!
//! Beyond Zarr v3, a stage may keep a part of a chunk that depends on the data (`veto` keeps
//! the frames that pass its criterion): it encodes into an array and *side information*, the
//! bytes its decoder needs besides the array (which frames it kept), see
//! [`ArrayToArray::has_side`]. The chain stores, for each such stage in chain order, a 4-byte
//! little-endian length and its side bytes, then the bytes of the rest of the chain; they count
//! in the rate. A chunk that such a stage empties (no frame kept) stores no bytes for the
//! array: the array->bytes and bytes->bytes stages never see an empty array.
//!
//! A new stage is one file in `stages/` plus one line in [`registry`].

pub mod chain;
pub mod hdf5;
pub mod params;
pub mod registry;
pub mod side;
pub mod stages;

pub use chain::{Chain, PromiseCheck, RoundTrip, TripCache};
pub use params::{ParamDef, ParamKind, ParamValue, StageConfig};

use serde_json::Value;

use crate::data::{DType, NdArray};
use crate::stats::histogram::Histogram;

/// Which part of the codec chain a stage belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKind {
    /// Transforms an array into another array (lossy preprocessing).
    ArrayToArray,
    /// Serialises an array into bytes.
    ArrayToBytes,
    /// Transforms bytes into bytes (compressors, shuffles).
    BytesToBytes,
}

impl StageKind {
    /// Short name as printed by `photonqa stages`.
    pub fn name(self) -> &'static str {
        match self {
            StageKind::ArrayToArray => "array->array",
            StageKind::ArrayToBytes => "array->bytes",
            StageKind::BytesToBytes => "bytes->bytes",
        }
    }
}

/// Error raised by a stage while encoding or decoding (e.g. a corrupt compressed stream).
#[derive(Debug, Clone, thiserror::Error)]
#[error("stage {stage}: {message}")]
pub struct CodecError {
    /// Stage id.
    pub stage: &'static str,
    /// What went wrong.
    pub message: String,
}

impl CodecError {
    /// An error of `stage`.
    pub fn new(stage: &'static str, message: impl Into<String>) -> Self {
        CodecError {
            stage,
            message: message.into(),
        }
    }
}

/// Whole-volume statistics of a stage's input, computed by a streaming pass when a stage asks.
pub trait InputStats {
    /// Minimum and maximum of the input.
    fn range(&mut self) -> Result<(f64, f64), String>;
    /// The input's histogram as scikit-image's `histogram(image, 256, source_range='image')`
    /// makes it (256 bins over [min, max] for floats, one bin per value for integers).
    fn histogram(&mut self) -> Result<Histogram, String>;
}

/// A stage that maps an array to an array.
pub trait ArrayToArray: Send + Sync {
    /// Computes data-derived parameters (Otsu threshold, data range) from whole-volume
    /// statistics of the stage's input. Most stages need none.
    fn fit(&mut self, _stats: &mut dyn InputStats) -> Result<(), String> {
        Ok(())
    }
    /// True when `fit` must run before encoding.
    fn needs_fit(&self) -> bool {
        false
    }
    /// Data-derived parameters after `fit`, for the results (e.g. `{"threshold": 0.31}`).
    fn fitted(&self) -> Value {
        Value::Null
    }
    /// The shape this stage encodes a chunk of `shape` into (the Zarr v3 codec chain's
    /// "encoded representation"): the chain computes the shapes through its array->array
    /// stages before the array->bytes stage decodes, and hands each stage's decoder the shape
    /// its input had. Most stages keep the shape; an error when the stage cannot take a chunk
    /// of `shape`.
    fn encoded_shape(&self, shape: &[usize]) -> Result<Vec<usize>, CodecError> {
        Ok(shape.to_vec())
    }
    /// Encodes one chunk (into [`ArrayToArray::encoded_shape`] of its shape).
    fn encode(&self, input: NdArray) -> Result<NdArray, CodecError>;
    /// Decodes one chunk back to the stage's input dtype and `shape`, the shape of the chunk
    /// it encoded (lossy stages return an estimate). A stage that changes the shape refuses an
    /// `encoded` array of another shape than [`ArrayToArray::encoded_shape`] of `shape`.
    fn decode(&self, encoded: NdArray, shape: &[usize]) -> Result<NdArray, CodecError>;
    /// The bound this stage promises (after `fit`) between its input and its own decoding of
    /// what it encoded, checked on every chunk of every run (see [`Promise`]). Most stages
    /// promise none.
    fn promised(&self) -> Option<Promise> {
        None
    }
    /// Whether the stage encodes a chunk into an array *and side information*: bytes its
    /// decoder needs besides the array, because what it keeps depends on the data (`veto`:
    /// which frames it kept, so also how many). Such a stage's [`ArrayToArray::encoded_shape`]
    /// is only an upper bound; the chain stores the side bytes with the chunk, counts them in
    /// the rate, and decodes with [`ArrayToArray::encoded_shape_with`] and
    /// [`ArrayToArray::decode_with`]. Most stages have none.
    fn has_side(&self) -> bool {
        false
    }
    /// Encodes one chunk into an array and its side information (empty for a stage without,
    /// whose output is [`ArrayToArray::encode`]'s).
    fn encode_with_side(&self, input: NdArray) -> Result<(NdArray, Vec<u8>), CodecError> {
        Ok((self.encode(input)?, Vec::new()))
    }
    /// The shape this stage encoded a chunk of `shape` into, given the side information it
    /// made; without side information, [`ArrayToArray::encoded_shape`].
    fn encoded_shape_with(&self, shape: &[usize], _side: &[u8]) -> Result<Vec<usize>, CodecError> {
        self.encoded_shape(shape)
    }
    /// Decodes one chunk of `shape` given the side information made with it; without side
    /// information, [`ArrayToArray::decode`].
    fn decode_with(
        &self,
        encoded: NdArray,
        shape: &[usize],
        _side: &[u8],
    ) -> Result<NdArray, CodecError> {
        self.decode(encoded, shape)
    }
}

/// A stage that serialises an array to bytes.
pub trait ArrayToBytes: Send + Sync {
    /// Encodes one chunk.
    fn encode(&self, input: &NdArray) -> Result<Vec<u8>, CodecError>;
    /// Decodes one chunk of `shape`.
    fn decode(&self, bytes: &[u8], shape: &[usize]) -> Result<NdArray, CodecError>;
    /// The bound this stage promises on a chunk of `shape` (its own input against its own
    /// decoded output), which every run checks independently (see [`Promise`]). Most stages
    /// promise none.
    fn promised(&self, _shape: &[usize]) -> Option<Promise> {
        None
    }
    /// The files the decoder needs besides the stream (a learned codec's model), which the
    /// rate charges (see [`side`]). Most stages need none.
    fn side_files(&self) -> Option<&side::SideFiles> {
        None
    }
}

/// A bound that a lossy stage promises on every chunk it encodes, in the terms its codec
/// documents. The chain measures the stage's decoded output against the stage's own input
/// (not against the chain's input, so array->array stages before it do not blur the check)
/// with photonqa's code, never the codec's (`metrics::comparison::BoundSums` measures
/// each [`PromiseCheck`] a round trip lists).
///
/// The codecs encode each chunk independently, so "the value range" and "PSNR" are those of
/// the values the stage encoded together: one chunk, or one 2-D plane of it for JPEG 2000.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Promise {
    /// `|y - x| <= bound` for every value.
    AbsError(f64),
    /// `|y - x| <= rel * (max - min)`, the range of the chunk's input.
    RelError(f64),
    /// `10 log10(peak^2 / mse) >= db` for each unit: the chunk, or each 2-D plane (last two
    /// axes) when `per_plane`; `peak` is fixed (e.g. `2^16 - 1` for uint16 JPEG 2000) or, when
    /// `None`, the unit's value range `max - min`.
    Psnr {
        /// Promised PSNR in dB.
        db: f64,
        /// Peak value, `None` for the unit's value range.
        peak: Option<f64>,
        /// Whether the unit is each 2-D plane rather than the chunk.
        per_plane: bool,
    },
    /// `sqrt(sum (y - x)^2) <= bound` over each chunk.
    L2Norm(f64),
    /// `|y - x| <= rel * |x|` for every value (rounding a float's mantissa).
    PointwiseRel(f64),
    /// The stage's encoded output is at most `bits` bits per value of the chunk. A stage
    /// includes in `bits` the fixed overheads its codec documents (headers, block padding).
    BitsPerValue {
        /// The nominal rate the user asked for (reported as the promise).
        nominal: f64,
        /// The documented ceiling for this chunk's shape, `>= nominal`.
        bits: f64,
    },
}

impl Promise {
    /// Short name of the kind: `abs`, `rel`, `psnr`, `l2`, `rate`.
    pub fn kind(&self) -> &'static str {
        match self {
            Promise::AbsError(_) => "abs",
            Promise::RelError(_) => "rel",
            Promise::Psnr { .. } => "psnr",
            Promise::L2Norm(_) => "l2",
            Promise::PointwiseRel(_) => "pointwise_rel",
            Promise::BitsPerValue { .. } => "rate",
        }
    }

    /// The promised value as the user gave it.
    pub fn value(&self) -> f64 {
        match *self {
            Promise::AbsError(v)
            | Promise::RelError(v)
            | Promise::L2Norm(v)
            | Promise::PointwiseRel(v) => v,
            Promise::Psnr { db, .. } => db,
            Promise::BitsPerValue { nominal, .. } => nominal,
        }
    }

    /// Whether larger observed values are worse (all but PSNR).
    pub fn upper(&self) -> bool {
        !matches!(self, Promise::Psnr { .. })
    }
}

/// A stage that maps bytes to bytes.
pub trait BytesToBytes: Send + Sync {
    /// Encodes.
    fn encode(&self, input: &[u8]) -> Result<Vec<u8>, CodecError>;
    /// Decodes; a corrupt or truncated stream is an error.
    fn decode(&self, encoded: &[u8]) -> Result<Vec<u8>, CodecError>;
}

/// A stage built from its configuration.
pub enum Stage {
    /// An array->array stage and the dtype it outputs.
    ArrayToArray(Box<dyn ArrayToArray>, DType),
    /// An array->bytes stage.
    ArrayToBytes(Box<dyn ArrayToBytes>),
    /// A bytes->bytes stage.
    BytesToBytes(Box<dyn BytesToBytes>),
}

/// What a stage knows about its input when it is built.
#[derive(Debug, Clone, Copy)]
pub struct StageInput {
    /// Element type of the array (for bytes->bytes stages: of the array before serialisation).
    pub dtype: DType,
}

/// A registered stage: its id, kind, documentation, parameters and constructor.
pub struct StageDef {
    /// Id used in scenarios (`stage = "zstd"`).
    pub id: &'static str,
    /// Other accepted ids.
    pub aliases: &'static [&'static str],
    /// Where in the chain it goes.
    pub kind: StageKind,
    /// One-line description.
    pub summary: &'static str,
    /// Whether decoding reproduces the input bit for bit (checked on every run).
    pub lossless: bool,
    /// Declared parameters.
    pub params: &'static [ParamDef],
    /// Builds the stage; errors name the offending parameter.
    pub create: fn(&StageConfig, StageInput) -> Result<Stage, String>,
}
