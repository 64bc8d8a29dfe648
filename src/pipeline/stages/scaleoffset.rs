//! `scaleoffset`: HDF5's own scale-offset filter (`H5Pset_scaleoffset`, filter 6), run by the
//! HDF5 library photonqa links: each chunk is written to an in-memory HDF5 file with the filter
//! on a dataset whose one chunk is the whole chunk, and the filtered chunk is read raw
//! (`H5Dread_chunk`); decoding writes those bytes back raw (`H5Dwrite_chunk`) into a fresh
//! in-memory file and reads the dataset, so the filter decodes them (no chunk cache involved).
//!
//! Floats use D-scaling: HDF5 keeps `decimals` decimal digits (`lround((x - min) 10^D)`), so the
//! stage promises rounding to them, `|y - x| <= 0.5 10^-decimals`, checked on every run. HDF5
//! computes in the data's own precision, and with Debian's HDF5 1.10.8 the error reaches
//! `10^-decimals` on the reference volume: the check reports those values. Integers use the
//! filter's automatic minimum bits, which is lossless (promised as an absolute error of 0).
//!
//! The raw chunk is framed by photonqa's checksum before HDF5's decoder sees it.

use std::sync::atomic::{AtomicU64, Ordering};

use hdf5::H5Type;
use hdf5::filters::ScaleOffset;
use ndarray::{ArrayD, IxDyn};

use crate::data::{DType, Element, IntoNdArray, NdArray, c_order};
use crate::pipeline::params::Default;
use crate::pipeline::stages::guard;
use crate::pipeline::{
    ArrayToBytes, CodecError, ParamDef, ParamKind, Promise, Stage, StageConfig, StageDef,
    StageInput, StageKind,
};
use crate::{with_array, with_dtype};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "scaleoffset",
    aliases: &["scale-offset"],
    kind: StageKind::ArrayToBytes,
    summary: "HDF5's scale-offset filter: floats rounded to `decimals` decimal digits (D-scale), integers losslessly",
    lossless: false,
    params: &[ParamDef {
        name: "decimals",
        kind: ParamKind::Int { min: 0, max: 15 },
        default: Default::Int(3),
        doc: "decimal digits kept of floats (HDF5's D-scale factor); ignored for integers",
    }],
    create,
};

fn create(config: &StageConfig, input: StageInput) -> Result<Stage, String> {
    let decimals = config.int("decimals") as u8;
    let (mode, bound) = if input.dtype.is_float() {
        (
            ScaleOffset::FloatDScale(decimals),
            0.5 * 10f64.powi(-i32::from(decimals)),
        )
    } else {
        (ScaleOffset::Integer(0), 0.0)
    };
    Ok(Stage::ArrayToBytes(Box::new(ScaleOffsetStage {
        dtype: input.dtype,
        mode,
        bound,
    })))
}

struct ScaleOffsetStage {
    dtype: DType,
    mode: ScaleOffset,
    bound: f64,
}

/// A fresh in-memory HDF5 file (core driver, never written to disk), named uniquely in the
/// process so that concurrent chunks do not share one.
fn memory_file() -> hdf5::Result<hdf5::File> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    hdf5::File::with_options()
        .with_fapl(|p| p.core_filebacked(false))
        .create(format!(
            "photonqa-scaleoffset-{}-{n}.h5",
            std::process::id()
        ))
}

/// A dataset of `shape` whose single chunk is the whole array, with the filter.
fn dataset<T: H5Type>(
    file: &hdf5::File,
    shape: &[usize],
    mode: ScaleOffset,
) -> hdf5::Result<hdf5::Dataset> {
    file.new_dataset::<T>()
        .shape(shape)
        .chunk(shape)
        .scale_offset(mode)
        .create("v")
}

fn encode_typed<T: H5Type + Element>(a: &ArrayD<T>, mode: ScaleOffset) -> Result<Vec<u8>, String> {
    let file = memory_file().map_err(|e| e.to_string())?;
    let ds = dataset::<T>(&file, a.shape(), mode).map_err(|e| e.to_string())?;
    let data = c_order(a);
    let view = ndarray::ArrayView::from_shape(IxDyn(a.shape()), &data).expect("C order");
    ds.write(view).map_err(|e| e.to_string())?;
    let offset = vec![0u64; a.ndim()];
    hdf5::sync::sync(|| {
        let mut filters = 0u32;
        // SAFETY: the dataset is open, `offset` has one entry per axis, and the buffer holds
        // the dataset's storage size, which is its one chunk's.
        unsafe {
            let size = hdf5_sys::h5d::H5Dget_storage_size(ds.id());
            if size == 0 {
                return Err("the filtered chunk is empty".to_string());
            }
            let mut raw = vec![0u8; 4 + size as usize];
            if hdf5_sys::h5d::H5Dread_chunk1(
                ds.id(),
                hdf5_sys::h5p::H5P_DEFAULT,
                offset.as_ptr(),
                &mut filters,
                raw[4..].as_mut_ptr().cast(),
            ) < 0
            {
                return Err("cannot read the filtered chunk".to_string());
            }
            raw[..4].copy_from_slice(&filters.to_le_bytes());
            Ok(raw)
        }
    })
}

fn decode_typed<T: H5Type + Element>(
    payload: &[u8],
    shape: &[usize],
    mode: ScaleOffset,
) -> Result<NdArray, String>
where
    ArrayD<T>: IntoNdArray,
{
    if payload.len() < 4 {
        return Err("no filter mask".into());
    }
    let (mask, raw) = payload.split_at(4);
    let mask = u32::from_le_bytes(mask.try_into().expect("4 bytes"));
    let file = memory_file().map_err(|e| e.to_string())?;
    let ds = dataset::<T>(&file, shape, mode).map_err(|e| e.to_string())?;
    let offset = vec![0u64; shape.len()];
    hdf5::sync::sync(|| {
        // SAFETY: the dataset is open, `offset` has one entry per axis, `raw` is readable.
        let status = unsafe {
            hdf5_sys::h5d::H5Dwrite_chunk(
                ds.id(),
                hdf5_sys::h5p::H5P_DEFAULT,
                mask,
                offset.as_ptr(),
                raw.len(),
                raw.as_ptr().cast(),
            )
        };
        if status < 0 {
            Err("cannot write the filtered chunk".to_string())
        } else {
            Ok(())
        }
    })?;
    let decoded: ArrayD<T> = ds.read_dyn().map_err(|e| e.to_string())?;
    if decoded.shape() != shape {
        return Err(format!("decoded shape {:?}", decoded.shape()));
    }
    Ok(decoded.into_nd())
}

impl ArrayToBytes for ScaleOffsetStage {
    fn encode(&self, input: &NdArray) -> Result<Vec<u8>, CodecError> {
        if input.is_empty() {
            return Err(CodecError::new(DEF.id, "cannot store an empty chunk"));
        }
        let raw = with_array!(input, a => encode_typed(a, self.mode))
            .map_err(|e| CodecError::new(DEF.id, e))?;
        Ok(guard::seal(raw))
    }

    fn decode(&self, bytes: &[u8], shape: &[usize]) -> Result<NdArray, CodecError> {
        let payload = guard::open(DEF.id, bytes)?;
        with_dtype!(self.dtype, T => decode_typed::<T>(payload, shape, self.mode))
            .map_err(|e| CodecError::new(DEF.id, format!("corrupt stream: {e}")))
    }

    fn promised(&self, _shape: &[usize]) -> Option<Promise> {
        Some(Promise::AbsError(self.bound))
    }
}
