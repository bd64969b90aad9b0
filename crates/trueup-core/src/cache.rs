//! Cache consistency (`cache-consistency` rules): the rows of a database checked against
//! their cached copies in Redis. The rows stream from their source in batches
//! (`reconcile::Reader`); each batch's keys are built from the key template and read in one
//! pipelined round trip (`GET` or `HGETALL`, and `PTTL` when a TTL is required), then
//! compared field by field as `reconcile` compares columns. Orphans are found after the
//! rows: `SCAN … MATCH … COUNT` (never `KEYS`), each batch of keys read back through the
//! template and looked up among the rows with one query. Memory holds a few batches,
//! whatever the number of keys. See docs/design/redis.md.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::compile::{CACHE_FINDING_COLUMNS, cache_lookup, cache_rows};
use crate::outcome::RuleError;
use crate::reconcile::{Column, same};
use crate::rule::{CACHE_SCAN_COUNT, CacheConsistencyDetector, CacheFormat, CacheOrphans};
use crate::source::{RedisConnection, RedisRead, RedisReply, RowSink, Source, rule_error};
use crate::template::Template;
use crate::value::Value;
use crate::{Error, Result};

/// Keys read from Redis in one round trip, and batches of rows read ahead.
const BATCH: usize = 512;
const BATCHES_AHEAD: usize = 4;
/// The most characters of a value that cannot be read shown in its finding.
const SHOWN: usize = 200;

/// Checks the cached copies in `cache` (a Redis source) of the rows `d` reads from `rows`,
/// all within `timeout`; hands each finding to `sink` as a row of the key and
/// [`CACHE_FINDING_COLUMNS`].
pub async fn run<S: RowSink>(
    d: &CacheConsistencyDetector,
    cache: &Source,
    rows: &Source,
    timeout: Duration,
    sink: &mut S,
) -> Result<(), RuleError> {
    match tokio::time::timeout(timeout, check(d, cache, rows, timeout, sink)).await {
        Ok(result) => result,
        Err(_) => Err(RuleError::Timeout {
            limit: timeout,
            with_plugin: false,
        }),
    }
}

async fn check<S: RowSink>(
    d: &CacheConsistencyDetector,
    cache: &Source,
    rows: &Source,
    timeout: Duration,
    sink: &mut S,
) -> Result<(), RuleError> {
    let failed = |e: Error| RuleError::from_error(&e);
    let template = Template::parse(&d.key_template).map_err(RuleError::Configuration)?;
    let mut names = d.key.clone();
    names.extend(CACHE_FINDING_COLUMNS.iter().map(|c| (*c).to_owned()));
    sink.columns(names).map_err(failed)?;
    let dialect = rows.sql_dialect()?;
    let mut redis = cache.redis().await.map_err(failed)?;
    let checker = Checker {
        d,
        template: &template,
        columns: d
            .fields
            .iter()
            .map(|name| Column {
                name: name.clone(),
                tolerance: d.tolerance.get(name).copied().unwrap_or(0.0),
                precision_micros: 1,
            })
            .collect(),
    };
    let query = cache_rows(d, dialect, true);
    let (tx, rx) = mpsc::channel(BATCHES_AHEAD);
    let read = crate::reconcile::Reader::spawn("rows", rows, query, timeout, tx, None);
    let checked = checker.rows(&mut redis, rx, sink).await;
    // The check's own error first: the rows stopped because it stopped reading them.
    let integer = checked?;
    read.finish().await?;
    if let Some(orphans) = &d.orphans {
        checker
            .orphans(&mut redis, rows, timeout, orphans, integer.as_deref(), sink)
            .await?;
    }
    Ok(())
}

struct Checker<'a> {
    d: &'a CacheConsistencyDetector,
    template: &'a Template,
    columns: Vec<Column>,
}

/// A key's value as read: absent, of another type (the server's words), or its fields.
enum Cached {
    Absent,
    WrongType(String),
    Unreadable {
        why: String,
        raw: String,
    },
    /// Each field's name, its value as compared, and as the cache holds it (for findings).
    Fields(Vec<(String, Value, serde_json::Value)>),
}

impl Checker<'_> {
    /// Checks the rows' batches as they come; returns which key columns hold integers (from
    /// the first row), for the orphans' lookups, or `None` when there were no rows.
    async fn rows<S: RowSink>(
        &self,
        redis: &mut RedisConnection,
        mut rx: mpsc::Receiver<Vec<crate::reconcile::SideRow>>,
        sink: &mut S,
    ) -> Result<Option<Vec<bool>>, RuleError> {
        let width = self.d.key.len();
        let mut integer = None;
        while let Some(batch) = rx.recv().await {
            let batch = batch
                .into_iter()
                .map(crate::reconcile::SideRow::into_values)
                .collect::<Result<Vec<_>>>()
                .map_err(|e| RuleError::from_error(&e))?;
            if integer.is_none()
                && let Some(row) = batch.first()
            {
                integer = Some(
                    (0..width)
                        .map(|i| matches!(row.get(i), Some(Value::Int(_))))
                        .collect(),
                );
            }
            let keys: Vec<String> = batch.iter().map(|row| self.cache_key(row)).collect();
            let replies = self.read(redis, &keys, self.d.require_ttl).await?;
            for ((row, key), (value, ttl)) in batch.iter().zip(&keys).zip(replies) {
                if let Some(finding) = self.compare(row, key, value, ttl) {
                    sink.row(finding)
                        .await
                        .map_err(|e| RuleError::from_error(&e))?;
                }
            }
        }
        Ok(integer)
    }

    /// The cache key of a row (its key columns first).
    fn cache_key(&self, row: &[Value]) -> String {
        self.template.render(|name| {
            self.d
                .key
                .iter()
                .position(|k| k == name)
                .and_then(|i| row.get(i))
        })
    }

    /// Each key's value and, when `ttl`, its `PTTL`, in one round trip.
    async fn read(
        &self,
        redis: &mut RedisConnection,
        keys: &[String],
        ttl: bool,
    ) -> Result<Vec<(Cached, Option<i64>)>, RuleError> {
        let mut requests = Vec::with_capacity(keys.len() * 2);
        for key in keys {
            requests.push(match self.d.format {
                CacheFormat::Json => RedisRead::Get(key),
                CacheFormat::Hash => RedisRead::HGetAll(key),
            });
            if ttl {
                requests.push(RedisRead::Pttl(key));
            }
        }
        let mut replies = redis
            .pipeline(&requests)
            .await
            .map_err(|e| RuleError::from_error(&e))?
            .into_iter();
        let mut out = Vec::with_capacity(keys.len());
        for _ in keys {
            let value = self.cached(replies.next().unwrap_or(RedisReply::Nil))?;
            let ttl = match ttl {
                true => match replies.next() {
                    Some(RedisReply::Int(ms)) => Some(ms),
                    other => return Err(unexpected("PTTL", other)),
                },
                false => None,
            };
            out.push((value, ttl));
        }
        Ok(out)
    }

    /// A `GET` or `HGETALL` reply as the key's value.
    fn cached(&self, reply: RedisReply) -> Result<Cached, RuleError> {
        Ok(match (self.d.format, reply) {
            (_, RedisReply::Nil) => Cached::Absent,
            (_, RedisReply::Error(message)) if message.starts_with("WRONGTYPE") => {
                Cached::WrongType(message)
            }
            (CacheFormat::Json, RedisReply::Bulk(bytes)) => json_fields(&bytes),
            (CacheFormat::Hash, RedisReply::Array(items)) if items.is_empty() => Cached::Absent,
            (CacheFormat::Hash, RedisReply::Array(items)) => Cached::Fields(
                items
                    .chunks(2)
                    .map(|pair| {
                        let text = |r: Option<&RedisReply>| match r {
                            Some(RedisReply::Bulk(b)) => String::from_utf8_lossy(b).into_owned(),
                            _ => String::new(),
                        };
                        let value = text(pair.get(1));
                        (
                            text(pair.first()),
                            Value::Text(value.clone()),
                            serde_json::Value::String(value),
                        )
                    })
                    .collect(),
            ),
            (_, other) => return Err(unexpected("a read", Some(other))),
        })
    }

    /// The finding of one row, if its cached copy is wrong.
    fn compare(
        &self,
        row: &[Value],
        key: &str,
        value: Cached,
        ttl: Option<i64>,
    ) -> Option<Vec<Value>> {
        let width = self.d.key.len();
        let no_ttl = ttl == Some(-1);
        let ttl_note = if no_ttl { "; it has no TTL" } else { "" };
        let (problem, summary, cached, expected) = match value {
            Cached::Absent if self.d.require_cached => (
                "missing",
                format!("`{key}` is not in the cache"),
                Value::Null,
                self.object(row, |_| true),
            ),
            Cached::Absent => return None,
            Cached::WrongType(message) => (
                "wrong-type",
                format!(
                    "`{key}` holds another type than {}: {message}",
                    self.d.format.holds()
                ),
                Value::Null,
                self.object(row, |_| true),
            ),
            Cached::Unreadable { why, raw } => (
                "not-json",
                format!("`{key}` {why}{ttl_note}"),
                Value::Text(raw),
                self.object(row, |_| true),
            ),
            Cached::Fields(fields) => {
                // A field the cached value lacks is NULL: serializers that leave out
                // nulls agree with a NULL column; with a value it is stale (`absent`).
                let field = |i: usize| {
                    let name = self.d.cached_name(&self.columns[i].name);
                    fields.iter().find(|(n, _, _)| n == name)
                };
                let differing: Vec<usize> = (0..self.columns.len())
                    .filter(|&i| {
                        let own = row.get(width + i).unwrap_or(&Value::Null);
                        let cached = field(i).map_or(&Value::Null, |(_, v, _)| v);
                        !same(own, cached, &self.columns[i])
                    })
                    .collect();
                if differing.is_empty() {
                    if !no_ttl {
                        return None;
                    }
                    (
                        "no-ttl",
                        format!("`{key}` has no TTL"),
                        Value::Null,
                        Value::Null,
                    )
                } else {
                    let summary = differing
                        .iter()
                        .map(|&i| {
                            let own = row.get(width + i).unwrap_or(&Value::Null);
                            let cached = match field(i) {
                                Some((_, value, _)) => value.to_string(),
                                None => "absent".to_owned(),
                            };
                            format!(
                                "{} is {own} in the row, {cached} in the cache",
                                self.columns[i].name,
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ");
                    let cached: serde_json::Map<String, serde_json::Value> = differing
                        .iter()
                        .filter_map(|&i| {
                            let (_, _, shown) = field(i)?;
                            Some((self.columns[i].name.clone(), shown.clone()))
                        })
                        .collect();
                    (
                        "stale",
                        format!("`{key}` is stale: {summary}{ttl_note}"),
                        Value::Text(serde_json::Value::Object(cached).to_string()),
                        self.object(row, |i| differing.contains(&i)),
                    )
                }
            }
        };
        let mut out = row[..width.min(row.len())].to_vec();
        out.extend([
            Value::Text(problem.to_owned()),
            Value::Text(key.to_owned()),
            Value::Text(summary),
            cached,
            expected,
        ]);
        Some(out)
    }

    /// The compared columns of `row` that `keep` keeps, as a JSON object.
    fn object(&self, row: &[Value], keep: impl Fn(usize) -> bool) -> Value {
        crate::reconcile::compared_object(&self.columns, row, self.d.key.len(), keep)
    }

    /// Scans the keys matching the pattern and reports those no row has.
    async fn orphans<S: RowSink>(
        &self,
        redis: &mut RedisConnection,
        rows: &Source,
        timeout: Duration,
        orphans: &CacheOrphans,
        integer: Option<&[bool]>,
        sink: &mut S,
    ) -> Result<(), RuleError> {
        let count = orphans.count.unwrap_or(CACHE_SCAN_COUNT);
        let mut cursor = "0".to_owned();
        let mut pending: Vec<String> = Vec::new();
        loop {
            let reply = redis
                .pipeline(&[RedisRead::Scan {
                    cursor: &cursor,
                    pattern: &orphans.pattern,
                    count,
                }])
                .await
                .map_err(|e| RuleError::from_error(&e))?
                .pop();
            let (next, keys) = match reply {
                Some(RedisReply::Array(mut parts)) if parts.len() == 2 => {
                    match (parts.pop(), parts.pop()) {
                        (Some(RedisReply::Array(keys)), Some(RedisReply::Bulk(next))) => {
                            (String::from_utf8_lossy(&next).into_owned(), keys)
                        }
                        _ => return Err(unexpected("SCAN", None)),
                    }
                }
                other => return Err(unexpected("SCAN", other)),
            };
            // trueup's own keys (a repair's journal) are never the cache's.
            pending.extend(keys.into_iter().filter_map(|k| match k {
                RedisReply::Bulk(b) if !b.starts_with(crate::rule::CACHE_OWN_PREFIX.as_bytes()) => {
                    Some(String::from_utf8_lossy(&b).into_owned())
                }
                _ => None,
            }));
            while pending.len() >= BATCH {
                let batch: Vec<String> = pending.drain(..BATCH).collect();
                self.orphan_batch(redis, rows, timeout, batch, integer, sink)
                    .await?;
            }
            cursor = next;
            if cursor == "0" {
                break;
            }
        }
        if !pending.is_empty() {
            self.orphan_batch(redis, rows, timeout, pending, integer, sink)
                .await?;
        }
        Ok(())
    }

    /// Looks up one batch of scanned keys among the rows and reports those without one.
    async fn orphan_batch<S: RowSink>(
        &self,
        redis: &mut RedisConnection,
        rows: &Source,
        timeout: Duration,
        keys: Vec<String>,
        integer: Option<&[bool]>,
        sink: &mut S,
    ) -> Result<(), RuleError> {
        // SCAN may return a key twice; within a batch it is looked at once.
        let keys: Vec<String> = keys
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let parsed: Vec<Option<Vec<Value>>> = keys
            .iter()
            .map(|key| self.key_values(key, integer))
            .collect();
        let wanted: Vec<Vec<Value>> = parsed.iter().flatten().cloned().collect();
        let mut found = BTreeSet::new();
        if let (Some(integer), false) = (integer, wanted.is_empty()) {
            let dialect = rows.sql_dialect()?;
            let query = cache_lookup(self.d, dialect, integer, wanted);
            let mut existing = Collect(Vec::new());
            rows.fetch(&query, timeout, &mut existing)
                .await
                .map_err(|e| crate::reconcile::on_side("rows", rows, rule_error(e)))?;
            found.extend(existing.0.iter().map(|row| self.cache_key(row)));
        }
        let orphaned: Vec<(&String, &Option<Vec<Value>>)> = keys
            .iter()
            .zip(&parsed)
            .filter(|(key, _)| !found.contains(*key))
            .collect();
        if orphaned.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = orphaned.iter().map(|(k, _)| (*k).clone()).collect();
        let values = self.read(redis, &names, false).await?;
        for ((key, parsed), (value, _)) in orphaned.into_iter().zip(values) {
            let cached = match value {
                // Gone since the scan: nothing to report.
                Cached::Absent => continue,
                Cached::WrongType(message) => Value::Text(message),
                Cached::Unreadable { raw, .. } => Value::Text(raw),
                Cached::Fields(fields) => Value::Text(
                    serde_json::Value::Object(
                        fields.into_iter().map(|(n, _, shown)| (n, shown)).collect(),
                    )
                    .to_string(),
                ),
            };
            let (mut out, summary) = match parsed {
                Some(values) => (
                    values.clone(),
                    format!("`{key}` is cached, but no row has its key"),
                ),
                // A key the template does not build: the key column holds the cache key.
                None => {
                    let mut values = vec![Value::Text(key.clone())];
                    values.resize(self.d.key.len(), Value::Null);
                    (
                        values,
                        format!(
                            "`{key}` matches `{}` but is not a key `{}` builds",
                            self.d.orphans.as_ref().map_or("", |o| o.pattern.as_str()),
                            self.d.key_template
                        ),
                    )
                }
            };
            out.extend([
                Value::Text("orphaned".to_owned()),
                Value::Text(key.clone()),
                Value::Text(summary),
                cached,
                Value::Null,
            ]);
            sink.row(out).await.map_err(|e| RuleError::from_error(&e))?;
        }
        Ok(())
    }

    /// The key columns' values a cache key was built from, typed as the rows' keys are
    /// (`integer`); `None` for a key the template does not build.
    fn key_values(&self, key: &str, integer: Option<&[bool]>) -> Option<Vec<Value>> {
        let captures = self.template.captures(key)?;
        self.d
            .key
            .iter()
            .enumerate()
            .map(|(i, column)| {
                let text = captures.iter().find(|(n, _)| n == column)?.1;
                match integer.and_then(|flags| flags.get(i)) {
                    Some(true) => text.parse::<i64>().ok().map(Value::Int),
                    _ => Some(Value::Text(text.to_owned())),
                }
            })
            .collect()
    }
}

impl CacheFormat {
    fn holds(self) -> &'static str {
        match self {
            CacheFormat::Json => "a string (JSON)",
            CacheFormat::Hash => "a hash",
        }
    }
}

/// A string value read as a JSON object's fields.
fn json_fields(bytes: &[u8]) -> Cached {
    let shown = || {
        let text = String::from_utf8_lossy(bytes);
        match text.char_indices().nth(SHOWN) {
            Some((at, _)) => format!("{}…", &text[..at]),
            None => text.into_owned(),
        }
    };
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(map)) => Cached::Fields(
            map.into_iter()
                .map(|(name, value)| (name, from_json(&value), value))
                .collect(),
        ),
        Ok(other) => Cached::Unreadable {
            why: format!("is not a JSON object: it holds {}", kind(&other)),
            raw: shown(),
        },
        Err(err) => Cached::Unreadable {
            why: format!("is not valid JSON: {err}"),
            raw: shown(),
        },
    }
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A cached JSON field as a value `reconcile::same` compares: numbers exact (their
/// digits), nested objects and arrays as their JSON text.
fn from_json(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Decimal(n.to_string()),
        },
        serde_json::Value::String(s) => Value::Text(s.clone()),
        other => Value::Text(other.to_string()),
    }
}

fn unexpected(what: &str, reply: Option<RedisReply>) -> RuleError {
    match reply {
        Some(RedisReply::Error(message)) => {
            RuleError::Query(format!("Redis answered {what} with an error: {message}"))
        }
        other => RuleError::Query(format!("Redis answered {what} with {other:?}")),
    }
}

/// The rows of a lookup (at most a batch).
struct Collect(Vec<Vec<Value>>);

impl RowSink for Collect {
    fn columns(&mut self, _: Vec<String>) -> Result<()> {
        Ok(())
    }

    async fn row(&mut self, values: Vec<Value>) -> Result<()> {
        self.0.push(values);
        Ok(())
    }
}
