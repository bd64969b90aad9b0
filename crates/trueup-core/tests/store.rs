//! The state store: fingerprints stay stable across runs, diffs see exactly what changed,
//! and a damaged, newer, busy or half-written store is handled with a clear message.

mod support;

use std::collections::BTreeSet;

use futures_util::TryStreamExt;
use support::{TestDb, TestProject, run_and_record};
use trueup_core::store::{RuleChange, RuleDiff, RunStatus, Side, Store};
use trueup_shop::ShopSpec;

/// The keys of a rule's new or resolved findings, read from the store.
async fn keys(store: &Store, rule: &RuleDiff, side: Side) -> BTreeSet<String> {
    store
        .diff_keys(rule, side)
        .map_ok(|k| k.key.to_string())
        .try_collect()
        .await
        .unwrap()
}

/// A project of the e-commerce pack over the shop at `url`.
fn pack_project(url: &str) -> TestProject {
    let files = support::ecommerce_pack();
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    TestProject::with_source("shop", url, &borrowed)
}

/// Runs the pack twice over unchanged data, then after fixing one row and after breaking one,
/// and checks what each diff says.
async fn fingerprints_follow_the_data(db: &TestDb, statements: [&str; 2]) {
    let project = pack_project(&db.url);
    let store = Store::open(&project.dir.path().join(".trueup/state.db"))
        .await
        .unwrap();
    follow_the_data(db, statements, &project, &store).await;
}

/// [`fingerprints_follow_the_data`] with the store given.
async fn follow_the_data(db: &TestDb, statements: [&str; 2], project: &TestProject, store: &Store) {
    let (_, first) = run_and_record(&project.path(), Some(store)).await;
    let (_, second) = run_and_record(&project.path(), Some(store)).await;
    let same = store.diff(first.unwrap(), second.unwrap()).await.unwrap();
    assert_eq!(
        (same.new, same.resolved),
        (0, 0),
        "the same data twice: nothing new, nothing resolved"
    );
    assert!(same.persisting > 0);
    assert!(same.rules.iter().all(|r| r.change == RuleChange::Same));

    let [fix, break_one] = statements;
    db.execute(fix).await;
    let (_, fixed) = run_and_record(&project.path(), Some(store)).await;
    let diff = store.diff(second.unwrap(), fixed.unwrap()).await.unwrap();
    assert_eq!(
        (diff.new, diff.resolved),
        (0, 1),
        "fixing one row resolves exactly its finding"
    );
    let orphans = diff
        .rules
        .iter()
        .find(|r| r.rule == "ecommerce.orphaned-orders")
        .unwrap();
    assert_eq!(
        keys(store, orphans, Side::Resolved).await,
        BTreeSet::from([r#"{"id":698}"#.to_owned()])
    );

    db.execute(break_one).await;
    let (_, broken) = run_and_record(&project.path(), Some(store)).await;
    let diff = store.diff(fixed.unwrap(), broken.unwrap()).await.unwrap();
    assert_eq!(
        (diff.new, diff.resolved),
        (1, 0),
        "breaking one row makes exactly one new finding"
    );
    let stock = diff
        .rules
        .iter()
        .find(|r| r.rule == "ecommerce.stock-matches-inventory")
        .unwrap();
    assert_eq!(
        keys(store, stock, Side::New).await,
        BTreeSet::from([r#"{"id":7}"#.to_owned()])
    );
    store.close().await;
}

const FIX_AND_BREAK: [&str; 2] = [
    "UPDATE orders SET customer_id = 1 WHERE id = 698",
    "UPDATE products SET stock_quantity = stock_quantity + 3 WHERE id = 7",
];

#[tokio::test]
async fn fingerprints_are_stable_on_sqlite() {
    let db = TestDb::sqlite();
    let path = db.url.trim_start_matches("sqlite://");
    trueup_shop::create_sqlite(std::path::Path::new(path), &ShopSpec::demo())
        .await
        .unwrap();
    fingerprints_follow_the_data(&db, FIX_AND_BREAK).await;
}

#[tokio::test]
async fn fingerprints_are_stable_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    trueup_shop::create_postgres(&db.url, &ShopSpec::demo())
        .await
        .unwrap();
    fingerprints_follow_the_data(&db, FIX_AND_BREAK).await;
}

#[tokio::test]
async fn a_changed_rule_is_reported_as_changed_not_as_new_findings() {
    let db = TestDb::sqlite();
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER); INSERT INTO t VALUES (1, 1), (2, 2), (3, 3);").await;
    let rule = |max: i64| {
        format!(
            "[[rule]]\nid = \"t.small\"\ntitle = \"t\"\nseverity = \"low\"\n[rule.detector]\nkind = \"sql\"\nkey = [\"id\"]\nquery = \"SELECT id FROM t WHERE v <= {max}\"\n"
        )
    };
    let project = TestProject::new(&db.url, &[("t.toml", &rule(1))]);
    let store = Store::open(&project.dir.path().join("state.db"))
        .await
        .unwrap();
    let (_, a) = run_and_record(&project.path(), Some(&store)).await;
    std::fs::write(project.dir.path().join("rules/t.toml"), rule(3)).unwrap();
    let (_, b) = run_and_record(&project.path(), Some(&store)).await;
    let diff = store.diff(a.unwrap(), b.unwrap()).await.unwrap();
    assert_eq!(diff.rules[0].change, RuleChange::Changed);
    assert_eq!(
        (
            diff.new,
            diff.resolved,
            diff.rules[0].before,
            diff.rules[0].after
        ),
        (0, 0, 1, 3)
    );
}

#[tokio::test]
async fn a_run_that_never_finished_is_incomplete_and_not_last() {
    let db = TestDb::sqlite();
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);")
        .await;
    let project = TestProject::new(
        &db.url,
        &[(
            "t.toml",
            "[[rule]]\nid = \"t.all\"\ntitle = \"t\"\nseverity = \"low\"\n[rule.detector]\nkind = \"sql\"\nkey = [\"id\"]\nquery = \"SELECT id FROM t\"\n",
        )],
    );
    let store = Store::open(&project.dir.path().join("state.db"))
        .await
        .unwrap();
    let (_, complete) = run_and_record(&project.path(), Some(&store)).await;
    // A check killed mid-run: begun, never finished.
    let project_loaded = trueup_core::load::Project::load(&project.path()).unwrap();
    let loaded: Vec<_> = project_loaded.rules.iter().collect();
    let rules = trueup_core::engine::prepare(&project_loaded, &loaded)
        .unwrap()
        .rules;
    let killed = store.begin_run(&rules, None).await.unwrap().run_id();
    let runs = store.runs(10).await.unwrap();
    let incomplete = runs.iter().find(|r| r.id == killed).unwrap();
    assert!(!incomplete.complete && incomplete.finished_at.is_none());
    assert_eq!(
        incomplete.status,
        RunStatus::Running,
        "within its deadline (its rules' timeouts) it may still be running"
    );
    // Killed with rules of a 1 ms timeout: past its deadline at once, abandoned.
    let quick: Vec<_> = rules
        .iter()
        .map(|rule| {
            let mut rule = (**rule).clone();
            rule.timeout = std::time::Duration::from_millis(1);
            std::sync::Arc::new(rule)
        })
        .collect();
    let abandoned = store.begin_run(&quick, None).await.unwrap().run_id();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let runs = store.runs(10).await.unwrap();
    let status = |id| runs.iter().find(|r| r.id == id).unwrap().status;
    assert_eq!(status(abandoned), RunStatus::Abandoned);
    assert_eq!(status(complete.unwrap()), RunStatus::Complete);
    drop(rules);
    assert_eq!(
        store.resolve("last").await.unwrap(),
        complete.unwrap(),
        "`last` is the newest complete run"
    );
    let err = store.resolve("last~1").await.unwrap_err().to_string();
    assert!(err.contains("no complete run"), "{err}");
    let err = store.resolve("999").await.unwrap_err().to_string();
    assert!(err.contains("there is no run 999"), "{err}");
    let err = store.resolve("yesterday").await.unwrap_err().to_string();
    assert!(err.contains("`last~N`"), "{err}");
}

#[tokio::test]
async fn two_checks_at_once_are_both_recorded_whole() {
    let db = TestDb::sqlite();
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) INSERT INTO t SELECT i FROM n;").await;
    let project = TestProject::new(
        &db.url,
        &[(
            "t.toml",
            "[[rule]]\nid = \"t.all\"\ntitle = \"t\"\nseverity = \"low\"\n[rule.detector]\nkind = \"sql\"\nkey = [\"id\"]\nquery = \"SELECT id FROM t\"\n",
        )],
    );
    let path = project.dir.path().join("state.db");
    let (one, two) = (
        Store::open(&path).await.unwrap(),
        Store::open(&path).await.unwrap(),
    );
    let project_file = project.path();
    let ((_, a), (_, b)) = tokio::join!(
        run_and_record(&project_file, Some(&one)),
        run_and_record(&project_file, Some(&two))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a, b);
    for run in [a, b] {
        assert_eq!(one.run(run).await.unwrap().findings, 5000);
        assert_eq!(
            one.findings(run, None).await.unwrap().len(),
            5000,
            "run {run} holds its own findings only"
        );
    }
    assert_eq!(one.diff(a, b).await.unwrap().persisting, 5000);
}

#[tokio::test]
async fn a_damaged_store_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(
        &path,
        "this is not a database, it is a text file that happens to be here",
    )
    .unwrap();
    let err = Store::open(&path).await.unwrap_err().to_string();
    assert!(err.contains("not a trueup state store"), "{err}");
    assert!(err.contains("state.db"), "{err}");
}

#[tokio::test]
async fn a_store_from_a_newer_trueup_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    Store::open(&path).await.unwrap().close().await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99, 'future', 1, x'00', 0)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let err = Store::open(&path).await.unwrap_err().to_string();
    assert!(err.contains("newer trueup"), "{err}");
}

#[tokio::test]
async fn a_postgres_state_store_records_diffs_and_keeps_history_like_sqlite() {
    let Some(state) = TestDb::postgres().await else {
        return;
    };
    let db = TestDb::sqlite();
    let path = db.url.trim_start_matches("sqlite://");
    trueup_shop::create_sqlite(std::path::Path::new(path), &ShopSpec::demo())
        .await
        .unwrap();
    let project = pack_project(&db.url);
    let store = Store::open_url(&state.url).await.unwrap();
    follow_the_data(&db, FIX_AND_BREAK, &project, &store).await;
    // Another machine opening the same store sees the same history.
    let other = Store::open_url(&state.url).await.unwrap();
    let runs = other.runs(10).await.unwrap();
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|r| r.complete));
    let last = other.resolve("last").await.unwrap();
    assert_eq!(
        other.findings(last, None).await.unwrap().len(),
        22,
        "22 planted, one fixed, one broken"
    );
    let shown = other.findings(last, Some(1)).await.unwrap();
    assert_eq!(shown.len(), 5, "one finding per rule");
    let baseline = tempfile::tempdir().unwrap();
    let accepted = other
        .accept(last, &baseline.path().join("b.jsonl"))
        .await
        .unwrap();
    assert_eq!(accepted.accepted, 22);
    assert_eq!(other.gc(Some(1), None).await.unwrap(), 3);
    assert_eq!(other.runs(10).await.unwrap().len(), 1);
    // The password of the URL never shows in the store's name.
    assert!(!other.location().to_string().contains("trueup-test"));
}

#[tokio::test]
async fn gc_gives_the_space_of_deleted_runs_back() {
    let db = TestDb::sqlite();
    db.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t SELECT value FROM \
         (WITH RECURSIVE c(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM c WHERE value < 50000) \
         SELECT value FROM c);",
    )
    .await;
    let rule = "[[rule]]\nid = \"t.all\"\ntitle = \"every row\"\nseverity = \"low\"\n\
                [rule.detector]\nkind = \"sql\"\nquery = \"SELECT id, 'a note about row ' || id AS note FROM t\"\n\
                key = [\"id\"]\n";
    let project = TestProject::new(&db.url, &[("all.toml", rule)]);
    let path = project.dir.path().join(".trueup/state.db");
    let size = || std::fs::metadata(&path).unwrap().len();
    let store = Store::open(&path).await.unwrap();
    for _ in 0..3 {
        run_and_record(&project.path(), Some(&store)).await;
    }
    store.close().await;
    let before = size();
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.gc(Some(1), None).await.unwrap(), 2);
    store.close().await;
    let after = size();
    assert!(
        after * 2 < before,
        "the file should shrink to about a third: {before} bytes before gc, {after} after"
    );
}
