//! Ctrl-C (SIGINT) and SIGTERM in the middle of a `check`, through the real binary: the
//! queries running are cancelled in the database (none is left running on the server), what
//! finished is reported, the run is recorded as interrupted (never complete), and trueup
//! exits 130.

mod common;
#[path = "../../../tests/support/endless.rs"]
mod endless;
#[path = "../../../tests/support/mysql.rs"]
mod mysql;
#[path = "../../../tests/support/pg.rs"]
mod pg;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

/// A query that would run for half a minute.
const SLOW_RULE: &str = r#"
[[rule]]
id = "slow.sleeps"
title = "Sleeps"
severity = "low"
timeout = "5m"
[rule.detector]
kind = "sql"
key = ["k"]
query = "SELECT pg_sleep(30)::text AS k"
"#;

/// A rule that finishes at once, beside the slow one.
const QUICK_RULE: &str = r#"
[[rule]]
id = "quick.one"
title = "One row"
severity = "low"
[rule.detector]
kind = "sql"
key = ["k"]
query = "SELECT 1 AS k"
"#;

fn start(dir: &tempfile::TempDir) -> Child {
    Command::new(env!("CARGO_BIN_EXE_trueup"))
        .arg("--project")
        .arg(dir.path().join("trueup.toml"))
        .arg("check")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start trueup")
}

fn send(child: &Child, signal: Signal) {
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("a pid")).expect("a pid");
    kill_process(pid, signal).expect("signal trueup");
}

/// Waits for `child` to exit, failing (not hanging) when it does not within `limit`.
fn exit_within(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for trueup") {
            let output = child.wait_with_output().expect("trueup's output");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            return (status.code(), text);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("trueup did not exit within {limit:?} of the signal");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many `pg_sleep(30)` queries of trueup's are running on the server.
async fn sleeping(admin: &str) -> i64 {
    let pool = sqlx::PgPool::connect(admin)
        .await
        .expect("admin connection");
    let count = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'active' \
         AND application_name LIKE 'trueup %' AND query LIKE '%pg_sleep(30)%'",
    )
    .fetch_one(&pool)
    .await
    .expect("count sleeping queries");
    pool.close().await;
    count
}

/// Polls `condition` every 100 ms for at most `limit`; whether it came true.
async fn eventually<F, Fut>(limit: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn sigint_cancels_the_query_on_the_server_and_exits_130() {
    let Some(admin) = pg::admin_url() else { return };
    let url = pg::fresh_database(&admin).await;
    let dir = common::project(
        &url,
        &[("slow.toml", SLOW_RULE), ("quick.toml", QUICK_RULE)],
    );
    let child = start(&dir);
    assert!(
        eventually(Duration::from_secs(30), || async {
            sleeping(&admin).await > 0
        })
        .await,
        "the slow query never showed in pg_stat_activity"
    );
    // The quick rule starts with the slow one and takes milliseconds; on a loaded machine it
    // may not have finished the instant the slow one shows. Give it a moment.
    tokio::time::sleep(Duration::from_secs(1)).await;
    send(&child, Signal::INT);
    let (code, text) = exit_within(child, Duration::from_secs(20));
    assert_eq!(code, Some(130), "{text}");
    assert!(
        text.contains("interrupted: 1 of 2 rules finished"),
        "one line says what happened: {text}"
    );
    assert!(
        text.contains("quick.one"),
        "what finished is reported: {text}"
    );
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        eventually(Duration::from_secs(10), || async {
            sleeping(&admin).await == 0
        })
        .await,
        "the query is still running on the server"
    );

    // The run is not recorded as complete: `diff` and `last` never take it.
    let runs = Command::new(env!("CARGO_BIN_EXE_trueup"))
        .arg("--project")
        .arg(dir.path().join("trueup.toml"))
        .args(["runs", "--format", "json"])
        .output()
        .expect("trueup runs");
    let runs: serde_json::Value =
        serde_json::from_slice(&runs.stdout).expect("runs --format json is JSON");
    let runs = runs.as_array().cloned().unwrap_or_default();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["complete"], false, "{runs:?}");
    assert_eq!(runs[0]["status"], "interrupted", "{runs:?}");
}

/// A MySQL query that would run for hours: ten billion rows of MariaDB's sequence engine.
const SLOW_MYSQL_RULE: &str = r#"
[[rule]]
id = "slow.sums"
title = "Sums"
severity = "low"
timeout = "5m"
[rule.detector]
kind = "sql"
key = ["k"]
query = "SELECT SUM(a.seq * b.seq) AS k FROM seq_1_to_100000 AS a, seq_1_to_100000 AS b"
"#;

/// How many of those queries are running on the MariaDB server.
async fn summing(admin: &str) -> i64 {
    let pool = sqlx::MySqlPool::connect(admin)
        .await
        .expect("admin connection");
    let count = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.processlist \
         WHERE command = 'Execute' AND info LIKE '%seq_1_to_100000 AS b%' AND id <> CONNECTION_ID()",
    )
    .fetch_one(&pool)
    .await
    .expect("count running queries");
    pool.close().await;
    count
}

#[tokio::test]
async fn sigint_kills_the_query_on_a_mysql_server_and_exits_130() {
    let Some(admin) = mysql::admin_url() else {
        return;
    };
    let url = mysql::fresh_database(&admin).await;
    let dir = common::project(&url, &[("slow.toml", SLOW_MYSQL_RULE)]);
    let child = start(&dir);
    assert!(
        eventually(Duration::from_secs(30), || async {
            summing(&admin).await > 0
        })
        .await,
        "the slow query never showed in the processlist"
    );
    send(&child, Signal::INT);
    let (code, text) = exit_within(child, Duration::from_secs(20));
    assert_eq!(code, Some(130), "{text}");
    assert!(text.contains("interrupted"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        eventually(Duration::from_secs(10), || async {
            summing(&admin).await == 0
        })
        .await,
        "the query is still running on the server"
    );
}

#[tokio::test]
async fn sigterm_stops_a_long_sqlite_run() {
    let db = tempfile::tempdir().expect("temp dir");
    let path = db.path().join("data.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("sqlite");
    sqlx::query("CREATE TABLE t (x INTEGER)")
        .execute(&pool)
        .await
        .expect("create");
    pool.close().await;
    let url = format!("sqlite://{}", path.display());
    let dir = common::project(&url, &[("endless.toml", endless::ENDLESS_RULE)]);
    let child = start(&dir);
    // Let it get going (nothing to poll for: it prints findings only at the end).
    std::thread::sleep(Duration::from_millis(1500));
    send(&child, Signal::TERM);
    let (code, text) = exit_within(child, Duration::from_secs(30));
    assert_eq!(code, Some(130), "{text}");
    assert!(text.contains("interrupted: 0 of 1 rule finished"), "{text}");
}
