//! `check --metrics-file` through the real binary on a real SQLite shop with planted
//! problems: the file is Prometheus text (promtool lints it), holds the values the runs
//! found (new findings against the run before, alert-on `new`, `any` and `jump` over a
//! planted history, a failing rule's cause), is replaced atomically, and holds exactly the
//! metrics `docs/reference/metrics.md` documents.

mod common;
mod metrics_shop;
#[path = "../../../tests/support/pg.rs"]
mod pg;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use common::in_project as trueup;
use metrics_shop::{prometheus_program, shop, sql};

/// A metrics file as read back: each sample by its name and labels (in the file's order),
/// and each family's declared type.
#[derive(Debug, Default)]
struct Exposition {
    samples: BTreeMap<(String, BTreeMap<String, String>), f64>,
    types: BTreeMap<String, String>,
}

impl Exposition {
    /// The value of `name` with exactly `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples.get(&(name.to_owned(), labels)).copied()
    }

    /// The value of a rule's series of schedule `check`.
    fn rule(&self, name: &str, rule: &str) -> Option<f64> {
        self.samples
            .iter()
            .find(|((n, labels), _)| {
                n == name && labels.get("rule").map(String::as_str) == Some(rule)
            })
            .map(|(_, v)| *v)
    }

    fn run(&self, name: &str) -> Option<f64> {
        self.get(name, &[("schedule", "check")])
    }
}

/// Parses the text format strictly enough to fail on anything malformed: `# HELP` and
/// `# TYPE` lines, and samples `name{label="value",…} number` with the format's escapes.
fn parse(text: &str) -> Exposition {
    let mut exposition = Exposition::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["gauge", "counter"].contains(&kind), "{line}");
            assert!(
                exposition
                    .types
                    .insert(name.to_owned(), kind.to_owned())
                    .is_none(),
                "{name} declared twice"
            );
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "odd line {line:?}"
        );
        let (name, rest) = line.split_once('{').expect("a sample has labels");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{name}"
        );
        assert!(
            exposition.types.contains_key(name),
            "{name} sampled before its TYPE"
        );
        let mut labels = BTreeMap::new();
        let mut chars = rest.chars().peekable();
        loop {
            let label: String = chars.by_ref().take_while(|&c| c != '=').collect();
            assert_eq!(chars.next(), Some('"'), "{line}");
            let mut value = String::new();
            loop {
                match chars.next().expect("an unclosed label value") {
                    '"' => break,
                    '\\' => value.push(match chars.next() {
                        Some('n') => '\n',
                        Some(c @ ('\\' | '"')) => c,
                        other => panic!("bad escape {other:?} in {line}"),
                    }),
                    c => value.push(c),
                }
            }
            labels.insert(label, value);
            match chars.next() {
                Some(',') => continue,
                Some('}') => break,
                other => panic!("{other:?} after a label in {line}"),
            }
        }
        let value: String = chars.collect();
        let value = value.strip_prefix(' ').expect("a space before the value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        assert!(
            exposition
                .samples
                .insert((name.to_owned(), labels), value)
                .is_none(),
            "a repeated series: {line}"
        );
    }
    exposition
}

/// promtool's lint of the file (when promtool is missing, see [`prometheus_program`]).
fn promtool_lints(path: &Path) {
    if !prometheus_program("promtool") {
        return;
    }
    let output = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(path).unwrap())
        .output()
        .unwrap();
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `check --metrics-file` and reads the file back.
fn check(project: &Path, file: &Path) -> (Option<i32>, Exposition) {
    let (code, _, stderr) = trueup(
        project,
        &[
            "--quiet",
            "check",
            "--format",
            "json",
            "--metrics-file",
            file.to_str().unwrap(),
        ],
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|err| panic!("no metrics file ({err}): {stderr}"));
    promtool_lints(file);
    (code, parse(&text))
}

#[test]
fn metrics_file_counts_new_findings_alerts_and_errors_across_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shop");
    let project = shop(&dir, 300);
    let file = tmp.path().join("textfile").join("trueup.prom");
    std::fs::create_dir(file.parent().unwrap()).unwrap();

    // Run 1: no history, every finding is new. The failing rule makes check exit 2.
    let (code, first) = check(&project, &file);
    assert_eq!(code, Some(2));
    assert_eq!(
        first.rule("trueup_rule_findings", "ecommerce.orphaned-orders"),
        Some(3.0)
    );
    assert_eq!(
        first.rule("trueup_rule_new_findings", "ecommerce.orphaned-orders"),
        Some(3.0)
    );
    assert_eq!(
        first.rule("trueup_rule_findings", "audit.backlog"),
        Some(300.0)
    );
    // Too little history for `jump`: it alerts as `new` does.
    assert_eq!(
        first.rule("trueup_rule_alerting", "audit.backlog"),
        Some(1.0)
    );
    // The five demo rules, the backlog and the `any` rule alert; the failing one does not.
    assert_eq!(first.run("data_integrity_check_failures"), Some(7.0));
    assert_eq!(first.run("trueup_run_errored_rules"), Some(1.0));
    let errors = first.get(
        "trueup_rule_errors_total",
        &[
            ("schedule", "check"),
            ("rule", "audit.gone"),
            ("severity", "medium"),
            ("source", "shop"),
            ("cause", "configuration"),
        ],
    );
    assert_eq!(errors, Some(1.0), "{:#?}", first.samples);
    assert_eq!(first.rule("trueup_rule_new_findings", "audit.gone"), None);
    assert_eq!(
        first.get(
            "trueup_runs_total",
            &[("schedule", "check"), ("status", "complete")]
        ),
        Some(1.0)
    );
    let ended = first
        .run("trueup_run_last_success_timestamp_seconds")
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - ended).abs() < 120.0, "{ended} is not now ({now})");
    assert!(first.run("trueup_run_duration_seconds").unwrap() > 0.0);

    // Runs 2 and 3, same data: nothing new; only the `any` rule alerts.
    for _ in 0..2 {
        let (_, same) = check(&project, &file);
        assert_eq!(
            same.rule("trueup_rule_new_findings", "ecommerce.orphaned-orders"),
            Some(0.0)
        );
        assert_eq!(same.rule("trueup_rule_alerting", "audit.never"), Some(1.0));
        assert_eq!(
            same.rule("trueup_rule_alerting", "audit.backlog"),
            Some(0.0)
        );
        assert_eq!(same.run("data_integrity_check_failures"), Some(1.0));
    }

    // Break one order total and churn the backlog (10 resolved, 10 new): the rules with a
    // new finding alert; the backlog has new findings too, yet no jump.
    sql(
        &dir,
        "UPDATE orders SET total_amount = total_amount + 1 WHERE id = 10; \
         DELETE FROM backlog WHERE id <= 10; \
         INSERT INTO backlog SELECT id + 1000 FROM backlog WHERE id <= 20;",
    );
    let (_, churned) = check(&project, &file);
    assert_eq!(
        churned.rule(
            "trueup_rule_new_findings",
            "ecommerce.order-total-matches-items"
        ),
        Some(1.0)
    );
    assert_eq!(
        churned.rule("trueup_rule_new_findings", "audit.backlog"),
        Some(10.0)
    );
    assert_eq!(
        churned.rule("trueup_rule_alerting", "audit.backlog"),
        Some(0.0)
    );
    let alerting: Vec<&str> = churned
        .samples
        .iter()
        .filter(|((name, _), v)| name == "trueup_rule_alerting" && **v == 1.0)
        .map(|((_, labels), _)| labels["rule"].as_str())
        .collect();
    // The order's payment no longer matches its total either: a new finding of that rule.
    assert_eq!(
        alerting,
        [
            "audit.never",
            "ecommerce.completed-orders-paid",
            "ecommerce.order-total-matches-items"
        ]
    );
    assert_eq!(churned.run("data_integrity_check_failures"), Some(3.0));

    // The backlog becomes 3,000: a jump.
    sql(
        &dir,
        "WITH RECURSIVE n(i) AS (SELECT 5000 UNION ALL SELECT i + 1 FROM n WHERE i < 7699) \
         INSERT INTO backlog SELECT i FROM n;",
    );
    let (_, jumped) = check(&project, &file);
    assert_eq!(
        jumped.rule("trueup_rule_findings", "audit.backlog"),
        Some(3000.0)
    );
    assert_eq!(
        jumped.rule("trueup_rule_alerting", "audit.backlog"),
        Some(1.0)
    );
    // The file describes one run: its counters count that one.
    assert_eq!(
        jumped.get(
            "trueup_runs_total",
            &[("schedule", "check"), ("status", "complete")]
        ),
        Some(1.0)
    );
}

#[test]
fn the_file_is_replaced_atomically_and_named_by_schedule() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shop");
    let project = shop(&dir, 5);
    let folder = tmp.path().join("textfile");
    std::fs::create_dir(&folder).unwrap();
    let file = folder.join("trueup.prom");
    std::fs::write(&file, "previous\n").unwrap();
    // A second name for the old file: writing in place would change what it reads.
    let old = tmp.path().join("old.prom");
    std::fs::hard_link(&file, &old).unwrap();

    let (code, _, stderr) = trueup(
        &project,
        &[
            "--quiet",
            "check",
            "--rule",
            "ecommerce.*",
            "--schedule",
            "nightly",
            "--metrics-file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(std::fs::read_to_string(&old).unwrap(), "previous\n");
    let text = std::fs::read_to_string(&file).unwrap();
    let metrics = parse(&text);
    assert_eq!(
        metrics.get("data_integrity_check_failures", &[("schedule", "nightly")]),
        Some(5.0)
    );
    // Only the file itself is left in the collector's folder.
    let names: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["trueup.prom"]);

    // A file that cannot be written is an error that names it, after the run's report.
    let (code, stdout, stderr) = trueup(
        &project,
        &[
            "check",
            "--rule",
            "ecommerce.*",
            "--metrics-file",
            folder.join("missing").join("trueup.prom").to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.contains("ecommerce.orphaned-orders"), "{stdout}");
    assert!(stderr.contains("cannot write the metrics file"), "{stderr}");

    // --schedule means nothing without a file.
    let (code, _, stderr) = trueup(&project, &["check", "--schedule", "nightly"]);
    assert_eq!(code, Some(2), "{stderr}");
}

/// Each documented metric's name, type and labels, from the table of
/// docs/reference/metrics.md's "Metrics" section.
fn documented() -> BTreeMap<String, (String, BTreeSet<String>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/reference/metrics.md");
    let text = std::fs::read_to_string(path).unwrap();
    let section = text
        .split("\n## Metrics\n")
        .nth(1)
        .expect("a Metrics section")
        .split("\n## ")
        .next()
        .unwrap();
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let labels = cells[3]
                .split(',')
                .map(|label| label.trim().trim_matches('`').to_owned())
                .collect();
            (
                cells[1].trim_matches('`').to_owned(),
                (cells[2].to_owned(), labels),
            )
        })
        .collect()
}

#[test]
fn every_metric_written_is_documented_and_every_documented_one_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shop");
    let project = shop(&dir, 5);
    let file = tmp.path().join("trueup.prom");
    // A run with a failing rule, so that every family has samples.
    let (_, written) = check(&project, &file);
    let documented = documented();
    let mut seen: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for (name, kind) in &written.types {
        seen.insert(name.clone(), (kind.clone(), BTreeSet::new()));
    }
    for (name, labels) in written.samples.keys() {
        let entry = seen.get_mut(name).unwrap();
        entry.1.extend(labels.keys().cloned());
    }
    for (name, (kind, labels)) in &seen {
        assert!(
            !labels.is_empty(),
            "{name} has no sample in a run with every case"
        );
        let doc = documented
            .get(name)
            .unwrap_or_else(|| panic!("{name} is written but not documented in metrics.md"));
        assert_eq!(&doc.0, kind, "the type of {name}");
        assert_eq!(&doc.1, labels, "the labels of {name}");
    }
    for name in documented.keys() {
        assert!(
            seen.contains_key(name),
            "{name} is documented but not written"
        );
    }
}

#[test]
fn a_postgresql_state_store_gives_the_same_new_findings_and_jumps() {
    let Some(admin) = pg::admin_url() else {
        return;
    };
    let state = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(pg::fresh_database(&admin));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shop");
    let project = shop(&dir, 300);
    let mut toml = std::fs::read_to_string(&project).unwrap();
    toml.push_str(&format!("\n[state]\nurl = \"{state}\"\n"));
    std::fs::write(&project, toml).unwrap();
    let file = tmp.path().join("trueup.prom");

    let (_, first) = check(&project, &file);
    assert_eq!(
        first.rule("trueup_rule_new_findings", "ecommerce.orphaned-orders"),
        Some(3.0)
    );
    assert_eq!(first.run("data_integrity_check_failures"), Some(7.0));
    for _ in 0..3 {
        let (_, same) = check(&project, &file);
        assert_eq!(
            same.rule("trueup_rule_new_findings", "audit.backlog"),
            Some(0.0)
        );
        assert_eq!(same.run("data_integrity_check_failures"), Some(1.0));
    }
    sql(
        &dir,
        "WITH RECURSIVE n(i) AS (SELECT 5000 UNION ALL SELECT i + 1 FROM n WHERE i < 7699) \
         INSERT INTO backlog SELECT i FROM n;",
    );
    let (_, jumped) = check(&project, &file);
    assert_eq!(
        jumped.rule("trueup_rule_new_findings", "audit.backlog"),
        Some(2700.0)
    );
    assert_eq!(
        jumped.rule("trueup_rule_alerting", "audit.backlog"),
        Some(1.0)
    );
    assert_eq!(jumped.run("data_integrity_check_failures"), Some(2.0));
}
