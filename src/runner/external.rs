//! `command` analyses: facility-specific science checks as user programs. The original is
//! written once as a `.npy` file; per working point the decoded chunks are written into a
//! second `.npy` as they stream (each at its rows, so memory stays at a few chunks), then every
//! command runs with `{original}` and `{decoded}` replaced by the two paths and prints one JSON
//! object, which becomes the analysis's results. Each runs through `sh -c` (see
//! [`crate::data::shell`]), the placeholders replaced by single-quoted paths, and only with
//! the user's consent (`--allow-commands`). A failing, hanging or malformed program is an error
//! of that working point.

use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::ProgressBar;
use rayon::prelude::*;
use serde_json::{Map, Value};

use super::passes::Passes;
use crate::data::VolumeSource;
use crate::data::npy::NpyWriter;
use crate::data::shell::{self, quoted};
use crate::scenario::AnalysisSpec;

/// The `command` analyses of a run, with the original written where they read it.
pub struct Commands {
    list: Vec<Command>,
    dir: tempfile::TempDir,
    original: PathBuf,
}

struct Command {
    label: String,
    run: String,
    timeout: Duration,
}

impl Commands {
    /// The `command` analyses of `specs`, or `None` when there are none; writes the original
    /// (one pass over the input).
    pub fn prepare(
        specs: &[AnalysisSpec],
        passes: &Passes,
        progress: &ProgressBar,
    ) -> Result<Option<Commands>, String> {
        let list: Vec<Command> = specs
            .iter()
            .filter(|s| s.config.stage == "command")
            .map(|s| Command {
                label: s.label.clone(),
                run: s.config.str("run").to_string(),
                timeout: Duration::from_secs_f64(s.config.float("timeout")),
            })
            .collect();
        if list.is_empty() {
            return Ok(None);
        }
        let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
        let original = dir.path().join("original.npy");
        let source = passes.source;
        let writer = NpyWriter::create(&original, source.shape(), source.dtype())
            .map_err(|e| e.to_string())?;
        progress.inc_length(passes.chunks.len() as u64);
        passes.pool.install(|| {
            passes.chunks.par_iter().try_for_each(|rows| {
                let chunk = source.read_slab(rows.clone()).map_err(|e| e.to_string())?;
                progress.inc(1);
                writer
                    .write_rows(rows.start, &chunk)
                    .map_err(|e| e.to_string())
            })
        })?;
        writer.finish().map_err(|e| e.to_string())?;
        Ok(Some(Commands {
            list,
            dir,
            original,
        }))
    }

    /// Runs every command on the decoded data of point `point` of `source`'s shape, which
    /// `fill` writes into the `.npy` file it is given.
    pub fn measure(
        &self,
        point: &str,
        source: &dyn VolumeSource,
        fill: impl FnOnce(&NpyWriter) -> Result<(), String>,
    ) -> Result<Map<String, Value>, String> {
        let decoded = self.dir.path().join(format!("{point}.npy"));
        let writer = NpyWriter::create(&decoded, source.shape(), source.dtype())
            .map_err(|e| e.to_string())?;
        fill(&writer)?;
        writer.finish().map_err(|e| e.to_string())?;
        let results = self
            .list
            .iter()
            .map(|c| Ok((c.label.clone(), self.run(c, &decoded, point)?)))
            .collect();
        let _ = std::fs::remove_file(&decoded);
        results
    }

    fn run(&self, command: &Command, decoded: &Path, point: &str) -> Result<Value, String> {
        let fail = |m: String| format!("analysis {}: {m}", command.label);
        let scratch = tempfile::tempdir_in(self.dir.path()).map_err(|e| fail(e.to_string()))?;
        let stdout = scratch.path().join(format!("{point}.json"));
        let line = command
            .run
            .replace("{original}", &quoted(&self.original))
            .replace("{decoded}", &quoted(decoded));
        shell::run(
            &line,
            &command.run,
            command.timeout,
            Some(&stdout),
            scratch.path(),
        )
        .map_err(fail)?;
        let text = std::fs::read_to_string(&stdout).map_err(|e| fail(e.to_string()))?;
        match serde_json::from_str::<Value>(&text) {
            Ok(value @ Value::Object(_)) => Ok(value),
            Ok(_) | Err(_) => Err(fail(format!(
                "`{}` printed no JSON object: {}",
                command.run,
                text.lines().next().unwrap_or("(nothing)")
            ))),
        }
    }
}
