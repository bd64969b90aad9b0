//! The bundled health pack (`rules/postgres-health/`) on real PostgreSQL servers: each rule
//! finds the condition planted for real (sessions holding and waiting for locks, a statement
//! still running, a transaction left open, migration history tables, sequences near their
//! end; on a private primary and hot standby: a lagging standby, a slot retaining WAL, a
//! query cancelled by a replication conflict), exactly that, and nothing on a quiet
//! database, with trueup's own sessions never among the findings.
//!
//! The session rules look at the source's database only, so tests on the shared server see
//! their own sessions; the server-wide rules (replication, slots) are tested on a pair of
//! servers of their own.

#[path = "support/pg_cluster.rs"]
mod pg_cluster;
mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use support::{RunResult, TestDb, TestProject, run_project};

/// The pack's files, `(file name, text)`, sorted.
fn pack() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules/postgres-health");
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("rules/postgres-health")
        .map(|e| e.expect("entry").path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("rule file"))
        })
        .collect();
    files.sort();
    files
}

/// Each threshold the rules state, as written in the pack, and the value a test sets so
/// that what it plants a moment before counts: durations 0, sizes 64 KiB, fractions 0.
const THRESHOLDS: &[(&str, &str, &str)] = &[
    (
        "lock-waits.toml",
        "interval '30 seconds' AS min_wait",
        "interval '0 seconds' AS min_wait",
    ),
    (
        "long-running-queries.toml",
        "interval '5 minutes' AS max_runtime",
        "interval '0 seconds' AS max_runtime",
    ),
    (
        "idle-in-transaction.toml",
        "interval '5 minutes' AS max_idle",
        "interval '0 seconds' AS max_idle",
    ),
    (
        "concurrent-writes.toml",
        "interval '10 seconds' AS min_transaction_age",
        "interval '0 seconds' AS min_transaction_age",
    ),
    (
        "recent-migrations.toml",
        "interval '24 hours' AS max_age",
        "interval '24 hours' AS max_age",
    ),
    (
        "replication-lag.toml",
        "268435456::numeric AS max_lag_bytes",
        "65536::numeric AS max_lag_bytes",
    ),
    (
        "replication-slot-retention.toml",
        "1073741824::numeric AS max_retained_bytes",
        "65536::numeric AS max_retained_bytes",
    ),
    (
        "sequence-exhaustion.toml",
        "0.9::numeric AS max_used_fraction",
        "0.9::numeric AS max_used_fraction",
    ),
    (
        "integer-column-near-limit.toml",
        "0.9::numeric AS max_used_fraction",
        "0.9::numeric AS max_used_fraction",
    ),
    (
        "standby-conflicts.toml",
        "SELECT 1 AS min_conflicts",
        "SELECT 1 AS min_conflicts",
    ),
];

/// The pack with every threshold at the test's value ([`THRESHOLDS`]).
fn sensitive_pack() -> Vec<(String, String)> {
    let files = pack();
    assert_eq!(
        files.len(),
        THRESHOLDS.len(),
        "every rule file of the pack has its threshold here"
    );
    files
        .into_iter()
        .map(|(name, text)| {
            let (_, written, test) = THRESHOLDS
                .iter()
                .find(|(file, _, _)| *file == name)
                .unwrap_or_else(|| panic!("no threshold listed for {name}"));
            assert_eq!(
                text.matches(written).count(),
                1,
                "{name} states its threshold as `{written}`"
            );
            let text = text.replace(written, test);
            (name, text)
        })
        .collect()
}

/// Runs `files` against `url` and returns what they found; every rule must have run.
async fn run(url: &str, files: &[(String, String)]) -> RunResult {
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let project = TestProject::with_source("db", url, &borrowed);
    let result = run_project(&project.path()).await;
    assert_eq!(result.outcomes.len(), files.len(), "every rule ran");
    for outcome in &result.outcomes {
        assert_eq!(
            result.error(&outcome.rule.id),
            None,
            "{} failed",
            outcome.rule.id
        );
    }
    result
}

/// Every finding as `rule id  key`.
fn found(result: &RunResult) -> BTreeSet<String> {
    result
        .findings
        .iter()
        .map(|(rule, key, _)| format!("{rule}  {key}"))
        .collect()
}

fn expected(findings: &[(&str, String)]) -> BTreeSet<String> {
    findings
        .iter()
        .map(|(rule, key)| format!("postgres-health.{rule}  {key}"))
        .collect()
}

/// The message of the one finding of `rule` whose key is `key`.
fn message<'a>(result: &'a RunResult, rule: &str, key: &str) -> &'a str {
    let rule = format!("postgres-health.{rule}");
    result
        .findings
        .iter()
        .find(|(r, k, _)| *r == rule && k == key)
        .map(|(_, _, m)| m.as_str())
        .unwrap_or_else(|| panic!("no finding {rule} {key}"))
}

/// Asserts that the `concurrent-writes` finding of `relation` names the two writers.
fn assert_two_writers(result: &RunResult, relation: &str, one: i32, other: i32) {
    let text = message(result, "concurrent-writes", &format!("relation={relation}"));
    let pids = format!("pids {}, {}", one.min(other), one.max(other));
    assert!(
        text.starts_with(&format!("2 open transactions write to {relation}"))
            && text.contains(&pids),
        "{text}"
    );
}

/// Asserts that the sensitive pack finds nothing on `url`: with every time threshold at 0,
/// only trueup's own sessions are there, and they are never findings.
async fn assert_quiet(url: &str) {
    let result = run(url, &sensitive_pack()).await;
    assert_eq!(found(&result), BTreeSet::new(), "a quiet database");
}

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("connect")
}

async fn pid(conn: &mut PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(conn)
        .await
        .unwrap()
}

/// A new session of `url` that has run `sql` (e.g. opened a transaction), and its pid.
async fn session(url: &str, sql: &str) -> (PgConnection, i32) {
    let mut conn = connect(url).await;
    let pid = pid(&mut conn).await;
    execute(&mut conn, sql).await;
    (conn, pid)
}

async fn execute(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(conn)
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
}

/// Waits until `condition` (a boolean SQL expression) holds on `conn`'s server. The
/// deadline only stops a hung test; nothing is asserted about how long it takes.
async fn wait_until(conn: &mut PgConnection, condition: &str) {
    let sql = format!("SELECT coalesce(({condition}), false)");
    for _ in 0..3000 {
        let holds: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_one(&mut *conn)
            .await
            .unwrap_or_else(|err| panic!("{condition}: {err}"));
        if holds {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("still not true after 30 s: {condition}");
}

/// A text column of `pg_stat_activity` for `pid`, formatted as the rules format it (UTC,
/// microseconds).
async fn activity_time(conn: &mut PgConnection, column: &str, pid: i32) -> String {
    let sql = format!(
        "SELECT to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') \
         FROM pg_stat_activity WHERE pid = $1"
    );
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(pid)
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_writer_waiting_behind_an_open_transaction_is_found_with_its_blocker() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    db.execute("CREATE TABLE stock (id integer PRIMARY KEY, quantity integer); INSERT INTO stock VALUES (1, 5), (2, 7);")
        .await;
    assert_quiet(&db.url).await;

    let (mut holder, holder_pid) = session(
        &db.url,
        "BEGIN; UPDATE stock SET quantity = quantity - 1 WHERE id = 1",
    )
    .await;
    let mut waiter = connect(&db.url).await;
    let waiter_pid = pid(&mut waiter).await;
    let waiting = tokio::spawn(async move {
        sqlx::query("UPDATE stock SET quantity = quantity - 2 WHERE id = 1")
            .execute(&mut waiter)
            .await
            .map(|done| done.rows_affected())
    });
    let mut admin = connect(&db.url).await;
    wait_until(
        &mut admin,
        &format!(
            "SELECT waitstart IS NOT NULL FROM pg_locks WHERE pid = {waiter_pid} AND NOT granted"
        ),
    )
    .await;

    // At the pack's own thresholds a wait of a moment is not worth a finding.
    let defaults = run(&db.url, &pack()).await;
    assert_eq!(found(&defaults), BTreeSet::new(), "below every threshold");

    let result = run(&db.url, &sensitive_pack()).await;
    let waiter_start = activity_time(&mut admin, "query_start", waiter_pid).await;
    let holder_xact = activity_time(&mut admin, "xact_start", holder_pid).await;
    let lock = format!("blocked_pid={waiter_pid}, blocking_pid={holder_pid}");
    assert_eq!(
        found(&result),
        expected(&[
            ("lock-waits", lock.clone()),
            // The waiter is a statement still running, the holder a transaction left open,
            // and both hold RowExclusiveLock on stock.
            (
                "long-running-queries",
                format!("pid={waiter_pid}, query_start={waiter_start}")
            ),
            (
                "idle-in-transaction",
                format!("pid={holder_pid}, transaction_start={holder_xact}")
            ),
            ("concurrent-writes", "relation=public.stock".to_owned()),
        ])
    );
    let text = message(&result, "lock-waits", &lock);
    assert!(
        text.contains(&format!("pid {waiter_pid} (postgres, no application_name)"))
            && text.contains("for ShareLock on transactionid, held by pid")
            && text.contains("idle in transaction for"),
        "{text}"
    );
    assert_two_writers(&result, "public.stock", holder_pid, waiter_pid);

    execute(&mut holder, "ROLLBACK").await;
    assert_eq!(waiting.await.unwrap().expect("the waiter's update"), 1);
}

#[tokio::test]
async fn a_long_statement_is_found_and_its_text_is_not_shown() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    assert_quiet(&db.url).await;

    let mut sleeper = connect(&db.url).await;
    let sleeper_pid = pid(&mut sleeper).await;
    // Literals in a statement may be data: none of this text may reach a finding.
    let sleeping = tokio::spawn(async move {
        sqlx::query("select 'card 4111 1111 1111 1111' AS secret, pg_sleep(600)")
            .execute(&mut sleeper)
            .await
    });
    let mut admin = connect(&db.url).await;
    wait_until(
        &mut admin,
        &format!(
            "SELECT state = 'active' AND wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = {sleeper_pid}"
        ),
    )
    .await;

    assert_eq!(
        found(&run(&db.url, &pack()).await),
        BTreeSet::new(),
        "below 5 minutes"
    );
    let result = run(&db.url, &sensitive_pack()).await;
    let start = activity_time(&mut admin, "query_start", sleeper_pid).await;
    let key = format!("pid={sleeper_pid}, query_start={start}");
    assert_eq!(
        found(&result),
        expected(&[("long-running-queries", key.clone())])
    );
    let text = message(&result, "long-running-queries", &key);
    assert!(
        text.contains("has run one SELECT for") && text.contains("waiting on: Timeout PgSleep"),
        "{text}"
    );
    let everything = result.details.join(" ");
    assert!(
        !everything.contains("4111") && !text.contains("4111"),
        "{everything}"
    );

    execute(
        &mut admin,
        &format!("SELECT pg_cancel_backend({sleeper_pid})"),
    )
    .await;
    assert!(sleeping.await.unwrap().is_err(), "the sleep was cancelled");
}

#[tokio::test]
async fn transactions_left_open_are_found_aborted_ones_too() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    assert_quiet(&db.url).await;

    let (mut open, open_pid) = session(&db.url, "BEGIN; SELECT 1").await;
    let (mut aborted, aborted_pid) = session(&db.url, "BEGIN").await;
    assert!(
        sqlx::query("SELECT 1 / 0")
            .execute(&mut aborted)
            .await
            .is_err(),
        "the division fails and aborts the transaction"
    );
    // A session that committed is idle, not idle in a transaction: no finding.
    let mut done = connect(&db.url).await;
    execute(&mut done, "BEGIN; SELECT 1; COMMIT").await;

    let mut admin = connect(&db.url).await;
    assert_eq!(
        found(&run(&db.url, &pack()).await),
        BTreeSet::new(),
        "below 5 minutes"
    );
    let result = run(&db.url, &sensitive_pack()).await;
    let open_key = format!(
        "pid={open_pid}, transaction_start={}",
        activity_time(&mut admin, "xact_start", open_pid).await
    );
    // PostgreSQL clears xact_start when a transaction aborts: the rule keys it by the time it
    // went idle.
    let aborted_key = format!(
        "pid={aborted_pid}, transaction_start={}",
        activity_time(
            &mut admin,
            "coalesce(xact_start, state_change)",
            aborted_pid
        )
        .await
    );
    assert_eq!(
        found(&result),
        expected(&[
            ("idle-in-transaction", open_key.clone()),
            ("idle-in-transaction", aborted_key.clone()),
        ])
    );
    let text = message(&result, "idle-in-transaction", &aborted_key);
    assert!(
        text.contains("has been idle in transaction (aborted) for")
            && text.contains("has written: false"),
        "{text}"
    );

    execute(&mut open, "ROLLBACK").await;
    execute(&mut aborted, "ROLLBACK").await;
}

#[tokio::test]
async fn tables_written_by_several_open_transactions_are_found() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    db.execute(
        "CREATE TABLE orders (id integer PRIMARY KEY, status text); \
         CREATE TABLE inventory (id integer PRIMARY KEY, quantity integer); \
         INSERT INTO orders VALUES (1, 'NEW'), (2, 'NEW'); INSERT INTO inventory VALUES (1, 3);",
    )
    .await;
    assert_quiet(&db.url).await;

    // Two transactions update different orders (no wait, a race all the same); one alone
    // writes inventory.
    let (mut first, first_pid) = session(
        &db.url,
        "BEGIN; UPDATE orders SET status = 'PAID' WHERE id = 1",
    )
    .await;
    let (mut second, second_pid) = session(
        &db.url,
        "BEGIN; UPDATE orders SET status = 'CANCELLED' WHERE id = 2",
    )
    .await;
    let (mut alone, alone_pid) = session(
        &db.url,
        "BEGIN; UPDATE inventory SET quantity = 2 WHERE id = 1",
    )
    .await;

    let mut admin = connect(&db.url).await;
    assert_eq!(
        found(&run(&db.url, &pack()).await),
        BTreeSet::new(),
        "below 10 seconds"
    );
    let result = run(&db.url, &sensitive_pack()).await;
    let mut idle = Vec::new();
    for pid in [first_pid, second_pid, alone_pid] {
        let start = activity_time(&mut admin, "xact_start", pid).await;
        idle.push((
            "idle-in-transaction",
            format!("pid={pid}, transaction_start={start}"),
        ));
    }
    idle.push(("concurrent-writes", "relation=public.orders".to_owned()));
    assert_eq!(found(&result), expected(&idle));
    assert_two_writers(&result, "public.orders", first_pid, second_pid);

    for conn in [&mut first, &mut second, &mut alone] {
        execute(conn, "ROLLBACK").await;
    }
}

/// The history tables as each tool creates them on PostgreSQL, with migrations applied
/// long ago only; Flyway's in a schema of its own.
const MIGRATION_TABLES: &str = r#"
CREATE SCHEMA app;
CREATE TABLE app.flyway_schema_history (
    installed_rank INT NOT NULL PRIMARY KEY, version VARCHAR(50), description VARCHAR(200) NOT NULL,
    type VARCHAR(20) NOT NULL, script VARCHAR(1000) NOT NULL, checksum INTEGER,
    installed_by VARCHAR(100) NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT now(),
    execution_time INTEGER NOT NULL, success BOOLEAN NOT NULL);
INSERT INTO app.flyway_schema_history VALUES
    (1, '1', 'create orders', 'SQL', 'V1__create_orders.sql', 1, 'app', now() - interval '30 days', 10, true);
CREATE TABLE databasechangelog (ID VARCHAR(255) NOT NULL, AUTHOR VARCHAR(255) NOT NULL,
    FILENAME VARCHAR(255) NOT NULL, DATEEXECUTED TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    ORDEREXECUTED INTEGER NOT NULL, EXECTYPE VARCHAR(10) NOT NULL, MD5SUM VARCHAR(35),
    DESCRIPTION VARCHAR(255), COMMENTS VARCHAR(255), TAG VARCHAR(255), LIQUIBASE VARCHAR(20),
    CONTEXTS VARCHAR(255), LABELS VARCHAR(255), DEPLOYMENT_ID VARCHAR(10));
INSERT INTO databasechangelog (id, author, filename, dateexecuted, orderexecuted, exectype, description)
    VALUES ('1', 'ann', 'db/changelog.xml', now() - interval '3 days', 1, 'EXECUTED', 'createTable');
CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL);
INSERT INTO _sqlx_migrations VALUES (20240101000000, 'init', now() - interval '2 days', true, '\x00', 1);
CREATE TABLE schema_migrations (version character varying NOT NULL PRIMARY KEY);
INSERT INTO schema_migrations VALUES ('20200101000000'), ('1');
CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY);
INSERT INTO alembic_version VALUES ('ae1027a6acf');
"#;

#[tokio::test]
async fn migrations_of_the_last_day_are_found_and_absent_history_tables_are_no_error() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    // No history table at all: the rule runs (`run` asserts it) and finds nothing.
    assert_quiet(&db.url).await;
    db.execute(MIGRATION_TABLES).await;
    assert_quiet(&db.url).await;

    let mut admin = connect(&db.url).await;
    execute(
        &mut admin,
        "INSERT INTO app.flyway_schema_history VALUES \
           (2, '2', 'add status & total', 'SQL', 'V2__add_status.sql', 2, 'app', now() - interval '1 hour', 10, true), \
           (3, NULL, 'refresh view', 'SQL', 'R__view.sql', 3, 'app', DEFAULT, 10, false); \
         INSERT INTO databasechangelog (id, author, filename, dateexecuted, orderexecuted, exectype, description) \
           VALUES ('2', 'bob', 'db/changelog.xml', now(), 2, 'EXECUTED', 'addColumn'); \
         INSERT INTO _sqlx_migrations VALUES (20250101000000, 'add index', now(), true, '\\x00', 1); \
         INSERT INTO alembic_version VALUES ('bf2037b7bdf');",
    )
    .await;
    let rails: String = sqlx::query_scalar(
        "INSERT INTO schema_migrations \
         VALUES (to_char(now() AT TIME ZONE 'UTC' - interval '2 hours', 'YYYYMMDDHH24MISS')) \
         RETURNING version",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();

    let result = run(&db.url, &sensitive_pack()).await;
    assert_eq!(
        found(&result),
        expected(&[
            (
                "recent-migrations",
                "history_table=app.flyway_schema_history, migration=2".to_owned()
            ),
            (
                "recent-migrations",
                "history_table=app.flyway_schema_history, migration=3".to_owned()
            ),
            (
                "recent-migrations",
                "history_table=public.databasechangelog, migration=2::bob::db/changelog.xml"
                    .to_owned()
            ),
            (
                "recent-migrations",
                "history_table=public._sqlx_migrations, migration=20250101000000".to_owned()
            ),
            (
                "recent-migrations",
                format!("history_table=public.schema_migrations, migration={rails}")
            ),
        ])
    );
    let text = message(
        &result,
        "recent-migrations",
        "history_table=app.flyway_schema_history, migration=2",
    );
    assert!(
        text.starts_with("Flyway migration 2 (version 2 add status & total) in app.flyway_schema_history: applied at ")
            && text.ends_with(" ago"),
        "{text}"
    );
    let text = message(
        &result,
        "recent-migrations",
        "history_table=app.flyway_schema_history, migration=3",
    );
    assert!(
        text.contains("(repeatable refresh view)") && text.contains(": FAILED at "),
        "{text}"
    );
}

#[tokio::test]
async fn sequences_near_their_end_and_integer_columns_near_their_limit_are_found() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    assert_quiet(&db.url).await;
    db.execute(
        "-- serial: an integer sequence of an integer column, 93 % used.
         CREATE TABLE orders (id serial PRIMARY KEY);
         SELECT setval('orders_id_seq', 2000000000);
         -- A bigint sequence owned by an integer column: room in the sequence, not in the column.
         CREATE TABLE tickets (id integer PRIMARY KEY);
         CREATE SEQUENCE tickets_id_seq OWNED BY tickets.id;
         ALTER TABLE tickets ALTER COLUMN id SET DEFAULT nextval('tickets_id_seq');
         SELECT setval('tickets_id_seq', 2000000000);
         -- The same through a DEFAULT only (not OWNED BY), on a smallint column.
         CREATE SEQUENCE badge_ids;
         CREATE TABLE badges (id smallint DEFAULT nextval('badge_ids'));
         SELECT setval('badge_ids', 32000);
         -- A descending sequence near its minimum.
         CREATE SEQUENCE countdown INCREMENT -1 MINVALUE 1 MAXVALUE 100 START 100;
         SELECT setval('countdown', 5);
         -- Decoys: half used; a bigint column with a bigint sequence at 2e9; never used.
         CREATE SEQUENCE half MAXVALUE 100;
         SELECT setval('half', 50);
         CREATE TABLE events (id bigserial PRIMARY KEY);
         SELECT setval('events_id_seq', 2000000000);
         CREATE SEQUENCE unused MAXVALUE 10;
         CREATE TABLE small (id integer);
         CREATE SEQUENCE small_id_seq OWNED BY small.id;
         SELECT setval('small_id_seq', 1000);",
    )
    .await;

    let result = run(&db.url, &sensitive_pack()).await;
    assert_eq!(
        found(&result),
        expected(&[
            (
                "sequence-exhaustion",
                "sequence=public.orders_id_seq".to_owned()
            ),
            (
                "sequence-exhaustion",
                "sequence=public.countdown".to_owned()
            ),
            (
                "integer-column-near-limit",
                "column_name=public.tickets.id".to_owned()
            ),
            (
                "integer-column-near-limit",
                "column_name=public.badges.id".to_owned()
            ),
        ])
    );
    assert_eq!(
        message(
            &result,
            "sequence-exhaustion",
            "sequence=public.orders_id_seq"
        ),
        "sequence public.orders_id_seq (integer) is at 2000000000, 93.1 % of its range used (limit 90.0 %); nextval fails at the end"
    );
    assert_eq!(
        message(
            &result,
            "integer-column-near-limit",
            "column_name=public.tickets.id"
        ),
        "column public.tickets.id (integer) takes ids from public.tickets_id_seq (bigint), now at 2000000000: 93.1 % of the column's limit 2147483647 (limit 90.0 %); past it every INSERT fails"
    );
}

#[tokio::test]
async fn a_lagging_standby_a_slot_holding_wal_and_a_replication_conflict_are_found() {
    if pg_cluster::bin_dir().is_none() {
        assert!(
            std::env::var_os("TRUEUP_REQUIRE_PG").is_none(),
            "TRUEUP_REQUIRE_PG is set but no PostgreSQL server binaries were found"
        );
        eprintln!("note: no PostgreSQL server binaries: skipped");
        return;
    }
    // Only where the shared test server runs (its binaries are the ones found).
    if support::pg::admin_url().is_none() {
        return;
    }
    let pair = pg_cluster::Pair::start(&pg_cluster::bin_dir().unwrap());
    let mut primary = connect(&pair.primary_url("postgres")).await;
    execute(&mut primary, "CREATE DATABASE health").await;
    let primary_url = pair.primary_url("health");
    let standby_url = pair.standby_url("health");
    let mut primary = connect(&primary_url).await;
    execute(&mut primary, "CREATE TABLE t (id integer)").await;
    let standby_key = format!("standby={}@127.0.0.1", pair.standby_name);
    wait_until(
        &mut primary,
        &format!(
            "SELECT state = 'streaming' AND replay_lsn >= pg_current_wal_lsn() \
             FROM pg_stat_replication WHERE application_name = '{}'",
            pair.standby_name
        ),
    )
    .await;
    let mut standby = connect(&standby_url).await;

    // Quiet, at the pack's own thresholds: the standby keeps up, no slot, no conflict.
    assert_eq!(
        found(&run(&primary_url, &pack()).await),
        BTreeSet::new(),
        "a quiet primary"
    );
    assert_eq!(
        found(&run(&standby_url, &pack()).await),
        BTreeSet::new(),
        "a quiet standby"
    );

    // A conflict: a query on the standby reads t while the primary locks t exclusively;
    // replaying the lock cancels the query at once (max_standby_streaming_delay = 0).
    let mut reader = connect(&standby_url).await;
    let reader_pid = pid(&mut reader).await;
    let reading = tokio::spawn(async move {
        sqlx::query("SELECT count(*) FROM t, pg_sleep(600)")
            .execute(&mut reader)
            .await
    });
    wait_until(
        &mut standby,
        &format!("SELECT wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = {reader_pid}"),
    )
    .await;
    execute(
        &mut primary,
        "BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; COMMIT",
    )
    .await;
    let cancelled = reading
        .await
        .unwrap()
        .expect_err("the standby cancels the read");
    assert!(
        cancelled.to_string().contains("conflict with recovery"),
        "{cancelled}"
    );
    wait_until(
        &mut standby,
        "SELECT confl_lock = 1 FROM pg_stat_database_conflicts WHERE datname = current_database()",
    )
    .await;

    // Lag: replay paused on the standby while the primary writes. A slot that nobody reads
    // retains the same WAL.
    execute(&mut standby, "SELECT pg_wal_replay_pause()").await;
    wait_until(
        &mut standby,
        "SELECT pg_get_wal_replay_pause_state() = 'paused'",
    )
    .await;
    execute(
        &mut primary,
        "SELECT pg_create_physical_replication_slot('health_slot', true); \
         INSERT INTO t SELECT generate_series(1, 20000)",
    )
    .await;
    wait_until(
        &mut primary,
        &format!(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) > 65536 \
             FROM pg_stat_replication WHERE application_name = '{}'",
            pair.standby_name
        ),
    )
    .await;

    let on_primary = run(&primary_url, &sensitive_pack()).await;
    assert_eq!(
        found(&on_primary),
        expected(&[
            ("replication-lag", standby_key.clone()),
            (
                "replication-slot-retention",
                "slot_name=health_slot".to_owned()
            ),
        ])
    );
    let text = message(
        &on_primary,
        "replication-slot-retention",
        "slot_name=health_slot",
    );
    assert!(
        text.starts_with("inactive physical slot health_slot (all databases) retains ")
            && text.contains("(limit 64 kB), wal_status reserved"),
        "{text}"
    );
    let text = message(&on_primary, "replication-lag", &standby_key);
    assert!(
        text.contains("(streaming, async) has ") && text.contains("not replayed (limit 64 kB"),
        "{text}"
    );

    let on_standby = run(&standby_url, &sensitive_pack()).await;
    assert_eq!(
        found(&on_standby),
        expected(&[("standby-conflicts", "database=health".to_owned())])
    );
    let text = message(&on_standby, "standby-conflicts", "database=health");
    assert!(
        text.starts_with("1 queries on health were cancelled by replication conflicts")
            && text.ends_with(": 1 lock, 0 snapshot, 0 buffer pin, 0 deadlock, 0 tablespace"),
        "{text}"
    );

    // The pair is stopped and deleted on drop; the slot goes with it.
    execute(&mut standby, "SELECT pg_wal_replay_resume()").await;
    execute(
        &mut primary,
        "SELECT pg_drop_replication_slot('health_slot')",
    )
    .await;
}
