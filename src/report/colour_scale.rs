//! The colour scales of the report's images and their colour bars: how a value becomes a
//! colour, chosen from the values, and the bar that shows the scale in the data's units. The
//! slice triptych ([`super::triptych`]) and the analyses' image panels ([`super::science`])
//! colour and label their images with these alone, so that every image figure reads alike.
//!
//! - Intensities: grey levels over a window, the 0.5th to the 99.5th percentile of the values
//!   (so that a few extreme pixels do not wash out the contrast; values beyond are clamped),
//!   in a [`Display`]: linear, or `asinh(v / floor)` when the data are non-negative and span
//!   more than three decades above their floor (the 0.5th percentile of the positive values,
//!   at least one count for integer data, so photon counts with empty pixels qualify): linear
//!   below the floor, logarithmic above, so that a scattering pattern's faint rings show next
//!   to its bright centre.
//! - Signed differences: a diverging blue-white-red map symmetric about 0, from `-m` to `+m`
//!   with `m` the 99th percentile of the nonzero absolute differences (so that the image shows
//!   where the errors are, not only the one largest; larger ones saturate).
//!
//! Non-finite values are magenta.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{FONT, SMALL_FONT};
use crate::metrics::values::short;

const WHITE_RGB: [u8; 3] = [255, 255, 255];
const RED_END: [u8; 3] = [178, 34, 52];
const BLUE_END: [u8; 3] = [52, 34, 178];
/// Colour of non-finite values.
const FLAG: [u8; 3] = [255, 0, 255];
/// Dynamic range (highest over floor) above which the grey scale is [`Display::Asinh`].
const DECADES: f64 = 1e3;
/// Percentile of the nonzero absolute differences that sets the difference window.
const DIFFERENCE_PERCENTILE: f64 = 0.99;

/// Height of a colour bar with its title, ticks and labels ([`draw_colour_bar`]), in pixels.
pub const BAR_HEIGHT: u32 = 2 * SMALL_FONT + BAR + TICK + 10;
/// Height of the coloured strip of a bar.
const BAR: u32 = 14;
/// Length of a tick below the strip.
const TICK: u32 = 4;

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

    /// `v` on the display's linear axis.
    fn forward(self, v: f64) -> f64 {
        match self {
            Display::Linear => v,
            // ln(x + sqrt(x^2 + 1)), cheaper than f64::asinh (a log1p and a hypot, which
            // avoid an overflow and a cancellation no grey level can show): it runs for every
            // pixel.
            Display::Asinh { floor } => {
                let x = (v / floor).abs();
                (x + (x * x + 1.0).sqrt()).ln().copysign(v)
            }
        }
    }
}

/// How an image's values become colours (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ColourScale {
    /// Grey levels over `window` (values beyond are clamped) in `display`.
    Grey {
        /// Linear or asinh.
        display: Display,
        /// The values of the ends of the grey ramp.
        window: (f64, f64),
        /// High values dark (intensities drawn as on paper, under coloured marks) instead of
        /// light.
        dark_high: bool,
    },
    /// The diverging map from `-half_width` (blue) through 0 (white) to `+half_width` (red).
    Diverging {
        /// `m` of the module doc.
        half_width: f64,
    },
}

impl ColourScale {
    /// The grey scale of `values` (finite): window and display as the module doc says.
    pub fn grey(values: Vec<f64>, dark_high: bool) -> ColourScale {
        let (display, window) = grey_scale(values);
        ColourScale::Grey {
            display,
            window,
            dark_high,
        }
    }

    /// The diverging scale of `differences`: `m` as the module doc says (1 without nonzero
    /// differences).
    pub fn diverging(differences: impl Iterator<Item = f64>) -> ColourScale {
        ColourScale::Diverging {
            half_width: difference_window(differences).0,
        }
    }

    /// The values of the scale's ends, low to high: the grey window, or `-m` and `+m`.
    pub fn ends(&self) -> (f64, f64) {
        match *self {
            ColourScale::Grey { window, .. } => window,
            ColourScale::Diverging { half_width } => (-half_width, half_width),
        }
    }

    /// Where `v` lies between the ends, on the display's axis: 0 at the low end, 1 at the
    /// high end (beyond them outside `[0, 1]`).
    pub fn fraction(&self, v: f64) -> f64 {
        match *self {
            ColourScale::Grey {
                display, window, ..
            } => {
                let (lo, hi) = (display.forward(window.0), display.forward(window.1));
                (display.forward(v) - lo) / (hi - lo)
            }
            ColourScale::Diverging { half_width } => 0.5 + v / (2.0 * half_width),
        }
    }

    /// The colour at fraction `t` (clamped to `[0, 1]`) of the way from the low end; NaN is
    /// magenta.
    pub fn colour_at(&self, t: f64) -> [u8; 3] {
        match *self {
            ColourScale::Grey { dark_high, .. } => grey(if dark_high { 1.0 - t } else { t }),
            ColourScale::Diverging { .. } => diverging(2.0 * t - 1.0),
        }
    }

    /// The colour of `v`.
    pub fn colour(&self, v: f64) -> [u8; 3] {
        self.colour_at(self.fraction(v))
    }

    /// [`ColourScale::colour`] for many values: the ends on the display's axis computed once.
    pub fn shader(&self) -> Shader {
        let (low, high) = self.ends();
        let display = match *self {
            ColourScale::Grey { display, .. } => display,
            ColourScale::Diverging { .. } => Display::Linear,
        };
        let low = display.forward(low);
        Shader {
            scale: *self,
            display,
            low,
            per_unit: 1.0 / (display.forward(high) - low),
        }
    }

    /// The sentence part naming the scale, for a bar's title and captions: `linear scale`,
    /// `asinh scale, logarithmic above 1`.
    pub fn name(&self) -> String {
        match self {
            ColourScale::Grey {
                display: Display::Asinh { floor },
                ..
            } => format!("asinh scale, logarithmic above {}", short(*floor)),
            _ => "linear scale".into(),
        }
    }

    /// The caption's words on the scale: its name, its ends and how they were chosen
    /// (`linear scale from 0 to 500 (0.5th to 99.5th percentile)`), the numbers at the ends of
    /// its bar.
    pub fn describe(&self) -> String {
        let (lo, hi) = self.ends();
        let rule = match self {
            ColourScale::Grey { .. } => "0.5th to 99.5th percentile",
            ColourScale::Diverging { .. } => {
                "\u{b1} the 99th percentile of the nonzero absolute values"
            }
        };
        format!(
            "{} from {} to {} ({rule})",
            self.name(),
            short(lo),
            short(hi)
        )
    }

    /// The values a bar may label, in order of preference: its two ends, then the round
    /// values between them (0, the powers of ten of an asinh scale, the multiples of a
    /// 1-2-5 step of a linear one, half the window of a difference).
    pub fn tick_values(&self) -> Vec<f64> {
        let (lo, hi) = self.ends();
        let mut ticks = vec![lo, hi];
        let inside = |v: &f64| *v > lo && *v < hi;
        match *self {
            ColourScale::Diverging { half_width } => {
                ticks.extend([0.0, -half_width / 2.0, half_width / 2.0]);
            }
            ColourScale::Grey {
                display: Display::Asinh { floor },
                ..
            } => {
                ticks.extend([0.0].iter().copied().filter(inside));
                let first = floor.log10().floor() as i32;
                let last = hi.log10().ceil() as i32;
                ticks.extend((first..=last).map(|k| 10f64.powi(k)).filter(inside).rev());
            }
            ColourScale::Grey { .. } => {
                let raw = (hi - lo) / 4.0;
                let decade = 10f64.powf(raw.log10().floor());
                let step = [1.0, 2.0, 5.0, 10.0]
                    .iter()
                    .map(|m| m * decade)
                    .find(|s| *s >= raw)
                    .unwrap_or(raw);
                let first = (lo / step).floor() as i64 + 1;
                ticks.extend(
                    (first..)
                        .map(|k| k as f64 * step)
                        .take_while(|v| *v < hi)
                        .filter(inside),
                );
            }
        }
        ticks
    }
}

/// A [`ColourScale`]'s colours of many values (see [`ColourScale::shader`]).
#[derive(Debug, Clone)]
pub struct Shader {
    scale: ColourScale,
    display: Display,
    /// The low end on the display's axis.
    low: f64,
    /// One over the length of the window on the display's axis.
    per_unit: f64,
}

impl Shader {
    /// The colour of `v`, as [`ColourScale::colour`].
    pub fn colour(&self, v: f64) -> [u8; 3] {
        let t = (self.display.forward(v) - self.low) * self.per_unit;
        self.scale.colour_at(t)
    }
}

/// Draws the colour bar of `scale` across the top of `area` ([`BAR_HEIGHT`] pixels high, as
/// wide as `area`): the title `quantity` with the scale's name above, the colours from the
/// low end (left) to the high end (right), and ticks labelled in the data's units below: always
/// the two ends, then as many of [`ColourScale::tick_values`] as fit without overlapping. Returns
/// the labels drawn, left to right.
pub fn draw_colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    scale: &ColourScale,
    quantity: &str,
) -> Result<Vec<String>, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let width = area.dim_in_pixel().0.max(2) as i32;
    let font = (FONT, SMALL_FONT).into_font().color(&BLACK);
    let at = |h: HPos| font.pos(Pos::new(h, VPos::Top));
    let title = format!("{quantity}, {}", scale.name());
    area.draw(&Text::new(title, (width / 2, 0), at(HPos::Center)))
        .map_err(|e| err(&e))?;
    let top = SMALL_FONT as i32 + 4;
    let bottom = top + BAR as i32;
    for x in 0..width {
        let [r, g, b] = scale.colour_at(f64::from(x) / f64::from(width - 1));
        // One pixel wide: a filled rectangle covers both corners' columns, the next one
        // paints over the right one.
        let column = [(x, top), (x + 1, bottom)];
        area.draw(&Rectangle::new(column, RGBColor(r, g, b).filled()))
            .map_err(|e| err(&e))?;
    }
    area.draw(&Rectangle::new(
        [(0, top), (width - 1, bottom)],
        BLACK.mix(0.4),
    ))
    .map_err(|e| err(&e))?;
    // Labels as (left pixel, right pixel, x of the tick, text): the ends flush with the bar's
    // ends, the others centred on their ticks; one only when it overlaps none drawn.
    let text_width = |text: &str| {
        area.estimate_text_size(text, &font)
            .map_or(0, |(w, _)| w as i32)
    };
    let mut labels: Vec<(i32, i32, i32, String)> = Vec::new();
    for (k, value) in scale.tick_values().into_iter().enumerate() {
        let text = short(value);
        let w = text_width(&text);
        let x = (scale.fraction(value) * f64::from(width - 1)).round() as i32;
        let (left, right) = match k {
            0 => (0, w),
            1 => (width - 1 - w, width - 1),
            _ => (x - w / 2, x + w - w / 2),
        };
        let gap = SMALL_FONT as i32 / 2;
        if labels
            .iter()
            .all(|(l, r, _, _)| right + gap < *l || left > *r + gap)
        {
            labels.push((left, right, x, text));
        }
    }
    labels.sort_by_key(|label| label.2);
    for (left, _, x, text) in &labels {
        area.draw(&PathElement::new(
            [(*x, bottom), (*x, bottom + TICK as i32)],
            BLACK.mix(0.6),
        ))
        .map_err(|e| err(&e))?;
        let y = bottom + TICK as i32 + 4;
        area.draw(&Text::new(text.as_str(), (*left, y), at(HPos::Left)))
            .map_err(|e| err(&e))?;
    }
    Ok(labels.into_iter().map(|label| label.3).collect())
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
        let k = rank(nonzero.len(), DIFFERENCE_PERCENTILE);
        (*order_statistic(&mut nonzero, k), largest)
    }
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
        to_byte(from + (to - from) * amount)
    })
}

/// The grey map: black at 0, white at 1, clamped; NaN is magenta.
pub fn grey(t: f64) -> [u8; 3] {
    if t.is_nan() {
        return FLAG;
    }
    [to_byte(255.0 * t.clamp(0.0, 1.0)); 3]
}

/// `x` in `[0, 255]` rounded to the nearest byte, halves up (as `f64::round` there, without
/// its libm call: it runs for every pixel).
fn to_byte(x: f64) -> u8 {
    (x + 0.5) as u8
}

/// The grey scale of `values` (finite): their [`Display`] and grey window, the 0.5th to
/// 99.5th percentile (nearest rank; a range of 1 from the value when that is empty). The
/// values are reordered in place, never sorted in full: the few order statistics needed are
/// selected in linear time.
pub(crate) fn grey_scale(mut values: Vec<f64>) -> (Display, (f64, f64)) {
    let n = values.len();
    if n == 0 {
        return (Display::Linear, (0.0, 1.0));
    }
    // Ascending ranks, each selected in the part above the previous one.
    let (low, high) = (rank(n, 0.005), rank(n, 0.995));
    let lo = *order_statistic(&mut values, low);
    let hi = *order_statistic(&mut values[low..], high - low);
    let window = if lo < hi { (lo, hi) } else { (lo, lo + 1.0) };
    let non_positive = values.iter().filter(|v| **v <= 0.0).count();
    if non_positive == n || lo < 0.0 {
        return (Display::Linear, window);
    }
    // In increasing order the non-positive values come first.
    let positive_rank = non_positive + rank(n - non_positive, 0.005);
    let mut floor = *order_statistic(&mut values, positive_rank);
    if values.iter().all(|v| v.fract() == 0.0) {
        floor = floor.max(1.0);
    }
    let display = if hi > DECADES * floor {
        Display::Asinh { floor }
    } else {
        Display::Linear
    };
    (display, window)
}

/// The nearest rank of the `q`-quantile of `n > 0` values.
fn rank(n: usize, q: f64) -> usize {
    (q * (n - 1) as f64).round() as usize
}

/// The `k`-th smallest of `values` (0-based, `k < len`): reorders them so that the smaller
/// ones come first.
fn order_statistic(values: &mut [f64], k: usize) -> &f64 {
    values.select_nth_unstable_by(k, f64::total_cmp).1
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

    /// Counts spanning four decades (a scattering pattern with empty pixels) get an asinh
    /// scale from one count; data within three decades, and data of both signs, stay linear.
    /// The order statistics are those of the sorted values, whatever the input order.
    #[test]
    fn data_spanning_more_than_three_decades_get_an_asinh_scale() {
        let counts: Vec<f64> = (0..1000).map(|i| (1.01f64.powi(i) - 1.0).round()).collect();
        assert!(counts[999] > 1e4 && counts[0] == 0.0);
        assert_eq!(Display::of(&counts), Display::Asinh { floor: 1.0 });
        let mut floats: Vec<f64> = (1..1000).map(|i| 1e-3 * 1.01f64.powi(i)).collect();
        // A fixed shuffle (seedless: a stride coprime with the length).
        floats = (0..floats.len()).map(|k| floats[(k * 389) % 999]).collect();
        match Display::of(&floats) {
            Display::Asinh { floor } => assert!((floor - 1e-3 * 1.01f64.powi(6)).abs() < 1e-12),
            linear => panic!("{linear:?}"),
        }
        let (_, window) = grey_scale(floats);
        let expected = (1e-3 * 1.01f64.powi(6), 1e-3 * 1.01f64.powi(994));
        assert!((window.0 - expected.0).abs() < 1e-12 && (window.1 - expected.1).abs() < 1e-9);
        let within: Vec<f64> = (1..1000).map(f64::from).collect();
        assert_eq!(Display::of(&within), Display::Linear);
        let signed: Vec<f64> = counts.iter().map(|c| c - 10.0).collect();
        assert_eq!(Display::of(&signed), Display::Linear);
        assert_eq!(Display::of(&[]), Display::Linear);
        let asinh = Display::Asinh { floor: 2.0 };
        for v in [-1e6, -3.0, -1e-3, 0.0, 1e-3, 0.7, 5.0, 1e6, 1e12f64] {
            let exact = (v / 2.0).asinh();
            assert!(
                (asinh.forward(v) - exact).abs() < 1e-12 * (1.0 + exact.abs()),
                "{v}"
            );
        }
    }

    /// The shader gives the colours of the scale, grey and diverging, dark
    /// or light high, with NaN magenta.
    #[test]
    fn the_shader_colours_as_the_scale() {
        let counts: Vec<f64> = (0..2000)
            .map(|i| (1.006f64.powi(i) - 1.0).round())
            .collect();
        let scales = [
            ColourScale::grey(counts.clone(), false),
            ColourScale::grey(counts.clone(), true),
            ColourScale::grey((0..500).map(f64::from).collect(), true),
            ColourScale::diverging(counts.iter().map(|c| c - 100.0)),
        ];
        assert!(matches!(
            scales[0],
            ColourScale::Grey {
                display: Display::Asinh { .. },
                ..
            }
        ));
        for scale in scales {
            let shader = scale.shader();
            for v in counts
                .iter()
                .map(|c| c * 1.37 - 3.0)
                .chain([-1e9, 1e9, f64::INFINITY])
            {
                let (a, b) = (scale.colour(v), shader.colour(v));
                assert!(
                    a.iter().zip(b).all(|(a, b)| a.abs_diff(b) <= 1),
                    "{scale:?} {v}: {a:?} {b:?}"
                );
            }
            assert_eq!(shader.colour(f64::NAN), FLAG);
        }
    }

    /// A bar is drawn from the low end's colour (left) to the high end's (right), and its end
    /// labels are the window's ends, its others in between and in order: a linear, an asinh
    /// and a diverging scale.
    #[test]
    fn a_colour_bar_is_labelled_with_the_ends_of_its_window() {
        let counts: Vec<f64> = (0..1000).map(|i| (1.01f64.powi(i) - 1.0).round()).collect();
        let cases = [
            (
                ColourScale::grey((0..1001).map(f64::from).collect(), false),
                "linear scale",
            ),
            (
                ColourScale::grey(counts, true),
                "asinh scale, logarithmic above 1",
            ),
            (ColourScale::Diverging { half_width: 2.5 }, "linear scale"),
        ];
        let (width, height) = (300u32, BAR_HEIGHT);
        for (scale, name) in cases {
            assert_eq!(scale.name(), name);
            let mut rgb = vec![255u8; (width * height * 3) as usize];
            let labels = {
                let root =
                    BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
                crate::report::style::register_font();
                draw_colour_bar(&root, &scale, "counts").unwrap()
            };
            let (lo, hi) = scale.ends();
            assert_eq!(labels.first(), Some(&short(lo)), "{scale:?}");
            assert_eq!(labels.last(), Some(&short(hi)), "{scale:?}");
            let values: Vec<f64> = labels.iter().map(|l| l.parse().unwrap()).collect();
            assert!(values.windows(2).all(|w| w[0] < w[1]), "{labels:?}");
            assert!(labels.len() >= 3, "{scale:?}: {labels:?}");
            // The strip's row: the colours of the ends (2 pixels inside the frame).
            let y = SMALL_FONT + 4 + BAR / 2;
            let pixel = |x: u32| {
                let at = ((y * width + x) * 3) as usize;
                [rgb[at], rgb[at + 1], rgb[at + 2]]
            };
            let near = |a: [u8; 3], b: [u8; 3]| a.iter().zip(b).all(|(a, b)| a.abs_diff(b) <= 4);
            assert!(
                near(pixel(2), scale.colour_at(0.0)),
                "{scale:?} {:?}",
                pixel(2)
            );
            assert!(near(pixel(width - 3), scale.colour_at(1.0)), "{scale:?}");
            assert_ne!(scale.colour_at(0.0), scale.colour_at(1.0));
        }
    }
}
