//! The one plot style of the report: figure sizes, the font and its sizes, and the
//! colour-blind-safe colours (Okabe and Ito) of series, of original / decoded / difference, and
//! of the marks. Every figure ([`super::plots`], [`super::science`], [`super::triptych`]) draws
//! with these, so that the same thing has the same colour everywhere.

use std::sync::Once;

use plotters::coord::CoordTranslate;
use plotters::prelude::*;
use plotters::style::{FontStyle, RGBColor};

use crate::analysis::figure::Role;

/// Width and height of a plot, in pixels.
pub const SIZE: (u32, u32) = (640, 400);
/// Height of each panel below the first of a science figure, in pixels.
pub const LOWER_PANEL: u32 = 240;

/// The font family name the embedded DejaVu Sans is registered under.
pub const FONT: &str = "sans-serif";
/// Font size of a figure's title.
pub const TITLE_FONT: u32 = 20;
/// Font size of axis titles.
pub const AXIS_FONT: u32 = 17;
/// Font size of tick labels and legends.
pub const LABEL_FONT: u32 = 16;
/// Font size of colour-bar labels.
pub const SMALL_FONT: u32 = 14;

/// Colour-blind-safe series colours (Okabe and Ito), cycled.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];
/// Curves of the original: black (Okabe and Ito).
pub const ORIGINAL: RGBColor = RGBColor(0, 0, 0);
/// Curves of the decoded data: vermilion (Okabe and Ito).
pub const DECODED: RGBColor = RGBColor(213, 94, 0);
/// Differences: blue (Okabe and Ito).
pub const DIFFERENCE: RGBColor = RGBColor(0, 114, 178);
/// Marks of what the decoded data lost (e.g. missed peaks): reddish purple (Okabe and Ito).
pub const MISSED: RGBColor = RGBColor(204, 121, 167);
/// Marks of what the decoded data invented (e.g. spurious peaks): bluish green (Okabe and
/// Ito).
pub const SPURIOUS: RGBColor = RGBColor(0, 158, 115);
/// Grey levels of the lowest and the highest class of a class map (light to dark), so that
/// the difference colour stands out on every class.
pub const CLASS_GREYS: (u8, u8) = (235, 95);
/// Fill of an acceptance band.
pub const BAND: RGBColor = RGBColor(46, 160, 67);
/// Fill of a marked range of x (e.g. the Guinier range): sky blue (Okabe and Ito).
pub const SPAN: RGBColor = RGBColor(86, 180, 233);
/// Ring around the chosen point.
pub const CHOSEN: RGBColor = RGBColor(20, 20, 20);
/// Ring around the closest point when none passes.
pub const CLOSEST: RGBColor = RGBColor(207, 34, 46);

/// The colour of curves of `role`.
pub fn role_colour(role: Role) -> RGBColor {
    match role {
        Role::Original => ORIGINAL,
        Role::Decoded => DECODED,
        Role::Difference => DIFFERENCE,
        Role::Missed => MISSED,
        Role::Spurious => SPURIOUS,
    }
}

/// Draws the mark of a point of `role` on an image at `at` (of the area's coordinates): a
/// circle for the original, a cross for the decoded, a larger thick circle for what was
/// missed and a square for what is spurious, so that they differ in shape as well as colour.
pub fn draw_mark<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    role: Role,
    at: CT::From,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    CT::From: Clone + 'static,
{
    let colour = role_colour(role);
    match role {
        Role::Original | Role::Difference => area.draw(&Circle::new(at, 6, colour.stroke_width(1))),
        Role::Decoded => area.draw(&Cross::new(at, 4, colour.stroke_width(2))),
        Role::Missed => area.draw(&Circle::new(at, 9, colour.stroke_width(3))),
        Role::Spurious => area.draw(
            &(EmptyElement::at(at) + Rectangle::new([(-6, -6), (6, 6)], colour.stroke_width(2))),
        ),
    }
}

/// Registers the embedded font with plotters (once per process).
///
/// Text is measured (and in PNG drawn) with DejaVu Sans, embedded in the binary
/// (`assets/DejaVuSans.ttf`, Bitstream Vera licence in `assets/DejaVuSans-LICENSE.txt`), so
/// that no font needs to be installed; browsers draw the SVG's text with their own sans-serif.
pub(crate) fn register_font() {
    static FONT_ONCE: Once = Once::new();
    FONT_ONCE.call_once(|| {
        let bytes = include_bytes!("../../assets/DejaVuSans.ttf");
        let registered = plotters::style::register_font(FONT, FontStyle::Normal, bytes);
        assert!(
            registered.is_ok(),
            "the embedded DejaVu Sans is a valid font"
        );
    });
}
