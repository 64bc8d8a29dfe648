//! Distortion metrics between an original and a decoded array, accumulated slab by slab into
//! partial sums that merge exactly.

pub mod comparison;
pub mod distortion;
pub mod histogram;
pub mod registry;
pub mod ssim;

pub use distortion::PointSums;
