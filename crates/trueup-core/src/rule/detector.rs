//! Detectors: what finds a rule's violating rows. Each built-in compiles to one SQL query
//! (see `compile`); `sql` is a query written by hand.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;
use crate::size::ByteSize;

/// What finds the violating rows. `kind` picks the detector; the other fields depend on it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Detector {
    /// A hand-written read-only query: every row it returns is a finding.
    Sql(SqlDetector),
    /// Rows where any of the columns is NULL.
    NotNull(NotNullDetector),
    /// Values (or combinations of values) that appear in more than one row. One finding per
    /// duplicated value; NULLs are never duplicates, as in SQL `UNIQUE`.
    Unique(UniqueDetector),
    /// Rows whose reference points at no row of the referenced table (orphans). Rows whose
    /// referencing columns are NULL are not orphans, as in SQL `FOREIGN KEY`.
    ForeignKey(ForeignKeyDetector),
    /// Rows whose column holds a value outside an accepted list.
    AcceptedValues(AcceptedValuesDetector),
    /// Rows whose column differs from an aggregate over child rows, e.g. an order total
    /// that is not the sum of its items.
    AggregateMatch(AggregateMatchDetector),
    /// A table whose row count is outside `min`..=`max`. At most one finding.
    RowCount(RowCountDetector),
    /// A table whose newest timestamp is older than `max-age` (or that has none). At most
    /// one finding.
    Freshness(FreshnessDetector),
    /// Rows of a query checked by a WebAssembly plugin: for checks SQL cannot express
    /// (syntax, check digits, fuzzy matches across rows). See docs/guides/writing-plugins.md.
    Plugin(PluginDetector),
    /// The same rows in two databases (the rule's source on the left, another on the
    /// right), matched by key: rows missing on either side and rows whose columns differ.
    /// See docs/guides/reconciling-databases.md.
    Reconcile(ReconcileDetector),
    /// A PromQL instant query against a Prometheus source: every series it returns is a
    /// finding, keyed by its labels. The threshold is part of the query
    /// (`kafka_consumergroup_lag > 10000`), as in a Prometheus alerting rule. See
    /// docs/guides/event-pipelines.md.
    Promql(PromqlDetector),
    /// Cached copies of rows in a Redis source (the rule's source) checked against the rows
    /// of a database (`rows.source`): keys whose fields differ (`stale`), that are absent
    /// (`missing`, with `require-cached`), that no row has (`orphaned`, with `orphans`),
    /// that never expire (`no-ttl`, with `require-ttl`) or whose value cannot be read
    /// (`not-json`, `wrong-type`). See docs/guides/beyond-sql.md.
    CacheConsistency(CacheConsistencyDetector),
}

impl Detector {
    pub fn kind(&self) -> &'static str {
        match self {
            Detector::Sql(_) => "sql",
            Detector::NotNull(_) => "not-null",
            Detector::Unique(_) => "unique",
            Detector::ForeignKey(_) => "foreign-key",
            Detector::AcceptedValues(_) => "accepted-values",
            Detector::AggregateMatch(_) => "aggregate-match",
            Detector::RowCount(_) => "row-count",
            Detector::Freshness(_) => "freshness",
            Detector::Plugin(_) => "plugin",
            Detector::Reconcile(_) => "reconcile",
            Detector::Promql(_) => "promql",
            Detector::CacheConsistency(_) => "cache-consistency",
        }
    }

    /// Whether its findings are about a whole table (freshness, row count) rather than rows:
    /// such a finding is a state that can come back, never debt to accept into a baseline.
    pub fn is_table_level(&self) -> bool {
        is_table_level(self.kind())
    }

    /// The table whose rows the findings identify, when there is one.
    pub fn table(&self) -> Option<&str> {
        match self {
            Detector::Sql(_)
            | Detector::Plugin(_)
            | Detector::Promql(_)
            | Detector::CacheConsistency(_) => None,
            Detector::Reconcile(d) => d.left.table.as_deref(),
            Detector::NotNull(d) => Some(&d.table),
            Detector::Unique(d) => Some(&d.table),
            Detector::ForeignKey(d) => Some(&d.table),
            Detector::AcceptedValues(d) => Some(&d.table),
            Detector::AggregateMatch(d) => Some(&d.table),
            Detector::RowCount(d) => Some(&d.table),
            Detector::Freshness(d) => Some(&d.table),
        }
    }
}

impl Detector {
    /// The source a rule reads besides its own: a `reconcile`'s right side, a
    /// `cache-consistency`'s rows.
    pub fn other_source(&self) -> Option<&str> {
        match self {
            Detector::Reconcile(d) => d.right.source.as_deref(),
            Detector::CacheConsistency(d) => Some(&d.rows.source),
            _ => None,
        }
    }
}

pub(super) fn default_key() -> Vec<String> {
    vec!["id".to_owned()]
}

fn default_true() -> bool {
    true
}

/// A hand-written query whose rows are violations.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SqlDetector {
    /// A single read-only statement (`SELECT`, `WITH … SELECT`, `VALUES`), parsed in the
    /// source's dialect: anything else is refused. It runs in a read-only connection.
    pub query: String,
    /// Columns of the result that identify a finding; they must be returned by the query.
    /// The other columns are the finding's detail.
    pub key: Vec<String>,
    /// Message for each finding; `{column}` is replaced by that column's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Rows where any of `columns` is NULL.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NotNullDetector {
    pub table: String,
    /// Columns that must not be NULL.
    pub columns: Vec<String>,
    /// Columns that identify a row (default: `["id"]`).
    #[serde(default = "default_key")]
    pub key: Vec<String>,
    /// Only rows matching this SQL condition are checked: one expression, parsed in
    /// the source's dialect.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// Values of `columns` that appear in more than one row.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UniqueDetector {
    pub table: String,
    /// The column, or columns for a composite key, whose values must be unique together.
    pub columns: Vec<String>,
    /// Columns that identify a row, e.g. `["id"]`: when given, each finding lists the keys
    /// of its duplicate rows, in key order, at most 10 and then how many more (detail
    /// `duplicate_keys`, and the message). A finding is still keyed by the duplicated value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Vec<String>>,
    /// Only rows matching this SQL condition are checked: one expression, parsed in
    /// the source's dialect.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// The most row keys a `unique` finding lists; past it, it says how many more there are.
pub const UNIQUE_LISTED_KEYS: usize = 10;

/// Rows whose `columns` reference no row of `references`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ForeignKeyDetector {
    /// The referencing (child) table.
    pub table: String,
    /// The referencing columns.
    pub columns: Vec<String>,
    /// The referenced (parent) table.
    pub references: String,
    /// The referenced columns, in the order of `columns` (default: `["id"]`).
    #[serde(default = "default_key")]
    pub referenced_columns: Vec<String>,
    /// Columns that identify a child row (default: `["id"]`).
    #[serde(default = "default_key")]
    pub key: Vec<String>,
    /// Only child rows matching this SQL condition are checked: one expression, parsed in
    /// the source's dialect.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// Rows whose `column` holds a value not in `values`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AcceptedValuesDetector {
    pub table: String,
    pub column: String,
    /// The accepted values; they are bound as parameters, never spliced into SQL.
    pub values: Vec<AcceptedValue>,
    /// Whether NULL is accepted (default: true).
    #[serde(default = "default_true")]
    pub allow_null: bool,
    /// Columns that identify a row (default: `["id"]`).
    #[serde(default = "default_key")]
    pub key: Vec<String>,
    /// Only rows matching this SQL condition are checked: one expression, parsed in
    /// the source's dialect.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// One accepted value: text, a whole number or a boolean.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum AcceptedValue {
    Text(String),
    Int(i64),
    Bool(bool),
}

/// A parent column that must equal an aggregate over the parent's child rows.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AggregateMatchDetector {
    /// The parent table, e.g. `orders`.
    pub table: String,
    /// Columns that identify a parent row (default: `["id"]`).
    #[serde(default = "default_key")]
    pub key: Vec<String>,
    /// The parent column holding the stored value, e.g. `total_amount`.
    pub column: String,
    /// The child table, e.g. `order_items`.
    pub child_table: String,
    /// Child columns that reference the parent's `key`, in the same order, e.g. `["order_id"]`.
    pub child_key: Vec<String>,
    /// SQL expression over child columns that is aggregated, e.g. `quantity * unit_price`
    /// (one expression, parsed in the source's dialect; `*` for `count`).
    pub expression: String,
    /// How child values are combined (default: `sum`).
    #[serde(default)]
    pub aggregate: Aggregate,
    /// Largest difference still counted as equal (default 0). With money stored as
    /// floating point (SQLite `REAL`), set half a cent, `0.005`: exact equality of float
    /// sums reports rows that are equal to the cent.
    #[serde(default)]
    pub tolerance: f64,
    /// What a parent without child rows is (default: `zero`).
    #[serde(default)]
    pub missing_children: MissingChildren,
    /// Only parent rows matching this SQL condition over the parent's columns are checked,
    /// e.g. `status <> 'void'`: one expression, parsed in the source's dialect.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Only child rows matching this SQL condition over the child's columns are
    /// aggregated, e.g. `NOT cancelled`: one expression, parsed in the source's dialect. A
    /// parent whose children are all filtered out has no children (see `missing-children`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_where: Option<String>,
}

/// How child values are combined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Aggregate {
    #[default]
    Sum,
    Count,
    Min,
    Max,
}

/// What a parent row without children is compared against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MissingChildren {
    /// The aggregate of no children is 0 (stock with no inventory rows must be 0).
    #[default]
    Zero,
    /// Parents without children are not checked (an order without items is another rule's
    /// business).
    Skip,
    /// A parent without children is always a finding.
    Violation,
}

/// A table whose row count is outside the bounds.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RowCountDetector {
    pub table: String,
    /// Fewest rows expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// Most rows expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// Only rows matching this SQL condition are counted: one expression, parsed in
    /// the source's dialect.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// A table whose newest `column` value is older than `max-age`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FreshnessDetector {
    pub table: String,
    /// A timestamp column (SQLite: ISO-8601 text; PostgreSQL: `timestamp`/`timestamptz`).
    pub column: String,
    /// Largest accepted age of the newest row, e.g. `24h`.
    pub max_age: HumanDuration,
    /// Only rows matching this SQL condition are considered: one expression, parsed in
    /// the source's dialect.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// Rows of `query`, handed in batches to the WebAssembly plugin `plugin`, which reports
/// the findings. The plugin runs sandboxed: no files, network, clock or environment, and
/// within `limits`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginDetector {
    /// The plugin's `.wasm` file, relative to this rule file (`trueup plugin build` prints
    /// it).
    pub plugin: String,
    /// The SHA-256 of the `.wasm`, in hex (`trueup plugin build` prints it): when given,
    /// `validate` and `check` refuse a file whose hash differs, before running any of it.
    /// For a `.wasm` committed beside the rules rather than built where trueup runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub sha256: Option<String>,
    /// A single read-only statement whose rows the plugin checks, as for `sql`.
    pub query: String,
    /// Columns of the result that identify a finding; they must be returned by the query.
    pub key: Vec<String>,
    /// The plugin's options (`trueup plugin describe` shows its schema); the plugin
    /// rejects unknown or missing ones when the rule starts.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub config: serde_json::Map<String, serde_json::Value>,
    /// What the plugin may use.
    #[serde(default)]
    pub limits: PluginLimits,
}

/// What a plugin may use while it checks one rule's rows. Past a limit the rule fails;
/// other rules run on.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginLimits {
    /// Time the plugin may compute, all batches together (default: the rule's `timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<HumanDuration>,
    /// Memory the plugin may grow to (default: `64MiB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    /// Bytes of findings the plugin may return, all calls together (default: `64MiB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<ByteSize>,
}

/// The same rows in two databases, matched by `key`. The left side is read from the rule's
/// own source, the right from `right.source`; each side is a `table` or a `query`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReconcileDetector {
    /// The rows as the rule's source has them.
    pub left: ReconcileSide,
    /// The rows as the other database has them; `source` names it.
    pub right: ReconcileSide,
    /// Columns that identify a row on both sides (default: `["id"]`), left names.
    #[serde(default = "default_key")]
    pub key: Vec<String>,
    /// Columns compared, left names; empty compares only which keys exist.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Right-side names of key or compared columns that the right side calls otherwise:
    /// `{ total_amount = "amount" }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub map: BTreeMap<String, String>,
    /// Largest difference still equal, per numeric column: `{ total_amount = 0.005 }`
    /// (default 0: exact).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tolerance: BTreeMap<String, f64>,
    /// Timestamps compared to this precision, per column: `{ created_at = "1s" }` (default:
    /// to the microsecond).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub precision: BTreeMap<String, HumanDuration>,
    /// How the two sides are compared (default `auto`).
    #[serde(default)]
    pub mode: ReconcileMode,
    /// Rows changed less than this long ago on either side are not compared (replication
    /// lag): each side then names its `changed-at` column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_age: Option<HumanDuration>,
}

impl ReconcileDetector {
    /// What the right side calls a key or compared column (a left name): its `map` entry,
    /// or the same name.
    pub fn right_name<'a>(&'a self, column: &'a str) -> &'a str {
        self.map.get(column).map_or(column, String::as_str)
    }

    /// The right side's names of every column it must have: the key, the compared columns,
    /// then its `changed-at`.
    pub fn right_columns(&self) -> Vec<String> {
        self.key
            .iter()
            .chain(&self.columns)
            .map(|c| self.right_name(c).to_owned())
            .chain(self.right.changed_at.iter().cloned())
            .collect()
    }
}

/// One side of a `reconcile`: a `table` (optionally narrowed by `where`) or a `query`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReconcileSide {
    /// The source this side is read from: required on the right, and on the left the
    /// rule's own source (which it may repeat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// A single read-only statement whose rows are this side, as for `sql`; it must return
    /// the key and compared columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Only rows matching this SQL condition are this side: one expression, parsed in this
    /// side's dialect.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The timestamp column that says when a row last changed, for `min-age`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<String>,
}

/// How a `reconcile` compares its two sides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ReconcileMode {
    /// `bisect` when both sides are PostgreSQL, `join` otherwise (see
    /// docs/guides/reconciling-databases.md).
    #[default]
    Auto,
    /// Both sides read in key order and merged: every row crosses the network once, memory
    /// stays flat.
    Join,
    /// Each database sums hashes of its rows per bucket of keys; only the buckets whose
    /// sums differ are read and merged as by `join`.
    Bisect,
}

/// A PromQL query whose result series are violations.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PromqlDetector {
    /// A PromQL expression whose value is an instant vector, evaluated at the time of the
    /// run, e.g. `sum by (consumergroup, topic) (kafka_consumergroup_lag) > 10000`. Parsed
    /// when the rule is loaded; a range vector, a scalar or a string is refused.
    pub query: String,
    /// The labels that identify a finding (default: every label of the returned series but
    /// `__name__`). A series without one of them has it empty, as in PromQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Vec<String>>,
    /// Message for each finding; `{label}` is replaced by that label's value (a key label),
    /// `{value}` by the series' value and `{labels}` by its other labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Most series the query may return (default: 10000); past it the rule fails rather
    /// than report part of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_series: Option<u32>,
    /// Most bytes of the server's answer read (default: `16MiB`); past it the rule fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response: Option<ByteSize>,
}

/// Cached copies of rows, checked against the rows. The rule's source is the Redis source;
/// `rows` names the database and the rows whose copies the cache holds.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CacheConsistencyDetector {
    /// The rows the cache holds copies of: a `table` or a `query` of a SQL source.
    pub rows: CacheRows,
    /// Columns of the rows that identify one (default: `["id"]`); each appears in
    /// `key-template`.
    #[serde(default = "default_key")]
    pub key: Vec<String>,
    /// How a row's cache key is built from its key columns, e.g. `customer:{id}`; every
    /// placeholder is a `key` column, and placeholders are separated by text.
    pub key_template: String,
    /// How a key's value is stored (default `json`): a JSON object in a string, or a hash.
    #[serde(default)]
    pub format: CacheFormat,
    /// Columns compared with the cached value's fields of the same name; empty compares
    /// only which keys exist (and their TTL).
    #[serde(default)]
    pub fields: Vec<String>,
    /// Cached names of compared columns that the cache calls otherwise:
    /// `{ email = "emailAddress" }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub map: BTreeMap<String, String>,
    /// Largest difference still equal, per numeric column: `{ balance = 0.005 }` (default
    /// 0: exact).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tolerance: BTreeMap<String, f64>,
    /// Whether every row must be cached: a row without its key is then `missing` (default
    /// false: a cache filled on reads holds some rows only).
    #[serde(default)]
    pub require_cached: bool,
    /// Whether every cached key must expire: a key without a TTL is then `no-ttl` (default
    /// false).
    #[serde(default)]
    pub require_ttl: bool,
    /// Keys matching `pattern` that no row has are `orphaned`: found with `SCAN … MATCH
    /// pattern COUNT count` (never `KEYS`), each looked up among the rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orphans: Option<CacheOrphans>,
}

impl CacheConsistencyDetector {
    /// What the cache calls a compared column: its `map` entry, or the same name.
    pub fn cached_name<'a>(&'a self, column: &'a str) -> &'a str {
        self.map.get(column).map_or(column, String::as_str)
    }
}

/// The rows of a `cache-consistency` rule: a `table` (optionally narrowed by `where`) or a
/// `query`, on a SQL source.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CacheRows {
    /// The SQL source the rows are read from.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// A single read-only statement whose rows are checked, as for `sql`; it must return
    /// the key and compared columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Only rows matching this SQL condition are checked: one expression, parsed in the
    /// rows' source's dialect.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// How a cached value is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CacheFormat {
    /// A string holding a JSON object (`GET`); a value that is not one is `not-json`.
    #[default]
    Json,
    /// A hash of fields (`HGETALL`), each a string.
    Hash,
}

/// Which cached keys are looked for among the rows.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CacheOrphans {
    /// A `SCAN` pattern of the keys the template builds, e.g. `customer:*`.
    pub pattern: String,
    /// The `COUNT` hint of each `SCAN` call (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub count: Option<u32>,
}

/// The `SCAN … COUNT` of a `cache-consistency` rule whose `orphans` sets none.
pub const CACHE_SCAN_COUNT: u32 = 1000;

/// The prefix of trueup's own keys in a Redis source (a repair's journal): a scan for
/// orphans passes over them, and a key template may not build one.
pub const CACHE_OWN_PREFIX: &str = "trueup:";

/// How many series a `promql` rule may return when it sets no `max-series`.
pub const PROMQL_MAX_SERIES: u32 = 10_000;

/// How many bytes of a Prometheus answer are read when a rule sets no `max-response`.
pub const PROMQL_MAX_RESPONSE: u64 = 16 << 20;

/// The least memory limit a rule may set: a Rust plugin needs a few pages to start.
pub const MIN_MEMORY: u64 = 1 << 20;

/// [`Detector::is_table_level`] by the detector's `kind`, for what a store recorded.
pub fn is_table_level(kind: &str) -> bool {
    matches!(kind, "freshness" | "row-count")
}
