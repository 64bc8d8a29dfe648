//! `veto`: drops the frames of a series that fail a criterion before compression, as
//! serial-crystallography pipelines veto non-hits as early as possible. The input is a series
//! of frames `[n, y, x]` (axis 0: frames); any other rank is an error.
//!
//! - **Criteria.** `criterion = "peaks"` keeps a frame with at least `min_peaks` Bragg peaks
//!   found by the SX peak finder ([`crate::stats::peaks::Finder`], the `sx` analysis's, with the
//!   same parameters and defaults: `snr_threshold`, `clip_snr`, `adc_threshold`, `min_pixels`,
//!   `max_pixels`, `iterations`, `beam_y`, `beam_x`); `criterion = "counts"` keeps a frame whose
//!   total counts (the float64 sum of its values in C order) are at least `min_counts`. A frame
//!   with a non-finite value is an error (the finder, as the analysis, refuses them).
//! - **Encoded form.** The kept frames, in order (`[k, y, x]`, the input's dtype), which the
//!   rest of the chain packs and compresses, and as side information
//!   ([`crate::pipeline::ArrayToArray::has_side`]) a bitmap of the chunk's frames, one bit per
//!   frame, 1 = kept, least significant bit first (`numpy.packbits(kept, bitorder="little")`):
//!   `ceil(n / 8)` bytes per chunk of `n` frames, plus the chain's 4-byte length. So a dropped
//!   frame costs one bit of the rate. A chunk without a kept frame stores nothing else.
//! - **Decoded form.** The kept frames back in their places, every value of a dropped frame
//!   zero. Which frames were dropped is what the decoded series says: the `sx` analysis reports
//!   `frames_kept` and the indices `frames_dropped` of the frames whose decoded values are all
//!   zero (a kept frame decodes to zeros only when it, or the codec's output of it, is zero).
//! - **Chunks.** The decision is each frame's own, so it does not depend on the chunking. The
//!   number of rows the stages after `veto` see depends on the data: a stage after it that
//!   encodes blocks of rows along axis 0 (`bin` with `factor_z`) is refused, and an HDF5
//!   dataset (export, `artifact = "hdf5"`) cannot store a chain with `veto`.
//!
//! The peer is NumPy (`tests/veto_crosscheck.rs`): the counts criterion with `sum`, the peaks
//! criterion with the peak counts of `tests/peers/sx_fixtures.py`'s finder, the bitmap with
//! `packbits` and the decoded series by assignment, compared exactly.
//!
//! # References
//!
//! 1. A. Barty et al., "Cheetah: software for high-throughput reduction and analysis of serial
//!    femtosecond X-ray diffraction data", J. Appl. Cryst. 47 (2014) 1118-1131,
//!    doi:10.1107/S1600576714007626 (hit finding: frames with enough peaks are kept).

use ndarray::{ArrayD, Axis, IxDyn};

use crate::data::{DType, Element, IntoNdArray, NdArray};
use crate::pipeline::params::{ANY_FLOAT, Default};
use crate::pipeline::{
    ArrayToArray, CodecError, ParamDef, ParamKind, Stage, StageConfig, StageDef, StageInput,
    StageKind,
};
use crate::stats::peaks::Finder;
use crate::with_array;

/// The parameters of the SX peak finder ([`Finder`]), shared by this stage and the `sx`
/// analysis (`crate::analysis::sx`), with their defaults.
pub const FINDER_PARAMS: [ParamDef; 8] = [
    ParamDef {
        name: "snr_threshold",
        kind: ANY_FLOAT,
        default: Default::Float(6.0),
        doc: "peak pixels: I - mu > snr_threshold * sigma of their radial bin; > 0",
    },
    ParamDef {
        name: "clip_snr",
        kind: ANY_FLOAT,
        default: Default::Float(3.0),
        doc: "pixels with I - mu > clip_snr * sigma leave the radial background estimate (peakfinder8: = snr_threshold); > 0",
    },
    ParamDef {
        name: "adc_threshold",
        kind: ANY_FLOAT,
        default: Default::Float(0.0),
        doc: "peak pixels also have I > adc_threshold",
    },
    ParamDef {
        name: "min_pixels",
        kind: ParamKind::Int {
            min: 1,
            max: 1_000_000,
        },
        default: Default::Int(2),
        doc: "smallest peak (pixels)",
    },
    ParamDef {
        name: "max_pixels",
        kind: ParamKind::Int {
            min: 1,
            max: 1_000_000,
        },
        default: Default::Int(200),
        doc: "largest peak (pixels), >= min_pixels",
    },
    ParamDef {
        name: "iterations",
        kind: ParamKind::Int { min: 1, max: 100 },
        default: Default::Int(10),
        doc: "passes of the radial background estimate that drop bright pixels",
    },
    ParamDef {
        name: "beam_y",
        kind: ANY_FLOAT,
        default: Default::Derived("the frame's centre (ny - 1) / 2"),
        doc: "beam centre row (pixels), centre of the radial background bins",
    },
    ParamDef {
        name: "beam_x",
        kind: ANY_FLOAT,
        default: Default::Derived("the frame's centre (nx - 1) / 2"),
        doc: "beam centre column (pixels)",
    },
];

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "veto",
    aliases: &[],
    kind: StageKind::ArrayToArray,
    summary: "drops the frames (axis 0 of [n, y, x]) with fewer than min_peaks SX peaks or total counts below min_counts; the kept frames go on with a 1-bit-per-frame bitmap as side information; decoded, dropped frames are zero",
    lossless: false,
    params: &PARAMS,
    create,
};

/// The criterion, its thresholds, then the peak finder's parameters.
static PARAMS: [ParamDef; 11] = with_finder(
    false,
    [
        ParamDef {
            name: "criterion",
            kind: ParamKind::Choice(&["peaks", "counts"]),
            default: Default::Str("peaks"),
            doc: "peaks: keep frames with at least min_peaks peaks of the SX peak finder; counts: keep frames whose total counts are at least min_counts",
        },
        ParamDef {
            name: "min_peaks",
            kind: ParamKind::Int {
                min: 1,
                max: 1_000_000,
            },
            default: Default::Int(1),
            doc: "criterion = \"peaks\": a frame with fewer peaks is dropped",
        },
        ParamDef {
            name: "min_counts",
            kind: ANY_FLOAT,
            default: Default::Derived("required when criterion = \"counts\""),
            doc: "criterion = \"counts\": a frame whose values sum to less is dropped",
        },
    ],
);

/// `own` (`N` parameters) and [`FINDER_PARAMS`] in one list of `M = N + 8`: the finder's
/// first when `finder_first`, else after `own`.
pub const fn with_finder<const N: usize, const M: usize>(
    finder_first: bool,
    own: [ParamDef; N],
) -> [ParamDef; M] {
    assert!(M == N + FINDER_PARAMS.len(), "M = N + 8");
    let mut out = [FINDER_PARAMS[0]; M];
    let offset = if finder_first { FINDER_PARAMS.len() } else { 0 };
    let start = if finder_first { 0 } else { N };
    let mut i = 0;
    while i < N {
        out[offset + i] = own[i];
        i += 1;
    }
    let mut i = 0;
    while i < FINDER_PARAMS.len() {
        out[start + i] = FINDER_PARAMS[i];
        i += 1;
    }
    out
}

/// The peak finder of `config` (its [`FINDER_PARAMS`]) without its beam centre, and the beam
/// centre it gives (`beam_y`, `beam_x`; `None`: the frame's centre); an error names a
/// parameter out of its range.
pub fn finder_of(config: &StageConfig) -> Result<(Finder, [Option<f64>; 2]), String> {
    let (lo, hi) = (config.int("min_pixels"), config.int("max_pixels"));
    if lo > hi {
        return Err(format!("min_pixels = {lo} is above max_pixels = {hi}"));
    }
    for name in ["snr_threshold", "clip_snr"] {
        let v = config.float(name);
        if v <= 0.0 {
            return Err(format!("{name} = {v} must be > 0"));
        }
    }
    let finder = Finder {
        snr: config.float("snr_threshold"),
        clip: config.float("clip_snr"),
        adc: config.float("adc_threshold"),
        min_pixels: lo as usize,
        max_pixels: hi as usize,
        iterations: config.int("iterations") as usize,
        centre: (0.0, 0.0),
    };
    Ok((
        finder,
        [config.opt_float("beam_y"), config.opt_float("beam_x")],
    ))
}

/// The beam centre in a frame of `frame` (rows, columns) pixels: `beam` where given, else the
/// frame's centre `(n - 1) / 2`; an error when it lies outside the frame.
pub fn beam_centre(beam: [Option<f64>; 2], frame: [usize; 2]) -> Result<(f64, f64), String> {
    let mut centre = [0.0; 2];
    for (axis, name) in ["beam_y", "beam_x"].into_iter().enumerate() {
        let n = frame[axis] as f64;
        centre[axis] = beam[axis].unwrap_or((n - 1.0) / 2.0);
        if !(-0.5..=n - 0.5).contains(&centre[axis]) {
            return Err(format!(
                "{name} = {} is outside the frame (-0.5..={})",
                centre[axis],
                n - 0.5
            ));
        }
    }
    Ok((centre[0], centre[1]))
}

fn create(config: &StageConfig, input: StageInput) -> Result<Stage, String> {
    let criterion = match (config.str("criterion"), config.opt_float("min_counts")) {
        ("counts", Some(v)) if v.is_finite() => Criterion::Counts(v),
        ("counts", Some(v)) => return Err(format!("min_counts = {v} must be finite")),
        ("counts", None) => return Err("criterion = \"counts\" needs min_counts".into()),
        (_, Some(_)) => return Err("min_counts applies only to criterion = \"counts\"".into()),
        (_, None) => Criterion::Peaks(config.int("min_peaks") as usize),
    };
    let (finder, beam) = finder_of(config)?;
    Ok(Stage::ArrayToArray(
        Box::new(Veto {
            criterion,
            finder,
            beam,
            dtype: input.dtype,
        }),
        input.dtype,
    ))
}

/// What a frame must have to be kept.
enum Criterion {
    /// At least this many peaks.
    Peaks(usize),
    /// Total counts at least this.
    Counts(f64),
}

struct Veto {
    criterion: Criterion,
    /// The peak finder, its centre set per frame shape.
    finder: Finder,
    /// `beam_y`, `beam_x` as given.
    beam: [Option<f64>; 2],
    /// The input's dtype.
    dtype: DType,
}

impl Veto {
    /// The frame shape `[y, x]` of a chunk of `shape` and the peak finder for its frames
    /// (`None` for the counts criterion); an error unless `shape` is `[n, y, x]` and the beam
    /// centre lies in the frame.
    fn frame(&self, shape: &[usize]) -> Result<([usize; 2], Option<Finder>), CodecError> {
        let &[_, y, x] = shape else {
            return Err(CodecError::new(
                DEF.id,
                format!(
                    "needs a series of frames [n, y, x] (3 axes, axis 0 the frames); a chunk has shape {shape:?}"
                ),
            ));
        };
        let finder = match self.criterion {
            Criterion::Peaks(_) => Some(Finder {
                centre: beam_centre(self.beam, [y, x]).map_err(|e| CodecError::new(DEF.id, e))?,
                ..self.finder.clone()
            }),
            Criterion::Counts(_) => None,
        };
        Ok(([y, x], finder))
    }

    /// Whether each frame of `input` (`[n, y, x]`) is kept.
    fn kept(&self, input: &NdArray) -> Result<Vec<bool>, CodecError> {
        let (_, finder) = self.frame(input.shape())?;
        let values = input.to_f64();
        values
            .axis_iter(Axis(0))
            .enumerate()
            .map(|(i, f)| {
                if f.iter().any(|v| !v.is_finite()) {
                    return Err(CodecError::new(
                        DEF.id,
                        format!("frame {i} of the chunk holds a non-finite value"),
                    ));
                }
                Ok(match (&self.criterion, &finder) {
                    (Criterion::Peaks(n), Some(finder)) => {
                        let view = f.into_dimensionality().expect("a frame has 2 axes");
                        finder.find(view).len() >= *n
                    }
                    (Criterion::Counts(min), _) => f.iter().sum::<f64>() >= *min,
                    (Criterion::Peaks(_), None) => unreachable!("a finder for peaks"),
                })
            })
            .collect()
    }
}

/// The kept frames' indices of a chunk of `n` frames from its bitmap, checked.
fn unpack(side: &[u8], n: usize) -> Result<Vec<usize>, CodecError> {
    if side.len() != n.div_ceil(8) {
        return Err(CodecError::new(
            DEF.id,
            format!(
                "corrupt stream: the bitmap of {n} frames has {} bytes, not {}",
                side.len(),
                n.div_ceil(8)
            ),
        ));
    }
    let bit = |i: usize| side[i / 8] >> (i % 8) & 1 == 1;
    if (n..side.len() * 8).any(bit) {
        return Err(CodecError::new(
            DEF.id,
            "corrupt stream: the bitmap marks frames beyond the chunk",
        ));
    }
    Ok((0..n).filter(|&i| bit(i)).collect())
}

/// The bitmap of `kept`, one bit per frame, least significant bit first.
fn pack(kept: &[bool]) -> Vec<u8> {
    let mut bits = vec![0u8; kept.len().div_ceil(8)];
    for (i, _) in kept.iter().enumerate().filter(|(_, k)| **k) {
        bits[i / 8] |= 1 << (i % 8);
    }
    bits
}

/// Frames `kept` of `a` along axis 0, in order.
fn select<T: Element>(a: &ArrayD<T>, kept: &[usize]) -> NdArray
where
    ArrayD<T>: IntoNdArray,
{
    a.select(Axis(0), kept).into_nd()
}

/// An array of `shape` whose frames `kept` are those of `e`, in order, and every other value
/// zero.
fn place<T: Element>(e: &ArrayD<T>, shape: &[usize], kept: &[usize]) -> NdArray
where
    ArrayD<T>: IntoNdArray,
{
    let mut out = ArrayD::from_elem(IxDyn(shape), T::from_f64(0.0));
    for (j, &i) in kept.iter().enumerate() {
        out.index_axis_mut(Axis(0), i)
            .assign(&e.index_axis(Axis(0), j));
    }
    out.into_nd()
}

impl ArrayToArray for Veto {
    fn has_side(&self) -> bool {
        true
    }

    /// At most the input's shape: how many frames are kept depends on the data
    /// ([`ArrayToArray::encoded_shape_with`] says). An error for a chunk that is not a series
    /// of frames or whose frames do not hold the beam centre.
    fn encoded_shape(&self, shape: &[usize]) -> Result<Vec<usize>, CodecError> {
        self.frame(shape)?;
        Ok(shape.to_vec())
    }

    fn encoded_shape_with(&self, shape: &[usize], side: &[u8]) -> Result<Vec<usize>, CodecError> {
        self.frame(shape)?;
        let kept = unpack(side, shape[0])?;
        Ok(vec![kept.len(), shape[1], shape[2]])
    }

    fn encode(&self, input: NdArray) -> Result<NdArray, CodecError> {
        Ok(self.encode_with_side(input)?.0)
    }

    fn encode_with_side(&self, input: NdArray) -> Result<(NdArray, Vec<u8>), CodecError> {
        let kept = self.kept(&input)?;
        let indices: Vec<usize> = (0..kept.len()).filter(|&i| kept[i]).collect();
        let frames = with_array!(&input, a => select(a, &indices));
        Ok((frames, pack(&kept)))
    }

    fn decode(&self, _encoded: NdArray, _shape: &[usize]) -> Result<NdArray, CodecError> {
        Err(CodecError::new(
            DEF.id,
            "decoding needs the bitmap of kept frames (its side information)",
        ))
    }

    fn decode_with(
        &self,
        encoded: NdArray,
        shape: &[usize],
        side: &[u8],
    ) -> Result<NdArray, CodecError> {
        let expected = self.encoded_shape_with(shape, side)?;
        if encoded.dtype() != self.dtype || encoded.shape() != expected {
            return Err(CodecError::new(
                DEF.id,
                format!(
                    "the kept frames of a chunk of {} {shape:?} are {} {expected:?}, got {} {:?}",
                    self.dtype,
                    self.dtype,
                    encoded.dtype(),
                    encoded.shape()
                ),
            ));
        }
        let kept = unpack(side, shape[0])?;
        Ok(with_array!(&encoded, e => place(e, shape, &kept)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bitmap_is_least_significant_bit_first_and_checked() {
        let kept = [
            true, false, false, true, false, false, false, false, true, true,
        ];
        let bits = pack(&kept);
        assert_eq!(bits, [0b0000_1001, 0b0000_0011]);
        assert_eq!(unpack(&bits, 10).unwrap(), [0, 3, 8, 9]);
        assert!(unpack(&bits, 9).unwrap_err().message.contains("beyond"));
        assert!(
            unpack(&bits[..1], 10)
                .unwrap_err()
                .message
                .contains("1 bytes")
        );
    }
}
