//! The CI gate: compare a fresh run of a scenario with a committed baseline.
//!
//! `photonqa bless SCENARIO --baseline FILE` records every gated value of every working point
//! in a [`Baseline`] (JSON, [`baseline`]); `photonqa check SCENARIO --baseline FILE` reruns the
//! scenario and [`check`]s each value against the baseline under per-column tolerances
//! (`[gate.tolerances]` in the scenario, [`crate::scenario::tolerances`]; compared by
//! [`tolerance`]). The [`Report`] lists every comparison;
//! it passes when nothing drifted, prints one line per drift, and becomes JUnit XML
//! ([`junit`]) so that CI systems show each metric of each point as a test case.
//!
//! Gated are the rate's byte counts, ratio and bits per value and every scalar metric column;
//! timing (`encode_mb_s`, `decode_mb_s`) never is, since it depends on the machine and its load.
//!
//! The CLI's part (exit codes as in the house style: 0 no drift, 1 drift, 2 error):
//!
//! ```no_run
//! # fn demo(rows: &[photonqa::runner::results::PointResult], columns: &[String],
//! #         scenario_toml: &toml::Value) -> Result<(), photonqa::gate::GateError> {
//! use photonqa::gate::{Baseline, check, write_junit};
//! use photonqa::scenario::tolerances::{Tolerances, gated_columns};
//! use std::path::Path;
//! // bless: rows and columns of `workflow::run` (`RunSummary::rows`, `RunSummary::columns`)
//! Baseline::from_rows("seed", "b3hash", rows, columns)?.write(Path::new("seed.baseline.json"))?;
//! // check
//! let tolerances = match scenario_toml.get("gate").and_then(|g| g.get("tolerances")) {
//!     Some(table) => Tolerances::from_toml(table)?,
//!     None => Tolerances::default(),
//! };
//! tolerances.check_columns(&gated_columns(columns))?;
//! let baseline = Baseline::read(Path::new("seed.baseline.json"))?;
//! let report = check(&baseline, rows, columns, &tolerances);
//! write_junit(&report, Path::new("gate.xml"))?;
//! println!("{report}");
//! std::process::exit(if report.passed() { 0 } else { 1 });
//! # }
//! ```

pub mod baseline;
pub mod compare;
pub mod junit;
pub mod tolerance;

#[cfg(test)]
mod fixtures;

use std::path::Path;

use crate::scenario::tolerances::ToleranceError;

pub use baseline::{Baseline, BaselinePoint, FORMAT_VERSION};
pub use compare::{Case, Drift, PointReport, Report, Rule, check};
pub use junit::{junit_xml, write_junit};

/// An error of the gate, shown to the user as one line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GateError {
    /// A baseline or JUnit file could not be read, parsed or written.
    #[error("{file}{}: {message}", .position.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    File {
        /// The file.
        file: String,
        /// Line and column (1-based) in the file, when known.
        position: Option<(usize, usize)>,
        /// What is wrong.
        message: String,
    },
    /// An entry of `[gate.tolerances]` is invalid.
    #[error(transparent)]
    Tolerance(#[from] ToleranceError),
    /// The run's rows cannot make a baseline.
    #[error("{0}")]
    Rows(String),
}

impl GateError {
    /// An error about `file` without a position.
    fn file(file: &Path, message: impl std::fmt::Display) -> Self {
        GateError::File {
            file: file.display().to_string(),
            position: None,
            message: one_line(&message.to_string()),
        }
    }
}

/// `text` on one line: the user sees one line per error.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// [`crate::data::write_atomically`], its error naming `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), GateError> {
    crate::data::write_atomically(path, bytes).map_err(|e| GateError::file(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::tolerances::Tolerances;
    use std::fs;

    #[test]
    fn errors_are_one_line() {
        let e = GateError::File {
            file: "b.json".into(),
            position: Some((3, 7)),
            message: "expected value".into(),
        };
        assert_eq!(e.to_string(), "b.json:3:7: expected value");
        assert_eq!(
            GateError::file(Path::new("x.json"), "a\nb").to_string(),
            "x.json: a b"
        );
    }

    /// A scenario on a raw float32 volume in `dir`: quantize (bits 4, 8) then `codec`.
    fn scenario(dir: &Path, codec: &str) -> crate::scenario::Scenario {
        let text = format!(
            "[scenario]\nname = \"gate-e2e\"\nchunk_slices = 4\n\
             [input]\nsource = \"v.raw\"\nshape = [12, 16, 16]\ndtype = \"float32\"\n\
             [[pipeline]]\nstage = \"quantize\"\nrange = [0.0, 1.0]\nbits = {{ sweep = [4, 8] }}\n\
             [[pipeline]]\n{codec}\n\
             [metrics]\ndistortion = [\"mse\", \"psnr\", \"max_abs_error\"]\n\
             [[analysis]]\nkind = \"porosity\"\nmethod = \"value\"\nvalue = 0.5\n"
        );
        let path = dir.join("s.toml");
        fs::write(&path, &text).unwrap();
        crate::scenario::Scenario::load(&path).unwrap()
    }

    fn run(scenario: &crate::scenario::Scenario, out: &Path) -> crate::runner::RunRows {
        let options = crate::runner::RunOptions {
            threads: Some(2),
            ..crate::runner::RunOptions::new(out)
        };
        crate::runner::measure(scenario, &options, None).unwrap()
    }

    /// Bless a real run, check an unchanged rerun (passes) and a rerun with another codec level
    /// (fails, with a JUnit failure), through the runner's own rows and columns.
    #[test]
    fn end_to_end_through_the_runner() {
        let dir = tempfile::tempdir().unwrap();
        let values: Vec<u8> = (0..12 * 16 * 16)
            .flat_map(|i| {
                let (z, y, x) = (i / 256, (i / 16) % 16, i % 16);
                let v = 0.5 + 0.45 * ((x as f32) * 0.7 + (y as f32) * 0.3 + (z as f32) * 0.5).sin();
                v.to_le_bytes()
            })
            .collect();
        fs::write(dir.path().join("v.raw"), values).unwrap();
        let blessed = scenario(dir.path(), "stage = \"deflate\"\nlevel = 6");
        let first = run(&blessed, &dir.path().join("run1"));
        assert!(
            first
                .columns
                .contains(&"porosity.pore_count_change".to_string())
        );
        let path = dir.path().join("gate/baseline.json");
        Baseline::from_rows(&blessed.name, &blessed.hash, &first.rows, &first.columns)
            .unwrap()
            .write(&path)
            .unwrap();
        let baseline = Baseline::read(&path).unwrap();
        assert_eq!(baseline.points.len(), 2);

        let again = run(&blessed, &dir.path().join("run2"));
        let report = check(
            &baseline,
            &again.rows,
            &again.columns,
            &Tolerances::default(),
        );
        assert!(report.passed(), "{report}");
        assert!(report.notes.is_empty(), "{report}");

        let changed = scenario(dir.path(), "stage = \"deflate\"\nlevel = 1");
        let other = run(&changed, &dir.path().join("run3"));
        let report = check(
            &baseline,
            &other.rows,
            &other.columns,
            &Tolerances::default(),
        );
        assert!(!report.passed());
        let text = report.to_string();
        assert!(text.contains("note: the scenario file changed"), "{text}");
        assert!(
            text.contains("the pipeline changed (same swept parameters)"),
            "{text}"
        );
        assert!(
            text.contains("(quantize.bits=8): compressed_bytes "),
            "{text}"
        );
        let junit = dir.path().join("gate.xml");
        write_junit(&report, &junit).unwrap();
        let xml = fs::read_to_string(&junit).unwrap();
        let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        assert!(parsed.failures >= 2, "{xml}");
        assert!(
            xml.contains(r#"<testcase name="compressed_bytes""#),
            "{xml}"
        );
    }

    #[test]
    fn atomic_write_into_a_file_fails_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("blocker");
        fs::write(&blocker, b"").unwrap();
        let path = blocker.join("out.json");
        let err = write_atomically(&path, b"x").unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
    }
}
