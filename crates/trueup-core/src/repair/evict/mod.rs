//! `evict`: the repair of `cache-consistency` rules. Plan lists the keys to delete with a
//! hash of each one's `DUMP`; apply deletes them in batches, each a `WATCH`ed `MULTI`/`EXEC`
//! that journals the values (`DUMP` and expiry) in Redis itself beside the deletes; undo
//! `RESTORE`s them. The journal is the hash `trueup:journal:<repair>`, the repairs the hash
//! `trueup:repairs`, their ids from `trueup:repair-id`. See docs/design/redis.md.

mod apply;
mod conn;
mod plan;
mod undo;

use serde::{Deserialize, Serialize};

pub(super) use self::apply::{EvictRun, apply_rules, check_rule};
use self::conn::{Write, Writer};
pub(super) use self::plan::plan_rule;
pub(super) use self::undo::undo;
use super::journal::RepairSummary;
use crate::load::SourceSpec;
use crate::source::RedisReply as Reply;
use crate::{Error, Result};

/// The hash of repair id → [`Record`] (JSON).
const REPAIRS: &str = "trueup:repairs";
/// The counter repair ids come from.
const NEXT_ID: &str = "trueup:repair-id";

/// The journal of repair `id`: a hash of cache key → [`Entry`].
fn journal_key(id: i64) -> String {
    format!("trueup:journal:{id}")
}

/// Whether a source is a Redis one (its repairs are `evict`s, journaled in Redis).
pub(super) fn is_redis(spec: &SourceSpec) -> bool {
    matches!(spec.kind(), Ok(crate::dialect::SourceKind::Redis))
}

/// A repair as `trueup:repairs` keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    kind: String,
    #[serde(default)]
    undoes: Option<i64>,
    plan_hash: String,
    rules: Vec<String>,
    started_at: String,
    #[serde(default)]
    finished_at: Option<String>,
    status: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    host: Option<String>,
    tool_version: String,
    #[serde(default)]
    undone_by: Option<i64>,
}

/// Starts a repair: a new id, recorded as `running`.
async fn begin(
    w: &mut Writer,
    kind: &str,
    undoes: Option<i64>,
    plan_hash: &str,
    rules: Vec<String>,
) -> Result<(i64, Record)> {
    let id = match w.one(Write::Incr(NEXT_ID)).await? {
        Reply::Int(id) => id,
        other => return Err(unexpected("INCR", other)),
    };
    let record = Record {
        kind: kind.to_owned(),
        undoes,
        plan_hash: plan_hash.to_owned(),
        rules,
        started_at: crate::time::iso8601(crate::time::now_millis()),
        finished_at: None,
        status: "running".to_owned(),
        user: super::journal::user(),
        host: super::journal::host(),
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        undone_by: None,
    };
    save(w, id, &record).await?;
    Ok((id, record))
}

async fn save(w: &mut Writer, id: i64, record: &Record) -> Result<()> {
    let json = serde_json::to_vec(record).map_err(|e| Error::Other(e.to_string()))?;
    let field = id.to_string();
    match w
        .one(Write::HSet {
            key: REPAIRS,
            field: &field,
            value: &json,
        })
        .await?
    {
        Reply::Int(_) => Ok(()),
        other => Err(unexpected("HSET", other)),
    }
}

/// Ends a repair; one that changed no key is forgotten (as the SQL journal does).
async fn finish(w: &mut Writer, id: i64, record: &mut Record, status: &str) -> Result<u64> {
    let rows = journal_len(w, id).await?;
    if rows == 0 {
        let field = id.to_string();
        w.one(Write::HDel {
            key: REPAIRS,
            field: &field,
        })
        .await?;
        return Ok(0);
    }
    record.status = status.to_owned();
    record.finished_at = Some(crate::time::iso8601(crate::time::now_millis()));
    save(w, id, record).await?;
    Ok(rows)
}

async fn journal_len(w: &mut Writer, id: i64) -> Result<u64> {
    match w.one(Write::HLen(&journal_key(id))).await? {
        Reply::Int(n) => Ok(u64::try_from(n).unwrap_or(0)),
        other => Err(unexpected("HLEN", other)),
    }
}

/// Every repair `trueup:repairs` records, by id.
async fn records(w: &mut Writer) -> Result<Vec<(i64, Record)>> {
    let items = match w.one(Write::HGetAll(REPAIRS)).await? {
        Reply::Array(items) => items,
        other => return Err(unexpected("HGETALL", other)),
    };
    let mut out = Vec::new();
    for pair in items.chunks(2) {
        let (Some(Reply::Bulk(id)), Some(Reply::Bulk(json))) = (pair.first(), pair.get(1)) else {
            continue;
        };
        let Some(id) = std::str::from_utf8(id).ok().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let record: Record = serde_json::from_slice(json).map_err(|e| {
            Error::Other(format!(
                "`{REPAIRS}` holds repair {id} as something else: {e}"
            ))
        })?;
        out.push((id, record));
    }
    out.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
    Ok(out)
}

/// The repairs a Redis source's journal lists, newest first.
pub(super) async fn list(spec: &SourceSpec) -> Result<Vec<RepairSummary>> {
    let mut w = Writer::open(spec).await?;
    let mut out = Vec::new();
    for (id, r) in records(&mut w).await? {
        let rows = journal_len(&mut w, id).await?;
        out.push(RepairSummary {
            id,
            source: spec.name.clone(),
            kind: r.kind,
            undoes: r.undoes,
            plan_hash: r.plan_hash,
            rules: r.rules,
            started_at: r.started_at,
            finished_at: r.finished_at,
            status: r.status,
            rows: i64::try_from(rows).unwrap_or(i64::MAX),
            user: r.user,
            host: r.host,
            tool_version: r.tool_version,
            undone_by: r.undone_by,
        });
    }
    Ok(out)
}

/// Whether a Redis source's journal has repair `id`.
pub(super) async fn has(spec: &SourceSpec, id: i64) -> Result<bool> {
    let mut w = Writer::open(spec).await?;
    Ok(records(&mut w).await?.iter().any(|(i, _)| *i == id))
}

/// A journal entry: `<batch> <expire-at>\n` then the `DUMP` payload; `expire-at` is Unix
/// milliseconds, -1 for a key without expiry, -2 (in an undo's journal) for no key.
struct Entry<'a> {
    expire_at: i64,
    payload: &'a [u8],
}

impl Entry<'_> {
    fn encode(batch: i64, expire_at: i64, payload: &[u8]) -> Vec<u8> {
        let mut out = format!("{batch} {expire_at}\n").into_bytes();
        out.extend_from_slice(payload);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Entry<'_>> {
        let end = bytes.iter().position(|b| *b == b'\n')?;
        let head = std::str::from_utf8(&bytes[..end]).ok()?;
        let (batch, expire_at) = head.split_once(' ')?;
        batch.parse::<i64>().ok()?;
        Some(Entry {
            expire_at: expire_at.parse().ok()?,
            payload: &bytes[end + 1..],
        })
    }
}

/// The 128-bit hash of a key's value as `DUMP` serializes it.
fn value_hash(dump: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    crate::value::hex(&Sha256::digest(dump)[..16])
}

fn unexpected(what: &str, reply: Reply) -> Error {
    match reply {
        Reply::Error(message) => Error::Other(format!("Redis answered {what} with: {message}")),
        other => Error::Other(format!("Redis answered {what} with {other:?}")),
    }
}
