//! Every stage's decoder on hostile bytes, as a run calls it on a chunk of known shape and
//! dtype: each registered stage but `command` (which runs programs) in a few configurations,
//! built for every dtype it takes. A decoder must return the chunk or an error: never panic,
//! abort, hang or allocate what a forged size field asks for.
//!
//! The streams of the C and C++ codecs (`sz3`, `zfp`, `jpeg2000`, `scaleoffset`, `nbit`, and
//! `pcodec`) carry a CRC-32 that a damaged stream fails before a decoder sees it; the target
//! seals the fuzzed bytes with a valid one (`guard::seal`), so the decoders behind it get
//! them, as they would a stream crafted on purpose. But for SZ3's: SZ3 throws C++ exceptions
//! through `sz3-sys`'s C functions on crafted streams (e.g. `LinearQuantizer uid mismatch`),
//! which abort the process, and the `sz3` crate panics on an unknown algorithm code; photonqa
//! cannot catch either, so its SZ3 streams are fuzzed through the checksum only
//! ([`UNSEALED`]): a stream that fails it must be refused, and one that passes it is skipped.
//! libFuzzer's comparison tracing copies the checksum a stream is compared with into the
//! input, so it forges a valid one within seconds (the first crash of this kind,
//! `fuzz/regressions/stage_decode/sz3-forged-checksum`, reads SZ3's header past its buffer).
//! photonqa decodes a stream only in the process that encoded it; a valid checksum on a
//! crafted stream needs code that crafts it, which is not the threat the checksum guards
//! against (corruption).
//!
//! Input: a byte choosing the stage, configuration and dtype, a byte choosing the chunk shape,
//! then the stream (for an array->array stage, the encoded chunk's little-endian values, cut
//! or zero-padded to the size of the chunk's encoded shape, which `bin` makes smaller; for
//! `veto`, first its side information, the bitmap of the frames it kept).
//!
//! Seeds: every subject's encoding of a block of the reference volume, in each shape.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use photonqa::data::{DType, NdArray};
use photonqa::pipeline::stages::guard;
use photonqa::pipeline::{ParamValue, Stage, StageConfig, StageInput, StageKind, registry};
use photonqa_fuzz::{Seed, reference_block};

/// Stages whose streams the target does not seal with a valid checksum (see the module
/// documentation): their decoders only see streams that pass the checksum by chance.
const UNSEALED: &[&str] = &["sz3"];

/// The chunk shapes: a small 3-D chunk and a 2-D one.
const SHAPES: [&[usize]; 2] = [&[4, 8, 8], &[12, 10]];

/// The configurations fuzzed, as `(stage, parameters)` beyond the defaults: every stage of the
/// registry but `command`, those whose decoders depend on a parameter in several.
fn configurations() -> Vec<(&'static str, Vec<(&'static str, ParamValue)>)> {
    let float = ParamValue::Float;
    let int = ParamValue::Int;
    let text = |s: &str| ParamValue::Str(s.into());
    vec![
        (
            "threshold",
            vec![("method", text("value")), ("value", float(0.3))],
        ),
        (
            "threshold",
            vec![
                ("method", text("value")),
                ("value", float(0.3)),
                ("mode", text("binarise")),
            ],
        ),
        (
            "quantize",
            vec![("range", ParamValue::Interval([-0.2, 1.1]))],
        ),
        (
            "quantize",
            vec![
                ("dtype", text("uint16")),
                ("bits", int(12)),
                ("range", ParamValue::Interval([-20.0, 110.0])),
            ],
        ),
        ("bitround", vec![("keepbits", int(7))]),
        // Its decoder is the identity, whatever the filter.
        ("denoise", vec![("filter", text("median")), ("size", int(3))]),
        ("poisson", vec![]),
        (
            "poisson",
            vec![("dtype", text("uint8")), ("decode", text("integer"))],
        ),
        ("bytes", vec![]),
        ("dictionary", vec![]),
        ("pcodec", vec![]),
        ("sz3", vec![("abs_error", float(1e-3))]),
        ("zfp", vec![("tolerance", float(1e-3))]),
        (
            "zfp",
            vec![("mode", text("precision")), ("precision", int(12))],
        ),
        ("zfp", vec![("mode", text("rate")), ("rate", float(12.0))]),
        ("jpeg2000", vec![("psnr", float(50.0))]),
        ("scaleoffset", vec![]),
        ("nbit", vec![("bits", int(12))]),
        ("shuffle", vec![]),
        ("bitshuffle", vec![]),
        ("blosc", vec![]),
        (
            "blosc",
            vec![
                ("cname", text("blosclz")),
                ("shuffle", text("bit")),
                ("clevel", int(9)),
            ],
        ),
        ("zstd", vec![]),
        ("deflate", vec![]),
        ("lz4", vec![]),
        // Last, so that the subjects before keep their index (the first byte of the committed
        // seeds and regressions). The shape changes: the decoder takes the binned chunk and
        // the shape to repeat it over.
        (
            "bin",
            vec![
                ("factor_y", int(2)),
                ("factor_x", int(3)),
                ("decode", text("linear")),
            ],
        ),
        (
            "bin",
            vec![
                ("factor_z", int(3)),
                ("factor_x", int(2)),
                ("reduce", text("sum")),
            ],
        ),
        // Its side information (the bitmap of kept frames) is the stream's first bytes. One
        // configuration: its decoder does not depend on the criterion (and one byte chooses
        // among at most 256 subjects: 254 with this one's 10 dtypes).
        ("veto", vec![]),
    ]
}

/// A stage built for one input dtype.
struct Subject {
    /// `stage parameters dtype`, for the seeds' names.
    name: String,
    stage: Stage,
    dtype: DType,
    checksum: Checksum,
}

/// What a subject's streams end in, and how the target treats it.
#[derive(Clone, Copy, PartialEq)]
enum Checksum {
    /// No checksum (the Rust decoders).
    None,
    /// `guard::seal`'s checksum, which the target adds to the fuzzed bytes.
    Sealed,
    /// `guard::seal`'s checksum, which the fuzzed bytes must pass ([`UNSEALED`]).
    FuzzedThrough,
}

/// The configuration of `stage` with `overrides` and every other declared default.
fn config(stage: &'static str, overrides: &[(&'static str, ParamValue)]) -> StageConfig {
    let def = registry::find(stage).unwrap_or_else(|| panic!("no stage {stage}"));
    let params = def
        .params
        .iter()
        .filter_map(|p| {
            let value = match overrides.iter().find(|(name, _)| *name == p.name) {
                Some((_, value)) => Some(p.check(value.clone()).expect("a valid parameter")),
                None => p.default_value(),
            };
            value.map(|v| (p.name, v))
        })
        .collect();
    StageConfig {
        stage: def.id,
        params,
    }
}

/// The encoding of `chunk` by `stage` (for a bytes->bytes stage, of its little-endian bytes).
fn encode(stage: &Stage, chunk: &NdArray) -> Option<Vec<u8>> {
    match stage {
        Stage::ArrayToArray(codec, _) => codec
            .encode_with_side(chunk.clone())
            .ok()
            .map(|(a, side)| [side, a.to_le_bytes()].concat()),
        Stage::ArrayToBytes(codec) => codec.encode(chunk).ok(),
        Stage::BytesToBytes(codec) => codec.encode(&chunk.to_le_bytes()).ok(),
    }
}

static SUBJECTS: LazyLock<Vec<Subject>> = LazyLock::new(|| {
    let configurations = configurations();
    for def in registry::STAGES {
        assert!(
            def.id == "command" || configurations.iter().any(|(id, _)| *id == def.id),
            "stage {} is not fuzzed: add it to configurations()",
            def.id
        );
    }
    let mut subjects = Vec::new();
    for (id, overrides) in &configurations {
        let def = registry::find(id).expect("a registered stage");
        let config = config(def.id, overrides);
        let params: Vec<String> = overrides.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for dtype in DType::ALL {
            let Ok(stage) = (def.create)(&config, StageInput { dtype }) else {
                continue;
            };
            if let Stage::ArrayToArray(codec, _) = &stage
                && codec.needs_fit()
            {
                continue;
            }
            // Stages that refuse a dtype on its data (e.g. JPEG 2000 on 32-bit integers).
            let Some(sample) = encode(&stage, &reference_block(SHAPES[0], dtype)) else {
                continue;
            };
            let checksum =
                if def.kind != StageKind::ArrayToBytes || guard::open(def.id, &sample).is_err() {
                    Checksum::None
                } else if UNSEALED.contains(&def.id) {
                    Checksum::FuzzedThrough
                } else {
                    Checksum::Sealed
                };
            subjects.push(Subject {
                name: format!("{} {} {}", def.id, params.join(" "), dtype.name()),
                stage,
                dtype,
                checksum,
            });
        }
    }
    assert!(
        subjects.len() <= 256,
        "{} subjects: one byte chooses among them",
        subjects.len()
    );
    subjects
});

fn seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (index, subject) in SUBJECTS.iter().enumerate() {
        for (shape_index, shape) in SHAPES.iter().enumerate() {
            let Some(mut stream) = encode(&subject.stage, &reference_block(shape, subject.dtype))
            else {
                continue;
            };
            if subject.checksum == Checksum::Sealed {
                stream.truncate(stream.len() - guard::CHECKSUM_BYTES);
            }
            let name = format!("{}-{}", subject.name, shape_index)
                .replace(' ', "-")
                .replace("--", "-");
            seeds.push((
                name,
                [vec![index as u8, shape_index as u8], stream].concat(),
            ));
        }
    }
    seeds
}

fuzz_target!(
    init: {
        LazyLock::force(&SUBJECTS);
        photonqa_fuzz::init(seeds);
    },
    |data: &[u8]| {
        let [which, shape, stream @ ..] = data else {
            return;
        };
        let subject = &SUBJECTS[*which as usize % SUBJECTS.len()];
        let shape = SHAPES[*shape as usize % SHAPES.len()];
        let decoded = match &subject.stage {
            Stage::ArrayToArray(codec, dtype) => {
                // A stage with side information (`veto`'s bitmap, one bit per frame) takes
                // it from the stream's first bytes.
                let (side, stream) = if codec.has_side() {
                    stream.split_at(shape[0].div_ceil(8).min(stream.len()))
                } else {
                    (&stream[..0], stream)
                };
                // The encoded chunk has the shape the stage encodes a chunk of `shape` into.
                let Ok(encoded_shape) = codec.encoded_shape_with(shape, side) else {
                    return;
                };
                let mut bytes = stream.to_vec();
                bytes.resize(encoded_shape.iter().product::<usize>() * dtype.size(), 0);
                let encoded = NdArray::from_le_bytes(*dtype, &encoded_shape, &bytes)
                    .expect("sized to the chunk");
                codec.decode_with(encoded, shape, side)
            }
            Stage::ArrayToBytes(codec) => match subject.checksum {
                Checksum::None => codec.decode(stream, shape),
                Checksum::Sealed => codec.decode(&guard::seal(stream.to_vec()), shape),
                Checksum::FuzzedThrough if guard::open("fuzz", stream).is_ok() => return,
                Checksum::FuzzedThrough => {
                    let refused = codec.decode(stream, shape).err();
                    assert!(
                        refused.as_ref().is_some_and(|e| e.to_string().contains("corrupt stream")),
                        "{}: a stream failing its checksum was not refused as corrupt: {refused:?}",
                        subject.name
                    );
                    return;
                }
            },
            Stage::BytesToBytes(codec) => {
                let _ = codec.decode(stream);
                return;
            }
        };
        if let Ok(decoded) = decoded {
            assert_eq!(decoded.shape(), shape, "{}: decoded another shape", subject.name);
            assert_eq!(decoded.dtype(), subject.dtype, "{}: decoded another dtype", subject.name);
        }
    }
);
