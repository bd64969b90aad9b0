//! What a repair must know of a table before it touches it: its columns and their types,
//! the keys that identify its rows, its triggers, and the foreign keys that point at it
//! (SQLite's pragmas, PostgreSQL's `pg_catalog`, MySQL's `information_schema`).

use serde::{Deserialize, Serialize};

use super::db::{Db, Engine};
use crate::dialect::Dialect;
use crate::value::Value;
use crate::{Error, Result};

/// A table as the database describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    /// Columns in order, with their declared types.
    pub columns: Vec<Column>,
    /// Column sets that identify a row: the primary key first, then unique indexes.
    pub keys: Vec<Vec<String>>,
    #[serde(skip)]
    pub triggers: Vec<String>,
    #[serde(skip)]
    pub referenced_by: Vec<ForeignKey>,
    /// The storage engine of a MySQL table that cannot roll back a transaction (MyISAM,
    /// Aria, …): trueup does not repair it, since a batch that fails would stay half-done.
    #[serde(skip)]
    pub not_transactional: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    /// Computed by the database: never written back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub generated: bool,
}

/// A foreign key of another table that references this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub name: String,
    /// The referencing table.
    pub table: String,
    pub columns: Vec<String>,
    /// The columns of this table it references.
    pub referenced: Vec<String>,
    pub on_delete: OnDelete,
}

/// What the database does to referencing rows when the referenced row is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDelete {
    /// Refuses the delete (`NO ACTION`, `RESTRICT`).
    Refuse,
    Cascade,
    /// `SET NULL` or `SET DEFAULT`: the referencing rows change.
    Set,
}

impl Table {
    /// The declared type of `column`.
    pub fn type_of(&self, column: &str) -> Option<&str> {
        self.columns
            .iter()
            .find(|c| c.name == column)
            .map(|c| c.ty.as_str())
    }

    /// The types of `columns`, in order; a column the table lacks is an error naming it.
    pub fn types_of(&self, columns: &[String]) -> Result<Vec<String>> {
        columns
            .iter()
            .map(|c| {
                self.type_of(c).map(str::to_owned).ok_or_else(|| {
                    Error::Other(format!("table `{}` has no column `{c}`", self.name))
                })
            })
            .collect()
    }

    /// The smallest key of the table that `columns` contain, if any: then `columns`
    /// identify at most one row.
    pub fn identifies(&self, columns: &[String]) -> bool {
        self.keys
            .iter()
            .any(|key| key.iter().all(|k| columns.contains(k)))
    }

    /// A key that identifies this table's rows (the primary key when there is one).
    pub fn key(&self) -> Option<&[String]> {
        self.keys.first().map(Vec::as_slice)
    }

    /// The names of the columns a row is written back with.
    pub fn writable_columns(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| !c.generated)
            .map(|c| c.name.clone())
            .collect()
    }

    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }
}

/// Foreign keys from one row per column, in order: name, referencing table, its column,
/// the referenced column, and the `ON DELETE` rule as SQL writes it.
fn foreign_keys(rows: impl Iterator<Item = [String; 5]>) -> Vec<ForeignKey> {
    let mut keys: Vec<ForeignKey> = Vec::new();
    for [name, table, from, to, rule] in rows {
        let on_delete = match rule.to_ascii_uppercase().as_str() {
            "CASCADE" => OnDelete::Cascade,
            "SET NULL" | "SET DEFAULT" => OnDelete::Set,
            _ => OnDelete::Refuse,
        };
        match keys.last_mut() {
            Some(last) if last.name == name && last.table == table => {
                last.columns.push(from);
                last.referenced.push(to);
            }
            _ => keys.push(ForeignKey {
                name,
                table,
                columns: vec![from],
                referenced: vec![to],
                on_delete,
            }),
        }
    }
    keys
}

/// The first column of each row, as text.
fn first_texts(rows: &[Vec<Value>]) -> Vec<String> {
    rows.iter().map(|row| text(&row[0])).collect()
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn names(json: &Value) -> Result<Vec<String>> {
    serde_json::from_str(&text(json)).map_err(|e| Error::Other(format!("reading the catalog: {e}")))
}

/// The table `name`, or `None` when the database has no such table.
pub async fn table(db: &mut Db, name: &str) -> Result<Option<Table>> {
    match db.engine() {
        Engine::Sqlite => sqlite_table(db, name).await,
        Engine::Postgres => postgres_table(db, name).await,
        Engine::Mysql => mysql_table(db, name).await,
    }
}

async fn sqlite_table(db: &mut Db, name: &str) -> Result<Option<Table>> {
    let (schema, bare) = name.rsplit_once('.').unwrap_or(("main", name));
    let rows = db
        .rows(
            "SELECT name, type, hidden, pk FROM pragma_table_xinfo(?1, ?2) ORDER BY cid",
            &[Value::Text(bare.into()), Value::Text(schema.into())],
        )
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut primary: Vec<(i64, String)> = Vec::new();
    let columns = rows
        .iter()
        .map(|row| {
            let column = Column {
                name: text(&row[0]),
                ty: text(&row[1]),
                generated: matches!(row[2], Value::Int(2 | 3)),
            };
            if let Value::Int(pk) = row[3]
                && pk > 0
            {
                primary.push((pk, column.name.clone()));
            }
            column
        })
        .collect::<Vec<_>>();
    primary.sort();
    let mut keys = Vec::new();
    if !primary.is_empty() {
        keys.push(primary.into_iter().map(|(_, c)| c).collect());
    }
    let indexes = db
        .rows(
            "SELECT name FROM pragma_index_list(?1, ?2) WHERE \"unique\" = 1 AND partial = 0 \
             ORDER BY origin = 'pk' DESC, name",
            &[Value::Text(bare.into()), Value::Text(schema.into())],
        )
        .await?;
    for index in indexes {
        let columns: Vec<String> = db
            .rows(
                "SELECT name FROM pragma_index_info(?1, ?2) ORDER BY seqno",
                &[index[0].clone(), Value::Text(schema.into())],
            )
            .await?
            .iter()
            .map(|row| text(&row[0]))
            .collect();
        // An index on an expression has a NULL name: it identifies no columns.
        if !columns.iter().any(String::is_empty) && !keys.contains(&columns) {
            keys.push(columns);
        }
    }
    let triggers = first_texts(&db
        .rows(
            "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1 COLLATE NOCASE",
            &[Value::Text(bare.into())],
        )
        .await?);
    let referencing = db
        .rows(
            "SELECT m.name, f.id, f.\"from\", f.\"to\", f.on_delete \
             FROM sqlite_schema AS m, pragma_foreign_key_list(m.name) AS f \
             WHERE m.type = 'table' AND f.\"table\" = ?1 COLLATE NOCASE \
             ORDER BY m.name, f.id, f.seq",
            &[Value::Text(bare.into())],
        )
        .await?;
    let primary_key = keys.first().cloned().unwrap_or_default();
    let mut referenced_by = foreign_keys(referencing.iter().map(|row| {
        let (table, id) = (text(&row[0]), text(&row[1]));
        [
            format!("{table} foreign key #{id}"),
            table,
            text(&row[2]),
            text(&row[3]),
            text(&row[4]),
        ]
    }));
    // A foreign key that names no parent columns references the parent's primary key.
    for fk in &mut referenced_by {
        if fk.referenced.iter().all(String::is_empty) {
            fk.referenced.clone_from(&primary_key);
        }
    }
    Ok(Some(Table {
        name: name.to_owned(),
        columns,
        keys,
        triggers,
        referenced_by,
        not_transactional: None,
    }))
}

async fn postgres_table(db: &mut Db, name: &str) -> Result<Option<Table>> {
    let quoted = Value::Text(Dialect::Postgres.quote(name));
    let rows = db
        .rows(
            "SELECT CAST(a.attname AS TEXT), format_type(a.atttypid, a.atttypmod), \
                    CAST(a.attgenerated <> '' AS TEXT) \
             FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 \
               AND NOT a.attisdropped ORDER BY a.attnum",
            std::slice::from_ref(&quoted),
        )
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let columns = rows
        .iter()
        .map(|row| Column {
            name: text(&row[0]),
            ty: text(&row[1]),
            generated: text(&row[2]) == "true",
        })
        .collect();
    let keys = db
        .rows(
            "SELECT CAST((SELECT json_agg(a.attname ORDER BY k.n) \
                          FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) \
                          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) AS TEXT) \
             FROM pg_index i WHERE i.indrelid = to_regclass($1) AND i.indisunique \
               AND i.indpred IS NULL AND i.indexprs IS NULL \
             ORDER BY i.indisprimary DESC, i.indexrelid",
            std::slice::from_ref(&quoted),
        )
        .await?
        .iter()
        .map(|row| names(&row[0]))
        .collect::<Result<Vec<_>>>()?;
    let triggers = first_texts(
        &db.rows(
            "SELECT CAST(tgname AS TEXT) FROM pg_trigger \
             WHERE tgrelid = to_regclass($1) AND NOT tgisinternal",
            std::slice::from_ref(&quoted),
        )
        .await?,
    );
    let attnames = |side: &str, relation: &str| {
        format!(
            "CAST((SELECT json_agg(a.attname ORDER BY k.n) \
                   FROM unnest(c.{side}) WITH ORDINALITY AS k(attnum, n) \
                   JOIN pg_attribute a ON a.attrelid = c.{relation} AND a.attnum = k.attnum) AS TEXT)"
        )
    };
    let referenced_by = db
        .rows(
            &format!(
                "SELECT CAST(c.conname AS TEXT), CAST(CAST(c.conrelid AS regclass) AS TEXT), \
                        CAST(c.confdeltype AS TEXT), {}, {} \
                 FROM pg_constraint c WHERE c.contype = 'f' AND c.confrelid = to_regclass($1) \
                 ORDER BY c.conname",
                attnames("conkey", "conrelid"),
                attnames("confkey", "confrelid")
            ),
            std::slice::from_ref(&quoted),
        )
        .await?
        .iter()
        .map(|row| {
            Ok(ForeignKey {
                name: text(&row[0]),
                table: text(&row[1]),
                on_delete: match text(&row[2]).as_str() {
                    "c" => OnDelete::Cascade,
                    "n" | "d" => OnDelete::Set,
                    _ => OnDelete::Refuse,
                },
                columns: names(&row[3])?,
                referenced: names(&row[4])?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(Table {
        name: name.to_owned(),
        columns,
        keys,
        triggers,
        referenced_by,
        not_transactional: None,
    }))
}

/// `schema.table` as the schema (the session's database when none) and the table, bound.
fn mysql_name(name: &str) -> [Value; 2] {
    let (schema, table) = match name.split_once('.') {
        Some((schema, table)) => (Value::Text(schema.to_owned()), table),
        None => (Value::Null, name),
    };
    [schema, Value::Text(table.to_owned())]
}

/// Names compared byte for byte (`information_schema` compares without case), in the named
/// schema or the session's database.
const MYSQL_WHERE: &str = "CAST(table_schema AS BINARY) = CAST(COALESCE($1, DATABASE()) AS BINARY) \
     AND CAST(table_name AS BINARY) = CAST($2 AS BINARY)";

async fn mysql_table(db: &mut Db, name: &str) -> Result<Option<Table>> {
    let bound = mysql_name(name);
    let engine = db
        .rows(
            &format!(
                "SELECT CAST(COALESCE(engine, '') AS CHAR), CAST(table_type AS CHAR) \
                 FROM information_schema.tables WHERE {MYSQL_WHERE}"
            ),
            &bound,
        )
        .await?;
    let Some(engine) = engine.first() else {
        return Ok(None);
    };
    let (kind, table_type) = (text(&engine[0]), text(&engine[1]));
    let not_transactional = if kind.eq_ignore_ascii_case("innodb") {
        None
    } else if table_type == "VIEW" {
        Some("a view".to_owned())
    } else {
        Some(format!("a {kind} table"))
    };
    // Generated columns: MySQL writes their expression, MariaDB says `IS_GENERATED`.
    let rows = db
        .rows(
            &format!(
                "SELECT CAST(column_name AS CHAR), CAST(column_type AS CHAR), \
                        CAST(COALESCE(generation_expression, '') <> '' AS SIGNED) \
                 FROM information_schema.columns WHERE {MYSQL_WHERE} ORDER BY ordinal_position"
            ),
            &bound,
        )
        .await?;
    let columns = rows
        .iter()
        .map(|row| Column {
            name: text(&row[0]),
            ty: text(&row[1]),
            generated: matches!(row[2], Value::Int(1) | Value::Bool(true)),
        })
        .collect();
    // Unique indexes on whole columns (no prefix, no expression), the primary key first.
    let index_rows = db
        .rows(
            &format!(
                "SELECT CAST(index_name AS CHAR), CAST(column_name AS CHAR), \
                        CAST(sub_part IS NOT NULL OR column_name IS NULL AS SIGNED) \
                 FROM information_schema.statistics WHERE {MYSQL_WHERE} AND non_unique = 0 \
                 ORDER BY index_name <> 'PRIMARY', index_name, seq_in_index"
            ),
            &bound,
        )
        .await?;
    // Index name, its columns, whether any is a prefix or an expression.
    let mut indexes: Vec<(String, Vec<String>, bool)> = Vec::new();
    for row in index_rows {
        let (index, column) = (text(&row[0]), text(&row[1]));
        let partial = matches!(row[2], Value::Int(1) | Value::Bool(true));
        match indexes.last_mut() {
            Some((name, columns, any)) if *name == index => {
                columns.push(column);
                *any |= partial;
            }
            _ => indexes.push((index, vec![column], partial)),
        }
    }
    let keys = indexes
        .into_iter()
        .filter(|(_, _, partial)| !partial)
        .map(|(_, columns, _)| columns)
        .collect();
    let triggers = first_texts(
        &db.rows(
            "SELECT CAST(trigger_name AS CHAR) FROM information_schema.triggers \
             WHERE CAST(event_object_schema AS BINARY) = CAST(COALESCE($1, DATABASE()) AS BINARY) \
               AND CAST(event_object_table AS BINARY) = CAST($2 AS BINARY) ORDER BY trigger_name",
            &bound,
        )
        .await?,
    );
    // A table of another database is named with it.
    let referencing = db
        .rows(
            "SELECT CAST(k.constraint_name AS CHAR), \
                    CAST(CASE WHEN k.table_schema = DATABASE() THEN k.table_name \
                         ELSE CONCAT(k.table_schema, '.', k.table_name) END AS CHAR), \
                    CAST(k.column_name AS CHAR), CAST(k.referenced_column_name AS CHAR), \
                    CAST(r.delete_rule AS CHAR) \
             FROM information_schema.key_column_usage AS k \
             JOIN information_schema.referential_constraints AS r \
               ON r.constraint_schema = k.constraint_schema AND r.constraint_name = k.constraint_name \
              AND r.table_name = k.table_name \
             WHERE CAST(k.referenced_table_schema AS BINARY) = CAST(COALESCE($1, DATABASE()) AS BINARY) \
               AND CAST(k.referenced_table_name AS BINARY) = CAST($2 AS BINARY) \
             ORDER BY k.table_schema, k.table_name, k.constraint_name, k.ordinal_position",
            &bound,
        )
        .await?;
    let referenced_by = foreign_keys(
        referencing
            .iter()
            .map(|row| std::array::from_fn(|i| text(&row[i]))),
    );
    Ok(Some(Table {
        name: name.to_owned(),
        columns,
        keys,
        triggers,
        referenced_by,
        not_transactional,
    }))
}
