//! What the server loaders (PostgreSQL, MySQL) share: the six tables biggest first, their
//! rows generated on a blocking thread as chunks of text in the loader's [`Format`] and
//! handed over through a bounded channel, two connections taking tables and index builds
//! one at a time ([`load_all`]), and URLs without their passwords.
//!
//! Memory stays at a few chunks of about [`CHUNK_BYTES`] per table whatever the scale.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::try_join_all;
use sqlx::{AssertSqlSafe, Connection, Executor};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::generate::Shop;
use crate::rows::{Cents, Customer, Inventory, Order, OrderItem, Payment, Product};
use crate::time::Timestamp;

/// The six tables, biggest first.
pub(crate) const TABLES: [Table; 6] = [
    Table::OrderItems,
    Table::Orders,
    Table::Inventory,
    Table::Payments,
    Table::Products,
    Table::Customers,
];

/// Connections that load tables (and build indexes) side by side.
pub(crate) const CONNECTIONS: usize = 2;

/// Bytes of text per chunk (a chunk ends after the row that reaches this).
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

/// Chunks generated ahead of the connection, per table.
const CHUNKS_AHEAD: usize = 4;

/// One of the shop's tables.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Table {
    Customers,
    Products,
    Inventory,
    Orders,
    OrderItems,
    Payments,
}

impl Table {
    /// The table's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Customers => Customer::TABLE,
            Self::Products => Product::TABLE,
            Self::Inventory => Inventory::TABLE,
            Self::Orders => Order::TABLE,
            Self::OrderItems => OrderItem::TABLE,
            Self::Payments => Payment::TABLE,
        }
    }

    /// The columns the loaders write, in the order of the values.
    pub(crate) fn columns(self) -> &'static [&'static str] {
        match self {
            Self::Customers => Customer::COLUMNS,
            Self::Products => Product::COLUMNS,
            Self::Inventory => Inventory::COLUMNS,
            Self::Orders => Order::COLUMNS,
            Self::OrderItems => OrderItem::COLUMNS,
            Self::Payments => Payment::COLUMNS,
        }
    }

    /// Starts generating the table's rows on a blocking thread, in chunks of `format`.
    pub(crate) fn spawn<F: Format>(self, shop: &Arc<Shop>, format: F) -> Chunks {
        let (sender, receiver) = mpsc::channel(CHUNKS_AHEAD);
        let shop = Arc::clone(shop);
        let producer = tokio::task::spawn_blocking(move || self.produce(&shop, &format, &sender));
        Chunks {
            table: self,
            receiver,
            producer,
        }
    }

    fn produce<F: Format>(self, shop: &Shop, format: &F, sender: &mpsc::Sender<String>) -> u64 {
        match self {
            Self::Customers => produce(shop.customers(), format, sender),
            Self::Products => produce(shop.products(), format, sender),
            Self::Inventory => produce(shop.inventory(), format, sender),
            Self::Orders => produce(shop.orders(), format, sender),
            Self::OrderItems => produce(shop.order_items(), format, sender),
            Self::Payments => produce(shop.payments(), format, sender),
        }
    }
}

/// The chunks of a table's rows, as a blocking thread generates them.
pub(crate) struct Chunks {
    table: Table,
    receiver: mpsc::Receiver<String>,
    /// Returns the number of rows (it stops early once the receiver is dropped).
    producer: JoinHandle<u64>,
}

impl Chunks {
    /// The next chunk; `None` once all are sent.
    pub(crate) async fn next(&mut self) -> Option<String> {
        self.receiver.recv().await
    }

    /// Stops the generator if `sent` (the sending of the chunks) failed and returns that
    /// error; otherwise the number of rows generated.
    pub(crate) async fn finish(self, sent: sqlx::Result<()>) -> sqlx::Result<u64> {
        // Dropping the receiver stops the producer if the connection failed.
        drop(self.receiver);
        let name = self.table.name();
        let produced = self
            .producer
            .await
            .map_err(|err| sqlx::Error::Protocol(format!("generating {name}: {err}")))?;
        sent.map(|()| produced)
    }
}

/// An error unless the database stored (by its count, `stored`) the `produced` rows of
/// `table`.
pub(crate) fn check_stored(table: Table, stored: u64, produced: u64) -> sqlx::Result<()> {
    if stored == produced {
        Ok(())
    } else {
        Err(sqlx::Error::Protocol(format!(
            "{}: the database stored {stored} rows of {produced}",
            table.name()
        )))
    }
}

fn produce<R: Row, F: Format>(
    rows: impl Iterator<Item = R>,
    format: &F,
    sender: &mpsc::Sender<String>,
) -> u64 {
    let start = || {
        let mut chunk = String::with_capacity(CHUNK_BYTES + 4096);
        format.start(R::TABLE, R::COLUMNS, &mut chunk);
        chunk
    };
    let mut count = 0;
    let mut chunk = start();
    let mut first = true;
    for row in rows {
        row.write(format, first, &mut chunk);
        first = false;
        count += 1;
        if chunk.len() >= CHUNK_BYTES {
            let full = std::mem::replace(&mut chunk, start());
            first = true;
            if sender.blocking_send(full).is_err() {
                return count;
            }
        }
    }
    if !first {
        let _ = sender.blocking_send(chunk);
    }
    count
}

/// The values of a row, as a loader writes them.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Int(i64),
    /// Text, or NULL.
    Text(Option<&'a str>),
    Money(Cents),
    Time(Timestamp),
}

/// How a loader writes rows as text.
pub(crate) trait Format: Send + 'static {
    /// Begins a chunk of rows of `table` (empty for `COPY`, `INSERT INTO … VALUES ` for SQL).
    fn start(&self, table: &str, columns: &[&str], out: &mut String);
    /// Appends one row, `first` in its chunk or not.
    fn row(&self, values: &[Value<'_>], first: bool, out: &mut String);
}

/// A row type: its table and how it reads as [`Value`]s.
pub(crate) trait Row {
    const TABLE: &'static str;
    const COLUMNS: &'static [&'static str];
    /// Appends the row in `format`, its values in the order of `COLUMNS`.
    fn write<F: Format>(&self, format: &F, first: bool, out: &mut String);
}

impl Row for Customer {
    const TABLE: &'static str = "customers";
    const COLUMNS: &'static [&'static str] = &["id", "email", "name", "created_at"];
    fn write<F: Format>(&self, format: &F, first: bool, out: &mut String) {
        let values = [
            Value::Int(self.id),
            Value::Text(self.email.as_deref()),
            Value::Text(Some(&self.name)),
            Value::Time(self.created_at),
        ];
        format.row(&values, first, out);
    }
}

impl Row for Product {
    const TABLE: &'static str = "products";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "name",
        "gtin",
        "price",
        "stock_quantity",
        "created_at",
    ];
    fn write<F: Format>(&self, format: &F, first: bool, out: &mut String) {
        let values = [
            Value::Int(self.id),
            Value::Text(Some(&self.name)),
            Value::Text(Some(&self.gtin)),
            Value::Money(self.price),
            Value::Int(self.stock_quantity),
            Value::Time(self.created_at),
        ];
        format.row(&values, first, out);
    }
}

impl Row for Inventory {
    const TABLE: &'static str = "inventory";
    const COLUMNS: &'static [&'static str] = &["id", "product_id", "warehouse", "quantity"];
    fn write<F: Format>(&self, format: &F, first: bool, out: &mut String) {
        let values = [
            Value::Int(self.id),
            Value::Int(self.product_id),
            Value::Text(Some(&self.warehouse)),
            Value::Int(self.quantity),
        ];
        format.row(&values, first, out);
    }
}

impl Row for Order {
    const TABLE: &'static str = "orders";
    const COLUMNS: &'static [&'static str] =
        &["id", "customer_id", "status", "total_amount", "created_at"];
    fn write<F: Format>(&self, format: &F, first: bool, out: &mut String) {
        let values = [
            Value::Int(self.id),
            Value::Int(self.customer_id),
            Value::Text(Some(self.status.as_str())),
            Value::Money(self.total_amount),
            Value::Time(self.created_at),
        ];
        format.row(&values, first, out);
    }
}

impl Row for OrderItem {
    const TABLE: &'static str = "order_items";
    const COLUMNS: &'static [&'static str] =
        &["id", "order_id", "product_id", "quantity", "unit_price"];
    fn write<F: Format>(&self, format: &F, first: bool, out: &mut String) {
        let values = [
            Value::Int(self.id),
            Value::Int(self.order_id),
            Value::Int(self.product_id),
            Value::Int(self.quantity),
            Value::Money(self.unit_price),
        ];
        format.row(&values, first, out);
    }
}

impl Row for Payment {
    const TABLE: &'static str = "payments";
    const COLUMNS: &'static [&'static str] = &["id", "order_id", "amount", "status", "created_at"];
    fn write<F: Format>(&self, format: &F, first: bool, out: &mut String) {
        let values = [
            Value::Int(self.id),
            Value::Int(self.order_id),
            Value::Money(self.amount),
            Value::Text(Some(self.status.as_str())),
            Value::Time(self.created_at),
        ];
        format.row(&values, first, out);
    }
}

/// Appends a number, money or a moment as the databases read it (`12`, `12.05`,
/// `2025-01-01 00:00:00`); text and NULL are the format's business.
pub(crate) fn plain(value: Value<'_>, out: &mut String) {
    // `write!` into a `String` cannot fail.
    let _ = match value {
        Value::Int(n) => write!(out, "{n}"),
        Value::Money(cents) => write!(out, "{cents}"),
        Value::Time(moment) => write!(out, "{moment}"),
        Value::Text(_) => Ok(()),
    };
}

/// A server's connection, as [`load_all`] drives it.
pub(crate) trait Server: Connection + Sized {
    /// The statements that build the keys and indexes after the load, biggest table first.
    const INDEXES: &'static [&'static str];
    /// The statement that analyzes tables, before their names.
    const ANALYZE: &'static str;
    /// Loads all the rows of `table`.
    fn load_table(
        &mut self,
        shop: &Arc<Shop>,
        table: Table,
    ) -> impl Future<Output = sqlx::Result<()>> + Send;
    /// Runs one statement of [`Self::INDEXES`].
    fn build_index(
        &mut self,
        statement: &'static str,
    ) -> impl Future<Output = sqlx::Result<()>> + Send;
}

/// Loads the tables and builds the indexes on `conn` and [`CONNECTIONS`]` - 1` more
/// connections to `url`, two at a time in their order (biggest first), then analyzes the
/// tables on one connection; then closes them.
pub(crate) async fn load_all<C>(url: &str, conn: C, shop: &Arc<Shop>) -> sqlx::Result<()>
where
    C: Server,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
{
    let mut conns = vec![conn];
    for _ in 1..CONNECTIONS {
        conns.push(C::connect(url).await?);
    }
    side_by_side(&mut conns, shop, TABLES.map(Job::Load)).await?;
    side_by_side(&mut conns, shop, C::INDEXES.iter().copied().map(Job::Index)).await?;

    let mut conns = conns.into_iter();
    if let Some(mut conn) = conns.next() {
        let analyze = format!("{} {}", C::ANALYZE, table_list());
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

/// A piece of [`load_all`]'s work for one connection.
enum Job {
    Load(Table),
    Index(&'static str),
}

/// Does `jobs`, each connection taking the next one when it is free.
async fn side_by_side<C: Server>(
    conns: &mut [C],
    shop: &Arc<Shop>,
    jobs: impl IntoIterator<Item = Job>,
) -> sqlx::Result<()> {
    let queue = Mutex::new(jobs.into_iter().collect::<VecDeque<Job>>());
    let next = || {
        queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    };
    try_join_all(conns.iter_mut().map(|conn| async {
        while let Some(job) = next() {
            match job {
                Job::Load(table) => conn.load_table(shop, table).await?,
                Job::Index(statement) => conn.build_index(statement).await?,
            }
        }
        Ok::<(), sqlx::Error>(())
    }))
    .await?;
    Ok(())
}

/// The names of the six tables joined by `, `, for `DROP TABLE` and `ANALYZE`.
pub(crate) fn table_list() -> String {
    let names: Vec<&str> = TABLES.iter().map(|t| t.name()).collect();
    names.join(", ")
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

/// An order for the formats' tests.
#[cfg(test)]
pub(crate) fn sample_order() -> Order {
    Order {
        id: 1,
        customer_id: 2,
        status: crate::rows::OrderStatus::Completed,
        total_amount: Cents(1205),
        created_at: Timestamp::from_unix_seconds(60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_loaded_once() {
        let mut names: Vec<&str> = TABLES.iter().map(|t| t.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 6);
    }

    #[test]
    fn the_loads_can_be_spawned() {
        fn send<T: Send>(_: &T) {}
        let spec = crate::ShopSpec::demo();
        send(&crate::create_postgres("postgres://h/db", &spec));
        send(&crate::create_mysql("mysql://h/db", &spec));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redacted("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(
            redacted("mysql://u:p@ss@h:3306/db"),
            "mysql://u:***@h:3306/db"
        );
        assert_eq!(redacted("postgres://h/db"), "postgres://h/db");
        assert_eq!(redacted("postgres://u@h/db"), "postgres://u@h/db");
    }
}
