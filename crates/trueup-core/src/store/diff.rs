//! Comparing two runs by fingerprint: per rule, the findings that are new, resolved and
//! persisting. A rule added, removed or changed between the runs (or one that failed in
//! either) is reported as such, not as a flood of new or resolved findings.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
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

    /// Merges the two runs' findings, both read in (rule, fingerprint) order from the index,
    /// into the rules whose findings are comparable.
    async fn compare_findings(
        &self,
        from: RunId,
        to: RunId,
        rules: &mut BTreeMap<String, RuleDiff>,
    ) -> Result<()> {
        let sql = "SELECT rule_id, fingerprint, key FROM findings WHERE run_id = ?1 ORDER BY rule_id, fingerprint";
        let mut left_conn = self.pool.acquire().await.map_err(|e| self.failed(&e))?;
        let mut right_conn = self.pool.acquire().await.map_err(|e| self.failed(&e))?;
        let mut left = sqlx::query(sql).bind(from).fetch(&mut *left_conn);
        let mut right = sqlx::query(sql).bind(to).fetch(&mut *right_conn);
        let read = |row: sqlx::sqlite::SqliteRow| -> (String, i64, String) {
            (row.get("rule_id"), row.get("fingerprint"), row.get("key"))
        };
        let mut l = left
            .try_next()
            .await
            .map_err(|e| self.failed(&e))?
            .map(read);
        let mut r = right
            .try_next()
            .await
            .map_err(|e| self.failed(&e))?
            .map(read);
        let key = |(fingerprint, key): (i64, String)| DiffKey {
            fingerprint: crate::fingerprint::hex(fingerprint),
            key: serde_json::from_str(&key).unwrap_or_default(),
        };
        loop {
            let order = match (&l, &r) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((lr, lf, _)), Some((rr, rf, _))) => (lr, lf).cmp(&(rr, rf)),
            };
            match order {
                std::cmp::Ordering::Less => {
                    let (rule, fingerprint, k) = l.take().expect("left row");
                    if let Some(diff) = rules
                        .get_mut(&rule)
                        .filter(|d| d.change == RuleChange::Same)
                    {
                        diff.resolved.push(key((fingerprint, k)));
                    }
                    l = left
                        .try_next()
                        .await
                        .map_err(|e| self.failed(&e))?
                        .map(read);
                }
                std::cmp::Ordering::Greater => {
                    let (rule, fingerprint, k) = r.take().expect("right row");
                    if let Some(diff) = rules
                        .get_mut(&rule)
                        .filter(|d| d.change == RuleChange::Same)
                    {
                        diff.new.push(key((fingerprint, k)));
                    }
                    r = right
                        .try_next()
                        .await
                        .map_err(|e| self.failed(&e))?
                        .map(read);
                }
                std::cmp::Ordering::Equal => {
                    let (rule, _, _) = l.take().expect("left row");
                    if let Some(diff) = rules
                        .get_mut(&rule)
                        .filter(|d| d.change == RuleChange::Same)
                    {
                        diff.persisting += 1;
                    }
                    l = left
                        .try_next()
                        .await
                        .map_err(|e| self.failed(&e))?
                        .map(read);
                    r = right
                        .try_next()
                        .await
                        .map_err(|e| self.failed(&e))?
                        .map(read);
                }
            }
        }
        Ok(())
    }
}
