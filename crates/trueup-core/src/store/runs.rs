//! Reading the store: runs, the rules a run ran, its findings; and pruning old runs.

use std::time::Duration;

use futures_util::{Stream, StreamExt, TryStreamExt};
use serde::Serialize;
use sqlx::Row;

use super::{RunId, Store};
use crate::{Error, Result};

/// One run, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub id: RunId,
    pub started_at: String,
    /// `None` for a run that is still going, was interrupted or was killed: such a run is
    /// incomplete.
    pub finished_at: Option<String>,
    pub complete: bool,
    /// `complete`, `running`, `interrupted` (stopped by a signal; what finished is recorded)
    /// or `abandoned` (it died without a word and is past its deadline).
    pub status: RunStatus,
    /// What the run selected (`--rule … --tag …`); `None`: every rule.
    pub selection: Option<String>,
    pub tool_version: String,
    pub rules_hash: String,
    pub rules: i64,
    pub findings: i64,
    pub errors: i64,
}

/// How one rule did in a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunRule {
    pub rule: String,
    pub rule_hash: String,
    pub severity: String,
    pub findings: i64,
    pub duration_ms: i64,
    pub error: Option<String>,
    /// Who to ask about the rule and its runbook, as the rule said when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    /// The rule's detector kind (`None` in stores written before it was recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A recorded finding.
#[derive(Debug, Clone, Serialize)]
pub struct StoredFinding {
    pub rule: String,
    pub fingerprint: String,
    pub key: serde_json::Value,
    pub detail: serde_json::Value,
    pub message: String,
}

/// How a run ended, or that it has not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Complete,
    Running,
    Interrupted,
    Abandoned,
}

/// The columns a run is read from; a store of schema 1 (read as it is) has no status.
fn run_columns(schema: i64) -> &'static str {
    match schema {
        ..=1 => {
            "id, started_at, finished_at, tool_version, rules_hash, rules, findings, errors, \
             NULL AS status, NULL AS deadline_at, NULL AS selection"
        }
        _ => {
            "id, started_at, finished_at, tool_version, rules_hash, rules, findings, errors, \
             status, deadline_at, selection"
        }
    }
}

fn run_from(row: &sqlx::any::AnyRow) -> RunSummary {
    let finished: Option<i64> = row.get("finished_at");
    let status: Option<String> = row.try_get("status").ok().flatten();
    let deadline: Option<i64> = row.try_get("deadline_at").ok().flatten();
    let status = match (finished, status.as_deref(), deadline) {
        (Some(_), _, _) => RunStatus::Complete,
        (None, Some("interrupted"), _) => RunStatus::Interrupted,
        (None, _, Some(deadline)) if deadline < crate::time::now_millis() => RunStatus::Abandoned,
        _ => RunStatus::Running,
    };
    RunSummary {
        id: row.get("id"),
        started_at: crate::time::iso8601(row.get("started_at")),
        finished_at: finished.map(crate::time::iso8601),
        complete: finished.is_some(),
        status,
        selection: row.try_get("selection").ok().flatten(),
        tool_version: row.get("tool_version"),
        rules_hash: row.get("rules_hash"),
        rules: row.get("rules"),
        findings: row.get("findings"),
        errors: row.get("errors"),
    }
}

impl Store {
    /// The newest `limit` runs, newest first.
    pub async fn runs(&self, limit: i64) -> Result<Vec<RunSummary>> {
        let sql = format!(
            "SELECT {} FROM runs ORDER BY id DESC LIMIT $1",
            run_columns(self.schema)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(rows.iter().map(run_from).collect())
    }

    /// The newest complete run before `run` that selected what `run` did (both every rule,
    /// or the same `--rule/--tag/--source`): what `diff` compares `run` with by default.
    pub async fn previous_like(&self, run: RunId) -> Result<RunId> {
        let selection = self.run(run).await?.selection;
        // A store of schema 1 recorded no selection: the run before is the one.
        let sql = match self.schema {
            ..=1 => {
                "SELECT id FROM runs WHERE finished_at IS NOT NULL AND id < $1 \
                 AND $2 IS NULL ORDER BY id DESC LIMIT 1"
            }
            _ => {
                "SELECT id FROM runs WHERE finished_at IS NOT NULL AND id < $1 \
                 AND (selection = $2 OR (selection IS NULL AND $2 IS NULL)) ORDER BY id DESC LIMIT 1"
            }
        };
        let previous: Option<RunId> = sqlx::query_scalar(sql)
            .bind(run)
            .bind(selection.clone())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.failed(&e))?;
        previous.ok_or_else(|| {
            Error::UnknownRun(match selection {
                Some(selection) => format!(
                    "no complete run before run {run} selected `{selection}` as it did: \
                     `trueup diff A B` compares any two (`trueup runs` lists them)"
                ),
                None => format!(
                    "no complete run of every rule before run {run}: `trueup diff A B` \
                     compares any two (`trueup runs` lists them)"
                ),
            })
        })
    }

    /// The run a selector names: an id, `last` (the newest complete run) or `last~N` (the
    /// N-th complete run before it).
    pub async fn resolve(&self, selector: &str) -> Result<RunId> {
        let back = match selector {
            "last" => Some(0),
            _ => selector
                .strip_prefix("last~")
                .and_then(|n| n.parse::<i64>().ok()),
        };
        let found: Option<RunId> = match back {
            Some(back) => sqlx::query_scalar("SELECT id FROM runs WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1 OFFSET $1")
                .bind(back)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.failed(&e))?,
            None => {
                let id: RunId = selector.parse().map_err(|_| {
                    Error::UnknownRun(format!("`{selector}` is not a run: write a run id, `last` or `last~N`"))
                })?;
                sqlx::query_scalar("SELECT id FROM runs WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| self.failed(&e))?
            }
        };
        found.ok_or_else(|| match back {
            Some(_) => Error::UnknownRun(format!(
                "there is no complete run `{selector}` yet: `trueup runs` lists the runs"
            )),
            None => Error::UnknownRun(format!(
                "there is no run {selector}: `trueup runs` lists the runs"
            )),
        })
    }

    pub async fn run(&self, id: RunId) -> Result<RunSummary> {
        let sql = format!(
            "SELECT {} FROM runs WHERE id = $1",
            run_columns(self.schema)
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.failed(&e))?
            .ok_or_else(|| Error::UnknownRun(format!("there is no run {id}")))?;
        Ok(run_from(&row))
    }

    /// The rules a run ran, by id.
    pub async fn run_rules(&self, id: RunId) -> Result<Vec<RunRule>> {
        let extra = match self.schema {
            ..=1 => "NULL AS owner, NULL AS runbook, NULL AS kind",
            _ => "owner, runbook, kind",
        };
        let sql = format!(
            "SELECT rule_id, rule_hash, severity, findings, duration_ms, error, {extra} \
             FROM run_rules WHERE run_id = $1 ORDER BY rule_id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(rows
            .iter()
            .map(|row| RunRule {
                rule: row.get("rule_id"),
                rule_hash: row.get("rule_hash"),
                severity: row.get("severity"),
                findings: row.get("findings"),
                duration_ms: row.get("duration_ms"),
                error: row.get("error"),
                owner: row.try_get("owner").ok().flatten(),
                runbook: row.try_get("runbook").ok().flatten(),
                kind: row.try_get("kind").ok().flatten(),
            })
            .collect())
    }

    /// A run's findings, by rule then fingerprint; at most `limit` per rule when given.
    /// Collects [`Store::stream_findings`]: for small runs and tests.
    pub async fn findings(
        &self,
        id: RunId,
        limit_per_rule: Option<i64>,
    ) -> Result<Vec<StoredFinding>> {
        self.stream_findings(id, limit_per_rule).try_collect().await
    }

    /// A run's findings as a stream, by rule then fingerprint; at most `limit` per rule when
    /// given. Rows are read as they are consumed: memory does not grow with the findings.
    pub fn stream_findings(
        &self,
        id: RunId,
        limit_per_rule: Option<i64>,
    ) -> impl Stream<Item = Result<StoredFinding>> + Send + '_ {
        let sql = match limit_per_rule {
            // Numbering every finding only to keep all of them costs as much as the sort.
            None => {
                "SELECT rule_id, fingerprint, key, detail, message FROM findings WHERE run_id = $1 \
                 AND $2 IS NULL ORDER BY rule_id, fingerprint"
            }
            Some(_) => {
                "SELECT rule_id, fingerprint, key, detail, message FROM ( \
                   SELECT *, ROW_NUMBER() OVER (PARTITION BY rule_id ORDER BY fingerprint) AS n FROM findings WHERE run_id = $1) AS numbered \
                 WHERE n <= $2 ORDER BY rule_id, fingerprint"
            }
        };
        sqlx::query(sql)
            .bind(id)
            .bind(limit_per_rule)
            .fetch(&self.pool)
            .map(move |row| {
                let row = row.map_err(|e| self.failed(&e))?;
                Ok(stored_finding(&row))
            })
    }

    /// One rule's findings of a run as a stream, by fingerprint.
    pub fn stream_rule_findings<'s>(
        &'s self,
        id: RunId,
        rule: &'s str,
    ) -> impl Stream<Item = Result<StoredFinding>> + Send + 's {
        sqlx::query(
            "SELECT rule_id, fingerprint, key, detail, message FROM findings \
             WHERE run_id = $1 AND rule_id = $2 ORDER BY fingerprint",
        )
        .bind(id)
        .bind(rule)
        .fetch(&self.pool)
        .map(move |row| {
            let row = row.map_err(|e| self.failed(&e))?;
            Ok(stored_finding(&row))
        })
    }

    /// Deletes runs beyond the newest `keep` and runs started more than `older_than` ago,
    /// with their findings; returns how many runs went.
    pub async fn gc(&self, keep: Option<u32>, older_than: Option<Duration>) -> Result<u64> {
        let cutoff = older_than.map(|age| {
            crate::time::now_millis() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX)
        });
        let running_cutoff = crate::time::now_millis() - 86_400_000;
        let mut transaction = self.pool.begin().await.map_err(|e| self.failed(&e))?;
        // A run without an end that started in the last day may still be going: never delete it.
        let doomed = "SELECT id FROM runs WHERE (($1 IS NOT NULL AND id NOT IN (SELECT id FROM runs ORDER BY id DESC LIMIT $1)) \
                      OR ($2 IS NOT NULL AND started_at < $2)) AND (finished_at IS NOT NULL OR started_at < $3)";
        let mut deleted = 0;
        for table in ["run_fingerprints", "finding_batches", "run_rules"] {
            let sql = format!("DELETE FROM {table} WHERE run_id IN ({doomed})");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(keep.map(i64::from))
                .bind(cutoff)
                .bind(running_cutoff)
                .execute(&mut *transaction)
                .await
                .map_err(|e| self.failed(&e))?;
        }
        let sql = format!("DELETE FROM runs WHERE id IN ({doomed})");
        deleted += sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(keep.map(i64::from))
            .bind(cutoff)
            .bind(running_cutoff)
            .execute(&mut *transaction)
            .await
            .map_err(|e| self.failed(&e))?
            .rows_affected();
        transaction.commit().await.map_err(|e| self.failed(&e))?;
        if deleted > 0 && self.is_sqlite() {
            // Gives the freed pages back: the file shrinks (a no-op on a store made before
            // trueup set `auto_vacuum`).
            sqlx::query("PRAGMA incremental_vacuum")
                .execute(&self.pool)
                .await
                .map_err(|e| self.failed(&e))?;
        }
        Ok(deleted)
    }
}

/// `id=42` or `order_id=7, line=2`, a stored key object as people read it.
pub fn key_text(key: &serde_json::Value) -> String {
    match key.as_object() {
        Some(columns) => columns
            .iter()
            .map(|(name, value)| match value {
                serde_json::Value::String(text) => format!("{name}={text}"),
                serde_json::Value::Null => format!("{name}=NULL"),
                other => format!("{name}={other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        None => key.to_string(),
    }
}

/// A finding as a `findings` row holds it.
fn stored_finding(row: &sqlx::any::AnyRow) -> StoredFinding {
    StoredFinding {
        rule: row.get("rule_id"),
        fingerprint: crate::fingerprint::Fingerprint::from_stored(row.get("fingerprint"))
            .to_string(),
        key: serde_json::from_str(row.get("key")).unwrap_or_default(),
        detail: serde_json::from_str(row.get("detail")).unwrap_or_default(),
        message: row.get("message"),
    }
}
