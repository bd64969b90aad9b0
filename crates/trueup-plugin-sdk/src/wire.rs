//! The wire format between trueup and a plugin, version [`INTERFACE_VERSION`]: compact,
//! little-endian, read without copying. The host and the plugin both use this module, so
//! the two ends cannot drift apart.
//!
//! A **value** is a tag byte and its payload:
//!
//! | tag | type | payload |
//! |---|---|---|
//! | 0 | null | — |
//! | 1 | int | i64 |
//! | 2 | float | f64 |
//! | 3 | decimal | text (exact number as written, e.g. `12.50`) |
//! | 4 | text | text |
//! | 5 | bool | one byte, 0 or 1 |
//! | 6 | timestamp | text (ISO 8601, e.g. `2026-11-27T17:31:54`) |
//! | 7 | bytes | u32 length, the bytes |
//!
//! where *text* is a u32 byte length and UTF-8. A **batch** of rows (host → plugin) is
//! `u32 rows, u32 columns`, then the values row after row. The plugin's **findings**
//! (plugin → host) are `u32 count`, then each finding: a kind byte (0: of row `u32 index`
//! of the batch, whose key the host knows; 1: with its own key, `u32 n` values in the order
//! of the rule's key columns), the message (text), `u32 n` detail columns (text name, value).
//! Every reply starts with a status byte: 0 ok, then the payload; 1 error, then a message.
//!
//! [`INTERFACE_VERSION`]: crate::INTERFACE_VERSION

use std::fmt;

/// One value of a row, borrowed from the batch it was read from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Float(f64),
    /// An exact number (SQL `NUMERIC`) as its decimal text, so that no digit is lost.
    Decimal(&'a str),
    Text(&'a str),
    Bool(bool),
    /// ISO 8601 text.
    Timestamp(&'a str),
    Bytes(&'a [u8]),
}

impl<'a> Value<'a> {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The text of a text, decimal or timestamp value.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            Value::Text(s) | Value::Decimal(s) | Value::Timestamp(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(x) => Some(*x),
            // Only for reading numbers loosely; exact integers are `as_i64`.
            #[allow(clippy::cast_precision_loss)]
            Value::Int(i) => Some(*i as f64),
            Value::Decimal(d) => d.parse().ok(),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Decimal(s) | Value::Text(s) | Value::Timestamp(s) => f.write_str(s),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Bytes(b) => {
                f.write_str("\\x")?;
                b.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
            }
        }
    }
}

impl From<i64> for Value<'_> {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<i32> for Value<'_> {
    fn from(i: i32) -> Self {
        Value::Int(i.into())
    }
}

impl From<u32> for Value<'_> {
    fn from(i: u32) -> Self {
        Value::Int(i.into())
    }
}

impl From<f64> for Value<'_> {
    fn from(x: f64) -> Self {
        Value::Float(x)
    }
}

impl From<bool> for Value<'_> {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Text(s)
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(s: &'a String) -> Self {
        Value::Text(s)
    }
}

impl<'a> From<&'a Box<str>> for Value<'a> {
    fn from(s: &'a Box<str>) -> Self {
        Value::Text(s)
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(b: &'a [u8]) -> Self {
        Value::Bytes(b)
    }
}

impl<'a, T: Into<Value<'a>>> From<Option<T>> for Value<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Reply status bytes.
pub const OK: u8 = 0;
pub const ERROR: u8 = 1;

/// Finding kinds.
pub const OF_ROW: u8 = 0;
pub const WITH_KEY: u8 = 1;

/// Appends wire data to a buffer.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A length, which the format keeps in 32 bits (a plugin's memory is 32-bit anyway).
    pub fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }

    pub fn str(&mut self, s: &str) {
        self.len(s.len());
        self.buf.extend_from_slice(s.as_bytes());
    }

    pub fn value(&mut self, value: Value<'_>) {
        match value {
            Value::Null => self.u8(0),
            Value::Int(i) => {
                self.u8(1);
                self.buf.extend_from_slice(&i.to_le_bytes());
            }
            Value::Float(x) => {
                self.u8(2);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::Decimal(s) => {
                self.u8(3);
                self.str(s);
            }
            Value::Text(s) => {
                self.u8(4);
                self.str(s);
            }
            Value::Bool(b) => {
                self.u8(5);
                self.u8(u8::from(b));
            }
            Value::Timestamp(s) => {
                self.u8(6);
                self.str(s);
            }
            Value::Bytes(b) => {
                self.u8(7);
                self.len(b.len());
                self.buf.extend_from_slice(b);
            }
        }
    }
}

/// What is wrong with bytes that do not follow the format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Malformed {}

/// Reads wire data, checking every length against what is there.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(Malformed(format!(
                "ends early: {n} byte(s) wanted at offset {} of {}",
                self.at,
                self.bytes.len()
            )));
        };
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    pub fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, Malformed> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A count or length, as `usize`.
    pub fn len(&mut self) -> Result<usize, Malformed> {
        usize::try_from(self.u32()?).map_err(|_| Malformed("a length does not fit".to_owned()))
    }

    pub fn str(&mut self) -> Result<&'a str, Malformed> {
        let n = self.len()?;
        std::str::from_utf8(self.take(n)?)
            .map_err(|e| Malformed(format!("text that is not UTF-8: {e}")))
    }

    /// The bytes not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = &self.bytes[self.at.min(self.bytes.len())..];
        self.at = self.bytes.len();
        rest
    }

    pub fn value(&mut self) -> Result<Value<'a>, Malformed> {
        Ok(match self.u8()? {
            0 => Value::Null,
            1 => Value::Int(i64::from_le_bytes(self.array()?)),
            2 => Value::Float(f64::from_le_bytes(self.array()?)),
            3 => Value::Decimal(self.str()?),
            4 => Value::Text(self.str()?),
            5 => Value::Bool(self.u8()? != 0),
            6 => Value::Timestamp(self.str()?),
            7 => {
                let n = self.len()?;
                Value::Bytes(self.take(n)?)
            }
            tag => return Err(Malformed(format!("unknown value tag {tag}"))),
        })
    }
}

/// A batch of rows: every value, row after row.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch<'a> {
    pub columns: usize,
    pub values: Vec<Value<'a>>,
}

impl<'a> Batch<'a> {
    /// Reads a batch; it must have `columns` columns.
    pub fn decode(bytes: &'a [u8], columns: usize) -> Result<Batch<'a>, Malformed> {
        let mut reader = Reader::new(bytes);
        let rows = reader.len()?;
        let found = reader.len()?;
        if found != columns {
            return Err(Malformed(format!(
                "a batch of {found} column(s) for a query of {columns}"
            )));
        }
        let count = rows
            .checked_mul(columns)
            .filter(|&n| n <= bytes.len())
            .ok_or_else(|| Malformed(format!("{rows} rows cannot fit in {} bytes", bytes.len())))?;
        let mut values = Vec::with_capacity(count);
        for _ in 0..count {
            values.push(reader.value()?);
        }
        Ok(Batch { columns, values })
    }

    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[Value<'a>]> {
        self.values.chunks(self.columns.max(1))
    }
}

/// Starts a batch of `rows` rows of `columns` columns; append the values row after row.
pub fn batch_header(out: &mut Writer, rows: usize, columns: usize) {
    out.len(rows);
    out.len(columns);
}

/// One finding as it crosses the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct WireFinding<'a> {
    pub at: FindingAt<'a>,
    pub message: &'a str,
    pub detail: Vec<(&'a str, Value<'a>)>,
}

/// Which row a finding is about.
#[derive(Debug, Clone, PartialEq)]
pub enum FindingAt<'a> {
    /// Row `n` of the batch the plugin was given: its key is that row's.
    Row(usize),
    /// Its own key values, in the order of the rule's key columns.
    Key(Vec<Value<'a>>),
}

/// Reads a reply of findings (after its status byte).
pub fn decode_findings(bytes: &[u8]) -> Result<Vec<WireFinding<'_>>, Malformed> {
    let mut reader = Reader::new(bytes);
    let count = reader.len()?;
    // The count is the plugin's word: reserve no more than the bytes can hold (a finding
    // takes at least 13: kind, row, empty message, no detail).
    let mut findings = Vec::with_capacity(count.min(bytes.len() / 13));
    for _ in 0..count {
        let at = match reader.u8()? {
            OF_ROW => FindingAt::Row(reader.len()?),
            WITH_KEY => {
                let n = reader.len()?;
                let mut key = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    key.push(reader.value()?);
                }
                FindingAt::Key(key)
            }
            kind => return Err(Malformed(format!("unknown finding kind {kind}"))),
        };
        let message = reader.str()?;
        let n = reader.len()?;
        let mut detail = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            detail.push((reader.str()?, reader.value()?));
        }
        findings.push(WireFinding {
            at,
            message,
            detail,
        });
    }
    if !reader.is_empty() {
        return Err(Malformed("bytes left after the last finding".to_owned()));
    }
    Ok(findings)
}

/// A reply's status and payload: `Ok(payload)` or `Err(the plugin's message)`.
pub fn split_reply(reply: &[u8]) -> Result<Result<&[u8], String>, Malformed> {
    match reply.split_first() {
        Some((&OK, payload)) => Ok(Ok(payload)),
        Some((&ERROR, message)) => Ok(Err(String::from_utf8_lossy(message).into_owned())),
        Some((status, _)) => Err(Malformed(format!("unknown reply status {status}"))),
        None => Err(Malformed("an empty reply".to_owned())),
    }
}

/// What the host tells a plugin before the first batch (JSON).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Start {
    /// The rule's `[rule.detector.config]`, as JSON.
    pub config: serde_json::Value,
    /// The query's result columns, in order.
    pub columns: Vec<String>,
    /// The rule's key columns.
    pub key: Vec<String>,
}

/// What a plugin says of itself (JSON).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Description {
    pub name: String,
    pub version: String,
    pub description: String,
    /// JSON Schema of the plugin's configuration.
    pub config_schema: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_the_round_trip() {
        let values = [
            Value::Null,
            Value::Int(-42),
            Value::Float(2.5),
            Value::Decimal("12.50"),
            Value::Text("é"),
            Value::Bool(true),
            Value::Timestamp("2026-11-27T17:31:54"),
            Value::Bytes(&[0, 255]),
        ];
        let mut out = Writer::new();
        batch_header(&mut out, 2, 4);
        values.iter().for_each(|v| out.value(*v));
        let batch = Batch::decode(&out.buf, 4).unwrap();
        assert_eq!(batch.values, values);
        assert_eq!(batch.rows().len(), 2);
    }

    #[test]
    fn truncated_or_lying_input_is_malformed_not_a_panic() {
        let mut out = Writer::new();
        batch_header(&mut out, 1, 1);
        out.value(Value::Text("hello"));
        for end in 0..out.buf.len() {
            assert!(Batch::decode(&out.buf[..end], 1).is_err(), "cut at {end}");
        }
        assert!(Batch::decode(&out.buf, 2).is_err());
        let mut huge = Writer::new();
        batch_header(&mut huge, u32::MAX as usize, 1);
        assert!(Batch::decode(&huge.buf, 1).is_err());
        assert!(decode_findings(&[9, 9, 9, 9]).is_err());
        assert!(decode_findings(&[0, 0, 0, 0, 1]).is_err());
    }
}
