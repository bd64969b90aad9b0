//! The `trueup` command end to end: the real binary in temp dirs, against the demo shop
//! whose planted problems are known (`trueup_shop::Planted`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use trueup_shop::{Planted, ShopSpec};

mod common;
use common::{Run, run, trueup};

/// Durations vary from run to run.
const TIME_FILTERS: [(&str, &str); 2] = [(r"\b\d+ ms\b", "[TIME]"), (r"\b\d+\.\d+ s\b", "[TIME]")];

/// `trueup --project <project> <args>`.
fn check(project: &Path, args: &[&str]) -> Run {
    run(trueup().arg("--project").arg(project).args(args))
}

/// Creates the demo project (shop, trueup.toml, rule pack) in `dir` without checking it;
/// returns its `trueup.toml`.
fn demo_project(dir: &Path, extra: &[&str]) -> PathBuf {
    let created = run(trueup()
        .args(["demo", "--no-check", "--dir"])
        .arg(dir)
        .args(extra));
    assert_eq!(created.code, Some(0), "{}", created.all());
    dir.join("trueup.toml")
}

/// `text` with `dir` written `[TMP]`.
fn without_dir(text: &str, dir: &Path) -> String {
    text.replace(&dir.display().to_string(), "[TMP]")
}

/// Finding keys by rule id, each as `column=value` joined by `, `.
fn keys_by_rule(report: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for finding in report["findings"]
        .as_array()
        .expect("`findings` is an array")
    {
        let rule = finding["rule"]
            .as_str()
            .expect("`rule` is a string")
            .to_owned();
        let key = finding["key"]
            .as_object()
            .expect("`key` is an object")
            .iter()
            .map(|(column, value)| match value {
                Value::String(text) => format!("{column}={text}"),
                other => format!("{column}={other}"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        keys.entry(rule).or_default().insert(key);
    }
    keys
}

/// The ids of the rules a JSON report ran.
fn rules_run(report: &Value) -> Vec<String> {
    report["rules"]
        .as_array()
        .expect("`rules` is an array")
        .iter()
        .map(|rule| {
            rule["id"]
                .as_str()
                .expect("rule `id` is a string")
                .to_owned()
        })
        .collect()
}

#[test]
fn demo_finds_exactly_what_was_planted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let demo = run(trueup().args(["demo", "--dir"]).arg(&dir));
    assert_eq!(demo.code, Some(0), "{}", demo.all());
    assert!(demo.stderr.contains("creating demo shop"), "{}", demo.all());
    insta::with_settings!({ filters => TIME_FILTERS.to_vec() }, {
        insta::assert_snapshot!(without_dir(&demo.stdout, tmp.path()));
    });

    // A second run reuses the shop, and still finds exactly what was planted.
    let again = run(trueup().args(["demo", "--dir"]).arg(&dir));
    assert_eq!(again.code, Some(0), "{}", again.all());
    assert!(again.stderr.contains("reusing"), "{}", again.all());
}

#[test]
fn check_json_reports_exactly_the_planted_problems() {
    let tmp = tempfile::tempdir().unwrap();
    let project = demo_project(&tmp.path().join("demo"), &[]);
    let checked = check(&project, &["check", "--format", "json"]);
    assert_eq!(checked.code, Some(1), "findings exit 1:\n{}", checked.all());
    let report = checked.json();

    let planted = Planted::for_spec(&ShopSpec::demo());
    let expected: BTreeMap<String, BTreeSet<String>> = planted
        .expected_findings()
        .into_iter()
        .map(|e| {
            (
                e.rule.to_owned(),
                e.keys
                    .iter()
                    .map(|k| format!("{}={k}", e.key_column))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(keys_by_rule(&report), expected);

    let summary = &report["summary"];
    assert_eq!(summary["findings"], planted.total());
    assert_eq!(summary["rules"], 5);
    assert_eq!(summary["errored_rules"], 0);
    for rule in report["rules"].as_array().unwrap() {
        assert_eq!(rule["error"], Value::Null, "{rule}");
    }
}

#[test]
fn rule_filter_runs_one_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let project = demo_project(&tmp.path().join("demo"), &[]);
    let checked = check(
        &project,
        &[
            "check",
            "--format",
            "json",
            "--rule",
            "ecommerce.orphaned-orders",
        ],
    );
    assert_eq!(checked.code, Some(1), "{}", checked.all());
    let report = checked.json();
    assert_eq!(rules_run(&report), ["ecommerce.orphaned-orders"]);
    // The whole report: every finding with key, detail, message and fingerprint.
    insta::with_settings!({ filters => vec![(r#""duration_ms": ?\d+"#, r#""duration_ms": "[TIME]""#)] }, {
        insta::assert_snapshot!("json_report_of_one_rule", checked.stdout);
    });
    let keys = keys_by_rule(&report);
    assert_eq!(
        keys.keys().collect::<Vec<_>>(),
        ["ecommerce.orphaned-orders"]
    );
}

#[test]
fn rule_prefix_filter_runs_the_rules_it_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let project = demo_project(&tmp.path().join("demo"), &[]);
    let checked = check(
        &project,
        &["check", "--format", "json", "--rule", "ecommerce.order-*"],
    );
    assert_eq!(checked.code, Some(1), "{}", checked.all());
    assert_eq!(
        rules_run(&checked.json()),
        ["ecommerce.order-total-matches-items"]
    );

    let human = check(&project, &["check", "--rule", "ecommerce.order-*"]);
    assert_eq!(human.code, Some(1), "{}", human.all());
    insta::with_settings!({ filters => TIME_FILTERS.to_vec() }, {
        insta::assert_snapshot!(human.stdout);
    });
}

#[test]
fn tag_filter_runs_the_tagged_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let project = demo_project(&tmp.path().join("demo"), &[]);
    let checked = check(&project, &["check", "--format", "json", "--tag", "money"]);
    assert_eq!(checked.code, Some(1), "{}", checked.all());
    assert_eq!(
        rules_run(&checked.json()),
        [
            "ecommerce.completed-orders-paid",
            "ecommerce.order-total-matches-items"
        ]
    );
}

#[test]
fn fail_on_sets_the_severity_that_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let project = demo_project(&dir, &[]);
    // The demo has critical findings: they fail under any threshold.
    assert_eq!(
        check(&project, &["check", "--fail-on", "critical"]).code,
        Some(1)
    );
    assert_eq!(
        check(&project, &["check", "--fail-on", "low"]).code,
        Some(1)
    );

    // A project whose rules find only `high` problems, failing on `critical` by default.
    let high_only = dir.join("high-only.toml");
    std::fs::write(
        &high_only,
        r#"rules = [
    "rules/ecommerce/duplicate-customer-emails.toml",
    "rules/ecommerce/stock-matches-inventory.toml",
]

[sources.shop]
url = "sqlite://shop.db"

[defaults]
fail-on = "critical"
"#,
    )
    .unwrap();
    let by_default = check(&high_only, &["check"]);
    assert_eq!(
        by_default.code,
        Some(0),
        "high findings do not fail on critical:\n{}",
        by_default.all()
    );
    assert!(
        by_default.stdout.contains("8 findings (8 high)"),
        "{}",
        by_default.all()
    );
    let critical = check(&high_only, &["check", "--fail-on", "critical"]);
    assert_eq!(critical.code, Some(0), "{}", critical.all());
    let high = check(&high_only, &["check", "--fail-on", "high"]);
    assert_eq!(high.code, Some(1), "{}", high.all());
    let low = check(&high_only, &["check", "--fail-on", "low"]);
    assert_eq!(low.code, Some(1), "{}", low.all());
}

#[test]
fn clean_database_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    demo_project(&dir, &[]);
    // Every order has a status (the column is NOT NULL): nothing to find.
    let clean = dir.join("clean.toml");
    std::fs::write(
        &clean,
        "rules = [\"clean-rules\"]\n\n[sources.shop]\nurl = \"sqlite://shop.db\"\n",
    )
    .unwrap();
    std::fs::create_dir(dir.join("clean-rules")).unwrap();
    std::fs::write(
        dir.join("clean-rules/orders.toml"),
        r#"[[rule]]
id = "orders.have-status"
title = "Orders without a status"
severity = "critical"

[rule.detector]
kind = "not-null"
table = "orders"
columns = ["status"]
"#,
    )
    .unwrap();

    let checked = check(&clean, &["check"]);
    assert_eq!(checked.code, Some(0), "{}", checked.all());
    assert!(checked.stdout.contains("no findings"), "{}", checked.all());
    insta::with_settings!({ filters => TIME_FILTERS.to_vec() }, {
        insta::assert_snapshot!(checked.stdout);
    });

    let json = check(&clean, &["check", "--format", "json"]);
    assert_eq!(json.code, Some(0), "{}", json.all());
    let report = json.json();
    assert_eq!(report["findings"], serde_json::json!([]));
    assert_eq!(report["summary"]["findings"], 0);
}

#[test]
fn init_writes_a_starter_project_and_overwrites_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new");
    let project = dir.join("trueup.toml");
    let example = dir.join("rules/example.toml");

    let init = run(trueup().arg("init").arg(&dir));
    assert_eq!(init.code, Some(0), "{}", init.all());
    assert!(project.is_file() && example.is_file(), "{}", init.all());
    insta::assert_snapshot!("init_stderr", without_dir(&init.stderr, tmp.path()));

    // The fresh project is valid as it stands (its database does not exist yet).
    let validated = check(&project, &["validate", "--offline"]);
    assert_eq!(validated.code, Some(0), "{}", validated.all());

    // Edits survive a second `init`.
    std::fs::write(&project, "# edited\n").unwrap();
    std::fs::write(&example, "# edited\n").unwrap();
    let again = run(trueup().arg("init").arg(&dir));
    assert_eq!(again.code, Some(2), "{}", again.all());
    assert!(
        again.stderr.contains("already exists; use --force"),
        "{}",
        again.all()
    );
    insta::assert_snapshot!("init_again_stderr", without_dir(&again.stderr, tmp.path()));
    assert_eq!(std::fs::read_to_string(&project).unwrap(), "# edited\n");
    assert_eq!(std::fs::read_to_string(&example).unwrap(), "# edited\n");

    // Only the project file left: `init` still refuses, and does not write the example.
    std::fs::remove_file(&example).unwrap();
    assert_eq!(run(trueup().arg("init").arg(&dir)).code, Some(2));
    assert!(
        !example.exists(),
        "init wrote rules/example.toml though trueup.toml exists"
    );

    let forced = run(trueup().args(["init", "--force"]).arg(&dir));
    assert_eq!(forced.code, Some(0), "{}", forced.all());
    assert_ne!(std::fs::read_to_string(&project).unwrap(), "# edited\n");
    assert!(example.is_file());
}

#[test]
fn init_keeps_the_state_folder_out_of_git() {
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("fresh");
    let init = run(trueup().arg("init").arg(&fresh));
    assert_eq!(init.code, Some(0), "{}", init.all());
    let ignore = std::fs::read_to_string(fresh.join(".gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l == ".trueup/"), "{ignore}");
    assert!(
        init.stderr.contains(&format!("`cd {}`", fresh.display())),
        "{}",
        init.all()
    );

    // A `.gitignore` of the user's own gets the line once, after what it holds.
    let own = tmp.path().join("own");
    std::fs::create_dir(&own).unwrap();
    std::fs::write(own.join(".gitignore"), "target").unwrap();
    for args in [&["init"][..], &["init", "--force"]] {
        let init = run(trueup().args(args).arg(&own));
        assert_eq!(init.code, Some(0), "{}", init.all());
    }
    assert_eq!(
        std::fs::read_to_string(own.join(".gitignore")).unwrap(),
        "target\n.trueup/\n"
    );
}

#[test]
fn a_password_written_in_a_url_is_warned_about() {
    let rule = "[[rule]]\nid = \"t.rows\"\ntitle = \"Rows\"\nseverity = \"low\"\n\
                [rule.detector]\nkind = \"sql\"\nquery = \"SELECT 1 AS id\"\nkey = [\"id\"]\n";
    let literal = common::project(
        "postgres://app:hunter2@db.internal/shop",
        &[("t.toml", rule)],
    );
    let project = literal.path().join("trueup.toml");
    let warned = check(&project, &["validate", "--offline"]);
    assert_eq!(warned.code, Some(0), "{}", warned.all());
    assert!(
        warned.stderr.contains("warning: ")
            && warned.stderr.contains("holds a password written out"),
        "{}",
        warned.all()
    );
    assert!(
        warned.stderr.contains("${DB_DB_PASSWORD}"),
        "{}",
        warned.all()
    );
    assert!(!warned.all().contains("hunter2"), "{}", warned.all());
    let quiet = run(trueup()
        .arg("--quiet")
        .arg("--project")
        .arg(&project)
        .args(["validate", "--offline"]));
    assert_eq!(quiet.code, Some(0), "{}", quiet.all());
    assert_eq!(quiet.stderr, "", "--quiet silences warnings");

    let from_env = common::project(
        "postgres://app:${DB_PASSWORD}@db.internal/shop",
        &[("t.toml", rule)],
    );
    let clean = check(
        &from_env.path().join("trueup.toml"),
        &["validate", "--offline"],
    );
    assert_eq!(clean.code, Some(0), "{}", clean.all());
    assert!(!clean.stderr.contains("warning"), "{}", clean.all());
}

#[test]
fn schema_prints_json_schemas() {
    for args in [
        &["schema"][..],
        &["schema", "rules"],
        &["schema", "project"],
    ] {
        let printed = run(trueup().args(args));
        assert_eq!(printed.code, Some(0), "{}", printed.all());
        let schema = printed.json();
        assert!(
            schema.get("$schema").is_some(),
            "`trueup {}` has no `$schema`",
            args.join(" ")
        );
        assert!(printed.stderr.is_empty(), "{}", printed.all());
    }
    let rules = run(trueup().arg("schema")).json();
    assert!(
        rules["title"]
            .as_str()
            .is_some_and(|t| t.contains("rule file")),
        "{rules}"
    );
    let project = run(trueup().args(["schema", "project"])).json();
    assert!(
        project["title"]
            .as_str()
            .is_some_and(|t| t.contains("project")),
        "{project}"
    );
}

/// Waits at most `limit` for `child`; kills it and returns `None` when it is still running.
fn wait_or_kill(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for trueup") {
            return Some(status);
        }
        if Instant::now() > deadline {
            child.kill().expect("kill trueup");
            child.wait().expect("reap trueup");
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `trueup check --format json | head -c 10`: a closed pipe ends the run as a success.
#[test]
fn stdout_closed_early_is_not_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    // Many more findings than the pipe, the output buffer and the event channel hold, so
    // that writes fail while the engine still has findings to send.
    let project = demo_project(
        &tmp.path().join("demo"),
        &["--orders", "20000", "--problem-rate", "0.2"],
    );
    let mut failures = Vec::new();
    for format in ["json", "human"] {
        let mut child = trueup()
            .arg("--project")
            .arg(&project)
            .args(["check", "--show", "1000", "--format", format])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn trueup");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut first = [0u8; 10];
        stdout.read_exact(&mut first).expect("read the first bytes");
        drop(stdout);
        let status = wait_or_kill(&mut child, Duration::from_secs(20));
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .expect("piped stderr")
            .read_to_string(&mut stderr)
            .unwrap();
        match status {
            None => failures.push(format!(
                "--format {format}: still running 20 s after stdout was closed (killed)"
            )),
            Some(status) if !matches!(status.code(), Some(0 | 1)) => {
                failures.push(format!(
                    "--format {format}: {status}, expected 0 or 1\n{stderr}"
                ));
            }
            Some(_) if stderr.contains("panicked") => {
                failures.push(format!("--format {format}: panicked\n{stderr}"))
            }
            Some(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn no_terminal_means_no_escape_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let project = demo_project(&tmp.path().join("demo"), &[]);
    // Colour and progress bar left on `auto`, without NO_COLOR: stdout and stderr are pipes.
    let output = Command::new(env!("CARGO_BIN_EXE_trueup"))
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("TRUEUP_PROJECT")
        .arg("--project")
        .arg(&project)
        .arg("check")
        .stdin(Stdio::null())
        .output()
        .expect("run trueup");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("22 findings"), "{stdout}");
    for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(!text.contains('\u{1b}'), "escape codes on {name}: {text:?}");
        assert!(
            !text.contains('\r'),
            "carriage returns (a progress bar) on {name}: {text:?}"
        );
    }
}

#[test]
fn quiet_silences_status_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let demo = run(trueup()
        .args(["demo", "--quiet", "--no-check", "--dir"])
        .arg(&dir));
    assert_eq!(demo.code, Some(0), "{}", demo.all());
    assert_eq!(demo.stderr, "", "{}", demo.all());
    let validated = check(&dir.join("trueup.toml"), &["--quiet", "validate"]);
    assert_eq!(validated.code, Some(0), "{}", validated.all());
    assert_eq!(validated.stderr, "", "{}", validated.all());
}

/// What is kept for people is bounded whatever the number of findings: `--show` takes at
/// most 1000 keys per rule, as `report --show` does.
#[test]
fn show_counts_above_a_thousand_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let project = demo_project(&tmp.path().join("demo"), &[]);
    for command in [&["check"][..], &["show"], &["diff", "last", "last"]] {
        let args: Vec<&str> = command.iter().copied().chain(["--show", "1001"]).collect();
        let refused = check(&project, &args);
        assert_eq!(refused.code, Some(2), "{args:?}: {}", refused.all());
        assert!(
            refused.stderr.contains("1001 is not in 0..=1000"),
            "{args:?}: {}",
            refused.all()
        );
    }
    let kept = check(&project, &["check", "--show", "1000"]);
    assert_eq!(kept.code, Some(1), "{}", kept.all());
}
