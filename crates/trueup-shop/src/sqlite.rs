//! Writing a shop to a new SQLite file: the schema, the rows in multi-row `INSERT`s inside
//! one transaction, then the indexes.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;

use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Connection, Sqlite, SqliteConnection};

use crate::generate::Shop;
use crate::load::Row;
use crate::planted::Planted;
use crate::rows::{Customer, Inventory, Order, OrderItem, Payment, Product};
use crate::spec::ShopSpec;
use crate::{Error, Result};

/// The shop's tables and indexes, for SQLite. Money is `DECIMAL`, which SQLite stores as
/// REAL dollars (or INTEGER for whole dollars), as an application storing DECIMAL in
/// SQLite does. There are no foreign keys: the shop's data breaks them on purpose.
/// [`create_sqlite`] runs the `CREATE TABLE`s, loads the rows, then runs the `CREATE INDEX`es.
pub const SQLITE_SCHEMA: &str = "\
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    email TEXT,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    gtin TEXT NOT NULL,
    price DECIMAL(10,2) NOT NULL,
    stock_quantity INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE inventory (
    id INTEGER PRIMARY KEY,
    product_id INTEGER NOT NULL,
    warehouse TEXT NOT NULL,
    quantity INTEGER NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER,
    status TEXT NOT NULL,
    total_amount DECIMAL(12,2) NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE order_items (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL,
    product_id INTEGER NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price DECIMAL(10,2) NOT NULL
);
CREATE TABLE payments (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL,
    amount DECIMAL(12,2) NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX idx_order_items_order_id ON order_items (order_id);
CREATE INDEX idx_inventory_product_id ON inventory (product_id);
CREATE INDEX idx_payments_order_id ON payments (order_id);
CREATE INDEX idx_orders_customer_id ON orders (customer_id);
CREATE INDEX idx_customers_email ON customers (email);
";

/// Rows per `INSERT` statement (at most 1200 parameters, far below SQLite's limit).
const BATCH_ROWS: usize = 200;

/// Writes the shop `spec` describes to a new SQLite file at `path` and returns its planted
/// problems ([`Planted::for_spec`]).
///
/// Fails with [`Error::Exists`] if `path` exists. If writing fails, the partial file is
/// removed.
pub async fn create_sqlite(path: &Path, spec: &ShopSpec) -> Result<Planted> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| {
            if source.kind() == ErrorKind::AlreadyExists {
                Error::Exists {
                    path: path.to_owned(),
                }
            } else {
                Error::Create {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
    let shop = Shop::new(spec);
    match write(path, &shop).await {
        Ok(()) => Ok(shop.planted()),
        Err(source) => {
            // Best effort: the error that matters is the one that stopped the load.
            let _ = std::fs::remove_file(path);
            Err(Error::Database {
                path: path.to_owned(),
                source,
            })
        }
    }
}

async fn write(path: &Path, shop: &Shop) -> sqlx::Result<()> {
    // A fresh file rebuilt from the seed on failure needs no durability while loading; the
    // rollback journal stays in memory and the file keeps the default (non-WAL) mode.
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .journal_mode(SqliteJournalMode::Memory)
        .synchronous(SqliteSynchronous::Off)
        .pragma("cache_size", "-65536");
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let statements = SQLITE_SCHEMA
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let (indexes, tables): (Vec<&'static str>, Vec<&'static str>) =
        statements.partition(|s| s.starts_with("CREATE INDEX"));

    let mut tx = conn.begin().await?;
    for statement in tables {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    insert_all(&mut tx, shop.customers()).await?;
    insert_all(&mut tx, shop.products()).await?;
    insert_all(&mut tx, shop.inventory()).await?;
    insert_all(&mut tx, shop.orders()).await?;
    insert_all(&mut tx, shop.order_items()).await?;
    insert_all(&mut tx, shop.payments()).await?;
    for statement in indexes {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    conn.close().await
}

type SqliteQuery = Query<'static, Sqlite, SqliteArguments>;

/// A row type (its table and columns are those of [`Row`]) and how it binds.
trait SqliteRow: Row {
    /// Binds the row's values, in the order of `COLUMNS`.
    fn bind(self, query: SqliteQuery) -> SqliteQuery;
}

/// Inserts `rows` into their table, [`BATCH_ROWS`] per statement.
async fn insert_all<R: SqliteRow>(
    conn: &mut SqliteConnection,
    rows: impl Iterator<Item = R>,
) -> sqlx::Result<()> {
    let full: Arc<str> = insert_sql::<R>(BATCH_ROWS).into();
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    for row in rows {
        batch.push(row);
        if batch.len() == BATCH_ROWS {
            execute(conn, Arc::clone(&full), &mut batch).await?;
        }
    }
    if !batch.is_empty() {
        let rest = insert_sql::<R>(batch.len()).into();
        execute(conn, rest, &mut batch).await?;
    }
    Ok(())
}

async fn execute<R: SqliteRow>(
    conn: &mut SqliteConnection,
    sql: Arc<str>,
    batch: &mut Vec<R>,
) -> sqlx::Result<()> {
    // Only table and column names from this file and `?` placeholders: no values.
    let query = batch
        .drain(..)
        .fold(sqlx::query(AssertSqlSafe(sql)), |query, row| {
            row.bind(query)
        });
    query.execute(conn).await?;
    Ok(())
}

/// `INSERT INTO table (columns) VALUES (?, …), …` for `rows` rows.
fn insert_sql<R: SqliteRow>(rows: usize) -> String {
    let placeholders = format!("({})", vec!["?"; R::COLUMNS.len()].join(", "));
    format!(
        "INSERT INTO {} ({}) VALUES {}",
        R::TABLE,
        R::COLUMNS.join(", "),
        vec![placeholders; rows].join(", ")
    )
}

impl SqliteRow for Customer {
    fn bind(self, query: SqliteQuery) -> SqliteQuery {
        query
            .bind(self.id)
            .bind(self.email)
            .bind(self.name)
            .bind(self.created_at.to_string())
    }
}

impl SqliteRow for Product {
    fn bind(self, query: SqliteQuery) -> SqliteQuery {
        query
            .bind(self.id)
            .bind(self.name)
            .bind(self.gtin)
            .bind(self.price.dollars())
            .bind(self.stock_quantity)
            .bind(self.created_at.to_string())
    }
}

impl SqliteRow for Inventory {
    fn bind(self, query: SqliteQuery) -> SqliteQuery {
        query
            .bind(self.id)
            .bind(self.product_id)
            .bind(self.warehouse)
            .bind(self.quantity)
    }
}

impl SqliteRow for Order {
    fn bind(self, query: SqliteQuery) -> SqliteQuery {
        query
            .bind(self.id)
            .bind(self.customer_id)
            .bind(self.status.as_str())
            .bind(self.total_amount.dollars())
            .bind(self.created_at.to_string())
    }
}

impl SqliteRow for OrderItem {
    fn bind(self, query: SqliteQuery) -> SqliteQuery {
        query
            .bind(self.id)
            .bind(self.order_id)
            .bind(self.product_id)
            .bind(self.quantity)
            .bind(self.unit_price.dollars())
    }
}

impl SqliteRow for Payment {
    fn bind(self, query: SqliteQuery) -> SqliteQuery {
        query
            .bind(self.id)
            .bind(self.order_id)
            .bind(self.amount.dollars())
            .bind(self.status.as_str())
            .bind(self.created_at.to_string())
    }
}
