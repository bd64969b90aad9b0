//! `undo`: puts back what a repair journaled, batch by batch from the last, each batch one
//! transaction. A row changed since the repair is a conflict: the undo stops unless forced.
//! The undo is journaled like a repair, so it can be undone too.

use std::collections::HashMap;

use serde::Serialize;

use super::catalog::{self, Table};
use super::db::{Access, Db};
use super::journal::{self, Change, Entry, NewRepair};
use super::row;
use super::sql;
use crate::cancel::Cancel;
use crate::dialect::Dialect;
use crate::load::Project;
use crate::value::Value;
use crate::{Error, Result};

/// A journaled row that changed since the repair.
#[derive(Debug, Clone, Serialize)]
pub struct Conflict {
    pub table: String,
    pub key: serde_json::Value,
    /// What is there now that the repair did not leave.
    pub what: &'static str,
}

/// What `undo` did.
#[derive(Debug, Clone, Serialize)]
pub struct UndoReport {
    pub source: String,
    pub repair: i64,
    /// The undo's own id in the journal (undo it to redo the repair).
    pub undo: i64,
    pub restored: u64,
    /// Rows changed since the repair (at most a sample); non-empty means the undo stopped
    /// there, unless it was forced.
    pub conflicts: Vec<Conflict>,
    pub forced: bool,
    pub interrupted: bool,
    /// Whether every batch was restored.
    pub complete: bool,
}

const SAMPLE: usize = 20;

/// The source whose journal has repair `id`: `source` when named, else the one project
/// source that has it.
pub async fn find_source(project: &Project, source: Option<&str>, id: i64) -> Result<String> {
    if let Some(source) = source {
        if !project.sources.contains_key(source) {
            return Err(Error::Selection(format!(
                "the project has no source `{source}`"
            )));
        }
        return Ok(source.to_owned());
    }
    let mut found = Vec::new();
    let mut unreachable = Vec::new();
    for (name, spec) in &project.sources {
        let opened = Db::open(spec, &project.root, Access::ReadOnly).await;
        let listed = match opened {
            Ok(mut db) => journal::find(&mut db, id).await,
            Err(e) => Err(e),
        };
        match listed {
            Ok(Some(_)) => found.push(name.clone()),
            Ok(None) => {}
            Err(e) => unreachable.push(e),
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => match unreachable.into_iter().next() {
            // The repair may be in the journal that could not be read.
            Some(e) => Err(e),
            None => Err(Error::Selection(format!(
                "no source's journal has repair {id} (see `trueup repairs`)"
            ))),
        },
        many => Err(Error::Selection(format!(
            "repair {id} is in the journals of {}: name one with --source",
            many.join(", ")
        ))),
    }
}

/// Undoes repair `id` of `source`.
pub async fn undo(
    project: &Project,
    source: &str,
    id: i64,
    force: bool,
    cancel: &Cancel,
) -> Result<UndoReport> {
    let spec = &project.sources[source];
    let mut db = Db::open(spec, &project.root, Access::ReadWrite).await?;
    let Some(original) = journal::find(&mut db, id).await? else {
        return Err(Error::Selection(format!(
            "source `{source}`'s journal has no repair {id} (see `trueup repairs`)"
        )));
    };
    if let Some(by) = original.undone_by {
        return Err(Error::Mismatch(format!(
            "repair {id} was already undone by repair {by}"
        )));
    }
    // Batches an earlier undo that stopped part way restored are restored already.
    let restored = journal::restored_batches(&mut db, id).await?;
    let batches: Vec<i64> = journal::batches(&mut db, id)
        .await?
        .into_iter()
        .filter(|b| !restored.contains(b))
        .collect();
    let undo = journal::begin_repair(
        &mut db,
        &NewRepair {
            kind: "undo",
            undoes: Some(id),
            plan_hash: &original.plan_hash,
            rules: &original.rules,
        },
    )
    .await?;
    let mut report = UndoReport {
        source: source.to_owned(),
        repair: id,
        undo,
        restored: 0,
        conflicts: Vec::new(),
        forced: force,
        interrupted: false,
        complete: false,
    };
    let mut tables: HashMap<String, Table> = HashMap::new();
    let mut seq = 0;
    for batch in batches {
        if cancel.is_cancelled() {
            report.interrupted = true;
            break;
        }
        db.begin().await?;
        match undo_batch(&mut db, id, batch, force, &mut tables, &mut report).await {
            Ok(entries) if report.conflicts.is_empty() || force => {
                // Numbered as the batch it restores, so that a later undo skips it.
                journal::write(&mut db, undo, batch, &mut seq, &entries).await?;
                db.commit().await?;
            }
            Ok(_) => {
                db.rollback().await?;
                journal::finish_repair(&mut db, undo, "refused").await?;
                return Ok(report);
            }
            Err(e) => {
                db.rollback().await.ok();
                journal::finish_repair(&mut db, undo, "failed").await.ok();
                return Err(e);
            }
        }
    }
    if report.interrupted {
        journal::finish_repair(&mut db, undo, "stopped").await?;
    } else {
        journal::mark_undone(&mut db, id, undo).await?;
        journal::finish_repair(&mut db, undo, "complete").await?;
        report.complete = true;
    }
    Ok(report)
}

/// The row `entry` names as it is now: its image, if it exists (locked on PostgreSQL).
async fn current(db: &mut Db, table: &Table, entry: &Entry) -> Result<Option<String>> {
    let dialect = db.dialect();
    let sql = sql::read_rows(db, table, &entry.key_columns, 1, true);
    let rows = db.rows(&sql, &entry.key).await?;
    Ok(rows.first().map(|values| {
        row::image_text(
            dialect,
            &table.column_names(),
            &values[entry.key_columns.len()..],
        )
    }))
}

async fn undo_batch(
    db: &mut Db,
    repair: i64,
    batch: i64,
    force: bool,
    tables: &mut HashMap<String, Table>,
    report: &mut UndoReport,
) -> Result<Vec<Entry>> {
    let entries = journal::entries(db, repair, batch).await?;
    let mut undone = Vec::with_capacity(entries.len());
    for entry in &entries {
        if !tables.contains_key(&entry.table) {
            let Some(table) = catalog::table(db, &entry.table).await? else {
                return Err(Error::Mismatch(format!(
                    "table `{}` of the journal is gone: nothing was restored of this batch",
                    entry.table
                )));
            };
            tables.insert(entry.table.clone(), table);
        }
        let table = &tables[&entry.table];
        let now = current(db, table, entry).await?;
        let conflict = match (entry.change, &now) {
            (Change::Delete, Some(_)) => Some("a row with this key exists again"),
            (Change::Update | Change::Insert, None) => Some("the row is gone"),
            (Change::Update | Change::Insert, Some(image))
                if Some(row::image_hash(image)) != entry.after_hash =>
            {
                Some("the row changed since the repair")
            }
            _ => None,
        };
        if let Some(what) = conflict {
            if report.conflicts.len() < SAMPLE {
                report.conflicts.push(Conflict {
                    table: entry.table.clone(),
                    key: row::key_json(&entry.key),
                    what,
                });
            }
            if !force {
                continue;
            }
        }
        let restored = restore(db, table, entry, now.is_some()).await?;
        report.restored += 1;
        undone.push(Entry {
            rule: entry.rule.clone(),
            table: entry.table.clone(),
            key_columns: entry.key_columns.clone(),
            key: entry.key.clone(),
            change: match (&now, &restored) {
                (Some(_), Some(_)) => Change::Update,
                (None, Some(_)) => Change::Insert,
                (_, None) => Change::Delete,
            },
            before: now,
            after_hash: restored.as_deref().map(row::image_hash),
        });
    }
    Ok(undone)
}

/// Puts `entry`'s before-image back (or removes the row it inserted); returns the image it
/// left, `None` when it left no row.
async fn restore(
    db: &mut Db,
    table: &Table,
    entry: &Entry,
    exists: bool,
) -> Result<Option<String>> {
    let Some(before) = &entry.before else {
        // An inserted row (a quarantine copy): remove it.
        if exists {
            let sql = sql::delete_row(db, table, &entry.key_columns);
            db.execute(&sql, &entry.key).await?;
        }
        return Ok(None);
    };
    let image = match db.dialect() {
        Dialect::Sqlite => row::image_values(before, &table.writable_columns())?,
        Dialect::Postgres => vec![Value::Text(before.clone())],
    };
    if exists {
        let mut binds = image;
        binds.extend(entry.key.iter().cloned());
        let sql = sql::restore(db, table, &entry.key_columns);
        db.execute(&sql, &binds).await?;
    } else {
        let sql = sql::reinsert(db, table);
        db.execute(&sql, &image).await?;
    }
    current(db, table, entry).await
}
