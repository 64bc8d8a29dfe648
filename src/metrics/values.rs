//! How metric values are written: JSON numbers, or the strings `"inf"`, `"-inf"` and `"nan"`
//! that JSON has no numbers for; and as text in tables and sentences.

use serde_json::Value;

/// A metric value as JSON: a number, or `"inf"`/`"-inf"`/`"nan"` (JSON has no such numbers).
pub fn metric_json(value: f64) -> Value {
    match serde_json::Number::from_f64(value) {
        Some(n) => Value::Number(n),
        None if value.is_nan() => Value::String("nan".into()),
        None if value > 0.0 => Value::String("inf".into()),
        None => Value::String("-inf".into()),
    }
}

/// A metric value from JSON as written by [`metric_json`].
pub fn metric_value(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A JSON value as plain text (strings without quotes).
pub fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A number for sentences: four significant digits, `inf`, `nan`.
pub fn short(value: f64) -> String {
    if !value.is_finite() {
        return plain(&metric_json(value));
    }
    // Rounding through the exponent form, printed back in plain notation: 0.01235, 1235.
    let rounded: f64 = format!("{value:.3e}").parse().unwrap_or(value);
    rounded.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_numbers_keep_four_significant_digits() {
        assert_eq!(short(0.0123456), "0.01235");
        assert_eq!(short(12346.0), "12350");
        assert_eq!(short(0.5), "0.5");
        assert_eq!(short(f64::INFINITY), "inf");
        assert_eq!(short(f64::NAN), "nan");
    }
}
