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
use trueup_shop::{Error, Planted, ShopSpec, create_postgres};

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

common::server_tests! {
    create: create_postgres,
    pool: PgPool,
    unreachable: Error::Postgres,
    unreachable_url: "postgres://someone:hunter2@127.0.0.1:1/nowhere",
    count_tables: "SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema()",
    moment_suffix: "",
}

#[tokio::test]
async fn the_demo_has_its_keys_indexes_and_types() {
    let Some((_, pool, fresh)) = shop(&ShopSpec::demo()).await else {
        return;
    };
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
