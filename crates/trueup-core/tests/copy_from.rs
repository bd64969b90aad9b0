//! `copy-from` repairs of `reconcile` rules between real databases (PostgreSQL to
//! PostgreSQL, SQLite to PostgreSQL, PostgreSQL to MariaDB): after apply the rule finds
//! nothing, undo puts the repaired side back exactly, `on-extra = "keep"` keeps the rows
//! only the repaired side has, the plan shows the statements, and rows changed on either
//! side since the plan are skipped.

mod support;

use support::repair::{apply, fresh, plan_to, table_text};
use support::{TestDb, TestProject, run_project};
use trueup_core::check::Selection;
use trueup_core::repair::{ApplyOptions, Skip};

const RULE: &str = r#"
[[rule]]
id = "orders-match-invoices"
title = "Invoices match orders"
severity = "high"
source = "orders"
[rule.detector]
kind = "reconcile"
key = ["id"]
columns = ["status", "total"]
map = { id = "order_id", total = "amount" }
tolerance = { total = 0.005 }
left = { table = "orders" }
right = { source = "billing", table = "invoices" }
[rule.repair]
strategy = "copy-from"
authoritative = "left"
max-rows = 100
"#;

/// The orders service (left, authoritative) and the billing service (right): invoices 3
/// and 7 missing, 60 and 61 extra, 4 of another status, 5 of another amount, 6 within the
/// tolerance (the same); `note` is billing's own column.
async fn services(left: &str, right: &str) -> Option<(TestDb, TestDb, TestProject)> {
    let orders = fresh(left).await?;
    let billing = fresh(right).await?;
    let mut rows = Vec::new();
    let mut invoices = Vec::new();
    for id in 1..=40 {
        let total = format!("{id}.50");
        rows.push(format!("({id}, 'paid', {total})"));
        let (status, amount) = match id {
            3 | 7 => continue,
            4 => ("'refunded'", total),
            5 => ("'paid'", "99.99".to_owned()),
            6 => ("'paid'", "6.504".to_owned()),
            _ => ("'paid'", total),
        };
        invoices.push(format!("({id}, {status}, {amount}, 'n{id}')"));
    }
    invoices.push("(60, 'paid', 1.00, 'stray')".to_owned());
    invoices.push("(61, NULL, 2.00, NULL)".to_owned());
    orders
        .execute(&format!(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, status VARCHAR(20), total DECIMAL(10,2));
             INSERT INTO orders VALUES {};",
            rows.join(", ")
        ))
        .await;
    billing
        .execute(&format!(
            "CREATE TABLE invoices (order_id INTEGER PRIMARY KEY, status VARCHAR(20),
               amount DECIMAL(10,3), note VARCHAR(20));
             INSERT INTO invoices VALUES {};",
            invoices.join(", ")
        ))
        .await;
    let project = TestProject::with_sources(
        &[("orders", &orders.url), ("billing", &billing.url)],
        &[("reconcile.toml", RULE)],
    );
    Some((orders, billing, project))
}

fn findings(result: &support::RunResult) -> Vec<String> {
    result.keys("orders-match-invoices")
}

/// Plans the six differences; checks that they repair `table` of `source` with two
/// inserts, two updates and two deletes; returns the plan's file and summary.
async fn plans(
    project: &TestProject,
    source: &str,
    table: &str,
) -> (std::path::PathBuf, trueup_core::repair::PlanSummary) {
    let plan_file = project.dir.path().join("plan.jsonl");
    let summary = plan_to(&project.path(), &Selection::default(), &plan_file).await;
    assert!(summary.refused.is_empty(), "{:?}", summary.refused);
    let planned = &summary.rules[0];
    assert_eq!(planned.line.source, source, "the repaired side");
    let counts = &planned.end.rows[table];
    assert_eq!((counts.insert, counts.update, counts.delete), (2, 2, 2));
    (plan_file, summary)
}

/// Applies the plan of the six differences; checks that the rule then finds nothing and
/// that the authoritative `table` of `db` is still `before`; returns the repair's id.
async fn applies(
    project: &TestProject,
    plan_file: &std::path::Path,
    (db, table, before): (&TestDb, &str, &str),
) -> i64 {
    let report = apply(&project.path(), plan_file, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(!report.failed(), "{report:?}");
    let rule = &report.rules[0];
    assert_eq!((rule.repaired, rule.rows), (6, 6), "{rule:?}");
    assert_eq!(
        findings(&run_project(&project.path()).await),
        Vec::<String>::new(),
        "the rule finds nothing after the copy"
    );
    assert_eq!(
        table_text(db, table).await,
        before,
        "the authoritative side is untouched"
    );
    rule.repair.unwrap()
}

/// Undoes `repair` on `source` and checks that `table` of `db` is `before` again.
async fn undoes(
    project: &TestProject,
    source: &str,
    repair: i64,
    db: &TestDb,
    table: &str,
    before: &str,
) {
    let loaded = trueup_core::load::Project::load(&project.path()).unwrap();
    let undone = trueup_core::repair::undo(
        &loaded,
        source,
        repair,
        false,
        &trueup_core::cancel::Cancel::new(),
    )
    .await
    .unwrap();
    assert!(undone.complete && undone.conflicts.is_empty(), "{undone:?}");
    assert_eq!(
        table_text(db, table).await,
        before,
        "undo puts the repaired side back exactly"
    );
}

async fn copies_and_undoes(left: &str, right: &str) {
    let Some((orders, billing, project)) = services(left, right).await else {
        return;
    };
    let found = run_project(&project.path()).await;
    assert_eq!(
        findings(&found),
        ["id=3", "id=4", "id=5", "id=60", "id=61", "id=7"],
        "{:?}",
        found.error("orders-match-invoices")
    );
    let before = (
        table_text(&orders, "orders").await,
        table_text(&billing, "invoices").await,
    );
    let (plan_file, summary) = plans(&project, "billing", "invoices").await;
    let planned = &summary.rules[0];
    assert_eq!(planned.end.targets, 6);
    let statements = planned.line.statements.join("\n");
    for part in [
        "INSERT INTO",
        "UPDATE",
        "DELETE",
        "FOR UPDATE",
        "FROM \"orders\"",
    ] {
        assert!(
            statements.contains(part) || statements.contains(&part.replace('"', "`")),
            "{part}: {statements}"
        );
    }

    let repair = applies(&project, &plan_file, (&orders, "orders", &before.0)).await;
    let invoices = table_text(&billing, "invoices").await;
    assert!(
        invoices.contains("n4") && invoices.contains("n5"),
        "updated rows keep their other columns: {invoices}"
    );

    undoes(&project, "billing", repair, &billing, "invoices", &before.1).await;
    assert_eq!(findings(&run_project(&project.path()).await).len(), 6);
}

#[tokio::test]
async fn copy_from_postgres_to_postgres_repairs_and_undoes() {
    copies_and_undoes("postgres", "postgres").await;
}

#[tokio::test]
async fn copy_from_sqlite_to_postgres_repairs_and_undoes() {
    copies_and_undoes("sqlite", "postgres").await;
}

#[tokio::test]
async fn copy_from_postgres_to_mariadb_repairs_and_undoes() {
    copies_and_undoes("postgres", "mysql").await;
}

/// `on-extra = "keep"`: the rows only the repaired side has stay, and stay findings.
#[tokio::test]
async fn on_extra_keep_keeps_the_extra_rows() {
    let Some((_orders, billing, project)) = services("sqlite", "postgres").await else {
        return;
    };
    let rule = RULE.replace("max-rows = 100", "max-rows = 100\non-extra = \"keep\"");
    std::fs::write(project.dir.path().join("rules/reconcile.toml"), rule).unwrap();
    let plan_file = project.dir.path().join("plan.jsonl");
    let summary = plan_to(&project.path(), &Selection::default(), &plan_file).await;
    let counts = &summary.rules[0].end.rows["invoices"];
    assert_eq!((counts.insert, counts.update, counts.delete), (2, 2, 0));
    let report = apply(&project.path(), &plan_file, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(!report.failed(), "{report:?}");
    assert_eq!(
        findings(&run_project(&project.path()).await),
        ["id=60", "id=61"],
        "the extra invoices are kept"
    );
    let invoices = table_text(&billing, "invoices").await;
    assert!(invoices.contains("stray"), "{invoices}");
}

/// A repaired row changed since the plan, and an authoritative row changed since the plan,
/// are both skipped and keep their values.
#[tokio::test]
async fn rows_changed_on_either_side_since_the_plan_are_skipped() {
    let Some((orders, billing, project)) = services("postgres", "postgres").await else {
        return;
    };
    let plan_file = project.dir.path().join("plan.jsonl");
    plan_to(&project.path(), &Selection::default(), &plan_file).await;
    billing
        .execute("UPDATE invoices SET note = 'held' WHERE order_id = 4")
        .await;
    orders
        .execute("UPDATE orders SET total = 555.55 WHERE id = 5")
        .await;
    let report = apply(&project.path(), &plan_file, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(!report.failed(), "{report:?}");
    let rule = &report.rules[0];
    assert_eq!(rule.skipped.get(&Skip::Changed), Some(&1), "{rule:?}");
    assert_eq!(rule.skipped.get(&Skip::SourceChanged), Some(&1), "{rule:?}");
    assert_eq!(rule.repaired, 4, "{rule:?}");
    let invoices = table_text(&billing, "invoices").await;
    assert!(
        invoices.contains("(4,refunded,"),
        "the held row stands: {invoices}"
    );
    assert!(
        invoices.contains("(5,paid,99.990"),
        "not copied from a changed order: {invoices}"
    );
}

/// `authoritative = "right"`: billing is the truth and the orders service is repaired from
/// it, through the column map the other way: the invoices only billing has are inserted as
/// orders, the orders billing lacks are deleted, and 4 and 5 take billing's status and
/// amount; undo puts the orders back exactly.
#[tokio::test]
async fn authoritative_right_repairs_the_left_side() {
    let Some((orders, billing, project)) = services("postgres", "postgres").await else {
        return;
    };
    let rule = RULE.replace("authoritative = \"left\"", "authoritative = \"right\"");
    std::fs::write(project.dir.path().join("rules/reconcile.toml"), rule).unwrap();
    let before = (
        table_text(&orders, "orders").await,
        table_text(&billing, "invoices").await,
    );
    let (plan_file, _) = plans(&project, "orders", "orders").await;

    let repair = applies(&project, &plan_file, (&billing, "invoices", &before.1)).await;
    let repaired = table_text(&orders, "orders").await;
    for (row, wanted) in [("60", "paid"), ("4", "refunded"), ("5", "99.99"), ("3", "")] {
        let line = repaired
            .lines()
            .find(|line| line.trim_start_matches('(').split(',').next() == Some(row));
        match wanted {
            "" => assert!(line.is_none(), "order {row} is deleted: {repaired}"),
            _ => assert!(
                line.is_some_and(|l| l.contains(wanted)),
                "order {row} has {wanted}: {repaired}"
            ),
        }
    }

    undoes(&project, "orders", repair, &orders, "orders", &before.0).await;
}
