//! What an analysis's figure shows, as plain data: the analysis picks the curves out of its
//! results (original against decoded), the report ([`crate::report::science`]) draws them.
//!
//! Keeping the drawing in the report and the choice of data here means a new analysis with a
//! figure stays one file plus one registry line ([`super::registry::AnalysisDef::figures`]),
//! and the analysis layer never imports the report.

use serde_json::Value;

use crate::metrics::values::metric_value;

/// What a curve is: it sets the curve's colour and dash in the report's one plot style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Computed from the original data.
    Original,
    /// Computed from the decoded data.
    Decoded,
    /// A difference of decoded and original (or its bound, e.g. one error bar).
    Difference,
    /// Found in the original and not in the decoded data (e.g. a missed Bragg peak).
    Missed,
    /// Found in the decoded data and not in the original (e.g. a spurious Bragg peak).
    Spurious,
}

/// A named polyline (`markers`: a dot at each point instead of a line).
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Legend text.
    pub label: String,
    /// Its role, which sets its colour.
    pub role: Role,
    /// The points, finite only, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Dots instead of a line.
    pub markers: bool,
}

/// A range of x marked on a panel (e.g. the Guinier range), with its legend text.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Legend text.
    pub label: String,
    /// Its ends, `from < to`.
    pub from: f64,
    /// See `from`.
    pub to: f64,
}

/// One plot of a figure: axes, curves, marked ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Horizontal axis title.
    pub x_label: String,
    /// Vertical axis title.
    pub y_label: String,
    /// Logarithmic x (positive values only).
    pub log_x: bool,
    /// Logarithmic y (positive values only).
    pub log_y: bool,
    /// The curves, drawn in order.
    pub curves: Vec<Curve>,
    /// Marked ranges of x.
    pub spans: Vec<Span>,
    /// An image under the curves (then x is the column and y the row, row 0 at the top, and
    /// the curves are marks on it).
    pub raster: Option<Image>,
}

/// How a [`Raster`]'s values are shaded. Intensities and differences get a colour bar in the
/// data's units, titled with what the values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shading {
    /// Intensities (`counts`): dark is high, on the report's grey scale (asinh when the values
    /// span more than three decades, as the triptych's).
    Intensity(&'static str),
    /// Class indices `0..classes`, one grey level each.
    Classes(usize),
    /// Signed differences (`C_decoded - C_original`): the triptych's diverging blue-white-red
    /// map and window.
    Difference(&'static str),
}

/// An image of `rows` x `cols` pixels covering `[0, extent.0)` rows and `[0, extent.1)`
/// columns of the data (pixel `(r, c)` covers `extent.0 / rows` of them from `r extent.0 /
/// rows`, likewise for columns), kept small for the report: see [`Raster::block_max`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Raster {
    /// Pixel rows.
    pub rows: usize,
    /// Pixel columns.
    pub cols: usize,
    /// The data's rows and columns the image covers.
    pub extent: (usize, usize),
    /// Row-major values, `rows * cols`.
    pub values: Vec<f64>,
}

/// An image shaded by `shading`, with the pixels where `highlight` is nonzero drawn in the
/// difference colour instead (e.g. voxels whose class changed).
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// The values.
    pub raster: Raster,
    /// How they are shaded.
    pub shading: Shading,
    /// Same size as `raster`, or `None`.
    pub highlight: Option<Raster>,
    /// Legend text of the highlighted pixels.
    pub highlight_label: String,
}

/// A figure of one working point: panels stacked top to bottom, the first the largest.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureData {
    /// What it shows, the second part of its file name `<analysis>-<name>.png` (`iq`).
    pub name: &'static str,
    /// Title of the figure.
    pub title: String,
    /// The panels, at least one.
    pub panels: Vec<Panel>,
    /// Sentences for the caption (what is drawn, what was left out).
    pub notes: Vec<String>,
}

impl Raster {
    /// The caption's sentence on a raster of a `what` (`"slice"`, `"frame"`) shown at fewer
    /// pixels than the data have, each pixel being `each`; empty when shown whole.
    pub fn shrunk_note(&self, what: &str, each: &str) -> String {
        let (ny, nx) = self.extent;
        if self.rows < ny {
            format!(
                " The {ny} x {nx} {what} is shown at {} x {} pixels, each {each}.",
                self.rows, self.cols
            )
        } else {
            String::new()
        }
    }

    /// `image` (`ny` x `nx`, row-major) shrunk by the smallest integer factor `k` that brings
    /// its longer side to at most `max_side`: each pixel the largest value of its `k` x `k`
    /// block (edge blocks are smaller), so that a bright spot or a changed voxel stays
    /// visible. `k = 1` keeps it as it is.
    pub fn block_max(image: &[f64], (ny, nx): (usize, usize), max_side: usize) -> Raster {
        debug_assert_eq!(image.len(), ny * nx);
        let k = ny.max(nx).div_ceil(max_side.max(1)).max(1);
        let (rows, cols) = (ny.div_ceil(k), nx.div_ceil(k));
        let mut values = vec![f64::NEG_INFINITY; rows * cols];
        for (i, &v) in image.iter().enumerate() {
            let at = &mut values[(i / nx / k) * cols + (i % nx) / k];
            *at = at.max(v);
        }
        Raster {
            rows,
            cols,
            extent: (ny, nx),
            values,
        }
    }

    /// Whether its sizes agree (`rows * cols` values, at most one pixel per data row and
    /// column): a raster read from another process's bytes is checked with it.
    pub fn check(&self) -> Result<(), String> {
        if self.values.len() != self.rows * self.cols
            || self.rows > self.extent.0
            || self.cols > self.extent.1
        {
            return Err(format!(
                "a raster of {} x {} pixels over {:?} holds {} values",
                self.rows,
                self.cols,
                self.extent,
                self.values.len()
            ));
        }
        Ok(())
    }

    /// Its JSON form in an analysis's results: `rows`, `cols`, `extent` and the values as one
    /// string per row, space-separated in Rust's shortest round-trip form (`12`, `0.5`), which
    /// keeps a frame of counts a few bytes per pixel in `results.jsonl` and in memory.
    pub fn to_json(&self) -> Value {
        let lines: Vec<Value> = self
            .values
            .chunks(self.cols.max(1))
            .map(|row| {
                let text: Vec<String> = row.iter().map(f64::to_string).collect();
                Value::from(text.join(" "))
            })
            .collect();
        serde_json::json!({
            "rows": self.rows,
            "cols": self.cols,
            "extent": [self.extent.0, self.extent.1],
            "values": lines,
        })
    }

    /// The raster of [`Raster::to_json`]'s form; `None` when `value` is not one.
    pub fn from_json(value: &Value) -> Option<Raster> {
        let size = |v: &Value| v.as_u64().and_then(|n| usize::try_from(n).ok());
        let extent = value.get("extent")?.as_array()?;
        let raster = Raster {
            rows: size(value.get("rows")?)?,
            cols: size(value.get("cols")?)?,
            extent: (size(extent.first()?)?, size(extent.get(1)?)?),
            values: value
                .get("values")?
                .as_array()?
                .iter()
                .map(|line| line.as_str())
                .collect::<Option<Vec<&str>>>()?
                .iter()
                .flat_map(|line| line.split(' ').map(str::parse::<f64>))
                .collect::<Result<Vec<f64>, _>>()
                .ok()?,
        };
        raster.check().ok().map(|_| raster)
    }
}

/// The number at `key` of a results object, when it is one (`"inf"`, `"nan"` included).
pub fn number(results: &Value, key: &str) -> Option<f64> {
    results.get(key).and_then(metric_value)
}

/// The numbers of the array at `key` of a results object, `None` for its nulls and
/// non-numbers; empty when there is no such array.
pub fn numbers(results: &Value, key: &str) -> Vec<Option<f64>> {
    results.get(key).map(values).unwrap_or_default()
}

/// The numbers of the array `array`, `None` for its nulls and non-numbers; empty when it is
/// not an array.
pub fn values(array: &Value) -> Vec<Option<f64>> {
    array
        .as_array()
        .map(|a| a.iter().map(metric_value).collect())
        .unwrap_or_default()
}

/// The points `(x, y)` of two parallel arrays where both are finite and, on a logarithmic
/// axis, positive.
pub fn pairs(
    x: &[Option<f64>],
    y: &[Option<f64>],
    (log_x, log_y): (bool, bool),
) -> Vec<(f64, f64)> {
    let fits = |v: Option<f64>, log: bool| v.filter(|v| v.is_finite() && (!log || *v > 0.0));
    x.iter()
        .zip(y)
        .filter_map(|(&x, &y)| Some((fits(x, log_x)?, fits(y, log_y)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pairs_keep_only_points_the_axes_can_show() {
        let results = json!({"x": [1.0, 2.0, null, 4.0, 5.0], "y": [1.0, -2.0, 3.0, "nan", 5.0]});
        let (x, y) = (numbers(&results, "x"), numbers(&results, "y"));
        assert_eq!(
            pairs(&x, &y, (false, false)),
            [(1.0, 1.0), (2.0, -2.0), (5.0, 5.0)]
        );
        assert_eq!(pairs(&x, &y, (true, true)), [(1.0, 1.0), (5.0, 5.0)]);
        assert_eq!(number(&results, "z"), None);
        assert!(numbers(&results, "z").is_empty());
    }

    /// A 5 x 7 image shrunk to at most 3 pixels a side: blocks of 3 x 3 (edge blocks
    /// smaller), each its largest value; its JSON form reads back to the same raster.
    #[test]
    fn a_raster_keeps_each_blocks_largest_value_and_reads_back_from_json() {
        let image: Vec<f64> = (0..35)
            .map(|i| f64::from(i % 7 * 10 + i / 7) / 4.0)
            .collect();
        let raster = Raster::block_max(&image, (5, 7), 3);
        assert_eq!((raster.rows, raster.cols, raster.extent), (2, 3, (5, 7)));
        // Value at (row r, column c) = (10 c + r) / 4.
        let at = |r: usize, c: usize| (10 * c + r) as f64 / 4.0;
        assert_eq!(
            raster.values,
            [at(2, 2), at(2, 5), at(2, 6), at(4, 2), at(4, 5), at(4, 6)]
        );
        assert_eq!(Raster::from_json(&raster.to_json()), Some(raster.clone()));
        assert_eq!(raster.to_json()["values"][0], "5.5 13 15.5");
        let same = Raster::block_max(&image, (5, 7), 7);
        assert_eq!((same.rows, same.cols, same.values.clone()), (5, 7, image));
        let mut wrong = raster.to_json();
        wrong["rows"] = 3.into();
        assert_eq!(Raster::from_json(&wrong), None);
        wrong["rows"] = 2.into();
        wrong["values"][1] = "1 x 2".into();
        assert_eq!(Raster::from_json(&wrong), None);
    }
}
