//! Baselines: findings a team has accepted, kept in a file meant to be committed
//! (`trueup.baseline.jsonl` beside `trueup.toml`), one finding per line sorted by rule and
//! fingerprint, so that a pull request shows exactly which debt was accepted or paid.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use futures_util::{Stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{RunId, Store};
use crate::fingerprint::Fingerprint;
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
    accepted: HashSet<(String, Fingerprint)>,
}

impl Baseline {
    /// Reads the baseline at `path`; a missing file is an empty baseline.
    pub fn load(path: &Path) -> Result<Baseline> {
        let accepted = read_lines(path)?
            .filter_map(|line| match line {
                Ok(line) => line
                    .fingerprint
                    .parse()
                    .ok()
                    .map(|print| Ok((line.rule, print))),
                Err(err) => Some(Err(err)),
            })
            .collect::<Result<_>>()?;
        Ok(Baseline { accepted })
    }

    pub fn contains(&self, rule: &str, fingerprint: Fingerprint) -> bool {
        self.accepted.contains(&(rule.to_owned(), fingerprint))
    }

    /// How many accepted findings of `rules` are not among `seen` (rule id, fingerprint):
    /// debt that was paid off, still accepted until the baseline is refreshed.
    pub fn stale(
        &self,
        rules: impl Fn(&str) -> bool,
        seen: &HashSet<(String, Fingerprint)>,
    ) -> usize {
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
    /// Rules whose findings are about whole tables (freshness, row count): never accepted,
    /// so that a table that goes stale again is a new finding again; their old lines dropped.
    pub table_level: Vec<String>,
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
        let table_level: Vec<String> = rules
            .iter()
            .filter(|r| r.kind.as_deref().is_some_and(crate::rule::is_table_level))
            .map(|r| r.rule.clone())
            .collect();
        let skipped: HashSet<&str> = table_level.iter().map(String::as_str).collect();
        let temporary = path.with_extension("jsonl.tmp");
        let written = self
            .merge_into(run, path, &temporary, &replaced, &skipped)
            .await;
        let renamed = written.and_then(|counts| {
            std::fs::rename(&temporary, path)
                .map(|()| counts)
                .map_err(|e| cannot_write(path, &e))
        });
        if renamed.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        let (accepted, kept) = renamed?;
        Ok(Accepted {
            accepted,
            kept,
            failed_rules,
            table_level,
        })
    }

    /// Writes into `temporary` the lines of the baseline at `path` whose rules are not
    /// `replaced`, merged with the findings of `run` of the replaced rules, in the file's
    /// order (rule, then fingerprint): both are read one line, one finding at a time.
    /// Returns how many findings were accepted and how many old lines kept.
    async fn merge_into(
        &self,
        run: RunId,
        path: &Path,
        temporary: &Path,
        replaced: &HashSet<&str>,
        skipped: &HashSet<&str>,
    ) -> Result<(usize, usize)> {
        let failed = |e: std::io::Error| cannot_write(temporary, &e);
        let mut out = BufWriter::new(std::fs::File::create(temporary).map_err(failed)?);
        let mut old = read_lines(path)?.filter(|line| {
            line.as_ref()
                .map_or(true, |l| !replaced.contains(l.rule.as_str()))
        });
        let mut next_old = old.next().transpose()?;
        let mut found = std::pin::pin!(self.baseline_lines(run));
        let (mut accepted, mut kept) = (0, 0);
        let mut last: Option<(String, String)> = None;
        loop {
            let new = loop {
                match found.try_next().await? {
                    Some(line)
                        if !replaced.contains(line.rule.as_str())
                            || skipped.contains(line.rule.as_str()) =>
                    {
                        continue;
                    }
                    // A key recorded twice (by a trueup that kept repeated keys) is one line.
                    Some(line)
                        if last.as_ref().is_some_and(|(rule, print)| {
                            *rule == line.rule && *print == line.fingerprint
                        }) =>
                    {
                        continue;
                    }
                    other => break other,
                }
            };
            if let Some(line) = &new {
                last = Some((line.rule.clone(), line.fingerprint.clone()));
            }
            // Old lines that sort before the next finding go first.
            while let Some(line) = next_old.take_if(|o| {
                new.as_ref()
                    .is_none_or(|n| (&o.rule, &o.fingerprint) < (&n.rule, &n.fingerprint))
            }) {
                write_line(&mut out, &line).map_err(failed)?;
                kept += 1;
                next_old = old.next().transpose()?;
            }
            let Some(line) = new else { break };
            write_line(&mut out, &line).map_err(failed)?;
            accepted += 1;
        }
        out.into_inner()
            .map_err(std::io::IntoInnerError::into_error)
            .and_then(|file| file.sync_all())
            .map_err(failed)?;
        Ok((accepted, kept))
    }

    /// A run's findings as baseline lines, in the file's order: by rule id (bytes), then
    /// fingerprint (its hex text, i.e. unsigned).
    fn baseline_lines(&self, run: RunId) -> impl Stream<Item = Result<Line>> + Send + '_ {
        let sql = if self.is_sqlite() {
            "SELECT rule_id, fingerprint, key FROM findings WHERE run_id = $1 \
             ORDER BY rule_id, fingerprint < 0, fingerprint"
        } else {
            "SELECT rule_id, fingerprint, key FROM findings WHERE run_id = $1 \
             ORDER BY rule_id COLLATE \"C\", fingerprint < 0, fingerprint"
        };
        sqlx::query(sql)
            .bind(run)
            .fetch(&self.pool)
            .map(move |row| {
                let row = row.map_err(|e| self.failed(&e))?;
                Ok(Line {
                    rule: row.get("rule_id"),
                    fingerprint: Fingerprint::from_stored(row.get("fingerprint")).to_string(),
                    key: serde_json::from_str(row.get("key")).unwrap_or_default(),
                })
            })
    }
}

fn write_line(out: &mut impl Write, line: &Line) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")
}

fn cannot_write(path: &Path, err: &std::io::Error) -> Error {
    Error::Other(format!("cannot write {}: {err}", path.display()))
}

/// The lines of the baseline at `path`, read one at a time; none when it does not exist.
fn read_lines(path: &Path) -> Result<impl Iterator<Item = Result<Line>> + use<>> {
    let file = match crate::read::open_regular(path) {
        Ok(file) => Some(BufReader::new(file)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(Error::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let path = path.to_owned();
    Ok(file
        .into_iter()
        .flat_map(BufRead::lines)
        .enumerate()
        .filter(|(_, line)| line.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .map(move |(number, line)| {
            let line = line.map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            let line: Line = serde_json::from_str(&line).map_err(|e| {
                Error::Other(format!(
                    "{}:{}: not a baseline line: {e}",
                    path.display(),
                    number + 1
                ))
            })?;
            if line.fingerprint.parse::<Fingerprint>().is_err() {
                return Err(Error::Other(format!(
                    "{}:{}: `{}` is not a fingerprint",
                    path.display(),
                    number + 1,
                    line.fingerprint
                )));
            }
            Ok(line)
        }))
}
