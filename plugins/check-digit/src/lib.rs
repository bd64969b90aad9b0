//! `check-digit`: reports identifiers whose check digit is wrong: card-like numbers (Luhn)
//! and barcodes (GTIN-8, GTIN-12/UPC-A, GTIN-13/EAN-13, GTIN-14).
//!
//! [`verify`] is the whole check, as a pure function; the plugin only reads the column.

use trueup_plugin_sdk::{Columns, Finding, Plugin, Row, Value, export};

/// The configuration of a rule that runs this plugin: its `[rule.detector.config]` table.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The query column that holds the identifier: text of digits, or an integer (read as
    /// its decimal digits, so an integer column cannot keep leading zeros). NULL values
    /// are skipped.
    pub column: String,
    /// The check-digit scheme the identifiers follow.
    pub algorithm: Algorithm,
}

/// A check-digit scheme. The last digit of a value is its check digit, computed from the
/// digits before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// Luhn (mod 10), as on payment card numbers and many national ids: at least 2
    /// digits, nothing else (no spaces or dashes). From the check digit leftwards, every
    /// second digit is doubled (9 subtracted when the double exceeds 9); the check digit
    /// makes the sum a multiple of 10.
    Luhn,
    /// GS1 mod 10, as on barcodes: GTIN-8, GTIN-12 (UPC-A), GTIN-13 (EAN-13) or GTIN-14,
    /// i.e. exactly 8, 12, 13 or 14 digits. From the check digit leftwards, digits are
    /// weighted 3, 1, 3, 1, …; the check digit is (10 − sum mod 10) mod 10.
    Gtin,
}

/// Why a value fails its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// A character other than the ASCII digits 0–9 (or a value that is neither text nor an
    /// integer).
    NotDigits,
    /// Digits, but a length the scheme does not have.
    WrongLength,
    /// The last digit is not the check digit of the ones before it, which is `expected`.
    WrongCheckDigit { expected: u8 },
}

impl Problem {
    /// A few words on the problem, as findings show it.
    pub fn describe(self) -> &'static str {
        match self {
            Problem::NotDigits => "not digits",
            Problem::WrongLength => "wrong length",
            Problem::WrongCheckDigit { .. } => "wrong check digit",
        }
    }
}

/// Checks `value` against `algorithm`: `Ok` when its last digit is the right check digit.
/// Digits are checked before the length: `"12a"` is not digits, `""` and `"7"` are of the
/// wrong length.
pub fn verify(algorithm: Algorithm, value: &str) -> Result<(), Problem> {
    let digits = value.as_bytes();
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(Problem::NotDigits);
    }
    let length_ok = match algorithm {
        Algorithm::Luhn => digits.len() >= 2,
        Algorithm::Gtin => matches!(digits.len(), 8 | 12 | 13 | 14),
    };
    if !length_ok {
        return Err(Problem::WrongLength);
    }
    let (&last, payload) = digits.split_last().ok_or(Problem::WrongLength)?;
    let expected = match algorithm {
        Algorithm::Luhn => luhn_check_digit(payload),
        Algorithm::Gtin => gtin_check_digit(payload),
    };
    if last - b'0' == expected {
        Ok(())
    } else {
        Err(Problem::WrongCheckDigit { expected })
    }
}

/// The Luhn check digit of `payload`, ASCII digits without their check digit.
pub fn luhn_check_digit(payload: &[u8]) -> u8 {
    let mut sum = 0u8;
    for (i, &b) in payload.iter().rev().enumerate() {
        let d = b - b'0';
        let d = if i % 2 == 0 {
            // The digit just left of the check digit, and every second one from there.
            let double = d * 2;
            if double > 9 { double - 9 } else { double }
        } else {
            d
        };
        sum = (sum + d) % 10;
    }
    (10 - sum) % 10
}

/// The GS1 (GTIN) check digit of `payload`, ASCII digits without their check digit.
pub fn gtin_check_digit(payload: &[u8]) -> u8 {
    let mut sum = 0u8;
    for (i, &b) in payload.iter().rev().enumerate() {
        let d = b - b'0';
        let weight = if i % 2 == 0 { 3 } else { 1 };
        sum = (sum + d * weight) % 10;
    }
    (10 - sum) % 10
}

/// The finding for one value, or `None` when it is NULL or right.
pub fn finding(algorithm: Algorithm, value: Value<'_>) -> Option<Finding> {
    let text;
    let digits = match value {
        Value::Null => return None,
        Value::Text(s) | Value::Decimal(s) => s,
        Value::Int(i) => {
            text = i.to_string();
            &text
        }
        other => return Some(problem_finding(other, Problem::NotDigits)),
    };
    match verify(algorithm, digits) {
        Ok(()) => None,
        Err(Problem::WrongCheckDigit { expected }) => Some(
            Finding::new(format!(
                "wrong check digit: {digits} should end in {expected}"
            ))
            .detail("value", digits)
            .detail("expected", expected.to_string().as_str()),
        ),
        Err(problem) => Some(problem_finding(Value::Text(digits), problem)),
    }
}

fn problem_finding(value: Value<'_>, problem: Problem) -> Finding {
    Finding::new(format!("{}: {value}", problem.describe()))
        .detail("value", value)
        .detail("problem", problem.describe())
}

/// The plugin: checks one column of every row.
pub struct CheckDigit {
    column: usize,
    algorithm: Algorithm,
}

impl Plugin for CheckDigit {
    const NAME: &'static str = "check-digit";
    const DESCRIPTION: &'static str =
        "Reports identifiers whose check digit is wrong (Luhn, or GTIN/EAN/UPC barcodes)";
    type Config = Config;

    fn new(config: Config, columns: &Columns) -> Result<Self, String> {
        Ok(CheckDigit {
            column: columns.require(&config.column)?,
            algorithm: config.algorithm,
        })
    }

    fn check(&mut self, row: &Row<'_>) -> Option<Finding> {
        finding(self.algorithm, row.get(self.column))
    }
}

export!(CheckDigit);

#[cfg(test)]
mod tests {
    use super::*;
    use Algorithm::{Gtin, Luhn};

    /// Every check digit of a scheme: the one that verifies, all others wrong.
    fn only_right_digit_verifies(algorithm: Algorithm, valid: &str) {
        assert_eq!(verify(algorithm, valid), Ok(()), "{valid}");
        let (payload, right) = valid.split_at(valid.len() - 1);
        let right: u8 = right.parse().unwrap();
        for d in 0..10u8 {
            let candidate = format!("{payload}{d}");
            let expected = if d == right {
                Ok(())
            } else {
                Err(Problem::WrongCheckDigit { expected: right })
            };
            assert_eq!(verify(algorithm, &candidate), expected, "{candidate}");
        }
    }

    #[test]
    fn luhn_known_numbers() {
        for valid in [
            "79927398713",      // the textbook example
            "4111111111111111", // Visa test card
            "5555555555554444", // Mastercard test card
            "378282246310005",  // Amex test card
            "6011111111111117", // Discover test card
            "00",
            "18",
            "26",
            "0000000000",
        ] {
            only_right_digit_verifies(Luhn, valid);
        }
        assert_eq!(luhn_check_digit(b"7992739871"), 3);
        assert_eq!(luhn_check_digit(b"5"), 9); // 5 doubled is 10 → 1; 1 + 9 = 10
        assert_eq!(luhn_check_digit(b"9"), 1); // 18 → 9
        assert_eq!(luhn_check_digit(b""), 0);
    }

    #[test]
    fn luhn_catches_single_digit_errors_and_most_swaps() {
        let valid = b"4111111111111111";
        for i in 0..valid.len() {
            for d in b'0'..=b'9' {
                if d == valid[i] {
                    continue;
                }
                let mut changed = valid.to_vec();
                changed[i] = d;
                let changed = String::from_utf8(changed).unwrap();
                assert!(verify(Luhn, &changed).is_err(), "{changed}");
            }
        }
    }

    #[test]
    fn luhn_shape() {
        assert_eq!(verify(Luhn, ""), Err(Problem::WrongLength));
        assert_eq!(verify(Luhn, "0"), Err(Problem::WrongLength));
        assert_eq!(verify(Luhn, "4111 1111 1111 1111"), Err(Problem::NotDigits));
        assert_eq!(verify(Luhn, "4111-1111"), Err(Problem::NotDigits));
        assert_eq!(verify(Luhn, " 79927398713"), Err(Problem::NotDigits));
        assert_eq!(verify(Luhn, "-79927398713"), Err(Problem::NotDigits));
        assert_eq!(verify(Luhn, "7992739871３"), Err(Problem::NotDigits)); // full-width 3
        assert_eq!(verify(Luhn, "x"), Err(Problem::NotDigits)); // digits before length
        // Very long numbers do not overflow.
        let long = format!("{}0", "9".repeat(10_000));
        let expected = luhn_check_digit(&long.as_bytes()[..10_000]);
        let long = format!("{}{expected}", "9".repeat(10_000));
        assert_eq!(verify(Luhn, &long), Ok(()));
    }

    #[test]
    fn gtin_known_codes() {
        for valid in [
            "4006381333931",  // EAN-13
            "5901234123457",  // EAN-13, the GS1 example
            "9780306406157",  // ISBN-13 is an EAN-13
            "036000291452",   // UPC-A
            "012345678905",   // UPC-A
            "96385074",       // EAN-8
            "40170725",       // EAN-8
            "10012345678902", // GTIN-14
            "00000000",
        ] {
            only_right_digit_verifies(Gtin, valid);
        }
    }

    #[test]
    fn gtin_13_is_odd_positions_once_and_even_positions_thrice() {
        // The usual EAN-13 description, from the left, for many payloads.
        let mut seed = 12345u64;
        for _ in 0..1000 {
            let payload: Vec<u8> = (0..12)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    b'0' + u8::try_from((seed >> 33) % 10).unwrap()
                })
                .collect();
            let sum: u32 = payload
                .iter()
                .enumerate()
                .map(|(i, &b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
                .sum();
            let expected = u8::try_from((10 - sum % 10) % 10).unwrap();
            assert_eq!(gtin_check_digit(&payload), expected);
        }
    }

    #[test]
    fn gtin_shape() {
        for n in 0..20 {
            let value = "0".repeat(n);
            let expected = if matches!(n, 8 | 12 | 13 | 14) {
                Ok(())
            } else {
                Err(Problem::WrongLength)
            };
            assert_eq!(verify(Gtin, &value), expected, "{n} zeros");
        }
        assert_eq!(verify(Gtin, "400638133393X"), Err(Problem::NotDigits));
        assert_eq!(verify(Gtin, "4006381 333931"), Err(Problem::NotDigits));
        assert_eq!(verify(Gtin, "4006381333931\n"), Err(Problem::NotDigits));
        assert_eq!(verify(Gtin, "40063813339"), Err(Problem::WrongLength));
        assert_eq!(
            verify(Gtin, "400638133393"),
            Err(Problem::WrongCheckDigit { expected: 0 })
        ); // read as a GTIN-12
    }

    #[test]
    fn findings_for_values() {
        assert!(finding(Gtin, Value::Null).is_none());
        assert!(finding(Gtin, Value::Text("4006381333931")).is_none());
        assert!(finding(Gtin, Value::Int(4_006_381_333_931)).is_none());
        assert!(finding(Gtin, Value::Int(4_006_381_333_932)).is_some());
        // An integer loses leading zeros: a UPC-A stored as an integer has 11 digits.
        assert!(finding(Gtin, Value::Int(36_000_291_452)).is_some());
        assert!(finding(Gtin, Value::Int(-4_006_381_333_931)).is_some());
        assert!(finding(Luhn, Value::Int(79_927_398_713)).is_none());
        assert!(finding(Luhn, Value::Float(79_927_398_713.0)).is_some());
        assert!(finding(Luhn, Value::Text("79927398710")).is_some());
    }

    #[test]
    fn the_config_reads_kebab_case_algorithms() {
        let schema = schemars::schema_for!(Config).to_value();
        let text = schema.to_string();
        assert!(
            text.contains("\"luhn\"") && text.contains("\"gtin\""),
            "{text}"
        );
        assert!(schema["properties"]["column"]["description"].is_string());
    }
}
