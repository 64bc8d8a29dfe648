//! Input files as a run opens and reads them: a `.npy` file (its header parsed by
//! `RawSource::open_npy`, its size checked against the header's shape) or a raw file whose
//! `shape` and `dtype` come from a scenario's `[input]` table (parsed by `Scenario::parse`,
//! the size checked by `RawSource::open_raw`); then the first and the last row are read.
//!
//! Input: one byte choosing the kind (even: `.npy`, odd: raw), then for `.npy` the file's
//! bytes; for raw, the TOML value of `shape`, a newline, that of `dtype`, a newline, and the
//! file's bytes.
//!
//! Seeds: `.npy` files of every dtype written by photonqa's `write_npy`, 2-D and 3-D, holding
//! a block of the reference volume, and the same blocks as raw files.

#![no_main]

use libfuzzer_sys::fuzz_target;
use photonqa::data::npy::write_npy;
use photonqa::data::{DType, SourceSpec, VolumeSource};
use photonqa::scenario::Scenario;
use photonqa_fuzz::{Seed, reference_block, scratch};

/// Shapes of the seeds' blocks.
const SHAPES: [&[usize]; 2] = [&[3, 4, 5], &[6, 7]];

fn seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for dtype in DType::ALL {
        for shape in SHAPES {
            let block = reference_block(shape, dtype);
            let path = scratch().join("seed.npy");
            write_npy(&path, &block).expect("a written .npy file");
            let mut npy = vec![0];
            npy.extend(std::fs::read(&path).expect("the written .npy file"));
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            let name = format!("{}-{}", dtype.name(), dims.join("x"));
            seeds.push((format!("npy-{name}"), npy));
            let mut raw = format!("[{}]\n\"{}\"\n", dims.join(", "), dtype.name()).into_bytes();
            raw.extend(block.to_le_bytes());
            seeds.push((format!("raw-{name}"), raw));
        }
    }
    seeds
}

/// Reads the first and the last row of `source`, as a run's chunks do.
fn read(source: &dyn VolumeSource) {
    let rows = source.shape()[0];
    let _ = source.read_slab(0..1);
    let _ = source.read_slab(rows - 1..rows);
}

fuzz_target!(
    init: photonqa_fuzz::init(seeds),
    |data: &[u8]| {
        let Some((&kind, rest)) = data.split_first() else {
            return;
        };
        if kind % 2 == 0 {
            let path = scratch().join("input.npy");
            std::fs::write(&path, rest).expect("a scratch file");
            if let Ok(source) = SourceSpec::Npy(path).open() {
                read(source.as_ref());
            }
            return;
        }
        let mut lines = rest.splitn(3, |&b| b == b'\n');
        let (Some(shape), Some(dtype), Some(bytes)) = (lines.next(), lines.next(), lines.next())
        else {
            return;
        };
        let (Ok(shape), Ok(dtype)) = (std::str::from_utf8(shape), std::str::from_utf8(dtype))
        else {
            return;
        };
        std::fs::write(scratch().join("input.raw"), bytes).expect("a scratch file");
        let text = format!(
            "[scenario]\nname = \"raw\"\n[input]\nsource = \"input.raw\"\nshape = {shape}\ndtype = {dtype}\n[[pipeline]]\nstage = \"zstd\"\n"
        );
        let Ok(scenario) = Scenario::parse(&text, &scratch().join("raw.toml")) else {
            return;
        };
        if let Ok(source) = scenario.source.open() {
            read(source.as_ref());
        }
    }
);
