//! A value of a fixture's rows, keys and details as a fixture writes it: read from TOML
//! into core's `Value` (which goes over the wire as a source's values do), and shown back
//! in the same TOML form.

use std::fmt;

use trueup_core::value::Value;

/// What a value in a fixture is written as, for messages.
const VALUE_FORMS: &str = "an integer, float, string, bool or datetime, or one of \
    `{ null = true }`, `{ decimal = \"12.50\" }`, `{ bytes = \"00ff\" }`, \
    `{ timestamp = \"2026-01-31T12:00:00\" }`";

/// Reads a value as a fixture writes it.
pub fn parse(value: &toml::Value) -> Result<Value, String> {
    Ok(match value {
        toml::Value::Integer(i) => Value::Int(*i),
        toml::Value::Float(x) => Value::Float(*x),
        toml::Value::String(s) => Value::Text(s.clone()),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::Timestamp(d.to_string()),
        toml::Value::Table(table) if table.len() == 1 => {
            let (kind, value) = table.iter().next().expect("one entry");
            match (kind.as_str(), value) {
                ("null", toml::Value::Boolean(true)) => Value::Null,
                ("decimal", toml::Value::String(s)) if is_decimal(s) => Value::Decimal(s.clone()),
                ("decimal", _) => {
                    return Err(
                        "a decimal is its digits as a string, e.g. `{ decimal = \"-12.50\" }`"
                            .to_owned(),
                    );
                }
                ("bytes", toml::Value::String(s)) => Value::Bytes(unhex(s)?),
                ("timestamp", toml::Value::String(s)) => Value::Timestamp(s.clone()),
                _ => return Err(format!("a value is {VALUE_FORMS}")),
            }
        }
        _ => return Err(format!("a value is {VALUE_FORMS}")),
    })
}

/// A value shown as a fixture writes it.
pub struct Fixture<'a>(pub &'a Value);

impl fmt::Display for Fixture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Null => f.write_str("{ null = true }"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) if x.is_nan() => f.write_str("nan"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Decimal(d) => write!(f, "{{ decimal = {} }}", super::toml_string(d)),
            Value::Text(t) => f.write_str(&super::toml_string(t)),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Timestamp(t) if t.parse::<toml::value::Datetime>().is_ok() => f.write_str(t),
            Value::Timestamp(t) => write!(f, "{{ timestamp = {} }}", super::toml_string(t)),
            Value::Bytes(b) => write!(f, "{{ bytes = \"{}\" }}", trueup_core::value::hex(b)),
        }
    }
}

fn is_decimal(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

fn unhex(text: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("`{text}` is not hex: write two hex digits per byte, e.g. \"00ff\"");
    if !text.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}
