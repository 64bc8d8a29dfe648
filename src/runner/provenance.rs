//! What made a result: photonqa and codec versions, the scenario and the input.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::results::PointResult;
use crate::data::{VolumeSource, hdf5plugins};
use crate::pipeline::side::file_hash;
use crate::scenario::Scenario;

/// Provenance recorded in every result row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// photonqa version.
    pub photonqa_version: String,
    /// Versions of the codec and I/O crates (from Cargo.lock) and of the C libraries; with
    /// `artifact = "hdf5"`, the HDF5 filter plugins and the folder photonqa found them in.
    pub codecs: BTreeMap<String, String>,
    /// Scenario name.
    pub scenario: String,
    /// BLAKE3 of the scenario file.
    pub scenario_hash: String,
    /// Input label (file and dataset).
    pub input: String,
    /// BLAKE3 over dtype, shape and the per-row hashes of the data (see [`super::passes`]).
    pub input_hash: String,
    /// Input shape.
    pub input_shape: Vec<usize>,
    /// Input dtype.
    pub input_dtype: crate::data::DType,
    /// Rows along axis 0 per compressed chunk.
    pub chunk_slices: usize,
    /// BLAKE3 of every side file the scenario's stages declare (a learned codec's model, see
    /// [`crate::pipeline::side`]), by path as the scenario writes it; empty, and absent from
    /// the JSON, without side files.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub side_files: BTreeMap<String, String>,
}

impl Provenance {
    /// The provenance of rows that `scenario` measures now on `source`, whose content hash is
    /// `input_hash`, cut in chunks of `chunk_slices` rows; reads the side files for their
    /// hashes (an error names the file that cannot be read).
    pub fn new(
        scenario: &Scenario,
        source: &dyn VolumeSource,
        input_hash: String,
        chunk_slices: usize,
    ) -> Result<Provenance, String> {
        let mut codecs = codec_versions();
        if scenario.hdf5_artifact {
            codecs.extend(hdf5_plugins());
        }
        let side_files = scenario
            .side_files()
            .into_iter()
            .map(|(written, path)| {
                let hash = file_hash(&path)
                    .map_err(|e| format!("{}: side_files: {e}", scenario.path.display()))?;
                Ok((written, hash))
            })
            .collect::<Result<_, String>>()?;
        Ok(Provenance {
            photonqa_version: env!("CARGO_PKG_VERSION").into(),
            codecs,
            scenario: scenario.name.clone(),
            scenario_hash: scenario.hash.clone(),
            input: source.label().into(),
            input_hash,
            input_shape: source.shape().to_vec(),
            input_dtype: source.dtype(),
            chunk_slices,
            side_files,
        })
    }

    /// Refuses `row` unless it was made from this scenario file, input data, chunking and
    /// side files: rows of a resumed run, and the units a merge collects, must all be.
    pub fn check(&self, row: &PointResult) -> Result<(), String> {
        let theirs = &row.provenance;
        if theirs.scenario_hash != self.scenario_hash
            || theirs.input_hash != self.input_hash
            || theirs.chunk_slices != self.chunk_slices
        {
            return Err(format!(
                "row {} was made from another scenario, input or chunking; use a fresh --out",
                row.point_id
            ));
        }
        if theirs.side_files != self.side_files {
            return Err(format!(
                "row {} was made with other side files ({}); use a fresh --out",
                row.point_id,
                changed_side_files(&theirs.side_files, &self.side_files).join(", ")
            ));
        }
        Ok(())
    }
}

/// The side files whose hash differs between `old` and `new` (by path as written): `PATH`
/// when both have it, `PATH (added)` or `PATH (removed)`.
pub fn changed_side_files(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut paths: Vec<&String> = old.keys().chain(new.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|path| match (old.get(path), new.get(path)) {
            (Some(a), Some(b)) if a == b => None,
            (Some(_), Some(_)) => Some(path.clone()),
            (None, _) => Some(format!("{path} (added)")),
            (_, None) => Some(format!("{path} (removed)")),
        })
        .collect()
}

/// The HDF5 filter plugins an `artifact = "hdf5"` scenario may load: every file in the
/// plugin folders ([`hdf5plugins::plugin_folders`]) as `hdf5-plugin:NAME` with the first 16 hex
/// digits of its BLAKE3 hash (plugins carry no version HDF5 could report; the hash names the
/// build); and when photonqa found the folder itself (`HDF5_PLUGIN_PATH` unset), as
/// `hdf5-plugin-folder`: `FOLDER (hdf5plugin of PYTHON)`.
fn hdf5_plugins() -> BTreeMap<String, String> {
    let mut plugins: BTreeMap<String, String> = hdf5plugins::plugin_folders()
        .into_iter()
        .filter_map(|folder| std::fs::read_dir(folder).ok())
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let bytes = std::fs::read(entry.path()).ok()?;
            let hash = blake3::hash(&bytes).to_hex();
            Some((
                format!("hdf5-plugin:{}", entry.file_name().to_string_lossy()),
                hash[..16].to_string(),
            ))
        })
        .collect();
    if let Some(found) = hdf5plugins::found_plugin_folder() {
        plugins.insert(
            "hdf5-plugin-folder".into(),
            format!(
                "{} (hdf5plugin of {})",
                found.folder.display(),
                found.python.display()
            ),
        );
    }
    plugins
}

/// Versions of the crates and libraries that encode and decode.
pub fn codec_versions() -> BTreeMap<String, String> {
    let mut versions: BTreeMap<String, String> = env!("PHOTONQA_CRATE_VERSIONS")
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    versions.insert(
        "libzstd".into(),
        zstd::zstd_safe::version_string().to_string(),
    );
    let (major, minor, patch) = hdf5::library_version();
    versions.insert("libhdf5".into(), format!("{major}.{minor}.{patch}"));
    // SZ3's version is the build metadata of `sz3-sys` (e.g. `0.4.1+SZ3-3.3.2`).
    if let Some((_, sz3)) = versions.get("sz3-sys").and_then(|v| v.split_once("+SZ3-")) {
        versions.insert("libsz3".into(), sz3.to_string());
    }
    versions.insert(
        "libzfp".into(),
        format!(
            "{}.{}.{}",
            zfp_sys::ZFP_VERSION_MAJOR,
            zfp_sys::ZFP_VERSION_MINOR,
            zfp_sys::ZFP_VERSION_PATCH
        ),
    );
    versions.insert("libblosc".into(), blosc_rs::BLOSC_C_VERSION.into());
    // SAFETY: opj_version returns a pointer to a static NUL-terminated string.
    let openjpeg = unsafe { std::ffi::CStr::from_ptr(openjpeg_sys::opj_version()) };
    versions.insert("libopenjp2".into(), openjpeg.to_string_lossy().into_owned());
    versions
}
