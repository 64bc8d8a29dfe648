//! Parameter values that sweep: `{ sweep = [..] }`, `{ range = [lo, hi], steps = n,
//! scale = "lin" | "log" }` and `{ search = [lo, hi], ... }` (an adaptive search whose grid is
//! the fallback), and the expansion of a scenario into working points.

use std::collections::HashMap;

use toml::Value;

use super::interval::{Interval, Scale};
use super::toml_number;
use crate::pipeline::{ParamDef, ParamKind, ParamValue, StageConfig};

/// Grid steps of a float search when `steps` is not given.
const DEFAULT_SEARCH_STEPS: i64 = 8;

/// Largest integer search whose grid holds every integer when `steps` is not given.
const MAX_DENSE_INTEGER_GRID: i64 = 33;

/// Largest number of working points one scenario may expand to.
pub const MAX_WORKING_POINTS: usize = 100_000;

/// Turns one TOML parameter value into the list of concrete values it stands for
/// (one value for a scalar). Every value is checked against the declaration.
/// A value listed twice (`{ sweep = [4, 4] }`, a float range finer than floats resolve) is an
/// error: two working points would be the same pipeline.
pub fn expand_value(def: &ParamDef, value: &Value) -> Result<Vec<ParamValue>, String> {
    let (form, values) = match value {
        Value::Table(table) if table.contains_key("sweep") => {
            if let Some(key) = table.keys().find(|k| *k != "sweep") {
                return Err(format!(
                    "unknown key '{key}' next to `sweep` in {}",
                    def.name
                ));
            }
            let Value::Array(items) = &table["sweep"] else {
                return Err(format!("{}: `sweep` needs a list of values", def.name));
            };
            if items.is_empty() {
                return Err(format!("{}: `sweep` is empty", def.name));
            }
            let values = items
                .iter()
                .map(|v| scalar(def, v))
                .collect::<Result<Vec<_>, _>>()?;
            ("`sweep`", values)
        }
        Value::Table(table) if table.contains_key("range") => ("`range`", range(def, table)?),
        Value::Table(table) if table.contains_key("search") => {
            let (_, grid) = search(def, table)?;
            ("the grid of `search`", range(def, &grid)?)
        }
        Value::Table(_) => {
            return Err(format!(
                "{}: a table value must be {{ sweep = [..] }}, {{ range = [lo, hi], steps = n, scale = \"lin\"|\"log\" }} or {{ search = [lo, hi], ... }}",
                def.name
            ));
        }
        other => ("", vec![scalar(def, other)?]),
    };
    let values = values
        .into_iter()
        .map(|v| def.check(v))
        .collect::<Result<Vec<_>, _>>()?;
    // Integer ranges merge the values their rounding repeats (documented); a list or a float
    // range that repeats a value would run one pipeline twice under two names.
    if let Some((i, v)) = values
        .iter()
        .enumerate()
        .find(|(i, v)| values[..*i].contains(v))
    {
        let first = values.iter().position(|w| w == v).expect("found before i");
        let hint = if form == "`sweep`" {
            "list each value once"
        } else {
            "its steps are closer than floating point resolves; use fewer steps"
        };
        return Err(format!(
            "{}: {form} gives the value {v} twice (values {} and {} of {}): two working points would be the same pipeline; {hint}",
            def.name,
            first + 1,
            i + 1,
            values.len()
        ));
    }
    Ok(values)
}

/// The interval of `{ search = [lo, hi], scale = "lin"|"log", tolerance = t, steps = n }`, or
/// `None` when `value` is no search. `tolerance` (floats only, default 1 % on a log scale and
/// 1/100 of the interval on a linear one) is where bisection stops; `steps` is the grid that
/// runs when the search finds the metrics not monotone (default: every integer of up to 33,
/// else 8 values).
pub fn search_interval(def: &ParamDef, value: &Value) -> Option<Result<Interval, String>> {
    match value {
        Value::Table(table) if table.contains_key("search") => {
            Some(search(def, table).map(|(interval, _)| interval))
        }
        _ => None,
    }
}

/// A search's interval and its fallback grid as a `range` table.
fn search(def: &ParamDef, table: &toml::Table) -> Result<(Interval, toml::Table), String> {
    let name = def.name;
    if let Some(key) = table
        .keys()
        .find(|k| !["search", "steps", "scale", "tolerance"].contains(&k.as_str()))
    {
        return Err(format!(
            "unknown key '{key}' in the search of {name} (allowed: search, scale, tolerance, steps)"
        ));
    }
    let integer = match def.kind {
        ParamKind::Int { .. } => true,
        ParamKind::Float { .. } => false,
        kind => return Err(format!("{name} ({kind}) cannot be searched")),
    };
    let (lo, hi) = match &table["search"] {
        Value::Array(b) if b.len() == 2 => match (toml_number(&b[0]), toml_number(&b[1])) {
            (Some(lo), Some(hi)) => (lo, hi),
            _ => return Err(format!("{name}: `search` needs [lo, hi] of numbers")),
        },
        _ => return Err(format!("{name}: `search` needs [lo, hi] of numbers")),
    };
    for end in [lo, hi] {
        let end = if integer {
            ParamValue::Int(end as i64)
        } else {
            ParamValue::Float(end)
        };
        def.check(end)?;
    }
    let scale = match table.get("scale").map(|v| v.as_str()) {
        None | Some(Some("lin")) => Scale::Linear,
        Some(Some("log")) => Scale::Log,
        Some(_) => return Err(format!("{name}: `scale` must be \"lin\" or \"log\"")),
    };
    let tolerance = match (table.get("tolerance"), integer) {
        (Some(_), true) => {
            return Err(format!(
                "{name}: an integer search stops at adjacent integers; `tolerance` is for floats"
            ));
        }
        (Some(t), false) => {
            toml_number(t).ok_or_else(|| format!("{name}: `tolerance` must be a number"))?
        }
        (None, _) if scale == Scale::Log => 0.01,
        (None, _) => (hi - lo) / 100.0,
    };
    let interval = Interval {
        lo,
        hi,
        scale,
        integer,
        tolerance,
    };
    interval.check().map_err(|e| format!("{name}: {e}"))?;
    let steps = match table.get("steps") {
        Some(steps) => steps.clone(),
        None if integer && hi - lo < MAX_DENSE_INTEGER_GRID as f64 => {
            Value::Integer(hi as i64 - lo as i64 + 1)
        }
        None => Value::Integer(DEFAULT_SEARCH_STEPS),
    };
    let mut grid = toml::Table::new();
    grid.insert("range".into(), table["search"].clone());
    grid.insert("steps".into(), steps);
    if let Some(scale) = table.get("scale") {
        grid.insert("scale".into(), scale.clone());
    }
    Ok((interval, grid))
}

fn scalar(def: &ParamDef, value: &Value) -> Result<ParamValue, String> {
    Ok(match value {
        Value::Integer(v) => ParamValue::Int(*v),
        Value::Float(v) => ParamValue::Float(*v),
        Value::String(v) => ParamValue::Str(v.clone()),
        Value::Array(items) if matches!(def.kind, ParamKind::Interval) && items.len() == 2 => {
            match (toml_number(&items[0]), toml_number(&items[1])) {
                (Some(lo), Some(hi)) => ParamValue::Interval([lo, hi]),
                _ => return Err(format!("{}: an interval is [lo, hi] of numbers", def.name)),
            }
        }
        Value::Array(items) if matches!(def.kind, ParamKind::Files) => ParamValue::List(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(format!(
                        "{}: item {} = {other} is not a string (expected {})",
                        def.name,
                        i + 1,
                        def.kind
                    )),
                })
                .collect::<Result<_, _>>()?,
        ),
        other => {
            return Err(format!(
                "{} = {other} has the wrong type (expected {})",
                def.name, def.kind
            ));
        }
    })
}

fn range(def: &ParamDef, table: &toml::Table) -> Result<Vec<ParamValue>, String> {
    let name = def.name;
    if let Some(key) = table
        .keys()
        .find(|k| !["range", "steps", "scale"].contains(&k.as_str()))
    {
        return Err(format!(
            "unknown key '{key}' in the range of {name} (allowed: range, steps, scale)"
        ));
    }
    let bounds = match &table["range"] {
        Value::Array(b) if b.len() == 2 => (toml_number(&b[0]), toml_number(&b[1])),
        _ => (None, None),
    };
    let (Some(lo), Some(hi)) = bounds else {
        return Err(format!("{name}: `range` needs [lo, hi] of numbers"));
    };
    let steps = match table.get("steps") {
        Some(Value::Integer(n)) if (2..=10_000).contains(n) => *n as usize,
        Some(other) => {
            return Err(format!(
                "{name}: `steps` = {other} is not an integer in 2..=10000"
            ));
        }
        None => return Err(format!("{name}: a range needs `steps`")),
    };
    let log = match table.get("scale").map(|v| v.as_str()) {
        None | Some(Some("lin")) => false,
        Some(Some("log")) => true,
        Some(_) => return Err(format!("{name}: `scale` must be \"lin\" or \"log\"")),
    };
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(format!(
            "{name}: `range` needs finite lo < hi, got [{lo}, {hi}]"
        ));
    }
    if log && lo <= 0.0 {
        return Err(format!("{name}: a log range needs lo > 0, got {lo}"));
    }
    let at = |i: usize| {
        let t = i as f64 / (steps - 1) as f64;
        if log {
            (lo.ln() + t * (hi.ln() - lo.ln())).exp()
        } else {
            lo + t * (hi - lo)
        }
    };
    // The end points are exact, whatever the rounding of the interpolation.
    let points = (0..steps).map(|i| match i {
        0 => lo,
        i if i == steps - 1 => hi,
        i => at(i),
    });
    Ok(match def.kind {
        ParamKind::Int { .. } => {
            let mut ints: Vec<i64> = Vec::new();
            for v in points.map(|v| v.round() as i64) {
                if !ints.contains(&v) {
                    ints.push(v);
                }
            }
            ints.into_iter().map(ParamValue::Int).collect()
        }
        ParamKind::Float { .. } => points.map(ParamValue::Float).collect(),
        kind => return Err(format!("{name} ({kind}) cannot take a numeric range")),
    })
}

/// One stage of a scenario with every parameter's list of values.
#[derive(Debug, Clone)]
pub struct StageSweep {
    /// Registered stage id.
    pub stage: &'static str,
    /// Label of the stage in parameter names: its id, or `N:id` when the id repeats.
    pub label: String,
    /// Each declared parameter that has a value, with its values (one for a fixed value).
    pub params: Vec<(&'static str, Vec<ParamValue>)>,
    /// Line and column (1-based) of the stage's `stage = ...` key in the scenario file.
    pub position: (usize, usize),
}

/// One combination of parameter values: a concrete pipeline.
#[derive(Debug, Clone)]
pub struct WorkingPoint {
    /// Position in the expansion (the last swept parameter varies fastest).
    pub index: usize,
    /// Stable id derived from the concrete pipeline (`wp-` and 10 hex digits).
    pub id: String,
    /// The concrete stage configurations.
    pub stages: Vec<StageConfig>,
    /// The swept parameters' values, as `stage.param` (and first the `variant`'s name when
    /// the scenario has `[[variant]]` pipelines).
    pub swept: Vec<(String, ParamValue)>,
    /// Position of its pipeline in [`crate::scenario::Scenario::pipelines`].
    pub pipeline: usize,
}

/// Expands the product of all swept parameters into working points.
pub fn working_points(stages: &[StageSweep]) -> Vec<WorkingPoint> {
    let axes: Vec<(usize, usize)> = stages
        .iter()
        .enumerate()
        .flat_map(|(s, stage)| (0..stage.params.len()).map(move |p| (s, p)))
        .collect();
    let total: usize = axes
        .iter()
        .map(|&(s, p)| stages[s].params[p].1.len())
        .product();
    (0..total)
        .map(|index| {
            let mut rest = index;
            let mut choice = vec![0; axes.len()];
            for (a, &(s, p)) in axes.iter().enumerate().rev() {
                let n = stages[s].params[p].1.len();
                choice[a] = rest % n;
                rest /= n;
            }
            let mut swept = Vec::new();
            let mut configs: Vec<StageConfig> = stages
                .iter()
                .map(|s| StageConfig {
                    stage: s.stage,
                    params: Vec::new(),
                })
                .collect();
            for (a, &(s, p)) in axes.iter().enumerate() {
                let (name, values) = &stages[s].params[p];
                let value = values[choice[a]].clone();
                if values.len() > 1 {
                    swept.push((format!("{}.{name}", stages[s].label), value.clone()));
                }
                configs[s].params.push((name, value));
            }
            WorkingPoint {
                index,
                id: point_id(&configs),
                stages: configs,
                swept,
                pipeline: 0,
            }
        })
        .collect()
}

/// The first working point whose id an earlier point has, with that earlier point: two
/// points of one concrete pipeline (two `[[variant]]`s alike, or sweeping over the same
/// values), whatever their names.
pub fn first_repeat(points: &[WorkingPoint]) -> Option<(&WorkingPoint, &WorkingPoint)> {
    let mut seen: HashMap<&str, &WorkingPoint> = HashMap::with_capacity(points.len());
    for point in points {
        if let Some(earlier) = seen.insert(&point.id, point) {
            return Some((earlier, point));
        }
    }
    None
}

/// The id of a concrete pipeline: `wp-` and 10 hex digits of the BLAKE3 of its stages'
/// configurations, stable across runs and sweep orders.
pub fn point_id(stages: &[StageConfig]) -> String {
    let canonical: Vec<_> = stages.iter().map(StageConfig::to_json).collect();
    let hash = blake3::hash(serde_json::to_string(&canonical).expect("json").as_bytes());
    format!("wp-{}", &hash.to_hex()[..10])
}

impl WorkingPoint {
    /// This point with parameter `param` of stage `stage` (whose swept label is `label`, e.g.
    /// `quantize.bits`) set to `value`, at sweep position `index`.
    pub fn with_value(
        &self,
        (stage, param, label): (usize, &str, &str),
        value: ParamValue,
        index: usize,
    ) -> WorkingPoint {
        let mut stages = self.stages.clone();
        for (name, v) in &mut stages[stage].params {
            if *name == param {
                *v = value.clone();
            }
        }
        let mut swept = self.swept.clone();
        match swept.iter_mut().find(|(k, _)| k == label) {
            Some((_, v)) => *v = value,
            None => swept.push((label.to_string(), value)),
        }
        WorkingPoint {
            index,
            id: point_id(&stages),
            stages,
            swept,
            pipeline: self.pipeline,
        }
    }
}

/// Number of working points the sweeps expand to.
pub fn count(stages: &[StageSweep]) -> usize {
    stages
        .iter()
        .flat_map(|s| s.params.iter().map(|(_, v)| v.len()))
        .fold(1usize, |acc, n| acc.saturating_mul(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::params::Default;

    const BITS: ParamDef = ParamDef {
        name: "bits",
        kind: ParamKind::Int { min: 1, max: 16 },
        default: Default::Int(8),
        doc: "",
    };
    const BOUND: ParamDef = ParamDef {
        name: "abs_error",
        kind: ParamKind::Float { min: 0.0, max: 1e9 },
        default: Default::Float(1e-3),
        doc: "",
    };

    fn parse(text: &str) -> Value {
        toml::from_str::<toml::Table>(&format!("v = {text}")).unwrap()["v"].clone()
    }

    #[test]
    fn scalars_and_sweeps() {
        assert_eq!(
            expand_value(&BITS, &parse("4")).unwrap(),
            [ParamValue::Int(4)]
        );
        assert_eq!(
            expand_value(&BITS, &parse("{ sweep = [4, 6, 8] }")).unwrap(),
            [ParamValue::Int(4), ParamValue::Int(6), ParamValue::Int(8)]
        );
        let err = expand_value(&BITS, &parse("{ sweep = [4, 17] }")).unwrap_err();
        assert!(err.contains("1..=16"), "{err}");
        assert!(expand_value(&BITS, &parse("{ swep = [4] }")).is_err());
        assert!(
            expand_value(&BITS, &parse("{ sweep = [] }"))
                .unwrap_err()
                .contains("empty")
        );
    }

    #[test]
    fn log_range_hits_end_points_and_decades() {
        let v = expand_value(
            &BOUND,
            &parse("{ range = [1e-4, 1e-1], steps = 4, scale = \"log\" }"),
        )
        .unwrap();
        let f: Vec<f64> = v
            .iter()
            .map(|v| match v {
                ParamValue::Float(f) => *f,
                _ => panic!(),
            })
            .collect();
        assert_eq!(f[0], 1e-4);
        assert_eq!(f[3], 1e-1);
        assert!(
            (f[1] / 1e-3 - 1.0).abs() < 1e-12 && (f[2] / 1e-2 - 1.0).abs() < 1e-12,
            "{f:?}"
        );
        assert!(
            expand_value(
                &BOUND,
                &parse("{ range = [0, 1], steps = 3, scale = \"log\" }")
            )
            .is_err()
        );
    }

    #[test]
    fn integer_ranges_round_and_deduplicate() {
        let v = expand_value(&BITS, &parse("{ range = [1, 3], steps = 5 }")).unwrap();
        assert_eq!(
            v,
            [ParamValue::Int(1), ParamValue::Int(2), ParamValue::Int(3)]
        );
    }

    #[test]
    fn product_order_and_stable_ids() {
        let stages = vec![
            StageSweep {
                stage: "quantize",
                label: "quantize".into(),
                params: vec![("bits", vec![ParamValue::Int(4), ParamValue::Int(8)])],
                position: (1, 1),
            },
            StageSweep {
                stage: "deflate",
                label: "deflate".into(),
                position: (2, 1),
                params: vec![(
                    "level",
                    vec![ParamValue::Int(1), ParamValue::Int(6), ParamValue::Int(9)],
                )],
            },
        ];
        let points = working_points(&stages);
        assert_eq!(points.len(), 6);
        assert_eq!(count(&stages), 6);
        assert_eq!(
            points[1].swept,
            [
                ("quantize.bits".to_string(), ParamValue::Int(4)),
                ("deflate.level".to_string(), ParamValue::Int(6))
            ]
        );
        assert_eq!(points[3].stages[0].params, [("bits", ParamValue::Int(8))]);
        let ids: std::collections::HashSet<_> = points.iter().map(|p| p.id.clone()).collect();
        assert_eq!(ids.len(), 6);
        // The id depends on the concrete pipeline only, not on the position in the sweep.
        let reordered = vec![
            stages[0].clone(),
            StageSweep {
                params: vec![("level", vec![ParamValue::Int(6)])],
                ..stages[1].clone()
            },
        ];
        let single = working_points(&reordered);
        assert_eq!(single[0].id, points[1].id);
    }
}
