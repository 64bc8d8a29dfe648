//! The slices behind a report's triptych: one working point's original and decoded 2-D slice
//! where the point does worst, made by running that point's chain again.
//!
//! The chain is rebuilt from the scenario and fitted exactly as a run ([`super::session()`]) fits it (the
//! same whole-volume statistics, from a first pass that also checks the input's hash against
//! the row's provenance), and its fitted parameters must equal those the row recorded. Chunks
//! are the run's (`provenance.chunk_slices`), so every decoded value equals the run's: a chunk
//! is compressed on its own. Which slice:
//!
//! - a 3-D input: the slice along axis 0 with the lowest SSIM (`ssim_detail.worst_slice`) when
//!   the run measured SSIM, and only its chunk is round-tripped; otherwise the slice with the
//!   largest maximum absolute error, found by round-tripping every chunk, one at a time (memory:
//!   one chunk and one slice);
//! - a 2-D input: the image itself (every chunk round-tripped, the image held as float64);
//! - with `[reconstruction]`: the slice reconstructed from a detector row, as the run's
//!   reconstructed metrics see it: the row with the lowest reconstructed SSIM when several rows
//!   were reconstructed and SSIM measured, else the one whose slice has the largest maximum
//!   absolute error. The decoded projections of those rows are gathered from every chunk (the
//!   memory the run itself holds per point).
//!
//! Ties go to the lowest index.

use std::ops::Range;

use indicatif::ProgressBar;
use ndarray::{Array2, ArrayView2, Axis, Ix2};
use serde_json::{Map, Value};

use super::Plan;
use super::passes::{self, FitCache, Passes};
use super::reconstruction::layout;
use super::results::{PointResult, Status};
use crate::analysis::fbp::{self, Fbp};
use crate::data::exchange::Exchange;
use crate::data::{NdArray, SourceSpec};
use crate::metrics::values::metric_value;
use crate::metrics::values::short;
use crate::scenario::{ReconstructionSpec, Scenario};

/// One working point's original and decoded 2-D slice, for the report's triptych.
#[derive(Debug, Clone, PartialEq)]
pub struct Triptych {
    /// The working point.
    pub point_id: String,
    /// Index of the slice along its axis (0 for a 2-D input).
    pub slice_index: usize,
    /// What the slice is: `slice 25 of 64 along axis 0`, `the 2-D image`, `the slice
    /// reconstructed from detector row 0`.
    pub axis_label: String,
    /// Why this slice, a clause: `it has the lowest SSIM of the slices (0.5246)`.
    pub reason: String,
    /// The original's values.
    pub original: Array2<f64>,
    /// The decoded values, same shape.
    pub decoded: Array2<f64>,
}

/// The worst slice of the measured point `row` of `scenario` (see the module doc), with the
/// chunks and fits of the run; `memory_budget` and `threads` bound the passes as in a run.
/// Errors (one line) when the point failed, is not in the scenario, or the input or the fitted
/// parameters differ from the run's.
pub fn worst_slice(
    scenario: &Scenario,
    row: &PointResult,
    memory_budget: u64,
    threads: Option<usize>,
) -> Result<Triptych, String> {
    let id = &row.point_id;
    if row.status == Status::Error {
        return Err(format!("point {id} failed; it has no decoded data to show"));
    }
    let source = scenario.source.open().map_err(|e| e.to_string())?;
    let label = source.label().to_string();
    let shape = source.shape().to_vec();
    if shape != row.provenance.input_shape {
        return Err(format!(
            "{label}: shape {shape:?}, but point {id} was measured on {:?}",
            row.provenance.input_shape
        ));
    }
    let point = scenario
        .working_points()
        .into_iter()
        .find(|p| p.id == *id)
        .ok_or_else(|| {
            format!(
                "{}: no working point {id} (was the scenario changed after the run?)",
                scenario.path.display()
            )
        })?;
    let mut chain = super::build_chain(scenario, &point, source.as_ref())?;
    let plan = Plan::new(
        &shape,
        source.row_bytes(),
        Some(row.provenance.chunk_slices),
        memory_budget,
        threads,
    )?;
    let pool = plan.pool()?;
    let passes = Passes::new(source.as_ref(), &plan, &pool);
    let progress = ProgressBar::hidden();
    let summary = passes::summarize(&passes, &progress)?;
    if summary.hash != row.provenance.input_hash {
        return Err(format!(
            "{label}: the input changed since point {id} was measured (hash {} now, {} then)",
            summary.hash, row.provenance.input_hash
        ));
    }
    chain
        .fit(&mut FitCache::new(&passes, &progress, &summary))
        .map_err(|e| format!("point {id}: {e}"))?;
    if chain.fitted() != row.fitted {
        return Err(format!(
            "point {id}: fitting again gave {}, the run recorded {}",
            Value::from(chain.fitted()),
            Value::from(row.fitted.clone())
        ));
    }
    let trip = |k: usize| -> Result<(NdArray, NdArray), String> {
        let original = source
            .read_slab(passes.chunks[k].clone())
            .map_err(|e| e.to_string())?;
        let decoded = chain
            .round_trip(&original)
            .map_err(|e| format!("point {id}: {e}"))?
            .decoded;
        let decoded = std::sync::Arc::unwrap_or_clone(decoded);
        Ok((original, decoded))
    };
    let chunks = &passes.chunks;
    let (slice_index, axis_label, reason, original, decoded) = match &scenario.reconstruction {
        Some(spec) => reconstructed(scenario, spec, row, &shape, chunks.len(), &trip)?,
        None if shape.len() == 2 => whole_image(chunks.len(), &trip)?,
        None => along_axis0(row, chunks, &trip)?,
    };
    Ok(Triptych {
        point_id: id.clone(),
        slice_index,
        axis_label,
        reason,
        original,
        decoded,
    })
}

/// Index, label, reason, original and decoded slice.
type Chosen = (usize, String, String, Array2<f64>, Array2<f64>);

/// Round-trips chunk `k`: its original and decoded data.
type Trip<'a> = &'a dyn Fn(usize) -> Result<(NdArray, NdArray), String>;

/// The slice with the largest maximum absolute error offered so far (the first on ties).
#[derive(Default)]
struct Worst(Option<(usize, f64, Array2<f64>, Array2<f64>)>);

impl Worst {
    fn offer(&mut self, index: usize, original: Array2<f64>, decoded: Array2<f64>) {
        let error = max_abs_error(&original, &decoded);
        if self.0.as_ref().is_none_or(|w| error > w.1) {
            self.0 = Some((index, error, original, decoded));
        }
    }
}

/// A 2-D input: the whole image, from every chunk.
fn whole_image(chunks: usize, trip: Trip) -> Result<Chosen, String> {
    let (mut original, mut decoded) = (Vec::new(), Vec::new());
    for k in 0..chunks {
        let (o, d) = trip(k)?;
        original.push(plane(&o)?);
        decoded.push(plane(&d)?);
    }
    let joined = |parts: Vec<Array2<f64>>| {
        let views: Vec<ArrayView2<f64>> = parts.iter().map(|p| p.view()).collect();
        ndarray::concatenate(Axis(0), &views).map_err(|e| e.to_string())
    };
    Ok((
        0,
        "the 2-D image".into(),
        "the input is 2-D".into(),
        joined(original)?,
        joined(decoded)?,
    ))
}

/// A 3-D input: the slice along axis 0 with the lowest SSIM, from its chunk alone, or with the
/// largest maximum absolute error, from every chunk in turn.
fn along_axis0(row: &PointResult, chunks: &[Range<usize>], trip: Trip) -> Result<Chosen, String> {
    let slices = chunks.last().map_or(0, |c| c.end);
    let (index, reason, original, decoded) = match ssim_worst(&row.distortion) {
        Some((index, ssim)) => {
            let k = chunks.partition_point(|c| c.end <= index);
            let (o, d) = trip(k)?;
            let at = index - chunks[k].start;
            let why = format!("it has the lowest SSIM of the slices ({ssim})");
            (index, why, slice(&o, at)?, slice(&d, at)?)
        }
        None => {
            let mut worst = Worst::default();
            for (k, rows) in chunks.iter().enumerate() {
                let (o, d) = trip(k)?;
                for at in 0..rows.len() {
                    worst.offer(rows.start + at, slice(&o, at)?, slice(&d, at)?);
                }
            }
            let (index, error, o, d) = worst.0.expect("an input has at least one slice");
            let why = format!(
                "it has the largest maximum absolute error of the slices ({})",
                short(error)
            );
            (index, why, o, d)
        }
    };
    let what = format!("slice {index} of {slices} along axis 0");
    Ok((index, what, reason, original, decoded))
}

/// The worst reconstructed slice (see the module doc).
fn reconstructed(
    scenario: &Scenario,
    spec: &ReconstructionSpec,
    row: &PointResult,
    shape: &[usize],
    chunks: usize,
    trip: Trip,
) -> Result<Chosen, String> {
    let SourceSpec::Hdf5 { file, .. } = &scenario.source else {
        return Err(format!(
            "{}: [reconstruction] needs a DataExchange input",
            scenario.path.display()
        ));
    };
    let (rows, _) = layout(spec, shape)?;
    let by_ssim = ssim_worst(&row.reconstructed);
    let candidates: Vec<usize> = match by_ssim {
        Some((i, _)) if i < rows.len() => vec![i],
        _ => (0..rows.len()).collect(),
    };
    // The decoded projections (angles x detector) of the candidate rows, in chunk order.
    let mut gathered = vec![Vec::new(); candidates.len()];
    for k in 0..chunks {
        let decoded = trip(k)?.1.to_f64();
        for (values, &c) in gathered.iter_mut().zip(&candidates) {
            values.extend(decoded.index_axis(Axis(1), rows[c]).iter().copied());
        }
    }
    let exchange = Exchange::open(file)?;
    let [angles, _, detector] = exchange.shape;
    let theta = match spec.theta_range_deg {
        Some((start, stop)) => fbp::theta_range(start, stop, angles),
        None => exchange.theta()?,
    };
    let fbp =
        Fbp::new(detector, &theta, spec.filter).map_err(|e| format!("reconstruction: {e}"))?;
    let image = |values: Vec<f64>| {
        Array2::from_shape_vec((detector, detector), values).map_err(|e| e.to_string())
    };
    let mut worst = Worst::default();
    for (values, &c) in gathered.into_iter().zip(&candidates) {
        let fail = |e: String| format!("reconstruction: row {}: {e}", rows[c]);
        let original = fbp
            .reconstruct(&exchange.sinogram(rows[c])?)
            .map_err(fail)?;
        let sinogram = exchange
            .flat_dark(rows[c])?
            .normalise(&values)
            .map_err(fail)?;
        let decoded = fbp.reconstruct(&sinogram).map_err(fail)?;
        worst.offer(c, image(original)?, image(decoded)?);
    }
    let (c, error, o, d) = worst.0.expect("at least one reconstructed row");
    let reason = match by_ssim {
        Some((_, ssim)) if candidates.len() == 1 && rows.len() > 1 => {
            format!("it has the lowest reconstructed SSIM of the rows ({ssim})")
        }
        _ if rows.len() == 1 => "it is the only reconstructed row".into(),
        _ => format!(
            "it has the largest maximum absolute error of the reconstructed slices ({})",
            short(error)
        ),
    };
    let what = format!("the slice reconstructed from detector row {}", rows[c]);
    Ok((rows[c], what, reason, o, d))
}

/// `worst_slice` and `worst_slice_ssim` of an `ssim_detail`, when SSIM was measured in 3-D.
fn ssim_worst(metrics: &Map<String, Value>) -> Option<(usize, String)> {
    let detail = metrics.get("ssim_detail")?;
    let index = usize::try_from(detail.get("worst_slice")?.as_u64()?).ok()?;
    let ssim = detail
        .get("worst_slice_ssim")
        .and_then(metric_value)
        .map_or("?".into(), short);
    Some((index, ssim))
}

/// Slice `at` along axis 0 of a 3-D chunk, as float64.
fn slice(chunk: &NdArray, at: usize) -> Result<Array2<f64>, String> {
    let one = chunk.slice_rows(at..at + 1).to_f64();
    one.index_axis_move(Axis(0), 0)
        .into_dimensionality::<Ix2>()
        .map_err(|e| format!("a slice of a 3-D chunk: {e}"))
}

/// A 2-D chunk as float64.
fn plane(chunk: &NdArray) -> Result<Array2<f64>, String> {
    chunk
        .to_f64()
        .into_dimensionality::<Ix2>()
        .map_err(|e| format!("a 2-D chunk: {e}"))
}

/// `max |decoded - original|`; NaN counts as infinite (a decoder that makes NaN is worst).
fn max_abs_error(original: &Array2<f64>, decoded: &Array2<f64>) -> f64 {
    original
        .iter()
        .zip(decoded)
        .map(|(o, d)| {
            let e = (d - o).abs();
            if e.is_nan() { f64::INFINITY } else { e }
        })
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::IntoNdArray;
    use crate::data::npy::write_npy;
    use crate::runner::{RunOptions, measure};
    use ndarray::{ArrayD, IxDyn};

    /// A scenario on `volume` (written as `.npy` in `dir`) quantising to `bits` and deflating.
    fn scenario(dir: &std::path::Path, volume: ArrayD<f32>, metrics: &str) -> Scenario {
        write_npy(&dir.join("v.npy"), &volume.into_nd()).unwrap();
        let text = format!(
            "[scenario]\nname = \"t\"\nchunk_slices = 3\n[input]\nsource = \"v.npy\"\n\
             [[pipeline]]\nstage = \"quantize\"\ndtype = \"uint8\"\nbits = {{ sweep = [3, 5] }}\n\
             [[pipeline]]\nstage = \"deflate\"\n[metrics]\ndistortion = [{metrics}]\n"
        );
        let path = dir.join("t.toml");
        std::fs::write(&path, &text).unwrap();
        Scenario::load(&path).unwrap()
    }

    fn volume(shape: &[usize]) -> ArrayD<f32> {
        // A smooth ramp with one slice of larger values: its quantisation error is largest.
        ArrayD::from_shape_fn(IxDyn(shape), |i| {
            let v = (i[shape.len() - 1] as f32 * 0.37).sin();
            if shape.len() == 3 && i[0] == 7 {
                v * 1.9 + 0.013
            } else {
                v
            }
        })
    }

    fn run_in(dir: &std::path::Path, scenario: &Scenario) -> Vec<PointResult> {
        let options = RunOptions {
            threads: Some(2),
            ..RunOptions::new(dir.join("run"))
        };
        measure(scenario, &options, None).unwrap().rows
    }

    #[test]
    fn without_ssim_the_slice_with_the_largest_error_is_shown() {
        let dir = tempfile::tempdir().unwrap();
        let s = scenario(dir.path(), volume(&[10, 6, 8]), "\"max_abs_error\"");
        let rows = run_in(dir.path(), &s);
        for row in &rows {
            let t = worst_slice(&s, row, 1 << 30, Some(1)).unwrap();
            assert_eq!(t.original.dim(), (6, 8));
            // The worst slice holds the volume's largest error, as the run measured it.
            let measured = row.distortion["max_abs_error"].as_f64().unwrap();
            assert_eq!(max_abs_error(&t.original, &t.decoded), measured);
            assert_eq!(
                t.axis_label,
                format!("slice {} of 10 along axis 0", t.slice_index)
            );
            assert!(
                t.reason
                    .starts_with("it has the largest maximum absolute error"),
                "{}",
                t.reason
            );
            let o = volume(&[10, 6, 8]).mapv(f64::from);
            assert_eq!(t.original.into_dyn(), o.index_axis(Axis(0), t.slice_index));
        }
    }

    #[test]
    fn with_3d_ssim_the_lowest_ssim_slice_is_shown_and_2d_shows_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let s = scenario(dir.path(), volume(&[16, 12, 12]), "\"ssim\"");
        let rows = run_in(dir.path(), &s);
        let t = worst_slice(&s, &rows[0], 1 << 30, None).unwrap();
        let worst = rows[0].distortion["ssim_detail"]["worst_slice"]
            .as_u64()
            .unwrap();
        assert_eq!(t.slice_index as u64, worst);
        assert!(
            t.reason
                .starts_with("it has the lowest SSIM of the slices (0."),
            "{}",
            t.reason
        );

        let flat = tempfile::tempdir().unwrap();
        let s = scenario(flat.path(), volume(&[9, 7]), "\"mse\"");
        let rows = run_in(flat.path(), &s);
        let t = worst_slice(&s, &rows[1], 1 << 30, None).unwrap();
        assert_eq!((t.slice_index, t.axis_label.as_str()), (0, "the 2-D image"));
        assert_eq!(
            t.original.clone().into_dyn(),
            volume(&[9, 7]).mapv(f64::from)
        );
        assert_eq!(t.decoded.dim(), (9, 7));
        assert_ne!(t.original, t.decoded);
    }

    #[test]
    fn a_failed_point_or_a_changed_input_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = scenario(dir.path(), volume(&[4, 3, 3]), "\"mse\"");
        let rows = run_in(dir.path(), &s);
        let mut failed = rows[0].clone();
        failed.status = Status::Error;
        let err = worst_slice(&s, &failed, 1 << 30, None).unwrap_err();
        assert_eq!(
            err,
            format!(
                "point {} failed; it has no decoded data to show",
                failed.point_id
            )
        );
        let mut other = rows[0].clone();
        other.provenance.input_hash = "0".into();
        let err = worst_slice(&s, &other, 1 << 30, None).unwrap_err();
        assert!(err.contains("the input changed since point"), "{err}");
        let mut unknown = rows[0].clone();
        unknown.point_id = "wp-0000000000".into();
        let err = worst_slice(&s, &unknown, 1 << 30, None).unwrap_err();
        assert!(
            err.ends_with(
                "no working point wp-0000000000 (was the scenario changed after the run?)"
            ),
            "{err}"
        );
    }
}
