//! SQL that rule authors write, parsed per dialect with `sqlparser` before trueup uses it: a
//! detector query must be exactly one statement that only reads, and a fragment a built-in
//! splices into its own query (`where`, `expression`, `keep`, a `set` value) exactly one
//! expression (or one `ORDER BY` list). Text that fails is refused with the reason; nothing
//! is guessed from keywords.
//!
//! This is the first line, not the only one: detectors run on read-only connections and in
//! read-only transactions, and every query a source runs for a detector is parsed again as
//! a whole first (see [`compiled_query_problem`]). Functions with side effects that a
//! read-only transaction does not stop (signalling backends, advisory locks, notifications)
//! are refused by name; docs/guides/least-privilege.md says what a role should be allowed.

mod read_only;

use std::ops::ControlFlow;

use sqlparser::ast::{Statement, Visit};
use sqlparser::dialect::{GenericDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

use self::read_only::{ReadOnly, read_only_problem, statement_kind};
use crate::dialect::Dialect;

/// How deep expressions may nest before the parser gives up (sqlparser's own default is 50,
/// which hand-written conditions never reach).
const RECURSION_LIMIT: usize = 64;

pub fn detector_problem(sql: &str, dialect: Option<Dialect>) -> Option<String> {
    let statements = match parser(sql, dialect).and_then(|mut p| p.parse_statements()) {
        Ok(statements) => statements,
        Err(err) => return Some(not_parsed("the query", "one SQL statement", &err, dialect)),
    };
    match statements.as_slice() {
        [] => Some("the query is empty".to_owned()),
        [Statement::Query(query)] => read_only_problem(query),
        [other] => Some(format!(
            "a detector must only read, but this query is {}; write a SELECT whose rows are \
             the violations (repairs go in [rule.repair])",
            statement_kind(other)
        )),
        many => Some(format!(
            "a detector is one query, but this has {} statements",
            many.len()
        )),
    }
}

/// Why the SQL trueup compiled for a rule must not run, if it must not: the whole query,
/// with the rule author's fragments in it, parsed again. A fragment that passed on its own
/// cannot end the query early or add a statement without this catching it.
pub fn compiled_query_problem(sql: &str, dialect: Dialect) -> Option<String> {
    detector_problem(sql, Some(dialect)).map(|problem| {
        format!("trueup refuses to run the query it compiled for this rule: {problem}")
    })
}

/// The tables and views a query reads, as written (a CTE's name counts too); empty when it
/// does not parse.
pub fn relations(sql: &str, dialect: Dialect) -> Vec<String> {
    let Ok(statements) = parser(sql, Some(dialect)).and_then(|mut p| p.parse_statements()) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    let _ = sqlparser::ast::visit_relations(&statements, |name| {
        let text = name
            .0
            .iter()
            .filter_map(|part| part.as_ident().map(|ident| ident.value.clone()))
            .collect::<Vec<_>>()
            .join(".");
        if !names.contains(&text) {
            names.push(text);
        }
        ControlFlow::<()>::Continue(())
    });
    names
}

/// A statement of a `sql` repair made ready to bind: each `:name` placeholder (a `:`
/// token, then a name, as `dialect`'s tokenizer reads them, so text in quotes and `::`
/// casts are left alone) replaced by `param(n, name)` for the n-th, and the names in
/// order. Refused unless the result is exactly one `UPDATE` or `DELETE` of `table`: the
/// rows a repair journals are that table's, by the finding's key.
pub fn repair_statement(
    text: &str,
    dialect: Dialect,
    table: &str,
    mut param: impl FnMut(usize, &str) -> Option<String>,
) -> Result<(String, Vec<String>), String> {
    // Tokens as written (quotes, escapes): written back, they are the text they came from.
    let tokens = Tokenizer::new(parser_dialect(Some(dialect)), text)
        .with_unescape(false)
        .tokenize()
        .map_err(|e| format!("the statement does not parse in {}: {e}", dialect.name()))?;
    let mut out = String::with_capacity(text.len());
    let mut names = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if let (Token::Colon, Some(Token::Word(word))) = (&tokens[i], tokens.get(i + 1))
            && word.quote_style.is_none()
        {
            let Some(replacement) = param(names.len() + 1, &word.value) else {
                return Err(format!(
                    "`:{}` names no key column of the finding",
                    word.value
                ));
            };
            out.push_str(&replacement);
            names.push(word.value.clone());
            i += 2;
            continue;
        }
        out.push_str(&tokens[i].to_string());
        i += 1;
    }
    let statements = parser(&out, Some(dialect))
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| not_parsed("the statement", "one SQL statement", &e, Some(dialect)))?;
    let [statement] = statements.as_slice() else {
        return Err(format!(
            "each entry of `statements` is one statement, but this has {}",
            statements.len()
        ));
    };
    if !matches!(statement, Statement::Update(_) | Statement::Delete(_)) {
        return Err(format!(
            "a `sql` repair statement is an UPDATE or DELETE of `{table}`, not {}",
            statement_kind(statement)
        ));
    }
    let mut first = None;
    let _ = sqlparser::ast::visit_relations(statement, |name| {
        first.get_or_insert_with(|| {
            name.0
                .iter()
                .filter_map(|part| part.as_ident().map(|ident| ident.value.clone()))
                .collect::<Vec<_>>()
                .join(".")
        });
        ControlFlow::<()>::Break(())
    });
    match first {
        Some(name) if name.eq_ignore_ascii_case(table) => Ok((out, names)),
        other => Err(format!(
            "a `sql` repair statement changes `{table}` (the repair's table, whose rows are \
             journaled), not `{}`",
            other.unwrap_or_default()
        )),
    }
}

/// What a fragment of SQL must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    /// One expression: a condition (`where`) or a value (`expression`, a `set` value).
    Expression,
    /// One expression, or `*` (an aggregate's argument: `COUNT(*)`).
    Aggregated,
    /// A comma-separated `ORDER BY` list (`keep`): `created_at ASC, id ASC`.
    OrderBy,
}

/// Why `text` is not exactly one `fragment` in `dialect`, if it is not.
pub fn fragment_problem(
    text: &str,
    fragment: Fragment,
    dialect: Option<Dialect>,
) -> Option<String> {
    if text.trim().is_empty() {
        return Some("it is empty".to_owned());
    }
    if fragment == Fragment::Aggregated && text.trim() == "*" {
        return None;
    }
    let what = match fragment {
        Fragment::Expression | Fragment::Aggregated => "one SQL expression",
        Fragment::OrderBy => "one ORDER BY list (`column ASC, other DESC`)",
    };
    let mut parser = match parser(text, dialect) {
        Ok(parser) => parser,
        Err(err) => return Some(not_parsed("it", what, &err, dialect)),
    };
    let mut checker = ReadOnly::default();
    let parsed = match fragment {
        Fragment::Expression | Fragment::Aggregated => parser
            .parse_expr()
            .map(|expr| expr.visit(&mut checker).is_break()),
        Fragment::OrderBy => parser
            .parse_comma_separated(Parser::parse_order_by_expr)
            .map(|list| list.iter().any(|e| e.visit(&mut checker).is_break())),
    };
    match parsed {
        Err(err) => Some(not_parsed("it", what, &err, dialect)),
        Ok(true) => checker.problem,
        Ok(false) if open_comment(text, dialect) => Some(
            "it ends inside a `/*` comment, which would hide the rest of the query trueup \
             splices it into: close it with `*/`"
                .to_owned(),
        ),
        Ok(false) => {
            let next = parser.peek_token();
            (next.token != Token::EOF).then(|| {
                format!(
                    "it must be exactly {what}, but more follows at column {}: `{}`; \
                     a `;`, an unbalanced `)` or a second clause cannot be part of it",
                    next.span.start.column,
                    cut(&text_from(
                        text,
                        next.span.start.line,
                        next.span.start.column
                    ))
                )
            })
        }
    }
}

fn parser(text: &str, dialect: Option<Dialect>) -> Result<Parser<'static>, ParserError> {
    Parser::new(parser_dialect(dialect))
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(text)
}

fn parser_dialect(dialect: Option<Dialect>) -> &'static dyn sqlparser::dialect::Dialect {
    static SQLITE: SQLiteDialect = SQLiteDialect {};
    static POSTGRES: PostgreSqlDialect = PostgreSqlDialect {};
    static MYSQL: MySqlDialect = MySqlDialect {};
    static GENERIC: GenericDialect = GenericDialect {};
    match dialect {
        Some(Dialect::Sqlite) => &SQLITE,
        Some(Dialect::Postgres) => &POSTGRES,
        Some(Dialect::Mysql) => &MYSQL,
        None => &GENERIC,
    }
}

/// MySQL's form of a statement trueup wrote with numbered placeholders (`$1`, as
/// [`Dialect::param`] writes them for MySQL): each placeholder replaced by `?`, and the
/// values in the order of the `?`s (a value bound twice is listed twice). MySQL's tokenizer
/// reads `$1` as a name, so a name is a placeholder when it is unquoted, `$` and digits
/// only, and its number names one of `binds`; text in quotes or backticks is left as it
/// is. The text around the placeholders is copied as written.
pub fn positional<T: Clone>(sql: &str, binds: &[T]) -> Result<(String, Vec<T>), String> {
    let tokens = Tokenizer::new(&MySqlDialect {}, sql)
        .with_unescape(false)
        .tokenize_with_location()
        .map_err(|e| format!("the statement does not parse in MySQL: {e}"))?;
    // Where each placeholder is: the tokens come in order, so one walk through the text
    // finds them all (a search from its line's start for each was quadratic in a long
    // line of them: MySQL repairs bind hundreds of values a statement).
    let mut at = TextCursor {
        sql,
        byte: 0,
        line: 1,
        column: 1,
    };
    let mut out = String::with_capacity(sql.len());
    let mut values = Vec::new();
    let mut copied = 0;
    for token in &tokens {
        let Token::Word(word) = &token.token else {
            continue;
        };
        let number = word
            .value
            .strip_prefix('$')
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<usize>().ok());
        let (None, Some(n)) = (word.quote_style, number) else {
            continue;
        };
        let value = n
            .checked_sub(1)
            .and_then(|i| binds.get(i))
            .ok_or_else(|| format!("placeholder ${n} has no value ({} bound)", binds.len()))?;
        let (Some(start), Some(end)) = (
            at.advance_to(token.span.start.line, token.span.start.column),
            at.advance_to(token.span.end.line, token.span.end.column),
        ) else {
            return Err(format!(
                "placeholder ${n} is outside the statement, or out of order in it"
            ));
        };
        out.push_str(&sql[copied..start]);
        out.push('?');
        values.push(value.clone());
        copied = end;
    }
    out.push_str(&sql[copied..]);
    Ok((out, values))
}

/// A place in a statement's text as a byte offset and as the tokenizer's line and column
/// (both from 1, columns in characters), moved forward only.
struct TextCursor<'a> {
    sql: &'a str,
    byte: usize,
    line: u64,
    column: u64,
}

impl TextCursor<'_> {
    /// The byte offset of `line` and `column`, walking there from the cursor; `None` for a
    /// place before it. A place past the end is the end.
    fn advance_to(&mut self, line: u64, column: u64) -> Option<usize> {
        if (line, column) < (self.line, self.column) {
            return None;
        }
        while (self.line, self.column) < (line, column) {
            let Some(c) = self.sql[self.byte..].chars().next() else {
                break;
            };
            self.byte += c.len_utf8();
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        Some(self.byte)
    }
}

/// Whether `text` ends inside a `/*` comment, which SQLite's dialect lets run to the end.
fn open_comment(text: &str, dialect: Option<Dialect>) -> bool {
    let tokens = Tokenizer::new(parser_dialect(dialect), text).tokenize();
    matches!(
        tokens.as_deref().map(<[Token]>::last),
        Ok(Some(Token::Whitespace(Whitespace::MultiLineComment(_))))
    ) && !text.trim_end().ends_with("*/")
}

fn not_parsed(subject: &str, what: &str, err: &ParserError, dialect: Option<Dialect>) -> String {
    let detail = match err {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m.clone(),
        ParserError::RecursionLimitExceeded => "it nests too deeply".to_owned(),
    };
    let dialect = dialect.map_or("SQL", Dialect::name);
    format!(
        "{subject} does not parse as {what} in {dialect}: {}",
        cut(&detail)
    )
}

/// The text of `text` from 1-based `line` and `column` on.
fn text_from(text: &str, line: u64, column: u64) -> String {
    let skip_lines = usize::try_from(line.saturating_sub(1)).unwrap_or(usize::MAX);
    let skip_chars = usize::try_from(column.saturating_sub(1)).unwrap_or(usize::MAX);
    let rest: String = text
        .split_inclusive('\n')
        .skip(skip_lines)
        .collect::<String>()
        .chars()
        .skip(skip_chars)
        .collect();
    rest
}

/// At most 200 characters of `text`, on one line, for quoting in a message.
fn cut(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let one_line = one_line.trim();
    match one_line.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repair_statements_bind_named_keys_and_change_only_their_table() {
        let bind = |n: usize, name: &str| (name == "id").then(|| format!("${n}"));
        let (sql, names) = repair_statement(
            "UPDATE orders SET status = 'X:y', note = ':id' WHERE id = :id AND total::text <> ''",
            Dialect::Postgres,
            "orders",
            bind,
        )
        .unwrap();
        assert_eq!(
            sql,
            "UPDATE orders SET status = 'X:y', note = ':id' WHERE id = $1 AND total::text <> ''"
        );
        assert_eq!(names, ["id"]);
        for (text, why) in [
            (
                "DELETE FROM payments WHERE order_id = :id",
                "not `payments`",
            ),
            ("SELECT 1", "not a `SELECT` statement"),
            ("UPDATE orders SET a = 1; DROP TABLE orders", "this has 2"),
            ("UPDATE orders SET a = :nope", "`:nope` names no key column"),
        ] {
            let err = repair_statement(text, Dialect::Sqlite, "orders", bind).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn repair_statements_keep_their_quotes_as_written() {
        // Written back from unescaped tokens, `'it''s'` became `'it's'`: another statement.
        let bind = |n: usize, name: &str| (name == "id").then(|| format!("${n}"));
        for (dialect, text) in [
            (
                Dialect::Postgres,
                "UPDATE orders SET note = 'a'' OR ''1''=''1', \"we\"\"ird\" = 1 WHERE id = :id",
            ),
            (
                Dialect::Sqlite,
                "UPDATE orders SET note = 'it''s' WHERE id = :id",
            ),
            (
                Dialect::Mysql,
                "UPDATE orders SET note = 'it\\'s ''x''', `we``ird` = \"q\\\"\" WHERE id = :id",
            ),
        ] {
            let (sql, _) = repair_statement(text, dialect, "orders", bind).unwrap();
            assert_eq!(sql, text.replace(":id", "$1"), "{dialect:?}");
        }
    }

    #[test]
    fn mysql_queries_that_write_files_take_locks_or_hide_statements_are_refused() {
        for (sql, why) in [
            ("SELECT id FROM t INTO OUTFILE '/tmp/x'", ""),
            ("SELECT id FROM t INTO DUMPFILE '/tmp/x'", ""),
            ("SELECT id FROM t /*! INTO OUTFILE '/tmp/x' */", ""),
            ("SELECT id FROM t /*!50000 INTO OUTFILE '/tmp/x' */", ""),
            ("SELECT 1 /*! ; DELETE FROM t */", ""),
            ("SELECT GET_LOCK('x', 0)", "`GET_LOCK`"),
            ("SELECT LOAD_FILE('/etc/passwd')", "`LOAD_FILE`"),
            ("SELECT id FROM t FOR UPDATE", "locks rows"),
            ("SELECT id FROM t LOCK IN SHARE MODE", ""),
            ("SELECT 1; DELETE FROM t", "2 statements"),
        ] {
            let problem = detector_problem(sql, Some(Dialect::Mysql));
            assert!(
                problem.as_deref().is_some_and(|p| p.contains(why)),
                "{sql}: {problem:?}"
            );
        }
        assert_eq!(
            detector_problem(
                "SELECT `id`, CONCAT(a, 'x') FROM t WHERE a <=> NULL -- done",
                Some(Dialect::Mysql)
            ),
            None
        );
    }

    #[test]
    fn mysql_placeholders_are_question_marks_with_the_values_in_their_order() {
        let (sql, values) = positional(
            "SELECT `$1`, '$2', \"$1\", a$1 FROM t -- $9\nWHERE x >= $2 AND y <= $3 AND z = $2 AND \
             w = 'é' AND v = $1",
            &["tolerance", "lo", "hi"],
        )
        .unwrap();
        assert_eq!(
            sql,
            "SELECT `$1`, '$2', \"$1\", a$1 FROM t -- $9\nWHERE x >= ? AND y <= ? AND z = ? AND \
             w = 'é' AND v = ?"
        );
        assert_eq!(values, ["lo", "hi", "lo", "tolerance"]);
        let err = positional("SELECT $3", &[1, 2]).unwrap_err();
        assert!(err.contains("$3 has no value"), "{err}");
        assert_eq!(positional("SELECT 1", &[0; 0]).unwrap().0, "SELECT 1");
    }

    /// A batch's statement: thousands of placeholders on one line, after text of several
    /// bytes a character, and on lines of their own.
    #[test]
    fn many_placeholders_on_one_long_line_are_all_found() {
        let n = 3000;
        let binds: Vec<usize> = (1..=n).collect();
        let list: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT 'ééé' FROM t WHERE id IN ({}) AND\n  x = ${n}\n",
            list.join(", ")
        );
        let (out, values) = positional(&sql, &binds).unwrap();
        assert_eq!(
            out,
            format!(
                "SELECT 'ééé' FROM t WHERE id IN ({}) AND\n  x = ?\n",
                vec!["?"; n].join(", ")
            )
        );
        let mut want = binds.clone();
        want.push(n);
        assert_eq!(values, want);
    }

    #[test]
    fn relations_are_the_tables_a_query_reads() {
        let sql = "SELECT o.id FROM orders o LEFT JOIN payments p ON p.order_id = o.id \
                   WHERE EXISTS (SELECT 1 FROM \"Order Items\" i WHERE i.order_id = o.id)";
        assert_eq!(
            relations(sql, Dialect::Postgres),
            ["orders", "payments", "Order Items"]
        );
        assert!(relations("SELEC nonsense", Dialect::Sqlite).is_empty());
    }

    const BOTH: [Dialect; 2] = [Dialect::Sqlite, Dialect::Postgres];

    #[test]
    fn accepts_reads() {
        for sql in [
            "  -- find them\n with x as (select 1) select * from x",
            "(SELECT 1)",
            "SELECT 1;",
            "VALUES (1), (2)",
            "SELECT 'delete me', \"update\" FROM t WHERE note <> 'DROP'",
            "SELECT o.id FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL",
            "SELECT id FROM t WHERE pg_sleep(1) IS NULL",
        ] {
            for dialect in BOTH {
                assert_eq!(detector_problem(sql, Some(dialect)), None, "{sql}");
            }
        }
        assert_eq!(
            detector_problem(
                "SELECT id::text, now() - interval '1 day' FROM t",
                Some(Dialect::Postgres)
            ),
            None
        );
    }

    #[test]
    fn refuses_writes_batches_and_side_effects() {
        let cases = [
            ("DELETE FROM orders", "`DELETE` statement"),
            ("SELECT 1; DROP TABLE orders", "2 statements"),
            (" ; ", "empty"),
            (
                "WITH d AS (DELETE FROM t RETURNING id) SELECT id FROM d",
                "`DELETE`",
            ),
            ("SELECT id FROM t FOR UPDATE", "locks rows"),
            ("SELECT id INTO copy FROM t", "creates a table"),
            ("SELECT pg_terminate_backend(42)", "`pg_terminate_backend`"),
            (
                "SELECT * FROM pg_catalog.pg_advisory_lock(1)",
                "`pg_advisory_lock`",
            ),
            (
                "SELECT id FROM t WHERE EXISTS (SELECT pg_notify('c', 'x'))",
                "`pg_notify`",
            ),
            (
                "SELECT * FROM pg_logical_slot_get_changes('s', NULL, NULL)",
                "`pg_logical_slot_get_changes`",
            ),
            (
                "SELECT pg_stat_statements_reset()",
                "`pg_stat_statements_reset`",
            ),
            (
                "SELECT pg_replication_slot_advance('s', pg_current_wal_lsn())",
                "`pg_replication_slot_advance`",
            ),
            ("VACUUM INTO 'copy.db'", "does not parse"),
            ("ATTACH DATABASE 'x.db' AS x", "ATTACH"),
            ("PRAGMA writable_schema = 1", "PRAGMA"),
        ];
        for (sql, expected) in cases {
            for dialect in [Some(Dialect::Sqlite), Some(Dialect::Postgres), None] {
                let problem = detector_problem(sql, dialect)
                    .unwrap_or_else(|| panic!("accepted in {dialect:?}: {sql}"));
                assert!(problem.contains(expected), "{dialect:?}: {sql}: {problem}");
            }
        }
    }

    /// SQL inside a string is a value to the walk, so a function that runs its text would
    /// carry any call past it: `query_to_xml('SELECT pg_terminate_backend(1)', …)` ended a
    /// session from a detector that passed.
    #[test]
    fn refuses_functions_that_run_sql_given_as_text() {
        let cases = [
            (
                "SELECT query_to_xml('SELECT pg_terminate_backend(1)', true, false, '')",
                "`query_to_xml`",
            ),
            (
                "SELECT pg_catalog.QUERY_TO_XML_AND_XMLSCHEMA('SELECT 1', true, false, '')",
                "`QUERY_TO_XML_AND_XMLSCHEMA`",
            ),
            (
                "SELECT query_to_xmlschema('SELECT 1', true, false, '')",
                "`query_to_xmlschema`",
            ),
            (
                "SELECT cursor_to_xml('c', 10, true, false, '')",
                "`cursor_to_xml`",
            ),
            (
                "SELECT cursor_to_xmlschema('c', true, false, '')",
                "`cursor_to_xmlschema`",
            ),
            (
                "SELECT word FROM ts_stat('SELECT pg_advisory_lock(1)')",
                "`ts_stat`",
            ),
            (
                "SELECT id FROM t WHERE EXISTS (SELECT ts_rewrite(q, 'SELECT a, b FROM s') FROM t)",
                "`ts_rewrite`",
            ),
            (
                "WITH x AS (SELECT * FROM crosstab('SELECT 1, 2, 3') AS c(a int, b int)) \
                 SELECT * FROM x",
                "`crosstab`",
            ),
            (
                "SELECT * FROM connectby('t', 'id', 'parent', '1', 0) AS c(id int, p int, l int)",
                "`connectby`",
            ),
            (
                "SELECT * FROM xpath_table('id', 'doc', 't', '/a', 'true') AS x(id int, a text)",
                "`xpath_table`",
            ),
            (
                "SELECT * FROM t, LATERAL dblink('host=x', 'SELECT 1') AS r(x int)",
                "`dblink`",
            ),
            ("SELECT dblink_open('c', 'SELECT 1')", "`dblink_open`"),
        ];
        for (sql, expected) in cases {
            for dialect in [Some(Dialect::Sqlite), Some(Dialect::Postgres), None] {
                let problem = detector_problem(sql, dialect)
                    .unwrap_or_else(|| panic!("accepted in {dialect:?}: {sql}"));
                assert!(
                    problem.contains(expected) && problem.contains("which trueup cannot check"),
                    "{dialect:?}: {sql}: {problem}"
                );
            }
        }
        let problem = detector_problem(
            "SELECT query_to_xml('SELECT 1', true, false, '')",
            Some(Dialect::Postgres),
        )
        .unwrap();
        assert_eq!(
            problem,
            "a detector must only read, but it calls `query_to_xml`, which runs SQL given as \
             text, which trueup cannot check (to read a table found at run time, \
             `table_to_xml(oid::regclass, …)` reads it by name)"
        );
        let problem = fragment_problem(
            "ts_stat('SELECT 1') IS NOT NULL",
            Fragment::Expression,
            Some(Dialect::Postgres),
        )
        .unwrap();
        assert!(problem.contains("`ts_stat`"), "{problem}");
        // Whatever sqlparser makes of `ROWS FROM`, the call does not pass.
        assert!(
            detector_problem(
                "SELECT * FROM ROWS FROM (ts_stat('SELECT 1')) AS s",
                Some(Dialect::Postgres)
            )
            .is_some()
        );
    }

    /// The functions that read tables by name (a `regclass`, a schema, the database) run no
    /// SQL a caller wrote: they stay allowed.
    #[test]
    fn tables_read_by_name_into_xml_are_reads() {
        for sql in [
            "SELECT xpath('/table/row', table_to_xml(c.oid::regclass, true, false, '')) \
             FROM pg_catalog.pg_class c WHERE c.relname = 'orders'",
            "SELECT table_to_xmlschema('orders'::regclass, true, false, '')",
            "SELECT table_to_xml_and_xmlschema('orders'::regclass, true, false, '')",
            "SELECT schema_to_xml('public', true, false, '')",
            "SELECT database_to_xml(true, false, '')",
        ] {
            assert_eq!(
                detector_problem(sql, Some(Dialect::Postgres)),
                None,
                "{sql}"
            );
        }
    }

    /// Issue 12 item 9: a misspelt keyword is a syntax error with its place, not a write.
    #[test]
    fn a_typo_is_a_syntax_error_not_a_write() {
        for sql in [
            "SELEC id FROM t",
            "SELCT id FROM t",
            "WTIH x AS (SELECT 1) SELECT * FROM x",
        ] {
            for dialect in [Some(Dialect::Sqlite), Some(Dialect::Postgres), None] {
                let problem = detector_problem(sql, dialect).expect("refused");
                assert!(
                    problem.contains("does not parse as one SQL statement")
                        && problem.contains("Line: 1, Column: 1")
                        && !problem.contains("only read"),
                    "{dialect:?}: {sql}: {problem}"
                );
            }
        }
    }

    #[test]
    fn hardening_1_where_cannot_carry_statements() {
        for text in [
            "1=1); VACUUM INTO 'copy.db'; SELECT (1",
            "1=1); DELETE FROM t; SELECT (1",
            "1=1); SELECT (1",
            "x = 1; DROP TABLE t",
            "x = 1) OR (1=1",
        ] {
            for dialect in BOTH {
                let problem = fragment_problem(text, Fragment::Expression, Some(dialect))
                    .unwrap_or_else(|| panic!("accepted: {text}"));
                assert!(
                    problem.contains("exactly one SQL expression"),
                    "{text}: {problem}"
                );
            }
        }
        // SQLite reads an open `/*` to the end: spliced, it would hide trueup's own `)`.
        for dialect in [Some(Dialect::Sqlite), Some(Dialect::Postgres), None] {
            let problem = fragment_problem("1=1 /* x", Fragment::Expression, dialect)
                .unwrap_or_else(|| panic!("an open comment accepted in {dialect:?}"));
            assert!(problem.contains("comment"), "{dialect:?}: {problem}");
        }
        assert_eq!(
            fragment_problem("1=1 /* x */", Fragment::Expression, Some(Dialect::Sqlite)),
            None
        );
        let problem =
            fragment_problem("1 = (", Fragment::Expression, Some(Dialect::Sqlite)).unwrap();
        assert!(
            problem.contains("does not parse as one SQL expression in SQLite"),
            "{problem}"
        );
        let problem = fragment_problem(
            "pg_terminate_backend(1) IS NULL",
            Fragment::Expression,
            Some(Dialect::Postgres),
        )
        .unwrap();
        assert!(problem.contains("pg_terminate_backend"), "{problem}");
    }

    #[test]
    fn fragments_that_are_one_expression_pass() {
        for (text, fragment) in [
            ("region = 'eu'", Fragment::Expression),
            ("tenant = 2 OR tenant IS NULL", Fragment::Expression),
            (
                "created_at >= '2025-01-01' -- recent only",
                Fragment::Expression,
            ),
            ("quantity * unit_price", Fragment::Aggregated),
            ("*", Fragment::Aggregated),
            ("created_at ASC, id ASC", Fragment::OrderBy),
            ("'CANCELLED'", Fragment::Expression),
            ("(SELECT max(x) FROM t)", Fragment::Expression),
        ] {
            for dialect in BOTH {
                assert_eq!(
                    fragment_problem(text, fragment, Some(dialect)),
                    None,
                    "{text}"
                );
            }
        }
        assert!(fragment_problem("*", Fragment::Expression, None).is_some());
        assert!(fragment_problem("id ASC; DROP TABLE t", Fragment::OrderBy, None).is_some());
        assert!(fragment_problem("  ", Fragment::Expression, None).is_some());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
        let problem = fragment_problem(&deep, Fragment::Expression, None).unwrap();
        assert!(problem.contains("nests too deeply"), "{problem}");
        let problem = detector_problem(&format!("SELECT {deep}"), None).unwrap();
        assert!(problem.contains("nests too deeply"), "{problem}");
    }
}
