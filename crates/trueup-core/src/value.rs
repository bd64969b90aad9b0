//! Column values as trueup carries them from a database to a renderer.

use std::fmt;

use serde::{Serialize, Serializer};
use trueup_plugin_sdk::wire;

/// One value of a result row, typed loosely enough to cover every source.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// An exact number (SQL `NUMERIC`/`DECIMAL`) kept as its decimal text, so no digit is lost.
    Decimal(String),
    Text(String),
    /// A date or timestamp, as ISO 8601 text in the database's own style
    /// (`2026-11-27 17:31:54`, `2026-11-27 17:31:54.5+00`, `2026-11-27`): ISO text sorts
    /// and compares as the instants do.
    Timestamp(String),
    Bytes(Vec<u8>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// An order over all values, for showing keys sorted: NULL first, then numbers by value,
    /// then text, then bytes.
    pub fn sort_cmp(&self, other: &Value) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        fn number(v: &Value) -> Option<f64> {
            match v {
                // Only to order mixed numbers; equal-looking huge integers compare as ints above.
                #[allow(clippy::cast_precision_loss)]
                Value::Int(i) => Some(*i as f64),
                Value::Float(x) => Some(*x),
                Value::Decimal(d) => d.parse().ok(),
                Value::Bool(b) => Some(f64::from(u8::from(*b))),
                _ => None,
            }
        }
        let rank = |v: &Value| match v {
            Value::Null => 0,
            Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Decimal(_) => 1,
            Value::Text(_) | Value::Timestamp(_) => 2,
            Value::Bytes(_) => 3,
        };
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Text(a), Value::Text(b)) | (Value::Timestamp(a), Value::Timestamp(b)) => {
                a.cmp(b)
            }
            (Value::Bytes(a), Value::Bytes(b)) => a.cmp(b),
            _ => match (number(self), number(other)) {
                (Some(a), Some(b)) => a.total_cmp(&b),
                _ => rank(self).cmp(&rank(other)).then(Ordering::Equal),
            },
        }
    }
}

/// The plugin wire's values (`trueup_plugin_sdk::wire`) are these, borrowed.
impl Value {
    /// The value as the wire carries it.
    pub fn to_wire(&self) -> wire::Value<'_> {
        match self {
            Value::Null => wire::Value::Null,
            Value::Bool(b) => wire::Value::Bool(*b),
            Value::Int(i) => wire::Value::Int(*i),
            Value::Float(x) => wire::Value::Float(*x),
            Value::Decimal(d) => wire::Value::Decimal(d),
            Value::Text(t) => wire::Value::Text(t),
            Value::Timestamp(t) => wire::Value::Timestamp(t),
            Value::Bytes(b) => wire::Value::Bytes(b),
        }
    }

    /// A value from the wire, owned.
    pub fn from_wire(value: wire::Value<'_>) -> Value {
        match value {
            wire::Value::Null => Value::Null,
            wire::Value::Int(i) => Value::Int(i),
            wire::Value::Float(x) => Value::Float(x),
            wire::Value::Decimal(d) => Value::Decimal(d.to_owned()),
            wire::Value::Text(t) => Value::Text(t.to_owned()),
            wire::Value::Timestamp(t) => Value::Timestamp(t.to_owned()),
            wire::Value::Bool(b) => Value::Bool(b),
            wire::Value::Bytes(b) => Value::Bytes(b.to_vec()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{}", FloatText(*x)),
            Value::Decimal(d) => f.write_str(d),
            Value::Text(s) | Value::Timestamp(s) => f.write_str(s),
            Value::Bytes(b) => {
                f.write_str("\\x")?;
                f.write_str(&hex(b))
            }
        }
    }
}

/// Bytes as lowercase hex, two digits each (hashes, plan and journal images, bytes shown).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// Appends `n` in decimal, zero-padded to at least `width` digits, without `format!`'s
/// machinery (timestamps and decimals are written this way for every row read).
pub fn push_padded(out: &mut String, n: u64, width: usize) {
    // Written from the right into zeros, then appended at once: this runs for every part
    // of every timestamp and NUMERIC a comparison reads.
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for _ in digits.len()..width {
        out.push('0');
    }
    let start = at.min(digits.len().saturating_sub(width));
    out.push_str(std::str::from_utf8(&digits[start..]).unwrap_or_default());
}

/// A float for people: at most 10 decimals, so that `1920.5700000000002` (binary floating
/// point noise) reads `1920.57`. JSON output keeps every digit.
struct FloatText(f64);

impl fmt::Display for FloatText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        if !x.is_finite() || x.abs() >= 1e15 || (x != 0.0 && x.abs() < 1e-6) {
            return write!(f, "{x}");
        }
        let text = format!("{x:.10}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        f.write_str(if text == "-0" { "0" } else { text })
    }
}

/// JSON: numbers stay numbers, exact decimals become strings (JSON numbers are doubles for
/// most readers), bytes become `\x`-prefixed hex text.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_none(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::Float(x) => serializer.serialize_f64(*x),
            Value::Decimal(d) | Value::Text(d) | Value::Timestamp(d) => serializer.serialize_str(d),
            Value::Bytes(_) => serializer.collect_str(self),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::Float(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_padded_pads_to_the_width_and_never_cuts() {
        for (n, width, text) in [
            (0, 1, "0"),
            (7, 2, "07"),
            (2026, 4, "2026"),
            (12345, 4, "12345"),
            (5, 6, "000005"),
            (u64::MAX, 1, "18446744073709551615"),
            (3, 22, "0000000000000000000003"),
        ] {
            let mut out = "x".to_owned();
            push_padded(&mut out, n, width);
            assert_eq!(out, format!("x{text}"), "{n} {width}");
        }
    }

    #[test]
    fn floats_read_without_binary_noise() {
        assert_eq!(Value::Float(1920.5700000000002).to_string(), "1920.57");
        assert_eq!(Value::Float(0.1 + 0.2).to_string(), "0.3");
        assert_eq!(Value::Float(12.0).to_string(), "12");
        assert_eq!(Value::Float(-0.0).to_string(), "0");
        assert_eq!(Value::Float(1.5e-9).to_string(), "0.0000000015");
        assert_eq!(Value::Float(f64::NAN).to_string(), "NaN");
    }

    #[test]
    fn json_keeps_types_and_every_digit() {
        let values = [
            Value::Null,
            Value::Int(3),
            Value::Float(0.1 + 0.2),
            Value::Decimal("10.50".into()),
            Value::Bytes(vec![1, 255]),
        ];
        assert_eq!(
            serde_json::to_string(&values).unwrap(),
            r#"[null,3,0.30000000000000004,"10.50","\\x01ff"]"#
        );
    }
}
