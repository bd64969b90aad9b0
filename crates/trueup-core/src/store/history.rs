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

#[cfg(test)]
mod tests {
    use super::*;

    /// A store whose runs are written row by row: runs 1 to 5 complete, run 6 still going.
    /// Rule `a` had definition `h1` in runs 1 to 3 (failing in run 2) and `h2` from run 4;
    /// rule `b` had `h` throughout, with `10 × run` findings.
    async fn planted(dir: &std::path::Path) -> Store {
        let store = Store::open(&dir.join("state.db")).await.unwrap();
        for run in 1..=6_i64 {
            let finished = (run < 6).then_some(run * 1000);
            sqlx::query(
                "INSERT INTO runs (id, started_at, finished_at, tool_version, rules_hash) \
                 VALUES ($1, $2, $3, 'test', 'x')",
            )
            .bind(run)
            .bind(run * 1000 - 500)
            .bind(finished)
            .execute(&store.pool)
            .await
            .unwrap();
            let a_hash = if run <= 3 { "h1" } else { "h2" };
            let a_error = (run == 2).then_some("timed out");
            for (rule, hash, findings, error) in
                [("a", a_hash, run, a_error), ("b", "h", 10 * run, None)]
            {
                sqlx::query(
                    "INSERT INTO run_rules (run_id, rule_id, rule_hash, severity, findings, \
                     duration_ms, error) VALUES ($1, $2, $3, 'high', $4, 1, $5)",
                )
                .bind(run)
                .bind(rule)
                .bind(hash)
                .bind(findings)
                .bind(error)
                .execute(&store.pool)
                .await
                .unwrap();
            }
        }
        store
    }

    fn runs(history: &HashMap<String, Vec<RuleRun>>, rule: &str) -> Vec<(RunId, u64)> {
        history
            .get(rule)
            .map(|runs| runs.iter().map(|r| (r.run, r.findings)).collect())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn history_keeps_complete_clean_runs_of_the_same_definition_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = planted(dir.path()).await;
        let rules = [("a", "h2"), ("b", "h")];
        // Run 6 is not complete: it is no history.
        let history = store.rule_history(&rules, None, 3).await.unwrap();
        assert_eq!(runs(&history, "a"), [(5, 5), (4, 4)]);
        assert_eq!(runs(&history, "b"), [(5, 50), (4, 40), (3, 30)]);
        // Before run 5; and `a`'s older definition, whose run 2 failed.
        let history = store
            .rule_history(&[("a", "h1"), ("b", "h")], Some(5), 10)
            .await
            .unwrap();
        assert_eq!(runs(&history, "a"), [(3, 3), (1, 1)]);
        assert_eq!(runs(&history, "b"), [(4, 40), (3, 30), (2, 20), (1, 10)]);
        // A rule the store never ran has none.
        let history = store.rule_history(&[("c", "h")], None, 3).await.unwrap();
        assert!(history.is_empty());
        store.close().await;
    }
}
