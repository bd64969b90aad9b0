//! `bisect` mode: each side sums the hashes of its rows per bucket of keys inside its own
//! database, the sums are compared here, and only the rows of buckets whose sums differ are
//! read and merged as `join` merges them. Two large tables that mostly agree are compared
//! without reading their rows across the network.

use crate::compile::{KeyOrder, Side, reconcile_rows, reconcile_side};
use crate::dialect::Dialect;
use crate::outcome::RuleError;
use crate::source::{FirstRow, RowSink, rule_error};
use crate::value::Value;
use crate::{Error, Result};

use super::checksum::{BUCKETS, Buckets, Class, Hasher, MIN_WIDTH, Plan, Sums};
use super::{Compare, Keep, on_side};

/// Differing key ranges read with one range condition each, up to this many; past it, by
/// their buckets (`… IN (…)`), which the database checks row by row.
const MOST_RANGES: usize = 64;

/// Differing buckets split again, at most this many consecutive ones at a time: their
/// sub-buckets then fit one set of sums per side.
const CHUNK: usize = 1024;

/// The narrowest first-level range buckets a second level splits (16 × [`MIN_WIDTH`]).
const DEEPER_WIDTH: i128 = 16 * MIN_WIDTH;

/// How one side is checksummed: in its database, or here.
enum Way {
    Sql(Plan),
    Here(Dialect),
}

/// Compares the sides of `c` by bucket checksums, then row by row in the buckets that
/// differ. `Ok(false)`: bisect cannot be trusted on these servers (a server prints doubles
/// with fewer digits than they have), and the caller compares by `join` instead.
pub(super) async fn run<S: RowSink>(
    c: &Compare<'_>,
    first: (Option<&[Value]>, Option<&[Value]>),
    sink: &mut S,
) -> Result<bool, RuleError> {
    let d = c.d;
    let classes: Vec<Class> = c
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let at = d.key.len() + i;
            Class::of(
                value_at(first.0, at),
                value_at(first.1, at),
                column.tolerance,
                column.precision_micros,
            )
        })
        .collect();
    let buckets = match (d.key.len(), c.orders.first()) {
        (1, Some(KeyOrder::Integer)) => {
            let (l, r) = tokio::join!(bounds(c, Side::Left), bounds(c, Side::Right));
            match [l?, r?]
                .into_iter()
                .flatten()
                .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
            {
                Some((low, high)) => Buckets::range(low, high),
                // Neither side has a row.
                None => return Ok(true),
            }
        }
        _ => Buckets::Hash,
    };
    let way = |side: Side, rows: (Option<&[Value]>, Option<&[Value]>)| -> Result<Way, RuleError> {
        let dialect = c.source(side).sql_dialect()?;
        Ok(match dialect {
            Dialect::Sqlite => Way::Here(dialect),
            _ => Way::Sql(Plan::new(dialect, c.orders, &classes, rows, buckets)),
        })
    };
    let mut ways = [
        way(Side::Left, (first.0, first.1))?,
        way(Side::Right, (first.1, first.0))?,
    ];
    let mut native = true;
    for (side, way) in [Side::Left, Side::Right].into_iter().zip(&ways) {
        let Way::Sql(plan) = way else {
            native = false;
            continue;
        };
        let (doubles, fast) = probe(c, side, plan).await?;
        if plan.prints_doubles() && !doubles {
            return Ok(false);
        }
        native &= fast;
    }
    for way in &mut ways {
        if let Way::Sql(plan) = way {
            plan.native = native;
        }
    }
    let [left_way, right_way] = ways;
    let (l, r) = tokio::join!(
        sums(c, Side::Left, &left_way, &classes, buckets),
        sums(c, Side::Right, &right_way, &classes, buckets)
    );
    let (l, r) = (l?, r?);
    let differing = l.differing(&r);
    if differing.is_empty() {
        return Ok(true);
    }
    // More than half the buckets differ, so that narrowing the read to them would read
    // nearly everything, and they are very wide range buckets (at least 512 keys: a key
    // range over 33M) of two SQL sides: a second level inside the differing ones. It makes
    // each side hash those rows again to send fewer of them, which on narrower buckets
    // cost more than it saved (docs/performance.md, "A second level").
    if let (Buckets::Range { low, width }, Way::Sql(left), Way::Sql(right)) =
        (buckets, &left_way, &right_way)
        && i128::from(width) >= DEEPER_WIDTH
        && differing.len() * 2 > BUCKETS
    {
        deeper(c, [left, right], (low, width), &differing, sink).await?;
        return Ok(true);
    }
    let marked = marks(&differing);
    let narrowed = |side: Side, way: &Way| -> (Option<String>, Option<Keep>) {
        if differing.len() * 2 > BUCKETS {
            return (None, None);
        }
        let dialect = match way {
            Way::Sql(plan) => plan.dialect(),
            Way::Here(dialect) => *dialect,
        };
        let rows = reconcile_rows(d, side, dialect);
        let ranges = match buckets {
            Buckets::Range { low, width } => {
                range_condition(&rows.key[0], (low, width), &differing)
            }
            Buckets::Hash => None,
        };
        match (ranges, way) {
            (Some(ranges), _) => (Some(ranges), None),
            (None, Way::Sql(plan)) => (
                Some(marked_condition(
                    &plan.bucket_expr(&rows),
                    &marked,
                    dialect,
                    matches!(buckets, Buckets::Range { .. }),
                )),
                None,
            ),
            (None, Way::Here(_)) => (
                None,
                Some(Keep {
                    hasher: Hasher::new(&classes, d.key.len(), buckets),
                    buckets: marked.clone(),
                }),
            ),
        }
    };
    let (left_within, left_keep) = narrowed(Side::Left, &left_way);
    let (right_within, right_keep) = narrowed(Side::Right, &right_way);
    c.join(
        side_query(c, Side::Left, left_within.as_deref())?,
        side_query(c, Side::Right, right_within.as_deref())?,
        (left_keep, right_keep),
        sink,
    )
    .await?;
    Ok(true)
}

/// The second level, for two SQL sides whose range buckets are wide: the `differing`
/// buckets of the first level, [`CHUNK`] consecutive buckets at a time, split again into
/// up to [`BUCKETS`] sub-buckets that each side sums over the rows of those differing
/// buckets only; then only the rows of the differing sub-buckets are read and merged. The
/// chunks go in key order, so the findings do too.
async fn deeper<S: RowSink>(
    c: &Compare<'_>,
    plans: [&Plan; 2],
    (low, width): (i64, i64),
    differing: &[usize],
    sink: &mut S,
) -> Result<(), RuleError> {
    let d = c.d;
    let level = Buckets::Range { low, width };
    let sides = [Side::Left, Side::Right];
    for chunk in differing.chunk_by(|a, b| a / CHUNK == b / CHUNK) {
        let first = chunk[0] / CHUNK * CHUNK;
        let (Some((from, _)), Some((_, to))) =
            (level.bounds(first), level.bounds(first + CHUNK - 1))
        else {
            continue;
        };
        let sub = Buckets::range(from, to.saturating_sub(1));
        let Buckets::Range {
            low: sub_low,
            width: sub_width,
        } = sub
        else {
            return Err(RuleError::Other(format!(
                "keys {from} to {to} cannot be split into buckets"
            )));
        };
        // Each side's rows of this chunk's differing buckets.
        let chunk_marks = marks(chunk);
        let base = |side: Side, plan: &Plan| {
            let rows = reconcile_rows(d, side, plan.dialect());
            let k = &rows.key[0];
            let differing = range_condition(k, (low, width), chunk).unwrap_or_else(|| {
                marked_condition(&plan.bucket_expr(&rows), &chunk_marks, plan.dialect(), true)
            });
            format!("{k} >= {from} AND {k} < {to} AND ({differing})")
        };
        let bases = [base(sides[0], plans[0]), base(sides[1], plans[1])];
        let sub_plans = plans.map(|plan| {
            let mut plan = plan.clone();
            plan.buckets = sub;
            plan
        });
        let (l, r) = tokio::join!(
            sql_sums(c, sides[0], &sub_plans[0], Some(&bases[0])),
            sql_sums(c, sides[1], &sub_plans[1], Some(&bases[1]))
        );
        let sub_differing = l?.differing(&r?);
        if sub_differing.is_empty() {
            continue;
        }
        let sub_marks = marks(&sub_differing);
        let within = |i: usize| {
            if sub_differing.len() * 2 > BUCKETS {
                return bases[i].clone();
            }
            let rows = reconcile_rows(d, sides[i], sub_plans[i].dialect());
            let narrow = range_condition(&rows.key[0], (sub_low, sub_width), &sub_differing)
                .unwrap_or_else(|| {
                    marked_condition(
                        &sub_plans[i].bucket_expr(&rows),
                        &sub_marks,
                        sub_plans[i].dialect(),
                        true,
                    )
                });
            format!("{} AND ({narrow})", bases[i])
        };
        c.join(
            side_query(c, sides[0], Some(&within(0)))?,
            side_query(c, sides[1], Some(&within(1)))?,
            (None, None),
            sink,
        )
        .await?;
    }
    Ok(())
}

/// The query that reads `side` in key order, narrowed to `within` when given.
fn side_query(
    c: &Compare<'_>,
    side: Side,
    within: Option<&str>,
) -> Result<crate::compile::DetectorQuery, RuleError> {
    Ok(reconcile_side(
        c.d,
        side,
        c.source(side).sql_dialect()?,
        Some(c.orders),
        within,
    ))
}

/// Buckets as marks, one per bucket.
fn marks(buckets: &[usize]) -> Vec<bool> {
    let mut marked = vec![false; BUCKETS];
    for b in buckets {
        if let Some(mark) = marked.get_mut(*b) {
            *mark = true;
        }
    }
    marked
}

/// The value at `at` of a row, unless the row is missing or the value NULL.
fn value_at(row: Option<&[Value]>, at: usize) -> Option<&Value> {
    row.and_then(|r| r.get(at)).filter(|v| !v.is_null())
}

/// The condition that keeps the keys of the `differing` range buckets, a range condition
/// per run of adjacent buckets (the key's index finds them); `None` when there are more
/// runs than [`MOST_RANGES`].
fn range_condition(key: &str, (low, width): (i64, i64), differing: &[usize]) -> Option<String> {
    let buckets = Buckets::Range { low, width };
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for b in differing {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == *b => *end = *b,
            _ => runs.push((*b, *b)),
        }
    }
    (runs.len() <= MOST_RANGES).then(|| {
        runs.iter()
            .filter_map(|(first, last)| {
                let (start, _) = buckets.bounds(*first)?;
                let (_, end) = buckets.bounds(*last)?;
                Some(format!("({key} >= {start} AND {key} < {end})"))
            })
            .collect::<Vec<_>>()
            .join(" OR ")
    })
}

/// The condition that keeps the rows whose bucket (`bucket`, an SQL expression) is
/// `marked`: a bit of one literal bitmap, read at the bucket's number. One literal whatever
/// the number of buckets, where a list of them would be as long as the differences are
/// many, and so would the syntax tree of trueup's check of the statement. `guarded`: the
/// bucket may fall outside the bitmap (a range bucket of a key added since the bounds were
/// read), and such a row is left out.
fn marked_condition(bucket: &str, marked: &[bool], dialect: Dialect, guarded: bool) -> String {
    let mut bytes = vec![0u8; marked.len().div_ceil(8)];
    for (b, _) in marked.iter().enumerate().filter(|(_, m)| **m) {
        bytes[b / 8] |= 1 << (b % 8);
    }
    let hex = crate::value::hex(&bytes);
    let last = marked.len().saturating_sub(1);
    let bit = match dialect {
        Dialect::Mysql => {
            format!("(ASCII(SUBSTRING(x'{hex}', {bucket} DIV 8 + 1, 1)) >> ({bucket} % 8)) & 1 = 1")
        }
        _ => format!("get_bit(decode('{hex}', 'hex'), CAST({bucket} AS integer)) = 1"),
    };
    if guarded {
        format!("CASE WHEN {bucket} BETWEEN 0 AND {last} THEN {bit} ELSE 1 = 0 END")
    } else {
        bit
    }
}

/// The smallest and largest key of one side (an integer key), if it has rows.
async fn bounds(c: &Compare<'_>, side: Side) -> Result<Option<(i64, i64)>, RuleError> {
    let source = c.source(side);
    let rows = reconcile_rows(c.d, side, source.sql_dialect()?);
    let sql = format!(
        "SELECT min({k}), max({k}) FROM {} WHERE {}",
        rows.from,
        rows.condition,
        k = rows.key[0]
    );
    let mut first = FirstRow::default();
    c.fetch(side, sql, &mut first).await?;
    Ok(match first.0.as_deref() {
        Some([Value::Int(low), Value::Int(high)]) => Some((*low, *high)),
        _ => None,
    })
}

/// What the server of `side` can do: print doubles with every digit they need, and hash
/// rows by PostgreSQL's own hash functions ([`Plan::probe`]).
async fn probe(c: &Compare<'_>, side: Side, plan: &Plan) -> Result<(bool, bool), RuleError> {
    let mut first = FirstRow::default();
    c.fetch(side, plan.probe(), &mut first).await?;
    Ok(match first.0.as_deref() {
        Some([Value::Int(doubles), Value::Int(fast)]) => (*doubles == 1, *fast == 1),
        _ => (false, false),
    })
}

/// The checksums of one side, per bucket.
async fn sums(
    c: &Compare<'_>,
    side: Side,
    way: &Way,
    classes: &[Class],
    buckets: Buckets,
) -> Result<Sums, RuleError> {
    let d = c.d;
    match way {
        Way::Sql(plan) => sql_sums(c, side, plan, None).await,
        Way::Here(dialect) => {
            let query = reconcile_side(d, side, *dialect, Some(c.orders), None);
            let mut sink = HereSums {
                sums: Sums::new(),
                hasher: Hasher::new(classes, d.key.len(), buckets),
            };
            c.source(side)
                .fetch(&query, c.timeout, &mut sink)
                .await
                .map_err(|e| on_side(side.name(), c.source(side), rule_error(e)))?;
            Ok(sink.sums)
        }
    }
}

/// The checksums of one SQL side, per bucket of `plan`, of its rows that meet `within`.
async fn sql_sums(
    c: &Compare<'_>,
    side: Side,
    plan: &Plan,
    within: Option<&str>,
) -> Result<Sums, RuleError> {
    let mut rows = reconcile_rows(c.d, side, plan.dialect());
    if let Some(within) = within {
        rows.condition = format!("{} AND ({within})", rows.condition);
    }
    let mut sink = SqlSums(Sums::new());
    c.fetch(side, plan.bucket_query(&rows), &mut sink).await?;
    Ok(sink.0)
}

/// Bucket rows from a server: the bucket, its rows, the sum of their hashes as text.
struct SqlSums(Sums);

impl RowSink for SqlSums {
    fn columns(&mut self, _: Vec<String>) -> Result<()> {
        Ok(())
    }

    async fn row(&mut self, values: Vec<Value>) -> Result<()> {
        let number = |v: Option<&Value>| -> Option<i128> {
            match v? {
                Value::Int(i) => Some(i128::from(*i)),
                Value::Decimal(t) | Value::Text(t) => t.trim().parse().ok(),
                _ => None,
            }
        };
        let bucket = number(values.first()).and_then(|b| usize::try_from(b).ok());
        match (bucket, number(values.get(1)), number(values.get(2))) {
            (Some(b), Some(count), sum) if b < BUCKETS => {
                self.0.count[b] = u64::try_from(count).unwrap_or(u64::MAX);
                self.0.sum[b] = sum.unwrap_or(0);
                Ok(())
            }
            _ => Err(Error::Other(format!(
                "a checksum row that is not a bucket, a count and a sum: {values:?}"
            ))),
        }
    }
}

/// A side's rows hashed and summed here.
struct HereSums {
    sums: Sums,
    hasher: Hasher,
}

impl RowSink for HereSums {
    fn columns(&mut self, _: Vec<String>) -> Result<()> {
        Ok(())
    }

    async fn row(&mut self, values: Vec<Value>) -> Result<()> {
        if let Some(b) = self.hasher.bucket(&values) {
            let hash = self.hasher.hash(&values);
            self.sums.count[b] += 1;
            self.sums.sum[b] += i128::from(hash);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::marked_condition;
    use crate::dialect::Dialect;

    /// The bitmap's bits are those PostgreSQL's `get_bit` and the MySQL expression read:
    /// bit b is bit b % 8 (from the least significant) of byte b / 8.
    #[test]
    fn the_bitmap_marks_bucket_b_at_bit_b() {
        let mut marked = vec![false; 24];
        for b in [0, 9, 23] {
            marked[b] = true;
        }
        let condition = marked_condition("b", &marked, Dialect::Postgres, false);
        assert_eq!(
            condition,
            "get_bit(decode('010280', 'hex'), CAST(b AS integer)) = 1"
        );
        let guarded = marked_condition("b", &marked, Dialect::Mysql, true);
        assert!(
            guarded.starts_with(
                "CASE WHEN b BETWEEN 0 AND 23 THEN (ASCII(SUBSTRING(x'010280', b DIV 8 + 1, 1))"
            ),
            "{guarded}"
        );
        // trueup's own check of each statement before it runs parses both.
        for (dialect, condition) in [(Dialect::Postgres, condition), (Dialect::Mysql, guarded)] {
            let sql = format!("SELECT id FROM t WHERE id IS NOT NULL AND ({condition})");
            assert_eq!(
                crate::sql_text::compiled_query_problem(&sql, dialect),
                None,
                "{sql}"
            );
        }
    }
}
