//! Cross-rule effects: the project's other rules that read a table a repair changes, and the
//! findings a batch gives them. Recomputing an order's total can make its payment differ;
//! `apply` runs those rules before and after each batch's change, inside the batch's
//! transaction, and compares their findings in the database (`EXCEPT`), so trueup holds
//! none of them in memory.

use serde::Serialize;

use super::db::{Db, Engine};
use super::spec::{Action, RuleRepair};
use crate::compile::{DetectorQuery, compile};
use crate::dialect::Dialect;
use crate::load::Project;
use crate::rule::Detector;
use crate::{Error, Result};

/// Another rule a repair may give findings to.
#[derive(Debug, Clone)]
pub struct Watcher {
    pub rule: String,
    /// The table of the repair it reads.
    pub reads: String,
    detector: DetectorQuery,
}

/// New findings of another rule, after a batch.
#[derive(Debug, Clone, Serialize)]
pub struct NewFindings {
    pub rule: String,
    pub count: u64,
    /// A few of their keys.
    pub sample: Vec<serde_json::Value>,
}

/// How many keys of new findings are kept for a message.
const SAMPLE: usize = 5;

/// The tables `rr` changes rows of.
fn changed_tables(rr: &RuleRepair) -> Vec<String> {
    let mut tables = vec![rr.table.name.clone()];
    tables.extend(rr.dependents.iter().map(|d| d.table.name.clone()));
    if let Some((into, _)) = rr.action.quarantine() {
        tables.push(into.to_owned());
    }
    if let Action::Merge { references, .. } = &rr.action {
        tables.extend(references.iter().map(|r| r.table.name.clone()));
    }
    tables
}

/// The project's other rules on `rr`'s source that read a table `rr` changes. Plugin rules
/// are left out: their findings are not SQL that can run inside the batch.
pub fn watchers(project: &Project, rr: &RuleRepair, dialect: Dialect) -> Vec<Watcher> {
    let changed = changed_tables(rr);
    project
        .rules
        .iter()
        .filter(|loaded| loaded.rule.id != rr.rule && loaded.source == rr.source)
        .filter(|loaded| loaded.refused.is_empty())
        .filter_map(|loaded| {
            let reads: Vec<String> = match &loaded.rule.detector {
                Detector::Plugin(_) => return None,
                Detector::Sql(d) => crate::sql_text::relations(&d.query, dialect),
                other => other
                    .table_uses()
                    .iter()
                    .map(|u| u.table.to_owned())
                    .collect(),
            };
            let read = reads
                .into_iter()
                .find(|t| changed.iter().any(|c| c.eq_ignore_ascii_case(t)))?;
            let detector = compile(&loaded.rule.detector, dialect).ok()?;
            Some(Watcher {
                rule: loaded.rule.id.clone(),
                reads: read,
                detector,
            })
        })
        .collect()
}

/// The temporary table of watcher `i`, named in the session's temporary schema only: an
/// unqualified name could reach a table of the user's of the same name. MySQL has no such
/// schema: a temporary table hides a table of the same name from its session, and trueup
/// drops it with `DROP TEMPORARY TABLE`, which touches no other.
fn before_table(db: &Db, i: usize) -> String {
    match db.engine() {
        Engine::Sqlite => format!("temp.trueup_before_{i}"),
        Engine::Postgres => format!("pg_temp.trueup_before_{i}"),
        Engine::Mysql => format!("trueup_before_{i}"),
    }
}

fn drop_before(db: &Db, i: usize) -> String {
    match db.engine() {
        Engine::Mysql => format!("DROP TEMPORARY TABLE IF EXISTS {}", before_table(db, i)),
        Engine::Sqlite | Engine::Postgres => {
            format!("DROP TABLE IF EXISTS {}", before_table(db, i))
        }
    }
}

fn keys(db: &Db, watcher: &Watcher) -> String {
    watcher
        .detector
        .key
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{} AS \"trueup_c{i}\"", db.read("d", k)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Records the watchers' findings as they are before the batch's change, in temporary
/// tables of the batch's transaction.
pub async fn before(db: &mut Db, watchers: &[Watcher]) -> Result<()> {
    for (i, watcher) in watchers.iter().enumerate() {
        let table = before_table(db, i);
        db.batch(&drop_before(db, i)).await?;
        let sql = match db.engine() {
            // `CREATE TEMPORARY TABLE … AS SELECT` keeps the keys' types and collations, and
            // commits nothing (a temporary table is no DDL to MySQL's transactions).
            Engine::Mysql => format!(
                "CREATE TEMPORARY TABLE {table} AS SELECT {} FROM (\n{}\n) AS d",
                keys(db, watcher),
                watcher.detector.sql
            ),
            Engine::Sqlite | Engine::Postgres => {
                let columns = (0..watcher.detector.key.len())
                    .map(|c| match db.engine() {
                        Engine::Postgres => format!("c{c} TEXT"),
                        _ => format!("c{c}"),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                db.batch(&format!("CREATE TEMP TABLE trueup_before_{i} ({columns})"))
                    .await?;
                format!(
                    "INSERT INTO {table} SELECT {} FROM (\n{}\n) AS d",
                    keys(db, watcher),
                    watcher.detector.sql
                )
            }
        };
        db.execute(&sql, &watcher.detector.binds)
            .await
            .map_err(|e| context(watcher, e))?;
    }
    Ok(())
}

fn context(watcher: &Watcher, e: Error) -> Error {
    Error::Context {
        context: format!(
            "running rule `{}` (it reads `{}`) to see what the batch does to its findings",
            watcher.rule, watcher.reads
        ),
        source: Box::new(e),
    }
}

/// The findings each watcher has after the change that it had not before.
pub async fn after(db: &mut Db, watchers: &[Watcher]) -> Result<Vec<NewFindings>> {
    let mut all = Vec::new();
    for (i, watcher) in watchers.iter().enumerate() {
        let table = before_table(db, i);
        let sql = format!(
            "SELECT {} FROM (\n{}\n) AS d EXCEPT SELECT * FROM {table}",
            keys(db, watcher),
            watcher.detector.sql
        );
        let mut found = NewFindings {
            rule: watcher.rule.clone(),
            count: 0,
            sample: Vec::new(),
        };
        db.each(&sql, &watcher.detector.binds, |row| {
            found.count += 1;
            if found.sample.len() < SAMPLE {
                found.sample.push(super::row::key_json(&row));
            }
            Ok(())
        })
        .await
        .map_err(|e| context(watcher, e))?;
        db.batch(&drop_before(db, i)).await?;
        if found.count > 0 {
            all.push(found);
        }
    }
    Ok(all)
}
