//! `photonqa gen KIND`: deterministic synthetic data with known ground truth, one subcommand
//! (and one file here) per kind.

use std::path::PathBuf;

use clap::Subcommand;

use crate::data::hdf5io::{AttrValue, FileMode, Hdf5Writer};
use crate::data::npy::NpyWriter;
use crate::data::{DType, NdArray};

mod porous_tomo;
mod saxs;
mod sx;
mod xpcs;

/// The generators.
#[derive(Subcommand)]
pub(super) enum GenCommand {
    /// Vesiculating magma: melt cylinder with gas bubbles and dense crystals, blur and noise.
    PorousTomo(porous_tomo::Args),
    /// Small-angle scattering of spheres of known radius (known Rg) with Poisson noise.
    Saxs(saxs::Args),
    /// XPCS speckle series: Ornstein-Uhlenbeck complex fields, Poisson counts, known tau_c.
    Xpcs(xpcs::Args),
    /// Serial crystallography: Bragg spots on a radial background, Poisson counts, true spots.
    Sx(sx::Args),
}

pub(super) fn run(command: GenCommand) -> Result<(), String> {
    match command {
        GenCommand::PorousTomo(args) => porous_tomo::run(args),
        GenCommand::Saxs(args) => saxs::run(args),
        GenCommand::Xpcs(args) => xpcs::run(args),
        GenCommand::Sx(args) => sx::run(args),
    }
}

/// Where a generator writes: `file.h5` (the generator's default dataset), `file.h5::/path`,
/// or `file.npy`.
pub(super) enum Output {
    Hdf5(PathBuf, String),
    Npy(PathBuf),
}

impl Output {
    pub(super) fn parse(out: &str, default_dataset: &str) -> Output {
        match out.split_once("::") {
            Some((file, path)) => Output::Hdf5(file.into(), path.to_string()),
            None if out.ends_with(".npy") => Output::Npy(out.into()),
            None => Output::Hdf5(out.into(), default_dataset.into()),
        }
    }
}

/// A generated array written slab by slab (rows along axis 0, in order).
pub(super) enum Sink {
    Hdf5(Hdf5Writer),
    Npy(NpyWriter),
}

impl Sink {
    /// Creates `output` for an array of `shape` and `dtype`; HDF5 datasets get the JSON
    /// `provenance` as their `photonqa` attribute.
    pub(super) fn create(
        output: &Output,
        shape: &[usize],
        dtype: DType,
        provenance: &serde_json::Value,
    ) -> Result<Sink, String> {
        match output {
            Output::Npy(path) => NpyWriter::create(path, shape, dtype)
                .map(Sink::Npy)
                .map_err(|e| e.to_string()),
            Output::Hdf5(file, path) => {
                let writer = Hdf5Writer::create(file, path, shape, dtype, 16, FileMode::Create)
                    .map_err(|e| e.to_string())?;
                writer
                    .set_attr("photonqa", &AttrValue::Text(provenance.to_string()))
                    .map_err(|e| e.to_string())?;
                Ok(Sink::Hdf5(writer))
            }
        }
    }

    /// Appends the next rows.
    pub(super) fn write(&mut self, slab: &NdArray) -> Result<(), String> {
        match self {
            Sink::Hdf5(w) => w.write_slab(slab),
            Sink::Npy(w) => w.write_slab(slab),
        }
        .map_err(|e| e.to_string())
    }

    /// Flushes the file.
    pub(super) fn finish(self) -> Result<(), String> {
        match self {
            Sink::Hdf5(w) => {
                drop(w);
                Ok(())
            }
            Sink::Npy(w) => w.finish().map_err(|e| e.to_string()),
        }
    }
}
