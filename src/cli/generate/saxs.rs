//! `photonqa gen saxs`: a small-angle scattering pattern of spheres with Poisson noise (the
//! model: [`crate::analysis::saxs::spheres`]), as an HDF5 file: `/data` (counts, float32 or
//! uint32) with the geometry as float attributes, and `/mask` (uint8, 1 = beamstop) when there
//! is a beamstop.

use std::path::PathBuf;

use clap::Args as ClapArgs;

use super::{Footprint, Writing, array_bytes, check_space};
use crate::analysis::saxs::Geometry;
use crate::analysis::saxs::spheres::{SpheresParams, sphere_rg};
use crate::cli::{begin_output, commit_output};
use crate::data::files::AtomicFile;
use crate::data::hdf5io::{AttrValue, FileMode, RawChunkWriter};
use crate::data::{DType, Element, IntoNdArray, NdArray};

/// Bytes per pixel the pattern needs at its peak, all of it in memory at once: the beamstop
/// mask (1), the q map and the expected counts (8 + 8, then the expected and the drawn counts),
/// the stored plane (4) and its little-endian copy (4), the mask's plane and copy (1 + 1).
const PATTERN_BYTES_PER_PIXEL: u64 = 24;

#[derive(ClapArgs)]
pub(crate) struct Args {
    /// Output HDF5 file (datasets /data and /mask).
    #[arg(long)]
    out: PathBuf,
    /// Detector rows,columns.
    #[arg(long, default_value = "256,256", value_parser = parse_shape)]
    shape: [usize; 2],
    /// Sphere radius in nm (Rg = sqrt(3/5) R).
    #[arg(long, default_value_t = 5.0)]
    radius: f64,
    /// Expected counts per pixel at q = 0.
    #[arg(long, default_value_t = 1e4)]
    counts: f64,
    /// Expected flat background counts per pixel.
    #[arg(long, default_value_t = 1.0)]
    background: f64,
    /// Beam centre column in pixels (default: the detector's centre).
    #[arg(long)]
    beam_x: Option<f64>,
    /// Beam centre row in pixels (default: the detector's centre).
    #[arg(long)]
    beam_y: Option<f64>,
    /// Pixel size in m.
    #[arg(long, default_value_t = 172e-6)]
    pixel_size: f64,
    /// Sample-detector distance in m.
    #[arg(long, default_value_t = 2.0)]
    distance: f64,
    /// Wavelength in m.
    #[arg(long, default_value_t = 1e-10)]
    wavelength: f64,
    /// Beamstop radius in pixels (0: none, no /mask).
    #[arg(long, default_value_t = 6.0)]
    beamstop: f64,
    /// Store integer counts as uint32 rather than float32.
    #[arg(long)]
    integer: bool,
    /// Seed of the Poisson draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    writing: Writing,
}

fn parse_shape(text: &str) -> Result<[usize; 2], String> {
    let dims: Vec<usize> = text
        .split(',')
        .map(|d| d.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("'{text}' is not Y,X"))?;
    match dims.as_slice() {
        [y, x] if *y > 0 && *x > 0 => Ok([*y, *x]),
        _ => Err(format!("'{text}' is not Y,X (two positive sizes)")),
    }
}

/// Writes `array` as dataset `path` of `file`, whole, unfiltered.
fn write(
    file: &AtomicFile,
    path: &str,
    array: &NdArray,
    mode: FileMode,
) -> Result<RawChunkWriter, String> {
    let fail = |e| file.relabel(e).to_string();
    let shape = array.shape();
    let writer = RawChunkWriter::create(
        (file.path(), path),
        shape,
        array.dtype(),
        shape[0],
        &[],
        mode,
    )
    .map_err(fail)?;
    writer.write_chunk(0, &array.to_le_bytes()).map_err(fail)?;
    Ok(writer)
}

fn plane<T: Element>(values: impl Iterator<Item = f64>, shape: [usize; 2]) -> NdArray
where
    ndarray::ArrayD<T>: IntoNdArray,
{
    ndarray::ArrayD::from_shape_vec(shape.to_vec(), values.map(T::from_f64).collect())
        .expect("one value per pixel")
        .into_nd()
}

pub(super) fn run(args: Args) -> Result<(), String> {
    let [ny, nx] = args.shape;
    let params = SpheresParams {
        shape: args.shape,
        geometry: Geometry {
            beam_x: args.beam_x.unwrap_or((nx as f64 - 1.0) / 2.0),
            beam_y: args.beam_y.unwrap_or((ny as f64 - 1.0) / 2.0),
            pixel_size: args.pixel_size,
            distance: args.distance,
            wavelength: args.wavelength,
        },
        radius_nm: args.radius,
        counts: args.counts,
        background: args.background,
        beamstop: args.beamstop,
        seed: args.seed,
    };
    let file = begin_output(&args.out, args.writing.force)?;
    let stored = if args.integer {
        DType::Uint32
    } else {
        DType::Float32
    };
    let mask = if args.beamstop > 0.0 {
        array_bytes(&args.shape, DType::Uint8)?
    } else {
        0
    };
    check_space(
        &file,
        array_bytes(&args.shape, stored)?.saturating_add(mask),
    )?;
    // A pattern is drawn whole: no slabs.
    Footprint {
        model: ((ny * nx) as u64).saturating_mul(PATTERN_BYTES_PER_PIXEL),
        per_thread: 0,
        per_row: 0,
    }
    .fit(args.writing.memory_budget, 1)
    .map_err(|e| format!("gen saxs {ny}x{nx}: {e}"))?;
    let pattern = params.pattern()?;
    let data = if args.integer {
        plane::<u32>(pattern.counts.iter().copied(), args.shape)
    } else {
        plane::<f32>(pattern.counts.iter().copied(), args.shape)
    };
    // The command as typed after the binary's path, which says nothing about the data.
    let command = std::iter::once("photonqa".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let provenance = serde_json::json!({
        "generator": "photonqa gen saxs",
        "command": command,
        "photonqa_version": env!("CARGO_PKG_VERSION"),
        "params": params,
        "rg_nm": sphere_rg(args.radius),
        "q_unit": "1/nm",
        "model": "counts * P(q) + background, P = [3 (sin qR - qR cos qR) / (qR)^3]^2, Poisson noise",
    });
    let writer = write(&file, "/data", &data, FileMode::Create)?;
    let g = params.geometry;
    let attrs = [
        ("photonqa", AttrValue::Text(provenance.to_string())),
        ("beam_x", AttrValue::Float(g.beam_x)),
        ("beam_y", AttrValue::Float(g.beam_y)),
        ("pixel_size", AttrValue::Float(g.pixel_size)),
        ("distance", AttrValue::Float(g.distance)),
        ("wavelength", AttrValue::Float(g.wavelength)),
        ("radius_nm", AttrValue::Float(args.radius)),
        ("rg_nm", AttrValue::Float(sphere_rg(args.radius))),
    ];
    for (name, value) in &attrs {
        writer
            .set_attr(name, value)
            .map_err(|e| file.relabel(e).to_string())?;
    }
    drop(writer);
    if args.beamstop > 0.0 {
        let mask = plane::<u8>(pattern.mask.iter().map(|&m| f64::from(m)), args.shape);
        let writer = write(&file, "/mask", &mask, FileMode::Append)?;
        writer
            .set_attr("meaning", &AttrValue::Text("1 = beamstop, excluded".into()))
            .map_err(|e| file.relabel(e).to_string())?;
    }
    commit_output(file)?;
    eprintln!(
        "photonqa: wrote saxs {ny}x{nx} {} (spheres R = {} nm, Rg = {:.6} nm, seed {}) to {}",
        data.dtype(),
        args.radius,
        sphere_rg(args.radius),
        args.seed,
        args.out.display()
    );
    Ok(())
}
