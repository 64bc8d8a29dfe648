//! The recommended working point: the best passing point by the objective, or the closest point
//! when none passes, and `OUT/recommendation.json`.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::evaluate::{RowEvaluation, evaluate};
use crate::metrics::comparison::BoundCheck;
use crate::metrics::values::metric_json;
use crate::metrics::values::short;
use crate::runner::results::PointResult;
use crate::scenario::limits::{Limit, Objective};

/// The sentence (and `why` prefix) when no point passes.
pub const NONE_PASSES: &str = "no working point meets the limits";

/// The rows judged against the limits and the point chosen among them.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection<'a> {
    /// The limits.
    pub limits: &'a [Limit],
    /// The objective.
    pub objective: &'a Objective,
    /// Every row's verdict, in row order.
    pub evaluations: Vec<RowEvaluation<'a>>,
    /// Position in `evaluations` of the chosen point; `None` when no point passes.
    pub chosen: Option<usize>,
    /// Other passing points with exactly the chosen point's objective value.
    pub ties: usize,
    /// When no point passes: position of the one closest to passing (fewest failures, then
    /// smallest worst relative violation, then lowest sweep index).
    pub closest: Option<usize>,
}

/// Judges `rows` against `limits` and chooses the passing point with the best `objective`.
///
/// Ties on the objective (exactly equal values, as from equal compressed sizes) go to the
/// larger smallest relative margin (the point with the most headroom on its tightest limit),
/// then to the lower sweep index, then to the smaller point id: the choice depends only on the
/// rows, not on their order.
pub fn select<'a>(
    rows: &'a [PointResult],
    limits: &'a [Limit],
    objective: &'a Objective,
) -> Selection<'a> {
    let evaluations = evaluate(rows, limits, objective);
    let by_sweep = |a: &RowEvaluation, b: &RowEvaluation| {
        a.row
            .index
            .cmp(&b.row.index)
            .then_with(|| a.row.point_id.cmp(&b.row.point_id))
    };
    let value = |e: &RowEvaluation| e.objective.clone().unwrap_or(f64::NAN);
    let chosen = (0..evaluations.len())
        .filter(|&i| evaluations[i].passes())
        .min_by(|&i, &j| {
            let (a, b) = (&evaluations[i], &evaluations[j]);
            objective
                .rank(value(a), value(b))
                .then_with(|| {
                    b.smallest_relative_margin()
                        .total_cmp(&a.smallest_relative_margin())
                })
                .then_with(|| by_sweep(a, b))
        });
    let ties = chosen.map_or(0, |c| {
        let best = value(&evaluations[c]);
        evaluations
            .iter()
            .filter(|e| e.passes() && objective.rank(value(e), best) == Ordering::Equal)
            .count()
            - 1
    });
    let closest = match chosen {
        Some(_) => None,
        None => (0..evaluations.len()).min_by(|&i, &j| {
            let (a, b) = (&evaluations[i], &evaluations[j]);
            a.failures()
                .cmp(&b.failures())
                .then_with(|| a.worst_violation().total_cmp(&b.worst_violation()))
                .then_with(|| by_sweep(a, b))
        }),
    };
    Selection {
        limits,
        objective,
        evaluations,
        chosen,
        ties,
        closest,
    }
}

impl Selection<'_> {
    /// How many points pass.
    pub fn passing(&self) -> usize {
        self.evaluations.iter().filter(|e| e.passes()).count()
    }

    /// One sentence on the choice: which point, its objective value among how many passing
    /// points, its tightest limit and any tie; or [`NONE_PASSES`] and what the closest point
    /// fails.
    pub fn why(&self) -> String {
        let total = self.evaluations.len();
        let Some(chosen) = self.chosen.map(|c| &self.evaluations[c]) else {
            let Some(closest) = self.closest.map(|c| &self.evaluations[c]) else {
                return format!("{NONE_PASSES}: there are no points");
            };
            return format!(
                "{NONE_PASSES}; the closest is point {} (index {}), which fails {}",
                closest.row.point_id,
                closest.row.index,
                closest.reasons(self.objective).join(", ")
            );
        };
        let objective = &self.objective.column;
        let value = chosen.objective.clone().unwrap_or(f64::NAN);
        let among = match self.limits.len() {
            0 => format!("of the {total} points (no limits are declared)"),
            1 => format!(
                "of the {} of {total} points that meet the limit",
                self.passing()
            ),
            n => format!(
                "of the {} of {total} points that meet all {n} limits",
                self.passing()
            ),
        };
        let mut sentence = format!(
            "point {} (index {}) has the {} {objective} ({}) {among}",
            chosen.row.point_id,
            chosen.row.index,
            self.objective.superlative(),
            short(value)
        );
        let tightest = chosen
            .checks
            .iter()
            .filter_map(|c| Some((c, c.margin()?)))
            .min_by(|(_, a), (_, b)| a.relative().total_cmp(&b.relative()));
        if let Some((check, margin)) = tightest {
            sentence += &format!(
                "; its tightest limit is {} (margin {})",
                check.describe(),
                short(margin.margin)
            );
        }
        // A codec that broke its own promise may still meet the limits here; whoever deploys
        // it must know that its bound does not hold.
        if let Some(violated) = BoundCheck::summary(&chosen.row.bounds)
            .filter(|summary| summary.starts_with("VIOLATED"))
        {
            sentence += &format!("; beware, its stage's promised bound is {violated}");
        }
        if self.ties > 0 {
            sentence += &format!(
                "; {} other point{} tie on {objective}, broken by the larger smallest relative margin, then the lower index",
                self.ties,
                if self.ties == 1 { "" } else { "s" }
            );
        }
        sentence
    }

    /// The content of `recommendation.json` (see [`recommendation`]).
    pub fn to_json(&self) -> Value {
        let point = |e: &RowEvaluation| {
            json!({
                "point_id": e.row.point_id,
                "index": e.row.index,
                "params": e.row.params,
                "objective": e.objective.as_ref().map_or(Value::Null, |v| metric_json(*v)),
            })
        };
        let chosen = self.chosen.map_or(Value::Null, |c| {
            let e = &self.evaluations[c];
            let mut value = point(e);
            value["margins"] = e.checks.iter().map(|c| c.to_json()).collect();
            value
        });
        let closest = self.closest.map_or(Value::Null, |c| {
            let e = &self.evaluations[c];
            let mut value = point(e);
            value["failed"] = e.to_json(self.objective)["failed"].take();
            value
        });
        json!({
            "objective": self.objective.to_json(),
            "limits": self.limits.iter().map(Limit::to_json).collect::<Vec<_>>(),
            "chosen": chosen,
            "why": self.why(),
            "counts": {"passing": self.passing(), "total": self.evaluations.len()},
            "closest": closest,
            "points": self
                .evaluations
                .iter()
                .map(|e| e.to_json(self.objective))
                .collect::<Vec<_>>(),
        })
    }
}

/// The content of `OUT/recommendation.json` for `rows` under `limits` and `objective`:
///
/// ```json
/// {
///   "objective": {"column": "ratio", "direction": "max"},
///   "limits": [{"column": "ssim", "min": 0.95}],
///   "chosen": {"point_id": "..", "index": 3, "params": {..}, "objective": 12.5,
///              "margins": [{"column": "ssim", "min": 0.95, "value": 0.97, "bound": "min",
///                           "margin": 0.02, "relative_margin": 0.021}]},
///   "why": "point .. (index 3) has the highest ratio (12.5) of the 4 of 10 points that ...",
///   "counts": {"passing": 4, "total": 10},
///   "closest": null,
///   "points": [{"point_id": "..", "index": 0, "pass": false, "objective": 20.1,
///               "failed": [{"column": "ssim", .., "reason": "below min"}]}, ..]
/// }
/// ```
///
/// When no point passes, `chosen` is null, `why` starts with [`NONE_PASSES`] and `closest` is
/// the point closest to passing (`point_id`, `index`, `params`, `objective`, `failed`).
/// Non-finite numbers are the strings `"inf"`, `"-inf"`, `"nan"`.
pub fn recommendation(rows: &[PointResult], limits: &[Limit], objective: &Objective) -> Value {
    select(rows, limits, objective).to_json()
}

/// Writes `recommendation` to `OUT/recommendation.json` atomically (a temporary file, then a
/// rename) and returns its path.
pub fn write_recommendation(out: &Path, recommendation: &Value) -> Result<PathBuf, String> {
    let path = out.join("recommendation.json");
    let mut text = serde_json::to_string_pretty(recommendation)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    text.push('\n');
    crate::data::write_atomically(&path, text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::evaluate::Unusable;
    use crate::select::evaluate::tests::{failed_row, max, min, row};
    use std::fs;

    #[test]
    fn the_best_passing_point_is_chosen_with_margins_in_the_json() {
        let rows = [
            row(0, 2.0, json!({"ssim": 0.875, "psnr": "inf"}), json!({})),
            row(1, 4.0, json!({"ssim": 0.75, "psnr": 50.0}), json!({})),
            row(2, 8.0, json!({"ssim": 0.5, "psnr": 40.0}), json!({})),
        ];
        let limits = [min("ssim", 0.625), min("psnr", 40.0)];
        let objective = Objective::default();
        let selection = select(&rows, &limits, &objective);
        assert_eq!(selection.chosen, Some(1));
        assert_eq!(selection.passing(), 2);
        let value = selection.to_json();
        assert_eq!(
            value["chosen"],
            json!({
                "point_id": "p1", "index": 1, "params": {"sz3.abs": 0.5}, "objective": 4.0,
                "margins": [
                    {"column": "ssim", "min": 0.625, "value": 0.75, "bound": "min",
                     "margin": 0.125, "relative_margin": 0.2},
                    {"column": "psnr", "min": 40.0, "value": 50.0, "bound": "min",
                     "margin": 10.0, "relative_margin": 0.25},
                ],
            })
        );
        assert_eq!(
            value["why"],
            "point p1 (index 1) has the highest ratio (4) of the 2 of 3 points that meet all 2 limits; its tightest limit is ssim 0.75 >= min 0.625 (margin 0.125)"
        );
        assert_eq!(value["counts"], json!({"passing": 2, "total": 3}));
        assert_eq!(value["closest"], Value::Null);
        assert_eq!(
            value["objective"],
            json!({"column": "ratio", "direction": "max"})
        );
        assert_eq!(
            value["limits"],
            json!([{"column": "ssim", "min": 0.625}, {"column": "psnr", "min": 40.0}])
        );
        assert_eq!(
            value["points"][0],
            json!({"point_id": "p0", "index": 0, "pass": true, "objective": 2.0, "failed": []})
        );
        assert_eq!(
            value["points"][2]["failed"],
            json!([{"column": "ssim", "min": 0.625, "value": 0.5, "bound": "min",
                    "margin": -0.125, "relative_margin": -0.2, "reason": "below min"}])
        );
        // Point 2 sits exactly on the PSNR bound: it passes that limit.
        assert_eq!(value["points"][2]["failed"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn inf_psnr_passes_and_its_infinite_margin_serialises() {
        let rows = [row(0, 3.0, json!({"psnr": "inf"}), json!({}))];
        let limits = [min("psnr", 60.0)];
        let objective = Objective::default();
        let value = recommendation(&rows, &limits, &objective);
        assert_eq!(
            value["chosen"]["margins"],
            json!([{"column": "psnr", "min": 60.0, "value": "inf", "bound": "min",
                    "margin": "inf", "relative_margin": "inf"}])
        );
        assert_eq!(
            value["why"],
            "point p0 (index 0) has the highest ratio (3) of the 1 of 1 points that meet the limit; its tightest limit is psnr inf >= min 60 (margin inf)"
        );
        // And it is valid JSON text.
        let text = serde_json::to_string(&value).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
    }

    #[test]
    fn ties_go_to_the_larger_smallest_margin_then_the_lower_index() {
        let limits = [min("ssim", 0.5), max("porosity.porosity_abs_change", 0.25)];
        let objective = Objective::default();
        let science = |change: f64| json!({"porosity": {"porosity_abs_change": change}});
        // Same ratio: p1 has more headroom on its tightest limit (relative margin 0.5 on
        // porosity) than p0 (0.25 on ssim).
        let rows = [
            row(0, 4.0, json!({"ssim": 0.625}), science(0.125)),
            row(1, 4.0, json!({"ssim": 0.875}), science(0.125)),
            row(2, 2.0, json!({"ssim": 1.0}), science(0.0)),
        ];
        let selection = select(&rows, &limits, &objective);
        assert_eq!(selection.chosen, Some(1));
        assert_eq!(selection.ties, 1);
        assert_eq!(
            selection.why(),
            "point p1 (index 1) has the highest ratio (4) of the 3 of 3 points that meet all 2 limits; its tightest limit is porosity.porosity_abs_change 0.125 <= max 0.25 (margin 0.125); 1 other point tie on ratio, broken by the larger smallest relative margin, then the lower index"
        );
        // Equal margins too: the lower sweep index wins, whatever the row order.
        let same = [
            row(5, 4.0, json!({"ssim": 0.75}), science(0.0)),
            row(3, 4.0, json!({"ssim": 0.75}), science(0.0)),
            row(4, 4.0, json!({"ssim": 0.75}), science(0.0)),
        ];
        let selection = select(&same, &limits, &objective);
        assert_eq!(
            selection.evaluations[selection.chosen.unwrap()].row.index,
            3
        );
        assert_eq!(selection.ties, 2);
        assert!(selection.why().contains("; 2 other points tie on ratio"));
    }

    #[test]
    fn a_minimised_objective_picks_the_lowest_value() {
        let rows = [
            row(0, 2.0, json!({"ssim": 0.9}), json!({})),
            row(1, 4.0, json!({"ssim": 0.9}), json!({})),
        ];
        let objective = Objective::parse("min bits_per_value").unwrap();
        let selection = select(&rows, &[], &objective);
        assert_eq!(selection.chosen, Some(1));
        assert_eq!(
            selection.why(),
            "point p1 (index 1) has the lowest bits_per_value (8) of the 2 points (no limits are declared)"
        );
    }

    #[test]
    fn no_passing_point_names_the_closest_and_what_it_fails() {
        let rows = [
            failed_row(0, "sz3: bound must be > 0"),
            row(1, 8.0, json!({"ssim": 0.25, "psnr": 20.0}), json!({})),
            row(2, 4.0, json!({"ssim": 0.5, "psnr": "nan"}), json!({})),
            row(3, 2.0, json!({"ssim": 0.75}), json!({})),
        ];
        let limits = [min("ssim", 0.875), min("psnr", 30.0)];
        let objective = Objective::default();
        let value = recommendation(&rows, &limits, &objective);
        assert_eq!(value["chosen"], Value::Null);
        assert_eq!(value["counts"], json!({"passing": 0, "total": 4}));
        // Rows 1 to 3 fail both limits (row 0 also has no ratio); rows 2 and 3 have no usable
        // PSNR (an infinite violation), row 1 misses by finite amounts.
        assert_eq!(
            value["closest"],
            json!({
                "point_id": "p1", "index": 1, "params": {"sz3.abs": 0.5}, "objective": 8.0,
                "failed": [
                    {"column": "ssim", "min": 0.875, "value": 0.25, "bound": "min",
                     "margin": -0.625, "relative_margin": -0.625 / 0.875, "reason": "below min"},
                    {"column": "psnr", "min": 30.0, "value": 20.0, "bound": "min",
                     "margin": -10.0, "relative_margin": -10.0 / 30.0, "reason": "below min"},
                ],
            })
        );
        assert_eq!(
            value["why"],
            "no working point meets the limits; the closest is point p1 (index 1), which fails ssim 0.25 < min 0.875, psnr 20 < min 30"
        );
        assert!(value["why"].as_str().unwrap().starts_with(NONE_PASSES));
        assert_eq!(value["points"][2]["failed"][1]["reason"], "nan");
        assert_eq!(value["points"][3]["failed"][1]["reason"], "missing");
        assert_eq!(
            value["points"][0]["failed"][0]["reason"],
            "point failed: sz3: bound must be > 0"
        );
    }

    #[test]
    fn the_closest_point_fails_the_fewest_limits() {
        let rows = [
            row(0, 8.0, json!({"ssim": 0.0, "psnr": 10.0}), json!({})),
            row(1, 2.0, json!({"psnr": 50.0}), json!({})),
        ];
        let limits = [min("ssim", 0.875), min("psnr", 30.0)];
        let objective = Objective::default();
        let selection = select(&rows, &limits, &objective);
        assert_eq!(selection.closest, Some(1));
        assert_eq!(
            selection.why(),
            "no working point meets the limits; the closest is point p1 (index 1), which fails ssim missing"
        );
    }

    #[test]
    fn rows_without_an_objective_value_are_not_chosen() {
        let rows = [
            row(0, 2.0, json!({"psnr": 30.0}), json!({})),
            row(1, 4.0, json!({"psnr": "nan"}), json!({})),
        ];
        let objective = Objective::parse("max psnr").unwrap();
        let selection = select(&rows, &[], &objective);
        assert_eq!(selection.chosen, Some(0));
        let only_nan = [rows[1].clone()];
        let selection = select(&only_nan, &[], &objective);
        assert_eq!(selection.chosen, None);
        assert_eq!(
            selection.why(),
            "no working point meets the limits; the closest is point p1 (index 1), which fails objective psnr nan"
        );
        assert_eq!(
            selection.to_json()["closest"]["failed"],
            json!([{"objective": "psnr", "reason": "nan"}])
        );
    }

    /// A point whose decoded data hold NaN or infinities fails every limit (rate and science
    /// columns too) for that one reason, has no objective value, is never chosen (not even
    /// without limits, where it has the best ratio) and is on no Pareto front, however good
    /// the values it carries look.
    #[test]
    fn points_with_nonfinite_decoded_values_fail_everything_and_are_never_chosen() {
        let looks_perfect = json!({"psnr": 90.0, "max_abs_error": 0.0, "frc": {"resolution": 1.0}});
        let mut invalid = row(0, 16.0, looks_perfect, json!({"seg": {"dice": 1.0}}));
        invalid.nonfinite_decoded = Some(11873);
        let distortion = json!({"psnr": 50.0, "max_abs_error": 0.001, "frc": {"resolution": 0.5}});
        let rows = [
            invalid,
            row(1, 4.0, distortion, json!({"seg": {"dice": 0.99}})),
        ];
        let objective = Objective::default();
        let limits = vec![
            max("max_abs_error", 0.001),
            min("psnr", 40.0),
            min("ratio", 2.0),
            min("seg.dice", 0.9),
            min("frc.resolution", 0.5),
        ];
        let reason = "11873 decoded values are NaN or infinite";
        for limits in [Vec::new(), limits] {
            let selection = select(&rows, &limits, &objective);
            assert_eq!(selection.chosen, Some(1), "{limits:?}");
            let e = &selection.evaluations[0];
            assert!(!e.passes());
            assert_eq!(e.failures(), limits.len() + 1);
            assert_eq!(e.objective, Err(Unusable::NonfiniteDecoded(11873)));
            assert!(
                e.checks
                    .iter()
                    .all(|c| c.reason().as_deref() == Some(reason))
            );
            assert_eq!(e.reasons(&objective), [format!("every limit: {reason}")]);
            assert_eq!(selection.to_json()["points"][0]["pass"], false);
        }
        let fronts = crate::select::fronts(&rows, &objective, &["psnr".into()], &[]);
        assert_eq!(fronts[0].points, [1]);
        // Alone, it is the closest point, and the sentence says why it fails.
        let selection = select(&rows[..1], &[], &objective);
        assert_eq!(
            selection.why(),
            format!(
                "{NONE_PASSES}; the closest is point p0 (index 0), which fails every limit: {reason}"
            )
        );
    }

    #[test]
    fn no_rows_means_no_choice() {
        let objective = Objective::default();
        let selection = select(&[], &[], &objective);
        assert_eq!((selection.chosen, selection.closest), (None, None));
        assert_eq!(
            selection.why(),
            "no working point meets the limits: there are no points"
        );
    }

    #[test]
    fn the_recommendation_is_written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let rows = [row(0, 2.0, json!({"ssim": 0.9}), json!({}))];
        let value = recommendation(&rows, &[min("ssim", 0.5)], &Objective::default());
        let path = write_recommendation(dir.path(), &value).unwrap();
        assert_eq!(path, dir.path().join("recommendation.json"));
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
        assert!(!dir.path().join(".recommendation.json.tmp").exists());
        // A file where the output folder should be.
        let blocker = dir.path().join("blocker");
        fs::write(&blocker, b"").unwrap();
        let err = write_recommendation(&blocker, &value).unwrap_err();
        assert!(err.starts_with(&blocker.join("recommendation.json").display().to_string()));
    }
}
