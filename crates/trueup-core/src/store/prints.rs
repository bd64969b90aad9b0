//! Reading a complete run's fingerprint blob (its sorted `(fingerprint, seq)` pairs, 16-byte
//! records) in slices: a diff merges two of them without holding either whole.

use super::{RunId, Store};
use crate::{Error, Result};

/// Bytes read at a time at least: 65,536 pairs. A larger blob is read in at most 16 slices,
/// since each read may load the whole blob in the database (SQLite's `substr` does).
const MIN_SLICE: usize = 1 << 20;

/// A run's fingerprint blob, read slice by slice.
pub(super) struct Prints<'a> {
    store: &'a Store,
    run: RunId,
    /// The blob's length in bytes.
    len: usize,
    /// Bytes of the blob before `slice`.
    read: usize,
    slice: Vec<u8>,
    /// The next pair's offset in `slice`.
    at: usize,
}

impl<'a> Prints<'a> {
    /// The blob of run `run`; an error when the run is incomplete (it has none).
    pub(super) async fn open(store: &'a Store, run: RunId) -> Result<Prints<'a>> {
        let len: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(length(prints) AS BIGINT) FROM run_fingerprints WHERE run_id = $1",
        )
        .bind(run)
        .fetch_optional(&store.pool)
        .await
        .map_err(|e| store.failed(&e))?;
        let len = len.ok_or_else(|| {
            Error::UnknownRun(format!(
                "run {run} is incomplete (killed or still running): diff compares complete runs"
            ))
        })?;
        Ok(Prints {
            store,
            run,
            len: usize::try_from(len).unwrap_or_default(),
            read: 0,
            slice: Vec::new(),
            at: 0,
        })
    }

    /// How many findings the run has.
    pub(super) fn findings(&self) -> usize {
        self.len / 16
    }

    /// The next (fingerprint, seq) pair, in fingerprint order.
    pub(super) async fn next(&mut self) -> Result<Option<(i64, i64)>> {
        if self.at + 16 > self.slice.len() {
            if self.read + self.slice.len() >= self.len {
                return Ok(None);
            }
            self.read += self.slice.len();
            let size = (self.len / 16).max(MIN_SLICE).next_multiple_of(16);
            self.slice = sqlx::query_scalar(
                "SELECT substr(prints, CAST($2 AS INTEGER), CAST($3 AS INTEGER)) FROM run_fingerprints WHERE run_id = $1",
            )
            .bind(self.run)
            .bind(i64::try_from(self.read + 1).unwrap_or(i64::MAX))
            .bind(i64::try_from(size).unwrap_or(i64::MAX))
            .fetch_one(&self.store.pool)
            .await
            .map_err(|e| self.store.failed(&e))?;
            self.at = 0;
            if self.slice.len() < 16 {
                // The blob ended inside a record (a damaged store): what is whole was read.
                self.read = self.len;
                return Ok(None);
            }
        }
        let word =
            |at: usize| i64::from_le_bytes(self.slice[at..at + 8].try_into().unwrap_or_default());
        let pair = (word(self.at), word(self.at + 8));
        self.at += 16;
        Ok(Some(pair))
    }
}
