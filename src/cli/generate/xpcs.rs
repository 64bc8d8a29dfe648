//! `photonqa gen xpcs`: a speckle series with a known correlation time
//! ([`crate::analysis::xpcs::speckle`]), written frame slab by frame slab.

use clap::Args as ClapArgs;

use super::{Footprint, Output, Sink, Writing, array_bytes, begin, check_space};
use crate::analysis::xpcs::speckle::{Speckle, SpeckleParams};
use crate::cli::commit_output;
use crate::data::{DType, IntoNdArray};

/// Most frames drawn and written at a time.
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
    #[command(flatten)]
    writing: Writing,
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
    let output = Output::parse(&args.out, "/frames");
    let file = begin(&output, &args.writing)?;
    check_space(&file, array_bytes(&args.shape, DType::Uint16)?)?;
    let [frames, y, x] = args.shape;
    let pixels = (y * x) as u64;
    let footprint = Footprint {
        model: pixels * Speckle::STATE_BYTES_PER_PIXEL,
        per_thread: 0,
        // The frame drawn and its copy on the way to the file.
        per_row: 2 * pixels * DType::Uint16.size() as u64,
    };
    let slab = footprint
        .fit(args.writing.memory_budget, SLAB_FRAMES.min(frames))
        .map_err(|e| format!("gen xpcs {:?}: {e}", args.shape))?
        .rows;
    // The frames follow each other in one random stream: any slab size draws the same series.
    let mut speckle = Speckle::new(params.clone())?;
    let provenance = serde_json::json!({
        "generator": "photonqa gen xpcs",
        "photonqa_version": env!("CARGO_PKG_VERSION"),
        "params": params,
        "truth": "g2(tau) - 1 = beta exp(-2 tau / tau_c) for tau >= 1 frame (alpha = 1, baseline 1); beam at (X / 2, Y / 2)",
    });
    let mut sink = Sink::create(&output, &file, &args.shape, DType::Uint16, &provenance)?;
    for start in (0..frames).step_by(slab) {
        sink.write(
            &speckle
                .frames(slab.min(frames - start))
                .into_dyn()
                .into_nd(),
        )?;
    }
    sink.finish()?;
    commit_output(file)?;
    eprintln!(
        "photonqa: wrote xpcs {:?} uint16 (tau_c {} frames, beta {}, seed {}) to {}",
        args.shape, args.tau_c, args.beta, args.seed, args.out
    );
    Ok(())
}
