//! `apply`: runs a plan in batches, each one transaction that locks and re-reads its rows,
//! skips any that changed since the plan or no longer violate, journals the before-image of
//! every row it changes, changes them, re-runs the detector on them (it must find none) and
//! commits only then. See docs/design/repairs.md for why each step is there.

mod batch;
mod copy;
mod merge;
mod rows;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use self::batch::run_batch;
use super::db::{Access, Db, Engine};
use super::effects::{self, NewFindings};
use super::evict;
use super::journal::{self, NewRepair};
use super::plan::{self, PlanFile, RuleLine, TargetLine};
use super::spec::{self, RuleRepair};
use crate::Result;
use crate::cancel::Cancel;
use crate::load::Project;

/// How `apply` runs.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Keys per batch (one transaction each).
    pub batch_size: usize,
    /// Do everything, then roll back.
    pub dry_run: bool,
    /// Replaces the rules' `max-rows` (the CLI asks for `--yes` with it).
    pub max_rows: Option<u64>,
    /// Commit batches that give other rules new findings (they are reported).
    pub allow_new_findings: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            batch_size: 500,
            dry_run: false,
            max_rows: None,
            allow_new_findings: false,
        }
    }
}

/// Why a planned row was left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Skip {
    /// Someone changed the row since the plan: their write stands.
    Changed,
    /// The row is gone.
    Gone,
    /// It no longer violates the rule.
    Resolved,
    /// An earlier apply of this plan repaired it.
    AlreadyApplied,
    /// `copy-from`: the authoritative side's row changed since the plan (or is gone), so
    /// the values the plan would copy are not its values any more.
    SourceChanged,
}

/// What `apply` did to one rule.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AppliedRule {
    pub rule: String,
    pub source: String,
    pub strategy: String,
    /// The repair in the source's journal (none for a dry run).
    pub repair: Option<i64>,
    pub planned: u64,
    /// Targets repaired (keys or groups).
    pub repaired: u64,
    /// Rows written in every table (each journaled).
    pub rows: u64,
    pub skipped: BTreeMap<Skip, u64>,
    /// A few skipped keys, for people to look at.
    pub skipped_sample: Vec<(Skip, serde_json::Value)>,
    /// Findings the batches gave other rules (committed only with `--allow-new-findings`).
    pub new_findings: Vec<NewFindings>,
    pub error: Option<String>,
    /// Whether any of its batches ran (not when the apply stopped at an earlier rule).
    pub reached: bool,
}

/// What `apply` did.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    pub plan_hash: String,
    pub dry_run: bool,
    pub rules: Vec<AppliedRule>,
    /// Rules the plan found but refused to apply (over `max-rows`, an error while planning):
    /// an apply with any is a failed one.
    pub refused: Vec<spec::Refusal>,
    /// Rules the plan does not repair at all (`manual`, no repair): for the record.
    pub not_repaired: Vec<spec::Refusal>,
    pub interrupted: bool,
    /// Why the state store did not record the repairs, if it did not (they stand).
    pub store_error: Option<String>,
}

impl ApplyReport {
    pub fn failed(&self) -> bool {
        !self.refused.is_empty()
            || self.not_repaired.iter().any(|r| r.error)
            || self.rules.iter().any(|r| r.error.is_some())
    }
}

/// Progress of a long apply.
pub trait ApplyProgress {
    fn batch(&mut self, rule: &str, done: u64, planned: u64);
}

impl ApplyProgress for () {
    fn batch(&mut self, _: &str, _: u64, _: u64) {}
}

/// One source's sessions and journal position during an apply.
struct Session {
    db: Db,
    /// A second session to the same database, on which a rule's batches run two at a time
    /// (PostgreSQL, not in a dry run: see [`pairs`]).
    spare: Option<Db>,
    journal: Journal,
}

/// The repair a source's batches journal into, and the numbers of the next batch and
/// entry, shared by the source's sessions.
struct Journal {
    repair: Option<i64>,
    /// The detection run the plan came from (`plan --from-run`).
    from_run: Option<i64>,
    seq: Cell<i64>,
    batch: Cell<i64>,
}

/// A rule being applied.
struct RuleRun {
    rr: RuleRepair,
    watchers: Vec<effects::Watcher>,
    types: Vec<String>,
    max_rows: Option<u64>,
    /// Rows written by its committed batches and by the batches about to commit.
    rows: Cell<u64>,
    report: AppliedRule,
    /// A `copy-from` rule's authoritative side, read again in each batch.
    from: Option<crate::source::Source>,
}

impl RuleRun {
    /// Whether its batches may run two at a time: each batch's rows are its own (a `sql`
    /// repair's statements may write anywhere, so they run one batch after another).
    fn pairs(&self) -> bool {
        !matches!(
            self.rr.action,
            spec::Action::Sql { .. } | spec::Action::Copy(_)
        )
    }
}

impl AppliedRule {
    /// A rule with nothing done yet.
    fn start(rr: &RuleRepair, planned: u64) -> AppliedRule {
        AppliedRule {
            rule: rr.rule.clone(),
            source: rr.source.clone(),
            strategy: rr.strategy.to_owned(),
            repair: None,
            planned,
            repaired: 0,
            rows: 0,
            skipped: BTreeMap::new(),
            skipped_sample: Vec::new(),
            new_findings: Vec::new(),
            error: None,
            reached: false,
        }
    }

    /// The same rule with nothing done yet: what one batch reports.
    fn fresh(&self) -> AppliedRule {
        AppliedRule {
            rule: self.rule.clone(),
            source: self.source.clone(),
            strategy: self.strategy.clone(),
            planned: self.planned,
            reached: self.reached,
            ..AppliedRule::default()
        }
    }

    /// Adds what a batch did.
    pub(in crate::repair) fn absorb(&mut self, batch: AppliedRule) {
        self.repair = batch.repair.or(self.repair);
        self.repaired += batch.repaired;
        self.rows += batch.rows;
        for (why, count) in batch.skipped {
            *self.skipped.entry(why).or_default() += count;
        }
        let room = SAMPLE.saturating_sub(self.skipped_sample.len());
        self.skipped_sample
            .extend(batch.skipped_sample.into_iter().take(room));
        merge_new_findings(&mut self.new_findings, batch.new_findings);
    }
}

const SAMPLE: usize = 10;

/// Applies the plan at `path` to the project's sources.
pub async fn apply(
    project: &Project,
    path: &Path,
    options: &ApplyOptions,
    cancel: &Cancel,
    progress: &mut dyn ApplyProgress,
) -> Result<ApplyReport> {
    let plan = plan::read(path)?;
    let started = crate::time::now_millis();
    let mut sessions: BTreeMap<String, Session> = BTreeMap::new();
    let mut runs: BTreeMap<usize, RuleRun> = BTreeMap::new();
    let mut cache_sessions = BTreeMap::new();
    let mut evictions: BTreeMap<usize, evict::EvictRun> = BTreeMap::new();
    // Everything is checked before anything changes.
    for line in &plan.rules {
        if let Some(end) = plan.ends.iter().find(|e| e.index == line.index)
            && end.refusal(options.max_rows).is_some()
        {
            continue;
        }
        if line.strategy == "evict" {
            let run = evict::check_rule(project, &plan, line, options, &mut cache_sessions).await?;
            evictions.insert(line.index, run);
            continue;
        }
        let run = check_rule(project, &plan, line, options, &mut sessions).await?;
        runs.insert(line.index, run);
    }
    let plan_hash = plan.hash.clone();
    for session in sessions.values_mut() {
        let rules: Vec<String> = runs
            .values()
            .filter(|r| r.rr.source == session.db.source)
            .map(|r| r.rr.rule.clone())
            .collect();
        session.journal.from_run = plan.header.from_run;
        let mysql = session.db.engine() == Engine::Mysql;
        if mysql {
            // MySQL commits each CREATE TABLE at once, and any transaction open with it: the
            // journal and missing quarantine tables are made before any batch begins (a dry
            // run or a failed batch leaves them, empty).
            journal::ensure(&mut session.db, false).await?;
            let source = session.db.source.clone();
            for run in runs.values_mut().filter(|r| r.rr.source == source) {
                if let Some((into, false)) = run.rr.action.quarantine() {
                    let create = super::sql::create_quarantine(&session.db, &run.rr, into);
                    session.db.batch(&create).await?;
                    run.rr.action.quarantine_created();
                }
            }
        }
        if options.dry_run {
            session.db.begin().await?;
        }
        if !mysql {
            journal::ensure(&mut session.db, options.dry_run).await?;
        }
        session.journal.repair = Some(
            journal::begin_repair(
                &mut session.db,
                &NewRepair {
                    kind: "apply",
                    undoes: None,
                    plan_hash: &plan_hash,
                    rules: &rules,
                },
            )
            .await?,
        );
    }

    let mut interrupted = false;
    let mut stop = false;
    let mut batch: Vec<TargetLine> = Vec::new();
    // A full batch waiting for the next one of the same rule, to run beside it.
    let mut waiting: Option<Vec<TargetLine>> = None;
    let mut current: Option<usize> = None;
    let mut targets = plan::targets(path)?;
    loop {
        let next = targets.next().transpose()?;
        let flush = match (&next, current) {
            (Some(t), Some(c)) => t.r != c || batch.len() >= options.batch_size,
            (None, Some(_)) => true,
            _ => false,
        };
        if flush && let Some(index) = current {
            if cancel.is_cancelled() {
                interrupted = true;
                break;
            }
            if let Some(run) = runs.get_mut(&index)
                && run.report.error.is_none()
            {
                let session = sessions
                    .get_mut(&run.rr.source)
                    .expect("a session per rule's source");
                // The first batch of a rule runs alone (it may create the quarantine
                // table); after it, two at a time where the rule and the database allow.
                let more = matches!(&next, Some(t) if t.r == index);
                if waiting.is_none()
                    && more
                    && run.report.reached
                    && run.pairs()
                    && session.spare.is_some()
                {
                    // It waits for its partner.
                    waiting = Some(std::mem::take(&mut batch));
                }
                if !batch.is_empty() {
                    run.report.reached = true;
                    let done = match (waiting.take(), session.spare.as_mut()) {
                        (Some(first), Some(spare)) => {
                            let run = &*run;
                            let (a, b) = tokio::join!(
                                run_batch(
                                    &mut session.db,
                                    &session.journal,
                                    run,
                                    &first,
                                    &plan_hash,
                                    options
                                ),
                                run_batch(
                                    spare,
                                    &session.journal,
                                    run,
                                    &batch,
                                    &plan_hash,
                                    options
                                ),
                            );
                            vec![a, b]
                        }
                        _ => vec![
                            run_batch(
                                &mut session.db,
                                &session.journal,
                                run,
                                &batch,
                                &plan_hash,
                                options,
                            )
                            .await,
                        ],
                    };
                    for outcome in done {
                        match outcome {
                            Ok(report) => run.report.absorb(report),
                            Err(e) if run.report.error.is_none() => {
                                run.report.error = Some(crate::error::chain(&e));
                                stop = true;
                            }
                            Err(_) => {}
                        }
                    }
                    if !stop {
                        run.rr.action.quarantine_created();
                    }
                    progress.batch(&run.rr.rule, run.report.repaired, run.report.planned);
                }
            }
            batch.clear();
            if stop {
                break;
            }
        }
        let Some(target) = next else { break };
        current = Some(target.r);
        if runs.contains_key(&target.r) {
            batch.push(target);
        }
    }
    // Cache keys after the databases' rows (the journals are apart: Redis and a database
    // share no transaction).
    let mut cache_records = Vec::new();
    if !evictions.is_empty() && !stop && !interrupted {
        let applied = evict::apply_rules(
            path,
            &plan,
            &mut evictions,
            &mut cache_sessions,
            options,
            cancel,
            progress,
        )
        .await?;
        stop |= applied.stopped;
        interrupted |= applied.interrupted;
        cache_records = applied.records;
    }
    let status = if options.dry_run {
        "dry-run"
    } else if stop {
        "failed"
    } else if interrupted {
        "stopped"
    } else {
        "complete"
    };
    let mut records = Vec::new();
    for session in sessions.values_mut() {
        if options.dry_run {
            session.db.rollback().await?;
        } else if let Some(repair) = session.journal.repair {
            journal::finish_repair(&mut session.db, repair, status).await?;
            let source = &session.db.source;
            let applied = runs.values().filter(|r| r.rr.source == *source);
            let rows: u64 = applied.clone().map(|r| r.report.rows).sum();
            if rows > 0 {
                records.push(crate::store::RepairRecord {
                    source: source.clone(),
                    journal_id: repair,
                    kind: "apply".to_owned(),
                    undoes: None,
                    plan_hash: plan_hash.clone(),
                    run_id: plan.header.from_run,
                    rules: applied.map(|r| r.rr.rule.clone()).collect(),
                    started_at: started,
                    finished_at: crate::time::now_millis(),
                    status: status.to_owned(),
                    rows: i64::try_from(rows).unwrap_or(i64::MAX),
                });
            }
        }
    }
    records.extend(cache_records);
    let store_error = super::record(project, &records).await;
    let refused = plan
        .ends
        .iter()
        .filter_map(|end| {
            let reason = end.refusal(options.max_rows)?.to_owned();
            let line = plan.rules.iter().find(|l| l.index == end.index)?;
            Some(spec::Refusal {
                rule: line.rule.clone(),
                strategy: Some(line.strategy.clone()),
                reason,
                error: true,
            })
        })
        .collect();
    Ok(ApplyReport {
        plan_hash,
        dry_run: options.dry_run,
        rules: {
            let mut rules: BTreeMap<usize, AppliedRule> =
                runs.into_iter().map(|(i, r)| (i, r.report)).collect();
            rules.extend(evictions.into_iter().map(|(i, r)| (i, r.report)));
            rules.into_values().collect()
        },
        refused,
        not_repaired: plan.refused,
        interrupted,
        store_error,
    })
}

/// Checks that a plan's rule is this project's rule on the same database and schema, and
/// prepares it.
async fn check_rule(
    project: &Project,
    plan: &PlanFile,
    line: &RuleLine,
    options: &ApplyOptions,
    sessions: &mut BTreeMap<String, Session>,
) -> Result<RuleRun> {
    let (loaded, source) = spec::planned(project, line)?;
    if !sessions.contains_key(&line.source) {
        let db = Db::open(source, &project.root, Access::ReadWrite).await?;
        // SQLite's writer holds the whole database, and a dry run is one transaction.
        // Without a second session (a connection limit, say) batches run one at a time.
        let spare = match (db.engine(), options.dry_run) {
            (Engine::Postgres, false) => Db::open(source, &project.root, Access::ReadWrite)
                .await
                .ok(),
            _ => None,
        };
        sessions.insert(
            line.source.clone(),
            Session {
                db,
                spare,
                journal: Journal {
                    repair: None,
                    from_run: None,
                    seq: Cell::new(0),
                    batch: Cell::new(0),
                },
            },
        );
    }
    let session = sessions.get_mut(&line.source).expect("inserted above");
    let db = &mut session.db;
    if db.display_url != line.database {
        return Err(spec::mismatch(format!(
            "the plan was made on {} but source `{}` is now {}",
            line.database, line.source, db.display_url
        )));
    }
    let rr = match spec::prepare(db, loaded).await? {
        Ok(rr) => rr,
        Err(refusal) => {
            return Err(spec::mismatch(format!(
                "rule `{}` cannot be repaired now: {}",
                line.rule, refusal.reason
            )));
        }
    };
    if rr.table.columns != line.columns {
        return Err(spec::mismatch(format!(
            "table `{}` changed since the plan was made (its columns or their types differ): make a new plan",
            rr.table.name
        )));
    }
    let types = rr.key_types()?;
    let max_rows = options.max_rows.or(rr.max_rows);
    let planned = plan
        .ends
        .iter()
        .find(|e| e.index == line.index)
        .map_or(0, |e| e.targets);
    let report = AppliedRule::start(&rr, planned);
    let watchers = effects::watchers(project, &rr, db.dialect());
    let from = match &rr.action {
        spec::Action::Copy(c) => match project.sources.get(&c.from) {
            Some(spec) => Some(crate::source::Source::connect(spec, &project.root, 1).await?),
            None => {
                return Err(spec::mismatch(format!(
                    "the plan copies from source `{}`, which is not in this project",
                    c.from
                )));
            }
        },
        _ => None,
    };
    Ok(RuleRun {
        from,
        watchers,
        rr,
        types,
        max_rows,
        rows: Cell::new(0),
        report,
    })
}

/// Adds a batch's new findings to the rule's, per other rule.
fn merge_new_findings(all: &mut Vec<NewFindings>, found: Vec<NewFindings>) {
    for found in found {
        match all.iter_mut().find(|f| f.rule == found.rule) {
            Some(known) => {
                known.count += found.count;
                let room = 5usize.saturating_sub(known.sample.len());
                known.sample.extend(found.sample.into_iter().take(room));
            }
            None => all.push(found),
        }
    }
}

pub(super) fn skip(report: &mut AppliedRule, why: Skip, key: &serde_json::Value) {
    *report.skipped.entry(why).or_default() += 1;
    if report.skipped_sample.len() < SAMPLE {
        report.skipped_sample.push((why, key.clone()));
    }
}
