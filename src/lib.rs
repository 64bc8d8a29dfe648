//! photonqa: how hard can photon-science data be compressed before the science changes?
//!
//! A scenario (TOML) names an input volume, a lossy pipeline of stages whose parameters sweep
//! over working points, and the metrics to report. The runner streams the volume slab by slab,
//! runs every working point, and records rate, distortion and provenance.
//!
//! Modules follow the flow of a run: [`scenario`] (schema, validation, sweeps) -> [`data`]
//! (I/O) -> [`pipeline`] (codec chains) -> [`metrics`] and [`analysis`] -> [`runner`]; [`gate`]
//! compares a run with a committed baseline.

pub mod analysis;
pub mod cli;
pub mod data;
pub mod gate;
pub mod metrics;
pub mod pipeline;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod select;
pub mod stats;
