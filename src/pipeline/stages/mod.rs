//! The stages, one file each; see [`super::registry`].

pub mod bitround;
pub mod bitshuffle;
pub mod bytes;
pub mod command;
pub mod deflate;
pub mod dictionary;
pub mod lz4;
pub mod quantize;
pub mod shuffle;
pub mod threshold;
pub mod zstd;
