//! The synthetic SAXS pattern of `photonqa gen saxs`: dilute monodisperse homogeneous spheres
//! on a flat detector, with Poisson counting noise.
//!
//! Expected counts of the pixel at `|q|` (1/nm, from [`Geometry::q`]):
//! `mu(q) = counts * P(q) + background`, with the sphere form factor
//! `P(q) = [3 (sin qR - qR cos qR) / (qR)^3]^2` (`P(0) = 1`; below `qR = 1e-3` the series
//! `1 - (qR)^2 / 5`, exact to 1e-13 there). The radius of gyration of a homogeneous sphere of
//! radius `R` is `Rg = sqrt(3/5) R`. No solid-angle, polarisation or absorption factor: the
//! pattern is `P` at each pixel's `q`, so an integration on the same geometry sees `P` itself.
//! The recorded counts are Poisson draws of `mu` (rand_distr `Poisson`, ChaCha8 seeded with
//! `seed`, pixels in row-major order); pixels within `beamstop` pixels of the beam centre are
//! 0 and flagged in the mask.
//!
//! Reference: Lord Rayleigh, Proc. R. Soc. Lond. A 84 (1911) 25, doi:10.1098/rspa.1911.0008;
//! Guinier and Fournet (1955) for `Rg`.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson};

use super::Geometry;

/// What the generator makes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SpheresParams {
    /// Detector rows and columns `(Y, X)`.
    pub shape: [usize; 2],
    /// Detector geometry.
    pub geometry: Geometry,
    /// Sphere radius, nm.
    pub radius_nm: f64,
    /// Expected counts per pixel of the spheres' scattering at `q = 0`.
    pub counts: f64,
    /// Expected flat background counts per pixel.
    pub background: f64,
    /// Radius of the beamstop in pixels (0: none).
    pub beamstop: f64,
    /// Seed of the Poisson draws.
    pub seed: u64,
}

/// The sphere form factor `P(q)` for `qR = x`.
pub fn form_factor(x: f64) -> f64 {
    if x < 1e-3 {
        return 1.0 - x * x / 5.0;
    }
    let f = 3.0 * (x.sin() - x * x.cos()) / (x * x * x);
    f * f
}

/// The radius of gyration of a homogeneous sphere of radius `radius`.
pub fn sphere_rg(radius: f64) -> f64 {
    (0.6f64).sqrt() * radius
}

/// A generated pattern: counts and beamstop mask, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    /// Recorded counts per pixel.
    pub counts: Vec<f64>,
    /// 1 where the beamstop hides the pixel.
    pub mask: Vec<u8>,
}

impl SpheresParams {
    /// Checks the parameters; errors name the one at fault.
    pub fn validate(&self) -> Result<(), String> {
        self.geometry.check(self.shape)?;
        for (name, value) in [("radius", self.radius_nm), ("counts", self.counts)] {
            if !(value > 0.0 && value.is_finite()) {
                return Err(format!("{name} = {value} must be > 0"));
            }
        }
        for (name, value) in [("background", self.background), ("beamstop", self.beamstop)] {
            if !(value >= 0.0 && value.is_finite()) {
                return Err(format!("{name} = {value} must be >= 0"));
            }
        }
        Ok(())
    }

    /// Expected counts of every pixel (no noise, no beamstop).
    pub fn expected(&self) -> Vec<f64> {
        self.geometry
            .q_map(self.shape)
            .iter()
            .map(|q| self.counts * form_factor(q * self.radius_nm) + self.background)
            .collect()
    }

    /// The noisy pattern and its beamstop mask.
    pub fn pattern(&self) -> Result<Pattern, String> {
        self.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let [ny, nx] = self.shape;
        let g = self.geometry;
        let mask: Vec<u8> = (0..ny)
            .flat_map(|y| {
                (0..nx).map(move |x| {
                    let r = ((x as f64 - g.beam_x).powi(2) + (y as f64 - g.beam_y).powi(2)).sqrt();
                    u8::from(r < self.beamstop)
                })
            })
            .collect();
        let counts = self
            .expected()
            .iter()
            .zip(&mask)
            .map(|(&mu, &hidden)| {
                if hidden == 1 || mu <= 0.0 {
                    return Ok(0.0);
                }
                Poisson::new(mu)
                    .map(|p| p.sample(&mut rng))
                    .map_err(|e| format!("Poisson mean {mu}: {e}"))
            })
            .collect::<Result<_, String>>()?;
        Ok(Pattern { counts, mask })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_factor_is_one_at_zero_and_zero_at_the_first_minimum() {
        assert_eq!(form_factor(0.0), 1.0);
        // Series and closed form agree where they meet.
        assert!((form_factor(1e-3) - form_factor(1.0001e-3)).abs() < 1e-9);
        // First zero of tan x = x.
        assert!(form_factor(4.493_409_457_909_064) < 1e-20);
        assert!((sphere_rg(5.0) - 3.872_983_346_207_417).abs() < 1e-12);
    }
}
