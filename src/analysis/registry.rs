//! Every analysis a scenario can select in `[[analysis]]`: a new one is a file in `analysis/`
//! plus one line in [`ANALYSES`].

use super::counting::Counting;
use super::porosity::Porosity;
use super::segmentation::Segmentation;
use super::sx::Sx;
use super::{Context, DynAnalysis};
use crate::pipeline::params::{ANY_FLOAT, Default, ParamDef, ParamKind, StageConfig};

/// A registered analysis.
#[derive(Debug, Clone, Copy)]
pub struct AnalysisDef {
    /// `kind` in scenarios, key of its results.
    pub kind: &'static str,
    /// One-line description.
    pub doc: &'static str,
    /// Accepted parameters.
    pub params: &'static [ParamDef],
    /// The scalar fields shown in tables and CSV columns as `kind.field`.
    pub columns: &'static [&'static str],
    /// Prepares it for a run; `None` for `command`, which the runner runs itself
    /// ([`crate::runner::external`]).
    pub prepare: Option<Prepare>,
}

/// An analysis's constructor: its configuration, checked against the data.
pub type Prepare = fn(&StageConfig, &mut Context) -> Result<Box<dyn DynAnalysis>, String>;

/// How a class map is made from values: the parameters every analysis that segments shares.
const SEGMENT_PARAMS: [ParamDef; 3] = [
    ParamDef {
        name: "method",
        kind: ParamKind::Choice(&["otsu", "multiotsu", "value"]),
        default: Default::Str("otsu"),
        doc: "thresholds: scikit-image threshold_otsu, threshold_multiotsu, or `value`; fitted separately on the original and on the decoded data",
    },
    ParamDef {
        name: "classes",
        kind: ParamKind::Int { min: 3, max: 5 },
        default: Default::Derived("3 with method = \"multiotsu\""),
        doc: "number of classes of multiotsu",
    },
    ParamDef {
        name: "value",
        kind: ANY_FLOAT,
        default: Default::Derived("required with method = \"value\""),
        doc: "fixed threshold: foreground = values > value",
    },
];

/// The registered analyses.
pub static ANALYSES: &[AnalysisDef] = &[
    AnalysisDef {
        kind: "segmentation",
        doc: "threshold shift, phase fractions, Dice and IoU per class, boundary F1 within 1 voxel",
        params: &SEGMENT_PARAMS,
        columns: &[
            "threshold_shift_max",
            "dice_foreground",
            "fraction_change_max",
            "boundary_f1",
        ],
        prepare: Some(Segmentation::prepare),
    },
    AnalysisDef {
        kind: "porosity",
        doc: "porosity, pores as connected components (count, equivalent diameters, size distribution distance), specific surface",
        params: &[
            SEGMENT_PARAMS[0],
            SEGMENT_PARAMS[1],
            SEGMENT_PARAMS[2],
            ParamDef {
                name: "pore_class",
                kind: ParamKind::Int { min: 0, max: 4 },
                default: Default::Int(0),
                doc: "the class that is pore space (0: values at or below the (lowest) threshold)",
            },
            ParamDef {
                name: "connectivity",
                kind: ParamKind::Choice(&["face", "full"]),
                default: Default::Str("face"),
                doc: "pore voxels connect through faces (scipy.ndimage.label's default) or also edges and corners",
            },
        ],
        columns: &[
            "porosity_abs_change",
            "pore_count_change",
            "diameter_ks_statistic",
            "specific_surface_change",
        ],
        prepare: Some(Porosity::prepare),
    },
    AnalysisDef {
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
        prepare: Some(Counting::prepare),
    },
    AnalysisDef {
        kind: "sx",
        doc: "Bragg peaks per frame (peakfinder8-like radial background, SNR threshold, 8-connected pixels): recall, precision, integrated intensity error, hit rate",
        params: &[
            ParamDef {
                name: "snr_threshold",
                kind: ANY_FLOAT,
                default: Default::Float(6.0),
                doc: "peak pixels: I - mu > snr_threshold * sigma of their radial bin; > 0",
            },
            ParamDef {
                name: "clip_snr",
                kind: ANY_FLOAT,
                default: Default::Float(3.0),
                doc: "pixels with I - mu > clip_snr * sigma leave the radial background estimate (peakfinder8: = snr_threshold); > 0",
            },
            ParamDef {
                name: "adc_threshold",
                kind: ANY_FLOAT,
                default: Default::Float(0.0),
                doc: "peak pixels also have I > adc_threshold",
            },
            ParamDef {
                name: "min_pixels",
                kind: ParamKind::Int {
                    min: 1,
                    max: 1_000_000,
                },
                default: Default::Int(2),
                doc: "smallest peak (pixels)",
            },
            ParamDef {
                name: "max_pixels",
                kind: ParamKind::Int {
                    min: 1,
                    max: 1_000_000,
                },
                default: Default::Int(200),
                doc: "largest peak (pixels), >= min_pixels",
            },
            ParamDef {
                name: "iterations",
                kind: ParamKind::Int { min: 1, max: 100 },
                default: Default::Int(10),
                doc: "passes of the radial background estimate that drop bright pixels",
            },
            ParamDef {
                name: "beam_y",
                kind: ANY_FLOAT,
                default: Default::Derived("the frame's centre (ny - 1) / 2"),
                doc: "beam centre row (pixels), centre of the radial background bins",
            },
            ParamDef {
                name: "beam_x",
                kind: ANY_FLOAT,
                default: Default::Derived("the frame's centre (nx - 1) / 2"),
                doc: "beam centre column (pixels)",
            },
            ParamDef {
                name: "match_radius",
                kind: ANY_FLOAT,
                default: Default::Float(2.0),
                doc: "largest centroid distance (pixels) of a matched original/decoded peak pair; > 0",
            },
            ParamDef {
                name: "hit_threshold",
                kind: ParamKind::Int {
                    min: 1,
                    max: 1_000_000,
                },
                default: Default::Int(10),
                doc: "a frame with at least this many peaks is a hit",
            },
        ],
        columns: &[
            "recall",
            "precision",
            "intensity_rel_error_mean",
            "hit_rate_change",
            "peaks_per_frame_original",
        ],
        prepare: Some(Sx::prepare),
    },
    AnalysisDef {
        kind: "command",
        doc: "a user program: `run` gets the original and the decoded array as .npy files ({original}, {decoded}) and prints one JSON object of metrics",
        params: &[
            ParamDef {
                name: "run",
                kind: ParamKind::Text,
                default: Default::Derived("required"),
                doc: "shell command using {original} and {decoded}; its stdout is one JSON object",
            },
            ParamDef {
                name: "timeout",
                kind: ParamKind::Float {
                    min: 0.001,
                    max: 86_400.0,
                },
                default: Default::Float(600.0),
                doc: "seconds one run may take before it is killed",
            },
            ParamDef {
                name: "fields",
                kind: ParamKind::Text,
                default: Default::Derived("none"),
                doc: "comma-separated fields of its JSON shown as columns `label.field`",
            },
        ],
        columns: &[],
        prepare: None,
    },
];

/// The column fields of an analysis: its registered ones, or for `command` those its `fields`
/// parameter lists.
pub fn fields(config: &StageConfig) -> Vec<String> {
    match config.stage {
        "command" if config.params.iter().any(|(n, _)| *n == "fields") => config
            .str("fields")
            .split(',')
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty())
            .collect(),
        kind => find(kind)
            .map(|def| def.columns.iter().map(|c| c.to_string()).collect())
            .unwrap_or_default(),
    }
}

/// The analysis of kind `kind`.
pub fn find(kind: &str) -> Option<&'static AnalysisDef> {
    ANALYSES.iter().find(|a| a.kind == kind)
}

/// All kinds, in registry order.
pub fn kinds() -> Vec<&'static str> {
    ANALYSES.iter().map(|a| a.kind).collect()
}

/// Checks the parameters that depend on each other: `classes` only with multiotsu (then 3 by
/// default), `value` required with and only with `method = "value"`, `pore_class` below the
/// number of classes. Fills in the derived `classes`.
pub fn complete(config: &mut StageConfig) -> Result<(), String> {
    if config.stage == "command" {
        if !config.params.iter().any(|(n, _)| *n == "run") {
            return Err("`run` is required".into());
        }
        for placeholder in ["{original}", "{decoded}"] {
            if !config.str("run").contains(placeholder) {
                return Err(format!("run must use {placeholder}"));
            }
        }
        return Ok(());
    }
    match config.stage {
        "sx" => return super::sx::complete(config),
        "counting" => return Ok(()),
        _ => {}
    }
    let method = config.str("method").to_string();
    let has = |config: &StageConfig, name: &str| config.params.iter().any(|(n, _)| *n == name);
    if has(config, "classes") && method != "multiotsu" {
        return Err("classes applies only to method = \"multiotsu\"".into());
    }
    if method == "multiotsu" && !has(config, "classes") {
        config
            .params
            .push(("classes", crate::pipeline::ParamValue::Int(3)));
    }
    match (method.as_str(), has(config, "value")) {
        ("value", false) => return Err("method = \"value\" needs `value`".into()),
        ("value", true) | (_, false) => {}
        (_, true) => return Err("value applies only to method = \"value\"".into()),
    }
    let classes = if method == "multiotsu" {
        config.int("classes")
    } else {
        2
    };
    if has(config, "pore_class") && config.int("pore_class") >= classes {
        return Err(format!(
            "pore_class = {} but the segmentation has {classes} classes (0..={})",
            config.int("pore_class"),
            classes - 1
        ));
    }
    Ok(())
}
