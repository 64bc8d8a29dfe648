//! One working point's round trip of a whole array, kept in memory: the decoded array and the
//! rate, for callers that try a pipeline on data they hold (the Python package's `roundtrip`).
//! The chunks, the fits and each chunk's round trip are the run's, so the decoded values and
//! the byte counts are the ones `photonqa run` measures for the point.

use indicatif::ProgressBar;
use rayon::prelude::*;

use super::passes::{self, FitCache, Passes};
use super::results::Rate;
use super::{Plan, build_chain};
use crate::data::{NdArray, VolumeSource};
use crate::scenario::Scenario;

/// Encodes and decodes `source` through the single working point of `scenario` (its
/// `[input]` is not read: `source` stands for it), fitting the data-derived parameters on
/// `source` first, in the run's chunks, within `memory_budget` on at most `threads` threads.
/// Errors when the scenario sweeps (more than one point) or a stage fails.
pub fn round_trip(
    scenario: &Scenario,
    source: &dyn VolumeSource,
    memory_budget: u64,
    threads: Option<usize>,
) -> Result<(NdArray, Rate), String> {
    let points = scenario.working_points();
    let [point] = points.as_slice() else {
        return Err(format!(
            "{}: the pipeline has {} working points; a round trip takes one (no sweep)",
            scenario.path.display(),
            points.len()
        ));
    };
    let mut chain = build_chain(scenario, point, source)?;
    let plan = Plan::of_run(scenario, source, memory_budget, threads)?;
    let pool = plan.pool()?;
    let passes = Passes::new(source, &plan, &pool);
    let progress = ProgressBar::hidden();
    let summary = passes::summarize(&passes, &progress)?;
    chain.fit(&mut FitCache::new(&passes, &progress, &summary))?;
    let trips = pool.install(|| {
        plan.chunks
            .par_iter()
            .map(|rows| {
                let original = source.read_slab(rows.clone()).map_err(|e| e.to_string())?;
                chain.round_trip(&original).map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, String>>()
    })?;
    let compressed_bytes = trips.iter().map(|t| t.encoded_bytes as u64).sum();
    let encode_seconds = trips.iter().map(|t| t.encode_seconds).sum();
    let decode_seconds = trips.iter().map(|t| t.decode_seconds).sum();
    let decoded: Vec<NdArray> = trips
        .into_iter()
        .map(|t| std::sync::Arc::unwrap_or_clone(t.decoded))
        .collect();
    let decoded = NdArray::concatenate(&decoded)?;
    let values = decoded.len() as u64;
    let rate = Rate::new(
        values,
        source.dtype().size(),
        compressed_bytes,
        (encode_seconds, decode_seconds),
        chain.side_files(),
    );
    Ok((decoded, rate))
}
