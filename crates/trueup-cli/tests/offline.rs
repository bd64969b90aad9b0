//! Commands that never connect need no secrets: `validate --offline` and `compile` work with
//! the variables a source URL names unset; `check` and `validate` stop before connecting.

mod common;
use common::{project, run, trueup};

/// Never set in a test run.
const UNSET: &str = "TRUEUP_TEST_OFFLINE_UNSET_PASSWORD";

const RULE: &str = r#"
[[rule]]
id = "orders.orphans"
title = "Orders whose customer does not exist"
severity = "high"

[rule.detector]
kind = "foreign-key"
table = "orders"
columns = ["customer_id"]
references = "customers"
"#;

fn trueup_in(dir: &tempfile::TempDir, args: &[&str]) -> common::Run {
    run(trueup()
        .arg("--project")
        .arg(dir.path().join("trueup.toml"))
        .args(args)
        .env_remove(UNSET))
}

#[test]
fn offline_commands_need_no_secret() {
    let url = format!("postgres://app:${{{UNSET}}}@db.internal:5432/shop");
    let dir = project(&url, &[("orders.toml", RULE)]);

    let validated = trueup_in(&dir, &["validate", "--offline"]);
    assert_eq!(validated.code, Some(0), "{}", validated.all());
    assert!(validated.stdout.contains("1 rule in 1 file is valid"));

    let compiled = trueup_in(&dir, &["compile"]);
    assert_eq!(compiled.code, Some(0), "{}", compiled.all());
    assert!(
        compiled.stdout.contains("SELECT child.\"id\""),
        "{}",
        compiled.all()
    );
}

#[test]
fn a_variable_giving_the_whole_url_is_needed_only_to_connect() {
    let dir = project(&format!("${{{UNSET}}}"), &[("orders.toml", RULE)]);
    let validated = trueup_in(&dir, &["validate", "--offline"]);
    assert_eq!(validated.code, Some(0), "{}", validated.all());
}

#[test]
fn connecting_commands_name_the_unset_variable_at_its_url() {
    let url = format!("postgres://app:${{{UNSET}}}@db.internal:5432/shop");
    let dir = project(&url, &[("orders.toml", RULE)]);
    for args in [&["check"][..], &["validate"]] {
        refused(&dir, args, "trueup.toml:3:7: environment variable");
    }
    assert!(!dir.path().join(".trueup").exists(), "nothing is recorded");
}

#[test]
fn a_state_url_variable_is_needed_only_to_open_the_store() {
    let dir = project("sqlite://shop.db", &[("orders.toml", RULE)]);
    let toml = dir.path().join("trueup.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text}[state]\nurl = \"${{{UNSET}}}\"\n")).unwrap();

    for args in [&["validate", "--offline"][..], &["compile"]] {
        let ran = trueup_in(&dir, args);
        assert_eq!(ran.code, Some(0), "{args:?}: {}", ran.all());
    }
    refused(
        &dir,
        &["check"],
        "state store `[state] url`: environment variable",
    );
}

/// Runs `args`, which must exit 2 saying `{at} `UNSET` is not set`.
fn refused(dir: &tempfile::TempDir, args: &[&str], at: &str) {
    let ran = trueup_in(dir, args);
    assert_eq!(ran.code, Some(2), "{args:?}: {}", ran.all());
    let says = format!("{at} `{UNSET}` is not set");
    assert!(ran.stderr.contains(&says), "{args:?}: {}", ran.all());
}
