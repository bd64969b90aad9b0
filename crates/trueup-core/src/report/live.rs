//! A report of a check as it runs: a [`CheckSink`] that keeps each rule's outcome and its
//! first few findings by fingerprint (the ones a report of the recorded run shows), so that
//! `check --format junit|markdown` renders the same model as `report`. Memory holds `show`
//! findings per rule, whatever the run finds.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Report, RuleReport, RunInfo, Sample, Totals};
use crate::check::{CheckReport, CheckSink, Summary};
use crate::finding::{Finding, RuleSpec};
use crate::fingerprint::Fingerprint;
use crate::outcome::RuleOutcome;
use crate::rule::Severity;
use crate::store::RunStatus;

/// Collects a check's events into a [`Report`]. A check writes into it borrowed
/// (`&mut Collector` is the sink); [`Collector::report`] then makes the report.
#[derive(Debug)]
pub struct Collector {
    show: usize,
    started_at: String,
    /// A rule's position, by the address of its spec.
    positions: HashMap<usize, usize>,
    /// Per rule position: its `show` smallest fingerprints (as stored) and their findings.
    samples: Vec<Vec<(i64, Sample)>>,
    accepted: Vec<u64>,
    outcomes: Vec<Option<RuleOutcome>>,
    fail_on: Severity,
    finished_at: Option<String>,
}

impl Collector {
    /// A collector that keeps `show` findings per rule.
    pub fn new(show: usize) -> Collector {
        Collector {
            show,
            started_at: crate::time::iso8601(crate::time::now_millis()),
            positions: HashMap::new(),
            samples: Vec::new(),
            accepted: Vec::new(),
            outcomes: Vec::new(),
            fail_on: Severity::Low,
            finished_at: None,
        }
    }

    fn position(&self, rule: &Arc<RuleSpec>) -> Option<usize> {
        self.positions.get(&(Arc::as_ptr(rule).addr())).copied()
    }

    /// The report of the run `check` says ended, which selected `selection` (`None`: every
    /// rule). Rules that did not finish (an interrupted run) are not in it, as in the store.
    pub fn report(self, check: &CheckReport, selection: Option<String>) -> Report {
        let fail_on = self.fail_on;
        let mut rules: Vec<RuleReport> = self
            .outcomes
            .into_iter()
            .zip(self.samples)
            .zip(self.accepted)
            .filter_map(|((outcome, samples), accepted)| {
                let outcome = outcome?;
                let rule = &outcome.rule;
                let new = outcome.findings.saturating_sub(accepted);
                Some(RuleReport {
                    id: rule.id.clone(),
                    title: Some(rule.title.clone()),
                    severity: rule.severity,
                    findings: outcome.findings,
                    accepted,
                    compared: None,
                    duration_ms: u64::try_from(outcome.elapsed.as_millis()).unwrap_or(u64::MAX),
                    error: outcome.error.as_ref().map(ToString::to_string),
                    owner: rule.owner.clone(),
                    runbook: rule.runbook.clone(),
                    failing: new > 0 && rule.severity.at_least(fail_on),
                    keys: samples.into_iter().map(|(_, sample)| sample).collect(),
                    history: Vec::new(),
                })
            })
            .collect();
        rules.sort_by(|a, b| a.id.cmp(&b.id));
        Report {
            run: RunInfo {
                id: check.run,
                started_at: self.started_at,
                finished_at: self.finished_at.filter(|_| !check.interrupted),
                status: if check.interrupted {
                    RunStatus::Interrupted
                } else {
                    RunStatus::Complete
                },
                selection,
                tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            fail_on,
            show: self.show,
            compared_with: None,
            totals: Totals::of(&rules),
            trend: Vec::new(),
            rules,
        }
    }
}

impl CheckSink for &mut Collector {
    fn start(&mut self, rules: &[Arc<RuleSpec>]) -> std::io::Result<()> {
        self.positions = rules
            .iter()
            .enumerate()
            .map(|(at, rule)| (Arc::as_ptr(rule).addr(), at))
            .collect();
        self.samples = vec![Vec::new(); rules.len()];
        self.accepted = vec![0; rules.len()];
        self.outcomes = vec![None; rules.len()];
        Ok(())
    }

    fn finding(
        &mut self,
        finding: &Finding,
        fingerprint: Fingerprint,
        accepted: bool,
    ) -> std::io::Result<()> {
        let Some(position) = self.position(&finding.rule) else {
            return Ok(());
        };
        if accepted {
            // The keys shown are those the baseline does not hold: the ones that fail.
            self.accepted[position] += 1;
            return Ok(());
        }
        let print = fingerprint.stored();
        let show = self.show;
        let samples = &mut self.samples[position];
        let at = samples.partition_point(|(kept, _)| *kept < print);
        if at < show {
            let key = serde_json::to_value(finding.key_object()).unwrap_or_default();
            let sample = Sample::new(fingerprint.to_string(), key, &finding.message());
            samples.insert(at, (print, sample));
            samples.truncate(show);
        }
        Ok(())
    }

    fn rule_finished(&mut self, outcome: &RuleOutcome) -> std::io::Result<()> {
        if let Some(position) = self.position(&outcome.rule) {
            self.outcomes[position] = Some(outcome.clone());
        }
        Ok(())
    }

    fn finish(&mut self, summary: &Summary) -> std::io::Result<()> {
        self.fail_on = summary.fail_on.unwrap_or(Severity::Low);
        self.finished_at = Some(crate::time::iso8601(crate::time::now_millis()));
        Ok(())
    }
}
