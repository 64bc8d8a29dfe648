//! Files the user names: an input that is not a regular file (a FIFO would block the reader
//! forever) is refused in one line before it is opened.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, text};
use photonqa::data::IntoNdArray;
use photonqa::data::npy::write_npy;

/// Runs photonqa with `args` in `dir`; a run still going after a minute is killed and fails the
/// test (a hang, not a slow run: every case here ends in milliseconds).
fn photonqa_or_hang(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start photonqa");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("photonqa {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Asserts a one-line error (exit 2) containing every one of `needles`.
fn one_line_error(out: &Output, needles: &[&str], what: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{what}: expected {needle:?} in {stderr}"
        );
    }
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}

const FIFO: &str = "is a FIFO (named pipe), not a regular file";

/// Regression: a FIFO as `[input] source` made `validate` hang in the open; every input path
/// (scenario sources of each kind, `metrics`, `analyze`, `check --baseline`, the scenario file)
/// now refuses it, naming the path, and so does a symbolic link to it.
#[test]
fn fifos_and_other_special_files_are_refused_as_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in ["v.npy", "v.h5", "v.raw", "s.toml", "b.json"] {
        mkfifo(&d.join(name));
    }
    std::os::unix::fs::symlink("v.npy", d.join("link.npy")).unwrap();
    std::fs::create_dir(d.join("folder.npy")).unwrap();
    let volume = ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[4, 8, 8])).into_nd();
    write_npy(&d.join("ok.npy"), &volume).unwrap();

    let scenario = |name: &str, input: &str| {
        std::fs::write(
            d.join(name),
            format!("[scenario]\nname = \"x\"\n[input]\n{input}\n[[pipeline]]\nstage = \"zstd\"\n"),
        )
        .unwrap();
    };
    scenario("npy.toml", "source = \"v.npy\"");
    scenario("h5.toml", "source = \"v.h5::/volume\"");
    scenario(
        "raw.toml",
        "source = \"v.raw\"\nshape = [4, 8, 8]\ndtype = \"float32\"",
    );
    scenario("list.toml", "source = [\"ok.npy\", \"link.npy\"]");
    scenario("folder.toml", "source = \"folder.npy\"");
    scenario("ok.toml", "source = \"ok.npy\"");

    let cases: [(&[&str], &[&str]); 9] = [
        (&["validate", "npy.toml"], &["v.npy: ", FIFO]),
        (&["validate", "h5.toml"], &["v.h5::/volume: ", FIFO]),
        (&["validate", "raw.toml"], &["v.raw: ", FIFO]),
        (&["validate", "list.toml"], &["link.npy: ", FIFO]),
        (
            &["validate", "folder.toml"],
            &["folder.npy: is a folder, not a regular file"],
        ),
        (&["validate", "s.toml"], &["s.toml", FIFO]),
        (&["metrics", "ok.npy", "v.npy"], &["v.npy: ", FIFO]),
        (&["analyze", "v.h5::/volume"], &["v.h5::/volume: ", FIFO]),
        (
            &["check", "ok.toml", "--baseline", "b.json"],
            &["b.json: cannot read the baseline: ", FIFO],
        ),
    ];
    for (args, needles) in cases {
        let out = photonqa_or_hang(d, args);
        one_line_error(&out, needles, &args.join(" "));
    }
}
