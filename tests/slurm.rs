//! Units of work and Slurm. Units run apart (one per working point) merge into exactly the
//! results of one `photonqa run`; `submit --dry-run` prints the batch scripts; and on a real
//! Slurm cluster (`bash .ci/slurm start`) a sweep submitted as a job array, with one task failed
//! on purpose, is reported by `status`, completed by a second `submit` that runs only that unit,
//! and merged into the results of a local run. Without Slurm the cluster test says so and is
//! skipped, unless PHOTONQA_REQUIRE_SLURM=1 (set in CI).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

mod common;

use common::{BIN, assert_ok, comparable, differ, photonqa, photonqa_env, reference_volume, text};
use photonqa::runner::seal;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Four working points on the reference volume: quantize bits {4, 8} x deflate levels {1, 6}.
fn scenario() -> String {
    scenario_with("")
}

/// Metrics and analyses whose partials carry state across chunks (SSIM windows, histograms,
/// lag-1 pairs, ring sums, connected components), and thresholds fitted on the decoded data.
const SCIENCE: &str = r#"
[metrics]
distortion = ["mse", "psnr", "max_abs_error", "ssim", "error_histogram", "error_autocorrelation", "ks_test", "frc"]
[[analysis]]
kind = "segmentation"
[[analysis]]
kind = "porosity"
method = "otsu"
connectivity = "full"
"#;

/// The scenario of [`scenario`] with `more` appended, replacing its metrics when it has some.
fn scenario_with(more: &str) -> String {
    format!(
        r#"[scenario]
name = "slurm-small"
chunk_slices = 16
[input]
source = "{}"
[[pipeline]]
stage = "quantize"
dtype = "uint8"
bits = {{ sweep = [4, 8] }}
[[pipeline]]
stage = "deflate"
level = {{ sweep = [1, 6] }}
{metrics}[limits]
psnr = {{ min = 30.0 }}
"#,
        reference_volume(),
        metrics = if more.is_empty() {
            "[metrics]\ndistortion = [\"mse\", \"psnr\", \"max_abs_error\", \"ssim\"]\n"
        } else {
            more.trim_start()
        }
    )
}

const POINTS: usize = 4;

/// A fresh folder holding the scenario as `small.toml`, and with science as `science.toml`.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("small.toml"), scenario()).unwrap();
    fs::write(dir.path().join("science.toml"), scenario_with(SCIENCE)).unwrap();
    dir
}

fn stdout(out: &Output) -> String {
    text(&out.stdout)
}

/// The rows of `results.jsonl` by index, as written, timing fields blanked.
fn rows(dir: &Path) -> BTreeMap<u64, String> {
    let log = fs::read_to_string(dir.join("results.jsonl")).unwrap();
    log.lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            (row["index"].as_u64().unwrap(), comparable(line))
        })
        .collect()
}

/// `results.csv` without its timing columns.
fn csv_comparable(dir: &Path) -> String {
    let csv = fs::read_to_string(dir.join("results.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !header[i].ends_with("_mb_s"))
        .collect();
    std::iter::once(header.join(","))
        .chain(lines.map(|l| {
            let fields: Vec<&str> = l.split(',').collect();
            keep.iter()
                .map(|&i| fields[i])
                .collect::<Vec<_>>()
                .join(",")
        }))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The merged results in `b` equal the local run's in `a`: every row (counts to the last bit,
/// floats digit for digit, timings aside), the CSV and the recommendation.
fn assert_same_results(a: &Path, b: &Path) {
    let (local, merged) = (rows(a), rows(b));
    assert_eq!(local.len(), POINTS);
    for (index, row) in &local {
        match merged.get(index) {
            Some(m) if m == row => {}
            other => differ(
                &format!("merged row {index} differs from the local run's"),
                row,
                other.map_or("(missing)", |s| s.as_str()),
            ),
        }
    }
    assert_eq!(merged.len(), local.len());
    let (csv_a, csv_b) = (csv_comparable(a), csv_comparable(b));
    if csv_a != csv_b {
        differ("results.csv", &csv_a, &csv_b);
    }
    let recommendation = |d: &Path| fs::read_to_string(d.join("recommendation.json")).unwrap();
    let (ra, rb) = (recommendation(a), recommendation(b));
    if ra != rb {
        differ("recommendation.json", &ra, &rb);
    }
}

/// Bytes and modification time of a unit's row.
fn snapshot(path: &Path) -> (Vec<u8>, SystemTime) {
    (
        fs::read(path).unwrap(),
        fs::metadata(path).unwrap().modified().unwrap(),
    )
}

#[test]
fn dry_run_prints_the_batch_scripts_and_writes_nothing() {
    let dir = workdir();
    let root = dir.path().canonicalize().unwrap();
    let args = [
        "submit",
        "small.toml",
        "--out",
        "runs/b",
        "--dry-run",
        "--partition",
        "short",
        "--time",
        "00:10:00",
        "--mem",
        "2G",
        "--max-parallel",
        "2",
        "--memory-budget",
        "512MiB",
    ];
    let out = photonqa(&root, &args);
    assert_ok(&out, "photonqa submit --dry-run");
    let (b, exe, toml) = (
        root.join("runs/b").display().to_string(),
        Path::new(BIN).canonicalize().unwrap().display().to_string(),
        root.join("small.toml").display().to_string(),
    );
    let expected = format!(
        "# {b}/slurm/array.sh
#!/bin/bash
# Units of photonqa scenario slurm-small: one array task per working point (its sweep index).
# Written by `photonqa submit`; `photonqa status '{b}'` tells which are done.
#SBATCH --job-name=photonqa-slurm-small
#SBATCH --array=0-3%2
#SBATCH --output={b}/slurm/%A_%a.out
#SBATCH --partition=short
#SBATCH --time=00:10:00
#SBATCH --mem=2G
set -euo pipefail
exec '{exe}' unit '{toml}' --out '{b}' --index \"$SLURM_ARRAY_TASK_ID\" --memory-budget 536870912

# {b}/slurm/merge.sh
#!/bin/bash
# Merge of the units of photonqa scenario slurm-small into results.jsonl, results.csv and
# recommendation.json; submitted to start when every task of the array job succeeded.
#SBATCH --job-name=photonqa-slurm-small-merge
#SBATCH --output={b}/slurm/merge-%j.out
#SBATCH --partition=short
#SBATCH --time=00:10:00
#SBATCH --mem=2G
set -euo pipefail
exec '{exe}' merge '{b}' --memory-budget 536870912

# submit with:
sbatch --parsable {b}/slurm/array.sh
sbatch --parsable --dependency=afterok:<job id of {b}/slurm/array.sh> --kill-on-invalid-dep=yes {b}/slurm/merge.sh
"
    );
    if stdout(&out) != expected {
        differ("submit --dry-run", &expected, &stdout(&out));
    }
    assert!(!root.join("runs").exists(), "a dry run wrote files");
}

#[test]
fn units_run_apart_merge_into_the_results_of_one_run() {
    let dir = workdir();
    let d = dir.path();
    assert_ok(&photonqa(d, &["run", "small.toml", "--out", "a"]), "run");
    let unit = |index: &str| photonqa(d, &["unit", "small.toml", "--out", "b", "--index", index]);
    for index in ["3", "0", "1"] {
        assert_ok(&unit(index), "photonqa unit");
    }
    // A unit that fails before it has a row (fault injection) is recorded as failed.
    let failed = photonqa_env(
        d,
        &["unit", "small.toml", "--out", "b", "--index", "2"],
        ("PHOTONQA_FAIL_UNIT", "2"),
    );
    assert_eq!(failed.status.code(), Some(2));
    assert_eq!(
        text(&failed.stderr),
        "photonqa: unit 2 failed on purpose (PHOTONQA_FAIL_UNIT=2)\n"
    );
    let status = photonqa(d, &["status", "b", "--scenario", "small.toml"]);
    assert_ok(&status, "photonqa status");
    let status = stdout(&status);
    assert!(
        status.starts_with(
            "b: 4 units of scenario slurm-small: 3 done, 1 failed, 0 running, 0 queued, 0 pending\nfailed 2 (wp-"
        ) && status.contains("): unit 2 failed on purpose (PHOTONQA_FAIL_UNIT=2)\n"),
        "{status}"
    );
    let merge = photonqa(d, &["merge", "b", "--scenario", "small.toml"]);
    assert_eq!(merge.status.code(), Some(2));
    assert!(
        text(&merge.stderr).contains("b: 1 of 4 units have no result yet (index 2)"),
        "{}",
        text(&merge.stderr)
    );

    // A unit done is not run again.
    let row0 = d.join("b/units/0.json");
    let before = snapshot(&row0);
    let again = unit("0");
    assert_ok(&again, "photonqa unit (again)");
    assert!(
        stdout(&again).contains("done already in"),
        "{}",
        stdout(&again)
    );
    assert_eq!(snapshot(&row0), before);

    assert_ok(&unit("2"), "photonqa unit (after the failure)");
    assert!(!d.join("b/units/2.failed").exists());
    let merge = photonqa(d, &["merge", "b", "--scenario", "small.toml"]);
    assert_ok(&merge, "photonqa merge");
    assert!(
        stdout(&merge).contains("4 units merged into b/results.jsonl"),
        "{}",
        stdout(&merge)
    );
    assert_same_results(&d.join("a"), &d.join("b"));

    // A row with a byte changed (seeded) is reported damaged, refused, and run again.
    let mut rng = ChaCha8Rng::seed_from_u64(DAMAGE_SEED);
    let row0 = d.join("b/units/0.json");
    let original = fs::read(&row0).unwrap();
    let (position, flip) = (
        rng.random_range(0..original.len()),
        rng.random_range(1..=255u8),
    );
    let case = format!(
        "byte {position} of {} ^ {flip:#04x} (seed {DAMAGE_SEED})",
        original.len()
    );
    let mut changed = original.clone();
    changed[position] ^= flip;
    fs::write(&row0, &changed).unwrap();
    let status = stdout(&photonqa(d, &["status", "b", "--scenario", "small.toml"]));
    assert!(
        status.contains(": 3 done, 1 failed (1 damaged), ")
            && status.contains("\ndamaged 0 (wp-")
            && status.contains("): b/units/0.json: damaged: "),
        "{case}:\n{status}"
    );
    let merge = photonqa(d, &["merge", "b", "--scenario", "small.toml"]);
    assert_eq!(merge.status.code(), Some(2), "{case}");
    assert!(
        text(&merge.stderr).starts_with("photonqa: b/units/0.json: damaged: ")
            && text(&merge.stderr).lines().count() == 1,
        "{case}: {}",
        text(&merge.stderr)
    );
    assert!(stdout(&unit("0")).contains(": measured into"), "{case}");
    assert_ok(
        &photonqa(d, &["merge", "b", "--scenario", "small.toml"]),
        "merge",
    );
    assert_same_results(&d.join("a"), &d.join("b"));

    // Rows of another scenario file, or of other input data, are refused.
    fs::write(d.join("edited.toml"), scenario() + "# edited\n").unwrap();
    for args in [
        &["unit", "edited.toml", "--out", "b", "--index", "0"][..],
        &["merge", "b", "--scenario", "edited.toml"],
    ] {
        let refused = photonqa(d, args);
        assert_eq!(refused.status.code(), Some(2), "{args:?}");
        assert!(
            text(&refused.stderr).contains("was made from another scenario; use a fresh --out"),
            "{}",
            text(&refused.stderr)
        );
    }
    let row1 = d.join("b/units/1.json");
    let sealed = fs::read(&row1).unwrap();
    let line = seal::unseal(&sealed).expect("an intact row");
    let mut row: serde_json::Value = serde_json::from_slice(line).unwrap();
    row["provenance"]["input_hash"] = "0".repeat(64).into();
    seal::write(&row1, format!("{row}\n").as_bytes()).unwrap();
    let refused = photonqa(d, &["merge", "b", "--scenario", "small.toml"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains(
            "units/1.json: row wp-b094dcd586 was made from another scenario, input or chunking"
        ),
        "{}",
        text(&refused.stderr)
    );
}

/// The tasks of a submission write into one directory side by side (a shared lock), which
/// keeps out a `merge` or a `run` until they end; a second `submit` waits for the first.
#[test]
fn units_share_their_directory_and_keep_a_merge_out() {
    let dir = workdir();
    let d = dir.path();
    fs::create_dir_all(d.join("b/slurm")).unwrap();
    // This test process stands in for a unit task still running.
    let task = fs::File::create(d.join("b/photonqa.lock")).unwrap();
    task.lock_shared().unwrap();
    for index in 0..POINTS {
        let unit = photonqa(
            d,
            &[
                "unit",
                "small.toml",
                "--out",
                "b",
                "--index",
                &index.to_string(),
            ],
        );
        assert_ok(&unit, "photonqa unit beside another task");
    }
    let expected = "photonqa: b: in use by running `photonqa unit` tasks or another photonqa process (they hold b/photonqa.lock); wait until they end\n";
    for args in [
        &["merge", "b", "--scenario", "small.toml"][..],
        &["run", "small.toml", "--out", "b"],
    ] {
        let refused = photonqa(d, args);
        assert_eq!(refused.status.code(), Some(2), "{args:?}");
        if text(&refused.stderr) != expected {
            differ(
                &format!("{args:?} beside a unit task"),
                expected,
                &text(&refused.stderr),
            );
        }
    }
    assert!(!d.join("b/results.jsonl").exists());
    drop(task);
    assert_ok(
        &photonqa(d, &["merge", "b", "--scenario", "small.toml"]),
        "photonqa merge",
    );

    // A submission in progress (this process again) holds DIR/slurm.
    let submission = fs::File::create(d.join("b/slurm/photonqa.lock")).unwrap();
    submission.lock().unwrap();
    fs::write(d.join("b/slurm/photonqa.lock"), "photonqa submit, pid 1\n").unwrap();
    let refused = photonqa(d, &["submit", "small.toml", "--out", "b"]);
    assert_eq!(refused.status.code(), Some(2));
    let slurm = d.canonicalize().unwrap().join("b/slurm");
    let expected = format!(
        "photonqa: {}: in use by photonqa submit, pid 1 (it holds {}/photonqa.lock); wait until it ends, or choose another directory\n",
        slurm.display(),
        slurm.display()
    );
    if text(&refused.stderr) != expected {
        differ("a second submit", &expected, &text(&refused.stderr));
    }
}

#[test]
fn slab_units_run_apart_merge_into_the_results_of_one_run() {
    let dir = workdir();
    let d = dir.path();
    assert_ok(&photonqa(d, &["run", "science.toml", "--out", "a"]), "run");
    let unit = |args: &[&str]| {
        let mut all = vec!["unit", "science.toml", "--out", "b"];
        all.extend(args);
        photonqa(d, &all)
    };
    // Before the prepare task, a unit says what is missing.
    let early = unit(&["--index", "0", "--phase", "measure"]);
    assert_eq!(early.status.code(), Some(2));
    assert!(
        text(&early.stderr).contains("no slab units here"),
        "{}",
        text(&early.stderr)
    );
    // More slabs than chunks are refused.
    let many = unit(&["--prepare", "--slabs", "99"]);
    assert_eq!(many.status.code(), Some(2));
    assert!(
        text(&many.stderr).contains("--slabs 99: the input has "),
        "{}",
        text(&many.stderr)
    );
    assert_ok(&unit(&["--prepare", "--slabs", "3"]), "unit --prepare");
    let units = POINTS * 3;
    for phase in ["measure", "histogram", "analyse"] {
        for index in (0..units).rev() {
            let index = index.to_string();
            if phase == "histogram" && index == "4" {
                // A task that fails is recorded as failed; the merge refuses to run without it.
                let failed = photonqa_env(
                    d,
                    &[
                        "unit",
                        "science.toml",
                        "--out",
                        "b",
                        "--index",
                        "4",
                        "--phase",
                        phase,
                    ],
                    ("PHOTONQA_FAIL_UNIT", "4"),
                );
                assert_eq!(failed.status.code(), Some(2));
                continue;
            }
            let ran = unit(&["--index", &index, "--phase", phase]);
            if phase == "analyse" && ["3", "4", "5"].contains(&index.as_str()) {
                // Their point's decoded histogram is incomplete.
                assert_eq!(ran.status.code(), Some(2));
                assert!(
                    text(&ran.stderr).ends_with("b/units/4.histogram.bin: missing\n"),
                    "{}",
                    text(&ran.stderr)
                );
                continue;
            }
            assert_ok(&ran, phase);
        }
    }
    let status = photonqa(d, &["status", "b"]);
    assert_ok(&status, "photonqa status");
    let status = stdout(&status);
    assert!(
        status.starts_with(&format!(
            "b: {units} units of scenario slurm-small: {} done, 3 failed, 0 running, 0 queued, 0 pending\nslab units: 3 per point, phases measure, histogram, analyse; prepare done\nfailed 3 (wp-",
            units - 3
        )) && status.contains(" slab 2/3): histogram: unit 4 failed on purpose")
            && status.contains(" slab 3/3): analyse: b/units/4.histogram.bin: missing\n"),
        "{status}"
    );
    let merge = photonqa(d, &["merge", "b"]);
    assert_eq!(merge.status.code(), Some(2));
    assert!(
        text(&merge.stderr).contains(&format!(
            "3 of {units} units have no result yet (index 3-5)"
        )),
        "{}",
        text(&merge.stderr)
    );
    // The failed phase runs again; the phases done are not rerun.
    let measured = d.join("b/units/4.measure.bin");
    let before = snapshot(&measured);
    assert_ok(
        &unit(&["--index", "4", "--phase", "histogram"]),
        "histogram (again)",
    );
    let again = unit(&["--index", "4", "--phase", "measure"]);
    assert!(
        stdout(&again).contains("done already in"),
        "{}",
        stdout(&again)
    );
    assert_eq!(snapshot(&measured), before);
    // The analyses of unit 4's point read its histogram: they run after it.
    for index in 3..6 {
        assert_ok(
            &unit(&["--index", &index.to_string(), "--phase", "analyse"]),
            "analyse",
        );
    }
    let merge = photonqa(d, &["merge", "b"]);
    assert_ok(&merge, "photonqa merge");
    assert_same_results(&d.join("a"), &d.join("b"));

    damaged_files_are_reported_refused_and_submitted_again(d);
}

/// Seed of the byte changes of [`damaged_files_are_reported_refused_and_submitted_again`].
const DAMAGE_SEED: u64 = 7;

/// In the slab units of `d/b`, every kind of file of unit 7 and `prepare.bin`, with a byte
/// changed (seeded positions and values) or cut short: `status` reports it damaged, naming the
/// file; `merge` refuses it in one line naming the file; `submit` runs it again (through a
/// stand-in `sbatch`); and the units run again merge into the local run's results. Before unit
/// files were sealed, such changes went unnoticed (or moved a merged metric silently).
fn damaged_files_are_reported_refused_and_submitted_again(d: &Path) {
    let mut rng = ChaCha8Rng::seed_from_u64(DAMAGE_SEED);
    for file in [
        "units/7.measure.bin",
        "units/7.histogram.bin",
        "units/7.analyse.bin",
        "units/prepare.bin",
    ] {
        let path = d.join("b").join(file);
        let original = fs::read(&path).unwrap();
        let mut changes: Vec<(String, Vec<u8>)> = (0..4)
            .map(|_| {
                let (position, flip) = (
                    rng.random_range(0..original.len()),
                    rng.random_range(1..=255u8),
                );
                let mut changed = original.clone();
                changed[position] ^= flip;
                let case = format!(
                    "byte {position} of {} ^ {flip:#04x} (seed {DAMAGE_SEED})",
                    original.len()
                );
                (case, changed)
            })
            .collect();
        changes.push((
            "cut in half".into(),
            original[..original.len() / 2].to_vec(),
        ));
        let damaged = format!("b/{file}: damaged: ");
        for (case, changed) in changes {
            fs::write(&path, &changed).unwrap();
            let status = photonqa(d, &["status", "b"]);
            assert_ok(&status, "photonqa status");
            let status = stdout(&status);
            let reported = match file {
                "units/prepare.bin" => status.contains(&format!("; prepare failed: {damaged}")),
                _ => {
                    status.contains(" 1 failed (1 damaged), ")
                        && status.contains("\ndamaged 7 (wp-")
                        && status.contains(&format!(" slab 2/3): {damaged}"))
                }
            };
            if !reported {
                differ(
                    &format!("status of {file} with {case}"),
                    &format!("unit 7 (or prepare) reported damaged: {damaged}..."),
                    &status,
                );
            }
            let merge = photonqa(d, &["merge", "b"]);
            let stderr = text(&merge.stderr);
            if merge.status.code() != Some(2)
                || stderr.lines().count() != 1
                || !stderr.starts_with(&format!("photonqa: {damaged}"))
            {
                differ(
                    &format!("merge of {file} with {case}"),
                    &format!("exit code 2 and one line: photonqa: {damaged}..."),
                    &format!("exit code {:?}\nstderr:\n{stderr}", merge.status.code()),
                );
            }
        }
        fs::write(&path, &original).unwrap();
    }

    // The manifest says how to read every unit's files: a damaged one is an error.
    let manifest = d.join("b/units/scenario.json");
    let original = fs::read(&manifest).unwrap();
    let mut changed = original.clone();
    let slabs = original.windows(3).position(|w| w == b": 3").unwrap() + 2;
    changed[slabs] = b'2';
    fs::write(&manifest, &changed).unwrap();
    let status = photonqa(d, &["status", "b"]);
    assert_eq!(status.status.code(), Some(2));
    assert!(
        text(&status.stderr).starts_with("photonqa: b/units/scenario.json: damaged: "),
        "{}",
        text(&status.stderr)
    );
    fs::write(&manifest, &original).unwrap();

    // `submit` runs a damaged prepare.bin again, alone or with a damaged unit.
    let bin = d.join("bin");
    fs::create_dir_all(&bin).unwrap();
    for (name, script) in [("sbatch", "echo 4242\n"), ("squeue", "exit 0\n")] {
        fs::write(bin.join(name), format!("#!/bin/sh\n{script}")).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        fs::set_permissions(bin.join(name), mode).unwrap();
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let damage = |file: &str| {
        let path = d.join("b").join(file);
        let mut bytes = fs::read(&path).unwrap();
        bytes[10] ^= 0x20;
        fs::write(&path, bytes).unwrap();
    };
    damage("units/prepare.bin");
    let submit = ["submit", "science.toml", "--out", "b"];
    let submitted = photonqa_env(d, &submit, ("PATH", &path));
    assert_ok(&submitted, "photonqa submit (prepare.bin damaged)");
    assert!(
        stdout(&submitted).starts_with(
            "submitted the prepare task of slurm-small as job 4242; merge job 4242 runs"
        ),
        "{}",
        stdout(&submitted)
    );
    damage("units/7.measure.bin");
    let submitted = photonqa_env(d, &submit, ("PATH", &path));
    assert_ok(&submitted, "photonqa submit (unit 7 damaged)");
    assert!(
        stdout(&submitted)
            .starts_with("submitted 1 unit of slurm-small (index 7) as jobs 4242, 4242; "),
        "{}",
        stdout(&submitted)
    );
    let array = fs::read_to_string(d.join("b/slurm/measure.sh")).unwrap();
    assert!(array.contains("\n#SBATCH --array=7\n"), "{array}");
    // What the jobs would run.
    let unit = |args: &[&str]| {
        let mut all = vec!["unit", "science.toml", "--out", "b"];
        all.extend(args);
        let out = photonqa(d, &all);
        assert_ok(&out, &all.join(" "));
        stdout(&out)
    };
    assert!(unit(&["--prepare", "--slabs", "3"]).starts_with("prepare: written to"));
    assert!(unit(&["--index", "7", "--phase", "measure"]).contains(": measured into"));
    assert!(unit(&["--index", "7", "--phase", "histogram"]).contains(": done already in"));
    assert_ok(&photonqa(d, &["merge", "b"]), "photonqa merge");
    assert_same_results(&d.join("a"), &d.join("b"));
}

// ------------------------------------------------------------------------------------------------
// On a real cluster.

/// Environment variable that turns a missing Slurm into a failure (set in CI).
const REQUIRE_SLURM: &str = "PHOTONQA_REQUIRE_SLURM";

/// Whether sbatch is installed and a node answers; says why not (and is skipped) unless
/// PHOTONQA_REQUIRE_SLURM=1.
fn slurm_available() -> bool {
    let why = if Command::new("sbatch").arg("--version").output().is_err() {
        "sbatch is not installed".to_string()
    } else {
        match Command::new("sinfo")
            .args(["--noheader", "--format=%t"])
            .stderr(Stdio::null())
            .output()
        {
            Ok(out) => {
                let states = text(&out.stdout);
                let up =
                    |l: &str| ["idle", "mix", "alloc"].contains(&l.trim().trim_end_matches('*'));
                if states.lines().any(up) {
                    return true;
                }
                format!("no Slurm node is up (sinfo: '{}')", states.trim())
            }
            Err(e) => format!("sinfo: {e}"),
        }
    };
    if std::env::var(REQUIRE_SLURM).as_deref() == Ok("1") {
        panic!("{why} and {REQUIRE_SLURM}=1; start a cluster with `bash .ci/slurm start`");
    }
    println!("skipped: {why} (`bash .ci/slurm start` brings up a single-node cluster as root)");
    false
}

/// Cancels the jobs recorded in `DIR/slurm/jobs.jsonl` when dropped, so that a failing test
/// leaves nothing in the queue.
struct CancelJobs(PathBuf);

impl Drop for CancelJobs {
    fn drop(&mut self) {
        let Ok(jobs) = fs::read_to_string(self.0.join("slurm/jobs.jsonl")) else {
            return;
        };
        for line in jobs.lines() {
            let job: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            for key in ["array", "merge"] {
                if let Some(id) = job[key].as_str() {
                    let _ = Command::new("scancel")
                        .arg(id)
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
    }
}

/// Polls `photonqa status b` until none of its jobs is in the queue; returns the last status.
fn wait_for_queue(dir: &Path, deadline: Instant) -> String {
    loop {
        let out = photonqa(dir, &["status", "b"]);
        assert_ok(&out, "photonqa status");
        let status = stdout(&out);
        let first = status.lines().next().unwrap_or_default();
        let single = status.contains("\nmerge job ") || status.contains("\nprepare job ");
        if first.contains(" 0 running, 0 queued,") && !single {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the Slurm jobs did not finish in time:\n{status}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn slurm_array_with_a_failed_task_is_resubmitted_and_merges_like_one_run() {
    if !slurm_available() {
        return;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    let dir = workdir();
    let d = dir.path();
    let _cancel = CancelJobs(d.join("b"));
    assert_ok(&photonqa(d, &["run", "small.toml", "--out", "a"]), "run");

    // Task 2 fails (sbatch passes the environment on to the tasks); the merge job is cancelled.
    let submit = ["submit", "small.toml", "--out", "b", "--max-parallel", "2"];
    let first = photonqa_env(d, &submit, ("PHOTONQA_FAIL_UNIT", "2"));
    assert_ok(&first, "photonqa submit");
    assert!(
        stdout(&first).starts_with("submitted 4 units of slurm-small (index 0-3) as job "),
        "{}",
        stdout(&first)
    );
    let status = wait_for_queue(d, deadline);
    assert!(
        status.contains(": 4 units of scenario slurm-small: 3 done, 1 failed, 0 running, 0 queued, 0 pending\nfailed 2 (wp-")
            && status.contains("): unit 2 failed on purpose (PHOTONQA_FAIL_UNIT=2)\n  log: "),
        "{status}"
    );
    assert!(
        !d.join("b/results.jsonl").exists(),
        "merged despite a failed task"
    );
    let done: Vec<(PathBuf, (Vec<u8>, SystemTime))> = [0, 1, 3]
        .iter()
        .map(|i| {
            let path = d.join(format!("b/units/{i}.json"));
            let snap = snapshot(&path);
            (path, snap)
        })
        .collect();

    // The second submit runs only the failed unit, then the merge.
    let second = photonqa(d, &submit);
    assert_ok(&second, "photonqa submit (again)");
    assert!(
        stdout(&second).starts_with("submitted 1 unit of slurm-small (index 2) as job "),
        "{}",
        stdout(&second)
    );
    let status = wait_for_queue(d, deadline);
    assert!(
        status.contains(": 4 units of scenario slurm-small: 4 done, 0 failed, 0 running, 0 queued, 0 pending\nmerged: ")
            && status.contains("results.jsonl holds 4 of 4 points"),
        "{status}"
    );
    for (path, before) in &done {
        assert_eq!(&snapshot(path), before, "{} was rewritten", path.display());
    }
    assert_same_results(&d.join("a"), &d.join("b"));
    let third = photonqa(d, &submit);
    assert_ok(&third, "photonqa submit (a third time)");
    assert!(
        stdout(&third).starts_with("nothing to submit: all 4 units done"),
        "{}",
        stdout(&third)
    );
    println!(
        "local run, two submissions and the merge in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn slurm_slab_units_with_a_failed_task_are_resubmitted_and_merge_like_one_run() {
    if !slurm_available() {
        return;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(400);
    let dir = workdir();
    let d = dir.path();
    let _cancel = CancelJobs(d.join("b"));
    assert_ok(&photonqa(d, &["run", "science.toml", "--out", "a"]), "run");
    let units = POINTS * 3;

    // Unit 4 fails in its measure task: the later phases and the merge are cancelled.
    let submit = ["submit", "science.toml", "--out", "b", "--slabs", "3"];
    let first = photonqa_env(d, &submit, ("PHOTONQA_FAIL_UNIT", "4"));
    assert_ok(&first, "photonqa submit --slabs 3");
    assert!(
        stdout(&first).starts_with(&format!(
            "submitted {units} units of slurm-small (index 0-{}) as jobs ",
            units - 1
        )),
        "{}",
        stdout(&first)
    );
    let status = wait_for_queue(d, deadline);
    assert!(
        status.contains(" slab 2/3): measure: unit 4 failed on purpose (PHOTONQA_FAIL_UNIT=4)\n")
            && status.contains(
                "slab units: 3 per point, phases measure, histogram, analyse; prepare done\n"
            ),
        "{status}"
    );
    assert!(
        !d.join("b/results.jsonl").exists(),
        "merged despite a failed task"
    );
    let measured: Vec<(PathBuf, (Vec<u8>, SystemTime))> = (0..units)
        .filter(|&u| u != 4)
        .map(|u| {
            let path = d.join(format!("b/units/{u}.measure.bin"));
            let snap = snapshot(&path);
            (path, snap)
        })
        .collect();

    // The second submit: no prepare, the failed measure task, the phases after it, the merge.
    let second = photonqa(d, &["submit", "science.toml", "--out", "b"]);
    assert_ok(&second, "photonqa submit (again)");
    assert!(
        stdout(&second).starts_with(&format!(
            "submitted {units} units of slurm-small (index 0-{}) as jobs ",
            units - 1
        )),
        "{}",
        stdout(&second)
    );
    let jobs = fs::read_to_string(d.join("b/slurm/jobs.jsonl")).unwrap();
    let phases: Vec<String> = jobs
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|j| {
            format!(
                "{}:{:?}",
                j["phase"].as_str().unwrap(),
                j["units"].as_array().unwrap().len()
            )
        })
        .collect();
    assert_eq!(
        phases,
        [
            "prepare:0",
            "measure:12",
            "histogram:12",
            "analyse:12",
            "measure:1",
            "histogram:12",
            "analyse:12"
        ]
    );
    let status = wait_for_queue(d, deadline);
    assert!(
        status.contains(&format!(": {units} units of scenario slurm-small: {units} done, 0 failed, 0 running, 0 queued, 0 pending\n"))
            && status.contains("results.jsonl holds 4 of"),
        "{status}"
    );
    for (path, before) in &measured {
        assert_eq!(&snapshot(path), before, "{} was rewritten", path.display());
    }
    assert_same_results(&d.join("a"), &d.join("b"));
    println!(
        "local run, two slab submissions and the merge in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
