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
    /// beside the input's three, and `whole_input` bytes that grow over the whole input (the
    /// FSC's spectra, [`crate::metrics::spectral::fsc_memory`]; 0 without).
    pub fn of(
        budget: u64,
        threads: usize,
        (chunks, chunk_bytes): (usize, usize),
        whole_input: u64,
    ) -> Capacity {
        let chunk_arrays = threads.max(1) as u64 * chunk_bytes.max(1) as u64;
        let per_group = (6 * chunk_arrays).saturating_add(whole_input);
        Capacity {
            groups: (budget.saturating_sub(3 * chunk_arrays) / per_group).max(1) as usize,
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

#[cfg(test)]
mod tests {
    use super::Capacity;

    /// Six chunk-sized arrays per thread and group beside the input's three; a group that holds
    /// the FSC's spectra counts them whole, so fewer groups share a batch (never none).
    #[test]
    fn groups_fit_the_budget_with_what_they_hold_for_the_whole_input() {
        let mib = 1 << 20;
        // 2 threads, 4 MiB chunks: 8 MiB per chunk-sized array set; 3 for the input.
        let budget = (3 + 6 * 5) * 8 * mib;
        assert_eq!(Capacity::of(budget, 2, (10, 4 * mib as usize), 0).groups, 5);
        assert_eq!(
            Capacity::of(budget - 1, 2, (10, 4 * mib as usize), 0).groups,
            4
        );
        let spectra = 258 * mib;
        let fsc = Capacity::of(budget, 2, (10, 4 * mib as usize), spectra);
        assert_eq!(fsc.groups, 1);
        let roomy = Capacity::of(
            2 * (48 * mib + spectra) + 24 * mib,
            2,
            (10, 4 * mib as usize),
            spectra,
        );
        assert_eq!(roomy.groups, 2);
        // Fewer chunks than threads: as many batches as threads.
        assert_eq!(Capacity::of(budget, 2, (1, 4 * mib as usize), 0).batches, 2);
    }
}
