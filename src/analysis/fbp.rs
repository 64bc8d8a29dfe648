//! Parallel-beam filtered back-projection (FBP) of one sinogram, exactly as scikit-image 0.26
//! `skimage.transform.iradon(radon_image, theta, filter_name=..., interpolation="linear",
//! circle=True)` computes it.
//!
//! Kak & Slaney (1988), "Principles of Computerized Tomographic Imaging", IEEE Press, chapter 3
//! (the ramp filter built from its spatial kernel: equation 61).
//!
//! # Layout
//! photonqa's sinogram is `(angles, detector)`, row-major: projection `a` is the contiguous row
//! `a`. scikit-image's `radon_image` is `(detector, angles)`, the transpose. The rotation axis
//! is detector pixel `n / 2` (integer division) for a detector of `n` pixels; the output is the
//! `n x n` slice with the rotation axis at pixel `(n / 2, n / 2)`, row-major, and exactly 0.0
//! outside the inscribed circle (the pixels with `(i - n/2)^2 + (j - n/2)^2 > (n/2)^2`).
//!
//! # Algorithm (scikit-image's, step for step)
//! 1. Geometry: `d = ceil(sqrt(2) n)` (scikit-image zero-pads the sinogram to this length,
//!    `_sinogram_circle_to_square`) and the FFT length `P = max(64, 2^ceil(log2(2 d)))`.
//! 2. Filter (`_get_fourier_filter(P, name)`): the spatial ramp kernel `f[0] = 1/4`,
//!    `f[m] = -1 / (pi k)^2` for odd `m` with `k = m` below `P / 2` and `k = P - m` above, 0
//!    elsewhere; the ramp is `H = 2 Re(FFT(f))`. The other filters multiply it by:
//!    `shepp-logan` `sin(w) / w` with `w = pi fftfreq(P)` (bin 0 unchanged); `cosine`
//!    `fftshift(sin(linspace(0, pi, P, endpoint=False)))`; `hamming` `fftshift(np.hamming(P))`;
//!    `hann` `fftshift(np.hanning(P))`.
//! 3. Each projection, zero-padded to `P`, is multiplied by `H` in the Fourier domain and
//!    transformed back; scikit-image keeps the real part. NumPy's Hamming and Hann windows are
//!    symmetric about `(P - 1) / 2`, so after `fftshift` `H[k] != H[P - k]` by a hair, and the
//!    real part of the inverse transform equals the inverse transform with the symmetrised
//!    `(H[k] + H[P - k]) / 2`: photonqa uses that with real FFTs (`realfft`), folding the
//!    exact factor `1 / P` (a power of two) into it. Circular convolution commutes with
//!    shifts, so the projection is placed at offset 0 rather than at scikit-image's padding
//!    offset: filtered detector coordinate `c = i - n / 2` is sample `(c + n / 2) mod P`.
//!    Coordinates outside scikit-image's padded range `-d/2 .. d - d/2` are 0 (`np.interp`'s
//!    `left = right = 0`).
//! 4. Back-projection: for output pixel `(i, j)` (row `i`, column `j`) and angle `theta`,
//!    `t = (j - n/2) cos(theta) - (i - n/2) sin(theta)`, evaluated with the same float64
//!    operations as scikit-image (`theta` converted with `to_radians`, i.e. `theta * (pi /
//!    180)` as `np.deg2rad`), and the filtered projection is interpolated linearly as
//!    `np.interp` does: `k = floor(t)`, `(p[k + 1] - p[k]) (t - k) + p[k]`. Each pixel sums its
//!    values over the angles in the given order, starting from 0.0, then is scaled as
//!    `sum * pi / (2 A)` for `A` angles; pixels outside the circle are 0.0.
//!
//! Only the filtering differs from scikit-image in rounding (rustfft against pocketfft): with
//! the same filtered projections every later operation is bit-identical. The reconstructions
//! agree within a relative RMSE of 3e-15 (64 pixels) to 5e-14 (1024 pixels), growing with the
//! FFT length (see `tests/fbp_crosscheck.rs`).
//!
//! # Computation
//! Projections are filtered in parallel (one set of FFT buffers per rayon job, plans shared),
//! each stored over the coordinates `-(n/2 + 1) ..= n/2 + 1` that a pixel inside the circle
//! can reach, as pairs `(p[k], p[k + 1] - p[k])` (`np.interp`'s precomputed slopes: one load
//! per pixel). Output rows are back-projected in parallel in blocks of `ROWS` (4): for each
//! angle in turn, every row of the block accumulates the interpolated values of that one
//! filtered projection over the columns inside the circle, two pixels per step in SSE2 vectors
//! but for the table lookups; `floor(t)` comes from adding and subtracting `1.5 * 2^52` (exact
//! round to nearest, then one step down where that overshot), since the default x86-64 target
//! has no `roundsd` and `f64::floor` would be a libm call. Every pixel's sum runs over the
//! angles in order, so results do not depend on the thread count or the block size. The work
//! is `A` times the `pi n^2 / 4` pixels of the circle; the filtering, `A` real FFT pairs of
//! length `P`, is small next to it. `benches/fbp_vs_skimage.sh` (2 cores, shared, load 7-9):
//! 181 x 640 in 0.10-0.14 s, 7.8-9.6 times as fast as `iradon`; 720 x 1024 in 1.4-1.6 s,
//! 7.8-8.4 times.
//!
//! The sinogram must be finite: one NaN or infinity would spread through the FFT to every
//! pixel of the circle (scikit-image returns such a NaN image), so photonqa returns an error.

use std::f64::consts::PI;
use std::fmt;
use std::sync::Arc;

use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use crate::data::{NdArray, c_order};

/// Output rows per back-projection task: the rows of a block share each filtered projection
/// while it is in the L1 cache.
const ROWS: usize = 4;

/// Smallest FFT length scikit-image uses.
const MIN_PADDED: usize = 64;

/// Frequency-domain filter of the projections (scikit-image's `filter_name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// The ramp `|w|`, built from the spatial ramp kernel (no apodisation).
    Ramp,
    /// The ramp times `sin(w) / w` (`w = pi k / P`, the sinc of the frequency).
    SheppLogan,
    /// The ramp times `cos(w)`.
    Cosine,
    /// The ramp times a Hamming window (`0.54 + 0.46 cos`).
    Hamming,
    /// The ramp times a Hann window (`0.5 + 0.5 cos`).
    Hann,
}

impl Filter {
    /// Every filter, in a stable order (used for help texts and errors).
    pub const ALL: [Filter; 5] = [
        Filter::Ramp,
        Filter::SheppLogan,
        Filter::Cosine,
        Filter::Hamming,
        Filter::Hann,
    ];

    /// scikit-image's name: `ramp`, `shepp-logan`, `cosine`, `hamming` or `hann`.
    pub fn name(self) -> &'static str {
        match self {
            Filter::Ramp => "ramp",
            Filter::SheppLogan => "shepp-logan",
            Filter::Cosine => "cosine",
            Filter::Hamming => "hamming",
            Filter::Hann => "hann",
        }
    }

    /// Parses a filter name (as [`Filter::name`]); the error lists the allowed names.
    pub fn parse(name: &str) -> Result<Filter, String> {
        Filter::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                let names: Vec<_> = Filter::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "filter: unknown FBP filter '{name}' (allowed: {})",
                    names.join(", ")
                )
            })
    }

    /// The factor of FFT bin `k` (of `p`) that multiplies the ramp, before symmetrisation.
    fn window(self, k: usize, p: usize) -> f64 {
        let pf = p as f64;
        // fftshift of a length-p (even) array: element k comes from (k + p/2) mod p.
        let shifted = (k + p / 2) % p;
        match self {
            Filter::Ramp => 1.0,
            Filter::SheppLogan => {
                if k == 0 {
                    return 1.0;
                }
                // np.fft.fftfreq: integers k or k - p times 1 / p.
                let freq = if k < p / 2 { k as f64 } else { k as f64 - pf };
                let omega = PI * (freq * (1.0 / pf));
                omega.sin() / omega
            }
            // np.linspace(0, pi, p, endpoint=False): m * (pi / p) + 0.
            Filter::Cosine => (shifted as f64 * (PI / pf) + 0.0).sin(),
            // np.hamming / np.hanning: n = 1 - p + 2 m, a + b cos(pi n / (p - 1)).
            Filter::Hamming => {
                0.54 + 0.46 * (PI * (1.0 - pf + 2.0 * shifted as f64) / (pf - 1.0)).cos()
            }
            Filter::Hann => 0.5 + 0.5 * (PI * (1.0 - pf + 2.0 * shifted as f64) / (pf - 1.0)).cos(),
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Filtered back-projection for one detector length, angle set and filter: the filter
/// spectrum, FFT plans and trigonometric tables are computed once by [`Fbp::new`] and reused
/// by every [`Fbp::reconstruct`] call.
#[derive(Clone)]
pub struct Fbp {
    /// Detector pixels `n` (also the output side).
    detector: usize,
    /// Projection angles in degrees, in sinogram row order.
    theta: Vec<f64>,
    /// The filter.
    filter: Filter,
    /// FFT length `P`.
    padded: usize,
    /// Padded sinogram length `d = ceil(sqrt(2) n)` of scikit-image.
    diagonal: usize,
    /// Symmetrised filter of bins `0..=P/2`, times `1 / P`.
    spectrum: Vec<f64>,
    /// `cos(theta)` per angle.
    cos: Vec<f64>,
    /// `sin(theta)` per angle.
    sin: Vec<f64>,
    /// Real FFT of length `P`.
    forward: Arc<dyn RealToComplex<f64>>,
    /// Inverse real FFT of length `P` (unnormalised).
    inverse: Arc<dyn ComplexToReal<f64>>,
    /// Columns `(first, last)` inside the circle, per output row.
    spans: Vec<(usize, usize)>,
}

impl fmt::Debug for Fbp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fbp")
            .field("detector", &self.detector)
            .field("angles", &self.theta.len())
            .field("filter", &self.filter)
            .field("padded", &self.padded)
            .finish_non_exhaustive()
    }
}

impl Fbp {
    /// Prepares the reconstruction of sinograms of `theta_deg.len()` projections (angles in
    /// degrees, any order and range, in sinogram row order) of `detector` pixels each, filtered
    /// with `filter`. Errors when `detector` is below 2 (or above 2^24), `theta_deg` is empty
    /// or an angle is not finite.
    pub fn new(detector: usize, theta_deg: &[f64], filter: Filter) -> Result<Fbp, String> {
        if detector < 2 {
            return Err(format!(
                "detector: at least 2 pixels needed, got {detector}"
            ));
        }
        // Far beyond any detector; keeps every index below in range of i64 and f64 integers.
        if detector > 1 << 24 {
            return Err(format!(
                "detector: {detector} pixels is too many (at most 2^24)"
            ));
        }
        if theta_deg.is_empty() {
            return Err("theta: no projection angles".to_string());
        }
        if let Some((a, t)) = theta_deg.iter().enumerate().find(|(_, t)| !t.is_finite()) {
            return Err(format!("theta: angle {a} is {t}, not finite"));
        }
        let diagonal = (std::f64::consts::SQRT_2 * detector as f64).ceil() as usize;
        let padded = (2 * diagonal).next_power_of_two().max(MIN_PADDED);
        let mut planner = RealFftPlanner::<f64>::new();
        let forward = planner.plan_fft_forward(padded);
        let inverse = planner.plan_fft_inverse(padded);
        let spectrum = filter_spectrum(filter, padded, &forward);
        let radians: Vec<f64> = theta_deg.iter().map(|t| t.to_radians()).collect();
        let r = (detector / 2) as i64;
        let spans = (0..detector as i64)
            .map(|i| {
                let dy = i - r;
                let w = (r * r - dy * dy).isqrt();
                (
                    (r - w).max(0) as usize,
                    ((r + w) as usize).min(detector - 1),
                )
            })
            .collect();
        Ok(Fbp {
            detector,
            theta: theta_deg.to_vec(),
            filter,
            padded,
            diagonal,
            spectrum,
            cos: radians.iter().map(|t| t.cos()).collect(),
            sin: radians.iter().map(|t| t.sin()).collect(),
            forward,
            inverse,
            spans,
        })
    }

    /// Detector pixels per projection; the output is `detector x detector`.
    pub fn detector(&self) -> usize {
        self.detector
    }

    /// Projection angles in degrees, in sinogram row order.
    pub fn theta(&self) -> &[f64] {
        &self.theta
    }

    /// The filter.
    pub fn filter(&self) -> Filter {
        self.filter
    }

    /// FFT length `P = max(64, 2^ceil(log2(2 ceil(sqrt(2) n))))` of the filtering.
    pub fn padded_len(&self) -> usize {
        self.padded
    }

    /// Reconstructs the slice from a sinogram of `angles x detector` finite values, row-major
    /// (row `a`: the projection at `theta[a]`). Returns `detector x detector` values, row-major,
    /// exactly 0.0 outside the inscribed circle. Errors when the sinogram is empty, its length
    /// is not `angles x detector` or a value is not finite. Runs on the current rayon pool; the
    /// result does not depend on the thread count.
    pub fn reconstruct(&self, sinogram: &[f64]) -> Result<Vec<f64>, String> {
        let (angles, n) = (self.theta.len(), self.detector);
        if sinogram.is_empty() {
            return Err(format!(
                "sinogram: empty, expected {angles} x {n} values (angles x detector)"
            ));
        }
        if sinogram.len() != angles * n {
            return Err(format!(
                "sinogram: {} values, expected {angles} x {n} = {} (angles x detector)",
                sinogram.len(),
                angles * n
            ));
        }
        if let Some(at) = sinogram.iter().position(|v| !v.is_finite()) {
            return Err(format!(
                "sinogram: value {} at angle {}, detector pixel {} is not finite",
                sinogram[at],
                at / n,
                at % n
            ));
        }
        let filtered = self.filter_projections(sinogram);
        Ok(self.back_project(&filtered))
    }

    /// [`Fbp::reconstruct`] of a 2D array of shape `(angles, detector)` of any dtype
    /// (converted to float64).
    pub fn reconstruct_array(&self, sinogram: &NdArray) -> Result<Vec<f64>, String> {
        let expected = [self.theta.len(), self.detector];
        if sinogram.shape() != expected {
            return Err(format!(
                "sinogram: shape {:?}, expected {expected:?} (angles, detector)",
                sinogram.shape()
            ));
        }
        self.reconstruct(&c_order(&sinogram.to_f64()))
    }

    /// Samples stored per filtered projection: coordinates `-(n/2 + 1) ..= n/2 + 1`.
    fn reach(&self) -> usize {
        2 * (self.detector / 2) + 3
    }

    /// The filtered projections, one row of [`Fbp::reach`] pairs per angle: pair `s` holds the
    /// value `p[s]` at detector coordinate `s - (n/2 + 1)` and the slope `p[s + 1] - p[s]` to the
    /// next one (`np.interp`'s slopes; 0 for the last).
    fn filter_projections(&self, sinogram: &[f64]) -> Vec<[f64; 2]> {
        let (n, p, reach) = (self.detector, self.padded, self.reach());
        let half = n / 2;
        let lo = half as i64 + 1;
        // Samples of scikit-image's padded range; the rest stays 0 (np.interp's left/right).
        let d_lo = -((self.diagonal / 2) as i64);
        let d_hi = d_lo + self.diagonal as i64 - 1;
        let scratch_len = self
            .forward
            .get_scratch_len()
            .max(self.inverse.get_scratch_len());
        let mut filtered = vec![[0.0; 2]; self.theta.len() * reach];
        filtered
            .par_chunks_mut(reach)
            .zip(sinogram.par_chunks(n))
            .for_each_init(
                || {
                    (
                        vec![0.0; p],
                        vec![Complex::<f64>::default(); p / 2 + 1],
                        vec![Complex::<f64>::default(); scratch_len],
                    )
                },
                |(line, bins, scratch), (out, projection)| {
                    line[..n].copy_from_slice(projection);
                    line[n..].fill(0.0);
                    self.forward
                        .process_with_scratch(line, bins, scratch)
                        .expect("buffer lengths from the plan");
                    for (b, h) in bins.iter_mut().zip(&self.spectrum) {
                        *b *= *h;
                    }
                    self.inverse
                        .process_with_scratch(bins, line, scratch)
                        .expect("buffer lengths from the plan; real DC and Nyquist bins");
                    let value = |s: usize| {
                        let c = s as i64 - lo;
                        if (d_lo..=d_hi).contains(&c) {
                            line[(c + half as i64).rem_euclid(p as i64) as usize]
                        } else {
                            0.0
                        }
                    };
                    for (s, pair) in out.iter_mut().enumerate() {
                        let v = value(s);
                        let next = if s + 1 < reach { value(s + 1) } else { v };
                        *pair = [v, next - v];
                    }
                },
            );
        filtered
    }

    /// Back-projects the filtered projections onto the `n x n` grid (see the module
    /// documentation).
    fn back_project(&self, filtered: &[[f64; 2]]) -> Vec<f64> {
        let n = self.detector;
        let reach = self.reach();
        let r = (n / 2) as f64;
        let lo = (n / 2) as i32 + 1;
        let half = (n / 2) as i32;
        let scale = (2 * self.theta.len()) as f64;
        let mut image = vec![0.0; n * n];
        image
            .par_chunks_mut(ROWS * n)
            .enumerate()
            .for_each(|(block, rows)| {
                let first = block * ROWS;
                for (a, projection) in filtered.chunks_exact(reach).enumerate() {
                    let (cos, sin) = (self.cos[a], self.sin[a]);
                    for (i, row) in (first..).zip(rows.chunks_exact_mut(n)) {
                        let xs = (i as f64 - r) * sin;
                        let (j0, j1) = self.spans[i];
                        // Column offsets j - n/2 as exact small integers (|j - n/2| < 2^24).
                        let y0 = j0 as i32 - half;
                        accumulate(&mut row[j0..=j1], y0, cos, xs, projection, lo);
                    }
                }
                for (i, row) in (first..).zip(rows.chunks_exact_mut(n)) {
                    let (j0, j1) = self.spans[i];
                    for v in &mut row[j0..=j1] {
                        *v = *v * PI / scale;
                    }
                }
            });
        image
    }
}

/// `1.5 * 2^52`: adding it to a float64 `|t| < 2^51` rounds `t` to the nearest integer, held in
/// the low bits of the sum.
const ROUNDER: f64 = 6_755_399_441_055_744.0;

/// Adds to `out[q]` the filtered projection interpolated at `t = (y0 + q) cos - xs`
/// (`np.interp`: `slope (t - floor(t)) + p`); `lo` is the index of detector coordinate 0 in
/// `projection`.
#[inline(always)]
fn accumulate(out: &mut [f64], y0: i32, cos: f64, xs: f64, projection: &[[f64; 2]], lo: i32) {
    // Two pixels per step, written as pairs so that the compiler uses SSE2 vectors for all but
    // the two table lookups (1.7 times as fast as one pixel per step on the 640 bench).
    let mut pairs = out.chunks_exact_mut(2);
    let mut y = [f64::from(y0), f64::from(y0) + 1.0];
    for pair in &mut pairs {
        let t = [y[0] * cos - xs, y[1] * cos - xs];
        y = [y[0] + 2.0, y[1] + 2.0];
        let sum = [t[0] + ROUNDER, t[1] + ROUNDER];
        let nearest = [sum[0] - ROUNDER, sum[1] - ROUNDER];
        let down = [nearest[0] > t[0], nearest[1] > t[1]];
        let floor = [
            nearest[0] - if down[0] { 1.0 } else { 0.0 },
            nearest[1] - if down[1] { 1.0 } else { 0.0 },
        ];
        let frac = [t[0] - floor[0], t[1] - floor[1]];
        // The low 32 bits of the sums are the nearest integers in two's complement.
        let k = [
            sum[0].to_bits() as u32 as i32 - i32::from(down[0]) + lo,
            sum[1].to_bits() as u32 as i32 - i32::from(down[1]) + lo,
        ];
        let [p0, slope0] = projection[k[0] as usize];
        let [p1, slope1] = projection[k[1] as usize];
        pair[0] += slope0 * frac[0] + p0;
        pair[1] += slope1 * frac[1] + p1;
    }
    if let [last] = pairs.into_remainder() {
        let t = y[0] * cos - xs;
        let sum = t + ROUNDER;
        let nearest = sum - ROUNDER;
        let down = nearest > t;
        let floor = nearest - if down { 1.0 } else { 0.0 };
        let k = sum.to_bits() as u32 as i32 - i32::from(down) + lo;
        let [p, slope] = projection[k as usize];
        *last += slope * (t - floor) + p;
    }
}

/// `count` angles in equal steps over `[start_deg, stop_deg)`, as `np.linspace(start, stop,
/// count, endpoint=False)`: `i * ((stop - start) / count) + start`.
pub fn theta_range(start_deg: f64, stop_deg: f64, count: usize) -> Vec<f64> {
    let step = (stop_deg - start_deg) / count as f64;
    (0..count).map(|i| i as f64 * step + start_deg).collect()
}

/// The filter of FFT bins `0..=p/2` (see the module documentation), symmetrised and times
/// `1 / p`.
fn filter_spectrum(filter: Filter, p: usize, forward: &Arc<dyn RealToComplex<f64>>) -> Vec<f64> {
    // Spatial ramp kernel: 1/4 at 0, -1/(pi k)^2 at odd m (k = m, or p - m past p/2).
    let mut kernel: Vec<f64> = (0..p)
        .map(|m| {
            if m == 0 {
                0.25
            } else if m % 2 == 1 {
                let k = if m < p / 2 { m } else { p - m } as f64;
                let x = PI * k;
                -1.0 / (x * x)
            } else {
                0.0
            }
        })
        .collect();
    let mut bins = forward.make_output_vec();
    forward
        .process(&mut kernel, &mut bins)
        .expect("buffer lengths from the plan");
    let ramp = |k: usize| 2.0 * bins[k.min(p - k)].re;
    let full = |k: usize| ramp(k) * filter.window(k, p);
    (0..=p / 2)
        .map(|k| (full(k) + full((p - k) % p)) / 2.0 * (1.0 / p as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_filter_name() {
        for f in Filter::ALL {
            assert_eq!(Filter::parse(f.name()), Ok(f));
        }
        let e = Filter::parse("Ramp").unwrap_err();
        assert!(e.starts_with("filter:") && e.contains("shepp-logan"), "{e}");
    }

    #[test]
    fn padded_length_follows_scikit_image() {
        // d = ceil(sqrt(2) n); P = max(64, next power of two of 2 d).
        for (n, p) in [
            (2, 64),
            (22, 64),
            (23, 128),
            (64, 256),
            (640, 2048),
            (1024, 4096),
        ] {
            assert_eq!(
                Fbp::new(n, &[0.0], Filter::Ramp).unwrap().padded_len(),
                p,
                "{n}"
            );
        }
    }

    #[test]
    fn theta_range_is_numpy_linspace_without_endpoint() {
        assert_eq!(theta_range(0.0, 180.0, 4), [0.0, 45.0, 90.0, 135.0]);
        assert!(theta_range(0.0, 180.0, 0).is_empty());
    }

    #[test]
    fn point_source_reconstructs_a_centred_peak() {
        let n = 33;
        let theta = theta_range(0.0, 180.0, 90);
        let mut sinogram = vec![0.0; theta.len() * n];
        for row in sinogram.chunks_exact_mut(n) {
            row[n / 2] = 1.0;
        }
        let image = Fbp::new(n, &theta, Filter::Ramp)
            .unwrap()
            .reconstruct(&sinogram)
            .unwrap();
        let peak = image
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(peak, (n / 2) * n + n / 2);
        assert_eq!(image[0], 0.0);
    }
}
