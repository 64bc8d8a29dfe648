//! Volume sources: where an input array comes from, read slab by slab along axis 0.

use std::fs::File;
use std::io::Seek;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};
use ndarray_npy::npy::header::{Header, Layout};

use super::DataError;
use super::array::{DType, Element, IntoNdArray, NdArray};
use super::files::refuse_special_file;
use super::hdf5io::Hdf5Source;
use super::nexus::default_signal;
use super::stack::StackSource;
use super::tiff::TiffSource;
use super::zarr::ZarrSource;
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

/// Where an array lives: `file.h5::/path/to/dataset` (`file.nxs`: its NeXus default signal),
/// `store.zarr::/path`, `file.npy`, a TIFF file (`.tif`,
/// `.tiff`: its pages stacked), or a raw little-endian file with a declared shape and dtype;
/// or many such files read as one array stacked along axis 0
/// (a glob pattern, a list).
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
    /// An HDF5 file named without a dataset: its NeXus default signal, or its only dataset of
    /// rank 2-3 (see [`super::nexus`]), resolved when the source is opened.
    Nexus(PathBuf),
    /// An array of a Zarr v2 or v3 store, `data.zarr::/path` (`data.zarr`: the root array).
    Zarr {
        /// The store's folder.
        store: PathBuf,
        /// Absolute path of the array inside the store (`/` for the root).
        array: String,
    },
    /// A TIFF file: its 2-D grayscale pages as an array `(pages, height, width)` (one page:
    /// `(1, height, width)`, so that a pattern of one-image files stacks into a volume).
    Tiff(PathBuf),
    /// Raw little-endian values in C order.
    Raw {
        /// The file.
        file: PathBuf,
        /// Declared shape.
        shape: Vec<usize>,
        /// Declared element type.
        dtype: DType,
    },
    /// Every file matching a glob pattern, sorted by path, stacked along axis 0 (see
    /// [`SourceSpec::parse_input`]). The pattern is expanded when the source is opened.
    Glob {
        /// The pattern as [`glob`] matches it: the written file part, after the folder it is
        /// relative to with that folder's metacharacters escaped.
        pattern: String,
        /// The source of each match: its file is the pattern (unescaped, as in labels), replaced
        /// by the matching file.
        template: Box<SourceSpec>,
    },
    /// Several sources stacked along axis 0 in the order given; a [`SourceSpec::Glob`] among
    /// them expands in place (see [`SourceSpec::parse_list`]).
    Stack(Vec<SourceSpec>),
}

/// Characters that make the file part of an input a glob pattern.
const GLOB_METACHARACTERS: [char; 3] = ['*', '?', '['];

/// How patterns match: `*` and `?` stay inside one path component and skip hidden files (so
/// that temporary files such as `.part_3.h5.1234-0a1b2c3d.photonqa-tmp` never join a stack).
const GLOB_OPTIONS: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: true,
};

impl SourceSpec {
    /// Parses a source string; relative paths are taken relative to `base`.
    ///
    /// `raw` carries the declared shape and dtype when the file is raw (any extension but
    /// `.npy`, `.tif`, `.tiff`, `.h5`, `.hdf5`, `.nxs` without `::`).
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
        let (written, inner) = text.split_once("::").unwrap_or((text, ""));
        if is_zarr_store(written) {
            let array = if inner.starts_with('/') {
                inner.to_string()
            } else {
                format!("/{inner}")
            };
            return Ok(SourceSpec::Zarr {
                store: resolve(written.trim_end_matches('/')),
                array,
            });
        }
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
        if lower.ends_with(".tif") || lower.ends_with(".tiff") {
            return Ok(SourceSpec::Tiff(resolve(text)));
        }
        if [".h5", ".hdf5", ".nxs", ".hdf"]
            .iter()
            .any(|e| lower.ends_with(e))
        {
            return Ok(SourceSpec::Nexus(resolve(text)));
        }
        match raw {
            Some((shape, dtype)) => Ok(SourceSpec::Raw {
                file: resolve(text),
                shape,
                dtype,
            }),
            None => Err(format!(
                "'{text}' is not an HDF5 file, a Zarr store, .npy or .tif; a raw file needs `shape` and `dtype`"
            )),
        }
    }

    /// Parses one input that may name many files: as [`SourceSpec::parse`], except that a file
    /// part holding glob metacharacters (`*`, `?`, `[...]`) is a pattern,
    /// `scans/scan_*.h5::/entry/data`, relative to `base` like a single file. Its matches are
    /// stacked along axis 0 in the order of their paths (byte-wise lexicographic, component by
    /// component): number the files with zero padding (`scan_0001.h5`, `scan_0002.h5`, ...) so
    /// that this order is the frame order, since `scan_10.h5` sorts before `scan_2.h5`.
    ///
    /// A file part without metacharacters, or one that names an existing file as written, or
    /// that is not a valid pattern, is a single source exactly as [`SourceSpec::parse`] makes
    /// it. `raw` applies to every matching file.
    pub fn parse_input(
        text: &str,
        base: &Path,
        raw: Option<(Vec<usize>, DType)>,
    ) -> Result<SourceSpec, String> {
        let single = SourceSpec::parse(text, base, raw)?;
        let written = text.split_once("::").map_or(text, |(file, _)| file);
        if !written.contains(GLOB_METACHARACTERS) {
            return Ok(single);
        }
        let Some(file) = single.file() else {
            return Ok(single);
        };
        let pattern = glob_pattern(base, written);
        if file.exists() || glob::Pattern::new(&pattern).is_err() {
            return Ok(single);
        }
        Ok(SourceSpec::Glob {
            pattern,
            template: Box::new(single),
        })
    }

    /// Parses a list of inputs stacked along axis 0 in the order given, each item as
    /// [`SourceSpec::parse_input`] (a pattern expands in place, its matches sorted by path).
    pub fn parse_list(
        items: &[&str],
        base: &Path,
        raw: Option<(Vec<usize>, DType)>,
    ) -> Result<SourceSpec, String> {
        if items.is_empty() {
            return Err("the list of inputs is empty".into());
        }
        items
            .iter()
            .map(|item| SourceSpec::parse_input(item, base, raw.clone()))
            .collect::<Result<_, _>>()
            .map(SourceSpec::Stack)
    }

    /// Opens the source and checks that it holds a finite-size rank 2-3 numeric array.
    pub fn open(&self) -> Result<Box<dyn VolumeSource>, DataError> {
        let source: Box<dyn VolumeSource> = match self {
            SourceSpec::Hdf5 { file, dataset } => Box::new(Hdf5Source::open(file, dataset)?),
            SourceSpec::Npy(path) => Box::new(RawSource::open_npy(path)?),
            SourceSpec::Tiff(path) => Box::new(TiffSource::open(path)?),
            SourceSpec::Nexus(file) => Box::new(Hdf5Source::open(file, &default_signal(file)?)?),
            SourceSpec::Zarr { store, array } => Box::new(ZarrSource::open(store, array)?),
            SourceSpec::Raw { file, shape, dtype } => {
                Box::new(RawSource::open_raw(file, shape.clone(), *dtype)?)
            }
            SourceSpec::Glob { .. } | SourceSpec::Stack(_) => Box::new(StackSource::open(self)?),
        };
        check_shape(source.label(), source.shape())?;
        Ok(source)
    }

    /// True for a raw file, and for a pattern or a list of raw files only.
    pub fn is_raw(&self) -> bool {
        match self {
            SourceSpec::Raw { .. } => true,
            SourceSpec::Hdf5 { .. }
            | SourceSpec::Nexus(_)
            | SourceSpec::Zarr { .. }
            | SourceSpec::Npy(_)
            | SourceSpec::Tiff(_) => false,
            SourceSpec::Glob { template, .. } => template.is_raw(),
            SourceSpec::Stack(parts) => !parts.is_empty() && parts.iter().all(|p| p.is_raw()),
        }
    }

    /// True when the source names several files ([`SourceSpec::Glob`], [`SourceSpec::Stack`]).
    pub fn is_stack(&self) -> bool {
        matches!(self, SourceSpec::Glob { .. } | SourceSpec::Stack(_))
    }

    /// The single-file sources, in stacking order: patterns expanded (matches sorted by path),
    /// lists flattened. A pattern that matches no file is an error naming it.
    pub fn expand(&self) -> Result<Vec<SourceSpec>, DataError> {
        match self {
            SourceSpec::Hdf5 { .. }
            | SourceSpec::Nexus(_)
            | SourceSpec::Zarr { .. }
            | SourceSpec::Npy(_)
            | SourceSpec::Tiff(_)
            | SourceSpec::Raw { .. } => Ok(vec![self.clone()]),
            SourceSpec::Glob { pattern, template } => {
                let label = template.describe();
                let mut files = Vec::new();
                let matches = glob::glob_with(pattern, GLOB_OPTIONS).map_err(|e| {
                    DataError::new(&label, format!("not a valid glob pattern: {e}"))
                })?;
                for entry in matches {
                    let path = entry.map_err(|e| {
                        DataError::new(
                            &label,
                            format!("cannot list {}: {}", e.path().display(), e.error()),
                        )
                    })?;
                    if path.is_file() {
                        files.push(path);
                    }
                }
                if files.is_empty() {
                    return Err(DataError::new(
                        &label,
                        "no file matches this pattern".into(),
                    ));
                }
                files.sort();
                Ok(files
                    .into_iter()
                    .map(|file| template.with_file(file))
                    .collect())
            }
            SourceSpec::Stack(parts) => {
                let mut leaves = Vec::new();
                for part in parts {
                    leaves.extend(part.expand()?);
                }
                Ok(leaves)
            }
        }
    }

    /// What the source names, for labels: `file.h5::/dataset`, the file, the pattern, or a
    /// list `[a, b]` (`[a, b, …, z]` beyond three items).
    pub fn describe(&self) -> String {
        match self {
            SourceSpec::Hdf5 { file, dataset } => format!("{}::{dataset}", file.display()),
            SourceSpec::Zarr { store, array } => format!("{}::{array}", store.display()),
            SourceSpec::Npy(file)
            | SourceSpec::Tiff(file)
            | SourceSpec::Nexus(file)
            | SourceSpec::Raw { file, .. } => file.display().to_string(),
            SourceSpec::Glob { template, .. } => template.describe(),
            SourceSpec::Stack(parts) => {
                let names: Vec<String> = if parts.len() <= 3 {
                    parts.iter().map(SourceSpec::describe).collect()
                } else {
                    vec![
                        parts[0].describe(),
                        parts[1].describe(),
                        "…".into(),
                        parts[parts.len() - 1].describe(),
                    ]
                };
                format!("[{}]", names.join(", "))
            }
        }
    }

    /// The file of a single-file source.
    fn file(&self) -> Option<&Path> {
        match self {
            SourceSpec::Hdf5 { file, .. }
            | SourceSpec::Zarr { store: file, .. }
            | SourceSpec::Npy(file)
            | SourceSpec::Tiff(file)
            | SourceSpec::Nexus(file)
            | SourceSpec::Raw { file, .. } => Some(file),
            SourceSpec::Glob { .. } | SourceSpec::Stack(_) => None,
        }
    }

    /// This single-file source on another file.
    fn with_file(&self, path: PathBuf) -> SourceSpec {
        let mut spec = self.clone();
        match &mut spec {
            SourceSpec::Hdf5 { file, .. }
            | SourceSpec::Zarr { store: file, .. }
            | SourceSpec::Npy(file)
            | SourceSpec::Tiff(file)
            | SourceSpec::Nexus(file)
            | SourceSpec::Raw { file, .. } => *file = path,
            SourceSpec::Glob { .. } | SourceSpec::Stack(_) => {
                unreachable!("a pattern's template names one file")
            }
        }
        spec
    }
}

/// The glob pattern of the file part `written` relative to `base`: the path `normalize` makes
/// of them, with the components that come from `base` escaped (a folder named `run[1]` is not a
/// pattern) and those written kept as typed.
fn glob_pattern(base: &Path, written: &str) -> String {
    use std::path::Component;
    if Path::new(written).is_absolute() {
        return written.to_string();
    }
    // (text, is a normal component that a following `..` removes)
    let mut parts: Vec<(String, bool)> = Vec::new();
    let components = base
        .components()
        .map(|c| (c, true))
        .chain(Path::new(written).components().map(|c| (c, false)));
    for (component, escape) in components {
        match component {
            Component::ParentDir if matches!(parts.last(), Some((_, true))) => {
                parts.pop();
            }
            Component::Normal(name) => {
                let name = name.to_string_lossy();
                let name = if escape {
                    glob::Pattern::escape(&name)
                } else {
                    name.into_owned()
                };
                parts.push((name, true));
            }
            Component::RootDir => parts.push((String::new(), false)),
            Component::CurDir => parts.push((".".into(), false)),
            Component::ParentDir => parts.push(("..".into(), false)),
            Component::Prefix(prefix) => {
                parts.push((prefix.as_os_str().to_string_lossy().into_owned(), false))
            }
        }
    }
    let texts: Vec<&str> = parts.iter().map(|(t, _)| t.as_str()).collect();
    match texts.as_slice() {
        [""] => "/".into(),
        _ => texts.join("/"),
    }
}

/// True when the file part of a source names a Zarr store: it ends in `.zarr` (a trailing `/`
/// allowed), the name zarr-python and the Zarr conventions give stores.
fn is_zarr_store(written: &str) -> bool {
    written
        .trim_end_matches('/')
        .to_ascii_lowercase()
        .ends_with(".zarr")
}

/// Removes `dir/..` pairs lexically, so that labels read `reference-data/x.h5` rather than
/// `scenarios/../reference-data/x.h5`.
pub fn normalize(path: &Path) -> PathBuf {
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
        let file = open_regular(path, &label)?;
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
        let mut file = open_regular(path, &label)?;
        check_npy_header(&file).map_err(err)?;
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

/// Deepest nesting of brackets a `.npy` header may have: a plain dtype's header nests 2 deep
/// (`{'shape': (6, 7)}`), a structured one 4; photonqa reads plain dtypes only.
const MAX_NPY_HEADER_NESTING: usize = 4;

/// Refuses a `.npy` file whose header declares more bytes than the file holds, before
/// ndarray-npy allocates a buffer of that size to read it into (a damaged length field of a
/// version 2 or 3 header would make it allocate up to 4 GiB), and a header whose brackets
/// nest deeper than [`MAX_NPY_HEADER_NESTING`]: the Python-literal parser behind ndarray-npy
/// (`py_literal`) takes time exponential in the nesting (12 s for 35 `[` in a 250-byte
/// header, found by fuzzing). The file starts with `\x93NUMPY`, the major and minor version,
/// then the header's length: 2 bytes (version 1) or 4 bytes (versions 2 and 3),
/// little-endian. Anything else is left to ndarray-npy to report.
fn check_npy_header(file: &File) -> Result<(), String> {
    let mut preamble = [0u8; 12];
    let read = file.read_at(&mut preamble, 0).map_err(|e| e.to_string())?;
    let (declared, start) = match (&preamble[..read.min(8)], read) {
        (&[0x93, b'N', b'U', b'M', b'P', b'Y', 1, _], 10..) => (
            u64::from(u16::from_le_bytes([preamble[8], preamble[9]])),
            10,
        ),
        (&[0x93, b'N', b'U', b'M', b'P', b'Y', 2 | 3, _], 12..) => {
            let bytes = preamble[8..12].try_into().expect("4 bytes");
            (u64::from(u32::from_le_bytes(bytes)), 12)
        }
        _ => return Ok(()),
    };
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    if start + declared > size {
        return Err(format!(
            "not a valid .npy file: its header declares {declared} bytes, but the file has {size}"
        ));
    }
    let mut header = vec![0u8; declared as usize];
    file.read_exact_at(&mut header, start)
        .map_err(|e| e.to_string())?;
    let (mut depth, mut deepest) = (0usize, 0usize);
    for byte in header {
        match byte {
            b'(' | b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_NPY_HEADER_NESTING {
        return Err(format!(
            "not a valid .npy file: its header nests brackets {deepest} deep (at most {MAX_NPY_HEADER_NESTING})"
        ));
    }
    Ok(())
}

/// Opens `path` for reading, refusing anything but a regular file before opening it (a FIFO
/// would block the open until a writer comes); errors name `label`.
fn open_regular(path: &Path, label: &str) -> Result<File, DataError> {
    refuse_special_file(path).map_err(|e| DataError::new(label, e))?;
    File::open(path).map_err(|e| DataError::new(label, e.to_string()))
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

/// An array borrowed from memory the caller owns (a NumPy buffer, for the Python package) as
/// a source: nothing is copied up front; each slab read copies only its own rows, as reading a
/// file would.
pub struct ViewSource<'a, T: Element> {
    view: ArrayViewD<'a, T>,
    label: String,
}

impl<'a, T: Element> ViewSource<'a, T> {
    /// Borrows `view`; fails for ranks other than 2-3, empty arrays, or a view that is not in
    /// C order (its slabs would not be runs of memory: copy it into C order first).
    pub fn new(view: ArrayViewD<'a, T>, label: &str) -> Result<Self, DataError> {
        check_shape(label, view.shape())?;
        if !view.is_standard_layout() {
            return Err(DataError::new(
                label,
                "array is not C-contiguous; copy it into C order first".into(),
            ));
        }
        Ok(ViewSource {
            view,
            label: label.to_string(),
        })
    }
}

impl<T: Element> VolumeSource for ViewSource<'_, T>
where
    ArrayD<T>: IntoNdArray,
{
    fn shape(&self) -> &[usize] {
        self.view.shape()
    }
    fn dtype(&self) -> DType {
        T::DTYPE
    }
    fn label(&self) -> &str {
        &self.label
    }
    fn read_slab(&self, rows: Range<usize>) -> Result<NdArray, DataError> {
        check_rows(self, &rows)?;
        Ok(self
            .view
            .slice_axis(Axis(0), rows.into())
            .to_owned()
            .into_nd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A borrowed view reads the slabs an owned copy reads, and refuses a view that is not in
    /// C order (its rows are not runs of memory) instead of reading it wrongly.
    #[test]
    fn view_source_reads_the_slabs_of_its_memory() {
        let values: Vec<f32> = (0..4 * 3 * 2).map(|v| v as f32 * 0.5).collect();
        let array = ArrayD::from_shape_vec(IxDyn(&[4, 3, 2]), values).unwrap();
        let owned = MemorySource::new(array.clone().into_nd(), "owned").unwrap();
        let view = ViewSource::new(array.view(), "view").unwrap();
        assert_eq!(
            (view.shape(), view.dtype()),
            (&[4, 3, 2][..], DType::Float32)
        );
        for rows in [0..1, 1..3, 0..4] {
            assert_eq!(
                view.read_slab(rows.clone()).unwrap(),
                owned.read_slab(rows).unwrap()
            );
        }
        assert!(view.read_slab(3..5).is_err());
        let transposed = array.view().reversed_axes();
        let refused = ViewSource::new(transposed, "t").err().unwrap().to_string();
        assert_eq!(
            refused,
            "t: array is not C-contiguous; copy it into C order first"
        );
        let flat = ArrayD::<f32>::zeros(IxDyn(&[5]));
        assert!(ViewSource::new(flat.view(), "flat").is_err());
    }

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
        assert_eq!(
            SourceSpec::parse("a.nxs", base, None).unwrap(),
            SourceSpec::Nexus("/data/a.nxs".into())
        );
        assert_eq!(
            SourceSpec::parse("../r/v.npy", Path::new("scenarios"), None).unwrap(),
            SourceSpec::Npy("r/v.npy".into())
        );
        assert_eq!(
            SourceSpec::parse("../../v.npy", Path::new("s"), None).unwrap(),
            SourceSpec::Npy("../v.npy".into())
        );
        for (text, store, array) in [
            ("d.zarr::/g/a", "/data/d.zarr", "/g/a"),
            ("d.zarr/::a", "/data/d.zarr", "/a"),
            ("d.ZARR", "/data/d.ZARR", "/"),
        ] {
            assert_eq!(
                SourceSpec::parse(text, base, None).unwrap(),
                SourceSpec::Zarr {
                    store: store.into(),
                    array: array.into()
                }
            );
        }
        for name in ["scan/p.tif", "scan/P.TIFF"] {
            assert_eq!(
                SourceSpec::parse(name, base, None).unwrap(),
                SourceSpec::Tiff(base.join(name))
            );
        }
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
