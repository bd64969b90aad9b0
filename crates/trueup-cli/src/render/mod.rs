//! Renderers of a check run, one per output format. The run hands each of them the same
//! calls in the same order; they decide what a reader sees. A renderer for people writes
//! every piece of data through `trueup_core::text` (`Escaped`, `markdown_code`), never raw;
//! JSON is exact (docs/design/output-escaping.md).

mod human;
mod json;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use human::{HumanRenderer, plural};
pub use json::JsonRenderer;
use trueup_core::engine::RuleOutcome;
use trueup_core::finding::{Finding, RuleSpec};
use trueup_core::rule::Severity;

/// What a renderer is told about a run, in order: `start`, then findings and finished rules
/// interleaved as they happen, then `finish`.
pub trait Renderer {
    fn start(&mut self, rules: &[Arc<RuleSpec>]) -> std::io::Result<()>;
    /// A finding, its fingerprint, and whether the baseline holds it.
    fn finding(
        &mut self,
        finding: &Finding,
        fingerprint: i64,
        accepted: bool,
    ) -> std::io::Result<()>;
    fn rule_finished(&mut self, outcome: &RuleOutcome) -> std::io::Result<()>;
    fn finish(&mut self, summary: &Summary) -> std::io::Result<()>;
}

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

pub fn millis<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}
