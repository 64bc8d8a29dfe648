//! NeXus inputs: an HDF5 file (`.nxs`, `.h5`, `.hdf5`, `.hdf`) named without a dataset path
//! means its NeXus default signal.
//!
//! The NeXus rule (NIAC 2014, "Find the plottable data"): the root group's `default`
//! attribute names an NXentry, the entry's `default` attribute an NXdata group, and the NXdata
//! group's `signal` attribute its dataset, e.g. `/entry/data/data`. A level without its
//! attribute falls back to its only child group of the expected `NX_class` (NXentry, then
//! NXdata) when there is exactly one. A file with no default at all (plain HDF5) uses its
//! only dataset of rank 2 or 3; with several, it is an error listing them, so that the user
//! names one (`file.h5::/path`).

use std::path::Path;

use hdf5::types::{FixedAscii, FixedUnicode, VarLenAscii, VarLenUnicode};

use super::DataError;
use super::files::refuse_special_file;

/// Most candidate datasets an error lists.
const LISTED: usize = 5;

/// `file` opened as HDF5; an error naming it when it is missing, not a regular file or not
/// HDF5.
pub(super) fn open_hdf5(file: &Path) -> Result<hdf5::File, DataError> {
    let err = |m: String| DataError::new(&file.display().to_string(), m);
    if !file.exists() {
        return Err(err("no such file".into()));
    }
    refuse_special_file(file).map_err(err)?;
    hdf5::File::open(file).map_err(|e| err(format!("cannot open as HDF5: {e}")))
}

/// The absolute path of the default signal of `file`, or an error naming the file.
pub fn default_signal(file: &Path) -> Result<String, DataError> {
    let label = file.display().to_string();
    let err = |m: String| DataError::new(&label, m);
    let h5 = open_hdf5(file)?;
    if let Some(path) = nexus_signal(&h5).map_err(err)? {
        return Ok(path);
    }
    let candidates: Vec<String> = dataset_paths(&h5)
        .into_iter()
        .filter(|path| h5.dataset(path).is_ok_and(|d| (2..=3).contains(&d.ndim())))
        .collect();
    match candidates.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(err(
            "no NeXus default signal and no dataset of rank 2 or 3 in the file".into(),
        )),
        many => {
            let shown: Vec<&str> = many.iter().take(LISTED).map(String::as_str).collect();
            let more = if many.len() > LISTED { ", …" } else { "" };
            Err(err(format!(
                "no NeXus default signal (no `default` attribute on the root group) and {} \
                 candidate datasets ({}{more}): name one as {label}::/path",
                many.len(),
                shown.join(", ")
            )))
        }
    }
}

/// The default signal by the NeXus attributes: `Ok(None)` when the file has no NXentry to
/// follow (no root `default` and not exactly one NXentry), an error when an attribute names
/// something missing.
fn nexus_signal(h5: &hdf5::File) -> Result<Option<String>, String> {
    let Some(entry) = default_child(h5, "/", "NXentry")? else {
        return Ok(None);
    };
    let entry_group = h5
        .group(&entry)
        .map_err(|_| format!("the NeXus default entry {entry} is not a group"))?;
    let Some(data) = default_child(&entry_group, &entry, "NXdata")? else {
        return Err(format!(
            "the NeXus entry {entry} has no `default` attribute and not exactly one NXdata group"
        ));
    };
    let data_group = h5
        .group(&data)
        .map_err(|_| format!("the NeXus default data {data} is not a group"))?;
    let signal = text_attr(&data_group, "signal")
        .ok_or_else(|| format!("the NeXus data group {data} has no `signal` attribute"))?;
    let path = join(&data, &signal);
    h5.dataset(&path)
        .map_err(|_| format!("the NeXus signal {path} is not a dataset"))?;
    Ok(Some(path))
}

/// The child of `group` (at `path`) named by its `default` attribute, else its only child
/// group of class `class`; `Ok(None)` when there is neither.
fn default_child(group: &hdf5::Group, path: &str, class: &str) -> Result<Option<String>, String> {
    if let Some(name) = text_attr(group, "default") {
        let child = join(path, &name);
        if !group.link_exists(&name) {
            return Err(format!(
                "the `default` attribute of {path} names {child}, which does not exist"
            ));
        }
        return Ok(Some(child));
    }
    let names = group.member_names().map_err(|e| e.to_string())?;
    let of_class: Vec<String> = names
        .into_iter()
        .filter(|name| {
            group
                .group(name)
                .is_ok_and(|g| text_attr(&g, "NX_class").as_deref() == Some(class))
        })
        .collect();
    Ok(match of_class.as_slice() {
        [only] => Some(join(path, only)),
        _ => None,
    })
}

/// `name` under `path`, or `name` itself when absolute.
fn join(path: &str, name: &str) -> String {
    if name.starts_with('/') {
        name.to_string()
    } else {
        format!("{}/{name}", path.trim_end_matches('/'))
    }
}

/// A string attribute as h5py (variable-length UTF-8) or C writers (fixed-length ASCII) store
/// it; `None` when absent or not a string.
fn text_attr(location: &hdf5::Location, name: &str) -> Option<String> {
    let attr = location.attr(name).ok()?;
    if let Ok(v) = attr.read_scalar::<VarLenUnicode>() {
        return Some(v.as_str().to_string());
    }
    if let Ok(v) = attr.read_scalar::<VarLenAscii>() {
        return Some(v.as_str().to_string());
    }
    if let Ok(v) = attr.read_scalar::<FixedAscii<1024>>() {
        return Some(v.as_str().to_string());
    }
    attr.read_scalar::<FixedUnicode<1024>>()
        .ok()
        .map(|v| v.as_str().to_string())
}

/// Deepest group nesting walked: a soft link to an ancestor makes the hierarchy a cycle.
const MAX_DEPTH: usize = 16;

/// Every dataset of `h5`, depth first in name order (groups nested deeper than
/// 16 are not walked).
pub fn dataset_paths(h5: &hdf5::File) -> Vec<String> {
    fn walk(group: &hdf5::Group, path: &str, depth: usize, paths: &mut Vec<String>) {
        if depth > MAX_DEPTH {
            return;
        }
        for name in group.member_names().unwrap_or_default() {
            let child = join(path, &name);
            if group.dataset(&name).is_ok() {
                paths.push(child);
            } else if let Ok(sub) = group.group(&name) {
                walk(&sub, &child, depth + 1, paths);
            }
        }
    }
    let mut paths = Vec::new();
    walk(h5, "/", 0, &mut paths);
    paths
}
