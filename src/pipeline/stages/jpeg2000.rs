//! `jpeg2000`: JPEG 2000 (ISO/IEC 15444-1) through `numcodecs-jpeg2000` (OpenJPEG vendored in
//! `openjpeg-sys`), each 2-D plane of the last two axes one codestream, as Marone et al. 2020
//! (doi:10.1107/S1600577520011844) compressed tomographic projections.
//!
//! JPEG 2000 codes integers: the input must be 8- or 16-bit integers (quantize floats first).
//! Modes and what each promises (checked on every run, see [`crate::pipeline::Promise`]):
//! - `psnr`: each plane's PSNR `>= psnr` dB with OpenJPEG's peak `2^bits - 1` (255 for 8-bit,
//!   65535 for 16-bit data; OpenJPEG's fixed-quality rate allocation aims at it with its own
//!   distortion estimate, so it is a target the check verifies);
//! - `ratio`: at most `bits / ratio` bits per value, plus the container: a length prefix per
//!   plane (at most 5 bytes), numcodecs' header (at most `16 + 10 rank` bytes) and photonqa's
//!   4-byte checksum. OpenJPEG (`opj_j2k_update_rates`) takes its estimate of the headers
//!   off the budget and keeps at least 30 bytes of data per tile, so small planes (the tooth
//!   projections' 2 x 640) exceed the ratio and the check says so.

use numcodecs::AnyArray;
use numcodecs_jpeg2000::Jpeg2000CompressionMode;

use crate::data::{DType, NdArray};
use crate::pipeline::params::{ANY_FLOAT, Default};
use crate::pipeline::stages::guard::{self, CHECKSUM_BYTES};
use crate::pipeline::{
    ArrayToBytes, CodecError, ParamDef, ParamKind, Promise, Stage, StageConfig, StageDef,
    StageInput, StageKind,
};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "jpeg2000",
    aliases: &["j2k"],
    kind: StageKind::ArrayToBytes,
    summary: "JPEG 2000 (OpenJPEG) per 2-D plane of 8/16-bit integers, to a PSNR or a compression ratio, checked on every run",
    lossless: false,
    params: &[
        ParamDef {
            name: "mode",
            kind: ParamKind::Choice(&["psnr", "ratio"]),
            default: Default::Str("psnr"),
            doc: "psnr (uses psnr) or ratio (uses ratio)",
        },
        ParamDef {
            name: "psnr",
            kind: ANY_FLOAT,
            default: Default::Derived("required with mode = \"psnr\""),
            doc: "PSNR target of each plane in dB (peak 2^bits - 1), > 0",
        },
        ParamDef {
            name: "ratio",
            kind: ANY_FLOAT,
            default: Default::Derived("required with mode = \"ratio\""),
            doc: "compression ratio of each plane, >= 1",
        },
    ],
    create,
};

fn create(config: &StageConfig, input: StageInput) -> Result<Stage, String> {
    let bits = match input.dtype {
        DType::Uint8 | DType::Int8 => 8u32,
        DType::Uint16 | DType::Int16 => 16,
        other if other.is_float() => {
            return Err(format!(
                "needs 8- or 16-bit integer input, got {other}: quantize first (e.g. stage = \"quantize\" with dtype = \"uint16\")"
            ));
        }
        other => {
            return Err(format!(
                "needs 8- or 16-bit integer input, got {other} (OpenJPEG codes at most 16 bits here)"
            ));
        }
    };
    let mode = config.str("mode");
    let value = config.float(config.selected("mode", &[("psnr", "psnr"), ("ratio", "ratio")])?);
    let peak = ((1u64 << bits) - 1) as f64;
    let (codec_mode, promise) = if mode == "psnr" {
        if value.is_nan() || value <= 0.0 || value > 300.0 {
            return Err(format!("psnr = {value} must be in (0, 300] dB"));
        }
        (
            Jpeg2000CompressionMode::PSNR { psnr: value as f32 },
            Nominal::Psnr(value),
        )
    } else {
        if value.is_nan() || value < 1.0 {
            return Err(format!("ratio = {value} must be >= 1"));
        }
        (
            Jpeg2000CompressionMode::Rate { rate: value as f32 },
            Nominal::Rate(bits as f64 / value),
        )
    };
    Ok(Stage::ArrayToBytes(Box::new(Jpeg2000 {
        dtype: input.dtype,
        mode: codec_mode,
        nominal: promise,
        peak,
    })))
}

enum Nominal {
    Psnr(f64),
    Rate(f64),
}

struct Jpeg2000 {
    dtype: DType,
    mode: Jpeg2000CompressionMode,
    nominal: Nominal,
    peak: f64,
}

impl ArrayToBytes for Jpeg2000 {
    fn encode(&self, input: &NdArray) -> Result<Vec<u8>, CodecError> {
        let encoded = match input {
            NdArray::Uint8(a) => {
                guard::with_view(a, |v| numcodecs_jpeg2000::compress(v, &self.mode))
            }
            NdArray::Int8(a) => {
                guard::with_view(a, |v| numcodecs_jpeg2000::compress(v, &self.mode))
            }
            NdArray::Uint16(a) => {
                guard::with_view(a, |v| numcodecs_jpeg2000::compress(v, &self.mode))
            }
            NdArray::Int16(a) => {
                guard::with_view(a, |v| numcodecs_jpeg2000::compress(v, &self.mode))
            }
            other => {
                return Err(CodecError::new(
                    DEF.id,
                    format!("needs 8- or 16-bit integers, got {}", other.dtype()),
                ));
            }
        }
        .map_err(|e| CodecError::new(DEF.id, guard::chain_message(&e)))?;
        Ok(guard::seal(encoded))
    }

    fn decode(&self, bytes: &[u8], shape: &[usize]) -> Result<NdArray, CodecError> {
        let payload = guard::open(DEF.id, bytes)?;
        let corrupt = |what: String| CodecError::new(DEF.id, format!("corrupt stream: {what}"));
        check_payload(payload, shape).map_err(corrupt)?;
        let decoded = numcodecs_jpeg2000::decompress(payload)
            .map_err(|e| corrupt(guard::chain_message(&e)))?;
        if decoded.shape() != shape {
            return Err(corrupt(format!(
                "decoded shape {:?}, expected {shape:?}",
                decoded.shape()
            )));
        }
        let to_le = |a: &AnyArray| -> Vec<u8> {
            match a {
                AnyArray::U8(a) => a.iter().copied().collect(),
                AnyArray::I8(a) => a.iter().flat_map(|v| v.to_le_bytes()).collect(),
                AnyArray::U16(a) => a.iter().flat_map(|v| v.to_le_bytes()).collect(),
                AnyArray::I16(a) => a.iter().flat_map(|v| v.to_le_bytes()).collect(),
                _ => Vec::new(),
            }
        };
        NdArray::from_le_bytes(self.dtype, shape, &to_le(&decoded))
            .map_err(|e| corrupt(format!("{e} (decoded {})", decoded.dtype())))
    }

    fn promised(&self, shape: &[usize]) -> Option<Promise> {
        Some(match self.nominal {
            Nominal::Psnr(db) => Promise::Psnr {
                db,
                peak: Some(self.peak),
                per_plane: true,
            },
            Nominal::Rate(nominal) => {
                let values: usize = shape.iter().product();
                let plane = match shape {
                    [.., h, w] => h * w,
                    [w] => *w,
                    [] => 1,
                };
                let planes = values.checked_div(plane).unwrap_or(0);
                let container = 5 * planes + 16 + 10 * shape.len() + CHECKSUM_BYTES;
                Promise::BitsPerValue {
                    nominal,
                    bits: nominal + 8.0 * container as f64 / values.max(1) as f64,
                }
            }
        })
    }
}

/// Checks a payload before numcodecs-jpeg2000 and OpenJPEG decode it: it must be what
/// [`Jpeg2000::encode`] writes for a chunk of `shape`, numcodecs-jpeg2000's header (postcard:
/// dtype, shape, version) declaring that shape, then one codestream per 2-D plane of the last
/// two axes (postcard byte strings), each opening with a SIZ marker (ISO/IEC 15444-1, A.5.1)
/// of one unsubsampled component covering exactly the plane from the origin. Otherwise
/// numcodecs-jpeg2000 allocates the array its header declares and OpenJPEG the image its SIZ
/// marker declares before noticing (a few bytes declare terabytes), and numcodecs-jpeg2000
/// reads a subsampled component past its end (it copies `width x height` values).
fn check_payload(payload: &[u8], shape: &[usize]) -> Result<(), String> {
    let ((_, declared, _), mut rest) =
        postcard::take_from_bytes::<(numcodecs_jpeg2000::Jpeg2000DType, Vec<usize>, String)>(
            payload,
        )
        .map_err(|e| format!("no header: {e}"))?;
    if declared != shape {
        return Err(format!(
            "the header declares shape {declared:?}, the chunk is {shape:?}"
        ));
    }
    let [planes @ .., height, width] = shape else {
        return Err(format!("a chunk of shape {shape:?} has no 2-D planes"));
    };
    for plane in 0..planes.iter().product::<usize>() {
        let (codestream, after) = postcard::take_from_bytes::<&[u8]>(rest)
            .map_err(|e| format!("plane {plane}: no codestream: {e}"))?;
        check_siz(codestream, (*width, *height)).map_err(|e| format!("plane {plane}: {e}"))?;
        rest = after;
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after the last plane", rest.len()));
    }
    Ok(())
}

/// Checks that a JPEG 2000 codestream opens with SOC and a SIZ marker describing an image of
/// `width x height` at the origin in one component, not subsampled, on tiles from the origin.
fn check_siz(codestream: &[u8], (width, height): (usize, usize)) -> Result<(), String> {
    // SOC, SIZ, Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz, XTsiz, YTsiz, XTOsiz, YTOsiz, Csiz, then
    // Ssiz, XRsiz, YRsiz of the one component: 45 bytes, big-endian.
    let Some(siz) = codestream.get(..45) else {
        return Err(format!(
            "a codestream of {} bytes has no SIZ marker",
            codestream.len()
        ));
    };
    let u16_at = |i: usize| u16::from_be_bytes([siz[i], siz[i + 1]]);
    let u32_at = |i: usize| u32::from_be_bytes(siz[i..i + 4].try_into().expect("4 bytes"));
    if (u16_at(0), u16_at(2), u16_at(4)) != (0xFF4F, 0xFF51, 41) || u16_at(40) != 1 {
        return Err("the codestream does not open with the SIZ marker of one component".into());
    }
    let image = (u32_at(8) as usize, u32_at(12) as usize);
    let origins = [16, 20, 32, 36].map(u32_at);
    let tiles = (u32_at(24), u32_at(28));
    if image != (width, height) || origins != [0; 4] || tiles.0 == 0 || tiles.1 == 0 {
        return Err(format!(
            "the SIZ marker declares an image of {} x {} at {:?} in tiles of {} x {}, the plane is {width} x {height}",
            image.0,
            image.1,
            &origins[..2],
            tiles.0,
            tiles.1
        ));
    }
    if (siz[43], siz[44]) != (1, 1) {
        return Err(format!(
            "the SIZ marker subsamples the component by {} x {}",
            siz[43], siz[44]
        ));
    }
    Ok(())
}
