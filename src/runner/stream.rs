//! Chunk-major streaming: a pass reads each chunk of the input once for every working point in
//! flight, runs their chains on it together (sharing what they share, see
//! [`crate::pipeline::TripCache`]), and hands each group of points that decode alike its
//! original and decoded rows around the chunk, with the halo a metric or analysis needs.
//!
//! Chunks run in groups of consecutive chunks, the groups in parallel and the chunks of a group
//! in order, so that the rows beyond a chunk (its halo, e.g. the SSIM window) come from the
//! neighbouring chunks' round trips, kept while needed. A group starts by round-tripping the
//! chunks before it that its halo reaches (not counted in the rate). The grouping changes
//! neither the data nor the order of merges, so results do not depend on it or on the thread
//! count.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use indicatif::ProgressBar;
use rayon::prelude::*;

use super::passes::Passes;
use crate::data::{NdArray, rows_with_halo};

/// What a pass makes of one chunk: the original, each group's decoded chunk and, in the
/// measuring pass, what every point's round trip measured (`T`).
pub struct Produced<T> {
    /// Rows of the chunk.
    pub rows: Range<usize>,
    /// The original chunk.
    pub original: Arc<NdArray>,
    /// Per group of points that decode alike: its decoded chunk, or why it has none.
    pub decoded: Vec<Result<Arc<NdArray>, String>>,
    /// Per point, what its round trip measured (empty when the pass replays decoded data).
    pub own: Vec<Result<T, String>>,
}

/// The chunks a pass has produced around the one it works on.
pub struct Around<'a, T> {
    /// The chunk worked on.
    pub core: &'a Produced<T>,
    /// Rows held around it: its rows extended by the halo, clamped to the input.
    pub held: Range<usize>,
    /// The chunks covering `held`, in order.
    kept: Vec<&'a Produced<T>>,
}

impl<T> Around<'_, T> {
    /// Rows `held` of the original and of group `group`'s decoded data, or why the group has
    /// none for one of the chunks.
    pub fn rows(&self, group: usize) -> Result<(Cow<'_, NdArray>, Cow<'_, NdArray>), String> {
        let decoded: Vec<&Arc<NdArray>> = self
            .kept
            .iter()
            .map(|p| p.decoded[group].as_ref().map_err(Clone::clone))
            .collect::<Result<_, _>>()?;
        if let [only] = self.kept.as_slice() {
            return Ok((Cow::Borrowed(&only.original), Cow::Borrowed(decoded[0])));
        }
        let cut = |p: &Produced<T>, a: &NdArray| {
            let from = self.held.start.max(p.rows.start) - p.rows.start;
            let to = self.held.end.min(p.rows.end) - p.rows.start;
            a.slice_rows(from..to)
        };
        let original: Vec<NdArray> = self.kept.iter().map(|p| cut(p, &p.original)).collect();
        let decoded: Vec<NdArray> = self
            .kept
            .iter()
            .zip(decoded)
            .map(|(p, d)| cut(p, d))
            .collect();
        Ok((
            Cow::Owned(NdArray::concatenate(&original)?),
            Cow::Owned(NdArray::concatenate(&decoded)?),
        ))
    }
}

/// Produces chunks `range` (chunk indices) with `produce(chunk index, original)` and maps each
/// with `f(around it)`, where the held rows extend the chunk by up to `halo` rows on each side;
/// results in chunk order. `absorb(first, next)` may move what merges in any order (exact
/// counts) from each result into its group's first, to bound memory. An error reading the
/// input stops the pass; a point's or group's failure is for `produce` and `f` to report in
/// their results.
pub fn stream<T, P: Send>(
    passes: &Passes,
    (halo, range): (usize, Range<usize>),
    progress: &ProgressBar,
    produce: impl Fn(usize, Arc<NdArray>) -> Produced<T> + Sync,
    f: impl Fn(&Around<T>) -> P + Sync,
    absorb: impl Fn(&mut P, &mut P) + Sync,
) -> Result<Vec<P>, String> {
    let groups: Vec<Range<usize>> =
        split_evenly(range.len(), passes.pool.current_num_threads() * 4)
            .into_iter()
            .map(|g| g.start + range.start..g.end + range.start)
            .collect();
    let per_group: Vec<Vec<P>> = passes.pool.install(|| {
        groups
            .par_iter()
            .map(|group| {
                let mut out = stream_group(passes, halo, group.clone(), progress, &produce, &f)?;
                if let [first, rest @ ..] = out.as_mut_slice() {
                    for next in rest {
                        absorb(first, next);
                    }
                }
                Ok(out)
            })
            .collect::<Result<_, String>>()
    })?;
    Ok(per_group.into_iter().flatten().collect())
}

/// `n` items cut into at most `parts` contiguous, nearly equal ranges.
pub fn split_evenly(n: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.clamp(1, n.max(1));
    (0..parts)
        .map(|i| i * n / parts..(i + 1) * n / parts)
        .filter(|r| !r.is_empty())
        .collect()
}

fn stream_group<T, P>(
    passes: &Passes,
    halo: usize,
    group: Range<usize>,
    progress: &ProgressBar,
    produce: &(impl Fn(usize, Arc<NdArray>) -> Produced<T> + Sync),
    f: &(impl Fn(&Around<T>) -> P + Sync),
) -> Result<Vec<P>, String> {
    let chunks = &passes.chunks;
    let rows = passes.source.shape()[0];
    let chunk_of = |row: usize| chunks.partition_point(|c| c.end <= row);
    let read = |k: usize| -> Result<Produced<T>, String> {
        let original = passes
            .source
            .read_slab(chunks[k].clone())
            .map_err(|e| e.to_string())?;
        Ok(produce(k, Arc::new(original)))
    };
    // Chunks produced, oldest first, kept while a halo may reach them.
    let mut kept: VecDeque<(usize, Produced<T>)> = VecDeque::new();
    let mut out = Vec::with_capacity(group.len());
    for k in group {
        let core = chunks[k].clone();
        let held = rows_with_halo(&core, halo, rows);
        let (first, last) = (chunk_of(held.start), chunk_of(held.end - 1));
        while kept.front().is_some_and(|(j, _)| *j < first) {
            kept.pop_front();
        }
        let next = kept.back().map_or(first, |(j, _)| j + 1);
        for j in next..=last {
            kept.push_back((j, read(j)?));
        }
        let around = Around {
            core: &kept.iter().find(|(j, _)| *j == k).expect("kept above").1,
            held,
            kept: kept.iter().map(|(_, p)| p).collect(),
        };
        out.push(f(&around));
        progress.inc(1);
    }
    Ok(out)
}
