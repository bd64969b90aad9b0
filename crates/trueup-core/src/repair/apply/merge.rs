//! A batch of `merge-duplicates`: each group's rows compared with the plan, references
//! re-pointed to the survivor, the other rows deleted or quarantined, all journaled.

use std::collections::HashMap;

use super::batch::{
    Images, add_images, entry, journal_rows, quarantine, quarantine_tags, still_violating,
};
use super::{AppliedRule, Journal, RuleRun, Skip, skip};
use crate::repair::db::Db;
use crate::repair::journal::Entry;
use crate::repair::plan::TargetLine;
use crate::repair::row;
use crate::repair::spec::Action;
use crate::repair::sql;
use crate::value::Value;
use crate::{Error, Result};

pub(super) async fn merge_batch(
    db: &mut Db,
    journal: &Journal,
    run: &RuleRun,
    batch: &[TargetLine],
    entries: &mut Vec<Entry>,
    report: &mut AppliedRule,
) -> Result<()> {
    let tags = quarantine_tags(journal, &run.rr);
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
            let rows = db.rows(&sql, chunk).await?;
            add_images(&mut before, dialect, &reference_columns, key.len(), rows);
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
        journal_rows(db, rr, &reference.table, key, before, entries).await?;
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
