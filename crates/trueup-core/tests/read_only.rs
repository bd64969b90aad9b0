//! Detection never writes: even a statement that slips past the lexical guard is refused by
//! the read-only connection itself.

mod support;

use std::time::Duration;

use support::TestDb;
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

#[tokio::test]
async fn sqlite_sources_refuse_writes() {
    let db = TestDb::sqlite();
    db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY); INSERT INTO orders VALUES (1);")
        .await;
    let spec = SourceSpec {
        name: "db".into(),
        url: db.url.clone(),
        max_connections: None,
        path: Default::default(),
    };
    let source = Source::connect(&spec, std::path::Path::new(""), 1)
        .await
        .unwrap();
    let query = DetectorQuery {
        sql: "DELETE FROM orders RETURNING id".into(),
        binds: Vec::new(),
        key: vec!["id".into()],
        message: Template::parse("x").unwrap(),
        split: None,
        settings: Vec::new(),
        plugin: None,
    };
    let result = source
        .fetch(&query, Duration::from_secs(5), &mut Discard)
        .await;
    let Err(QueryError::Failed(err)) = result else {
        panic!("the write was not refused")
    };
    assert!(
        trueup_core::error::chain(&err).contains("readonly"),
        "{err}"
    );
    source.close().await;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(&sqlx::SqlitePool::connect(&db.url).await.unwrap())
        .await
        .unwrap();
    assert_eq!(count, 1);
}
