//! Recording a run while it happens: findings are batched and written by a task of their
//! own, so `check` never waits on the store for long and memory stays bounded.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{RunId, Store};
use crate::engine::RuleOutcome;
use crate::finding::{Finding, RuleSpec};
use crate::fingerprint::Fnv;
use crate::{Error, Result};

/// Findings per batch handed to the writer, and batches it may lag behind.
const BATCH: usize = 2000;
const BATCHES_IN_FLIGHT: usize = 4;
/// Rows per INSERT statement (6 parameters each, far below SQLite's limit).
const ROWS_PER_INSERT: usize = 200;

/// One finding as stored.
struct Row {
    rule: Arc<RuleSpec>,
    fingerprint: i64,
    key: String,
    detail: String,
    message: String,
}

/// Writes one run's findings and outcome into the store.
pub struct Recorder {
    store: Store,
    run: RunId,
    batch: Vec<Row>,
    batches: Option<mpsc::Sender<Vec<Row>>>,
    writer: JoinHandle<Result<()>>,
}

impl Store {
    /// Starts recording a run of `rules`. Until [`Recorder::finish`], the run shows as
    /// incomplete: a `check` that is killed stays that way.
    pub async fn begin_run(&self, rules: &[Arc<RuleSpec>]) -> Result<Recorder> {
        let mut ids: Vec<String> = rules
            .iter()
            .map(|r| format!("{}={}", r.id, r.definition_hash))
            .collect();
        ids.sort();
        let rules_hash = format!(
            "{:016x}",
            ids.iter()
                .fold(Fnv::default(), |hash, id| hash.field(id))
                .finish()
        );
        let run: RunId = sqlx::query_scalar(
            "INSERT INTO runs (started_at, tool_version, rules_hash, rules) VALUES (?1, ?2, ?3, ?4) RETURNING id",
        )
        .bind(crate::time::now_millis())
        .bind(env!("CARGO_PKG_VERSION"))
        .bind(rules_hash)
        .bind(i64::try_from(rules.len()).unwrap_or(i64::MAX))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.failed(&e))?;
        let (batches, mut received) = mpsc::channel::<Vec<Row>>(BATCHES_IN_FLIGHT);
        let store = self.clone();
        let writer = tokio::spawn(async move {
            while let Some(batch) = received.recv().await {
                store.insert(run, &batch).await?;
            }
            Ok(())
        });
        Ok(Recorder {
            store: self.clone(),
            run,
            batch: Vec::with_capacity(BATCH),
            batches: Some(batches),
            writer,
        })
    }

    async fn insert(&self, run: RunId, rows: &[Row]) -> Result<()> {
        let mut transaction = self.pool.begin().await.map_err(|e| self.failed(&e))?;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let values = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "INSERT INTO findings (run_id, rule_id, fingerprint, key, detail, message) VALUES {values}"
            );
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
            for row in chunk {
                insert = insert
                    .bind(run)
                    .bind(row.rule.id.as_str())
                    .bind(row.fingerprint)
                    .bind(row.key.as_str())
                    .bind(row.detail.as_str())
                    .bind(row.message.as_str());
            }
            insert
                .execute(&mut *transaction)
                .await
                .map_err(|e| self.failed(&e))?;
        }
        transaction.commit().await.map_err(|e| self.failed(&e))
    }
}

impl Recorder {
    pub fn run_id(&self) -> RunId {
        self.run
    }

    /// Queues a finding, whose fingerprint the caller computed, for writing.
    pub async fn add(&mut self, finding: &Finding, fingerprint: i64) -> Result<()> {
        let json = |columns: &mut dyn Iterator<Item = (&str, &crate::value::Value)>| {
            let object: serde_json::Map<String, serde_json::Value> = columns
                .map(|(name, value)| {
                    (
                        name.to_owned(),
                        serde_json::to_value(value).unwrap_or_default(),
                    )
                })
                .collect();
            serde_json::Value::Object(object).to_string()
        };
        self.batch.push(Row {
            rule: finding.rule.clone(),
            fingerprint,
            key: json(&mut finding.key()),
            detail: json(&mut finding.detail()),
            message: finding.message(),
        });
        if self.batch.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        if let Some(batches) = &self.batches
            && batches.send(batch).await.is_err()
        {
            // The writer stopped: its error is reported by `finish`.
            self.batches = None;
        }
        Ok(())
    }

    /// Writes what is left, the rules' outcomes, and marks the run complete.
    pub async fn finish(mut self, outcomes: &[RuleOutcome]) -> Result<RunId> {
        self.flush().await?;
        self.batches = None;
        self.writer
            .await
            .map_err(|e| Error::Other(format!("the recorder stopped: {e}")))??;
        let store = &self.store;
        let mut transaction = store.pool.begin().await.map_err(|e| store.failed(&e))?;
        for outcome in outcomes {
            sqlx::query(
                "INSERT INTO run_rules (run_id, rule_id, rule_hash, severity, findings, duration_ms, error) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .bind(self.run)
            .bind(outcome.rule.id.as_str())
            .bind(outcome.rule.definition_hash.as_str())
            .bind(outcome.rule.severity.as_str())
            .bind(i64::try_from(outcome.findings).unwrap_or(i64::MAX))
            .bind(i64::try_from(outcome.elapsed.as_millis()).unwrap_or(i64::MAX))
            .bind(outcome.error.as_deref())
            .execute(&mut *transaction)
            .await
            .map_err(|e| store.failed(&e))?;
        }
        let findings: u64 = outcomes.iter().map(|o| o.findings).sum();
        let errors = outcomes.iter().filter(|o| o.error.is_some()).count();
        sqlx::query("UPDATE runs SET finished_at = ?1, findings = ?2, errors = ?3 WHERE id = ?4")
            .bind(crate::time::now_millis())
            .bind(i64::try_from(findings).unwrap_or(i64::MAX))
            .bind(i64::try_from(errors).unwrap_or(i64::MAX))
            .bind(self.run)
            .execute(&mut *transaction)
            .await
            .map_err(|e| store.failed(&e))?;
        transaction.commit().await.map_err(|e| store.failed(&e))?;
        Ok(self.run)
    }
}
