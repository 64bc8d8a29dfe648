//! `photonqa gen KIND`: deterministic synthetic data with known ground truth, one subcommand
//! (and one file here) per kind.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::data::files::AtomicFile;
use crate::data::hdf5io::{AttrValue, FileMode, Hdf5Writer};
use crate::data::npy::NpyWriter;
use crate::data::{DType, NdArray};
use crate::runner::format_size;

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

/// How every generator writes: what it may replace and the memory it may use.
#[derive(clap::Args)]
pub(super) struct Writing {
    /// Replace an existing output file (else it is refused).
    #[arg(long)]
    force: bool,
    /// Memory for the generator's model and the slabs in flight, e.g. 512MiB, 2GiB.
    #[arg(long, value_parser = super::parse_size, default_value = "1GiB")]
    memory_budget: u64,
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

    /// The file written.
    pub(super) fn file(&self) -> &Path {
        match self {
            Output::Hdf5(file, _) | Output::Npy(file) => file,
        }
    }
}

/// The bytes of the elements of an array of `shape` and `dtype`; an error when they overflow.
pub(super) fn array_bytes(shape: &[usize], dtype: DType) -> Result<u64, String> {
    shape
        .iter()
        .try_fold(dtype.size() as u64, |bytes, &n| bytes.checked_mul(n as u64))
        .ok_or_else(|| {
            format!("--shape {shape:?}: too large, its size in bytes of {dtype} overflows")
        })
}

/// What a generator holds in memory: its `model` (random objects, per-pixel state) for the
/// whole run, `per_thread` bytes for each thread rendering, and `per_row` bytes for each row
/// (slice, frame) of the slab in flight, its copy on the way to the file included.
pub(super) struct Footprint {
    pub(super) model: u64,
    pub(super) per_thread: u64,
    pub(super) per_row: u64,
}

/// Rows per slab and rendering threads of a generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slabs {
    pub(super) rows: usize,
    pub(super) threads: usize,
}

impl Footprint {
    /// The most rows per slab (at most `most_rows`) and threads (at most the cores and the
    /// rows) that fit `budget`; an error, before anything is allocated, when the model with
    /// one row and one thread does not.
    pub(super) fn fit(&self, budget: u64, most_rows: usize) -> Result<Slabs, String> {
        let one = self.per_thread.saturating_add(self.per_row);
        let least = self.model.saturating_add(one);
        if least > budget {
            let per_row = if self.per_row > 0 {
                format!(", {} per row of the slabs", format_size(self.per_row))
            } else {
                String::new()
            };
            return Err(format!(
                "needs about {} of memory ({} for its model{per_row}), more than --memory-budget {}: raise --memory-budget or generate a smaller shape",
                format_size(least),
                format_size(self.model),
                format_size(budget)
            ));
        }
        let spare = budget - self.model;
        let affordable =
            |bytes: u64, per: u64| (bytes / per.max(1)).min(usize::MAX as u64) as usize;
        let threads = rayon::current_num_threads()
            .min(most_rows)
            .min(affordable(spare, one))
            .max(1);
        let rows = affordable(spare - threads as u64 * self.per_thread, self.per_row)
            .min(most_rows)
            .max(1);
        Ok(Slabs { rows, threads })
    }
}

/// Refuses, before anything is written, arrays of `bytes` that the free space of the file
/// system of `file` cannot hold (HDF5 adds a little metadata on top).
pub(super) fn check_space(file: &AtomicFile, bytes: u64) -> Result<(), String> {
    let stat = rustix::fs::statvfs(file.path()).map_err(|e| {
        format!(
            "{}: cannot read the free space: {e}",
            file.target().display()
        )
    })?;
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    if bytes > free {
        return Err(format!(
            "{}: needs {} but its file system has {} free",
            file.target().display(),
            format_size(bytes),
            format_size(free)
        ));
    }
    Ok(())
}

/// Starts writing `output`: refuses an existing file unless `writing.force`.
pub(super) fn begin(output: &Output, writing: &Writing) -> Result<AtomicFile, String> {
    super::begin_output(output.file(), writing.force)
}

/// A generated array written slab by slab (rows along axis 0, in order) into the temporary
/// file of its output; errors name the output.
pub(super) struct Sink<'a> {
    file: &'a AtomicFile,
    writer: Writer,
}

enum Writer {
    Hdf5(Hdf5Writer),
    Npy(NpyWriter),
}

impl<'a> Sink<'a> {
    /// Creates `output` in `file` for an array of `shape` and `dtype`; HDF5 datasets get the
    /// JSON `provenance` as their `photonqa` attribute.
    pub(super) fn create(
        output: &Output,
        file: &'a AtomicFile,
        shape: &[usize],
        dtype: DType,
        provenance: &serde_json::Value,
    ) -> Result<Sink<'a>, String> {
        let fail = |e| file.relabel(e).to_string();
        let writer = match output {
            Output::Npy(_) => {
                Writer::Npy(NpyWriter::create(file.path(), shape, dtype).map_err(fail)?)
            }
            Output::Hdf5(_, path) => {
                let writer =
                    Hdf5Writer::create(file.path(), path, shape, dtype, 16, FileMode::Create)
                        .map_err(fail)?;
                writer
                    .set_attr("photonqa", &AttrValue::Text(provenance.to_string()))
                    .map_err(fail)?;
                Writer::Hdf5(writer)
            }
        };
        Ok(Sink { file, writer })
    }

    /// Appends the next rows.
    pub(super) fn write(&mut self, slab: &NdArray) -> Result<(), String> {
        match &mut self.writer {
            Writer::Hdf5(w) => w.write_slab(slab),
            Writer::Npy(w) => w.write_slab(slab),
        }
        .map_err(|e| self.file.relabel(e).to_string())
    }

    /// Closes the file.
    pub(super) fn finish(self) -> Result<(), String> {
        match self.writer {
            Writer::Hdf5(w) => {
                drop(w);
                Ok(())
            }
            Writer::Npy(w) => w.finish().map_err(|e| self.file.relabel(e).to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slabs_fill_the_budget_beside_the_model() {
        let footprint = Footprint {
            model: 2048,
            per_thread: 512,
            per_row: 1024,
        };
        let cores = rayon::current_num_threads();
        // One row and one thread: the least.
        let least = Slabs {
            rows: 1,
            threads: 1,
        };
        assert_eq!(footprint.fit(3584, 64), Ok(least));
        // Room for every thread, then rows up to the most asked for.
        let roomy = footprint.fit(2048 + 512 * cores as u64 + 1024 * 64, 64);
        let most = Slabs {
            rows: 64,
            threads: cores.min(64),
        };
        assert_eq!(roomy, Ok(most));
        assert_eq!(footprint.fit(1 << 30, 3).unwrap().rows, 3);
        assert_eq!(
            footprint.fit(3072, 64).unwrap_err(),
            "needs about 3.5 KiB of memory (2 KiB for its model, 1 KiB per row of the slabs), more than --memory-budget 3 KiB: raise --memory-budget or generate a smaller shape"
        );
    }

    #[test]
    fn array_sizes_that_overflow_are_refused() {
        assert_eq!(array_bytes(&[2, 3, 4], DType::Float32), Ok(96));
        assert!(
            array_bytes(&[1 << 62, 2], DType::Uint16)
                .unwrap_err()
                .starts_with("--shape [4611686018427387904, 2]: too large")
        );
    }
}
