//! The analyses' own figures (I(q) of SAXS, ...): each analysis with a figure hook
//! ([`crate::analysis::registry::AnalysisDef::figures`]) says what to draw from one point's
//! results, as plain [`FigureData`]; this module picks the points and draws the data with the
//! report's one figure type ([`super::plots::Figure`]) and style ([`super::style`]).
//!
//! A figure shows the featured point (the chosen one, or the closest when none passes) and,
//! beside it, the first point in sweep order that fails a limit on one of the analysis's
//! columns, when there is one: the user sees the margin and the failure side by side. The
//! data come from the rows' results, so a figure costs no pass over the data.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::colour_scale::{BAR_HEIGHT, ColourScale, draw_colour_bar, grey};
use super::html::{base64, escape};
use super::plots::{Axis, Drawing, Figure, Scale, Series, Swatch, draw_legend, safe_stem};
use super::style::{
    AXIS_FONT, CLASS_GREYS, DIFFERENCE, FONT, LABEL_FONT, LOWER_PANEL, SIZE, TITLE_FONT, draw_mark,
};

use crate::analysis::figure::{FigureData, Image, Panel, Shading};
use crate::analysis::registry;
use crate::metrics::values::short;
use crate::runner::results::{PointResult, Status};
use crate::scenario::Scenario;
use crate::select::Selection;

/// One analysis figure of the report: the same [`FigureData`] of one or two points, side by
/// side.
#[derive(Debug, Clone, PartialEq)]
pub struct ScienceFigure {
    /// `<analysis>-<figure>` (`saxs-iq`): the HTML id and the stem of its PNG.
    pub name: String,
    /// The points shown, left to right: a heading above its panels (`p3 (chosen)`) and the
    /// figure's data.
    pub columns: Vec<(String, FigureData)>,
    /// Why the points were shown (`p7 is the first point to fail saxs.chi2_reduced = 2.2,
    /// accepted \u{2264} 1.5`), for the caption.
    pub shown: Vec<String>,
}

impl Drawing for ScienceFigure {
    fn name(&self) -> &str {
        &self.name
    }

    /// Width and height in pixels: a plot's width per point; the first panel a plot's
    /// height, every further one [`LOWER_PANEL`].
    fn size(&self) -> (u32, u32) {
        let panels = self
            .columns
            .iter()
            .map(|(_, d)| d.panels.len())
            .max()
            .unwrap_or(1);
        (
            SIZE.0 * self.columns.len().max(1) as u32,
            SIZE.1 + LOWER_PANEL * panels.saturating_sub(1) as u32,
        )
    }

    /// Each point's panels in its column, top to bottom.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let columns = root.split_evenly((1, self.columns.len().max(1)));
        for ((heading, data), area) in self.columns.iter().zip(&columns) {
            // The title centred over the whole column, legend strip included: it is long.
            let title = format!("{heading}: {}", data.title);
            let mut rest = area
                .titled(&title, (FONT, TITLE_FONT))
                .map_err(|e| e.to_string())?;
            // The first panel takes what the title and the lower panels leave.
            let lower = LOWER_PANEL * data.panels.len().saturating_sub(1) as u32;
            let first = rest.dim_in_pixel().1.saturating_sub(lower);
            for (p, panel) in data.panels.iter().enumerate() {
                let height = if p == 0 { first } else { LOWER_PANEL };
                let (this, below) = rest.split_vertically(height);
                match &panel.raster {
                    Some(image) => draw_image(panel, image, &this)?,
                    None => {
                        let mut figure = panel_figure(panel);
                        // One legend width for every panel, so that their x axes line up.
                        figure.legend_strip = Some(SIZE.0 / 3);
                        figure.draw(&this)?;
                    }
                }
                rest = below;
            }
        }
        Ok(())
    }

    /// A figure with an image is its PNG in an `<img>`, as the triptych (one vector
    /// rectangle per pixel would make the page megabytes long); others their SVG.
    fn markup(&self, png: &[u8]) -> Result<String, String> {
        if !self.has_image() {
            return self.svg();
        }
        let (width, height) = self.size();
        Ok(format!(
            "<img width=\"{width}\" height=\"{height}\" alt=\"{}\" src=\"data:image/png;base64,{}\">\n",
            escape(&self.name),
            base64(png)
        ))
    }
}

impl ScienceFigure {
    /// Whether a panel of it is an image.
    fn has_image(&self) -> bool {
        self.columns
            .iter()
            .any(|(_, d)| d.panels.iter().any(|p| p.raster.is_some()))
    }

    /// The caption: the points shown, the figure's notes and the scales of its colour bars.
    pub fn caption(&self) -> String {
        let mut notes = vec![format!("Shown: {}.", self.shown.join("; "))];
        notes.extend(
            self.columns
                .first()
                .into_iter()
                .flat_map(|(_, d)| d.notes.clone()),
        );
        for (heading, data) in &self.columns {
            for image in data.panels.iter().filter_map(|p| p.raster.as_ref()) {
                let zero = image.raster.values.iter().all(|v| *v == 0.0);
                match Colouring::of(image) {
                    Colouring::Scale(ColourScale::Diverging { .. }, quantity) if zero => {
                        notes.push(format!("{heading}: {quantity} is 0 everywhere."));
                    }
                    Colouring::Scale(scale, quantity) => notes.push(format!(
                        "Colour bar of {heading}: {quantity} on a {}.",
                        scale.describe()
                    )),
                    Colouring::Classes(_) => {}
                }
            }
        }
        notes.join(" ")
    }
}

/// Draws an image panel: the image with square pixels, row 0 at the top, axes in the data's
/// pixels, its curves as marks ([`draw_mark`]) and the legend in the strip the curve panels
/// have.
fn draw_image<DB: DrawingBackend>(
    panel: &Panel,
    image: &Image,
    area: &DrawingArea<DB, Shift>,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    area.fill(&WHITE).map_err(|e| err(&e))?;
    let raster = &image.raster;
    let (ny, nx) = (raster.extent.0 as f64, raster.extent.1 as f64);
    let (width, height) = area.dim_in_pixel();
    let strip = SIZE.0 / 3;
    let (plot, side) = area.split_horizontally(width.saturating_sub(strip));
    // Margins that leave a plotting area of the image's aspect ratio.
    let (margin, x_labels, y_labels) = (10u32, 50u32, 60u32);
    let room_x = f64::from(width.saturating_sub(strip + 2 * margin + y_labels));
    let room_y = f64::from(height.saturating_sub(2 * margin + x_labels));
    let scale = (room_x / nx).min(room_y / ny);
    let spare_x = (room_x - scale * nx).max(0.0) as u32;
    let spare_y = (room_y - scale * ny).max(0.0) as u32;
    let mut chart = ChartBuilder::on(&plot)
        .margin(margin)
        .margin_right(margin + spare_x)
        .margin_bottom(margin + spare_y)
        .x_label_area_size(x_labels)
        .y_label_area_size(y_labels)
        .build_cartesian_2d(0.0..nx, -ny..0.0)
        .map_err(|e| err(&e))?;
    // Rows grow downwards, as in an image viewer: y is drawn as -row.
    let flip = |row: f64| -row;
    // (0 - v: no "-0" at the top.)
    let row_label = |v: &f64| short(0.0 - v);
    let column_label = |v: &f64| short(*v);
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&column_label)
        .y_label_formatter(&row_label)
        .axis_style(BLACK.mix(0.6))
        .label_style((FONT, LABEL_FONT))
        .axis_desc_style((FONT, AXIS_FONT))
        .draw()
        .map_err(|e| err(&e))?;
    let colouring = Colouring::of(image);
    let colours = shades(image, &colouring);
    let (step_y, step_x) = (ny / raster.rows as f64, nx / raster.cols as f64);
    let pixels = colours.iter().enumerate().map(|(i, colour)| {
        let (r, c) = ((i / raster.cols) as f64, (i % raster.cols) as f64);
        let corners = [
            (c * step_x, flip(r * step_y)),
            ((c + 1.0) * step_x, flip((r + 1.0) * step_y)),
        ];
        Rectangle::new(corners, colour.filled())
    });
    chart.draw_series(pixels).map_err(|e| err(&e))?;
    let marks = chart.plotting_area();
    for curve in &panel.curves {
        for &(x, y) in &curve.points {
            draw_mark(marks, curve.role, (x, flip(y))).map_err(|e| err(&e))?;
        }
    }
    let mut legend: Vec<(String, Swatch)> = panel
        .curves
        .iter()
        .map(|c| (c.label.clone(), Swatch::Mark(c.role)))
        .collect();
    if image.highlight.is_some() {
        legend.push((image.highlight_label.clone(), Swatch::Fill(DIFFERENCE)));
    }
    if let Colouring::Scale(ColourScale::Diverging { half_width }, _) = &colouring {
        let half_width = *half_width;
        let finite = raster.values.iter().copied().filter(|v| v.is_finite());
        let largest = finite.fold(0.0, |m: f64, v| m.max(v.abs()));
        if largest > half_width {
            legend.push((format!("larger: up to {}", short(largest)), Swatch::None));
        }
    }
    let style = TextStyle::from((FONT, LABEL_FONT).into_font());
    draw_legend(&side, &legend, &style).map_err(|e| err(&e))?;
    if let Colouring::Scale(scale, quantity) = &colouring {
        // At the foot of the legend strip, level with the image's bottom rows.
        let (side_width, side_height) = side.dim_in_pixel();
        let top = side_height.saturating_sub(BAR_HEIGHT + margin + x_labels);
        let bar = side.shrink((8, top), (side_width.saturating_sub(24), BAR_HEIGHT));
        draw_colour_bar(&bar, scale, quantity)?;
    }
    Ok(())
}

/// How an image's pixels get their colours.
enum Colouring {
    /// On a value scale, with what the values are (the colour bar's title).
    Scale(ColourScale, &'static str),
    /// One grey level per class of `0..classes`.
    Classes(usize),
}

impl Colouring {
    /// The colouring of `image`: intensities dark on light on the grey scale of their finite
    /// values, differences on the diverging scale, classes from [`CLASS_GREYS`]'s light to
    /// dark.
    fn of(image: &Image) -> Colouring {
        let finite = image
            .raster
            .values
            .iter()
            .copied()
            .filter(|v| v.is_finite());
        match image.shading {
            Shading::Intensity(quantity) => {
                Colouring::Scale(ColourScale::grey(finite.collect(), true), quantity)
            }
            Shading::Difference(quantity) => {
                Colouring::Scale(ColourScale::diverging(finite), quantity)
            }
            Shading::Classes(classes) => Colouring::Classes(classes),
        }
    }
}

/// The colour of each pixel of `image` by its `colouring`; highlighted pixels in the
/// difference colour.
fn shades(image: &Image, colouring: &Colouring) -> Vec<RGBColor> {
    let level: Box<dyn Fn(f64) -> [u8; 3]> = match colouring {
        Colouring::Scale(scale, _) => {
            let shader = scale.shader();
            Box::new(move |v| shader.colour(v))
        }
        Colouring::Classes(classes) => {
            let (light, dark) = (f64::from(CLASS_GREYS.0), f64::from(CLASS_GREYS.1));
            let top = classes.saturating_sub(1).max(1) as f64;
            Box::new(move |c| grey((light + (dark - light) * c / top) / 255.0))
        }
    };
    image
        .raster
        .values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let highlighted = image
                .highlight
                .as_ref()
                .is_some_and(|h| h.values.get(i).is_some_and(|&m| m > 0.0));
            if highlighted {
                DIFFERENCE
            } else {
                rgb(level(v))
            }
        })
        .collect()
}

fn rgb([r, g, b]: [u8; 3]) -> RGBColor {
    RGBColor(r, g, b)
}

/// A panel as the report's figure type, its curves coloured by role.
fn panel_figure(panel: &Panel) -> Figure {
    let scale = |log| if log { Scale::Log } else { Scale::Linear };
    Figure {
        name: String::new(),
        title: String::new(),
        x: Axis {
            label: panel.x_label.clone(),
            scale: scale(panel.log_x),
        },
        y: Axis {
            label: panel.y_label.clone(),
            scale: scale(panel.log_y),
        },
        series: panel
            .curves
            .iter()
            .map(|c| Series {
                label: c.label.clone(),
                points: c.points.clone(),
                markers: c.markers,
                role: Some(c.role),
            })
            .collect(),
        band: None,
        mark: None,
        spans: panel.spans.clone(),
        legend_strip: None,
        notes: Vec::new(),
    }
}

/// The figures of every analysis of `scenario` that has a figure hook, in the scenario's
/// order, for the featured point and the first point failing a limit on the analysis's
/// columns (see the module doc). None without a featured point that was measured.
pub fn science_figures(scenario: &Scenario, selection: &Selection) -> Vec<ScienceFigure> {
    let measured = |row: &PointResult| row.status == Status::Ok && row.nonfinite().is_none();
    let Some((featured, passes)) = super::featured(selection).filter(|(row, _)| measured(row))
    else {
        return Vec::new();
    };
    let mut figures = Vec::new();
    for spec in &scenario.analyses {
        let Some(hook) = registry::find(spec.config.stage).and_then(|def| def.figures) else {
            continue;
        };
        let label = spec.label.as_str();
        let prefix = format!("{label}.");
        let failing = super::first_failing(selection, &prefix);
        let role = if passes {
            "the chosen point"
        } else {
            "the closest point (none passes)"
        };
        let mut shown = vec![format!("{} on the left, {role}", featured.point_id)];
        let short_role = if passes { "chosen" } else { "closest" };
        let mut points = vec![(format!("{} ({short_role})", featured.point_id), featured)];
        if let Some((row, failed)) = failing {
            shown.push(format!(
                "{} on the right, the first point in sweep order to fail a limit of {label}: {}",
                row.point_id,
                failed.join(", ")
            ));
            points.push((format!("{} (first to fail)", row.point_id), row));
        }
        let drawn: Vec<Vec<(String, FigureData)>> = points
            .into_iter()
            .map(|(heading, row)| {
                let results = row.science.get(label).cloned().unwrap_or_default();
                hook(&results)
                    .into_iter()
                    .map(|data| (heading.clone(), data))
                    .collect()
            })
            .collect();
        // Figure by figure, the points side by side.
        for (k, (_, first)) in drawn[0].iter().enumerate() {
            figures.push(ScienceFigure {
                name: safe_stem(&format!("{label}-{}", first.name)),
                columns: drawn
                    .iter()
                    .filter_map(|point| point.get(k).filter(|(_, d)| d.name == first.name))
                    .cloned()
                    .collect(),
                shown: shown.clone(),
            });
        }
    }
    figures
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::figure::Raster;

    fn difference_figure(values: Vec<f64>) -> FigureData {
        FigureData {
            name: "two-time",
            title: String::new(),
            panels: vec![Panel {
                x_label: "t2".into(),
                y_label: "t1".into(),
                log_x: false,
                log_y: false,
                curves: Vec::new(),
                spans: Vec::new(),
                raster: Some(Image {
                    raster: Raster {
                        rows: 2,
                        cols: 2,
                        extent: (2, 2),
                        values,
                    },
                    shading: Shading::Difference("C_decoded - C_original"),
                    highlight: None,
                    highlight_label: String::new(),
                }),
            }],
            notes: Vec::new(),
        }
    }

    /// The caption states each column's colour bar with the ends drawn on it, and says when
    /// a difference map is 0 everywhere instead of a window no difference set; the figure
    /// draws with its bars.
    #[test]
    fn the_caption_states_each_colour_bar() {
        let figure = ScienceFigure {
            name: "xpcs-two-time".into(),
            columns: vec![
                ("p1 (chosen)".into(), difference_figure(vec![0.0; 4])),
                (
                    "p2 (first to fail)".into(),
                    difference_figure(vec![0.0, 0.5, -0.25, f64::NAN]),
                ),
            ],
            shown: vec!["p1 on the left".into()],
        };
        assert_eq!(
            figure.caption(),
            "Shown: p1 on the left. p1 (chosen): C_decoded - C_original is 0 everywhere. \
             Colour bar of p2 (first to fail): C_decoded - C_original on a linear scale from \
             -0.5 to 0.5 (\u{b1} the 99th percentile of the nonzero absolute values)."
        );
        let png = figure.png().unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
    }
}
