//! A stale table's `freshness` finding states how old its newest row is, next to the limit,
//! on both backends: the reader should not have to subtract timestamps.

mod support;

use support::{TestDb, TestProject, run_project};

const RULES: &str = r#"
[[rule]]
id = "stale"
title = "Events arrive"
severity = "high"
detector = { kind = "freshness", table = "events", column = "created_at", max-age = "1h" }

[[rule]]
id = "empty"
title = "Empty table"
severity = "high"
detector = { kind = "freshness", table = "events", column = "created_at", max-age = "1h", where = "id < 0" }
"#;

async fn check(db: TestDb, three_days_ago: &str) {
    db.execute(&format!(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, created_at TIMESTAMP);
         INSERT INTO events VALUES (1, {three_days_ago});"
    ))
    .await;
    let project = TestProject::new(&db.url, &[("rules.toml", RULES)]);
    let result = run_project(&project.path()).await;
    let message = |rule: &str| {
        result
            .findings
            .iter()
            .find(|(id, _, _)| id == rule)
            .map(|(_, _, message)| message.clone())
            .unwrap_or_else(|| panic!("{rule} found nothing: {:?}", result.findings))
    };
    let stale = message("stale");
    assert!(
        stale.starts_with("newest created_at is ") && stale.ends_with(", 3d 4h old, limit 1h"),
        "[{}] {stale}",
        db.backend
    );
    assert_eq!(
        message("empty"),
        "newest created_at is NULL, no timestamp, limit 1h",
        "[{}]",
        db.backend
    );
    assert!(
        result
            .details
            .iter()
            .any(|d| d.contains(r#""age":"3d 4h old""#)),
        "{:?}",
        result.details
    );
}

#[tokio::test]
async fn freshness_states_the_age_on_sqlite() {
    check(
        TestDb::sqlite(),
        "datetime('now', '-3 days', '-4 hours', '-30 minutes')",
    )
    .await;
}

#[tokio::test]
async fn freshness_states_the_age_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    check(db, "now() - interval '3 days 4 hours 30 minutes'").await;
}
