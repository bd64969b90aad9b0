//! Loading a shop into a MySQL (or MariaDB) database: the tables with their primary keys,
//! the rows in multi-row `INSERT`s, then the indexes and `ANALYZE TABLE`.
//!
//! The rows are generated on blocking threads, one per table being loaded, into `INSERT`
//! statements of about [`CHUNK_BYTES`](crate::load::CHUNK_BYTES) ([`crate::load`]), far
//! below the server's `max_allowed_packet`. Two connections load two tables at a time
//! (biggest first), each in one transaction without unique or foreign-key checks, then build
//! the indexes two at a time. The primary keys come with the tables: InnoDB stores a table
//! in its key's order, and the rows arrive in that order.

use std::fmt::Write as _;
use std::sync::Arc;

use sqlx::{AssertSqlSafe, Connection, MySqlConnection};

use crate::generate::Shop;
use crate::load::{self, Format, TABLES, Table, Value, redacted};
use crate::planted::Planted;
use crate::spec::ShopSpec;
use crate::{Error, Result};

/// The shop's tables, for MySQL and MariaDB: the columns of
/// [`POSTGRES_SCHEMA`](crate::POSTGRES_SCHEMA) with the same exact money (`DECIMAL`), moments
/// as `DATETIME(6)` and text as `VARCHAR(255)` (indexable), compared byte by byte
/// (`utf8mb4_bin`) as SQLite and PostgreSQL compare it. The primary keys are part of the
/// tables; there are no foreign keys: the shop's data breaks them on purpose.
/// [`create_mysql`] creates these tables, loads them, then runs [`MYSQL_INDEXES`].
pub const MYSQL_SCHEMA: &str = "\
CREATE TABLE customers (
    id BIGINT NOT NULL PRIMARY KEY,
    email VARCHAR(255),
    name VARCHAR(255) NOT NULL,
    created_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE products (
    id BIGINT NOT NULL PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    gtin VARCHAR(255) NOT NULL,
    price DECIMAL(10,2) NOT NULL,
    stock_quantity BIGINT NOT NULL,
    created_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE inventory (
    id BIGINT NOT NULL PRIMARY KEY,
    product_id BIGINT NOT NULL,
    warehouse VARCHAR(255) NOT NULL,
    quantity BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE orders (
    id BIGINT NOT NULL PRIMARY KEY,
    customer_id BIGINT,
    status VARCHAR(255) NOT NULL,
    total_amount DECIMAL(12,2) NOT NULL,
    created_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE order_items (
    id BIGINT NOT NULL PRIMARY KEY,
    order_id BIGINT NOT NULL,
    product_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    unit_price DECIMAL(10,2) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE payments (
    id BIGINT NOT NULL PRIMARY KEY,
    order_id BIGINT NOT NULL,
    amount DECIMAL(12,2) NOT NULL,
    status VARCHAR(255) NOT NULL,
    created_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
";

/// The indexes of [`POSTGRES_INDEXES`](crate::POSTGRES_INDEXES) (the primary keys are in
/// [`MYSQL_SCHEMA`]), built after the rows are loaded, biggest table first.
pub const MYSQL_INDEXES: &[&str] = &[
    "CREATE INDEX idx_order_items_order_id ON order_items (order_id)",
    "CREATE INDEX idx_orders_customer_id ON orders (customer_id)",
    "CREATE INDEX idx_inventory_product_id ON inventory (product_id)",
    "CREATE INDEX idx_payments_order_id ON payments (order_id)",
    "CREATE INDEX idx_customers_email ON customers (email)",
];

/// Loads the shop `spec` describes into the database at `url` (a `mysql://` URL naming a
/// database) and returns its planted problems ([`Planted::for_spec`]).
///
/// Fails with [`Error::TablesExist`], changing nothing, if any of the tables exists in
/// that database. If loading fails afterwards, the tables it created are dropped again
/// (best effort).
pub async fn create_mysql(url: &str, spec: &ShopSpec) -> Result<Planted> {
    let database = |source| Error::Mysql {
        url: redacted(url),
        source,
    };
    let mut conn = MySqlConnection::connect(url).await.map_err(database)?;
    let mut existing = existing_tables(&mut conn).await.map_err(database)?;
    if !existing.is_empty() {
        existing.sort_unstable();
        return Err(Error::TablesExist {
            url: redacted(url),
            tables: existing,
        });
    }

    let shop = Arc::new(Shop::new(spec));
    let mut created = Vec::new();
    let mut result = create_tables(&mut conn, &mut created).await;
    if result.is_ok() {
        result = load::load_all(url, conn, &shop).await;
    }
    match result {
        Ok(()) => Ok(shop.planted()),
        Err(source) => {
            // Best effort: the error that matters is the one that stopped the load. DDL
            // commits at once in MySQL, so only the tables made here are dropped.
            if !created.is_empty()
                && let Ok(mut conn) = MySqlConnection::connect(url).await
            {
                let drop = format!("DROP TABLE IF EXISTS {}", created.join(", "));
                let _ = sqlx::raw_sql(AssertSqlSafe(drop)).execute(&mut conn).await;
                let _ = conn.close().await;
            }
            Err(database(source))
        }
    }
}

/// Those of the shop's tables that exist in the connection's database.
async fn existing_tables(conn: &mut MySqlConnection) -> sqlx::Result<Vec<String>> {
    let placeholders = vec!["?"; TABLES.len()].join(", ");
    let sql = format!(
        "SELECT CAST(table_name AS CHAR) FROM information_schema.tables
         WHERE table_schema = DATABASE() AND table_name IN ({placeholders})"
    );
    TABLES
        .iter()
        .fold(sqlx::query_scalar(AssertSqlSafe(sql)), |query, table| {
            query.bind(table.name())
        })
        .fetch_all(conn)
        .await
}

/// Creates the tables one by one (DDL is not transactional in MySQL), adding the name of
/// each one made to `created`.
async fn create_tables(
    conn: &mut MySqlConnection,
    created: &mut Vec<&'static str>,
) -> sqlx::Result<()> {
    let statements = MYSQL_SCHEMA
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty());
    for statement in statements {
        sqlx::raw_sql(statement).execute(&mut *conn).await?;
        let name = statement
            .strip_prefix("CREATE TABLE ")
            .and_then(|rest| rest.split_once(' '))
            .map(|(name, _)| name);
        created.extend(name);
    }
    Ok(())
}

/// Loads with [`insert_table`]; the keys come with the tables.
impl load::Server for MySqlConnection {
    const INDEXES: &'static [&'static str] = MYSQL_INDEXES;
    const ANALYZE: &'static str = "ANALYZE TABLE";

    async fn load_table(&mut self, shop: &Arc<Shop>, table: Table) -> sqlx::Result<()> {
        insert_table(self, shop, table).await
    }

    async fn build_index(&mut self, index: &'static str) -> sqlx::Result<()> {
        sqlx::raw_sql(index).execute(self).await.map(|_| ())
    }
}

/// Turns off the checks a load into new tables without foreign keys does not need (for
/// the session: asked again before each table, two cheap statements), and says how the
/// session reads string literals.
async fn prepare(conn: &mut MySqlConnection) -> sqlx::Result<Insert> {
    sqlx::raw_sql("SET SESSION unique_checks = 0, foreign_key_checks = 0")
        .execute(&mut *conn)
        .await?;
    let literal_backslashes: i64 =
        sqlx::query_scalar("SELECT @@SESSION.sql_mode LIKE '%NO_BACKSLASH_ESCAPES%'")
            .fetch_one(&mut *conn)
            .await?;
    Ok(Insert {
        backslash_escapes: literal_backslashes == 0,
    })
}

/// Streams one table's rows into it, one `INSERT` per chunk, in one transaction.
async fn insert_table(
    conn: &mut MySqlConnection,
    shop: &Arc<Shop>,
    table: Table,
) -> sqlx::Result<()> {
    let format = prepare(conn).await?;
    let mut chunks = table.spawn(shop, format);
    let mut tx = conn.begin().await?;
    let mut stored = 0;
    let sent = async {
        while let Some(statement) = chunks.next().await {
            // The values are literals written by `Insert` from generated rows: no user
            // input.
            let done = sqlx::raw_sql(AssertSqlSafe(statement))
                .execute(&mut *tx)
                .await?;
            stored += done.rows_affected();
        }
        Ok(())
    }
    .await;
    let produced = chunks.finish(sent).await?;
    load::check_stored(table, stored, produced)?;
    tx.commit().await
}

/// Multi-row `INSERT … VALUES (…), (…)` with the values as SQL literals.
#[derive(Debug, Clone, Copy)]
struct Insert {
    /// Whether `\` escapes in string literals (it does unless `sql_mode` has
    /// `NO_BACKSLASH_ESCAPES`).
    backslash_escapes: bool,
}

impl Format for Insert {
    fn start(&self, table: &str, columns: &[&str], out: &mut String) {
        // `write!` into a `String` cannot fail.
        let _ = write!(out, "INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    }

    fn row(&self, values: &[Value<'_>], first: bool, out: &mut String) {
        if !first {
            out.push(',');
        }
        out.push('(');
        for (i, &value) in values.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match value {
                Value::Text(None) => out.push_str("NULL"),
                Value::Text(Some(text)) => self.quoted(text, out),
                Value::Time(_) => {
                    out.push('\'');
                    load::plain(value, out);
                    out.push('\'');
                }
                value => load::plain(value, out),
            }
        }
        out.push(')');
    }
}

impl Insert {
    /// Appends `text` as a string literal: `'` doubled; with backslash escapes also `\`
    /// doubled and NUL as `\0`.
    fn quoted(self, text: &str, out: &mut String) {
        out.push('\'');
        if text.contains(['\'', '\\', '\0']) {
            for c in text.chars() {
                match c {
                    '\'' => out.push_str("''"),
                    '\\' if self.backslash_escapes => out.push_str("\\\\"),
                    '\0' if self.backslash_escapes => out.push_str("\\0"),
                    c => out.push(c),
                }
            }
        } else {
            out.push_str(text);
        }
        out.push('\'');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Row as _;
    use crate::rows::{Cents, Customer, Product};
    use crate::time::Timestamp;

    #[test]
    fn rows_read_as_insert_values() {
        let format = Insert {
            backslash_escapes: true,
        };
        let mut out = String::new();
        format.start(Customer::TABLE, Customer::COLUMNS, &mut out);
        Customer {
            id: 7,
            email: None,
            name: "O'Brien \\ \0 \"x\"".into(),
            created_at: Timestamp::from_unix_seconds(0),
        }
        .write(&format, true, &mut out);
        Product {
            id: 3,
            name: "Product 3".into(),
            gtin: "4012345678901".into(),
            price: Cents(-123_456),
            stock_quantity: 4,
            created_at: Timestamp::from_unix_seconds(0),
        }
        .write(&format, false, &mut out);
        assert_eq!(
            out,
            "INSERT INTO customers (id, email, name, created_at) VALUES \
             (7,NULL,'O''Brien \\\\ \\0 \"x\"','1970-01-01 00:00:00'),\
             (3,'Product 3','4012345678901',-1234.56,4,'1970-01-01 00:00:00')"
        );

        let literal = Insert {
            backslash_escapes: false,
        };
        let mut out = String::new();
        load::sample_order().write(&literal, true, &mut out);
        literal.quoted("a\\'b", &mut out);
        assert_eq!(out, "(1,2,'COMPLETED',12.05,'1970-01-01 00:01:00')'a\\''b'");
    }

    #[test]
    fn every_table_has_its_key_and_the_indexes_of_postgres() {
        for name in TABLES.map(Table::name) {
            assert!(MYSQL_SCHEMA.contains(&format!(
                "CREATE TABLE {name} (\n    id BIGINT NOT NULL PRIMARY KEY,"
            )));
        }
        let postgres: Vec<&str> = crate::POSTGRES_INDEXES
            .iter()
            .copied()
            .filter(|s| s.starts_with("CREATE INDEX"))
            .collect();
        assert_eq!(MYSQL_INDEXES, postgres.as_slice());
        assert_eq!(
            MYSQL_SCHEMA
                .matches("DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")
                .count(),
            6
        );
    }
}
