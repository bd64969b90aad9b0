//! When two values read from two databases are the same: numbers by value (an integer, an
//! exact decimal and a double alike, within a column's `tolerance`), timestamps as instants
//! (to a column's `precision`), text by its characters, NULL only as NULL. The rules are
//! written out in docs/design/reconcile.md.

use std::cmp::Ordering;

use crate::compile::KeyOrder;
use crate::value::Value;

/// How one compared column is compared.
#[derive(Debug, Clone)]
pub struct Column {
    /// The left side's name.
    pub name: String,
    /// Largest difference of two numbers that are the same (0: exact).
    pub tolerance: f64,
    /// Timestamps are compared truncated to this many microseconds (1: all of them).
    pub precision_micros: i64,
}

/// Whether `a` (left) and `b` (right) are the same value of `column`.
pub fn same(a: &Value, b: &Value, column: &Column) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => return true,
        (Value::Null, _) | (_, Value::Null) => return false,
        // The common case, without parsing: the same value, read the same way.
        (Value::Int(x), Value::Int(y)) if x == y => return true,
        (Value::Text(x), Value::Text(y))
        | (Value::Decimal(x), Value::Decimal(y))
        | (Value::Timestamp(x), Value::Timestamp(y))
            if x == y =>
        {
            return true;
        }
        _ => {}
    }
    if (is_timestamp(a) || is_timestamp(b) || column.precision_micros > 1)
        && let (Some(x), Some(y)) = (instant(a), instant(b))
    {
        let p = column.precision_micros.max(1);
        return x.div_euclid(p) == y.div_euclid(p);
    }
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        return same_number(&x, &y, column.tolerance);
    }
    match (a, b) {
        (Value::Bytes(x), Value::Bytes(y)) => x == y,
        (Value::Bytes(x), Value::Text(y)) | (Value::Text(y), Value::Bytes(x)) => {
            x.as_slice() == y.as_bytes()
        }
        _ => a.to_string() == b.to_string(),
    }
}

/// The order of two keys' values as trueup merges the sides: integers by value, anything
/// else by the bytes of its text (as the sides' queries sort it). `None` when a value
/// does not fit its column's order (text in an integer key).
pub fn key_cmp(a: &[Value], b: &[Value], orders: &[KeyOrder]) -> Option<Ordering> {
    for ((x, y), order) in a.iter().zip(b).zip(orders) {
        let ordering = match order {
            KeyOrder::Integer => match (x, y) {
                (Value::Int(x), Value::Int(y)) => x.cmp(y),
                _ => return None,
            },
            KeyOrder::Text => text_bytes(x).cmp(&text_bytes(y)),
        };
        if ordering != Ordering::Equal {
            return Some(ordering);
        }
    }
    Some(Ordering::Equal)
}

/// The bytes of a value's text: borrowed for the values that are text already (the common
/// case of a text key), written out for the others.
fn text_bytes(value: &Value) -> std::borrow::Cow<'_, [u8]> {
    match value {
        Value::Text(s) | Value::Decimal(s) | Value::Timestamp(s) => {
            std::borrow::Cow::Borrowed(s.as_bytes())
        }
        other => std::borrow::Cow::Owned(other.to_string().into_bytes()),
    }
}

fn is_timestamp(value: &Value) -> bool {
    matches!(value, Value::Timestamp(_))
}

/// A number read from any side: exact (its decimal digits, normalised) or a double.
#[derive(Debug, PartialEq)]
enum Number {
    Exact(String),
    Float(f64),
}

fn number(value: &Value) -> Option<Number> {
    match value {
        Value::Int(i) => Some(Number::Exact(i.to_string())),
        Value::Bool(b) => Some(Number::Exact(u8::from(*b).to_string())),
        Value::Decimal(text) => exact(text).map(Number::Exact),
        Value::Float(x) => Some(Number::Float(*x)),
        // Text only when it is a plain decimal number (`"42"`, `"-1.50"`).
        Value::Text(text) => exact(text).map(Number::Exact),
        Value::Null | Value::Timestamp(_) | Value::Bytes(_) => None,
    }
}

/// A decimal number's text in one form: no sign for zero or `+`, no leading zeros, no
/// trailing zeros after the point, no point without decimals. `None` for anything that
/// is not `[-+]digits[.digits]`.
pub(super) fn exact(text: &str) -> Option<String> {
    let text = text.trim();
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole = whole.trim_start_matches('0');
    let fraction = fraction.trim_end_matches('0');
    let mut out = String::with_capacity(digits.len() + 1);
    if negative && !(whole.is_empty() && fraction.is_empty()) {
        out.push('-');
    }
    out.push_str(if whole.is_empty() { "0" } else { whole });
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    Some(out)
}

fn same_number(a: &Number, b: &Number, tolerance: f64) -> bool {
    if let (Number::Exact(x), Number::Exact(y), true) = (a, b, tolerance == 0.0) {
        return x == y;
    }
    let float = |n: &Number| match n {
        Number::Exact(text) => text.parse::<f64>().ok(),
        Number::Float(x) => Some(*x),
    };
    let (Some(x), Some(y)) = (float(a), float(b)) else {
        return false;
    };
    // Two NaNs are the same value (as two NULLs are), and so are two infinities of a sign.
    if x == y || (x.is_nan() && y.is_nan()) {
        return true;
    }
    if tolerance == 0.0 {
        return false;
    }
    // Binary noise at the edge (10.005 - 10.00 is 0.00499999…) is not a difference.
    let noise = 1e-9 * x.abs().max(y.abs()).max(1.0);
    (x - y).abs() <= tolerance + noise
}

/// A timestamp's instant in microseconds since 1970 (UTC when it gives an offset, as
/// written when it does not): `2026-12-04`, `2026-12-04 10:05:09.25`, `…T…Z`, `…+01:00`,
/// `…+00`. `None` for anything else.
pub fn instant(value: &Value) -> Option<i64> {
    let text = match value {
        Value::Timestamp(text) | Value::Text(text) => text.trim(),
        _ => return None,
    };
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut micros = days_from_civil(year, month, day) * 86_400_000_000;
    let mut rest = &text[10..];
    if let Some(time) = rest.strip_prefix([' ', 'T']) {
        let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
        if time.len() < 8 || &text[13..14] != ":" || &text[16..17] != ":" {
            return None;
        }
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        micros += ((hour * 60 + minute) * 60 + second) * 1_000_000;
        rest = &text[19..];
        if let Some(fraction) = rest.strip_prefix('.') {
            let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if len == 0 {
                return None;
            }
            let mut value: i64 = 0;
            for (i, b) in fraction.bytes().take(len).enumerate() {
                if i < 6 {
                    value = value * 10 + i64::from(b - b'0');
                }
            }
            for _ in len..6 {
                value *= 10;
            }
            micros += value;
            rest = &fraction[len..];
        }
    }
    let offset = match rest.trim() {
        "" | "Z" | "z" => 0,
        zone => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hm: String = zone[1..].chars().filter(|c| *c != ':').collect();
            if !hm.bytes().all(|b| b.is_ascii_digit()) || !matches!(hm.len(), 2 | 4) {
                return None;
            }
            let hours: i64 = hm[..2].parse().ok()?;
            let minutes: i64 = if hm.len() == 4 {
                hm[2..].parse().ok()?
            } else {
                0
            };
            sign * (hours * 60 + minutes) * 60_000_000
        }
    };
    Some(micros - offset)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(tolerance: f64, precision_micros: i64) -> Column {
        Column {
            name: "c".into(),
            tolerance,
            precision_micros,
        }
    }

    #[test]
    fn numbers_are_the_same_by_value_across_types() {
        let exact = column(0.0, 1);
        let d = |s: &str| Value::Decimal(s.into());
        assert!(same(&d("10.00"), &Value::Int(10), &exact));
        assert!(same(&d("10.50"), &Value::Float(10.5), &exact));
        assert!(same(&d("0.10"), &Value::Float(0.1), &exact));
        assert!(same(&d("-0.00"), &Value::Int(0), &exact));
        assert!(same(&Value::Text("42".into()), &Value::Int(42), &exact));
        assert!(same(&Value::Bool(true), &Value::Int(1), &exact));
        assert!(!same(&d("10.01"), &Value::Int(10), &exact));
        assert!(!same(
            &Value::Float(59.970000000000006),
            &d("59.97"),
            &exact
        ));
        let cent = column(0.005, 1);
        assert!(same(&Value::Float(59.970000000000006), &d("59.97"), &cent));
        assert!(same(&d("10.005"), &d("10.00"), &cent));
        assert!(!same(&d("10.006"), &d("10.00"), &cent));
        assert!(!same(&Value::Null, &Value::Int(0), &exact));
        assert!(same(&Value::Null, &Value::Null, &exact));
        assert!(!same(
            &Value::Text("abc".into()),
            &Value::Text("ABC".into()),
            &exact
        ));
    }

    #[test]
    fn timestamps_are_instants_to_a_precision() {
        let t = |s: &str| Value::Timestamp(s.into());
        let micro = column(0.0, 1);
        assert!(same(
            &t("2026-12-04 10:05:09.250"),
            &t("2026-12-04 10:05:09.25"),
            &micro
        ));
        assert!(same(
            &t("2026-12-04 10:05:09+00"),
            &Value::Text("2026-12-04T11:05:09+01:00".into()),
            &micro
        ));
        assert!(!same(
            &t("2026-12-04 10:05:09.5"),
            &t("2026-12-04 10:05:09"),
            &micro
        ));
        let second = column(0.0, 1_000_000);
        assert!(same(
            &t("2026-12-04 10:05:09.5"),
            &t("2026-12-04 10:05:09"),
            &second
        ));
        assert!(!same(
            &t("2026-12-04 10:05:10"),
            &t("2026-12-04 10:05:09.9"),
            &second
        ));
        assert_eq!(instant(&t("1970-01-01")), Some(0));
        assert_eq!(instant(&t("1970-01-02 00:00:01.5Z")), Some(86_401_500_000));
        assert_eq!(instant(&t("2000-03-01")), Some(951_868_800_000_000));
        for bad in [
            "",
            "2026-13-01",
            "2026-12-04 25:00:00",
            "yesterday",
            "2026-12-04 10:05",
        ] {
            assert_eq!(instant(&Value::Text(bad.into())), None, "{bad}");
        }
    }

    #[test]
    fn keys_order_as_integers_or_as_the_bytes_of_their_text() {
        use KeyOrder::{Integer, Text};
        let (a, b) = ([Value::Int(9)], [Value::Int(10)]);
        assert_eq!(key_cmp(&a, &b, &[Integer]), Some(Ordering::Less));
        assert_eq!(key_cmp(&a, &b, &[Text]), Some(Ordering::Greater));
        assert_eq!(
            key_cmp(&[Value::Int(7)], &[Value::Text("7".into())], &[Text]),
            Some(Ordering::Equal)
        );
        assert_eq!(key_cmp(&[Value::Text("7".into())], &a, &[Integer]), None);
    }
}
