//! Multi-level Otsu thresholds and the comparison of the original's and the decoded's
//! segmentations, as mergeable partials over row ranges of axis 0.
//!
//! # Classes
//!
//! A segmentation is given by increasing thresholds `t_1 < ... < t_k`; the class of a value `v`
//! is the number of thresholds below it, `#{i : t_i < v}`. With one threshold this is
//! scikit-image's `image > threshold_otsu(image)`; with several it is
//! `numpy.digitize(image, thresholds, right=True)`. (A NaN value is class 0, as `image > t`;
//! `numpy.digitize` would put it in the last class.) The original and the decoded array are each
//! classified with their own thresholds, fitted on their own data.
//!
//! [`multiotsu`] computes scikit-image 0.26's `threshold_multiotsu(image, classes, nbins=256)`
//! from the same [`Histogram`] that [`crate::stats::otsu::threshold`] uses, to the bit: the
//! probabilities `count / total` are rounded to float32; the zeroth and first cumulative moments
//! `P`, `S` over bin *indices* are float32 running sums (with scikit-image's `S[0] = p[0]`); the
//! between-class terms `H(i, j) = (S[j] - S[i-1])^2 / (P[j] - P[i-1])` are float32 (0 when the
//! class is empty, and `H(0, 0) = 0` as in its lookup table); and the objective of a candidate
//! `t_0 < ... < t_{k-1}` is the float32 sum `H(0, t_0) + H(t_{k-1}+1, n-1) + H(t_0+1, t_1) + ...`
//! in that order. Candidates are enumerated in lexicographic order and the first strict maximum
//! wins. The thresholds are the centres of the bins `t_i`. With as many occupied bins as
//! classes, the thresholds are the centres of the first `classes - 1` occupied bins; with fewer
//! it is an error, as scikit-image's `ValueError`.
//!
//! # What is compared
//!
//! Over the voxels of the whole array, with `A_c` the voxels of class `c` in the original's
//! class map and `B_c` in the decoded's:
//!
//! - the confusion counts `|A_a ∩ B_b|`, and the class fractions `|A_c| / N`, `|B_c| / N`;
//! - Dice's coefficient `Dice_c = 2 |A_c ∩ B_c| / (|A_c| + |B_c|)` (Dice 1945) and the
//!   Jaccard index `IoU_c = |A_c ∩ B_c| / |A_c ∪ B_c|` (Jaccard 1912), per class and for the
//!   foreground (every class >= 1 merged against class 0); a class absent from both maps scores 1;
//! - the boundary F1 score (the idea of Csurka et al. 2013): a *boundary voxel* of a class map has
//!   at least one face neighbour inside the array of another class. This is scikit-image's
//!   `find_boundaries(labels, connectivity=1, mode='thick')`, whose grey dilation and erosion pad
//!   with `mode='reflect'`, so the edge of the array is not itself a boundary (checked against
//!   scikit-image 0.26). A decoded boundary voxel is *matched* when an original boundary voxel
//!   lies within Chebyshev distance 1 (its 3x3 or 3x3x3 neighbourhood inside the array, i.e.
//!   `scipy.ndimage.binary_dilation(boundary_original, generate_binary_structure(rank, rank))`);
//!   precision is the matched fraction of the decoded boundary voxels, recall the matched
//!   fraction of the original's (the same test the other way round), `F1 = 2PR / (P + R)`. With
//!   no boundary voxels on either side all three are 1; with boundary voxels on one side only,
//!   0 (as is F1 when P = R = 0).
//!
//! # Partials
//!
//! [`SegmentationPartial::of`] counts the voxels of the rows `core` (global indices along axis 0)
//! only, reading up to [`SegmentationPartial::HALO`] = 2 rows beyond each side: one to decide
//! whether a voxel of the core's edge rows is a boundary voxel, one more to decide whether a
//! boundary voxel next to the core is one. Every count is an integer, so merging the partials of
//! any partition of the rows, in any order, gives exactly the counts of the whole array.
//!
//! The maps are `u8` per voxel for the held rows, and the boundary and matching tests run over
//! contiguous slices of rows and lines.
//!
//! References:
//! - L. R. Dice, "Measures of the amount of ecologic association between species", Ecology 26
//!   (1945) 297-302, doi:10.2307/1932409.
//! - P. Jaccard, "The distribution of the flora in the alpine zone", New Phytologist 11 (1912)
//!   37-50, doi:10.1111/j.1469-8137.1912.tb05611.x.
//! - N. Otsu, "A threshold selection method from gray-level histograms", IEEE Trans. Syst. Man
//!   Cybern. 9 (1979) 62-66, doi:10.1109/TSMC.1979.4310076.
//! - P.-S. Liao, T.-S. Chen, P.-C. Chung, "A fast algorithm for multilevel thresholding",
//!   J. Inf. Sci. Eng. 17 (2001) 713-727, doi:10.6688/JISE.2001.17.5.1.
//! - G. Csurka, D. Larlus, F. Perronnin, "What is a good evaluation measure for semantic
//!   segmentation?", BMVC 2013, doi:10.5244/C.27.32.

use std::ops::Range;

use serde_json::{Value, json};

use super::figure::{FigureData, Image, Panel, Raster, Shading};
use super::{Analysis, Context, DynAnalysis, Slabs};
use crate::data::{Element, NdArray, c_order};
use crate::metrics::values::metric_json;
use crate::pipeline::params::StageConfig;
use crate::stats::histogram::Histogram;
use crate::with_array;

/// Most thresholds a [`Classes`] may have (class indices are `u8`).
pub const MAX_THRESHOLDS: usize = 255;

/// Most candidate threshold combinations [`multiotsu`] evaluates: about a minute here, hours
/// for scikit-image (5 classes over 256 bins are 1.7e8 candidates: 0.3 s here, a minute there).
pub const MAX_MULTIOTSU_CANDIDATES: u128 = 20_000_000_000;

/// Class thresholds, increasing; class of a value `v` = number of thresholds `t` with `t < v`
/// (so binary: foreground = `v > t`, as `image > threshold_otsu(image)`; multi-class:
/// `numpy.digitize(v, thresholds, right=True)`).
#[derive(Debug, Clone, PartialEq)]
pub struct Classes {
    /// The thresholds, strictly increasing.
    pub thresholds: Vec<f64>,
}

impl Classes {
    /// Number of classes: one more than the number of thresholds.
    pub fn count(&self) -> usize {
        self.thresholds.len() + 1
    }

    /// The class of `v`: how many thresholds are below it (NaN: class 0).
    pub fn class_of(&self, v: f64) -> u8 {
        self.thresholds.iter().filter(|&&t| t < v).count() as u8
    }

    /// Checks that there are 1..=[`MAX_THRESHOLDS`] strictly increasing, non-NaN thresholds.
    fn check(&self, role: &str) -> Result<(), String> {
        let n = self.thresholds.len();
        if n == 0 {
            return Err(format!(
                "the {role} segmentation has 1 class: at least 2 classes (1 threshold) are needed"
            ));
        }
        if n > MAX_THRESHOLDS {
            return Err(format!(
                "the {role} segmentation has {} classes: at most {} are supported",
                n + 1,
                MAX_THRESHOLDS + 1
            ));
        }
        if self.thresholds.iter().any(|t| t.is_nan())
            || self.thresholds.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(format!(
                "the {role} thresholds {:?} are not strictly increasing numbers",
                self.thresholds
            ));
        }
        Ok(())
    }

    /// Writes the class of every value of `values` to `out`.
    fn classify<T: Element>(&self, values: &[T], out: &mut [u8]) {
        match self.thresholds[..] {
            [t] => out
                .iter_mut()
                .zip(values)
                .for_each(|(o, &v)| *o = u8::from(v.to_f64() > t)),
            [t0, t1] => out.iter_mut().zip(values).for_each(|(o, &v)| {
                let v = v.to_f64();
                *o = u8::from(t0 < v) + u8::from(t1 < v);
            }),
            _ => {
                // One pass per threshold over short blocks of values converted once.
                let mut block = [0f64; 512];
                for (out, values) in out.chunks_mut(512).zip(values.chunks(512)) {
                    let block = &mut block[..values.len()];
                    block
                        .iter_mut()
                        .zip(values)
                        .for_each(|(b, &v)| *b = v.to_f64());
                    out.fill(0);
                    for &t in &self.thresholds {
                        out.iter_mut()
                            .zip(block.iter())
                            .for_each(|(o, &v)| *o += u8::from(t < v));
                    }
                }
            }
        }
    }
}

/// scikit-image `threshold_multiotsu(image, classes, nbins=256)` from the same histogram the
/// binary Otsu uses (see the module documentation): the same thresholds (bin centres) to the
/// bit, including tie-breaking. Zero bins at either end of the histogram are trimmed first, as
/// scikit-image does with a given `hist`. A histogram with fewer occupied bins than classes is an
/// error, as scikit-image's `ValueError`; so is `classes < 2`, and a search over more than
/// [`MAX_MULTIOTSU_CANDIDATES`] combinations.
pub fn multiotsu(histogram: &Histogram, classes: usize) -> Result<Vec<f64>, String> {
    if classes < 2 {
        return Err(format!(
            "multi-level Otsu needs at least 2 classes, not {classes}"
        ));
    }
    if histogram.counts.len() != histogram.centers.len() {
        return Err(format!(
            "histogram has {} counts but {} bin centres",
            histogram.counts.len(),
            histogram.centers.len()
        ));
    }
    let Some(start) = histogram.counts.iter().position(|&c| c > 0) else {
        return Err("multi-level Otsu of an empty histogram".into());
    };
    let end = histogram
        .counts
        .iter()
        .rposition(|&c| c > 0)
        .expect("non-empty")
        + 1;
    let counts = &histogram.counts[start..end];
    let centers = &histogram.centers[start..end];
    let total: u64 = counts.iter().sum();
    // numpy: hist / np.sum(hist) in float64, then .astype('float32').
    let prob: Vec<f32> = counts
        .iter()
        .map(|&c| (c as f64 / total as f64) as f32)
        .collect();
    let nonzero: Vec<usize> = (0..prob.len()).filter(|&i| prob[i] != 0.0).collect();
    let thresholds = classes - 1;
    if nonzero.len() < classes {
        return Err(format!(
            "after discretization into bins the data has only {} different values: it cannot be thresholded in {classes} classes",
            nonzero.len()
        ));
    }
    let indices = if nonzero.len() == classes {
        nonzero[..thresholds].to_vec()
    } else {
        let n = prob.len();
        let candidates = binomial(n as u128 - 1, thresholds as u128);
        if candidates > MAX_MULTIOTSU_CANDIDATES {
            return Err(format!(
                "multi-level Otsu with {classes} classes over {n} bins would evaluate {candidates} threshold combinations (at most {MAX_MULTIOTSU_CANDIDATES}): use fewer classes or bins"
            ));
        }
        Search::new(&prob, thresholds).run()
    };
    Ok(indices.into_iter().map(|i| centers[i]).collect())
}

/// `n choose k`, saturating.
fn binomial(n: u128, k: u128) -> u128 {
    if k > n {
        return 0;
    }
    let mut result: u128 = 1;
    for i in 0..k {
        result = result.saturating_mul(n - i) / (i + 1);
    }
    result
}

/// Bins up to which the between-class terms are tabulated (a triangle of `n (n + 1) / 2` floats,
/// 8 MiB at this size); above it they are computed at each use, with the same float32 operations.
const LUT_MAX_BINS: usize = 2048;

/// scikit-image's exhaustive multi-level Otsu search (`_get_multiotsu_thresh_indices_lut`).
struct Search {
    n: usize,
    thresholds: usize,
    zeroth: Vec<f32>,
    first: Vec<f32>,
    /// `H(i, j)` for `j >= i`, row `i` at `i (2n - i + 1) / 2` (empty above [`LUT_MAX_BINS`]).
    lut: Vec<f32>,
    /// `H(i, n - 1)`: the last class's term.
    tail: Vec<f32>,
    /// Row `i` of `H` (from `j = i`) when there is no table.
    scratch: Vec<f32>,
    /// The thresholds being tried.
    current: Vec<usize>,
    /// `H(current[i] + 1, current[i + 1])`: the terms of the inner classes fixed so far.
    inner: Vec<f32>,
    best: Vec<usize>,
    best_sigma: f32,
}

impl Search {
    fn new(prob: &[f32], thresholds: usize) -> Search {
        let n = prob.len();
        let mut zeroth = vec![0f32; n];
        let mut first = vec![0f32; n];
        zeroth[0] = prob[0];
        first[0] = prob[0]; // sic: scikit-image starts the first moment at p[0], not 0 * p[0]
        for i in 1..n {
            zeroth[i] = zeroth[i - 1] + prob[i];
            first[i] = first[i - 1] + i as f32 * prob[i];
        }
        let mut search = Search {
            n,
            thresholds,
            zeroth,
            first,
            lut: Vec::new(),
            tail: Vec::new(),
            scratch: Vec::new(),
            current: vec![0; thresholds],
            inner: vec![0.0; thresholds],
            best: vec![0; thresholds],
            best_sigma: 0.0,
        };
        search.tail = (0..n).map(|i| search.compute(i, n - 1)).collect();
        if n <= LUT_MAX_BINS {
            let mut lut = Vec::with_capacity(n * (n + 1) / 2);
            for i in 0..n {
                lut.extend((i..n).map(|j| search.compute(i, j)));
            }
            search.lut = lut;
        }
        search
    }

    /// `H(i, j)` as scikit-image's lookup table holds it.
    fn compute(&self, i: usize, j: usize) -> f32 {
        if i == 0 {
            // The table's row 0 is filled from j = 1; H(0, 0) stays 0.
            if j > 0 && self.zeroth[j] > 0.0 {
                return self.first[j] * self.first[j] / self.zeroth[j];
            }
            return 0.0;
        }
        let zeroth = self.zeroth[j] - self.zeroth[i - 1];
        if zeroth > 0.0 {
            let first = self.first[j] - self.first[i - 1];
            first * first / zeroth
        } else {
            0.0
        }
    }

    fn h(&self, i: usize, j: usize) -> f32 {
        if self.lut.is_empty() {
            self.compute(i, j)
        } else {
            self.lut[i * (2 * self.n - i + 1) / 2 + j - i]
        }
    }

    fn run(mut self) -> Vec<usize> {
        self.descend(0, 0);
        self.best
    }

    /// Tries every value of `current[level..]` from `from` on, in lexicographic order, as
    /// scikit-image's recursion does; keeps the first strict maximum.
    fn descend(&mut self, from: usize, level: usize) {
        let (n, k) = (self.n, self.thresholds);
        if level + 1 < k {
            for idx in from..n - k + level {
                self.current[level] = idx;
                if level > 0 {
                    self.inner[level - 1] = self.h(self.current[level - 1] + 1, idx);
                }
                self.descend(idx + 1, level + 1);
            }
            return;
        }
        // The last threshold: sigma = H(0, t_0) + H(t_last + 1, n - 1) + the inner terms in
        // order, the last of which, H(t_{k-2} + 1, t_last), varies here.
        let row_start = if k == 1 { 0 } else { self.current[k - 2] + 1 };
        if self.lut.is_empty() {
            self.scratch = (row_start..n).map(|j| self.compute(row_start, j)).collect();
        }
        let row: &[f32] = if self.lut.is_empty() {
            &self.scratch
        } else {
            let at = row_start * (2 * n - row_start + 1) / 2;
            &self.lut[at..at + n - row_start]
        };
        let head = if k == 1 {
            0.0
        } else {
            self.h(0, self.current[0])
        };
        let inner = &self.inner[..k.saturating_sub(2)];
        let mut best: Option<(usize, f32)> = None;
        let mut best_sigma = self.best_sigma;
        for idx in from..n - 1 {
            let varying = row[idx - row_start];
            let mut sigma = if k == 1 { varying } else { head } + self.tail[idx + 1];
            for &term in inner {
                sigma += term;
            }
            if k > 1 {
                sigma += varying;
            }
            if sigma > best_sigma {
                best_sigma = sigma;
                best = Some((idx, sigma));
            }
        }
        if let Some((idx, sigma)) = best {
            self.best_sigma = sigma;
            self.current[k - 1] = idx;
            self.best.copy_from_slice(&self.current);
        }
    }
}

/// Mergeable partial of the comparison of the original's and the decoded's class maps over rows
/// `core` (global indices along axis 0), from slabs holding rows `held` (`core` extended by up to
/// [`Self::HALO`] rows each side, clamped to the array). Every field is an exact count.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SegmentationPartial {
    /// Number of classes `k` (the same on both sides).
    pub classes: usize,
    /// `confusion[a * k + b]`: voxels of class `a` in the original and `b` in the decoded.
    pub confusion: Vec<u64>,
    /// Boundary voxels of the original's class map.
    pub boundary_original: u64,
    /// Boundary voxels of the decoded's class map.
    pub boundary_decoded: u64,
    /// Original boundary voxels with a decoded boundary voxel within Chebyshev distance 1.
    pub matched_original: u64,
    /// Decoded boundary voxels with an original boundary voxel within Chebyshev distance 1.
    pub matched_decoded: u64,
}

/// Layout of the whole array: `rows` along axis 0, each a plane of `plane` voxels in lines of
/// `nx` (a rank-2 array has one line per row).
#[derive(Debug, Clone, Copy)]
struct Geometry {
    rows: usize,
    nx: usize,
    plane: usize,
}

/// Maps of consecutive rows (global indices `first..`), one `u8` per voxel.
struct RowMaps {
    first: usize,
    data: Vec<u8>,
}

impl RowMaps {
    fn row(&self, r: usize, plane: usize) -> &[u8] {
        &self.data[(r - self.first) * plane..][..plane]
    }
}

impl SegmentationPartial {
    /// Rows beyond the core a partial reads on each side.
    pub const HALO: usize = 2;

    /// The partial of rows `core` of arrays of shape `shape` (rank 2 or 3) from slabs of the
    /// original and the decoded array holding rows `held`, which must contain `core` and up to
    /// [`Self::HALO`] rows on each side of it (clamped to the array). The class maps are made
    /// with `classes_original` and `classes_decoded` (the same number of classes, at least 2).
    pub fn of(
        original: &NdArray,
        decoded: &NdArray,
        held: Range<usize>,
        core: Range<usize>,
        shape: &[usize],
        classes_original: &Classes,
        classes_decoded: &Classes,
    ) -> Result<SegmentationPartial, String> {
        if !(2..=3).contains(&shape.len()) {
            return Err(format!(
                "segmentation comparison needs a 2-D or 3-D array, not shape {shape:?}"
            ));
        }
        if original.shape() != decoded.shape() {
            return Err(format!(
                "original slab shape {:?} and decoded slab shape {:?} differ",
                original.shape(),
                decoded.shape()
            ));
        }
        let mut slab_shape = shape.to_vec();
        slab_shape[0] = held.len();
        if held.start > held.end || held.end > shape[0] || original.shape() != slab_shape {
            return Err(format!(
                "slab shape {:?} does not hold rows {held:?} of an array of shape {shape:?}",
                original.shape()
            ));
        }
        let needed = core.start.saturating_sub(Self::HALO)..(core.end + Self::HALO).min(shape[0]);
        if core.start > core.end
            || core.end > held.end
            || held.start > needed.start
            || held.end < needed.end
        {
            return Err(format!(
                "rows {held:?} do not hold rows {core:?} with {} halo rows on each side (clamped to the array: {needed:?})",
                Self::HALO
            ));
        }
        classes_original.check("original")?;
        classes_decoded.check("decoded")?;
        let k = classes_original.count();
        if classes_decoded.count() != k {
            return Err(format!(
                "the original segmentation has {k} classes, the decoded {}",
                classes_decoded.count()
            ));
        }
        let mut partial = SegmentationPartial::empty(k);
        let geometry = Geometry {
            rows: shape[0],
            nx: shape[shape.len() - 1],
            plane: shape[1..].iter().product(),
        };
        if core.is_empty() || geometry.plane == 0 {
            return Ok(partial);
        }
        // Blocks of about a MiB per map, so that the maps of a block stay in cache.
        let block = ((1 << 20) / geometry.plane).max(1);
        for start in core.clone().step_by(block) {
            let rows = start..(start + block).min(core.end);
            partial.add_rows(
                (original, decoded),
                held.start,
                rows,
                geometry,
                (classes_original, classes_decoded),
            );
        }
        Ok(partial)
    }

    /// Adds the counts of rows `core` from slabs whose first row is `held_start` (validated by
    /// [`Self::of`]).
    fn add_rows(
        &mut self,
        (original, decoded): (&NdArray, &NdArray),
        held_start: usize,
        core: Range<usize>,
        geometry: Geometry,
        (classes_original, classes_decoded): (&Classes, &Classes),
    ) {
        let plane = geometry.plane;
        let needed =
            core.start.saturating_sub(Self::HALO)..(core.end + Self::HALO).min(geometry.rows);
        let class_maps = |slab: &NdArray, classes: &Classes| -> RowMaps {
            let local = (needed.start - held_start) * plane..(needed.end - held_start) * plane;
            let mut data = vec![0u8; local.len()];
            with_array!(slab, a => classes.classify(&c_order(a)[local], &mut data));
            RowMaps {
                first: needed.start,
                data,
            }
        };
        let a = class_maps(original, classes_original);
        let b = class_maps(decoded, classes_decoded);
        self.add_confusion(&a, &b, &core, geometry);
        let around = core.start.saturating_sub(1)..(core.end + 1).min(geometry.rows);
        let boundary_a = boundaries(&a, around.clone(), geometry);
        let boundary_b = boundaries(&b, around, geometry);
        let near_a = near(&boundary_a, geometry);
        let near_b = near(&boundary_b, geometry);
        for r in core {
            let (ba, bb) = (boundary_a.row(r, plane), boundary_b.row(r, plane));
            self.boundary_original += count(ba);
            self.boundary_decoded += count(bb);
            self.matched_decoded += matched(bb, &near_a, r, geometry);
            self.matched_original += matched(ba, &near_b, r, geometry);
        }
    }

    /// A partial with no voxels.
    fn empty(classes: usize) -> SegmentationPartial {
        SegmentationPartial {
            classes,
            confusion: vec![0; classes * classes],
            boundary_original: 0,
            boundary_decoded: 0,
            matched_original: 0,
            matched_decoded: 0,
        }
    }

    fn add_confusion(&mut self, a: &RowMaps, b: &RowMaps, core: &Range<usize>, g: Geometry) {
        let k = self.classes;
        let range = (core.start - a.first) * g.plane..(core.end - a.first) * g.plane;
        let (a, b) = (&a.data[range.clone()], &b.data[range]);
        if k == 2 {
            let both = a
                .iter()
                .zip(b)
                .map(|(&x, &y)| u64::from(x & y))
                .sum::<u64>();
            let in_a = count(a);
            let in_b = count(b);
            let n = a.len() as u64;
            self.confusion[3] += both;
            self.confusion[2] += in_a - both;
            self.confusion[1] += in_b - both;
            self.confusion[0] += n - (in_a + in_b - both);
            return;
        }
        // Four interleaved tables break the dependency between consecutive increments.
        let mut tables = vec![0u64; 4 * k * k];
        let (chunks_a, chunks_b) = (a.chunks_exact(4), b.chunks_exact(4));
        let (rest_a, rest_b) = (chunks_a.remainder(), chunks_b.remainder());
        for (x, y) in chunks_a.zip(chunks_b) {
            for lane in 0..4 {
                tables[lane * k * k + usize::from(x[lane]) * k + usize::from(y[lane])] += 1;
            }
        }
        for (&x, &y) in rest_a.iter().zip(rest_b) {
            tables[usize::from(x) * k + usize::from(y)] += 1;
        }
        for lane in tables.chunks_exact(k * k) {
            self.confusion
                .iter_mut()
                .zip(lane)
                .for_each(|(c, &t)| *c += t);
        }
    }

    /// Adds the counts of another partial (exact integer sums, so any order gives the same).
    pub fn merge(&mut self, other: &SegmentationPartial) -> Result<(), String> {
        if other.classes != self.classes {
            return Err(format!(
                "cannot merge segmentation partials of {} and {} classes",
                self.classes, other.classes
            ));
        }
        self.confusion
            .iter_mut()
            .zip(&other.confusion)
            .for_each(|(a, &b)| *a += b);
        self.boundary_original += other.boundary_original;
        self.boundary_decoded += other.boundary_decoded;
        self.matched_original += other.matched_original;
        self.matched_decoded += other.matched_decoded;
        Ok(())
    }

    /// Voxels counted.
    pub fn total(&self) -> u64 {
        self.confusion.iter().sum()
    }

    /// Voxels of each class in the original's map (`|A_c|`).
    pub fn counts_original(&self) -> Vec<u64> {
        let k = self.classes;
        (0..k)
            .map(|a| self.confusion[a * k..][..k].iter().sum())
            .collect()
    }

    /// Voxels of each class in the decoded's map (`|B_c|`).
    pub fn counts_decoded(&self) -> Vec<u64> {
        let k = self.classes;
        (0..k)
            .map(|b| (0..k).map(|a| self.confusion[a * k + b]).sum())
            .collect()
    }

    /// Per-class Dice coefficients (1 for a class absent from both maps).
    pub fn dice(&self) -> Vec<f64> {
        self.per_class(dice)
    }

    /// Per-class Jaccard indices (1 for a class absent from both maps).
    pub fn iou(&self) -> Vec<f64> {
        self.per_class(iou)
    }

    fn per_class(&self, score: fn(u64, u64, u64) -> f64) -> Vec<f64> {
        let (a, b) = (self.counts_original(), self.counts_decoded());
        (0..self.classes)
            .map(|c| score(self.confusion[c * self.classes + c], a[c], b[c]))
            .collect()
    }

    /// (intersection, |A|, |B|) of the foreground masks (class >= 1).
    fn foreground(&self) -> (u64, u64, u64) {
        let k = self.classes;
        let both = (1..k)
            .flat_map(|a| (1..k).map(move |b| (a, b)))
            .map(|(a, b)| self.confusion[a * k + b])
            .sum();
        let total = self.total();
        (
            both,
            total - self.counts_original()[0],
            total - self.counts_decoded()[0],
        )
    }

    /// Boundary precision, recall and F1 (see the module documentation for the conventions).
    pub fn boundary_scores(&self) -> (f64, f64, f64) {
        match (self.boundary_original, self.boundary_decoded) {
            (0, 0) => (1.0, 1.0, 1.0),
            (0, _) | (_, 0) => (0.0, 0.0, 0.0),
            (original, decoded) => {
                let p = self.matched_decoded as f64 / decoded as f64;
                let r = self.matched_original as f64 / original as f64;
                let f1 = if p + r > 0.0 {
                    2.0 * p * r / (p + r)
                } else {
                    0.0
                };
                (p, r, f1)
            }
        }
    }

    /// The comparison as JSON: `classes`, `thresholds_original`, `thresholds_decoded`,
    /// `threshold_shift` (decoded - original, per threshold), `fractions_original`,
    /// `fractions_decoded` (per class), `fraction_change_max` (largest absolute change over
    /// classes), `dice`, `iou` (per class), `dice_foreground`, `iou_foreground` (every class >= 1
    /// against class 0), `boundary_precision`, `boundary_recall`, `boundary_f1`. Never NaN (see
    /// the module documentation).
    pub fn json(&self, classes_original: &Classes, classes_decoded: &Classes) -> Value {
        let floats = |v: &[f64]| Value::Array(v.iter().map(|&x| metric_json(x)).collect());
        let total = self.total();
        let fractions = |counts: Vec<u64>| -> Vec<f64> {
            counts
                .into_iter()
                .map(|c| {
                    if total == 0 {
                        0.0
                    } else {
                        c as f64 / total as f64
                    }
                })
                .collect()
        };
        let (fo, fd) = (
            fractions(self.counts_original()),
            fractions(self.counts_decoded()),
        );
        let change = fo
            .iter()
            .zip(&fd)
            .map(|(o, d)| (d - o).abs())
            .fold(0.0, f64::max);
        let shift: Vec<f64> = classes_original
            .thresholds
            .iter()
            .zip(&classes_decoded.thresholds)
            .map(|(o, d)| d - o)
            .collect();
        let (both, a, b) = self.foreground();
        let (precision, recall, f1) = self.boundary_scores();
        json!({
            "classes": self.classes,
            "thresholds_original": floats(&classes_original.thresholds),
            "thresholds_decoded": floats(&classes_decoded.thresholds),
            "threshold_shift": floats(&shift),
            "fractions_original": floats(&fo),
            "fractions_decoded": floats(&fd),
            "fraction_change_max": metric_json(change),
            "dice": floats(&self.dice()),
            "iou": floats(&self.iou()),
            "dice_foreground": metric_json(dice(both, a, b)),
            "iou_foreground": metric_json(iou(both, a, b)),
            "boundary_precision": metric_json(precision),
            "boundary_recall": metric_json(recall),
            "boundary_f1": metric_json(f1),
        })
    }
}

/// `2 |A ∩ B| / (|A| + |B|)`, 1 when both are empty.
fn dice(both: u64, a: u64, b: u64) -> f64 {
    if a + b == 0 {
        1.0
    } else {
        (2 * both) as f64 / (a + b) as f64
    }
}

/// `|A ∩ B| / |A ∪ B|`, 1 when both are empty.
fn iou(both: u64, a: u64, b: u64) -> f64 {
    if a + b == 0 {
        1.0
    } else {
        both as f64 / (a + b - both) as f64
    }
}

/// Number of ones in a 0/1 map.
fn count(map: &[u8]) -> u64 {
    // Blocks short enough for a u16 accumulator (which vectorises well) not to overflow.
    map.chunks(1 << 15)
        .map(|block| u64::from(block.iter().fold(0u16, |s, &v| s + u16::from(v))))
        .sum()
}

/// Boundary map (1: a face neighbour inside the array has another class) of rows `rows`, from
/// class maps holding those rows and their neighbours inside the array.
fn boundaries(classes: &RowMaps, rows: Range<usize>, g: Geometry) -> RowMaps {
    let plane = g.plane;
    let mut data = vec![0u8; rows.len() * plane];
    for (r, out) in rows.clone().zip(data.chunks_exact_mut(plane)) {
        let cur = classes.row(r, plane);
        let differs = |out: &mut [u8], a: &[u8], b: &[u8]| {
            out.iter_mut()
                .zip(a.iter().zip(b))
                .for_each(|(o, (x, y))| *o |= u8::from(x != y));
        };
        if r > 0 {
            differs(out, cur, classes.row(r - 1, plane));
        }
        if r + 1 < g.rows {
            differs(out, cur, classes.row(r + 1, plane));
        }
        // Neighbouring lines of the plane (rank 3 only: a rank-2 row is one line).
        let nx = g.nx;
        if plane > nx {
            differs(&mut out[..plane - nx], &cur[..plane - nx], &cur[nx..]);
            differs(&mut out[nx..], &cur[nx..], &cur[..plane - nx]);
        }
        // Neighbours along the line.
        for (o, line) in out.chunks_exact_mut(nx).zip(cur.chunks_exact(nx)) {
            differs(&mut o[..nx - 1], &line[..nx - 1], &line[1..]);
            differs(&mut o[1..], &line[1..], &line[..nx - 1]);
        }
    }
    RowMaps {
        first: rows.start,
        data,
    }
}

/// The in-plane 3x3 (rank 3) or 1x3 (rank 2) dilation of every row of a 0/1 map.
fn near(map: &RowMaps, g: Geometry) -> RowMaps {
    let (plane, nx) = (g.plane, g.nx);
    let mut data = map.data.clone();
    let mut line_dilated = vec![0u8; plane];
    for (out, src) in data
        .chunks_exact_mut(plane)
        .zip(map.data.chunks_exact(plane))
    {
        // Along the line.
        line_dilated.copy_from_slice(src);
        for (o, line) in line_dilated.chunks_exact_mut(nx).zip(src.chunks_exact(nx)) {
            o[..nx - 1]
                .iter_mut()
                .zip(&line[1..])
                .for_each(|(o, &v)| *o |= v);
            o[1..]
                .iter_mut()
                .zip(&line[..nx - 1])
                .for_each(|(o, &v)| *o |= v);
        }
        // Across lines.
        out.copy_from_slice(&line_dilated);
        if plane > nx {
            out[..plane - nx]
                .iter_mut()
                .zip(&line_dilated[nx..])
                .for_each(|(o, &v)| *o |= v);
            out[nx..]
                .iter_mut()
                .zip(&line_dilated[..plane - nx])
                .for_each(|(o, &v)| *o |= v);
        }
    }
    RowMaps {
        first: map.first,
        data,
    }
}

/// Voxels of `boundary` (row `r`) with a voxel of `near` (in-plane dilated boundary of the other
/// map) in rows `r - 1..=r + 1` inside the array.
fn matched(boundary: &[u8], near: &RowMaps, r: usize, g: Geometry) -> u64 {
    let plane = g.plane;
    let own = near.row(r, plane);
    let before = if r > 0 { near.row(r - 1, plane) } else { own };
    let after = if r + 1 < g.rows {
        near.row(r + 1, plane)
    } else {
        own
    };
    let mut total = 0u64;
    for (((b, x), y), z) in boundary
        .chunks(1 << 15)
        .zip(own.chunks(1 << 15))
        .zip(before.chunks(1 << 15))
        .zip(after.chunks(1 << 15))
    {
        let block = b
            .iter()
            .zip(x)
            .zip(y)
            .zip(z)
            .fold(0u16, |s, (((&b, &x), &y), &z)| {
                s + u16::from(b & (x | y | z))
            });
        total += u64::from(block);
    }
    total
}

/// How an analysis makes its class maps: the `method`, `classes` and `value` parameters.
#[derive(Debug, Clone, PartialEq)]
enum Method {
    Otsu,
    MultiOtsu(usize),
    Value(f64),
}

/// The class maps of an analysis that segments: its method, and the thresholds it fitted on
/// the original. Every array is classified with thresholds fitted on its own data.
#[derive(Debug, Clone)]
pub struct Segmenter {
    method: Method,
    /// The original's thresholds.
    pub original: Classes,
}

impl Segmenter {
    /// The method of `config`, fitted on the original.
    pub fn prepare(config: &StageConfig, context: &mut Context) -> Result<Segmenter, String> {
        let method = match config.str("method") {
            "otsu" => Method::Otsu,
            "multiotsu" => Method::MultiOtsu(config.int("classes") as usize),
            _ => Method::Value(config.float("value")),
        };
        let histogram = match method {
            Method::Value(_) => None,
            _ => Some(context.histogram()?),
        };
        let original = thresholds(&method, histogram).map_err(|e| format!("original: {e}"))?;
        Ok(Segmenter { method, original })
    }

    /// Whether the decoded data's thresholds are fitted on its histogram.
    pub fn needs_histogram(&self) -> bool {
        !matches!(self.method, Method::Value(_))
    }

    /// The decoded data's thresholds.
    pub fn fit(&self, histogram: Option<&Histogram>) -> Result<Classes, String> {
        thresholds(&self.method, histogram).map_err(|e| format!("decoded: {e}"))
    }
}

fn thresholds(method: &Method, histogram: Option<&Histogram>) -> Result<Classes, String> {
    let thresholds = match (method, histogram) {
        (Method::Value(t), _) => vec![*t],
        (Method::Otsu, Some(h)) => vec![crate::stats::otsu::threshold(h)],
        (Method::MultiOtsu(classes), Some(h)) => multiotsu(h, *classes)?,
        (_, None) => unreachable!("fitted methods get a histogram"),
    };
    Ok(Classes { thresholds })
}

/// The `segmentation` analysis: the comparison of the class maps (see the module's docs).
#[derive(Debug, Clone)]
pub struct Segmentation(Segmenter);

impl Segmentation {
    /// The registry's constructor.
    pub fn prepare(
        config: &StageConfig,
        context: &mut Context,
    ) -> Result<Box<dyn DynAnalysis>, String> {
        Ok(Box::new(Segmentation(Segmenter::prepare(config, context)?)))
    }
}

/// Longest side, in pixels, of the slice kept for the figure: a larger slice is shrunk by
/// blocks (a pixel shows its block's highest original class, and whether any of its voxels
/// changed class), so that a point's results stay small.
pub const FIGURE_SIDE: usize = 128;

/// The slice the figure shows, or the rows of it a partial holds: a 3-D array's slice along
/// axis 0 with most voxels whose class changed (the first on ties), a 2-D array's image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChangedSlice {
    /// Index along axis 0 of a 3-D array; 0 for a 2-D array.
    pub index: usize,
    /// Voxels of the rows held whose class changed.
    pub changed: u64,
    /// Rows and columns of the whole slice.
    pub extent: (usize, usize),
    /// Side of a pixel's block of voxels.
    pub factor: usize,
    /// The first pixel row held.
    pub first: usize,
    /// Per pixel from row `first`, row-major: the original's highest class in its block.
    pub classes: Vec<u8>,
    /// Per pixel: 1 when a voxel of its block changed class.
    pub changed_map: Vec<u8>,
}

impl ChangedSlice {
    /// Rows `rows` of slice `index` of `extent`, whose class maps are `a` (original) and `b`
    /// (decoded), row-major.
    fn of(index: usize, rows: Range<usize>, extent: (usize, usize), a: &[u8], b: &[u8]) -> Self {
        let nx = extent.1;
        let factor = extent.0.max(nx).div_ceil(FIGURE_SIDE).max(1);
        let cols = nx.div_ceil(factor);
        let first = rows.start / factor;
        let pixel_rows = (rows.end - 1) / factor + 1 - first;
        let (mut classes, mut changed_map) =
            (vec![0u8; pixel_rows * cols], vec![0u8; pixel_rows * cols]);
        let mut changed = 0;
        for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
            let at = ((rows.start + i / nx) / factor - first) * cols + (i % nx) / factor;
            classes[at] = classes[at].max(x);
            changed_map[at] |= u8::from(x != y);
            changed += u64::from(x != y);
        }
        ChangedSlice {
            index,
            changed,
            extent,
            factor,
            first,
            classes,
            changed_map,
        }
    }

    /// Pixels per row.
    fn cols(&self) -> usize {
        self.extent.1.div_ceil(self.factor)
    }

    /// Adds the rows of the same slice that follow (a pixel row cut between the two is
    /// combined).
    fn append(&mut self, next: ChangedSlice) {
        let cols = self.cols();
        let held = self.classes.len() / cols;
        let overlap = (self.first + held).saturating_sub(next.first) * cols;
        for (mine, theirs) in [
            (&mut self.classes, &next.classes),
            (&mut self.changed_map, &next.changed_map),
        ] {
            let start = mine.len() - overlap;
            for (m, &t) in mine[start..].iter_mut().zip(theirs) {
                *m = (*m).max(t);
            }
            mine.extend_from_slice(&theirs[overlap.min(theirs.len())..]);
        }
        self.changed += next.changed;
    }

    /// Whether its sizes agree (bytes read from another process).
    fn check(&self) -> Result<(), String> {
        let n = self.classes.len();
        let fits = self.factor > 0 && self.cols() > 0 && n == self.changed_map.len() && {
            let cols = self.cols();
            n.is_multiple_of(cols) && self.first + n / cols <= self.extent.0.div_ceil(self.factor)
        };
        if !fits {
            return Err(format!(
                "a slice of {:?} in blocks of {} holds {n} and {} pixels from row {}",
                self.extent,
                self.factor,
                self.changed_map.len(),
                self.first
            ));
        }
        Ok(())
    }

    /// Its JSON form in the results: `index`, `stack` (whether it is a slice of a 3-D array),
    /// `changed`, and the `classes` and `changed_map` images ([`Raster::to_json`]).
    fn json(&self, stack: bool) -> Value {
        let raster = |values: &[u8]| Raster {
            rows: values.len() / self.cols(),
            cols: self.cols(),
            extent: self.extent,
            values: values.iter().map(|&v| f64::from(v)).collect(),
        };
        json!({
            "index": self.index,
            "stack": stack,
            "changed": self.changed,
            "classes": raster(&self.classes).to_json(),
            "changed_map": raster(&self.changed_map).to_json(),
        })
    }
}

/// The figure `changes` of one point's results: the slice with most voxels whose class
/// changed (a 2-D array's image), its original classes in greys and the changed voxels in the
/// difference colour. Nothing without the results' `figure`.
pub fn figures(results: &Value) -> Vec<FigureData> {
    let shown = &results["figure"];
    let (Some(classes), Some(changed_map)) = (
        Raster::from_json(&shown["classes"]),
        Raster::from_json(&shown["changed_map"]),
    ) else {
        return Vec::new();
    };
    let changed = shown["changed"].as_u64().unwrap_or(0);
    let count = results["classes"].as_u64().map_or(2, |k| k as usize);
    let what = match shown["index"].as_u64() {
        Some(i) if shown["stack"] == true => format!("slice {i}"),
        _ => "the image".to_string(),
    };
    let title = format!("{what}: {changed} voxels changed");
    let shrunk = classes.shrunk_note(
        "slice",
        "its block's highest original class, in the difference colour when any voxel of the block changed",
    );
    vec![FigureData {
        name: "changes",
        title,
        panels: vec![Panel {
            x_label: "x (voxels)".into(),
            y_label: "y (voxels)".into(),
            log_x: false,
            log_y: false,
            curves: Vec::new(),
            spans: Vec::new(),
            raster: Some(Image {
                raster: classes,
                shading: Shading::Classes(count),
                highlight: Some(changed_map),
                highlight_label: format!("class changed ({changed})"),
            }),
        }],
        notes: vec![format!(
            "The original's {count} classes from light (class 0) to dark, and in the difference colour the voxels whose class changed, on the slice along axis 0 where most changed (the first on ties) or on a 2-D input's image.{shrunk}"
        )],
    }]
}

/// A partial of [`Segmentation`]: the counts, and the slice with most changed voxels so far.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Compared {
    /// The counts.
    pub counts: SegmentationPartial,
    /// The slice the figure shows.
    pub shown: Option<ChangedSlice>,
}

impl Segmentation {
    /// The slice with most changed voxels of the rows `s.core` of a 3-D array (the first on
    /// ties), or those rows of a 2-D array's image, classified with `original` and `decoded`.
    fn changed_slice(
        s: &Slabs,
        original: &Classes,
        decoded: &Classes,
    ) -> Result<Option<ChangedSlice>, String> {
        if s.core.is_empty() || !(2..=3).contains(&s.shape.len()) {
            return Ok(None);
        }
        let plane: usize = s.shape[1..].iter().product();
        let classify = |slab: &NdArray, classes: &Classes, rows: Range<usize>| {
            let local = (rows.start - s.held.start) * plane..(rows.end - s.held.start) * plane;
            let mut out = vec![0u8; local.len()];
            with_array!(slab, a => classes.classify(&c_order(a)[local], &mut out));
            out
        };
        let maps = |rows: Range<usize>| {
            (
                classify(s.original, original, rows.clone()),
                classify(s.decoded, decoded, rows),
            )
        };
        if s.shape.len() == 2 {
            let (a, b) = maps(s.core.clone());
            let extent = (s.shape[0], s.shape[1]);
            return Ok(Some(ChangedSlice::of(0, s.core.clone(), extent, &a, &b)));
        }
        let extent = (s.shape[1], s.shape[2]);
        let mut best: Option<(u64, usize, Vec<u8>, Vec<u8>)> = None;
        for r in s.core.clone() {
            let (a, b) = maps(r..r + 1);
            let changed = a.iter().zip(&b).filter(|(x, y)| x != y).count() as u64;
            if best.as_ref().is_none_or(|best| changed > best.0) {
                best = Some((changed, r, a, b));
            }
        }
        Ok(best.map(|(_, r, a, b)| ChangedSlice::of(r, 0..extent.0, extent, &a, &b)))
    }
}

impl Analysis for Segmentation {
    type Fit = Classes;
    type Partial = Compared;

    fn halo(&self) -> usize {
        SegmentationPartial::HALO
    }

    fn needs_histogram(&self) -> bool {
        self.0.needs_histogram()
    }

    fn fit(&self, histogram: Option<&Histogram>) -> Result<Classes, String> {
        self.0.fit(histogram)
    }

    fn partial(&self, fit: &Classes, s: &Slabs) -> Result<Compared, String> {
        let counts = SegmentationPartial::of(
            s.original,
            s.decoded,
            s.held.clone(),
            s.core.clone(),
            s.shape,
            &self.0.original,
            fit,
        )?;
        Ok(Compared {
            counts,
            shown: Segmentation::changed_slice(s, &self.0.original, fit)?,
        })
    }

    fn check_partial(&self, partial: &Compared) -> Result<(), String> {
        partial.shown.as_ref().map_or(Ok(()), ChangedSlice::check)
    }

    fn merge(&self, total: &mut Compared, next: Compared) -> Result<(), String> {
        total.counts.merge(&next.counts)?;
        match (&mut total.shown, next.shown) {
            // Rows of a 2-D array's image.
            (Some(mine), Some(theirs)) if mine.index == theirs.index => mine.append(theirs),
            (Some(mine), Some(theirs)) if theirs.changed > mine.changed => *mine = theirs,
            (mine @ None, theirs) => *mine = theirs,
            _ => {}
        }
        Ok(())
    }

    fn finish(&self, fit: &Classes, total: Compared, shape: &[usize]) -> Result<Value, String> {
        let original = &self.0.original;
        let mut value = total.counts.json(original, fit);
        if let Some(shown) = &total.shown {
            value["figure"] = shown.json(shape.len() == 3);
        }
        let shift = original
            .thresholds
            .iter()
            .zip(&fit.thresholds)
            .map(|(o, d)| (d - o).abs())
            .fold(0.0, f64::max);
        value["threshold_shift_max"] = metric_json(shift);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DType, IntoNdArray};
    use ndarray::{ArrayD, IxDyn};

    fn hist(counts: &[u64]) -> Histogram {
        Histogram {
            counts: counts.to_vec(),
            centers: (0..counts.len()).map(|i| i as f64).collect(),
            dtype: DType::Uint8,
            min: 0.0,
            max: (counts.len() - 1) as f64,
        }
    }

    #[test]
    fn class_of_counts_thresholds_below() {
        let classes = Classes {
            thresholds: vec![1.0, 2.0],
        };
        assert_eq!(classes.count(), 3);
        let got: Vec<u8> = [0.5, 1.0, 1.5, 2.0, 2.5, f64::NAN]
            .iter()
            .map(|&v| classes.class_of(v))
            .collect();
        assert_eq!(got, [0, 0, 1, 1, 2, 0]);
    }

    #[test]
    fn multiotsu_separates_three_clusters_and_refuses_too_few_values() {
        let h = hist(&[5, 9, 5, 0, 0, 4, 8, 4, 0, 0, 6, 9, 6]);
        let t = multiotsu(&h, 3).unwrap();
        assert_eq!(t.len(), 2);
        assert!(
            (2.0..5.0).contains(&t[0]) && (7.0..10.0).contains(&t[1]),
            "{t:?}"
        );
        assert_eq!(multiotsu(&hist(&[3, 0, 4, 0, 5]), 3).unwrap(), [0.0, 2.0]);
        assert!(
            multiotsu(&hist(&[3, 0, 4]), 3)
                .unwrap_err()
                .contains("only 2")
        );
        assert!(multiotsu(&h, 1).is_err());
        assert_eq!(binomial(255, 4), 172_061_505);
    }

    /// scikit-image's recursion, literally: every candidate, the objective summed in its order.
    fn reference(
        search: &Search,
        from: usize,
        current: &mut Vec<usize>,
        best: &mut (Vec<usize>, f32),
    ) {
        let (n, k) = (search.n, search.thresholds);
        if current.len() < k {
            for idx in from..n - k + current.len() {
                current.push(idx);
                reference(search, idx + 1, current, best);
                current.pop();
            }
            return;
        }
        let mut sigma = search.h(0, current[0]) + search.h(current[k - 1] + 1, n - 1);
        for i in 0..k - 1 {
            sigma += search.h(current[i] + 1, current[i + 1]);
        }
        if sigma > best.1 {
            *best = (current.clone(), sigma);
        }
    }

    #[test]
    fn search_matches_the_literal_recursion_with_and_without_table() {
        // Counts with plateaus, so that ties occur.
        let counts: Vec<u64> = (0..40u64)
            .map(|i| [3, 3, 0, 7, 1, 1, 9, 2][(i * i % 8) as usize])
            .collect();
        let total: u64 = counts.iter().sum();
        let prob: Vec<f32> = counts
            .iter()
            .map(|&c| (c as f64 / total as f64) as f32)
            .collect();
        for k in 1..=4 {
            let search = Search::new(&prob, k);
            let mut want = (vec![0; k], 0f32);
            reference(&search, 0, &mut Vec::new(), &mut want);
            let mut without_table = Search::new(&prob, k);
            without_table.lut.clear();
            assert_eq!(search.run(), want.0, "{k} thresholds");
            assert_eq!(without_table.run(), want.0, "{k} thresholds, no table");
        }
    }

    #[test]
    fn partial_of_a_single_step() {
        let a = ArrayD::from_shape_vec(IxDyn(&[2, 4]), vec![0f32, 0., 1., 1., 0., 0., 1., 1.])
            .unwrap()
            .into_nd();
        let classes = Classes {
            thresholds: vec![0.5],
        };
        let p = SegmentationPartial::of(&a, &a, 0..2, 0..2, &[2, 4], &classes, &classes).unwrap();
        assert_eq!(p.confusion, [4, 0, 0, 4]);
        assert_eq!((p.boundary_original, p.matched_decoded), (4, 4));
        assert_eq!(p.boundary_scores(), (1.0, 1.0, 1.0));
    }

    /// The classes of `values` with the thresholds at `key` of a segmentation's results.
    fn classes_of(results: &Value, key: &str, values: &[f64]) -> Vec<u8> {
        let thresholds = results[key].as_array().unwrap();
        let classes = Classes {
            thresholds: thresholds.iter().map(|t| t.as_f64().unwrap()).collect(),
        };
        values.iter().map(|&v| classes.class_of(v)).collect()
    }

    /// A 3-D array: the figure shows the slice along axis 0 with most changed voxels, whatever
    /// the chunking; its changed count and highlighted pixels are the voxels whose class
    /// differs between the original's and the decoded's class maps of that slice.
    #[test]
    fn the_figure_shows_the_slice_with_most_changed_voxels() {
        use crate::analysis::testing;
        use crate::data::IntoNdArray;
        let (x, y) = testing::frames(12, 14);
        // Columns of slices 5 and 9 made bright: longer in slice 9.
        let mut y = y.to_f64();
        for (slice, rows) in [(5, 4), (9, 14)] {
            (0..rows).for_each(|r| y[[slice, r, 7]] = 1000.0);
        }
        let y = y.into_nd();
        let segmentation = testing::prepare("[[analysis]]\nkind = \"segmentation\"\n", &x);
        let chunked = testing::check_round_trip(&*segmentation, &x, &y, &[1, 6, 7]);
        let whole = testing::check_round_trip(&*segmentation, &x, &y, &[]);
        assert_eq!(chunked, whole);
        let (xs, ys) = (x.to_f64(), y.to_f64());
        let slice = |a: &ndarray::ArrayD<f64>, i: usize| -> Vec<f64> {
            a.index_axis(ndarray::Axis(0), i).iter().copied().collect()
        };
        let changed: Vec<Vec<bool>> = (0..12)
            .map(|i| {
                let a = classes_of(&whole, "thresholds_original", &slice(&xs, i));
                let b = classes_of(&whole, "thresholds_decoded", &slice(&ys, i));
                a.iter().zip(&b).map(|(p, q)| p != q).collect()
            })
            .collect();
        let counts: Vec<usize> = changed
            .iter()
            .map(|c| c.iter().filter(|&&b| b).count())
            .collect();
        let most = *counts.iter().max().unwrap();
        let index = counts.iter().position(|&c| c == most).unwrap();
        assert!(most > 0 && counts.iter().any(|&c| c < most), "{counts:?}");
        let figure = &whole["figure"];
        assert_eq!(
            (&figure["index"], &figure["changed"]),
            (&json!(index), &json!(most))
        );
        let map = Raster::from_json(&figure["changed_map"]).unwrap();
        let expected: Vec<f64> = changed[index]
            .iter()
            .map(|&c| f64::from(u8::from(c)))
            .collect();
        assert_eq!(map.values, expected);
        let classes = Raster::from_json(&figure["classes"]).unwrap();
        let original = classes_of(&whole, "thresholds_original", &slice(&xs, index));
        assert_eq!(
            classes.values,
            original.iter().map(|&c| f64::from(c)).collect::<Vec<_>>()
        );

        let drawn = figures(&whole);
        assert_eq!(
            drawn[0].title,
            format!("slice {index}: {most} voxels changed")
        );
        let image = drawn[0].panels[0].raster.as_ref().unwrap();
        assert_eq!(image.highlight.as_ref(), Some(&map));
        assert_eq!(image.shading, Shading::Classes(2));
    }

    /// A 2-D image larger than the figure: shrunk by blocks of 3 x 3 voxels, rows cut by the
    /// chunks inside a block merge into the whole image's pixels; a pixel is highlighted when a
    /// voxel of its block changed class, and shows its block's highest original class.
    #[test]
    fn a_2d_image_is_shrunk_by_blocks_across_chunks() {
        use crate::analysis::testing;
        use crate::data::IntoNdArray;
        let (ny, nx) = (300, 200);
        let value = |r: usize, c: usize| ((r * 7 + c * 3) % 11) as f32;
        let x = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[ny, nx]), |i| value(i[0], i[1]));
        // A few changed voxels: one in the block cut between chunks at row 100.
        let mut y = x.clone();
        for (r, c) in [(100, 5), (101, 5), (151, 199), (0, 0)] {
            y[[r, c]] = 10.0 - y[[r, c]];
        }
        let (x, y) = (x.into_nd(), y.into_nd());
        let segmentation = testing::prepare("[[analysis]]\nkind = \"segmentation\"\n", &x);
        let chunked = testing::check_round_trip(&*segmentation, &x, &y, &[100, 151, 152]);
        let whole = testing::check_round_trip(&*segmentation, &x, &y, &[]);
        assert_eq!(chunked, whole);
        let a = classes_of(
            &whole,
            "thresholds_original",
            x.to_f64().as_slice().unwrap(),
        );
        let b = classes_of(&whole, "thresholds_decoded", y.to_f64().as_slice().unwrap());
        let changed = a.iter().zip(&b).filter(|(p, q)| p != q).count();
        assert!(changed >= 3, "{changed}");
        let figure = &whole["figure"];
        assert_eq!(
            (&figure["index"], &figure["stack"]),
            (&json!(0), &json!(false))
        );
        assert_eq!(figure["changed"], changed);
        let map = Raster::from_json(&figure["changed_map"]).unwrap();
        let classes = Raster::from_json(&figure["classes"]).unwrap();
        assert_eq!((map.rows, map.cols, map.extent), (100, 67, (ny, nx)));
        for (p, (&m, &k)) in map.values.iter().zip(&classes.values).enumerate() {
            let (pr, pc) = (p / 67, p % 67);
            let block = (3 * pr..(3 * pr + 3).min(ny))
                .flat_map(|r| (3 * pc..(3 * pc + 3).min(nx)).map(move |c| r * nx + c));
            let (any, top) = block.fold((false, 0), |(any, top), i| {
                (any || a[i] != b[i], top.max(a[i]))
            });
            assert_eq!(
                (m, k),
                (f64::from(u8::from(any)), f64::from(top)),
                "pixel {pr}, {pc}"
            );
        }
        assert!(figures(&whole)[0].title.starts_with("the image: "));
    }

    /// Confusion counts and boundary matches across slab boundaries survive the bytes of
    /// another process: encoded, decoded and merged, the partials finish as the originals.
    #[test]
    fn encoded_partials_merge_as_the_originals() {
        let (x, y) = crate::analysis::testing::frames(12, 14);
        for method in ["method = \"otsu\"", "method = \"multiotsu\"\nclasses = 3"] {
            let segmentation = crate::analysis::testing::prepare(
                &format!("[[analysis]]\nkind = \"segmentation\"\n{method}\n"),
                &x,
            );
            crate::analysis::testing::check_round_trip(&*segmentation, &x, &y, &[1, 6, 7]);
        }
    }
}
