//! Comparing two runs by fingerprint: per rule, the findings that are new, resolved and
//! persisting. A rule added, removed or changed between the runs (or one that failed in
//! either) is reported as such, not as a flood of new or resolved findings. Memory does not
//! grow with the findings that changed: a diff holds their counts and one bit per finding of
//! each run; their keys are read from the store as a caller consumes them.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use serde::Serialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::prints::Prints;
use super::runs::{RunRule, RunSummary};
use super::{RunId, Store};
use crate::Result;

/// What changed between two runs.
#[derive(Debug, Clone)]
pub struct Diff {
    pub from: RunSummary,
    pub to: RunSummary,
    pub new: u64,
    pub resolved: u64,
    pub persisting: u64,
    pub rules: Vec<RuleDiff>,
}

/// What changed for one rule. Its new and resolved findings are counted here and read with
/// [`Store::diff_keys`].
#[derive(Debug, Clone)]
pub struct RuleDiff {
    pub rule: String,
    pub change: RuleChange,
    /// Findings in the first run.
    pub before: i64,
    /// Findings in the second run.
    pub after: i64,
    pub persisting: u64,
    /// Findings in the second run only.
    pub new: u64,
    /// Findings in the first run only.
    pub resolved: u64,
    /// Per [`Side`], the `first_seq` of each batch holding one of them, in order.
    batches: [Vec<i64>; 2],
    /// Per [`Side`], which findings of its run changed.
    changed: Arc<[Changed; 2]>,
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
    /// Not selected in the first run (a `check --rule/--tag/--source`): not compared.
    NotRunBefore,
    /// Not selected in the second run: not compared.
    NotRunAfter,
    /// It failed in one of the runs: its findings are incomplete.
    Failed,
}

/// Which of a rule's changed findings: those of the second run, or of the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    New,
    Resolved,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::New => 0,
            Side::Resolved => 1,
        }
    }
}

/// A finding's identity in a diff.
#[derive(Debug, Clone, Serialize)]
pub struct DiffKey {
    pub fingerprint: String,
    pub key: serde_json::Value,
}

/// The findings of one run that the other lacks: one bit per sequence number.
#[derive(Debug)]
struct Changed {
    run: RunId,
    bits: Vec<u64>,
}

impl Changed {
    fn new(run: RunId, findings: usize) -> Changed {
        Changed {
            run,
            bits: vec![0; findings.div_ceil(64)],
        }
    }

    fn set(&mut self, seq: i64) {
        // A finding's seq is below the run's count of findings: only a damaged blob says
        // otherwise, and no batch holds such a finding.
        if let Some(word) = usize::try_from(seq)
            .ok()
            .and_then(|seq| self.bits.get_mut(seq / 64).map(|word| (word, seq % 64)))
        {
            *word.0 |= 1 << word.1;
        }
    }

    fn has(&self, seq: i64) -> bool {
        usize::try_from(seq)
            .ok()
            .and_then(|seq| {
                self.bits
                    .get(seq / 64)
                    .map(|word| word >> (seq % 64) & 1 == 1)
            })
            .unwrap_or(false)
    }

    /// Whether one of the findings from `first` up to (not including) `end` changed.
    fn any_in(&self, first: i64, end: Option<i64>) -> bool {
        let limit = i64::try_from(self.bits.len() * 64).unwrap_or(i64::MAX);
        let end = end.map_or(limit, |end| end.min(limit));
        (first.max(0)..end).any(|seq| self.has(seq))
    }
}

/// A batch's row: `[seq, rule, fingerprint, key, detail, message]`.
type Row<Print, Key> = (i64, String, Print, Key, IgnoredAny, IgnoredAny);

impl Store {
    /// Compares run `from` with run `to`.
    pub async fn diff(&self, from: RunId, to: RunId) -> Result<Diff> {
        let (from_run, to_run) = (self.run(from).await?, self.run(to).await?);
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
        let changed = Arc::new(self.changed(from, to).await?);
        let mut rules: BTreeMap<String, RuleDiff> = BTreeMap::new();
        for id in before.keys().chain(after.keys()) {
            let (b, a) = (before.get(id), after.get(id));
            let change = match (b, a) {
                // Absent from a run that selected some rules: it was not selected there.
                (Some(_), None) if to_run.selection.is_some() => RuleChange::NotRunAfter,
                (None, Some(_)) if from_run.selection.is_some() => RuleChange::NotRunBefore,
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
                new: 0,
                resolved: 0,
                batches: [Vec::new(), Vec::new()],
                changed: Arc::clone(&changed),
            });
        }
        for side in [Side::New, Side::Resolved] {
            self.count_changed(&changed[side.index()], side, &mut rules)
                .await?;
        }
        for diff in rules.values_mut().filter(|d| d.change == RuleChange::Same) {
            let after = u64::try_from(diff.after).unwrap_or_default();
            diff.persisting = after.saturating_sub(diff.new);
        }
        let rules: Vec<RuleDiff> = rules.into_values().collect();
        Ok(Diff {
            from: from_run,
            to: to_run,
            new: rules.iter().map(|r| r.new).sum(),
            resolved: rules.iter().map(|r| r.resolved).sum(),
            persisting: rules.iter().map(|r| r.persisting).sum(),
            rules,
        })
    }

    /// The new or resolved findings of `rule`, in the order its run found them. Each batch
    /// holding one is read once, as the stream is consumed: memory holds one batch.
    pub fn diff_keys<'a>(
        &'a self,
        rule: &'a RuleDiff,
        side: Side,
    ) -> impl Stream<Item = Result<DiffKey>> + Send + 'a {
        let changed = &rule.changed[side.index()];
        stream::iter(&rule.batches[side.index()])
            .then(move |&first| async move {
                let text = self.batch(changed.run, first).await?;
                let rows: Vec<Row<i64, &RawValue>> = parse(changed.run, &text)?;
                rows.into_iter()
                    .filter(|row| row.1 == rule.rule && changed.has(row.0))
                    .map(|(_, _, print, key, _, _)| {
                        Ok(DiffKey {
                            fingerprint: crate::fingerprint::Fingerprint::from_stored(print)
                                .to_string(),
                            key: serde_json::from_str(key.get())
                                .map_err(|e| damaged(changed.run, &e))?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .map_ok(|keys| stream::iter(keys.into_iter().map(Ok)))
            .try_flatten()
    }

    /// Which findings of each run the other lacks, per [`Side`]: the two runs' sorted
    /// fingerprints merged slice by slice, as they are stored.
    async fn changed(&self, from: RunId, to: RunId) -> Result<[Changed; 2]> {
        let (mut before, mut after) = (
            Prints::open(self, from).await?,
            Prints::open(self, to).await?,
        );
        let mut new = Changed::new(to, after.findings());
        let mut resolved = Changed::new(from, before.findings());
        let (mut b, mut a) = (before.next().await?, after.next().await?);
        loop {
            match (b, a) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    (b, a) = (before.next().await?, after.next().await?);
                }
                (Some(x), Some(y)) if x.0 < y.0 => {
                    resolved.set(x.1);
                    b = before.next().await?;
                }
                (Some(x), None) => {
                    resolved.set(x.1);
                    b = before.next().await?;
                }
                (_, Some(y)) => {
                    new.set(y.1);
                    a = after.next().await?;
                }
                (None, None) => break,
            }
        }
        Ok([new, resolved])
    }

    /// Counts the changed findings of one side into the comparable rules they belong to,
    /// noting the batches that hold them: each batch holding one is read once.
    async fn count_changed(
        &self,
        changed: &Changed,
        side: Side,
        rules: &mut BTreeMap<String, RuleDiff>,
    ) -> Result<()> {
        let firsts: Vec<i64> = sqlx::query_scalar(
            "SELECT first_seq FROM finding_batches WHERE run_id = $1 ORDER BY first_seq",
        )
        .bind(changed.run)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.failed(&e))?;
        for (i, &first) in firsts.iter().enumerate() {
            if !changed.any_in(first, firsts.get(i + 1).copied()) {
                continue;
            }
            let text = self.batch(changed.run, first).await?;
            let rows: Vec<Row<IgnoredAny, IgnoredAny>> = parse(changed.run, &text)?;
            for (seq, rule, ..) in rows {
                let Some(diff) = rules
                    .get_mut(&rule)
                    .filter(|d| d.change == RuleChange::Same && changed.has(seq))
                else {
                    continue;
                };
                match side {
                    Side::New => diff.new += 1,
                    Side::Resolved => diff.resolved += 1,
                }
                let batches = &mut diff.batches[side.index()];
                if batches.last() != Some(&first) {
                    batches.push(first);
                }
            }
        }
        Ok(())
    }

    /// The stored text of the batch of `run` starting at `first`.
    async fn batch(&self, run: RunId, first: i64) -> Result<String> {
        sqlx::query_scalar("SELECT rows FROM finding_batches WHERE run_id = $1 AND first_seq = $2")
            .bind(run)
            .bind(first)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.failed(&e))
    }
}

/// A batch's rows, read as the caller's row type says.
pub(super) fn parse<'a, T: serde::Deserialize<'a>>(run: RunId, text: &'a str) -> Result<Vec<T>> {
    serde_json::from_str(text).map_err(|e| damaged(run, &e))
}

pub(super) fn damaged(run: RunId, err: &serde_json::Error) -> crate::Error {
    crate::Error::Other(format!("a stored batch of run {run} is damaged: {err}"))
}
