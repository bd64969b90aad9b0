//! A batch of `copy-from`: the repaired rows locked and compared with the plan, the
//! authoritative rows read again and compared with the plan's values, the rows inserted,
//! updated or deleted, journaled, and the copied columns compared again with the
//! authoritative values (by the rule's own tolerance and precision) before the commit.

use super::batch::{Images, entry, read_images};
use super::{AppliedRule, RuleRun, Skip, skip};
use crate::repair::copy::{self, Op};
use crate::repair::db::Db;
use crate::repair::journal::{self, Change, Entry};
use crate::repair::plan::TargetLine;
use crate::repair::row;
use crate::repair::spec::Action;
use crate::value::Value;
use crate::{Error, Result};

/// A target to apply: what to do, its line, its key, the values to write.
type Todo<'t> = (
    Op,
    &'t TargetLine,
    Vec<Value>,
    serde_json::Map<String, serde_json::Value>,
);

/// How long a read of the authoritative side may take.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

pub(super) async fn copy_batch(
    db: &mut Db,
    run: &RuleRun,
    batch: &[TargetLine],
    plan_hash: &str,
    entries: &mut Vec<Entry>,
    report: &mut AppliedRule,
) -> Result<()> {
    let rr = &run.rr;
    let Action::Copy(copy) = &rr.action else {
        return Ok(());
    };
    let Some(from) = &run.from else {
        return Err(Error::Other(
            "copy-from without its authoritative source; this is a bug".into(),
        ));
    };
    let keys: Vec<Vec<Value>> = batch
        .iter()
        .map(|t| row::key_values(&t.key))
        .collect::<Result<_>>()?;
    let current = read_images(db, &rr.table, &rr.key, &keys, true).await?;
    // The authoritative rows now, for the targets that copy values.
    let wanted: Vec<Vec<Value>> = batch
        .iter()
        .zip(&keys)
        .filter(|(t, _)| t.op.as_deref() != Some("delete"))
        .map(|(_, k)| k.clone())
        .collect();
    let authority = copy::from_rows(copy, from, &wanted, READ_TIMEOUT).await?;
    let mut todo: Vec<Todo<'_>> = Vec::new();
    let mut unsure = Vec::new();
    for (target, key) in batch.iter().zip(&keys) {
        let op = Op::parse(target.op.as_deref())?;
        let text = target.key.to_string();
        let now = current.get(&text).map(|(_, image)| row::image_hash(image));
        let as_planned = match op {
            Op::Insert => now.is_none(),
            Op::Update | Op::Delete => now.is_some() && now == target.hash,
        };
        if !as_planned {
            unsure.push((text, target, now));
            continue;
        }
        let planned = match &target.values {
            Some(serde_json::Value::Object(values)) => values.clone(),
            _ => serde_json::Map::new(),
        };
        if op != Op::Delete {
            // The values the plan copies must be the authoritative side's still.
            let fresh = authority
                .get(&copy::key_text(key))
                .map(|values| copy::values_json(copy, values, None));
            let unchanged = fresh.as_ref().is_some_and(|fresh| {
                planned
                    .iter()
                    .all(|(column, value)| fresh.get(column) == Some(value))
            });
            if !unchanged {
                skip(report, Skip::SourceChanged, &target.key);
                continue;
            }
        }
        todo.push((op, target, key.clone(), planned));
    }
    if !unsure.is_empty() {
        let rows: Vec<(String, Option<String>)> = unsure
            .iter()
            .map(|(t, _, now)| (t.clone(), now.clone()))
            .collect();
        let ours = journal::left_as_is(db, plan_hash, &rr.table.name, &rows).await?;
        for ((_, target, now), ours) in unsure.into_iter().zip(ours) {
            let why = match (ours.is_some(), now) {
                (true, _) => Skip::AlreadyApplied,
                (false, None) => Skip::Gone,
                (false, Some(_)) => Skip::Changed,
            };
            skip(report, why, &target.key);
        }
    }
    if todo.is_empty() {
        return Ok(());
    }

    // The change, row by row: each statement must touch its one row.
    for (op, target, key, values) in &todo {
        let (sql, binds) = copy::statement(db, rr, *op, key, values)?;
        let changed = db.execute(&sql, &binds).await?;
        if changed != 1 {
            return Err(Error::Mismatch(format!(
                "rule `{}`: the {} of {} touched {changed} rows of `{}`: rolled back",
                rr.rule,
                op.as_str(),
                target.key,
                rr.table.name
            )));
        }
    }

    // What the change left, journaled with what was there before.
    let todo_keys: Vec<Vec<Value>> = todo.iter().map(|(_, _, k, _)| k.clone()).collect();
    let after: Images = read_images(db, &rr.table, &rr.key, &todo_keys, false).await?;
    for (op, target, key, _) in &todo {
        let text = target.key.to_string();
        match op {
            Op::Insert => entries.push(Entry {
                rule: rr.rule.clone(),
                table: rr.table.name.clone(),
                key_columns: rr.key.clone(),
                key: key.clone(),
                change: Change::Insert,
                before: None,
                after_hash: after.get(&text).map(|(_, image)| row::image_hash(image)),
            }),
            Op::Update | Op::Delete => {
                let (_, image) = &current[&text];
                entries.push(entry(
                    rr,
                    &rr.table.name,
                    &rr.key,
                    key,
                    image,
                    after.get(&text),
                ));
            }
        }
    }

    // The proof: the copied rows now hold the authoritative values, as the rule compares
    // them (its tolerance and precision); the deleted ones are gone.
    let copied: Vec<String> = copy.columns.iter().map(|(_, _, to)| to.clone()).collect();
    let mut read: Vec<String> = rr.key.iter().map(|k| db.read("t", k)).collect();
    read.extend(copied.iter().map(|c| db.read("t", c)));
    let types = rr.table.types_of(&rr.key)?;
    let sql = format!(
        "SELECT {} FROM {} AS t WHERE {}",
        read.join(", "),
        db.dialect().quote(&rr.table.name),
        crate::repair::sql::key_in(db, "t", &rr.key, &types, todo_keys.len(), 1)
    );
    let binds: Vec<Value> = todo_keys.iter().flatten().cloned().collect();
    let width = rr.key.len();
    let mut now = std::collections::HashMap::new();
    for values in db.rows(&sql, &binds).await? {
        let (k, rest) = values.split_at(width);
        now.insert(row::key_json(k).to_string(), rest.to_vec());
    }
    for (op, target, key, _) in &todo {
        let ok = match (op, now.get(&target.key.to_string())) {
            (Op::Delete, found) => found.is_none(),
            (_, None) => false,
            (_, Some(values)) => {
                let authoritative = &authority[&copy::key_text(key)];
                copy.compare.iter().enumerate().all(|(i, compare)| {
                    crate::reconcile::same(&authoritative[i], &values[i], compare)
                })
            }
        };
        if !ok {
            return Err(Error::Mismatch(format!(
                "rule `{}`: after the {} of {} the row still differs from the authoritative \
                 side: rolled back",
                rr.rule,
                op.as_str(),
                target.key
            )));
        }
    }
    report.repaired += todo.len() as u64;
    Ok(())
}
