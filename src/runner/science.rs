//! The science analyses of a run (`[[analysis]]`): each prepared once on the original, then on
//! every working point fitted on the decoded data and measured as partials streamed with halos.
//!
//! Per working point, after the rate and distortion pass, an analysis that fits on the decoded
//! data (Otsu, multi-Otsu thresholds) needs the decoded data's histogram over the decoded range
//! before any partial: one more pass over the chunks for the histogram, then one for the
//! partials. Each pass repeats the chunks' round trips (the chain is deterministic), so memory
//! stays at a few chunks per thread whatever the volume.

use serde_json::{Map, Value};

use crate::analysis::registry;
use crate::analysis::{AnyFit, AnyPartial, Context, DynAnalysis, Slabs};
use crate::metrics::histogram::{Binning, Histogram};
use crate::scenario::AnalysisSpec;

/// The analyses of a scenario (but `command`, see [`super::external`]), prepared, with their
/// labels.
#[derive(Default)]
pub struct Analyses(Vec<(String, Box<dyn DynAnalysis>)>);

/// What every analysis fitted on one working point's decoded data.
pub struct Fits(Vec<AnyFit>);

/// The partials of every analysis over a range of rows.
pub struct SciencePartial(Vec<AnyPartial>);

impl Analyses {
    /// Prepares the analyses of `specs` in `context`; errors name the analysis.
    pub fn prepare(specs: &[AnalysisSpec], context: &mut Context) -> Result<Analyses, String> {
        specs
            .iter()
            .filter_map(|spec| {
                let prepare = registry::find(spec.config.stage)?.prepare?;
                Some(
                    prepare(&spec.config, context)
                        .map(|a| (spec.label.clone(), a))
                        .map_err(|e| format!("analysis {}: {e}", spec.label)),
                )
            })
            .collect::<Result<_, _>>()
            .map(Analyses)
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Rows beyond a chunk that the partials read.
    pub fn halo(&self) -> usize {
        self.0.iter().map(|(_, a)| a.halo()).max().unwrap_or(0)
    }

    /// Whether fitting the decoded data needs its histogram.
    pub fn needs_histogram(&self) -> bool {
        self.0.iter().any(|(_, a)| a.needs_histogram())
    }

    /// Every analysis's fit of the decoded data.
    pub fn fit(&self, histogram: Option<&Histogram>) -> Result<Fits, String> {
        self.0
            .iter()
            .map(|(label, a)| {
                a.fit(histogram)
                    .map_err(|e| format!("analysis {label}: {e}"))
            })
            .collect::<Result<_, _>>()
            .map(Fits)
    }

    /// Every analysis's partial of rows `slabs.core`.
    pub fn partial(&self, fits: &Fits, slabs: &Slabs) -> Result<SciencePartial, String> {
        self.0
            .iter()
            .zip(&fits.0)
            .map(|((label, a), fit)| {
                a.partial(fit, slabs)
                    .map_err(|e| format!("analysis {label}: {e}"))
            })
            .collect::<Result<_, _>>()
            .map(SciencePartial)
    }

    /// Merges partials given in row order.
    pub fn merge(
        &self,
        partials: impl IntoIterator<Item = SciencePartial>,
    ) -> Result<SciencePartial, String> {
        let mut partials = partials.into_iter();
        let mut total = partials.next().ok_or("no rows to analyse")?;
        for next in partials {
            for (((label, a), t), n) in self.0.iter().zip(&mut total.0).zip(next.0) {
                a.merge(t, n)
                    .map_err(|e| format!("analysis {label}: {e}"))?;
            }
        }
        Ok(total)
    }

    /// Every analysis's results by label, for arrays of shape `shape`.
    pub fn finish(
        &self,
        fits: &Fits,
        total: SciencePartial,
        shape: &[usize],
    ) -> Result<Map<String, Value>, String> {
        self.0
            .iter()
            .zip(&fits.0)
            .zip(total.0)
            .map(|(((label, a), fit), partial)| {
                a.finish(fit, partial, shape)
                    .map(|value| (label.clone(), value))
                    .map_err(|e| format!("analysis {label}: {e}"))
            })
            .collect()
    }
}

/// The binning of the decoded data's histogram over its range `(lo, hi)`.
pub fn decoded_binning(dtype: crate::data::DType, (lo, hi): (f64, f64)) -> Result<Binning, String> {
    Binning::new(dtype, lo, hi).map_err(|e| format!("decoded data: {e}"))
}
