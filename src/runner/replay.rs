//! The stored bytes of chunks, kept from a run's measuring pass so that its later passes decode
//! a lossy chain's data again without encoding it again: in memory up to a budget, beyond it in
//! files of a temporary folder inside the run directory (removed when the run ends).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A chunk's stored bytes, and the point whose chain stored them (and decodes them).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Index of the point in its batch.
    pub point: usize,
    /// The bytes.
    pub bytes: Arc<Vec<u8>>,
}

/// Chunks' stored bytes by (group, chunk index).
pub struct Replay {
    budget: u64,
    spill: Spill,
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    bytes: u64,
    chunks: HashMap<(usize, usize), (usize, Place)>,
}

enum Place {
    Memory(Arc<Vec<u8>>),
    File(PathBuf),
}

/// Where chunks beyond the budget go: a temporary folder made when first needed.
struct Spill {
    parent: PathBuf,
    folder: Mutex<Option<tempfile::TempDir>>,
}

impl Replay {
    /// A store keeping up to `budget` bytes in memory, the rest in a temporary folder in
    /// `parent` (the run directory).
    pub fn new(budget: u64, parent: &Path) -> Replay {
        Replay {
            budget,
            spill: Spill {
                parent: parent.to_path_buf(),
                folder: Mutex::new(None),
            },
            kept: Mutex::new(Kept::default()),
        }
    }

    /// Keeps `stored`, the bytes point `point`'s chain stored for chunk `at.1` of group
    /// `at.0` (the first kept for a chunk stays).
    pub fn keep(
        &self,
        at: (usize, usize),
        point: usize,
        stored: &Arc<Vec<u8>>,
    ) -> Result<(), String> {
        let mut kept = self.kept.lock().expect("no panic holds the lock");
        if kept.chunks.contains_key(&at) {
            return Ok(());
        }
        let size = stored.len() as u64;
        let place = if kept.bytes + size <= self.budget {
            kept.bytes += size;
            Place::Memory(Arc::clone(stored))
        } else {
            Place::File(self.spill.write(at, stored)?)
        };
        kept.chunks.insert(at, (point, place));
        Ok(())
    }

    /// The bytes kept for chunk `at.1` of group `at.0`.
    pub fn get(&self, at: (usize, usize)) -> Result<Option<Stored>, String> {
        let kept = self.kept.lock().expect("no panic holds the lock");
        let Some((point, place)) = kept.chunks.get(&at) else {
            return Ok(None);
        };
        let bytes = match place {
            Place::Memory(bytes) => Arc::clone(bytes),
            Place::File(path) => {
                Arc::new(fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?)
            }
        };
        Ok(Some(Stored {
            point: *point,
            bytes,
        }))
    }
}

impl Spill {
    fn write(&self, (group, chunk): (usize, usize), bytes: &[u8]) -> Result<PathBuf, String> {
        let mut folder = self.folder.lock().expect("no panic holds the lock");
        if folder.is_none() {
            let made = tempfile::Builder::new()
                .prefix(".replay-")
                .tempdir_in(&self.parent)
                .map_err(|e| format!("{}: temporary folder: {e}", self.parent.display()))?;
            *folder = Some(made);
        }
        let path = folder
            .as_ref()
            .expect("made above")
            .path()
            .join(format!("{group}-{chunk}.bin"));
        fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_beyond_the_budget_spill_to_files_and_come_back_alike() {
        let dir = tempfile::tempdir().unwrap();
        let replay = Replay::new(10, dir.path());
        let a = Arc::new(vec![1u8; 8]);
        let b = Arc::new(vec![2u8; 8]);
        replay.keep((0, 0), 3, &a).unwrap();
        replay.keep((0, 1), 4, &b).unwrap();
        // The first kept stays.
        replay.keep((0, 0), 5, &b).unwrap();
        let stored = |point, bytes| Some(Stored { point, bytes });
        assert_eq!(replay.get((0, 0)).unwrap(), stored(3, a));
        assert_eq!(replay.get((0, 1)).unwrap(), stored(4, b));
        assert_eq!(replay.get((1, 0)).unwrap(), None);
        let spilled: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(
            spilled.len(),
            1,
            "one temporary folder for the spilled chunk"
        );
        drop(replay);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "removed with the store"
        );
    }
}
