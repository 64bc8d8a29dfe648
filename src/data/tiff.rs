//! TIFF inputs: a TIFF file is a stack of 2-D grayscale pages, read as an array of shape
//! `(pages, height, width)`; a single-page file is one slice `(1, height, width)`, so that a
//! glob of one-image files (`scan/*.tif`) stacks into a volume (see [`super::stack`]).
//!
//! Pages are 8/16/32/64-bit unsigned or signed integers or 32/64-bit floats, one sample per
//! pixel (BlackIsZero), uncompressed, LZW or deflate, in strips or tiles, with or without a
//! predictor; classic TIFF and BigTIFF. A slab decodes only its own pages, one at a time
//! straight into the slab's buffer, so reading stays within the memory budget the runner
//! derives from [`VolumeSource::row_bytes`] (one page).

use std::fs::File;
use std::io::BufReader;
use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;

use ndarray::{ArrayD, IxDyn};
use tiff::decoder::{Decoder, Limits};
use tiff::tags::Tag;

use super::DataError;
use super::array::{DType, IntoNdArray, NdArray};
use super::files::refuse_special_file;
use super::source::{VolumeSource, check_rows};
use crate::with_dtype;

/// A decoder positioned anywhere in the file.
type TiffDecoder = Decoder<BufReader<File>>;

/// A TIFF file read as `(pages, height, width)`.
pub struct TiffSource {
    /// Decoders not in use. A decoder remembers where the pages it has passed start, so a
    /// returned one seeks straight to any of them; concurrent reads take one each.
    idle: Mutex<Vec<TiffDecoder>>,
    path: std::path::PathBuf,
    shape: Vec<usize>,
    dtype: DType,
    label: String,
}

impl TiffSource {
    /// Opens `path` and checks that every page has the first page's height, width and dtype.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let label = path.display().to_string();
        let err = |m: String| DataError::new(&label, m);
        let mut decoder = new_decoder(path, &label)?;
        let (height, width, dtype) =
            page_layout(&mut decoder).map_err(|m| err(format!("page 0: {m}")))?;
        let mut pages = 1;
        while decoder.more_images() {
            decoder
                .next_image()
                .map_err(|e| err(format!("page {pages}: {e}")))?;
            let (h, w, d) =
                page_layout(&mut decoder).map_err(|m| err(format!("page {pages}: {m}")))?;
            if (h, w, d) != (height, width, dtype) {
                return Err(err(format!(
                    "page {pages} is {h}x{w} {d} but page 0 is {height}x{width} {dtype}: every page \
                     of a stack needs the same size and dtype"
                )));
            }
            pages += 1;
        }
        let source = TiffSource {
            idle: Mutex::new(vec![decoder]),
            path: path.to_path_buf(),
            shape: vec![pages, height, width],
            dtype,
            label,
        };
        Ok(source)
    }

    /// A decoder: an idle one, or a new one on the file.
    fn take_decoder(&self) -> Result<TiffDecoder, DataError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(decoder) => Ok(decoder),
            None => new_decoder(&self.path, &self.label),
        }
    }

    /// Decodes page `page` into `buffer` (its bytes, native-endian like the typed slab).
    fn read_page(
        &self,
        decoder: &mut TiffDecoder,
        page: usize,
        buffer: &mut [u8],
    ) -> Result<(), String> {
        decoder.seek_to_image(page).map_err(|e| e.to_string())?;
        let (height, width, dtype) = page_layout(decoder)?;
        if (height, width, dtype) != (self.shape[1], self.shape[2], self.dtype) {
            return Err(format!(
                "changed while in use: the page is {height}x{width} {dtype}, was {}x{} {}",
                self.shape[1], self.shape[2], self.dtype
            ));
        }
        decoder.read_image_bytes(buffer).map_err(|e| e.to_string())
    }
}

/// A decoder on `path` at page 0. Pages are decoded with `read_image_bytes` straight into the
/// slab (allocated at the size the runner chose within the memory budget), so the decoder's own
/// buffers hold one compressed strip or tile and tag values: both are bounded by the file's
/// length rather than the default 128/256 MiB, which would refuse an honest whole-page strip
/// of a large detector and allow a damaged byte count to claim far more than the file holds.
fn new_decoder(path: &Path, label: &str) -> Result<TiffDecoder, DataError> {
    refuse_special_file(path).map_err(|e| DataError::new(label, e))?;
    let file = File::open(path).map_err(|e| DataError::new(label, e.to_string()))?;
    let length = file
        .metadata()
        .map_err(|e| DataError::new(label, e.to_string()))?
        .len();
    let mut limits = Limits::default();
    limits.decoding_buffer_size = usize::try_from(length).unwrap_or(usize::MAX);
    limits.intermediate_buffer_size = limits.decoding_buffer_size;
    Decoder::new(BufReader::new(file))
        .map(|d| d.with_limits(limits))
        .map_err(|e| DataError::new(label, format!("not a readable TIFF file: {e}")))
}

/// How the first page of `path` is stored, for `photonqa inspect`: its strip or tile shape
/// (rows, columns) and its compression and predictor by name (`lzw`, `deflate`,
/// `predictor horizontal`); nothing for an uncompressed page without predictor.
pub fn storage(path: &Path) -> Result<(Vec<usize>, Vec<String>), DataError> {
    let label = path.display().to_string();
    let mut decoder = new_decoder(path, &label)?;
    let (columns, rows) = decoder.chunk_dimensions();
    let tag = |decoder: &mut TiffDecoder, tag: Tag| {
        decoder
            .find_tag_unsigned::<u16>(tag)
            .map_err(|e| DataError::new(&label, e.to_string()))
    };
    let mut filters = Vec::new();
    match tag(&mut decoder, Tag::Compression)?.unwrap_or(1) {
        1 => {}
        5 => filters.push("lzw".into()),
        8 | 32946 => filters.push("deflate".into()),
        32773 => filters.push("packbits".into()),
        50000 => filters.push("zstd".into()),
        other => filters.push(format!("compression {other}")),
    }
    match tag(&mut decoder, Tag::Predictor)?.unwrap_or(1) {
        1 => {}
        2 => filters.push("predictor horizontal".into()),
        3 => filters.push("predictor floating-point".into()),
        other => filters.push(format!("predictor {other}")),
    }
    Ok((vec![rows as usize, columns as usize], filters))
}

/// Height, width and dtype of the decoder's current page, or why photonqa cannot read it.
fn page_layout(decoder: &mut TiffDecoder) -> Result<(usize, usize, DType), String> {
    let (width, height) = decoder.dimensions().map_err(|e| e.to_string())?;
    let color = decoder.colortype().map_err(|e| e.to_string())?;
    let tiff::ColorType::Gray(bits) = color else {
        return Err(format!(
            "color type {color:?} is not supported: photonqa reads single-channel (grayscale) images"
        ));
    };
    let photometric = decoder
        .find_tag_unsigned::<u16>(Tag::PhotometricInterpretation)
        .map_err(|e| e.to_string())?;
    if photometric == Some(0) {
        // The decoder would invert the values (max - v); tifffile and detectors give them as
        // stored, so the numbers would differ silently.
        return Err(
            "photometric interpretation WhiteIsZero is not supported: photonqa reads \
                    BlackIsZero images (values as stored)"
                .into(),
        );
    }
    let format = decoder
        .find_tag_unsigned::<u16>(Tag::SampleFormat)
        .map_err(|e| e.to_string())?
        .unwrap_or(1);
    let dtype = match (format, bits) {
        (1, 8) => DType::Uint8,
        (1, 16) => DType::Uint16,
        (1, 32) => DType::Uint32,
        (1, 64) => DType::Uint64,
        (2, 8) => DType::Int8,
        (2, 16) => DType::Int16,
        (2, 32) => DType::Int32,
        (2, 64) => DType::Int64,
        (3, 32) => DType::Float32,
        (3, 64) => DType::Float64,
        _ => {
            let kind = match format {
                1 => "unsigned integer",
                2 => "signed integer",
                3 => "float",
                _ => "unknown",
            };
            return Err(format!(
                "unsupported sample format: {bits}-bit {kind} (SampleFormat {format}); photonqa \
                 reads 8/16/32/64-bit integers and 32/64-bit floats"
            ));
        }
    };
    Ok((height as usize, width as usize, dtype))
}

impl VolumeSource for TiffSource {
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn dtype(&self) -> DType {
        self.dtype
    }
    fn label(&self) -> &str {
        &self.label
    }
    fn read_slab(&self, rows: Range<usize>) -> Result<NdArray, DataError> {
        check_rows(self, &rows)?;
        let page_len = self.shape[1] * self.shape[2];
        let mut decoder = self.take_decoder()?;
        let slab = with_dtype!(self.dtype, T => {
            let mut values = vec![T::default(); rows.len() * page_len];
            for (page, buffer) in rows.clone().zip(values.chunks_exact_mut(page_len)) {
                self.read_page(&mut decoder, page, bytemuck::cast_slice_mut(buffer))
                    .map_err(|m| {
                        DataError::new(&self.label, format!("cannot read page {page}: {m}"))
                    })?;
            }
            let mut shape = self.shape.clone();
            shape[0] = rows.len();
            ArrayD::from_shape_vec(IxDyn(&shape), values).expect("sized above").into_nd()
        });
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(decoder);
        Ok(slab)
    }
}

#[cfg(test)]
mod tests {
    use ::tiff::encoder::{TiffEncoder, colortype};

    use super::*;

    /// Writes `pages` pages of `height` x `width` uint16, value `1000 page + index`, as classic
    /// TIFF or BigTIFF.
    fn write_pages(path: &Path, pages: usize, height: usize, width: usize, big: bool) {
        let file = std::io::BufWriter::new(File::create(path).unwrap());
        let page =
            |p: usize| -> Vec<u16> { (0..height * width).map(|i| (1000 * p + i) as u16).collect() };
        let (w, h) = (width as u32, height as u32);
        if big {
            let mut encoder = TiffEncoder::new_big(file).unwrap();
            for p in 0..pages {
                encoder
                    .write_image::<colortype::Gray16>(w, h, &page(p))
                    .unwrap();
            }
        } else {
            let mut encoder = TiffEncoder::new(file).unwrap();
            for p in 0..pages {
                encoder
                    .write_image::<colortype::Gray16>(w, h, &page(p))
                    .unwrap();
            }
        }
    }

    #[test]
    fn pages_are_read_as_slabs_by_concurrent_threads() {
        let dir = tempfile::tempdir().unwrap();
        for big in [false, true] {
            let path = dir.path().join(format!("s{big}.tif"));
            write_pages(&path, 7, 3, 5, big);
            let source = TiffSource::open(&path).unwrap();
            assert_eq!(source.shape(), &[7, 3, 5]);
            assert_eq!(source.dtype(), DType::Uint16);
            // Four threads read every page in different orders, sharing (and growing) the pool
            // of decoders: each slab holds its own page's values.
            std::thread::scope(|scope| {
                for thread in 0..4 {
                    let source = &source;
                    scope.spawn(move || {
                        for step in 0..7 {
                            let page = (step * (thread + 2)) % 7;
                            let slab = source.read_slab(page..page + 1).unwrap();
                            let expected: Vec<u8> = (0..15)
                                .flat_map(|i| ((1000 * page + i) as u16).to_le_bytes())
                                .collect();
                            assert_eq!(slab.to_le_bytes(), expected, "page {page} big {big}");
                        }
                    });
                }
            });
            let slab = source.read_slab(5..7).unwrap();
            assert_eq!(slab.shape(), &[2, 3, 5]);
            assert_eq!(slab.to_le_bytes()[..2], 5000u16.to_le_bytes());
            assert!(source.read_slab(6..8).is_err());
        }
    }

    #[test]
    fn a_file_that_is_not_tiff_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tif");
        std::fs::write(&path, b"not a tiff at all").unwrap();
        let err = TiffSource::open(&path).err().unwrap().to_string();
        assert!(
            err.starts_with(&format!("{}: not a readable TIFF file", path.display())),
            "{err}"
        );
    }
}
