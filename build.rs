//! Records the versions of the codec and I/O crates from Cargo.lock, for the provenance of
//! every result (`env!("PHOTONQA_CRATE_VERSIONS")`).

use std::fs;

const RECORDED: &[&str] = &[
    "byteshuffle",
    "flate2",
    "hdf5-metno",
    "lz4_flex",
    "ndarray",
    "zlib-rs",
    "zstd",
    "zstd-sys",
];

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let lock = fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut versions = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_string());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take())
            && RECORDED.contains(&n.as_str())
        {
            versions.push(format!("{n}={}", v.trim_matches('"')));
        }
    }
    println!(
        "cargo:rustc-env=PHOTONQA_CRATE_VERSIONS={}",
        versions.join(";")
    );
}
