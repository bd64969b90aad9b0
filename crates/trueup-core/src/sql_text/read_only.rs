//! Whether parsed SQL only reads: a walk over the statement that stops at the first part
//! that would write (a nested statement, a row lock, `SELECT … INTO`), a function that
//! acts outside the query, or a function that runs SQL handed to it as text (which the walk
//! cannot see into).

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, ObjectName, Query, SetExpr, Statement, TableFactor, Visit, Visitor};

/// Functions refused in any SQL a detector runs: each acts outside the query (on other
/// sessions, the server, files, locks that outlive it), and a read-only transaction stops
/// few of them. Writes a read-only transaction does stop (`nextval`) are left to it, and
/// `pg_sleep` to the timeout.
const SIDE_EFFECTS: &[&str] = &[
    // PostgreSQL: other sessions, the server, locks that outlive the query, messages.
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_log_backend_memory_contexts",
    "pg_promote",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
    "pg_advisory_unlock",
    "pg_advisory_unlock_all",
    "pg_advisory_unlock_shared",
    "pg_notify",
    "set_config",
    "lo_import",
    "lo_export",
    "lo_unlink",
    "lo_create",
    "lo_from_bytea",
    "lo_put",
    "dblink_connect",
    "dblink_connect_u",
    "pg_file_write",
    "pg_file_unlink",
    "pg_file_rename",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_stat_reset",
    "pg_stat_reset_shared",
    "pg_stat_reset_single_table_counters",
    "pg_stat_reset_single_function_counters",
    "pg_stat_reset_slru",
    "pg_stat_reset_replication_slot",
    "pg_stat_reset_subscription_stats",
    "pg_stat_statements_reset",
    "pg_replication_origin_create",
    "pg_replication_origin_drop",
    "pg_replication_origin_advance",
    "pg_replication_origin_session_setup",
    "pg_create_logical_replication_slot",
    "pg_create_physical_replication_slot",
    "pg_copy_logical_replication_slot",
    "pg_copy_physical_replication_slot",
    "pg_drop_replication_slot",
    // Reading a logical slot's changes consumes them; advancing a slot drops WAL.
    "pg_logical_slot_get_changes",
    "pg_logical_slot_get_binary_changes",
    "pg_replication_slot_advance",
    "pg_logical_emit_message",
    "pg_wal_replay_pause",
    "pg_wal_replay_resume",
    "pg_backup_start",
    "pg_backup_stop",
    // MySQL and MariaDB: locks that outlive the query, server files, waits on replication.
    "get_lock",
    "release_lock",
    "release_all_locks",
    "load_file",
    "master_pos_wait",
    "source_pos_wait",
    "master_gtid_wait",
    "sys_exec",
    "sys_eval",
    // SQLite: native code and files.
    "load_extension",
    "writefile",
    "readfile",
    "edit",
    "fts3_tokenizer",
];

/// Functions refused because they run SQL given to them as text (or built from text, or a
/// cursor's), each with what it runs. trueup checks the SQL a detector is written in; SQL
/// inside a string is a value to it, so `query_to_xml('SELECT pg_terminate_backend(…)', …)`
/// would end a session past [`SIDE_EFFECTS`] (the read-only transaction stops its writes,
/// not its side effects). On PostgreSQL 15, in a read-only transaction, each built-in,
/// tablefunc and xml2 function below ran the `pg_advisory_lock` in its text, except
/// `query_to_xmlschema` (it only plans the text) and the cursor functions (a detector opens
/// no cursor), refused all the same; dblink writes (`tests/least_privilege.rs`).
///
/// Left allowed: `table_to_xml`, `table_to_xmlschema`, `table_to_xml_and_xmlschema` (a
/// `regclass`, read as `SELECT * FROM` that table), `schema_to_xml*` and `database_to_xml*`
/// (every table of a schema or the database, by name): they read tables named by the
/// catalog and run no SQL a caller wrote, so they are reads like any other.
///
/// MySQL and MariaDB have none: `PREPARE`, `EXECUTE` and MariaDB's `EXECUTE IMMEDIATE` are
/// statements, not expressions, and a stored function may not use them ("Dynamic SQL is
/// not allowed in stored function or trigger", checked on MariaDB 10.11); `sys`'s
/// `execute_prepared_stmt` is a procedure, which only `CALL` (a statement) reaches. SQLite
/// has no built-in function that runs SQL.
const RUNS_SQL_TEXT: &[(&str, &str)] = &[
    // PostgreSQL, built in.
    ("query_to_xml", AS_TEXT_XML),
    ("query_to_xmlschema", AS_TEXT_XML),
    ("query_to_xml_and_xmlschema", AS_TEXT_XML),
    ("cursor_to_xml", CURSOR),
    ("cursor_to_xmlschema", CURSOR),
    ("ts_stat", AS_TEXT),
    // `ts_rewrite(tsquery, text)` runs its text; the three-tsquery form goes with it.
    ("ts_rewrite", AS_TEXT),
    // PostgreSQL's tablefunc extension.
    ("crosstab", AS_TEXT),
    ("crosstab2", AS_TEXT),
    ("crosstab3", AS_TEXT),
    ("crosstab4", AS_TEXT),
    ("connectby", BUILT),
    // PostgreSQL's xml2 extension.
    ("xpath_table", BUILT),
    // PostgreSQL's dblink extension: on a connection of its own, which is not read-only.
    ("dblink", REMOTE),
    ("dblink_exec", REMOTE),
    ("dblink_open", REMOTE),
    ("dblink_send_query", REMOTE),
];

const AS_TEXT: &str = "runs SQL given as text, which trueup cannot check";
const AS_TEXT_XML: &str = "runs SQL given as text, which trueup cannot check (to read a \
     table found at run time, `table_to_xml(oid::regclass, …)` reads it by name)";
const BUILT: &str = "runs SQL it builds from its text arguments, which trueup cannot check";
const CURSOR: &str = "runs the SQL of a cursor opened elsewhere, which trueup cannot check";
const REMOTE: &str = "runs SQL given as text on a connection of its own, outside the \
     read-only transaction, which trueup cannot check";

/// Why `sql` cannot be a detector query, if it cannot: it must parse (in `dialect`, or
/// generically when the source's dialect is not known) as exactly one statement that only
/// reads: `SELECT`, `WITH … SELECT`, `VALUES` or `TABLE`, without data-modifying parts
/// (`WITH d AS (DELETE …)`, `SELECT … INTO`, `FOR UPDATE`) or functions with side effects.
/// Why a parsed query does not only read, if it does not.
pub(super) fn read_only_problem(query: &Query) -> Option<String> {
    let mut checker = ReadOnly::default();
    let _ = query.visit(&mut checker);
    checker.problem
}

/// Walks a parsed query or expression and keeps the first part of it that would write.
#[derive(Default)]
pub(super) struct ReadOnly {
    pub(super) problem: Option<String>,
}

impl ReadOnly {
    fn refuse(&mut self, problem: String) -> ControlFlow<()> {
        self.problem = Some(format!("a detector must only read, but {problem}"));
        ControlFlow::Break(())
    }

    fn function(&mut self, name: &ObjectName) -> ControlFlow<()> {
        let Some(last) = name.0.last().and_then(|part| part.as_ident()) else {
            return ControlFlow::Continue(());
        };
        let lower = last.value.to_ascii_lowercase();
        if SIDE_EFFECTS.contains(&lower.as_str()) {
            return self.refuse(format!(
                "it calls `{}`, which acts outside the query (see \
                 docs/guides/least-privilege.md)",
                last.value
            ));
        }
        if let Some((_, runs)) = RUNS_SQL_TEXT.iter().find(|(name, _)| *name == lower) {
            return self.refuse(format!("it calls `{}`, which {runs}", last.value));
        }
        ControlFlow::Continue(())
    }
}

impl Visitor for ReadOnly {
    type Break = ();

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        self.refuse(format!(
            "it contains {}; repairs go in [rule.repair]",
            statement_kind(statement)
        ))
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if !query.locks.is_empty() {
            return self.refuse("it locks rows (`FOR UPDATE` / `FOR SHARE`)".to_owned());
        }
        if selects_into(&query.body) {
            return self.refuse("it creates a table (`SELECT … INTO`)".to_owned());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        match expr {
            Expr::Function(function) => self.function(&function.name),
            _ => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            }
            | TableFactor::Function { name, .. } => self.function(name),
            _ => ControlFlow::Continue(()),
        }
    }
}

/// Whether a query body (or a branch of a `UNION`) is a `SELECT … INTO`.
fn selects_into(body: &SetExpr) -> bool {
    match body {
        SetExpr::Select(select) => select.into.is_some(),
        SetExpr::SetOperation { left, right, .. } => selects_into(left) || selects_into(right),
        _ => false,
    }
}

/// "a `DELETE` statement", from the statement's own first words.
pub(super) fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or("empty");
    let name = match (first, words.next()) {
        ("CREATE" | "DROP" | "ALTER", Some(second)) => format!("{first} {second}"),
        _ => first.to_owned(),
    };
    let article = if name.starts_with(['A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    };
    format!("{article} `{name}` statement")
}
