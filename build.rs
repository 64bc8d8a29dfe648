//! Records the versions of the codec and I/O crates from Cargo.lock, for the provenance of
//! every result (`env!("PHOTONQA_CRATE_VERSIONS")`).

use std::fs;

const RECORDED: &[&str] = &[
    "blosc-rs",
    "byteshuffle",
    "crc32fast",
    "flate2",
    "hdf5-metno",
    "lz4_flex",
    "ndarray",
    "libz-sys",
    "numcodecs-jpeg2000",
    "numcodecs-sz3",
    "numcodecs-zfp",
    "openjpeg-sys",
    "pco",
    "sz3",
    "sz3-sys",
    "zfp-sys",
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
    // flate2's `zlib` feature links the system zlib found by pkg-config (the one h5py uses).
    let zlib = std::process::Command::new("pkg-config")
        .args(["--modversion", "zlib"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "bundled".into());
    versions.push(format!("libz={zlib}"));
    println!(
        "cargo:rustc-env=PHOTONQA_CRATE_VERSIONS={}",
        versions.join(";")
    );
}
