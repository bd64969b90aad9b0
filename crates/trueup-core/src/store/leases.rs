//! Leases on scheduled audits: a replica of `trueup serve` claims one occurrence of a
//! schedule (its due time) in the shared store before it runs it, renews the claim while the
//! run goes and releases it at the end. One atomic statement claims: the first replica wins,
//! an occurrence is never claimed twice, and a claim whose holder stopped renewing expires
//! so that another replica takes over. Times are Unix milliseconds from the callers' clocks.

use serde::Serialize;
use sqlx::Row;

use super::{RunId, Store};
use crate::Result;

/// What claiming an occurrence gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the occurrence until it renews or releases it.
    Taken,
    /// Another replica claimed this occurrence (or a later one) first.
    Elsewhere,
    /// An earlier occurrence of the schedule still runs under a live lease.
    Busy,
}

/// A scheduled run as recorded (`/runs`).
#[derive(Debug, Clone, Serialize)]
pub struct ScheduledRun {
    pub id: i64,
    pub schedule: String,
    /// When it was due and when it started, ISO-8601 UTC; `drift_ms` is the difference.
    pub due_at: String,
    pub started_at: String,
    pub drift_ms: i64,
    pub finished_at: Option<String>,
    pub replica: String,
    /// The detection run it recorded.
    pub run: Option<RunId>,
    /// `running`, `complete`, `interrupted`, `failed` or `abandoned`.
    pub status: String,
    pub findings: Option<i64>,
    pub errors: Option<i64>,
    pub error: Option<String>,
}

/// How a scheduled run ended, to record.
#[derive(Debug, Clone)]
pub struct ScheduledEnd<'a> {
    pub run: Option<RunId>,
    pub status: &'a str,
    pub findings: Option<i64>,
    pub errors: Option<i64>,
    pub error: Option<&'a str>,
}

impl Store {
    /// Claims occurrence `due_at` of `schedule` for `holder` until `expires_at`.
    pub async fn claim(
        &self,
        schedule: &str,
        due_at: i64,
        holder: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Claim> {
        let taken: Option<String> = sqlx::query_scalar(
            "INSERT INTO leases (schedule, due_at, holder, expires_at, done) \
             VALUES ($1, $2, $3, $4, 0) \
             ON CONFLICT (schedule) DO UPDATE SET due_at = excluded.due_at, \
             holder = excluded.holder, expires_at = excluded.expires_at, done = 0 \
             WHERE leases.due_at < excluded.due_at AND (leases.done = 1 OR leases.expires_at < $5) \
             RETURNING holder",
        )
        .bind(schedule)
        .bind(due_at)
        .bind(holder)
        .bind(expires_at)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.failed(&e))?;
        if taken.is_some() {
            return Ok(Claim::Taken);
        }
        let row = sqlx::query("SELECT due_at FROM leases WHERE schedule = $1")
            .bind(schedule)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.failed(&e))?;
        let claimed: i64 = row.map(|r| r.get("due_at")).unwrap_or(i64::MIN);
        Ok(match claimed >= due_at {
            true => Claim::Elsewhere,
            false => Claim::Busy,
        })
    }

    /// Takes over an occurrence of `schedule` whose run did not end and whose lease expired
    /// (its replica died, or handed it back on shutdown): its due time, when taken.
    pub async fn take_over(
        &self,
        schedule: &str,
        holder: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Option<i64>> {
        let due: Option<i64> = sqlx::query_scalar(
            "UPDATE leases SET holder = $1, expires_at = $2 \
             WHERE schedule = $3 AND done = 0 AND expires_at < $4 RETURNING due_at",
        )
        .bind(holder)
        .bind(expires_at)
        .bind(schedule)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.failed(&e))?;
        if let Some(due) = due {
            sqlx::query(
                "UPDATE schedule_runs SET status = 'abandoned' \
                 WHERE schedule = $1 AND due_at = $2 AND status = 'running'",
            )
            .bind(schedule)
            .bind(due)
            .execute(&self.pool)
            .await
            .map_err(|e| self.failed(&e))?;
        }
        Ok(due)
    }

    /// Extends `holder`'s lease on occurrence `due_at`; `false` when it holds it no more
    /// (it expired and another replica took the schedule over).
    pub async fn renew(
        &self,
        schedule: &str,
        due_at: i64,
        holder: &str,
        expires_at: i64,
    ) -> Result<bool> {
        let updated = sqlx::query(
            "UPDATE leases SET expires_at = $1 \
             WHERE schedule = $2 AND due_at = $3 AND holder = $4 AND done = 0",
        )
        .bind(expires_at)
        .bind(schedule)
        .bind(due_at)
        .bind(holder)
        .execute(&self.pool)
        .await
        .map_err(|e| self.failed(&e))?;
        Ok(updated.rows_affected() > 0)
    }

    /// Ends `holder`'s lease: `done` when the occurrence's run ended (it is never run
    /// again), otherwise handed back at once (a replica shutting down mid-run), so that
    /// another replica takes the occurrence over.
    pub async fn release(
        &self,
        schedule: &str,
        due_at: i64,
        holder: &str,
        done: bool,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE leases SET done = $1, expires_at = $2 \
             WHERE schedule = $3 AND due_at = $4 AND holder = $5",
        )
        .bind(i64::from(done))
        .bind(if done { now } else { 0 })
        .bind(schedule)
        .bind(due_at)
        .bind(holder)
        .execute(&self.pool)
        .await
        .map_err(|e| self.failed(&e))?;
        Ok(())
    }

    /// Records that `replica` started occurrence `due_at` of `schedule`; the record's id.
    pub async fn begin_scheduled(
        &self,
        schedule: &str,
        due_at: i64,
        replica: &str,
        started_at: i64,
    ) -> Result<i64> {
        sqlx::query_scalar(
            "INSERT INTO schedule_runs (schedule, due_at, replica, started_at, status) \
             VALUES ($1, $2, $3, $4, 'running') RETURNING id",
        )
        .bind(schedule)
        .bind(due_at)
        .bind(replica)
        .bind(started_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.failed(&e))
    }

    /// Records how scheduled run `id` ended.
    pub async fn finish_scheduled(&self, id: i64, end: &ScheduledEnd<'_>) -> Result<()> {
        sqlx::query(
            "UPDATE schedule_runs SET finished_at = $1, run_id = $2, status = $3, \
             findings = $4, errors = $5, error = $6 WHERE id = $7",
        )
        .bind(crate::time::now_millis())
        .bind(end.run)
        .bind(end.status)
        .bind(end.findings)
        .bind(end.errors)
        .bind(end.error)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| self.failed(&e))?;
        Ok(())
    }

    /// The newest `limit` scheduled runs, newest first.
    pub async fn scheduled_runs(&self, limit: i64) -> Result<Vec<ScheduledRun>> {
        let rows = sqlx::query(
            "SELECT id, schedule, due_at, replica, started_at, finished_at, run_id, status, \
             findings, errors, error FROM schedule_runs ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.failed(&e))?;
        Ok(rows
            .iter()
            .map(|row| {
                let (due, started): (i64, i64) = (row.get("due_at"), row.get("started_at"));
                ScheduledRun {
                    id: row.get("id"),
                    schedule: row.get("schedule"),
                    due_at: crate::time::iso8601(due),
                    started_at: crate::time::iso8601(started),
                    drift_ms: started - due,
                    finished_at: row
                        .get::<Option<i64>, _>("finished_at")
                        .map(crate::time::iso8601),
                    replica: row.get("replica"),
                    run: row.get("run_id"),
                    status: row.get("status"),
                    findings: row.get("findings"),
                    errors: row.get("errors"),
                    error: row.get("error"),
                }
            })
            .collect())
    }
}
