//! Science analyses run on original and decoded data.

pub mod components;
pub mod fbp;
pub mod otsu;
pub mod porosity;
pub mod registry;
pub mod segmentation;
