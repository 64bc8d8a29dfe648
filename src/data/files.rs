//! Files named by the user: inputs must be regular files, outputs are written whole or not at
//! all.
//!
//! An output is written under a temporary name beside its target (same folder, so same file
//! system) and renamed over it only once complete and flushed to disk: a reader, or a process
//! killed mid-write (even by `kill -9`), sees the old file or the new one, never half a file.
//! The temporary name is `.NAME.PID-RANDOM.photonqa-tmp`: hidden, unique (a leftover of a
//! killed write is never reused or read: glob inputs skip hidden files) and recognisable, so
//! that leftovers can be removed with `rm .*.photonqa-tmp`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// The ending of every temporary output file.
pub const TEMP_SUFFIX: &str = ".photonqa-tmp";

/// Fault injection for tests: an output whose file name equals this variable's value stops
/// just before its temporary file is renamed over the target, says so on stderr, and waits to
/// be killed (to check that a killed write leaves the target as it was).
pub const PAUSE_BEFORE_RENAME_ENV: &str = "PHOTONQA_PAUSE_BEFORE_RENAME";

/// The cause, to be shown after the path, when `path` exists but is not a regular file once
/// symbolic links are followed: a FIFO (reading it waits for a writer, forever), a device, a
/// socket or a folder. A path that does not exist passes: opening it reports that.
pub fn refuse_special_file(path: &Path) -> Result<(), String> {
    let Ok(metadata) = fs::metadata(path) else {
        return Ok(());
    };
    let kind = metadata.file_type();
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_dir() {
        "a folder"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    };
    Err(format!(
        "is {what}, not a regular file; photonqa reads only regular files"
    ))
}

/// What happens to an output file that exists already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// It is an error ([`io::ErrorKind::AlreadyExists`]); also when it appears while the
    /// output is written.
    Refuse,
    /// It is replaced as a whole.
    Replace,
    /// It is copied to the temporary file, which the caller extends (HDF5 cannot add to a file
    /// atomically in place): the cost is one copy of the file, in time and transiently in disk
    /// space. Written concurrently by another process, the last rename wins.
    Extend,
}

/// An output file being written under a temporary name beside `target`, renamed over it by
/// [`AtomicFile::commit`]; dropped without a commit, the temporary file is removed and the
/// target is left as it was.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    existing: Existing,
    extends: bool,
}

impl AtomicFile {
    /// Starts writing `target`: checks what exists as `existing` says, creates missing parent
    /// folders and the (empty, or with [`Existing::Extend`] copied) temporary file.
    pub fn begin(target: &Path, existing: Existing) -> io::Result<AtomicFile> {
        let name = target
            .file_name()
            .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "not a file name"))?;
        if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)?;
        }
        let present = match fs::metadata(target) {
            Ok(m) if m.is_file() => true,
            Ok(_) => {
                return Err(io::Error::new(
                    ErrorKind::InvalidInput,
                    "exists and is not a regular file",
                ));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        if present && existing == Existing::Refuse {
            return Err(io::Error::new(ErrorKind::AlreadyExists, "exists already"));
        }
        // Long names are shortened so that the temporary name stays within NAME_MAX.
        let stem: String = name.to_string_lossy().chars().take(150).collect();
        let mut tries = 0;
        let temp = loop {
            let temp = target.with_file_name(format!(
                ".{stem}.{}-{:08x}{TEMP_SUFFIX}",
                std::process::id(),
                rand::random::<u32>()
            ));
            // create_new: never a file another writer (or a killed one) left; mode 0o666
            // minus the umask, as any new file.
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(_) => break temp,
                Err(e) if e.kind() == ErrorKind::AlreadyExists && tries < 16 => tries += 1,
                Err(e) => return Err(e),
            }
        };
        let file = AtomicFile {
            target: target.to_path_buf(),
            temp,
            existing,
            extends: present && existing == Existing::Extend,
        };
        if file.extends {
            // Contents and permissions; dropping `file` on an error removes the copy.
            fs::copy(target, &file.temp)?;
        }
        Ok(file)
    }

    /// Where to write: the temporary file.
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// The file this output replaces or creates.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Whether the temporary file is a copy of the existing target, to be extended.
    pub fn extends(&self) -> bool {
        self.extends
    }

    /// `error` of a reader or writer of [`AtomicFile::path`], naming the target instead of the
    /// temporary file.
    pub fn relabel(&self, mut error: super::DataError) -> super::DataError {
        let temp = self.temp.display().to_string();
        if let Some(rest) = error.label.strip_prefix(&temp) {
            error.label = format!("{}{rest}", self.target.display());
        }
        error
    }

    /// Flushes the temporary file to disk and renames it over the target (with
    /// [`Existing::Refuse`], only if the target still does not exist), then flushes the
    /// folder. Every handle on the temporary file must be closed.
    pub fn commit(self) -> io::Result<()> {
        File::open(&self.temp)?.sync_all()?;
        if std::env::var_os(PAUSE_BEFORE_RENAME_ENV)
            .is_some_and(|v| Some(v.as_os_str()) == self.target.file_name())
        {
            eprintln!(
                "photonqa: {}: paused before the rename over it ({PAUSE_BEFORE_RENAME_ENV}), waiting to be killed",
                self.target.display()
            );
            loop {
                std::thread::park();
            }
        }
        if self.existing == Existing::Refuse {
            // A hard link fails if the target appeared meanwhile; a rename would replace it.
            match fs::hard_link(&self.temp, &self.target) {
                // Dropping `self` removes the temporary name.
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    return Err(io::Error::new(
                        ErrorKind::AlreadyExists,
                        "was created by another writer meanwhile; left as it is",
                    ));
                }
                // A file system without hard links: the check, then the rename.
                Err(_) if self.target.exists() => {
                    return Err(io::Error::new(
                        ErrorKind::AlreadyExists,
                        "was created by another writer meanwhile; left as it is",
                    ));
                }
                Err(_) => fs::rename(&self.temp, &self.target)?,
            }
        } else {
            fs::rename(&self.temp, &self.target)?;
        }
        // The rename itself is on disk once the folder is; some file systems refuse to flush
        // a folder, and the data are safe by then anyway.
        let parent = self
            .target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let Ok(folder) = File::open(parent) {
            let _ = folder.sync_all();
        }
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // After a commit the temporary file is gone and this fails quietly.
        let _ = fs::remove_file(&self.temp);
    }
}

/// `error` of [`AtomicFile::begin`] or [`AtomicFile::commit`] on `target` as one line, `hint`
/// (how to overwrite it, e.g. "--force replaces it") after a target that exists.
pub fn output_error(target: &Path, error: &io::Error, hint: &str) -> String {
    if error.kind() == ErrorKind::AlreadyExists {
        format!("{}: {error}: {hint}", target.display())
    } else {
        format!("{}: {error}", target.display())
    }
}

/// Writes `bytes` to `path` atomically ([`AtomicFile`] with [`Existing::Replace`]): a reader,
/// or an interrupted writer, never sees half a file. Missing parent folders are created.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file = AtomicFile::begin(path, Existing::Replace)?;
    fs::write(file.path(), bytes)?;
    file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(names(path.parent().unwrap()), ["out.json"]);
    }

    #[test]
    fn existing_targets_are_refused_replaced_or_extended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        fs::write(&path, b"old").unwrap();

        let refused = AtomicFile::begin(&path, Existing::Refuse).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::AlreadyExists);
        assert_eq!(refused.to_string(), "exists already");

        let extended = AtomicFile::begin(&path, Existing::Extend).unwrap();
        assert!(extended.extends());
        assert_eq!(fs::read(extended.path()).unwrap(), b"old");
        let name = extended.path().file_name().unwrap().to_string_lossy();
        assert!(
            name.starts_with(".a.bin.") && name.ends_with(TEMP_SUFFIX),
            "{name}"
        );
        fs::write(extended.path(), b"old+new").unwrap();
        // Not committed: the target is untouched and the copy is gone.
        drop(extended);
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["a.bin"]);

        let replaced = AtomicFile::begin(&path, Existing::Replace).unwrap();
        assert!(!replaced.extends());
        assert_eq!(fs::read(replaced.path()).unwrap(), b"");
        fs::write(replaced.path(), b"new").unwrap();
        replaced.commit().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["a.bin"]);
    }

    #[test]
    fn a_refusing_output_never_replaces_a_file_that_appeared_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        let output = AtomicFile::begin(&path, Existing::Refuse).unwrap();
        fs::write(output.path(), b"mine").unwrap();
        fs::write(&path, b"theirs").unwrap();
        let err = output.commit().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"theirs");
        assert_eq!(names(dir.path()), ["a.bin"]);
    }

    #[test]
    fn relabel_names_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let output = AtomicFile::begin(&dir.path().join("x.h5"), Existing::Refuse).unwrap();
        let label = format!("{}::/v", output.path().display());
        let error = output.relabel(super::super::DataError::new(&label, "broken".into()));
        assert_eq!(
            error.to_string(),
            format!("{}::/v: broken", dir.path().join("x.h5").display())
        );
    }

    #[test]
    fn special_files_are_refused_by_kind() {
        let dir = tempfile::tempdir().unwrap();
        assert!(refuse_special_file(&dir.path().join("missing")).is_ok());
        let file = dir.path().join("f");
        fs::write(&file, b"").unwrap();
        assert!(refuse_special_file(&file).is_ok());
        assert_eq!(
            refuse_special_file(dir.path()).unwrap_err(),
            "is a folder, not a regular file; photonqa reads only regular files"
        );
        assert_eq!(
            refuse_special_file(Path::new("/dev/null")).unwrap_err(),
            "is a device, not a regular file; photonqa reads only regular files"
        );
    }
}
