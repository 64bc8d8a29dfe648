//! Fourier ring correlation (FRC) and radially averaged power spectra between an original and
//! a decoded array, accumulated plane by plane into ring sums that merge by addition; and the
//! Fourier shell correlation (FSC) of two whole volumes ([`fsc`], see the last section).
//!
//! van Heel & Schatz (2005), "Fourier shell correlation threshold criteria", J. Struct. Biol.
//! 151(3), 250-262, doi:[10.1016/j.jsb.2005.05.009](https://doi.org/10.1016/j.jsb.2005.05.009).
//!
//! # Definitions
//! Planes are the last two axes `(n1, n2)`: a 2D array is one plane, a 3D array a stack of
//! planes along axis 0. Every sum below runs over all planes (the FRC of a stack is computed
//! from the ring sums added over its slices). Per plane, `X` and `Y` are the unnormalised 2D
//! DFTs of the original and the decoded plane (NumPy's `fft2`), from values converted to
//! float64.
//!
//! - Sample `(ky, kx)` (signed, NumPy's `fftfreq`) has the frequency
//!   `f = sqrt((ky / n1)^2 + (kx / n2)^2)` cycles/pixel. With `m0 = min(n1, n2)`, ring width
//!   `d = 1 / m0` and `m = floor(m0 / 2)`, it belongs to ring `i = floor(f / d + 0.5)` when
//!   `i <= m` and is dropped otherwise. Ring `i` is at `2 i / m0` of the Nyquist frequency.
//! - Per ring `i`: `n_i` samples, `C_i = sum Re(X conj(Y))`, `Px_i = sum |X|^2`,
//!   `Py_i = sum |Y|^2`, over the whole plane (both Hermitian halves) and over the planes.
//! - `FRC_i = C_i / sqrt(Px_i Py_i)`; with a zero denominator, 1 when `Px_i = Py_i = 0`
//!   (nothing to disagree on) and 0 otherwise, never NaN (unless the inputs hold NaN).
//! - Half-bit threshold (van Heel & Schatz, with `n_i` the number of samples in the ring):
//!   `T_i = (0.2071 + 1.9102 / sqrt(n_i)) / (1.2071 + 0.9102 / sqrt(n_i))`. Ring 0 of a single
//!   plane is the DC sample alone: `T_0 = 1` and `FRC_0 = +-1`.
//! - Resolution: the first ring `i >= 1` with `FRC_i < T_i`. With `g = FRC - T`, the crossing
//!   is `i - 1 + t` rings, `t = g_(i-1) / (g_(i-1) - g_i)` (linear interpolation between rings
//!   `i - 1` and `i`; `t = 0` when ring 0 is itself below the curve), reported as a fraction of
//!   Nyquist, `2 (i - 1 + t) / m0`. Without a crossing: 1.0 and `crossed = false`.
//! - Degenerate cases of the resolution (`resolution`): a NaN in the curve (NaN or infinite
//!   inputs) makes it NaN (`crossed = false`), since comparisons with NaN are false and would
//!   otherwise read as "never crosses", a perfect 1.0. When every plane of both arrays is
//!   constant (no power beyond DC), there is nothing to correlate: the rings beyond DC are 1 by
//!   the zero-denominator rule (or, for sizes that are not powers of two, ratios of rounding
//!   noise), and the DC ring's one sample per plane correlates to `+-1` whatever the two
//!   constants are (a correlation ignores gain). The resolution is then 1.0
//!   (`crossed = false`) when the arrays are identical (`C_i = Px_i = Py_i` in every ring,
//!   which identical inputs give bit for bit) and 0.0 (`crossed = true`, at ring 0) when they
//!   differ: two different constant arrays resolve nothing. (An array and its multiple by
//!   `a > 0` with power beyond DC keep FRC 1: the FRC measures correlation, not gain; judge
//!   gain with the point metrics.)
//! - Power spectra: `Sx_i = Px_i / (n_i n1 n2)` (mean power per sample, per pixel), `Sy_i`
//!   likewise, and `relative_error_i = (Sy_i - Sx_i) / Sx_i`: 0 when both are 0, `+inf` when
//!   only `Sx_i` is 0. `max_abs_relative_error` is the largest `|relative_error_i|`.
//! - Sums without planes (only [`RingSums::new`]): FRC 1, threshold `1.9102 / 0.9102` (its
//!   limit for `n -> 0`), no crossing, power spectra 0.
//!
//! Ring membership is computed exactly, in integers: `i` is the largest integer with
//! `(2 i - 1)^2 n1^2 n2^2 <= 4 m0^2 (ky^2 n2^2 + kx^2 n1^2)`, so a sample exactly half-way
//! between two rings (e.g. `(ky, kx) = (2, 2)` of a 30x40 plane, at 2.5 rings) goes to the outer
//! one, as `floor(f / d + 0.5)` in exact arithmetic; float64 evaluations of `f / d + 0.5` may
//! land on either side of such ties. Axes are limited to 2^20 samples so that this fits in
//! `u128`.
//!
//! # Computation
//! Per plane, the 2D DFT over the half spectrum `kx = 0..=n2 / 2` (the FSC's first step, see
//! its section below): real FFTs (`realfft`) of length `n2` along each row, then complex FFTs
//! (`rustfft`) of length `n1` along each column `kx`, every `ky = 0..n1`. Sample `-kx` (not
//! stored) is the conjugate of `kx` with `ky` negated, in the same ring with the same terms, so
//! samples `0 < kx < n2 / 2` count twice and `kx = 0` and, for even `n2`, `kx = n2 / 2` once:
//! the sums equal the full-plane sums of the definition. When the FSC is computed too, its
//! plane transforms are summed into the rings ([`RingSums::add_transformed`]) instead of being
//! made twice; the sums are the same, bit for bit.
//!
//! The FFT plans and the ring of every `(ky, kx)` are built by the first
//! [`RingSums::add_planes`] and kept (not serialised) for the next calls, and so are the
//! per-thread buffers (about `40 n1 n2` bytes per thread; fresh ones would cost page faults on
//! every call). Planes are processed in parallel on the current rayon pool, in batches of 64,
//! and each plane's sums are added to the totals in plane order: results do not depend on the
//! thread count.
//!
//! # Numerics
//! The sums are plain float64 sums, which is accurate enough here. Every term of `Px` and `Py`
//! is non-negative, so their relative error is at most about `1.1e-16` times the number of
//! terms (per plane at most `n1 (n2 / 2 + 1)`, then one per plane). By Cauchy-Schwarz the
//! terms of `C` add up in absolute value to at most `sqrt(Px Py)`, so the error of `FRC_i` is
//! bounded likewise in absolute terms (below 4e-12 for 256x256 planes, 2e-12 more over 15000
//! planes; typical errors are far smaller). Against NumPy's full-plane `fft2` (pocketfft) the
//! FRC agrees within 4e-15 and the power spectra within 7e-15 relative on the fixtures of
//! `tests/spectral_crosscheck.rs`. Merging the sums of parts of a stack changes only the order
//! of additions (relative differences of order `1e-16`). Identical inputs give bit-identical
//! cross and power sums, hence an FRC of exactly 1 and relative errors of exactly 0. A ring
//! whose power is rounding noise only is not 0 and gets an arbitrary FRC: e.g. the rings
//! beyond DC of a constant plane are exactly 0 for power-of-two sizes (in rustfft as in
//! NumPy), but about `1e-16` of the DC amplitude for other sizes.
//!
//! # Fourier shell correlation
//! [`fsc`] compares two whole 3D volumes `(n0, n1, n2)` in 3D frequency space. Unlike the FRC
//! of a stack, which sums 2D rings over the slices and so cannot tell how the error varies
//! along axis 0, it resolves frequency along all three axes (slice-to-slice artefacts of a
//! codec working on chunks of slices show up in it). `X` and `Y` are the unnormalised 3D DFTs
//! of the whole original and decoded volumes (NumPy's `fftn`), from values converted to
//! float64.
//!
//! - Sample `(kz, ky, kx)` (signed, `fftfreq`) has the frequency
//!   `f = sqrt((kz / n0)^2 + (ky / n1)^2 + (kx / n2)^2)`. With `m0 = min(n0, n1, n2)`, shell
//!   width `d = 1 / m0` and `m = floor(m0 / 2)`, it belongs to shell `i = floor(f / d + 0.5)`
//!   when `i <= m` and is dropped otherwise (the corners beyond Nyquist of the shortest axis).
//!   Shell `i` is at `2 i / m0` of the Nyquist frequency.
//! - Per shell, over the whole spectrum: `n_i` samples, `C_i = sum Re(X conj(Y))`,
//!   `Px_i = sum |X|^2`, `Py_i = sum |Y|^2`; `FSC_i = C_i / sqrt(Px_i Py_i)` with the FRC's
//!   conventions for zero denominators; the half-bit threshold `T_i` of the FRC with `n_i` the
//!   samples in the shell; the resolution and `crossed` exactly as for the FRC (`2 (i - 1 + t)
//!   / m0`, 1.0 without a crossing, the same degenerate cases with shells for rings). Shell 0
//!   holds the DC sample (and, for elongated volumes, the lowest frequencies of the long axes).
//! - Shell membership is exact, in integers: with `q = kz^2 n1^2 n2^2 + ky^2 n0^2 n2^2 +
//!   kx^2 n0^2 n1^2` and `P` the product of the squares of the two axes other than a shortest
//!   one, shell `i >= 1` is reached when `(2 i - 1)^2 P <= 4 q` (`f m0 >= i - 1/2` multiplied
//!   by `4 n0^2 n1^2 n2^2 / m0^2`; both sides stay below 2^122 for axes up to 2^20, in `u128`).
//!   A sample exactly half-way goes to the outer shell, e.g. `(0, 2, 2)` of a 40x30x40 volume,
//!   at 2.5 shells. Along each line of axis 0 the shell never decreases with `|kz|`, so it is
//!   found by walking outwards, without square roots.
//!
//! Computation: two half spectra (`kx = 0..=n2 / 2`) of `n0 n1 (n2 / 2 + 1)` complex float64
//! values each. First, plane by plane ([`PlaneSpectra::of`], on each chunk as a run streams
//! the volumes, so that they are never held whole), rows are read and converted to float64 one
//! at a time (the inputs are never copied, whatever their memory layout), transformed with
//! real FFTs (`realfft`) along the last axis, transposed 8 rows at a time and transformed with
//! complex FFTs (`rustfft`) along axis 1. Then ([`PlaneSpectra::fsc`]) tasks of 16 lines
//! along axis 0 (one `kx`, 16 consecutive `ky`) are gathered from the planes, transformed with
//! complex FFTs along axis 0 and summed into the shells, with weight 2 for `0 < kx < n2 / 2`
//! (sample `-k`, not stored, is in the same shell with the same terms) and 1 for `kx = 0` and,
//! for even `n2`, `kx = n2 / 2`. Tasks run in parallel in batches of 256, each summing its
//! lines in a fixed order, and their sums are added to the totals in task order, so the result
//! does not depend on the thread count nor on how the planes were cut into chunks (bit for
//! bit). Memory ([`fsc_memory`]): the two half spectra, `32 n0 n1 (n2 / 2 + 1)` bytes (258 MiB
//! for 256^3, twice the two float32 inputs; 14.8 GiB for 15000x256x256), asked for in 2 MiB
//! pages (their 4 KiB page faults took almost half the CPU time), plus per thread about
//! `512 n0` bytes of buffers, and the FFT plans. `photonqa metrics --only fsc` on a 256^3
//! float32 pair: 0.34 s of CPU time, peak RSS 294 MiB (2026-12-07, shared 2-core EPYC,
//! release build; 0.47 s and 429 MiB when the volumes were gathered whole first).
//!
//! Numerics: every `Px_i`, `Py_i` term is non-negative; a task sums at most `16 n0` terms per
//! shell and the totals add at most `(n2 / 2 + 1) ceil(n1 / 16)` task sums, so their relative
//! rounding error is below about `1.1e-16` times the sum of those two counts (7e-13 for
//! 256^3), and `C_i` is bounded likewise relative to `sqrt(Px_i Py_i)`, besides the FFTs' own
//! rounding; typical errors are far smaller. Against NumPy's `fftn` (pocketfft) the FSC agrees within 4.2e-15 relative on the
//! fixtures of `tests/spectral_crosscheck.rs`; thresholds and frequencies are bit-identical.
//! Identical volumes give bit-identical sums, hence an FSC of exactly 1.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use ndarray::Axis;
use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::data::{Element, NdArray, c_order, check_same_shape};
use crate::metrics::values::metric_json;
use crate::with_array;

/// Constant term of the numerator of the half-bit curve.
const HALF_BIT_NUM: f64 = 0.2071;
/// Coefficient of `1 / sqrt(n)` in the numerator of the half-bit curve.
const HALF_BIT_NUM_N: f64 = 1.9102;
/// Constant term of the denominator of the half-bit curve.
const HALF_BIT_DEN: f64 = 1.2071;
/// Coefficient of `1 / sqrt(n)` in the denominator of the half-bit curve.
const HALF_BIT_DEN_N: f64 = 0.9102;
/// Longest plane axis: the exact ring test multiplies six axis lengths in `u128`.
const MAX_AXIS: usize = 1 << 20;
/// Planes transformed in parallel before their sums are added, in plane order, to the totals.
const BATCH: usize = 64;
/// Rows transformed before their spectra are transposed into columns (a cache line of f64).
const BLOCK: usize = 8;
/// Ring index of a sample beyond the last ring.
const DROPPED: u32 = u32::MAX;

/// Mergeable ring sums of the FRC and the power spectra (see the module documentation) over
/// the planes added so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RingSums {
    /// Shape `(n1, n2)` of every plane.
    pub plane: [usize; 2],
    /// Number of planes added.
    pub planes: u64,
    /// Samples per ring `n_i` (rings `0..=min(n1, n2) / 2`), summed over the planes.
    pub samples: Vec<u64>,
    /// Per ring: `C_i`, the sum of `Re(X conj(Y))`.
    pub cross: Vec<f64>,
    /// Per ring: `Px_i`, the sum of `|X|^2` (original).
    pub power_original: Vec<f64>,
    /// Per ring: `Py_i`, the sum of `|Y|^2` (decoded).
    pub power_decoded: Vec<f64>,
    /// Whether every plane added so far is constant in both arrays (true without planes): the
    /// degenerate case of the resolution (see the module documentation).
    pub flat: bool,
    /// FFT plans, ring table and spare buffers for the plane shape, built by the first
    /// [`RingSums::add_planes`] (not serialised, ignored by comparisons).
    #[serde(skip)]
    cache: ShapeCache,
}

impl RingSums {
    /// Empty sums for planes of shape `plane` (`(n1, n2)`, the last two axes), with rings
    /// `0..=min(n1, n2) / 2`.
    pub fn new(plane: [usize; 2]) -> RingSums {
        let rings = plane[0].min(plane[1]) / 2 + 1;
        RingSums {
            plane,
            planes: 0,
            flat: true,
            samples: vec![0; rings],
            cross: vec![0.0; rings],
            power_original: vec![0.0; rings],
            power_decoded: vec![0.0; rings],
            cache: ShapeCache::default(),
        }
    }

    /// Adds the planes of `original` and `decoded`: one plane for 2D arrays, a stack of planes
    /// along axis 0 for 3D arrays. The arrays must have the same shape, with planes of the
    /// shape given to [`RingSums::new`], at least 2x2; their dtypes may differ (values are
    /// converted to float64). On error `self` is unchanged. Planes are transformed in parallel
    /// on the current rayon pool; the result does not depend on the thread count.
    pub fn add_planes(&mut self, original: &NdArray, decoded: &NdArray) -> Result<(), String> {
        let planes = self.check_planes(original, decoded)?;
        let shared = self.shared();
        let layout = &shared.layout;
        let (x, y) = (slab_rows(original), slab_rows(decoded));
        let (x, y) = (&*x, &*y);
        self.add_sums(layout, original, decoded, planes, |batch| {
            batch
                .into_par_iter()
                .map_init(
                    || shared.spare.take(|| RingWork::new(&layout.plans)),
                    |w, p| {
                        let RingWork {
                            plane,
                            x: sx,
                            y: sy,
                        } = &mut **w;
                        plane.transform(&layout.plans, x, p, sx);
                        plane.transform(&layout.plans, y, p, sy);
                        layout.plane_sums(sx, sy)
                    },
                )
                .collect()
        });
        Ok(())
    }

    /// [`RingSums::add_planes`] of the 3D slabs `original` and `decoded`, whose planes'
    /// transforms `spectra` (made for the FSC, [`PlaneSpectra::of`]) already holds from its
    /// plane `first` on: the same sums, bit for bit, without transforming the planes again.
    pub fn add_transformed(
        &mut self,
        original: &NdArray,
        decoded: &NdArray,
        spectra: &PlaneSpectra,
        first: usize,
    ) -> Result<(), String> {
        let planes = self.check_planes(original, decoded)?;
        if original.shape().len() != 3 || spectra.plane != self.plane {
            return Err(format!(
                "FRC: spectra of {:?} planes cannot give the sums of planes of shape {:?}",
                spectra.plane,
                original.shape()
            ));
        }
        let [sx, sy] = spectra.planes();
        let (sx, sy) = match (sx.get(first..first + planes), sy.get(first..first + planes)) {
            (Some(sx), Some(sy)) => (sx, sy),
            _ => {
                return Err(format!(
                    "FRC: planes {first}..{} are beyond the {} planes of the spectra",
                    first + planes,
                    sx.len()
                ));
            }
        };
        let shared = self.shared();
        let layout = &shared.layout;
        self.add_sums(layout, original, decoded, planes, |batch| {
            batch
                .into_par_iter()
                .map(|p| layout.plane_sums(sx[p], sy[p]))
                .collect()
        });
        Ok(())
    }

    /// The number of planes of `original` and `decoded`, checked against these sums (see
    /// [`RingSums::add_planes`]).
    fn check_planes(&self, original: &NdArray, decoded: &NdArray) -> Result<usize, String> {
        let shape = original.shape();
        original
            .check_same_shape(decoded)
            .map_err(|e| format!("FRC: {e}"))?;
        let (planes, plane) = match *shape {
            [n1, n2] => (1, [n1, n2]),
            [p, n1, n2] => (p, [n1, n2]),
            _ => {
                return Err(format!(
                    "FRC needs a 2D array (one plane) or a 3D stack of planes along axis 0, got \
                     shape {shape:?}"
                ));
            }
        };
        if plane != self.plane {
            return Err(format!(
                "FRC: planes of shape {plane:?} cannot be added to sums over planes of shape {:?}",
                self.plane
            ));
        }
        self.check_rings()?;
        let [n1, n2] = plane;
        if n1 < 2 || n2 < 2 {
            return Err(format!("the FRC needs at least 2x2 planes, got {n1}x{n2}"));
        }
        if n1.max(n2) > MAX_AXIS {
            return Err(format!(
                "FRC: planes of {n1}x{n2} are too large (at most {MAX_AXIS} samples per axis)"
            ));
        }
        Ok(planes)
    }

    /// The plans and ring table of the plane shape, built on first use.
    fn shared(&mut self) -> Arc<Shared> {
        Arc::clone(
            self.cache
                .0
                .get_or_insert_with(|| Arc::new(Shared::new(self.plane))),
        )
    }

    /// Adds the ring sums `[C.., Px.., Py..]` of planes `0..planes` of `original` and
    /// `decoded`, which `batch` gives for a range of planes, [`BATCH`] planes at a time and
    /// in plane order (so that the totals do not depend on the thread count).
    fn add_sums(
        &mut self,
        layout: &Layout,
        original: &NdArray,
        decoded: &NdArray,
        planes: usize,
        batch: impl Fn(Range<usize>) -> Vec<Vec<f64>>,
    ) {
        let rings = self.samples.len();
        for start in (0..planes).step_by(BATCH) {
            for s in batch(start..(start + BATCH).min(planes)) {
                let (c, rest) = s.split_at(rings);
                let (px, py) = rest.split_at(rings);
                add(&mut self.cross, c);
                add(&mut self.power_original, px);
                add(&mut self.power_decoded, py);
            }
        }
        for (n, c) in self.samples.iter_mut().zip(&layout.counts) {
            *n += c * planes as u64;
        }
        self.planes += planes as u64;
        let plane = self.plane[0] * self.plane[1];
        self.flat &= constant_parts(original, plane) && constant_parts(decoded, plane);
    }

    /// Adds the sums of `other` (planes of another part of the data), elementwise; an error
    /// (and `self` unchanged) if the plane shapes differ.
    pub fn merge(&mut self, other: &RingSums) -> Result<(), String> {
        if other.plane != self.plane {
            return Err(format!(
                "cannot merge FRC sums over planes of shape {:?} into sums over planes of shape \
                 {:?}",
                other.plane, self.plane
            ));
        }
        self.check_rings()?;
        other.check_rings()?;
        self.planes += other.planes;
        self.flat &= other.flat;
        for (n, m) in self.samples.iter_mut().zip(&other.samples) {
            *n += m;
        }
        add(&mut self.cross, &other.cross);
        add(&mut self.power_original, &other.power_original);
        add(&mut self.power_decoded, &other.power_decoded);
        Ok(())
    }

    /// The FRC as JSON: `planes`; per ring `frequency` (fraction of Nyquist, `2 i / m0`),
    /// `frc`, `half_bit` (threshold) and `samples`; `resolution` (fraction of Nyquist where the
    /// FRC first falls below the half-bit curve, 1.0 without a crossing) and `crossed`.
    /// Floats are written with [`metric_json`].
    pub fn frc(&self) -> Value {
        let frc = self.frc_values();
        let half_bit: Vec<f64> = self.samples.iter().map(|&n| half_bit(n)).collect();
        let m0 = self.plane[0].min(self.plane[1]);
        let (resolution, crossed) = if self.planes == 0 {
            (1.0, false)
        } else {
            let sums = [
                &self.cross[..],
                &self.power_original[..],
                &self.power_decoded[..],
            ];
            resolution(sums, self.flat, &frc, &half_bit, m0)
        };
        json!({
            "planes": self.planes,
            "frequency": floats(&self.frequencies()),
            "frc": floats(&frc),
            "half_bit": floats(&half_bit),
            "samples": self.samples,
            "resolution": metric_json(resolution),
            "crossed": crossed,
        })
    }

    /// The radially averaged power spectra as JSON: per ring `frequency` (fraction of
    /// Nyquist), `original` (`Sx_i`), `decoded` (`Sy_i`) and `relative_error`
    /// (`(Sy_i - Sx_i) / Sx_i`); and `max_abs_relative_error` (NaN when a relative error is).
    /// Floats are written with [`metric_json`] (`"inf"` where only `Sx_i` is 0). Sums of
    /// values divided by `scale` (see [`super::comparison::CompareSpec::scale`]) give spectra
    /// in the data's units, `scale^2` times theirs.
    pub fn power_spectrum(&self, scale: f64) -> Value {
        let pixels = (self.plane[0] * self.plane[1]) as u64;
        let mean = |power: &[f64]| -> Vec<f64> {
            power
                .iter()
                .zip(&self.samples)
                .map(|(&p, &n)| match n {
                    0 => 0.0,
                    n => p / (n * pixels) as f64,
                })
                .collect()
        };
        let unscaled =
            |spectrum: &[f64]| -> Vec<f64> { spectrum.iter().map(|s| s * scale * scale).collect() };
        let (sx, sy) = (mean(&self.power_original), mean(&self.power_decoded));
        let relative: Vec<f64> = sx
            .iter()
            .zip(&sy)
            .map(|(&x, &y)| match (x == 0.0, y == 0.0) {
                (true, true) => 0.0,
                (true, false) => f64::INFINITY,
                _ => (y - x) / x,
            })
            .collect();
        // `f64::max` ignores NaN: a NaN ring would vanish from the maximum.
        let max = relative.iter().fold(
            0.0f64,
            |m, r| {
                if r.is_nan() { f64::NAN } else { m.max(r.abs()) }
            },
        );
        json!({
            "frequency": floats(&self.frequencies()),
            "original": floats(&unscaled(&sx)),
            "decoded": floats(&unscaled(&sy)),
            "relative_error": floats(&relative),
            "max_abs_relative_error": metric_json(max),
        })
    }

    /// An error unless every per-ring vector has `min(n1, n2) / 2 + 1` entries (sums read
    /// from elsewhere may not).
    fn check_rings(&self) -> Result<(), String> {
        let rings = self.plane[0].min(self.plane[1]) / 2 + 1;
        let lengths = [
            self.samples.len(),
            self.cross.len(),
            self.power_original.len(),
            self.power_decoded.len(),
        ];
        if lengths.iter().any(|&n| n != rings) {
            return Err(format!(
                "FRC sums over {:?} planes need {rings} rings, got per-ring vectors of lengths \
                 {lengths:?}",
                self.plane
            ));
        }
        Ok(())
    }

    /// Frequency of each ring as a fraction of Nyquist, `2 i / min(n1, n2)`.
    fn frequencies(&self) -> Vec<f64> {
        let m0 = self.plane[0].min(self.plane[1]) as f64;
        (0..self.samples.len())
            .map(|i| if i == 0 { 0.0 } else { 2.0 * i as f64 / m0 })
            .collect()
    }

    /// `C_i / sqrt(Px_i Py_i)` per ring; 1 when `Px_i = Py_i = 0`, 0 when only one is 0.
    fn frc_values(&self) -> Vec<f64> {
        correlation(&self.cross, &self.power_original, &self.power_decoded)
    }
}

/// `c / sqrt(px py)` elementwise; 1 where `px = py = 0`, 0 where only one is 0.
fn correlation(cross: &[f64], px: &[f64], py: &[f64]) -> Vec<f64> {
    cross
        .iter()
        .zip(px)
        .zip(py)
        .map(|((&c, &px), &py)| {
            if px == 0.0 && py == 0.0 {
                return 1.0;
            }
            // sqrt(p p) is exactly p, so identical inputs give exactly 1; the product of the
            // roots only where the product overflows or underflows.
            let product = px * py;
            let denominator = if product.is_normal() {
                product.sqrt()
            } else {
                px.sqrt() * py.sqrt()
            };
            if denominator == 0.0 {
                0.0
            } else {
                c / denominator
            }
        })
        .collect()
}

/// The half-bit threshold for a ring of `n` samples; for `n = 0` (no plane added) its limit
/// `1.9102 / 0.9102`.
fn half_bit(n: u64) -> f64 {
    if n == 0 {
        return HALF_BIT_NUM_N / HALF_BIT_DEN_N;
    }
    let s = (n as f64).sqrt();
    (HALF_BIT_NUM + HALF_BIT_NUM_N / s) / (HALF_BIT_DEN + HALF_BIT_DEN_N / s)
}

/// The resolution of a correlation curve `values` (FRC or FSC) with the half-bit curve
/// `threshold` and the sums `[C, Px, Py]` it came from, as a fraction of Nyquist for a shortest
/// axis of `m0` samples, and whether the curve crossed the threshold: the first crossing (see
/// [`crossing`]), 1.0 without one; NaN when the curve holds NaN; and in the degenerate case of
/// `flat` arrays (every plane, or the volume, constant in both), 1.0 for identical sums and 0.0
/// (crossed at ring 0) otherwise (see the module documentation).
fn resolution(
    sums: [&[f64]; 3],
    flat: bool,
    values: &[f64],
    threshold: &[f64],
    m0: usize,
) -> (f64, bool) {
    let [cross, px, py] = sums;
    if values.iter().any(|v| v.is_nan()) {
        return (f64::NAN, false);
    }
    let crossing = if flat {
        let identical = cross
            .iter()
            .zip(px)
            .zip(py)
            .all(|((c, x), y)| c == x && x == y);
        (!identical).then_some(0.0)
    } else {
        crossing(values, threshold)
    };
    match crossing {
        Some(rings) => (2.0 * rings / m0 as f64, true),
        None => (1.0, false),
    }
}

/// Where `frc` first falls below `threshold` at a ring `i >= 1`, in rings (interpolated
/// linearly in `frc - threshold` between rings `i - 1` and `i`); `None` without a crossing.
fn crossing(frc: &[f64], threshold: &[f64]) -> Option<f64> {
    let g: Vec<f64> = frc.iter().zip(threshold).map(|(f, t)| f - t).collect();
    let i = (1..g.len()).find(|&i| g[i] < 0.0)?;
    let (before, after) = (g[i - 1], g[i]);
    let t = if before > 0.0 {
        before / (before - after)
    } else {
        0.0
    };
    Some((i - 1) as f64 + t)
}

/// Whether every run of `len` consecutive values of `a` (in C order: its planes, or with
/// `len` its size the whole array) holds one value.
fn constant_parts(a: &NdArray, len: usize) -> bool {
    with_array!(a, a => c_order(a)
        .chunks(len.max(1))
        .all(|part| part.iter().all(|v| v.to_f64() == part[0].to_f64())))
}

/// `acc[i] += v[i]`.
fn add(acc: &mut [f64], v: &[f64]) {
    for (a, b) in acc.iter_mut().zip(v) {
        *a += b;
    }
}

/// Floats as JSON values ([`metric_json`]).
fn floats(values: &[f64]) -> Vec<Value> {
    values.iter().copied().map(metric_json).collect()
}

/// Ring `floor(f m0 + 0.5)` of sample `(ky, kx)` (`|ky| <= n1 / 2`, `|kx| <= n2 / 2`) of an
/// `n1` x `n2` plane, `m0 = min(n1, n2)`, computed exactly: the largest `i` with
/// `(2 i - 1)^2 n1^2 n2^2 <= 4 m0^2 (ky^2 n2^2 + kx^2 n1^2)`.
fn ring_of(ky: usize, kx: usize, n1: usize, n2: usize) -> u64 {
    let m0 = n1.min(n2);
    let (fy, fx) = (ky as f64 / n1 as f64, kx as f64 / n2 as f64);
    let scaled = (fy * fy + fx * fx).sqrt() * m0 as f64 + 0.5;
    // Within 1e-9 of f m0 + 0.5 (at most 2^20 * 0.71 + 0.5): exact away from the ties.
    if (scaled - scaled.round()).abs() > 1e-6 {
        return scaled.floor() as u64;
    }
    let (ky, kx, n1, n2, m0) = (ky as u128, kx as u128, n1 as u128, n2 as u128, m0 as u128);
    let four_q = 4 * m0 * m0 * (ky * ky * n2 * n2 + kx * kx * n1 * n1);
    let den = n1 * n1 * n2 * n2;
    // (2 i - 1)^2 den <= 4 q: ring i has been reached.
    let reached = |i: u128| i == 0 || (2 * i - 1) * (2 * i - 1) * den <= four_q;
    let mut i = scaled.round() as u128;
    while !reached(i) {
        i -= 1;
    }
    while reached(i + 1) {
        i += 1;
    }
    i as u64
}

/// A [`Shared`] built on first use; clones share it.
#[derive(Clone, Default)]
struct ShapeCache(Option<Arc<Shared>>);

impl PartialEq for ShapeCache {
    /// Always equal: the cache follows from the plane shape.
    fn eq(&self, _: &ShapeCache) -> bool {
        true
    }
}

impl fmt::Debug for ShapeCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "built"
        } else {
            "not built"
        })
    }
}

/// The [`Layout`] of a plane shape and spare [`RingWork`]s: fresh buffers cost page faults
/// (about as long as transforming a 256x256 plane pair), so they are reused across calls.
struct Shared {
    /// Plans and ring table.
    layout: Layout,
    /// Buffers not in use.
    spare: Spare<RingWork>,
}

impl Shared {
    fn new(plane: [usize; 2]) -> Shared {
        Shared {
            layout: Layout::new(plane),
            spare: Spare::new(),
        }
    }
}

/// What every plane of one shape shares: the plans of the plane transforms, the ring of each
/// sample of the half spectrum, the Hermitian weights and the samples per ring.
struct Layout {
    /// The transforms along the last axis and axis 1 (those of the FSC).
    plans: PlanePlans,
    /// Ring of sample `(ky, kx)` at `kx * n1 + ky` (`ky = 0..n1` in NumPy's order, as
    /// [`PlaneWork::transform`] writes the spectrum), or [`DROPPED`].
    ring: Vec<u32>,
    /// Weight of `kx`: 1 for 0 and (even `n2`) `n2 / 2`, 2 otherwise (for `-kx`).
    weight_x: Vec<f64>,
    /// Samples per ring in one full plane.
    counts: Vec<u64>,
    /// Number of rings, `min(n1, n2) / 2 + 1`.
    rings: usize,
}

impl Layout {
    fn new([n1, n2]: [usize; 2]) -> Layout {
        let plans = PlanePlans::new(n1, n2);
        let rings = n1.min(n2) / 2 + 1;
        let weight_x: Vec<f64> = (0..plans.half)
            .map(|kx| if kx == 0 || 2 * kx == n2 { 1.0 } else { 2.0 })
            .collect();
        let mut counts = vec![0u64; rings];
        let mut ring = Vec::with_capacity(n1 * plans.half);
        for (kx, wx) in weight_x.iter().enumerate() {
            for ky in 0..n1 {
                let i = ring_of(ky.min(n1 - ky), kx, n1, n2);
                if i < rings as u64 {
                    counts[i as usize] += *wx as u64;
                    ring.push(i as u32);
                } else {
                    ring.push(DROPPED);
                }
            }
        }
        Layout {
            plans,
            ring,
            weight_x,
            counts,
            rings,
        }
    }

    /// Ring sums `[C.., Px.., Py..]` of one plane from the 2D transforms `x` and `y` of the
    /// original and the decoded plane ([`PlaneWork::transform`]).
    fn plane_sums(&self, x: &[Complex<f64>], y: &[Complex<f64>]) -> Vec<f64> {
        let (n1, rings) = (self.plans.n1, self.rings);
        let mut sums = vec![0.0; 3 * rings];
        for (kx, &w) in self.weight_x.iter().enumerate() {
            let column = kx * n1..(kx + 1) * n1;
            let samples = self.ring[column.clone()]
                .iter()
                .zip(&x[column.clone()])
                .zip(&y[column]);
            for ((&r, a), c) in samples {
                if r == DROPPED {
                    continue;
                }
                let r = r as usize;
                // The same expression shape for all three, so that identical planes give
                // bit-identical cross and power sums.
                sums[r] += w * (a.re * c.re + a.im * c.im);
                sums[rings + r] += w * (a.re * a.re + a.im * a.im);
                sums[2 * rings + r] += w * (c.re * c.re + c.im * c.im);
            }
        }
        sums
    }
}

/// Buffers of one thread for the FRC: the plane transforms and the spectra of one plane pair.
struct RingWork {
    plane: PlaneWork,
    /// Spectrum of the original plane.
    x: Vec<Complex<f64>>,
    /// Spectrum of the decoded plane.
    y: Vec<Complex<f64>>,
}

impl RingWork {
    fn new(p: &PlanePlans) -> RingWork {
        let spectrum = vec![Complex::default(); p.n1 * p.half];
        RingWork {
            plane: PlaneWork::new(p),
            x: spectrum.clone(),
            y: spectrum,
        }
    }
}

/// Columns `ky` of the half spectrum gathered and transformed along axis 0 together by one FSC
/// task.
const COLUMNS: usize = 16;
/// FSC tasks run in parallel before their sums are added, in task order, to the totals.
const TASKS: usize = 256;

/// The Fourier shell correlation of two whole volumes (see the module documentation): `shape`;
/// per shell `frequency` (fraction of Nyquist, `2 i / m0`), `fsc`, `half_bit` (threshold) and
/// `samples`; `resolution` (fraction of Nyquist where the FSC first falls below the half-bit
/// curve, 1.0 without a crossing) and `crossed`. Floats are written with [`metric_json`].
///
/// The arrays must be 3D, of the same shape, every axis of 2 to 2^20 samples; their dtypes may
/// differ (values are converted to float64 row by row) and they need not be contiguous. Needs
/// [`fsc_memory`] bytes besides the inputs. Runs on the current rayon pool; the result does not
/// depend on the thread count. Errors are one line.
pub fn fsc(original: &NdArray, decoded: &NdArray) -> Result<Value, String> {
    let n = volume_shape(original.shape())?;
    check_same_shape(original.shape(), decoded.shape()).map_err(|e| format!("FSC: {e}"))?;
    PlaneSpectra::of(original, decoded)?.fsc_of_whole(n)
}

/// The shape of an FSC volume, or a one-line error naming what [`fsc`] refuses.
fn volume_shape(shape: &[usize]) -> Result<[usize; 3], String> {
    let n: [usize; 3] = shape
        .try_into()
        .map_err(|_| format!("the FSC needs 3D volumes, got shape {shape:?}"))?;
    if n.iter().any(|&a| a < 2) {
        return Err(format!(
            "the FSC needs at least 2 samples along every axis, got shape {shape:?}"
        ));
    }
    if n.iter().any(|&a| a > MAX_AXIS) {
        return Err(format!(
            "FSC: volumes of shape {shape:?} are too large (at most {MAX_AXIS} samples per axis)"
        ));
    }
    Ok(n)
}

/// The first step of the FSC done plane by plane, so that a run computes it on each chunk as
/// the volumes stream by and never holds them whole: the 2D DFTs of consecutive planes of
/// the original and the decoded volume (half spectra along the last axis, `(ky, kx)` of a
/// plane at `kx * n1 + ky`, see the FSC section of the module documentation). Parts merge
/// in plane order by move; [`PlaneSpectra::fsc`] finishes along axis 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaneSpectra {
    /// `(n1, n2)` of every plane.
    plane: [usize; 2],
    /// The transformed planes, in plane order, a part per chunk.
    parts: Vec<SpectraPart>,
    /// Whether the original's and the decoded volume's values seen so far are all one value.
    uniform: [Uniform; 2],
}

/// The half spectra of consecutive planes of both volumes, plane after plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SpectraPart {
    /// Number of planes.
    planes: usize,
    #[serde(with = "complex_values")]
    original: Vec<Complex<f64>>,
    #[serde(with = "complex_values")]
    decoded: Vec<Complex<f64>>,
}

/// Whether values are all one value (a NaN is never one value with anything).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Uniform {
    /// No values yet.
    Empty,
    /// Every value equals this one.
    All(f64),
    /// At least two different values (or a NaN).
    Varied,
}

impl Uniform {
    /// Of the values of rows `rows` (along axis 0) of `a`.
    fn of(a: &NdArray, rows: Range<usize>) -> Uniform {
        let row: usize = a.shape()[1..].iter().product();
        with_array!(a, a => {
            let values = c_order(a);
            let values = &values[rows.start * row..rows.end * row];
            match values.first() {
                None => Uniform::Empty,
                Some(&first) if values.iter().all(|&v| v.to_f64() == first.to_f64()) => {
                    Uniform::All(first.to_f64())
                }
                Some(_) => Uniform::Varied,
            }
        })
    }

    fn then(self, next: Uniform) -> Uniform {
        match (self, next) {
            (Uniform::Empty, other) | (other, Uniform::Empty) => other,
            (Uniform::All(a), Uniform::All(b)) if a == b => Uniform::All(a),
            _ => Uniform::Varied,
        }
    }
}

/// Complex values as `[re, im]` pairs (num-complex's serde support is not enabled).
mod complex_values {
    use realfft::num_complex::Complex;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(values: &[Complex<f64>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(values.iter().map(|c| [c.re, c.im]))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Complex<f64>>, D::Error> {
        let pairs = Vec::<[f64; 2]>::deserialize(d)?;
        Ok(pairs
            .into_iter()
            .map(|[re, im]| Complex::new(re, im))
            .collect())
    }
}

impl PlaneSpectra {
    /// The 2D transforms of the planes of `original` and `decoded`, slabs of 3D arrays of the
    /// same shape (planes of 2 to 2^20 samples per axis); planes in parallel on the current
    /// rayon pool. Values are converted to float64 row by row, in any memory layout.
    pub fn of(original: &NdArray, decoded: &NdArray) -> Result<PlaneSpectra, String> {
        PlaneSpectra::of_planes(
            original,
            decoded,
            0..original.shape().first().map_or(0, |&n| n),
        )
    }

    /// [`PlaneSpectra::of`] the planes `planes` (indices along axis 0) of the slabs alone.
    pub fn of_planes(
        original: &NdArray,
        decoded: &NdArray,
        planes: Range<usize>,
    ) -> Result<PlaneSpectra, String> {
        check_same_shape(original.shape(), decoded.shape()).map_err(|e| format!("FSC: {e}"))?;
        let &[held, n1, n2] = original.shape() else {
            return Err(format!(
                "the FSC needs 3D volumes, got shape {:?}",
                original.shape()
            ));
        };
        if planes.end > held {
            return Err(format!(
                "FSC: planes {planes:?} beyond a slab of {held} planes"
            ));
        }
        volume_shape(&[2, n1, n2]).map_err(|_| {
            format!("FSC: planes of {n1}x{n2} need 2 to {MAX_AXIS} samples per axis")
        })?;
        let first = planes.start;
        let planes = planes.len();
        let p = PlanePlans::new(n1, n2);
        let plane = n1 * p.half;
        let mut spectra = [
            spectrum(planes, plane, [planes, n1, n2])?,
            spectrum(planes, plane, [planes, n1, n2])?,
        ];
        // Planes are independent: no sums, any order.
        let (x, y) = (slab_rows(original), slab_rows(decoded));
        let (x, y) = (&*x, &*y);
        let spare = Spare::new();
        let [sx, sy] = &mut spectra;
        sx.par_chunks_mut(plane)
            .zip(sy.par_chunks_mut(plane))
            .enumerate()
            .for_each_init(
                || spare.take(|| PlaneWork::new(&p)),
                |w, (i, (px, py))| {
                    w.transform(&p, x, first + i, px);
                    w.transform(&p, y, first + i, py);
                },
            );
        let [original_spectra, decoded_spectra] = spectra;
        Ok(PlaneSpectra {
            plane: [n1, n2],
            parts: vec![SpectraPart {
                planes,
                original: original_spectra,
                decoded: decoded_spectra,
            }],
            uniform: [
                Uniform::of(original, first..first + planes),
                Uniform::of(decoded, first..first + planes),
            ],
        })
    }

    /// Adds the planes that follow (moved in, never copied); an error if their plane shape
    /// differs.
    pub fn merge(&mut self, next: PlaneSpectra) -> Result<(), String> {
        if next.plane != self.plane {
            return Err(format!(
                "FSC: planes of shape {:?} cannot follow planes of shape {:?}",
                next.plane, self.plane
            ));
        }
        self.parts.extend(next.parts);
        self.uniform = [
            self.uniform[0].then(next.uniform[0]),
            self.uniform[1].then(next.uniform[1]),
        ];
        Ok(())
    }

    /// Every plane's spectrum, of the original and of the decoded volume, in plane order,
    /// where its part holds it.
    fn planes(&self) -> [Vec<&[Complex<f64>]>; 2] {
        let [n1, n2] = self.plane;
        let plane = n1 * (n2 / 2 + 1);
        let side = |values: fn(&SpectraPart) -> &[Complex<f64>]| -> Vec<&[Complex<f64>]> {
            self.parts
                .iter()
                .flat_map(|p| values(p).chunks_exact(plane))
                .collect()
        };
        [side(|p| &p.original), side(|p| &p.decoded)]
    }

    /// The FSC of the volumes whose planes these are (see [`fsc`]).
    pub fn fsc(&self) -> Result<Value, String> {
        let [n1, n2] = self.plane;
        let n0 = self.parts.iter().map(|p| p.planes).sum();
        self.fsc_of_whole(volume_shape(&[n0, n1, n2])?)
    }

    /// [`PlaneSpectra::fsc`] of a volume of shape `n` (checked).
    fn fsc_of_whole(&self, n: [usize; 3]) -> Result<Value, String> {
        let v = Volume::new(n);
        let n1 = n[1];
        let [sx, sy] = self.planes();

        // Axis 0 and the shell sums, in tasks of COLUMNS lines; sums added in task order.
        let shells = v.shells;
        let blocks = n1.div_ceil(COLUMNS);
        let tasks = v.plane.half * blocks;
        let (mut cross, mut px, mut py) = (vec![0.0; shells], vec![0.0; shells], vec![0.0; shells]);
        let mut samples = vec![0u64; shells];
        let spare = Spare::new();
        for start in (0..tasks).step_by(TASKS) {
            let end = (start + TASKS).min(tasks);
            let parts: Vec<ShellSums> = (start..end)
                .into_par_iter()
                .map_init(
                    || spare.take(|| LineWork::new(&v)),
                    |w, t| w.sums(&v, &sx, &sy, t / blocks, (t % blocks) * COLUMNS),
                )
                .collect();
            for p in &parts {
                add(&mut cross, &p.sums[..shells]);
                add(&mut px, &p.sums[shells..2 * shells]);
                add(&mut py, &p.sums[2 * shells..]);
                for (n, c) in samples.iter_mut().zip(&p.samples) {
                    *n += c;
                }
            }
        }

        let fsc = correlation(&cross, &px, &py);
        let half_bit: Vec<f64> = samples.iter().map(|&n| half_bit(n)).collect();
        let flat = self.uniform.iter().all(|u| matches!(u, Uniform::All(_)));
        let (resolution, crossed) = resolution([&cross, &px, &py], flat, &fsc, &half_bit, v.m0);
        let frequency: Vec<f64> = (0..shells)
            .map(|i| {
                if i == 0 {
                    0.0
                } else {
                    2.0 * i as f64 / v.m0 as f64
                }
            })
            .collect();
        Ok(json!({
            "shape": n,
            "frequency": floats(&frequency),
            "fsc": floats(&fsc),
            "half_bit": floats(&half_bit),
            "samples": samples,
            "resolution": metric_json(resolution),
            "crossed": crossed,
        }))
    }
}

/// Bytes of memory [`fsc`] allocates for volumes of `shape` on the current rayon pool, the
/// inputs not counted: the two half spectra (`32 n0 n1 (n2 / 2 + 1)` bytes, nearly all of it
/// for large volumes), plus FFT plans, per-thread buffers and per-shell sums (an upper bound
/// for these). 0 for shapes that [`fsc`] refuses before allocating anything; saturates at
/// `u64::MAX`.
pub fn fsc_memory(shape: &[usize]) -> u64 {
    let Ok([n0, n1, n2]) = <[usize; 3]>::try_from(shape) else {
        return 0;
    };
    if [n0, n1, n2].iter().any(|&a| !(2..=MAX_AXIS).contains(&a)) {
        return 0;
    }
    let (n0, n1, n2) = (n0 as u64, n1 as u64, n2 as u64);
    let (half, shells) = (n2 / 2 + 1, n0.min(n1).min(n2) / 2 + 1);
    const COMPLEX: u64 = 16;
    // FFT scratch and plans (twiddles, planner tables) of length n: bounds measured for
    // rustfft 6.4 / realfft 3.5 at every n up to 20000 and at larger samples up to 2^20
    // (scratch at most 5.7 n values, planning at most 14.5 n values + a few hundred bytes).
    let scratch = |n: u64| COMPLEX * (8 * n + 64);
    let plan = |n: u64| COMPLEX * (16 * n + 512);
    let spectra = (2 * COMPLEX).saturating_mul(n0 * n1).saturating_mul(half);
    let plane_work = 8 * n2 + COMPLEX * BLOCK as u64 * half + scratch(n1.max(n2));
    let line_work =
        2 * COMPLEX * COLUMNS as u64 * (n0.div_ceil(8) * 8 + 8) + scratch(n0) + 4 * (n0 / 2 + 1);
    // Per task in flight (two vectors and their headers), the totals and the JSON result.
    let per_task = 32 * shells + 64;
    let sums = TASKS as u64 * per_task + (rayon::current_num_threads() as u64) * per_task;
    let result = 512 * shells + 4096;
    let threads = rayon::current_num_threads() as u64;
    spectra
        .saturating_add(plan(n0) + plan(n1) + plan(n2))
        .saturating_add(threads * (plane_work.max(line_work) + 256))
        .saturating_add(sums + result)
}

/// A zeroed half spectrum of `n0` planes of `plane` values (of a volume of shape `n`, for the
/// error), or a one-line error when it cannot be allocated.
fn spectrum(n0: usize, plane: usize, n: [usize; 3]) -> Result<Vec<Complex<f64>>, String> {
    let refuse = || {
        let bytes = 32 * n0 as u128 * plane as u128;
        format!(
            "FSC: cannot allocate {bytes} bytes for the spectra of a {}x{}x{} volume",
            n[0], n[1], n[2]
        )
    };
    let len = n0.checked_mul(plane).ok_or_else(refuse)?;
    let mut values = Vec::new();
    values.try_reserve_exact(len).map_err(|_| refuse())?;
    advise_huge_pages(&mut values);
    // Zeroed in parallel: the page faults of a large spectrum take a while.
    values.par_extend(rayon::iter::repeat_n(Complex::default(), len));
    Ok(values)
}

/// Asks Linux to back the allocation of `values` (not yet touched) with transparent huge
/// pages where the system allows them on request (`madvise` mode, Debian's default).
///
/// The spectra are the FSC's largest buffers, written once in full: with 4 KiB pages their
/// page faults took 0.26 s of system time against 0.30 s of user time for a 256^3 float32
/// pair (`photonqa metrics --only fsc`); with 2 MiB pages the CPU time fell from 0.49 to
/// 0.34 s. Only the 2 MiB-aligned interior of the allocation is advised. Advice that the
/// system ignores or refuses changes nothing but speed.
fn advise_huge_pages<T>(values: &mut Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = values.as_mut_ptr() as usize;
        let end = start + values.capacity() * std::mem::size_of::<T>();
        let (first, last) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
        if last > first {
            // SAFETY: the range lies within the vector's own allocation, and MADV_HUGEPAGE
            // changes how its pages are backed, never their contents.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
}

/// Reads row `j` of plane `i` (the values `[i, j, ..]` of a 3D array) as float64.
type RowReader<'a> = dyn Fn(usize, usize, &mut [f64]) + Sync + 'a;

/// A [`RowReader`] over the values of `a`, a 3D array or a 2D array (its one plane, `i = 0`),
/// in any memory layout, without copies.
fn slab_rows(a: &NdArray) -> Box<RowReader<'_>> {
    with_array!(a, a => {
        let rank = a.ndim();
        let (n1, n2) = (a.shape()[rank - 2], a.shape()[rank - 1]);
        let contiguous = a.as_slice();
        Box::new(move |i: usize, j: usize, out: &mut [f64]| match contiguous {
            Some(values) => {
                let start = (i * n1 + j) * n2;
                for (o, v) in out.iter_mut().zip(&values[start..start + n2]) {
                    *o = v.to_f64();
                }
            }
            None => {
                let plane = if rank == 3 { a.index_axis(Axis(0), i) } else { a.view() };
                let row = plane.index_axis(Axis(0), j);
                for (o, v) in out.iter_mut().zip(row.iter()) {
                    *o = v.to_f64();
                }
            }
        })
    })
}

/// The FFT plans of the FSC's plane transforms (planes of `n1 x n2`).
struct PlanePlans {
    /// Values of a real FFT along the last axis: `n2 / 2 + 1` (`kx = 0..=n2 / 2`).
    half: usize,
    /// `n1`.
    n1: usize,
    /// `n2`.
    n2: usize,
    /// Real FFT of length `n2` (rows).
    rows: Arc<dyn RealToComplex<f64>>,
    /// Complex FFT of length `n1`.
    axis1: Arc<dyn Fft<f64>>,
}

impl PlanePlans {
    fn new(n1: usize, n2: usize) -> PlanePlans {
        PlanePlans {
            half: n2 / 2 + 1,
            n1,
            n2,
            rows: RealFftPlanner::<f64>::new().plan_fft_forward(n2),
            axis1: FftPlanner::<f64>::new().plan_fft_forward(n1),
        }
    }
}

/// What the FSC's transforms along axis 0 share: the shape, FFT plans and the exact shell
/// boundaries.
struct Volume {
    /// Shape `(n0, n1, n2)`.
    n: [usize; 3],
    /// The plans of the plane transforms (for their sizes).
    plane: PlanePlans,
    /// The shortest axis, `min(n0, n1, n2)`.
    m0: usize,
    /// Number of shells, `m0 / 2 + 1`.
    shells: usize,
    /// Complex FFT of length `n0`.
    axis0: Arc<dyn Fft<f64>>,
    /// `4 prod_(b != a) n_b^2` per axis `a`: `4 q = sum_a k_a^2 coefficient[a]` (below 2^122).
    coefficient: [u128; 3],
    /// `(2 i - 1)^2 P` for shells `i = 1..=shells` (`P` the product of the squares of the two
    /// axes other than a shortest one, below 2^121): a sample is in shell `i` or beyond when
    /// `4 q` reaches entry `i - 1`.
    reach: Vec<u128>,
}

impl Volume {
    fn new(n: [usize; 3]) -> Volume {
        let [n0, n1, n2] = n;
        let m0 = n0.min(n1).min(n2);
        let shells = m0 / 2 + 1;
        let sq = n.map(|a| (a as u128) * (a as u128));
        let coefficient = [4 * sq[1] * sq[2], 4 * sq[0] * sq[2], 4 * sq[0] * sq[1]];
        let shortest = (0..3).find(|&a| n[a] == m0).expect("a shortest axis");
        let p = coefficient[shortest] / 4;
        let reach = (1..=shells as u128)
            .map(|i| (2 * i - 1) * (2 * i - 1) * p)
            .collect();
        Volume {
            n,
            plane: PlanePlans::new(n1, n2),
            m0,
            shells,
            axis0: FftPlanner::<f64>::new().plan_fft_forward(n0),
            coefficient,
            reach,
        }
    }

    /// `4 q` of sample `(k0, k1, k2)` (absolute values): `4 m0^2 f^2 = 4 q / P`.
    fn four_q(&self, k: [usize; 3]) -> u128 {
        (0..3)
            .map(|a| (k[a] as u128) * (k[a] as u128) * self.coefficient[a])
            .sum()
    }

    /// Shell `floor(f m0 + 0.5)` of sample `(k0, k1, k2)` (absolute values, at most half of
    /// each axis), exactly; `shells` (one past the last shell) when dropped.
    #[cfg(test)]
    fn shell(&self, k: [usize; 3]) -> usize {
        let q = self.four_q(k);
        self.reach.partition_point(|&t| t <= q)
    }

    /// Into `out[k0]` for `k0 = 0..=n0 / 2`: the shell of `(k0, k1, k2)` or [`DROPPED`], walking
    /// outwards (the shell does not decrease with `k0`), exactly as [`Volume::shell`].
    fn column_shells(&self, k1: usize, k2: usize, out: &mut [u32]) {
        let base = self.four_q([0, k1, k2]);
        let mut shell = 0;
        for (k0, o) in out.iter_mut().enumerate() {
            let q = base + (k0 as u128) * (k0 as u128) * self.coefficient[0];
            while shell < self.shells && self.reach[shell] <= q {
                shell += 1;
            }
            *o = if shell < self.shells {
                shell as u32
            } else {
                DROPPED
            };
        }
    }
}

/// Buffers of one thread for the transforms along axes 2 and 1.
struct PlaneWork {
    /// One row as float64 (input of the row FFT, overwritten by it).
    line: Vec<f64>,
    /// Spectra of [`BLOCK`] rows, row by row.
    block: Vec<Complex<f64>>,
    /// FFT scratch space (for both plans).
    scratch: Vec<Complex<f64>>,
}

impl PlaneWork {
    fn new(p: &PlanePlans) -> PlaneWork {
        let scratch = p
            .rows
            .get_scratch_len()
            .max(p.axis1.get_inplace_scratch_len());
        PlaneWork {
            line: vec![0.0; p.n2],
            block: vec![Complex::default(); BLOCK * p.half],
            scratch: vec![Complex::default(); scratch],
        }
    }

    /// The 2D DFT of plane `i` (of the array `read` reads) over its last axis (real, `kx >= 0`)
    /// and axis 1, into `out`: value `(ky, kx)` at `kx * n1 + ky`.
    fn transform(&mut self, p: &PlanePlans, read: &RowReader, i: usize, out: &mut [Complex<f64>]) {
        let (n1, half) = (p.n1, p.half);
        for first in (0..n1).step_by(BLOCK) {
            let rows = BLOCK.min(n1 - first);
            let spectra = self.block.chunks_exact_mut(half).take(rows);
            for (j, spectrum) in (first..).zip(spectra) {
                read(i, j, &mut self.line);
                p.rows
                    .process_with_scratch(&mut self.line, spectrum, &mut self.scratch)
                    .expect("buffer lengths from the plan");
            }
            // Transposed a few rows (a cache line or two per column) at a time.
            for kx in 0..half {
                let column = &mut out[kx * n1 + first..kx * n1 + first + rows];
                for (r, o) in column.iter_mut().enumerate() {
                    *o = self.block[r * half + kx];
                }
            }
        }
        // Every column kx, n1 values each, in one call.
        p.axis1.process_with_scratch(out, &mut self.scratch);
    }
}

/// Buffers of one thread for the transforms along axis 0 and the shell sums.
struct LineWork {
    /// Distance between the lines of `x` and `y`: `n0` rounded up to 8 values, plus 8 (lines
    /// a power of two apart would map to the same few cache sets while being gathered).
    stride: usize,
    /// [`COLUMNS`] lines along axis 0 of the original's spectrum, line `c` from `c * stride`.
    x: Vec<Complex<f64>>,
    /// The same lines of the decoded spectrum.
    y: Vec<Complex<f64>>,
    /// FFT scratch space.
    scratch: Vec<Complex<f64>>,
    /// Shell of `|k0| = 0..=n0 / 2` along the current line.
    shells: Vec<u32>,
}

/// Shell sums of one FSC task: `[C.., Px.., Py..]` and the samples per shell.
struct ShellSums {
    sums: Vec<f64>,
    samples: Vec<u64>,
}

impl LineWork {
    fn new(v: &Volume) -> LineWork {
        let n0 = v.n[0];
        let stride = n0.div_ceil(8) * 8 + 8;
        LineWork {
            stride,
            x: vec![Complex::default(); COLUMNS * stride],
            y: vec![Complex::default(); COLUMNS * stride],
            scratch: vec![Complex::default(); v.axis0.get_inplace_scratch_len()],
            shells: vec![0; n0 / 2 + 1],
        }
    }

    /// Transforms the lines `(ky, kx)`, `ky = first..first + COLUMNS` (within `n1`), of both
    /// half spectra along axis 0 and returns their shell sums, with the Hermitian weight of
    /// `kx`.
    fn sums(
        &mut self,
        v: &Volume,
        sx: &[&[Complex<f64>]],
        sy: &[&[Complex<f64>]],
        kx: usize,
        first: usize,
    ) -> ShellSums {
        let [n0, n1, n2] = v.n;
        let columns = COLUMNS.min(n1 - first);
        let at = kx * n1 + first;
        let stride = self.stride;
        let (x, y) = (&mut self.x, &mut self.y);
        for i in 0..n0 {
            let (xs, ys) = (&sx[i][at..], &sy[i][at..]);
            for c in 0..columns {
                x[c * stride + i] = xs[c];
                y[c * stride + i] = ys[c];
            }
        }
        for c in 0..columns {
            let line = c * stride..c * stride + n0;
            v.axis0
                .process_with_scratch(&mut x[line.clone()], &mut self.scratch);
            v.axis0
                .process_with_scratch(&mut y[line], &mut self.scratch);
        }
        let s = v.shells;
        let mut out = ShellSums {
            sums: vec![0.0; 3 * s],
            samples: vec![0; s],
        };
        // kx and -kx (not stored) are in the same shell with the same terms.
        let w = if kx == 0 || 2 * kx == n2 { 1 } else { 2 };
        let wf = w as f64;
        for c in 0..columns {
            let ky = first + c;
            v.column_shells(ky.min(n1 - ky), kx, &mut self.shells);
            let line = c * stride..c * stride + n0;
            let (xc, yc) = (&x[line.clone()], &y[line]);
            for (k0, (a, b)) in xc.iter().zip(yc).enumerate() {
                let shell = self.shells[k0.min(n0 - k0)];
                if shell == DROPPED {
                    continue;
                }
                let r = shell as usize;
                // The same expression shape for all three, so that identical volumes give
                // bit-identical cross and power sums.
                out.sums[r] += wf * (a.re * b.re + a.im * b.im);
                out.sums[s + r] += wf * (a.re * a.re + a.im * a.im);
                out.sums[2 * s + r] += wf * (b.re * b.re + b.im * b.im);
                out.samples[r] += w;
            }
        }
        out
    }
}

/// Spare buffers of one kind, lent to rayon jobs and returned when dropped: at most one per
/// job running at a time, however often rayon calls the init closure of `map_init`.
struct Spare<W>(Mutex<Vec<W>>);

impl<W> Spare<W> {
    fn new() -> Spare<W> {
        Spare(Mutex::new(Vec::new()))
    }

    /// A spare buffer, or `make()`.
    fn take(&self, make: impl FnOnce() -> W) -> Taken<'_, W> {
        let spare = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        Taken {
            work: Some(spare.unwrap_or_else(make)),
            owner: self,
        }
    }
}

/// A buffer lent by [`Spare::take`].
struct Taken<'a, W> {
    /// Always `Some` until dropped.
    work: Option<W>,
    owner: &'a Spare<W>,
}

impl<W> std::ops::Deref for Taken<'_, W> {
    type Target = W;
    fn deref(&self) -> &W {
        self.work.as_ref().expect("lent")
    }
}

impl<W> std::ops::DerefMut for Taken<'_, W> {
    fn deref_mut(&mut self) -> &mut W {
        self.work.as_mut().expect("lent")
    }
}

impl<W> Drop for Taken<'_, W> {
    fn drop(&mut self) {
        let mut spare = self.owner.0.lock().unwrap_or_else(|e| e.into_inner());
        spare.extend(self.work.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::IntoNdArray;
    use ndarray::{ArrayD, IxDyn};

    #[test]
    fn rings_are_exact_at_ties() {
        // (2, 2) of a 30x40 plane: f m0 = sqrt((2 * 30 / 30)^2 + (2 * 30 / 40)^2) = 2.5 exactly.
        assert_eq!(ring_of(2, 2, 30, 40), 3);
        assert_eq!(ring_of(2, 2, 40, 30), 3);
        // Against float64 wherever f m0 + 0.5 is not within 1e-9 of an integer.
        for (n1, n2) in [
            (30, 40),
            (33, 45),
            (48, 80),
            (64, 64),
            (7, 2),
            (2, 9),
            (256, 100),
        ] {
            let m0 = n1.min(n2) as f64;
            for ky in 0..=n1 / 2 {
                for kx in 0..=n2 / 2 {
                    let f =
                        ((ky as f64 / n1 as f64).powi(2) + (kx as f64 / n2 as f64).powi(2)).sqrt();
                    let scaled = f * m0 + 0.5;
                    let exact = ring_of(ky, kx, n1, n2);
                    if (scaled - scaled.round()).abs() > 1e-9 {
                        assert_eq!(exact, scaled.floor() as u64, "{n1}x{n2} ({ky}, {kx})");
                    } else {
                        assert!(exact == scaled.round() as u64, "{n1}x{n2} ({ky}, {kx})");
                    }
                }
            }
        }
        // The largest axes accepted do not overflow.
        let n = MAX_AXIS;
        assert_eq!(ring_of(n / 2, n / 2, n, n), 741_455); // 2^19 sqrt(2) = 741455.2
    }

    #[test]
    fn samples_cover_every_ring_once_per_sample() {
        // Every sample of the full plane is in one ring or dropped: the Hermitian weights of
        // the half-plane table add up to the full-plane counts.
        for (n1, n2) in [(2, 2), (2, 3), (3, 2), (5, 8), (8, 5), (30, 40), (33, 45)] {
            let layout = Layout::new([n1, n2]);
            let m = n1.min(n2) / 2;
            let mut full = vec![0u64; m + 1];
            for ky in 0..n1 {
                for kx in 0..n2 {
                    let i = ring_of(ky.min(n1 - ky), kx.min(n2 - kx), n1, n2) as usize;
                    if i <= m {
                        full[i] += 1;
                    }
                }
            }
            assert_eq!(layout.counts, full, "{n1}x{n2}");
            assert!(full.iter().all(|&n| n > 0), "{n1}x{n2}: an empty ring");
        }
    }

    #[test]
    fn empty_and_degenerate_sums_give_no_nan() {
        for plane in [[8, 8], [1, 5], [0, 3]] {
            let sums = RingSums::new(plane);
            let text = format!("{} {}", sums.frc(), sums.power_spectrum(1.0));
            assert!(!text.contains("nan"), "{plane:?}: {text}");
            assert_eq!(sums.frc()["crossed"], false);
            assert_eq!(sums.frc()["resolution"], 1.0);
            assert_eq!(sums.power_spectrum(1.0)["max_abs_relative_error"], 0.0);
        }
        assert_eq!(RingSums::new([1, 5]).samples.len(), 1);
        assert_eq!(RingSums::new([9, 12]).samples.len(), 5);
    }

    #[test]
    fn non_contiguous_inputs_and_serde() {
        let n = 6 * 10 * 12;
        let values: Vec<f64> = (0..n)
            .map(|i| ((i * 37 % 101) as f64 * 0.7).sin())
            .collect();
        let x = ArrayD::from_shape_vec(IxDyn(&[6, 10, 12]), values).unwrap();
        let y = x.mapv(|v| (v * 8.0).round() / 8.0);
        // Axes reversed twice: the same values through a Fortran-order buffer.
        let xf = x.clone().reversed_axes().as_standard_layout().into_owned();
        let xf = xf.reversed_axes();
        assert!(xf.as_slice().is_none());
        let mut a = RingSums::new([10, 12]);
        a.add_planes(&x.clone().into_nd(), &y.clone().into_nd())
            .unwrap();
        let mut b = RingSums::new([10, 12]);
        b.add_planes(&xf.into_nd(), &y.mapv(|v| v as f32).into_nd())
            .unwrap();
        assert_eq!(a, b);
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<RingSums>(&text).unwrap(), a);
        let mut broken = a.clone();
        broken.cross.pop();
        let err = a.clone().merge(&broken).unwrap_err();
        assert!(err.contains("need 6 rings"), "{err}");
        let err = broken.add_planes(&x.into_nd(), &y.into_nd()).unwrap_err();
        assert!(err.contains("lengths [6, 5, 6, 6]"), "{err}");
    }

    #[test]
    fn shells_are_exact_at_ties() {
        // (0, 2, 2) of a 40x30x40 volume: f m0 = sqrt((2 * 30 / 30)^2 + (2 * 30 / 40)^2) = 2.5.
        for (n, k) in [
            ([40, 30, 40], [0, 2, 2]),
            ([40, 40, 30], [0, 2, 2]),
            ([30, 40, 40], [2, 2, 0]),
        ] {
            let v = Volume::new(n);
            assert_eq!(v.shell(k), 3, "{n:?} {k:?}");
        }
        let mut ties = 0;
        for n in [
            [40, 30, 40],
            [8, 12, 20],
            [9, 11, 13],
            [16, 16, 16],
            [2, 5, 7],
            [7, 2, 3],
            [33, 45, 64],
        ] {
            let v = Volume::new(n);
            let [n0, n1, n2] = n;
            let mut line = vec![0; n0 / 2 + 1];
            for k1 in 0..=n1 / 2 {
                for k2 in 0..=n2 / 2 {
                    v.column_shells(k1, k2, &mut line);
                    for (k0, &walked) in line.iter().enumerate() {
                        let k = [k0, k1, k2];
                        let exact = v.shell(k);
                        let expected = if exact < v.shells {
                            exact as u32
                        } else {
                            DROPPED
                        };
                        assert_eq!(walked, expected, "{n:?} {k:?}");
                        let f2: f64 = (0..3).map(|a| (k[a] as f64 / n[a] as f64).powi(2)).sum();
                        let scaled = f2.sqrt() * v.m0 as f64 + 0.5;
                        // Shells beyond the last one are all "dropped" (index `shells`).
                        if (scaled - scaled.round()).abs() > 1e-9 {
                            let float = (scaled.floor() as usize).min(v.shells);
                            assert_eq!(exact, float, "{n:?} {k:?}");
                        } else {
                            // Exactly half-way: the outer shell, as floor(f m0 + 0.5).
                            let float = (scaled.round() as usize).min(v.shells);
                            assert_eq!(exact, float, "{n:?} {k:?}");
                            ties += 1;
                        }
                    }
                }
            }
        }
        assert!(ties > 0, "no tie exercised");
        // The largest axes accepted do not overflow: 2^19 sqrt(3) = 908093.7.
        let n = MAX_AXIS;
        let v = Volume::new([n, n, n]);
        assert_eq!(v.shell([n / 2, n / 2, n / 2]), v.shells);
        assert_eq!(v.shell([n / 2, 0, 0]), n / 2);
        let v = Volume::new([2, n, n]);
        assert_eq!(v.shell([0, n / 2, n / 2]), 1); // 2 sqrt(1 / 2) + 0.5 = 1.91
        assert_eq!(v.shell([1, n / 2, n / 2]), v.shells); // 2 sqrt(3 / 4) + 0.5 = 2.23
        let shape = [n, n - 1, n - 3];
        let v = Volume::new(shape);
        for k in [[123_457, 300_000, 5], [n / 2, n / 2 - 1, 7], [1, 2, 3]] {
            let f2: f64 = (0..3)
                .map(|a| (k[a] as f64 / shape[a] as f64).powi(2))
                .sum();
            let float = (f2.sqrt() * (n - 3) as f64 + 0.5).floor() as usize;
            assert_eq!(v.shell(k), float.min(v.shells), "{k:?}");
        }
    }

    #[test]
    fn fsc_samples_cover_the_full_spectrum() {
        for n in [
            [2, 2, 2],
            [2, 3, 5],
            [5, 3, 2],
            [9, 11, 13],
            [8, 12, 20],
            [6, 6, 7],
        ] {
            let v = Volume::new(n);
            let [n0, n1, n2] = n;
            let mut full = vec![0u64; v.shells];
            for k0 in 0..n0 {
                for k1 in 0..n1 {
                    for k2 in 0..n2 {
                        let k = [k0.min(n0 - k0), k1.min(n1 - k1), k2.min(n2 - k2)];
                        if let Some(c) = full.get_mut(v.shell(k)) {
                            *c += 1;
                        }
                    }
                }
            }
            assert!(full.iter().all(|&c| c > 0), "{n:?}: an empty shell");
            let zeros = ArrayD::<f32>::zeros(IxDyn(&n)).into_nd();
            let out = fsc(&zeros, &zeros).unwrap();
            let samples: Vec<u64> = serde_json::from_value(out["samples"].clone()).unwrap();
            assert_eq!(samples, full, "{n:?}");
            // Zero volumes: FSC 1 everywhere (nothing to disagree on), no crossing.
            assert!(out["fsc"].as_array().unwrap().iter().all(|f| f == 1.0));
            assert_eq!(out["crossed"], false);
        }
    }

    /// Slabs cut anywhere, differently on the two sides, give the FSC of the whole volumes
    /// (bit for bit), and a constant volume is one across its slabs.
    #[test]
    fn plane_spectra_of_slabs_merge_into_the_whole() {
        let n = [7, 10, 9];
        let wave = |k: usize| -> NdArray {
            let values = (0..630)
                .map(|i| ((i * k % 101) as f32 * 0.7).sin())
                .collect();
            ArrayD::from_shape_vec(IxDyn(&n), values).unwrap().into_nd()
        };
        let (x, y) = (wave(37), wave(41));
        let whole = fsc(&x, &y).unwrap();
        // Slabs with rows beyond the planes transformed, as a run reads them (halos).
        let part = |rows: Range<usize>| {
            let held = rows.start.saturating_sub(1)..(rows.end + 2).min(7);
            let planes = rows.start - held.start..rows.end - held.start;
            let (x, y) = (x.slice_rows(held.clone()), y.slice_rows(held));
            PlaneSpectra::of_planes(&x, &y, planes).unwrap()
        };
        let mut merged = part(0..2);
        for rows in [2..2, 2..6, 6..7] {
            merged.merge(part(rows)).unwrap();
        }
        assert_eq!(merged.fsc().unwrap(), whole);
        // Parts cross process boundaries (Slurm units) bit for bit.
        let bytes = postcard::to_stdvec(&merged).unwrap();
        let back: PlaneSpectra = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, merged);
        // Constant slabs of two values are not a constant volume; of one value they are.
        let three = ArrayD::from_elem(IxDyn(&n), 3.0f32).into_nd();
        let five = ArrayD::from_elem(IxDyn(&n), 5.0f32).into_nd();
        let uniform = |a: &NdArray, b: &NdArray| Uniform::of(a, 0..3).then(Uniform::of(b, 3..7));
        assert_eq!(uniform(&three, &five), Uniform::Varied);
        assert_eq!(uniform(&three, &three), Uniform::All(3.0));
        assert_eq!(
            Uniform::of(&three, 2..2).then(Uniform::All(3.0)),
            Uniform::All(3.0)
        );
        let nan = ArrayD::from_elem(IxDyn(&n), f32::NAN).into_nd();
        assert_eq!(Uniform::of(&nan, 0..7), Uniform::Varied);
        let err = PlaneSpectra::of(&x, &x.slice_rows(0..3)).unwrap_err();
        assert_eq!(
            err,
            "FSC: cannot compare shape [7, 10, 9] with shape [3, 10, 9]"
        );
        let other = ArrayD::<f32>::zeros(IxDyn(&[2, 9, 10])).into_nd();
        let err = merged
            .merge(PlaneSpectra::of(&other, &other).unwrap())
            .unwrap_err();
        assert_eq!(
            err,
            "FSC: planes of shape [9, 10] cannot follow planes of shape [10, 9]"
        );
    }

    #[test]
    fn fsc_of_scaled_and_negated_volumes() {
        let n = [6, 10, 9];
        let values: Vec<f64> = (0..540)
            .map(|i| ((i * 37 % 101) as f64 * 0.7).sin())
            .collect();
        let x = ArrayD::from_shape_vec(IxDyn(&n), values).unwrap();
        let same = fsc(&x.clone().into_nd(), &x.clone().into_nd()).unwrap();
        assert!(same["fsc"].as_array().unwrap().iter().all(|f| f == 1.0));
        assert_eq!(same["crossed"], false);
        assert_eq!(same["resolution"], 1.0);
        // Scaling by 2 is exact in binary: the same spectra times 2, FSC exactly 1.
        let scaled = fsc(&x.clone().into_nd(), &x.mapv(|v| 2.0 * v).into_nd()).unwrap();
        assert_eq!(scaled["fsc"], same["fsc"]);
        let negated = fsc(&x.clone().into_nd(), &x.mapv(|v| -v).into_nd()).unwrap();
        assert!(negated["fsc"].as_array().unwrap().iter().all(|f| f == -1.0));
        // Shell 0 below the curve: the crossing is at shell 0.
        assert_eq!(negated["crossed"], true);
        assert_eq!(negated["resolution"], 0.0);
        assert_eq!(negated["shape"], json!([6, 10, 9]));
    }

    /// Constant planes have no power beyond DC, where any two same-signed constants
    /// correlate perfectly: their resolution is 1 only when they are identical, 0 (crossed)
    /// when they differ. A NaN makes the resolution NaN, not a perfect 1.
    #[test]
    fn constant_arrays_resolve_nothing_unless_identical_and_nan_is_nan() {
        let constant = |shape: &[usize], v: f32| ArrayD::from_elem(IxDyn(shape), v).into_nd();
        let frc = |x: &NdArray, y: &NdArray| {
            let shape = x.shape();
            let mut sums = RingSums::new([shape[shape.len() - 2], shape[shape.len() - 1]]);
            sums.add_planes(x, y).unwrap();
            (sums.frc(), sums.power_spectrum(1.0))
        };
        for shape in [&[8, 8][..], &[3, 8, 8], &[2, 6, 10]] {
            let (three, five) = (constant(shape, 3.0), constant(shape, 5.0));
            let (same, _) = frc(&three, &three);
            assert_eq!(
                (&same["resolution"], &same["crossed"]),
                (&json!(1.0), &json!(false))
            );
            let (different, power) = frc(&three, &five);
            assert_eq!(
                (&different["resolution"], &different["crossed"]),
                (&json!(0.0), &json!(true)),
                "{shape:?}: {different}"
            );
            // Power-of-two planes: the curve itself is 1 everywhere (exact zeros beyond DC);
            // the rule is about the resolution. Other sizes leave rounding noise there.
            assert!(
                shape[shape.len() - 1] != 8
                    || different["frc"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|f| f == 1.0)
            );
            // The DC ring: (5 / 3)^2 - 1. Beyond it, ratios of rounding noise for the other sizes.
            assert_eq!(power["relative_error"][0], 25.0 / 9.0 - 1.0);
            if shape[shape.len() - 1] == 8 {
                assert_eq!(power["max_abs_relative_error"], 25.0 / 9.0 - 1.0);
            }
            if shape.len() == 3 {
                let fsc_same = fsc(&three, &three).unwrap();
                assert_eq!(
                    (&fsc_same["resolution"], &fsc_same["crossed"]),
                    (&json!(1.0), &json!(false))
                );
                let fsc_different = fsc(&three, &five).unwrap();
                assert_eq!(
                    (&fsc_different["resolution"], &fsc_different["crossed"]),
                    (&json!(0.0), &json!(true))
                );
            }
        }
        // Planes constant but different from each other, decoded with another gain per plane:
        // still nothing beyond DC, and not identical.
        let x = ArrayD::from_shape_fn(IxDyn(&[2, 8, 8]), |ix| 1.0 + ix[0] as f32).into_nd();
        let y = ArrayD::from_shape_fn(IxDyn(&[2, 8, 8]), |ix| 1.0 + 2.0 * ix[0] as f32).into_nd();
        assert_eq!(frc(&x, &y).0["resolution"], 0.0);
        // A textured plane with a NaN: NaN, never "no crossing".
        for shape in [&[8, 8][..], &[2, 8, 8]] {
            let textured = ArrayD::from_shape_fn(IxDyn(shape), |ix| {
                let (i, j) = (ix[shape.len() - 2], ix[shape.len() - 1]);
                ((i * 3 + j * 5) % 7) as f32
            });
            let mut broken = textured.clone();
            broken.as_slice_mut().unwrap()[19] = f32::NAN;
            let (textured, broken) = (textured.into_nd(), broken.into_nd());
            let (curve, power) = frc(&textured, &broken);
            assert_eq!(
                (&curve["resolution"], &curve["crossed"]),
                (&json!("nan"), &json!(false))
            );
            assert_eq!(power["max_abs_relative_error"], "nan");
            if shape.len() == 3 {
                assert_eq!(fsc(&textured, &broken).unwrap()["resolution"], "nan");
            }
        }
    }

    #[test]
    fn rings_from_the_fsc_spectra_equal_rings_from_the_planes() {
        let x = ArrayD::from_shape_fn(IxDyn(&[5, 12, 10]), |ix| {
            ((ix[0] * 7 + ix[1] * 3 + ix[2] * 11) % 13) as f32 * 0.37
        });
        let y = x.mapv(|v| (v * 4.0).round() / 4.0);
        let (x, y) = (x.into_nd(), y.into_nd());
        let mut direct = RingSums::new([12, 10]);
        direct.add_planes(&x, &y).unwrap();
        // The spectra of two chunks, merged; ring sums taken from them in other cuts.
        let mut spectra = PlaneSpectra::of(&x.slice_rows(0..2), &y.slice_rows(0..2)).unwrap();
        spectra
            .merge(PlaneSpectra::of(&x.slice_rows(2..5), &y.slice_rows(2..5)).unwrap())
            .unwrap();
        let mut reused = RingSums::new([12, 10]);
        for rows in [0..1, 1..4, 4..5] {
            let (a, b) = (x.slice_rows(rows.clone()), y.slice_rows(rows.clone()));
            reused
                .add_transformed(&a, &b, &spectra, rows.start)
                .unwrap();
        }
        assert_eq!(reused, direct);
        assert_ne!(direct.cross, direct.power_original);
        let err = RingSums::new([12, 10])
            .add_transformed(&x.slice_rows(3..5), &y.slice_rows(3..5), &spectra, 4)
            .unwrap_err();
        assert_eq!(
            err,
            "FRC: planes 4..6 are beyond the 5 planes of the spectra"
        );
    }

    #[test]
    fn crossing_interpolates_in_frc_minus_threshold() {
        let at = crossing(&[1.0, 0.9, 0.3], &[0.5, 0.5, 0.5]).unwrap();
        assert!((at - (1.0 + 0.4 / 0.6)).abs() < 1e-15, "{at}");
        assert_eq!(crossing(&[1.0, 0.9, 0.6], &[0.5, 0.5, 0.5]), None);
        // Ring 0 already below the curve: the crossing is at ring 0.
        assert_eq!(crossing(&[-1.0, -1.0], &[1.0, 0.5]), Some(0.0));
        assert_eq!(half_bit(1), (0.2071 + 1.9102) / (1.2071 + 0.9102));
        assert!((half_bit(1 << 40) - 0.2071 / 1.2071).abs() < 1e-5);
    }
}
