//! The report of a real run, through the library: `scenarios/porosity-magma.toml` on the
//! bundled reference volume (with `error_histogram` added to its metrics, so that every kind
//! of plot appears, and the porosity analysis's pore-size figure), judged by a hand-made limit; and `scenarios/tomo-projections.toml`, whose
//! triptych shows the reconstructed slice. Checks the files, the sentence, one SVG per plot,
//! the triptych, that the PNGs decode, and that the same rows give the same bytes.

mod common;

use std::fs;
use std::path::Path;

use common::repo_root;
use photonqa::analysis::fbp::{Fbp, Filter};
use photonqa::data::exchange::Exchange;
use photonqa::report::html::{escape, sentence};
use photonqa::report::{TableWidth, featured, text_table, triptych, write_report};
use photonqa::runner::slices::worst_slice;
use photonqa::runner::{self, RunOptions};
use photonqa::scenario::Scenario;
use photonqa::scenario::limits::{Limit, Objective};
use photonqa::select::select;
use photonqa::workflow::{self, RunSummary};

fn run(scenario: &Scenario, out: &Path) -> RunSummary {
    let options = RunOptions {
        threads: Some(2),
        ..RunOptions::new(out)
    };
    workflow::run(scenario, &options).unwrap_or_else(|e| panic!("run: {e}"))
}

fn min(column: &str, bound: f64) -> Limit {
    Limit {
        column: column.into(),
        min: Some(bound),
        max: None,
    }
}

/// Width and height of a PNG, decoded in full by the `image` crate.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (image.width(), image.height())
}

#[test]
fn porosity_report_answers_first_plots_everything_and_is_deterministic() {
    let mut scenario = Scenario::load(&repo_root().join("scenarios/porosity-magma.toml")).unwrap();
    scenario.distortion.push("error_histogram");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let summary = run(&scenario, &out);
    let rows = &summary.rows;
    assert_eq!(rows.len(), 5);

    // SSIM of 6 and 8 bits is above 0.7 (0.707, 0.708); of 2, 3, 4 bits below.
    let limits = [min("ssim", 0.7)];
    let objective = Objective::default();
    let selection = select(rows, &limits, &objective);
    let (row, passes) = featured(&selection).expect("a featured point");
    assert!(passes);
    assert_eq!(row.params["quantize.bits"], 6);
    let slices = worst_slice(&scenario, row, runner::DEFAULT_MEMORY_BUDGET, Some(2)).unwrap();
    assert_eq!(
        slices.slice_index as u64,
        row.distortion["ssim_detail"]["worst_slice"]
            .as_u64()
            .unwrap()
    );
    assert_eq!(slices.original.dim(), (128, 128));

    let written = write_report(
        &out,
        &scenario,
        rows,
        &summary.columns,
        &limits,
        &objective,
        std::slice::from_ref(&slices),
    )
    .unwrap();
    let science = [
        "segmentation-threshold_shift_max",
        "segmentation-dice_foreground",
        "segmentation-fraction_change_max",
        "segmentation-boundary_f1",
        "porosity-porosity_abs_change",
        "porosity-pore_count_change",
        "porosity-diameter_ks_statistic",
        "porosity-specific_surface_change",
    ];
    let mut plots: Vec<String> = vec!["rd-psnr".into(), "rd-ssim".into()];
    plots.extend(science.iter().map(|c| format!("metric-{c}")));
    plots.push("error-histogram".into());
    // The analyses' own figures in the scenario's order, then the triptych.
    let own = ["segmentation-changes", "porosity-pore-sizes", "triptych"].map(String::from);
    let mut expected: Vec<_> = plots
        .iter()
        .chain(own.iter())
        .map(|p| out.join(format!("plots/{p}.png")))
        .collect();
    expected.extend([out.join("report.html"), out.join("summary.md")]);
    assert_eq!(written, expected);
    for path in &expected {
        assert!(path.is_file(), "{} missing", path.display());
    }
    for plot in &plots {
        let path = out.join(format!("plots/{plot}.png"));
        assert_eq!(png_size(&path), photonqa::report::plots::SIZE, "{plot}");
    }
    assert_eq!(png_size(&out.join("plots/triptych.png")), triptych::SIZE);

    let html = fs::read_to_string(out.join("report.html")).unwrap();
    let why = selection.why();
    assert!(
        html.contains(&format!(
            "<p class=\"answer\">{}</p>",
            escape(&sentence(&why))
        )),
        "the recommendation sentence is missing: {why}"
    );
    assert!(html.contains("Recommended working point"));
    assert_eq!(
        html.matches("<svg").count(),
        plots.len() + 1,
        "one SVG per plot and the pore-size figure"
    );
    assert!(html.contains("<figure id=\"segmentation-changes\">\n<img width=\"640\""));
    assert!(html.contains("<figure id=\"porosity-pore-sizes\">\n<svg"));
    for plot in &plots {
        assert!(
            html.contains(&format!("<figure id=\"{plot}\">\n<svg")),
            "{plot}"
        );
    }
    assert!(html.contains("<figure id=\"triptych\" class=\"wide\">\n<img"));
    assert!(html.contains("src=\"data:image/png;base64,iVBORw0KGgo"));
    // The answer comes before the plots, the plots before the table and the provenance.
    let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("{s} missing"));
    assert!(at("class=\"answer\"") < at("<h2>Plots</h2>"));
    assert!(at("<h2>Plots</h2>") < at("<h2>All working points</h2>"));
    assert!(at("<h2>All working points</h2>") < at("<h2>Provenance</h2>"));
    // Self-contained: no scripts, no links; the only URL is the SVG namespace.
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("href="));
    assert_eq!(
        html.matches("http").count(),
        html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    // Failed limits are highlighted: SSIM of 2, 3 and 4 bits.
    assert_eq!(
        html.matches("<td class=\"fail\" title=\"below min\">")
            .count(),
        3
    );
    for key in [
        row.provenance.scenario_hash.as_str(),
        &row.provenance.input_hash,
        "64 \u{d7} 128 \u{d7} 128",
        "float32",
        "libzstd",
    ] {
        assert!(html.contains(key), "provenance lacks {key}");
    }

    let summary_md = fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary_md.contains(&format!("**Recommendation:** {why}\n")));
    assert_eq!(summary_md.matches("\n| wp-").count(), 5);

    // The same rows give the same bytes.
    let again = dir.path().join("again");
    write_report(
        &again,
        &scenario,
        rows,
        &summary.columns,
        &limits,
        &objective,
        std::slice::from_ref(&slices),
    )
    .unwrap();
    for path in &expected {
        let name = path.strip_prefix(&out).unwrap();
        assert!(
            fs::read(path).unwrap() == fs::read(again.join(name)).unwrap(),
            "{} differs between two reports of the same rows",
            name.display()
        );
    }

    // No point meets SSIM >= 0.9: the page says so first and names the closest point.
    let strict = [min("ssim", 0.9)];
    let none = dir.path().join("none");
    write_report(
        &none,
        &scenario,
        rows,
        &summary.columns,
        &strict,
        &objective,
        &[],
    )
    .unwrap();
    let html = fs::read_to_string(none.join("report.html")).unwrap();
    let why = select(rows, &strict, &objective).why();
    assert!(why.starts_with("no working point meets the limits; the closest is point"));
    assert!(html.contains("class=\"verdict none\""));
    assert!(html.contains(&escape(&sentence(&why))));
    assert!(!html.contains("id=\"triptych\""));
    let summary_md = fs::read_to_string(none.join("summary.md")).unwrap();
    assert!(summary_md.contains(&format!("**No recommendation:** {why}\n")));
}

#[test]
fn tomography_triptych_shows_the_reconstructed_slice() {
    let tooth = repo_root().join("reference-data/tooth.h5");
    let scenario = Scenario::load(&repo_root().join("scenarios/tomo-projections.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let summary = run(&scenario, &out);
    let limits = [min("reconstructed.ssim", 0.95)];
    let objective = Objective::default();
    let selection = select(&summary.rows, &limits, &objective);
    let (row, passes) = featured(&selection).unwrap();
    assert!(passes);
    let slices = worst_slice(&scenario, row, runner::DEFAULT_MEMORY_BUDGET, None).unwrap();
    assert_eq!(
        slices.axis_label,
        "the slice reconstructed from detector row 0"
    );
    assert_eq!(slices.reason, "it is the only reconstructed row");
    // The original slice is the library's reconstruction of the file's sinogram.
    let exchange = Exchange::open(&tooth).unwrap();
    let fbp = Fbp::new(640, &exchange.theta().unwrap(), Filter::SheppLogan).unwrap();
    let original = fbp.reconstruct(&exchange.sinogram(0).unwrap()).unwrap();
    assert_eq!(slices.original.as_slice().unwrap(), original.as_slice());
    assert_eq!(slices.decoded.dim(), (640, 640));
    assert_ne!(slices.decoded, slices.original);

    write_report(
        &out,
        &scenario,
        &summary.rows,
        &summary.columns,
        &limits,
        &objective,
        std::slice::from_ref(&slices),
    )
    .unwrap();
    let html = fs::read_to_string(out.join("report.html")).unwrap();
    for plot in ["rd-psnr", "rd-reconstructed-psnr", "rd-reconstructed-ssim"] {
        assert!(html.contains(&format!("<figure id=\"{plot}\">")), "{plot}");
    }
    assert!(html.contains("the slice reconstructed from detector row 0"));
}

/// The compact table of a sweep whose every point fails (porosity-magma: the threshold moves
/// the porosity by 4.5 points at every bit depth) fits 120 columns: failing cells are marked
/// `*` and the verdict counts them; the wide table names every failed limit with its value.
#[test]
fn failing_points_fit_the_compact_table() {
    let scenario = Scenario::load(&repo_root().join("scenarios/porosity-magma.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let summary = run(&scenario, &dir.path().join("run"));
    let table = |width| text_table(&summary.rows, &summary.columns, &scenario, width);
    let compact = table(TableWidth::Compact);
    let lines: Vec<&str> = compact.lines().collect();
    assert_eq!(lines.len(), 2 + summary.rows.len(), "{compact}");
    for line in &lines {
        assert!(line.len() <= 120, "{} wide: {line}", line.len());
    }
    let verdicts: Vec<&str> = lines[2..]
        .iter()
        .map(|l| l.split("  ").last().unwrap().trim())
        .collect();
    assert_eq!(verdicts[0], "closest; fails 2 limits (*)", "{compact}");
    assert!(
        verdicts[1..].iter().all(|v| *v == "fails 2 limits (*)"),
        "{compact}"
    );
    for line in &lines[2..] {
        assert_eq!(line.matches("* ").count(), 2, "{line}");
    }
    let wide = table(TableWidth::Wide);
    assert!(!wide.contains('*'), "{wide}");
    assert!(
        wide.lines().nth(1).unwrap().ends_with(
            "closest; fails segmentation.dice_foreground 0.9551 < min 0.99, porosity.porosity_abs_change 0.04521 > max 0.005"
        ),
        "{wide}"
    );
}
