//! Each repair strategy against real SQLite files, PostgreSQL and MariaDB databases: cascades
//! (declared and the database's own), merges, quarantine, foreign keys that refuse, triggers,
//! `sql` statements and `update`, each journaled and undone.

mod support;

use support::repair::*;
use support::{TestProject, run_project};
use trueup_core::cancel::Cancel;
use trueup_core::check::Selection;
use trueup_core::load::Project;
use trueup_core::repair::{self, ApplyOptions};
use trueup_core::store::Store;

const CASCADE_SCHEMA: &str = "
CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total_amount REAL);
CREATE TABLE order_items (id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE, quantity INTEGER);
INSERT INTO customers VALUES (1, 'a@example.com');
INSERT INTO orders VALUES (10, 1, 5.0), (11, 99, 7.5), (12, 98, 1.25);
INSERT INTO order_items VALUES (100, 10, 1), (101, 11, 2), (102, 11, 3), (103, 12, 4);
";

async fn cascades_are_journaled(backend: &str) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    db.execute(CASCADE_SCHEMA).await;
    let project = TestProject::with_source("shop", &db.url, &[("orphans.toml", ORPHANS)]);
    let plan_file = project.dir.path().join("plan.jsonl");
    let before = [
        table_text(&db, "orders").await,
        table_text(&db, "order_items").await,
    ];
    let summary = plan_to(&project.path(), &Selection::default(), &plan_file).await;
    let rows = &summary.rules[0].end.rows;
    assert_eq!(rows["orders"].delete, 2, "{rows:?}");
    assert_eq!(
        rows["order_items"].delete, 3,
        "the cascade, counted: {rows:?}"
    );
    let report = apply(&project.path(), &plan_file, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(
        report.rules[0].rows, 5,
        "orders and their cascaded items: {report:?}"
    );
    assert_eq!(table_text(&db, "order_items").await.lines().count(), 1);
    let undone = undo(&project.path(), report.rules[0].repair.unwrap(), false)
        .await
        .unwrap();
    assert!(undone.complete, "{undone:?}");
    assert_eq!(
        [
            table_text(&db, "orders").await,
            table_text(&db, "order_items").await
        ],
        before,
        "undo brings the cascaded items back"
    );
}

#[tokio::test]
async fn on_delete_cascade_children_are_journaled_and_undone_on_sqlite() {
    cascades_are_journaled("sqlite").await;
}

#[tokio::test]
async fn on_delete_cascade_children_are_journaled_and_undone_on_postgres() {
    cascades_are_journaled("postgres").await;
}

#[tokio::test]
async fn on_delete_cascade_children_are_journaled_and_undone_on_mysql() {
    cascades_are_journaled("mysql").await;
}

#[tokio::test]
async fn merge_duplicates_leaves_no_orphaned_orders_and_no_duplicate_emails() {
    merge_leaves_no_orphans("sqlite").await;
}

#[tokio::test]
async fn merge_duplicates_leaves_no_orphaned_orders_and_no_duplicate_emails_on_mysql() {
    merge_leaves_no_orphans("mysql").await;
}

async fn merge_leaves_no_orphans(backend: &str) {
    let Some(db) = shop(backend).await else {
        return;
    };
    let project = pack_project(&db.url);
    let plan_file = project.dir.path().join("plan.jsonl");
    let selection = Selection {
        rules: vec!["ecommerce.duplicate-customer-emails".into()],
        ..Selection::default()
    };
    let orphans_before = run_project(&project.path())
        .await
        .keys("ecommerce.orphaned-orders");
    plan_to(&project.path(), &selection, &plan_file).await;
    let report = apply(&project.path(), &plan_file, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(!report.failed(), "{report:?}");
    let after = run_project(&project.path()).await;
    assert!(after.keys("ecommerce.duplicate-customer-emails").is_empty());
    assert_eq!(
        after.keys("ecommerce.orphaned-orders"),
        orphans_before,
        "re-pointed orders are not orphans"
    );
}

const DUPLICATES: &str = r#"
[[rule]]
id = "duplicate-emails"
title = "Duplicate emails"
severity = "high"
[rule.detector]
kind = "unique"
table = "customers"
columns = ["email"]
[rule.repair]
strategy = "merge-duplicates"
keep = "created_at ASC, id ASC"
references = [{ table = "orders", column = "customer_id" }]
"#;

/// `losers = "quarantine"`: a merge moves the rows it does not keep to the quarantine table,
/// tagged with the repair and the rule, and undo moves them back.
async fn merged_losers_go_to_quarantine(backend: &str) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    db.execute(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, created_at TEXT);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers (id));
         INSERT INTO customers VALUES (1, 'a@example.com', '2026-01-01'), (2, 'a@example.com', '2026-02-01'),
           (3, 'a@example.com', '2026-03-01'), (4, 'b@example.com', '2026-01-01'), (5, 'c@example.com', '2026-01-01'),
           (6, 'c@example.com', '2026-01-02');
         INSERT INTO orders VALUES (10, 2), (11, 3), (12, 4), (13, 6);",
    )
    .await;
    let before = [
        table_text(&db, "customers").await,
        table_text(&db, "orders").await,
    ];
    let rule = DUPLICATES.replace("references = [", "losers = \"quarantine\"\nreferences = [");
    let project = TestProject::with_source("shop", &db.url, &[("dups.toml", &rule)]);
    let plan_file = project.dir.path().join("plan.jsonl");
    let summary = plan_to(&project.path(), &Selection::default(), &plan_file).await;
    assert!(summary.refused.is_empty(), "{:?}", summary.refused);
    let rows = &summary.rules[0].end.rows;
    assert_eq!(rows["customers"].delete, 3, "{rows:?}");
    assert_eq!(rows["customers_quarantine"].insert, 3, "{rows:?}");
    let report = apply(&project.path(), &plan_file, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(!report.failed(), "{report:?}");
    let customers = table_text(&db, "customers").await;
    assert_eq!(customers.lines().count(), 3, "{customers}");
    let quarantined = table_text(&db, "customers_quarantine").await;
    assert_eq!(quarantined.lines().count(), 3, "{quarantined}");
    for id in ["2", "3", "6"] {
        assert!(
            quarantined
                .lines()
                .any(|l| l.trim_start_matches('(').starts_with(&format!("{id},"))),
            "customer {id} is quarantined: {quarantined}"
        );
    }
    let repair_id = report.rules[0].repair.unwrap();
    assert!(
        quarantined
            .lines()
            .all(|l| l.contains(&format!(",{repair_id},")) && l.contains("duplicate-emails")),
        "each row carries its repair and rule: {quarantined}"
    );
    let orders = table_text(&db, "orders").await;
    assert_eq!(orders.matches(",1").count(), 2, "{orders}");
    assert_eq!(orders.matches(",5").count(), 1, "{orders}");
    let undone = undo(&project.path(), repair_id, false).await.unwrap();
    assert!(undone.complete, "{undone:?}");
    assert_eq!(
        [
            table_text(&db, "customers").await,
            table_text(&db, "orders").await
        ],
        before
    );
    assert_eq!(
        table_text(&db, "customers_quarantine").await,
        "",
        "moved back"
    );
}

#[tokio::test]
async fn merged_duplicates_can_go_to_quarantine_and_come_back_on_sqlite() {
    merged_losers_go_to_quarantine("sqlite").await;
}

#[tokio::test]
async fn merged_duplicates_can_go_to_quarantine_and_come_back_on_postgres() {
    merged_losers_go_to_quarantine("postgres").await;
}

#[tokio::test]
async fn merged_duplicates_can_go_to_quarantine_and_come_back_on_mysql() {
    merged_losers_go_to_quarantine("mysql").await;
}

/// The survivor is the first row by `keep` as the database orders the columns, never by
/// their text (`10` sorts before `9` as text).
async fn keep_orders_by_value(backend: &str) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    db.execute(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, created_at TEXT);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers (id));
         INSERT INTO customers VALUES (9, 'a@example.com', '2026-01-01'), (10, 'a@example.com', '2026-01-01');
         INSERT INTO orders VALUES (1, 9), (2, 10);",
    )
    .await;
    let project = TestProject::with_source("shop", &db.url, &[("dups.toml", DUPLICATES)]);
    let plan_file = project.dir.path().join("plan.jsonl");
    plan_to(&project.path(), &Selection::default(), &plan_file).await;
    let report = apply(&project.path(), &plan_file, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(!report.failed(), "{report:?}");
    let customers = table_text(&db, "customers").await;
    assert!(
        customers.starts_with("9,") || customers.starts_with("(9,"),
        "{customers}"
    );
    assert_eq!(customers.lines().count(), 1, "{customers}");
    let orders = table_text(&db, "orders").await;
    assert_eq!(
        orders.matches(",9").count(),
        2,
        "both orders point at the survivor: {orders}"
    );
}

#[tokio::test]
async fn merge_keeps_the_first_row_by_value_on_sqlite() {
    keep_orders_by_value("sqlite").await;
}

#[tokio::test]
async fn merge_keeps_the_first_row_by_value_on_postgres() {
    keep_orders_by_value("postgres").await;
}

#[tokio::test]
async fn merge_keeps_the_first_row_by_value_on_mysql() {
    keep_orders_by_value("mysql").await;
}

const ITEMS_SCHEMA: &str = "
CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total_amount REAL);
CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER REFERENCES orders (id) ON DELETE {ACTION}, quantity INTEGER);
INSERT INTO customers VALUES (1, 'a@example.com');
INSERT INTO orders VALUES (10, 1, 5.0), (11, 99, 7.5), (12, 98, 1.25);
INSERT INTO order_items VALUES (100, 10, 1), (101, 11, 2), (102, 11, 3), (103, 12, 4);
";

async fn quarantined_rows_move_and_come_back(backend: &str) {
    let schema = ITEMS_SCHEMA.replace("{ACTION}", "CASCADE");
    let Some((db, project)) =
        orphans_with(backend, &schema, "[rule.repair]\nstrategy = \"quarantine\"\ncascade = [{ table = \"order_items\", column = \"order_id\" }]\n").await
    else {
        return;
    };
    let plan_file = project.dir.path().join("plan.jsonl");
    let before = [
        table_text(&db, "orders").await,
        table_text(&db, "order_items").await,
    ];
    // Planned from a recorded run: the quarantined rows name it.
    let loaded = Project::load(&project.path()).unwrap();
    let store = Store::open_location(&loaded.state).await.unwrap();
    let (_, run) = support::run_and_record(&project.path(), Some(&store)).await;
    store.close().await;
    let run = run.unwrap().to_string();
    let mut out = std::fs::File::create(&plan_file).unwrap();
    let summary = repair::plan(
        &loaded,
        &Selection::default(),
        Some(&run),
        &Cancel::new(),
        &mut out,
    )
    .await
    .unwrap();
    assert!(summary.refused.is_empty(), "{:?}", summary.refused);
    let rows = &summary.rules[0].end.rows;
    assert_eq!(rows["orders_quarantine"].insert, 2, "{rows:?}");
    let report = apply(&project.path(), &plan_file, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(!report.failed(), "{report:?}");
    assert_eq!(table_text(&db, "orders").await.lines().count(), 1);
    let quarantined = table_text(&db, "orders_quarantine").await;
    assert_eq!(quarantined.lines().count(), 2, "{quarantined}");
    let repair_id = report.rules[0].repair.unwrap();
    assert!(
        quarantined
            .lines()
            .all(|l| l.contains(&format!(",{repair_id},{run},")) && l.contains("orphans")),
        "the repair, the run and the rule travel with the rows: {quarantined}"
    );
    let undone = undo(&project.path(), repair_id, false).await.unwrap();
    assert!(undone.complete, "{undone:?}");
    assert_eq!(
        [
            table_text(&db, "orders").await,
            table_text(&db, "order_items").await
        ],
        before
    );
    assert_eq!(table_text(&db, "orders_quarantine").await, "", "moved back");
}

#[tokio::test]
async fn quarantined_rows_move_with_their_run_and_come_back_on_sqlite() {
    quarantined_rows_move_and_come_back("sqlite").await;
}

#[tokio::test]
async fn quarantined_rows_move_with_their_run_and_come_back_on_postgres() {
    quarantined_rows_move_and_come_back("postgres").await;
}

#[tokio::test]
async fn quarantined_rows_move_with_their_run_and_come_back_on_mysql() {
    quarantined_rows_move_and_come_back("mysql").await;
}

async fn blocking_foreign_keys(backend: &str) {
    let schema = ITEMS_SCHEMA.replace(" ON DELETE {ACTION}", "");
    let Some((db, project)) =
        orphans_with(backend, &schema, "[rule.repair]\nstrategy = \"delete\"\n").await
    else {
        return;
    };
    let plan_file = project.dir.path().join("plan.jsonl");
    let summary = plan_to(&project.path(), &Selection::default(), &plan_file).await;
    let refused = summary.rules[0].end.refused.clone().expect("refused");
    assert!(
        refused.contains("of `order_items` (order_id) references 3 of the rows to delete"),
        "{refused}"
    );
    // Declared, the items are deleted first and journaled.
    let rule = project.dir.path().join("rules/orphans.toml");
    let text = std::fs::read_to_string(&rule).unwrap().replace(
        "strategy = \"delete\"\n",
        "strategy = \"delete\"\ncascade = [{ table = \"order_items\", column = \"order_id\" }]\n",
    );
    std::fs::write(&rule, text).unwrap();
    let before = table_text(&db, "order_items").await;
    plan_to(&project.path(), &Selection::default(), &plan_file).await;
    let report = apply(&project.path(), &plan_file, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(!report.failed(), "{report:?}");
    assert_eq!(report.rules[0].rows, 5);
    undo(&project.path(), report.rules[0].repair.unwrap(), false)
        .await
        .unwrap();
    assert_eq!(table_text(&db, "order_items").await, before);
}

#[tokio::test]
async fn a_foreign_key_the_rule_does_not_cascade_refuses_the_plan_on_sqlite() {
    blocking_foreign_keys("sqlite").await;
}

#[tokio::test]
async fn a_foreign_key_the_rule_does_not_cascade_refuses_the_plan_on_postgres() {
    blocking_foreign_keys("postgres").await;
}

#[tokio::test]
async fn a_foreign_key_the_rule_does_not_cascade_refuses_the_plan_on_mysql() {
    blocking_foreign_keys("mysql").await;
}

async fn set_null_is_journaled(backend: &str) {
    let schema = ITEMS_SCHEMA.replace("{ACTION}", "SET NULL");
    let Some((db, project)) =
        orphans_with(backend, &schema, "[rule.repair]\nstrategy = \"delete\"\n").await
    else {
        return;
    };
    let plan_file = project.dir.path().join("plan.jsonl");
    let before = table_text(&db, "order_items").await;
    let summary = plan_to(&project.path(), &Selection::default(), &plan_file).await;
    assert_eq!(summary.rules[0].end.rows["order_items"].update, 3);
    let report = apply(&project.path(), &plan_file, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(!report.failed(), "{report:?}");
    assert_ne!(table_text(&db, "order_items").await, before);
    undo(&project.path(), report.rules[0].repair.unwrap(), false)
        .await
        .unwrap();
    assert_eq!(
        table_text(&db, "order_items").await,
        before,
        "references restored"
    );
}

#[tokio::test]
async fn rows_a_foreign_key_sets_to_null_are_journaled_and_undone_on_sqlite() {
    set_null_is_journaled("sqlite").await;
}

#[tokio::test]
async fn rows_a_foreign_key_sets_to_null_are_journaled_and_undone_on_postgres() {
    set_null_is_journaled("postgres").await;
}

#[tokio::test]
async fn rows_a_foreign_key_sets_to_null_are_journaled_and_undone_on_mysql() {
    set_null_is_journaled("mysql").await;
}

/// A rule on `schema` (whose `orders` has a trigger `orders_audit`) is refused for it, and
/// planned once it sets `allow-triggers`.
async fn triggers_refused_unless_allowed(backend: &str, schema: &str) {
    let Some((_db, project)) =
        orphans_with(backend, schema, "[rule.repair]\nstrategy = \"delete\"\n").await
    else {
        return;
    };
    let plan_file = project.dir.path().join("plan.jsonl");
    let summary = plan_to(&project.path(), &Selection::default(), &plan_file).await;
    let reason = &summary.refused[0].reason;
    assert!(reason.contains("has triggers (orders_audit)"), "{reason}");
    let rule = project.dir.path().join("rules/orphans.toml");
    let text = std::fs::read_to_string(&rule).unwrap().replace(
        "strategy = \"delete\"\n",
        "strategy = \"delete\"\nallow-triggers = true\n",
    );
    std::fs::write(&rule, text).unwrap();
    let summary = plan_to(&project.path(), &Selection::default(), &plan_file).await;
    assert!(summary.refused.is_empty(), "{:?}", summary.refused);
}

#[tokio::test]
async fn a_table_with_triggers_is_refused_unless_the_rule_allows_them() {
    let schema = format!(
        "{}CREATE TABLE audit (id INTEGER PRIMARY KEY, note TEXT);
         CREATE TRIGGER orders_audit AFTER DELETE ON orders BEGIN INSERT INTO audit (note) VALUES ('gone'); END;",
        ITEMS_SCHEMA.replace("{ACTION}", "CASCADE")
    );
    triggers_refused_unless_allowed("sqlite", &schema).await;
}

#[tokio::test]
async fn a_cascade_deeper_than_the_declared_table_is_refused() {
    let schema = "
        CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total_amount REAL);
        CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER, quantity INTEGER);
        CREATE TABLE item_notes (id INTEGER PRIMARY KEY,
            item_id INTEGER REFERENCES order_items (id) ON DELETE CASCADE, note TEXT);
        INSERT INTO orders VALUES (11, 99, 7.5);
        INSERT INTO order_items VALUES (101, 11, 2);
        INSERT INTO item_notes VALUES (1000, 101, 'fragile');";
    let repair = "[rule.repair]\nstrategy = \"delete\"\ncascade = [{ table = \"order_items\", column = \"order_id\" }]\n";
    let Some((_db, project)) = orphans_with("sqlite", schema, repair).await else {
        return;
    };
    let plan_file = project.dir.path().join("plan.jsonl");
    let summary = plan_to(&project.path(), &Selection::default(), &plan_file).await;
    let reason = &summary.refused.first().expect("refused").reason;
    assert!(
        reason.contains(
            "table `order_items` (declared in `cascade`) has a cascading foreign key of its own"
        ) && reason.contains("item_notes"),
        "{reason}"
    );
}

/// MySQL's triggers are refused as the other engines' are, and so is a table whose engine
/// cannot roll back (a failed batch would stay half-done in it).
#[tokio::test]
async fn a_mysql_table_with_triggers_or_without_transactions_is_refused() {
    let schema = format!(
        "{}CREATE TABLE audit (id INTEGER PRIMARY KEY AUTO_INCREMENT, note TEXT);
         CREATE TRIGGER orders_audit AFTER DELETE ON orders FOR EACH ROW INSERT INTO audit (note) VALUES ('gone');",
        ITEMS_SCHEMA.replace("{ACTION}", "CASCADE")
    );
    triggers_refused_unless_allowed("mysql", &schema).await;

    let myisam = "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total_amount REAL) ENGINE=MyISAM;
        INSERT INTO orders VALUES (11, 99, 7.5);";
    let Some((db, project)) =
        orphans_with("mysql", myisam, "[rule.repair]\nstrategy = \"delete\"\n").await
    else {
        return;
    };
    let plan_file = project.dir.path().join("plan.jsonl");
    let before = table_text(&db, "orders").await;
    let summary = plan_to(&project.path(), &Selection::default(), &plan_file).await;
    let reason = &summary.refused[0].reason;
    assert!(
        reason.contains("table `orders` is a MyISAM table, which cannot roll back a transaction"),
        "{reason}"
    );
    assert_eq!(table_text(&db, "orders").await, before);
}

const STATUS_RULE: &str = r#"
[[rule]]
id = "order-status"
title = "Orders with an unknown status"
severity = "high"
[rule.detector]
kind = "accepted-values"
table = "orders"
column = "status"
values = ["PENDING", "COMPLETED", "CANCELLED"]
[rule.repair]
strategy = "sql"
statements = ["UPDATE orders SET status = 'CANCELLED' WHERE id = :id"]
"#;

async fn sql_statements_are_bound_per_finding(backend: &str) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    db.execute(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, status TEXT);
         INSERT INTO orders VALUES (1, 1, 'PENDING'), (2, 1, 'LOST'), (3, 2, 'lost'), (4, 2, 'COMPLETED');",
    )
    .await;
    let project = TestProject::with_source("shop", &db.url, &[("status.toml", STATUS_RULE)]);
    let plan_file = project.dir.path().join("plan.jsonl");
    let before = table_text(&db, "orders").await;
    let summary = plan_to(&project.path(), &Selection::default(), &plan_file).await;
    assert_eq!(summary.rules[0].end.targets, 2, "{:?}", summary.refused);
    let report = apply(&project.path(), &plan_file, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(!report.failed(), "{report:?}");
    assert_eq!(report.rules[0].rows, 2);
    assert!(
        run_project(&project.path())
            .await
            .keys("order-status")
            .is_empty()
    );
    undo(&project.path(), report.rules[0].repair.unwrap(), false)
        .await
        .unwrap();
    assert_eq!(table_text(&db, "orders").await, before);

    // A statement that reaches rows other than the finding's is rolled back.
    for statement in [
        "UPDATE orders SET status = 'CANCELLED' WHERE id = :id + 1",
        "UPDATE orders SET status = 'CANCELLED' WHERE customer_id = (SELECT o.customer_id FROM orders AS o WHERE o.id = :id)",
    ] {
        let rule = STATUS_RULE.replace(
            "UPDATE orders SET status = 'CANCELLED' WHERE id = :id",
            statement,
        );
        std::fs::write(project.dir.path().join("rules/status.toml"), rule).unwrap();
        plan_to(&project.path(), &Selection::default(), &plan_file).await;
        let report = apply(&project.path(), &plan_file, &ApplyOptions::default())
            .await
            .unwrap();
        let error = report.rules[0].error.clone().expect("rolled back");
        assert!(error.contains("rolled back"), "{statement}: {error}");
        assert_eq!(table_text(&db, "orders").await, before, "{statement}");
    }
}

#[tokio::test]
async fn sql_repair_statements_are_bound_per_finding_and_journaled_on_sqlite() {
    sql_statements_are_bound_per_finding("sqlite").await;
}

#[tokio::test]
async fn sql_repair_statements_are_bound_per_finding_and_journaled_on_postgres() {
    sql_statements_are_bound_per_finding("postgres").await;
}

#[tokio::test]
async fn sql_repair_statements_are_bound_per_finding_and_journaled_on_mysql() {
    sql_statements_are_bound_per_finding("mysql").await;
}

const UPDATE_RULE: &str = r#"
[[rule]]
id = "order-status"
title = "Orders with an unknown status"
severity = "high"
[rule.detector]
kind = "accepted-values"
table = "orders"
column = "status"
values = ["PENDING", "COMPLETED", "CANCELLED"]
[rule.repair]
strategy = "update"
set = { status = "CASE WHEN upper(status) IN ('PENDING', 'COMPLETED', 'CANCELLED') THEN upper(status) ELSE 'CANCELLED' END" }
"#;

async fn update_sets_expressions(backend: &str) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    db.execute(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, status TEXT);
         INSERT INTO orders VALUES (1, 1, 'PENDING'), (2, 1, 'LOST'), (3, 2, 'completed'), (4, 2, 'COMPLETED');",
    )
    .await;
    let project = TestProject::with_source("shop", &db.url, &[("status.toml", UPDATE_RULE)]);
    let plan_file = project.dir.path().join("plan.jsonl");
    let before = table_text(&db, "orders").await;
    plan_to(&project.path(), &Selection::default(), &plan_file).await;
    let report = apply(&project.path(), &plan_file, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(!report.failed(), "{report:?}");
    let after = table_text(&db, "orders").await;
    assert!(
        after.contains("CANCELLED") && after.matches("COMPLETED").count() == 2,
        "{after}"
    );
    assert!(
        run_project(&project.path())
            .await
            .keys("order-status")
            .is_empty()
    );
    undo(&project.path(), report.rules[0].repair.unwrap(), false)
        .await
        .unwrap();
    assert_eq!(table_text(&db, "orders").await, before);
}

#[tokio::test]
async fn update_sets_columns_from_expressions_and_undo_restores_them_on_sqlite() {
    update_sets_expressions("sqlite").await;
}

#[tokio::test]
async fn update_sets_columns_from_expressions_and_undo_restores_them_on_postgres() {
    update_sets_expressions("postgres").await;
}

#[tokio::test]
async fn update_sets_columns_from_expressions_and_undo_restores_them_on_mysql() {
    update_sets_expressions("mysql").await;
}

const ODD_RULE: &str = r#"
[[rule]]
id = "odd-status"
title = "Rows with an unknown status"
severity = "high"
[rule.detector]
kind = "accepted-values"
table = "odd"
column = "status"
values = ["OK"]
[rule.repair]
strategy = "update"
set = { status = "'OK'" }
"#;

/// MariaDB's values of every kind keep their image hash from plan to apply (none is taken
/// for changed) and come back exactly with undo, whether updated or deleted and inserted
/// again: the largest unsigned key, doubles and floats, exact decimals, times with
/// fractions, bits, bytes, JSON, an enum, text of a case-blind collation, NULLs.
#[tokio::test]
async fn every_mysql_type_round_trips_through_plan_apply_and_undo() {
    let Some(db) = fresh("mysql").await else {
        return;
    };
    db.execute(
        "CREATE TABLE odd (id BIGINT UNSIGNED PRIMARY KEY, status VARCHAR(20), d DOUBLE, f FLOAT,
           n DECIMAL(30,10), dt DATETIME(6), ts TIMESTAMP(3) NULL, dd DATE, t TIME(2), b BIT(5),
           bl BLOB, j JSON, e ENUM('a','b'), code VARCHAR(10) COLLATE utf8mb4_general_ci UNIQUE);
         INSERT INTO odd VALUES
           (18446744073709551615, 'bad', 0.1 + 0.2, 1.1, 12345678901234567890.0123456789,
            '2026-12-04 10:05:09.250001', '2026-12-04 10:05:09.125', '2026-12-04', '-12:00:01.5',
            b'10101', X'00FF10', '{\"a\": [1, 2.50]}', 'b', 'AbC'),
           (1, 'bad', -1e300, NULL, -0.0000000001, '1000-01-01 00:00:00', NULL, NULL, NULL, NULL,
            NULL, NULL, NULL, NULL),
           (2, 'OK', 1, 2, 3, '2026-01-01 00:00:00', NULL, NULL, NULL, NULL, NULL, NULL, 'a', 'abd');",
    )
    .await;
    let before = table_text(&db, "odd").await;
    for strategy in [
        "strategy = \"update\"\nset = { status = \"'OK'\" }",
        "strategy = \"delete\"",
    ] {
        let rule = ODD_RULE.replace(
            "strategy = \"update\"\nset = { status = \"'OK'\" }",
            strategy,
        );
        let project = TestProject::with_source("shop", &db.url, &[("odd.toml", &rule)]);
        let plan_file = project.dir.path().join("plan.jsonl");
        let summary = plan_to(&project.path(), &Selection::default(), &plan_file).await;
        assert_eq!(
            summary.rules[0].end.targets, 2,
            "{strategy}: {:?}",
            summary.refused
        );
        let report = apply(&project.path(), &plan_file, &ApplyOptions::default())
            .await
            .unwrap();
        assert!(!report.failed(), "{strategy}: {report:?}");
        assert_eq!(
            report.rules[0].repaired, 2,
            "{strategy}: none taken for changed: {report:?}"
        );
        assert!(report.rules[0].skipped.is_empty(), "{strategy}: {report:?}");
        assert!(
            run_project(&project.path())
                .await
                .keys("odd-status")
                .is_empty()
        );
        let undone = undo(&project.path(), report.rules[0].repair.unwrap(), false)
            .await
            .unwrap();
        assert!(
            undone.complete && undone.conflicts.is_empty(),
            "{strategy}: {undone:?}"
        );
        assert_eq!(
            table_text(&db, "odd").await,
            before,
            "{strategy}: undo restores every value"
        );
    }
}
