//! Checksums of a reconcile side's rows by bucket of keys, for `bisect`: each row is written
//! as one text in which a value is written the same way on every engine, hashed with MD5
//! to a 60-bit integer, and the hashes are summed per bucket, inside PostgreSQL and MySQL
//! (SQL written here) or here for SQLite, which has no hash function. How each type is
//! written is docs/design/reconcile.md ("Bisect mode").
//!
//! The one property everything here keeps: two rows written to the same text are the same
//! row for [`super::same`]. Two rows that are the same may still be written differently
//! (an engine prints a double otherwise): their bucket then differs and is compared row by
//! row, which costs time, never a missed difference.

use md5::{Digest, Md5};

use crate::compile::{KeyOrder, SideRows};
use crate::dialect::Dialect;
use crate::value::Value;

use super::compare::{exact, instant};

/// Buckets the keys are spread over: the checksums of both sides fit in memory whatever
/// the tables' size (65,536 counts and sums a side).
pub const BUCKETS: usize = 65_536;

/// The fewest keys a range bucket holds.
pub const MIN_WIDTH: i128 = 32;

/// How a compared column's values are written before hashing, chosen once per rule from
/// both sides' first rows and the column's `tolerance` and `precision`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Class {
    /// As text.
    Text,
    /// Exact numbers (integers, decimals) by their digits, without trailing zeros.
    Exact,
    /// Numbers as doubles, written shortest (a double on either side).
    Float,
    /// Numbers rounded to this many decimals (a `tolerance`): a grid no coarser than it.
    Rounded(i32),
    /// Instants in microseconds since 1970, floor-divided by this precision.
    Instant(i64),
}

impl Class {
    /// The class of a column whose first values are `left` and `right` (`None`: that side
    /// has no rows, or the value is NULL).
    pub fn of(
        left: Option<&Value>,
        right: Option<&Value>,
        tolerance: f64,
        precision: i64,
    ) -> Class {
        let kinds = [left, right];
        let any = |f: fn(&Value) -> bool| kinds.iter().flatten().any(|v| f(v));
        let numeric = |v: &Value| {
            matches!(
                v,
                Value::Int(_) | Value::Decimal(_) | Value::Bool(_) | Value::Float(_)
            )
        };
        let all_numeric = kinds.iter().flatten().all(|v| numeric(v)) && any(numeric);
        if precision > 1 || any(|v| matches!(v, Value::Timestamp(_))) {
            Class::Instant(precision.max(1))
        } else if tolerance > 0.0 && all_numeric {
            Class::Rounded(decimals(tolerance))
        } else if any(|v| matches!(v, Value::Float(_))) && all_numeric {
            Class::Float
        } else if all_numeric {
            Class::Exact
        } else {
            Class::Text
        }
    }
}

/// The decimals of the finest power of ten no larger than `tolerance`: values that round
/// alike differ by less than it.
fn decimals(tolerance: f64) -> i32 {
    // -log10(0.005) = 2.3 → 3 decimals (a grid of 0.001); 0.01 → 2; 5 → 0; 50 → -1.
    let d = (-tolerance.log10()).ceil();
    if d.is_finite() {
        f64_to_i32(d.clamp(-18.0, 18.0))
    } else {
        0
    }
}

/// A whole number of at most 18 in size, as an `i32`.
fn f64_to_i32(x: f64) -> i32 {
    format!("{x:.0}").parse().unwrap_or(0)
}

/// What a side's own column holds, from its first row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Own {
    Int,
    Bool,
    Decimal,
    Float,
    Timestamp,
    Bytes,
    /// Text, or not known (NULL or no rows): written as text, which is always sound.
    Text,
}

impl Own {
    fn of(value: Option<&Value>) -> Own {
        match value {
            Some(Value::Int(_)) => Own::Int,
            Some(Value::Bool(_)) => Own::Bool,
            Some(Value::Decimal(_)) => Own::Decimal,
            Some(Value::Float(_)) => Own::Float,
            Some(Value::Timestamp(_)) => Own::Timestamp,
            Some(Value::Bytes(_)) => Own::Bytes,
            _ => Own::Text,
        }
    }
}

/// How one side's rows are bucketed: by ranges of one integer key, or by a hash of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buckets {
    /// Bucket `(k - low) / width`.
    Range { low: i64, width: i64 },
    /// Bucket: the first 16 bits of the MD5 of the key's text.
    Hash,
}

impl Buckets {
    /// Ranges over `low..=high` (both sides' smallest and largest keys), when the span
    /// fits the key's type: at most [`BUCKETS`] of them, and at least [`MIN_WIDTH`] keys
    /// wide (a bucket a row costs the databases a group a row for nothing).
    pub fn range(low: i64, high: i64) -> Buckets {
        let span = i128::from(high) - i128::from(low) + 1;
        let width = ((span + BUCKETS as i128 - 1) / BUCKETS as i128).max(MIN_WIDTH);
        match (i64::try_from(span), i64::try_from(width.max(1))) {
            (Ok(_), Ok(width)) => Buckets::Range { low, width },
            _ => Buckets::Hash,
        }
    }

    /// The keys of range bucket `b`: `low + b·width ..< low + (b+1)·width`.
    pub fn bounds(&self, b: usize) -> Option<(i64, i64)> {
        match *self {
            Buckets::Range { low, width } => {
                let start = low.saturating_add(width.saturating_mul(i64::try_from(b).ok()?));
                Some((start, start.saturating_add(width)))
            }
            Buckets::Hash => None,
        }
    }
}

/// How the rows of one side are written and bucketed.
#[derive(Clone)]
pub struct Plan {
    dialect: Dialect,
    orders: Vec<KeyOrder>,
    /// The class of each compared column, what this side's column holds, and what the
    /// other side's holds.
    columns: Vec<(Class, Own, Own)>,
    pub buckets: Buckets,
    /// Both sides are PostgreSQL 14 or later: rows are hashed by `hash_record_extended`
    /// (each type's own hash, no text written) rather than by MD5 of their text.
    pub native: bool,
}

impl Plan {
    /// The plan of a side whose first row is `first`, the other side's being `other`.
    pub fn new(
        dialect: Dialect,
        orders: &[KeyOrder],
        classes: &[Class],
        (first, other): (Option<&[Value]>, Option<&[Value]>),
        buckets: Buckets,
    ) -> Plan {
        let width = orders.len();
        let own = |row: Option<&[Value]>, i: usize| Own::of(row.and_then(|r| r.get(width + i)));
        let columns = classes
            .iter()
            .enumerate()
            .map(|(i, class)| (*class, own(first, i), own(other, i)))
            .collect();
        Plan {
            dialect,
            orders: orders.to_vec(),
            columns,
            buckets,
            native: false,
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Whether this side prints doubles (a double column, or numbers compared as doubles):
    /// then the server must print them exactly ([`Plan::double_probe`]), or two doubles could be
    /// written alike.
    pub fn prints_doubles(&self) -> bool {
        self.columns.iter().any(|(class, own, _)| match class {
            Class::Float => own != &Own::Text && own != &Own::Bytes,
            Class::Text | Class::Exact => *own == Own::Float,
            Class::Rounded(_) | Class::Instant(_) => false,
        })
    }

    /// A query of one row: `1` when the server prints a double that needs 17 digits with
    /// all of them (`extra_float_digits` below 1 on PostgreSQL, or MySQL before 8.0, print
    /// 15), then `1` when it is PostgreSQL 14 or later (`hash_record_extended`).
    pub fn probe(&self) -> String {
        match self.dialect {
            Dialect::Mysql => "SELECT CASE WHEN CAST(59.970000000000006e0 AS CHAR) = '59.970000000000006' THEN 1 ELSE 0 END, 0".to_owned(),
            _ => "SELECT CASE WHEN CAST(CAST('59.970000000000006' AS double precision) AS TEXT) = '59.970000000000006' THEN 1 ELSE 0 END, CASE WHEN CAST(current_setting('server_version_num') AS integer) >= 140000 THEN 1 ELSE 0 END".to_owned(),
        }
    }

    /// The query that returns, per bucket of this side's rows, the bucket, the number of
    /// rows and the sum of their hashes as text (`rows` from [`crate::compile::reconcile_rows`]).
    pub fn bucket_query(&self, rows: &SideRows) -> String {
        let d = self.dialect;
        let q = |s: &str| d.quote(s);
        let fragments = self.row_fragments(rows);
        let hash = match d {
            _ if self.native => format!(
                "hash_record_extended(ROW({}), 0)",
                self.native_fields(rows).join(", ")
            ),
            Dialect::Mysql => format!(
                "CAST(CONV(SUBSTRING(MD5(CONCAT({})), 1, 15), 16, 10) AS UNSIGNED)",
                fragments.join(", ")
            ),
            _ => format!(
                "CAST(CAST('x' || substr(md5(concat({})), 1, 15) AS bit(60)) AS bigint)",
                fragments.join(", ")
            ),
        };
        let sum = d.as_text(&format!("sum({})", q("h")));
        format!(
            "SELECT {b}, count(*), {sum} FROM (SELECT {} AS {b}, {hash} AS {h} FROM {} WHERE {}) AS {} GROUP BY {b}",
            self.bucket_expr(rows),
            rows.from,
            rows.condition,
            q("trueup_rows"),
            b = q("b"),
            h = q("h"),
        )
    }

    /// The bucket of a row, in SQL.
    pub fn bucket_expr(&self, rows: &SideRows) -> String {
        match (self.buckets, self.dialect) {
            (Buckets::Range { low, width }, Dialect::Mysql) => {
                format!("(({} - ({low})) DIV {width})", rows.key[0])
            }
            (Buckets::Range { low, width }, _) => {
                format!("(({} - ({low})) / {width})", rows.key[0])
            }
            (Buckets::Hash, Dialect::Mysql) => format!(
                "CAST(CONV(SUBSTRING(MD5(CONCAT({})), 1, 4), 16, 10) AS UNSIGNED)",
                self.key_fragments(rows).join(", ")
            ),
            (Buckets::Hash, _) => format!(
                "CAST(CAST('x' || substr(md5(concat({})), 1, 4) AS bit(16)) AS integer)",
                self.key_fragments(rows).join(", ")
            ),
        }
    }

    fn key_fragments(&self, rows: &SideRows) -> Vec<String> {
        rows.key
            .iter()
            .zip(&self.orders)
            .map(|(k, _)| self.fragment(k, 's', &self.dialect.as_text(k)))
            .collect()
    }

    /// The fields of a row hashed by PostgreSQL's own hash functions: a column as it is
    /// when both sides hold the same kind of value and it is compared by equality (values
    /// equal for PostgreSQL are the same for `same`), else its written text. Text is hashed
    /// as `text` (a `json` column has no hash function), under the database's default
    /// collation, which is deterministic: equal means the same characters.
    fn native_fields(&self, rows: &SideRows) -> Vec<String> {
        // A key is hashed as the merge compares it: an integer, or its text.
        let mut out: Vec<String> = rows
            .key
            .iter()
            .zip(&self.orders)
            .map(|(k, order)| match order {
                KeyOrder::Integer => k.clone(),
                KeyOrder::Text => self.dialect.as_text(k),
            })
            .collect();
        for (c, (class, own, other)) in rows.columns.iter().zip(&self.columns) {
            let by_equality = matches!(
                class,
                Class::Text | Class::Exact | Class::Float | Class::Instant(1)
            );
            let hashable = matches!(
                own,
                Own::Int | Own::Bool | Own::Decimal | Own::Float | Own::Timestamp | Own::Bytes
            );
            if by_equality && hashable && own == other {
                out.push(c.clone());
            } else {
                out.push(self.written(c, *class, *own).1);
            }
        }
        out
    }

    fn row_fragments(&self, rows: &SideRows) -> Vec<String> {
        let mut out = self.key_fragments(rows);
        for (c, (class, own, _)) in rows.columns.iter().zip(&self.columns) {
            let (tag, text) = self.written(c, *class, *own);
            out.push(self.fragment(c, tag, &text));
        }
        out
    }

    /// `n` for NULL, else the tag, the text's length in characters, `:` and the text: no
    /// two different rows of values are written alike.
    fn fragment(&self, expr: &str, tag: char, text: &str) -> String {
        match self.dialect {
            Dialect::Mysql => {
                format!(
                    "IF({expr} IS NULL, 'n', CONCAT('{tag}', CHAR_LENGTH({text}), ':', {text}))"
                )
            }
            _ => format!(
                "CASE WHEN {expr} IS NULL THEN 'n' ELSE '{tag}' || length({text}) || ':' || {text} END"
            ),
        }
    }

    /// The tag and the text expression a value of `expr` is written as.
    fn written(&self, expr: &str, class: Class, own: Own) -> (char, String) {
        let mysql = self.dialect == Dialect::Mysql;
        let text = |e: &str| self.dialect.as_text(e);
        // MySQL writes a decimal's trailing zeros: `10.50` → `10.5`, `10.00` → `10`.
        let strip = |s: String| {
            if mysql {
                format!(
                    "IF(LOCATE('.', {s}) > 0, TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {s})), {s})"
                )
            } else {
                s
            }
        };
        let numeric = matches!(own, Own::Int | Own::Decimal | Own::Float | Own::Bool);
        match (class, own) {
            (_, Own::Bytes) if mysql => ('x', format!("LOWER(HEX({expr}))")),
            (_, Own::Bytes) => ('x', format!("encode({expr}, 'hex')")),
            (Class::Instant(p), Own::Timestamp) => {
                let micros = if mysql {
                    format!("TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {expr})")
                } else {
                    format!("CAST(floor(extract(epoch FROM {expr}) * 1000000) AS bigint)")
                };
                // Floor division in integers (as `div_euclid`): `DIV` and `/` truncate
                // toward zero, and MySQL's decimal division rounds to 4 places.
                let floor = if p == 1 {
                    micros
                } else if mysql {
                    format!("(({micros} - MOD(MOD({micros}, {p}) + {p}, {p})) DIV {p})")
                } else {
                    format!("(({micros} - mod(mod({micros}, {p}) + {p}, {p})) / {p})")
                };
                ('t', text(&floor))
            }
            (Class::Exact | Class::Float | Class::Rounded(_), Own::Bool) if !mysql => {
                ('s', format!("CASE WHEN {expr} THEN '1' ELSE '0' END"))
            }
            (Class::Exact, Own::Int) => ('s', text(expr)),
            (Class::Exact, Own::Decimal) if mysql => ('s', strip(text(expr))),
            (Class::Exact, Own::Decimal) => ('s', text(&format!("trim_scale({expr})"))),
            (Class::Float, _) if numeric && mysql => ('s', text(&format!("({expr} + 0e0)"))),
            (Class::Float, _) if numeric => {
                ('s', text(&format!("CAST({expr} AS double precision)")))
            }
            (Class::Rounded(d), _) if numeric && mysql => {
                ('s', strip(text(&format!("ROUND({expr}, {d})"))))
            }
            (Class::Rounded(d), _) if numeric => (
                's',
                text(&format!("trim_scale(round(CAST({expr} AS numeric), {d}))")),
            ),
            _ => ('s', text(expr)),
        }
    }
}

/// The checksums of one side: rows and the sum of their hashes, per bucket.
pub struct Sums {
    pub count: Vec<u64>,
    pub sum: Vec<i128>,
}

impl Sums {
    pub fn new() -> Sums {
        Sums {
            count: vec![0; BUCKETS],
            sum: vec![0; BUCKETS],
        }
    }

    /// The buckets whose rows or sums differ between `self` and `other`.
    pub fn differing(&self, other: &Sums) -> Vec<usize> {
        (0..BUCKETS)
            .filter(|b| self.count[*b] != other.count[*b] || self.sum[*b] != other.sum[*b])
            .collect()
    }
}

/// Rows written and hashed here, as the SQL above does inside a server (SQLite sides).
pub struct Hasher {
    classes: Vec<Class>,
    width: usize,
    pub buckets: Buckets,
    text: String,
}

impl Hasher {
    pub fn new(classes: &[Class], width: usize, buckets: Buckets) -> Hasher {
        Hasher {
            classes: classes.to_vec(),
            width,
            buckets,
            text: String::new(),
        }
    }

    /// The bucket of a row (key first), or `None` for a key outside the ranges.
    pub fn bucket(&mut self, row: &[Value]) -> Option<usize> {
        match self.buckets {
            Buckets::Range { low, width } => match row.first() {
                Some(Value::Int(k)) => {
                    usize::try_from((i128::from(*k) - i128::from(low)) / i128::from(width))
                        .ok()
                        .filter(|b| *b < BUCKETS)
                }
                _ => None,
            },
            Buckets::Hash => {
                self.text.clear();
                for value in &row[..self.width.min(row.len())] {
                    push_fragment(&mut self.text, value, Class::Text);
                }
                let digest = Md5::digest(self.text.as_bytes());
                Some(usize::from(u16::from_be_bytes([digest[0], digest[1]])))
            }
        }
    }

    /// The 60-bit hash of a row: its key, then its compared columns.
    pub fn hash(&mut self, row: &[Value]) -> u64 {
        self.text.clear();
        for value in &row[..self.width.min(row.len())] {
            push_fragment(&mut self.text, value, Class::Text);
        }
        for (i, class) in self.classes.iter().enumerate() {
            let value = row.get(self.width + i).unwrap_or(&Value::Null);
            push_fragment(&mut self.text, value, *class);
        }
        let digest = Md5::digest(self.text.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first) >> 4
    }
}

/// Appends the fragment of `value` of a column of `class` to `out`.
fn push_fragment(out: &mut String, value: &Value, class: Class) {
    use std::fmt::Write;
    let (tag, text) = match value {
        Value::Null => {
            out.push('n');
            return;
        }
        Value::Bytes(bytes) => ('x', crate::value::hex(bytes)),
        value => ('s', written(value, class)),
    };
    let text = match (class, value) {
        (Class::Instant(p), Value::Timestamp(_) | Value::Text(_)) => match instant(value) {
            Some(micros) => {
                let floor = micros.div_euclid(p).to_string();
                let _ = write!(out, "t{}:{floor}", floor.len());
                return;
            }
            None => text,
        },
        _ => text,
    };
    let _ = write!(out, "{tag}{}:{text}", text.chars().count());
}

/// The text of a non-NULL value of a column of `class` (instants aside).
fn written(value: &Value, class: Class) -> String {
    let number = |value: &Value| -> Option<f64> {
        match value {
            // As `same` reads an integer against a double: by its digits.
            Value::Int(i) => i.to_string().parse().ok(),
            Value::Float(x) => Some(*x),
            Value::Decimal(t) | Value::Text(t) => exact(t).and_then(|e| e.parse().ok()),
            _ => None,
        }
    };
    match (class, value) {
        (Class::Exact | Class::Float | Class::Rounded(_), Value::Bool(b)) => {
            u8::from(*b).to_string()
        }
        (Class::Exact, Value::Int(i)) => i.to_string(),
        (Class::Exact, Value::Decimal(t) | Value::Text(t)) => exact(t).unwrap_or_else(|| t.clone()),
        (Class::Exact, Value::Float(x)) if x.is_finite() => {
            exact(&format!("{x}")).unwrap_or_else(|| text(value))
        }
        (Class::Float, v) => match number(v) {
            Some(x) => format!("{x}"),
            None => text(v),
        },
        (Class::Rounded(d), v) => match number(v).filter(|x| x.is_finite()) {
            Some(x) => rounded(x, d).unwrap_or_else(|| text(v)),
            None => text(v),
        },
        (_, v) => text(v),
    }
}

/// A value's text; a double's with every digit it needs to be read back exactly (the
/// `Display` of [`Value`] rounds doubles for people).
fn text(value: &Value) -> String {
    match value {
        Value::Float(x) => format!("{x}"),
        other => other.to_string(),
    }
}

/// `x` rounded to `d` decimals (negative: tens, hundreds…), by its digits.
fn rounded(x: f64, d: i32) -> Option<String> {
    let text = if let Ok(d) = usize::try_from(d) {
        format!("{x:.d$}")
    } else {
        let grid = 10f64.powi(-d);
        format!("{}", (x / grid).round() * grid)
    };
    exact(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tolerance_rounds_to_the_finest_power_of_ten_no_larger() {
        assert_eq!(decimals(0.005), 3);
        assert_eq!(decimals(0.01), 2);
        assert_eq!(decimals(0.5), 1);
        assert_eq!(decimals(5.0), 0);
        assert_eq!(decimals(50.0), -1);
        assert_eq!(rounded(10.0049, 3).as_deref(), Some("10.005"));
        assert_eq!(rounded(40.0, 3).as_deref(), Some("40"));
        assert_eq!(rounded(1234.0, -1).as_deref(), Some("1230"));
    }

    #[test]
    fn ranges_cover_the_keys_in_at_most_the_buckets() {
        assert_eq!(Buckets::range(3, 10), Buckets::Range { low: 3, width: 32 });
        let Buckets::Range { low, width } = Buckets::range(1, 10_000_000) else {
            panic!("a range");
        };
        assert_eq!((low, width), (1, 153));
        assert!(i128::from(width) * BUCKETS as i128 >= 10_000_000);
        // A span wider than the key's type: by hash.
        assert_eq!(Buckets::range(i64::MIN, i64::MAX), Buckets::Hash);
    }

    #[test]
    fn values_that_are_the_same_are_written_alike_and_others_not() {
        let text = |value: Value, class: Class| {
            let mut out = String::new();
            push_fragment(&mut out, &value, class);
            out
        };
        // Exact numbers by their digits.
        assert_eq!(
            text(Value::Decimal("10.50".into()), Class::Exact),
            "s4:10.5"
        );
        assert_eq!(
            text(Value::Int(10), Class::Exact),
            text(Value::Decimal("10.00".into()), Class::Exact)
        );
        // A double by every digit it has: 59.970000000000006 is not 59.97.
        assert_ne!(
            text(Value::Float(59.970_000_000_000_006), Class::Float),
            text(Value::Decimal("59.97".into()), Class::Float)
        );
        assert_eq!(
            text(Value::Float(0.1), Class::Float),
            text(Value::Decimal("0.10".into()), Class::Float)
        );
        // Instants floor-divided by the precision, before 1970 too.
        let second = Class::Instant(1_000_000);
        assert_eq!(
            text(Value::Text("1969-12-31 23:59:59.5".into()), second),
            text(Value::Timestamp("1969-12-31 23:59:59".into()), second)
        );
        assert_ne!(
            text(Value::Text("1969-12-31 23:59:59.5".into()), second),
            text(Value::Text("1970-01-01 00:00:00".into()), second)
        );
        // NULL, empty text and text that looks like a tag are all apart.
        assert_eq!(text(Value::Null, Class::Text), "n");
        assert_eq!(text(Value::Text(String::new()), Class::Text), "s0:");
        assert_eq!(text(Value::Text("n".into()), Class::Text), "s1:n");
    }
}
