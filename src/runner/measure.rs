//! Measuring a batch of working points in passes over the input (see [`super::stream`]): the
//! rate of every point, and the distortion and science of every group of points that decode
//! alike, computed once for the group.
//!
//! 1. The measuring pass round-trips every chunk through every point's chain (sharing what the
//!    chains share), keeps each point's rate and promised-bound checks, and each group's
//!    comparison partial, decoded range and reconstruction rows.
//! 2. With analyses that fit on the decoded data (Otsu thresholds), a pass for each group's
//!    decoded histogram over its decoded range.
//! 3. With analyses, a pass for their partials with each group's fits.
//!
//! Passes 2 and 3 replay the decoded data without the rate: a chain whose array->bytes stage is
//! lossless decodes what its array->array stages make of the input again, which costs no
//! compression; a lossy one decodes the bytes the measuring pass kept ([`Replay`]), which
//! costs no encoding.
//!
//! Partials merge in chunk order, as one point measured alone merges them, so a point's row is
//! the same bit for bit whatever it shares and whatever the thread count.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use indicatif::ProgressBar;
use serde_json::{Map, Value};

use super::external::Commands;
use super::passes::{Passes, min_max};
use super::reconstruction::{Gathered, Reconstruction};
use super::replay::Replay;
use super::science::{self, Analyses, SciencePartial};
use super::stream::{Around, Need, Produced, stream};
use crate::analysis::Slabs;
use crate::data::NdArray;
use crate::metrics::comparison::{BoundSums, CompareSpec, Partial, merge_bounds};
use crate::pipeline::{Chain, TripCache};
use crate::scenario::WorkingPoint;
use crate::stats::histogram::Binning;

/// Working points measured together, and their groups: points whose chains decode every chunk
/// to the same array ([`Chain::decoded_key`]), as indices into `points` in sweep order.
pub struct Batch<'a> {
    /// The points and their fitted chains, in sweep order.
    pub points: Vec<(&'a WorkingPoint, &'a Chain)>,
    /// The groups; each point is in one.
    pub groups: Vec<Vec<usize>>,
}

impl<'a> Batch<'a> {
    /// One point alone.
    pub fn one(point: &'a WorkingPoint, chain: &'a Chain) -> Batch<'a> {
        Batch {
            points: vec![(point, chain)],
            groups: vec![vec![0]],
        }
    }
}

/// What the science of a run is: the streamed analyses, the reconstruction (whose slices they
/// then analyse), the external programs.
#[derive(Clone, Copy)]
pub struct Science<'a> {
    /// The streamed analyses.
    pub analyses: &'a Analyses,
    /// The reconstruction of the decoded projections, when the scenario has one.
    pub reconstruction: Option<&'a Reconstruction>,
    /// The `command` analyses.
    pub commands: Option<&'a Commands>,
}

/// Rate and comparison partials of one working point, or of one of its chunks. Slab units
/// ([`super::slabs`]) store a chunk's: what a reconstruction and the analyses add is not
/// stored.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Measured {
    /// Bytes the chunks were encoded into.
    pub compressed_bytes: u64,
    /// The comparison partial, with the bounds the point's stages promise.
    pub partial: Partial,
    /// Time spent encoding.
    pub encode_seconds: f64,
    /// Time spent decoding.
    pub decode_seconds: f64,
    /// Smallest and largest decoded value (when asked for).
    pub decoded_range: (f64, f64),
}

impl Measured {
    /// Merges chunk measurements given in chunk order.
    pub fn fold(chunks: Vec<Measured>) -> Result<Measured, String> {
        let mut total = Measured {
            compressed_bytes: 0,
            partial: Partial::default(),
            encode_seconds: 0.0,
            decode_seconds: 0.0,
            decoded_range: EMPTY_RANGE,
        };
        for chunk in chunks {
            total.compressed_bytes += chunk.compressed_bytes;
            total.partial.merge(chunk.partial)?;
            total.encode_seconds += chunk.encode_seconds;
            total.decode_seconds += chunk.decode_seconds;
            total.decoded_range = widen(total.decoded_range, chunk.decoded_range);
        }
        Ok(total)
    }
}

/// The range of no values.
const EMPTY_RANGE: (f64, f64) = (f64::INFINITY, f64::NEG_INFINITY);

fn widen(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    (a.0.min(b.0), a.1.max(b.1))
}

/// A point's own part of one chunk's round trip: its rate and its promised bounds.
#[derive(Debug, Clone)]
struct Own {
    bytes: u64,
    encode_seconds: f64,
    decode_seconds: f64,
    bounds: Vec<BoundSums>,
}

/// What the points of a group share on one chunk: the comparison partial (without bounds),
/// the decoded range, the reconstruction's rows.
struct Shared {
    partial: Partial,
    decoded_range: (f64, f64),
    gathered: Option<Gathered>,
}

/// One chunk of the measuring pass.
struct ChunkMeasure {
    points: Vec<Result<Own, String>>,
    groups: Vec<Result<Shared, String>>,
}

/// Results of the science analyses by label (`[[analysis]]`).
pub type Findings = Map<String, Value>;

/// The measuring pass folded over the chunks: per point its own part, per group its shared
/// part, or their failures.
struct Folded {
    points: Vec<Result<Own, String>>,
    groups: Vec<Result<GroupTotal, String>>,
}

/// A group's shared parts folded over the chunks.
struct GroupTotal {
    partial: Partial,
    decoded_range: (f64, f64),
    /// The reconstruction's rows of every chunk, in chunk order.
    gathered: Vec<Gathered>,
}

/// Round-trips chunk `k` (`original`) through every chain of `batch`; keeps in `replay` what a
/// lossy group's later passes decode.
fn round_trips(
    batch: &Batch,
    (k, rows, original): (usize, Range<usize>, Arc<NdArray>),
    replay: Option<&Replay>,
) -> Produced<Own> {
    let mut cache = TripCache::default();
    let mut checked: HashMap<String, Result<BoundSums, String>> = HashMap::new();
    let mut decoded: Vec<Option<Arc<NdArray>>> = vec![None; batch.groups.len()];
    let mut own = Vec::with_capacity(batch.points.len());
    for (p, (_, chain)) in batch.points.iter().enumerate() {
        let trip = chain
            .round_trip_in(&original, &mut cache)
            .map_err(|e| e.to_string());
        own.push(trip.and_then(|trip| {
            let bounds = trip
                .checks
                .iter()
                .map(|c| {
                    checked
                        .entry(c.key.clone())
                        .or_insert_with(|| BoundSums::of_check(c))
                        .clone()
                })
                .collect::<Result<Vec<_>, _>>()?;
            let g = group_of(batch, p);
            if decoded[g].is_none() {
                decoded[g] = Some(Arc::clone(&trip.decoded));
                // A lossless packing replays from the input, for nothing but its array stages.
                if let Some(replay) = replay.filter(|_| !chain.lossless_packing()) {
                    replay.keep((g, k), p, &trip.stored)?;
                }
            }
            Ok(Own {
                bytes: trip.encoded_bytes as u64,
                encode_seconds: trip.encode_seconds,
                decode_seconds: trip.decode_seconds,
                bounds,
            })
        }));
    }
    let decoded = batch
        .groups
        .iter()
        .zip(decoded)
        .map(|(members, d)| {
            d.ok_or_else(|| {
                let first = members[0];
                own[first].as_ref().err().cloned().unwrap_or_default()
            })
        })
        .collect();
    Produced {
        rows,
        original,
        decoded,
        own,
    }
}

/// The group of point `p`.
fn group_of(batch: &Batch, p: usize) -> usize {
    batch
        .groups
        .iter()
        .position(|g| g.contains(&p))
        .expect("every point is in a group")
}

/// The measuring pass over chunks `range`.
fn measure_pass(
    passes: &Passes,
    batch: &Batch,
    spec: &CompareSpec,
    (with_range, reconstruction): (bool, Option<&Reconstruction>),
    (range, replay): (Range<usize>, Option<&Replay>),
    progress: &ProgressBar,
) -> Result<Vec<ChunkMeasure>, String> {
    progress.inc_length(range.len() as u64);
    let every_group: Vec<usize> = (0..batch.groups.len()).collect();
    let produce = |k: usize, original: Arc<NdArray>, need| match need {
        Need::Core => round_trips(batch, (k, passes.chunks[k].clone(), original), replay),
        Need::Halo => replays((passes, batch, None), &every_group, k, original),
    };
    let shared = |around: &Around<Own>, g: usize| -> Result<Shared, String> {
        let (x, y) = around.rows(g)?;
        let partial = spec.partial(&x, &y, around.held.clone(), around.core.rows.clone())?;
        let decoded = around.core.decoded[g].as_ref().map_err(Clone::clone)?;
        let decoded_range = if with_range {
            let (lo, hi, _) = min_max(decoded);
            (lo, hi)
        } else {
            EMPTY_RANGE
        };
        Ok(Shared {
            partial,
            decoded_range,
            gathered: reconstruction.map(|r| r.gather(decoded)),
        })
    };
    let measure = |around: &Around<Own>| ChunkMeasure {
        points: around.core.own.clone(),
        groups: (0..batch.groups.len()).map(|g| shared(around, g)).collect(),
    };
    // Histogram counts are exact: fold them into the group's first partial right away.
    let absorb = |first: &mut ChunkMeasure, next: &mut ChunkMeasure| {
        for (a, b) in first.groups.iter_mut().zip(&mut next.groups) {
            if let (Ok(a), Ok(b)) = (a, b) {
                // Counts of one spec merge; an error would have shown in the partial.
                let _ = a.partial.absorb_counts(&mut b.partial);
            }
        }
    };
    stream(
        passes,
        (spec.halo(), range),
        progress,
        produce,
        measure,
        absorb,
    )
}

/// Folds the chunks of the measuring pass in chunk order: per point its own part, per group
/// its shared part. A point fails with its first failure, or its group's if that comes first
/// (on one chunk, its own first).
fn fold(batch: &Batch, chunks: Vec<ChunkMeasure>) -> Folded {
    let mut points: Vec<Result<Own, String>> = vec![
        Ok(Own {
            bytes: 0,
            encode_seconds: 0.0,
            decode_seconds: 0.0,
            bounds: Vec::new(),
        });
        batch.points.len()
    ];
    let mut groups: Vec<Result<GroupTotal, String>> = (0..batch.groups.len())
        .map(|_| {
            Ok(GroupTotal {
                partial: Partial::default(),
                decoded_range: EMPTY_RANGE,
                gathered: Vec::new(),
            })
        })
        .collect();
    for chunk in chunks {
        for (total, own) in points.iter_mut().zip(chunk.points) {
            if let Ok(t) = total {
                let merged = own.and_then(|o| {
                    t.bytes += o.bytes;
                    t.encode_seconds += o.encode_seconds;
                    t.decode_seconds += o.decode_seconds;
                    merge_bounds(&mut t.bounds, &o.bounds)
                });
                if let Err(e) = merged {
                    *total = Err(e);
                }
            }
        }
        for (g, shared) in chunk.groups.into_iter().enumerate() {
            let merged = match (&mut groups[g], shared) {
                (Err(_), _) => continue,
                (Ok(t), Ok(s)) => {
                    t.decoded_range = widen(t.decoded_range, s.decoded_range);
                    t.gathered.extend(s.gathered);
                    t.partial.merge(s.partial)
                }
                (Ok(_), Err(e)) => Err(e),
            };
            if let Err(e) = merged {
                for &p in &batch.groups[g] {
                    if points[p].is_ok() {
                        points[p] = Err(e.clone());
                    }
                }
                groups[g] = Err(e);
            }
        }
    }
    Folded { points, groups }
}

/// Decodes chunk `k` (`original`) again for the groups in `groups` (by index; the others get
/// nothing): from the bytes `replay` kept, else through each group's chain without its
/// lossless tail.
fn replays<T>(
    (passes, batch, replay): (&Passes, &Batch, Option<&Replay>),
    groups: &[usize],
    k: usize,
    original: Arc<NdArray>,
) -> Produced<T> {
    let rows = passes.chunks[k].clone();
    let mut cache = TripCache::default();
    let decoded = (0..batch.groups.len())
        .map(|g| {
            if !groups.contains(&g) {
                return Err("not replayed".to_string());
            }
            let decoded = match replay.map(|r| r.get((g, k))).transpose()?.flatten() {
                Some(kept) => batch.points[kept.point]
                    .1
                    .decode_stored(&kept.bytes, original.shape())
                    .map(Arc::new),
                None => batch.points[batch.groups[g][0]]
                    .1
                    .decoded_in(&original, &mut cache),
            };
            decoded.map_err(|e| e.to_string())
        })
        .collect();
    Produced {
        rows,
        original,
        decoded,
        own: Vec::new(),
    }
}

/// The decoded histogram of each group of `binnings` (group, its binning) over chunks
/// `range`, or the group's failure.
fn histograms(
    passes: &Passes,
    batch: &Batch,
    binnings: &[(usize, Binning)],
    (range, replay): (Range<usize>, Option<&Replay>),
    progress: &ProgressBar,
) -> Result<Vec<Result<Vec<u64>, String>>, String> {
    progress.inc_length(range.len() as u64);
    let groups: Vec<usize> = binnings.iter().map(|(g, _)| *g).collect();
    let produce = |k, original, _| replays((passes, batch, replay), &groups, k, original);
    let count = |around: &Around<()>| -> Vec<Result<Vec<u64>, String>> {
        binnings
            .iter()
            .map(|(g, binning)| {
                let decoded = around.core.decoded[*g].as_ref().map_err(Clone::clone)?;
                let mut counts = binning.zeros();
                binning.accumulate(decoded, &mut counts);
                Ok(counts)
            })
            .collect()
    };
    let chunks = stream(passes, (0, range), progress, produce, count, |_, _| ())?;
    let mut totals: Vec<Result<Vec<u64>, String>> =
        binnings.iter().map(|(_, b)| Ok(b.zeros())).collect();
    for chunk in chunks {
        for (total, part) in totals.iter_mut().zip(chunk) {
            match (total.as_mut(), part) {
                (Err(_), _) => {}
                (Ok(t), Ok(p)) => t.iter_mut().zip(p).for_each(|(c, p)| *c += p),
                (Ok(_), Err(e)) => *total = Err(e),
            }
        }
    }
    Ok(totals)
}

/// The analyses' partials of each group of `fits` (group, its fits) over chunks `range`, in
/// chunk order, or the group's failure.
fn science_pass(
    passes: &Passes,
    batch: &Batch,
    (analyses, fits): (&Analyses, &[(usize, &science::Fits)]),
    (range, replay): (Range<usize>, Option<&Replay>),
    progress: &ProgressBar,
) -> Result<Vec<Result<Vec<SciencePartial>, String>>, String> {
    progress.inc_length(range.len() as u64);
    let groups: Vec<usize> = fits.iter().map(|(g, _)| *g).collect();
    let shape = passes.source.shape();
    let produce = |k, original, _| replays((passes, batch, replay), &groups, k, original);
    let partials = |around: &Around<()>| -> Vec<Result<SciencePartial, String>> {
        fits.iter()
            .map(|(g, fits)| {
                let (x, y) = around.rows(*g)?;
                let slabs = Slabs {
                    original: &x,
                    decoded: &y,
                    held: around.held.clone(),
                    core: around.core.rows.clone(),
                    shape,
                };
                analyses.partial(fits, &slabs)
            })
            .collect()
    };
    let chunks = stream(
        passes,
        (analyses.halo(), range),
        progress,
        produce,
        partials,
        |_, _| (),
    )?;
    let mut totals: Vec<Result<Vec<SciencePartial>, String>> =
        fits.iter().map(|_| Ok(Vec::new())).collect();
    for chunk in chunks {
        for (total, part) in totals.iter_mut().zip(chunk) {
            match (total.as_mut(), part) {
                (Err(_), _) => {}
                (Ok(t), Ok(p)) => t.push(p),
                (Ok(_), Err(e)) => *total = Err(e),
            }
        }
    }
    Ok(totals)
}

/// Calls `write(rows, decoded chunk)` for every chunk of group `group`'s decoded data (one
/// pass), or the group's failure.
fn decoded_pass(
    passes: &Passes,
    batch: &Batch,
    group: usize,
    replay: Option<&Replay>,
    progress: &ProgressBar,
    write: impl Fn(&Range<usize>, &NdArray) -> Result<(), String> + Sync,
) -> Result<(), String> {
    let all = 0..passes.chunks.len();
    progress.inc_length(all.len() as u64);
    let produce = |k, original, _| replays((passes, batch, replay), &[group], k, original);
    let written = stream(
        passes,
        (0, all),
        progress,
        produce,
        |around: &Around<()>| {
            let decoded = around.core.decoded[group].as_ref().map_err(Clone::clone)?;
            write(&around.core.rows, decoded)
        },
        |_, _| (),
    )?;
    written.into_iter().collect()
}

/// What the points of a group share in their rows: the distortion metrics and the science.
pub struct GroupOutcome {
    /// Values compared.
    pub values: u64,
    /// Decoded values that are NaN or infinite where the original is not.
    pub nonfinite_decoded: u64,
    /// The distortion metrics, or why they cannot be had.
    pub distortion: Result<Map<String, Value>, String>,
    /// The science analyses by label.
    pub science: Map<String, Value>,
    /// The distortion metrics of the reconstructed slices.
    pub reconstructed: Map<String, Value>,
}

impl GroupOutcome {
    /// The outcome of the folded comparison `partial` and the science.
    pub fn new(
        spec: &CompareSpec,
        names: &[&str],
        partial: &Partial,
        (science, reconstructed): (Map<String, Value>, Map<String, Value>),
    ) -> GroupOutcome {
        GroupOutcome {
            values: partial.point.count,
            nonfinite_decoded: partial.point.nonfinite_decoded,
            distortion: spec.finish(partial, names),
            science,
            reconstructed,
        }
    }
}

/// What a row reports of a measured point: its own rate and bounds, its group's outcome.
pub struct PointMeasure {
    /// Bytes the chunks were encoded into.
    pub compressed_bytes: u64,
    /// Time spent encoding.
    pub encode_seconds: f64,
    /// Time spent decoding.
    pub decode_seconds: f64,
    /// The measured promised bounds.
    pub bounds: Vec<BoundSums>,
    /// The group's outcome.
    pub group: Arc<GroupOutcome>,
    /// The point whose decoded data this point's metrics and science were computed on, when
    /// another (see [`Chain::decoded_key`]).
    pub shares_decoded_with: Option<String>,
}

impl PointMeasure {
    /// A point measured alone (slab units), from its folded measurements and its science.
    pub fn alone(
        measured: Measured,
        spec: &CompareSpec,
        names: &[&str],
        science: Map<String, Value>,
    ) -> PointMeasure {
        let group = GroupOutcome::new(spec, names, &measured.partial, (science, Map::new()));
        PointMeasure {
            compressed_bytes: measured.compressed_bytes,
            encode_seconds: measured.encode_seconds,
            decode_seconds: measured.decode_seconds,
            bounds: measured.partial.bounds,
            group: Arc::new(group),
            shares_decoded_with: None,
        }
    }
}

/// Measures the points of `batch` over the whole input: rate, distortion (metrics `names` of
/// `spec`) and `science`; per point its measurements or its failure. `replay` keeps what
/// lossy groups' later passes decode.
pub fn measure_batch(
    passes: &Passes,
    batch: &Batch,
    (spec, names): (&CompareSpec, &[&str]),
    science: Science,
    replay: Option<&Replay>,
    progress: &ProgressBar,
) -> Result<Vec<Result<PointMeasure, String>>, String> {
    let all = 0..passes.chunks.len();
    let Science {
        analyses,
        reconstruction,
        commands,
    } = science;
    let needs_range = reconstruction.is_none() && analyses.needs_histogram();
    let chunks = measure_pass(
        passes,
        batch,
        spec,
        (needs_range, reconstruction),
        (all.clone(), replay),
        progress,
    )?;
    let Folded { points, groups } = fold(batch, chunks);
    let mut outcomes: Vec<Result<GroupOutcome, String>> = Vec::with_capacity(groups.len());
    let mut sciences: Vec<Result<Findings, String>> = groups
        .iter()
        .map(|g| g.as_ref().map(|_| Map::new()).map_err(Clone::clone))
        .collect();
    let alive: Vec<usize> = (0..groups.len()).filter(|&g| groups[g].is_ok()).collect();
    if reconstruction.is_none() && !analyses.is_empty() && !alive.is_empty() {
        let analysed = analyse(passes, batch, analyses, (&groups, &alive), replay, progress)?;
        for (g, science) in alive.iter().zip(analysed) {
            sciences[*g] = science;
        }
    }
    if let Some(commands) = commands {
        for &g in &alive {
            let point = batch.points[batch.groups[g][0]].0;
            if let Ok(science) = &mut sciences[g] {
                let results = commands.measure(&point.id, passes.source, |writer| {
                    decoded_pass(passes, batch, g, replay, progress, |rows, decoded| {
                        writer
                            .write_rows(rows.start, decoded)
                            .map_err(|e| e.to_string())
                    })
                });
                match results {
                    Ok(results) => science.extend(results),
                    Err(e) => sciences[g] = Err(e),
                }
            }
        }
    }
    for (group, science) in groups.into_iter().zip(sciences) {
        outcomes.push(group.and_then(|total| {
            let mut science = science?;
            let mut reconstructed = Map::new();
            if let Some(r) = reconstruction {
                let (metrics, analysed) = r.measure(total.gathered)?;
                reconstructed = metrics;
                science.extend(analysed);
            }
            Ok(GroupOutcome::new(
                spec,
                names,
                &total.partial,
                (science, reconstructed),
            ))
        }));
    }
    let outcomes: Vec<Result<Arc<GroupOutcome>, String>> =
        outcomes.into_iter().map(|o| o.map(Arc::new)).collect();
    Ok(points
        .into_iter()
        .enumerate()
        .map(|(p, own)| {
            let g = group_of(batch, p);
            let own = own?;
            let group = outcomes[g].clone()?;
            let first = batch.groups[g][0];
            Ok(PointMeasure {
                compressed_bytes: own.bytes,
                encode_seconds: own.encode_seconds,
                decode_seconds: own.decode_seconds,
                bounds: own.bounds,
                group,
                shares_decoded_with: (first != p).then(|| batch.points[first].0.id.clone()),
            })
        })
        .collect())
}

/// The science of the groups `alive` (whose measuring pass gave `groups`): the decoded
/// histograms their fits need (one pass), then the analyses' partials (one pass); per alive
/// group, in order, its results or its failure.
fn analyse(
    passes: &Passes,
    batch: &Batch,
    analyses: &Analyses,
    (groups, alive): (&[Result<GroupTotal, String>], &[usize]),
    replay: Option<&Replay>,
    progress: &ProgressBar,
) -> Result<Vec<Result<Findings, String>>, String> {
    let all = 0..passes.chunks.len();
    let dtype = passes.source.dtype();
    let mut fits: Vec<Result<science::Fits, String>> = Vec::with_capacity(alive.len());
    if analyses.needs_histogram() {
        let mut binnings = Vec::new();
        let mut binned = Vec::new();
        for &g in alive {
            let range = groups[g].as_ref().expect("alive").decoded_range;
            match science::decoded_binning(dtype, range) {
                Ok(binning) => {
                    binned.push(Ok(binnings.len()));
                    binnings.push((g, binning));
                }
                Err(e) => binned.push(Err(e)),
            }
        }
        let counts = histograms(passes, batch, &binnings, (all.clone(), replay), progress)?;
        let mut counts = counts.into_iter();
        for slot in binned {
            fits.push(slot.and_then(|i| {
                let counts = counts.next().expect("one per binning")?;
                let histogram = binnings[i].1.finish(counts);
                analyses.fit(Some(&histogram))
            }));
        }
    } else {
        fits.extend(alive.iter().map(|_| analyses.fit(None)));
    }
    let fitted: Vec<(usize, &science::Fits)> = alive
        .iter()
        .zip(&fits)
        .filter_map(|(&g, f)| f.as_ref().ok().map(|f| (g, f)))
        .collect();
    let partials = science_pass(passes, batch, (analyses, &fitted), (all, replay), progress)?;
    let mut partials = partials.into_iter();
    let shape = passes.source.shape();
    Ok(fits
        .iter()
        .map(|fit| {
            let fit = fit.as_ref().map_err(Clone::clone)?;
            let parts = partials.next().expect("one per fitted group")?;
            let total = analyses.merge(parts)?;
            analyses.finish(fit, total, shape)
        })
        .collect())
}

/// The measurements of chunks `range` of one point, one per chunk in order (slab units), or
/// its first failure.
pub fn measure_chunks(
    passes: &Passes,
    (point, chain): (&WorkingPoint, &Chain),
    spec: &CompareSpec,
    (with_range, reconstruction): (bool, Option<&Reconstruction>),
    range: std::ops::Range<usize>,
    progress: &ProgressBar,
) -> Result<Result<Vec<Measured>, String>, String> {
    let batch = Batch::one(point, chain);
    let chunks = measure_pass(
        passes,
        &batch,
        spec,
        (with_range, reconstruction),
        (range, None),
        progress,
    )?;
    Ok(chunks
        .into_iter()
        .map(|chunk| {
            let own = chunk.points.into_iter().next().expect("one point")?;
            let mut shared = chunk.groups.into_iter().next().expect("one group")?;
            shared.partial.bounds = own.bounds;
            Ok(Measured {
                compressed_bytes: own.bytes,
                partial: shared.partial,
                encode_seconds: own.encode_seconds,
                decode_seconds: own.decode_seconds,
                decoded_range: shared.decoded_range,
            })
        })
        .collect())
}

/// The histogram counts of one point's decoded data of chunks `range` in `binning` (slab
/// units), or its failure.
pub fn decoded_counts(
    passes: &Passes,
    (point, chain): (&WorkingPoint, &Chain),
    binning: &Binning,
    range: Range<usize>,
    progress: &ProgressBar,
) -> Result<Result<Vec<u64>, String>, String> {
    let batch = Batch::one(point, chain);
    let binnings = [(0, binning.clone())];
    let counts = histograms(passes, &batch, &binnings, (range, None), progress)?;
    Ok(counts.into_iter().next().expect("one group"))
}

/// The analyses' partials of one point's chunks `range` with its fits, in chunk order (slab
/// units), or its failure.
pub fn science_partials(
    passes: &Passes,
    (point, chain): (&WorkingPoint, &Chain),
    (analyses, fits): (&Analyses, &science::Fits),
    range: Range<usize>,
    progress: &ProgressBar,
) -> Result<Result<Vec<SciencePartial>, String>, String> {
    let batch = Batch::one(point, chain);
    let partials = science_pass(
        passes,
        &batch,
        (analyses, &[(0, fits)]),
        (range, None),
        progress,
    )?;
    Ok(partials.into_iter().next().expect("one group"))
}
