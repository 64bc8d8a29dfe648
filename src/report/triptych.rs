//! The slice triptych: the original, the decoded slice and their signed difference side by side
//! in one PNG image, with a colour bar under each scale.
//!
//! Original and decoded share one grey scale, from the 0.5th to the 99.5th percentile of both
//! (so that they compare, and a few extreme pixels do not wash out the contrast; values beyond
//! are clamped). When the data are non-negative and span more than three decades above their
//! floor (the 0.5th percentile of the positive values, at least one count for integer data, so
//! photon counts with empty pixels qualify), the grey level is `asinh(v / floor)`: linear below
//! the floor, logarithmic above, so that a scattering pattern's faint rings show next to its
//! bright centre ([`Display`]). The difference `decoded - original` uses a diverging
//! blue-white-red map symmetric about 0, from `-m` to `+m` with `m` the 99th percentile of the
//! nonzero absolute differences (so that the panel shows where the errors are, not only the one
//! largest; larger ones saturate). Slices are fitted into square panels, nearest pixel; when a
//! slice is shrunk, each difference pixel shows the largest-magnitude difference it covers, so
//! that isolated errors stay visible. Non-finite values are magenta. [`caption`] says which
//! scales were used.
//!
//! It is a bitmap, not SVG: one vector rectangle per pixel would make the page megabytes long.

use ndarray::Array2;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::plots::encode_png;
use super::style::{FONT, LABEL_FONT, SMALL_FONT, register_font};
use crate::metrics::values::short;
use crate::runner::slices::Triptych;

/// Side of a panel, in pixels.
const PANEL: u32 = 360;
/// Space between and around panels.
const GAP: u32 = 28;
/// Height of the title row above the panels.
const TITLE: u32 = 34;
/// Height of a colour bar.
const BAR: u32 = 14;
/// Width and height of the image.
pub const SIZE: (u32, u32) = (3 * PANEL + 4 * GAP, TITLE + PANEL + 12 + BAR + 30);

const WHITE_RGB: [u8; 3] = [255, 255, 255];
const RED_END: [u8; 3] = [178, 34, 52];
const BLUE_END: [u8; 3] = [52, 34, 178];
/// Colour of non-finite values.
const FLAG: [u8; 3] = [255, 0, 255];
/// Dynamic range (highest over floor) above which the grey scale is [`Display::Asinh`].
const DECADES: f64 = 1e3;
/// Percentile of the nonzero absolute differences that sets the difference window.
const DIFFERENCE_PERCENTILE: f64 = 0.99;

/// How values map to grey levels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Display {
    /// Linear in the value.
    Linear,
    /// Linear in `asinh(v / floor)`: linear below `floor`, logarithmic above.
    Asinh {
        /// Where the scale turns logarithmic.
        floor: f64,
    },
}

impl Display {
    /// The display for `values` (finite): [`Display::Asinh`] when they are non-negative and
    /// their 99.5th percentile exceeds 1000 times their floor (the 0.5th percentile of
    /// the positive values, at least 1 when every value is an integer).
    pub fn of(values: &[f64]) -> Display {
        grey_scale(values.to_vec()).0
    }

    /// [`Display::of`] values sorted in increasing order (no copy of them is made).
    fn of_sorted(sorted: &[f64]) -> Display {
        let positive = &sorted[sorted.partition_point(|v| *v <= 0.0)..];
        if positive.is_empty() || nearest_rank(sorted, 0.005) < 0.0 {
            return Display::Linear;
        }
        let mut floor = nearest_rank(positive, 0.005);
        if sorted.iter().all(|v| v.fract() == 0.0) {
            floor = floor.max(1.0);
        }
        if nearest_rank(sorted, 0.995) > DECADES * floor {
            Display::Asinh { floor }
        } else {
            Display::Linear
        }
    }

    /// `v` on the display's linear axis.
    pub(crate) fn forward(self, v: f64) -> f64 {
        match self {
            Display::Linear => v,
            Display::Asinh { floor } => (v / floor).asinh(),
        }
    }

    /// The value at `t` of the display's linear axis.
    fn inverse(self, t: f64) -> f64 {
        match self {
            Display::Linear => t,
            Display::Asinh { floor } => t.sinh() * floor,
        }
    }
}

/// The scales of a triptych: grey window and display, difference window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scales {
    /// The grey map's display.
    pub display: Display,
    /// The grey window: 0.5th and 99.5th percentile of original and decoded.
    pub window: (f64, f64),
    /// The difference window's half-width `m` (see the module doc); 1 without differences.
    pub difference: f64,
    /// The largest absolute difference.
    pub largest: f64,
}

impl Scales {
    /// The scales of the slices `original` and `decoded` and their `difference`.
    pub fn of(original: &Array2<f64>, decoded: &Array2<f64>, difference: &Array2<f64>) -> Scales {
        let values: Vec<f64> = finite(original).chain(finite(decoded)).collect();
        let (display, window) = grey_scale(values);
        let (difference, largest) = difference_window(finite(difference));
        Scales {
            display,
            window,
            difference,
            largest,
        }
    }
}

/// The difference window `m` of the finite `differences` (the 99th percentile of their
/// nonzero magnitudes, 1 when there are none) and their largest magnitude: the colours run
/// from `-m` to `+m`, so that one outlier does not turn every other difference white.
pub(crate) fn difference_window(differences: impl Iterator<Item = f64>) -> (f64, f64) {
    let mut nonzero: Vec<f64> = differences.map(f64::abs).filter(|v| *v > 0.0).collect();
    let largest = nonzero.iter().copied().fold(0.0, f64::max);
    if nonzero.is_empty() {
        (1.0, largest)
    } else {
        (percentile(&mut nonzero, DIFFERENCE_PERCENTILE), largest)
    }
}

/// The caption's sentences on the scales of `triptych`: the grey scale (linear or asinh, its
/// window) and the difference window.
pub fn caption(triptych: &Triptych) -> String {
    let difference = &triptych.decoded - &triptych.original;
    let scales = Scales::of(&triptych.original, &triptych.decoded, &difference);
    let (lo, hi) = scales.window;
    let grey = match scales.display {
        Display::Linear => format!(
            "Original and decoded share one linear grey scale from {} to {} (0.5th to 99.5th percentile).",
            short(lo),
            short(hi)
        ),
        Display::Asinh { floor } => format!(
            "Original and decoded share one asinh grey scale, logarithmic above {} and linear below (the data span more than three decades), from {} to {} (0.5th to 99.5th percentile).",
            short(floor),
            short(lo),
            short(hi)
        ),
    };
    let clipped = if scales.largest > scales.difference {
        format!(
            "; larger differences, up to {}, show at full colour",
            short(scales.largest)
        )
    } else {
        String::new()
    };
    format!(
        "{grey} The difference runs from blue (negative) through white (0) to red (positive), up to \u{b1}{}, the 99th percentile of the nonzero absolute differences{clipped}.",
        short(scales.difference)
    )
}

/// The diverging map: white at 0, towards blue for negative and red for positive `t`, clamped
/// to `[-1, 1]`; the ends mirror each other (red and blue channels swapped), so equal
/// magnitudes get equally strong colours. NaN is magenta.
pub fn diverging(t: f64) -> [u8; 3] {
    if t.is_nan() {
        return FLAG;
    }
    let t = t.clamp(-1.0, 1.0);
    let (end, amount) = if t < 0.0 {
        (BLUE_END, -t)
    } else {
        (RED_END, t)
    };
    std::array::from_fn(|c| {
        let (from, to) = (f64::from(WHITE_RGB[c]), f64::from(end[c]));
        (from + (to - from) * amount).round() as u8
    })
}

/// The grey map: black at 0, white at 1, clamped; NaN is magenta.
pub fn grey(t: f64) -> [u8; 3] {
    if t.is_nan() {
        return FLAG;
    }
    [(255.0 * t.clamp(0.0, 1.0)).round() as u8; 3]
}

/// The triptych as PNG bytes, [`SIZE`] pixels. Errors when the slices differ in shape or are
/// empty.
pub fn png(triptych: &Triptych) -> Result<Vec<u8>, String> {
    let (original, decoded) = (&triptych.original, &triptych.decoded);
    if original.dim() != decoded.dim() || original.is_empty() {
        return Err(format!(
            "triptych of point {}: original {:?} and decoded {:?} must be equal, non-empty shapes",
            triptych.point_id,
            original.dim(),
            decoded.dim()
        ));
    }
    let difference = decoded - original;
    let scales = Scales::of(original, decoded, &difference);
    let display = scales.display;
    let (lo, hi) = (
        display.forward(scales.window.0),
        display.forward(scales.window.1),
    );
    let scale = scales.difference;

    let (width, height) = SIZE;
    let mut rgb = vec![255u8; (width * height * 3) as usize];
    let mut put = |x: u32, y: u32, colour: [u8; 3]| {
        let at = ((y * width + x) * 3) as usize;
        rgb[at..at + 3].copy_from_slice(&colour);
    };
    let panels = [(original, false), (decoded, false), (&difference, true)];
    let (rows, cols) = original.dim();
    let fit = f64::from(PANEL) / rows.max(cols) as f64;
    let (pw, ph) = (
        ((cols as f64 * fit).round() as u32).max(1),
        ((rows as f64 * fit).round() as u32).max(1),
    );
    for (p, (values, signed)) in panels.into_iter().enumerate() {
        let x0 = GAP + p as u32 * (PANEL + GAP) + (PANEL - pw) / 2;
        let y0 = TITLE + (PANEL - ph) / 2;
        for py in 0..ph {
            let (r0, r1) = block(py, ph, rows);
            for px in 0..pw {
                let (c0, c1) = block(px, pw, cols);
                let colour = if signed {
                    // The largest-magnitude difference of the block (NaN wins).
                    let v = values
                        .slice(ndarray::s![r0..r1, c0..c1])
                        .iter()
                        .copied()
                        .fold(0.0, |m: f64, v| {
                            if v.is_nan() || v.abs() > m.abs() {
                                v
                            } else {
                                m
                            }
                        });
                    diverging(v / scale)
                } else {
                    grey((display.forward(values[[r0, c0]]) - lo) / (hi - lo))
                };
                put(x0 + px, y0 + py, colour);
            }
        }
    }
    // Colour bars: grey under the first two panels, diverging under the third.
    let bar_y = TITLE + PANEL + 12;
    let grey_bar = (GAP, 2 * PANEL + GAP);
    let signed_bar = (3 * GAP + 2 * PANEL, PANEL);
    for x in 0..grey_bar.1 {
        let colour = grey(f64::from(x) / f64::from(grey_bar.1 - 1));
        (0..BAR).for_each(|y| put(grey_bar.0 + x, bar_y + y, colour));
    }
    for x in 0..signed_bar.1 {
        let colour = diverging(2.0 * f64::from(x) / f64::from(signed_bar.1 - 1) - 1.0);
        (0..BAR).for_each(|y| put(signed_bar.0 + x, bar_y + y, colour));
    }

    register_font();
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        let draw = |text: &str, x: u32, y: u32, h: HPos, size: u32| {
            let style = (FONT, size)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(h, VPos::Top));
            root.draw(&Text::new(text, (x as i32, y as i32), style))
                .map_err(|e| e.to_string())
        };
        let titles = ["original", "decoded", "decoded - original"];
        for (p, title) in titles.iter().enumerate() {
            let centre = GAP + p as u32 * (PANEL + GAP) + PANEL / 2;
            draw(title, centre, 8, HPos::Center, LABEL_FONT + 2)?;
            let x0 = GAP + p as u32 * (PANEL + GAP) + (PANEL - pw) / 2;
            let y0 = TITLE + (PANEL - ph) / 2;
            let frame = [
                (x0 as i32 - 1, y0 as i32 - 1),
                ((x0 + pw) as i32, (y0 + ph) as i32),
            ];
            root.draw(&Rectangle::new(frame, BLACK.mix(0.4)))
                .map_err(|e| e.to_string())?;
        }
        let label_y = bar_y + BAR + 5;
        let middle = match display {
            Display::Linear => short(display.inverse((lo + hi) / 2.0)),
            Display::Asinh { .. } => {
                format!("{} (asinh scale)", short(display.inverse((lo + hi) / 2.0)))
            }
        };
        let (low, high) = scales.window;
        for ((x, w), [left, middle, right]) in [
            (grey_bar, [short(low), middle, short(high)]),
            (signed_bar, [short(-scale), "0".into(), short(scale)]),
        ] {
            let frame = [
                (x as i32 - 1, bar_y as i32 - 1),
                ((x + w) as i32, (bar_y + BAR) as i32),
            ];
            root.draw(&Rectangle::new(frame, BLACK.mix(0.4)))
                .map_err(|e| e.to_string())?;
            draw(&left, x, label_y, HPos::Left, SMALL_FONT)?;
            draw(&middle, x + w / 2, label_y, HPos::Center, SMALL_FONT)?;
            draw(&right, x + w, label_y, HPos::Right, SMALL_FONT)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    encode_png(&rgb, SIZE).map_err(|e| format!("triptych of point {}: {e}", triptych.point_id))
}

/// The grey scale of `values` (finite): their [`Display`] and grey window, the 0.5th to
/// 99.5th percentile, so that a few extreme pixels do not wash out the contrast (as image
/// viewers' auto-contrast does; a range of 1 from the value when that is empty). The values
/// are sorted once in place: the slices are not copied again.
pub(crate) fn grey_scale(mut values: Vec<f64>) -> (Display, (f64, f64)) {
    values.sort_unstable_by(f64::total_cmp);
    (Display::of_sorted(&values), window(&values))
}

/// The grey window of `sorted` values (see [`grey_scale`]).
fn window(sorted: &[f64]) -> (f64, f64) {
    if sorted.is_empty() {
        return (0.0, 1.0);
    }
    let (lo, hi) = (nearest_rank(sorted, 0.005), nearest_rank(sorted, 0.995));
    if lo < hi { (lo, hi) } else { (lo, lo + 1.0) }
}

/// The `q`-quantile of `sorted` values (non-empty, increasing), the nearest rank.
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    sorted[(q * (sorted.len() - 1) as f64).round() as usize]
}

/// The `q`-quantile of `values` (non-empty), the nearest rank: reorders them.
fn percentile(values: &mut [f64], q: f64) -> f64 {
    let k = (q * (values.len() - 1) as f64).round() as usize;
    *values.select_nth_unstable_by(k, f64::total_cmp).1
}

/// The finite values of `a`.
fn finite(a: &Array2<f64>) -> impl Iterator<Item = f64> + '_ {
    a.iter().copied().filter(|v| v.is_finite())
}

/// The source indices `[start, end)` that output pixel `i` of `n` covers in an axis of `len`
/// values (at least one).
fn block(i: u32, n: u32, len: usize) -> (usize, usize) {
    let start = (i as usize * len) / n as usize;
    let end = ((i as usize + 1) * len).div_ceil(n as usize).min(len);
    (start.min(len - 1), end.max(start.min(len - 1) + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diverging_map_is_white_at_zero_symmetric_and_clamped() {
        assert_eq!(diverging(0.0), [255, 255, 255]);
        assert_eq!(diverging(1.0), RED_END);
        assert_eq!(diverging(-1.0), BLUE_END);
        for t in [0.1, 0.25, 0.5, 0.9, 1.0, 3.0] {
            let [r, g, b] = diverging(t);
            assert_eq!(diverging(-t), [b, g, r], "mirror at {t}");
        }
        assert_eq!(diverging(7.0), diverging(1.0));
        assert_eq!(diverging(f64::NEG_INFINITY), diverging(-1.0));
        assert_eq!(diverging(f64::NAN), FLAG);
        // Stronger with magnitude: the red channel's distance from white grows.
        let fade = |t: f64| 255 - diverging(t)[1];
        assert!(fade(0.2) < fade(0.5) && fade(0.5) < fade(0.8));
        assert_eq!(grey(-1.0), [0; 3]);
        assert_eq!(grey(2.0), [255; 3]);
        assert_eq!(grey(0.5), [128; 3]);
    }

    #[test]
    fn the_grey_window_clips_the_extreme_half_percent() {
        let mut values: Vec<f64> = (0..1001).map(f64::from).collect();
        values.reverse();
        assert_eq!(grey_scale(values).1, (5.0, 995.0));
        assert_eq!(grey_scale(vec![2.0; 10]).1, (2.0, 3.0));
        assert_eq!(grey_scale(Vec::new()).1, (0.0, 1.0));
    }

    /// Counts spanning four decades (a scattering pattern with empty pixels) are shown on an
    /// asinh scale from one count, and the caption says so; data within three decades, and
    /// data of both signs, stay linear.
    #[test]
    fn data_spanning_more_than_three_decades_get_an_asinh_scale() {
        let counts: Vec<f64> = (0..1000).map(|i| (1.01f64.powi(i) - 1.0).round()).collect();
        assert!(counts[999] > 1e4 && counts[0] == 0.0);
        assert_eq!(Display::of(&counts), Display::Asinh { floor: 1.0 });
        let floats: Vec<f64> = (1..1000).map(|i| 1e-3 * 1.01f64.powi(i)).collect();
        match Display::of(&floats) {
            Display::Asinh { floor } => assert!((floor - 1e-3 * 1.01f64.powi(6)).abs() < 1e-12),
            linear => panic!("{linear:?}"),
        }
        let within: Vec<f64> = (1..1000).map(f64::from).collect();
        assert_eq!(Display::of(&within), Display::Linear);
        let signed: Vec<f64> = counts.iter().map(|c| c - 10.0).collect();
        assert_eq!(Display::of(&signed), Display::Linear);
        assert_eq!(Display::of(&[]), Display::Linear);
        let asinh = Display::Asinh { floor: 2.0 };
        assert!((asinh.inverse(asinh.forward(123.0)) - 123.0).abs() < 1e-9);

        let pattern = Array2::from_shape_fn((40, 25), |(i, j)| counts[i * 25 + j]);
        let mut decoded = pattern.clone();
        // 100 differences of 3 counts, one of 1000.
        decoded.iter_mut().step_by(10).for_each(|v| *v += 3.0);
        decoded[[39, 24]] += 1000.0;
        let triptych = Triptych {
            point_id: "p".into(),
            slice_index: 0,
            axis_label: "the 2-D image".into(),
            reason: "test".into(),
            original: pattern,
            decoded,
        };
        let text = caption(&triptych);
        assert!(
            text.starts_with("Original and decoded share one asinh grey scale, logarithmic above 1 and linear below"),
            "{text}"
        );
        assert!(
            text.contains("up to \u{b1}3, the 99th percentile of the nonzero absolute differences; larger differences, up to 1000, show at full colour"),
            "{text}"
        );
        let mut linear = triptych.clone();
        linear.original.mapv_inplace(|v| v.min(500.0));
        linear.decoded = linear.original.clone();
        let text = caption(&linear);
        assert!(
            text.starts_with("Original and decoded share one linear grey scale from 0 to 500"),
            "{text}"
        );
    }

    /// The difference window is the 99th percentile of the nonzero absolute differences, so
    /// that one outlier does not turn every other difference white.
    #[test]
    fn the_difference_window_ignores_the_largest_percent() {
        let original = Array2::zeros((10, 20));
        let mut decoded = original.clone();
        for (k, v) in decoded.iter_mut().enumerate() {
            *v = if k % 2 == 0 {
                0.0
            } else {
                (k % 7) as f64 - 3.0
            };
        }
        decoded[[0, 1]] = 500.0;
        let difference = &decoded - &original;
        let scales = Scales::of(&original, &decoded, &difference);
        assert_eq!(scales.largest, 500.0);
        assert_eq!(scales.difference, 3.0);
        let none = Scales::of(&original, &original, &Array2::zeros((10, 20)));
        assert_eq!((none.difference, none.largest), (1.0, 0.0));
    }

    #[test]
    fn blocks_cover_every_source_index() {
        let covered: Vec<(usize, usize)> = (0..3).map(|i| block(i, 3, 7)).collect();
        assert_eq!(covered, [(0, 3), (2, 5), (4, 7)]);
        // Enlarging: each pixel shows one source value.
        let enlarged: Vec<(usize, usize)> = (0..4).map(|i| block(i, 4, 2)).collect();
        assert_eq!(enlarged, [(0, 1), (0, 1), (1, 2), (1, 2)]);
    }

    #[test]
    fn the_triptych_is_a_deterministic_png_of_the_documented_size() {
        let original = Array2::from_shape_fn((20, 30), |(i, j)| (i * j) as f64);
        let mut decoded = original.clone();
        decoded[[3, 4]] += 5.0;
        let triptych = Triptych {
            point_id: "p".into(),
            slice_index: 0,
            axis_label: "the 2-D image".into(),
            reason: "test".into(),
            original,
            decoded,
        };
        let bytes = png(&triptych).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!((width, height), SIZE);
        assert_eq!(bytes, png(&triptych).unwrap());
        let mut wrong = triptych.clone();
        wrong.decoded = Array2::zeros((2, 2));
        assert!(png(&wrong).unwrap_err().contains("must be equal"));
    }
}
