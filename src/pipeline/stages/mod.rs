//! The stages, one file each; see [`super::registry`].

pub mod bin;
pub mod bitround;
pub mod bitshuffle;
pub mod blosc;
pub mod bytes;
pub mod command;
pub mod deflate;
pub mod denoise;
pub mod dictionary;
pub mod guard;
pub mod hdf5_filter;
pub mod jpeg2000;
pub mod lz4;
pub mod nbit;
pub mod pcodec;
pub mod poisson;
pub mod quantize;
pub mod scaleoffset;
pub mod shuffle;
pub mod sz3;
pub mod threshold;
pub mod veto;
pub mod zfp;
pub mod zstd;
