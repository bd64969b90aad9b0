//! A report of a recorded run, read from the state store: the run, its rules, their first
//! keys (a few per rule, streamed), new and resolved findings against the run before it
//! ([`compare`]), and the rules' findings over the runs before it.

use std::collections::{BTreeMap, HashMap};

use super::{Compared, Report, RuleReport, RunInfo, Sample, Totals, TrendRun};
use crate::load::Project;
use crate::rule::Severity;
use crate::store::{RunId, RunRule, RunSummary, Store};
use crate::{Error, Result};

/// What a report shows.
#[derive(Debug, Clone)]
pub struct Options {
    /// Keys per rule.
    pub show: usize,
    /// Runs in the trend, this one included (0: none).
    pub trend: usize,
    pub fail_on: Severity,
}

/// The report of run `run`. Titles, owners and runbooks come from `project`'s rule files
/// when it is given; owners and runbooks of rules it no longer has are what the run
/// recorded.
pub async fn from_store(
    store: &Store,
    run: RunId,
    options: &Options,
    project: Option<&Project>,
) -> Result<Report> {
    let summary = store.run(run).await?;
    let files: HashMap<&str, &crate::rule::Rule> = project
        .map(|p| {
            p.rules
                .iter()
                .map(|r| (r.rule.id.as_str(), &r.rule))
                .collect()
        })
        .unwrap_or_default();
    let mut rules: Vec<RuleReport> = store
        .run_rules(run)
        .await?
        .into_iter()
        .map(|recorded| {
            let file = files.get(recorded.rule.as_str()).copied();
            rule_report(recorded, file, options.fail_on)
        })
        .collect();
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    for finding in store.first_findings(run, options.show).await? {
        if let Ok(at) = rules.binary_search_by(|r| r.id.as_str().cmp(&finding.rule)) {
            let sample = Sample::new(finding.fingerprint, finding.key, &finding.message);
            rules[at].keys.push(sample);
        }
    }
    let mut report = Report {
        run: run_info(&summary),
        fail_on: options.fail_on,
        show: options.show,
        compared_with: None,
        totals: Totals::of(&rules),
        trend: Vec::new(),
        rules,
    };
    if summary.complete {
        compare(store, &mut report).await?;
    }
    trend(store, &mut report, options.trend).await?;
    Ok(report)
}

/// Counts each rule's new and resolved findings against the newest complete run before the
/// report's that selected the same rules, when there is one; the report's run must be a
/// complete one in `store`.
pub async fn compare(store: &Store, report: &mut Report) -> Result<()> {
    let Some(run) = report.run.id else {
        return Ok(());
    };
    let previous = match store.previous_like(run).await {
        Ok(previous) => previous,
        Err(Error::UnknownRun(_)) => return Ok(()),
        Err(err) => return Err(err),
    };
    let diff = store.diff(previous, run).await?;
    let changes: HashMap<&str, _> = diff.rules.iter().map(|d| (d.rule.as_str(), d)).collect();
    for rule in &mut report.rules {
        rule.compared = changes.get(rule.id.as_str()).map(|d| Compared {
            change: d.change,
            new: d.new,
            resolved: d.resolved,
        });
    }
    report.compared_with = Some(previous);
    report.totals.new = Some(diff.new);
    report.totals.resolved = Some(diff.resolved);
    Ok(())
}

/// Adds the newest `runs` runs up to the report's (complete ones, and the report's own) to
/// its trend, and each rule's findings in them to its history.
async fn trend(store: &Store, report: &mut Report, runs: usize) -> Result<()> {
    let Some(upto) = report.run.id else {
        return Ok(());
    };
    if runs == 0 {
        return Ok(());
    }
    let wanted = |r: &RunSummary| r.id == upto || (r.id < upto && r.complete);
    // Runs are listed newest first, newer ones than the report's too: ask for more until
    // enough are old enough, or there are no more.
    let mut limit = i64::try_from(runs).unwrap_or(i64::MAX).saturating_add(16);
    let picked = loop {
        let listed = store.runs(limit).await?;
        let exhausted = i64::try_from(listed.len()).unwrap_or(i64::MAX) < limit;
        let picked: Vec<RunSummary> = listed.into_iter().filter(wanted).take(runs).collect();
        if picked.len() == runs || exhausted {
            break picked;
        }
        limit = limit.saturating_mul(4);
    };
    for run in picked.into_iter().rev() {
        let counts: BTreeMap<String, i64> = store
            .run_rules(run.id)
            .await?
            .into_iter()
            .map(|r| (r.rule, r.findings))
            .collect();
        for rule in &mut report.rules {
            let count = counts.get(&rule.id).map(|&n| u64::try_from(n).unwrap_or(0));
            rule.history.push(count);
        }
        report.trend.push(TrendRun {
            id: run.id,
            started_at: run.started_at,
            findings: u64::try_from(run.findings).unwrap_or(0),
        });
    }
    Ok(())
}

fn run_info(run: &RunSummary) -> RunInfo {
    RunInfo {
        id: Some(run.id),
        started_at: run.started_at.clone(),
        finished_at: run.finished_at.clone(),
        status: run.status,
        selection: run.selection.clone(),
        tool_version: run.tool_version.clone(),
    }
}

/// A rule as the run recorded it, with what its rule file says now.
fn rule_report(
    recorded: RunRule,
    file: Option<&crate::rule::Rule>,
    fail_on: Severity,
) -> RuleReport {
    // Only a newer trueup could have written another word; such a rule counts as mild.
    let severity = recorded.severity.parse().unwrap_or(Severity::Low);
    let findings = u64::try_from(recorded.findings).unwrap_or(0);
    RuleReport {
        title: file.map(|f| f.title.clone()),
        owner: file.map_or(recorded.owner, |f| f.owner.clone()),
        runbook: file.map_or(recorded.runbook, |f| f.runbook.clone()),
        id: recorded.rule,
        severity,
        findings,
        accepted: 0,
        compared: None,
        duration_ms: u64::try_from(recorded.duration_ms).unwrap_or(0),
        error: recorded.error,
        failing: findings > 0 && severity.at_least(fail_on),
        keys: Vec::new(),
        history: Vec::new(),
    }
}
