//! The codec of the stages that are HDF5's own filters (`scaleoffset`, `nbit`): each chunk is
//! stored through the filter run by the HDF5 library photonqa links, in memory
//! ([`crate::data::hdf5chunk`]), so the stored chunk is what HDF5 writes and the decoded one
//! what it reads back. The stored chunk is framed by photonqa's checksum before HDF5's decoder
//! sees it, so a corrupted stream is an error, never data HDF5 guessed at.

use crate::data::NdArray;
use crate::data::hdf5chunk::{self, Layout};
use crate::data::hdf5io::StoredType;
use crate::pipeline::stages::guard;
use crate::pipeline::{ArrayToBytes, CodecError, Promise};

/// One HDF5 filter applied to whole chunks.
pub struct Hdf5FilterCodec {
    /// The stage's id, for errors.
    pub stage: &'static str,
    /// The filter `(id, cd_values)`.
    pub filter: [(u32, Vec<u32>); 1],
    /// The stored element type.
    pub stored: StoredType,
    /// What the stage promises about its decoded values.
    pub promise: Option<Promise>,
}

impl Hdf5FilterCodec {
    fn layout(&self, rows: usize) -> Layout<'_> {
        Layout {
            chunk_rows: rows,
            stored: self.stored,
            filters: &self.filter,
        }
    }
}

impl ArrayToBytes for Hdf5FilterCodec {
    /// The chunk as HDF5 stores it, sealed.
    fn encode(&self, input: &NdArray) -> Result<Vec<u8>, CodecError> {
        if input.is_empty() {
            return Err(CodecError::new(self.stage, "cannot store an empty chunk"));
        }
        let stored = hdf5chunk::store(input, &self.layout(input.shape()[0]))
            .map_err(|e| CodecError::new(self.stage, e))?;
        Ok(guard::seal(stored))
    }

    /// The chunk of `shape` HDF5 reads from `bytes`.
    fn decode(&self, bytes: &[u8], shape: &[usize]) -> Result<NdArray, CodecError> {
        let payload = guard::open(self.stage, bytes)?;
        let rows = shape.first().copied().unwrap_or(0);
        hdf5chunk::load(payload, shape, &self.layout(rows))
            .map_err(|e| CodecError::new(self.stage, format!("corrupt stream: {e}")))
    }

    fn promised(&self, _shape: &[usize]) -> Option<Promise> {
        self.promise
    }
}
