//! A baseline accepts debt, not outages: findings about whole tables (a stale table, too few
//! rows) are never accepted, so a table that is wrong again is a new finding again.

mod common;

use common::{run, trueup};

const RULES: &str = r#"
[[rule]]
id = "events.fresh"
title = "Events arrive"
severity = "high"
[rule.detector]
kind = "freshness"
table = "events"
column = "created_at"
max-age = "1h"

[[rule]]
id = "events.enough"
title = "At least ten events"
severity = "high"
[rule.detector]
kind = "row-count"
table = "events"
min = 10

[[rule]]
id = "events.named"
title = "Events have a name"
severity = "high"
[rule.detector]
kind = "not-null"
table = "events"
columns = ["name"]
key = ["id"]
"#;

#[tokio::test]
async fn stale_tables_and_row_counts_are_never_accepted_into_the_baseline() {
    let data = tempfile::tempdir().expect("temp dir");
    let db = data.path().join("events.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&db)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("sqlite");
    sqlx::raw_sql(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT, created_at TEXT);
         INSERT INTO events VALUES (1, NULL, datetime('now', '-3 days'));",
    )
    .execute(&pool)
    .await
    .expect("setup");
    pool.close().await;
    let dir = common::project(
        &format!("sqlite://{}", db.display()),
        &[("events.toml", RULES)],
    );
    let project = dir.path().join("trueup.toml");
    let trueup = |args: &[&str]| run(trueup().arg("--project").arg(&project).args(args));

    let first = trueup(&["check", "--format", "json"]);
    assert_eq!(first.json()["summary"]["findings"], 3, "{}", first.all());
    let accepted = trueup(&["baseline", "accept"]);
    assert_eq!(accepted.code, Some(0), "{}", accepted.all());
    assert!(
        accepted
            .stderr
            .contains("not accepted: the findings of events.enough, events.fresh"),
        "{}",
        accepted.all()
    );
    let baseline =
        std::fs::read_to_string(dir.path().join("trueup.baseline.jsonl")).expect("a baseline");
    assert_eq!(
        baseline.lines().count(),
        1,
        "only the row-level finding: {baseline}"
    );
    assert!(baseline.contains("events.named"), "{baseline}");

    // Three days stale still fails the check; the accepted NULL name does not.
    let again = trueup(&["check", "--baseline", "--format", "json"]);
    assert_eq!(again.code, Some(1), "{}", again.all());
    let summary = &again.json()["summary"];
    assert_eq!(summary["accepted"], 1, "{}", again.all());
    assert_eq!(summary["failing_rules"], 2, "{}", again.all());
}
