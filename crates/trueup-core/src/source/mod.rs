//! Sources: named database connections (and metrics servers) that detectors run against.
//!
//! [`Source`] hides which database is behind it. Each backend module knows how to connect
//! read-only, how to read its values and how to list a table's columns; the SQL query loop
//! itself is shared ([`fetch`]). A source that is not SQL (Prometheus) runs the query of
//! its own language a detector compiles to ([`crate::compile::NativeQuery`]) into the same
//! [`RowSink`], and answers the SQL-only questions with an error.

mod fetch;
mod mysql;
mod postgres;
mod prometheus;
mod redis;
mod sqlite;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{PgPool, SqlitePool};

pub use crate::redact::redact;
pub use fetch::{FirstRow, RowSink};
pub use postgres::CopyRow;
pub use redis::{
    Connection as RedisConnection, READ_COMMANDS as REDIS_READ_COMMANDS, Read as RedisRead,
    Reply as RedisReply,
};
pub use sqlite::{database_file, database_path};

/// A Redis connection that may write, for repairs only (`repair::evict`): detection gets
/// [`RedisConnection`]s, which send reads only. `tests/layering.rs` keeps other modules
/// from naming it.
pub mod redis_session {
    pub use super::redis::{Session, session};
}

/// One PostgreSQL session opened as sources open theirs (the source's `connect-timeout`,
/// the same errors and hints), for callers with sessions of their own (repairs).
pub mod postgres_session {
    pub use super::postgres::{options, session};
}

/// One MySQL session opened as sources open theirs, and MySQL values read as sources read
/// them, for repairs.
pub mod mysql_session {
    pub use super::mysql::{SQL_MODE_SETUP, options, session, value};
}

use crate::compile::DetectorQuery;
use crate::dialect::Dialect;
use crate::load::{LoadedRule, Project, SourceSpec};
use crate::value::Value;
use crate::{Error, Result};

/// An open, read-only connection pool to one database.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    /// The URL with its password replaced, safe to print.
    pub display_url: String,
    backend: Backend,
    /// The database file of a SQLite source.
    file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool, Arc<sqlite::Running>),
    Postgres(PgPool),
    Mysql(mysql::Server),
    Prometheus(prometheus::Server),
    Redis(redis::Server),
}

pub use crate::rule::TimestampColumn;

/// The open sources of a run, by name; a source that could not be opened keeps its error.
pub type Sources = BTreeMap<String, Result<Source, OpenFailure>>;

/// Why a source could not be opened, and how long trying took: the time its rules spent
/// waiting for it, which they report as theirs.
#[derive(Debug, Clone)]
pub struct OpenFailure {
    pub error: crate::outcome::RuleError,
    pub elapsed: Duration,
}

impl std::fmt::Display for OpenFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

/// Opens every source the rules use, at once; failures are kept per source, with the time
/// each attempt took.
pub async fn open_all(project: &Project, rules: &[&LoadedRule], max_connections: u32) -> Sources {
    // A `reconcile` rule reads its right side's source too, a `cache-consistency` rule
    // its rows' source.
    let mut names: Vec<&str> = rules
        .iter()
        .flat_map(|r| std::iter::once(r.source.as_str()).chain(r.rule.detector.other_source()))
        .filter(|name| project.sources.contains_key(*name))
        .collect();
    names.sort_unstable();
    names.dedup();
    let opened = futures_util::future::join_all(names.iter().map(|name| async move {
        let spec = &project.sources[*name];
        let pool_size = spec.max_connections.unwrap_or(max_connections);
        let started = std::time::Instant::now();
        let source = Source::connect(spec, &project.root, pool_size)
            .await
            .map_err(|e| OpenFailure {
                error: crate::outcome::RuleError::from_error(&e),
                elapsed: started.elapsed(),
            });
        ((*name).to_owned(), source)
    }))
    .await;
    opened.into_iter().collect()
}

/// A table or column a rule names that its source does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaProblem {
    NoTable {
        source: String,
        table: String,
        /// A table of that name, spelt close.
        hint: Option<String>,
    },
    NoColumn {
        table: String,
        column: String,
        /// Where the column is in the list asked about.
        at: usize,
        /// A column spelt close, or the table's columns.
        hint: String,
    },
}

impl SchemaProblem {
    /// What to try instead, when there is something to say.
    pub fn hint(&self) -> Option<&str> {
        match self {
            SchemaProblem::NoTable { hint, .. } => hint.as_deref(),
            SchemaProblem::NoColumn { hint, .. } => Some(hint),
        }
    }
}

impl std::fmt::Display for SchemaProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchemaProblem::NoTable { source, table, .. } => {
                write!(f, "source `{source}` has no table `{table}`")
            }
            SchemaProblem::NoColumn { table, column, .. } => {
                write!(f, "table `{table}` has no column `{column}`")
            }
        }
    }
}

/// The rule error a query's failure is: a timeout, a refusal, or the database's error.
pub fn rule_error(error: QueryError) -> crate::outcome::RuleError {
    use crate::outcome::RuleError;
    match error {
        QueryError::Timeout(limit) => RuleError::Timeout {
            limit,
            with_plugin: false,
        },
        QueryError::Refused(problem) => RuleError::Refused(problem),
        QueryError::Failed(err) => RuleError::from_error(&err),
    }
}

/// How a query run ended when it did not return its rows.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query ran past its deadline and was cancelled in the database.
    #[error("timed out after {}", crate::duration::HumanDuration(*.0))]
    Timeout(Duration),
    /// trueup refused to send the query (it is not exactly one read-only statement).
    #[error("{0}")]
    Refused(String),
    /// The database or the row sink failed.
    #[error(transparent)]
    Failed(#[from] Error),
}

impl Source {
    /// Opens a read-only pool of at most `max_connections` to the source; relative SQLite
    /// paths start at `root`.
    pub async fn connect(spec: &SourceSpec, root: &Path, max_connections: u32) -> Result<Source> {
        let url = spec.resolve()?;
        let name = &spec.name;
        let dialect = match spec.kind()? {
            crate::dialect::SourceKind::Sql(dialect) => dialect,
            crate::dialect::SourceKind::Prometheus => {
                return Ok(Source {
                    name: spec.name.clone(),
                    display_url: redact(&url),
                    backend: Backend::Prometheus(
                        prometheus::connect(name, &url, spec.connect_timeout).await?,
                    ),
                    file: None,
                });
            }
            crate::dialect::SourceKind::Redis => {
                return Ok(Source {
                    name: spec.name.clone(),
                    display_url: redact(&url),
                    backend: Backend::Redis(
                        redis::connect(name, &url, spec.connect_timeout).await?,
                    ),
                    file: None,
                });
            }
        };
        let backend = match dialect {
            Dialect::Sqlite => Backend::Sqlite(
                sqlite::connect(name, &url, root, max_connections).await?,
                Arc::default(),
            ),
            Dialect::Postgres => Backend::Postgres(
                postgres::connect(name, &url, max_connections, spec.connect_timeout).await?,
            ),
            Dialect::Mysql => Backend::Mysql(
                mysql::connect(name, &url, max_connections, spec.connect_timeout).await?,
            ),
        };
        let file = matches!(backend, Backend::Sqlite(..)).then(|| database_path(&url, root));
        Ok(Source {
            name: spec.name.clone(),
            display_url: redact(&url),
            backend,
            file,
        })
    }

    /// The SQL dialect of a SQL source; `None` for one that is not SQL (Prometheus).
    pub fn dialect(&self) -> Option<Dialect> {
        match self.backend {
            Backend::Sqlite(..) => Some(Dialect::Sqlite),
            Backend::Postgres(_) => Some(Dialect::Postgres),
            Backend::Mysql(_) => Some(Dialect::Mysql),
            Backend::Prometheus(_) | Backend::Redis(_) => None,
        }
    }

    /// The SQL dialect, or for a source that is not SQL the rule error of SQL sent to it.
    pub fn sql_dialect(&self) -> Result<Dialect, crate::outcome::RuleError> {
        self.dialect()
            .ok_or_else(|| crate::outcome::RuleError::Configuration(self.not_sql().to_string()))
    }

    /// What the source is: a SQL database of a dialect, Prometheus or Redis.
    pub fn kind(&self) -> crate::dialect::SourceKind {
        match (&self.backend, self.dialect()) {
            (_, Some(dialect)) => crate::dialect::SourceKind::Sql(dialect),
            (Backend::Redis(_), None) => crate::dialect::SourceKind::Redis,
            (_, None) => crate::dialect::SourceKind::Prometheus,
        }
    }

    /// A new connection to a Redis source, which sends only read commands
    /// ([`RedisRead`]); an error for any other source.
    pub async fn redis(&self) -> Result<RedisConnection> {
        match &self.backend {
            Backend::Redis(server) => server.open().await,
            _ => Err(Error::Other(format!(
                "source `{}` is a {} source, not Redis",
                self.name,
                self.kind().name()
            ))),
        }
    }

    /// The error for a SQL question asked of a source that is not SQL (lint keeps SQL
    /// rules away from such sources; this is what a slip would meet instead of a crash).
    fn not_sql(&self) -> Error {
        Error::Other(format!(
            "source `{}` is a {} source, not a SQL database",
            self.name,
            self.kind().name()
        ))
    }

    /// The columns of `table`, or `None` when there is no such table.
    pub async fn columns(&self, table: &str) -> Result<Option<Vec<String>>> {
        let names = match &self.backend {
            Backend::Sqlite(pool, _) => sqlite::columns(pool, table).await?,
            Backend::Postgres(pool) => postgres::columns(pool, table).await?,
            Backend::Mysql(server) => server.columns(table).await?,
            Backend::Prometheus(_) | Backend::Redis(_) => return Err(self.not_sql()),
        };
        Ok((!names.is_empty()).then_some(names))
    }

    /// What is wrong with `table` and the `columns` of it a rule names, as this source
    /// sees it: nothing when all exist.
    pub async fn schema_problems(
        &self,
        table: &str,
        columns: &[&str],
    ) -> Result<Vec<SchemaProblem>> {
        let Some(existing) = self.columns(table).await? else {
            let tables = self.tables().await.unwrap_or_default();
            let mut hint = crate::suggest::did_you_mean(table, tables.iter().map(String::as_str));
            if let (None, Backend::Postgres(pool)) = (&hint, &self.backend) {
                hint = postgres::elsewhere(pool, table).await.unwrap_or_default();
            }
            return Ok(vec![SchemaProblem::NoTable {
                source: self.name.clone(),
                table: table.to_owned(),
                hint,
            }]);
        };
        Ok(columns
            .iter()
            .enumerate()
            .filter(|(_, column)| !existing.iter().any(|c| c == *column))
            .map(|(at, column)| SchemaProblem::NoColumn {
                table: table.to_owned(),
                column: (*column).to_owned(),
                at,
                hint: crate::suggest::did_you_mean(column, existing.iter().map(String::as_str))
                    .unwrap_or_else(|| format!("its columns are: {}", existing.join(", "))),
            })
            .collect())
    }

    /// The names of the tables and views a rule can read unqualified.
    pub async fn tables(&self) -> Result<Vec<String>> {
        Ok(match &self.backend {
            Backend::Sqlite(pool, _) => sqlx::query_scalar(
                "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(pool)
            .await?,
            Backend::Postgres(pool) => sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
            )
            .fetch_all(pool)
            .await?,
            Backend::Mysql(server) => server.tables().await?,
            Backend::Prometheus(_) | Backend::Redis(_) => return Err(self.not_sql()),
        })
    }

    /// Why `column` cannot be compared with the clock here, if it cannot, as a sentence that
    /// names the column, what it is and what would do. PostgreSQL: its type must be
    /// `timestamp`, `timestamptz` or `date` (a domain over one counts). SQLite, whose types
    /// are affinities: its newest value (the one freshness compares) must be one
    /// `julianday()` reads, and a number only in a column declared with DATE or TIME in its
    /// type. A missing column is not this function's business: `None`.
    pub async fn timestamp_problem(
        &self,
        column: &TimestampColumn,
        timeout: Duration,
    ) -> Result<Option<String>, QueryError> {
        match &self.backend {
            Backend::Sqlite(pool, running) => {
                sqlite::timestamp_problem(pool, running, column, timeout).await
            }
            Backend::Postgres(pool) => Ok(postgres::timestamp_problem(pool, column).await?),
            Backend::Mysql(server) => Ok(server.timestamp_problem(column).await?),
            Backend::Prometheus(_) | Backend::Redis(_) => Err(QueryError::Failed(self.not_sql())),
        }
    }

    /// What this source's connection may do beyond reading what its rules read, each a
    /// phrase for `validate`'s least-privilege warning; empty when it may only read.
    /// PostgreSQL: write privileges on the `tables` rules name and on the relations the
    /// `queries` read as the server plans them (`EXPLAIN`, so views count as their tables),
    /// superuser, `pg_signal_backend`, owning those tables or being a member of their owner.
    /// SQLite: a database file the user trueup runs as may write.
    pub async fn excess_privileges(
        &self,
        tables: &[String],
        queries: &[DetectorQuery],
    ) -> Result<Vec<String>> {
        match &self.backend {
            Backend::Sqlite(..) => Ok(self
                .file
                .as_deref()
                .map(sqlite::excess_privileges)
                .unwrap_or_default()),
            Backend::Postgres(pool) => postgres::excess_privileges(pool, tables, queries).await,
            Backend::Mysql(server) => server.excess_privileges(tables).await,
            // trueup asks it nothing but the query API, which cannot write; Redis gets only
            // read commands (`RedisRead`).
            Backend::Prometheus(_) | Backend::Redis(_) => Ok(Vec::new()),
        }
    }

    /// The smallest and largest key a split query reports (`Split::bounds_sql`), when both
    /// are integers; `None` for an empty table or other key types.
    pub async fn key_bounds(&self, bounds_sql: &str) -> Result<Option<(i64, i64)>> {
        let row = match &self.backend {
            Backend::Sqlite(pool, _) => {
                fetch::first_row::<sqlx::Sqlite>(&mut *pool.acquire().await?, bounds_sql).await?
            }
            Backend::Postgres(pool) => {
                fetch::first_row::<sqlx::Postgres>(&mut *pool.acquire().await?, bounds_sql).await?
            }
            Backend::Mysql(server) => {
                fetch::first_row::<sqlx::MySql>(&mut *server.pool().acquire().await?, bounds_sql)
                    .await?
            }
            Backend::Prometheus(_) | Backend::Redis(_) => return Err(self.not_sql()),
        };
        Ok(match row.as_deref() {
            Some([Value::Int(lo), Value::Int(hi)]) => Some((*lo, *hi)),
            _ => None,
        })
    }

    /// The result columns `query` would return, found by preparing it without running it.
    pub async fn result_columns(&self, query: &DetectorQuery) -> Result<Vec<String>> {
        match &self.backend {
            Backend::Sqlite(pool, _) => {
                fetch::result_columns::<sqlx::Sqlite>(&mut *pool.acquire().await?, query).await
            }
            Backend::Postgres(pool) => {
                fetch::result_columns::<sqlx::Postgres>(&mut *pool.acquire().await?, query).await
            }
            Backend::Mysql(server) => {
                fetch::result_columns::<sqlx::MySql>(&mut *server.pool().acquire().await?, query)
                    .await
            }
            Backend::Prometheus(_) | Backend::Redis(_) => Err(self.not_sql()),
        }
    }

    /// Runs `query`, handing its columns then each row to `sink`, and cancels it in the
    /// database once `timeout` has passed. The query is parsed first and refused unless it
    /// is exactly one read-only statement: SQLite would run whatever follows a `;`, and
    /// `VACUUM INTO` writes a file even on a read-only connection.
    pub async fn fetch<S: RowSink>(
        &self,
        query: &DetectorQuery,
        timeout: Duration,
        sink: &mut S,
    ) -> Result<(), QueryError> {
        use crate::compile::NativeQuery;
        match (&self.backend, &query.native, self.dialect()) {
            (Backend::Prometheus(server), Some(NativeQuery::Promql(call)), _) => {
                return server.fetch(call, timeout, sink).await;
            }
            (_, Some(NativeQuery::CacheConsistency), _) => {
                return Err(QueryError::Refused(format!(
                    "a cache check reads two sources; source `{}` cannot run it alone",
                    self.name
                )));
            }
            (_, Some(NativeQuery::Promql(_)), _) => {
                return Err(QueryError::Refused(format!(
                    "a PromQL query, but source `{}` is a {} database",
                    self.name,
                    self.kind().name()
                )));
            }
            (_, None, None) => {
                return Err(QueryError::Refused(format!(
                    "SQL, but source `{}` is a {} source",
                    self.name,
                    self.kind().name()
                )));
            }
            (_, None, Some(dialect)) => {
                if let Some(problem) = crate::sql_text::compiled_query_problem(&query.sql, dialect)
                {
                    return Err(QueryError::Refused(problem));
                }
            }
        }
        self.fetch_unchecked(query, timeout, sink).await
    }

    /// [`Source::fetch`] without the statement check: the query runs in the same read-only
    /// session, so tests can show what the database itself stops (`least_privilege.rs`).
    /// Nothing a user writes reaches this; commands call [`Source::fetch`].
    #[doc(hidden)]
    pub async fn fetch_unchecked<S: RowSink>(
        &self,
        query: &DetectorQuery,
        timeout: Duration,
        sink: &mut S,
    ) -> Result<(), QueryError> {
        match &self.backend {
            Backend::Sqlite(pool, running) => {
                sqlite::fetch(pool, running, query, timeout, sink).await
            }
            Backend::Postgres(pool) => match postgres::fetch(pool, query, timeout, sink).await {
                Err(QueryError::Failed(error)) => Err(QueryError::Failed(postgres::pool_error(
                    &self.name, pool, error,
                ))),
                other => other,
            },
            Backend::Mysql(server) => server.fetch(query, timeout, sink).await,
            Backend::Prometheus(_) | Backend::Redis(_) => Err(QueryError::Failed(self.not_sql())),
        }
    }

    /// Cancels, in the database, every query this source is running now (a run that was
    /// interrupted): PostgreSQL gets a cancel for each of this pool's sessions, found by the
    /// pool's own `application_name`; SQLite statements stop at their progress handler's
    /// next check. Returns how many queries were cancelled.
    pub async fn cancel_running(&self) -> Result<u64> {
        match &self.backend {
            Backend::Sqlite(_, running) => Ok(running.cancel()),
            Backend::Postgres(pool) => postgres::cancel_running(pool).await,
            Backend::Mysql(server) => server.cancel_running().await,
            // A query's connection is its future's: the engine drops it, the socket closes
            // and Prometheus stops evaluating (Redis: the reads stop).
            Backend::Prometheus(_) | Backend::Redis(_) => Ok(0),
        }
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(pool, _) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
            Backend::Mysql(server) => server.pool().close().await,
            Backend::Prometheus(_) | Backend::Redis(_) => {}
        }
    }
}
