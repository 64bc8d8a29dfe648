//! Reconstruction after the pipeline (`[reconstruction]`): the projections of a DataExchange
//! file go through the working points' chains like any input; while a point's chunks stream,
//! the decoded projections of the chosen detector rows are gathered, then normalised with the
//! file's flat and dark fields and reconstructed by filtered back-projection. The original's
//! slices are reconstructed once. The distortion metrics of `[reconstruction] distortion` and
//! the science analyses compare the slices.
//!
//! Only the chosen rows are held: per working point in flight, their decoded projections
//! (`rows x angles x detector` values) and slices (`rows x detector^2`), all float64.

use ndarray::{ArrayD, Axis, IxDyn};
use serde_json::{Map, Value};

use super::passes::min_max;
use super::science::Analyses;
use super::{DEFAULT_REL_FLOOR, WORKING_SET_FACTOR, format_size};
use crate::analysis::fbp::{self, Fbp};
use crate::analysis::{Context, Slabs};
use crate::data::exchange::{Exchange, FlatDark};
use crate::data::{NdArray, SourceSpec};
use crate::metrics::comparison::{CompareSpec, DataFacts, unmet};
use crate::metrics::histogram::{Binning, Histogram};
use crate::scenario::{ReconstructionSpec, Scenario};

/// Decoded projections of the reconstructed rows from one chunk: per row, `angles x detector`
/// values (the chunk's angles), row-major.
pub type Gathered = Vec<Vec<f64>>;

/// The distortion metrics and the science analyses (by label) of a point's slices.
pub type Compared = (Map<String, Value>, Map<String, Value>);

/// The reconstruction of a run: the back-projection, the original's slices and what is
/// compared on them.
pub struct Reconstruction {
    fbp: Fbp,
    /// Flat and dark fields of the reconstructed rows, in order.
    fields: Vec<FlatDark>,
    /// Shape of the slices: `(detector, detector)` for one row, else `(rows, detector,
    /// detector)`.
    shape: Vec<usize>,
    /// The original's slices (float64).
    original: NdArray,
    /// The comparison of the slices.
    spec: CompareSpec,
    /// Its metrics.
    distortion: Vec<&'static str>,
    /// The science analyses, fitted on the original's slices.
    analyses: Analyses,
}

/// The detector rows a spec reconstructs, and the slices' shape, for projections of shape
/// `(angles, rows, detector)`; errors name the scenario key.
pub fn layout(
    spec: &ReconstructionSpec,
    projections: &[usize],
) -> Result<(Vec<usize>, Vec<usize>), String> {
    let &[_, rows, detector] = projections else {
        return Err(format!(
            "[reconstruction] needs projections of shape (angles, rows, detector), not {projections:?}"
        ));
    };
    let chosen = spec.rows.clone().unwrap_or_else(|| (0..rows).collect());
    if let Some(row) = chosen.iter().find(|&&r| r >= rows) {
        return Err(format!(
            "reconstruction.rows: row {row} is beyond the {rows} detector rows"
        ));
    }
    let shape = match chosen.len() {
        1 => vec![detector, detector],
        n => vec![n, detector, detector],
    };
    Ok((chosen, shape))
}

/// Checks what can be checked before any data is read: the rows exist and the slices allow
/// every selected metric.
pub fn check(
    scenario: &Scenario,
    spec: &ReconstructionSpec,
    projections: &[usize],
) -> Result<(), String> {
    let (_, shape) = layout(spec, projections)?;
    match spec
        .distortion
        .iter()
        .find_map(|name| unmet(name, &shape, None, scenario.ssim_window).map(|why| (name, why)))
    {
        Some((name, why)) => Err(format!(
            "reconstruction.distortion: metric {name} on slices of shape {shape:?}: {why}"
        )),
        None => Ok(()),
    }
}

/// Bytes the reconstruction holds with `threads` working points in flight: per point its
/// gathered projections, their normalised copy, its slices and the comparison's working set;
/// once, the original's slices. Errors when that exceeds the memory budget `budget`.
pub fn memory(
    spec: &ReconstructionSpec,
    projections: &[usize],
    threads: usize,
    budget: u64,
) -> Result<u64, String> {
    let (rows, shape) = layout(spec, projections)?;
    let gathered = (rows.len() * projections[0] * projections[2] * 8) as u64;
    let slices = (shape.iter().product::<usize>() * 8) as u64;
    let per_point = 2 * gathered + WORKING_SET_FACTOR as u64 * slices;
    let need = per_point * threads as u64 + slices;
    if need >= budget {
        let side = projections[2];
        return Err(format!(
            "reconstruction: {} rows of {side}x{side} slices need about {} with {threads} points in flight, more than the memory budget of {}; reconstruct fewer rows (reconstruction.rows) or raise --memory-budget",
            rows.len(),
            format_size(need),
            format_size(budget)
        ));
    }
    Ok(need)
}

impl Reconstruction {
    /// Reconstructs the original's slices and fits the analyses on them.
    pub fn prepare(
        scenario: &Scenario,
        spec: &ReconstructionSpec,
    ) -> Result<Reconstruction, String> {
        let SourceSpec::Hdf5 { file, .. } = &scenario.source else {
            unreachable!("the scenario checks that the input is /exchange/data")
        };
        let exchange = Exchange::open(file)?;
        let (rows, shape) = layout(spec, &exchange.shape)?;
        let [angles, _, detector] = exchange.shape;
        let theta = match spec.theta_range_deg {
            Some((start, stop)) => fbp::theta_range(start, stop, angles),
            None => exchange.theta()?,
        };
        let fbp =
            Fbp::new(detector, &theta, spec.filter).map_err(|e| format!("reconstruction: {e}"))?;
        let fields = rows
            .iter()
            .map(|&row| exchange.flat_dark(row))
            .collect::<Result<Vec<_>, String>>()?;
        let mut slices = Vec::with_capacity(shape.iter().product());
        for &row in &rows {
            let sinogram = exchange.sinogram(row)?;
            slices.extend(
                fbp.reconstruct(&sinogram)
                    .map_err(|e| format!("reconstruction: row {row}: {e}"))?,
            );
        }
        let original = slices_array(&shape, slices);
        let (lo, hi, _) = min_max(&original);
        let data_range = hi - lo;
        if data_range <= 0.0 {
            return Err(format!(
                "reconstruction: the original's slices are constant ({lo}); nothing to compare"
            ));
        }
        let facts = DataFacts {
            shape: &shape,
            range: (lo, hi),
            data_range,
            dtypes: (original.dtype(), original.dtype()),
        };
        let compare = CompareSpec::new(
            &spec.distortion,
            facts,
            DEFAULT_REL_FLOOR * data_range,
            scenario.ssim_window,
        )
        .map_err(|e| format!("reconstruction: the original's slices: {e}"))?;
        let base = scenario.path.parent().unwrap_or(std::path::Path::new("."));
        let analyses = Analyses::prepare(
            &scenario.analyses,
            &mut Context::new(&shape, base, || histogram(&original)),
        )
        .map_err(|e| format!("{}: reconstructed slices: {e}", scenario.path.display()))?;
        Ok(Reconstruction {
            fbp,
            fields,
            shape,
            original,
            spec: compare,
            distortion: spec.distortion.clone(),
            analyses,
        })
    }

    /// The shape of the slices.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The reconstructed rows' values of a decoded chunk of projections `(angles, rows,
    /// detector)`.
    pub fn gather(&self, decoded: &NdArray) -> Gathered {
        let values = decoded.to_f64();
        self.fields
            .iter()
            .map(|f| values.index_axis(Axis(1), f.row).iter().copied().collect())
            .collect()
    }

    /// Reconstructs the decoded slices from the gathered chunks (in chunk order) and compares
    /// them with the original's: the distortion metrics and the science analyses by label.
    pub fn measure(&self, chunks: Vec<Gathered>) -> Result<Compared, String> {
        let mut slices = Vec::with_capacity(self.original.len());
        for (i, fields) in self.fields.iter().enumerate() {
            let raw: Vec<f64> = chunks.iter().flat_map(|c| c[i].iter().copied()).collect();
            let sinogram = fields
                .normalise(&raw)
                .and_then(|s| self.fbp.reconstruct(&s))
                .map_err(|e| format!("reconstruction: decoded projections: {e}"))?;
            slices.extend(sinogram);
        }
        drop(chunks);
        let decoded = slices_array(&self.shape, slices);
        let whole = 0..self.shape[0];
        let partial = self
            .spec
            .partial(&self.original, &decoded, whole.clone(), whole.clone())?;
        let distortion = self.spec.finish(&partial, &self.distortion)?;
        if self.analyses.is_empty() {
            return Ok((distortion, Map::new()));
        }
        let histogram = if self.analyses.needs_histogram() {
            Some(histogram(&decoded).map_err(|e| format!("decoded slices: {e}"))?)
        } else {
            None
        };
        let fits = self.analyses.fit(histogram.as_ref())?;
        let slabs = Slabs {
            original: &self.original,
            decoded: &decoded,
            held: whole.clone(),
            core: whole,
            shape: &self.shape,
        };
        let partial = self.analyses.partial(&fits, &slabs)?;
        let science = self.analyses.finish(&fits, partial, &self.shape)?;
        Ok((distortion, science))
    }
}

fn slices_array(shape: &[usize], values: Vec<f64>) -> NdArray {
    NdArray::Float64(
        ArrayD::from_shape_vec(IxDyn(shape), values).expect("rows x detector^2 values"),
    )
}

/// The histogram of an array held in memory, over its range.
fn histogram(array: &NdArray) -> Result<Histogram, String> {
    let (lo, hi, _) = min_max(array);
    let binning = Binning::new(array.dtype(), lo, hi)?;
    let mut counts = binning.zeros();
    binning.accumulate(array, &mut counts);
    Ok(binning.finish(counts))
}
