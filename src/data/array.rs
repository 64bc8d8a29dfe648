//! Typed n-dimensional arrays of any numeric dtype, as they flow between pipeline stages.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

#[cfg(target_endian = "big")]
compile_error!("photonqa reads and writes little-endian data in place: little-endian targets only");

use ndarray::{ArrayD, Axis, IxDyn};
use serde::{Deserialize, Serialize};

/// Element type of an array, named as NumPy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// Unsigned 8-bit integer.
    Uint8,
    /// Unsigned 16-bit integer.
    Uint16,
    /// Unsigned 32-bit integer.
    Uint32,
    /// Unsigned 64-bit integer.
    Uint64,
    /// Signed 8-bit integer.
    Int8,
    /// Signed 16-bit integer.
    Int16,
    /// Signed 32-bit integer.
    Int32,
    /// Signed 64-bit integer.
    Int64,
    /// IEEE 754 binary32.
    Float32,
    /// IEEE 754 binary64.
    Float64,
}

impl DType {
    /// Every dtype, in a stable order (used for help texts).
    pub const ALL: [DType; 10] = [
        DType::Uint8,
        DType::Uint16,
        DType::Uint32,
        DType::Uint64,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::Float32,
        DType::Float64,
    ];

    /// NumPy name (`float32`, `uint8`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::Uint8 => "uint8",
            DType::Uint16 => "uint16",
            DType::Uint32 => "uint32",
            DType::Uint64 => "uint64",
            DType::Int8 => "int8",
            DType::Int16 => "int16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::Float32 => "float32",
            DType::Float64 => "float64",
        }
    }

    /// Parses a NumPy dtype name; the error lists the allowed names.
    pub fn parse(name: &str) -> Result<DType, String> {
        DType::ALL
            .into_iter()
            .find(|d| d.name() == name)
            .ok_or_else(|| {
                let names: Vec<_> = DType::ALL.iter().map(|d| d.name()).collect();
                format!("unknown dtype '{name}' (allowed: {})", names.join(", "))
            })
    }

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::Uint8 | DType::Int8 => 1,
            DType::Uint16 | DType::Int16 => 2,
            DType::Uint32 | DType::Int32 | DType::Float32 => 4,
            DType::Uint64 | DType::Int64 | DType::Float64 => 8,
        }
    }

    /// True for floating-point dtypes.
    pub fn is_float(self) -> bool {
        matches!(self, DType::Float32 | DType::Float64)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A numeric element type: conversion to and from `f64`; plain old data, so that slices of it
/// are their little-endian bytes (photonqa builds for little-endian targets only).
pub trait Element:
    bytemuck::Pod + Send + Sync + PartialEq + PartialOrd + Default + fmt::Debug + 'static
{
    /// The dtype of this element type.
    const DTYPE: DType;
    /// Value as `f64` (exact for every type but 64-bit integers beyond 2^53).
    fn to_f64(self) -> f64;
    /// Value from `f64`; for integers rounded half to even (NumPy's `rint`) and saturated to
    /// the type's range.
    fn from_f64(v: f64) -> Self;
    /// Bit pattern widened to `u64` (distinguishes -0.0 from 0.0; used for exact comparisons).
    fn bits(self) -> u64;
}

macro_rules! impl_element {
    ($t:ty, $dtype:ident, $bits:expr, float) => {
        impl Element for $t {
            const DTYPE: DType = DType::$dtype;
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn bits(self) -> u64 {
                $bits(self)
            }
        }
    };
    ($t:ty, $dtype:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$dtype;
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                // `as` saturates at the type's bounds and maps NaN to 0.
                v.round_ties_even() as $t
            }
            fn bits(self) -> u64 {
                self as u64
            }
        }
    };
}

impl_element!(u8, Uint8);
impl_element!(u16, Uint16);
impl_element!(u32, Uint32);
impl_element!(u64, Uint64);
impl_element!(i8, Int8);
impl_element!(i16, Int16);
impl_element!(i32, Int32);
impl_element!(i64, Int64);
impl_element!(f32, Float32, |v: f32| v.to_bits() as u64, float);
impl_element!(f64, Float64, f64::to_bits, float);

/// An n-dimensional array of one of the supported dtypes (C order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NdArray {
    /// `uint8` data.
    Uint8(ArrayD<u8>),
    /// `uint16` data.
    Uint16(ArrayD<u16>),
    /// `uint32` data.
    Uint32(ArrayD<u32>),
    /// `uint64` data.
    Uint64(ArrayD<u64>),
    /// `int8` data.
    Int8(ArrayD<i8>),
    /// `int16` data.
    Int16(ArrayD<i16>),
    /// `int32` data.
    Int32(ArrayD<i32>),
    /// `int64` data.
    Int64(ArrayD<i64>),
    /// `float32` data.
    Float32(ArrayD<f32>),
    /// `float64` data.
    Float64(ArrayD<f64>),
}

/// Runs `$body` with `$a` bound to the typed inner array of an [`NdArray`].
#[macro_export]
macro_rules! with_array {
    ($arr:expr, $a:ident => $body:expr) => {
        match $arr {
            $crate::data::NdArray::Uint8($a) => $body,
            $crate::data::NdArray::Uint16($a) => $body,
            $crate::data::NdArray::Uint32($a) => $body,
            $crate::data::NdArray::Uint64($a) => $body,
            $crate::data::NdArray::Int8($a) => $body,
            $crate::data::NdArray::Int16($a) => $body,
            $crate::data::NdArray::Int32($a) => $body,
            $crate::data::NdArray::Int64($a) => $body,
            $crate::data::NdArray::Float32($a) => $body,
            $crate::data::NdArray::Float64($a) => $body,
        }
    };
}

/// Runs `$body` with the type alias `$t` set to the Rust element type of a [`DType`].
#[macro_export]
macro_rules! with_dtype {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            $crate::data::DType::Uint8 => {
                type $t = u8;
                $body
            }
            $crate::data::DType::Uint16 => {
                type $t = u16;
                $body
            }
            $crate::data::DType::Uint32 => {
                type $t = u32;
                $body
            }
            $crate::data::DType::Uint64 => {
                type $t = u64;
                $body
            }
            $crate::data::DType::Int8 => {
                type $t = i8;
                $body
            }
            $crate::data::DType::Int16 => {
                type $t = i16;
                $body
            }
            $crate::data::DType::Int32 => {
                type $t = i32;
                $body
            }
            $crate::data::DType::Int64 => {
                type $t = i64;
                $body
            }
            $crate::data::DType::Float32 => {
                type $t = f32;
                $body
            }
            $crate::data::DType::Float64 => {
                type $t = f64;
                $body
            }
        }
    };
}

/// Conversion between a typed `ArrayD<T>` and [`NdArray`].
pub trait IntoNdArray {
    /// Wraps the array in the matching [`NdArray`] variant.
    fn into_nd(self) -> NdArray;
}

/// Borrowing a typed array out of an [`NdArray`].
pub trait FromNdArray: Sized {
    /// The typed array if the dtype matches.
    fn from_nd(arr: NdArray) -> Option<ArrayD<Self>>;
    /// A reference to the typed array if the dtype matches.
    fn ref_nd(arr: &NdArray) -> Option<&ArrayD<Self>>;
}

macro_rules! impl_conv {
    ($t:ty, $v:ident) => {
        impl IntoNdArray for ArrayD<$t> {
            fn into_nd(self) -> NdArray {
                NdArray::$v(self)
            }
        }
        impl FromNdArray for $t {
            fn from_nd(arr: NdArray) -> Option<ArrayD<$t>> {
                match arr {
                    NdArray::$v(a) => Some(a),
                    _ => None,
                }
            }
            fn ref_nd(arr: &NdArray) -> Option<&ArrayD<$t>> {
                match arr {
                    NdArray::$v(a) => Some(a),
                    _ => None,
                }
            }
        }
    };
}
impl_conv!(u8, Uint8);
impl_conv!(u16, Uint16);
impl_conv!(u32, Uint32);
impl_conv!(u64, Uint64);
impl_conv!(i8, Int8);
impl_conv!(i16, Int16);
impl_conv!(i32, Int32);
impl_conv!(i64, Int64);
impl_conv!(f32, Float32);
impl_conv!(f64, Float64);

/// An error unless shapes `a` and `b` are equal, for arrays compared value by value.
pub fn check_same_shape(a: &[usize], b: &[usize]) -> Result<(), String> {
    if a == b {
        Ok(())
    } else {
        Err(format!("cannot compare shape {a:?} with shape {b:?}"))
    }
}

impl NdArray {
    /// The element type.
    pub fn dtype(&self) -> DType {
        with_array!(self, a => element_dtype(a))
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        with_array!(self, a => a.shape())
    }

    /// An error unless `other` has the same shape, for arrays compared value by value.
    pub fn check_same_shape(&self, other: &NdArray) -> Result<(), String> {
        check_same_shape(self.shape(), other.shape())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        with_array!(self, a => a.len())
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of the data in bytes.
    pub fn nbytes(&self) -> usize {
        self.len() * self.dtype().size()
    }

    /// The values as float64 (exact for every dtype but 64-bit integers beyond 2^53).
    pub fn to_f64(&self) -> ArrayD<f64> {
        with_array!(self, a => a.mapv(Element::to_f64))
    }

    /// Little-endian bytes in C order.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        with_array!(self, a => bytemuck::cast_slice(&c_order(a)).to_vec())
    }

    /// Array of `dtype` and `shape` from little-endian bytes in C order.
    pub fn from_le_bytes(dtype: DType, shape: &[usize], bytes: &[u8]) -> Result<NdArray, String> {
        let n: usize = shape.iter().product();
        let size = dtype.size();
        if bytes.len() != n * size {
            return Err(format!(
                "{} bytes cannot hold a {dtype} array of shape {shape:?} ({} bytes)",
                bytes.len(),
                n * size
            ));
        }
        Ok(with_dtype!(dtype, T => {
            let values: Vec<T> = bytemuck::pod_collect_to_vec(bytes);
            ArrayD::from_shape_vec(IxDyn(shape), values)
                .expect("length checked above")
                .into_nd()
        }))
    }

    /// A copy of rows `rows` along axis 0.
    pub fn slice_rows(&self, rows: std::ops::Range<usize>) -> NdArray {
        with_array!(self, a => a.slice_axis(Axis(0), rows.into()).to_owned().into_nd())
    }

    /// Concatenates arrays of one dtype along axis 0.
    pub fn concatenate(parts: &[NdArray]) -> Result<NdArray, String> {
        let first = parts.first().ok_or("nothing to concatenate")?;
        with_dtype!(first.dtype(), T => {
            let views: Vec<_> = parts
                .iter()
                .map(|p| {
                    T::ref_nd(p)
                        .map(|a| a.view())
                        .ok_or_else(|| format!("cannot concatenate {} with {}", p.dtype(), T::DTYPE))
                })
                .collect::<Result<_, _>>()?;
            ndarray::concatenate(Axis(0), &views)
                .map(IntoNdArray::into_nd)
                .map_err(|e| format!("cannot concatenate slabs: {e}"))
        })
    }
}

/// The elements of `a` in C order: borrowed when `a` is in standard layout (every array
/// photonqa makes is), copied otherwise. Hot loops run over this slice: it iterates many times
/// faster than ndarray's dynamic-dimension iterators.
pub fn c_order<T: Element>(a: &ArrayD<T>) -> Cow<'_, [T]> {
    match a.as_slice() {
        Some(values) => Cow::Borrowed(values),
        None => Cow::Owned(a.iter().copied().collect()),
    }
}

/// Rows `core` of an array of `rows` rows with `halo` more on each side, clamped to `0..rows`:
/// what a slab must hold for a metric or an analysis whose windows reach `halo` rows beyond the
/// rows it covers.
pub fn rows_with_halo(core: &Range<usize>, halo: usize, rows: usize) -> Range<usize> {
    core.start.saturating_sub(halo)..(core.end + halo).min(rows)
}

/// `other` as the typed array of the same element type as `like`, if its dtype matches.
pub fn typed_like<'a, T: FromNdArray>(
    _like: &ArrayD<T>,
    other: &'a NdArray,
) -> Option<&'a ArrayD<T>> {
    T::ref_nd(other)
}

fn element_dtype<T: Element>(_: &ArrayD<T>) -> DType {
    T::DTYPE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_bytes_round_trip_every_dtype() {
        for dtype in DType::ALL {
            let arr = with_dtype!(dtype, T => {
                ArrayD::from_shape_fn(IxDyn(&[3, 4]), |ix| T::from_f64((ix[0] * 4 + ix[1]) as f64 * 3.0 + 1.0)).into_nd()
            });
            let bytes = arr.to_le_bytes();
            assert_eq!(bytes.len(), 12 * dtype.size());
            let back = NdArray::from_le_bytes(dtype, &[3, 4], &bytes).unwrap();
            assert_eq!(back, arr, "{dtype}");
        }
    }

    #[test]
    fn from_le_bytes_rejects_wrong_length() {
        let err = NdArray::from_le_bytes(DType::Float32, &[2, 2], &[0; 15]).unwrap_err();
        assert!(err.contains("15 bytes"), "{err}");
    }

    #[test]
    fn parse_lists_allowed_names() {
        assert_eq!(DType::parse("uint16"), Ok(DType::Uint16));
        let err = DType::parse("float16").unwrap_err();
        assert!(err.contains("float32") && err.contains("uint8"), "{err}");
    }

    #[test]
    fn integer_from_f64_rounds_and_saturates() {
        assert_eq!(u8::from_f64(254.6), 255);
        assert_eq!(u8::from_f64(300.0), 255);
        assert_eq!(u8::from_f64(-3.0), 0);
        assert_eq!(i16::from_f64(-2.5), -2);
        assert_eq!(i16::from_f64(-3.5), -4);
    }
}
