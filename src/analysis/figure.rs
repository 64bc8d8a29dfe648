//! What an analysis's figure shows, as plain data: the analysis picks the curves out of its
//! results (original against decoded), the report ([`crate::report::science`]) draws them.
//!
//! Keeping the drawing in the report and the choice of data here means a new analysis with a
//! figure stays one file plus one registry line ([`super::registry::AnalysisDef::figures`]),
//! and the analysis layer never imports the report.

use serde_json::Value;

use crate::metrics::values::metric_value;

/// What a curve is: it sets the curve's colour and dash in the report's one plot style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Computed from the original data.
    Original,
    /// Computed from the decoded data.
    Decoded,
    /// A difference of decoded and original (or its bound, e.g. one error bar).
    Difference,
}

/// A named polyline (`markers`: a dot at each point instead of a line).
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Legend text.
    pub label: String,
    /// Its role, which sets its colour.
    pub role: Role,
    /// The points, finite only, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Dots instead of a line.
    pub markers: bool,
}

/// A range of x marked on a panel (e.g. the Guinier range), with its legend text.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Legend text.
    pub label: String,
    /// Its ends, `from < to`.
    pub from: f64,
    /// See `from`.
    pub to: f64,
}

/// One plot of a figure: axes, curves, marked ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Horizontal axis title.
    pub x_label: String,
    /// Vertical axis title.
    pub y_label: String,
    /// Logarithmic x (positive values only).
    pub log_x: bool,
    /// Logarithmic y (positive values only).
    pub log_y: bool,
    /// The curves, drawn in order.
    pub curves: Vec<Curve>,
    /// Marked ranges of x.
    pub spans: Vec<Span>,
}

/// A figure of one working point: panels stacked top to bottom, the first the largest.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureData {
    /// What it shows, the second part of its file name `<analysis>-<name>.png` (`iq`).
    pub name: &'static str,
    /// Title of the figure.
    pub title: String,
    /// The panels, at least one.
    pub panels: Vec<Panel>,
    /// Sentences for the caption (what is drawn, what was left out).
    pub notes: Vec<String>,
}

/// The number at `key` of a results object, when it is one (`"inf"`, `"nan"` included).
pub fn number(results: &Value, key: &str) -> Option<f64> {
    results.get(key).and_then(metric_value)
}

/// The numbers of the array at `key` of a results object, `None` for its nulls and
/// non-numbers; empty when there is no such array.
pub fn numbers(results: &Value, key: &str) -> Vec<Option<f64>> {
    results.get(key).map(values).unwrap_or_default()
}

/// The numbers of the array `array`, `None` for its nulls and non-numbers; empty when it is
/// not an array.
pub fn values(array: &Value) -> Vec<Option<f64>> {
    array
        .as_array()
        .map(|a| a.iter().map(metric_value).collect())
        .unwrap_or_default()
}

/// The points `(x, y)` of two parallel arrays where both are finite and, on a logarithmic
/// axis, positive.
pub fn pairs(
    x: &[Option<f64>],
    y: &[Option<f64>],
    (log_x, log_y): (bool, bool),
) -> Vec<(f64, f64)> {
    let fits = |v: Option<f64>, log: bool| v.filter(|v| v.is_finite() && (!log || *v > 0.0));
    x.iter()
        .zip(y)
        .filter_map(|(&x, &y)| Some((fits(x, log_x)?, fits(y, log_y)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pairs_keep_only_points_the_axes_can_show() {
        let results = json!({"x": [1.0, 2.0, null, 4.0, 5.0], "y": [1.0, -2.0, 3.0, "nan", 5.0]});
        let (x, y) = (numbers(&results, "x"), numbers(&results, "y"));
        assert_eq!(
            pairs(&x, &y, (false, false)),
            [(1.0, 1.0), (2.0, -2.0), (5.0, 5.0)]
        );
        assert_eq!(pairs(&x, &y, (true, true)), [(1.0, 1.0), (5.0, 5.0)]);
        assert_eq!(number(&results, "z"), None);
        assert!(numbers(&results, "z").is_empty());
    }
}
