//! NumPy `.npy` output, written slab by slab so that volumes larger than memory can be saved.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use ndarray_npy::npy::header::{Header, Layout};
use py_literal::Value as PyValue;

use super::DataError;
use super::array::{DType, NdArray};
use super::source::npy_descr;

/// Writes an array of known shape to a `.npy` file, slab by slab along axis 0: in order
/// ([`NpyWriter::write_slab`]), or at given rows from several threads at once
/// ([`NpyWriter::write_rows`]).
pub struct NpyWriter {
    file: File,
    /// Bytes of the header: where row 0 starts.
    header: u64,
    /// Bytes per row along axis 0.
    row_bytes: u64,
    /// Rows written in order so far.
    next_row: usize,
    label: String,
}

impl NpyWriter {
    /// Creates the file and writes the header for `shape` and `dtype`.
    pub fn create(path: &Path, shape: &[usize], dtype: DType) -> Result<Self, DataError> {
        let label = path.display().to_string();
        let err = |e: String| DataError::new(&label, e);
        let header = Header {
            type_descriptor: PyValue::String(npy_descr(dtype).to_string()),
            layout: Layout::Standard,
            shape: shape.to_vec(),
        };
        let mut bytes = Vec::new();
        header.write(&mut bytes).map_err(|e| err(e.to_string()))?;
        let file = File::create(path).map_err(|e| err(e.to_string()))?;
        file.write_all_at(&bytes, 0)
            .map_err(|e| err(e.to_string()))?;
        Ok(NpyWriter {
            file,
            header: bytes.len() as u64,
            row_bytes: (shape[1..].iter().product::<usize>() * dtype.size()) as u64,
            next_row: 0,
            label,
        })
    }

    /// Appends the next slab.
    pub fn write_slab(&mut self, slab: &NdArray) -> Result<(), DataError> {
        self.write_rows(self.next_row, slab)?;
        self.next_row += slab.shape()[0];
        Ok(())
    }

    /// Writes `slab` as the rows from `first_row` on; slabs of different rows may be written
    /// concurrently and in any order.
    pub fn write_rows(&self, first_row: usize, slab: &NdArray) -> Result<(), DataError> {
        self.file
            .write_all_at(
                &slab.to_le_bytes(),
                self.header + first_row as u64 * self.row_bytes,
            )
            .map_err(|e| DataError::new(&self.label, e.to_string()))
    }

    /// Syncs the file.
    pub fn finish(self) -> Result<(), DataError> {
        self.file
            .sync_all()
            .map_err(|e| DataError::new(&self.label, e.to_string()))
    }
}

/// Writes a whole array as `.npy`.
pub fn write_npy(path: &Path, array: &NdArray) -> Result<(), DataError> {
    let mut writer = NpyWriter::create(path, array.shape(), array.dtype())?;
    writer.write_slab(array)?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::source::RawSource;
    use crate::data::{IntoNdArray, VolumeSource};
    use ndarray::{ArrayD, IxDyn};

    #[test]
    fn npy_round_trip_through_raw_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        let array =
            ArrayD::from_shape_fn(IxDyn(&[4, 3]), |ix| (ix[0] * 3 + ix[1]) as i16 - 5).into_nd();
        write_npy(&path, &array).unwrap();
        let source = RawSource::open_npy(&path).unwrap();
        assert_eq!(source.shape(), &[4, 3]);
        assert_eq!(source.read_slab(0..4).unwrap(), array);
        assert_eq!(
            source.read_slab(1..3).unwrap().to_le_bytes(),
            array.to_le_bytes()[6..18]
        );
    }
}
