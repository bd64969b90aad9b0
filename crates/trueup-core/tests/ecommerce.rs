//! The bundled e-commerce pack (`rules/ecommerce/`) against the demo shop, on SQLite,
//! PostgreSQL and MariaDB: each rule reports exactly the planted rows, and no decoy.

mod support;

use support::{TestDb, TestProject, run_project};
use trueup_shop::{Planted, ShopSpec};

async fn check(url: &str, planted: &Planted) {
    let files = support::ecommerce_pack();
    assert_eq!(files.len(), 5, "the runbook's five checks");
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let project = TestProject::with_source("shop", url, &borrowed);
    let result = run_project(&project.path()).await;
    result.assert_found(&planted.expected_findings());
}

/// A shop with many planted problems of every kind, not only the demo's handful.
fn spec() -> ShopSpec {
    ShopSpec {
        orders: 6000,
        problem_rate: 0.02,
        seed: 7,
    }
}

#[tokio::test]
async fn ecommerce_pack_finds_exactly_the_planted_problems_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.db");
    let planted = trueup_shop::create_sqlite(&path, &spec()).await.unwrap();
    assert!(
        planted.wrong_totals.len() >= 100,
        "the spec plants many problems"
    );
    check(&format!("sqlite://{}", path.display()), &planted).await;
}

#[tokio::test]
async fn ecommerce_pack_finds_exactly_the_planted_problems_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let planted = trueup_shop::create_postgres(&db.url, &spec())
        .await
        .unwrap();
    check(&db.url, &planted).await;
}

#[tokio::test]
async fn ecommerce_pack_finds_exactly_the_planted_problems_on_mariadb() {
    let Some(db) = TestDb::mysql().await else {
        return;
    };
    let planted = trueup_shop::create_mysql(&db.url, &spec()).await.unwrap();
    check(&db.url, &planted).await;
}
