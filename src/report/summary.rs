//! `summary.md`: the recommendation sentence and a compact table of the points (ratio, the
//! limited columns, the verdict) in GitHub-flavoured markdown, for CI logs and job summaries.

use super::{bounds_text, cell, criteria, limited_columns, side_files_note, swept, verdict};
use crate::select::Selection;

/// The markdown summary of `selection` for the scenario named `name`.
pub fn markdown(name: &str, selection: &Selection) -> String {
    let lead = if selection.chosen.is_some() {
        "Recommendation"
    } else {
        "No recommendation"
    };
    let mut text = format!(
        "# photonqa report: {name}\n\n**{lead}:** {}\n\n{}\n\n",
        selection.why(),
        criteria(selection)
    );
    if let Some(note) = side_files_note(selection.evaluations.iter().map(|e| e.row)) {
        text += &format!("{note}\n\n");
    }
    let params = swept(selection.evaluations.iter().map(|e| e.row));
    let side = selection
        .evaluations
        .iter()
        .any(|e| e.row.rate.as_ref().is_some_and(|r| r.side_bytes.is_some()));
    let limited = limited_columns(selection.limits);
    let mut header: Vec<String> = vec!["point".into()];
    header.extend(params.iter().map(|p| p.to_string()));
    header.push("ratio".into());
    if side {
        header.push("ratio_payload".into());
    }
    header.extend(
        limited
            .iter()
            .map(|c| format!("{c} {}", bounds_text(selection.limits, c))),
    );
    header.push("verdict".into());
    let mut lines = vec![
        header,
        vec!["---".to_string(); params.len() + limited.len() + 3 + usize::from(side)],
    ];
    for (i, e) in selection.evaluations.iter().enumerate() {
        let row = e.row;
        let mut cells = vec![row.point_id.clone()];
        cells.extend(params.iter().map(|p| {
            row.params
                .get(*p)
                .map(crate::metrics::values::plain)
                .unwrap_or_default()
        }));
        cells.push(cell(row, "ratio"));
        if side {
            cells.push(cell(row, "ratio_payload"));
        }
        cells.extend(limited.iter().map(|c| cell(row, c)));
        cells.push(verdict(selection, i));
        lines.push(cells);
    }
    for cells in lines {
        let cells: Vec<String> = cells.iter().map(|c| table_cell(c)).collect();
        text += &format!("| {} |\n", cells.join(" | "));
    }
    text
}

/// Text safe inside a markdown table cell: pipes escaped, line breaks as spaces.
fn table_cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::limits::Objective;
    use crate::select::evaluate::tests::{failed_row, min, row};
    use crate::select::select;
    use serde_json::json;

    #[test]
    fn no_passing_point_names_the_closest_and_lists_every_point() {
        let rows = [
            row(0, 2.0, json!({"ssim": 0.5}), json!({})),
            row(1, 4.0, json!({"ssim": 0.8}), json!({})),
            failed_row(2, "zfp: rate | out of range\nsecond line"),
        ];
        let limits = [min("ssim", 0.9)];
        let objective = Objective::default();
        let text = markdown("demo <x>", &select(&rows, &limits, &objective));
        let expected = [
            "# photonqa report: demo <x>",
            "",
            "**No recommendation:** no working point meets the limits; the closest is point p1 (index 1), which fails ssim 0.8 < min 0.9",
            "",
            "Limits: ssim \u{2265} 0.9. Objective: maximise ratio. 0 of 3 points meet the limits.",
            "",
            "| point | sz3.abs | ratio | ssim \u{2265} 0.9 | verdict |",
            "| --- | --- | --- | --- | --- |",
            "| p0 | 0.0 | 2.000 | 0.50000 | fails ssim 0.5 < min 0.9 |",
            "| p1 | 0.5 | 4.000 | 0.80000 | closest; fails ssim 0.8 < min 0.9 |",
            "| p2 | 1.0 | - | - | error: zfp: rate \\| out of range second line |",
        ];
        assert_eq!(text.lines().collect::<Vec<_>>(), expected);
        assert!(text.ends_with("|\n"));
    }

    #[test]
    fn the_chosen_point_is_marked_and_infinite_values_read_inf() {
        let rows = [
            row(0, 2.0, json!({"psnr": "inf"}), json!({})),
            row(1, 8.0, json!({"psnr": 45.5}), json!({})),
            row(2, 16.0, json!({"psnr": 31.0}), json!({})),
        ];
        let limits = [min("psnr", 40.0)];
        let text = markdown("demo", &select(&rows, &limits, &Objective::default()));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[2],
            "**Recommendation:** point p1 (index 1) has the highest ratio (8) of the 2 of 3 points that meet the limit; its tightest limit is psnr 45.5 >= min 40 (margin 5.5)"
        );
        assert_eq!(
            lines[4],
            "Limits: psnr \u{2265} 40. Objective: maximise ratio. 2 of 3 points meet the limits."
        );
        assert_eq!(
            &lines[8..],
            [
                "| p0 | 0.0 | 2.000 | inf | pass |",
                "| p1 | 0.5 | 8.000 | 45.5000 | chosen |",
                "| p2 | 1.0 | 16.000 | 31.0000 | fails psnr 31 < min 40 |",
            ]
        );
    }
}
