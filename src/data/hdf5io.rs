//! HDF5 datasets as sources and as slab-by-slab output (through `hdf5-metno`).

use std::ops::Range;
use std::path::Path;

use hdf5::types::{FloatSize, IntSize, TypeDescriptor};
use ndarray::IxDyn;

use super::DataError;
use super::array::{DType, IntoNdArray, NdArray};
use super::files::refuse_special_file;
use super::hdf5plugins::{
    PLUGIN_PATH_ENV, binding_failure, find_plugin_folder, found_plugin_folder, is_third_party,
    prepare_plugin_search,
};
use super::source::{VolumeSource, check_rows};
use crate::{with_array, with_dtype};

/// A numeric HDF5 dataset of rank 2 or 3.
pub struct Hdf5Source {
    dataset: hdf5::Dataset,
    shape: Vec<usize>,
    dtype: DType,
    label: String,
}

impl Hdf5Source {
    /// Opens `dataset` in `file`; errors name the file and the dataset. A dataset stored
    /// through third-party filters needs their plugins ([`check_filters_available`]: from
    /// `HDF5_PLUGIN_PATH`, else from hdf5plugin).
    pub fn open(file: &Path, dataset: &str) -> Result<Self, DataError> {
        let label = format!("{}::{dataset}", file.display());
        if !file.exists() {
            return Err(DataError::new(&label, "no such file".into()));
        }
        // Before HDF5 opens it: a FIFO would block the open until a writer comes.
        refuse_special_file(file).map_err(|e| DataError::new(&label, e))?;
        let h5 = hdf5::File::open(file)
            .map_err(|e| DataError::new(&label, format!("cannot open as HDF5: {e}")))?;
        let ds = h5
            .dataset(dataset)
            .map_err(|_| DataError::new(&label, format!("no dataset '{dataset}' in the file")))?;
        let descriptor = ds
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map_err(|e| DataError::new(&label, format!("unreadable datatype: {e}")))?;
        let dtype = hdf5_dtype(&descriptor).ok_or_else(|| {
            DataError::new(
                &label,
                format!("datatype {descriptor:?} is not a supported numeric type"),
            )
        })?;
        // Data compressed by a third-party filter (detectors write bitshuffle/LZ4, facilities
        // SZ3, ...) is read with hdf5plugin's plugins as it is written with them; a filter
        // that cannot be found fails here, in one line, rather than at the first slab read.
        let filters: Vec<(u32, Vec<u32>)> = ds
            .filters()
            .iter()
            .map(|filter| (filter.id() as u32, Vec::new()))
            .collect();
        check_filters_available(&filters, &label)?;
        Ok(Hdf5Source {
            shape: ds.shape(),
            dataset: ds,
            dtype,
            label,
        })
    }
}

fn hdf5_dtype(descriptor: &TypeDescriptor) -> Option<DType> {
    Some(match descriptor {
        TypeDescriptor::Unsigned(IntSize::U1) | TypeDescriptor::Boolean => DType::Uint8,
        TypeDescriptor::Unsigned(IntSize::U2) => DType::Uint16,
        TypeDescriptor::Unsigned(IntSize::U4) => DType::Uint32,
        TypeDescriptor::Unsigned(IntSize::U8) => DType::Uint64,
        TypeDescriptor::Integer(IntSize::U1) => DType::Int8,
        TypeDescriptor::Integer(IntSize::U2) => DType::Int16,
        TypeDescriptor::Integer(IntSize::U4) => DType::Int32,
        TypeDescriptor::Integer(IntSize::U8) => DType::Int64,
        TypeDescriptor::Float(FloatSize::U4) => DType::Float32,
        TypeDescriptor::Float(FloatSize::U8) => DType::Float64,
        _ => return None,
    })
}

impl VolumeSource for Hdf5Source {
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
        let read = with_dtype!(self.dtype, T => match self.shape.len() {
            2 => self.dataset.read_slice::<T, _, IxDyn>((rows.clone(), ..)).map(IntoNdArray::into_nd),
            _ => self.dataset.read_slice::<T, _, IxDyn>((rows.clone(), .., ..)).map(IntoNdArray::into_nd),
        });
        read.map_err(|e| DataError::new(&self.label, format!("cannot read rows {rows:?}: {e}")))
    }
}

/// Whether [`Hdf5Writer::create`] starts a new file or adds to an existing one. Files named by
/// the user are written through [`crate::data::files::AtomicFile`], so that only its temporary
/// file is ever truncated or changed in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// Create the file, truncating an existing one.
    Create,
    /// Open an existing file for writing; the dataset must not exist.
    Append,
    /// Open an existing file for writing and first remove the dataset if it exists. HDF5 does
    /// not reclaim the space of a removed dataset: the file keeps it until repacked (`h5repack`).
    Replace,
}

/// Whether `file` holds a dataset at `path`; an error when it holds something else there (a
/// group) or is not an HDF5 file.
pub fn has_dataset(file: &Path, path: &str) -> Result<bool, DataError> {
    let label = format!("{}::{path}", file.display());
    refuse_special_file(file).map_err(|e| DataError::new(&label, e))?;
    let h5 = hdf5::File::open(file)
        .map_err(|e| DataError::new(&label, format!("cannot open as HDF5: {e}")))?;
    let names: Vec<&str> = path.split('/').filter(|n| !n.is_empty()).collect();
    let mut prefix = String::new();
    for (depth, name) in names.iter().enumerate() {
        prefix = format!("{prefix}/{name}");
        if !h5.link_exists(&prefix) {
            return Ok(false);
        }
        if depth + 1 < names.len() && h5.group(&prefix).is_err() {
            return Err(DataError::new(&label, format!("{prefix} is not a group")));
        }
    }
    h5.dataset(path)
        .map(|_| true)
        .map_err(|_| DataError::new(&label, "exists and is not a dataset".into()))
}

/// Writes an array slab by slab along axis 0 into a new HDF5 dataset.
///
/// The dataset is chunked (one chunk per `chunk_rows` rows) and stored without filters, so any
/// HDF5 reader opens it.
pub struct Hdf5Writer {
    dataset: hdf5::Dataset,
    rows_written: usize,
    label: String,
}

impl Hdf5Writer {
    /// Creates a dataset at `path` with `shape` and `dtype` in a new file (truncating an
    /// existing one) or in an existing file, as `mode` says.
    pub fn create(
        file: &Path,
        path: &str,
        shape: &[usize],
        dtype: DType,
        chunk_rows: usize,
        mode: FileMode,
    ) -> Result<Self, DataError> {
        let (dataset, _, label) = create_dataset(
            (file, path),
            shape,
            dtype.into(),
            chunk_rows,
            (&[], FilterUse::Run),
            mode,
        )?;
        Ok(Hdf5Writer {
            dataset,
            rows_written: 0,
            label,
        })
    }

    /// [`Hdf5Writer::create`] with the filters `(id, cd_values)` in pipeline order, run by the
    /// HDF5 library as the slabs are written: built-in ones, and third-party ones from the
    /// plugin folders HDF5 searches (`HDF5_PLUGIN_PATH`). A filter HDF5 cannot load is an
    /// error naming it; a filter that fails on a chunk fails the write (mandatory filters,
    /// never a chunk silently stored unfiltered).
    pub fn create_filtered(
        (file, path): (&Path, &str),
        shape: &[usize],
        stored: StoredType,
        chunk_rows: usize,
        filters: &[(u32, Vec<u32>)],
        mode: FileMode,
    ) -> Result<Self, DataError> {
        check_filters_available(filters, &format!("{}::{path}", file.display()))?;
        let (dataset, _, label) = create_dataset(
            (file, path),
            shape,
            stored,
            chunk_rows,
            (filters, FilterUse::Run),
            mode,
        )?;
        Ok(Hdf5Writer {
            dataset,
            rows_written: 0,
            label,
        })
    }

    /// Bytes stored for each chunk, in chunk order (after the file is written).
    pub fn chunk_sizes(file: &Path, path: &str) -> Result<Vec<u64>, DataError> {
        let label = format!("{}::{path}", file.display());
        let err = |e: hdf5::Error| DataError::new(&label, e.to_string());
        let dataset = hdf5::File::open(file)
            .and_then(|f| f.dataset(path))
            .map_err(err)?;
        let count = dataset.num_chunks().unwrap_or(0);
        (0..count)
            .map(|i| {
                dataset
                    .chunk_info(i)
                    .map(|c| c.size)
                    .ok_or_else(|| DataError::new(&label, format!("no chunk {i}")))
            })
            .collect()
    }

    /// Appends the next slab (its rows follow the previous slab's).
    pub fn write_slab(&mut self, slab: &NdArray) -> Result<(), DataError> {
        let rows = self.rows_written..self.rows_written + slab.shape()[0];
        let written = with_array!(slab, a => match a.ndim() {
            2 => self.dataset.write_slice(a, (rows.clone(), ..)),
            _ => self.dataset.write_slice(a, (rows.clone(), .., ..)),
        });
        written.map_err(|e| DataError::new(&self.label, e.to_string()))?;
        self.rows_written = rows.end;
        Ok(())
    }

    /// Adds an attribute to the dataset: a string, or a float.
    pub fn set_attr(&self, name: &str, value: &AttrValue) -> Result<(), DataError> {
        set_attr(&self.dataset, name, value, &self.label)
    }
}

/// A chunked HDF5 dataset whose chunks are written already filtered (HDF5's direct chunk
/// write), for filters this process has not registered: the filter pipeline is declared on the
/// dataset (optional, as h5py declares third-party filters) and readers with the filters
/// (h5py + hdf5plugin) decode it.
pub struct RawChunkWriter {
    dataset: hdf5::Dataset,
    chunk: Vec<usize>,
    label: String,
}

impl RawChunkWriter {
    /// Creates the dataset `path` in `file` (a new file, or an existing one as `mode` says) of
    /// `shape` and `dtype`, chunked by `chunk_rows` rows, with the filters
    /// `(id, cd_values)` in pipeline order.
    pub fn create(
        (file, path): (&Path, &str),
        shape: &[usize],
        dtype: DType,
        chunk_rows: usize,
        filters: &[(u32, Vec<u32>)],
        mode: FileMode,
    ) -> Result<Self, DataError> {
        let (dataset, chunk, label) = create_dataset(
            (file, path),
            shape,
            dtype.into(),
            chunk_rows,
            (filters, FilterUse::Declared),
            mode,
        )?;
        Ok(RawChunkWriter {
            dataset,
            chunk,
            label,
        })
    }

    /// Writes the filtered bytes of chunk `index` (along axis 0).
    pub fn write_chunk(&self, index: usize, bytes: &[u8]) -> Result<(), DataError> {
        let mut offset = vec![0 as hdf5_sys::h5::hsize_t; self.chunk.len()];
        offset[0] = (index * self.chunk[0]) as hdf5_sys::h5::hsize_t;
        let id = self.dataset.id();
        // hdf5-metno has no safe direct chunk write; the call only reads `offset` (one value
        // per axis) and `bytes` (its length given), under the library's global lock.
        let status = hdf5::sync::sync(|| unsafe {
            hdf5_sys::h5d::H5Dwrite_chunk(
                id,
                hdf5_sys::h5p::H5P_DEFAULT,
                0,
                offset.as_ptr(),
                bytes.len(),
                bytes.as_ptr().cast(),
            )
        });
        if status < 0 {
            return Err(DataError::new(
                &self.label,
                format!("cannot write chunk {index}"),
            ));
        }
        Ok(())
    }

    /// Adds an attribute to the dataset: a string, or a float.
    pub fn set_attr(&self, name: &str, value: &AttrValue) -> Result<(), DataError> {
        set_attr(&self.dataset, name, value, &self.label)
    }
}

/// An error naming the first of `filters` that this HDF5 library cannot run; `label` says
/// where. The library loads third-party filters from the folders of `HDF5_PLUGIN_PATH`; when
/// that is unset and a filter is missing, hdf5plugin's folder is looked for and added first
/// (see [`find_plugin_folder`]). Also an error when a third-party filter is needed and the
/// plugins could not be prepared for this process ([`binding_failure`]).
pub fn check_filters_available(filters: &[(u32, Vec<u32>)], label: &str) -> Result<(), DataError> {
    prepare_plugin_search(filters.iter().map(|(id, _)| *id));
    let missing = || {
        filters.iter().map(|(id, _)| *id).find(|&id| {
            // Loads a plugin when needed; under the library's lock.
            hdf5::sync::sync(|| unsafe { hdf5_sys::h5z::H5Zfilter_avail(id as _) }) <= 0
        })
    };
    // Plugins that HDF5 loads unbound may fail, write other bytes or end the process.
    let plugins_needed = filters.iter().any(|(id, _)| is_third_party(*id));
    let bound = || match binding_failure().filter(|_| plugins_needed) {
        Some(cause) => Err(DataError::new(
            label,
            format!("{cause}; point TMPDIR at a writable folder with room for them"),
        )),
        None => Ok(()),
    };
    let Some(mut id) = missing() else {
        return bound();
    };
    if find_plugin_folder().is_some() {
        prepare_plugin_search(filters.iter().map(|(id, _)| *id));
        match missing() {
            Some(still) => id = still,
            None => return bound(),
        }
    }
    let hint = match (std::env::var_os(PLUGIN_PATH_ENV), found_plugin_folder()) {
        (Some(path), _) => format!(
            "no plugin for it in {PLUGIN_PATH_ENV}={}",
            path.to_string_lossy()
        ),
        (None, Some(found)) => format!(
            "no plugin for it in {} (hdf5plugin of {})",
            found.folder.display(),
            found.python.display()
        ),
        (None, None) => "no python3 on PATH (nor in $VIRTUAL_ENV) has hdf5plugin".into(),
    };
    Err(DataError::new(
        label,
        format!(
            "HDF5 filter {id} is not available to this HDF5 library: {hint}; `pip install hdf5plugin` (photonqa then finds its plugins), or point {PLUGIN_PATH_ENV} at a folder with its plugin"
        ),
    ))
}

/// How a dataset's filters are used: only declared for direct chunk writes (optional, or HDF5
/// would refuse a filter it cannot load), or run by the library as data is written (mandatory:
/// a failing filter fails the write instead of storing the chunk unfiltered).
#[derive(Debug, Clone, Copy)]
pub(crate) enum FilterUse {
    Declared,
    Run,
}

/// The element type a dataset stores: `dtype`, or with `precision` an integer type of
/// `dtype`'s size with only that many significant bits (what HDF5's N-bit filter packs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredType {
    /// The type in memory.
    pub dtype: DType,
    /// Significant bits of the stored integers (`None`: all).
    pub precision: Option<u32>,
}

impl From<DType> for StoredType {
    fn from(dtype: DType) -> StoredType {
        StoredType {
            dtype,
            precision: None,
        }
    }
}

impl StoredType {
    /// The HDF5 datatype.
    pub(crate) fn datatype(self) -> Result<hdf5::Datatype, String> {
        let native = with_dtype!(self.dtype, T => hdf5::Datatype::from_type::<T>())
            .map_err(|e| e.to_string())?;
        let Some(bits) = self.precision else {
            return Ok(native);
        };
        hdf5::sync::sync(|| {
            // SAFETY: a copy of a valid datatype, changed and then owned by the returned handle.
            unsafe {
                let id = hdf5_sys::h5t::H5Tcopy(native.id());
                if id < 0 || hdf5_sys::h5t::H5Tset_precision(id, bits as usize) < 0 {
                    return Err(format!(
                        "cannot make a {bits}-bit {} type",
                        self.dtype.name()
                    ));
                }
                hdf5::from_id::<hdf5::Datatype>(id).map_err(|e| e.to_string())
            }
        })
    }
}

/// A dataset creation property list with chunks of `chunk` and the filters `(id, cd_values)`
/// in pipeline order, declared or run as `use_` says. hdf5-metno refuses filters this process
/// has not registered; HDF5 itself accepts them on the creation property list.
pub(crate) fn filtered_dcpl(
    chunk: &[usize],
    filters: &[(u32, Vec<u32>)],
    use_: FilterUse,
) -> Result<hdf5::plist::DatasetCreate, String> {
    let dcpl = hdf5::plist::DatasetCreate::build()
        .chunk(chunk)
        .finish()
        .map_err(|e| e.to_string())?;
    for (id, cd_values) in filters {
        // Reads `cd_values.len()` values from its pointer; under the library's lock.
        let status = hdf5::sync::sync(|| unsafe {
            hdf5_sys::h5p::H5Pset_filter(
                dcpl.id(),
                *id as _,
                match use_ {
                    FilterUse::Declared => hdf5_sys::h5z::H5Z_FLAG_OPTIONAL,
                    FilterUse::Run => hdf5_sys::h5z::H5Z_FLAG_MANDATORY,
                },
                cd_values.len(),
                cd_values.as_ptr(),
            )
        });
        if status < 0 {
            return Err(format!("cannot set HDF5 filter {id}"));
        }
    }
    Ok(dcpl)
}

/// Creates dataset `path` in `file` (a new file, or an existing one as `mode` says) of `shape`
/// and `stored` type, chunked by `chunk_rows` rows, with the filters
/// `(id, cd_values)` in pipeline order, declared or run as `use_` says; returns it, its chunk
/// shape and its label.
fn create_dataset(
    (file, path): (&Path, &str),
    shape: &[usize],
    stored: StoredType,
    chunk_rows: usize,
    (filters, use_): (&[(u32, Vec<u32>)], FilterUse),
    mode: FileMode,
) -> Result<(hdf5::Dataset, Vec<usize>, String), DataError> {
    let h5 = match mode {
        FileMode::Create => hdf5::File::create(file),
        FileMode::Append | FileMode::Replace => hdf5::File::open_rw(file),
    };
    let label = format!("{}::{path}", file.display());
    let err = |e: String| DataError::new(&label, e);
    let h5 = h5.map_err(|e| err(e.to_string()))?;
    if mode == FileMode::Replace && h5.link_exists(path) {
        h5.unlink(path).map_err(|e| err(e.to_string()))?;
    }
    let mut chunk = shape.to_vec();
    chunk[0] = chunk_rows.clamp(1, shape[0]);
    let dcpl = filtered_dcpl(&chunk, filters, use_).map_err(err)?;
    let dataset = h5
        .new_dataset_builder()
        .empty_as(&stored.datatype().map_err(err)?)
        .set_dcpl(&dcpl)
        .shape(shape)
        .chunk(chunk.clone())
        .create(path)
        .map_err(|e| err(e.to_string()))?;
    Ok((dataset, chunk, label))
}

/// An attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// A UTF-8 string.
    Text(String),
    /// A float64.
    Float(f64),
}

fn set_attr(
    dataset: &hdf5::Dataset,
    name: &str,
    value: &AttrValue,
    label: &str,
) -> Result<(), DataError> {
    let err = |e: hdf5::Error| DataError::new(label, format!("attribute {name}: {e}"));
    match value {
        AttrValue::Text(text) => set_text_attr(dataset, name, text, label),
        AttrValue::Float(v) => dataset
            .new_attr::<f64>()
            .create(name)
            .and_then(|a| a.write_scalar(v))
            .map_err(err),
    }
}

fn set_text_attr(
    dataset: &hdf5::Dataset,
    name: &str,
    value: &str,
    label: &str,
) -> Result<(), DataError> {
    let value: hdf5::types::VarLenUnicode = value
        .parse()
        .map_err(|e| DataError::new(label, format!("attribute {name}: {e}")))?;
    dataset
        .new_attr::<hdf5::types::VarLenUnicode>()
        .create(name)
        .and_then(|a| a.write_scalar(&value))
        .map_err(|e| DataError::new(label, format!("attribute {name}: {e}")))
}

/// Writes a whole (small) array as an HDF5 dataset.
pub fn write_hdf5(file: &Path, path: &str, array: &NdArray) -> Result<(), DataError> {
    let mut writer = Hdf5Writer::create(
        file,
        path,
        array.shape(),
        array.dtype(),
        array.shape()[0],
        FileMode::Create,
    )?;
    writer.write_slab(array)
}

/// Reads a whole (small) dataset; used by tests and the CLI for small arrays.
pub fn read_hdf5(file: &Path, path: &str) -> Result<NdArray, DataError> {
    let source = Hdf5Source::open(file, path)?;
    source.read_slab(0..source.shape[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayD;

    #[test]
    fn writes_and_reads_slabs_of_every_dtype() {
        let dir = tempfile::tempdir().unwrap();
        for dtype in DType::ALL {
            let path = dir.path().join(format!("{dtype}.h5"));
            let array = with_dtype!(dtype, T => {
                use crate::data::Element;
                ArrayD::from_shape_fn(IxDyn(&[5, 3, 2]), |ix| T::from_f64((ix[0] * 6 + ix[1] * 2 + ix[2]) as f64)).into_nd()
            });
            let mut writer =
                Hdf5Writer::create(&path, "/g/v", &[5, 3, 2], dtype, 2, FileMode::Create).unwrap();
            for rows in [0..2, 2..5] {
                let part = with_array!(&array, a => a.slice_axis(ndarray::Axis(0), rows.into()).to_owned().into_nd());
                writer.write_slab(&part).unwrap();
            }
            drop(writer);
            let source = Hdf5Source::open(&path, "/g/v").unwrap();
            assert_eq!(source.dtype(), dtype);
            assert_eq!(source.read_slab(0..5).unwrap(), array);
            let tail = source.read_slab(3..5).unwrap();
            assert_eq!(tail.shape(), &[2, 3, 2]);
        }
    }

    #[test]
    fn missing_dataset_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.h5");
        let arr = ArrayD::<f32>::zeros(IxDyn(&[2, 2])).into_nd();
        write_hdf5(&path, "/x", &arr).unwrap();
        let err = Hdf5Source::open(&path, "/nope").err().unwrap().to_string();
        assert!(
            err.contains("a.h5::/nope") && err.contains("no dataset"),
            "{err}"
        );
    }
}
