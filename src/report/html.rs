//! `report.html`: one self-contained page (inline CSS, inline SVG plots, the triptych as an
//! embedded PNG, no scripts, no external resources). Every text that comes from the scenario,
//! the results or the limits is HTML-escaped.

use std::fmt::Write;

use super::plots::Figure;
use super::science::ScienceFigure;
use super::{
    bounds_text, cell, criteria, featured_index, limited_columns, side_files_note, swept, verdict,
};
use crate::metrics::values::plain;
use crate::runner::provenance::Provenance;
use crate::runner::results::{NONFINITE_DECODED, Status};
use crate::runner::slices::Triptych;
use crate::scenario::Scenario;
use crate::select::Selection;

/// `text` with `&`, `<`, `>`, `"` and `'` replaced by character references: safe in element
/// content and in quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Standard base64 (RFC 4648, with padding), for the embedded PNG.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What the page shows.
pub struct Page<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// The rows judged against the limits.
    pub selection: &'a Selection<'a>,
    /// The scalar metric and analysis columns of the table.
    pub columns: &'a [String],
    /// The figures with their SVG, in page order.
    pub figures: &'a [(Figure, String)],
    /// The analyses' figures with their markup (SVG, or an image's PNG), in page order.
    pub science: &'a [(ScienceFigure, String)],
    /// Notes on what is not plotted.
    pub notes: &'a [String],
    /// The slices, their PNG image and the caption's sentences on its scales
    /// ([`super::triptych::caption`]) of the featured point and, when there is one, of the
    /// first point to fail a limit ([`super::first_failing`]).
    pub triptychs: &'a [(&'a Triptych, &'a [u8], &'a str)],
}

const STYLE: &str = r#"
:root { --ok: #1a7f37; --ok-bg: #eaf6ec; --bad: #c62828; --bad-bg: #fdecea; --ink: #1f2328;
        --muted: #59636e; --line: #d8dee4; --head: #f3f5f7; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1320px; margin: 0 auto; padding: 20px 28px 40px; }
header h1 { margin: 0; font-size: 26px; }
header .kicker { margin: 0; color: var(--muted); font-size: 13px; letter-spacing: .06em;
                 text-transform: uppercase; }
header .description { margin: 4px 0 0; color: var(--muted); }
h2 { font-size: 19px; margin: 30px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
.verdict { margin: 18px 0 8px; padding: 16px 20px; border-radius: 8px; border-left: 6px solid; }
.verdict.pass { background: var(--ok-bg); border-color: var(--ok); }
.verdict.none { background: var(--bad-bg); border-color: var(--bad); }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; color: #fff;
         font-size: 13px; font-weight: 600; letter-spacing: .03em; }
.pass .badge { background: var(--ok); }
.none .badge { background: var(--bad); }
.answer { font-size: 19px; line-height: 1.45; margin: 10px 0 12px; font-weight: 500; }
.facts { display: flex; flex-wrap: wrap; gap: 8px 10px; margin: 0; }
.fact { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 5px 12px; }
.fact dt { font-size: 12px; color: var(--muted); }
.fact dd { margin: 0; font-size: 17px; font-weight: 600; font-variant-numeric: tabular-nums; }
.fact.big dd { font-size: 24px; }
.fact.fail { border-color: var(--bad); background: var(--bad-bg); }
.fact.fail dd { color: var(--bad); }
.fact.ok { border-color: var(--ok); }
.criteria, .pipeline { margin: 10px 0 0; color: var(--muted); font-size: 14px; }
.pipeline code { color: var(--ink); }
.notes { color: var(--muted); font-size: 14px; margin: 0 0 10px; padding-left: 20px; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 18px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
figure.wide { grid-column: 1 / -1; }
figure svg, figure img { display: block; width: 100%; height: auto; }
figure img { max-width: 1192px; margin: 0 auto; }
figcaption { color: var(--muted); font-size: 13px; padding: 4px 6px 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13.5px; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { background: var(--head); position: sticky; top: 0; font-weight: 600; vertical-align: bottom; }
th small { display: block; font-weight: 400; color: var(--muted); }
th.limited { background: #e6edf5; }
td.text, th.text { text-align: left; }
td.verdict-cell { text-align: left; white-space: normal; min-width: 220px; }
tr.chosen td { background: var(--ok-bg); font-weight: 600; }
tr.error td { color: var(--muted); }
td.fail { background: var(--bad-bg); color: var(--bad); font-weight: 600; }
table.manifest th { text-align: left; position: static; width: 1%; }
table.manifest td { text-align: left; white-space: normal; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; word-break: break-all; }
footer { margin-top: 30px; color: var(--muted); font-size: 13px; }
"#;

impl Page<'_> {
    /// The page's HTML text.
    pub fn render(&self) -> String {
        let name = escape(&self.scenario.name);
        let mut html = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>photonqa report: {name}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
             <header>\n<p class=\"kicker\">photonqa report</p>\n<h1>{name}</h1>\n"
        );
        if !self.scenario.description.is_empty() {
            let _ = writeln!(
                html,
                "<p class=\"description\">{}</p>",
                escape(&self.scenario.description)
            );
        }
        html.push_str("</header>\n");
        self.verdict(&mut html);
        self.plots(&mut html);
        self.table(&mut html);
        self.provenance(&mut html);
        let _ = write!(
            html,
            "<footer>Written by photonqa {} from {} result rows.</footer>\n</main>\n</body>\n</html>\n",
            env!("CARGO_PKG_VERSION"),
            self.selection.evaluations.len()
        );
        html
    }

    /// The answer: the sentence, the featured point's key facts, the limits.
    fn verdict(&self, html: &mut String) {
        let selection = self.selection;
        let featured = featured_index(selection);
        let (class, badge) = match featured {
            Some((_, true)) => ("pass", "Recommended working point"),
            _ => ("none", "No working point meets the limits"),
        };
        let _ = write!(
            html,
            "<section class=\"verdict {class}\">\n<span class=\"badge\">{badge}</span>\n\
             <p class=\"answer\">{}</p>\n",
            escape(&sentence(&selection.why()))
        );
        if let Some((index, passes)) = featured {
            let row = selection.evaluations[index].row;
            html.push_str("<dl class=\"facts\">\n");
            let role = if passes {
                "chosen point"
            } else {
                "closest point"
            };
            fact(html, "", role, &row.point_id);
            for (param, value) in &row.params {
                fact(html, "", param, &plain(value));
            }
            fact(html, "big", "ratio", &cell(row, "ratio"));
            if row.rate.as_ref().is_some_and(|r| r.side_bytes.is_some()) {
                fact(html, "", "ratio, stream alone", &cell(row, "ratio_payload"));
            }
            fact(html, "", "bits / value", &cell(row, "bits_per_value"));
            for check in &selection.evaluations[index].checks {
                let class = if check.passes() { "ok" } else { "fail" };
                let bound = bounds_text(std::slice::from_ref(check.limit), &check.limit.column);
                let label = format!("{} ({bound})", check.limit.column);
                fact(html, class, &label, &cell(row, &check.limit.column));
            }
            let limited = limited_columns(selection.limits);
            for column in ["psnr", "ssim", "reconstructed.psnr", "reconstructed.ssim"] {
                if !limited.contains(&column) && row.value(column).is_some() {
                    fact(html, "", column, &cell(row, column));
                }
            }
            html.push_str("</dl>\n");
            let stages: Vec<String> = row.pipeline.iter().map(stage_text).collect();
            let _ = writeln!(
                html,
                "<p class=\"pipeline\">Pipeline: <code>{}</code></p>",
                escape(&stages.join(" \u{2192} "))
            );
        }
        let _ = writeln!(
            html,
            "<p class=\"criteria\">{}</p>",
            escape(&criteria(selection))
        );
        if let Some(note) = side_files_note(selection.evaluations.iter().map(|e| e.row)) {
            let _ = writeln!(html, "<p class=\"criteria\">{}</p>", escape(&note));
        }
        html.push_str("</section>\n");
    }

    /// The figures, the notes on what is not plotted, and the triptych.
    fn plots(&self, html: &mut String) {
        if self.figures.is_empty()
            && self.science.is_empty()
            && self.triptychs.is_empty()
            && self.notes.is_empty()
        {
            return;
        }
        html.push_str("<section>\n<h2>Plots</h2>\n");
        if !self.notes.is_empty() {
            html.push_str("<ul class=\"notes\">\n");
            for note in self.notes {
                let _ = writeln!(html, "<li>{}</li>", escape(note));
            }
            html.push_str("</ul>\n");
        }
        html.push_str("<div class=\"figures\">\n");
        // The analyses' own figures first: they show what the science columns measure.
        for (figure, svg) in self.science {
            let wide = if figure.columns.len() > 1 {
                " class=\"wide\""
            } else {
                ""
            };
            let _ = write!(
                html,
                "<figure id=\"{}\"{wide}>\n{svg}<figcaption>{}</figcaption>\n</figure>\n",
                escape(&figure.name),
                escape(&figure.caption())
            );
        }
        for (figure, svg) in self.figures {
            let _ = write!(html, "<figure id=\"{}\">\n{svg}", escape(&figure.name));
            if !figure.notes.is_empty() {
                let _ = writeln!(
                    html,
                    "<figcaption>{}</figcaption>",
                    escape(&figure.notes.join(" "))
                );
            }
            html.push_str("</figure>\n");
        }
        let failing = super::first_failing(self.selection, "");
        for (k, (t, png, scales)) in self.triptychs.iter().enumerate() {
            let (width, height) = super::triptych::SIZE;
            let (id, role) = match &failing {
                Some((row, failed)) if k > 0 && row.point_id == t.point_id => (
                    "triptych-failing",
                    format!(
                        " (the first point in sweep order to fail a limit: {})",
                        failed.join(", ")
                    ),
                ),
                _ => ("triptych", String::new()),
            };
            let what = format!(
                "Point {}{role}: {}, shown because {}. {}",
                t.point_id, t.axis_label, t.reason, scales
            );
            let _ = write!(
                html,
                "<figure id=\"{id}\" class=\"wide\">\n<img width=\"{width}\" height=\"{height}\" \
                 alt=\"original, decoded and difference of {}\" src=\"data:image/png;base64,{}\">\n\
                 <figcaption>{}</figcaption>\n</figure>\n",
                escape(&t.axis_label),
                base64(png),
                escape(&what)
            );
        }
        html.push_str("</div>\n</section>\n");
    }

    /// Every point: swept parameters, rate, limited then other columns, verdict.
    fn table(&self, html: &mut String) {
        let selection = self.selection;
        let params = swept(selection.evaluations.iter().map(|e| e.row));
        let limited = limited_columns(selection.limits);
        let others: Vec<&String> = self
            .columns
            .iter()
            .filter(|c| !limited.contains(&c.as_str()))
            .collect();
        html.push_str("<section>\n<h2>All working points</h2>\n<div class=\"scroll\">\n<table class=\"points\">\n<thead><tr><th>#</th><th class=\"text\">point</th>");
        for p in &params {
            let _ = write!(html, "<th>{}</th>", escape(p));
        }
        html.push_str("<th>ratio</th><th>bits / value</th>");
        let nonfinite = selection
            .evaluations
            .iter()
            .any(|e| e.row.nonfinite().is_some());
        if nonfinite {
            let _ = write!(html, "<th>{NONFINITE_DECODED}</th>");
        }
        for c in &limited {
            let _ = write!(
                html,
                "<th class=\"limited\">{}<small>{}</small></th>",
                escape(c),
                escape(&bounds_text(selection.limits, c))
            );
        }
        // The verdict before the other columns: visible without scrolling.
        html.push_str("<th class=\"text\">verdict</th>");
        for c in &others {
            let _ = write!(html, "<th>{}</th>", escape(c));
        }
        html.push_str("</tr></thead>\n<tbody>\n");
        for (i, e) in selection.evaluations.iter().enumerate() {
            let row = e.row;
            let class = match (row.status, selection.chosen == Some(i)) {
                (Status::Error, _) => " class=\"error\"",
                _ if row.nonfinite().is_some() => " class=\"error\"",
                (_, true) => " class=\"chosen\"",
                _ => "",
            };
            let _ = write!(
                html,
                "<tr{class}><td>{}</td><td class=\"text\">{}</td>",
                row.index,
                escape(&row.point_id)
            );
            for p in &params {
                let value = row.params.get(*p).map(plain).unwrap_or_default();
                let _ = write!(html, "<td>{}</td>", escape(&value));
            }
            let _ = write!(
                html,
                "<td>{}</td><td>{}</td>",
                escape(&cell(row, "ratio")),
                escape(&cell(row, "bits_per_value"))
            );
            if nonfinite {
                let _ = write!(html, "<td>{}</td>", cell(row, NONFINITE_DECODED));
            }
            for c in &limited {
                let failed: Vec<String> = e
                    .checks
                    .iter()
                    .filter(|k| k.limit.column == *c && !k.passes())
                    .filter_map(|k| k.reason())
                    .collect();
                let value = escape(&cell(row, c));
                if failed.is_empty() || row.status == Status::Error {
                    let _ = write!(html, "<td>{value}</td>");
                } else {
                    let _ = write!(
                        html,
                        "<td class=\"fail\" title=\"{}\">{value}</td>",
                        escape(&failed.join(", "))
                    );
                }
            }
            let _ = write!(
                html,
                "<td class=\"verdict-cell\">{}</td>",
                escape(&verdict(selection, i))
            );
            for c in &others {
                let _ = write!(html, "<td>{}</td>", escape(&cell(row, c)));
            }
            html.push_str("</tr>\n");
        }
        html.push_str("</tbody>\n</table>\n</div>\n</section>\n");
    }

    /// What made the results: every distinct value of each provenance field over the rows.
    fn provenance(&self, html: &mut String) {
        let rows: Vec<&Provenance> = self
            .selection
            .evaluations
            .iter()
            .map(|e| &e.row.provenance)
            .collect();
        let distinct = |f: &dyn Fn(&Provenance) -> String| {
            let mut values: Vec<String> = Vec::new();
            for v in rows.iter().map(|p| f(p)) {
                if !values.contains(&v) {
                    values.push(v);
                }
            }
            values.join("; ")
        };
        let mut entries: Vec<(String, String)> = vec![
            ("photonqa".into(), distinct(&|p| p.photonqa_version.clone())),
            ("scenario".into(), distinct(&|p| p.scenario.clone())),
            (
                "scenario file".into(),
                self.scenario.path.display().to_string(),
            ),
            (
                "scenario hash".into(),
                distinct(&|p| p.scenario_hash.clone()),
            ),
            ("input".into(), distinct(&|p| p.input.clone())),
            ("input hash".into(), distinct(&|p| p.input_hash.clone())),
            (
                "shape".into(),
                distinct(&|p| {
                    let dims: Vec<String> = p.input_shape.iter().map(usize::to_string).collect();
                    dims.join(" \u{d7} ")
                }),
            ),
            (
                "dtype".into(),
                distinct(&|p| p.input_dtype.name().to_string()),
            ),
            (
                "chunk slices".into(),
                distinct(&|p| p.chunk_slices.to_string()),
            ),
        ];
        if rows.iter().any(|p| !p.side_files.is_empty()) {
            entries.push((
                "side files".into(),
                distinct(&|p| {
                    let files: Vec<String> = p
                        .side_files
                        .iter()
                        .map(|(path, hash)| format!("{path} ({})", &hash[..hash.len().min(16)]))
                        .collect();
                    files.join(", ")
                }),
            ));
        }
        let mut codecs: Vec<&String> = rows.iter().flat_map(|p| p.codecs.keys()).collect();
        codecs.sort();
        codecs.dedup();
        for codec in codecs {
            let version = distinct(&|p| p.codecs.get(codec).cloned().unwrap_or("-".into()));
            entries.push((codec.clone(), version));
        }
        html.push_str("<section>\n<h2>Provenance</h2>\n<table class=\"manifest\">\n");
        for (key, value) in entries {
            let _ = writeln!(
                html,
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(&key),
                escape(&value)
            );
        }
        html.push_str("</table>\n</section>\n");
    }
}

/// `text` as a sentence: first letter capitalised, a full stop at the end.
pub fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.extend(chars);
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// One key fact of the featured point.
fn fact(html: &mut String, class: &str, label: &str, value: &str) {
    let class = if class.is_empty() {
        "fact".to_string()
    } else {
        format!("fact {class}")
    };
    let _ = writeln!(
        html,
        "<div class=\"{class}\"><dt>{}</dt><dd>{}</dd></div>",
        escape(label),
        escape(value)
    );
}

/// A stage's configuration as `stage(key=value, ...)`.
fn stage_text(stage: &serde_json::Value) -> String {
    let Some(map) = stage.as_object() else {
        return plain(stage);
    };
    let name = map.get("stage").map(plain).unwrap_or_default();
    let params: Vec<String> = map
        .iter()
        .filter(|(k, _)| *k != "stage")
        .map(|(k, v)| format!("{k}={}", plain(v)))
        .collect();
    format!("{name}({})", params.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(escape("plain text, é"), "plain text, é");
    }

    #[test]
    fn user_text_is_escaped_everywhere_and_the_page_is_deterministic() {
        use crate::scenario::limits::Objective;
        use crate::select::evaluate::tests::{failed_row, min, row};
        use crate::select::select;
        use serde_json::json;
        let text = "[scenario]\nname = \"x\"\ndescription = \"a & b\"\n\
                    [input]\nsource = \"v.npy\"\n[[pipeline]]\nstage = \"zstd\"\n";
        let mut scenario = Scenario::parse(text, std::path::Path::new("<dir>/s.toml")).unwrap();
        // A scenario file's name is letters, digits, '.', '_' and '-'; the page escapes any.
        scenario.name = "<script>x</script>".into();
        let mut odd = row(0, 2.0, json!({"ssim": 0.95}), json!({}));
        odd.params.insert("<b>".into(), json!("\"quoted\" & <i>"));
        let rows = [odd, failed_row(1, "<img src=x onerror=alert(1)>")];
        let limits = [min("ssim", 0.9)];
        let objective = Objective::default();
        let selection = select(&rows, &limits, &objective);
        let columns = ["ssim".to_string()];
        let page = Page {
            scenario: &scenario,
            selection: &selection,
            columns: &columns,
            figures: &[],
            science: &[],
            notes: &["1 failed <point>".into()],
            triptychs: &[],
        };
        let html = page.render();
        for raw in [
            "<script>x",
            "<b>",
            "<i>",
            "<img",
            "<dir>",
            "<point>",
            "a & b",
        ] {
            assert!(!html.contains(raw), "{raw} is not escaped");
        }
        for escaped in [
            "<h1>&lt;script&gt;x&lt;/script&gt;</h1>",
            "<th>&lt;b&gt;</th>",
            "<td>&quot;quoted&quot; &amp; &lt;i&gt;</td>",
            "error: &lt;img src=x onerror=alert(1)&gt;",
            "&lt;dir&gt;/s.toml",
            "<li>1 failed &lt;point&gt;</li>",
            "a &amp; b",
        ] {
            assert!(html.contains(escaped), "{escaped} missing");
        }
        assert_eq!(html, page.render());
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "{input}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn stages_read_as_calls() {
        let stage = serde_json::json!({"stage": "quantize", "dtype": "uint8", "bits": 4});
        assert_eq!(stage_text(&stage), "quantize(dtype=uint8, bits=4)");
    }
}
