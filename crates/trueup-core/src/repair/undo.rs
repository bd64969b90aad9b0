//! `undo`: puts back what a repair journaled, batch by batch from the last, each batch one
//! transaction. A row changed since the repair is a conflict: the undo stops unless forced.
//! The undo is journaled like a repair, so it can be undone too.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::catalog::{self, Table};
use super::db::{Access, Db, Engine};
use super::journal::{self, Batch, Change, Entry, NewRepair};
use super::row;
use super::sql;
use crate::cancel::Cancel;
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
    /// Evicted cache keys whose expiry passed since the eviction: not restored, as they
    /// would have expired by now.
    #[serde(skip_serializing_if = "is_zero")]
    pub expired: u64,
    /// Whether the undo can itself be undone (not the undo of an eviction).
    pub undoable: bool,
    /// Rows changed since the repair (at most a sample); non-empty means the undo stopped
    /// there, unless it was forced.
    pub conflicts: Vec<Conflict>,
    pub forced: bool,
    pub interrupted: bool,
    /// Whether every batch was restored.
    pub complete: bool,
    /// Why the state store did not record the undo, if it did not (it stands).
    pub store_error: Option<String>,
}

const SAMPLE: usize = 20;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

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
        let listed = if super::evict::is_redis(spec) {
            super::evict::has(spec, id).await
        } else if !is_sql(spec) {
            continue; // a source without a journal (Prometheus)
        } else {
            match Db::open(spec, &project.root, Access::ReadOnly).await {
                Ok(mut db) => journal::find(&mut db, id).await.map(|r| r.is_some()),
                Err(e) => Err(e),
            }
        };
        match listed {
            Ok(true) => found.push(name.clone()),
            Ok(false) => {}
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

/// Whether a source is a SQL database (one that can hold a journal of rows).
pub(super) fn is_sql(spec: &crate::load::SourceSpec) -> bool {
    matches!(spec.kind(), Ok(crate::dialect::SourceKind::Sql(_)))
}

/// Undoes repair `id` of `source`, and records the undo in the project's state store.
pub async fn undo(
    project: &Project,
    source: &str,
    id: i64,
    force: bool,
    cancel: &Cancel,
) -> Result<UndoReport> {
    let started = crate::time::now_millis();
    let (mut report, status, plan_hash, rules) = if super::evict::is_redis(&project.sources[source])
    {
        super::evict::undo(project, source, id, force, cancel).await?
    } else {
        restore_repair(project, source, id, force, cancel).await?
    };
    if report.restored > 0 {
        let record = crate::store::RepairRecord {
            source: source.to_owned(),
            journal_id: report.undo,
            kind: "undo".to_owned(),
            undoes: Some(id),
            plan_hash,
            run_id: None,
            rules,
            started_at: started,
            finished_at: crate::time::now_millis(),
            status: status.to_owned(),
            rows: i64::try_from(report.restored).unwrap_or(i64::MAX),
        };
        report.store_error = super::record(project, &[record]).await;
    }
    Ok(report)
}

/// What [`undo`] does in the source: its report, how it ended, the plan and rules.
async fn restore_repair(
    project: &Project,
    source: &str,
    id: i64,
    force: bool,
    cancel: &Cancel,
) -> Result<(UndoReport, &'static str, String, Vec<String>)> {
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
    let batches: Vec<Batch> = journal::batches(&mut db, id)
        .await?
        .into_iter()
        .filter(|b| !restored.contains(&b.number))
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
        expired: 0,
        undoable: true,
        conflicts: Vec::new(),
        forced: force,
        interrupted: false,
        complete: false,
        store_error: None,
    };
    let mut tables: HashMap<String, Table> = HashMap::new();
    let mut seq = 0;
    for batch in batches {
        if cancel.is_cancelled() {
            report.interrupted = true;
            break;
        }
        db.begin().await?;
        match undo_batch(&mut db, id, &batch, force, &mut tables, &mut report).await {
            Ok(entries) if report.conflicts.is_empty() || force => {
                // Numbered as the batch it restores, so that a later undo skips it.
                journal::write(&mut db, undo, batch.number, &mut seq, &entries).await?;
                db.commit().await?;
            }
            Ok(_) => {
                db.rollback().await?;
                journal::finish_repair(&mut db, undo, "refused").await?;
                return Ok((report, "refused", original.plan_hash, original.rules));
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
    let status = if report.complete {
        "complete"
    } else {
        "stopped"
    };
    Ok((report, status, original.plan_hash, original.rules))
}

/// Most rows one statement reads or restores (PostgreSQL binds at most 65535 values).
const ROWS_PER_STATEMENT: usize = 500;

async fn undo_batch(
    db: &mut Db,
    repair: i64,
    batch: &Batch,
    force: bool,
    tables: &mut HashMap<String, Table>,
    report: &mut UndoReport,
) -> Result<Vec<Entry>> {
    let entries = journal::entries(db, repair, batch).await?;
    let mut undone = Vec::with_capacity(entries.len());
    for run in runs(&entries) {
        let name = &run[0].table;
        if !tables.contains_key(name) {
            let Some(table) = catalog::table(db, name).await? else {
                return Err(Error::Mismatch(format!(
                    "table `{name}` of the journal is gone: nothing was restored of this batch"
                )));
            };
            tables.insert(name.clone(), table);
        }
        undo_run(db, &tables[name], run, force, report, &mut undone).await?;
    }
    Ok(undone)
}

/// The entries of a batch cut into runs that are restored together: consecutive entries of
/// one table, key columns and change, each row at most once, at most
/// [`ROWS_PER_STATEMENT`]. Taken in the journal's order (last first), the runs bring parents
/// back before their children, and a row journaled twice back to its first image.
fn runs(entries: &[Entry]) -> Vec<&[Entry]> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut keys = HashSet::new();
    for (i, entry) in entries.iter().enumerate() {
        let key = row::key_json(&entry.key).to_string();
        let first = &entries[start];
        let same = entry.table == first.table
            && entry.key_columns == first.key_columns
            && entry.change == first.change;
        if i > start && (!same || keys.contains(&key) || i - start == ROWS_PER_STATEMENT) {
            runs.push(&entries[start..i]);
            start = i;
            keys.clear();
        }
        keys.insert(key);
    }
    if start < entries.len() {
        runs.push(&entries[start..]);
    }
    runs
}

/// Restores `run`, entries of one table and key columns (at most [`ROWS_PER_STATEMENT`]):
/// reads their rows as they are now in one query (locking them on PostgreSQL), refuses the
/// ones changed since the repair unless `force`, puts the others back (on PostgreSQL one
/// statement per kind of change), reads what that left, and adds the undo's own entries to
/// `undone`.
async fn undo_run(
    db: &mut Db,
    table: &Table,
    run: &[Entry],
    force: bool,
    report: &mut UndoReport,
    undone: &mut Vec<Entry>,
) -> Result<()> {
    let key_columns = &run[0].key_columns;
    let keys: Vec<&[Value]> = run.iter().map(|e| e.key.as_slice()).collect();
    let mut now = images(db, table, key_columns, &keys, true).await?;
    let mut todo = Vec::with_capacity(run.len());
    for entry in run {
        let key = row::key_json(&entry.key).to_string();
        let image = now.remove(&key);
        let conflict = match (entry.change, &image) {
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
        todo.push((entry, key, image));
    }
    if todo.is_empty() {
        return Ok(());
    }
    match db.engine() {
        Engine::Postgres => restore_all(db, table, key_columns, &todo).await?,
        Engine::Mysql => restore_mysql(db, table, key_columns, &todo).await?,
        Engine::Sqlite => {
            for (entry, _, image) in &todo {
                restore(db, table, entry, image.is_some()).await?;
            }
        }
    }
    let keys: Vec<&[Value]> = todo.iter().map(|(e, _, _)| e.key.as_slice()).collect();
    let after = images(db, table, key_columns, &keys, false).await?;
    for (entry, key, before) in todo {
        let restored = after.get(&key);
        report.restored += 1;
        undone.push(Entry {
            rule: entry.rule.clone(),
            table: entry.table.clone(),
            key_columns: entry.key_columns.clone(),
            key: entry.key.clone(),
            change: match (&before, restored) {
                (Some(_), Some(_)) => Change::Update,
                (None, Some(_)) => Change::Insert,
                (_, None) => Change::Delete,
            },
            before,
            after_hash: restored.map(|image| row::image_hash(image)),
        });
    }
    Ok(())
}

/// The rows of `table` with `keys` as they are now (locked on PostgreSQL when `lock`):
/// key as JSON text → image.
async fn images(
    db: &mut Db,
    table: &Table,
    key_columns: &[String],
    keys: &[&[Value]],
    lock: bool,
) -> Result<HashMap<String, String>> {
    let dialect = db.dialect();
    let columns = table.column_names();
    let binds: Vec<Value> = keys.iter().flat_map(|k| k.iter().cloned()).collect();
    let sql = sql::read_rows(db, table, key_columns, keys.len(), lock);
    let mut found = HashMap::with_capacity(keys.len());
    db.each(&sql, &binds, |values| {
        let (key, image) = values.split_at(key_columns.len());
        found.insert(
            row::key_json(key).to_string(),
            row::image_text(dialect, &columns, image),
        );
        Ok(())
    })
    .await?;
    Ok(found)
}

/// Puts back, on PostgreSQL, the before-images of `todo` (entry, key, whether its row exists
/// now): one `UPDATE` of the rows that exist, one `INSERT` of those that do not, one
/// `DELETE` of the rows the repair inserted; each must touch exactly its rows.
async fn restore_all(
    db: &mut Db,
    table: &Table,
    key_columns: &[String],
    todo: &[(&Entry, String, Option<String>)],
) -> Result<()> {
    let mut update = Vec::new();
    let mut insert = Vec::new();
    let mut delete = Vec::new();
    for (entry, _, now) in todo {
        match (&entry.before, now.is_some()) {
            (Some(before), true) => update.push(before.as_str()),
            (Some(before), false) => insert.push(before.as_str()),
            (None, true) => delete.extend(entry.key.iter().cloned()),
            (None, false) => {}
        }
    }
    let recordset = |images: &[&str]| Value::Text(format!("[{}]", images.join(",")));
    let t = db.dialect().quote(&table.name);
    let writable = table.writable_columns();
    let quoted = |alias: &str, columns: &[String]| {
        columns
            .iter()
            .map(|c| format!("{alias}{}", db.dialect().quote(c)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rows = format!("jsonb_populate_recordset(CAST(NULL AS {t}), CAST($1 AS jsonb)) AS r");
    let mut statements = Vec::new();
    if !update.is_empty() {
        let set = writable
            .iter()
            .map(|c| {
                let c = db.dialect().quote(c);
                format!("{c} = r.{c}")
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE {t} AS t SET {set} FROM {rows} WHERE ({}) = ({})",
            quoted("t.", key_columns),
            quoted("r.", key_columns),
        );
        statements.push((sql, vec![recordset(&update)], update.len()));
    }
    if !insert.is_empty() {
        let sql = format!(
            "INSERT INTO {t} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {rows}",
            quoted("", &writable),
            quoted("r.", &writable),
        );
        statements.push((sql, vec![recordset(&insert)], insert.len()));
    }
    if !delete.is_empty() {
        let n = delete.len() / key_columns.len().max(1);
        statements.push((sql::delete_rows(db, table, key_columns, n), delete, n));
    }
    run_restores(db, table, statements).await
}

/// Runs restoring statements (SQL, values, the rows it must touch); one that touches
/// another number fails the batch. (trueup's MySQL sessions count the rows an UPDATE
/// found, `CLIENT_FOUND_ROWS` as sqlx connects, not only those it changed.)
async fn run_restores(
    db: &mut Db,
    table: &Table,
    statements: Vec<(String, Vec<Value>, usize)>,
) -> Result<()> {
    for (sql, binds, expected) in statements {
        let changed = db.execute(&sql, &binds).await?;
        if changed != expected as u64 {
            return Err(Error::Mismatch(format!(
                "restoring {expected} rows of `{}` touched {changed}: nothing was restored of this batch",
                table.name
            )));
        }
    }
    Ok(())
}

/// Most values one MySQL statement binds (it takes at most 65535).
const MYSQL_BINDS: usize = 60_000;

/// Puts back, on MySQL, the before-images of `todo` (entry, key, whether its row exists
/// now) as bound values: the rows that exist in `UPDATE … JOIN` statements, those that do
/// not in multi-row `INSERT`s, the rows the repair inserted in one `DELETE`; each must
/// touch exactly its rows.
async fn restore_mysql(
    db: &mut Db,
    table: &Table,
    key_columns: &[String],
    todo: &[(&Entry, String, Option<String>)],
) -> Result<()> {
    let writable = table.writable_columns();
    let mut update = Vec::new();
    let mut insert = Vec::new();
    let mut delete = Vec::new();
    for (entry, _, now) in todo {
        match (&entry.before, now.is_some()) {
            (Some(before), true) => update.push(row::image_values(before, &writable)?),
            (Some(before), false) => insert.push(row::image_values(before, &writable)?),
            (None, true) => delete.push(entry.key.clone()),
            (None, false) => {}
        }
    }
    let per_statement = (MYSQL_BINDS / writable.len().max(1)).clamp(1, ROWS_PER_STATEMENT);
    let mut statements = Vec::new();
    for chunk in update.chunks(per_statement) {
        let sql = sql::mysql_restore(db, table, key_columns, chunk.len());
        statements.push((sql, chunk.concat(), chunk.len()));
    }
    for chunk in insert.chunks(per_statement) {
        statements.push((
            sql::mysql_reinsert(db, table, chunk.len()),
            chunk.concat(),
            chunk.len(),
        ));
    }
    if !delete.is_empty() {
        let sql = sql::delete_rows(db, table, key_columns, delete.len());
        statements.push((sql, delete.concat(), delete.len()));
    }
    run_restores(db, table, statements).await
}

/// Puts `entry`'s before-image back, on SQLite (or removes the row it inserted).
async fn restore(db: &mut Db, table: &Table, entry: &Entry, exists: bool) -> Result<()> {
    let Some(before) = &entry.before else {
        // An inserted row (a quarantine copy): remove it.
        if exists {
            let sql = sql::delete_rows(db, table, &entry.key_columns, 1);
            db.execute(&sql, &entry.key).await?;
        }
        return Ok(());
    };
    let image = row::image_values(before, &table.writable_columns())?;
    if exists {
        let mut binds = image;
        binds.extend(entry.key.iter().cloned());
        let sql = sql::restore(db, table, &entry.key_columns);
        db.execute(&sql, &binds).await?;
    } else {
        let sql = sql::reinsert(db, table);
        db.execute(&sql, &image).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(table: &str, key: i64, change: Change) -> Entry {
        Entry {
            rule: "r".into(),
            table: table.into(),
            key_columns: vec!["id".into()],
            key: vec![Value::Int(key)],
            change,
            before: None,
            after_hash: None,
        }
    }

    fn lengths(entries: &[Entry]) -> Vec<usize> {
        runs(entries).iter().map(|run| run.len()).collect()
    }

    #[test]
    fn runs_cut_at_each_table_change_and_repeated_row_in_journal_order() {
        let entries = [
            entry("orders", 1, Change::Update),
            entry("orders", 2, Change::Update),
            entry("items", 1, Change::Update),
            entry("items", 2, Change::Delete),
            entry("items", 3, Change::Delete),
            // The same row again: its first image must come back after this one.
            entry("items", 2, Change::Delete),
            entry("orders", 3, Change::Update),
        ];
        assert_eq!(lengths(&entries), [2, 1, 2, 1, 1]);
        let keys: Vec<Vec<Value>> = runs(&entries)
            .iter()
            .flat_map(|run| run.iter().map(|e| e.key.clone()))
            .collect();
        let order: Vec<Vec<Value>> = entries.iter().map(|e| e.key.clone()).collect();
        assert_eq!(keys, order);
        assert!(lengths(&[]).is_empty());
    }

    #[test]
    fn runs_hold_at_most_one_statements_rows() {
        let entries: Vec<Entry> = (0..1_201)
            .map(|k| entry("orders", k, Change::Update))
            .collect();
        assert_eq!(lengths(&entries), [500, 500, 201]);
    }
}
