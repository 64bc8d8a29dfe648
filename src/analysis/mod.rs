//! Science analyses run on original and decoded data.
//!
//! An analysis is prepared once per run (fitting what it needs on the original, checking its
//! parameters against the data's shape), then measured on every working point as partials over
//! ranges of rows (axis 0) that merge in row order into what one pass over the whole arrays
//! gives. A new analysis is a file here with an [`Analysis`] implementation plus one entry in
//! [`registry::ANALYSES`].

use std::any::Any;
use std::ops::Range;
use std::path::Path;

use serde_json::Value;

use crate::data::NdArray;
use crate::metrics::histogram::Histogram;

pub mod components;
pub mod counting;
pub mod fbp;
pub mod otsu;
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
    /// The mergeable result over a range of rows.
    type Partial: Send + 'static;

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
}
