//! What the codec stages backed by C and C++ libraries share (`sz3`, `zfp`, `jpeg2000`, and
//! `pcodec` for uniformity): a checksum around their streams and the bridge to the ndarray 0.16
//! arrays that the `numcodecs-*` crates take.
//!
//! Why a checksum: SZ3 (C++), ZFP and OpenJPEG (C) trust their input. `sz3-sys` calls SZ3
//! without catching C++ exceptions (one escaping through the FFI boundary aborts the process),
//! ZFP's bit reader does not check the end of its buffer (a truncated stream is read past its
//! end), and the `numcodecs-*` headers declare the shape to allocate. So every stream gets a CRC-32 (IEEE, `crc32fast`) of its bytes appended, and
//! [`open`] verifies it before a decoder sees a byte: a flipped bit or a cut stream is a
//! `corrupt stream` error, never a crash. 4 bytes per chunk, counted in the rate.

use ndarray::{ArrayD, IxDyn};
use numcodecs::AnyArrayViewMut;

use crate::data::{Element, c_order};
use crate::pipeline::CodecError;

/// Bytes the checksum adds to every encoded chunk.
pub const CHECKSUM_BYTES: usize = 4;

/// `payload` followed by its CRC-32, little-endian.
pub fn seal(mut payload: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    payload
}

/// The payload of a stream made by [`seal`], after checking its CRC-32.
pub fn open<'a>(stage: &'static str, bytes: &'a [u8]) -> Result<&'a [u8], CodecError> {
    let Some(split) = bytes.len().checked_sub(CHECKSUM_BYTES) else {
        return Err(CodecError::new(
            stage,
            format!(
                "corrupt stream: {} bytes, shorter than its checksum",
                bytes.len()
            ),
        ));
    };
    let (payload, stored) = bytes.split_at(split);
    let stored = u32::from_le_bytes(stored.try_into().expect("4 bytes"));
    let actual = crc32fast::hash(payload);
    if actual != stored {
        return Err(CodecError::new(
            stage,
            format!("corrupt stream: checksum {actual:08x} does not match the stored {stored:08x}"),
        ));
    }
    Ok(payload)
}

/// An element type the `numcodecs-*` crates take, with its ndarray 0.16 views.
pub trait Numcodecs: Element {
    /// The matching variant of numcodecs' mutable view.
    fn any_mut(view: ndarray016::ArrayViewMutD<'_, Self>) -> AnyArrayViewMut<'_>;
}

macro_rules! numcodecs_element {
    ($($t:ty => $variant:ident),*) => {
        $(impl Numcodecs for $t {
            fn any_mut(view: ndarray016::ArrayViewMutD<'_, Self>) -> AnyArrayViewMut<'_> {
                AnyArrayViewMut::$variant(view)
            }
        })*
    };
}

numcodecs_element!(u8 => U8, u16 => U16, u32 => U32, u64 => U64, i8 => I8, i16 => I16,
    i32 => I32, i64 => I64, f32 => F32, f64 => F64);

/// Runs `f` on `a` as an ndarray 0.16 view (C order; copied only when `a` is not).
pub fn with_view<T: Element, R>(
    a: &ArrayD<T>,
    f: impl FnOnce(ndarray016::ArrayViewD<'_, T>) -> R,
) -> R {
    let data = c_order(a);
    let view =
        ndarray016::ArrayViewD::from_shape(a.shape(), &data).expect("C-order data fits its shape");
    f(view)
}

/// A new array of `shape` filled by `f` through an ndarray 0.16 view: the decoders write into
/// memory sized by the chunk's known shape, never by what a stream declares.
pub fn decode_into<T: Element, E>(
    shape: &[usize],
    f: impl FnOnce(ndarray016::ArrayViewMutD<'_, T>) -> Result<(), E>,
) -> Result<ArrayD<T>, E> {
    let mut data = vec![T::default(); shape.iter().product()];
    f(ndarray016::ArrayViewMutD::from_shape(shape, &mut data).expect("sized to its shape"))?;
    Ok(ArrayD::from_shape_vec(IxDyn(shape), data).expect("sized to its shape"))
}

/// The message of an error and its sources, on one line.
pub fn chain_message(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_catches_flips_and_cuts() {
        let sealed = seal(b"some payload".to_vec());
        assert_eq!(open("t", &sealed).unwrap(), b"some payload");
        for i in 0..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[i] ^= 0x10;
            assert!(open("t", &flipped).unwrap_err().message.contains("corrupt"));
        }
        for len in 0..sealed.len() {
            assert!(open("t", &sealed[..len]).is_err(), "cut to {len}");
        }
    }
}
