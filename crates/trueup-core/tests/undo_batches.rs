//! Undo of a batch larger than one restoring statement (500 rows): a row changed since the
//! repair refuses the whole batch, `--force` restores every row, and the undo's own journal
//! puts back what it overwrote (SQLite, PostgreSQL and MariaDB). And on PostgreSQL, a plan read in
//! two key ranges at once is whole and in key order, and batches applied two at a time are
//! journaled one after another, each its own.

mod support;

use std::path::Path;

use support::{TestDb, TestProject};
use trueup_core::cancel::Cancel;
use trueup_core::check::Selection;
use trueup_core::load::Project;
use trueup_core::repair::{self, ApplyOptions};
use trueup_shop::ShopSpec;

const RULE: &str = "ecommerce.order-total-matches-items";
/// Wrong totals planted: more than two restoring statements' worth, in one batch.
const PLANTED: u64 = 1_200;

async fn orders(db: &TestDb) -> String {
    match db.backend {
        "sqlite" => {
            let path = db.url.trim_start_matches("sqlite://");
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{path}"))
                .await
                .unwrap();
            let rows: Vec<String> = sqlx::query_scalar(
                "SELECT id || ',' || quote(customer_id) || ',' || quote(status) || ',' \
                 || quote(total_amount) || ',' || quote(created_at) FROM orders ORDER BY id",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            pool.close().await;
            rows.join("\n")
        }
        "mysql" => support::repair::table_text(db, "orders").await,
        _ => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            let text: Option<String> = sqlx::query_scalar(
                "SELECT string_agg(CAST(o AS TEXT), E'\\n' ORDER BY o.id) FROM orders AS o",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            pool.close().await;
            text.unwrap_or_default()
        }
    }
}

async fn undo(project: &Path, id: i64, force: bool) -> repair::UndoReport {
    let project = Project::load(project).unwrap();
    repair::undo(&project, "shop", id, force, &Cancel::new())
        .await
        .unwrap()
}

/// A shop with exactly PLANTED wrong totals, its project, and the plan of their repair.
async fn planted(
    backend: &str,
) -> Option<(
    TestDb,
    TestProject,
    Project,
    std::path::PathBuf,
    repair::PlanSummary,
)> {
    let spec = ShopSpec {
        orders: 1_500,
        problem_rate: 0.0,
        seed: 3,
    };
    let db = support::repair::shop_with(backend, &spec).await?;
    // Right totals everywhere, then PLANTED wrong ones.
    db.execute(
        "UPDATE orders SET total_amount = (SELECT SUM(i.quantity * i.unit_price) \
         FROM order_items AS i WHERE i.order_id = orders.id) \
         WHERE EXISTS (SELECT 1 FROM order_items AS i WHERE i.order_id = orders.id)",
    )
    .await;
    db.execute(&format!(
        "UPDATE orders SET total_amount = total_amount + 1 WHERE id IN (SELECT id FROM (SELECT id \
         FROM orders AS o WHERE EXISTS (SELECT 1 FROM order_items AS i WHERE i.order_id = o.id) \
         ORDER BY id LIMIT {PLANTED}) AS first)"
    ))
    .await;
    let files: Vec<(String, String)> = support::ecommerce_pack()
        .into_iter()
        .map(|(name, text)| (name, text.replace("max-rows = 1000", "max-rows = 100000")))
        .collect();
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let project = TestProject::with_source("shop", &db.url, &borrowed);
    let plan_file = project.dir.path().join("plan.jsonl");
    let loaded = Project::load(&project.path()).unwrap();
    let selection = Selection {
        rules: vec![RULE.into()],
        ..Selection::default()
    };
    let mut out = std::fs::File::create(&plan_file).unwrap();
    let summary = repair::plan(&loaded, &selection, None, &Cancel::new(), &mut out)
        .await
        .unwrap();
    drop(out);
    Some((db, project, loaded, plan_file, summary))
}

async fn a_large_batch_is_undone_whole(backend: &str) {
    let Some((db, project, loaded, plan_file, summary)) = planted(backend).await else {
        return;
    };
    assert_eq!(summary.rules[0].end.targets, PLANTED);
    let planted = orders(&db).await;
    let options = ApplyOptions {
        batch_size: 10_000,
        allow_new_findings: true,
        ..ApplyOptions::default()
    };
    let report = repair::apply(&loaded, &plan_file, &options, &Cancel::new(), &mut ())
        .await
        .unwrap();
    assert_eq!(report.rules[0].repaired, PLANTED, "{report:?}");
    let id = report.rules[0].repair.unwrap();

    // Someone changes one repaired row: the one batch is refused whole.
    // PostgreSQL keys are text in plans, SQLite's integers.
    let key = match &summary.rules[0].sample[3][0] {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    db.execute(&format!(
        "UPDATE orders SET status = status || '-HELD' WHERE id = {key}"
    ))
    .await;
    let held = orders(&db).await;
    let refused = undo(&project.path(), id, false).await;
    assert!(!refused.complete, "{refused:?}");
    assert_eq!(refused.conflicts.len(), 1, "{refused:?}");
    assert_eq!(
        refused.conflicts[0].what,
        "the row changed since the repair"
    );
    assert_eq!(orders(&db).await, held, "a refused undo restores nothing");

    // Forced, every row comes back, the held one too.
    let forced = undo(&project.path(), id, true).await;
    assert!(forced.complete, "{forced:?}");
    assert_eq!(forced.restored, PLANTED);
    assert_eq!(orders(&db).await, planted);

    // The undo journaled what it overwrote: undoing it gives back the held row as well.
    let redo = undo(&project.path(), forced.undo, false).await;
    assert!(redo.complete && redo.conflicts.is_empty(), "{redo:?}");
    assert_eq!(redo.restored, PLANTED);
    assert_eq!(orders(&db).await, held);
}

#[tokio::test]
async fn a_batch_of_1200_rows_is_refused_whole_forced_whole_and_redone_on_sqlite() {
    a_large_batch_is_undone_whole("sqlite").await;
}

#[tokio::test]
async fn a_batch_of_1200_rows_is_refused_whole_forced_whole_and_redone_on_postgres() {
    a_large_batch_is_undone_whole("postgres").await;
}

#[tokio::test]
async fn a_batch_of_1200_rows_is_refused_whole_forced_whole_and_redone_on_mysql() {
    a_large_batch_is_undone_whole("mysql").await;
}

#[tokio::test]
async fn a_plan_read_in_two_halves_is_whole_and_ordered_and_paired_batches_journal_apart() {
    let Some((db, project, loaded, plan_file, summary)) = planted("postgres").await else {
        return;
    };
    assert_eq!(summary.rules[0].end.targets, PLANTED);
    let wrong: Vec<i64> = {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let ids = sqlx::query_scalar(
            "SELECT o.id FROM orders AS o WHERE total_amount <> (SELECT SUM(i.quantity * i.unit_price) \
             FROM order_items AS i WHERE i.order_id = o.id) ORDER BY o.id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        ids
    };
    // The plan's targets, as written: the two ranges' rows one after the other, every
    // planted row once, in key order.
    let text = std::fs::read_to_string(&plan_file).unwrap();
    let keys: Vec<i64> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|line| line.get("target")?.get("key")?[0].as_str()?.parse().ok())
        .collect();
    assert_eq!(keys, wrong, "whole and in key order");
    let before = orders(&db).await;

    let options = ApplyOptions {
        batch_size: 100,
        allow_new_findings: true,
        ..ApplyOptions::default()
    };
    let report = repair::apply(&loaded, &plan_file, &options, &Cancel::new(), &mut ())
        .await
        .unwrap();
    assert!(!report.failed(), "{report:?}");
    assert_eq!(report.rules[0].repaired, PLANTED, "{report:?}");
    assert_eq!(report.rules[0].rows, PLANTED, "{report:?}");
    let id = report.rules[0].repair.unwrap();
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    // Twelve batches of 100, numbered 1 to 12, each a run of its own entry numbers, and
    // together every entry number from 0 once.
    let batches: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT batch, min(seq), max(seq), count(*) FROM trueup.journal WHERE repair_id = $1 \
         GROUP BY batch ORDER BY batch",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        batches.iter().map(|b| b.0).collect::<Vec<_>>(),
        (1..=12).collect::<Vec<i64>>()
    );
    for (batch, first, last, count) in &batches {
        assert_eq!((last - first + 1, *count), (100, 100), "batch {batch}");
    }
    let mut firsts: Vec<i64> = batches.iter().map(|b| b.1).collect();
    firsts.sort_unstable();
    assert_eq!(firsts, (0..12).map(|b| b * 100).collect::<Vec<i64>>());
    let changed: i64 = sqlx::query_scalar("SELECT rows_changed FROM trueup.repairs WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(changed, 1200);

    let undone = undo(&project.path(), id, false).await;
    assert!(undone.complete && undone.conflicts.is_empty(), "{undone:?}");
    assert_eq!(undone.restored, PLANTED);
    assert_eq!(orders(&db).await, before, "undo restores every batch");
}
