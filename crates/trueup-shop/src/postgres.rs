//! Loading a shop into a PostgreSQL database: the tables, the rows with `COPY`, then the
//! primary keys, the indexes and `ANALYZE`.
//!
//! The rows are generated on blocking threads, one per table being loaded, into chunks of
//! about [`CHUNK_BYTES`] of `COPY` text, which a bounded channel hands to the connection:
//! memory stays at a few chunks per table whatever the scale. Two connections load two
//! tables at a time (biggest first), then build the keys and indexes two at a time.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::try_join_all;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tokio::sync::mpsc;

use crate::generate::Shop;
use crate::planted::Planted;
use crate::rows::{Customer, Inventory, Order, OrderItem, Payment, Product};
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

/// The six tables, biggest first.
const TABLES: [Table; 6] = [
    Table::OrderItems,
    Table::Orders,
    Table::Inventory,
    Table::Payments,
    Table::Products,
    Table::Customers,
];

/// Connections that load tables (and build indexes) side by side.
const CONNECTIONS: usize = 2;

/// Bytes of `COPY` text per message.
const CHUNK_BYTES: usize = 1 << 20;

/// Chunks generated ahead of the connection, per table.
const CHUNKS_AHEAD: usize = 4;

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
    match load(url, conn, &shop).await {
        Ok(()) => Ok(shop.planted()),
        Err(source) => {
            // Best effort: the error that matters is the one that stopped the load.
            if let Ok(mut conn) = PgConnection::connect(url).await {
                let drop = format!("DROP TABLE IF EXISTS {}", names.join(", "));
                let _ = sqlx::raw_sql(AssertSqlSafe(drop)).execute(&mut conn).await;
                let _ = conn.close().await;
            }
            Err(database(source))
        }
    }
}

/// Loads the rows, builds the indexes and analyzes, on `conn` and more connections.
async fn load(url: &str, conn: PgConnection, shop: &Arc<Shop>) -> sqlx::Result<()> {
    let mut conns = vec![conn];
    for _ in 1..CONNECTIONS {
        conns.push(PgConnection::connect(url).await?);
    }

    let tables = Mutex::new(VecDeque::from(TABLES));
    let next_table = || {
        tables
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    };
    try_join_all(conns.iter_mut().map(|conn| async {
        while let Some(table) = next_table() {
            copy_table(conn, shop, table).await?;
        }
        Ok::<(), sqlx::Error>(())
    }))
    .await?;

    let indexes = Mutex::new(POSTGRES_INDEXES.iter().copied().collect::<VecDeque<_>>());
    let next_index = || {
        indexes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    };
    try_join_all(conns.iter_mut().map(|conn| async {
        raise_index_memory(conn).await?;
        while let Some(statement) = next_index() {
            sqlx::raw_sql(statement).execute(&mut *conn).await?;
        }
        Ok::<(), sqlx::Error>(())
    }))
    .await?;

    let mut conns = conns.into_iter();
    if let Some(mut conn) = conns.next() {
        let names: Vec<&str> = TABLES.iter().map(|t| t.name()).collect();
        let analyze = format!("ANALYZE {}", names.join(", "));
        sqlx::raw_sql(AssertSqlSafe(analyze))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
    }
    for conn in conns {
        conn.close().await?;
    }
    Ok(())
}

/// Index builds sort whole columns: give them memory unless the server already does.
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
    let (sender, mut receiver) = mpsc::channel::<Vec<u8>>(CHUNKS_AHEAD);
    let producer = {
        let shop = Arc::clone(shop);
        tokio::task::spawn_blocking(move || table.produce(&shop, &sender))
    };

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
    let mut failed = None;
    while let Some(chunk) = receiver.recv().await {
        if let Err(err) = copy.send(chunk).await {
            failed = Some(err);
            break;
        }
    }
    // Dropping the receiver stops the producer if the connection failed.
    drop(receiver);
    let produced = producer
        .await
        .map_err(|err| sqlx::Error::Protocol(format!("generating {}: {err}", table.name())))?;
    if let Some(err) = failed {
        copy.abort("the load failed").await?;
        return Err(err);
    }
    let copied = copy.finish().await?;
    if copied != produced {
        return Err(sqlx::Error::Protocol(format!(
            "{}: COPY stored {copied} rows of {produced}",
            table.name()
        )));
    }
    tx.commit().await
}

#[derive(Debug, Clone, Copy)]
enum Table {
    Customers,
    Products,
    Inventory,
    Orders,
    OrderItems,
    Payments,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Self::Customers => Customer::TABLE,
            Self::Products => Product::TABLE,
            Self::Inventory => Inventory::TABLE,
            Self::Orders => Order::TABLE,
            Self::OrderItems => OrderItem::TABLE,
            Self::Payments => Payment::TABLE,
        }
    }

    fn columns(self) -> &'static [&'static str] {
        match self {
            Self::Customers => Customer::COLUMNS,
            Self::Products => Product::COLUMNS,
            Self::Inventory => Inventory::COLUMNS,
            Self::Orders => Order::COLUMNS,
            Self::OrderItems => OrderItem::COLUMNS,
            Self::Payments => Payment::COLUMNS,
        }
    }

    /// Sends the table's rows as `COPY` text chunks; returns the number of rows (stops
    /// early if the receiver is gone).
    fn produce(self, shop: &Shop, sender: &mpsc::Sender<Vec<u8>>) -> u64 {
        match self {
            Self::Customers => produce(shop.customers(), sender),
            Self::Products => produce(shop.products(), sender),
            Self::Inventory => produce(shop.inventory(), sender),
            Self::Orders => produce(shop.orders(), sender),
            Self::OrderItems => produce(shop.order_items(), sender),
            Self::Payments => produce(shop.payments(), sender),
        }
    }
}

fn produce<R: CopyRow>(rows: impl Iterator<Item = R>, sender: &mpsc::Sender<Vec<u8>>) -> u64 {
    let mut count = 0;
    let mut chunk = String::with_capacity(CHUNK_BYTES + 4096);
    for row in rows {
        row.write(&mut chunk);
        count += 1;
        if chunk.len() >= CHUNK_BYTES {
            let full = std::mem::replace(&mut chunk, String::with_capacity(CHUNK_BYTES + 4096));
            if sender.blocking_send(full.into_bytes()).is_err() {
                return count;
            }
        }
    }
    if !chunk.is_empty() {
        let _ = sender.blocking_send(chunk.into_bytes());
    }
    count
}

/// A row type and how it reads in `COPY`'s text format.
trait CopyRow {
    const TABLE: &'static str;
    const COLUMNS: &'static [&'static str];
    /// Appends the row, in the order of `COLUMNS`, with its newline.
    fn write(&self, out: &mut String);
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

// `write!` into a `String` cannot fail.
macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

impl CopyRow for Customer {
    const TABLE: &'static str = "customers";
    const COLUMNS: &'static [&'static str] = &["id", "email", "name", "created_at"];
    fn write(&self, out: &mut String) {
        let _ = write!(out, "{}\t", self.id);
        match &self.email {
            Some(email) => text(out, email),
            None => out.push_str("\\N"),
        }
        out.push('\t');
        text(out, &self.name);
        line!(out, "\t{}", self.created_at);
    }
}

impl CopyRow for Product {
    const TABLE: &'static str = "products";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "name",
        "gtin",
        "price",
        "stock_quantity",
        "created_at",
    ];
    fn write(&self, out: &mut String) {
        let _ = write!(out, "{}\t", self.id);
        text(out, &self.name);
        out.push('\t');
        text(out, &self.gtin);
        line!(
            out,
            "\t{}\t{}\t{}",
            self.price,
            self.stock_quantity,
            self.created_at
        );
    }
}

impl CopyRow for Inventory {
    const TABLE: &'static str = "inventory";
    const COLUMNS: &'static [&'static str] = &["id", "product_id", "warehouse", "quantity"];
    fn write(&self, out: &mut String) {
        let _ = write!(out, "{}\t{}\t", self.id, self.product_id);
        text(out, &self.warehouse);
        line!(out, "\t{}", self.quantity);
    }
}

impl CopyRow for Order {
    const TABLE: &'static str = "orders";
    const COLUMNS: &'static [&'static str] =
        &["id", "customer_id", "status", "total_amount", "created_at"];
    fn write(&self, out: &mut String) {
        line!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            self.id,
            self.customer_id,
            self.status.as_str(),
            self.total_amount,
            self.created_at
        );
    }
}

impl CopyRow for OrderItem {
    const TABLE: &'static str = "order_items";
    const COLUMNS: &'static [&'static str] =
        &["id", "order_id", "product_id", "quantity", "unit_price"];
    fn write(&self, out: &mut String) {
        line!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            self.id,
            self.order_id,
            self.product_id,
            self.quantity,
            self.unit_price
        );
    }
}

impl CopyRow for Payment {
    const TABLE: &'static str = "payments";
    const COLUMNS: &'static [&'static str] = &["id", "order_id", "amount", "status", "created_at"];
    fn write(&self, out: &mut String) {
        line!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            self.id,
            self.order_id,
            self.amount,
            self.status.as_str(),
            self.created_at
        );
    }
}

/// `url` without its password, for messages.
pub(crate) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::{Cents, OrderStatus};
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
        .write(&mut out);
        Product {
            id: 3,
            name: "Product 3".into(),
            gtin: "4012345678901".into(),
            price: Cents(123_456),
            stock_quantity: 4,
            created_at: Timestamp::from_unix_seconds(0),
        }
        .write(&mut out);
        Order {
            id: 1,
            customer_id: 2,
            status: OrderStatus::Completed,
            total_amount: Cents(1205),
            created_at: Timestamp::from_unix_seconds(60),
        }
        .write(&mut out);
        assert_eq!(
            out,
            "7\t\\N\tA\\tB\\\\C\\nD\t1970-01-01 00:00:00\n\
             3\tProduct 3\t4012345678901\t1234.56\t4\t1970-01-01 00:00:00\n\
             1\t2\tCOMPLETED\t12.05\t1970-01-01 00:01:00\n"
        );
    }

    #[test]
    fn every_table_is_loaded_once_with_its_key_and_indexes() {
        let mut names: Vec<&str> = TABLES.iter().map(|t| t.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 6);
        for name in names {
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

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redacted("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redacted("postgres://h/db"), "postgres://h/db");
        assert_eq!(redacted("postgres://u@h/db"), "postgres://u@h/db");
    }
}
