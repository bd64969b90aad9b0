//! SQL smuggled through a rule's fragments never runs (hardening issue, item 1): a `where`
//! that closes its parenthesis and adds statements is refused, the rule fails with the
//! reason, the other rules run, and nothing is written anywhere.

use std::path::Path;

mod common;
use common::{run, trueup};

/// The demo project in `dir` plus one rule file `extra.toml` holding `rule`.
fn project_with(dir: &Path, rule: &str) -> std::path::PathBuf {
    let created = run(trueup().args(["demo", "--no-check", "--dir"]).arg(dir));
    assert_eq!(created.code, Some(0), "{}", created.all());
    std::fs::write(dir.join("rules/extra.toml"), rule).unwrap();
    dir.join("trueup.toml")
}

#[test]
fn hardening_1_vacuum_into_in_where_never_runs_and_fails_only_its_rule() {
    let dir = tempfile::tempdir().unwrap();
    let project = project_with(
        dir.path(),
        r#"
[[rule]]
id = "smuggled.vacuum"
title = "A where that writes a copy of the database"
severity = "low"
detector = { kind = "not-null", table = "customers", columns = ["email"], where = "1=1); VACUUM INTO 'copy.db'; SELECT (1" }
"#,
    );
    let checked = run(trueup()
        .current_dir(dir.path())
        .arg("--project")
        .arg(&project)
        .args(["check", "--format", "json"]));
    assert_eq!(checked.code, Some(2), "{}", checked.all());
    let report = checked.json();
    let rules = report["rules"].as_array().unwrap();
    let smuggled = rules.iter().find(|r| r["id"] == "smuggled.vacuum").unwrap();
    let error = smuggled["error"].as_str().unwrap();
    assert!(
        error.contains("extra.toml:6:") && error.contains("exactly one SQL expression"),
        "{error}"
    );
    // The pack's own rules ran and found their planted rows.
    let orphans = rules
        .iter()
        .find(|r| r["id"] == "ecommerce.orphaned-orders")
        .unwrap();
    assert_eq!(orphans["findings"], 3, "{}", checked.all());
    assert!(!dir.path().join("copy.db").exists());
    assert!(!dir.path().join("rules/copy.db").exists());

    let validated = run(trueup()
        .current_dir(dir.path())
        .arg("--project")
        .arg(&project)
        .args(["validate", "--offline"]));
    assert_eq!(validated.code, Some(2), "{}", validated.all());
    assert!(
        validated.stderr.contains("extra.toml:6:") && validated.stderr.contains("`where`"),
        "{}",
        validated.all()
    );

    let compiled =
        run(trueup()
            .arg("--project")
            .arg(&project)
            .args(["compile", "--rule", "smuggled.vacuum"]));
    assert_eq!(compiled.code, Some(2), "{}", compiled.all());
    assert!(
        compiled.stdout.contains("-- refused: "),
        "{}",
        compiled.all()
    );
    assert!(
        !compiled.stdout.contains("FROM \"customers\""),
        "{}",
        compiled.all()
    );
    assert!(!dir.path().join("copy.db").exists());
}

#[test]
fn hardening_1_a_smuggled_row_count_is_a_rule_error_not_a_panic() {
    for format in ["human", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let project = project_with(
            dir.path(),
            r#"
[[rule]]
id = "smuggled.count"
title = "Orders exist"
severity = "low"
detector = { kind = "row-count", table = "orders", min = 1, where = "1=1); SELECT (1" }

[[rule]]
id = "smuggled.values"
title = "Statuses"
severity = "low"
detector = { kind = "accepted-values", table = "orders", column = "status", values = ["PENDING"], where = "1=1); SELECT (1" }
"#,
        );
        // `run` fails the test on a panic.
        let checked = run(trueup()
            .arg("--project")
            .arg(&project)
            .args(["check", "--format", format]));
        assert_eq!(checked.code, Some(2), "{}", checked.all());
        assert!(checked.stdout.contains("refused"), "{}", checked.all());
        let shown = run(trueup()
            .arg("--project")
            .arg(&project)
            .args(["show", "last"]));
        assert_eq!(shown.code, Some(0), "{}", shown.all());
        assert!(!shown.stdout.contains("incomplete"), "{}", shown.all());
    }
}
