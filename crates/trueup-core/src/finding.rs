//! Findings: one violating row each, with the rule that found it.

use std::sync::Arc;
use std::time::Duration;

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

use crate::compile::DetectorQuery;
use crate::rule::Severity;
use crate::value::Value;
use crate::{Error, Result};

/// A rule ready to run: what reports show about it and the query that detects it.
#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub tags: Vec<String>,
    /// Who to ask about the rule, and its runbook: shown with its findings.
    pub owner: Option<String>,
    pub runbook: Option<String>,
    /// The detector kind, e.g. `aggregate-match`.
    pub kind: &'static str,
    pub source: String,
    pub timeout: Duration,
    pub query: DetectorQuery,
    /// Hash of what the rule does (detector, source, settings): a changed rule has another.
    pub definition_hash: String,
    /// The tables a built-in reads and the columns it names in each, checked before it runs.
    pub columns_used: Vec<(String, Vec<String>)>,
    /// The column a built-in compares with the clock, whose type is checked before it runs.
    pub timestamp_column: Option<crate::rule::TimestampColumn>,
    /// Why trueup refuses to run the rule's SQL, when it does (the rule's error).
    pub refused: Option<String>,
    /// A detector that reads two sources (its own and `right_source`): the engine runs it
    /// instead of `query`.
    pub two_sources: Option<TwoSources>,
    /// The source a rule reads besides its own (a `reconcile`'s right side, a
    /// `cache-consistency`'s rows).
    pub right_source: Option<String>,
}

/// A detector that reads two sources at once.
#[derive(Debug, Clone)]
pub enum TwoSources {
    /// A `reconcile`: the left side from the rule's source, the right from `right_source`.
    Reconcile(Arc<crate::rule::ReconcileDetector>),
    /// A `cache-consistency`: the cache is the rule's source, the rows `right_source`.
    Cache(Arc<crate::rule::CacheConsistencyDetector>),
}

/// The layout of a rule's result rows: column names, and which of them are the key.
#[derive(Debug)]
pub struct Shape {
    pub columns: Vec<String>,
    pub key: Vec<usize>,
    pub detail: Vec<usize>,
}

impl Shape {
    /// The layout of a result with `columns` for `query`. Fails, naming what the query does
    /// return, when a key column or a column the message uses is missing.
    pub fn new(columns: Vec<String>, query: &DetectorQuery) -> Result<Shape> {
        let key_names = query.result_key(&columns);
        if let Some(missing) = missing_column(&columns, &key_names, &query.message) {
            let returned: Vec<String> = columns.iter().map(|c| format!("`{c}`")).collect();
            return Err(Error::Mismatch(format!(
                "{missing}; it returns: {}",
                returned.join(", ")
            )));
        }
        let key: Vec<usize> = key_names
            .iter()
            .filter_map(|k| columns.iter().position(|c| c == k))
            .collect();
        let detail = (0..columns.len()).filter(|i| !key.contains(i)).collect();
        Ok(Shape {
            columns,
            key,
            detail,
        })
    }
}

/// A column a rule needs from its query's result that the result does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissingColumn {
    /// The `at`-th key column.
    Key { at: usize, name: String },
    /// A column the message template uses.
    Message(String),
}

impl std::fmt::Display for MissingColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MissingColumn::Key { name, .. } => {
                write!(f, "the query returns no key column `{name}`")
            }
            MissingColumn::Message(name) => write!(
                f,
                "the message uses `{{{name}}}`, which the query does not return"
            ),
        }
    }
}

/// The first key column, then message column, that a result with `columns` lacks.
pub fn missing_column(
    columns: &[String],
    key: &[String],
    message: &crate::template::Template,
) -> Option<MissingColumn> {
    let has = |name: &str| columns.iter().any(|c| c == name);
    if let Some((at, name)) = key.iter().enumerate().find(|(_, k)| !has(k)) {
        return Some(MissingColumn::Key {
            at,
            name: name.clone(),
        });
    }
    message
        .columns()
        .find(|name| !has(name))
        .map(|name| MissingColumn::Message(name.to_owned()))
}

/// One violating row.
#[derive(Debug, Clone)]
pub struct Finding {
    pub rule: Arc<RuleSpec>,
    pub shape: Arc<Shape>,
    pub values: Vec<Value>,
    /// The message a plugin wrote; otherwise the rule's template makes it.
    pub message: Option<String>,
}

impl Finding {
    /// The finding's fingerprint: its rule and key values, hashed (see [`crate::fingerprint`]).
    pub fn fingerprint(&self) -> crate::fingerprint::Fingerprint {
        crate::fingerprint::of_key(&self.rule.id, self.key().map(|(_, value)| value))
    }

    /// The key columns and their values.
    pub fn key(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.pick(&self.shape.key)
    }

    /// The other columns and their values.
    pub fn detail(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.pick(&self.shape.detail)
    }

    fn pick<'a>(&'a self, indices: &'a [usize]) -> impl Iterator<Item = (&'a str, &'a Value)> {
        indices
            .iter()
            .map(|&i| (self.shape.columns[i].as_str(), &self.values[i]))
    }

    /// Orders findings by their key values, column by column.
    pub fn key_cmp(&self, other: &Finding) -> std::cmp::Ordering {
        self.key()
            .zip(other.key())
            .map(|((_, a), (_, b))| a.sort_cmp(b))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    }

    /// The key as text: `id=42` or `order_id=7, line=2`.
    pub fn key_text(&self) -> String {
        self.key()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The key columns as a JSON object when serialized.
    pub fn key_object(&self) -> impl Serialize + '_ {
        Columns(self, &self.shape.key)
    }

    /// The detail columns as a JSON object when serialized.
    pub fn detail_object(&self) -> impl Serialize + '_ {
        Columns(self, &self.shape.detail)
    }

    /// The plugin's message, or the rule's message template filled with this row.
    pub fn message(&self) -> String {
        if let Some(message) = &self.message {
            return message.clone();
        }
        self.rule.query.message.render(|name| {
            self.shape
                .columns
                .iter()
                .position(|c| c == name)
                .map(|i| &self.values[i])
        })
    }
}

/// `{"rule": …, "severity": …, "key": {…}, "detail": {…}, "message": …}`.
impl Serialize for Finding {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Finding", 5)?;
        s.serialize_field("rule", &self.rule.id)?;
        s.serialize_field("severity", &self.rule.severity)?;
        s.serialize_field("key", &Columns(self, &self.shape.key))?;
        s.serialize_field("detail", &Columns(self, &self.shape.detail))?;
        s.serialize_field("message", &self.message())?;
        s.end()
    }
}

struct Columns<'a>(&'a Finding, &'a [usize]);

impl Serialize for Columns<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.1.len()))?;
        for (name, value) in self.0.pick(self.1) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}
