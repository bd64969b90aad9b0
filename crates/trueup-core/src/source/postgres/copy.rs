//! Reading many rows of trueup's own queries with `COPY (query) TO STDOUT (FORMAT binary)`:
//! the server writes each row as one message of length-prefixed fields, which is read here
//! in one tight loop, where sqlx's rows cost an allocation and a stream step per row on top
//! (docs/performance.md, "Reconcile, join mode").
//!
//! The format (PostgreSQL's `COPY` documentation, "Binary Format"): the signature
//! `PGCOPY\n\377\r\n\0`, a 32-bit flags word and a 32-bit header extension length (and that
//! many bytes); then each row as a 16-bit field count and, per field, a 32-bit length (-1
//! for NULL) and that many bytes, each field in its type's binary form; then a field count
//! of -1. All integers are big-endian.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt;
use sqlx::postgres::PgConnection;
use sqlx::{Column, Executor, Statement, TypeInfo};

use super::{Kind, binary_value, unreadable_type};
use crate::compile::DetectorQuery;
use crate::source::fetch::{RowSink, column_names};
use crate::value::Value;
use crate::{Error, Result};

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Runs `query` (which binds no values) on `conn` with `COPY`, handing its rows to `sink`.
/// The columns' names and types come from preparing the query first. Returns only once the
/// server has ended the `COPY`; a caller that stops reading early must not give the session
/// back to the pool (the server would still be sending rows).
pub(super) async fn rows<S: RowSink>(
    conn: &mut PgConnection,
    query: &DetectorQuery,
    sink: &mut S,
) -> Result<()> {
    let statement = conn
        .prepare(sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(
            query.sql.clone(),
        )))
        .await?;
    let kinds = statement
        .columns()
        .iter()
        .map(|c| {
            let name = c.type_info().name();
            Kind::of(name).ok_or_else(|| Error::Other(unreadable_type(name)))
        })
        .collect::<Result<Vec<Kind>>>()?;
    sink.columns(column_names(&statement))?;
    // The newline before `)` ends a `--` comment a side's own query may end with.
    let copy = format!("COPY (\n{}\n) TO STDOUT (FORMAT binary)", query.sql);
    let mut chunks = conn.copy_out_raw(&copy).await?;
    let mut reader = Reader::new(kinds);
    // The bytes of a row cut between two messages, kept until the rest arrives. The server
    // sends one row a message, so rows are as a rule slices of their message, not copies.
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = chunks.try_next().await? {
        let carried = !pending.is_empty();
        let bytes = if carried {
            pending.extend_from_slice(&chunk);
            Bytes::from(std::mem::take(&mut pending))
        } else {
            chunk
        };
        let mut at = 0;
        while let Some(row) = reader.next_row(&bytes, &mut at)? {
            sink.copy_row(row).await?;
        }
        pending.extend_from_slice(&bytes[at..]);
    }
    if !reader.ended {
        return Err(malformed("the data ended before its trailer"));
    }
    Ok(())
}

fn malformed(what: &str) -> Error {
    Error::Other(format!(
        "PostgreSQL's COPY output could not be read: {what}"
    ))
}

/// Where the reading of a `COPY`'s bytes is: rows are cut out of them one at a time.
struct Reader {
    kinds: Arc<[Kind]>,
    header_read: bool,
    ended: bool,
}

impl Reader {
    fn new(kinds: Vec<Kind>) -> Reader {
        Reader {
            kinds: kinds.into(),
            header_read: false,
            ended: false,
        }
    }

    /// The next whole row of `bytes` from `at`, if they hold one (then `at` moves past it,
    /// and past the header before the first one). Its fields' lengths are checked against
    /// the bytes here, so that reading a value later cannot run past them.
    fn next_row(&mut self, bytes: &Bytes, at: &mut usize) -> Result<Option<CopyRow>> {
        let mut cursor = Cursor {
            bytes: bytes.as_ref(),
            at: *at,
        };
        if !self.header_read {
            let Some(signature) = cursor.take(SIGNATURE.len()) else {
                return Ok(None);
            };
            if signature != SIGNATURE {
                return Err(malformed("it does not start with COPY's signature"));
            }
            let (Some(_flags), Some(extension)) = (cursor.int(), cursor.int()) else {
                return Ok(None);
            };
            let extension = usize::try_from(extension)
                .map_err(|_| malformed("a negative header extension length"))?;
            if cursor.take(extension).is_none() {
                return Ok(None);
            }
            self.header_read = true;
            *at = cursor.at;
        }
        let Some(count) = cursor.short() else {
            return Ok(None);
        };
        if self.ended {
            return Err(malformed("data after its trailer"));
        }
        if count == -1 {
            self.ended = true;
            *at = cursor.at;
            return Ok(None);
        }
        if usize::try_from(count).ok() != Some(self.kinds.len()) {
            return Err(Error::Mismatch(format!(
                "COPY sent a row of {count} field(s) where the query's result has {}",
                self.kinds.len()
            )));
        }
        let start = cursor.at;
        for _ in 0..self.kinds.len() {
            let Some(length) = cursor.int() else {
                return Ok(None);
            };
            if length == -1 {
                continue;
            }
            let length =
                usize::try_from(length).map_err(|_| malformed("a negative field length"))?;
            if cursor.take(length).is_none() {
                return Ok(None);
            }
        }
        *at = cursor.at;
        Ok(Some(CopyRow {
            fields: bytes.slice(start..cursor.at),
            kinds: Arc::clone(&self.kinds),
        }))
    }
}

/// A row as PostgreSQL's `COPY` sent it: its fields' bytes, each value read only when asked
/// for, so that a comparison that finds two rows' bytes equal reads neither.
#[derive(Debug, Clone)]
pub struct CopyRow {
    /// Each field's 32-bit length (-1: NULL) and bytes, checked to fit when the row was cut.
    fields: Bytes,
    kinds: Arc<[Kind]>,
}

impl CopyRow {
    /// How many values the row has.
    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    /// Whether the row has no values.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// The bytes of each field in turn (`None` for a NULL).
    fn fields(&self) -> impl Iterator<Item = Option<&[u8]>> {
        let mut cursor = Cursor {
            bytes: &self.fields,
            at: 0,
        };
        (0..self.kinds.len()).map_while(move |_| {
            let length = cursor.int()?;
            Some(match usize::try_from(length) {
                Ok(length) => Some(cursor.take(length)?),
                Err(_) => None,
            })
        })
    }

    /// The bytes of field `index` (`Some(None)` for a NULL); `None` past the last field.
    fn field(&self, index: usize) -> Option<Option<&[u8]>> {
        self.fields().nth(index)
    }

    /// Value `index` of the row.
    pub fn value(&self, index: usize) -> Result<Value> {
        let (Some(kind), Some(field)) = (self.kinds.get(index), self.field(index)) else {
            return Err(malformed(&format!("no value {index} in a row")));
        };
        match field {
            None => Ok(Value::Null),
            Some(bytes) => {
                binary_value(*kind, bytes).map_err(|e| malformed(&format!("a {kind:?} value: {e}")))
            }
        }
    }

    /// All the row's values.
    pub fn values(&self) -> Result<Vec<Value>> {
        (0..self.len()).map(|i| self.value(i)).collect()
    }

    /// For each value in turn, whether it is the same bytes of the same type here and in
    /// `other`, and so the same value (two NULLs included); `false` says only that the
    /// values may differ. One walk through both rows, however many values are compared.
    pub fn same_bytes(&self, other: &CopyRow) -> impl Iterator<Item = bool> {
        self.kinds
            .iter()
            .zip(other.kinds.iter())
            .zip(self.fields().zip(other.fields()))
            .map(|((a, b), (x, y))| a == b && x == y)
    }
}

/// Reads big-endian integers and byte runs off a slice; `None` when the slice ends first.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let taken = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(taken)
    }

    fn short(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn int(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::{Kind, Reader, SIGNATURE};
    use crate::value::Value;

    fn header() -> Vec<u8> {
        let mut bytes = SIGNATURE.to_vec();
        bytes.extend(0i32.to_be_bytes());
        bytes.extend(4i32.to_be_bytes());
        bytes.extend(b"xxxx");
        bytes
    }

    fn row(fields: &[Option<&[u8]>]) -> Vec<u8> {
        let mut bytes = i16::try_from(fields.len()).unwrap().to_be_bytes().to_vec();
        for field in fields {
            match field {
                None => bytes.extend((-1i32).to_be_bytes()),
                Some(f) => {
                    bytes.extend(i32::try_from(f.len()).unwrap().to_be_bytes());
                    bytes.extend(*f);
                }
            }
        }
        bytes
    }

    fn stream() -> Vec<u8> {
        let mut bytes = header();
        bytes.extend(row(&[Some(&7i64.to_be_bytes()), Some(b"seven")]));
        bytes.extend(row(&[Some(&(-1i64).to_be_bytes()), None]));
        bytes.extend((-1i16).to_be_bytes());
        bytes
    }

    /// Feeds `bytes` in pieces of `size`, as the server's messages may cut them, keeping
    /// what is left of each as `rows` does.
    fn read(bytes: &[u8], size: usize) -> crate::Result<(Vec<Vec<Value>>, bool)> {
        let mut reader = Reader::new(vec![Kind::Int8, Kind::Text]);
        let mut rows = Vec::new();
        let mut pending = Vec::new();
        for piece in bytes.chunks(size) {
            pending.extend_from_slice(piece);
            let bytes = Bytes::from(std::mem::take(&mut pending));
            let mut at = 0;
            while let Some(row) = reader.next_row(&bytes, &mut at)? {
                rows.push(row.values()?);
            }
            pending.extend_from_slice(&bytes[at..]);
        }
        Ok((rows, reader.ended))
    }

    #[test]
    fn rows_are_read_however_the_bytes_are_cut() {
        let bytes = stream();
        let want = vec![
            vec![Value::Int(7), Value::Text("seven".to_owned())],
            vec![Value::Int(-1), Value::Null],
        ];
        for size in [1, 2, 3, 7, 19, bytes.len()] {
            assert_eq!(read(&bytes, size).unwrap(), (want.clone(), true), "{size}");
        }
    }

    #[test]
    fn malformed_output_is_an_error_not_a_panic() {
        let good = stream();
        let mut wrong_signature = good.clone();
        wrong_signature[0] = b'X';
        let mut wrong_count = header();
        wrong_count.extend(row(&[Some(&7i64.to_be_bytes())]));
        let mut negative_length = header();
        negative_length.extend(2i16.to_be_bytes());
        negative_length.extend((-5i32).to_be_bytes());
        let mut short_int = header();
        short_int.extend(row(&[Some(&[1, 2, 3]), Some(b"x")]));
        let mut after_trailer = good.clone();
        after_trailer.extend(row(&[Some(&7i64.to_be_bytes()), Some(b"x")]));
        let mut bad_text = header();
        bad_text.extend(row(&[Some(&7i64.to_be_bytes()), Some(&[0xff, 0xfe])]));
        for bytes in [
            wrong_signature,
            wrong_count,
            negative_length,
            short_int,
            after_trailer,
            bad_text,
        ] {
            assert!(read(&bytes, 5).is_err(), "{bytes:?}");
        }
        // Cut short: no error from the reader, but it has not seen the trailer.
        let (_, ended) = read(&good[..good.len() - 2], 5).unwrap();
        assert!(!ended);
    }

    #[test]
    fn rows_with_the_same_bytes_of_the_same_type_are_the_same_values() {
        let rows = |kinds: Vec<Kind>, fields: &[Option<&[u8]>]| {
            let mut bytes = header();
            bytes.extend(row(fields));
            bytes.extend((-1i16).to_be_bytes());
            let bytes = Bytes::from(bytes);
            let mut at = 0;
            Reader::new(kinds)
                .next_row(&bytes, &mut at)
                .unwrap()
                .unwrap()
        };
        let one = 1i64.to_be_bytes();
        let two = 2i64.to_be_bytes();
        let a = rows(vec![Kind::Int8, Kind::Text], &[Some(&one), None]);
        let b = rows(vec![Kind::Int8, Kind::Text], &[Some(&one), None]);
        let c = rows(vec![Kind::Int8, Kind::Text], &[Some(&two), Some(b"")]);
        let float = rows(vec![Kind::Float8, Kind::Text], &[Some(&one), None]);
        let same = |x: &super::CopyRow, y: &super::CopyRow| x.same_bytes(y).collect::<Vec<_>>();
        assert_eq!(same(&a, &b), [true, true]);
        assert_eq!(same(&a, &c), [false, false]);
        assert_eq!(
            same(&a, &float),
            [false, true],
            "the same bytes of another type"
        );
        assert_eq!(
            c.values().unwrap(),
            [Value::Int(2), Value::Text(String::new())]
        );
        assert!(c.value(2).is_err());
    }
}
