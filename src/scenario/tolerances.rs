//! Tolerances of the gate: how far a value may move from its baseline before it is a drift.
//! The comparison itself is the gate's (`gate::tolerance`, `gate::check`).
//!
//! A scenario declares them in `[gate.tolerances]`, keyed by column (or by a metric or
//! analysis name, which covers all of its `name.field` columns):
//!
//! ```toml
//! [gate.tolerances]
//! psnr = { rel = 1e-6 }
//! "segmentation.dice_foreground" = { abs = 1e-9 }
//! porosity = { abs = 1e-12 }              # every porosity.* column
//! compressed_bytes = { rel = 1e-3 }       # loosen an exact integer column
//! default = { rel = 1e-9, abs = 1e-12 }   # every other float value
//! ```
//!
//! # Which tolerance a value gets
//!
//! 1. its column's own entry (`"frc.resolution"`), else the entry of the part before the first
//!    dot (`frc`);
//! 2. else, when the baseline and the run both hold a JSON **integer** (no fraction, no
//!    exponent: `1234`, not `1234.0`), [`Tolerance::EXACT`]. This covers `original_bytes`,
//!    `compressed_bytes` and counts such as `porosity.pore_count_change`: a count that moves by
//!    one has changed, and a relative tolerance on a count of 10^10 bytes would hide a change of
//!    ten. Float metrics are written as JSON floats even when whole (`4.0`), so they never fall
//!    under this rule;
//! 3. else `default` ([`Tolerances::DEFAULT`] unless the scenario sets it).
//!
//! An entry states the whole tolerance: a field it leaves out is 0, so `{ rel = 1e-6 }` is
//! purely relative and `{ abs = 0 }` is exact. `abs = inf` records a column without gating it.

use std::collections::BTreeMap;

use super::toml_number;

/// The rate's gated columns, first in every baseline.
pub const RATE_COLUMNS: [&str; 4] = [
    "original_bytes",
    "compressed_bytes",
    "ratio",
    "bits_per_value",
];

/// The rate's columns of the side information of learned codecs (see
/// [`crate::pipeline::side`]): a scenario whose stages declare side files has them (gated, after
/// the rate columns); others do not, so their results and baselines are as before. A point
/// without side files has `ratio_payload = ratio` and `side_bytes = 0`.
pub const SIDE_COLUMNS: [&str; 2] = ["ratio_payload", "side_bytes"];

/// The rate's timing columns: never gated, since they measure the machine and its load, not
/// the pipeline.
pub const TIMING_COLUMNS: [&str; 2] = ["encode_mb_s", "decode_mb_s"];

/// The gated columns of a run with the metric columns `columns`: [`RATE_COLUMNS`], then
/// `columns` in order, without repeats and without [`TIMING_COLUMNS`].
pub fn gated_columns(columns: &[String]) -> Vec<String> {
    let mut gated: Vec<String> = RATE_COLUMNS.iter().map(|c| c.to_string()).collect();
    for column in columns {
        if !TIMING_COLUMNS.contains(&column.as_str()) && !gated.contains(column) {
            gated.push(column.clone());
        }
    }
    gated
}

/// An invalid entry of `[gate.tolerances]`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("[gate.tolerances]{}{key}: {message}", if .key.is_empty() { "" } else { " " })]
pub struct ToleranceError {
    /// The entry's key, quoted as in TOML when it is not a bare key (empty: the table).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// How far a value may move: it passes when `|new - old| <= max(abs, rel * |old|)`, with `old`
/// the baseline's value.
///
/// The relative part scales with the value (PSNR in dB, MSE near 1e-6 alike); the absolute part
/// keeps values near 0 (a mean error, a KS statistic of identical data) from failing on
/// rounding noise that the relative part, scaled by almost nothing, cannot absorb.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Absolute slack, in the column's unit; `>= 0`.
    pub abs: f64,
    /// Relative slack, as a fraction of `|old|`; `>= 0`.
    pub rel: f64,
}

impl Tolerance {
    /// No slack at all: the values must be equal.
    pub const EXACT: Tolerance = Tolerance { abs: 0.0, rel: 0.0 };
}

impl std::fmt::Display for Tolerance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (abs, rel) = (plain_number(self.abs), plain_number(self.rel));
        match (self.abs == 0.0, self.rel == 0.0) {
            (true, true) => write!(f, "exact"),
            (false, true) => write!(f, "abs {abs}"),
            (true, false) => write!(f, "rel {rel}"),
            (false, false) => write!(f, "rel {rel}, abs {abs}"),
        }
    }
}

/// The tolerances of a scenario: per-column entries and a default for float values.
#[derive(Debug, Clone, PartialEq)]
pub struct Tolerances {
    /// Entries by column or metric name.
    columns: BTreeMap<String, Tolerance>,
    /// The tolerance of float values without an entry.
    default: Tolerance,
}

impl Default for Tolerances {
    /// No entries, [`Tolerances::DEFAULT`] for floats, integers exact.
    fn default() -> Self {
        Tolerances {
            columns: BTreeMap::new(),
            default: Tolerances::DEFAULT,
        }
    }
}

impl Tolerances {
    /// The default for float values: `rel = 1e-9, abs = 1e-12`.
    ///
    /// A run is deterministic (fixed chunking, merges in chunk order), so the same build on the
    /// same machine reproduces every value bit for bit. The slack is for what differs between
    /// machines and toolchains: the last bits of libm's `log10`, `exp` and `pow` (a few ULP,
    /// about 1e-16 relative each) amplified through sums over millions of values and
    /// cancellations (variance, skewness), which stays orders of magnitude below 1e-9. A real
    /// change of the pipeline moves metrics by far more (a quantisation step moves PSNR by
    /// tenths of a dB). `abs = 1e-12` covers values that should be 0 and come out as 1e-17.
    pub const DEFAULT: Tolerance = Tolerance {
        abs: 1e-12,
        rel: 1e-9,
    };

    /// Parses the value of a scenario's `[gate.tolerances]` table (see the module docs).
    ///
    /// Each key is a column, a metric or analysis name, or `default`; each value is a table
    /// with `abs` and/or `rel`, numbers `>= 0` (integers allowed, `inf` allowed, NaN not).
    /// Errors name the key: unknown fields, a value that is not a table, an empty table, a
    /// negative or NaN number, a timing column (never gated).
    pub fn from_toml(table: &toml::Value) -> Result<Tolerances, ToleranceError> {
        let table = table.as_table().ok_or_else(|| ToleranceError {
            key: String::new(),
            message: format!("expected a table, found {}", table.type_str()),
        })?;
        let mut tolerances = Tolerances::default();
        for (key, entry) in table {
            let tolerance = parse_entry(key, entry)?;
            if key == "default" {
                tolerances.default = tolerance;
            } else if TIMING_COLUMNS.contains(&key.as_str()) {
                return Err(ToleranceError {
                    key: toml_key(key),
                    message: "timing is never gated (it depends on the machine)".into(),
                });
            } else {
                tolerances.columns.insert(key.clone(), tolerance);
            }
        }
        Ok(tolerances)
    }

    /// Sets the entry of `key` (a column or a metric name).
    pub fn set(&mut self, key: &str, tolerance: Tolerance) -> &mut Self {
        self.columns.insert(key.to_string(), tolerance);
        self
    }

    /// Sets the tolerance of float values without an entry.
    pub fn set_default(&mut self, tolerance: Tolerance) -> &mut Self {
        self.default = tolerance;
        self
    }

    /// The tolerance of float values without an entry.
    pub fn default_tolerance(&self) -> Tolerance {
        self.default
    }

    /// The entry that applies to `column`, with its key: the column's own, else its metric's
    /// (the part before the first dot).
    pub fn entry(&self, column: &str) -> Option<(&str, Tolerance)> {
        let metric = column.split_once('.').map(|(m, _)| m);
        [Some(column), metric]
            .into_iter()
            .flatten()
            .find_map(|key| self.columns.get_key_value(key))
            .map(|(k, t)| (k.as_str(), *t))
    }

    /// Checks that every entry names one of `columns` (the gated columns of the run, see
    /// [`gated_columns`]) or the metric of one, so that a misspelt key is an
    /// error instead of a tolerance that silently applies to nothing.
    pub fn check_columns(&self, columns: &[String]) -> Result<(), ToleranceError> {
        for key in self.columns.keys() {
            let known = columns
                .iter()
                .any(|c| c == key || c.split_once('.').is_some_and(|(m, _)| m == key));
            if !known {
                return Err(ToleranceError {
                    key: toml_key(key),
                    message: format!(
                        "no such gated column or metric (columns: {})",
                        columns.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }
}

/// One entry: `{ abs = .., rel = .. }`.
fn parse_entry(key: &str, entry: &toml::Value) -> Result<Tolerance, ToleranceError> {
    let err = |message: String| ToleranceError {
        key: toml_key(key),
        message,
    };
    let fields = entry.as_table().ok_or_else(|| {
        err(format!(
            "expected a table such as {{ rel = 1e-9, abs = 1e-12 }}, found {}",
            entry.type_str()
        ))
    })?;
    if fields.is_empty() {
        return Err(err(
            "give abs, rel or both (`{ abs = 0 }` is exact)".to_string()
        ));
    }
    let mut tolerance = Tolerance::EXACT;
    for (field, value) in fields {
        let Some(number) = toml_number(value) else {
            return Err(err(format!(
                "{field} must be a number, found {}",
                value.type_str()
            )));
        };
        if number.is_nan() {
            return Err(err(format!("{field} is NaN")));
        }
        if number < 0.0 {
            return Err(err(format!(
                "{field} = {} is negative",
                plain_number(number)
            )));
        }
        match field.as_str() {
            "abs" => tolerance.abs = number,
            "rel" => tolerance.rel = number,
            other => {
                return Err(err(format!(
                    "unknown field {} (expected abs, rel)",
                    toml_key(other)
                )));
            }
        }
    }
    Ok(tolerance)
}

/// `key` as written in TOML: bare when it can be, else quoted.
pub(crate) fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// A number as short as it reads back exactly: `1e-9`, `0.5`, `1000`.
pub(crate) fn plain_number(x: f64) -> String {
    if x != 0.0 && x.is_finite() && !(1e-4..1e15).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Tolerances, ToleranceError> {
        let doc: toml::Value = toml::from_str(text).unwrap();
        Tolerances::from_toml(&doc["gate"]["tolerances"])
    }

    fn message(text: &str) -> String {
        let err = parse(text).unwrap_err().to_string();
        assert!(!err.contains('\n'), "{err}");
        err
    }

    #[test]
    fn parses_entries_and_default() {
        let t = parse(
            r#"
            [gate.tolerances]
            psnr = { rel = 1e-6 }
            "segmentation.dice_foreground" = { abs = 1e-9 }
            compressed_bytes = { abs = 16 }
            default = { rel = 1e-8, abs = 1e-11 }
            [gate.tolerances.porosity]
            abs = 0
            "#,
        )
        .unwrap();
        assert_eq!(
            t.entry("psnr"),
            Some((
                "psnr",
                Tolerance {
                    abs: 0.0,
                    rel: 1e-6
                }
            ))
        );
        assert_eq!(
            t.entry("segmentation.dice_foreground").unwrap().1,
            Tolerance {
                abs: 1e-9,
                rel: 0.0
            }
        );
        assert_eq!(t.entry("segmentation.boundary_f1"), None);
        assert_eq!(
            t.entry("porosity.pore_count_change"),
            Some(("porosity", Tolerance::EXACT))
        );
        assert_eq!(t.entry("compressed_bytes").unwrap().1.abs, 16.0);
        assert_eq!(
            t.default_tolerance(),
            Tolerance {
                abs: 1e-11,
                rel: 1e-8
            }
        );
        assert_eq!(t.entry("mse"), None);
    }

    #[test]
    fn empty_table_gives_the_documented_defaults() {
        let t = parse("[gate.tolerances]").unwrap();
        assert_eq!(t, Tolerances::default());
        assert_eq!(
            t.default_tolerance(),
            Tolerance {
                abs: 1e-12,
                rel: 1e-9
            }
        );
    }

    #[test]
    fn column_entry_wins_over_metric_entry() {
        let mut t = Tolerances::default();
        t.set("frc", Tolerance { abs: 1.0, rel: 0.0 })
            .set("frc.resolution", Tolerance { abs: 2.0, rel: 0.0 });
        assert_eq!(t.entry("frc.resolution").unwrap().0, "frc.resolution");
        assert_eq!(t.entry("frc.other").unwrap().0, "frc");
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(
            message("[gate.tolerances]\npsnr = { rel = -1e-6 }"),
            "[gate.tolerances] psnr: rel = -1e-6 is negative"
        );
        assert_eq!(
            message("[gate.tolerances]\n\"ssim\" = { abs = nan }"),
            "[gate.tolerances] ssim: abs is NaN"
        );
        assert_eq!(
            message("[gate.tolerances]\n\"segmentation.dice\" = { absolute = 1 }"),
            "[gate.tolerances] \"segmentation.dice\": unknown field absolute (expected abs, rel)"
        );
        assert_eq!(
            message("[gate.tolerances]\npsnr = 1e-6"),
            "[gate.tolerances] psnr: expected a table such as { rel = 1e-9, abs = 1e-12 }, found float"
        );
        assert_eq!(
            message("[gate.tolerances]\npsnr = { rel = \"1e-6\" }"),
            "[gate.tolerances] psnr: rel must be a number, found string"
        );
        assert_eq!(
            message("[gate.tolerances]\npsnr = {}"),
            "[gate.tolerances] psnr: give abs, rel or both (`{ abs = 0 }` is exact)"
        );
        assert_eq!(
            message("[gate.tolerances]\nencode_mb_s = { rel = 1 }"),
            "[gate.tolerances] encode_mb_s: timing is never gated (it depends on the machine)"
        );
        assert_eq!(
            message("[gate]\ntolerances = 3"),
            "[gate.tolerances]: expected a table, found integer"
        );
    }

    #[test]
    fn check_columns_rejects_unknown_keys() {
        let mut t = Tolerances::default();
        t.set("psnr", Tolerance::EXACT)
            .set("porosity", Tolerance::EXACT);
        let columns: Vec<String> = ["compressed_bytes", "psnr", "porosity.pore_count_change"]
            .map(String::from)
            .to_vec();
        t.check_columns(&columns).unwrap();
        t.set("psnrr", Tolerance::EXACT);
        assert_eq!(
            t.check_columns(&columns).unwrap_err().to_string(),
            "[gate.tolerances] psnrr: no such gated column or metric (columns: compressed_bytes, psnr, porosity.pore_count_change)"
        );
    }

    #[test]
    fn displays_tolerances_briefly() {
        assert_eq!(Tolerances::DEFAULT.to_string(), "rel 1e-9, abs 1e-12");
        assert_eq!(Tolerance::EXACT.to_string(), "exact");
        assert_eq!(Tolerance { abs: 0.5, rel: 0.0 }.to_string(), "abs 0.5");
        assert_eq!(
            Tolerance {
                abs: 0.0,
                rel: 1e-6
            }
            .to_string(),
            "rel 1e-6"
        );
    }
}
