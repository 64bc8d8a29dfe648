//! Acceptance limits on result columns (`[limits]`) and the objective that ranks the points
//! that meet them (`[objective]`): their TOML forms and their JSON forms. How a value meets a
//! limit and how the objective ranks values is the selection's (`select::limits`).

use serde_json::{Map, Value, json};

use super::toml_number;
use crate::metrics::values::metric_json;

/// An acceptance limit on one column: a point meets it when `min <= value <= max` (a missing
/// bound does not constrain). A scenario writes `"ssim" = { min = 0.95 }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// The column: a rate field (`ratio`, `bits_per_value`, ...), a metric (`psnr`,
    /// `frc.resolution`) or an analysis field (`segmentation.dice_foreground`).
    pub column: String,
    /// Smallest accepted value.
    pub min: Option<f64>,
    /// Largest accepted value.
    pub max: Option<f64>,
}

impl Limit {
    /// The limit on `column` from its TOML value: `{ min = x }`, `{ max = y }` or both
    /// (integers are accepted as numbers). Errors are one line naming the column; the caller
    /// adds the file, line and column.
    pub fn from_toml(column: &str, value: &toml::Value) -> Result<Limit, String> {
        if column.is_empty() {
            return Err("a limit needs a column name".into());
        }
        let fail = |what: String| format!("limit on {column}: {what}");
        let table = value.as_table().ok_or_else(|| {
            fail(format!(
                "expected a table like {{ min = 0.95 }} or {{ max = 0.005 }}, not {}",
                a(value.type_str())
            ))
        })?;
        let mut limit = Limit {
            column: column.to_string(),
            min: None,
            max: None,
        };
        for (key, bound) in table {
            let Some(number) = toml_number(bound) else {
                return Err(fail(format!(
                    "{key} must be a number, not {}",
                    a(bound.type_str())
                )));
            };
            if !number.is_finite() {
                let shown = crate::metrics::values::plain(&metric_json(number));
                return Err(fail(format!("{key} must be finite, not {shown}")));
            }
            match key.as_str() {
                "min" => limit.min = Some(number),
                "max" => limit.max = Some(number),
                _ => return Err(fail(format!("unknown key `{key}` (expected min or max)"))),
            }
        }
        match (limit.min, limit.max) {
            (None, None) => Err(fail("sets neither min nor max".into())),
            (Some(min), Some(max)) if min > max => {
                Err(fail(format!("min {min} is above max {max}")))
            }
            _ => Ok(limit),
        }
    }

    /// The limit as JSON: `{"column": .., "min": .., "max": ..}` with the bounds it sets.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("column".into(), json!(self.column));
        self.bounds_json(&mut map);
        Value::Object(map)
    }

    /// Inserts `min` and `max` (those that are set) into `map`.
    pub(crate) fn bounds_json(&self, map: &mut Map<String, Value>) {
        for (key, bound) in [("min", self.min), ("max", self.max)] {
            if let Some(bound) = bound {
                map.insert(key.into(), metric_json(bound));
            }
        }
    }
}

/// What ranks the points that meet every limit: a column to maximise or minimise. The default
/// maximises the compression ratio.
///
/// In a scenario: `[objective] maximize = "ratio"` or `minimize = "bits_per_value"` (a table),
/// or the string form `objective = "max ratio"` / `"min bits_per_value"`.
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    /// The column (see [`Limit::column`]).
    pub column: String,
    /// Whether larger values are better.
    pub maximize: bool,
}

impl Default for Objective {
    fn default() -> Self {
        Objective {
            column: "ratio".into(),
            maximize: true,
        }
    }
}

const OBJECTIVE_FORMS: &str = "expected \"max COLUMN\", \"min COLUMN\", { maximize = \"COLUMN\" } or { minimize = \"COLUMN\" }";

impl Objective {
    /// The objective from its TOML value: a string (see [`Objective::parse`]) or a table with
    /// exactly one key, `maximize` or `minimize`, whose value is the column.
    pub fn from_toml(value: &toml::Value) -> Result<Objective, String> {
        match value {
            toml::Value::String(text) => Objective::parse(text),
            toml::Value::Table(table) => {
                let mut entries = table.iter();
                let (Some((key, column)), None) = (entries.next(), entries.next()) else {
                    return Err(format!(
                        "objective needs exactly one of maximize or minimize; {OBJECTIVE_FORMS}"
                    ));
                };
                let maximize = match key.as_str() {
                    "maximize" => true,
                    "minimize" => false,
                    _ => {
                        return Err(format!(
                            "objective: unknown key `{key}` (expected maximize or minimize)"
                        ));
                    }
                };
                let column = column.as_str().ok_or_else(|| {
                    format!(
                        "objective: {key} must be a column name (a string), not {}",
                        a(column.type_str())
                    )
                })?;
                Objective::new(column, maximize)
            }
            other => Err(format!(
                "objective must be a string or a table, not {}; {OBJECTIVE_FORMS}",
                a(other.type_str())
            )),
        }
    }

    /// The objective from text: `"max COLUMN"` or `"min COLUMN"`.
    pub fn parse(text: &str) -> Result<Objective, String> {
        match text.trim().split_once(char::is_whitespace) {
            Some(("max", column)) => Objective::new(column.trim(), true),
            Some(("min", column)) => Objective::new(column.trim(), false),
            _ => Err(format!("objective \"{text}\": {OBJECTIVE_FORMS}")),
        }
    }

    fn new(column: &str, maximize: bool) -> Result<Objective, String> {
        if column.is_empty() {
            return Err(format!("objective names no column; {OBJECTIVE_FORMS}"));
        }
        Ok(Objective {
            column: column.to_string(),
            maximize,
        })
    }

    /// `"max"` or `"min"`.
    pub fn direction(&self) -> &'static str {
        if self.maximize { "max" } else { "min" }
    }

    /// `"highest"` or `"lowest"`, for sentences.
    pub(crate) fn superlative(&self) -> &'static str {
        if self.maximize { "highest" } else { "lowest" }
    }

    /// The objective as JSON: `{"column": .., "direction": "max" | "min"}`.
    pub fn to_json(&self) -> Value {
        json!({"column": self.column, "direction": self.direction()})
    }
}

/// A TOML type name with its article: "a string", "an integer".
fn a(kind: &str) -> String {
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toml_value(text: &str) -> toml::Value {
        let table: toml::Table = toml::from_str(&format!("x = {text}")).unwrap();
        table["x"].clone()
    }

    fn limit(text: &str) -> Result<Limit, String> {
        Limit::from_toml("ssim", &toml_value(text))
    }

    #[test]
    fn limits_parse_min_max_and_both() {
        assert_eq!(
            limit("{ min = 0.95 }").unwrap(),
            Limit {
                column: "ssim".into(),
                min: Some(0.95),
                max: None
            }
        );
        assert_eq!(limit("{ max = 5 }").unwrap().max, Some(5.0));
        let both = limit("{ min = -1, max = 1.5 }").unwrap();
        assert_eq!((both.min, both.max), (Some(-1.0), Some(1.5)));
        // A single accepted value.
        assert!(limit("{ min = 1, max = 1 }").is_ok());
    }

    #[test]
    fn limit_errors_are_one_lowercase_line_naming_the_column() {
        for (text, expected) in [
            (
                "{ mn = 0.9 }",
                "limit on ssim: unknown key `mn` (expected min or max)",
            ),
            (
                "{ min = \"0.9\" }",
                "limit on ssim: min must be a number, not a string",
            ),
            (
                "{ max = true }",
                "limit on ssim: max must be a number, not a boolean",
            ),
            (
                "{ min = nan }",
                "limit on ssim: min must be finite, not nan",
            ),
            (
                "{ max = -inf }",
                "limit on ssim: max must be finite, not -inf",
            ),
            (
                "{ min = 2, max = 1 }",
                "limit on ssim: min 2 is above max 1",
            ),
            ("{}", "limit on ssim: sets neither min nor max"),
            (
                "0.95",
                "limit on ssim: expected a table like { min = 0.95 } or { max = 0.005 }, not a float",
            ),
        ] {
            let err = limit(text).unwrap_err();
            assert_eq!(err, expected, "{text}");
            assert!(!err.contains('\n'));
        }
        assert_eq!(
            Limit::from_toml("", &toml_value("{ min = 1 }")).unwrap_err(),
            "a limit needs a column name"
        );
    }

    #[test]
    fn objectives_parse_from_strings_and_tables() {
        assert_eq!(Objective::default(), Objective::parse("max ratio").unwrap());
        let min = Objective {
            column: "bits_per_value".into(),
            maximize: false,
        };
        assert_eq!(Objective::parse(" min  bits_per_value ").unwrap(), min);
        assert_eq!(
            Objective::from_toml(&toml_value("\"min bits_per_value\"")).unwrap(),
            min
        );
        assert_eq!(
            Objective::from_toml(&toml_value("{ minimize = \"bits_per_value\" }")).unwrap(),
            min
        );
        assert_eq!(
            Objective::from_toml(&toml_value("{ maximize = \"ratio\" }")).unwrap(),
            Objective::default()
        );
        assert_eq!(
            Objective::default().to_json(),
            json!({"column": "ratio", "direction": "max"})
        );
    }

    #[test]
    fn objective_errors_say_what_is_accepted() {
        let err = |text: &str| Objective::from_toml(&toml_value(text)).unwrap_err();
        assert!(err("\"best ratio\"").starts_with("objective \"best ratio\": expected"));
        assert!(err("\"max\"").starts_with("objective \"max\": expected"));
        assert_eq!(
            err("{ largest = \"ratio\" }"),
            "objective: unknown key `largest` (expected maximize or minimize)"
        );
        assert_eq!(
            err("{ maximize = 1 }"),
            "objective: maximize must be a column name (a string), not an integer"
        );
        assert!(
            err("{ maximize = \"ratio\", minimize = \"mse\" }")
                .starts_with("objective needs exactly one")
        );
        assert!(err("{}").starts_with("objective needs exactly one"));
        assert!(err("3").starts_with("objective must be a string or a table, not an integer"));
    }
}
