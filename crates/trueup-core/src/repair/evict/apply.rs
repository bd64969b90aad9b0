//! Applying an `evict` rule: its targets in batches, each batch one `WATCH`ed transaction.
//! The batch's keys are watched and read again (`DUMP`, `PEXPIRETIME`); a key whose hash
//! differs from the plan's is skipped (*changed*), a key that is gone is *gone* (or
//! *already applied*, when an earlier apply of the same plan journaled it). Then `MULTI`,
//! an `HSET` of each key's entry into the repair's journal, one `DEL` of the keys, `EXEC`:
//! the journal and the deletes commit together or not at all, and a write to a watched key
//! in between makes `EXEC` do nothing (the batch is read again, up to [`ATTEMPTS`] times).

use std::collections::BTreeMap;
use std::path::Path;

use super::super::apply::{AppliedRule, ApplyOptions, ApplyProgress, Skip, skip};
use super::super::plan::{self, PlanFile, RuleLine, TargetLine};
use super::super::spec::{mismatch, planned};
use super::conn::{Write, Writer};
use super::{Entry, Record, begin, finish, journal_key, records, unexpected, value_hash};
use crate::cancel::Cancel;
use crate::load::Project;
use crate::rule::{Detector, Repair};
use crate::source::RedisReply as Reply;
use crate::store::RepairRecord;
use crate::{Error, Result};

/// How often a batch is read again after `EXEC` found a watched key changed.
const ATTEMPTS: usize = 5;

/// One Redis source during an apply: its connection, its repair, and the earlier applies of
/// the same plan (whose journals tell *already applied* from *gone*).
pub struct EvictSession {
    writer: Writer,
    repair: Option<(i64, Record)>,
    earlier: Vec<i64>,
    batch: i64,
}

/// An `evict` rule being applied.
pub struct EvictRun {
    pub report: AppliedRule,
    max_rows: Option<u64>,
}

/// Checks that a plan's `evict` rule is this project's rule on the same Redis, and opens
/// the source's writing connection.
pub async fn check_rule(
    project: &Project,
    plan: &PlanFile,
    line: &RuleLine,
    options: &ApplyOptions,
    sessions: &mut BTreeMap<String, EvictSession>,
) -> Result<EvictRun> {
    let (loaded, spec) = planned(project, line)?;
    let (Detector::CacheConsistency(_), Some(Repair::Evict(repair))) =
        (&loaded.rule.detector, &loaded.rule.repair)
    else {
        return Err(mismatch(format!(
            "rule `{}` is not a `cache-consistency` rule with an `evict` repair",
            line.rule
        )));
    };
    if !sessions.contains_key(&line.source) {
        let mut writer = Writer::open(spec).await?;
        let earlier = records(&mut writer)
            .await?
            .into_iter()
            .filter(|(_, r)| r.kind == "apply" && r.plan_hash == plan.hash && r.undone_by.is_none())
            .map(|(id, _)| id)
            .collect();
        sessions.insert(
            line.source.clone(),
            EvictSession {
                writer,
                repair: None,
                earlier,
                batch: 0,
            },
        );
    }
    let session = &sessions[&line.source];
    if session.writer.display_url != line.database {
        return Err(mismatch(format!(
            "the plan was made on {} but source `{}` is now {}",
            line.database, line.source, session.writer.display_url
        )));
    }
    let planned = plan
        .ends
        .iter()
        .find(|e| e.index == line.index)
        .map_or(0, |e| e.targets);
    Ok(EvictRun {
        report: AppliedRule {
            rule: line.rule.clone(),
            source: line.source.clone(),
            strategy: "evict".to_owned(),
            planned,
            ..AppliedRule::default()
        },
        max_rows: options.max_rows.or(repair.max_rows),
    })
}

/// How the evict rules of an apply ended.
pub struct Applied {
    pub stopped: bool,
    pub interrupted: bool,
    pub records: Vec<RepairRecord>,
}

/// Runs the `evict` rules' batches (`runs`, by plan index) from the plan at `path`.
#[allow(clippy::too_many_arguments)]
pub async fn apply_rules(
    path: &Path,
    plan: &PlanFile,
    runs: &mut BTreeMap<usize, EvictRun>,
    sessions: &mut BTreeMap<String, EvictSession>,
    options: &ApplyOptions,
    cancel: &Cancel,
    progress: &mut dyn ApplyProgress,
) -> Result<Applied> {
    let started = crate::time::now_millis();
    if !options.dry_run {
        for (source, session) in sessions.iter_mut() {
            let rules = runs
                .values()
                .filter(|r| r.report.source == *source)
                .map(|r| r.report.rule.clone())
                .collect();
            session.repair =
                Some(begin(&mut session.writer, "apply", None, &plan.hash, rules).await?);
        }
    }
    let (mut stopped, mut interrupted) = (false, false);
    let mut batch: Vec<TargetLine> = Vec::new();
    let mut targets = plan::targets(path)?;
    loop {
        let next = targets.next().transpose()?;
        let full = match (&next, batch.first()) {
            (Some(t), Some(first)) => t.r != first.r || batch.len() >= options.batch_size,
            (None, Some(_)) => true,
            _ => false,
        };
        if full {
            if cancel.is_cancelled() {
                interrupted = true;
                break;
            }
            let index = batch[0].r;
            let run = runs
                .get_mut(&index)
                .expect("only the runs' targets are batched");
            let session = sessions
                .get_mut(&run.report.source)
                .expect("a session per rule's source");
            run.report.reached = true;
            match run_batch(session, run, &batch, options).await {
                Ok(()) => progress.batch(&run.report.rule, run.report.repaired, run.report.planned),
                Err(e) => {
                    run.report.error = Some(crate::error::chain(&e));
                    stopped = true;
                }
            }
            batch.clear();
            if stopped {
                break;
            }
        }
        let Some(target) = next else { break };
        if runs.contains_key(&target.r) {
            batch.push(target);
        }
    }
    let status = if stopped {
        "failed"
    } else if interrupted {
        "stopped"
    } else {
        "complete"
    };
    let mut records = Vec::new();
    for (source, session) in sessions.iter_mut() {
        let Some((id, mut record)) = session.repair.take() else {
            continue;
        };
        for run in runs.values_mut().filter(|r| r.report.source == *source) {
            run.report.repair = (run.report.rows > 0).then_some(id);
        }
        let applied: Vec<&EvictRun> = runs
            .values()
            .filter(|r| r.report.source == *source)
            .collect();
        // A server that died mid-apply cannot be told how it ended: the repair stays
        // `running`, its committed batches journaled.
        let rows = match finish(&mut session.writer, id, &mut record, status).await {
            Ok(rows) => rows,
            Err(_) if stopped => applied.iter().map(|r| r.report.rows).sum(),
            Err(e) => return Err(e),
        };
        if rows > 0 {
            records.push(RepairRecord {
                source: source.clone(),
                journal_id: id,
                kind: "apply".to_owned(),
                undoes: None,
                plan_hash: plan.hash.clone(),
                run_id: plan.header.from_run,
                rules: applied.iter().map(|r| r.report.rule.clone()).collect(),
                started_at: started,
                finished_at: crate::time::now_millis(),
                status: status.to_owned(),
                rows: i64::try_from(rows).unwrap_or(i64::MAX),
            });
        }
    }
    Ok(Applied {
        stopped,
        interrupted,
        records,
    })
}

/// One batch: watch, read again, compare, then journal and delete in one `MULTI`/`EXEC`.
async fn run_batch(
    session: &mut EvictSession,
    run: &mut EvictRun,
    batch: &[TargetLine],
    options: &ApplyOptions,
) -> Result<()> {
    let mut keys = Vec::with_capacity(batch.len());
    for target in batch {
        match (target.key.get(0).and_then(|k| k.as_str()), &target.hash) {
            (Some(key), Some(hash)) => keys.push((key.to_owned(), hash.as_str(), &target.key)),
            _ => {
                return Err(Error::Mismatch(
                    "an `evict` target without its key or hash".into(),
                ));
            }
        }
    }
    let names: Vec<String> = keys.iter().map(|(k, _, _)| k.clone()).collect();
    session.batch += 1;
    let number = session.batch;
    for _ in 0..ATTEMPTS {
        let w = &mut session.writer;
        let mut reads = vec![Write::Watch(&names)];
        for key in &names {
            reads.push(Write::Dump(key));
            reads.push(Write::PExpireTime(key));
        }
        let mut replies = w.send(&reads).await?.into_iter();
        match replies.next() {
            Some(Reply::Status(_)) => {}
            other => return Err(unexpected("WATCH", other.unwrap_or(Reply::Nil))),
        }
        let mut report = AppliedRule::default();
        let mut evict: Vec<(usize, Vec<u8>, i64)> = Vec::new();
        let mut gone: Vec<usize> = Vec::new();
        for (i, (_, planned, json)) in keys.iter().enumerate() {
            let dump = replies.next();
            let expire_at = replies.next();
            match (dump, expire_at) {
                (Some(Reply::Nil), _) => gone.push(i),
                (Some(Reply::Bulk(dump)), Some(Reply::Int(expire_at))) => {
                    if value_hash(&dump) == *planned {
                        evict.push((i, dump, expire_at));
                    } else {
                        skip(&mut report, Skip::Changed, json);
                    }
                }
                (dump, expire_at) => {
                    return Err(Error::Other(format!(
                        "Redis answered DUMP and PEXPIRETIME with {dump:?} and {expire_at:?}"
                    )));
                }
            }
        }
        // A key an earlier apply of this plan journaled was evicted by it.
        for i in gone {
            let mut done = false;
            for earlier in &session.earlier {
                let journal = journal_key(*earlier);
                if w.one(Write::HExists {
                    key: &journal,
                    field: &keys[i].0,
                })
                .await?
                    == Reply::Int(1)
                {
                    done = true;
                    break;
                }
            }
            let why = if done {
                Skip::AlreadyApplied
            } else {
                Skip::Gone
            };
            skip(&mut report, why, keys[i].2);
        }
        let count = evict.len() as u64;
        if let Some(max) = run.max_rows
            && run.report.rows + count > max
        {
            w.one(Write::Unwatch).await?;
            return Err(Error::Mismatch(format!(
                "the batch would bring the keys evicted to {}, more than `max-rows` ({max}): \
                 nothing of it was evicted",
                run.report.rows + count
            )));
        }
        let journal = match &session.repair {
            Some((id, _)) if !options.dry_run && !evict.is_empty() => journal_key(*id),
            _ => {
                // Nothing to write (or a dry run, which never writes: Redis cannot roll back).
                w.one(Write::Unwatch).await?;
                report.repaired = count;
                report.rows = count;
                run.report.absorb(report);
                return Ok(());
            }
        };
        let entries: Vec<Vec<u8>> = evict
            .iter()
            .map(|(_, dump, expire_at)| Entry::encode(number, *expire_at, dump))
            .collect();
        let deleted: Vec<String> = evict.iter().map(|(i, _, _)| keys[*i].0.clone()).collect();
        let mut writes = vec![Write::Multi];
        for ((i, _, _), entry) in evict.iter().zip(&entries) {
            writes.push(Write::HSet {
                key: &journal,
                field: &keys[*i].0,
                value: entry,
            });
        }
        writes.push(Write::Del(&deleted));
        writes.push(Write::Exec);
        let exec = w.send(&writes).await?.pop().unwrap_or(Reply::Nil);
        match exec {
            // A watched key changed after it was read: nothing was written; read again.
            Reply::Nil => continue,
            Reply::Array(results) => {
                // The verification: every entry journaled, every key deleted, in the
                // transaction that committed.
                let journaled = results[..results.len().saturating_sub(1)]
                    .iter()
                    .filter(|r| **r == Reply::Int(1))
                    .count();
                if results.last() != Some(&Reply::Int(i64::try_from(count).unwrap_or(-1)))
                    || journaled as u64 != count
                {
                    return Err(Error::Other(format!(
                        "the batch's transaction answered {results:?}: expected {count} keys \
                         journaled and deleted"
                    )));
                }
                report.repaired = count;
                report.rows = count;
                run.report.absorb(report);
                return Ok(());
            }
            other => return Err(unexpected("EXEC", other)),
        }
    }
    Err(Error::Other(format!(
        "the batch's keys changed during each of {ATTEMPTS} attempts (WATCH): nothing of it was \
         evicted; apply the plan again later"
    )))
}
