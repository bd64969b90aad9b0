//! Helpers of the repair tests: the demo shop on each backend, projects of the e-commerce
//! pack, tables as text to compare, and plan, apply and undo through the core API.

use std::path::Path;

use trueup_core::cancel::Cancel;
use trueup_core::check::Selection;
use trueup_core::load::Project;
use trueup_core::repair::{self, ApplyOptions, ApplyReport, PlanSummary};
use trueup_shop::ShopSpec;

use super::{TestDb, TestProject};

pub const TABLES: [&str; 6] = [
    "customers",
    "orders",
    "order_items",
    "products",
    "inventory",
    "payments",
];

/// The query `select` makes of the text of a row: each of `columns` written by `cell`,
/// joined by `join`.
fn rows_query(
    columns: &[String],
    cell: impl Fn(&str) -> String,
    join: &str,
    select: impl Fn(String) -> String,
) -> String {
    select(
        columns
            .iter()
            .map(|c| cell(c))
            .collect::<Vec<_>>()
            .join(join),
    )
}

/// Every row of `table`, as text, in a stable order: equal texts mean equal tables.
pub async fn table_text(db: &TestDb, table: &str) -> String {
    match db.backend {
        "sqlite" => {
            let path = db.url.trim_start_matches("sqlite://");
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{path}"))
                .await
                .unwrap();
            let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?1)")
                .bind(table)
                .fetch_all(&pool)
                .await
                .unwrap();
            let sql = rows_query(
                &columns,
                |c| format!("quote(\"{c}\")"),
                " || ',' || ",
                |row| format!("SELECT {row} FROM \"{table}\" ORDER BY 1"),
            );
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            rows.join("\n")
        }
        "mysql" => {
            let pool = sqlx::MySqlPool::connect(&db.url).await.unwrap();
            let columns: Vec<String> = sqlx::query_scalar(
                "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position",
            )
            .bind(table)
            .fetch_all(&pool)
            .await
            .unwrap();
            // As PostgreSQL writes a row: `(1,text,)`, NULL as nothing.
            let sql = rows_query(
                &columns,
                |c| format!("IFNULL(CAST(`{c}` AS CHAR), '')"),
                ", ",
                |row| {
                    format!(
                        "SELECT CAST(CONCAT('(', CONCAT_WS(',', {row}), ')') AS CHAR) AS r FROM `{table}` ORDER BY r"
                    )
                },
            );
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            rows.join("\n")
        }
        _ => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            let text: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT string_agg(CAST(x AS TEXT), E'\\n' ORDER BY CAST(x AS TEXT)) FROM \"{table}\" AS x"
            )))
            .fetch_one(&pool)
            .await
            .unwrap();
            pool.close().await;
            text.unwrap_or_default()
        }
    }
}

pub async fn tables(db: &TestDb) -> Vec<String> {
    let mut all = Vec::new();
    for table in TABLES {
        all.push(table_text(db, table).await);
    }
    all
}

pub async fn shop(backend: &str) -> Option<TestDb> {
    let spec = ShopSpec {
        orders: 1500,
        problem_rate: 0.02,
        seed: 11,
    };
    shop_with(backend, &spec).await
}

/// The demo shop of `spec` in a fresh database of `backend` (none without its server).
pub async fn shop_with(backend: &str, spec: &ShopSpec) -> Option<TestDb> {
    let db = match backend {
        "sqlite" => {
            let db = TestDb::sqlite();
            let path = db.url.trim_start_matches("sqlite://").to_owned();
            trueup_shop::create_sqlite(Path::new(&path), spec)
                .await
                .unwrap();
            db
        }
        "mysql" => {
            let db = TestDb::mysql().await?;
            trueup_shop::create_mysql(&db.url, spec).await.unwrap();
            db
        }
        _ => {
            let db = TestDb::postgres().await?;
            trueup_shop::create_postgres(&db.url, spec).await.unwrap();
            db
        }
    };
    Some(db)
}

pub fn pack_project(url: &str) -> TestProject {
    let files = super::ecommerce_pack();
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    TestProject::with_source("shop", url, &borrowed)
}

pub async fn plan_to(project: &Path, selection: &Selection, file: &Path) -> PlanSummary {
    let project = Project::load(project).unwrap();
    let mut out = std::fs::File::create(file).unwrap();
    repair::plan(&project, selection, None, &Cancel::new(), &mut out)
        .await
        .unwrap()
}

pub async fn apply(
    project: &Path,
    plan: &Path,
    options: &ApplyOptions,
) -> trueup_core::Result<ApplyReport> {
    let project = Project::load(project).unwrap();
    repair::apply(&project, plan, options, &Cancel::new(), &mut ()).await
}

pub async fn undo(project: &Path, id: i64, force: bool) -> trueup_core::Result<repair::UndoReport> {
    let project = Project::load(project).unwrap();
    repair::undo(&project, "shop", id, force, &Cancel::new()).await
}

pub const ORPHANS: &str = r#"
[[rule]]
id = "orphans"
title = "Orders without customer"
severity = "high"
[rule.detector]
kind = "foreign-key"
table = "orders"
columns = ["customer_id"]
references = "customers"
[rule.repair]
strategy = "delete"
"#;

pub async fn fresh(backend: &str) -> Option<TestDb> {
    match backend {
        "sqlite" => Some(TestDb::sqlite()),
        "mysql" => TestDb::mysql().await,
        _ => TestDb::postgres().await,
    }
}

/// A project of the orphans rule with its repair replaced by `repair`, on `schema`.
pub async fn orphans_with(
    backend: &str,
    schema: &str,
    repair: &str,
) -> Option<(TestDb, TestProject)> {
    let db = fresh(backend).await?;
    db.execute(schema).await;
    let rule = ORPHANS.replace("[rule.repair]\nstrategy = \"delete\"\n", repair);
    let project = TestProject::with_source("shop", &db.url, &[("orphans.toml", &rule)]);
    Some((db, project))
}
