//! `photonqa init`: a commented, runnable starting scenario for the user's own data.

use std::path::{Component, Path, PathBuf};

use super::{begin_output, commit_output};
use crate::data::SourceSpec;
use crate::data::inspect::summarize;
use crate::data::source::normalize;
use crate::runner;
use crate::scenario::Scenario;
use crate::scenario::template::{InputFacts, Technique, scenario_toml};

/// Writes the starting scenario for `input` (as the user names it, relative to the working
/// directory) to `out`, checked to load and build every working point before it is written;
/// returns a line saying what was written.
pub(super) fn init(
    input: &str,
    out: &Path,
    technique: Option<&str>,
    force: bool,
) -> Result<String, String> {
    let source = SourceSpec::parse_input(input, Path::new(""), None)
        .map_err(|e| format!("{input}: {e}"))?
        .open()
        .map_err(|e| e.to_string())?;
    let summary = summarize(source.as_ref()).map_err(|e| e.to_string())?;
    let (min, max) = match (summary.non_finite, summary.range) {
        (0, Some(range)) => range,
        (bad, _) => {
            return Err(format!(
                "{}: {bad} NaN or infinite values; photonqa needs finite data",
                source.label()
            ));
        }
    };
    let facts = InputFacts {
        source: relative_source(input, out)?,
        shape: source.shape().to_vec(),
        dtype: source.dtype(),
        min,
        max,
        counts_like: summary.counts_like,
    };
    let technique = match technique {
        Some(name) => Technique::parse(name)?,
        None => Technique::guess(&facts),
    };
    let name = out
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("scenario");
    let text = scenario_toml(name, &facts, technique);
    // What init writes must run: a scenario it cannot load or build is init's bug, named as
    // such rather than left for `run` to find.
    let scenario = Scenario::parse(&text, out)
        .map_err(|e| format!("init wrote a scenario that does not load (a bug): {e}"))?;
    let points = runner::build_chains(&scenario, source.as_ref())
        .map_err(|e| format!("init wrote a scenario that does not build (a bug): {e}"))?
        .len();
    let output = begin_output(out, force)?;
    std::fs::write(output.path(), text)
        .map_err(|e| format!("{}: cannot write: {e}", out.display()))?;
    commit_output(output)?;
    Ok(format!(
        "{}: {} scenario, {points} working points on {} ({} {:?}{}); run it with: photonqa run {}",
        out.display(),
        technique.name(),
        source.label(),
        source.dtype().name(),
        source.shape(),
        if facts.counts_like { ", counts" } else { "" },
        out.display()
    ))
}

/// `input` (a path relative to the working directory, with an optional `::/dataset`) as the
/// scenario at `out` names it: relative to the scenario's folder.
fn relative_source(input: &str, out: &Path) -> Result<String, String> {
    let (file, dataset) = match input.split_once("::") {
        Some((file, dataset)) => (file, Some(dataset)),
        None => (input, None),
    };
    let absolute = |p: &Path| std::path::absolute(p).map_err(|e| format!("{}: {e}", p.display()));
    let file = normalize(&absolute(Path::new(file))?);
    let folder = normalize(&absolute(out)?)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    // A path that would climb to the root is clearer as it is.
    let relative = if file.components().nth(1) == folder.components().nth(1) {
        relative_path(&file, &folder)
    } else {
        file.clone()
    };
    let text = relative.to_str().ok_or_else(|| {
        format!(
            "{}: the path is not UTF-8, which a scenario cannot hold",
            file.display()
        )
    })?;
    Ok(match dataset {
        Some(dataset) => format!("{text}::{dataset}"),
        None => text.to_string(),
    })
}

/// `path` relative to the folder `base` (both absolute and lexically clean).
fn relative_path(path: &Path, base: &Path) -> PathBuf {
    let (path, base): (Vec<_>, Vec<_>) = (path.components().collect(), base.components().collect());
    let shared = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut relative: PathBuf =
        std::iter::repeat_n(Component::ParentDir, base.len() - shared).collect();
    relative.extend(&path[shared..]);
    relative
}
