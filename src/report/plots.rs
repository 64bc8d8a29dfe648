//! Plots of a report: one generic figure (lines and markers over two axes, an optional shaded
//! acceptance band, marked ranges of x and a marked point) drawn by plotters as SVG for the HTML
//! page and as PNG for `OUT/plots/`, and the builders of the report's figures from result rows.
//! Sizes, font and colours come from [`super::style`].

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::prelude::*;
use serde_json::Value;

pub use super::style::SIZE;
use super::style::register_font;
use super::style::{
    AXIS_FONT, BAND, CHOSEN, CLOSEST, FONT, LABEL_FONT, PALETTE, SPAN, TITLE_FONT, draw_mark,
    role_colour,
};
use crate::analysis::figure::{Role, Span};
use crate::metrics::values::short;
use crate::metrics::values::{metric_value, plain};
use crate::runner::results::{PointResult, Status};
use crate::scenario::VARIANT;
use crate::select::Selection;
use crate::select::evaluate::column_value;

/// How an axis maps values to positions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// Linear.
    Linear,
    /// Logarithmic (positive values only; others are not drawn).
    Log,
    /// Linear in `s = sign(e) (log10(|e| / R) + 9)`, the error histogram's signed decades of
    /// the data range `R`: ticks read as `e / R` (`-1e-3`, `0`, `1e-6`).
    SignedDecades,
}

/// One axis: its title and scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Axis title.
    pub label: String,
    /// Scale.
    pub scale: Scale,
}

/// A named set of points, joined by a line in the given order; with `markers`, each point is
/// also drawn as a dot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// The points, finite only.
    pub points: Vec<(f64, f64)>,
    /// Whether to draw a dot at each point.
    pub markers: bool,
    /// What it shows, which sets its colour ([`super::style::role_colour`]); `None`: the
    /// palette's next colour.
    pub role: Option<Role>,
}

/// A point singled out on a figure: the chosen working point, or the closest one.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Its position.
    pub at: (f64, f64),
    /// Legend text.
    pub label: String,
    /// Whether it meets the limits (a black ring) or not (a red ring).
    pub passes: bool,
}

/// A figure: what [`Figure::svg`] and [`Figure::png`] draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File stem of its PNG copy and HTML id, e.g. `rd-psnr`.
    pub name: String,
    /// Title above the plot.
    pub title: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// The series, drawn in order with the palette's colours.
    pub series: Vec<Series>,
    /// Accepted values of y (`min`, `max`; an open end reaches the plot's edge), shaded.
    pub band: Option<(Option<f64>, Option<f64>)>,
    /// The point to ring.
    pub mark: Option<Mark>,
    /// Ranges of x to shade, each with its legend entry.
    pub spans: Vec<Span>,
    /// Width of the legend strip right of the plot, in pixels; `None`: as wide as its
    /// longest entry needs (none without entries).
    pub legend_strip: Option<u32>,
    /// Sentences for the caption: what was left out and why.
    pub notes: Vec<String>,
}

/// A figure drawn once for two outputs: an SVG for the report and a PNG for `plots/`.
pub trait Drawing {
    /// File stem of its PNG copy and HTML id, e.g. `rd-psnr`.
    fn name(&self) -> &str;

    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);

    /// Draws the figure on an area of any plotters backend: the one drawing code behind SVG
    /// and PNG.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;

    /// The figure as an SVG document (`<svg ...>...</svg>`).
    fn svg(&self) -> Result<String, String> {
        register_font();
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, self.size()).into_drawing_area();
            self.draw(&root)
                .and_then(|_| root.present().map_err(|e| e.to_string()))
                .map_err(|e| format!("plot {}: {e}", self.name()))?;
        }
        Ok(text)
    }

    /// The figure's markup in the page, given its PNG: its SVG ([`Drawing::svg`]) by default.
    fn markup(&self, _png: &[u8]) -> Result<String, String> {
        self.svg()
    }

    /// The figure as a PNG image.
    fn png(&self) -> Result<Vec<u8>, String> {
        register_font();
        let size = self.size();
        let mut rgb = vec![0u8; (size.0 * size.1 * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
            self.draw(&root)
                .and_then(|_| root.present().map_err(|e| e.to_string()))
                .map_err(|e| format!("plot {}: {e}", self.name()))?;
        }
        encode_png(&rgb, size)
    }
}

impl Drawing for Figure {
    fn name(&self) -> &str {
        &self.name
    }

    fn size(&self) -> (u32, u32) {
        SIZE
    }

    // Of any size: plots alone, and the panels of science figures.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let area_width = root.dim_in_pixel().0;
        let label_style = TextStyle::from((FONT, LABEL_FONT).into_font());
        let width = |text: &str| {
            root.estimate_text_size(text, &label_style)
                .map_or(0, |s| s.0)
        };
        // Widest legend text: a third of the plot with the swatch.
        let legend = self.legend(|text| width(text) <= area_width / 3 - 44);
        // The legend gets its own strip right of the plot so that it never hides data.
        let strip = self.legend_strip.unwrap_or_else(|| {
            legend
                .iter()
                .map(|(text, _)| width(text))
                .max()
                .map_or(0, |w| w + 44)
        });
        let (plot, side) = root.split_horizontally(area_width - strip);
        let (x, y) = self.ranges();
        let mut builder = ChartBuilder::on(&plot);
        if !self.title.is_empty() {
            builder.caption(&self.title, (FONT, TITLE_FONT));
        }
        let mut chart = builder
            .margin(10)
            .x_label_area_size(50)
            .y_label_area_size(72)
            .build_cartesian_2d(x, y)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(&self.x.label)
            .y_desc(&self.y.label)
            .x_labels(8)
            .y_labels(7)
            .max_light_lines(0)
            .bold_line_style(BLACK.mix(0.08))
            .axis_style(BLACK.mix(0.6))
            .label_style(label_style.clone())
            .axis_desc_style((FONT, AXIS_FONT))
            .draw()
            .map_err(|e| err(&e))?;
        let (xs, ys) = (chart.x_range(), chart.y_range());
        if let Some((lo, hi)) = self.band {
            let lo = lo.map_or(ys.start, |v| v.max(ys.start));
            let hi = hi.map_or(ys.end, |v| v.min(ys.end));
            if lo < hi {
                let corners = [(xs.start, lo), (xs.end, hi)];
                chart
                    .draw_series([Rectangle::new(corners, BAND.mix(0.14).filled())])
                    .map_err(|e| err(&e))?;
                for edge in [lo, hi]
                    .into_iter()
                    .filter(|v| *v > ys.start && *v < ys.end)
                {
                    let line = [(xs.start, edge), (xs.end, edge)];
                    chart
                        .draw_series([PathElement::new(line, BAND.stroke_width(1))])
                        .map_err(|e| err(&e))?;
                }
            }
        }
        for span in &self.spans {
            let (lo, hi) = (span.from.max(xs.start), span.to.min(xs.end));
            if lo < hi {
                let corners = [(lo, ys.start), (hi, ys.end)];
                chart
                    .draw_series([Rectangle::new(corners, SPAN.mix(0.18).filled())])
                    .map_err(|e| err(&e))?;
            }
        }
        for (i, series) in self.series.iter().enumerate() {
            let colour = self.colour(i);
            let points = series.points.iter().copied();
            if series.role.is_none() || !series.markers {
                // The original's curve is wider, so that it shows around an equal decoded one.
                let width = if series.role == Some(Role::Original) {
                    4
                } else {
                    2
                };
                chart
                    .draw_series(LineSeries::new(points.clone(), colour.stroke_width(width)))
                    .map_err(|e| err(&e))?;
            }
            if series.markers {
                chart
                    .draw_series(points.map(|p| Circle::new(p, 4, colour.filled())))
                    .map_err(|e| err(&e))?;
            }
        }
        if let Some(mark) = &self.mark {
            let colour = if mark.passes { CHOSEN } else { CLOSEST };
            chart
                .draw_series([Circle::new(mark.at, 9, colour.stroke_width(2))])
                .map_err(|e| err(&e))?;
        }
        draw_legend(&side, &legend, &label_style).map_err(|e| err(&e))
    }
}

impl Figure {
    /// The colour of series `i`: its role's, or the palette's `i`-th.
    fn colour(&self, i: usize) -> RGBColor {
        match self.series[i].role {
            Some(role) => role_colour(role),
            None => PALETTE[i % PALETTE.len()],
        }
    }

    /// Legend entries (text and swatch) in drawing order, at most [`LEGEND_LINES`]; texts
    /// shortened with an ellipsis until `fits`.
    fn legend(&self, fits: impl Fn(&str) -> bool) -> Vec<(String, Swatch)> {
        let mut entries = Vec::new();
        if let Some((lo, hi)) = self.band {
            let range = super::range_text(lo, hi);
            entries.push((format!("accepted: {range}"), Swatch::Band));
        }
        for span in &self.spans {
            entries.push((span.label.clone(), Swatch::Span));
        }
        // Series without a label (e.g. the lower half of an error bar) have no entry; those
        // that do not fit are summed up in one line.
        let labelled: Vec<(usize, &Series)> = self
            .series
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.label.is_empty())
            .collect();
        let room = LEGEND_LINES - entries.len() - usize::from(self.mark.is_some());
        let shown = if labelled.len() > room {
            room - 1
        } else {
            room
        };
        for &(i, series) in labelled.iter().take(shown) {
            let swatch = Swatch::Line(self.colour(i));
            entries.push((series.label.clone(), swatch));
        }
        if labelled.len() > shown {
            let more = labelled.len() - shown;
            entries.push((format!("and {more} more series"), Swatch::None));
        }
        if let Some(mark) = &self.mark {
            entries.push((mark.label.clone(), Swatch::Ring(mark.passes)));
        }
        // A lone series needs no legend: the title and axes say what it is.
        if entries.len() == 1 && matches!(entries[0].1, Swatch::Line(_)) {
            entries.clear();
        }
        for (text, _) in &mut entries {
            let mut chars: Vec<char> = text.chars().collect();
            while !fits(text) && chars.len() > 1 {
                chars.pop();
                *text = chars.iter().chain(['\u{2026}'].iter()).collect();
            }
        }
        entries
    }

    /// The axes' ranges: the data, the mark and the band's bounds (so that the limit shows
    /// against the points), padded; a point range widened to a visible one.
    fn ranges(&self) -> (AxisRange, AxisRange) {
        let points: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .chain(self.mark.iter().map(|m| m.at))
            .collect();
        let bounds = self.band.iter().flat_map(|(lo, hi)| lo.iter().chain(hi));
        let x = AxisRange::around(points.iter().map(|p| p.0), self.x.scale);
        let y = AxisRange::around(
            points.iter().map(|p| p.1).chain(bounds.copied()),
            self.y.scale,
        );
        (x, y)
    }
}

/// What a legend entry shows.
#[derive(Debug, Clone, Copy)]
pub(super) enum Swatch {
    Band,
    Span,
    Line(RGBColor),
    Ring(bool),
    /// A mark on an image ([`super::style::draw_mark`]).
    Mark(Role),
    /// A filled square, e.g. of highlighted pixels.
    Fill(RGBColor),
    None,
}

/// Legend lines that fit beside a plot.
const LEGEND_LINES: usize = 13;

pub(super) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, Swatch)],
    style: &TextStyle,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let style = style.pos(plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Left,
        plotters::style::text_anchor::VPos::Center,
    ));
    for (i, (text, swatch)) in entries.iter().enumerate() {
        let y = 52 + 26 * i as i32;
        let (x0, x1) = (4, 26);
        match *swatch {
            Swatch::Band => area.draw(&Rectangle::new(
                [(x0, y - 6), (x1, y + 6)],
                BAND.mix(0.3).filled(),
            ))?,
            Swatch::Span => area.draw(&Rectangle::new(
                [(x0, y - 6), (x1, y + 6)],
                SPAN.mix(0.4).filled(),
            ))?,
            Swatch::Line(colour) => {
                area.draw(&PathElement::new(
                    [(x0, y), (x1, y)],
                    colour.stroke_width(2),
                ))?;
                area.draw(&Circle::new(((x0 + x1) / 2, y), 4, colour.filled()))?;
            }
            Swatch::Ring(passes) => {
                let colour = if passes { CHOSEN } else { CLOSEST };
                area.draw(&Circle::new(((x0 + x1) / 2, y), 8, colour.stroke_width(2)))?;
            }
            Swatch::Mark(role) => draw_mark(area, role, ((x0 + x1) / 2, y))?,
            Swatch::Fill(colour) => area.draw(&Rectangle::new(
                [(x0 + 4, y - 7), (x1 - 4, y + 7)],
                colour.filled(),
            ))?,
            Swatch::None => {}
        }
        area.draw(&Text::new(text.as_str(), (x1 + 8, y), style.clone()))?;
    }
    Ok(())
}

/// A plotters coordinate for one axis: the value range and the scale, with readable ticks.
#[derive(Debug, Clone)]
struct AxisRange {
    lo: f64,
    hi: f64,
    scale: Scale,
}

impl AxisRange {
    /// The range around `values` (those the scale can show), padded by 5 % on each side.
    fn around(values: impl Iterator<Item = f64>, scale: Scale) -> AxisRange {
        let log = scale == Scale::Log;
        let (lo, hi) = values
            .filter(|v| v.is_finite() && (!log || *v > 0.0))
            .map(|v| if log { v.log10() } else { v })
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        let (lo, hi) = match (lo, hi) {
            (lo, hi) if lo > hi => (0.0, 1.0),
            // Equal up to rounding noise: one value, shown with a visible range around it.
            (lo, hi) if hi - lo <= 1e-9 * lo.abs().max(hi.abs()) => {
                let pad = if lo == 0.0 { 1.0 } else { 0.05 * lo.abs() };
                (lo - pad, hi + pad)
            }
            (lo, hi) => (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)),
        };
        let (lo, hi) = if log {
            (10f64.powf(lo), 10f64.powf(hi))
        } else {
            (lo, hi)
        };
        AxisRange { lo, hi, scale }
    }

    fn to_linear(&self, v: f64) -> f64 {
        if self.scale == Scale::Log {
            v.log10()
        } else {
            v
        }
    }
}

impl Ranged for AxisRange {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let (lo, hi) = (self.to_linear(self.lo), self.to_linear(self.hi));
        let t = (self.to_linear(*value) - lo) / (hi - lo);
        limit.0 + (t * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let most = hint.max_num_points();
        match self.scale {
            Scale::Log => log_ticks(self.lo, self.hi, most),
            Scale::Linear => linear_ticks(self.lo, self.hi, most),
            Scale::SignedDecades => decade_ticks(self.lo, self.hi, most),
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for AxisRange {
    fn format_ext(&self, value: &f64) -> String {
        match self.scale {
            Scale::SignedDecades if value.abs() < 0.5 => "0".into(),
            Scale::SignedDecades => {
                let sign = if *value < 0.0 { "-" } else { "" };
                match value.abs().round() as i32 - 9 {
                    0 => format!("{sign}1"),
                    exponent => format!("{sign}1e{exponent}"),
                }
            }
            // Ticks are decimals (see `decimal`): their shortest form is exact. Small and large
            // ones in exponent form: 1e-6, not 0.000001.
            _ if *value != 0.0 && !(1e-3..1e5).contains(&value.abs()) => format!("{value:e}"),
            _ => format!("{value}"),
        }
    }
}

/// `k * 10^exponent` as the double nearest the decimal (an integer divided by a power of ten
/// when the exponent is negative), so that ticks print as `0.6`, not `0.6000000000000001`.
fn decimal(k: f64, exponent: i32) -> f64 {
    if exponent < 0 {
        k / 10f64.powi(-exponent)
    } else {
        k * 10f64.powi(exponent)
    }
}

/// Multiples of 1, 2 or 5 times a power of ten within `[lo, hi]`: the finest such step that
/// gives at most `most` ticks.
fn linear_ticks(lo: f64, hi: f64, most: usize) -> Vec<f64> {
    if most == 0 || hi <= lo {
        return Vec::new();
    }
    let mut exponent = ((hi - lo) / most as f64).log10().floor() as i32;
    let mut multiples = [1.0, 2.0, 5.0].into_iter().cycle();
    loop {
        let m = multiples.next().expect("cycled");
        let value = |k: f64| decimal(k * m, exponent);
        let step = value(1.0);
        let (first, last) = ((lo / step).ceil(), (hi / step).floor());
        if last - first < most as f64 {
            return (first as i64..=last as i64)
                .map(|k| value(k as f64))
                .collect();
        }
        if m == 5.0 {
            exponent += 1;
        }
    }
}

/// Whole decades for [`Scale::SignedDecades`]: every n-th, n as small as gives at most `most`.
fn decade_ticks(lo: f64, hi: f64, most: usize) -> Vec<f64> {
    let (first, last) = (lo.ceil() as i64, hi.floor() as i64);
    if most == 0 || first > last {
        return Vec::new();
    }
    let every = (1..)
        .find(|n| (last.div_euclid(*n) - (first + n - 1).div_euclid(*n)) < most as i64)
        .expect("a step that fits");
    (first..=last)
        .filter(|k| k.rem_euclid(every) == 0)
        .map(|k| k as f64)
        .collect()
}

/// Ticks of a log axis: 1, 2 and 5 times powers of ten when they fit, else powers of ten (every
/// n-th decade when even those are too many).
fn log_ticks(lo: f64, hi: f64, most: usize) -> Vec<f64> {
    if most == 0 || hi <= lo || lo <= 0.0 {
        return Vec::new();
    }
    let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let within = |v: &f64| *v >= lo && *v <= hi;
    for multiples in [&[1.0, 2.0, 5.0][..], &[1.0]] {
        let ticks: Vec<f64> = (first..=last)
            .flat_map(|e| multiples.iter().map(move |m| decimal(*m, e)))
            .filter(within)
            .collect();
        if ticks.len() <= most && ticks.len() >= 2 {
            return ticks;
        }
        if ticks.len() > most && multiples.len() == 1 {
            let every = ticks.len().div_ceil(most);
            return ticks.into_iter().step_by(every).collect();
        }
    }
    // Less than a decade with fewer than two of 1, 2, 5: fall back to linear steps.
    linear_ticks(lo, hi, most)
}

/// Working points that differ only in the parameter varied along a curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Family<'a> {
    /// Legend text: the other swept parameters' values (`deflate.level = 6`), or the varied
    /// parameter (`along quantize.bits`) when it is the only one.
    pub label: String,
    /// Its points, in sweep order.
    pub rows: Vec<&'a PointResult>,
}

/// Groups `rows` into curves. The curve varies the first swept parameter (in pipeline order)
/// that takes more than one value among `rows`: the array->array stages, which set the
/// distortion, come first in a chain, so each curve traces a rate-distortion trade-off and the
/// later (often lossless) parameters select the curve. Rows with equal values of every other
/// swept parameter form one family; families in order of their first row's sweep index, points
/// in sweep order. Returns the varied parameter (`None` without one: a single family) and the
/// families.
///
/// With `[[variant]]` pipelines, each variant's rows are grouped on their own (its swept
/// parameters are its own) and its families' labels start with its name; the varied parameter
/// is then `None` unless every variant varies the same one.
pub fn families<'a>(rows: &[&'a PointResult]) -> (Option<String>, Vec<Family<'a>>) {
    let mut rows = rows.to_vec();
    rows.sort_by_key(|r| r.index);
    let mut variants: Vec<(&str, Vec<&'a PointResult>)> = Vec::new();
    for row in &rows {
        let Some(Value::String(name)) = row.params.get(VARIANT) else {
            return families_of_one_pipeline(rows);
        };
        match variants.iter_mut().find(|(v, _)| v == name) {
            Some((_, members)) => members.push(row),
            None => variants.push((name, vec![row])),
        }
    }
    let mut alongs = Vec::new();
    let mut families = Vec::new();
    for (name, members) in variants {
        let (along, own) = families_of_one_pipeline(members);
        alongs.push(along);
        families.extend(own.into_iter().map(|family| Family {
            label: match family.label.as_str() {
                "points" => name.to_string(),
                label if label.starts_with("along ") => name.to_string(),
                label => format!("{name}: {label}"),
            },
            rows: family.rows,
        }));
    }
    // The common swept parameter, when every variant has the same one (none without rows).
    let along = match alongs.split_first() {
        Some((first, rest)) if rest.iter().all(|a| a == first) => first.clone(),
        _ => None,
    };
    (along, families)
}

/// [`families`] of the rows of one pipeline, sorted by sweep index.
fn families_of_one_pipeline<'a>(rows: Vec<&'a PointResult>) -> (Option<String>, Vec<Family<'a>>) {
    let params: Vec<&str> = super::swept(rows.iter().copied())
        .into_iter()
        .filter(|p| *p != VARIANT)
        .collect();
    let value = |row: &PointResult, param: &str| row.params.get(param).map_or("-".into(), plain);
    let along = params.iter().copied().find(|p| {
        let first = rows.first().map(|r| value(r, p));
        rows.iter().any(|r| Some(value(r, p)) != first)
    });
    let others: Vec<&str> = params
        .iter()
        .copied()
        .filter(|p| Some(*p) != along)
        .collect();
    let mut families: Vec<Family<'a>> = Vec::new();
    for row in rows {
        let label = match (others.is_empty(), along) {
            (true, Some(along)) => format!("along {along}"),
            (true, None) => "points".into(),
            (false, _) => others
                .iter()
                .map(|p| format!("{p} = {}", value(row, p)))
                .collect::<Vec<_>>()
                .join(", "),
        };
        match families.iter_mut().find(|f| f.label == label) {
            Some(family) => family.rows.push(row),
            None => families.push(Family {
                label,
                rows: vec![row],
            }),
        }
    }
    (along.map(|p| p.to_string()), families)
}

/// Rate-distortion columns, plotted first when the run has them.
const RATE_DISTORTION: [&str; 4] = ["psnr", "ssim", "reconstructed.psnr", "reconstructed.ssim"];

/// The report's figures, in page order, and notes on what is not plotted:
///
/// 1. rate-distortion: `psnr`, `ssim`, `reconstructed.psnr`, `reconstructed.ssim` (those among
///    `columns`) against the compression ratio (`rd-COLUMN`);
/// 2. each limited column, then each science column (`columns` of the analyses `labels`), not
///    yet plotted, against the ratio (`metric-COLUMN`); a limit on the ratio itself is not
///    plotted;
/// 3. the featured point's error histogram, when measured (`error-histogram`).
///
/// Each limited column's accepted values are shaded, and the featured point (see
/// [`super::featured`]) is ringed. Failed points are left out.
pub fn report_figures(
    selection: &Selection,
    columns: &[String],
    labels: &[&str],
) -> (Vec<Figure>, Vec<String>) {
    let plotted = Plotted {
        rows: selection
            .evaluations
            .iter()
            .map(|e| e.row)
            .filter(|r| r.status == Status::Ok && r.nonfinite().is_none())
            .collect(),
        featured: super::featured(selection),
    };
    let mut notes = Vec::new();
    let rows = selection.evaluations.iter().map(|e| e.row);
    let failed = rows.clone().filter(|r| r.status == Status::Error).count();
    if failed > 0 {
        notes.push(format!(
            "{failed} failed point{} listed in the table but not plotted.",
            if failed == 1 { " is" } else { "s are" }
        ));
    }
    // Their values (science included) are of NaN-holding data: nothing to draw.
    let invalid = rows
        .filter(|r| r.status == Status::Ok && r.nonfinite().is_some())
        .count();
    if invalid > 0 {
        notes.push(format!(
            "{invalid} point{} with NaN or infinite decoded values {} listed in the table but not plotted.",
            if invalid == 1 { "" } else { "s" },
            if invalid == 1 { "is" } else { "are" }
        ));
    }
    let band = |column: &str| {
        let mut relevant = selection
            .limits
            .iter()
            .filter(|l| l.column == column)
            .peekable();
        relevant.peek()?;
        // Several limits on one column: the values all of them accept.
        Some(
            relevant.fold((None, None), |(lo, hi): (Option<f64>, Option<f64>), l| {
                let lo = match (lo, l.min) {
                    (Some(a), Some(b)) => Some(f64::max(a, b)),
                    (a, b) => a.or(b),
                };
                let hi = match (hi, l.max) {
                    (Some(a), Some(b)) => Some(f64::min(a, b)),
                    (a, b) => a.or(b),
                };
                (lo, hi)
            }),
        )
    };
    let science = columns.iter().filter(|c| {
        labels
            .iter()
            .any(|l| c.strip_prefix(l).is_some_and(|f| f.starts_with('.')))
    });
    let mut wanted: Vec<(String, String, &str)> = RATE_DISTORTION
        .iter()
        .filter(|c| columns.iter().any(|k| k == *c))
        .map(|c| (format!("rd-{c}"), format!("Rate-distortion: {c}"), *c))
        .collect();
    for column in super::limited_columns(selection.limits)
        .into_iter()
        .chain(science.map(String::as_str))
    {
        if column != "ratio" && !wanted.iter().any(|w| w.2 == column) {
            wanted.push((
                format!("metric-{column}"),
                format!("{column} vs ratio"),
                column,
            ));
        }
    }
    let mut figures: Vec<Figure> = Vec::new();
    for (name, title, column) in wanted {
        match plotted.versus_ratio(&file_stem(&name, &figures), &title, column, band(column)) {
            Some(figure) => figures.push(figure),
            None => notes.push(format!(
                "{column} is not plotted: no point has a finite value."
            )),
        }
    }
    if let Some(figure) = plotted.featured.and_then(|(row, _)| error_histogram(row)) {
        figures.push(figure);
    }
    (figures, notes)
}

/// `name` with every character but ASCII letters, digits, `-` and `_` replaced by `-`, made
/// unique among `figures` by a numeric suffix.
fn file_stem(name: &str, figures: &[Figure]) -> String {
    let stem = safe_stem(name);
    let taken = |s: &str| figures.iter().any(|f| f.name == s);
    (1..)
        .map(|n| {
            if n == 1 {
                stem.clone()
            } else {
                format!("{stem}-{n}")
            }
        })
        .find(|s| !taken(s))
        .expect("a free name")
}

/// `name` with every character but ASCII letters, digits and `_` replaced by `-`: a file
/// stem and HTML id.
pub(crate) fn safe_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// What the report's figures are drawn from.
pub struct Plotted<'a> {
    /// Measured rows (failed points, and points with NaN or infinite decoded values, are not
    /// plotted).
    pub rows: Vec<&'a PointResult>,
    /// The point to ring and whether it passes.
    pub featured: Option<(&'a PointResult, bool)>,
}

impl Plotted<'_> {
    /// `column` against the compression ratio, one series per family; values that are not
    /// finite are left out and named in the notes. `None` when no row has a finite value.
    pub fn versus_ratio(
        &self,
        name: &str,
        title: &str,
        column: &str,
        band: Option<(Option<f64>, Option<f64>)>,
    ) -> Option<Figure> {
        let (along, families) = families(&self.rows);
        let mut left_out = Vec::new();
        let point = |row: &PointResult| {
            let x = row.rate.as_ref().map_or(f64::NAN, |r| r.ratio);
            (x, column_value(row, column).unwrap_or(f64::NAN))
        };
        let series: Vec<Series> = families
            .iter()
            .map(|family| Series {
                label: family.label.clone(),
                points: family
                    .rows
                    .iter()
                    .filter_map(|row| {
                        let (x, y) = point(row);
                        let why = match column_value(row, column) {
                            _ if !x.is_finite() => format!("ratio = {}", short(x)),
                            Some(_) if y.is_finite() => return Some((x, y)),
                            Some(_) => format!("{column} = {}", short(y)),
                            None if row.value(column).is_some() => "not a number".into(),
                            None => "no value".into(),
                        };
                        left_out.push(format!("{} ({why})", row.point_id));
                        None
                    })
                    .collect(),
                markers: true,
                role: None,
            })
            .filter(|s| !s.points.is_empty())
            .collect();
        if series.is_empty() {
            return None;
        }
        let ratios: Vec<f64> = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .collect();
        let (lo, hi) = ratios.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &r| {
            (lo.min(r), hi.max(r))
        });
        let log = lo > 0.0 && hi / lo > 10.0;
        let mut notes = Vec::new();
        if let (Some(along), true) = (&along, families.len() > 1) {
            notes.push(format!(
                "Each line joins points that differ only in {along}, in sweep order."
            ));
        }
        if !left_out.is_empty() {
            notes.push(format!("Not plotted: {}.", left_out.join(", ")));
        }
        let mark = self.featured.and_then(|(row, passes)| {
            let (x, y) = point(row);
            (x.is_finite() && y.is_finite()).then(|| Mark {
                at: (x, y),
                label: if passes { "chosen" } else { "closest (fails)" }.into(),
                passes,
            })
        });
        Some(Figure {
            name: name.into(),
            title: title.into(),
            x: Axis {
                label: if log {
                    "compression ratio (log scale)".into()
                } else {
                    "compression ratio".into()
                },
                scale: if log { Scale::Log } else { Scale::Linear },
            },
            y: Axis {
                label: column.into(),
                scale: Scale::Linear,
            },
            series,
            band,
            mark,
            spans: Vec::new(),
            legend_strip: None,
            notes,
        })
    }
}

/// The error histogram of `row` (its `error_histogram` metric: signed log-spaced bins of the
/// error relative to the data range, see `metrics::error_stats`) as a step line of the
/// fraction of values per bin on a log axis; `None` when the row has none or it is malformed.
pub fn error_histogram(row: &PointResult) -> Option<Figure> {
    let histogram = row.distortion.get("error_histogram")?;
    let numbers = |key: &str| -> Option<Vec<f64>> {
        histogram
            .get(key)?
            .as_array()?
            .iter()
            .map(metric_value)
            .collect()
    };
    let (edges, counts) = (numbers("edges")?, numbers("counts")?);
    let range = *edges.last()?;
    if counts.len() + 1 != edges.len() || range.is_nan() || range <= 0.0 {
        return None;
    }
    let count = |key: &str| histogram.get(key).and_then(Value::as_u64).unwrap_or(0);
    let (below, above, zeros) = (count("below"), count("above"), count("exact_zero"));
    let total = counts.iter().sum::<f64>() + (below + above) as f64;
    if total == 0.0 {
        return None;
    }
    // The central bin [-m_0, m_0) spans s in [-1, 1]; the edges m_k map to s = 1 + k / 10.
    let s = |e: f64| {
        let decades = (e.abs() / range).log10() + 9.0;
        if e < 0.0 { -decades } else { decades }
    };
    // Empty bins sit at half a count, below every filled bin, so the outline stays closed.
    let floor = 0.5 / total;
    // Only the bins from the first to the last filled one, and one empty bin either side.
    let filled = |c: &f64| *c > 0.0;
    let first = counts.iter().position(filled)?.saturating_sub(1);
    let last = (counts.iter().rposition(filled)? + 1).min(counts.len() - 1);
    let mut points = Vec::with_capacity(2 * (last - first + 1));
    for (i, &c) in counts.iter().enumerate().take(last + 1).skip(first) {
        let (a, b) = (edges[i], edges[i + 1]);
        let (a, b) = if a < 0.0 && b > 0.0 {
            (-1.0, 1.0)
        } else {
            (s(a), s(b))
        };
        let y = if c > 0.0 { c / total } else { floor };
        points.extend([(a, y), (b, y)]);
    }
    let mut notes = vec![format!(
        "Bins: ten per decade of |error| / data range ({}), signed; the central bin holds |error| < 1e-8 of the range ({zeros} exact zeros).",
        short(range)
    )];
    if below + above > 0 {
        notes.push(format!(
            "Beyond the data range (not drawn): {below} below, {above} above."
        ));
    }
    Some(Figure {
        name: "error-histogram".into(),
        title: format!("Error histogram of {}", row.point_id),
        x: Axis {
            label: "(decoded - original) / data range".into(),
            scale: Scale::SignedDecades,
        },
        y: Axis {
            label: "fraction of values per bin".into(),
            scale: Scale::Log,
        },
        series: vec![Series {
            label: row.point_id.clone(),
            points,
            markers: false,
            role: None,
        }],
        band: None,
        mark: None,
        spans: Vec::new(),
        legend_strip: None,
        notes,
    })
}

/// Encodes 8-bit RGB pixels as PNG, fast deflate and the Paeth filter on every row: on the
/// SAXS report's PNGs (plots, analysis figure, triptychs) 30 % less time than choosing each
/// row's filter (adaptive) for 2 % more bytes.
pub(crate) fn encode_png(rgb: &[u8], (width, height): (u32, u32)) -> Result<Vec<u8>, String> {
    use image::ImageEncoder;
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let mut bytes = Vec::new();
    PngEncoder::new_with_quality(&mut bytes, CompressionType::Fast, FilterType::Paeth)
        .write_image(rgb, width, height, image::ColorType::Rgb8)
        .map_err(|e| format!("cannot encode PNG: {e}"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::evaluate::tests::row;
    use serde_json::{Map, json};

    fn swept(index: usize, bits: i64, level: i64) -> PointResult {
        let mut r = row(index, 2.0 + index as f64, json!({"psnr": 30.0}), json!({}));
        let params = json!({"quantize.bits": bits, "deflate.level": level});
        r.params = params.as_object().cloned().unwrap_or_else(Map::new);
        r
    }

    #[test]
    fn families_vary_the_first_swept_parameter_and_group_by_the_others() {
        // bits x level, the last parameter varying fastest, as the sweep expands them.
        let rows: Vec<PointResult> = [(4, 1), (4, 9), (8, 1), (8, 9)]
            .iter()
            .enumerate()
            .map(|(i, &(b, l))| swept(i, b, l))
            .collect();
        let refs: Vec<&PointResult> = rows.iter().rev().collect();
        let (along, families) = families(&refs);
        assert_eq!(along.as_deref(), Some("quantize.bits"));
        let labels: Vec<&str> = families.iter().map(|f| f.label.as_str()).collect();
        assert_eq!(labels, ["deflate.level = 1", "deflate.level = 9"]);
        let indices: Vec<usize> = families[1].rows.iter().map(|r| r.index).collect();
        assert_eq!(indices, [1, 3]);

        // A parameter with one value among the rows does not vary along the curve.
        let fixed: Vec<&PointResult> = vec![&rows[0], &rows[1]];
        let (along, families) = super::families(&fixed);
        assert_eq!(along.as_deref(), Some("deflate.level"));
        assert_eq!(families.len(), 1);
        assert_eq!(families[0].label, "quantize.bits = 4");

        // One swept parameter: one series along it.
        let single: Vec<PointResult> = (0..3).map(|i| row(i, 2.0, json!({}), json!({}))).collect();
        let refs: Vec<&PointResult> = single.iter().collect();
        let (along, families) = super::families(&refs);
        assert_eq!(along.as_deref(), Some("sz3.abs"));
        assert_eq!(families.len(), 1);
        assert_eq!(families[0].label, "along sz3.abs");
        assert_eq!(families[0].rows.len(), 3);
    }

    #[test]
    fn ticks_are_round_numbers_within_the_range() {
        assert_eq!(linear_ticks(0.0, 1.0, 6), [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(linear_ticks(0.31, 0.72, 5), [0.4, 0.5, 0.6, 0.7]);
        assert_eq!(
            linear_ticks(-9.0, 9.0, 10),
            [-8.0, -6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0, 8.0]
        );
        assert_eq!(log_ticks(3.0, 60.0, 8), [5.0, 10.0, 20.0, 50.0]);
        assert_eq!(log_ticks(0.5, 5e4, 6), [1.0, 10.0, 100.0, 1000.0, 10000.0]);
        assert_eq!(log_ticks(1e-9, 1.0, 4), [1e-9, 1e-6, 1e-3, 1.0]);
        // Within one decade without two of 1, 2, 5: linear steps.
        assert_eq!(log_ticks(11.0, 19.0, 5), [12.0, 14.0, 16.0, 18.0]);
    }

    #[test]
    fn signed_decade_ticks_read_as_fractions_of_the_range() {
        let axis = AxisRange {
            lo: -9.0,
            hi: 9.0,
            scale: Scale::SignedDecades,
        };
        let labels: Vec<String> = [-9.0, -6.0, 0.0, 3.0, 9.0]
            .iter()
            .map(|v| axis.format_ext(v))
            .collect();
        assert_eq!(labels, ["-1", "-1e-3", "0", "1e-6", "1"]);
        assert_eq!(
            decade_ticks(-8.4, 8.4, 9),
            [-8.0, -6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0, 8.0]
        );
        assert_eq!(decade_ticks(-2.5, 3.5, 9), [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]);
        assert_eq!(decade_ticks(0.5, 9.5, 3), [3.0, 6.0, 9.0]);
        let log = AxisRange {
            lo: 1e-7,
            hi: 1.0,
            scale: Scale::Log,
        };
        assert_eq!(log.format_ext(&1e-6), "1e-6");
        assert_eq!(log.format_ext(&0.01), "0.01");
        let linear = AxisRange {
            lo: 0.0,
            hi: 1e-4,
            scale: Scale::Linear,
        };
        let labels: Vec<String> = [0.0, 5e-5, -2.5e-5, 2e5]
            .iter()
            .map(|v| linear.format_ext(v))
            .collect();
        assert_eq!(labels, ["0", "5e-5", "-2.5e-5", "2e5"]);
    }

    /// A point whose decoded data hold NaN or infinities is on no plot, not even by its
    /// finite science values, and a note says so.
    #[test]
    fn points_with_nonfinite_decoded_values_are_not_plotted() {
        let science = |dice: f64| json!({"seg": {"dice": dice}});
        let mut invalid = row(0, 16.0, json!({"psnr": "nan"}), science(1.0));
        invalid.nonfinite_decoded = Some(7);
        let rows = [invalid, row(1, 4.0, json!({"psnr": 40.0}), science(0.9))];
        let objective = crate::scenario::limits::Objective::default();
        let selection = crate::select::select(&rows, &[], &objective);
        let (figures, notes) =
            report_figures(&selection, &["psnr".into(), "seg.dice".into()], &["seg"]);
        assert!(
            notes.contains(
                &"1 point with NaN or infinite decoded values is listed in the table but not plotted."
                    .to_string()
            ),
            "{notes:?}"
        );
        assert!(!figures.is_empty());
        for figure in &figures {
            for series in &figure.series {
                assert!(series.points.iter().all(|p| p.0 == 4.0), "{}", figure.name);
            }
        }
    }

    #[test]
    fn non_finite_values_are_left_out_with_a_note_and_failed_points_skipped() {
        let rows = [
            row(0, 2.0, json!({"psnr": "inf"}), json!({})),
            row(1, 4.0, json!({"psnr": 40.0}), json!({})),
            row(2, 8.0, json!({"psnr": "nan"}), json!({})),
            row(3, 16.0, json!({}), json!({})),
        ];
        let plotted = Plotted {
            rows: rows.iter().collect(),
            featured: Some((&rows[1], true)),
        };
        let figure = plotted
            .versus_ratio("rd-psnr", "PSNR", "psnr", Some((Some(30.0), None)))
            .unwrap();
        assert_eq!(figure.series.len(), 1);
        assert_eq!(figure.series[0].points, [(4.0, 40.0)]);
        assert_eq!(
            figure.notes,
            ["Not plotted: p0 (psnr = inf), p2 (psnr = nan), p3 (no value)."]
        );
        assert_eq!(figure.mark.as_ref().map(|m| m.at), Some((4.0, 40.0)));
        // Ratios from 4 to 4: a linear axis.
        assert_eq!(figure.x.scale, Scale::Linear);
        let none = Plotted {
            rows: rows[..1].iter().collect(),
            featured: None,
        };
        assert_eq!(none.versus_ratio("x", "x", "psnr", None), None);
    }

    #[test]
    fn figures_render_the_same_bytes_every_time() {
        let rows: Vec<PointResult> = (0..5)
            .map(|i| {
                row(
                    i,
                    2f64.powi(i as i32 + 1) * 3.0,
                    json!({"psnr": 50.0 - 5.0 * i as f64}),
                    json!({}),
                )
            })
            .collect();
        let plotted = Plotted {
            rows: rows.iter().collect(),
            featured: Some((&rows[2], true)),
        };
        let figure = plotted
            .versus_ratio(
                "rd-psnr",
                "Rate-distortion: PSNR",
                "psnr",
                Some((Some(38.0), None)),
            )
            .unwrap();
        assert_eq!(
            figure.x.scale,
            Scale::Log,
            "ratios 6 to 96 span more than a decade"
        );
        let svg = figure.svg().unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("Rate-distortion: PSNR"));
        assert_eq!(svg, figure.svg().unwrap());
        let png = figure.png().unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(png, figure.png().unwrap());
    }

    #[test]
    fn the_legend_fits_beside_the_plot() {
        let series = |i: usize| Series {
            label: format!("deflate.level = {i}, shuffle.elementsize = 4"),
            points: vec![(1.0, i as f64)],
            markers: true,
            role: None,
        };
        let figure = Figure {
            name: "many".into(),
            title: "many".into(),
            x: Axis {
                label: "x".into(),
                scale: Scale::Linear,
            },
            y: Axis {
                label: "y".into(),
                scale: Scale::Linear,
            },
            series: (0..20).map(series).collect(),
            band: Some((Some(0.5), None)),
            mark: Some(Mark {
                at: (1.0, 2.0),
                label: "chosen".into(),
                passes: true,
            }),
            spans: Vec::new(),
            legend_strip: None,
            notes: Vec::new(),
        };
        let legend = figure.legend(|text| text.chars().count() <= 18);
        let texts: Vec<&str> = legend.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts.len(), LEGEND_LINES);
        assert_eq!(texts[0], "accepted: \u{2265} 0.5");
        assert_eq!(texts[1], "deflate.level = 0\u{2026}");
        assert_eq!(texts[11], "and 10 more series");
        assert_eq!(texts[12], "chosen");
        // And it draws.
        assert!(figure.svg().unwrap().contains("and 10 more series"));
    }

    #[test]
    fn the_error_histogram_is_a_step_outline_of_the_filled_bins() {
        let mut r = row(0, 2.0, json!({}), json!({}));
        // Seven bins of a range 1, the central one [-0.1, 0.1); the outer two empty bins on
        // each side are trimmed to one.
        r.distortion.insert(
            "error_histogram".into(),
            json!({"edges": [-1.0, -0.5, -0.2, -0.1, 0.1, 0.2, 0.5, 1.0],
                   "counts": [0, 0, 1, 2, 1, 0, 0], "below": 0, "above": 0, "exact_zero": 2}),
        );
        let figure = error_histogram(&r).unwrap();
        let s = |e: f64| e.signum() * (e.abs().log10() + 9.0);
        let floor = 0.125;
        assert_eq!(
            figure.series[0].points,
            [
                (s(-0.5), floor),
                (s(-0.2), floor),
                (s(-0.2), 0.25),
                (s(-0.1), 0.25),
                (-1.0, 0.5),
                (1.0, 0.5),
                (s(0.1), 0.25),
                (s(0.2), 0.25),
                (s(0.2), floor),
                (s(0.5), floor),
            ]
        );
        assert_eq!(figure.y.scale, Scale::Log);
        r.distortion
            .insert("error_histogram".into(), json!({"skipped": "x"}));
        assert_eq!(error_histogram(&r), None);
    }
}
