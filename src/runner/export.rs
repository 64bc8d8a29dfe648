//! `photonqa export`: a working point's data as the artifact a facility deploys, a chunked HDF5
//! dataset whose filter pipeline uses the registered filter ids and `cd_values` that h5py +
//! hdf5plugin read ([`crate::pipeline::hdf5`]).
//!
//! The chunks are the scenario's compression units (rows along axis 0); the last one is padded
//! with zeros to the full chunk, as HDF5 stores edge chunks. The array->array stages (quantize,
//! bitround, threshold) run before the filters, as in the scenario, and are recorded as
//! attributes so that a reader can invert them:
//!
//! - every export: `photonqa_point_id`, `photonqa_scenario`, `photonqa_scenario_hash`,
//!   `photonqa_version`, `photonqa_input`, `photonqa_input_hash`, `photonqa_pipeline` and
//!   `photonqa_fitted` (JSON: the stages' configurations and their data-derived parameters),
//!   `photonqa_decoded_dtype` (the dtype the decoded data has);
//! - `quantize`: `photonqa_quantize_lo`, `photonqa_quantize_hi`, `photonqa_quantize_levels`;
//!   the decoded value of a stored level `q` is `lo + q * (hi - lo) / levels` evaluated in
//!   float64 in that order, then cast to `photonqa_decoded_dtype`. CF's `add_offset` (= lo)
//!   and `scale_factor` (= (hi - lo) / levels) are set too, for readers that apply them
//!   (xarray), equal to photonqa's value within one rounding;
//! - `threshold`: `photonqa_threshold`, `photonqa_threshold_mode` (zero-below: values at or
//!   below it were replaced by `photonqa_threshold_fill`; binarise: the stored 0/1 mask);
//! - `bitround`: `photonqa_bitround_keepbits` (nothing to invert).
//!
//! The array->bytes stages with a library filter (sz3, zfp, nbit, scaleoffset) are written
//! through their HDF5 filters run by the HDF5 library ([`crate::pipeline::hdf5`]); the file is
//! then read back after closing and checked against the values written: bit for bit for a
//! lossless filter, else the stage's promised bound.

use std::path::Path;

use indicatif::ProgressBar;
use rayon::prelude::*;
use serde_json::Value;

use super::passes::{self, FitCache, Passes};
use super::{Plan, build_chains, reshaping_refused};
use crate::data::files::{AtomicFile, Existing, output_error};
use crate::data::hdf5io::{
    AttrValue, FileMode, Hdf5Source, Hdf5Writer, RawChunkWriter, has_dataset,
};
use crate::data::{DType, DataError, NdArray, VolumeSource};
use crate::metrics::comparison::BoundSums;
use crate::pipeline::Chain;
use crate::pipeline::chain::bit_equal;
use crate::pipeline::hdf5::{Hdf5Filter, Storage};
use crate::pipeline::registry;
use crate::pipeline::{StageConfig, StageKind};
use crate::scenario::Scenario;

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    /// Sum of the stored (filtered) chunk sizes in bytes.
    pub stored_bytes: u64,
    /// Number of chunks.
    pub chunks: usize,
    /// Rows per chunk.
    pub chunk_rows: usize,
    /// Dtype of the stored values.
    pub stored_dtype: DType,
    /// The filter pipeline, in order.
    pub filters: Vec<Hdf5Filter>,
    /// What the reader should know (a stage stored without its own filter, a lossy filter
    /// run by the HDF5 library).
    pub notes: Vec<String>,
    /// The promised bound of a lossy filter, checked on the data read back from the closed
    /// file against the values written.
    pub bounds: Vec<BoundSums>,
}

/// How to export into a file that exists.
const EXISTING_FILE_HINT: &str = "--force replaces the file, --append adds the dataset to it";

/// Where an export writes, and what it may overwrite there.
#[derive(Debug, Clone, Copy)]
pub struct ExportTarget<'a> {
    /// The HDF5 file.
    pub file: &'a Path,
    /// The dataset's path in the file.
    pub dataset: &'a str,
    /// Add the dataset to the file if it exists (else the file must not exist): the file is
    /// copied, extended and renamed over the original ([`Existing::Extend`]).
    pub append: bool,
    /// Replace an existing file; with `append`, an existing dataset of the file.
    pub force: bool,
}

impl ExportTarget<'_> {
    /// Starts the output, before any work: an existing file without `append` or `force`, or an
    /// existing dataset without `force`, is an error, and so is a file that is not HDF5 when
    /// appending. The dataset is written into the returned file's temporary file in `FileMode`.
    fn begin(&self) -> Result<(AtomicFile, FileMode), String> {
        // Checked on the target before it is copied.
        let replace_dataset = self.append
            && self.file.is_file()
            && has_dataset(self.file, self.dataset).map_err(|e| e.to_string())?;
        if replace_dataset && !self.force {
            return Err(format!(
                "{}::{}: the dataset exists already: --force replaces it",
                self.file.display(),
                self.dataset
            ));
        }
        let existing = match (self.append, self.force) {
            (true, _) => Existing::Extend,
            (false, true) => Existing::Replace,
            (false, false) => Existing::Refuse,
        };
        let output = AtomicFile::begin(self.file, existing)
            .map_err(|e| output_error(self.file, &e, EXISTING_FILE_HINT))?;
        let mode = match (output.extends(), replace_dataset) {
            (false, _) => FileMode::Create,
            (true, false) => FileMode::Append,
            (true, true) => FileMode::Replace,
        };
        Ok((output, mode))
    }
}

/// Writes working point `point_id` of `scenario` as a dataset of `target`, reading the input in
/// chunks within `memory_budget`. The file is written whole under a temporary name and renamed
/// over `target.file` once complete ([`AtomicFile`]): an interrupted export leaves the old file
/// as it was.
pub fn export(
    scenario: &Scenario,
    point_id: &str,
    target: ExportTarget,
    memory_budget: u64,
) -> Result<Exported, String> {
    let (output, mode) = target.begin()?;
    let source = scenario.source.open().map_err(|e| e.to_string())?;
    let chains = build_chains(scenario, source.as_ref())?;
    let ids: Vec<&str> = chains.iter().map(|(p, _)| p.id.as_str()).collect();
    let Some(position) = ids.iter().position(|id| *id == point_id) else {
        return Err(format!(
            "{}: no working point {point_id} (points: {})",
            scenario.path.display(),
            ids.join(", ")
        ));
    };
    let (point, mut chain) = chains.into_iter().nth(position).expect("found above");
    let plan = Plan::new(
        source.shape(),
        source.row_bytes(),
        scenario.chunk_slices,
        memory_budget,
        None,
    )?;
    let pool = plan.pool()?;
    let passes = Passes::new(source.as_ref(), &plan, &pool);
    let progress = ProgressBar::hidden();
    let summary = passes::summarize(&passes, &progress)?;
    chain.fit(&mut FitCache::new(&passes, &progress, &summary))?;

    let mut attributes: Vec<(String, AttrValue)> = vec![
        text("photonqa_point_id", &point.id),
        text("photonqa_scenario", &scenario.name),
        text("photonqa_scenario_hash", &scenario.hash),
        text("photonqa_version", env!("CARGO_PKG_VERSION")),
        text("photonqa_input", source.label()),
        text("photonqa_input_hash", &summary.hash),
        text(
            "photonqa_pipeline",
            &Value::from(
                point
                    .stages
                    .iter()
                    .map(StageConfig::to_json)
                    .collect::<Vec<_>>(),
            )
            .to_string(),
        ),
        text("photonqa_fitted", &Value::from(chain.fitted()).to_string()),
        text("photonqa_decoded_dtype", source.dtype().name()),
    ];
    let stored_dtype = chain.prepared_dtype();
    let mut fitted = chain.fitted().into_iter();
    for config in &point.stages {
        if registry::find(config.stage).expect("validated stage").kind == StageKind::ArrayToArray {
            let fit = fitted.next().unwrap_or(Value::Null);
            attributes.extend(inversion(config, &fit));
        }
    }
    let stage_error = |(index, message): (usize, String)| {
        format!("stage {}: {message}", point.stages[index].stage)
    };
    let storage = Storage::of(&point.stages, stored_dtype).map_err(stage_error)?;
    reshaping_refused(&chain, source.shape(), plan.chunk_slices).map_err(stage_error)?;
    let mut notes = Vec::new();
    if let Some(stage) = storage.unfiltered {
        notes.push(format!(
            "stage {stage} has no registered HDF5 filter: its values are stored plainly (the same data; the file's size differs from the scenario's rate)"
        ));
    }
    let job = Job {
        source: source.as_ref(),
        chain: &chain,
        plan: &plan,
        pool: &pool,
        output: &output,
        dataset: target.dataset,
        mode,
        stored_dtype,
        attributes: &attributes,
    };
    let (stored_bytes, bounds) = match &storage.library {
        None => (job.write_direct(&storage)?, Vec::new()),
        Some(filter) => {
            let lossless = registry::find(filter.stage).is_some_and(|def| def.lossless);
            notes.push(if lossless {
                format!(
                    "stage {} was written by HDF5 filter {} as the HDF5 library runs it; the file is read back bit for bit",
                    filter.stage, filter.id
                )
            } else {
                format!(
                    "stage {} was written by HDF5 filter {} as the HDF5 library runs it (another build of the codec, whole chunks): the stored values can differ from the scenario's decoded ones; its bound is checked on the file",
                    filter.stage, filter.id
                )
            });
            job.write_through_library(&storage, lossless)?
        }
    };
    output
        .commit()
        .map_err(|e| output_error(target.file, &e, EXISTING_FILE_HINT))?;
    Ok(Exported {
        stored_bytes,
        chunks: plan.chunks.len(),
        chunk_rows: plan.chunk_slices,
        stored_dtype,
        filters: storage.filters(),
        notes,
        bounds,
    })
}

/// What writing one export needs.
struct Job<'a> {
    source: &'a dyn VolumeSource,
    chain: &'a Chain,
    plan: &'a Plan,
    pool: &'a rayon::ThreadPool,
    /// The file being written; the dataset goes into its temporary file in `mode`.
    output: &'a AtomicFile,
    dataset: &'a str,
    mode: FileMode,
    stored_dtype: DType,
    attributes: &'a [(String, AttrValue)],
}

impl Job<'_> {
    /// Where the dataset is written: the output's temporary file.
    fn out(&self) -> (&Path, &str) {
        (self.output.path(), self.dataset)
    }

    /// An error of the file being written, naming the target rather than the temporary file.
    fn fail(&self, error: DataError) -> String {
        self.output.relabel(error).to_string()
    }

    /// The array->array stages' output of every chunk, in waves of chunks prepared in
    /// parallel, handed to `write` in chunk order.
    fn prepared_waves(
        &self,
        mut write: impl FnMut(usize, NdArray) -> Result<(), String>,
    ) -> Result<(), String> {
        let wave = self.plan.threads * 2;
        for (w, chunks) in self.plan.chunks.chunks(wave).enumerate() {
            let prepared: Vec<NdArray> = self.pool.install(|| {
                chunks
                    .par_iter()
                    .map(|rows| {
                        let chunk = self
                            .source
                            .read_slab(rows.clone())
                            .map_err(|e| e.to_string())?;
                        self.chain.prepare(&chunk).map_err(|e| e.to_string())
                    })
                    .collect::<Result<_, String>>()
            })?;
            for (k, array) in prepared.into_iter().enumerate() {
                write(w * wave + k, array)?;
            }
        }
        Ok(())
    }

    /// Filters the chunks here and writes them as they are stored (HDF5's direct chunk
    /// write); returns the stored bytes.
    fn write_direct(&self, storage: &Storage) -> Result<u64, String> {
        let writer = RawChunkWriter::create(
            self.out(),
            self.source.shape(),
            self.stored_dtype,
            self.plan.chunk_slices,
            &storage.filter_values(),
            self.mode,
        )
        .map_err(|e| self.fail(e))?;
        for (name, value) in self.attributes {
            writer.set_attr(name, value).map_err(|e| self.fail(e))?;
        }
        let row_elements: usize = self.source.shape()[1..].iter().product();
        let full_chunk = self.plan.chunk_slices * row_elements * self.stored_dtype.size();
        let mut stored_bytes = 0u64;
        self.prepared_waves(|index, prepared| {
            let mut bytes = prepared.to_le_bytes();
            bytes.resize(full_chunk, 0);
            let bytes = storage.encode_direct(bytes)?;
            writer
                .write_chunk(index, &bytes)
                .map_err(|e| self.fail(e))?;
            stored_bytes += bytes.len() as u64;
            Ok(())
        })?;
        Ok(stored_bytes)
    }

    /// Writes the chunks through `storage`'s filters run by the HDF5 library, then reads the
    /// closed file back (so no chunk cache answers) and checks every chunk against the values
    /// written: bit for bit when the filter is `lossless`, else its promised bound; returns the
    /// stored bytes and the bound checks.
    fn write_through_library(
        &self,
        storage: &Storage,
        lossless: bool,
    ) -> Result<(u64, Vec<BoundSums>), String> {
        let (file, dataset) = self.out();
        let mut writer = Hdf5Writer::create_filtered(
            self.out(),
            self.source.shape(),
            storage.stored,
            self.plan.chunk_slices,
            &storage.filter_values(),
            self.mode,
        )
        .map_err(|e| self.fail(e))?;
        for (name, value) in self.attributes {
            writer.set_attr(name, value).map_err(|e| self.fail(e))?;
        }
        self.prepared_waves(|_, prepared| writer.write_slab(&prepared).map_err(|e| self.fail(e)))?;
        drop(writer);

        let sizes = Hdf5Writer::chunk_sizes(file, dataset).map_err(|e| self.fail(e))?;
        let stored = Hdf5Source::open(file, dataset).map_err(|e| self.fail(e))?;
        let mut bounds: Vec<BoundSums> = Vec::new();
        self.prepared_waves(|index, prepared| {
            let rows = self.plan.chunks[index].clone();
            let read = stored.read_slab(rows.clone()).map_err(|e| self.fail(e))?;
            if lossless && !bit_equal(&prepared, &read) {
                return Err(format!(
                    "{}::{dataset}: rows {rows:?} read back differ from the values written by a lossless filter",
                    self.output.target().display()
                ));
            }
            // HDF5 filters the edge chunk padded to the full chunk: its share of the bytes.
            let bytes = (sizes.get(index).copied().unwrap_or(0) as usize * rows.len())
                .div_ceil(self.plan.chunk_slices);
            for (k, (stage, promise)) in self
                .chain
                .promises(prepared.shape())
                .into_iter()
                .enumerate()
            {
                let check = BoundSums::of(stage, promise, &prepared, &read, bytes)?;
                match bounds.get_mut(k) {
                    Some(total) => total.merge(&check)?,
                    None => bounds.push(check),
                }
            }
            Ok(())
        })?;
        Ok((sizes.iter().sum(), bounds))
    }
}

fn text(name: &str, value: &str) -> (String, AttrValue) {
    (name.to_string(), AttrValue::Text(value.to_string()))
}

/// The attributes that let a reader invert an array->array stage (see the module docs).
fn inversion(config: &StageConfig, fitted: &Value) -> Vec<(String, AttrValue)> {
    let float = |name: &str, v: f64| (name.to_string(), AttrValue::Float(v));
    match config.stage {
        "quantize" => {
            let range = config.opt_interval("range").or_else(|| {
                let r = fitted.get("range")?;
                Some([r.get(0)?.as_f64()?, r.get(1)?.as_f64()?])
            });
            let Some([lo, hi]) = range else {
                return Vec::new();
            };
            // As the quantize stage counts its levels: bits default to the dtype's width.
            let dtype = DType::parse(config.str("dtype")).expect("validated dtype");
            let bits = config
                .params
                .iter()
                .find(|(n, _)| *n == "bits")
                .map_or(8 * dtype.size() as i64, |_| config.int("bits"));
            let levels = ((1u64 << bits) - 1) as f64;
            vec![
                float("photonqa_quantize_lo", lo),
                float("photonqa_quantize_hi", hi),
                float("photonqa_quantize_levels", levels),
                float("add_offset", lo),
                float("scale_factor", (hi - lo) / levels),
            ]
        }
        "threshold" => {
            let threshold = fitted
                .get("threshold")
                .and_then(Value::as_f64)
                .unwrap_or_else(|| config.float("value"));
            let mut attrs = vec![
                float("photonqa_threshold", threshold),
                text("photonqa_threshold_mode", config.str("mode")),
            ];
            if config.str("mode") != "binarise" {
                attrs.push(float("photonqa_threshold_fill", config.float("fill")));
            }
            attrs
        }
        "bitround" => vec![float(
            "photonqa_bitround_keepbits",
            config.int("keepbits") as f64,
        )],
        _ => Vec::new(),
    }
}
