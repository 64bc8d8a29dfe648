//! `pcodec`: lossless compression of numeric arrays with Pcodec (the `pco` crate, pure Rust),
//! the values in C order as one standalone Pco file per chunk, framed by photonqa's checksum.

use ndarray::{ArrayD, IxDyn};
use pco::ChunkConfig;
use pco::data_types::Number;

use crate::data::{DType, Element, IntoNdArray, NdArray, c_order};
use crate::pipeline::params::Default;
use crate::pipeline::stages::guard;
use crate::pipeline::{
    ArrayToBytes, CodecError, ParamDef, ParamKind, Stage, StageConfig, StageDef, StageInput,
    StageKind,
};
use crate::{with_array, with_dtype};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "pcodec",
    aliases: &["pco"],
    kind: StageKind::ArrayToBytes,
    summary: "Pcodec lossless numeric compression (any dtype), one standalone file per chunk",
    lossless: true,
    params: &[ParamDef {
        name: "level",
        kind: ParamKind::Int { min: 0, max: 12 },
        default: Default::Int(8),
        doc: "compression level (0: fastest, 12: strongest)",
    }],
    create,
};

fn create(config: &StageConfig, input: StageInput) -> Result<Stage, String> {
    Ok(Stage::ArrayToBytes(Box::new(Pcodec {
        dtype: input.dtype,
        level: config.int("level") as usize,
    })))
}

struct Pcodec {
    dtype: DType,
    level: usize,
}

fn compress<T: Element + Number>(a: &ArrayD<T>, level: usize) -> Result<Vec<u8>, CodecError> {
    let config = ChunkConfig::default()
        .with_compression_level(level)
        .with_enable_8_bit(true);
    pco::standalone::simple_compress(&c_order(a), &config)
        .map_err(|e| CodecError::new(DEF.id, e.to_string()))
}

fn decompress<T: Element + Number>(payload: &[u8], shape: &[usize]) -> Result<NdArray, CodecError>
where
    ArrayD<T>: IntoNdArray,
{
    let corrupt = |what: String| CodecError::new(DEF.id, format!("corrupt stream: {what}"));
    // Decoded into memory sized by the known shape, never by what the stream declares.
    let mut values = vec![T::default(); shape.iter().product()];
    let progress = pco::standalone::simple_decompress_into(payload, &mut values)
        .map_err(|e| corrupt(e.to_string()))?;
    if progress.n_processed != values.len() || !progress.finished {
        return Err(corrupt(format!(
            "{} values for a chunk of {}",
            progress.n_processed,
            values.len()
        )));
    }
    Ok(ArrayD::from_shape_vec(IxDyn(shape), values)
        .expect("sized to its shape")
        .into_nd())
}

impl ArrayToBytes for Pcodec {
    fn encode(&self, input: &NdArray) -> Result<Vec<u8>, CodecError> {
        let payload = with_array!(input, a => compress(a, self.level))?;
        Ok(guard::seal(payload))
    }

    fn decode(&self, bytes: &[u8], shape: &[usize]) -> Result<NdArray, CodecError> {
        let payload = guard::open(DEF.id, bytes)?;
        with_dtype!(self.dtype, T => decompress::<T>(payload, shape))
    }
}
