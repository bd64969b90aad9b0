//! Secrets and oversized or hostile text through the real binary: a password written in any
//! form a driver accepts never reaches `check`, `show` (human or JSON) or the state store
//! file; a 5 MB value makes a short error; a control character from a file never reaches a
//! terminal raw, colours on.

mod common;

use std::path::Path;

use common::{run, trueup};

/// The password every URL here holds, in one form or another.
const PASSWORD: &str = "hunter2";

/// A rule per source, each against an unreachable server.
fn rule(source: &str) -> String {
    format!(
        r#"
[[rule]]
id = "orders.status.{source}"
title = "Unknown order status"
severity = "high"
source = "{source}"
[rule.detector]
kind = "accepted-values"
table = "orders"
column = "status"
values = ["PENDING"]
"#
    )
}

fn project(dir: &Path, project: &str, rules: &str) {
    std::fs::write(dir.join("trueup.toml"), project).unwrap();
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/rules.toml"), rules).unwrap();
}

fn trueup_in(dir: &Path, args: &[&str]) -> common::Run {
    run(trueup()
        .arg("--project")
        .arg(dir.join("trueup.toml"))
        .args(args)
        .current_dir(dir)
        // A URL without a host connects to PGHOST:PGPORT: make that unreachable too.
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", "1"))
}

#[test]
fn hardening_6_percent_encoded_password_is_redacted() {
    let sources = [
        (
            "encoded",
            "postgres://app@127.0.0.1:1/shop?%70assword=hunter2",
        ),
        (
            "upper",
            "postgres://app@127.0.0.1:1/shop?PassWord=hunter2&sslmode=disable",
        ),
        ("ssl", "postgres://app@127.0.0.1:1/shop?sslpassword=hunter2"),
        ("userinfo", "postgresql://app:hunter2@127.0.0.1:1/shop"),
        (
            "encoded_userinfo",
            "postgres://app:hun%74er2@127.0.0.1:1/shop",
        ),
        ("no_slashes", "postgres:app:hunter2@127.0.0.1:1/shop"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut toml = String::from("rules = [\"rules\"]\n");
    let mut rules = String::new();
    for (name, url) in sources {
        toml.push_str(&format!("[sources.{name}]\nurl = \"{url}\"\n"));
        rules.push_str(&rule(name));
    }
    project(dir.path(), &toml, &rules);

    let check = trueup_in(dir.path(), &["check"]);
    assert_eq!(check.code, Some(2), "{}", check.all());
    assert!(
        check
            .all()
            .contains("postgres://app@127.0.0.1:1/shop?%70assword=***"),
        "the URL is named, redacted: {}",
        check.all()
    );
    let json = trueup_in(dir.path(), &["check", "--format", "json"]);
    let report = json.json();
    assert_eq!(
        report["summary"]["errored_rules"],
        sources.len(),
        "{}",
        json.all()
    );
    let show = trueup_in(dir.path(), &["show"]);
    assert!(show.stdout.contains("PassWord=***"), "{}", show.all());
    let show_json = trueup_in(dir.path(), &["show", "--format", "json"]);
    show_json.json();

    for run in [&check, &json, &show, &show_json] {
        assert!(
            !run.all().contains(PASSWORD),
            "the password leaked:\n{}",
            run.all()
        );
    }
    let store = std::fs::read(dir.path().join(".trueup/state.db")).unwrap();
    assert!(
        !store
            .windows(PASSWORD.len())
            .any(|bytes| bytes == PASSWORD.as_bytes()),
        "the state store holds the password"
    );
}

#[test]
fn hardening_6_state_store_url_is_redacted() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        "rules = [\"rules\"]\n[sources.shop]\nurl = \"sqlite://shop.db\"\n\
         [state]\nurl = \"postgres://app@127.0.0.1:1/state?%70assword=hunter2\"\n",
        &rule("shop"),
    );
    let runs = trueup_in(dir.path(), &["runs"]);
    assert_eq!(runs.code, Some(2), "{}", runs.all());
    assert!(runs.stderr.contains("%70assword=***"), "{}", runs.all());
    assert!(!runs.all().contains(PASSWORD), "{}", runs.all());
}

#[test]
fn hardening_14_long_value_is_cut_in_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(5_000_000);
    let rules = rule("shop").replace("severity = \"high\"", &format!("severity = \"{long}\""));
    project(
        dir.path(),
        "rules = [\"rules\"]\n[sources.shop]\nurl = \"sqlite://shop.db\"\n",
        &rules,
    );
    let human = trueup_in(dir.path(), &["validate", "--offline"]);
    assert_eq!(human.code, Some(2), "{}", &human.all()[..2000]);
    assert!(
        human.stderr.len() < 4_000,
        "{} bytes of error:\n{}",
        human.stderr.len(),
        &human.stderr[..2000.min(human.stderr.len())]
    );
    assert!(
        human.stderr.contains("is not a severity"),
        "{}",
        human.stderr
    );
    assert!(human.stderr.contains("x…"), "{}", human.stderr);

    let json = trueup_in(dir.path(), &["validate", "--offline", "--format", "json"]);
    assert!(
        json.stdout.len() < 4_000,
        "{} bytes of JSON",
        json.stdout.len()
    );
    let message = json.json()["problems"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("x…"), "{message}");
}

#[test]
fn hardening_14_no_raw_control_character_reaches_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    // A raw ESC where TOML forbids it (a parse error quoting the line), then an escaped
    // one in a value the message quotes.
    let raw = rule("shop").replace("Unknown order status", "Unknown \u{1b}]0;pwned\u{7} status");
    project(
        dir.path(),
        "rules = [\"rules\"]\n[sources.shop]\nurl = \"sqlite://shop.db\"\n",
        &raw,
    );
    let escaped = rule("\\u001b[2J\\u001b]0;pwned\\u0007shop");
    std::fs::write(dir.path().join("rules/escaped.toml"), escaped).unwrap();

    let output = trueup_in(dir.path(), &["--color", "always", "validate", "--offline"]);
    assert_eq!(output.code, Some(2), "{}", output.all());
    assert!(
        output.stderr.contains(r"\e]0;pwned\x07"),
        "{}",
        output.all()
    );
    assert!(
        output.stderr.contains(r"\e[2J\e]0;pwned\x07shop"),
        "{}",
        output.all()
    );
    // Colours are the only escape sequences left.
    let shown = without_colours(&output.stderr);
    assert!(
        !shown.chars().any(|c| c.is_control() && c != '\n'),
        "a raw control character was printed: {shown:?}"
    );
}

/// `text` without its SGR colour sequences (`ESC [ digits/; m`).
fn without_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("\u{1b}[") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let params = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        if after[params..].starts_with('m') {
            rest = &after[params + 1..];
        } else {
            // Not a colour: keep it, for the assertion to find.
            out.push_str(&rest[start..start + 2]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}
