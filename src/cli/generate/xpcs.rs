//! `photonqa gen xpcs`: a speckle series with a known correlation time
//! ([`crate::analysis::xpcs::speckle`]), written frame slab by frame slab.

use clap::Args as ClapArgs;

use super::{Output, Sink};
use crate::analysis::xpcs::speckle::{Speckle, SpeckleParams};
use crate::data::{DType, IntoNdArray};

/// Frames drawn and written at a time.
const SLAB_FRAMES: usize = 64;

#[derive(ClapArgs)]
pub(crate) struct Args {
    /// Output: file.h5 (dataset /frames), file.h5::/path, or file.npy.
    #[arg(long)]
    out: String,
    /// Shape T,Y,X (frames, rows, columns).
    #[arg(long, default_value = "512,32,32", value_parser = parse_shape)]
    shape: [usize; 3],
    /// Field correlation time in frames: g2 - 1 = beta exp(-2 tau / tau_c).
    #[arg(long, default_value_t = SpeckleParams::default().tau_c)]
    tau_c: f64,
    /// Speckle contrast beta in (0, 1].
    #[arg(long, default_value_t = SpeckleParams::default().beta)]
    beta: f64,
    /// Mean photon count per frame at the beam centre.
    #[arg(long, default_value_t = SpeckleParams::default().mean_count)]
    mean_count: f64,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn parse_shape(text: &str) -> Result<[usize; 3], String> {
    let dims: Vec<usize> = text
        .split(',')
        .map(|d| d.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("'{text}' is not T,Y,X"))?;
    dims.try_into()
        .map_err(|_| format!("'{text}' is not T,Y,X (three sizes)"))
}

pub(super) fn run(args: Args) -> Result<(), String> {
    let params = SpeckleParams {
        shape: args.shape,
        tau_c: args.tau_c,
        beta: args.beta,
        mean_count: args.mean_count,
        seed: args.seed,
    };
    let mut speckle = Speckle::new(params.clone())?;
    let provenance = serde_json::json!({
        "generator": "photonqa gen xpcs",
        "photonqa_version": env!("CARGO_PKG_VERSION"),
        "params": params,
        "truth": "g2(tau) - 1 = beta exp(-2 tau / tau_c) for tau >= 1 frame (alpha = 1, baseline 1); beam at (X / 2, Y / 2)",
    });
    let output = Output::parse(&args.out, "/frames");
    let mut sink = Sink::create(&output, &args.shape, DType::Uint16, &provenance)?;
    for start in (0..args.shape[0]).step_by(SLAB_FRAMES) {
        let frames = SLAB_FRAMES.min(args.shape[0] - start);
        sink.write(&speckle.frames(frames).into_dyn().into_nd())?;
    }
    sink.finish()?;
    eprintln!(
        "photonqa: wrote xpcs {:?} uint16 (tau_c {} frames, beta {}, seed {}) to {}",
        args.shape, args.tau_c, args.beta, args.seed, args.out
    );
    Ok(())
}
