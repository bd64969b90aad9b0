//! Recording a run while it happens. Findings are encoded and written in batches, each one
//! row holding a JSON array, by a task of their own: `check` never waits long on the store,
//! the encoding runs beside the output rather than before it, and memory stays bounded. The fingerprints are kept (16 bytes a finding) and written sorted, as one
//! value, when the run completes.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{RunId, Store};
use crate::finding::{Finding, RuleSpec};
use crate::fingerprint::{Fingerprint, Fnv};
use crate::outcome::RuleOutcome;
use crate::{Error, Result};

/// Findings per batch handed to the writer, and batches it may lag behind.
const BATCH: usize = 5000;
const BATCHES_IN_FLIGHT: usize = 4;

/// Consecutive findings, each with its fingerprint, and the sequence number of the first.
type Batch = (i64, Vec<(Finding, Fingerprint)>);

/// Writes one run's findings and outcome into the store.
pub struct Recorder {
    store: Store,
    run: RunId,
    /// The batch being filled.
    batch: Vec<(Finding, Fingerprint)>,
    /// Sequence number of the batch's first finding.
    first_seq: i64,
    batches: Option<mpsc::Sender<Batch>>,
    writer: JoinHandle<Result<()>>,
    /// Every finding's fingerprint and sequence number as the 16-byte little-endian records
    /// `run_fingerprints` stores, sorted in place and written as they are when the run ends:
    /// 16 bytes a finding, never a second copy.
    prints: Vec<u8>,
    /// Findings queued so far: the next one's sequence number.
    seq: i64,
}

impl Store {
    /// Starts recording a run of `rules`. Until [`Recorder::finish`], the run shows as
    /// incomplete: a `check` that is killed stays that way.
    /// `selection` is what the run selected (`--rule …`), `None` for every rule.
    pub async fn begin_run(
        &self,
        rules: &[Arc<RuleSpec>],
        selection: Option<&str>,
    ) -> Result<Recorder> {
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
        // Past this, a run that recorded no end died without a word: abandoned.
        let longest: std::time::Duration = rules.iter().map(|r| r.timeout).sum();
        let started = crate::time::now_millis();
        let deadline =
            started.saturating_add(i64::try_from(longest.as_millis()).unwrap_or(i64::MAX));
        let run: RunId = sqlx::query_scalar(
            "INSERT INTO runs (started_at, tool_version, rules_hash, rules, deadline_at, selection) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(started)
        .bind(env!("CARGO_PKG_VERSION"))
        .bind(rules_hash)
        .bind(i64::try_from(rules.len()).unwrap_or(i64::MAX))
        .bind(deadline)
        .bind(selection)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.failed(&e))?;
        let (batches, mut received) = mpsc::channel::<Batch>(BATCHES_IN_FLIGHT);
        let store = self.clone();
        let writer = tokio::spawn(async move {
            while let Some((first_seq, batch)) = received.recv().await {
                store
                    .insert(run, first_seq, encode(first_seq, &batch)?)
                    .await?;
            }
            Ok(())
        });
        Ok(Recorder {
            store: self.clone(),
            run,
            batch: Vec::with_capacity(BATCH),
            first_seq: 0,
            batches: Some(batches),
            writer,
            prints: Vec::new(),
            seq: 0,
        })
    }

    async fn insert(&self, run: RunId, first_seq: i64, rows: String) -> Result<()> {
        sqlx::query("INSERT INTO finding_batches (run_id, first_seq, rows) VALUES ($1, $2, $3)")
            .bind(run)
            .bind(first_seq)
            .bind(rows)
            .execute(&self.pool)
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(())
    }
}

impl Recorder {
    pub fn run_id(&self) -> RunId {
        self.run
    }

    /// Queues a finding, whose fingerprint the caller computed, for writing.
    pub async fn add(&mut self, finding: Finding, fingerprint: Fingerprint) {
        let seq = self.seq;
        self.seq += 1;
        self.prints
            .extend_from_slice(&fingerprint.stored().to_le_bytes());
        self.prints.extend_from_slice(&seq.to_le_bytes());
        self.batch.push((finding, fingerprint));
        if self.batch.len() >= BATCH {
            self.flush().await;
        }
    }

    async fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        let first_seq = std::mem::replace(&mut self.first_seq, self.seq);
        if let Some(batches) = &self.batches
            && batches.send((first_seq, batch)).await.is_err()
        {
            // The writer stopped: its error is reported by `finish`.
            self.batches = None;
        }
    }

    /// Writes what is left, the fingerprints, the rules' outcomes, and marks the run complete.
    pub async fn finish(mut self, outcomes: &[RuleOutcome]) -> Result<RunId> {
        self.drain().await?;
        let store = &self.store;
        let mut transaction = store.pool.begin().await.map_err(|e| store.failed(&e))?;
        // By fingerprint (signed, as diffs merge them), then sequence number.
        let word = |bytes: &[u8]| i64::from_le_bytes(bytes.try_into().unwrap_or_default());
        self.prints
            .as_chunks_mut::<16>()
            .0
            .sort_unstable_by_key(|record| (word(&record[..8]), word(&record[8..])));
        let prints = std::mem::take(&mut self.prints);
        sqlx::query("INSERT INTO run_fingerprints (run_id, prints) VALUES ($1, $2)")
            .bind(self.run)
            .bind(prints)
            .execute(&mut *transaction)
            .await
            .map_err(|e| store.failed(&e))?;
        write_outcomes(store, &mut transaction, self.run, outcomes).await?;
        sqlx::query("UPDATE runs SET finished_at = $1 WHERE id = $2")
            .bind(crate::time::now_millis())
            .bind(self.run)
            .execute(&mut *transaction)
            .await
            .map_err(|e| store.failed(&e))?;
        transaction.commit().await.map_err(|e| store.failed(&e))?;
        Ok(self.run)
    }

    /// Records a run that was stopped by a signal: its findings so far and the outcomes of
    /// the rules that finished, marked `interrupted` (never complete: `diff`, `last` and
    /// baselines skip it).
    pub async fn interrupt(mut self, outcomes: &[RuleOutcome]) -> Result<RunId> {
        self.drain().await?;
        let store = &self.store;
        let mut transaction = store.pool.begin().await.map_err(|e| store.failed(&e))?;
        write_outcomes(store, &mut transaction, self.run, outcomes).await?;
        sqlx::query("UPDATE runs SET status = 'interrupted' WHERE id = $1")
            .bind(self.run)
            .execute(&mut *transaction)
            .await
            .map_err(|e| store.failed(&e))?;
        transaction.commit().await.map_err(|e| store.failed(&e))?;
        Ok(self.run)
    }

    /// Hands the last batch to the writer and waits for it to write everything.
    async fn drain(&mut self) -> Result<()> {
        self.flush().await;
        self.batches = None;
        (&mut self.writer)
            .await
            .map_err(|e| Error::Other(format!("the recorder stopped: {e}")))?
    }
}

/// The rules' outcomes of `run`, and its totals.
async fn write_outcomes(
    store: &Store,
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    run: RunId,
    outcomes: &[RuleOutcome],
) -> Result<()> {
    for outcome in outcomes {
        sqlx::query(
            "INSERT INTO run_rules (run_id, rule_id, rule_hash, severity, findings, duration_ms, error, owner, runbook, kind) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(run)
        .bind(outcome.rule.id.as_str())
        .bind(outcome.rule.definition_hash.as_str())
        .bind(outcome.rule.severity.as_str())
        .bind(i64::try_from(outcome.findings).unwrap_or(i64::MAX))
        .bind(i64::try_from(outcome.elapsed.as_millis()).unwrap_or(i64::MAX))
        .bind(outcome.error.as_ref().map(ToString::to_string))
        .bind(outcome.rule.owner.as_deref())
        .bind(outcome.rule.runbook.as_deref())
        .bind(outcome.rule.kind)
        .execute(&mut **transaction)
        .await
        .map_err(|e| store.failed(&e))?;
    }
    let findings: u64 = outcomes.iter().map(|o| o.findings).sum();
    let errors = outcomes.iter().filter(|o| o.error.is_some()).count();
    sqlx::query("UPDATE runs SET findings = $1, errors = $2 WHERE id = $3")
        .bind(i64::try_from(findings).unwrap_or(i64::MAX))
        .bind(i64::try_from(errors).unwrap_or(i64::MAX))
        .bind(run)
        .execute(&mut **transaction)
        .await
        .map_err(|e| store.failed(&e))?;
    Ok(())
}

/// A batch as stored: a JSON array of `[seq, rule, fingerprint, key, detail, message]`.
fn encode(first_seq: i64, batch: &[(Finding, Fingerprint)]) -> Result<String> {
    let mut rows = Vec::with_capacity(batch.len() * 128);
    rows.push(b'[');
    for (seq, (finding, fingerprint)) in (first_seq..).zip(batch) {
        if seq != first_seq {
            rows.push(b',');
        }
        let row = (
            seq,
            &finding.rule.id,
            fingerprint.stored(),
            finding.key_object(),
            finding.detail_object(),
            finding.message(),
        );
        serde_json::to_writer(&mut rows, &row)
            .map_err(|e| Error::Other(format!("cannot encode a finding: {e}")))?;
    }
    rows.push(b']');
    String::from_utf8(rows).map_err(|e| Error::Other(format!("a batch is not UTF-8: {e}")))
}
