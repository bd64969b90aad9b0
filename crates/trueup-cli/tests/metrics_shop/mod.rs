//! The project the metrics tests run: the demo shop with planted problems and three rules
//! of their own, and a way to change its data between runs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The demo shop (its five rules, 22 planted findings) plus three rules of ours: a backlog
/// of `backlog` rows that alerts on `jump`, a table of broken rows that alerts on `any`,
/// and one that fails (its table is missing).
pub fn shop(dir: &Path, backlog: u32) -> PathBuf {
    let status = Command::new(env!("CARGO_BIN_EXE_trueup"))
        .args(["--quiet", "demo", "--no-check", "--dir"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
    sql(
        dir,
        &format!(
            "CREATE TABLE backlog (id INTEGER PRIMARY KEY); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {backlog}) \
             INSERT INTO backlog SELECT i FROM n; \
             CREATE TABLE broken (id INTEGER PRIMARY KEY); INSERT INTO broken VALUES (1), (2);"
        ),
    );
    std::fs::write(
        dir.join("rules").join("audit.toml"),
        r#"
[[rule]]
id = "audit.backlog"
title = "A known backlog"
severity = "high"
alert-on = "jump"
[rule.detector]
kind = "sql"
query = "SELECT id FROM backlog"
key = ["id"]

[[rule]]
id = "audit.never"
title = "Rows that must never exist"
severity = "critical"
alert-on = "any"
[rule.detector]
kind = "sql"
query = "SELECT id FROM broken"
key = ["id"]

[[rule]]
id = "audit.gone"
title = "A table that is not there"
severity = "medium"
[rule.detector]
kind = "not-null"
table = "no_such_table"
columns = ["id"]
"#,
    )
    .unwrap();
    dir.join("trueup.toml")
}

pub fn sql(dir: &Path, statement: &str) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool =
            sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("shop.db").display()))
                .await
                .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
}

/// Whether `program` (of Debian's `prometheus` package) can run. When it cannot, a test
/// that needs it fails with `TRUEUP_REQUIRE_PROMETHEUS` set (scripts/test sets it), and is
/// skipped, saying so, otherwise.
pub fn prometheus_program(program: &str) -> bool {
    match Command::new(program).arg("--version").output() {
        Ok(output) if output.status.success() => true,
        outcome => {
            assert!(
                std::env::var_os("TRUEUP_REQUIRE_PROMETHEUS").is_none(),
                "{program} is required (TRUEUP_REQUIRE_PROMETHEUS is set) but does not run: \
                 {outcome:?}; install Debian's `prometheus` package"
            );
            eprintln!("skipped: {program} is not installed (Debian's `prometheus` package)");
            false
        }
    }
}
