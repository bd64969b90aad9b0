//! SQLite sources: a read-only file, values read by their stored type, and timeouts that
//! interrupt the statement inside SQLite through its progress handler.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Decode, Row, Sqlite, SqlitePool, TypeInfo, ValueRef};

use super::fetch::{Backend, FirstRow, RowSink, stream_rows};
use super::{QueryError, TimestampColumn, redact};
use crate::compile::DetectorQuery;
use crate::dialect::Dialect;
use crate::value::Value;
use crate::{Error, Result};

/// SQLite virtual-machine steps between two deadline checks: frequent enough to stop
/// within milliseconds, rare enough to cost nothing measurable.
const STEPS_PER_DEADLINE_CHECK: i32 = 100_000;

/// The statements a SQLite source is running, so that an interrupted run stops them inside
/// SQLite, through the same progress handler as a timeout: nothing else would, since
/// dropping a statement's future leaves SQLite's own thread stepping it to the end.
#[derive(Debug, Default)]
pub(super) struct Running {
    /// Bumped by each cancel: a statement started before it stops at its next check.
    generation: AtomicU64,
    /// How many statements are running now.
    count: AtomicU64,
}

impl Running {
    /// Stops every statement running now; returns how many there were.
    pub(super) fn cancel(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.count.load(Ordering::SeqCst)
    }
}

/// One statement of [`Running`], from its start until its future ends or is dropped. A
/// progress handler left on a pooled connection by a dropped future lets later statements
/// run: it stops only the statement it was set for.
struct Statement {
    running: Arc<Running>,
    active: Arc<AtomicBool>,
}

impl Drop for Statement {
    fn drop(&mut self) {
        self.active.store(false, Ordering::SeqCst);
        self.running.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The file a `sqlite:` URL names, relative paths starting at `root`.
pub fn database_path(url: &str, root: &Path) -> PathBuf {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split('?').next().unwrap_or_default();
    root.join(path)
}

/// The database file of source `name` at the resolved `url`, when it is one: a FIFO would
/// block the open, a folder is no database, a missing file is not created.
pub fn database_file(name: &str, url: &str, root: &Path) -> Result<PathBuf> {
    let path = database_path(url, root);
    match std::fs::metadata(&path).map(|m| crate::read::not_regular(&m)) {
        Ok(None) => Ok(path),
        Ok(Some(what)) => Err(Error::NotADatabaseFile {
            source_name: name.to_owned(),
            path,
            what,
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(Error::MissingDatabase {
            source_name: name.to_owned(),
            path,
        }),
        // Opening it says what else is wrong.
        Err(_) => Ok(path),
    }
}

/// Opens source `name` at the resolved `url`.
pub(super) async fn connect(
    name: &str,
    url: &str,
    root: &Path,
    max_connections: u32,
) -> Result<SqlitePool> {
    let path = database_file(name, url, root)?;
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
            source_name: name.to_owned(),
            url: redact(url),
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

/// What the user trueup runs as may do to the database file beyond reading it.
pub(super) fn excess_privileges(path: &Path) -> Vec<String> {
    if !writable(path) {
        return Vec::new();
    }
    vec![format!(
        "the database file `{}` is writable by the user trueup runs as (trueup opens it \
         read-only, so detection cannot write to it, but nothing else stops that user)",
        path.display()
    )]
}

/// Whether the process may write `path`, asked of the kernel without opening it: closing a
/// descriptor of a SQLite file would drop the locks this process's connections hold on it.
#[cfg(unix)]
fn writable(path: &Path) -> bool {
    use rustix::fs::{Access, AtFlags, CWD, accessat};
    accessat(CWD, path, Access::WRITE_OK, AtFlags::EACCESS).is_ok()
}

#[cfg(not(unix))]
fn writable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.permissions().readonly())
}

/// How much of a value a message quotes.
const QUOTED_CHARS: usize = 40;

pub(super) async fn timestamp_problem(
    pool: &SqlitePool,
    running: &Arc<Running>,
    column: &TimestampColumn,
    timeout: Duration,
) -> Result<Option<String>, QueryError> {
    let (schema, name) = column
        .table
        .rsplit_once('.')
        .unwrap_or(("main", &column.table));
    let declared: Option<String> =
        sqlx::query_scalar("SELECT type FROM pragma_table_info(?1, ?2) WHERE name = ?3")
            .bind(name)
            .bind(schema)
            .bind(&column.column)
            .fetch_optional(pool)
            .await
            .map_err(Error::from)?;
    let Some(declared) = declared else {
        return Ok(None);
    };
    // The newest value, as the rule's own query finds it.
    let filter = column
        .filter
        .as_ref()
        .map(|f| format!(" WHERE {f}"))
        .unwrap_or_default();
    let sql = format!(
        "SELECT typeof(latest), latest, julianday(latest) IS NOT NULL FROM (SELECT MAX({}) AS latest FROM {}{filter})",
        Dialect::Sqlite.quote(&column.column),
        Dialect::Sqlite.quote(&column.table),
    );
    let mut first = FirstRow::default();
    let query = DetectorQuery::new(sql, Vec::new(), Vec::new(), "");
    fetch(pool, running, &query, timeout, &mut first).await?;
    let Some([Value::Text(kind), latest, readable]) = first.0.as_deref() else {
        return Ok(None);
    };
    let readable = *readable == Value::Int(1);
    let upper = declared.to_ascii_uppercase();
    let dated = upper.contains("DATE") || upper.contains("TIME");
    let mut shown: String = crate::text::escape(&latest.to_string())
        .chars()
        .take(QUOTED_CHARS + 1)
        .collect();
    if shown.chars().count() > QUOTED_CHARS {
        shown = shown.chars().take(QUOTED_CHARS).chain(['…']).collect();
    }
    let reason = match (kind.as_str(), readable) {
        ("null", _) | ("text", true) => return Ok(None),
        ("integer" | "real", true) if dated => return Ok(None),
        ("text", false) => format!("its newest value `{shown}` is not a date SQLite reads"),
        ("integer" | "real", false) => format!(
            "its newest value {shown} is not a Julian day number (Unix time? a `sql` rule can \
             compare `datetime({}, 'unixepoch')`)",
            Dialect::Sqlite.quote(&column.column)
        ),
        ("integer" | "real", true) => format!(
            "its newest value {shown} is a number, which is read as a Julian day number only \
             in a column declared DATE or DATETIME"
        ),
        _ => "its newest value is a BLOB".to_owned(),
    };
    let what = match (dated, declared.is_empty()) {
        (true, _) => format!("is declared {declared}, but"),
        (false, true) => "has no declared type, and".to_owned(),
        (false, false) => format!("is {declared}, not a timestamp:"),
    };
    Ok(Some(format!(
        "column `{}` of `{}` {what} {reason}; freshness on SQLite needs ISO-8601 text \
         (`2025-01-31 12:00:00`), or Julian day numbers in a column declared DATE or DATETIME",
        column.column, column.table
    )))
}

pub(super) async fn fetch<S: RowSink>(
    pool: &SqlitePool,
    running: &Arc<Running>,
    query: &DetectorQuery,
    timeout: Duration,
    sink: &mut S,
) -> Result<(), QueryError> {
    let mut conn = pool.acquire().await.map_err(Error::from)?;
    let deadline = Instant::now() + timeout;
    let started = running.generation.load(Ordering::SeqCst);
    running.count.fetch_add(1, Ordering::SeqCst);
    let statement = Statement {
        running: Arc::clone(running),
        active: Arc::new(AtomicBool::new(true)),
    };
    let (active, watched) = (Arc::clone(&statement.active), Arc::clone(running));
    let go_on = move || {
        !active.load(Ordering::Relaxed)
            || (Instant::now() < deadline && watched.generation.load(Ordering::Relaxed) == started)
    };
    conn.lock_handle()
        .await
        .map_err(Error::from)?
        .set_progress_handler(STEPS_PER_DEADLINE_CHECK, go_on);
    let result = stream_rows::<Sqlite, S>(&mut conn, query, sink).await;
    drop(statement);
    conn.lock_handle()
        .await
        .map_err(Error::from)?
        .remove_progress_handler();
    match result {
        Err(Error::Database(err)) if is_interrupt(&err) => {
            if running.generation.load(Ordering::SeqCst) == started {
                Err(QueryError::Timeout(timeout))
            } else {
                Err(QueryError::Failed(Error::Other(
                    "the run was interrupted: the query was stopped".to_owned(),
                )))
            }
        }
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
