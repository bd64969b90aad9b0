//! `robust-outliers`: reports numbers far from the column's median, measured in MADs
//! (median absolute deviations).
//!
//! Mean and standard deviation are pulled by the very outliers they should find (one price
//! of 1,000,000 among prices of 10 moves the mean a lot and the deviation even more); the
//! median and the MAD are not. With `median = median(v)` and `MAD = median(|v − median|)`,
//! a value is an outlier when `|v − median| > threshold × MAD`, or, when the MAD is 0 (at
//! least half the values equal the median), when it differs from the median at all.
//!
//! The check runs in `finish`, over every value of the column: the plugin keeps one key and
//! one `f64` per row. [`Stats::of`] and [`Stats::is_outlier`] are the whole check, as pure
//! functions.

use trueup_plugin_sdk::{Columns, Finding, Findings, Key, Plugin, Row, Value, export};

/// The configuration of a rule that runs this plugin: its `[rule.detector.config]` table.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The query column of numbers: integers, floating point, or exact decimals (SQL
    /// `NUMERIC`, read as the nearest `f64`); text that parses as a number is read too.
    /// NULL values and values that are not numbers (including NaN) are skipped.
    pub column: String,
    /// How many MADs (median absolute deviations) from the median a value must be to be
    /// reported: a value `v` is reported when `|v − median| > threshold × MAD`. When the
    /// MAD is 0 (at least half the values are equal), every value other than the median is
    /// reported. For normally distributed data one MAD is about 0.67 standard deviations,
    /// so the default of 8 is about 5.4 standard deviations: only gross outliers, such as a
    /// misplaced decimal point. Lower it (3 to 5 is common) to see more.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

fn default_threshold() -> f64 {
    8.0
}

/// The number a value holds, or `None` for NULL, NaN and what is not a number.
pub fn number(value: Value<'_>) -> Option<f64> {
    let x = match value {
        // Only for measuring distances: a lossy conversion of a huge integer is fine.
        #[allow(clippy::cast_precision_loss)]
        Value::Int(i) => i as f64,
        Value::Float(x) => x,
        Value::Decimal(s) | Value::Text(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (!x.is_nan()).then_some(x)
}

/// The median of `values` (the mean of the two middle ones for an even count), reordering
/// them; `None` when there are none. Values must not be NaN.
pub fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let (left, &mut upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        return Some(upper);
    }
    let lower = left.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // Halving is exact, so this is (lower + upper) / 2 without overflowing.
    Some(lower / 2.0 + upper / 2.0)
}

/// The median and MAD of a column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub median: f64,
    /// The median absolute deviation: the median of `|v − median|`.
    pub mad: f64,
}

impl Stats {
    /// The median and MAD of `values` (not NaN), or `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Stats> {
        let mut scratch = values.to_vec();
        let median = median(&mut scratch)?;
        for x in &mut scratch {
            *x = (*x - median).abs();
        }
        let mad = self::median(&mut scratch)?;
        Some(Stats { median, mad })
    }

    /// Whether `value` is an outlier: more than `threshold` MADs from the median, or, when
    /// the MAD is 0, not the median.
    pub fn is_outlier(&self, value: f64, threshold: f64) -> bool {
        let distance = (value - self.median).abs();
        if self.mad == 0.0 {
            value != self.median
        } else {
            distance > threshold * self.mad
        }
    }

    /// The finding's message for an outlier `value`.
    pub fn message(&self, value: f64) -> String {
        let (v, median) = (show(value), show(self.median));
        if self.mad == 0.0 {
            format!("{v} differs from the median {median}, which at least half the values equal")
        } else {
            let mads = (value - self.median).abs() / self.mad;
            format!("{v} is {mads:.1} MADs from the median {median}")
        }
    }
}

/// A number for a message: 2 decimals (as for money), more for small numbers so that they
/// do not show as 0.00, exponent notation for huge ones.
pub fn show(x: f64) -> String {
    let magnitude = x.abs();
    if !x.is_finite() || magnitude >= 1e15 {
        return format!("{x:e}");
    }
    if magnitude == 0.0 || magnitude >= 0.01 {
        return format!("{x:.2}");
    }
    // 3 significant digits: 0.000123 has 3 zeros after the point, so 6 decimals.
    let mut decimals = 3;
    let mut scaled = magnitude;
    while scaled < 0.1 && decimals < 17 {
        scaled *= 10.0;
        decimals += 1;
    }
    format!("{x:.decimals$}")
}

/// The plugin: keeps each row's key and number, finds the outliers in `finish`.
pub struct RobustOutliers {
    column: usize,
    threshold: f64,
    rows: Vec<(Key, f64)>,
}

impl Plugin for RobustOutliers {
    const NAME: &'static str = "robust-outliers";
    const DESCRIPTION: &'static str =
        "Reports numbers far from the column's median, in median absolute deviations (MADs)";
    type Config = Config;

    fn new(config: Config, columns: &Columns) -> Result<Self, String> {
        if !(config.threshold.is_finite() && config.threshold >= 0.0) {
            return Err(format!(
                "`threshold` must be a finite number, 0 or more; it is {}",
                config.threshold
            ));
        }
        Ok(RobustOutliers {
            column: columns.require(&config.column)?,
            threshold: config.threshold,
            rows: Vec::new(),
        })
    }

    fn check(&mut self, row: &Row<'_>) -> Option<Finding> {
        if let Some(x) = number(row.get(self.column)) {
            self.rows.push((row.key(), x));
        }
        None
    }

    fn finish(&mut self, findings: &mut Findings) {
        let values: Vec<f64> = self.rows.iter().map(|&(_, x)| x).collect();
        let Some(stats) = Stats::of(&values) else {
            return;
        };
        drop(values);
        for (key, x) in std::mem::take(&mut self.rows) {
            if stats.is_outlier(x, self.threshold) {
                findings.push(
                    Finding::new(stats.message(x))
                        .key(key)
                        .detail("value", x)
                        .detail("median", stats.median)
                        .detail("mad", stats.mad),
                );
            }
        }
    }
}

export!(RobustOutliers);

#[cfg(test)]
mod tests {
    use super::*;

    fn median_of(values: &[f64]) -> Option<f64> {
        median(&mut values.to_vec())
    }

    /// The outliers of `values`, by index.
    fn outliers(values: &[f64], threshold: f64) -> Vec<usize> {
        let stats = Stats::of(values).unwrap();
        (0..values.len())
            .filter(|&i| stats.is_outlier(values[i], threshold))
            .collect()
    }

    #[test]
    fn medians() {
        assert_eq!(median_of(&[]), None);
        assert_eq!(median_of(&[5.0]), Some(5.0));
        assert_eq!(median_of(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median_of(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median_of(&[1.0, 1.0, 1.0, 100.0]), Some(1.0));
        assert_eq!(median_of(&[-5.0, 5.0]), Some(0.0));
        assert_eq!(median_of(&[f64::MAX, f64::MAX]), Some(f64::MAX)); // no overflow
        assert_eq!(median_of(&[-0.0, 0.0, 7.0]), Some(0.0));
        // Against sorting, on many sizes.
        let mut seed = 99u64;
        for n in 1..200 {
            let values: Vec<f64> = (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    f64::from(u32::try_from(seed >> 40).unwrap() % 1000) / 10.0
                })
                .collect();
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let expected = if n % 2 == 1 {
                sorted[n / 2]
            } else {
                (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
            };
            assert_eq!(median_of(&values), Some(expected), "{sorted:?}");
        }
    }

    #[test]
    fn median_and_mad() {
        // |v − 3| = 2, 1, 0, 1, 97 → MAD 1.
        let stats = Stats::of(&[1.0, 2.0, 3.0, 4.0, 100.0]).unwrap();
        assert_eq!(
            stats,
            Stats {
                median: 3.0,
                mad: 1.0
            }
        );
        // Even count: median 2.5; deviations 1.5, 0.5, 0.5, 1.5 → MAD 1.
        let stats = Stats::of(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(
            stats,
            Stats {
                median: 2.5,
                mad: 1.0
            }
        );
        assert_eq!(Stats::of(&[]), None);
        assert_eq!(
            Stats::of(&[7.0]),
            Some(Stats {
                median: 7.0,
                mad: 0.0
            })
        );
    }

    #[test]
    fn outliers_by_threshold() {
        let values = [1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(outliers(&values, 8.0), vec![4]);
        assert_eq!(outliers(&values, 97.0), Vec::<usize>::new()); // not more than 97 MADs
        assert_eq!(outliers(&values, 96.9), vec![4]);
        assert_eq!(outliers(&values, 1.5), vec![0, 4]); // 2 MADs away
        assert_eq!(outliers(&values, 0.0), vec![0, 1, 3, 4]);
        // Low outliers too.
        assert_eq!(
            outliers(&[50.0, 51.0, 52.0, 53.0, 54.0, 0.01], 8.0),
            vec![5]
        );
        assert_eq!(
            outliers(&[50.0, 51.0, 52.0, 53.0, 54.0, 52.5, 51.5, -40.0], 8.0),
            vec![7]
        );
    }

    #[test]
    fn a_mad_of_zero_reports_whatever_is_not_the_median() {
        let values = [9.99, 9.99, 9.99, 9.99, 10.0, 500.0];
        assert_eq!(Stats::of(&values).unwrap().mad, 0.0);
        assert_eq!(outliers(&values, 8.0), vec![4, 5]);
        assert_eq!(outliers(&[1.0, 1.0, 1.0], 8.0), Vec::<usize>::new());
    }

    #[test]
    fn a_shop_of_prices_with_a_misplaced_decimal_point() {
        let mut prices: Vec<f64> = (0..1000).map(|i| 5.0 + f64::from(i % 200) * 0.5).collect();
        prices.push(12_345.0); // 123.45 typed without its point
        prices.push(0.0);
        let found = outliers(&prices, 8.0);
        assert_eq!(found, vec![1000]);
        let stats = Stats::of(&prices).unwrap();
        assert_eq!(
            stats.message(12_345.0),
            "12345.00 is 486.7 MADs from the median 54.75"
        );
    }

    #[test]
    fn infinities_are_far_from_everything() {
        let values = [1.0, 2.0, 3.0, f64::INFINITY];
        assert_eq!(outliers(&values, 8.0), vec![3]);
    }

    #[test]
    fn reading_numbers() {
        assert_eq!(number(Value::Null), None);
        assert_eq!(number(Value::Int(-3)), Some(-3.0));
        assert_eq!(number(Value::Float(2.5)), Some(2.5));
        assert_eq!(number(Value::Float(f64::NAN)), None);
        assert_eq!(number(Value::Decimal("12.50")), Some(12.5));
        assert_eq!(number(Value::Decimal("NaN")), None);
        assert_eq!(number(Value::Text(" 7.25 ")), Some(7.25));
        assert_eq!(number(Value::Text("seven")), None);
        assert_eq!(number(Value::Text("")), None);
        assert_eq!(number(Value::Bool(true)), None);
        assert_eq!(number(Value::Timestamp("2026-01-01T00:00:00")), None);
        assert_eq!(number(Value::Bytes(b"1")), None);
    }

    #[test]
    fn messages() {
        let stats = Stats {
            median: 52.1,
            mad: 1.5,
        };
        assert_eq!(
            stats.message(12_345.0),
            "12345.00 is 8195.3 MADs from the median 52.10"
        );
        assert_eq!(
            stats.message(0.0),
            "0.00 is 34.7 MADs from the median 52.10"
        );
        let zero = Stats {
            median: 9.99,
            mad: 0.0,
        };
        assert_eq!(
            zero.message(10.0),
            "10.00 differs from the median 9.99, which at least half the values equal"
        );
        assert_eq!(show(0.000_123), "0.000123");
        assert_eq!(show(-0.005), "-0.00500");
        assert_eq!(show(0.0099), "0.00990");
        assert_eq!(show(0.01), "0.01");
        assert_eq!(show(1e20), "1e20");
        assert_eq!(show(f64::INFINITY), "inf");
    }

    #[test]
    fn the_threshold_defaults_to_8() {
        let schema = schemars::schema_for!(Config).to_value();
        assert_eq!(schema["properties"]["threshold"]["default"], 8.0);
        assert_eq!(schema["required"][0], "column");
        assert!(schema["required"].get(1).is_none());
    }
}
