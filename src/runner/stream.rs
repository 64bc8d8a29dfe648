//! Chunk-major streaming: a pass reads each chunk of the input once for every working point in
//! flight, runs their chains on it together (sharing what they share, see
//! [`crate::pipeline::TripCache`]), and hands each group of points that decode alike its
//! original and decoded rows around the chunk, with the halo a metric or analysis needs.
//!
//! Chunks run in groups of consecutive chunks, the groups in parallel and the chunks of a group
//! in order, so that the rows beyond a chunk (its halo, e.g. the SSIM window) come from the
//! neighbouring chunks, kept while needed. The chunks beyond a group that its halo reaches are
//! produced for their decoded data alone ([`Need::Halo`]: no point's rate, no lossless tail,
//! which would cost the measuring pass a fifth more deflate on two threads). The grouping
//! changes neither the data nor the order of merges, so results do not depend on it or on the
//! thread count.

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

/// What a pass needs of a chunk it produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A chunk the pass works on: all it measures.
    Core,
    /// A chunk beyond the group worked on, reached by a halo: its original and each group's
    /// decoded data (the same as when it is a core chunk), nothing else.
    Halo,
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

/// Produces chunks `range` (chunk indices) with `produce(chunk index, original, need)` and maps each
/// with `f(around it)`, where the held rows extend the chunk by up to `halo` rows on each side;
/// results in chunk order. `absorb(first, next)` may move what merges in any order (exact
/// counts) from each result into its group's first, to bound memory. An error reading the
/// input stops the pass; a point's or group's failure is for `produce` and `f` to report in
/// their results.
pub fn stream<T, P: Send>(
    passes: &Passes,
    (halo, range): (usize, Range<usize>),
    progress: &ProgressBar,
    produce: impl Fn(usize, Arc<NdArray>, Need) -> Produced<T> + Sync,
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
    produce: &(impl Fn(usize, Arc<NdArray>, Need) -> Produced<T> + Sync),
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
        let need = if group.contains(&k) {
            Need::Core
        } else {
            Need::Halo
        };
        Ok(produce(k, Arc::new(original), need))
    };
    // Chunks produced, oldest first, kept while a halo may reach them.
    let mut kept: VecDeque<(usize, Produced<T>)> = VecDeque::new();
    let mut out = Vec::with_capacity(group.len());
    for k in group.clone() {
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use ndarray::{ArrayD, IxDyn};

    use super::*;
    use crate::data::{IntoNdArray, MemorySource};

    /// Every chunk is produced once for what a pass measures, whatever the threads; the
    /// chunks beyond a group that a halo reaches are produced again for their decoded data
    /// alone, and the rows around each chunk are its own and its neighbours'.
    #[test]
    fn halo_chunks_are_produced_for_their_decoded_data_alone() {
        let values = (0..40 * 3).map(|v| v as f32).collect();
        let array = ArrayD::from_shape_vec(IxDyn(&[40, 3]), values).unwrap();
        let source = MemorySource::new(array.into_nd(), "ramp").unwrap();
        let chunks: Vec<Range<usize>> = (0..10).map(|k| 4 * k..4 * k + 4).collect();
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let passes = Passes {
                source: &source,
                chunks: chunks.clone(),
                pool: &pool,
            };
            let produced = Mutex::new(Vec::new());
            let produce = |k: usize, original: Arc<NdArray>, need: Need| {
                produced.lock().unwrap().push((k, need));
                Produced {
                    rows: passes.chunks[k].clone(),
                    decoded: vec![Ok(Arc::clone(&original))],
                    original,
                    own: Vec::<Result<(), String>>::new(),
                }
            };
            let held = |around: &Around<()>| {
                let (x, _) = around.rows(0).unwrap();
                (around.held.clone(), x.shape()[0])
            };
            let progress = ProgressBar::hidden();
            let out = stream(&passes, (2, 1..9), &progress, produce, held, |_, _| ()).unwrap();
            let expected: Vec<_> = (1..9).map(|k| (4 * k - 2..4 * k + 6, 8)).collect();
            assert_eq!(out, expected, "{threads} threads");
            let produced = produced.into_inner().unwrap();
            let mut core: Vec<usize> = produced
                .iter()
                .filter(|(_, need)| *need == Need::Core)
                .map(|(k, _)| *k)
                .collect();
            core.sort();
            assert_eq!(core, (1..9).collect::<Vec<_>>(), "{threads} threads");
            // Each group of chunks (4 per thread) reaches one chunk before it and one after.
            let halos = produced.len() - core.len();
            assert_eq!(
                halos,
                2 * split_evenly(8, 4 * threads).len(),
                "{threads} threads"
            );
        }
    }
}
