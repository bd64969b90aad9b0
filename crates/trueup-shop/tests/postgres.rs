//! End to end: a shop loaded into PostgreSQL has exactly the planted problems, as the
//! runbook's integrity queries (and the queries of `rules/ecommerce`) find them, and its
//! decoys; its money is exact.
//!
//! Needs a server: `TRUEUP_TEST_PG_URL` (an admin URL, as `scripts/test` exports). Without
//! one the tests are skipped with a note, unless `TRUEUP_REQUIRE_PG` is set.

mod common;
#[path = "../../../tests/support/pg.rs"]
mod pg;

use std::sync::atomic::{AtomicU32, Ordering};

use common::Db;
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgPool;
use trueup_shop::{Cents, Error, Planted, Shop, ShopSpec, create_postgres};

/// A new empty database on the test server, dropped by [`Fresh::drop_database`].
struct Fresh {
    admin: String,
    name: String,
    url: String,
}

impl Fresh {
    async fn new() -> Option<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let admin = pg::admin_url()?;
        let name = format!(
            "trueup_shop_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let pool = PgPool::connect(&admin)
            .await
            .expect("connect to the PostgreSQL test server");
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&pool)
            .await
            .expect("create database");
        pool.close().await;
        let url = with_database(&admin, &name);
        Some(Self { admin, name, url })
    }

    async fn pool(&self) -> PgPool {
        PgPool::connect(&self.url)
            .await
            .expect("connect to the test database")
    }

    async fn drop_database(self, pool: PgPool) {
        pool.close().await;
        let admin = PgPool::connect(&self.admin).await.unwrap();
        let drop = format!("DROP DATABASE \"{}\" WITH (FORCE)", self.name);
        sqlx::raw_sql(AssertSqlSafe(drop))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
    }
}

/// `url` pointing at database `name` instead (query parameters kept).
fn with_database(url: &str, name: &str) -> String {
    let (url, query) = match url.split_once('?') {
        Some((url, query)) => (url, Some(query)),
        None => (url, None),
    };
    let (server, _) = url.rsplit_once('/').expect("a URL ending in /database");
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// Loads the shop of `spec` into a new database; `None` without a test server.
async fn shop(spec: &ShopSpec) -> Option<(Planted, PgPool, Fresh)> {
    let fresh = Fresh::new().await?;
    let planted = create_postgres(&fresh.url, spec).await.unwrap();
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
async fn the_demo_has_the_documented_shape_keys_and_indexes() {
    let spec = ShopSpec::demo();
    let Some((_, pool, fresh)) = shop(&spec).await else {
        return;
    };
    common::assert_shape(&pool, &spec).await;
    let indexes = "SELECT COUNT(*) FROM pg_indexes
        WHERE schemaname = current_schema() AND indexname LIKE 'idx_%'";
    assert_eq!(pool.count(indexes).await, 5);
    let keys = "SELECT COUNT(*) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
        WHERE c.contype = 'p' AND t.relnamespace = current_schema()::regnamespace";
    assert_eq!(pool.count(keys).await, 6, "a primary key on each table");
    let foreign = "SELECT COUNT(*) FROM pg_constraint WHERE contype = 'f'";
    assert_eq!(
        pool.count(foreign).await,
        0,
        "no foreign keys: the data breaks them"
    );
    let analyzed = "SELECT COUNT(*) FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL";
    assert_eq!(pool.count(analyzed).await, 6);
    let types = "SELECT table_name || '.' || column_name || ' ' || data_type
        FROM information_schema.columns
        WHERE table_schema = current_schema()
          AND column_name IN ('price', 'total_amount', 'unit_price', 'amount', 'created_at')";
    assert_eq!(
        pool.strings(types).await,
        [
            "customers.created_at timestamp without time zone",
            "order_items.unit_price numeric",
            "orders.created_at timestamp without time zone",
            "orders.total_amount numeric",
            "payments.amount numeric",
            "payments.created_at timestamp without time zone",
            "products.created_at timestamp without time zone",
            "products.price numeric",
        ]
    );
    fresh.drop_database(pool).await;
}

#[tokio::test]
async fn money_and_moments_are_stored_exactly() {
    let spec = ShopSpec::demo();
    let Some((_, pool, fresh)) = shop(&spec).await else {
        return;
    };
    let shop = Shop::new(&spec);
    let total = Cents(shop.orders().map(|o| o.total_amount.0).sum());
    let items = Cents(shop.order_items().map(|i| i.unit_price.0).sum());
    let paid = Cents(shop.payments().map(|p| p.amount.0).sum());
    let sums = "SELECT (SELECT SUM(total_amount) FROM orders)::text
        UNION ALL SELECT (SELECT SUM(unit_price) FROM order_items)::text
        UNION ALL SELECT (SELECT SUM(amount) FROM payments)::text";
    let mut expected = vec![total.to_string(), items.to_string(), paid.to_string()];
    expected.sort_unstable();
    assert_eq!(pool.strings(sums).await, expected);

    let first = shop.orders().next().unwrap();
    let row: (String, String) =
        sqlx::query_as("SELECT total_amount::text, created_at::text FROM orders WHERE id = $1")
            .bind(first.id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        row,
        (first.total_amount.to_string(), first.created_at.to_string())
    );
    let emails = "SELECT COUNT(*) FROM customers WHERE email IS NULL";
    let nulls = shop.customers().filter(|c| c.email.is_none()).count();
    assert_eq!(pool.count(emails).await, i64::try_from(nulls).unwrap());
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
    let err = create_postgres(&fresh.url, &ShopSpec::demo())
        .await
        .unwrap_err();
    match &err {
        Error::TablesExist { tables, url } => {
            assert_eq!(tables, &["orders"]);
            assert!(url.contains(&fresh.name), "{url}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("orders"), "{err}");
    assert_eq!(
        pool.strings("SELECT note FROM orders").await,
        ["mine"],
        "the table is untouched"
    );
    let tables = "SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema()";
    assert_eq!(pool.count(tables).await, 1, "nothing else created");
    fresh.drop_database(pool).await;
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_without_the_password() {
    let err = create_postgres(
        "postgres://someone:hunter2@127.0.0.1:1/nowhere",
        &ShopSpec::demo(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Postgres { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}
