//! Shared by the SQLite, PostgreSQL and MySQL tests: the runbook's integrity queries (as
//! the rules of `rules/ecommerce` ask them), the check plugins' definitions (applied to the
//! rows read back), and what a loaded shop must show through them.
//!
//! Every query here runs unchanged on SQLite and PostgreSQL; on MySQL (MariaDB) after
//! [`mysql_dialect`], which spells its two casts the MySQL way.

#[allow(dead_code, reason = "shared with the unit tests, which use all of it")]
#[path = "../../src/definitions.rs"]
mod definitions;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::LazyLock;

use sqlx::AssertSqlSafe;
use sqlx::mysql::MySqlPool;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use trueup_shop::{Cents, Planted, Shop, ShopSpec};

pub const ORPHANED_ORDERS: &str = "
SELECT o.id FROM orders o
WHERE o.customer_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id)";

pub const DUPLICATE_EMAILS: &str = "
SELECT email FROM customers WHERE email IS NOT NULL GROUP BY email HAVING COUNT(*) > 1";

pub const WRONG_TOTALS: &str = "
SELECT o.id FROM orders o
JOIN (SELECT order_id, SUM(quantity * unit_price) AS items_total FROM order_items GROUP BY order_id) i
  ON i.order_id = o.id
WHERE ABS(o.total_amount - i.items_total) > 0.005";

pub const WRONG_STOCK: &str = "
SELECT p.id FROM products p
LEFT JOIN (SELECT product_id, SUM(quantity) AS counted FROM inventory GROUP BY product_id) i
  ON i.product_id = p.id
WHERE p.stock_quantity != COALESCE(i.counted, 0)";

/// The query of `rules/ecommerce/completed-orders-paid.toml` (`rule[0].detector.query`), as
/// the rule pack has it.
pub static BAD_PAYMENTS: LazyLock<String> = LazyLock::new(|| {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../rules/ecommerce/completed-orders-paid.toml"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{path}: {err}"));
    let pack: toml::Table = text.parse().unwrap_or_else(|err| panic!("{path}: {err}"));
    pack["rule"][0]["detector"]["query"]
        .as_str()
        .unwrap_or_else(|| panic!("{path}: no rule[0].detector.query"))
        .to_owned()
});

/// A database holding a shop, queried with the SQL above.
pub trait Db {
    /// The first column of every row, as integers, sorted.
    fn ids(&self, sql: &str) -> impl Future<Output = Vec<i64>>;
    /// The first column of every row, as text, sorted.
    fn strings(&self, sql: &str) -> impl Future<Output = Vec<String>>;
    /// The first three columns of every row, as integers.
    fn triples(&self, sql: &str) -> impl Future<Output = Vec<(i64, i64, i64)>>;
    /// The one integer the query returns.
    fn count(&self, sql: &str) -> impl Future<Output = i64>;
    /// Customers' id, email and name.
    fn customers(&self) -> impl Future<Output = Vec<(i64, Option<String>, String)>>;
    /// Products' id, GTIN and price.
    fn products(&self) -> impl Future<Output = Vec<(i64, String, f64)>>;
}

/// The queries as they are: SQLite and PostgreSQL read them alike.
fn same(sql: &str) -> String {
    sql.to_owned()
}

/// The queries for MySQL (MariaDB), which has no `CAST(… AS TEXT)` (it is `CHAR`) and no
/// `DOUBLE PRECISION` in casts (it is `DOUBLE`). The rest (`||` included: sqlx sets
/// `PIPES_AS_CONCAT`) reads the same.
fn mysql_dialect(sql: &str) -> String {
    sql.replace(" AS TEXT)", " AS CHAR)")
        .replace(" AS DOUBLE PRECISION)", " AS DOUBLE)")
}

macro_rules! impl_db {
    ($pool:ty, $dialect:expr) => {
        impl Db for $pool {
            async fn ids(&self, sql: &str) -> Vec<i64> {
                let mut values: Vec<i64> = sqlx::query_scalar(AssertSqlSafe($dialect(sql)))
                    .fetch_all(self)
                    .await
                    .unwrap_or_else(|err| panic!("{sql}: {err}"));
                values.sort_unstable();
                values
            }

            async fn strings(&self, sql: &str) -> Vec<String> {
                let mut values: Vec<String> = sqlx::query_scalar(AssertSqlSafe($dialect(sql)))
                    .fetch_all(self)
                    .await
                    .unwrap_or_else(|err| panic!("{sql}: {err}"));
                values.sort_unstable();
                values
            }

            async fn triples(&self, sql: &str) -> Vec<(i64, i64, i64)> {
                sqlx::query_as(AssertSqlSafe($dialect(sql)))
                    .fetch_all(self)
                    .await
                    .unwrap_or_else(|err| panic!("{sql}: {err}"))
            }

            async fn count(&self, sql: &str) -> i64 {
                sqlx::query_scalar(AssertSqlSafe($dialect(sql)))
                    .fetch_one(self)
                    .await
                    .unwrap_or_else(|err| panic!("{sql}: {err}"))
            }

            async fn customers(&self) -> Vec<(i64, Option<String>, String)> {
                sqlx::query_as("SELECT id, email, name FROM customers")
                    .fetch_all(self)
                    .await
                    .unwrap()
            }

            async fn products(&self) -> Vec<(i64, String, f64)> {
                let sql = "SELECT id, gtin, CAST(price AS DOUBLE PRECISION) FROM products";
                sqlx::query_as(AssertSqlSafe($dialect(sql)))
                    .fetch_all(self)
                    .await
                    .unwrap()
            }
        }
    };
}

impl_db!(SqlitePool, same);
impl_db!(PgPool, same);
impl_db!(MySqlPool, mysql_dialect);

/// What the integrity queries find in the database: the e-commerce pack's problems (the
/// plugins' lists empty).
pub async fn found(db: &impl Db) -> Planted {
    Planted {
        orphaned_orders: db.ids(ORPHANED_ORDERS).await,
        duplicate_emails: db.strings(DUPLICATE_EMAILS).await,
        wrong_totals: db.ids(WRONG_TOTALS).await,
        wrong_stock: db.ids(WRONG_STOCK).await,
        bad_payments: db.ids(&BAD_PAYMENTS).await,
        ..Planted::default()
    }
}

/// What the check plugins' definitions find in the rows of the database, rule by rule: the
/// key values, as text.
pub async fn found_by_plugins(db: &impl Db) -> BTreeMap<&'static str, BTreeSet<String>> {
    let ids = |ids: BTreeSet<i64>| ids.iter().map(i64::to_string).collect();
    let customers = db.customers().await;
    let malformed = customers
        .iter()
        .filter(|(_, email, _)| email.as_deref().is_some_and(definitions::email_malformed))
        .map(|(id, _, _)| *id)
        .collect();
    let names: Vec<(i64, String)> = customers
        .into_iter()
        .map(|(id, _, name)| (id, name))
        .collect();
    let products = db.products().await;
    let bad_gtins = products
        .iter()
        .filter(|(_, gtin, _)| !definitions::gtin_valid(gtin))
        .map(|(id, _, _)| *id)
        .collect();
    let prices: Vec<(i64, f64)> = products.iter().map(|&(id, _, price)| (id, price)).collect();
    BTreeMap::from([
        ("customers.email-syntax", ids(malformed)),
        (
            "customers.name-near-duplicates",
            ids(definitions::with_near_duplicates(&names)),
        ),
        ("products.gtin-check-digit", ids(bad_gtins)),
        (
            "products.price-outliers",
            ids(definitions::robust_outliers(&prices, 8.0)),
        ),
    ])
}

/// What the check plugins must find, by the planted truth.
pub fn expected_by_plugins(planted: &Planted) -> BTreeMap<&'static str, BTreeSet<String>> {
    planted
        .plugin_expected_findings()
        .into_iter()
        .map(|e| (e.rule, e.keys))
        .collect()
}

/// The database holds exactly the planted problems: those of the e-commerce pack, as its
/// queries find them, and those of the check plugins, as their definitions find them.
pub async fn assert_found(db: &impl Db, planted: &Planted, context: &str) {
    let ecommerce = Planted {
        malformed_emails: Vec::new(),
        near_duplicate_names: Vec::new(),
        bad_gtins: Vec::new(),
        price_outliers: Vec::new(),
        ..planted.clone()
    };
    assert_eq!(found(db).await, ecommerce, "{context}");
    assert_eq!(
        found_by_plugins(db).await,
        expected_by_plugins(planted),
        "{context}"
    );
}

/// The demo shop: exactly the planted problems, the minimum of each kind.
pub async fn assert_demo_problems(db: &impl Db, planted: &Planted) {
    assert_found(db, planted, "the demo").await;
    assert_eq!(planted.orphaned_orders.len(), 3);
    assert_eq!(planted.duplicate_emails.len(), 4);
    assert_eq!(planted.wrong_totals.len(), 5);
    assert_eq!(planted.wrong_stock.len(), 4);
    assert_eq!(planted.bad_payments.len(), 6);
    assert_eq!(planted.malformed_emails.len(), 5);
    assert_eq!(planted.near_duplicate_names.len(), 5);
    assert_eq!(planted.bad_gtins.len(), 4);
    assert_eq!(planted.price_outliers.len(), 3);
}

/// The demo shop has each variety of each problem.
pub async fn assert_demo_varieties(db: &impl Db) {
    let one_cent = "
        SELECT COUNT(*) FROM orders o
        JOIN (SELECT order_id, SUM(quantity * unit_price) AS s FROM order_items GROUP BY order_id) i
          ON i.order_id = o.id
        WHERE ABS(o.total_amount - i.s - 0.01) < 0.001";
    assert!(db.count(one_cent).await >= 1, "a total one cent too high");
    let large = "
        SELECT COUNT(*) FROM orders o
        JOIN (SELECT order_id, SUM(quantity * unit_price) AS s FROM order_items GROUP BY order_id) i
          ON i.order_id = o.id
        WHERE ABS(o.total_amount - i.s) >= 1.0";
    assert!(db.count(large).await >= 1, "a total at least a dollar off");
    let group_of_three = "SELECT COUNT(*) FROM (SELECT email FROM customers WHERE email IS NOT NULL GROUP BY email HAVING COUNT(*) = 3) AS g";
    assert!(
        db.count(group_of_three).await >= 1,
        "an email shared by three customers"
    );
    let stock_without_inventory = "
        SELECT COUNT(*) FROM products p
        WHERE p.stock_quantity > 0 AND NOT EXISTS (SELECT 1 FROM inventory i WHERE i.product_id = p.id)";
    assert!(
        db.count(stock_without_inventory).await >= 1,
        "stock without inventory"
    );

    // Payments, unfinished payments and payments of another amount of each completed order
    // (not the rule's query: its columns are the rule's business). `COUNT`, not `SUM`: a
    // sum of integers is a DECIMAL in MySQL.
    let payments = "
        SELECT COUNT(p.id),
               COUNT(CASE WHEN p.status <> 'COMPLETED' THEN 1 END),
               COUNT(CASE WHEN ABS(p.amount - o.total_amount) > 0.005 THEN 1 END)
        FROM orders o LEFT JOIN payments p ON p.order_id = o.id
        WHERE o.status = 'COMPLETED'
        GROUP BY o.id";
    let rows = db.triples(payments).await;
    assert!(rows.contains(&(0, 0, 0)), "no payment: {rows:?}");
    assert!(rows.contains(&(1, 1, 0)), "an unfinished payment: {rows:?}");
    assert!(
        rows.contains(&(1, 0, 1)),
        "a payment of another amount: {rows:?}"
    );
    assert!(rows.contains(&(2, 1, 1)), "two bad payments: {rows:?}");
    let statuses =
        "SELECT COUNT(DISTINCT status) FROM payments WHERE status IN ('PENDING', 'FAILED')
        AND order_id IN (SELECT id FROM orders WHERE status = 'COMPLETED')";
    assert_eq!(
        db.count(statuses).await,
        2,
        "PENDING and FAILED payments of completed orders"
    );
}

/// The demo shop has the rows that look like problems but are not.
pub async fn assert_demo_decoys(db: &impl Db) {
    let pending = "
        SELECT COUNT(*) FROM orders o JOIN payments p ON p.order_id = o.id
        WHERE o.status = 'PENDING' AND p.status = 'PENDING' AND ABS(p.amount - o.total_amount) > 0.005";
    assert!(
        db.count(pending).await >= 1,
        "a pending payment of another amount"
    );
    let empty_product = "
        SELECT COUNT(*) FROM products p
        WHERE p.stock_quantity = 0 AND NOT EXISTS (SELECT 1 FROM inventory i WHERE i.product_id = p.id)";
    assert!(
        db.count(empty_product).await >= 1,
        "a product without inventory and stock 0"
    );
    let empty_order = "
        SELECT COUNT(*) FROM orders o
        WHERE o.status = 'CANCELLED' AND o.total_amount = 0
          AND NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id)";
    assert!(
        db.count(empty_order).await >= 1,
        "a cancelled order without items"
    );
    assert!(
        db.count("SELECT COUNT(*) FROM customers WHERE email IS NULL")
            .await
            >= 2,
        "two NULL emails"
    );
}

/// The tables have the sizes of `spec` and their moments fall in the shop's two years.
pub async fn assert_shape(db: &impl Db, spec: &ShopSpec) {
    let rows = |n: u64| i64::try_from(n).unwrap();
    assert_eq!(
        db.count("SELECT COUNT(*) FROM orders").await,
        rows(spec.orders)
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM customers").await,
        rows(spec.customers())
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM products").await,
        rows(spec.products())
    );
    for table in ["customers", "products", "orders", "payments"] {
        let outside = format!(
            "SELECT COUNT(*) FROM {table} WHERE CAST(created_at AS TEXT) NOT BETWEEN '2025' AND '2027'"
        );
        assert_eq!(db.count(&outside).await, 0, "{table}");
    }
}

/// The sums of the money columns and the first order read back as text are exactly the
/// generated ones, and so are the NULL emails; `moment_suffix` is what the database adds to
/// the text of a whole-second moment (`.000000` for MySQL's `DATETIME(6)`).
#[allow(dead_code, reason = "for the server tests: SQLite keeps money as REAL")]
pub async fn assert_exact(db: &impl Db, spec: &ShopSpec, moment_suffix: &str) {
    let shop = Shop::new(spec);
    let total = Cents(shop.orders().map(|o| o.total_amount.0).sum());
    let items = Cents(shop.order_items().map(|i| i.unit_price.0).sum());
    let paid = Cents(shop.payments().map(|p| p.amount.0).sum());
    let sums = "SELECT CAST((SELECT SUM(total_amount) FROM orders) AS TEXT)
        UNION ALL SELECT CAST((SELECT SUM(unit_price) FROM order_items) AS TEXT)
        UNION ALL SELECT CAST((SELECT SUM(amount) FROM payments) AS TEXT)";
    let mut expected = vec![total.to_string(), items.to_string(), paid.to_string()];
    expected.sort_unstable();
    assert_eq!(db.strings(sums).await, expected);

    let first = shop.orders().next().unwrap();
    let amount = format!(
        "SELECT CAST(total_amount AS TEXT) FROM orders WHERE id = {}",
        first.id
    );
    assert_eq!(db.strings(&amount).await, [first.total_amount.to_string()]);
    let moment = format!(
        "SELECT CAST(created_at AS TEXT) FROM orders WHERE id = {}",
        first.id
    );
    assert_eq!(
        db.strings(&moment).await,
        [format!("{}{moment_suffix}", first.created_at)]
    );
    let emails = "SELECT COUNT(*) FROM customers WHERE email IS NULL";
    let nulls = shop.customers().filter(|c| c.email.is_none()).count();
    assert_eq!(db.count(emails).await, i64::try_from(nulls).unwrap());
}

/// The specs of the tests that compare a shop with its planted problems: a larger problem
/// rate with its expected counts, then small shops of several seeds.
pub const LARGER_RATE: ShopSpec = ShopSpec {
    orders: 5000,
    problem_rate: 0.1,
    seed: 7,
};

/// A larger rate plants proportionally more of each kind.
pub fn assert_larger_rate_counts(planted: &Planted) {
    assert_eq!(planted.orphaned_orders.len(), 500);
    assert_eq!(planted.wrong_totals.len(), 500);
    assert_eq!(planted.bad_payments.len(), 500);
    assert_eq!(planted.duplicate_emails.len(), 50);
    assert_eq!(planted.wrong_stock.len(), 67);
    assert_eq!(planted.malformed_emails.len(), 50);
    assert_eq!(planted.near_duplicate_names.len(), 50);
    assert_eq!(planted.bad_gtins.len(), 67);
    // At most one product in 50.
    assert_eq!(planted.price_outliers.len(), 13);
}

/// Small shops of several seeds, extreme ones included.
pub fn seeded_specs() -> impl Iterator<Item = ShopSpec> {
    [0, 1, 2, 3, u64::MAX].into_iter().map(|seed| ShopSpec {
        orders: 300,
        problem_rate: 0.01,
        seed,
    })
}

/// The tests every server loader passes (PostgreSQL, MySQL), written once; `Fresh`, a new
/// empty database, and `shop`, which loads a shop into one, for them and for the including
/// file's own tests. That file implements `Fresh::new` and `Fresh::drop_database` and
/// imports `Db`, `Error`, `Planted` and `ShopSpec`; the arguments name the
/// loader, the pool type, the loader's error for an unreachable server, a URL of such a
/// server with the password `hunter2`, and a query counting the tables of the
/// connection's database or schema, and what the database adds to the text of a moment.
#[allow(unused_macros, reason = "used by the server tests, not by SQLite's")]
macro_rules! server_tests {
    (
        create: $create:path,
        pool: $pool:ty,
        unreachable: $unreachable:path,
        unreachable_url: $url:expr,
        count_tables: $count_tables:expr,
        moment_suffix: $moment_suffix:expr $(,)?
    ) => {
        /// A new empty database on the test server, dropped by `Fresh::drop_database`.
        struct Fresh {
            admin: String,
            name: String,
            url: String,
        }

        impl Fresh {
            async fn pool(&self) -> $pool {
                <$pool>::connect(&self.url)
                    .await
                    .expect("connect to the test database")
            }
        }

        /// Loads the shop of `spec` into a new database; `None` without a test server.
        async fn shop(spec: &ShopSpec) -> Option<(Planted, $pool, Fresh)> {
            let fresh = Fresh::new().await?;
            let planted = $create(&fresh.url, spec).await.unwrap();
            assert_eq!(planted, Planted::for_spec(spec));
            Some((planted, fresh.pool().await, fresh))
        }

        #[tokio::test]
        async fn the_demo_has_exactly_the_planted_problems() {
            let Some((planted, pool, fresh)) = shop(&ShopSpec::demo()).await else {
                return;
            };
            common::assert_demo_problems(&pool, &planted).await;
            fresh.drop_database(pool).await;
        }

        #[tokio::test]
        async fn the_demo_has_every_variety_of_problem_and_its_decoys() {
            let Some((_, pool, fresh)) = shop(&ShopSpec::demo()).await else {
                return;
            };
            common::assert_demo_varieties(&pool).await;
            common::assert_demo_decoys(&pool).await;
            fresh.drop_database(pool).await;
        }

        #[tokio::test]
        async fn the_demo_has_the_documented_shape() {
            let spec = ShopSpec::demo();
            let Some((_, pool, fresh)) = shop(&spec).await else {
                return;
            };
            common::assert_shape(&pool, &spec).await;
            fresh.drop_database(pool).await;
        }

        #[tokio::test]
        async fn money_and_moments_are_stored_exactly() {
            let spec = ShopSpec::demo();
            let Some((_, pool, fresh)) = shop(&spec).await else {
                return;
            };
            common::assert_exact(&pool, &spec, $moment_suffix).await;
            fresh.drop_database(pool).await;
        }

        #[tokio::test]
        async fn a_larger_rate_plants_proportionally_more() {
            let Some((planted, pool, fresh)) = shop(&common::LARGER_RATE).await else {
                return;
            };
            common::assert_larger_rate_counts(&planted);
            common::assert_found(&pool, &planted, "a larger rate").await;
            fresh.drop_database(pool).await;
        }

        #[tokio::test]
        async fn other_seeds_also_match() {
            for spec in common::seeded_specs() {
                let Some((planted, pool, fresh)) = shop(&spec).await else {
                    return;
                };
                common::assert_found(&pool, &planted, &format!("seed {}", spec.seed)).await;
                fresh.drop_database(pool).await;
            }
        }

        #[tokio::test]
        async fn existing_tables_are_left_alone() {
            let Some(fresh) = Fresh::new().await else {
                return;
            };
            let pool = fresh.pool().await;
            sqlx::raw_sql("CREATE TABLE orders (note TEXT); INSERT INTO orders VALUES ('mine')")
                .execute(&pool)
                .await
                .unwrap();
            let err = $create(&fresh.url, &ShopSpec::demo()).await.unwrap_err();
            match &err {
                Error::TablesExist { tables, url } => {
                    assert_eq!(tables, &["orders"]);
                    assert!(url.contains(&fresh.name), "{url}");
                    assert!(!url.contains(":trueup-test@"), "no password: {url}");
                }
                other => panic!("{other:?}"),
            }
            assert!(err.to_string().contains("orders"), "{err}");
            assert_eq!(
                pool.strings("SELECT note FROM orders").await,
                ["mine"],
                "the table is untouched"
            );
            assert_eq!(pool.count($count_tables).await, 1, "nothing else created");
            fresh.drop_database(pool).await;
        }

        #[tokio::test]
        async fn an_unreachable_server_is_an_error_without_the_password() {
            let err = $create($url, &ShopSpec::demo()).await.unwrap_err();
            assert!(matches!(err, $unreachable { .. }), "{err:?}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    };
}
#[allow(unused_imports, reason = "used by the server tests, not by SQLite's")]
pub(crate) use server_tests;
