//! An interrupted sweep resumes without losing or duplicating a working point, and the rows it
//! ends with are those of an uninterrupted run.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{BIN, assert_ok, comparable, differ, photonqa, text};

/// Working points of the scenario below: quantize bits {4, 8} x deflate levels {1, 3, 5, 7, 9}.
const POINTS: usize = 10;

const SCENARIO: &str = r#"[scenario]
name = "resume"
chunk_slices = 16
[input]
source = "v.h5::/volume"
[[pipeline]]
stage = "quantize"
bits = { sweep = [4, 8] }
[[pipeline]]
stage = "deflate"
level = { range = [1, 9], steps = 5 }
"#;

/// A child process that is killed if the test panics before it is waited for.
struct Guard(Option<Child>);

impl Guard {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child still owned")
    }
    fn take(&mut self) -> Child {
        self.0.take().expect("child still owned")
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes the input of [`SCENARIO`] (`v.h5`, large enough for a test to catch a run before its
/// last point) and the scenario as `s.toml` into `d`.
fn write_sweep(d: &Path) {
    assert_ok(
        &photonqa(
            d,
            &[
                "gen",
                "porous-tomo",
                "--out",
                "v.h5",
                "--shape",
                "48,128,128",
            ],
        ),
        "gen",
    );
    std::fs::write(d.join("s.toml"), SCENARIO).unwrap();
}

/// A memory budget that holds a few of [`SCENARIO`]'s points in flight at a time: their rows
/// are written batch by batch, a pass over the input apart. (With the default budget all ten
/// points are one batch, whose rows are written within a few milliseconds of each other: too
/// quickly, once the metrics got faster, for a test to catch the run between two rows.)
const BUDGET: &str = "6MiB";

/// Starts `photonqa run s.toml --out OUT --threads 1 --memory-budget BUDGET` in `d`, killed if
/// the test panics.
fn spawn_run(d: &Path, out: &str, stdout: Stdio, stderr: Stdio) -> Guard {
    Guard(Some(
        Command::new(BIN)
            .args(["run", "s.toml", "--out", out, "--threads", "1"])
            .args(["--memory-budget", BUDGET])
            .current_dir(d)
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap(),
    ))
}

/// Returns as soon as the results log `log` holds a complete row; panics if `child` (`what`)
/// ends before, or after 120 s without a row.
fn wait_for_a_row(child: &mut Child, log: &Path, what: &str) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "{what} ended ({status}) before it logged a row: make the input or the sweep bigger so that this test catches it running"
            );
        }
        if !lines(&std::fs::read(log).unwrap_or_default()).is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no row after 120 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The complete lines (up to the last newline) of a results log.
fn complete_part(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    &bytes[..end]
}

fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    complete_part(bytes)
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect()
}

/// Rows of a results log by point id: the parsed row and the line as written.
fn rows_by_id(bytes: &[u8]) -> BTreeMap<String, (Value, String)> {
    lines(bytes)
        .into_iter()
        .map(|l| {
            let line = text(l);
            let row: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON row ({e}): {line}"));
            (
                row["point_id"].as_str().expect("point_id").to_string(),
                (row, line),
            )
        })
        .collect()
}

#[test]
fn an_interrupted_sweep_resumes_without_losing_or_repeating_a_point() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_sweep(d);
    let validate = photonqa(d, &["validate", "s.toml"]);
    assert_ok(&validate, "validate");
    assert!(
        text(&validate.stdout).contains(&format!(" {POINTS} working points")),
        "{}",
        text(&validate.stdout)
    );

    // The reference: an uninterrupted run, on the other core while the interrupted one runs.
    let mut fresh = spawn_run(d, "fresh", Stdio::piped(), Stdio::piped());

    // The run to interrupt: killed as soon as its first row is complete.
    let mut interrupted = spawn_run(d, "out", Stdio::null(), Stdio::null());
    let child = interrupted.child();
    let log = d.join("out/results.jsonl");
    wait_for_a_row(child, &log, "the run to interrupt");
    child.kill().unwrap();
    let killed = child.id();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the run exited on its own ({status}) before the kill: it was not interrupted"
    );
    // SIGKILL left the lock file naming the run; the system released its lock (the resume
    // below takes it).
    let stale = std::fs::read_to_string(d.join("out/photonqa.lock")).unwrap();
    assert!(
        stale.starts_with(&format!("photonqa run, pid {killed}")),
        "{stale:?}"
    );
    let at_kill = std::fs::read(&log).unwrap();
    let recorded: Vec<Vec<u8>> = lines(&at_kill).into_iter().map(<[u8]>::to_vec).collect();
    assert!(
        recorded.len() < POINTS,
        "all {POINTS} rows were written before the kill: the run was not interrupted; make it longer"
    );

    // What an interrupted append leaves: half a row, no newline.
    let torn = &recorded[0][..recorded[0].len() / 2];
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(torn).unwrap();
    drop(file);
    let before_resume = std::fs::read(&log).unwrap();
    assert_ne!(
        before_resume.last(),
        Some(&b'\n'),
        "the log should end in a torn line"
    );

    let resumed = photonqa(
        d,
        &[
            "run",
            "s.toml",
            "--out",
            "out",
            "--resume",
            "--threads",
            "1",
            "--memory-budget",
            BUDGET,
        ],
    );
    assert_ok(&resumed, "run --resume");
    let summary = text(&resumed.stdout);
    let expected_summary = format!(
        "{} working points measured, {} already in",
        POINTS - recorded.len(),
        recorded.len()
    );
    if !summary.contains(&expected_summary) {
        differ("the resumed run's summary", &expected_summary, &summary);
    }

    // Exactly one row per working point; the rows from before the kill unchanged.
    let last = std::fs::read(&log).unwrap();
    assert_eq!(
        last.last(),
        Some(&b'\n'),
        "results.jsonl must end with a complete line"
    );
    let final_lines = lines(&last);
    let ids: Vec<String> = final_lines
        .iter()
        .map(|l| {
            serde_json::from_slice::<Value>(l)
                .unwrap_or_else(|e| panic!("torn or invalid row ({e}): {}", text(l)))["point_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    if final_lines.len() != POINTS || unique.len() != POINTS {
        differ(
            "rows after the resume",
            &format!("{POINTS} rows with distinct point_id"),
            &text(&last),
        );
    }
    for (i, row) in recorded.iter().enumerate() {
        if final_lines[i] != row.as_slice() {
            differ(
                &format!("row {} recorded before the kill changed", i + 1),
                &text(row),
                &text(final_lines[i]),
            );
        }
    }
    let rows = rows_by_id(&last);
    let indices: BTreeSet<u64> = rows
        .values()
        .map(|(r, _)| r["index"].as_u64().expect("index"))
        .collect();
    assert_eq!(
        indices,
        (0..POINTS as u64).collect::<BTreeSet<_>>(),
        "indices of the rows"
    );

    // Same rows as the uninterrupted run (timing fields excepted).
    let fresh = fresh.take().wait_with_output().unwrap();
    assert_ok(&fresh, "the uninterrupted run");
    let reference = rows_by_id(&std::fs::read(d.join("fresh/results.jsonl")).unwrap());
    assert_eq!(reference.len(), POINTS, "rows of the uninterrupted run");
    for (id, (_, expected)) in &reference {
        let Some((row, actual)) = rows.get(id) else {
            differ(
                "a working point is missing after the resume",
                id,
                &ids.join("\n"),
            );
        };
        assert_eq!(row["status"], "ok", "{id}: {actual}");
        assert!(
            row["rate"]["compressed_bytes"].as_u64().unwrap() > 0,
            "{actual}"
        );
        let (expected, actual) = (comparable(expected), comparable(actual));
        if expected != actual {
            differ(
                &format!("row {id} differs from the uninterrupted run (timing fields excepted)"),
                &expected,
                &actual,
            );
        }
    }

    // results.csv: every point once, in index order.
    let csv = std::fs::read_to_string(d.join("out/results.csv")).unwrap();
    let csv_lines: Vec<&str> = csv.lines().collect();
    assert_eq!(csv_lines.len(), POINTS + 1, "results.csv lines:\n{csv}");
    assert!(
        csv_lines[0].starts_with("point_id,index,status,"),
        "{}",
        csv_lines[0]
    );
    let mut csv_ids = BTreeSet::new();
    for (i, line) in csv_lines[1..].iter().enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(
            cells[1],
            i.to_string(),
            "results.csv is not in index order:\n{csv}"
        );
        assert_eq!(rows[cells[0]].0["index"].as_u64(), Some(i as u64), "{line}");
        csv_ids.insert(cells[0]);
    }
    assert_eq!(csv_ids.len(), POINTS, "results.csv repeats a point:\n{csv}");
    // Every value the same as in the uninterrupted run's results.csv, timing columns excepted.
    let fresh_csv = std::fs::read_to_string(d.join("fresh/results.csv")).unwrap();
    assert_same_csv(&fresh_csv, &csv, &["encode_mb_s", "decode_mb_s"]);
}

/// Sends `signal` (`STOP`, `CONT`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal} {pid}: {sent}");
}

/// Asserts that `out` is the refusal of a busy directory `dir`: exit code 2 and one line naming
/// the `photonqa run` that holds it, with its pid.
fn assert_busy(out: &std::process::Output, dir: &str, pid: u32, what: &str) {
    let stderr = text(&out.stderr);
    let expected = format!("photonqa: {dir}: in use by photonqa run, pid {pid}");
    if out.status.code() != Some(2) || stderr.lines().count() != 1 || !stderr.starts_with(&expected)
    {
        differ(
            &format!("{what} into a directory a run holds"),
            &format!("exit code 2 and one line: {expected} ..."),
            &format!("exit code {:?}\nstderr:\n{stderr}", out.status.code()),
        );
    }
}

/// A second `run` into a directory a run is writing (or a `run --resume`, a `merge`, a `unit`)
/// is refused with the holder's pid; the directory stays resumable, one row per point. Before
/// runs locked their directory both runs exited 0 with every point logged twice, and every
/// later `--resume` refused the log.
#[test]
fn a_second_run_into_a_busy_directory_is_refused_and_leaves_it_resumable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_sweep(d);
    let mut first = spawn_run(d, "out", Stdio::null(), Stdio::piped());
    let pid = first.child().id();
    // Held still (SIGSTOP) once it has logged a point, so that the others meet it there.
    let log = d.join("out/results.jsonl");
    wait_for_a_row(first.child(), &log, "the first run");
    signal(pid, "STOP");
    if let Some(status) = first.child().try_wait().unwrap() {
        panic!("the first run ended ({status}) before it was stopped: make the input bigger");
    }
    for args in [
        &["run", "s.toml", "--out", "out", "--resume"][..],
        &["run", "s.toml", "--out", "out"],
        &["merge", "out", "--scenario", "s.toml"],
        &["unit", "s.toml", "--out", "out", "--index", "0"],
    ] {
        assert_busy(&photonqa(d, args), "out", pid, &args.join(" "));
    }
    let lock = d.join("out/photonqa.lock");
    let held = std::fs::read_to_string(&lock).unwrap();
    assert!(
        held.starts_with(&format!("photonqa run, pid {pid}")),
        "{held:?}"
    );
    signal(pid, "CONT");
    let finished = first.take().wait_with_output().unwrap();
    assert_ok(&finished, "the first run");
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        "",
        "the lock names no holder after it"
    );
    assert!(
        !d.join("out/units").exists(),
        "the refused unit wrote into out/units"
    );

    let log = std::fs::read(&log).unwrap();
    assert_eq!(rows_by_id(&log).len(), POINTS, "{}", text(&log));
    assert_eq!(
        lines(&log).len(),
        POINTS,
        "a point logged twice:\n{}",
        text(&log)
    );
    let resumed = photonqa(d, &["run", "s.toml", "--out", "out", "--resume"]);
    assert_ok(&resumed, "run --resume");
    assert!(
        text(&resumed.stdout).contains(&format!("0 working points measured, {POINTS} already in")),
        "{}",
        text(&resumed.stdout)
    );
    assert_eq!(std::fs::read(d.join("out/results.jsonl")).unwrap(), log);
}

/// A log with a point twice (what two runs into one directory left before runs locked it)
/// resumes: the first row is kept, the later one dropped with a note naming both lines.
#[test]
fn resume_keeps_the_first_row_of_a_point_logged_twice_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_small_input(d);
    std::fs::write(d.join("a.toml"), small_scenario("[1, 3]")).unwrap();
    assert_ok(&photonqa(d, &["run", "a.toml", "--out", "out"]), "run");
    let log = d.join("out/results.jsonl");
    let written = std::fs::read(&log).unwrap();
    let first: Value = serde_json::from_slice(lines(&written)[0]).unwrap();
    let id = first["point_id"].as_str().unwrap().to_string();
    // The same point again, as another run measured it (other timings).
    let mut again = first.clone();
    again["rate"]["encode_mb_s"] = Value::from(0.5);
    let mut doubled = written.clone();
    doubled.extend_from_slice(format!("{again}\n").as_bytes());
    std::fs::write(&log, &doubled).unwrap();

    let resumed = photonqa(d, &["run", "a.toml", "--out", "out", "--resume"]);
    assert_ok(&resumed, "run --resume of a log with a point twice");
    let expected = format!(
        "photonqa: out/results.jsonl:3: point {id} was measured before, on line 1; that row is kept, this one dropped\n"
    );
    if text(&resumed.stderr) != expected {
        differ("the note of the resume", &expected, &text(&resumed.stderr));
    }
    assert!(
        text(&resumed.stdout).contains("0 working points measured, 2 already in"),
        "{}",
        text(&resumed.stdout)
    );
    if std::fs::read(&log).unwrap() != written {
        differ(
            "results.jsonl after the resume",
            &text(&written),
            &text(&std::fs::read(&log).unwrap()),
        );
    }
}

/// Compares two results.csv texts cell by cell (columns named in `skip` excepted) and lists
/// every differing cell.
fn assert_same_csv(expected: &str, actual: &str, skip: &[&str]) {
    let table = |t: &str| -> Vec<Vec<String>> {
        t.lines()
            .map(|l| l.split(',').map(String::from).collect())
            .collect()
    };
    let (e, a) = (table(expected), table(actual));
    if e.len() != a.len() || e[0] != a[0] {
        differ("results.csv has other rows or columns", expected, actual);
    }
    let mut diffs = Vec::new();
    for (row, (er, ar)) in e.iter().zip(&a).enumerate().skip(1) {
        for (col, name) in e[0].iter().enumerate() {
            if skip.contains(&name.as_str()) {
                continue;
            }
            if er.get(col) != ar.get(col) {
                diffs.push(format!(
                    "line {} ({}), {name}: {:?} vs {:?}",
                    row + 1,
                    er[0],
                    er.get(col),
                    ar.get(col)
                ));
            }
        }
    }
    if !diffs.is_empty() {
        differ(
            &format!(
                "{} cells of results.csv differ (expected vs actual)",
                diffs.len()
            ),
            expected,
            &format!("{actual}\ndifferences:\n{}", diffs.join("\n")),
        );
    }
}

fn write_small_input(dir: &Path) {
    let array = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[8, 16, 16]), |ix| {
        ((ix[0] * 7 + ix[1] * 3 + ix[2]) % 17) as f32 * 0.25
    });
    photonqa::data::npy::write_npy(
        &dir.join("v.npy"),
        &photonqa::data::IntoNdArray::into_nd(array),
    )
    .unwrap();
}

fn small_scenario(levels: &str) -> String {
    format!(
        "[scenario]\nname = \"small\"\n[input]\nsource = \"v.npy\"\n[[pipeline]]\nstage = \"zstd\"\nlevel = {{ sweep = {levels} }}\n"
    )
}

#[test]
fn resume_with_another_scenario_is_an_error_naming_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_small_input(d);
    std::fs::write(d.join("a.toml"), small_scenario("[1, 3]")).unwrap();
    std::fs::write(d.join("b.toml"), small_scenario("[1, 5]")).unwrap();
    assert_ok(
        &photonqa(d, &["run", "a.toml", "--out", "out"]),
        "run a.toml",
    );
    let before = std::fs::read(d.join("out/results.jsonl")).unwrap();
    let first: Value = serde_json::from_slice(lines(&before)[0]).unwrap();
    let first_id = first["point_id"].as_str().unwrap().to_string();

    let out = photonqa(d, &["run", "b.toml", "--out", "out", "--resume"]);
    let stderr = text(&out.stderr);
    let described = format!("exit code {:?}\nstderr:\n{stderr}", out.status.code());
    if out.status.code() != Some(2)
        || stderr.lines().count() != 1
        || !stderr.starts_with("photonqa: ")
        || stderr.contains("panicked")
    {
        differ(
            "resume with another scenario",
            "exit code 2 and one line `photonqa: ...`",
            &described,
        );
    }
    for needle in ["results.jsonl:1:", first_id.as_str(), "another scenario"] {
        if !stderr.contains(needle) {
            differ(
                &format!("the error does not mention {needle:?}"),
                needle,
                &stderr,
            );
        }
    }
    assert!(
        std::fs::read(d.join("out/results.jsonl")).unwrap() == before,
        "the refused resume changed results.jsonl"
    );
}

#[test]
fn resuming_a_finished_run_measures_nothing_and_keeps_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_ok(
        &photonqa(
            d,
            &["gen", "porous-tomo", "--out", "v.h5", "--shape", "32,32,32"],
        ),
        "gen",
    );
    std::fs::write(
        d.join("a.toml"),
        "[scenario]\nname = \"noop\"\n[input]\nsource = \"v.h5::/volume\"\n\
         [[pipeline]]\nstage = \"quantize\"\nbits = { range = [1, 8], steps = 8 }\n",
    )
    .unwrap();
    assert_ok(&photonqa(d, &["run", "a.toml", "--out", "out"]), "run");
    let log = std::fs::read(d.join("out/results.jsonl")).unwrap();
    let csv = std::fs::read_to_string(d.join("out/results.csv")).unwrap();
    let again = photonqa(d, &["run", "a.toml", "--out", "out", "--resume"]);
    assert_ok(&again, "run --resume");
    let summary = text(&again.stdout);
    if !summary.contains("0 working points measured, 8 already in") {
        differ(
            "summary of a resume with nothing left",
            "0 working points measured, 8 already in ...",
            &summary,
        );
    }
    assert_eq!(
        summary.lines().filter(|l| l.starts_with("wp-")).count(),
        8,
        "table:\n{summary}"
    );
    assert!(
        std::fs::read(d.join("out/results.jsonl")).unwrap() == log,
        "results.jsonl changed"
    );
    // Nothing was measured: results.csv must be rewritten with exactly the same values (the
    // values read back from results.jsonl must be the values that were written).
    assert_same_csv(
        &csv,
        &std::fs::read_to_string(d.join("out/results.csv")).unwrap(),
        &[],
    );
}

#[test]
fn resume_measures_failed_points_again_and_keeps_one_row_per_point() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // float32 values 1000 + [0, 1e-3): fewer than 256 float32 steps, so Otsu's histogram is
    // refused (as by NumPy) when bitround keeps all 23 bits, and fine when it keeps none
    // (every value becomes 1024, a constant image).
    let array = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[4, 8, 8]), |ix| {
        1000.0f32 + ((ix[0] * 64 + ix[1] * 8 + ix[2]) % 13) as f32 * 7e-5
    });
    photonqa::data::npy::write_npy(
        &d.join("v.npy"),
        &photonqa::data::IntoNdArray::into_nd(array),
    )
    .unwrap();
    std::fs::write(
        d.join("a.toml"),
        "[scenario]\nname = \"retry\"\n[input]\nsource = \"v.npy\"\n\
         [[pipeline]]\nstage = \"bitround\"\nkeepbits = { sweep = [0, 23] }\n\
         [[pipeline]]\nstage = \"threshold\"\n",
    )
    .unwrap();
    assert_ok(&photonqa(d, &["run", "a.toml", "--out", "out"]), "run");
    let first = std::fs::read(d.join("out/results.jsonl")).unwrap();
    let rows = rows_by_id(&first);
    let statuses: BTreeSet<String> = rows
        .values()
        .map(|(row, _)| row["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        statuses,
        BTreeSet::from(["error".to_string(), "ok".to_string()]),
        "one point fails, one succeeds: {rows:?}"
    );

    let again = photonqa(d, &["run", "a.toml", "--out", "out", "--resume"]);
    assert_ok(&again, "run --resume");
    let summary = text(&again.stdout);
    assert!(
        summary.contains("1 working points measured, 1 already in"),
        "the failed point is measured again, the other kept:\n{summary}"
    );
    let after = rows_by_id(&std::fs::read(d.join("out/results.jsonl")).unwrap());
    assert_eq!(after.len(), 2, "one row per point: {after:?}");
    for (id, (row, line)) in &rows {
        if row["status"] == "ok" {
            assert_eq!(&after[id].1, line, "the measured row is kept as written");
        } else {
            let error = after[id].0["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("too narrow"),
                "the failure is recorded again: {error}"
            );
        }
    }
}
