//! The connection a repair uses: one session to one source, read-write for `apply` and
//! `undo`, read-only for `plan` and `repairs`. Only this module opens it, so detection can
//! never hold a connection that writes.
//!
//! Everything repairs read comes back as [`Value`]s the same way in every command, because
//! a row's image hash made by `plan` must equal the one `apply` makes of an unchanged row:
//! SQLite values by their storage class, PostgreSQL values as text (the SQL casts them), MySQL
//! values by column type as sources read them (exact decimals and timestamps as text), and a
//! row's image as PostgreSQL's `to_jsonb` text or, on SQLite and MySQL, the values in a JSON
//! object.

use std::path::Path;
use std::time::Duration;

use futures_util::TryStreamExt;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{
    ConnectOptions, MySqlConnection, PgConnection, Row, SqliteConnection, TypeInfo, ValueRef,
};

use crate::dialect::Dialect;
use crate::load::SourceSpec;
use crate::redact::redact;
use crate::value::Value;
use crate::{Error, Result};

/// How long a repair waits for a row another session holds locked.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the session may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// The databases repairs run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
    /// MySQL and MariaDB (InnoDB tables).
    Mysql,
}

/// One session to a source.
pub struct Db {
    pub source: String,
    /// The URL without its password.
    pub display_url: String,
    conn: Conn,
}

enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
    Mysql(MySqlConnection),
}

/// Binds `$values` to `$query` by their types.
macro_rules! bind_values {
    ($query:expr, $values:expr) => {{
        let mut query = $query;
        for value in $values {
            query = match value {
                Value::Null => query.bind(None::<String>),
                Value::Bool(b) => query.bind(*b),
                Value::Int(i) => query.bind(*i),
                Value::Float(x) => query.bind(*x),
                Value::Decimal(s) | Value::Text(s) | Value::Timestamp(s) => query.bind(s.clone()),
                Value::Bytes(b) => query.bind(b.clone()),
            };
        }
        query
    }};
}

impl Db {
    /// Opens one session to `spec`'s database.
    pub async fn open(spec: &SourceSpec, root: &Path, access: Access) -> Result<Db> {
        let url = spec.resolve()?;
        let conn = match spec.dialect()? {
            Dialect::Sqlite => {
                let path = crate::source::database_file(&spec.name, &url, root)?;
                let options = SqliteConnectOptions::new()
                    .filename(&path)
                    .read_only(access == Access::ReadOnly)
                    .create_if_missing(false)
                    .foreign_keys(true)
                    .busy_timeout(LOCK_TIMEOUT);
                Conn::Sqlite(options.connect().await.map_err(|source| Error::Connect {
                    source_name: spec.name.clone(),
                    url: redact(&url),
                    source,
                })?)
            }
            Dialect::Postgres => {
                let read_only = if access == Access::ReadOnly {
                    "on"
                } else {
                    "off"
                };
                use crate::source::postgres_session::{options, session};
                let options = options(&spec.name, &url)?
                    .application_name("trueup repair")
                    .options([("default_transaction_read_only", read_only)]);
                Conn::Postgres(session(&spec.name, &url, &options, spec.connect_timeout).await?)
            }
            Dialect::Mysql => {
                use crate::source::mysql_session::{SQL_MODE_SETUP, options, session};
                let options = options(&spec.name, &url)?;
                let mut conn = session(&spec.name, &url, &options, spec.connect_timeout).await?;
                // READ COMMITTED, as PostgreSQL's default: each statement of a batch reads
                // what is committed now, not a snapshot from the batch's first read.
                let access = match access {
                    Access::ReadOnly => "READ ONLY",
                    Access::ReadWrite => "READ WRITE",
                };
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED, {access}; \
                     SET SESSION innodb_lock_wait_timeout = {}; {SQL_MODE_SETUP}",
                    LOCK_TIMEOUT.as_secs()
                )))
                .execute(&mut conn)
                .await?;
                Conn::Mysql(conn)
            }
        };
        Ok(Db {
            source: spec.name.clone(),
            display_url: redact(&url),
            conn,
        })
    }

    pub fn dialect(&self) -> Dialect {
        match self.engine() {
            Engine::Sqlite => Dialect::Sqlite,
            Engine::Postgres => Dialect::Postgres,
            Engine::Mysql => Dialect::Mysql,
        }
    }

    pub fn engine(&self) -> Engine {
        match self.conn {
            Conn::Sqlite(_) => Engine::Sqlite,
            Conn::Postgres(_) => Engine::Postgres,
            Conn::Mysql(_) => Engine::Mysql,
        }
    }

    /// The placeholder of the `n`-th bound value, read as SQL type `ty` (PostgreSQL casts the
    /// text trueup reads its values as; SQLite compares by value; MySQL casts the values it
    /// would otherwise compare as doubles: exact decimals and unsigned integers, bound as
    /// text, and trueup's own UTC times).
    pub fn param(&self, n: usize, ty: &str) -> String {
        match self.conn {
            Conn::Sqlite(_) => format!("?{n}"),
            Conn::Postgres(_) => format!("CAST(${n} AS {ty})"),
            Conn::Mysql(_) => mysql_param(n, ty),
        }
    }

    /// The placeholder of the `n`-th bound value as a value of column type `ty`, where the
    /// SQL around it gives it no type of its own (a `SELECT` list): on MySQL cast to the
    /// column's kind, so that a bit or a double is not taken for text on the way.
    pub fn typed_param(&self, n: usize, ty: &str) -> String {
        match self.conn {
            Conn::Mysql(_) => mysql_typed_param(n, ty),
            Conn::Sqlite(_) | Conn::Postgres(_) => self.param(n, ty),
        }
    }

    /// An expression of column `column` of `alias` as this module reads values.
    pub fn read(&self, alias: &str, column: &str) -> String {
        let q = self.dialect().quote(column);
        match self.conn {
            Conn::Sqlite(_) | Conn::Mysql(_) => format!("{alias}.{q}"),
            Conn::Postgres(_) => format!("CAST({alias}.{q} AS TEXT)"),
        }
    }

    /// `expr` read as text (`CAST(… AS TEXT)`; `AS CHAR` on MySQL).
    pub fn text(&self, expr: &str) -> String {
        match self.conn {
            Conn::Mysql(_) => format!("CAST({expr} AS CHAR)"),
            Conn::Sqlite(_) | Conn::Postgres(_) => format!("CAST({expr} AS TEXT)"),
        }
    }

    /// The expressions that read the whole image of row `alias` of a table with `columns`.
    pub fn image(&self, alias: &str, columns: &[String]) -> Vec<String> {
        match self.conn {
            Conn::Sqlite(_) | Conn::Mysql(_) => {
                columns.iter().map(|c| self.read(alias, c)).collect()
            }
            Conn::Postgres(_) => vec![format!("CAST(to_jsonb({alias}) AS TEXT)")],
        }
    }

    /// The clause that locks the rows a `SELECT` reads until the transaction ends (SQLite's
    /// write transaction already holds the whole database).
    pub fn for_update(&self) -> &'static str {
        match self.conn {
            Conn::Sqlite(_) => "",
            Conn::Postgres(_) | Conn::Mysql(_) => " FOR UPDATE",
        }
    }

    /// Starts a transaction that may write: SQLite takes the write lock at once, so that
    /// what the repair reads cannot change before it writes; PostgreSQL and MySQL lock the
    /// rows the batch reads `FOR UPDATE`, waiting at most [`LOCK_TIMEOUT`] for one.
    pub async fn begin(&mut self) -> Result<()> {
        match &mut self.conn {
            Conn::Sqlite(conn) => {
                sqlx::raw_sql("BEGIN IMMEDIATE").execute(conn).await?;
            }
            Conn::Postgres(conn) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "BEGIN; SET LOCAL lock_timeout = '{}ms'",
                    LOCK_TIMEOUT.as_millis()
                )))
                .execute(conn)
                .await?;
            }
            Conn::Mysql(conn) => {
                // The session's `innodb_lock_wait_timeout` bounds the waits.
                sqlx::raw_sql("START TRANSACTION").execute(conn).await?;
            }
        }
        Ok(())
    }

    pub async fn commit(&mut self) -> Result<()> {
        self.batch("COMMIT").await
    }

    pub async fn rollback(&mut self) -> Result<()> {
        self.batch("ROLLBACK").await
    }

    /// Runs statements without bound values (DDL, transaction control).
    pub async fn batch(&mut self, sql: &str) -> Result<()> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &mut self.conn {
            Conn::Sqlite(conn) => {
                sqlx::raw_sql(sql).execute(conn).await?;
            }
            Conn::Postgres(conn) => {
                sqlx::raw_sql(sql).execute(conn).await?;
            }
            Conn::Mysql(conn) => {
                sqlx::raw_sql(sql).execute(conn).await?;
            }
        }
        Ok(())
    }

    /// Runs one statement with `binds`; returns how many rows it changed.
    pub async fn execute(&mut self, sql: &str, binds: &[Value]) -> Result<u64> {
        if let Conn::Mysql(conn) = &mut self.conn {
            let (sql, binds) = mysql_positional(sql, binds)?;
            return Ok(bind_values!(sqlx::query(sqlx::AssertSqlSafe(sql)), &binds)
                .execute(conn)
                .await?
                .rows_affected());
        }
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        Ok(match &mut self.conn {
            Conn::Sqlite(conn) => bind_values!(sqlx::query(sql), binds)
                .execute(conn)
                .await?
                .rows_affected(),
            Conn::Postgres(conn) => bind_values!(sqlx::query(sql), binds)
                .execute(conn)
                .await?
                .rows_affected(),
            Conn::Mysql(_) => unreachable!("MySQL statements run above"),
        })
    }

    /// The rows of one query with `binds`, for results bounded by a batch.
    pub async fn rows(&mut self, sql: &str, binds: &[Value]) -> Result<Vec<Vec<Value>>> {
        let mut rows = Vec::new();
        self.each(sql, binds, |row| {
            rows.push(row);
            Ok(())
        })
        .await?;
        Ok(rows)
    }

    /// Hands each row of one query to `each`, as it arrives.
    pub async fn each(
        &mut self,
        sql: &str,
        binds: &[Value],
        mut each: impl FnMut(Vec<Value>) -> Result<()>,
    ) -> Result<()> {
        let text = sql;
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &mut self.conn {
            Conn::Sqlite(conn) => {
                let query = bind_values!(sqlx::query(sql), binds);
                let mut stream = query.fetch(conn);
                while let Some(row) = stream.try_next().await? {
                    each((0..row.len()).map(|i| sqlite_value(&row, i)).collect())?;
                }
            }
            Conn::Postgres(conn) => {
                let query = bind_values!(sqlx::query(sql), binds);
                let mut stream = query.fetch(conn);
                while let Some(row) = stream.try_next().await? {
                    let values = (0..row.len())
                        .map(|i| postgres_value(&row, i))
                        .collect::<Result<Vec<_>>>()?;
                    each(values)?;
                }
            }
            Conn::Mysql(conn) => {
                let (sql, binds) = mysql_positional(text, binds)?;
                let query = bind_values!(sqlx::query(sqlx::AssertSqlSafe(sql)), &binds);
                let mut stream = query.fetch(conn);
                while let Some(row) = stream.try_next().await? {
                    let values = (0..row.len())
                        .map(|i| mysql_value(&row, i))
                        .collect::<Result<Vec<_>>>()?;
                    each(values)?;
                }
            }
        }
        Ok(())
    }
}

/// A statement with trueup's numbered placeholders as MySQL's `?`s and its values in their
/// order (see `sql_text::positional`).
fn mysql_positional(sql: &str, binds: &[Value]) -> Result<(String, Vec<Value>)> {
    if binds.is_empty() {
        return Ok((sql.to_owned(), Vec::new()));
    }
    crate::sql_text::positional(sql, binds).map_err(Error::Other)
}

/// A MySQL placeholder compared as column type `ty` (`decimal(10,2)`, `bigint(20)
/// unsigned`, as `information_schema` writes them; or `timestamptz` for trueup's UTC times).
fn mysql_param(n: usize, ty: &str) -> String {
    let ty = ty.to_ascii_lowercase();
    let integer = [
        "tinyint",
        "smallint",
        "mediumint",
        "int",
        "bigint",
        "integer",
    ]
    .iter()
    .any(|t| ty.starts_with(t));
    if ty.starts_with("decimal") || ty.starts_with("numeric") {
        // The precision and scale as written: digits and a comma only.
        let size = ty
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(size, _)| size)
            .filter(|size| size.bytes().all(|b| b.is_ascii_digit() || b == b','))
            .unwrap_or("65,30");
        format!("CAST(${n} AS DECIMAL({size}))")
    } else if integer && ty.contains("unsigned") {
        format!("CAST(${n} AS UNSIGNED)")
    } else if ty == "timestamptz" {
        format!("STR_TO_DATE(${n}, '%Y-%m-%dT%H:%i:%sZ')")
    } else {
        format!("${n}")
    }
}

/// A MySQL placeholder cast to the kind of column type `ty` (`CAST` takes few types:
/// integers as SIGNED or UNSIGNED, bits as UNSIGNED, exact decimals with their size, doubles
/// and floats as DOUBLE, times by kind, bytes as BINARY, text as it is).
fn mysql_typed_param(n: usize, ty: &str) -> String {
    let lower = ty.to_ascii_lowercase();
    let base = lower.split(['(', ' ']).next().unwrap_or_default();
    // The fraction digits of a time type, as written: `datetime(6)`.
    let fraction = lower
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(digits, _)| digits)
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .map(|digits| format!("({digits})"))
        .unwrap_or_default();
    let target = match base {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year"
            if lower.contains("unsigned") =>
        {
            "UNSIGNED".to_owned()
        }
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => {
            "SIGNED".to_owned()
        }
        "bit" => "UNSIGNED".to_owned(),
        "decimal" | "numeric" => return mysql_param(n, ty),
        "float" | "double" | "real" => "DOUBLE".to_owned(),
        "date" => "DATE".to_owned(),
        "datetime" | "timestamp" => format!("DATETIME{fraction}"),
        "time" => format!("TIME{fraction}"),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            "BINARY".to_owned()
        }
        _ => return format!("${n}"),
    };
    format!("CAST(${n} AS {target})")
}

/// A MySQL value as sources read it, exact decimals and timestamps as their text: so that a
/// value written into a plan or journal as JSON reads back as the same [`Value`].
fn mysql_value(row: &sqlx::mysql::MySqlRow, index: usize) -> Result<Value> {
    Ok(match crate::source::mysql_session::value(row, index)? {
        Value::Decimal(text) | Value::Timestamp(text) => Value::Text(text),
        other => other,
    })
}

/// A SQLite value by its storage class.
fn sqlite_value(row: &sqlx::sqlite::SqliteRow, index: usize) -> Value {
    let Ok(raw) = row.try_get_raw(index) else {
        return Value::Null;
    };
    if raw.is_null() {
        return Value::Null;
    }
    match raw.type_info().name() {
        "INTEGER" => row.try_get::<i64, _>(index).map_or(Value::Null, Value::Int),
        "REAL" => row
            .try_get::<f64, _>(index)
            .map_or(Value::Null, Value::Float),
        "BLOB" => row
            .try_get::<Vec<u8>, _>(index)
            .map_or(Value::Null, Value::Bytes),
        _ => row
            .try_get::<String, _>(index)
            .map_or(Value::Null, Value::Text),
    }
}

/// A PostgreSQL value: repairs read every column as text (or a boolean or number the
/// catalog queries return as text too).
fn postgres_value(row: &sqlx::postgres::PgRow, index: usize) -> Result<Value> {
    let text: Option<String> = row.try_get(index).map_err(|e| {
        Error::Other(format!(
            "a repair query returned a column that is not text ({e}); this is a bug"
        ))
    })?;
    Ok(text.map_or(Value::Null, Value::Text))
}
