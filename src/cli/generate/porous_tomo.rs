//! `photonqa gen porous-tomo`: the tomography phantom written slab by slab, as many slices at a
//! time as the memory budget holds beside the phantom's objects.

use clap::Args as ClapArgs;

use super::{Footprint, Output, Sink, Slabs, Writing, array_bytes, begin, check_space};
use crate::cli::commit_output;
use crate::data::files::AtomicFile;
use crate::data::hdf5io::{AttrValue, FileMode, Hdf5Writer};
use crate::data::phantom::{PorousTomo, PorousTomoParams};
use crate::data::{DType, IntoNdArray, NdArray};

/// Most rows rendered and written at a time.
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
    #[command(flatten)]
    writing: Writing,
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
    params.validate()?;
    let output = Output::parse(&args.out, "/volume");
    if args.labels && matches!(output, Output::Npy(_)) {
        return Err("--labels needs HDF5 output".into());
    }
    let shape = args.shape;
    let file = begin(&output, &args.writing)?;
    let volume = array_bytes(&shape, DType::Float32)?;
    let labels = if args.labels {
        array_bytes(&shape, DType::Uint8)?
    } else {
        0
    };
    check_space(&file, volume.saturating_add(labels))?;
    let pixels = (shape[1] * shape[2]) as u64;
    let footprint = Footprint {
        model: params.model_bytes(),
        per_thread: pixels * PorousTomo::SLICE_SCRATCH_BYTES_PER_PIXEL,
        // The slice rendered and its copy on the way to the file.
        per_row: 2 * pixels * DType::Float32.size() as u64,
    };
    let slabs = footprint
        .fit(args.writing.memory_budget, SLAB_ROWS.min(shape[0]))
        .map_err(|e| format!("gen porous-tomo {shape:?}: {e}"))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(slabs.threads)
        .build()
        .map_err(|e| format!("cannot start {} threads: {e}", slabs.threads))?;
    pool.install(|| write(&params, &output, &file, slabs, args.labels))?;
    commit_output(file)?;
    eprintln!(
        "photonqa: wrote porous-tomo {shape:?} float32 (seed {}, porosity {}) to {}",
        args.seed, args.porosity, args.out
    );
    Ok(())
}

/// Places the phantom's objects and writes its volume (and `labels`) into `file`, `slabs.rows`
/// slices at a time.
fn write(
    params: &PorousTomoParams,
    output: &Output,
    file: &AtomicFile,
    slabs: Slabs,
    labels: bool,
) -> Result<(), String> {
    let phantom = PorousTomo::new(params.clone())?;
    let shape = params.shape;
    let ranges = (0..shape[0])
        .step_by(slabs.rows)
        .map(|z| z..(z + slabs.rows).min(shape[0]));
    let provenance = serde_json::json!({
        "generator": "photonqa gen porous-tomo",
        "photonqa_version": env!("CARGO_PKG_VERSION"),
        "params": params,
    });
    let mut sink = Sink::create(output, file, &shape, DType::Float32, &provenance)?;
    for rows in ranges.clone() {
        sink.write(&NdArray::Float32(phantom.slab(rows).into_dyn()))?;
    }
    sink.finish()?;
    if !labels {
        return Ok(());
    }
    let fail = |e| file.relabel(e).to_string();
    let mut writer = Hdf5Writer::create(
        file.path(),
        "/labels",
        &shape,
        DType::Uint8,
        16,
        FileMode::Append,
    )
    .map_err(fail)?;
    writer
        .set_attr(
            "meaning",
            &AttrValue::Text("0 air, 1 melt, 2 gas, 3 crystal (noiseless ground truth)".into()),
        )
        .map_err(fail)?;
    for rows in ranges {
        writer
            .write_slab(&phantom.labels(rows).into_dyn().into_nd())
            .map_err(fail)?;
    }
    Ok(())
}
