//! MySQL and MariaDB sources against a real MariaDB server (`scripts/test` starts one): what
//! their sessions refuse, how a timeout and an interrupted run stop a query in the server,
//! how values of every common type read, and what a wrong password or a closed port say.

mod support;

use std::time::{Duration, Instant};

use support::{Rows, TestDb, open_source, raw_query};
use trueup_core::source::QueryError;
use trueup_core::value::Value;

/// A query that keeps the server busy for hours and returns one row at the end: ten
/// billion rows of MariaDB's sequence engine, summed (a recursive CTE stops at
/// `max_recursive_iterations`, `BENCHMARK` returns 0 when stopped, without an error).
const ENDLESS: &str =
    "SELECT SUM(a.seq * b.seq) AS id FROM seq_1_to_100000 AS a, seq_1_to_100000 AS b";

async fn shop() -> Option<TestDb> {
    let db = TestDb::mysql().await?;
    db.execute(
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, total DECIMAL(12,2), note TEXT);
         INSERT INTO orders VALUES (1, 10.00, 'a'), (2, NULL, NULL);",
    )
    .await;
    Some(db)
}

/// Runs `sql` as a detector runs, without trueup's statement check: the rows, or the
/// error's text.
async fn detect(db: &TestDb, sql: &str) -> Result<Vec<Vec<Value>>, String> {
    let source = open_source(&db.url).await;
    let mut rows = Rows::default();
    let result = source
        .fetch_unchecked(&raw_query(sql), Duration::from_secs(10), &mut rows)
        .await;
    source.close().await;
    match result {
        Ok(()) => Ok(rows.0),
        Err(QueryError::Failed(err)) => Err(trueup_core::error::chain(&err)),
        Err(err) => Err(err.to_string()),
    }
}

#[tokio::test]
async fn mysql_sessions_refuse_writes_and_ddl() {
    let Some(db) = shop().await else { return };
    for sql in [
        "INSERT INTO orders VALUES (3, 1.00, 'x')",
        "UPDATE orders SET total = 0",
        "DELETE FROM orders",
        "CREATE TABLE sneaky (id INT)",
        "DROP TABLE orders",
    ] {
        let err = detect(&db, sql).await.expect_err(sql);
        assert!(err.contains("READ ONLY"), "{sql}: {err}");
    }
    // Nothing changed.
    let rows = detect(&db, "SELECT COUNT(*), SUM(total) FROM orders")
        .await
        .unwrap();
    assert_eq!(rows, [vec![Value::Int(2), Value::Decimal("10.00".into())]]);
    // And trueup's own check refuses them before the server sees them.
    let source = open_source(&db.url).await;
    let mut rows = Rows::default();
    let refused = source
        .fetch(
            &raw_query("SELECT 1; DELETE FROM orders"),
            Duration::from_secs(10),
            &mut rows,
        )
        .await;
    assert!(
        matches!(refused, Err(QueryError::Refused(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn mysql_values_read_by_type() {
    let Some(db) = TestDb::mysql().await else {
        return;
    };
    db.execute(
        "CREATE TABLE kinds (id INT PRIMARY KEY, small TINYINT, flag BOOLEAN, big BIGINT UNSIGNED,
           money DECIMAL(30,10), ratio DOUBLE, ratio4 FLOAT, stamp DATETIME(6), moment TIMESTAMP(3) NULL,
           day DATE, span TIME(2), label VARCHAR(20), body TEXT, raw VARBINARY(8), blob_col BLOB,
           doc JSON, kind ENUM('a','b'), year_col YEAR);
         INSERT INTO kinds VALUES (1, -5, TRUE, 18446744073709551615, 12345678901234567890.0123456789,
           0.5, 0.25, '2026-12-04 10:05:09.250000', '2026-01-02 03:04:05.500', '2026-02-03', '-26:03:04.50',
           'héllo', 'multi\nline', X'00FF', X'0102', '{\"a\": 1}', 'b', 2026);
         INSERT INTO kinds (id) VALUES (2);",
    )
    .await;
    let rows = detect(&db, "SELECT * FROM kinds ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        rows[0],
        [
            Value::Int(1),
            Value::Int(-5),
            Value::Bool(true),
            Value::Decimal("18446744073709551615".into()),
            Value::Decimal("12345678901234567890.0123456789".into()),
            Value::Float(0.5),
            Value::Float(0.25),
            Value::Timestamp("2026-12-04 10:05:09.25".into()),
            Value::Timestamp("2026-01-02 03:04:05.5".into()),
            Value::Timestamp("2026-02-03 00:00:00".into()),
            Value::Text("-26:03:04.5".into()),
            Value::Text("héllo".into()),
            Value::Text("multi\nline".into()),
            Value::Bytes(vec![0, 255]),
            Value::Bytes(vec![1, 2]),
            Value::Text("{\"a\": 1}".into()),
            Value::Text("b".into()),
            Value::Int(2026),
        ]
    );
    assert!(
        rows[1][1..].iter().all(|v| *v == Value::Null),
        "{:?}",
        rows[1]
    );
}

#[tokio::test]
async fn a_mysql_query_past_its_timeout_is_stopped_in_the_server() {
    let Some(db) = shop().await else { return };
    let source = open_source(&db.url).await;
    let started = Instant::now();
    let mut rows = Rows::default();
    let result = source
        .fetch(&raw_query(ENDLESS), Duration::from_millis(500), &mut rows)
        .await;
    assert!(matches!(result, Err(QueryError::Timeout(_))), "{result:?}");
    // The server stopped it (not trueup's grace period, five seconds later).
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // The pooled session is usable, and the timeout did not stay on it for the next rule.
    let mut rows = Rows::default();
    source
        .fetch(
            &raw_query("SELECT id FROM orders WHERE id = 1"),
            Duration::from_secs(30),
            &mut rows,
        )
        .await
        .unwrap();
    assert_eq!(rows.0, [vec![Value::Int(1)]]);
}

/// A source on a fresh database, running [`ENDLESS`] in a task for 0.7 s already.
async fn endless_query() -> Option<(
    TestDb,
    trueup_core::source::Source,
    tokio::task::JoinHandle<Result<(), QueryError>>,
)> {
    let db = shop().await?;
    let source = open_source(&db.url).await;
    let endless = {
        let source = source.clone();
        tokio::spawn(async move {
            let mut rows = Rows::default();
            source
                .fetch(&raw_query(ENDLESS), Duration::from_secs(3600), &mut rows)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    Some((db, source, endless))
}

#[tokio::test]
async fn cancel_running_kills_a_mysql_query() {
    let Some((_db, source, endless)) = endless_query().await else {
        return;
    };
    assert!(!endless.is_finished(), "the endless query ended by itself");
    assert_eq!(source.cancel_running().await.unwrap(), 1);
    let result = tokio::time::timeout(Duration::from_secs(10), endless)
        .await
        .expect("the query stops within seconds of the kill")
        .unwrap();
    match result {
        Err(QueryError::Failed(error)) => {
            assert!(error.to_string().contains("interrupted"), "{error}")
        }
        other => panic!("a killed query is not a timeout or a result: {other:?}"),
    }
    assert_eq!(
        source.cancel_running().await.unwrap(),
        0,
        "nothing runs now"
    );
    tokio::time::timeout(Duration::from_secs(10), source.close())
        .await
        .expect("the source closes after a kill");
}

/// An interrupted run drops its queries' futures, then kills what they left running and
/// closes its sources: none of it may hang (the test server speaks TLS).
#[tokio::test]
async fn a_dropped_mysql_query_is_killed_and_its_source_closes() {
    let Some((_db, source, endless)) = endless_query().await else {
        return;
    };
    endless.abort();
    let _ = endless.await;
    assert_eq!(source.cancel_running().await.unwrap(), 1);
    tokio::time::timeout(Duration::from_secs(10), source.close())
        .await
        .expect("the source closes after its dropped query was killed");
}

#[tokio::test]
async fn a_wrong_mysql_password_names_the_source_and_not_the_password() {
    let Some(db) = shop().await else { return };
    let url = support::mysql::as_user(&db.url, "trueup", "n0t-the-pa55word");
    let err = billing(&url).await.expect_err("a wrong password");
    let text = trueup_core::error::chain(&err);
    assert!(text.contains("billing"), "{text}");
    assert!(text.contains("Access denied"), "{text}");
    assert!(!text.contains("n0t-the-pa55word"), "{text}");
}

#[tokio::test]
async fn a_server_mode_that_reads_sql_otherwise_is_taken_off_trueups_sessions() {
    let Some(db) = shop().await else { return };
    // As a server's default mode could be: backslashes literal, double quotes names. (The
    // other tests of this file keep to SQL that reads the same in either mode.)
    db.execute(
        "SET GLOBAL sql_mode = CONCAT(@@GLOBAL.sql_mode, ',NO_BACKSLASH_ESCAPES,ANSI_QUOTES,PIPES_AS_CONCAT')",
    )
    .await;
    let rows = detect(
        &db,
        "SELECT 'it\\'s', \"quoted\", 1 || 0, @@SESSION.tx_read_only FROM orders WHERE id = 1",
    )
    .await;
    db.execute("SET GLOBAL sql_mode = DEFAULT").await;
    assert_eq!(
        rows.unwrap(),
        [vec![
            Value::Text("it's".into()),
            Value::Text("quoted".into()),
            Value::Int(1),
            Value::Int(1),
        ]]
    );
}

#[tokio::test]
async fn validate_names_what_a_mysql_user_may_do_beyond_reading() {
    let Some(db) = shop().await else { return };
    let tables = ["orders".to_owned()];
    // The test server's own user may do everything.
    let admin = open_source(&db.url).await;
    let powers = admin.excess_privileges(&tables, &[]).await.unwrap();
    assert!(
        powers.iter().any(|p| p.contains("on every database")),
        "{powers:?}"
    );
    assert!(
        powers.iter().any(|p| p.contains("kill any session")),
        "{powers:?}"
    );

    // A user that may only read the source's tables has nothing to be warned about; one
    // that may also update `orders` is told so.
    let database = db.url.rsplit('/').next().unwrap().to_owned();
    let user = format!("trueup_ro_{}", std::process::id());
    db.execute(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY 'ro-pass';
         GRANT SELECT ON `{database}`.* TO '{user}'@'%';"
    ))
    .await;
    let reader = open_source(&support::mysql::as_user(&db.url, &user, "ro-pass")).await;
    assert_eq!(
        reader.excess_privileges(&tables, &[]).await.unwrap(),
        Vec::<String>::new()
    );
    db.execute(&format!(
        "GRANT UPDATE ON `{database}`.orders TO '{user}'@'%';"
    ))
    .await;
    let writer = open_source(&support::mysql::as_user(&db.url, &user, "ro-pass")).await;
    let powers = writer.excess_privileges(&tables, &[]).await.unwrap();
    db.execute(&format!("DROP USER '{user}'@'%';")).await;
    assert_eq!(
        powers,
        [format!(
            "user `{user}@%` can write to the tables its rules read: UPDATE on `orders`"
        )]
    );
}

/// `url` opened as trueup opens a source called `billing`, with one connection.
async fn billing(url: &str) -> trueup_core::Result<trueup_core::source::Source> {
    let spec = trueup_core::load::SourceSpec {
        name: "billing".into(),
        url: url.to_owned(),
        max_connections: None,
        connect_timeout: Duration::from_secs(5),
        path: Default::default(),
        file: None,
    };
    trueup_core::source::Source::connect(&spec, std::path::Path::new(""), 1).await
}

/// The TLS version of the session a source's detector runs in (empty without TLS).
async fn tls_version(url: &str) -> Result<String, String> {
    let source = billing(url)
        .await
        .map_err(|e| trueup_core::error::chain(&e))?;
    let mut rows = Rows::default();
    source
        .fetch(
            &raw_query(
                "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS \
                 WHERE VARIABLE_NAME = 'SSL_VERSION'",
            ),
            Duration::from_secs(10),
            &mut rows,
        )
        .await
        .map_err(|e| e.to_string())?;
    source.close().await;
    match rows.0.as_slice() {
        [row] => Ok(row[0].to_string()),
        other => Err(format!("{other:?}")),
    }
}

#[tokio::test]
async fn mysql_tls_modes() {
    let Some(db) = TestDb::mysql().await else {
        return;
    };
    let ca = std::env::var("TRUEUP_TEST_MYSQL_CA")
        .expect("TRUEUP_TEST_MYSQL_CA: the test server's CA, as scripts/test exports it");
    let with = |query: &str| format!("{}?{query}", db.url);
    assert_eq!(tls_version(&with("ssl-mode=disabled")).await.unwrap(), "");
    assert!(
        tls_version(&with("ssl-mode=required"))
            .await
            .unwrap()
            .starts_with("TLS")
    );
    assert!(
        tls_version(&with(&format!("ssl-mode=verify_identity&ssl-ca={ca}")))
            .await
            .unwrap()
            .starts_with("TLS")
    );
    // A certificate no trusted CA signed: refused, with the reason, and no password.
    let err = tls_version(&with("ssl-mode=verify_ca")).await.unwrap_err();
    assert!(err.contains("certificate"), "{err}");
    assert!(!err.contains("trueup-test"), "{err}");
}
