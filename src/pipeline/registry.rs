//! Every stage photonqa knows, in the order `photonqa stages` lists them.

use super::StageDef;
use super::stages;

/// The registered stages: a new stage is one file in `stages/` plus one line here.
pub static STAGES: &[&StageDef] = &[
    &stages::threshold::DEF,
    &stages::quantize::DEF,
    &stages::bitround::DEF,
    &stages::poisson::DEF,
    &stages::denoise::DEF,
    &stages::bin::DEF,
    &stages::veto::DEF,
    &stages::bytes::DEF,
    &stages::dictionary::DEF,
    &stages::command::DEF,
    &stages::pcodec::DEF,
    &stages::sz3::DEF,
    &stages::zfp::DEF,
    &stages::jpeg2000::DEF,
    &stages::scaleoffset::DEF,
    &stages::nbit::DEF,
    &stages::shuffle::DEF,
    &stages::bitshuffle::DEF,
    &stages::blosc::DEF,
    &stages::zstd::DEF,
    &stages::deflate::DEF,
    &stages::lz4::DEF,
];

/// The stage registered under `id` or one of its aliases.
pub fn find(id: &str) -> Option<&'static StageDef> {
    STAGES
        .iter()
        .copied()
        .find(|s| s.id == id || s.aliases.contains(&id))
}

/// All stage ids, for error messages.
pub fn ids() -> Vec<&'static str> {
    STAGES.iter().map(|s| s.id).collect()
}
