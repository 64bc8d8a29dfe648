//! What a comparison of an original with its decoded version computes, and its mergeable
//! partial results over ranges of rows along axis 0.

use std::borrow::Cow;
use std::ops::Range;

use serde_json::{Map, Value, json};

use super::distortion::PointSums;
use super::registry;
use super::ssim::{SsimSums, SsimWindow, ssim_rows};
use crate::data::NdArray;
use crate::runner::results::metric_json;

/// The settings of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareSpec {
    /// Shape of the whole array.
    pub shape: Vec<usize>,
    /// Data range `R` of PSNR, NRMSE and SSIM.
    pub data_range: f64,
    /// Floor of the denominator of the relative error.
    pub max_rel_floor: f64,
    /// SSIM window, when SSIM is computed.
    pub ssim: Option<SsimWindow>,
}

/// Partial results over consecutive rows; merge partials in row order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Partial {
    /// Point-metric sums over the rows.
    pub point: PointSums,
    /// SSIM sums over the rows of the SSIM interior among them (`None`: none, or no SSIM).
    pub ssim: Option<SsimSums>,
}

impl Partial {
    /// Adds the partial of the rows that follow.
    pub fn merge(&mut self, next: &Partial) -> Result<(), String> {
        self.point.merge(&next.point);
        match (&mut self.ssim, &next.ssim) {
            (Some(sums), Some(more)) => sums.merge(more)?,
            (None, Some(more)) => self.ssim = Some(more.clone()),
            (_, None) => {}
        }
        Ok(())
    }
}

impl CompareSpec {
    /// Rows beyond a range that its partial needs on each side (the SSIM window radius).
    pub fn halo(&self) -> usize {
        self.ssim.map_or(0, SsimWindow::radius)
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
        let rows_of = |wanted: &Range<usize>| -> (Cow<'_, NdArray>, Cow<'_, NdArray>) {
            if *wanted == held {
                (Cow::Borrowed(original), Cow::Borrowed(decoded))
            } else {
                let rows = wanted.start - held.start..wanted.end - held.start;
                (
                    Cow::Owned(original.slice_rows(rows.clone())),
                    Cow::Owned(decoded.slice_rows(rows)),
                )
            }
        };
        let (x, y) = rows_of(&core);
        let point = PointSums::of(&x, &y, self.max_rel_floor)?;
        let ssim = match self.ssim {
            None => None,
            Some(window) => {
                let r = window.radius();
                let interior = core.start.max(r)..core.end.min(self.shape[0].saturating_sub(r));
                if interior.is_empty() {
                    None
                } else {
                    let (x, y) = rows_of(&(interior.start - r..interior.end + r));
                    Some(ssim_rows(
                        &x,
                        &y,
                        interior,
                        &self.shape,
                        window,
                        self.data_range,
                    )?)
                }
            }
        };
        Ok(Partial { point, ssim })
    }

    /// The values of the metrics `names` (registry names) from the merged partial, as JSON.
    /// SSIM adds `ssim_detail`: window, minimum of the SSIM map, and for 3D the mean of each
    /// interior slice along axis 0 with the worst one.
    pub fn finish(&self, total: &Partial, names: &[&str]) -> Map<String, Value> {
        let mut values = Map::new();
        for name in names {
            if let Some(def) = registry::find(name) {
                values.insert(
                    (*name).to_string(),
                    metric_json((def.compute)(&total.point, self.data_range)),
                );
            }
        }
        if let (Some(window), Some(sums)) = (self.ssim, &total.ssim)
            && names.contains(&"ssim")
        {
            values.insert("ssim".into(), metric_json(sums.mean()));
            let mut detail = json!({
                "window": window.name(),
                "min": metric_json(sums.min),
            });
            if self.shape.len() == 3 {
                let per_slice = sums.per_slice();
                let worst = (0..per_slice.len())
                    .min_by(|&a, &b| per_slice[a].total_cmp(&per_slice[b]))
                    .expect("a non-empty interior");
                detail["worst_slice"] = json!(sums.first_row + worst);
                detail["worst_slice_ssim"] = metric_json(per_slice[worst]);
                detail["first_slice"] = json!(sums.first_row);
                detail["per_slice"] = per_slice.into_iter().map(metric_json).collect();
            }
            values.insert("ssim_detail".into(), detail);
        }
        values
    }
}
