//! What an input holds (`photonqa inspect`): its arrays with shape, dtype, chunking and
//! filters by name, the default signal marked (the dataset read when an HDF5 file is named
//! without a path: see [`super::nexus`]), and a one-line summary of the values.
//!
//! An HDF5 or NeXus file lists every dataset; a Zarr store every array under the path given
//! (the whole store by default); a TIFF file, a pattern of files or any other input is one
//! array. Values are summarised for the arrays photonqa can read (numeric, rank 2-3), read
//! slab by slab within [`SUMMARY_SLAB_BYTES`].

use std::fmt;
use std::path::Path;

use super::DataError;
use super::array::{Element, FromNdArray};
use super::hdf5io::Hdf5Source;
use super::nexus::{dataset_paths, default_signal, open_hdf5};
use super::source::{SourceSpec, VolumeSource};
use super::tiff;
use super::zarr::{self, ZarrSource};
use crate::with_dtype;

/// Bytes read at a time while summarising values.
pub const SUMMARY_SLAB_BYTES: usize = 64 << 20;

/// Largest slice (one row along axis 0) whose values are summarised: a slice is the smallest
/// read, and a damaged compressed TIFF or HDF5 header can claim a slice of hundreds of GiB in a
/// file of a few bytes.
pub const SUMMARY_MAX_SLICE_BYTES: usize = 1 << 30;

/// One array of an inspected input.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path inside the file or store (`/entry/data/data`), or the input's label.
    pub path: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Element type as stored (photonqa's name when it reads it).
    pub dtype: String,
    /// Chunk (HDF5, Zarr) or strip/tile (TIFF) shape; `None` when stored contiguously.
    pub chunks: Option<Vec<usize>>,
    /// Filters or codecs in pipeline order, by name (`deflate(4)`, `bitshuffle+lz4`, `zstd`).
    pub filters: Vec<String>,
    /// Whether this is the dataset photonqa reads when the file is named without a dataset
    /// path: its NeXus default signal, or its only dataset of rank 2-3 (printed
    /// `[default signal]`).
    pub default_signal: bool,
    /// The values, when photonqa reads this array (numeric, rank 2-3), or why reading them
    /// failed (e.g. a filter plugin HDF5 does not find): the listing goes on.
    pub summary: Option<Result<Summary, String>>,
}

/// A one-line summary of an array's values.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Smallest finite value (as the dtype prints it); `None` when no value is finite.
    pub min: Option<String>,
    /// Largest finite value.
    pub max: Option<String>,
    /// Smallest and largest finite values as float64 (`None` when no value is finite).
    pub range: Option<(f64, f64)>,
    /// Number of values.
    pub values: u64,
    /// Number of values equal to zero.
    pub zeros: u64,
    /// Number of NaN or infinite values.
    pub non_finite: u64,
    /// Every value is finite and a whole number.
    pub integer_valued: bool,
    /// Integer-valued and none negative: what a photon-counting detector writes.
    pub counts_like: bool,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let none = "none finite".to_string();
        write!(
            f,
            "min {}, max {}, zeros {} of {} ({:.3} %)",
            self.min.as_ref().unwrap_or(&none),
            self.max.as_ref().unwrap_or(&none),
            self.zeros,
            self.values,
            100.0 * self.zeros as f64 / self.values.max(1) as f64
        )?;
        if self.non_finite > 0 {
            write!(f, ", {} non-finite", self.non_finite)?;
        }
        let integers = if self.integer_valued {
            "integer-valued"
        } else {
            "not integer-valued"
        };
        let counts = if self.counts_like {
            "counts-like"
        } else {
            "not counts-like"
        };
        write!(f, ", {integers}, {counts}")
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let marker = if self.default_signal {
            "  [default signal]"
        } else {
            ""
        };
        let chunks = self
            .chunks
            .as_ref()
            .map_or("contiguous".to_string(), |c| format!("{c:?}"));
        let filters = if self.filters.is_empty() {
            "none".to_string()
        } else {
            self.filters.join(", ")
        };
        write!(
            f,
            "{}{marker}\n  shape {:?}  dtype {}  chunks {chunks}  filters {filters}",
            self.path, self.shape, self.dtype
        )?;
        match &self.summary {
            Some(Ok(summary)) => write!(f, "\n  values: {summary}")?,
            Some(Err(error)) => write!(f, "\n  values: cannot read them: {error}")?,
            None => {}
        }
        Ok(())
    }
}

/// Inspects the input `text` names (as `[input] source` does, relative to `base`).
pub fn inspect(text: &str, base: &Path) -> Result<Vec<Entry>, DataError> {
    let spec = SourceSpec::parse_input(text, base, None).map_err(|e| DataError::new(text, e))?;
    match &spec {
        SourceSpec::Nexus(file) => hdf5_entries(file, None),
        SourceSpec::Hdf5 { file, dataset } => hdf5_entries(file, Some(dataset)),
        SourceSpec::Zarr { store, array } => zarr_entries(store, array),
        _ => {
            let source = spec.open()?;
            let first = spec.expand()?.into_iter().next();
            let (chunks, filters) = match first {
                Some(SourceSpec::Tiff(file)) => {
                    let (chunks, filters) = tiff::storage(&file)?;
                    (Some(chunks), filters)
                }
                _ => (None, Vec::new()),
            };
            Ok(vec![Entry {
                path: source.label().to_string(),
                shape: source.shape().to_vec(),
                dtype: source.dtype().to_string(),
                chunks,
                filters,
                default_signal: false,
                summary: Some(summarize(source.as_ref()).map_err(|e| e.message)),
            }])
        }
    }
}

/// Every dataset of an HDF5 file (or only `only`), the NeXus default signal marked.
fn hdf5_entries(file: &Path, only: Option<&str>) -> Result<Vec<Entry>, DataError> {
    let label = file.display().to_string();
    let err = |m: String| DataError::new(&label, m);
    let h5 = open_hdf5(file)?;
    let default = default_signal(file).ok();
    let paths = match only {
        Some(dataset) => vec![dataset.to_string()],
        None => dataset_paths(&h5),
    };
    let mut entries = Vec::new();
    for path in paths {
        let dataset = h5
            .dataset(&path)
            .map_err(|_| err(format!("no dataset '{path}' in the file")))?;
        // Numeric datasets open as sources; others show the stored type.
        let source = Hdf5Source::open(file, &path).ok();
        let dtype = match &source {
            Some(source) => source.dtype().to_string(),
            None => dataset
                .dtype()
                .and_then(|t| t.to_descriptor())
                .map_or("unreadable".into(), |d| d.to_string()),
        };
        let summary = source
            .filter(|s| (2..=3).contains(&s.shape().len()) && !s.is_empty())
            .map(|s| summarize(&s).map_err(|e| e.message));
        entries.push(Entry {
            default_signal: default.as_deref() == Some(path.as_str()),
            shape: dataset.shape(),
            chunks: dataset.chunk(),
            filters: dataset.filters().iter().map(hdf5_filter_name).collect(),
            path,
            dtype,
            summary,
        });
    }
    Ok(entries)
}

/// The name of an HDF5 filter: the built-in ones, and the registered ids of the plugins
/// hdf5plugin ships (<https://github.com/HDFGroup/hdf5_plugins/blob/master/docs/RegisteredFilterPlugins.md>).
pub fn hdf5_filter_name(filter: &hdf5::filters::Filter) -> String {
    use hdf5::filters::Filter;
    match filter {
        Filter::Deflate(level) => format!("deflate({level})"),
        Filter::Shuffle => "shuffle".into(),
        Filter::Fletcher32 => "fletcher32".into(),
        Filter::SZip(..) => "szip".into(),
        Filter::NBit => "nbit".into(),
        Filter::ScaleOffset(..) => "scaleoffset".into(),
        Filter::User(id, cd_values) => match (id, cd_values.get(4)) {
            // bitshuffle's 5th value is its compression: 0 none, 2 LZ4, 3 zstd.
            (32008, Some(2)) => "bitshuffle+lz4".into(),
            (32008, Some(3)) => "bitshuffle+zstd".into(),
            (32008, _) => "bitshuffle".into(),
            (32000, _) => "lzf".into(),
            (32001, _) => "blosc".into(),
            (32004, _) => "lz4".into(),
            (32013, _) => "zfp".into(),
            (32015, _) => "zstd".into(),
            (32017, _) => "sz".into(),
            (32024, _) => "sz3".into(),
            (32026, _) => "blosc2".into(),
            (307, _) => "bzip2".into(),
            (id, _) => format!("filter {id}"),
        },
    }
}

/// The arrays of a Zarr store under `path` (the array itself, or every array of a group).
fn zarr_entries(store: &Path, path: &str) -> Result<Vec<Entry>, DataError> {
    let paths = zarr::array_paths(store, path)?;
    let mut entries = Vec::new();
    for array_path in paths {
        let source = ZarrSource::open(store, &array_path);
        let stored = zarr::storage(store, &array_path)?;
        let (chunks, filters) = (stored.chunks, stored.codecs);
        let (shape, dtype, summary) = match &source {
            Ok(source) if (2..=3).contains(&source.shape().len()) && !source.is_empty() => (
                source.shape().to_vec(),
                source.dtype().to_string(),
                Some(summarize(source).map_err(|e| e.message)),
            ),
            Ok(source) => (source.shape().to_vec(), source.dtype().to_string(), None),
            // A data type photonqa does not read: as the metadata names it.
            Err(_) => (stored.shape, stored.data_type, None),
        };
        entries.push(Entry {
            path: array_path,
            shape,
            dtype,
            chunks: Some(chunks),
            filters,
            default_signal: false,
            summary,
        });
    }
    Ok(entries)
}

/// Summarises every value of `source`, slab by slab.
pub fn summarize(source: &dyn VolumeSource) -> Result<Summary, DataError> {
    with_dtype!(source.dtype(), T => summarize_typed::<T>(source))
}

fn summarize_typed<T: Element + FromNdArray>(
    source: &dyn VolumeSource,
) -> Result<Summary, DataError> {
    if source.row_bytes() > SUMMARY_MAX_SLICE_BYTES {
        return Err(DataError::new(
            source.label(),
            format!(
                "one slice holds {} bytes, more than the {SUMMARY_MAX_SLICE_BYTES} bytes inspect reads at once",
                source.row_bytes()
            ),
        ));
    }
    let rows = source.shape()[0];
    let step = (SUMMARY_SLAB_BYTES / source.row_bytes().max(1)).clamp(1, rows);
    let (mut min, mut max): (Option<T>, Option<T>) = (None, None);
    let mut summary = Summary {
        min: None,
        max: None,
        range: None,
        values: 0,
        zeros: 0,
        non_finite: 0,
        integer_valued: true,
        counts_like: true,
    };
    for start in (0..rows).step_by(step) {
        let slab = source.read_slab(start..(start + step).min(rows))?;
        let slab = T::ref_nd(&slab).expect("a source's slabs have its dtype");
        for &value in slab {
            summary.values += 1;
            let v = value.to_f64();
            if !v.is_finite() {
                summary.non_finite += 1;
                summary.integer_valued = false;
                continue;
            }
            summary.zeros += u64::from(v == 0.0);
            summary.integer_valued &= v.fract() == 0.0;
            summary.counts_like &= v >= 0.0;
            // Compared as T: exact for 64-bit integers beyond 2^53 too.
            if min.is_none_or(|m| value < m) {
                min = Some(value);
            }
            if max.is_none_or(|m| value > m) {
                max = Some(value);
            }
        }
    }
    summary.counts_like &= summary.integer_valued;
    // Debug: the shortest round trip, with an exponent for very large or small floats.
    summary.min = min.map(|v| format!("{v:?}"));
    summary.max = max.map(|v| format!("{v:?}"));
    summary.range = min.zip(max).map(|(lo, hi)| (lo.to_f64(), hi.to_f64()));
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use super::*;
    use crate::data::{DType, IntoNdArray, MemorySource, NdArray};

    /// A source claiming slices larger than it can hold; reading it is a bug.
    struct Claiming;

    impl VolumeSource for Claiming {
        fn shape(&self) -> &[usize] {
            &[1, 100_000, 100_000]
        }
        fn dtype(&self) -> DType {
            DType::Float32
        }
        fn read_slab(&self, _: Range<usize>) -> Result<NdArray, DataError> {
            panic!("a slice beyond the limit must not be read")
        }
        fn label(&self) -> &str {
            "h.tif"
        }
    }

    #[test]
    fn a_slice_beyond_the_limit_is_refused_unread() {
        let err = summarize(&Claiming).unwrap_err().to_string();
        assert!(
            err.starts_with("h.tif: one slice holds 40000000000 bytes"),
            "{err}"
        );
    }

    #[test]
    fn summaries_count_zeros_integers_and_non_finite_values() {
        let values = vec![0.0f32, 2.0, -1.0, 0.5, f32::NAN, 0.0];
        let array = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 3]), values).unwrap();
        let source = MemorySource::new(array.into_nd(), "m").unwrap();
        let summary = summarize(&source).unwrap();
        assert_eq!(
            summary.to_string(),
            "min -1.0, max 2.0, zeros 2 of 6 (33.333 %), 1 non-finite, not integer-valued, not counts-like"
        );
        let counts =
            ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 2]), vec![0u64, u64::MAX, 3, 0])
                .unwrap();
        let source = MemorySource::new(counts.into_nd(), "c").unwrap();
        let summary = summarize(&source).unwrap();
        assert_eq!(summary.max.as_deref(), Some("18446744073709551615"));
        assert!(summary.integer_valued && summary.counts_like);
    }
}
