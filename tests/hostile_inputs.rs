//! What fuzzing found (the targets in `fuzz/`, see `.ci/fuzz`): each test replays an input on
//! which a fuzz target crashed, panicked or allocated what a forged size asked for, and checks
//! that it is now an error naming the cause, made with bounded memory.

use std::path::Path;

use photonqa::data::SourceSpec;

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
