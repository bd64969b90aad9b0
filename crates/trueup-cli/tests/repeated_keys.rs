//! A `sql` rule whose query returns a key on more than one row: one finding per key, the
//! repeats counted on the rule, so that `check`, `diff` and `baseline accept` agree.

mod common;

use std::path::Path;

use common::in_project as trueup;

fn write_rows(dir: &Path, rows: &str) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let url = format!("sqlite://{}?mode=rwc", dir.join("data.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP TABLE IF EXISTS t; CREATE TABLE t (k INTEGER, v TEXT); INSERT INTO t VALUES {rows}"
        )))
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    });
}

#[test]
fn a_key_on_two_rows_is_one_finding_in_check_diff_and_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir(dir.join("rules")).unwrap();
    std::fs::write(
        dir.join("trueup.toml"),
        "rules = [\"rules\"]\n[sources.db]\nurl = \"sqlite://data.db\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("rules/dup.toml"),
        "[[rule]]\nid = \"dup\"\ntitle = \"Rows\"\nseverity = \"low\"\n[rule.detector]\n\
         kind = \"sql\"\nkey = [\"k\"]\nquery = \"SELECT k, v FROM t ORDER BY v\"\n",
    )
    .unwrap();
    let project = dir.join("trueup.toml");
    write_rows(dir, "(1, 'a'), (1, 'b'), (2, 'c'), (1, 'd')");

    let (code, stdout, stderr) = trueup(&project, &["check", "--format", "json"]);
    assert_eq!(code, Some(1), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2, "{stdout}");
    // The first row's detail is kept.
    assert_eq!(findings[0]["key"]["k"], 1);
    assert_eq!(findings[0]["detail"]["v"], "a");
    assert_eq!(report["rules"][0]["findings"], 2, "{stdout}");
    assert_eq!(report["rules"][0]["repeated_rows"], 2, "{stdout}");
    assert_eq!(report["summary"]["findings"], 2, "{stdout}");

    let (_, human, _) = trueup(&project, &["check"]);
    assert!(
        human.contains("2 findings (2 more rows repeating their keys)"),
        "{human}"
    );

    // The key is still found (now on one row): nothing resolved, nothing new.
    write_rows(dir, "(1, 'a'), (2, 'c')");
    trueup(&project, &["check", "--format", "json"]);
    let (code, diff, stderr) = trueup(&project, &["diff", "--format", "json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let diff: serde_json::Value = serde_json::from_str(&diff).unwrap();
    assert_eq!(
        (
            diff["new"].as_u64(),
            diff["resolved"].as_u64(),
            diff["persisting"].as_u64()
        ),
        (Some(0), Some(0), Some(2)),
        "{diff}"
    );
    let (_, runs, _) = trueup(&project, &["runs", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_str(&runs).unwrap();
    assert_eq!(runs[1]["findings"], 2, "{runs}");

    // A run with repeats: one baseline line per key.
    let (code, _, stderr) = trueup(&project, &["baseline", "accept", "1"]);
    assert_eq!(code, Some(0), "{stderr}");
    let baseline = std::fs::read_to_string(dir.join("trueup.baseline.jsonl")).unwrap();
    assert_eq!(baseline.lines().count(), 2, "{baseline}");
    let (_, shown, _) = trueup(&project, &["show", "1", "--format", "json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        shown["findings"].as_array().map(Vec::len),
        Some(2),
        "{shown}"
    );
}
