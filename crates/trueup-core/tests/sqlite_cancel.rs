//! An interrupted run stops its SQLite statements inside SQLite: dropping a statement's
//! future leaves SQLite's own thread stepping it, which in `serve` (a process that goes on)
//! would keep a core busy and the connection taken until the query ended by itself.

mod support;

use std::time::Duration;

use support::{Rows, TestDb, open_source, raw_query};
use trueup_core::source::QueryError;

/// Counts to five billion and returns one row at the end: hours, with no row on the way
/// that could let a dropped stream notice.
const ENDLESS_COUNT: &str = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c \
     WHERE n < 5000000000) SELECT COUNT(*) AS id FROM c";

#[tokio::test]
async fn cancel_running_stops_a_sqlite_statement_and_frees_its_connection() {
    let db = TestDb::sqlite();
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (7);")
        .await;
    // One connection: the quick query below gets it only once the endless one let it go.
    let source = open_source(&db.url).await;
    let endless = {
        let source = source.clone();
        tokio::spawn(async move {
            let mut rows = Rows::default();
            let result = source
                .fetch(
                    &raw_query(ENDLESS_COUNT),
                    Duration::from_secs(3600),
                    &mut rows,
                )
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
            &raw_query("SELECT id FROM t"),
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
