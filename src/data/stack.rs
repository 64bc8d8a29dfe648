//! Many inputs read as one array stacked along axis 0: a scan written as one file per N
//! frames, named by a glob pattern or a list (see [`SourceSpec::parse_input`] and
//! [`SourceSpec::parse_list`]).
//!
//! A slab reads only the parts its rows overlap, each part's own rows, and concatenates them:
//! a Slurm unit that works on a slab touches the data of its files only. Every part is opened
//! once to learn its shape and dtype; up to [`KEEP_OPEN`] parts stay open, beyond that each
//! read opens its part again (so that thousands of files do not exhaust the file descriptors).

use std::ops::Range;

use super::DataError;
use super::array::{DType, NdArray};
use super::source::{SourceSpec, VolumeSource, check_rows, check_shape};

/// Most parts a [`StackSource`] keeps open between reads.
pub const KEEP_OPEN: usize = 256;

/// Sources stacked along axis 0: same shape after axis 0, same dtype.
pub struct StackSource {
    parts: Vec<Part>,
    shape: Vec<usize>,
    dtype: DType,
    label: String,
}

/// One stacked source and where its rows start.
struct Part {
    /// First row of the part in the stack.
    start: usize,
    /// Its length along axis 0.
    rows: usize,
    handle: Handle,
}

enum Handle {
    /// Opened once, read many times.
    Open(Box<dyn VolumeSource>),
    /// Opened for each read (many parts); the shape and dtype it had when the stack opened.
    Reopen(SourceSpec, Vec<usize>, DType),
}

impl StackSource {
    /// Opens every file a pattern or a list names (see [`SourceSpec::expand`]) and checks that
    /// they stack. The label is what the source names with the number of files, e.g.
    /// `scans/scan_*.h5::/entry/data (12 files)`.
    pub fn open(spec: &SourceSpec) -> Result<Self, DataError> {
        StackSource::open_keeping(spec, KEEP_OPEN)
    }

    /// [`StackSource::open`], keeping the parts open when there are at most `keep_open`.
    fn open_keeping(spec: &SourceSpec, keep_open: usize) -> Result<Self, DataError> {
        let leaves = spec.expand()?;
        let label = format!(
            "{} ({} file{})",
            spec.describe(),
            leaves.len(),
            if leaves.len() == 1 { "" } else { "s" }
        );
        if leaves.is_empty() {
            return Err(DataError::new(&label, "the list of inputs is empty".into()));
        }
        let keep = leaves.len() <= keep_open;
        let mut parts = Vec::with_capacity(leaves.len());
        for leaf in leaves {
            let source = leaf.open()?;
            parts.push(if keep {
                Handle::Open(source)
            } else {
                Handle::Reopen(leaf, source.shape().to_vec(), source.dtype())
            });
        }
        StackSource::stack(label, parts)
    }

    /// Stacks opened sources in the order given (in-memory arrays, tests); `label` names the
    /// stack.
    pub fn from_sources(
        label: &str,
        sources: Vec<Box<dyn VolumeSource>>,
    ) -> Result<Self, DataError> {
        if sources.is_empty() {
            return Err(DataError::new(label, "the list of inputs is empty".into()));
        }
        StackSource::stack(
            label.into(),
            sources.into_iter().map(Handle::Open).collect(),
        )
    }

    /// Checks that the parts agree with the first after axis 0 and in dtype; errors name the
    /// part that differs.
    fn stack(label: String, handles: Vec<Handle>) -> Result<Self, DataError> {
        let (first_label, first_shape, dtype) = {
            let first = &handles[0];
            (first.label(), first.shape().to_vec(), first.dtype())
        };
        let mut parts = Vec::with_capacity(handles.len());
        let mut start = 0;
        for handle in handles {
            let shape = handle.shape();
            check_shape(&handle.label(), shape)?;
            if shape[1..] != first_shape[1..] {
                return Err(DataError::new(
                    &handle.label(),
                    format!(
                        "shape {shape:?} does not stack on shape {first_shape:?} of {first_label}: \
                         every file needs the same shape after axis 0"
                    ),
                ));
            }
            if handle.dtype() != dtype {
                return Err(DataError::new(
                    &handle.label(),
                    format!(
                        "dtype {} does not stack on dtype {dtype} of {first_label}: every file \
                         needs the same dtype",
                        handle.dtype()
                    ),
                ));
            }
            let rows = shape[0];
            parts.push(Part {
                start,
                rows,
                handle,
            });
            start += rows;
        }
        let mut shape = first_shape;
        shape[0] = start;
        Ok(StackSource {
            parts,
            shape,
            dtype,
            label,
        })
    }

    /// The number of stacked files.
    pub fn parts(&self) -> usize {
        self.parts.len()
    }
}

impl Handle {
    fn label(&self) -> String {
        match self {
            Handle::Open(source) => source.label().to_string(),
            Handle::Reopen(spec, ..) => spec.describe(),
        }
    }
    fn shape(&self) -> &[usize] {
        match self {
            Handle::Open(source) => source.shape(),
            Handle::Reopen(_, shape, _) => shape,
        }
    }
    fn dtype(&self) -> DType {
        match self {
            Handle::Open(source) => source.dtype(),
            Handle::Reopen(_, _, dtype) => *dtype,
        }
    }
    /// Rows `rows` of the part (its own row numbers).
    fn read(&self, rows: Range<usize>) -> Result<NdArray, DataError> {
        match self {
            Handle::Open(source) => source.read_slab(rows),
            Handle::Reopen(spec, shape, dtype) => {
                let source = spec.open()?;
                if source.shape() != shape.as_slice() || source.dtype() != *dtype {
                    return Err(DataError::new(
                        source.label(),
                        format!(
                            "changed while in use: shape {:?} of {} was {shape:?} of {dtype}",
                            source.shape(),
                            source.dtype()
                        ),
                    ));
                }
                source.read_slab(rows)
            }
        }
    }
}

impl VolumeSource for StackSource {
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
        let first = self
            .parts
            .partition_point(|p| p.start + p.rows <= rows.start);
        let mut slabs = Vec::new();
        for part in self.parts[first..]
            .iter()
            .take_while(|p| p.start < rows.end)
        {
            let own = rows.start.max(part.start) - part.start
                ..rows.end.min(part.start + part.rows) - part.start;
            slabs.push(part.handle.read(own)?);
        }
        if slabs.len() == 1 {
            return Ok(slabs.pop().expect("one slab"));
        }
        NdArray::concatenate(&slabs).map_err(|e| DataError::new(&self.label, e))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use ndarray::{ArrayD, IxDyn};

    use super::*;
    use crate::data::{IntoNdArray, MemorySource};

    fn volume(rows: usize, offset: usize) -> NdArray {
        let values: Vec<f32> = (0..rows * 3 * 2).map(|v| (v + offset) as f32).collect();
        ArrayD::from_shape_vec(IxDyn(&[rows, 3, 2]), values)
            .unwrap()
            .into_nd()
    }

    /// A source that records the rows read from it.
    struct Recording {
        inner: MemorySource,
        reads: Arc<Mutex<Vec<Range<usize>>>>,
    }

    impl VolumeSource for Recording {
        fn shape(&self) -> &[usize] {
            self.inner.shape()
        }
        fn dtype(&self) -> DType {
            self.inner.dtype()
        }
        fn label(&self) -> &str {
            self.inner.label()
        }
        fn read_slab(&self, rows: Range<usize>) -> Result<NdArray, DataError> {
            self.reads.lock().unwrap().push(rows.clone());
            self.inner.read_slab(rows)
        }
    }

    #[test]
    fn slabs_read_only_the_overlapping_rows_of_each_part() {
        let whole = volume(10, 0);
        let cuts = [0..4, 4..5, 5..10];
        let reads: Vec<Arc<Mutex<Vec<Range<usize>>>>> =
            cuts.iter().map(|_| Arc::default()).collect();
        let sources: Vec<Box<dyn VolumeSource>> = cuts
            .iter()
            .zip(&reads)
            .enumerate()
            .map(|(i, (rows, reads))| {
                Box::new(Recording {
                    inner: MemorySource::new(whole.slice_rows(rows.clone()), &format!("p{i}"))
                        .unwrap(),
                    reads: reads.clone(),
                }) as Box<dyn VolumeSource>
            })
            .collect();
        let stack = StackSource::from_sources("stack", sources).unwrap();
        assert_eq!(stack.shape(), [10, 3, 2]);
        assert_eq!(stack.parts(), 3);
        for start in 0..10 {
            for end in start + 1..=10 {
                assert_eq!(
                    stack.read_slab(start..end).unwrap(),
                    whole.slice_rows(start..end),
                    "{start}..{end}"
                );
            }
        }
        reads.iter().for_each(|r| r.lock().unwrap().clear());
        stack.read_slab(6..8).unwrap();
        stack.read_slab(3..6).unwrap();
        assert!(stack.read_slab(8..11).is_err());
        let taken: Vec<Vec<(usize, usize)>> = reads
            .iter()
            .map(|r| r.lock().unwrap().iter().map(|r| (r.start, r.end)).collect())
            .collect();
        assert_eq!(taken, [vec![(3, 4)], vec![(0, 1)], vec![(1, 3), (0, 1)]]);
    }

    #[test]
    fn parts_must_agree_after_axis_0_and_in_dtype() {
        let part = |array: NdArray, label: &str| -> Box<dyn VolumeSource> {
            Box::new(MemorySource::new(array, label).unwrap())
        };
        let narrow = ArrayD::from_shape_vec(IxDyn(&[2, 3, 1]), vec![0f32; 6])
            .unwrap()
            .into_nd();
        let err = StackSource::from_sources("s", vec![part(volume(2, 0), "a"), part(narrow, "b")])
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            "b: shape [2, 3, 1] does not stack on shape [2, 3, 2] of a: every file needs the \
             same shape after axis 0"
        );
        let ints = ArrayD::from_shape_vec(IxDyn(&[1, 3, 2]), vec![0u16; 6])
            .unwrap()
            .into_nd();
        let err = StackSource::from_sources("s", vec![part(volume(2, 0), "a"), part(ints, "c")])
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            "c: dtype uint16 does not stack on dtype float32 of a: every file needs the same dtype"
        );
        assert!(StackSource::from_sources("s", Vec::new()).is_err());
    }

    #[test]
    fn patterns_sort_by_path_and_lists_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, rows: usize, offset: usize| {
            crate::data::npy::write_npy(&dir.path().join(name), &volume(rows, offset)).unwrap();
        };
        write("f_02.npy", 1, 1000);
        write("f_00.npy", 2, 0);
        write("f_01.npy", 3, 500);
        write(".f_03.npy", 1, 7);
        std::fs::create_dir(dir.path().join("f_04.npy.d")).unwrap();
        let spec = SourceSpec::parse_input("f_*.npy", dir.path(), None).unwrap();
        assert!(matches!(spec, SourceSpec::Glob { .. }), "{spec:?}");
        let source = spec.open().unwrap();
        assert_eq!(source.shape(), [6, 3, 2]);
        let label = format!("{}/f_*.npy (3 files)", dir.path().display());
        assert_eq!(source.label(), label);
        let all = source.read_slab(0..6).unwrap();
        let expected = NdArray::concatenate(&[volume(2, 0), volume(3, 500), volume(1, 1000)]);
        assert_eq!(all, expected.unwrap());

        let list = SourceSpec::parse_list(&["f_02.npy", "f_0[01].npy"], dir.path(), None).unwrap();
        let source = list.open().unwrap();
        assert_eq!(
            source.read_slab(0..6).unwrap(),
            NdArray::concatenate(&[volume(1, 1000), volume(2, 0), volume(3, 500)]).unwrap()
        );
        assert!(
            source.label().ends_with("f_0[01].npy] (3 files)"),
            "{}",
            source.label()
        );

        let err = SourceSpec::parse_input("g_*.npy", dir.path(), None)
            .unwrap()
            .open()
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            format!(
                "{}/g_*.npy: no file matches this pattern",
                dir.path().display()
            )
        );
        assert_eq!(
            SourceSpec::parse_list(&[], dir.path(), None).unwrap_err(),
            "the list of inputs is empty"
        );
    }

    #[test]
    fn names_without_a_pattern_stay_single_sources() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        for text in ["a.h5::/x", "v.npy", "../v.npy"] {
            assert_eq!(
                SourceSpec::parse_input(text, base, None),
                SourceSpec::parse(text, base, None)
            );
        }
        // An existing file whose name holds metacharacters is that file.
        std::fs::write(base.join("run[1].npy"), b"").unwrap();
        assert_eq!(
            SourceSpec::parse_input("run[1].npy", base, None).unwrap(),
            SourceSpec::Npy(base.join("run[1].npy"))
        );
        // So is an invalid pattern (it fails as the missing file it names).
        assert!(matches!(
            SourceSpec::parse_input("run[.npy", base, None).unwrap(),
            SourceSpec::Npy(_)
        ));
        // Errors of the single form are unchanged.
        assert_eq!(
            SourceSpec::parse_input("s_*.bin", base, None),
            SourceSpec::parse("s_*.bin", base, None)
        );
    }

    #[test]
    fn many_parts_are_opened_for_each_read() {
        let dir = tempfile::tempdir().unwrap();
        let whole = volume(7, 0);
        for (i, rows) in [0..3, 3..4, 4..7].into_iter().enumerate() {
            let path = dir.path().join(format!("p{i}.npy"));
            crate::data::npy::write_npy(&path, &whole.slice_rows(rows)).unwrap();
        }
        let spec = SourceSpec::parse_input("p?.npy", dir.path(), None).unwrap();
        let stack = StackSource::open_keeping(&spec, 2).unwrap();
        assert!(
            stack
                .parts
                .iter()
                .all(|p| matches!(p.handle, Handle::Reopen(..)))
        );
        assert_eq!(stack.read_slab(2..6).unwrap(), whole.slice_rows(2..6));
        // A part that changed since the stack was opened is refused.
        crate::data::npy::write_npy(&dir.path().join("p1.npy"), &volume(2, 0)).unwrap();
        let err = stack.read_slab(2..6).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "p1.npy: changed while in use: shape [2, 3, 2] of float32 was [1, 3, 2] of float32"
            ),
            "{err}"
        );
    }

    #[test]
    fn the_base_folder_is_not_a_pattern() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("run[1]").join("scenarios");
        std::fs::create_dir_all(&base).unwrap();
        crate::data::npy::write_npy(&dir.path().join("run[1]/v_0.npy"), &volume(2, 0)).unwrap();
        let spec = SourceSpec::parse_input("../v_*.npy", &base, None).unwrap();
        let SourceSpec::Glob { template, .. } = &spec else {
            panic!("{spec:?}")
        };
        assert_eq!(
            template.describe(),
            format!("{}/run[1]/v_*.npy", dir.path().display())
        );
        assert_eq!(spec.open().unwrap().shape(), [2, 3, 2]);
    }
}
