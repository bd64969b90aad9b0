//! A rule's recent history, counts only: how many findings it had in each of its last
//! complete runs, for alerts that weigh a count against the rule's recent past
//! (`alert-on = "jump"`) and for the run new findings are counted against.

use std::collections::HashMap;

use sqlx::Row;

use super::{RunId, Store};
use crate::Result;

/// How many complete runs, newest first, a history query looks through: the bound on what
/// it reads whatever the store holds. A rule that runs in few of them (a schedule among
/// many) has a shorter history.
pub const SCANNED_RUNS: i64 = 200;

/// One recorded run of a rule: the run and the rule's findings in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRun {
    pub run: RunId,
    pub findings: u64,
}

impl Store {
    /// For each rule of `rules` (its id and definition hash), the newest `limit` runs before
    /// `before` (every run when `None`), newest first, that completed and in which the rule
    /// ran to the end (no error) with that same definition: a rule whose definition changed
    /// starts a new history. Reads at most the newest [`SCANNED_RUNS`] complete runs; holds
    /// at most `rules × limit` counts.
    pub async fn rule_history(
        &self,
        rules: &[(&str, &str)],
        before: Option<RunId>,
        limit: u32,
    ) -> Result<HashMap<String, Vec<RuleRun>>> {
        let mut history: HashMap<String, Vec<RuleRun>> = HashMap::new();
        if rules.is_empty() || limit == 0 {
            return Ok(history);
        }
        let wanted: HashMap<&str, &str> = rules.iter().copied().collect();
        // Numbered per rule and definition: the rows come back bounded by the scanned runs'
        // rules, and those of another definition are dropped below.
        let rows = sqlx::query(
            "SELECT rule_id, rule_hash, run_id, findings FROM ( \
               SELECT rr.rule_id, rr.rule_hash, rr.run_id, rr.findings, \
                      ROW_NUMBER() OVER (PARTITION BY rr.rule_id, rr.rule_hash ORDER BY rr.run_id DESC) AS n \
               FROM run_rules AS rr \
               WHERE rr.error IS NULL AND rr.run_id IN ( \
                 SELECT id FROM runs WHERE finished_at IS NOT NULL AND ($1 IS NULL OR id < $1) \
                 ORDER BY id DESC LIMIT $2)) AS numbered \
             WHERE n <= $3 ORDER BY rule_id, run_id DESC",
        )
        .bind(before)
        .bind(SCANNED_RUNS)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.failed(&e))?;
        for row in &rows {
            let rule: String = row.get("rule_id");
            let hash: String = row.get("rule_hash");
            if wanted.get(rule.as_str()) != Some(&hash.as_str()) {
                continue;
            }
            let findings: i64 = row.get("findings");
            history.entry(rule).or_default().push(RuleRun {
                run: row.get("run_id"),
                findings: u64::try_from(findings).unwrap_or_default(),
            });
        }
        Ok(history)
    }
}
