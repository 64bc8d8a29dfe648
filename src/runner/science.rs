//! The science analyses of a run (`[[analysis]]`): thresholds fitted on the original once and on
//! every working point's decoded data, then the comparison partials streamed with halos.
//!
//! Per working point, after the rate and distortion pass, an analysis that fits thresholds
//! (Otsu, multi-Otsu) needs the decoded data's histogram over the decoded range before any
//! class map exists: one more pass over the chunks for the histogram, then one for the
//! partials. Each pass repeats the chunks' round trips (the chain is deterministic), so memory
//! stays at a few chunks per thread whatever the volume.

use std::ops::Range;

use serde_json::{Map, Value};

use crate::analysis::components::Connectivity;
use crate::analysis::otsu;
use crate::analysis::porosity::PorosityPartial;
use crate::analysis::segmentation::{self, Classes, SegmentationPartial};
use crate::data::NdArray;
use crate::metrics::histogram::{Binning, Histogram};
use crate::scenario::AnalysisSpec;

/// How an analysis makes its class maps.
#[derive(Debug, Clone, PartialEq)]
enum Method {
    Otsu,
    MultiOtsu(usize),
    Value(f64),
}

impl Method {
    fn thresholds(&self, histogram: Option<&Histogram>) -> Result<Classes, String> {
        let thresholds = match (self, histogram) {
            (Method::Value(t), _) => vec![*t],
            (Method::Otsu, Some(h)) => vec![otsu::threshold(h)],
            (Method::MultiOtsu(classes), Some(h)) => segmentation::multiotsu(h, *classes)?,
            (_, None) => unreachable!("fitted methods get a histogram"),
        };
        Ok(Classes { thresholds })
    }
}

/// What an analysis computes.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Segmentation,
    Porosity {
        pore_class: u8,
        connectivity: Connectivity,
    },
}

/// An analysis of the scenario with the original's class thresholds.
#[derive(Debug, Clone)]
pub struct Analysis {
    label: String,
    method: Method,
    kind: Kind,
    original: Classes,
}

/// Rows beyond a chunk that the analyses' partials read.
pub const HALO: usize = SegmentationPartial::HALO;

impl Analysis {
    /// The analyses of a scenario (but `command`, see [`super::external`]), with thresholds
    /// fitted on the original's histogram (asked
    /// for only when a method needs it).
    pub fn prepare(
        specs: &[AnalysisSpec],
        mut histogram: impl FnMut() -> Result<Histogram, String>,
    ) -> Result<Vec<Analysis>, String> {
        let mut cached: Option<Histogram> = None;
        specs
            .iter()
            .filter(|spec| spec.config.stage != "command")
            .map(|spec| {
                let c = &spec.config;
                let method = match c.str("method") {
                    "otsu" => Method::Otsu,
                    "multiotsu" => Method::MultiOtsu(c.int("classes") as usize),
                    _ => Method::Value(c.float("value")),
                };
                let kind = match c.stage {
                    "segmentation" => Kind::Segmentation,
                    _ => Kind::Porosity {
                        pore_class: c.int("pore_class") as u8,
                        connectivity: Connectivity::parse(c.str("connectivity"))?,
                    },
                };
                if !matches!(method, Method::Value(_)) && cached.is_none() {
                    cached = Some(histogram()?);
                }
                let original = method
                    .thresholds(cached.as_ref())
                    .map_err(|e| format!("analysis {}: original: {e}", spec.label))?;
                Ok(Analysis {
                    label: spec.label.clone(),
                    method,
                    kind,
                    original,
                })
            })
            .collect()
    }

    /// Whether the decoded data's thresholds need its histogram.
    pub fn needs_histogram(analyses: &[Analysis]) -> bool {
        analyses
            .iter()
            .any(|a| !matches!(a.method, Method::Value(_)))
    }

    /// The decoded data's thresholds of every analysis.
    pub fn decoded_classes(
        analyses: &[Analysis],
        histogram: Option<&Histogram>,
    ) -> Result<Vec<Classes>, String> {
        analyses
            .iter()
            .map(|a| {
                a.method
                    .thresholds(histogram)
                    .map_err(|e| format!("analysis {}: decoded: {e}", a.label))
            })
            .collect()
    }
}

/// The partials of every analysis over a range of rows, merged in row order.
#[derive(Debug, Clone, PartialEq)]
pub struct SciencePartial(Vec<Partial>);

#[derive(Debug, Clone, PartialEq)]
enum Partial {
    Segmentation(SegmentationPartial),
    Porosity(Box<PorosityPartial>),
}

impl SciencePartial {
    /// The partials of rows `core` from slabs holding rows `held` (at most [`HALO`] more on
    /// each side).
    pub fn of(
        analyses: &[Analysis],
        decoded_classes: &[Classes],
        (original, decoded): (&NdArray, &NdArray),
        held: Range<usize>,
        core: Range<usize>,
        shape: &[usize],
    ) -> Result<SciencePartial, String> {
        analyses
            .iter()
            .zip(decoded_classes)
            .map(|(a, y)| {
                Ok(match a.kind {
                    Kind::Segmentation => Partial::Segmentation(SegmentationPartial::of(
                        original,
                        decoded,
                        held.clone(),
                        core.clone(),
                        shape,
                        &a.original,
                        y,
                    )?),
                    Kind::Porosity {
                        pore_class,
                        connectivity,
                    } => Partial::Porosity(Box::new(PorosityPartial::of(
                        original,
                        decoded,
                        held.clone(),
                        core.clone(),
                        shape,
                        [&a.original, y],
                        pore_class,
                        connectivity,
                    )?)),
                })
            })
            .collect::<Result<_, String>>()
            .map(SciencePartial)
    }

    /// Adds the partials of the rows that follow.
    pub fn merge(&mut self, next: &SciencePartial) -> Result<(), String> {
        for (a, b) in self.0.iter_mut().zip(&next.0) {
            match (a, b) {
                (Partial::Segmentation(a), Partial::Segmentation(b)) => a.merge(b)?,
                (Partial::Porosity(a), Partial::Porosity(b)) => a.merge(b)?,
                _ => return Err("cannot merge partials of different analyses".into()),
            }
        }
        Ok(())
    }

    /// Every analysis's results by label, for arrays of shape `shape`.
    pub fn finish(
        self,
        analyses: &[Analysis],
        decoded_classes: &[Classes],
        shape: &[usize],
    ) -> Map<String, Value> {
        self.0
            .into_iter()
            .zip(analyses.iter().zip(decoded_classes))
            .map(|(partial, (a, y))| {
                let value = match (partial, &a.kind) {
                    (Partial::Segmentation(p), _) => {
                        let mut value = p.json(&a.original, y);
                        let shift = a
                            .original
                            .thresholds
                            .iter()
                            .zip(&y.thresholds)
                            .map(|(o, d)| (d - o).abs())
                            .fold(0.0, f64::max);
                        value["threshold_shift_max"] = crate::runner::results::metric_json(shift);
                        value
                    }
                    (Partial::Porosity(p), Kind::Porosity { pore_class, .. }) => {
                        p.json(*pore_class, shape)
                    }
                    (Partial::Porosity(_), _) => unreachable!("kinds pair up"),
                };
                (a.label.clone(), value)
            })
            .collect()
    }
}

/// The binning of the decoded data's histogram over its range `(lo, hi)`.
pub fn decoded_binning(dtype: crate::data::DType, (lo, hi): (f64, f64)) -> Result<Binning, String> {
    Binning::new(dtype, lo, hi).map_err(|e| format!("decoded data: {e}"))
}
