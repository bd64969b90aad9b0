//! PostgreSQL sources: sessions that are read-only by default, values read by column type,
//! and timeouts enforced by the server's `statement_timeout`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgValueFormat};
use sqlx::{Decode, PgPool, Postgres, Row, TypeInfo, ValueRef};

use super::fetch::{Backend, RowSink, stream_rows};
use super::{QueryError, TimestampColumn, redact};
use crate::compile::DetectorQuery;
use crate::load::SourceSpec;
use crate::value::Value;
use crate::{Error, Result};

/// How long past its own timeout a statement may take to report the cancellation before
/// trueup gives up on the connection.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn connect(spec: &SourceSpec, max_connections: u32) -> Result<PgPool> {
    let connect_error = |source| Error::Connect {
        source_name: spec.name.clone(),
        url: redact(&spec.url),
        source,
    };
    let options = PgConnectOptions::from_str(&spec.url)
        .map_err(connect_error)?
        .application_name("trueup")
        .options([("default_transaction_read_only", "on")]);
    // One direct connection first: a refused connection or a wrong password is reported at
    // once with its cause, where a pool would retry until its timeout and say only that.
    let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
        .await
        .map_err(|_| connect_error(sqlx::Error::PoolTimedOut))?
        .map_err(connect_error)?;
    probe.close().await.map_err(connect_error)?;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .min_connections(0)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_lazy_with(options))
}

pub(super) async fn columns(pool: &PgPool, table: &str) -> Result<Vec<String>> {
    let (schema, name) = split_name(table);
    Ok(sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_schema = COALESCE($1, current_schema()) AND table_name = $2 \
         ORDER BY ordinal_position",
    )
    .bind(schema)
    .bind(name)
    .fetch_all(pool)
    .await?)
}

/// The types freshness compares with `now()`, as `information_schema` names them.
const TIMESTAMP_TYPES: [&str; 3] = [
    "timestamp without time zone",
    "timestamp with time zone",
    "date",
];

pub(super) async fn timestamp_problem(
    pool: &PgPool,
    column: &TimestampColumn,
) -> Result<Option<String>> {
    let (schema, name) = split_name(&column.table);
    // `data_type` is a domain's base type; user-defined types are named by `udt_name`.
    let found: Option<String> = sqlx::query_scalar(
        "SELECT CASE WHEN data_type = 'USER-DEFINED' THEN udt_name::text ELSE data_type::text END \
         FROM information_schema.columns \
         WHERE table_schema = COALESCE($1, current_schema()) AND table_name = $2 AND column_name = $3",
    )
    .bind(schema)
    .bind(name)
    .bind(&column.column)
    .fetch_optional(pool)
    .await?;
    Ok(found
        .filter(|found| !TIMESTAMP_TYPES.contains(&found.as_str()))
        .map(|found| {
            format!(
                "column `{}` of `{}` is {found}, not a timestamp; freshness needs a `timestamp`, \
                 `timestamptz` or `date` column (for dates kept as text, cast them in a `sql` rule)",
                column.column, column.table
            )
        }))
}

/// `schema.table` or `table` as (schema, table).
fn split_name(table: &str) -> (Option<&str>, &str) {
    match table.rsplit_once('.') {
        Some((schema, name)) => (Some(schema), name),
        None => (None, table),
    }
}

pub(super) async fn fetch<S: RowSink>(
    pool: &PgPool,
    query: &DetectorQuery,
    timeout: Duration,
    sink: &mut S,
) -> Result<(), QueryError> {
    let mut conn = pool.acquire().await.map_err(Error::from)?;
    let run = async {
        // A read-only transaction whose settings (the timeout above all) end with it, so
        // nothing leaks into the next rule that gets this pooled connection.
        let mut transaction = conn.begin_with("BEGIN READ ONLY").await?;
        let mut settings = vec![(
            "statement_timeout".to_owned(),
            timeout.as_millis().to_string(),
        )];
        settings.extend(query.settings.iter().cloned());
        let assignments: Vec<String> = (0..settings.len())
            .map(|i| format!("set_config(${}, ${}, true)", 2 * i + 1, 2 * i + 2))
            .collect();
        let mut set = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {}",
            assignments.join(", ")
        )));
        for (name, value) in settings {
            set = set.bind(name).bind(value);
        }
        set.execute(&mut *transaction).await?;
        stream_rows::<Postgres, S>(&mut transaction, query, sink).await?;
        transaction.rollback().await?;
        Ok::<(), Error>(())
    };
    let outcome = tokio::time::timeout(timeout + CANCEL_GRACE, run).await;
    match outcome {
        Ok(Err(Error::Database(err))) if is_cancelled(&err) => Err(QueryError::Timeout(timeout)),
        Ok(other) => Ok(other?),
        Err(_elapsed) => {
            // The server did not honour statement_timeout in time: never reuse this session.
            drop(conn.detach());
            Err(QueryError::Timeout(timeout))
        }
    }
}

fn is_cancelled(err: &sqlx::Error) -> bool {
    // 57014: query_canceled, raised by statement_timeout.
    err.as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "57014")
}

impl Backend for Postgres {
    fn value(row: &Self::Row, index: usize) -> Result<Value, sqlx::Error> {
        let raw = row.try_get_raw(index)?;
        if raw.is_null() {
            return Ok(Value::Null);
        }
        let type_name = raw.type_info().name().to_owned();
        let decode_error = |source| sqlx::Error::ColumnDecode {
            index: index.to_string(),
            source,
        };
        let value = match type_name.as_str() {
            "BOOL" => Value::Bool(<bool as Decode<Postgres>>::decode(raw).map_err(decode_error)?),
            "INT2" => Value::Int(
                <i16 as Decode<Postgres>>::decode(raw)
                    .map_err(decode_error)?
                    .into(),
            ),
            "INT4" => Value::Int(
                <i32 as Decode<Postgres>>::decode(raw)
                    .map_err(decode_error)?
                    .into(),
            ),
            "INT8" => Value::Int(<i64 as Decode<Postgres>>::decode(raw).map_err(decode_error)?),
            "FLOAT4" => Value::Float(
                <f32 as Decode<Postgres>>::decode(raw)
                    .map_err(decode_error)?
                    .into(),
            ),
            "FLOAT8" => Value::Float(<f64 as Decode<Postgres>>::decode(raw).map_err(decode_error)?),
            "NUMERIC" => Value::Decimal(match raw.format() {
                PgValueFormat::Binary => {
                    numeric_text(raw.as_bytes().map_err(decode_error)?).map_err(decode_error)?
                }
                PgValueFormat::Text => raw.as_str().map_err(decode_error)?.to_owned(),
            }),
            // Binary format: microseconds (days for a date) since 2000-01-01, UTC for
            // `timestamptz`; shown as PostgreSQL shows them.
            "TIMESTAMP" | "TIMESTAMPTZ" => {
                let micros = <i64 as Decode<Postgres>>::decode(raw).map_err(decode_error)?;
                let text = crate::time::postgres_timestamp(micros);
                Value::Timestamp(match type_name.as_str() {
                    "TIMESTAMPTZ" if micros != i64::MAX && micros != i64::MIN => text + "+00",
                    _ => text,
                })
            }
            "DATE" => Value::Timestamp(crate::time::postgres_date(
                <i32 as Decode<Postgres>>::decode(raw).map_err(decode_error)?,
            )),
            "BYTEA" => {
                Value::Bytes(<Vec<u8> as Decode<Postgres>>::decode(raw).map_err(decode_error)?)
            }
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "CITEXT" | "UNKNOWN" => {
                Value::Text(<String as Decode<Postgres>>::decode(raw).map_err(decode_error)?)
            }
            other => {
                return Err(sqlx::Error::ColumnDecode {
                    index: index.to_string(),
                    source: format!("trueup cannot read type {other}; cast the column to text in the query (::text)")
                        .into(),
                });
            }
        };
        Ok(value)
    }
}

super::fetch::bind_values_as_usual!(Postgres);

/// A `NUMERIC` in PostgreSQL's binary format as the exact text PostgreSQL writes for it
/// (`numeric_out`): every digit, `dscale` decimals, `NaN`, `Infinity`, `-Infinity`. No
/// fixed-size decimal holds them all (NaN, 1e40, 1e-30, 30 digits), so none is used.
///
/// The format: digit count, weight (of the first base-10000 digit), sign, display scale, as
/// big-endian 16-bit words, then the base-10000 digits.
fn numeric_text(bytes: &[u8]) -> Result<String, sqlx::error::BoxDynError> {
    let words: Vec<u16> = bytes
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Ok(u16::from_be_bytes([*hi, *lo])),
            _ => Err("a NUMERIC of an odd number of bytes"),
        })
        .collect::<Result<_, _>>()?;
    let [count, weight, sign, scale, digits @ ..] = words.as_slice() else {
        return Err("a NUMERIC shorter than its header".into());
    };
    if usize::from(*count) != digits.len() || digits.iter().any(|d| *d >= 10_000) {
        return Err(format!("a malformed NUMERIC ({} bytes)", bytes.len()).into());
    }
    let negative = match sign {
        0x0000 => false,
        0x4000 => true,
        0xC000 => return Ok("NaN".to_owned()),
        0xD000 => return Ok("Infinity".to_owned()),
        0xF000 => return Ok("-Infinity".to_owned()),
        other => return Err(format!("a NUMERIC with unknown sign {other:#06x}").into()),
    };
    let weight = i64::from(i16::from_be_bytes(weight.to_be_bytes()));
    let scale = usize::from(*scale & 0x3FFF);
    // The base-10000 digit at position `i` (0 is the first stored one), 0 outside them.
    let digit = |i: i64| usize::try_from(i).ok().and_then(|i| digits.get(i)).copied();
    let mut text = String::new();
    if negative {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        text.push_str(&digit(0).unwrap_or(0).to_string());
        for i in 1..=weight {
            text.push_str(&format!("{:04}", digit(i).unwrap_or(0)));
        }
    }
    if scale > 0 {
        text.push('.');
        let start = text.len();
        let mut i = weight + 1;
        while text.len() - start < scale {
            text.push_str(&format!("{:04}", digit(i).unwrap_or(0)));
            i += 1;
        }
        text.truncate(start + scale);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::numeric_text;

    /// The binary form of a NUMERIC: header words, then base-10000 digits.
    fn numeric(weight: i16, sign: u16, scale: u16, digits: &[u16]) -> Vec<u8> {
        let count = u16::try_from(digits.len()).unwrap();
        [count, u16::from_be_bytes(weight.to_be_bytes()), sign, scale]
            .iter()
            .chain(digits)
            .flat_map(|w| w.to_be_bytes())
            .collect()
    }

    #[test]
    fn hardening_13_numeric_text_is_what_postgres_writes() {
        let cases = [
            (numeric(0, 0, 0, &[]), "0"),
            (numeric(0, 0, 2, &[]), "0.00"),
            (numeric(0, 0x4000, 2, &[12, 5000]), "-12.50"),
            (
                numeric(-8, 0, 30, &[100]),
                "0.000000000000000000000000000001",
            ),
            (
                numeric(10, 0, 0, &[1]),
                "10000000000000000000000000000000000000000",
            ),
            (numeric(1, 0, 0, &[1]), "10000"),
            (numeric(0, 0, 4, &[9999, 9999]), "9999.9999"),
            (numeric(-2, 0, 5, &[1000]), "0.00001"),
            (numeric(0, 0xC000, 0, &[]), "NaN"),
            (numeric(0, 0xD000, 0, &[]), "Infinity"),
            (numeric(0, 0xF000, 0, &[]), "-Infinity"),
        ];
        for (bytes, text) in cases {
            assert_eq!(numeric_text(&bytes).unwrap(), text);
        }
    }

    #[test]
    fn hardening_13_malformed_numeric_is_an_error_not_a_panic() {
        let mut short = numeric(0, 0, 0, &[1]);
        short[1] = 2; // two digits announced, one given
        for bytes in [
            vec![],
            vec![0, 1, 0],
            numeric(0, 0, 0, &[])[..6].to_vec(),
            short,
            numeric(0, 0, 0, &[10_000]),
            numeric(0, 0x1234, 0, &[1]),
        ] {
            assert!(numeric_text(&bytes).is_err(), "{bytes:?}");
        }
    }
}
