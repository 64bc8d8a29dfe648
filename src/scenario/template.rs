//! A commented, runnable starting scenario for a user's data (`photonqa init`): the input, a
//! sweep suited to its values, the technique's analyses, and limits left as suggestions.
//!
//! The sweeps are starting points, not recommendations: photonqa's answer comes from running
//! them. Counting data (non-negative integers) get the lossless base, Poisson-aware
//! quantisation (error in Poisson sigmas) and SZ3 with absolute bounds in counts; other data
//! get bit rounding, linear quantisation, SZ3 bounded relative to each chunk's range and ZFP
//! with absolute tolerances scaled to the data's range.

use std::fmt::Write;

use crate::data::DType;
use crate::metrics::ssim::{SsimWindow, check_shape};

/// The kind of measurement the data come from: it chooses the analyses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Technique {
    /// Tomography volumes or projections: segmentation and porosity (Otsu).
    Tomo,
    /// A 2-D small-angle scattering pattern: counting statistics, and I(q) once the geometry
    /// is filled in.
    Saxs,
    /// A series of speckle frames: g2(q, tau) in rings around the beam.
    Xpcs,
    /// Serial crystallography frames: Bragg peaks.
    Sx,
    /// Distortion metrics only.
    Generic,
}

impl Technique {
    /// The techniques by name, in `--technique` order.
    pub const ALL: [Technique; 5] = [
        Technique::Tomo,
        Technique::Saxs,
        Technique::Xpcs,
        Technique::Sx,
        Technique::Generic,
    ];

    /// Its `--technique` name.
    pub fn name(self) -> &'static str {
        match self {
            Technique::Tomo => "tomo",
            Technique::Saxs => "saxs",
            Technique::Xpcs => "xpcs",
            Technique::Sx => "sx",
            Technique::Generic => "generic",
        }
    }

    /// The technique named `name`; the error lists the names.
    pub fn parse(name: &str) -> Result<Technique, String> {
        Technique::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Technique::ALL.iter().map(|t| t.name()).collect();
                format!("--technique {name}: unknown (one of {})", names.join(", "))
            })
    }

    /// The technique data like `facts` most likely come from: float volumes (or projection
    /// stacks) are tomography, a 2-D counting pattern is SAXS; anything else is generic (say
    /// `--technique` for XPCS and SX series, which look alike).
    pub fn guess(facts: &InputFacts) -> Technique {
        match (facts.counts_like, facts.shape.len()) {
            (false, 3) if facts.dtype.is_float() => Technique::Tomo,
            (true, 2) => Technique::Saxs,
            _ => Technique::Generic,
        }
    }
}

/// What `init` knows of the input (from one pass over it).
#[derive(Debug, Clone)]
pub struct InputFacts {
    /// The input as the scenario names it (relative to the scenario file).
    pub source: String,
    /// Shape, rank 2 or 3.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Non-negative integer values (photon counts), whatever the dtype.
    pub counts_like: bool,
}

/// The scenario's TOML text for data `facts` of technique `technique`, named `name`.
pub fn scenario_toml(name: &str, facts: &InputFacts, technique: Technique) -> String {
    let mut toml = String::new();
    let shape: Vec<String> = facts.shape.iter().map(usize::to_string).collect();
    let _ = writeln!(
        toml,
        "# Starting scenario written by `photonqa init` for {} ({} {}, values {} .. {}{}).\n\
         # Technique: {}. Edit the sweeps and limits, then: photonqa run THIS_FILE\n\
         # Every stage, metric and analysis: docs/reference.md, or `photonqa reference`.\n",
        facts.source,
        shape.join("x"),
        facts.dtype.name(),
        round_to_digits(facts.min, 6),
        round_to_digits(facts.max, 6),
        if facts.counts_like { ", counts" } else { "" },
        technique.name()
    );
    let _ = writeln!(
        toml,
        "[scenario]\nname = {}\ndescription = \"{} data: lossless base against lossy pipelines\"\n",
        quoted(name),
        technique.name()
    );
    let _ = writeln!(
        toml,
        "[input]\n# Relative to this file.\nsource = {}\n",
        quoted(&facts.source)
    );
    if facts.counts_like {
        counting_variants(&mut toml);
    } else {
        float_variants(&mut toml, facts);
    }
    let ssim = check_shape(&facts.shape, SsimWindow::Gaussian).is_ok();
    let metrics = if ssim {
        "[\"psnr\", \"nrmse\", \"max_abs_error\", \"ssim\"]"
    } else {
        "[\"psnr\", \"nrmse\", \"max_abs_error\"]"
    };
    let _ = writeln!(toml, "[metrics]\ndistortion = {metrics}\n");
    let limits = analyses(&mut toml, technique, facts);
    toml.push_str(
        "# Limits: the science must stay within them; the recommended point is the one with the\n\
         # highest ratio that meets all. Uncomment and set them from what your science tolerates.\n\
         [limits]\n",
    );
    for limit in limits {
        let _ = writeln!(toml, "# {limit}");
    }
    toml.push_str("# psnr = { min = 40.0 }\n");
    toml
}

/// The pipelines of counting data: lossless, Poisson-aware quantisation, SZ3 in counts.
fn counting_variants(toml: &mut String) {
    toml.push_str(
        "# The lossless base: bitshuffle + zstd (what detectors write by default).\n\
         [[variant]]\nname = \"lossless\"\n\n\
         [[variant.pipeline]]\nstage = \"bitshuffle\"\n\n\
         [[variant.pipeline]]\nstage = \"zstd\"\nlevel = 3\n\n\
         # Counts quantised after the Anscombe transform: error in Poisson sigmas.\n\
         [[variant]]\nname = \"poisson\"\n\n\
         [[variant.pipeline]]\nstage = \"poisson\"\nstep = { sweep = [0.25, 0.5, 1.0, 2.0] }\n\
         dtype = \"uint16\"\n\n\
         [[variant.pipeline]]\nstage = \"bitshuffle\"\n\n\
         [[variant.pipeline]]\nstage = \"zstd\"\nlevel = 3\n\n\
         # SZ3 with an absolute bound in counts.\n\
         [[variant]]\nname = \"sz3\"\n\n\
         [[variant.pipeline]]\nstage = \"sz3\"\nmode = \"abs\"\n\
         abs_error = { sweep = [0.5, 1.0, 2.0, 4.0] }\n\n",
    );
}

/// The pipelines of other data: bit rounding (floats), linear quantisation, SZ3 relative to
/// each chunk's range, ZFP with tolerances scaled to the data's range.
fn float_variants(toml: &mut String, facts: &InputFacts) {
    toml.push_str(
        "# The lossless base: byte shuffle + zstd.\n\
         [[variant]]\nname = \"lossless\"\n\n\
         [[variant.pipeline]]\nstage = \"shuffle\"\n\n\
         [[variant.pipeline]]\nstage = \"zstd\"\nlevel = 3\n\n",
    );
    if matches!(facts.dtype, DType::Float32 | DType::Float64) {
        toml.push_str(
            "# Mantissa bits kept (float32 has 23), then lossless.\n\
             [[variant]]\nname = \"bitround\"\n\n\
             [[variant.pipeline]]\nstage = \"bitround\"\nkeepbits = { sweep = [4, 6, 8, 10, 12] }\n\n\
             [[variant.pipeline]]\nstage = \"zstd\"\nlevel = 3\n\n",
        );
    }
    toml.push_str(
        "# Linear quantisation over the data's range to 2^bits levels.\n\
         [[variant]]\nname = \"quantize\"\n\n\
         [[variant.pipeline]]\nstage = \"quantize\"\ndtype = \"uint16\"\n\
         bits = { sweep = [6, 8, 10, 12] }\n\n\
         [[variant.pipeline]]\nstage = \"zstd\"\nlevel = 3\n\n\
         # SZ3, error bounded relative to each chunk's value range.\n\
         [[variant]]\nname = \"sz3\"\n\n\
         [[variant.pipeline]]\nstage = \"sz3\"\nmode = \"rel\"\n\
         rel_error = { sweep = [1e-4, 1e-3, 1e-2] }\n\n",
    );
    let range = facts.max - facts.min;
    if range > 0.0 && range.is_finite() {
        let tolerances: Vec<String> = [1e-4, 1e-3, 1e-2]
            .iter()
            .map(|f| format!("{:e}", round_to_digits(f * range, 3)))
            .collect();
        let _ = writeln!(
            toml,
            "# ZFP, absolute tolerances of 1e-4, 1e-3 and 1e-2 of the data's range ({range:e}).\n\
             [[variant]]\nname = \"zfp\"\n\n\
             [[variant.pipeline]]\nstage = \"zfp\"\nmode = \"accuracy\"\n\
             tolerance = {{ sweep = [{}] }}\n",
            tolerances.join(", ")
        );
    }
}

/// Writes the technique's analyses; returns the suggested limits on their columns.
fn analyses(toml: &mut String, technique: Technique, facts: &InputFacts) -> Vec<&'static str> {
    match technique {
        Technique::Tomo => {
            toml.push_str(
                "# The science: Otsu's two phases and the pores (class 0: at or below the\n\
                 # threshold), original against decoded.\n\
                 [[analysis]]\nkind = \"segmentation\"\nmethod = \"otsu\"\n\n\
                 [[analysis]]\nkind = \"porosity\"\nmethod = \"otsu\"\npore_class = 0\n\n",
            );
            vec![
                "\"segmentation.dice_foreground\" = { min = 0.99 }",
                "\"porosity.porosity_abs_change\" = { max = 0.005 }",
            ]
        }
        Technique::Saxs => {
            toml.push_str(
                "# The error in Poisson sigmas, pixel by pixel.\n\
                 [[analysis]]\nkind = \"counting\"\n\n\
                 # I(q), Guinier Rg and the Porod invariant need the geometry: fill it in and\n\
                 # uncomment (or give a q map: q_map = \"file.h5::/path\").\n\
                 # [[analysis]]\n# kind = \"saxs\"\n# beam_x = 0.0       # pixels\n\
                 # beam_y = 0.0\n# pixel_size = 75e-6 # m\n# distance = 2.0     # m\n\
                 # wavelength = 1e-10 # m\n\n",
            );
            vec![
                "\"counting.sigma_error_p99\" = { max = 1.0 }",
                "# \"saxs.rel_error_max\" = { max = 0.01 }",
            ]
        }
        Technique::Xpcs => {
            toml.push_str(
                "# g2(q, tau) in rings around the beam (default: the frame's centre; set\n\
                 # beam_x, beam_y), fitted per ring.\n\
                 [[analysis]]\nkind = \"xpcs\"\n\n\
                 [[analysis]]\nkind = \"counting\"\n\n",
            );
            vec![
                "\"xpcs.tau_c_rel_change_max\" = { max = 0.05 }",
                "\"counting.sigma_error_p99\" = { max = 1.0 }",
            ]
        }
        Technique::Sx => {
            toml.push_str(
                "# Bragg peaks per frame (set beam_x, beam_y; default: the frame's centre).\n\
                 [[analysis]]\nkind = \"sx\"\n\n",
            );
            vec![
                "\"sx.recall\" = { min = 0.98 }",
                "\"sx.precision\" = { min = 0.98 }",
            ]
        }
        Technique::Generic if facts.counts_like => {
            toml.push_str(
                "# The error in Poisson sigmas, pixel by pixel.\n\
                 [[analysis]]\nkind = \"counting\"\n\n",
            );
            vec!["\"counting.sigma_error_p99\" = { max = 1.0 }"]
        }
        Technique::Generic => vec!["nrmse = { max = 0.01 }"],
    }
}

/// `value` rounded to `digits` significant decimal digits.
fn round_to_digits(value: f64, digits: i32) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return value;
    }
    let magnitude = value.abs().log10().floor() as i32;
    let factor = 10f64.powi(digits - 1 - magnitude);
    (value * factor).round() / factor
}

/// `text` as a TOML basic string.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}
