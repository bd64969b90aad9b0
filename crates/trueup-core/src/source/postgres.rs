//! PostgreSQL sources: sessions that are read-only by default, values read by column type,
//! and timeouts enforced by the server's `statement_timeout`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgValueFormat};
use sqlx::{PgPool, Postgres, Row, TypeInfo, ValueRef};

mod copy;
mod schema;

pub use copy::CopyRow;

pub(super) use schema::{columns, elsewhere, timestamp_problem};

use super::fetch::{Backend, FirstRow, RowSink, TypeName, stream_rows};
use super::{QueryError, TimestampColumn, redact};
use crate::compile::DetectorQuery;
use crate::dialect::Dialect;
use crate::value::Value;
use crate::{Error, Result};

/// How long past its own timeout a statement may take to report the cancellation before
/// trueup gives up on the connection.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// Opens source `name` at the resolved `url`; connecting may take `timeout`. A failure
/// that a password the URL misreads may explain (`/`, `?` or `#` in it, unencoded) says so
/// ([`crate::redact::password_encoding_hint`]).
pub(super) async fn connect(
    name: &str,
    url: &str,
    max_connections: u32,
    timeout: Duration,
) -> Result<PgPool> {
    let options = options(name, url)?
        .application_name(&session_name(name))
        .options([("default_transaction_read_only", "on")]);
    // One direct connection first: a refused connection or a wrong password is reported at
    // once with its cause, where a pool would retry until its timeout and say only that.
    let probe = session(name, url, &options, timeout).await?;
    probe
        .close()
        .await
        .map_err(|e| connect_error(name, url, e))?;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .min_connections(0)
        .acquire_timeout(timeout)
        .connect_lazy_with(options))
}

/// A failure to connect to source `name` at `url`, with a hint when a password the URL
/// misreads (`/`, `?` or `#` in it, unencoded) may explain it
/// ([`crate::redact::password_encoding_hint`]).
fn connect_error(name: &str, url: &str, source: sqlx::Error) -> Error {
    // 28P01: invalid_password.
    let login_refused = source
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "28P01");
    hinted(
        url,
        Error::Connect {
            source_name: name.to_owned(),
            url: redact(url),
            source,
        },
        login_refused,
    )
}

fn hinted(url: &str, error: Error, login_refused: bool) -> Error {
    match crate::redact::password_encoding_hint(url, login_refused) {
        Some(hint) => Error::Hinted {
            error: Box::new(error),
            hint,
        },
        None => error,
    }
}

/// The connection options of source `name`'s resolved `url`.
pub fn options(name: &str, url: &str) -> Result<PgConnectOptions> {
    PgConnectOptions::from_str(url).map_err(|e| connect_error(name, url, e))
}

/// One session of source `name` with `options`, opened within `timeout` (the source's
/// `connect-timeout`), or an error that names the host, the timeout and any hint.
pub async fn session(
    name: &str,
    url: &str,
    options: &PgConnectOptions,
    timeout: Duration,
) -> Result<PgConnection> {
    tokio::time::timeout(timeout, PgConnection::connect_with(options))
        .await
        .map_err(|_| hinted(url, timed_out(name, options, timeout), false))?
        .map_err(|e| connect_error(name, url, e))
}

/// Source `name` at the server `options` name did not answer within `timeout`.
fn timed_out(name: &str, options: &PgConnectOptions, timeout: Duration) -> Error {
    Error::ConnectTimeout {
        source_name: name.to_owned(),
        address: match options.get_socket() {
            Some(folder) => format!("the socket in {}", folder.display()),
            None => format!("{}:{}", options.get_host(), options.get_port()),
        },
        limit: timeout,
    }
}

/// A pool of source `name` that could not hand out a connection in time (the server stopped
/// answering after the source was opened) as [`Error::ConnectTimeout`]; other errors as
/// they are.
pub(super) fn pool_error(name: &str, pool: &PgPool, error: Error) -> Error {
    match error {
        Error::Database(sqlx::Error::PoolTimedOut) => timed_out(
            name,
            &pool.connect_options(),
            pool.options().get_acquire_timeout(),
        ),
        other => other,
    }
}

/// The `application_name` of one source's sessions in one trueup process: `trueup`, then
/// what tells them from every other trueup's, so that an interrupted run cancels its own
/// queries only.
fn session_name(source: &str) -> String {
    static POOLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let pool = POOLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let source: String = source
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(20)
        .collect();
    format!("trueup {source} {}.{pool}", std::process::id())
}

/// Cancels the queries of `pool`'s sessions, from a session of its own (PostgreSQL lets a
/// role cancel its own sessions' queries).
pub(super) async fn cancel_running(pool: &PgPool) -> Result<u64> {
    let options = pool.connect_options();
    let name = options
        .get_application_name()
        .unwrap_or_default()
        .to_owned();
    let wait = pool.options().get_acquire_timeout();
    let mut conn = tokio::time::timeout(wait, PgConnection::connect_with(&options))
        .await
        .map_err(|_| Error::Database(sqlx::Error::PoolTimedOut))??;
    let cancelled: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FILTER (WHERE pg_cancel_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = $1 AND pid <> pg_backend_pid() AND state = 'active'",
    )
    .bind(name)
    .fetch_one(&mut conn)
    .await?;
    let _ = conn.close().await;
    Ok(u64::try_from(cancelled).unwrap_or(0))
}

/// How long explaining one rule's query may take (planning, not running it).
const EXPLAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the session's role may do beyond reading the rules' tables: the named `tables` and
/// the relations the `queries` read as the server plans them (views resolved to their
/// tables), each checked for write privileges; then the role's own powers. Each entry is a
/// clause naming the role.
pub(super) async fn excess_privileges(
    pool: &PgPool,
    tables: &[String],
    queries: &[DetectorQuery],
) -> Result<Vec<String>> {
    let mut names: Vec<String> = tables.iter().map(|t| Dialect::Postgres.quote(t)).collect();
    for query in queries {
        // A query that does not plan is `validate`'s problem already; the named tables remain.
        if let Ok(relations) = relations_read(pool, query).await {
            names.extend(relations);
        }
    }
    names.sort_unstable();
    names.dedup();
    let (role, superuser, signals): (String, bool, bool) = sqlx::query_as(
        "SELECT rolname::text, rolsuper, CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pg_signal_backend') \
         THEN pg_has_role('pg_signal_backend', 'MEMBER') ELSE false END \
         FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(pool)
    .await?;
    let tables: Vec<(String, bool, String, bool, bool)> = sqlx::query_as(
        // Names resolve to one table in several spellings (`orders`, `public.orders`).
        "SELECT DISTINCT c.oid::regclass::text, \
           has_table_privilege(c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE') \
             OR has_any_column_privilege(c.oid, 'INSERT,UPDATE'), \
           pg_get_userbyid(c.relowner)::text, \
           c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user), \
           pg_has_role(c.relowner, 'MEMBER') \
         FROM unnest($1::text[]) AS t(name) JOIN pg_class c ON c.oid = to_regclass(t.name) \
         ORDER BY 1",
    )
    .bind(&names)
    .fetch_all(pool)
    .await?;
    let tables: Vec<TableRights> = tables
        .into_iter()
        .map(
            |(name, writable, owner, owned, member_of_owner)| TableRights {
                name,
                writable,
                owner,
                owned,
                member_of_owner,
            },
        )
        .collect();
    Ok(describe_powers(&role, superuser, signals, &tables))
}

/// What the session's role may do to one table a rule reads.
struct TableRights {
    name: String,
    writable: bool,
    owner: String,
    owned: bool,
    member_of_owner: bool,
}

/// The clauses of the least-privilege warning, one per power of `role`.
fn describe_powers(
    role: &str,
    superuser: bool,
    signals: bool,
    tables: &[TableRights],
) -> Vec<String> {
    // The names of the tables that `keep` keeps, as `a`, `b`; empty if none.
    let names = |keep: &dyn Fn(&TableRights) -> bool| {
        tables
            .iter()
            .filter(|t| keep(t))
            .map(|t| format!("`{}`", t.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let role = format!("role `{}`", role.replace('`', "'"));
    let mut powers = Vec::new();
    if superuser {
        powers.push(format!(
            "{role} is a superuser: it can write to every table and cancel or terminate any session"
        ));
    }
    let writable = names(&|t| t.writable);
    if !writable.is_empty() {
        powers.push(format!(
            "{role} can write to the tables its rules read: {writable}"
        ));
    }
    if superuser {
        // Every other power is a superuser's anyway.
        return powers;
    }
    let owned = names(&|t| t.owned);
    if !owned.is_empty() {
        powers.push(format!(
            "{role} owns {owned}: if the application connects as this role too, a rule can \
             cancel or terminate the application's sessions (a role may signal its own sessions)"
        ));
    }
    let mut owners: Vec<&str> = tables
        .iter()
        .filter(|t| t.member_of_owner && !t.owned)
        .map(|t| t.owner.as_str())
        .collect();
    owners.sort_unstable();
    owners.dedup();
    for owner in owners {
        powers.push(format!(
            "{role} is a member of `{owner}`, which owns {}: it can take that role (even with \
             NOINHERIT) and cancel or terminate its sessions",
            names(&|t| t.owner == owner)
        ));
    }
    if signals {
        powers.push(format!(
            "{role} is a member of `pg_signal_backend`: it can cancel or terminate any session \
             but a superuser's"
        ));
    }
    powers
}

/// The relations `query` reads, schema-qualified and quoted, as `EXPLAIN` plans it (run
/// like a detector: read-only, with the rule's settings and a timeout; nothing executes).
async fn relations_read(pool: &PgPool, query: &DetectorQuery) -> Result<Vec<String>> {
    let explain = DetectorQuery {
        sql: format!("EXPLAIN (VERBOSE, FORMAT JSON) {}", query.sql),
        plugin: None,
        native: None,
        bulk: false,
        split: None,
        ..query.clone()
    };
    let mut first = FirstRow::default();
    fetch(pool, &explain, EXPLAIN_TIMEOUT, &mut first)
        .await
        .map_err(|err| match err {
            QueryError::Failed(err) => err,
            timeout => Error::Other(timeout.to_string()),
        })?;
    let Some([Value::Text(plan)]) = first.0.as_deref() else {
        return Ok(Vec::new());
    };
    let plan: serde_json::Value =
        serde_json::from_str(plan).map_err(|e| Error::Other(e.to_string()))?;
    let mut relations = Vec::new();
    collect_relations(&plan, &mut relations);
    Ok(relations)
}

/// Every `"Schema"` and `"Relation Name"` pair in a JSON plan, at any depth.
fn collect_relations(plan: &serde_json::Value, out: &mut Vec<String>) {
    match plan {
        serde_json::Value::Object(node) => {
            if let (Some(schema), Some(name)) = (
                node.get("Schema").and_then(|s| s.as_str()),
                node.get("Relation Name").and_then(|s| s.as_str()),
            ) {
                out.push(format!(
                    "{}.{}",
                    Dialect::Postgres.quote(schema),
                    Dialect::Postgres.quote(name)
                ));
            }
            node.values().for_each(|v| collect_relations(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_relations(v, out)),
        _ => {}
    }
}

pub(super) async fn fetch<S: RowSink>(
    pool: &PgPool,
    query: &DetectorQuery,
    timeout: Duration,
    sink: &mut S,
) -> Result<(), QueryError> {
    // Many rows of trueup's own query come faster with COPY, which binds no values.
    let copying = query.bulk && query.binds.is_empty();
    let mut session = Session {
        conn: pool.acquire().await.map_err(Error::from)?,
        clean: !copying,
    };
    let run = async {
        // A read-only transaction whose settings (the timeout above all) end with it, so
        // nothing leaks into the next rule that gets this pooled connection.
        let mut transaction = session.conn.begin_with("BEGIN READ ONLY").await?;
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
        if copying {
            copy::rows(&mut transaction, query, sink).await?;
        } else {
            stream_rows::<Postgres, S>(&mut transaction, query, sink).await?;
        }
        transaction.rollback().await?;
        Ok::<(), Error>(())
    };
    let outcome = tokio::time::timeout(timeout + CANCEL_GRACE, run).await;
    // A COPY ended by the server (its last row, or an error it reported) leaves the session
    // ready for the next query; one stopped by trueup does not.
    if let Ok(Ok(()) | Err(Error::Database(sqlx::Error::Database(_)))) = &outcome {
        session.clean = true;
    }
    match outcome {
        Ok(Err(Error::Database(err))) if is_cancelled(&err) => Err(QueryError::Timeout(timeout)),
        Ok(Err(err)) => {
            // The session goes back first: the hint asks on one of the pool's.
            drop(session);
            Err(QueryError::Failed(
                schema::missing_relation(pool, err).await,
            ))
        }
        Ok(Ok(())) => Ok(()),
        Err(_elapsed) => {
            // The server did not honour statement_timeout in time: never reuse this session.
            session.clean = false;
            Err(QueryError::Timeout(timeout))
        }
    }
}

/// A pooled session that goes back to the pool only if `clean`; otherwise it is closed when
/// dropped. A `COPY` that trueup stops before its end (an error, a full sink, the run
/// cancelled and the future dropped) leaves the server sending rows: that session must
/// never serve another query.
struct Session {
    conn: sqlx::pool::PoolConnection<Postgres>,
    clean: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.clean {
            self.conn.close_on_drop();
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
        let type_name = TypeName::new(raw.type_info().name());
        let decode_error = |source| sqlx::Error::ColumnDecode {
            index: index.to_string(),
            source,
        };
        // sqlx asks for every result column in binary format.
        if raw.format() != PgValueFormat::Binary {
            return Err(decode_error(
                "a value in text format, where trueup reads PostgreSQL's binary one".into(),
            ));
        }
        let Some(kind) = Kind::of(type_name.as_str()) else {
            return Err(decode_error(
                unreadable_type(row.try_get_raw(index)?.type_info().name()).into(),
            ));
        };
        binary_value(kind, raw.as_bytes().map_err(decode_error)?).map_err(decode_error)
    }
}

/// Why a column of type `name` cannot be read.
fn unreadable_type(name: &str) -> String {
    format!("trueup cannot read type {name}; cast the column to text in the query (::text)")
}

/// The column types trueup reads, each in its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Timestamp,
    Timestamptz,
    Date,
    Bytea,
    Jsonb,
    Text,
}

impl Kind {
    /// The kind of the type sqlx names `type_name` (`INT8`, `TEXT`), if trueup reads it.
    pub(super) fn of(type_name: &str) -> Option<Kind> {
        Some(match type_name {
            "BOOL" => Kind::Bool,
            "INT2" => Kind::Int2,
            "INT4" => Kind::Int4,
            "INT8" => Kind::Int8,
            "FLOAT4" => Kind::Float4,
            "FLOAT8" => Kind::Float8,
            "NUMERIC" => Kind::Numeric,
            "TIMESTAMP" => Kind::Timestamp,
            "TIMESTAMPTZ" => Kind::Timestamptz,
            "DATE" => Kind::Date,
            "BYTEA" => Kind::Bytea,
            "JSONB" => Kind::Jsonb,
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "CITEXT" | "UNKNOWN" | "JSON" => {
                Kind::Text
            }
            _ => return None,
        })
    }
}

/// The value of `kind` whose binary form is `bytes`, as PostgreSQL writes it: the one
/// reading of results, whether they come as rows or as `COPY … (FORMAT binary)` ([`copy`]).
pub(super) fn binary_value(kind: Kind, bytes: &[u8]) -> Result<Value, sqlx::error::BoxDynError> {
    fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], sqlx::error::BoxDynError> {
        bytes
            .try_into()
            .map_err(|_| format!("a value of {} bytes where {N} were expected", bytes.len()).into())
    }
    let text = |bytes: &[u8]| -> Result<String, sqlx::error::BoxDynError> {
        Ok(std::str::from_utf8(bytes)?.to_owned())
    };
    Ok(match kind {
        Kind::Bool => Value::Bool(fixed::<1>(bytes)?[0] != 0),
        Kind::Int2 => Value::Int(i16::from_be_bytes(fixed(bytes)?).into()),
        Kind::Int4 => Value::Int(i32::from_be_bytes(fixed(bytes)?).into()),
        Kind::Int8 => Value::Int(i64::from_be_bytes(fixed(bytes)?)),
        Kind::Float4 => Value::Float(f32::from_be_bytes(fixed(bytes)?).into()),
        Kind::Float8 => Value::Float(f64::from_be_bytes(fixed(bytes)?)),
        Kind::Numeric => Value::Decimal(numeric_text(bytes)?),
        // Microseconds (days for a date) since 2000-01-01, UTC for `timestamptz`; shown as
        // PostgreSQL shows them.
        Kind::Timestamp | Kind::Timestamptz => {
            let micros = i64::from_be_bytes(fixed(bytes)?);
            let text = crate::time::postgres_timestamp(micros);
            Value::Timestamp(match kind {
                Kind::Timestamptz if micros != i64::MAX && micros != i64::MIN => text + "+00",
                _ => text,
            })
        }
        Kind::Date => Value::Timestamp(crate::time::postgres_date(i32::from_be_bytes(fixed(
            bytes,
        )?))),
        Kind::Bytea => Value::Bytes(bytes.to_vec()),
        // A `jsonb` is a version byte (1), then the text.
        Kind::Jsonb => match bytes.split_first() {
            Some((1, rest)) => Value::Text(text(rest)?),
            _ => return Err("a jsonb of an unknown version".into()),
        },
        Kind::Text => Value::Text(text(bytes)?),
    })
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
    let group = |text: &mut String, i: i64, width: usize| {
        crate::value::push_padded(text, u64::from(digit(i).unwrap_or(0)), width);
    };
    if weight < 0 {
        text.push('0');
    } else {
        group(&mut text, 0, 1);
        for i in 1..=weight {
            group(&mut text, i, 4);
        }
    }
    if scale > 0 {
        text.push('.');
        let start = text.len();
        let mut i = weight + 1;
        while text.len() - start < scale {
            group(&mut text, i, 4);
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
