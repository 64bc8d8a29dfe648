//! `dictionary`: each distinct value stored once, plus one index per element in the narrowest
//! unsigned width. Effective after thresholding or quantisation, which leave few distinct values;
//! HDF5 has no such filter (the seed workflow noted it missing).
//!
//! Layout (little-endian): `u8` index width (1, 2 or 4), `u32` number of distinct values `k`,
//! `k` values of the array dtype in ascending order, then one index per element in C order.

use std::collections::{HashMap, HashSet};

use ndarray::{ArrayD, IxDyn};

use crate::data::{DType, Element, IntoNdArray, NdArray, c_order};
use crate::pipeline::{
    ArrayToBytes, CodecError, Stage, StageConfig, StageDef, StageInput, StageKind,
};
use crate::{with_array, with_dtype};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "dictionary",
    aliases: &["dict"],
    kind: StageKind::ArrayToBytes,
    summary: "distinct values once plus indices of the narrowest width (u8/u16/u32)",
    lossless: true,
    params: &[],
    create,
};

fn create(_: &StageConfig, input: StageInput) -> Result<Stage, String> {
    Ok(Stage::ArrayToBytes(Box::new(Dictionary {
        dtype: input.dtype,
    })))
}

struct Dictionary {
    dtype: DType,
}

fn index_width(distinct: usize) -> usize {
    match distinct {
        0..=256 => 1,
        257..=65536 => 2,
        _ => 4,
    }
}

fn encode_typed<T: Element>(values: &ArrayD<T>) -> Vec<u8> {
    let values = c_order(values);
    let mut distinct: Vec<T> = Vec::new();
    let mut seen = HashSet::new();
    for &v in values.iter() {
        if seen.insert(v.bits()) {
            distinct.push(v);
        }
    }
    distinct.sort_by(|a, b| {
        a.to_f64()
            .total_cmp(&b.to_f64())
            .then(a.bits().cmp(&b.bits()))
    });
    let index: HashMap<u64, u32> = distinct
        .iter()
        .enumerate()
        .map(|(i, v)| (v.bits(), i as u32))
        .collect();
    let width = index_width(distinct.len());
    let mut out = Vec::with_capacity(5 + distinct.len() * T::DTYPE.size() + values.len() * width);
    out.push(width as u8);
    out.extend_from_slice(&(distinct.len() as u32).to_le_bytes());
    out.extend_from_slice(bytemuck::cast_slice(&distinct));
    for v in values.iter() {
        out.extend_from_slice(&index[&v.bits()].to_le_bytes()[..width]);
    }
    out
}

fn decode_typed<T: Element>(bytes: &[u8], shape: &[usize]) -> Result<ArrayD<T>, String> {
    let size = T::DTYPE.size();
    let (&width, rest) = bytes.split_first().ok_or("empty stream")?;
    let width = width as usize;
    if ![1, 2, 4].contains(&width) {
        return Err(format!("index width {width} is not 1, 2 or 4"));
    }
    let count = rest
        .get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or("truncated header")?;
    let n: usize = shape.iter().product();
    let expected = 4 + count * size + n * width;
    if rest.len() != expected {
        return Err(format!(
            "{} bytes where the header announces {expected}",
            rest.len()
        ));
    }
    let table: Vec<T> = bytemuck::pod_collect_to_vec(&rest[4..4 + count * size]);
    let values = rest[4 + count * size..]
        .chunks_exact(width)
        .map(|b| {
            let mut word = [0u8; 4];
            word[..width].copy_from_slice(b);
            let i = u32::from_le_bytes(word) as usize;
            table
                .get(i)
                .copied()
                .ok_or_else(|| format!("index {i} beyond {count} values"))
        })
        .collect::<Result<Vec<T>, String>>()?;
    Ok(ArrayD::from_shape_vec(IxDyn(shape), values).expect("length checked"))
}

impl ArrayToBytes for Dictionary {
    fn encode(&self, input: &NdArray) -> Result<Vec<u8>, CodecError> {
        Ok(with_array!(input, a => encode_typed(a)))
    }
    fn decode(&self, bytes: &[u8], shape: &[usize]) -> Result<NdArray, CodecError> {
        with_dtype!(self.dtype, T => decode_typed::<T>(bytes, shape).map(IntoNdArray::into_nd))
            .map_err(|e| CodecError::new(DEF.id, format!("corrupt stream: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_few_values_with_byte_indices() {
        let a = ArrayD::from_shape_fn(IxDyn(&[10, 10]), |ix| {
            [0.0f32, 2.5, -1.0][(ix[0] + ix[1]) % 3]
        });
        let bytes = encode_typed(&a);
        assert_eq!(bytes[0], 1);
        assert_eq!(bytes.len(), 1 + 4 + 3 * 4 + 100);
        assert_eq!(f32::from_le_bytes(bytes[5..9].try_into().unwrap()), -1.0);
        assert_eq!(decode_typed::<f32>(&bytes, &[10, 10]).unwrap(), a);
    }

    #[test]
    fn widens_indices_past_256_values() {
        let a = ArrayD::from_shape_fn(IxDyn(&[300, 2]), |ix| ix[0] as u16);
        let bytes = encode_typed(&a);
        assert_eq!(bytes[0], 2);
        assert_eq!(decode_typed::<u16>(&bytes, &[300, 2]).unwrap(), a);
    }

    #[test]
    fn keeps_negative_zero_apart() {
        let a = ArrayD::from_shape_vec(IxDyn(&[1, 2]), vec![0.0f64, -0.0]).unwrap();
        let back = decode_typed::<f64>(&encode_typed(&a), &[1, 2]).unwrap();
        assert!(back[[0, 1]].is_sign_negative() && back[[0, 0]].is_sign_positive());
    }

    #[test]
    fn rejects_corrupt_streams() {
        let a = ArrayD::from_shape_fn(IxDyn(&[4, 4]), |ix| (ix[0] * ix[1]) as i32);
        let mut bytes = encode_typed(&a);
        assert!(decode_typed::<i32>(&bytes[..bytes.len() - 1], &[4, 4]).is_err());
        let last = bytes.len() - 1;
        bytes[last] = 200;
        assert!(
            decode_typed::<i32>(&bytes, &[4, 4])
                .unwrap_err()
                .contains("index 200")
        );
    }
}
