//! Faults on a real PostgreSQL server, through the real binary: each must end as a clear
//! error for the rules it touches (exit 2), never a panic, never a password in the output.

mod common;
#[path = "../../../tests/support/pg.rs"]
mod pg;

use std::process::{Command, Output};
use std::time::Duration;

const SETUP: &str = "
CREATE SEQUENCE order_numbers;
CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT, total NUMERIC(12,2));
INSERT INTO orders VALUES (1, 'COMPLETED', 10.00), (2, 'LOST', 5.00), (3, 'PENDING', -1.00);
";

/// A rule that always finds order 2, to show that the run goes on around a failing rule.
const GOOD_RULE: &str = r#"
[[rule]]
id = "orders.status"
title = "Unknown order status"
severity = "high"
[rule.detector]
kind = "accepted-values"
table = "orders"
column = "status"
values = ["PENDING", "COMPLETED"]
"#;

fn project(url: &str, extra_rule: &str) -> tempfile::TempDir {
    let mut files = vec![("good.toml", GOOD_RULE)];
    if !extra_rule.is_empty() {
        files.push(("extra.toml", extra_rule));
    }
    common::project(url, &files)
}

fn trueup(dir: &tempfile::TempDir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trueup"))
        .arg("--project")
        .arg(dir.path().join("trueup.toml"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_clean_failure(output: &Output, secret: &str) -> String {
    let all = text(output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(!all.contains("panicked"), "{all}");
    assert!(!all.contains(secret), "the password leaked:\n{all}");
    all
}

async fn database() -> Option<String> {
    let url = pg::fresh_database(&pg::admin_url()?).await;
    pg::execute(&url, SETUP).await;
    Some(url)
}

#[tokio::test]
async fn wrong_password_is_a_connection_error_without_the_password() {
    let Some(url) = database().await else { return };
    let wrong = url.replace(":trueup-test@", ":not-the-password@");
    let output = trueup(&project(&wrong, ""), &["check"]);
    let all = assert_clean_failure(&output, "not-the-password");
    assert!(all.contains("password authentication failed"), "{all}");
    assert!(all.contains(":***@"), "the URL is shown redacted: {all}");
}

#[tokio::test]
async fn unreachable_host_is_a_connection_error() {
    let output = trueup(
        &project("postgres://app:hunter2@127.0.0.1:1/shop", ""),
        &["check"],
    );
    let all = assert_clean_failure(&output, "hunter2");
    assert!(all.contains("source `db` cannot be opened"), "{all}");
}

#[test]
fn connection_words_a_host_that_never_answers_is_named_with_the_connect_timeout() {
    // A server that accepts connections and says nothing: the probe waits for its answer.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let dir = project(&format!("postgres://app:hunter2@127.0.0.1:{port}/shop"), "");
    let toml = dir.path().join("trueup.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text}connect-timeout = \"1s\"\n")).unwrap();
    let output = trueup(&dir, &["check", "--format", "json", "--no-record"]);
    let all = assert_clean_failure(&output, "hunter2");
    let expected =
        format!("could not connect to source `db` at 127.0.0.1:{port} within 1s (connect-timeout)");
    assert!(all.contains(&expected), "{all}");
    assert!(!all.contains("pool timed out"), "{all}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let rule = &report["rules"][0];
    assert_eq!(rule["error_cause"], "connection", "{all}");
    assert!(rule["error"].as_str().unwrap().contains(&expected), "{all}");
    // The rule waited for the connection as long as the timeout: its time says so.
    let waited = rule["duration_ms"].as_u64().expect("a duration");
    assert!(waited >= 1000, "the rule reports {waited} ms:\n{all}");
}

#[tokio::test]
async fn connection_words_a_password_the_url_misreads_gets_an_encoding_hint() {
    let Some(url) = database().await else { return };
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let role = format!(
        "trueup_hash_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let password = "Zq#Kx7/Wv";
    pg::execute(
        &url,
        &format!("CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'; GRANT SELECT ON orders TO \"{role}\";"),
    )
    .await;
    let (_, host) = url.rsplit_once('@').unwrap();
    // In a parameter, `#` starts the fragment: the server gets `Zq` and says no.
    let in_parameter = format!("postgres://{role}@{host}?password={password}");
    let output = trueup(&project(&in_parameter, ""), &["check", "--no-record"]);
    let all = assert_clean_failure(&output, "Kx7");
    assert!(all.contains("password authentication failed"), "{all}");
    assert!(
        all.contains("hint: the password contains `#`, which must be written %23 in a URL"),
        "{all}"
    );
    // Before the `@`, `/` and `#` end the host: the URL is misread before connecting.
    let in_userinfo = format!("postgres://{role}:{password}@{host}");
    let output = trueup(&project(&in_userinfo, ""), &["check", "--no-record"]);
    let all = assert_clean_failure(&output, "Kx7");
    assert!(
        all.contains("which must be written %2F and %23 in a URL"),
        "{all}"
    );
    // Written as the hint says, it connects and the rule runs.
    let encoded = format!("postgres://{role}:Zq%23Kx7%2FWv@{host}");
    let output = trueup(&project(&encoded, ""), &["check", "--no-record"]);
    assert!(text(&output).contains("1 finding"), "{}", text(&output));
    pg::drop_roles(&url, &[&role]).await;
}

/// A rule on `accounts`, which is in schema `billing`, not on the search_path.
const ACCOUNTS_RULES: &str = r#"
[[rule]]
id = "accounts.owner"
title = "Account without an owner"
severity = "low"
[rule.detector]
kind = "not-null"
table = "accounts"
columns = ["owner"]

[[rule]]
id = "accounts.sql"
title = "Account without an owner, in SQL"
severity = "low"
[rule.detector]
kind = "sql"
key = ["id"]
query = "SELECT id FROM accounts WHERE owner IS NULL"
"#;

#[tokio::test]
async fn connection_words_an_unqualified_table_in_another_schema_is_suggested_qualified() {
    let Some(url) = database().await else { return };
    pg::execute(
        &url,
        "CREATE SCHEMA billing; CREATE TABLE billing.accounts (id INTEGER PRIMARY KEY, owner TEXT); \
         INSERT INTO billing.accounts VALUES (1, NULL);",
    )
    .await;
    let output = trueup(&project(&url, ACCOUNTS_RULES), &["check", "--no-record"]);
    let all = assert_clean_failure(&output, "trueup-test");
    // The built-in (checked before it runs) and the SQL rule (failed with 42P01) both say
    // where the table is.
    assert!(
        all.contains(
            "source `db` has no table `accounts`; there is `billing.accounts` in another schema"
        ),
        "{all}"
    );
    assert!(
        all.contains("relation \"accounts\" does not exist; hint: there is `billing.accounts` in another schema"),
        "{all}"
    );
    assert!(all.contains("options=-csearch_path%3Dbilling"), "{all}");
    // The search_path the hint suggests finds it, and tables of the other schemas on the
    // path are still found (`orders`, in public).
    let with_path = format!("{url}?options=-csearch_path%3Dbilling,public");
    let output = trueup(
        &project(&with_path, ACCOUNTS_RULES),
        &["check", "--no-record"],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("3 findings"), "{all}");
}

#[tokio::test]
async fn timed_out_rule_is_cancelled_on_the_server_and_the_rest_reports() {
    let Some(url) = database().await else { return };
    let slow = r#"
[[rule]]
id = "orders.slow"
title = "A query slower than its timeout"
severity = "low"
timeout = "1s"
[rule.detector]
kind = "sql"
key = ["id"]
query = "SELECT id FROM orders, pg_sleep(30) AS trueup_fault_test_sleep"
"#;
    let dir = project(&url, slow);
    let started = std::time::Instant::now();
    let output = trueup(&dir, &["check", "--format", "json"]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the timeout did not stop the rule"
    );
    assert_clean_failure(&output, "trueup-test");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rules = report["rules"].as_array().unwrap();
    let slow = rules.iter().find(|r| r["id"] == "orders.slow").unwrap();
    assert!(
        slow["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 1s"),
        "{slow}"
    );
    let good = rules.iter().find(|r| r["id"] == "orders.status").unwrap();
    assert_eq!(good["findings"], 1);
    // The server no longer runs the query: it was cancelled there, not only abandoned.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let still_running: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE '%trueup_fault_test_sleep%' AND state = 'active' AND pid <> pg_backend_pid()",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(still_running, 0);
}

#[tokio::test]
async fn sql_valid_on_sqlite_but_not_postgres_fails_only_its_rule() {
    let Some(url) = database().await else { return };
    let sqlite_only = r#"
[[rule]]
id = "orders.sqlite-dialect"
title = "Uses SQLite's IFNULL and double-quoted strings"
severity = "low"
[rule.detector]
kind = "sql"
key = ["id"]
query = "SELECT id FROM orders WHERE IFNULL(status, \"none\") = \"LOST\""
"#;
    let output = trueup(&project(&url, sqlite_only), &["check"]);
    let all = assert_clean_failure(&output, "trueup-test");
    assert!(all.contains("orders.sqlite-dialect"), "{all}");
    assert!(
        all.contains("does not exist"),
        "PostgreSQL's own message is shown: {all}"
    );
    assert!(
        all.contains("1 finding"),
        "the other rule still reports: {all}"
    );
}

#[tokio::test]
async fn database_dropped_mid_run_fails_the_running_rule() {
    let Some(admin) = pg::admin_url() else { return };
    let Some(url) = database().await else { return };
    let slow = r#"
[[rule]]
id = "orders.slow"
title = "Runs while the database is dropped"
severity = "low"
[rule.detector]
kind = "sql"
key = ["id"]
query = "SELECT id FROM orders, pg_sleep(5)"
"#;
    let dir = project(&url, slow);
    let name = url.rsplit('/').next().unwrap().to_owned();
    let child = Command::new(env!("CARGO_BIN_EXE_trueup"))
        .arg("--project")
        .arg(dir.path().join("trueup.toml"))
        .args(["check"])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    pg::execute(&admin, &format!("DROP DATABASE \"{name}\" WITH (FORCE)")).await;
    let output = child.wait_with_output().unwrap();
    let all = assert_clean_failure(&output, "trueup-test");
    assert!(all.contains("orders.slow"), "{all}");
    assert!(
        all.contains("terminating connection") || all.contains("does not exist"),
        "{all}"
    );
}

#[tokio::test]
async fn a_detector_whose_function_writes_is_stopped_by_the_read_only_transaction() {
    let Some(url) = database().await else { return };
    // A plain SELECT whose function writes (a sequence): no lexical guard can see that, the
    // read-only transaction must stop it.
    let writer = r#"
[[rule]]
id = "orders.sneaky-write"
title = "A detector that advances a sequence"
severity = "low"
[rule.detector]
kind = "sql"
key = ["id"]
query = "SELECT nextval('order_numbers') AS id"
"#;
    let output = trueup(&project(&url, writer), &["check"]);
    let all = assert_clean_failure(&output, "trueup-test");
    assert!(
        all.contains("cannot execute nextval() in a read-only transaction"),
        "{all}"
    );
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let next: i64 = sqlx::query_scalar("SELECT nextval('order_numbers')")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(next, 1, "the detector did not advance the sequence");
}

#[tokio::test]
async fn runs_recorded_in_a_shared_postgres_state_store() {
    let Some(admin) = pg::admin_url() else { return };
    let Some(url) = database().await else { return };
    let state = pg::fresh_database(&admin).await;
    let dir = project(&url, "");
    let toml = dir.path().join("trueup.toml");
    let written = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        format!("{written}\n[state]\nurl = \"${{TRUEUP_STATE_URL}}\"\n"),
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_trueup"))
            .arg("--project")
            .arg(&toml)
            .args(args)
            .env("NO_COLOR", "1")
            .env("TRUEUP_STATE_URL", &state)
            .output()
            .unwrap()
    };
    let first = run(&["check"]);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    // The store it names is the PostgreSQL one it recorded in, without its password
    // (core-layers issue, item 4: it said `.trueup/state.db`, then `***` for a `${VAR}`).
    let said = String::from_utf8_lossy(&first.stderr);
    assert!(
        said.contains("recorded as run 1 (postgres://postgres:***@127.0.0.1:"),
        "{said}"
    );
    assert!(!said.contains(".trueup/state.db"), "{said}");
    assert!(!said.contains("trueup-test"), "the password leaked: {said}");
    pg::execute(&url, "UPDATE orders SET status = 'PENDING' WHERE id = 2").await;
    assert_eq!(run(&["check", "--quiet"]).status.code(), Some(0));
    let diff = run(&["diff", "--format", "json"]);
    let diff: serde_json::Value = serde_json::from_slice(&diff.stdout).unwrap();
    assert_eq!(
        (diff["new"].as_u64(), diff["resolved"].as_u64()),
        (Some(0), Some(1))
    );
    assert!(
        !dir.path().join(".trueup").exists(),
        "nothing recorded locally"
    );
    // Without the variable: a clear error naming it, no password anywhere.
    let missing = Command::new(env!("CARGO_BIN_EXE_trueup"))
        .arg("--project")
        .arg(&toml)
        .args(["runs"])
        .output()
        .unwrap();
    let all = text(&missing);
    assert_eq!(missing.status.code(), Some(2), "{all}");
    assert!(all.contains("TRUEUP_STATE_URL"), "{all}");
}
