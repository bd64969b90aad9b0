//! `trueup rules`: the demo project's rules listed, selected as `check` selects them, with
//! what rule files hold escaped.

mod common;
use common::{project, run, trueup};

/// The demo project in a temp dir, not checked.
fn demo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let created = run(trueup()
        .args(["demo", "--no-check", "--dir"])
        .arg(dir.path()));
    assert_eq!(created.code, Some(0), "{}", created.all());
    dir
}

fn rules(dir: &std::path::Path, args: &[&str]) -> common::Run {
    run(trueup()
        .arg("--project")
        .arg(dir.join("trueup.toml"))
        .arg("rules")
        .args(args))
}

#[test]
fn lists_every_rule_of_the_demo() {
    let dir = demo();
    let listed = rules(dir.path(), &[]);
    assert_eq!(listed.code, Some(0), "{}", listed.all());
    insta::assert_snapshot!(listed.stdout);
}

#[test]
fn selects_as_check_does() {
    let dir = demo();
    let listed = rules(dir.path(), &["--tag", "inventory", "--format", "json"]);
    assert_eq!(listed.code, Some(0), "{}", listed.all());
    insta::assert_snapshot!(listed.stdout);

    let by_id = rules(
        dir.path(),
        &["--rule", "ecommerce.orphaned-*", "--format", "json"],
    );
    let ids: Vec<String> = by_id
        .json()
        .as_array()
        .expect("an array")
        .iter()
        .map(|rule| rule["id"].as_str().expect("an id").to_owned())
        .collect();
    assert_eq!(ids, ["ecommerce.orphaned-orders"]);

    let typo = rules(dir.path(), &["--tag", "inventroy"]);
    assert_eq!(typo.code, Some(2), "{}", typo.all());
    assert!(
        typo.stderr.contains("did you mean `inventory`?"),
        "{}",
        typo.all()
    );
}

#[test]
fn an_unknown_rule_points_to_trueup_rules() {
    let dir = demo();
    let unknown = run(trueup()
        .arg("--project")
        .arg(dir.path().join("trueup.toml"))
        .args(["check", "--rule", "payments.*"]));
    assert_eq!(unknown.code, Some(2), "{}", unknown.all());
    assert!(
        unknown.stderr.contains("`trueup rules` lists every rule"),
        "{}",
        unknown.all()
    );
}

#[test]
fn control_characters_from_rule_files_are_escaped() {
    let rule = r#"
[[rule]]
id = "t.rows"
title = "Rows"
severity = "low"
owner = "data\u001b[31m-team"
tags = ["a\u0007b"]

[rule.detector]
kind = "sql"
query = "SELECT 1 AS id WHERE 0"
key = ["id"]
"#;
    let dir = project("sqlite://unused.db", &[("t.toml", rule)]);
    let listed = rules(dir.path(), &[]);
    assert_eq!(listed.code, Some(0), "{}", listed.all());
    assert!(
        !listed.stdout.contains('\u{1b}') && !listed.stdout.contains('\u{7}'),
        "{:?}",
        listed.stdout
    );
    assert!(
        listed.stdout.contains(r"data\e[31m-team"),
        "{}",
        listed.stdout
    );
}
