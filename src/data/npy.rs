//! NumPy `.npy` output, written slab by slab so that volumes larger than memory can be saved.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use ndarray_npy::npy::header::{Header, Layout};
use py_literal::Value as PyValue;

use super::DataError;
use super::array::{DType, NdArray};
use super::source::npy_descr;

/// Writes an array of known shape to a `.npy` file, slab by slab along axis 0.
pub struct NpyWriter {
    out: BufWriter<File>,
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
        let mut out = BufWriter::new(File::create(path).map_err(|e| err(e.to_string()))?);
        header.write(&mut out).map_err(|e| err(e.to_string()))?;
        Ok(NpyWriter { out, label })
    }

    /// Appends the next slab.
    pub fn write_slab(&mut self, slab: &NdArray) -> Result<(), DataError> {
        self.out
            .write_all(&slab.to_le_bytes())
            .map_err(|e| DataError::new(&self.label, e.to_string()))
    }

    /// Flushes the file.
    pub fn finish(mut self) -> Result<(), DataError> {
        self.out
            .flush()
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
