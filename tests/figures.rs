//! The analyses' figures in the report (issue 21): every reference scenario's report holds the
//! figures of its analyses, in `report.html` (inline SVG) and as PNGs in `plots/`, and the
//! SAXS report shows I(q) of the chosen point beside the first point that fails its limits,
//! and its pattern on an asinh (logarithmic) grey scale.

mod common;

use std::fs;
use std::path::Path;

use common::repo_root;
use photonqa::analysis::registry;
use photonqa::report::style::{LOWER_PANEL, SIZE};
use photonqa::runner::RunOptions;
use photonqa::scenario::Scenario;
use photonqa::workflow::{self, RunSummary};

fn run(name: &str, out: &Path) -> (Scenario, RunSummary) {
    let path = repo_root().join(format!("scenarios/{name}.toml"));
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let options = RunOptions {
        threads: Some(2),
        ..RunOptions::new(out)
    };
    let summary = workflow::run(&scenario, &options).unwrap_or_else(|e| panic!("{name}: {e}"));
    (scenario, summary)
}

/// Width and height of a PNG, decoded in full.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (image.width(), image.height())
}

/// The PNGs in `plots/` that are analysis figures: named `<analysis>-<figure>` after an
/// analysis of the scenario that has figures.
fn science_pngs(scenario: &Scenario, out: &Path) -> Vec<String> {
    let prefixes: Vec<String> = scenario
        .analyses
        .iter()
        .filter(|a| registry::find(a.config.stage).is_some_and(|d| d.figures.is_some()))
        .map(|a| format!("{}-", a.label))
        .collect();
    let mut names: Vec<String> = common::files_in(&out.join("plots"))
        .into_iter()
        .filter_map(|f| f.strip_suffix(".png").map(str::to_string))
        .filter(|f| !f.starts_with("metric-") && prefixes.iter().any(|p| f.starts_with(p)))
        .collect();
    names.sort();
    names
}

/// Every reference scenario (of the codec shootouts, one): its report holds exactly the analysis figures expected of its
/// analyses, each in the HTML as inline SVG with a caption and in `plots/` as a PNG, and the
/// slice triptych.
#[test]
fn every_reference_scenario_report_holds_the_figures_of_its_analyses() {
    let expected: [(&str, &[&str]); 7] = [
        ("saxs", &["saxs-iq"]),
        ("seed-otsu-uint8-zip", &["porosity-pore-sizes"]),
        ("porosity-magma", &["porosity-pore-sizes"]),
        ("tomo-projections", &["porosity-pore-sizes"]),
        ("sx", &[]),
        ("xpcs", &["xpcs-g2"]),
        // The three codec shootouts measure distortion alone and draw the same report parts;
        // one stands for them (all three run in CI's gate).
        ("codec-shootout-hdf5", &[]),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, figures) in expected {
        let out = dir.path().join(name);
        let (scenario, _) = run(name, &out);
        assert_eq!(science_pngs(&scenario, &out), figures, "{name}");
        let html = fs::read_to_string(out.join("report.html")).unwrap();
        for figure in figures {
            let at = html
                .find(&format!("<figure id=\"{figure}\""))
                .unwrap_or_else(|| panic!("{name}: {figure} is not in the report"));
            let end = at + html[at..].find("</figure>").unwrap();
            let element = &html[at..end];
            assert!(
                element.contains("<svg") && element.contains("<figcaption>Shown: "),
                "{name}: {element:.300}"
            );
            let (width, _) = png_size(&out.join(format!("plots/{figure}.png")));
            assert!(width >= SIZE.0, "{name}: {figure} {width}");
        }
        assert!(
            html.contains("<figure id=\"triptych\" class=\"wide\">"),
            "{name}: no triptych"
        );
        assert!(out.join("plots/triptych.png").is_file(), "{name}");
        match name {
            // Photon counts over four decades: the pattern on an asinh (logarithmic) scale;
            // I(q) of the chosen point beside the first to fail chi2_reduced <= 1.5.
            "saxs" => {
                assert!(
                    html.contains("share one asinh grey scale, logarithmic above"),
                    "saxs: the triptych's caption does not say log"
                );
                assert!(html.contains("<figure id=\"saxs-iq\" class=\"wide\">"));
                assert!(html.contains(
                    "on the right, the first point in sweep order to fail a limit of saxs: saxs.chi2_reduced = "
                ));
                let (width, height) = SIZE;
                assert_eq!(
                    png_size(&out.join("plots/saxs-iq.png")),
                    (2 * width, height + LOWER_PANEL)
                );
            }
            // A tomogram within three decades stays linear.
            "seed-otsu-uint8-zip" => {
                assert!(html.contains("share one linear grey scale from"), "{name}");
            }
            _ => {}
        }
    }
}
