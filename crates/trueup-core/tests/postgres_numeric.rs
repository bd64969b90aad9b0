//! PostgreSQL values that are text to trueup: every `NUMERIC` is the text the server itself
//! writes for it (thousands of values of every size and scale, compared one by one), and
//! `json`/`jsonb` are their text.

mod support;

use std::time::Duration;

use support::{open_source, pg, raw_query};
use trueup_core::source::RowSink;
use trueup_core::value::Value;

struct Compare(usize);

impl RowSink for Compare {
    fn columns(&mut self, _: Vec<String>) -> trueup_core::Result<()> {
        Ok(())
    }
    async fn row(&mut self, values: Vec<Value>) -> trueup_core::Result<()> {
        match values.as_slice() {
            [Value::Decimal(read), Value::Text(server)] => assert_eq!(read, server),
            other => panic!("unexpected row {other:?}"),
        }
        self.0 += 1;
        Ok(())
    }
}

#[tokio::test]
async fn hardening_13_every_numeric_reads_as_the_servers_text() {
    let Some(admin) = pg::admin_url() else { return };
    let url = pg::fresh_database(&admin).await;
    let source = open_source(&url).await;
    let sql = "SELECT v, v::text FROM (
          SELECT round((random() - 0.5)::numeric * 10::numeric ^ (g % 80 - 40), g % 45) AS v
          FROM generate_series(1, 20000) AS g
          UNION ALL SELECT ln(g::numeric) * 10::numeric ^ (g % 50) FROM generate_series(1, 2000) AS g
          UNION ALL SELECT -exp((g % 300)::numeric) FROM generate_series(1, 300) AS g
          UNION ALL SELECT v::numeric FROM unnest(ARRAY['NaN', 'Infinity', '-Infinity', '0', '0.0000', '-0.5']) AS v
        ) AS s";
    let query = raw_query(sql);
    let mut compare = Compare(0);
    source
        .fetch(&query, Duration::from_secs(60), &mut compare)
        .await
        .unwrap();
    assert_eq!(compare.0, 22_306);
    source.close().await;
}

#[tokio::test]
async fn json_and_jsonb_read_as_their_text() {
    let Some(admin) = pg::admin_url() else { return };
    let source = open_source(&pg::fresh_database(&admin).await).await;
    let query = raw_query(
        "SELECT '{\"a\": [1, 2]}'::json, '{\"a\": [1, 2]}'::jsonb::text, '{\"a\": [1, 2]}'::jsonb",
    );
    struct Same;
    impl RowSink for Same {
        fn columns(&mut self, _: Vec<String>) -> trueup_core::Result<()> {
            Ok(())
        }
        async fn row(&mut self, values: Vec<Value>) -> trueup_core::Result<()> {
            assert_eq!(values[0], Value::Text("{\"a\": [1, 2]}".into()));
            assert_eq!(values[1], values[2]);
            Ok(())
        }
    }
    source
        .fetch(&query, Duration::from_secs(10), &mut Same)
        .await
        .unwrap();
    source.close().await;
}
