//! Advisory locks that keep two photonqa processes from writing into one output directory at
//! once: two `run`s appending to one `results.jsonl` would each record every point.
//!
//! `DIR/photonqa.lock` ([`LOCK_FILE`]) is locked for the whole command:
//! - exclusively by the commands that write a directory's results: `run` (and `check` and
//!   `bless`, which run), and `merge`;
//! - shared by `unit`: the tasks of one submission run side by side by design, each writing its
//!   own `DIR/units` files atomically, and the same unit run twice writes the same outcome, so
//!   they exclude only a `run` or `merge` of the directory (a merge must not read units that are
//!   still being written).
//!
//! `submit` locks `DIR/slurm/photonqa.lock` exclusively: two submissions at once would both
//! submit the units left, and neither conflicts with the units it submits.
//!
//! The exclusive holder writes who it is (`photonqa run, pid 4242 on node7`) into the file, so
//! that a process turned away names it; shared holders empty it, as no exclusive holder can be
//! alive while they hold theirs. The operating system releases a lock when its holder exits,
//! however it ends (`kill -9` included), so a lock never outlives its process; the file stays.
//! Where locking fails (a Lustre mount without `flock`, an NFS mount without its lock daemon)
//! photonqa warns and goes on.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// The lock file in an output directory.
pub const LOCK_FILE: &str = "photonqa.lock";

/// A held lock: released when dropped, or by the operating system when the process ends.
#[derive(Debug)]
pub struct Lock {
    /// The locked file; `None` where the file system has no locks.
    file: Option<File>,
    /// Whether it is the exclusive lock, whose holder the file names.
    exclusive: bool,
}

impl Lock {
    /// Locks `dir` (made when missing) for the `photonqa` subcommand `command` (`run`,
    /// `merge`, `submit`) alone. Fails at once when another process holds a lock on it, naming
    /// the holder.
    pub fn exclusive(dir: &Path, command: &str) -> Result<Lock, String> {
        Lock::acquire(dir, Some(command))
    }

    /// Locks `dir` (made when missing) for one of the `unit` tasks that share it. Fails at once
    /// when a process holds it exclusively, naming the holder.
    pub fn shared(dir: &Path) -> Result<Lock, String> {
        Lock::acquire(dir, None)
    }

    /// Locks `dir` exclusively for `command`, or shared when `None`.
    fn acquire(dir: &Path, command: Option<&str>) -> Result<Lock, String> {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        let label = path.display();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("{label}: {e}"))?;
        let tried = match command {
            Some(_) => file.try_lock(),
            None => file.try_lock_shared(),
        };
        match tried {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(busy(&path, &mut file)),
            Err(TryLockError::Error(e)) => {
                // Refusing would make photonqa unusable there; going on is what it did before
                // it had locks.
                eprintln!(
                    "photonqa: warning: {label}: cannot lock ({e}); nothing keeps another photonqa process from writing into {} at the same time",
                    dir.display()
                );
                return Ok(Lock {
                    file: None,
                    exclusive: false,
                });
            }
        }
        // Under an exclusive lock the file names its holder; under shared ones it is empty.
        let holder = command.map(holder).unwrap_or_default();
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(holder.as_bytes()))
            .map_err(|e| format!("{label}: {e}"))?;
        Ok(Lock {
            file: Some(file),
            exclusive: command.is_some(),
        })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // The holder's name goes with it; closing the file releases the lock.
        if let (Some(file), true) = (&self.file, self.exclusive) {
            let _ = file.set_len(0);
        }
    }
}

/// `photonqa <command>, pid <pid> on <host>`: who holds an exclusive lock.
fn holder(command: &str) -> String {
    let host = fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| format!(" on {}", h.trim()))
        .unwrap_or_default();
    format!("photonqa {command}, pid {}{host}\n", std::process::id())
}

/// The error of a process turned away from the lock at `path` (open as `file`).
fn busy(path: &Path, file: &mut File) -> String {
    let mut text = String::new();
    // The holder may be writing its name this very moment: then it is unnamed.
    let _ = file.read_to_string(&mut text);
    let name: String = text
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    let dir = path.parent().unwrap_or(Path::new(".")).display();
    if name.trim().is_empty() {
        format!(
            "{dir}: in use by running `photonqa unit` tasks or another photonqa process (they hold {}); wait until they end",
            path.display()
        )
    } else {
        format!(
            "{dir}: in use by {} (it holds {}); wait until it ends, or choose another directory",
            name.trim(),
            path.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_everyone_and_shared_only_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let first = Lock::exclusive(d, "run").unwrap();
        let pid = std::process::id();
        let held = fs::read_to_string(d.join(LOCK_FILE)).unwrap();
        assert!(
            held.starts_with(&format!("photonqa run, pid {pid}")),
            "{held}"
        );
        for turned_away in [Lock::exclusive(d, "merge"), Lock::shared(d)] {
            let err = turned_away.unwrap_err();
            let expected = format!("{}: in use by photonqa run, pid {pid}", d.display());
            assert!(err.starts_with(&expected), "{err}");
            assert!(err.contains("photonqa.lock); wait until it ends"), "{err}");
        }
        drop(first);
        assert_eq!(fs::read_to_string(d.join(LOCK_FILE)).unwrap(), "");
        let a = Lock::shared(d).unwrap();
        let b = Lock::shared(d).unwrap();
        let err = Lock::exclusive(d, "merge").unwrap_err();
        assert!(
            err.contains("in use by running `photonqa unit` tasks"),
            "{err}"
        );
        drop((a, b));
        Lock::exclusive(d, "merge").unwrap();
    }
}
