//! photonqa's SSIM (`photonqa::metrics::ssim`) against scikit-image 0.26
//! `skimage.metrics.structural_similarity`, on the fixtures that `tests/peers/ssim_fixtures.py`
//! writes to `tests/fixtures/ssim/` (these tests need no Python).
//!
//! Tolerances, for both windows (gaussian, uniform):
//! - mean SSIM against scikit-image: [`MEAN_TOL`] = 2e-5 absolute (largest deviation seen:
//!   3.4e-6);
//! - minimum of the interior SSIM map and (3D) per-slice interior means against scikit-image:
//!   [`MAP_TOL`] = 1e-4 (largest seen: 1.9e-5);
//! - mean SSIM against `float64_centred_mean`, the same formula evaluated in float64 on centred
//!   data by the fixture script (not scikit-image): [`REFERENCE_TOL`] = 2e-6 (largest seen:
//!   5.3e-7).
//!
//! Not exact because scikit-image computes in float32 for float32 inputs and uncentred (its
//! `<x x> - ux^2` cancels), while photonqa filters centred values in float32 and evaluates the
//! formula in float64. The largest deviations from scikit-image, on float64
//! `1000 + 1e-3 * noise`, are scikit-image's own rounding: there photonqa is within 2e-10 of the
//! float64 centred reference, scikit-image 3.4e-6 away.
//!
//! Exact checks: identical inputs give exactly 1.0; an axis shorter than the window is an error
//! (scikit-image raises); `ssim_rows` over any partition of the interior rows into slabs,
//! merged in row order, is bit-identical to `ssim` over the whole array; results do not depend
//! on the thread count.

mod common;

use common::{float_field, on_threads, pair_cases};

use photonqa::data::NdArray;
use photonqa::metrics::ssim::{SsimSums, SsimWindow, ssim, ssim_rows};
use serde_json::Value;

/// Absolute tolerance on the mean SSIM.
const MEAN_TOL: f64 = 2e-5;
/// Absolute tolerance on the interior minimum and the per-slice means.
const MAP_TOL: f64 = 1e-4;
/// Absolute tolerance on the mean against the float64 evaluation on centred data.
const REFERENCE_TOL: f64 = 2e-6;

fn expected() -> Value {
    common::expected_json("ssim", "tests/peers/ssim_fixtures.py")
}

struct Case {
    name: String,
    original: NdArray,
    decoded: NdArray,
    data_range: f64,
    windows: Value,
}

fn cases() -> Vec<Case> {
    pair_cases(&expected(), 10, "SSIM", |c, name, original, decoded| Case {
        name,
        original,
        decoded,
        data_range: float_field(c, "data_range"),
        windows: c["windows"].clone(),
    })
}

/// Partitions of the interior rows `lo..hi` into consecutive parts (as cut points).
fn partitions(lo: usize, hi: usize) -> Vec<Vec<usize>> {
    let mut all = vec![vec![lo, hi], (lo..=hi).collect()];
    if hi - lo >= 2 {
        all.push(vec![lo, (lo + hi) / 2, hi]);
        all.push(vec![lo, lo + 1, hi - 1, hi]);
    }
    // An irregular one: parts of 1, 3, 2, 5, 4, ... rows.
    let mut cuts = vec![lo];
    let mut step = [1, 3, 2, 5, 4].iter().cycle();
    while *cuts.last().unwrap() < hi {
        let next = (cuts.last().unwrap() + step.next().unwrap()).min(hi);
        cuts.push(next);
    }
    all.push(cuts);
    all
}

fn merged_over(case: &Case, window: SsimWindow, cuts: &[usize]) -> SsimSums {
    let r = window.radius();
    let shape = case.original.shape();
    let mut merged: Option<SsimSums> = None;
    for part in cuts.windows(2) {
        let rows = part[0] - r..part[1] + r;
        let sums = ssim_rows(
            &case.original.slice_rows(rows.clone()),
            &case.decoded.slice_rows(rows),
            part[0]..part[1],
            shape,
            window,
            case.data_range,
        )
        .unwrap_or_else(|e| panic!("{} {window:?} {cuts:?}: {e}", case.name));
        match &mut merged {
            None => merged = Some(sums),
            Some(m) => m.merge(&sums).unwrap(),
        }
    }
    merged.expect("at least one part")
}

#[test]
fn ssim_matches_scikit_image() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases() {
        for window in SsimWindow::ALL {
            let peer = &case.windows[window.name()];
            let label = format!("{} {}", case.name, window.name());
            let ours = ssim(&case.original, &case.decoded, window, case.data_range);
            if let Some(message) = peer.get("error") {
                match ours {
                    Err(e) => assert!(e.contains("at least"), "{label}: {e}"),
                    Ok(s) => failures.push(format!(
                        "{label}: scikit-image raises ({message}), photonqa gives {}",
                        s.mean()
                    )),
                }
                continue;
            }
            let ours = ours.unwrap_or_else(|e| panic!("{label}: {e}"));
            checked += 1;
            let (mean, min) = (float_field(peer, "mean"), float_field(peer, "min"));
            if (ours.mean() - mean).abs() > MEAN_TOL {
                failures.push(format!("{label}: mean {} vs {mean}", ours.mean()));
            }
            let exact = float_field(peer, "float64_centred_mean");
            if (ours.mean() - exact).abs() > REFERENCE_TOL {
                failures.push(format!(
                    "{label}: mean {} vs float64 centred reference {exact}",
                    ours.mean()
                ));
            }
            if (ours.min - min).abs() > MAP_TOL {
                failures.push(format!("{label}: min {} vs {min}", ours.min));
            }
            if mean == 1.0 && (ours.mean() != 1.0 || ours.min != 1.0) {
                failures.push(format!(
                    "{label}: identical inputs give {ours:?}, not exactly 1"
                ));
            }
            if let Some(per_slice) = peer.get("per_slice") {
                let theirs: Vec<f64> = per_slice
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().parse().unwrap())
                    .collect();
                let mine = ours.per_slice();
                assert_eq!(mine.len(), theirs.len(), "{label}: slice count");
                for (i, (a, b)) in mine.iter().zip(&theirs).enumerate() {
                    if (a - b).abs() > MAP_TOL {
                        failures.push(format!("{label}: slice {i}: {a} vs {b}"));
                    }
                }
            }
        }
    }
    assert!(checked >= 20, "only {checked} comparisons");
    assert!(
        failures.is_empty(),
        "{} mismatch(es) with scikit-image\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

#[test]
fn slab_partitions_merge_bit_identically() {
    for case in cases() {
        for window in SsimWindow::ALL {
            let Ok(whole) = ssim(&case.original, &case.decoded, window, case.data_range) else {
                continue; // too small for this window: covered above
            };
            let r = window.radius();
            let n0 = case.original.shape()[0];
            for cuts in partitions(r, n0 - r) {
                let merged = merged_over(&case, window, &cuts);
                assert_eq!(merged, whole, "{} {window:?} {cuts:?}", case.name);
                assert_eq!(
                    merged.mean().to_bits(),
                    whole.mean().to_bits(),
                    "{} {window:?} {cuts:?}",
                    case.name
                );
            }
        }
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let cases = cases();
    let run = |threads: usize| -> Vec<SsimSums> {
        on_threads(threads, || {
            cases
                .iter()
                .filter_map(|c| {
                    ssim(&c.original, &c.decoded, SsimWindow::Gaussian, c.data_range).ok()
                })
                .collect()
        })
    };
    assert_eq!(run(1), run(3));
}
