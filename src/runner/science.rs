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
use crate::scenario::AnalysisSpec;
use crate::stats::histogram::{Binning, Histogram};

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

    /// The bytes of `partial` (of these analyses), to be read back by [`Self::decode`] in
    /// another process: every analysis's partial postcard-encoded, in the analyses' order, as
    /// one postcard-encoded list of byte strings. Floats keep every bit. Errors name the
    /// analysis.
    pub fn encode(&self, partial: &SciencePartial) -> Result<Vec<u8>, String> {
        if partial.0.len() != self.0.len() {
            return Err(format!(
                "cannot encode {} analysis partials for {} analyses",
                partial.0.len(),
                self.0.len()
            ));
        }
        let parts = self
            .0
            .iter()
            .zip(&partial.0)
            .map(|((label, a), p)| {
                a.encode_partial(p)
                    .map_err(|e| format!("analysis {label}: {e}"))
            })
            .collect::<Result<Vec<Vec<u8>>, _>>()?;
        postcard::to_stdvec(&parts)
            .map_err(|e| format!("cannot encode the analyses' partials: {e}"))
    }

    /// The partial [`Self::encode`] wrote into `bytes`, for the same analyses (the same
    /// scenario). Refuses bytes holding another number of partials than there are analyses,
    /// and bytes that do not decode (errors name the analysis); never panics on them.
    pub fn decode(&self, bytes: &[u8]) -> Result<SciencePartial, String> {
        let (parts, rest) = postcard::take_from_bytes::<Vec<Vec<u8>>>(bytes).map_err(|e| {
            format!(
                "cannot decode the analyses' partials from {} bytes: {e}",
                bytes.len()
            )
        })?;
        if !rest.is_empty() {
            return Err(format!(
                "cannot decode the analyses' partials: {} bytes left over of {}",
                rest.len(),
                bytes.len()
            ));
        }
        if parts.len() != self.0.len() {
            return Err(format!(
                "the bytes hold {} analysis partials, but there are {} analyses",
                parts.len(),
                self.0.len()
            ));
        }
        self.0
            .iter()
            .zip(&parts)
            .map(|((label, a), p)| {
                a.decode_partial(p)
                    .map_err(|e| format!("analysis {label}: {e}"))
            })
            .collect::<Result<_, _>>()
            .map(SciencePartial)
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::analysis::testing;
    use crate::data::NdArray;

    const TABLES: &str = "[[analysis]]\nkind = \"porosity\"\nmethod = \"value\"\nvalue = 2.0\n\
        [[analysis]]\nkind = \"segmentation\"\n\
        [[analysis]]\nkind = \"counting\"\n\
        [[analysis]]\nkind = \"saxs\"\nbeam_x = 7.5\nbeam_y = 7.5\npixel_size = 1e-4\n\
        distance = 1.0\nwavelength = 1e-10\nq_bins = 6\n\
        [[analysis]]\nkind = \"xpcs\"\nq_rings = 2\nr_max = 5.0\n\
        [[analysis]]\nkind = \"sx\"\n";

    fn prepare(tables: &str, original: &NdArray) -> Analyses {
        let shape = original.shape().to_vec();
        let mut context = Context::new(&shape, Path::new("."), || testing::histogram(original));
        Analyses::prepare(&testing::specs(tables), &mut context).unwrap()
    }

    fn partials(
        analyses: &Analyses,
        fits: &Fits,
        original: &NdArray,
        decoded: &NdArray,
        cuts: &[usize],
    ) -> Vec<SciencePartial> {
        testing::over_slabs(original, decoded, cuts, analyses.halo(), |slabs| {
            analyses.partial(fits, slabs).unwrap()
        })
    }

    /// Every analysis's partials of slabs, encoded by one process and decoded by another,
    /// merge and finish as the partials themselves do; re-encoded, they are the same bytes.
    #[test]
    fn encoded_partials_merge_as_the_originals() {
        let (x, y) = testing::frames(32, 16);
        let analyses = prepare(TABLES, &x);
        assert_eq!(analyses.0.len(), 6);
        let histogram = analyses
            .needs_histogram()
            .then(|| testing::histogram(&y).unwrap());
        let fits = analyses.fit(histogram.as_ref()).unwrap();
        let cuts = [1, 7, 8, 19, 30];
        let shape = x.shape().to_vec();
        let direct = analyses
            .finish(
                &fits,
                analyses
                    .merge(partials(&analyses, &fits, &x, &y, &cuts))
                    .unwrap(),
                &shape,
            )
            .unwrap();
        let read_back: Vec<SciencePartial> = partials(&analyses, &fits, &x, &y, &cuts)
            .iter()
            .map(|p| {
                let bytes = analyses.encode(p).unwrap();
                let back = analyses.decode(&bytes).unwrap();
                assert_eq!(analyses.encode(&back).unwrap(), bytes);
                back
            })
            .collect();
        let total = analyses.merge(read_back).unwrap();
        // The merged total travels too (a unit merging the partials of others).
        let total = analyses.decode(&analyses.encode(&total).unwrap()).unwrap();
        let finished = analyses.finish(&fits, total, &shape).unwrap();
        assert_eq!(finished, direct);
        assert!(
            finished["porosity"]["pore_count_original"]
                .as_u64()
                .unwrap()
                > 1
        );
        let labels: Vec<&str> = finished.keys().map(String::as_str).collect();
        assert_eq!(
            labels,
            ["porosity", "segmentation", "counting", "saxs", "xpcs", "sx"]
        );
    }

    /// Bytes of another number of analyses, truncated or corrupt bytes are errors naming the
    /// count or the analysis, never panics.
    #[test]
    fn foreign_and_corrupt_bytes_are_refused() {
        let (x, y) = testing::frames(32, 16);
        let analyses = prepare(TABLES, &x);
        let fits = analyses
            .fit(Some(&testing::histogram(&y).unwrap()))
            .unwrap();
        let partial = partials(&analyses, &fits, &x, &y, &[]).remove(0);
        let bytes = analyses.encode(&partial).unwrap();

        let fewer = prepare("[[analysis]]\nkind = \"counting\"\n", &x);
        let error = fewer.decode(&bytes).err().unwrap();
        assert_eq!(
            error,
            "the bytes hold 6 analysis partials, but there are 1 analyses"
        );
        let parts: Vec<Vec<u8>> = postcard::from_bytes(&bytes).unwrap();
        let error = analyses
            .decode(&postcard::to_stdvec(&parts[..5]).unwrap())
            .err()
            .unwrap();
        assert!(error.contains("hold 5 analysis partials"), "{error}");

        for len in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(analyses.decode(&bytes[..len]).is_err(), "{len}");
        }
        // Each analysis's bytes cut short: the error names the analysis.
        for (k, label) in ["porosity", "segmentation", "counting", "saxs", "xpcs", "sx"]
            .iter()
            .enumerate()
        {
            let mut cut = parts.clone();
            cut[k].pop();
            let error = analyses
                .decode(&postcard::to_stdvec(&cut).unwrap())
                .err()
                .unwrap();
            assert!(error.starts_with(&format!("analysis {label}: ")), "{error}");
        }
        // The partials of one analysis are not those of another.
        let swapped: Vec<Vec<u8>> = parts.iter().rev().cloned().collect();
        assert!(
            analyses
                .decode(&postcard::to_stdvec(&swapped).unwrap())
                .is_err()
        );
    }
}
