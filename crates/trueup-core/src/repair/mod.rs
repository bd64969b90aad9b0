//! Repairs: a rule's findings turned into a reviewed plan, applied in transactions that
//! journal every row they touch and prove themselves, and undone row for row.
//!
//! `plan` reads only; `apply` and `undo` are the only code in trueup that opens a session
//! that may write ([`db::Access::ReadWrite`], or for Redis `evict`'s connection), and only
//! to run what a plan or a journal says.
//! See docs/design/repairs.md.

mod apply;
mod catalog;
mod copy;
mod db;
mod effects;
mod evict;
mod journal;
mod plan;
mod row;
mod spec;
mod sql;
mod undo;

pub use apply::{AppliedRule, ApplyOptions, ApplyProgress, ApplyReport, Skip, apply};
pub use effects::NewFindings;
pub use journal::RepairSummary;
pub use plan::{
    PlanFile, PlanSummary, PlannedRule, RowCounts, RuleEnd, RuleLine, TableCounts, plan, read,
};
pub use spec::Refusal;
pub use undo::{Conflict, UndoReport, find_source, undo};

use crate::Result;
use crate::load::Project;
use crate::store::{RepairRecord, Store};

/// Records repairs that ended in the project's state store; the error, as text, when the
/// store cannot take them (the repairs stand: their journals are in their databases).
async fn record(project: &Project, repairs: &[RepairRecord]) -> Option<String> {
    if repairs.is_empty() {
        return None;
    }
    let store = match Store::open_location(&project.state).await {
        Ok(store) => store,
        Err(e) => return Some(crate::error::chain(&e)),
    };
    let mut failed = None;
    for repair in repairs {
        if let Err(e) = store.record_repair(repair).await {
            failed.get_or_insert(crate::error::chain(&e));
        }
    }
    store.close().await;
    failed
}

/// The repairs in the journals of the project's sources (`source` only, when named),
/// newest first. A source that cannot be reached is reported as an error of its own.
pub async fn list(
    project: &Project,
    source: Option<&str>,
) -> Result<Vec<(String, Result<Vec<RepairSummary>>)>> {
    if let Some(source) = source
        && !project.sources.contains_key(source)
    {
        return Err(crate::Error::Selection(format!(
            "the project has no source `{source}`{}",
            crate::suggest::did_you_mean(source, project.sources.keys().map(String::as_str))
                .map(|hint| format!(" ({hint})"))
                .unwrap_or_default()
        )));
    }
    let mut all = Vec::new();
    for (name, spec) in &project.sources {
        if source.is_some_and(|s| s != name) {
            continue;
        }
        let listed = if evict::is_redis(spec) {
            evict::list(spec).await
        } else if !undo::is_sql(spec) {
            continue; // a source without a journal (Prometheus)
        } else {
            match db::Db::open(spec, &project.root, db::Access::ReadOnly).await {
                Ok(mut db) => journal::list(&mut db).await,
                Err(e) => Err(e),
            }
        };
        all.push((name.clone(), listed));
    }
    Ok(all)
}
