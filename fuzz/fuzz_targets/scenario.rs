//! Scenario TOML as `photonqa validate` checks it before reading any data: the parser and its
//! validation (`Scenario::parse`, which also parses a raw input's `shape` and `dtype`), the
//! sweep expansion, the declared commands, and every working point's chain built on a small
//! input of each kind of dtype (`runner::build_chains`).
//!
//! Seeds: the scenarios in `scenarios/`.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use ndarray::{ArrayD, IxDyn};
use photonqa::data::{IntoNdArray, MemorySource};
use photonqa::runner::build_chains;
use photonqa::scenario::Scenario;

/// Stand-ins for the input, which validation opens only for its shape and dtype: an integer
/// and a float volume (a reconstruction reads them as angles x rows x detector).
static INPUTS: LazyLock<[MemorySource; 2]> = LazyLock::new(|| {
    let shape = IxDyn(&[6, 4, 8]);
    let counts = ArrayD::from_shape_fn(shape.clone(), |ix| (ix[0] * 32 + ix[1] * 8 + ix[2]) as u16);
    let values = counts.mapv(|v| f32::from(v) / 7.0);
    [
        MemorySource::new(counts.into_nd(), "uint16 input").expect("a valid input"),
        MemorySource::new(values.into_nd(), "float32 input").expect("a valid input"),
    ]
});

fuzz_target!(
    init: {
        LazyLock::force(&INPUTS);
        photonqa_fuzz::init(|| photonqa_fuzz::files("scenarios", ".toml"));
    },
    |data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let path = photonqa_fuzz::scratch().join("scenario.toml");
        let Ok(scenario) = Scenario::parse(text, &path) else {
            return;
        };
        let _ = scenario.commands();
        for input in INPUTS.iter() {
            let _ = build_chains(&scenario, input);
        }
    }
);
