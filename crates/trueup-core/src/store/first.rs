//! A run's first findings of each rule by fingerprint (the ones `show` lists), read in one
//! pass over the run's stored batches as they are: what a report shows of each rule. The
//! database sorts nothing (numbering a million findings by rule and fingerprint takes it
//! seconds); memory holds one batch and the findings kept, `per_rule` for each rule.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

use futures_util::TryStreamExt;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::diff::{damaged, parse};
use super::runs::StoredFinding;
use super::{RunId, Store};
use crate::Result;

/// A batch's row, `[seq, rule, fingerprint, key, detail, message]`, read as little as
/// possible: the key and message are decoded only for the findings kept.
#[derive(serde::Deserialize)]
struct Row<'a>(
    i64,
    #[serde(borrow)] Cow<'a, str>,
    i64,
    &'a RawValue,
    IgnoredAny,
    &'a RawValue,
);

/// A finding kept: the greatest fingerprint (then sequence number) on top of its heap, the
/// first to give way to a smaller one.
#[derive(Debug, PartialEq, Eq)]
struct Kept {
    print: i64,
    seq: i64,
    key: String,
    message: String,
}

impl Ord for Kept {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.print, self.seq).cmp(&(other.print, other.seq))
    }
}

impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Store {
    /// The first `per_rule` findings of each rule of run `run`, by rule then fingerprint:
    /// what [`Store::findings`] returns with that limit, read without a sort, and without
    /// their details (`null`).
    pub async fn first_findings(&self, run: RunId, per_rule: usize) -> Result<Vec<StoredFinding>> {
        let mut kept: BTreeMap<String, BinaryHeap<Kept>> = BTreeMap::new();
        if per_rule > 0 {
            let mut batches = sqlx::query_scalar::<_, String>(
                "SELECT rows FROM finding_batches WHERE run_id = $1 ORDER BY first_seq",
            )
            .bind(run)
            .fetch(&self.pool);
            while let Some(text) = batches.try_next().await.map_err(|e| self.failed(&e))? {
                for row in parse::<Row<'_>>(run, &text)? {
                    let heap = match kept.get_mut(row.1.as_ref()) {
                        Some(heap) => heap,
                        None => kept.entry(row.1.clone().into_owned()).or_default(),
                    };
                    let smaller = heap
                        .peek()
                        .is_none_or(|top| (row.2, row.0) < (top.print, top.seq));
                    if heap.len() < per_rule || smaller {
                        heap.push(Kept {
                            print: row.2,
                            seq: row.0,
                            key: row.3.get().to_owned(),
                            message: row.5.get().to_owned(),
                        });
                        if heap.len() > per_rule {
                            heap.pop();
                        }
                    }
                }
            }
        }
        let mut findings = Vec::new();
        for (rule, heap) in kept {
            for kept in heap.into_sorted_vec() {
                findings.push(StoredFinding {
                    rule: rule.clone(),
                    fingerprint: crate::fingerprint::Fingerprint::from_stored(kept.print)
                        .to_string(),
                    key: serde_json::from_str(&kept.key).map_err(|e| damaged(run, &e))?,
                    detail: serde_json::Value::Null,
                    message: serde_json::from_str(&kept.message).map_err(|e| damaged(run, &e))?,
                });
            }
        }
        Ok(findings)
    }
}
