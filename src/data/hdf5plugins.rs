//! Where the HDF5 library finds third-party filter plugins (bitshuffle, SZ3, ZFP, Blosc...).
//!
//! HDF5 loads them from the folders of `HDF5_PLUGIN_PATH`. When that variable is unset and a
//! filter is missing, photonqa asks the Python package that h5py users install the plugins
//! with, hdf5plugin, for its folder ([`find_plugin_folder`]) and puts it first in the library's
//! search path: a user with `pip install hdf5plugin` done needs to set nothing. The folder found
//! is recorded in the results' provenance ([`found_plugin_folder`]).
//!
//! hdf5plugin's plugins call HDF5 through wrappers of their own that reach a library only once
//! their `init_filter(libname)` has named it, or when a libhdf5 in the process's global symbol
//! scope stands in for them (the CLI's, linked into the executable). Inside Python, which
//! loads photonqa's extension and its libhdf5 locally, neither holds, and the plugins failed
//! every chunk ("unknown library error"); calling `init_filter` on the files hdf5plugin itself
//! loaded would rebind h5py's instances to photonqa's library. So HDF5 is given private copies
//! of those plugins, bound to photonqa's library and to their own code as in h5py
//! (`bind_plugin_copies`), in every process.

use std::collections::BTreeSet;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

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

/// The process's folder of plugin copies bound to its HDF5 library ([`bind_plugin_copies`]),
/// made at most once; the error that kept it from being made.
static PROCESS_FOLDER: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Why plugin copies could not be made ([`binding_failure`]): the first such error.
static BINDING_FAILURE: OnceLock<String> = OnceLock::new();

/// The filters (with their folder) [`prepare_plugin_search`] has prepared in this process.
static PREPARED: Mutex<BTreeSet<(PathBuf, u32)>> = Mutex::new(BTreeSet::new());

/// With `HDF5_PLUGIN_PATH` unset, hdf5plugin's plugin folder, put first in the HDF5 library's
/// plugin search path (call [`prepare_plugin_search`] next, to put bound copies of the plugins
/// needed before it); `None` when the variable is set (the user chose the folders) or no
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

/// Whether filter `id` is a third-party one (256 and above: HDF5 loads it from a plugin), not
/// one built into the library.
pub fn is_third_party(id: u32) -> bool {
    id >= hdf5_sys::h5z::H5Z_FILTER_RESERVED as u32
}

/// Before HDF5 first looks for the third-party filters among `filter_ids` (ids from 256 on):
/// binds copies of their plugins in the folders of [`plugin_folders`] to photonqa's HDF5
/// library (see `bind_plugin_copies`), once per filter and folder in a process.
pub fn prepare_plugin_search(filter_ids: impl IntoIterator<Item = u32>) {
    let wanted: BTreeSet<u32> = filter_ids
        .into_iter()
        .filter(|&id| is_third_party(id))
        .collect();
    if wanted.is_empty() {
        return;
    }
    let mut prepared = PREPARED.lock().unwrap_or_else(|e| e.into_inner());
    for folder in plugin_folders() {
        let new: BTreeSet<u32> = wanted
            .iter()
            .copied()
            .filter(|&id| prepared.insert((folder.clone(), id)))
            .collect();
        if !new.is_empty() {
            bind_plugin_copies(&folder, &new);
        }
    }
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

/// Copies the plugins of `folder` for the filters `ids` that have hdf5plugin's `init_filter`
/// into a private folder, loads each copy with deep binding and binds it to photonqa's libhdf5
/// (`init_filter(path of that library)`), and puts the folder first in HDF5's search path.
/// HDF5's own `dlopen` of a copy then returns the bound instance, kept loaded for the life of
/// the process: it runs the plugin's own code only, as hdf5plugin's instance in h5py does, so
/// its chunks are the bytes h5py writes. Copies, not the files themselves: hdf5plugin (h5py's
/// filters) may have loaded and bound those to h5py's library in the same process, and the
/// dynamic loader gives one instance per file. A plugin's filter is read from the file itself
/// (its `H5PLget_plugin_info`, as HDF5's own search does), so only the plugins needed are
/// copied (hdf5plugin's folder holds about 190 MB of them). The copy of a plugin that cannot
/// be loaded or bound (no `init_filter`) is removed: that plugin is left to HDF5's search of
/// `folder` (it runs, or fails, as it would without). The private folder, in the system's
/// temporary folder, is removed at exit. When the copies cannot be made,
/// [`binding_failure`] says why.
fn bind_plugin_copies(folder: &Path, ids: &BTreeSet<u32>) {
    if let Err(cause) = try_bind_plugin_copies(folder, ids) {
        let _ = BINDING_FAILURE.set(cause);
    }
}

/// [`bind_plugin_copies`]; an error when the copies could not be made (a plugin that cannot
/// be loaded or bound is not one: it is left to HDF5's search).
fn try_bind_plugin_copies(folder: &Path, ids: &BTreeSet<u32>) -> Result<(), String> {
    let Some(library) = this_hdf5_library() else {
        return Ok(());
    };
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Ok(());
    };
    // HDF5 loads the files whose name starts with `lib`.
    let mut plugins: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| e.file_name().as_bytes().starts_with(b"lib"))
        .map(|e| e.path())
        .filter(|path| plugin_filter(path).is_some_and(|id| ids.contains(&id)))
        .collect();
    if plugins.is_empty() {
        return Ok(());
    }
    plugins.sort();
    let copies = private_copy_folder()?;
    let mut bound = 0;
    for plugin in plugins {
        let copy = copies.join(plugin.file_name().expect("a file's name"));
        if let Err(e) = std::fs::copy(&plugin, &copy) {
            let _ = std::fs::remove_file(&copy);
            return Err(format!(
                "cannot copy the plugin {} to {}: {e}",
                plugin.display(),
                copies.display()
            ));
        }
        if load_bound(&copy, &library) {
            bound += 1;
        } else {
            let _ = std::fs::remove_file(&copy);
        }
    }
    if bound > 0 {
        prepend_to_search_path(&copies);
    }
    Ok(())
}

/// The filter id the HDF5 plugin `path` provides (its `H5PLget_plugin_info`), or `None` when
/// it is not a loadable filter plugin. Loads the file as HDF5's plugin search does, and closes
/// it again (an instance already loaded, e.g. by h5py, stays as it was).
fn plugin_filter(path: &Path) -> Option<u32> {
    let name = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: dlopen of a NUL-terminated path of a file HDF5 would load itself while looking
    // for a filter (its initialisers run as they would then).
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return None;
    }
    // SAFETY: symbol lookups in the handle just opened; `H5PLget_plugin_type` and
    // `H5PLget_plugin_info` are the two functions of HDF5's plugin interface, without
    // arguments, returning the plugin's type and a pointer to its static `H5Z_class2_t`.
    let id = unsafe {
        let kind = libc::dlsym(handle, c"H5PLget_plugin_type".as_ptr());
        let info = libc::dlsym(handle, c"H5PLget_plugin_info".as_ptr());
        if kind.is_null() || info.is_null() {
            None
        } else {
            let kind: extern "C" fn() -> c_int = std::mem::transmute(kind);
            let info: extern "C" fn() -> *const hdf5_sys::h5z::H5Z_class2_t =
                std::mem::transmute(info);
            let class = info();
            (kind() == hdf5_sys::h5pl::H5PL_type_t::H5PL_TYPE_FILTER as c_int && !class.is_null())
                .then(|| (*class).id)
                .and_then(|id| u32::try_from(id).ok())
        }
    };
    // SAFETY: closes the handle opened above; nothing of the plugin is in use.
    unsafe { libc::dlclose(handle) };
    id
}

/// Why photonqa could not give HDF5 its bound copies of the plugins (see
/// `bind_plugin_copies`), if it tried and could not: the system's temporary folder (`TMPDIR`)
/// is missing, not writable or full. The plugins HDF5 then loads unbound may fail every chunk,
/// store other bytes than h5py would, or end the process (hdf5plugin's SZ3 calls `exit(0)` on
/// some errors), so a run that needs a third-party filter stops instead
/// (`hdf5io::check_filters_available`).
pub fn binding_failure() -> Option<&'static str> {
    BINDING_FAILURE.get().map(String::as_str)
}

/// The path of the libhdf5 photonqa calls, as the loader names it.
fn this_hdf5_library() -> Option<CString> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: dladdr fills `info` for an address in a loaded object, here a function of
    // libhdf5; `dli_fname` then points to the loader's NUL-terminated name of that object,
    // valid while it stays loaded (for the process: photonqa links it).
    unsafe {
        let function = hdf5_sys::h5::H5open as *const c_void;
        if libc::dladdr(function, info.as_mut_ptr()) == 0 {
            return None;
        }
        let name = info.assume_init_ref().dli_fname;
        (!name.is_null()).then(|| CStr::from_ptr(name).to_owned())
    }
}

/// A new folder for plugin copies, one per call: in one folder per process, in the system's
/// temporary folder, removed at exit (two plugin folders may hold files of the same name).
fn private_copy_folder() -> Result<PathBuf, String> {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let process_folder = PROCESS_FOLDER
        .get_or_init(|| {
            let temporary = std::env::temp_dir();
            let refuse = |e: std::io::Error| {
                format!(
                    "cannot make a folder for copies of the HDF5 plugins in {}: {e}",
                    temporary.display()
                )
            };
            remove_abandoned_folders(&temporary);
            let folder = tempfile::Builder::new()
                .prefix(FOLDER_PREFIX)
                .tempdir_in(&temporary)
                .map_err(refuse)?
                .keep();
            // Locked until the process ends, however it ends: the folder is in use. Locked
            // under another name first, so that the file is never seen unlocked.
            let locking = folder.join("locking");
            let in_use = File::create(&locking).map_err(refuse)?;
            if in_use.lock().is_ok() {
                std::fs::rename(&locking, folder.join(IN_USE)).map_err(refuse)?;
                std::mem::forget(in_use);
            }
            // SAFETY: registers a function without arguments that only reads a set OnceLock.
            unsafe { libc::atexit(remove_process_folder) };
            Ok(folder)
        })
        .as_ref()
        .map_err(Clone::clone)?;
    let count = COUNT.fetch_add(1, Ordering::Relaxed) + 1;
    let folder = process_folder.join(count.to_string());
    std::fs::create_dir(&folder)
        .map(|()| folder.clone())
        .map_err(|e| format!("cannot make the folder {}: {e}", folder.display()))
}

/// Start of the names of the process folders of plugin copies in the temporary folder.
const FOLDER_PREFIX: &str = "photonqa-hdf5-plugins-";

/// The file of a process folder that its process keeps locked while it lives.
const IN_USE: &str = "in-use";

/// Removes the folders of plugin copies (about 100 MB for SZ3's) that processes which ended
/// without running their exit handlers (killed, e.g. at a batch system's time limit) left in
/// `temporary`: those whose [`IN_USE`] file is not locked any more. The operating system
/// releases a lock when its holder ends, whatever its process id namespace, so a folder still
/// in use (its lock held) or still being made (no such file yet) is never touched.
fn remove_abandoned_folders(temporary: &Path) {
    let Ok(entries) = std::fs::read_dir(temporary) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .as_bytes()
            .starts_with(FOLDER_PREFIX.as_bytes())
        {
            continue;
        }
        let folder = entry.path();
        let Ok(in_use) = File::open(folder.join(IN_USE)) else {
            continue;
        };
        if in_use.try_lock().is_ok() {
            let _ = std::fs::remove_dir_all(&folder);
        }
    }
}

/// Loads the plugin `copy` and binds it to `library` with its `init_filter`; whether it did
/// (false: no such function, not loadable, or refused). A bound copy stays loaded.
fn load_bound(copy: &Path, library: &CStr) -> bool {
    let Ok(path) = CString::new(copy.as_os_str().as_bytes()) else {
        return false;
    };
    // Deep binding: the copy calls its own functions (its wrappers of HDF5's, its zstd) before
    // those of the process's global scope, as hdf5plugin's instances do in h5py; without it,
    // a libhdf5 or libzstd linked into the program would stand in for them (the CLI's libzstd
    // made SZ3 chunks a few bytes off those h5py writes).
    let flags = libc::RTLD_LAZY | libc::RTLD_LOCAL | libc::RTLD_DEEPBIND;
    // SAFETY: dlopen of a NUL-terminated path; the file is a copy of a plugin HDF5 would load
    // itself (its initialisers run as they would then).
    let handle = unsafe { libc::dlopen(path.as_ptr(), flags) };
    if handle.is_null() {
        return false;
    }
    // SAFETY: a symbol lookup in the handle just opened.
    let init = unsafe { libc::dlsym(handle, c"init_filter".as_ptr()) };
    let bound = !init.is_null() && {
        // SAFETY: hdf5plugin's `int init_filter(const char *libname)` (src/hdf5_dl.c), which
        // dlopens `libname` and looks up the HDF5 functions the plugin calls; negative on failure.
        let init: extern "C" fn(*const c_char) -> c_int = unsafe { std::mem::transmute(init) };
        init(library.as_ptr()) >= 0
    };
    if !bound {
        // SAFETY: closes the handle opened above; nothing of the plugin is in use.
        unsafe { libc::dlclose(handle) };
    }
    bound
}

/// Removes the process's folder of plugin copies (at exit, when the plugins are not used any
/// more; the loader keeps the mappings of the removed files).
extern "C" fn remove_process_folder() {
    if let Some(Ok(folder)) = PROCESS_FOLDER.get() {
        let _ = std::fs::remove_dir_all(folder);
    }
}
