//! The query loop every backend shares: prepare, bind, stream rows into a [`RowSink`].

use futures_util::TryStreamExt;
use sqlx::{Column, Database, Executor, Row, Statement};

use crate::compile::DetectorQuery;
use crate::value::Value;
use crate::{Error, Result};

/// Receives a query's result: its column names once, then each row in turn. Rows are
/// handed over one at a time so that nothing accumulates between database and output.
pub trait RowSink: Send {
    fn columns(&mut self, names: Vec<String>) -> Result<()>;
    fn row(&mut self, values: Vec<Value>) -> impl Future<Output = Result<()>> + Send;

    /// A row as PostgreSQL's `COPY` sent it, its values not read yet: by default read
    /// whole and handed to [`RowSink::row`]. A sink that compares rows may keep it as it
    /// is and read only the values it needs.
    fn copy_row(&mut self, row: super::CopyRow) -> impl Future<Output = Result<()>> + Send {
        async move { self.row(row.values()?).await }
    }
}

/// Keeps the first row of a result, for queries of one row.
#[derive(Debug, Default)]
pub struct FirstRow(pub Option<Vec<Value>>);

impl RowSink for FirstRow {
    fn columns(&mut self, _: Vec<String>) -> Result<()> {
        Ok(())
    }

    async fn row(&mut self, values: Vec<Value>) -> Result<()> {
        self.0.get_or_insert(values);
        Ok(())
    }
}

/// A column type's name copied to the stack, so that reading a value allocates nothing for
/// it (the name borrows from the value, which decoding consumes). A name of more than 32
/// bytes reads as empty: no type trueup reads has one, and the caller's error for an
/// unknown type looks the name up again.
pub(super) struct TypeName {
    bytes: [u8; 32],
    len: usize,
}

impl TypeName {
    pub(super) fn new(name: &str) -> TypeName {
        let mut bytes = [0; 32];
        let len = if name.len() <= bytes.len() {
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            name.len()
        } else {
            0
        };
        TypeName { bytes, len }
    }

    pub(super) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

/// What the shared loop needs to know about a backend.
pub(super) trait Backend: Binding {
    /// Reads column `index` of `row` as a [`Value`].
    fn value(row: &Self::Row, index: usize) -> Result<Value, sqlx::Error>;

    /// Whether the database's placeholders are `?` in order (MySQL), so that trueup's
    /// numbered ones are rewritten before a query is prepared ([`for_backend`]).
    fn positional_binds() -> bool {
        false
    }
}

/// `query` as `DB` takes it: with `?` placeholders and the values in their order where
/// its placeholders are positional ([`crate::sql_text::positional`]).
fn for_backend<DB: Backend>(query: &DetectorQuery) -> Result<std::borrow::Cow<'_, DetectorQuery>> {
    if !DB::positional_binds() || query.binds.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(query));
    }
    let (sql, binds) =
        crate::sql_text::positional(&query.sql, &query.binds).map_err(Error::Other)?;
    Ok(std::borrow::Cow::Owned(DetectorQuery {
        sql,
        binds,
        ..query.clone()
    }))
}

/// How values are bound, the same on every backend (a macro because sqlx's encoding traits
/// are per database type).
pub(super) trait Binding: Database {
    /// Appends `value` to the query's bound arguments.
    fn bind(arguments: &mut Self::Arguments, value: &Value) -> Result<(), sqlx::Error>;
    /// The database type `value` is bound as, declared when the statement is prepared so
    /// that the database does not guess another one from the context.
    fn type_of(value: &Value) -> Self::TypeInfo;
}

/// Implements [`Binding`] for a database type.
macro_rules! bind_values_as_usual {
    ($db:ty) => {
        impl super::fetch::Binding for $db {
            fn bind(arguments: &mut Self::Arguments, value: &Value) -> Result<(), sqlx::Error> {
                use sqlx::Arguments;
                match value {
                    Value::Null => arguments.add(None::<String>),
                    Value::Bool(b) => arguments.add(*b),
                    Value::Int(i) => arguments.add(*i),
                    Value::Float(x) => arguments.add(*x),
                    Value::Decimal(s) | Value::Text(s) | Value::Timestamp(s) => {
                        arguments.add(s.clone())
                    }
                    Value::Bytes(b) => arguments.add(b.clone()),
                }
                .map_err(sqlx::Error::Encode)
            }

            fn type_of(value: &Value) -> Self::TypeInfo {
                use sqlx::Type;
                match value {
                    Value::Null | Value::Decimal(_) | Value::Text(_) | Value::Timestamp(_) => {
                        <String as Type<$db>>::type_info()
                    }
                    Value::Bool(_) => <bool as Type<$db>>::type_info(),
                    Value::Int(_) => <i64 as Type<$db>>::type_info(),
                    Value::Float(_) => <f64 as Type<$db>>::type_info(),
                    Value::Bytes(_) => <Vec<u8> as Type<$db>>::type_info(),
                }
            }
        }
    };
}
pub(super) use bind_values_as_usual;

/// Column names of the query's result, without running it.
pub(super) async fn result_columns<DB>(
    conn: &mut DB::Connection,
    query: &DetectorQuery,
) -> Result<Vec<String>>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let query = for_backend::<DB>(query)?;
    let statement = prepare::<DB>(conn, &query).await?;
    Ok(statement
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect())
}

/// The values of the first row `sql` returns, if any.
pub(super) async fn first_row<DB>(
    conn: &mut DB::Connection,
    sql: &str,
) -> Result<Option<Vec<Value>>>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    let row = sqlx::query::<DB>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_optional(conn)
        .await?;
    row.map(|row| {
        (0..row.len())
            .map(|i| DB::value(&row, i))
            .collect::<Result<Vec<_>, _>>()
    })
    .transpose()
    .map_err(Error::from)
}

/// Prepares `query`, declaring the types of its bound values.
async fn prepare<DB>(conn: &mut DB::Connection, query: &DetectorQuery) -> Result<DB::Statement>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let types: Vec<DB::TypeInfo> = query.binds.iter().map(DB::type_of).collect();
    let sql = sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(query.sql.clone()));
    Ok(conn.prepare_with(sql, &types).await?)
}

/// The names of a prepared statement's result columns.
pub(super) fn column_names<S: Statement>(statement: &S) -> Vec<String> {
    statement
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect()
}

/// Prepares `query` on `conn`, then streams its rows into `sink`.
pub(super) async fn stream_rows<DB, S>(
    conn: &mut DB::Connection,
    query: &DetectorQuery,
    sink: &mut S,
) -> Result<()>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    S: RowSink,
{
    let query = for_backend::<DB>(query)?;
    let statement = prepare::<DB>(&mut *conn, &query).await?;
    let width = statement.columns().len();
    sink.columns(column_names(&statement))?;
    let mut arguments = DB::Arguments::default();
    for value in &query.binds {
        DB::bind(&mut arguments, value)?;
    }
    let mut rows = statement.query_with(arguments).fetch(&mut *conn);
    while let Some(row) = rows.try_next().await.map_err(Error::Database)? {
        // A row of another width comes from another statement than the one prepared (SQLite
        // runs what follows a `;`): never index past the shape, fail the rule.
        if row.len() != width {
            return Err(Error::Mismatch(format!(
                "the query returned a row of {} column(s) where its result has {width}: is it \
                 more than one statement?",
                row.len()
            )));
        }
        let values = (0..row.len())
            .map(|i| DB::value(&row, i))
            .collect::<Result<Vec<_>, _>>()?;
        sink.row(values).await?;
    }
    Ok(())
}
