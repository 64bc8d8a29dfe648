//! Structural similarity (SSIM) of 2D and 3D arrays, exactly as scikit-image 0.26
//! `skimage.metrics.structural_similarity` defines it, computed slab by slab.
//!
//! Wang, Bovik, Sheikh & Simoncelli (2004), "Image quality assessment: from error visibility to
//! structural similarity", IEEE Trans. Image Process. 13(4), 600-612,
//! doi:[10.1109/TIP.2003.819861](https://doi.org/10.1109/TIP.2003.819861).
//!
//! # Formula
//! With original `x`, decoded `y`, a normalised window `w` applied separably along every axis
//! (`<.>` below), data range `R`, `C1 = (0.01 R)^2` and `C2 = (0.03 R)^2`:
//!
//! ```text
//! ux = <x>, uy = <y>
//! vx = k (<x x> - ux^2), vy = k (<y y> - uy^2), vxy = k (<x y> - ux uy)
//! S  = (2 ux uy + C1) (2 vxy + C2) / ((ux^2 + uy^2 + C1) (vx + vy + C2))
//! ```
//!
//! The reported SSIM is the mean of `S` over the interior, i.e. every voxel at least `r` (the
//! window radius) from every face, as scikit-image's `crop(S, pad).mean()` with
//! `pad = (win_size - 1) // 2`. Windows ([`SsimWindow`]):
//! - `gaussian`: `structural_similarity(x, y, data_range=R, gaussian_weights=True, sigma=1.5,
//!   use_sample_covariance=False)`; the weights of `scipy.ndimage.gaussian_filter` with
//!   `sigma = 1.5, truncate = 3.5` (11 taps, `exp(-t^2 / (2 sigma^2))` normalised to sum 1),
//!   `k = 1`;
//! - `uniform`: scikit-image's default `structural_similarity(x, y, data_range=R)`: a 7-tap box
//!   (`uniform_filter`), sample covariance `k = NP / (NP - 1)` with `NP = 7^ndim`.
//!
//! Inside the interior no window reaches the array boundary, so scikit-image's `reflect` padding
//! never enters the reported values and only "valid" convolutions over real data are computed.
//! scikit-image raises when an axis is shorter than the window (11 or 7); so does photonqa.
//!
//! # Computation
//! Four maps are filtered: `<x>`, `<y>`, `<x y>` and `<d d>` with `d = x - y`, and `S` is
//! evaluated as `A1 A2 / ((A1 + (ux - uy)^2) (A2 + k (<d d> - (ux - uy)^2)))` with
//! `A1 = 2 ux uy + C1`, `A2 = 2 vxy + C2`: the same value as scikit-image's formula in exact
//! arithmetic (`B1 - A1 = (ux - uy)^2`, `B2 - A2 = vx + vy - 2 vxy`, `k` times the variance of `d`), one
//! filtered map fewer, and accurate for the small differences of lossy compression. Where
//! `x = y` over a whole window, `<d d> = 0` and `ux = uy` bit for bit, and `S` is exactly 1.0
//! (also if `A1 A2` rounds to 0 or overflows), so identical inputs give exactly 1.0, never NaN.
//!
//! Output slices along axis 0 are processed in global groups of 4 (rows `4 g .. 4 g + 4`),
//! independent tasks on the current rayon pool. For each, the filters run separably over
//! "valid" ranges only, each symmetric pair of taps folded: along axis 0, from the `2 r + 4`
//! slab rows of the group, converted and copied chunk by chunk into a contiguous buffer (so
//! that rows a power-of-two stride apart do not evict each other from the L1 cache, and each
//! input value is read once per group); then along the last axis; then for 3D arrays along
//! axis 1 over a ring of the last `2 r + 1` rows. Inner loops work on blocks of 8 values that
//! the compiler turns into SSE2 vector code.
//!
//! # Numerics
//! The filters run in float32 on centred values: for the group `g`, `cx`, `cy` and `cd` are the
//! means of `x`, `y` and `x - y` over global row `4 g + 1` along axis 0 (at most 2 rows from
//! each output row of the group, so in every slab that holds one), rounded to float32; inputs
//! enter as `x - cx`, `y - cy` and `d - cd`, each rounded once to float32 (computed in float64
//! for dtypes float32 cannot hold exactly). Variances and covariances do not change under
//! these shifts; the offsets are added back to the means in float64, where the SSIM formula is
//! evaluated, after dividing the maps by the exact sum of the float32 weights (so rounded taps
//! cause no systematic bias). Centring removes the cancellation in `<x x> - ux^2` that makes an
//! uncentred evaluation inaccurate for data far from zero: scikit-image computes uncentred, in
//! float32 for float32 inputs (float32 `1000 + field` gives scikit-image 1.697, photonqa the
//! float64 value 0.95075246 within 3e-10) and in float64 otherwise. On the fixtures of
//! `tests/ssim_crosscheck.rs` (float32, float64, uint8, uint16, mixed dtypes, 2D and 3D, both
//! windows) the mean agrees with scikit-image within 3.4e-6 and the map minimum within 2e-5
//! (tolerances 2e-5 and 1e-4), and with a float64 evaluation on centred data within 6e-7; the
//! largest deviations from scikit-image, on float64 `1000 + 1e-3 * noise`, are scikit-image's
//! rounding (photonqa is within 2e-10 of float64 there). The same code with float64 filters
//! took 1.5 times as long on the 256^3 bench (160 ms instead of 108 ms on 2 cores: SSE2 holds
//! two float64 lanes, four float32), only about at the 20x target, for means within 2e-10 of
//! the float32 ones. Values must not differ from the offsets by more than about 1e19 (float32
//! squares overflow): a comparison divides data beyond 2^60 in magnitude by a power of two
//! first ([`super::comparison::CompareSpec::scale`]), which leaves SSIM unchanged.
//!
//! The offsets depend only on global rows, and every value is computed by the same operations
//! whatever the slab, group part, chunk and thread: partial sums merged in row order are
//! bit-identical to one call over the whole array, for any partition and thread count.
//!
//! Constant inputs give the luminance term `(2 a b + C1) / (a^2 + b^2 + C1)` (1.0 when equal).
//! `data_range` must be positive and finite: with `R = 0` scikit-image divides 0 by 0 on flat
//! regions (NaN), so photonqa returns an error instead. NaN inputs give a NaN mean and a NaN
//! minimum.

use std::ops::Range;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{Element, NdArray, c_order, typed_like};
use crate::with_array;

/// Luminance constant factor `K1` (scikit-image's default).
const K1: f64 = 0.01;
/// Contrast constant factor `K2` (scikit-image's default).
const K2: f64 = 0.03;
/// Standard deviation of the Gaussian window.
const GAUSSIAN_SIGMA: f64 = 1.5;
/// Radius of the Gaussian window: `int(truncate * sigma + 0.5)` with `truncate = 3.5`.
const GAUSSIAN_RADIUS: usize = 5;
/// Radius of the uniform window (scikit-image's default `win_size = 7`).
const UNIFORM_RADIUS: usize = 3;
/// Most taps of any window (slot count of the fixed-size tap arrays).
const MAX_TAPS: usize = 2 * GAUSSIAN_RADIUS + 1;
/// Half of a symmetric window, centre included (see [`SsimWindow::half_weights`]).
type Taps = [f32; GAUSSIAN_RADIUS + 1];
/// Values per chunk of staged input rows (see `Stage`).
const CHUNK: usize = 128;
/// Output rows along axis 0 per group sharing offsets and staged input rows. The offset row,
/// the second of the group, is at most `GROUP - 2 <= r` rows from each of them (for every
/// window), hence in every slab that holds one of them.
const GROUP: usize = 4;
/// Values per block in the inner loops (two SSE2 vectors of float32, one AVX2 vector).
const LANES: usize = 8;

/// Window of the SSIM filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SsimWindow {
    /// Gaussian, sigma 1.5, truncated at 3.5 sigma (11 taps), population covariance: Wang et
    /// al.'s window (`gaussian_weights=True, sigma=1.5, use_sample_covariance=False`).
    Gaussian,
    /// Box of 7 taps with sample covariance: scikit-image's default.
    Uniform,
}

impl SsimWindow {
    /// Every window, in a stable order (used for help texts).
    pub const ALL: [SsimWindow; 2] = [SsimWindow::Gaussian, SsimWindow::Uniform];

    /// Name in scenarios and results (`gaussian`, `uniform`).
    pub fn name(self) -> &'static str {
        match self {
            SsimWindow::Gaussian => "gaussian",
            SsimWindow::Uniform => "uniform",
        }
    }

    /// Radius `r` of the window (5 or 3): the window has `2 r + 1` taps per axis, and slabs
    /// need `r` extra rows on each side of the interior rows they report.
    pub fn radius(self) -> usize {
        match self {
            SsimWindow::Gaussian => GAUSSIAN_RADIUS,
            SsimWindow::Uniform => UNIFORM_RADIUS,
        }
    }

    /// Parses a window name; the error lists the allowed names.
    pub fn parse(name: &str) -> Result<Self, String> {
        SsimWindow::ALL
            .into_iter()
            .find(|w| w.name() == name)
            .ok_or_else(|| {
                let names: Vec<_> = SsimWindow::ALL.iter().map(|w| w.name()).collect();
                format!(
                    "unknown SSIM window '{name}' (allowed: {})",
                    names.join(", ")
                )
            })
    }

    /// Taps `w[0..=r]`: `w[t]` is the weight at offset `t - r` (and, by symmetry, `r - t`);
    /// entries past `r` are unused (zero).
    fn half_weights(self) -> Taps {
        let r = self.radius();
        let mut taps = [0.0; GAUSSIAN_RADIUS + 1];
        match self {
            SsimWindow::Gaussian => {
                // scipy.ndimage._gaussian_kernel1d: exp(-0.5 / sigma^2 * x^2), divided by its sum.
                let c = -0.5 / (GAUSSIAN_SIGMA * GAUSSIAN_SIGMA);
                let phi: Vec<f64> = (0..=2 * r)
                    .map(|t| {
                        let x = t as f64 - r as f64;
                        (c * x * x).exp()
                    })
                    .collect();
                let sum: f64 = phi.iter().sum();
                for (tap, p) in taps.iter_mut().zip(&phi) {
                    *tap = (p / sum) as f32;
                }
            }
            SsimWindow::Uniform => taps[..=r].fill((1.0 / (2 * r + 1) as f64) as f32),
        }
        taps
    }

    /// Covariance normalisation `k` for an array of `ndim` axes.
    fn cov_norm(self, ndim: usize) -> f64 {
        match self {
            SsimWindow::Gaussian => 1.0,
            SsimWindow::Uniform => {
                let np = ((2 * self.radius() + 1) as f64).powi(ndim as i32);
                np / (np - 1.0)
            }
        }
    }
}

/// Mergeable partial results over a range of interior rows along axis 0 (slices of a 3D
/// array, rows of a 2D one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SsimSums {
    /// Global index along axis 0 of the first row covered.
    pub first_row: usize,
    /// Sum of the SSIM map over the interior of each covered row, in row order.
    pub row_sums: Vec<f64>,
    /// Interior voxels per row: the product over axes 1.. of `n - 2 r`.
    pub row_count: u64,
    /// Smallest SSIM map value over the covered interior (`+inf` when no row is covered, NaN
    /// when the map holds NaN).
    pub min: f64,
}

impl SsimSums {
    /// Appends the rows of `next`, which must start where `self` ends and have the same
    /// `row_count`; otherwise returns an error and leaves `self` unchanged. Merging the parts
    /// of a volume in row order gives bit-identical results whatever the partition.
    pub fn merge(&mut self, next: &SsimSums) -> Result<(), String> {
        let end = self.first_row + self.row_sums.len();
        if next.first_row != end {
            return Err(format!(
                "cannot merge SSIM sums of rows {}.. after rows {}..{end}: not contiguous",
                next.first_row, self.first_row
            ));
        }
        if next.row_count != self.row_count {
            return Err(format!(
                "cannot merge SSIM sums with {} interior voxels per row into sums with {}",
                next.row_count, self.row_count
            ));
        }
        self.row_sums.extend_from_slice(&next.row_sums);
        self.min = nan_min(self.min, next.min);
        Ok(())
    }

    /// Mean SSIM: the row sums added in row order, divided by the number of interior voxels
    /// (NaN when no row is covered).
    pub fn mean(&self) -> f64 {
        let total: f64 = self.row_sums.iter().sum();
        total / (self.row_sums.len() as f64 * self.row_count as f64)
    }

    /// Mean SSIM of each covered row (for 3D arrays: per slice along axis 0).
    pub fn per_slice(&self) -> Vec<f64> {
        self.row_sums
            .iter()
            .map(|s| s / self.row_count as f64)
            .collect()
    }
}

/// SSIM partial sums of the interior rows `core` (global indices along axis 0, a sub-range of
/// `r..n0 - r` with `r` = [`SsimWindow::radius`]), from slabs of the original and the decoded
/// array that hold global rows `core.start - r .. core.end + r` (and all of the other axes).
///
/// `shape` is the shape of the full array (rank 2 or 3; every axis at least `2 r + 1` long, or
/// an error as scikit-image raises). `data_range` is `R` of the constants (positive, finite).
/// The slabs may have different dtypes: they are then compared as float64 (after a float64
/// copy of both). Rows are processed in parallel on the current rayon pool; results do not
/// depend on the thread count.
pub fn ssim_rows(
    original: &NdArray,
    decoded: &NdArray,
    core: Range<usize>,
    shape: &[usize],
    window: SsimWindow,
    data_range: f64,
) -> Result<SsimSums, String> {
    let kernel = Kernel::detected();
    ssim_rows_with(kernel, original, decoded, core, shape, window, data_range)
}

/// The build of the SSIM kernel that runs (see [`group_rows_avx2`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// The target's baseline (SSE2 on x86-64).
    Baseline,
    /// AVX2; made only by [`Kernel::detected`], on a CPU that has it.
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    /// The fastest build this CPU runs.
    fn detected() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Kernel::Avx2;
        }
        Kernel::Baseline
    }
}

/// [`ssim_rows`] with the given kernel build.
fn ssim_rows_with(
    kernel: Kernel,
    original: &NdArray,
    decoded: &NdArray,
    core: Range<usize>,
    shape: &[usize],
    window: SsimWindow,
    data_range: f64,
) -> Result<SsimSums, String> {
    check_shape(shape, window)?;
    let r = window.radius();
    original
        .check_same_shape(decoded)
        .map_err(|e| format!("SSIM: {e}"))?;
    if core.start < r || core.end > shape[0] - r || core.start > core.end {
        return Err(format!(
            "SSIM: interior rows {core:?} are not within {r}..{} for axis 0 of length {} and the \
             {} window",
            shape[0] - r,
            shape[0],
            window.name()
        ));
    }
    let mut slab_shape = shape.to_vec();
    slab_shape[0] = core.len() + 2 * r;
    if original.shape() != slab_shape {
        return Err(format!(
            "SSIM: slabs for interior rows {core:?} must have shape {slab_shape:?} (rows {}..{}), \
             got {:?}",
            core.start - r,
            core.end + r,
            original.shape()
        ));
    }
    if !(data_range.is_finite() && data_range > 0.0) {
        return Err(format!(
            "SSIM needs a positive finite data_range, got {data_range} (a constant original has \
             range 0: give data_range explicitly)"
        ));
    }
    if original.dtype() != decoded.dtype() {
        return ssim_rows_with(
            kernel,
            &NdArray::Float64(original.to_f64()),
            &NdArray::Float64(decoded.to_f64()),
            core,
            shape,
            window,
            data_range,
        );
    }
    let geometry = Geometry {
        rows: if shape.len() == 3 { shape[1] } else { 1 },
        len: shape[shape.len() - 1],
        mid_axis: shape.len() == 3,
    };
    let weights = window.half_weights();
    // Sum of the float32 taps along one axis (1 up to rounding), exactly.
    let axis_gain = weights[r] as f64 + 2.0 * weights[..r].iter().map(|&w| w as f64).sum::<f64>();
    let consts = Consts {
        c1: (K1 * data_range).powi(2),
        c2: (K2 * data_range).powi(2),
        cov_norm: window.cov_norm(shape.len()),
        unit_gain: axis_gain.powi(shape.len() as i32).recip(),
    };
    let rows = with_array!(original, x => {
        let y = typed_like(x, decoded).expect("dtypes checked above");
        let (x, y) = (c_order(x), c_order(y));
        match window {
            SsimWindow::Gaussian => {
                interior_rows::<_, GAUSSIAN_RADIUS>(kernel, &x, &y, core.clone(), &geometry, weights, &consts)
            }
            SsimWindow::Uniform => {
                interior_rows::<_, UNIFORM_RADIUS>(kernel, &x, &y, core.clone(), &geometry, weights, &consts)
            }
        }
    });
    Ok(SsimSums {
        first_row: core.start,
        row_sums: rows.iter().map(|&(sum, _)| sum).collect(),
        row_count: shape[1..].iter().map(|&n| (n - 2 * r) as u64).product(),
        min: rows
            .iter()
            .map(|&(_, min)| min)
            .fold(f64::INFINITY, nan_min),
    })
}

/// The smaller of `a` and `b`, NaN when either is (`f64::min` would drop the NaN: a NaN in the
/// SSIM map must not leave its minimum looking fine).
fn nan_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// SSIM of two whole arrays in memory (tests, small inputs): [`ssim_rows`] over every interior
/// row. `mean()` of the result is scikit-image's `structural_similarity` value (up to rounding,
/// see the module documentation).
pub fn ssim(
    original: &NdArray,
    decoded: &NdArray,
    window: SsimWindow,
    data_range: f64,
) -> Result<SsimSums, String> {
    let shape = original.shape();
    check_shape(shape, window)?;
    let r = window.radius();
    ssim_rows(
        original,
        decoded,
        r..shape[0] - r,
        shape,
        window,
        data_range,
    )
}

/// Checks that arrays of `shape` have an SSIM with `window`: rank 2 or 3, and every axis at
/// least `2 r + 1` long (scikit-image raises `win_size exceeds image extent` otherwise). The
/// error says which condition fails.
pub fn check_shape(shape: &[usize], window: SsimWindow) -> Result<(), String> {
    if !(2..=3).contains(&shape.len()) {
        return Err(format!("SSIM needs a 2D or 3D array, got shape {shape:?}"));
    }
    let win = 2 * window.radius() + 1;
    if shape.iter().any(|&n| n < win) {
        return Err(format!(
            "SSIM: the {} window ({win} values per axis) exceeds the array extent {shape:?}: \
             every axis needs at least {win} values",
            window.name()
        ));
    }
    Ok(())
}

/// Layout of one slice (all axes but axis 0) of a C-order array.
struct Geometry {
    /// Rows per slice: the length of axis 1 for 3D arrays, 1 for 2D arrays.
    rows: usize,
    /// Length of the last axis.
    len: usize,
    /// True for 3D arrays: the rows of a slice are filtered along axis 1 too.
    mid_axis: bool,
}

impl Geometry {
    fn slice_len(&self) -> usize {
        self.rows * self.len
    }
}

/// Constants of the SSIM formula.
struct Consts {
    c1: f64,
    c2: f64,
    cov_norm: f64,
    /// 1 / the sum of the float32 window weights: the filtered maps times this are weighted
    /// means with weights that sum to 1 exactly (no systematic bias from rounded taps).
    unit_gain: f64,
}

/// The four filtered maps of one row: `<x>, <y>, <d d>, <x y>` (`x`, `y` centred, `d = x - y`).
type Moments = [Vec<f32>; 4];

fn moments(len: usize) -> Moments {
    std::array::from_fn(|_| vec![0.0; len])
}

/// Buffers of one output row along axis 0, reused from one group to the next.
struct Output {
    /// Filtered along axis 0, one row of a slice (full length).
    along0: Moments,
    /// Filtered along axes 0 and last, the last `2 r + 1` rows of a slice (3D), ring-indexed
    /// by row modulo `2 r + 1`; one entry for 2D arrays.
    ring: Vec<Moments>,
    /// Filtered along every axis, one interior row.
    filtered: Moments,
    /// SSIM map of one interior row.
    map: Vec<f64>,
    /// Sum of the SSIM map over the interior of the output row so far.
    sum: f64,
    /// Minimum of the SSIM map over the interior of the output row so far.
    min: f64,
}

impl Output {
    fn new(geometry: &Geometry, r: usize) -> Self {
        let inner = geometry.len - 2 * r;
        let ring_len = if geometry.mid_axis { 2 * r + 1 } else { 1 };
        Output {
            along0: moments(geometry.len),
            ring: (0..ring_len).map(|_| moments(inner)).collect(),
            filtered: moments(inner),
            map: vec![0.0; inner],
            sum: 0.0,
            min: f64::INFINITY,
        }
    }
}

/// Per-task buffers: the staged input rows of a group and its outputs.
struct Scratch {
    stage: Stage,
    outputs: Vec<Output>,
}

impl Scratch {
    fn new(geometry: &Geometry, r: usize) -> Self {
        Scratch {
            stage: Stage::new(2 * r + GROUP),
            outputs: (0..GROUP).map(|_| Output::new(geometry, r)).collect(),
        }
    }
}

/// A centring offset, as float32 and as the same value in float64.
#[derive(Clone, Copy)]
struct Offset {
    narrow: f32,
    wide: f64,
}

impl Offset {
    /// `value` rounded to float32.
    fn new(value: f64) -> Self {
        let narrow = value as f32;
        Offset {
            narrow,
            wide: narrow as f64,
        }
    }
}

/// The centring offsets of a group of output slices: of `x`, `y` and `d = x - y`.
#[derive(Clone, Copy)]
struct Offsets {
    x: Offset,
    y: Offset,
    d: Offset,
}

/// An element that enters the float32 filters as `(v - c)` rounded to float32, and the
/// difference of two elements as `(v - w - c)`.
trait Centred: Element {
    fn centred(self, c: Offset) -> f32;
    fn minus(self, other: Self, c: Offset) -> f32;
}

/// Types float32 holds exactly: float32 subtractions (`v - c` correctly rounded).
macro_rules! centred_narrow {
    ($($t:ty),*) => {$(
        impl Centred for $t {
            #[inline(always)]
            fn centred(self, c: Offset) -> f32 {
                self as f32 - c.narrow
            }
            #[inline(always)]
            fn minus(self, other: Self, c: Offset) -> f32 {
                (self as f32 - other as f32) - c.narrow
            }
        }
    )*};
}

/// Other types: the difference in float64, then rounded to float32.
macro_rules! centred_wide {
    ($($t:ty),*) => {$(
        impl Centred for $t {
            #[inline(always)]
            fn centred(self, c: Offset) -> f32 {
                (self as f64 - c.wide) as f32
            }
            #[inline(always)]
            fn minus(self, other: Self, c: Offset) -> f32 {
                (self as f64 - other as f64 - c.wide) as f32
            }
        }
    )*};
}

centred_narrow!(u8, i8, u16, i16, f32);
centred_wide!(u32, i32, u64, i64, f64);

/// Sum and minimum of the SSIM map over the interior of each output row `core` (global
/// indices along axis 0) from slabs holding rows `core.start - R .. core.end + R`.
fn interior_rows<T: Centred, const R: usize>(
    kernel: Kernel,
    x: &[T],
    y: &[T],
    core: Range<usize>,
    geometry: &Geometry,
    weights: Taps,
    consts: &Consts,
) -> Vec<(f64, f64)> {
    if core.is_empty() {
        return Vec::new();
    }
    // Global groups of output rows, cut to `core`.
    let groups: Vec<Range<usize>> = (core.start / GROUP..=(core.end - 1) / GROUP)
        .map(|g| (g * GROUP).max(core.start)..((g + 1) * GROUP).min(core.end))
        .collect();
    // Enough work per task to amortise rayon's scheduling for short 2D rows.
    let min_len = (1 << 14) / (GROUP * geometry.slice_len()) + 1;
    let parts: Vec<Vec<(f64, f64)>> = groups
        .into_par_iter()
        .with_min_len(min_len)
        .map_init(
            || Scratch::new(geometry, R),
            |scratch, rows| {
                let first = core.start - R; // global index of slab row 0
                match kernel {
                    // SAFETY: `Kernel::Avx2` is made only by `Kernel::detected`, on a CPU with AVX2.
                    #[cfg(target_arch = "x86_64")]
                    Kernel::Avx2 => unsafe {
                        group_rows_avx2::<T, R>(
                            x, y, rows, first, geometry, weights, consts, scratch,
                        )
                    },
                    Kernel::Baseline => {
                        group_rows::<T, R>(x, y, rows, first, geometry, weights, consts, scratch)
                    }
                }
            },
        )
        .collect();
    parts.concat()
}

/// [`group_rows`] compiled for AVX2, chosen at run time when the CPU has it: the blocks of
/// [`LANES`] float32 (and the float64 map) take one 256-bit instruction instead of two SSE2
/// ones, about a fifth less CPU time for `photonqa metrics --only ssim`. The same operations in
/// the same order: Rust never fuses a multiply and an add (no FMA without an explicit call), so
/// the results are bit for bit the baseline's (tested). A portable binary keeps the x86-64
/// baseline elsewhere; the standard library's detection is all the dispatch needs, hence no
/// crate for it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn group_rows_avx2<T: Centred, const R: usize>(
    x: &[T],
    y: &[T],
    rows: Range<usize>,
    first: usize,
    geometry: &Geometry,
    w: Taps,
    consts: &Consts,
    scratch: &mut Scratch,
) -> Vec<(f64, f64)> {
    group_rows::<T, R>(x, y, rows, first, geometry, w, consts, scratch)
}

/// Sum and minimum of the SSIM map over the interior of output rows `rows` (global indices,
/// within one group) from slabs whose row 0 is global row `first`.
///
/// The rows of a group share their centring offsets, from global row `GROUP * g + 1` of
/// group `g` (at most `GROUP - 2 <= R` rows from each of them, so in every slab that holds
/// one), and the staged input rows. Every output row is computed by the same operations
/// whichever other rows of its group are computed with it.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn group_rows<T: Centred, const R: usize>(
    x: &[T],
    y: &[T],
    rows: Range<usize>,
    first: usize,
    geometry: &Geometry,
    w: Taps,
    consts: &Consts,
    scratch: &mut Scratch,
) -> Vec<(f64, f64)> {
    let slice = geometry.slice_len();
    let centre = (rows.start / GROUP * GROUP + 1 - first) * slice;
    let [cx, cy, cd] = means(&x[centre..centre + slice], &y[centre..centre + slice]);
    let offsets = Offsets {
        x: Offset::new(cx),
        y: Offset::new(cy),
        d: Offset::new(cd),
    };
    let count = rows.len();
    let taps = 2 * R + count;
    // Slab row of tap 0 of the first output row.
    let top = rows.start - R - first;
    let outputs = &mut scratch.outputs[..count];
    for output in outputs.iter_mut() {
        output.sum = 0.0;
        output.min = f64::INFINITY;
    }
    for row in 0..geometry.rows {
        let base = top * slice + row * geometry.len;
        for (j0, n) in chunks(geometry.len) {
            scratch.stage.fill(x, y, base, slice, taps, j0, n, offsets);
            for (o, output) in outputs.iter_mut().enumerate() {
                let pass = &mut Axis0::<R> {
                    stage: &scratch.stage,
                    first: o,
                    w,
                    j0,
                    out: &mut output.along0,
                };
                run_blocks(n, pass);
            }
        }
        for output in outputs.iter_mut() {
            output_row::<R>(output, row, geometry, w, offsets, consts);
        }
    }
    outputs.iter().map(|o| (o.sum, o.min)).collect()
}

/// Filters one row filtered along axis 0 along the other axes, and adds its SSIM map (3D: once
/// the ring holds the `2 R + 1` rows of an interior row) to the output's sum and minimum.
#[inline(always)]
fn output_row<const R: usize>(
    output: &mut Output,
    row: usize,
    geometry: &Geometry,
    w: Taps,
    offsets: Offsets,
    consts: &Consts,
) {
    let taps = 2 * R + 1;
    let slot = if geometry.mid_axis { row % taps } else { 0 };
    for (src, dst) in output.along0.iter().zip(output.ring[slot].iter_mut()) {
        run_blocks(dst.len(), &mut LastAxis::<R> { src, w, out: dst });
    }
    let filtered = if geometry.mid_axis {
        if row < 2 * R {
            return;
        }
        // Ring rows row - 2R ..= row make interior row `row - R`.
        let first = row + 1;
        for (m, dst) in output.filtered.iter_mut().enumerate() {
            let rows: [&[f32]; MAX_TAPS] =
                std::array::from_fn(|t| &output.ring[(first + t.min(2 * R)) % taps][m][..]);
            run_blocks(dst.len(), &mut MidAxis::<R> { rows, w, out: dst });
        }
        &output.filtered
    } else {
        &output.ring[0]
    };
    ssim_map(filtered, offsets, consts, &mut output.map);
    let (sum, min) = sum_and_min(&output.map);
    output.sum += sum;
    output.min = nan_min(output.min, min);
}

/// Chunks `(start, length)` of at most [`CHUNK`] values covering `0..len`: of one length, a
/// multiple of [`LANES`] when `len` allows, the last one overlapping the one before it when
/// needed (kernels compute every value the same way in any chunk).
fn chunks(len: usize) -> impl Iterator<Item = (usize, usize)> {
    let count = len.div_ceil(CHUNK);
    let size = len.div_ceil(count).next_multiple_of(LANES).min(len);
    (0..count).map(move |i| ((i * size).min(len - size), size))
}

/// A filter pass over one row, computed in blocks of values.
trait Blocks {
    /// Computes output values `j .. j + L`. Every value is computed with the same operations
    /// whatever `L` and `j`, so results do not depend on the blocking.
    fn block<const L: usize>(&mut self, j: usize);
}

/// Runs `pass` over the output values `0..len`: in blocks of [`LANES`] (the last block overlaps
/// the one before it when `len` is not a multiple), or value by value when `len` is shorter
/// than one block.
#[inline(always)]
fn run_blocks(len: usize, pass: &mut impl Blocks) {
    if len < LANES {
        (0..len).for_each(|j| pass.block::<1>(j));
        return;
    }
    let mut j = 0;
    while j < len {
        let start = j.min(len - LANES);
        pass.block::<LANES>(start);
        j = start + LANES;
    }
}

/// Rows of the `2 R + g` slab rows along axis 0 that make the `g` output rows of a group,
/// converted to float32 for one chunk of at most [`CHUNK`] values: `x - cx`, `y - cy` and
/// `x - y - cd`, slab row `t` at `t * CHUNK`. A contiguous copy, read by every output row of
/// the group, so that the rows do not fight for the same L1 cache sets (slab rows are a slice
/// apart, often a power of two) and each input value is loaded once per group.
struct Stage {
    x: Vec<f32>,
    y: Vec<f32>,
    d: Vec<f32>,
}

impl Stage {
    fn new(taps: usize) -> Self {
        Stage {
            x: vec![0.0; taps * CHUNK],
            y: vec![0.0; taps * CHUNK],
            d: vec![0.0; taps * CHUNK],
        }
    }

    /// Stages values `j0 .. j0 + n` (`n <= CHUNK`) of the rows starting at `base + t * stride`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn fill<T: Centred>(
        &mut self,
        x: &[T],
        y: &[T],
        base: usize,
        stride: usize,
        taps: usize,
        j0: usize,
        n: usize,
        c: Offsets,
    ) {
        for t in 0..taps {
            let at = base + t * stride + j0;
            let (xs, ys) = (&x[at..at + n], &y[at..at + n]);
            let staged = self.x[t * CHUNK..][..n]
                .iter_mut()
                .zip(&mut self.y[t * CHUNK..][..n])
                .zip(&mut self.d[t * CHUNK..][..n]);
            for (((sx, sy), sd), (&a, &b)) in staged.zip(xs.iter().zip(ys)) {
                *sx = a.centred(c.x);
                *sy = b.centred(c.y);
                *sd = a.minus(b, c.d);
            }
        }
    }
}

/// Along axis 0, from staged rows `first ..= first + 2R`: values `j0 + j` of the four moment
/// rows.
struct Axis0<'a, const R: usize> {
    stage: &'a Stage,
    first: usize,
    w: Taps,
    j0: usize,
    out: &'a mut Moments,
}

impl<const R: usize> Blocks for Axis0<'_, R> {
    #[inline(always)]
    fn block<const L: usize>(&mut self, j: usize) {
        let w = self.w;
        let first = self.first;
        let row = |v: &[f32], t: usize| -> [f32; L] {
            let at = (first + t) * CHUNK + j;
            v[at..at + L].try_into().expect("L values")
        };
        let (x, y, d) = (&self.stage.x[..], &self.stage.y[..], &self.stage.d[..]);
        let (xc, yc, dc) = (row(x, R), row(y, R), row(d, R));
        let wc = w[R];
        let mut sx: [f32; L] = std::array::from_fn(|l| wc * xc[l]);
        let mut sy: [f32; L] = std::array::from_fn(|l| wc * yc[l]);
        let mut sdd: [f32; L] = std::array::from_fn(|l| wc * (dc[l] * dc[l]));
        let mut sxy: [f32; L] = std::array::from_fn(|l| wc * (xc[l] * yc[l]));
        for (t, &wt) in w[..R].iter().enumerate() {
            let (xa, xb) = (row(x, t), row(x, 2 * R - t));
            let (ya, yb) = (row(y, t), row(y, 2 * R - t));
            let (da, db) = (row(d, t), row(d, 2 * R - t));
            for l in 0..L {
                sx[l] += wt * (xa[l] + xb[l]);
                sy[l] += wt * (ya[l] + yb[l]);
                sdd[l] += wt * (da[l] * da[l] + db[l] * db[l]);
                sxy[l] += wt * (xa[l] * ya[l] + xb[l] * yb[l]);
            }
        }
        let j = self.j0 + j;
        for (dst, src) in self.out.iter_mut().zip([sx, sy, sdd, sxy]) {
            dst[j..j + L].copy_from_slice(&src);
        }
    }
}

/// Along the last (contiguous) axis, valid part: `out[j] = sum_t w(t) src[j + t]`.
struct LastAxis<'a, const R: usize> {
    src: &'a [f32],
    w: Taps,
    out: &'a mut [f32],
}

impl<const R: usize> Blocks for LastAxis<'_, R> {
    #[inline(always)]
    fn block<const L: usize>(&mut self, j: usize) {
        let (src, w) = (self.src, self.w);
        let c = &src[j + R..j + R + L];
        let mut acc: [f32; L] = std::array::from_fn(|l| w[R] * c[l]);
        for t in 0..R {
            let a = &src[j + t..j + t + L];
            let b = &src[j + 2 * R - t..j + 2 * R - t + L];
            for l in 0..L {
                acc[l] += w[t] * (a[l] + b[l]);
            }
        }
        self.out[j..j + L].copy_from_slice(&acc);
    }
}

/// Along axis 1 of a 3D array: `out[j] = sum_t w(t) rows[t][j]` over rows `t = 0 ..= 2R`.
struct MidAxis<'a, const R: usize> {
    rows: [&'a [f32]; MAX_TAPS],
    w: Taps,
    out: &'a mut [f32],
}

impl<const R: usize> Blocks for MidAxis<'_, R> {
    #[inline(always)]
    fn block<const L: usize>(&mut self, j: usize) {
        let (rows, w) = (&self.rows, self.w);
        let c = &rows[R][j..j + L];
        let mut acc: [f32; L] = std::array::from_fn(|l| w[R] * c[l]);
        for t in 0..R {
            let a = &rows[t][j..j + L];
            let b = &rows[2 * R - t][j..j + L];
            for l in 0..L {
                acc[l] += w[t] * (a[l] + b[l]);
            }
        }
        self.out[j..j + L].copy_from_slice(&acc);
    }
}

/// The SSIM map of one interior row from its filtered moments of `x - cx`, `y - cy` and
/// `d - cd`, evaluated in float64 as
/// `S = A1 A2 / ((A1 + (ux - uy)^2) (A2 + k (<(d - cd)^2> - (ux - uy - cd)^2)))`, which is
/// scikit-image's `A1 A2 / (B1 B2)`: `B1 - A1 = (ux - uy)^2` and `B2 - A2 = vx + vy - 2 vxy`,
/// `k` times the variance of `d = x - y`; exactly 1 where `d = 0` over the whole window.
#[inline(always)]
fn ssim_map(m: &Moments, c: Offsets, k: &Consts, out: &mut [f64]) {
    let (cx, cy, cd) = (c.x.wide, c.y.wide, c.d.wide);
    let [mx, my, mdd, mxy] = m;
    let rows = mx.iter().zip(my).zip(mdd).zip(mxy);
    for (s, (((&mx, &my), &mdd), &mxy)) in out.iter_mut().zip(rows) {
        let g = k.unit_gain;
        let (mx, my, mdd, mxy) = (mx as f64 * g, my as f64 * g, mdd as f64 * g, mxy as f64 * g);
        let (ux, uy) = (cx + mx, cy + my);
        let du = (cx - cy) + (mx - my);
        let a1 = 2.0 * ux * uy + k.c1;
        let a2 = 2.0 * k.cov_norm * (mxy - mx * my) + k.c2;
        let b1 = a1 + du * du;
        let dd = du - cd;
        let b2 = a2 + k.cov_norm * (mdd - dd * dd);
        let ratio = (a1 * a2) / (b1 * b2);
        let same = (mdd == 0.0) & (du == 0.0);
        *s = if same { 1.0 } else { ratio };
    }
}

/// Sum (four interleaved partial sums, then the rest in order) and minimum of `values`; both
/// NaN when a value is NaN.
#[inline(always)]
fn sum_and_min(values: &[f64]) -> (f64, f64) {
    let mut sums = [0.0; 4];
    let mut mins = [f64::INFINITY; 4];
    let blocks = values.chunks_exact(4);
    let rest = blocks.remainder();
    for block in blocks {
        for l in 0..4 {
            sums[l] += block[l];
            mins[l] = if block[l] < mins[l] {
                block[l]
            } else {
                mins[l]
            };
        }
    }
    let mut sum = (sums[0] + sums[1]) + (sums[2] + sums[3]);
    let mut min = mins.into_iter().fold(f64::INFINITY, f64::min);
    for &v in rest {
        sum += v;
        min = min.min(v);
    }
    // The comparisons above skip NaN; the sum does not.
    if sum.is_nan() {
        min = f64::NAN;
    }
    (sum, min)
}

/// Means of `x`, `y` and `x - y` in float64 (four interleaved partial sums each): the
/// centring offsets. Equal `x` and `y` give equal means and a zero mean difference.
fn means<T: Element>(x: &[T], y: &[T]) -> [f64; 3] {
    let mut sums = [[0.0; 4]; 3];
    let (xs, ys) = (x.chunks_exact(4), y.chunks_exact(4));
    let rest = xs.remainder().iter().zip(ys.remainder());
    for (a, b) in xs.zip(ys) {
        for l in 0..4 {
            let (a, b) = (a[l].to_f64(), b[l].to_f64());
            sums[0][l] += a;
            sums[1][l] += b;
            sums[2][l] += a - b;
        }
    }
    let mut totals = sums.map(|s| (s[0] + s[1]) + (s[2] + s[3]));
    for (a, b) in rest {
        let (a, b) = (a.to_f64(), b.to_f64());
        totals[0] += a;
        totals[1] += b;
        totals[2] += a - b;
    }
    totals.map(|t| t / x.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::IntoNdArray;
    use ndarray::{ArrayD, IxDyn};

    /// Deterministic pseudo-random values in [0, 1) (SplitMix64).
    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect()
    }

    fn f64_array(shape: &[usize], values: Vec<f64>) -> ArrayD<f64> {
        ArrayD::from_shape_vec(IxDyn(shape), values).unwrap()
    }

    /// A smooth pattern plus noise, and a noisier copy.
    fn pair(shape: &[usize], seed: u64) -> (ArrayD<f64>, ArrayD<f64>) {
        let n: usize = shape.iter().product();
        let a = noise(n, seed);
        let b = noise(n, seed + 1);
        let x: Vec<f64> = (0..n)
            .map(|i| ((i % 7) as f64 * 0.3).sin() * 0.4 + 0.5 + 0.1 * a[i])
            .collect();
        let y: Vec<f64> = x
            .iter()
            .zip(&b)
            .map(|(v, e)| v + 0.08 * (e - 0.5))
            .collect();
        (f64_array(shape, x), f64_array(shape, y))
    }

    /// Full-precision weights `w[0..2r+1]`.
    fn weights_f64(window: SsimWindow) -> Vec<f64> {
        let r = window.radius() as i64;
        let raw: Vec<f64> = (-r..=r)
            .map(|t| match window {
                SsimWindow::Gaussian => {
                    (-0.5 * (t * t) as f64 / (GAUSSIAN_SIGMA * GAUSSIAN_SIGMA)).exp()
                }
                SsimWindow::Uniform => 1.0,
            })
            .collect();
        let sum: f64 = raw.iter().sum();
        raw.iter().map(|v| v / sum).collect()
    }

    /// The SSIM map over the interior by direct (non-separable) float64 window sums.
    fn naive_map(x: &ArrayD<f64>, y: &ArrayD<f64>, window: SsimWindow, range: f64) -> ArrayD<f64> {
        let r = window.radius();
        let w = weights_f64(window);
        let shape = x.shape().to_vec();
        let inner: Vec<usize> = shape.iter().map(|n| n - 2 * r).collect();
        let k = window.cov_norm(shape.len());
        let (c1, c2) = ((K1 * range).powi(2), (K2 * range).powi(2));
        ArrayD::from_shape_fn(IxDyn(&inner), |ix| {
            let mut m = [0.0f64; 5];
            let taps = 2 * r + 1;
            let total = taps.pow(shape.len() as u32);
            for flat in 0..total {
                let mut rem = flat;
                let mut weight = 1.0;
                let mut at = Vec::with_capacity(shape.len());
                for d in (0..shape.len()).rev() {
                    let t = rem % taps;
                    rem /= taps;
                    weight *= w[t];
                    at.push(ix[d] + t);
                }
                at.reverse();
                let (a, b) = (x[IxDyn(&at)], y[IxDyn(&at)]);
                for (acc, v) in m.iter_mut().zip([a, b, a * a, b * b, a * b]) {
                    *acc += weight * v;
                }
            }
            let [ux, uy, uxx, uyy, uxy] = m;
            let (vx, vy, vxy) = (
                k * (uxx - ux * ux),
                k * (uyy - uy * uy),
                k * (uxy - ux * uy),
            );
            ((2.0 * ux * uy + c1) * (2.0 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        })
    }

    fn check_against_naive(shape: &[usize], window: SsimWindow, seed: u64) {
        let (x, y) = pair(shape, seed);
        let map = naive_map(&x, &y, window, 1.0);
        let got = ssim(
            &x.mapv(|v| v as f32).into_nd(),
            &y.mapv(|v| v as f32).into_nd(),
            window,
            1.0,
        )
        .unwrap();
        // The reference runs on the float32-rounded inputs too.
        let (xr, yr) = (x.mapv(|v| v as f32 as f64), y.mapv(|v| v as f32 as f64));
        let map_r = naive_map(&xr, &yr, window, 1.0);
        assert!(map.iter().zip(&map_r).all(|(a, b)| (a - b).abs() < 1e-5));
        let mean = map_r.mean().unwrap();
        let min = map_r.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(
            (got.mean() - mean).abs() < 1e-6,
            "{shape:?} {window:?}: {} vs {mean}",
            got.mean()
        );
        assert!(
            (got.min - min).abs() < 1e-5,
            "{shape:?} {window:?}: min {} vs {min}",
            got.min
        );
        let per_slice: Vec<f64> = map_r.outer_iter().map(|s| s.mean().unwrap()).collect();
        assert_eq!(got.per_slice().len(), per_slice.len());
        for (g, e) in got.per_slice().iter().zip(&per_slice) {
            assert!(
                (g - e).abs() < 1e-5,
                "{shape:?} {window:?}: slice {g} vs {e}"
            );
        }
    }

    #[test]
    fn matches_direct_window_sums() {
        for window in SsimWindow::ALL {
            let win = 2 * window.radius() + 1;
            check_against_naive(&[win + 3, win + 9], window, 1);
            check_against_naive(&[win, win], window, 2);
            check_against_naive(&[win + 2, win, win + 4], window, 3);
            // Rows of several chunks of staged values, the last one overlapping.
            check_against_naive(&[win + 1, 2 * CHUNK + 37], window, 4);
            check_against_naive(&[win, win + 1, CHUNK + 21], window, 5);
        }
    }

    #[test]
    fn weights_are_normalised_gaussian_taps() {
        let w = SsimWindow::Gaussian.half_weights();
        let exact = weights_f64(SsimWindow::Gaussian);
        for (a, b) in w.iter().zip(&exact) {
            assert_eq!(*a, *b as f32);
        }
        assert!((exact.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        let u = SsimWindow::Uniform.half_weights();
        assert_eq!(u, [1.0 / 7.0, 1.0 / 7.0, 1.0 / 7.0, 1.0 / 7.0, 0.0, 0.0]);
        assert_eq!(SsimWindow::Uniform.cov_norm(2), 49.0 / 48.0);
        assert_eq!(SsimWindow::Uniform.cov_norm(3), 343.0 / 342.0);
    }

    #[test]
    fn identical_and_constant_inputs() {
        let (x, _) = pair(&[14, 12, 13], 7);
        let x = x.mapv(|v| (v * 1000.0) as u16).into_nd();
        for window in SsimWindow::ALL {
            let same = ssim(&x, &x, window, 1000.0).unwrap();
            assert_eq!(same.mean(), 1.0);
            assert_eq!(same.min, 1.0);
            let a = ArrayD::from_elem(IxDyn(&[12, 12]), 0.25f64).into_nd();
            let b = ArrayD::from_elem(IxDyn(&[12, 12]), 0.5f64).into_nd();
            assert_eq!(ssim(&a, &a, window, 1.0).unwrap().mean(), 1.0);
            // C1 and C2 underflow to 0: A1 A2 / (B1 B2) would be 0 / 0 on flat regions.
            assert_eq!(ssim(&a, &a, window, 1e-200).unwrap().mean(), 1.0);
            assert_eq!(ssim(&x, &x, window, 1e-200).unwrap().min, 1.0);
            let lum = (2.0 * 0.125 + 1e-4) / (0.0625 + 0.25 + 1e-4);
            assert!((ssim(&a, &b, window, 1.0).unwrap().mean() - lum).abs() < 1e-15);
        }
    }

    #[test]
    fn slab_partitions_merge_bit_identically() {
        let (x, y) = pair(&[31, 12, 17], 11);
        let (x, y) = (x.into_nd(), y.into_nd());
        for window in SsimWindow::ALL {
            let r = window.radius();
            let whole = ssim(&x, &y, window, 1.0).unwrap();
            for cuts in [
                vec![r, 31 - r],
                vec![r, r + 1, 20, 31 - r],
                vec![r, 14, 15, 31 - r],
            ] {
                let mut merged: Option<SsimSums> = None;
                for part in cuts.windows(2) {
                    let rows = part[0] - r..part[1] + r;
                    let slab = |a: &NdArray| match a {
                        NdArray::Float64(a) => a
                            .slice_axis(ndarray::Axis(0), (rows.start..rows.end).into())
                            .to_owned()
                            .into_nd(),
                        _ => unreachable!(),
                    };
                    let sums = ssim_rows(
                        &slab(&x),
                        &slab(&y),
                        part[0]..part[1],
                        &[31, 12, 17],
                        window,
                        1.0,
                    )
                    .unwrap();
                    match &mut merged {
                        None => merged = Some(sums),
                        Some(m) => m.merge(&sums).unwrap(),
                    }
                }
                let merged = merged.unwrap();
                assert_eq!(merged, whole, "{window:?} {cuts:?}");
                assert_eq!(merged.mean().to_bits(), whole.mean().to_bits());
            }
        }
    }

    #[test]
    fn the_detected_kernel_equals_the_baseline_bit_for_bit() {
        let kernel = Kernel::detected();
        println!("detected kernel: {kernel:?}");
        for (shape, seed) in [
            (vec![31, 12, 17], 3),
            (vec![20, 13, 45], 4),
            (vec![40, 133], 5),
        ] {
            let (x, y) = pair(&shape, seed);
            let as_u16 = |a: &ArrayD<f64>| a.mapv(|v| (v * 4000.0) as u16).into_nd();
            let as_f32 = |a: &ArrayD<f64>| a.mapv(|v| v as f32).into_nd();
            let typed = [
                (as_u16(&x), as_u16(&y)),
                (as_f32(&x), as_f32(&y)),
                (x.into_nd(), y.into_nd()),
            ];
            for ((x, y), window) in typed.iter().flat_map(|p| SsimWindow::ALL.map(|w| (p, w))) {
                let r = window.radius();
                let core = r..shape[0] - r;
                let sums = |k| ssim_rows_with(k, x, y, core.clone(), &shape, window, 1.0).unwrap();
                let bits = |s: SsimSums| {
                    let sums = s.row_sums.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    (sums, s.min.to_bits())
                };
                assert_eq!(
                    bits(sums(kernel)),
                    bits(sums(Kernel::Baseline)),
                    "{shape:?} {:?} {window:?}",
                    x.dtype()
                );
            }
        }
    }

    #[test]
    fn mixed_dtypes_compare_as_float64() {
        let (x, y) = pair(&[12, 15], 5);
        let x32 = x.mapv(|v| v as f32);
        let a = ssim(
            &x32.clone().into_nd(),
            &y.clone().into_nd(),
            SsimWindow::Gaussian,
            1.0,
        )
        .unwrap();
        let b = ssim(
            &x32.mapv(|v| v as f64).into_nd(),
            &y.into_nd(),
            SsimWindow::Gaussian,
            1.0,
        )
        .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn errors() {
        let small = ArrayD::<f32>::zeros(IxDyn(&[10, 20])).into_nd();
        let err = ssim(&small, &small, SsimWindow::Gaussian, 1.0).unwrap_err();
        assert!(err.contains("at least 11"), "{err}");
        assert!(ssim(&small, &small, SsimWindow::Uniform, 1.0).is_ok());
        let flat = ArrayD::<f32>::zeros(IxDyn(&[12])).into_nd();
        assert!(
            ssim(&flat, &flat, SsimWindow::Uniform, 1.0)
                .unwrap_err()
                .contains("2D or 3D")
        );
        for range in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = ssim(&small, &small, SsimWindow::Uniform, range).unwrap_err();
            assert!(err.contains("data_range"), "{err}");
        }
        let other = ArrayD::<f32>::zeros(IxDyn(&[10, 21])).into_nd();
        assert!(
            ssim(&small, &other, SsimWindow::Uniform, 1.0)
                .unwrap_err()
                .contains("shape")
        );
        let err = ssim_rows(&small, &small, 3..5, &[10, 20], SsimWindow::Uniform, 1.0).unwrap_err();
        assert!(err.contains("must have shape [8, 20]"), "{err}");
        let err = ssim_rows(&small, &small, 2..6, &[10, 20], SsimWindow::Uniform, 1.0).unwrap_err();
        assert!(err.contains("not within 3..7"), "{err}");
    }

    #[test]
    fn parse_and_merge() {
        assert_eq!(SsimWindow::parse("uniform"), Ok(SsimWindow::Uniform));
        let err = SsimWindow::parse("box").unwrap_err();
        assert!(err.contains("gaussian, uniform"), "{err}");
        assert_eq!(
            serde_json::to_string(&SsimWindow::Gaussian).unwrap(),
            "\"gaussian\""
        );
        let mut a = SsimSums {
            first_row: 5,
            row_sums: vec![1.0, 2.0],
            row_count: 4,
            min: 0.1,
        };
        let b = SsimSums {
            first_row: 7,
            row_sums: vec![3.0],
            row_count: 4,
            min: 0.05,
        };
        let before = a.clone();
        assert!(
            a.merge(&SsimSums {
                first_row: 8,
                ..b.clone()
            })
            .unwrap_err()
            .contains("not contiguous")
        );
        assert!(
            a.merge(&SsimSums {
                row_count: 3,
                ..b.clone()
            })
            .is_err()
        );
        assert_eq!(a, before);
        a.merge(&b).unwrap();
        assert_eq!(a.row_sums, vec![1.0, 2.0, 3.0]);
        assert_eq!(a.min, 0.05);
        assert_eq!(a.mean(), 6.0 / 12.0);
        assert_eq!(a.per_slice(), vec![0.25, 0.5, 0.75]);
    }
}
