//! A batch of a row strategy (`delete`, `quarantine`, `update`, `recompute`, `sql`): lock and
//! compare each target, change the ones that still violate, journal them and their dependents.

use std::collections::HashSet;

use super::batch::{
    Images, add_images, entry, journal_rows, quarantine, quarantine_tags, read_images,
    still_violating,
};
use super::{AppliedRule, Journal, RuleRun, Skip, skip};
use crate::repair::db::{Db, Engine};
use crate::repair::journal::{self, Entry};
use crate::repair::plan::TargetLine;
use crate::repair::row;
use crate::repair::spec::Action;
use crate::repair::sql;
use crate::value::Value;
use crate::{Error, Result};

pub(super) async fn row_batch(
    db: &mut Db,
    journal: &Journal,
    run: &RuleRun,
    batch: &[TargetLine],
    plan_hash: &str,
    entries: &mut Vec<Entry>,
    report: &mut AppliedRule,
) -> Result<()> {
    let tags = quarantine_tags(journal, &run.rr);
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
        let rows: Vec<(String, Option<String>)> = unsure
            .iter()
            .map(|(t, _, now)| (t.clone(), now.clone()))
            .collect();
        let ours = journal::left_as_is(db, plan_hash, &rr.table.name, &rows).await?;
        for ((text, key, now), ours) in unsure.into_iter().zip(ours) {
            // The rule of this plan that left the row as it is, if one did.
            match (ours, now) {
                (Some(rule), _) if rule == rr.rule => {
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
        let rows = db.rows(&sql, &binds).await?;
        add_images(&mut images, dialect, &columns, key.len(), rows);
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
    } else if let Action::Update { .. } = &rr.action
        && db.engine() == Engine::Mysql
    {
        // No RETURNING: the rows are read again below.
        changed = db.execute(&statements[0], &binds).await?;
    } else if let Action::Update { .. } = &rr.action {
        let dialect = db.dialect();
        let columns = rr.table.column_names();
        let mut images = Images::new();
        let rows = db.rows(&statements[0], &binds).await?;
        add_images(&mut images, dialect, &columns, rr.key.len(), rows);
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
        journal_rows(db, rr, &dependent.table, key, before, entries).await?;
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
