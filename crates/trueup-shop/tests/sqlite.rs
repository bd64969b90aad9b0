//! End to end: a shop written to SQLite has exactly the planted problems, as the runbook's
//! integrity queries (and the queries of `rules/ecommerce`) find them, and its decoys.

mod common;

use std::path::Path;

use common::Db;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use trueup_shop::{Error, Planted, ShopSpec, create_sqlite};

async fn open(path: &Path) -> SqlitePool {
    let options = SqliteConnectOptions::new().filename(path).read_only(true);
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap()
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
    common::assert_demo_problems(&pool, &planted).await;
}

#[tokio::test]
async fn the_demo_has_every_variety_of_problem() {
    let (_, pool, _dir) = shop(&ShopSpec::demo()).await;
    common::assert_demo_varieties(&pool).await;
}

#[tokio::test]
async fn the_demo_has_its_decoys() {
    let (_, pool, _dir) = shop(&ShopSpec::demo()).await;
    common::assert_demo_decoys(&pool).await;
}

#[tokio::test]
async fn the_demo_has_the_documented_shape() {
    let (_, pool, _dir) = shop(&ShopSpec::demo()).await;
    common::assert_shape(&pool, &ShopSpec::demo()).await;
    let indexes = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx_%'";
    assert_eq!(pool.count(indexes).await, 5);
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
    let (planted, pool, _dir) = shop(&common::LARGER_RATE).await;
    common::assert_larger_rate_counts(&planted);
    common::assert_found(&pool, &planted, "a larger rate").await;
}

#[tokio::test]
async fn other_seeds_also_match() {
    for spec in common::seeded_specs() {
        let (planted, pool, _dir) = shop(&spec).await;
        common::assert_found(&pool, &planted, &format!("seed {}", spec.seed)).await;
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
    common::assert_found(&pool, &planted, "the benchmark size").await;
}
