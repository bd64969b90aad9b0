//! Repair strategies: what to do about a rule's findings, as rule files write them. They are
//! parsed and validated with the rule; `crate::repair` plans, applies and undoes them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What to do about a rule's findings. `strategy` picks it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "strategy", rename_all = "kebab-case")]
pub enum Repair {
    /// Delete the violating rows (their before-image is journaled).
    Delete(DeleteRepair),
    /// Move the violating rows to a quarantine table.
    Quarantine(QuarantineRepair),
    /// Set columns of the violating rows from SQL expressions.
    Update(UpdateRepair),
    /// Set an `aggregate-match` rule's column to the aggregate it was compared with.
    Recompute(RecomputeRepair),
    /// Keep one row of each duplicate group, re-point referencing rows to it, remove the rest.
    MergeDuplicates(MergeDuplicatesRepair),
    /// Run custom statements once per finding, with the finding's key values bound.
    Sql(SqlRepair),
    /// Make a `reconcile` rule's other side like its `authoritative` one: insert the rows it
    /// misses, update the compared columns that differ, delete the rows it has in excess.
    CopyFrom(CopyFromRepair),
    /// Delete a `cache-consistency` rule's stale and orphaned keys from the cache, their
    /// values and TTLs journaled in Redis beside the deletes, so that undo restores them.
    Evict(EvictRepair),
    /// No automatic repair: a person must look (e.g. payments).
    Manual(ManualRepair),
}

impl Repair {
    pub fn strategy(&self) -> &'static str {
        match self {
            Repair::Delete(_) => "delete",
            Repair::Quarantine(_) => "quarantine",
            Repair::Update(_) => "update",
            Repair::Recompute(_) => "recompute",
            Repair::MergeDuplicates(_) => "merge-duplicates",
            Repair::Sql(_) => "sql",
            Repair::CopyFrom(_) => "copy-from",
            Repair::Evict(_) => "evict",
            Repair::Manual(_) => "manual",
        }
    }

    /// The table whose rows the repair changes, when it names one itself.
    pub fn table(&self) -> Option<&str> {
        match self {
            Repair::Delete(r) => r.table.as_deref(),
            Repair::Quarantine(r) => r.table.as_deref(),
            Repair::Update(r) => r.table.as_deref(),
            Repair::Sql(r) => r.table.as_deref(),
            Repair::Recompute(_)
            | Repair::MergeDuplicates(_)
            | Repair::CopyFrom(_)
            | Repair::Evict(_)
            | Repair::Manual(_) => None,
        }
    }

    /// The most rows the repair may change, in every table together.
    pub fn max_rows(&self) -> Option<u64> {
        match self {
            Repair::Delete(r) => r.max_rows,
            Repair::Quarantine(r) => r.max_rows,
            Repair::Update(r) => r.max_rows,
            Repair::Recompute(r) => r.max_rows,
            Repair::MergeDuplicates(r) => r.max_rows,
            Repair::Sql(r) => r.max_rows,
            Repair::CopyFrom(r) => r.max_rows,
            Repair::Evict(r) => r.max_rows,
            Repair::Manual(_) => None,
        }
    }

    /// Whether the rule lets the repair run on tables with triggers.
    pub fn allow_triggers(&self) -> bool {
        match self {
            Repair::Delete(r) => r.allow_triggers,
            Repair::Quarantine(r) => r.allow_triggers,
            Repair::Update(r) => r.allow_triggers,
            Repair::Recompute(r) => r.allow_triggers,
            Repair::MergeDuplicates(r) => r.allow_triggers,
            Repair::Sql(r) => r.allow_triggers,
            Repair::CopyFrom(r) => r.allow_triggers,
            Repair::Evict(_) | Repair::Manual(_) => false,
        }
    }
}

/// Delete the violating rows.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeleteRepair {
    /// Table to delete from (default: the detector's table; required for `sql` detectors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Refuse to apply when more rows would change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,
    /// Tables whose rows reference the deleted rows and are deleted (and journaled) first,
    /// e.g. `[{ table = "order_items", column = "order_id" }]`. Without it, a referencing
    /// row that the database would not cascade makes the plan refuse.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cascade: Vec<ColumnRef>,
    /// Repair although the table has triggers (whose writes trueup cannot journal).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_triggers: bool,
}

/// Move the violating rows to a quarantine table.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct QuarantineRepair {
    /// Table to move rows from (default: the detector's table; required for `sql` detectors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Where the rows go (default: `<table>_quarantine`, created when missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into: Option<String>,
    /// Refuse to apply when more rows would change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,
    /// Tables whose rows reference the deleted rows and are deleted (and journaled) first,
    /// e.g. `[{ table = "order_items", column = "order_id" }]`. Without it, a referencing
    /// row that the database would not cascade makes the plan refuse.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cascade: Vec<ColumnRef>,
    /// Repair although the table has triggers (whose writes trueup cannot journal).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_triggers: bool,
}

/// Set columns from SQL expressions.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UpdateRepair {
    /// Table to update (default: the detector's table; required for `sql` detectors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Column name to SQL expression, e.g. `{ status = "'CANCELLED'" }`.
    pub set: BTreeMap<String, String>,
    /// Refuse to apply when more rows would change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,
    /// Repair although the table has triggers (whose writes trueup cannot journal).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_triggers: bool,
}

/// Recompute an aggregate-match column.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RecomputeRepair {
    /// Refuse to apply when more rows would change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,
    /// Repair although the table has triggers (whose writes trueup cannot journal).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_triggers: bool,
}

/// Merge duplicate rows into one survivor.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MergeDuplicatesRepair {
    /// Columns that identify a row of the duplicated table (default: `["id"]`).
    #[serde(default = "super::detector::default_key")]
    pub key: Vec<String>,
    /// SQL `ORDER BY` that puts the survivor first, e.g. `created_at ASC, id ASC` (keep the
    /// oldest, as the runbook does).
    pub keep: String,
    /// Columns elsewhere that reference the duplicated rows and are re-pointed to the survivor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<ColumnRef>,
    /// What becomes of the other rows of a group once their references point at the
    /// survivor: deleted (the default), or moved to a quarantine table.
    #[serde(default, skip_serializing_if = "Losers::is_delete")]
    pub losers: Losers,
    /// Where `losers = "quarantine"` moves them (default: `<table>_quarantine`, created when
    /// missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into: Option<String>,
    /// Refuse to apply when more rows would change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,
    /// Repair although the table has triggers (whose writes trueup cannot journal).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_triggers: bool,
}

/// What a merge does with the duplicates it does not keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Losers {
    /// Delete them (their before-images are journaled).
    #[default]
    Delete,
    /// Move them to the quarantine table, as the `quarantine` strategy does.
    Quarantine,
}

impl Losers {
    fn is_delete(&self) -> bool {
        *self == Losers::Delete
    }
}

/// A column of a table, e.g. `{ table = "orders", column = "customer_id" }`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ColumnRef {
    pub table: String,
    pub column: String,
}

/// Custom statements run once per finding.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SqlRepair {
    /// The table whose rows the statements change, identified by the finding's key
    /// (default: the detector's table; required for `sql` detectors). Its rows are journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Statements run in order in one transaction; `:column` binds that key column's value.
    pub statements: Vec<String>,
    /// Refuse to apply when more rows would change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,
    /// Repair although the table has triggers (whose writes trueup cannot journal).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_triggers: bool,
}

/// Which side of a `reconcile` holds the right rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Authoritative {
    /// The rule's own source: the right side is repaired.
    Left,
    /// `right.source`: the rule's own side is repaired.
    Right,
}

/// What `copy-from` does with the rows only the repaired side has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnExtra {
    /// Delete them (journaled).
    #[default]
    Delete,
    /// Leave them (the rule keeps finding them).
    Keep,
}

/// Copy the authoritative side's rows into the other side of a `reconcile` rule, through
/// the repair protocol: the repaired side must be a `table` whose key is a primary or
/// unique key; inserted rows get the key and the compared columns (the others their
/// defaults).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CopyFromRepair {
    /// The side whose rows are right: `left` (the rule's source) or `right`.
    pub authoritative: Authoritative,
    /// Rows only the repaired side has: `delete` (default) or `keep`.
    #[serde(default)]
    pub on_extra: OnExtra,
    /// Refuse to plan or apply more than this many changed rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,
    /// Repair a table that has triggers (their writes are not journaled).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_triggers: bool,
}

/// Evict the keys a `cache-consistency` rule finds wrong: `stale`, `orphaned`, `not-json`
/// and `wrong-type` ones (never `missing`: there is nothing to delete). The application
/// reads the row again on its next miss and caches it anew.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EvictRepair {
    /// Refuse to apply when more keys would be evicted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,
    /// Evict `no-ttl` keys too: their values agree with the rows, but they would never
    /// expire. Off by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_ttl: bool,
}

/// A person must look.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ManualRepair {
    /// What the person should do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}
