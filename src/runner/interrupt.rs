//! Stopping a run from outside it (Ctrl-C in Python, where the process goes on after the run).
//!
//! Every pass of a run reads its input chunk by chunk, so a flag looked at before each read
//! stops the run at the next chunk of whichever pass it is in, with an error. Rows are appended
//! to `results.jsonl` atomically, one per point once it is measured, so the points finished
//! before the stop stay and a resumed run measures the rest; a point half measured writes
//! nothing.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::data::{DType, DataError, NdArray, VolumeSource};

/// `source`, whose reads fail once `stop` is set.
pub struct Interruptible<'a> {
    source: &'a dyn VolumeSource,
    stop: &'a AtomicBool,
}

impl<'a> Interruptible<'a> {
    /// Reads `source` until `stop` is set.
    pub fn new(source: &'a dyn VolumeSource, stop: &'a AtomicBool) -> Self {
        Interruptible { source, stop }
    }
}

impl VolumeSource for Interruptible<'_> {
    fn shape(&self) -> &[usize] {
        self.source.shape()
    }

    fn dtype(&self) -> DType {
        self.source.dtype()
    }

    fn read_slab(&self, rows: Range<usize>) -> Result<NdArray, DataError> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(DataError::new(
                self.label(),
                "the run was interrupted; the points measured before are kept (resume runs the \
                 rest)"
                    .to_string(),
            ));
        }
        self.source.read_slab(rows)
    }

    fn label(&self) -> &str {
        self.source.label()
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, IxDyn};

    use super::*;
    use crate::data::{IntoNdArray, MemorySource};

    #[test]
    fn reads_pass_through_until_the_flag_is_set() {
        let array = ArrayD::from_shape_vec(IxDyn(&[4, 2]), (0..8).map(|v| v as f32).collect());
        let source = MemorySource::new(array.unwrap().into_nd(), "ramp").unwrap();
        let stop = AtomicBool::new(false);
        let interruptible = Interruptible::new(&source, &stop);
        assert_eq!(interruptible.shape(), &[4, 2]);
        let slab = interruptible.read_slab(1..3).unwrap();
        assert_eq!(slab, source.read_slab(1..3).unwrap());
        stop.store(true, Ordering::Relaxed);
        let error = interruptible.read_slab(1..3).unwrap_err().to_string();
        assert!(
            error.starts_with("ramp: the run was interrupted"),
            "{error}"
        );
    }
}
