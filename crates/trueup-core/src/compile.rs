//! Compiling detectors to one SQL query each, per dialect. Identifiers are quoted by the
//! dialect and values are bound, never spliced. SQL fragments the rule author wrote
//! (`where`, `expression`, a `sql` query) were parsed by validation as exactly one
//! expression or one read-only statement ([`crate::sql_text`]); they are used as written,
//! each on lines of its own inside parentheses, so that a trailing `-- comment` ends where
//! the fragment does. The engine parses every compiled query again before it runs.

use crate::dialect::Dialect;
use crate::rule::{
    AcceptedValue, AcceptedValuesDetector, Aggregate, AggregateMatchDetector, Detector,
    ForeignKeyDetector, FreshnessDetector, MissingChildren, NotNullDetector, PROMQL_MAX_RESPONSE,
    PROMQL_MAX_SERIES, PluginDetector, PluginLimits, PromqlDetector, RowCountDetector, SqlDetector,
    UNIQUE_LISTED_KEYS, UniqueDetector,
};
use crate::template::Template;
use crate::value::Value;

/// A detector ready to run: SQL, its bound values, and how to read its rows.
#[derive(Debug, Clone)]
pub struct DetectorQuery {
    pub sql: String,
    pub binds: Vec<Value>,
    /// Result columns that identify a finding.
    pub key: Vec<String>,
    /// How each finding is described.
    pub message: Template,
    /// How to run the query as key ranges on several connections at once, when it can be.
    pub split: Option<Split>,
    /// Settings for the query's transaction (PostgreSQL: `SET LOCAL name = value`).
    pub settings: Vec<(String, String)>,
    /// The plugin that checks the rows, for a `plugin` detector: then the rows are not
    /// findings themselves.
    pub plugin: Option<PluginCall>,
    /// A query in the language of a source that is not SQL (PromQL): then `sql` is empty
    /// and the source runs this instead (`Source::fetch`).
    pub native: Option<NativeQuery>,
    /// Whether the rows are many and the SQL is all trueup's (a reconcile or cache side):
    /// then a PostgreSQL source reads them with `COPY`, when no values are bound.
    pub bulk: bool,
}

/// A query a non-SQL source runs in its own language.
#[derive(Debug, Clone)]
pub enum NativeQuery {
    Promql(PromqlCall),
    /// A `cache-consistency` check: the cache module reads the rows' source and the Redis
    /// source together ([`cache_rows`], [`cache_lookup`]); no source runs it alone.
    CacheConsistency,
}

/// A PromQL instant query and the bounds of what its answer may be.
#[derive(Debug, Clone)]
pub struct PromqlCall {
    pub query: String,
    /// The labels the rule names as its key; empty: every label of the series.
    pub key: Vec<String>,
    pub max_series: usize,
    pub max_response: u64,
}

/// The result columns of a `promql` finding besides its key labels: the series' value,
/// and its other labels in PromQL notation (`metric{a="b"}`).
pub const PROMQL_VALUE: &str = "value";
pub const PROMQL_LABELS: &str = "labels";

impl DetectorQuery {
    /// The key columns of a result with `columns`: the rule's, or for a `promql` rule that
    /// names none, every column but the value (each label of the series).
    pub fn result_key(&self, columns: &[String]) -> Vec<String> {
        match &self.native {
            Some(NativeQuery::Promql(_)) if self.key.is_empty() => columns
                .iter()
                .filter(|c| *c != PROMQL_VALUE)
                .cloned()
                .collect(),
            _ => self.key.clone(),
        }
    }
}

/// A plugin to hand a query's rows to.
#[derive(Debug, Clone)]
pub struct PluginCall {
    /// The `.wasm` file as the rule names it; `engine::prepare` resolves it against the
    /// rule file's folder.
    pub path: std::path::PathBuf,
    pub config: serde_json::Map<String, serde_json::Value>,
    pub limits: PluginLimits,
    /// The SHA-256 the `.wasm` must have, when the rule pins it.
    pub sha256: Option<String>,
}

impl DetectorQuery {
    /// A query run whole, with a built-in's message template (which is well formed).
    pub(crate) fn new(
        sql: String,
        binds: Vec<Value>,
        key: Vec<String>,
        message: &str,
    ) -> DetectorQuery {
        DetectorQuery {
            sql,
            binds,
            key,
            message: template(message),
            split: None,
            settings: Vec::new(),
            plugin: None,
            native: None,
            bulk: false,
        }
    }
}

/// A query that can run as several key ranges at once.
#[derive(Debug, Clone)]
pub struct Split {
    /// Returns one row: the smallest and the largest key.
    pub bounds_sql: String,
    /// The detector's query restricted to keys from the first to the second of two more
    /// parameters (inclusive), bound after the query's own.
    pub range_sql: String,
}

/// Compiles `detector` for `dialect`. Fails only on a message template that does not parse,
/// which validation reports first.
pub fn compile(detector: &Detector, dialect: Dialect) -> Result<DetectorQuery, String> {
    let sql = SqlWriter { dialect };
    match detector {
        Detector::Sql(d) => sql_query(d),
        Detector::NotNull(d) => Ok(sql.not_null(d)),
        Detector::Unique(d) => Ok(sql.unique(d)),
        Detector::ForeignKey(d) => Ok(sql.foreign_key(d)),
        Detector::AcceptedValues(d) => Ok(sql.accepted_values(d)),
        Detector::AggregateMatch(d) => Ok(sql.aggregate_match(d)),
        Detector::RowCount(d) => Ok(sql.row_count(d)),
        Detector::Freshness(d) => Ok(sql.freshness(d)),
        Detector::Plugin(d) => Ok(plugin_query(d)),
        Detector::Reconcile(d) => Ok(sql.reconcile(d)),
        // PromQL is the same whatever `dialect`: it is not SQL (a Prometheus source has no
        // dialect; `engine::prepare` passes SQLite's, unused).
        Detector::Promql(d) => promql_query(d),
        Detector::CacheConsistency(d) => Ok(cache_query(d)),
    }
}

/// The result columns of a `cache-consistency` finding after its key: what is wrong
/// (`stale`, `missing`, `orphaned`, `no-ttl`, `not-json`, `wrong-type`), the cache key, a
/// sentence for people, and the differing fields as cached and as the row has them (JSON
/// objects; the raw value, for one that cannot be read).
pub const CACHE_FINDING_COLUMNS: [&str; 5] = ["problem", "cache_key", "summary", "cached", "row"];

fn cache_query(d: &crate::rule::CacheConsistencyDetector) -> DetectorQuery {
    let mut query = DetectorQuery::new(String::new(), Vec::new(), d.key.clone(), "{summary}");
    query.native = Some(NativeQuery::CacheConsistency);
    query
}

/// The query that reads a `cache-consistency` rule's rows in `dialect`: the key as
/// `trueup_k0`…, then (`with_fields`) the compared columns as `trueup_c0`…; rows with a
/// NULL key left out.
pub fn cache_rows(
    d: &crate::rule::CacheConsistencyDetector,
    dialect: Dialect,
    with_fields: bool,
) -> DetectorQuery {
    let sql = SqlWriter { dialect };
    let from = match (&d.rows.table, &d.rows.query) {
        (Some(table), _) => sql.q(table),
        (None, Some(query)) => format!(
            "(\n{}\n) AS {}",
            query.trim().trim_end_matches(';').trim_end(),
            sql.q("trueup_rows")
        ),
        (None, None) => "(SELECT 1) AS nothing".to_owned(),
    };
    let key: Vec<String> = d.key.iter().map(|k| sql.q(k)).collect();
    let mut select: Vec<String> = key
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{k} AS {}", sql.q(&reconcile_column("k", i))))
        .collect();
    if with_fields {
        select.extend(
            d.fields
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{} AS {}", sql.q(c), sql.q(&reconcile_column("c", i)))),
        );
    }
    let not_null = key
        .iter()
        .map(|k| format!("{k} IS NOT NULL"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let query = format!(
        "SELECT {} FROM {from} WHERE {not_null}{}",
        select.join(", "),
        SqlWriter::and_filter(d.rows.filter.as_deref()),
    );
    DetectorQuery {
        bulk: true,
        ..DetectorQuery::new(query, Vec::new(), d.key.clone(), "{summary}")
    }
}

/// The keys among `keys` (each the key columns' values, in order) that the rule's rows
/// have: its rows' query narrowed to them, the values bound. A key column that is not
/// `integer` is compared as text (the values are the text of cache keys).
pub fn cache_lookup(
    d: &crate::rule::CacheConsistencyDetector,
    dialect: Dialect,
    integer: &[bool],
    keys: Vec<Vec<Value>>,
) -> DetectorQuery {
    let sql = SqlWriter { dialect };
    let rows = cache_rows(d, dialect, false);
    let columns: Vec<String> = (0..d.key.len())
        .map(|i| {
            let column = sql.q(&reconcile_column("k", i));
            match integer.get(i) {
                Some(true) => column,
                _ => dialect.as_text(&column),
            }
        })
        .collect();
    let mut n = 0;
    let mut param = || {
        n += 1;
        dialect.param(n)
    };
    let condition = match columns.as_slice() {
        [column] => format!(
            "{column} IN ({})",
            keys.iter().map(|_| param()).collect::<Vec<_>>().join(", ")
        ),
        _ => keys
            .iter()
            .map(|_| {
                let each: Vec<String> = columns
                    .iter()
                    .map(|c| format!("{c} = {}", param()))
                    .collect();
                format!("({})", each.join(" AND "))
            })
            .collect::<Vec<_>>()
            .join(" OR "),
    };
    let query = format!(
        "SELECT {} FROM (\n{}\n) AS {} WHERE {condition}",
        columns.join(", "),
        rows.sql,
        sql.q("trueup_cached")
    );
    let binds = keys.into_iter().flatten().collect();
    DetectorQuery::new(query, binds, d.key.clone(), "{summary}")
}

/// Which side of a `reconcile` a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Left => "left",
            Side::Right => "right",
        }
    }
}

/// How a `reconcile` side orders (and trueup compares) one key column: as integers when
/// both sides hold integers, else as the bytes of its text, which every engine can sort
/// alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrder {
    Integer,
    Text,
}

/// The result columns of a `reconcile` side's query: `trueup_k0`… (the key), `trueup_c0`…
/// (the compared columns), then `trueup_recent` (1 for a row changed within `min-age`).
pub fn reconcile_column(prefix: &str, i: usize) -> String {
    format!("trueup_{prefix}{i}")
}

/// What one side of a `reconcile` reads, in `dialect`: its `FROM` item, its key and compared
/// columns by their names on that side (quoted), and the condition its rows meet (no NULL
/// in the key, and the side's `where`).
pub struct SideRows {
    pub from: String,
    pub key: Vec<String>,
    pub columns: Vec<String>,
    pub condition: String,
}

pub fn reconcile_rows(
    d: &crate::rule::ReconcileDetector,
    side: Side,
    dialect: Dialect,
) -> SideRows {
    let sql = SqlWriter { dialect };
    let spec = match side {
        Side::Left => &d.left,
        Side::Right => &d.right,
    };
    let name = |column: &String| match side {
        Side::Left => sql.q(column),
        Side::Right => sql.q(d.right_name(column)),
    };
    let from = match (&spec.table, &spec.query) {
        (Some(table), _) => sql.q(table),
        (None, Some(query)) => format!(
            "(\n{}\n) AS {}",
            query.trim().trim_end_matches(';').trim_end(),
            sql.q("trueup_side")
        ),
        (None, None) => "(SELECT 1) AS nothing".to_owned(),
    };
    let key: Vec<String> = d.key.iter().map(name).collect();
    let not_null = key
        .iter()
        .map(|k| format!("{k} IS NOT NULL"))
        .collect::<Vec<_>>()
        .join(" AND ");
    SideRows {
        from,
        columns: d.columns.iter().map(name).collect(),
        condition: format!(
            "{not_null}{}",
            SqlWriter::and_filter(spec.filter.as_deref())
        ),
        key,
    }
}

/// The query that reads one side of a `reconcile` in `dialect`: its key (each column cast
/// and ordered as `order` says; `None` reads one row, to learn the key's types) and
/// compared columns by their names on that side, rows with a NULL key left out, and only
/// those that meet `within` when given (an SQL condition; `bisect` narrows the sides to the
/// key ranges whose checksums differ).
pub fn reconcile_side(
    d: &crate::rule::ReconcileDetector,
    side: Side,
    dialect: Dialect,
    order: Option<&[KeyOrder]>,
    within: Option<&str>,
) -> DetectorQuery {
    let sql = SqlWriter { dialect };
    let spec = match side {
        Side::Left => &d.left,
        Side::Right => &d.right,
    };
    let rows = reconcile_rows(d, side, dialect);
    let mut select: Vec<String> = Vec::new();
    for (i, k) in rows.key.iter().enumerate() {
        let read = match order.and_then(|o| o.get(i)) {
            Some(KeyOrder::Text) => dialect.as_text(k),
            _ => k.clone(),
        };
        select.push(format!("{read} AS {}", sql.q(&reconcile_column("k", i))));
    }
    for (i, c) in rows.columns.iter().enumerate() {
        select.push(format!("{c} AS {}", sql.q(&reconcile_column("c", i))));
    }
    let mut binds = Vec::new();
    if let (Some(age), Some(changed)) = (d.min_age, &spec.changed_at) {
        binds.push(Value::Float(age.0.as_secs_f64()));
        let changed = sql.q(changed);
        select.push(format!(
            "CASE WHEN {changed} IS NOT NULL AND NOT ({}) THEN 1 ELSE 0 END AS {}",
            dialect.older_than(&changed, &dialect.param(1)),
            sql.q("trueup_recent")
        ));
    }
    let tail = match order {
        None => " LIMIT 1".to_owned(),
        Some(order) => format!(
            " ORDER BY {}",
            rows.key
                .iter()
                .zip(order)
                .map(|(k, o)| match o {
                    KeyOrder::Integer => k.clone(),
                    KeyOrder::Text => dialect.bytewise(&dialect.as_text(k)),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let within = within.map(|w| format!(" AND ({w})")).unwrap_or_default();
    let query = format!(
        "SELECT {} FROM {} WHERE {}{within}{tail}",
        select.join(", "),
        rows.from,
        rows.condition,
    );
    DetectorQuery {
        bulk: true,
        ..DetectorQuery::new(query, binds, d.key.clone(), "{summary}")
    }
}

fn plugin_query(d: &PluginDetector) -> DetectorQuery {
    let mut query = DetectorQuery::new(
        d.query.trim().trim_end_matches(';').trim_end().to_owned(),
        Vec::new(),
        d.key.clone(),
        "a finding of the plugin",
    );
    query.plugin = Some(PluginCall {
        path: d.plugin.clone().into(),
        config: d.config.clone(),
        limits: d.limits.clone(),
        sha256: d.sha256.clone(),
    });
    query
}

fn sql_query(d: &SqlDetector) -> Result<DetectorQuery, String> {
    let default_message = format!(
        "violation of {}",
        d.key
            .iter()
            .map(|k| format!("{k}={{{k}}}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let message = Template::parse(d.message.as_deref().unwrap_or(&default_message))?;
    let sql = d.query.trim().trim_end_matches(';').trim_end().to_owned();
    Ok(DetectorQuery {
        sql,
        binds: Vec::new(),
        key: d.key.clone(),
        message,
        split: None,
        settings: Vec::new(),
        plugin: None,
        native: None,
        bulk: false,
    })
}

fn promql_query(d: &PromqlDetector) -> Result<DetectorQuery, String> {
    let key = d.key.clone().unwrap_or_default();
    let default_message = match key.is_empty() {
        true => "value {value}".to_owned(),
        false => format!(
            "{} at {{value}}",
            key.iter()
                .map(|k| format!("{k}={{{k}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let message = Template::parse(d.message.as_deref().unwrap_or(&default_message))?;
    Ok(DetectorQuery {
        sql: String::new(),
        binds: Vec::new(),
        key: key.clone(),
        message,
        split: None,
        settings: Vec::new(),
        plugin: None,
        native: Some(NativeQuery::Promql(PromqlCall {
            query: d.query.clone(),
            key,
            max_series: usize::try_from(d.max_series.unwrap_or(PROMQL_MAX_SERIES))
                .unwrap_or(usize::MAX),
            max_response: d.max_response.map_or(PROMQL_MAX_RESPONSE, |b| b.0),
        })),
        bulk: false,
    })
}

/// A fragment of SQL the rule author wrote, in parentheses on lines of its own.
fn fragment(text: &str) -> String {
    format!("(\n{}\n)", text.trim())
}

/// Escapes text that goes into a message template literally.
fn literal(text: &str) -> String {
    text.replace('{', "{{").replace('}', "}}")
}

fn template(text: &str) -> Template {
    Template::parse(text).expect("built-in message templates are well formed")
}

/// `a, b` from names, keeping the first of repeated names.
fn unique_names<'a>(names: impl IntoIterator<Item = &'a String>) -> Vec<&'a String> {
    let mut out: Vec<&String> = Vec::new();
    for name in names {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

struct SqlWriter {
    dialect: Dialect,
}

impl SqlWriter {
    fn q(&self, ident: &str) -> String {
        self.dialect.quote(ident)
    }

    /// A `reconcile` compiles to its left side's query (what `validate` and `explain`
    /// show); the engine runs both sides ([`reconcile_side`]).
    fn reconcile(&self, d: &crate::rule::ReconcileDetector) -> DetectorQuery {
        let order = vec![KeyOrder::Integer; d.key.len()];
        reconcile_side(d, Side::Left, self.dialect, Some(&order), None)
    }

    /// `alias."a", alias."b"` (or unqualified without an alias).
    fn list(&self, alias: Option<&str>, names: &[&String]) -> String {
        names
            .iter()
            .map(|n| match alias {
                Some(a) => format!("{a}.{}", self.q(n)),
                None => self.q(n),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Each column, quoted, put into `shape`, joined by `separator`: `"a" IS NULL OR "b" IS NULL`.
    fn each(&self, columns: &[String], shape: impl Fn(&str) -> String, separator: &str) -> String {
        columns
            .iter()
            .map(|c| shape(&self.q(c)))
            .collect::<Vec<_>>()
            .join(separator)
    }

    fn and_filter(filter: Option<&str>) -> String {
        filter
            .map(|f| format!(" AND {}", fragment(f)))
            .unwrap_or_default()
    }

    fn where_filter(filter: Option<&str>) -> String {
        filter
            .map(|f| format!(" WHERE {}", fragment(f)))
            .unwrap_or_default()
    }

    fn not_null(&self, d: &NotNullDetector) -> DetectorQuery {
        let select = unique_names(d.key.iter().chain(&d.columns));
        let any_null = self.each(&d.columns, |c| format!("{c} IS NULL"), " OR ");
        let sql = format!(
            "SELECT {} FROM {} WHERE ({any_null}){}",
            self.list(None, &select),
            self.q(&d.table),
            Self::and_filter(d.filter.as_deref())
        );
        let message = format!(
            "NULL in {} of {}",
            literal(&d.columns.join(", ")),
            literal(&d.table)
        );
        DetectorQuery::new(sql, Vec::new(), d.key.clone(), &message)
    }

    fn unique(&self, d: &UniqueDetector) -> DetectorQuery {
        let columns: Vec<&String> = d.columns.iter().collect();
        let cols = self.list(None, &columns);
        let not_null = self.each(&d.columns, |c| format!("{c} IS NOT NULL"), " AND ");
        let table = self.q(&d.table);
        let filter = Self::and_filter(d.filter.as_deref());
        let groups = format!(
            "SELECT {cols}, COUNT(*) AS {} FROM {table} WHERE {not_null}{filter} GROUP BY {cols} HAVING COUNT(*) > 1",
            self.q("duplicate_count"),
        );
        let values = d
            .columns
            .iter()
            .map(|c| format!("{}={{{c}}}", literal(c)))
            .collect::<Vec<_>>()
            .join(", ");
        let message = format!(
            "{{duplicate_count}} rows of {} share {values}",
            literal(&d.table)
        );
        let Some(key) = d.key.as_deref().filter(|key| !key.is_empty()) else {
            return DetectorQuery::new(groups, Vec::new(), d.columns.clone(), &message);
        };
        // The duplicated values first (one hash aggregate, as without `key`), then only
        // their rows, ranked by key within each value: the first few keys are listed.
        let text = |c: &String| format!("COALESCE({}, 'NULL')", self.dialect.as_text(&self.q(c)));
        let row_key = match key {
            [one] => text(one),
            many => {
                let mut parts = vec!["'('".to_owned()];
                for (i, column) in many.iter().enumerate() {
                    if i > 0 {
                        parts.push("', '".to_owned());
                    }
                    parts.push(text(column));
                }
                parts.push("')'".to_owned());
                let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                self.dialect.concat(&parts)
            }
        };
        let (duplicates, rank, shown) = (
            self.q("trueup_duplicates"),
            self.q("trueup_rank"),
            self.q("trueup_key"),
        );
        let listed = UNIQUE_LISTED_KEYS;
        let sql = format!(
            "WITH {duplicates} AS (SELECT {cols} FROM {table} WHERE {not_null}{filter} GROUP BY {cols} HAVING COUNT(*) > 1) \
             SELECT {cols}, COUNT(*) AS {count}, {listed_keys} AS {keys} \
             FROM (SELECT {cols}, {row_key} AS {shown}, ROW_NUMBER() OVER (PARTITION BY {cols} ORDER BY {order}) AS {rank} \
             FROM {table} WHERE ({cols}) IN (SELECT {cols} FROM {duplicates}){filter}) AS {rows} GROUP BY {cols}",
            count = self.q("duplicate_count"),
            listed_keys = self.dialect.concat(&[
                // The aggregates skip the NULLs of rows past the first few.
                &self.dialect.ordered_text_agg(
                    &format!("CASE WHEN {rank} <= {listed} THEN {shown} END"),
                    "', '",
                    &rank
                ),
                &format!(
                    "CASE WHEN COUNT(*) > {listed} THEN {} ELSE '' END",
                    self.dialect.concat(&[
                        "' and '",
                        &self.dialect.as_text(&format!("COUNT(*) - {listed}")),
                        "' more'"
                    ])
                ),
            ]),
            keys = self.q("duplicate_keys"),
            // NULLs last on every backend (SQLite and MySQL sort them first, PostgreSQL last).
            order = self.each(key, |c| self.dialect.nulls_last(c), ", "),
            rows = self.q("trueup_rows"),
        );
        let names = match key {
            [one] => literal(one),
            many => format!(
                "({})",
                many.iter()
                    .map(|k| literal(k))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let message = format!("{message} ({names}: {{duplicate_keys}})");
        DetectorQuery::new(sql, Vec::new(), d.columns.clone(), &message)
    }

    fn foreign_key(&self, d: &ForeignKeyDetector) -> DetectorQuery {
        let select = unique_names(d.key.iter().chain(&d.columns));
        let not_null = self.each(&d.columns, |c| format!("child.{c} IS NOT NULL"), " AND ");
        let matches = d
            .columns
            .iter()
            .zip(&d.referenced_columns)
            .map(|(c, r)| format!("parent.{} = child.{}", self.q(r), self.q(c)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let sql = format!(
            "SELECT {} FROM {} AS child WHERE {not_null}{} AND NOT EXISTS (SELECT 1 FROM {} AS parent WHERE {matches})",
            self.list(Some("child"), &select),
            self.q(&d.table),
            Self::and_filter(d.filter.as_deref()),
            self.q(&d.references),
        );
        let values = d
            .columns
            .iter()
            .map(|c| format!("{}={{{c}}}", literal(c)))
            .collect::<Vec<_>>()
            .join(", ");
        let message = format!("{values} matches no row of {}", literal(&d.references));
        DetectorQuery::new(sql, Vec::new(), d.key.clone(), &message)
    }

    fn accepted_values(&self, d: &AcceptedValuesDetector) -> DetectorQuery {
        let select = unique_names(d.key.iter().chain(std::iter::once(&d.column)));
        let column = self.q(&d.column);
        let placeholders = (1..=d.values.len())
            .map(|n| self.dialect.param(n))
            .collect::<Vec<_>>()
            .join(", ");
        let null_clause = if d.allow_null {
            String::new()
        } else {
            format!(" OR {column} IS NULL")
        };
        let sql = format!(
            "SELECT {} FROM {} WHERE ({column} NOT IN ({placeholders}){null_clause}){}",
            self.list(None, &select),
            self.q(&d.table),
            Self::and_filter(d.filter.as_deref())
        );
        let binds = d
            .values
            .iter()
            .map(|v| match v {
                AcceptedValue::Text(s) => Value::Text(s.clone()),
                AcceptedValue::Int(i) => Value::Int(*i),
                AcceptedValue::Bool(b) => Value::Bool(*b),
            })
            .collect();
        let c = literal(&d.column);
        let message = format!("{c} = {{{}}} is not an accepted value", d.column);
        DetectorQuery::new(sql, binds, d.key.clone(), &message)
    }

    /// Aggregates the children once, grouped by their parent key, then joins the (much
    /// smaller) aggregate to the parents: cheaper than grouping the joined rows.
    fn aggregate_match(&self, d: &AggregateMatchDetector) -> DetectorQuery {
        let function = match d.aggregate {
            Aggregate::Sum => "SUM",
            Aggregate::Count => "COUNT",
            Aggregate::Min => "MIN",
            Aggregate::Max => "MAX",
        };
        let child_keys = d
            .child_key
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} AS {}", self.q(c), self.q(&format!("k{i}"))))
            .collect::<Vec<_>>()
            .join(", ");
        let group_by = d
            .child_key
            .iter()
            .map(|c| self.q(c))
            .collect::<Vec<_>>()
            .join(", ");
        let on = d
            .key
            .iter()
            .enumerate()
            .map(|(i, k)| format!("agg.{} = parent.{}", self.q(&format!("k{i}")), self.q(k)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let expected_name = self.q("expected");
        let agg_expected = format!("agg.{expected_name}");
        let (join, expected, missing) = match d.missing_children {
            MissingChildren::Zero => (
                "LEFT JOIN",
                format!("COALESCE({agg_expected}, 0)"),
                String::new(),
            ),
            MissingChildren::Skip => ("JOIN", agg_expected, String::new()),
            MissingChildren::Violation => (
                "LEFT JOIN",
                agg_expected,
                format!("agg.{} IS NULL OR ", self.q("k0")),
            ),
        };
        let actual = format!("parent.{}", self.q(&d.column));
        let tolerance = self.dialect.param(1);
        let select_keys: Vec<&String> = d.key.iter().collect();
        // `range`: the parent key from `lo` to `hi` (inclusive), applied to both sides so
        // that each range aggregates only its own children.
        // `where` filters the parents before the join, in a subquery of their own, so that
        // its unqualified columns can only be the parent's.
        let parent = match &d.filter {
            Some(filter) => format!(
                "(SELECT * FROM {}{})",
                self.q(&d.table),
                Self::where_filter(Some(filter))
            ),
            None => self.q(&d.table),
        };
        let query = |range: Option<(&str, &str)>| {
            let (child_range, parent_range) = match (range, d.child_key.first(), d.key.first()) {
                (Some((lo, hi)), Some(child_key), Some(key)) => (
                    format!(" WHERE {c} >= {lo} AND {c} <= {hi}", c = self.q(child_key)),
                    format!(
                        "parent.{k} >= {lo} AND parent.{k} <= {hi} AND ",
                        k = self.q(key)
                    ),
                ),
                _ => (String::new(), String::new()),
            };
            let child_range = match (&d.child_where, child_range.is_empty()) {
                (None, _) => child_range,
                (Some(filter), true) => Self::where_filter(Some(filter)),
                (Some(filter), false) => child_range + &Self::and_filter(Some(filter)),
            };
            format!(
                "SELECT {keys}, {actual} AS {column}, {expected} AS {expected_name} \
                 FROM {parent} AS parent {join} \
                 (SELECT {child_keys}, {function}{expression} AS {expected_name} FROM {child}{child_range} GROUP BY {group_by}) AS agg \
                 ON {on} \
                 WHERE {parent_range}({missing}(({actual} IS NULL) <> ({expected} IS NULL) OR ABS({actual} - {expected}) > {tolerance}))",
                keys = self.list(Some("parent"), &select_keys),
                column = self.q(&d.column),
                child = self.q(&d.child_table),
                expression = fragment(&d.expression),
            )
        };
        let sql = query(None);
        // A single-column key can be cut into ranges that run on separate connections.
        let split = (d.key.len() == 1).then(|| Split {
            bounds_sql: format!(
                "SELECT MIN({k}), MAX({k}) FROM {t}",
                k = self.q(&d.key[0]),
                t = self.q(&d.table)
            ),
            range_sql: query(Some((&self.dialect.param(2), &self.dialect.param(3)))),
        });
        // Both sides come out ordered by the key (the children's aggregate from their key
        // index, the parents from their primary key): merging them beats hashing a million
        // aggregated rows, which PostgreSQL's planner picks otherwise (see
        // docs/performance.md).
        let settings = match self.dialect {
            Dialect::Postgres => vec![("enable_hashjoin".to_owned(), "off".to_owned())],
            Dialect::Sqlite | Dialect::Mysql => Vec::new(),
        };
        let message = format!(
            "{c} is {{{}}} but {} of {} over {} is {{expected}}",
            d.column,
            function.to_ascii_lowercase(),
            literal(&d.expression),
            literal(&d.child_table),
            c = literal(&d.column),
        );
        DetectorQuery {
            split,
            settings,
            ..DetectorQuery::new(
                sql,
                vec![Value::Float(d.tolerance)],
                d.key.clone(),
                &message,
            )
        }
    }

    fn row_count(&self, d: &RowCountDetector) -> DetectorQuery {
        let mut binds = vec![Value::Text(d.table.clone())];
        let mut bounds = Vec::new();
        for (op, bound) in [("<", d.min), (">", d.max)] {
            if let Some(bound) = bound {
                binds.push(Value::Int(bound));
                bounds.push(format!(
                    "{} {op} {}",
                    self.q("row_count"),
                    self.dialect.param(binds.len())
                ));
            }
        }
        let filter = Self::where_filter(d.filter.as_deref());
        let sql = format!(
            "SELECT {} AS {}, {count} FROM (SELECT COUNT(*) AS {count} FROM {}{filter}) AS counted WHERE {}",
            self.dialect.as_text(&self.dialect.param(1)),
            self.q("table"),
            self.q(&d.table),
            bounds.join(" OR "),
            count = self.q("row_count"),
        );
        let range = match (d.min, d.max) {
            (Some(min), Some(max)) => format!("between {min} and {max}"),
            (Some(min), None) => format!("at least {min}"),
            (None, Some(max)) => format!("at most {max}"),
            (None, None) => "any number".to_owned(),
        };
        let message = format!("{{table}} has {{row_count}} rows, expected {range}");
        DetectorQuery::new(sql, binds, vec!["table".to_owned()], &message)
    }

    /// The age of the newest timestamp, in the two largest units of `max-age`'s notation
    /// (`3d 4h old`), or `no timestamp` when there is none.
    fn age(&self, latest: &str) -> String {
        let s = self.dialect.seconds_since(latest);
        // Integer division on every backend (MySQL's `/` gives a decimal).
        let div = match self.dialect {
            Dialect::Mysql => "DIV",
            Dialect::Sqlite | Dialect::Postgres => "/",
        };
        let unit = |divisor: u32, modulo: Option<u32>, suffix: &str| {
            let value = match modulo {
                Some(m) => format!("({s} % {m}) {div} {divisor}"),
                None => format!("{s} {div} {divisor}"),
            };
            self.dialect
                .concat(&[&self.dialect.as_text(&value), &format!("'{suffix}'")])
        };
        let two = |a: String, b: String| self.dialect.concat(&[&a, "' '", &b]);
        let ages = format!(
            "CASE \
             WHEN {s} >= 86400 THEN {} \
             WHEN {s} >= 3600 THEN {} \
             WHEN {s} >= 60 THEN {} \
             ELSE {} END",
            two(unit(86400, None, "d"), unit(3600, Some(86400), "h")),
            two(unit(3600, None, "h"), unit(60, Some(3600), "m")),
            two(unit(60, None, "m"), unit(1, Some(60), "s")),
            unit(1, None, "s"),
        );
        format!(
            "COALESCE({}, 'no timestamp')",
            self.dialect.concat(&[&ages, "' old'"])
        )
    }

    fn freshness(&self, d: &FreshnessDetector) -> DetectorQuery {
        let filter = Self::where_filter(d.filter.as_deref());
        let latest_name = self.q("latest");
        let latest = &format!("newest.{latest_name}");
        let sql = format!(
            "SELECT {} AS {}, {} AS {latest_name}, {} AS {} FROM (SELECT MAX({}) AS {latest_name} FROM {}{filter}) AS newest WHERE {latest} IS NULL OR {}",
            self.dialect.as_text(&self.dialect.param(1)),
            self.q("table"),
            self.dialect.as_text(latest),
            self.age(latest),
            self.q("age"),
            self.q(&d.column),
            self.q(&d.table),
            self.dialect.older_than(latest, &self.dialect.param(2)),
        );
        let binds = vec![
            Value::Text(d.table.clone()),
            Value::Float(d.max_age.0.as_secs_f64()),
        ];
        let message = format!(
            "newest {} is {{latest}}, {{age}}, limit {}",
            literal(&d.column),
            d.max_age
        );
        DetectorQuery::new(sql, binds, vec!["table".to_owned()], &message)
    }
}
