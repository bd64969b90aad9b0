//! `trueup serve` as a real process on a free loopback port: a schedule every second runs
//! and its endpoints answer; a slow run is never overlapped (the due times that come while it
//! goes are skipped and counted); SIGTERM stops it within 5 s, its run recorded as
//! interrupted and its query gone from the PostgreSQL server; webhooks reach a receiver the
//! test serves, are retried with backoff, and a receiver that hangs delays no run.

mod common;
#[path = "../../../tests/support/pg.rs"]
mod pg;
mod serve_support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::Value;
use serve_support::{Answer, Receiver, Serve, project, scheduled, sqlite_source, sqlite_store};

/// Three findings, at once.
const ROWS_RULE: &str = r#"
[[rule]]
id = "rows.of-t"
title = "Rows of t"
severity = "high"
[rule.detector]
kind = "sql"
key = ["x"]
query = "SELECT x FROM t"
"#;

/// A rule that fails every run: its table is not there.
const FAILING_RULE: &str = r#"
[[rule]]
id = "broken.missing-table"
title = "Reads a table that is not there"
severity = "critical"
[rule.detector]
kind = "sql"
key = ["x"]
query = "SELECT x FROM no_such_table"
"#;

/// A PostgreSQL rule that sleeps `seconds` (its text marks it in `pg_stat_activity`).
fn sleeping_rule(seconds: &str) -> String {
    format!(
        r#"
[[rule]]
id = "slow.sleeps"
title = "Sleeps"
severity = "low"
timeout = "5m"
[rule.detector]
kind = "sql"
key = ["k"]
query = "SELECT pg_sleep({seconds})::text AS k"
"#
    )
}

const EVERY_SECOND: &str = "[[schedule]]\nname = \"every-second\"\ncron = \"* * * * * *\"\n";

/// How many queries sleeping `seconds` are running on the server.
async fn sleeping(admin: &str, seconds: &str) -> i64 {
    let pool = sqlx::PgPool::connect(admin)
        .await
        .expect("admin connection");
    let count = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'active' \
         AND query LIKE $1 AND pid <> pg_backend_pid()",
    )
    .bind(format!("%pg_sleep({seconds})%"))
    .fetch_one(&pool)
    .await
    .expect("count sleeping queries");
    pool.close().await;
    count
}

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

/// The value of the first series of `metrics` whose line starts with `series`.
fn metric(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn drift(record: &Value) -> i64 {
    record["drift_ms"].as_i64().expect("drift_ms")
}

#[tokio::test]
async fn a_schedule_every_second_runs_on_time_and_its_endpoints_answer() {
    let source = tempfile::tempdir().unwrap();
    let url = sqlite_source(source.path()).await;
    let dir = project(&url, EVERY_SECOND, &[("rows.toml", ROWS_RULE)]);
    let mut serve = Serve::start(&dir.path().join("trueup.toml"), &[]);
    serve.wait_for_count("run.finished", 3, Duration::from_secs(20));

    let (status, body) = serve.get("/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, metrics) = serve.get("/metrics");
    assert_eq!(status, 200);
    assert!(
        metric(&metrics, "trueup_runs_total{schedule=\"every-second\"").is_some_and(|n| n >= 3.0),
        "{metrics}"
    );
    let findings = metrics
        .lines()
        .find(|l| l.starts_with("trueup_rule_findings{") && l.contains("rows.of-t"))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(findings.ends_with(" 3"), "{findings}");
    let (status, runs) = serve.get("/runs");
    assert_eq!(status, 200, "{runs}");
    let runs: Value = serde_json::from_str(&runs).expect("/runs is JSON");
    assert_eq!(runs["schedules"][0]["name"], "every-second", "{runs}");
    assert_eq!(runs["schedules"][0]["cron"], "* * * * * *", "{runs}");
    let listed = runs["runs"].as_array().expect("runs");
    assert!(
        listed.iter().filter(|r| r["status"] == "complete").count() >= 3,
        "{runs}"
    );
    assert!(listed.iter().all(|r| r["schedule"] == "every-second"));
    assert_eq!(serve.get("/nothing-here").0, 404);

    // Each run started within a second of its due time, each due time once, a second apart.
    for started in serve.events("run.started") {
        assert!((0..1000).contains(&drift(&started)), "{started}");
    }
    serve.signal(Signal::TERM);
    let (code, took) = serve.exit_within(Duration::from_secs(5));
    assert_eq!(code, Some(0), "{}", serve.shown_logs());
    assert!(took < Duration::from_secs(5));
    let runs = scheduled(&sqlite_store(dir.path())).await;
    let dues: Vec<i64> = runs.iter().map(|r| r.due).collect();
    assert!(dues.len() >= 3, "{runs:?}");
    assert!(
        dues.windows(2)
            .all(|w| w[1] > w[0] && (w[1] - w[0]) % 1000 == 0),
        "{runs:?}"
    );
    assert!(
        dues.iter().all(|d| d % 1000 == 0),
        "due times are whole seconds: {dues:?}"
    );
    // Every scheduled run recorded a detection run in the store.
    assert!(
        runs.iter()
            .filter(|r| r.status == "complete")
            .all(|r| r.run.is_some())
    );
}

#[tokio::test]
async fn a_slow_run_is_not_overlapped_and_sigterm_cancels_it_on_the_server() {
    let Some(admin) = pg::admin_url() else { return };
    let url = pg::fresh_database(&admin).await;
    let rule = sleeping_rule("2.5");
    let dir = project(&url, EVERY_SECOND, &[("slow.toml", &rule)]);
    let mut serve = Serve::start(&dir.path().join("trueup.toml"), &[]);
    serve.wait_for_count("run.finished", 2, Duration::from_secs(30));
    let skipped = serve.events("run.skipped");
    assert!(skipped.len() >= 2, "{}", serve.shown_logs());
    // The skips are counted in the metrics.
    let (_, metrics) = serve.get("/metrics");
    let counted = metric(
        &metrics,
        "trueup_runs_skipped_total{schedule=\"every-second\"",
    );
    assert!(counted.is_some_and(|n| n >= 2.0), "{metrics}");

    // The next run is under way: stop the service in the middle of it.
    assert!(
        eventually(Duration::from_secs(10), || async {
            sleeping(&admin, "2.5").await > 0
        })
        .await,
        "the slow query never showed in pg_stat_activity"
    );
    serve.signal(Signal::TERM);
    let (code, took) = serve.exit_within(Duration::from_secs(5));
    assert_eq!(code, Some(0), "{}", serve.shown_logs());
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(
        sleeping(&admin, "2.5").await,
        0,
        "the query is still running on the server"
    );
    let finished = serve.events("run.finished");
    assert_eq!(
        finished.last().expect("a run")["status"],
        "interrupted",
        "{}",
        serve.shown_logs()
    );

    // No two runs overlapped; the last one is recorded interrupted, here and in `runs`.
    let runs = scheduled(&sqlite_store(dir.path())).await;
    for pair in runs.windows(2) {
        let end = pair[0].finished.expect("every run ended");
        assert!(pair[1].started >= end, "runs overlapped: {runs:?}");
    }
    assert_eq!(runs.last().unwrap().status, "interrupted", "{runs:?}");
    let history = common::run(
        common::trueup()
            .arg("--project")
            .arg(dir.path().join("trueup.toml"))
            .args(["runs", "--format", "json"]),
    );
    let history = history.json();
    assert_eq!(history[0]["status"], "interrupted", "{history}");
    assert_eq!(
        history[0]["id"].as_i64(),
        runs.last().unwrap().run,
        "{history}"
    );
}

/// A project of two replicas sharing the PostgreSQL store at `store`.
fn replicated(url: &str, store: &str, rules: &[(&str, &str)]) -> tempfile::TempDir {
    let extra =
        format!("[state]\nurl = \"{store}\"\n[serve]\nlease-expiry = \"2s\"\n{EVERY_SECOND}");
    project(url, &extra, rules)
}

/// Each due time ran once (runs a dead replica left are `abandoned`).
fn assert_each_due_once(runs: &[serve_support::Scheduled]) {
    let mut seen = HashSet::new();
    for run in runs.iter().filter(|r| r.status != "abandoned") {
        assert!(
            seen.insert(run.due),
            "due time {} ran twice: {runs:?}",
            run.due
        );
    }
}

#[tokio::test]
async fn two_replicas_on_one_store_run_each_scheduled_audit_once() {
    let Some(admin) = pg::admin_url() else { return };
    let url = pg::fresh_database(&admin).await;
    let rule = sleeping_rule("0.2");
    let dir = replicated(&url, &url, &[("slow.toml", &rule)]);
    let project = dir.path().join("trueup.toml");
    let a = Serve::start(&project, &["--replica", "a"]);
    let b = Serve::start(&project, &["--replica", "b"]);
    std::thread::sleep(Duration::from_secs(6));
    let skipped: HashSet<i64> = [&a, &b]
        .iter()
        .flat_map(|s| s.events("run.skipped"))
        .map(|e| e["due_ms"].as_i64().expect("due_ms"))
        .collect();
    let logs = format!("{}\n{}", a.shown_logs(), b.shown_logs());
    drop((a, b));
    let runs = scheduled(&url).await;
    assert!(runs.len() >= 4, "{runs:?}");
    assert_each_due_once(&runs);
    // Every due time from the first run to the last ran on one replica or the other, or
    // was skipped (and counted) by the replica whose run was still going.
    let ran: HashSet<i64> = runs.iter().map(|r| r.due).collect();
    let (first, last) = (runs[0].due, runs.last().unwrap().due);
    for due in (first..=last).step_by(1000) {
        assert!(
            ran.contains(&due) || skipped.contains(&due),
            "due time {due} neither ran nor was skipped: {runs:?}\n{logs}"
        );
        assert!(
            !(ran.contains(&due) && skipped.contains(&due)),
            "{due}: {runs:?}"
        );
    }
}

#[tokio::test]
async fn killing_the_replica_holding_the_lease_lets_the_other_take_over_at_expiry() {
    let Some(admin) = pg::admin_url() else { return };
    let url = pg::fresh_database(&admin).await;
    let rule = sleeping_rule("4");
    let dir = replicated(&url, &url, &[("slow.toml", &rule)]);
    let project = dir.path().join("trueup.toml");
    let mut a = Serve::start(&project, &["--replica", "a"]);
    let mut b = Serve::start(&project, &["--replica", "b"]);
    let limit = Duration::from_secs(10);
    let first = loop {
        let started = scheduled(&url).await;
        if let Some(run) = started.first() {
            break run.clone();
        }
        assert!(a.events("serve.stopped").is_empty());
        std::thread::sleep(Duration::from_millis(50));
    };
    let (holder, other) = match first.replica.as_str() {
        "a" => (&mut a, &mut b),
        _ => (&mut b, &mut a),
    };
    std::thread::sleep(Duration::from_secs(1));
    holder.signal(Signal::KILL);
    let killed_at = serve_support_now();
    holder.exit_within(Duration::from_secs(5));

    let taken = other.wait_for(limit, |e| e["event"] == "run.started");
    let runs = scheduled(&url).await;
    let second = runs
        .iter()
        .find(|r| r.replica != first.replica)
        .unwrap_or_else(|| {
            panic!(
                "the other replica ran nothing: {runs:?}\n{}",
                other.shown_logs()
            )
        });
    // Not before the dead replica's lease expired (2 s after it was taken, at the least)...
    assert!(second.started >= first.started + 2000, "{runs:?}");
    // ...and soon after: within an expiry of the kill, plus a second to notice.
    assert!(
        second.started <= killed_at + 2000 + 1500,
        "{runs:?} killed at {killed_at}"
    );
    if taken["takeover"] == true {
        assert_eq!(second.due, first.due, "{runs:?}");
        let dead = runs.iter().find(|r| r.replica == first.replica).unwrap();
        assert_eq!(dead.status, "abandoned", "{runs:?}");
    }
    assert_each_due_once(&runs);
}

/// Now, in Unix milliseconds.
fn serve_support_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A schedule every second with a webhook to `$TRUEUP_TEST_WEBHOOK`.
fn with_webhook(timeout: &str, attempts: u32) -> String {
    format!(
        "{EVERY_SECOND}[schedule.webhook]\nurl = \"${{TRUEUP_TEST_WEBHOOK}}\"\n\
         timeout = \"{timeout}\"\nattempts = {attempts}\n"
    )
}

#[tokio::test]
async fn a_webhook_gets_json_with_text_and_is_retried_after_it_fails() {
    let receiver = Receiver::start(Answer::FailFirst(1));
    let source = tempfile::tempdir().unwrap();
    let url = sqlite_source(source.path()).await;
    let dir = project(
        &url,
        &with_webhook("5s", 3),
        &[("rows.toml", ROWS_RULE), ("broken.toml", FAILING_RULE)],
    );
    // The URL comes from the environment, as a secret should.
    let serve = Serve::start_with_env(
        &dir.path().join("trueup.toml"),
        &[],
        &[("TRUEUP_TEST_WEBHOOK", &receiver.url)],
    );
    let bodies = receiver.wait_for(2, Duration::from_secs(15));
    let (first_at, first) = &bodies[0];
    let (second_at, second) = &bodies[1];
    // The first try failed (500); the same message came again after the backoff.
    assert_eq!(first, second);
    assert!(
        second_at.duration_since(*first_at) >= Duration::from_millis(900),
        "retried after {:?}",
        second_at.duration_since(*first_at)
    );
    let text = first["text"].as_str().expect("a Slack-compatible text");
    assert!(text.contains("every-second"), "{text}");
    assert!(text.contains("broken.missing-table"), "{text}");
    assert_eq!(first["schedule"], "every-second");
    let rules = first["rules"].as_array().expect("rules");
    let broken = rules
        .iter()
        .find(|r| r["rule"] == "broken.missing-table")
        .expect("the failed rule is listed");
    assert!(broken["error"].is_string(), "{first}");
    // The first run's findings are all new: the rule alerts, and the message says so.
    let rows = rules
        .iter()
        .find(|r| r["rule"] == "rows.of-t")
        .expect("the alerting rule is listed");
    assert_eq!(rows["alerting"], true, "{first}");
    assert_eq!(rows["new_findings"], 3, "{first}");
    assert!(text.contains("rows.of-t: 3 new of 3 finding(s)"), "{text}");
    assert!(
        broken["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("no_such_table")),
        "{first}"
    );
    serve.wait_for(Duration::from_secs(10), |e| e["event"] == "webhook.sent");
    let retry = serve.wait_for(Duration::from_secs(1), |e| e["event"] == "webhook.retry");
    assert_eq!(retry["attempt"], 1, "{retry}");
    let logs = serve.shown_logs();
    assert!(
        !logs.contains("s3cret-path"),
        "the webhook's URL is a secret: {logs}"
    );
}

#[tokio::test]
async fn a_hanging_webhook_receiver_does_not_delay_the_next_run() {
    let receiver = Receiver::start(Answer::Hang);
    let source = tempfile::tempdir().unwrap();
    let url = sqlite_source(source.path()).await;
    let dir = project(
        &url,
        &with_webhook("3s", 3),
        &[("broken.toml", FAILING_RULE)],
    );
    let mut serve = Serve::start_with_env(
        &dir.path().join("trueup.toml"),
        &[],
        &[("TRUEUP_TEST_WEBHOOK", &receiver.url)],
    );
    serve.wait_for_count("run.finished", 5, Duration::from_secs(15));
    receiver.wait_for(1, Duration::from_secs(1));
    for started in serve.events("run.started") {
        assert!((0..1000).contains(&drift(&started)), "{started}");
    }
    serve.signal(Signal::TERM);
    serve.exit_within(Duration::from_secs(5));
    let runs = scheduled(&sqlite_store(dir.path())).await;
    let dues: Vec<i64> = runs.iter().map(|r| r.due).collect();
    assert!(
        dues.windows(2).all(|w| w[1] - w[0] == 1000),
        "no due time was missed while the receiver hung: {runs:?}"
    );
}

/// Rows of `items` whose `x` is not 1 or 2, deleted by the rule's repair.
const REPAIRABLE_RULE: &str = r#"
[[rule]]
id = "items.bad-x"
title = "Items with an x that is not 1 or 2"
severity = "high"
[rule.detector]
kind = "accepted-values"
table = "items"
column = "x"
values = [1, 2]
[rule.repair]
strategy = "delete"
max-rows = 10
"#;

#[tokio::test]
async fn a_schedule_repairs_the_rules_it_names_after_its_check() {
    let source = tempfile::tempdir().unwrap();
    let path = source.path().join("items.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, x INTEGER); \
         INSERT INTO items VALUES (1, 1), (2, 2), (3, 30), (4, 40);",
    )
    .execute(&pool)
    .await
    .unwrap();
    let url = format!("sqlite://{}", path.display());
    let schedule = format!("{EVERY_SECOND}repair = [\"items.bad-x\"]\n");
    let dir = project(&url, &schedule, &[("items.toml", REPAIRABLE_RULE)]);
    let mut serve = Serve::start(&dir.path().join("trueup.toml"), &[]);
    let applied = serve.wait_for(Duration::from_secs(20), |e| e["event"] == "repair.applied");
    assert_eq!(applied["rule"], "items.bad-x", "{applied}");
    assert_eq!(applied["repaired"], 2, "{applied}");
    assert!(applied["repair"].is_i64(), "journaled: {applied}");
    // The next run finds nothing: the rows are gone, journaled for `trueup undo`.
    serve.wait_for(Duration::from_secs(10), |e| {
        e["event"] == "run.finished" && e["findings"] == 0
    });
    serve.signal(Signal::TERM);
    serve.exit_within(Duration::from_secs(5));
    let left: Vec<i64> = sqlx::query_scalar("SELECT id FROM items ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, [1, 2]);
    pool.close().await;
    let repairs = common::run(
        common::trueup()
            .arg("--project")
            .arg(dir.path().join("trueup.toml"))
            .args(["repairs", "--format", "json"]),
    );
    assert!(repairs.stdout.contains("items.bad-x"), "{}", repairs.all());
}
