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
//! Fourier shell correlation ([`fsc`]) against the full-volume NumPy peer (`np.fft.fftn`) on the
//! fixtures in `tests/fixtures/spectral/fsc/`, with the same tolerances: shell sample counts,
//! `shape` and `crossed` exact; FSC, half-bit curve and frequencies [`REL_TOL`] or [`ABS_TOL`];
//! resolution [`RESOLUTION_TOL`]; identical volumes give exactly 1. Also: bit-identical JSON
//! on pools of 1 and 2 threads and for non-contiguous inputs; the allocations of [`fsc`] on a
//! pool stay within [`fsc_memory`] (measured by the counting allocator below, which counts
//! only on the threads of that pool); one-line errors.
//!
//! Speed is not measured here; the module documentation records timings.

mod common;

use common::{on_threads, pair_cases};

use photonqa::data::{IntoNdArray, NdArray};
use photonqa::metrics::spectral::{RingSums, fsc, fsc_memory};
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
    pair_cases(&expected(), 10, "spectral", case)
}

/// A fixture case: its arrays loaded, its entry kept whole as the peer's values.
fn case(c: &Value, name: String, original: NdArray, decoded: NdArray) -> Case {
    Case {
        name,
        original,
        decoded,
        peer: c.clone(),
    }
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

/// The largest deviations per quantity, with the case that shows each.
fn deviations_text(m: &std::collections::BTreeMap<&str, (f64, String)>) -> String {
    let items: Vec<String> = m
        .iter()
        .map(|(k, (v, case))| format!("{k} {v:.1e} ({case})"))
        .collect();
    items.join(", ")
}

/// The resolution against NumPy's within [`RESOLUTION_TOL`], keeping the largest deviation.
fn check_resolution(
    name: &str,
    ours: &Value,
    peer: &Value,
    deviation: &mut f64,
    failures: &mut Vec<String>,
) {
    let (a, b) = (number(&ours["resolution"]), number(&peer["resolution"]));
    *deviation = deviation.max((a - b).abs());
    if (a - b).abs() > RESOLUTION_TOL {
        failures.push(format!("{name}: resolution = {a}, NumPy {b}"));
    }
}

#[test]
fn frc_and_power_spectra_match_numpy() {
    let mut failures = Vec::new();
    let mut seen = Deviations::default();
    let mut resolution_deviation = 0.0f64;
    for case in cases() {
        let sums = sums_of(&case.original, &case.decoded);
        let (frc, power, peer) = (sums.frc(), sums.power_spectrum(1.0), &case.peer);
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
        check_resolution(name, &frc, peer, &mut resolution_deviation, &mut failures);
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
    eprintln!(
        "largest deviations from NumPy: relative: {}; absolute (near 0): {}; resolution {:.1e}",
        deviations_text(&seen.relative),
        deviations_text(&seen.absolute),
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
        on_threads(threads, || {
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

// --- Fourier shell correlation -------------------------------------------------------------------

/// The FSC fixture cases (`tests/fixtures/spectral/fsc/expected.json`).
fn fsc_cases() -> Vec<Case> {
    let expected = common::expected_json("spectral/fsc", "tests/peers/spectral_fixtures.py");
    pair_cases(&expected, 10, "FSC", case)
}

#[test]
fn fsc_matches_numpy() {
    let mut failures = Vec::new();
    let mut seen = Deviations::default();
    let mut resolution_deviation = 0.0f64;
    let (mut crossed, mut ties) = (0, 0);
    for case in fsc_cases() {
        let ours = fsc(&case.original, &case.decoded).unwrap();
        let (peer, name) = (&case.peer, &case.name);
        assert_eq!(ours["shape"], peer["shape"], "{name}: shape");
        assert_eq!(
            counts(&ours, "samples"),
            counts(peer, "samples"),
            "{name}: samples per shell"
        );
        assert_eq!(ours["crossed"], peer["crossed"], "{name}: crossed");
        for key in ["frequency", "fsc", "half_bit"] {
            let (a, b) = (numbers(&ours, key), numbers(peer, key));
            assert_eq!(a.len(), b.len(), "{name}: shells of {key}");
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                if !seen.close(name, key, *a, *b) {
                    failures.push(format!("{name}: {key}[{i}] = {a}, NumPy {b}"));
                }
            }
        }
        check_resolution(name, &ours, peer, &mut resolution_deviation, &mut failures);
        if case.original == case.decoded {
            assert!(
                numbers(&ours, "fsc").iter().all(|&v| v == 1.0),
                "{name}: identical inputs must give an FSC of exactly 1: {ours}"
            );
            assert_eq!(ours["crossed"], false, "{name}");
        }
        crossed += usize::from(ours["crossed"] == true);
        ties += usize::from(peer["exact_ties"].as_u64().unwrap() > 0);
    }
    eprintln!(
        "FSC: largest deviations from NumPy: relative: {}; absolute (near 0): {}; resolution \
         {resolution_deviation:.1e}",
        deviations_text(&seen.relative),
        deviations_text(&seen.absolute),
    );
    assert!(
        failures.is_empty(),
        "{} mismatch(es) with NumPy\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
    assert!(crossed >= 1, "no FSC case crosses the half-bit curve");
    assert!(ties >= 1, "no FSC case has samples exactly between shells");
}

/// A deterministic smooth-ish test volume and a perturbed copy (float32 and uint16).
fn test_volume(shape: [usize; 3]) -> (NdArray, NdArray) {
    let [n0, n1, n2] = shape;
    let x = ndarray::Array3::from_shape_fn(shape, |(i, j, k)| {
        let (i, j, k) = (i as f32, j as f32, k as f32);
        (0.31 * i + 0.17 * j).sin() * (0.05 * k).cos()
            + ((i * 7.0 + j * 13.0 + k * 3.0) % 11.0) / 40.0
    });
    let y = x.mapv(|v| (v * 1000.0 + 2000.0).round().clamp(0.0, 65535.0) as u16);
    assert_eq!(x.len(), n0 * n1 * n2);
    (x.into_dyn().into_nd(), y.into_dyn().into_nd())
}

/// The FSC as JSON text (floats written shortest round-trip: equal texts, equal bits).
fn fsc_text(x: &NdArray, y: &NdArray) -> String {
    fsc(x, y).unwrap().to_string()
}

#[test]
fn fsc_is_bit_identical_across_thread_counts_and_layouts() {
    let mut pairs: Vec<(NdArray, NdArray)> = fsc_cases()
        .into_iter()
        .map(|c| (c.original, c.decoded))
        .collect();
    // Several batches of axis-0 tasks (151 columns kx x 4 blocks of ky), a prime last axis.
    pairs.push(test_volume([12, 64, 300]));
    pairs.push(test_volume([5, 7, 131]));
    let run = |threads: usize| -> Vec<String> {
        on_threads(threads, || {
            pairs.iter().map(|(x, y)| fsc_text(x, y)).collect()
        })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    // The same values in Fortran order (axes reversed twice), and a strided view.
    let (x, y) = test_volume([6, 10, 9]);
    let fortran = |a: &NdArray| -> NdArray {
        let a = a.to_f64();
        let f = a
            .reversed_axes()
            .as_standard_layout()
            .into_owned()
            .reversed_axes();
        assert!(f.as_slice().is_none());
        f.into_nd()
    };
    assert_eq!(
        fsc_text(&fortran(&x), &fortran(&y)),
        fsc_text(&x.to_f64().into_nd(), &y)
    );
    let wide = test_volume([6, 20, 18]).0.to_f64();
    let strided = wide
        .slice(ndarray::s![.., ..;2, 1..;2])
        .to_owned()
        .into_dyn()
        .into_nd();
    let view = wide.slice_move(ndarray::s![.., ..;2, 1..;2]);
    assert!(view.as_slice().is_none());
    assert_eq!(
        fsc_text(&view.into_dyn().into_nd(), &x),
        fsc_text(&strided, &x)
    );
}

#[test]
fn fsc_errors_are_one_line() {
    let zeros = |shape: &[usize]| ndarray::ArrayD::<f32>::zeros(shape).into_nd();
    let cases: [(&[usize], &[usize], &str); 7] = [
        (&[8, 8], &[8, 8], "3D volumes, got shape [8, 8]"),
        (&[2, 4, 4, 4], &[2, 4, 4, 4], "3D volumes"),
        (
            &[4, 1, 6],
            &[4, 1, 6],
            "at least 2 samples along every axis",
        ),
        (
            &[1, 4, 6],
            &[1, 4, 6],
            "at least 2 samples along every axis",
        ),
        (
            &[4, 6, 0],
            &[4, 6, 0],
            "at least 2 samples along every axis",
        ),
        (
            &[4, 6, 8],
            &[4, 8, 6],
            "cannot compare shape [4, 6, 8] with shape [4, 8, 6]",
        ),
        (&[4, 6, 8], &[4, 6], "cannot compare shape"),
    ];
    for (a, b, message) in cases {
        let err = fsc(&zeros(a), &zeros(b)).unwrap_err();
        assert!(err.contains(message), "{a:?} {b:?}: {err}");
        assert!(!err.contains('\n'), "{err}");
    }
    // Shapes fsc refuses need nothing; huge ones saturate.
    assert_eq!(fsc_memory(&[8, 8]), 0);
    assert_eq!(fsc_memory(&[4, 1, 6]), 0);
    assert_eq!(fsc_memory(&[4, 6, (1 << 20) + 1]), 0);
    assert_eq!(fsc_memory(&[1 << 20; 3]), u64::MAX);
}

/// Counts the bytes allocated and not yet freed by the threads marked with [`COUNTED`].
struct CountingAllocator;

thread_local! {
    /// Whether this thread's allocations are counted (set on the threads of one pool).
    static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Bytes allocated minus bytes freed by counted threads, and the peak of that.
static LIVE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
static PEAK: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

fn counted() -> bool {
    COUNTED.try_with(|c| c.get()).unwrap_or(false)
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        use std::sync::atomic::Ordering::Relaxed;
        if counted() {
            let live = LIVE.fetch_add(layout.size() as i64, Relaxed) + layout.size() as i64;
            PEAK.fetch_max(live, Relaxed);
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        if counted() {
            LIVE.fetch_sub(layout.size() as i64, std::sync::atomic::Ordering::Relaxed);
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn fsc_memory_bounds_the_allocations() {
    use std::sync::atomic::Ordering::Relaxed;
    // Only this test marks threads; the pool's threads are counted from their start.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .start_handler(|_| COUNTED.with(|c| c.set(true)))
        .build()
        .unwrap();
    let shapes = [
        [9, 11, 13],
        [2, 5, 7],
        [12, 64, 300],
        [40, 3, 1031], // prime last axis: Bluestein plans and scratch
        [257, 4, 6],   // prime first axis, lines of 257 values
        [64, 64, 64],
    ];
    for shape in shapes {
        let (x, y) = test_volume(shape);
        let (peak, budget) = pool.install(|| {
            let budget = fsc_memory(&shape);
            let base = LIVE.load(Relaxed);
            PEAK.store(base, Relaxed);
            let out = fsc(&x, &y).unwrap();
            drop(out);
            (PEAK.load(Relaxed) - base, budget)
        });
        let [n0, n1, n2] = shape;
        let spectra = (32 * n0 * n1 * (n2 / 2 + 1)) as i64;
        eprintln!(
            "{shape:?}: peak {peak} bytes, fsc_memory {budget} ({:.2}x), spectra {spectra}",
            budget as f64 / peak as f64
        );
        assert!(
            peak >= spectra,
            "{shape:?}: peak {peak} below the spectra {spectra}"
        );
        assert!(
            peak as u64 <= budget,
            "{shape:?}: peak {peak} above fsc_memory {budget}"
        );
    }
}
