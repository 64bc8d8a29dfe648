//! photonqa's segmentation analysis (`photonqa::analysis::segmentation`) against scikit-image
//! 0.26, SciPy and NumPy, on the fixtures that `tests/peers/segmentation_fixtures.py` writes to
//! `tests/fixtures/segmentation/` (these tests need no Python).
//!
//! Everything is exact:
//! - thresholds: `Binning` + `otsu::threshold` against `threshold_otsu`, `Binning` +
//!   `multiotsu` against `threshold_multiotsu(image, classes)`, bit-identical (and the same
//!   refusal where scikit-image raises `ValueError`);
//! - confusion counts (`numpy.digitize(..., right=True)` class maps), boundary voxels
//!   (`find_boundaries(mode='thick', connectivity=1)`) and matched boundary voxels
//!   (`binary_dilation` with the full 3^rank structure): equal integers;
//! - scores (fractions, Dice, IoU, boundary precision, recall, F1, threshold shifts):
//!   bit-identical, being the same float64 operations on the same integers;
//! - partials of any partition of the rows into slabs (1-row slabs included), merged in any
//!   order, equal the whole array's partial.

mod common;

use common::{Failures, float_list, int_field, pair_cases, parse_exact, str_field};

use std::ops::Range;

use photonqa::analysis::segmentation::{Classes, SegmentationPartial, multiotsu};
use photonqa::data::{IntoNdArray, NdArray};
use photonqa::stats::histogram::{Binning, Histogram};
use photonqa::stats::otsu;
use serde_json::Value;

fn expected() -> Value {
    common::expected_json("segmentation", "tests/peers/segmentation_fixtures.py")
}

struct Case {
    name: String,
    original: NdArray,
    decoded: NdArray,
    segmentations: Vec<Value>,
    /// `threshold_multiotsu(original, classes)` by class count (thresholds or an error).
    multiotsu: Value,
}

fn cases() -> Vec<Case> {
    pair_cases(
        &expected(),
        10,
        "segmentation",
        |c, name, original, decoded| Case {
            name,
            original,
            decoded,
            segmentations: c["segmentations"].as_array().unwrap().clone(),
            multiotsu: c["multiotsu_original"].clone(),
        },
    )
}

/// scikit-image's 256-bin (floats) or one-bin-per-value (integers) histogram of the data range.
fn histogram(a: &NdArray) -> Histogram {
    let values = a.to_f64();
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let binning = Binning::new(a.dtype(), lo, hi).unwrap_or_else(|e| panic!("{e}"));
    let mut counts = binning.zeros();
    binning.accumulate(a, &mut counts);
    binning.finish(counts)
}

/// The thresholds of a segmentation spec ("otsu", or "multiotsu" with `classes`).
fn thresholds(a: &NdArray, spec: &Value) -> Result<Vec<f64>, String> {
    let h = histogram(a);
    match str_field(spec, "method") {
        "otsu" => Ok(vec![otsu::threshold(&h)]),
        "multiotsu" => multiotsu(&h, int_field(spec, "classes") as usize),
        other => panic!("unknown method {other}"),
    }
}

fn label(case: &Case, spec: &Value) -> String {
    match spec.get("classes") {
        Some(k) => format!("{} multiotsu({k})", case.name),
        None => format!("{} otsu", case.name),
    }
}

fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// The fitted classes of both sides, or `None` where the peer raised (checked to match).
fn fitted(case: &Case, spec: &Value, fails: &mut Failures) -> Option<(Classes, Classes)> {
    let who = label(case, spec);
    let (to, td) = (
        thresholds(&case.original, spec),
        thresholds(&case.decoded, spec),
    );
    if let Some(message) = spec.get("error") {
        fails.check(to.is_err() || td.is_err(), || {
            format!("{who}: scikit-image raised {message}, photonqa gave {to:?} / {td:?}")
        });
        return None;
    }
    let (to, td) = match (to, td) {
        (Ok(to), Ok(td)) => (to, td),
        (to, td) => {
            fails.check(false, || format!("{who}: photonqa failed: {to:?} / {td:?}"));
            return None;
        }
    };
    for (role, got) in [("original", &to), ("decoded", &td)] {
        let want = float_list(&spec[format!("thresholds_{role}")]);
        fails.check(same_bits(got, &want), || {
            format!("{who}: {role} thresholds {got:?}, scikit-image {want:?}")
        });
    }
    Some((Classes { thresholds: to }, Classes { thresholds: td }))
}

fn whole(case: &Case, classes: &(Classes, Classes)) -> SegmentationPartial {
    let shape = case.original.shape().to_vec();
    SegmentationPartial::of(
        &case.original,
        &case.decoded,
        0..shape[0],
        0..shape[0],
        &shape,
        &classes.0,
        &classes.1,
    )
    .unwrap_or_else(|e| panic!("{}: {e}", case.name))
}

#[test]
fn thresholds_counts_and_scores_match_the_peers() {
    let mut fails = Failures::default();
    let mut checked = 0;
    for case in cases() {
        for spec in &case.segmentations {
            let who = label(&case, spec);
            let Some(classes) = fitted(&case, spec, &mut fails) else {
                continue;
            };
            let partial = whole(&case, &classes);
            let k = classes.0.count();
            let confusion: Vec<u64> = spec["confusion"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
                .collect();
            fails.check(
                partial.classes == k && partial.confusion == confusion,
                || {
                    format!(
                        "{who}: confusion {:?}, numpy {confusion:?}",
                        partial.confusion
                    )
                },
            );
            for (key, got) in [
                ("boundary_original", partial.boundary_original),
                ("boundary_decoded", partial.boundary_decoded),
                ("matched_original", partial.matched_original),
                ("matched_decoded", partial.matched_decoded),
            ] {
                let want = int_field(spec, key);
                fails.check(got == want, || format!("{who}: {key} {got}, peer {want}"));
            }
            let json = partial.json(&classes.0, &classes.1);
            fails.check(json["classes"].as_u64() == Some(k as u64), || {
                format!("{who}: classes {}", json["classes"])
            });
            for key in [
                "thresholds_original",
                "thresholds_decoded",
                "threshold_shift",
                "fractions_original",
                "fractions_decoded",
                "dice",
                "iou",
            ] {
                let got: Option<Vec<f64>> = json[key]
                    .as_array()
                    .map(|v| v.iter().filter_map(Value::as_f64).collect());
                let want = float_list(&spec[key]);
                fails.check(got.as_ref().is_some_and(|g| same_bits(g, &want)), || {
                    format!("{who}: {key} {}, peer {want:?}", json[key])
                });
            }
            for key in [
                "fraction_change_max",
                "dice_foreground",
                "iou_foreground",
                "boundary_precision",
                "boundary_recall",
                "boundary_f1",
            ] {
                let want = parse_exact(str_field(spec, key));
                fails.check(
                    json[key]
                        .as_f64()
                        .is_some_and(|g| g.to_bits() == want.to_bits()),
                    || format!("{who}: {key} {}, peer {want:?}", json[key]),
                );
            }
            checked += 1;
        }
    }
    fails.finish("segmentation");
    assert!(checked >= 20, "only {checked} segmentations checked");
}

#[test]
fn multiotsu_of_more_class_counts_matches_scikit_image() {
    let mut fails = Failures::default();
    let mut checked = 0;
    for case in cases() {
        let h = histogram(&case.original);
        for (classes, want) in case
            .multiotsu
            .as_object()
            .expect("multiotsu_original is a map")
        {
            let got = multiotsu(&h, classes.parse().unwrap());
            let ok = match (&got, want.get("error")) {
                (Err(e), Some(_)) => e.contains("only") && e.contains("different values"),
                (Ok(t), None) => same_bits(t, &float_list(want)),
                _ => false,
            };
            fails.check(ok, || {
                format!(
                    "{}: multiotsu({classes}) gave {got:?}, scikit-image {want}",
                    case.name
                )
            });
            checked += 1;
        }
    }
    fails.finish("multiotsu");
    assert!(checked >= 40, "only {checked} multiotsu thresholds checked");
}

/// The partial of rows `core`, from slabs of the rows `core` plus `halo` rows each side.
fn slab_partial(
    case: &Case,
    classes: &(Classes, Classes),
    core: Range<usize>,
    halo: usize,
) -> SegmentationPartial {
    let shape = case.original.shape().to_vec();
    let held = core.start.saturating_sub(halo)..(core.end + halo).min(shape[0]);
    SegmentationPartial::of(
        &case.original.slice_rows(held.clone()),
        &case.decoded.slice_rows(held.clone()),
        held,
        core.clone(),
        &shape,
        &classes.0,
        &classes.1,
    )
    .unwrap_or_else(|e| panic!("{} rows {core:?}: {e}", case.name))
}

/// Partitions of `0..n` into consecutive ranges, by slab lengths (the last one takes the rest).
fn partitions(n: usize) -> Vec<Vec<Range<usize>>> {
    let by = |lengths: &dyn Fn(usize) -> usize| {
        let mut parts = Vec::new();
        let mut start = 0;
        for i in 0.. {
            if start >= n {
                break;
            }
            let end = (start + lengths(i)).min(n);
            parts.push(start..end);
            start = end;
        }
        parts
    };
    vec![
        by(&|_| 1),
        by(&|_| 2),
        by(&|_| 3),
        by(&|i| [1, 4, 2, 7][i % 4]),
        by(&|i| if i == 0 { n - 1 } else { 1 }),
        vec![0..n / 2, n / 2..n],
    ]
}

#[test]
fn merged_partials_of_any_partition_equal_the_whole() {
    let mut fails = Failures::default();
    for case in cases() {
        for spec in &case.segmentations {
            let Some(classes) = fitted(&case, spec, &mut fails) else {
                continue;
            };
            let who = label(&case, spec);
            let total = whole(&case, &classes);
            let n = case.original.shape()[0];
            for parts in partitions(n) {
                for halo in [SegmentationPartial::HALO, SegmentationPartial::HALO + 3] {
                    let partials: Vec<_> = parts
                        .iter()
                        .map(|core| slab_partial(&case, &classes, core.clone(), halo))
                        .collect();
                    let mut forward = partials[0].clone();
                    let mut backward = partials[partials.len() - 1].clone();
                    for p in &partials[1..] {
                        forward.merge(p).unwrap();
                    }
                    for p in partials[..partials.len() - 1].iter().rev() {
                        backward.merge(p).unwrap();
                    }
                    fails.check(forward == total && backward == total, || {
                        format!(
                            "{who}: slabs {parts:?} (halo {halo}) merge to {forward:?} / {backward:?}, whole array {total:?}"
                        )
                    });
                }
            }
        }
    }
    fails.finish("partitions");
}

#[test]
fn scores_are_never_nan() {
    for case in cases() {
        for spec in &case.segmentations {
            let mut fails = Failures::default();
            let Some(classes) = fitted(&case, spec, &mut fails) else {
                continue;
            };
            let json = whole(&case, &classes).json(&classes.0, &classes.1);
            assert!(
                !json.to_string().contains("nan"),
                "{}: {json}",
                label(&case, spec)
            );
        }
    }
}

fn array(shape: &[usize], values: Vec<f32>) -> NdArray {
    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), values)
        .unwrap()
        .into_nd()
}

#[test]
fn invalid_inputs_are_one_line_errors() {
    let binary = Classes {
        thresholds: vec![0.5],
    };
    let three = Classes {
        thresholds: vec![0.3, 0.6],
    };
    let a = array(&[4, 5], (0..20).map(|v| v as f32 / 20.0).collect());
    let of = |x: &NdArray,
              y: &NdArray,
              held: Range<usize>,
              core: Range<usize>,
              shape: &[usize],
              co: &Classes,
              cd: &Classes| {
        SegmentationPartial::of(x, y, held, core, shape, co, cd)
            .expect_err("an invalid input must be an error")
    };
    let mut errors = vec![
        // Shapes of the original and the decoded differ.
        of(
            &a,
            &array(&[4, 4], vec![0.0; 16]),
            0..4,
            0..4,
            &[4, 5],
            &binary,
            &binary,
        ),
        // Slab shape does not match the whole array's rows.
        of(&a, &a, 0..4, 0..4, &[4, 6], &binary, &binary),
        of(&a, &a, 0..3, 0..3, &[4, 5], &binary, &binary),
        // Wrong ranks.
        of(
            &array(&[20], vec![0.0; 20]),
            &array(&[20], vec![0.0; 20]),
            0..20,
            0..20,
            &[20],
            &binary,
            &binary,
        ),
        of(
            &array(&[2, 2, 2, 2], vec![0.0; 16]),
            &array(&[2, 2, 2, 2], vec![0.0; 16]),
            0..2,
            0..2,
            &[2, 2, 2, 2],
            &binary,
            &binary,
        ),
        // Fewer than two classes, different class counts, thresholds not increasing.
        of(
            &a,
            &a,
            0..4,
            0..4,
            &[4, 5],
            &Classes { thresholds: vec![] },
            &binary,
        ),
        of(&a, &a, 0..4, 0..4, &[4, 5], &binary, &three),
        of(
            &a,
            &a,
            0..4,
            0..4,
            &[4, 5],
            &Classes {
                thresholds: vec![0.6, 0.3],
            },
            &Classes {
                thresholds: vec![0.6, 0.3],
            },
        ),
        // Too few halo rows.
        of(
            &a.slice_rows(0..3),
            &a.slice_rows(0..3),
            0..3,
            0..2,
            &[4, 5],
            &binary,
            &binary,
        ),
        of(
            &a.slice_rows(1..4),
            &a.slice_rows(1..4),
            1..4,
            2..4,
            &[4, 5],
            &binary,
            &binary,
        ),
        // Core outside the held rows.
        of(&a, &a, 0..4, 2..6, &[4, 5], &binary, &binary),
    ];
    let h = histogram(&a);
    errors.push(multiotsu(&h, 1).unwrap_err());
    errors.push(multiotsu(&h, 0).unwrap_err());
    let mut two = SegmentationPartial::of(&a, &a, 0..4, 0..4, &[4, 5], &binary, &binary).unwrap();
    let three_classes =
        SegmentationPartial::of(&a, &a, 0..4, 0..4, &[4, 5], &three, &three).unwrap();
    errors.push(two.merge(&three_classes).unwrap_err());
    for e in &errors {
        assert!(
            !e.is_empty() && !e.contains('\n'),
            "not a one-line error: {e:?}"
        );
    }
    assert!(errors[0].contains("differ"), "{}", errors[0]);
    assert!(errors[3].contains("2-D or 3-D"), "{}", errors[3]);
    assert!(errors[5].contains("at least 2 classes"), "{}", errors[5]);
    assert!(errors[8].contains("halo"), "{}", errors[8]);
    assert!(errors[11].contains("at least 2 classes"), "{}", errors[11]);
}

#[test]
fn an_empty_core_counts_nothing() {
    let a = array(&[4, 5], (0..20).map(|v| v as f32 / 20.0).collect());
    let binary = Classes {
        thresholds: vec![0.5],
    };
    let s = a.slice_rows(0..3);
    let p = SegmentationPartial::of(&s, &s, 0..3, 1..1, &[4, 5], &binary, &binary).unwrap();
    assert_eq!(p.total(), 0);
    let json = p.json(&binary, &binary);
    assert_eq!(json["dice"], serde_json::json!([1.0, 1.0]));
    assert_eq!(json["boundary_f1"], serde_json::json!(1.0));
    assert_eq!(json["fraction_change_max"], serde_json::json!(0.0));
}
