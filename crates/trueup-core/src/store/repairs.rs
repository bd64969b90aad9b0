//! Repairs as the state store records them, beside the detection runs: when each `apply`
//! and `undo` ran, on which source, from which plan and run, and how it ended. The rows
//! themselves are in the repaired database's journal.

use serde::Serialize;
use sqlx::Row;

use super::Store;
use crate::Result;

/// One `apply` or `undo` of one source.
#[derive(Debug, Clone, Serialize)]
pub struct RepairRecord {
    pub source: String,
    /// The repair's id in the source's journal.
    pub journal_id: i64,
    pub kind: String,
    pub undoes: Option<i64>,
    pub plan_hash: String,
    /// The detection run the plan came from.
    pub run_id: Option<i64>,
    pub rules: Vec<String>,
    /// Unix milliseconds.
    pub started_at: i64,
    pub finished_at: i64,
    pub status: String,
    pub rows: i64,
}

impl Store {
    /// Records a repair that ended.
    pub async fn record_repair(&self, repair: &RepairRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO repairs (source, journal_id, kind, undoes, plan_hash, run_id, rules, \
             started_at, finished_at, status, rows_changed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&repair.source)
        .bind(repair.journal_id)
        .bind(&repair.kind)
        .bind(repair.undoes)
        .bind(&repair.plan_hash)
        .bind(repair.run_id)
        .bind(serde_json::to_string(&repair.rules).unwrap_or_default())
        .bind(repair.started_at)
        .bind(repair.finished_at)
        .bind(&repair.status)
        .bind(repair.rows)
        .execute(&self.pool)
        .await
        .map_err(|e| self.failed(&e))?;
        Ok(())
    }

    /// The repairs recorded, newest first (none in a store older than repairs).
    pub async fn repairs(&self, limit: i64) -> Result<Vec<RepairRecord>> {
        if self.schema < 3 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT source, journal_id, kind, undoes, plan_hash, run_id, rules, started_at, \
             finished_at, status, rows_changed FROM repairs ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.failed(&e))?;
        Ok(rows
            .iter()
            .map(|row| RepairRecord {
                source: row.get("source"),
                journal_id: row.get("journal_id"),
                kind: row.get("kind"),
                undoes: row.get("undoes"),
                plan_hash: row.get("plan_hash"),
                run_id: row.get("run_id"),
                rules: serde_json::from_str(row.get("rules")).unwrap_or_default(),
                started_at: row.get("started_at"),
                finished_at: row.get("finished_at"),
                status: row.get("status"),
                rows: row.get("rows_changed"),
            })
            .collect())
    }
}
