//! Deterministic synthetic serial-crystallography frames: Bragg spots of known positions and
//! integrated intensities on a diffuse radially decaying background, with Poisson counting
//! noise.
//!
//! Frame `f` of shape `(ny, nx)` has the expected counts
//!
//! `lambda(y, x) = b0 exp(-r / r0) + b1 + sum_spots I / (2 pi s^2) exp(-((y - y_s)^2 + (x - x_s)^2) / (2 s^2))`
//!
//! with `r` the distance of pixel `(y, x)` from the beam centre `((ny - 1) / 2, (nx - 1) / 2)`,
//! and each spot a 2-D Gaussian of width `s` and integrated intensity `I` (photons) sampled at
//! the pixel centres (for `s >= 0.7` the sampled sum equals `I` to 1e-3), rendered within 6 `s`.
//! The counts are `Poisson(lambda)` draws, clipped to the output type.
//!
//! Spots: a frame is a hit with probability `hit_fraction` and then holds `hit_peaks` spots
//! (uniform), else `miss_peaks` (uniform: a few stray spots or none). Each spot has `s` uniform
//! in `sigma`, `I` log-uniform in `intensity`, a position uniform over the frame at least
//! `margin` pixels from the edges and `beam_stop` pixels from the beam centre, and at least
//! `separation` pixels from the frame's other spots (drawn again until it is; a frame with no
//! room gets fewer spots).
//!
//! Determinism: the spots come from `ChaCha8Rng::seed_from_u64(seed)` on stream 0, the noise
//! of frame `f` from the same seed on stream `f + 1`, so a frame does not depend on which other
//! frames are rendered.

use std::f64::consts::PI;
use std::ops::Range;

use ndarray::Array3;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson};
use serde::Serialize;

/// Draws of a spot's position before the frame is declared full.
const PLACEMENT_TRIES: usize = 1000;

/// The model's parameters (see the module doc).
#[derive(Debug, Clone, Serialize)]
pub struct SxParams {
    /// Frames, rows, columns.
    pub shape: [usize; 3],
    /// Seed of every random choice.
    pub seed: u64,
    /// Probability that a frame is a hit.
    pub hit_fraction: f64,
    /// Spots of a hit frame (inclusive range).
    pub hit_peaks: [usize; 2],
    /// Spots of a miss (inclusive range).
    pub miss_peaks: [usize; 2],
    /// Integrated intensity range of a spot (photons), log-uniform.
    pub intensity: [f64; 2],
    /// Gaussian width range of a spot (pixels).
    pub sigma: [f64; 2],
    /// Background at the beam centre above `b1` (photons per pixel).
    pub b0: f64,
    /// Decay length of the background (pixels).
    pub r0: f64,
    /// Constant background (photons per pixel), > 0.
    pub b1: f64,
    /// Smallest distance of a spot from the frame's edges (pixels).
    pub margin: f64,
    /// Smallest distance of a spot from the beam centre (pixels).
    pub beam_stop: f64,
    /// Smallest distance between two spots of a frame (pixels).
    pub separation: f64,
}

impl Default for SxParams {
    fn default() -> SxParams {
        SxParams {
            shape: [32, 128, 128],
            seed: 0,
            hit_fraction: 0.75,
            hit_peaks: [10, 25],
            miss_peaks: [0, 2],
            intensity: [1000.0, 20000.0],
            sigma: [0.7, 1.2],
            b0: 10.0,
            r0: 25.0,
            b1: 0.5,
            margin: 6.0,
            beam_stop: 12.0,
            separation: 10.0,
        }
    }
}

/// One spot of the ground truth.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrueSpot {
    /// Frame index.
    pub frame: usize,
    /// Centre row (pixels).
    pub y: f64,
    /// Centre column (pixels).
    pub x: f64,
    /// Gaussian width (pixels).
    pub sigma: f64,
    /// Integrated intensity (photons).
    pub intensity: f64,
}

/// The frames of a model, rendered on demand.
#[derive(Debug, Clone)]
pub struct SxFrames {
    params: SxParams,
    /// The spots, by frame, in the order drawn.
    pub spots: Vec<TrueSpot>,
}

impl SxParams {
    /// A bound on the bytes of the spot list [`SxFrames::new`] draws: the most spots a frame
    /// can hold, for every frame, with room for the list to double.
    pub fn spots_bytes(&self) -> u64 {
        let most = self.hit_peaks[1].max(self.miss_peaks[1]) as u64;
        (2 * size_of::<TrueSpot>() as u64)
            .saturating_mul(most)
            .saturating_mul(self.shape[0] as u64)
    }
}

impl SxFrames {
    /// Places the spots; errors name the parameter out of range.
    pub fn new(params: SxParams) -> Result<SxFrames, String> {
        let [n, ny, nx] = params.shape;
        if n == 0 || ny < 16 || nx < 16 {
            return Err(format!(
                "shape {:?} needs at least one frame of 16x16",
                params.shape
            ));
        }
        if !(0.0..=1.0).contains(&params.hit_fraction) {
            return Err(format!(
                "hit_fraction = {} is not in 0..=1",
                params.hit_fraction
            ));
        }
        if params.b1 <= 0.0 || params.b0 < 0.0 || params.r0 <= 0.0 {
            return Err("the background needs b1 > 0, b0 >= 0 and r0 > 0".into());
        }
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let (cy, cx) = centre(ny, nx);
        let mut spots = Vec::new();
        for frame in 0..n {
            let [lo, hi] = if rng.random::<f64>() < params.hit_fraction {
                params.hit_peaks
            } else {
                params.miss_peaks
            };
            let count = rng.random_range(lo..=hi);
            let first = spots.len();
            for _ in 0..count {
                let placed = (0..PLACEMENT_TRIES).find_map(|_| {
                    let y = rng.random_range(params.margin..ny as f64 - 1.0 - params.margin);
                    let x = rng.random_range(params.margin..nx as f64 - 1.0 - params.margin);
                    let clear = (y - cy).hypot(x - cx) >= params.beam_stop
                        && spots[first..]
                            .iter()
                            .all(|s: &TrueSpot| (s.y - y).hypot(s.x - x) >= params.separation);
                    clear.then_some((y, x))
                });
                let Some((y, x)) = placed else { break };
                let sigma = rng.random_range(params.sigma[0]..=params.sigma[1]);
                let [i0, i1] = params.intensity;
                let intensity = (i0.ln() + rng.random::<f64>() * (i1 / i0).ln()).exp();
                spots.push(TrueSpot {
                    frame,
                    y,
                    x,
                    sigma,
                    intensity,
                });
            }
        }
        Ok(SxFrames { params, spots })
    }

    /// The expected counts of frame `frame`.
    pub fn expected(&self, frame: usize) -> ndarray::Array2<f64> {
        let [_, ny, nx] = self.params.shape;
        let (cy, cx) = centre(ny, nx);
        let p = &self.params;
        let mut lambda = ndarray::Array2::from_shape_fn((ny, nx), |(y, x)| {
            let r = (y as f64 - cy).hypot(x as f64 - cx);
            p.b0 * (-r / p.r0).exp() + p.b1
        });
        // The spots are in frame order: a frame's are found without scanning them all.
        let first = self.spots.partition_point(|s| s.frame < frame);
        for s in self.spots[first..].iter().take_while(|s| s.frame == frame) {
            let reach = 6.0 * s.sigma;
            let rows = (s.y - reach).floor().max(0.0) as usize
                ..((s.y + reach).ceil() as usize + 1).min(ny);
            let cols = (s.x - reach).floor().max(0.0) as usize
                ..((s.x + reach).ceil() as usize + 1).min(nx);
            let peak = s.intensity / (2.0 * PI * s.sigma * s.sigma);
            for y in rows {
                for x in cols.clone() {
                    let d2 = (y as f64 - s.y).powi(2) + (x as f64 - s.x).powi(2);
                    lambda[[y, x]] += peak * (-d2 / (2.0 * s.sigma * s.sigma)).exp();
                }
            }
        }
        lambda
    }

    /// Noisy counts of frames `frames`, clipped to `0..=max`.
    pub fn counts(&self, frames: Range<usize>, max: f64) -> Array3<f64> {
        let [_, ny, nx] = self.params.shape;
        let mut out = Array3::zeros((frames.len(), ny, nx));
        for (i, f) in frames.enumerate() {
            let mut rng = ChaCha8Rng::seed_from_u64(self.params.seed);
            rng.set_stream(f as u64 + 1);
            let lambda = self.expected(f);
            for ((y, x), &l) in lambda.indexed_iter() {
                let draw = Poisson::new(l).expect("lambda >= b1 > 0").sample(&mut rng);
                out[[i, y, x]] = draw.min(max);
            }
        }
        out
    }
}

/// The beam centre of a `(ny, nx)` frame.
fn centre(ny: usize, nx: usize) -> (f64, f64) {
    ((ny as f64 - 1.0) / 2.0, (nx as f64 - 1.0) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spots_are_apart_and_frames_are_reproducible() {
        let model = SxFrames::new(SxParams {
            shape: [4, 64, 64],
            ..SxParams::default()
        })
        .unwrap();
        assert!(!model.spots.is_empty());
        for a in &model.spots {
            for b in model.spots.iter().filter(|b| b.frame == a.frame && *b != a) {
                assert!((a.y - b.y).hypot(a.x - b.x) >= 10.0);
            }
        }
        // Frame 2 alone equals frame 2 of the whole stack.
        let all = model.counts(0..4, 65535.0);
        let one = model.counts(2..3, 65535.0);
        assert_eq!(all.slice(ndarray::s![2..3, .., ..]), one);
        // The expected counts hold each spot's intensity above the background.
        let spot = model.spots[0];
        let background = SxFrames {
            spots: Vec::new(),
            ..model.clone()
        };
        let excess = (&model.expected(spot.frame) - &background.expected(spot.frame)).sum();
        let in_frame: f64 = model
            .spots
            .iter()
            .filter(|s| s.frame == spot.frame)
            .map(|s| s.intensity)
            .sum();
        assert!(
            (excess / in_frame - 1.0).abs() < 1e-3,
            "{excess} vs {in_frame}"
        );
    }
}
