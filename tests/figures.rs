//! The analyses' figures in the report (issue 21): every reference scenario's report holds the
//! figures of its analyses, in `report.html` (inline SVG) and as PNGs in `plots/`, and the
//! SAXS report shows I(q) of the chosen point beside the first point that fails its limits,
//! and its pattern on an asinh (logarithmic) grey scale.

mod common;

use std::fs;
use std::path::Path;

use common::repo_root;
use photonqa::analysis::{registry, segmentation, sx};
use photonqa::report::first_failing;
use photonqa::report::style::{LOWER_PANEL, SIZE};
use photonqa::runner::RunOptions;
use photonqa::runner::results::PointResult;
use photonqa::scenario::Scenario;
use photonqa::select::select;
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
    let both = &["porosity-pore-sizes", "segmentation-changes"];
    let expected: [(&str, &[&str]); 7] = [
        ("saxs", &["saxs-iq"]),
        ("seed-otsu-uint8-zip", both),
        ("porosity-magma", both),
        ("tomo-projections", both),
        ("sx", &["sx-peaks"]),
        ("xpcs", &["xpcs-g2"]),
        // The three codec shootouts measure distortion alone and draw the same report parts;
        // one stands for them (all three run in CI's gate).
        ("codec-shootout-hdf5", &[]),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, figures) in expected {
        let out = dir.path().join(name);
        let (scenario, summary) = run(name, &out);
        assert_eq!(science_pngs(&scenario, &out), figures, "{name}");
        let html = fs::read_to_string(out.join("report.html")).unwrap();
        for figure in figures {
            let at = html
                .find(&format!("<figure id=\"{figure}\""))
                .unwrap_or_else(|| panic!("{name}: {figure} is not in the report"));
            let end = at + html[at..].find("</figure>").unwrap();
            let element = &html[at..end];
            // Images are embedded as PNG, not one vector rectangle per pixel.
            let markup = if ["sx-peaks", "segmentation-changes"].contains(figure) {
                "<img width="
            } else {
                "<svg"
            };
            assert!(
                element.contains(markup) && element.contains("<figcaption>Shown: "),
                "{name}: {element:.300}"
            );
            assert!(
                element.len() < 400_000,
                "{name}: {figure} {}",
                element.len()
            );
            let (width, _) = png_size(&out.join(format!("plots/{figure}.png")));
            assert!(width >= SIZE.0, "{name}: {figure} {width}");
        }
        assert!(
            html.contains("<figure id=\"triptych\" class=\"wide\">"),
            "{name}: no triptych"
        );
        assert!(out.join("plots/triptych.png").is_file(), "{name}");
        // Beside the featured point's slices, those of the first point to fail a limit.
        let selection = select(&summary.rows, &scenario.limits, &scenario.objective);
        match first_failing(&selection, "") {
            Some((row, _)) => {
                let at = html
                    .find("<figure id=\"triptych-failing\" class=\"wide\">")
                    .unwrap_or_else(|| panic!("{name}: no triptych of the first failing point"));
                let caption = format!(
                    "Point {} (the first point in sweep order to fail a limit: ",
                    row.point_id
                );
                assert!(html[at..].contains(&caption), "{name}");
                assert_eq!(
                    png_size(&out.join("plots/triptych-failing.png")),
                    photonqa::report::triptych::SIZE
                );
            }
            None => assert!(!html.contains("triptych-failing"), "{name}"),
        }
        if ["saxs", "sx", "xpcs"].contains(&name) {
            assert!(html.contains("id=\"triptych-failing\""), "{name}");
        }
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
            // The frame's counts with a colour bar, its scale in the caption.
            "sx" => {
                let at = html.find("<figure id=\"sx-peaks\"").unwrap();
                let caption = &html[at..at + html[at..].find("</figure>").unwrap()];
                assert!(
                    caption.contains(" (chosen): counts on a ")
                        && caption.contains(" (0.5th to 99.5th percentile)."),
                    "sx: {caption:.2000}"
                );
            }
            // A tomogram within three decades stays linear.
            "seed-otsu-uint8-zip" => {
                assert!(html.contains("share one linear grey scale from"), "{name}");
            }
            // The reconstructed slice, not the projections.
            "tomo-projections" => {
                assert!(
                    html.contains("the slice reconstructed from detector row 0, shown because"),
                    "{name}: the triptych is not the reconstructed slice"
                );
            }
            _ => {}
        }
        for row in &summary.rows {
            check_drawn_content(name, row);
        }
    }
}

/// Where an image figure's content can be checked against the analysis's results: the
/// peaks marked on the sx frame are the results' peak lists of that frame (every original
/// peak found again or missed, every decoded one matching or spurious, the matched pairs
/// counted once); the highlighted pixels of the segmentation slice are its changed voxels
/// (one pixel per voxel when the slice is not shrunk, else at most as many).
fn check_drawn_content(name: &str, row: &PointResult) {
    if let Some(results) = row.science.get("sx") {
        let figure = &results["figure"];
        let drawn = sx::figures(results);
        let marks: Vec<usize> = drawn[0].panels[0]
            .curves
            .iter()
            .map(|c| c.points.len())
            .collect();
        let listed = |key: &str| figure[key].as_array().unwrap().len();
        let (found, missed, matching, spurious) = (marks[0], marks[1], marks[2], marks[3]);
        assert_eq!(
            found + missed,
            listed("original"),
            "{name} {}",
            row.point_id
        );
        assert_eq!(
            matching + spurious,
            listed("decoded"),
            "{name} {}",
            row.point_id
        );
        assert_eq!((found, matching), (listed("matched"), listed("matched")));
        // The frame with most peaks holds at least the mean.
        let mean = results["peaks_per_frame_original"].as_f64().unwrap();
        assert!(listed("original") as f64 >= mean, "{name}: {figure:.200}");
        if results["recall"] == 1.0 && results["precision"] == 1.0 {
            assert_eq!((missed, spurious), (0, 0), "{name} {}", row.point_id);
        }
    }
    if let Some(results) = row.science.get("segmentation") {
        let figure = &results["figure"];
        let changed = figure["changed"].as_u64().unwrap();
        let drawn = segmentation::figures(results);
        let image = drawn[0].panels[0].raster.as_ref().unwrap();
        let highlighted = image
            .highlight
            .as_ref()
            .unwrap()
            .values
            .iter()
            .filter(|&&v| v > 0.0)
            .count() as u64;
        if image.raster.rows == image.raster.extent.0 {
            assert_eq!(highlighted, changed, "{name} {}", row.point_id);
        } else {
            assert!(
                highlighted <= changed && (highlighted > 0) == (changed > 0),
                "{name}"
            );
        }
        assert!(
            drawn[0]
                .title
                .ends_with(&format!(": {changed} voxels changed"))
        );
    }
}
