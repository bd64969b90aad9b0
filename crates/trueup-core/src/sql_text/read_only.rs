//! Whether parsed SQL only reads: a walk over the statement that stops at the first part
//! that would write (a nested statement, a row lock, `SELECT … INTO`) or a function that
//! acts outside the query.

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
    "dblink",
    "dblink_exec",
    "dblink_connect",
    "dblink_send_query",
    "pg_file_write",
    "pg_file_unlink",
    "pg_file_rename",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_stat_reset",
    "pg_stat_reset_shared",
    "pg_replication_origin_create",
    "pg_create_logical_replication_slot",
    "pg_create_physical_replication_slot",
    "pg_drop_replication_slot",
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
