//! Serial crystallography: Bragg peaks found per frame in the original and in the decoded
//! data, in the spirit of peakfinder8 (Barty et al. 2014), and how many of them survive.
//!
//! # Peak finder
//!
//! Each frame is a 2-D image `I(y, x)`; a `[n, y, x]` stack has `n` frames along axis 0, a 2-D
//! input is one frame. As in peakfinder8, the background is radial, around the beam centre
//! `(c_y, c_x)` (`beam_y`, `beam_x`, default the frame's centre `((ny - 1) / 2, (nx - 1) / 2)`):
//! 1. pixel `(y, x)` is in radial bin `k = floor(sqrt((y - c_y)^2 + (x - c_x)^2))`;
//! 2. starting with every pixel active, `iterations` times: per bin, over its active pixels,
//!    `n_k`, `S_k = sum I`, `Q_k = sum I^2` (summed in raster order), `mu_k = S_k / n_k`,
//!    `sigma_k = sqrt(max(Q_k / n_k - mu_k^2, 0))`; then a pixel stays active when
//!    `I - mu_k <= clip_snr * sigma_k` (bright pixels leave the background estimate);
//! 3. peak pixels: `I - mu_k > snr_threshold * sigma_k` and `I > adc_threshold`, with the
//!    last iteration's `mu_k`, `sigma_k`;
//! 4. peaks: 8-connected components of peak pixels with `min_pixels <= size <= max_pixels`;
//! 5. per peak, with weights `w = I - mu_k` (positive on peak pixels): integrated intensity
//!    `sum w` (background-subtracted), position the weighted centroid `sum w y / sum w`,
//!    `sum w x / sum w`.
//!
//! peakfinder8 clips the background at the peak threshold itself (`clip_snr = snr_threshold`
//! here). On small frames a ring holds few pixels, and a few bright spot pixels in it raise
//! `sigma_k` so much that nothing is ever clipped and the spot hides in its own background:
//! the default `clip_snr = 3` with 10 iterations clips them (on `photonqa gen sx` frames,
//! every true spot is found; with `clip_snr = 6`, 7 of 392 are missed or split).
//!
//! Left out of peakfinder8: its per-peak local-background ring and local SNR re-check, the
//! detector-panel geometry (radii here are in pixels of one flat frame) and a pixel mask.
//! Peaks are listed in the order of their first pixel in raster order (scipy's label order).
//!
//! # Comparison
//!
//! Per frame, decoded peaks are matched to original peaks greedily: every pair within
//! `match_radius` pixels (Euclidean distance of the centroids, `<=`) in increasing distance
//! (ties: original index, then decoded index), a pair is taken when neither peak is matched
//! yet. Over all frames:
//! - `recall` = matched / original peaks, `precision` = matched / decoded peaks (1 when there
//!   are no original, respectively decoded, peaks: nothing was missed or invented);
//! - `intensity_rel_error_mean` / `_max`: `|I_d - I_o| / I_o` over matched pairs (0 with no
//!   match; `matched` says how many);
//! - `hit_rate_original` / `_decoded`: fraction of frames with at least `hit_threshold` peaks,
//!   `hit_rate_change` = decoded - original;
//! - `peaks_per_frame_original` / `_decoded`;
//! - `peaks_lost` = original peaks without a match (`peaks_original - matched`);
//! - `hit_recall` = original hits (at least `hit_threshold` peaks) that are still hits decoded,
//!   over original hits (1 without original hits);
//! - `frames_kept`: frames whose decoded values are not all zero, and `frames_dropped` the
//!   indices of the others: with the `veto` stage, the frames it dropped (which decode to
//!   zeros); otherwise only frames that were, or a stage made, zero throughout.
//!
//! Partials are the per-frame peak lists, merged by concatenation in frame order: exact for
//! any chunking. A 2-D input is one frame whose rows the runner splits into chunks: the
//! analysis then asks for a halo of the whole image, so every chunk sees the whole frame, and
//! keeps the peaks whose first pixel lies in its rows (the finder then runs once per chunk:
//! give a large 2-D frame a large `chunk_slices`). A non-finite value is an error.
//!
//! The peer is `tests/peers/sx_fixtures.py` (NumPy `bincount` for the radial sums,
//! `scipy.ndimage.label` with a 3x3 structure, `scipy.ndimage.center_of_mass` and `sum_labels`
//! on the weights): the same operations in the same order up to the centroid sums, so the peak
//! pixels are the same and positions and intensities agree to rounding.
//!
//! # References
//!
//! 1. A. Barty, R. A. Kirian, F. R. N. C. Maia, M. Hantke, C. H. Yoon, T. A. White, H. Chapman,
//!    "Cheetah: software for high-throughput reduction and analysis of serial femtosecond
//!    X-ray diffraction data", J. Appl. Cryst. 47 (2014) 1118-1131,
//!    doi:10.1107/S1600576714007626.

use serde_json::{Value, json};

use super::figure::{Curve, FigureData, Image, Panel, Raster, Role, Shading};
use super::registry::AnalysisDef;
use super::{Analysis, Context, DynAnalysis, Slabs};
use crate::metrics::values::metric_json;
use crate::pipeline::params::StageConfig;
use crate::pipeline::params::{ANY_FLOAT, Default, ParamDef, ParamKind};
use crate::pipeline::stages::veto::{beam_centre, finder_of, with_finder};
use crate::stats::histogram::Histogram;
pub use crate::stats::peaks::{Finder, Peak, match_peaks};

/// The parameters: the peak finder's (`veto::FINDER_PARAMS`, shared with the `veto` stage), then
/// the comparison's.
static PARAMS: [ParamDef; 10] = with_finder(
    true,
    [
        ParamDef {
            name: "match_radius",
            kind: ANY_FLOAT,
            default: Default::Float(2.0),
            doc: "largest centroid distance (pixels) of a matched original/decoded peak pair; > 0",
        },
        ParamDef {
            name: "hit_threshold",
            kind: ParamKind::Int {
                min: 1,
                max: 1_000_000,
            },
            default: Default::Int(10),
            doc: "a frame with at least this many peaks is a hit",
        },
    ],
);

/// Registry entry.
pub static DEF: AnalysisDef = AnalysisDef {
    kind: "sx",
    doc: "Bragg peaks per frame (peakfinder8-like radial background, SNR threshold, 8-connected pixels): recall, precision, integrated intensity error, hit rate and hit recall, peaks lost, frames kept (not decoded to zeros)",
    params: &PARAMS,
    columns: &[
        "recall",
        "precision",
        "intensity_rel_error_mean",
        "hit_rate_change",
        "peaks_per_frame_original",
        "frames_kept",
        "hit_recall",
        "peaks_lost",
    ],
    complete: Some(complete),
    prepare: Some(Sx::prepare),
    figures: Some(figures),
};

/// The figure `peaks` of one point's results: the frame with most original peaks, its
/// original peaks found again (circles) and missed (larger circles), the decoded peaks that
/// match one (crosses) and the spurious ones (squares), on the original frame. Nothing
/// without the results' `figure`.
pub fn figures(results: &Value) -> Vec<FigureData> {
    let shown = &results["figure"];
    let Some(image) = Raster::from_json(&shown["image"]) else {
        return Vec::new();
    };
    // Marks at (column, row), as the image's axes.
    let positions = |key: &str| -> Vec<(f64, f64)> {
        let at = |p: &Value| Some((p.get(1)?.as_f64()?, p.get(0)?.as_f64()?));
        shown[key]
            .as_array()
            .map(|a| a.iter().filter_map(at).collect())
            .unwrap_or_default()
    };
    let (original, decoded) = (positions("original"), positions("decoded"));
    let pairs: Vec<(usize, usize)> = shown["matched"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p.get(0)?.as_u64()? as usize, p.get(1)?.as_u64()? as usize)))
                .collect()
        })
        .unwrap_or_default();
    let split = |points: &[(f64, f64)], matched: &dyn Fn(usize) -> bool| {
        let (kept, lost): (Vec<_>, Vec<_>) =
            points.iter().enumerate().partition(|(i, _)| matched(*i));
        let strip = |v: Vec<(usize, &(f64, f64))>| v.into_iter().map(|(_, p)| *p).collect();
        (strip(kept), strip(lost))
    };
    let (found, missed): (Vec<_>, Vec<_>) = split(&original, &|i| pairs.iter().any(|p| p.0 == i));
    let (matching, spurious): (Vec<_>, Vec<_>) =
        split(&decoded, &|j| pairs.iter().any(|p| p.1 == j));
    let frame = shown["frame"].as_u64().unwrap_or(0);
    let title = format!(
        "frame {frame}: {} peaks, {} missed, {} spurious",
        original.len(),
        missed.len(),
        spurious.len()
    );
    let marks = |label: &str, role, points: Vec<(f64, f64)>| Curve {
        label: format!("{label} ({})", points.len()),
        role,
        points,
        markers: true,
    };
    let shrunk = image.shrunk_note("frame", "the largest value of its block");
    vec![FigureData {
        name: "peaks",
        title,
        panels: vec![Panel {
            x_label: "x (pixels)".into(),
            y_label: "y (pixels)".into(),
            log_x: false,
            log_y: false,
            curves: vec![
                marks("original, found again", Role::Original, found),
                marks("original, missed", Role::Missed, missed),
                marks("decoded, matching", Role::Decoded, matching),
                marks("decoded, spurious", Role::Spurious, spurious),
            ],
            spans: Vec::new(),
            raster: Some(Image {
                raster: image,
                shading: Shading::Intensity("counts"),
                highlight: None,
                highlight_label: String::new(),
            }),
        }],
        notes: vec![format!(
            "The frame with most Bragg peaks in the original, its original counts dark on light; a decoded peak matches an original one within match_radius pixels (greedy, closest pairs first).{shrunk}"
        )],
    }]
}

/// The peaks of one frame (or, for a 2-D input, of some of its rows), original and decoded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FramePeaks {
    /// Frame index.
    pub frame: usize,
    /// Peaks of the original.
    pub original: Vec<Peak>,
    /// Peaks of the decoded frame.
    pub decoded: Vec<Peak>,
    /// Whether every decoded value of the frame (of its rows here, for a 2-D input) is zero:
    /// a frame that the `veto` stage dropped.
    #[serde(default)]
    pub decoded_zero: bool,
}

/// The `sx` analysis.
#[derive(Debug, Clone)]
pub struct Sx {
    finder: Finder,
    match_radius: f64,
    hit_threshold: usize,
    /// The whole image's rows when the input is one 2-D frame, else 0.
    halo: usize,
}

/// Checks the parameters that depend on each other (called by [`super::registry::complete`]).
pub fn complete(config: &mut StageConfig) -> Result<(), String> {
    finder_of(config)?;
    let v = config.float("match_radius");
    if v <= 0.0 {
        return Err(format!("match_radius = {v} must be > 0"));
    }
    Ok(())
}

impl Sx {
    /// The registry's constructor: checks the beam centre against the frame.
    pub fn prepare(
        config: &StageConfig,
        context: &mut Context,
    ) -> Result<Box<dyn DynAnalysis>, String> {
        let shape = context.shape;
        let (mut finder, beam) = finder_of(config)?;
        finder.centre = beam_centre(beam, [shape[shape.len() - 2], shape[shape.len() - 1]])?;
        Ok(Box::new(Sx {
            finder,
            match_radius: config.float("match_radius"),
            hit_threshold: config.int("hit_threshold") as usize,
            halo: if shape.len() == 2 { shape[0] } else { 0 },
        }))
    }

    /// The peak lists of the frames `s.core` of a stack, or of the one frame of a 2-D input
    /// (held whole) the peaks whose first pixel lies in rows `s.core`; and the frame of them
    /// with most original peaks (the first on ties) for the figure.
    fn peaks(&self, s: &Slabs) -> Result<SxPartial, String> {
        s.original.check_same_shape(s.decoded)?;
        let (o, d) = (s.original.to_f64(), s.decoded.to_f64());
        for (which, a) in [("original", &o), ("decoded", &d)] {
            if let Some(i) = a.iter().position(|v| !v.is_finite()) {
                let row = s.held.start + i / (a.len() / a.shape()[0]);
                return Err(format!(
                    "the {which} data hold a non-finite value in row {row}"
                ));
            }
        }
        if s.shape.len() == 2 {
            if s.held != (0..s.shape[0]) {
                return Err(format!(
                    "a 2-D frame needs all its rows; got rows {:?}",
                    s.held
                ));
            }
            let keep = |p: &Peak| s.core.contains(&p.first_row);
            let find = |a: &ndarray::ArrayD<f64>| {
                let view = a.view().into_dimensionality().expect("rank 2");
                self.finder.find(view)
            };
            let original = find(&o);
            let shown = Shown::of(0, original.len(), &o);
            let rows = d.slice_axis(ndarray::Axis(0), ndarray::Slice::from(local(s)));
            return Ok(SxPartial {
                frames: vec![FramePeaks {
                    frame: 0,
                    original: original.into_iter().filter(keep).collect(),
                    decoded: find(&d).into_iter().filter(keep).collect(),
                    decoded_zero: rows.iter().all(|&v| v == 0.0),
                }],
                shown: Some(shown),
            });
        }
        let local = local(s);
        let frames: Vec<FramePeaks> = local
            .clone()
            .zip(s.core.clone())
            .map(|(i, frame)| {
                let at = |a: &ndarray::ArrayD<f64>| {
                    let view = a.index_axis(ndarray::Axis(0), i);
                    self.finder
                        .find(view.into_dimensionality().expect("rank 3"))
                };
                FramePeaks {
                    frame,
                    original: at(&o),
                    decoded: at(&d),
                    decoded_zero: d.index_axis(ndarray::Axis(0), i).iter().all(|&v| v == 0.0),
                }
            })
            .collect();
        // The first frame with most original peaks.
        let shown =
            local
                .zip(&frames)
                .fold(None, |best: Option<(usize, &FramePeaks)>, f| match best {
                    Some(b) if b.1.original.len() >= f.1.original.len() => Some(b),
                    _ => Some(f),
                });
        let shown = shown.map(|(i, f)| {
            let frame = o.index_axis(ndarray::Axis(0), i);
            Shown::of(f.frame, f.original.len(), &frame)
        });
        Ok(SxPartial { frames, shown })
    }
}

/// The rows `s.core` within the rows `s.held`.
fn local(s: &Slabs) -> std::ops::Range<usize> {
    s.core.start - s.held.start..s.core.end - s.held.start
}

/// The frame the figure shows: its index, its number of original peaks, and the original's
/// values shrunk to at most [`FIGURE_SIDE`] pixels a side ([`Raster::block_max`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Shown {
    /// Frame index.
    pub frame: usize,
    /// Original peaks in the whole frame.
    pub peaks: usize,
    /// The original frame's values.
    pub image: Raster,
}

impl Shown {
    /// Frame `frame` with `peaks` original peaks, whose values are `values` (2-D).
    fn of<D: ndarray::Dimension>(
        frame: usize,
        peaks: usize,
        values: &ndarray::ArrayBase<impl ndarray::Data<Elem = f64>, D>,
    ) -> Shown {
        let (ny, nx) = (values.shape()[0], values.shape()[1]);
        let flat: Vec<f64> = values.iter().copied().collect();
        Shown {
            frame,
            peaks,
            image: Raster::block_max(&flat, (ny, nx), FIGURE_SIDE),
        }
    }
}

/// Longest side, in pixels, of the frame kept for the figure: a larger frame is shrunk by
/// block maxima (peaks stay visible), so that a point's results stay small.
pub const FIGURE_SIDE: usize = 128;

/// A partial of [`Sx`]: the peak lists of its frames, merged by concatenation in frame order,
/// and the frame with most original peaks so far (the first on ties) for the figure.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SxPartial {
    /// The frames' peaks, in frame order.
    pub frames: Vec<FramePeaks>,
    /// The frame the figure shows.
    pub shown: Option<Shown>,
}

impl Analysis for Sx {
    type Fit = ();
    type Partial = SxPartial;

    fn halo(&self) -> usize {
        self.halo
    }

    fn fit(&self, _histogram: Option<&Histogram>) -> Result<(), String> {
        Ok(())
    }

    fn partial(&self, _fit: &(), s: &Slabs) -> Result<SxPartial, String> {
        self.peaks(s)
    }

    fn check_partial(&self, partial: &SxPartial) -> Result<(), String> {
        partial.shown.as_ref().map_or(Ok(()), |s| s.image.check())
    }

    fn merge(&self, total: &mut SxPartial, next: SxPartial) -> Result<(), String> {
        // Later frames replace the shown one only with strictly more peaks (rows of one 2-D
        // frame show the same frame).
        if let Some(shown) = next.shown
            && total.shown.as_ref().is_none_or(|s| shown.peaks > s.peaks)
        {
            total.shown = Some(shown);
        }
        let total = &mut total.frames;
        for f in next.frames {
            match total.last_mut() {
                // Rows of the same 2-D frame.
                Some(last) if last.frame == f.frame => {
                    last.original.extend(f.original);
                    last.decoded.extend(f.decoded);
                    last.decoded_zero &= f.decoded_zero;
                }
                _ => total.push(f),
            }
        }
        Ok(())
    }

    fn finish(&self, _fit: &(), total: SxPartial, _shape: &[usize]) -> Result<Value, String> {
        let SxPartial { frames, shown } = total;
        let (mut n_o, mut n_d, mut matched) = (0usize, 0usize, 0usize);
        let (mut hits_o, mut hits_d, mut hits_kept) = (0usize, 0usize, 0usize);
        let (mut err_sum, mut err_max) = (0.0, 0.0f64);
        for f in &frames {
            n_o += f.original.len();
            n_d += f.decoded.len();
            hits_o += usize::from(f.original.len() >= self.hit_threshold);
            hits_d += usize::from(f.decoded.len() >= self.hit_threshold);
            hits_kept += usize::from(
                f.original.len() >= self.hit_threshold && f.decoded.len() >= self.hit_threshold,
            );
            for (i, j) in match_peaks(&f.original, &f.decoded, self.match_radius) {
                let (a, b) = (f.original[i].intensity, f.decoded[j].intensity);
                let e = (b - a).abs() / a;
                err_sum += e;
                err_max = err_max.max(e);
                matched += 1;
            }
        }
        let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
        let frames_n = frames.len() as f64;
        let (rate_o, rate_d) = (hits_o as f64 / frames_n, hits_d as f64 / frames_n);
        let figure = shown.and_then(|shown| {
            let f = frames.iter().find(|f| f.frame == shown.frame)?;
            let positions =
                |peaks: &[Peak]| -> Vec<[f64; 2]> { peaks.iter().map(|p| [p.y, p.x]).collect() };
            Some(json!({
                "frame": shown.frame,
                "image": shown.image.to_json(),
                "original": positions(&f.original),
                "decoded": positions(&f.decoded),
                "matched": match_peaks(&f.original, &f.decoded, self.match_radius),
            }))
        });
        Ok(json!({
            "recall": metric_json(ratio(matched, n_o)),
            "precision": metric_json(ratio(matched, n_d)),
            "intensity_rel_error_mean": metric_json(if matched == 0 { 0.0 } else { err_sum / matched as f64 }),
            "intensity_rel_error_max": metric_json(err_max),
            "hit_rate_change": metric_json(rate_d - rate_o),
            "hit_rate_original": metric_json(rate_o),
            "hit_rate_decoded": metric_json(rate_d),
            "peaks_per_frame_original": metric_json(n_o as f64 / frames_n),
            "peaks_per_frame_decoded": metric_json(n_d as f64 / frames_n),
            "peaks_original": n_o,
            "peaks_decoded": n_d,
            "matched": matched,
            "peaks_lost": n_o - matched,
            "hit_recall": metric_json(ratio(hits_kept, hits_o)),
            "frames": frames.len(),
            "frames_kept": frames.iter().filter(|f| !f.decoded_zero).count(),
            "frames_dropped": frames.iter().filter(|f| f.decoded_zero).map(|f| f.frame).collect::<Vec<_>>(),
            "figure": figure,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finder() -> Finder {
        Finder {
            snr: 3.0,
            clip: 3.0,
            adc: 0.0,
            min_pixels: 2,
            max_pixels: 50,
            iterations: 5,
            centre: (7.5, 7.5),
        }
    }

    #[test]
    fn a_spot_on_a_flat_background_is_found_at_its_centroid() {
        // Background alternating 1, 3 (mu 2, sigma 1); a 2x2 spot of 20, 20, 20, 40.
        let mut frame =
            ndarray::Array2::from_shape_fn(
                (16, 16),
                |(y, x)| {
                    if (y + x) % 2 == 0 { 1.0 } else { 3.0 }
                },
            );
        for (y, x, v) in [(3, 4, 20.0), (3, 5, 20.0), (4, 4, 20.0), (4, 5, 40.0)] {
            frame[[y, x]] = v;
        }
        let peaks = finder().find(frame.view());
        assert_eq!(peaks.len(), 1, "{peaks:?}");
        let p = &peaks[0];
        assert_eq!((p.pixels, p.first_row), (4, 3));
        assert!(
            p.y > 3.5 && p.x > 4.5,
            "weighted to the brightest pixel: {p:?}"
        );
    }

    #[test]
    fn greedy_matching_takes_the_closest_pair_first() {
        let at = |y, x| Peak {
            y,
            x,
            intensity: 1.0,
            pixels: 1,
            first_row: 0,
        };
        let original = [at(0.0, 0.0), at(0.0, 1.5)];
        let decoded = [at(0.0, 1.0)];
        assert_eq!(match_peaks(&original, &decoded, 2.0), [(1, 0)]);
        assert!(match_peaks(&original, &[at(5.0, 5.0)], 2.0).is_empty());
    }

    /// The figure shows the frame with most original peaks (the first on ties), whatever the
    /// chunking, with exactly the finder's peaks of that frame, original and decoded, split
    /// into matched, missed and spurious as [`match_peaks`] pairs them, on the original frame.
    #[test]
    fn the_figure_shows_the_frame_with_most_peaks_and_its_peak_lists() {
        use crate::data::IntoNdArray;
        let (x, y) = crate::analysis::testing::frames(10, 24);
        // One more spot in frames 4 and 7 (a tie: frame 4 is shown); in frame 4 the decoded
        // spot moved (one peak missed, one spurious).
        let (mut x, mut y) = (x.to_f64(), y.to_f64());
        for (frame, original, decoded) in [(4, 1, 20), (7, 1, 1)] {
            for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                x[[frame, original + dy, 11 + dx]] = 400.0;
                y[[frame, decoded + dy, 11 + dx]] = 400.0;
            }
        }
        let (x, y) = (x.into_nd(), y.into_nd());
        let sx = crate::analysis::testing::prepare("[[analysis]]\nkind = \"sx\"\n", &x);
        let chunked = crate::analysis::testing::check_round_trip(&*sx, &x, &y, &[3, 4, 8]);
        let whole = crate::analysis::testing::check_round_trip(&*sx, &x, &y, &[]);
        assert_eq!(chunked, whole);
        // The defaults of the registry.
        let finder = Finder {
            snr: 6.0,
            clip: 3.0,
            adc: 0.0,
            min_pixels: 2,
            max_pixels: 200,
            iterations: 10,
            centre: (11.5, 11.5),
        };
        let (xs, ys) = (x.to_f64(), y.to_f64());
        let frame = |a: &ndarray::ArrayD<f64>, i: usize| {
            a.index_axis(ndarray::Axis(0), i)
                .into_dimensionality::<ndarray::Ix2>()
                .unwrap()
                .to_owned()
        };
        let counts: Vec<usize> = (0..10)
            .map(|i| finder.find(frame(&xs, i).view()).len())
            .collect();
        let most = *counts.iter().max().unwrap();
        let shown = counts.iter().position(|&c| c == most).unwrap();
        assert_eq!((counts[4], counts[7], most), (2, 2, 2), "{counts:?}");
        let figure = &whole["figure"];
        assert_eq!(figure["frame"], shown);
        let (o, d) = (
            finder.find(frame(&xs, shown).view()),
            finder.find(frame(&ys, shown).view()),
        );
        let positions =
            |peaks: &[Peak]| json!(peaks.iter().map(|p| [p.y, p.x]).collect::<Vec<_>>());
        assert_eq!(figure["original"], positions(&o));
        assert_eq!(figure["decoded"], positions(&d));
        let pairs = match_peaks(&o, &d, 2.0);
        assert_eq!(figure["matched"], json!(pairs));
        let image = Raster::from_json(&figure["image"]).unwrap();
        assert_eq!((image.rows, image.cols, image.extent), (24, 24, (24, 24)));
        assert_eq!(
            image.values,
            frame(&xs, shown).iter().copied().collect::<Vec<_>>()
        );

        let drawn = figures(&whole);
        assert_eq!(drawn.len(), 1);
        let panel = &drawn[0].panels[0];
        let marks: Vec<(Role, Vec<(f64, f64)>)> = panel
            .curves
            .iter()
            .map(|c| (c.role, c.points.clone()))
            .collect();
        let at = |p: &Peak| (p.x, p.y);
        let found: Vec<_> = pairs.iter().map(|&(i, _)| i).collect();
        let matching: Vec<_> = pairs.iter().map(|&(_, j)| j).collect();
        let pick = |peaks: &[Peak], kept: &[usize], keep: bool| -> Vec<(f64, f64)> {
            peaks
                .iter()
                .enumerate()
                .filter(|(i, _)| kept.contains(i) == keep)
                .map(|(_, p)| at(p))
                .collect()
        };
        assert_eq!(
            marks,
            [
                (Role::Original, pick(&o, &found, true)),
                (Role::Missed, pick(&o, &found, false)),
                (Role::Decoded, pick(&d, &matching, true)),
                (Role::Spurious, pick(&d, &matching, false)),
            ]
        );
        assert_eq!((o.len(), d.len(), pairs.len()), (2, 2, 1));
        assert_eq!(panel.raster.as_ref().unwrap().raster, image);
        assert!(figures(&json!({})).is_empty());
    }

    /// Peaks of frames cut across slabs, encoded, decoded (as another process would) and
    /// merged, finish as the originals.
    #[test]
    fn encoded_partials_merge_as_the_originals() {
        let (x, y) = crate::analysis::testing::frames(10, 16);
        let sx = crate::analysis::testing::prepare("[[analysis]]\nkind = \"sx\"\n", &x);
        let result = crate::analysis::testing::check_round_trip(&*sx, &x, &y, &[3, 4, 8]);
        assert!(result["peaks_original"].as_u64().unwrap() >= 5, "{result}");
    }
}
