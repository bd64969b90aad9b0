//! The journal: in the repaired database itself (a `trueup` schema on PostgreSQL,
//! `trueup_*` tables on SQLite and MySQL), because only there does it commit in the same
//! transaction as the change. One row per repair, and the before-image of every row a repair changed,
//! deleted or inserted, so that `undo` can put it back.

use serde::Serialize;

use super::db::{Db, Engine};
use super::row;
use crate::value::Value;
use crate::{Error, Result};

/// A column's text, `None` for NULL.
fn optional_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// The journal's layout version this trueup writes.
const VERSION: i64 = 1;

/// What a journaled row went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// The row was deleted; `before` is all of it.
    Delete,
    /// The row was changed; `before` is all of it, `after_hash` what the repair left.
    Update,
    /// The row was inserted (a quarantine copy); `after_hash` what the repair left.
    Insert,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Delete => "delete",
            Change::Update => "update",
            Change::Insert => "insert",
        }
    }

    fn parse(text: &str) -> Result<Change> {
        match text {
            "delete" => Ok(Change::Delete),
            "update" => Ok(Change::Update),
            "insert" => Ok(Change::Insert),
            other => Err(Error::Other(format!("unknown journal change `{other}`"))),
        }
    }
}

/// One journaled row.
#[derive(Debug, Clone)]
pub struct Entry {
    pub rule: String,
    pub table: String,
    pub key_columns: Vec<String>,
    pub key: Vec<Value>,
    pub change: Change,
    pub before: Option<String>,
    pub after_hash: Option<String>,
}

/// A repair as the journal lists it.
#[derive(Debug, Clone, Serialize)]
pub struct RepairSummary {
    pub id: i64,
    pub source: String,
    /// `apply` or `undo`.
    pub kind: String,
    /// The repair an undo restored.
    pub undoes: Option<i64>,
    pub plan_hash: String,
    pub rules: Vec<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `running` (or died), `complete`, `stopped` (interrupted or refused part way), `failed`.
    pub status: String,
    pub rows: i64,
    pub user: Option<String>,
    pub host: Option<String>,
    pub tool_version: String,
    /// The undo that restored this repair, if one did.
    pub undone_by: Option<i64>,
}

/// What a new repair row records.
pub struct NewRepair<'a> {
    pub kind: &'a str,
    pub undoes: Option<i64>,
    pub plan_hash: &'a str,
    pub rules: &'a [String],
}

fn names(engine: Engine) -> (&'static str, &'static str, &'static str) {
    match engine {
        Engine::Sqlite | Engine::Mysql => {
            ("trueup_journal_version", "trueup_repairs", "trueup_journal")
        }
        Engine::Postgres => ("trueup.journal_version", "trueup.repairs", "trueup.journal"),
    }
}

/// Column `name` of the journal's tables, quoted: `key`, `change` and `before` are reserved
/// words in MySQL.
fn col(db: &Db, name: &str) -> String {
    db.dialect().quote(name)
}

fn as_text(db: &Db, expr: &str) -> String {
    db.text(expr)
}

/// The journal's tables on MySQL: InnoDB (they must commit and roll back with the change),
/// text compared byte for byte, and every statement one that can run again, since MySQL
/// commits each `CREATE TABLE` on its own: a migration cut short is finished by the next one
/// (the version row goes in last).
fn mysql_migration() -> String {
    let table = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";
    format!(
        "CREATE TABLE IF NOT EXISTS trueup_journal_version (version BIGINT NOT NULL) {table};
         CREATE TABLE IF NOT EXISTS trueup_repairs (
             id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
             kind VARCHAR(16) NOT NULL,
             undoes BIGINT,
             plan_hash VARCHAR(64) NOT NULL,
             rules LONGTEXT NOT NULL,
             started_at VARCHAR(32) NOT NULL,
             finished_at VARCHAR(32),
             status VARCHAR(16) NOT NULL,
             rows_changed BIGINT NOT NULL DEFAULT 0,
             user_name TEXT,
             host TEXT,
             tool_version VARCHAR(64) NOT NULL,
             undone_by BIGINT) {table};
         CREATE TABLE IF NOT EXISTS trueup_journal (
             repair_id BIGINT NOT NULL,
             seq BIGINT NOT NULL,
             batch BIGINT NOT NULL,
             rule_id TEXT NOT NULL,
             table_name VARCHAR(255) NOT NULL,
             key_columns TEXT NOT NULL,
             `key` MEDIUMTEXT NOT NULL,
             `change` VARCHAR(8) NOT NULL,
             `before` LONGTEXT,
             after_hash VARCHAR(64),
             PRIMARY KEY (repair_id, seq),
             INDEX trueup_journal_by_key (table_name, `key`(255))) {table};
         INSERT INTO trueup_journal_version (version) SELECT {VERSION} FROM DUAL
             WHERE NOT EXISTS (SELECT 1 FROM trueup_journal_version);"
    )
}

fn migration(engine: Engine) -> String {
    let (version, repairs, journal) = names(engine);
    let (schema, id, image) = match engine {
        Engine::Mysql => return mysql_migration(),
        Engine::Sqlite => ("", "INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT"),
        Engine::Postgres => (
            "CREATE SCHEMA IF NOT EXISTS trueup;",
            "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
            "JSONB",
        ),
    };
    format!(
        "{schema}
         CREATE TABLE {version} (version BIGINT NOT NULL);
         CREATE TABLE {repairs} (
             id {id},
             kind TEXT NOT NULL,
             undoes BIGINT,
             plan_hash TEXT NOT NULL,
             rules TEXT NOT NULL,
             started_at TEXT NOT NULL,
             finished_at TEXT,
             status TEXT NOT NULL,
             rows_changed BIGINT NOT NULL DEFAULT 0,
             user_name TEXT,
             host TEXT,
             tool_version TEXT NOT NULL,
             undone_by BIGINT);
         CREATE TABLE {journal} (
             repair_id BIGINT NOT NULL,
             seq BIGINT NOT NULL,
             batch BIGINT NOT NULL,
             rule_id TEXT NOT NULL,
             table_name TEXT NOT NULL,
             key_columns TEXT NOT NULL,
             key TEXT NOT NULL,
             change TEXT NOT NULL,
             before {image},
             after_hash TEXT,
             PRIMARY KEY (repair_id, seq));
         CREATE INDEX {index} ON {journal} (table_name, key);
         INSERT INTO {version} (version) VALUES ({VERSION});",
        index = match engine {
            Engine::Sqlite | Engine::Mysql => "trueup_journal_by_key",
            Engine::Postgres => "journal_by_key",
        }
    )
}

/// The journal's version in `db`, `None` when it has none yet.
pub async fn version(db: &mut Db) -> Result<Option<i64>> {
    let exists = match db.engine() {
        Engine::Sqlite => {
            "SELECT CAST(count(*) AS TEXT) FROM sqlite_schema WHERE name = 'trueup_journal_version'"
        }
        Engine::Postgres => {
            "SELECT CAST(count(*) AS TEXT) FROM pg_tables \
             WHERE schemaname = 'trueup' AND tablename = 'journal_version'"
        }
        Engine::Mysql => {
            "SELECT CAST(count(*) AS CHAR) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name = 'trueup_journal_version'"
        }
    };
    let present = db.rows(exists, &[]).await?;
    if !matches!(present.first().and_then(|r| r.first()), Some(v) if v.to_string() != "0") {
        return Ok(None);
    }
    let (version, _, _) = names(db.engine());
    let rows = db
        .rows(
            &format!("SELECT {} FROM {version}", as_text(db, "max(version)")),
            &[],
        )
        .await?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.to_string().parse().ok()))
}

/// Creates the journal when the database has none (in its own transaction unless
/// `in_transaction`); refuses one a newer trueup wrote. On MySQL, whose `CREATE TABLE`
/// commits any open transaction, the caller runs this before its transaction begins.
pub async fn ensure(db: &mut Db, in_transaction: bool) -> Result<()> {
    match version(db).await? {
        Some(VERSION) => Ok(()),
        Some(newer) => Err(Error::Other(format!(
            "source `{}` has a repair journal of version {newer}, newer than this trueup's \
             ({VERSION}): upgrade trueup",
            db.source
        ))),
        None if in_transaction || db.engine() == Engine::Mysql => {
            db.batch(&migration(db.engine())).await
        }
        None => {
            db.begin().await?;
            let created = db.batch(&migration(db.engine())).await;
            match created {
                Ok(()) => db.commit().await,
                Err(e) => {
                    db.rollback().await.ok();
                    Err(e)
                }
            }
        }
    }
}

pub(super) fn user() -> Option<String> {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .ok()
}

pub(super) fn host() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .or_else(|| std::env::var("HOSTNAME").ok())
}

/// Records the start of a repair (committed on its own, so that every batch can name it).
pub async fn begin_repair(db: &mut Db, new: &NewRepair<'_>) -> Result<i64> {
    let (_, repairs, _) = names(db.engine());
    let p = |n: usize, ty: &str| db.param(n, ty);
    let returning = match db.engine() {
        // MySQL has no RETURNING: the session's LAST_INSERT_ID() is read after it.
        Engine::Mysql => String::new(),
        Engine::Sqlite | Engine::Postgres => format!(" RETURNING {}", as_text(db, "id")),
    };
    let sql = format!(
        "INSERT INTO {repairs} (kind, undoes, plan_hash, rules, started_at, status, user_name, host, tool_version) \
         VALUES ({}, {}, {}, {}, {}, 'running', {}, {}, {}){returning}",
        p(1, "text"),
        p(2, "bigint"),
        p(3, "text"),
        p(4, "text"),
        p(5, "text"),
        p(6, "text"),
        p(7, "text"),
        p(8, "text"),
    );
    let text = |s: Option<String>| s.map_or(Value::Null, Value::Text);
    let mut rows = db
        .rows(
            &sql,
            &[
                Value::Text(new.kind.to_owned()),
                new.undoes
                    .map_or(Value::Null, |u| Value::Text(u.to_string())),
                Value::Text(new.plan_hash.to_owned()),
                Value::Text(serde_json::to_string(new.rules).unwrap_or_default()),
                Value::Text(crate::time::iso8601(crate::time::now_millis())),
                text(user()),
                text(host()),
                Value::Text(env!("CARGO_PKG_VERSION").to_owned()),
            ],
        )
        .await?;
    if db.engine() == Engine::Mysql {
        rows = db
            .rows("SELECT CAST(LAST_INSERT_ID() AS CHAR)", &[])
            .await?;
    }
    rows.first()
        .and_then(|r| r.first())
        .and_then(|v| v.to_string().parse().ok())
        .ok_or_else(|| Error::Other("the journal did not return the repair's id".into()))
}

/// Records how a repair ended; a repair that changed no row leaves no trace.
pub async fn finish_repair(db: &mut Db, repair: i64, status: &str) -> Result<()> {
    let (_, repairs, _) = names(db.engine());
    let removed = db
        .execute(
            &format!(
                "DELETE FROM {repairs} WHERE id = {} AND rows_changed = 0",
                db.param(1, "bigint")
            ),
            &[Value::Int(repair)],
        )
        .await?;
    if removed > 0 {
        return Ok(());
    }
    db.execute(
        &format!(
            "UPDATE {repairs} SET status = {}, finished_at = {} WHERE id = {}",
            db.param(1, "text"),
            db.param(2, "text"),
            db.param(3, "bigint")
        ),
        &[
            Value::Text(status.to_owned()),
            Value::Text(crate::time::iso8601(crate::time::now_millis())),
            Value::Text(repair.to_string()),
        ],
    )
    .await?;
    Ok(())
}

/// Marks `repair` as restored by `undo` (inside the undo's last transaction).
pub async fn mark_undone(db: &mut Db, repair: i64, undo: i64) -> Result<()> {
    let (_, repairs, _) = names(db.engine());
    db.execute(
        &format!(
            "UPDATE {repairs} SET undone_by = {} WHERE id = {}",
            db.param(1, "bigint"),
            db.param(2, "bigint")
        ),
        &[
            Value::Text(undo.to_string()),
            Value::Text(repair.to_string()),
        ],
    )
    .await?;
    Ok(())
}

/// Most rows one INSERT writes on SQLite (it binds at most 32766 values).
const ROWS_PER_INSERT: usize = 500;

/// A journal row as PostgreSQL's `jsonb_to_recordset` reads it: a batch's entries go in one
/// statement with one parameter, not ten per row to format, bind and plan.
#[derive(Serialize)]
struct Row<'e> {
    seq: i64,
    rule_id: &'e str,
    table_name: &'e str,
    key_columns: String,
    key: String,
    change: &'static str,
    before: Option<&'e str>,
    after_hash: Option<&'e str>,
}

/// Writes `entries` as batch `batch` of `repair`, numbered on from `seq`, and adds their
/// count to the repair's rows; inside the batch's transaction.
pub async fn write(
    db: &mut Db,
    repair: i64,
    batch: i64,
    seq: &mut i64,
    entries: &[Entry],
) -> Result<()> {
    let (_, repairs, journal) = names(db.engine());
    let columns = format!(
        "repair_id, seq, batch, rule_id, table_name, key_columns, {}, {}, {}, after_hash",
        col(db, "key"),
        col(db, "change"),
        col(db, "before")
    );
    match db.engine() {
        Engine::Postgres => {
            let rows: Vec<Row<'_>> = entries
                .iter()
                .map(|entry| {
                    *seq += 1;
                    Row {
                        seq: *seq - 1,
                        rule_id: &entry.rule,
                        table_name: &entry.table,
                        key_columns: serde_json::to_string(&entry.key_columns).unwrap_or_default(),
                        key: row::key_json(&entry.key).to_string(),
                        change: entry.change.as_str(),
                        before: entry.before.as_deref(),
                        after_hash: entry.after_hash.as_deref(),
                    }
                })
                .collect();
            let rows = serde_json::to_string(&rows).map_err(|e| Error::Other(e.to_string()))?;
            db.execute(
                &format!(
                    "INSERT INTO {journal} ({columns}) \
                     SELECT CAST($1 AS bigint), r.seq, CAST($2 AS bigint), r.rule_id, r.table_name, \
                     r.key_columns, r.key, r.change, CAST(r.before AS jsonb), r.after_hash \
                     FROM jsonb_to_recordset(CAST($3 AS jsonb)) AS r(seq bigint, rule_id text, \
                     table_name text, key_columns text, key text, change text, before text, \
                     after_hash text)"
                ),
                &[Value::Int(repair), Value::Int(batch), Value::Text(rows)],
            )
            .await?;
        }
        Engine::Sqlite | Engine::Mysql => {
            for chunk in entries.chunks(ROWS_PER_INSERT) {
                let mut binds = Vec::with_capacity(chunk.len() * 10);
                let mut rows = Vec::with_capacity(chunk.len());
                for entry in chunk {
                    let n = binds.len();
                    let params: Vec<String> = (1..=10).map(|i| db.param(n + i, "text")).collect();
                    rows.push(format!("({})", params.join(", ")));
                    binds.extend([
                        Value::Int(repair),
                        Value::Int(*seq),
                        Value::Int(batch),
                        Value::Text(entry.rule.clone()),
                        Value::Text(entry.table.clone()),
                        Value::Text(serde_json::to_string(&entry.key_columns).unwrap_or_default()),
                        Value::Text(row::key_json(&entry.key).to_string()),
                        Value::Text(entry.change.as_str().to_owned()),
                        entry.before.clone().map_or(Value::Null, Value::Text),
                        entry.after_hash.clone().map_or(Value::Null, Value::Text),
                    ]);
                    *seq += 1;
                }
                db.execute(
                    &format!(
                        "INSERT INTO {journal} ({columns}) VALUES {}",
                        rows.join(", ")
                    ),
                    &binds,
                )
                .await?;
            }
        }
    }
    db.execute(
        &format!(
            "UPDATE {repairs} SET rows_changed = rows_changed + {} WHERE id = {}",
            db.param(1, "bigint"),
            db.param(2, "bigint")
        ),
        &[
            Value::Int(i64::try_from(entries.len()).unwrap_or(i64::MAX)),
            Value::Int(repair),
        ],
    )
    .await?;
    Ok(())
}

/// One batch of a repair: its number and the range of its entries' `seq` (a batch's
/// entries are numbered one after another).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    pub number: i64,
    first: i64,
    last: i64,
}

/// The batches of `repair`, last written first.
pub async fn batches(db: &mut Db, repair: i64) -> Result<Vec<Batch>> {
    let (_, _, journal) = names(db.engine());
    let rows = db
        .rows(
            &format!(
                "SELECT {} AS batch_text, {}, {} \
                 FROM {journal} WHERE repair_id = {} GROUP BY batch ORDER BY max(seq) DESC",
                as_text(db, "batch"),
                as_text(db, "min(seq)"),
                as_text(db, "max(seq)"),
                db.param(1, "bigint")
            ),
            &[Value::Int(repair)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let int = |v: &Value| {
                v.to_string()
                    .parse()
                    .map_err(|_| Error::Other("the journal's batches do not read".into()))
            };
            Ok(Batch {
                number: int(&r[0])?,
                first: int(&r[1])?,
                last: int(&r[2])?,
            })
        })
        .collect()
}

/// The batches of `repair` that earlier undos which stopped part way restored (an undo's
/// batches are numbered as the batches they restored).
pub async fn restored_batches(db: &mut Db, repair: i64) -> Result<Vec<i64>> {
    let (_, repairs, journal) = names(db.engine());
    let rows = db
        .rows(
            &format!(
                "SELECT {} AS batch_text FROM {journal} AS j \
                 JOIN {repairs} AS r ON r.id = j.repair_id \
                 WHERE r.kind = 'undo' AND r.undoes = {} AND r.undone_by IS NULL GROUP BY j.batch",
                as_text(db, "j.batch"),
                db.param(1, "bigint")
            ),
            &[Value::Int(repair)],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.first().and_then(|v| v.to_string().parse().ok()))
        .collect())
}

/// The entries of one batch of `repair`, last first (the order they are undone in). Read
/// by their `seq` range, which the journal's primary key finds without reading the rest.
pub async fn entries(db: &mut Db, repair: i64, batch: &Batch) -> Result<Vec<Entry>> {
    let (_, _, journal) = names(db.engine());
    let rows = db
        .rows(
            &format!(
                "SELECT rule_id, table_name, key_columns, {}, {}, {}, after_hash \
                 FROM {journal} WHERE repair_id = {} AND seq BETWEEN {} AND {} AND batch = {} ORDER BY seq DESC",
                col(db, "key"),
                col(db, "change"),
                as_text(db, &col(db, "before")),
                db.param(1, "bigint"),
                db.param(2, "bigint"),
                db.param(3, "bigint"),
                db.param(4, "bigint")
            ),
            &[
                Value::Int(repair),
                Value::Int(batch.first),
                Value::Int(batch.last),
                Value::Int(batch.number),
            ],
        )
        .await?;
    rows.into_iter()
        .map(|r| {
            let text = optional_text;
            let corrupt = |what: &str| Error::Other(format!("the journal's {what} does not read"));
            Ok(Entry {
                rule: text(&r[0]).unwrap_or_default(),
                table: text(&r[1]).unwrap_or_default(),
                key_columns: serde_json::from_str(&text(&r[2]).unwrap_or_default())
                    .map_err(|_| corrupt("key columns"))?,
                key: row::key_values(
                    &serde_json::from_str(&text(&r[3]).unwrap_or_default())
                        .map_err(|_| corrupt("key"))?,
                )?,
                change: Change::parse(&text(&r[4]).unwrap_or_default())?,
                before: text(&r[5]),
                after_hash: text(&r[6]),
            })
        })
        .collect()
}

/// The repairs the journal of `db` lists, newest first; none when it has no journal.
pub async fn list(db: &mut Db) -> Result<Vec<RepairSummary>> {
    if version(db).await?.is_none() {
        return Ok(Vec::new());
    }
    let (_, repairs, _) = names(db.engine());
    let rows = db
        .rows(
            &format!(
                "SELECT {} AS id_text, kind, {}, plan_hash, rules, started_at, finished_at, \
                 status, {}, user_name, host, tool_version, {} \
                 FROM {repairs} ORDER BY id DESC",
                as_text(db, "id"),
                as_text(db, "undoes"),
                as_text(db, "rows_changed"),
                as_text(db, "undone_by"),
            ),
            &[],
        )
        .await?;
    let source = db.source.clone();
    Ok(rows
        .into_iter()
        .map(|r| {
            let text = optional_text;
            let int = |v: &Value| text(v).and_then(|t| t.parse().ok());
            RepairSummary {
                id: int(&r[0]).unwrap_or_default(),
                source: source.clone(),
                kind: text(&r[1]).unwrap_or_default(),
                undoes: int(&r[2]),
                plan_hash: text(&r[3]).unwrap_or_default(),
                rules: serde_json::from_str(&text(&r[4]).unwrap_or_default()).unwrap_or_default(),
                started_at: text(&r[5]).unwrap_or_default(),
                finished_at: text(&r[6]),
                status: text(&r[7]).unwrap_or_default(),
                rows: int(&r[8]).unwrap_or_default(),
                user: text(&r[9]),
                host: text(&r[10]),
                tool_version: text(&r[11]).unwrap_or_default(),
                undone_by: int(&r[12]),
            }
        })
        .collect())
}

/// The repair `id` of `db`'s journal.
pub async fn find(db: &mut Db, id: i64) -> Result<Option<RepairSummary>> {
    Ok(list(db).await?.into_iter().find(|r| r.id == id))
}

/// For each of `rows` of `table` (key as JSON text, the hash of its image now or `None`
/// when it is gone): the rule of plan `plan_hash` whose last journaled change left the row
/// exactly as it is now, if one did.
pub async fn left_as_is(
    db: &mut Db,
    plan_hash: &str,
    table: &str,
    rows: &[(String, Option<String>)],
) -> Result<Vec<Option<String>>> {
    let texts: Vec<String> = rows.iter().map(|(t, _)| t.clone()).collect();
    let done = already_done(db, plan_hash, table, &texts).await?;
    Ok(rows
        .iter()
        .map(|(text, now)| {
            done.iter()
                .rev()
                .find(|(k, _, _)| k == text)
                .filter(|(_, after, _)| after == now)
                .map(|(_, _, rule)| rule.clone())
        })
        .collect())
}

/// Keys of `table` that a repair of plan `plan_hash` already journaled, with the hash it
/// left (`None` for a deleted row) and the rule, oldest first: for telling "already
/// repaired" and "changed by another rule of this plan" from "changed by someone else".
pub async fn already_done(
    db: &mut Db,
    plan_hash: &str,
    table: &str,
    keys: &[String],
) -> Result<Vec<(String, Option<String>, String)>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let (_, repairs, journal) = names(db.engine());
    let key = col(db, "key");
    let list = (0..keys.len())
        .map(|i| db.param(i + 3, "text"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut binds = vec![
        Value::Text(plan_hash.to_owned()),
        Value::Text(table.to_owned()),
    ];
    binds.extend(keys.iter().cloned().map(Value::Text));
    let rows = db
        .rows(
            &format!(
                "SELECT j.{key}, j.after_hash, j.rule_id FROM {journal} AS j JOIN {repairs} AS r ON r.id = j.repair_id \
                 WHERE r.plan_hash = {} AND r.kind = 'apply' AND r.undone_by IS NULL \
                   AND j.table_name = {} AND j.{key} IN ({list}) ORDER BY j.repair_id, j.seq",
                db.param(1, "text"),
                db.param(2, "text"),
            ),
            &binds,
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let hash = optional_text(&r[1]);
            (r[0].to_string(), hash, r[2].to_string())
        })
        .collect())
}
