//! Output for people: one block per rule in the order the rules were declared (each printed
//! as soon as it and the rules before it are done), its first few findings, and a summary.
//! Every piece of data (rule ids and titles, keys, messages, errors) is written
//! [`Escaped`]: no control character from a row reaches the terminal.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use anstyle::{AnsiColor, Style};
use trueup_core::duration::elapsed_text;
use trueup_core::finding::{Finding, RuleSpec};
use trueup_core::outcome::RuleOutcome;
use trueup_core::rule::Severity;
use trueup_core::text::Escaped;

use crate::printer::{BOLD, DIM, ERROR, OK};
use trueup_core::check::{CheckSink, Summary};

pub struct HumanRenderer<W: Write> {
    out: W,
    /// Findings shown per rule.
    show: usize,
    rules: Vec<Arc<RuleSpec>>,
    /// The first `show` findings of each rule, as `(key, message)`, by rule position.
    samples: Vec<Vec<Finding>>,
    /// Findings of each rule the baseline accepted, by rule position.
    accepted: Vec<u64>,
    /// Finished rules not printed yet because an earlier rule is still running.
    finished: BTreeMap<usize, RuleOutcome>,
    next_to_print: usize,
}

impl<W: Write> HumanRenderer<W> {
    pub fn new(out: W, show: usize) -> Self {
        HumanRenderer {
            out,
            show,
            rules: Vec::new(),
            samples: Vec::new(),
            accepted: Vec::new(),
            finished: BTreeMap::new(),
            next_to_print: 0,
        }
    }

    fn position(&self, rule: &Arc<RuleSpec>) -> usize {
        self.rules
            .iter()
            .position(|r| Arc::ptr_eq(r, rule))
            .unwrap_or_default()
    }

    fn print_rule(&mut self, position: usize, outcome: &RuleOutcome) -> std::io::Result<()> {
        let rule = &outcome.rule;
        let id = Escaped(&rule.id);
        let elapsed = elapsed_text(outcome.elapsed);
        let count = plural(outcome.findings, "finding");
        let style = severity_style(rule.severity);
        let accepted = self.accepted[position];
        let new = outcome.findings - accepted;
        let count = match accepted {
            0 => count,
            _ => format!("{new} new, {accepted} accepted by the baseline"),
        };
        // One finding per key: rows that repeated a key are counted here, not listed.
        let count = match outcome.repeats {
            0 => count,
            n => format!("{count} ({} repeating their keys)", plural(n, "more row")),
        };
        match (&outcome.error, new) {
            (Some(_), 0) => writeln!(
                self.out,
                "{ERROR}!{ERROR:#} {ERROR}error{ERROR:#}    {BOLD}{id}{BOLD:#} {DIM}· failed · {elapsed}{DIM:#}"
            )?,
            (Some(_), _) => writeln!(
                self.out,
                "{ERROR}!{ERROR:#} {ERROR}error{ERROR:#}    {BOLD}{id}{BOLD:#} {DIM}· failed after {count} · {elapsed}{DIM:#}"
            )?,
            (None, 0) if accepted > 0 => writeln!(
                self.out,
                "{OK}✓{OK:#} {OK}ok{OK:#}       {id} {DIM}· {count} · {elapsed}{DIM:#}"
            )?,
            (None, 0) => writeln!(
                self.out,
                "{OK}✓{OK:#} {OK}ok{OK:#}       {id} {DIM}· no findings · {elapsed}{DIM:#}"
            )?,
            (None, _) => writeln!(
                self.out,
                "{style}✗{style:#} {style}{:<8}{style:#} {BOLD}{id}{BOLD:#} {DIM}· {count} · {elapsed}{DIM:#}",
                rule.severity.as_str(),
            )?,
        }
        if new > 0 || outcome.error.is_some() {
            writeln!(self.out, "           {}", Escaped(&rule.title))?;
            if let Some(contacts) = contacts(rule.owner.as_deref(), rule.runbook.as_deref()) {
                writeln!(self.out, "           {DIM}{contacts}{DIM:#}")?;
            }
        }
        for finding in &self.samples[position] {
            writeln!(
                self.out,
                "             {}  {DIM}{}{DIM:#}",
                Escaped(finding.key_text()),
                Escaped(finding.message())
            )?;
        }
        let hidden = new.saturating_sub(self.samples[position].len() as u64);
        if hidden > 0 {
            writeln!(
                self.out,
                "             {DIM}… and {hidden} more (--format json lists every finding){DIM:#}"
            )?;
        }
        if let Some(error) = &outcome.error {
            writeln!(self.out, "             {ERROR}{}{ERROR:#}", Escaped(error))?;
        }
        self.samples[position] = Vec::new();
        Ok(())
    }
}

impl<W: Write> CheckSink for HumanRenderer<W> {
    fn start(&mut self, rules: &[Arc<RuleSpec>]) -> std::io::Result<()> {
        self.rules = rules.to_vec();
        self.samples = vec![Vec::new(); rules.len()];
        self.accepted = vec![0; rules.len()];
        Ok(())
    }

    fn finding(
        &mut self,
        finding: &Finding,
        _fingerprint: trueup_core::fingerprint::Fingerprint,
        accepted: bool,
    ) -> std::io::Result<()> {
        if accepted {
            let position = self.position(&finding.rule);
            self.accepted[position] += 1;
            return Ok(()); // the sample shows findings that are new to the baseline
        }
        let position = self.position(&finding.rule);
        // Keep the `show` smallest keys, so that the sample does not depend on the order in
        // which the database happened to return rows.
        let samples = &mut self.samples[position];
        let at = samples.partition_point(|kept| kept.key_cmp(finding).is_le());
        if at < self.show {
            samples.insert(at, finding.clone());
            samples.truncate(self.show);
        }
        Ok(())
    }

    fn rule_finished(&mut self, outcome: &RuleOutcome) -> std::io::Result<()> {
        let position = self.position(&outcome.rule);
        self.finished.insert(position, outcome.clone());
        while let Some(outcome) = self.finished.remove(&self.next_to_print) {
            self.print_rule(self.next_to_print, &outcome)?;
            self.next_to_print += 1;
        }
        self.out.flush()
    }

    fn finish(&mut self, summary: &Summary) -> std::io::Result<()> {
        let passing = summary.rules - summary.errored_rules - summary.rules_with_findings;
        let mut parts = vec![plural(summary.rules, "rule")];
        if summary.findings > 0 {
            let severities: Vec<String> = summary
                .by_severity
                .iter()
                .map(|(severity, n)| format!("{n} {severity}"))
                .collect();
            parts.push(format!(
                "{} ({})",
                plural(summary.findings, "finding"),
                severities.join(", ")
            ));
        } else {
            parts.push("no findings".to_owned());
        }
        if summary.accepted > 0 {
            parts.push(format!("{} accepted by the baseline", summary.accepted));
        }
        parts.push(format!("{passing} passed"));
        if summary.errored_rules > 0 {
            parts.push(format!(
                "{ERROR}{} failed to run{ERROR:#}",
                summary.errored_rules
            ));
        }
        parts.push(elapsed_text(summary.elapsed));
        writeln!(self.out, "\n{}", parts.join(" · "))?;
        self.out.flush()
    }
}

/// `1 rule`, `2 rules`.
/// `owner: … · runbook: …`, for whoever reads a failing rule at 3 a.m.; `None` when the
/// rule names neither. Both are escaped.
pub fn contacts(owner: Option<&str>, runbook: Option<&str>) -> Option<String> {
    let parts: Vec<String> = [("owner", owner), ("runbook", runbook)]
        .into_iter()
        .filter_map(|(label, value)| value.map(|v| format!("{label}: {}", Escaped(v))))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" · "))
}

pub fn plural(n: impl TryInto<u128>, word: &str) -> String {
    match n.try_into().unwrap_or(u128::MAX) {
        1 => format!("1 {word}"),
        n => format!("{n} {word}s"),
    }
}

fn severity_style(severity: Severity) -> Style {
    match severity {
        Severity::Critical => AnsiColor::Red.on_default().bold(),
        Severity::High => AnsiColor::Red.on_default(),
        Severity::Medium => AnsiColor::Yellow.on_default(),
        Severity::Low => AnsiColor::Blue.on_default(),
    }
}
