//! What check runs say as Prometheus metrics: a [`Collector`] counts a run's rules as it
//! goes, [`observe`] weighs them against the store's history (new findings, alerts), and
//! [`Metrics`] keeps the last run of each schedule and renders the text format, for
//! `check --metrics-file` (node_exporter's textfile collector) and `serve`'s `/metrics`.
//! The names, types and labels are documented in `docs/reference/metrics.md`.

mod file;
mod render;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use file::write_file;
pub use render::{Metrics, family_names};

use crate::Result;
use crate::alert::{self, RuleResult};
use crate::check::{CheckReport, CheckSink, Summary};
use crate::finding::{Finding, RuleSpec};
use crate::fingerprint::Fingerprint;
use crate::load::Project;
use crate::outcome::RuleOutcome;
use crate::rule::{AlertOn, Severity};
use crate::store::{RunId, Store};

/// The schedule label of `check --metrics-file` when `--schedule` does not name one.
pub const CHECK_SCHEDULE: &str = "check";

/// Collects what a check run says about each rule (not its findings: memory is O(rules)).
#[derive(Debug, Default)]
pub struct Collector {
    rules: Vec<Collected>,
    /// Index into `rules` by rule id.
    index: HashMap<String, usize>,
}

/// One rule as the collector saw it.
#[derive(Debug)]
struct Collected {
    rule: Arc<RuleSpec>,
    /// Findings the baseline accepted.
    accepted: u64,
    /// How the rule ended; `None` while it runs (or when an interrupted run stopped it).
    outcome: Option<(u64, Option<&'static str>, Duration)>,
}

impl Collector {
    pub fn new() -> Collector {
        Collector::default()
    }
}

impl CheckSink for Collector {
    fn start(&mut self, rules: &[Arc<RuleSpec>]) -> std::io::Result<()> {
        self.rules = rules
            .iter()
            .map(|rule| Collected {
                rule: Arc::clone(rule),
                accepted: 0,
                outcome: None,
            })
            .collect();
        self.index = rules
            .iter()
            .enumerate()
            .map(|(i, rule)| (rule.id.clone(), i))
            .collect();
        Ok(())
    }

    fn finding(
        &mut self,
        finding: &Finding,
        _: Fingerprint,
        accepted: bool,
    ) -> std::io::Result<()> {
        if accepted && let Some(&i) = self.index.get(&finding.rule.id) {
            self.rules[i].accepted += 1;
        }
        Ok(())
    }

    fn rule_finished(&mut self, outcome: &RuleOutcome) -> std::io::Result<()> {
        if let Some(&i) = self.index.get(&outcome.rule.id) {
            self.rules[i].outcome = Some((
                outcome.findings,
                outcome.error.as_ref().map(crate::outcome::RuleError::cause),
                outcome.elapsed,
            ));
        }
        Ok(())
    }

    fn finish(&mut self, _: &Summary) -> std::io::Result<()> {
        Ok(())
    }
}

/// One finished (or interrupted) run as metrics and alerts see it.
#[derive(Debug, Clone)]
pub struct RunObservation {
    pub schedule: String,
    pub run: Option<RunId>,
    pub interrupted: bool,
    pub finished_at: SystemTime,
    pub duration: Duration,
    /// The run's `fail-on`: rules at or above it that alert count in
    /// `data_integrity_check_failures`.
    pub fail_on: Severity,
    /// The rules that finished, by id.
    pub rules: Vec<RuleObservation>,
}

/// One rule of a run.
#[derive(Debug, Clone)]
pub struct RuleObservation {
    pub rule: String,
    pub severity: Severity,
    pub source: String,
    /// Findings (one per key), those the baseline accepted too.
    pub findings: u64,
    /// Findings the rule's previous comparable run did not have; `None` when unknown (the
    /// rule failed, or the run cannot be compared: interrupted, or not recorded while the
    /// rule has a history).
    pub new_findings: Option<u64>,
    /// Why the rule could not finish: [`crate::outcome::RuleError::cause`].
    pub error: Option<String>,
    pub duration: Duration,
    /// Whether the result alerts under the rule's `alert-on`.
    pub alerting: bool,
}

impl RunObservation {
    /// The runbook's `data_integrity_check_failures`: the rules that alert and whose
    /// severity is at or above the run's `fail-on`.
    pub fn integrity_failures(&self) -> usize {
        self.rules
            .iter()
            .filter(|r| r.alerting && r.severity.at_least(self.fail_on))
            .count()
    }
}

/// New findings against the previous comparable recorded run (store diff), `alerting` by each
/// rule's alert-on over its recorded history; store None = no history (every finding new).
///
/// A rule's previous comparable run is the newest complete run before this one in which it
/// ran to the end with the same definition (whatever else that run selected): a run in
/// which it failed is skipped, so a passing database error does not make its backlog new.
/// A rule without one has no history: every finding is new.
pub async fn observe(
    project: &Project,
    schedule: &str,
    report: &CheckReport,
    collector: Collector,
    store: Option<&Store>,
) -> Result<RunObservation> {
    let finished_at = SystemTime::now();
    let alert_on: HashMap<&str, AlertOn> = project
        .rules
        .iter()
        .map(|r| (r.rule.id.as_str(), r.rule.alert_on))
        .collect();
    let mut finished: Vec<(Collected, u64, Option<&'static str>, Duration)> = collector
        .rules
        .into_iter()
        .filter_map(|c| c.outcome.map(|(n, error, elapsed)| (c, n, error, elapsed)))
        .collect();
    finished.sort_by(|a, b| a.0.rule.id.cmp(&b.0.rule.id));

    let history = match store {
        Some(store) => {
            let rules: Vec<(&str, &str)> = finished
                .iter()
                .map(|(c, ..)| (c.rule.id.as_str(), c.rule.definition_hash.as_str()))
                .collect();
            store
                .rule_history(&rules, report.run, alert::JUMP_WINDOW)
                .await?
        }
        None => HashMap::new(),
    };
    // The run itself can be compared only when it is recorded complete.
    let comparable = match (store, report.run) {
        (Some(store), Some(run)) if !report.interrupted => Some((store, run)),
        _ => None,
    };
    let new = match comparable {
        Some((store, run)) => new_findings(store, run, &history).await?,
        None => HashMap::new(),
    };

    let rules = finished
        .into_iter()
        .map(|(collected, findings, error, duration)| {
            let id = collected.rule.id.as_str();
            let past = history.get(id).map(Vec::as_slice).unwrap_or_default();
            let new_findings = match (error, past.is_empty()) {
                (Some(_), _) => None,
                (None, true) => Some(findings),
                (None, false) => new.get(id).copied(),
            };
            let counts: Vec<u64> = past.iter().map(|r| r.findings).collect();
            let result = RuleResult {
                findings,
                accepted: collected.accepted,
                new: new_findings,
            };
            RuleObservation {
                rule: collected.rule.id.clone(),
                severity: collected.rule.severity,
                source: collected.rule.source.clone(),
                findings,
                new_findings,
                error: error.map(str::to_owned),
                duration,
                alerting: alert::alerting(
                    alert_on.get(id).copied().unwrap_or_default(),
                    result,
                    &counts,
                ),
            }
        })
        .collect();
    Ok(RunObservation {
        schedule: schedule.to_owned(),
        run: report.run,
        interrupted: report.interrupted,
        finished_at,
        duration: report.summary.elapsed,
        fail_on: report.summary.fail_on.unwrap_or(project.defaults.fail_on),
        rules,
    })
}

/// Each rule's new findings in `run` against its previous comparable run (the newest of its
/// `history`): one diff per distinct previous run, usually one for the whole run.
async fn new_findings(
    store: &Store,
    run: RunId,
    history: &HashMap<String, Vec<crate::store::RuleRun>>,
) -> Result<HashMap<String, u64>> {
    let mut by_previous: BTreeMap<RunId, HashSet<&str>> = BTreeMap::new();
    for (rule, runs) in history {
        if let Some(previous) = runs.first() {
            by_previous.entry(previous.run).or_default().insert(rule);
        }
    }
    let mut new = HashMap::new();
    for (previous, rules) in by_previous {
        let diff = store.diff(previous, run).await?;
        for rule in diff.rules {
            if rules.contains(rule.rule.as_str()) && rule.change == crate::store::RuleChange::Same {
                new.insert(rule.rule, rule.new);
            }
        }
    }
    Ok(new)
}

/// `check --metrics-file`: observes the run (against the project's store when the run was
/// recorded; a run not recorded has no history, so every finding is new) and writes the
/// metrics file with it as `schedule`'s one run.
pub async fn write_run(
    project: &Project,
    schedule: &str,
    report: &CheckReport,
    collector: Collector,
    path: &std::path::Path,
) -> Result<RunObservation> {
    let store = match report.run {
        Some(_) => Some(Store::open_read_only(&project.state).await?),
        None => None,
    };
    let observed = observe(project, schedule, report, collector, store.as_ref()).await;
    if let Some(store) = store {
        store.close().await;
    }
    let observation = observed?;
    let mut metrics = Metrics::new();
    metrics.record(&observation);
    write_file(path, &metrics)?;
    Ok(observation)
}
