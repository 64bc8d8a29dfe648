//! Volume sources: where an input array comes from, read slab by slab along axis 0.

use std::fs::File;
use std::io::Seek;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use ndarray_npy::npy::header::{Header, Layout};

use super::DataError;
use super::array::{DType, IntoNdArray, NdArray};
use super::hdf5io::Hdf5Source;
use crate::with_dtype;

/// An input array that can be read slab by slab along axis 0, from any thread.
pub trait VolumeSource: Send + Sync {
    /// Full shape of the array (rank 2 or 3).
    fn shape(&self) -> &[usize];
    /// Element type as stored.
    fn dtype(&self) -> DType;
    /// Reads rows `rows` along axis 0 (all of the other axes).
    fn read_slab(&self, rows: Range<usize>) -> Result<NdArray, DataError>;
    /// Human-readable name (path and dataset) for messages.
    fn label(&self) -> &str;

    /// Number of elements.
    fn len(&self) -> usize {
        self.shape().iter().product()
    }
    /// True when the array has no elements.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes of one row along axis 0 (one slice of a volume).
    fn row_bytes(&self) -> usize {
        self.shape()[1..].iter().product::<usize>() * self.dtype().size()
    }
}

/// Where an array lives: `file.h5::/path/to/dataset`, `file.npy`, or a raw little-endian file
/// with a declared shape and dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    /// An HDF5 dataset, silx-style URL `file.h5::/path`.
    Hdf5 {
        /// The HDF5 file.
        file: PathBuf,
        /// Absolute path of the dataset inside the file.
        dataset: String,
    },
    /// A NumPy `.npy` file (C order, little-endian).
    Npy(PathBuf),
    /// Raw little-endian values in C order.
    Raw {
        /// The file.
        file: PathBuf,
        /// Declared shape.
        shape: Vec<usize>,
        /// Declared element type.
        dtype: DType,
    },
}

impl SourceSpec {
    /// Parses a source string; relative paths are taken relative to `base`.
    ///
    /// `raw` carries the declared shape and dtype when the file is raw (any extension but
    /// `.npy`, `.h5`, `.hdf5`, `.nxs` without `::`).
    pub fn parse(
        text: &str,
        base: &Path,
        raw: Option<(Vec<usize>, DType)>,
    ) -> Result<SourceSpec, String> {
        let resolve = |p: &str| {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                normalize(&base.join(p))
            }
        };
        if let Some((file, dataset)) = text.split_once("::") {
            if file.is_empty() || dataset.is_empty() {
                return Err(format!(
                    "'{text}' is not an HDF5 URL of the form file.h5::/dataset"
                ));
            }
            let dataset = if dataset.starts_with('/') {
                dataset.to_string()
            } else {
                format!("/{dataset}")
            };
            return Ok(SourceSpec::Hdf5 {
                file: resolve(file),
                dataset,
            });
        }
        let lower = text.to_ascii_lowercase();
        if lower.ends_with(".npy") {
            return Ok(SourceSpec::Npy(resolve(text)));
        }
        if [".h5", ".hdf5", ".nxs", ".hdf"]
            .iter()
            .any(|e| lower.ends_with(e))
        {
            return Err(format!(
                "'{text}' is an HDF5 file: name the dataset as '{text}::/path/to/dataset'"
            ));
        }
        match raw {
            Some((shape, dtype)) => Ok(SourceSpec::Raw {
                file: resolve(text),
                shape,
                dtype,
            }),
            None => Err(format!(
                "'{text}' is neither file.h5::/dataset nor .npy; a raw file needs `shape` and `dtype`"
            )),
        }
    }

    /// Opens the source and checks that it holds a finite-size rank 2-3 numeric array.
    pub fn open(&self) -> Result<Box<dyn VolumeSource>, DataError> {
        let source: Box<dyn VolumeSource> = match self {
            SourceSpec::Hdf5 { file, dataset } => Box::new(Hdf5Source::open(file, dataset)?),
            SourceSpec::Npy(path) => Box::new(RawSource::open_npy(path)?),
            SourceSpec::Raw { file, shape, dtype } => {
                Box::new(RawSource::open_raw(file, shape.clone(), *dtype)?)
            }
        };
        check_shape(source.label(), source.shape())?;
        Ok(source)
    }
}

/// Removes `dir/..` pairs lexically, so that labels read `reference-data/x.h5` rather than
/// `scenarios/../reference-data/x.h5`.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Rejects shapes photonqa cannot process: rank other than 2-3 or an empty axis.
pub fn check_shape(label: &str, shape: &[usize]) -> Result<(), DataError> {
    if !(2..=3).contains(&shape.len()) {
        return Err(DataError::new(
            label,
            format!(
                "array has rank {} (shape {shape:?}); photonqa needs rank 2 or 3",
                shape.len()
            ),
        ));
    }
    if shape.contains(&0) {
        return Err(DataError::new(
            label,
            format!("array is empty (shape {shape:?})"),
        ));
    }
    Ok(())
}

/// A file of little-endian values in C order at a byte offset: raw files and `.npy` files.
pub struct RawSource {
    file: File,
    offset: u64,
    shape: Vec<usize>,
    dtype: DType,
    label: String,
}

impl RawSource {
    /// Opens a raw file and checks that its size matches the declared shape and dtype.
    pub fn open_raw(path: &Path, shape: Vec<usize>, dtype: DType) -> Result<Self, DataError> {
        let label = path.display().to_string();
        let file = File::open(path).map_err(|e| DataError::new(&label, e.to_string()))?;
        let source = RawSource {
            file,
            offset: 0,
            shape,
            dtype,
            label,
        };
        source.check_size()?;
        Ok(source)
    }

    /// Opens a `.npy` file (format 1-3, C order, little-endian or byte-sized dtype).
    pub fn open_npy(path: &Path) -> Result<Self, DataError> {
        let label = path.display().to_string();
        let err = |m: String| DataError::new(&label, m);
        let mut file = File::open(path).map_err(|e| err(e.to_string()))?;
        let header = Header::from_reader(&mut file)
            .map_err(|e| err(format!("not a valid .npy file: {e}")))?;
        if matches!(header.layout, Layout::Fortran) {
            return Err(err(
                "Fortran-order .npy is not supported; save it with numpy.ascontiguousarray".into(),
            ));
        }
        let descr = header.type_descriptor.to_string();
        let dtype = npy_dtype(descr.trim_matches('\'')).ok_or_else(|| {
            err(format!(
                "unsupported .npy dtype {descr} (need a little-endian numeric dtype)"
            ))
        })?;
        let offset = file.stream_position().map_err(|e| err(e.to_string()))?;
        let source = RawSource {
            file,
            offset,
            shape: header.shape,
            dtype,
            label,
        };
        source.check_size()?;
        Ok(source)
    }

    fn check_size(&self) -> Result<(), DataError> {
        let have = self
            .file
            .metadata()
            .map_err(|e| DataError::new(&self.label, e.to_string()))?
            .len();
        let need = self
            .shape
            .iter()
            .try_fold(self.dtype.size() as u64, |acc, &d| {
                acc.checked_mul(d as u64)
            })
            .and_then(|bytes| bytes.checked_add(self.offset))
            .ok_or_else(|| {
                DataError::new(
                    &self.label,
                    format!(
                        "shape {:?} of {} is too large to address",
                        self.shape, self.dtype
                    ),
                )
            })?;
        if have != need {
            return Err(DataError::new(
                &self.label,
                format!(
                    "file has {have} bytes but shape {:?} of {} needs {need}",
                    self.shape, self.dtype
                ),
            ));
        }
        Ok(())
    }
}

/// Maps a NumPy type descriptor such as `<f4` or `|u1` to a dtype.
fn npy_dtype(descr: &str) -> Option<DType> {
    let (order, code) = descr.split_at_checked(1)?;
    let dtype = match code {
        "u1" => DType::Uint8,
        "u2" => DType::Uint16,
        "u4" => DType::Uint32,
        "u8" => DType::Uint64,
        "i1" => DType::Int8,
        "i2" => DType::Int16,
        "i4" => DType::Int32,
        "i8" => DType::Int64,
        "f4" => DType::Float32,
        "f8" => DType::Float64,
        _ => return None,
    };
    let little = order == "<" || (order == "|" && dtype.size() == 1);
    little.then_some(dtype)
}

/// The NumPy type descriptor of a dtype (little-endian).
pub fn npy_descr(dtype: DType) -> &'static str {
    match dtype {
        DType::Uint8 => "|u1",
        DType::Uint16 => "<u2",
        DType::Uint32 => "<u4",
        DType::Uint64 => "<u8",
        DType::Int8 => "|i1",
        DType::Int16 => "<i2",
        DType::Int32 => "<i4",
        DType::Int64 => "<i8",
        DType::Float32 => "<f4",
        DType::Float64 => "<f8",
    }
}

impl VolumeSource for RawSource {
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
        let offset = self.offset + (rows.start * self.row_bytes()) as u64;
        let mut shape = self.shape.clone();
        shape[0] = rows.len();
        let n: usize = shape.iter().product();
        with_dtype!(self.dtype, T => {
            // Read straight into the typed buffer (the file is little-endian, like the target).
            // Positioned reads: threads read chunks concurrently, and a shared cursor would race.
            let mut values = vec![T::default(); n];
            self.file
                .read_exact_at(bytemuck::cast_slice_mut(&mut values), offset)
                .map_err(|e| DataError::new(&self.label, format!("cannot read rows {rows:?}: {e}")))?;
            Ok(ArrayD::from_shape_vec(IxDyn(&shape), values).expect("sized above").into_nd())
        })
    }
}

/// Checks that `rows` lies inside axis 0 of `source`.
pub fn check_rows(source: &dyn VolumeSource, rows: &Range<usize>) -> Result<(), DataError> {
    if rows.start >= rows.end || rows.end > source.shape()[0] {
        return Err(DataError::new(
            source.label(),
            format!(
                "rows {rows:?} outside axis 0 of length {}",
                source.shape()[0]
            ),
        ));
    }
    Ok(())
}

/// An in-memory array as a source (tests, generated data).
pub struct MemorySource {
    array: NdArray,
    label: String,
}

impl MemorySource {
    /// Wraps an array; fails for ranks other than 2-3 or empty arrays.
    pub fn new(array: NdArray, label: &str) -> Result<Self, DataError> {
        check_shape(label, array.shape())?;
        Ok(MemorySource {
            array,
            label: label.to_string(),
        })
    }
}

impl VolumeSource for MemorySource {
    fn shape(&self) -> &[usize] {
        self.array.shape()
    }
    fn dtype(&self) -> DType {
        self.array.dtype()
    }
    fn label(&self) -> &str {
        &self.label
    }
    fn read_slab(&self, rows: Range<usize>) -> Result<NdArray, DataError> {
        check_rows(self, &rows)?;
        Ok(self.array.slice_rows(rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_source_kinds() {
        let base = Path::new("/data");
        assert_eq!(
            SourceSpec::parse("a.h5::/x/y", base, None).unwrap(),
            SourceSpec::Hdf5 {
                file: "/data/a.h5".into(),
                dataset: "/x/y".into()
            }
        );
        assert_eq!(
            SourceSpec::parse("/abs/v.npy", base, None).unwrap(),
            SourceSpec::Npy("/abs/v.npy".into())
        );
        assert!(
            SourceSpec::parse("a.h5", base, None)
                .unwrap_err()
                .contains("::/path")
        );
        assert_eq!(
            SourceSpec::parse("../r/v.npy", Path::new("scenarios"), None).unwrap(),
            SourceSpec::Npy("r/v.npy".into())
        );
        assert_eq!(
            SourceSpec::parse("../../v.npy", Path::new("s"), None).unwrap(),
            SourceSpec::Npy("../v.npy".into())
        );
        assert!(
            SourceSpec::parse("a.bin", base, None)
                .unwrap_err()
                .contains("shape")
        );
        assert!(matches!(
            SourceSpec::parse("a.bin", base, Some((vec![2, 3], DType::Uint16))).unwrap(),
            SourceSpec::Raw { .. }
        ));
    }

    #[test]
    fn npy_descriptors_round_trip() {
        for dtype in DType::ALL {
            assert_eq!(npy_dtype(npy_descr(dtype)), Some(dtype));
        }
        assert_eq!(npy_dtype(">f4"), None);
        assert_eq!(npy_dtype("<c8"), None);
    }
}
