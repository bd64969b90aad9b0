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
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Baseline::default());
            }
            Err(source) => {
                return Err(Error::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let mut accepted = HashSet::new();
        for (number, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let bad =
                |why: String| Error::Other(format!("{}:{}: {why}", path.display(), number + 1));
            let line: Line =
                serde_json::from_str(line).map_err(|e| bad(format!("not a baseline line: {e}")))?;
            let fingerprint = fingerprint::parse_hex(&line.fingerprint)
                .ok_or_else(|| bad(format!("`{}` is not a fingerprint", line.fingerprint)))?;
            accepted.insert((line.rule, fingerprint));
        }
        Ok(Baseline { accepted })
    }

    pub fn contains(&self, rule: &str, fingerprint: i64) -> bool {
        self.accepted.contains(&(rule.to_owned(), fingerprint))
    }

    pub fn len(&self) -> usize {
        self.accepted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accepted.is_empty()
    }
}

impl Store {
    /// Writes every finding of `run` to the baseline file at `path`, replacing it; returns
    /// how many were accepted.
    pub async fn accept(&self, run: RunId, path: &Path) -> Result<usize> {
        let findings = self.findings(run, None).await?;
        let write = || -> std::io::Result<()> {
            let temporary = path.with_extension("jsonl.tmp");
            let mut out = std::io::BufWriter::new(std::fs::File::create(&temporary)?);
            for finding in &findings {
                let line = Line {
                    rule: finding.rule.clone(),
                    fingerprint: finding.fingerprint.clone(),
                    key: finding.key.clone(),
                };
                serde_json::to_writer(&mut out, &line)?;
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
        Ok(findings.len())
    }
}
