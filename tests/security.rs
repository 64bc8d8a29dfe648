//! A scenario file is input from someone else (a colleague, a merge request), so:
//!
//! - the shell commands it declares (`command` stages and analyses) run only with the user's
//!   consent, `--allow-commands` or PHOTONQA_ALLOW_COMMANDS=1; without it every command that
//!   would run them refuses the scenario in one line listing them, and `validate` lists them;
//! - a program photonqa starts leaves no process behind when it times out or when photonqa is
//!   stopped (SIGTERM); SIGKILL of photonqa still takes the program's shell with it;
//! - its name cannot make `run` write outside `runs/`, nor add lines to the Slurm scripts; and
//!   the scripts pass hostile paths and options to photonqa and sbatch as plain words.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{BIN, assert_ok, differ, photonqa, photonqa_env, reference_volume, sorted_rows, text};

/// Checks that `out` is a user error, exit code 2 and one line on stderr containing every one
/// of `needles`; returns the line.
fn refused(out: &Output, needles: &[&str]) -> String {
    let stderr = text(&out.stderr);
    if out.status.code() != Some(2) || stderr.lines().count() != 1 {
        differ(
            "expected a one-line user error",
            "exit code Some(2), photonqa: <one line>",
            &format!("exit code {:?}\n{stderr}", out.status.code()),
        );
    }
    for needle in needles {
        assert!(stderr.contains(needle), "expected {needle:?} in {stderr}");
    }
    stderr
}

// ---------------------------------------------------------------------------------------------
// Commands need consent

/// A `command` stage (whose encode leaves a file `ran` behind) and a `command` analysis.
const WITH_COMMANDS: &str = r#"[scenario]
name = "commands"
chunk_slices = 64
[input]
source = "VOLUME"
[[pipeline]]
stage = "command"
encode = "touch ran; gzip -c {input} > {output}"
decode = "gzip -dc {input} > {output}"
[metrics]
distortion = ["mse"]
[[analysis]]
kind = "command"
run = 'echo "{}" # {original} {decoded}'
"#;

#[test]
fn scenario_commands_run_only_with_consent() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    fs::write(
        dir.join("s.toml"),
        WITH_COMMANDS.replace("VOLUME", &reference_volume()),
    )
    .unwrap();
    let listed = [
        "line 7, stage command encode: touch ran; gzip -c {input} > {output}",
        "line 7, stage command decode: gzip -dc {input} > {output}",
        "line 13, analysis command run: echo \"{}\" # {original} {decoded}",
    ];
    let expected = format!(
        "photonqa: s.toml: runs shell commands, refused without --allow-commands (or PHOTONQA_ALLOW_COMMANDS=1): {}\n",
        listed.join("; ")
    );
    let refusing: [&[&str]; 6] = [
        &["run", "s.toml", "--out", "out"],
        &["check", "s.toml", "--baseline", "b.json"],
        &["bless", "s.toml", "--baseline", "b.json"],
        &["submit", "s.toml", "--out", "sub", "--dry-run"],
        &["unit", "s.toml", "--out", "u", "--index", "0"],
        &["merge", "u", "--scenario", "s.toml"],
    ];
    for args in refusing {
        for out in [
            photonqa(dir, args),
            photonqa_env(dir, args, ("PHOTONQA_ALLOW_COMMANDS", "0")),
        ] {
            let stderr = refused(&out, &[]);
            if stderr != expected {
                differ(&format!("photonqa {}", args.join(" ")), &expected, &stderr);
            }
        }
    }
    for written in ["ran", "out", "b.json", "sub", "u"] {
        assert!(!dir.join(written).exists(), "{written} was written");
    }

    // validate says what would run, and succeeds.
    let out = photonqa(dir, &["validate", "s.toml"]);
    assert_ok(&out, "photonqa validate");
    let stdout = text(&out.stdout);
    let listing = format!(
        "s.toml: runs 3 shell commands through sh -c; run, check, bless, submit, merge and unit need --allow-commands (or PHOTONQA_ALLOW_COMMANDS=1):\n  {}\n",
        listed.join("\n  ")
    );
    assert!(stdout.ends_with(&listing), "{stdout}");

    // submit passes the consent on to the tasks and the merge it writes.
    let out = photonqa(
        dir,
        &[
            "submit",
            "s.toml",
            "--out",
            "sub",
            "--dry-run",
            "--allow-commands",
        ],
    );
    assert_ok(&out, "photonqa submit --dry-run --allow-commands");
    let scripts = text(&out.stdout);
    let execs: Vec<&str> = scripts.lines().filter(|l| l.starts_with("exec ")).collect();
    assert_eq!(execs.len(), 2, "{scripts}");
    assert!(
        execs[0].contains("' unit '") && execs[1].contains("' merge '"),
        "{scripts}"
    );
    for exec in execs {
        assert!(
            exec.ends_with(" --memory-budget 1073741824 --allow-commands"),
            "{exec}"
        );
    }

    // With consent (here the environment variable), the commands run.
    let out = photonqa_env(
        dir,
        &["run", "s.toml", "--out", "out"],
        ("PHOTONQA_ALLOW_COMMANDS", "1"),
    );
    assert_ok(&out, "photonqa run with PHOTONQA_ALLOW_COMMANDS=1");
    assert!(dir.join("ran").exists());
    let rows = sorted_rows(&dir.join("out"));
    assert_eq!(rows[0]["status"], "ok", "{}", rows[0]);
    assert_eq!(rows[0]["distortion"]["mse"], 0.0);
    assert_eq!(rows[0]["science"]["command"], serde_json::json!({}));
}

// ---------------------------------------------------------------------------------------------
// Programs end with photonqa

/// The environment variable photonqa's programs inherit in these tests, telling them apart from
/// every other process.
const MARKER: &str = "PHOTONQA_TEST_MARKER";

/// A scenario (one chunk: one program at a time) whose codec is `encode`, then gzip.
fn program_scenario(dir: &Path, encode: &str, timeout: f64) {
    let text = format!(
        "[scenario]\nname = \"programs\"\nchunk_slices = 64\n[input]\nsource = \"{}\"\n\
         [[pipeline]]\nstage = \"command\"\nencode = \"{encode}\"\n\
         decode = \"gzip -dc {{input}} > {{output}}\"\ntimeout = {timeout}\n\
         [metrics]\ndistortion = [\"mse\"]\n",
        reference_volume()
    );
    fs::write(dir.join("s.toml"), text).unwrap();
}

/// photonqa running the scenario in `dir`, its programs marked with `marker`.
fn photonqa_marked(dir: &Path, marker: &str) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["run", "s.toml", "--out", "out", "--allow-commands"])
        .env(MARKER, marker)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// The processes alive with `MARKER=marker` in their environment (a zombie's is empty): what
/// a photonqa started with that marker left running.
fn survivors(marker: &str) -> Vec<u32> {
    let entry = format!("{MARKER}={marker}");
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == entry.as_bytes()))
        })
        .collect()
}

/// Whether process `pid` runs (exists and is not a zombie).
fn running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next());
        state != Some("Z")
    })
}

/// Polls `done` until it holds or a generous minute passed (killing a process takes
/// microseconds; the programs below sleep ten minutes); whether it held.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

/// Kills what a failed check left running, so that a failing test leaves nothing either.
fn kill_all(pids: &[u32]) {
    for pid in pids {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

/// Asserts that no process marked `marker` is left (eventually), killing any that is.
fn assert_none_left(marker: &str, what: &str) {
    if !eventually(|| survivors(marker).is_empty()) {
        let left = survivors(marker);
        let commands: Vec<String> = left
            .iter()
            .map(|pid| {
                fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                    .unwrap_or_default()
            })
            .collect();
        kill_all(&left);
        panic!("{what}: processes left running: {commands:?}");
    }
}

/// The regression of the issue: `sleep N ; cp {input} {output}` past its timeout used to be
/// killed as `sh` only, and `sleep` ran on after photonqa exited.
#[test]
fn a_timed_out_program_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().display().to_string();
    program_scenario(dir.path(), "sleep 600 ; cp {input} {output}", 1.0);
    let out = photonqa_marked(dir.path(), &marker).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows = sorted_rows(&dir.path().join("out"));
    let error = rows[0]["error"].as_str().unwrap();
    assert!(
        error.contains("timed out after 1 s and was killed"),
        "{error}"
    );
    assert_none_left(&marker, "after photonqa returned");
}

/// Stopped by SIGTERM (as `scancel` and `kill` stop it), photonqa kills its programs, then
/// dies of the signal as it would have.
#[test]
fn a_stopped_photonqa_leaves_no_process_behind() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().display().to_string();
    program_scenario(
        dir.path(),
        "touch started; sleep 600 ; cp {input} {output}",
        3600.0,
    );
    let mut child = photonqa_marked(dir.path(), &marker).spawn().unwrap();
    let started = eventually(|| dir.path().join("started").exists());
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(started && term.success(), "the program did not start");
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status}");
    assert_none_left(&marker, "after SIGTERM of photonqa");
}

/// SIGKILL cannot be caught: the program's shell dies with photonqa (the parent-death signal);
/// what the shell started runs on until it ends (see src/data/shell.rs).
#[test]
fn a_killed_photonqa_takes_the_programs_shell_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().display().to_string();
    program_scenario(
        dir.path(),
        "echo $$ > shell.pid; sleep 600 ; cp {input} {output}",
        3600.0,
    );
    let mut child = photonqa_marked(dir.path(), &marker).spawn().unwrap();
    let pid_file = dir.path().join("shell.pid");
    let shell =
        eventually(|| fs::read_to_string(&pid_file).is_ok_and(|p| p.ends_with('\n'))).then(|| {
            fs::read_to_string(&pid_file)
                .unwrap()
                .trim()
                .parse::<u32>()
                .unwrap()
        });
    child.kill().unwrap();
    child.wait().unwrap();
    let shell = shell.expect("the program did not start");
    let ended = eventually(|| !running(shell));
    kill_all(&survivors(&marker));
    assert!(ended, "the shell {shell} outlived photonqa's SIGKILL");
}

// ---------------------------------------------------------------------------------------------
// Names

/// A small scenario named `name` (a TOML string) without commands.
fn named(name: &str) -> String {
    format!(
        "[scenario]\nname = {name}\n[input]\nsource = \"{}\"\n[[pipeline]]\nstage = \"zstd\"\n\
         [metrics]\ndistortion = [\"mse\"]\n",
        reference_volume()
    )
}

/// `run` without `--out` writes into `runs/<name>`: a name with `..` or `/` used to write
/// outside it.
#[test]
fn a_scenario_name_cannot_leave_the_runs_folder() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path().canonicalize().unwrap();
    let work = root.join("work");
    fs::create_dir(&work).unwrap();
    let absolute = root.join("absolute").display().to_string();
    for name in ["../../escaped", "../escaped", &absolute, ".hidden", "a/b"] {
        fs::write(work.join("s.toml"), named(&format!("\"{name}\""))).unwrap();
        refused(
            &photonqa(&work, &["run", "s.toml"]),
            &[
                "photonqa: s.toml:2:8: scenario.name ",
                "must be letters, digits, '.', '_' or '-', not starting with '.'",
            ],
        );
    }
    let written: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(written, ["work"], "written beside work/");
    assert_eq!(
        fs::read_dir(&work).unwrap().count(),
        1,
        "only s.toml in work/"
    );
    // A safe name runs into runs/<name>.
    fs::write(work.join("s.toml"), named("\"v1.2_final-B\"")).unwrap();
    assert_ok(&photonqa(&work, &["run", "s.toml"]), "photonqa run");
    assert!(work.join("runs/v1.2_final-B/results.jsonl").is_file());
}

/// A name with a newline used to put a runnable line into array.sh and merge.sh, ahead of
/// their `#SBATCH` lines.
#[test]
fn a_scenario_name_cannot_add_lines_to_the_batch_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    fs::write(dir.join("s.toml"), named("\"x\\ntouch pwned\\n#\"")).unwrap();
    for args in [
        &["submit", "s.toml", "--out", "sub", "--dry-run"][..],
        &["validate", "s.toml"],
    ] {
        refused(
            &photonqa(dir, args),
            &["photonqa: s.toml:2:8: scenario.name \"x\\ntouch pwned\\n#\" must be letters"],
        );
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        }
        files.push(path);
    }
    files
}

/// Paths and `--sbatch` options with newlines, quotes, spaces, `$(...)`, backticks, `;`, `&`
/// and `|` reach photonqa and sbatch as they are: `bash -n` accepts the scripts, their
/// `#SBATCH` lines come first, and run (with a stub `sbatch`) they run the unit and the merge
/// of those very paths and nothing else.
#[test]
fn batch_scripts_pass_hostile_paths_as_plain_words() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path().canonicalize().unwrap();
    let folder = root.join("s $(touch pwned1) `touch pwned2` 'q' \"d\"\nx;y");
    fs::create_dir(&folder).unwrap();
    let scenario = folder.join("s.toml");
    fs::write(
        &scenario,
        named("\"hostile\"").replace(
            "stage = \"zstd\"\n",
            "stage = \"zstd\"\nlevel = { sweep = [1, 3] }\n",
        ),
    )
    .unwrap();
    let out = root.join("o$(touch${IFS}pwned3)`touch${IFS}pwned4`;x&y|z");
    // sbatch prints a job id, and nothing runs the scripts but this test.
    let bin = root.join("bin");
    fs::create_dir(&bin).unwrap();
    fs::write(
        bin.join("sbatch"),
        "#!/bin/sh\nn=$(cat \"$0.next\" 2>/dev/null || echo 100)\necho $((n + 1)) > \"$0.next\"\necho \"$n\"\n",
    )
    .unwrap();
    fs::set_permissions(bin.join("sbatch"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let submitted = Command::new(BIN)
        .arg("submit")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .args([
            "--sbatch=--comment=$(touch pwned5)",
            "--sbatch=--comment=`touch pwned6`",
        ])
        .env("PATH", &path)
        .current_dir(&root)
        .output()
        .unwrap();
    assert_ok(&submitted, "photonqa submit with a stub sbatch");
    let run = root.join("run");
    fs::create_dir(&run).unwrap();
    let bash = |script: &str, task: &str| {
        Command::new("bash")
            .arg(out.join("slurm").join(script))
            .env("SLURM_ARRAY_TASK_ID", task)
            .current_dir(&run)
            .output()
            .unwrap()
    };
    for script in ["array.sh", "merge.sh"] {
        let path = out.join("slurm").join(script);
        let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
        assert_ok(&check, &format!("bash -n {script}"));
        // The comments and #SBATCH lines, then one command (a quoted path may span lines).
        let text_ = fs::read_to_string(&path).unwrap();
        let (header, command) = text_.split_once("set -euo pipefail\n").unwrap();
        assert!(
            header.lines().all(|l| l.starts_with('#')),
            "{script}:\n{text_}"
        );
        assert!(command.starts_with("exec '"), "{script}:\n{text_}");
    }
    assert_ok(&bash("array.sh", "1"), "array.sh, task 1");
    let row = fs::read_to_string(out.join("units/1.json")).unwrap();
    assert!(row.contains("\"index\":1"), "{row}");
    // The merge gets the very directory: it finds unit 0 missing there.
    let merge = bash("merge.sh", "");
    refused(
        &merge,
        &[&format!(
            "{}: 1 of 2 units have no result yet (index 0)",
            out.display()
        )],
    );
    let pwned: Vec<_> = files_under(&root)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("pwned"))
        })
        .collect();
    assert!(pwned.is_empty(), "a script ran a word of a path: {pwned:?}");
}
