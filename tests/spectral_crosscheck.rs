//! photonqa's Fourier ring correlation and power spectra (`photonqa::metrics::spectral`)
//! against an independent NumPy implementation (full-plane `np.fft.fft2`, `np.fft.fftfreq`,
//! `np.bincount`), on the fixtures that `tests/peers/spectral_fixtures.py` writes to
//! `tests/fixtures/spectral/` (these tests need no Python).
//!
//! Tolerances:
//! - sample counts per ring, plane count, `crossed`: exact;
//! - FRC, half-bit threshold, frequencies, power spectra, relative errors and their maximum:
//!   [`REL_TOL`] = 1e-9 relative, or [`ABS_TOL`] = 1e-12 absolute (values near 0);
//! - resolution: [`RESOLUTION_TOL`] = 1e-9 absolute (a fraction of Nyquist).
//!
//! Not exact because pocketfft (NumPy) and rustfft round differently and photonqa never forms
//! the full-plane transform (see the module documentation). Identical inputs must give an FRC
//! of exactly 1 and relative errors of exactly 0.
//!
//! Also checked: adding a stack in parts (row ranges along axis 0, or plane by plane as 2D
//! arrays) and merging equals adding it whole within [`MERGE_TOL`]; results do not depend on
//! the thread count; shape mismatches, wrong plane shapes and planes smaller than 2x2 are
//! errors.
//!
//! Speed: `cargo test --release --test spectral_crosscheck -- --ignored --nocapture` times
//! 256x256 float32 plane pairs (0.42 ms per pair on one core, 0.22 ms on two, also 0.40 ms when
//! added one 2D pair per call; AVX2 EPYC).

mod common;

use photonqa::data::{DType, IntoNdArray, NdArray};
use photonqa::metrics::spectral::RingSums;
use photonqa::runner::results::metric_value;
use serde_json::Value;

/// Relative tolerance on every float of the FRC and the power spectra. Largest relative
/// deviations seen: FRC 3.8e-15 (`crossing_f32_2d`), power spectra 6.5e-15
/// (`negated_f64_2d`), relative errors 1.5e-11 and their maximum 1.2e-13 (`no_crossing_f64_2d`,
/// relative errors below 1.5e-3, where `Sy - Sx` cancels); half-bit thresholds and frequencies
/// are bit-identical.
const REL_TOL: f64 = 1e-9;
/// Absolute tolerance for values near 0, where a relative one means nothing (no value outside
/// [`REL_TOL`] seen: not needed on these fixtures, kept for relative errors near 0).
const ABS_TOL: f64 = 1e-12;
/// Absolute tolerance on the resolution, a fraction of Nyquist (largest deviation seen: 2.2e-16).
const RESOLUTION_TOL: f64 = 1e-9;
/// Relative tolerance on the sums of a stack added in parts and merged against the stack added
/// whole: the cross sums relative to `sqrt(Px Py)`, the powers relative to themselves (largest
/// deviation seen: 2.5e-16).
const MERGE_TOL: f64 = 1e-12;

fn expected() -> Value {
    common::expected_json("spectral", "tests/peers/spectral_fixtures.py")
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("expected.json: {key} is not a string in {v}"))
}

/// A float as written by the peer (repr string) or by photonqa (`metric_json`).
fn number(v: &Value) -> f64 {
    metric_value(v).unwrap_or_else(|| panic!("{v} is not a number"))
}

fn numbers(v: &Value, key: &str) -> Vec<f64> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is not a list in {v}"))
        .iter()
        .map(number)
        .collect()
}

fn counts(v: &Value, key: &str) -> Vec<u64> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is not a list"))
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect()
}

struct Case {
    name: String,
    original: NdArray,
    decoded: NdArray,
    peer: Value,
}

fn cases() -> Vec<Case> {
    let expected = expected();
    let cases = expected["cases"]
        .as_array()
        .expect("expected.json: cases is a list");
    assert!(cases.len() >= 10, "too few spectral fixture cases");
    cases
        .iter()
        .map(|c| Case {
            name: text(c, "name").to_string(),
            original: common::load_npy(
                text(c, "original"),
                DType::parse(text(c, "original_dtype")).unwrap(),
            ),
            decoded: common::load_npy(
                text(c, "decoded"),
                DType::parse(text(c, "decoded_dtype")).unwrap(),
            ),
            peer: c.clone(),
        })
        .collect()
}

fn plane_of(a: &NdArray) -> [usize; 2] {
    let s = a.shape();
    [s[s.len() - 2], s[s.len() - 1]]
}

fn sums_of(original: &NdArray, decoded: &NdArray) -> RingSums {
    let mut sums = RingSums::new(plane_of(original));
    sums.add_planes(original, decoded).unwrap();
    sums
}

/// Largest deviations seen per key, for the tolerance documentation.
#[derive(Default)]
struct Deviations {
    /// Largest relative deviation among values within [`REL_TOL`], per key.
    relative: std::collections::BTreeMap<&'static str, (f64, String)>,
    /// Largest absolute deviation among values not within [`REL_TOL`], per key.
    absolute: std::collections::BTreeMap<&'static str, (f64, String)>,
}

impl Deviations {
    /// Whether `ours` is within the tolerances of `theirs` (equal infinities included).
    fn close(&mut self, case: &str, key: &'static str, ours: f64, theirs: f64) -> bool {
        if ours == theirs {
            return true;
        }
        let diff = (ours - theirs).abs();
        let (seen, deviation, ok) = if diff <= REL_TOL * theirs.abs() {
            (&mut self.relative, diff / theirs.abs(), true)
        } else {
            (&mut self.absolute, diff, diff <= ABS_TOL)
        };
        let worst = seen.entry(key).or_default();
        if deviation > worst.0 {
            *worst = (deviation, case.to_string());
        }
        ok
    }
}

#[test]
fn frc_and_power_spectra_match_numpy() {
    let mut failures = Vec::new();
    let mut seen = Deviations::default();
    let mut resolution_deviation = 0.0f64;
    for case in cases() {
        let sums = sums_of(&case.original, &case.decoded);
        let (frc, power, peer) = (sums.frc(), sums.power_spectrum(), &case.peer);
        let name = &case.name;
        assert_eq!(frc["planes"], peer["planes"], "{name}: planes");
        assert_eq!(
            counts(&frc, "samples"),
            counts(peer, "samples"),
            "{name}: samples per ring"
        );
        assert_eq!(frc["crossed"], peer["crossed"], "{name}: crossed");
        let curves = [
            (&frc, "frequency", "frequency"),
            (&frc, "frc", "frc"),
            (&frc, "half_bit", "half_bit"),
            (&power, "frequency", "frequency"),
            (&power, "original", "power_original"),
            (&power, "decoded", "power_decoded"),
            (&power, "relative_error", "relative_error"),
        ];
        for (ours, key, theirs) in curves {
            let (a, b) = (numbers(ours, key), numbers(peer, theirs));
            assert_eq!(a.len(), b.len(), "{name}: rings of {key}");
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                if !seen.close(name, key, *a, *b) {
                    failures.push(format!("{name}: {key}[{i}] = {a}, NumPy {b}"));
                }
            }
        }
        let (a, b) = (
            number(&power["max_abs_relative_error"]),
            number(&peer["max_abs_relative_error"]),
        );
        if !seen.close(name, "max_abs_relative_error", a, b) {
            failures.push(format!("{name}: max_abs_relative_error = {a}, NumPy {b}"));
        }
        let (a, b) = (number(&frc["resolution"]), number(&peer["resolution"]));
        resolution_deviation = resolution_deviation.max((a - b).abs());
        if (a - b).abs() > RESOLUTION_TOL {
            failures.push(format!("{name}: resolution = {a}, NumPy {b}"));
        }
        if case.original == case.decoded {
            assert!(
                numbers(&frc, "frc").iter().all(|&v| v == 1.0),
                "{name}: identical inputs must give an FRC of exactly 1: {frc}"
            );
            assert!(
                numbers(&power, "relative_error").iter().all(|&v| v == 0.0),
                "{name}: identical inputs must give relative errors of exactly 0: {power}"
            );
        }
    }
    let show = |m: &std::collections::BTreeMap<&str, (f64, String)>| -> String {
        let items: Vec<String> = m
            .iter()
            .map(|(k, (v, case))| format!("{k} {v:.1e} ({case})"))
            .collect();
        items.join(", ")
    };
    eprintln!(
        "largest deviations from NumPy: relative: {}; absolute (near 0): {}; resolution {:.1e}",
        show(&seen.relative),
        show(&seen.absolute),
        resolution_deviation
    );
    assert!(
        failures.is_empty(),
        "{} mismatch(es) with NumPy\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// Largest deviation of `parts` from `whole`: cross sums relative to `sqrt(Px Py)`, powers
/// relative to themselves; counts must be equal.
fn merge_deviation(parts: &RingSums, whole: &RingSums) -> f64 {
    assert_eq!(parts.plane, whole.plane);
    assert_eq!(parts.planes, whole.planes);
    assert_eq!(parts.samples, whole.samples);
    let mut worst = 0.0f64;
    for i in 0..whole.samples.len() {
        let (px, py) = (whole.power_original[i], whole.power_decoded[i]);
        let scale = (px * py).sqrt();
        let deviations = [
            (parts.cross[i] - whole.cross[i]).abs() / scale,
            (parts.power_original[i] - px).abs() / px,
            (parts.power_decoded[i] - py).abs() / py,
        ];
        for d in deviations {
            worst = worst.max(if d.is_nan() { 0.0 } else { d });
        }
    }
    worst
}

#[test]
fn stacks_added_in_parts_merge_to_the_whole() {
    let mut worst = 0.0f64;
    let mut checked = 0;
    for case in cases().iter().filter(|c| c.original.shape().len() == 3) {
        let whole = sums_of(&case.original, &case.decoded);
        let n0 = case.original.shape()[0];
        for cut in 1..n0 {
            let part = |rows: std::ops::Range<usize>| {
                sums_of(
                    &case.original.slice_rows(rows.clone()),
                    &case.decoded.slice_rows(rows),
                )
            };
            let mut merged = part(0..cut);
            merged.merge(&part(cut..n0)).unwrap();
            worst = worst.max(merge_deviation(&merged, &whole));
            checked += 1;
        }
        // Plane by plane, as 2D arrays, into one RingSums.
        let mut one_by_one = RingSums::new(plane_of(&case.original));
        for p in 0..n0 {
            let plane = |a: &NdArray| {
                let rows = a.slice_rows(p..p + 1);
                let shape = rows.shape()[1..].to_vec();
                match rows.to_f64().into_shape_with_order(shape) {
                    Ok(values) => values.into_nd(),
                    Err(e) => panic!("{e}"),
                }
            };
            one_by_one
                .add_planes(&plane(&case.original), &plane(&case.decoded))
                .unwrap();
        }
        worst = worst.max(merge_deviation(&one_by_one, &whole));
        checked += 1;
    }
    eprintln!("largest deviation of merged parts from the whole: {worst:.2e}");
    assert!(checked >= 4, "only {checked} partitions");
    assert!(worst <= MERGE_TOL, "merged parts deviate by {worst:e}");
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let cases = cases();
    let run = |threads: usize| -> Vec<RingSums> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            cases
                .iter()
                .map(|c| sums_of(&c.original, &c.decoded))
                .collect()
        })
    };
    assert_eq!(run(1), run(3));
}

#[test]
fn errors() {
    let zeros = |shape: &[usize]| ndarray::ArrayD::<f32>::zeros(shape).into_nd();
    let mut sums = RingSums::new([8, 6]);
    let before = sums.clone();
    let err = sums
        .add_planes(&zeros(&[2, 8, 6]), &zeros(&[3, 8, 6]))
        .unwrap_err();
    assert!(err.contains("cannot compare shape [2, 8, 6]"), "{err}");
    let err = sums
        .add_planes(&zeros(&[8, 7]), &zeros(&[8, 7]))
        .unwrap_err();
    assert!(err.contains("planes of shape [8, 7]"), "{err}");
    let err = sums.add_planes(&zeros(&[48]), &zeros(&[48])).unwrap_err();
    assert!(err.contains("2D array"), "{err}");
    let err = sums
        .add_planes(&zeros(&[1, 2, 8, 6]), &zeros(&[1, 2, 8, 6]))
        .unwrap_err();
    assert!(err.contains("2D array"), "{err}");
    assert_eq!(sums, before);
    for plane in [[1, 5], [5, 1], [0, 4]] {
        let mut small = RingSums::new(plane);
        let err = small
            .add_planes(
                &zeros(&[3, plane[0], plane[1]]),
                &zeros(&[3, plane[0], plane[1]]),
            )
            .unwrap_err();
        assert!(err.contains("at least 2x2 planes"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
    let err = sums.merge(&RingSums::new([6, 8])).unwrap_err();
    assert!(err.contains("[6, 8]"), "{err}");
    assert_eq!(sums, before);
    sums.add_planes(&zeros(&[2, 8, 6]), &zeros(&[2, 8, 6]))
        .unwrap();
    assert_eq!(sums.planes, 2);
}
