//! `scaleoffset`: HDF5's own scale-offset filter (filter 6, the `cd_values` of
//! `H5Pset_scaleoffset`), run by the HDF5 library photonqa links on each chunk in memory
//! ([`crate::data::hdf5chunk`]): the stored chunk is what HDF5 writes, the decoded one what it
//! reads back.
//!
//! Floats use D-scaling: HDF5 keeps `decimals` decimal digits (`lround((x - min) 10^D)`), so the
//! stage promises rounding to them, `|y - x| <= 0.5 10^-decimals`, checked on every run. HDF5
//! computes in the data's own precision, and with Debian's HDF5 1.10.8 the error reaches
//! `10^-decimals` on the reference volume: the check reports those values. Integers use the
//! filter's automatic minimum bits, which is lossless (promised as an absolute error of 0).
//!
//! The chunks are stored as [`Hdf5FilterCodec`] says.

use super::hdf5_filter::Hdf5FilterCodec;
use crate::pipeline::params::Default;
use crate::pipeline::{
    ParamDef, ParamKind, Promise, Stage, StageConfig, StageDef, StageInput, StageKind,
};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "scaleoffset",
    aliases: &["scale-offset"],
    kind: StageKind::ArrayToBytes,
    summary: "HDF5's scale-offset filter: floats rounded to `decimals` decimal digits (D-scale), integers losslessly",
    lossless: false,
    params: &[ParamDef {
        name: "decimals",
        kind: ParamKind::Int { min: 0, max: 15 },
        default: Default::Int(3),
        doc: "decimal digits kept of floats (HDF5's D-scale factor); ignored for integers",
    }],
    create,
};

fn create(config: &StageConfig, input: StageInput) -> Result<Stage, String> {
    let decimals = config.int("decimals") as u8;
    // H5Pset_scaleoffset's cd_values: D-scaling (0) with the decimals, or integers (2) with
    // the minimum bits found by the filter (0).
    let (cd_values, bound) = if input.dtype.is_float() {
        (
            vec![0, u32::from(decimals)],
            0.5 * 10f64.powi(-i32::from(decimals)),
        )
    } else {
        (vec![2, 0], 0.0)
    };
    Ok(Stage::ArrayToBytes(Box::new(Hdf5FilterCodec {
        stage: DEF.id,
        filter: [(SCALEOFFSET, cd_values)],
        stored: input.dtype.into(),
        promise: Some(Promise::AbsError(bound)),
    })))
}

/// HDF5's scale-offset filter id.
const SCALEOFFSET: u32 = 6;
