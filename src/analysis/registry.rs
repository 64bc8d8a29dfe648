//! Every analysis a scenario can select in `[[analysis]]`: a new one is a file in `analysis/`
//! plus one line in [`ANALYSES`].

use super::porosity::Porosity;
use super::segmentation::Segmentation;
use super::{Context, DynAnalysis};
use super::{counting, saxs, sx, xpcs};
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
    /// Checks the parameters that depend on each other (and fills in derived ones) when the
    /// scenario is read.
    pub complete: Option<Complete>,
    /// Prepares it for a run; `None` for `command`, which the runner runs itself
    /// (`runner::external`).
    pub prepare: Option<Prepare>,
    /// Its figures of one working point, from the point's results (which hold the original's
    /// and the decoded data's quantities); the report draws them ([`crate::report::science`]).
    /// `None` for an analysis without figures.
    pub figures: Option<Figures>,
}

/// An analysis's check of its parameters together; the error names them.
pub type Complete = fn(&mut StageConfig) -> Result<(), String>;

/// An analysis's figures of one point, from its results object: what to draw, as plain data.
pub type Figures = fn(&serde_json::Value) -> Vec<super::figure::FigureData>;

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
pub static ANALYSES: &[&AnalysisDef] = &[
    &SEGMENTATION,  // class maps: Dice, IoU, boundary F1
    &POROSITY,      // pores as connected components
    &counting::DEF, // error in Poisson sigmas
    &saxs::DEF,     // I(q), Guinier, Porod
    &xpcs::DEF,     // g2, tau_c, beta
    &sx::DEF,       // Bragg peaks
    &COMMAND,       // a user program
];

static SEGMENTATION: AnalysisDef = AnalysisDef {
    kind: "segmentation",
    doc: "threshold shift, phase fractions, Dice and IoU per class, boundary F1 within 1 voxel",
    params: &SEGMENT_PARAMS,
    columns: &[
        "threshold_shift_max",
        "dice_foreground",
        "fraction_change_max",
        "boundary_f1",
    ],
    complete: Some(complete_segmenting),
    prepare: Some(Segmentation::prepare),
    figures: Some(super::segmentation::figures),
};

static POROSITY: AnalysisDef = AnalysisDef {
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
    complete: Some(complete_segmenting),
    prepare: Some(Porosity::prepare),
    figures: Some(super::porosity::figures),
};

static COMMAND: AnalysisDef = AnalysisDef {
    kind: "command",
    doc: "a user program: `run` gets the original and the decoded array as .npy files ({original}, {decoded}) and prints one JSON object of metrics",
    params: &[
        ParamDef {
            name: "run",
            kind: ParamKind::Command,
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
    complete: Some(complete_command),
    prepare: None,
    figures: None,
};

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
    ANALYSES.iter().find(|a| a.kind == kind).copied()
}

/// All kinds, in registry order.
pub fn kinds() -> Vec<&'static str> {
    ANALYSES.iter().map(|a| a.kind).collect()
}

/// Checks the parameters of an analysis that depend on each other, as its registry entry
/// says (nothing for an analysis without [`AnalysisDef::complete`]).
pub fn complete(config: &mut StageConfig) -> Result<(), String> {
    match find(config.stage).and_then(|def| def.complete) {
        Some(check) => check(config),
        None => Ok(()),
    }
}

/// `command`: `run` is required and uses both placeholders.
fn complete_command(config: &mut StageConfig) -> Result<(), String> {
    if !config.params.iter().any(|(n, _)| *n == "run") {
        return Err("`run` is required".into());
    }
    for placeholder in ["{original}", "{decoded}"] {
        if !config.str("run").contains(placeholder) {
            return Err(format!("run must use {placeholder}"));
        }
    }
    Ok(())
}

/// The analyses that segment: `classes` only with multiotsu (then 3 by default), `value`
/// required with and only with `method = "value"`, `pore_class` below the number of classes.
/// Fills in the derived `classes`.
fn complete_segmenting(config: &mut StageConfig) -> Result<(), String> {
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
