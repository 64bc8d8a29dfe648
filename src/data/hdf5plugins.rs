//! Where the HDF5 library finds third-party filter plugins (bitshuffle, SZ3, ZFP, Blosc...).
//!
//! HDF5 loads them from the folders of `HDF5_PLUGIN_PATH`. When that variable is unset and a
//! filter is missing, photonqa asks the Python package that h5py users install the plugins
//! with, hdf5plugin, for its folder ([`find_plugin_folder`]) and puts it first in the library's
//! search path: a user with `pip install hdf5plugin` done needs to set nothing. The folder found
//! is recorded in the results' provenance ([`found_plugin_folder`]).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The environment variable whose folders the HDF5 library searches for filter plugins.
pub const PLUGIN_PATH_ENV: &str = "HDF5_PLUGIN_PATH";

/// Prints hdf5plugin's plugin folder, then the interpreter that imported it.
const ASK_HDF5PLUGIN: &str =
    "import sys, hdf5plugin; print(hdf5plugin.PLUGIN_PATH); print(sys.executable)";

/// hdf5plugin's plugin folder, found through a Python interpreter and put in HDF5's search
/// path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginFolder {
    /// The folder of hdf5plugin's plugin libraries (`hdf5plugin.PLUGIN_PATH`).
    pub folder: PathBuf,
    /// The interpreter whose hdf5plugin it is (`sys.executable`).
    pub python: PathBuf,
}

/// The search of [`find_plugin_folder`], run at most once per process.
static FOUND: OnceLock<Option<PluginFolder>> = OnceLock::new();

/// With `HDF5_PLUGIN_PATH` unset, hdf5plugin's plugin folder, put first in the HDF5 library's
/// plugin search path; `None` when the variable is set (the user chose the folders) or no
/// interpreter has hdf5plugin.
///
/// The interpreters asked, in order: `$VIRTUAL_ENV/bin/python3` of an active virtual
/// environment, then the `python3` on `PATH`. Call it only when a filter is missing: it runs
/// Python, once per process (later calls return the first answer).
pub fn find_plugin_folder() -> Option<&'static PluginFolder> {
    FOUND
        .get_or_init(|| {
            if std::env::var_os(PLUGIN_PATH_ENV).is_some() {
                return None;
            }
            let found = pythons().iter().find_map(|python| ask(python))?;
            prepend_to_search_path(&found.folder).then_some(found)
        })
        .as_ref()
}

/// The folder [`find_plugin_folder`] found, if it ran and found one (runs nothing).
pub fn found_plugin_folder() -> Option<&'static PluginFolder> {
    FOUND.get().and_then(Option::as_ref)
}

/// The folders HDF5 loads plugins from that photonqa knows of: those of `HDF5_PLUGIN_PATH`,
/// else the one [`find_plugin_folder`] found.
pub fn plugin_folders() -> Vec<PathBuf> {
    match std::env::var_os(PLUGIN_PATH_ENV) {
        Some(path) => std::env::split_paths(&path).collect(),
        None => found_plugin_folder()
            .map(|found| found.folder.clone())
            .into_iter()
            .collect(),
    }
}

/// The interpreters to ask: an active virtual environment's `python3` first (it may not be on
/// `PATH` when the environment was activated for another shell's tools), then `python3`.
fn pythons() -> Vec<PathBuf> {
    let mut pythons: Vec<PathBuf> = std::env::var_os("VIRTUAL_ENV")
        .map(|venv| Path::new(&venv).join("bin/python3"))
        .filter(|python| python.is_file())
        .into_iter()
        .collect();
    pythons.push("python3".into());
    pythons
}

/// hdf5plugin's folder as `python` reports it; `None` when `python` does not run, has no
/// hdf5plugin, or names a folder that does not exist.
fn ask(python: &Path) -> Option<PluginFolder> {
    // Run from `/`: `python3 -c` imports from its working directory first, and photonqa may
    // run in a folder of someone else's files (a scenario's), whose `hdf5plugin.py` must not
    // run.
    let output = Command::new(python)
        .args(["-c", ASK_HDF5PLUGIN])
        .current_dir("/")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let mut lines = text.lines();
    let (folder, executable) = (lines.next()?, lines.next()?);
    let folder = PathBuf::from(folder);
    folder.is_dir().then(|| PluginFolder {
        folder,
        python: executable.into(),
    })
}

/// Puts `folder` first in the HDF5 library's plugin search path; whether it could. First, not
/// last: HDF5 1.10 ends its search at a folder it cannot open, and Debian's default folder
/// (`/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins`) does not exist unless a plugin package made
/// it.
fn prepend_to_search_path(folder: &Path) -> bool {
    let Ok(folder) = CString::new(folder.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: H5PLprepend copies the NUL-terminated string it is given; under the library's
    // lock, as every call into HDF5.
    let status = hdf5::sync::sync(|| unsafe { hdf5_sys::h5pl::H5PLprepend(folder.as_ptr()) });
    status >= 0
}
