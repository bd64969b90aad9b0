//! A `freshness` rule on a column that holds no timestamps is an error, with the place in the
//! rule file, in `validate` and before `check` runs it: on SQLite it could never fire, on
//! PostgreSQL it would fail with an operator error. On both backends, through the binary.

mod common;
#[path = "../../../tests/support/pg.rs"]
mod pg;

use std::path::Path;

use common::{Run, run, trueup};

/// One freshness rule per column; `column = ` is on line 9 of each rule (see [`rule`]).
fn rule(id: &str, table: &str, column: &str) -> String {
    format!(
        r#"[[rule]]
id = "{id}"
title = "Recent rows"
severity = "low"

[rule.detector]
kind = "freshness"
table = "{table}"
column = "{column}"
max-age = "1000000d"
"#
    )
}

fn project(url: &str, rules: &[(&str, &str, &str)]) -> tempfile::TempDir {
    let files: Vec<(String, String)> = rules
        .iter()
        .map(|(id, table, column)| (format!("{id}.toml"), rule(id, table, column)))
        .collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    common::project(url, &files)
}

fn trueup_in(dir: &Path, args: &[&str]) -> Run {
    run(trueup()
        .arg("--project")
        .arg(dir.join("trueup.toml"))
        .args(args))
}

/// The rule errors of a `check --format json`, by rule id (`None`: the rule ran).
fn rule_errors(run: &Run) -> Vec<(String, Option<String>)> {
    run.json()["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["error"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

async fn sqlite_db(dir: &Path, script: &str) -> String {
    let path = dir.join("data.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(script.to_owned()))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    format!("sqlite://{}", path.display())
}

const SQLITE_SETUP: &str = "
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    note TEXT,
    at TEXT,
    at_declared DATETIME,
    unix_time INTEGER,
    julian REAL,
    julian_declared DATETIME,
    quantity INTEGER
);
INSERT INTO events VALUES
    (1, 'first', '2025-01-31 12:00:00', '2025-01-31T12:00:00Z', 1738324800, 2460707.0, 2460707.0, 3),
    (2, 'second', '2025-02-01 08:00:00', '2025-02-01', 1738396800, 2460708.0, 2460708.0, 4);
CREATE TABLE nothing_yet (id INTEGER PRIMARY KEY, note TEXT);
";

#[tokio::test]
async fn hardening_12_freshness_on_sqlite_needs_dates_julianday_reads() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_db(dir.path(), SQLITE_SETUP).await;
    let accepted = [
        ("iso-text", "events", "at"),
        ("declared-datetime", "events", "at_declared"),
        ("julian-declared", "events", "julian_declared"),
        // Nothing to judge: the table is reported stale, which it is.
        ("empty-table", "nothing_yet", "note"),
    ];
    let refused = [
        (
            "text",
            "events",
            "note",
            "column `note` of `events` is TEXT, not a timestamp: its newest value `second` is not a date",
        ),
        (
            "unix-time",
            "events",
            "unix_time",
            "column `unix_time` of `events` is INTEGER, not a timestamp",
        ),
        (
            "undeclared-julian",
            "events",
            "julian",
            "column `julian` of `events` is REAL, not a timestamp",
        ),
        (
            "count",
            "events",
            "quantity",
            "column `quantity` of `events` is INTEGER, not a timestamp",
        ),
    ];

    let valid = project(&url, &accepted);
    let run = trueup_in(valid.path(), &["validate"]);
    assert_eq!(run.code, Some(0), "{}", run.all());

    for (id, table, column, message) in refused {
        let one = project(&url, &[(id, table, column)]);
        let run = trueup_in(one.path(), &["validate"]);
        assert_eq!(run.code, Some(2), "{}", run.all());
        let place = format!("rules/{id}.toml:9:10: {message}");
        assert!(run.stderr.contains(&place), "{place}\n{}", run.all());

        let run = trueup_in(one.path(), &["check", "--no-record", "--format", "json"]);
        assert_eq!(run.code, Some(2), "a silent pass: {}", run.all());
        let errors = rule_errors(&run);
        assert!(
            errors[0].1.as_deref().is_some_and(|e| e.contains(message)),
            "{}",
            run.all()
        );
    }

    let run = trueup_in(valid.path(), &["check", "--no-record", "--format", "json"]);
    assert!(
        rule_errors(&run).iter().all(|(_, error)| error.is_none()),
        "{}",
        run.all()
    );
}

#[tokio::test]
async fn hardening_12_freshness_on_postgres_needs_a_timestamp_or_date_column() {
    let Some(admin) = pg::admin_url() else { return };
    let url = pg::fresh_database(&admin).await;
    pg::execute(
        &url,
        "CREATE DOMAIN moment AS timestamptz;
         CREATE TABLE events (id INTEGER PRIMARY KEY, note TEXT, at TIMESTAMP, at_tz TIMESTAMPTZ,
             day DATE, at_domain moment, clock TIME, quantity INTEGER);
         INSERT INTO events VALUES (1, '2025-01-31', now(), now(), now(), now(), now(), 3);",
    )
    .await;
    let accepted = [
        ("timestamp", "events", "at"),
        ("timestamptz", "events", "at_tz"),
        ("date", "events", "day"),
        ("domain", "events", "at_domain"),
    ];
    let valid = project(&url, &accepted);
    let run = trueup_in(valid.path(), &["validate"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let run = trueup_in(valid.path(), &["check", "--no-record", "--format", "json"]);
    assert!(
        rule_errors(&run).iter().all(|(_, error)| error.is_none()),
        "{}",
        run.all()
    );

    for (id, column, type_name) in [
        ("text", "note", "text"),
        ("time", "clock", "time without time zone"),
        ("count", "quantity", "integer"),
    ] {
        let message = format!("column `{column}` of `events` is {type_name}, not a timestamp");
        let one = project(&url, &[(id, "events", column)]);
        let run = trueup_in(one.path(), &["validate"]);
        assert_eq!(run.code, Some(2), "{}", run.all());
        let place = format!("rules/{id}.toml:9:10: {message}");
        assert!(run.stderr.contains(&place), "{place}\n{}", run.all());
        // One problem: not the operator error of the query too.
        assert!(run.stderr.contains("1 problem(s) found"), "{}", run.all());

        let run = trueup_in(one.path(), &["check", "--no-record", "--format", "json"]);
        assert_eq!(run.code, Some(2), "{}", run.all());
        let errors = rule_errors(&run);
        assert!(
            errors[0].1.as_deref().is_some_and(|e| e.contains(&message)),
            "{}",
            run.all()
        );
    }
}
