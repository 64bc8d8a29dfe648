//! Stage parameters: their declarations (kind, default, doc) and concrete values.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

/// What values a parameter accepts.
#[derive(Debug, Clone, Copy)]
pub enum ParamKind {
    /// An integer in `min..=max`.
    Int {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A finite float in `min..=max`.
    Float {
        /// Smallest allowed value.
        min: f64,
        /// Largest allowed value.
        max: f64,
    },
    /// One of a fixed set of strings.
    Choice(&'static [&'static str]),
    /// Two finite floats `[lo, hi]` with `lo < hi`.
    Interval,
    /// Any non-empty string.
    Text,
    /// A shell command line photonqa runs (`sh -c`): a scenario holding one runs only with the
    /// user's consent (`--allow-commands`; see `scenario::Scenario::commands`).
    Command,
    /// A list of file paths (a TOML array of non-empty strings, each listed once), relative to
    /// the scenario file; photonqa only reads them (see [`crate::pipeline::side`]).
    Files,
}

/// Any finite float (bounds checked elsewhere, or none).
pub const ANY_FLOAT: ParamKind = ParamKind::Float {
    min: f64::MIN,
    max: f64::MAX,
};

impl fmt::Display for ParamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamKind::Int { min, max } => write!(f, "integer {min}..={max}"),
            ParamKind::Float { min, max } if *min == f64::MIN && *max == f64::MAX => {
                write!(f, "finite float")
            }
            ParamKind::Float { min, max } => write!(f, "float {min}..={max}"),
            ParamKind::Choice(options) => write!(f, "one of {}", options.join(", ")),
            ParamKind::Interval => write!(f, "[lo, hi] with lo < hi"),
            ParamKind::Text => write!(f, "text"),
            ParamKind::Command => write!(f, "shell command (runs only with --allow-commands)"),
            ParamKind::Files => write!(f, "list of file paths relative to the scenario file"),
        }
    }
}

/// A parameter's default.
#[derive(Debug, Clone, Copy)]
pub enum Default {
    /// A fixed default value.
    Int(i64),
    /// A fixed default value.
    Float(f64),
    /// A fixed default value.
    Str(&'static str),
    /// No default: absent means "derive it" (e.g. from the data); the doc says how.
    Derived(&'static str),
}

impl fmt::Display for Default {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Default::Int(v) => write!(f, "{v}"),
            Default::Float(v) => write!(f, "{v}"),
            Default::Str(v) => write!(f, "\"{v}\""),
            Default::Derived(how) => f.write_str(how),
        }
    }
}

/// The declaration of one stage parameter.
#[derive(Debug, Clone, Copy)]
pub struct ParamDef {
    /// Key in the scenario.
    pub name: &'static str,
    /// Accepted values.
    pub kind: ParamKind,
    /// Value when the key is absent.
    pub default: Default,
    /// One-line description.
    pub doc: &'static str,
}

/// A concrete parameter value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// An interval `[lo, hi]`.
    Interval([f64; 2]),
    /// A list of strings (file paths).
    List(Vec<String>),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Int(v) => write!(f, "{v}"),
            ParamValue::Float(v) => write!(f, "{v}"),
            ParamValue::Str(v) => write!(f, "{v}"),
            ParamValue::Interval([lo, hi]) => write!(f, "[{lo}, {hi}]"),
            ParamValue::List(items) => {
                let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
                write!(f, "[{}]", quoted.join(", "))
            }
        }
    }
}

impl ParamDef {
    /// Checks a value against this declaration; integers are accepted where floats are.
    pub fn check(&self, value: ParamValue) -> Result<ParamValue, String> {
        let name = self.name;
        match (self.kind, value) {
            (ParamKind::Int { min, max }, ParamValue::Int(v)) => {
                if (min..=max).contains(&v) {
                    Ok(ParamValue::Int(v))
                } else {
                    Err(format!("{name} = {v} is not in {min}..={max}"))
                }
            }
            (ParamKind::Float { min, max }, ParamValue::Int(v)) => self
                .check(ParamValue::Float(v as f64))
                .map_err(|_| format!("{name} = {v} is not in {min}..={max}")),
            (ParamKind::Float { min, max }, ParamValue::Float(v)) => {
                if v.is_finite() && v >= min && v <= max {
                    Ok(ParamValue::Float(v))
                } else if min == f64::MIN && max == f64::MAX {
                    Err(format!("{name} = {v} is not a finite float"))
                } else {
                    Err(format!("{name} = {v} is not in {min}..={max}"))
                }
            }
            (ParamKind::Choice(options), ParamValue::Str(s)) => {
                if options.contains(&s.as_str()) {
                    Ok(ParamValue::Str(s))
                } else {
                    Err(format!(
                        "{name} = \"{s}\" is not allowed (allowed: {})",
                        options.join(", ")
                    ))
                }
            }
            (ParamKind::Text | ParamKind::Command, ParamValue::Str(s)) if !s.trim().is_empty() => {
                Ok(ParamValue::Str(s))
            }
            (ParamKind::Text | ParamKind::Command, ParamValue::Str(_)) => {
                Err(format!("{name} is empty"))
            }
            (ParamKind::Interval, ParamValue::Interval([lo, hi])) => {
                if lo.is_finite() && hi.is_finite() && lo < hi {
                    Ok(ParamValue::Interval([lo, hi]))
                } else {
                    Err(format!("{name} = [{lo}, {hi}] needs finite lo < hi"))
                }
            }
            (ParamKind::Files, ParamValue::List(items)) => {
                if items.is_empty() {
                    return Err(format!("{name} is an empty list (leave it out instead)"));
                }
                if let Some(i) = items.iter().position(|s| s.trim().is_empty()) {
                    return Err(format!("{name}: item {} is an empty path", i + 1));
                }
                if let Some((i, s)) = items
                    .iter()
                    .enumerate()
                    .find(|(i, s)| items[..*i].contains(s))
                {
                    return Err(format!("{name}: \"{s}\" is listed twice (item {})", i + 1));
                }
                Ok(ParamValue::List(items))
            }
            (kind, value) => Err(format!(
                "{name} = {value} has the wrong type (expected {kind})"
            )),
        }
    }

    /// The default as a concrete value, `None` for derived defaults.
    pub fn default_value(&self) -> Option<ParamValue> {
        match self.default {
            Default::Int(v) => Some(ParamValue::Int(v)),
            Default::Float(v) => Some(ParamValue::Float(v)),
            Default::Str(v) => Some(ParamValue::Str(v.to_string())),
            Default::Derived(_) => None,
        }
    }
}

/// The concrete configuration of one stage at one working point: every declared parameter
/// with its value (given or default), in declaration order; derived ones may be absent.
#[derive(Debug, Clone, PartialEq)]
pub struct StageConfig {
    /// Stage id as registered.
    pub stage: &'static str,
    /// Parameter values in declaration order.
    pub params: Vec<(&'static str, ParamValue)>,
}

impl StageConfig {
    fn get(&self, name: &str) -> Option<&ParamValue> {
        self.params.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Integer parameter (declared with a default or given).
    pub fn int(&self, name: &str) -> i64 {
        match self.get(name) {
            Some(ParamValue::Int(v)) => *v,
            other => unreachable!(
                "stage {} param {name} is {other:?}, checked at validation",
                self.stage
            ),
        }
    }

    /// Float parameter (declared with a default or given).
    pub fn float(&self, name: &str) -> f64 {
        match self.get(name) {
            Some(ParamValue::Float(v)) => *v,
            other => unreachable!(
                "stage {} param {name} is {other:?}, checked at validation",
                self.stage
            ),
        }
    }

    /// The parameter that the choice parameter `choice` selects among `by_choice` (pairs of
    /// a choice and its parameter, e.g. SZ3's `("abs", "abs_error")`): an error when another
    /// of those parameters is set (naming the choice it belongs to) or the selected one is not.
    pub fn selected(
        &self,
        choice: &str,
        by_choice: &[(&str, &'static str)],
    ) -> Result<&'static str, String> {
        let chosen = self.str(choice);
        let (_, wanted) = by_choice
            .iter()
            .find(|(c, _)| *c == chosen)
            .expect("the choice is validated");
        if let Some((other, name)) = by_choice
            .iter()
            .find(|(_, name)| name != wanted && self.get(name).is_some())
        {
            return Err(format!(
                "{name} is set but {choice} = \"{chosen}\" (use {choice} = \"{other}\", or {wanted})"
            ));
        }
        match self.get(wanted) {
            Some(_) => Ok(wanted),
            None => Err(format!("{choice} = \"{chosen}\" needs {wanted}")),
        }
    }

    /// Optional integer parameter (derived default).
    pub fn opt_int(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(ParamValue::Int(v)) => Some(*v),
            _ => None,
        }
    }

    /// Optional list parameter (derived default): the list, or an empty one when absent.
    pub fn list(&self, name: &str) -> &[String] {
        match self.get(name) {
            Some(ParamValue::List(v)) => v,
            _ => &[],
        }
    }

    /// Optional float parameter (derived default).
    pub fn opt_float(&self, name: &str) -> Option<f64> {
        match self.get(name) {
            Some(ParamValue::Float(v)) => Some(*v),
            _ => None,
        }
    }

    /// String parameter (declared with a default or given).
    pub fn str(&self, name: &str) -> &str {
        match self.get(name) {
            Some(ParamValue::Str(v)) => v,
            other => unreachable!(
                "stage {} param {name} is {other:?}, checked at validation",
                self.stage
            ),
        }
    }

    /// Optional interval parameter (derived default).
    pub fn opt_interval(&self, name: &str) -> Option<[f64; 2]> {
        match self.get(name) {
            Some(ParamValue::Interval(v)) => Some(*v),
            _ => None,
        }
    }

    /// The configuration as a JSON object `{ "stage": id, param: value, ... }`.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("stage".into(), Value::String(self.stage.into()));
        for (name, value) in &self.params {
            map.insert(
                (*name).into(),
                serde_json::to_value(value).expect("param values serialise"),
            );
        }
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEVEL: ParamDef = ParamDef {
        name: "level",
        kind: ParamKind::Int { min: 1, max: 9 },
        default: Default::Int(6),
        doc: "",
    };

    #[test]
    fn checks_ranges_and_types() {
        assert_eq!(LEVEL.check(ParamValue::Int(9)), Ok(ParamValue::Int(9)));
        assert!(
            LEVEL
                .check(ParamValue::Int(10))
                .unwrap_err()
                .contains("1..=9")
        );
        assert!(
            LEVEL
                .check(ParamValue::Float(2.0))
                .unwrap_err()
                .contains("wrong type")
        );
        let ratio = ParamDef {
            name: "x",
            kind: ParamKind::Float { min: 0.0, max: 1.0 },
            default: Default::Float(0.5),
            doc: "",
        };
        assert_eq!(ratio.check(ParamValue::Int(1)), Ok(ParamValue::Float(1.0)));
        assert!(ratio.check(ParamValue::Float(f64::NAN)).is_err());
    }

    #[test]
    fn file_lists_are_non_empty_distinct_paths() {
        let files = ParamDef {
            name: "side_files",
            kind: ParamKind::Files,
            default: Default::Derived("none"),
            doc: "",
        };
        let list = |items: &[&str]| ParamValue::List(items.iter().map(|s| s.to_string()).collect());
        let both = list(&["model.onnx", "prior.bin"]);
        assert_eq!(files.check(both.clone()), Ok(both.clone()));
        assert_eq!(both.to_string(), r#"["model.onnx", "prior.bin"]"#);
        let error = |value| files.check(value).unwrap_err();
        assert_eq!(
            error(list(&[])),
            "side_files is an empty list (leave it out instead)"
        );
        assert_eq!(
            error(list(&["a", " "])),
            "side_files: item 2 is an empty path"
        );
        assert_eq!(
            error(list(&["a", "b", "a"])),
            "side_files: \"a\" is listed twice (item 3)"
        );
        assert_eq!(
            error(ParamValue::Str("a".into())),
            "side_files = a has the wrong type (expected list of file paths relative to the scenario file)"
        );
        assert_eq!(
            serde_json::to_value(&both).unwrap(),
            serde_json::json!(["model.onnx", "prior.bin"])
        );
    }
}
