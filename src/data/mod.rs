//! Data I/O: typed arrays, sources read slab by slab (HDF5, `.npy`, raw), writers, and the
//! synthetic reference phantoms.

mod array;
pub mod exchange;
pub mod hdf5io;
pub mod npy;
pub mod phantom;
pub mod source;

pub use array::{DType, Element, FromNdArray, IntoNdArray, NdArray, c_order, typed_like};
pub use source::{MemorySource, SourceSpec, VolumeSource};

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
