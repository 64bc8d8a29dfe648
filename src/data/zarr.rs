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
use zarrs::group::Group;
use zarrs::node::NodeMetadata;

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

/// The arrays of `store` at or under `path`, for `photonqa inspect`: `path` itself when it is
/// an array, else every array of the group, sorted.
pub fn array_paths(store: &Path, path: &str) -> Result<Vec<String>, DataError> {
    let label = format!("{}::{path}", store.display());
    let storage =
        Arc::new(FilesystemStore::new(store).map_err(|e| DataError::new(&label, e.to_string()))?);
    if Array::open(storage.clone(), path).is_ok() {
        return Ok(vec![path.to_string()]);
    }
    let group = Group::open(storage, path)
        .map_err(|e| DataError::new(&label, format!("neither a Zarr array nor a group: {e}")))?;
    let mut paths: Vec<String> = group
        .traverse()
        .map_err(|e| DataError::new(&label, e.to_string()))?
        .into_iter()
        .filter(|(_, metadata)| matches!(metadata, NodeMetadata::Array(_)))
        .map(|(path, _)| path.as_str().to_string())
        .collect();
    paths.sort();
    Ok(paths)
}

/// How a Zarr array is stored, from its metadata (see [`storage`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Storage {
    /// The array's shape.
    pub shape: Vec<usize>,
    /// The data type as the metadata names it (`uint16`, `<f4`, `complex64`).
    pub data_type: String,
    /// The chunk shape (the shard shape of a sharded array).
    pub chunks: Vec<usize>,
    /// The codecs by name in order: v3 `codecs` (sharding with its inner codecs in
    /// parentheses), v2 `filters` then `compressor`.
    pub codecs: Vec<String>,
}

/// How the array at `path` of `store` is stored, for `photonqa inspect`, read from its
/// metadata (also for data types photonqa does not read).
pub fn storage(store: &Path, path: &str) -> Result<Storage, DataError> {
    let label = format!("{}::{path}", store.display());
    let err = |m: String| DataError::new(&label, m);
    let storage = FilesystemStore::new(store).map_err(|e| err(e.to_string()))?;
    let array = Array::open(Arc::new(storage), path)
        .map_err(|e| err(format!("not a readable Zarr array: {e}")))?;
    let metadata = serde_json::to_value(array.metadata()).map_err(|e| err(e.to_string()))?;
    let numbers = |value: &serde_json::Value| -> Vec<usize> {
        value
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_u64())
                    .map(|v| v as usize)
                    .collect()
            })
            .unwrap_or_default()
    };
    // A data type is a name, or an object with one (extension types).
    let text = |value: &serde_json::Value| -> String {
        value
            .as_str()
            .or_else(|| value["name"].as_str())
            .map_or_else(|| value.to_string(), str::to_string)
    };
    fn names(codecs: &serde_json::Value) -> Vec<String> {
        codecs
            .as_array()
            .into_iter()
            .flatten()
            .map(|codec| {
                let name = codec["name"].as_str().unwrap_or("?").to_string();
                match codec["configuration"].get("codecs") {
                    Some(inner) => format!("{name}({})", names(inner).join(", ")),
                    None => name,
                }
            })
            .collect()
    }
    if metadata["zarr_format"] == 2 {
        let filters = metadata["filters"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(Some(&metadata["compressor"]).filter(|c| !c.is_null()))
            .map(|f| f["id"].as_str().unwrap_or("?").to_string())
            .collect();
        Ok(Storage {
            shape: numbers(&metadata["shape"]),
            data_type: text(&metadata["dtype"]),
            chunks: numbers(&metadata["chunks"]),
            codecs: filters,
        })
    } else {
        Ok(Storage {
            shape: numbers(&metadata["shape"]),
            data_type: text(&metadata["data_type"]),
            chunks: numbers(&metadata["chunk_grid"]["configuration"]["chunk_shape"]),
            codecs: names(&metadata["codecs"]),
        })
    }
}
