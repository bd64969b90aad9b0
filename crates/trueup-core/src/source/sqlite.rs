//! SQLite sources: a read-only file, values read by their stored type, and timeouts that
//! interrupt the statement inside SQLite through its progress handler.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Decode, Row, Sqlite, SqlitePool, TypeInfo, ValueRef};

use super::fetch::{Backend, RowSink, stream_rows};
use super::{QueryError, redact};
use crate::compile::DetectorQuery;
use crate::load::SourceSpec;
use crate::value::Value;
use crate::{Error, Result};

/// SQLite virtual-machine steps between two deadline checks: frequent enough to stop
/// within milliseconds, rare enough to cost nothing measurable.
const STEPS_PER_DEADLINE_CHECK: i32 = 100_000;

/// The file a `sqlite:` URL names, relative paths starting at `root`.
pub fn database_path(url: &str, root: &Path) -> PathBuf {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split('?').next().unwrap_or_default();
    root.join(path)
}

pub(super) async fn connect(
    spec: &SourceSpec,
    root: &Path,
    max_connections: u32,
) -> Result<SqlitePool> {
    let path = database_path(&spec.url, root);
    if !path.is_file() {
        return Err(Error::MissingDatabase {
            source_name: spec.name.clone(),
            path,
        });
    }
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .read_only(true)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(5));
    SqlitePoolOptions::new()
        .max_connections(max_connections.max(1))
        .min_connections(0)
        .connect_with(options)
        .await
        .map_err(|source| Error::Connect {
            source_name: spec.name.clone(),
            url: redact(&spec.url),
            source,
        })
}

pub(super) async fn columns(pool: &SqlitePool, table: &str) -> Result<Vec<String>> {
    let (schema, name) = table.rsplit_once('.').unwrap_or(("main", table));
    Ok(
        sqlx::query_scalar("SELECT name FROM pragma_table_info(?1, ?2)")
            .bind(name)
            .bind(schema)
            .fetch_all(pool)
            .await?,
    )
}

pub(super) async fn fetch<S: RowSink>(
    pool: &SqlitePool,
    query: &DetectorQuery,
    timeout: Duration,
    sink: &mut S,
) -> Result<(), QueryError> {
    let mut conn = pool.acquire().await.map_err(Error::from)?;
    let deadline = Instant::now() + timeout;
    conn.lock_handle()
        .await
        .map_err(Error::from)?
        .set_progress_handler(STEPS_PER_DEADLINE_CHECK, move || Instant::now() < deadline);
    let result = stream_rows::<Sqlite, S>(&mut conn, query, sink).await;
    conn.lock_handle()
        .await
        .map_err(Error::from)?
        .remove_progress_handler();
    match result {
        Err(Error::Database(err)) if is_interrupt(&err) => Err(QueryError::Timeout(timeout)),
        other => Ok(other?),
    }
}

fn is_interrupt(err: &sqlx::Error) -> bool {
    // SQLITE_INTERRUPT is result code 9.
    err.as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "9")
}

impl Backend for Sqlite {
    fn value(row: &Self::Row, index: usize) -> Result<Value, sqlx::Error> {
        let raw = row.try_get_raw(index)?;
        if raw.is_null() {
            return Ok(Value::Null);
        }
        let decode_error = |source| sqlx::Error::ColumnDecode {
            index: index.to_string(),
            source,
        };
        // A value's own storage class, not the column's declared type: SQLite is dynamic.
        let value = match raw.type_info().name() {
            "INTEGER" => Value::Int(<i64 as Decode<Sqlite>>::decode(raw).map_err(decode_error)?),
            "REAL" => Value::Float(<f64 as Decode<Sqlite>>::decode(raw).map_err(decode_error)?),
            "BLOB" => Value::Bytes(<Vec<u8> as Decode<Sqlite>>::decode(raw).map_err(decode_error)?),
            _ => Value::Text(<String as Decode<Sqlite>>::decode(raw).map_err(decode_error)?),
        };
        Ok(value)
    }
}

super::fetch::bind_values_as_usual!(Sqlite);
