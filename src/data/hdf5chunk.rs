//! One chunk through an HDF5 filter pipeline run by the linked HDF5 library, in memory: the
//! chunk is written to a fresh in-memory file (core driver, never on disk) as a dataset of one
//! chunk of `chunk_rows` rows along axis 0 (a shorter array is an edge chunk, which HDF5 pads
//! with zeros), with the filters mandatory, and the filtered chunk is read raw
//! (`H5Dread_chunk`); reading it back writes those bytes raw (`H5Dwrite_chunk`) into another
//! fresh in-memory file and reads the dataset, so the filters decode them and no chunk cache
//! can answer instead. This is what HDF5 stores and what a reader gets, chunk by chunk.

use std::sync::atomic::{AtomicU64, Ordering};

use hdf5::H5Type;
use ndarray::{ArrayD, IxDyn};

use super::array::{Element, IntoNdArray, NdArray, c_order};
use super::hdf5io::{FilterUse, StoredType, check_filters_available, filtered_dcpl};
use crate::{with_array, with_dtype};

/// Filters `(id, cd_values)` in pipeline order.
pub type Filters = [(u32, Vec<u32>)];

/// A fresh in-memory HDF5 file, named uniquely in the process so that concurrent chunks do not
/// share one.
fn memory_file() -> Result<hdf5::File, String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    hdf5::File::with_options()
        .with_fapl(|p| p.core_filebacked(false))
        .create(format!("photonqa-chunk-{}-{n}.h5", std::process::id()))
        .map_err(|e| e.to_string())
}

/// How a chunk is stored: the dataset's chunk rows along axis 0 (at least the array's rows),
/// its stored element type and its filters.
pub struct Layout<'a> {
    /// Rows of the dataset's chunk.
    pub chunk_rows: usize,
    /// The stored element type.
    pub stored: StoredType,
    /// Its filters `(id, cd_values)`, in pipeline order.
    pub filters: &'a Filters,
}

/// A dataset of `shape` in one chunk as `layout` says, in `file`.
fn dataset(file: &hdf5::File, shape: &[usize], layout: &Layout) -> Result<hdf5::Dataset, String> {
    check_filters_available(layout.filters, "HDF5 chunk").map_err(|e| e.to_string())?;
    if layout.chunk_rows < shape[0] {
        return Err(format!(
            "{} rows do not fit a chunk of {}",
            shape[0], layout.chunk_rows
        ));
    }
    let mut chunk = shape.to_vec();
    chunk[0] = layout.chunk_rows;
    let dcpl = filtered_dcpl(&chunk, layout.filters, FilterUse::Run)?;
    // Axis 0 resizable, as HDF5 takes a chunk longer than a fixed extent only then.
    let mut extents: Vec<hdf5::Extent> = shape.iter().map(|&n| n.into()).collect();
    extents[0] = hdf5::Extent::resizable(shape[0]);
    file.new_dataset_builder()
        .empty_as(&layout.stored.datatype()?)
        .set_dcpl(&dcpl)
        .shape(hdf5::SimpleExtents::from_vec(extents))
        .chunk(chunk)
        .create("v")
        .map_err(|e| e.to_string())
}

/// The chunk holding `array` (of the layout's dtype) as HDF5 stores it in `layout`: its filter
/// mask (u32, little-endian), then the filtered bytes.
pub fn store(array: &NdArray, layout: &Layout) -> Result<Vec<u8>, String> {
    if array.is_empty() {
        return Err("cannot store an empty chunk".into());
    }
    if array.dtype() != layout.stored.dtype {
        return Err(format!(
            "a {} chunk in a {} dataset",
            array.dtype().name(),
            layout.stored.dtype.name()
        ));
    }
    with_array!(array, a => store_typed(a, layout))
}

fn store_typed<T: H5Type + Element>(a: &ArrayD<T>, layout: &Layout) -> Result<Vec<u8>, String> {
    let file = memory_file()?;
    let ds = dataset(&file, a.shape(), layout)?;
    let data = c_order(a);
    let view = ndarray::ArrayView::from_shape(IxDyn(a.shape()), &data).expect("C order");
    ds.write(view).map_err(|e| e.to_string())?;
    let offset = vec![0u64; a.ndim()];
    hdf5::sync::sync(|| {
        let mut mask = 0u32;
        // SAFETY: the dataset is open, `offset` has one entry per axis, and the buffer holds
        // the dataset's storage size, which is its one chunk's.
        unsafe {
            let size = hdf5_sys::h5d::H5Dget_storage_size(ds.id());
            if size == 0 {
                return Err("the filtered chunk is empty".to_string());
            }
            let mut stored = vec![0u8; 4 + size as usize];
            if hdf5_sys::h5d::H5Dread_chunk1(
                ds.id(),
                hdf5_sys::h5p::H5P_DEFAULT,
                offset.as_ptr(),
                &mut mask,
                stored[4..].as_mut_ptr().cast(),
            ) < 0
            {
                return Err("cannot read the filtered chunk".to_string());
            }
            stored[..4].copy_from_slice(&mask.to_le_bytes());
            Ok(stored)
        }
    })
}

/// The array of `shape` (and the layout's dtype) that HDF5 reads from the chunk `stored` (as
/// [`store`] made it) in `layout`.
pub fn load(stored: &[u8], shape: &[usize], layout: &Layout) -> Result<NdArray, String> {
    with_dtype!(layout.stored.dtype, T => load_typed::<T>(stored, shape, layout))
}

fn load_typed<T: H5Type + Element>(
    stored: &[u8],
    shape: &[usize],
    layout: &Layout,
) -> Result<NdArray, String>
where
    ArrayD<T>: IntoNdArray,
{
    if stored.len() < 4 {
        return Err("no filter mask".into());
    }
    let (mask, raw) = stored.split_at(4);
    let mask = u32::from_le_bytes(mask.try_into().expect("4 bytes"));
    let file = memory_file()?;
    let ds = dataset(&file, shape, layout)?;
    let offset = vec![0u64; shape.len()];
    hdf5::sync::sync(|| {
        // SAFETY: the dataset is open, `offset` has one entry per axis, `raw` is readable.
        let status = unsafe {
            hdf5_sys::h5d::H5Dwrite_chunk(
                ds.id(),
                hdf5_sys::h5p::H5P_DEFAULT,
                mask,
                offset.as_ptr(),
                raw.len(),
                raw.as_ptr().cast(),
            )
        };
        if status < 0 {
            Err("cannot write the filtered chunk".to_string())
        } else {
            Ok(())
        }
    })?;
    let decoded: ArrayD<T> = ds.read_dyn().map_err(|e| e.to_string())?;
    if decoded.shape() != shape {
        return Err(format!("decoded shape {:?}", decoded.shape()));
    }
    Ok(decoded.into_nd())
}
