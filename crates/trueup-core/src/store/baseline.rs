//! Baselines: findings a team has accepted, kept in a file meant to be committed
//! (`trueup.baseline.jsonl` beside `trueup.toml`), one finding per line sorted by rule and
//! fingerprint, so that a pull request shows exactly which debt was accepted or paid.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{RunId, Store};
use crate::fingerprint;
use crate::{Error, Result};

/// The baseline's file name, beside `trueup.toml`.
pub const FILE: &str = "trueup.baseline.jsonl";

/// One accepted finding, as a line of the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Line {
    rule: String,
    fingerprint: String,
    key: serde_json::Value,
}

/// The accepted findings, by rule id and fingerprint.
#[derive(Debug, Default, Clone)]
pub struct Baseline {
    accepted: HashSet<(String, i64)>,
}

impl Baseline {
    /// Reads the baseline at `path`; a missing file is an empty baseline.
    pub fn load(path: &Path) -> Result<Baseline> {
        let accepted = read_lines(path)?
            .into_iter()
            .filter_map(|line| {
                fingerprint::parse_hex(&line.fingerprint).map(|print| (line.rule, print))
            })
            .collect();
        Ok(Baseline { accepted })
    }

    pub fn contains(&self, rule: &str, fingerprint: i64) -> bool {
        self.accepted.contains(&(rule.to_owned(), fingerprint))
    }

    /// How many accepted findings of `rules` are not among `seen` (rule id, fingerprint):
    /// debt that was paid off, still accepted until the baseline is refreshed.
    pub fn stale(&self, rules: impl Fn(&str) -> bool, seen: &HashSet<(String, i64)>) -> usize {
        self.accepted
            .iter()
            .filter(|entry| rules(&entry.0) && !seen.contains(*entry))
            .count()
    }

    pub fn len(&self) -> usize {
        self.accepted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accepted.is_empty()
    }
}

/// What `accept` did.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Findings of the run now in the baseline.
    pub accepted: usize,
    /// Lines kept from the old baseline: rules the run did not run, or that failed in it.
    pub kept: usize,
    /// Rules that failed in the run, whose old lines were kept.
    pub failed_rules: Vec<String>,
}

impl Store {
    /// Accepts every finding of the complete run `run` into the baseline file at `path`.
    /// The lines of rules the run ran replace theirs; the lines of rules it did not run (a
    /// filtered check), or that failed in it, are kept.
    pub async fn accept(&self, run: RunId, path: &Path) -> Result<Accepted> {
        if !self.run(run).await?.complete {
            return Err(Error::UnknownRun(format!(
                "run {run} is incomplete (killed or still running): accept a complete run"
            )));
        }
        let rules = self.run_rules(run).await?;
        let failed_rules: Vec<String> = rules
            .iter()
            .filter(|r| r.error.is_some())
            .map(|r| r.rule.clone())
            .collect();
        let replaced: HashSet<&str> = rules
            .iter()
            .filter(|r| r.error.is_none())
            .map(|r| r.rule.as_str())
            .collect();
        let mut lines: Vec<Line> = read_lines(path)?
            .into_iter()
            .filter(|l| !replaced.contains(l.rule.as_str()))
            .collect();
        let kept = lines.len();
        let findings = self.findings(run, None).await?;
        let accepted = findings
            .iter()
            .filter(|f| replaced.contains(f.rule.as_str()))
            .count();
        lines.extend(
            findings
                .into_iter()
                .filter(|f| replaced.contains(f.rule.as_str()))
                .map(|f| Line {
                    rule: f.rule,
                    fingerprint: f.fingerprint,
                    key: f.key,
                }),
        );
        lines.sort_by(|a, b| (&a.rule, &a.fingerprint).cmp(&(&b.rule, &b.fingerprint)));
        let write = || -> std::io::Result<()> {
            let temporary = path.with_extension("jsonl.tmp");
            let mut out = std::io::BufWriter::new(std::fs::File::create(&temporary)?);
            for line in &lines {
                serde_json::to_writer(&mut out, line)?;
                out.write_all(b"\n")?;
            }
            out.into_inner()
                .map_err(std::io::IntoInnerError::into_error)?
                .sync_all()?;
            std::fs::rename(&temporary, path)
        };
        write().map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(Accepted {
            accepted,
            kept,
            failed_rules,
        })
    }
}

/// The lines of the baseline at `path`; none when it does not exist.
fn read_lines(path: &Path) -> Result<Vec<Line>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            let line: Line = serde_json::from_str(line).map_err(|e| {
                Error::Other(format!(
                    "{}:{}: not a baseline line: {e}",
                    path.display(),
                    number + 1
                ))
            })?;
            if fingerprint::parse_hex(&line.fingerprint).is_none() {
                return Err(Error::Other(format!(
                    "{}:{}: `{}` is not a fingerprint",
                    path.display(),
                    number + 1,
                    line.fingerprint
                )));
            }
            Ok(line)
        })
        .collect()
}
