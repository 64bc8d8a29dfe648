//! Data I/O: typed arrays, sources read slab by slab (HDF5, Zarr, `.npy`, TIFF, raw, and many files
//! stacked along axis 0), writers, files written atomically, and the synthetic reference phantoms.

mod array;
pub mod exchange;
pub mod files;
pub mod hdf5chunk;
pub mod hdf5io;
pub mod hdf5plugins;
pub mod inspect;
pub mod nexus;
pub mod npy;
pub mod phantom;
pub mod shell;
pub mod source;
pub mod stack;
pub mod sx_model;
pub mod tiff;
pub mod zarr;

pub use array::{
    DType, Element, FromNdArray, IntoNdArray, NdArray, c_order, check_same_shape, rows_with_halo,
    typed_like,
};
pub use files::write_atomically;
pub use source::{MemorySource, SourceSpec, ViewSource, VolumeSource};

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
