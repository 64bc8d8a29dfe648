//! The `veto` stage against NumPy on the sparse SX frames (`reference-data/sx-sparse.h5`,
//! `photonqa gen sx` with few hits): per criterion and threshold, the peer decides which frames
//! to keep (total counts by `numpy.sum`; peak counts by the independent peak finder of
//! `tests/peers/sx_fixtures.py`), packs the bitmap with `numpy.packbits(kept,
//! bitorder="little")` and makes the decoded series by assignment (dropped frames zero). The
//! stage's bitmap, kept frames and decoded series must equal them exactly, in process; through
//! `photonqa run` (8-frame chunks, the plain `bytes` packing) the rate must be exactly the
//! peer's `4 + ceil(n / 8) + kept frames' bytes` per chunk, and the `sx` analysis's
//! `frames_kept`, `frames_dropped`, `peaks_lost` and `hit_recall` those the peer computes from
//! its own peaks of the original and decoded frames (exact: integers and one float64 division).
//! Also: bad parameters and a 2-D input are one-line errors naming the parameter or the shape.

mod common;

use std::path::Path;

use common::{
    assert_one_line_error, photonqa, python_peers, python_with_stdin, repo_root, sorted_rows,
};
use photonqa::data::source::RawSource;
use photonqa::data::{NdArray, SourceSpec, VolumeSource};
use photonqa::pipeline::{ParamValue, Stage, StageConfig, StageInput, registry};
use serde_json::Value;

const FRAMES: &str = "reference-data/sx-sparse.h5::/frames";

/// The finder of the scenario (`scenarios/sx-veto.toml`): the `sx` analysis's defaults but
/// `adc_threshold = 20`, hits with at least 5 peaks.
const ADC: f64 = 20.0;
const HIT_THRESHOLD: u64 = 5;
const CHUNK: usize = 8;

/// For each line of stdin (`criterion threshold prefix`): `prefix`bitmap.npy,
/// `prefix`decoded.npy and one JSON line of the science and the rate.
const PEER: &str = r#"
import json, sys
sys.path.insert(0, "tests/peers")
import h5py
import numpy as np
from sx_fixtures import find_peaks, match
path, adc, hit, chunk = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with h5py.File(path, "r") as f:
    frames = f["frames"][...]
p = {"snr_threshold": 6.0, "clip_snr": 3.0, "adc_threshold": adc, "min_pixels": 2,
     "max_pixels": 200, "iterations": 10}
x = frames.astype(np.float64)
peaks = [find_peaks(f, p) for f in x]
counts = x.sum(axis=(1, 2))
for line in sys.stdin:
    criterion, threshold, prefix = line.split()
    if criterion == "counts":
        kept = counts >= float(threshold)
    else:
        kept = np.array([len(q) >= int(threshold) for q in peaks])
    np.save(prefix + "bitmap.npy", np.packbits(kept, bitorder="little"))
    decoded = np.zeros_like(frames)
    decoded[kept] = frames[kept]
    np.save(prefix + "decoded.npy", decoded)
    found = [find_peaks(f, p) for f in decoded.astype(np.float64)]
    matched = sum(len(match(a, b, 2.0)) for a, b in zip(peaks, found))
    hits_o = np.array([len(a) >= hit for a in peaks])
    hits_d = np.array([len(b) >= hit for b in found])
    nonzero = np.array([np.any(f != 0) for f in decoded])
    n = len(frames)
    rate = 0
    for start in range(0, n, chunk):
        k = kept[start:start + chunk]
        rate += 4 + (len(k) + 7) // 8 + int(k.sum()) * frames[0].size * frames.itemsize
    print(json.dumps({
        "frames_kept": int(nonzero.sum()),
        "frames_dropped": [int(i) for i in np.flatnonzero(~nonzero)],
        "peaks_lost": sum(map(len, peaks)) - matched,
        "hit_recall": float(np.sum(hits_o & hits_d) / np.sum(hits_o)),
        "compressed_bytes": rate,
    }))
"#;

/// The cases: criterion and threshold.
const CASES: &[(&str, &str)] = &[
    ("peaks", "1"),
    ("peaks", "3"),
    ("peaks", "5"),
    ("peaks", "12"),
    ("counts", "45000"),
    ("counts", "120000"),
];

fn frames() -> NdArray {
    let path = repo_root().join(FRAMES).display().to_string();
    let source = SourceSpec::parse(&path, Path::new(""), None)
        .unwrap()
        .open()
        .unwrap();
    source.read_slab(0..source.shape()[0]).unwrap()
}

fn read_npy(path: &Path) -> NdArray {
    let source = RawSource::open_npy(path).unwrap();
    source.read_slab(0..source.shape()[0]).unwrap()
}

/// The stage's configuration for a case.
fn config(criterion: &str, threshold: &str) -> StageConfig {
    let mut params = vec![
        ("criterion", ParamValue::Str(criterion.into())),
        ("adc_threshold", ParamValue::Float(ADC)),
    ];
    params.push(match criterion {
        "counts" => ("min_counts", ParamValue::Float(threshold.parse().unwrap())),
        _ => ("min_peaks", ParamValue::Int(threshold.parse().unwrap())),
    });
    let def = registry::find("veto").unwrap();
    // Every other parameter at its default.
    for p in def.params {
        if !params.iter().any(|(n, _)| *n == p.name)
            && let Some(v) = p.default_value()
        {
            params.push((p.name, v));
        }
    }
    StageConfig {
        stage: def.id,
        params,
    }
}

#[test]
fn the_kept_frames_bitmap_decoded_series_rate_and_science_match_numpy() {
    if !python_peers(
        "import numpy, scipy, h5py",
        "NumPy, SciPy and h5py (the veto peer)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let frames = frames();
    let mut lines = String::new();
    for (k, (criterion, threshold)) in CASES.iter().enumerate() {
        let prefix = dir.path().join(format!("case{k}-"));
        lines += &format!("{criterion} {threshold} {}\n", prefix.display());
    }
    let source = repo_root().join("reference-data/sx-sparse.h5");
    let args = [
        source.display().to_string(),
        ADC.to_string(),
        HIT_THRESHOLD.to_string(),
        CHUNK.to_string(),
    ];
    let expected: Vec<Value> = python_with_stdin(PEER, &args, &lines)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(expected.len(), CASES.len());

    // In process: the stage on the whole series.
    for (k, (criterion, threshold)) in CASES.iter().enumerate() {
        let config = config(criterion, threshold);
        let def = registry::find("veto").unwrap();
        let Ok(Stage::ArrayToArray(stage, _)) = (def.create)(
            &config,
            StageInput {
                dtype: frames.dtype(),
            },
        ) else {
            panic!("veto builds as an array->array stage");
        };
        let (kept, side) = stage.encode_with_side(frames.clone()).unwrap();
        let bitmap = read_npy(&dir.path().join(format!("case{k}-bitmap.npy")));
        let bitmap: Vec<u8> = bitmap.to_f64().iter().map(|&v| v as u8).collect();
        assert_eq!(side, bitmap, "{criterion} {threshold}: bitmap");
        let decoded = stage
            .decode_with(kept.clone(), frames.shape(), &side)
            .unwrap();
        let peer = read_npy(&dir.path().join(format!("case{k}-decoded.npy")));
        assert!(decoded == peer, "{criterion} {threshold}: decoded series");
        let n_kept = bitmap
            .iter()
            .map(|b| b.count_ones() as usize)
            .sum::<usize>();
        assert_eq!(kept.shape(), [n_kept, frames.shape()[1], frames.shape()[2]]);
        assert_eq!(
            expected[k]["frames_kept"].as_u64().unwrap() as usize,
            n_kept,
            "{criterion} {threshold}: no kept frame of the sparse frames is zero"
        );
    }

    // Through `photonqa run`: the rate and the science columns.
    let mut variants = String::new();
    for (k, (criterion, threshold)) in CASES.iter().enumerate() {
        let threshold = match *criterion {
            "counts" => format!("min_counts = {threshold}"),
            _ => format!("min_peaks = {threshold}"),
        };
        variants += &format!(
            "[[variant]]\nname = \"case{k}\"\n[[variant.pipeline]]\nstage = \"veto\"\n\
             criterion = \"{criterion}\"\nadc_threshold = {ADC}\n{threshold}\n"
        );
    }
    let scenario = format!(
        "[scenario]\nname = \"veto\"\nchunk_slices = {CHUNK}\n[input]\nsource = \"{}\"\n{variants}\
         [metrics]\ndistortion = [\"max_abs_error\"]\n[[analysis]]\nkind = \"sx\"\n\
         adc_threshold = {ADC}\nhit_threshold = {HIT_THRESHOLD}\n",
        repo_root().join(FRAMES).display()
    );
    std::fs::write(dir.path().join("veto.toml"), scenario).unwrap();
    let run = photonqa(dir.path(), &["run", "veto.toml", "--out", "out"]);
    common::assert_ok(&run, "photonqa run");
    let rows = sorted_rows(&dir.path().join("out"));
    assert_eq!(rows.len(), CASES.len());
    for (row, expected) in rows.iter().zip(&expected) {
        let sx = &row["science"]["sx"];
        let what = &row["pipeline"];
        for key in ["frames_kept", "frames_dropped", "peaks_lost"] {
            assert_eq!(sx[key], expected[key], "{key} of {what}");
        }
        assert_eq!(
            sx["hit_recall"].as_f64(),
            expected["hit_recall"].as_f64(),
            "hit_recall of {what}"
        );
        assert_eq!(
            row["rate"]["compressed_bytes"], expected["compressed_bytes"],
            "rate of {what}"
        );
    }
}

#[test]
fn bad_parameters_and_inputs_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let source = repo_root().join(FRAMES).display().to_string();
    let run = |name: &str, source: &str, stage: &str, needles: &[&str]| {
        let scenario = format!(
            "[scenario]\nname = \"{name}\"\n[input]\nsource = \"{source}\"\n\
             [[pipeline]]\nstage = \"veto\"\n{stage}[metrics]\ndistortion = [\"max_abs_error\"]\n"
        );
        std::fs::write(dir.path().join(format!("{name}.toml")), scenario).unwrap();
        let out = photonqa(dir.path(), &["run", &format!("{name}.toml"), "--out", name]);
        assert_one_line_error(&out, needles, name);
    };
    run(
        "counts",
        &source,
        "criterion = \"counts\"\n",
        &["veto", "min_counts"],
    );
    run(
        "stray",
        &source,
        "min_counts = 5.0\n",
        &["veto", "min_counts", "criterion"],
    );
    run(
        "pixels",
        &source,
        "min_pixels = 9\nmax_pixels = 3\n",
        &["veto", "min_pixels", "max_pixels"],
    );
    run(
        "snr",
        &source,
        "snr_threshold = 0.0\n",
        &["veto", "snr_threshold"],
    );
    run("beam", &source, "beam_x = 500.0\n", &["veto", "beam_x"]);
    // A 2-D frame is not a series of frames.
    let bam = repo_root()
        .join("reference-data/BAM_2D.h5::/sasentry01/data/I")
        .display()
        .to_string();
    run("rank", &bam, "", &["veto", "[n, y, x]"]);
}
