//! The reference of every stage, metric and analysis as Markdown, generated from their
//! registries (`photonqa reference`): committed as `docs/reference.md`, which a test keeps
//! equal to this output, so the reference cannot fall behind the code.

use std::fmt::Write;

use crate::analysis::registry::ANALYSES;
use crate::metrics::registry::{DISTORTION, STRUCTURED};
use crate::pipeline::params::ParamDef;
use crate::pipeline::registry::STAGES;

/// The rank whose columns the metric table lists (columns such as `error_autocorrelation.axis2`
/// depend on it).
const LISTED_RANK: usize = 3;

/// The reference page: stages, distortion metrics and analyses, in registry order.
pub fn markdown() -> String {
    let mut page = String::from(
        "# Reference: stages, metrics and analyses\n\n\
         Generated from photonqa's registries by `photonqa reference > docs/reference.md`; do not\n\
         edit by hand (`tests/docs_reference.rs` fails when this file is stale). What each one\n\
         means, with formulas and references, is in the [guide](guide.md).\n",
    );
    page.push_str("\n## Pipeline stages\n\n");
    page.push_str(
        "A scenario's `[[pipeline]]` entries, in chain order: array->array stages first, then at most \
         one array->bytes stage, then bytes->bytes stages. `lossless` stages are checked to decode \
         bit for bit on every run.\n",
    );
    for def in STAGES {
        let mut what = def.kind.name().to_string();
        if def.lossless {
            what.push_str(", lossless");
        }
        if !def.aliases.is_empty() {
            let aliases: Vec<String> = def.aliases.iter().map(|a| format!("`{a}`")).collect();
            let _ = write!(what, "; aliases {}", aliases.join(", "));
        }
        let _ = write!(
            page,
            "\n### `{}`\n\n*{what}*: {}.\n",
            def.id,
            cell(def.summary)
        );
        params_table(&mut page, def.params);
    }
    page.push_str("\n## Distortion metrics\n\n");
    let _ = write!(
        page,
        "Names for `[metrics] distortion`, `photonqa metrics --only` and limits; columns as in the \
         results (for a {LISTED_RANK}-D array).\n\n| metric | columns | what |\n|---|---|---|\n"
    );
    for def in DISTORTION {
        let _ = writeln!(page, "| `{0}` | `{0}` | {1} |", def.name, cell(def.doc));
    }
    for def in STRUCTURED {
        let fields = (def.columns)(LISTED_RANK);
        let columns = if fields.is_empty() {
            format!("`{}`", def.name)
        } else {
            let named: Vec<String> = fields
                .iter()
                .map(|field| format!("`{}.{field}`", def.name))
                .collect();
            named.join(", ")
        };
        let _ = writeln!(page, "| `{}` | {columns} | {} |", def.name, cell(def.doc));
    }
    page.push_str("\n## Science analyses\n\n");
    page.push_str(
        "A scenario's `[[analysis]]` entries (`kind = ...`); each runs on the original and on every \
         working point's decoded data, and its columns (`kind.field`, or `label.field` with \
         `label = ...`) can carry limits.\n",
    );
    for def in ANALYSES {
        let columns: Vec<String> = def.columns.iter().map(|c| format!("`{c}`")).collect();
        let _ = write!(page, "\n### `{}`\n\n{}.\n", def.kind, cell(def.doc));
        if !columns.is_empty() {
            let _ = write!(page, "\nColumns: {}.\n", columns.join(", "));
        }
        params_table(&mut page, def.params);
    }
    page
}

/// A table of parameters (nothing when there are none).
fn params_table(page: &mut String, params: &[ParamDef]) {
    if params.is_empty() {
        return;
    }
    page.push_str("\n| parameter | accepts | default | meaning |\n|---|---|---|---|\n");
    for p in params {
        let _ = writeln!(
            page,
            "| `{}` | {} | {} | {} |",
            p.name,
            cell(&p.kind.to_string()),
            cell(&p.default.to_string()),
            cell(p.doc)
        );
    }
}

/// `text` made safe for a Markdown table cell: its pipes escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}
