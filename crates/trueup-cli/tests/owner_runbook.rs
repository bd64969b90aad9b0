//! A rule's `owner` and `runbook` travel with its findings to whoever reads them: the human
//! report and JSON of `check`, and `show` of the recorded run, escaped where people read.

mod common;

use common::{run, trueup};

const RULE: &str = r#"
[[rule]]
id = "billing.negative-totals"
title = "Invoices with a negative total"
severity = "high"
owner = "team-billing \u001b[2J"
runbook = "https://wiki.example/runbooks/billing#negative-totals"
[rule.detector]
kind = "sql"
key = ["id"]
query = "SELECT 7 AS id"

[[rule]]
id = "billing.quiet"
title = "Finds nothing"
severity = "low"
owner = "team-quiet"
[rule.detector]
kind = "sql"
key = ["id"]
query = "SELECT 1 AS id WHERE 1 = 0"
"#;

#[test]
fn owner_and_runbook_reach_check_and_show() {
    let data = tempfile::tempdir().expect("temp dir");
    let db = data.path().join("empty.db");
    std::fs::write(&db, b"").expect("an empty SQLite file");
    let dir = common::project(
        &format!("sqlite://{}", db.display()),
        &[("billing.toml", RULE)],
    );
    let project = dir.path().join("trueup.toml");
    let check = |args: &[&str]| run(trueup().arg("--project").arg(&project).args(args));

    let human = check(&["check"]);
    assert_eq!(human.code, Some(1), "{}", human.all());
    assert!(
        human.stdout.contains(
            "owner: team-billing \\e[2J · runbook: https://wiki.example/runbooks/billing#negative-totals"
        ),
        "under the failing rule, escaped: {}",
        human.all()
    );
    assert!(
        !human.stdout.contains('\u{1b}'),
        "no raw ESC: {}",
        human.all()
    );
    assert!(
        !human.stdout.contains("team-quiet"),
        "a rule that found nothing says nothing more: {}",
        human.all()
    );

    let json = check(&["check", "--format", "json"]).json();
    let rule = |id: &str| {
        json["rules"]
            .as_array()
            .and_then(|rules| rules.iter().find(|r| r["id"] == id).cloned())
            .unwrap_or_default()
    };
    assert_eq!(
        rule("billing.negative-totals")["owner"],
        "team-billing \u{1b}[2J"
    );
    assert_eq!(
        rule("billing.negative-totals")["runbook"],
        "https://wiki.example/runbooks/billing#negative-totals"
    );
    assert_eq!(rule("billing.quiet")["owner"], "team-quiet");
    assert!(rule("billing.quiet").get("runbook").is_none());

    let shown = check(&["show", "last"]);
    assert!(
        shown
            .stdout
            .contains("owner: team-billing \\e[2J · runbook: https://wiki.example"),
        "{}",
        shown.all()
    );
    let shown = check(&["show", "last", "--format", "json"]).json();
    let rules = shown["rules"].as_array().cloned().unwrap_or_default();
    assert!(
        rules
            .iter()
            .any(|r| r["rule"] == "billing.negative-totals"
                && r["owner"] == "team-billing \u{1b}[2J"),
        "{shown}"
    );
}
