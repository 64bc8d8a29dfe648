//! Synthetic XPCS speckle series with a known correlation time (`photonqa gen xpcs`).
//!
//! Every pixel `p` holds an independent circular complex Gaussian field `E_p(t)` with
//! `<|E|^2> = 1` (speckle of one pixel), evolving frame by frame (`t` in frames) as an
//! Ornstein-Uhlenbeck (AR(1)) process
//! `E(t+1) = rho E(t) + sqrt(1 - rho^2) n(t)`, `rho = exp(-1 / tau_c)`, with `n(t)` fresh
//! circular Gaussian noise (`<|n|^2> = 1`) and `E(0)` drawn from the stationary law, so that
//! the field correlation is `g1(tau) = <E(t) E*(t+tau)> = exp(-tau / tau_c)` exactly.
//! A fraction of the intensity is not coherent: the rate is
//! `lambda_p(t) = I_p (s |E_p(t)|^2 + 1 - s)` with `s = sqrt(beta)`, and the frame holds
//! `Poisson(lambda_p(t))` counts (clamped to 65535, uint16). `I_p` is the mean count, falling
//! with the distance `r` (pixels) from the beam at `(X / 2, Y / 2)`:
//! `I_p = mean_count / (1 + (r / r_half)^2)` with `r_half = min(Y, X) / 4`.
//!
//! Then for every pixel and every lag `tau >= 1` frame (Siegert relation for a Gaussian field
//! plus a constant, and Poisson noise being independent between frames):
//! `<n(t) n(t+tau)> / <n>^2 = 1 + s^2 |g1(tau)|^2`, i.e.
//! `g2(tau) - 1 = beta exp(-2 tau / tau_c)`: the analysis's model with baseline 1,
//! contrast `beta`, correlation time `tau_c` (the field's, in frames) and `alpha = 1`.
//!
//! Deterministic: one `ChaCha8Rng::seed_from_u64(seed)` draws, frame by frame and pixel by
//! pixel in C order, the pixel's Poisson count and then the two components of its noise;
//! the stationary start fields are drawn first, pixel by pixel.

use ndarray::Array3;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson, StandardNormal};
use serde::Serialize;

/// What a speckle series is made of.
#[derive(Debug, Clone, Serialize)]
pub struct SpeckleParams {
    /// Frames, rows and columns `(T, Y, X)`.
    pub shape: [usize; 3],
    /// Field correlation time in frames: `g2 - 1 = beta exp(-2 tau / tau_c)`.
    pub tau_c: f64,
    /// Speckle contrast in `(0, 1]`.
    pub beta: f64,
    /// Mean count per frame at the beam (photons).
    pub mean_count: f64,
    /// Seed of every random draw.
    pub seed: u64,
}

impl std::default::Default for SpeckleParams {
    fn default() -> Self {
        SpeckleParams {
            shape: [512, 32, 32],
            tau_c: 4.0,
            beta: 0.3,
            mean_count: 20.0,
            seed: 0,
        }
    }
}

/// A speckle series drawn frame by frame.
pub struct Speckle {
    params: SpeckleParams,
    rng: ChaCha8Rng,
    field: Vec<[f64; 2]>,
    mean: Vec<f64>,
}

/// A circular complex Gaussian with `<|z|^2> = 1`.
fn circular(rng: &mut ChaCha8Rng) -> [f64; 2] {
    let re: f64 = rng.sample(StandardNormal);
    let im: f64 = rng.sample(StandardNormal);
    [
        re * std::f64::consts::FRAC_1_SQRT_2,
        im * std::f64::consts::FRAC_1_SQRT_2,
    ]
}

impl Speckle {
    /// Bytes per pixel of a generator's state (the complex field and the mean count), which
    /// it holds for the whole series.
    pub const STATE_BYTES_PER_PIXEL: u64 = (size_of::<[f64; 2]>() + size_of::<f64>()) as u64;

    /// The series' generator, checking the parameters.
    pub fn new(params: SpeckleParams) -> Result<Speckle, String> {
        let [t, y, x] = params.shape;
        if t < 2 || y == 0 || x == 0 {
            return Err(format!(
                "shape {:?} needs at least 2 frames of 1 x 1",
                params.shape
            ));
        }
        if !(params.tau_c > 0.0 && params.tau_c.is_finite()) {
            return Err(format!("tau_c = {} must be positive", params.tau_c));
        }
        if !(params.beta > 0.0 && params.beta <= 1.0) {
            return Err(format!("beta = {} must be in (0, 1]", params.beta));
        }
        if !(params.mean_count > 0.0 && params.mean_count <= 1e4) {
            return Err(format!(
                "mean_count = {} must be in (0, 10000]",
                params.mean_count
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let field = (0..y * x).map(|_| circular(&mut rng)).collect();
        let r_half = y.min(x) as f64 / 4.0;
        let (cy, cx) = (y as f64 / 2.0, x as f64 / 2.0);
        let mean = (0..y * x)
            .map(|p| {
                let (dy, dx) = ((p / x) as f64 - cy, (p % x) as f64 - cx);
                let r2 = dy * dy + dx * dx;
                params.mean_count / (1.0 + r2 / (r_half * r_half))
            })
            .collect();
        Ok(Speckle {
            params,
            rng,
            field,
            mean,
        })
    }

    /// The next `frames` frames.
    pub fn frames(&mut self, frames: usize) -> Array3<u16> {
        let [_, y, x] = self.params.shape;
        let s = self.params.beta.sqrt();
        let rho = (-1.0 / self.params.tau_c).exp();
        let kick = (1.0 - rho * rho).sqrt();
        let mut out = Array3::zeros((frames, y, x));
        for mut frame in out.outer_iter_mut() {
            for ((count, e), &mean) in frame.iter_mut().zip(&mut self.field).zip(&self.mean) {
                let rate = mean * (s * (e[0] * e[0] + e[1] * e[1]) + 1.0 - s);
                let n: f64 = Poisson::new(rate.max(f64::MIN_POSITIVE))
                    .expect("positive finite rate")
                    .sample(&mut self.rng);
                *count = n.min(f64::from(u16::MAX)) as u16;
                let noise = circular(&mut self.rng);
                *e = [rho * e[0] + kick * noise[0], rho * e[1] + kick * noise[1]];
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_the_requested_mean_and_contrast() {
        // The frame-to-frame correlation at lag 1 follows g2 - 1 = beta exp(-2 / tau_c).
        let params = SpeckleParams {
            shape: [4000, 4, 4],
            tau_c: 5.0,
            beta: 0.5,
            mean_count: 200.0,
            seed: 3,
        };
        let mut speckle = Speckle::new(params).unwrap();
        let frames = speckle.frames(4000).mapv(f64::from);
        let pixel = frames.slice(ndarray::s![.., 2, 2]).to_vec();
        let mean = pixel.iter().sum::<f64>() / pixel.len() as f64;
        assert!((mean / 200.0 - 1.0).abs() < 0.05, "mean {mean}");
        let lag1 = pixel.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / (pixel.len() - 1) as f64;
        let g2 = lag1 / (mean * mean) - 1.0;
        let want = 0.5 * (-2.0f64 / 5.0).exp();
        assert!((g2 - want).abs() < 0.06, "g2 - 1 at lag 1: {g2} vs {want}");
    }
}
