//! The bundled plugin pack (`rules/plugins/`, running the example plugins of `plugins/`,
//! built from source) against the demo shop, on SQLite and on PostgreSQL: each rule reports
//! exactly the planted rows.

mod support;
#[path = "../../../tests/support/wasm.rs"]
mod wasm;

use support::{TestDb, run_project};
use trueup_shop::{Planted, ShopSpec};

async fn check(url: &str, planted: &Planted) {
    // Builds every example plugin; the rules name their .wasm files in plugins/target/.
    wasm::plugin("plugins", "email_syntax");
    let dir = tempfile::tempdir().unwrap();
    let pack = wasm::repo_root().join("rules/plugins");
    std::fs::write(
        dir.path().join("trueup.toml"),
        format!(
            "rules = [\"{}\"]\n\n[sources.shop]\nurl = \"{url}\"\n",
            pack.display()
        ),
    )
    .unwrap();
    let result = run_project(&dir.path().join("trueup.toml")).await;
    let expected = planted.plugin_expected_findings();
    assert_eq!(expected.len(), 4, "one rule per example plugin");
    assert_eq!(result.outcomes.len(), 4, "the pack's four rules ran");
    result.assert_found(&expected);
}

/// A shop with many planted problems of every kind.
fn spec() -> ShopSpec {
    ShopSpec {
        orders: 6000,
        problem_rate: 0.02,
        seed: 11,
    }
}

#[tokio::test]
async fn plugin_pack_finds_exactly_the_planted_problems_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.db");
    let planted = trueup_shop::create_sqlite(&path, &spec()).await.unwrap();
    check(&format!("sqlite://{}", path.display()), &planted).await;
}

#[tokio::test]
async fn plugin_pack_finds_exactly_the_planted_problems_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let planted = trueup_shop::create_postgres(&db.url, &spec())
        .await
        .unwrap();
    check(&db.url, &planted).await;
}
