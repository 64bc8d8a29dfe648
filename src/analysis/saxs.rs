//! Small-angle scattering: azimuthal integration of the original and the decoded 2-D pattern
//! into I(q), and what the compression did to it: per-bin relative error, reduced chi-square
//! against the counting uncertainty, Guinier radius of gyration and forward intensity, Porod
//! invariant.
//!
//! # Geometry
//! Each detector pixel `(y, x)` has a momentum transfer `|q|`, either
//! - from the parameters `beam_x`, `beam_y` (beam centre in pixels, pixel centres at integer
//!   coordinates: the pixel of index `x` spans `x - 0.5 .. x + 0.5`), `pixel_size` (m),
//!   `distance` (sample to detector, m) and `wavelength` (m): with
//!   `r = pixel_size * sqrt((x - beam_x)^2 + (y - beam_y)^2)`, `2 theta = atan(r / distance)` and
//!   `q = 4 pi sin(theta) / wavelength`, given in 1/nm (a flat detector normal to the beam; no
//!   tilt, no solid-angle or polarisation correction);
//! - or from a per-pixel map `q_map = "file.h5::/path"` in its own units: an NXcanSAS `Q` of
//!   shape `(3, Y, X)` holds the components and `|q|` is their Euclidean norm; a `(Y, X)` map is
//!   `|q|` itself.
//!
//! A pixel is excluded when the mask `mask = "file.h5::/path"` (shape `(Y, X)`) is nonzero there
//! (the NXcanSAS `Imask` rule: true = excluded). An HDF5 boolean (`H5T_ENUM` of `FALSE`/`TRUE`
//! over int8, as h5py writes it, e.g. `Imask` of BAM_2D.h5) is read as its 0/1 integer values.
//!
//! # Binning
//! `q_bins` bins between `q_min` and `q_max` (default: the smallest and largest `|q|` of the
//! unmasked pixels; with `q_scale = "log"` the default `q_min` is the smallest positive one).
//! Edges: `e_i = q_min + (q_max - q_min) * i / n` (`lin`) or `e_i = q_min * (q_max / q_min)^(i /
//! n)` (`log`), evaluated in that order in float64. A pixel belongs to bin `i` when `e_i <= |q| <
//! e_(i+1)`, the last bin also holding `|q| = q_max` (NumPy `histogram`'s rule,
//! `searchsorted(edges, q, 'right') - 1`); pixels outside `[q_min, q_max]` are not used. The
//! `q` of a bin is the mean `|q|` of its pixels. A bin without unmasked pixels is empty: it is
//! reported as `null` in the per-bin arrays and left out of every error and fit; a binning where
//! every bin is empty is an error.
//!
//! # Intensity and uncertainty
//! For a bin with `n` pixels, `I = sum(I_p) / n` and `sigma^2 = sum(sigma_p^2) / n^2` (the
//! standard error of the mean of independent pixels). Pixel variances: Poisson,
//! `sigma_p^2 = max(I_p, 1)` of the original, or `idev^2` from a given dataset `idev` (NXcanSAS
//! `Idev`). A 3-D input `(frames, Y, X)` is integrated as the sum of its frames: `I_p` and
//! `sigma_p^2` are summed over frames before the bin mean (so `I` is per pixel of the summed
//! image).
//!
//! # Comparison (original `o`, decoded `d`, non-empty bins)
//! - `rel_error_max`, `rel_error_mean`: of `|I_d - I_o| / |I_o|` over the bins with `I_o != 0`;
//! - `chi2_reduced = sum((I_d - I_o)^2 / sigma_o^2) / N` over the `N` bins with `sigma_o > 0`
//!   (the decoded curve judged against the original's counting uncertainty; no fitted
//!   parameter, so `N` degrees of freedom). 1 means an error as large as the noise;
//! - Guinier fit `ln I = ln I0 - q^2 Rg^2 / 3`, unweighted least squares of `ln I` on `q^2`
//!   (NumPy `polyfit(q**2, log(I), 1)`) over the bins with `I > 0` from the lowest `q` up to a
//!   limit. The limit starts at `guinier_q_start` (default: the `q` of the original's tenth
//!   bin with `I > 0`) and is then set to `1.3 / Rg` of the last fit, until the set of points
//!   stops changing (at most 50 fits; `guinier_converged` says whether it did). Both curves
//!   start from the same limit. Fewer than 3 points or a non-negative slope: no Guinier region;
//!   then `rg_*`/`i0_*` are `null` with `guinier_original` (or `_decoded`) saying why, and the
//!   changes are `null` when the original has none, `"inf"` when only the decoded lost it;
//! - Porod invariant `Q* = integral q^2 I(q) dq` by the trapezoidal rule over the non-empty
//!   bins' `q` (NumPy `trapezoid(q**2 * I, q)`);
//! - relative changes `|x_d - x_o| / |x_o|` (0 when equal, `"inf"` when only `x_o` is 0).
//!
//! # Streaming
//! A partial keeps, for every row along axis 0 it covers (an image row of a 2-D pattern, a
//! frame of a stack), the per-bin sums of the original, the decoded and the variance, and the
//! integer pixel counts per bin. Merging appends rows; `finish` adds the rows' sums in row
//! order, so any chunking gives bit-identical results (memory: 24 bytes per bin per row).
//!
//! # Peer
//! `tests/peers/saxs_fixtures.py` integrates with `np.searchsorted` and `np.bincount` on the
//! same edges and mask rule, fits with `np.polyfit` and integrates with `np.trapezoid`; sums
//! differ from photonqa's row-ordered ones in the last bits only.
//!
//! # References
//! 1. A. Guinier, G. Fournet, *Small-Angle Scattering of X-rays*, Wiley (1955).
//! 2. O. Glatter, O. Kratky (eds.), *Small Angle X-ray Scattering*, Academic Press (1982),
//!    Porod invariant.
//! 3. P. Boesecke, "Reduction of two-dimensional small- and wide-angle X-ray scattering data",
//!    J. Appl. Cryst. 40 (2007) s423, doi:10.1107/S0021889807001100.
//! 4. NXcanSAS data format, J. Appl. Cryst. 54 (2021) 1, doi:10.1107/S1600576720016079.

use std::f64::consts::PI;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::figure::{Curve, FigureData, Panel, Role, Span, number, numbers, pairs};
use super::registry::AnalysisDef;
use super::{Analysis, Context, DynAnalysis, Slabs};
use crate::data::SourceSpec;
use crate::metrics::values::{metric_json, short};
use crate::pipeline::ParamValue;
use crate::pipeline::params::StageConfig;
use crate::pipeline::params::{ANY_FLOAT, Default, ParamDef, ParamKind};
use crate::stats::histogram::Histogram;

/// Registry entry.
pub static DEF: AnalysisDef = AnalysisDef {
    kind: "saxs",
    doc: "SAXS azimuthal integration I(q) of original and decoded: per-bin relative error, reduced chi-square against the counting uncertainty, Guinier Rg and I0, Porod invariant",
    params: &[
        ParamDef {
            name: "beam_x",
            kind: ANY_FLOAT,
            default: Default::Derived("required without q_map"),
            doc: "beam centre column in pixels (pixel centres at integer coordinates)",
        },
        ParamDef {
            name: "beam_y",
            kind: ANY_FLOAT,
            default: Default::Derived("required without q_map"),
            doc: "beam centre row in pixels",
        },
        ParamDef {
            name: "pixel_size",
            kind: ANY_FLOAT,
            default: Default::Derived("required without q_map"),
            doc: "pixel size in m",
        },
        ParamDef {
            name: "distance",
            kind: ANY_FLOAT,
            default: Default::Derived("required without q_map"),
            doc: "sample-detector distance in m",
        },
        ParamDef {
            name: "wavelength",
            kind: ANY_FLOAT,
            default: Default::Derived("required without q_map"),
            doc: "wavelength in m; q = 4 pi sin(theta) / wavelength is then in 1/nm",
        },
        ParamDef {
            name: "q_map",
            kind: ParamKind::Text,
            default: Default::Derived("none: q from the geometry"),
            doc: "per-pixel q, file.h5::/path: (3, Y, X) components (NXcanSAS Q) or (Y, X) |q|",
        },
        ParamDef {
            name: "mask",
            kind: ParamKind::Text,
            default: Default::Derived("none"),
            doc: "pixel mask file.h5::/path of shape (Y, X); nonzero (true) = excluded, as NXcanSAS Imask",
        },
        ParamDef {
            name: "idev",
            kind: ParamKind::Text,
            default: Default::Derived("Poisson: sigma^2 = max(I, 1)"),
            doc: "per-pixel uncertainty file.h5::/path of shape (Y, X) (NXcanSAS Idev)",
        },
        ParamDef {
            name: "q_bins",
            kind: ParamKind::Int {
                min: 1,
                max: 100_000,
            },
            default: Default::Int(100),
            doc: "number of q bins",
        },
        ParamDef {
            name: "q_min",
            kind: ANY_FLOAT,
            default: Default::Derived("smallest |q| of the unmasked pixels (positive with log)"),
            doc: "lower edge of the first bin",
        },
        ParamDef {
            name: "q_max",
            kind: ANY_FLOAT,
            default: Default::Derived("largest |q| of the unmasked pixels"),
            doc: "upper edge of the last bin (included)",
        },
        ParamDef {
            name: "q_scale",
            kind: ParamKind::Choice(&["lin", "log"]),
            default: Default::Str("lin"),
            doc: "linearly or logarithmically spaced bin edges",
        },
        ParamDef {
            name: "guinier_q_start",
            kind: ANY_FLOAT,
            default: Default::Derived("q of the original's tenth bin with I > 0"),
            doc: "q limit of the first Guinier fit, then iterated to 1.3 / Rg",
        },
    ],
    columns: &[
        "rel_error_max",
        "rel_error_mean",
        "chi2_reduced",
        "rg_rel_change",
        "i0_rel_change",
        "porod_rel_change",
    ],
    complete: Some(complete),
    prepare: Some(Saxs::prepare),
    figures: Some(figures),
};

pub mod spheres;

/// Pixels with no bin (masked or outside the q range).
const NO_BIN: u32 = u32::MAX;
/// Fits of the Guinier range iteration before the last one is reported as not converged.
const GUINIER_MAX_FITS: usize = 50;
/// Upper end of the Guinier range, `q Rg <= 1.3`.
const GUINIER_QRG: f64 = 1.3;
/// Bins with `I > 0` that the default Guinier start covers.
const GUINIER_START_BINS: usize = 10;

/// A flat detector normal to the beam.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Geometry {
    /// Beam centre, column coordinate in pixels (pixel centres at integers).
    pub beam_x: f64,
    /// Beam centre, row coordinate in pixels.
    pub beam_y: f64,
    /// Pixel size, m.
    pub pixel_size: f64,
    /// Sample-detector distance, m.
    pub distance: f64,
    /// Wavelength, m.
    pub wavelength: f64,
}

impl Geometry {
    /// Checks the geometry against a detector of `shape` `(Y, X)`; errors name the parameter.
    pub fn check(&self, shape: [usize; 2]) -> Result<(), String> {
        for (name, value, extent) in [
            ("beam_x", self.beam_x, shape[1]),
            ("beam_y", self.beam_y, shape[0]),
        ] {
            let hi = extent as f64 - 0.5;
            if !(-0.5..=hi).contains(&value) {
                return Err(format!(
                    "{name} = {value} is outside the detector (-0.5..{hi} pixels)"
                ));
            }
        }
        for (name, value, what) in [
            ("pixel_size", self.pixel_size, "pixel size in m"),
            ("distance", self.distance, "sample-detector distance in m"),
            ("wavelength", self.wavelength, "wavelength in m"),
        ] {
            if value.is_nan() || value <= 0.0 {
                return Err(format!("{name} = {value} must be > 0 ({what})"));
            }
        }
        Ok(())
    }

    /// `|q|` in 1/nm of the pixel at row `y`, column `x`.
    pub fn q(&self, y: usize, x: usize) -> f64 {
        let dx = x as f64 - self.beam_x;
        let dy = y as f64 - self.beam_y;
        let r = self.pixel_size * (dx * dx + dy * dy).sqrt();
        let theta = 0.5 * (r / self.distance).atan();
        4.0 * PI * theta.sin() / self.wavelength * 1e-9
    }

    /// `|q|` in 1/nm of every pixel of a `(Y, X)` detector, row by row.
    pub fn q_map(&self, shape: [usize; 2]) -> Vec<f64> {
        (0..shape[0])
            .flat_map(|y| (0..shape[1]).map(move |x| self.q(y, x)))
            .collect()
    }
}

/// The names of the geometry parameters, in [`Geometry`]'s order.
const GEOMETRY: [&str; 5] = ["beam_x", "beam_y", "pixel_size", "distance", "wavelength"];

fn has(config: &StageConfig, name: &str) -> bool {
    config.params.iter().any(|(n, _)| *n == name)
}

fn opt_text<'a>(config: &'a StageConfig, name: &str) -> Option<&'a str> {
    match config.params.iter().find(|(n, _)| *n == name) {
        Some((_, ParamValue::Str(s))) => Some(s),
        _ => None,
    }
}

/// Checks the parameters that depend on each other: either `q_map` or all five geometry
/// parameters; `q_min < q_max`; a positive `q_min` with `q_scale = "log"`.
pub fn complete(config: &mut StageConfig) -> Result<(), String> {
    let given: Vec<&str> = GEOMETRY
        .iter()
        .copied()
        .filter(|n| has(config, n))
        .collect();
    match (has(config, "q_map"), given.len()) {
        (true, 0) | (false, 5) => {}
        (true, _) => {
            return Err(format!(
                "q_map and {} exclude each other (the q map is the geometry)",
                given[0]
            ));
        }
        (false, _) => {
            let missing: Vec<&str> = GEOMETRY
                .iter()
                .copied()
                .filter(|n| !given.contains(n))
                .collect();
            return Err(format!(
                "needs q_map or the geometry: {} missing",
                missing.join(", ")
            ));
        }
    }
    if let (Some(lo), Some(hi)) = (config.opt_float("q_min"), config.opt_float("q_max"))
        && lo >= hi
    {
        return Err(format!("q_min = {lo} is not below q_max = {hi}"));
    }
    if config.str("q_scale") == "log"
        && let Some(lo) = config.opt_float("q_min")
        && lo <= 0.0
    {
        return Err(format!("q_min = {lo} must be > 0 with q_scale = \"log\""));
    }
    Ok(())
}

/// A `(Y, X)` plane (or a `(3, Y, X)` vector field) read whole: its shape and float64 values.
fn read_aux(param: &str, text: &str, base: &Path) -> Result<(Vec<usize>, Vec<f64>), String> {
    let source = SourceSpec::parse(text, base, None)
        .and_then(|s| s.open().map_err(|e| e.to_string()))
        .map_err(|e| format!("{param}: {e}"))?;
    let shape = source.shape().to_vec();
    let values = source
        .read_slab(0..shape[0])
        .map_err(|e| format!("{param}: {e}"))?
        .to_f64();
    Ok((shape, values.iter().copied().collect()))
}

/// `|q|` per pixel from a q map: the norm of a `(3, Y, X)` field or a `(Y, X)` map as is.
fn q_from_map(text: &str, base: &Path, detector: [usize; 2]) -> Result<Vec<f64>, String> {
    let (shape, values) = read_aux("q_map", text, base)?;
    let plane = detector[0] * detector[1];
    let q = match shape.as_slice() {
        [3, y, x] if [*y, *x] == detector => (0..plane)
            .map(|p| {
                let (a, b, c) = (values[p], values[plane + p], values[2 * plane + p]);
                (a * a + b * b + c * c).sqrt()
            })
            .collect(),
        [y, x] if [*y, *x] == detector => values,
        _ => {
            return Err(format!(
                "q_map shape {shape:?} differs from the detector's {detector:?} (expected [3, {}, {}] or {detector:?})",
                detector[0], detector[1]
            ));
        }
    };
    if let Some(p) = q.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "q_map is not finite at pixel ({}, {})",
            p / detector[1],
            p % detector[1]
        ));
    }
    Ok(q)
}

/// A `(Y, X)` dataset that must match the detector.
fn read_plane(
    param: &str,
    text: &str,
    base: &Path,
    detector: [usize; 2],
) -> Result<Vec<f64>, String> {
    let (shape, values) = read_aux(param, text, base)?;
    if shape != detector {
        return Err(format!(
            "{param} shape {shape:?} differs from the detector's {detector:?}"
        ));
    }
    Ok(values)
}

/// The bin edges of `n` bins over `[lo, hi]`, linear or logarithmic (see the module doc).
pub fn bin_edges(lo: f64, hi: f64, n: usize, log: bool) -> Vec<f64> {
    (0..=n)
        .map(|i| {
            if log {
                lo * (hi / lo).powf(i as f64 / n as f64)
            } else {
                lo + (hi - lo) * i as f64 / n as f64
            }
        })
        .collect()
}

/// The bin of `q` among `edges` (NumPy histogram's rule), or `None` outside.
fn bin_of(edges: &[f64], q: f64) -> Option<u32> {
    let n = edges.len() - 1;
    if q < edges[0] || q > edges[n] {
        return None;
    }
    let i = edges.partition_point(|&e| e <= q).saturating_sub(1);
    Some(i.min(n - 1) as u32)
}

/// The `saxs` analysis, prepared: each pixel's bin, the pixel variances when given, the bins.
#[derive(Debug, Clone)]
pub struct Saxs {
    /// Detector `(Y, X)`.
    detector: [usize; 2],
    /// Frames of a 3-D stack, 1 for a 2-D pattern.
    frames: usize,
    /// Whether the input is a 3-D stack (rows along axis 0 are frames).
    stack: bool,
    /// Bin of every pixel, [`NO_BIN`] when excluded.
    bins_of: Vec<u32>,
    /// Per-pixel `idev^2`, or `None` for Poisson.
    idev2: Option<Vec<f64>>,
    edges: Vec<f64>,
    /// Unmasked pixels per bin.
    pixels: Vec<u64>,
    /// Mean `|q|` of each bin's pixels (0 when empty).
    q: Vec<f64>,
    q_unit: &'static str,
    guinier_start: Option<f64>,
}

impl Saxs {
    /// The registry's constructor.
    pub fn prepare(
        config: &StageConfig,
        context: &mut Context,
    ) -> Result<Box<dyn DynAnalysis>, String> {
        Ok(Box::new(Saxs::new(config, context.shape, context.base)?))
    }

    /// Prepares the analysis of arrays of `shape` (`(Y, X)` or `(frames, Y, X)`).
    pub fn new(config: &StageConfig, shape: &[usize], base: &Path) -> Result<Saxs, String> {
        let (detector, frames, stack) = match *shape {
            [y, x] => ([y, x], 1, false),
            [f, y, x] => ([y, x], f, true),
            _ => {
                return Err(format!(
                    "needs a 2-D pattern or a 3-D stack, got shape {shape:?}"
                ));
            }
        };
        let (q, q_unit) = match opt_text(config, "q_map") {
            Some(text) => (q_from_map(text, base, detector)?, "as q_map"),
            None => {
                let g = Geometry {
                    beam_x: config.float("beam_x"),
                    beam_y: config.float("beam_y"),
                    pixel_size: config.float("pixel_size"),
                    distance: config.float("distance"),
                    wavelength: config.float("wavelength"),
                };
                g.check(detector)?;
                (g.q_map(detector), "1/nm")
            }
        };
        let mut used: Vec<bool> = vec![true; q.len()];
        if let Some(text) = opt_text(config, "mask") {
            let mask = read_plane("mask", text, base, detector)?;
            for (u, m) in used.iter_mut().zip(&mask) {
                *u = *m == 0.0;
            }
        }
        let idev2 = match opt_text(config, "idev") {
            Some(text) => {
                let idev = read_plane("idev", text, base, detector)?;
                if let Some(p) = (0..idev.len()).find(|&p| used[p] && !idev[p].is_finite()) {
                    return Err(format!(
                        "idev is not finite at unmasked pixel ({}, {})",
                        p / detector[1],
                        p % detector[1]
                    ));
                }
                Some(idev.iter().map(|s| s * s).collect())
            }
            None => None,
        };
        let log = config.str("q_scale") == "log";
        let usable = |v: f64| !log || v > 0.0;
        let data_lo = (0..q.len())
            .filter(|&p| used[p] && usable(q[p]))
            .map(|p| q[p])
            .fold(f64::INFINITY, f64::min);
        let data_hi = (0..q.len())
            .filter(|&p| used[p])
            .map(|p| q[p])
            .fold(f64::NEG_INFINITY, f64::max);
        if !data_lo.is_finite() {
            return Err("every pixel is masked: no q range".into());
        }
        let lo = config.opt_float("q_min").unwrap_or(data_lo);
        let hi = config.opt_float("q_max").unwrap_or(data_hi);
        if lo >= hi {
            return Err(format!(
                "empty q range: q_min = {lo} is not below q_max = {hi} (unmasked pixels span {data_lo}..{data_hi} {q_unit})"
            ));
        }
        if log && lo <= 0.0 {
            return Err(format!("q_min = {lo} must be > 0 with q_scale = \"log\""));
        }
        let n = config.int("q_bins") as usize;
        let edges = bin_edges(lo, hi, n, log);
        let mut pixels = vec![0u64; n];
        let mut q_sum = vec![0.0; n];
        let bins_of: Vec<u32> = (0..q.len())
            .map(|p| match bin_of(&edges, q[p]).filter(|_| used[p]) {
                Some(b) => {
                    pixels[b as usize] += 1;
                    q_sum[b as usize] += q[p];
                    b
                }
                None => NO_BIN,
            })
            .collect();
        if pixels.iter().all(|&c| c == 0) {
            return Err(format!(
                "every q bin is empty: no unmasked pixel has q in [q_min, q_max] = [{lo}, {hi}] (unmasked pixels span {data_lo}..{data_hi} {q_unit})"
            ));
        }
        let q_mean = q_sum
            .iter()
            .zip(&pixels)
            .map(|(s, &c)| if c == 0 { 0.0 } else { s / c as f64 })
            .collect();
        Ok(Saxs {
            detector,
            frames,
            stack,
            bins_of,
            idev2,
            edges,
            pixels,
            q: q_mean,
            q_unit,
            guinier_start: config.opt_float("guinier_q_start"),
        })
    }

    fn bins(&self) -> usize {
        self.pixels.len()
    }

    /// The pixels of one row along axis 0: an image row of a pattern, a whole frame of a stack.
    fn row_pixels(&self, row: usize) -> std::ops::Range<usize> {
        if self.stack {
            0..self.detector[0] * self.detector[1]
        } else {
            let x = self.detector[1];
            row * x..(row + 1) * x
        }
    }
}

/// Mergeable partial of the integration over a range of rows along axis 0.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SaxsPartial {
    /// First row covered.
    first_row: usize,
    /// Per row, per bin: sum of the original, of the decoded, of the variance.
    sums: Vec<[f64; 3]>,
    /// Pixels summed per bin (over rows, and frames).
    counts: Vec<u64>,
}

/// A Guinier fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guinier {
    /// Radius of gyration, in units of 1/q.
    pub rg: f64,
    /// Forward intensity.
    pub i0: f64,
    /// Bins fitted.
    pub points: usize,
    /// Largest q fitted.
    pub q_max: f64,
    /// Whether the range stopped changing.
    pub converged: bool,
}

/// Unweighted least squares `y = a + b x`: `(b, a)`.
fn line_fit(x: &[f64], y: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    let slope = sxy / sxx;
    (slope, my - slope * mx)
}

/// The Guinier fit of the points `(q, i)` (ascending `q`, `i > 0`) iterated from the limit
/// `start` (see the module doc); `Err` says why there is no Guinier region.
pub fn guinier(q: &[f64], i: &[f64], start: f64) -> Result<Guinier, String> {
    let mut limit = start;
    let mut last: Option<Guinier> = None;
    for _ in 0..GUINIER_MAX_FITS {
        let n = q.partition_point(|&v| v <= limit);
        if last.is_some_and(|g| g.points == n) {
            return Ok(Guinier {
                converged: true,
                ..last.expect("checked")
            });
        }
        if n < 3 {
            return Err(format!("{n} bins with I > 0 up to q = {limit}, 3 needed"));
        }
        let x: Vec<f64> = q[..n].iter().map(|v| v * v).collect();
        let y: Vec<f64> = i[..n].iter().map(|v| v.ln()).collect();
        let (slope, intercept) = line_fit(&x, &y);
        if slope.is_nan() || slope >= 0.0 {
            return Err(format!(
                "ln I rises with q^2 up to q = {limit} (slope {slope})"
            ));
        }
        let rg = (-3.0 * slope).sqrt();
        last = Some(Guinier {
            rg,
            i0: intercept.exp(),
            points: n,
            q_max: q[n - 1],
            converged: false,
        });
        limit = GUINIER_QRG / rg;
    }
    Ok(last.expect("at least one fit"))
}

/// `|b - a| / |a|`: 0 when equal, infinite when only `a` is 0.
fn rel_change(a: f64, b: f64) -> f64 {
    if a == b { 0.0 } else { (b - a).abs() / a.abs() }
}

/// The trapezoidal integral of `y` over `x`.
fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(x, y)| (x[1] - x[0]) * (y[0] + y[1]) / 2.0)
        .sum()
}

/// A per-bin array with `null` for empty bins.
fn per_bin(values: &[f64], nonempty: &[bool]) -> Value {
    Value::Array(
        values
            .iter()
            .zip(nonempty)
            .map(|(&v, &ok)| if ok { metric_json(v) } else { Value::Null })
            .collect(),
    )
}

/// The figure `iq` of a point's results: I(q) of the original and the decoded pattern on
/// log-log axes with the original's Guinier range shaded, above the relative difference
/// `(I_d - I_o) / I_o` per bin against `q` with the original's counting error bar
/// `± sigma_o / I_o` (the decoded curve is within its noise where the difference stays inside
/// it). Bins that are empty, or where `I_o` is not positive, are not drawn. The Porod invariant
/// integrates `q^2 I` over every bin drawn, so it has no range of its own to mark.
pub fn figures(results: &Value) -> Vec<FigureData> {
    let unit = results["q_unit"].as_str().unwrap_or("");
    let q = numbers(results, "q");
    let (i_o, i_d) = (
        numbers(results, "i_original"),
        numbers(results, "i_decoded"),
    );
    let sigma = numbers(results, "sigma_original");
    let q_label = format!("q ({unit})");
    let curve = |label: &str, role, points| Curve {
        label: label.into(),
        role,
        points,
        markers: false,
    };
    // Per bin with I_o > 0: the relative difference and the relative error bar.
    let relative = |f: &dyn Fn(f64, f64, f64) -> f64| -> Vec<Option<f64>> {
        (0..q.len())
            .map(|b| match (i_o.get(b)?, i_d.get(b)?, sigma.get(b)?) {
                (Some(o), Some(d), Some(s)) if *o > 0.0 => Some(f(*o, *d, *s)),
                _ => None,
            })
            .collect()
    };
    let difference = relative(&|o, d, _| (d - o) / o);
    let bar = relative(&|o, _, s| s / o);
    let minus_bar: Vec<Option<f64>> = bar.iter().map(|b| b.map(|b| -b)).collect();
    let linear = (true, false);
    let log_log = (true, true);
    let mut spans = Vec::new();
    let first_q = pairs(&q, &i_o, log_log).first().map(|p| p.0);
    if let (Some(from), Some(to)) = (first_q, number(results, "guinier_q_max_original"))
        && from < to
    {
        let rg = number(results, "rg_original").map_or(String::new(), |rg| {
            let length = unit
                .strip_prefix("1/")
                .map_or(String::new(), |u| format!(" {u}"));
            format!(", Rg = {}{length}", short(rg))
        });
        spans.push(Span {
            label: format!("Guinier{rg}"),
            from,
            to,
        });
    }
    let intensity = Panel {
        x_label: q_label.clone(),
        y_label: "I(q)".into(),
        log_x: true,
        log_y: true,
        curves: vec![
            curve("original", Role::Original, pairs(&q, &i_o, log_log)),
            curve("decoded", Role::Decoded, pairs(&q, &i_d, log_log)),
        ],
        spans,
        raster: None,
    };
    let error = Panel {
        x_label: q_label,
        y_label: "(I_d - I_o) / I_o".into(),
        log_x: true,
        log_y: false,
        curves: vec![
            curve("± counting error", Role::Original, pairs(&q, &bar, linear)),
            curve("", Role::Original, pairs(&q, &minus_bar, linear)),
            curve(
                "decoded - original",
                Role::Difference,
                pairs(&q, &difference, linear),
            ),
        ],
        spans: Vec::new(),
        raster: None,
    };
    let chi2 = number(results, "chi2_reduced").map_or("-".into(), short);
    vec![FigureData {
        name: "iq",
        title: format!("chi2_reduced = {chi2}"),
        panels: vec![intensity, error],
        notes: vec![
            "I(q) on log-log axes, original and decoded; the shaded range is the original's Guinier fit. Below: the relative difference per q bin and the original's counting error bar (± sigma / I); the Porod invariant integrates q² I over every bin drawn.".into(),
        ],
    }]
}

impl Analysis for Saxs {
    type Fit = ();
    type Partial = SaxsPartial;

    fn fit(&self, _histogram: Option<&Histogram>) -> Result<(), String> {
        Ok(())
    }

    fn partial(&self, _fit: &(), s: &Slabs) -> Result<SaxsPartial, String> {
        s.original.check_same_shape(s.decoded)?;
        let local = s.core.start - s.held.start..s.core.end - s.held.start;
        let original = s.original.slice_rows(local.clone()).to_f64();
        let decoded = s.decoded.slice_rows(local).to_f64();
        let (original, decoded) = (
            original.as_slice().expect("fresh arrays are contiguous"),
            decoded.as_slice().expect("fresh arrays are contiguous"),
        );
        let bins = self.bins();
        let mut sums = vec![[0.0; 3]; s.core.len() * bins];
        let mut counts = vec![0u64; bins];
        let mut at = 0;
        for (k, row) in s.core.clone().enumerate() {
            let sums = &mut sums[k * bins..(k + 1) * bins];
            for pixel in self.row_pixels(row) {
                let (o, d) = (original[at], decoded[at]);
                at += 1;
                let b = self.bins_of[pixel];
                if b == NO_BIN {
                    continue;
                }
                let variance = match &self.idev2 {
                    Some(v) => v[pixel],
                    None => o.max(1.0),
                };
                let cell = &mut sums[b as usize];
                cell[0] += o;
                cell[1] += d;
                cell[2] += variance;
                counts[b as usize] += 1;
            }
        }
        Ok(SaxsPartial {
            first_row: s.core.start,
            sums,
            counts,
        })
    }

    fn merge(&self, total: &mut SaxsPartial, next: SaxsPartial) -> Result<(), String> {
        let rows = total.sums.len() / self.bins();
        if next.first_row != total.first_row + rows {
            return Err(format!(
                "partials out of order: rows from {} after rows {}..{}",
                next.first_row,
                total.first_row,
                total.first_row + rows
            ));
        }
        total.sums.extend(next.sums);
        for (t, n) in total.counts.iter_mut().zip(next.counts) {
            *t += n;
        }
        Ok(())
    }

    fn finish(&self, _fit: &(), total: SaxsPartial, _shape: &[usize]) -> Result<Value, String> {
        let bins = self.bins();
        let mut sum = vec![[0.0; 3]; bins];
        for row in total.sums.chunks(bins) {
            for (s, r) in sum.iter_mut().zip(row) {
                for c in 0..3 {
                    s[c] += r[c];
                }
            }
        }
        let expected: Vec<u64> = self
            .pixels
            .iter()
            .map(|&p| p * self.frames as u64)
            .collect();
        if total.counts != expected {
            return Err("the partials do not cover every row of the data".into());
        }
        let nonempty: Vec<bool> = self.pixels.iter().map(|&p| p > 0).collect();
        let mean = |c: usize| -> Vec<f64> {
            sum.iter()
                .zip(&self.pixels)
                .map(|(s, &n)| if n == 0 { 0.0 } else { s[c] / n as f64 })
                .collect()
        };
        let (i_o, i_d) = (mean(0), mean(1));
        let variance: Vec<f64> = sum
            .iter()
            .zip(&self.pixels)
            .map(|(s, &n)| {
                if n == 0 {
                    0.0
                } else {
                    s[2] / (n as f64 * n as f64)
                }
            })
            .collect();
        for (name, values) in [
            ("original", &i_o),
            ("decoded", &i_d),
            ("variance", &variance),
        ] {
            if let Some(b) = values.iter().position(|v| !v.is_finite()) {
                return Err(format!("the {name} intensity of q bin {b} is not finite"));
            }
        }
        let used: Vec<usize> = (0..bins).filter(|&b| nonempty[b]).collect();

        let rel: Vec<f64> = used
            .iter()
            .filter(|&&b| i_o[b] != 0.0)
            .map(|&b| (i_d[b] - i_o[b]).abs() / i_o[b].abs())
            .collect();
        let rel_max = rel.iter().copied().fold(0.0, f64::max);
        let rel_mean = if rel.is_empty() {
            0.0
        } else {
            rel.iter().sum::<f64>() / rel.len() as f64
        };
        let chi: Vec<f64> = used
            .iter()
            .filter(|&&b| variance[b] > 0.0)
            .map(|&b| (i_d[b] - i_o[b]).powi(2) / variance[b])
            .collect();
        if chi.is_empty() {
            return Err("idev is 0 at every pixel of every non-empty bin: no chi-square".into());
        }
        let chi2 = chi.iter().sum::<f64>() / chi.len() as f64;

        let positive = |i: &[f64]| -> (Vec<f64>, Vec<f64>) {
            used.iter()
                .filter(|&&b| i[b] > 0.0)
                .map(|&b| (self.q[b], i[b]))
                .unzip()
        };
        let (q_o, v_o) = positive(&i_o);
        let (q_d, v_d) = positive(&i_d);
        let start = self.guinier_start.unwrap_or_else(|| {
            q_o.get(GUINIER_START_BINS.min(q_o.len()).saturating_sub(1))
                .copied()
                .unwrap_or(0.0)
        });
        let fit_o = guinier(&q_o, &v_o, start);
        let fit_d = guinier(&q_d, &v_d, start);

        let q_used: Vec<f64> = used.iter().map(|&b| self.q[b]).collect();
        let porod = |i: &[f64]| {
            let y: Vec<f64> = used.iter().map(|&b| self.q[b] * self.q[b] * i[b]).collect();
            trapezoid(&q_used, &y)
        };
        let (p_o, p_d) = (porod(&i_o), porod(&i_d));

        let mut out = Map::new();
        out.insert("q_unit".into(), json!(self.q_unit));
        out.insert("q_bins".into(), json!(bins));
        out.insert("empty_bins".into(), json!(bins - used.len()));
        out.insert("frames".into(), json!(self.frames));
        out.insert("rel_error_max".into(), metric_json(rel_max));
        out.insert("rel_error_mean".into(), metric_json(rel_mean));
        out.insert("rel_error_bins".into(), json!(rel.len()));
        out.insert("chi2_reduced".into(), metric_json(chi2));
        out.insert("chi2_bins".into(), json!(chi.len()));
        let change = match (&fit_o, &fit_d) {
            (Ok(o), Ok(d)) => [rel_change(o.rg, d.rg), rel_change(o.i0, d.i0)].map(metric_json),
            (Ok(_), Err(_)) => [metric_json(f64::INFINITY), metric_json(f64::INFINITY)],
            (Err(_), _) => [Value::Null, Value::Null],
        };
        let [rg_change, i0_change] = change;
        out.insert("rg_rel_change".into(), rg_change);
        out.insert("i0_rel_change".into(), i0_change);
        out.insert("porod_rel_change".into(), metric_json(rel_change(p_o, p_d)));
        out.insert("guinier_q_start".into(), metric_json(start));
        for (role, fit) in [("original", &fit_o), ("decoded", &fit_d)] {
            let (rg, i0, points, q_max, converged, why) = match fit {
                Ok(g) => (
                    metric_json(g.rg),
                    metric_json(g.i0),
                    json!(g.points),
                    metric_json(g.q_max),
                    json!(g.converged),
                    json!("ok"),
                ),
                Err(e) => (
                    Value::Null,
                    Value::Null,
                    json!(0),
                    Value::Null,
                    json!(false),
                    json!(e),
                ),
            };
            out.insert(format!("rg_{role}"), rg);
            out.insert(format!("i0_{role}"), i0);
            out.insert(format!("guinier_points_{role}"), points);
            out.insert(format!("guinier_q_max_{role}"), q_max);
            out.insert(format!("guinier_converged_{role}"), converged);
            out.insert(format!("guinier_{role}"), why);
        }
        out.insert("porod_invariant_original".into(), metric_json(p_o));
        out.insert("porod_invariant_decoded".into(), metric_json(p_d));
        out.insert(
            "q_edges".into(),
            Value::Array(self.edges.iter().map(|&e| metric_json(e)).collect()),
        );
        out.insert("q".into(), per_bin(&self.q, &nonempty));
        out.insert("pixels".into(), json!(self.pixels));
        out.insert("i_original".into(), per_bin(&i_o, &nonempty));
        out.insert("i_decoded".into(), per_bin(&i_d, &nonempty));
        let sigma: Vec<f64> = variance.iter().map(|v| v.sqrt()).collect();
        out.insert("sigma_original".into(), per_bin(&sigma, &nonempty));
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{IntoNdArray, NdArray};
    use crate::pipeline::params::StageConfig;
    use ndarray::{ArrayD, IxDyn};

    fn config(params: Vec<(&'static str, ParamValue)>) -> StageConfig {
        let mut all = vec![
            ("beam_x", ParamValue::Float(3.2)),
            ("beam_y", ParamValue::Float(4.7)),
            ("pixel_size", ParamValue::Float(1e-4)),
            ("distance", ParamValue::Float(1.0)),
            ("wavelength", ParamValue::Float(1e-10)),
            ("q_bins", ParamValue::Int(5)),
            ("q_scale", ParamValue::Str("lin".into())),
        ];
        for (name, value) in params {
            all.retain(|(n, _)| *n != name);
            all.push((name, value));
        }
        StageConfig {
            stage: "saxs",
            params: all,
        }
    }

    fn result(saxs: &Saxs, original: &NdArray, decoded: &NdArray) -> Value {
        let shape = original.shape().to_vec();
        let slabs = Slabs::whole(original, decoded, &shape);
        let partial = Analysis::partial(saxs, &(), &slabs).unwrap();
        Analysis::finish(saxs, &(), partial, &shape).unwrap()
    }

    #[test]
    fn edges_follow_numpy_histogram_rule() {
        let edges = bin_edges(0.0, 1.0, 4, false);
        assert_eq!(edges, [0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(bin_of(&edges, 0.25), Some(1));
        assert_eq!(bin_of(&edges, 0.2499), Some(0));
        assert_eq!(bin_of(&edges, 1.0), Some(3));
        assert_eq!(bin_of(&edges, 1.0001), None);
        assert_eq!(bin_of(&edges, -0.1), None);
        let log = bin_edges(0.01, 1.0, 2, true);
        assert!((log[1] - 0.1).abs() < 1e-15);
    }

    #[test]
    fn a_stack_integrates_as_its_summed_frames() {
        let shape = [2, 8, 9];
        let stack = ArrayD::from_shape_fn(IxDyn(&shape), |ix| {
            1.0 + ((ix[0] * 31 + ix[1] * 7 + ix[2] * 3) % 17) as f64
        });
        let summed = stack.sum_axis(ndarray::Axis(0));
        let config = config(vec![]);
        let base = Path::new(".");
        let frames = Saxs::new(&config, &shape, base).unwrap();
        let plane = Saxs::new(&config, &shape[1..], base).unwrap();
        let stack = stack.into_nd();
        let summed = summed.into_nd();
        let a = result(&frames, &stack, &stack);
        let b = result(&plane, &summed, &summed);
        assert_eq!(a["frames"], 2);
        // Every value is >= 1, so the Poisson variances add up as those of the summed image.
        for key in ["q", "i_original", "sigma_original", "pixels"] {
            assert_eq!(a[key], b[key], "{key}");
        }
        assert_eq!(a["chi2_reduced"], 0.0);
    }

    #[test]
    fn geometry_and_range_errors_name_the_parameter() {
        let base = Path::new(".");
        let err = |params| Saxs::new(&config(params), &[8, 9], base).unwrap_err();
        assert_eq!(
            err(vec![("beam_y", ParamValue::Float(-3.0))]),
            "beam_y = -3 is outside the detector (-0.5..7.5 pixels)"
        );
        assert!(err(vec![("pixel_size", ParamValue::Float(0.0))]).starts_with("pixel_size = 0"));
        assert!(
            err(vec![
                ("q_min", ParamValue::Float(0.5)),
                ("q_max", ParamValue::Float(0.5))
            ])
            .starts_with("empty q range: q_min = 0.5")
        );
        assert!(
            Saxs::new(&config(vec![]), &[8], base)
                .unwrap_err()
                .contains("2-D pattern or a 3-D stack")
        );
    }

    #[test]
    fn guinier_recovers_an_exact_exponential() {
        let rg = 2.0f64;
        let q: Vec<f64> = (1..40).map(|i| i as f64 * 0.02).collect();
        let i: Vec<f64> = q
            .iter()
            .map(|q| 7.0 * (-q * q * rg * rg / 3.0).exp())
            .collect();
        let g = guinier(&q, &i, 0.2).unwrap();
        assert!(
            (g.rg - rg).abs() < 1e-12 && (g.i0 - 7.0).abs() < 1e-11,
            "{g:?}"
        );
        assert!(g.converged);
        assert!(g.q_max <= GUINIER_QRG / rg);
        assert!(guinier(&q, &i, 0.03).unwrap_err().contains("3 needed"));
        let rising: Vec<f64> = q.iter().map(|q| (q * q).exp()).collect();
        assert!(guinier(&q, &rising, 0.2).unwrap_err().contains("rises"));
    }

    /// Partials of slabs of a stack, encoded, decoded (as another process would) and merged,
    /// finish as the originals: the same I(q), chi-square and fits.
    #[test]
    fn encoded_partials_merge_as_the_originals() {
        let (x, y) = crate::analysis::testing::frames(12, 16);
        let saxs = crate::analysis::testing::prepare(
            "[[analysis]]\nkind = \"saxs\"\nbeam_x = 7.5\nbeam_y = 7.5\npixel_size = 1e-4\n\
             distance = 1.0\nwavelength = 1e-10\nq_bins = 6\n",
            &x,
        );
        let result = crate::analysis::testing::check_round_trip(&*saxs, &x, &y, &[1, 4, 9]);
        assert_eq!(result["frames"], 12, "{result}");
    }

    /// The I(q) figure draws the analysis's own per-bin results: the curves are its `q`,
    /// `i_original` and `i_decoded` (empty bins left out), the difference panel its relative
    /// difference and error bar, and the shaded range its Guinier range.
    #[test]
    fn the_iq_figure_draws_the_results_of_the_analysis() {
        // A Guinier pattern of Rg = 5 nm around a beam at pixel (0.5, 0.5), decoded 1 % high
        // on every third pixel.
        let (rg, side) = (5.0, 32);
        let q_of = |y: f64, x: f64| {
            let r = 1e-4 * ((x - 0.5).powi(2) + (y - 0.5).powi(2)).sqrt();
            4.0 * PI * (r.atan() / 2.0).sin() / 1e-10 * 1e-9
        };
        let original = ArrayD::from_shape_fn(IxDyn(&[side, side]), |ix| {
            let q = q_of(ix[0] as f64, ix[1] as f64);
            1000.0 * (-q * q * rg * rg / 3.0).exp()
        });
        let mut k = 0;
        let decoded = original.mapv(|v| {
            k += 1;
            if k % 3 == 0 { v * 1.01 } else { v }
        });
        let config = config(vec![
            ("beam_x", ParamValue::Float(0.5)),
            ("beam_y", ParamValue::Float(0.5)),
            ("q_bins", ParamValue::Int(20)),
        ]);
        let saxs = Saxs::new(&config, &[side, side], Path::new(".")).unwrap();
        let results = result(&saxs, &original.into_nd(), &decoded.into_nd());
        let floats = |key: &str| -> Vec<f64> {
            results[key]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_f64)
                .collect()
        };
        let (q, i_o, i_d, sigma) = (
            floats("q"),
            floats("i_original"),
            floats("i_decoded"),
            floats("sigma_original"),
        );
        assert_eq!(
            q.len(),
            20 - results["empty_bins"].as_u64().unwrap() as usize
        );
        assert!(
            (results["rg_original"].as_f64().unwrap() - rg).abs() < 0.5,
            "{results}"
        );
        assert!(i_o.iter().all(|v| *v > 0.0), "{results}");
        let figures = figures(&results);
        assert_eq!(figures.len(), 1);
        let figure = &figures[0];
        assert_eq!(figure.name, "iq");
        let [intensity, error] = &figure.panels[..] else {
            panic!("two panels: {figure:?}")
        };
        assert!(intensity.log_x && intensity.log_y && error.log_x && !error.log_y);
        let zip = |a: &[f64], b: &[f64]| -> Vec<(f64, f64)> {
            a.iter().copied().zip(b.iter().copied()).collect()
        };
        assert_eq!(intensity.curves[0].role, Role::Original);
        assert_eq!(intensity.curves[0].points, zip(&q, &i_o));
        assert_eq!(intensity.curves[1].role, Role::Decoded);
        assert_eq!(intensity.curves[1].points, zip(&q, &i_d));
        let relative: Vec<f64> = i_o.iter().zip(&i_d).map(|(o, d)| (d - o) / o).collect();
        assert_eq!(error.curves[2].role, Role::Difference);
        assert_eq!(error.curves[2].points, zip(&q, &relative));
        let bar: Vec<f64> = sigma.iter().zip(&i_o).map(|(s, o)| s / o).collect();
        assert_eq!(error.curves[0].points, zip(&q, &bar));
        let minus: Vec<f64> = bar.iter().map(|b| -b).collect();
        assert_eq!(error.curves[1].points, zip(&q, &minus));
        let guinier = &intensity.spans[0];
        assert_eq!(
            (guinier.from, guinier.to),
            (q[0], results["guinier_q_max_original"].as_f64().unwrap())
        );
        assert!(
            guinier.label.starts_with("Guinier, Rg = "),
            "{}",
            guinier.label
        );
        // A point without results (a failed analysis) draws empty curves, never panics.
        let empty = super::figures(&serde_json::json!({}));
        assert!(
            empty[0]
                .panels
                .iter()
                .all(|p| p.curves.iter().all(|c| c.points.is_empty()))
        );
    }
}
