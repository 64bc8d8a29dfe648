//! Sealed files: every file of `DIR/units` that photonqa reads back (the manifest, point units'
//! rows, the slab units' postcard partials and `prepare.bin`) ends with a trailer holding the
//! CRC-32 and the length of what comes before it, checked on every read. A unit's files pass
//! through shared cluster storage and live for days; a changed byte in a partial would
//! otherwise change a merged metric silently (a byte of an f64 is a valid f64).
//!
//! The trailer is one text line of [`TRAILER_LEN`] bytes,
//! `crc32 <8 hex digits> bytes <20 decimal digits>\n`. CRC-32 (IEEE) finds every change of up
//! to 32 consecutive bits, so every changed byte, and the length finds every cut or extension;
//! a change in the trailer itself makes it disagree with the payload.

use std::fs;
use std::path::Path;

/// Length of the trailer.
pub const TRAILER_LEN: usize = 42;

/// What a sealed file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sealed {
    /// No such file.
    Missing,
    /// The file's content does not match its trailer: why, naming the file.
    Damaged(String),
    /// The payload, as written.
    Intact(Vec<u8>),
}

/// The trailer of `payload`.
fn trailer(payload: &[u8]) -> String {
    let trailer = format!(
        "crc32 {:08x} bytes {:020}\n",
        crc32fast::hash(payload),
        payload.len()
    );
    debug_assert_eq!(trailer.len(), TRAILER_LEN);
    trailer
}

/// `payload` followed by its trailer.
pub fn seal(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(payload.len() + TRAILER_LEN);
    bytes.extend_from_slice(payload);
    bytes.extend_from_slice(trailer(payload).as_bytes());
    bytes
}

/// The payload of the sealed `bytes`, or `None` when they do not match their trailer.
pub fn unseal(bytes: &[u8]) -> Option<&[u8]> {
    let split = bytes.len().checked_sub(TRAILER_LEN)?;
    let (payload, stored) = bytes.split_at(split);
    (stored == trailer(payload).as_bytes()).then_some(payload)
}

/// Writes `payload` sealed to `path`, atomically; errors name the file.
pub fn write(path: &Path, payload: &[u8]) -> Result<(), String> {
    crate::data::write_atomically(path, &seal(payload))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads the sealed file `path`; `Err` is an I/O error naming the file.
pub fn read(path: &Path) -> Result<Sealed, String> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Sealed::Missing),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    Ok(match unseal(&bytes) {
        Some(payload) => Sealed::Intact(payload.to_vec()),
        None => Sealed::Damaged(format!(
            "{}: damaged: its content does not match its checksum (a changed byte, a cut, or written before photonqa sealed unit files)",
            path.display()
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_changed_byte_and_every_cut_is_found() {
        let payload: Vec<u8> = (0..300u32).map(|i| (i * 37 % 256) as u8).collect();
        let sealed = seal(&payload);
        assert_eq!(sealed.len(), payload.len() + TRAILER_LEN);
        assert_eq!(unseal(&sealed), Some(payload.as_slice()));
        assert_eq!(
            &sealed[payload.len()..],
            format!(
                "crc32 {:08x} bytes 00000000000000000300\n",
                crc32fast::hash(&payload)
            )
            .as_bytes()
        );
        for position in 0..sealed.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut damaged = sealed.clone();
                damaged[position] ^= flip;
                assert_eq!(unseal(&damaged), None, "byte {position} ^ {flip:#04x}");
            }
        }
        for cut in 0..sealed.len() {
            assert_eq!(unseal(&sealed[..cut]), None, "cut at {cut}");
        }
        assert_eq!(unseal(&[sealed.as_slice(), b"x"].concat()), None);
        assert_eq!(unseal(&seal(b"")), Some(&b""[..]));
    }
}
