//! A rule's repair made concrete against its database: the table and key it changes, the
//! rows that depend on them, and the SQL of each step, or the reason it will not repair.

use serde::Serialize;

use super::catalog::{self, ForeignKey, OnDelete, Table};
use super::db::Db;
use crate::compile::{DetectorQuery, compile};
use crate::dialect::Dialect;
use crate::load::LoadedRule;
use crate::rule::{Detector, Losers, Repair};
use crate::{Error, Result};

/// Columns trueup adds to a quarantine table.
/// Columns trueup adds to a quarantine table: the repair (its journal id), the detection
/// run the plan came from (`plan --from-run`; NULL for a plan that detected by itself), the
/// rule, and when.
pub const QUARANTINE_COLUMNS: [&str; 4] = [
    "trueup_repair_id",
    "trueup_run_id",
    "trueup_rule_id",
    "trueup_quarantined_at",
];

/// What one rule's repair does, ready to plan and apply.
#[derive(Debug, Clone)]
pub struct RuleRepair {
    pub rule: String,
    /// A hash of the rule's detector, source and repair: a plan applies only to the rule it
    /// was made from.
    pub rule_hash: String,
    pub source: String,
    pub strategy: &'static str,
    /// The table whose rows the findings are.
    pub table: Table,
    /// The finding's key: columns of `table` that identify one row (for `merge-duplicates`,
    /// the duplicated columns, which identify a group).
    pub key: Vec<String>,
    pub action: Action,
    pub max_rows: Option<u64>,
    pub detector: DetectorQuery,
    /// Rows of other tables that change with the table's: referencing rows deleted first
    /// (declared `cascade`), or changed by the database (`ON DELETE CASCADE / SET NULL`).
    pub dependents: Vec<Dependent>,
    /// Foreign keys that make the database refuse to delete a referenced row (`NO ACTION`,
    /// `RESTRICT`) and that the rule does not `cascade`: a plan whose rows they reference
    /// is refused, naming them.
    pub blocking: Vec<ForeignKey>,
}

/// The change a strategy makes to the findings' rows.
#[derive(Debug, Clone)]
pub enum Action {
    Delete,
    Quarantine {
        into: String,
        /// Whether the quarantine table exists; the first batch creates it otherwise.
        exists: bool,
    },
    /// Columns set to expressions over the row.
    Update {
        set: Vec<(String, String)>,
    },
    /// Statements run once per finding: SQL with placeholders, and for each placeholder the
    /// index of the key column it binds.
    Sql {
        statements: Vec<(String, Vec<usize>)>,
    },
    /// A `reconcile` rule's other side made like its authoritative one (`copy-from`).
    Copy(Box<super::copy::Copy>),
    /// Duplicates merged into the first row by `keep`; `row_key` identifies one row.
    Merge {
        row_key: String,
        keep: String,
        filter: Option<String>,
        references: Vec<Reference>,
        /// The quarantine table the other rows move to; `None` deletes them.
        into: Option<String>,
        /// Whether that table exists; the first batch creates it otherwise.
        exists: bool,
    },
}

impl Action {
    /// The quarantine table rows move to (the `quarantine` strategy, or a merge's other
    /// rows), and whether it exists yet.
    pub fn quarantine(&self) -> Option<(&str, bool)> {
        match self {
            Action::Quarantine { into, exists } => Some((into, *exists)),
            Action::Merge {
                into: Some(into),
                exists,
                ..
            } => Some((into, *exists)),
            _ => None,
        }
    }

    /// A batch created the quarantine table.
    pub fn quarantine_created(&mut self) {
        if let Action::Quarantine { exists, .. } | Action::Merge { exists, .. } = self {
            *exists = true;
        }
    }
}

/// A column elsewhere that points at the merged table's rows.
#[derive(Debug, Clone)]
pub struct Reference {
    pub table: Table,
    pub column: String,
}

/// Rows of another table that reference the repaired rows.
#[derive(Debug, Clone)]
pub struct Dependent {
    pub table: Table,
    pub columns: Vec<String>,
    /// The repaired table's columns they reference.
    pub referenced: Vec<String>,
    /// Whether trueup deletes them itself (declared `cascade`), or the database changes
    /// them (a foreign key's `ON DELETE`).
    pub declared: bool,
}

/// Why a rule's repair will not run.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Refusal {
    pub rule: String,
    pub strategy: Option<String>,
    pub reason: String,
    /// Whether something went wrong (a database that cannot be reached, a query that
    /// failed) rather than the rule being one trueup does not repair: commands exit 2.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub error: bool,
}

impl Refusal {
    /// A rule that could not be planned because something failed.
    pub fn failed(loaded: &LoadedRule, reason: String) -> Refusal {
        Refusal {
            rule: loaded.rule.id.clone(),
            strategy: loaded.rule.repair.as_ref().map(|r| r.strategy().to_owned()),
            reason,
            error: true,
        }
    }
}

/// Why a rule is not repaired at all, known without its database: it has no repair, or a
/// `manual` one.
pub fn early_refusal(loaded: &LoadedRule) -> Option<Refusal> {
    let refusal = |strategy: Option<&str>, reason: String| Refusal {
        rule: loaded.rule.id.clone(),
        strategy: strategy.map(str::to_owned),
        reason,
        error: false,
    };
    match &loaded.rule.repair {
        None => Some(refusal(None, "the rule has no repair".to_owned())),
        Some(Repair::Manual(manual)) => {
            let what = manual
                .instructions
                .as_deref()
                .unwrap_or("a person must look");
            Some(refusal(Some("manual"), format!("manual: {what}")))
        }
        Some(_) => None,
    }
}

/// The rule's repair prepared against `db`, or why it is refused.
pub async fn prepare(
    db: &mut Db,
    loaded: &LoadedRule,
) -> Result<std::result::Result<RuleRepair, Refusal>> {
    let rule = &loaded.rule;
    let refuse = |strategy: Option<&'static str>, reason: String| {
        Ok(Err(Refusal {
            rule: rule.id.clone(),
            strategy: strategy.map(str::to_owned),
            reason,
            error: false,
        }))
    };
    if let Some(refusal) = early_refusal(loaded) {
        return Ok(Err(refusal));
    }
    let Some(repair) = &rule.repair else {
        return refuse(None, "the rule has no repair".to_owned());
    };
    let strategy = repair.strategy();
    let some = Some(strategy);
    if !loaded.refused.is_empty() {
        return refuse(
            some,
            "trueup refuses the rule's SQL (see `trueup validate`)".into(),
        );
    }
    let (table_name, key): (String, Vec<String>) = match (&rule.detector, repair.table()) {
        (Detector::Plugin(_), _) => {
            return refuse(
                some,
                "plugin findings cannot be re-detected in SQL, so trueup cannot verify a repair of them".into(),
            );
        }
        (Detector::Sql(_), None) => {
            return refuse(
                some,
                format!("`{strategy}` after a `sql` detector must name its `table`"),
            );
        }
        (Detector::Sql(d), Some(table)) => (table.to_owned(), d.key.clone()),
        (Detector::Unique(_), _) if matches!(repair, Repair::Sql(_)) => {
            return refuse(
                some,
                "a `sql` repair changes the finding's row, but `unique` findings are groups".into(),
            );
        }
        (Detector::NotNull(d), t) => (t.unwrap_or(&d.table).to_owned(), d.key.clone()),
        (Detector::ForeignKey(d), t) => (t.unwrap_or(&d.table).to_owned(), d.key.clone()),
        (Detector::AcceptedValues(d), t) => (t.unwrap_or(&d.table).to_owned(), d.key.clone()),
        (Detector::AggregateMatch(d), t) => (t.unwrap_or(&d.table).to_owned(), d.key.clone()),
        (Detector::Unique(d), _) => (d.table.clone(), d.columns.clone()),
        (Detector::RowCount(_) | Detector::Freshness(_), _) => {
            return refuse(some, "its findings are whole tables, not rows".into());
        }
        (Detector::Reconcile(d), _) => {
            if let Repair::CopyFrom(r) = repair {
                return prepare_copy(db, loaded, d, r).await;
            }
            return refuse(
                some,
                "`reconcile` findings are repaired by `copy-from` (or `manual`)".into(),
            );
        }
        (Detector::Promql(_), _) => {
            return refuse(
                some,
                "`promql` findings are series of a metrics server, not rows: only `manual`".into(),
            );
        }
        (Detector::CacheConsistency(_), _) => {
            return refuse(
                some,
                "`cache-consistency` findings are keys of a cache, not rows: `evict` or `manual`"
                    .into(),
            );
        }
    };
    let detector = match compile(&rule.detector, db.dialect()) {
        Ok(query) => query,
        Err(e) => return refuse(some, e),
    };
    let Some(table) = catalog::table(db, &table_name).await? else {
        return refuse(
            some,
            format!("source `{}` has no table `{table_name}`", db.source),
        );
    };
    if let Some(reason) = not_transactional(&table) {
        return refuse(some, reason);
    }
    if !table.triggers.is_empty() && !repair.allow_triggers() {
        return refuse(
            some,
            format!(
                "table `{table_name}` has triggers ({}), whose writes trueup cannot journal; \
                 set `allow-triggers = true` in the repair to repair it anyway",
                table.triggers.join(", ")
            ),
        );
    }
    if let Some(missing) = key.iter().find(|k| table.type_of(k).is_none()) {
        return refuse(
            some,
            format!("the finding's key column `{missing}` is not a column of `{table_name}`"),
        );
    }
    let row_strategy = !matches!(repair, Repair::MergeDuplicates(_));
    if table.keys.is_empty() {
        return refuse(
            some,
            format!(
                "table `{table_name}` has no primary key or unique key, so trueup cannot tell its rows apart"
            ),
        );
    }
    if row_strategy && !table.identifies(&key) {
        return refuse(
            some,
            format!(
                "the finding's key ({}) is not a primary or unique key of `{table_name}`",
                key.join(", ")
            ),
        );
    }
    let action = match repair {
        Repair::Delete(_) => Action::Delete,
        Repair::Quarantine(r) => {
            let into = r
                .into
                .clone()
                .unwrap_or_else(|| format!("{table_name}_quarantine"));
            let exists = catalog::table(db, &into).await?.is_some();
            Action::Quarantine { into, exists }
        }
        Repair::Update(r) => {
            if let Some(column) = r.set.keys().find(|c| key.contains(c)) {
                return refuse(
                    some,
                    format!("`set` changes `{column}`, which is the finding's key"),
                );
            }
            if let Some(column) = r.set.keys().find(|c| table.type_of(c).is_none()) {
                return refuse(
                    some,
                    format!("`set` names `{column}`, which `{table_name}` does not have"),
                );
            }
            Action::Update {
                set: r.set.iter().map(|(c, e)| (c.clone(), e.clone())).collect(),
            }
        }
        Repair::Recompute(_) => {
            let Detector::AggregateMatch(d) = &rule.detector else {
                return refuse(
                    some,
                    "`recompute` repairs `aggregate-match` findings".into(),
                );
            };
            Action::Update {
                set: vec![(d.column.clone(), expected(db.dialect(), d))],
            }
        }
        Repair::MergeDuplicates(r) => {
            let Detector::Unique(d) = &rule.detector else {
                return refuse(some, "`merge-duplicates` repairs `unique` findings".into());
            };
            let [row_key] = r.key.as_slice() else {
                return refuse(some, "`merge-duplicates` needs a key of one column".into());
            };
            if !table.identifies(std::slice::from_ref(row_key)) {
                return refuse(
                    some,
                    format!("`{row_key}` is not a primary or unique key of `{table_name}`"),
                );
            }
            let mut references = Vec::new();
            for reference in &r.references {
                let Some(referencing) = catalog::table(db, &reference.table).await? else {
                    return refuse(
                        some,
                        format!("source `{}` has no table `{}`", db.source, reference.table),
                    );
                };
                if referencing.type_of(&reference.column).is_none() {
                    return refuse(
                        some,
                        format!(
                            "table `{}` has no column `{}`",
                            reference.table, reference.column
                        ),
                    );
                }
                if referencing.key().is_none() {
                    return refuse(
                        some,
                        format!("table `{}` has no primary or unique key", reference.table),
                    );
                }
                if let Some(reason) = not_transactional(&referencing) {
                    return refuse(some, reason);
                }
                if !referencing.triggers.is_empty() && !repair.allow_triggers() {
                    return refuse(
                        some,
                        format!(
                            "table `{}` has triggers ({})",
                            reference.table,
                            referencing.triggers.join(", ")
                        ),
                    );
                }
                references.push(Reference {
                    table: referencing,
                    column: reference.column.clone(),
                });
            }
            // Every foreign key to the merged table must be one the rule re-points.
            if let Some(fk) = table.referenced_by.iter().find(|fk| {
                !r.references.iter().any(|declared| {
                    same_table(&declared.table, &fk.table)
                        && fk.columns == [declared.column.clone()]
                })
            }) {
                return refuse(
                    some,
                    format!(
                        "foreign key `{}` of `{}` ({}) references `{table_name}`, but the rule's `references` do not re-point it",
                        fk.name,
                        fk.table,
                        fk.columns.join(", ")
                    ),
                );
            }
            let into = match (r.losers, &r.into) {
                (Losers::Quarantine, into) => Some(
                    into.clone()
                        .unwrap_or_else(|| format!("{table_name}_quarantine")),
                ),
                (Losers::Delete, None) => None,
                (Losers::Delete, Some(_)) => {
                    return refuse(
                        some,
                        "`into` names a quarantine table, but `losers` is not \"quarantine\""
                            .into(),
                    );
                }
            };
            let exists = match &into {
                Some(into) => catalog::table(db, into).await?.is_some(),
                None => false,
            };
            Action::Merge {
                row_key: row_key.clone(),
                keep: r.keep.clone(),
                filter: d.filter.clone(),
                references,
                into,
                exists,
            }
        }
        Repair::Sql(r) => {
            let types = table.types_of(&key)?;
            let mut statements = Vec::new();
            for (i, text) in r.statements.iter().enumerate() {
                let mut columns = Vec::new();
                let bind = |n: usize, name: &str| {
                    let at = key.iter().position(|k| k == name)?;
                    columns.push(at);
                    Some(db.param(n, &types[at]))
                };
                match crate::sql_text::repair_statement(text, db.dialect(), &table_name, bind) {
                    Ok((sql, _)) => statements.push((sql, columns)),
                    Err(e) => return refuse(some, format!("statement {}: {e}", i + 1)),
                }
            }
            Action::Sql { statements }
        }
        Repair::Evict(_) => {
            return refuse(
                some,
                "`evict` deletes cache keys: it repairs `cache-consistency` findings only".into(),
            );
        }
        Repair::Manual(_) | Repair::CopyFrom(_) => unreachable!("refused above"),
    };
    let mut dependents = Vec::new();
    let mut blocking = Vec::new();
    let cascade = match repair {
        Repair::Delete(r) => Some(&r.cascade),
        Repair::Quarantine(r) => Some(&r.cascade),
        _ => None,
    };
    if let Some(cascade) = cascade {
        for declared in cascade {
            let Some(child) = catalog::table(db, &declared.table).await? else {
                return refuse(
                    some,
                    format!("source `{}` has no table `{}`", db.source, declared.table),
                );
            };
            let via = "declared in `cascade`";
            if let Some(reason) = deeper_problem(&child, via, repair.allow_triggers()) {
                return refuse(some, reason);
            }
            let Some(fk) = table.referenced_by.iter().find(|fk| {
                same_table(&declared.table, &fk.table) && fk.columns == [declared.column.clone()]
            }) else {
                // No foreign key: it references the finding's key.
                dependents.push(Dependent {
                    columns: vec![declared.column.clone()],
                    referenced: key.clone(),
                    table: child,
                    declared: true,
                });
                continue;
            };
            dependents.push(Dependent {
                columns: fk.columns.clone(),
                referenced: fk.referenced.clone(),
                table: child,
                declared: true,
            });
        }
        for fk in &table.referenced_by {
            if fk.on_delete == OnDelete::Refuse
                && !dependents
                    .iter()
                    .any(|d| same_table(&d.table.name, &fk.table) && d.columns == fk.columns)
            {
                blocking.push(fk.clone());
                continue;
            }
            if dependents
                .iter()
                .any(|d| same_table(&d.table.name, &fk.table) && d.columns == fk.columns)
            {
                continue;
            }
            match dependent(db, fk, repair.allow_triggers()).await? {
                Ok(Some(dependent)) => dependents.push(dependent),
                Ok(None) => {}
                Err(reason) => return refuse(some, reason),
            }
        }
        if let Some(child) = dependents.iter().find(|d| d.table.key().is_none()) {
            return refuse(
                some,
                format!(
                    "table `{}` references `{table_name}` but has no primary or unique key to journal its rows by",
                    child.table.name
                ),
            );
        }
    }
    Ok(Ok(RuleRepair {
        rule: rule.id.clone(),
        rule_hash: rule_hash(loaded),
        source: loaded.source.clone(),
        strategy,
        table,
        key,
        action,
        max_rows: repair.max_rows(),
        detector,
        dependents,
        blocking,
    }))
}

/// The source whose rows a rule's repair changes: a `copy-from` repair changes the side that
/// is not authoritative; every other repair the rule's own source.
pub fn repaired_source(loaded: &LoadedRule) -> &str {
    match (&loaded.rule.detector, &loaded.rule.repair) {
        (Detector::Reconcile(d), Some(Repair::CopyFrom(r)))
            if r.authoritative == crate::rule::Authoritative::Left =>
        {
            d.right.source.as_deref().unwrap_or(&loaded.source)
        }
        _ => &loaded.source,
    }
}

/// A `copy-from` repair prepared against the repaired side's database `db`: its table,
/// whose key (the rule's, by that side's names) must identify a row, and the columns it
/// copies.
async fn prepare_copy(
    db: &mut Db,
    loaded: &LoadedRule,
    d: &crate::rule::ReconcileDetector,
    r: &crate::rule::CopyFromRepair,
) -> Result<std::result::Result<RuleRepair, Refusal>> {
    use crate::rule::Authoritative;
    let refuse = |reason: String| {
        Ok(Err(Refusal {
            rule: loaded.rule.id.clone(),
            strategy: Some("copy-from".to_owned()),
            reason,
            error: false,
        }))
    };
    let right = d
        .right
        .source
        .clone()
        .unwrap_or_else(|| loaded.source.clone());
    let (repaired, side, from) = match r.authoritative {
        Authoritative::Left => (&d.right, crate::compile::Side::Right, loaded.source.clone()),
        Authoritative::Right => (&d.left, crate::compile::Side::Left, right.clone()),
    };
    let name_on = |repaired_side: bool, column: &str| -> String {
        let right_side = (r.authoritative == Authoritative::Left) == repaired_side;
        if right_side {
            d.right_name(column).to_owned()
        } else {
            column.to_owned()
        }
    };
    let Some(table_name) = repaired.table.clone() else {
        return refuse(
            "`copy-from` changes the side that is not `authoritative`, which must name a `table`"
                .into(),
        );
    };
    let Some(table) = catalog::table(db, &table_name).await? else {
        return refuse(format!(
            "source `{}` has no table `{table_name}`",
            db.source
        ));
    };
    if let Some(reason) = not_transactional(&table) {
        return refuse(reason);
    }
    if !table.triggers.is_empty() && !r.allow_triggers {
        return refuse(format!(
            "table `{table_name}` has triggers ({}), whose writes trueup cannot journal; set \
             `allow-triggers = true` in the repair to repair it anyway",
            table.triggers.join(", ")
        ));
    }
    let key: Vec<String> = d.key.iter().map(|k| name_on(true, k)).collect();
    if let Some(missing) = key.iter().find(|k| table.type_of(k).is_none()) {
        return refuse(format!(
            "the key column `{missing}` is not a column of `{table_name}`"
        ));
    }
    if !table.identifies(&key) {
        return refuse(format!(
            "the key ({}) is not a primary or unique key of `{table_name}`",
            key.join(", ")
        ));
    }
    let columns: Vec<(String, String, String)> = d
        .columns
        .iter()
        .map(|c| (c.clone(), name_on(false, c), name_on(true, c)))
        .collect();
    if let Some((_, _, missing)) = columns.iter().find(|(_, _, c)| table.type_of(c).is_none()) {
        return refuse(format!("`{table_name}` has no column `{missing}`"));
    }
    let compare = crate::reconcile::compared_columns(d);
    let copy = super::copy::Copy {
        detector: d.clone(),
        authoritative: r.authoritative,
        on_extra: r.on_extra,
        from,
        left: loaded.source.clone(),
        right,
        from_key: d.key.iter().map(|k| name_on(false, k)).collect(),
        columns,
        compare,
    };
    Ok(Ok(RuleRepair {
        rule: loaded.rule.id.clone(),
        rule_hash: rule_hash(loaded),
        source: repaired_source(loaded).to_owned(),
        strategy: "copy-from",
        detector: crate::compile::reconcile_side(d, side, db.dialect(), None, None),
        table,
        key,
        action: Action::Copy(Box::new(copy)),
        max_rows: r.max_rows,
        dependents: Vec::new(),
        blocking: Vec::new(),
    }))
}

/// The rows a foreign key makes the database change when referenced rows are deleted;
/// refused when the database would refuse the delete, checked per batch by the database.
async fn dependent(
    db: &mut Db,
    fk: &ForeignKey,
    allow_triggers: bool,
) -> Result<std::result::Result<Option<Dependent>, String>> {
    if fk.on_delete == OnDelete::Refuse {
        // The database refuses the delete of a referenced row; rows nothing references
        // delete fine, so this is for the batch to find out, with the constraint named.
        return Ok(Ok(None));
    }
    let Some(child) = catalog::table(db, &fk.table).await? else {
        return Ok(Err(format!(
            "foreign key `{}`: no table `{}`",
            fk.name, fk.table
        )));
    };
    let via = format!("cascaded from foreign key `{}`", fk.name);
    if let Some(reason) = deeper_problem(&child, &via, allow_triggers) {
        return Ok(Err(reason));
    }
    Ok(Ok(Some(Dependent {
        table: child,
        columns: fk.columns.clone(),
        referenced: fk.referenced.clone(),
        declared: false,
    })))
}

/// Why deleting rows of `child` (a table whose rows go with the repaired ones, `via` says
/// how) would change rows trueup does not journal: a cascade of its own, or triggers.
fn deeper_problem(child: &Table, via: &str, allow_triggers: bool) -> Option<String> {
    if let Some(reason) = not_transactional(child) {
        return Some(reason);
    }
    if let Some(deeper) = child
        .referenced_by
        .iter()
        .find(|deeper| deeper.on_delete != OnDelete::Refuse)
    {
        return Some(format!(
            "table `{}` ({via}) has a cascading foreign key of its own (`{}` of `{}`), whose \
             rows trueup does not journal yet",
            child.name, deeper.name, deeper.table
        ));
    }
    (!child.triggers.is_empty() && !allow_triggers).then(|| {
        format!(
            "table `{}` ({via}) has triggers ({}), whose writes trueup cannot journal; set \
             `allow-triggers = true` in the repair to repair it anyway",
            child.name,
            child.triggers.join(", ")
        )
    })
}

/// Why a MySQL table cannot take part in a repair: its engine does not roll back, so a batch
/// that fails would leave its part done.
fn not_transactional(table: &Table) -> Option<String> {
    table.not_transactional.as_ref().map(|what| {
        format!(
            "table `{}` is {what}, which cannot roll back a transaction: trueup repairs only \
             InnoDB tables on MySQL",
            table.name
        )
    })
}

fn same_table(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || b.trim_matches(['"', '`']).eq_ignore_ascii_case(a)
}

/// The aggregate an `aggregate-match` compares its column with, as an expression over the
/// parent row `t`.
fn expected(dialect: Dialect, d: &crate::rule::AggregateMatchDetector) -> String {
    use crate::rule::{Aggregate, MissingChildren};
    let function = match d.aggregate {
        Aggregate::Sum => "SUM",
        Aggregate::Count => "COUNT",
        Aggregate::Min => "MIN",
        Aggregate::Max => "MAX",
    };
    let on = d
        .child_key
        .iter()
        .zip(&d.key)
        .map(|(c, k)| format!("c.{} = t.{}", dialect.quote(c), dialect.quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let child_where = d
        .child_where
        .as_deref()
        .map(|w| format!(" AND (\n{}\n)", w.trim()))
        .unwrap_or_default();
    let aggregate = format!(
        "(SELECT {function}((\n{}\n)) FROM {} AS c WHERE {on}{child_where})",
        d.expression.trim(),
        dialect.quote(&d.child_table)
    );
    match d.missing_children {
        MissingChildren::Zero => format!("COALESCE({aggregate}, 0)"),
        MissingChildren::Skip | MissingChildren::Violation => aggregate,
    }
}

/// A hash of what the rule finds and how it repairs, to tell a plan's rule from a changed one.
/// The project's rule a plan's rule line names, unchanged since the plan, and its source.
pub fn planned<'p>(
    project: &'p crate::load::Project,
    line: &super::plan::RuleLine,
) -> Result<(&'p LoadedRule, &'p crate::load::SourceSpec)> {
    let Some(loaded) = project.rules.iter().find(|r| r.rule.id == line.rule) else {
        return Err(mismatch(format!(
            "the plan repairs rule `{}`, which this project does not have: is the plan from another project?",
            line.rule
        )));
    };
    if rule_hash(loaded) != line.rule_hash {
        return Err(mismatch(format!(
            "rule `{}` changed since the plan was made: make a new plan",
            line.rule
        )));
    }
    let Some(source) = project.sources.get(&line.source) else {
        return Err(mismatch(format!(
            "the plan's source `{}` is not in this project",
            line.source
        )));
    };
    Ok((loaded, source))
}

pub fn rule_hash(loaded: &LoadedRule) -> String {
    let rule = &loaded.rule;
    let definition =
        serde_json::to_string(&(&rule.detector, &loaded.source, &rule.repair)).unwrap_or_default();
    format!(
        "{:016x}",
        crate::fingerprint::Fnv::default()
            .field(&definition)
            .finish()
    )
}

impl RuleRepair {
    /// The types of the finding's key columns.
    pub fn key_types(&self) -> Result<Vec<String>> {
        self.table.types_of(&self.key)
    }
}

/// An error for a plan that does not fit the project or the database.
pub fn mismatch(message: impl Into<String>) -> Error {
    Error::Mismatch(message.into())
}
