//! Durations written in rule and project files: `500ms`, `30s`, `5m`, `2h`, `7d`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How long something took, for people: `19 ms` under a second, else `1.25 s`.
pub fn elapsed_text(duration: Duration) -> String {
    match duration.as_millis() {
        ms if ms < 1000 => format!("{ms} ms"),
        _ => format!("{:.2} s", duration.as_secs_f64()),
    }
}

/// A duration written as a number and a unit: `ms`, `s`, `m`, `h` or `d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the duration is empty; write e.g. `30s`, `5m`, `2h` or `7d`".to_owned());
        }
        // One or more `<number><unit>` parts, added up: `90s`, `1h30m`.
        let mut total = Duration::ZERO;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let number: u64 = rest[..digits]
                .parse()
                .map_err(|_| format!("`{text}` is not a duration: write a whole number and a unit, e.g. `30s` or `1h30m`"))?;
            let unit_len = rest[digits..]
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len() - digits);
            let unit = &rest[digits..digits + unit_len];
            let seconds = |factor: u64| Duration::from_secs(number.saturating_mul(factor));
            total += match unit {
                "ms" => Duration::from_millis(number),
                "s" => seconds(1),
                "m" => seconds(60),
                "h" => seconds(3600),
                "d" => seconds(86_400),
                "" => {
                    return Err(format!(
                        "`{text}` has no unit; write e.g. `30s`, `5m`, `2h` or `7d`"
                    ));
                }
                _ => {
                    let unit = unit.trim();
                    return Err(format!(
                        "`{text}` is not a duration: `{unit}` is not a unit; write a number and ms, s, m, h or d, e.g. `{number}m`"
                    ));
                }
            };
            rest = &rest[digits + unit_len..];
        }
        Ok(HumanDuration(total))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        match millis {
            m if m % 86_400_000 == 0 && m > 0 => write!(f, "{}d", m / 86_400_000),
            m if m % 3_600_000 == 0 && m > 0 => write!(f, "{}h", m / 3_600_000),
            m if m % 60_000 == 0 && m > 0 => write!(f, "{}m", m / 60_000),
            m if m % 1000 == 0 => write!(f, "{}s", m / 1000),
            m => write!(f, "{m}ms"),
        }
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^([0-9]+(ms|s|m|h|d))+$",
            "description": "A duration: a whole number and a unit (ms, s, m, h, d), e.g. `30s`.",
            "examples": ["30s", "5m", "24h"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        let parse = |s: &str| s.parse::<HumanDuration>().map(|d| d.0);
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn rejects_missing_or_unknown_units() {
        assert!(
            "30".parse::<HumanDuration>()
                .unwrap_err()
                .contains("no unit")
        );
        assert!(
            "3w".parse::<HumanDuration>()
                .unwrap_err()
                .contains("not a unit")
        );
        assert!("s".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn displays_in_the_largest_whole_unit() {
        assert_eq!(HumanDuration(Duration::from_secs(7200)).to_string(), "2h");
        assert_eq!(
            HumanDuration(Duration::from_millis(1500)).to_string(),
            "1500ms"
        );
    }
}
