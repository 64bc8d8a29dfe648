//! Deterministic synthetic X-ray tomography phantom of a vesiculating magma.
//!
//! [`PorousTomo`] mimics a reconstructed attenuation volume (float32, arbitrary
//! units roughly in `[0, 1]`, axis order `[z, y, x]`):
//!
//! * a cylindrical sample (axis along axis 0, centred in-plane) of silicate
//!   melt/glass, surrounded by air;
//! * gas bubbles (vesicles) with log-normally distributed radii, placed at
//!   random inside the cylinder until the requested porosity is reached; most
//!   bubbles are kept apart by random sequential addition, a fraction of them
//!   is deliberately placed overlapping a neighbour (coalescence);
//! * small, randomly oriented dense ellipsoidal crystals (oxides) that do not
//!   touch bubbles;
//! * partial-volume blur of every phase boundary, rendered as an erf edge
//!   profile of the signed distance to the nearest surface (the analytic
//!   Gaussian blur of a planar step), so no convolution is ever run;
//! * an optional weak radial cupping (beam hardening) of the sample;
//! * additive Gaussian noise, deterministic per voxel.
//!
//! # Determinism and streaming
//!
//! Everything is a pure function of [`PorousTomoParams`]. Objects are placed
//! once in [`PorousTomo::new`] from a `ChaCha8Rng` seeded with
//! `seed_from_u64(seed)` on stream 0. Each slice `z` is then rendered
//! independently: only objects whose z extent touches the slice are visited
//! (binary search in object lists sorted along axis 0), and only inside their
//! bounding boxes. The noise of slice `z` comes from
//! `ChaCha8Rng::seed_from_u64(seed)` on stream `z + 1` (`set_stream`), drawn
//! as `StandardNormal` `f32` samples in row-major order. Hence a voxel's value
//! does not depend on how the volume is cut into slabs, and memory use of
//! rendering is bounded by the slab the caller asks for (plus the object
//! list, a few tens of MB for a 15000x256x256 volume).
//!
//! # Volume fractions
//!
//! Bubbles and crystals lie entirely inside the cylinder (1 voxel from its
//! surface) but may be cut by the first and last slice, as in a sub-volume of
//! a longer sample. Bubbles are added (largest first) until their gas volume
//! inside the grid, counted analytically (merging bubbles: on a point
//! lattice), reaches `porosity * pi R^2 nz`; the voxel-counted
//! [`PorousTomo::true_porosity`] is then within about 0.001 of the target.
//! Crystals never touch bubbles or each other; in a very full sample fewer
//! crystals than requested may fit (see [`PorousTomo::placed_crystal_fraction`]).
//!
//! # Cost
//!
//! For 15000x256x256 with the defaults: placement about 0.6 s, rendering
//! about 17 s on 2 cores (about 1.1 ms of one core per slice), peak memory
//! about 60 MB with 64-slice slabs.
//!
//! Coordinates: voxel `(z, y, x)` has its centre at `(z, y, x)`; the grid
//! covers `[-0.5, n - 0.5]` along each axis. The cylinder axis passes through
//! `((ny - 1) / 2, (nx - 1) / 2)`.

use std::f64::consts::PI;
use std::ops::Range;
use std::sync::OnceLock;

use ndarray::{Array3, ArrayViewMut2, ArrayViewMut3, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

/// Phase label of voxels outside the cylindrical sample (air).
pub const LABEL_AIR: u8 = 0;
/// Phase label of silicate melt/glass voxels.
pub const LABEL_MELT: u8 = 1;
/// Phase label of gas (bubble, vesicle) voxels.
pub const LABEL_GAS: u8 = 2;
/// Phase label of dense crystal voxels.
pub const LABEL_CRYSTAL: u8 = 3;

/// Random sequential addition attempts per bubble before an overlap is accepted.
const BUBBLE_TRIES: usize = 64;
/// Attempts to place a coalescing bubble against a single neighbour.
const COALESCE_TRIES: usize = 16;
/// Centre distance of a coalescing pair is `r_large + s * r_small` with `s`
/// drawn from this range, so the smaller bubble always sticks out as a lobe.
const COALESCE_OFFSET: Range<f64> = -0.6..0.6;
/// Attempts per crystal before the crystal is dropped.
const CRYSTAL_TRIES: usize = 32;
/// Consecutive dropped crystals after which crystal placement stops (sample full).
const CRYSTAL_MAX_FAILURES: usize = 256;
/// Log-normal shape parameter of the crystal equivalent radius.
const CRYSTAL_LOG_SIGMA: f64 = 0.3;
/// Crystal equivalent radii are truncated to this range, in multiples of the median.
const CRYSTAL_RADIUS_RANGE: Range<f64> = 0.5..2.5;
/// Maximum ratio between a crystal semi-axis and its smallest one.
const CRYSTAL_MAX_ASPECT: f64 = 1.8;
/// Minimum distance (voxels) between any object and the cylinder surface.
const RIM_MARGIN: f64 = 1.0;
/// Edge of the cells of the placement grid (voxels).
const GRID_CELL: f64 = 16.0;
/// Objects are rendered up to `EDGE_CUTOFF_SIGMAS * blur_sigma + 0.5` voxels
/// from their surface; beyond that the erf profile is saturated (< 3e-7).
const EDGE_CUTOFF_SIGMAS: f64 = 5.0;
/// Points per axis of the lattice measuring the new volume of merging bubbles.
const LATTICE_N: usize = 12;
/// Tag bit marking crystal ids in the placement grid.
const CRYSTAL_TAG: u32 = 1 << 31;
/// Radii drawn from each size distribution by [`PorousTomoParams::model_bytes`].
const MODEL_SAMPLE: usize = 4096;
/// Factor on the expected bubble count in [`PorousTomoParams::model_bytes`]: merging bubbles
/// add less than their volume and small ones fit where large ones fail, so more are placed
/// (1.67x the mean-volume count at porosity 0.6 with every bubble merging).
const BUBBLE_COUNT_MARGIN: f64 = 2.0;
/// Factor on the expected crystal count in [`PorousTomoParams::model_bytes`]: in a full sample
/// small crystals fit where large ones fail (1.28x the mean-volume count at porosity 0.6).
const CRYSTAL_COUNT_MARGIN: f64 = 1.5;
/// Bytes per pixel of the in-plane tables of [`PorousTomo`] (air term, sample weight, inside).
const PIXEL_TABLE_BYTES: usize = 2 * size_of::<f32>() + size_of::<bool>();

/// Parameters of the porous-tomo phantom (all have defaults via [`Default`]).
///
/// Lengths are in voxels unless stated otherwise; attenuations are in the
/// arbitrary units of the output volume.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PorousTomoParams {
    /// Volume shape `[nz, ny, nx]`; axis 0 is the cylinder axis. `ny` and `nx` must be at least 16.
    pub shape: [usize; 3],
    /// Seed of every random choice (object placement and noise).
    pub seed: u64,
    /// Target gas volume fraction of the cylindrical sample, in `[0, 0.6]`.
    pub porosity: f64,
    /// Target crystal volume fraction of the cylindrical sample, in `[0, 0.2]`.
    pub crystal_fraction: f64,
    /// Width (Gaussian sigma, voxels) of the partial-volume edge profile; `0` gives sharp edges.
    pub blur_sigma: f64,
    /// Standard deviation of the additive Gaussian noise; `0` gives a noiseless volume.
    pub noise_sigma: f64,
    /// Cylinder radius as a fraction of `min(ny, nx)`, in `[0.1, 0.5]`.
    pub cylinder_radius_fraction: f64,
    /// Median of the log-normal bubble radius distribution (voxels).
    pub bubble_radius_median: f64,
    /// Shape parameter (sigma of `ln r`) of the bubble radius distribution.
    pub bubble_radius_log_sigma: f64,
    /// Smallest bubble radius (voxels); the distribution is truncated below it.
    pub bubble_radius_min: f64,
    /// Largest bubble radius as a fraction of `min(ny, nx)`; the distribution is truncated above it.
    pub bubble_radius_max_fraction: f64,
    /// Fraction of bubbles placed overlapping one neighbour (coalescing pairs), in `[0, 1]`.
    pub coalescence_fraction: f64,
    /// Median equivalent-sphere radius of the crystals (voxels); radii span 0.5x to 2.5x this.
    pub crystal_radius_median: f64,
    /// Relative attenuation increase at the rim of the cylinder (beam-hardening cupping,
    /// quadratic in radius), in `[-0.5, 0.5]`.
    pub cupping: f64,
    /// Attenuation of air (outside the sample).
    pub attenuation_air: f64,
    /// Attenuation of the silicate melt/glass.
    pub attenuation_melt: f64,
    /// Attenuation of gas inside bubbles.
    pub attenuation_gas: f64,
    /// Attenuation of the dense crystals.
    pub attenuation_crystal: f64,
}

impl Default for PorousTomoParams {
    fn default() -> Self {
        Self {
            shape: [256, 256, 256],
            seed: 0,
            porosity: 0.25,
            crystal_fraction: 0.015,
            blur_sigma: 1.0,
            noise_sigma: 0.03,
            cylinder_radius_fraction: 0.45,
            bubble_radius_median: 5.0,
            bubble_radius_log_sigma: 0.6,
            bubble_radius_min: 1.5,
            bubble_radius_max_fraction: 0.12,
            coalescence_fraction: 0.05,
            crystal_radius_median: 2.0,
            cupping: 0.03,
            attenuation_air: 0.02,
            attenuation_melt: 0.55,
            attenuation_gas: 0.05,
            attenuation_crystal: 0.9,
        }
    }
}

fn in_range(name: &str, value: f64, lo: f64, hi: f64) -> Result<(), String> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "invalid phantom params: {name} must be in [{lo}, {hi}], got {value}"
        ))
    }
}

impl PorousTomoParams {
    /// Checks the parameters.
    ///
    /// # Errors
    /// A one-line message naming the first bad parameter: zero or too small
    /// dimensions, a value out of its documented range or not finite, or
    /// bubbles/crystals too large for the cylinder.
    pub fn validate(&self) -> Result<(), String> {
        let [nz, ny, nx] = self.shape;
        if nz == 0 || ny == 0 || nx == 0 {
            return Err(format!(
                "invalid phantom params: shape must have no zero dimension, got {:?}",
                self.shape
            ));
        }
        if ny < 16 || nx < 16 {
            return Err(format!(
                "invalid phantom params: in-plane shape must be at least 16x16, got {ny}x{nx}"
            ));
        }
        if nz.checked_mul(ny).and_then(|v| v.checked_mul(nx)).is_none() {
            return Err(format!(
                "invalid phantom params: shape {:?} overflows the voxel count",
                self.shape
            ));
        }
        in_range("porosity", self.porosity, 0.0, 0.6)?;
        in_range("crystal_fraction", self.crystal_fraction, 0.0, 0.2)?;
        in_range("blur_sigma", self.blur_sigma, 0.0, 100.0)?;
        in_range("noise_sigma", self.noise_sigma, 0.0, 100.0)?;
        in_range(
            "cylinder_radius_fraction",
            self.cylinder_radius_fraction,
            0.1,
            0.5,
        )?;
        in_range("bubble_radius_median", self.bubble_radius_median, 0.1, 1e6)?;
        in_range(
            "bubble_radius_log_sigma",
            self.bubble_radius_log_sigma,
            0.0,
            3.0,
        )?;
        in_range("bubble_radius_min", self.bubble_radius_min, 0.1, 1e6)?;
        in_range(
            "bubble_radius_max_fraction",
            self.bubble_radius_max_fraction,
            0.0,
            0.5,
        )?;
        in_range("coalescence_fraction", self.coalescence_fraction, 0.0, 1.0)?;
        in_range(
            "crystal_radius_median",
            self.crystal_radius_median,
            0.1,
            1e6,
        )?;
        in_range("cupping", self.cupping, -0.5, 0.5)?;
        for (name, value) in [
            ("attenuation_air", self.attenuation_air),
            ("attenuation_melt", self.attenuation_melt),
            ("attenuation_gas", self.attenuation_gas),
            ("attenuation_crystal", self.attenuation_crystal),
        ] {
            in_range(name, value, -1e6, 1e6)?;
        }
        let geo = Geometry::new(self);
        let r_max = self.bubble_radius_max();
        if r_max < self.bubble_radius_min {
            return Err(format!(
                "invalid phantom params: largest bubble radius {r_max} (bubble_radius_max_fraction * min(ny, nx)) is below bubble_radius_min {}",
                self.bubble_radius_min
            ));
        }
        if r_max + RIM_MARGIN >= geo.radius {
            return Err(format!(
                "invalid phantom params: bubbles up to radius {r_max} do not fit in the cylinder of radius {}",
                geo.radius
            ));
        }
        let b_max = self.crystal_radius_median * CRYSTAL_RADIUS_RANGE.end * CRYSTAL_MAX_ASPECT;
        if b_max + RIM_MARGIN >= geo.radius {
            return Err(format!(
                "invalid phantom params: crystals up to radius {b_max} do not fit in the cylinder of radius {}",
                geo.radius
            ));
        }
        Ok(())
    }

    fn bubble_radius_max(&self) -> f64 {
        self.bubble_radius_max_fraction * self.shape[1].min(self.shape[2]) as f64
    }

    /// How far (voxels) objects may reach beyond the first and last slice.
    fn z_margin(&self) -> f64 {
        self.bubble_radius_max()
            .max(self.crystal_radius_median * CRYSTAL_RADIUS_RANGE.end * CRYSTAL_MAX_ASPECT)
            + 1.0
    }

    /// An estimate from above of the bytes [`PorousTomo::new`] holds at its peak, computed
    /// without placing anything: the placement grid, the bubbles and crystals (while placed
    /// and as rendered) and the per-pixel tables. Rendering needs more per slice (see
    /// [`PorousTomo::SLICE_SCRATCH_BYTES_PER_PIXEL`]).
    ///
    /// The object counts are the target volumes over the mean volumes of 4096 radii drawn
    /// from each size distribution (on a random stream of their own: the phantom does not
    /// change), times a margin (2 for bubbles, 1.5 for crystals); each object is counted with
    /// room for its vectors to double. With the defaults the estimate is about 0.16 bytes per
    /// voxel (157 MB for 15000x256x256, 1.4 GB for 2048^3), 2.5 to 3 times the peak resident
    /// memory measured on 1000x256x256, 2000x512x512 and 256x1024x1024, and on 500x256x256 at
    /// porosity 0.1, and 0.6 with every bubble merging.
    ///
    /// Meant to refuse, before any allocation, a phantom too large for a memory budget: the
    /// placement is sequential over the whole volume and its memory grows with the volume.
    pub fn model_bytes(&self) -> u64 {
        let geo = Geometry::new(self);
        let cells = Grid::dims(&geo, self.z_margin()).iter().product::<usize>() as f64;
        let objects = self.expected_objects();
        // Placement vectors (with room to double), the rendered copy and its z index, and the
        // registered ids (4 bytes each, room to double).
        let size = |bytes: usize| bytes as f64;
        let per_bubble = 2.0 * size(size_of::<Sphere>() + size_of::<f64>())
            + size(size_of::<(RenderSphere, f32, f32)>() + size_of::<RenderSphere>() + 4)
            + 8.0 * objects.bubble_cells;
        let per_crystal = 2.0 * size(size_of::<Ellipsoid>())
            + size(size_of::<(RenderEllipsoid, f32, f32)>() + size_of::<RenderEllipsoid>() + 4)
            + 8.0 * objects.crystal_cells;
        // A vector per cell, and its allocation once an object is registered there.
        let grid = cells * size(size_of::<Vec<u32>>() + 32);
        let tables = (geo.ny * geo.nx) as f64 * PIXEL_TABLE_BYTES as f64;
        (grid + objects.bubbles * per_bubble + objects.crystals * per_crystal + tables).ceil()
            as u64
    }

    /// The object counts [`PorousTomoParams::model_bytes`] expects, margins included, and the
    /// grid cells an object is registered in, on average.
    fn expected_objects(&self) -> ExpectedObjects {
        let geo = Geometry::new(self);
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(u64::MAX);
        let nz = geo.nz as f64;
        // Grid cells an object of bounding radius `b` is registered in, on average over its
        // position: a span of 2b overlaps 1 + 2b / GRID_CELL cells along an axis.
        let spans = |b: f64| (1.0 + 2.0 * b / GRID_CELL).powi(3);
        // Mean volume inside the grid and mean cells of `MODEL_SAMPLE` objects of `draw`: a
        // volume and a bounding radius.
        let mut mean = |draw: &dyn Fn(&mut ChaCha8Rng) -> (f64, f64)| {
            let (mut volume, mut cells) = (0.0, 0.0);
            for _ in 0..MODEL_SAMPLE {
                let (v, b) = draw(&mut rng);
                volume += v;
                cells += spans(b);
            }
            (volume / MODEL_SAMPLE as f64, cells / MODEL_SAMPLE as f64)
        };
        let (bubble_volume, bubble_cells) = mean(&|rng| {
            let r = truncated_lognormal(
                rng,
                self.bubble_radius_median,
                self.bubble_radius_log_sigma,
                self.bubble_radius_min,
                self.bubble_radius_max(),
            );
            // As place_bubbles counts the volume a bubble brings inside the grid.
            (sphere_volume(r) * nz / (nz + 2.0 * r), r)
        });
        let median = self.crystal_radius_median;
        let (crystal_volume, crystal_cells) = mean(&|rng| {
            let r = truncated_lognormal(
                rng,
                median,
                CRYSTAL_LOG_SIGMA,
                median * CRYSTAL_RADIUS_RANGE.start,
                median * CRYSTAL_RADIUS_RANGE.end,
            );
            (sphere_volume(r), r * CRYSTAL_MAX_ASPECT)
        });
        ExpectedObjects {
            // Small volumes: a few bubbles more than the mean volume says.
            bubbles: BUBBLE_COUNT_MARGIN * self.porosity * geo.sample_volume() / bubble_volume
                + 1000.0,
            bubble_cells,
            crystals: CRYSTAL_COUNT_MARGIN * self.crystal_fraction * geo.sample_volume()
                / crystal_volume,
            crystal_cells,
        }
    }
}

/// See [`PorousTomoParams::expected_objects`].
struct ExpectedObjects {
    bubbles: f64,
    bubble_cells: f64,
    crystals: f64,
    crystal_cells: f64,
}

/// The cylindrical sample in voxel coordinates.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    nz: usize,
    ny: usize,
    nx: usize,
    cy: f64,
    cx: f64,
    radius: f64,
}

impl Geometry {
    fn new(p: &PorousTomoParams) -> Self {
        let [nz, ny, nx] = p.shape;
        Self {
            nz,
            ny,
            nx,
            cy: (ny as f64 - 1.0) / 2.0,
            cx: (nx as f64 - 1.0) / 2.0,
            radius: p.cylinder_radius_fraction * ny.min(nx) as f64,
        }
    }

    /// Analytic volume of the cylinder inside the grid.
    fn sample_volume(&self) -> f64 {
        PI * self.radius * self.radius * self.nz as f64
    }

    /// Fraction of the volume of a body centred at height `zc`, with half
    /// extent `h` along z and cross-section area `A0 (1 - (z - zc)^2 / h^2)`
    /// (any sphere or ellipsoid), that lies between the grid planes `-0.5`
    /// and `nz - 0.5`.
    fn clipped_fraction(&self, h: f64, zc: f64) -> f64 {
        let prim = |t: f64| {
            let t = t.clamp(-1.0, 1.0);
            t - t * t * t / 3.0
        };
        let a = (-0.5 - zc) / h;
        let b = (self.nz as f64 - 0.5 - zc) / h;
        0.75 * (prim(b) - prim(a))
    }

    /// Uniform random centre of an object with half z extent `hz` and bounding
    /// radius `b`: z anywhere the object still touches the grid (so the object
    /// density is stationary along z), in-plane anywhere it fits in the cylinder.
    fn random_center(&self, rng: &mut ChaCha8Rng, hz: f64, b: f64) -> [f64; 3] {
        let z = rng.random_range(-0.5 - hz..=self.nz as f64 - 0.5 + hz);
        let rho = (self.radius - RIM_MARGIN - b) * rng.random::<f64>().sqrt();
        let phi = 2.0 * PI * rng.random::<f64>();
        [z, self.cy + rho * phi.sin(), self.cx + rho * phi.cos()]
    }

    /// Whether a body of bounding radius `b` centred at `c` keeps the rim margin.
    fn fits(&self, c: [f64; 3], b: f64) -> bool {
        let rho = (c[1] - self.cy).hypot(c[2] - self.cx);
        rho + b <= self.radius - RIM_MARGIN
    }
}

fn sphere_volume(r: f64) -> f64 {
    4.0 / 3.0 * PI * r * r * r
}

fn dist2(a: [f64; 3], b: [f64; 3]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)
}

/// Log-normal sample with the given median, truncated to `[lo, hi]` by
/// rejection (falls back to clamping the median after 64 rejections).
fn truncated_lognormal(rng: &mut ChaCha8Rng, median: f64, log_sigma: f64, lo: f64, hi: f64) -> f64 {
    for _ in 0..64 {
        let n: f64 = rng.sample(StandardNormal);
        let r = median * (log_sigma * n).exp();
        if (lo..=hi).contains(&r) {
            return r;
        }
    }
    median.clamp(lo, hi)
}

fn random_unit(rng: &mut ChaCha8Rng) -> [f64; 3] {
    let w: f64 = rng.random_range(-1.0..=1.0);
    let phi = 2.0 * PI * rng.random::<f64>();
    let s = (1.0 - w * w).max(0.0).sqrt();
    [w, s * phi.sin(), s * phi.cos()]
}

/// Uniformly distributed random rotation (Shoemake's quaternion method), as
/// three orthonormal row vectors.
fn random_rotation(rng: &mut ChaCha8Rng) -> [[f64; 3]; 3] {
    let u1: f64 = rng.random();
    let (a, b) = (
        2.0 * PI * rng.random::<f64>(),
        2.0 * PI * rng.random::<f64>(),
    );
    let (s1, s2) = ((1.0 - u1).sqrt(), u1.sqrt());
    let (w, x, y, z) = (s1 * a.sin(), s1 * a.cos(), s2 * b.sin(), s2 * b.cos());
    [
        [
            1.0 - 2.0 * (y * y + z * z),
            2.0 * (x * y - w * z),
            2.0 * (x * z + w * y),
        ],
        [
            2.0 * (x * y + w * z),
            1.0 - 2.0 * (x * x + z * z),
            2.0 * (y * z - w * x),
        ],
        [
            2.0 * (x * z - w * y),
            2.0 * (y * z + w * x),
            1.0 - 2.0 * (x * x + y * y),
        ],
    ]
}

/// A bubble during placement.
#[derive(Debug, Clone, Copy)]
struct Sphere {
    c: [f64; 3],
    r: f64,
}

/// A crystal during placement: centre, principal axes (rows), semi-axes.
#[derive(Debug, Clone, Copy)]
struct Ellipsoid {
    c: [f64; 3],
    axes: [[f64; 3]; 3],
    semi: [f64; 3],
}

impl Ellipsoid {
    fn bounding_radius(&self) -> f64 {
        self.semi.iter().copied().fold(0.0, f64::max)
    }

    /// Half extent of the ellipsoid along coordinate axis `k`.
    fn half_extent(&self, k: usize) -> f64 {
        (0..3)
            .map(|i| (self.semi[i] * self.axes[i][k]).powi(2))
            .sum::<f64>()
            .sqrt()
    }
}

/// Uniform grid over the (z-extended) volume; each object is registered in
/// every cell its bounding box overlaps, so overlapping objects share a cell.
struct Grid {
    origin: [f64; 3],
    dims: [usize; 3],
    cells: Vec<Vec<u32>>,
}

impl Grid {
    fn new(geo: &Geometry, z_margin: f64) -> Self {
        let dims = Grid::dims(geo, z_margin);
        Self {
            origin: [-0.5 - z_margin, -0.5, -0.5],
            dims,
            cells: vec![Vec::new(); dims[0] * dims[1] * dims[2]],
        }
    }

    /// Cells along each axis.
    fn dims(geo: &Geometry, z_margin: f64) -> [usize; 3] {
        let extent = [geo.nz as f64 + 2.0 * z_margin, geo.ny as f64, geo.nx as f64];
        extent.map(|e| ((e / GRID_CELL).ceil() as usize).max(1))
    }

    fn span(&self, c: [f64; 3], b: f64) -> [Range<usize>; 3] {
        std::array::from_fn(|k| {
            let cell = |v: f64| {
                (((v - self.origin[k]) / GRID_CELL).floor().max(0.0) as usize).min(self.dims[k] - 1)
            };
            cell(c[k] - b)..cell(c[k] + b) + 1
        })
    }

    fn insert(&mut self, id: u32, c: [f64; 3], b: f64) {
        let [rz, ry, rx] = self.span(c, b);
        for iz in rz {
            for iy in ry.clone() {
                for ix in rx.clone() {
                    self.cells[(iz * self.dims[1] + iy) * self.dims[2] + ix].push(id);
                }
            }
        }
    }

    fn visit(&self, c: [f64; 3], b: f64, mut f: impl FnMut(u32)) {
        let [rz, ry, rx] = self.span(c, b);
        for iz in rz {
            for iy in ry.clone() {
                for ix in rx.clone() {
                    for &id in &self.cells[(iz * self.dims[1] + iy) * self.dims[2] + ix] {
                        f(id);
                    }
                }
            }
        }
    }
}

/// Objects placed so far, with the grid indexing them.
struct Scene {
    grid: Grid,
    bubbles: Vec<Sphere>,
    crystals: Vec<Ellipsoid>,
}

impl Scene {
    /// Ids (sorted, unique) of the objects whose bounding spheres intersect the
    /// sphere `(c, b)`; crystal ids carry [`CRYSTAL_TAG`].
    fn overlapping(&self, c: [f64; 3], b: f64, out: &mut Vec<u32>) {
        out.clear();
        self.grid.visit(c, b, |id| {
            let (oc, ob) = if id & CRYSTAL_TAG == 0 {
                let s = &self.bubbles[id as usize];
                (s.c, s.r)
            } else {
                let e = &self.crystals[(id & !CRYSTAL_TAG) as usize];
                (e.c, e.bounding_radius())
            };
            if dist2(c, oc) < (b + ob) * (b + ob) {
                out.push(id);
            }
        });
        out.sort_unstable();
        out.dedup();
    }
}

/// Random placement of all objects (runs once, sequentially, in [`PorousTomo::new`]).
struct Placer<'a> {
    p: &'a PorousTomoParams,
    geo: Geometry,
    rng: ChaCha8Rng,
    scene: Scene,
    hits: Vec<u32>,
    /// Points of a regular 12x12x12 lattice that fall in the unit ball.
    lattice: Vec<[f64; 3]>,
}

impl<'a> Placer<'a> {
    fn new(p: &'a PorousTomoParams, geo: Geometry) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
        rng.set_stream(0);
        let z_margin = p.z_margin();
        Self {
            p,
            geo,
            rng,
            scene: Scene {
                grid: Grid::new(&geo, z_margin),
                bubbles: Vec::new(),
                crystals: Vec::new(),
            },
            hits: Vec::new(),
            lattice: (0..LATTICE_N.pow(3))
                .map(|i| {
                    let coord = |j: usize| (2.0 * j as f64 + 1.0) / LATTICE_N as f64 - 1.0;
                    [
                        coord(i / (LATTICE_N * LATTICE_N)),
                        coord(i / LATTICE_N % LATTICE_N),
                        coord(i % LATTICE_N),
                    ]
                })
                .filter(|q| q.iter().map(|v| v * v).sum::<f64>() <= 1.0)
                .collect(),
        }
    }

    fn bubble_radius(&mut self) -> f64 {
        truncated_lognormal(
            &mut self.rng,
            self.p.bubble_radius_median,
            self.p.bubble_radius_log_sigma,
            self.p.bubble_radius_min,
            self.p.bubble_radius_max(),
        )
    }

    /// Places bubbles until their gas volume inside the grid reaches the
    /// target; returns that (analytically counted) volume.
    fn place_bubbles(&mut self) -> f64 {
        let target = self.p.porosity * self.geo.sample_volume();
        let nz = self.geo.nz as f64;
        // Pre-draw radii for the expected volume and place the largest first
        // (random sequential addition packs far better that way).
        let mut radii = Vec::new();
        let mut expected = 0.0;
        while expected < target {
            let r = self.bubble_radius();
            expected += sphere_volume(r) * nz / (nz + 2.0 * r);
            radii.push(r);
        }
        radii.sort_by(|a, b| b.total_cmp(a));
        let cap = 10 * radii.len() + 1000;
        let mut placed = 0.0;
        let mut next = 0;
        while placed < target && next < cap {
            let r = match radii.get(next) {
                Some(&r) => r,
                None => self.bubble_radius(),
            };
            next += 1;
            // Never overshoot the target by more than one smallest bubble.
            let r_fit = (0.75 * (target - placed) / PI).cbrt();
            placed += self.place_bubble(r.min(r_fit).max(self.p.bubble_radius_min));
        }
        placed
    }

    /// Places one bubble of radius `r`; returns the gas volume it adds inside the grid.
    fn place_bubble(&mut self, r: f64) -> f64 {
        let n = self.scene.bubbles.len();
        if n > 0 && self.rng.random::<f64>() < self.p.coalescence_fraction {
            for _ in 0..COALESCE_TRIES {
                let j = self.rng.random_range(0..n);
                let other = self.scene.bubbles[j];
                let u = random_unit(&mut self.rng);
                let d = other.r.max(r) + other.r.min(r) * self.rng.random_range(COALESCE_OFFSET);
                let c = std::array::from_fn(|k| other.c[k] + u[k] * d);
                if !self.geo.fits(c, r) {
                    continue;
                }
                self.scene.overlapping(c, r, &mut self.hits);
                if self.hits == [j as u32] {
                    return self.commit_bubble(c, r);
                }
            }
        }
        let mut c = [0.0; 3];
        for _ in 0..BUBBLE_TRIES {
            c = self.geo.random_center(&mut self.rng, r, r);
            self.scene.overlapping(c, r, &mut self.hits);
            if self.hits.is_empty() {
                break;
            }
        }
        // If every attempt collided, the last candidate is kept and merges
        // with its neighbours (self.hits).
        self.commit_bubble(c, r)
    }

    fn commit_bubble(&mut self, c: [f64; 3], r: f64) -> f64 {
        let added = if self.hits.is_empty() {
            sphere_volume(r) * self.geo.clipped_fraction(r, c[0])
        } else {
            self.uncovered_volume(c, r)
        };
        let id = self.scene.bubbles.len() as u32;
        self.scene.grid.insert(id, c, r);
        self.scene.bubbles.push(Sphere { c, r });
        added
    }

    /// Volume of the sphere `(c, r)` inside the grid and outside the bubbles
    /// in `self.hits`, estimated on a fixed lattice of points in the sphere
    /// (exact inclusion-exclusion is impractical once several bubbles merge).
    fn uncovered_volume(&self, c: [f64; 3], r: f64) -> f64 {
        let z_max = self.geo.nz as f64 - 0.5;
        let free = self
            .lattice
            .iter()
            .filter(|q| {
                let pt: [f64; 3] = std::array::from_fn(|k| c[k] + r * q[k]);
                (-0.5..=z_max).contains(&pt[0])
                    && self.hits.iter().all(|&id| {
                        let o = &self.scene.bubbles[id as usize];
                        dist2(pt, o.c) >= o.r * o.r
                    })
            })
            .count();
        sphere_volume(r) * free as f64 / self.lattice.len() as f64
    }

    /// Places crystals (never touching bubbles or other crystals) until their
    /// volume inside the grid reaches the target; returns that volume.
    fn place_crystals(&mut self) -> f64 {
        let target = self.p.crystal_fraction * self.geo.sample_volume();
        let median = self.p.crystal_radius_median;
        let mut placed = 0.0;
        let mut failures = 0;
        while placed < target && failures < CRYSTAL_MAX_FAILURES {
            let r_eq = truncated_lognormal(
                &mut self.rng,
                median,
                CRYSTAL_LOG_SIGMA,
                median * CRYSTAL_RADIUS_RANGE.start,
                median * CRYSTAL_RADIUS_RANGE.end,
            );
            let aspect: [f64; 3] =
                std::array::from_fn(|_| self.rng.random_range(1.0..=CRYSTAL_MAX_ASPECT));
            let norm = (aspect[0] * aspect[1] * aspect[2]).cbrt();
            let mut e = Ellipsoid {
                c: [0.0; 3],
                axes: random_rotation(&mut self.rng),
                semi: aspect.map(|a| r_eq * a / norm),
            };
            let (b, hz) = (e.bounding_radius(), e.half_extent(0));
            let mut accepted = false;
            for _ in 0..CRYSTAL_TRIES {
                e.c = self.geo.random_center(&mut self.rng, hz, b);
                self.scene.overlapping(e.c, b, &mut self.hits);
                if self.hits.is_empty() {
                    accepted = true;
                    break;
                }
            }
            if !accepted {
                failures += 1;
                continue;
            }
            failures = 0;
            placed += sphere_volume(r_eq) * self.geo.clipped_fraction(hz, e.c[0]);
            let id = self.scene.crystals.len() as u32 | CRYSTAL_TAG;
            self.scene.grid.insert(id, e.c, b);
            self.scene.crystals.push(e);
        }
        placed
    }
}

/// A bubble as rendered.
#[derive(Debug, Clone, Copy)]
struct RenderSphere {
    z: f32,
    y: f32,
    x: f32,
    r: f32,
}

/// A crystal as rendered: centre, principal axes scaled by the inverse
/// semi-axes (rows), inverse semi-axes, smallest semi-axis and half extents
/// along `[z, y, x]`.
#[derive(Debug, Clone, Copy)]
struct RenderEllipsoid {
    c: [f32; 3],
    w: [[f32; 3]; 3],
    inv_semi: [f32; 3],
    min_semi: f32,
    half: [f32; 3],
}

/// Objects sorted by the lower end of their z extent, for finding the ones
/// that touch a slice by binary search.
#[derive(Debug)]
struct ZSorted<T> {
    items: Vec<T>,
    z_lo: Vec<f32>,
    /// Upper bound of every object's z extent length (with slack).
    max_span: f32,
}

impl<T> ZSorted<T> {
    /// Builds the index from `(object, z_lo, z_hi)` triples.
    fn new(mut objects: Vec<(T, f32, f32)>) -> Self {
        objects.sort_by(|a, b| a.1.total_cmp(&b.1));
        let max_span = objects.iter().map(|o| o.2 - o.1).fold(0.0, f32::max) + 1.0;
        let (items, z_lo) = objects.into_iter().map(|(t, lo, _)| (t, lo)).unzip();
        Self {
            items,
            z_lo,
            max_span,
        }
    }

    /// Superset of the objects whose z extent, widened by `reach`, contains `z`.
    fn near(&self, z: f32, reach: f32) -> &[T] {
        let start = self
            .z_lo
            .partition_point(|&lo| lo < z - reach - self.max_span);
        let end = self.z_lo.partition_point(|&lo| lo <= z + reach);
        &self.items[start..end.max(start)]
    }
}

/// Pixels with coordinates in `[lo, hi]`, clipped to `0..n`.
fn pixel_range(lo: f32, hi: f32, n: usize) -> Range<usize> {
    let a = lo.ceil().max(0.0);
    let b = (hi.floor() + 1.0).min(n as f32);
    if b > a { a as usize..b as usize } else { 0..0 }
}

/// Complementary error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7).
fn erfc(x: f64) -> f64 {
    let ax = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * ax);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let tail = poly * (-ax * ax).exp();
    if x >= 0.0 { tail } else { 2.0 - tail }
}

/// Per-thread scratch buffers: signed distances to the nearest gas and
/// crystal surfaces in one slice.
struct Scratch {
    gas: Vec<f32>,
    crystal: Vec<f32>,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Self {
            gas: vec![0.0; n],
            crystal: vec![0.0; n],
        }
    }
}

/// Deterministic synthetic tomogram of a vesiculating magma, rendered slab by
/// slab along axis 0 (see the [module docs](self)).
#[derive(Debug)]
pub struct PorousTomo {
    params: PorousTomoParams,
    bubbles: ZSorted<RenderSphere>,
    crystals: ZSorted<RenderEllipsoid>,
    /// Distance from a surface beyond which the edge profile is saturated.
    cutoff: f32,
    /// Per pixel: air contribution `air * (1 - f_sample)`.
    air_term: Vec<f32>,
    /// Per pixel: sample weight `f_sample * cupping factor`.
    sample_weight: Vec<f32>,
    /// Per pixel: voxel centre inside the cylinder.
    inside: Vec<bool>,
    gas_volume: f64,
    crystal_volume: f64,
    sample_volume: f64,
    true_porosity: OnceLock<f64>,
}

impl PorousTomo {
    /// Bytes per pixel of one slice that each rendering thread holds besides the slices it
    /// writes into: the signed distances to the gas and crystal surfaces.
    pub const SLICE_SCRATCH_BYTES_PER_PIXEL: u64 = 2 * size_of::<f32>() as u64;

    /// Validates the parameters and places all objects.
    ///
    /// Placement is sequential and proportional to the number of objects
    /// (about 65k bubbles and 190k crystals for 15000x256x256 with the
    /// defaults: about 0.6 s and 25 MB, the object list and the placement
    /// grid included).
    ///
    /// # Errors
    /// The message of [`PorousTomoParams::validate`] for bad parameters.
    pub fn new(params: PorousTomoParams) -> Result<Self, String> {
        params.validate()?;
        let geo = Geometry::new(&params);
        let mut placer = Placer::new(&params, geo);
        let gas_volume = placer.place_bubbles();
        let crystal_volume = placer.place_crystals();
        let Scene {
            bubbles, crystals, ..
        } = placer.scene;

        let bubbles = ZSorted::new(
            bubbles
                .into_iter()
                .map(|s| {
                    let z = s.c[0] as f32;
                    let r = s.r as f32;
                    let sphere = RenderSphere {
                        z,
                        y: s.c[1] as f32,
                        x: s.c[2] as f32,
                        r,
                    };
                    (sphere, z - r, z + r)
                })
                .collect(),
        );
        let crystals = ZSorted::new(
            crystals
                .into_iter()
                .map(|e| {
                    let half = std::array::from_fn(|k| e.half_extent(k) as f32);
                    let w = std::array::from_fn(|i| e.axes[i].map(|a| (a / e.semi[i]) as f32));
                    let z = e.c[0] as f32;
                    let ell = RenderEllipsoid {
                        c: e.c.map(|v| v as f32),
                        w,
                        inv_semi: e.semi.map(|s| (1.0 / s) as f32),
                        min_semi: e.semi.iter().copied().fold(f64::INFINITY, f64::min) as f32,
                        half,
                    };
                    (ell, z - half[0], z + half[0])
                })
                .collect(),
        );

        let cutoff = (EDGE_CUTOFF_SIGMAS * params.blur_sigma + 0.5) as f32;
        let mut tomo = Self {
            params,
            bubbles,
            crystals,
            cutoff,
            air_term: Vec::new(),
            sample_weight: Vec::new(),
            inside: Vec::new(),
            gas_volume,
            crystal_volume,
            sample_volume: geo.sample_volume(),
            true_porosity: OnceLock::new(),
        };
        let n = geo.ny * geo.nx;
        let (mut air_term, mut sample_weight, mut inside) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for y in 0..geo.ny {
            for x in 0..geo.nx {
                let rho = (y as f64 - geo.cy).hypot(x as f64 - geo.cx);
                let d = (rho - geo.radius) as f32;
                let f = f64::from(tomo.inside_fraction(d));
                let cup = 1.0 + tomo.params.cupping * (rho.min(geo.radius) / geo.radius).powi(2);
                air_term.push((tomo.params.attenuation_air * (1.0 - f)) as f32);
                sample_weight.push((f * cup) as f32);
                inside.push(d < 0.0);
            }
        }
        tomo.air_term = air_term;
        tomo.sample_weight = sample_weight;
        tomo.inside = inside;
        Ok(tomo)
    }

    /// The parameters the phantom was built from.
    pub fn params(&self) -> &PorousTomoParams {
        &self.params
    }

    /// Volume shape `[nz, ny, nx]`.
    pub fn shape(&self) -> [usize; 3] {
        self.params.shape
    }

    /// Number of bubbles placed (including those only partly inside the grid).
    pub fn num_bubbles(&self) -> usize {
        self.bubbles.items.len()
    }

    /// Number of crystals placed (including those only partly inside the grid).
    pub fn num_crystals(&self) -> usize {
        self.crystals.items.len()
    }

    /// Gas volume fraction of the sample as counted analytically during
    /// placement (sphere volumes clipped to the grid, the part of a merging
    /// bubble already covered by its neighbours excluded, over the analytic
    /// cylinder volume); free to call.
    pub fn placed_porosity(&self) -> f64 {
        self.gas_volume / self.sample_volume
    }

    /// Crystal volume fraction of the sample as counted analytically during
    /// placement; below `crystal_fraction` only if the sample was too full to
    /// take more crystals.
    pub fn placed_crystal_fraction(&self) -> f64 {
        self.crystal_volume / self.sample_volume
    }

    /// Voxels of slices `z_range` (along axis 0); identical whatever partition
    /// into slabs is used. Renders the slices in parallel with rayon.
    ///
    /// # Panics
    /// If `z_range` is not within `0..shape[0]`.
    pub fn slab(&self, z_range: Range<usize>) -> Array3<f32> {
        self.check_range(&z_range);
        let [_, ny, nx] = self.params.shape;
        let mut out = Array3::zeros((z_range.len(), ny, nx));
        self.render_into(z_range.start, out.view_mut());
        out
    }

    /// Renders slices `z_start..z_start + out.shape()[0]` into `out` (shape
    /// `[k, ny, nx]`, any memory layout), with the same values as [`Self::slab`];
    /// lets a caller reuse one buffer for every slab.
    ///
    /// # Panics
    /// If the in-plane shape of `out` differs from `[ny, nx]` or the slices
    /// are not within `0..shape[0]`.
    pub fn render_into(&self, z_start: usize, mut out: ArrayViewMut3<f32>) {
        let [_, ny, nx] = self.params.shape;
        assert_eq!(
            &out.shape()[1..],
            &[ny, nx],
            "render_into: output in-plane shape must be [ny, nx]"
        );
        self.check_range(&(z_start..z_start + out.shape()[0]));
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each_init(
                || (Scratch::new(ny * nx), Vec::new()),
                |(scratch, tmp), (k, slice)| {
                    self.render_slice(z_start + k, slice, scratch, tmp);
                },
            );
    }

    /// Ground-truth phase labels ([`LABEL_AIR`], [`LABEL_MELT`], [`LABEL_GAS`],
    /// [`LABEL_CRYSTAL`]) of slices `z_range`, without blur or noise: a voxel
    /// takes the phase containing its centre (crystal over gas over melt).
    ///
    /// # Panics
    /// If `z_range` is not within `0..shape[0]`.
    pub fn labels(&self, z_range: Range<usize>) -> Array3<u8> {
        self.check_range(&z_range);
        let [_, ny, nx] = self.params.shape;
        let mut out = Array3::zeros((z_range.len(), ny, nx));
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each_init(
                || Scratch::new(ny * nx),
                |scratch, (k, mut slice)| {
                    self.distances(z_range.start + k, scratch);
                    for (((l, &inside), &g), &c) in slice
                        .iter_mut()
                        .zip(&self.inside)
                        .zip(&scratch.gas)
                        .zip(&scratch.crystal)
                    {
                        *l = label(inside, g, c);
                    }
                },
            );
        out
    }

    /// Ground-truth porosity of the sample: gas voxels / cylinder voxels,
    /// counted on the voxel grid without blur or noise (same rule as
    /// [`Self::labels`]).
    ///
    /// Cost: the first call renders the labels of the whole volume slice by
    /// slice in parallel (roughly a third of the time of rendering the
    /// volume, memory of one slice per thread); the result is cached.
    pub fn true_porosity(&self) -> f64 {
        *self.true_porosity.get_or_init(|| {
            let [nz, ny, nx] = self.params.shape;
            let (gas, sample) = (0..nz)
                .into_par_iter()
                .map_init(
                    || Scratch::new(ny * nx),
                    |scratch, z| {
                        self.distances(z, scratch);
                        let mut counts = (0u64, 0u64);
                        for ((&inside, &g), &c) in
                            self.inside.iter().zip(&scratch.gas).zip(&scratch.crystal)
                        {
                            match label(inside, g, c) {
                                LABEL_GAS => counts = (counts.0 + 1, counts.1 + 1),
                                LABEL_AIR => {}
                                _ => counts.1 += 1,
                            }
                        }
                        counts
                    },
                )
                .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            gas as f64 / sample.max(1) as f64
        })
    }

    fn check_range(&self, z_range: &Range<usize>) {
        assert!(
            z_range.start <= z_range.end && z_range.end <= self.params.shape[0],
            "slice range {z_range:?} outside 0..{}",
            self.params.shape[0]
        );
    }

    /// Fraction of a voxel at signed distance `d` from a surface (negative
    /// inside) that lies inside: the Gaussian-blurred step `Phi(-d / sigma)`,
    /// exactly 0 or 1 beyond the cutoff.
    fn inside_fraction(&self, d: f32) -> f32 {
        if d >= self.cutoff {
            0.0
        } else if d <= -self.cutoff {
            1.0
        } else if self.params.blur_sigma == 0.0 {
            match d.partial_cmp(&0.0) {
                Some(std::cmp::Ordering::Less) => 1.0,
                Some(std::cmp::Ordering::Greater) => 0.0,
                _ => 0.5,
            }
        } else {
            (0.5 * erfc(f64::from(d) / (self.params.blur_sigma * std::f64::consts::SQRT_2))) as f32
        }
    }

    /// Fills the scratch buffers with the signed distances (clamped above at
    /// the cutoff) of slice `z` to the union of bubbles and of crystals,
    /// visiting only the objects touching the slice, within their bounding boxes.
    fn distances(&self, z: usize, scratch: &mut Scratch) {
        let [_, ny, nx] = self.params.shape;
        let cut = self.cutoff;
        let zf = z as f32;
        scratch.gas.fill(cut);
        scratch.crystal.fill(cut);

        for b in self.bubbles.near(zf, cut) {
            let dz = zf - b.z;
            let reach = b.r + cut;
            let rr = reach * reach - dz * dz;
            if rr <= 0.0 {
                continue;
            }
            let rho = rr.sqrt();
            for y in pixel_range(b.y - rho, b.y + rho, ny) {
                let dy = y as f32 - b.y;
                let rem = rr - dy * dy;
                if rem < 0.0 {
                    continue;
                }
                let half = rem.sqrt();
                let base = dz * dz + dy * dy;
                let row = &mut scratch.gas[y * nx..(y + 1) * nx];
                for x in pixel_range(b.x - half, b.x + half, nx) {
                    let dx = x as f32 - b.x;
                    let d = (base + dx * dx).sqrt() - b.r;
                    if d < row[x] {
                        row[x] = d;
                    }
                }
            }
        }

        for e in self.crystals.near(zf, cut) {
            let dz = zf - e.c[0];
            if dz.abs() > e.half[0] + cut {
                continue;
            }
            let (ry, rx) = (e.half[1] + cut, e.half[2] + cut);
            for y in pixel_range(e.c[1] - ry, e.c[1] + ry, ny) {
                let dy = y as f32 - e.c[1];
                let partial: [f32; 3] = std::array::from_fn(|i| e.w[i][0] * dz + e.w[i][1] * dy);
                let row = &mut scratch.crystal[y * nx..(y + 1) * nx];
                for x in pixel_range(e.c[2] - rx, e.c[2] + rx, nx) {
                    let dx = x as f32 - e.c[2];
                    let (mut k0, mut k1) = (0.0f32, 0.0f32);
                    for ((&pa, w), &inv) in partial.iter().zip(&e.w).zip(&e.inv_semi) {
                        let t = pa + w[2] * dx;
                        k0 += t * t;
                        k1 += (t * inv) * (t * inv);
                    }
                    let (k0, k1) = (k0.sqrt(), k1.sqrt());
                    // Ellipsoid distance estimate k0 (k0 - 1) / k1: exact for
                    // spheres, first-order accurate near the surface, sign exact.
                    let d = if k1 > 0.0 {
                        k0 * (k0 - 1.0) / k1
                    } else {
                        -e.min_semi
                    };
                    if d < row[x] {
                        row[x] = d;
                    }
                }
            }
        }
    }

    /// Renders slice `z` (blurred phases, cupping, noise) into `out`.
    fn render_slice(
        &self,
        z: usize,
        mut out: ArrayViewMut2<f32>,
        scratch: &mut Scratch,
        tmp: &mut Vec<f32>,
    ) {
        self.distances(z, scratch);
        let p = &self.params;
        let (air, melt, gas, crystal) = (
            p.attenuation_air as f32,
            p.attenuation_melt as f32,
            p.attenuation_gas as f32,
            p.attenuation_crystal as f32,
        );
        let cut = self.cutoff;
        let mut noise_rng = (p.noise_sigma > 0.0).then(|| {
            let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
            rng.set_stream(z as u64 + 1);
            rng
        });
        let noise_sigma = p.noise_sigma as f32;
        let mut fill = |dst: &mut [f32]| {
            for ((((v, &w), &a), &g), &c) in dst
                .iter_mut()
                .zip(&self.sample_weight)
                .zip(&self.air_term)
                .zip(&scratch.gas)
                .zip(&scratch.crystal)
            {
                let mut value = if w == 0.0 {
                    air
                } else if g >= cut && c >= cut {
                    a + w * melt
                } else {
                    let fg = self.inside_fraction(g);
                    let fc = self.inside_fraction(c);
                    let inner = (melt * (1.0 - fg) + gas * fg) * (1.0 - fc) + crystal * fc;
                    a + w * inner
                };
                if let Some(rng) = noise_rng.as_mut() {
                    let n: f32 = rng.sample(StandardNormal);
                    value += noise_sigma * n;
                }
                *v = value;
            }
        };
        match out.as_slice_mut() {
            Some(dst) => fill(dst),
            None => {
                tmp.resize(self.inside.len(), 0.0);
                fill(tmp.as_mut_slice());
                for (v, &t) in out.iter_mut().zip(tmp.iter()) {
                    *v = t;
                }
            }
        }
    }
}

/// Phase label of a voxel from its cylinder membership and its signed
/// distances to the gas and crystal surfaces.
fn label(inside: bool, gas: f32, crystal: f32) -> u8 {
    if !inside {
        LABEL_AIR
    } else if crystal < 0.0 {
        LABEL_CRYSTAL
    } else if gas < 0.0 {
        LABEL_GAS
    } else {
        LABEL_MELT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ShapeBuilder, concatenate, s};

    fn small(seed: u64) -> PorousTomoParams {
        PorousTomoParams {
            shape: [24, 64, 64],
            seed,
            ..Default::default()
        }
    }

    fn build(p: PorousTomoParams) -> PorousTomo {
        PorousTomo::new(p).expect("valid params")
    }

    /// Radius of voxel `(y, x)` from the cylinder axis.
    fn rho(geo: &Geometry, y: usize, x: usize) -> f64 {
        (y as f64 - geo.cy).hypot(x as f64 - geo.cx)
    }

    fn mean_std(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var.sqrt())
    }

    #[test]
    fn same_params_give_identical_slabs() {
        let a = build(small(11));
        let b = build(small(11));
        assert!(a.num_bubbles() > 0 && a.num_crystals() > 0);
        assert_eq!(a.num_bubbles(), b.num_bubbles());
        assert_eq!(a.slab(0..24), b.slab(0..24));
        assert_eq!(a.labels(0..24), b.labels(0..24));
    }

    #[test]
    fn slabs_do_not_depend_on_the_partition() {
        let tomo = build(small(5));
        let full = tomo.slab(0..24);
        for k in [1, 7, 13, 23] {
            let parts =
                concatenate(Axis(0), &[tomo.slab(0..k).view(), tomo.slab(k..24).view()]).unwrap();
            assert_eq!(parts, full, "split at {k}");
        }
        for z in [0, 9, 23] {
            assert_eq!(
                tomo.slab(z..z + 1).slice(s![0, .., ..]),
                full.slice(s![z, .., ..])
            );
        }
        assert_eq!(tomo.slab(4..4).shape(), &[0, 64, 64]);
        // A non-contiguous (Fortran-order) buffer gets the same values.
        let mut f = Array3::<f32>::zeros((6, 64, 64).f());
        tomo.render_into(10, f.view_mut());
        assert_eq!(f, full.slice(s![10..16, .., ..]));
    }

    #[test]
    fn different_seeds_give_different_volumes() {
        let a = build(small(1));
        let b = build(small(2));
        assert_ne!(a.slab(0..24), b.slab(0..24));
        // The objects move too, not only the noise.
        assert_ne!(a.labels(0..24), b.labels(0..24));
        let differing = a
            .slab(0..24)
            .iter()
            .zip(b.slab(0..24).iter())
            .filter(|(x, y)| x != y)
            .count();
        assert!(differing > 24 * 64 * 64 * 9 / 10, "{differing}");
    }

    #[test]
    fn gas_fraction_matches_target_porosity() {
        // Measured over 20 seeds: |true - target| <= 0.0007 and
        // |thresholded - target| <= 0.0026 (cupping shifts the thresholded
        // edges slightly); tolerances 0.005 and 0.01.
        let params = PorousTomoParams {
            shape: [64, 128, 128],
            seed: 42,
            noise_sigma: 0.0,
            ..Default::default()
        };
        let tomo = build(params.clone());
        let geo = Geometry::new(&params);
        assert!((tomo.placed_porosity() - 0.25).abs() < 1e-3);
        let truth = tomo.true_porosity();
        assert!((truth - 0.25).abs() < 0.005, "true porosity {truth}");

        let labels = tomo.labels(0..64);
        let gas = labels.iter().filter(|&&l| l == LABEL_GAS).count();
        let sample = labels.iter().filter(|&&l| l != LABEL_AIR).count();
        assert!((gas as f64 / sample as f64 - truth).abs() < 1e-12);

        // Threshold the blurred noiseless volume midway between gas and melt.
        let volume = tomo.slab(0..64);
        let threshold = 0.5 * (params.attenuation_gas + params.attenuation_melt) as f32;
        let (mut gas, mut sample) = (0usize, 0usize);
        for ((_, y, x), &v) in volume.indexed_iter() {
            let r = rho(&geo, y, x);
            if r < geo.radius {
                sample += 1;
                // Bubbles stay RIM_MARGIN inside; skip the blurred rim itself.
                if r < geo.radius - RIM_MARGIN && v < threshold {
                    gas += 1;
                }
            }
        }
        let measured = gas as f64 / sample as f64;
        assert!(
            (measured - 0.25).abs() < 0.01,
            "thresholded porosity {measured}"
        );
    }

    #[test]
    fn other_porosities_are_reached() {
        for porosity in [0.0, 0.1, 0.6] {
            let tomo = build(PorousTomoParams {
                shape: [32, 96, 96],
                porosity,
                ..Default::default()
            });
            let truth = tomo.true_porosity();
            assert!((truth - porosity).abs() < 0.01, "{porosity}: {truth}");
        }
    }

    #[test]
    fn phase_values_are_plausible() {
        let params = PorousTomoParams {
            shape: [32, 128, 128],
            seed: 9,
            cupping: 0.0,
            ..Default::default()
        };
        let tomo = build(params.clone());
        let geo = Geometry::new(&params);
        let volume = tomo.slab(0..32);
        let cut = tomo.cutoff;
        let (mut melt, mut gas, mut air) = (Vec::new(), Vec::new(), Vec::new());
        let mut scratch = Scratch::new(128 * 128);
        for z in 0..32 {
            tomo.distances(z, &mut scratch);
            for y in 0..128 {
                for x in 0..128 {
                    let i = y * 128 + x;
                    let (g, c) = (scratch.gas[i], scratch.crystal[i]);
                    let r = rho(&geo, y, x);
                    let v = f64::from(volume[[z, y, x]]);
                    if r > geo.radius + f64::from(cut) {
                        air.push(v);
                    } else if r < geo.radius - f64::from(cut) && c >= cut {
                        if g >= cut {
                            melt.push(v);
                        } else if g <= -cut {
                            gas.push(v);
                        }
                    }
                }
            }
        }
        let sigma = params.noise_sigma;
        for (name, values, expected) in [
            ("melt", &melt, params.attenuation_melt),
            ("gas", &gas, params.attenuation_gas),
            ("air", &air, params.attenuation_air),
        ] {
            assert!(values.len() > 1000, "{name}: only {} voxels", values.len());
            let (mean, std) = mean_std(values);
            let tol = 3.0 * sigma / (values.len() as f64).sqrt();
            assert!(
                (mean - expected).abs() < tol,
                "{name}: mean {mean} vs {expected} ± {tol}"
            );
            assert!((std / sigma - 1.0).abs() < 0.05, "{name}: std {std}");
        }
        // Noisy values stay within a plausible range.
        let (lo, hi) = volume
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert!(lo > -0.25 && hi < 1.25, "range [{lo}, {hi}]");
    }

    #[test]
    fn noiseless_values_stay_within_phase_range_and_crystals_are_dense() {
        let params = PorousTomoParams {
            shape: [32, 128, 128],
            noise_sigma: 0.0,
            ..Default::default()
        };
        let tomo = build(params.clone());
        let volume = tomo.slab(0..32);
        let labels = tomo.labels(0..32);
        let lo = params.attenuation_air as f32 - 1e-6;
        let hi = (params.attenuation_crystal * (1.0 + params.cupping)) as f32 + 1e-6;
        assert!(volume.iter().all(|&v| (lo..=hi).contains(&v)));
        let crystal_max = volume
            .iter()
            .zip(labels.iter())
            .filter(|&(_, &l)| l == LABEL_CRYSTAL)
            .map(|(&v, _)| v)
            .fold(f32::MIN, f32::max);
        assert!(crystal_max > 0.8, "densest crystal voxel {crystal_max}");
        let crystals = labels.iter().filter(|&&l| l == LABEL_CRYSTAL).count();
        let sample = labels.iter().filter(|&&l| l != LABEL_AIR).count();
        let fraction = crystals as f64 / sample as f64;
        assert!(
            (fraction - 0.015).abs() < 0.005,
            "crystal fraction {fraction}"
        );
    }

    #[test]
    fn sharp_phantom_matches_labels_and_cupping() {
        let params = PorousTomoParams {
            blur_sigma: 0.0,
            noise_sigma: 0.0,
            cupping: 0.1,
            ..small(3)
        };
        let tomo = build(params.clone());
        let geo = Geometry::new(&params);
        let volume = tomo.slab(0..24);
        let labels = tomo.labels(0..24);
        for ((z, y, x), &l) in labels.indexed_iter() {
            let r = rho(&geo, y, x);
            let cup = 1.0 + params.cupping * (r / geo.radius).powi(2);
            let expected = match l {
                LABEL_AIR => params.attenuation_air,
                LABEL_MELT => params.attenuation_melt * cup,
                LABEL_GAS => params.attenuation_gas * cup,
                _ => params.attenuation_crystal * cup,
            };
            let v = f64::from(volume[[z, y, x]]);
            assert!(
                (v - expected).abs() < 1e-5,
                "({z},{y},{x}) label {l}: {v} vs {expected}"
            );
        }
    }

    #[test]
    fn noise_is_centred_and_differs_between_slices() {
        let params = small(8);
        let noisy = build(params.clone()).slab(0..24);
        let clean = build(PorousTomoParams {
            noise_sigma: 0.0,
            ..params.clone()
        })
        .slab(0..24);
        let residual = &noisy - &clean;
        let values: Vec<f64> = residual.iter().map(|&v| f64::from(v)).collect();
        let (mean, std) = mean_std(&values);
        assert!(mean.abs() < 3.0 * params.noise_sigma / (values.len() as f64).sqrt());
        assert!((std / params.noise_sigma - 1.0).abs() < 0.02, "std {std}");
        assert_ne!(residual.slice(s![0, .., ..]), residual.slice(s![1, .., ..]));
    }

    /// The object counts [`PorousTomoParams::model_bytes`] expects (less its allowance for
    /// small volumes) are not exceeded, merging bubbles included.
    #[test]
    fn model_estimate_bounds_the_objects_placed() {
        for (shape, porosity, coalescence_fraction) in [
            ([64, 128, 128], 0.25, 0.05),
            ([300, 256, 256], 0.25, 0.05),
            ([300, 256, 256], 0.6, 1.0),
            ([100, 512, 512], 0.1, 0.0),
        ] {
            let p = PorousTomoParams {
                shape,
                porosity,
                coalescence_fraction,
                ..PorousTomoParams::default()
            };
            let expected = p.expected_objects();
            let tomo = build(p);
            let placed = (tomo.num_bubbles() as f64, tomo.num_crystals() as f64);
            assert!(placed.0 <= expected.bubbles, "{shape:?}: {placed:?}");
            assert!(placed.1 <= expected.crystals, "{shape:?}: {placed:?}");
        }
    }

    #[test]
    fn bad_params_are_rejected() {
        let cases: Vec<(&str, PorousTomoParams)> = vec![
            (
                "shape",
                PorousTomoParams {
                    shape: [0, 64, 64],
                    ..small(0)
                },
            ),
            (
                "shape",
                PorousTomoParams {
                    shape: [8, 64, 0],
                    ..small(0)
                },
            ),
            (
                "in-plane",
                PorousTomoParams {
                    shape: [8, 8, 64],
                    ..small(0)
                },
            ),
            (
                "overflows",
                PorousTomoParams {
                    shape: [usize::MAX, 64, 64],
                    ..small(0)
                },
            ),
            (
                "porosity",
                PorousTomoParams {
                    porosity: 0.7,
                    ..small(0)
                },
            ),
            (
                "porosity",
                PorousTomoParams {
                    porosity: -0.1,
                    ..small(0)
                },
            ),
            (
                "porosity",
                PorousTomoParams {
                    porosity: f64::NAN,
                    ..small(0)
                },
            ),
            (
                "crystal_fraction",
                PorousTomoParams {
                    crystal_fraction: 0.5,
                    ..small(0)
                },
            ),
            (
                "blur_sigma",
                PorousTomoParams {
                    blur_sigma: -1.0,
                    ..small(0)
                },
            ),
            (
                "noise_sigma",
                PorousTomoParams {
                    noise_sigma: -0.01,
                    ..small(0)
                },
            ),
            (
                "noise_sigma",
                PorousTomoParams {
                    noise_sigma: f64::INFINITY,
                    ..small(0)
                },
            ),
            (
                "cylinder_radius_fraction",
                PorousTomoParams {
                    cylinder_radius_fraction: 0.6,
                    ..small(0)
                },
            ),
            (
                "bubble_radius_median",
                PorousTomoParams {
                    bubble_radius_median: 0.0,
                    ..small(0)
                },
            ),
            (
                "bubble_radius_min",
                PorousTomoParams {
                    bubble_radius_min: 20.0,
                    ..small(0)
                },
            ),
            (
                "fit",
                PorousTomoParams {
                    bubble_radius_max_fraction: 0.45,
                    ..small(0)
                },
            ),
            (
                "coalescence_fraction",
                PorousTomoParams {
                    coalescence_fraction: 1.5,
                    ..small(0)
                },
            ),
            (
                "crystal",
                PorousTomoParams {
                    crystal_radius_median: 10.0,
                    ..small(0)
                },
            ),
            (
                "cupping",
                PorousTomoParams {
                    cupping: 2.0,
                    ..small(0)
                },
            ),
            (
                "attenuation_melt",
                PorousTomoParams {
                    attenuation_melt: f64::NAN,
                    ..small(0)
                },
            ),
        ];
        for (needle, params) in cases {
            let err = PorousTomo::new(params.clone())
                .err()
                .unwrap_or_else(|| panic!("accepted {params:?}"));
            assert!(err.contains(needle), "{err:?} should mention {needle}");
            assert!(!err.contains('\n'), "{err:?} is not one line");
        }
        assert!(PorousTomoParams::default().validate().is_ok());
        assert!(
            PorousTomo::new(PorousTomoParams {
                porosity: 0.0,
                crystal_fraction: 0.0,
                ..small(0)
            })
            .is_ok()
        );
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn slab_out_of_range_panics() {
        build(small(0)).slab(20..25);
    }
}
