//! The repair commands through the real binary: what a user reads and the exit codes CI and
//! cron act on (0 done, 2 refused or stopped by an error), on the demo shop.

mod common;

use common::in_project;

/// A demo project (the e-commerce pack on a SQLite shop with planted problems).
fn demo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let run = common::run(
        common::trueup()
            .args(["demo", "--dir"])
            .arg(dir.path())
            .env("NO_COLOR", "1"),
    );
    assert_eq!(run.code, Some(0), "the demo runs: {}", run.all());
    dir
}

#[test]
fn plan_apply_repairs_and_undo_tell_what_they_did() {
    let dir = demo();
    let project = dir.path().join("trueup.toml");
    let plan = dir.path().join("p.jsonl");
    let (code, out, err) = in_project(&project, &["plan", "-o", plan.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("ecommerce.orphaned-orders · delete · 3 rows of `orders`"),
        "{out}"
    );
    assert!(
        out.contains("order_items: "),
        "the cascade is counted: {out}"
    );
    assert!(out.contains("not repaired: manual:"), "{out}");

    let (code, out, err) = in_project(&project, &["plan", "--format", "sql"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("DELETE FROM \"orders\""), "{out}");

    // The recompute gives the payments rule new findings: refused, exit 2, nothing of it kept.
    let (code, out, err) = in_project(&project, &["apply", plan.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        out.contains("new findings") && out.contains("--allow-new-findings"),
        "{out}"
    );
    let (code, out, err) = in_project(
        &project,
        &[
            "apply",
            plan.to_str().unwrap(),
            "--allow-new-findings",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        report["rules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["error"].is_null()),
        "{out}"
    );

    let (code, out, _) = in_project(&project, &["repairs"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("apply") && out.contains("complete"), "{out}");
    let (code, out, _) = in_project(&project, &["repairs", "--format", "json"]);
    assert_eq!(code, Some(0));
    let repairs: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = repairs[0]["id"].as_i64().unwrap().to_string();

    let (code, out, err) = in_project(&project, &["undo", &id]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!("undid repair {id}")), "{out}");
    let (code, _, err) = in_project(&project, &["undo", &id]);
    assert_eq!(code, Some(2));
    assert!(err.contains("already undone"), "{err}");
}

#[test]
fn refused_and_mistaken_repairs_exit_2() {
    let dir = demo();
    let project = dir.path().join("trueup.toml");
    let rule = dir.path().join("rules/ecommerce/orphaned-orders.toml");
    let text = std::fs::read_to_string(&rule)
        .unwrap()
        .replace("max-rows = 1000", "max-rows = 2");
    std::fs::write(&rule, text).unwrap();
    let plan = dir.path().join("p.jsonl");
    let select = ["--rule", "ecommerce.orphaned-orders"];
    let mut args = vec!["plan", "-o", plan.to_str().unwrap()];
    args.extend(select);
    let (code, out, err) = in_project(&project, &args);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("refused:") && out.contains("max-rows"),
        "{out}"
    );
    let (code, out, err) = in_project(&project, &["apply", plan.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(out.contains("not applied:"), "{out}");

    let (code, _, err) = in_project(&project, &["apply", plan.to_str().unwrap(), "--rule", "x"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("a plan file is applied whole"), "{err}");
    let (code, _, err) = in_project(
        &project,
        &["apply", plan.to_str().unwrap(), "--max-rows", "5"],
    );
    assert_eq!(code, Some(2), "--max-rows needs --yes: {err}");
    let (code, _, err) = in_project(&project, &["repairs", "--source", "shopp"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no source `shopp`"), "{err}");
    let (code, _, err) = in_project(&project, &["undo", "42"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("repair 42"), "{err}");
    let missing = dir.path().join("missing.jsonl");
    let (code, _, err) = in_project(&project, &["apply", missing.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("missing.jsonl"), "{err}");
}

#[test]
fn a_source_that_cannot_be_reached_fails_plan_and_apply_with_exit_2() {
    let dir = demo();
    let project = dir.path().join("trueup.toml");
    let text = std::fs::read_to_string(&project).unwrap().replace(
        "sqlite://shop.db",
        "postgres://trueup:secret@127.0.0.1:1/shop",
    );
    std::fs::write(&project, text).unwrap();
    let (code, out, err) = in_project(&project, &["plan"]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(out.contains("cannot connect to source `shop`"), "{out}");
    assert!(
        !format!("{out}{err}").contains("secret"),
        "no password in output"
    );
    let (code, out, err) = in_project(&project, &["apply", "--dry-run"]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(out.contains("not planned:"), "{out}");
    assert!(!out.contains("nothing to repair"), "{out}");
}

#[cfg(unix)]
#[test]
fn a_plan_written_to_a_fifo_is_an_error_not_a_hang() {
    let dir = demo();
    let project = dir.path().join("trueup.toml");
    let fifo = dir.path().join("plan.fifo");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .unwrap();
    let (code, out, err) = in_project(&project, &["plan", "-o", fifo.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("plan.fifo: it is a FIFO"), "{err}");
}
