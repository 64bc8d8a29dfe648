//! Numerical primitives shared by the layers above: pipeline stages fit on them (the Otsu
//! threshold of a histogram), and metrics and analyses measure with them. They know nothing
//! of stages, metrics or analyses.

pub mod histogram;
pub mod otsu;
pub mod peaks;
