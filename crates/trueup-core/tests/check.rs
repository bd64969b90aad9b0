//! The `check` use case as a library caller (a scheduler, say) uses it: a sink that sees
//! every event in order, the run recorded in the project's store, a selection, and a
//! cancellation handle that stops a run that would otherwise go on for a long time.

#[path = "../../../tests/support/endless.rs"]
mod endless;
mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{TestDb, TestProject};
use trueup_core::cancel::Cancel;
use trueup_core::check::{self, CheckOptions, CheckSink, Selection, Summary};
use trueup_core::finding::{Finding, RuleSpec};
use trueup_core::fingerprint::Fingerprint;
use trueup_core::load::Project;
use trueup_core::outcome::RuleOutcome;
use trueup_core::store::{Store, StoreLocation};

/// Writes down what it is told, and cancels the run at the first finding when asked to.
#[derive(Default)]
struct Recording {
    events: Vec<String>,
    cancel_at_first_finding: Option<Cancel>,
}

impl CheckSink for Recording {
    fn start(&mut self, rules: &[Arc<RuleSpec>]) -> std::io::Result<()> {
        self.events.push(format!("start {}", rules.len()));
        Ok(())
    }
    fn finding(
        &mut self,
        finding: &Finding,
        _: Fingerprint,
        accepted: bool,
    ) -> std::io::Result<()> {
        self.events.push(format!(
            "finding {} {} {accepted}",
            finding.rule.id,
            finding.key_text()
        ));
        if let Some(cancel) = &self.cancel_at_first_finding {
            cancel.cancel();
        }
        Ok(())
    }
    fn rule_finished(&mut self, outcome: &RuleOutcome) -> std::io::Result<()> {
        self.events
            .push(format!("finished {} {}", outcome.rule.id, outcome.findings));
        Ok(())
    }
    fn finish(&mut self, summary: &Summary) -> std::io::Result<()> {
        self.events.push(format!("finish {}", summary.findings));
        Ok(())
    }
}

const RULES: &str = r#"
[[rule]]
id = "orders.total"
title = "Orders have a total"
severity = "high"
tags = ["money"]
[rule.detector]
kind = "not-null"
table = "orders"
columns = ["total"]

[[rule]]
id = "orders.positive"
title = "Totals are positive"
severity = "low"
[rule.detector]
kind = "sql"
key = ["id"]
query = "SELECT id FROM orders WHERE total <= 0"
"#;

async fn shop() -> (TestDb, TestProject) {
    let db = TestDb::sqlite();
    db.execute(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL);
         INSERT INTO orders VALUES (1, 10), (2, NULL), (3, -1), (4, NULL);",
    )
    .await;
    let project = TestProject::new(&db.url, &[("orders.toml", RULES)]);
    (db, project)
}

#[tokio::test]
async fn a_run_hands_every_event_to_the_sink_and_records_itself() {
    let (_db, dir) = shop().await;
    let project = Project::load(&dir.path()).unwrap();
    let options = CheckOptions {
        record: true,
        fail_on: Some(trueup_core::rule::Severity::High),
        ..CheckOptions::default()
    };
    let mut sink = Recording::default();
    let report = check::run(&project, &options, &Cancel::new(), &mut sink)
        .await
        .unwrap();

    assert_eq!(sink.events.first().map(String::as_str), Some("start 2"));
    assert_eq!(sink.events.last().map(String::as_str), Some("finish 3"));
    let mut middle = sink.events[1..sink.events.len() - 1].to_vec();
    middle.sort();
    assert_eq!(
        middle,
        [
            "finding orders.positive id=3 false",
            "finding orders.total id=2 false",
            "finding orders.total id=4 false",
            "finished orders.positive 1",
            "finished orders.total 2",
        ]
    );
    assert_eq!(report.summary.findings, 3);
    assert_eq!(
        report.summary.failing_rules, 1,
        "fail-on high: only orders.total"
    );
    assert!(!report.interrupted);

    let StoreLocation::File(state) = &project.state else {
        panic!("a SQLite store")
    };
    let store = Store::open(state).await.unwrap();
    let runs = store.runs(10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(Some(runs[0].id), report.run);
    assert!(runs[0].complete);
    assert_eq!(runs[0].findings, 3);
}

#[tokio::test]
async fn a_selection_runs_only_what_it_names_and_a_typo_is_an_error() {
    let (_db, dir) = shop().await;
    let project = Project::load(&dir.path()).unwrap();
    let select = |tags: &[&str]| CheckOptions {
        selection: Selection {
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            ..Selection::default()
        },
        ..CheckOptions::default()
    };
    let mut sink = Recording::default();
    let report = check::run(&project, &select(&["money"]), &Cancel::new(), &mut sink)
        .await
        .unwrap();
    assert_eq!(report.summary.rules, 1);
    assert_eq!(report.run, None, "record: false");

    let err = check::run(&project, &select(&["mony"]), &Cancel::new(), &mut sink)
        .await
        .unwrap_err();
    assert!(matches!(err, trueup_core::Error::Selection(_)), "{err}");
    assert!(err.to_string().contains("did you mean `money`?"), "{err}");
}

#[tokio::test]
async fn cancelling_stops_a_long_run_and_it_is_not_recorded_as_complete() {
    let db = TestDb::sqlite();
    db.execute("CREATE TABLE t (x INTEGER)").await;
    let dir = TestProject::new(&db.url, &[("endless.toml", endless::ENDLESS_RULE)]);
    let project = Project::load(&dir.path()).unwrap();
    let cancel = Cancel::new();
    let mut sink = Recording {
        cancel_at_first_finding: Some(cancel.clone()),
        ..Recording::default()
    };
    let options = CheckOptions {
        record: true,
        ..CheckOptions::default()
    };
    // A guard against a hang, not a timing: the run ends within moments of the cancel.
    let report = tokio::time::timeout(
        Duration::from_secs(120),
        check::run(&project, &options, &cancel, &mut sink),
    )
    .await
    .expect("the cancelled run ended")
    .unwrap();
    assert!(report.interrupted);
    assert!(report.summary.rules == 0, "the rule never finished");

    let StoreLocation::File(state) = &project.state else {
        panic!("a SQLite store")
    };
    let store = Store::open(state).await.unwrap();
    let runs = store.runs(10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert!(!runs[0].complete, "not finished: {:?}", runs[0]);
    assert_eq!(runs[0].status, trueup_core::store::RunStatus::Interrupted);
    assert_eq!(Some(runs[0].id), report.run);
}
