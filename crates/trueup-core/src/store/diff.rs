//! Comparing two runs by fingerprint: per rule, the findings that are new, resolved and
//! persisting. A rule added, removed or changed between the runs (or one that failed in
//! either) is reported as such, not as a flood of new or resolved findings.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use super::runs::{RunRule, RunSummary};
use super::{RunId, Store};
use crate::Result;

/// What changed between two runs.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub from: RunSummary,
    pub to: RunSummary,
    pub new: u64,
    pub resolved: u64,
    pub persisting: u64,
    pub rules: Vec<RuleDiff>,
}

/// What changed for one rule.
#[derive(Debug, Clone, Serialize)]
pub struct RuleDiff {
    pub rule: String,
    pub change: RuleChange,
    /// Findings in the first run.
    pub before: i64,
    /// Findings in the second run.
    pub after: i64,
    pub persisting: u64,
    pub new: Vec<DiffKey>,
    pub resolved: Vec<DiffKey>,
}

/// How a rule itself changed between the runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleChange {
    /// The same definition in both runs: its findings are compared.
    Same,
    /// Only in the second run.
    Added,
    /// Only in the first run.
    Removed,
    /// Its definition changed: its findings are not comparable.
    Changed,
    /// It failed in one of the runs: its findings are incomplete.
    Failed,
}

/// A finding's identity in a diff.
#[derive(Debug, Clone, Serialize)]
pub struct DiffKey {
    pub fingerprint: String,
    pub key: serde_json::Value,
}

impl Store {
    /// Compares run `from` with run `to`.
    pub async fn diff(&self, from: RunId, to: RunId) -> Result<Diff> {
        let before: BTreeMap<String, RunRule> = self
            .run_rules(from)
            .await?
            .into_iter()
            .map(|r| (r.rule.clone(), r))
            .collect();
        let after: BTreeMap<String, RunRule> = self
            .run_rules(to)
            .await?
            .into_iter()
            .map(|r| (r.rule.clone(), r))
            .collect();
        let mut rules: BTreeMap<String, RuleDiff> = BTreeMap::new();
        for id in before.keys().chain(after.keys()) {
            let (b, a) = (before.get(id), after.get(id));
            let change = match (b, a) {
                (Some(_), None) => RuleChange::Removed,
                (None, Some(_)) => RuleChange::Added,
                (Some(b), Some(a)) if b.error.is_some() || a.error.is_some() => RuleChange::Failed,
                (Some(b), Some(a)) if b.rule_hash != a.rule_hash => RuleChange::Changed,
                _ => RuleChange::Same,
            };
            rules.entry(id.clone()).or_insert(RuleDiff {
                rule: id.clone(),
                change,
                before: b.map_or(0, |r| r.findings),
                after: a.map_or(0, |r| r.findings),
                persisting: 0,
                new: Vec::new(),
                resolved: Vec::new(),
            });
        }
        self.compare_findings(from, to, &mut rules).await?;
        let rules: Vec<RuleDiff> = rules.into_values().collect();
        Ok(Diff {
            from: self.run(from).await?,
            to: self.run(to).await?,
            new: rules.iter().map(|r| r.new.len() as u64).sum(),
            resolved: rules.iter().map(|r| r.resolved.len() as u64).sum(),
            persisting: rules.iter().map(|r| r.persisting).sum(),
            rules,
        })
    }

    /// Fills in the findings of the rules whose findings are comparable: merges the two
    /// runs' sorted fingerprints in memory, then reads the keys of the new and resolved
    /// findings only, from the batches that hold them.
    async fn compare_findings(
        &self,
        from: RunId,
        to: RunId,
        rules: &mut BTreeMap<String, RuleDiff>,
    ) -> Result<()> {
        let (before, after) = (self.prints(from).await?, self.prints(to).await?);
        let (mut resolved, mut new) = (Vec::new(), Vec::new());
        let (mut i, mut j) = (0, 0);
        while i < before.len() || j < after.len() {
            match (before.get(i), after.get(j)) {
                (Some(b), Some(a)) if b.0 == a.0 => (i, j) = (i + 1, j + 1),
                (Some(b), Some(a)) if b.0 < a.0 => (resolved.push(b.1), i += 1).1,
                (Some(b), None) => (resolved.push(b.1), i += 1).1,
                (_, Some(a)) => (new.push(a.1), j += 1).1,
                (None, None) => break,
            }
        }
        for (run, seqs, is_new) in [(to, new, true), (from, resolved, false)] {
            for (rule, key) in self.keys_of(run, seqs).await? {
                let Some(diff) = rules
                    .get_mut(&rule)
                    .filter(|d| d.change == RuleChange::Same)
                else {
                    continue;
                };
                if is_new {
                    diff.new.push(key)
                } else {
                    diff.resolved.push(key)
                }
            }
        }
        for diff in rules.values_mut().filter(|d| d.change == RuleChange::Same) {
            diff.new.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
            diff.resolved
                .sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
            let after = u64::try_from(diff.after).unwrap_or_default();
            diff.persisting = after.saturating_sub(diff.new.len() as u64);
        }
        Ok(())
    }

    /// A complete run's (fingerprint, seq) pairs, sorted.
    async fn prints(&self, run: RunId) -> Result<Vec<(i64, i64)>> {
        let blob: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT prints FROM run_fingerprints WHERE run_id = $1")
                .bind(run)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.failed(&e))?;
        let blob = blob.ok_or_else(|| {
            crate::Error::UnknownRun(format!(
                "run {run} is incomplete (killed or still running): diff compares complete runs"
            ))
        })?;
        let word = |bytes: &[u8]| i64::from_le_bytes(bytes.try_into().unwrap_or_default());
        Ok(blob
            .chunks_exact(16)
            .map(|pair| (word(&pair[..8]), word(&pair[8..])))
            .collect())
    }

    /// The rule and key of each finding of `run` numbered in `seqs`, reading each batch that
    /// holds one of them once.
    async fn keys_of(&self, run: RunId, mut seqs: Vec<i64>) -> Result<Vec<(String, DiffKey)>> {
        seqs.sort_unstable();
        let mut keys = Vec::with_capacity(seqs.len());
        let mut next = 0;
        while next < seqs.len() {
            let row = sqlx::query(
                "SELECT first_seq, rows FROM finding_batches WHERE run_id = $1 AND first_seq <= $2 ORDER BY first_seq DESC LIMIT 1",
            )
            .bind(run)
            .bind(seqs[next])
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.failed(&e))?;
            let rows: Vec<(i64, String, i64, serde_json::Value)> = {
                let text: String = row.get("rows");
                let parsed: Vec<(
                    i64,
                    String,
                    i64,
                    serde_json::Value,
                    serde_json::Value,
                    String,
                )> = serde_json::from_str(&text).map_err(|e| {
                    crate::Error::Other(format!("a stored batch of run {run} is damaged: {e}"))
                })?;
                parsed
                    .into_iter()
                    .map(|(seq, rule, print, key, _, _)| (seq, rule, print, key))
                    .collect()
            };
            let first: i64 = row.get("first_seq");
            let last = rows.last().map_or(i64::MIN, |r| r.0);
            while next < seqs.len() && seqs[next] <= last {
                // A batch holds consecutive findings: the seq says where.
                let at = usize::try_from(seqs[next] - first)
                    .ok()
                    .and_then(|i| rows.get(i))
                    .filter(|r| r.0 == seqs[next]);
                if let Some((_, rule, print, key)) = at {
                    keys.push((
                        rule.clone(),
                        DiffKey {
                            fingerprint: crate::fingerprint::hex(*print),
                            key: key.clone(),
                        },
                    ));
                }
                next += 1;
            }
            if rows.is_empty() {
                next += 1;
            }
        }
        Ok(keys)
    }
}
