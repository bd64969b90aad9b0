//! Wall-clock times as trueup stores and shows them: Unix milliseconds, printed as UTC
//! ISO-8601 without pulling in a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix milliseconds.
pub fn now_millis() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// `2026-11-27T16:30:00Z` for Unix milliseconds.
pub fn iso8601(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const POSTGRES_EPOCH_DAYS: i64 = 10_957;

/// A PostgreSQL `timestamp` (microseconds since 2000-01-01) as PostgreSQL prints it:
/// `2026-11-27 17:31:54`, with `.fraction` when there is one.
pub fn postgres_timestamp(micros: i64) -> String {
    match micros {
        i64::MAX => return "infinity".to_owned(),
        i64::MIN => return "-infinity".to_owned(),
        _ => {}
    }
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days + POSTGRES_EPOCH_DAYS);
    // Each part is below 60 (or 24), the fraction below a million.
    let part = |n: i64| u8::try_from(n).unwrap_or(0);
    datetime_text(
        year,
        part(month),
        part(day),
        (
            part(second_of_day / 3600),
            part(second_of_day % 3600 / 60),
            part(second_of_day % 60),
        ),
        u32::try_from(fraction).unwrap_or(0),
    )
}

/// A date and time of day as PostgreSQL writes a timestamp: `2026-12-04 10:05:09`, then
/// the microseconds without their trailing zeros (`.25`) when there are any.
pub fn datetime_text(
    year: i64,
    month: u8,
    day: u8,
    (hour, minute, second): (u8, u8, u8),
    micros: u32,
) -> String {
    let mut text = String::with_capacity(26);
    if year < 0 {
        text.push('-');
    }
    crate::value::push_padded(&mut text, year.unsigned_abs(), 4);
    // Each part is below 100: two digits in place (this runs for every timestamp read).
    let mut rest = *b"-00-00 00:00:00";
    for (at, part) in [(1, month), (4, day), (7, hour), (10, minute), (13, second)] {
        rest[at] = b'0' + part / 10 % 10;
        rest[at + 1] = b'0' + part % 10;
    }
    text.push_str(std::str::from_utf8(&rest).unwrap_or_default());
    push_fraction(&mut text, micros);
    text
}

/// Appends `.` and the microseconds without their trailing zeros, when there are any.
pub fn push_fraction(text: &mut String, micros: u32) {
    if micros > 0 {
        text.push('.');
        let start = text.len();
        crate::value::push_padded(text, u64::from(micros), 6);
        let kept = text[start..].trim_end_matches('0').len();
        text.truncate(start + kept);
    }
}

/// A PostgreSQL `date` (days since 2000-01-01) as PostgreSQL prints it: `2026-11-27`.
pub fn postgres_date(days: i32) -> String {
    match days {
        i32::MAX => "infinity".to_owned(),
        i32::MIN => "-infinity".to_owned(),
        days => {
            let (year, month, day) = civil_from_days(i64::from(days) + POSTGRES_EPOCH_DAYS);
            format!("{year:04}-{month:02}-{day:02}")
        }
    }
}

/// Howard Hinnant's `civil_from_days`: the proleptic Gregorian date of a day count.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_795_796_200_123), "2026-11-27T16:16:40Z");
    }

    #[test]
    fn formats_postgres_timestamps_as_postgres_does() {
        assert_eq!(postgres_timestamp(0), "2000-01-01 00:00:00");
        assert_eq!(postgres_timestamp(-1), "1999-12-31 23:59:59.999999");
        assert_eq!(postgres_timestamp(500_000), "2000-01-01 00:00:00.5");
        assert_eq!(postgres_timestamp(i64::MAX), "infinity");
        assert_eq!(postgres_date(0), "2000-01-01");
        assert_eq!(postgres_date(-1), "1999-12-31");
        assert_eq!(postgres_date(9827), "2026-11-27");
    }
}
