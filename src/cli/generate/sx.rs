//! `photonqa gen sx`: serial-crystallography frames with Bragg spots of known positions
//! ([`crate::data::sx_model`]) as integer counts, and the true spot list as `/peaks`.

use clap::Args as ClapArgs;
use ndarray::Array2;

use super::{Footprint, Output, Sink, Writing, array_bytes, begin, check_space};
use crate::cli::commit_output;
use crate::data::files::AtomicFile;
use crate::data::hdf5io::{AttrValue, FileMode, Hdf5Writer};
use crate::data::sx_model::{SxFrames, SxParams};
use crate::data::{DType, IntoNdArray, NdArray};

/// Most frames rendered and written at a time.
const SLAB_FRAMES: usize = 16;

#[derive(ClapArgs)]
pub(crate) struct Args {
    /// Output: file.h5 (dataset /frames, true spots in /peaks), file.h5::/path, or file.npy
    /// (no spot list).
    #[arg(long)]
    out: String,
    /// Shape N,Y,X (frames, rows, columns; Y and X at least 16).
    #[arg(long, default_value = "32,128,128", value_parser = parse_shape)]
    shape: [usize; 3],
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Probability that a frame is a hit (holds 10-25 spots; a miss holds 0-2).
    #[arg(long, default_value_t = SxParams::default().hit_fraction)]
    hit_fraction: f64,
    /// Stored type of the counts.
    #[arg(long, default_value = "uint16", value_parser = ["uint16", "uint32"])]
    dtype: String,
    #[command(flatten)]
    writing: Writing,
}

fn parse_shape(text: &str) -> Result<[usize; 3], String> {
    let dims: Vec<usize> = text
        .split(',')
        .map(|d| d.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("'{text}' is not N,Y,X"))?;
    dims.try_into()
        .map_err(|_| format!("'{text}' is not N,Y,X (three sizes)"))
}

pub(super) fn run(args: Args) -> Result<(), String> {
    let params = SxParams {
        shape: args.shape,
        seed: args.seed,
        hit_fraction: args.hit_fraction,
        ..SxParams::default()
    };
    let output = Output::parse(&args.out, "/frames");
    let dtype = DType::parse(&args.dtype)?;
    let shape = args.shape;
    let file = begin(&output, &args.writing)?;
    let frames = array_bytes(&shape, dtype)?;
    // With /peaks: 4 float64 per spot, less than the spot list's bound in memory.
    check_space(&file, frames.saturating_add(params.spots_bytes()))?;
    let pixels = (shape[1] * shape[2]) as u64;
    let counts = DType::Float64.size() as u64;
    let footprint = Footprint {
        // The spots, and the expected counts of the frame being drawn.
        model: params.spots_bytes().saturating_add(pixels * counts),
        per_thread: 0,
        // The counts drawn, stored as `dtype`, and their copy on the way to the file.
        per_row: pixels * (counts + 2 * dtype.size() as u64),
    };
    let slab = footprint
        .fit(args.writing.memory_budget, SLAB_FRAMES.min(shape[0]))
        .map_err(|e| format!("gen sx {shape:?}: {e}"))?
        .rows;
    let model = SxFrames::new(params.clone())?;
    let max = if dtype == DType::Uint16 {
        f64::from(u16::MAX)
    } else {
        f64::from(u32::MAX)
    };
    let provenance = serde_json::json!({
        "generator": "photonqa gen sx",
        "photonqa_version": env!("CARGO_PKG_VERSION"),
        "params": params,
    });
    let mut sink = Sink::create(&output, &file, &shape, dtype, &provenance)?;
    // Each frame's noise has its own random stream: any slab size draws the same frames.
    for start in (0..shape[0]).step_by(slab) {
        let counts = model.counts(start..(start + slab).min(shape[0]), max);
        let slab = if dtype == DType::Uint16 {
            counts.mapv(|v| v as u16).into_dyn().into_nd()
        } else {
            counts.mapv(|v| v as u32).into_dyn().into_nd()
        };
        sink.write(&slab)?;
    }
    sink.finish()?;
    if matches!(output, Output::Hdf5(..)) {
        write_peaks(&model, &file)?;
    }
    commit_output(file)?;
    eprintln!(
        "photonqa: wrote sx {shape:?} {dtype} with {} spots (seed {}) to {}",
        model.spots.len(),
        args.seed,
        args.out
    );
    Ok(())
}

/// The true spots as a float64 `(n, 4)` dataset `/peaks`: frame, y, x, integrated intensity.
fn write_peaks(model: &SxFrames, file: &AtomicFile) -> Result<(), String> {
    let n = model.spots.len();
    if n == 0 {
        return Ok(());
    }
    let peaks = Array2::from_shape_fn((n, 4), |(i, c)| {
        let s = &model.spots[i];
        [s.frame as f64, s.y, s.x, s.intensity][c]
    });
    let fail = |e| file.relabel(e).to_string();
    let mut writer = Hdf5Writer::create(
        file.path(),
        "/peaks",
        &[n, 4],
        DType::Float64,
        n,
        FileMode::Append,
    )
    .map_err(fail)?;
    writer
        .set_attr(
            "columns",
            &AttrValue::Text(
                "frame, y, x, integrated intensity (photons) of each true spot (pixel centres at integers)".into(),
            ),
        )
        .map_err(fail)?;
    writer
        .write_slab(&NdArray::Float64(peaks.into_dyn()))
        .map_err(fail)
}
