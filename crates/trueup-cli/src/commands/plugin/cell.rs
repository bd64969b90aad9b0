//! One value of a fixture's rows, keys and details: read from TOML, sent over the wire,
//! read back from the plugin's findings, and shown the way a fixture writes it.

use std::fmt;

use trueup_plugin_sdk::wire;

/// What a value in a fixture is written as, for messages.
const VALUE_FORMS: &str = "an integer, float, string, bool or datetime, or one of \
    `{ null = true }`, `{ decimal = \"12.50\" }`, `{ bytes = \"00ff\" }`, \
    `{ timestamp = \"2026-01-31T12:00:00\" }`";

/// One value of a row, a key or a detail, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Decimal(String),
    Text(String),
    Bool(bool),
    Timestamp(String),
    Bytes(Vec<u8>),
}

impl Cell {
    pub fn wire(&self) -> wire::Value<'_> {
        match self {
            Cell::Null => wire::Value::Null,
            Cell::Int(i) => wire::Value::Int(*i),
            Cell::Float(x) => wire::Value::Float(*x),
            Cell::Decimal(d) => wire::Value::Decimal(d),
            Cell::Text(t) => wire::Value::Text(t),
            Cell::Bool(b) => wire::Value::Bool(*b),
            Cell::Timestamp(t) => wire::Value::Timestamp(t),
            Cell::Bytes(b) => wire::Value::Bytes(b),
        }
    }

    pub fn from_wire(value: wire::Value<'_>) -> Cell {
        match value {
            wire::Value::Null => Cell::Null,
            wire::Value::Int(i) => Cell::Int(i),
            wire::Value::Float(x) => Cell::Float(x),
            wire::Value::Decimal(d) => Cell::Decimal(d.to_owned()),
            wire::Value::Text(t) => Cell::Text(t.to_owned()),
            wire::Value::Bool(b) => Cell::Bool(b),
            wire::Value::Timestamp(t) => Cell::Timestamp(t.to_owned()),
            wire::Value::Bytes(b) => Cell::Bytes(b.to_vec()),
        }
    }

    /// The value in JSON: decimals and timestamps as text, bytes as hex text.
    pub fn json(&self) -> serde_json::Value {
        match self {
            Cell::Null => serde_json::Value::Null,
            Cell::Int(i) => (*i).into(),
            Cell::Float(x) => (*x).into(),
            Cell::Decimal(s) | Cell::Text(s) | Cell::Timestamp(s) => s.clone().into(),
            Cell::Bool(b) => (*b).into(),
            Cell::Bytes(b) => hex(b).into(),
        }
    }

    /// Reads a value as a fixture writes it.
    pub fn parse(value: &toml::Value) -> Result<Cell, String> {
        Ok(match value {
            toml::Value::Integer(i) => Cell::Int(*i),
            toml::Value::Float(x) => Cell::Float(*x),
            toml::Value::String(s) => Cell::Text(s.clone()),
            toml::Value::Boolean(b) => Cell::Bool(*b),
            toml::Value::Datetime(d) => Cell::Timestamp(d.to_string()),
            toml::Value::Table(table) if table.len() == 1 => {
                let (kind, value) = table.iter().next().expect("one entry");
                match (kind.as_str(), value) {
                    ("null", toml::Value::Boolean(true)) => Cell::Null,
                    ("decimal", toml::Value::String(s)) if is_decimal(s) => {
                        Cell::Decimal(s.clone())
                    }
                    ("decimal", _) => {
                        return Err(
                            "a decimal is its digits as a string, e.g. `{ decimal = \"-12.50\" }`"
                                .to_owned(),
                        );
                    }
                    ("bytes", toml::Value::String(s)) => Cell::Bytes(unhex(s)?),
                    ("timestamp", toml::Value::String(s)) => Cell::Timestamp(s.clone()),
                    _ => return Err(format!("a value is {VALUE_FORMS}")),
                }
            }
            _ => return Err(format!("a value is {VALUE_FORMS}")),
        })
    }
}

impl fmt::Display for Cell {
    /// The value as a fixture writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Null => f.write_str("{ null = true }"),
            Cell::Int(i) => write!(f, "{i}"),
            Cell::Float(x) if x.is_nan() => f.write_str("nan"),
            Cell::Float(x) => write!(f, "{x:?}"),
            Cell::Decimal(d) => write!(f, "{{ decimal = {} }}", super::toml_string(d)),
            Cell::Text(t) => f.write_str(&super::toml_string(t)),
            Cell::Bool(b) => write!(f, "{b}"),
            Cell::Timestamp(t) if t.parse::<toml::value::Datetime>().is_ok() => f.write_str(t),
            Cell::Timestamp(t) => write!(f, "{{ timestamp = {} }}", super::toml_string(t)),
            Cell::Bytes(b) => write!(f, "{{ bytes = \"{}\" }}", hex(b)),
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
