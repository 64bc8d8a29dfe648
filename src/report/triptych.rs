//! The slice triptych: the original, the decoded slice and their signed difference side by side
//! in one PNG image, with a colour bar under each scale ([`super::colour_scale`]).
//!
//! Original and decoded share one grey scale (so that they compare), the 0.5th to 99.5th
//! percentile of both, linear or, for data spanning more than three decades such as photon
//! counts, asinh (logarithmic above a floor); the difference `decoded - original` uses the
//! diverging blue-white-red map from `-m` to `+m`, `m` the 99th percentile of the nonzero
//! absolute differences ([`ColourScale`]). Slices are fitted into square panels, nearest
//! pixel; when a slice is shrunk, each difference pixel shows the largest-magnitude difference
//! it covers, so that isolated errors stay visible. Non-finite values are magenta. [`caption`]
//! says which scales were used.
//!
//! It is a bitmap, not SVG: one vector rectangle per pixel would make the page megabytes long.

use ndarray::Array2;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::colour_scale::{BAR_HEIGHT, ColourScale, Display, difference_window, draw_colour_bar};
use super::plots::encode_png;
use super::style::{FONT, LABEL_FONT, register_font};
use crate::metrics::values::short;
use crate::runner::slices::Triptych;

/// Side of a panel, in pixels.
const PANEL: u32 = 360;
/// Space between and around panels.
const GAP: u32 = 28;
/// Height of the title row above the panels.
const TITLE: u32 = 34;
/// Space between the panels and the colour bars.
const ABOVE_BARS: u32 = 12;
/// Width and height of the image.
pub const SIZE: (u32, u32) = (
    3 * PANEL + 4 * GAP,
    TITLE + PANEL + ABOVE_BARS + BAR_HEIGHT + 8,
);

/// The scales of a triptych.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scales {
    /// The grey scale original and decoded share, light is high.
    pub grey: ColourScale,
    /// The difference's diverging scale.
    pub difference: ColourScale,
    /// The largest absolute difference.
    pub largest: f64,
}

impl Scales {
    /// The scales of `triptych`'s finite values and differences.
    pub fn of(triptych: &Triptych) -> Scales {
        let (original, decoded) = (&triptych.original, &triptych.decoded);
        let values: Vec<f64> = finite(original).chain(finite(decoded)).collect();
        let differences = original.iter().zip(decoded).map(|(o, d)| d - o);
        let (half_width, largest) = difference_window(differences.filter(|v| v.is_finite()));
        Scales {
            grey: ColourScale::grey(values, false),
            difference: ColourScale::Diverging { half_width },
            largest,
        }
    }

    /// The colour bars: under the original and decoded panels the grey scale, under the
    /// difference panel the diverging one, as (scale, title, left pixel, width).
    fn bars(&self) -> [(ColourScale, &'static str, u32, u32); 2] {
        [
            (
                self.grey,
                "original and decoded, in the input's units",
                GAP,
                2 * PANEL + GAP,
            ),
            (
                self.difference,
                "decoded - original",
                3 * GAP + 2 * PANEL,
                PANEL,
            ),
        ]
    }
}

/// The caption's sentences on the `scales` of a triptych: the grey scale (linear or asinh, its
/// window) and the difference window, the numbers at the ends of the colour bars.
pub fn caption(scales: &Scales) -> String {
    let (lo, hi) = scales.grey.ends();
    let grey = match scales.grey {
        ColourScale::Grey {
            display: Display::Asinh { floor },
            ..
        } => format!(
            "Original and decoded share one asinh grey scale, logarithmic above {} and linear below (the data span more than three decades), from {} to {} (0.5th to 99.5th percentile).",
            short(floor),
            short(lo),
            short(hi)
        ),
        _ => format!(
            "Original and decoded share one linear grey scale from {} to {} (0.5th to 99.5th percentile).",
            short(lo),
            short(hi)
        ),
    };
    let half_width = scales.difference.ends().1;
    let clipped = if scales.largest > half_width {
        format!(
            "; larger differences, up to {}, show at full colour",
            short(scales.largest)
        )
    } else {
        String::new()
    };
    if scales.largest == 0.0 {
        return format!("{grey} Every finite difference is 0.");
    }
    format!(
        "{grey} The difference runs from blue (negative) through white (0) to red (positive), up to \u{b1}{}, the 99th percentile of the nonzero absolute differences{clipped}.",
        short(half_width)
    )
}

/// The triptych as PNG bytes, [`SIZE`] pixels, drawn on its `scales` ([`Scales::of`]). Errors
/// when the slices differ in shape or are empty.
pub fn png(triptych: &Triptych, scales: &Scales) -> Result<Vec<u8>, String> {
    let (original, decoded) = (&triptych.original, &triptych.decoded);
    if original.dim() != decoded.dim() || original.is_empty() {
        return Err(format!(
            "triptych of point {}: original {:?} and decoded {:?} must be equal, non-empty shapes",
            triptych.point_id,
            original.dim(),
            decoded.dim()
        ));
    }
    let grey = scales.grey.shader();
    let difference = scales.difference.shader();

    let (width, height) = SIZE;
    let mut rgb = vec![255u8; (width * height * 3) as usize];
    let (rows, cols) = original.dim();
    let fit = f64::from(PANEL) / rows.max(cols) as f64;
    let (pw, ph) = (
        ((cols as f64 * fit).round() as u32).max(1),
        ((rows as f64 * fit).round() as u32).max(1),
    );
    // The source blocks of the panel's columns, computed once for every row.
    let columns: Vec<(usize, usize)> = (0..pw).map(|px| block(px, pw, cols)).collect();
    let origin = |p: u32| -> (u32, u32) {
        (
            GAP + p * (PANEL + GAP) + (PANEL - pw) / 2,
            TITLE + (PANEL - ph) / 2,
        )
    };
    // An enlarged slice repeats source rows and columns: each distinct block is coloured
    // once, its repeats copied.
    let row_bytes = (pw * 3) as usize;
    let mut previous_rows: Option<(usize, usize)> = None;
    for py in 0..ph {
        let rows_covered = block(py, ph, rows);
        let starts = [0, 1, 2].map(|p| {
            let (x0, y0) = origin(p);
            (((y0 + py) * width + x0) * 3) as usize
        });
        if previous_rows == Some(rows_covered) {
            for start in starts {
                let above = start - (width * 3) as usize;
                rgb.copy_within(above..above + row_bytes, start);
            }
            continue;
        }
        previous_rows = Some(rows_covered);
        let (r0, r1) = rows_covered;
        let mut previous_columns = None;
        let mut colours = [[0u8; 3]; 3];
        for (px, &columns_covered) in columns.iter().enumerate() {
            if previous_columns != Some(columns_covered) {
                previous_columns = Some(columns_covered);
                let (c0, c1) = columns_covered;
                // The largest-magnitude difference of the block (NaN wins).
                let mut most = 0.0f64;
                for r in r0..r1 {
                    for c in c0..c1 {
                        let v = decoded[[r, c]] - original[[r, c]];
                        if v.is_nan() || v.abs() > most.abs() {
                            most = v;
                        }
                    }
                }
                colours = [
                    grey.colour(original[[r0, c0]]),
                    grey.colour(decoded[[r0, c0]]),
                    difference.colour(most),
                ];
            }
            for (start, colour) in starts.iter().zip(colours) {
                let at = start + 3 * px;
                rgb[at..at + 3].copy_from_slice(&colour);
            }
        }
    }

    register_font();
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        let titles = ["original", "decoded", "decoded - original"];
        for (p, title) in titles.iter().enumerate() {
            let centre = GAP + p as u32 * (PANEL + GAP) + PANEL / 2;
            let style = (FONT, LABEL_FONT + 2)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top));
            root.draw(&Text::new(*title, (centre as i32, 8), style))
                .map_err(|e| e.to_string())?;
            let (x0, y0) = origin(p as u32);
            let frame = [
                (x0 as i32 - 1, y0 as i32 - 1),
                ((x0 + pw) as i32, (y0 + ph) as i32),
            ];
            root.draw(&Rectangle::new(frame, BLACK.mix(0.4)))
                .map_err(|e| e.to_string())?;
        }
        for (scale, quantity, x, w) in scales.bars() {
            let area = root
                .clone()
                .shrink((x, TITLE + PANEL + ABOVE_BARS), (w, BAR_HEIGHT));
            draw_colour_bar(&area, &scale, quantity)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    encode_png(&rgb, SIZE).map_err(|e| format!("triptych of point {}: {e}", triptych.point_id))
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
    use crate::report::colour_scale::diverging;
    use crate::report::style::SMALL_FONT;

    fn triptych(original: Array2<f64>, decoded: Array2<f64>) -> Triptych {
        Triptych {
            point_id: "p".into(),
            slice_index: 0,
            axis_label: "the 2-D image".into(),
            reason: "test".into(),
            original,
            decoded,
        }
    }

    /// Counts spanning four decades (a scattering pattern with empty pixels) are shown on an
    /// asinh scale from one count, and the caption says so; data within three decades stay
    /// linear.
    #[test]
    fn the_caption_says_the_scales_of_counts_over_four_decades() {
        let counts: Vec<f64> = (0..1000).map(|i| (1.01f64.powi(i) - 1.0).round()).collect();
        let pattern = Array2::from_shape_fn((40, 25), |(i, j)| counts[i * 25 + j]);
        let mut decoded = pattern.clone();
        // 100 differences of 3 counts, one of 1000.
        decoded.iter_mut().step_by(10).for_each(|v| *v += 3.0);
        decoded[[39, 24]] += 1000.0;
        let shown = triptych(pattern, decoded);
        let text = caption(&Scales::of(&shown));
        assert!(
            text.starts_with("Original and decoded share one asinh grey scale, logarithmic above 1 and linear below"),
            "{text}"
        );
        assert!(
            text.contains("up to \u{b1}3, the 99th percentile of the nonzero absolute differences; larger differences, up to 1000, show at full colour"),
            "{text}"
        );
        let mut linear = shown.clone();
        linear.original.mapv_inplace(|v| v.min(500.0));
        linear.decoded = linear.original.clone();
        let text = caption(&Scales::of(&linear));
        assert!(
            text.starts_with("Original and decoded share one linear grey scale from 0 to 500"),
            "{text}"
        );
        // No difference: no window of nonzero differences to state.
        assert!(text.ends_with(" Every finite difference is 0."), "{text}");
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
        let scales = Scales::of(&triptych(original.clone(), decoded));
        assert_eq!(scales.largest, 500.0);
        assert_eq!(scales.difference.ends(), (-3.0, 3.0));
        let none = Scales::of(&triptych(original.clone(), original));
        assert_eq!((none.difference.ends(), none.largest), ((-1.0, 1.0), 0.0));
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
        let shown = triptych(original, decoded);
        let scales = Scales::of(&shown);
        let bytes = png(&shown, &scales).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!((width, height), SIZE);
        assert_eq!(bytes, png(&shown, &scales).unwrap());
        let mut wrong = shown.clone();
        wrong.decoded = Array2::zeros((2, 2));
        assert!(png(&wrong, &scales).unwrap_err().contains("must be equal"));
    }

    /// Every panel pixel has the colour of its source block, whether the slice is enlarged
    /// (repeated rows and columns copied) or shrunk (the difference panel showing each block's
    /// largest-magnitude difference), NaN included.
    #[test]
    fn each_panel_pixel_has_the_colour_of_its_block() {
        for (rows, cols) in [(7, 5), (500, 410)] {
            let original =
                Array2::from_shape_fn((rows, cols), |(i, j)| ((i * 31 + j * 17) % 97) as f64);
            let mut decoded = original.clone();
            for (k, v) in decoded.iter_mut().enumerate() {
                *v += ((k * 7919) % 13) as f64 - 6.0;
            }
            decoded[[rows / 2, cols / 3]] = f64::NAN;
            let shown = triptych(original.clone(), decoded.clone());
            let scales = Scales::of(&shown);
            let image = image::load_from_memory(&png(&shown, &scales).unwrap())
                .unwrap()
                .to_rgb8();
            let fit = f64::from(PANEL) / rows.max(cols) as f64;
            let pw = (cols as f64 * fit).round() as u32;
            let ph = (rows as f64 * fit).round() as u32;
            let mut nan_seen = false;
            for py in 0..ph {
                let (r0, r1) = block(py, ph, rows);
                for px in 0..pw {
                    let (c0, c1) = block(px, pw, cols);
                    let block_values = || (r0..r1).flat_map(|r| (c0..c1).map(move |c| (r, c)));
                    let most = block_values()
                        .map(|(r, c)| decoded[[r, c]] - original[[r, c]])
                        .fold(0.0f64, |m, v| {
                            if v.is_nan() || v.abs() > m.abs() {
                                v
                            } else {
                                m
                            }
                        });
                    nan_seen |= most.is_nan();
                    let expected = [
                        scales.grey.colour(original[[r0, c0]]),
                        scales.grey.colour(decoded[[r0, c0]]),
                        scales.difference.colour(most),
                    ];
                    for (p, colour) in expected.into_iter().enumerate() {
                        let x = GAP + p as u32 * (PANEL + GAP) + (PANEL - pw) / 2 + px;
                        let y = TITLE + (PANEL - ph) / 2 + py;
                        let drawn = image.get_pixel(x, y).0;
                        assert!(
                            drawn.iter().zip(colour).all(|(a, b)| a.abs_diff(b) <= 1),
                            "{rows}x{cols} panel {p} ({px}, {py}): {drawn:?} {colour:?}"
                        );
                    }
                }
            }
            assert!(nan_seen, "{rows}x{cols}");
        }
    }

    /// Under the panels, a grey bar (black to white) and a diverging bar (blue to red) run
    /// the width of their panels, and their end labels are the numbers of the caption: the grey
    /// window and \u{b1}m, for an asinh and for a linear display.
    #[test]
    fn the_colour_bars_span_the_windows_the_caption_states() {
        let counts = Array2::from_shape_fn((64, 64), |(i, j)| {
            (10f64.powf((i + j) as f64 / 126.0 * 4.5) - 1.0).round()
        });
        let mut decoded = counts.clone();
        decoded.iter_mut().step_by(7).for_each(|v| *v += 2.0);
        let linear = triptych(
            counts.mapv(|v| v.min(900.0)),
            decoded.mapv(|v| v.min(900.0)),
        );
        for (shown, display) in [(triptych(counts, decoded), "asinh"), (linear, "linear")] {
            let scales = Scales::of(&shown);
            let text = caption(&scales);
            assert!(
                text.contains(&format!("one {display} grey scale")),
                "{text}"
            );
            let image = image::load_from_memory(&png(&shown, &scales).unwrap())
                .unwrap()
                .to_rgb8();
            for (bar, (scale, quantity, x, w)) in scales.bars().into_iter().enumerate() {
                // The coloured strip, 2 pixels inside its frame.
                let y = TITLE + PANEL + ABOVE_BARS + SMALL_FONT + 4 + 7;
                let (left, right) = (image.get_pixel(x + 2, y).0, image.get_pixel(x + w - 3, y).0);
                let ends = if bar == 0 {
                    ([0, 0, 0], [255, 255, 255])
                } else {
                    (diverging(-1.0), diverging(1.0))
                };
                let near =
                    |a: [u8; 3], b: [u8; 3]| a.iter().zip(b).all(|(a, b)| a.abs_diff(b) <= 4);
                assert!(
                    near(left, ends.0) && near(right, ends.1),
                    "{display}: {left:?} {right:?}"
                );
                // The same bar drawn alone: its end labels are the caption's numbers.
                let mut buffer = vec![255u8; (w * BAR_HEIGHT * 3) as usize];
                let root =
                    BitMapBackend::with_buffer(&mut buffer, (w, BAR_HEIGHT)).into_drawing_area();
                let labels = draw_colour_bar(&root, &scale, quantity).unwrap();
                let (lo, hi) = scale.ends();
                assert_eq!(labels.first(), Some(&short(lo)), "{scale:?}");
                assert_eq!(labels.last(), Some(&short(hi)), "{scale:?}");
                let stated = if bar == 0 {
                    format!("from {} to {}", short(lo), short(hi))
                } else {
                    format!("up to \u{b1}{}", short(hi))
                };
                assert!(text.contains(&stated), "{stated} not in {text}");
            }
        }
    }
}
