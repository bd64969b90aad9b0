//! Reconciling the same rows in two databases (`reconcile` rules): both sides read in key
//! order at once and merged as they stream, so that memory stays flat whatever the
//! tables' size; each key on one side only, and each key whose compared columns differ, is
//! a finding. How keys are ordered and values compared across engines is
//! docs/design/reconcile.md.

mod bisect;
mod checksum;
mod compare;
mod row;

use std::cmp::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::compile::{KeyOrder, Side, reconcile_side};
use crate::dialect::Dialect;
use crate::outcome::RuleError;
use crate::rule::{ReconcileDetector, ReconcileMode};
use crate::source::{CopyRow, FirstRow, RowSink, Source, rule_error};
use crate::value::Value;
use crate::{Error, Result};

pub use compare::{Column, same};
pub(crate) use row::SideRow;

/// The columns of a reconcile finding after its key: what differs (`missing-on-left`,
/// `missing-on-right`, `differs`), a sentence for people, and the compared values of each
/// side (a JSON object of the columns that differ; the whole row's for a missing row).
pub const FINDING_COLUMNS: [&str; 4] = ["difference", "summary", "left", "right"];

/// Rows handed from a side's query to the merge at once, and batches in flight per side.
const BATCH: usize = 512;
const BATCHES_AHEAD: usize = 4;

/// Compares the two sides of `d`, the left read from `left`, the right from `right`, each
/// query given `timeout`; hands each finding to `sink` as a row of the key (left names)
/// and [`FINDING_COLUMNS`].
pub async fn run<S: RowSink>(
    d: &ReconcileDetector,
    left: &Source,
    right: &Source,
    timeout: Duration,
    sink: &mut S,
) -> Result<(), RuleError> {
    check_right_columns(d, right).await?;
    let (orders, first_left, first_right) = key_orders(d, left, right, timeout).await?;
    let columns = compared_columns(d);
    let mut names: Vec<String> = d.key.clone();
    names.extend(FINDING_COLUMNS.iter().map(|c| (*c).to_owned()));
    sink.columns(names).map_err(|e| RuleError::from_error(&e))?;
    let compare = Compare {
        d,
        left,
        right,
        timeout,
        orders: &orders,
        columns: &columns,
    };
    if mode(d, left, right)? == ReconcileMode::Bisect
        && bisect::run(
            &compare,
            (first_left.as_deref(), first_right.as_deref()),
            sink,
        )
        .await?
    {
        return Ok(());
    }
    let query = |side: Side, source: &Source| -> Result<_, RuleError> {
        Ok(reconcile_side(
            d,
            side,
            source.sql_dialect()?,
            Some(&orders),
            None,
        ))
    };
    compare
        .join(
            query(Side::Left, left)?,
            query(Side::Right, right)?,
            (None, None),
            sink,
        )
        .await
}

/// The mode a rule runs in: `auto` is `bisect` between two PostgreSQL databases, which hash
/// their rows with their own hash functions, and `join` otherwise: MariaDB's MD5 of written
/// rows was slower than reading the rows in `bench/reconcile.sh` (docs/performance.md), and
/// a SQLite side is a local file that trueup would read whole to hash it itself.
fn mode(d: &ReconcileDetector, left: &Source, right: &Source) -> Result<ReconcileMode, RuleError> {
    Ok(match d.mode {
        ReconcileMode::Auto => {
            let postgres = [left.sql_dialect()?, right.sql_dialect()?]
                .iter()
                .all(|dialect| *dialect == Dialect::Postgres);
            if postgres {
                ReconcileMode::Bisect
            } else {
                ReconcileMode::Join
            }
        }
        mode => mode,
    })
}

/// One comparison's sides and how their values compare.
pub(crate) struct Compare<'a> {
    d: &'a ReconcileDetector,
    left: &'a Source,
    right: &'a Source,
    timeout: Duration,
    orders: &'a [KeyOrder],
    columns: &'a [Column],
}

impl Compare<'_> {
    fn source(&self, side: Side) -> &Source {
        match side {
            Side::Left => self.left,
            Side::Right => self.right,
        }
    }

    /// Runs `sql` (trueup's own, without values) on `side`'s source into `sink`.
    async fn fetch<S: RowSink>(
        &self,
        side: Side,
        sql: String,
        sink: &mut S,
    ) -> Result<(), RuleError> {
        let source = self.source(side);
        let query = crate::compile::DetectorQuery::new(sql, Vec::new(), self.d.key.clone(), "");
        source
            .fetch(&query, self.timeout, sink)
            .await
            .map_err(|e| on_side(side.name(), source, rule_error(e)))
    }

    /// Reads both sides with their queries at once and merges them into findings; a side
    /// with a [`Keep`] hands on only the rows of the buckets it keeps.
    async fn join<S: RowSink>(
        &self,
        left_query: crate::compile::DetectorQuery,
        right_query: crate::compile::DetectorQuery,
        keep: (Option<Keep>, Option<Keep>),
        sink: &mut S,
    ) -> Result<(), RuleError> {
        let (left_tx, left_rx) = mpsc::channel(BATCHES_AHEAD);
        let (right_tx, right_rx) = mpsc::channel(BATCHES_AHEAD);
        let merge = Merge {
            d: self.d,
            left_name: &self.left.name,
            right_name: &self.right.name,
            orders: self.orders,
            columns: self.columns,
            recent: self.d.min_age.is_some(),
        };
        // Each side reads and decodes its rows on a task of its own, so that the two sides
        // and the merge use as many cores as the machine has.
        let left = Reader::spawn("left", self.left, left_query, self.timeout, left_tx, keep.0);
        let right = Reader::spawn(
            "right",
            self.right,
            right_query,
            self.timeout,
            right_tx,
            keep.1,
        );
        let merged = merge.run(left_rx, right_rx, sink).await;
        // The merge's own error first: a side that stopped because the merge stopped
        // reading failed only for that reason. Returning drops (and so stops) the sides.
        merged?;
        left.finish().await?;
        right.finish().await
    }
}

/// One side's [`read`] running on a task of its own, stopped when this is dropped: a
/// comparison that ends early (an error, a timeout, Ctrl-C) leaves no query running.
pub(crate) struct Reader(tokio::task::JoinHandle<Result<(), RuleError>>);

impl Reader {
    pub(crate) fn spawn(
        label: &'static str,
        source: &Source,
        query: crate::compile::DetectorQuery,
        timeout: Duration,
        tx: mpsc::Sender<Vec<SideRow>>,
        keep: Option<Keep>,
    ) -> Reader {
        let source = source.clone();
        Reader(tokio::spawn(async move {
            read(label, &source, &query, timeout, tx, keep).await
        }))
    }

    /// What the side's reading came to.
    pub(crate) async fn finish(mut self) -> Result<(), RuleError> {
        (&mut self.0).await.unwrap_or_else(|e| {
            Err(RuleError::Other(format!(
                "reading a side of the comparison stopped: {e}"
            )))
        })
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The rows a side hands on when its database cannot narrow them itself: those whose key
/// falls in a marked bucket.
pub(crate) struct Keep {
    hasher: checksum::Hasher,
    buckets: Vec<bool>,
}

/// How `d` compares each of its columns: tolerance and precision.
pub fn compared_columns(d: &ReconcileDetector) -> Vec<Column> {
    d.columns
        .iter()
        .map(|name| Column {
            name: name.clone(),
            tolerance: d.tolerance.get(name).copied().unwrap_or(0.0),
            precision_micros: d
                .precision
                .get(name)
                .map_or(1, |p| i64::try_from(p.0.as_micros()).unwrap_or(i64::MAX)),
        })
        .collect()
}

/// Streams one side's rows to the merge (or a cache check) in batches.
async fn read(
    label: &'static str,
    source: &Source,
    query: &crate::compile::DetectorQuery,
    timeout: Duration,
    tx: mpsc::Sender<Vec<SideRow>>,
    keep: Option<Keep>,
) -> Result<(), RuleError> {
    let mut rows = Batches {
        tx,
        batch: Vec::with_capacity(BATCH),
        keep,
        width: query.key.len(),
    };
    let fetched = source.fetch(query, timeout, &mut rows).await;
    let sent = rows.flush().await;
    fetched.map_err(|e| on_side(label, source, rule_error(e)))?;
    // The merge stopped reading: its own error says why.
    sent.map_err(|e| RuleError::from_error(&e))
}

/// The first row of one side (its key's types), if it has any.
async fn first_row(
    d: &ReconcileDetector,
    label: &'static str,
    side: Side,
    source: &Source,
    timeout: Duration,
) -> Result<Option<Vec<Value>>, RuleError> {
    let query = reconcile_side(d, side, source.sql_dialect()?, None, None);
    let mut row = FirstRow::default();
    source
        .fetch(&query, timeout, &mut row)
        .await
        .map_err(|e| on_side(label, source, rule_error(e)))?;
    Ok(row.0)
}

/// The right side's table must have its key, compared and `changed-at` columns (the
/// left's are checked with the rule's other columns before it runs).
async fn check_right_columns(d: &ReconcileDetector, right: &Source) -> Result<(), RuleError> {
    let Some(table) = &d.right.table else {
        return Ok(());
    };
    let columns = d.right_columns();
    let wanted: Vec<&str> = columns.iter().map(String::as_str).collect();
    let problems = right
        .schema_problems(table, &wanted)
        .await
        .map_err(|e| on_side("right", right, RuleError::from_error(&e)))?;
    match problems.first() {
        Some(problem) => {
            let hint = problem.hint().map(|h| format!("; {h}")).unwrap_or_default();
            Err(RuleError::Configuration(format!(
                "the right side (source `{}`): {problem}{hint}",
                right.name
            )))
        }
        None => Ok(()),
    }
}

/// How each key column is ordered: as integers when both sides' first rows hold integers
/// there (or one side is empty and the other does), else as text; and those first rows.
#[allow(clippy::type_complexity)]
async fn key_orders(
    d: &ReconcileDetector,
    left: &Source,
    right: &Source,
    timeout: Duration,
) -> Result<(Vec<KeyOrder>, Option<Vec<Value>>, Option<Vec<Value>>), RuleError> {
    let (l, r) = tokio::join!(
        first_row(d, "left", Side::Left, left, timeout),
        first_row(d, "right", Side::Right, right, timeout)
    );
    let (l, r) = (l?, r?);
    let integer = |row: &Option<Vec<Value>>, i: usize| {
        row.as_ref()
            .is_none_or(|row| matches!(row.get(i), Some(Value::Int(_))))
    };
    let orders = (0..d.key.len())
        .map(|i| {
            if integer(&l, i) && integer(&r, i) {
                KeyOrder::Integer
            } else {
                KeyOrder::Text
            }
        })
        .collect();
    Ok((orders, l, r))
}

/// `error` of the side `label` read from `source`, saying which side it was.
pub(crate) fn on_side(label: &str, source: &Source, error: RuleError) -> RuleError {
    let side = format!("the {label} side (source `{}`)", source.name);
    match error {
        RuleError::Configuration(m) => RuleError::Configuration(format!("{side}: {m}")),
        RuleError::Connection(m) => RuleError::Connection(format!("{side}: {m}")),
        RuleError::Query(m) => RuleError::Query(format!("{side}: {m}")),
        RuleError::Refused(m) => RuleError::Refused(format!("{side}: {m}")),
        RuleError::Other(m) => RuleError::Other(format!("{side}: {m}")),
        other => other,
    }
}

/// Hands a side's rows to the merge in batches, waiting while the merge is behind.
struct Batches {
    tx: mpsc::Sender<Vec<SideRow>>,
    batch: Vec<SideRow>,
    keep: Option<Keep>,
    /// How many key columns the rows start with.
    width: usize,
}

impl Batches {
    async fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.tx
            .send(batch)
            .await
            .map_err(|_| Error::Other("the comparison stopped".to_owned()))
    }
}

impl RowSink for Batches {
    fn columns(&mut self, _: Vec<String>) -> Result<()> {
        Ok(())
    }

    async fn row(&mut self, values: Vec<Value>) -> Result<()> {
        self.push(SideRow::Values(values)).await
    }

    async fn copy_row(&mut self, row: CopyRow) -> Result<()> {
        let key = (0..self.width.min(row.len()))
            .map(|i| row.value(i))
            .collect::<Result<Vec<_>>>()?;
        self.push(SideRow::Copy { key, row }).await
    }
}

impl Batches {
    async fn push(&mut self, row: SideRow) -> Result<()> {
        if let Some(keep) = &mut self.keep
            && !keep
                .hasher
                .bucket(row.key(self.width))
                .is_some_and(|b| keep.buckets[b])
        {
            return Ok(());
        }
        self.batch.push(row);
        if self.batch.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }
}

/// One side's rows, one at a time, checked to come in strictly increasing key order.
struct Rows<'a> {
    label: &'static str,
    rx: mpsc::Receiver<Vec<SideRow>>,
    batch: std::vec::IntoIter<SideRow>,
    previous: Option<Vec<Value>>,
    width: usize,
    orders: &'a [KeyOrder],
}

impl Rows<'_> {
    async fn next(&mut self) -> Result<Option<SideRow>, RuleError> {
        let row = match self.batch.next() {
            Some(row) => row,
            None => match self.rx.recv().await {
                Some(batch) => {
                    self.batch = batch.into_iter();
                    match self.batch.next() {
                        Some(row) => row,
                        None => return Ok(None),
                    }
                }
                None => return Ok(None),
            },
        };
        let key = row.key(self.width);
        if let Some(previous) = &self.previous {
            match compare::key_cmp(previous, key, self.orders) {
                Some(Ordering::Less) => {}
                Some(Ordering::Equal) => {
                    return Err(RuleError::Configuration(format!(
                        "the key is not unique on the {} side: {} comes twice; reconcile \
                         needs a key that names one row on each side",
                        self.label,
                        key_text(key)
                    )));
                }
                _ => {
                    return Err(RuleError::Query(format!(
                        "the {} side's rows did not come in key order ({} after {}): does a \
                         key column hold text on one row and a number on another?",
                        self.label,
                        key_text(key),
                        key_text(previous)
                    )));
                }
            }
        }
        match &mut self.previous {
            Some(previous) => previous.clone_from_slice(key),
            None => self.previous = Some(key.to_vec()),
        }
        Ok(Some(row))
    }
}

fn key_text(key: &[Value]) -> String {
    key.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The merge of the two sides' streams into findings.
struct Merge<'a> {
    d: &'a ReconcileDetector,
    left_name: &'a str,
    right_name: &'a str,
    orders: &'a [KeyOrder],
    columns: &'a [Column],
    /// Whether each row ends with the `trueup_recent` flag.
    recent: bool,
}

impl Merge<'_> {
    async fn run<S: RowSink>(
        &self,
        left: mpsc::Receiver<Vec<SideRow>>,
        right: mpsc::Receiver<Vec<SideRow>>,
        sink: &mut S,
    ) -> Result<(), RuleError> {
        let width = self.d.key.len();
        let rows = |label, rx| Rows {
            label,
            rx,
            batch: Vec::new().into_iter(),
            previous: None,
            width,
            orders: self.orders,
        };
        let (mut left, mut right) = (rows("left", left), rows("right", right));
        let (mut l, mut r) = (left.next().await?, right.next().await?);
        loop {
            let ordering = match (&l, &r) {
                (None, None) => return Ok(()),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(a), Some(b)) => {
                    let (a, b) = (a.key(width), b.key(width));
                    compare::key_cmp(a, b, self.orders).ok_or_else(|| {
                        RuleError::Query(format!(
                            "key {} of the left side and {} of the right cannot be compared",
                            key_text(a),
                            key_text(b)
                        ))
                    })?
                }
            };
            let values = |row: Option<SideRow>| {
                row.map_or(Ok(Vec::new()), SideRow::into_values)
                    .map_err(|e| RuleError::from_error(&e))
            };
            let finding = match ordering {
                Ordering::Less => {
                    let row = values(l.take())?;
                    l = left.next().await?;
                    self.missing(&row, Side::Left)
                }
                Ordering::Greater => {
                    let row = values(r.take())?;
                    r = right.next().await?;
                    self.missing(&row, Side::Right)
                }
                Ordering::Equal => {
                    let (a, b) = (l.take(), r.take());
                    l = left.next().await?;
                    r = right.next().await?;
                    // Rows whose compared values are all the same are read no further.
                    match (&a, &b) {
                        (Some(x), Some(y)) if self.all_same(x, y)? => None,
                        _ => self.differs(&values(a)?, &values(b)?),
                    }
                }
            };
            if let Some(finding) = finding {
                sink.row(finding)
                    .await
                    .map_err(|e| RuleError::from_error(&e))?;
            }
        }
    }

    /// Whether every compared column of `a` and `b` holds the same value.
    fn all_same(&self, a: &SideRow, b: &SideRow) -> Result<bool, RuleError> {
        a.same_from(b, self.d.key.len(), self.columns)
            .map_err(|e| RuleError::from_error(&e))
    }

    /// Whether a row was changed within `min-age` (its flag after the compared columns).
    fn is_recent(&self, row: &[Value]) -> bool {
        self.recent
            && matches!(
                row.get(self.d.key.len() + self.columns.len()),
                Some(Value::Int(1))
            )
    }

    /// A row only `present` has, unless it changed too recently to count.
    fn missing(&self, row: &[Value], present: Side) -> Option<Vec<Value>> {
        if self.is_recent(row) {
            return None;
        }
        let width = self.d.key.len();
        let values = self.object(row, |_| true);
        let (difference, other, left, right) = match present {
            Side::Left => ("missing-on-right", self.right_name, values, Value::Null),
            Side::Right => ("missing-on-left", self.left_name, Value::Null, values),
        };
        let mut out = row[..width].to_vec();
        out.extend([
            Value::Text(difference.to_owned()),
            Value::Text(format!(
                "missing on the {} (`{other}`)",
                match present {
                    Side::Left => "right",
                    Side::Right => "left",
                }
            )),
            left,
            right,
        ]);
        Some(out)
    }

    /// The row both sides have, when a compared column differs (and neither side changed
    /// it too recently to count).
    fn differs(&self, a: &[Value], b: &[Value]) -> Option<Vec<Value>> {
        let width = self.d.key.len();
        let differing: Vec<usize> = (0..self.columns.len())
            .filter(|i| {
                let (x, y) = (a.get(width + i), b.get(width + i));
                !matches!((x, y), (Some(x), Some(y)) if same(x, y, &self.columns[*i]))
            })
            .collect();
        if differing.is_empty() || self.is_recent(a) || self.is_recent(b) {
            return None;
        }
        let summary = differing
            .iter()
            .map(|i| {
                let value = |row: &[Value]| {
                    row.get(width + i)
                        .map_or_else(String::new, ToString::to_string)
                };
                format!(
                    "{} is {} on the left, {} on the right",
                    self.columns[*i].name,
                    value(a),
                    value(b)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let mut out = a[..width].to_vec();
        out.extend([
            Value::Text("differs".to_owned()),
            Value::Text(summary),
            self.object(a, |i| differing.contains(&i)),
            self.object(b, |i| differing.contains(&i)),
        ]);
        Some(out)
    }

    /// The compared columns of `row` that `keep` keeps, as a JSON object by left names.
    fn object(&self, row: &[Value], keep: impl Fn(usize) -> bool) -> Value {
        compared_object(self.columns, row, self.d.key.len(), keep)
    }
}

/// The compared `columns` of `row` (after its `width` key values) that `keep` keeps, as a
/// JSON object by the columns' names: the two sides' values in a finding's detail.
pub(crate) fn compared_object(
    columns: &[Column],
    row: &[Value],
    width: usize,
    keep: impl Fn(usize) -> bool,
) -> Value {
    let map: serde_json::Map<String, serde_json::Value> = columns
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(i, column)| {
            let value = row
                .get(width + i)
                .and_then(|v| serde_json::to_value(v).ok())
                .unwrap_or(serde_json::Value::Null);
            (column.name.clone(), value)
        })
        .collect();
    Value::Text(serde_json::Value::Object(map).to_string())
}
