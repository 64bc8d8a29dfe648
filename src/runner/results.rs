//! Results of working points: `OUT/results.jsonl` (one JSON object per point, appended as
//! points finish, resumable) and `OUT/results.csv` (rewritten atomically at the end).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::provenance::Provenance;
use crate::metrics::comparison::BoundCheck;
use crate::metrics::registry::column_value;
use crate::metrics::values::{metric_json, plain};
use crate::pipeline::side::SideFiles;
use crate::scenario::tolerances::{RATE_COLUMNS, TIMING_COLUMNS};

/// Rate of a working point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// Size of the original data in bytes.
    pub original_bytes: u64,
    /// Sum of the encoded chunk sizes in bytes.
    pub compressed_bytes: u64,
    /// `original_bytes / compressed_bytes`; with side files, `original_bytes /
    /// (compressed_bytes + side_bytes / amortize_over)`.
    pub ratio: f64,
    /// `8 compressed_bytes / number of values`; with side files, `8 (compressed_bytes +
    /// side_bytes / amortize_over) / number of values`.
    pub bits_per_value: f64,
    /// Original megabytes (1e6 B) encoded per second of one thread's time.
    pub encode_mb_s: f64,
    /// Original megabytes decoded per second of one thread's time.
    pub decode_mb_s: f64,
    /// Total size of the files the decoder needs besides the stream (a learned codec's model,
    /// see [`crate::pipeline::side`]); absent when the point has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side_bytes: Option<u64>,
    /// How many arrays share the side files (absent without side files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amortize_over: Option<u64>,
    /// `original_bytes / compressed_bytes`: the stream alone, without the side files' share
    /// (absent without side files, where it is `ratio`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_payload: Option<f64>,
}

impl Rate {
    /// The columns of the rate, in table order: the gated [`RATE_COLUMNS`], then the
    /// [`TIMING_COLUMNS`].
    pub const COLUMNS: [&str; 6] = [
        RATE_COLUMNS[0],
        RATE_COLUMNS[1],
        RATE_COLUMNS[2],
        RATE_COLUMNS[3],
        TIMING_COLUMNS[0],
        TIMING_COLUMNS[1],
    ];

    /// The rate of `values` values of `value_size` bytes stored in `compressed_bytes`, encoded
    /// and decoded in `seconds` (encode, decode) of one thread's time, charged with the share of
    /// the `side` files the decoder needs (see [`crate::pipeline::side`]): then `ratio` and
    /// `bits_per_value` count `compressed_bytes + side_bytes / amortize_over`, and
    /// `ratio_payload` the stream alone.
    pub fn new(
        values: u64,
        value_size: usize,
        compressed_bytes: u64,
        seconds: (f64, f64),
        side: Option<&SideFiles>,
    ) -> Rate {
        let original_bytes = values * value_size as u64;
        let mb = original_bytes as f64 / 1e6;
        let payload = original_bytes as f64 / compressed_bytes as f64;
        let charged = compressed_bytes as f64 + side.map_or(0.0, SideFiles::share);
        Rate {
            original_bytes,
            compressed_bytes,
            ratio: original_bytes as f64 / charged,
            bits_per_value: 8.0 * charged / values as f64,
            encode_mb_s: mb / seconds.0.max(1e-9),
            decode_mb_s: mb / seconds.1.max(1e-9),
            side_bytes: side.map(SideFiles::bytes),
            amortize_over: side.map(|s| s.amortize_over),
            ratio_payload: side.map(|_| payload),
        }
    }

    /// The rate's field `column` (one of [`Rate::COLUMNS`], [`crate::scenario::tolerances::SIDE_COLUMNS`] or
    /// `amortize_over`) as JSON: byte counts as integers, the rest as [`metric_json`]. Without
    /// side files, `ratio_payload` is `ratio`, `side_bytes` 0 and `amortize_over` 1.
    pub fn get(&self, column: &str) -> Option<Value> {
        Some(match column {
            "original_bytes" => Value::from(self.original_bytes),
            "compressed_bytes" => Value::from(self.compressed_bytes),
            "ratio" => metric_json(self.ratio),
            "bits_per_value" => metric_json(self.bits_per_value),
            "encode_mb_s" => metric_json(self.encode_mb_s),
            "decode_mb_s" => metric_json(self.decode_mb_s),
            "ratio_payload" => metric_json(self.ratio_payload.unwrap_or(self.ratio)),
            "side_bytes" => Value::from(self.side_bytes.unwrap_or(0)),
            "amortize_over" => Value::from(self.amortize_over.unwrap_or(1)),
            _ => return None,
        })
    }
}

/// Outcome of a working point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Measured.
    Ok,
    /// A stage failed; `error` says why.
    Error,
}

/// One row of the results: a working point's rate, distortion and provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointResult {
    /// Stable id of the concrete pipeline.
    pub point_id: String,
    /// Position in the scenario's sweep expansion.
    pub index: usize,
    /// Outcome.
    pub status: Status,
    /// Why the point failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Values of the swept parameters, as `stage.param`.
    pub params: Map<String, Value>,
    /// Every stage's full configuration.
    pub pipeline: Vec<Value>,
    /// Data-derived parameters of the array->array stages (Otsu threshold, data range).
    pub fitted: Vec<Value>,
    /// Rate (absent for failed points).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
    /// How many decoded values are NaN or infinite (the original is finite); absent for
    /// failed points. When not 0 the point is invalid: every distortion metric is `"nan"`,
    /// it fails every limit and is never recommended (see
    /// `select::evaluate::observe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonfinite_decoded: Option<u64>,
    /// Selected distortion metrics; non-finite values are the strings `inf`, `-inf`, `nan`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub distortion: Map<String, Value>,
    /// Results of the science analyses by label (`[[analysis]]`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub science: Map<String, Value>,
    /// Distortion metrics of the slices reconstructed from the decoded projections
    /// (`[reconstruction]`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub reconstructed: Map<String, Value>,
    /// The verification of every bound a stage of the pipeline promises (SZ3's error bound,
    /// ZFP's tolerance or rate, JPEG 2000's PSNR), checked on the decoded data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bounds: Vec<BoundCheck>,
    /// The point whose decoded data gave this point's distortion and science: points whose
    /// chains differ only in lossless stages decode alike, and a run computes their metrics
    /// once (absent when the point's own data gave them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares_decoded_with: Option<String>,
    /// What made this result.
    pub provenance: Provenance,
}

impl PointResult {
    /// The row of point `point_id` (number `index` of the sweep, swept values `params`) before
    /// anything is recorded: status ok, no pipeline, rate, metrics or bounds. The runner, and
    /// tests that need a row, fill in what they have.
    pub fn new(
        point_id: String,
        index: usize,
        params: Map<String, Value>,
        provenance: Provenance,
    ) -> Self {
        PointResult {
            point_id,
            index,
            status: Status::Ok,
            error: None,
            params,
            pipeline: Vec::new(),
            fitted: Vec::new(),
            rate: None,
            nonfinite_decoded: None,
            distortion: Map::new(),
            science: Map::new(),
            reconstructed: Map::new(),
            bounds: Vec::new(),
            shares_decoded_with: None,
            provenance,
        }
    }

    /// The number of NaN or infinite decoded values, when there are any.
    pub fn nonfinite(&self) -> Option<u64> {
        self.nonfinite_decoded.filter(|&n| n > 0)
    }

    /// The value of any column as JSON: a rate field ([`Rate::get`]; none for a failed
    /// point), else [`PointResult::value`].
    pub fn column(&self, column: &str) -> Option<Value> {
        self.rate
            .as_ref()
            .and_then(|rate| rate.get(column))
            .or_else(|| self.value(column).cloned())
    }

    /// The value of a table column: a metric (`name` or `name.field`), an analysis's field
    /// (`label.field`) or a metric of the reconstructed slices (`reconstructed.name`).
    pub fn value(&self, column: &str) -> Option<&Value> {
        match column.strip_prefix(RECONSTRUCTED) {
            Some(metric) => column_value(&self.reconstructed, metric),
            None => column_value(&self.distortion, column)
                .or_else(|| column_value(&self.science, column)),
        }
    }
}

/// Name of [`PointResult::nonfinite_decoded`] in `results.csv`, tables and the report.
pub const NONFINITE_DECODED: &str = "nonfinite_decoded";

/// Prefix of the columns of the reconstructed slices' metrics.
pub const RECONSTRUCTED: &str = "reconstructed.";

/// The append-only results log of a run directory (opened through [`EarlierResults`]).
pub struct ResultsLog {
    path: PathBuf,
    file: Mutex<File>,
    rows: Mutex<Vec<PointResult>>,
}

/// The rows an earlier run left in `OUT/results.jsonl`, read but not yet trusted.
pub struct EarlierResults {
    path: PathBuf,
    /// Complete rows that measured their point, with their lines as written and line numbers.
    kept: Vec<(PointResult, Vec<u8>, usize)>,
    /// Whether the file holds more than the kept lines (failed rows, a torn last line, a
    /// point's second row).
    rewrite: bool,
    /// What the rewrite drops that a user should hear of: rows of a point logged before.
    pub notes: Vec<String>,
}

impl EarlierResults {
    /// Reads `OUT/results.jsonl` (creating `OUT`). Without `resume` an existing non-empty log
    /// is an error. A point logged twice (by two runs into `OUT` at once, before runs locked
    /// it) keeps its first measured row; later ones are dropped with a note. Nothing is written
    /// yet.
    pub fn read(out: &Path, resume: bool) -> Result<EarlierResults, String> {
        fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
        let path = out.join("results.jsonl");
        let label = path.display().to_string();
        let text = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("{label}: {e}")),
        };
        if !text.is_empty() && !resume {
            return Err(format!(
                "{label} already holds results; pass --resume to continue that run or choose another --out"
            ));
        }
        // Anything after the last newline is the torn tail of an interrupted append.
        let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut kept: Vec<(PointResult, Vec<u8>, usize)> = Vec::new();
        let mut rewrite = complete < text.len();
        let mut notes = Vec::new();
        // The line of each point's kept row.
        let mut kept_on: HashMap<String, usize> = HashMap::new();
        for (number, line) in text[..complete].split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let row: PointResult = serde_json::from_slice(line)
                .map_err(|e| format!("{label}:{}: not a result row: {e}", number + 1))?;
            if let Some(first) = kept_on.get(&row.point_id) {
                notes.push(format!(
                    "{label}:{}: point {} was measured before, on line {first}; that row is kept, this one dropped",
                    number + 1,
                    row.point_id
                ));
                rewrite = true;
            } else if row.status == Status::Error {
                // A failed point is measured again.
                rewrite = true;
            } else {
                kept_on.insert(row.point_id.clone(), number + 1);
                kept.push((row, line.to_vec(), number + 1));
            }
        }
        Ok(EarlierResults {
            path,
            kept,
            rewrite,
            notes,
        })
    }

    /// Checks every kept row with `check`, rewrites the log atomically when it held failed rows
    /// or a torn line, and opens it for appending.
    pub fn resume(
        self,
        check: impl Fn(&PointResult) -> Result<(), String>,
    ) -> Result<ResultsLog, String> {
        let label = self.path.display().to_string();
        for (row, _, number) in &self.kept {
            check(row).map_err(|e| format!("{label}:{number}: {e}"))?;
        }
        if self.rewrite {
            let mut text = Vec::new();
            for (_, line, _) in &self.kept {
                text.extend_from_slice(line);
                text.push(b'\n');
            }
            crate::data::write_atomically(&self.path, &text)
                .map_err(|e| format!("{label}: {e}"))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| format!("{label}: {e}"))?;
        Ok(ResultsLog {
            path: self.path,
            file: Mutex::new(file),
            rows: Mutex::new(self.kept.into_iter().map(|(row, _, _)| row).collect()),
        })
    }
}

impl ResultsLog {
    /// Ids of the points already recorded.
    pub fn done(&self) -> HashMap<String, usize> {
        let rows = self.rows.lock().expect("no panics while locked");
        rows.iter().map(|r| (r.point_id.clone(), r.index)).collect()
    }

    /// Appends one row as a single write of one line, flushed to disk.
    pub fn append(&self, row: PointResult) -> Result<(), String> {
        let line = jsonl_line(&row);
        let mut file = self.file.lock().expect("no panics while locked");
        file.write_all(line.as_bytes())
            .and_then(|_| file.sync_data())
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.rows.lock().expect("no panics while locked").push(row);
        Ok(())
    }

    /// Every row, in sweep order.
    pub fn rows(&self) -> Vec<PointResult> {
        let mut rows = self.rows.lock().expect("no panics while locked").clone();
        rows.sort_by_key(|r| r.index);
        rows
    }

    /// The row of point `id`, if logged.
    pub fn row(&self, id: &str) -> Option<PointResult> {
        let rows = self.rows.lock().expect("no panics while locked");
        rows.iter().find(|r| r.point_id == id).cloned()
    }
}

/// A row as a line of `results.jsonl`, newline included.
pub fn jsonl_line(row: &PointResult) -> String {
    let mut line = serde_json::to_string(row).expect("results serialise");
    line.push('\n');
    line
}

/// Writes `OUT/results.jsonl` atomically with `rows`, in their order: the log of a run that was
/// carried out elsewhere, in parts (a merge of units); a run appends to its log instead.
pub fn write_jsonl(out: &Path, rows: &[PointResult]) -> Result<(), String> {
    let path = out.join("results.jsonl");
    let text: String = rows.iter().map(jsonl_line).collect();
    crate::data::write_atomically(&path, text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes `OUT/results.csv` atomically.
pub fn write_csv(out: &Path, rows: &[PointResult], columns: &[String]) -> Result<(), String> {
    let path = out.join("results.csv");
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let params = swept_params(rows);
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["point_id".to_string(), "index".into(), "status".into()];
    header.extend(params.iter().cloned());
    header.extend(Rate::COLUMNS.map(String::from));
    header.push(NONFINITE_DECODED.into());
    header.extend(columns.iter().cloned());
    let bounds = rows.iter().any(|r| !r.bounds.is_empty());
    if bounds {
        header.push("bound".into());
    }
    header.push("error".into());
    writer.write_record(&header).map_err(|e| err(&e))?;
    for row in rows {
        let mut record = vec![
            row.point_id.clone(),
            row.index.to_string(),
            format!("{:?}", row.status).to_lowercase(),
        ];
        record.extend(
            params
                .iter()
                .map(|p| row.params.get(p).map(plain).unwrap_or_default()),
        );
        match &row.rate {
            Some(r) => record.extend([
                r.original_bytes.to_string(),
                r.compressed_bytes.to_string(),
                r.ratio.to_string(),
                r.bits_per_value.to_string(),
                r.encode_mb_s.to_string(),
                r.decode_mb_s.to_string(),
            ]),
            None => record.extend(std::iter::repeat_n(String::new(), 6)),
        }
        record.push(
            row.nonfinite_decoded
                .map(|n| n.to_string())
                .unwrap_or_default(),
        );
        record.extend(
            columns
                .iter()
                .map(|c| row.column(c).as_ref().map(plain).unwrap_or_default()),
        );
        if bounds {
            record.push(BoundCheck::summary(&row.bounds).unwrap_or_default());
        }
        record.push(row.error.clone().unwrap_or_default());
        writer.write_record(&record).map_err(|e| err(&e))?;
    }
    let bytes = writer.into_inner().map_err(|e| err(&e))?;
    crate::data::write_atomically(&path, &bytes).map_err(|e| err(&e))
}

/// Names of the swept parameters over all rows, in order of first appearance.
pub fn swept_params(rows: &[PointResult]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for key in rows.iter().flat_map(|r| r.params.keys()) {
        if !names.contains(key) {
            names.push(key.clone());
        }
    }
    names
}
