//! PostgreSQL schema facts: a relation's columns and their types, found as the session's
//! `search_path` finds them, and where else a table that is not found is.

use sqlx::PgPool;

use super::TimestampColumn;
use crate::dialect::Dialect;
use crate::{Error, Result};

/// A condition on `information_schema`'s `table_schema` and `table_name`: the relation the
/// quoted name `$1` stands for, found as the server finds it (the session's `search_path`
/// for an unqualified name, not only its first schema).
const RESOLVED: &str = "(table_schema::text, table_name::text) = \
     (SELECT n.nspname::text, c.relname::text FROM pg_class c \
      JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1))";

pub(in crate::source) async fn columns(pool: &PgPool, table: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT column_name::text FROM information_schema.columns WHERE {RESOLVED} \
         ORDER BY ordinal_position"
    )))
    .bind(Dialect::Postgres.quote(table))
    .fetch_all(pool)
    .await?)
}

/// What to say about an unqualified `table` the session does not find, when tables of
/// that name (that the role can see) are in other schemas: qualify it, or put the schema
/// on the source's `search_path`. `None` for a qualified name or none elsewhere.
pub(in crate::source) async fn elsewhere(pool: &PgPool, table: &str) -> Result<Option<String>> {
    if table.contains('.') {
        return Ok(None);
    }
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT table_schema::text FROM information_schema.tables \
         WHERE table_name = $1 ORDER BY 1",
    )
    .bind(table)
    .fetch_all(pool)
    .await?;
    let Some(first) = schemas.first() else {
        return Ok(None);
    };
    let names: Vec<String> = schemas.iter().map(|s| format!("`{s}.{table}`")).collect();
    let found = match names.as_slice() {
        [one] => format!("there is {one}"),
        [init @ .., last] => format!("there are {} and {last}", init.join(", ")),
        [] => unreachable!("one schema at least"),
    };
    Ok(Some(format!(
        "{found} in another schema: write the schema before the table (`{first}.{table}`), \
         or put `{first}` on the source's search_path (add \
         `options=-csearch_path%3D{first}` to its URL's parameters)"
    )))
}

/// A query that failed because a relation it names does not exist (42P01), with a hint
/// when tables of that name are in other schemas; other errors as they are. `relation
/// "accounts" does not exist` names the relation as written.
pub(super) async fn missing_relation(pool: &PgPool, error: Error) -> Error {
    let Error::Database(sqlx::Error::Database(db)) = &error else {
        return error;
    };
    if db.code().as_deref() != Some("42P01") {
        return error;
    }
    let name = db.message().split('"').nth(1).map(str::to_owned);
    match name {
        Some(name) => match elsewhere(pool, &name).await {
            Ok(Some(hint)) => Error::Hinted {
                error: Box::new(error),
                hint,
            },
            _ => error,
        },
        None => error,
    }
}

/// The types freshness compares with `now()`, as `information_schema` names them.
const TIMESTAMP_TYPES: [&str; 3] = [
    "timestamp without time zone",
    "timestamp with time zone",
    "date",
];

pub(in crate::source) async fn timestamp_problem(
    pool: &PgPool,
    column: &TimestampColumn,
) -> Result<Option<String>> {
    // `data_type` is a domain's base type; user-defined types are named by `udt_name`.
    let found: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT CASE WHEN data_type = 'USER-DEFINED' THEN udt_name::text ELSE data_type::text END \
         FROM information_schema.columns WHERE {RESOLVED} AND column_name = $2"
    )))
    .bind(Dialect::Postgres.quote(&column.table))
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
