//! `copy-from`: a `reconcile` rule repaired by making the side that is not `authoritative`
//! like the one that is. Its findings become targets on the repaired side's table: a row
//! it misses is inserted, compared columns that differ are updated, a row only it has is
//! deleted (unless `on-extra = "keep"`). Each target carries the authoritative values as
//! the plan read them; `apply` reads that side again and skips a target whose values
//! changed since, as it skips a repaired row that changed. See docs/design/reconcile.md.

use std::io::{BufRead, Seek, Write};
use std::time::Duration;

use serde_json::Value as Json;

use super::db::Db;
use super::row;
use crate::compile::DetectorQuery;
use crate::dialect::Dialect;
use crate::reconcile::Column;
use crate::rule::{Authoritative, OnExtra, ReconcileDetector};
use crate::source::{RowSink, Source};
use crate::value::Value;
use crate::{Error, Result};

/// A prepared `copy-from` repair, beside the repaired table and key of its rule.
#[derive(Debug, Clone)]
pub struct Copy {
    pub detector: ReconcileDetector,
    pub authoritative: Authoritative,
    pub on_extra: OnExtra,
    /// The authoritative side's source.
    pub from: String,
    /// The sources of the rule's left and right sides.
    pub left: String,
    pub right: String,
    /// The key, by the authoritative side's names.
    pub from_key: Vec<String>,
    /// Compared columns: their left name, the authoritative side's and the repaired side's.
    pub columns: Vec<(String, String, String)>,
    /// How the rule compares each column (tolerance, precision), in the order of `columns`.
    pub compare: Vec<Column>,
}

/// What a target does to the repaired table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }

    pub fn parse(text: Option<&str>) -> Result<Op> {
        match text {
            Some("insert") => Ok(Op::Insert),
            Some("update") => Ok(Op::Update),
            Some("delete") => Ok(Op::Delete),
            other => Err(Error::Other(format!(
                "a copy-from target without a known `op` ({other:?}): is the plan from another trueup?"
            ))),
        }
    }
}

impl Copy {
    /// The compared column of left name `left`.
    fn by_left(&self, left: &str) -> Option<&(String, String, String)> {
        self.columns.iter().find(|(l, _, _)| l == left)
    }

    /// The difference of a finding that the repaired side misses the row, and the one that
    /// it has a row the authoritative side does not.
    fn differences(&self) -> (&'static str, &'static str) {
        match self.authoritative {
            Authoritative::Left => ("missing-on-right", "missing-on-left"),
            Authoritative::Right => ("missing-on-left", "missing-on-right"),
        }
    }

    /// The query that reads `rows` rows of the authoritative side by key (compared as text
    /// on both sides, bound from 1): key then copied columns, by position.
    pub fn authority_query(&self, dialect: Dialect, rows: usize) -> DetectorQuery {
        let side = match self.authoritative {
            Authoritative::Left => &self.detector.left,
            Authoritative::Right => &self.detector.right,
        };
        let q = |name: &str| dialect.quote(name);
        let from = match (&side.table, &side.query) {
            (Some(table), _) => q(table),
            (None, Some(query)) => format!(
                "(\n{}\n) AS {}",
                query.trim().trim_end_matches(';').trim_end(),
                q("trueup_side")
            ),
            (None, None) => "(SELECT 1) AS nothing".to_owned(),
        };
        let mut select: Vec<String> = self.from_key.iter().map(|k| q(k)).collect();
        select.extend(self.columns.iter().map(|(_, from, _)| q(from)));
        let width = self.from_key.len();
        let filter = (0..rows.max(1))
            .map(|r| {
                let each = self
                    .from_key
                    .iter()
                    .enumerate()
                    .map(|(i, k)| {
                        format!(
                            "{} = {}",
                            dialect.as_text(&q(k)),
                            dialect.param(r * width + i + 1)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" AND ");
                format!("({each})")
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        DetectorQuery {
            sql: format!("SELECT {} FROM {from} WHERE {filter}", select.join(", ")),
            binds: Vec::new(),
            key: self.from_key.clone(),
            message: crate::template::Template::parse("copy-from")
                .expect("a template without placeholders"),
            split: None,
            settings: Vec::new(),
            plugin: None,
            native: None,
            bulk: false,
        }
    }
}

/// Rows kept as they arrive.
#[derive(Default)]
struct Collect(Vec<Vec<Value>>);

impl RowSink for Collect {
    fn columns(&mut self, _: Vec<String>) -> Result<()> {
        Ok(())
    }
    async fn row(&mut self, values: Vec<Value>) -> Result<()> {
        self.0.push(values);
        Ok(())
    }
}

/// Key values as one text, to match rows of two engines by key.
pub fn key_text(key: &[Value]) -> String {
    key.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

/// The authoritative rows with `keys`, by [`key_text`]: their copied columns' values, by
/// the repaired side's names.
pub async fn from_rows(
    copy: &Copy,
    from: &Source,
    keys: &[Vec<Value>],
    timeout: Duration,
) -> Result<std::collections::HashMap<String, Vec<Value>>> {
    let mut found = std::collections::HashMap::new();
    let width = copy.from_key.len();
    for chunk in keys.chunks(500) {
        let dialect = from
            .sql_dialect()
            .map_err(|e| Error::Other(e.to_string()))?;
        let mut query = copy.authority_query(dialect, chunk.len());
        query.binds = chunk
            .iter()
            .flatten()
            .map(|v| Value::Text(v.to_string()))
            .collect();
        let mut rows = Collect::default();
        from.fetch(&query, timeout, &mut rows).await.map_err(|e| {
            Error::Other(format!(
                "reading the authoritative side (source `{}`): {e}",
                from.name
            ))
        })?;
        for row in rows.0 {
            let (key, values) = row.split_at(width.min(row.len()));
            found.insert(key_text(key), values.to_vec());
        }
    }
    Ok(found)
}

/// The values of a target, as the plan writes them: an object of the repaired side's
/// column names.
pub fn values_json(copy: &Copy, values: &[Value], only: Option<&[String]>) -> Json {
    Json::Object(
        copy.columns
            .iter()
            .zip(values)
            .filter(|((_, _, to), _)| only.is_none_or(|only| only.contains(to)))
            .map(|((_, _, to), v)| (to.clone(), row::to_json(v)))
            .collect(),
    )
}

/// One finding of the rule, spooled: its key, its difference, and for `differs` the
/// repaired side's names of the columns that differ.
struct Spool {
    file: std::io::BufWriter<std::fs::File>,
    width: usize,
}

impl RowSink for Spool {
    fn columns(&mut self, _: Vec<String>) -> Result<()> {
        Ok(())
    }
    async fn row(&mut self, values: Vec<Value>) -> Result<()> {
        let key = row::key_json(&values[..self.width.min(values.len())]);
        let difference = values
            .get(self.width)
            .map(ToString::to_string)
            .unwrap_or_default();
        let left = values
            .get(self.width + 2)
            .map(ToString::to_string)
            .unwrap_or_default();
        let differing: Vec<String> = serde_json::from_str::<serde_json::Map<String, Json>>(&left)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let line = serde_json::to_string(&(key, difference, differing))
            .map_err(|e| Error::Other(e.to_string()))?;
        writeln!(self.file, "{line}")?;
        Ok(())
    }
}

/// A finding of a copy-from rule: what to do, the key (as the finding has it), and the
/// repaired side's columns to update.
pub struct Finding {
    pub op: Op,
    pub key: Vec<Value>,
    pub columns: Vec<String>,
}

/// Runs the rule's comparison between `left` and `right` and hands back its findings as
/// copy operations, in order, through a spool file (memory stays flat), `each` taking
/// them in chunks of up to 500.
pub async fn findings(
    copy: &Copy,
    left: &Source,
    right: &Source,
    timeout: Duration,
    mut each: impl AsyncChunk,
) -> Result<()> {
    let spooled = tempfile::tempfile()?;
    let mut spool = Spool {
        file: std::io::BufWriter::new(spooled),
        width: copy.detector.key.len(),
    };
    crate::reconcile::run(&copy.detector, left, right, timeout, &mut spool)
        .await
        .map_err(|e| Error::Other(e.to_string()))?;
    let mut file = spool
        .file
        .into_inner()
        .map_err(|e| Error::Other(e.to_string()))?;
    file.rewind()?;
    let (missing, extra) = copy.differences();
    let mut chunk = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let (key, difference, differing): (Json, String, Vec<String>) =
            serde_json::from_str(&line?).map_err(|e| Error::Other(e.to_string()))?;
        let op = if difference == missing {
            Op::Insert
        } else if difference == extra {
            match copy.on_extra {
                OnExtra::Delete => Op::Delete,
                OnExtra::Keep => continue,
            }
        } else {
            Op::Update
        };
        let columns = differing
            .iter()
            .filter_map(|left| copy.by_left(left).map(|(_, _, to)| to.clone()))
            .collect();
        chunk.push(Finding {
            op,
            key: row::key_values(&key)?,
            columns,
        });
        if chunk.len() == 500 {
            each.chunk(std::mem::take(&mut chunk)).await?;
        }
    }
    if !chunk.is_empty() {
        each.chunk(chunk).await?;
    }
    Ok(())
}

/// Takes the findings of [`findings`] a chunk at a time.
pub trait AsyncChunk {
    fn chunk(&mut self, findings: Vec<Finding>) -> impl Future<Output = Result<()>>;
}

/// A key as the repaired database's session reads it (PostgreSQL reads every value as
/// text), so that it matches the rows `apply` reads back.
pub fn repaired_key(db: &Db, key: &[Value]) -> Vec<Value> {
    match db.dialect() {
        Dialect::Postgres => key
            .iter()
            .map(|v| match v {
                Value::Null => Value::Null,
                other => Value::Text(other.to_string()),
            })
            .collect(),
        Dialect::Sqlite | Dialect::Mysql => key.to_vec(),
    }
}

/// The statement of one target and its values: `INSERT` of the key and the copied
/// columns, `UPDATE` of the columns the plan names, `DELETE` by key.
pub fn statement(
    db: &Db,
    rr: &crate::repair::spec::RuleRepair,
    op: Op,
    key: &[Value],
    values: &serde_json::Map<String, serde_json::Value>,
) -> Result<(String, Vec<Value>)> {
    let q = |c: &str| db.dialect().quote(c);
    let ty = |c: &str| rr.table.type_of(c).unwrap_or("text").to_owned();
    let mut binds = Vec::new();
    let sql = match op {
        Op::Delete => {
            binds.extend(key.iter().cloned());
            crate::repair::sql::delete_rows(db, &rr.table, &rr.key, 1)
        }
        Op::Insert => {
            let mut names = Vec::new();
            let mut params = Vec::new();
            for (column, value) in rr.key.iter().zip(key) {
                binds.push(value.clone());
                names.push(q(column));
                params.push(db.typed_param(binds.len(), &ty(column)));
            }
            for (column, value) in values {
                binds.push(row::from_json(value)?);
                names.push(q(column));
                params.push(db.typed_param(binds.len(), &ty(column)));
            }
            format!(
                "INSERT INTO {} ({}) VALUES ({})",
                q(&rr.table.name),
                names.join(", "),
                params.join(", ")
            )
        }
        Op::Update => {
            let mut set = Vec::new();
            for (column, value) in values {
                binds.push(row::from_json(value)?);
                set.push(format!(
                    "{} = {}",
                    q(column),
                    db.typed_param(binds.len(), &ty(column))
                ));
            }
            let first = binds.len() + 1;
            binds.extend(key.iter().cloned());
            let types = rr.table.types_of(&rr.key)?;
            format!(
                "UPDATE {} AS t SET {} WHERE {}",
                q(&rr.table.name),
                set.join(", "),
                crate::repair::sql::key_in(db, "t", &rr.key, &types, 1, first)
            )
        }
    };
    Ok((sql, binds))
}
