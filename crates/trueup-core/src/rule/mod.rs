//! The rule model: what a rule file may say, as serde types whose doc comments become the
//! JSON Schema's descriptions and the reference docs.

mod detector;
mod loaded;
mod repair;
mod uses;

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use detector::*;
pub use loaded::LoadedRule;
pub use repair::*;
pub use uses::{TableUse, TimestampColumn};

use crate::duration::HumanDuration;

/// A rule file: one or more `[[rule]]` tables.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "trueup rule file")]
pub struct RuleFile {
    /// The rules of this file, each a `[[rule]]` table.
    #[serde(rename = "rule", default)]
    pub rules: Vec<Rule>,
}

/// One check: a detector that finds violating rows, and optionally what to do about them.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rule {
    /// Unique, stable identifier, e.g. `orders.total-matches-items`. Findings are keyed by
    /// it across runs, so renaming a rule makes its findings new.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9._-]*$"))]
    pub id: String,
    /// One line saying what is wrong when the rule fires.
    pub title: String,
    /// Longer explanation: why it matters, what usually causes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How bad a finding is; `check --fail-on` compares against it.
    pub severity: Severity,
    /// Free-form labels to select rules with `check --tag`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Who to ask about this rule (a team or a person).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Link to the runbook section this rule automates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    /// Name of the source (from `trueup.toml`) the rule runs against. May be left out when
    /// the project has exactly one source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// How long the detector may run before it is cancelled (default: the project's
    /// `defaults.timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// PostgreSQL settings for this rule's read-only transaction (`SET LOCAL`), e.g.
    /// `{ enable_hashjoin = "off" }` to let the planner merge two sorted inputs, or
    /// `{ work_mem = "256MB" }`. Used only when the rule's source is PostgreSQL.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub postgres_settings: BTreeMap<String, String>,
    /// When the rule's findings alert (metrics, `serve`): `new` (default) when the run found
    /// findings the previous comparable run did not, `any` when it found any, `jump` when
    /// its count departs from its recent runs. `check`'s exit code does not depend on it.
    #[serde(default, skip_serializing_if = "AlertOn::is_default")]
    pub alert_on: AlertOn,
    /// What finds the violating rows.
    pub detector: Detector,
    /// What to do about the findings. Planned and applied by later commands; validated now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair: Option<Repair>,
}

/// How bad a finding is, from worst to mildest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Money or customers are affected now.
    Critical,
    /// Wrong data that users will see.
    High,
    /// Wrong data that is contained.
    Medium,
    /// Hygiene.
    Low,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }

    /// Whether a finding of this severity is at or above `threshold`.
    pub fn at_least(self, threshold: Severity) -> bool {
        self <= threshold
    }
}

/// When a rule's findings alert: what metrics' `trueup_rule_alerting` and
/// `data_integrity_check_failures` count (see `docs/reference/metrics.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AlertOn {
    /// Findings that the previous comparable recorded run did not have.
    #[default]
    New,
    /// Any finding (not accepted by the baseline).
    Any,
    /// A count of findings more than 3 standard deviations above the rule's recent runs:
    /// a known backlog alerts when it grows, not while it stays.
    Jump,
}

impl AlertOn {
    pub const ALL: [AlertOn; 3] = [AlertOn::New, AlertOn::Any, AlertOn::Jump];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertOn::New => "new",
            AlertOn::Any => "any",
            AlertOn::Jump => "jump",
        }
    }

    fn is_default(&self) -> bool {
        *self == AlertOn::default()
    }
}

/// Reads an `alert-on` value; anything else is an error that lists the values.
impl<'de> Deserialize<'de> for AlertOn {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = AlertOn;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("when to alert: `new`, `any` or `jump`")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<AlertOn, E> {
                AlertOn::ALL
                    .into_iter()
                    .find(|value| value.as_str() == text)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "`{text}` is not an `alert-on`; use new (findings the previous run \
                             did not have), any (any finding) or jump (a count far above the \
                             recent runs')"
                        ))
                    })
            }
        }
        deserializer.deserialize_str(Name)
    }
}

impl fmt::Display for AlertOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads a severity name; any other value (a number, a misspelling) is an error that lists
/// the severities.
impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = Severity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a severity: `critical`, `high`, `medium` or `low`")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Severity, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Name)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Severity::ALL
            .into_iter()
            .find(|sev| sev.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a severity; use critical, high, medium or low"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_order_puts_critical_first() {
        assert!(Severity::Critical.at_least(Severity::High));
        assert!(Severity::High.at_least(Severity::High));
        assert!(!Severity::Low.at_least(Severity::Medium));
    }
}
