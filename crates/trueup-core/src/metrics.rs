//! TEMPORARY stand-in for the `metrics` branch's module (same API), so that `serve`
//! builds before that branch is merged; the merge replaces this file.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::Result;
use crate::check::{CheckReport, CheckSink, Summary};
use crate::finding::{Finding, RuleSpec};
use crate::fingerprint::Fingerprint;
use crate::load::Project;
use crate::outcome::RuleOutcome;
use crate::rule::Severity;
use crate::store::{RunId, Store};

#[derive(Debug, Default)]
pub struct Collector {
    rules: Vec<RuleObservation>,
}

impl Collector {
    pub fn new() -> Collector {
        Collector::default()
    }
}

impl CheckSink for Collector {
    fn start(&mut self, _: &[Arc<RuleSpec>]) -> std::io::Result<()> {
        Ok(())
    }
    fn finding(&mut self, _: &Finding, _: Fingerprint, _: bool) -> std::io::Result<()> {
        Ok(())
    }
    fn rule_finished(&mut self, o: &RuleOutcome) -> std::io::Result<()> {
        self.rules.push(RuleObservation {
            rule: o.rule.id.clone(),
            severity: o.rule.severity,
            source: String::new(),
            findings: o.findings,
            new_findings: Some(o.findings),
            error: o.error.as_ref().map(|e| e.cause().to_owned()),
            duration: o.elapsed,
            alerting: o.findings > 0,
        });
        Ok(())
    }
    fn finish(&mut self, _: &Summary) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct RunObservation {
    pub schedule: String,
    pub run: Option<RunId>,
    pub interrupted: bool,
    pub finished_at: SystemTime,
    pub duration: Duration,
    pub fail_on: Severity,
    pub rules: Vec<RuleObservation>,
}

#[derive(Debug, Clone)]
pub struct RuleObservation {
    pub rule: String,
    pub severity: Severity,
    pub source: String,
    pub findings: u64,
    pub new_findings: Option<u64>,
    pub error: Option<String>,
    pub duration: Duration,
    pub alerting: bool,
}

pub async fn observe(
    project: &Project,
    schedule: &str,
    report: &CheckReport,
    collector: Collector,
    _store: Option<&Store>,
) -> Result<RunObservation> {
    Ok(RunObservation {
        schedule: schedule.to_owned(),
        run: report.run,
        interrupted: report.interrupted,
        finished_at: SystemTime::now(),
        duration: report.summary.elapsed,
        fail_on: project.defaults.fail_on,
        rules: collector.rules,
    })
}

#[derive(Debug, Default)]
pub struct Metrics {
    runs: std::collections::BTreeMap<String, (u64, u64)>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }
    pub fn declare(&mut self, schedule: &str) {
        self.runs.entry(schedule.to_owned()).or_default();
    }
    pub fn record(&mut self, o: &RunObservation) {
        self.runs.entry(o.schedule.clone()).or_default().0 += 1;
    }
    pub fn run_skipped(&mut self, schedule: &str) {
        self.runs.entry(schedule.to_owned()).or_default().1 += 1;
    }
    pub fn render(&self, out: &mut String) {
        for (schedule, (runs, skipped)) in &self.runs {
            out.push_str(&format!(
                "trueup_runs_total{{schedule=\"{schedule}\"}} {runs}\ntrueup_runs_skipped_total{{schedule=\"{schedule}\"}} {skipped}\n"
            ));
        }
    }
}
