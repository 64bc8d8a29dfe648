//! Science analyses run on original and decoded data.
//!
//! An analysis is prepared once per run (fitting what it needs on the original, checking its
//! parameters against the data's shape), then measured on every working point as partials over
//! ranges of rows (axis 0) that merge in row order into what one pass over the whole arrays
//! gives. A new analysis is a file here with an [`Analysis`] implementation plus one entry in
//! [`registry::ANALYSES`]; its figures in the report are a function of its results in that
//! file ([`registry::AnalysisDef::figures`], data as [`figure::FigureData`]), which the report
//! draws.

use std::any::Any;
use std::ops::Range;
use std::path::Path;

use serde_json::Value;

use crate::data::NdArray;
use crate::stats::histogram::Histogram;

pub mod components;
pub mod counting;
pub mod fbp;
pub mod figure;
pub mod porosity;
pub mod registry;
pub mod saxs;
pub mod segmentation;
pub mod sx;
pub mod xpcs;

/// What an analysis is prepared with, before any working point runs.
pub struct Context<'a> {
    /// Shape of the arrays analysed (the input, or the reconstructed slices).
    pub shape: &'a [usize],
    /// Folder that relative paths in parameters resolve against (the scenario's).
    pub base: &'a Path,
    original_histogram: Box<dyn FnMut() -> Result<Histogram, String> + 'a>,
    cached: Option<Histogram>,
}

impl<'a> Context<'a> {
    /// A context whose original histogram (scikit-image's 256 bins over the range) is made by
    /// `histogram` when first asked for.
    pub fn new(
        shape: &'a [usize],
        base: &'a Path,
        histogram: impl FnMut() -> Result<Histogram, String> + 'a,
    ) -> Context<'a> {
        Context {
            shape,
            base,
            original_histogram: Box::new(histogram),
            cached: None,
        }
    }

    /// The original's histogram, computed once.
    pub fn histogram(&mut self) -> Result<&Histogram, String> {
        if self.cached.is_none() {
            self.cached = Some((self.original_histogram)()?);
        }
        Ok(self.cached.as_ref().expect("just filled"))
    }
}

/// Slabs of the original and the decoded array holding rows `held` of arrays of shape `shape`;
/// a partial covers rows `core` (within `held`, which extends it by at most the analysis's
/// [`Analysis::halo`] rows on each side, clamped to the array).
#[derive(Debug, Clone)]
pub struct Slabs<'a> {
    /// The original's rows `held`.
    pub original: &'a NdArray,
    /// The decoded rows `held`.
    pub decoded: &'a NdArray,
    /// Rows of the whole array the slabs hold.
    pub held: Range<usize>,
    /// Rows the partial covers.
    pub core: Range<usize>,
    /// Shape of the whole arrays.
    pub shape: &'a [usize],
}

impl<'a> Slabs<'a> {
    /// The whole arrays `original` and `decoded` of `shape` as one slab.
    pub fn whole(original: &'a NdArray, decoded: &'a NdArray, shape: &'a [usize]) -> Self {
        Slabs {
            original,
            decoded,
            held: 0..shape[0],
            core: 0..shape[0],
            shape,
        }
    }
}

/// A science analysis prepared for a run: original against decoded, measured as partials over
/// ranges of rows merged in row order.
pub trait Analysis: Send + Sync + 'static {
    /// What is fitted on each working point's decoded data before its partials (e.g. class
    /// thresholds); `()` when nothing is.
    type Fit: Send + Sync + 'static;
    /// The mergeable result over a range of rows; serializable so that partials computed by
    /// separate processes (Slurm units) merge later, see [`DynAnalysis::encode_partial`].
    type Partial: Send + serde::Serialize + serde::de::DeserializeOwned + 'static;

    /// Rows beyond a partial's core that it reads on each side.
    fn halo(&self) -> usize {
        0
    }

    /// Whether [`Analysis::fit`] needs the decoded data's histogram (one more pass).
    fn needs_histogram(&self) -> bool {
        false
    }

    /// Fits the decoded data; `histogram` is given when [`Analysis::needs_histogram`].
    fn fit(&self, histogram: Option<&Histogram>) -> Result<Self::Fit, String>;

    /// The partial of rows `slabs.core`.
    fn partial(&self, fit: &Self::Fit, slabs: &Slabs) -> Result<Self::Partial, String>;

    /// Adds the partial of the rows that follow `total`'s.
    fn merge(&self, total: &mut Self::Partial, next: Self::Partial) -> Result<(), String>;

    /// Checks a partial read from bytes (another process wrote them, see
    /// [`DynAnalysis::decode_partial`]) before it is merged: what [`Analysis::merge`] and
    /// [`Analysis::finish`] index by must be consistent. Partials that are plain sums need no
    /// check (the default).
    fn check_partial(&self, _partial: &Self::Partial) -> Result<(), String> {
        Ok(())
    }

    /// The results, a JSON object whose scalar fields are the registered columns.
    fn finish(
        &self,
        fit: &Self::Fit,
        total: Self::Partial,
        shape: &[usize],
    ) -> Result<Value, String>;
}

/// A fit of any analysis.
pub type AnyFit = Box<dyn Any + Send + Sync>;
/// A partial of any analysis.
pub type AnyPartial = Box<dyn Any + Send>;

/// [`Analysis`] with its types erased, so that a run holds analyses of every kind in one list.
pub trait DynAnalysis: Send + Sync {
    /// See [`Analysis::halo`].
    fn halo(&self) -> usize;
    /// See [`Analysis::needs_histogram`].
    fn needs_histogram(&self) -> bool;
    /// See [`Analysis::fit`].
    fn fit(&self, histogram: Option<&Histogram>) -> Result<AnyFit, String>;
    /// See [`Analysis::partial`]; `fit` must come from this analysis.
    fn partial(&self, fit: &AnyFit, slabs: &Slabs) -> Result<AnyPartial, String>;
    /// See [`Analysis::merge`].
    fn merge(&self, total: &mut AnyPartial, next: AnyPartial) -> Result<(), String>;
    /// See [`Analysis::finish`].
    fn finish(&self, fit: &AnyFit, total: AnyPartial, shape: &[usize]) -> Result<Value, String>;
    /// The bytes of `partial` (one of this analysis's), postcard-encoded: every float bit for
    /// bit, infinities and NaN included. [`DynAnalysis::decode_partial`] reads them back.
    fn encode_partial(&self, partial: &AnyPartial) -> Result<Vec<u8>, String>;
    /// The partial [`DynAnalysis::encode_partial`] encoded into `bytes`; an error (never a
    /// panic) when the bytes are not one of this analysis's partials (truncated, corrupt,
    /// trailing bytes, or inconsistent: see [`Analysis::check_partial`]).
    fn decode_partial(&self, bytes: &[u8]) -> Result<AnyPartial, String>;
}

// The erased values only ever come from the same analysis, so a failed downcast is a bug.
const FOREIGN: &str = "a fit or partial of another analysis";

impl<A: Analysis> DynAnalysis for A {
    fn halo(&self) -> usize {
        Analysis::halo(self)
    }

    fn needs_histogram(&self) -> bool {
        Analysis::needs_histogram(self)
    }

    fn fit(&self, histogram: Option<&Histogram>) -> Result<AnyFit, String> {
        Ok(Box::new(Analysis::fit(self, histogram)?))
    }

    fn partial(&self, fit: &AnyFit, slabs: &Slabs) -> Result<AnyPartial, String> {
        let fit = fit.downcast_ref::<A::Fit>().expect(FOREIGN);
        Ok(Box::new(Analysis::partial(self, fit, slabs)?))
    }

    fn merge(&self, total: &mut AnyPartial, next: AnyPartial) -> Result<(), String> {
        let total = total.downcast_mut::<A::Partial>().expect(FOREIGN);
        Analysis::merge(self, total, *next.downcast::<A::Partial>().expect(FOREIGN))
    }

    fn finish(&self, fit: &AnyFit, total: AnyPartial, shape: &[usize]) -> Result<Value, String> {
        let fit = fit.downcast_ref::<A::Fit>().expect(FOREIGN);
        Analysis::finish(
            self,
            fit,
            *total.downcast::<A::Partial>().expect(FOREIGN),
            shape,
        )
    }

    fn encode_partial(&self, partial: &AnyPartial) -> Result<Vec<u8>, String> {
        let partial = partial.downcast_ref::<A::Partial>().expect(FOREIGN);
        postcard::to_stdvec(partial).map_err(|e| format!("cannot encode a partial: {e}"))
    }

    fn decode_partial(&self, bytes: &[u8]) -> Result<AnyPartial, String> {
        let (partial, rest) = postcard::take_from_bytes::<A::Partial>(bytes)
            .map_err(|e| format!("cannot decode a partial of {} bytes: {e}", bytes.len()))?;
        if !rest.is_empty() {
            return Err(format!(
                "cannot decode a partial: {} bytes left over of {}",
                rest.len(),
                bytes.len()
            ));
        }
        Analysis::check_partial(self, &partial)
            .map_err(|e| format!("inconsistent partial: {e}"))?;
        Ok(Box::new(partial))
    }
}

/// What the analyses' tests share: analyses as a scenario declares them, prepared on an
/// original, and their partials over ranges of rows.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    use super::*;
    use crate::scenario::{AnalysisSpec, Scenario};
    use crate::stats::histogram::Binning;

    /// A series of `frames` photon-count frames of `side` x `side` pixels (float32): a speckled
    /// ring pattern around the centre with a bright Bragg-like spot per frame and dark pores,
    /// and a decoded version off by a count here and there.
    pub fn frames(frames: usize, side: usize) -> (NdArray, NdArray) {
        use crate::data::IntoNdArray;
        use ndarray::{ArrayD, IxDyn};
        use rand::{Rng, SeedableRng};
        use rand_distr::{Distribution, Poisson};

        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let centre = (side as f64 - 1.0) / 2.0;
        let shape = [frames, side, side];
        let original = ArrayD::from_shape_fn(IxDyn(&shape), |ix| {
            let (t, y, x) = (ix[0] as f64, ix[1] as f64 - centre, ix[2] as f64 - centre);
            let r = (y * y + x * x).sqrt();
            // One spot per frame, 6.5 pixels from the centre (beyond the rings of the xpcs
            // tests, r <= 5).
            let angle = 0.7 * t;
            let spot = (y - 6.5 * angle.sin()).abs() < 1.0 && (x - 6.5 * angle.cos()).abs() < 1.0;
            let pore = ((ix[1] / 3 + ix[2] / 4 + ix[0] / 5) % 4) == 0;
            let mean = if spot {
                400.0
            } else if pore {
                0.3
            } else {
                20.0 * (1.5 + (0.7 * r + 0.05 * t).cos()) / (1.0 + 0.1 * r)
            };
            Poisson::new(mean).unwrap().sample(&mut rng) as f32
        });
        let decoded = original.mapv(|v| match rng.random_range(0..8) {
            0 => (v - 1.0).max(0.0),
            1 => v + 1.0,
            _ => v,
        });
        (original.into_nd(), decoded.into_nd())
    }

    /// The `[[analysis]]` tables `tables`, read and completed as a scenario's are.
    pub fn specs(tables: &str) -> Vec<AnalysisSpec> {
        let text = format!(
            "[scenario]\nname = \"t\"\n[input]\nsource = \"v.npy\"\n[[pipeline]]\nstage = \"zstd\"\n{tables}"
        );
        Scenario::parse(&text, Path::new("t.toml"))
            .unwrap()
            .analyses
    }

    /// scikit-image's histogram of `array` over its range of finite values.
    pub fn histogram(array: &NdArray) -> Result<Histogram, String> {
        let values = array.to_f64();
        let finite = values.iter().copied().filter(|v| v.is_finite());
        let lo = finite.clone().fold(f64::INFINITY, f64::min);
        let hi = finite.fold(f64::NEG_INFINITY, f64::max);
        let binning = Binning::new(array.dtype(), lo, hi)?;
        let mut counts = binning.zeros();
        binning.accumulate(array, &mut counts);
        Ok(binning.finish(counts))
    }

    /// The only analysis of `tables`, prepared on `original`.
    pub fn prepare(tables: &str, original: &NdArray) -> Box<dyn DynAnalysis> {
        let specs = specs(tables);
        assert_eq!(specs.len(), 1, "{tables}");
        let prepare = registry::find(specs[0].config.stage)
            .and_then(|def| def.prepare)
            .expect("a prepared analysis");
        let shape = original.shape().to_vec();
        let mut context = Context::new(&shape, Path::new("."), || histogram(original));
        prepare(&specs[0].config, &mut context).unwrap()
    }

    /// The fit of `analysis` on `decoded`.
    pub fn fit(analysis: &dyn DynAnalysis, decoded: &NdArray) -> AnyFit {
        let histogram = analysis
            .needs_histogram()
            .then(|| histogram(decoded).unwrap());
        analysis.fit(histogram.as_ref()).unwrap()
    }

    /// The row ranges of `rows` rows cut at `cuts` (increasing, inside).
    pub fn cores(rows: usize, cuts: &[usize]) -> Vec<Range<usize>> {
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(rows);
        bounds.windows(2).map(|w| w[0]..w[1]).collect()
    }

    /// `partial` of each range of rows cut at `cuts`, from its own slabs: its rows with `halo`
    /// rows each side (clamped), as the runner reads them.
    pub fn over_slabs<T>(
        original: &NdArray,
        decoded: &NdArray,
        cuts: &[usize],
        halo: usize,
        partial: impl Fn(&Slabs) -> T,
    ) -> Vec<T> {
        let shape = original.shape().to_vec();
        cores(shape[0], cuts)
            .into_iter()
            .map(|core| {
                let held = crate::data::rows_with_halo(&core, halo, shape[0]);
                let (x, y) = (
                    original.slice_rows(held.clone()),
                    decoded.slice_rows(held.clone()),
                );
                partial(&Slabs {
                    original: &x,
                    decoded: &y,
                    held,
                    core,
                    shape: &shape,
                })
            })
            .collect()
    }

    /// The partials of `analysis` over the rows cut at `cuts`, each from its own slabs.
    pub fn partials(
        analysis: &dyn DynAnalysis,
        fit: &AnyFit,
        original: &NdArray,
        decoded: &NdArray,
        cuts: &[usize],
    ) -> Vec<AnyPartial> {
        over_slabs(original, decoded, cuts, analysis.halo(), |slabs| {
            analysis.partial(fit, slabs).unwrap()
        })
    }

    /// Merges `partials` in row order and finishes them.
    pub fn finish(
        analysis: &dyn DynAnalysis,
        fit: &AnyFit,
        partials: Vec<AnyPartial>,
        shape: &[usize],
    ) -> Value {
        let mut partials = partials.into_iter();
        let mut total = partials.next().expect("a partial");
        for next in partials {
            analysis.merge(&mut total, next).unwrap();
        }
        analysis.finish(fit, total, shape).unwrap()
    }

    /// Checks that the partials of `analysis` over rows cut at `cuts`, each encoded, decoded
    /// (as another process would) and merged, finish as the partials themselves do; that
    /// every decoded partial encodes to the same bytes; and that truncated bytes are refused.
    /// Returns the finished result.
    pub fn check_round_trip(
        analysis: &dyn DynAnalysis,
        original: &NdArray,
        decoded: &NdArray,
        cuts: &[usize],
    ) -> Value {
        let shape = original.shape().to_vec();
        let fit = fit(analysis, decoded);
        let direct = finish(
            analysis,
            &fit,
            partials(analysis, &fit, original, decoded, cuts),
            &shape,
        );
        let mut read_back = Vec::new();
        for partial in partials(analysis, &fit, original, decoded, cuts) {
            let bytes = analysis.encode_partial(&partial).unwrap();
            let again = analysis.decode_partial(&bytes).unwrap();
            assert_eq!(analysis.encode_partial(&again).unwrap(), bytes);
            for len in [0, bytes.len() / 2, bytes.len() - 1] {
                let error = analysis.decode_partial(&bytes[..len]).err();
                assert!(error.is_some(), "{len} of {} bytes decoded", bytes.len());
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(analysis.decode_partial(&longer).is_err());
            read_back.push(again);
        }
        assert_eq!(finish(analysis, &fit, read_back, &shape), direct);
        direct
    }
}
