//! What a comparison of an original with its decoded version computes, and its mergeable
//! partial results over ranges of rows along axis 0.

use std::ops::Range;

use serde_json::{Map, Value};

use super::distortion::PointSums;
use super::registry;
use crate::data::NdArray;
use crate::runner::results::metric_json;

/// The settings of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareSpec {
    /// Data range `R` of PSNR, NRMSE and SSIM.
    pub data_range: f64,
    /// Floor of the denominator of the relative error.
    pub max_rel_floor: f64,
}

/// Partial results over consecutive rows; merge partials in row order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Partial {
    /// Point-metric sums over the rows.
    pub point: PointSums,
}

impl Partial {
    /// Adds the partial of the rows that follow.
    pub fn merge(&mut self, next: &Partial) {
        self.point.merge(&next.point);
    }
}

impl CompareSpec {
    /// Rows beyond a range that its partial needs on each side (window radius of filters).
    pub fn halo(&self) -> usize {
        0
    }

    /// The partial of rows `core` (global indices along axis 0), from slabs of the original
    /// and the decoded array that hold rows `held` (`core` extended by up to [`Self::halo`]
    /// rows on each side, clamped to the array).
    pub fn partial(
        &self,
        original: &NdArray,
        decoded: &NdArray,
        held: Range<usize>,
        core: Range<usize>,
    ) -> Result<Partial, String> {
        let point = if held == core {
            PointSums::of(original, decoded, self.max_rel_floor)?
        } else {
            let rows = core.start - held.start..core.end - held.start;
            PointSums::of(
                &original.slice_rows(rows.clone()),
                &decoded.slice_rows(rows),
                self.max_rel_floor,
            )?
        };
        Ok(Partial { point })
    }

    /// The values of the metrics `names` (registry names) from the merged partial, as JSON.
    pub fn finish(&self, total: &Partial, names: &[&str]) -> Map<String, Value> {
        names
            .iter()
            .map(|name| {
                let def = registry::find(name).expect("metric names are validated");
                (
                    (*name).to_string(),
                    metric_json((def.compute)(&total.point, self.data_range)),
                )
            })
            .collect()
    }
}
