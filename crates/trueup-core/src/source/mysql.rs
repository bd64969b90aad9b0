//! MySQL and MariaDB sources: read-only sessions in UTC, trueup's numbered placeholders
//! turned into MySQL's `?`, values read by column type, timeouts enforced by the server
//! (`max_statement_time` on MariaDB, `max_execution_time` on MySQL) and queries stopped
//! with `KILL QUERY` when a rule times out or the run is interrupted.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPoolOptions};
use sqlx::{Connection, Decode, MySql, MySqlPool, Row, TypeInfo, ValueRef};

use super::fetch::{Backend, RowSink, TypeName, stream_rows};
use super::{QueryError, TimestampColumn, redact};
use crate::compile::DetectorQuery;
use crate::value::Value;
use crate::{Error, Result};

/// How long past its own timeout a statement may take to stop before trueup kills it
/// and gives up on the connection.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// What every session of a source runs first: read-only, then [`SQL_MODE_SETUP`].
const SESSION_SETUP: &str = "SET SESSION TRANSACTION READ ONLY";

/// One MySQL source's pool, which server it is, and the sessions running a query now.
#[derive(Debug, Clone)]
pub(super) struct Server {
    pool: MySqlPool,
    mariadb: bool,
    running: Arc<Running>,
}

/// A pooled connection that goes back to the pool only when its query ended: one whose
/// future was dropped mid-query (an interrupted run) is closed instead, because what it
/// was reading is lost with the future, and the pool would wait on it (over TLS, for
/// ever) when it closes.
struct Held(Option<sqlx::pool::PoolConnection<MySql>>);

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(conn.detach());
        }
    }
}

/// The connection ids of the sessions that may be running a detector's query, to `KILL
/// QUERY`: each from before its query starts until it ends. A query whose future was
/// dropped (an interrupted run) stays listed, because the server goes on running it:
/// [`Server::cancel_running`] kills it and clears the list.
#[derive(Debug, Default)]
struct Running(Mutex<BTreeSet<u64>>);

impl Running {
    fn set(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every id listed, taking them off the list.
    fn take(&self) -> Vec<u64> {
        std::mem::take(&mut *self.set()).into_iter().collect()
    }
}

/// The connection options of a resolved `mysql://` (or `mariadb://`) URL, as sources use
/// them: UTC, and the server's own `sql_mode` (sqlx would add `PIPES_AS_CONCAT`, which
/// changes what `||` means in the rules' SQL).
pub fn options(name: &str, url: &str) -> Result<MySqlConnectOptions> {
    let url = match url.strip_prefix("mariadb:") {
        Some(rest) => format!("mysql:{rest}"),
        None => url.to_owned(),
    };
    MySqlConnectOptions::from_str(&url)
        .map(|options| {
            options
                .pipes_as_concat(false)
                .timezone(Some("+00:00".to_owned()))
        })
        .map_err(|source| connect_error(name, &url, source))
}

/// One session of source `name` with `options`, opened within `timeout` (the source's
/// `connect-timeout`), with the errors and hints sources give; it runs no setup of its own
/// (repairs set theirs up, read-only or not).
pub async fn session(
    name: &str,
    url: &str,
    options: &MySqlConnectOptions,
    timeout: Duration,
) -> Result<MySqlConnection> {
    tokio::time::timeout(timeout, MySqlConnection::connect_with(options))
        .await
        .map_err(|_| Error::ConnectTimeout {
            source_name: name.to_owned(),
            address: format!("{}:{}", options.get_host(), options.get_port()),
            limit: timeout,
        })?
        .map_err(|e| connect_error(name, url, e))
}

/// The session's `sql_mode` without the three flags that would make the server read SQL
/// otherwise than trueup's parser does (`NO_BACKSLASH_ESCAPES` would end a string where the
/// parser sees it go on, `ANSI_QUOTES` make `"text"` a name, `PIPES_AS_CONCAT` make `||` a
/// concatenation); the rest of the server's mode stays. Sources' and repairs' sessions run it.
pub const SQL_MODE_SETUP: &str = "SET SESSION sql_mode = TRIM(BOTH ',' FROM REPLACE(REPLACE(REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), \
     ',NO_BACKSLASH_ESCAPES,', ','), ',ANSI_QUOTES,', ','), ',PIPES_AS_CONCAT,', ','))";

/// Column `index` of `row` as sources read MySQL values, by column type.
pub fn value(row: &sqlx::mysql::MySqlRow, index: usize) -> Result<Value, sqlx::Error> {
    <MySql as Backend>::value(row, index)
}

fn connect_error(name: &str, url: &str, source: sqlx::Error) -> Error {
    // 1045: access denied (a wrong user or password).
    let login_refused = source
        .as_database_error()
        .and_then(|e| e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
        .is_some_and(|e| e.number() == 1045);
    let error = Error::Connect {
        source_name: name.to_owned(),
        url: redact(url),
        source,
    };
    match crate::redact::password_encoding_hint(url, login_refused) {
        Some(hint) => Error::Hinted {
            error: Box::new(error),
            hint,
        },
        None => error,
    }
}

/// Opens source `name` at the resolved `url`; connecting may take `timeout`. Every session
/// of the pool is read-only (`SET SESSION TRANSACTION READ ONLY`), and each query runs in a
/// read-only transaction as well.
pub(super) async fn connect(
    name: &str,
    url: &str,
    max_connections: u32,
    timeout: Duration,
) -> Result<Server> {
    let options = options(name, url)?;
    // One direct connection first: a refused connection or a wrong password is reported at
    // once with its cause, where a pool would retry until its timeout and say only that.
    let mut probe = session(name, url, &options, timeout).await?;
    let version: String = sqlx::query_scalar("SELECT CAST(VERSION() AS CHAR)")
        .fetch_one(&mut probe)
        .await?;
    let _ = probe.close().await;
    let pool = MySqlPoolOptions::new()
        .max_connections(max_connections.max(1))
        .min_connections(0)
        .acquire_timeout(timeout)
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::raw_sql(SESSION_SETUP).execute(&mut *conn).await?;
                sqlx::raw_sql(SQL_MODE_SETUP)
                    .execute(conn)
                    .await
                    .map(|_| ())
            })
        })
        .connect_lazy_with(options);
    Ok(Server {
        pool,
        mariadb: version.contains("MariaDB"),
        running: Arc::default(),
    })
}

impl Server {
    pub(super) fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// The statement that limits the session's statements to `timeout`.
    fn timeout_statement(&self, timeout: Duration) -> String {
        if self.mariadb {
            format!(
                "SET SESSION max_statement_time = {:.3}",
                timeout.as_secs_f64()
            )
        } else {
            format!(
                "SET SESSION max_execution_time = {}",
                timeout.as_millis().max(1)
            )
        }
    }

    /// Runs `query` in a read-only transaction, the server stopping it after `timeout`
    /// (and trueup killing it a grace period later if the server did not).
    pub(super) async fn fetch<S: RowSink>(
        &self,
        query: &DetectorQuery,
        timeout: Duration,
        sink: &mut S,
    ) -> Result<(), QueryError> {
        let mut held = Held(Some(self.pool.acquire().await.map_err(Error::from)?));
        let Some(conn) = held.0.as_mut() else {
            return Err(QueryError::Failed(Error::Other("no connection".to_owned())));
        };
        let id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
            .fetch_one(&mut **conn)
            .await
            .map_err(Error::from)?;
        self.running.set().insert(id);
        let run = async {
            sqlx::raw_sql(sqlx::AssertSqlSafe(self.timeout_statement(timeout)))
                .execute(&mut **conn)
                .await?;
            sqlx::raw_sql("START TRANSACTION READ ONLY")
                .execute(&mut **conn)
                .await?;
            let streamed = stream_rows::<MySql, S>(&mut **conn, query, sink).await;
            // The transaction ends either way, so the pooled session is clean.
            let ended = sqlx::raw_sql("ROLLBACK").execute(&mut **conn).await;
            streamed?;
            ended?;
            Ok::<(), Error>(())
        };
        let outcome = tokio::time::timeout(timeout + CANCEL_GRACE, run).await;
        // The query ended here (a dropped future never gets this far).
        self.running.set().remove(&id);
        let Some(conn) = held.0.take() else {
            return Err(QueryError::Failed(Error::Other("no connection".to_owned())));
        };
        match outcome {
            Ok(Err(Error::Database(err))) if is_timeout(&err) => Err(QueryError::Timeout(timeout)),
            Ok(Err(err)) => Err(QueryError::Failed(err)),
            Ok(Ok(())) => Ok(()),
            Err(_elapsed) => {
                // The server did not stop the statement in time: kill it, and never reuse
                // this session.
                let _ = self.kill(&[id]).await;
                drop(conn.detach());
                Err(QueryError::Timeout(timeout))
            }
        }
    }

    /// Stops the queries of the sessions with `ids`, from a session of its own (a user may
    /// kill its own sessions' queries). Returns how many it stopped.
    async fn kill(&self, ids: &[u64]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let options = self.pool.connect_options();
        let wait = self.pool.options().get_acquire_timeout();
        let mut conn = tokio::time::timeout(wait, MySqlConnection::connect_with(&options))
            .await
            .map_err(|_| Error::Database(sqlx::Error::PoolTimedOut))??;
        let mut killed = 0;
        for id in ids {
            // A session that finished meanwhile is "unknown thread": nothing to stop.
            if sqlx::raw_sql(sqlx::AssertSqlSafe(format!("KILL QUERY {id}")))
                .execute(&mut conn)
                .await
                .is_ok()
            {
                killed += 1;
            }
        }
        let _ = conn.close().await;
        Ok(killed)
    }

    /// Kills every query this source is running now, or left running when a run was
    /// interrupted and dropped them.
    pub(super) async fn cancel_running(&self) -> Result<u64> {
        self.kill(&self.running.take()).await
    }

    /// The columns of `table` (`schema.table` or one of the connection's database), in
    /// their order.
    pub(super) async fn columns(&self, table: &str) -> Result<Vec<String>> {
        let (schema, name) = split_name(table);
        Ok(sqlx::query_scalar(
            "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
             WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? \
             ORDER BY ordinal_position",
        )
        .bind(schema)
        .bind(name)
        .fetch_all(&self.pool)
        .await?)
    }

    pub(super) async fn tables(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
             WHERE table_schema = DATABASE()",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Why `column` cannot be compared with the clock: its type must be `datetime`,
    /// `timestamp` or `date`.
    pub(super) async fn timestamp_problem(
        &self,
        column: &TimestampColumn,
    ) -> Result<Option<String>> {
        let (schema, name) = split_name(&column.table);
        let found: Option<String> = sqlx::query_scalar(
            "SELECT CAST(data_type AS CHAR) FROM information_schema.columns \
             WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? AND column_name = ?",
        )
        .bind(schema)
        .bind(name)
        .bind(&column.column)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found
            .filter(|found| !["datetime", "timestamp", "date"].contains(&found.as_str()))
            .map(|found| {
                format!(
                    "column `{}` of `{}` is {found}, not a timestamp; freshness needs a \
                     `datetime`, `timestamp` or `date` column (for dates kept as text, \
                     convert them in a `sql` rule)",
                    column.column, column.table
                )
            }))
    }

    /// What the session's user may do beyond reading: write privileges granted on every
    /// database, on the source's database, or on the `tables` rules name; and `SUPER` or
    /// `CONNECTION ADMIN`, which kill other users' sessions.
    pub(super) async fn excess_privileges(&self, tables: &[String]) -> Result<Vec<String>> {
        const WRITES: [&str; 16] = [
            "INSERT",
            "UPDATE",
            "DELETE",
            "DROP",
            "ALTER",
            "CREATE",
            "INDEX",
            "TRIGGER",
            "REFERENCES",
            "CREATE VIEW",
            "CREATE ROUTINE",
            "ALTER ROUTINE",
            "EXECUTE",
            "EVENT",
            "LOCK TABLES",
            "FILE",
        ];
        // Literals of our own list, for the `IN (…)` of the queries below.
        let writes = format!("('{}')", WRITES.join("', '"));
        // information_schema names a user as 'name'@'host'; CURRENT_USER() as name@host.
        const GRANTEE: &str = "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', \
                               SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')";
        let user: String = sqlx::query_scalar("SELECT CAST(CURRENT_USER() AS CHAR)")
            .fetch_one(&self.pool)
            .await?;
        let global: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(privilege_type AS CHAR) FROM information_schema.user_privileges \
             WHERE grantee = {GRANTEE} ORDER BY 1"
        )))
        .fetch_all(&self.pool)
        .await?;
        let database: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT CAST(privilege_type AS CHAR) FROM information_schema.schema_privileges \
             WHERE grantee = {GRANTEE} AND table_schema = DATABASE() AND privilege_type IN {writes} \
             ORDER BY 1"
        )))
        .fetch_all(&self.pool)
        .await?;
        let granted: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(table_name AS CHAR), CAST(privilege_type AS CHAR) \
             FROM information_schema.table_privileges \
             WHERE grantee = {GRANTEE} AND table_schema = DATABASE() AND privilege_type IN {writes} \
             ORDER BY 1, 2"
        )))
        .fetch_all(&self.pool)
        .await?;
        let user = format!("user `{}`", user.replace('`', "'"));
        let mut powers = Vec::new();
        let writes: Vec<&str> = global
            .iter()
            .map(String::as_str)
            .filter(|p| WRITES.contains(p))
            .collect();
        if !writes.is_empty() {
            powers.push(format!(
                "{user} may {} on every database",
                writes.join(", ")
            ));
        }
        if global
            .iter()
            .any(|p| p == "SUPER" || p == "CONNECTION ADMIN")
        {
            powers.push(format!(
                "{user} has SUPER or CONNECTION ADMIN: it can kill any session"
            ));
        }
        if !database.is_empty() {
            powers.push(format!(
                "{user} may {} on the source's database",
                database.join(", ")
            ));
        }
        let named: Vec<String> = granted
            .iter()
            .filter(|(table, _)| tables.iter().any(|t| split_name(t).1 == table.as_str()))
            .map(|(table, privilege)| format!("{privilege} on `{table}`"))
            .collect();
        if !named.is_empty() {
            powers.push(format!(
                "{user} can write to the tables its rules read: {}",
                named.join(", ")
            ));
        }
        Ok(powers)
    }
}

/// `schema.table` as (schema, table); an unqualified name has no schema.
fn split_name(table: &str) -> (Option<&str>, &str) {
    match table.split_once('.') {
        Some((schema, name)) => (Some(schema), name),
        None => (None, table),
    }
}

/// Whether `err` is the server stopping a statement at its time limit (MariaDB 1969,
/// MySQL 3024). A `KILL QUERY` (1317, "interrupted") is not: the run was interrupted.
fn is_timeout(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|e| e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
        .is_some_and(|e| [1969, 3024].contains(&e.number()))
}

impl Backend for MySql {
    fn positional_binds() -> bool {
        true
    }

    fn value(row: &Self::Row, index: usize) -> Result<Value, sqlx::Error> {
        let raw = row.try_get_raw(index)?;
        if raw.is_null() {
            return Ok(Value::Null);
        }
        let type_info = raw.type_info();
        let type_name = TypeName::new(type_info.name());
        let text_type = <str as sqlx::Type<MySql>>::compatible(&type_info);
        let decode_error = |source| sqlx::Error::ColumnDecode {
            index: index.to_string(),
            source,
        };
        let text = || -> Result<String, sqlx::Error> {
            <String as Decode<MySql>>::decode(raw.clone()).map_err(decode_error)
        };
        let value = match type_name.as_str() {
            "BOOLEAN" => match <i64 as Decode<MySql>>::decode(raw).map_err(decode_error)? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                other => Value::Int(other),
            },
            "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "YEAR" => {
                Value::Int(<i64 as Decode<MySql>>::decode(raw).map_err(decode_error)?)
            }
            "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" | "INT UNSIGNED"
            | "BIGINT UNSIGNED" | "BIT" => {
                let n = <u64 as Decode<MySql>>::decode(raw).map_err(decode_error)?;
                match i64::try_from(n) {
                    Ok(n) => Value::Int(n),
                    Err(_) => Value::Decimal(n.to_string()),
                }
            }
            "FLOAT" | "DOUBLE" => {
                Value::Float(<f64 as Decode<MySql>>::decode(raw).map_err(decode_error)?)
            }
            // DECIMAL travels as its exact text in both formats.
            "DECIMAL" => Value::Decimal(text()?),
            // Binary from prepared statements, text from plain ones: the first byte tells
            // (a length there, a digit or `-` in text).
            "DATETIME" | "TIMESTAMP" | "DATE" => Value::Timestamp(
                match <&[u8] as Decode<MySql>>::decode(raw).map_err(decode_error)? {
                    bytes @ [0 | 4 | 7 | 11, ..] => datetime_text(bytes).map_err(decode_error)?,
                    bytes => utf8(bytes).map_err(decode_error)?,
                },
            ),
            "TIME" => Value::Text(
                match <&[u8] as Decode<MySql>>::decode(raw).map_err(decode_error)? {
                    bytes @ [0 | 8 | 12, ..] => time_text(bytes).map_err(decode_error)?,
                    bytes => utf8(bytes).map_err(decode_error)?,
                },
            ),
            // sqlx names text of a `_bin` collation as binary; its collation tells.
            "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB"
                if text_type =>
            {
                Value::Text(text()?)
            }
            "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB"
            | "GEOMETRY" => {
                Value::Bytes(<Vec<u8> as Decode<MySql>>::decode(raw).map_err(decode_error)?)
            }
            "CHAR" | "VARCHAR" | "TINYTEXT" | "TEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM"
            | "SET" | "JSON" | "NULL" => Value::Text(text()?),
            _ => {
                let other = row.try_get_raw(index)?.type_info().name().to_owned();
                return Err(sqlx::Error::ColumnDecode {
                    index: index.to_string(),
                    source: format!(
                        "trueup cannot read type {other}; cast the column to text in the query \
                         (CAST(… AS CHAR))"
                    )
                    .into(),
                });
            }
        };
        Ok(value)
    }
}

super::fetch::bind_values_as_usual!(MySql);

fn utf8(bytes: &[u8]) -> Result<String, sqlx::error::BoxDynError> {
    Ok(std::str::from_utf8(bytes)?.to_owned())
}

/// A `DATETIME`, `TIMESTAMP` or `DATE` in MySQL's binary format as PostgreSQL writes a
/// timestamp (`2026-12-04 10:00:00.25`; a date at midnight): a length (0, 4, 7 or 11), the
/// year (two bytes, little-endian), month, day, then hour, minute, second, then
/// microseconds (four bytes). Length 0 is MySQL's zero date.
fn datetime_text(bytes: &[u8]) -> Result<String, sqlx::error::BoxDynError> {
    let malformed = || format!("a malformed DATETIME ({} bytes)", bytes.len());
    let Some((&len, rest)) = bytes.split_first() else {
        return Err("an empty DATETIME".into());
    };
    if usize::from(len) != rest.len() || ![0, 4, 7, 11].contains(&len) {
        return Err(malformed().into());
    }
    let byte = |i: usize| rest.get(i).copied().unwrap_or(0);
    let year = u16::from_le_bytes([byte(0), byte(1)]);
    let micros = u32::from_le_bytes([byte(7), byte(8), byte(9), byte(10)]);
    Ok(crate::time::datetime_text(
        i64::from(year),
        byte(2),
        byte(3),
        (byte(4), byte(5), byte(6)),
        micros,
    ))
}

/// A `TIME` in MySQL's binary format as text (`-838:59:59`, `25:00:00.5`): a length (0, 8
/// or 12), the sign, days (four bytes), hour, minute, second, then microseconds.
fn time_text(bytes: &[u8]) -> Result<String, sqlx::error::BoxDynError> {
    let Some((&len, rest)) = bytes.split_first() else {
        return Err("an empty TIME".into());
    };
    if usize::from(len) != rest.len() || ![0, 8, 12].contains(&len) {
        return Err(format!("a malformed TIME ({} bytes)", bytes.len()).into());
    }
    let byte = |i: usize| rest.get(i).copied().unwrap_or(0);
    let days = u32::from_le_bytes([byte(1), byte(2), byte(3), byte(4)]);
    let hours = u64::from(days) * 24 + u64::from(byte(5));
    let micros = u32::from_le_bytes([byte(8), byte(9), byte(10), byte(11)]);
    let mut text = format!(
        "{}{hours:02}:{:02}:{:02}",
        if byte(0) == 1 { "-" } else { "" },
        byte(6),
        byte(7)
    );
    crate::time::push_fraction(&mut text, micros);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::{datetime_text, time_text};

    #[test]
    fn binary_datetimes_read_as_postgresql_writes_them() {
        let full = [11, 0xEA, 0x07, 12, 4, 10, 5, 9, 0x90, 0xD0, 0x03, 0x00];
        assert_eq!(datetime_text(&full).unwrap(), "2026-12-04 10:05:09.25");
        assert_eq!(
            datetime_text(&[7, 0xEA, 0x07, 1, 2, 3, 4, 5]).unwrap(),
            "2026-01-02 03:04:05"
        );
        assert_eq!(
            datetime_text(&[4, 0xEA, 0x07, 1, 2]).unwrap(),
            "2026-01-02 00:00:00"
        );
        assert_eq!(datetime_text(&[0]).unwrap(), "0000-00-00 00:00:00");
        for bad in [&[][..], &[5, 1, 2, 3, 4, 5], &[11, 1, 2]] {
            assert!(datetime_text(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            time_text(&[8, 1, 1, 0, 0, 0, 2, 3, 4]).unwrap(),
            "-26:03:04"
        );
        assert_eq!(time_text(&[0]).unwrap(), "00:00:00");
        assert!(time_text(&[3, 0, 0, 0]).is_err());
    }
}
