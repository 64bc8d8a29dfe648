//! HDF5 datasets as sources and as slab-by-slab output (through `hdf5-metno`).

use std::ops::Range;
use std::path::Path;

use hdf5::types::{FloatSize, IntSize, TypeDescriptor};
use ndarray::IxDyn;

use super::DataError;
use super::array::{DType, IntoNdArray, NdArray};
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
    /// Opens `dataset` in `file`; errors name the file and the dataset.
    pub fn open(file: &Path, dataset: &str) -> Result<Self, DataError> {
        let label = format!("{}::{dataset}", file.display());
        if !file.is_file() {
            return Err(DataError::new(&label, "no such file".into()));
        }
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

/// Whether [`Hdf5Writer::create`] starts a new file or adds to an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// Create the file, truncating an existing one.
    Create,
    /// Open an existing file for writing.
    Append,
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
    /// existing one) or, with [`FileMode::Append`], in an existing file.
    pub fn create(
        file: &Path,
        path: &str,
        shape: &[usize],
        dtype: DType,
        chunk_rows: usize,
        mode: FileMode,
    ) -> Result<Self, DataError> {
        let h5 = match mode {
            FileMode::Create => hdf5::File::create(file),
            FileMode::Append => hdf5::File::open_rw(file),
        };
        let label = format!("{}::{path}", file.display());
        let err = |e: hdf5::Error| DataError::new(&label, e.to_string());
        let h5 = h5.map_err(err)?;
        let mut chunk = shape.to_vec();
        chunk[0] = chunk_rows.clamp(1, shape[0]);
        let dataset = with_dtype!(dtype, T => h5
            .new_dataset::<T>()
            .shape(shape)
            .chunk(chunk.clone())
            .create(path))
        .map_err(err)?;
        Ok(Hdf5Writer {
            dataset,
            rows_written: 0,
            label,
        })
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

    /// Adds a string attribute to the dataset (provenance of generated data).
    pub fn set_attr(&self, name: &str, value: &str) -> Result<(), DataError> {
        let value: hdf5::types::VarLenUnicode = value
            .parse()
            .map_err(|e| DataError::new(&self.label, format!("attribute {name}: {e}")))?;
        self.dataset
            .new_attr::<hdf5::types::VarLenUnicode>()
            .create(name)
            .and_then(|a| a.write_scalar(&value))
            .map_err(|e| DataError::new(&self.label, format!("attribute {name}: {e}")))
    }
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
