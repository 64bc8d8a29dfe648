//! Streaming passes over the input, chunk by chunk in parallel, with results kept in chunk
//! order so that merges are deterministic; and the whole-volume statistics stages fit on.

use std::collections::HashMap;
use std::ops::Range;

use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{DType, NdArray, VolumeSource, c_order};
use crate::metrics::sums::{LANES, f64x4, for_each_quad};
use crate::pipeline::InputStats;
use crate::pipeline::chain::{ArrayStage, StatsProvider, encode_through};
use crate::stats::histogram::{Binning, Histogram};
use crate::with_array;

/// The input cut into chunks along axis 0, and the pool that processes them.
pub struct Passes<'a> {
    /// The input.
    pub source: &'a dyn VolumeSource,
    /// Row ranges of the chunks, in order.
    pub chunks: Vec<Range<usize>>,
    /// Worker threads (sized by the memory budget).
    pub pool: &'a rayon::ThreadPool,
}

impl<'a> Passes<'a> {
    /// The chunks of `plan` over `source`, processed on `pool`.
    pub fn new(
        source: &'a dyn VolumeSource,
        plan: &super::Plan,
        pool: &'a rayon::ThreadPool,
    ) -> Self {
        Passes {
            source,
            chunks: plan.chunks.clone(),
            pool,
        }
    }

    /// Reads every chunk and maps it with `f`, in parallel; results in chunk order.
    pub fn map_chunks<R: Send>(
        &self,
        progress: &ProgressBar,
        f: impl Fn(NdArray) -> Result<R, String> + Sync,
    ) -> Result<Vec<R>, String> {
        self.pool.install(|| {
            self.chunks
                .par_iter()
                .map(|rows| {
                    let chunk = self
                        .source
                        .read_slab(rows.clone())
                        .map_err(|e| e.to_string())?;
                    let out = f(chunk);
                    progress.inc(1);
                    out
                })
                .collect()
        })
    }
}

/// Whole-volume facts about the original, from the first pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSummary {
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// BLAKE3 over the dtype name, the shape (u64 little-endian) and the BLAKE3 of each row
    /// along axis 0 (its little-endian bytes), so that it does not depend on the chunking.
    pub hash: String,
}

struct ChunkFacts {
    min: f64,
    max: f64,
    non_finite: usize,
    row_hashes: Vec<blake3::Hash>,
}

/// First pass: range, non-finite check and content hash of the original.
pub fn summarize(passes: &Passes, progress: &ProgressBar) -> Result<InputSummary, String> {
    let source = passes.source;
    let row_bytes = source.row_bytes();
    let facts = passes.map_chunks(progress, |chunk| {
        let (min, max, non_finite) = min_max(&chunk);
        let row_hashes = with_array!(&chunk, a => {
            let values = c_order(a);
            let bytes: &[u8] = bytemuck::cast_slice(&values);
            bytes.chunks(row_bytes).map(blake3::hash).collect()
        });
        Ok(ChunkFacts {
            min,
            max,
            non_finite,
            row_hashes,
        })
    })?;
    let non_finite: usize = facts.iter().map(|f| f.non_finite).sum();
    if non_finite > 0 {
        return Err(format!(
            "{}: contains {non_finite} NaN or infinite values; photonqa needs finite data",
            source.label()
        ));
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(source.dtype().name().as_bytes());
    for &d in source.shape() {
        hasher.update(&(d as u64).to_le_bytes());
    }
    for f in &facts {
        for h in &f.row_hashes {
            hasher.update(h.as_bytes());
        }
    }
    Ok(InputSummary {
        min: facts.iter().map(|f| f.min).fold(f64::INFINITY, f64::min),
        max: facts
            .iter()
            .map(|f| f.max)
            .fold(f64::NEG_INFINITY, f64::max),
        hash: hasher.finalize().to_hex().to_string(),
    })
}

/// Minimum and maximum of the finite values, and the number of non-finite ones.
pub fn min_max(array: &NdArray) -> (f64, f64, usize) {
    min_max_of_rows(array, 0..array.shape()[0])
}

/// [`min_max`] of rows `rows` along axis 0 of `array`, read in place, four lanes at a time
/// (minima and maxima are exact in any order).
pub fn min_max_of_rows(array: &NdArray, rows: Range<usize>) -> (f64, f64, usize) {
    with_array!(array, a => {
        let row: usize = a.shape()[1..].iter().product();
        let values = c_order(a);
        let values = &values[rows.start * row..rows.end * row];
        let (mut lo, mut hi) = (f64x4::splat(f64::INFINITY), f64x4::splat(f64::NEG_INFINITY));
        let mut bad = 0;
        for_each_quad(values, values, |v, _, filled| {
            let finite = v.is_finite();
            if filled == LANES && finite.all() {
                (lo, hi) = (lo.min(v), hi.max(v));
            } else {
                for &v in &v.to_array()[..filled] {
                    if v.is_finite() {
                        lo = lo.min(f64x4::splat(v));
                        hi = hi.max(f64x4::splat(v));
                    } else {
                        bad += 1;
                    }
                }
            }
        });
        let (lo, hi) = (lo.to_array(), hi.to_array());
        (
            lo.into_iter().fold(f64::INFINITY, f64::min),
            hi.into_iter().fold(f64::NEG_INFINITY, f64::max),
            bad,
        )
    })
}

/// The statistics of the data after a chain prefix that stages fitted on: its range and
/// dtype, and its histogram when a stage asked for it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    range: Option<(f64, f64, DType)>,
    histogram: Option<Histogram>,
}

/// Computes, and caches per chain prefix, the statistics that stages fit on.
pub struct FitCache<'a> {
    passes: &'a Passes<'a>,
    progress: &'a ProgressBar,
    cache: HashMap<String, Fitted>,
}

impl<'a> FitCache<'a> {
    /// A cache whose empty prefix (the original) already knows its range.
    pub fn new(passes: &'a Passes<'a>, progress: &'a ProgressBar, summary: &InputSummary) -> Self {
        let original = Fitted {
            range: Some((summary.min, summary.max, passes.source.dtype())),
            histogram: None,
        };
        FitCache {
            passes,
            progress,
            cache: HashMap::from([(String::new(), original)]),
        }
    }

    /// A cache holding `saved` ([`FitCache::saved`] of another process), so that chains fit as
    /// they fitted there without a pass over the input.
    pub fn restore(
        passes: &'a Passes<'a>,
        progress: &'a ProgressBar,
        saved: Vec<(String, Fitted)>,
    ) -> Self {
        FitCache {
            passes,
            progress,
            cache: saved.into_iter().collect(),
        }
    }

    /// What the cache holds, by chain prefix key, in key order.
    pub fn saved(&self) -> Vec<(String, Fitted)> {
        let mut saved: Vec<_> = self
            .cache
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        saved.sort_by(|a, b| a.0.cmp(&b.0));
        saved
    }
}

impl StatsProvider for FitCache<'_> {
    fn stats_for<'b>(
        &'b mut self,
        prefix: &'b [ArrayStage],
        key: &str,
    ) -> Box<dyn InputStats + 'b> {
        let entry = self.cache.entry(key.to_string()).or_default();
        Box::new(PrefixStats {
            passes: self.passes,
            progress: self.progress,
            prefix,
            entry,
        })
    }
}

struct PrefixStats<'b> {
    passes: &'b Passes<'b>,
    progress: &'b ProgressBar,
    prefix: &'b [ArrayStage],
    entry: &'b mut Fitted,
}

impl PrefixStats<'_> {
    fn range_and_dtype(&mut self) -> Result<(f64, f64, DType), String> {
        if let Some(r) = self.entry.range {
            return Ok(r);
        }
        self.progress.inc_length(self.passes.chunks.len() as u64);
        let parts = self.passes.map_chunks(self.progress, |chunk| {
            let out = encode_through(self.prefix, chunk).map_err(|e| e.to_string())?;
            let (lo, hi, bad) = min_max(&out);
            if bad > 0 {
                return Err(format!(
                    "{bad} non-finite values after the stages before it"
                ));
            }
            Ok((lo, hi, out.dtype()))
        })?;
        let range = (
            parts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min),
            parts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max),
            parts[0].2,
        );
        self.entry.range = Some(range);
        Ok(range)
    }
}

impl InputStats for PrefixStats<'_> {
    fn range(&mut self) -> Result<(f64, f64), String> {
        self.range_and_dtype().map(|(lo, hi, _)| (lo, hi))
    }

    fn histogram(&mut self) -> Result<Histogram, String> {
        if let Some(h) = &self.entry.histogram {
            return Ok(h.clone());
        }
        let (lo, hi, dtype) = self.range_and_dtype()?;
        let binning = Binning::new(dtype, lo, hi)?;
        self.progress.inc_length(self.passes.chunks.len() as u64);
        let parts = self.passes.map_chunks(self.progress, |chunk| {
            let out = encode_through(self.prefix, chunk).map_err(|e| e.to_string())?;
            let mut counts = binning.zeros();
            binning.accumulate(&out, &mut counts);
            Ok(counts)
        })?;
        let mut counts = binning.zeros();
        for part in parts {
            counts.iter_mut().zip(part).for_each(|(c, p)| *c += p);
        }
        let histogram = binning.finish(counts);
        self.entry.histogram = Some(histogram.clone());
        Ok(histogram)
    }
}
