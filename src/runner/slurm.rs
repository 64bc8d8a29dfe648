//! Slurm: a scenario's units as job arrays, and a merge job that runs when every task
//! succeeded; and the jobs' state in Slurm's queue.
//!
//! Point units ([`super::units`]): [`submit`] writes `DIR/slurm/array.sh` (`#SBATCH
//! --array=<indices>%<max parallel>`, each task runs `photonqa unit SCENARIO --out DIR --index
//! $SLURM_ARRAY_TASK_ID`) and `DIR/slurm/merge.sh` (`photonqa merge DIR`). Slab units
//! ([`super::slabs`]): `prepare.sh`, then one array per phase (`<phase>.sh`, `--phase`), then
//! the merge. Each job is submitted with `sbatch --parsable --dependency=afterok:<the job before>
//! --kill-on-invalid-dep=yes` (a failed task cancels the jobs after it instead of leaving them
//! pending forever), and recorded in `DIR/slurm/jobs.jsonl`. Only the units (phases) without a
//! result, or whose result is a failure, are submitted, less those an earlier submission still
//! has in the queue; so a second `submit` after a failure reruns just what failed and what its
//! failure cancelled.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::lock::Lock;
use super::slabs::{self, Phase};
use super::units::{self, Manifest, Unit, UnitState, index_ranges};
use crate::data::shell::quoted;
use crate::scenario::Scenario;

/// The folder of the scripts, the job records and the tasks' logs in an output directory.
pub const SLURM_DIR: &str = "slurm";

/// What the jobs ask of Slurm and how the units run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlurmOptions {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` (the limit of each task and of the merge job).
    pub time: Option<String>,
    /// `--mem` (of each task and of the merge job).
    pub mem: Option<String>,
    /// `--cpus-per-task`; also the units' threads unless `threads` is set.
    pub cpus_per_task: Option<usize>,
    /// Tasks running at once (`%K` of `--array`).
    pub max_parallel: Option<usize>,
    /// Further `#SBATCH` options, as written (e.g. `--account=abc`).
    pub extra: Vec<String>,
    /// The units' `--memory-budget` in bytes.
    pub memory_budget: u64,
    /// The units' `--threads`.
    pub threads: Option<usize>,
    /// Slabs per working point (`--slabs`): `None` keeps what the directory has, else one unit
    /// per point.
    pub slabs: Option<usize>,
    /// The user allowed the scenario's shell commands: the tasks get `--allow-commands`.
    pub allow_commands: bool,
}

impl SlurmOptions {
    /// Refuses values that would break an `#SBATCH` line.
    fn check(&self) -> Result<(), String> {
        let values = [
            ("--partition", &self.partition),
            ("--time", &self.time),
            ("--mem", &self.mem),
        ];
        for (name, value) in values {
            if let Some(v) = value
                && (v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()))
            {
                return Err(format!(
                    "{name} '{v}': a Slurm value has no spaces or control characters"
                ));
            }
        }
        for extra in &self.extra {
            if !extra.starts_with('-') || extra.chars().any(char::is_control) {
                return Err(format!(
                    "--sbatch '{extra}': expected one sbatch option such as --account=abc"
                ));
            }
        }
        if self.max_parallel == Some(0) || self.cpus_per_task == Some(0) {
            return Err("--max-parallel and --cpus-per-task must be at least 1".into());
        }
        Ok(())
    }

    /// The `#SBATCH` lines both jobs share.
    fn resource_lines(&self) -> String {
        let mut lines = String::new();
        let mut line = |option: &str, value: &Option<String>| {
            if let Some(v) = value {
                let _ = writeln!(lines, "#SBATCH --{option}={v}");
            }
        };
        line("partition", &self.partition);
        line("time", &self.time);
        line("mem", &self.mem);
        line("cpus-per-task", &self.cpus_per_task.map(|c| c.to_string()));
        for extra in &self.extra {
            let _ = writeln!(lines, "#SBATCH {extra}");
        }
        lines
    }

    /// `--memory-budget`, `--threads` and `--allow-commands` of the photonqa commands.
    fn run_arguments(&self) -> String {
        let mut args = format!("--memory-budget {}", self.memory_budget);
        if let Some(threads) = self.threads.or(self.cpus_per_task) {
            let _ = write!(args, " --threads {threads}");
        }
        if self.allow_commands {
            args.push_str(" --allow-commands");
        }
        args
    }
}

/// A scenario's name as the scripts write it, in its comments and job names: letters, digits,
/// `.`, `_` and `-` (a scenario's name has no other characters; this holds for any name).
fn script_name(scenario: &str) -> String {
    scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The batch scripts of a submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Scripts {
    /// `DIR/slurm/prepare.sh` of slab units, when their prepare task is to run.
    pub prepare: Option<String>,
    /// `DIR/slurm/array.sh` (point units), or `DIR/slurm/<phase>.sh` (slab units): one task
    /// per unit of the phase.
    pub arrays: Vec<(Option<Phase>, String)>,
    /// `DIR/slurm/merge.sh`.
    pub merge: String,
}

/// What a submission runs: the prepare task of slab units, then an array of units per phase
/// (one, without a phase, for point units).
#[derive(Debug, Clone, PartialEq)]
pub struct Work {
    /// Whether the prepare task runs (slab units only).
    pub prepare: bool,
    /// The units of each array, in order.
    pub arrays: Vec<(Option<Phase>, Vec<usize>)>,
}

/// The batch scripts that run `work` of the scenario `manifest` names into `out` (absolute, as
/// [`submit`] checks it: no whitespace, quotes or `%`, for it is in `#SBATCH --output`) with
/// the photonqa binary `exe`, then merge it. Every other value in a command line is one quoted
/// word ([`quoted`]); the scenario's name is written in letters, digits, `.`, `_` and `-`.
pub fn scripts(
    exe: &Path,
    manifest: &Manifest,
    out: &Path,
    work: &Work,
    options: &SlurmOptions,
) -> Scripts {
    let logs = out.join(SLURM_DIR);
    let scenario_name = script_name(&manifest.name);
    let name = format!("photonqa-{scenario_name}");
    let parallel = options
        .max_parallel
        .map(|k| format!("%{k}"))
        .unwrap_or_default();
    let resources = options.resource_lines();
    let run = options.run_arguments();
    let (exe, scenario, out_word) = (quoted(exe), quoted(&manifest.scenario), quoted(out));
    let array = |phase: Option<Phase>, indices: &[usize]| {
        let (what, suffix, argument) = match phase {
            None => (
                "one array task per working point (its sweep index)".to_string(),
                String::new(),
                String::new(),
            ),
            Some(phase) => (
                format!(
                    "phase {} of the slab units: one array task per point x slab ({} slabs per point)",
                    phase.name(),
                    manifest.slabs
                ),
                format!("-{}", phase.name()),
                format!(" --phase {}", phase.name()),
            ),
        };
        format!(
            "#!/bin/bash
# Units of photonqa scenario {scenario_name}: {what}.
# Written by `photonqa submit`; `photonqa status {out_word}` tells which are done.
#SBATCH --job-name={name}{suffix}
#SBATCH --array={list}{parallel}
#SBATCH --output={logs}/%A_%a.out
{resources}set -euo pipefail
exec {exe} unit {scenario} --out {out_word} --index \"$SLURM_ARRAY_TASK_ID\"{argument} {run}
",
            list = index_ranges(indices),
            logs = logs.display(),
        )
    };
    let prepare = work.prepare.then(|| {
        format!(
            "#!/bin/bash
# Prepare task of the slab units of photonqa scenario {scenario_name}: the input's range and
# hash, and the fits every unit starts from.
#SBATCH --job-name={name}-prepare
#SBATCH --output={logs}/prepare-%j.out
{resources}set -euo pipefail
exec {exe} unit {scenario} --out {out_word} --prepare --slabs {slabs} {run}
",
            logs = logs.display(),
            slabs = manifest.slabs,
        )
    });
    let merge = format!(
        "#!/bin/bash
# Merge of the units of photonqa scenario {scenario_name} into results.jsonl, results.csv and
# recommendation.json; submitted to start when every task of the array job succeeded.
#SBATCH --job-name={name}-merge
#SBATCH --output={logs}/merge-%j.out
{resources}set -euo pipefail
exec {exe} merge {out_word} {run}
",
        logs = logs.display(),
    );
    Scripts {
        prepare,
        arrays: work
            .arrays
            .iter()
            .map(|(phase, indices)| (*phase, array(*phase, indices)))
            .collect(),
        merge,
    }
}

/// One submission, a line of `DIR/slurm/jobs.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// Job id of the array.
    pub array: String,
    /// The units it runs (array task ids).
    pub units: Vec<usize>,
    /// Job id of the merge job (of the submission's last array).
    pub merge: Option<String>,
    /// The slab units' phase the array runs, or `prepare` for the prepare job (whose id is
    /// `array`; no tasks); none for point units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

/// The submissions recorded in `out`, oldest first.
pub fn submissions(out: &Path) -> Result<Vec<Submission>, String> {
    let path = out.join(SLURM_DIR).join("jobs.jsonl");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            serde_json::from_str(l)
                .map_err(|e| format!("{}:{}: not a submission: {e}", path.display(), n + 1))
        })
        .collect()
}

fn record(out: &Path, submission: &Submission) -> Result<(), String> {
    let path = out.join(SLURM_DIR).join("jobs.jsonl");
    let mut line = serde_json::to_string(submission).expect("submission serialises");
    line.push('\n');
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The jobs of a directory's submissions still in Slurm's queue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Queue {
    /// State (`PENDING`, `RUNNING`, ...) of each queued unit, by index.
    pub units: BTreeMap<usize, String>,
    /// Queued single jobs (merge, prepare): id, what it does, state and Slurm's reason.
    pub singles: Vec<(String, String, String, String)>,
}

/// What `squeue` says of the recorded jobs: `Ok(None)` when squeue is not installed.
pub fn queue(submissions: &[Submission]) -> Result<Option<Queue>, String> {
    let mut ids: Vec<&str> = Vec::new();
    for s in submissions {
        ids.push(&s.array);
        ids.extend(s.merge.as_deref());
    }
    let single = |id: &str| {
        submissions.iter().find_map(|s| {
            if s.merge.as_deref() == Some(id) {
                Some("merge")
            } else if s.array == id && s.phase.as_deref() == Some("prepare") {
                Some("prepare")
            } else {
                None
            }
        })
    };
    if ids.is_empty() {
        return Ok(Some(Queue::default()));
    }
    let output = match Command::new("squeue")
        .args(["--noheader", "--array", "--format=%i|%T|%r"])
        .arg(format!("--jobs={}", ids.join(",")))
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot run squeue: {e}")),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        // Jobs that left the queue and slurmctld's memory are "invalid" ids.
        if stderr.contains("Invalid job id") {
            return Ok(Some(Queue::default()));
        }
        return Err(format!("squeue: {}", stderr.trim().replace('\n', " ")));
    }
    let mut queue = Queue::default();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let mut fields = line.trim().splitn(3, '|');
        let (Some(id), Some(state)) = (fields.next(), fields.next()) else {
            continue;
        };
        let reason = fields.next().unwrap_or_default().to_string();
        match id.split_once('_') {
            Some((job, task)) => {
                let recorded = submissions.iter().any(|s| s.array == job);
                if let (true, Ok(index)) = (recorded, task.parse()) {
                    queue.units.insert(index, state.to_string());
                }
            }
            None => {
                if let Some(what) = single(id) {
                    let (id, what, state) = (id.to_string(), what.to_string(), state.to_string());
                    queue.singles.push((id, what, state, reason));
                }
            }
        }
    }
    Ok(Some(queue))
}

/// A unit's state with Slurm's queue in view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tracked {
    /// Its files tell (done, failed, or pending and not in the queue).
    Files(UnitState),
    /// In the queue: Slurm's state (`PENDING`, `RUNNING`, ...).
    Queued(String),
}

/// The Slurm log of unit `index` from the latest submission that ran it.
pub fn task_log(out: &Path, submissions: &[Submission], index: usize) -> Option<PathBuf> {
    let job = submissions
        .iter()
        .rev()
        .find(|s| s.units.contains(&index))?;
    Some(
        out.join(SLURM_DIR)
            .join(format!("{}_{}.out", job.array, index)),
    )
}

/// Each unit's state: a unit in the queue is queued, whatever its files say; a submitted unit
/// that left the queue without a result (cancelled, or killed at its time or memory limit) has
/// failed. Without a queue (`None`: squeue not installed) the files alone tell.
pub fn track(
    units: &[Unit],
    submissions: &[Submission],
    queue: Option<&Queue>,
    out: &Path,
) -> Vec<Tracked> {
    units
        .iter()
        .map(|unit| {
            let state = unit.state.clone();
            if state == UnitState::Done {
                return Tracked::Files(state);
            }
            let Some(queue) = queue else {
                return Tracked::Files(state);
            };
            if let Some(slurm) = queue.units.get(&unit.index) {
                return Tracked::Queued(slurm.clone());
            }
            match (state, task_log(out, submissions, unit.index)) {
                (UnitState::Pending, Some(log)) => Tracked::Files(UnitState::Failed(format!(
                    "its Slurm task ended without a result (cancelled, or killed at its time or memory limit?); see {}",
                    log.display()
                ))),
                (state, _) => Tracked::Files(state),
            }
        })
        .collect()
}

/// What `submit` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// Nothing to submit; why.
    Nothing(String),
    /// `--dry-run`: the scripts and the commands that would submit them.
    DryRun(String),
    /// The jobs.
    Jobs {
        /// The units submitted (of any phase).
        units: Vec<usize>,
        /// Ids of the jobs before the merge: prepare, arrays.
        jobs: Vec<String>,
        /// Id of the merge job.
        merge: String,
    },
}

/// Submits the units of `scenario` that have no result, or a failed one, and are not queued,
/// as a job array into `out`, and a merge job after it. `exe` is the photonqa binary the tasks
/// run (on storage the nodes share, as `out` and the input).
pub fn submit(
    scenario: &Scenario,
    out: &Path,
    exe: &Path,
    options: &SlurmOptions,
    dry_run: bool,
) -> Result<Submitted, String> {
    options.check()?;
    let out = std::path::absolute(out).map_err(|e| format!("{}: {e}", out.display()))?;
    if out
        .to_string_lossy()
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "%'\"".contains(c))
    {
        return Err(format!(
            "--out {}: Slurm's #SBATCH lines and log names need a path without spaces, quotes or %",
            out.display()
        ));
    }
    // The scenario and its input are checked here, not in a thousand failing tasks.
    let source = scenario.source.open().map_err(|e| e.to_string())?;
    super::build_chains(scenario, source.as_ref())?;
    // Two submissions at once would both submit the units left.
    let _lock = match dry_run {
        true => None,
        false => Some(Lock::exclusive(&out.join(SLURM_DIR), "submit")?),
    };
    let earlier_manifest = Manifest::read(&out)?;
    if let Some(earlier) = &earlier_manifest {
        earlier.check(scenario, &out)?;
    }
    let slabs = match (options.slabs, &earlier_manifest) {
        (Some(slabs), Some(earlier)) if slabs != earlier.slabs => {
            return Err(format!(
                "--slabs {slabs}: {} holds units of {} slabs per point; use a fresh --out",
                out.display(),
                earlier.slabs
            ));
        }
        (Some(slabs), _) => slabs,
        (None, Some(earlier)) => earlier.slabs,
        (None, None) => 1,
    };
    if slabs > 1 {
        let chunks = super::Plan::new(
            source.shape(),
            source.row_bytes(),
            scenario.chunk_slices,
            u64::MAX,
            Some(1),
        )?
        .chunks
        .len();
        slabs::check(scenario, chunks, slabs)?;
    } else {
        units::points(scenario)?;
    }
    let manifest = Manifest::of(scenario, slabs)?;
    let units = match slabs {
        1 => units::survey(scenario, &out)?,
        _ => slabs::survey(scenario, &out, slabs)?,
    };
    let earlier = submissions(&out)?;
    let queue = match queue(&earlier)? {
        Some(queue) => Some(queue),
        None if dry_run || earlier.is_empty() => None,
        None => {
            return Err(format!(
                "squeue not found: cannot tell which units of the earlier submissions in {} are still queued",
                out.join(SLURM_DIR).display()
            ));
        }
    };
    let tracked = track(&units, &earlier, queue.as_ref(), &out);
    let queued = |u: &Unit| !matches!(tracked[u.index], Tracked::Files(_));
    let work = if slabs > 1 {
        let prepare_queued = queue
            .iter()
            .flat_map(|q| &q.singles)
            .any(|(_, what, _, _)| what == "prepare");
        let arrays = slabs::phases(scenario)
            .into_iter()
            .map(|phase| {
                let todo: Vec<usize> = units
                    .iter()
                    .filter(|u| !queued(u))
                    .map(|u| u.index)
                    .filter(|&u| !slabs::phase_done(&out, u, phase))
                    .collect();
                (Some(phase), todo)
            })
            .filter(|(_, todo)| !todo.is_empty())
            .collect();
        Work {
            prepare: !prepare_queued && slabs::prepare_state(&out)? != Ok(true),
            arrays,
        }
    } else {
        let todo: Vec<usize> = units
            .iter()
            .filter(|u| !queued(u) && u.state != UnitState::Done)
            .map(|u| u.index)
            .collect();
        Work {
            prepare: false,
            arrays: if todo.is_empty() {
                Vec::new()
            } else {
                vec![(None, todo)]
            },
        }
    };
    // A damaged prepare.bin runs again even when every unit is done: the merge reads it.
    if work.arrays.is_empty() && !work.prepare {
        let queued = units.iter().filter(|u| queued(u)).count();
        let why = if queued > 0 {
            format!(
                "nothing to submit: {} of {} units done, {queued} still queued or running",
                units.len() - queued,
                units.len()
            )
        } else {
            format!(
                "nothing to submit: all {} units done; `photonqa merge {}` writes the results",
                units.len(),
                out.display()
            )
        };
        return Ok(Submitted::Nothing(why));
    }
    let scripts = scripts(exe, &manifest, &out, &work, options);
    let dir = out.join(SLURM_DIR);
    let script_path = |phase: Option<Phase>| match phase {
        None => dir.join("array.sh"),
        Some(phase) => dir.join(format!("{}.sh", phase.name())),
    };
    let (prepare_path, merge_path) = (dir.join("prepare.sh"), dir.join("merge.sh"));
    let mut files: Vec<(PathBuf, &String)> = Vec::new();
    if let Some(prepare) = &scripts.prepare {
        files.push((prepare_path.clone(), prepare));
    }
    for (phase, text) in &scripts.arrays {
        files.push((script_path(*phase), text));
    }
    files.push((merge_path.clone(), &scripts.merge));
    let after = |job: &str| {
        vec![
            format!("--dependency=afterok:{job}"),
            "--kill-on-invalid-dep=yes".to_string(),
        ]
    };
    if dry_run {
        let mut text = String::new();
        for (path, script) in &files {
            let _ = writeln!(
                text,
                "# {}
{script}",
                path.display()
            );
        }
        let _ = writeln!(text, "# submit with:");
        for (n, (path, _)) in files.iter().enumerate() {
            let mut args = vec!["sbatch".to_string(), "--parsable".into()];
            if n > 0 {
                args.extend(after(&format!("<job id of {}>", files[n - 1].0.display())));
            }
            let _ = writeln!(text, "{} {}", args.join(" "), path.display());
        }
        return Ok(Submitted::DryRun(text));
    }
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    manifest.write(&out)?;
    for (path, text) in &files {
        crate::data::write_atomically(path, text.as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    // Each job waits for the one before it; a job that fails cancels the rest.
    let mut records: Vec<Submission> = Vec::new();
    let mut jobs: Vec<(PathBuf, Option<String>, Vec<usize>)> = Vec::new();
    if work.prepare {
        jobs.push((prepare_path, Some("prepare".into()), Vec::new()));
    }
    for (phase, units) in &work.arrays {
        let phase_name = phase.map(|p| p.name().to_string());
        jobs.push((script_path(*phase), phase_name, units.clone()));
    }
    let mut last: Option<String> = None;
    let mut submit_after = |path: &Path| -> Result<String, String> {
        let mut args = vec!["--parsable".to_string()];
        if let Some(job) = &last {
            args.extend(after(job));
        }
        args.push(path.display().to_string());
        let id = sbatch(&args)?;
        last = Some(id.clone());
        Ok(id)
    };
    for (path, phase, units) in jobs {
        match submit_after(&path) {
            Ok(id) => records.push(Submission {
                array: id,
                units,
                merge: None,
                phase,
            }),
            Err(e) => {
                for r in &records {
                    record(&out, r)?;
                }
                return Err(e);
            }
        }
    }
    let merge = submit_after(&merge_path);
    let ids: Vec<String> = records.iter().map(|r| r.array.clone()).collect();
    if let (Ok(id), Some(latest)) = (&merge, records.last_mut()) {
        latest.merge = Some(id.clone());
    }
    for r in &records {
        record(&out, r)?;
    }
    let merge = merge.map_err(|e| {
        format!(
            "jobs {} submitted, but their merge job not: {e}; run `photonqa merge {}` when they are done",
            ids.join(", "),
            out.display()
        )
    })?;
    let mut submitted: Vec<usize> = work.arrays.into_iter().flat_map(|(_, u)| u).collect();
    submitted.sort_unstable();
    submitted.dedup();
    Ok(Submitted::Jobs {
        units: submitted,
        jobs: ids,
        merge,
    })
}

/// Runs `sbatch args` and returns the job id it prints (`--parsable`: `id` or `id;cluster`).
fn sbatch(args: &[String]) -> Result<String, String> {
    let output = Command::new("sbatch").args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "sbatch not found: `photonqa submit` needs Slurm's sbatch on PATH (run it on the cluster's login node), or --dry-run to print the scripts".to_string()
        } else {
            format!("cannot run sbatch: {e}")
        }
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "sbatch {} failed: {}",
            args.join(" "),
            stderr.trim().replace('\n', " ")
        ));
    }
    let id = stdout.trim().split(';').next().unwrap_or_default().trim();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("sbatch printed no job id: '{}'", stdout.trim()));
    }
    Ok(id.to_string())
}

/// Where a directory's units stand, as `photonqa status` prints it.
pub fn status(scenario: &Scenario, out: &Path) -> Result<String, String> {
    let units = units::survey(scenario, out)?;
    let submissions = submissions(out)?;
    let (queue, note) = match queue(&submissions) {
        Ok(Some(queue)) => (Some(queue), None),
        Ok(None) => (
            None,
            Some("squeue not found: queued units count as pending"),
        ),
        Err(e) => {
            eprintln!("photonqa: {e}");
            (None, Some("squeue failed: queued units count as pending"))
        }
    };
    let tracked = track(&units, &submissions, queue.as_ref(), out);
    let count = |f: &dyn Fn(&Tracked) -> bool| tracked.iter().filter(|t| f(t)).count();
    let done = count(&|t| *t == Tracked::Files(UnitState::Done));
    // A damaged unit needs a rerun as a failed one does.
    let damaged = count(&|t| matches!(t, Tracked::Files(UnitState::Damaged(_))));
    let failed = damaged + count(&|t| matches!(t, Tracked::Files(UnitState::Failed(_))));
    let pending = count(&|t| *t == Tracked::Files(UnitState::Pending));
    let running = count(&|t| matches!(t, Tracked::Queued(s) if s == "RUNNING"));
    let queued = count(&|t| matches!(t, Tracked::Queued(s) if s != "RUNNING"));
    let mut text = format!(
        "{}: {} units of scenario {}: {done} done, {failed} failed{}, {running} running, {queued} queued, {pending} pending\n",
        out.display(),
        units.len(),
        scenario.name,
        match damaged {
            0 => String::new(),
            n => format!(" ({n} damaged)"),
        }
    );
    if let Some(note) = note {
        let _ = writeln!(text, "note: {note}");
    }
    if let Some(manifest) = Manifest::read(out)?.filter(|m| m.slabs > 1) {
        let prepare = match slabs::prepare_state(out)? {
            Ok(true) => "done".to_string(),
            Ok(false) => "not yet".to_string(),
            Err(why) => format!("failed: {why}"),
        };
        let _ = writeln!(
            text,
            "slab units: {} per point, phases {}; prepare {prepare}",
            manifest.slabs,
            slabs::phases(scenario)
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for (unit, t) in units.iter().zip(&tracked) {
        if let Tracked::Files(UnitState::Damaged(why)) = t {
            let _ = writeln!(text, "damaged {} ({}): {why}", unit.index, unit.label);
        }
        if let Tracked::Files(UnitState::Failed(why)) = t {
            let _ = writeln!(text, "failed {} ({}): {why}", unit.index, unit.label);
            if let Some(log) = task_log(out, &submissions, unit.index).filter(|l| l.is_file()) {
                let _ = writeln!(text, "  log: {}", log.display());
            }
        }
    }
    let list = |wanted: &dyn Fn(&Tracked) -> bool| {
        let indices: Vec<usize> = units
            .iter()
            .zip(&tracked)
            .filter(|(_, t)| wanted(t))
            .map(|(u, _)| u.index)
            .collect();
        index_ranges(&indices)
    };
    if pending > 0 {
        let _ = writeln!(
            text,
            "pending: {}",
            list(&|t| *t == Tracked::Files(UnitState::Pending))
        );
    }
    if running + queued > 0 {
        let _ = writeln!(
            text,
            "in the queue: {}",
            list(&|t| matches!(t, Tracked::Queued(_)))
        );
    }
    for (id, what, state, reason) in queue.iter().flat_map(|q| &q.singles) {
        let _ = writeln!(text, "{what} job {id}: {state} ({reason})");
    }
    let results = out.join("results.jsonl");
    match fs::read_to_string(&results) {
        Ok(log) => {
            let _ = writeln!(
                text,
                "merged: {} holds {} of {} points",
                results.display(),
                log.lines().filter(|l| !l.trim().is_empty()).count(),
                units.len()
            );
        }
        Err(_) if done + failed == units.len() => {
            let _ = writeln!(
                text,
                "not merged yet: `photonqa merge {}` writes the results",
                out.display()
            );
        }
        Err(_) => {}
    }
    if failed + pending > 0 {
        let _ = writeln!(
            text,
            "`photonqa submit {} --out {}` runs the failed and pending units again",
            scenario.path.display(),
            out.display()
        );
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            scenario: PathBuf::from("/data/s c/seed.toml"),
            name: "seed x".into(),
            scenario_hash: "h".into(),
            units: 9,
            slabs: 1,
        }
    }

    #[test]
    fn array_script_lists_the_units_and_the_resources() {
        let options = SlurmOptions {
            partition: Some("short".into()),
            time: Some("00:30:00".into()),
            mem: Some("4G".into()),
            cpus_per_task: Some(4),
            max_parallel: Some(2),
            extra: vec!["--account=xyz".into()],
            memory_budget: 1 << 30,
            threads: None,
            slabs: None,
            allow_commands: true,
        };
        let s = scripts(
            Path::new("/opt/bin/photonqa"),
            &manifest(),
            Path::new("/scratch/run"),
            &Work {
                prepare: false,
                arrays: vec![(None, vec![0, 1, 2, 5, 7, 8])],
            },
            &options,
        );
        assert!(s.prepare.is_none());
        assert_eq!(
            s.arrays[0].1,
            "#!/bin/bash
# Units of photonqa scenario seed_x: one array task per working point (its sweep index).
# Written by `photonqa submit`; `photonqa status '/scratch/run'` tells which are done.
#SBATCH --job-name=photonqa-seed_x
#SBATCH --array=0-2,5,7-8%2
#SBATCH --output=/scratch/run/slurm/%A_%a.out
#SBATCH --partition=short
#SBATCH --time=00:30:00
#SBATCH --mem=4G
#SBATCH --cpus-per-task=4
#SBATCH --account=xyz
set -euo pipefail
exec '/opt/bin/photonqa' unit '/data/s c/seed.toml' --out '/scratch/run' --index \"$SLURM_ARRAY_TASK_ID\" --memory-budget 1073741824 --threads 4 --allow-commands
"
        );
        assert!(
            s.merge.contains(
                "\n#SBATCH --job-name=photonqa-seed_x-merge\n#SBATCH --output=/scratch/run/slurm/merge-%j.out\n#SBATCH --partition=short\n"
            ),
            "{}",
            s.merge
        );
        assert!(s.merge.ends_with(
            "exec '/opt/bin/photonqa' merge '/scratch/run' --memory-budget 1073741824 --threads 4 --allow-commands\n"
        ));
    }

    #[test]
    fn slab_units_run_as_a_prepare_job_and_an_array_per_phase() {
        let manifest = Manifest {
            slabs: 3,
            ..manifest()
        };
        let work = Work {
            prepare: true,
            arrays: vec![
                (Some(Phase::Measure), vec![4]),
                (Some(Phase::Histogram), (0..9).collect()),
            ],
        };
        let options = SlurmOptions {
            memory_budget: 1 << 30,
            ..SlurmOptions::default()
        };
        let s = scripts(
            Path::new("/opt/bin/photonqa"),
            &manifest,
            Path::new("/scratch/run"),
            &work,
            &options,
        );
        let prepare = s.prepare.unwrap();
        assert!(
            prepare.contains("#SBATCH --job-name=photonqa-seed_x-prepare\n")
                && prepare.ends_with(
                    "exec '/opt/bin/photonqa' unit '/data/s c/seed.toml' --out '/scratch/run' --prepare --slabs 3 --memory-budget 1073741824\n"
                ),
            "{prepare}"
        );
        assert_eq!(s.arrays.len(), 2);
        let (phase, histogram) = &s.arrays[1];
        assert_eq!(*phase, Some(Phase::Histogram));
        assert!(
            histogram.contains("# Units of photonqa scenario seed_x: phase histogram of the slab units: one array task per point x slab (3 slabs per point).\n")
                && histogram.contains("#SBATCH --job-name=photonqa-seed_x-histogram\n#SBATCH --array=0-8\n")
                && histogram.ends_with("--index \"$SLURM_ARRAY_TASK_ID\" --phase histogram --memory-budget 1073741824\n"),
            "{histogram}"
        );
        assert!(s.arrays[0].1.contains("#SBATCH --array=4\n"));
    }

    #[test]
    fn bad_sbatch_values_are_refused() {
        let spaced = SlurmOptions {
            partition: Some("a b".into()),
            ..SlurmOptions::default()
        };
        assert!(spaced.check().unwrap_err().contains("--partition"));
        let extra = SlurmOptions {
            extra: vec!["account=x".into()],
            ..SlurmOptions::default()
        };
        assert!(extra.check().unwrap_err().contains("--sbatch"));
    }
}
