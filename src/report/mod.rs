//! Presenting results: the text table printed after a run.

use serde_json::Value;

use crate::runner::results::{BoundCheck, PointResult, Status, metric_value, plain, swept_params};
use crate::scenario::Scenario;
use crate::select::RowEvaluation;

/// One aligned text row per working point: id, swept parameters, rate, selected metrics, and
/// with limits in the scenario whether the point meets them (or which it fails). When a stage
/// of any point promises a bound, a `bound` column says `ok` or `VIOLATED: ...` per point.
pub fn text_table(rows: &[PointResult], columns: &[String], scenario: &Scenario) -> String {
    let params = swept_params(rows);
    let bounds = rows.iter().any(|r| !r.bounds.is_empty());
    let mut header: Vec<String> = vec!["point".into()];
    header.extend(params.iter().map(|p| p.to_string()));
    header.extend(["ratio", "bits/value"].map(String::from));
    header.extend(columns.iter().cloned());
    if bounds {
        header.push("bound".into());
    }
    header.push("status".into());
    let mut table = vec![header];
    for row in rows {
        let mut cells = vec![row.point_id.clone()];
        cells.extend(
            params
                .iter()
                .map(|p| row.params.get(p).map(plain).unwrap_or_default()),
        );
        match &row.rate {
            Some(rate) => cells.extend([
                format!("{:.3}", rate.ratio),
                format!("{:.4}", rate.bits_per_value),
            ]),
            None => cells.extend(["-".to_string(), "-".to_string()]),
        }
        cells.extend(columns.iter().map(|c| {
            match row.value(c) {
                // Counts (pore counts and their change) print as integers.
                Some(v) if v.is_i64() || v.is_u64() => v.to_string(),
                v => v.and_then(metric_value).map_or("-".into(), format_metric),
            }
        }));
        if bounds {
            cells.push(BoundCheck::summary(&row.bounds).unwrap_or_else(|| "-".into()));
        }
        cells.push(match row.status {
            Status::Ok if scenario.limits.is_empty() => "ok".into(),
            Status::Ok => {
                let verdict = RowEvaluation::of(row, &scenario.limits, &scenario.objective);
                let failed: Vec<String> = verdict
                    .failed()
                    .map(|c| format!("{} {}", c.limit.column, c.reason().unwrap_or_default()))
                    .collect();
                if failed.is_empty() {
                    "pass".into()
                } else {
                    format!("fail: {}", failed.join(", "))
                }
            }
            Status::Error => format!("error: {}", row.error.as_deref().unwrap_or("")),
        });
        table.push(cells);
    }
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
pub fn verdict(recommendation: &Value) -> String {
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

    #[test]
    fn formats_metrics_readably() {
        assert_eq!(format_metric(34.123456), "34.1235");
        assert_eq!(format_metric(0.00012345), "1.23450e-4");
        assert_eq!(format_metric(f64::INFINITY), "inf");
        assert_eq!(format_metric(0.0), "0.00000");
    }
}
