//! The command line: parses arguments, calls the library, prints. Errors reach the user as one
//! line `photonqa: <context>: <cause>`; exit codes are 0 (ok) and 2 (error).

mod generate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;

use crate::data::SourceSpec;
use crate::metrics::registry::{self as metric_registry, column_value};
use crate::metrics::ssim::SsimWindow;
use crate::pipeline::registry;
use crate::report;
use crate::runner::results::{metric_json, metric_value};
use crate::runner::{self, DEFAULT_MEMORY_BUDGET, RunOptions};
use crate::scenario::Scenario;

/// Prints a line to stdout; a closed pipe (`photonqa stages | head`) ends the output quietly
/// instead of panicking as `println!` does.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// How hard can photon-science data be compressed before the science changes?
#[derive(Parser)]
#[command(name = "photonqa", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every working point of a scenario; writes OUT/results.jsonl and OUT/results.csv.
    Run {
        /// Scenario file (TOML).
        scenario: PathBuf,
        /// Output directory [default: runs/<scenario name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Continue an interrupted run in OUT: measured points are kept, none is repeated.
        #[arg(long)]
        resume: bool,
        /// Memory for the chunks in flight, e.g. 512MiB, 2GiB.
        #[arg(long, value_parser = parse_size, default_value = "1GiB")]
        memory_budget: u64,
        /// Worker threads [default: all cores], lowered to fit the memory budget.
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Check a scenario and its input without running it.
    Validate {
        /// Scenario file (TOML).
        scenario: PathBuf,
    },
    /// Generate a reference phantom (deterministic, seeded).
    Gen(generate::GenArgs),
    /// Distortion metrics between two arrays (.npy or file.h5::/dataset).
    Metrics {
        /// The original.
        original: String,
        /// The decoded array.
        decoded: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Data range for PSNR, NRMSE and SSIM [default: max - min of the original].
        #[arg(long, allow_negative_numbers = true)]
        data_range: Option<f64>,
        /// Floor of the relative error's denominator [default: 1e-3 of the data range].
        #[arg(long, allow_negative_numbers = true)]
        max_rel_floor: Option<f64>,
        /// SSIM window: gaussian (Wang et al. 2004) or uniform (scikit-image's default).
        #[arg(long, default_value = "gaussian", value_parser = SsimWindow::parse)]
        ssim_window: SsimWindow,
    },
    /// List every pipeline stage with its parameters and defaults.
    Stages,
}

/// Entry point of the `photonqa` binary.
pub fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("photonqa: internal error (please report): {info}");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("photonqa: {}", one_line(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("photonqa: {}", message.replace('\n', " "));
            ExitCode::from(2)
        }
    }
}

fn execute(command: Command) -> Result<(), String> {
    match command {
        Command::Run {
            scenario,
            out,
            resume,
            memory_budget,
            threads,
        } => {
            let scenario = Scenario::load(&scenario).map_err(|e| e.to_string())?;
            let out = out.unwrap_or_else(|| Path::new("runs").join(&scenario.name));
            let options = RunOptions {
                out: out.clone(),
                resume,
                memory_budget,
                threads,
            };
            let summary = runner::run(&scenario, &options)?;
            out!("{}", report::text_table(&summary.rows, &summary.columns));
            out!(
                "\n{} working points measured, {} already in {} (resumed); results in {}",
                summary.measured,
                summary.skipped,
                out.join("results.jsonl").display(),
                out.display()
            );
            Ok(())
        }
        Command::Validate { scenario } => {
            let scenario = Scenario::load(&scenario).map_err(|e| e.to_string())?;
            let source = scenario.source.open().map_err(|e| e.to_string())?;
            let chains = runner::build_chains(&scenario, source.as_ref())?;
            out!(
                "{}: ok: {} working points on {} ({} {:?})",
                scenario.path.display(),
                chains.len(),
                source.label(),
                source.dtype(),
                source.shape()
            );
            Ok(())
        }
        Command::Gen(args) => generate::run(args),
        Command::Metrics {
            original,
            decoded,
            json,
            data_range,
            max_rel_floor,
            ssim_window,
        } => {
            if let Some(r) = data_range.filter(|r| !(r.is_finite() && *r > 0.0)) {
                return Err(format!("--data-range {r} must be a finite number > 0"));
            }
            if let Some(f) = max_rel_floor.filter(|f| !(f.is_finite() && *f >= 0.0)) {
                return Err(format!("--max-rel-floor {f} must be a finite number >= 0"));
            }
            let open = |text: &str| {
                SourceSpec::parse(text, Path::new(""), None)
                    .map_err(|e| format!("{text}: {e}"))?
                    .open()
                    .map_err(|e| e.to_string())
            };
            let (a, b) = (open(&original)?, open(&decoded)?);
            let comparison = runner::compare::compare(
                a.as_ref(),
                b.as_ref(),
                data_range,
                max_rel_floor,
                ssim_window,
                DEFAULT_MEMORY_BUDGET,
            )?;
            let mut object = comparison.metrics;
            object.insert("data_range".into(), metric_json(comparison.spec.data_range));
            object.insert(
                "max_rel_floor".into(),
                metric_json(comparison.spec.max_rel_floor),
            );
            object.insert("count".into(), Value::from(comparison.count));
            if json {
                out!("{}", Value::Object(object));
            } else {
                // The scalar columns; the curves and histograms are in --json.
                let names = metric_registry::names();
                let mut columns = metric_registry::columns(&names, a.shape().len());
                columns.extend(["data_range", "max_rel_floor", "count"].map(String::from));
                let mut told: Vec<String> = Vec::new();
                for column in columns {
                    let name = column.split('.').next().unwrap_or_default().to_string();
                    let skipped = [name.to_string(), format!("{name}_detail")]
                        .iter()
                        .find_map(|key| object.get(key)?.get("skipped")?.as_str());
                    let text = match (skipped, column_value(&object, &column)) {
                        (Some(_), _) if told.contains(&name) => continue,
                        (Some(reason), _) => {
                            told.push(name.clone());
                            (name, format!("skipped: {reason}"))
                        }
                        (None, Some(value)) => (
                            column.clone(),
                            match metric_value(value) {
                                Some(_) if value.is_u64() => value.to_string(),
                                Some(v) => report::format_metric(v),
                                None if value.is_null() => "undefined".into(),
                                None => value.to_string(),
                            },
                        ),
                        (None, None) => (column.clone(), "-".into()),
                    };
                    out!("{:<38} {}", text.0, text.1);
                }
            }
            Ok(())
        }
        Command::Stages => {
            for def in registry::STAGES {
                let aliases = if def.aliases.is_empty() {
                    String::new()
                } else {
                    format!(" (aliases: {})", def.aliases.join(", "))
                };
                out!(
                    "{} [{}{}]{aliases}",
                    def.id,
                    def.kind.name(),
                    if def.lossless { ", lossless" } else { "" }
                );
                out!("    {}", def.summary);
                for p in def.params {
                    out!(
                        "    {:<10} {}; default: {}\n               {}",
                        p.name,
                        p.kind,
                        p.default,
                        p.doc
                    );
                }
            }
            Ok(())
        }
    }
}

/// clap's multi-line usage error as one line: the message before the usage block.
fn one_line(message: &str) -> String {
    message
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.trim().trim_start_matches("error: "))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses a byte size: a number with an optional unit B, K/KiB, M/MiB, G/GiB (binary units).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size such as 512MiB or 2GiB"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size unit '{other}' (use B, KiB, MiB, GiB, TiB)"
            ));
        }
    };
    Ok((number * scale as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1.5 GiB"), Ok(3 << 29));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").unwrap_err().contains("unit"));
    }
}
