//! Data I/O: typed arrays, sources read slab by slab (HDF5, `.npy`, raw, and many files stacked
//! along axis 0), writers, and the synthetic reference phantoms.

mod array;
pub mod exchange;
pub mod hdf5chunk;
pub mod hdf5io;
pub mod npy;
pub mod phantom;
pub mod shell;
pub mod source;
pub mod stack;
pub mod sx_model;

pub use array::{DType, Element, FromNdArray, IntoNdArray, NdArray, c_order, typed_like};
pub use source::{MemorySource, SourceSpec, VolumeSource};

/// Writes `bytes` to `path` atomically: a temporary file beside it (same file system, so the
/// rename is atomic), flushed to disk, then renamed over `path`. A reader (or an interrupted
/// writer) never sees half a file. Missing parent folders are created.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    // The process id keeps two concurrent writers from sharing a temporary file.
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// An I/O error, naming the file (and dataset) it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{label}: {message}")]
pub struct DataError {
    /// File and dataset, e.g. `data.h5::/volume`.
    pub label: String,
    /// What went wrong.
    pub message: String,
}

impl DataError {
    /// An error about `label`.
    pub fn new(label: &str, message: String) -> Self {
        DataError {
            label: label.to_string(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.json"]);
    }
}
