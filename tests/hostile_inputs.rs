//! What fuzzing found (the targets in `fuzz/`, see `.ci/fuzz`): each test replays an input on
//! which a fuzz target crashed, panicked or allocated what a forged size asked for, and checks
//! that it is now an error naming the cause, made with bounded memory.

use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use numcodecs_jpeg2000::Jpeg2000DType;
use photonqa::data::{DType, IntoNdArray, SourceSpec};
use photonqa::pipeline::stages::guard;
use photonqa::pipeline::{ArrayToBytes, ParamValue, Stage, StageConfig, StageInput, registry};

mod common;
use common::allocation::{Tracking, largest_allocation};

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// Largest single allocation a hostile input of a few kilobytes may cause.
const ALLOCATION_LIMIT: usize = 1 << 20;

/// Opens `bytes` as a `.npy` file, as a run opens its input.
fn open_npy(dir: &Path, bytes: &[u8]) -> Result<(), String> {
    let path = dir.join("input.npy");
    std::fs::write(&path, bytes).unwrap();
    SourceSpec::Npy(path)
        .open()
        .map(drop)
        .map_err(|e| e.to_string())
}

/// fuzz target `source`: a 250-byte `.npy` header nesting 35 `[` kept ndarray-npy's
/// Python-literal parser busy for 12 s (its time grows exponentially with the nesting).
#[test]
fn npy_header_nesting_brackets_deeply_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let header = format!("{{'descr': '<f4', 'shape': (6, {}7)}}\n", "[".repeat(35));
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    let error = open_npy(dir.path(), &bytes).unwrap_err();
    assert!(
        error.ends_with("not a valid .npy file: its header nests brackets 37 deep (at most 4)"),
        "{error}"
    );
    // A plain header still opens.
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0; 24]);
    open_npy(dir.path(), &bytes).unwrap();
}

/// fuzz target `source`: a version 2 `.npy` header whose length field says 662 MB made
/// ndarray-npy allocate that much before finding the file 215 bytes long.
#[test]
fn npy_header_longer_than_its_file_is_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
    bytes.extend_from_slice(&0x277b_0076u32.to_le_bytes());
    bytes.extend_from_slice(b"{'descr': '<f4', 'fortran_order': False, 'shape': (6, 7)}\n");
    bytes.extend_from_slice(&[0; 168]);
    let (result, largest) = largest_allocation(|| open_npy(dir.path(), &bytes));
    assert!(
        largest < ALLOCATION_LIMIT,
        "allocated {largest} bytes at once"
    );
    let error = result.unwrap_err();
    assert!(
        error.ends_with(&format!(
            "not a valid .npy file: its header declares 662372470 bytes, but the file has {}",
            bytes.len()
        )),
        "{error}"
    );
    // A version 1 header (2-byte length) longer than its file, too.
    let mut short = b"\x93NUMPY\x01\x00\xff\xff{'descr'".to_vec();
    short.push(b'\n');
    let error = open_npy(dir.path(), &short).unwrap_err();
    assert!(error.contains("header declares 65535 bytes"), "{error}");
}

/// A stage built with `params` for `dtype` (the array->bytes stages here).
fn array_to_bytes(
    id: &str,
    params: &[(&'static str, ParamValue)],
    dtype: DType,
) -> Box<dyn ArrayToBytes> {
    let def = registry::find(id).unwrap();
    let mut config = StageConfig {
        stage: def.id,
        params: def
            .params
            .iter()
            .filter_map(|p| Some((p.name, p.default_value()?)))
            .collect(),
    };
    config.params.extend(params.iter().cloned());
    match (def.create)(&config, StageInput { dtype }) {
        Ok(Stage::ArrayToBytes(codec)) => codec,
        _ => panic!("{id} is an array->bytes stage for {dtype}"),
    }
}

/// numcodecs-jpeg2000's header of a stream: dtype, shape, version.
type Jpeg2000Header = (Jpeg2000DType, Vec<usize>, String);

/// A JPEG 2000 stream of a 4 x 8 x 8 uint16 chunk, opened: its header and the rest (one
/// codestream per plane).
fn jpeg2000_stream() -> (Box<dyn ArrayToBytes>, Jpeg2000Header, Vec<u8>) {
    let codec = array_to_bytes(
        "jpeg2000",
        &[("psnr", ParamValue::Float(50.0))],
        DType::Uint16,
    );
    let chunk = ArrayD::from_shape_fn(IxDyn(&[4, 8, 8]), |ix| {
        (ix[0] * 640 + ix[1] * 80 + ix[2] * 9) as u16
    })
    .into_nd();
    let sealed = codec.encode(&chunk).unwrap();
    let payload = guard::open("jpeg2000", &sealed).unwrap();
    let (header, planes) = postcard::take_from_bytes(payload).unwrap();
    (codec, header, planes.to_vec())
}

/// Decodes `header` and `planes` (sealed with a valid checksum, as a stream crafted on purpose
/// would be) as a 4 x 8 x 8 chunk, returning the error and the largest allocation.
fn decode_jpeg2000(
    codec: &dyn ArrayToBytes,
    header: &Jpeg2000Header,
    planes: &[u8],
) -> (Result<(), String>, usize) {
    let mut payload = postcard::to_stdvec(header).unwrap();
    payload.extend_from_slice(planes);
    let sealed = guard::seal(payload);
    let (result, largest) = largest_allocation(|| codec.decode(&sealed, &[4, 8, 8]));
    (result.map(drop).map_err(|e| e.to_string()), largest)
}

/// fuzz target `stage_decode`: numcodecs-jpeg2000 allocated the array its header declared
/// (160 GB, or a panic when the shape's size overflowed) before decoding a plane.
#[test]
fn jpeg2000_header_of_another_shape_is_refused_before_allocating() {
    let (codec, (dtype, shape, version), planes) = jpeg2000_stream();
    assert_eq!(shape, [4, 8, 8]);
    for declared in [
        vec![4, 8, 1 << 22],
        vec![4, 1 << 40, 8],
        vec![usize::MAX, 2, 8],
        vec![4, 8, 9],
    ] {
        let (result, largest) = decode_jpeg2000(
            &*codec,
            &(dtype, declared.clone(), version.clone()),
            &planes,
        );
        assert!(
            largest < ALLOCATION_LIMIT,
            "{declared:?}: allocated {largest} bytes at once"
        );
        assert_eq!(
            result.unwrap_err(),
            format!(
                "stage jpeg2000: corrupt stream: the header declares shape {declared:?}, the chunk is [4, 8, 8]"
            )
        );
    }
}

/// fuzz target `stage_decode`: a codestream whose SIZ marker declared another image size made
/// OpenJPEG allocate beyond 2 GB; one declaring a subsampled component would have
/// numcodecs-jpeg2000 read `width x height` values from the quarter of that it decoded.
#[test]
fn jpeg2000_codestream_of_another_plane_is_refused_before_openjpeg() {
    let (codec, header, planes) = jpeg2000_stream();
    let clean = decode_jpeg2000(&*codec, &header, &planes).0;
    assert!(clean.is_ok(), "{clean:?}");
    // The first plane's codestream follows its postcard length (two bytes here).
    let (first, _) = postcard::take_from_bytes::<&[u8]>(&planes).unwrap();
    let start =
        planes.len() - postcard::take_from_bytes::<&[u8]>(&planes).unwrap().1.len() - first.len();
    assert_eq!(&planes[start..start + 4], [0xFF, 0x4F, 0xFF, 0x51]);
    let cases: [(&str, usize, &[u8], &str); 3] = [
        (
            "Xsiz",
            8,
            &2117u32.to_be_bytes(),
            "plane 0: the SIZ marker declares an image of 2117 x 8 at [0, 0] in tiles of 8 x 8, the plane is 8 x 8",
        ),
        (
            "XTsiz",
            24,
            &0u32.to_be_bytes(),
            "plane 0: the SIZ marker declares an image of 8 x 8 at [0, 0] in tiles of 0 x 8, the plane is 8 x 8",
        ),
        (
            "XRsiz",
            43,
            &[2],
            "plane 0: the SIZ marker subsamples the component by 2 x 1",
        ),
    ];
    for (field, offset, value, expected) in cases {
        let mut forged = planes.clone();
        forged[start + offset..start + offset + value.len()].copy_from_slice(value);
        let (result, _) = decode_jpeg2000(&*codec, &header, &forged);
        assert_eq!(
            result.unwrap_err(),
            format!("stage jpeg2000: corrupt stream: {expected}"),
            "{field}"
        );
    }
}
