//! Tomography projections in the DataExchange layout (APS): `/exchange/data` (angles, rows,
//! detector), flat fields `/exchange/data_white` and dark fields `/exchange/data_dark` (frames,
//! rows, detector), angles `/exchange/theta` in degrees.
//!
//! The sinogram of a detector row is the flat/dark-normalised attenuation
//! `-ln(max((p - dark) / (white - dark), LOG_FLOOR))`, with `dark` and `white` the means of their
//! frames (summed in frame order in float64, as NumPy's `mean(axis=0)`), the usual input of
//! filtered back-projection (`analysis::fbp`).

use std::path::{Path, PathBuf};

use ndarray::s;

/// Smallest transmission before the logarithm: keeps dead or saturated pixels finite.
pub const LOG_FLOOR: f64 = 1e-6;

/// A DataExchange file, opened.
pub struct Exchange {
    path: PathBuf,
    file: hdf5::File,
    /// Angles, rows and detector pixels of the projections.
    pub shape: [usize; 3],
}

impl Exchange {
    /// Opens `path` and checks that its projections, flats and darks agree in shape.
    pub fn open(path: &Path) -> Result<Exchange, String> {
        let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        super::files::refuse_special_file(path).map_err(|e| fail(&e))?;
        let file = hdf5::File::open(path).map_err(|e| fail(&e))?;
        let dims = |name: &str| -> Result<Vec<usize>, String> {
            let d = file
                .dataset(name)
                .map_err(|_| fail(&format!("no dataset {name} (DataExchange layout)")))?;
            Ok(d.shape())
        };
        let data = dims("/exchange/data")?;
        let [angles, rows, detector] = data[..] else {
            return Err(fail(&format!(
                "/exchange/data has shape {data:?}, not (angles, rows, detector)"
            )));
        };
        for name in ["/exchange/data_white", "/exchange/data_dark"] {
            let frames = dims(name)?;
            if frames.len() != 3 || frames[1..] != data[1..] || frames[0] == 0 {
                return Err(fail(&format!(
                    "{name} has shape {frames:?}; frames of {rows}x{detector} expected"
                )));
            }
        }
        let theta = dims("/exchange/theta")?;
        if theta.iter().product::<usize>() != angles {
            return Err(fail(&format!(
                "/exchange/theta has {} values for {angles} projections",
                theta.iter().product::<usize>()
            )));
        }
        Ok(Exchange {
            path: path.to_path_buf(),
            file,
            shape: [angles, rows, detector],
        })
    }

    fn fail(&self, e: impl std::fmt::Display) -> String {
        format!("{}: {e}", self.path.display())
    }

    /// The projection angles in degrees.
    pub fn theta(&self) -> Result<Vec<f64>, String> {
        let theta: Vec<f64> = self
            .file
            .dataset("/exchange/theta")
            .and_then(|d| d.read_raw())
            .map_err(|e| self.fail(e))?;
        match theta.iter().find(|t| !t.is_finite()) {
            Some(t) => Err(self.fail(format!("/exchange/theta holds {t}"))),
            None => Ok(theta),
        }
    }

    /// Mean over the frames of `name` of detector row `row`.
    fn frame_mean(&self, name: &str, row: usize) -> Result<Vec<f64>, String> {
        let frames: ndarray::Array2<f64> = self
            .file
            .dataset(name)
            .and_then(|d| d.read_slice_2d(s![.., row, ..]))
            .map_err(|e| self.fail(format!("{name}: {e}")))?;
        let mut sum = vec![0.0; self.shape[2]];
        for frame in frames.rows() {
            sum.iter_mut().zip(frame).for_each(|(s, v)| *s += v);
        }
        let count = frames.nrows() as f64;
        Ok(sum.into_iter().map(|s| s / count).collect())
    }

    /// The flat and dark fields of detector row `row`, checked (flat above dark everywhere).
    pub fn flat_dark(&self, row: usize) -> Result<FlatDark, String> {
        let [_, rows, detector] = self.shape;
        if row >= rows {
            return Err(self.fail(format!("row {row} is beyond the {rows} detector rows")));
        }
        let white = self.frame_mean("/exchange/data_white", row)?;
        let dark = self.frame_mean("/exchange/data_dark", row)?;
        if let Some(i) = (0..detector).find(|&i| white[i] <= dark[i]) {
            return Err(self.fail(format!(
                "row {row}, pixel {i}: the flat field ({}) is not above the dark field ({})",
                white[i], dark[i]
            )));
        }
        Ok(FlatDark { row, white, dark })
    }

    /// The normalised sinogram (angles x detector, row-major) of detector row `row`.
    pub fn sinogram(&self, row: usize) -> Result<Vec<f64>, String> {
        let fields = self.flat_dark(row)?;
        let projections: ndarray::Array2<f64> = self
            .file
            .dataset("/exchange/data")
            .and_then(|d| d.read_slice_2d(s![.., row, ..]))
            .map_err(|e| self.fail(format!("/exchange/data: {e}")))?;
        let values = projections.as_standard_layout();
        fields
            .normalise(values.as_slice().expect("standard layout"))
            .map_err(|e| self.fail(format!("/exchange/data: {e}")))
    }
}

/// The flat (white) and dark fields of one detector row: turns its raw projections into
/// attenuation, whether read from the file or decoded by a working point.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatDark {
    /// The detector row.
    pub row: usize,
    /// Mean flat field per detector pixel.
    white: Vec<f64>,
    /// Mean dark field per detector pixel.
    dark: Vec<f64>,
}

impl FlatDark {
    /// `-ln(max((p - dark) / (white - dark), LOG_FLOOR))` of raw projections of this row
    /// (angles x detector, row-major). Errors on a non-finite value or a length that is not a
    /// whole number of projections.
    pub fn normalise(&self, projections: &[f64]) -> Result<Vec<f64>, String> {
        let detector = self.white.len();
        if !projections.len().is_multiple_of(detector) {
            return Err(format!(
                "{} values are not whole projections of {detector} pixels",
                projections.len()
            ));
        }
        if let Some(at) = projections.iter().position(|v| !v.is_finite()) {
            return Err(format!(
                "projection {}, row {}, pixel {} is {}",
                at / detector,
                self.row,
                at % detector,
                projections[at]
            ));
        }
        Ok(projections
            .chunks_exact(detector)
            .flat_map(|p| {
                p.iter()
                    .zip(self.white.iter().zip(&self.dark))
                    .map(|(v, (w, d))| -((v - d) / (w - d)).max(LOG_FLOOR).ln())
            })
            .collect())
    }
}
