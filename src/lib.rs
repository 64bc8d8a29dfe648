//! photonqa: how hard can photon-science data be compressed before the science changes?
//!
//! A scenario (TOML) names an input volume, a lossy pipeline of stages whose parameters sweep
//! over working points, and the metrics to report. The runner streams the volume slab by slab,
//! runs every working point, and records rate, distortion and provenance.
//!
//! # Layers
//!
//! Modules form layers, each importing only from the layers below it:
//!
//! [`data`] -> [`stats`] -> [`pipeline`] -> [`metrics`] -> [`analysis`] -> [`scenario`] ->
//! [`runner`] -> [`select`] -> [`report`] -> [`gate`] -> [`workflow`] -> [`cli`]
//!
//! - [`data`]: arrays, dtypes and the I/O of input volumes; [`stats`]: histograms and Otsu's
//!   threshold, shared by stages and analyses;
//! - [`pipeline`]: the codec stages and their chains; [`metrics`]: distortion of decoded data;
//!   [`analysis`]: the science computed on it;
//! - [`scenario`]: the TOML schema, its validation and the sweep into working points. It sits
//!   above the pipeline, the metrics and the analyses because it builds their configurations
//!   (and checks them against their registries); it also holds the plain types of the schema
//!   that the layers above act on (limits, the objective, gate tolerances, search intervals);
//! - [`runner`]: measures the working points and returns their rows;
//! - [`select`]: which points meet the limits, the recommendation, Pareto fronts, adaptive
//!   search; [`report`]: tables, plots and the HTML report; [`gate`]: compares a run with a
//!   committed baseline;
//! - [`workflow`]: a scenario from start to end (run, then select, then report), written once
//!   for every caller; [`cli`]: parses arguments and prints.

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
pub mod workflow;
