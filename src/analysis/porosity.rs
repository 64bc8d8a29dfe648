//! Porosity of a segmented volume, original against decoded: the pore fraction, the pores as
//! connected components, their size distribution and the pore surface.
//!
//! Pores are the voxels of class `pore_class` of the class map (see
//! [`super::segmentation::Classes`]; with one threshold, class 0 is `value <= threshold`).
//! For the original and the decoded array, each with its own thresholds:
//! - `porosity` = pore voxels / voxels;
//! - pores = connected components of the pore mask ([`super::components`], face or full
//!   connectivity, as `scipy.ndimage.label`), their count and how many touch the border;
//! - equivalent diameter of a pore of `V` voxels: `(6 V / pi)^(1/3)` in 3-D (the sphere of
//!   equal volume), `sqrt(4 V / pi)` in 2-D (the disc of equal area), in voxels;
//! - the distance between the two diameter distributions: the exact two-sample
//!   Kolmogorov-Smirnov statistic with its asymptotic p-value ([`crate::metrics::ks`]) and the
//!   Wasserstein-1 distance (SciPy `ks_2samp`, `wasserstein_distance`);
//! - `specific_surface` = pore-boundary faces / voxels of the whole array (faces between a pore
//!   and a non-pore voxel; the array's outside does not count), per voxel length;
//! - `diameter_quantiles_original`, `_decoded`: 65 points of each diameter distribution, for
//!   the report's figure ([`figures`]).

use serde_json::{Value, json};

use super::components::{ComponentPartial, Components, Connectivity};
use super::figure::{Curve, FigureData, Panel, Role, number, numbers, pairs};
use super::segmentation::{Classes, Segmenter};
use super::{Analysis, Context, DynAnalysis, Slabs};
use crate::data::NdArray;
use crate::metrics::ks;
use crate::metrics::values::{metric_json, short};
use crate::pipeline::params::StageConfig;
use crate::stats::histogram::Histogram;

/// Mergeable partial of the porosity comparison over a range of rows: the pores of the
/// original and of the decoded array (their voxel counts give the porosity).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PorosityPartial {
    /// Pores of the original and of the decoded array.
    pub pores: [ComponentPartial; 2],
}

/// The pore mask of rows `core` of a slab holding rows `held`.
fn pore_mask(
    array: &NdArray,
    held_start: usize,
    core: &std::ops::Range<usize>,
    classes: &Classes,
    pore_class: u8,
) -> Vec<u8> {
    let rows = array.slice_rows(core.start - held_start..core.end - held_start);
    rows.to_f64()
        .iter()
        .map(|&v| u8::from(classes.class_of(v) == pore_class))
        .collect()
}

impl PorosityPartial {
    /// The partial of rows `core` of arrays of shape `shape`, from slabs holding rows `held`
    /// (which contain `core`).
    #[allow(clippy::too_many_arguments)]
    pub fn of(
        original: &NdArray,
        decoded: &NdArray,
        held: std::ops::Range<usize>,
        core: std::ops::Range<usize>,
        shape: &[usize],
        classes: [&Classes; 2],
        pore_class: u8,
        connectivity: Connectivity,
    ) -> Result<PorosityPartial, String> {
        original.check_same_shape(decoded)?;
        let mut slab_shape = shape.to_vec();
        slab_shape[0] = core.len();
        let pores = |array: &NdArray, c: &Classes| {
            let mask = pore_mask(array, held.start, &core, c, pore_class);
            ComponentPartial::of(&mask, &slab_shape, core.start, shape[0], connectivity)
        };
        Ok(PorosityPartial {
            pores: [pores(original, classes[0])?, pores(decoded, classes[1])?],
        })
    }

    /// Adds the partial of the rows that follow.
    pub fn merge(&mut self, next: &PorosityPartial) -> Result<(), String> {
        self.pores[0].merge(&next.pores[0])?;
        self.pores[1].merge(&next.pores[1])
    }

    /// The comparison of arrays of shape `shape` as JSON (`*_original`, `*_decoded` and their
    /// change for every quantity).
    pub fn json(self, pore_class: u8, shape: &[usize]) -> Value {
        let rank = shape.len();
        let total = shape.iter().product::<usize>() as f64;
        let [x, y] = self.pores;
        let (x, y) = (x.finish(), y.finish());
        let (p_x, p_y) = (x.volume as f64 / total, y.volume as f64 / total);
        let (d_x, d_y) = (diameters(&x, rank), diameters(&y, rank));
        let statistic = ks::two_sample_statistic(&d_x, &d_y);
        let n_e = (d_x.len() * d_y.len()) as f64 / (d_x.len() + d_y.len()).max(1) as f64;
        let surface = |c: &Components| c.boundary_faces as f64 / total;
        let mean = |d: &[f64]| {
            if d.is_empty() {
                0.0
            } else {
                d.iter().sum::<f64>() / d.len() as f64
            }
        };
        json!({
            "pore_class": pore_class,
            "connectivity": x.connectivity.name(),
            "porosity_original": metric_json(p_x),
            "porosity_decoded": metric_json(p_y),
            "porosity_abs_change": metric_json((p_y - p_x).abs()),
            "pore_count_original": x.count,
            "pore_count_decoded": y.count,
            "pore_count_change": y.count as i64 - x.count as i64,
            "pores_touching_border_original": x.touching_border,
            "pores_touching_border_decoded": y.touching_border,
            "diameter_mean_original": metric_json(mean(&d_x)),
            "diameter_mean_decoded": metric_json(mean(&d_y)),
            "diameter_max_original": metric_json(d_x.last().copied().unwrap_or(0.0)),
            "diameter_max_decoded": metric_json(d_y.last().copied().unwrap_or(0.0)),
            "diameter_ks_statistic": metric_json(statistic),
            "diameter_ks_p_value": metric_json(ks::p_value(statistic, n_e)),
            "diameter_wasserstein": metric_json(ks::wasserstein(&d_x, &d_y)),
            "specific_surface_original": metric_json(surface(&x)),
            "specific_surface_decoded": metric_json(surface(&y)),
            "specific_surface_change": metric_json(surface(&y) - surface(&x)),
            "diameter_quantiles_original": diameter_quantiles(&d_x).into_iter().map(metric_json).collect::<Vec<_>>(),
            "diameter_quantiles_decoded": diameter_quantiles(&d_y).into_iter().map(metric_json).collect::<Vec<_>>(),
        })
    }
}

/// Equivalent diameters of the components, ascending: `(6 V / pi)^(1/3)` in 3-D, `sqrt(4 V /
/// pi)` in 2-D.
pub fn diameters(components: &Components, rank: usize) -> Vec<f64> {
    use std::f64::consts::PI;
    components
        .sizes
        .iter()
        .map(|&v| {
            let v = v as f64;
            if rank == 3 {
                (6.0 * v / PI).cbrt()
            } else {
                (4.0 * v / PI).sqrt()
            }
        })
        .collect()
}

/// Steps of the cumulative pore-size distributions kept in the results for the figure: the
/// diameters at the fractions `k / CDF_STEPS` of the pores, `k = 0..=CDF_STEPS` (so the
/// figure costs 2 x 65 numbers per point, however many pores there are).
const CDF_STEPS: usize = 64;

/// The diameters of ascending `diameters` at the fractions `k / CDF_STEPS` of them (nearest
/// rank, `k = 0` the smallest, `k = CDF_STEPS` the largest); empty without pores.
pub fn diameter_quantiles(diameters: &[f64]) -> Vec<f64> {
    if diameters.is_empty() {
        return Vec::new();
    }
    let last = (diameters.len() - 1) as f64;
    (0..=CDF_STEPS)
        .map(|k| diameters[(last * k as f64 / CDF_STEPS as f64).round() as usize])
        .collect()
}

/// The figure `pore-sizes` of a point's results: the cumulative distributions of the pores'
/// equivalent diameters, original and decoded (`diameter_quantiles_*`), on a log diameter
/// axis; the Kolmogorov-Smirnov statistic `diameter_ks_statistic` is the largest vertical
/// distance between them.
pub fn figures(results: &Value) -> Vec<FigureData> {
    let curve = |role: Role, label: &str, key: &str| {
        let quantiles = numbers(results, key);
        let fractions: Vec<Option<f64>> = (0..quantiles.len())
            .map(|k| Some(k as f64 / CDF_STEPS as f64))
            .collect();
        Curve {
            label: format!(
                "{label} ({} pores)",
                results[key.replace("diameter_quantiles", "pore_count")]
                    .as_u64()
                    .unwrap_or(0)
            ),
            role,
            points: pairs(&quantiles, &fractions, (true, false)),
            markers: false,
        }
    };
    let ks = number(results, "diameter_ks_statistic").map_or("-".into(), short);
    vec![FigureData {
        name: "pore-sizes",
        title: format!("pore sizes, KS = {ks}"),
        panels: vec![Panel {
            x_label: "equivalent diameter (voxels)".into(),
            y_label: "fraction of pores \u{2264} diameter".into(),
            log_x: true,
            log_y: false,
            curves: vec![
                curve(Role::Original, "original", "diameter_quantiles_original"),
                curve(Role::Decoded, "decoded", "diameter_quantiles_decoded"),
            ],
            spans: Vec::new(),
            raster: None,
        }],
        notes: vec![format!(
            "Cumulative distributions of the pores' equivalent diameters (sphere or disc of equal volume), at {} steps; the Kolmogorov-Smirnov statistic is their largest vertical distance.",
            CDF_STEPS
        )],
    }]
}

/// The `porosity` analysis: pores of class `pore_class`, connected through `connectivity`.
#[derive(Debug, Clone)]
pub struct Porosity {
    segmenter: Segmenter,
    pore_class: u8,
    connectivity: Connectivity,
}

impl Porosity {
    /// The registry's constructor.
    pub fn prepare(
        config: &StageConfig,
        context: &mut Context,
    ) -> Result<Box<dyn DynAnalysis>, String> {
        Ok(Box::new(Porosity {
            segmenter: Segmenter::prepare(config, context)?,
            pore_class: config.int("pore_class") as u8,
            connectivity: Connectivity::parse(config.str("connectivity"))?,
        }))
    }
}

impl Analysis for Porosity {
    type Fit = Classes;
    type Partial = PorosityPartial;

    fn needs_histogram(&self) -> bool {
        self.segmenter.needs_histogram()
    }

    fn fit(&self, histogram: Option<&Histogram>) -> Result<Classes, String> {
        self.segmenter.fit(histogram)
    }

    fn partial(&self, fit: &Classes, s: &Slabs) -> Result<PorosityPartial, String> {
        PorosityPartial::of(
            s.original,
            s.decoded,
            s.held.clone(),
            s.core.clone(),
            s.shape,
            [&self.segmenter.original, fit],
            self.pore_class,
            self.connectivity,
        )
    }

    fn merge(&self, total: &mut PorosityPartial, next: PorosityPartial) -> Result<(), String> {
        total.merge(&next)
    }

    fn check_partial(&self, partial: &PorosityPartial) -> Result<(), String> {
        for (pores, of) in partial.pores.iter().zip(["original", "decoded"]) {
            pores
                .check()
                .map_err(|e| format!("pores of the {of}: {e}"))?;
        }
        Ok(())
    }

    fn finish(
        &self,
        _fit: &Classes,
        total: PorosityPartial,
        shape: &[usize],
    ) -> Result<Value, String> {
        Ok(total.json(self.pore_class, shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing;

    /// The figure's distributions are 65 nearest-rank quantiles of the diameters: the
    /// smallest, the largest and the median among them, whatever the number of pores.
    #[test]
    fn the_pore_size_figure_draws_quantiles_of_the_diameters() {
        let diameters: Vec<f64> = (1..=1001).map(f64::from).collect();
        let quantiles = diameter_quantiles(&diameters);
        assert_eq!(quantiles.len(), CDF_STEPS + 1);
        assert_eq!(
            (quantiles[0], quantiles[32], quantiles[64]),
            (1.0, 501.0, 1001.0)
        );
        assert_eq!(diameter_quantiles(&[2.5]), vec![2.5; CDF_STEPS + 1]);
        assert!(diameter_quantiles(&[]).is_empty());
        let results = json!({
            "diameter_quantiles_original": quantiles,
            "diameter_quantiles_decoded": [],
            "pore_count_original": 1001,
            "pore_count_decoded": 0,
            "diameter_ks_statistic": 1.0,
        });
        let figure = &figures(&results)[0];
        assert_eq!(figure.name, "pore-sizes");
        let curves = &figure.panels[0].curves;
        assert_eq!(curves[0].label, "original (1001 pores)");
        assert_eq!(curves[0].points[32], (501.0, 0.5));
        assert_eq!(curves[0].points[64], (1001.0, 1.0));
        assert!(curves[1].points.is_empty());
    }

    /// Pores cut by the slab boundaries (the components' open border rows) survive the bytes
    /// of another process: encoded, decoded and merged, the partials finish as the originals.
    #[test]
    fn encoded_partials_merge_as_the_originals() {
        let (x, y) = testing::frames(24, 16);
        for connectivity in ["face", "full"] {
            let porosity = testing::prepare(
                &format!(
                    "[[analysis]]\nkind = \"porosity\"\nmethod = \"value\"\nvalue = 2.0\nconnectivity = \"{connectivity}\"\n"
                ),
                &x,
            );
            let result = testing::check_round_trip(&*porosity, &x, &y, &[1, 5, 6, 13, 20]);
            assert!(
                result["pore_count_original"].as_u64().unwrap() > 1,
                "{result}"
            );
        }
    }
}
