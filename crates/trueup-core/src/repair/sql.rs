//! The SQL of each step of a repair, per dialect: identifiers quoted, every value bound
//! (keys by the column's type on PostgreSQL, exact numbers cast on MySQL), fragments the
//! rule wrote used as parsed. MySQL differs in a few forms: `IN ((…), …)` for `IN (VALUES
//! …)`, `DELETE t FROM table AS t`, no `RETURNING` (the rows are read again), and quarantine
//! tables made by `CREATE TABLE … AS SELECT`.

use super::catalog::Table;
use super::db::{Db, Engine};
use super::spec::{Action, Dependent, QUARANTINE_COLUMNS, Reference, RuleRepair};

fn q(db: &Db, name: &str) -> String {
    db.dialect().quote(name)
}

/// `names` quoted, separated by commas.
fn quoted_list(db: &Db, names: &[String]) -> String {
    names
        .iter()
        .map(|c| q(db, c))
        .collect::<Vec<_>>()
        .join(", ")
}

fn columns(db: &Db, alias: &str, names: &[String]) -> String {
    names
        .iter()
        .map(|c| format!("{alias}.{}", q(db, c)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `(alias.c1, …) IN (VALUES (…), …)` for `rows` keys of `cols`, bound from `first` on
/// (`IN ((…), …)` on MySQL, whose `VALUES` lists are not MariaDB's).
pub fn key_in(
    db: &Db,
    alias: &str,
    cols: &[String],
    types: &[String],
    rows: usize,
    first: usize,
) -> String {
    let width = cols.len();
    let values = (0..rows.max(1))
        .map(|r| {
            let row = types
                .iter()
                .enumerate()
                .map(|(i, ty)| db.param(first + r * width + i, ty))
                .collect::<Vec<_>>()
                .join(", ");
            format!("({row})")
        })
        .collect::<Vec<_>>()
        .join(", ");
    match db.engine() {
        Engine::Mysql => format!("({}) IN ({values})", columns(db, alias, cols)),
        Engine::Sqlite | Engine::Postgres => {
            format!("({}) IN (VALUES {values})", columns(db, alias, cols))
        }
    }
}

/// `DELETE FROM table AS t`: MySQL names the alias it deletes from (`DELETE t FROM table AS
/// t`), as MariaDB has no alias in a single-table `DELETE`.
fn delete_from(db: &Db, table: &str) -> String {
    match db.engine() {
        Engine::Mysql => format!("DELETE t FROM {} AS t", q(db, table)),
        Engine::Sqlite | Engine::Postgres => format!("DELETE FROM {} AS t", q(db, table)),
    }
}

/// A select list of `parts`, each named `trueup_cN`: no output name can then stand for a
/// column of the table in an `ORDER BY` the rule wrote (PostgreSQL resolves a bare name
/// there to an output column first, and repairs read columns as text).
fn select_list(parts: &[String]) -> String {
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| format!("{part} AS \"trueup_c{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Key columns read as repairs read values, then the row's image.
fn key_and_image(db: &Db, alias: &str, key: &[String], table: &Table) -> String {
    let mut parts: Vec<String> = key.iter().map(|k| db.read(alias, k)).collect();
    parts.extend(db.image(alias, &table.column_names()));
    select_list(&parts)
}

/// The query `plan` streams: every target row of the findings, key and image.
pub fn targets(db: &Db, rr: &RuleRepair) -> String {
    let t = q(db, &rr.table.name);
    let d_key = columns(db, "d", &rr.key);
    match &rr.action {
        Action::Merge {
            row_key,
            keep,
            filter,
            ..
        } => {
            let mut read: Vec<String> = rr.key.iter().map(|k| db.read("t", k)).collect();
            read.push(db.read("t", row_key));
            read.extend(db.image("t", &rr.table.column_names()));
            format!(
                "SELECT {} FROM {t} AS t WHERE ({}) IN (SELECT {d_key} FROM (\n{}\n) AS d){} \
                 ORDER BY {}, {}",
                select_list(&read),
                columns(db, "t", &rr.key),
                rr.detector.sql,
                filter
                    .as_deref()
                    .map(|f| format!(" AND (\n{}\n)", f.trim()))
                    .unwrap_or_default(),
                columns(db, "t", &rr.key),
                keep.trim(),
            )
        }
        _ => rows_found(db, rr, &rr.detector.sql, ""),
    }
}

/// The rows of `rr`'s table that `detector` finds (`also`: more of the `WHERE`), in key
/// order: key, then image.
fn rows_found(db: &Db, rr: &RuleRepair, detector: &str, also: &str) -> String {
    let key = columns(db, "t", &rr.key);
    format!(
        "SELECT {} FROM {} AS t WHERE {also}({key}) IN (SELECT {} FROM (\n{detector}\n) AS d) ORDER BY {key}",
        key_and_image(db, "t", &rr.key, &rr.table),
        q(db, &rr.table.name),
        columns(db, "d", &rr.key),
    )
}

/// [`targets`] of one key range, for a detector with a key-range form (`range_sql`, a
/// single-column key): the range's smallest and largest key are bound after the
/// detector's own values.
pub fn targets_in_range(db: &Db, rr: &RuleRepair, range_sql: &str) -> String {
    let n = rr.detector.binds.len();
    let ty = rr.key_types().unwrap_or_default().pop().unwrap_or_default();
    let key = columns(db, "t", &rr.key);
    let also = format!(
        "{key} >= {} AND {key} <= {} AND ",
        db.param(n + 1, &ty),
        db.param(n + 2, &ty)
    );
    rows_found(db, rr, range_sql, &also)
}

/// Reads (and on PostgreSQL locks) `rows` rows of `table` by `key`: key then image.
pub fn read_rows(db: &Db, table: &Table, key: &[String], rows: usize, lock: bool) -> String {
    let types = table.types_of(key).unwrap_or_default();
    format!(
        "SELECT {} FROM {} AS t WHERE {}{}",
        key_and_image(db, "t", key, table),
        q(db, &table.name),
        key_in(db, "t", key, &types, rows, 1),
        if lock { db.for_update() } else { "" }
    )
}

/// The detector restricted to `rows` keys, bound after its own values: the keys that
/// still violate.
///
/// With `ranged`, the detector's key-range form runs instead, its smallest and largest key
/// bound after its own values, and no list of keys: the range reaches inside its aggregate
/// (where SQLite would not push a key list down, and would aggregate the whole table per
/// batch), the statement is the same for every batch (nothing for the server to plan per
/// list), and the caller keeps the batch's own keys among the rows.
pub fn redetect(db: &Db, rr: &RuleRepair, types: &[String], rows: usize, ranged: bool) -> String {
    let read: Vec<String> = rr.key.iter().map(|k| db.read("d", k)).collect();
    match (&rr.detector.split, ranged) {
        (Some(split), true) => format!(
            "SELECT {} FROM (\n{}\n) AS d",
            select_list(&read),
            split.range_sql
        ),
        _ => format!(
            "SELECT {} FROM (\n{}\n) AS d WHERE {}",
            select_list(&read),
            rr.detector.sql,
            key_in(db, "d", &rr.key, types, rows, rr.detector.binds.len() + 1)
        ),
    }
}

/// `(t.columns) IN (…)`: the rows of `dependent` (alias `t`) that reference `rows` target
/// keys, bound from 1.
fn referencing_targets(db: &Db, rr: &RuleRepair, dependent: &Dependent, rows: usize) -> String {
    format!(
        "({}) IN (SELECT {} FROM {} AS p WHERE {})",
        columns(db, "t", &dependent.columns),
        columns(db, "p", &dependent.referenced),
        q(db, &rr.table.name),
        key_in(
            db,
            "p",
            &rr.key,
            &rr.key_types().unwrap_or_default(),
            rows,
            1
        ),
    )
}

/// The rows of `dependent` that reference `rows` target keys (bound from 1): key, image.
pub fn dependent_rows(db: &Db, rr: &RuleRepair, dependent: &Dependent, rows: usize) -> String {
    let key = dependent.table.key().unwrap_or_default();
    format!(
        "SELECT {} FROM {} AS t WHERE {}{}",
        key_and_image(db, "t", key, &dependent.table),
        q(db, &dependent.table.name),
        referencing_targets(db, rr, dependent, rows),
        db.for_update(),
    )
}

/// Deletes the rows of a declared `cascade` that reference `rows` target keys.
pub fn delete_dependent(db: &Db, rr: &RuleRepair, dependent: &Dependent, rows: usize) -> String {
    format!(
        "{} WHERE {}",
        delete_from(db, &dependent.table.name),
        referencing_targets(db, rr, dependent, rows),
    )
}

/// A `RETURNING` clause of the changed rows' keys and images, as [`read_rows`] reads them:
/// the change hands back what it left, without a second read. None on MySQL, which has no
/// `UPDATE … RETURNING` (the batch reads the rows again).
pub fn returning(db: &Db, table: &Table, key: &[String]) -> String {
    let parts: Vec<String> = match db.engine() {
        Engine::Mysql => return String::new(),
        // SQLite's RETURNING names the columns of the table it changes, unqualified.
        Engine::Sqlite => key
            .iter()
            .chain(&table.column_names())
            .map(|c| q(db, c))
            .collect(),
        Engine::Postgres => {
            let mut parts: Vec<String> = key.iter().map(|k| db.read("t", k)).collect();
            parts.extend(db.image("t", &table.column_names()));
            parts
        }
    };
    format!(" RETURNING {}", select_list(&parts))
}

/// The statements that change `rows` target rows (keys bound from 1; a quarantine's
/// repair id, run id, rule id and time after them).
pub fn change(db: &Db, rr: &RuleRepair, rows: usize) -> Vec<String> {
    let t = q(db, &rr.table.name);
    let types = rr.key_types().unwrap_or_default();
    let bare_key = |alias: &str| key_in(db, alias, &rr.key, &types, rows, 1);
    let delete = format!(
        "{} WHERE {}",
        delete_from(db, &rr.table.name),
        bare_key("t")
    );
    match &rr.action {
        Action::Delete => vec![delete],
        Action::Quarantine { into, .. } => {
            vec![quarantine_rows(db, rr, into, &rr.key, rows), delete]
        }
        Action::Update { set } => {
            let assignments = set
                .iter()
                .map(|(c, e)| format!("{} = (\n{}\n)", q(db, c), e.trim()))
                .collect::<Vec<_>>()
                .join(", ");
            vec![format!(
                "UPDATE {t} AS t SET {assignments} WHERE {}{}",
                bare_key("t"),
                returning(db, &rr.table, &rr.key)
            )]
        }
        Action::Sql { statements } => statements.iter().map(|(sql, _)| sql.clone()).collect(),
        Action::Merge { .. } | Action::Copy(_) => Vec::new(),
    }
}

/// Copies the `rows` rows of `rr`'s table whose `key` is bound from 1 into the quarantine
/// table `into`, with the repair id, run id, rule id and time bound after the keys.
pub fn quarantine_rows(
    db: &Db,
    rr: &RuleRepair,
    into: &str,
    key: &[String],
    rows: usize,
) -> String {
    let types = rr.table.types_of(key).unwrap_or_default();
    let n = rows.max(1) * key.len();
    let cols = rr.table.column_names();
    let list = cols.iter().map(|c| q(db, c)).collect::<Vec<_>>().join(", ");
    let extra = QUARANTINE_COLUMNS
        .iter()
        .map(|c| q(db, c))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO {} ({list}, {extra}) SELECT {}, {}, {}, {}, {} FROM {} AS t WHERE {}",
        q(db, into),
        columns(db, "t", &cols),
        db.param(n + 1, "bigint"),
        db.param(n + 2, "bigint"),
        db.param(n + 3, "text"),
        db.param(n + 4, "timestamptz"),
        q(db, &rr.table.name),
        key_in(db, "t", key, &types, rows, 1),
    )
}

/// Creates a quarantine table shaped as the repaired table, plus trueup's columns: its
/// columns and types only, no keys, defaults of identity or triggers (a row quarantined
/// twice, after an undo, must fit twice). On MySQL `CREATE TABLE … AS SELECT` keeps each
/// column's type, character set and collation and makes generated columns plain ones (`LIKE`
/// would copy the keys and `AUTO_INCREMENT` too); it commits at once, so `apply` runs it
/// before a batch's transaction.
pub fn create_quarantine(db: &Db, rr: &RuleRepair, into: &str) -> String {
    let (t, into) = (q(db, &rr.table.name), q(db, into));
    match db.engine() {
        Engine::Mysql => format!(
            "CREATE TABLE {into} ENGINE=InnoDB AS SELECT t.*, CAST(NULL AS SIGNED) AS trueup_repair_id, \
             CAST(NULL AS SIGNED) AS trueup_run_id, CAST(NULL AS CHAR(255)) AS trueup_rule_id, \
             CAST(NULL AS DATETIME) AS trueup_quarantined_at FROM {t} AS t WHERE 1 = 0"
        ),
        Engine::Sqlite => format!(
            "CREATE TABLE {into} AS SELECT * FROM {t} WHERE 0; \
             ALTER TABLE {into} ADD COLUMN trueup_repair_id INTEGER; \
             ALTER TABLE {into} ADD COLUMN trueup_run_id INTEGER; \
             ALTER TABLE {into} ADD COLUMN trueup_rule_id TEXT; \
             ALTER TABLE {into} ADD COLUMN trueup_quarantined_at TEXT"
        ),
        Engine::Postgres => format!(
            "CREATE TABLE {into} (LIKE {t}); \
             ALTER TABLE {into} ADD COLUMN trueup_repair_id BIGINT, \
             ADD COLUMN trueup_run_id BIGINT, ADD COLUMN trueup_rule_id TEXT, ADD COLUMN trueup_quarantined_at TIMESTAMPTZ"
        ),
    }
}

/// A merge's rows of `rows` groups (bound from 1), locked, survivor first in each group:
/// group columns, row key, image.
pub fn group_rows(db: &Db, rr: &RuleRepair, rows: usize, lock: bool) -> String {
    let Action::Merge {
        row_key,
        keep,
        filter,
        ..
    } = &rr.action
    else {
        return String::new();
    };
    let mut read: Vec<String> = rr.key.iter().map(|k| db.read("t", k)).collect();
    read.push(db.read("t", row_key));
    read.extend(db.image("t", &rr.table.column_names()));
    // PostgreSQL does not lock rows in a query with window functions or DISTINCT; this
    // one has neither, so `FOR UPDATE` holds the groups' rows.
    format!(
        "SELECT {} FROM {} AS t WHERE {}{} ORDER BY {}, {}{}",
        select_list(&read),
        q(db, &rr.table.name),
        key_in(
            db,
            "t",
            &rr.key,
            &rr.key_types().unwrap_or_default(),
            rows,
            1
        ),
        filter
            .as_deref()
            .map(|f| format!(" AND (\n{}\n)", f.trim()))
            .unwrap_or_default(),
        columns(db, "t", &rr.key),
        keep.trim(),
        if lock { db.for_update() } else { "" },
    )
}

/// The rows of `reference` that point at `losers` row keys (bound from 1): key, image.
pub fn referencing_rows(db: &Db, reference: &Reference, losers: usize) -> String {
    let key = reference.table.key().unwrap_or_default();
    let ty = reference
        .table
        .type_of(&reference.column)
        .unwrap_or("text")
        .to_owned();
    format!(
        "SELECT {} FROM {} AS t WHERE {}{}",
        key_and_image(db, "t", key, &reference.table),
        q(db, &reference.table.name),
        key_in(
            db,
            "t",
            std::slice::from_ref(&reference.column),
            &[ty],
            losers,
            1
        ),
        db.for_update(),
    )
}

/// Re-points `reference` from `losers` row keys (bound from 2) to the survivor (bound 1).
pub fn repoint(db: &Db, reference: &Reference, losers: usize) -> String {
    let ty = reference
        .table
        .type_of(&reference.column)
        .unwrap_or("text")
        .to_owned();
    let column = q(db, &reference.column);
    format!(
        "UPDATE {} AS t SET {column} = {} WHERE {}",
        q(db, &reference.table.name),
        db.param(1, &ty),
        key_in(
            db,
            "t",
            std::slice::from_ref(&reference.column),
            std::slice::from_ref(&ty),
            losers,
            2
        ),
    )
}

/// Deletes `losers` rows of a merged table by their row key (bound from 1).
pub fn delete_losers(db: &Db, rr: &RuleRepair, row_key: &str, losers: usize) -> String {
    let key = [row_key.to_owned()];
    let types = rr.table.types_of(&key).unwrap_or_default();
    format!(
        "{} WHERE {}",
        delete_from(db, &rr.table.name),
        key_in(db, "t", &key, &types, losers, 1)
    )
}

/// Puts a journaled image back over the row with the same key (image bound 1 on
/// PostgreSQL; on SQLite the columns' values bound from 1, then the key).
pub fn restore(db: &Db, table: &Table, key: &[String]) -> String {
    let types = table.types_of(key).unwrap_or_default();
    let writable = table.writable_columns();
    match db.engine() {
        Engine::Mysql => mysql_restore(db, table, key, 1),
        Engine::Sqlite => format!(
            "UPDATE {} AS t SET {} WHERE {}",
            q(db, &table.name),
            writable
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{} = ?{}", q(db, c), i + 1))
                .collect::<Vec<_>>()
                .join(", "),
            key_in(db, "t", key, &types, 1, writable.len() + 1)
        ),
        Engine::Postgres => format!(
            "UPDATE {t} AS t SET {} FROM jsonb_populate_record(CAST(NULL AS {t}), CAST($1 AS jsonb)) AS r WHERE {}",
            writable
                .iter()
                .map(|c| format!("{} = r.{}", q(db, c), q(db, c)))
                .collect::<Vec<_>>()
                .join(", "),
            key_in(db, "t", key, &types, 1, 2),
            t = q(db, &table.name),
        ),
    }
}

/// Inserts a journaled image again (image bound 1 on PostgreSQL; values on SQLite).
pub fn reinsert(db: &Db, table: &Table) -> String {
    let writable = table.writable_columns();
    let list = quoted_list(db, &writable);
    match db.engine() {
        Engine::Mysql => mysql_reinsert(db, table, 1),
        Engine::Sqlite => format!(
            "INSERT INTO {} ({list}) VALUES ({})",
            q(db, &table.name),
            (1..=writable.len())
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Engine::Postgres => format!(
            "INSERT INTO {t} ({list}) OVERRIDING SYSTEM VALUE SELECT {} FROM jsonb_populate_record(CAST(NULL AS {t}), CAST($1 AS jsonb)) AS r",
            columns(db, "r", &writable),
            t = q(db, &table.name),
        ),
    }
}

/// Deletes `rows` rows by key (bound from 1).
pub fn delete_rows(db: &Db, table: &Table, key: &[String], rows: usize) -> String {
    let types = table.types_of(key).unwrap_or_default();
    format!(
        "{} WHERE {}",
        delete_from(db, &table.name),
        key_in(db, "t", key, &types, rows, 1)
    )
}

/// `rows` rows of `width` values bound row after row from 1: each cell written by `cell(its
/// bind number, its column)`, each row between `open` and `close`, rows joined by `between`.
fn bound_rows(
    rows: usize,
    width: usize,
    cell: impl Fn(usize, usize) -> String,
    (open, close, between): (&str, &str, &str),
) -> String {
    (0..rows.max(1))
        .map(|r| {
            let cells = (0..width)
                .map(|i| cell(r * width + i + 1, i))
                .collect::<Vec<_>>()
                .join(", ");
            format!("{open}{cells}{close}")
        })
        .collect::<Vec<_>>()
        .join(between)
}

/// Puts `rows` journaled images back over the MySQL rows with the same keys in one
/// statement: the images' writable columns bound row after row from 1, joined by key
/// (`UPDATE t JOIN (SELECT … UNION ALL SELECT …) AS r`).
pub fn mysql_restore(db: &Db, table: &Table, key: &[String], rows: usize) -> String {
    let writable = table.writable_columns();
    let set = writable
        .iter()
        .map(|c| format!("t.{0} = r.{0}", q(db, c)))
        .collect::<Vec<_>>()
        .join(", ");
    let on = key
        .iter()
        .map(|c| format!("t.{0} = r.{0}", q(db, c)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let types: Vec<String> = writable
        .iter()
        .map(|c| table.type_of(c).unwrap_or("text").to_owned())
        .collect();
    let selects = bound_rows(
        rows,
        writable.len(),
        |n, i| {
            format!(
                "{} AS {}",
                db.typed_param(n, &types[i]),
                q(db, &writable[i])
            )
        },
        ("SELECT ", "", " UNION ALL "),
    );
    format!(
        "UPDATE {} AS t JOIN ({selects}) AS r ON {on} SET {set}",
        q(db, &table.name)
    )
}

/// Inserts `rows` journaled images again on MySQL, their writable columns bound row after
/// row from 1.
pub fn mysql_reinsert(db: &Db, table: &Table, rows: usize) -> String {
    let writable = table.writable_columns();
    let list = quoted_list(db, &writable);
    let values = bound_rows(
        rows,
        writable.len(),
        |n, _| format!("${n}"),
        ("(", ")", ", "),
    );
    format!(
        "INSERT INTO {} ({list}) VALUES {values}",
        q(db, &table.name)
    )
}
