//! What a comparison of an original with its decoded version computes, and its mergeable
//! partial results over ranges of rows along axis 0.

use std::borrow::Cow;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::distortion::{PointSums, reproduces};
use super::error_stats::{Autocorrelation, ErrorEdges, ErrorHistogram, ErrorMoments, errors_into};
use super::ks::{ValueBins, ValueCounts};
use super::registry;
use super::spectral::{PlaneSpectra, RingSums};
use super::ssim::{self, SsimSums, SsimWindow, ssim_rows};
use super::sums::{CoMoments, Neumaier};
use crate::data::{DType, Element, NdArray, c_order};
use crate::metrics::values::metric_json;
use crate::pipeline::{Promise, PromiseCheck};
use crate::with_array;

/// The settings of a comparison: which metrics, over what.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareSpec {
    /// Shape of the whole array.
    pub shape: Vec<usize>,
    /// Data range `R` of PSNR, NRMSE, SSIM and the error histogram.
    pub data_range: f64,
    /// Floor of the denominator of the relative error.
    pub max_rel_floor: f64,
    /// The power of two every value is divided by before the metrics see it: 1 for data
    /// whose magnitude (the largest of `|min|`, `|max|` and `R`) is within `[2^-30, 2^60]` (or
    /// 0), else `2^(e - 59)` with `2^e <= magnitude < 2^(e + 1)`, which brings the magnitude
    /// to `[2^59, 2^60)`. Squares of values near `f32::MAX` or `1e300` overflow (SSIM filters
    /// in float32, everything else in float64), and `inf - inf` is NaN; squares of small
    /// values (SSIM's constants for data below about `1e-17` in float32, squared errors of
    /// float64 data near `1e-160`) underflow to subnormals or 0, so a lossy point would read
    /// SSIM or PSNR wrong; scaled values do neither. Dividing by a power of two is exact
    /// (but for values below `2^-1022 scale`, which become subnormal), so metrics computed on
    /// the scaled values are those of the data, up to the factor `scale^unit` of dimensioned
    /// ones (mse, rmse, errors, power spectra), put back at the end; and data within
    /// `[2^-30, 2^60]` in magnitude are not touched at all. Data below `2^-1015` (the last
    /// orders of float64, where `2^(e - 59)` is not a float64) are not scaled either.
    pub scale: f64,
    /// Whether the sums of the point metrics (mse, psnr, pearson, ...) are computed; without
    /// them a partial counts the values and the non-finite decoded ones only (see
    /// [`PointSums::counts_of`]), which every comparison needs.
    pub point_metrics: bool,
    /// SSIM window, when SSIM is computed.
    pub ssim: Option<SsimWindow>,
    /// Whether the error histogram and moments are computed.
    pub error_histogram: bool,
    /// Whether the lag-1 autocorrelation of the error is computed.
    pub autocorrelation: bool,
    /// Bins of the value histograms of the KS test, when it is computed.
    pub ks: Option<ValueBins>,
    /// Whether the ring sums of the FRC and the power spectrum are computed.
    pub spectral: bool,
    /// Whether the 3-D FSC is computed (its plane transforms chunk by chunk, the rest from
    /// them all at the end); never for other ranks.
    pub fsc: bool,
}

/// What the selected metrics need to know about the data.
#[derive(Debug, Clone, Copy)]
pub struct DataFacts<'a> {
    /// Shape of the whole array.
    pub shape: &'a [usize],
    /// Smallest and largest value of the original.
    pub range: (f64, f64),
    /// Data range `R` (given, or max - min of the original).
    pub data_range: f64,
    /// Dtypes of the original and the decoded array.
    pub dtypes: (DType, DType),
}

/// Why `metric` cannot be computed on an array of shape `shape` with data range `data_range`
/// (when known) and SSIM window `ssim_window`, or `None`.
pub fn unmet(
    metric: &str,
    shape: &[usize],
    data_range: Option<f64>,
    ssim_window: SsimWindow,
) -> Option<String> {
    let zero_range = data_range.is_some_and(|r| r <= 0.0);
    match metric {
        "ssim" => ssim::check_shape(shape, ssim_window)
            .err()
            .or_else(|| zero_range.then(|| "the data range is 0 (a constant original)".into())),
        "error_histogram" => zero_range.then(|| "the data range is 0 (a constant original)".into()),
        "fsc" if shape.len() != 3 || shape.iter().any(|&n| n < 2) => Some(format!(
            "needs a 3-D array with every axis at least 2, not {shape:?}"
        )),
        "frc" | "power_spectrum" => {
            let plane = &shape[shape.len() - 2..];
            plane.iter().any(|&n| n < 2).then(|| {
                format!("needs planes of at least 2x2 in the last two axes, not {plane:?}")
            })
        }
        _ => None,
    }
}

/// Largest magnitude of the values a comparison computes on unscaled (see
/// [`CompareSpec::scale`]): SSIM's float32 filters square differences of values, and
/// `(2^61)^2` is far below `f32::MAX` (about `2^128`); float64 fourth powers of the error
/// moments over 2^40 values stay below `2^1023` too.
const UNSCALED_MAGNITUDE: f64 = (1u64 << 60) as f64;

/// Smallest magnitude of the values a comparison computes on unscaled: SSIM's float32
/// constant `(0.01 R)^2` and squared errors a million times smaller than the data stay normal
/// floats (above `2^-126`) for data of magnitude `2^-30` (about `1e-9`) and more.
const UNSCALED_SMALLEST: f64 = 1.0 / (1u64 << 30) as f64;

/// [`CompareSpec::scale`] for data of largest magnitude `magnitude` (finite).
fn scale_for(magnitude: f64) -> f64 {
    let unscaled = UNSCALED_SMALLEST..=UNSCALED_MAGNITUDE;
    if magnitude == 0.0 || unscaled.contains(&magnitude) || !magnitude.is_normal() {
        return 1.0;
    }
    // A normal number: its exponent field is e + 1023.
    let e = ((magnitude.to_bits() >> 52) & 0x7ff) as i32 - 1023;
    match 2f64.powi(e - 59) {
        0.0 => 1.0,
        scale => scale,
    }
}

impl CompareSpec {
    /// The spec computing `names` (registry names the data meets, see [`unmet`]). An error
    /// when the data range is not finite (`max - min` of float64 data beyond `f64::MAX`).
    pub fn new(
        names: &[&str],
        facts: DataFacts,
        max_rel_floor: f64,
        ssim_window: SsimWindow,
    ) -> Result<CompareSpec, String> {
        let (lo, hi) = facts.range;
        if !facts.data_range.is_finite() {
            return Err(format!(
                "the data range {} is beyond float64 (the original spans {lo:e} to {hi:e})",
                facts.data_range
            ));
        }
        let scale = scale_for(lo.abs().max(hi.abs()).max(facts.data_range));
        // Scaled values are float64 copies (see `CompareSpec::partial`).
        let dtypes = if scale == 1.0 {
            facts.dtypes
        } else {
            (DType::Float64, DType::Float64)
        };
        let has = |name: &str| names.contains(&name);
        Ok(CompareSpec {
            shape: facts.shape.to_vec(),
            data_range: facts.data_range,
            max_rel_floor,
            scale,
            point_metrics: names.iter().any(|name| registry::find(name).is_some()),
            ssim: has("ssim").then_some(ssim_window),
            error_histogram: has("error_histogram"),
            autocorrelation: has("error_autocorrelation"),
            ks: has("ks_test").then(|| ValueBins::new(lo / scale, hi / scale, dtypes.0, dtypes.1)),
            spectral: has("frc") || has("power_spectrum"),
            fsc: has("fsc") && facts.shape.len() == 3,
        })
    }

    /// `array` divided by [`CompareSpec::scale`] (a float64 copy; the array itself when the
    /// scale is 1).
    fn scaled<'a>(&self, array: &'a NdArray) -> Cow<'a, NdArray> {
        if self.scale == 1.0 {
            Cow::Borrowed(array)
        } else {
            let mut values = array.to_f64();
            values.mapv_inplace(|v| v / self.scale);
            Cow::Owned(NdArray::Float64(values))
        }
    }
}

/// Values per block of [`CompareSpec::partial`]'s metrics: 2^16, so that a block's two copies
/// (float32 data: 512 KiB) and its float64 errors (512 KiB) stay in a core's L2 cache (1 MiB on
/// the EPYC these runs were measured on) while every metric reads them.
const BLOCK_VALUES: usize = 1 << 16;

/// The verification of one promised bound over a working point's chunks (see
/// [`crate::metrics::comparison::BoundSums`] for what is measured).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoundCheck {
    /// Id of the promising stage.
    pub stage: String,
    /// `abs`, `rel`, `psnr`, `l2` or `rate`.
    pub kind: String,
    /// The promised value (error, relative error, dB, L2 norm, bits per value).
    pub promised: f64,
    /// Worst value observed: largest error (`rel`: largest error over the chunk's range), L2
    /// norm or bits per value; smallest PSNR. `"inf"` as in [`metric_json`].
    pub observed_worst: Value,
    /// How many `counted` broke the promise.
    pub violations: u64,
    /// What `violations` and `checked` count: `values`, `chunks` or `planes`.
    pub counted: String,
    /// How many values, chunks or planes were checked.
    pub checked: u64,
    /// True when nothing broke the promise.
    pub bound_ok: bool,
}

impl BoundCheck {
    /// `ok` when every check holds, else `VIOLATED: ` and each violation as
    /// `sz3 abs 0.001, 12 values` (several joined by `; `); `None` without checks.
    pub fn summary(checks: &[BoundCheck]) -> Option<String> {
        if checks.is_empty() {
            return None;
        }
        let broken: Vec<String> = checks
            .iter()
            .filter(|c| !c.bound_ok)
            .map(|c| {
                format!(
                    "{} {} {}, {} {}",
                    c.stage, c.kind, c.promised, c.violations, c.counted
                )
            })
            .collect();
        Some(if broken.is_empty() {
            "ok".into()
        } else {
            format!("VIOLATED: {}", broken.join("; "))
        })
    }
}

/// Partial results over consecutive rows; merge partials in row order. Serializable (postcard
/// keeps every float bit for bit) so that partials computed apart merge later.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    /// Point-metric sums over the rows.
    pub point: PointSums,
    /// SSIM sums over the rows of the SSIM interior among them (`None`: none, or no SSIM).
    pub ssim: Option<SsimSums>,
    /// Moments of the error.
    pub moments: Option<ErrorMoments>,
    /// Lag-1 pairs of the error along each axis.
    pub autocorrelation: Option<Autocorrelation>,
    /// Ring sums of the FRC and power spectrum of a 3-D array's planes.
    pub rings: Option<RingSums>,
    /// The rows themselves, for the FRC of a 2-D image (which needs the whole image).
    pub gathered: Option<Gathered>,
    /// The 2-D transforms of the planes of the rows, the FSC's first step.
    pub spectra: Option<PlaneSpectra>,
    /// Histogram counts: exact integers, so they may be merged in any order and early (the
    /// runner folds them per group of chunks to bound memory).
    pub counts: Counts,
    /// The measurements of the bounds the chain's stages promise, one per promise in chain
    /// order (empty when no stage promises one).
    pub bounds: Vec<BoundSums>,
}

/// The exact-count parts of a partial.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Error histogram.
    pub errors: Option<ErrorHistogram>,
    /// Value histograms of the KS test.
    pub values: Option<ValueCounts>,
}

impl Counts {
    /// Adds the counts of another part.
    pub fn merge(&mut self, other: Counts) -> Result<(), String> {
        merge_option(&mut self.errors, other.errors, |a, b| {
            a.merge(&b);
            Ok(())
        })?;
        merge_option(&mut self.values, other.values, |a, b| a.merge(&b))
    }
}

/// Rows of the original and the decoded array, gathered in row order until they are whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gathered {
    /// Rows of the original.
    pub original: Vec<NdArray>,
    /// Rows of the decoded array.
    pub decoded: Vec<NdArray>,
}

impl Gathered {
    fn merge(&mut self, next: Gathered) -> Result<(), String> {
        self.original.extend(next.original);
        self.decoded.extend(next.decoded);
        Ok(())
    }

    /// The whole arrays.
    fn whole(&self) -> Result<(NdArray, NdArray), String> {
        Ok((
            NdArray::concatenate(&self.original)?,
            NdArray::concatenate(&self.decoded)?,
        ))
    }
}

/// `mine += theirs` where either may be absent.
fn merge_option<T>(
    mine: &mut Option<T>,
    theirs: Option<T>,
    merge: impl FnOnce(&mut T, T) -> Result<(), String>,
) -> Result<(), String> {
    match (mine.as_mut(), theirs) {
        (Some(a), Some(b)) => merge(a, b),
        (None, Some(b)) => {
            *mine = Some(b);
            Ok(())
        }
        (_, None) => Ok(()),
    }
}

impl Partial {
    /// Adds the partial of the rows that follow (moved in: the gathered rows of the FSC are
    /// never copied).
    pub fn merge(&mut self, next: Partial) -> Result<(), String> {
        self.point.merge(&next.point);
        merge_option(&mut self.ssim, next.ssim, |a, b| a.merge(&b))?;
        merge_option(&mut self.moments, next.moments, |a, b| {
            a.merge(&b);
            Ok(())
        })?;
        merge_option(&mut self.autocorrelation, next.autocorrelation, |a, b| {
            a.merge(&b);
            Ok(())
        })?;
        merge_option(&mut self.rings, next.rings, |a, b| a.merge(&b))?;
        merge_option(&mut self.gathered, next.gathered, Gathered::merge)?;
        merge_option(&mut self.spectra, next.spectra, PlaneSpectra::merge)?;
        merge_bounds(&mut self.bounds, &next.bounds)?;
        self.counts.merge(next.counts)
    }

    /// Moves the counts of `other` into this partial's.
    pub fn absorb_counts(&mut self, other: &mut Partial) -> Result<(), String> {
        self.counts.merge(std::mem::take(&mut other.counts))
    }
}

/// `mine += theirs`, promise by promise (both from the same chain, so in the same order).
pub fn merge_bounds(mine: &mut Vec<BoundSums>, theirs: &[BoundSums]) -> Result<(), String> {
    if mine.is_empty() {
        mine.extend_from_slice(theirs);
        return Ok(());
    }
    if theirs.is_empty() {
        return Ok(());
    }
    if mine.len() != theirs.len() {
        return Err(format!(
            "cannot merge the checks of {} promised bounds with {}",
            mine.len(),
            theirs.len()
        ));
    }
    for (a, b) in mine.iter_mut().zip(theirs) {
        a.merge(b)?;
    }
    Ok(())
}

/// The measurement of one promised bound ([`Promise`]) over some chunks: the worst observed
/// value and how many values (or chunks, or planes) broke it. Maxima, minima and counts, so
/// merging is exact in any order.
///
/// Measured on the promising stage's own input `x` and decoded output `y`, in float64, with
/// no tolerance: the error of a value is `|y - x|` (0 where `y == x`, also for equal
/// infinities and for two NaNs; infinite where exactly one side is NaN or infinite).
/// - `abs`: worst `max |y - x|`; a value violates when `|y - x| > bound`.
/// - `rel`: worst `max |y - x| / (max x - min x)` over each chunk's own range (the codec sees
///   one chunk, so its range is the chunk's); a value violates when
///   `|y - x| > rel * (max x - min x)`.
/// - `psnr`: worst is the lowest `10 log10(peak^2 / mse)` of a unit (a chunk, or a 2-D plane of
///   the last two axes); a unit violates when it is below the promise. `peak` is the
///   promise's, or the unit's `max x - min x`.
/// - `l2`: worst is the largest `sqrt(sum (y - x)^2)` of a chunk; a chunk violates above it.
/// - `rate`: worst is the largest `8 bytes / values` of a chunk's encoded stage output; a
///   chunk violates above the ceiling its stage documents for its shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoundSums {
    /// Id of the promising stage (a registered stage's id or alias).
    pub stage: &'static str,
    /// The promise (of the first chunk measured; only a rate's ceiling varies by shape).
    pub promise: Promise,
    /// Worst observed value, in the promise's terms (see above).
    pub worst: f64,
    /// How many values (abs, rel) or units (psnr, l2, rate) broke the promise.
    pub violations: u64,
    /// How many values or units were checked.
    pub checked: u64,
}

/// [`BoundSums`] as its `Serialize` writes it, with the stage id owned.
#[derive(Deserialize)]
struct StoredBoundSums {
    stage: String,
    promise: Promise,
    worst: f64,
    violations: u64,
    checked: u64,
}

/// Reads the stage id back as the registry's own `&'static str` (a stage id or alias); an
/// unknown id is an error.
impl<'de> Deserialize<'de> for BoundSums {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = StoredBoundSums::deserialize(deserializer)?;
        let stage = crate::pipeline::registry::STAGES
            .iter()
            .flat_map(|s| std::iter::once(&s.id).chain(s.aliases))
            .find(|&&known| known == stored.stage)
            .copied()
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "unknown stage '{}' in a bound check",
                    stored.stage
                ))
            })?;
        Ok(BoundSums {
            stage,
            promise: stored.promise,
            worst: stored.worst,
            violations: stored.violations,
            checked: stored.checked,
        })
    }
}

/// The error `|y - x|` as a bound check sees it.
fn bound_error(x: f64, y: f64) -> f64 {
    if reproduces(x, y) {
        0.0
    } else {
        let e = (y - x).abs();
        if e.is_nan() { f64::INFINITY } else { e }
    }
}

/// Smallest and largest value, ignoring NaNs (`(inf, -inf)` when there are none).
fn finite_range(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

impl BoundSums {
    /// The measurement of `check`, a promise of a stage of a round trip, on its chunk.
    pub fn of_check(check: &PromiseCheck) -> Result<BoundSums, String> {
        BoundSums::of(
            check.stage,
            check.promise,
            &check.input,
            &check.output,
            check.encoded_bytes,
        )
    }

    /// The measurement of `promise` on one chunk: the stage `stage` encoded `input` into
    /// `encoded_bytes` bytes and decoded `output`.
    pub fn of(
        stage: &'static str,
        promise: Promise,
        input: &NdArray,
        output: &NdArray,
        encoded_bytes: usize,
    ) -> Result<BoundSums, String> {
        input.check_same_shape(output)?;
        let (x, y) = (as_f64(input), as_f64(output));
        let n = x.len();
        let errors = || x.iter().zip(&y).map(|(&a, &b)| bound_error(a, b));
        let max_error = || errors().fold(0.0, f64::max);
        let ratio = |a: f64, b: f64| {
            if a == 0.0 {
                0.0
            } else if b > 0.0 {
                a / b
            } else {
                f64::INFINITY
            }
        };
        let (worst, violations, checked) = match promise {
            Promise::AbsError(bound) => (
                max_error(),
                errors().filter(|&e| e > bound).count() as u64,
                n as u64,
            ),
            Promise::RelError(rel) => {
                let (lo, hi) = finite_range(&x);
                let range = if n == 0 { 0.0 } else { hi - lo };
                let bound = rel * range;
                (
                    ratio(max_error(), range),
                    errors().filter(|&e| e > bound).count() as u64,
                    n as u64,
                )
            }
            Promise::Psnr {
                db,
                peak,
                per_plane,
            } => {
                let shape = input.shape();
                let unit = if per_plane && shape.len() >= 2 {
                    shape[shape.len() - 2..].iter().product::<usize>().max(1)
                } else {
                    n.max(1)
                };
                let mut worst = f64::INFINITY;
                let mut violations = 0;
                let mut checked = 0;
                for (xs, ys) in x.chunks(unit).zip(y.chunks(unit)) {
                    let mut sum = Neumaier::default();
                    for (&a, &b) in xs.iter().zip(ys) {
                        let e = bound_error(a, b);
                        sum.add(e * e);
                    }
                    let mse = sum.total() / xs.len() as f64;
                    let peak = peak.unwrap_or_else(|| {
                        let (lo, hi) = finite_range(xs);
                        hi - lo
                    });
                    let psnr = if mse == 0.0 {
                        f64::INFINITY
                    } else if peak > 0.0 {
                        10.0 * (peak * peak / mse).log10()
                    } else {
                        f64::NEG_INFINITY
                    };
                    worst = worst.min(psnr);
                    violations += u64::from(psnr < db || psnr.is_nan());
                    checked += 1;
                }
                (worst, violations, checked)
            }
            Promise::PointwiseRel(rel) => {
                let relative = |(&a, &b): (&f64, &f64)| ratio(bound_error(a, b), a.abs());
                (
                    x.iter().zip(&y).map(relative).fold(0.0, f64::max),
                    x.iter().zip(&y).filter(|p| relative(*p) > rel).count() as u64,
                    n as u64,
                )
            }
            Promise::L2Norm(bound) => {
                let mut sum = Neumaier::default();
                for e in errors() {
                    sum.add(e * e);
                }
                let norm = sum.total().sqrt();
                (norm, u64::from(norm > bound || norm.is_nan()), 1)
            }
            Promise::BitsPerValue { bits, .. } => {
                let observed = 8.0 * encoded_bytes as f64 / n.max(1) as f64;
                (observed, u64::from(observed > bits), 1)
            }
        };
        Ok(BoundSums {
            stage,
            promise,
            worst,
            violations,
            checked,
        })
    }

    /// Adds the measurement of more chunks of the same promise.
    pub fn merge(&mut self, other: &BoundSums) -> Result<(), String> {
        if self.stage != other.stage || self.promise.kind() != other.promise.kind() {
            return Err(format!(
                "cannot merge the check of {} {} with {} {}",
                self.stage,
                self.promise.kind(),
                other.stage,
                other.promise.kind()
            ));
        }
        self.worst = if self.promise.upper() {
            self.worst.max(other.worst)
        } else {
            self.worst.min(other.worst)
        };
        self.violations += other.violations;
        self.checked += other.checked;
        Ok(())
    }

    /// What values are counted: `values`, `chunks` or `planes`.
    pub fn counted(&self) -> &'static str {
        match self.promise {
            Promise::AbsError(_) | Promise::RelError(_) | Promise::PointwiseRel(_) => "values",
            Promise::Psnr {
                per_plane: true, ..
            } => "planes",
            _ => "chunks",
        }
    }

    /// The verdict for the results.
    pub fn check(&self) -> BoundCheck {
        BoundCheck {
            stage: self.stage.to_string(),
            kind: self.promise.kind().to_string(),
            promised: self.promise.value(),
            observed_worst: metric_json(self.worst),
            violations: self.violations,
            counted: self.counted().to_string(),
            checked: self.checked,
            bound_ok: self.violations == 0,
        }
    }
}

/// The values of an array as float64 in C order.
fn as_f64(a: &NdArray) -> Vec<f64> {
    with_array!(a, x => c_order(x).iter().map(|v| v.to_f64()).collect())
}

impl CompareSpec {
    /// Rows beyond a range that its partial needs on each side: the SSIM window radius, one
    /// row before it for the autocorrelation along axis 0.
    pub fn halo(&self) -> usize {
        self.ssim
            .map_or(0, SsimWindow::radius)
            .max(usize::from(self.autocorrelation))
    }

    /// The partial of rows `core` (global indices along axis 0), from slabs of the original
    /// and the decoded array that hold rows `held` (`core` extended by up to [`Self::halo`]
    /// rows on each side, clamped to the array).
    pub fn partial(
        &self,
        original: &NdArray,
        decoded: &NdArray,
        held: Range<usize>,
        core: Range<usize>,
    ) -> Result<Partial, String> {
        let (original, decoded) = (self.scaled(original), self.scaled(decoded));
        let (original, decoded) = (original.as_ref(), decoded.as_ref());
        let range = self.data_range / self.scale;
        // Rows of the slabs by global index.
        let local = |rows: &Range<usize>| rows.start - held.start..rows.end - held.start;
        let rows_of = |wanted: &Range<usize>| -> (Cow<'_, NdArray>, Cow<'_, NdArray>) {
            if *wanted == held {
                (Cow::Borrowed(original), Cow::Borrowed(decoded))
            } else {
                let rows = local(wanted);
                (
                    Cow::Owned(original.slice_rows(rows.clone())),
                    Cow::Owned(decoded.slice_rows(rows)),
                )
            }
        };
        let mut partial = Partial::default();
        if let Some(window) = self.ssim {
            let r = window.radius();
            let interior = core.start.max(r)..core.end.min(self.shape[0].saturating_sub(r));
            if !interior.is_empty() {
                let (x, y) = rows_of(&(interior.start - r..interior.end + r));
                partial.ssim = Some(ssim_rows(&x, &y, interior, &self.shape, window, range)?);
            }
        }
        let rank = self.shape.len();
        if self.fsc {
            partial.spectra = Some(PlaneSpectra::of_planes(original, decoded, local(&core))?);
        }
        if self.spectral && rank == 2 {
            let (x, y) = rows_of(&core);
            partial.gathered = Some(Gathered {
                original: vec![x.into_owned()],
                decoded: vec![y.into_owned()],
            });
        }
        self.add_blocks(original, decoded, local(&core), &mut partial)?;
        Ok(partial)
    }

    /// Adds the point sums, error statistics, value counts and ring sums of rows `core` of the
    /// slabs `original` and `decoded` (scaled) to `partial`, a block of [`BLOCK_VALUES`] at a
    /// time: each block is copied once from the slabs and then read by every metric from the
    /// cache, where whole chunks would be read from memory once per metric. The rows before
    /// `core` (at least one when the autocorrelation pairs it) give the error of the row
    /// preceding the first block.
    fn add_blocks(
        &self,
        original: &NdArray,
        decoded: &NdArray,
        core: Range<usize>,
        partial: &mut Partial,
    ) -> Result<(), String> {
        let range = self.data_range / self.scale;
        let floor = self.max_rel_floor / self.scale;
        let row = self.shape[1..].iter().product::<usize>();
        let block_rows = (BLOCK_VALUES / row.max(1)).max(1);
        let errors_wanted = self.error_histogram || self.autocorrelation;
        let edges = self.error_histogram.then(|| ErrorEdges::new(range));
        if self.error_histogram {
            partial.moments = Some(ErrorMoments::default());
            partial.counts.errors = Some(ErrorHistogram::default());
        }
        let mut autocorrelation = Autocorrelation {
            axes: vec![CoMoments::default(); self.shape.len()],
        };
        let mut values = self.ks.map(ValueCounts::new);
        let mut rings = (self.spectral && self.shape.len() == 3)
            .then(|| RingSums::new([self.shape[1], self.shape[2]]));
        // The errors of the row before the current block, which the autocorrelation pairs with
        // its first row along axis 0.
        let mut previous = Vec::new();
        if self.autocorrelation && core.start > 0 {
            let rows = core.start - 1..core.start;
            errors_into(
                &original.slice_rows(rows.clone()),
                &decoded.slice_rows(rows),
                &mut previous,
            )?;
        }
        let mut errors = Vec::new();
        for start in core.clone().step_by(block_rows) {
            let rows = start..(start + block_rows).min(core.end);
            let (x, y) = (original.slice_rows(rows.clone()), decoded.slice_rows(rows));
            let point = if self.point_metrics {
                PointSums::of(&x, &y, floor)?
            } else {
                PointSums::counts_of(&x, &y)?
            };
            partial.point.merge(&point);
            if errors_wanted {
                errors.clear();
                errors.extend_from_slice(&previous);
                errors_into(&x, &y, &mut errors)?;
                let own = &errors[previous.len()..];
                if let (Some(moments), Some(histogram), Some(edges)) =
                    (&mut partial.moments, &mut partial.counts.errors, &edges)
                {
                    moments.merge(&if self.point_metrics {
                        // The same lane sums of the same errors: no second pass for the mean.
                        ErrorMoments::with_sum(own, point.sum)
                    } else {
                        ErrorMoments::of(own)
                    });
                    histogram.add(own, edges);
                }
                if self.autocorrelation {
                    let mut shape = x.shape().to_vec();
                    shape[0] += usize::from(!previous.is_empty());
                    autocorrelation.merge(&Autocorrelation::of(
                        &errors,
                        &shape,
                        !previous.is_empty(),
                    ));
                    previous.clear();
                    previous.extend_from_slice(&errors[errors.len() - row..]);
                }
            }
            if let Some(counts) = &mut values {
                counts.add(&x, &y);
            }
            if let Some(sums) = &mut rings {
                // With the FSC, the chunk's plane transforms are made already.
                match &partial.spectra {
                    Some(spectra) => sums.add_transformed(&x, &y, spectra, start - core.start)?,
                    None => sums.add_planes(&x, &y)?,
                }
            }
        }
        if self.autocorrelation {
            partial.autocorrelation = Some(autocorrelation);
        }
        partial.counts.values = values;
        partial.rings = rings;
        Ok(())
    }

    /// The values of the metrics `names` (registry names) from the merged partial, as JSON.
    /// SSIM adds `ssim_detail`: window, minimum of the SSIM map, and for 3D the mean of each
    /// interior slice along axis 0 with the worst one.
    ///
    /// When a decoded value is not finite ([`PointSums::nonfinite_decoded`] > 0), every
    /// metric's value and every headline column of a structured one (`frc.resolution`,
    /// `error_histogram.std`, ...: [`registry::columns`]) is NaN, which meets no limit: the
    /// error of such a value is undefined, and left to themselves maxima would drop it and
    /// the FRC would never cross its threshold. The curves and histograms stay as computed
    /// (the error histogram counts the non-finite errors apart, in `nonfinite`).
    pub fn finish(&self, total: &Partial, names: &[&str]) -> Result<Map<String, Value>, String> {
        let mut values = Map::new();
        let rings = match (&total.rings, &total.gathered) {
            (Some(rings), _) => Some(Cow::Borrowed(rings)),
            (None, Some(gathered)) if self.spectral && self.shape.len() == 2 => {
                let (x, y) = gathered.whole()?;
                let mut sums = RingSums::new([self.shape[0], self.shape[1]]);
                sums.add_planes(&x, &y)?;
                Some(Cow::Owned(sums))
            }
            _ => None,
        };
        for name in names {
            if let Some(def) = registry::find(name) {
                let range = self.data_range / self.scale;
                values.insert(
                    (*name).to_string(),
                    metric_json(total.point.value(def, range, self.scale)),
                );
                continue;
            }
            let value = match *name {
                "ssim" => match (self.ssim, &total.ssim) {
                    (Some(window), Some(sums)) => {
                        values.insert("ssim".into(), metric_json(sums.mean()));
                        self.ssim_detail(window, sums)
                    }
                    _ => continue,
                },
                "error_histogram" => match (&total.counts.errors, &total.moments) {
                    (Some(histogram), Some(moments)) => {
                        histogram.json(moments, self.data_range, self.scale)
                    }
                    _ => continue,
                },
                "error_autocorrelation" => match &total.autocorrelation {
                    Some(auto) => auto.json(),
                    None => continue,
                },
                "ks_test" => match &total.counts.values {
                    Some(counts) => counts.json(),
                    None => continue,
                },
                "fsc" => match &total.spectra {
                    Some(spectra) => spectra.fsc()?,
                    None => continue,
                },
                "frc" | "power_spectrum" => match &rings {
                    Some(rings) if *name == "frc" => rings.frc(),
                    Some(rings) => rings.power_spectrum(self.scale),
                    None => continue,
                },
                _ => continue,
            };
            let key = if *name == "ssim" { "ssim_detail" } else { name };
            values.insert(key.to_string(), value);
        }
        if total.point.nonfinite_decoded > 0 {
            for column in registry::columns(names, self.shape.len()) {
                let slot = match column.split_once('.') {
                    Some((name, field)) => values.get_mut(name).and_then(|v| v.get_mut(field)),
                    None => values.get_mut(&column),
                };
                if let Some(slot) = slot {
                    *slot = metric_json(f64::NAN);
                }
            }
        }
        Ok(values)
    }

    fn ssim_detail(&self, window: SsimWindow, sums: &SsimSums) -> Value {
        let mut detail = json!({
            "window": window.name(),
            "min": metric_json(sums.min),
        });
        if self.shape.len() == 3 {
            let per_slice = sums.per_slice();
            // A NaN slice (NaN or infinite decoded values) is the worst.
            let worst = (0..per_slice.len())
                .min_by(|&a, &b| {
                    let (a, b) = (per_slice[a], per_slice[b]);
                    b.is_nan().cmp(&a.is_nan()).then(a.total_cmp(&b))
                })
                .expect("a non-empty interior");
            detail["worst_slice"] = json!(sums.first_row + worst);
            detail["worst_slice_ssim"] = metric_json(per_slice[worst]);
            detail["first_slice"] = json!(sums.first_row);
            detail["per_slice"] = per_slice.into_iter().map(metric_json).collect();
        }
        detail
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::IntoNdArray;
    use crate::metrics::comparison::BoundCheck;
    use crate::metrics::registry;
    use ndarray::{ArrayD, Dimension, IxDyn};

    fn arr(shape: &[usize], v: Vec<f32>) -> NdArray {
        ArrayD::from_shape_vec(IxDyn(shape), v).unwrap().into_nd()
    }

    /// A decode tampered to break the bound: the check counts exactly the values beyond it,
    /// with no tolerance (one ulp above the bound is a violation).
    #[test]
    fn tampered_decode_is_counted_and_flagged() {
        let x = arr(&[2, 3], vec![0.0, 0.0, 2.0, 3.0, 4.0, 5.0]);
        let bound = 0.25f32;
        let over = f32::from_bits(bound.to_bits() + 1);
        let y = arr(&[2, 3], vec![bound, over, 2.0, 3.0 - 0.5, 4.0, 5.0 - bound]);
        let s = BoundSums::of("fake", Promise::AbsError(0.25), &x, &y, 0).unwrap();
        assert_eq!((s.violations, s.checked, s.worst), (2, 6, 0.5));
        let check = s.check();
        assert!(!check.bound_ok);
        assert_eq!(
            BoundCheck::summary(&[check]).unwrap(),
            "VIOLATED: fake abs 0.25, 2 values"
        );
        let clean = BoundSums::of("fake", Promise::AbsError(0.25), &x, &x, 0).unwrap();
        assert_eq!(BoundCheck::summary(&[clean.check()]).unwrap(), "ok");
        // NaN where the original has a number is a violation, two NaNs are not.
        let x = arr(&[1, 2], vec![f32::NAN, 1.0]);
        let y = arr(&[1, 2], vec![f32::NAN, f32::NAN]);
        let s = BoundSums::of("fake", Promise::AbsError(1.0), &x, &y, 0).unwrap();
        assert_eq!((s.violations, s.worst), (1, f64::INFINITY));
    }

    /// A NaN or an infinity decoded where the original holds a number breaks every kind of
    /// promised error bound, however loose.
    #[test]
    fn nonfinite_decoded_values_break_every_error_bound() {
        let x = arr(&[2, 2, 2], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let y = arr(&[2, 2, 2], vec![0.0, 1.0, 2.0, 3.0, 4.0, bad, 6.0, 7.0]);
            for promise in [
                Promise::AbsError(1e30),
                Promise::RelError(1.0),
                Promise::PointwiseRel(1e30),
                Promise::L2Norm(1e30),
                Promise::Psnr {
                    db: -1e30,
                    peak: None,
                    per_plane: false,
                },
                Promise::Psnr {
                    db: -1e30,
                    peak: Some(1.0),
                    per_plane: true,
                },
            ] {
                let check = BoundSums::of("s", promise, &x, &y, 0).unwrap().check();
                assert_eq!(
                    (check.violations, check.bound_ok),
                    (1, false),
                    "{promise:?} {bad}"
                );
            }
        }
    }

    #[test]
    fn relative_bounds_use_each_chunks_range_and_merge_exactly() {
        // Chunk 1 spans 10, chunk 2 spans 1: an error of 0.05 is 0.005 and 0.05 of them.
        let x1 = arr(&[1, 3], vec![0.0, 5.0, 10.0]);
        let y1 = arr(&[1, 3], vec![0.05, 5.0, 10.0]);
        let x2 = arr(&[1, 3], vec![0.0, 0.5, 1.0]);
        let y2 = arr(&[1, 3], vec![0.05, 0.5, 1.0]);
        let promise = Promise::RelError(0.01);
        let mut a = BoundSums::of("s", promise, &x1, &y1, 0).unwrap();
        assert_eq!(a.violations, 0);
        let b = BoundSums::of("s", promise, &x2, &y2, 0).unwrap();
        assert_eq!(b.violations, 1);
        a.merge(&b).unwrap();
        assert_eq!((a.violations, a.checked), (1, 6));
        assert!((a.worst - 0.05).abs() < 1e-7);
        // Partials merge the checks promise by promise.
        let mut total = Partial::default();
        for part in [vec![b.clone()], vec![], vec![b.clone()]] {
            total
                .merge(Partial {
                    bounds: part,
                    ..Partial::default()
                })
                .unwrap();
        }
        assert_eq!(total.bounds[0].violations, 2);
        let other = BoundSums::of("t", Promise::AbsError(1.0), &x1, &y1, 0).unwrap();
        assert!(total.bounds[0].merge(&other).is_err());
    }

    #[test]
    fn psnr_per_plane_l2_and_rate() {
        // Two planes of 2x2: the first exact, the second with mse 0.25 and peak 1.
        let x = arr(&[2, 2, 2], vec![0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
        let y = arr(&[2, 2, 2], vec![0.0, 1.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5]);
        // Plane PSNRs inf and 10 log10(4) = 6.02 dB; the chunk's 10 log10(8) = 9.03 dB.
        let promise = |per_plane| Promise::Psnr {
            db: 8.0,
            peak: None,
            per_plane,
        };
        let planes = BoundSums::of("j", promise(true), &x, &y, 0).unwrap();
        let expected = 10.0 * 4.0f64.log10();
        assert_eq!((planes.checked, planes.violations), (2, 1));
        assert!((planes.worst - expected).abs() < 1e-12);
        assert_eq!(planes.counted(), "planes");
        let chunk = BoundSums::of("j", promise(false), &x, &y, 0).unwrap();
        assert_eq!((chunk.checked, chunk.violations), (1, 0));
        let l2 = BoundSums::of("s", Promise::L2Norm(0.99), &x, &y, 0).unwrap();
        assert_eq!((l2.worst, l2.violations), (1.0, 1));
        let rate = Promise::BitsPerValue {
            nominal: 8.0,
            bits: 8.5,
        };
        assert_eq!(BoundSums::of("z", rate, &x, &y, 8).unwrap().violations, 0);
        let over = BoundSums::of("z", rate, &x, &y, 9).unwrap();
        assert_eq!((over.worst, over.violations), (9.0, 1));
        assert_eq!(over.check().promised, 8.0);
    }

    /// A float32 volume of shape `shape` with texture at every scale, and its decoding
    /// quantized to steps of 0.05 with a few values off by more.
    fn pair(shape: &[usize]) -> (NdArray, NdArray) {
        let x = ArrayD::from_shape_fn(IxDyn(shape), |ix| {
            let h = ix.slice().iter().fold(0x9e37_79b9u32, |h, &i| {
                (h ^ i as u32).wrapping_mul(0x0100_0193)
            });
            let smooth: f32 = ix.slice().iter().map(|&i| (0.4 * i as f32).sin()).sum();
            smooth + (h % 1000) as f32 / 1000.0
        });
        let y = x.mapv(|v: f32| {
            let q = (v / 0.05).round() * 0.05;
            if v.to_bits().is_multiple_of(17) {
                q + 0.3
            } else {
                q
            }
        });
        (x.into_nd(), y.into_nd())
    }

    fn spec(x: &NdArray, y: &NdArray, names: &[&str]) -> CompareSpec {
        let values = x.to_f64();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let facts = DataFacts {
            shape: x.shape(),
            range: (lo, hi),
            data_range: hi - lo,
            dtypes: (x.dtype(), y.dtype()),
        };
        CompareSpec::new(names, facts, 1e-3 * (hi - lo), SsimWindow::Gaussian).unwrap()
    }

    /// The partials of the rows cut at `cuts`, each from slabs with the spec's halo, as the
    /// runner reads them, with the bounds of two stages measured on each core.
    fn partials(spec: &CompareSpec, x: &NdArray, y: &NdArray, cuts: &[usize]) -> Vec<Partial> {
        let rows = x.shape()[0];
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(rows);
        bounds
            .windows(2)
            .map(|w| {
                let core = w[0]..w[1];
                let held = crate::data::rows_with_halo(&core, spec.halo(), rows);
                let (a, b) = (x.slice_rows(held.clone()), y.slice_rows(held.clone()));
                let mut partial = spec.partial(&a, &b, held, core.clone()).unwrap();
                let (xc, yc) = (x.slice_rows(core.clone()), y.slice_rows(core));
                let psnr = Promise::Psnr {
                    db: 30.0,
                    peak: None,
                    per_plane: true,
                };
                partial.bounds = vec![
                    BoundSums::of("sz3", Promise::AbsError(0.05), &xc, &yc, 0).unwrap(),
                    BoundSums::of("j2k", psnr, &xc, &yc, 0).unwrap(),
                ];
                partial
            })
            .collect()
    }

    fn merged(parts: &[Partial]) -> Partial {
        let mut total = Partial::default();
        for part in parts {
            total.merge(part.clone()).unwrap();
        }
        total
    }

    fn round_trip(partial: &Partial) -> Partial {
        let bytes = postcard::to_stdvec(partial).unwrap();
        let back: Partial = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(postcard::to_stdvec(&back).unwrap(), bytes);
        back
    }

    /// Partials of slabs computed by the real code (every metric, a 3-D volume and a 2-D
    /// image, whose FRC gathers the rows) survive postcard bit for bit, and the decoded ones
    /// merge into what the originals merge into: the same partial, the same metrics.
    #[test]
    fn partials_survive_postcard_and_merge_as_the_originals() {
        let names = registry::names();
        for expected in [
            "mse",
            "psnr",
            "ssim",
            "error_histogram",
            "error_autocorrelation",
            "ks_test",
            "frc",
            "fsc",
            "power_spectrum",
        ] {
            assert!(names.contains(&expected), "{expected}");
        }
        for (shape, cuts) in [
            (vec![14, 16, 16], vec![3, 4, 9]),
            (vec![24, 20], vec![5, 6, 17]),
        ] {
            let (x, y) = pair(&shape);
            let spec = spec(&x, &y, &names);
            let parts = partials(&spec, &x, &y, &cuts);
            let read_back: Vec<Partial> = parts.iter().map(round_trip).collect();
            assert_eq!(read_back, parts);
            let (total, total_read_back) = (merged(&parts), merged(&read_back));
            assert_eq!(total_read_back, total);
            assert_eq!(round_trip(&total), total);
            let finished = spec.finish(&total, &names).unwrap();
            assert_eq!(spec.finish(&total_read_back, &names).unwrap(), finished);
            for name in [
                "ssim",
                "error_histogram",
                "error_autocorrelation",
                "ks_test",
                "frc",
            ] {
                assert!(finished.contains_key(name), "{shape:?}: no {name}");
            }
            assert_eq!(finished.contains_key("fsc"), shape.len() == 3);
            assert!(total.ssim.is_some() && total.counts.errors.is_some());
            assert!(total.counts.values.is_some() && total.autocorrelation.is_some());
            assert_eq!(total.rings.is_some(), shape.len() == 3);
            assert_eq!(total.gathered.is_some(), shape.len() == 2);
            assert_eq!(total.spectra.is_some(), shape.len() == 3);
        }
    }

    /// `pair`'s arrays as float32 and float64, with every 7th decoded value replaced by `bad`.
    fn spoiled(y: &NdArray, bad: f32) -> (NdArray, u64) {
        let NdArray::Float32(y) = y else {
            unreachable!("pair() is float32")
        };
        let mut y = y.clone();
        let mut count = 0;
        for (i, v) in y.iter_mut().enumerate() {
            if i % 7 == 3 {
                *v = bad;
                count += 1;
            }
        }
        (y.into_nd(), count)
    }

    /// Decoded NaN or infinities (which left to `f64::max` gave `max_abs_error` 0 and to the
    /// FRC's crossing test a perfect resolution): counted exactly through slab partials and
    /// postcard, every headline column of every metric NaN, the error histogram counting them
    /// apart, the SSIM minimum and worst slice NaN, and every promised bound violated.
    #[test]
    fn nonfinite_decoded_values_make_every_metric_nan() {
        let names = registry::names();
        for (shape, cuts) in [
            (vec![14, 16, 16], vec![3, 4, 9]),
            (vec![24, 20], vec![5, 6, 17]),
        ] {
            let (x, y) = pair(&shape);
            let n: u64 = shape.iter().product::<usize>() as u64;
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let (y, spoilt) = spoiled(&y, bad);
                let spec = spec(&x, &y, &names);
                let parts: Vec<Partial> = partials(&spec, &x, &y, &cuts)
                    .iter()
                    .map(round_trip)
                    .collect();
                let total = merged(&parts);
                assert_eq!(total.point.nonfinite_decoded, spoilt, "{shape:?} {bad}");
                let finished = spec.finish(&total, &names).unwrap();
                let computed: Vec<&str> = names
                    .iter()
                    .copied()
                    .filter(|name| unmet(name, &shape, None, SsimWindow::Gaussian).is_none())
                    .collect();
                assert!(computed.contains(&"frc") && computed.len() >= names.len() - 1);
                for column in registry::columns(&computed, shape.len()) {
                    assert_eq!(
                        registry::column_value(&finished, &column),
                        Some(&json!("nan")),
                        "{shape:?} {bad}: {column}"
                    );
                }
                let histogram = &finished["error_histogram"];
                assert_eq!(histogram["nonfinite"], spoilt);
                let binned: u64 = ["below", "above", "nonfinite"]
                    .iter()
                    .map(|k| histogram[k].as_u64().unwrap())
                    .chain(
                        histogram["counts"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|c| c.as_u64().unwrap()),
                    )
                    .sum();
                assert_eq!(binned, n, "every error counted once");
                let detail = &finished["ssim_detail"];
                assert_eq!(detail["min"], "nan", "{shape:?} {bad}: {detail}");
                if shape.len() == 3 {
                    assert_eq!(detail["worst_slice_ssim"], "nan");
                }
                for bound in &total.bounds {
                    assert!(bound.violations > 0 && !bound.check().bound_ok, "{bound:?}");
                }
                // Without point metrics, partials count the same values and spoilt ones.
                let ssim_only = self::spec(&x, &y, &["ssim"]);
                assert!(!ssim_only.point_metrics && spec.point_metrics);
                let counted = merged(&partials(&ssim_only, &x, &y, &cuts));
                let expected = PointSums {
                    count: n,
                    nonfinite_decoded: spoilt,
                    ..PointSums::default()
                };
                assert_eq!(counted.point, expected, "{shape:?} {bad}");
                let finished = ssim_only.finish(&counted, &["ssim"]).unwrap();
                assert_eq!(finished["ssim"], "nan", "{shape:?} {bad}");
            }
        }
    }

    /// Values beyond 2^60 are compared divided by a power of two: float64 data times 2^900
    /// (whose squares overflow) give bit for bit the dimensionless metrics of the data
    /// themselves, and the dimensioned ones times 2^900 (mse times 2^1800 is beyond float64:
    /// inf); float32 data near `f32::MAX` give SSIM 1 and PSNR inf when lossless, and lossy
    /// the data's own values (SSIM within 1e-6: float32 filters on the data, float64 copies
    /// when scaled). Data within 2^60 are not scaled at all.
    #[test]
    fn huge_values_give_the_metrics_of_the_data_unscaled() {
        let names = registry::names();
        let shape = [14, 16, 16];
        let cuts = [3, 4, 9];
        let finished = |x: &NdArray, y: &NdArray| {
            let spec = spec(x, y, &names);
            let total = merged(&partials(&spec, x, y, &cuts));
            (spec.scale, spec.finish(&total, &names).unwrap())
        };
        let times = |a: &NdArray, factor: f64| match a {
            NdArray::Float32(a) => NdArray::Float32(a.mapv(|v| v * factor as f32)),
            other => NdArray::Float64(other.to_f64().mapv(|v| v * factor)),
        };
        let (x32, y32) = pair(&shape);
        let dimensioned = [
            "mse",
            "rmse",
            "max_abs_error",
            "mean_error",
            "error_histogram.std",
        ];
        let columns = registry::columns(&names, shape.len());
        let value = |map: &Map<String, Value>, column: &str| {
            registry::column_value(map, column)
                .cloned()
                .unwrap_or_else(|| panic!("{column}"))
        };
        // A column of the scaled data against the data's own: dimensioned ones times `factor`,
        // the others the same.
        let assert_scaled = |column: &str, b: &Value, h: &Value, factor: f64| {
            if dimensioned.contains(&column) {
                assert_eq!(
                    h.as_f64().unwrap(),
                    b.as_f64().unwrap() * factor,
                    "{column}"
                )
            } else {
                assert_eq!(h, b, "{column}")
            }
        };
        // Float64 times 2^900.
        let (x, y) = (times(&x32, 1.0), times(&y32, 1.0));
        let (x, y) = (NdArray::Float64(x.to_f64()), NdArray::Float64(y.to_f64()));
        let (scale, base) = finished(&x, &y);
        assert_eq!(scale, 1.0);
        let factor = 2f64.powi(900);
        let (scale, huge) = finished(&times(&x, factor), &times(&y, factor));
        assert_eq!(
            scale,
            2f64.powi(843),
            "magnitude 3.9 * 2^900 brought to [2^59, 2^60)"
        );
        for column in &columns {
            let (b, h) = (value(&base, column), value(&huge, column));
            match column.as_str() {
                "mse" => assert_eq!(h, json!("inf"), "{column}"),
                c => assert_scaled(c, &b, &h, factor),
            }
            assert_ne!(h, json!("nan"), "{column}");
        }
        for curve in [
            "ssim_detail",
            "error_autocorrelation",
            "ks_test",
            "frc",
            "fsc",
        ] {
            assert_eq!(huge[curve], base[curve], "{curve}");
        }
        let spectrum = |map: &Map<String, Value>| map["power_spectrum"]["relative_error"].clone();
        assert_eq!(spectrum(&huge), spectrum(&base));
        assert_eq!(
            huge["error_histogram"]["counts"],
            base["error_histogram"]["counts"]
        );
        // Float32 near f32::MAX (up to 2^127): lossless, then lossy.
        let factor = 2f64.powi(125);
        let (x, y) = (times(&x32, factor), times(&y32, factor));
        let (_, same) = finished(&x, &x);
        for (column, expected) in [
            ("psnr", json!("inf")),
            ("ssim", json!(1.0)),
            ("mse", json!(0.0)),
            ("pearson", json!(1.0)),
            ("frc.resolution", json!(1.0)),
            ("fsc.resolution", json!(1.0)),
        ] {
            assert_eq!(value(&same, column), expected, "{column}");
        }
        let (_, base) = finished(&x32, &y32);
        let (scale, huge) = finished(&x, &y);
        assert_eq!(scale, 2f64.powi(68));
        for column in &columns {
            let (b, h) = (value(&base, column), value(&huge, column));
            match column.as_str() {
                "ssim" => assert!((h.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-6),
                "mse" => assert_eq!(h.as_f64().unwrap(), b.as_f64().unwrap() * factor * factor),
                c => assert_scaled(c, &b, &h, factor),
            }
        }
    }

    /// Values below 2^-30 are compared multiplied up by a power of two: float64 data times
    /// 2^-900 (whose squared errors underflow to 0, so PSNR would read inf) give bit for bit
    /// the dimensionless metrics of the data themselves; float32 data times 2^-100 (SSIM's
    /// constants below the smallest normal float32) the data's own PSNR and SSIM (within 1e-6:
    /// float32 filters on the data, float64 copies when scaled).
    #[test]
    fn tiny_values_give_the_metrics_of_the_data_unscaled() {
        let names = registry::names();
        let finished = |x: &NdArray, y: &NdArray| {
            let spec = spec(x, y, &names);
            let total = merged(&partials(&spec, x, y, &[3, 4, 9]));
            (spec.scale, spec.finish(&total, &names).unwrap())
        };
        let value = |map: &Map<String, Value>, column: &str| {
            registry::column_value(map, column).cloned().unwrap()
        };
        let (x32, y32) = pair(&[14, 16, 16]);
        let (x, y) = (
            NdArray::Float64(x32.to_f64()),
            NdArray::Float64(y32.to_f64()),
        );
        let (_, base) = finished(&x, &y);
        let times = |a: &NdArray| NdArray::Float64(a.to_f64().mapv(|v| v * 2f64.powi(-900)));
        let (scale, tiny) = finished(&times(&x), &times(&y));
        assert!(scale < 2f64.powi(-900), "{scale}");
        let dimensionless = [
            "psnr",
            "snr",
            "nrmse",
            "pearson",
            "ssim",
            "frc.resolution",
            "fsc.resolution",
        ];
        for column in dimensionless {
            assert_eq!(value(&tiny, column), value(&base, column), "{column}");
        }
        let (_, base) = finished(&x32, &y32);
        let times = |a: &NdArray| match a {
            NdArray::Float32(a) => NdArray::Float32(a.mapv(|v| v * 2f32.powi(-100))),
            _ => unreachable!("float32 pair"),
        };
        let (scale, tiny) = finished(&times(&x32), &times(&y32));
        assert!(scale < 1.0, "{scale}");
        for column in ["psnr", "ssim"] {
            let (b, t) = (value(&base, column), value(&tiny, column));
            let (b, t) = (b.as_f64().unwrap(), t.as_f64().unwrap());
            assert!((t - b).abs() < 1e-6, "{column}: {t} vs {b}");
        }
    }

    /// Infinities, NaN (with its payload) and negative zero come back bit for bit; an empty
    /// partial's infinite SSIM minimum too.
    #[test]
    fn special_floats_survive_postcard_bit_for_bit() {
        let nan = f64::from_bits(0x7ff8_0000_dead_beef);
        let mut partial = Partial::default();
        partial.point.max_abs = f64::INFINITY;
        partial.point.sum = -0.0;
        partial.point.max_rel = nan;
        partial.ssim = Some(SsimSums {
            first_row: 3,
            row_sums: vec![f64::NEG_INFINITY, f64::MIN_POSITIVE / 4.0],
            row_count: 0,
            min: f64::INFINITY,
        });
        let x = arr(&[1, 2], vec![0.0, 1.0]);
        let y = arr(&[1, 2], vec![f32::INFINITY, 1.0]);
        let psnr = Promise::Psnr {
            db: f64::INFINITY,
            peak: Some(f64::NEG_INFINITY),
            per_plane: false,
        };
        partial.bounds = vec![
            BoundSums::of("zfp", Promise::AbsError(0.0), &x, &y, 0).unwrap(),
            BoundSums::of("zfp", psnr, &x, &y, 0).unwrap(),
        ];
        assert_eq!(partial.bounds[0].worst, f64::INFINITY);
        let bytes = postcard::to_stdvec(&partial).unwrap();
        let back: Partial = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(postcard::to_stdvec(&back).unwrap(), bytes);
        assert_eq!(back.point.max_abs, f64::INFINITY);
        assert_eq!(back.point.sum.to_bits(), (-0.0f64).to_bits());
        assert_eq!(back.point.max_rel.to_bits(), nan.to_bits());
        assert_eq!(back.ssim, partial.ssim);
        assert_eq!(back.bounds, partial.bounds);
        // An empty partial, as a unit with no rows would send it.
        let empty = Partial::default();
        assert_eq!(round_trip(&empty), empty);
    }

    /// Truncated bytes and bound checks of unknown stages are errors, not panics.
    #[test]
    fn corrupt_bytes_are_refused() {
        let (x, y) = pair(&[14, 16, 16]);
        let spec = spec(&x, &y, &registry::names());
        let bytes = postcard::to_stdvec(&partials(&spec, &x, &y, &[7])[1]).unwrap();
        for len in [0, 1, bytes.len() / 3, bytes.len() - 1] {
            assert!(
                postcard::from_bytes::<Partial>(&bytes[..len]).is_err(),
                "{len}"
            );
        }
        let unknown = BoundSums {
            stage: "no-such-stage",
            ..BoundSums::of("sz3", Promise::AbsError(1.0), &x, &y, 0).unwrap()
        };
        let error =
            postcard::from_bytes::<BoundSums>(&postcard::to_stdvec(&unknown).unwrap()).unwrap_err();
        // postcard keeps no message of its own errors' custom text, only their kind.
        assert_eq!(error, postcard::Error::SerdeDeCustom);
    }
}
