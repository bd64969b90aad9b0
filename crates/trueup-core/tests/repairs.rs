//! Repairs against real SQLite files and PostgreSQL databases: each strategy of the
//! e-commerce pack repairs exactly its findings, touches no table the plan does not name,
//! and undo makes every table identical to before; rows changed since the plan are left
//! alone; bad plans, read-only roles and tables without a key change nothing; undo stopped
//! by a conflict finishes; effects on other rules; plans of a recorded run.

mod support;

use std::path::PathBuf;

use support::repair::*;
use support::{TestDb, TestProject, run_project};
use trueup_core::cancel::Cancel;
use trueup_core::check::Selection;
use trueup_core::load::Project;
use trueup_core::repair::{self, ApplyOptions, Skip};

const REPAIRED: [&str; 4] = [
    "ecommerce.duplicate-customer-emails",
    "ecommerce.order-total-matches-items",
    "ecommerce.orphaned-orders",
    "ecommerce.stock-matches-inventory",
];

async fn the_pack_is_repaired_and_undone(backend: &str) {
    let Some(db) = shop(backend).await else {
        return;
    };
    let project = pack_project(&db.url);
    let plan_file: PathBuf = project.dir.path().join("plan.jsonl");
    let before = tables(&db).await;
    let found = run_project(&project.path()).await;
    for rule in REPAIRED {
        assert!(!found.keys(rule).is_empty(), "{rule}: the shop plants some");
    }

    let summary = plan_to(&project.path(), &Selection::default(), &plan_file).await;
    assert_eq!(summary.rules.len(), 4, "{:?}", summary.refused);
    assert_eq!(summary.refused.len(), 1, "the manual payments rule");
    assert!(summary.refused[0].reason.starts_with("manual:"));
    for planned in &summary.rules {
        let findings = found.keys(&planned.line.rule).len() as u64;
        assert_eq!(
            planned.end.targets, findings,
            "{}: a target per finding",
            planned.line.rule
        );
        assert_eq!(planned.end.refused, None);
    }
    assert_eq!(tables(&db).await, before, "plan writes nothing");

    let dry = apply(
        &project.path(),
        &plan_file,
        &ApplyOptions {
            dry_run: true,
            max_rows: Some(100_000),
            allow_new_findings: true,
            ..ApplyOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(
        dry.rules
            .iter()
            .all(|r| r.repaired == r.planned && r.error.is_none()),
        "{dry:?}"
    );
    assert_eq!(tables(&db).await, before, "a dry run rolls back");

    // Recomputed totals make payments differ: the payments rule gets new findings.
    let options = ApplyOptions {
        batch_size: 7,
        max_rows: Some(100_000),
        allow_new_findings: true,
        ..ApplyOptions::default()
    };
    let applied = apply(&project.path(), &plan_file, &options).await.unwrap();
    assert!(!applied.failed(), "{applied:?}");
    for rule in &applied.rules {
        assert_eq!(rule.repaired, rule.planned, "{rule:?}");
        assert!(rule.skipped.is_empty(), "{rule:?}");
    }
    let after = run_project(&project.path()).await;
    for rule in REPAIRED {
        assert_eq!(
            after.keys(rule),
            Vec::<String>::new(),
            "{rule} finds nothing after apply"
        );
    }
    let changed = tables(&db).await;
    let named: std::collections::BTreeSet<&str> = summary
        .rules
        .iter()
        .flat_map(|r| {
            r.end
                .rows
                .iter()
                .filter(|(_, c)| c.total() > 0)
                .map(|(t, _)| t.as_str())
        })
        .collect();
    assert!(
        named.contains("order_items"),
        "orphaned orders take their items: {named:?}"
    );
    for (i, table) in TABLES.iter().enumerate() {
        assert_eq!(
            changed[i] != before[i],
            named.contains(table),
            "{table}: changed only if the plan names it"
        );
    }

    let again = apply(&project.path(), &plan_file, &options).await.unwrap();
    assert!(
        again.rules.iter().all(|r| r.repaired == 0),
        "idempotent: {again:?}"
    );
    assert_eq!(tables(&db).await, changed, "a second apply changes nothing");

    let id = applied.rules[0].repair.expect("journaled");
    let undone = undo(&project.path(), id, false).await.unwrap();
    assert!(undone.complete && undone.conflicts.is_empty(), "{undone:?}");
    assert_eq!(tables(&db).await, before, "undo restores every table");
    let redo = undo(&project.path(), undone.undo, false).await.unwrap();
    assert!(redo.complete, "{redo:?}");
    assert_eq!(tables(&db).await, changed, "undoing the undo repairs again");
}

#[tokio::test]
async fn each_strategy_of_the_pack_repairs_and_undo_restores_every_table_on_sqlite() {
    the_pack_is_repaired_and_undone("sqlite").await;
}

#[tokio::test]
async fn each_strategy_of_the_pack_repairs_and_undo_restores_every_table_on_postgres() {
    the_pack_is_repaired_and_undone("postgres").await;
}

#[tokio::test]
async fn each_strategy_of_the_pack_repairs_and_undo_restores_every_table_on_mysql() {
    the_pack_is_repaired_and_undone("mysql").await;
}

async fn a_concurrent_write_survives(backend: &str) {
    let Some(db) = shop(backend).await else {
        return;
    };
    let project = pack_project(&db.url);
    let plan_file = project.dir.path().join("plan.jsonl");
    let selection = Selection {
        rules: vec!["ecommerce.order-total-matches-items".into()],
        ..Selection::default()
    };
    let summary = plan_to(&project.path(), &selection, &plan_file).await;
    let targets = summary.rules[0].end.targets;
    assert!(targets >= 3, "{targets}");
    let key = summary.rules[0].sample[0][0]
        .to_string()
        .trim_matches('"')
        .to_owned();
    // Another writer fixes the order its own way after the plan.
    db.execute(&format!(
        "UPDATE orders SET total_amount = 12345.5 WHERE id = {key}"
    ))
    .await;
    let options = ApplyOptions {
        allow_new_findings: true,
        ..ApplyOptions::default()
    };
    let report = apply(&project.path(), &plan_file, &options).await.unwrap();
    let rule = &report.rules[0];
    assert_eq!(rule.skipped.get(&Skip::Changed), Some(&1), "{rule:?}");
    assert_eq!(rule.repaired, targets - 1);
    let orders = table_text(&db, "orders").await;
    assert!(orders.contains("12345.5"), "the writer's value stands");
}

#[tokio::test]
async fn a_row_changed_after_the_plan_is_skipped_and_keeps_its_value_on_sqlite() {
    a_concurrent_write_survives("sqlite").await;
}

#[tokio::test]
async fn a_row_changed_after_the_plan_is_skipped_and_keeps_its_value_on_postgres() {
    a_concurrent_write_survives("postgres").await;
}

#[tokio::test]
async fn a_row_changed_after_the_plan_is_skipped_and_keeps_its_value_on_mysql() {
    a_concurrent_write_survives("mysql").await;
}

#[tokio::test]
async fn a_rule_over_its_max_rows_is_refused_and_changes_nothing() {
    let Some(db) = shop("sqlite").await else {
        return;
    };
    let project = pack_project(&db.url);
    let plan_file = project.dir.path().join("plan.jsonl");
    // The pack's max-rows is 1000: a limit below the findings refuses the rule.
    let rule = project.dir.path().join("rules/orphaned-orders.toml");
    let text = std::fs::read_to_string(&rule)
        .unwrap()
        .replace("max-rows = 1000", "max-rows = 2");
    std::fs::write(&rule, text).unwrap();
    let selection = Selection {
        rules: vec!["ecommerce.orphaned-orders".into()],
        ..Selection::default()
    };
    let summary = plan_to(&project.path(), &selection, &plan_file).await;
    let refused = summary.rules[0].end.refused.clone().expect("refused");
    assert!(
        refused.contains("more than its `max-rows` (2)"),
        "{refused}"
    );
    let before = tables(&db).await;
    let report = apply(&project.path(), &plan_file, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(report.failed(), "{report:?}");
    assert_eq!(report.refused[0].rule, "ecommerce.orphaned-orders");
    assert_eq!(tables(&db).await, before);
}

#[tokio::test]
async fn bad_plans_are_refused_and_change_nothing() {
    bad_plans_change_nothing("sqlite").await;
}

#[tokio::test]
async fn bad_plans_are_refused_and_change_nothing_on_mysql() {
    bad_plans_change_nothing("mysql").await;
}

async fn bad_plans_change_nothing(backend: &str) {
    let Some(db) = shop(backend).await else {
        return;
    };
    let project = pack_project(&db.url);
    let plan_file = project.dir.path().join("plan.jsonl");
    plan_to(&project.path(), &Selection::default(), &plan_file).await;
    let before = tables(&db).await;
    let text = std::fs::read_to_string(&plan_file).unwrap();
    let edited = project.dir.path().join("edited.jsonl");

    // Edited by hand.
    std::fs::write(&edited, text.replacen("\"hash\":\"", "\"hash\":\"0", 1)).unwrap();
    let err = apply(&project.path(), &edited, &ApplyOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("changed after trueup wrote it"), "{err}");

    // Cut short.
    std::fs::write(&edited, &text[..text.len() / 2]).unwrap();
    let err = apply(&project.path(), &edited, &ApplyOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("edited.jsonl:"), "{err}");

    // A line past the limit is refused, not read into memory.
    let mut long = text.lines().next().unwrap().to_owned();
    long.push('\n');
    long.push_str(&"x".repeat((16 << 20) + 1));
    std::fs::write(&edited, long).unwrap();
    let err = apply(&project.path(), &edited, &ApplyOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("edited.jsonl:2: the line is longer than 16MiB"),
        "{err}"
    );

    // Not a plan.
    std::fs::write(&edited, "{\"rules\": []}\n").unwrap();
    let err = apply(&project.path(), &edited, &ApplyOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a trueup plan"), "{err}");

    // From another project: its rules are not this project's.
    let other = TestProject::with_source("shop", &db.url, &[("orphans.toml", ORPHANS)]);
    let err = apply(&other.path(), &plan_file, &ApplyOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("which this project does not have"), "{err}");

    // A rule changed since the plan.
    let rule = project.dir.path().join("rules/orphaned-orders.toml");
    let original = std::fs::read_to_string(&rule).unwrap();
    std::fs::write(&rule, original.replace("max-rows = 1000", "max-rows = 999")).unwrap();
    let err = apply(&project.path(), &plan_file, &ApplyOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("changed since the plan was made"), "{err}");
    std::fs::write(&rule, original).unwrap();

    // The database's schema changed since the plan.
    db.execute("ALTER TABLE orders ADD COLUMN note TEXT").await;
    let err = apply(&project.path(), &plan_file, &ApplyOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("table `orders` changed since the plan"),
        "{err}"
    );
    db.execute("ALTER TABLE orders DROP COLUMN note").await;

    assert_eq!(tables(&db).await, before, "nothing changed");
}

#[tokio::test]
async fn a_table_without_a_key_is_refused_by_the_plan() {
    table_without_a_key("sqlite").await;
}

#[tokio::test]
async fn a_table_without_a_key_is_refused_by_the_plan_on_mysql() {
    table_without_a_key("mysql").await;
}

async fn table_without_a_key(backend: &str) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    db.execute(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY);
         CREATE TABLE orders (id INTEGER, customer_id INTEGER);
         INSERT INTO orders VALUES (1, 5), (1, 6);",
    )
    .await;
    let project = TestProject::with_source("shop", &db.url, &[("orphans.toml", ORPHANS)]);
    let plan_file = project.dir.path().join("plan.jsonl");
    let summary = plan_to(&project.path(), &Selection::default(), &plan_file).await;
    assert!(summary.rules.is_empty());
    let reason = &summary.refused[0].reason;
    assert!(
        reason.contains("has no primary key or unique key"),
        "{reason}"
    );
}

#[tokio::test]
async fn apply_on_a_read_only_role_fails_and_changes_nothing() {
    let Some(db) = shop("postgres").await else {
        return;
    };
    // A role of this test process alone (roles belong to the whole server).
    let (role, url) = support::pg::login_role(
        &db.url,
        "reader_repair",
        "",
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};",
    )
    .await;
    read_only_apply_changes_nothing(&db, &url, "permission denied").await;
    support::pg::drop_roles(&db.url, &[&role]).await;
}

/// As a role or user at `url` that may only read `db`: `plan` works, `apply` fails with
/// `denied` in its error (and no password), and nothing changes.
async fn read_only_apply_changes_nothing(db: &TestDb, url: &str, denied: &str) {
    let project = pack_project(url);
    let plan_file = project.dir.path().join("plan.jsonl");
    let summary = plan_to(&project.path(), &Selection::default(), &plan_file).await;
    assert_eq!(
        summary.rules.len(),
        4,
        "plan only reads: {:?}",
        summary.refused
    );
    let before = tables(db).await;
    let err = apply(&project.path(), &plan_file, &ApplyOptions::default())
        .await
        .unwrap_err();
    let text = trueup_core::error::chain(&err);
    assert!(text.contains(denied), "{text}");
    assert!(
        !text.contains("-pass") && !text.contains("trueup-role"),
        "{text}"
    );
    assert_eq!(tables(db).await, before);
}

/// A MariaDB user that may only read: `plan` works, `apply` fails on the journal it may not
/// create, and nothing changes (no journal either).
#[tokio::test]
async fn apply_as_a_read_only_user_fails_and_changes_nothing_on_mysql() {
    let Some(db) = shop("mysql").await else {
        return;
    };
    let database = db.url.rsplit('/').next().unwrap().to_owned();
    let user = format!("trueup_rr_{}", std::process::id());
    db.execute(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY 'ro-pass';
         GRANT SELECT ON `{database}`.* TO '{user}'@'%';"
    ))
    .await;
    let url = support::mysql::as_user(&db.url, &user, "ro-pass");
    read_only_apply_changes_nothing(&db, &url, "command denied to user").await;
    let pool = sqlx::MySqlPool::connect(&db.url).await.unwrap();
    let journal: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name LIKE 'trueup%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(journal, 0, "no journal was made");
    db.execute(&format!("DROP USER '{user}'@'%';")).await;
}

/// `max-rows` passed inside a batch on MariaDB: the batch is rolled back, nothing is
/// journaled, the apply fails (the CLI exits 2).
#[tokio::test]
async fn a_batch_over_max_rows_rolls_back_on_mysql() {
    let Some(db) = shop("mysql").await else {
        return;
    };
    let project = pack_project(&db.url);
    let plan_file = project.dir.path().join("plan.jsonl");
    let selection = Selection {
        rules: vec!["ecommerce.duplicate-customer-emails".into()],
        ..Selection::default()
    };
    plan_to(&project.path(), &selection, &plan_file).await;
    let before = tables(&db).await;
    let options = ApplyOptions {
        max_rows: Some(5),
        ..ApplyOptions::default()
    };
    let report = apply(&project.path(), &plan_file, &options).await.unwrap();
    assert!(report.failed(), "{report:?}");
    let error = report.rules[0].error.clone().unwrap_or_default();
    assert!(error.contains("more than its max-rows (5)"), "{error}");
    assert_eq!(report.rules[0].rows, 0);
    assert_eq!(tables(&db).await, before, "rolled back");
}

#[tokio::test]
async fn an_undo_stopped_by_a_conflict_finishes_once_the_row_is_put_back() {
    let Some(db) = shop("sqlite").await else {
        return;
    };
    let project = pack_project(&db.url);
    let plan_file = project.dir.path().join("plan.jsonl");
    let selection = Selection {
        rules: vec!["ecommerce.order-total-matches-items".into()],
        ..Selection::default()
    };
    let summary = plan_to(&project.path(), &selection, &plan_file).await;
    let before = table_text(&db, "orders").await;
    let options = ApplyOptions {
        batch_size: 5,
        allow_new_findings: true,
        ..ApplyOptions::default()
    };
    let report = apply(&project.path(), &plan_file, &options).await.unwrap();
    let id = report.rules[0].repair.unwrap();
    // Someone changes a row of the first batch, which undo restores last.
    let first = summary.rules[0].sample[0][0].to_string();
    let repaired = table_text(&db, "orders").await;
    db.execute(&format!(
        "UPDATE orders SET status = status || '-HELD' WHERE id = {first}"
    ))
    .await;
    let stopped = undo(&project.path(), id, false).await.unwrap();
    assert!(!stopped.complete && stopped.restored > 0, "{stopped:?}");
    assert_eq!(stopped.conflicts.len(), 1, "{stopped:?}");
    // Once the row is as the repair left it, undo again finishes what the first one began.
    db.execute(&format!(
        "UPDATE orders SET status = replace(status, '-HELD', '') WHERE id = {first}"
    ))
    .await;
    let status_back = table_text(&db, "orders").await;
    assert_ne!(status_back, repaired, "some batches are undone already");
    let finished = undo(&project.path(), id, false).await.unwrap();
    assert!(
        finished.complete && finished.conflicts.is_empty(),
        "{finished:?}"
    );
    assert_eq!(table_text(&db, "orders").await, before);
}

#[tokio::test]
async fn apply_max_rows_lifts_a_plans_max_rows_refusal() {
    let Some(db) = shop("sqlite").await else {
        return;
    };
    let project = pack_project(&db.url);
    let plan_file = project.dir.path().join("plan.jsonl");
    let rule = project
        .dir
        .path()
        .join("rules/stock-matches-inventory.toml");
    let text = std::fs::read_to_string(&rule)
        .unwrap()
        .replace("max-rows = 1000", "max-rows = 1");
    std::fs::write(&rule, text).unwrap();
    let selection = Selection {
        rules: vec!["ecommerce.stock-matches-inventory".into()],
        ..Selection::default()
    };
    let summary = plan_to(&project.path(), &selection, &plan_file).await;
    let total = summary.rules[0].end.over_max_rows.expect("over max-rows");
    let too_few = ApplyOptions {
        max_rows: Some(total - 1),
        ..ApplyOptions::default()
    };
    assert!(
        apply(&project.path(), &plan_file, &too_few)
            .await
            .unwrap()
            .failed()
    );
    let enough = ApplyOptions {
        max_rows: Some(total),
        ..ApplyOptions::default()
    };
    let report = apply(&project.path(), &plan_file, &enough).await.unwrap();
    assert!(!report.failed(), "{report:?}");
    assert_eq!(report.rules[0].repaired, summary.rules[0].end.targets);
}

#[tokio::test]
async fn a_batch_that_gives_another_rule_new_findings_is_refused_unless_allowed() {
    let Some(db) = shop("sqlite").await else {
        return;
    };
    let project = pack_project(&db.url);
    let plan_file = project.dir.path().join("plan.jsonl");
    let selection = Selection {
        rules: vec!["ecommerce.order-total-matches-items".into()],
        ..Selection::default()
    };
    let summary = plan_to(&project.path(), &selection, &plan_file).await;
    assert!(
        summary.rules[0]
            .line
            .may_affect
            .contains(&"ecommerce.completed-orders-paid".to_owned()),
        "the plan says which rules it may affect: {:?}",
        summary.rules[0].line.may_affect
    );
    let payments_before = run_project(&project.path())
        .await
        .keys("ecommerce.completed-orders-paid");
    let before = tables(&db).await;
    let report = apply(&project.path(), &plan_file, &ApplyOptions::default())
        .await
        .unwrap();
    let error = report.rules[0].error.clone().expect("refused");
    assert!(
        error.contains("new findings") && error.contains("ecommerce.completed-orders-paid"),
        "{error}"
    );
    assert_eq!(tables(&db).await, before, "the batch was rolled back");
    let allowed = ApplyOptions {
        allow_new_findings: true,
        ..ApplyOptions::default()
    };
    let report = apply(&project.path(), &plan_file, &allowed).await.unwrap();
    assert!(!report.failed(), "{report:?}");
    let new = &report.rules[0].new_findings;
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0].rule, "ecommerce.completed-orders-paid");
    let payments_after = run_project(&project.path())
        .await
        .keys("ecommerce.completed-orders-paid");
    assert_eq!(
        payments_after.len() as u64,
        payments_before.len() as u64 + new[0].count,
        "the count is what check finds afterwards"
    );
}

#[tokio::test]
async fn a_plan_from_a_recorded_run_takes_its_findings_whose_rows_still_exist() {
    let Some(db) = shop("sqlite").await else {
        return;
    };
    let project = pack_project(&db.url);
    let loaded = Project::load(&project.path()).unwrap();
    let store = trueup_core::store::Store::open_location(&loaded.state)
        .await
        .unwrap();
    let (found, run) = support::run_and_record(&project.path(), Some(&store)).await;
    store.close().await;
    let orphans = found.keys("ecommerce.orphaned-orders");
    assert!(orphans.len() > 2);
    // Someone deletes one orphaned order after the run.
    let gone = orphans[0].trim_start_matches("id=").to_owned();
    db.execute(&format!(
        "DELETE FROM order_items WHERE order_id = {gone}; DELETE FROM orders WHERE id = {gone}"
    ))
    .await;
    let selection = Selection {
        rules: vec!["ecommerce.orphaned-orders".into()],
        ..Selection::default()
    };
    let plan_file = project.dir.path().join("plan.jsonl");
    let mut out = std::fs::File::create(&plan_file).unwrap();
    let run = run.unwrap().to_string();
    let summary = repair::plan(&loaded, &selection, Some(&run), &Cancel::new(), &mut out)
        .await
        .unwrap();
    assert_eq!(summary.rules[0].end.targets, orphans.len() as u64 - 1);
    let read = repair::read(&plan_file).unwrap();
    assert_eq!(
        read.header.from_run.map(|r| r.to_string()),
        Some(run.clone())
    );
    let report = apply(&project.path(), &plan_file, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(!report.failed(), "{report:?}");
    assert!(
        run_project(&project.path())
            .await
            .keys("ecommerce.orphaned-orders")
            .is_empty()
    );

    // The state store records the repair, linked to the run it came from, and its undo.
    let journal_id = report.rules[0].repair.unwrap();
    undo(&project.path(), journal_id, false).await.unwrap();
    let store = trueup_core::store::Store::open_location(&loaded.state)
        .await
        .unwrap();
    let recorded = store.repairs(10).await.unwrap();
    store.close().await;
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    let (undone, applied) = (&recorded[0], &recorded[1]);
    assert_eq!(applied.kind, "apply");
    assert_eq!(applied.journal_id, journal_id);
    assert_eq!(applied.run_id.map(|r| r.to_string()), Some(run));
    assert_eq!(applied.status, "complete");
    assert_eq!(u64::try_from(applied.rows).ok(), Some(report.rules[0].rows));
    assert_eq!(
        (undone.kind.as_str(), undone.undoes),
        ("undo", Some(journal_id))
    );
}

#[tokio::test]
async fn a_role_allowed_one_connection_plans_and_applies_on_one_session() {
    let Some(db) = shop("postgres").await else {
        return;
    };
    // `plan` and `apply` open a second session on PostgreSQL (two key ranges, two batches
    // at a time); a role that may hold only one connection gets one-at-a-time instead.
    let (role, url) = support::pg::login_role(
        &db.url,
        "one_connection",
        "CONNECTION LIMIT 1",
        "GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}; \
         GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}; \
         DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO %s', current_database(), \
         '{role}'); END $$;",
    )
    .await;
    let project = pack_project(&url);
    let plan_file = project.dir.path().join("plan.jsonl");
    let selection = Selection {
        rules: vec!["ecommerce.order-total-matches-items".into()],
        ..Selection::default()
    };
    let summary = plan_to(&project.path(), &selection, &plan_file).await;
    assert!(summary.refused.is_empty(), "{:?}", summary.refused);
    assert!(summary.rules[0].end.targets > 2, "{summary:?}");
    let options = ApplyOptions {
        batch_size: 1,
        allow_new_findings: true,
        ..ApplyOptions::default()
    };
    let applied = apply(&project.path(), &plan_file, &options).await.unwrap();
    assert!(!applied.failed(), "{applied:?}");
    assert_eq!(applied.rules[0].repaired, applied.rules[0].planned);
    let after = run_project(&pack_project(&db.url).path()).await;
    assert_eq!(
        after.keys("ecommerce.order-total-matches-items"),
        Vec::<String>::new()
    );
    support::pg::drop_roles(&db.url, &[&role]).await;
}
