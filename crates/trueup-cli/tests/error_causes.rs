//! A rule's failure is typed by its cause (core-layers issue, item 3): `check --format json`
//! labels each failed rule's `error_cause`, the label metrics count by and a scheduler
//! retries by, through the real binary on a real SQLite file.

mod common;

use common::{project, run, trueup};

/// A rule `id` with the detector `detector` (an inline table) and its `extra` fields.
fn rule(id: &str, extra: &str, detector: &str) -> String {
    format!(
        "[[rule]]\nid = \"{id}\"\ntitle = \"{id}\"\nseverity = \"low\"\n{extra}detector = {detector}\n\n"
    )
}

#[test]
fn each_failed_rule_is_labelled_with_its_cause() {
    let rules = [
        rule(
            "refused",
            "",
            r#"{ kind = "sql", key = ["id"], query = "SELECT 1 AS id; SELECT 2 AS id" }"#,
        ),
        rule(
            "configuration",
            "",
            r#"{ kind = "not-null", table = "t", columns = ["nosuch"] }"#,
        ),
        rule(
            "query",
            "",
            r#"{ kind = "sql", key = ["id"], query = "SELECT id FROM t WHERE nosuch_function(id)" }"#,
        ),
        rule(
            "timeout",
            "timeout = \"1s\"\n",
            r#"{ kind = "sql", key = ["id"], query = "WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n) SELECT id FROM n WHERE id < 0" }"#,
        ),
    ]
    .concat();
    let dir = project("sqlite://data.db", &[("rules.toml", &rules)]);
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("data.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
        sqlx::raw_sql("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let checked = run(trueup()
        .arg("--project")
        .arg(dir.path().join("trueup.toml"))
        .args(["check", "--no-record", "--format", "json"]));
    assert_eq!(checked.code, Some(2), "{}", checked.all());
    let report = checked.json();
    for rule in report["rules"].as_array().unwrap() {
        // Each rule is named after the cause it must fail with.
        assert_eq!(rule["error_cause"], rule["id"], "{}", checked.all());
    }
    assert_eq!(report["rules"].as_array().unwrap().len(), 4);
}
