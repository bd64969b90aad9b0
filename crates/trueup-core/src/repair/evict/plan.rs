//! An `evict` rule's part of a plan: the rule's detector run as `check` runs it, and for
//! each finding that a delete fixes, its cache key and the hash of its `DUMP`, read in
//! pipelines on a second read-only connection. Targets are spooled to a file, then appended
//! to the plan (the plan writer is not `Send`), so memory stays flat.

use std::io::Write as _;

use serde_json::Value as Json;

use super::super::plan::{Line, PlanWriter, RowCounts, RuleEnd, RuleLine, TargetLine};
use super::super::spec::{Refusal, rule_hash};
use super::value_hash;
use crate::cancel::Cancel;
use crate::compile::CACHE_FINDING_COLUMNS;
use crate::load::{LoadedRule, Project};
use crate::rule::{CacheConsistencyDetector, EvictRepair};
use crate::source::{RedisConnection, RedisRead, RedisReply, RowSink, Source};
use crate::value::Value;
use crate::{Error, Result};

/// Keys whose `DUMP` is read in one round trip.
const BATCH: usize = 512;
/// How many keys a summary keeps.
const SAMPLE: usize = 10;

/// The problems a delete fixes: the cached value is wrong or unreadable, or no row has it.
/// `missing` never (nothing to delete); `no-ttl` only when the repair says so.
pub fn evicts(problem: &str, no_ttl: bool) -> bool {
    matches!(problem, "stale" | "orphaned" | "not-json" | "wrong-type")
        || (no_ttl && problem == "no-ttl")
}

/// What `apply` and people read of an evict rule's batch.
pub const STATEMENTS: [&str; 5] = [
    "WATCH <the batch's keys>",
    "DUMP <key>; PEXPIRETIME <key>  (a key whose DUMP hash differs from the plan's is skipped)",
    "MULTI",
    "HSET trueup:journal:<repair> <key> <batch, expiry, DUMP>; DEL <the keys>",
    "EXEC  (nil when a watched key changed: the batch is read again)",
];

/// Plans one `evict` rule: writes its `rule` line and targets; returns them with its end
/// and first keys, or why it cannot be planned (written by the caller).
pub async fn plan_rule(
    project: &Project,
    loaded: &LoadedRule,
    (d, repair): (&CacheConsistencyDetector, &EvictRepair),
    index: usize,
    writer: &mut PlanWriter<'_>,
    cancel: &Cancel,
) -> std::result::Result<(RuleLine, RuleEnd, Vec<Json>), Refusal> {
    let rule = &loaded.rule;
    let refuse = |reason: String, error: bool| Refusal {
        rule: rule.id.clone(),
        strategy: Some("evict".to_owned()),
        reason,
        error,
    };
    if !loaded.refused.is_empty() {
        return Err(refuse(
            "trueup refuses the rule's SQL (see `trueup validate`)".into(),
            false,
        ));
    }
    let open = |name: String| async move {
        match project.sources.get(&name) {
            Some(spec) => Source::connect(spec, &project.root, 2).await,
            None => Err(Error::Selection(format!(
                "the project has no source `{name}`"
            ))),
        }
    };
    let failed = |e: Error| refuse(crate::error::chain(&e), true);
    let cache = open(loaded.source.clone()).await.map_err(failed)?;
    let rows = open(d.rows.source.clone()).await.map_err(failed)?;
    let dumps = cache.redis().await.map_err(failed)?;
    let line = RuleLine {
        index,
        rule: rule.id.clone(),
        rule_hash: rule_hash(loaded),
        source: loaded.source.clone(),
        database: cache.display_url.clone(),
        strategy: "evict".to_owned(),
        table: d.key_template.clone(),
        key: vec!["cache_key".to_owned()],
        columns: Vec::new(),
        statements: STATEMENTS.iter().map(|s| (*s).to_owned()).collect(),
        max_rows: repair.max_rows,
        may_affect: Vec::new(),
    };
    writer.line(&Line::Rule(line.clone())).map_err(failed)?;
    let spool = tempfile::tempfile().map_err(|e| failed(e.into()))?;
    let mut targets = Targets {
        dumps,
        width: d.key.len(),
        no_ttl: repair.no_ttl,
        index,
        pending: Vec::new(),
        out: std::io::BufWriter::new(spool),
        count: 0,
        sample: Vec::new(),
        cancel: cancel.clone(),
    };
    let timeout = rule.timeout.unwrap_or(project.defaults.timeout).0;
    let detected = crate::cache::run(d, &cache, &rows, timeout, &mut targets).await;
    let flushed = match detected {
        Ok(()) => targets.flush().await.err().map(|e| crate::error::chain(&e)),
        Err(e) => Some(format!("detecting the keys failed: {e}")),
    };
    // What was spooled goes into the plan either way; a failure refuses the rule.
    let appended = targets
        .out
        .into_inner()
        .map_err(|e| Error::from(e.into_error()))
        .and_then(|mut file| {
            std::io::Seek::rewind(&mut file)?;
            writer.append(std::io::BufReader::new(file))
        });
    appended.map_err(failed)?;
    let mut counts = RowCounts::new();
    counts.entry(d.key_template.clone()).or_default().delete = targets.count;
    let over = repair
        .max_rows
        .filter(|max| targets.count > *max && flushed.is_none());
    let end = RuleEnd {
        index,
        targets: targets.count,
        rows: counts,
        refused: flushed.or_else(|| {
            over.map(|max| {
                format!(
                    "it would evict {} keys, more than its `max-rows` ({max}); \
                     `apply --max-rows {} --yes` allows it",
                    targets.count, targets.count
                )
            })
        }),
        over_max_rows: over.map(|_| targets.count),
    };
    Ok((line, end, targets.sample))
}

/// Takes the detector's findings, keeps the keys to evict, and spools their target lines.
struct Targets {
    dumps: RedisConnection,
    width: usize,
    no_ttl: bool,
    index: usize,
    pending: Vec<String>,
    out: std::io::BufWriter<std::fs::File>,
    count: u64,
    sample: Vec<Json>,
    cancel: Cancel,
}

impl Targets {
    /// Reads the pending keys' `DUMP`s and writes a target for each key still there.
    async fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let keys = std::mem::take(&mut self.pending);
        let reads: Vec<RedisRead<'_>> = keys.iter().map(|k| RedisRead::Dump(k)).collect();
        let replies = self.dumps.pipeline(&reads).await?;
        for (key, reply) in keys.iter().zip(replies) {
            let dump = match reply {
                RedisReply::Bulk(dump) => dump,
                // Gone since the detector read it: nothing to evict.
                RedisReply::Nil => continue,
                other => {
                    return Err(Error::Other(format!("Redis answered DUMP with {other:?}")));
                }
            };
            let target = TargetLine {
                r: self.index,
                key: Json::Array(vec![Json::String(key.clone())]),
                hash: Some(value_hash(&dump)),
                rows: Vec::new(),
                op: None,
                values: None,
            };
            if self.sample.len() < SAMPLE {
                self.sample.push(target.key.clone());
            }
            self.count += 1;
            let mut text = serde_json::to_string(&Line::Target(target))
                .map_err(|e| Error::Other(e.to_string()))?;
            text.push('\n');
            self.out.write_all(text.as_bytes())?;
        }
        Ok(())
    }
}

impl RowSink for Targets {
    fn columns(&mut self, _: Vec<String>) -> Result<()> {
        Ok(())
    }

    async fn row(&mut self, values: Vec<Value>) -> Result<()> {
        if self.cancel.is_cancelled() {
            return Err(Error::Other("interrupted".into()));
        }
        let text = |i: usize| match values.get(self.width + i) {
            Some(Value::Text(t)) => Some(t.clone()),
            _ => None,
        };
        debug_assert_eq!(CACHE_FINDING_COLUMNS[0], "problem");
        debug_assert_eq!(CACHE_FINDING_COLUMNS[1], "cache_key");
        if let (Some(problem), Some(key)) = (text(0), text(1))
            && evicts(&problem, self.no_ttl)
        {
            self.pending.push(key);
            if self.pending.len() >= BATCH {
                self.flush().await?;
            }
        }
        Ok(())
    }
}
