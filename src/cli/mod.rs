//! The command line: parses arguments, calls the library, prints. Errors reach the user as one
//! line `photonqa: <context>: <cause>`; exit codes are 0 (ok), 1 (`check` found drift) and 2
//! (error).

mod allocator;
mod generate;
mod init;
mod reference;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;

use crate::analysis::components::Connectivity;
use crate::analysis::fbp::{self, Fbp, Filter};
use crate::data::IntoNdArray;
use crate::data::SourceSpec;
use crate::data::exchange::Exchange;
use crate::data::files::{AtomicFile, Existing, output_error};
use crate::data::npy::write_npy;
use crate::gate::{self, Baseline};
use crate::metrics::registry::{self as metric_registry, column_value};
use crate::metrics::ssim::SsimWindow;
use crate::metrics::values::metric_value;
use crate::pipeline::registry;
use crate::report;
use crate::runner::analyze::Segmenting;
use crate::runner::compare::CompareOptions;
use crate::runner::slabs::Phase;
use crate::runner::slurm::{self, SlurmOptions, Submitted};
use crate::runner::{self, RunOptions};
use crate::scenario::Scenario;
use crate::workflow::{self, ALLOW_COMMANDS_ENV};

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
        #[command(flatten)]
        table: Table,
        #[command(flatten)]
        resources: Resources,
        #[command(flatten)]
        consent: Consent,
    },
    /// CI gate: rerun a scenario and compare every metric of every point with a baseline; exit
    /// 1 and list the drifts when one moved beyond its tolerance.
    Check {
        /// Scenario file (TOML).
        scenario: PathBuf,
        /// The baseline (`photonqa bless` writes it).
        #[arg(long)]
        baseline: PathBuf,
        /// Also write the comparisons as JUnit XML, one test case per metric and point.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Keep the rerun's results in this (fresh) directory [default: a temporary one].
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        resources: Resources,
        #[command(flatten)]
        consent: Consent,
    },
    /// Write a working point's data as the HDF5 dataset a facility deploys: chunked, with the
    /// registered filter ids h5py + hdf5plugin read, lossy preprocessing recorded as attributes.
    Export {
        /// Scenario file (TOML).
        scenario: PathBuf,
        /// The working point's id (as in results.jsonl).
        #[arg(long)]
        point: String,
        /// The dataset to write, `file.h5::/path`, into a new file unless --append or --force.
        #[arg(long)]
        out: String,
        /// Add the dataset to the existing file (a copy of it, extended, then renamed over it).
        #[arg(long)]
        append: bool,
        /// Replace an existing file; with --append, an existing dataset of the file.
        #[arg(long)]
        force: bool,
        /// Memory for the chunks in flight, e.g. 512MiB, 2GiB.
        #[arg(long, value_parser = parse_size, default_value = "1GiB")]
        memory_budget: u64,
    },
    /// Run a scenario and write its results as the baseline of `photonqa check`.
    Bless {
        /// Scenario file (TOML).
        scenario: PathBuf,
        /// The baseline to write (replaced if it exists).
        #[arg(long)]
        baseline: PathBuf,
        /// Keep the run's results in this (fresh) directory [default: a temporary one].
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        resources: Resources,
        #[command(flatten)]
        consent: Consent,
    },
    /// Check a scenario and its input without running it.
    Validate {
        /// Scenario file (TOML).
        scenario: PathBuf,
    },
    /// Write a commented, runnable starting scenario for INPUT (.npy, file.h5::/dataset, ...):
    /// a sweep suited to its values (counting data or not), the technique's analyses, limits
    /// as suggestions; checked to load and build before it is written.
    Init {
        /// The data (as for `metrics`), relative to the working directory.
        input: String,
        /// The scenario file to write; its `source` is relative to the file's folder.
        #[arg(long)]
        out: PathBuf,
        /// tomo, saxs, xpcs, sx or generic [default: tomo for float data, saxs for a 2-D
        /// counting pattern, generic otherwise].
        #[arg(long)]
        technique: Option<String>,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
    },
    /// What an input holds: its arrays with shape, dtype, chunking and filters by name, the
    /// NeXus default signal, and a one-line summary of the values (HDF5/NeXus, Zarr, TIFF).
    Inspect {
        /// The input as `[input] source` names it: `file.h5`, `file.h5::/dataset`,
        /// `data.zarr`, `data.zarr::/group`, `scan/*.tif`, `stack.tif`, `file.npy`.
        input: String,
    },
    /// Generate synthetic data with known ground truth (deterministic, seeded).
    Gen {
        #[command(subcommand)]
        kind: generate::GenCommand,
    },
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
        /// Memory for the chunks in flight and the FSC's whole volumes, e.g. 512MiB, 8GiB.
        #[arg(long, value_parser = parse_size, default_value = "1GiB")]
        memory_budget: u64,
        /// Compute only these metrics, e.g. ssim,psnr (names as in scenarios) [default: all].
        #[arg(long, value_delimiter = ',')]
        only: Option<Vec<String>>,
    },
    /// Science of one array: Otsu's threshold, phase fractions, porosity and the pores.
    Analyze {
        /// The array (`.npy`, `file.h5::/dataset`).
        input: String,
        /// Print one JSON object (with the pore sizes).
        #[arg(long)]
        json: bool,
        /// Thresholds: otsu, multiotsu (with --classes) or value (with --value).
        #[arg(long, default_value = "otsu", value_parser = ["otsu", "multiotsu", "value"])]
        method: String,
        /// Classes of multiotsu (3..=5) [default: 3].
        #[arg(long)]
        classes: Option<usize>,
        /// Threshold of --method value.
        #[arg(long, allow_negative_numbers = true)]
        value: Option<f64>,
        /// The class that is pore space (0: at or below the lowest threshold).
        #[arg(long, default_value_t = 0)]
        pore_class: u8,
        /// Pore connectivity: face (scipy.ndimage.label's default) or full.
        #[arg(long, default_value = "face", value_parser = Connectivity::parse)]
        connectivity: Connectivity,
    },
    /// Filtered back-projection of a parallel-beam sinogram (as scikit-image `iradon`).
    Reconstruct {
        /// The sinogram, shape (angles, detector) (`.npy`, `file.h5::/dataset`); with --row, a
        /// DataExchange file (`file.h5`).
        sinogram: String,
        /// Detector row of a DataExchange file's projections, normalised with its flat and
        /// dark fields; the angles come from /exchange/theta unless --theta-deg is given.
        #[arg(long)]
        row: Option<usize>,
        /// The slice to write (`.npy`, float64, detector x detector, 0 outside the circle).
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
        /// ramp, shepp-logan, cosine, hamming or hann.
        #[arg(long, default_value = "ramp", value_parser = Filter::parse)]
        filter: Filter,
        /// Angles as start:stop:count in degrees, count equal steps over [start, stop)
        /// [default: 0:180:<angles of the sinogram>].
        #[arg(long, allow_hyphen_values = true)]
        theta_deg: Option<String>,
    },
    /// List every pipeline stage with its parameters and defaults.
    Stages,
    /// Print the reference of every stage, metric and analysis as Markdown (the committed
    /// docs/reference.md).
    Reference,
    /// Run a scenario on a Slurm cluster: a job array of one task per working point into
    /// OUT/units, then a merge job writing what `run` writes. Again: only the units missing or
    /// failed are submitted.
    Submit {
        /// Scenario file (TOML), on storage the compute nodes share.
        scenario: PathBuf,
        /// Output directory on shared storage [default: runs/<scenario name>].
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        slurm: SlurmArgs,
        #[command(flatten)]
        resources: Resources,
        /// Split every working point into K slabs of the input (runs of whole chunks): units
        /// of point x slab, in phases (prepare, measure, [histogram, analyse]) [default: what
        /// DIR has, else 1: one unit per point].
        #[arg(long, value_name = "K")]
        slabs: Option<usize>,
        /// Print the batch scripts and the sbatch commands; submit nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        consent: Consent,
    },
    /// Done, failed, running, queued and pending units of a submitted run (squeue when
    /// installed), the failures' reasons and logs.
    Status {
        /// The output directory of `submit`.
        dir: PathBuf,
        /// The scenario [default: the one `submit` recorded in DIR/units/scenario.json].
        #[arg(long)]
        scenario: Option<PathBuf>,
    },
    /// Merge the units of DIR into DIR/results.jsonl, results.csv and recommendation.json, as
    /// `run` writes them (the merge job of `submit` runs it).
    Merge {
        /// The output directory of the units.
        dir: PathBuf,
        /// The scenario [default: the one `submit` recorded in DIR/units/scenario.json].
        #[arg(long)]
        scenario: Option<PathBuf>,
        #[command(flatten)]
        table: Table,
        #[command(flatten)]
        resources: Resources,
        #[command(flatten)]
        consent: Consent,
    },
    /// Run one unit, what each array task of `submit` runs: the working point of sweep index
    /// INDEX into DIR/units/INDEX.json; with slab units, --prepare first, then each unit's
    /// --phase into DIR/units/INDEX.PHASE.bin. A unit already done is not run again.
    Unit {
        /// Scenario file (TOML).
        scenario: PathBuf,
        /// Output directory of the units.
        #[arg(long)]
        out: PathBuf,
        /// The unit (`$SLURM_ARRAY_TASK_ID`): the working point's sweep index, or for slab
        /// units point x K + slab.
        #[arg(long, required_unless_present = "prepare")]
        index: Option<usize>,
        /// The phase of a slab unit to run.
        #[arg(long, requires = "index")]
        phase: Option<Phase>,
        /// Start slab units in OUT: the input's first pass and the fits every unit reads.
        #[arg(long, conflicts_with_all = ["index", "phase"], requires = "slabs")]
        prepare: bool,
        /// Slabs per working point, with --prepare.
        #[arg(long, value_name = "K", requires = "prepare")]
        slabs: Option<usize>,
        #[command(flatten)]
        resources: Resources,
        #[command(flatten)]
        consent: Consent,
    },
}

/// What the Slurm jobs of `submit` ask for.
#[derive(clap::Args)]
struct SlurmArgs {
    /// Slurm partition.
    #[arg(long)]
    partition: Option<String>,
    /// Time limit of each task and of the merge job, e.g. 01:00:00.
    #[arg(long)]
    time: Option<String>,
    /// Memory of each task and of the merge job, e.g. 4G (above --memory-budget).
    #[arg(long)]
    mem: Option<String>,
    /// CPUs of each task; also its --threads unless given.
    #[arg(long)]
    cpus_per_task: Option<usize>,
    /// Tasks running at once.
    #[arg(long)]
    max_parallel: Option<usize>,
    /// A further #SBATCH option for both jobs, e.g. --sbatch=--account=abc (repeatable).
    #[arg(long = "sbatch", value_name = "OPTION", allow_hyphen_values = true)]
    extra: Vec<String>,
}

/// How the table of the points is printed.
#[derive(clap::Args)]
struct Table {
    /// Print every column of the table (bits/value and every metric and analysis column);
    /// without it, the point, swept parameters, ratio, limited columns and verdict, to fit a
    /// 120-column terminal (results.csv always has every column).
    #[arg(long)]
    wide: bool,
}

impl Table {
    /// The table of `summary`'s points.
    fn print(&self, summary: &workflow::RunSummary, scenario: &Scenario) {
        let width = if self.wide {
            report::TableWidth::Wide
        } else {
            report::TableWidth::Compact
        };
        out!(
            "{}",
            report::text_table(&summary.rows, &summary.columns, scenario, width)
        );
    }
}

/// What a run may use.
#[derive(clap::Args)]
struct Resources {
    /// Memory for the chunks in flight, e.g. 512MiB, 2GiB.
    #[arg(long, value_parser = parse_size, default_value = "1GiB")]
    memory_budget: u64,
    /// Worker threads [default: all cores], lowered to fit the memory budget.
    #[arg(long)]
    threads: Option<usize>,
    /// Measure every working point on its own data, sharing nothing with the others (for
    /// tests that check that sharing changes no result).
    #[arg(long, hide = true)]
    no_share: bool,
}

impl Resources {
    /// The options of a run into `out` with these resources.
    fn run_options(&self, out: PathBuf, resume: bool) -> RunOptions {
        RunOptions {
            resume,
            memory_budget: self.memory_budget,
            threads: self.threads,
            share: !self.no_share,
            ..RunOptions::new(out)
        }
    }
}

/// The user's consent to run the shell commands a scenario declares.
#[derive(clap::Args)]
struct Consent {
    /// Run the shell commands of the scenario's `command` stages and analyses (through sh -c,
    /// with your rights; `validate` lists them); without it, or PHOTONQA_ALLOW_COMMANDS=1, a
    /// scenario that has any is refused.
    #[arg(long)]
    allow_commands: bool,
}

impl Consent {
    /// Whether commands are allowed: `--allow-commands`, or PHOTONQA_ALLOW_COMMANDS=1.
    fn given(&self) -> bool {
        workflow::commands_allowed(self.allow_commands)
    }

    /// Refuses `scenario`, before anything runs, when it declares shell commands that the user
    /// did not allow ([`workflow::refuse_commands`]).
    fn check(&self, scenario: &Scenario) -> Result<(), String> {
        workflow::refuse_commands(scenario, self.allow_commands)
    }
}

/// Runs `scenario` into `out`, or into a temporary directory removed afterwards.
fn run_quietly(
    scenario: &Scenario,
    out: Option<PathBuf>,
    resources: &Resources,
) -> Result<workflow::RunSummary, String> {
    workflow::run_kept_or_temporary(scenario, out, resources.run_options(PathBuf::new(), false))
}

/// Starts writing the output file `path` named by the user, under a temporary name renamed
/// over it by [`commit_output`]: an existing file is an error unless `force`, which replaces it.
pub(crate) fn begin_output(path: &Path, force: bool) -> Result<AtomicFile, String> {
    let existing = if force {
        Existing::Replace
    } else {
        Existing::Refuse
    };
    AtomicFile::begin(path, existing).map_err(|e| output_error(path, &e, "--force replaces it"))
}

/// Renames the finished `output` of [`begin_output`] over its target.
pub(crate) fn commit_output(output: AtomicFile) -> Result<(), String> {
    let target = output.target().to_path_buf();
    output
        .commit()
        .map_err(|e| output_error(&target, &e, "--force replaces it"))
}

/// Angles `start:stop:count` in degrees for a sinogram with `angles` rows.
fn parse_theta(text: &str, angles: usize) -> Result<Vec<f64>, String> {
    let bad = || format!("--theta-deg {text}: expected start:stop:count, e.g. 0:180:{angles}");
    let parts: Vec<&str> = text.split(':').collect();
    let [start, stop, count] = parts.as_slice() else {
        return Err(bad());
    };
    let (start, stop): (f64, f64) = (
        start.parse().map_err(|_| bad())?,
        stop.parse().map_err(|_| bad())?,
    );
    let count: usize = count.parse().map_err(|_| bad())?;
    if !(start.is_finite() && stop.is_finite()) {
        return Err(bad());
    }
    if count != angles {
        return Err(format!(
            "--theta-deg {text}: {count} angles, but the sinogram has {angles}"
        ));
    }
    Ok(fbp::theta_range(start, stop, count))
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
        Ok(code) => code,
        Err(message) => {
            eprintln!("photonqa: {}", message.replace('\n', " "));
            ExitCode::from(2)
        }
    }
}

fn execute(command: Command) -> Result<ExitCode, String> {
    match command {
        command @ (Command::Submit { .. }
        | Command::Status { .. }
        | Command::Merge { .. }
        | Command::Unit { .. }) => execute_units(command),
        Command::Run {
            scenario,
            out,
            resume,
            table,
            resources,
            consent,
        } => {
            let scenario = Scenario::load(&scenario).map_err(|e| e.to_string())?;
            consent.check(&scenario)?;
            let out = out.unwrap_or_else(|| Path::new("runs").join(&scenario.name));
            let options = resources.run_options(out.clone(), resume);
            let summary = workflow::run(&scenario, &options)?;
            table.print(&summary, &scenario);
            out!(
                "\n{} working points measured, {} already in {} (resumed); results in {}",
                summary.measured,
                summary.skipped,
                out.join("results.jsonl").display(),
                out.display()
            );
            out!("{}", report::answer(&summary.recommendation));
            out!("report: {}", out.join("report.html").display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Check {
            scenario,
            baseline,
            junit,
            out,
            resources,
            consent,
        } => {
            let scenario = Scenario::load(&scenario).map_err(|e| e.to_string())?;
            consent.check(&scenario)?;
            // A wrong baseline fails before the run.
            let baseline = Baseline::read(&baseline).map_err(|e| e.to_string())?;
            let summary = run_quietly(&scenario, out, &resources)?;
            let report = gate::check(
                &baseline,
                &summary.rows,
                &summary.columns,
                &scenario.tolerances,
            );
            if let Some(path) = junit {
                gate::write_junit(&report, &path).map_err(|e| e.to_string())?;
            }
            out!("{report}");
            Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Bless {
            scenario,
            baseline,
            out,
            resources,
            consent,
        } => {
            let scenario = Scenario::load(&scenario).map_err(|e| e.to_string())?;
            consent.check(&scenario)?;
            let summary = run_quietly(&scenario, out, &resources)?;
            let blessed = Baseline::from_rows(
                &scenario.name,
                &scenario.hash,
                &summary.rows,
                &summary.columns,
            )
            .map_err(|e| e.to_string())?;
            blessed.write(&baseline).map_err(|e| e.to_string())?;
            out!(
                "{}: {} points x {} columns blessed from {}",
                baseline.display(),
                blessed.points.len(),
                blessed.columns.len(),
                scenario.path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            scenario,
            point,
            out,
            append,
            force,
            memory_budget,
        } => {
            let scenario = Scenario::load(&scenario).map_err(|e| e.to_string())?;
            let Some((file, dataset)) = out.split_once("::") else {
                return Err(format!("--out {out}: expected file.h5::/path"));
            };
            let target = runner::export::ExportTarget {
                file: Path::new(file),
                dataset,
                append,
                force,
            };
            let exported = runner::export::export(&scenario, &point, target, memory_budget)?;
            let filters: Vec<String> = exported
                .filters
                .iter()
                .map(|f| format!("{} (filter {}, cd_values {:?})", f.stage, f.id, f.cd_values))
                .collect();
            out!(
                "{out}: point {point}, {} chunks of {} rows of {}, filters: {}; {} bytes stored",
                exported.chunks,
                exported.chunk_rows,
                exported.stored_dtype,
                if filters.is_empty() {
                    "none".to_string()
                } else {
                    filters.join(" -> ")
                },
                exported.stored_bytes
            );
            for note in &exported.notes {
                out!("note: {note}");
            }
            let checks: Vec<_> = exported.bounds.iter().map(|b| b.check()).collect();
            for check in &checks {
                out!(
                    "bound on the file: {} {} {}: {}, worst {} over {} {}",
                    check.stage,
                    check.kind,
                    check.promised,
                    if check.bound_ok { "ok" } else { "VIOLATED" },
                    crate::metrics::values::plain(&check.observed_worst),
                    check.checked,
                    check.counted
                );
            }
            // Like a gate: the file is written, but what it stores breaks the promise.
            Ok(if checks.iter().all(|c| c.bound_ok) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Inspect { input } => {
            let entries =
                crate::data::inspect::inspect(&input, Path::new("")).map_err(|e| e.to_string())?;
            for entry in entries {
                out!("{entry}");
            }
            Ok(ExitCode::SUCCESS)
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
            let commands = scenario.commands();
            if !commands.is_empty() {
                out!(
                    "{}: runs {} shell command{} through sh -c; run, check, bless, submit, merge and unit need --allow-commands (or {ALLOW_COMMANDS_ENV}=1):",
                    scenario.path.display(),
                    commands.len(),
                    if commands.len() == 1 { "" } else { "s" }
                );
                for command in commands {
                    out!("  {command}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Gen { kind } => generate::run(kind).map(|()| ExitCode::SUCCESS),
        Command::Init {
            input,
            out,
            technique,
            force,
        } => {
            let written = init::init(&input, &out, technique.as_deref(), force)?;
            out!("{written}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Metrics {
            original,
            decoded,
            json,
            data_range,
            max_rel_floor,
            ssim_window,
            memory_budget,
            only,
        } => {
            allocator::keep_freed_memory();
            let open = |text: &str| {
                SourceSpec::parse(text, Path::new(""), None)
                    .map_err(|e| format!("{text}: {e}"))?
                    .open()
                    .map_err(|e| e.to_string())
            };
            let (a, b) = (open(&original)?, open(&decoded)?);
            let options = CompareOptions {
                data_range,
                max_rel_floor,
                ssim_window,
                memory_budget,
                only,
            };
            let comparison = runner::compare::compare(a.as_ref(), b.as_ref(), &options)?;
            let object = comparison.into_json();
            if json {
                out!("{}", Value::Object(object));
            } else {
                // The scalar columns; the curves and histograms are in --json.
                let names = options.names()?;
                let mut columns = metric_registry::columns(&names, a.shape().len());
                columns.extend(
                    ["data_range", "max_rel_floor", "count", "nonfinite_decoded"].map(String::from),
                );
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
            Ok(ExitCode::SUCCESS)
        }
        Command::Analyze {
            input,
            json,
            method,
            classes,
            value,
            pore_class,
            connectivity,
        } => {
            let how = Segmenting::new(method, classes, value, pore_class, connectivity)?;
            let source = SourceSpec::parse(&input, Path::new(""), None)
                .map_err(|e| format!("{input}: {e}"))?
                .open()
                .map_err(|e| e.to_string())?;
            let result = runner::analyze::analyze(source.as_ref(), &how, None)?;
            if json {
                out!("{}", Value::Object(result));
            } else {
                for (key, value) in result.iter().filter(|(k, _)| *k != "pore_sizes") {
                    let text = match value {
                        Value::Number(n) if n.is_f64() => {
                            report::format_metric(n.as_f64().unwrap_or_default())
                        }
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    out!("{key:<22} {text}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Reconstruct {
            sinogram,
            row,
            out,
            force,
            filter,
            theta_deg,
        } => {
            let output = begin_output(&out, force)?;
            let (data, [angles, detector], file_theta) = match row {
                Some(row) => {
                    let exchange = Exchange::open(Path::new(&sinogram))?;
                    let [angles, _, detector] = exchange.shape;
                    let data = exchange.sinogram(row)?;
                    (data, [angles, detector], Some(exchange.theta()?))
                }
                None => {
                    let source = SourceSpec::parse(&sinogram, Path::new(""), None)
                        .map_err(|e| format!("{sinogram}: {e}"))?
                        .open()
                        .map_err(|e| e.to_string())?;
                    let &[angles, detector] = source.shape() else {
                        return Err(format!(
                            "{sinogram}: a sinogram has shape (angles, detector), not {:?}",
                            source.shape()
                        ));
                    };
                    let data = source.read_slab(0..angles).map_err(|e| e.to_string())?;
                    (
                        data.to_f64().into_iter().collect(),
                        [angles, detector],
                        None,
                    )
                }
            };
            let theta = match (theta_deg, file_theta) {
                (Some(text), _) => parse_theta(&text, angles)?,
                (None, Some(theta)) => theta,
                (None, None) => fbp::theta_range(0.0, 180.0, angles),
            };
            let slice = Fbp::new(detector, &theta, filter)
                .and_then(|fbp| fbp.reconstruct(&data))
                .map_err(|e| format!("{sinogram}: {e}"))?;
            let slice =
                ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[detector, detector]), slice)
                    .expect("detector x detector values");
            write_npy(output.path(), &slice.into_nd())
                .map_err(|e| output.relabel(e).to_string())?;
            commit_output(output)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Reference => {
            out!("{}", reference::markdown().trim_end());
            Ok(ExitCode::SUCCESS)
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
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The scenario of a units directory: `--scenario`, or the one `submit` recorded.
fn units_scenario(dir: &Path, scenario: Option<PathBuf>) -> Result<Scenario, String> {
    let path = match scenario {
        Some(path) => path,
        None => match runner::units::Manifest::read(dir)? {
            Some(manifest) => manifest.scenario,
            None => {
                return Err(format!(
                    "{}: no {}/{} (written by `photonqa submit`); pass --scenario",
                    dir.display(),
                    runner::units::UNITS_DIR,
                    runner::units::MANIFEST
                ));
            }
        },
    };
    Scenario::load(&path).map_err(|e| e.to_string())
}

/// The Slurm commands: submit, status, merge and unit.
fn execute_units(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Submit {
            scenario,
            out,
            slurm,
            resources,
            slabs,
            dry_run,
            consent,
        } => {
            let scenario = Scenario::load(&scenario).map_err(|e| e.to_string())?;
            consent.check(&scenario)?;
            let out = out.unwrap_or_else(|| Path::new("runs").join(&scenario.name));
            let exe = std::env::current_exe()
                .map_err(|e| format!("cannot find the photonqa binary: {e}"))?;
            let options = SlurmOptions {
                partition: slurm.partition,
                time: slurm.time,
                mem: slurm.mem,
                cpus_per_task: slurm.cpus_per_task,
                max_parallel: slurm.max_parallel,
                extra: slurm.extra,
                memory_budget: resources.memory_budget,
                threads: resources.threads,
                slabs,
                allow_commands: consent.given(),
            };
            match slurm::submit(&scenario, &out, &exe, &options, dry_run)? {
                Submitted::Nothing(why) => out!("{why}"),
                Submitted::DryRun(text) => out!("{}", text.trim_end()),
                Submitted::Jobs { units, jobs, merge } => {
                    let out = std::path::absolute(&out).unwrap_or(out);
                    // No units: only the prepare task of slab units, whose file was damaged.
                    let what = match units.len() {
                        0 => format!("the prepare task of {}", scenario.name),
                        n => format!(
                            "{n} unit{} of {} (index {})",
                            if n == 1 { "" } else { "s" },
                            scenario.name,
                            runner::units::index_ranges(&units)
                        ),
                    };
                    out!(
                        "submitted {what} as job{} {}; merge job {merge} runs when they all succeed",
                        if jobs.len() == 1 { "" } else { "s" },
                        jobs.join(", ")
                    );
                    out!(
                        "logs in {}; follow with `photonqa status {}`",
                        out.join(slurm::SLURM_DIR).display(),
                        out.display()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { dir, scenario } => {
            let scenario = units_scenario(&dir, scenario)?;
            out!("{}", slurm::status(&scenario, &dir)?.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Command::Merge {
            dir,
            scenario,
            table,
            resources,
            consent,
        } => {
            let scenario = units_scenario(&dir, scenario)?;
            // The report's triptych runs the chosen point's pipeline again.
            consent.check(&scenario)?;
            let summary = workflow::merge(
                &scenario,
                &dir,
                (resources.memory_budget, resources.threads),
            )?;
            table.print(&summary, &scenario);
            let failed = summary
                .rows
                .iter()
                .filter(|r| r.status == runner::results::Status::Error)
                .count();
            out!(
                "\n{} units merged into {}{}; results in {}",
                summary.rows.len(),
                dir.join("results.jsonl").display(),
                if failed > 0 {
                    format!(" ({failed} failed points included, as a run records them)")
                } else {
                    String::new()
                },
                dir.display()
            );
            out!("{}", report::answer(&summary.recommendation));
            out!("report: {}", dir.join("report.html").display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Unit {
            scenario,
            out,
            index,
            phase,
            prepare,
            slabs,
            resources,
            consent,
        } => {
            let scenario = Scenario::load(&scenario).map_err(|e| e.to_string())?;
            consent.check(&scenario)?;
            let resources = (resources.memory_budget, resources.threads);
            if prepare {
                let slabs = slabs.expect("clap requires --slabs with --prepare");
                let ran = runner::slabs::prepare(&scenario, &out, slabs, resources)?;
                out!(
                    "prepare: {} {}",
                    if ran { "written to" } else { "done already in" },
                    out.join(runner::units::UNITS_DIR).display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let index = index.expect("clap requires --index without --prepare");
            if let Some(phase) = phase {
                let unit = (index, phase);
                let (path, ran) = runner::slabs::run_unit(&scenario, &out, unit, resources)?;
                out!(
                    "unit {index} {}: {} {}",
                    phase.name(),
                    if ran {
                        "measured into"
                    } else {
                        "done already in"
                    },
                    path.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let (row, measured) = runner::units::run_unit(&scenario, &out, index, resources)?;
            let path = runner::units::row_path(&out, index);
            if let Some(error) = &row.error {
                // A failed task: Slurm marks it so, and a later `submit` runs it again.
                return Err(format!(
                    "unit {index} ({}): the point failed: {error} (recorded in {})",
                    row.point_id,
                    path.display()
                ));
            }
            out!(
                "unit {index} ({}): {} {}",
                row.point_id,
                if measured {
                    "measured into"
                } else {
                    "done already in"
                },
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        _ => unreachable!("execute dispatches only the units commands here"),
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
