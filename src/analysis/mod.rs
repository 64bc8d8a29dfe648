//! Science analyses run on original and decoded data.

pub mod otsu;
