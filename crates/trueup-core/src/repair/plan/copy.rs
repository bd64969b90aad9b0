//! `plan` of a `copy-from` rule: the rule's comparison run between its two sources, each
//! finding turned into a target on the repaired side (its key, the hash of its row there,
//! what to do, and the authoritative values to write), the statements shown for review.

use std::collections::HashMap;

use serde_json::Value as Json;

use super::file::{Line, PlanWriter, TargetLine};
use super::{RowCounts, RuleEnd, SAMPLE, finish_rule};
use crate::cancel::Cancel;
use crate::load::Project;
use crate::repair::copy::{self, AsyncChunk, Copy, Finding, Op};
use crate::repair::db::Db;
use crate::repair::row;
use crate::repair::spec::RuleRepair;
use crate::repair::sql;
use crate::source::Source;
use crate::value::Value;
use crate::{Error, Result};

/// Plans `rr`, a `copy-from` rule, as rule `index` of the plan `writer` writes.
pub(super) async fn plan_copy(
    project: &Project,
    db: &mut Db,
    rr: &RuleRepair,
    copy: &Copy,
    index: usize,
    writer: &mut PlanWriter<'_>,
    cancel: &Cancel,
) -> Result<(RuleEnd, Vec<Json>)> {
    let timeout = project.defaults.timeout.0;
    let open = |name: &str| {
        let spec = project
            .sources
            .get(name)
            .ok_or_else(|| Error::Other(format!("the project has no source `{name}`")));
        async move { Source::connect(spec?, &project.root, 2).await }
    };
    let left = open(&copy.left).await?;
    let right = open(&copy.right).await?;
    let from = match copy.authoritative {
        crate::rule::Authoritative::Left => &left,
        crate::rule::Authoritative::Right => &right,
    };
    let mut planner = Planner {
        db,
        rr,
        copy,
        from,
        writer,
        cancel,
        timeout,
        index,
        targets: 0,
        rows: RowCounts::new(),
        sample: Vec::new(),
    };
    let found = copy::findings(copy, &left, &right, timeout, &mut planner).await;
    let (targets, rows, sample) = (planner.targets, planner.rows, planner.sample);
    left.close().await;
    right.close().await;
    found?;
    finish_rule(db, rr, index, targets, rows, sample).await
}

/// The statements a `copy-from` batch runs, for review: the repaired rows read and locked,
/// the authoritative rows read again (on their own source, in its dialect), and the
/// `INSERT`, `UPDATE` (of every copied column; a target updates those that differ) and
/// `DELETE` of one row.
pub(super) fn statements(
    db: &Db,
    rr: &RuleRepair,
    copy: &Copy,
    from: crate::dialect::Dialect,
) -> Vec<String> {
    let key = vec![Value::Null; rr.key.len()];
    let values: serde_json::Map<String, Json> = copy
        .columns
        .iter()
        .map(|(_, _, to)| (to.clone(), Json::Null))
        .collect();
    let mut statements = vec![
        sql::read_rows(db, &rr.table, &rr.key, 1, true),
        copy.authority_query(from, 1).sql,
    ];
    for op in [Op::Insert, Op::Update, Op::Delete] {
        if let Ok((sql, _)) = copy::statement(db, rr, op, &key, &values) {
            statements.push(sql);
        }
    }
    statements
}

struct Planner<'a, 'w, 'p> {
    db: &'a mut Db,
    rr: &'a RuleRepair,
    copy: &'a Copy,
    from: &'a Source,
    writer: &'a mut PlanWriter<'w>,
    cancel: &'p Cancel,
    timeout: std::time::Duration,
    index: usize,
    targets: u64,
    rows: RowCounts,
    sample: Vec<Json>,
}

impl AsyncChunk for &mut Planner<'_, '_, '_> {
    async fn chunk(&mut self, findings: Vec<Finding>) -> Result<()> {
        if self.cancel.is_cancelled() {
            return Err(Error::Other("interrupted".into()));
        }
        let (db, rr, copy) = (&mut *self.db, self.rr, self.copy);
        // The repaired rows as they are: key (as the session reads it) → image.
        let keys: Vec<Vec<Value>> = findings
            .iter()
            .map(|f| copy::repaired_key(db, &f.key))
            .collect();
        let mut current: HashMap<String, String> = HashMap::new();
        let columns = rr.table.column_names();
        let binds: Vec<Value> = keys.iter().flatten().cloned().collect();
        let read = sql::read_rows(db, &rr.table, &rr.key, keys.len(), false);
        let dialect = db.dialect();
        let width = rr.key.len();
        db.each(&read, &binds, |values| {
            let (k, image) = values.split_at(width);
            current.insert(
                row::key_json(k).to_string(),
                row::image_text(dialect, &columns, image),
            );
            Ok(())
        })
        .await?;
        let wanted: Vec<Vec<Value>> = findings
            .iter()
            .filter(|f| f.op != Op::Delete)
            .map(|f| f.key.clone())
            .collect();
        let authority = copy::from_rows(copy, self.from, &wanted, self.timeout).await?;
        let table = rr.table.name.clone();
        for (finding, key) in findings.iter().zip(&keys) {
            let key_json = row::key_json(key);
            let hash = current
                .get(&key_json.to_string())
                .map(|image| row::image_hash(image));
            let values = match finding.op {
                Op::Delete => None,
                Op::Insert => authority
                    .get(&copy::key_text(&finding.key))
                    .map(|v| copy::values_json(copy, v, None)),
                Op::Update => authority
                    .get(&copy::key_text(&finding.key))
                    .map(|v| copy::values_json(copy, v, Some(&finding.columns))),
            };
            // A row gone from either side since the comparison is not planned.
            match (finding.op, &hash, &values) {
                (Op::Insert, _, None)
                | (Op::Update, _, None)
                | (Op::Update | Op::Delete, None, _) => {
                    continue;
                }
                _ => {}
            }
            let counts = self.rows.entry(table.clone()).or_default();
            match finding.op {
                Op::Insert => counts.insert += 1,
                Op::Update => counts.update += 1,
                Op::Delete => counts.delete += 1,
            }
            self.targets += 1;
            if self.sample.len() < SAMPLE {
                self.sample.push(key_json.clone());
            }
            self.writer.line(&Line::Target(TargetLine {
                r: self.index,
                key: key_json,
                hash: if finding.op == Op::Insert { None } else { hash },
                rows: Vec::new(),
                op: Some(finding.op.as_str().to_owned()),
                values,
            }))?;
        }
        Ok(())
    }
}
