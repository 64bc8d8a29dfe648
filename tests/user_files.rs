//! Files the user names: an input that is not a regular file (a FIFO would block the reader
//! forever) is refused in one line before it is opened; `gen` and `reconstruct` never replace
//! an existing file unless told to (--force), and `gen` refuses, before it allocates or writes
//! anything, what its memory budget or its file system cannot hold.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, assert_ok, assert_one_line_error, files_in, photonqa, repo_root};
use photonqa::data::IntoNdArray;
use photonqa::data::hdf5io::{read_hdf5, write_hdf5};
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
        assert_one_line_error(&out, needles, &args.join(" "));
    }
}

/// Regression: `gen porous-tomo --shape 100000,10000,10000` aborted on an allocation failure
/// (exit 134 and a backtrace), and 15000x4096x4096 grew to 2.4 GB before writing. Every
/// generator now refuses in one line, before it allocates or writes anything, an output its
/// file system cannot hold, a model and slab its memory budget cannot hold, and a shape whose
/// size overflows; nothing is left in the folder.
#[test]
fn gen_refuses_what_cannot_fit_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: [(&[&str], &[&str]); 11] = [
        (
            &[
                "porous-tomo",
                "--shape",
                "100000,10000,10000",
                "--out",
                "big.h5",
            ],
            &["photonqa: big.h5: needs 36.4 TiB but its file system has "],
        ),
        (
            &[
                "porous-tomo",
                "--shape",
                "64,2048,2048",
                "--memory-budget",
                "16MiB",
                "--out",
                "m.h5",
            ],
            &[
                "photonqa: gen porous-tomo [64, 2048, 2048]: needs about ",
                "more than --memory-budget 16 MiB: raise --memory-budget",
            ],
        ),
        (
            &[
                "porous-tomo",
                "--shape",
                "2251799813685248,64,64",
                "--out",
                "o.h5",
            ],
            &[
                "photonqa: --shape [2251799813685248, 64, 64]: too large, its size in bytes of float32 overflows",
            ],
        ),
        (
            &[
                "xpcs",
                "--shape",
                "1000000,1000000,1000000",
                "--out",
                "big.h5",
            ],
            &["photonqa: big.h5: needs ", " but its file system has "],
        ),
        (
            &[
                "xpcs",
                "--shape",
                "2,4096,4096",
                "--memory-budget",
                "64MiB",
                "--out",
                "m.h5",
            ],
            &[
                "photonqa: gen xpcs [2, 4096, 4096]: needs about 448 MiB of memory (384 MiB for its model, 64 MiB per row of the slabs), more than --memory-budget 64 MiB",
            ],
        ),
        (
            &[
                "xpcs",
                "--shape",
                "18446744073709551615,2,2",
                "--out",
                "o.h5",
            ],
            &["photonqa: --shape [18446744073709551615, 2, 2]: too large"],
        ),
        (
            &[
                "sx",
                "--shape",
                "1000000000000,1000,1000",
                "--out",
                "big.h5",
            ],
            &["photonqa: big.h5: needs ", " but its file system has "],
        ),
        (
            &[
                "sx",
                "--shape",
                "1000000,16,16",
                "--memory-budget",
                "64MiB",
                "--out",
                "m.h5",
            ],
            &[
                "photonqa: gen sx [1000000, 16, 16]: needs about ",
                "more than --memory-budget 64 MiB",
            ],
        ),
        (
            &[
                "saxs",
                "--shape",
                "1000000000,1000000000",
                "--out",
                "big.h5",
            ],
            &["photonqa: big.h5: needs ", " but its file system has "],
        ),
        (
            &[
                "saxs",
                "--shape",
                "4096,4096",
                "--memory-budget",
                "64MiB",
                "--out",
                "m.h5",
            ],
            &[
                "photonqa: gen saxs 4096x4096: needs about 384 MiB of memory (384 MiB for its model), more than --memory-budget 64 MiB",
            ],
        ),
        (
            &["saxs", "--shape", "4294967296,4294967296", "--out", "o.h5"],
            &["photonqa: --shape [4294967296, 4294967296]: too large"],
        ),
    ];
    for (args, needles) in cases {
        let mut all = vec!["gen"];
        all.extend(args);
        let out = photonqa_or_hang(d, &all);
        assert_one_line_error(&out, needles, &all.join(" "));
        assert!(files_in(d).is_empty(), "{all:?} left {:?}", files_in(d));
    }
}

/// Each generator writes, within a memory budget that holds only a few rows per slab, the same
/// data as the committed references made with whole slabs (`reference-data/`).
#[test]
fn gen_within_a_small_budget_reproduces_the_reference_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: [(&[&str], &str, &[&str]); 3] = [
        (
            &["porous-tomo", "--labels", "--memory-budget", "1MiB"],
            "porous-tomo.h5",
            &["/volume", "/labels"],
        ),
        (
            &["xpcs", "--memory-budget", "40KiB"],
            "xpcs-speckle.h5",
            &["/frames"],
        ),
        (
            &["sx", "--memory-budget", "500KiB"],
            "sx-frames.h5",
            &["/frames", "/peaks"],
        ),
    ];
    for (args, reference, datasets) in cases {
        let mut all = vec!["gen"];
        all.extend(args);
        all.extend(["--out", reference]);
        assert_ok(&photonqa(d, &all), &all.join(" "));
        for dataset in datasets {
            let made = read_hdf5(&d.join(reference), dataset).unwrap();
            let committed =
                read_hdf5(&repo_root().join("reference-data").join(reference), dataset).unwrap();
            assert!(
                made == committed,
                "{all:?}: {dataset} differs from reference-data/{reference}"
            );
        }
    }
}

/// Regression (as `export`): `gen --out existing.h5::/new` truncated the whole file and
/// `reconstruct --out` replaced an existing slice. Both now refuse an existing file, leaving it
/// byte for byte, unless --force, which replaces it whole; a kill before the rename leaves the
/// old file.
#[test]
fn gen_and_reconstruct_replace_an_existing_file_only_with_force() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keep =
        ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[2, 3]), |ix| (ix[0] * 3 + ix[1]) as u8)
            .into_nd();
    write_hdf5(&d.join("v.h5"), "/keep", &keep).unwrap();
    let bytes = std::fs::read(d.join("v.h5")).unwrap();
    let sinogram = repo_root().join("tests/fixtures/fbp/smooth5_7/sinogram.npy");
    let sinogram = sinogram.to_str().unwrap();
    write_npy(&d.join("slice.npy"), &keep).unwrap();
    let slice = std::fs::read(d.join("slice.npy")).unwrap();
    let cases: [(&[&str], &str, &[u8]); 4] = [
        (
            &["gen", "porous-tomo", "--out", "v.h5::/new"],
            "v.h5",
            &bytes,
        ),
        (&["gen", "xpcs", "--out", "v.h5"], "v.h5", &bytes),
        (&["gen", "saxs", "--out", "v.h5"], "v.h5", &bytes),
        (
            &["reconstruct", sinogram, "--out", "slice.npy"],
            "slice.npy",
            &slice,
        ),
    ];
    for (args, file, before) in cases {
        let out = photonqa(d, args);
        assert_one_line_error(
            &out,
            &[&format!(
                "photonqa: {file}: exists already: --force replaces it"
            )],
            &args.join(" "),
        );
        assert!(
            std::fs::read(d.join(file)).unwrap() == before,
            "{args:?} changed {file}"
        );
        assert_eq!(files_in(d), ["slice.npy", "v.h5"], "{args:?}");
    }

    // Killed just before the rename: the old file is left, and the hidden temporary file.
    let mut child = Command::new(BIN)
        .current_dir(d)
        .args(["gen", "sx", "--out", "v.h5", "--force"])
        .env("PHOTONQA_PAUSE_BEFORE_RENAME", "v.h5")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("photonqa: v.h5: paused before the rename"),
        "{line}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        std::fs::read(d.join("v.h5")).unwrap() == bytes,
        "the killed gen changed v.h5"
    );
    let names = files_in(d);
    assert!(
        names.len() == 3 && names[0].starts_with(".v.h5.") && names[0].ends_with(".photonqa-tmp"),
        "{names:?}"
    );

    // --force replaces the whole file.
    assert_ok(
        &photonqa(d, &["gen", "sx", "--out", "v.h5", "--force"]),
        "gen sx --force",
    );
    let frames = read_hdf5(&d.join("v.h5"), "/frames").unwrap();
    assert_eq!(
        frames,
        read_hdf5(&repo_root().join("reference-data/sx-frames.h5"), "/frames").unwrap()
    );
    assert!(
        read_hdf5(&d.join("v.h5"), "/keep").is_err(),
        "--force kept /keep"
    );
    assert_ok(
        &photonqa(
            d,
            &["reconstruct", sinogram, "--out", "slice.npy", "--force"],
        ),
        "reconstruct --force",
    );
    assert_eq!(
        ndarray_npy::read_npy::<_, ndarray::ArrayD<f64>>(d.join("slice.npy"))
            .unwrap()
            .shape(),
        [5, 5]
    );
}
