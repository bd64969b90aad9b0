//! `plan`: what a repair would do, written as a plan file `apply` takes (see [`file`]),
//! streamed rule by rule in constant memory, with each table's counts of rows lost, gained
//! and changed, and the rules it refuses with the reason.

mod copy;
mod file;

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

pub use self::file::{
    End, FORMAT, Header, PlanFile, RowCounts, RuleEnd, RuleLine, TableCounts, TargetLine, read,
    targets,
};
pub(in crate::repair) use self::file::{Line, PlanWriter};

use super::db::{Access, Db};
use super::row;
use super::spec::{self, Action, Refusal, RuleRepair};
use super::sql;
use crate::cancel::Cancel;
use crate::check::Selection;
use crate::load::Project;
use crate::rule::{Detector, Repair};
use crate::value::Value;
use crate::{Error, Result};

/// What `plan` found, for people: per rule its line and counts, the first keys, refusals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlanSummary {
    pub rules: Vec<PlannedRule>,
    pub refused: Vec<Refusal>,
    /// The plan file's hash (its `end` line's `sha256`).
    pub plan_hash: String,
    pub interrupted: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedRule {
    pub line: RuleLine,
    pub end: RuleEnd,
    /// The first keys, as JSON.
    pub sample: Vec<Json>,
}

impl PlanSummary {
    /// Whether a rule could not be planned because something failed (exit 2).
    pub fn failed(&self) -> bool {
        self.refused.iter().any(|r| r.error)
    }
}

/// How many keys a summary keeps per rule.
const SAMPLE: usize = 10;

/// Plans the repairs of the selected rules, writing the plan file to `out`. Reads only:
/// every session it opens is read-only. With `from_run` (a run as `show` takes it), the
/// targets are that recorded run's findings whose rows still exist, not what the detector
/// finds now; `apply` re-detects either way.
pub async fn plan(
    project: &Project,
    selection: &Selection,
    from_run: Option<&str>,
    cancel: &Cancel,
    out: &mut dyn Write,
) -> Result<PlanSummary> {
    let rules = selection.select(project)?;
    let store = match from_run {
        Some(_) => Some(crate::store::Store::open_read_only(&project.state).await?),
        None => None,
    };
    let run = match (&store, from_run) {
        (Some(store), Some(selector)) => Some(store.resolve(selector).await?),
        _ => None,
    };
    let from = match (&store, run) {
        (Some(store), Some(run)) => TargetSource::Run(store, run),
        _ => TargetSource::Detector,
    };
    let mut writer = PlanWriter {
        out,
        hash: Sha256::new(),
    };
    let header = Header {
        trueup_plan: FORMAT,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: crate::time::iso8601(crate::time::now_millis()),
        selection: selection.describe(),
        from_run: run,
    };
    let text = serde_json::to_string(&header).map_err(|e| Error::Other(e.to_string()))? + "\n";
    writer.hash.update(text.as_bytes());
    writer.out.write_all(text.as_bytes())?;

    let mut summary = PlanSummary::default();
    let mut dbs: BTreeMap<String, std::result::Result<Db, String>> = BTreeMap::new();
    let mut spares: BTreeMap<String, Db> = BTreeMap::new();
    let mut total = 0;
    for loaded in rules {
        if cancel.is_cancelled() {
            summary.interrupted = true;
            break;
        }
        // Rules of a source that is not SQL: `evict` plans cache keys; the rest is refused
        // before anything is opened (no repair, `manual`).
        if !matches!(
            project.sources[&loaded.source].kind(),
            Ok(crate::dialect::SourceKind::Sql(_))
        ) {
            let planned = match (&loaded.rule.detector, &loaded.rule.repair) {
                (Detector::CacheConsistency(d), Some(Repair::Evict(repair)))
                    if from.is_detector() =>
                {
                    let index = summary.rules.len();
                    super::evict::plan_rule(
                        project,
                        loaded,
                        (d, repair),
                        index,
                        &mut writer,
                        cancel,
                    )
                    .await
                }
                (Detector::CacheConsistency(_), Some(Repair::Evict(_))) => Err(Refusal {
                    rule: loaded.rule.id.clone(),
                    strategy: Some("evict".to_owned()),
                    reason: "`evict` plans the keys the detector finds now, not a recorded run's: \
                             plan without --from-run"
                        .to_owned(),
                    error: false,
                }),
                _ => Err(spec::early_refusal(loaded).unwrap_or_else(|| Refusal {
                    rule: loaded.rule.id.clone(),
                    strategy: loaded.rule.repair.as_ref().map(|r| r.strategy().to_owned()),
                    reason: "its findings are not rows of a SQL database".to_owned(),
                    error: false,
                })),
            };
            match planned {
                Ok((line, end, sample)) => {
                    writer.line(&Line::RuleEnd(end.clone()))?;
                    total += end.targets;
                    summary.rules.push(PlannedRule { line, end, sample });
                }
                Err(refusal) => {
                    writer.line(&Line::Refused(refusal.clone()))?;
                    summary.refused.push(refusal);
                }
            }
            continue;
        }
        // The source the repair changes (a `copy-from` changes its other side).
        let source = spec::repaired_source(loaded).to_owned();
        let db = match dbs.get_mut(&source) {
            Some(db) => db,
            None => {
                let opened = match project.sources.get(&source) {
                    Some(spec) => Db::open(spec, &project.root, Access::ReadOnly)
                        .await
                        .map_err(|e| crate::error::chain(&e)),
                    None => Err(format!("the project has no source `{source}`")),
                };
                dbs.entry(source.clone()).or_insert(opened)
            }
        };
        let db = match db {
            Ok(db) => db,
            Err(e) => {
                let refusal = Refusal::failed(loaded, e.clone());
                writer.line(&Line::Refused(refusal.clone()))?;
                summary.refused.push(refusal);
                continue;
            }
        };
        let rr = match spec::prepare(db, loaded).await {
            Ok(Ok(rr)) => rr,
            Ok(Err(refusal)) => {
                writer.line(&Line::Refused(refusal.clone()))?;
                summary.refused.push(refusal);
                continue;
            }
            Err(e) => {
                let refusal = Refusal::failed(loaded, crate::error::chain(&e));
                writer.line(&Line::Refused(refusal.clone()))?;
                summary.refused.push(refusal);
                continue;
            }
        };
        let index = summary.rules.len();
        let mut line = rule_line(db, &rr, index);
        if let Action::Copy(c) = &rr.action
            && let Some(Ok(dialect)) = project.sources.get(&c.from).map(|s| s.dialect())
        {
            line.statements = copy::statements(db, &rr, c, dialect);
        }
        line.may_affect = super::effects::watchers(project, &rr, db.dialect())
            .into_iter()
            .map(|w| w.rule)
            .collect();
        writer.line(&Line::Rule(line.clone()))?;
        // A second session for a rule whose targets are read in two key ranges at once.
        let spare = match (&from, &rr.detector.split, db.dialect()) {
            (TargetSource::Detector, Some(_), crate::dialect::Dialect::Postgres) => {
                if !spares.contains_key(&loaded.source) {
                    let spec = &project.sources[&loaded.source];
                    // Without it the rule is planned in one range: no error.
                    if let Ok(spare) = Db::open(spec, &project.root, Access::ReadOnly).await {
                        spares.insert(loaded.source.clone(), spare);
                    }
                }
                spares.get_mut(&loaded.source)
            }
            _ => None,
        };
        let planned = match &rr.action {
            Action::Copy(c) => {
                copy::plan_copy(project, db, &rr, c, index, &mut writer, cancel).await
            }
            _ => plan_rule(db, spare, &rr, index, &mut writer, cancel, &from).await,
        };
        let (end, sample) = match planned {
            Ok(done) => done,
            Err(e) => (
                RuleEnd {
                    index,
                    targets: 0,
                    rows: RowCounts::new(),
                    refused: Some(crate::error::chain(&e)),
                    over_max_rows: None,
                },
                Vec::new(),
            ),
        };
        writer.line(&Line::RuleEnd(end.clone()))?;
        total += end.targets;
        summary.rules.push(PlannedRule { line, end, sample });
    }
    summary.interrupted |= cancel.is_cancelled();
    let hash = crate::value::hex(&std::mem::take(&mut writer.hash).finalize());
    writer.line(&Line::End(End {
        rules: summary.rules.len(),
        targets: total,
        sha256: hash.clone(),
    }))?;
    writer.out.flush()?;
    summary.plan_hash = hash;
    Ok(summary)
}

fn rule_line(db: &Db, rr: &RuleRepair, index: usize) -> RuleLine {
    let mut statements: Vec<String> = match &rr.action {
        Action::Merge {
            row_key,
            references,
            into,
            ..
        } => {
            let mut s = vec![sql::group_rows(db, rr, 1, true)];
            for reference in references {
                s.push(sql::repoint(db, reference, 1));
            }
            if let Some(into) = into {
                s.push(sql::quarantine_rows(
                    db,
                    rr,
                    into,
                    std::slice::from_ref(row_key),
                    1,
                ));
            }
            s.push(sql::delete_losers(db, rr, row_key, 1));
            s
        }
        _ => {
            let mut s = vec![sql::read_rows(db, &rr.table, &rr.key, 1, true)];
            s.extend(
                rr.dependents
                    .iter()
                    .filter(|d| d.declared)
                    .map(|d| sql::delete_dependent(db, rr, d, 1)),
            );
            s.extend(sql::change(db, rr, 1));
            s
        }
    };
    statements.push(sql::redetect(
        db,
        rr,
        &rr.key_types().unwrap_or_default(),
        1,
        rr.detector.split.is_some(),
    ));
    RuleLine {
        index,
        rule: rr.rule.clone(),
        rule_hash: rr.rule_hash.clone(),
        source: rr.source.clone(),
        database: db.display_url.clone(),
        strategy: rr.strategy.to_owned(),
        table: rr.table.name.clone(),
        key: rr.key.clone(),
        columns: rr.table.columns.clone(),
        statements,
        max_rows: rr.max_rows,
        may_affect: Vec::new(),
    }
}

/// Turns the rows of a targets query into the plan's target lines, counting them: a row
/// is a target, or (for a merge) a row of the group its first columns name; a group of one
/// row is no duplicate and no target.
struct TargetWriter<'a, 'w> {
    writer: &'a mut PlanWriter<'w>,
    dialect: crate::dialect::Dialect,
    columns: Vec<String>,
    width: usize,
    merge: bool,
    index: usize,
    targets: u64,
    rows_in_groups: u64,
    sample: Vec<Json>,
    group: Option<TargetLine>,
}

impl TargetWriter<'_, '_> {
    /// A writer of the same rule's targets into `writer`, nothing counted yet.
    fn beside<'b, 'v>(&self, writer: &'b mut PlanWriter<'v>) -> TargetWriter<'b, 'v> {
        TargetWriter {
            writer,
            dialect: self.dialect,
            columns: self.columns.clone(),
            width: self.width,
            merge: self.merge,
            index: self.index,
            targets: 0,
            rows_in_groups: 0,
            sample: Vec::new(),
            group: None,
        }
    }

    fn row(&mut self, values: &[Value]) -> Result<()> {
        let width = self.width;
        let key = row::key_json(&values[..width]);
        if !self.merge {
            let image = row::image_text(self.dialect, &self.columns, &values[width..]);
            return self.target(TargetLine {
                r: self.index,
                key,
                hash: Some(row::image_hash(&image)),
                rows: Vec::new(),
                op: None,
                values: None,
            });
        }
        let row_key = row::key_json(&values[width..=width]);
        let image = row::image_text(self.dialect, &self.columns, &values[width + 1..]);
        let hash = row::image_hash(&image);
        if let Some(current) = &mut self.group
            && current.key == key
        {
            current.rows.push((row_key, hash));
            return Ok(());
        }
        self.flush()?;
        self.group = Some(TargetLine {
            r: self.index,
            key,
            hash: None,
            rows: vec![(row_key, hash)],
            op: None,
            values: None,
        });
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        match self.group.take() {
            Some(group) if group.rows.len() > 1 => {
                self.rows_in_groups += group.rows.len() as u64;
                self.target(group)
            }
            _ => Ok(()),
        }
    }

    fn target(&mut self, target: TargetLine) -> Result<()> {
        self.targets += 1;
        if self.sample.len() < SAMPLE {
            self.sample.push(target.key.clone());
        }
        self.writer.line(&Line::Target(target))
    }
}

/// Where a plan's targets come from: the detector now, or a recorded run's findings.
pub enum TargetSource<'s> {
    Detector,
    Run(&'s crate::store::Store, crate::store::RunId),
}

impl TargetSource<'_> {
    fn is_detector(&self) -> bool {
        matches!(self, TargetSource::Detector)
    }
}

/// How many recorded findings are looked up in one query.
const LOOKUP: usize = 500;

/// Runs a targets query as `check` runs the detector: with the detector's settings
/// (`postgres-settings`, a built-in's join choice) in a read-only transaction they end
/// with. Each row goes to `row`.
async fn detect(
    db: &mut Db,
    rr: &RuleRepair,
    (query, halved): (&str, bool),
    binds: &[Value],
    cancel: &Cancel,
    mut row: impl FnMut(&[Value]) -> Result<()>,
) -> Result<()> {
    let mut settings = rr.detector.settings.clone();
    if halved {
        // Each half is one core's work already: a parallel plan of it makes every worker
        // aggregate the whole range again (PostgreSQL 15 does not share a GroupAggregate).
        settings.push(("max_parallel_workers_per_gather".to_owned(), "0".to_owned()));
    }
    let set = !settings.is_empty() && db.dialect() == crate::dialect::Dialect::Postgres;
    if set {
        db.batch("BEGIN READ ONLY").await?;
        let assignments: Vec<String> = (0..settings.len())
            .map(|i| format!("set_config(${}, ${}, true)", 2 * i + 1, 2 * i + 2))
            .collect();
        let binds: Vec<Value> = settings
            .iter()
            .flat_map(|(name, value)| [Value::Text(name.clone()), Value::Text(value.clone())])
            .collect();
        db.rows(
            &format!("SELECT CAST(concat({}) AS TEXT)", assignments.join(", ")),
            &binds,
        )
        .await?;
    }
    let streamed = db
        .each(query, binds, |values| {
            if cancel.is_cancelled() {
                return Err(Error::Other("interrupted".into()));
            }
            row(&values)
        })
        .await;
    if set {
        db.batch("ROLLBACK").await?;
    }
    streamed
}

/// Whether a rule's targets are read in two key ranges at once: with a second session
/// (PostgreSQL), a detector with a key-range form, a row strategy (a merge's groups are
/// not cut by key) and at least two keys. Then the spare session, the range form and the
/// ranges' bounds `(lo, mid, hi)`: `lo..=mid` and `mid + 1..=hi`.
async fn halves<'s, 'r>(
    db: &mut Db,
    spare: Option<&'s mut Db>,
    rr: &'r RuleRepair,
) -> Result<Option<(&'s mut Db, &'r str, (i64, i64, i64))>> {
    let (Some(spare), Some(split)) = (spare, rr.detector.split.as_ref()) else {
        return Ok(None);
    };
    if matches!(rr.action, Action::Merge { .. }) {
        return Ok(None);
    }
    // Repairs read PostgreSQL's values as text.
    let bounds = db
        .rows(
            &format!(
                "SELECT CAST(b.lo AS TEXT), CAST(b.hi AS TEXT) FROM (\n{}\n) AS b (lo, hi)",
                split.bounds_sql
            ),
            &[],
        )
        .await?;
    let int = |v: Option<&Value>| match v {
        Some(Value::Int(i)) => Some(*i),
        Some(Value::Text(t)) => t.parse().ok(),
        _ => None,
    };
    let Some((lo, hi)) = bounds
        .first()
        .and_then(|row| Some((int(row.first())?, int(row.get(1))?)))
    else {
        return Ok(None);
    };
    let ranges = crate::engine::key_ranges(lo, hi, 2);
    let [(lo, mid), (_, hi)] = ranges.as_slice() else {
        return Ok(None);
    };
    Ok(Some((spare, &split.range_sql, (*lo, *mid, *hi))))
}

/// Streams one rule's targets into the plan; returns its counts and first keys.
async fn plan_rule(
    db: &mut Db,
    spare: Option<&mut Db>,
    rr: &RuleRepair,
    index: usize,
    writer: &mut PlanWriter<'_>,
    cancel: &Cancel,
    from: &TargetSource<'_>,
) -> Result<(RuleEnd, Vec<Json>)> {
    let mut out = TargetWriter {
        writer,
        dialect: db.dialect(),
        columns: rr.table.column_names(),
        width: rr.key.len(),
        merge: matches!(rr.action, Action::Merge { .. }),
        index,
        targets: 0,
        rows_in_groups: 0,
        sample: Vec::new(),
        group: None,
    };
    match from {
        TargetSource::Detector => match halves(db, spare, rr).await? {
            // Two key ranges at once on two sessions: the first streams into the plan, the
            // second into a spool file appended after it (the plan stays in key order, and
            // memory stays flat).
            Some((spare, range_sql, (lo, mid, hi))) => {
                let query = sql::targets_in_range(db, rr, range_sql);
                let bound = |from: i64, to: i64| {
                    let mut binds = rr.detector.binds.clone();
                    binds.extend([Value::Int(from), Value::Int(to)]);
                    binds
                };
                let mut spooled = tempfile::tempfile()?;
                let mut file = std::io::BufWriter::new(&mut spooled);
                let mut spool_writer = PlanWriter {
                    out: &mut file,
                    hash: Sha256::new(),
                };
                let mut spool = out.beside(&mut spool_writer);
                let (low, high) = (bound(lo, mid), bound(mid + 1, hi));
                let (first, second) = tokio::join!(
                    detect(db, rr, (&query, true), &low, cancel, |values| out
                        .row(values)),
                    detect(spare, rr, (&query, true), &high, cancel, |values| spool
                        .row(values)),
                );
                first?;
                second?;
                let (targets, sample) = (spool.targets, spool.sample);
                file.flush()?;
                drop(file);
                std::io::Seek::rewind(&mut spooled)?;
                out.writer.append(std::io::BufReader::new(spooled))?;
                out.targets += targets;
                let room = SAMPLE.saturating_sub(out.sample.len());
                out.sample.extend(sample.into_iter().take(room));
            }
            None => {
                let query = sql::targets(db, rr);
                detect(
                    db,
                    rr,
                    (&query, false),
                    &rr.detector.binds,
                    cancel,
                    |values| out.row(values),
                )
                .await?;
            }
        },
        TargetSource::Run(store, run) => {
            use futures_util::TryStreamExt;
            let mut findings = store.stream_rule_findings(*run, &rr.rule);
            let mut keys: Vec<Vec<Value>> = Vec::new();
            loop {
                let next = findings.try_next().await?;
                if let Some(finding) = &next {
                    keys.push(
                        rr.key
                            .iter()
                            .map(|k| stored_value(finding.key.get(k)))
                            .collect(),
                    );
                }
                if keys.len() >= LOOKUP || (next.is_none() && !keys.is_empty()) {
                    if cancel.is_cancelled() {
                        return Err(Error::Other("interrupted".into()));
                    }
                    let sql = match rr.action {
                        Action::Merge { .. } => sql::group_rows(db, rr, keys.len(), false),
                        _ => sql::read_rows(db, &rr.table, &rr.key, keys.len(), false),
                    };
                    let binds: Vec<Value> = keys.drain(..).flatten().collect();
                    db.each(&sql, &binds, |values| out.row(&values)).await?;
                }
                if next.is_none() {
                    break;
                }
            }
        }
    }
    out.flush()?;
    let (targets, rows_in_groups, sample) = (out.targets, out.rows_in_groups, out.sample);
    let mut rows = RowCounts::new();
    let table = rr.table.name.clone();
    match &rr.action {
        Action::Delete => rows.entry(table).or_default().delete += targets,
        Action::Quarantine { into, .. } => {
            rows.entry(table).or_default().delete += targets;
            rows.entry(into.clone()).or_default().insert += targets;
        }
        Action::Update { .. } | Action::Sql { .. } => {
            rows.entry(table).or_default().update += targets;
        }
        Action::Merge {
            references, into, ..
        } => {
            let losers = rows_in_groups - targets;
            rows.entry(table).or_default().delete += losers;
            if let Some(into) = into {
                rows.entry(into.clone()).or_default().insert += losers;
            }
            for reference in references {
                let count = count_referencing(db, rr, reference).await?;
                rows.entry(reference.table.name.clone()).or_default().update += count;
            }
        }
        // Planned by `copy::plan`, which counts its own.
        Action::Copy(_) => {}
    }
    finish_rule(db, rr, index, targets, rows, sample).await
}

/// A rule's end line from its targets and counts: the rows its dependents add, and the
/// refusal when a blocking foreign key references the rows or the rows pass `max-rows`.
async fn finish_rule(
    db: &mut Db,
    rr: &RuleRepair,
    index: usize,
    targets: u64,
    mut rows: RowCounts,
    sample: Vec<Json>,
) -> Result<(RuleEnd, Vec<Json>)> {
    let mut refused = None;
    for fk in &rr.blocking {
        let count = count_referencing_rows(db, rr, &fk.table, &fk.columns, &fk.referenced).await?;
        if count > 0 && refused.is_none() {
            refused = Some(format!(
                "foreign key `{}` of `{}` ({}) references {count} of the rows to delete, and the \
                 database refuses to delete them: declare `{}` in the repair's `cascade`, or \
                 repair those rows first",
                fk.name,
                fk.table,
                fk.columns.join(", "),
                fk.table
            ));
        }
    }
    for dependent in &rr.dependents {
        let count = count_referencing_rows(
            db,
            rr,
            &dependent.table.name,
            &dependent.columns,
            &dependent.referenced,
        )
        .await?;
        let counts = rows.entry(dependent.table.name.clone()).or_default();
        let set_null = !dependent.declared
            && rr.table.referenced_by.iter().any(|fk| {
                fk.columns == dependent.columns && fk.on_delete == super::catalog::OnDelete::Set
            });
        if set_null {
            counts.update += count;
        } else {
            counts.delete += count;
        }
    }
    let total: u64 = rows.values().map(TableCounts::total).sum();
    let over_max_rows =
        (refused.is_none() && rr.max_rows.is_some_and(|max| total > max)).then_some(total);
    let refused = refused.or_else(|| {
        rr.max_rows.filter(|max| total > *max).map(|max| {
            format!(
                "it would change {total} rows, more than its `max-rows` ({max}); \
                 `apply --max-rows {total} --yes` allows it"
            )
        })
    });
    Ok((
        RuleEnd {
            index,
            targets,
            rows,
            refused,
            over_max_rows,
        },
        sample,
    ))
}

/// Rows of `table` whose `columns` reference (`referenced` columns of) the findings' rows.
async fn count_referencing_rows(
    db: &mut Db,
    rr: &RuleRepair,
    table: &str,
    columns: &[String],
    referenced: &[String],
) -> Result<u64> {
    let q = |n: &str| db.dialect().quote(n);
    let cols = |alias: &str, names: &[String]| {
        names
            .iter()
            .map(|c| format!("{alias}.{}", q(c)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sql = format!(
        "SELECT {} FROM {} AS c WHERE ({}) IN (SELECT {} FROM {} AS p WHERE ({}) IN (SELECT {} FROM (\n{}\n) AS d))",
        db.text("count(*)"),
        q(table),
        cols("c", columns),
        cols("p", referenced),
        q(&rr.table.name),
        cols("p", &rr.key),
        cols("d", &rr.key),
        rr.detector.sql,
    );
    count(db, &sql, &rr.detector.binds).await
}

/// A value of a recorded finding's key, as repairs bind it.
fn stored_value(json: Option<&Json>) -> Value {
    match json {
        Some(Json::Bool(b)) => Value::Bool(*b),
        Some(Json::Number(n)) => n
            .as_i64()
            .map_or_else(|| Value::Float(n.as_f64().unwrap_or_default()), Value::Int),
        Some(Json::String(s)) => Value::Text(s.clone()),
        _ => Value::Null,
    }
}

/// Rows that point at a merge's losers (every row of a group but the survivor).
async fn count_referencing(
    db: &mut Db,
    rr: &RuleRepair,
    reference: &spec::Reference,
) -> Result<u64> {
    let Action::Merge {
        row_key,
        keep,
        filter,
        ..
    } = &rr.action
    else {
        return Ok(0);
    };
    let q = |n: &str| db.dialect().quote(n);
    let group = rr
        .key
        .iter()
        .map(|c| format!("t.{}", q(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let d_group = rr
        .key
        .iter()
        .map(|c| format!("d.{}", q(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {} FROM {} AS r WHERE r.{} IN (\
           SELECT m.k FROM (SELECT t.{} AS k, ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY {}) AS n \
                            FROM {} AS t WHERE ({group}) IN (SELECT {d_group} FROM (\n{}\n) AS d){}) AS m \
           WHERE m.n > 1)",
        db.text("count(*)"),
        q(&reference.table.name),
        q(&reference.column),
        q(row_key),
        keep.trim(),
        q(&rr.table.name),
        rr.detector.sql,
        filter
            .as_deref()
            .map(|f| format!(" AND (\n{}\n)", f.trim()))
            .unwrap_or_default(),
    );
    count(db, &sql, &rr.detector.binds).await
}

async fn count(db: &mut Db, sql: &str, binds: &[Value]) -> Result<u64> {
    let rows = db.rows(sql, binds).await?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.to_string().parse().ok())
        .unwrap_or(0))
}
