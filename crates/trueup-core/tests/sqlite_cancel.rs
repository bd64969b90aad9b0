//! An interrupted run stops its SQLite statements inside SQLite: dropping a statement's
//! future leaves SQLite's own thread stepping it, which in `serve` (a process that goes on)
//! would keep a core busy and the connection taken until the query ended by itself.

mod support;

use std::time::Duration;

use support::{Rows, TestDb};
use trueup_core::compile::DetectorQuery;
use trueup_core::load::SourceSpec;
use trueup_core::source::{QueryError, Source};
use trueup_core::template::Template;

fn query(sql: &str) -> DetectorQuery {
    DetectorQuery {
        sql: sql.into(),
        binds: Vec::new(),
        key: vec!["id".into()],
        message: Template::parse("x").unwrap(),
        split: None,
        settings: Vec::new(),
        plugin: None,
    }
}

/// Counts to five billion and returns one row at the end: hours, with no row on the way
/// that could let a dropped stream notice.
const ENDLESS_COUNT: &str = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c \
     WHERE n < 5000000000) SELECT COUNT(*) AS id FROM c";

#[tokio::test]
async fn cancel_running_stops_a_sqlite_statement_and_frees_its_connection() {
    let db = TestDb::sqlite();
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (7);")
        .await;
    let spec = SourceSpec {
        name: "db".into(),
        url: db.url.clone(),
        max_connections: None,
        connect_timeout: trueup_core::project::DEFAULT_CONNECT_TIMEOUT,
        path: Default::default(),
        file: None,
    };
    // One connection: the quick query below gets it only once the endless one let it go.
    let source = Source::connect(&spec, std::path::Path::new(""), 1)
        .await
        .unwrap();
    let endless = {
        let source = source.clone();
        tokio::spawn(async move {
            let mut rows = Rows::default();
            let result = source
                .fetch(&query(ENDLESS_COUNT), Duration::from_secs(3600), &mut rows)
                .await;
            (result, rows.0)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!endless.is_finished(), "the endless query ended by itself");

    let cancelled = source.cancel_running().await.unwrap();
    assert_eq!(cancelled, 1, "one statement was running");
    let (result, rows) = tokio::time::timeout(Duration::from_secs(10), endless)
        .await
        .expect("the statement stops within seconds of the cancel")
        .unwrap();
    assert!(rows.is_empty(), "{rows:?}");
    match result {
        Err(QueryError::Failed(error)) => {
            assert!(error.to_string().contains("interrupted"), "{error}")
        }
        other => panic!("a cancelled query is not a timeout or a result: {other:?}"),
    }

    // The connection is free, and the handler the cancel left on it stops nothing more.
    let mut rows = Rows::default();
    tokio::time::timeout(
        Duration::from_secs(10),
        source.fetch(
            &query("SELECT id FROM t"),
            Duration::from_secs(10),
            &mut rows,
        ),
    )
    .await
    .expect("the connection is free again")
    .unwrap();
    assert_eq!(rows.0.len(), 1);
    assert_eq!(
        source.cancel_running().await.unwrap(),
        0,
        "nothing runs now"
    );
    source.close().await;
}
