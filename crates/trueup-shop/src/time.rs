//! Timestamps of the shop: seconds, shown as `YYYY-MM-DD HH:MM:SS` (UTC, no zone).

use std::fmt;

use crate::rng::SplitMix64;

/// 2025-01-01 00:00:00 UTC, the shop's opening.
const OPENING: i64 = 1_735_689_600;
const DAY: i64 = 86_400;

/// A moment, in seconds since the Unix epoch; displays as `YYYY-MM-DD HH:MM:SS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn from_unix_seconds(seconds: i64) -> Self {
        Self(seconds)
    }

    pub fn unix_seconds(self) -> i64 {
        self.0
    }

    /// A moment in the shop's two years (2025 and 2026), leaving its last day free so that
    /// later events (payments) stay inside them too.
    pub(crate) fn random(rng: &mut SplitMix64) -> Self {
        Self(OPENING + rng.range(0, 729 * DAY - 1))
    }

    /// This moment plus `seconds`.
    pub(crate) fn plus(self, seconds: i64) -> Self {
        Self(self.0 + seconds)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(DAY);
        let second_of_day = self.0.rem_euclid(DAY);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60
        )
    }
}

/// Year, month and day of a day number since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_calendar_dates() {
        assert_eq!(Timestamp(OPENING).to_string(), "2025-01-01 00:00:00");
        assert_eq!(Timestamp(0).to_string(), "1970-01-01 00:00:00");
        assert_eq!(
            Timestamp(951_782_400 + 3661).to_string(),
            "2000-02-29 01:01:01"
        );
        assert_eq!(
            Timestamp(OPENING + 730 * DAY - 1).to_string(),
            "2026-12-31 23:59:59"
        );
    }

    #[test]
    fn random_moments_stay_in_2025_and_2026() {
        let mut rng = SplitMix64::new(1);
        for _ in 0..10_000 {
            let text = Timestamp::random(&mut rng).plus(DAY).to_string();
            assert!(
                text.starts_with("2025-") || text.starts_with("2026-"),
                "{text}"
            );
        }
    }
}
