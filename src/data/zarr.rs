//! Zarr inputs: an array of a Zarr v2 or v3 store on the file system, `data.zarr::/path` (the
//! array at the store's root: `data.zarr` or `data.zarr::/`), read with `zarrs`.
//!
//! Element types are the 8-64-bit integers and 32/64-bit floats; codecs are those zarr-python
//! writes by default (zstd, for both formats) and gzip, with sharding, transpose and crc32c;
//! blosc is not built in (its vendored C-Blosc would clash with the one of the `blosc` stage),
//! so an array compressed with it is an error naming the codec. A slab reads rows `z0..z1` of
//! axis 0: zarrs decodes only the chunks those rows overlap.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use zarrs::array::data_type::{
    Float32DataType, Float64DataType, Int8DataType, Int16DataType, Int32DataType, Int64DataType,
    UInt8DataType, UInt16DataType, UInt32DataType, UInt64DataType,
};
use zarrs::array::{Array, ArraySubset};
use zarrs::filesystem::FilesystemStore;

use super::DataError;
use super::array::{DType, IntoNdArray, NdArray};
use super::source::{VolumeSource, check_rows};
use crate::with_dtype;

/// One array of a Zarr store.
pub struct ZarrSource {
    array: Array<FilesystemStore>,
    shape: Vec<usize>,
    dtype: DType,
    label: String,
}

impl ZarrSource {
    /// Opens the array at `path` (absolute inside the store, `/` for the root) of the store
    /// folder `store`.
    pub fn open(store: &Path, path: &str) -> Result<Self, DataError> {
        let label = format!("{}::{path}", store.display());
        let err = |m: String| DataError::new(&label, m);
        if !store.is_dir() {
            return Err(err(format!(
                "{} is not a folder: a Zarr store is a folder (zarr.json, or .zarray for Zarr v2)",
                store.display()
            )));
        }
        let storage = FilesystemStore::new(store)
            .map_err(|e| err(format!("cannot open the Zarr store: {e}")))?;
        let array = Array::open(Arc::new(storage), path)
            .map_err(|e| err(format!("not a readable Zarr array: {e}")))?;
        let data_type = array.data_type();
        let dtype = [
            (data_type.is::<UInt8DataType>(), DType::Uint8),
            (data_type.is::<UInt16DataType>(), DType::Uint16),
            (data_type.is::<UInt32DataType>(), DType::Uint32),
            (data_type.is::<UInt64DataType>(), DType::Uint64),
            (data_type.is::<Int8DataType>(), DType::Int8),
            (data_type.is::<Int16DataType>(), DType::Int16),
            (data_type.is::<Int32DataType>(), DType::Int32),
            (data_type.is::<Int64DataType>(), DType::Int64),
            (data_type.is::<Float32DataType>(), DType::Float32),
            (data_type.is::<Float64DataType>(), DType::Float64),
        ]
        .into_iter()
        .find_map(|(is, dtype)| is.then_some(dtype))
        .ok_or_else(|| {
            err(format!(
                "unsupported data type {}: photonqa reads 8-64-bit integers and 32/64-bit floats",
                array.data_type()
            ))
        })?;
        let shape = array
            .shape()
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| err(format!("shape {:?} is too large", array.shape())))?;
        Ok(ZarrSource {
            array,
            shape,
            dtype,
            label,
        })
    }
}

impl VolumeSource for ZarrSource {
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn dtype(&self) -> DType {
        self.dtype
    }
    fn label(&self) -> &str {
        &self.label
    }
    fn read_slab(&self, rows: Range<usize>) -> Result<NdArray, DataError> {
        check_rows(self, &rows)?;
        let ranges: Vec<Range<u64>> = std::iter::once(rows.start as u64..rows.end as u64)
            .chain(self.shape[1..].iter().map(|&d| 0..d as u64))
            .collect();
        let subset = ArraySubset::new_with_ranges(&ranges);
        with_dtype!(self.dtype, T => {
            self.array
                .retrieve_array_subset::<ndarray::ArrayD<T>>(&subset)
                .map(IntoNdArray::into_nd)
                .map_err(|e| {
                    DataError::new(&self.label, format!("cannot read rows {rows:?}: {e}"))
                })
        })
    }
}
