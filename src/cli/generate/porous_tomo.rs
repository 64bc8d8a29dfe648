//! `photonqa gen porous-tomo`: the tomography phantom written slab by slab (bounded memory at
//! any size).

use std::path::Path;

use clap::Args as ClapArgs;

use super::{Output, Sink};
use crate::data::hdf5io::{AttrValue, FileMode, Hdf5Writer};
use crate::data::phantom::{PorousTomo, PorousTomoParams};
use crate::data::{DType, IntoNdArray, NdArray};

/// Rows rendered and written at a time.
const SLAB_ROWS: usize = 64;

#[derive(ClapArgs)]
pub(crate) struct Args {
    /// Output: file.h5 (dataset /volume), file.h5::/path, or file.npy.
    #[arg(long)]
    out: String,
    /// Shape Z,Y,X (Y and X at least 16).
    #[arg(long, default_value = "64,128,128", value_parser = parse_shape)]
    shape: [usize; 3],
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Gas volume fraction of the sample.
    #[arg(long, default_value_t = PorousTomoParams::default().porosity)]
    porosity: f64,
    /// Standard deviation of the Gaussian noise.
    #[arg(long, default_value_t = PorousTomoParams::default().noise_sigma)]
    noise_sigma: f64,
    /// Width (sigma, voxels) of the edge blur.
    #[arg(long, default_value_t = PorousTomoParams::default().blur_sigma)]
    blur_sigma: f64,
    /// Also write the noiseless phase labels (0 air, 1 melt, 2 gas, 3 crystal) as /labels
    /// (HDF5 output only).
    #[arg(long)]
    labels: bool,
}

fn parse_shape(text: &str) -> Result<[usize; 3], String> {
    let dims: Vec<usize> = text
        .split(',')
        .map(|d| d.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("'{text}' is not Z,Y,X"))?;
    dims.try_into()
        .map_err(|_| format!("'{text}' is not Z,Y,X (three sizes)"))
}

pub(super) fn run(args: Args) -> Result<(), String> {
    let params = PorousTomoParams {
        shape: args.shape,
        seed: args.seed,
        porosity: args.porosity,
        noise_sigma: args.noise_sigma,
        blur_sigma: args.blur_sigma,
        ..PorousTomoParams::default()
    };
    let phantom = PorousTomo::new(params.clone())?;
    let output = Output::parse(&args.out, "/volume");
    if args.labels && matches!(output, Output::Npy(_)) {
        return Err("--labels needs HDF5 output".into());
    }
    let shape = args.shape;
    let slabs = (0..shape[0])
        .step_by(SLAB_ROWS)
        .map(|z| z..(z + SLAB_ROWS).min(shape[0]));
    let provenance = serde_json::json!({
        "generator": "photonqa gen porous-tomo",
        "photonqa_version": env!("CARGO_PKG_VERSION"),
        "params": params,
    });
    let mut sink = Sink::create(&output, &shape, DType::Float32, &provenance)?;
    for rows in slabs.clone() {
        sink.write(&NdArray::Float32(phantom.slab(rows).into_dyn()))?;
    }
    sink.finish()?;
    if let (true, Output::Hdf5(file, _)) = (args.labels, &output) {
        write_labels(&phantom, file, shape, slabs)?;
    }
    eprintln!(
        "photonqa: wrote porous-tomo {shape:?} float32 (seed {}, porosity {}) to {}",
        args.seed, args.porosity, args.out
    );
    Ok(())
}

fn write_labels(
    phantom: &PorousTomo,
    file: &Path,
    shape: [usize; 3],
    slabs: impl Iterator<Item = std::ops::Range<usize>>,
) -> Result<(), String> {
    let mut writer =
        Hdf5Writer::create(file, "/labels", &shape, DType::Uint8, 16, FileMode::Append)
            .map_err(|e| e.to_string())?;
    writer
        .set_attr(
            "meaning",
            &AttrValue::Text("0 air, 1 melt, 2 gas, 3 crystal (noiseless ground truth)".into()),
        )
        .map_err(|e| e.to_string())?;
    for rows in slabs {
        writer
            .write_slab(&phantom.labels(rows).into_dyn().into_nd())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
