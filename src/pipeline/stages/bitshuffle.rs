//! `bitshuffle`: bit transpose within blocks (Masui et al. 2015), the layout of the bitshuffle
//! library and HDF5 filter 32008 without its LZ4 step.
//!
//! Written here because no standalone crate provides it: the Rust routes to bitshuffle bundle a
//! second HDF5 (`hdf5-bitshuffle`) or the Blosc2 C library behind bindgen, for ~40 lines of bit
//! twiddling.

use crate::pipeline::{
    BytesToBytes, CodecError, Stage, StageConfig, StageDef, StageInput, StageKind,
};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "bitshuffle",
    aliases: &[],
    kind: StageKind::BytesToBytes,
    summary: "bit shuffle in 8 KiB blocks: groups the j-th bits of all elements (element size from the array dtype)",
    lossless: true,
    params: &[],
    create,
};

/// Target block size in bytes, as the bitshuffle library's default.
const BLOCK_BYTES: usize = 8192;

fn create(_: &StageConfig, input: StageInput) -> Result<Stage, String> {
    Ok(Stage::BytesToBytes(Box::new(BitShuffle {
        element_size: input.dtype.size(),
    })))
}

struct BitShuffle {
    element_size: usize,
}

/// Transposes an 8x8 bit matrix held in a u64 (row r = byte r); Hacker's Delight 7-3.
fn transpose_8x8(mut x: u64) -> u64 {
    let mut t = (x ^ (x >> 7)) & 0x00AA_00AA_00AA_00AA;
    x ^= t ^ (t << 7);
    t = (x ^ (x >> 14)) & 0x0000_CCCC_0000_CCCC;
    x ^= t ^ (t << 14);
    t = (x ^ (x >> 28)) & 0x0000_0000_F0F0_F0F0;
    x ^ t ^ (t << 28)
}

impl BitShuffle {
    /// Blocks of whole groups of 8 elements; the rest (< 8 elements, partial element) is copied.
    fn blocks(&self, len: usize) -> (Vec<std::ops::Range<usize>>, usize) {
        let size = self.element_size;
        let block_elems = (BLOCK_BYTES / size / 8 * 8).max(8);
        let elements = len / size / 8 * 8;
        let blocks = (0..elements)
            .step_by(block_elems)
            .map(|start| start * size..(start + block_elems).min(elements) * size)
            .collect();
        (blocks, elements * size)
    }

    /// Shuffles (`forward`) or unshuffles one block of `n` elements, `n` a multiple of 8.
    fn transpose_block(&self, input: &[u8], out: &mut [u8], forward: bool) {
        let size = self.element_size;
        let groups = input.len() / size / 8;
        for byte in 0..size {
            for group in 0..groups {
                // Shuffled layout: [byte position][bit][group of 8 elements].
                let shuffled = |bit: usize| (byte * 8 + bit) * groups + group;
                let mut x = 0u64;
                for m in 0..8 {
                    let source = if forward {
                        input[(group * 8 + m) * size + byte]
                    } else {
                        input[shuffled(m)]
                    };
                    x |= (source as u64) << (8 * m);
                }
                let y = transpose_8x8(x);
                for m in 0..8 {
                    let target = if forward {
                        shuffled(m)
                    } else {
                        (group * 8 + m) * size + byte
                    };
                    out[target] = (y >> (8 * m)) as u8;
                }
            }
        }
    }

    fn apply(&self, input: &[u8], forward: bool) -> Vec<u8> {
        let mut out = input.to_vec();
        let (blocks, _) = self.blocks(input.len());
        for block in blocks {
            self.transpose_block(&input[block.clone()], &mut out[block], forward);
        }
        out
    }
}

impl BytesToBytes for BitShuffle {
    fn encode(&self, input: &[u8]) -> Result<Vec<u8>, CodecError> {
        Ok(self.apply(input, true))
    }
    fn decode(&self, encoded: &[u8]) -> Result<Vec<u8>, CodecError> {
        Ok(self.apply(encoded, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_matches_naive_bit_loop() {
        let x = 0x0123_4567_89AB_CDEFu64;
        let y = transpose_8x8(x);
        for r in 0..8 {
            for c in 0..8 {
                assert_eq!((x >> (8 * r + c)) & 1, (y >> (8 * c + r)) & 1);
            }
        }
    }

    #[test]
    fn groups_bits_of_all_elements() {
        // 8 uint16 elements 1, 1, ...: bit 0 of byte 0 is set in every element.
        let input: Vec<u8> = (0..8).flat_map(|_| [1u8, 0]).collect();
        let out = BitShuffle { element_size: 2 }.encode(&input).unwrap();
        assert_eq!(out, [0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn round_trips_with_partial_block_and_tail() {
        let stage = BitShuffle { element_size: 4 };
        let input: Vec<u8> = (0..(BLOCK_BYTES * 2 + 4 * 13 + 3))
            .map(|i| (i * 7919 % 251) as u8)
            .collect();
        let encoded = stage.encode(&input).unwrap();
        assert_ne!(encoded, input);
        assert_eq!(encoded[encoded.len() - 3..], input[input.len() - 3..]);
        assert_eq!(stage.decode(&encoded).unwrap(), input);
    }
}
