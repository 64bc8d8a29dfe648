//! Presenting results: the text table printed after a run, and the report of a run
//! ([`write_report`]): `report.html`, one self-contained page that answers "which working point,
//! and why" on its first screen; `summary.md` for CI logs; PNG copies of the plots.
//!
//! - [`plots`]: the one figure type (lines, markers, acceptance band, marked point; SVG and PNG)
//!   and the report's figures;
//! - [`science`]: the analyses' own figures (I(q), ...), original against decoded, of the
//!   chosen point and of the first point that fails a science limit;
//! - [`style`]: the one plot style (sizes, font, colour-blind-safe colours);
//! - [`colour_scale`]: how the images' values become colours, and their colour bars;
//! - [`triptych`]: the original, decoded and difference slice of a point, as one image;
//! - [`html`]: the page; [`summary`]: the markdown summary.

pub mod colour_scale;
pub mod html;
pub mod plots;
pub mod science;
pub mod style;
pub mod summary;
pub mod triptych;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::metrics::values::short;
pub use crate::runner::slices::Triptych;
use crate::scenario::limits::{Limit, Objective};
use crate::select::evaluate::RowEvaluation;
use crate::select::{Selection, select};

use crate::metrics::comparison::BoundCheck;
use crate::metrics::values::{metric_value, plain};
use crate::runner::results::{NONFINITE_DECODED, PointResult, Rate, Status, swept_params};
use crate::scenario::Scenario;
use plots::Drawing;

/// How many columns [`text_table`] prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TableWidth {
    /// What decides the verdict, for a terminal 120 columns wide: the point, the swept
    /// parameters, the ratio, the limited columns and the objective, the verdict (and the
    /// `nonfinite_decoded` and `bound` columns when they apply); dotted names are folded onto
    /// two header lines (`segmentation.` above `dice_foreground`). `results.csv` keeps every
    /// column.
    #[default]
    Compact,
    /// Every column, one header line (`photonqa run --wide`).
    Wide,
}

/// One aligned text row per working point: id, swept parameters, rate, the metric columns that
/// `width` selects, and with limits in the scenario whether the point meets them (or which it
/// fails). When a stage of any point promises a bound, a `bound` column says `ok` or
/// `VIOLATED: ...` per point. When the decoded data of any point hold NaN or infinite values, a
/// `nonfinite_decoded` column after the rate counts them per point (such a point fails, even
/// without limits).
pub fn text_table(
    rows: &[PointResult],
    columns: &[String],
    scenario: &Scenario,
    width: TableWidth,
) -> String {
    let params = swept_params(rows);
    let bounds = rows.iter().any(|r| !r.bounds.is_empty());
    let nonfinite = rows.iter().any(|r| r.nonfinite().is_some());
    let mut shown: Vec<&str> = vec!["ratio"];
    if columns.iter().any(|c| c == "ratio_payload") {
        shown.push("ratio_payload");
    }
    if width == TableWidth::Wide {
        shown.push("bits_per_value");
    }
    if nonfinite {
        shown.push(NONFINITE_DECODED);
    }
    let metrics: Vec<&str> = match width {
        TableWidth::Wide => columns.iter().map(String::as_str).collect(),
        TableWidth::Compact => limited_columns(&scenario.limits)
            .into_iter()
            .chain([scenario.objective.column.as_str()])
            .collect(),
    };
    for column in metrics {
        if !shown.contains(&column) {
            shown.push(column);
        }
    }
    let mut header: Vec<String> = vec!["point".into()];
    header.extend(params.iter().map(|p| p.to_string()));
    header.extend(shown.iter().map(|c| match *c {
        "bits_per_value" => "bits/value".to_string(),
        c => c.to_string(),
    }));
    if bounds {
        header.push("bound".into());
    }
    header.push("status".into());
    let selection = select(rows, &scenario.limits, &scenario.objective);
    let body = rows.iter().enumerate().map(|(i, row)| {
        let mut cells = vec![row.point_id.clone()];
        cells.extend(
            params
                .iter()
                .map(|p| row.params.get(p).map(plain).unwrap_or_default()),
        );
        let fails = |column: &str| {
            width == TableWidth::Compact
                && row.nonfinite().is_none()
                && selection.evaluations[i]
                    .failed()
                    .any(|c| c.limit.column == column)
        };
        cells.extend(shown.iter().map(|c| {
            let value = cell(row, c);
            if fails(c) { value + "*" } else { value }
        }));
        if bounds {
            cells.push(BoundCheck::summary(&row.bounds).unwrap_or_else(|| "-".into()));
        }
        cells.push(match row.status {
            Status::Ok if scenario.limits.is_empty() && row.nonfinite().is_none() => "ok".into(),
            _ if width == TableWidth::Compact => short_verdict(&selection, i),
            _ => verdict(&selection, i),
        });
        cells
    });
    let mut table: Vec<Vec<String>> = match width {
        TableWidth::Wide => vec![header],
        TableWidth::Compact => {
            // `stage.parameter` and `analysis.column` split after their last dot: the long
            // analysis names no longer set the width of columns of short numbers.
            let (prefixes, names) = header
                .iter()
                .map(|h| match h.rfind('.') {
                    Some(dot) => (h[..=dot].to_string(), h[dot + 1..].to_string()),
                    None => (String::new(), h.clone()),
                })
                .unzip();
            vec![prefixes, names]
        }
    };
    table.extend(body);
    let mut text = aligned(&table);
    if let Some(note) = side_files_note(rows) {
        text = format!("{text}\n{note}");
    }
    text
}

/// What the rate of points with side files means (see [`crate::pipeline::side`]), when any of
/// `rows` has them: `ratio amortises 2048 bytes of side files over 4 arrays (512 bytes each,
/// on top of the stream); ratio_payload is the stream alone.`, one clause per distinct pair
/// of side bytes and arrays (with its number of points when there are several pairs).
pub fn side_files_note<'a>(rows: impl IntoIterator<Item = &'a PointResult>) -> Option<String> {
    let mut pairs: Vec<((u64, u64), usize)> = Vec::new();
    for rate in rows.into_iter().filter_map(|r| r.rate.as_ref()) {
        if let (Some(bytes), Some(arrays)) = (rate.side_bytes, rate.amortize_over) {
            match pairs.iter_mut().find(|(p, _)| *p == (bytes, arrays)) {
                Some((_, count)) => *count += 1,
                None => pairs.push(((bytes, arrays), 1)),
            }
        }
    }
    if pairs.is_empty() {
        return None;
    }
    let several = pairs.len() > 1;
    let clauses: Vec<String> = pairs
        .iter()
        .map(|&((bytes, arrays), points)| {
            let arrays_text = if arrays == 1 {
                "1 array (all of them charged to it".to_string()
            } else {
                format!(
                    "{arrays} arrays ({} bytes each",
                    format_metric(bytes as f64 / arrays as f64)
                )
            };
            let points = if several {
                format!(", {points} point{}", if points == 1 { "" } else { "s" })
            } else {
                String::new()
            };
            format!("{bytes} bytes of side files over {arrays_text}, on top of the stream{points})")
        })
        .collect();
    Some(format!(
        "ratio amortises {}; ratio_payload is the stream alone.",
        clauses.join("; ")
    ))
}

/// `table`'s rows as lines of cells left-aligned in columns two spaces apart (the last cell
/// unpadded, trailing spaces trimmed).
fn aligned(table: &[Vec<String>]) -> String {
    let columns = table[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    table
        .iter()
        .map(|cells| {
            cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (cell, w))| {
                    if i + 1 == columns {
                        cell.clone()
                    } else {
                        format!("{cell:<w$}")
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The answer of a run in plain text: one line per adaptive search (its outcome and how many
/// evaluations it took), then the recommendation's sentence.
pub fn answer(recommendation: &Value) -> String {
    let mut lines: Vec<String> = recommendation["searches"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let others = s["others"].as_object().map_or(String::new(), |o| {
                o.iter()
                    .map(|(k, v)| format!(" {k}={}", plain(v)))
                    .collect()
            });
            format!(
                "search {}{others}: {}",
                s["parameter"].as_str().unwrap_or_default(),
                s["summary"].as_str().unwrap_or_default()
            )
        })
        .collect();
    lines.push(
        recommendation["why"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    lines.join("\n")
}

/// The value of `column` in `row` as table text: a rate field (`ratio` and `ratio_payload` with 3 decimals,
/// `bits_per_value` with 4), `nonfinite_decoded`, or a metric or analysis column; counts as
/// integers, other numbers by [`format_metric`], non-finite values as `inf`, `-inf`, `nan`; `-`
/// when there is none.
pub fn cell(row: &PointResult, column: &str) -> String {
    if column == NONFINITE_DECODED {
        return row.nonfinite_decoded.map_or("-".into(), |n| n.to_string());
    }
    let value = match row.rate.as_ref().and_then(|r| r.get(column)) {
        Some(v) => match (column, metric_value(&v)) {
            ("ratio" | "ratio_payload", Some(x)) if x.is_finite() => return format!("{x:.3}"),
            ("bits_per_value", Some(x)) if x.is_finite() => return format!("{x:.4}"),
            _ => v,
        },
        None if Rate::COLUMNS.contains(&column) => return "-".into(),
        None => match row.value(column) {
            Some(v) => v.clone(),
            None => return "-".into(),
        },
    };
    match metric_value(&value) {
        // Counts (byte counts, pore counts and their change) print as integers.
        Some(_) if value.is_i64() || value.is_u64() => value.to_string(),
        Some(x) if x.is_finite() => format_metric(x),
        Some(_) => plain(&value),
        None => "-".into(),
    }
}

/// The accepted values of `column` under `limits` as text: `\u{2265} 0.9`, `\u{2264} 0.05`,
/// `0.1 to 0.2` (several limits on one column joined by `, `); empty when none applies.
pub fn bounds_text(limits: &[Limit], column: &str) -> String {
    limits
        .iter()
        .filter(|l| l.column == column)
        .map(|l| range_text(l.min, l.max))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Accepted values between optional bounds: `0.1 to 0.2`, `\u{2265} 0.9`, `\u{2264} 0.05`, `any`.
pub fn range_text(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(lo), Some(hi)) => format!("{} to {}", short(lo), short(hi)),
        (Some(lo), None) => format!("\u{2265} {}", short(lo)),
        (None, Some(hi)) => format!("\u{2264} {}", short(hi)),
        (None, None) => "any".into(),
    }
}

/// The limited columns, each once, in the order of the limits.
pub fn limited_columns(limits: &[Limit]) -> Vec<&str> {
    let mut columns: Vec<&str> = Vec::new();
    for limit in limits {
        if !columns.contains(&limit.column.as_str()) {
            columns.push(&limit.column);
        }
    }
    columns
}

/// The swept parameters of `rows`, in order of first appearance.
pub(crate) fn swept<'a>(rows: impl IntoIterator<Item = &'a PointResult>) -> Vec<&'a str> {
    let mut names: Vec<&'a str> = Vec::new();
    for key in rows.into_iter().flat_map(|r| r.params.keys()) {
        if !names.contains(&key.as_str()) {
            names.push(key);
        }
    }
    names
}

/// The judging criteria in one line: `Limits: ssim \u{2265} 0.9. Objective: maximise ratio. 2
/// of 5 points meet the limits.`
pub fn criteria(selection: &Selection) -> String {
    let limits = if selection.limits.is_empty() {
        "none declared".to_string()
    } else {
        limited_columns(selection.limits)
            .iter()
            .map(|c| format!("{c} {}", bounds_text(selection.limits, c)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let direction = if selection.objective.maximize {
        "maximise"
    } else {
        "minimise"
    };
    format!(
        "Limits: {limits}. Objective: {direction} {}. {} of {} points meet the limits.",
        selection.objective.column,
        selection.passing(),
        selection.evaluations.len()
    )
}

/// The point a report shows in detail: the chosen one (`true`: it passes) or, when none
/// passes, the closest one (`false`). Its triptych is the one to pass to [`write_report`]
/// (see [`crate::runner::slices::worst_slice`]).
pub fn featured<'a>(selection: &Selection<'a>) -> Option<(&'a PointResult, bool)> {
    featured_index(selection).map(|(i, passes)| (selection.evaluations[i].row, passes))
}

/// The first point in sweep order, other than the [`featured`] one, that was measured (no
/// error, finite decoded values) and fails a limit on a column starting with `prefix` (`""`:
/// any limit), with those failed limits as text (`saxs.chi2_reduced = 2.2, accepted \u{2264}
/// 1.5`). The report shows it beside the featured point, so that the user sees the margin and
/// the failure.
pub fn first_failing<'a>(
    selection: &Selection<'a>,
    prefix: &str,
) -> Option<(&'a PointResult, Vec<String>)> {
    let measured = |row: &PointResult| row.status == Status::Ok && row.nonfinite().is_none();
    let featured = featured(selection).map(|(row, _)| row.point_id.as_str());
    selection
        .evaluations
        .iter()
        .filter(|e| measured(e.row) && Some(e.row.point_id.as_str()) != featured)
        .filter_map(|e| {
            let failed: Vec<String> = e
                .failed()
                .filter(|c| c.limit.column.starts_with(prefix))
                .map(|c| {
                    let value = cell(e.row, &c.limit.column);
                    let bound = range_text(c.limit.min, c.limit.max);
                    format!("{} = {value}, accepted {bound}", c.limit.column)
                })
                .collect();
            (!failed.is_empty()).then_some((e.row, failed))
        })
        .min_by_key(|(row, _)| row.index)
}

/// [`featured`] as a position in the selection's evaluations.
pub(crate) fn featured_index(selection: &Selection) -> Option<(usize, bool)> {
    match (selection.chosen, selection.closest) {
        (Some(c), _) => Some((c, true)),
        (None, Some(c)) => Some((c, false)),
        (None, None) => None,
    }
}

/// The verdict on row `i` of a selection: `chosen`, `pass`, `closest; fails ssim 0.5 < min
/// 0.9`, `fails ...` or `error: <the point's error>`.
pub fn verdict(selection: &Selection, i: usize) -> String {
    verdict_with(selection, i, |e| e.reasons(selection.objective))
}

/// [`verdict`] for the compact table, whose failing cells are marked `*`: a failing point
/// says how many limits it fails, `fails 2 limits (*)`, so that its row stays within the
/// terminal (the recommendation line below the table names them).
fn short_verdict(selection: &Selection, i: usize) -> String {
    verdict_with(selection, i, |e| {
        if e.row.nonfinite().is_some() {
            return e.reasons(selection.objective);
        }
        let failed = e.failed().count();
        let mut reasons = Vec::new();
        if failed > 0 {
            let plural = if failed == 1 { "" } else { "s" };
            reasons.push(format!("{failed} limit{plural} (*)"));
        }
        if e.objective.is_err() {
            reasons.push(format!("objective {}", selection.objective.column));
        }
        reasons
    })
}

/// The verdict on row `i` of a selection, a failing row's reasons given by `reasons`.
fn verdict_with<'a>(
    selection: &Selection<'a>,
    i: usize,
    reasons: impl FnOnce(&RowEvaluation<'a>) -> Vec<String>,
) -> String {
    let e = &selection.evaluations[i];
    if e.row.status == Status::Error {
        return format!(
            "error: {}",
            e.row.error.as_deref().unwrap_or("no error recorded")
        );
    }
    if selection.chosen == Some(i) {
        return "chosen".into();
    }
    if e.passes() {
        return "pass".into();
    }
    let closest = if selection.closest == Some(i) {
        "closest; "
    } else {
        ""
    };
    format!("{closest}fails {}", reasons(e).join(", "))
}

/// Writes the report of a run to `out`:
///
/// - `out/report.html`: one self-contained page (inline CSS and SVG, the triptych as an
///   embedded PNG, no scripts): the recommendation sentence ([`Selection::why`]) with the
///   chosen (or closest) point's ratio and key metrics; the plots; every point with its
///   verdict and failed limits highlighted; the provenance manifest;
/// - `out/summary.md`: the sentence and a compact table for CI logs;
/// - `out/plots/NAME.png`: a PNG copy of every plot (`rd-psnr.png`, `metric-COLUMN.png`,
///   `error-histogram.png`, `triptych.png`; see [`plots::report_figures`]) and of every
///   analysis figure (`<analysis>-<figure>.png`, e.g. `saxs-iq.png`; see
///   [`science::science_figures`]).
///
/// `rows` are the run's rows (`RunSummary::rows`), `columns` its scalar columns
/// (`RunSummary::columns`); `limits` and `objective` judge the rows as
/// [`crate::select::select`] does; `triptychs` are the slice views (see
/// [`crate::runner::slices::worst_slice`]) of the featured point ([`featured`]) and, when
/// there is one, of the first point to fail a limit ([`first_failing`]), in that order:
/// `plots/triptych.png` and `plots/triptych-failing.png`, shown one above the other. Output
/// depends only on the arguments: the same rows give the same bytes. Every file is written
/// atomically. Returns the paths written; errors are one line naming the file.
pub fn write_report(
    out: &Path,
    scenario: &Scenario,
    rows: &[PointResult],
    columns: &[String],
    limits: &[Limit],
    objective: &Objective,
    triptychs: &[Triptych],
) -> Result<Vec<PathBuf>, String> {
    let selection = select(rows, limits, objective);
    let labels: Vec<&str> = scenario.analyses.iter().map(|a| a.label.as_str()).collect();
    let (figures, notes) = plots::report_figures(&selection, columns, &labels);
    let mut written = Vec::new();
    let mut write = |name: &str, bytes: &[u8]| -> Result<(), String> {
        let path = out.join(name);
        crate::data::write_atomically(&path, bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
        Ok(())
    };
    let drawn = draw_all(figures, out, &mut write)?;
    let science = draw_all(
        science::science_figures(scenario, &selection),
        out,
        &mut write,
    )?;
    let triptychs = triptychs
        .iter()
        .zip(["plots/triptych.png", "plots/triptych-failing.png"])
        .map(|(t, name)| {
            let scales = triptych::Scales::of(t);
            let png = triptych::png(t, &scales)
                .map_err(|e| format!("{}: {e}", out.join(name).display()))?;
            write(name, &png)?;
            Ok((t, png, triptych::caption(&scales)))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let page = html::Page {
        scenario,
        selection: &selection,
        columns,
        figures: &drawn,
        science: &science,
        notes: &notes,
        triptychs: &triptychs
            .iter()
            .map(|(t, png, caption)| (*t, png.as_slice(), caption.as_str()))
            .collect::<Vec<_>>(),
    };
    write("report.html", page.render().as_bytes())?;
    write(
        "summary.md",
        summary::markdown(&scenario.name, &selection).as_bytes(),
    )?;
    Ok(written)
}

/// Writes each figure's PNG into `out/plots/` with `write` and returns it with its markup
/// for the page ([`Drawing::markup`]: its SVG, or for an image its PNG).
fn draw_all<F: Drawing>(
    figures: Vec<F>,
    out: &Path,
    write: &mut impl FnMut(&str, &[u8]) -> Result<(), String>,
) -> Result<Vec<(F, String)>, String> {
    figures
        .into_iter()
        .map(|figure| {
            let name = format!("plots/{}.png", figure.name());
            let png = figure
                .png()
                .map_err(|e| format!("{}: {e}", out.join(&name).display()))?;
            write(&name, &png)?;
            let markup = figure
                .markup(&png)
                .map_err(|e| format!("{}: {e}", out.join("report.html").display()))?;
            Ok((figure, markup))
        })
        .collect()
}

/// A metric with 6 significant digits, scientific notation for very small or large values.
pub fn format_metric(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v == 0.0 || (1e-3..1e6).contains(&v.abs()) {
        let digits = (5 - v.abs().log10().floor().max(0.0) as i32).max(0) as usize;
        format!("{v:.digits$}")
    } else {
        format!("{v:.5e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_metrics_readably() {
        assert_eq!(format_metric(34.123456), "34.1235");
        assert_eq!(format_metric(0.00012345), "1.23450e-4");
        assert_eq!(format_metric(f64::INFINITY), "inf");
        assert_eq!(format_metric(0.0), "0.00000");
    }

    #[test]
    fn cells_show_counts_as_integers_and_non_finite_values_as_words() {
        use crate::select::evaluate::tests::{failed_row, row};
        let r = row(
            0,
            8.0,
            json!({"psnr": "inf", "mse": "nan", "ssim": 0.5, "frc": {"resolution": 0.25}}),
            json!({"porosity": {"pore_count_change": -18}}),
        );
        let cells: Vec<String> = [
            "ratio",
            "bits_per_value",
            "compressed_bytes",
            "psnr",
            "mse",
            "ssim",
            "frc.resolution",
            "porosity.pore_count_change",
            "nrmse",
        ]
        .iter()
        .map(|c| cell(&r, c))
        .collect();
        assert_eq!(
            cells,
            [
                "8.000", "4.0000", "125", "inf", "nan", "0.50000", "0.25000", "-18", "-"
            ]
        );
        assert_eq!(cell(&failed_row(1, "x"), "ratio"), "-");
    }

    #[test]
    fn a_run_without_points_still_gets_a_report_that_says_so() {
        let text = "[scenario]\nname = \"empty\"\n[input]\nsource = \"v.npy\"\n\
                    [[pipeline]]\nstage = \"zstd\"\n";
        let scenario = Scenario::parse(text, Path::new("s.toml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let limits = [Limit {
            column: "ssim".into(),
            min: Some(0.9),
            max: None,
        }];
        let written = write_report(
            dir.path(),
            &scenario,
            &[],
            &[],
            &limits,
            &Objective::default(),
            &[],
        )
        .unwrap();
        assert_eq!(
            written,
            [
                dir.path().join("report.html"),
                dir.path().join("summary.md")
            ]
        );
        let html = std::fs::read_to_string(&written[0]).unwrap();
        assert!(html.contains("No working point meets the limits: there are no points."));
        assert!(!html.contains("<svg"));
        assert!(html.contains("<li>ssim is not plotted: no point has a finite value.</li>"));
        let summary = std::fs::read_to_string(&written[1]).unwrap();
        assert!(summary.contains("0 of 0 points meet the limits."));
    }
}
