//! Loading a shop into a PostgreSQL database: the tables, the rows with `COPY`, then the
//! primary keys, the indexes and `ANALYZE`.
//!
//! The rows are generated on blocking threads, one per table being loaded, into chunks of
//! `COPY` text ([`crate::load`]). Two connections load two tables at a time (biggest
//! first), then build the keys and indexes two at a time.

use std::sync::Arc;

use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::generate::Shop;
use crate::load::{self, Format, TABLES, Table, Value, redacted};
use crate::planted::Planted;
use crate::spec::ShopSpec;
use crate::{Error, Result};

/// The shop's tables, for PostgreSQL: the columns of [`SQLITE_SCHEMA`](crate::SQLITE_SCHEMA)
/// with exact money (`NUMERIC`) and `timestamp`s. There are no foreign keys: the shop's
/// data breaks them on purpose. [`create_postgres`] creates these tables, loads them, then
/// runs [`POSTGRES_INDEXES`].
pub const POSTGRES_SCHEMA: &str = "\
CREATE TABLE customers (
    id BIGINT NOT NULL,
    email TEXT,
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE products (
    id BIGINT NOT NULL,
    name TEXT NOT NULL,
    gtin TEXT NOT NULL,
    price NUMERIC(10,2) NOT NULL,
    stock_quantity BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE inventory (
    id BIGINT NOT NULL,
    product_id BIGINT NOT NULL,
    warehouse TEXT NOT NULL,
    quantity BIGINT NOT NULL
);
CREATE TABLE orders (
    id BIGINT NOT NULL,
    customer_id BIGINT,
    status TEXT NOT NULL,
    total_amount NUMERIC(12,2) NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE order_items (
    id BIGINT NOT NULL,
    order_id BIGINT NOT NULL,
    product_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    unit_price NUMERIC(10,2) NOT NULL
);
CREATE TABLE payments (
    id BIGINT NOT NULL,
    order_id BIGINT NOT NULL,
    amount NUMERIC(12,2) NOT NULL,
    status TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
";

/// The primary keys and the indexes of SQLite's schema, built after the rows are loaded,
/// biggest first.
pub const POSTGRES_INDEXES: &[&str] = &[
    "ALTER TABLE order_items ADD PRIMARY KEY (id)",
    "CREATE INDEX idx_order_items_order_id ON order_items (order_id)",
    "ALTER TABLE orders ADD PRIMARY KEY (id)",
    "CREATE INDEX idx_orders_customer_id ON orders (customer_id)",
    "ALTER TABLE inventory ADD PRIMARY KEY (id)",
    "CREATE INDEX idx_inventory_product_id ON inventory (product_id)",
    "ALTER TABLE payments ADD PRIMARY KEY (id)",
    "CREATE INDEX idx_payments_order_id ON payments (order_id)",
    "ALTER TABLE products ADD PRIMARY KEY (id)",
    "ALTER TABLE customers ADD PRIMARY KEY (id)",
    "CREATE INDEX idx_customers_email ON customers (email)",
];

/// `maintenance_work_mem` for the index builds, if the server's is lower.
const INDEX_MEMORY_KB: i64 = 256 * 1024;

/// Loads the shop `spec` describes into the database at `url` (a `postgres://` URL) and
/// returns its planted problems ([`Planted::for_spec`]).
///
/// The tables are created in the connection's current schema. Fails with
/// [`Error::TablesExist`], changing nothing, if any of them exists. If loading fails
/// afterwards, the tables are dropped again (best effort).
pub async fn create_postgres(url: &str, spec: &ShopSpec) -> Result<Planted> {
    let database = |source| Error::Postgres {
        url: redacted(url),
        source,
    };
    let mut conn = PgConnection::connect(url).await.map_err(database)?;
    let names: Vec<&str> = TABLES.iter().map(|t| t.name()).collect();
    let mut existing: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema() AND c.relname = ANY($1)",
    )
    .bind(names.as_slice())
    .fetch_all(&mut conn)
    .await
    .map_err(database)?;
    if !existing.is_empty() {
        existing.sort_unstable();
        return Err(Error::TablesExist {
            url: redacted(url),
            tables: existing,
        });
    }
    // All six at once: a table made meanwhile by someone else fails the load here, with
    // nothing created.
    sqlx::raw_sql(POSTGRES_SCHEMA)
        .execute(&mut conn)
        .await
        .map_err(database)?;

    let shop = Arc::new(Shop::new(spec));
    match load::load_all(url, conn, &shop).await {
        Ok(()) => Ok(shop.planted()),
        Err(source) => {
            // Best effort: the error that matters is the one that stopped the load.
            if let Ok(mut conn) = PgConnection::connect(url).await {
                let drop = format!("DROP TABLE IF EXISTS {}", load::table_list());
                let _ = sqlx::raw_sql(AssertSqlSafe(drop)).execute(&mut conn).await;
                let _ = conn.close().await;
            }
            Err(database(source))
        }
    }
}

impl load::Server for PgConnection {
    const INDEXES: &'static [&'static str] = POSTGRES_INDEXES;
    const ANALYZE: &'static str = "ANALYZE";

    fn load_table(
        &mut self,
        shop: &Arc<Shop>,
        table: Table,
    ) -> impl Future<Output = sqlx::Result<()>> + Send {
        copy_table(self, shop, table)
    }

    async fn build_index(&mut self, statement: &'static str) -> sqlx::Result<()> {
        raise_index_memory(self).await?;
        sqlx::raw_sql(statement).execute(self).await.map(drop)
    }
}

/// Index builds sort whole columns: give them memory unless the server already does (asked
/// before each build: one cheap query).
async fn raise_index_memory(conn: &mut PgConnection) -> sqlx::Result<()> {
    let kb: i64 = sqlx::query_scalar(
        "SELECT setting::bigint FROM pg_settings WHERE name = 'maintenance_work_mem'",
    )
    .fetch_one(&mut *conn)
    .await?;
    if kb < INDEX_MEMORY_KB {
        let set = format!("SET maintenance_work_mem = '{INDEX_MEMORY_KB}kB'");
        sqlx::raw_sql(AssertSqlSafe(set))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Streams one table's rows into it with `COPY … FREEZE`.
///
/// The table is truncated in the same transaction: then `COPY` may write the rows frozen
/// (no hint-bit rewrite or anti-wraparound vacuum later) and, where `wal_level` is
/// `minimal`, without WAL.
async fn copy_table(conn: &mut PgConnection, shop: &Arc<Shop>, table: Table) -> sqlx::Result<()> {
    let mut chunks = table.spawn(shop, CopyText);

    let mut tx = conn.begin().await?;
    let truncate = format!("TRUNCATE {}", table.name());
    sqlx::raw_sql(AssertSqlSafe(truncate))
        .execute(&mut *tx)
        .await?;
    let statement = format!(
        "COPY {} ({}) FROM STDIN (FORMAT text, FREEZE)",
        table.name(),
        table.columns().join(", ")
    );
    let mut copy = tx.copy_in_raw(&statement).await?;
    let sent = async {
        while let Some(chunk) = chunks.next().await {
            copy.send(chunk.into_bytes()).await?;
        }
        Ok(())
    }
    .await;
    let produced = match chunks.finish(sent).await {
        Ok(produced) => produced,
        Err(err) => {
            copy.abort("the load failed").await?;
            return Err(err);
        }
    };
    let copied = copy.finish().await?;
    load::check_stored(table, copied, produced)?;
    tx.commit().await
}

/// `COPY`'s text format: values separated by tabs, a row a line.
struct CopyText;

impl Format for CopyText {
    fn start(&self, _table: &str, _columns: &[&str], _out: &mut String) {}

    fn row(&self, values: &[Value<'_>], _first: bool, out: &mut String) {
        for (i, &value) in values.iter().enumerate() {
            if i > 0 {
                out.push('\t');
            }
            match value {
                Value::Text(Some(value)) => text(out, value),
                Value::Text(None) => out.push_str("\\N"),
                value => load::plain(value, out),
            }
        }
        out.push('\n');
    }
}

/// Appends `text` escaped for `COPY`'s text format.
fn text(out: &mut String, text: &str) {
    if !text.contains(['\\', '\t', '\n', '\r']) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Row as _;
    use crate::rows::{Cents, Customer, Product};
    use crate::time::Timestamp;

    #[test]
    fn rows_read_as_copy_text() {
        let mut out = String::new();
        Customer {
            id: 7,
            email: None,
            name: "A\tB\\C\nD".into(),
            created_at: Timestamp::from_unix_seconds(0),
        }
        .write(&CopyText, true, &mut out);
        Product {
            id: 3,
            name: "Product 3".into(),
            gtin: "4012345678901".into(),
            price: Cents(123_456),
            stock_quantity: 4,
            created_at: Timestamp::from_unix_seconds(0),
        }
        .write(&CopyText, true, &mut out);
        load::sample_order().write(&CopyText, true, &mut out);
        assert_eq!(
            out,
            "7\t\\N\tA\\tB\\\\C\\nD\t1970-01-01 00:00:00\n\
             3\tProduct 3\t4012345678901\t1234.56\t4\t1970-01-01 00:00:00\n\
             1\t2\tCOMPLETED\t12.05\t1970-01-01 00:01:00\n"
        );
    }

    #[test]
    fn every_table_is_loaded_once_with_its_key_and_indexes() {
        for name in TABLES.map(Table::name) {
            assert!(POSTGRES_SCHEMA.contains(&format!("CREATE TABLE {name} (")));
            assert!(
                POSTGRES_INDEXES
                    .contains(&format!("ALTER TABLE {name} ADD PRIMARY KEY (id)").as_str())
            );
        }
        let sqlite_indexes = crate::SQLITE_SCHEMA.matches("CREATE INDEX").count();
        let indexes = POSTGRES_INDEXES
            .iter()
            .filter(|s| s.starts_with("CREATE INDEX"));
        assert_eq!(indexes.count(), sqlite_indexes);
        for index in POSTGRES_INDEXES
            .iter()
            .filter(|s| s.starts_with("CREATE INDEX"))
        {
            assert!(crate::SQLITE_SCHEMA.contains(index), "{index}");
        }
    }
}
