//! `photonqa export` writes the deployed artifact: every supported filter pipeline, written by
//! photonqa, read back by Python h5py + hdf5plugin (`tests/peers/read_export.py`), gives
//! exactly photonqa's decoded array, bit for bit (the lossy preprocessing inverted from the
//! dataset's attributes as documented; the filters are lossless). The last chunk is partial (64
//! rows in chunks of 24), so the zero padding of edge chunks is exercised.
//!
//! Needs python3 with h5py and hdf5plugin (`bash .ci/setup --python`); without them the test
//! says so and skips, unless PHOTONQA_REQUIRE_PEERS=1 (set in CI).

mod common;

use std::path::Path;
use std::process::Command;

use common::{
    assert_ok, assert_one_line_error, files_in, photonqa, read_reference_volume, reference_volume,
    text,
};
use photonqa::data::hdf5io::{read_hdf5, write_hdf5};
use photonqa::data::npy::write_npy;
use photonqa::data::{IntoNdArray, NdArray};
use photonqa::pipeline::Chain;
use photonqa::scenario::Scenario;
use serde_json::Value;

/// Expected filters: `(id, cd_values)` in pipeline order.
type Filters = &'static [(u64, &'static [u64])];

/// `tests/peers/read_export.py` on dataset `dataset` of `DIR/x.h5` against the array in
/// `DIR/against`: its JSON report (see the script).
fn read_export(dir: &Path, dataset: &str, against: &str, what: &str) -> Value {
    let read = Command::new("python3")
        .arg(common::repo_root().join("tests/peers/read_export.py"))
        .args([dir.join("x.h5").to_str().unwrap(), dataset])
        .arg(dir.join(against))
        .output()
        .unwrap();
    assert!(read.status.success(), "{what}: {}", text(&read.stderr));
    serde_json::from_str(&text(&read.stdout)).unwrap()
}

/// Writes a one-point scenario with `pipeline` (TOML `[[pipeline]]` entries).
fn scenario(dir: &Path, pipeline: &str) -> Scenario {
    let text = format!(
        "[scenario]\nname = \"export\"\nchunk_slices = 24\n[input]\nsource = \"{}\"\n{pipeline}",
        reference_volume()
    );
    let path = dir.join("s.toml");
    std::fs::write(&path, text).unwrap();
    Scenario::load(&path).unwrap()
}

#[test]
fn every_filter_pipeline_reads_back_bit_exact_with_h5py_and_hdf5plugin() {
    if !common::python_peers("import h5py, hdf5plugin, numpy", "h5py and hdf5plugin") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let original = read_reference_volume();
    let quantize =
        "[[pipeline]]\nstage = \"quantize\"\ndtype = \"uint8\"\nbits = 6\nrange = [-0.2, 1.1]\n";
    let cases: [(&str, String, Filters, &str); 10] = [
        ("zstd", "[[pipeline]]\nstage = \"zstd\"\nlevel = 5\n".into(), &[(32015, &[5])], "float32"),
        (
            "shuffle+deflate",
            "[[pipeline]]\nstage = \"shuffle\"\n[[pipeline]]\nstage = \"deflate\"\nlevel = 6\n".into(),
            &[(2, &[4]), (1, &[6])],
            "float32",
        ),
        (
            "bitshuffle+lz4",
            "[[pipeline]]\nstage = \"bitshuffle\"\n[[pipeline]]\nstage = \"lz4\"\n".into(),
            &[(32008, &[0, 4, 4, 0, 0]), (32004, &[0])],
            "float32",
        ),
        (
            "quantize+bitshuffle+zstd",
            format!("{quantize}[[pipeline]]\nstage = \"bitshuffle\"\n[[pipeline]]\nstage = \"zstd\"\n"),
            &[(32008, &[0, 4, 1, 0, 0]), (32015, &[3])],
            "uint8",
        ),
        (
            "bitround+shuffle+zstd",
            "[[pipeline]]\nstage = \"bitround\"\nkeepbits = 7\n[[pipeline]]\nstage = \"shuffle\"\n[[pipeline]]\nstage = \"zstd\"\n".into(),
            &[(2, &[4]), (32015, &[3])],
            "float32",
        ),
        (
            "threshold+deflate",
            "[[pipeline]]\nstage = \"threshold\"\nmethod = \"value\"\nvalue = 0.3\n[[pipeline]]\nstage = \"deflate\"\nlevel = 1\n".into(),
            &[(1, &[1])],
            "float32",
        ),
        (
            "binarise+lz4",
            "[[pipeline]]\nstage = \"threshold\"\nmethod = \"value\"\nvalue = 0.3\nmode = \"binarise\"\n[[pipeline]]\nstage = \"lz4\"\n".into(),
            &[(32004, &[0])],
            "uint8",
        ),
        (
            "blosc lz4 bitshuffle",
            "[[pipeline]]\nstage = \"blosc\"\nshuffle = \"bit\"\n".into(),
            &[(32001, &[0, 0, 0, 0, 5, 2, 1])],
            "float32",
        ),
        (
            // N-bit's cd_values as HDF5 computes them: 8 values, 24 x 128 x 128 elements per
            // chunk, an integer (1) of 2 bytes, little-endian (0), precision 12, offset 0.
            "quantize 12 bits+nbit",
            "[[pipeline]]\nstage = \"quantize\"\ndtype = \"uint16\"\nbits = 12\nrange = [-0.2, 1.1]\n[[pipeline]]\nstage = \"nbit\"\nbits = 12\n".into(),
            &[(5, &[8, 0, 393216, 1, 2, 0, 12, 0])],
            "uint16",
        ),
        (
            "quantize+dictionary+zstd",
            format!("{quantize}[[pipeline]]\nstage = \"dictionary\"\n[[pipeline]]\nstage = \"zstd\"\nlevel = 1\n"),
            &[(32015, &[1])],
            "uint8",
        ),
    ];
    for (name, pipeline, filters, stored) in cases {
        let scenario = scenario(dir, &pipeline);
        let point = &scenario.working_points()[0];
        // Without HDF5_PLUGIN_PATH, as HDF5 runs a loaded filter's `set_local`, which adds
        // cd_values (bitshuffle's block and element sizes) the reader does not need.
        let out = photonqa_with_plugins(
            dir,
            &[
                "export",
                "s.toml",
                "--point",
                &point.id,
                "--out",
                "x.h5::/g/data",
                "--force",
            ],
            None,
        );
        assert_ok(&out, name);
        let stdout = text(&out.stdout);
        assert_eq!(
            stdout.contains("note: stage dictionary has no registered HDF5 filter"),
            name.contains("dictionary"),
            "{name}: {stdout}"
        );
        // photonqa's decoded array: the chain's round trip (elementwise stages, so the
        // chunking does not matter).
        let chain = Chain::build(&point.stages, original.dtype()).unwrap();
        let decoded = chain.round_trip(&original).unwrap().decoded;
        write_npy(&dir.join("decoded.npy"), &decoded).unwrap();
        let report = read_export(dir, "/g/data", "decoded.npy", name);
        assert_eq!(report["equal"], true, "{name}: {report}");
        assert_eq!(report["max_abs_diff"], 0.0, "{name}: {report}");
        assert_eq!(report["dtype"], stored, "{name}: {report}");
        assert_eq!(
            report["chunks"],
            serde_json::json!([24, 128, 128]),
            "{name}"
        );
        let expected: Vec<Value> = filters
            .iter()
            .map(|(id, cd)| serde_json::json!([id, cd]))
            .collect();
        assert_eq!(
            report["filters"],
            Value::Array(expected),
            "{name}: {report}"
        );
    }
}

/// hdf5plugin's plugin folder, where the HDF5 library finds the SZ3 and ZFP filters.
fn plugin_path() -> String {
    let out = Command::new("python3")
        .args(["-c", "import hdf5plugin; print(hdf5plugin.PLUGIN_PATH)"])
        .output()
        .unwrap();
    text(&out.stdout).trim().to_string()
}

/// `photonqa export` of the scenario's first point into `x.h5::/v` (replacing the file), with
/// `plugins` as `HDF5_PLUGIN_PATH` (unset when `None`).
fn export(dir: &Path, scenario: &Scenario, plugins: Option<&str>) -> std::process::Output {
    let point = &scenario.working_points()[0];
    photonqa_with_plugins(
        dir,
        &[
            "export", "s.toml", "--point", &point.id, "--out", "x.h5::/v", "--force",
        ],
        plugins,
    )
}

/// `photonqa` with `args` in `dir`, with `plugins` as `HDF5_PLUGIN_PATH` (unset when `None`).
fn photonqa_with_plugins(dir: &Path, args: &[&str], plugins: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_photonqa"));
    command.current_dir(dir).args(args);
    match plugins {
        Some(path) => command.env("HDF5_PLUGIN_PATH", path),
        None => command.env_remove("HDF5_PLUGIN_PATH"),
    };
    command.output().unwrap()
}

/// Writes `folder/python3`, this machine's python3 run with `flags` (`-S`: without its
/// site-packages, so without hdf5plugin); nothing when the machine has no python3.
fn python_wrapper(folder: &Path, flags: &str) {
    std::fs::create_dir_all(folder).unwrap();
    let python = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()
        .filter(|p| p.status.success());
    if let Some(python) = python {
        let wrapper = folder.join("python3");
        let script = format!(
            "#!/bin/sh\nexec {} {flags} \"$@\"\n",
            text(&python.stdout).trim()
        );
        std::fs::write(&wrapper, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// `photonqa` in `dir` where no Python has hdf5plugin: `HDF5_PLUGIN_PATH` and `VIRTUAL_ENV`
/// unset, and on `PATH` only a `python3` without site-packages (or none).
fn without_hdf5plugin(dir: &Path) -> Command {
    let bin = dir.join("python-without-hdf5plugin");
    python_wrapper(&bin, "-S");
    let mut command = Command::new(env!("CARGO_BIN_EXE_photonqa"));
    command
        .current_dir(dir)
        .env_remove("HDF5_PLUGIN_PATH")
        .env_remove("VIRTUAL_ENV")
        .env("PATH", &bin);
    command
}

/// [`without_hdf5plugin`] running `args`.
fn photonqa_without_hdf5plugin(dir: &Path, args: &[&str]) -> std::process::Output {
    without_hdf5plugin(dir).args(args).output().unwrap()
}

/// With `HDF5_PLUGIN_PATH` unset, photonqa finds hdf5plugin's plugins through the `python3` on
/// `PATH`: an artifact scenario with third-party filters (SZ3, bitshuffle + LZ4) runs, its
/// provenance names the folder and the interpreter, and the export of a point writes the file
/// h5py reads back within the bound.
#[test]
fn hdf5plugin_is_found_through_python3_and_named_in_the_provenance() {
    if !common::python_peers("import h5py, hdf5plugin, numpy", "h5py and hdf5plugin") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_npy(&dir.join("original.npy"), &read_reference_volume()).unwrap();
    artifact_scenario(
        dir,
        "hdf5",
        "[[variant]]\nname = \"sz3\"\n[[variant.pipeline]]\nstage = \"sz3\"\nabs_error = 1e-3\n\
         [[variant]]\nname = \"quantized\"\n[[variant.pipeline]]\nstage = \"quantize\"\ndtype = \"uint8\"\n\
         [[variant.pipeline]]\nstage = \"bitshuffle\"\n[[variant.pipeline]]\nstage = \"lz4\"\n",
    );
    // photonqa runs in a folder of someone else's files: an `hdf5plugin.py` there must not be
    // what Python imports when photonqa asks it for the plugins.
    let planted = "open(__file__ + '.ran', 'w').close()\nPLUGIN_PATH = '/'\n";
    std::fs::write(dir.join("hdf5plugin.py"), planted).unwrap();
    let out = photonqa_with_plugins(dir, &["run", "s.toml", "--out", "out"], None);
    assert_ok(&out, "run without HDF5_PLUGIN_PATH");
    assert!(
        !dir.join("hdf5plugin.py.ran").exists(),
        "photonqa ran the working folder's hdf5plugin.py"
    );
    let rows = common::sorted_rows(&dir.join("out"));
    assert_eq!(rows.len(), 2);
    let plugins = plugin_path();
    let python = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let expected = format!("{plugins} (hdf5plugin of {})", text(&python.stdout).trim());
    let sz3_hash = blake3::hash(&std::fs::read(Path::new(&plugins).join("libh5sz3.so")).unwrap());
    for row in &rows {
        assert_eq!(row["status"], "ok", "{row}");
        let codecs = &row["provenance"]["codecs"];
        assert_eq!(
            codecs["hdf5-plugin-folder"].as_str(),
            Some(&*expected),
            "{row}"
        );
        assert_eq!(
            codecs["hdf5-plugin:libh5sz3.so"].as_str(),
            Some(&sz3_hash.to_hex()[..16]),
            "{row}"
        );
    }
    let sz3 = rows
        .iter()
        .find(|r| r["params"]["variant"] == "sz3")
        .unwrap();
    let id = sz3["point_id"].as_str().unwrap();
    let export = photonqa_with_plugins(
        dir,
        &[
            "export", "s.toml", "--point", id, "--out", "x.h5::/v", "--force",
        ],
        None,
    );
    assert_ok(&export, "export without HDF5_PLUGIN_PATH");
    let stdout = text(&export.stdout);
    assert!(
        stdout.contains("bound on the file: sz3 abs 0.001: ok"),
        "{stdout}"
    );
    let peer = read_export(dir, "/v", "original.npy", id);
    let diff = peer["max_abs_diff"].as_f64().unwrap();
    assert!(diff <= 1e-3, "|read - original| {diff}: {peer}");
}

/// The lossy codecs are written through their HDF5 filters as the HDF5 library runs them
/// (hdf5plugin's SZ3 and ZFP builds, HDF5's own scale-offset): h5py + hdf5plugin read back
/// values within the promised bound of the original, and photonqa's own check of the closed
/// file says the same.
#[test]
fn lossy_filters_read_back_within_their_bound() {
    if !common::python_peers("import h5py, hdf5plugin, numpy", "h5py and hdf5plugin") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let original = read_reference_volume();
    write_npy(&dir.join("original.npy"), &original).unwrap();
    let plugins = plugin_path();
    // (name, pipeline, filter ids, bound on |read - original|, photonqa's check line)
    let cases: [(&str, &str, &[u64], f64, &str); 5] = [
        (
            "sz3 abs",
            "[[pipeline]]\nstage = \"sz3\"\nabs_error = 1e-3\n",
            &[32024],
            1e-3,
            "bound on the file: sz3 abs 0.001: ok",
        ),
        (
            "sz3 rel + zstd",
            "[[pipeline]]\nstage = \"sz3\"\nmode = \"rel\"\nrel_error = 1e-3\n[[pipeline]]\nstage = \"zstd\"\n",
            &[32024, 32015],
            1.5e-3,
            "bound on the file: sz3 rel 0.001: ok",
        ),
        (
            "zfp accuracy",
            "[[pipeline]]\nstage = \"zfp\"\ntolerance = 1e-3\n",
            &[32013],
            1e-3,
            "bound on the file: zfp abs 0.001: ok",
        ),
        (
            "zfp rate + shuffle",
            "[[pipeline]]\nstage = \"zfp\"\nmode = \"rate\"\nrate = 8.0\n[[pipeline]]\nstage = \"shuffle\"\n",
            &[32013, 2],
            0.1,
            "bound on the file: zfp rate 8: ok",
        ),
        (
            "quantize uint16 + scaleoffset (integers: lossless)",
            "[[pipeline]]\nstage = \"quantize\"\ndtype = \"uint16\"\nrange = [-0.2, 1.1]\n[[pipeline]]\nstage = \"scaleoffset\"\n",
            &[6],
            // Half a quantisation step, plus the float32 rounding of values up to 1.1.
            1.3 / 65535.0 / 2.0 + 1.1 * f64::from(f32::EPSILON),
            "bound on the file: scaleoffset abs 0: ok, worst 0.0 over",
        ),
    ];
    let read_back = |name: &str| read_export(dir, "/v", "original.npy", name);
    for (name, pipeline, ids, bound, check) in cases {
        let one = scenario(dir, pipeline);
        let out = export(dir, &one, Some(&plugins));
        assert_ok(&out, name);
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains(check),
            "{name}: expected {check:?} in {stdout}"
        );
        assert!(
            stdout.contains("note: stage ") && stdout.contains("its bound is checked on the file"),
            "{name}: {stdout}"
        );
        let report = read_back(name);
        let ids_read: Vec<u64> = report["filters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f[0].as_u64().unwrap())
            .collect();
        assert_eq!(ids_read, ids, "{name}: {report}");
        let diff = report["max_abs_diff"].as_f64().unwrap();
        assert!(diff <= bound, "{name}: |read - original| {diff} > {bound}");
    }

    // hdf5plugin's SZ3 in L2-norm mode breaks its bound (hdf5plugin 7.1: an L2 norm of the
    // error near 235 per chunk for a bound of 0.5): photonqa says so, with the worst chunk's
    // norm as h5py computes it, and exits 1.
    let l2 = scenario(
        dir,
        "[[pipeline]]\nstage = \"sz3\"\nmode = \"l2\"\nl2_norm = 0.5\n",
    );
    let out = export(dir, &l2, Some(&plugins));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let prefix = "bound on the file: sz3 l2 0.5: VIOLATED, worst ";
    let line = stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("{prefix:?} in {stdout}"));
    let worst: f64 = line[prefix.len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let report = read_back("sz3 l2");
    let peer = report["chunk_l2"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(peer > 0.5, "the peer sees no violation: {report}");
    assert!(
        (worst - peer).abs() <= 1e-9 * peer,
        "photonqa's worst L2 {worst} vs h5py's {peer}"
    );

    // Without the plugin folder (no HDF5_PLUGIN_PATH, no hdf5plugin to find) HDF5 cannot run
    // SZ3: one line naming the filter.
    let abs = scenario(dir, "[[pipeline]]\nstage = \"sz3\"\nabs_error = 1e-3\n");
    let point = &abs.working_points()[0].id;
    assert_one_line_error(
        &photonqa_without_hdf5plugin(
            dir,
            &[
                "export", "s.toml", "--point", point, "--out", "x.h5::/v", "--force",
            ],
        ),
        &["HDF5 filter 32024 is not available", "HDF5_PLUGIN_PATH"],
        "sz3 without the plugin folder",
    );
}

#[test]
fn export_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    scenario(
        dir,
        "[[pipeline]]\nstage = \"zstd\"\nlevel = { sweep = [1, 3] }\n",
    );
    let cases: [(&[&str], &str); 2] = [
        (
            &[
                "export",
                "s.toml",
                "--point",
                "wp-0000000000",
                "--out",
                "x.h5::/d",
            ],
            "no working point wp-0000000000 (points: wp-",
        ),
        (
            &[
                "export",
                "s.toml",
                "--point",
                "wp-0000000000",
                "--out",
                "x.h5",
            ],
            "--out x.h5: expected file.h5::/path",
        ),
    ];
    for (args, message) in cases {
        assert_one_line_error(&photonqa(dir, args), &[message], &args.join(" "));
    }
}

/// A binned dataset would not have the input's shape, which is what a reader of the file expects
/// (and what every other export writes): an export of a chain that bins is refused in one line,
/// before any file is written.
#[test]
fn export_refuses_chains_that_change_the_shape() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    for (factors, message) in [
        (
            "factor_z = 2\nfactor_x = 4",
            "stage bin: changes the shape of a chunk from [24, 128, 128] to [12, 128, 32]: an HDF5 dataset stores chunks of the input's shape, so export and artifact = \"hdf5\" take only chains that keep it",
        ),
        // Binning along axis 0 alone changes it too.
        (
            "factor_z = 8",
            "stage bin: changes the shape of a chunk from [24, 128, 128] to [3, 128, 128]",
        ),
    ] {
        let scenario = scenario(
            dir,
            &format!("[[pipeline]]\nstage = \"bin\"\n{factors}\n[[pipeline]]\nstage = \"zstd\"\n"),
        );
        let point = scenario.working_points()[0].id.clone();
        let args = ["export", "s.toml", "--point", &point, "--out", "x.h5::/d"];
        assert_one_line_error(&photonqa(dir, &args), &[message], factors);
        assert!(!dir.join("x.h5").exists(), "{factors}: a file was written");
    }
    // Factors of 1 keep the shape: exported as any other chain.
    let scenario = scenario(
        dir,
        "[[pipeline]]\nstage = \"bin\"\n[[pipeline]]\nstage = \"zstd\"\n",
    );
    let point = scenario.working_points()[0].id.clone();
    let args = ["export", "s.toml", "--point", &point, "--out", "x.h5::/d"];
    assert_ok(&photonqa(dir, &args), "bin with factors 1");
}

/// A file `x.h5` holding a dataset `/keep` that no export may lose; returns it and its bytes.
fn file_to_keep(dir: &Path) -> (NdArray, Vec<u8>) {
    let keep =
        ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[3, 5]), |ix| (ix[0] * 5 + ix[1]) as i32)
            .into_nd();
    write_hdf5(&dir.join("x.h5"), "/keep", &keep).unwrap();
    (keep, std::fs::read(dir.join("x.h5")).unwrap())
}

/// The reference volume through `deflate` at `level` (a filter HDF5 runs itself, so that
/// photonqa reads the export back in process): the values the export stores.
fn deflated_points(dir: &Path) -> Vec<String> {
    let scenario = scenario(
        dir,
        "[[pipeline]]\nstage = \"deflate\"\nlevel = { sweep = [1, 9] }\n",
    );
    scenario
        .working_points()
        .into_iter()
        .map(|p| p.id)
        .collect()
}

/// Whether `file` holds an object named `name` at its root.
fn has_link(file: &Path, name: &str) -> bool {
    hdf5::File::open(file).unwrap().link_exists(name)
}

/// The `photonqa_point_id` attribute of dataset `path` of `file`.
fn point_of(file: &Path, path: &str) -> String {
    let value: hdf5::types::VarLenUnicode = hdf5::File::open(file)
        .and_then(|f| f.dataset(path))
        .and_then(|d| d.attr("photonqa_point_id"))
        .and_then(|a| a.read_scalar())
        .unwrap();
    value.to_string()
}

/// Regression: `export --out existing.h5::/new` truncated the whole file. Now an existing file
/// is refused unless --force (which replaces it) or --append (which adds the dataset, and
/// refuses to replace an existing dataset without --force); what is refused is left byte for
/// byte as it was, and no temporary file stays behind.
#[test]
fn export_never_destroys_an_existing_file_unless_told_to() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let points = deflated_points(dir);
    let (keep, bytes) = file_to_keep(dir);
    let original = read_reference_volume();
    let export = |point: &str, out: &str, flags: &[&str]| {
        let mut args = vec!["export", "s.toml", "--point", point, "--out", out];
        args.extend(flags);
        photonqa(dir, &args)
    };
    let refused = |out: &std::process::Output, message: &str, what: &str| {
        assert_one_line_error(out, &[message], what);
        assert!(
            std::fs::read(dir.join("x.h5")).unwrap() == bytes,
            "{what}: the refused export changed x.h5"
        );
        assert_eq!(files_in(dir), ["s.toml", "x.h5"], "{what}");
    };

    let out = export(&points[0], "x.h5::/new", &[]);
    refused(
        &out,
        "photonqa: x.h5: exists already: --force replaces the file, --append adds the dataset to it",
        "no flag",
    );

    assert_ok(&export(&points[0], "x.h5::/new", &["--append"]), "--append");
    assert_eq!(read_hdf5(&dir.join("x.h5"), "/keep").unwrap(), keep);
    assert_eq!(read_hdf5(&dir.join("x.h5"), "/new").unwrap(), original);
    assert_eq!(files_in(dir), ["s.toml", "x.h5"]);

    let bytes = std::fs::read(dir.join("x.h5")).unwrap();
    let refused_again = |out: &std::process::Output, message: &str, what: &str| {
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.contains(message),
            "{what}: expected {message:?} in {stderr}"
        );
        assert!(std::fs::read(dir.join("x.h5")).unwrap() == bytes, "{what}");
        assert_eq!(files_in(dir), ["s.toml", "x.h5"], "{what}");
    };
    refused_again(
        &export(&points[1], "x.h5::/new", &["--append"]),
        "photonqa: x.h5::/new: the dataset exists already: --force replaces it",
        "--append onto a dataset",
    );
    refused_again(
        &export(&points[1], "x.h5::/keep/inner", &["--append"]),
        "photonqa: x.h5::/keep/inner: /keep is not a group",
        "--append under a dataset",
    );

    // --append --force replaces the dataset (the other point's level: another file size).
    assert_ok(
        &export(&points[1], "x.h5::/new", &["--append", "--force"]),
        "--append --force",
    );
    assert_eq!(read_hdf5(&dir.join("x.h5"), "/keep").unwrap(), keep);
    assert_eq!(read_hdf5(&dir.join("x.h5"), "/new").unwrap(), original);
    assert_eq!(point_of(&dir.join("x.h5"), "/new"), points[1]);

    // --force alone replaces the whole file.
    assert_ok(&export(&points[0], "x.h5::/only", &["--force"]), "--force");
    assert!(
        !has_link(&dir.join("x.h5"), "keep"),
        "--force kept the old file's datasets"
    );
    assert_eq!(read_hdf5(&dir.join("x.h5"), "/only").unwrap(), original);
    assert_eq!(files_in(dir), ["s.toml", "x.h5"]);
}

/// Regression: a `kill -9` during an export left an unopenable file where a good one was. The
/// export is killed (SIGKILL) after its data are written and before the rename, replacing the
/// file (--force) and adding to it (--append): the old file is intact byte for byte, the only
/// trace is one hidden `.x.h5.*.photonqa-tmp` file, and a later export to the same file is not
/// disturbed by it.
#[test]
fn a_killed_export_leaves_the_old_file_intact() {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let points = deflated_points(dir);
    for flag in ["--force", "--append"] {
        for name in files_in(dir) {
            if name != "s.toml" {
                std::fs::remove_file(dir.join(name)).unwrap();
            }
        }
        let (keep, bytes) = file_to_keep(dir);
        let export = [
            "export",
            "s.toml",
            "--point",
            &points[0],
            "--out",
            "x.h5::/new",
            flag,
        ];
        let mut child = Command::new(env!("CARGO_BIN_EXE_photonqa"))
            .current_dir(dir)
            .args(export)
            .env("PHOTONQA_PAUSE_BEFORE_RENAME", "x.h5")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        assert!(
            line.starts_with("photonqa: x.h5: paused before the rename"),
            "{flag}: {line}"
        );
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "{flag}: {status}");

        assert!(
            std::fs::read(dir.join("x.h5")).unwrap() == bytes,
            "{flag}: the killed export changed x.h5"
        );
        let names = files_in(dir);
        assert_eq!(names.len(), 3, "{flag}: {names:?}");
        let leftover = &names[0];
        assert!(
            leftover.starts_with(".x.h5.") && leftover.ends_with(".photonqa-tmp"),
            "{flag}: {names:?}"
        );
        assert_eq!(names[1..], ["s.toml", "x.h5"], "{flag}");

        // The next export is not disturbed by the leftover, which it leaves alone.
        let out = photonqa(dir, &export);
        assert_ok(&out, flag);
        assert_eq!(
            read_hdf5(&dir.join("x.h5"), "/new").unwrap(),
            read_reference_volume(),
            "{flag}"
        );
        let kept = has_link(&dir.join("x.h5"), "keep");
        assert_eq!(kept, flag == "--append", "{flag}");
        if kept {
            assert_eq!(read_hdf5(&dir.join("x.h5"), "/keep").unwrap(), keep);
        }
        assert_eq!(files_in(dir), names, "{flag}");
    }
}

/// An artifact scenario on the reference volume in chunks of 24 rows (the last one, 16 rows,
/// is padded in the file as HDF5 pads edge chunks).
fn artifact_scenario(dir: &Path, artifact: &str, variants: &str) {
    let text = format!(
        "[scenario]\nname = \"artifact\"\nchunk_slices = 24\nartifact = \"{artifact}\"\n[input]\nsource = \"{}\"\n{variants}",
        reference_volume()
    );
    std::fs::write(dir.join("s.toml"), text).unwrap();
}

/// With `artifact = "hdf5"` a scenario measures the file its export writes: each point's rate
/// is the storage size h5py reports for the exported dataset, byte for byte, and its
/// distortion is that of the data h5py + hdf5plugin read back (hdf5plugin's zstd, SZ3 and
/// bitshuffle/LZ4 and Blosc builds and HDF5's N-bit run the filters, not photonqa's codec
/// crates).
#[test]
fn artifact_scenarios_measure_what_the_file_stores() {
    if !common::python_peers("import h5py, hdf5plugin, numpy", "h5py and hdf5plugin") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_npy(&dir.join("original.npy"), &read_reference_volume()).unwrap();
    let plugins = plugin_path();
    artifact_scenario(
        dir,
        "hdf5",
        "[[variant]]\nname = \"zstd\"\n[[variant.pipeline]]\nstage = \"zstd\"\nlevel = 3\n\
         [[variant]]\nname = \"sz3\"\n[[variant.pipeline]]\nstage = \"sz3\"\nabs_error = { sweep = [1e-3, 1e-2] }\n\
         [[variant]]\nname = \"quantized\"\n[[variant.pipeline]]\nstage = \"quantize\"\ndtype = \"uint8\"\n\
         [[variant.pipeline]]\nstage = \"bitshuffle\"\n[[variant.pipeline]]\nstage = \"lz4\"\n\
         [[variant]]\nname = \"nbit\"\n[[variant.pipeline]]\nstage = \"quantize\"\ndtype = \"uint16\"\nbits = 10\n\
         [[variant.pipeline]]\nstage = \"nbit\"\nbits = 10\n\
         [[variant]]\nname = \"blosc\"\n[[variant.pipeline]]\nstage = \"blosc\"\ncname = \"blosclz\"\n",
    );
    let out = photonqa_with_plugins(dir, &["run", "s.toml", "--out", "out"], Some(&plugins));
    assert_ok(&out, "run");
    let rows = common::sorted_rows(&dir.join("out"));
    assert_eq!(rows.len(), 6);
    // The plugin builds that ran are in the provenance (hashes of hdf5plugin's files).
    let sz3_build = &rows[0]["provenance"]["codecs"]["hdf5-plugin:libh5sz3.so"];
    let sz3_hash = blake3::hash(&std::fs::read(Path::new(&plugins).join("libh5sz3.so")).unwrap());
    assert_eq!(
        sz3_build.as_str(),
        Some(&sz3_hash.to_hex()[..16]),
        "{}",
        rows[0]
    );
    for row in &rows {
        let id = row["point_id"].as_str().unwrap();
        assert_eq!(row["status"], "ok", "{row}");
        let export = photonqa_with_plugins(
            dir,
            &[
                "export", "s.toml", "--point", id, "--out", "x.h5::/v", "--force",
            ],
            Some(&plugins),
        );
        assert_ok(&export, id);
        let peer = read_export(dir, "/v", "original.npy", id);
        assert_eq!(
            row["rate"]["compressed_bytes"], peer["storage_size"],
            "{id}: the run's rate against the file's storage: {peer}"
        );
        let max_error = row["distortion"]["max_abs_error"].as_f64().unwrap();
        let peer_max = peer["max_abs_diff"].as_f64().unwrap();
        assert_eq!(max_error, peer_max, "{id}: max |error|");
        let mse = row["distortion"]["mse"].as_f64().unwrap();
        let peer_mse = peer["mse"].as_f64().unwrap();
        assert!(
            (mse - peer_mse).abs() <= 1e-12 * peer_mse,
            "{id}: mse {mse} vs h5py's {peer_mse}"
        );
        let lossless = ["zstd", "blosc"].contains(&row["params"]["variant"].as_str().unwrap());
        assert_eq!(max_error == 0.0, lossless, "{id}: max |error| {max_error}");
    }
    // SZ3's absolute bound is checked on what HDF5 read back.
    let sz3: Vec<&Value> = rows
        .iter()
        .filter(|r| r["params"]["variant"] == "sz3")
        .collect();
    assert_eq!(sz3.len(), 2);
    for row in sz3 {
        let bound = &row["bounds"][0];
        assert_eq!(bound["bound_ok"], true, "{row}");
        let limit = row["params"]["sz3.abs_error"].as_f64().unwrap();
        let worst = bound["observed_worst"].as_f64().unwrap();
        assert!(worst > 0.5 * limit && worst <= limit, "{row}");
    }
}

/// Writes the reference volume with h5py + hdf5plugin, in chunks of 24 rows, once per SZ3 option
/// set given as `name=value` arguments, and prints the bytes each dataset stores, one a line.
const H5PY_SZ3_SIZES: &str = "
import sys, h5py, hdf5plugin
source, dataset, out = sys.argv[1:4]
with h5py.File(source, 'r') as f:
    volume = f[dataset][...]
for option in sys.argv[4:]:
    name, value = option.split('=')
    with h5py.File(out, 'w') as f:
        filtered = hdf5plugin.SZ3(**{name: float(value)})
        f.create_dataset('v', data=volume, chunks=(24,) + volume.shape[1:], **filtered)
    with h5py.File(out, 'r') as f:
        print(f['v'].id.get_storage_size())
";

/// hdf5plugin's SZ3 runs its own code in photonqa as in h5py: a point's rate is the bytes h5py +
/// hdf5plugin store for the same array, chunks and bound. (The plugins once called the libzstd
/// the CLI links instead of their own, which made SZ3 chunks a few bytes off.)
#[test]
fn sz3_points_store_the_bytes_h5py_writes() {
    if !common::python_peers("import h5py, hdf5plugin, numpy", "h5py and hdf5plugin") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    artifact_scenario(
        dir,
        "hdf5",
        "[[variant]]\nname = \"abs\"\n[[variant.pipeline]]\nstage = \"sz3\"\nabs_error = 1e-3\n\
         [[variant]]\nname = \"psnr\"\n[[variant.pipeline]]\nstage = \"sz3\"\nmode = \"psnr\"\npsnr = 30.0\n",
    );
    let out = photonqa_with_plugins(
        dir,
        &["run", "s.toml", "--out", "out"],
        Some(&plugin_path()),
    );
    assert_ok(&out, "run");
    let measured: Vec<u64> = common::sorted_rows(&dir.join("out"))
        .iter()
        .map(|row| row["rate"]["compressed_bytes"].as_u64().expect("a rate"))
        .collect();
    let source = common::repo_root().join("reference-data/porous-tomo.h5");
    let h5py = Command::new("python3")
        .args(["-c", H5PY_SZ3_SIZES])
        .arg(&source)
        .args(["/volume", dir.join("h5py.h5").to_str().unwrap()])
        .args(["absolute=1e-3", "peak_signal_to_noise_ratio=30.0"])
        .output()
        .unwrap();
    assert!(h5py.status.success(), "{}", text(&h5py.stderr));
    let written: Vec<u64> = text(&h5py.stdout)
        .lines()
        .map(|line| line.parse().unwrap())
        .collect();
    assert_eq!(
        measured, written,
        "photonqa's SZ3 bytes (abs, psnr) against h5py's"
    );
}

/// An artifact scenario fails before it runs, in one line: a codec photonqa writes no HDF5
/// filter for and a stage with no registered filter (their lines in the scenario), an unknown
/// artifact, and a filter the HDF5 library cannot load.
#[test]
fn artifact_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let zstd = "[[pipeline]]\nstage = \"zstd\"\n";
    let cases: [(&str, String, &str); 5] = [
        (
            "hdf5",
            "[[pipeline]]\nstage = \"pcodec\"\n".into(),
            "s.toml:8:9: stage 'pcodec': photonqa does not write it as an HDF5 filter",
        ),
        (
            "zarr",
            zstd.into(),
            "s.toml:4:12: scenario.artifact = \"zarr\" is not known (allowed: hdf5",
        ),
        (
            "hdf5",
            format!(
                "[[pipeline]]\nstage = \"quantize\"\ndtype = \"uint8\"\n[[pipeline]]\nstage = \"dictionary\"\n{zstd}"
            ),
            "s.toml:11:9: stage 'dictionary': has no registered HDF5 filter",
        ),
        (
            "hdf5",
            format!("[[pipeline]]\nstage = \"bin\"\nfactor_y = 2\nfactor_x = 2\n{zstd}"),
            "s.toml:8:9: stage 'bin': changes the shape of a chunk from [24, 128, 128] to [24, 64, 64]: an HDF5 dataset stores chunks of the input's shape, so export and artifact = \"hdf5\" take only chains that keep it",
        ),
        (
            "hdf5",
            "[[pipeline]]\nstage = \"sz3\"\nabs_error = 1e-3\n".into(),
            "HDF5 filter 32024 is not available to this HDF5 library: no python3 on PATH (nor in $VIRTUAL_ENV) has hdf5plugin; `pip install hdf5plugin`",
        ),
    ];
    for (artifact, pipeline, message) in cases {
        artifact_scenario(dir, artifact, &pipeline);
        let out = photonqa_without_hdf5plugin(dir, &["run", "s.toml", "--out", "out"]);
        assert_one_line_error(&out, &[message], artifact);
    }
}

/// `scenarios/codec-shootout-hdf5.toml`, the shootout as the deployed files store it,
/// validates with hdf5plugin's filters, given in `HDF5_PLUGIN_PATH` or found through the
/// python3 on PATH or of the active virtual environment, and without them says which filter is
/// missing and how to get it.
#[test]
fn the_hdf5_shootout_validates_with_its_plugins() {
    if !common::python_peers("import h5py, hdf5plugin, numpy", "h5py and hdf5plugin") {
        return;
    }
    let folder = common::repo_root().join("scenarios");
    let args = ["validate", "codec-shootout-hdf5.toml"];
    let out = photonqa_with_plugins(&folder, &args, Some(&plugin_path()));
    assert_ok(&out, "validate");
    assert!(
        text(&out.stdout).contains("38 working points"),
        "{}",
        text(&out.stdout)
    );
    let out = photonqa_with_plugins(&folder, &args, None);
    assert_ok(&out, "validate, hdf5plugin found through python3");
    let dir = tempfile::tempdir().unwrap();
    let scenario = folder.join("codec-shootout-hdf5.toml");
    let args = ["validate", scenario.to_str().unwrap()];
    // An active virtual environment's python3 is asked first, even when not on PATH.
    let venv = dir.path().join("venv");
    python_wrapper(&venv.join("bin"), "");
    let out = without_hdf5plugin(dir.path())
        .args(args)
        .env("VIRTUAL_ENV", &venv)
        .output()
        .unwrap();
    assert_ok(
        &out,
        "validate, hdf5plugin found through $VIRTUAL_ENV/bin/python3",
    );
    let out = photonqa_without_hdf5plugin(dir.path(), &args);
    assert_one_line_error(
        &out,
        &[
            "HDF5 filter 32008 is not available",
            "`pip install hdf5plugin` (photonqa then finds its plugins)",
        ],
        "validate without hdf5plugin",
    );
}

/// `photonqa run s.toml --out out` in `dir` with hdf5plugin's folder as `HDF5_PLUGIN_PATH` and
/// `temporary` as the system's temporary folder (`TMPDIR`).
fn run_with_temporary_folder(dir: &Path, temporary: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_photonqa"))
        .current_dir(dir)
        .args(["run", "s.toml", "--out", "out"])
        .env("HDF5_PLUGIN_PATH", plugin_path())
        .env("TMPDIR", temporary)
        .output()
        .unwrap()
}

/// When the plugins cannot be copied to be bound to photonqa's HDF5 (the temporary folder is
/// missing), a run that needs a third-party filter stops in one line naming the folder, rather
/// than letting HDF5 load the plugins unbound (which may fail every chunk, store other bytes
/// than h5py, or, inside Python, end the interpreter with status 0); a run with built-in
/// filters only is not concerned.
#[test]
fn plugins_that_cannot_be_prepared_stop_the_run_in_one_line() {
    if !common::python_peers("import hdf5plugin", "hdf5plugin") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let missing = dir.join("no-such-folder");
    let run = |stage: &str| {
        artifact_scenario(dir, "hdf5", &format!("[[pipeline]]\n{stage}\n"));
        let _ = std::fs::remove_dir_all(dir.join("out"));
        run_with_temporary_folder(dir, &missing)
    };
    let cause = format!(
        "cannot make a folder for copies of the HDF5 plugins in {}",
        missing.display()
    );
    let sz3 = run("stage = \"sz3\"\nabs_error = 1e-3");
    assert_one_line_error(&sz3, &[&cause, "TMPDIR"], "plugins not prepared");
    let out = run("stage = \"deflate\"");
    assert_ok(&out, "a run with HDF5's own deflate");
}

/// Writes `a.npy` and `x.h5::/v`, the same small uint16 volume, the latter compressed with
/// hdf5plugin's bitshuffle/LZ4 (as detectors write their frames).
const H5PY_BITSHUFFLE_INPUT: &str = "
import sys, h5py, hdf5plugin, numpy as np
a = np.random.default_rng(7).poisson(3.0, size=(6, 20, 24)).astype(np.uint16)
np.save(sys.argv[1], a)
with h5py.File(sys.argv[2], 'w') as f:
    f.create_dataset('v', data=a, chunks=(2, 20, 24), **hdf5plugin.Bitshuffle())
";

/// An input stored through a third-party filter is read with hdf5plugin's plugins, found
/// without `HDF5_PLUGIN_PATH` as for writing: the values are those NumPy saved.
#[test]
fn inputs_compressed_by_hdf5plugin_are_read_without_settings() {
    if !common::python_peers("import h5py, hdf5plugin, numpy", "h5py and hdf5plugin") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let written = Command::new("python3")
        .args(["-c", H5PY_BITSHUFFLE_INPUT])
        .args([dir.join("a.npy"), dir.join("x.h5")])
        .output()
        .unwrap();
    assert!(written.status.success(), "{}", text(&written.stderr));
    let args = [
        "metrics",
        "x.h5::/v",
        "a.npy",
        "--json",
        "--only",
        "max_abs_error",
    ];
    let out = photonqa_with_plugins(dir, &args, None);
    assert_ok(&out, "metrics of a bitshuffle/LZ4 input");
    let metrics: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(metrics["count"], 6 * 20 * 24);
    assert_eq!(metrics["max_abs_error"], 0.0);
}

/// The folder of plugin copies that a killed process left (its `in-use` file no longer
/// locked) is removed by the next process that makes one; a folder still in use (its file
/// locked, here by this test) or still being made (no such file yet) is left alone; and a
/// process removes its own at exit.
#[test]
fn plugin_copies_of_killed_processes_are_removed() {
    if !common::python_peers("import hdf5plugin", "hdf5plugin") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let temporary = dir.join("tmp");
    let folder = |name: &str| temporary.join(format!("photonqa-hdf5-plugins-{name}"));
    for name in ["abandoned", "alive", "being-made"] {
        std::fs::create_dir_all(folder(name)).unwrap();
        std::fs::write(folder(name).join("libh5sz3.so"), b"a copy").unwrap();
    }
    std::fs::write(folder("abandoned").join("in-use"), b"").unwrap();
    let held = std::fs::File::create(folder("alive").join("in-use")).unwrap();
    held.lock().unwrap();
    artifact_scenario(
        dir,
        "hdf5",
        "[[pipeline]]\nstage = \"sz3\"\nabs_error = 1e-3\n",
    );
    let out = run_with_temporary_folder(dir, &temporary);
    assert_ok(&out, "run with SZ3's plugin");
    let mut left: Vec<String> = std::fs::read_dir(&temporary)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "photonqa-hdf5-plugins-alive",
            "photonqa-hdf5-plugins-being-made"
        ]
    );
    drop(held);
}
