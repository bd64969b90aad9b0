//! A PostgreSQL server restarted while `trueup check` runs. It has a test binary of its own:
//! cargo runs test binaries one after another, so the restart cannot hit other tests.

#[path = "../../../tests/support/pg.rs"]
mod pg;

use std::process::{Command, Stdio};
use std::time::Duration;

/// Restarts the test server (`scripts/test` exports where it is and how to reach its tools).
fn restart_server() {
    let bin = std::env::var("TRUEUP_TEST_PG_BIN").expect("TRUEUP_TEST_PG_BIN");
    let data = std::env::var("TRUEUP_TEST_PG_DATA").expect("TRUEUP_TEST_PG_DATA");
    let run_as = std::env::var("TRUEUP_TEST_PG_RUN_AS").unwrap_or_default();
    let mut words: Vec<String> = run_as.split_whitespace().map(str::to_owned).collect();
    words.extend([
        format!("{bin}/pg_ctl"),
        "-D".into(),
        data,
        "-m".into(),
        "fast".into(),
        "-w".into(),
        "restart".into(),
    ]);
    let status = Command::new(&words[0])
        .args(&words[1..])
        .stdout(Stdio::null())
        .status()
        .expect("pg_ctl");
    assert!(status.success(), "pg_ctl restart failed");
}

#[tokio::test]
async fn server_restarted_mid_run_fails_the_running_rule_and_nothing_else_breaks() {
    let Some(admin) = pg::admin_url() else { return };
    let url = pg::fresh_database(&admin).await;
    pg::execute(&url, "CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT); INSERT INTO orders VALUES (1, 'LOST');").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("trueup.toml"),
        format!("rules = [\"rules\"]\n[sources.db]\nurl = \"{url}\"\n"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/slow.toml"),
        r#"
[[rule]]
id = "orders.slow"
title = "Runs while the server restarts"
severity = "low"
[rule.detector]
kind = "sql"
key = ["id"]
query = "SELECT id FROM orders, pg_sleep(5)"
"#,
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_trueup"))
        .arg("--project")
        .arg(dir.path().join("trueup.toml"))
        .args(["check", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    restart_server();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("JSON output is complete");
    let error = report["rules"][0]["error"]
        .as_str()
        .expect("the rule failed");
    assert!(
        error.contains("terminating connection") || error.contains("connection"),
        "{error}"
    );
    assert!(!error.contains("trueup-test"), "password leaked: {error}");

    // The server is back, and a new run works.
    let again = Command::new(env!("CARGO_BIN_EXE_trueup"))
        .arg("--project")
        .arg(dir.path().join("trueup.toml"))
        .args(["validate"])
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
