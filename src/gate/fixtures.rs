//! Result rows for the gate's tests: three measured points of a small sweep and a failed one.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::data::DType;
use crate::runner::provenance::Provenance;
use crate::runner::results::{PointResult, Rate, Status};

/// The metric columns of the rows: point metrics, a structured field, analysis fields (one an
/// integer count).
pub fn columns() -> Vec<String> {
    [
        "mse",
        "psnr",
        "ssim",
        "frc.resolution",
        "porosity.pore_count_change",
        "porosity.porosity_abs_change",
    ]
    .map(String::from)
    .to_vec()
}

fn provenance() -> Provenance {
    Provenance {
        photonqa_version: env!("CARGO_PKG_VERSION").into(),
        codecs: BTreeMap::new(),
        scenario: "demo".into(),
        scenario_hash: "hash0".into(),
        input: "v.h5::/volume".into(),
        input_hash: "input0".into(),
        input_shape: vec![16, 16, 16],
        input_dtype: DType::Uint8,
        chunk_slices: 16,
        side_files: BTreeMap::new(),
    }
}

fn params(bits: i64, level: i64) -> Map<String, Value> {
    let mut params = Map::new();
    params.insert("quantize.bits".into(), json!(bits));
    params.insert("deflate.level".into(), json!(level));
    params
}

/// A measured point; values are exactly representable so that tests can hit boundaries.
pub fn row(id: &str, index: usize, bits: i64, psnr: f64) -> PointResult {
    let Value::Object(distortion) = json!({
        "mse": 0.0009765625,
        "psnr": psnr,
        "ssim": 0.875,
        "frc": { "resolution": 0.25, "curve": [1.0, 0.5] },
    }) else {
        unreachable!()
    };
    let Value::Object(science) = json!({
        "porosity": { "pore_count_change": -2, "porosity_abs_change": 0.0 },
    }) else {
        unreachable!()
    };
    PointResult {
        rate: Some(Rate {
            original_bytes: 4096,
            compressed_bytes: 512,
            ratio: 8.0,
            bits_per_value: 1.0,
            encode_mb_s: 120.5,
            decode_mb_s: 340.25,
            side_bytes: None,
            amortize_over: None,
            ratio_payload: None,
        }),
        nonfinite_decoded: Some(0),
        distortion,
        science,
        ..PointResult::new(id.into(), index, params(bits, 6), provenance())
    }
}

/// A point that failed with `error`.
pub fn failed_row(id: &str, index: usize, error: &str) -> PointResult {
    PointResult {
        status: Status::Error,
        error: Some(error.into()),
        ..PointResult::new(id.into(), index, params(2, 9), provenance())
    }
}

/// Three measured points: bits 4, 6, 8.
pub fn rows() -> Vec<PointResult> {
    vec![
        row("wp-a", 0, 4, 30.5),
        row("wp-b", 1, 6, 41.25),
        row("wp-c", 2, 8, 52.0),
    ]
}
