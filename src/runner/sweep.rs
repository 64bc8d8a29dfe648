//! The sweep plan: which working points are measured together, and which of them share their
//! decoded data.
//!
//! Points whose fitted chains decode every chunk to the same array ([`Chain::decoded_key`]: the
//! same array->array stages with the same fitted values, and a lossless array->bytes stage or
//! the same lossy one) form a group: its distortion and science are computed once, on the
//! decoded data of its first point, while every point still runs its own lossless stages for
//! its rate and their bit-exact check. Points measured together (a batch) also share, chunk by
//! chunk, whatever prefix of stages their chains have in common ([`crate::pipeline::TripCache`]).
//! A batch holds as many groups as the memory budget lets a chunk's data stay in flight.

use super::measure::Batch;
use crate::pipeline::Chain;
use crate::scenario::WorkingPoint;

/// How many groups a batch may hold, and how many batches the points should at least make
/// (for threads that the chunks alone cannot keep busy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Most groups in one batch (at least 1).
    pub groups: usize,
    /// Fewest batches, when there are enough groups.
    pub batches: usize,
}

impl Capacity {
    /// The capacity of `threads` threads working on chunks of `chunk_bytes` bytes (`chunks`
    /// of them) within `budget` bytes: each group in flight holds about six chunk-sized arrays
    /// per thread (its decoded chunk and its neighbours' for halos, the stages' outputs),
    /// beside the input's three.
    pub fn of(budget: u64, threads: usize, (chunks, chunk_bytes): (usize, usize)) -> Capacity {
        let per_thread = budget / threads.max(1) as u64 / chunk_bytes.max(1) as u64;
        Capacity {
            groups: (per_thread.saturating_sub(3) / 6).max(1) as usize,
            batches: if chunks < threads { threads } else { 1 },
        }
    }
}

/// The batches of `points` (fitted, in sweep order): with `share`, points that decode alike
/// are one group; without, every point is its own. Groups keep their sweep order (that of their
/// first point), cut into contiguous batches of at most `capacity.groups`.
pub fn batches(
    points: &[(WorkingPoint, Chain)],
    share: bool,
    capacity: Capacity,
) -> Vec<Batch<'_>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (p, (_, chain)) in points.iter().enumerate() {
        let key = chain.decoded_key();
        let alike = |g: &&mut Vec<usize>| share && points[g[0]].1.decoded_key() == key;
        match groups.iter_mut().find(alike) {
            Some(group) => group.push(p),
            None => groups.push(vec![p]),
        }
    }
    let count = groups
        .len()
        .div_ceil(capacity.groups.max(1))
        .max(capacity.batches.min(groups.len()));
    super::stream::split_evenly(groups.len(), count)
        .into_iter()
        .map(|range| {
            let mut batch = Batch {
                points: Vec::new(),
                groups: Vec::new(),
            };
            for group in &groups[range] {
                let members = (batch.points.len()..batch.points.len() + group.len()).collect();
                batch.groups.push(members);
                batch
                    .points
                    .extend(group.iter().map(|&p| (&points[p].0, &points[p].1)));
            }
            batch
        })
        .collect()
}
