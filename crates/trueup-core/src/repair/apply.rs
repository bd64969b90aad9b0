//! `apply`: runs a plan in batches, each one transaction that locks and re-reads its rows,
//! skips any that changed since the plan or no longer violate, journals the before-image of
//! every row it changes, changes them, re-runs the detector on them (it must find none) and
//! commits only then. See docs/design/repairs.md for why each step is there.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::Serialize;

use super::catalog;
use super::db::{Access, Db};
use super::effects::{self, NewFindings};
use super::journal::{self, Change, Entry, NewRepair};
use super::plan::{self, PlanFile, RuleLine, TargetLine};
use super::row;
use super::spec::{self, Action, RuleRepair};
use super::sql;
use crate::cancel::Cancel;
use crate::load::Project;
use crate::value::Value;
use crate::{Error, Result};

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
}

/// What `apply` did to one rule.
#[derive(Debug, Clone, Serialize)]
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

/// One source's session and journal position during an apply.
struct Session {
    db: Db,
    repair: Option<i64>,
    /// The detection run the plan came from (`plan --from-run`).
    from_run: Option<i64>,
    seq: i64,
    batch: i64,
}

/// A rule being applied.
struct RuleRun {
    rr: RuleRepair,
    watchers: Vec<effects::Watcher>,
    types: Vec<String>,
    max_rows: Option<u64>,
    report: AppliedRule,
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
    // Everything is checked before anything changes.
    for line in &plan.rules {
        if let Some(end) = plan.ends.iter().find(|e| e.index == line.index)
            && end.refusal(options.max_rows).is_some()
        {
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
        session.from_run = plan.header.from_run;
        if options.dry_run {
            session.db.begin().await?;
        }
        journal::ensure(&mut session.db, options.dry_run).await?;
        session.repair = Some(
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
                if let Err(e) = run_batch(session, run, &batch, &plan_hash, options).await {
                    run.report.error = Some(crate::error::chain(&e));
                    stop = true;
                }
                progress.batch(&run.rr.rule, run.report.repaired, run.report.planned);
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
        } else if let Some(repair) = session.repair {
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
        rules: runs.into_values().map(|r| r.report).collect(),
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
    let Some(loaded) = project.rules.iter().find(|r| r.rule.id == line.rule) else {
        return Err(spec::mismatch(format!(
            "the plan repairs rule `{}`, which this project does not have: is the plan from another project?",
            line.rule
        )));
    };
    if spec::rule_hash(loaded) != line.rule_hash {
        return Err(spec::mismatch(format!(
            "rule `{}` changed since the plan was made: make a new plan",
            line.rule
        )));
    }
    let Some(source) = project.sources.get(&line.source) else {
        return Err(spec::mismatch(format!(
            "the plan's source `{}` is not in this project",
            line.source
        )));
    };
    if !sessions.contains_key(&line.source) {
        let db = Db::open(source, &project.root, Access::ReadWrite).await?;
        sessions.insert(
            line.source.clone(),
            Session {
                db,
                repair: None,
                from_run: None,
                seq: 0,
                batch: 0,
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
    let report = AppliedRule {
        rule: rr.rule.clone(),
        source: rr.source.clone(),
        strategy: rr.strategy.to_owned(),
        repair: None,
        planned: plan
            .ends
            .iter()
            .find(|e| e.index == line.index)
            .map_or(0, |e| e.targets),
        repaired: 0,
        rows: 0,
        skipped: BTreeMap::new(),
        skipped_sample: Vec::new(),
        new_findings: Vec::new(),
        error: None,
        reached: false,
    };
    let watchers = effects::watchers(project, &rr, db.dialect());
    Ok(RuleRun {
        watchers,
        rr,
        types,
        max_rows,
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

fn skip(report: &mut AppliedRule, why: Skip, key: &serde_json::Value) {
    *report.skipped.entry(why).or_default() += 1;
    if report.skipped_sample.len() < SAMPLE {
        report.skipped_sample.push((why, key.clone()));
    }
}

/// Runs one batch in one transaction (a savepoint in a dry run); on error the batch is
/// rolled back and the error returned.
async fn run_batch(
    session: &mut Session,
    run: &mut RuleRun,
    batch: &[TargetLine],
    plan_hash: &str,
    options: &ApplyOptions,
) -> Result<()> {
    let repair = session.repair.expect("the repair was begun");
    run.report.reached = true;
    if options.dry_run {
        session.db.batch("SAVEPOINT trueup_batch").await?;
    } else {
        session.db.begin().await?;
    }
    let mut entries = Vec::new();
    let mut report = run.report.clone();
    let outcome = match effects::before(&mut session.db, &run.watchers).await {
        Err(e) => Err(e),
        Ok(()) => match run.rr.action {
            Action::Merge { .. } => {
                merge_batch(session, run, batch, &mut entries, &mut report).await
            }
            _ => row_batch(session, run, batch, plan_hash, &mut entries, &mut report).await,
        },
    };
    let outcome = match outcome {
        Ok(()) => match effects::after(&mut session.db, &run.watchers).await {
            Ok(found) if found.is_empty() => Ok(()),
            Ok(found) if options.allow_new_findings => {
                merge_new_findings(&mut report.new_findings, found);
                Ok(())
            }
            Ok(found) => Err(Error::Mismatch(format!(
                "rule `{}`: the batch would give other rules new findings ({}): rolled back; \
                 `--allow-new-findings` applies it anyway",
                run.rr.rule,
                found
                    .iter()
                    .map(|f| format!(
                        "{} of `{}`, e.g. {}",
                        f.count,
                        f.rule,
                        f.sample
                            .first()
                            .map(ToString::to_string)
                            .unwrap_or_default()
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ))),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let outcome = match outcome {
        Ok(()) => {
            let rows = report.rows + entries.len() as u64;
            match run.max_rows {
                Some(max) if rows > max => Err(Error::Mismatch(format!(
                    "rule `{}` would change {rows} rows, more than its max-rows ({max}): the batch was rolled back",
                    run.rr.rule
                ))),
                _ => Ok(rows),
            }
        }
        Err(e) => Err(e),
    };
    let rows = match outcome {
        Ok(rows) => rows,
        Err(e) => {
            if options.dry_run {
                session
                    .db
                    .batch("ROLLBACK TO SAVEPOINT trueup_batch; RELEASE SAVEPOINT trueup_batch")
                    .await
                    .ok();
            } else {
                session.db.rollback().await.ok();
            }
            return Err(e);
        }
    };
    if !entries.is_empty() {
        session.batch += 1;
        journal::write(
            &mut session.db,
            repair,
            session.batch,
            &mut session.seq,
            &entries,
        )
        .await?;
    }
    if options.dry_run {
        session.db.batch("RELEASE SAVEPOINT trueup_batch").await?;
    } else {
        session.db.commit().await?;
    }
    report.rows = rows;
    if !entries.is_empty() && !options.dry_run {
        report.repair = Some(repair);
    }
    run.report = report;
    run.rr.action.quarantine_created();
    Ok(())
}

/// Rows read by key: key JSON text → (key values, image text).
type Images = HashMap<String, (Vec<Value>, String)>;

async fn read_images(
    db: &mut Db,
    table: &catalog::Table,
    key: &[String],
    keys: &[Vec<Value>],
    lock: bool,
) -> Result<Images> {
    let mut images = Images::new();
    if keys.is_empty() {
        return Ok(images);
    }
    let dialect = db.dialect();
    let columns = table.column_names();
    for chunk in keys.chunks(500) {
        let binds: Vec<Value> = chunk.iter().flatten().cloned().collect();
        let sql = sql::read_rows(db, table, key, chunk.len(), lock);
        for values in db.rows(&sql, &binds).await? {
            let (k, image) = values.split_at(key.len());
            images.insert(
                row::key_json(k).to_string(),
                (k.to_vec(), row::image_text(dialect, &columns, image)),
            );
        }
    }
    Ok(images)
}

/// The keys (as JSON text) the detector still finds among `keys`.
async fn still_violating(
    db: &mut Db,
    run: &RuleRun,
    keys: &[Vec<Value>],
) -> Result<HashSet<String>> {
    let mut found = HashSet::new();
    if keys.is_empty() {
        return Ok(found);
    }
    let mut binds = run.rr.detector.binds.clone();
    // A one-column integer key: the detector's range form, from the smallest to the largest.
    let ints: Option<Vec<i64>> = keys
        .iter()
        .map(|k| match k.as_slice() {
            [Value::Int(i)] => Some(*i),
            [Value::Text(t)] => t.parse().ok(),
            _ => None,
        })
        .collect();
    let bounds = ints
        .filter(|_| run.rr.detector.split.is_some())
        .and_then(|ints| Some((*ints.iter().min()?, *ints.iter().max()?)));
    if let Some((lo, hi)) = bounds {
        binds.extend([Value::Int(lo), Value::Int(hi)]);
    }
    binds.extend(keys.iter().flatten().cloned());
    let sql = sql::redetect(db, &run.rr, &run.types, keys.len(), bounds.is_some());
    for values in db.rows(&sql, &binds).await? {
        found.insert(row::key_json(&values).to_string());
    }
    Ok(found)
}

async fn row_batch(
    session: &mut Session,
    run: &mut RuleRun,
    batch: &[TargetLine],
    plan_hash: &str,
    entries: &mut Vec<Entry>,
    report: &mut AppliedRule,
) -> Result<()> {
    let tags = quarantine_tags(session, &run.rr);
    let db = &mut session.db;
    let rr = &run.rr;
    let keys: Vec<Vec<Value>> = batch
        .iter()
        .map(|t| row::key_values(&t.key))
        .collect::<Result<_>>()?;
    let current = read_images(db, &rr.table, &rr.key, &keys, true).await?;
    let mut ok = Vec::new();
    let mut unsure = Vec::new();
    for (target, key) in batch.iter().zip(&keys) {
        let text = target.key.to_string();
        match current.get(&text) {
            Some((_, image)) if Some(row::image_hash(image)) == target.hash => {
                ok.push((text, key.clone()));
            }
            found => unsure.push((
                text,
                target.key.clone(),
                found.map(|(_, i)| row::image_hash(i)),
            )),
        }
    }
    if !unsure.is_empty() {
        let texts: Vec<String> = unsure.iter().map(|(t, _, _)| t.clone()).collect();
        let done = journal::already_done(db, plan_hash, &rr.table.name, &texts).await?;
        for (text, key, now) in unsure {
            // The last thing this plan did to the row, if the row is still as it left it.
            let ours = done
                .iter()
                .rev()
                .find(|(k, _, _)| *k == text)
                .filter(|(_, after, _)| *after == now);
            match (ours, now) {
                (Some((_, _, rule)), _) if *rule == rr.rule => {
                    skip(report, Skip::AlreadyApplied, &key);
                }
                // Another rule of this plan changed it: the row is as this plan left it.
                (Some(_), Some(_)) => ok.push((text, row::key_values(&key)?)),
                (_, None) => skip(report, Skip::Gone, &key),
                (None, Some(_)) => skip(report, Skip::Changed, &key),
            }
        }
    }
    let ok_keys: Vec<Vec<Value>> = ok.iter().map(|(_, k)| k.clone()).collect();
    let violating = still_violating(db, run, &ok_keys).await?;
    let mut todo = Vec::new();
    for (text, key) in ok {
        if violating.contains(&text) {
            todo.push((text, key));
        } else {
            skip(
                report,
                Skip::Resolved,
                &serde_json::from_str(&text).unwrap_or_default(),
            );
        }
    }
    if todo.is_empty() {
        return Ok(());
    }
    let todo_keys: Vec<Vec<Value>> = todo.iter().map(|(_, k)| k.clone()).collect();
    let binds: Vec<Value> = todo_keys.iter().flatten().cloned().collect();
    let n = todo.len();

    // Rows of other tables that change with these: their before-images first.
    let mut dependents_before = Vec::new();
    for dependent in &rr.dependents {
        let key = dependent.table.key().unwrap_or_default().to_vec();
        let sql = sql::dependent_rows(db, rr, dependent, n);
        let dialect = db.dialect();
        let columns = dependent.table.column_names();
        let mut images = Images::new();
        for values in db.rows(&sql, &binds).await? {
            let (k, image) = values.split_at(key.len());
            images.insert(
                row::key_json(k).to_string(),
                (k.to_vec(), row::image_text(dialect, &columns, image)),
            );
        }
        dependents_before.push((dependent, key, images));
    }

    // The change.
    for dependent in rr.dependents.iter().filter(|d| d.declared) {
        db.execute(&sql::delete_dependent(db, rr, dependent, n), &binds)
            .await?;
    }
    let statements = sql::change(db, rr, n);
    let mut changed = 0;
    // What an UPDATE handed back of the rows it left (its RETURNING clause).
    let mut returned = None;
    // Findings whose `sql` statements reported a changed row: it must be their own.
    let mut sql_touched = HashSet::new();
    let mut quarantined = Vec::new();
    if let Action::Quarantine { into, exists } = &rr.action {
        quarantined = quarantine(db, &tags, rr, (into, *exists), &rr.key, &todo_keys).await?;
        changed = db.execute(&statements[1], &binds).await?;
    } else if let Action::Sql { statements } = &rr.action {
        changed = n as u64;
        for (text, key) in &todo {
            for (i, (sql, columns)) in statements.iter().enumerate() {
                let binds: Vec<Value> = columns.iter().map(|c| key[*c].clone()).collect();
                let touched = db.execute(sql, &binds).await?;
                if touched > 0 {
                    sql_touched.insert(text.clone());
                }
                if touched > 1 {
                    return Err(Error::Mismatch(format!(
                        "rule `{}`: statement {} changed {touched} rows for one finding; a `sql` \
                         repair changes only the finding's own row: rolled back",
                        rr.rule,
                        i + 1
                    )));
                }
            }
        }
    } else if let Action::Update { .. } = &rr.action {
        let dialect = db.dialect();
        let columns = rr.table.column_names();
        let mut images = Images::new();
        for values in db.rows(&statements[0], &binds).await? {
            let (k, image) = values.split_at(rr.key.len());
            images.insert(
                row::key_json(k).to_string(),
                (k.to_vec(), row::image_text(dialect, &columns, image)),
            );
        }
        changed = images.len() as u64;
        returned = Some(images);
    } else {
        for statement in &statements {
            changed = db.execute(statement, &binds).await?;
        }
    }
    if changed != n as u64 {
        return Err(Error::Mismatch(format!(
            "rule `{}`: the change touched {changed} rows of `{}` where the batch has {n}: rolled back",
            rr.rule, rr.table.name
        )));
    }

    // What the change left, journaled with what was there before.
    for (dependent, key, before) in &dependents_before {
        let keys: Vec<Vec<Value>> = before.values().map(|(k, _)| k.clone()).collect();
        let after = read_images(db, &dependent.table, key, &keys, false).await?;
        for (text, (k, image)) in before {
            entries.push(entry(
                rr,
                &dependent.table.name,
                key,
                k,
                image,
                after.get(text),
            ));
        }
    }
    let after = match (returned, &rr.action) {
        (Some(images), _) => images,
        // Every row was deleted (the count above says so): none is left to read.
        (None, Action::Delete | Action::Quarantine { .. }) => Images::new(),
        (None, _) => read_images(db, &rr.table, &rr.key, &todo_keys, false).await?,
    };
    for (text, key) in &todo {
        let (_, image) = &current[text];
        if sql_touched.contains(text) && after.get(text).is_some_and(|(_, now)| now == image) {
            return Err(Error::Mismatch(format!(
                "rule `{}`: the `sql` statements changed a row for finding {text}, but not that \
                 finding's row of `{}`: a row trueup did not journal; rolled back",
                rr.rule, rr.table.name
            )));
        }
        entries.push(entry(
            rr,
            &rr.table.name,
            &rr.key,
            key,
            image,
            after.get(text),
        ));
    }
    entries.extend(quarantined);

    // The proof: the detector finds none of the batch's rows now.
    let remaining = still_violating(db, run, &todo_keys).await?;
    if !remaining.is_empty() {
        return Err(Error::Mismatch(format!(
            "rule `{}`: after the change its detector still finds {} of the batch's {n} rows \
             (e.g. {}): rolled back",
            rr.rule,
            remaining.len(),
            remaining.iter().next().cloned().unwrap_or_default()
        )));
    }
    report.repaired += n as u64;
    Ok(())
}

/// What a quarantined row is tagged with, after its columns: the repair, the run its plan
/// came from, the rule and the time.
fn quarantine_tags(session: &Session, rr: &RuleRepair) -> [Value; 4] {
    [
        Value::Int(session.repair.unwrap_or_default()),
        session.from_run.map_or(Value::Null, Value::Int),
        Value::Text(rr.rule.clone()),
        Value::Text(crate::time::iso8601(crate::time::now_millis())),
    ]
}

/// Copies the rows of `rr`'s table whose `key` columns hold `keys` into the quarantine
/// table (created first when it does not exist), tagged with `tags`; returns the journal
/// entries of the rows it inserted, which undo deletes.
async fn quarantine(
    db: &mut Db,
    tags: &[Value; 4],
    rr: &RuleRepair,
    (into, exists): (&str, bool),
    key: &[String],
    keys: &[Vec<Value>],
) -> Result<Vec<Entry>> {
    if !exists {
        db.batch(&sql::create_quarantine(db, rr, into)).await?;
    }
    for chunk in keys.chunks(500) {
        let mut binds: Vec<Value> = chunk.iter().flatten().cloned().collect();
        binds.extend(tags.iter().cloned());
        db.execute(
            &sql::quarantine_rows(db, rr, into, key, chunk.len()),
            &binds,
        )
        .await?;
    }
    let Some(table) = catalog::table(db, into).await? else {
        return Err(Error::Other(format!(
            "quarantine table `{into}` is missing"
        )));
    };
    // The quarantine table's rows are found by their key and the repair that put them there.
    let mut quarantine_key = key.to_vec();
    quarantine_key.push(spec::QUARANTINE_COLUMNS[0].to_owned());
    let repair = match db.dialect() {
        crate::dialect::Dialect::Sqlite => tags[0].clone(),
        crate::dialect::Dialect::Postgres => match &tags[0] {
            Value::Int(id) => Value::Text(id.to_string()),
            other => other.clone(),
        },
    };
    let quarantine_keys: Vec<Vec<Value>> = keys
        .iter()
        .map(|k| {
            let mut k = k.clone();
            k.push(repair.clone());
            k
        })
        .collect();
    let inserted = read_images(db, &table, &quarantine_key, &quarantine_keys, false).await?;
    if inserted.len() != keys.len() {
        return Err(Error::Mismatch(format!(
            "rule `{}`: {} rows reached quarantine table `{into}` where {} were moved: rolled back",
            rr.rule,
            inserted.len(),
            keys.len()
        )));
    }
    Ok(inserted
        .into_values()
        .map(|(k, image)| Entry {
            rule: rr.rule.clone(),
            table: into.to_owned(),
            key_columns: quarantine_key.clone(),
            key: k,
            change: Change::Insert,
            before: None,
            after_hash: Some(row::image_hash(&image)),
        })
        .collect())
}

fn entry(
    rr: &RuleRepair,
    table: &str,
    key_columns: &[String],
    key: &[Value],
    before: &str,
    after: Option<&(Vec<Value>, String)>,
) -> Entry {
    Entry {
        rule: rr.rule.clone(),
        table: table.to_owned(),
        key_columns: key_columns.to_vec(),
        key: key.to_vec(),
        change: if after.is_some() {
            Change::Update
        } else {
            Change::Delete
        },
        before: Some(before.to_owned()),
        after_hash: after.map(|(_, image)| row::image_hash(image)),
    }
}

async fn merge_batch(
    session: &mut Session,
    run: &mut RuleRun,
    batch: &[TargetLine],
    entries: &mut Vec<Entry>,
    report: &mut AppliedRule,
) -> Result<()> {
    let tags = quarantine_tags(session, &run.rr);
    let db = &mut session.db;
    let rr = &run.rr;
    let Action::Merge {
        row_key,
        references,
        ..
    } = &rr.action
    else {
        return Ok(());
    };
    let dialect = db.dialect();
    let columns = rr.table.column_names();
    let width = rr.key.len();
    let groups: Vec<Vec<Value>> = batch
        .iter()
        .map(|t| row::key_values(&t.key))
        .collect::<Result<_>>()?;
    let binds: Vec<Value> = groups.iter().flatten().cloned().collect();
    // Group → its rows now, survivor first: (row key JSON, row key, image).
    let mut now: HashMap<String, Vec<(serde_json::Value, Value, String)>> = HashMap::new();
    for values in db
        .rows(&sql::group_rows(db, rr, groups.len(), true), &binds)
        .await?
    {
        let group = row::key_json(&values[..width]).to_string();
        let key = values[width].clone();
        let image = row::image_text(dialect, &columns, &values[width + 1..]);
        now.entry(group)
            .or_default()
            .push((row::key_json(std::slice::from_ref(&key)), key, image));
    }
    let mut todo = Vec::new();
    for target in batch {
        let rows = now.remove(&target.key.to_string()).unwrap_or_default();
        let same = rows.len() == target.rows.len()
            && rows
                .iter()
                .zip(&target.rows)
                .all(|((key, _, image), (planned_key, hash))| {
                    key == planned_key && row::image_hash(image) == *hash
                });
        if same {
            todo.push((row::key_values(&target.key)?, rows));
        } else if rows.len() < 2 {
            skip(report, Skip::Resolved, &target.key);
        } else {
            skip(report, Skip::Changed, &target.key);
        }
    }
    if todo.is_empty() {
        return Ok(());
    }
    let losers: Vec<Value> = todo
        .iter()
        .flat_map(|(_, rows)| rows[1..].iter().map(|(_, k, _)| k.clone()))
        .collect();
    // Referencing rows' before-images, then re-point them group by group.
    let mut referencing = Vec::new();
    for reference in references {
        let key = reference.table.key().unwrap_or_default().to_vec();
        let reference_columns = reference.table.column_names();
        let mut before = Images::new();
        for chunk in losers.chunks(500) {
            let sql = sql::referencing_rows(db, reference, chunk.len());
            for values in db.rows(&sql, chunk).await? {
                let (k, image) = values.split_at(key.len());
                before.insert(
                    row::key_json(k).to_string(),
                    (
                        k.to_vec(),
                        row::image_text(dialect, &reference_columns, image),
                    ),
                );
            }
        }
        for (_, rows) in &todo {
            let mut binds = vec![rows[0].1.clone()];
            binds.extend(rows[1..].iter().map(|(_, k, _)| k.clone()));
            db.execute(&sql::repoint(db, reference, rows.len() - 1), &binds)
                .await?;
        }
        referencing.push((reference, key, before));
    }
    let key_columns = [row_key.clone()];
    let quarantined = match rr.action.quarantine() {
        Some(table) => {
            let keys: Vec<Vec<Value>> = losers.iter().map(|k| vec![k.clone()]).collect();
            quarantine(db, &tags, rr, table, &key_columns, &keys).await?
        }
        None => Vec::new(),
    };
    let mut deleted = 0;
    for chunk in losers.chunks(500) {
        deleted += db
            .execute(&sql::delete_losers(db, rr, row_key, chunk.len()), chunk)
            .await?;
    }
    if deleted != losers.len() as u64 {
        return Err(Error::Mismatch(format!(
            "rule `{}`: deleting the duplicates touched {deleted} rows where the batch has {}: rolled back",
            rr.rule,
            losers.len()
        )));
    }
    for (reference, key, before) in &referencing {
        let keys: Vec<Vec<Value>> = before.values().map(|(k, _)| k.clone()).collect();
        let after = read_images(db, &reference.table, key, &keys, false).await?;
        for (text, (k, image)) in before {
            entries.push(entry(
                rr,
                &reference.table.name,
                key,
                k,
                image,
                after.get(text),
            ));
        }
    }
    for (_, rows) in &todo {
        for (_, key, image) in &rows[1..] {
            entries.push(entry(
                rr,
                &rr.table.name,
                &key_columns,
                std::slice::from_ref(key),
                image,
                None,
            ));
        }
    }
    entries.extend(quarantined);
    let done: Vec<Vec<Value>> = todo.iter().map(|(group, _)| group.clone()).collect();
    let remaining = still_violating(db, run, &done).await?;
    if !remaining.is_empty() {
        return Err(Error::Mismatch(format!(
            "rule `{}`: after the merge its detector still finds {} of the batch's groups: rolled back",
            rr.rule,
            remaining.len()
        )));
    }
    report.repaired += todo.len() as u64;
    Ok(())
}
