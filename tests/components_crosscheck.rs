//! photonqa's connected components (`photonqa::analysis::components`) against SciPy 1.17
//! `scipy.ndimage.label`, on the masks that `tests/peers/components_fixtures.py` writes to
//! `tests/fixtures/components/` (these tests need no Python).
//!
//! Everything is exact, for both connectivities (`face`: scipy's default structure, `full`:
//! `generate_binary_structure(rank, rank)`):
//! - the count, the sorted sizes, and per label (components ordered by first voxel) the size,
//!   the first voxel and whether the label touches the border;
//! - the mask voxels and the boundary faces per axis (NumPy `count_nonzero(diff(mask, axis))`);
//! - merging the partials of any partition of the rows into slabs (whole, 1-row slabs, halves,
//!   the cuts each case names, random partitions, with and without empty slabs, in row order or
//!   as a balanced tree) gives exactly the whole-volume result;
//! - `bool` and `u8` masks (any nonzero value) give the same result, on any thread count;
//! - wrong mask lengths, ranks other than 2 and 3, rows beyond the mask and merges of partials
//!   that do not fit together are errors.

mod common;

use common::{fixture_cases, on_threads};

use std::path::Path;

use ndarray::ArrayD;
use photonqa::analysis::components::{ComponentPartial, Components, Connectivity, components};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

const CONNECTIVITIES: [Connectivity; 2] = [Connectivity::Face, Connectivity::Full];

struct Case {
    name: String,
    shape: Vec<usize>,
    mask: Vec<u8>,
    /// Cuts (row boundaries) the case names.
    cuts: Vec<Vec<usize>>,
    expected: Value,
}

fn cases() -> Vec<Case> {
    let expected = common::expected_json("components", "tests/peers/components_fixtures.py");
    fixture_cases(&expected, 20, "component")
        .iter()
        .map(|c| {
            let rel = c["mask"].as_str().expect("mask path");
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
            let array: ArrayD<u8> =
                ndarray_npy::read_npy(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let shape = array.shape().to_vec();
            assert_eq!(shape, usizes(&c["shape"]), "{rel}: shape");
            Case {
                name: c["name"].as_str().expect("name").to_string(),
                mask: array.iter().copied().collect(),
                shape,
                cuts: c["cuts"]
                    .as_array()
                    .expect("cuts")
                    .iter()
                    .map(usizes)
                    .collect(),
                expected: c.clone(),
            }
        })
        .collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap_or_else(|| panic!("{v} is not a list"))
        .iter()
        .map(|x| {
            x.as_u64()
                .unwrap_or_else(|| panic!("{x} is not an integer")) as usize
        })
        .collect()
}

fn u64s(v: &Value) -> Vec<u64> {
    usizes(v).into_iter().map(|x| x as u64).collect()
}

fn bools(v: &Value) -> Vec<bool> {
    v.as_array()
        .unwrap_or_else(|| panic!("{v} is not a list"))
        .iter()
        .map(|x| x.as_bool().unwrap_or_else(|| panic!("{x} is not a bool")))
        .collect()
}

/// Partials of the slabs between consecutive `cuts`.
fn partials(case: &Case, cuts: &[usize], c: Connectivity) -> Vec<ComponentPartial> {
    let row: usize = case.shape[1..].iter().product();
    cuts.windows(2)
        .map(|w| {
            let mut shape = case.shape.clone();
            shape[0] = w[1] - w[0];
            ComponentPartial::of(
                &case.mask[w[0] * row..w[1] * row],
                &shape,
                w[0],
                case.shape[0],
                c,
            )
            .unwrap_or_else(|e| panic!("{} {c:?} slab {w:?}: {e}", case.name))
        })
        .collect()
}

/// Merged in row order, one after the other.
fn in_order(case: &Case, cuts: &[usize], c: Connectivity) -> Components {
    let mut parts = partials(case, cuts, c).into_iter();
    let mut whole = parts.next().expect("at least one slab");
    for p in parts {
        whole
            .merge(&p)
            .unwrap_or_else(|e| panic!("{} {c:?} {cuts:?}: {e}", case.name));
    }
    assert!(whole.is_complete());
    whole.finish()
}

/// Merged as a balanced tree of adjacent pairs (what a parallel reduction does).
fn as_tree(case: &Case, cuts: &[usize], c: Connectivity) -> Components {
    let mut level = partials(case, cuts, c);
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| {
                let mut left = pair[0].clone();
                if let Some(right) = pair.get(1) {
                    left.merge(right).unwrap();
                }
                left
            })
            .collect();
    }
    level.pop().unwrap().finish()
}

/// Random cuts of `rows` rows into slabs of 0 to `max` rows.
fn random_cuts(rng: &mut ChaCha8Rng, rows: usize, max: usize) -> Vec<usize> {
    let mut cuts = vec![0];
    while *cuts.last().unwrap() < rows {
        let next = cuts.last().unwrap() + rng.random_range(0..=max);
        cuts.push(next.min(rows));
    }
    cuts
}

#[test]
fn counts_sizes_flags_and_faces_equal_scipy() {
    for case in cases() {
        for c in CONNECTIVITIES {
            let got = components(&case.mask, &case.shape, c)
                .unwrap_or_else(|e| panic!("{} {c:?}: {e}", case.name));
            let want = &case.expected["connectivity"][c.name()];
            let what = format!("{} {}", case.name, c.name());
            assert_eq!(
                got.count as u64,
                want["count"].as_u64().unwrap(),
                "{what}: count"
            );
            assert_eq!(
                got.sizes,
                u64s(&want["sorted_sizes"]),
                "{what}: sorted sizes"
            );
            let sizes: Vec<u64> = got.components.iter().map(|k| k.size).collect();
            assert_eq!(sizes, u64s(&want["sizes"]), "{what}: sizes in label order");
            let first: Vec<u64> = got.components.iter().map(|k| k.first_voxel).collect();
            assert_eq!(first, u64s(&want["first_voxels"]), "{what}: first voxels");
            let border = bools(&want["touches_border"]);
            assert_eq!(got.touches_border(), border, "{what}: border flags");
            let touching = border.iter().filter(|&&b| b).count();
            assert_eq!(got.touching_border, touching, "{what}: touching border");
            assert_eq!(
                got.volume,
                case.expected["volume"].as_u64().unwrap(),
                "{what}"
            );
            let faces = u64s(&case.expected["boundary_faces"]);
            assert_eq!(got.boundary_faces_per_axis, faces, "{what}: faces per axis");
            assert_eq!(
                got.boundary_faces,
                faces.iter().sum::<u64>(),
                "{what}: faces"
            );
            assert_eq!(got.connectivity, c);
        }
    }
}

#[test]
fn merges_of_any_partition_equal_the_whole() {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    for case in cases() {
        let rows = case.shape[0];
        let mut all: Vec<Vec<usize>> = vec![
            vec![0, rows],
            (0..=rows).collect(),
            vec![0, rows / 2, rows],
            vec![0, 0, rows, rows],
        ];
        all.extend(case.cuts.iter().cloned());
        for _ in 0..6 {
            all.push(random_cuts(&mut rng, rows, 4));
        }
        all.push(random_cuts(&mut rng, rows, 1));
        for c in CONNECTIVITIES {
            let whole = in_order(&case, &[0, rows], c);
            assert_eq!(components(&case.mask, &case.shape, c).unwrap(), whole);
            for cuts in &all {
                let what = format!("{} {} cuts {cuts:?}", case.name, c.name());
                assert_eq!(in_order(&case, cuts, c), whole, "{what} (in order)");
                assert_eq!(as_tree(&case, cuts, c), whole, "{what} (as a tree)");
            }
        }
    }
}

#[test]
fn bool_and_nonzero_u8_masks_agree_on_any_thread_count() {
    for case in cases() {
        let bools: Vec<bool> = case.mask.iter().map(|&v| v != 0).collect();
        let bytes: Vec<u8> = case
            .mask
            .iter()
            .enumerate()
            .map(|(i, &v)| if v != 0 { 1 + (i % 255) as u8 } else { 0 })
            .collect();
        for c in CONNECTIVITIES {
            let want = components(&case.mask, &case.shape, c).unwrap();
            assert_eq!(components(&bools, &case.shape, c).unwrap(), want);
            assert_eq!(components(&bytes, &case.shape, c).unwrap(), want);
            for threads in [1, 3] {
                let got = on_threads(threads, || components(&case.mask, &case.shape, c).unwrap());
                assert_eq!(got, want, "{} on {threads} threads", case.name);
            }
        }
    }
}

#[test]
fn specific_surface_is_faces_per_voxel() {
    let mask = [0u8, 1, 1, 0, 1, 1, 0, 0, 0];
    let got = components(&mask, &[3, 3], Connectivity::Face).unwrap();
    // [[0, 1, 1], [0, 1, 1], [0, 0, 0]]: along axis 0, rows 1 and 2 differ twice; along
    // axis 1, rows 0 and 1 have one 0-1 step each. The outside does not count.
    assert_eq!(got.boundary_faces_per_axis, vec![2, 2]);
    assert_eq!(got.specific_surface(), Some(1.0));
    let none = components(&[0u8; 4], &[2, 2], Connectivity::Full).unwrap();
    assert_eq!((none.count, none.specific_surface()), (0, None));
}

#[test]
fn wrong_lengths_shapes_and_partials_are_errors() {
    let c = Connectivity::Face;
    let mask = vec![1u8; 24];
    let err = |r: Result<Components, String>| r.expect_err("must fail");
    assert!(err(components(&mask[..23], &[2, 3, 4], c)).contains("needs 24"));
    assert!(err(components(&mask, &[24], c)).contains("2-D or 3-D"));
    assert!(err(components(&mask, &[1, 2, 3, 4], c)).contains("2-D or 3-D"));
    let of = |mask: &[u8], shape: &[usize], first: usize, total: usize, c| {
        ComponentPartial::of(mask, shape, first, total, c)
    };
    assert!(
        of(&mask[..20], &[2, 3, 4], 0, 2, c)
            .unwrap_err()
            .contains("needs 24")
    );
    assert!(of(&mask, &[2, 12], 1, 2, c).unwrap_err().contains("beyond"));
    assert!(
        of(&mask, &[24], 0, 24, c)
            .unwrap_err()
            .contains("2-D or 3-D")
    );

    let slab = |first: usize, shape: &[usize], total: usize, c| {
        let n = shape.iter().product();
        of(&mask[..n], shape, first, total, c).unwrap()
    };
    let mut a = slab(0, &[2, 3, 4], 4, c);
    // Not adjacent: rows 0..2 then 3..4.
    let gap = a.merge(&slab(3, &[1, 3, 4], 4, c)).unwrap_err();
    assert!(gap.contains("adjacent"), "{gap}");
    // Out of order: rows 2..4 before 0..2.
    let mut late = slab(2, &[2, 3, 4], 4, c);
    assert!(late.merge(&a.clone()).unwrap_err().contains("adjacent"));
    let full = a.merge(&slab(2, &[2, 3, 4], 4, Connectivity::Full));
    assert!(full.unwrap_err().contains("connectivity"));
    let rows = a.merge(&slab(2, &[2, 4, 3], 4, c)).unwrap_err();
    assert!(rows.contains("shape"), "{rows}");
    assert!(
        a.merge(&slab(2, &[2, 3, 4], 5, c))
            .unwrap_err()
            .contains("rows")
    );
    // A failed merge leaves the partial as it was.
    assert_eq!(a, slab(0, &[2, 3, 4], 4, c));
    a.merge(&slab(2, &[2, 3, 4], 4, c)).unwrap();
    let all = a.finish();
    assert_eq!((all.count, all.volume, all.boundary_faces), (1, 48, 0));
}
