//! Every stage through every option, through the library: lossless chains round-trip bit for
//! bit for every dtype, lossy stages stay within their documented error bounds, and corrupt
//! streams are errors (never panics, never huge allocations).

use std::time::{Duration, Instant};

use ndarray::{ArrayD, Dimension, IxDyn};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use photonqa::data::{DType, Element, FromNdArray, IntoNdArray, NdArray};
use photonqa::metrics::comparison::BoundSums;
use photonqa::pipeline::chain::{ArrayStage, StatsProvider, encode_through};
use photonqa::pipeline::{
    ArrayToArray, ArrayToBytes, BytesToBytes, Chain, InputStats, ParamValue, RoundTrip, Stage,
    StageConfig, StageInput, StageKind, registry,
};
use photonqa::stats::histogram::{Binning, Histogram};
use photonqa::with_dtype;

mod common;
use common::allocation::{Tracking, largest_allocation};

/// The measurement of every bound the stages of `trip`'s chain promise, as a run measures it.
fn bounds_of(trip: &RoundTrip) -> Vec<BoundSums> {
    trip.checks
        .iter()
        .map(|c| BoundSums::of_check(c).unwrap())
        .collect()
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

// ---------------------------------------------------------------------------------------------
// Property tests

/// The seed of every property test here, fixed so that a failure reproduces; another is chosen
/// with `PROPTEST_RNG_SEED=N`.
const PROPTEST_SEED: u64 = 0x5EED_F11C;

/// `cases` cases from [`PROPTEST_SEED`] (or `PROPTEST_RNG_SEED`), without failure files. The
/// seed is printed, so the output of a failing test names it.
fn proptest_config(cases: u32) -> ProptestConfig {
    let default = ProptestConfig::default();
    let seed = match default.rng_seed {
        RngSeed::Fixed(seed) => seed,
        RngSeed::Random => PROPTEST_SEED,
    };
    println!("proptest seed {seed}: rerun with PROPTEST_RNG_SEED={seed}");
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        ..default
    }
}

// ---------------------------------------------------------------------------------------------
// Building stages and chains

/// The configuration of `id` with every declared default, `overrides` replacing some.
fn config(id: &str, overrides: &[(&'static str, ParamValue)]) -> StageConfig {
    let def = registry::find(id).unwrap_or_else(|| panic!("stage {id} is not registered"));
    for (name, _) in overrides {
        assert!(
            def.params.iter().any(|p| p.name == *name),
            "stage {id} has no parameter {name}"
        );
    }
    let mut params = Vec::new();
    for p in def.params {
        match overrides.iter().find(|(n, _)| *n == p.name) {
            Some((_, v)) => {
                params.push((p.name, p.check(v.clone()).expect("valid test parameter")))
            }
            None => {
                if let Some(v) = p.default_value() {
                    params.push((p.name, v));
                }
            }
        }
    }
    StageConfig {
        stage: def.id,
        params,
    }
}

fn create(id: &str, overrides: &[(&'static str, ParamValue)], dtype: DType) -> Stage {
    let def = registry::find(id).unwrap();
    (def.create)(&config(id, overrides), StageInput { dtype })
        .unwrap_or_else(|e| panic!("create {id}: {e}"))
}

fn bytes_codec(
    id: &str,
    overrides: &[(&'static str, ParamValue)],
    dtype: DType,
) -> Box<dyn BytesToBytes> {
    match create(id, overrides, dtype) {
        Stage::BytesToBytes(c) => c,
        _ => panic!("{id} is not bytes->bytes"),
    }
}

fn array_to_bytes_codec(id: &str, dtype: DType) -> Box<dyn ArrayToBytes> {
    match create(id, &[], dtype) {
        Stage::ArrayToBytes(c) => c,
        _ => panic!("{id} is not array->bytes"),
    }
}

fn array_codec(
    id: &str,
    overrides: &[(&'static str, ParamValue)],
    dtype: DType,
) -> (Box<dyn ArrayToArray>, DType) {
    match create(id, overrides, dtype) {
        Stage::ArrayToArray(c, out) => (c, out),
        _ => panic!("{id} is not array->array"),
    }
}

/// Whole-array statistics for `Chain::fit`, computed directly on the test array.
struct WholeArray<'a>(&'a NdArray);

struct Stats(NdArray);

impl StatsProvider for WholeArray<'_> {
    fn stats_for<'a>(
        &'a mut self,
        prefix: &'a [ArrayStage],
        _key: &str,
    ) -> Box<dyn InputStats + 'a> {
        Box::new(Stats(
            encode_through(prefix, self.0.clone()).expect("prefix encodes"),
        ))
    }
}

impl InputStats for Stats {
    fn range(&mut self) -> Result<(f64, f64), String> {
        Ok(self
            .0
            .to_f64()
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            }))
    }
    fn histogram(&mut self) -> Result<Histogram, String> {
        let (lo, hi) = self.range()?;
        let binning = Binning::new(self.0.dtype(), lo, hi)?;
        let mut counts = binning.zeros();
        binning.accumulate(&self.0, &mut counts);
        Ok(binning.finish(counts))
    }
}

/// Builds and fits a chain on `input`.
fn fitted_chain(configs: &[StageConfig], input: &NdArray) -> Chain {
    let mut chain =
        Chain::build(configs, input.dtype()).unwrap_or_else(|e| panic!("build {configs:?}: {e}"));
    chain.fit(&mut WholeArray(input)).expect("fit");
    chain
}

// ---------------------------------------------------------------------------------------------
// Test arrays

const F32_SPECIAL: [u32; 10] = [
    0x8000_0000, // -0.0
    0x0000_0000, // +0.0
    0x0000_0001, // smallest subnormal
    0x007F_FFFF, // largest subnormal
    0x8012_3456, // negative subnormal
    0x0080_0000, // smallest normal
    0x7FC0_1234, // quiet NaN with payload
    0x7F80_0001, // signalling NaN
    0x7F80_0000, // +inf
    0xFF80_0000, // -inf
];

const F64_SPECIAL: [u64; 10] = [
    0x8000_0000_0000_0000,
    0,
    1,
    0x000F_FFFF_FFFF_FFFF,
    0x8001_2345_6789_ABCD,
    0x0010_0000_0000_0000,
    0x7FF8_0000_0000_1234,
    0x7FF0_0000_0000_0001,
    0x7FF0_0000_0000_0000,
    0xFFF0_0000_0000_0000,
];

/// An array of `dtype` and `shape` from random bit patterns. `mode` 0: any bits; 1: a handful
/// of distinct values; 2: a smooth ramp (compressible). Floats also get -0.0, subnormals,
/// NaNs and infinities sprinkled in (every special value when there is room).
fn random_array(dtype: DType, shape: &[usize], seed: u64, mode: u8) -> NdArray {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let size = dtype.size();
    let palette: Vec<u64> = (0..rng.random_range(1..=5)).map(|_| rng.random()).collect();
    let mut words: Vec<u64> = (0..n)
        .map(|i| match mode {
            0 => rng.random(),
            1 => palette[rng.random_range(0..palette.len())],
            _ => match dtype {
                DType::Float32 => ((i as f32) * 0.25 - 3.0).to_bits() as u64,
                DType::Float64 => ((i as f64) * 0.125 - 7.0).to_bits(),
                _ => (i as u64 / 3).wrapping_mul(7),
            },
        })
        .collect();
    let specials: Vec<u64> = match dtype {
        DType::Float32 => F32_SPECIAL.iter().map(|&b| b as u64).collect(),
        DType::Float64 => F64_SPECIAL.to_vec(),
        _ => Vec::new(),
    };
    if !specials.is_empty() {
        for (k, &s) in specials.iter().enumerate() {
            if k < n && rng.random_bool(0.7) {
                let at = rng.random_range(0..n);
                words[at] = s;
            }
        }
    }
    let bytes: Vec<u8> = words
        .iter()
        .flat_map(|w| w.to_le_bytes()[..size].to_vec())
        .collect();
    NdArray::from_le_bytes(dtype, shape, &bytes).expect("sized")
}

/// An array holding every special float value of `dtype` (and a few ordinary ones).
fn specials_array(dtype: DType) -> NdArray {
    let words: Vec<u64> = match dtype {
        DType::Float32 => F32_SPECIAL
            .iter()
            .map(|&b| b as u64)
            .chain([1.5f32.to_bits() as u64, (-2.25f32).to_bits() as u64])
            .collect(),
        _ => F64_SPECIAL
            .iter()
            .copied()
            .chain([1.5f64.to_bits(), (-2.25f64).to_bits()])
            .collect(),
    };
    let bytes: Vec<u8> = words
        .iter()
        .flat_map(|w| w.to_le_bytes()[..dtype.size()].to_vec())
        .collect();
    NdArray::from_le_bytes(dtype, &[3, 4], &bytes).unwrap()
}

fn shape_strategy() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        1 => Just(vec![1, 1]),
        1 => Just(vec![1, 1, 1]),
        6 => prop::collection::vec(1usize..=13, 2..=3),
    ]
}

fn describe(a: &NdArray) -> String {
    format!("{} {:?}", a.dtype(), a.shape())
}

// ---------------------------------------------------------------------------------------------
// Lossless chains

/// The lossless chains under test (stage ids in order; zstd and deflate levels are drawn per
/// case).
const LOSSLESS_CHAINS: &[&[&str]] = &[
    &[],
    &["bytes"],
    &["dictionary"],
    &["shuffle"],
    &["bitshuffle"],
    &["zstd"],
    &["deflate"],
    &["lz4"],
    &["dictionary", "shuffle", "zstd"],
    &["bitshuffle", "lz4"],
    &["bytes", "shuffle", "deflate"],
    &["dictionary", "bitshuffle", "deflate", "lz4"],
    &["shuffle", "bitshuffle", "zstd", "lz4", "deflate"],
    &["dictionary", "lz4", "zstd"],
    &["pcodec"],
    &["pcodec", "zstd"],
    &["pcodec", "bitshuffle", "lz4"],
    &["blosc"],
    &["dictionary", "blosc", "zstd"],
];

fn lossless_configs(ids: &[&str], zstd_level: i64, deflate_level: i64) -> Vec<StageConfig> {
    ids.iter()
        .map(|&id| match id {
            "zstd" => config(id, &[("level", ParamValue::Int(zstd_level))]),
            "deflate" => config(id, &[("level", ParamValue::Int(deflate_level))]),
            _ => config(id, &[]),
        })
        .collect()
}

/// Round-trips `array` through the chain and checks bit equality; returns the encoded size.
fn check_lossless(
    ids: &[&str],
    zstd_level: i64,
    deflate_level: i64,
    array: &NdArray,
) -> Result<usize, String> {
    let configs = lossless_configs(ids, zstd_level, deflate_level);
    let chain = Chain::build(&configs, array.dtype()).map_err(|e| format!("build {ids:?}: {e}"))?;
    let trip = chain.round_trip(array).map_err(|e| {
        format!(
            "{ids:?} (zstd {zstd_level}, deflate {deflate_level}) on {}: {e}",
            describe(array)
        )
    })?;
    if trip.decoded.dtype() != array.dtype() || trip.decoded.shape() != array.shape() {
        return Err(format!(
            "{ids:?}: decoded {} from {}",
            describe(&trip.decoded),
            describe(array)
        ));
    }
    if trip.decoded.to_le_bytes() != array.to_le_bytes() {
        return Err(format!(
            "{ids:?} (zstd {zstd_level}, deflate {deflate_level}) is not bit-exact on {}\nexpected: {:02x?}\nactual:   {:02x?}",
            describe(array),
            array.to_le_bytes(),
            trip.decoded.to_le_bytes()
        ));
    }
    Ok(trip.encoded_bytes)
}

/// The lossy array->bytes stages, tested in "Error-bounded codecs" below.
const LOSSY_ARRAY_TO_BYTES: &[&str] = &["sz3", "zfp", "jpeg2000", "scaleoffset"];

#[test]
fn every_lossless_stage_is_covered() {
    let covered: Vec<&str> = LOSSLESS_CHAINS
        .iter()
        .flat_map(|c| c.iter().copied())
        .collect();
    // Lossy array->bytes stages, an external program and N-bit (lossless on integers that fit
    // its bits only) are checked by their own tests.
    for def in registry::STAGES
        .iter()
        .filter(|d| !["command", "nbit"].contains(&d.id))
    {
        match def.kind {
            StageKind::ArrayToBytes if LOSSY_ARRAY_TO_BYTES.contains(&def.id) => assert!(
                !def.lossless,
                "stage {} is tested as lossy but marked lossless",
                def.id
            ),
            StageKind::ArrayToBytes | StageKind::BytesToBytes => {
                assert!(
                    covered.contains(&def.id),
                    "stage {} ({}) is in no lossless chain under test",
                    def.id,
                    def.kind.name()
                );
                assert!(
                    def.lossless,
                    "stage {} is {} but not marked lossless",
                    def.id,
                    def.kind.name()
                );
            }
            StageKind::ArrayToArray => assert!(
                [
                    "threshold",
                    "quantize",
                    "bitround",
                    "poisson",
                    "denoise",
                    "bin",
                    "veto"
                ]
                .contains(&def.id),
                "array->array stage {} has no lossy test here",
                def.id
            ),
        }
        for alias in def.aliases {
            assert_eq!(
                registry::find(alias).map(|d| d.id),
                Some(def.id),
                "alias {alias}"
            );
        }
    }
}

proptest! {
    #![proptest_config(proptest_config(40))]

    #[test]
    fn lossless_chains_round_trip_bit_exactly(
        dtype in 0..DType::ALL.len(),
        shape in shape_strategy(),
        seed in any::<u64>(),
        mode in 0u8..3,
        zstd_level in -7i64..=22,
        deflate_level in 0i64..=9,
    ) {
        let array = random_array(DType::ALL[dtype], &shape, seed, mode);
        for ids in LOSSLESS_CHAINS {
            if let Err(e) = check_lossless(ids, zstd_level, deflate_level, &array) {
                prop_assert!(false, "{}", e);
            }
        }
    }
}

#[test]
fn every_dtype_through_every_chain_and_every_level() {
    for dtype in DType::ALL {
        for mode in 0..3 {
            let array = random_array(dtype, &[5, 7, 3], 17 + mode as u64, mode);
            for ids in LOSSLESS_CHAINS {
                check_lossless(ids, 3, 6, &array).unwrap();
            }
        }
    }
    let array = random_array(DType::Float32, &[6, 9, 7], 5, 2);
    for level in -7..=22 {
        check_lossless(&["zstd"], level, 6, &array).unwrap();
        check_lossless(&["dictionary", "shuffle", "zstd"], level, 6, &array).unwrap();
    }
    for level in 0..=9 {
        check_lossless(&["deflate"], 3, level, &array).unwrap();
        check_lossless(&["bitshuffle", "deflate"], 3, level, &array).unwrap();
    }
}

#[test]
fn negative_zero_subnormals_nan_and_infinity_survive_every_chain() {
    for dtype in [DType::Float32, DType::Float64] {
        let array = specials_array(dtype);
        for ids in LOSSLESS_CHAINS {
            check_lossless(ids, 3, 6, &array).unwrap();
        }
    }
}

#[test]
fn large_arrays_cross_bitshuffle_blocks_and_widen_dictionary_indices() {
    // 3 x 50 x 31 float64 = 37200 bytes: four full 8 KiB bitshuffle blocks and a partial one.
    let a = random_array(DType::Float64, &[3, 50, 31], 99, 0);
    for ids in [
        &["bitshuffle"][..],
        &["bitshuffle", "zstd"],
        &["shuffle", "bitshuffle", "lz4"],
    ] {
        check_lossless(ids, 1, 1, &a).unwrap();
    }
    // 301 distinct values: 2-byte indices; 70000 distinct values: 4-byte indices.
    let few = ArrayD::from_shape_fn(IxDyn(&[7, 43]), |ix| (ix[0] * 43 + ix[1]) as u16).into_nd();
    let bytes = check_lossless(&["dictionary"], 3, 6, &few).unwrap();
    assert_eq!(bytes, 1 + 4 + 301 * 2 + 301 * 2);
    let many =
        ArrayD::from_shape_fn(IxDyn(&[70, 1000]), |ix| (ix[0] * 1000 + ix[1]) as u32 * 3).into_nd();
    let bytes = check_lossless(&["dictionary"], 3, 6, &many).unwrap();
    assert_eq!(bytes, 1 + 4 + 70000 * 4 + 70000 * 4);
    check_lossless(&["dictionary", "lz4"], 3, 6, &many).unwrap();
}

#[test]
fn compressors_compress_compressible_data() {
    let ramp =
        ArrayD::from_shape_fn(IxDyn(&[8, 64, 64]), |ix| (ix[1] + ix[2]) as f32 * 0.5).into_nd();
    let raw = ramp.nbytes();
    for ids in [
        &["zstd"][..],
        &["deflate"],
        &["lz4"],
        &["shuffle", "zstd"],
        &["bitshuffle", "lz4"],
        &["dictionary", "deflate"],
    ] {
        let bytes = check_lossless(ids, 3, 6, &ramp).unwrap();
        assert!(
            bytes * 4 < raw,
            "{ids:?}: {bytes} bytes of {raw} for a smooth ramp"
        );
    }
    assert_eq!(check_lossless(&[], 3, 6, &ramp).unwrap(), raw);
    assert_eq!(check_lossless(&["shuffle"], 3, 6, &ramp).unwrap(), raw);
}

// ---------------------------------------------------------------------------------------------
// quantize

/// Values of `dtype` uniformly in [lo, hi] (rounded for integer dtypes).
fn uniform_array(dtype: DType, shape: &[usize], lo: f64, hi: f64, seed: u64) -> NdArray {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    with_dtype!(dtype, T => ArrayD::from_shape_simple_fn(IxDyn(shape), || T::from_f64(rng.random_range(lo..=hi))).into_nd())
}

/// Tolerance on top of the quantisation bound (hi - lo) / (2 L): 4 ULP of float64 at the
/// magnitude of the range for the arithmetic of encode and decode, plus 1 ULP of float32 at
/// that magnitude when the decoded value is rounded to float32, or 0.5 when it is rounded to an
/// integer dtype.
fn quantize_slack(dtype: DType, lo: f64, hi: f64) -> f64 {
    let m = lo.abs().max(hi.abs());
    let arithmetic = 4.0 * f64::EPSILON * m;
    arithmetic
        + match dtype {
            DType::Float64 => 0.0,
            DType::Float32 => f32::EPSILON as f64 * m,
            _ => 0.5,
        }
}

fn check_quantized(
    original: &NdArray,
    decoded: &NdArray,
    lo: f64,
    hi: f64,
    bits: u32,
) -> Result<(), String> {
    let levels = ((1u64 << bits) - 1) as f64;
    let bound = (hi - lo) / (2.0 * levels);
    let slack = quantize_slack(original.dtype(), lo, hi);
    if decoded.dtype() != original.dtype() || decoded.shape() != original.shape() {
        return Err(format!(
            "decoded {} from {}",
            describe(decoded),
            describe(original)
        ));
    }
    for (x, y) in original.to_f64().iter().zip(decoded.to_f64().iter()) {
        let (expected, limit, what) = if *x < lo {
            (lo, slack, "clipped to lo")
        } else if *x > hi {
            (hi, slack, "clipped to hi")
        } else {
            (*x, bound + slack, "inside the range")
        };
        if (y - expected).abs() > limit {
            return Err(format!(
                "{} bits over [{lo}, {hi}] ({what}): {x} decoded to {y}; |error| {} > {limit} (bound {bound} + slack {slack})",
                bits,
                (y - expected).abs()
            ));
        }
    }
    Ok(())
}

fn quantize_config(qdtype: &str, bits: u32, range: Option<[f64; 2]>) -> StageConfig {
    let mut overrides = vec![
        ("dtype", ParamValue::Str(qdtype.into())),
        ("bits", ParamValue::Int(bits as i64)),
    ];
    if let Some(r) = range {
        overrides.push(("range", ParamValue::Interval(r)));
    }
    config("quantize", &overrides)
}

proptest! {
    #![proptest_config(proptest_config(96))]

    #[test]
    fn quantize_error_is_bounded_and_outside_values_clip(
        input in prop::sample::select(vec![DType::Float32, DType::Float64, DType::Int16]),
        wide in any::<bool>(),
        bits in 1u32..=16,
        centre in -1e4f64..1e4,
        half_width in 1e-2f64..1e4,
        given in any::<bool>(),
        shape in shape_strategy(),
        seed in any::<u64>(),
    ) {
        let (qdtype, bits) = if wide { ("uint16", bits) } else { ("uint8", bits.min(8)) };
        let (half_width, centre) = if input == DType::Int16 { (half_width.max(4.0), centre.clamp(-1e4, 1e4)) } else { (half_width, centre) };
        let (lo, hi) = (centre - half_width, centre + half_width);
        let array = uniform_array(input, &shape, lo - half_width * 0.25, hi + half_width * 0.25, seed);
        let (range, fitted) = if given {
            // Given range: a quarter of the span on each side lies outside and must clip.
            (Some([lo, hi]), None)
        } else {
            let v = array.to_f64();
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (None, Some([lo, hi]))
        };
        let chain = fitted_chain(&[quantize_config(qdtype, bits, range)], &array);
        let [qlo, qhi] = range.or(fitted).unwrap();
        if let Some([flo, fhi]) = fitted {
            let json = &chain.fitted()[0]["range"];
            prop_assert_eq!(json, &serde_json::json!([flo, fhi]), "fitted range");
        }
        let trip = chain.round_trip(&array).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if qhi > qlo {
            if let Err(e) = check_quantized(&array, &trip.decoded, qlo, qhi, bits) {
                prop_assert!(false, "{} -> {} {}: {}", describe(&array), qdtype, bits, e);
            }
        } else {
            // A constant input: every value decodes to itself.
            prop_assert_eq!(trip.decoded.to_le_bytes(), array.to_le_bytes());
        }
    }
}

#[test]
fn quantize_levels_and_storage() {
    // 0..=255 through uint8 with 8 bits over [0, 255] is exact; with 1 bit it is 0 or 255.
    let ramp = ArrayD::from_shape_fn(IxDyn(&[16, 16]), |ix| (ix[0] * 16 + ix[1]) as f64).into_nd();
    let (codec, out) = array_codec(
        "quantize",
        &[
            ("bits", ParamValue::Int(8)),
            ("range", ParamValue::Interval([0.0, 255.0])),
        ],
        DType::Float64,
    );
    assert_eq!(out, DType::Uint8);
    let q = codec.encode(ramp.clone()).unwrap();
    let expected: Vec<u8> = (0..=255).collect();
    assert_eq!(q.to_le_bytes(), expected);
    assert_eq!(codec.decode(q, ramp.shape()).unwrap(), ramp);
    let (codec, _) = array_codec(
        "quantize",
        &[
            ("bits", ParamValue::Int(1)),
            ("range", ParamValue::Interval([0.0, 255.0])),
        ],
        DType::Float64,
    );
    let q = codec.encode(ramp.clone()).unwrap();
    let levels: Vec<u8> = (0..=255).map(|v| u8::from(v >= 128)).collect();
    assert_eq!(
        q.to_le_bytes(),
        levels,
        "1 bit: levels 0 and 1, split at the midpoint"
    );
    // uint16 with 16 bits: 65536 levels.
    let (codec, out) = array_codec(
        "quantize",
        &[
            ("dtype", ParamValue::Str("uint16".into())),
            ("bits", ParamValue::Int(16)),
            ("range", ParamValue::Interval([-1.0, 1.0])),
        ],
        DType::Float32,
    );
    assert_eq!(out, DType::Uint16);
    let ends = ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![-1.0f32, 1.0, 5.0])
        .unwrap()
        .into_nd();
    assert_eq!(
        codec.encode(ends).unwrap().to_le_bytes(),
        [0u8, 0, 255, 255, 255, 255]
    );
    // The default `bits` is the full width of `dtype`.
    let (codec, _) = array_codec(
        "quantize",
        &[
            ("dtype", ParamValue::Str("uint16".into())),
            ("range", ParamValue::Interval([0.0, 65535.0])),
        ],
        DType::Float64,
    );
    let top = ArrayD::from_shape_vec(IxDyn(&[1, 2]), vec![65535.0f64, 65534.0])
        .unwrap()
        .into_nd();
    assert_eq!(
        codec.encode(top).unwrap().to_le_bytes(),
        [255u8, 255, 254, 255]
    );
}

// ---------------------------------------------------------------------------------------------
// poisson

#[test]
fn poisson_error_is_within_half_a_step_in_sigmas_and_negative_counts_are_errors() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // Zeros, small counts and counts up to 5e4, as photon-counting detectors record them.
    let values: Vec<f64> = (0..600)
        .map(|i| match i % 3 {
            0 => 0.0,
            1 => rng.random_range(0..20) as f64,
            _ => rng.random_range(0..50_000) as f64,
        })
        .collect();
    for dtype in [DType::Uint16, DType::Uint32, DType::Float32, DType::Float64] {
        let array = with_dtype!(dtype, T => ArrayD::from_shape_vec(
            IxDyn(&[6, 10, 10]),
            values.iter().map(|&v| T::from_f64(v)).collect(),
        )
        .unwrap()
        .into_nd());
        for step in [0.25, 0.5, 1.0, 4.0] {
            for decode in ["real", "integer"] {
                let overrides = [
                    ("step", ParamValue::Float(step)),
                    ("decode", ParamValue::Str(decode.into())),
                ];
                let trip = codec_trip("poisson", &overrides, &array);
                let rounding = if decode == "integer" || !dtype.is_float() {
                    0.5
                } else {
                    0.0
                };
                for (x, y) in array.to_f64().iter().zip(trip.decoded.to_f64().iter()) {
                    let bound = step / 2.0 * (x + 0.375).sqrt() + step * step / 16.0 + rounding;
                    // float32 stores the decoded count to 24 bits.
                    let slack = if dtype == DType::Float32 {
                        x.abs() * 1e-7
                    } else {
                        1e-9
                    };
                    assert!(
                        (y - x).abs() <= bound + slack,
                        "{dtype} step {step} {decode}: {x} -> {y} (bound {bound})"
                    );
                    // As the stage documents: 0 -> 0 unless the code above sqrt(3/2) rounds up.
                    let up = (1.5f64.sqrt() / step).round_ties_even() * step > 1.5f64.sqrt();
                    let integer = decode == "integer" || !dtype.is_float();
                    if *x == 0.0 && ((integer && step <= 1.0) || !up) {
                        assert_eq!(*y, 0.0, "{dtype} step {step}: zero not kept");
                    }
                }
            }
        }
    }
    let negative = NdArray::Float32(ArrayD::from_elem(IxDyn(&[2, 3]), -1.0f32));
    let chain = Chain::build(&[config("poisson", &[])], DType::Float32).unwrap();
    let Err(err) = chain.round_trip(&negative) else {
        panic!("negative counts went through the poisson stage");
    };
    let err = err.to_string();
    assert!(err.contains("poisson") && err.contains("-1"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// denoise (its values against SciPy and scikit-image: tests/denoise_crosscheck.rs)

#[test]
fn denoise_keeps_dtype_shape_range_and_constants_and_filters_planes_alone() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let values: Vec<f64> = (0..4 * 9 * 7)
        .map(|_| rng.random_range(0..200) as f64)
        .collect();
    let filters: [&[(&'static str, ParamValue)]; 3] = [
        &[
            ("filter", ParamValue::Str("gaussian".into())),
            ("sigma", ParamValue::Float(1.3)),
        ],
        &[
            ("filter", ParamValue::Str("median".into())),
            ("size", ParamValue::Int(3)),
        ],
        &[
            ("filter", ParamValue::Str("tv".into())),
            ("weight", ParamValue::Float(20.0)),
        ],
    ];
    for dtype in [DType::Uint8, DType::Int16, DType::Float32, DType::Float64] {
        let array = with_dtype!(dtype, T => ArrayD::from_shape_vec(
            IxDyn(&[4, 9, 7]),
            values.iter().map(|&v| T::from_f64(v)).collect(),
        )
        .unwrap()
        .into_nd());
        let constant = with_dtype!(dtype, T => ArrayD::from_elem(IxDyn(&[2, 5, 6]), T::from_f64(42.0)).into_nd());
        for overrides in filters {
            let trip = codec_trip("denoise", overrides, &array);
            let decoded: &NdArray = &trip.decoded;
            assert_eq!((decoded.dtype(), decoded.shape()), (dtype, array.shape()));
            assert_ne!(decoded, &array, "{dtype} {overrides:?} changed nothing");
            for v in decoded.to_f64().iter() {
                assert!(
                    (-1e-9..=199.0 + 1e-9).contains(v),
                    "{dtype} {overrides:?}: {v}"
                );
            }
            // Each plane alone gives the same values: chunks along axis 0 do not matter.
            for plane in 0..4 {
                let alone = codec_trip("denoise", overrides, &array.slice_rows(plane..plane + 1));
                assert_eq!(*alone.decoded, decoded.slice_rows(plane..plane + 1));
            }
            let flat = codec_trip("denoise", overrides, &constant).decoded;
            let worst = max_abs_error(&constant, &flat);
            assert!(
                worst <= 42.0 * 1e-15,
                "{dtype} {overrides:?}: constant moved by {worst}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// bin (its values against NumPy: tests/bin_crosscheck.rs)

fn bin_params(factors: [i64; 3], reduce: &str) -> Vec<(&'static str, ParamValue)> {
    vec![
        ("factor_z", ParamValue::Int(factors[0])),
        ("factor_y", ParamValue::Int(factors[1])),
        ("factor_x", ParamValue::Int(factors[2])),
        ("reduce", ParamValue::Str(reduce.into())),
    ]
}

/// An array of `shape` whose values are constant over each block of `factors` (the last
/// axes), with short trailing blocks: what binning keeps exactly.
fn block_constant(shape: &[usize], factors: [usize; 3], dtype: DType) -> NdArray {
    let rank = shape.len();
    let values: Vec<f64> = ndarray::indices(IxDyn(shape))
        .into_iter()
        .map(|index| {
            let index = index.slice().to_vec();
            let mut code = 0;
            for (axis, &i) in index.iter().enumerate() {
                let from_end = rank - axis;
                let block = if from_end <= 3 {
                    i / factors[3 - from_end]
                } else {
                    i
                };
                code = code * 7 + block;
            }
            (code * 13 % 101) as f64
        })
        .collect();
    with_dtype!(dtype, T => ArrayD::from_shape_vec(IxDyn(shape), values.iter().map(|&v| T::from_f64(v)).collect()).unwrap().into_nd())
}

#[test]
fn bin_decodes_to_the_input_shape_and_keeps_block_constant_arrays() {
    for dtype in [
        DType::Uint8,
        DType::Uint16,
        DType::Int16,
        DType::Float32,
        DType::Float64,
    ] {
        for (shape, factors) in [
            (vec![7usize, 9, 11], [3usize, 2, 4]),
            (vec![4, 8, 8], [1, 2, 2]),
            (vec![13, 10], [1, 3, 4]),
            (vec![2, 5, 6, 7], [2, 2, 3]),
        ] {
            let array = block_constant(&shape, factors, dtype);
            for reduce in ["mean", "sum"] {
                let params = bin_params(factors.map(|f| f as i64), reduce);
                let trip = codec_trip("bin", &params, &array);
                assert_eq!(
                    *trip.decoded, array,
                    "{dtype} {shape:?} {factors:?} {reduce}: a block-constant array changed"
                );
                let (codec, encoded) = array_codec("bin", &params, dtype);
                let binned = codec.encode(array.clone()).unwrap();
                let expected: Vec<usize> = shape
                    .iter()
                    .enumerate()
                    .map(|(axis, &n)| match shape.len() - axis {
                        from_end @ 1..=3 => n.div_ceil(factors[3 - from_end]),
                        _ => n,
                    })
                    .collect();
                assert_eq!((binned.dtype(), binned.shape()), (encoded, &expected[..]));
                // The array->bytes stage packs the binned chunk: the rate is of its values.
                assert_eq!(
                    trip.encoded_bytes,
                    expected.iter().product::<usize>() * encoded.size()
                );
                if reduce == "sum" && dtype == DType::Uint16 {
                    assert_eq!(encoded, DType::Uint32, "sums of uint16 widen");
                }
            }
        }
    }
}

#[test]
fn bin_linear_decode_reproduces_a_ramp_inside_and_the_edge_means_beyond() {
    // x = 0..12 along the last axis, binned by 2: means 0.5, 2.5, ... at the blocks' centres.
    let values: Vec<f64> = (0..3 * 12).map(|i| (i % 12) as f64).collect();
    let ramp = ArrayD::from_shape_vec(IxDyn(&[3, 12]), values)
        .unwrap()
        .into_nd();
    let mut params = bin_params([1, 1, 2], "mean");
    params.push(("decode", ParamValue::Str("linear".into())));
    let trip = codec_trip("bin", &params, &ramp);
    let decoded = trip.decoded.to_f64();
    assert_eq!(decoded.shape(), [3, 12]);
    for row in 0..3 {
        // Beyond the first and last centres: the edge means.
        assert_eq!(decoded[[row, 0]], 0.5);
        assert_eq!(decoded[[row, 11]], 10.5);
        for x in 1..11 {
            assert!(
                (decoded[[row, x]] - x as f64).abs() < 1e-12,
                "{x}: {}",
                decoded[[row, x]]
            );
        }
    }
}

#[test]
fn bin_means_and_sums_blocks_with_short_trailing_ones() {
    // 1 x 5 binned by 2 along x: blocks [1, 2], [3, 4], [5].
    let x = ArrayD::from_shape_vec(IxDyn(&[1, 5]), vec![1u16, 2, 3, 4, 5])
        .unwrap()
        .into_nd();
    let (mean, _) = array_codec("bin", &bin_params([1, 1, 2], "mean"), DType::Uint16);
    // Means 1.5, 3.5 and 5 rounded ties to even.
    let binned = mean.encode(x.clone()).unwrap();
    assert_eq!(
        binned.to_f64().iter().copied().collect::<Vec<_>>(),
        [2.0, 4.0, 5.0]
    );
    let decoded = mean.decode(binned, &[1, 5]).unwrap();
    assert_eq!(
        decoded.to_f64().iter().copied().collect::<Vec<_>>(),
        [2.0, 2.0, 4.0, 4.0, 5.0]
    );
    let (sum, out) = array_codec("bin", &bin_params([1, 1, 2], "sum"), DType::Uint16);
    assert_eq!(out, DType::Uint32);
    let binned = sum.encode(x).unwrap();
    assert_eq!(binned.dtype(), DType::Uint32);
    assert_eq!(
        binned.to_f64().iter().copied().collect::<Vec<_>>(),
        [3.0, 7.0, 5.0]
    );
    // Divided back by each block's count: 1.5 -> 2, 3.5 -> 4, 5 / 1.
    let decoded = sum.decode(binned, &[1, 5]).unwrap();
    assert_eq!(decoded.dtype(), DType::Uint16);
    assert_eq!(
        decoded.to_f64().iter().copied().collect::<Vec<_>>(),
        [2.0, 2.0, 4.0, 4.0, 5.0]
    );
}

/// The decoded chunks of `array` cut into chunks of `rows` rows, each round-tripped alone
/// through `bin` with `params`, put back together.
fn binned_by_chunks(
    array: &NdArray,
    rows: usize,
    params: &[(&'static str, ParamValue)],
) -> NdArray {
    let chain = Chain::build(&[config("bin", params)], array.dtype()).unwrap();
    let n = array.shape()[0];
    let parts: Vec<NdArray> = (0..n)
        .step_by(rows)
        .map(|start| {
            let chunk = array.slice_rows(start..(start + rows).min(n));
            (*chain.round_trip(&chunk).unwrap().decoded).clone()
        })
        .collect();
    NdArray::concatenate(&parts).unwrap()
}

/// A float32 array of `shape` uniform in `[0, top)`, from a ChaCha8 generator seeded `seed`.
fn uniform_f32(shape: &[usize], top: f32, seed: u64) -> NdArray {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let values: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| rng.random_range(0.0..top))
        .collect();
    ArrayD::from_shape_vec(IxDyn(shape), values)
        .unwrap()
        .into_nd()
}

#[test]
fn bin_along_axis_0_does_not_depend_on_chunks_whose_rows_its_factor_divides() {
    let array = uniform_f32(&[40, 6, 5], 100.0, 5);
    let params = bin_params([3, 2, 2], "mean");
    let whole = binned_by_chunks(&array, 40, &params);
    // 40 planes by 3: 13 blocks of 3 and a last one of 1, whether the chunks have 6, 12 or
    // 21 planes (each a multiple of 3; the last chunk ends in the short block).
    for rows in [6, 12, 21] {
        assert_eq!(
            binned_by_chunks(&array, rows, &params),
            whole,
            "chunks of {rows}"
        );
    }
    // Chunks of 8 planes (not a multiple of 3): each chunk ends in a short block of 2.
    let by_8 = binned_by_chunks(&array, 8, &params);
    assert_ne!(by_8, whole);
    for start in (0..40).step_by(8) {
        let chunk = array.slice_rows(start..start + 8);
        assert_eq!(
            by_8.slice_rows(start..start + 8),
            binned_by_chunks(&chunk, 8, &params)
        );
    }
    // The planes 6 and 7 of a chunk of 8 are one short block: their mean.
    let decoded = by_8.slice_rows(6..8).to_f64();
    let plane = |z: usize| array.slice_rows(z..z + 1).to_f64();
    let (p6, p7) = (plane(6), plane(7));
    let expected = (p6[[0, 0, 0]]
        + p6[[0, 0, 1]]
        + p6[[0, 1, 0]]
        + p6[[0, 1, 1]]
        + p7[[0, 0, 0]]
        + p7[[0, 0, 1]]
        + p7[[0, 1, 0]]
        + p7[[0, 1, 1]])
        / 8.0;
    assert_eq!(decoded[[0, 0, 0]], expected as f32 as f64);
    assert_eq!(decoded[[1, 1, 1]], expected as f32 as f64);
}

#[test]
fn bin_then_sz3_promises_its_bound_on_the_binned_chunk() {
    let array = uniform_f32(&[6, 16, 15], 10.0, 9);
    let configs = [
        config("bin", &bin_params([1, 2, 2], "mean")),
        config("sz3", &[("abs_error", ParamValue::Float(1e-2))]),
    ];
    let chain = Chain::build(&configs, DType::Float32).unwrap();
    let trip = chain.round_trip(&array).unwrap();
    assert_eq!(trip.decoded.shape(), array.shape());
    let [check] = &trip.checks[..] else {
        panic!("one promise: sz3's");
    };
    assert_eq!(check.input.shape(), [6, 8, 8]);
    assert_eq!(check.output.shape(), [6, 8, 8]);
    let [bound] = &bounds_of(&trip)[..] else {
        panic!("one bound");
    };
    assert_eq!(bound.violations, 0);
    assert_eq!(bound.checked, 6 * 8 * 8, "the binned values are checked");
    assert!(bound.worst <= 1e-2, "{}", bound.worst);
    // What is stored decodes alone, through the shapes recorded on the way.
    let stored = chain.decode_stored(&trip.stored, array.shape()).unwrap();
    assert_eq!(stored, *trip.decoded);
}

#[test]
fn bin_refuses_foreign_shapes_and_overflowing_sums_in_one_line() {
    let (codec, _) = array_codec("bin", &bin_params([2, 1, 1], "mean"), DType::Float32);
    let image = ArrayD::<f32>::zeros(IxDyn(&[4, 5])).into_nd();
    let error = codec.encode(image).unwrap_err().to_string();
    assert_eq!(
        error,
        "stage bin: factor_z = 2 bins an axis that a chunk of shape [4, 5] does not have"
    );
    let wrong = ArrayD::<f32>::zeros(IxDyn(&[3, 4, 5])).into_nd();
    let error = codec.decode(wrong, &[4, 4, 5]).unwrap_err().to_string();
    assert_eq!(
        error,
        "stage bin: a chunk of float32 [4, 4, 5] bins to float32 [2, 4, 5], got float32 [3, 4, 5]"
    );
    let def = registry::find("bin").unwrap();
    let refused = (def.create)(
        &config("bin", &bin_params([1, 2, 2], "sum")),
        StageInput {
            dtype: DType::Int64,
        },
    )
    .err()
    .unwrap();
    assert_eq!(
        refused,
        "reduce = \"sum\" of int64 values can overflow every integer dtype: use reduce = \"mean\""
    );
}

// ---------------------------------------------------------------------------------------------
// veto (its decisions against NumPy: tests/veto_crosscheck.rs)

/// A series of `n` frames of 16 x 16 in `dtype`: frame `i` holds `i` counts in each of its
/// first `i` pixels (total `i^2`), so frame `i` is kept by `min_counts <= i^2`.
fn counted_frames(n: usize, dtype: DType) -> NdArray {
    let values: Vec<f64> = (0..n * 256)
        .map(|k| {
            let (frame, pixel) = (k / 256, k % 256);
            if pixel < frame { frame as f64 } else { 0.0 }
        })
        .collect();
    with_dtype!(dtype, T => ArrayD::from_shape_vec(IxDyn(&[n, 16, 16]), values.iter().map(|&v| T::from_f64(v)).collect()).unwrap().into_nd())
}

fn veto_counts(min_counts: f64) -> Vec<(&'static str, ParamValue)> {
    vec![
        ("criterion", ParamValue::Str("counts".into())),
        ("min_counts", ParamValue::Float(min_counts)),
    ]
}

#[test]
fn veto_keeps_frames_in_place_zeroes_the_others_and_stores_one_bit_per_frame() {
    for dtype in [
        DType::Uint8,
        DType::Uint16,
        DType::Int32,
        DType::Float32,
        DType::Float64,
    ] {
        let frames = counted_frames(11, dtype);
        // Frames 4..=10 have 16..=100 counts: 7 kept.
        let params = veto_counts(16.0);
        let chain = Chain::build(&[config("veto", &params), config("zstd", &[])], dtype).unwrap();
        let trip = chain.round_trip(&frames).unwrap();
        let decoded = trip.decoded.to_f64();
        let original = frames.to_f64();
        for i in 0..11 {
            let (d, o) = (
                decoded.index_axis(ndarray::Axis(0), i),
                original.index_axis(ndarray::Axis(0), i),
            );
            if i >= 4 {
                assert_eq!(d, o, "{dtype}: kept frame {i}");
            } else {
                assert!(d.iter().all(|&v| v == 0.0), "{dtype}: dropped frame {i}");
            }
        }
        // What is stored: the bitmap's length and 2 bytes (11 frames), then zstd's stream of
        // the 7 kept frames; it decodes alone.
        assert_eq!(&trip.stored[..6], &[2, 0, 0, 0, 0b1111_0000, 0b111]);
        let (codec, _) = array_codec("veto", &params, dtype);
        let kept = codec.encode(frames.clone()).unwrap();
        assert_eq!(kept.shape(), [7, 16, 16]);
        let zstd = bytes_codec("zstd", &[], dtype);
        assert_eq!(
            trip.encoded_bytes,
            6 + zstd.encode(&kept.to_le_bytes()).unwrap().len()
        );
        let stored = chain.decode_stored(&trip.stored, frames.shape()).unwrap();
        assert_eq!(stored, *trip.decoded);
        // The decoder without its bitmap, a cut bitmap and a bitmap of other frames fail.
        assert!(codec.decode(kept.clone(), frames.shape()).is_err());
        assert!(
            chain
                .decode_stored(&trip.stored[..5], frames.shape())
                .is_err()
        );
        let mut forged = trip.stored.to_vec();
        forged[4] = 0b1111_1000;
        assert!(chain.decode_stored(&forged, frames.shape()).is_err());
    }
}

#[test]
fn veto_chunks_that_keep_nothing_store_only_their_bitmap_and_decode_to_zeros() {
    // Only frame 8 (64 counts) is kept: chunks of 4 frames keep nothing, nothing, 1 frame,
    // which SZ3 (never given an empty array) compresses within its bound.
    let chain = Chain::build(
        &[
            config("veto", &veto_counts(60.0)),
            config("sz3", &[("abs_error", ParamValue::Float(0.25))]),
        ],
        DType::Float32,
    )
    .unwrap();
    let frames = counted_frames(9, DType::Float32);
    let mut sizes = Vec::new();
    for rows in [0..4, 4..8, 8..9] {
        let chunk = frames.slice_rows(rows.clone());
        let trip = chain.round_trip(&chunk).unwrap();
        let (decoded, original) = (trip.decoded.to_f64(), chunk.to_f64());
        for (i, frame) in rows.clone().enumerate() {
            let (d, o) = (
                decoded.index_axis(ndarray::Axis(0), i),
                original.index_axis(ndarray::Axis(0), i),
            );
            if frame == 8 {
                let worst = d
                    .iter()
                    .zip(o.iter())
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                assert!(worst <= 0.25, "kept frame {frame}: {worst}");
            } else {
                assert!(d.iter().all(|&v| v == 0.0), "dropped frame {frame}");
            }
        }
        assert_eq!(
            chain.decode_stored(&trip.stored, chunk.shape()).unwrap(),
            *trip.decoded
        );
        // Every chunk lists SZ3's check; on the chunks that keep nothing it checks nothing.
        let bounds = bounds_of(&trip);
        assert_eq!(bounds.len(), 1);
        assert_eq!(bounds[0].checked, if rows.start == 8 { 256 } else { 0 });
        assert_eq!(bounds[0].violations, 0);
        sizes.push(trip.encoded_bytes);
    }
    // A stage with a promise after veto sees the empty chunks too, and checks nothing there.
    let quantized = Chain::build(
        &[
            config("veto", &veto_counts(60.0)),
            quantize_config("uint8", 8, Some([0.0, 100.0])),
            config("zstd", &[]),
        ],
        DType::Float32,
    )
    .unwrap();
    let mut merged = Vec::new();
    for rows in [0..4, 8..9] {
        let trip = quantized.round_trip(&frames.slice_rows(rows)).unwrap();
        photonqa::metrics::comparison::merge_bounds(&mut merged, &bounds_of(&trip)).unwrap();
    }
    assert_eq!(
        (merged.len(), merged[0].checked, merged[0].violations),
        (1, 256, 0)
    );
    assert_eq!(&sizes[..2], &[5, 5], "4 bytes of length and 1 of bitmap");
    assert!(sizes[2] > 5);
}

#[test]
fn veto_refuses_other_ranks_binning_rows_after_it_and_hdf5_storage() {
    let (codec, _) = array_codec("veto", &[], DType::Float32);
    let image = ArrayD::<f32>::zeros(IxDyn(&[4, 5])).into_nd();
    assert_eq!(
        codec.encode(image).unwrap_err().to_string(),
        "stage veto: needs a series of frames [n, y, x] (3 axes, axis 0 the frames); a chunk has shape [4, 5]"
    );
    let chain = Chain::build(&[config("veto", &[])], DType::Float32).unwrap();
    let (index, why) = chain.refusing_stage(&[10, 5], 4).unwrap();
    assert_eq!(index, 0);
    assert!(why.contains("a chunk has shape [4, 5]"), "{why}");
    assert_eq!(chain.refusing_stage(&[10, 8, 8], 4), None);
    let (index, why) = chain.reshaping_stage(&[&[4, 8, 8]]).unwrap();
    assert_eq!(index, 0);
    assert!(why.contains("side information"), "{why}");
    let binned = Chain::build(
        &[
            config("veto", &[]),
            config("bin", &bin_params([2, 1, 1], "mean")),
        ],
        DType::Float32,
    )
    .unwrap();
    let (index, why) = binned.block_straddling_stage(&[16, 8, 8], 4).unwrap();
    assert_eq!(index, 1);
    assert!(why.contains("after veto"), "{why}");
    // Binning the frames' pixels after it is fine.
    let pixels = Chain::build(
        &[
            config("veto", &[]),
            config("bin", &bin_params([1, 2, 2], "mean")),
        ],
        DType::Float32,
    )
    .unwrap();
    assert_eq!(pixels.block_straddling_stage(&[16, 8, 8], 4), None);
}

// ---------------------------------------------------------------------------------------------
// bitround

/// A normal float with random sign, mantissa and an exponent in `exponents`.
fn normal_f64(rng: &mut ChaCha8Rng, exponents: std::ops::Range<i32>) -> f64 {
    let m = 1.0 + rng.random::<f64>();
    let e = rng.random_range(exponents);
    let v = m * 2f64.powi(e);
    if rng.random_bool(0.5) { -v } else { v }
}

proptest! {
    #![proptest_config(proptest_config(128))]

    #[test]
    fn bitround_relative_error_is_bounded(double in any::<bool>(), keep in 0u32..=52, seed in any::<u64>(), shape in shape_strategy()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Normal numbers away from the top binade (which can round up to infinity, as in
        // numcodecs) and the bottom one.
        let (dtype, mantissa, exponents) = if double { (DType::Float64, 52, -1000..1000) } else { (DType::Float32, 23, -120..120) };
        let keep = keep.min(mantissa);
        let n: usize = shape.iter().product();
        let values: Vec<f64> = (0..n).map(|_| normal_f64(&mut rng, exponents.clone())).collect();
        let array = if double {
            ArrayD::from_shape_vec(IxDyn(&shape), values).unwrap().into_nd()
        } else {
            ArrayD::from_shape_vec(IxDyn(&shape), values.iter().map(|&v| v as f32).collect()).unwrap().into_nd()
        };
        let chain = fitted_chain(&[config("bitround", &[("keepbits", ParamValue::Int(keep as i64))])], &array);
        let trip = chain.round_trip(&array).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(trip.decoded.dtype(), dtype);
        let limit = 2f64.powi(-(keep as i32 + 1));
        let (original, decoded) = (array.to_f64(), trip.decoded.to_f64());
        let low_bits = mantissa - keep;
        let bit_patterns: Vec<u64> = match trip.decoded.as_ref() {
            NdArray::Float32(a) => a.iter().map(|v| v.to_bits() as u64).collect(),
            NdArray::Float64(a) => a.iter().map(|v| v.to_bits()).collect(),
            _ => unreachable!(),
        };
        for ((x, y), b) in original.iter().zip(decoded.iter()).zip(bit_patterns) {
            // Exact in float64: x and y are within a factor 2 (Sterbenz), the limit a power of 2.
            let error = (y - x).abs();
            prop_assert!(error <= limit * x.abs(), "keepbits {}: {:e} -> {:e}, relative error {:e} > {:e}", keep, x, y, error / x.abs(), limit);
            prop_assert!(b & ((1u64 << low_bits) - 1) == 0, "keepbits {}: {:e} -> {:e} keeps bits below the {} kept", keep, x, y, keep);
        }
        if keep == mantissa {
            prop_assert_eq!(trip.decoded.to_le_bytes(), array.to_le_bytes(), "full width must be lossless");
        }
    }
}

#[test]
fn bitround_keeps_zeros_and_rejects_too_many_bits() {
    let zeros = ArrayD::from_shape_vec(IxDyn(&[1, 2]), vec![0.0f32, -0.0])
        .unwrap()
        .into_nd();
    for keep in [0, 5, 23] {
        let (codec, out) = array_codec(
            "bitround",
            &[("keepbits", ParamValue::Int(keep))],
            DType::Float32,
        );
        assert_eq!(out, DType::Float32);
        assert_eq!(
            codec.encode(zeros.clone()).unwrap().to_le_bytes(),
            zeros.to_le_bytes()
        );
    }
    let def = registry::find("bitround").unwrap();
    let err = (def.create)(
        &config("bitround", &[("keepbits", ParamValue::Int(24))]),
        StageInput {
            dtype: DType::Float32,
        },
    )
    .err()
    .expect("keepbits 24 on float32 must fail");
    assert!(err.contains("keepbits") && err.contains("24"), "{err}");
    assert!(
        (def.create)(
            &config("bitround", &[("keepbits", ParamValue::Int(52))]),
            StageInput {
                dtype: DType::Float64
            }
        )
        .is_ok()
    );
    for dtype in DType::ALL.into_iter().filter(|d| !d.is_float()) {
        let err = (def.create)(&config("bitround", &[]), StageInput { dtype })
            .err()
            .expect("integer input must fail");
        assert!(err.contains(dtype.name()), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// threshold

proptest! {
    #![proptest_config(proptest_config(96))]

    #[test]
    fn threshold_zero_below_and_binarise(
        dtype in 0..DType::ALL.len(),
        shape in shape_strategy(),
        seed in any::<u64>(),
        quantile in 0.0f64..1.0,
        fill in -3i32..=3,
    ) {
        let dtype = DType::ALL[dtype];
        let array = uniform_array(dtype, &shape, -50.0, 120.0, seed);
        let values = array.to_f64();
        let mut sorted: Vec<f64> = values.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        // A threshold that is often exactly one of the values (values equal to it are "below").
        let t = sorted[((sorted.len() - 1) as f64 * quantile) as usize] + if seed % 3 == 0 { 0.5 } else { 0.0 };
        let fill = fill as f64 * 2.0;

        let zero_below = config("threshold", &[("method", ParamValue::Str("value".into())), ("value", ParamValue::Float(t)), ("fill", ParamValue::Float(fill))]);
        let chain = fitted_chain(&[zero_below], &array);
        let trip = chain.round_trip(&array).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected = with_dtype!(dtype, T => {
            let a = T::ref_nd(&array).unwrap();
            a.mapv(|v| if v.to_f64() > t { v } else { T::from_f64(fill) }).into_nd()
        });
        prop_assert_eq!(trip.decoded.to_le_bytes(), expected.to_le_bytes(), "zero-below at {} with fill {} on {}", t, fill, describe(&array));

        let binarise = [("method", ParamValue::Str("value".into())), ("value", ParamValue::Float(t)), ("mode", ParamValue::Str("binarise".into()))];
        let (codec, out) = array_codec("threshold", &binarise, dtype);
        prop_assert_eq!(out, DType::Uint8);
        let mask = codec.encode(array.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected_mask: Vec<u8> = values.iter().map(|&v| u8::from(v > t)).collect();
        prop_assert_eq!(mask.dtype(), DType::Uint8);
        prop_assert_eq!(mask.to_le_bytes(), expected_mask.clone());
        let decoded = codec.decode(mask, array.shape()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decoded.dtype(), dtype);
        prop_assert_eq!(decoded.shape(), array.shape());
        let back: Vec<f64> = decoded.to_f64().iter().copied().collect();
        prop_assert_eq!(back, expected_mask.iter().map(|&m| m as f64).collect::<Vec<_>>());
        // Through a whole chain: 0/1 in the input dtype.
        let chain = fitted_chain(&[config("threshold", &binarise), config("zstd", &[])], &array);
        let trip = chain.round_trip(&array).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(trip.decoded.dtype(), dtype);
        prop_assert_eq!(trip.decoded.to_f64().iter().copied().collect::<Vec<_>>(), expected_mask.iter().map(|&m| m as f64).collect::<Vec<_>>());
    }
}

#[test]
fn threshold_otsu_splits_two_populations() {
    // Two well-separated clusters around 10 and 50: Otsu's threshold lies between them, the
    // low cluster becomes the fill value and the high one is kept exactly.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let a = ArrayD::from_shape_simple_fn(IxDyn(&[20, 30]), || {
        if rng.random_bool(0.4) {
            10.0 + rng.random::<f32>()
        } else {
            50.0 + rng.random::<f32>()
        }
    })
    .into_nd();
    let chain = fitted_chain(&[config("threshold", &[])], &a);
    let t = chain.fitted()[0]["threshold"]
        .as_f64()
        .expect("fitted threshold");
    assert!(
        t > 11.0 && t < 50.0,
        "Otsu threshold {t} is not between the clusters"
    );
    let trip = chain.round_trip(&a).unwrap();
    let (x, y) = (a.to_f64(), trip.decoded.to_f64());
    for (x, y) in x.iter().zip(y.iter()) {
        assert_eq!(*y, if *x > 30.0 { *x } else { 0.0 });
    }
    // method = "value" without a value, and a value with method = "otsu", are errors.
    let def = registry::find("threshold").unwrap();
    let err = (def.create)(
        &config("threshold", &[("method", ParamValue::Str("value".into()))]),
        StageInput {
            dtype: DType::Float32,
        },
    )
    .err()
    .unwrap();
    assert!(err.contains("value"), "{err}");
    let err = (def.create)(
        &config("threshold", &[("value", ParamValue::Float(1.0))]),
        StageInput {
            dtype: DType::Float32,
        },
    )
    .err()
    .unwrap();
    assert!(err.contains("value"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Corrupt streams

/// Limit on any single allocation while decoding a corrupt stream of a few kilobytes.
const ALLOCATION_LIMIT: usize = 64 << 20;
/// Limit on the time one corrupt stream may take to fail.
const TIME_LIMIT: Duration = Duration::from_secs(2);

/// Outcome of decoding a damaged stream.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// A CodecError saying "corrupt".
    Rejected,
    /// Decoded to something else: the chain's lossless check reports it.
    Different,
    /// Decoded to the original (the damage hit bytes that do not matter).
    Same,
}

/// Decodes a damaged stream and checks that it fails cleanly, fast and without a huge allocation.
fn judge(
    what: &str,
    decode: impl FnOnce() -> Result<Vec<u8>, String>,
    original: &[u8],
) -> Result<Outcome, String> {
    let start = Instant::now();
    let (result, largest) = largest_allocation(decode);
    let elapsed = start.elapsed();
    if largest > ALLOCATION_LIMIT {
        return Err(format!(
            "{what}: allocated {largest} bytes at once decoding a damaged stream"
        ));
    }
    if elapsed > TIME_LIMIT {
        return Err(format!(
            "{what}: took {elapsed:?} to decode a damaged stream"
        ));
    }
    match result {
        Err(e) if e.contains("corrupt") => Ok(Outcome::Rejected),
        Err(e) => Err(format!("{what}: error without \"corrupt\": {e}")),
        Ok(out) if out == original => Ok(Outcome::Same),
        Ok(_) => Ok(Outcome::Different),
    }
}

/// Decodes a (possibly damaged) stream to bytes, or says why it cannot.
type Decoder = Box<dyn Fn(&[u8]) -> Result<Vec<u8>, String>>;

/// A damaged-stream decoder for each corruptible stage: `(name, encoded, original, decode)`.
struct Subject {
    name: String,
    encoded: Vec<u8>,
    original: Vec<u8>,
    decode: Decoder,
}

fn subjects(seed: u64) -> Vec<Subject> {
    let array = random_array(DType::Float32, &[4, 9, 11], seed, (seed % 3) as u8);
    let serialised = array.to_le_bytes();
    let mut out = Vec::new();
    for (id, overrides) in [
        ("deflate", vec![("level", ParamValue::Int(1))]),
        ("deflate", vec![("level", ParamValue::Int(9))]),
        ("zstd", vec![("level", ParamValue::Int(3))]),
        ("zstd", vec![("level", ParamValue::Int(-5))]),
        ("lz4", vec![]),
        ("blosc", vec![]),
        (
            "blosc",
            vec![
                ("cname", ParamValue::Str("blosclz".into())),
                ("shuffle", ParamValue::Str("bit".into())),
                ("clevel", ParamValue::Int(9)),
            ],
        ),
    ] {
        let codec = bytes_codec(id, &overrides, DType::Float32);
        let encoded = codec.encode(&serialised).unwrap();
        assert_eq!(
            codec.decode(&encoded).unwrap(),
            serialised,
            "{id} must round-trip"
        );
        out.push(Subject {
            name: format!("{id} {overrides:?}"),
            encoded,
            original: serialised.clone(),
            decode: Box::new(move |b| codec.decode(b).map_err(|e| e.to_string())),
        });
    }
    // The codec stages: every stream carries a CRC-32 that is checked before the C decoders.
    let smooth = smooth_array(DType::Float32, &[4, 9, 11], seed);
    let quantized = smooth_array(DType::Uint16, &[4, 9, 11], seed);
    for (id, overrides, values) in [
        ("sz3", vec![("abs_error", ParamValue::Float(1e-3))], &smooth),
        ("zfp", vec![("tolerance", ParamValue::Float(1e-3))], &smooth),
        (
            "jpeg2000",
            vec![("psnr", ParamValue::Float(50.0))],
            &quantized,
        ),
        ("pcodec", vec![], &smooth),
        (
            "scaleoffset",
            vec![("decimals", ParamValue::Int(3))],
            &smooth,
        ),
        ("scaleoffset", vec![], &quantized),
        ("nbit", vec![("bits", ParamValue::Int(16))], &quantized),
    ] {
        let codec = match create(id, &overrides, values.dtype()) {
            Stage::ArrayToBytes(c) => c,
            _ => unreachable!(),
        };
        let encoded = codec.encode(values).unwrap();
        let shape = values.shape().to_vec();
        let original = codec.decode(&encoded, &shape).unwrap().to_le_bytes();
        out.push(Subject {
            name: format!("{id} {}", values.dtype()),
            encoded,
            original,
            decode: Box::new(move |b| {
                codec
                    .decode(b, &shape)
                    .map(|a| a.to_le_bytes())
                    .map_err(|e| e.to_string())
            }),
        });
    }
    for dtype in [DType::Uint8, DType::Float32, DType::Float64] {
        let values = with_dtype!(dtype, T => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            ArrayD::from_shape_simple_fn(IxDyn(&[5, 6, 7]), || T::from_f64(rng.random_range(0..6) as f64)).into_nd()
        });
        let codec = array_to_bytes_codec("dictionary", dtype);
        let encoded = codec.encode(&values).unwrap();
        let shape = values.shape().to_vec();
        out.push(Subject {
            name: format!("dictionary {dtype}"),
            encoded,
            original: values.to_le_bytes(),
            decode: Box::new(move |b| {
                codec
                    .decode(b, &shape)
                    .map(|a| a.to_le_bytes())
                    .map_err(|e| e.to_string())
            }),
        });
    }
    out
}

#[test]
fn every_truncation_is_rejected() {
    for s in subjects(11) {
        for len in 0..s.encoded.len() {
            let outcome = judge(
                &format!("{} cut to {len} of {} bytes", s.name, s.encoded.len()),
                || (s.decode)(&s.encoded[..len]),
                &s.original,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            // LZ4 blocks cut at a sequence boundary are valid shorter blocks: lz4 may decode them
            // to a shorter output (which the chain's check reports); every other stage notices.
            let allowed: &[Outcome] = if s.name.starts_with("lz4") {
                &[Outcome::Rejected, Outcome::Different]
            } else {
                &[Outcome::Rejected]
            };
            assert!(
                allowed.contains(&outcome),
                "{} cut to {len} of {} bytes: {outcome:?}, expected one of {allowed:?}",
                s.name,
                s.encoded.len()
            );
        }
        // Trailing garbage after a complete stream.
        let mut longer = s.encoded.clone();
        longer.extend_from_slice(&[0x5A; 7]);
        let outcome = judge(
            &format!("{} + 7 trailing bytes", s.name),
            || (s.decode)(&longer),
            &s.original,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(
            outcome,
            Outcome::Same,
            "{}: 7 trailing bytes went unnoticed",
            s.name
        );
    }
}

proptest! {
    #![proptest_config(proptest_config(64))]

    #[test]
    fn random_byte_flips_fail_cleanly(seed in any::<u64>(), flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..=4)) {
        for s in subjects(seed) {
            let mut damaged = s.encoded.clone();
            for (at, mask) in &flips {
                let i = at.index(damaged.len());
                damaged[i] ^= mask;
            }
            let what = format!("{} with flips {:?}", s.name, flips.iter().map(|(at, m)| (at.index(s.encoded.len()), *m)).collect::<Vec<_>>());
            if let Err(e) = judge(&what, || (s.decode)(&damaged), &s.original) {
                prop_assert!(false, "{}", e);
            }
        }
    }
}

#[test]
fn forged_size_headers_fail_fast() {
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
    let lz4 = bytes_codec("lz4", &[], DType::Uint8);
    let encoded = lz4.encode(&data).unwrap();
    let payload = encoded.len() - 4;
    for declared in [
        u32::MAX,
        0x7FFF_FFFF,
        1 << 30,
        (payload * 255 + 17) as u32,
        data.len() as u32 * 2,
        data.len() as u32 - 1,
        0,
    ] {
        let mut forged = encoded.clone();
        forged[..4].copy_from_slice(&declared.to_le_bytes());
        let outcome = judge(
            &format!("lz4 declaring {declared} bytes"),
            || lz4.decode(&forged).map_err(|e| e.to_string()),
            &data,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(
            outcome,
            Outcome::Same,
            "lz4 declaring {declared} bytes decoded to the original"
        );
    }
    // A dictionary announcing 4 billion distinct values.
    let values = ArrayD::from_shape_fn(IxDyn(&[10, 10]), |ix| (ix[0] % 3) as f64).into_nd();
    let dict = array_to_bytes_codec("dictionary", DType::Float64);
    let mut forged = dict.encode(&values).unwrap();
    forged[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
    let outcome = judge(
        "dictionary with 2^32-1 values",
        || {
            dict.decode(&forged, &[10, 10])
                .map(|a| a.to_le_bytes())
                .map_err(|e| e.to_string())
        },
        &values.to_le_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome, Outcome::Rejected);
    // A dictionary stream decoded with a shape it was not made for.
    let outcome = judge(
        "dictionary with the wrong shape",
        || {
            dict.decode(&dict.encode(&values).unwrap(), &[10, 11])
                .map(|a| a.to_le_bytes())
                .map_err(|e| e.to_string())
        },
        &values.to_le_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome, Outcome::Rejected);
    // A zstd frame whose header claims a huge window and content size.
    let zstd = bytes_codec("zstd", &[], DType::Uint8);
    // Descriptor 0xC0: 8-byte content size, a window descriptor; window 2^41 bytes.
    let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0xC0, 0xF8];
    frame.extend_from_slice(&u64::MAX.to_le_bytes());
    frame.extend_from_slice(&[0x01, 0x00, 0x00]);
    let outcome = judge(
        "zstd with a forged frame header",
        || zstd.decode(&frame).map_err(|e| e.to_string()),
        &data,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome, Outcome::Rejected);
}

#[test]
fn clean_round_trip_passes_the_chain_check_and_a_dtype_mismatch_is_an_error() {
    // The chain's own check: bytes->bytes output must equal the serialised input. Build a chain
    // and make sure a clean round trip passes it (the damaged cases above rely on it).
    let array = random_array(DType::Float64, &[3, 5, 7], 1, 0);
    let chain = Chain::build(
        &lossless_configs(&["dictionary", "lz4", "deflate"], 3, 6),
        DType::Float64,
    )
    .unwrap();
    let trip = chain.round_trip(&array).unwrap();
    assert!(
        trip.decoded.to_le_bytes() == array.to_le_bytes(),
        "not bit-exact"
    );
    assert!(trip.encoded_bytes > 0);
    // A chain built for one dtype refuses arrays of another (its bytes stage decodes a
    // different element type), with an error rather than a panic.
    let chain = Chain::build(&lossless_configs(&["zstd"], 3, 6), DType::Float32).unwrap();
    let err = chain
        .round_trip(&random_array(DType::Float64, &[2, 3], 1, 0))
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some(), "a float32 chain round-tripped float64 data");
}

// ---------------------------------------------------------------------------------------------
// Error-bounded codecs

/// A smooth field with noise, of `dtype` (integers span 0..=60000 or the type's range).
fn smooth_array(dtype: DType, shape: &[usize], seed: u64) -> NdArray {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let scale = match dtype {
        DType::Uint8 => 250.0,
        DType::Int8 => 120.0,
        DType::Int16 => 30000.0,
        _ if dtype.is_float() => 1.0,
        _ => 60000.0,
    };
    let offset = if matches!(dtype, DType::Int8 | DType::Int16) || dtype.is_float() {
        0.0
    } else {
        0.5
    };
    with_dtype!(dtype, T => ArrayD::from_shape_fn(IxDyn(shape), |ix| {
        let s: f64 = ix.slice().iter().enumerate().map(|(a, &i)| (a as f64 + 1.3) * i as f64).sum();
        let v = offset + 0.45 * ((s * 0.21).sin() + 0.1 * rng.random_range(-1.0..1.0));
        T::from_f64(v * scale)
    }).into_nd())
}

/// Round-trips `array` through the one-stage chain `id` with `overrides`; returns the trip.
fn codec_trip(
    id: &str,
    overrides: &[(&'static str, ParamValue)],
    array: &NdArray,
) -> photonqa::pipeline::RoundTrip {
    let chain = Chain::build(&[config(id, overrides)], array.dtype())
        .unwrap_or_else(|e| panic!("build {id} {overrides:?}: {e}"));
    chain
        .round_trip(array)
        .unwrap_or_else(|e| panic!("{id} {overrides:?} on {}: {e}", describe(array)))
}

/// Largest `|y - x|` computed here, independently of the chain's own check.
fn max_abs_error(x: &NdArray, y: &NdArray) -> f64 {
    x.to_f64()
        .iter()
        .zip(y.to_f64().iter())
        .map(|(a, b)| (b - a).abs())
        .fold(0.0, f64::max)
}

#[test]
fn sz3_and_zfp_absolute_bounds_hold_for_every_dtype_and_shape() {
    let dtypes = [
        DType::Float32,
        DType::Float64,
        DType::Uint8,
        DType::Uint16,
        DType::Int16,
        DType::Int32,
    ];
    for (k, dtype) in dtypes.into_iter().enumerate() {
        for shape in [
            &[1usize, 1, 1][..],
            &[1, 37],
            &[5, 1, 9],
            &[6, 9, 11],
            &[3, 4, 5, 6],
        ] {
            let array = smooth_array(dtype, shape, k as u64);
            let unit = if dtype.is_float() { 1.0 } else { 100.0 };
            for bound in [1e-4, 1e-2, 0.3] {
                let bound = bound * unit;
                for (id, param) in [("sz3", "abs_error"), ("zfp", "tolerance")] {
                    let trip = codec_trip(id, &[(param, ParamValue::Float(bound))], &array);
                    let error = max_abs_error(&array, &trip.decoded);
                    // ZFP on integers rounds its float result: at most floor(bound + 0.5).
                    let allowed = if id == "zfp" && !dtype.is_float() {
                        (bound + 0.5).floor()
                    } else {
                        bound
                    };
                    assert!(
                        error <= allowed,
                        "{id} {param} = {bound} on {}: max error {error}",
                        describe(&array)
                    );
                    assert_eq!(trip.decoded.dtype(), dtype);
                    let bounds = bounds_of(&trip);
                    let [check] = bounds.as_slice() else {
                        panic!("{id} promises one bound")
                    };
                    assert_eq!(check.promise.kind(), "abs");
                    assert_eq!(check.violations, 0, "{id} {bound} on {}", describe(&array));
                    assert_eq!(check.worst, error, "the chain's check is the same maximum");
                }
            }
        }
    }
}

#[test]
fn sz3_relative_bound_is_relative_to_the_chunks_range() {
    let array = smooth_array(DType::Float32, &[6, 20, 21], 3);
    let v = array.to_f64();
    let range = v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        - v.iter().copied().fold(f64::INFINITY, f64::min);
    for rel in [1e-5, 1e-3, 1e-1] {
        let trip = codec_trip(
            "sz3",
            &[
                ("mode", ParamValue::Str("rel".into())),
                ("rel_error", ParamValue::Float(rel)),
            ],
            &array,
        );
        let error = max_abs_error(&array, &trip.decoded);
        assert!(error <= rel * range, "rel {rel}: {error} > {}", rel * range);
        assert_eq!(bounds_of(&trip)[0].violations, 0);
        assert_eq!(bounds_of(&trip)[0].worst, error / range);
    }
}

#[test]
fn sz3_psnr_and_l2_modes_run_and_report_their_targets() {
    let array = smooth_array(DType::Float64, &[8, 16, 16], 5);
    for (mode, param, value, kind) in [("psnr", "psnr", 60.0, "psnr"), ("l2", "l2_norm", 0.5, "l2")]
    {
        let trip = codec_trip(
            "sz3",
            &[
                ("mode", ParamValue::Str(mode.into())),
                (param, ParamValue::Float(value)),
            ],
            &array,
        );
        let check = &bounds_of(&trip)[0];
        assert_eq!(check.promise.kind(), kind);
        assert_eq!(check.checked, 1, "one chunk");
        assert!(check.worst.is_finite(), "{mode}: {check:?}");
    }
}

#[test]
fn constant_and_tiny_chunks_round_trip() {
    // A constant chunk has a zero value range: SZ3's relative and PSNR modes then ask for a
    // zero error; a single value leaves ZFP no axis longer than 1.
    for array in [
        ArrayD::from_elem(IxDyn(&[3, 4, 5]), 2.5f32).into_nd(),
        ArrayD::from_elem(IxDyn(&[1, 1, 1]), -7.25f32).into_nd(),
        ArrayD::from_elem(IxDyn(&[1, 1, 2]), 1.0f64).into_nd(),
    ] {
        for (id, overrides) in [
            ("sz3", vec![("abs_error", ParamValue::Float(1e-3))]),
            (
                "sz3",
                vec![
                    ("mode", ParamValue::Str("rel".into())),
                    ("rel_error", ParamValue::Float(1e-3)),
                ],
            ),
            (
                "sz3",
                vec![
                    ("mode", ParamValue::Str("psnr".into())),
                    ("psnr", ParamValue::Float(60.0)),
                ],
            ),
            ("zfp", vec![("tolerance", ParamValue::Float(1e-3))]),
            (
                "zfp",
                vec![
                    ("mode", ParamValue::Str("precision".into())),
                    ("precision", ParamValue::Int(12)),
                ],
            ),
            ("pcodec", vec![]),
        ] {
            let trip = codec_trip(id, &overrides, &array);
            assert_eq!(
                trip.decoded.to_le_bytes(),
                array.to_le_bytes(),
                "{id} {overrides:?} on a constant {}",
                describe(&array)
            );
        }
    }
}

#[test]
fn zfp_fixed_rate_spends_its_rate() {
    // 8 x 16 x 16 float32: 32 whole 4x4x4 blocks, so the stream is rate x values plus headers.
    let array = smooth_array(DType::Float32, &[8, 16, 16], 9);
    for rate in [1.0, 4.0, 8.5, 16.0] {
        let trip = codec_trip(
            "zfp",
            &[
                ("mode", ParamValue::Str("rate".into())),
                ("rate", ParamValue::Float(rate)),
            ],
            &array,
        );
        let bits = 8.0 * trip.encoded_bytes as f64 / array.len() as f64;
        assert!(
            bits >= rate && bits < rate + 0.1,
            "rate {rate}: {bits} bits/value"
        );
        assert_eq!(bounds_of(&trip)[0].promise.kind(), "rate");
        assert_eq!(
            bounds_of(&trip)[0].violations,
            0,
            "rate {rate}: {:?}",
            bounds_of(&trip)
        );
    }
    // Edge chunks: 5 x 2 x 7 values in blocks padded to 8 x 4 x 8 stay within the ceiling.
    let edge = smooth_array(DType::Float64, &[5, 2, 7], 1);
    let trip = codec_trip(
        "zfp",
        &[
            ("mode", ParamValue::Str("rate".into())),
            ("rate", ParamValue::Float(2.0)),
        ],
        &edge,
    );
    assert_eq!(bounds_of(&trip)[0].violations, 0, "{:?}", bounds_of(&trip));
}

#[test]
fn jpeg2000_codes_integer_planes_and_refuses_floats() {
    for dtype in [DType::Uint8, DType::Int8, DType::Uint16, DType::Int16] {
        let array = smooth_array(dtype, &[3, 32, 40], 2);
        let trip = codec_trip("jpeg2000", &[("psnr", ParamValue::Float(45.0))], &array);
        assert_eq!(trip.decoded.dtype(), dtype);
        let check = &bounds_of(&trip)[0];
        assert_eq!(
            (check.promise.kind(), check.checked),
            ("psnr", 3),
            "per plane"
        );
        // OpenJPEG's PSNR is a target: the achieved one is near it (the check says how near).
        assert!(check.worst > 35.0, "{dtype}: {check:?}");
        let ratio = codec_trip(
            "jpeg2000",
            &[
                ("mode", ParamValue::Str("ratio".into())),
                ("ratio", ParamValue::Float(4.0)),
            ],
            &array,
        );
        assert!(ratio.encoded_bytes < array.nbytes() / 2, "{dtype}");
    }
    let def = registry::find("jpeg2000").unwrap();
    for dtype in [DType::Float32, DType::Float64, DType::Uint32, DType::Int64] {
        let err = (def.create)(
            &config("jpeg2000", &[("psnr", ParamValue::Float(40.0))]),
            StageInput { dtype },
        )
        .err()
        .expect("refused");
        assert!(err.contains(dtype.name()), "{err}");
    }
    // After quantize, at validation: the chain checks dtypes before any data is read.
    assert!(
        Chain::build(
            &[
                config("quantize", &[("dtype", ParamValue::Str("uint16".into()))]),
                config("jpeg2000", &[("psnr", ParamValue::Float(40.0))]),
            ],
            DType::Float32
        )
        .is_ok()
    );
}

#[test]
fn a_promise_after_array_stages_is_checked_on_the_stages_own_data() {
    // quantize (uint16) -> sz3 abs 2: SZ3's bound holds on the quantised levels, whatever the
    // quantisation error of the chain as a whole.
    let array = smooth_array(DType::Float32, &[4, 10, 12], 4);
    let chain = fitted_chain(
        &[
            config("quantize", &[("dtype", ParamValue::Str("uint16".into()))]),
            config("sz3", &[("abs_error", ParamValue::Float(2.0))]),
        ],
        &array,
    );
    let trip = chain.round_trip(&array).unwrap();
    let check = &bounds_of(&trip)[0];
    assert_eq!(check.violations, 0, "{check:?}");
    assert!(check.worst <= 2.0, "in quantisation levels: {check:?}");
    assert_eq!(check.checked, array.len() as u64);
    assert!(
        max_abs_error(&array, &trip.decoded) < 1e-3,
        "in the input's units"
    );
}

#[test]
fn codec_streams_with_trailing_bytes_or_a_wrong_shape_are_errors() {
    let array = smooth_array(DType::Float32, &[4, 6, 8], 8);
    for (id, overrides) in [
        ("sz3", vec![("abs_error", ParamValue::Float(1e-2))]),
        ("zfp", vec![("tolerance", ParamValue::Float(1e-2))]),
        ("pcodec", vec![]),
    ] {
        let codec = match create(id, &overrides, DType::Float32) {
            Stage::ArrayToBytes(c) => c,
            _ => unreachable!(),
        };
        let encoded = codec.encode(&array).unwrap();
        let err = codec.decode(&encoded, &[4, 6, 9]).expect_err("wrong shape");
        assert!(err.to_string().contains("corrupt"), "{id}: {err}");
        let mut longer = encoded.clone();
        longer.push(0);
        assert!(codec.decode(&longer, &[4, 6, 8]).is_err(), "{id}");
    }
}

/// Blosc round-trips every dtype with every compressor, shuffle and level, and compresses
/// smooth data better with a shuffle than without.
#[test]
fn blosc_round_trips_every_setting() {
    for dtype in DType::ALL {
        // A slow ramp: the low bytes vary, the high ones repeat (what shuffling exploits).
        let array = with_dtype!(dtype, T => {
            ArrayD::from_shape_fn(IxDyn(&[8, 32, 32]), |i| T::from_f64((i[1] * 32 + i[2]) as f64 / 16.0))
                .into_nd()
        });
        let bytes = array.to_le_bytes();
        for cname in ["blosclz", "lz4", "lz4hc"] {
            let mut sizes = Vec::new();
            for shuffle in ["none", "byte", "bit"] {
                for clevel in [0, 1, 5, 9] {
                    let overrides = [
                        ("cname", ParamValue::Str(cname.into())),
                        ("shuffle", ParamValue::Str(shuffle.into())),
                        ("clevel", ParamValue::Int(clevel)),
                    ];
                    let codec = bytes_codec("blosc", &overrides, dtype);
                    let encoded = codec.encode(&bytes).unwrap();
                    assert_eq!(
                        codec.decode(&encoded).unwrap(),
                        bytes,
                        "{dtype} {overrides:?}"
                    );
                    if clevel == 0 {
                        // Stored: the data and Blosc's 16-byte header.
                        assert_eq!(encoded.len(), bytes.len() + 16, "{dtype} {overrides:?}");
                    } else if clevel == 9 {
                        sizes.push(encoded.len());
                    }
                }
            }
            if dtype.size() > 1 {
                assert!(
                    sizes[1].min(sizes[2]) < sizes[0],
                    "{dtype} {cname}: shuffled sizes {sizes:?}"
                );
            }
        }
    }
}

/// HDF5's N-bit filter packs integers that fit in `bits` to `bits` per value, losslessly, for
/// every integer dtype, signed ones included; a value that does not fit is an error (HDF5
/// would clip it), floats and bits wider than the dtype are refused.
#[test]
fn hdf5_nbit_packs_integers_that_fit_losslessly() {
    let integers = DType::ALL.into_iter().filter(|d| !d.is_float());
    for dtype in integers {
        let width = 8 * dtype.size() as u32;
        let signed = matches!(
            dtype,
            DType::Int8 | DType::Int16 | DType::Int32 | DType::Int64
        );
        for bits in [1, 3, width / 2 + 1, width - 1, width] {
            let mut rng = ChaCha8Rng::seed_from_u64(u64::from(bits));
            // Random values of `bits` bits, sign-extended for signed types, with the extremes.
            let values: Vec<u64> = (0..4 * 9 * 11)
                .map(|i| {
                    let raw: u64 = match i {
                        0 => 0,
                        1 => u64::MAX,
                        _ => rng.random(),
                    };
                    let kept = if bits == 64 {
                        raw
                    } else {
                        raw & ((1 << bits) - 1)
                    };
                    let top = 1u64 << (bits - 1);
                    if signed && bits < 64 && kept & top != 0 {
                        kept | !((1u64 << bits) - 1)
                    } else {
                        kept
                    }
                })
                .collect();
            let array = with_dtype!(dtype, T => {
                let typed: Vec<T> = values
                    .iter()
                    .map(|&v| bytemuck::pod_read_unaligned::<T>(&v.to_le_bytes()[..dtype.size()]))
                    .collect();
                ArrayD::from_shape_vec(IxDyn(&[4, 9, 11]), typed).unwrap().into_nd()
            });
            let trip = codec_trip(
                "nbit",
                &[("bits", ParamValue::Int(i64::from(bits)))],
                &array,
            );
            assert_eq!(
                trip.decoded.to_le_bytes(),
                array.to_le_bytes(),
                "{dtype} bits {bits}"
            );
            // The packed bits, the checksum, and HDF5's few bytes of filter header.
            let packed = (array.len() * bits as usize).div_ceil(8);
            assert!(
                trip.encoded_bytes >= packed && trip.encoded_bytes <= packed + 32,
                "{dtype} bits {bits}: {} bytes for {packed} packed",
                trip.encoded_bytes
            );
        }
    }
    // 16 does not fit in 4 bits: an error naming the value, never a clipped 15.
    let array = ArrayD::from_shape_vec(IxDyn(&[2, 2, 2]), vec![0u16, 1, 2, 3, 15, 16, 7, 8])
        .unwrap()
        .into_nd();
    let chain = Chain::build(
        &[config("nbit", &[("bits", ParamValue::Int(4))])],
        DType::Uint16,
    )
    .unwrap();
    let err = chain.round_trip(&array).err().unwrap().to_string();
    assert!(err.contains("value 16 does not fit in bits = 4"), "{err}");
    let def = registry::find("nbit").unwrap();
    for (dtype, bits, message) in [
        (DType::Float32, 12, "packs integers, not float32"),
        (
            DType::Uint8,
            9,
            "bits = 9 does not fit dtype uint8 (8 bits)",
        ),
    ] {
        let err = (def.create)(
            &config("nbit", &[("bits", ParamValue::Int(bits))]),
            StageInput { dtype },
        )
        .err()
        .unwrap();
        assert!(err.contains(message), "{err}");
    }
}

#[test]
fn hdf5_scaleoffset_is_lossless_on_integers_and_its_float_bound_is_checked() {
    for dtype in [
        DType::Uint8,
        DType::Int8,
        DType::Uint16,
        DType::Int16,
        DType::Uint32,
        DType::Int32,
        DType::Int64,
    ] {
        let array = smooth_array(dtype, &[4, 9, 11], 6);
        let trip = codec_trip("scaleoffset", &[], &array);
        assert_eq!(trip.decoded.to_le_bytes(), array.to_le_bytes(), "{dtype}");
        assert_eq!(
            bounds_of(&trip)[0].violations,
            0,
            "{dtype}: exact, promised as abs 0"
        );
        if dtype.size() >= 4 {
            // Values within 0..=60000 need 16 of the 32 or 64 bits.
            assert!(
                trip.encoded_bytes < array.nbytes() * 3 / 4,
                "{dtype}: fewer bits"
            );
        }
    }
    // Floats: D-scaling to `decimals` digits promises 0.5 10^-D. The chain's count of values
    // beyond it equals an independent count here, whatever HDF5's arithmetic makes of it.
    for dtype in [DType::Float32, DType::Float64] {
        let array = smooth_array(dtype, &[4, 16, 16], 7);
        for decimals in [1i64, 3, 5] {
            let trip = codec_trip(
                "scaleoffset",
                &[("decimals", ParamValue::Int(decimals))],
                &array,
            );
            let bound = 0.5 * 10f64.powi(-decimals as i32);
            let beyond = array
                .to_f64()
                .iter()
                .zip(trip.decoded.to_f64().iter())
                .filter(|(a, b)| (*b - *a).abs() > bound)
                .count() as u64;
            let check = &bounds_of(&trip)[0];
            assert_eq!((check.promise.value(), check.violations), (bound, beyond));
            // The filter never strays by more than one unit of the last kept digit.
            assert!(
                max_abs_error(&array, &trip.decoded) <= 2.0 * bound * (1.0 + 1e-3),
                "{dtype} decimals {decimals}: {check:?}"
            );
        }
    }
}
