//! Detection never writes: a source parses every query it is handed and runs only one
//! read-only statement; what passes runs on a read-only connection (the PostgreSQL side is
//! in the CLI's `postgres_faults` tests: a function that writes, stopped by the read-only
//! transaction).

mod support;

use std::time::Duration;

use support::{Rows, TestDb};
use trueup_core::compile::DetectorQuery;
use trueup_core::load::SourceSpec;
use trueup_core::source::{QueryError, RowSink, Source};
use trueup_core::template::Template;
use trueup_core::value::Value;

struct Discard;

impl RowSink for Discard {
    fn columns(&mut self, _: Vec<String>) -> trueup_core::Result<()> {
        Ok(())
    }
    async fn row(&mut self, _: Vec<Value>) -> trueup_core::Result<()> {
        Ok(())
    }
}

fn query(sql: &str) -> DetectorQuery {
    DetectorQuery {
        sql: sql.into(),
        binds: Vec::new(),
        key: vec!["id".into()],
        message: Template::parse("x").unwrap(),
        split: None,
        settings: Vec::new(),
        plugin: None,
        native: None,
        bulk: false,
    }
}

async fn shop() -> (TestDb, Source) {
    let db = TestDb::sqlite();
    db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY); INSERT INTO orders VALUES (1);")
        .await;
    let spec = SourceSpec {
        name: "db".into(),
        url: db.url.clone(),
        max_connections: None,
        connect_timeout: trueup_core::project::DEFAULT_CONNECT_TIMEOUT,
        path: Default::default(),
        file: None,
    };
    let source = Source::connect(&spec, std::path::Path::new(""), 1)
        .await
        .unwrap();
    (db, source)
}

async fn refused(source: &Source, sql: &str) -> String {
    let result = source
        .fetch(&query(sql), Duration::from_secs(5), &mut Discard)
        .await;
    match result {
        Err(QueryError::Refused(problem)) => problem,
        other => panic!("not refused: {sql}: {other:?}"),
    }
}

#[tokio::test]
async fn sqlite_sources_refuse_writes() {
    let (db, source) = shop().await;
    let error = refused(&source, "DELETE FROM orders RETURNING id").await;
    assert!(error.contains("`DELETE` statement"), "{error}");
    source.close().await;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(&sqlx::SqlitePool::connect(&db.url).await.unwrap())
        .await
        .unwrap();
    assert_eq!(count, 1);
}

/// SQLite runs every statement of a text it is handed, and `VACUUM INTO` writes a copy of
/// the database even on a read-only connection.
#[tokio::test]
async fn hardening_1_a_second_statement_never_reaches_sqlite() {
    let (db, source) = shop().await;
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    let sql = format!("SELECT id FROM orders; VACUUM INTO '{}'", copy.display());
    let error = refused(&source, &sql).await;
    assert!(error.contains("refuses to run"), "{error}");
    assert!(!copy.exists(), "VACUUM INTO ran");
    let sql = format!(
        "SELECT id FROM orders WHERE (\n1=1); VACUUM INTO '{}'; SELECT (1\n)",
        copy.display()
    );
    refused(&source, &sql).await;
    assert!(!copy.exists(), "VACUUM INTO ran");
    source.close().await;
    drop(db);
}

/// Hardening issue, item 1: a result row shorter or longer than the shape the query
/// prepared (SQLite runs what follows a `;`, here past the statement check) fails the rule
/// with a mismatch; it never reaches a finding, which would index past its shape.
#[tokio::test]
async fn hardening_1_a_row_of_another_width_is_a_rule_error() {
    let (db, source) = shop().await;
    for sql in [
        "SELECT id, id AS again FROM orders; SELECT id FROM orders",
        "SELECT id FROM orders; SELECT id, id AS again FROM orders",
    ] {
        let mut rows = Rows::default();
        let result = source
            .fetch_unchecked(&query(sql), Duration::from_secs(5), &mut rows)
            .await;
        match result {
            Err(QueryError::Failed(trueup_core::Error::Mismatch(message))) => {
                assert!(message.contains("more than one statement"), "{message}")
            }
            other => panic!("{sql}: {other:?}, rows {:?}", rows.0),
        }
        assert!(rows.0.iter().all(|row| row.len() == rows.0[0].len()));
    }
    source.close().await;
    drop(db);
}

/// What `least_privilege.rs` sends past trueup's statement check: which of those calls the check
/// refuses before they reach the server, and which it leaves to the read-only session.
#[test]
fn hardening_1_the_statement_check_refuses_most_of_these_calls_before_the_server() {
    use trueup_core::dialect::Dialect::{Postgres, Sqlite};
    use trueup_core::sql_text::detector_problem;
    for (dialect, sql, refused) in [
        (
            Postgres,
            "WITH d AS (DELETE FROM orders RETURNING id) SELECT id FROM d",
            true,
        ),
        (Postgres, "CREATE TEMP TABLE scratch (x int)", true),
        (
            Postgres,
            "SELECT set_config('transaction_read_only', 'off', true)",
            true,
        ),
        (
            Postgres,
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity",
            true,
        ),
        (
            Postgres,
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity",
            true,
        ),
        (Postgres, "SELECT pg_advisory_lock(7283)::text", true),
        (Postgres, "SELECT id FROM orders FOR UPDATE", true),
        (
            Postgres,
            "SELECT pg_notify('trueup_channel', 'x')::text",
            true,
        ),
        (
            Postgres,
            "SELECT dblink_exec('host=x', 'INSERT INTO orders VALUES (2, 0)')",
            true,
        ),
        (
            Postgres,
            "SELECT query_to_xml('SELECT pg_terminate_backend(1)', true, false, '')",
            true,
        ),
        (
            Postgres,
            "SELECT word FROM ts_stat('SELECT v FROM t')",
            true,
        ),
        (Sqlite, "ATTACH 'x.db' AS x", true),
        (Sqlite, "VACUUM INTO 'copy.db'", true),
        (Sqlite, "PRAGMA user_version = 5", true),
        (Sqlite, "SELECT load_extension('x')", true),
        (Sqlite, "INSERT INTO orders VALUES (2) RETURNING id", true),
        // Left to the read-only transaction, which refuses them (tested above).
        (Postgres, "SELECT nextval('order_numbers')", false),
        (Postgres, "SELECT setval('order_numbers', 5)", false),
        // Allowed: it only waits (the detector's timeout bounds it).
        (Postgres, "SELECT pg_sleep(2)::text, id FROM orders", false),
        // Allowed: it reads the table the catalog names, and runs no SQL text.
        (
            Postgres,
            "SELECT table_to_xml('orders'::regclass, true, false, '')",
            false,
        ),
    ] {
        assert_eq!(
            detector_problem(sql, Some(dialect)).is_some(),
            refused,
            "{sql}: {:?}",
            detector_problem(sql, Some(dialect))
        );
    }
}
