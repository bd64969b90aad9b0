//! Write trueup checks in Rust and compile them to WebAssembly.
//!
//! A plugin is a type that implements [`Plugin`], exported with [`export!`]:
//!
//! ```
//! use trueup_plugin_sdk::{Columns, Finding, Plugin, Row, export};
//!
//! /// Reports rows whose `column` holds no `@`.
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! pub struct Config {
//!     /// The column to look at.
//!     column: String,
//! }
//!
//! pub struct HasAt {
//!     column: usize,
//! }
//!
//! impl Plugin for HasAt {
//!     const NAME: &'static str = "has-at";
//!     const DESCRIPTION: &'static str = "Reports values without an @";
//!     type Config = Config;
//!
//!     fn new(config: Config, columns: &Columns) -> Result<Self, String> {
//!         Ok(HasAt { column: columns.require(&config.column)? })
//!     }
//!
//!     fn check(&mut self, row: &Row<'_>) -> Option<Finding> {
//!         let text = row.get(self.column).as_str()?;
//!         (!text.contains('@')).then(|| Finding::new("no @").detail("value", text))
//!     }
//! }
//!
//! export!(HasAt);
//! ```
//!
//! Build it with `trueup plugin build` (or `cargo build --release --target
//! wasm32-unknown-unknown`) and point a rule at the `.wasm`:
//!
//! ```toml
//! [rule.detector]
//! kind = "plugin"
//! plugin = "plugins/has_at.wasm"
//! query = "SELECT id, email FROM customers"
//! key = ["id"]
//! config = { column = "email" }
//! ```
//!
//! trueup runs the query, hands the rows to the plugin in batches, and reports what
//! [`Plugin::check`] returns, keyed by the row's key columns. Checks across rows keep what
//! they need in `self` and report from [`Plugin::finish`], with the [`Key`] of each row
//! they name. The plugin runs sandboxed: no files, network, clock or environment; a time,
//! memory and output limit per rule. The contract between trueup and a plugin is in
//! [`wire`] (the format) and [`guest`] (the exported functions); both are versioned by
//! [`INTERFACE_VERSION`].

pub mod guest;
pub mod wire;

use std::fmt::Write as _;

pub use wire::Value;

/// The version of the contract between trueup and a plugin: the exported functions and the
/// wire format. trueup refuses a plugin built for another version, and says which.
pub const INTERFACE_VERSION: u32 = 1;

/// A check, written once and run on every batch of rows of the rule's query.
pub trait Plugin: Sized + 'static {
    /// The plugin's name, as messages and `trueup plugin` show it.
    const NAME: &'static str;
    /// One line on what the plugin reports.
    const DESCRIPTION: &'static str;
    /// The rule's `[rule.detector.config]`. Its JSON Schema is the plugin's config schema;
    /// `#[serde(deny_unknown_fields)]` makes a misspelt option an error. [`NoConfig`] for
    /// none.
    type Config: serde::de::DeserializeOwned + schemars::JsonSchema;

    /// Makes the plugin for one rule run, from its config and the query's columns. An `Err`
    /// fails the rule with that message.
    fn new(config: Self::Config, columns: &Columns) -> Result<Self, String>;

    /// Checks one row: `Some` is a finding about it.
    fn check(&mut self, row: &Row<'_>) -> Option<Finding> {
        let _ = row;
        None
    }

    /// Checks a batch of rows; by default, [`Plugin::check`] on each.
    fn check_batch(&mut self, rows: &[Row<'_>], findings: &mut Findings) {
        for row in rows {
            if let Some(finding) = self.check(row) {
                findings.of_row(row, finding);
            }
        }
    }

    /// Called after the last batch, for checks across rows: each finding needs the
    /// [`Key`] of the row it is about ([`Finding::key`]).
    fn finish(&mut self, findings: &mut Findings) {
        let _ = findings;
    }
}

/// The config of a plugin that takes none: an empty table or no `config` at all.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

/// The query's result columns and which of them are the rule's key.
#[derive(Debug, Clone)]
pub struct Columns {
    names: Vec<String>,
    key: Vec<usize>,
}

impl Columns {
    /// Columns `names`, of which `key` are the key; fails if a key column is not among them.
    pub fn new(names: Vec<String>, key: &[String]) -> Result<Columns, String> {
        let key =
            key.iter()
                .map(|k| {
                    names.iter().position(|n| n == k).ok_or_else(|| {
                        format!("the key column `{k}` is not among the query's columns")
                    })
                })
                .collect::<Result<_, _>>()?;
        Ok(Columns { names, key })
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The position of column `name`, if the query returns it.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The position of column `name`, or an error that lists the columns there are: what
    /// [`Plugin::new`] returns for a misconfigured rule.
    pub fn require(&self, name: &str) -> Result<usize, String> {
        self.index_of(name).ok_or_else(|| {
            let mut message = format!("the query returns no column `{name}`; it returns:");
            for n in &self.names {
                let _ = write!(message, " `{n}`");
            }
            message
        })
    }

    /// The key columns' positions.
    pub fn key(&self) -> &[usize] {
        &self.key
    }
}

/// One row of the rule's query.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    values: &'a [Value<'a>],
    index: usize,
    key: &'a [usize],
}

impl<'a> Row<'a> {
    /// A row of `values`, the `index`th of its batch, whose key columns are at `key`. trueup
    /// makes the rows; this is for a plugin's own unit tests of [`Plugin::check`].
    pub fn new(values: &'a [Value<'a>], index: usize, key: &'a [usize]) -> Row<'a> {
        Row { values, index, key }
    }

    /// The value of column `index` (see [`Columns::require`]); NULL past the last column.
    pub fn get(&self, index: usize) -> Value<'a> {
        self.values.get(index).copied().unwrap_or(Value::Null)
    }

    pub fn values(&self) -> &'a [Value<'a>] {
        self.values
    }

    /// The row's position in its batch.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The row's key, kept to name the row in a finding from [`Plugin::finish`].
    pub fn key(&self) -> Key {
        let mut out = wire::Writer::new();
        for &i in self.key {
            out.value(self.get(i));
        }
        Key {
            encoded: out.buf.into_boxed_slice(),
            count: u32::try_from(self.key.len()).unwrap_or(u32::MAX),
        }
    }
}

/// A row's key values, owned: what a check across rows keeps to report a row later.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The values in wire format (24 bytes and the values: a check across rows keeps one
    /// per row).
    encoded: Box<[u8]>,
    count: u32,
}

/// What a check reports about a row.
#[derive(Debug, Clone)]
pub struct Finding {
    message: String,
    key: Option<Key>,
    detail: wire::Writer,
    details: usize,
}

impl Finding {
    pub fn new(message: impl Into<String>) -> Finding {
        Finding {
            message: message.into(),
            key: None,
            detail: wire::Writer::new(),
            details: 0,
        }
    }

    /// Adds a detail column, shown with the finding and recorded with it.
    pub fn detail<'v>(mut self, name: &str, value: impl Into<Value<'v>>) -> Finding {
        self.detail.str(name);
        self.detail.value(value.into());
        self.details += 1;
        self
    }

    /// The row the finding is about, for findings from [`Plugin::finish`].
    pub fn key(mut self, key: Key) -> Finding {
        self.key = Some(key);
        self
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The detail columns, in order (for a plugin's unit tests).
    pub fn details(&self) -> Vec<(&str, Value<'_>)> {
        let mut reader = wire::Reader::new(&self.detail.buf);
        (0..self.details)
            .map_while(|_| Some((reader.str().ok()?, reader.value().ok()?)))
            .collect()
    }
}

/// The findings of one call, in wire format.
#[derive(Debug, Default)]
pub struct Findings {
    out: wire::Writer,
    count: usize,
    /// Findings pushed without a key: an error of the plugin, reported as such.
    unkeyed: usize,
}

impl Findings {
    /// A finding about `row` (its key unless the finding names another).
    pub fn of_row(&mut self, row: &Row<'_>, finding: Finding) {
        match finding.key {
            Some(_) => self.push(finding),
            None => {
                self.out.u8(wire::OF_ROW);
                self.out.len(row.index);
                self.rest(&finding);
            }
        }
    }

    /// A finding that names its row with [`Finding::key`]. One without a key fails the
    /// call (trueup could not say which row it is about).
    pub fn push(&mut self, finding: Finding) {
        match &finding.key {
            Some(key) => {
                self.out.u8(wire::WITH_KEY);
                self.out.u32(key.count);
                self.out.buf.extend_from_slice(&key.encoded);
                self.rest(&finding);
            }
            None => self.unkeyed += 1,
        }
    }

    fn rest(&mut self, finding: &Finding) {
        self.out.str(&finding.message);
        self.out.len(finding.details);
        self.out.buf.extend_from_slice(&finding.detail.buf);
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_keeps_its_message_and_details() {
        let values = [Value::Int(7), Value::Text("x")];
        let row = Row::new(&values, 3, &[0]);
        let finding = Finding::new("bad")
            .detail("value", row.get(1))
            .detail("n", 2i64);
        assert_eq!(finding.message(), "bad");
        assert_eq!(
            finding.details(),
            [("value", Value::Text("x")), ("n", Value::Int(2))]
        );
        assert_eq!(row.get(9), Value::Null);
        let mut findings = Findings::default();
        findings.of_row(&row, finding);
        findings.push(Finding::new("unkeyed"));
        assert_eq!((findings.len(), findings.unkeyed), (1, 1));
    }
}
