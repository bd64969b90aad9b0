//! One batch of an apply: its transaction, the row images it reads, the re-detection that
//! proves it, and the journal entries and quarantine copies it writes.

use std::collections::{HashMap, HashSet};

use super::merge::merge_batch;
use super::rows::row_batch;
use super::{AppliedRule, ApplyOptions, Journal, RuleRun, merge_new_findings};
use crate::dialect::Dialect;
use crate::repair::catalog;
use crate::repair::db::{Db, Engine};
use crate::repair::effects;
use crate::repair::journal::{self, Change, Entry};
use crate::repair::plan::TargetLine;
use crate::repair::row;
use crate::repair::spec::{self, Action, RuleRepair};
use crate::repair::sql;
use crate::value::Value;
use crate::{Error, Result};

/// Runs one batch in one transaction (a savepoint in a dry run) on `db`, and returns what
/// it did (counts from zero: the caller adds them to the rule's); on error the batch is
/// rolled back and the error returned. Two batches of a rule may run at once on two
/// sessions: what they share (the journal's numbers, the rows against `max-rows`) is
/// taken between awaits, so neither sees the other half-way.
pub(super) async fn run_batch(
    db: &mut Db,
    journal: &Journal,
    run: &RuleRun,
    batch: &[TargetLine],
    plan_hash: &str,
    options: &ApplyOptions,
) -> Result<AppliedRule> {
    let repair = journal.repair.expect("the repair was begun");
    if options.dry_run {
        db.batch("SAVEPOINT trueup_batch").await?;
    } else {
        db.begin().await?;
    }
    let mut entries = Vec::new();
    let mut report = run.report.fresh();
    let work = Work {
        journal,
        run,
        batch,
        plan_hash,
        options,
    };
    let outcome = changes(db, &work, &mut entries, &mut report)
        .await
        .and_then(|()| {
            // The rows of this batch count against `max-rows` from here (before the
            // commit, so that a batch running beside it counts them too).
            let mine = entries.len() as u64;
            let rows = run.rows.get() + mine;
            match run.max_rows {
                Some(max) if rows > max => Err(Error::Mismatch(format!(
                    "rule `{}` would change {rows} rows, more than its max-rows ({max}): the batch was rolled back",
                    run.rr.rule
                ))),
                _ => {
                    report.rows = mine;
                    run.rows.set(rows);
                    Ok(())
                }
            }
        });
    if let Err(e) = outcome {
        rollback(db, options).await;
        return Err(e);
    }
    let written = finish(db, journal, repair, &entries, options).await;
    if let Err(e) = written {
        run.rows.set(run.rows.get() - report.rows);
        rollback(db, options).await;
        return Err(e);
    }
    if !entries.is_empty() && !options.dry_run {
        report.repair = Some(repair);
    }
    Ok(report)
}

/// What a batch works on.
struct Work<'a> {
    journal: &'a Journal,
    run: &'a RuleRun,
    batch: &'a [TargetLine],
    plan_hash: &'a str,
    options: &'a ApplyOptions,
}

/// The batch's changes and their proofs, inside its transaction: the other rules' findings
/// before and after (cross-rule effects), and the strategy's own work.
async fn changes(
    db: &mut Db,
    work: &Work<'_>,
    entries: &mut Vec<Entry>,
    report: &mut AppliedRule,
) -> Result<()> {
    let Work {
        journal,
        run,
        batch,
        plan_hash,
        options,
    } = *work;
    effects::before(db, &run.watchers).await?;
    match run.rr.action {
        Action::Merge { .. } => merge_batch(db, journal, run, batch, entries, report).await?,
        Action::Copy(_) => {
            super::copy::copy_batch(db, run, batch, plan_hash, entries, report).await?;
        }
        _ => row_batch(db, journal, run, batch, plan_hash, entries, report).await?,
    }
    let found = effects::after(db, &run.watchers).await?;
    if found.is_empty() {
        return Ok(());
    }
    if options.allow_new_findings {
        merge_new_findings(&mut report.new_findings, found);
        return Ok(());
    }
    Err(Error::Mismatch(format!(
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
    )))
}

/// Journals the batch's entries (numbered now: a batch's entries one after another) and
/// commits (releases the savepoint in a dry run).
async fn finish(
    db: &mut Db,
    journal: &Journal,
    repair: i64,
    entries: &[Entry],
    options: &ApplyOptions,
) -> Result<()> {
    if !entries.is_empty() {
        let number = journal.batch.get() + 1;
        journal.batch.set(number);
        let mut seq = journal.seq.get();
        journal
            .seq
            .set(seq + i64::try_from(entries.len()).unwrap_or(i64::MAX));
        journal::write(db, repair, number, &mut seq, entries).await?;
    }
    if options.dry_run {
        db.batch("RELEASE SAVEPOINT trueup_batch").await
    } else {
        db.commit().await
    }
}

async fn rollback(db: &mut Db, options: &ApplyOptions) {
    if options.dry_run {
        db.batch("ROLLBACK TO SAVEPOINT trueup_batch; RELEASE SAVEPOINT trueup_batch")
            .await
            .ok();
    } else {
        db.rollback().await.ok();
    }
}

/// Rows read by key: key JSON text → (key values, image text).
pub(super) type Images = HashMap<String, (Vec<Value>, String)>;

/// Adds rows read as their `key_len` key columns then the image's columns to `images`.
pub(super) fn add_images(
    images: &mut Images,
    dialect: Dialect,
    columns: &[String],
    key_len: usize,
    rows: Vec<Vec<Value>>,
) {
    for values in rows {
        let (k, image) = values.split_at(key_len);
        images.insert(
            row::key_json(k).to_string(),
            (k.to_vec(), row::image_text(dialect, columns, image)),
        );
    }
}

pub(super) async fn read_images(
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
        let rows = db.rows(&sql, &binds).await?;
        add_images(&mut images, dialect, &columns, key.len(), rows);
    }
    Ok(images)
}

/// The keys (as JSON text) the detector still finds among `keys`.
pub(super) async fn still_violating(
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
    let sql = sql::redetect(db, &run.rr, &run.types, keys.len(), bounds.is_some());
    match bounds {
        Some((lo, hi)) => {
            // Every violating key in the range, streamed: the batch's own are kept.
            binds.extend([Value::Int(lo), Value::Int(hi)]);
            let wanted: HashSet<String> =
                keys.iter().map(|k| row::key_json(k).to_string()).collect();
            db.each(&sql, &binds, |values| {
                let key = row::key_json(&values).to_string();
                if wanted.contains(&key) {
                    found.insert(key);
                }
                Ok(())
            })
            .await?;
        }
        None => {
            binds.extend(keys.iter().flatten().cloned());
            for values in db.rows(&sql, &binds).await? {
                found.insert(row::key_json(&values).to_string());
            }
        }
    }
    Ok(found)
}

/// What a quarantined row is tagged with, after its columns: the repair, the run its plan
/// came from, the rule and the time.
pub(super) fn quarantine_tags(journal: &Journal, rr: &RuleRepair) -> [Value; 4] {
    [
        Value::Int(journal.repair.unwrap_or_default()),
        journal.from_run.map_or(Value::Null, Value::Int),
        Value::Text(rr.rule.clone()),
        Value::Text(crate::time::iso8601(crate::time::now_millis())),
    ]
}

/// Copies the rows of `rr`'s table whose `key` columns hold `keys` into the quarantine
/// table (created first when it does not exist), tagged with `tags`; returns the journal
/// entries of the rows it inserted, which undo deletes.
pub(super) async fn quarantine(
    db: &mut Db,
    tags: &[Value; 4],
    rr: &RuleRepair,
    (into, exists): (&str, bool),
    key: &[String],
    keys: &[Vec<Value>],
) -> Result<Vec<Entry>> {
    if !exists {
        if db.engine() == Engine::Mysql {
            // MySQL would commit the batch's transaction here: `apply` creates it before.
            return Err(Error::Other(format!(
                "quarantine table `{into}` was not created before the batch; this is a bug"
            )));
        }
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
    let repair = match db.engine() {
        Engine::Sqlite | Engine::Mysql => tags[0].clone(),
        Engine::Postgres => match &tags[0] {
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

/// Journals the rows of `table` read as `before`, each with what the change left of it.
pub(super) async fn journal_rows(
    db: &mut Db,
    rr: &RuleRepair,
    table: &catalog::Table,
    key: &[String],
    before: &Images,
    entries: &mut Vec<Entry>,
) -> Result<()> {
    let keys: Vec<Vec<Value>> = before.values().map(|(k, _)| k.clone()).collect();
    let after = read_images(db, table, key, &keys, false).await?;
    for (text, (k, image)) in before {
        entries.push(entry(rr, &table.name, key, k, image, after.get(text)));
    }
    Ok(())
}

pub(super) fn entry(
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
