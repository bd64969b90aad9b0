//! Reports: one run rendered for people (Markdown, a self-contained HTML page with its
//! trend) and for machines (JSON, JUnit XML). One model, [`Report`], built from a recorded
//! run ([`from_store`]) or from a live check's events ([`Collector`]), and one renderer
//! file per format. A report keeps the first few keys of each rule, never all of its
//! findings: its memory and its size do not grow with them.

mod build;
mod escape;
mod html;
mod json;
mod junit;
mod live;
mod markdown;

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

pub use build::{Options, compare, from_store};
pub use escape::html_text;
pub use live::Collector;

use crate::rule::Severity;
use crate::store::{RuleChange, RunId, RunStatus};

/// The longest key or message a report shows, in characters; longer ones are cut with `…`.
pub const MAX_TEXT: usize = 200;

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Tables and lists for a pull request, an issue or a wiki page.
    Markdown,
    /// One page with no external reference: inline styles, SVG charts and script.
    Html,
    /// The model itself, for programs.
    Json,
    /// JUnit XML: one testsuite for the run, one testcase per rule.
    Junit,
}

/// Writes `report` to `out` in `format`.
pub fn render(report: &Report, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Markdown => markdown::render(report, out),
        Format::Html => html::render(report, out),
        Format::Json => json::render(report, out),
        Format::Junit => junit::render(report, out),
    }
}

/// A run as a report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run: RunInfo,
    /// Rules are failing at or above this severity (JUnit failures, the exit code of check).
    pub fail_on: Severity,
    /// Keys shown per rule.
    pub show: usize,
    /// The run the new and resolved findings are counted against: the newest complete run
    /// before this one that selected the same rules. `None`: there is none, or this run is
    /// incomplete or was not recorded.
    pub compared_with: Option<RunId>,
    pub totals: Totals,
    /// The runs of the trend, oldest first; each rule's `history` follows this order.
    pub trend: Vec<TrendRun>,
    /// By rule id.
    pub rules: Vec<RuleReport>,
}

/// Which run a report is of.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// `None` for a check that was not recorded (`check --no-record`).
    pub id: Option<RunId>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: RunStatus,
    /// What the run selected (`--rule … --tag …`); `None`: every rule.
    pub selection: Option<String>,
    pub tool_version: String,
}

/// The run's totals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub rules: usize,
    pub findings: u64,
    /// Findings per severity, worst first.
    pub by_severity: BTreeMap<Severity, u64>,
    /// Rules with findings at or above `fail_on` (with a baseline: findings it does not hold).
    pub failing: usize,
    /// Rules that could not run to the end.
    pub errors: usize,
    /// Against `compared_with`, over the rules that compare.
    pub new: Option<u64>,
    pub resolved: Option<u64>,
    /// The time the rules took, added up (they run at once: the run took less).
    pub rule_time_ms: u64,
}

impl Totals {
    /// The totals of `rules` (nothing compared yet).
    pub fn of(rules: &[RuleReport]) -> Totals {
        let mut totals = Totals {
            rules: rules.len(),
            ..Totals::default()
        };
        for rule in rules {
            totals.findings += rule.findings;
            if rule.findings > 0 {
                *totals.by_severity.entry(rule.severity).or_default() += rule.findings;
            }
            totals.failing += usize::from(rule.failing);
            totals.errors += usize::from(rule.error.is_some());
            totals.rule_time_ms += rule.duration_ms;
        }
        totals
    }
}

/// One run of the trend.
#[derive(Debug, Clone, Serialize)]
pub struct TrendRun {
    pub id: RunId,
    pub started_at: String,
    pub findings: u64,
}

/// How one rule did.
#[derive(Debug, Clone, Serialize)]
pub struct RuleReport {
    pub id: String,
    /// From the rule file when the project is loaded (a rule deleted since has none).
    pub title: Option<String>,
    pub severity: Severity,
    pub findings: u64,
    /// Findings the baseline accepted (a live `check --baseline` only).
    #[serde(skip_serializing_if = "is_zero")]
    pub accepted: u64,
    /// Against the report's `compared_with`; `None` without one.
    pub compared: Option<Compared>,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// Who to ask and the runbook: the rule file's when the project is loaded, else what
    /// the run recorded.
    pub owner: Option<String>,
    pub runbook: Option<String>,
    /// Findings at or above `fail_on` that the baseline does not hold.
    pub failing: bool,
    /// The first `show` findings, by fingerprint (the same ones every run, as `show` lists).
    pub keys: Vec<Sample>,
    /// The rule's findings in each run of the trend; `None` where it did not run.
    pub history: Vec<Option<u64>>,
}

impl RuleReport {
    /// The rule's findings that are not shown.
    pub fn hidden(&self) -> u64 {
        let shown = u64::try_from(self.keys.len()).unwrap_or(u64::MAX);
        self.findings
            .saturating_sub(self.accepted)
            .saturating_sub(shown)
    }

    /// `pass`, `fail`, `error` or `findings` (below `fail_on`): what a reader sorts by.
    pub fn state(&self) -> &'static str {
        match (&self.error, self.failing, self.findings > 0) {
            (Some(_), _, _) => "error",
            (None, true, _) => "fail",
            (None, false, true) if self.findings > self.accepted => "findings",
            _ => "pass",
        }
    }
}

/// A rule's findings against the previous run.
#[derive(Debug, Clone, Serialize)]
pub struct Compared {
    /// `same` when the counts compare the same rule in both runs; else why they do not.
    pub change: RuleChange,
    pub new: u64,
    pub resolved: u64,
}

/// One finding as a report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub fingerprint: String,
    /// The key columns, exactly.
    pub key: serde_json::Value,
    /// `id=42` or `order_id=7, line=2`, at most [`MAX_TEXT`] characters.
    pub text: String,
    /// At most [`MAX_TEXT`] characters.
    pub message: String,
}

impl Sample {
    pub fn new(fingerprint: String, key: serde_json::Value, message: &str) -> Sample {
        Sample {
            text: cut(&crate::store::key_text(&key)),
            fingerprint,
            key,
            message: cut(message),
        }
    }
}

/// `text` cut to [`MAX_TEXT`] characters, `…` ending a cut one.
fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What the report's headline says about how a run ended.
fn status_word(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Complete => "complete",
        RunStatus::Running => "incomplete (still running, or killed)",
        RunStatus::Interrupted => "incomplete (interrupted)",
        RunStatus::Abandoned => "incomplete (abandoned: past its deadline)",
    }
}

/// Why a rule's counts do not compare with the previous run, in words; `None` when they do.
fn not_compared(change: RuleChange) -> Option<&'static str> {
    match change {
        RuleChange::Same => None,
        RuleChange::Added => Some("new rule"),
        RuleChange::Removed => Some("rule removed"),
        RuleChange::Changed => Some("rule changed"),
        RuleChange::Failed => Some("failed in one run"),
        RuleChange::NotRunBefore => Some("not run before"),
        RuleChange::NotRunAfter => Some("not run"),
    }
}

/// The new and resolved cells of a rule's row: counts, or `–` where they do not compare.
fn compared_cells(rule: &RuleReport) -> (String, String) {
    match &rule.compared {
        Some(c) if c.change == RuleChange::Same => (c.new.to_string(), c.resolved.to_string()),
        _ => ("–".to_owned(), "–".to_owned()),
    }
}

/// What became of a rule: `fail`, `error`, `pass`, with why its counts do not compare.
fn result_text(rule: &RuleReport) -> String {
    let state = match rule.state() {
        "error" => "error: could not run",
        "fail" => "fail",
        "findings" => "pass (findings below fail-on)",
        _ => "pass",
    };
    match rule.compared.as_ref().and_then(|c| not_compared(c.change)) {
        Some(why) => format!("{state} · not compared: {why}"),
        None => state.to_owned(),
    }
}

/// `12 ms`, `1.25 s`.
fn duration_text(ms: u64) -> String {
    crate::duration::elapsed_text(std::time::Duration::from_millis(ms))
}

/// The run's totals in a line: `5 rules · 22 findings (14 critical, 8 high) · 2 new · …`,
/// each number passed through `strong` (bold in Markdown).
fn summary_line(report: &Report, strong: impl Fn(String) -> String) -> String {
    let totals = &report.totals;
    let count = |n: u64, word: &str| {
        let word = if n == 1 {
            word.to_owned()
        } else {
            format!("{word}s")
        };
        format!("{} {word}", strong(n.to_string()))
    };
    let rules = u64::try_from(totals.rules).unwrap_or(u64::MAX);
    let mut parts = vec![count(rules, "rule")];
    let severities: Vec<String> = totals
        .by_severity
        .iter()
        .map(|(severity, n)| format!("{n} {}", severity.as_str()))
        .collect();
    parts.push(match severities.is_empty() {
        true => "no findings".to_owned(),
        false => format!(
            "{} ({})",
            count(totals.findings, "finding"),
            severities.join(", ")
        ),
    });
    let accepted: u64 = report.rules.iter().map(|r| r.accepted).sum();
    if accepted > 0 {
        parts.push(format!(
            "{} accepted by the baseline",
            strong(accepted.to_string())
        ));
    }
    if let (Some(new), Some(resolved), Some(previous)) =
        (totals.new, totals.resolved, report.compared_with)
    {
        parts.push(format!(
            "{} new, {} resolved since run {previous}",
            strong(new.to_string()),
            strong(resolved.to_string())
        ));
    }
    parts.push(format!(
        "{} failing (fail-on: {})",
        strong(totals.failing.to_string()),
        report.fail_on.as_str()
    ));
    if totals.errors > 0 {
        parts.push(format!(
            "{} could not run",
            strong(totals.errors.to_string())
        ));
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_TEXT + 5);
        let cut = cut(&long);
        assert_eq!(cut.chars().count(), MAX_TEXT + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(super::cut("short"), "short");
    }
}
