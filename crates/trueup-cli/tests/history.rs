//! Run history through the real binary: `check` records, `runs`, `show`, `diff` in every
//! format, baselines for CI, and `gc`.

mod common;

use std::path::Path;
use std::process::Command;

use common::in_project as trueup;

fn demo(dir: &Path) -> std::path::PathBuf {
    let status = Command::new(env!("CARGO_BIN_EXE_trueup"))
        .args(["--quiet", "demo", "--no-check", "--dir"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
    dir.join("trueup.toml")
}

fn sql(dir: &Path, statement: &str) {
    let status = Command::new("sqlite3")
        .arg(dir.join("shop.db"))
        .arg(statement)
        .status();
    match status {
        Ok(status) => assert!(status.success()),
        // Without the sqlite3 CLI, write through sqlx.
        Err(_) => tokio::runtime::Runtime::new().unwrap().block_on(async {
            let pool =
                sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("shop.db").display()))
                    .await
                    .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
                .execute(&pool)
                .await
                .unwrap();
        }),
    }
}

/// Timestamps and durations vary from run to run.
const FILTERS: [(&str, &str); 2] = [
    (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]"),
    (r"\b\d+ ms\b", "[DURATION]"),
];

#[test]
fn check_records_runs_that_diff_and_show_explain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let project = demo(&dir);
    let (code, _, stderr) = trueup(&project, &["check"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("recorded as run 1"), "{stderr}");
    assert_eq!(trueup(&project, &["check"]).0, Some(1));

    // Same data twice: nothing new, nothing resolved.
    let (code, same, _) = trueup(&project, &["diff", "--format", "json"]);
    assert_eq!(code, Some(0));
    let same: serde_json::Value = serde_json::from_str(&same).unwrap();
    assert_eq!(
        (
            same["new"].as_u64(),
            same["resolved"].as_u64(),
            same["persisting"].as_u64()
        ),
        (Some(0), Some(0), Some(22))
    );

    // Fix one orphan, break one order total.
    sql(
        &dir,
        "UPDATE orders SET customer_id = 1 WHERE id = 698; UPDATE orders SET total_amount = total_amount + 1 WHERE id = 10;",
    );
    assert_eq!(trueup(&project, &["check", "--quiet"]).0, Some(1));
    let (_, human, _) = trueup(&project, &["diff"]);
    insta::assert_snapshot!("diff_human", human);
    let (_, markdown, _) = trueup(
        &project,
        &["diff", "last~2", "last", "--format", "markdown"],
    );
    insta::assert_snapshot!("diff_markdown", markdown);
    let (_, json, _) = trueup(&project, &["diff", "last~2", "last", "--format", "json"]);

    let (_, runs, _) = trueup(&project, &["runs"]);
    let (code, shown, _) = trueup(&project, &["show", "last", "--show", "2"]);
    assert_eq!(code, Some(0));
    insta::with_settings!({ filters => FILTERS.to_vec() }, {
        insta::assert_snapshot!("runs", runs);
        insta::assert_snapshot!("show", shown);
        insta::assert_snapshot!("diff_json", json);
    });

    let (code, _, stderr) = trueup(&project, &["show", "42"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("there is no run 42"), "{stderr}");
}

#[test]
fn baseline_lets_ci_fail_on_new_findings_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let project = demo(&dir);
    assert_eq!(trueup(&project, &["check", "--quiet"]).0, Some(1));
    let (code, _, stderr) = trueup(&project, &["baseline", "accept"]);
    assert_eq!(code, Some(0), "{stderr}");
    let baseline = std::fs::read_to_string(dir.join("trueup.baseline.jsonl")).unwrap();
    assert_eq!(baseline.lines().count(), 22);
    let mut sorted: Vec<&str> = baseline.lines().collect();
    sorted.sort();
    assert_eq!(
        baseline.lines().collect::<Vec<_>>(),
        sorted,
        "sorted by rule, then fingerprint"
    );

    // Only accepted debt: CI passes.
    let (code, stdout, _) = trueup(&project, &["check", "--baseline"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("22 accepted by the baseline"), "{stdout}");

    // Paid-off debt is pointed out.
    sql(&dir, "UPDATE orders SET customer_id = 1 WHERE id = 698;");
    let (code, _, stderr) = trueup(&project, &["check", "--baseline"]);
    assert_eq!(code, Some(0));
    assert!(
        stderr.contains("1 accepted finding(s) of the baseline were not found any more"),
        "{stderr}"
    );
    sql(&dir, "UPDATE orders SET customer_id = 1202 WHERE id = 698;");

    // One new problem: CI fails, and says which.
    sql(
        &dir,
        "UPDATE products SET stock_quantity = stock_quantity + 3 WHERE id = 7;",
    );
    let (code, stdout, _) = trueup(&project, &["check", "--new-only"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("1 new, 4 accepted by the baseline"),
        "{stdout}"
    );
    assert!(stdout.contains("id=7"), "{stdout}");
    let (_, json, _) = trueup(
        &project,
        &["check", "--baseline", "--format", "json", "--quiet"],
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(
        findings.iter().filter(|f| f["baseline"] == true).count(),
        22
    );
    assert_eq!(findings.len(), 23);

    // Accepting a run of one rule replaces that rule's lines only.
    let only_stock = [
        "check",
        "--quiet",
        "--rule",
        "ecommerce.stock-matches-inventory",
    ];
    assert_eq!(trueup(&project, &only_stock).0, Some(1));
    let (code, _, stderr) = trueup(&project, &["baseline", "accept"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("accepted 5 finding(s)") && stderr.contains("kept 18 line(s)"),
        "{stderr}"
    );
    let baseline = std::fs::read_to_string(dir.join("trueup.baseline.jsonl")).unwrap();
    assert_eq!(baseline.lines().count(), 23);
    assert_eq!(
        trueup(&project, &["check", "--baseline", "--quiet"]).0,
        Some(0)
    );
}

#[test]
fn history_commands_need_a_project_and_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nothere/trueup.toml");
    let (code, _, stderr) = trueup(&missing, &["runs"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("there is no project file"), "{stderr}");
    assert!(!tmp.path().join("nothere").exists());
    let project = demo(&tmp.path().join("demo"));
    let (code, _, stderr) = trueup(&project, &["diff"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no runs recorded yet"), "{stderr}");
    assert!(!tmp.path().join("demo/.trueup").exists());
}

#[test]
fn gc_keeps_the_newest_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let project = demo(&tmp.path().join("demo"));
    for _ in 0..4 {
        trueup(&project, &["check", "--quiet"]);
    }
    assert_eq!(
        trueup(&project, &["gc"]).0,
        Some(2),
        "gc without a limit is refused"
    );
    let (code, _, stderr) = trueup(&project, &["gc", "--keep", "2"]);
    assert_eq!(code, Some(0));
    assert!(stderr.contains("deleted 2 run(s)"), "{stderr}");
    let (_, runs, _) = trueup(&project, &["runs", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_str(&runs).unwrap();
    let ids: Vec<i64> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [4, 3]);
    assert_eq!(
        trueup(&project, &["check", "--quiet", "--no-record"]).0,
        Some(1)
    );
    let (_, runs, _) = trueup(&project, &["runs", "--format", "json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&runs)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2,
        "--no-record records nothing"
    );
}

#[test]
fn a_check_killed_mid_run_leaves_an_incomplete_run_that_is_never_taken_for_a_clean_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let project = demo(&dir);
    assert_eq!(trueup(&project, &["check", "--quiet"]).0, Some(1));
    std::fs::write(
        dir.join("rules/slow.toml"),
        r#"[[rule]]
id = "slow.count"
title = "Counts for a long time"
severity = "low"
[rule.detector]
kind = "sql"
key = ["id"]
query = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) SELECT i AS id FROM n WHERE i < 0"
"#,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_trueup"))
        .arg("--project")
        .arg(&project)
        .args(["check", "--quiet"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();

    let (_, runs, _) = trueup(&project, &["runs", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_str(&runs).unwrap();
    let newest = &runs[0];
    assert_eq!(
        (newest["id"].as_i64(), newest["complete"].as_bool()),
        (Some(2), Some(false)),
        "{runs}"
    );
    let (_, listed, _) = trueup(&project, &["runs"]);
    assert!(listed.contains("incomplete"), "{listed}");
    // `last` is the newest complete run, and an incomplete one cannot be diffed.
    let (_, shown, _) = trueup(&project, &["show", "last", "--format", "json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["run"]["id"], 1);
    let (code, _, stderr) = trueup(&project, &["diff", "1", "2"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("run 2 is incomplete"), "{stderr}");
    let (code, _, stderr) = trueup(&project, &["baseline", "accept", "2"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("run 2 is incomplete"), "{stderr}");
    assert!(
        !dir.join("trueup.baseline.jsonl").exists(),
        "nothing was written"
    );
}

/// Issue 12 item 14: `show` counts in the singular when there is one (it said
/// `1 rules · 1 findings`).
#[test]
fn show_says_one_rule_and_one_finding() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let project = demo(&dir);
    std::fs::write(
        dir.join("rules/one.toml"),
        r#"[[rule]]
id = "one.finding"
title = "Exactly one finding"
severity = "low"
[rule.detector]
kind = "sql"
key = ["id"]
query = "SELECT 1 AS id"
"#,
    )
    .unwrap();
    let (code, _, stderr) = trueup(&project, &["check", "--quiet", "--rule", "one.finding"]);
    assert_eq!(code, Some(1), "{stderr}");
    let (code, shown, stderr) = trueup(&project, &["show", "last"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        shown.contains("\n1 rule · 1 finding · 0 errors · "),
        "{shown}"
    );
    assert!(
        shown.contains("one.finding · low · 1 finding · "),
        "{shown}"
    );
}

/// A filtered run records what it selected: `diff` says "not run" for the rules another
/// run did not select (not "removed"/"added"), and `diff` with no arguments compares runs of
/// the same selection, saying which it took.
#[test]
fn filtered_runs_diff_by_their_selection() {
    let tmp = tempfile::tempdir().unwrap();
    let project = demo(tmp.path());
    let orders = ["check", "--rule", "ecommerce.order-*"];
    assert_eq!(trueup(&project, &orders).0, Some(1)); // run 1
    assert_eq!(
        trueup(&project, &["check", "--tag", "inventory"]).0,
        Some(1)
    ); // run 2

    let (code, across, _) = trueup(&project, &["diff", "1", "2"]);
    assert_eq!(code, Some(0), "{across}");
    assert!(
        across.contains("ecommerce.order-total-matches-items · not run in run 2 (not selected)"),
        "{across}"
    );
    assert!(
        across.contains("ecommerce.stock-matches-inventory · not run in run 1 (not selected)"),
        "{across}"
    );
    assert!(
        !across.contains("removed") && !across.contains("added"),
        "{across}"
    );

    assert_eq!(trueup(&project, &orders).0, Some(1)); // run 3
    let (_, listed, _) = trueup(&project, &["runs"]);
    assert!(
        listed.contains("--rule ecommerce.order-*"),
        "runs shows the selection: {listed}"
    );
    let (code, default, stderr) = trueup(&project, &["diff"]);
    assert_eq!(code, Some(0), "{default}{stderr}");
    assert!(
        stderr.contains(
            "comparing run 3 with run 1, the newest complete run before it of the same selection (`--rule ecommerce.order-*`)"
        ),
        "{stderr}"
    );
    assert!(default.starts_with("run 1 → run 3"), "{default}");
    assert!(!default.contains("not run"), "{default}");

    // A selection no earlier run made has nothing to compare with by default.
    assert_eq!(
        trueup(&project, &["check", "--tag", "duplicates"]).0,
        Some(1)
    ); // run 4
    let (code, _, stderr) = trueup(&project, &["diff"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("no complete run before run 4 selected `--tag duplicates` as it did"),
        "{stderr}"
    );
}
