//! X-ray photon correlation spectroscopy: the multi-tau intensity autocorrelation `g2(q, tau)`
//! of a frame series in rings around the beam, with symmetric normalisation, and the fit of its
//! decay per ring, original against decoded.
//!
//! Input: a frame series of shape `(T, Y, X)`, time (frames) along axis 0. The runner streams
//! whole frames; each partial keeps the ring pixels' counts of its frames, and the partials
//! concatenate in frame order (exactly what one pass gives). Memory: `T x ring pixels x 8`
//! bytes for each of original and decoded, checked at prepare time (at most 2 GiB in all).
//!
//! **Rings.** Pixel `(y, x)` (centre at integer coordinates) lies at
//! `r = sqrt((x - beam_x)^2 + (y - beam_y)^2)` pixels from the beam. `q_rings` rings of equal
//! width `w = (r_max - r_min) / q_rings` split `r_min <= r < r_max`: ring
//! `i = min(floor((r - r_min) / w), q_rings - 1)`. Radii stay in pixels (`q` is monotonic in
//! `r`, so no wavelength, distance or pixel size is needed to compare original and decoded).
//! Pixels where the optional `mask` is nonzero are left out. A ring needs at least 2 pixels.
//!
//! **Multi-tau** (Schätzel 1990; Lumma et al. 2000, doi:10.1063/1.1287637), `m = per_level`
//! (even), `L = levels`. Level 0 is pixel `p`'s series `I^0(t) = I_p(t)`, `t < T_0 = T`; level
//! `l + 1` averages pairs of frames, `I^{l+1}(t) = (I^l(2t) + I^l(2t+1)) / 2`,
//! `t < T_{l+1} = floor(T_l / 2)`. Lags `k` (in level-`l` frames): `1..=m` at level 0 and
//! `m/2+1..=m` at levels `l >= 1`, i.e. `tau = k 2^l` frames (1..m, then steps of 2^l up to
//! `m 2^(L-1)`). With `N = T_l - k` overlapping pairs:
//! - `G2_p = (1/N) sum_{t=0}^{N-1} I^l(t) I^l(t+k)`,
//! - `I_past,p = (1/N) sum_{t=0}^{N-1} I^l(t)`, `I_future,p = (1/N) sum_{t=k}^{T_l-1} I^l(t)`,
//! - per pixel `g2_p(tau) = G2_p / (I_past,p I_future,p)` (symmetric normalisation);
//! - ring: `g2(q, tau)` = the mean of `g2_p` over the ring's pixels (the average of per-pixel
//!   ratios, which divides out a static speckle or intensity pattern, as XPCS-Eigen does), and
//!   `sigma(q, tau)` = their sample standard deviation (divisor n - 1) / sqrt(n), its
//!   standard error (pixels are independent samples).
//!   A pixel whose `I_past` or `I_future` is not positive is left out at that lag.
//!
//! The longest lag of the last level must be at most half its series: `T_{L-1} >= 2 m`, i.e.
//! `T >= 2 m 2^(L-1)`; `levels` defaults to the most that allow it, and a series too short
//! for the requested levels is an error at prepare time.
//!
//! **Fit** per ring: `g2(tau) = baseline + beta exp(-2 (tau / tau_c)^alpha)` (`tau`, `tau_c` in
//! frames) by weighted least squares with weights `1 / sigma(q, tau)^2`; `alpha` is fitted
//! unless given. Standard errors from the covariance `(J^T W J)^-1` (SciPy `curve_fit` with
//! `absolute_sigma=True`); see [`fit`]. Reported per ring and as maxima over rings:
//! `|delta tau_c| / tau_c` and `|delta tau_c| / sigma(tau_c)` (delta = decoded - original;
//! `tau_c` and `sigma(tau_c)` of the original), `|delta beta| / beta` and
//! `|delta beta| / sigma(beta)`, `max |g2_decoded - g2_original|` over rings and lags and the
//! same in units of the original's `sigma(q, tau)` (`g2_max_error_sigma`). A ring whose fit
//! fails (no convergence, singular or non-finite) is an error naming the ring, never NaN.
//!
//! Caveats of `sigma(tau_c)`: the fit treats the lags as independent although neighbouring
//! lags share most frames, and the per-pixel ratio is biased by O(tau_c / T) (it divides by
//! means over finite windows; the fitted baseline absorbs most of it, ~0.998 here). On the
//! generated series (`photonqa gen xpcs`, 512 frames) tau_c = 4 frames is recovered within
//! 2 sigma in every ring of the seeds tried; with tau_c = 10 frames one ring was 5.8 sigma
//! off, so keep `T` well above `100 tau_c` when the truth matters.
//!
//! **Two-time** (`two_time = "on"`; Sutton et al. 2003): per ring
//! and pair of frames `t1 < t2`, `C(t1, t2) = <I_p(t1) I_p(t2)>_ring / (<I_p(t1)>_ring
//! <I_p(t2)>_ring)` (ring averages over its pixels, so a frame of a ring without counts is an
//! error); reported are `two_time_max_abs_error`, the largest `|C_decoded - C_original|`, and
//! `two_time_rms_error` over all rings and pairs. Its cost, `T (T - 1) / 2 x ring pixels`
//! products per side, is capped at 1e11 at prepare time.
//!
//! **Peer.** `tests/peers/xpcs_fixtures.py` computes the same g2 with NumPy (same formulas,
//! its own summation order) and fits with `scipy.optimize.curve_fit`; `tests/xpcs.rs` checks
//! g2 to 1e-12 relative, the fits' parameters and the two-time errors (NumPy `X @ X.T`).
//!
//! References: K. Schätzel, "Noise on photon correlation data", Quantum Opt. 2 (1990) 287,
//! doi:10.1088/0954-8998/2/4/002. D. Lumma, L. B. Lurio, S. G. J. Mochrie, M. Sutton,
//! "Area detector based photon correlation in the regime of short data batches", Rev. Sci.
//! Instrum. 71 (2000) 3274, doi:10.1063/1.1287637. M. Sutton, K. Laaziri, F. Livet, F. Bley,
//! "Using coherence to measure two-time correlation functions", Opt. Express 11 (2003) 2268,
//! doi:10.1364/OE.11.002268.

pub mod fit;
pub mod speckle;

use rayon::prelude::*;
use serde_json::{Value, json};

use super::figure::{
    Curve, FigureData, Image, Panel, Raster, Role, Shading, Span, number, numbers, pairs, values,
};
use super::registry::AnalysisDef;
use super::{Analysis, Context, DynAnalysis, Slabs};
use crate::data::SourceSpec;
use crate::metrics::values::{metric_json, short};
use crate::pipeline::params::StageConfig;
use crate::pipeline::params::{ANY_FLOAT, Default, ParamDef, ParamKind};
use crate::stats::histogram::Histogram;
use fit::{Decay, fit_decay};

/// Registry entry.
pub static DEF: AnalysisDef = AnalysisDef {
    kind: "xpcs",
    doc: "XPCS: multi-tau g2(q, tau) with symmetric normalisation in rings around the beam, fit baseline + beta exp(-2 (tau/tau_c)^alpha) per ring; change of tau_c (relative and in fit sigmas), beta and g2",
    params: &[
        ParamDef {
            name: "beam_x",
            kind: ANY_FLOAT,
            default: Default::Derived("X / 2"),
            doc: "beam centre column (pixels; pixel centres at integers), inside the frame",
        },
        ParamDef {
            name: "beam_y",
            kind: ANY_FLOAT,
            default: Default::Derived("Y / 2"),
            doc: "beam centre row (pixels), inside the frame",
        },
        ParamDef {
            name: "q_rings",
            kind: ParamKind::Int { min: 1, max: 1000 },
            default: Default::Int(4),
            doc: "rings of equal width in pixels between r_min and r_max (radii in pixels: q grows with r, no wavelength needed)",
        },
        ParamDef {
            name: "r_min",
            kind: ParamKind::Float { min: 0.0, max: 1e9 },
            default: Default::Float(1.0),
            doc: "inner radius of the first ring (pixels from the beam)",
        },
        ParamDef {
            name: "r_max",
            kind: ParamKind::Float { min: 0.0, max: 1e9 },
            default: Default::Derived("distance from the beam to the nearest frame edge"),
            doc: "outer radius of the last ring (pixels, exclusive)",
        },
        ParamDef {
            name: "mask",
            kind: ParamKind::Text,
            default: Default::Derived("none"),
            doc: "pixel mask file.h5::/path or .npy of shape (Y, X); nonzero pixels are excluded",
        },
        ParamDef {
            name: "levels",
            kind: ParamKind::Int { min: 1, max: 30 },
            default: Default::Derived("the most with the longest lag at most half the series"),
            doc: "multi-tau levels; frames are averaged pairwise from one level to the next",
        },
        ParamDef {
            name: "per_level",
            kind: ParamKind::Int { min: 2, max: 256 },
            default: Default::Int(8),
            doc: "lags per level (even): 1..m at level 0, m/2+1..m (x 2^level frames) above",
        },
        ParamDef {
            name: "alpha",
            kind: ParamKind::Float {
                min: 0.05,
                max: 10.0,
            },
            default: Default::Derived("fitted"),
            doc: "fixed stretching exponent of the fit (1: simple exponential); fitted when absent",
        },
        ParamDef {
            name: "two_time",
            kind: ParamKind::Choice(&["off", "on"]),
            default: Default::Str("off"),
            doc: "also compare the two-time maps C(t1, t2) per ring (max and rms difference; T^2 x ring pixels products)",
        },
    ],
    columns: &[
        "tau_c_rel_change_max",
        "tau_c_change_sigma_max",
        "beta_rel_change_max",
        "beta_change_sigma_max",
        "g2_max_abs_error",
    ],
    complete: Some(complete),
    prepare: Some(Xpcs::prepare),
    figures: Some(figures),
};

/// Most memory the ring pixels' series may take (original and decoded together).
const MAX_SERIES_BYTES: f64 = 2.0 * 1024.0 * 1024.0 * 1024.0;

/// Longest side, in pixels, of the two-time difference map kept for the figure (the ring
/// with the largest difference, each pixel the largest-magnitude difference of its block of
/// frame pairs): 64 x 64 float32 values keep a point's results small.
pub const TWO_TIME_SIDE: usize = 64;

/// Most multiply-adds the two-time maps may take per side.
const MAX_TWO_TIME_PRODUCTS: f64 = 1e11;

/// A ring of pixels around the beam.
#[derive(Debug, Clone)]
struct Ring {
    /// Inner and outer radius (pixels).
    radii: [f64; 2],
    /// Its pixels' positions in [`Xpcs::pixels`].
    pixels: std::ops::Range<usize>,
}

/// The `xpcs` analysis, prepared for a frame series.
#[derive(Debug, Clone)]
pub struct Xpcs {
    frames: usize,
    frame_len: usize,
    /// Flat indices `y X + x` of the ring pixels, ring by ring, ascending within a ring.
    pixels: Vec<usize>,
    rings: Vec<Ring>,
    per_level: usize,
    levels: usize,
    alpha: Option<f64>,
    two_time: bool,
}

/// The ring pixels' counts over a range of frames, frame-major, for original and decoded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct XpcsPartial {
    frames: std::ops::Range<usize>,
    series: [Vec<f64>; 2],
}

fn given(config: &StageConfig, name: &str) -> bool {
    config.params.iter().any(|(n, _)| *n == name)
}

/// Checks what depends on no data: `per_level` even, `r_min < r_max`.
pub fn complete(config: &mut StageConfig) -> Result<(), String> {
    let m = config.int("per_level");
    if m % 2 != 0 {
        return Err(format!("per_level = {m} must be even"));
    }
    if let Some(r_max) = config.opt_float("r_max")
        && r_max <= config.float("r_min")
    {
        return Err(format!(
            "r_max = {r_max} must exceed r_min = {}",
            config.float("r_min")
        ));
    }
    Ok(())
}

/// The lags `(level, k)` of `levels` levels of `per_level` lags.
fn lags(levels: usize, per_level: usize) -> Vec<(usize, usize)> {
    (0..levels)
        .flat_map(|l| {
            let first = if l == 0 { 1 } else { per_level / 2 + 1 };
            (first..=per_level).map(move |k| (l, k))
        })
        .collect()
}

/// The symmetric-normalised `g2_p` of one pixel's series at every lag, `None` where its past or
/// future mean is not positive.
fn pixel_g2(mut series: Vec<f64>, levels: usize, per_level: usize) -> Vec<Option<f64>> {
    let mut out = Vec::new();
    for (level, k) in lags(levels, per_level) {
        if level > 0 && k == per_level / 2 + 1 {
            series = series
                .chunks_exact(2)
                .map(|w| (w[0] + w[1]) / 2.0)
                .collect();
        }
        let n = series.len() - k;
        let (past, future) = (&series[..n], &series[k..]);
        let g = past.iter().zip(future).map(|(a, b)| a * b).sum::<f64>() / n as f64;
        let p = past.iter().sum::<f64>() / n as f64;
        let f = future.iter().sum::<f64>() / n as f64;
        out.push((p > 0.0 && f > 0.0).then(|| g / (p * f)));
    }
    out
}

/// Per ring, `g2` and its standard error at every lag, and the fitted decay.
struct Correlation {
    g2: Vec<Vec<f64>>,
    sigma: Vec<Vec<f64>>,
    fits: Vec<Decay>,
}

impl Xpcs {
    /// The registry's constructor: rings from the geometry and the mask, levels checked
    /// against the series' length.
    pub fn prepare(
        config: &StageConfig,
        context: &mut Context,
    ) -> Result<Box<dyn DynAnalysis>, String> {
        let &[frames, ny, nx] = context.shape else {
            return Err(format!(
                "needs a frame series (frames, y, x), not shape {:?}",
                context.shape
            ));
        };
        let per_level = config.int("per_level") as usize;
        // The longest lag of level l is per_level 2^l frames; it must fit twice in the series.
        let needed = |levels: usize| 2 * per_level * (1usize << (levels - 1));
        let levels = if given(config, "levels") {
            let levels = config.int("levels") as usize;
            if frames < needed(levels) {
                return Err(format!(
                    "levels = {levels} with per_level = {per_level} needs at least {} frames (the longest lag, {} frames, at most half the series), the series has {frames}",
                    needed(levels),
                    needed(levels) / 2
                ));
            }
            levels
        } else {
            if frames < needed(1) {
                return Err(format!(
                    "the series has {frames} frames, per_level = {per_level} needs at least {}",
                    needed(1)
                ));
            }
            (1..=30)
                .take_while(|&l| frames >= needed(l))
                .last()
                .unwrap_or(1)
        };
        let beam_x = config.opt_float("beam_x").unwrap_or(nx as f64 / 2.0);
        let beam_y = config.opt_float("beam_y").unwrap_or(ny as f64 / 2.0);
        for (name, value, size) in [("beam_x", beam_x, nx), ("beam_y", beam_y, ny)] {
            if !(0.0..size as f64).contains(&value) {
                return Err(format!(
                    "{name} = {value} is outside the detector (0..{size})"
                ));
            }
        }
        let r_min = config.float("r_min");
        let r_max = match config.opt_float("r_max") {
            Some(r) => r,
            None => {
                let edge = beam_x
                    .min(nx as f64 - 1.0 - beam_x)
                    .min(beam_y)
                    .min(ny as f64 - 1.0 - beam_y);
                if edge <= r_min {
                    return Err(format!(
                        "r_max: the beam is {edge} pixels from the detector's edge, within r_min = {r_min}; give r_max"
                    ));
                }
                edge
            }
        };
        let mask = match given(config, "mask") {
            true => Some(read_mask(config.str("mask"), context, [ny, nx])?),
            false => None,
        };
        let count = config.int("q_rings") as usize;
        let width = (r_max - r_min) / count as f64;
        let mut members = vec![Vec::new(); count];
        for p in 0..ny * nx {
            if mask.as_ref().is_some_and(|m| m[p]) {
                continue;
            }
            let (dx, dy) = ((p % nx) as f64 - beam_x, (p / nx) as f64 - beam_y);
            let r = (dx * dx + dy * dy).sqrt();
            if r >= r_min && r < r_max {
                let i = (((r - r_min) / width).floor() as usize).min(count - 1);
                members[i].push(p);
            }
        }
        let mut pixels = Vec::new();
        let mut rings = Vec::new();
        for (i, m) in members.into_iter().enumerate() {
            let radii = [r_min + i as f64 * width, r_min + (i + 1) as f64 * width];
            if m.len() < 2 {
                return Err(format!(
                    "q_rings: ring {i} ({:.4}..{:.4} px from the beam) has {} unmasked pixel(s), g2's spread needs at least 2",
                    radii[0],
                    radii[1],
                    m.len()
                ));
            }
            let start = pixels.len();
            pixels.extend(m);
            rings.push(Ring {
                radii,
                pixels: start..pixels.len(),
            });
        }
        let bytes = 2.0 * 8.0 * frames as f64 * pixels.len() as f64;
        if bytes > MAX_SERIES_BYTES {
            return Err(format!(
                "the ring pixels' series would take {:.1} GiB ({frames} frames x {} pixels x 8 bytes, original and decoded); at most {:.0} GiB: use fewer frames, rings or a mask",
                bytes / 1024f64.powi(3),
                pixels.len(),
                MAX_SERIES_BYTES / 1024f64.powi(3)
            ));
        }
        let products = frames as f64 * (frames as f64 - 1.0) / 2.0 * pixels.len() as f64;
        if config.str("two_time") == "on" && products > MAX_TWO_TIME_PRODUCTS {
            return Err(format!(
                "two_time = \"on\" needs {products:.2e} products per side ({frames} frames squared / 2 x {} ring pixels), at most {MAX_TWO_TIME_PRODUCTS:.0e}: use fewer frames or rings",
                pixels.len()
            ));
        }
        Ok(Box::new(Xpcs {
            frames,
            frame_len: ny * nx,
            pixels,
            rings,
            per_level,
            levels,
            alpha: config.opt_float("alpha"),
            two_time: config.str("two_time") == "on",
        }))
    }

    /// Lags in frames.
    fn taus(&self) -> Vec<f64> {
        lags(self.levels, self.per_level)
            .into_iter()
            .map(|(l, k)| (k << l) as f64)
            .collect()
    }

    /// g2 per ring and lag, its standard errors and the fits, of frame-major `series`.
    fn correlate(&self, series: &[f64], side: &str) -> Result<Correlation, String> {
        let n = self.pixels.len();
        let per_pixel: Vec<Vec<Option<f64>>> = (0..n)
            .into_par_iter()
            .map(|j| {
                let s = (0..self.frames).map(|t| series[t * n + j]).collect();
                pixel_g2(s, self.levels, self.per_level)
            })
            .collect();
        let taus = self.taus();
        let mut out = Correlation {
            g2: Vec::new(),
            sigma: Vec::new(),
            fits: Vec::new(),
        };
        for (i, ring) in self.rings.iter().enumerate() {
            let (mut g2, mut sigma) = (Vec::new(), Vec::new());
            for (lag, &tau) in taus.iter().enumerate() {
                let values: Vec<f64> = per_pixel[ring.pixels.clone()]
                    .iter()
                    .filter_map(|p| p[lag])
                    .collect();
                let count = values.len() as f64;
                if values.len() < 2 {
                    return Err(format!(
                        "{side}: ring {i} has {} pixel(s) with counts at tau = {tau} frames, g2 needs at least 2",
                        values.len()
                    ));
                }
                let mean = values.iter().sum::<f64>() / count;
                let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count - 1.0);
                let se = (var / count).sqrt();
                if se <= 0.0 || !se.is_finite() {
                    return Err(format!(
                        "{side}: g2 of ring {i} has no spread over its pixels at tau = {tau} frames, nothing to weight the fit with"
                    ));
                }
                g2.push(mean);
                sigma.push(se);
            }
            let decay = fit_decay(&taus, &g2, &sigma, self.alpha)
                .map_err(|e| format!("{side}: ring {i}: {e}"))?;
            out.g2.push(g2);
            out.sigma.push(sigma);
            out.fits.push(decay);
        }
        Ok(out)
    }
    /// The largest and the root-mean-square difference of the decoded and the original
    /// two-time maps over every ring and every pair of frames `t1 < t2`, and the difference
    /// map of the ring where it is largest (the first on ties) with its index, for the figure:
    /// shrunk to at most [`TWO_TIME_SIDE`] pixels a side, each pixel the largest-magnitude
    /// difference of its block of frame pairs (0 where it holds none: the diagonal of an
    /// unshrunk map), as float32.
    fn two_time_errors(&self, series: &[Vec<f64>; 2]) -> Result<(f64, f64, usize, Raster), String> {
        let n = self.pixels.len();
        let (mut most, mut squares, mut pairs) = (0.0f64, 0.0, 0usize);
        let k = self.frames.div_ceil(TWO_TIME_SIDE).max(1);
        let side = self.frames.div_ceil(k);
        let stronger = |a: f64, b: f64| if b.abs() > a.abs() { b } else { a };
        let mut shown: Option<(f64, usize, Vec<f64>)> = None;
        for (i, ring) in self.rings.iter().enumerate() {
            let count = ring.pixels.len() as f64;
            let row = |side: usize, t: usize| {
                &series[side][t * n + ring.pixels.start..t * n + ring.pixels.end]
            };
            let mut means = [Vec::new(), Vec::new()];
            for (side, m) in means.iter_mut().enumerate() {
                for t in 0..self.frames {
                    let mean = row(side, t).iter().sum::<f64>() / count;
                    if mean <= 0.0 {
                        let name = ["original", "decoded"][side];
                        return Err(format!(
                            "two_time: {name} ring {i} has no counts in frame {t}"
                        ));
                    }
                    m.push(mean);
                }
            }
            let map = |side: usize, t1: usize, t2: usize| {
                let dot: f64 = row(side, t1)
                    .iter()
                    .zip(row(side, t2))
                    .map(|(a, b)| a * b)
                    .sum();
                dot / count / (means[side][t1] * means[side][t2])
            };
            let per_frame: Vec<(f64, f64, Vec<f64>)> = (0..self.frames)
                .into_par_iter()
                .map(|t1| {
                    let mut blocks = vec![0.0; side];
                    let (m, s) = (t1 + 1..self.frames).fold((0.0f64, 0.0), |(m, s), t2| {
                        let d = map(1, t1, t2) - map(0, t1, t2);
                        blocks[t2 / k] = stronger(blocks[t2 / k], d);
                        (m.max(d.abs()), s + d * d)
                    });
                    (m, s, blocks)
                })
                .collect();
            let mut ring_most = 0.0f64;
            let mut image = vec![0.0; side * side];
            for (t1, (m, s, blocks)) in per_frame.into_iter().enumerate() {
                ring_most = ring_most.max(m);
                squares += s;
                let row = &mut image[t1 / k * side..][..side];
                row.iter_mut()
                    .zip(blocks)
                    .for_each(|(p, d)| *p = stronger(*p, d));
            }
            most = most.max(ring_most);
            pairs += self.frames * (self.frames - 1) / 2;
            if shown.as_ref().is_none_or(|s| ring_most > s.0) {
                shown = Some((ring_most, i, image));
            }
        }
        let (_, ring, mut image) = shown.expect("at least one ring");
        // C is symmetric: the lower triangle mirrors the upper one.
        for b1 in 0..side {
            for b2 in 0..b1 {
                image[b1 * side + b2] = image[b2 * side + b1];
            }
        }
        let map = Raster {
            rows: side,
            cols: side,
            extent: (self.frames, self.frames),
            values: image.into_iter().map(|d| f64::from(d as f32)).collect(),
        };
        Ok((most, (squares / pairs as f64).sqrt(), ring, map))
    }
}

/// The mask of `spec` (nonzero = excluded), which must be `shape`.
fn read_mask(spec: &str, context: &Context, shape: [usize; 2]) -> Result<Vec<bool>, String> {
    let source = SourceSpec::parse(spec, context.base, None)
        .and_then(|s| s.open().map_err(|e| e.to_string()))
        .map_err(|e| format!("mask: {e}"))?;
    if source.shape() != shape {
        return Err(format!(
            "mask: shape {:?} is not the frames' {shape:?}",
            source.shape()
        ));
    }
    let mask = source
        .read_slab(0..shape[0])
        .map_err(|e| format!("mask: {e}"))?;
    Ok(mask.to_f64().iter().map(|&v| v != 0.0).collect())
}

fn floats(values: &[f64]) -> Value {
    values.iter().map(|&v| metric_json(v)).collect()
}

fn side_json(c: &Correlation, alpha_fitted: bool) -> Value {
    let fits: Vec<Value> = c
        .fits
        .iter()
        .map(|f| {
            let [baseline, beta, tau_c, alpha] = f.params;
            let [s_baseline, s_beta, s_tau_c, s_alpha] = f.sigma;
            json!({
                "baseline": metric_json(baseline),
                "beta": metric_json(beta),
                "tau_c": metric_json(tau_c),
                "alpha": metric_json(alpha),
                "baseline_sigma": metric_json(s_baseline),
                "beta_sigma": metric_json(s_beta),
                "tau_c_sigma": metric_json(s_tau_c),
                "alpha_sigma": if alpha_fitted { metric_json(s_alpha) } else { Value::Null },
                "chi2_reduced": metric_json(f.chi2_reduced),
                "iterations": f.iterations,
            })
        })
        .collect();
    json!({
        "g2": c.g2.iter().map(|g| floats(g)).collect::<Vec<_>>(),
        "g2_sigma": c.sigma.iter().map(|s| floats(s)).collect::<Vec<_>>(),
        "fits": fits,
    })
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

/// Lags at which a figure draws each fitted decay, log-spaced over the measured lags.
const FIT_CURVE_POINTS: usize = 64;

/// The figure `g2` of a point's results: per ring (one panel each), `g2(tau)` of the original
/// and the decoded frames as dots and their fitted decays as lines, on a log lag axis, with
/// the original's `tau_c \u{b1} sigma(tau_c)` shaded (the decoded `tau_c` within it moved less
/// than one standard error).
pub fn figures(results: &Value) -> Vec<FigureData> {
    let tau = numbers(results, "tau");
    let (lo, hi) = tau
        .iter()
        .flatten()
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), &t| {
            (lo.min(t), hi.max(t))
        });
    let grid: Vec<Option<f64>> = (0..FIT_CURVE_POINTS)
        .map(|k| Some(lo * (hi / lo).powf(k as f64 / (FIT_CURVE_POINTS - 1) as f64)))
        .collect();
    let side = |role: &str| &results[role];
    let rings = side("original")["g2"].as_array().map_or(0, Vec::len);
    let panels = (0..rings)
        .map(|r| {
            let mut curves = Vec::new();
            let mut spans = Vec::new();
            for (role, name) in [(Role::Original, "original"), (Role::Decoded, "decoded")] {
                let g2 = values(&side(name)["g2"][r]);
                curves.push(Curve {
                    label: name.into(),
                    role,
                    points: pairs(&tau, &g2, (true, false)),
                    markers: true,
                });
                let fit = &side(name)["fits"][r];
                let params = ["baseline", "beta", "tau_c", "alpha"].map(|k| number(fit, k));
                if let [Some(baseline), Some(beta), Some(tau_c), Some(alpha)] = params {
                    let p = [baseline, beta, tau_c, alpha];
                    let fitted: Vec<Option<f64>> =
                        grid.iter().map(|t| t.map(|t| fit::decay(&p, t))).collect();
                    curves.push(Curve {
                        label: format!("fit, tau_c = {}", short(tau_c)),
                        role,
                        points: pairs(&grid, &fitted, (true, false)),
                        markers: false,
                    });
                    if role == Role::Original
                        && let Some(sigma) = number(fit, "tau_c_sigma").filter(|s| s.is_finite())
                    {
                        spans.push(Span {
                            label: "tau_c \u{b1} sigma".into(),
                            from: (tau_c - sigma).max(lo),
                            to: tau_c + sigma,
                        });
                    }
                }
            }
            Panel {
                x_label: "lag tau (frames)".into(),
                y_label: format!("g2, ring {r}"),
                log_x: true,
                log_y: false,
                curves,
                spans,
                raster: None,
            }
        })
        .collect();
    let worst = number(results, "tau_c_change_sigma_max").map_or("-".into(), short);
    let rings: Vec<String> = results["ring_radii"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(r, edges)| {
            let edges: Vec<String> = values(edges).into_iter().flatten().map(short).collect();
            format!("{r}: {}", edges.join(" to "))
        })
        .collect();
    let mut figures = vec![FigureData {
        name: "g2",
        title: format!("largest tau_c change = {worst} sigma"),
        panels,
        notes: vec![format!(
            "g2(tau) per ring of the original and the decoded frames (dots) with their fitted decays baseline + beta exp(-2 (tau / tau_c)^alpha) (lines); the shaded range is the original's tau_c \u{b1} its standard error. Ring radii in pixels: {}.",
            rings.join("; ")
        )],
    }];
    let two_time = &results["two_time_figure"];
    if let Some(map) = Raster::from_json(&two_time["difference"]) {
        let ring = two_time["ring"].as_u64().unwrap_or(0);
        let most = number(results, "two_time_max_abs_error").map_or("-".into(), short);
        let shrunk = if map.rows < map.extent.0 {
            format!(
                " The {0} x {0} frame pairs are shown at {1} x {1} pixels, each the largest-magnitude difference of its block.",
                map.extent.0, map.rows
            )
        } else {
            String::new()
        };
        figures.push(FigureData {
            name: "two-time",
            title: format!("ring {ring}: largest two-time difference {most}"),
            panels: vec![Panel {
                x_label: "t2 (frame)".into(),
                y_label: "t1 (frame)".into(),
                log_x: false,
                log_y: false,
                curves: Vec::new(),
                spans: Vec::new(),
                raster: Some(Image {
                    raster: map,
                    shading: Shading::Difference("C_decoded - C_original"),
                    highlight: None,
                    highlight_label: String::new(),
                }),
            }],
            notes: vec![format!(
                "The difference C_decoded - C_original of the two-time maps C(t1, t2) of the ring where it is largest.{shrunk}"
            )],
        });
    }
    figures
}

impl Analysis for Xpcs {
    type Fit = ();
    type Partial = XpcsPartial;

    fn fit(&self, _histogram: Option<&Histogram>) -> Result<(), String> {
        Ok(())
    }

    fn partial(&self, _fit: &(), s: &Slabs) -> Result<XpcsPartial, String> {
        s.original.check_same_shape(s.decoded)?;
        let rows = s.core.start - s.held.start..s.core.end - s.held.start;
        let gather = |array: &crate::data::NdArray| {
            let values = array.slice_rows(rows.clone()).to_f64();
            let values = values.as_standard_layout();
            let flat = values.as_slice().expect("standard layout");
            flat.chunks_exact(self.frame_len)
                .flat_map(|frame| self.pixels.iter().map(move |&p| frame[p]))
                .collect::<Vec<f64>>()
        };
        Ok(XpcsPartial {
            frames: s.core.clone(),
            series: [gather(s.original), gather(s.decoded)],
        })
    }

    fn merge(&self, total: &mut XpcsPartial, next: XpcsPartial) -> Result<(), String> {
        if next.frames.start != total.frames.end {
            return Err(format!(
                "frames {:?} do not follow frames {:?}",
                next.frames, total.frames
            ));
        }
        total.frames.end = next.frames.end;
        let [a, b] = next.series;
        total.series[0].extend(a);
        total.series[1].extend(b);
        Ok(())
    }

    fn finish(&self, _fit: &(), total: XpcsPartial, _shape: &[usize]) -> Result<Value, String> {
        if total.frames != (0..self.frames) {
            return Err(format!(
                "the partials cover frames {:?}, not 0..{}",
                total.frames, self.frames
            ));
        }
        let original = self.correlate(&total.series[0], "original")?;
        let decoded = self.correlate(&total.series[1], "decoded")?;
        let per_ring = |f: &dyn Fn(&Decay, &Decay) -> f64| -> Vec<f64> {
            original
                .fits
                .iter()
                .zip(&decoded.fits)
                .map(|(o, d)| f(o, d))
                .collect()
        };
        let tau_rel = per_ring(&|o, d| (d.params[2] - o.params[2]).abs() / o.params[2]);
        let tau_sigma = per_ring(&|o, d| (d.params[2] - o.params[2]).abs() / o.sigma[2]);
        let beta_rel = per_ring(&|o, d| (d.params[1] - o.params[1]).abs() / o.params[1].abs());
        let beta_sigma = per_ring(&|o, d| (d.params[1] - o.params[1]).abs() / o.sigma[1]);
        let mut g2_error: f64 = 0.0;
        let mut g2_error_sigma: f64 = 0.0;
        for ((o, d), s) in original.g2.iter().zip(&decoded.g2).zip(&original.sigma) {
            for ((o, d), s) in o.iter().zip(d).zip(s) {
                g2_error = g2_error.max((d - o).abs());
                g2_error_sigma = g2_error_sigma.max((d - o).abs() / s);
            }
        }
        let columns = [
            ("tau_c_rel_change_max", max(&tau_rel)),
            ("tau_c_change_sigma_max", max(&tau_sigma)),
            ("beta_rel_change_max", max(&beta_rel)),
            ("beta_change_sigma_max", max(&beta_sigma)),
            ("g2_max_abs_error", g2_error),
            ("g2_max_error_sigma", g2_error_sigma),
        ];
        if let Some((name, value)) = columns.iter().find(|(_, v)| !v.is_finite()) {
            return Err(format!(
                "{name} is {value}: the original's beta, tau_c or a standard error is 0"
            ));
        }
        let mut out = serde_json::Map::new();
        if self.two_time {
            let (most, rms, ring, map) = self.two_time_errors(&total.series)?;
            out.insert("two_time_max_abs_error".into(), metric_json(most));
            out.insert("two_time_rms_error".into(), metric_json(rms));
            out.insert(
                "two_time_figure".into(),
                json!({"ring": ring, "difference": map.to_json()}),
            );
        }
        for (name, value) in columns {
            out.insert(name.into(), metric_json(value));
        }
        let alpha_fitted = self.alpha.is_none();
        out.extend([
            ("frames".into(), json!(self.frames)),
            ("levels".into(), json!(self.levels)),
            ("per_level".into(), json!(self.per_level)),
            ("alpha_fitted".into(), json!(alpha_fitted)),
            ("tau".into(), floats(&self.taus())),
            (
                "ring_radii".into(),
                self.rings.iter().map(|r| floats(&r.radii)).collect(),
            ),
            (
                "ring_pixels".into(),
                self.rings.iter().map(|r| r.pixels.len()).collect(),
            ),
            ("tau_c_rel_change".into(), floats(&tau_rel)),
            ("tau_c_change_sigma".into(), floats(&tau_sigma)),
            ("beta_rel_change".into(), floats(&beta_rel)),
            ("beta_change_sigma".into(), floats(&beta_sigma)),
            ("original".into(), side_json(&original, alpha_fitted)),
            ("decoded".into(), side_json(&decoded, alpha_fitted)),
        ]);
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::testing;

    /// The ring pixels' series of frames cut across slabs, encoded, decoded (as another
    /// process would) and merged, finish as the originals: the same g2 and fitted decays.
    #[test]
    fn encoded_partials_merge_as_the_originals() {
        let (x, y) = testing::frames(32, 16);
        let xpcs = testing::prepare(
            "[[analysis]]\nkind = \"xpcs\"\nq_rings = 2\nr_max = 5.0\n",
            &x,
        );
        testing::check_round_trip(&*xpcs, &x, &y, &[1, 9, 10, 25]);
    }

    /// With `two_time = "on"` the figure `two-time` shows the difference map of the ring with
    /// the largest difference: symmetric, its largest magnitude the reported
    /// `two_time_max_abs_error` (as float32), whatever the chunking; 0 on the diagonal (no
    /// pairs) when it is not shrunk; a series longer than [`TWO_TIME_SIDE`] frames is shrunk
    /// by blocks.
    #[test]
    fn the_two_time_figure_shows_the_difference_map_of_the_worst_ring() {
        for (frames, side) in [(32, 32), (130, 44)] {
            let (x, y) = testing::frames(frames, 16);
            let xpcs = testing::prepare(
                "[[analysis]]\nkind = \"xpcs\"\nq_rings = 2\nr_max = 5.0\nalpha = 1.0\ntwo_time = \"on\"\n",
                &x,
            );
            let results = testing::check_round_trip(&*xpcs, &x, &y, &[10]);
            let whole = testing::check_round_trip(&*xpcs, &x, &y, &[]);
            assert_eq!(results, whole);
            let figures = super::figures(&results);
            assert_eq!(figures.len(), 2);
            let figure = &figures[1];
            assert_eq!(figure.name, "two-time");
            let image = figure.panels[0].raster.as_ref().unwrap();
            assert_eq!(
                image.shading,
                super::Shading::Difference("C_decoded - C_original")
            );
            let map = &image.raster;
            assert_eq!(
                (map.rows, map.cols, map.extent),
                (side, side, (frames, frames))
            );
            let most = results["two_time_max_abs_error"].as_f64().unwrap();
            let largest = map.values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert_eq!(largest, f64::from(most as f32), "{frames} frames");
            for b1 in 0..side {
                for b2 in 0..side {
                    assert_eq!(map.values[b1 * side + b2], map.values[b2 * side + b1]);
                }
                if side == frames {
                    assert_eq!(map.values[b1 * side + b1], 0.0);
                }
            }
            let ring = results["two_time_figure"]["ring"].as_u64().unwrap();
            assert!(figure.title.starts_with(&format!("ring {ring}: ")));
        }
    }

    /// The g2 figure draws the analysis's results: per ring its g2 of both sides at its lags,
    /// the fitted decays through the fitted parameters, and the original's tau_c band.
    #[test]
    fn the_g2_figure_draws_each_ring_and_its_fits() {
        let (x, y) = testing::frames(32, 16);
        let xpcs = testing::prepare(
            "[[analysis]]\nkind = \"xpcs\"\nq_rings = 2\nr_max = 5.0\n",
            &x,
        );
        let results = testing::check_round_trip(&*xpcs, &x, &y, &[10]);
        let figure = &super::figures(&results)[0];
        assert_eq!(figure.name, "g2");
        assert_eq!(figure.panels.len(), 2);
        let tau = super::numbers(&results, "tau");
        for (r, panel) in figure.panels.iter().enumerate() {
            assert!(panel.log_x && !panel.log_y);
            let g2 = super::values(&results["decoded"]["g2"][r]);
            let curve = &panel.curves[2];
            assert_eq!(curve.role, super::Role::Decoded);
            assert!(curve.markers);
            assert_eq!(curve.points, super::pairs(&tau, &g2, (true, false)));
            let fit = &results["original"]["fits"][r];
            let p = ["baseline", "beta", "tau_c", "alpha"].map(|k| fit[k].as_f64().unwrap());
            let fitted = &panel.curves[1];
            assert_eq!(fitted.points.len(), super::FIT_CURVE_POINTS);
            for &(t, g) in &fitted.points {
                assert_eq!(g, super::fit::decay(&p, t));
            }
            assert_eq!(fitted.points[0].0, tau[0].unwrap());
            let last = tau.last().unwrap().unwrap();
            assert!((fitted.points[super::FIT_CURVE_POINTS - 1].0 - last).abs() < 1e-9 * last);
            let sigma = fit["tau_c_sigma"].as_f64().unwrap();
            assert_eq!(panel.spans[0].to, p[2] + sigma);
        }
    }
}
