//! Photon-statistics-aware error of counting data: how large the decoded data's error is
//! against the Poisson noise the original already carries, and whether the values a counting
//! detector guarantees (zeros, integer counts, saturated and masked pixels) survive.
//!
//! For every counted pixel with original value `o` and decoded value `d`, the error in units of
//! the Poisson standard deviation is
//!
//! `e = |d - o| / sqrt(max(o, 1))`
//!
//! (`sqrt(o)` is the standard deviation of a Poisson count of mean `o`; the floor of 1 keeps
//! zero and low counts from dividing by zero or inflating a one-photon error). Reported:
//! - `sigma_error_mean` = mean of `e`; `sigma_error_max` = max of `e` (exact);
//! - `sigma_error_p99`: the 99th percentile of `e`, NumPy's `percentile(e, 99,
//!   method='inverted_cdf')` (the `ceil(0.99 n)`-th smallest value) rounded UP to the next
//!   multiple of [`BIN_WIDTH`] = 1e-3 sigma and never above `sigma_error_max`: the reported
//!   value `p` satisfies `true <= p < true + 1e-3`, and is exactly 0 when the data are
//!   lossless. Exact percentiles need every value; a fixed histogram of bin width 1e-3 merges
//!   exactly (integer counts) and costs a fixed 512 KiB below 65.536 sigma plus one sparse
//!   entry per occupied bin above;
//! - `fraction_above_1sigma` = pixels with `e > 1` / counted pixels;
//! - `changed_zeros`: pixels with `o == 0` and `d != 0`;
//! - `integer_counts_broken`: pixels with an integer `o` and a non-integer `d`;
//! - `saturated_changed`: pixels with `o >= saturation` (parameter, none by default) and
//!   `d != o`;
//! - `masked_changed`: masked pixels with `d != o`.
//!
//! `changed_zeros` and `integer_counts_broken` cover every pixel; the error statistics cover
//! the counted pixels: all pixels but the masked and the saturated ones. Their values are not
//! photon counts (hot or dead pixels, gaps, a saturated counter), and a hot pixel at 2^32 - 1
//! would dominate every statistic. The mask (`mask = "file.h5::/path"` or `.npy`, relative to
//! the scenario) is nonzero where masked and has the shape of one frame (`[y, x]` of a `[n, y,
//! x]` stack, applied to every frame) or of the whole array.
//!
//! Partials keep the sum of `e` per row (axis 0), integer counts, the maximum and the
//! histogram; the mean sums the row sums in row order at the end, so any chunking gives the
//! same bits as one pass.
//!
//! A non-finite original or decoded value is an error. When every pixel is masked or
//! saturated, there is nothing to measure: also an error, naming the cause.
//!
//! The peer is `tests/peers/sx_fixtures.py` (NumPy on the same arrays).

use std::collections::BTreeMap;

use ndarray::ArrayD;
use serde_json::{Value, json};

use super::registry::AnalysisDef;
use super::{Analysis, Context, DynAnalysis, Slabs};
use crate::data::SourceSpec;
use crate::metrics::values::metric_json;
use crate::pipeline::params::StageConfig;
use crate::pipeline::params::{ANY_FLOAT, Default, ParamDef, ParamKind};
use crate::stats::histogram::Histogram;

/// Registry entry.
pub static DEF: AnalysisDef = AnalysisDef {
    kind: "counting",
    doc: "error in Poisson sigmas |d - o| / sqrt(max(o, 1)): mean, 99th percentile (to 1e-3), max, fraction above 1; changed zeros, integer counts, saturated and masked pixels",
    params: &[
        ParamDef {
            name: "saturation",
            kind: ANY_FLOAT,
            default: Default::Derived("none"),
            doc: "original values >= saturation are saturated: left out of the error statistics, counted when changed",
        },
        ParamDef {
            name: "mask",
            kind: ParamKind::Text,
            default: Default::Derived("none"),
            doc: "file.h5::/path or .npy, nonzero = masked, shape of one frame or of the whole array: left out of the error statistics, counted when changed",
        },
    ],
    columns: &[
        "sigma_error_mean",
        "sigma_error_p99",
        "sigma_error_max",
        "fraction_above_1sigma",
        "changed_zeros",
    ],
    complete: None,
    prepare: Some(Counting::prepare),
    figures: None,
};

/// Width of the histogram bins of `e`, in sigma: the percentile's resolution.
pub const BIN_WIDTH: f64 = 1e-3;
/// Bins kept densely (below 65.536 sigma); larger errors go to a sparse map.
const DENSE_BINS: usize = 1 << 16;
/// The percentile reported.
const PERCENTILE: f64 = 0.99;

/// Mergeable partial over a range of rows.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CountingPartial {
    /// Sum of `e` over the counted pixels of each row, in row order.
    row_sums: Vec<f64>,
    counted: u64,
    above_one: u64,
    max: f64,
    dense: Vec<u64>,
    sparse: BTreeMap<u64, u64>,
    changed_zeros: u64,
    integer_counts_broken: u64,
    saturated: u64,
    saturated_changed: u64,
    masked: u64,
    masked_changed: u64,
}

impl CountingPartial {
    fn empty() -> CountingPartial {
        CountingPartial {
            row_sums: Vec::new(),
            counted: 0,
            above_one: 0,
            max: 0.0,
            dense: vec![0; DENSE_BINS],
            sparse: BTreeMap::new(),
            changed_zeros: 0,
            integer_counts_broken: 0,
            saturated: 0,
            saturated_changed: 0,
            masked: 0,
            masked_changed: 0,
        }
    }

    /// The `q`-quantile's histogram estimate (see the module doc).
    fn percentile(&self, q: f64) -> f64 {
        // NumPy's inverted_cdf: the value at 0-based index ceil(n q) - 1 of the sorted values.
        let rank = ((self.counted as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        let dense = self.dense.iter().enumerate().map(|(b, &c)| (b as u64, c));
        let sparse = self.sparse.iter().map(|(&b, &c)| (b, c));
        for (bin, count) in dense.chain(sparse) {
            seen += count;
            if seen >= rank {
                return ((bin + 1) as f64 * BIN_WIDTH).min(self.max);
            }
        }
        self.max
    }
}

/// The `counting` analysis.
#[derive(Debug, Clone)]
pub struct Counting {
    saturation: Option<f64>,
    /// Nonzero = masked, flat in C order; `per_frame` when it has the shape of one row.
    mask: Option<Vec<bool>>,
    per_frame: bool,
}

impl Counting {
    /// The registry's constructor: reads and checks the mask.
    pub fn prepare(
        config: &StageConfig,
        context: &mut Context,
    ) -> Result<Box<dyn DynAnalysis>, String> {
        let shape = context.shape;
        let (mask, per_frame) = match config.params.iter().find(|(n, _)| *n == "mask") {
            None => (None, false),
            Some(_) => {
                let text = config.str("mask");
                let source = SourceSpec::parse(text, context.base, None)
                    .and_then(|s| s.open().map_err(|e| e.to_string()))
                    .map_err(|e| format!("mask: {e}"))?;
                let mask_shape = source.shape().to_vec();
                let per_frame = shape.len() == 3 && mask_shape == shape[1..];
                if !per_frame && mask_shape != shape {
                    let frame = if shape.len() == 3 {
                        format!("one frame {:?} or ", &shape[1..])
                    } else {
                        String::new()
                    };
                    return Err(format!(
                        "mask {text} has shape {mask_shape:?}, not {frame}the data's {shape:?}"
                    ));
                }
                let values = source
                    .read_slab(0..mask_shape[0])
                    .map_err(|e| format!("mask: {e}"))?
                    .to_f64();
                (Some(values.iter().map(|&v| v != 0.0).collect()), per_frame)
            }
        };
        Ok(Box::new(Counting {
            saturation: config.opt_float("saturation"),
            mask,
            per_frame,
        }))
    }

    /// Whether element `i` of row `row` (of `row_len` elements) is masked.
    fn masked(&self, row: usize, row_len: usize, i: usize) -> bool {
        match &self.mask {
            None => false,
            Some(m) if self.per_frame => m[i],
            Some(m) => m[row * row_len + i],
        }
    }

    /// The partial of rows `first_row..` holding `original` and `decoded` (same shape).
    fn of(
        &self,
        original: &ArrayD<f64>,
        decoded: &ArrayD<f64>,
        first_row: usize,
    ) -> Result<CountingPartial, String> {
        let mut p = CountingPartial::empty();
        let rows = original.shape()[0];
        let row_len = original.len() / rows.max(1);
        let (o, d) = (
            original.as_slice().expect("fresh arrays are in C order"),
            decoded.as_slice().expect("fresh arrays are in C order"),
        );
        for r in 0..rows {
            let row = first_row + r;
            let mut sum = 0.0;
            for i in 0..row_len {
                let (x, y) = (o[r * row_len + i], d[r * row_len + i]);
                if !x.is_finite() || !y.is_finite() {
                    let which = if x.is_finite() { "decoded" } else { "original" };
                    return Err(format!(
                        "the {which} data hold a non-finite value in row {row}"
                    ));
                }
                if x == 0.0 && y != 0.0 {
                    p.changed_zeros += 1;
                }
                if x.fract() == 0.0 && y.fract() != 0.0 {
                    p.integer_counts_broken += 1;
                }
                if self.masked(row, row_len, i) {
                    p.masked += 1;
                    p.masked_changed += u64::from(y != x);
                    continue;
                }
                if self.saturation.is_some_and(|s| x >= s) {
                    p.saturated += 1;
                    p.saturated_changed += u64::from(y != x);
                    continue;
                }
                let e = (y - x).abs() / x.max(1.0).sqrt();
                sum += e;
                p.counted += 1;
                p.above_one += u64::from(e > 1.0);
                p.max = p.max.max(e);
                let bin = (e / BIN_WIDTH).floor() as u64;
                match p.dense.get_mut(bin as usize) {
                    Some(c) => *c += 1,
                    None => *p.sparse.entry(bin).or_insert(0) += 1,
                }
            }
            p.row_sums.push(sum);
        }
        Ok(p)
    }
}

impl Analysis for Counting {
    type Fit = ();
    type Partial = CountingPartial;

    fn fit(&self, _histogram: Option<&Histogram>) -> Result<(), String> {
        Ok(())
    }

    fn partial(&self, _fit: &(), s: &Slabs) -> Result<CountingPartial, String> {
        s.original.check_same_shape(s.decoded)?;
        let rows = s.core.start - s.held.start..s.core.end - s.held.start;
        self.of(
            &s.original.slice_rows(rows.clone()).to_f64(),
            &s.decoded.slice_rows(rows).to_f64(),
            s.core.start,
        )
    }

    fn merge(&self, total: &mut CountingPartial, next: CountingPartial) -> Result<(), String> {
        total.row_sums.extend(next.row_sums);
        total.counted += next.counted;
        total.above_one += next.above_one;
        total.max = total.max.max(next.max);
        for (t, n) in total.dense.iter_mut().zip(next.dense) {
            *t += n;
        }
        for (bin, count) in next.sparse {
            *total.sparse.entry(bin).or_insert(0) += count;
        }
        total.changed_zeros += next.changed_zeros;
        total.integer_counts_broken += next.integer_counts_broken;
        total.saturated += next.saturated;
        total.saturated_changed += next.saturated_changed;
        total.masked += next.masked;
        total.masked_changed += next.masked_changed;
        Ok(())
    }

    fn finish(&self, _fit: &(), p: CountingPartial, _shape: &[usize]) -> Result<Value, String> {
        if p.counted == 0 {
            return Err("every pixel is masked or saturated: no counts to compare".into());
        }
        let n = p.counted as f64;
        let sum: f64 = p.row_sums.iter().sum();
        Ok(json!({
            "sigma_error_mean": metric_json(sum / n),
            "sigma_error_p99": metric_json(p.percentile(PERCENTILE)),
            "sigma_error_max": metric_json(p.max),
            "fraction_above_1sigma": metric_json(p.above_one as f64 / n),
            "changed_zeros": p.changed_zeros,
            "integer_counts_broken": p.integer_counts_broken,
            "saturated_changed": p.saturated_changed,
            "masked_changed": p.masked_changed,
            "counted_pixels": p.counted,
            "saturated_pixels": p.saturated,
            "masked_pixels": p.masked,
            "p99_bin_width": metric_json(BIN_WIDTH),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counting(saturation: Option<f64>) -> Counting {
        Counting {
            saturation,
            mask: None,
            per_frame: false,
        }
    }

    #[test]
    fn percentile_is_the_inverted_cdf_rounded_up_to_a_bin() {
        // 100 values 0.0105, 0.0205, ... 1.0005: the 99th smallest is 0.9905, in bin 990.
        let o = ArrayD::from_elem(ndarray::IxDyn(&[1, 100]), 100.0);
        let d = ArrayD::from_shape_fn(ndarray::IxDyn(&[1, 100]), |i| {
            100.0 + (i[1] as f64 + 1.05) * 0.1
        });
        let p = counting(None).of(&o, &d, 0).unwrap();
        let p99 = p.percentile(0.99);
        let exact = (98.0 + 1.05) * 0.1 / 10.0;
        assert!(p99 >= exact && p99 < exact + BIN_WIDTH, "{p99} vs {exact}");
        assert_eq!(p.above_one, 1);
    }

    #[test]
    fn a_mask_of_the_whole_array_is_indexed_by_the_rows_of_the_partial() {
        // Rows 2..4 of a 4x3 array; the mask covers element (3, 1) only.
        let mut mask = vec![false; 12];
        mask[3 * 3 + 1] = true;
        let c = Counting {
            saturation: None,
            mask: Some(mask),
            per_frame: false,
        };
        let o = ArrayD::from_elem(ndarray::IxDyn(&[2, 3]), 4.0);
        let d = ArrayD::from_elem(ndarray::IxDyn(&[2, 3]), 6.0);
        let p = c.of(&o, &d, 2).unwrap();
        assert_eq!((p.counted, p.masked, p.masked_changed), (5, 1, 1));
        assert_eq!(p.row_sums, [3.0, 2.0]);
        let bad = ArrayD::from_elem(ndarray::IxDyn(&[2, 3]), f64::NAN);
        let error = c.of(&o, &bad, 2).unwrap_err();
        assert_eq!(error, "the decoded data hold a non-finite value in row 2");
    }

    #[test]
    fn lossless_gives_zeros_and_saturated_pixels_are_left_out() {
        let o = ArrayD::from_shape_fn(ndarray::IxDyn(&[3, 4]), |i| (i[0] * 4 + i[1]) as f64);
        let p = counting(Some(10.0)).of(&o, &o, 0).unwrap();
        assert_eq!((p.counted, p.saturated, p.max), (10, 2, 0.0));
        assert_eq!(p.percentile(0.99), 0.0);
    }

    /// The sparse and dense error histograms and the row sums survive the bytes of another
    /// process: encoded, decoded and merged, the partials finish as the originals.
    #[test]
    fn encoded_partials_merge_as_the_originals() {
        let (x, y) = crate::analysis::testing::frames(6, 12);
        let counting = crate::analysis::testing::prepare(
            "[[analysis]]\nkind = \"counting\"\nsaturation = 300.0\n",
            &x,
        );
        crate::analysis::testing::check_round_trip(&*counting, &x, &y, &[2, 3]);
    }
}
