//! The baseline: the gated values of every working point of a blessed run, as a JSON file
//! meant to be committed and reviewed in diffs.
//!
//! ```json
//! {
//!   "format_version": 1,
//!   "scenario": "seed-otsu-uint8-zip",
//!   "scenario_hash": "9f2c…",
//!   "photonqa_version": "0.1.0",
//!   "input_hash": "41ab…",
//!   "columns": ["original_bytes", "compressed_bytes", "ratio", "bits_per_value", "psnr"],
//!   "points": {
//!     "wp-0a1b2c3d4e": {
//!       "index": 0,
//!       "params": { "quantize.bits": 4, "deflate.level": 1 },
//!       "status": "ok",
//!       "values": { "original_bytes": 1048576, "compressed_bytes": 81234,
//!                   "ratio": 12.908, "bits_per_value": 0.6197, "psnr": "inf" }
//!     },
//!     "wp-99aa00bb11": {
//!       "index": 1,
//!       "params": { "quantize.bits": 4, "deflate.level": 6 },
//!       "status": "error",
//!       "error": "stage deflate: …",
//!       "values": {}
//!     }
//!   }
//! }
//! ```
//!
//! Keys come in a fixed order (the fields above, points in sweep order, values in column
//! order), so re-blessing an unchanged run rewrites the same bytes and a changed one shows as
//! a small diff. Values are as in `results.jsonl`: JSON numbers (integers stay integers), and
//! `"inf"`, `"-inf"`, `"nan"` for non-finite ones ([`crate::metrics::values::metric_json`]). A value the point does not
//! have (a failed point, a metric skipped for this data) is left out.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs;
use std::path::Path;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{GateError, one_line, write_atomically};
use crate::runner::results::{PointResult, Status};
use crate::scenario::tolerances::{RATE_COLUMNS, SIDE_COLUMNS, TIMING_COLUMNS, gated_columns};

/// Version of the baseline format written by [`Baseline::write`]; [`Baseline::read`] reads
/// only this one.
pub const FORMAT_VERSION: u64 = 1;

/// A blessed run: what [`super::check()`] compares a new run with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// [`FORMAT_VERSION`] when written.
    pub format_version: u64,
    /// `[scenario] name`.
    pub scenario: String,
    /// BLAKE3 of the scenario file when blessed (a change is reported, not gated).
    pub scenario_hash: String,
    /// photonqa version that blessed it.
    pub photonqa_version: String,
    /// Hash of the input data (dtype, shape, values) when blessed, from the rows' provenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_hash: Option<String>,
    /// BLAKE3 of the side files when blessed (learned codecs' models, see
    /// [`crate::pipeline::side`]), by path; absent without side files (a change is reported,
    /// like the input's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub side_files: BTreeMap<String, String>,
    /// The gated columns: [`RATE_COLUMNS`], then the scenario's metric columns.
    pub columns: Vec<String>,
    /// The working points in sweep order; in JSON an object keyed by point id.
    #[serde(with = "points_by_id")]
    pub points: Vec<BaselinePoint>,
}

/// One working point of a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselinePoint {
    /// Stable id of the concrete pipeline (the key of the point in JSON).
    #[serde(skip)]
    pub point_id: String,
    /// Position in the sweep.
    pub index: usize,
    /// Values of the swept parameters, as `stage.param`.
    pub params: Map<String, Value>,
    /// Outcome.
    pub status: Status,
    /// Why the point failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The gated values the point has, by column.
    #[serde(default)]
    pub values: Map<String, Value>,
}

impl Baseline {
    /// A baseline of `rows` (any order; kept in sweep order) with the rate columns and
    /// `columns` (the run's scalar metric columns, `RunSummary::columns`). Fails when two rows
    /// share a point id.
    pub fn from_rows(
        scenario_name: &str,
        scenario_hash: &str,
        rows: &[PointResult],
        columns: &[String],
    ) -> Result<Baseline, GateError> {
        let columns = gated_columns(columns);
        let mut ordered: Vec<&PointResult> = rows.iter().collect();
        ordered.sort_by_key(|r| r.index);
        let mut seen = HashSet::new();
        let mut points = Vec::with_capacity(ordered.len());
        for row in ordered {
            if !seen.insert(row.point_id.as_str()) {
                return Err(GateError::Rows(format!(
                    "point {} appears twice in the results",
                    row.point_id
                )));
            }
            points.push(BaselinePoint {
                point_id: row.point_id.clone(),
                index: row.index,
                params: row.params.clone(),
                status: row.status,
                error: row.error.clone(),
                values: columns
                    .iter()
                    .filter_map(|c| Some((c.clone(), gated_value(row, c)?)))
                    .collect(),
            });
        }
        Ok(Baseline {
            format_version: FORMAT_VERSION,
            scenario: scenario_name.to_string(),
            scenario_hash: scenario_hash.to_string(),
            photonqa_version: env!("CARGO_PKG_VERSION").to_string(),
            input_hash: rows.first().map(|r| r.provenance.input_hash.clone()),
            side_files: rows
                .first()
                .map(|r| r.provenance.side_files.clone())
                .unwrap_or_default(),
            columns,
            points,
        })
    }

    /// The point with id `point_id`.
    pub fn point(&self, point_id: &str) -> Option<&BaselinePoint> {
        self.points.iter().find(|p| p.point_id == point_id)
    }

    /// Writes the baseline as pretty JSON with a final newline, atomically.
    pub fn write(&self, path: &Path) -> Result<(), GateError> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| GateError::file(path, e))?;
        text.push('\n');
        write_atomically(path, text.as_bytes())
    }

    /// Reads a baseline written by [`Baseline::write`]. Errors are one line naming the file
    /// and, for JSON and type errors, the line and column.
    pub fn read(path: &Path) -> Result<Baseline, GateError> {
        crate::data::files::refuse_special_file(path)
            .map_err(|e| GateError::file(path, format!("cannot read the baseline: {e}")))?;
        let text = fs::read_to_string(path).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                " (`photonqa bless` writes it)"
            } else {
                ""
            };
            GateError::file(path, format!("cannot read the baseline: {e}{hint}"))
        })?;
        Baseline::parse(&text, path)
    }

    /// Parses the text of a baseline file; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Baseline, GateError> {
        // The version is checked on the loose JSON first: a baseline of another version fails
        // on its version, not on the first field this version does not know.
        let json: Value =
            serde_json::from_str(text).map_err(|e| json_error(path, "malformed JSON", &e))?;
        let Value::Object(top) = &json else {
            return Err(GateError::file(
                path,
                "not a photonqa baseline (expected a JSON object)",
            ));
        };
        match top.get("format_version") {
            None => {
                return Err(GateError::file(
                    path,
                    "not a photonqa baseline (no format_version)",
                ));
            }
            Some(v) if v.as_u64() == Some(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(GateError::file(
                    path,
                    format!(
                        "baseline format version {v}, but photonqa {} reads version {FORMAT_VERSION}; bless the scenario again",
                        env!("CARGO_PKG_VERSION")
                    ),
                ));
            }
        }
        let baseline: Baseline =
            serde_json::from_str(text).map_err(|e| json_error(path, "invalid baseline", &e))?;
        for point in &baseline.points {
            if let Some(column) = point.values.keys().find(|c| !baseline.columns.contains(c)) {
                return Err(GateError::file(
                    path,
                    format!(
                        "invalid baseline: point {} has a value for {column}, which is not in columns",
                        point.point_id
                    ),
                ));
            }
        }
        Ok(baseline)
    }
}

/// The gated value of `column` in `row`: a rate column from the rate (absent for a failed
/// point), else the metric column through [`PointResult::value`]. Timing is never gated.
pub fn gated_value(row: &PointResult, column: &str) -> Option<Value> {
    if TIMING_COLUMNS.contains(&column) {
        return None;
    }
    if RATE_COLUMNS.contains(&column) || SIDE_COLUMNS.contains(&column) {
        return row.rate.as_ref()?.get(column);
    }
    row.value(column).cloned()
}

/// A serde_json error as a file error at its line and column (serde_json's own message ends
/// in " at line L column C", which the position replaces).
fn json_error(path: &Path, what: &str, e: &serde_json::Error) -> GateError {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text);
    GateError::File {
        file: path.display().to_string(),
        position: (e.line() > 0).then_some((e.line(), e.column())),
        message: one_line(&format!("{what}: {message}")),
    }
}

/// `points` as a JSON object keyed by point id, in sweep order; a repeated id is an error
/// (serde_json's own maps would keep the last silently).
mod points_by_id {
    use super::*;

    pub fn serialize<S: Serializer>(
        points: &[BaselinePoint],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(points.len()))?;
        for point in points {
            map.serialize_entry(&point.point_id, point)?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<BaselinePoint>, D::Error> {
        deserializer.deserialize_map(PointsVisitor)
    }

    struct PointsVisitor;

    impl<'de> Visitor<'de> for PointsVisitor {
        type Value = Vec<BaselinePoint>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of points keyed by point id")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut points: Vec<BaselinePoint> = Vec::new();
            while let Some(id) = map.next_key::<String>()? {
                let mut point: BaselinePoint = map.next_value()?;
                if points.iter().any(|p| p.point_id == id) {
                    return Err(de::Error::custom(format!("point {id} appears twice")));
                }
                point.point_id = id;
                points.push(point);
            }
            Ok(points)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::fixtures::{columns, failed_row, rows};
    use crate::metrics::values::metric_json;

    fn read_text(text: &str) -> Result<Baseline, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gate.json");
        fs::write(&path, text).unwrap();
        Baseline::read(&path).map_err(|e| {
            let e = e.to_string();
            assert!(!e.contains('\n'), "{e}");
            // Shown relative to the temporary folder so that the expected text is fixed.
            e.replace(&path.display().to_string(), "gate.json")
        })
    }

    fn blessed() -> Baseline {
        let mut rows = rows();
        rows.push(failed_row(
            "wp-failed",
            3,
            "stage deflate: level 30 not in 1..=9",
        ));
        Baseline::from_rows("demo", "hash0", &rows, &columns()).unwrap()
    }

    #[test]
    fn from_rows_records_gated_values_in_column_order() {
        let b = blessed();
        assert_eq!(b.format_version, FORMAT_VERSION);
        assert_eq!(b.scenario, "demo");
        assert_eq!(b.scenario_hash, "hash0");
        assert_eq!(b.photonqa_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(b.input_hash.as_deref(), Some("input0"));
        assert_eq!(
            b.columns,
            [
                "original_bytes",
                "compressed_bytes",
                "ratio",
                "bits_per_value",
                "mse",
                "psnr",
                "ssim",
                "frc.resolution",
                "porosity.pore_count_change",
                "porosity.porosity_abs_change"
            ]
        );
        let p = &b.points[0];
        assert_eq!(p.point_id, "wp-a");
        let keys: Vec<&String> = p.values.keys().collect();
        assert_eq!(keys, b.columns.iter().collect::<Vec<_>>());
        assert_eq!(p.values["original_bytes"], Value::from(4096u64));
        assert_eq!(p.values["psnr"], serde_json::json!(30.5));
        assert_eq!(
            p.values["porosity.pore_count_change"],
            serde_json::json!(-2)
        );
        // Timing is not recorded.
        assert!(!p.values.contains_key("encode_mb_s"));
        let failed = b.point("wp-failed").unwrap();
        assert_eq!(failed.status, Status::Error);
        assert!(failed.values.is_empty());
    }

    #[test]
    fn from_rows_keeps_sweep_order_and_drops_timing_columns() {
        let mut rows = rows();
        rows.reverse();
        let mut cols = columns();
        cols.push("encode_mb_s".into());
        cols.push("psnr".into());
        let b = Baseline::from_rows("demo", "h", &rows, &cols).unwrap();
        let ids: Vec<&str> = b.points.iter().map(|p| p.point_id.as_str()).collect();
        assert_eq!(ids, ["wp-a", "wp-b", "wp-c"]);
        assert_eq!(b.columns, blessed().columns);
    }

    #[test]
    fn from_rows_rejects_a_repeated_point() {
        let mut rows = rows();
        rows.push(rows[0].clone());
        let err = Baseline::from_rows("demo", "h", &rows, &columns()).unwrap_err();
        assert_eq!(err.to_string(), "point wp-a appears twice in the results");
    }

    #[test]
    fn non_finite_values_are_strings() {
        let mut rows = rows();
        rows[0]
            .distortion
            .insert("psnr".into(), metric_json(f64::INFINITY));
        rows[0].rate.as_mut().unwrap().ratio = f64::INFINITY;
        rows[1]
            .distortion
            .insert("mse".into(), metric_json(f64::NAN));
        let b = Baseline::from_rows("demo", "h", &rows, &columns()).unwrap();
        assert_eq!(b.points[0].values["psnr"], "inf");
        assert_eq!(b.points[0].values["ratio"], "inf");
        assert_eq!(b.points[1].values["mse"], "nan");
    }

    #[test]
    fn write_then_read_gives_the_same_baseline_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baselines/demo.json");
        let mut b = blessed();
        b.points[1]
            .values
            .insert("psnr".into(), metric_json(f64::NEG_INFINITY));
        b.points[2]
            .values
            .insert("mse".into(), serde_json::json!(0.1 + 0.2));
        b.write(&path).unwrap();
        let back = Baseline::read(&path).unwrap();
        assert_eq!(back, b);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("}\n"));
        // Stable: writing what was read gives the same bytes.
        back.write(&path).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        // Points are keyed by id in sweep order, fields in a fixed order.
        let a = text.find("\"wp-a\"").unwrap();
        let c = text.find("\"wp-c\"").unwrap();
        assert!(a < c);
        let fields: Vec<usize> = [
            "\"format_version\"",
            "\"scenario\"",
            "\"columns\"",
            "\"points\"",
        ]
        .iter()
        .map(|f| text.find(f).unwrap())
        .collect();
        assert!(fields.is_sorted(), "{text}");
    }

    #[test]
    fn missing_file_is_one_line_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.json");
        let err = Baseline::read(&path).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: cannot read the baseline: ", path.display())));
        assert!(err.ends_with("(`photonqa bless` writes it)"), "{err}");
    }

    #[test]
    fn malformed_json_names_file_line_and_column() {
        let err =
            read_text("{\n  \"format_version\": 1,\n  \"scenario\": \"x\"\n  \"points\": {}\n}")
                .unwrap_err();
        assert_eq!(err, "gate.json:4:3: malformed JSON: expected `,` or `}`");
        assert_eq!(
            read_text("").unwrap_err(),
            "gate.json:1:0: malformed JSON: EOF while parsing a value"
        );
    }

    #[test]
    fn wrong_or_missing_version_is_clear() {
        let err = read_text(r#"{"format_version": 2, "whatever": true}"#).unwrap_err();
        assert_eq!(
            err,
            format!(
                "gate.json: baseline format version 2, but photonqa {} reads version 1; bless the scenario again",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert_eq!(
            read_text(r#"{"scenario": "x"}"#).unwrap_err(),
            "gate.json: not a photonqa baseline (no format_version)"
        );
        assert_eq!(
            read_text("[1, 2]").unwrap_err(),
            "gate.json: not a photonqa baseline (expected a JSON object)"
        );
    }

    #[test]
    fn wrong_types_name_the_position() {
        let good = serde_json::to_string_pretty(&blessed()).unwrap();
        let bad = good.replacen("\"index\": 0", "\"index\": \"zero\"", 1);
        let err = read_text(&bad).unwrap_err();
        assert!(
            err.starts_with("gate.json:")
                && err
                    .contains(": invalid baseline: invalid type: string \"zero\", expected usize"),
            "{err}"
        );
        let bad = good.replacen("\"status\": \"ok\"", "\"status\": \"fine\"", 1);
        let err = read_text(&bad).unwrap_err();
        assert!(err.contains("unknown variant `fine`"), "{err}");
        let bad = good.replacen("\"columns\"", "\"colums\"", 1);
        let err = read_text(&bad).unwrap_err();
        assert!(err.contains("unknown field `colums`"), "{err}");
    }

    #[test]
    fn repeated_point_and_stray_value_are_errors() {
        let good = serde_json::to_string_pretty(&blessed()).unwrap();
        let bad = good.replacen("\"wp-b\"", "\"wp-a\"", 1);
        let err = read_text(&bad).unwrap_err();
        assert!(
            err.contains("invalid baseline: point wp-a appears twice"),
            "{err}"
        );
        assert!(err.starts_with("gate.json:"), "{err}");
        let bad = good.replacen("\"mse\":", "\"msee\":", 1);
        assert_eq!(
            read_text(&bad).unwrap_err(),
            "gate.json: invalid baseline: point wp-a has a value for msee, which is not in columns"
        );
    }
}
