//! Distortion metrics between an original and a decoded array, accumulated slab by slab into
//! partial sums that merge exactly.

pub mod comparison;
pub mod distortion;
pub mod error_stats;
pub mod ks;
pub mod registry;
pub mod spectral;
pub mod ssim;
pub mod sums;
pub mod values;

pub use distortion::PointSums;
