//! `--format json`: one JSON document, written as the run goes so that memory does not grow
//! with the number of findings: `{"version": 1, "findings": [...], "rules": [...], "summary": {...}}`.

use std::io::Write;
use std::sync::Arc;

use serde::Serialize;
use trueup_core::finding::{Finding, RuleSpec};
use trueup_core::outcome::{RuleError, RuleOutcome};
use trueup_core::rule::Severity;

use trueup_core::check::{CheckSink, Summary, millis};

pub struct JsonRenderer<W: Write> {
    out: W,
    written: u64,
    /// One finding's JSON, reused from finding to finding.
    buffer: Vec<u8>,
    rules: Vec<Arc<RuleSpec>>,
    outcomes: Vec<RuleOutcome>,
}

impl<W: Write> JsonRenderer<W> {
    pub fn new(out: W) -> Self {
        JsonRenderer {
            out,
            written: 0,
            buffer: Vec::new(),
            rules: Vec::new(),
            outcomes: Vec::new(),
        }
    }
}

#[derive(Serialize)]
struct RuleRecord<'a> {
    id: &'a str,
    title: &'a str,
    severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    runbook: Option<&'a str>,
    kind: &'a str,
    source: &'a str,
    findings: u64,
    /// Rows that repeated the key of one of the findings (one finding per key).
    #[serde(skip_serializing_if = "is_zero")]
    repeated_rows: u64,
    #[serde(serialize_with = "millis")]
    duration_ms: std::time::Duration,
    error: Option<String>,
    /// What kind of failure `error` is (`timeout`, `connection`, `plugin-trapped`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    error_cause: Option<&'static str>,
}

impl<W: Write> CheckSink for JsonRenderer<W> {
    fn start(&mut self, rules: &[Arc<RuleSpec>]) -> std::io::Result<()> {
        self.rules = rules.to_vec();
        self.out.write_all(b"{\"version\":1,\"findings\":[")
    }

    fn finding(
        &mut self,
        finding: &Finding,
        fingerprint: trueup_core::fingerprint::Fingerprint,
        accepted: bool,
    ) -> std::io::Result<()> {
        self.out
            .write_all(if self.written == 0 { b"\n" } else { b",\n" })?;
        self.written += 1;
        self.buffer.clear();
        serde_json::to_writer(&mut self.buffer, finding).map_err(std::io::Error::from)?;
        // The fingerprint (and the baseline's word) after the finding's own fields.
        self.buffer.pop(); // the closing brace
        self.buffer.extend_from_slice(b",\"fingerprint\":\"");
        self.buffer
            .extend_from_slice(fingerprint.to_string().as_bytes());
        self.buffer.extend_from_slice(if accepted {
            b"\",\"baseline\":true}"
        } else {
            b"\"}"
        });
        self.out.write_all(&self.buffer)
    }

    fn rule_finished(&mut self, outcome: &RuleOutcome) -> std::io::Result<()> {
        self.outcomes.push(outcome.clone());
        Ok(())
    }

    fn finish(&mut self, summary: &Summary) -> std::io::Result<()> {
        let position = |o: &RuleOutcome| self.rules.iter().position(|r| Arc::ptr_eq(r, &o.rule));
        self.outcomes.sort_by_key(|o| position(o));
        let rules: Vec<RuleRecord<'_>> = self
            .outcomes
            .iter()
            .map(|o| RuleRecord {
                id: &o.rule.id,
                title: &o.rule.title,
                severity: o.rule.severity,
                owner: o.rule.owner.as_deref(),
                runbook: o.rule.runbook.as_deref(),
                kind: o.rule.kind,
                source: &o.rule.source,
                findings: o.findings,
                repeated_rows: o.repeats,
                duration_ms: o.elapsed,
                error: o.error.as_ref().map(ToString::to_string),
                error_cause: o.error.as_ref().map(RuleError::cause),
            })
            .collect();
        self.out.write_all(b"\n],\"rules\":")?;
        serde_json::to_writer_pretty(&mut self.out, &rules).map_err(std::io::Error::from)?;
        self.out.write_all(b",\"summary\":")?;
        serde_json::to_writer_pretty(&mut self.out, summary).map_err(std::io::Error::from)?;
        self.out.write_all(b"}\n")?;
        self.out.flush()
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
