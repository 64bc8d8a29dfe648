//! The `sx` (Bragg peaks) and `counting` (Poisson-sigma error) analyses against the NumPy/SciPy
//! peer `tests/peers/sx_fixtures.py` on the committed frames `reference-data/sx-frames.h5` and
//! on lossy versions of them; ground truth of `photonqa gen sx`; chunked runs against one pass
//! over the whole arrays; one-line errors for bad parameters.
//!
//! Tolerances: peak counts, pixel counts, recall, precision, hit rates and every counting count
//! exact (the same integers and the same float64 divisions); peak positions 1e-9 pixels and
//! intensities 1e-9 relative (the centroid sums are taken in another order by SciPy);
//! `intensity_rel_error_*` 1e-9 relative (they come from those intensities);
//! `sigma_error_mean` 1e-12 relative (NumPy sums pairwise); `sigma_error_max` and
//! `fraction_above_1sigma` exact; `sigma_error_p99` in `[peer, peer + 1e-3]` (one bin of the
//! histogram, see `src/analysis/counting.rs`) against `numpy.percentile(method='inverted_cdf')`.

mod common;

use std::path::Path;

use common::{expected_json, float_field, parse_exact, photonqa, repo_root, text};
use photonqa::analysis::counting::BIN_WIDTH;
use photonqa::analysis::sx::{Finder, Peak, match_peaks};
use photonqa::analysis::{Context, Slabs};
use photonqa::data::hdf5io::read_hdf5;
use photonqa::data::{NdArray, SourceSpec};
use photonqa::runner::science::Analyses;
use photonqa::scenario::Scenario;
use serde_json::Value;

const SCRIPT: &str = "tests/peers/sx_fixtures.py";

fn expected() -> Value {
    expected_json("sx", SCRIPT)
}

fn frames_path() -> String {
    repo_root()
        .join("reference-data/sx-frames.h5::/frames")
        .display()
        .to_string()
}

/// The committed frames as stored (uint16).
fn frames() -> NdArray {
    let source = SourceSpec::parse(&frames_path(), Path::new(""), None)
        .unwrap()
        .open()
        .unwrap();
    source.read_slab(0..source.shape()[0]).unwrap()
}

/// The peer's lossy versions of `frames` (see the script's doc).
fn variant(frames: &NdArray, name: &str) -> NdArray {
    let x = frames.to_f64();
    NdArray::Float64(match name {
        "lossless" => x,
        "threshold3" => x.mapv(|v| if v <= 3.0 { 0.0 } else { v }),
        "bin4" => x.mapv(|v| (v / 4.0).floor() * 4.0 + 1.5),
        other => panic!("unknown variant {other}"),
    })
}

fn finder(expected: &Value) -> Finder {
    let f = &expected["finder"];
    let float = |k: &str| f[k].as_f64().unwrap();
    let int = |k: &str| f[k].as_u64().unwrap() as usize;
    Finder {
        snr: float("snr_threshold"),
        clip: float("clip_snr"),
        adc: float("adc_threshold"),
        min_pixels: int("min_pixels"),
        max_pixels: int("max_pixels"),
        iterations: int("iterations"),
        centre: (63.5, 63.5),
    }
}

/// The `[[analysis]]` blocks with the peer's finder parameters, then the two counting
/// configurations of the fixtures (plain; saturation 1000 and the fixture's mask).
fn analyses_toml(expected: &Value) -> String {
    let f = &expected["finder"];
    let mut sx = "[[analysis]]\nkind = \"sx\"\n".to_string();
    for (key, value) in f.as_object().unwrap() {
        sx += &format!("{key} = {value}\n");
    }
    let mask = repo_root().join("tests/fixtures/sx/mask.npy");
    format!(
        "{sx}[[analysis]]\nkind = \"counting\"\n\
         [[analysis]]\nkind = \"counting\"\nsaturation = 1000.0\nmask = \"{}\"\n",
        mask.display()
    )
}

fn scenario(source: &str, chunk_slices: usize, pipeline: &str, analyses: &str) -> String {
    format!(
        "[scenario]\nname = \"sx\"\nchunk_slices = {chunk_slices}\n[input]\nsource = \"{source}\"\n\
         {pipeline}[metrics]\ndistortion = [\"max_abs_error\"]\n{analyses}"
    )
}

const THRESHOLD3: &str = "[[pipeline]]\nstage = \"threshold\"\nmethod = \"value\"\nvalue = 3\n\
                          [[pipeline]]\nstage = \"zstd\"\n";
const LOSSLESS: &str = "[[pipeline]]\nstage = \"bitshuffle\"\n[[pipeline]]\nstage = \"zstd\"\n";

/// The analyses of `scenario` on `original` and `decoded`, merged over the row ranges `cuts`
/// (consecutive, covering every row).
fn in_process(scenario: &str, original: &NdArray, decoded: &NdArray, cuts: &[usize]) -> Value {
    let parsed = Scenario::parse(scenario, Path::new("s.toml")).unwrap();
    let shape = original.shape().to_vec();
    let mut context = Context::new(&shape, Path::new("."), || Err("no histogram".into()));
    let analyses = Analyses::prepare(&parsed.analyses, &mut context).unwrap();
    let fits = analyses.fit(None).unwrap();
    let partials = cuts.windows(2).map(|w| {
        let rows = w[0]..w[1];
        let slabs = Slabs {
            original,
            decoded,
            held: 0..shape[0],
            core: rows,
            shape: &shape,
        };
        analyses.partial(&fits, &slabs).unwrap()
    });
    let total = analyses.merge(partials.collect::<Vec<_>>()).unwrap();
    Value::Object(analyses.finish(&fits, total, &shape).unwrap())
}

/// Runs `scenario` with the binary in `dir`; its first row's `science`.
fn run(dir: &Path, name: &str, scenario: &str) -> Value {
    common::run_first_row(dir, name, scenario, "2")["science"].clone()
}

fn number(v: &Value) -> f64 {
    match v {
        Value::String(s) => parse_exact(s),
        other => other
            .as_f64()
            .unwrap_or_else(|| panic!("{other} is not a number")),
    }
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-300) || a == b
}

fn peak_row(row: &Value) -> (usize, f64, f64, f64, usize) {
    let r = row.as_array().unwrap();
    (
        r[0].as_u64().unwrap() as usize,
        number(&r[1]),
        number(&r[2]),
        number(&r[3]),
        r[4].as_u64().unwrap() as usize,
    )
}

fn check_peaks(what: &str, found: &[Vec<Peak>], peer: &Value) {
    let peer: Vec<_> = peer.as_array().unwrap().iter().map(peak_row).collect();
    let ours: Vec<_> = found
        .iter()
        .enumerate()
        .flat_map(|(f, peaks)| peaks.iter().map(move |p| (f, p)))
        .collect();
    assert_eq!(ours.len(), peer.len(), "{what}: peak count");
    for ((f, p), (pf, y, x, i, n)) in ours.iter().zip(&peer) {
        let ok = *f == *pf
            && p.pixels == *n
            && (p.y - y).abs() <= 1e-9
            && (p.x - x).abs() <= 1e-9
            && close(p.intensity, *i, 1e-9);
        assert!(
            ok,
            "{what}: frame {f} peak {p:?} vs peer {:?}",
            (pf, y, x, i, n)
        );
    }
}

fn frame_peaks(finder: &Finder, a: &NdArray) -> Vec<Vec<Peak>> {
    let values = a.to_f64();
    values
        .outer_iter()
        .map(|frame| finder.find(frame.into_dimensionality().unwrap()))
        .collect()
}

/// The sx results against the peer's case.
fn check_sx(what: &str, ours: &Value, case: &Value) {
    for key in ["recall", "precision", "hit_rate_change"] {
        assert_eq!(number(&ours[key]), float_field(case, key), "{what}: {key}");
    }
    for key in ["peaks_original", "peaks_decoded", "matched"] {
        assert_eq!(ours[key], case[key], "{what}: {key}");
    }
    for key in ["intensity_rel_error_mean", "intensity_rel_error_max"] {
        let (a, b) = (number(&ours[key]), float_field(case, key));
        assert!(close(a, b, 1e-9), "{what}: {key} {a} vs peer {b}");
    }
}

/// The counting results against the peer's entry.
fn check_counting(what: &str, ours: &Value, peer: &Value) {
    for key in [
        "changed_zeros",
        "integer_counts_broken",
        "saturated_changed",
        "masked_changed",
        "counted_pixels",
    ] {
        assert_eq!(ours[key], peer[key], "{what}: {key}");
    }
    for key in ["sigma_error_max", "fraction_above_1sigma"] {
        assert_eq!(number(&ours[key]), float_field(peer, key), "{what}: {key}");
    }
    let (mean, peer_mean) = (
        number(&ours["sigma_error_mean"]),
        float_field(peer, "sigma_error_mean"),
    );
    assert!(
        close(mean, peer_mean, 1e-12),
        "{what}: mean {mean} vs {peer_mean}"
    );
    let (p99, peer_p99) = (
        number(&ours["sigma_error_p99"]),
        float_field(peer, "sigma_error_p99"),
    );
    assert!(
        p99 >= peer_p99 - 1e-12 && p99 <= peer_p99 + BIN_WIDTH,
        "{what}: p99 {p99} vs numpy {peer_p99} (one bin: {BIN_WIDTH})"
    );
}

/// The analyses' results keyed `sx`, `2:counting`, `3:counting`.
fn counting_entries<'a>(expected: &'a Value, name: &str) -> [&'a Value; 2] {
    let entries: Vec<&Value> = expected["counting"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == name)
        .collect();
    [entries[0], entries[1]]
}

#[test]
fn peak_lists_and_metrics_equal_the_peer_and_any_chunking() {
    let expected = expected();
    let original = frames();
    let finder = finder(&expected);
    let found = frame_peaks(&finder, &original);
    check_peaks("original", &found, &expected["peak_list_original"]);
    let scenario = scenario(&frames_path(), 4, LOSSLESS, &analyses_toml(&expected));
    let n = original.shape()[0];
    for case in expected["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let decoded = variant(&original, name);
        check_peaks(
            name,
            &frame_peaks(&finder, &decoded),
            &case["peak_list_decoded"],
        );
        let whole = in_process(&scenario, &original, &decoded, &[0, n]);
        check_sx(name, &whole["sx"], case);
        let [plain, masked] = counting_entries(&expected, name);
        check_counting(name, &whole["2:counting"], plain);
        check_counting(&format!("{name} masked"), &whole["3:counting"], masked);
        // Uneven row ranges, one of a single frame, merge into exactly the same results.
        let cut = in_process(&scenario, &original, &decoded, &[0, 5, 6, 19, n]);
        assert_eq!(cut, whole, "{name}: merged partials vs the whole arrays");
    }
    // The lossy versions must move the numbers, or the comparisons above prove little.
    let bin4 = &expected["cases"][2];
    assert!(float_field(bin4, "precision") < 0.5);
    assert!(float_field(bin4, "intensity_rel_error_max") > 0.01);
}

#[test]
fn the_generators_spots_are_found() {
    let expected = expected();
    let file = repo_root().join("reference-data/sx-frames.h5");
    let truth = read_hdf5(&file, "/peaks").unwrap().to_f64();
    let found = frame_peaks(&finder(&expected), &frames());
    let radius = expected["truth_radius"].as_f64().unwrap();
    let mut matched = 0;
    for (f, peaks) in found.iter().enumerate() {
        let spots: Vec<Peak> = truth
            .outer_iter()
            .filter(|t| t[0] as usize == f)
            .map(|t| Peak {
                y: t[1],
                x: t[2],
                intensity: t[3],
                pixels: 0,
                first_row: 0,
            })
            .collect();
        let pairs = match_peaks(&spots, peaks, radius);
        for &(i, j) in &pairs {
            let ratio = peaks[j].intensity / spots[i].intensity;
            assert!(
                (0.85..1.1).contains(&ratio),
                "frame {f}: spot {:?} found with intensity {}",
                spots[i],
                peaks[j].intensity
            );
        }
        matched += pairs.len();
    }
    let spots = truth.shape()[0];
    let recall = matched as f64 / spots as f64;
    assert!(recall >= 0.99, "recall {recall} of {spots} true spots");
    assert_eq!(matched as u64, expected["truth_found"].as_u64().unwrap());
}

#[test]
fn runs_in_small_chunks_equal_the_whole_and_lossless_is_exact() {
    let expected = expected();
    let dir = tempfile::tempdir().unwrap();
    let analyses = analyses_toml(&expected);
    let original = frames();
    let n = original.shape()[0];
    let lossy = run(
        dir.path(),
        "threshold",
        &scenario(&frames_path(), 3, THRESHOLD3, &analyses),
    );
    let whole = in_process(
        &scenario(&frames_path(), 3, THRESHOLD3, &analyses),
        &original,
        &variant(&original, "threshold3"),
        &[0, n],
    );
    assert_eq!(lossy, whole, "3-frame chunks vs the whole arrays");
    check_sx("threshold run", &lossy["sx"], &expected["cases"][1]);

    let lossless = run(
        dir.path(),
        "lossless",
        &scenario(&frames_path(), 5, LOSSLESS, &analyses),
    );
    assert_eq!(number(&lossless["sx"]["recall"]), 1.0);
    assert_eq!(number(&lossless["sx"]["precision"]), 1.0);
    assert_eq!(number(&lossless["sx"]["intensity_rel_error_max"]), 0.0);
    for key in [
        "sigma_error_p99",
        "sigma_error_max",
        "fraction_above_1sigma",
    ] {
        assert_eq!(number(&lossless["2:counting"][key]), 0.0, "{key}");
    }
}

#[test]
fn a_2d_frame_split_into_row_chunks_equals_the_frame() {
    let expected = expected();
    let dir = tempfile::tempdir().unwrap();
    let frame = frames().to_f64().index_axis_move(ndarray::Axis(0), 2);
    let path = dir.path().join("frame.npy");
    ndarray_npy::write_npy(&path, &frame).unwrap();
    let sx_only = analyses_toml(&expected);
    let sx_only = &sx_only[..sx_only.find("[[analysis]]\nkind = \"counting\"").unwrap()];
    let ours = run(
        dir.path(),
        "frame",
        &scenario(&path.display().to_string(), 10, THRESHOLD3, sx_only),
    );
    let stack = NdArray::Float64(frame.clone().insert_axis(ndarray::Axis(0)).into_dyn());
    let decoded = variant(&stack, "threshold3");
    let whole = in_process(
        &scenario(&frames_path(), 10, THRESHOLD3, sx_only),
        &stack,
        &decoded,
        &[0, 1],
    );
    assert_eq!(
        ours, whole,
        "2-D frame in 10-row chunks vs the frame as a stack"
    );
    assert!(ours["sx"]["peaks_original"].as_u64().unwrap() >= 10);
}

#[test]
fn bad_parameters_give_one_line_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    ndarray_npy::write_npy(
        dir.path().join("small.npy"),
        &ndarray::Array2::<u8>::zeros((10, 10)),
    )
    .unwrap();
    let cases = [
        ("mask", "kind = \"counting\"\nmask = \"small.npy\"\n"),
        ("snr_threshold", "kind = \"sx\"\nsnr_threshold = 0\n"),
        (
            "min_pixels",
            "kind = \"sx\"\nmin_pixels = 5\nmax_pixels = 3\n",
        ),
        ("beam_x", "kind = \"sx\"\nbeam_x = 500\n"),
    ];
    for (name, analysis) in cases {
        let toml = scenario(
            &frames_path(),
            8,
            LOSSLESS,
            &format!("[[analysis]]\n{analysis}"),
        );
        std::fs::write(dir.path().join("bad.toml"), toml).unwrap();
        let out = photonqa(dir.path(), &["run", "bad.toml", "--out", "bad"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{name}: {stderr}");
        assert!(stderr.contains(name), "{name} not named: {stderr}");
    }
}

#[test]
fn the_committed_scenario_is_valid() {
    let path = repo_root().join("scenarios/sx.toml");
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("sx.toml: {e}"));
    let kinds: Vec<&str> = scenario.analyses.iter().map(|a| a.config.stage).collect();
    assert_eq!(kinds, ["sx", "counting"]);
    let variants: Vec<&str> = scenario
        .pipelines
        .iter()
        .filter_map(|p| p.variant.as_deref())
        .collect();
    assert_eq!(variants, ["sz3", "threshold", "quantize", "poisson"]);
}

#[test]
fn gen_sx_reproduces_the_committed_frames_and_spots() {
    let dir = tempfile::tempdir().unwrap();
    let out = photonqa(dir.path(), &["gen", "sx", "--out", "f.h5"]);
    common::assert_ok(&out, "photonqa gen sx");
    let committed = repo_root().join("reference-data/sx-frames.h5");
    let fresh = dir.path().join("f.h5");
    for dataset in ["/frames", "/peaks"] {
        let (a, b) = (
            read_hdf5(&committed, dataset).unwrap(),
            read_hdf5(&fresh, dataset).unwrap(),
        );
        assert!(a == b, "{dataset} differs from a fresh `photonqa gen sx`");
    }
    let bad = photonqa(
        dir.path(),
        &["gen", "sx", "--out", "g.h5", "--hit-fraction", "2"],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    assert!(text(&bad.stderr).contains("hit_fraction"));
}
