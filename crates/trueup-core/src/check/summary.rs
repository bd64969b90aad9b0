//! The totals of a check run, counted as its rules finish.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::outcome::RuleOutcome;
use crate::rule::Severity;

/// The totals of a run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub rules: usize,
    pub findings: u64,
    /// Findings per severity, worst first.
    pub by_severity: BTreeMap<Severity, u64>,
    /// Findings the baseline accepted (only with `check --baseline`).
    pub accepted: u64,
    /// Rules that ran to the end and found something (not accepted by the baseline).
    pub rules_with_findings: usize,
    /// Rules with findings at or above `fail_on`.
    pub failing_rules: usize,
    /// Rules that could not run to the end.
    pub errored_rules: usize,
    pub fail_on: Option<Severity>,
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub elapsed: Duration,
}

impl Summary {
    pub fn new(fail_on: Severity) -> Summary {
        Summary {
            fail_on: Some(fail_on),
            ..Summary::default()
        }
    }

    /// Counts a finished rule in, `accepted` of whose findings the baseline holds: only the
    /// others can make the rule fail.
    pub fn add(&mut self, outcome: &RuleOutcome, accepted: u64) {
        self.rules += 1;
        self.findings += outcome.findings;
        self.accepted += accepted;
        if outcome.findings > 0 {
            *self.by_severity.entry(outcome.rule.severity).or_default() += outcome.findings;
        }
        let new = outcome.findings.saturating_sub(accepted);
        if new > 0
            && self
                .fail_on
                .is_some_and(|threshold| outcome.rule.severity.at_least(threshold))
        {
            self.failing_rules += 1;
        }
        if outcome.error.is_some() {
            self.errored_rules += 1;
        } else if new > 0 {
            self.rules_with_findings += 1;
        }
    }
}

/// A duration as whole milliseconds, for JSON.
pub fn millis<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}
