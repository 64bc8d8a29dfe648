//! The Bragg-peak finder of serial crystallography, in the spirit of peakfinder8 (Barty et al.
//! 2014), and the greedy matching of two peak lists: shared by the `sx` analysis
//! ([`crate::analysis::sx`], whose module doc gives the algorithm, its parameters and the
//! matching rule) and the `veto` stage ([`crate::pipeline::stages::veto`], which drops frames
//! with too few peaks), so both find the same peaks.
//!
//! # References
//!
//! 1. A. Barty, R. A. Kirian, F. R. N. C. Maia, M. Hantke, C. H. Yoon, T. A. White, H. Chapman,
//!    "Cheetah: software for high-throughput reduction and analysis of serial femtosecond
//!    X-ray diffraction data", J. Appl. Cryst. 47 (2014) 1118-1131,
//!    doi:10.1107/S1600576714007626.

use ndarray::ArrayView2;

/// A Bragg peak found in one frame.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Peak {
    /// Weighted centroid, row (pixels).
    pub y: f64,
    /// Weighted centroid, column (pixels).
    pub x: f64,
    /// Background-subtracted integrated intensity.
    pub intensity: f64,
    /// Number of pixels.
    pub pixels: usize,
    /// Row of its first pixel in raster order.
    pub first_row: usize,
}

/// The peak finder's parameters (see [`crate::analysis::sx`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Finder {
    /// `snr_threshold`, > 0.
    pub snr: f64,
    /// `clip_snr` of the background estimate, > 0.
    pub clip: f64,
    /// `adc_threshold`.
    pub adc: f64,
    /// `min_pixels`.
    pub min_pixels: usize,
    /// `max_pixels`.
    pub max_pixels: usize,
    /// `iterations` of the background estimate, >= 1.
    pub iterations: usize,
    /// Beam centre `(c_y, c_x)`.
    pub centre: (f64, f64),
}

impl Finder {
    /// The peaks of one frame, in the order of their first pixel.
    pub fn find(&self, frame: ArrayView2<f64>) -> Vec<Peak> {
        let (ny, nx) = frame.dim();
        let values: Vec<f64> = frame.iter().copied().collect();
        let bins: Vec<usize> = (0..ny * nx)
            .map(|i| {
                let dy = (i / nx) as f64 - self.centre.0;
                let dx = (i % nx) as f64 - self.centre.1;
                (dy * dy + dx * dx).sqrt().floor() as usize
            })
            .collect();
        let nbins = bins.iter().max().map_or(0, |&k| k + 1);
        let mut active = vec![true; values.len()];
        let (mut mu, mut sigma) = (vec![0.0; nbins], vec![0.0; nbins]);
        for _ in 0..self.iterations {
            let (mut n, mut s, mut q) = (vec![0.0; nbins], vec![0.0; nbins], vec![0.0; nbins]);
            for (i, &v) in values.iter().enumerate() {
                if active[i] {
                    n[bins[i]] += 1.0;
                    s[bins[i]] += v;
                    q[bins[i]] += v * v;
                }
            }
            for k in 0..nbins {
                // A bin without active pixels (only possible when empty) keeps mu = sigma = 0.
                if n[k] > 0.0 {
                    mu[k] = s[k] / n[k];
                    sigma[k] = (q[k] / n[k] - mu[k] * mu[k]).max(0.0).sqrt();
                }
            }
            for (i, &v) in values.iter().enumerate() {
                active[i] = v - mu[bins[i]] <= self.clip * sigma[bins[i]];
            }
        }
        let weight = |i: usize| values[i] - mu[bins[i]];
        let is_peak: Vec<bool> = (0..values.len())
            .map(|i| weight(i) > self.snr * sigma[bins[i]] && values[i] > self.adc)
            .collect();
        let mut seen = vec![false; values.len()];
        let mut peaks = Vec::new();
        let mut stack = Vec::new();
        let mut members = Vec::new();
        for start in 0..values.len() {
            if !is_peak[start] || seen[start] {
                continue;
            }
            seen[start] = true;
            stack.push(start);
            members.clear();
            while let Some(i) = stack.pop() {
                members.push(i);
                let (y, x) = (i / nx, i % nx);
                for ny_ in y.saturating_sub(1)..(y + 2).min(ny) {
                    for nx_ in x.saturating_sub(1)..(x + 2).min(nx) {
                        let j = ny_ * nx + nx_;
                        if is_peak[j] && !seen[j] {
                            seen[j] = true;
                            stack.push(j);
                        }
                    }
                }
            }
            if !(self.min_pixels..=self.max_pixels).contains(&members.len()) {
                continue;
            }
            // Raster order, so that the sums do not depend on the flood fill's order.
            members.sort_unstable();
            let (mut total, mut sy, mut sx) = (0.0, 0.0, 0.0);
            for &i in &members {
                let w = weight(i);
                total += w;
                sy += w * (i / nx) as f64;
                sx += w * (i % nx) as f64;
            }
            peaks.push(Peak {
                y: sy / total,
                x: sx / total,
                intensity: total,
                pixels: members.len(),
                first_row: start / nx,
            });
        }
        peaks
    }
}

/// Greedy matching of `decoded` to `original` peaks within `radius` (see [`crate::analysis::sx`]):
/// pairs `(original index, decoded index)` in the order taken.
pub fn match_peaks(original: &[Peak], decoded: &[Peak], radius: f64) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for (i, a) in original.iter().enumerate() {
        for (j, b) in decoded.iter().enumerate() {
            let d = (a.y - b.y).hypot(a.x - b.x);
            if d <= radius {
                pairs.push((d, i, j));
            }
        }
    }
    pairs.sort_by(|p, q| p.0.total_cmp(&q.0).then(p.1.cmp(&q.1)).then(p.2.cmp(&q.2)));
    let (mut used_a, mut used_b) = (vec![false; original.len()], vec![false; decoded.len()]);
    let mut taken = Vec::new();
    for (_, i, j) in pairs {
        if !used_a[i] && !used_b[j] {
            used_a[i] = true;
            used_b[j] = true;
            taken.push((i, j));
        }
    }
    taken
}
