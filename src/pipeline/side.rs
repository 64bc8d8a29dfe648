//! Side information of a codec: files its decoder needs besides the stream (a learned codec's
//! model weights, a codebook, a prior), which a `command` stage declares with `side_files`,
//! and how many arrays share them (`amortize_over`).
//!
//! A learned codec's stream is small because the model carries much of the information: a
//! rate that leaves the model out flatters it. So a point with side files reports two ratios
//! (see `runner::results::Rate`):
//!
//! - `ratio = original_bytes / (compressed_bytes + side_bytes / amortize_over)`: every array
//!   of a data set of `amortize_over` arrays compressed with the same model pays its share of
//!   the model (`bits_per_value` counts the same share);
//! - `ratio_payload = original_bytes / compressed_bytes`: the stream alone, as a codec paper
//!   reports it.
//!
//! `amortize_over` defaults to 1 (the model is charged to this array alone: the honest figure
//! when nothing else is known). The files are read where the scenario names them, relative to
//! the scenario file like its input; photonqa only reads them (their size here, their BLAKE3
//! hash in the provenance of every row, so that a changed model changes what a resumed run or
//! a merge accepts). They must be regular files (a FIFO would block the reader forever).

use std::fs;
use std::path::{Path, PathBuf};

use crate::data::files::refuse_special_file;

/// The side files of a stage and the number of arrays that share them.
#[derive(Debug, Clone, PartialEq)]
pub struct SideFiles {
    /// The files as the stage reads them (resolved against the scenario's folder), with
    /// their sizes in bytes, in the order declared.
    pub files: Vec<(PathBuf, u64)>,
    /// How many arrays share the files, `>= 1`.
    pub amortize_over: u64,
}

impl SideFiles {
    /// The side files `paths` (as the stage was given them) shared by `amortize_over` arrays;
    /// `param` names the parameter in errors: a file that is missing, unreadable or not a
    /// regular file is a one-line error naming it.
    pub fn open(paths: &[String], amortize_over: u64, param: &str) -> Result<SideFiles, String> {
        let files = paths
            .iter()
            .map(|path| {
                let path = PathBuf::from(path);
                let fail = |why: String| format!("{param}: {}: {why}", path.display());
                refuse_special_file(&path).map_err(fail)?;
                // Opened, not only looked up: the decoder must be able to read it.
                let file = fs::File::open(&path).map_err(|e| fail(e.to_string()))?;
                let bytes = file.metadata().map_err(|e| fail(e.to_string()))?.len();
                Ok((path, bytes))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(SideFiles {
            files,
            amortize_over: amortize_over.max(1),
        })
    }

    /// Total size of the files in bytes.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|(_, bytes)| bytes).sum()
    }

    /// The bytes each array pays: [`SideFiles::bytes`] / `amortize_over`.
    pub fn share(&self) -> f64 {
        self.bytes() as f64 / self.amortize_over as f64
    }
}

/// The BLAKE3 hash (hex) of the file at `path`, read in pieces; errors name the file.
pub fn file_hash(path: &Path) -> Result<String, String> {
    refuse_special_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    let file = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    hasher
        .update_reader(file)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(hasher.finalize().to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_shares_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.bin"), dir.path().join("b.bin"));
        fs::write(&a, [0u8; 1000]).unwrap();
        fs::write(&b, [1u8; 24]).unwrap();
        let paths = [a.display().to_string(), b.display().to_string()];
        let side = SideFiles::open(&paths, 8, "side_files").unwrap();
        assert_eq!(side.bytes(), 1024);
        assert_eq!(side.share(), 128.0);
        assert_eq!(side.files[1], (b.clone(), 24));

        let missing = dir.path().join("model.onnx").display().to_string();
        let e = SideFiles::open(std::slice::from_ref(&missing), 1, "side_files").unwrap_err();
        assert!(
            e.starts_with(&format!("side_files: {missing}: No such file")),
            "{e}"
        );
        let folder = dir.path().display().to_string();
        let e = SideFiles::open(&[folder], 1, "side_files").unwrap_err();
        assert!(e.contains("is a folder, not a regular file"), "{e}");
        assert_eq!(
            file_hash(&b).unwrap(),
            blake3::hash(&[1u8; 24]).to_hex().to_string()
        );
    }
}
