//! End to end: a shop written to SQLite has exactly the planted problems, as the runbook's
//! integrity queries (and the queries of `rules/ecommerce`) find them, and its decoys.

use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use trueup_shop::{Error, Planted, ShopSpec, create_sqlite};

const ORPHANED_ORDERS: &str = "
SELECT o.id FROM orders o
WHERE o.customer_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id)";

const DUPLICATE_EMAILS: &str = "
SELECT email FROM customers WHERE email IS NOT NULL GROUP BY email HAVING COUNT(*) > 1";

const WRONG_TOTALS: &str = "
SELECT o.id FROM orders o
JOIN (SELECT order_id, SUM(quantity * unit_price) AS items_total FROM order_items GROUP BY order_id) i
  ON i.order_id = o.id
WHERE ABS(o.total_amount - i.items_total) > 0.005";

const WRONG_STOCK: &str = "
SELECT p.id FROM products p
LEFT JOIN (SELECT product_id, SUM(quantity) AS counted FROM inventory GROUP BY product_id) i
  ON i.product_id = p.id
WHERE p.stock_quantity != COALESCE(i.counted, 0)";

/// The query of `rules/ecommerce/completed-orders-paid.toml`.
const BAD_PAYMENTS: &str = "
SELECT o.id AS order_id,
       o.total_amount AS order_total,
       COUNT(p.id) AS payments,
       SUM(CASE WHEN p.status <> 'COMPLETED' THEN 1 ELSE 0 END) AS unfinished_payments,
       SUM(CASE WHEN ABS(p.amount - o.total_amount) > 0.005 THEN 1 ELSE 0 END) AS wrong_amounts
FROM orders o
LEFT JOIN payments p ON p.order_id = o.id
WHERE o.status = 'COMPLETED'
GROUP BY o.id, o.total_amount
HAVING COUNT(p.id) = 0
    OR SUM(CASE WHEN p.status <> 'COMPLETED' THEN 1 ELSE 0 END) > 0
    OR SUM(CASE WHEN ABS(p.amount - o.total_amount) > 0.005 THEN 1 ELSE 0 END) > 0";

async fn open(path: &Path) -> SqlitePool {
    let options = SqliteConnectOptions::new().filename(path).read_only(true);
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap()
}

async fn column<T>(pool: &SqlitePool, sql: &'static str) -> Vec<T>
where
    T: Ord + Send + Unpin + for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    let mut values: Vec<T> = sqlx::query_scalar(sql).fetch_all(pool).await.unwrap();
    values.sort_unstable();
    values
}

async fn count(pool: &SqlitePool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// What the integrity queries find in the file.
async fn found(pool: &SqlitePool) -> Planted {
    Planted {
        orphaned_orders: column(pool, ORPHANED_ORDERS).await,
        duplicate_emails: column(pool, DUPLICATE_EMAILS).await,
        wrong_totals: column(pool, WRONG_TOTALS).await,
        wrong_stock: column(pool, WRONG_STOCK).await,
        bad_payments: column(pool, BAD_PAYMENTS).await,
    }
}

/// Writes the shop of `spec` to a new file and returns the planted problems and the file.
async fn shop(spec: &ShopSpec) -> (Planted, SqlitePool, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.db");
    let planted = create_sqlite(&path, spec).await.unwrap();
    assert_eq!(planted, Planted::for_spec(spec));
    (planted, open(&path).await, dir)
}

#[tokio::test]
async fn the_demo_has_exactly_the_planted_problems() {
    let (planted, pool, _dir) = shop(&ShopSpec::demo()).await;
    assert_eq!(found(&pool).await, planted);
    assert_eq!(planted.orphaned_orders.len(), 3);
    assert_eq!(planted.duplicate_emails.len(), 4);
    assert_eq!(planted.wrong_totals.len(), 5);
    assert_eq!(planted.wrong_stock.len(), 4);
    assert_eq!(planted.bad_payments.len(), 6);
}

#[tokio::test]
async fn the_demo_has_every_variety_of_problem() {
    let (_, pool, _dir) = shop(&ShopSpec::demo()).await;
    let one_cent = "
        SELECT COUNT(*) FROM orders o
        JOIN (SELECT order_id, SUM(quantity * unit_price) AS s FROM order_items GROUP BY order_id) i
          ON i.order_id = o.id
        WHERE ABS(o.total_amount - i.s - 0.01) < 0.001";
    assert!(
        count(&pool, one_cent).await >= 1,
        "a total one cent too high"
    );
    let large = "
        SELECT COUNT(*) FROM orders o
        JOIN (SELECT order_id, SUM(quantity * unit_price) AS s FROM order_items GROUP BY order_id) i
          ON i.order_id = o.id
        WHERE ABS(o.total_amount - i.s) >= 1.0";
    assert!(
        count(&pool, large).await >= 1,
        "a total at least a dollar off"
    );
    let group_of_three = "SELECT COUNT(*) FROM (SELECT email FROM customers WHERE email IS NOT NULL GROUP BY email HAVING COUNT(*) = 3)";
    assert!(
        count(&pool, group_of_three).await >= 1,
        "an email shared by three customers"
    );
    let stock_without_inventory = "
        SELECT COUNT(*) FROM products p
        WHERE p.stock_quantity > 0 AND NOT EXISTS (SELECT 1 FROM inventory i WHERE i.product_id = p.id)";
    assert!(
        count(&pool, stock_without_inventory).await >= 1,
        "stock without inventory"
    );

    let payments =
        format!("SELECT payments, unfinished_payments, wrong_amounts FROM ({BAD_PAYMENTS})");
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(payments))
        .fetch_all(&pool)
        .await
        .unwrap();
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
        count(&pool, statuses).await,
        2,
        "PENDING and FAILED payments of completed orders"
    );
}

#[tokio::test]
async fn the_demo_has_its_decoys() {
    let (_, pool, _dir) = shop(&ShopSpec::demo()).await;
    let pending = "
        SELECT COUNT(*) FROM orders o JOIN payments p ON p.order_id = o.id
        WHERE o.status = 'PENDING' AND p.status = 'PENDING' AND ABS(p.amount - o.total_amount) > 0.005";
    assert!(
        count(&pool, pending).await >= 1,
        "a pending payment of another amount"
    );
    let empty_product = "
        SELECT COUNT(*) FROM products p
        WHERE p.stock_quantity = 0 AND NOT EXISTS (SELECT 1 FROM inventory i WHERE i.product_id = p.id)";
    assert!(
        count(&pool, empty_product).await >= 1,
        "a product without inventory and stock 0"
    );
    let empty_order = "
        SELECT COUNT(*) FROM orders o
        WHERE o.status = 'CANCELLED' AND o.total_amount = 0
          AND NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id)";
    assert!(
        count(&pool, empty_order).await >= 1,
        "a cancelled order without items"
    );
    assert!(
        count(&pool, "SELECT COUNT(*) FROM customers WHERE email IS NULL").await >= 2,
        "two NULL emails"
    );
}

#[tokio::test]
async fn the_demo_has_the_documented_shape() {
    let (_, pool, _dir) = shop(&ShopSpec::demo()).await;
    let spec = ShopSpec::demo();
    let rows = |n: u64| i64::try_from(n).unwrap();
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM orders").await,
        rows(spec.orders)
    );
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM customers").await,
        rows(spec.customers())
    );
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM products").await,
        rows(spec.products())
    );
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(*) FROM orders WHERE created_at NOT BETWEEN '2025' AND '2027'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(*) FROM payments WHERE created_at NOT BETWEEN '2025' AND '2027'"
        )
        .await,
        0
    );
    let indexes = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx_%'";
    assert_eq!(count(&pool, indexes).await, 5);
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        journal, "delete",
        "a plain rollback-journal file, readable read-only"
    );
}

#[tokio::test]
async fn a_larger_rate_plants_proportionally_more() {
    let spec = ShopSpec {
        orders: 5000,
        problem_rate: 0.1,
        seed: 7,
    };
    let (planted, pool, _dir) = shop(&spec).await;
    assert_eq!(planted.orphaned_orders.len(), 500);
    assert_eq!(planted.wrong_totals.len(), 500);
    assert_eq!(planted.bad_payments.len(), 500);
    assert_eq!(planted.duplicate_emails.len(), 50);
    assert_eq!(planted.wrong_stock.len(), 67);
    assert_eq!(found(&pool).await, planted);
}

#[tokio::test]
async fn other_seeds_also_match() {
    for seed in [0, 1, 2, 3, u64::MAX] {
        let spec = ShopSpec {
            orders: 300,
            problem_rate: 0.01,
            seed,
        };
        let (planted, pool, _dir) = shop(&spec).await;
        assert_eq!(found(&pool).await, planted, "seed {seed}");
    }
}

#[tokio::test]
async fn an_existing_file_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.db");
    std::fs::write(&path, b"mine").unwrap();
    let err = create_sqlite(&path, &ShopSpec::demo()).await.unwrap_err();
    assert!(matches!(err, Error::Exists { .. }), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), b"mine");
}

/// The benchmark size: `cargo test -p trueup-shop --release -- --ignored`.
#[tokio::test]
#[ignore = "large: 250k orders, about a million items"]
async fn a_large_shop_has_exactly_the_planted_problems() {
    let spec = ShopSpec {
        orders: 250_000,
        problem_rate: 0.001,
        seed: 42,
    };
    let (planted, pool, _dir) = shop(&spec).await;
    assert_eq!(found(&pool).await, planted);
}
