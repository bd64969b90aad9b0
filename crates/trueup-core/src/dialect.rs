//! What differs between SQL dialects when trueup generates SQL: quoting, placeholders and
//! the few functions built-in checks need. Everything dialect-specific in generated SQL goes
//! through here, so adding a source means adding a variant, not hunting for `if sqlite`.

/// A SQL dialect trueup generates queries for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The dialect a connection URL speaks, by its scheme; `None` for a scheme trueup does
    /// not read.
    pub fn of_url(url: &str) -> Option<Dialect> {
        match crate::redact::scheme(url) {
            "sqlite" => Some(Dialect::Sqlite),
            "postgres" | "postgresql" => Some(Dialect::Postgres),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "PostgreSQL",
        }
    }

    /// Quotes an identifier. A dotted name (`sales.orders`) is a schema-qualified name and
    /// each part is quoted on its own.
    pub fn quote(self, ident: &str) -> String {
        ident
            .split('.')
            .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The placeholder of the `n`-th bound value, counting from 1.
    pub fn param(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// A condition that holds when timestamp `expr` is older than `seconds` (a placeholder
    /// bound to a float) before now. NULL is not older: callers test NULL on their own.
    pub fn older_than(self, expr: &str, seconds: &str) -> String {
        match self {
            // julianday() reads ISO-8601 text with either separator, with or without zone.
            Dialect::Sqlite => {
                format!("julianday({expr}) < julianday('now') - ({seconds} / 86400.0)")
            }
            Dialect::Postgres => {
                format!("{expr} < now() - make_interval(secs => {seconds})")
            }
        }
    }

    /// Whole seconds from timestamp `expr` to now (NULL for NULL).
    pub fn seconds_since(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => {
                format!("CAST((julianday('now') - julianday({expr})) * 86400 AS INTEGER)")
            }
            Dialect::Postgres => format!("CAST(EXTRACT(EPOCH FROM now() - {expr}) AS BIGINT)"),
        }
    }

    /// The aggregate joining text `expr` of a group's rows with `separator` (an SQL string
    /// literal), in the order of `order`. SQLite's `group_concat … ORDER BY` needs 3.44
    /// (trueup links 3.51).
    pub fn ordered_text_agg(self, expr: &str, separator: &str, order: &str) -> String {
        match self {
            Dialect::Sqlite => format!("group_concat({expr}, {separator} ORDER BY {order})"),
            Dialect::Postgres => format!("string_agg({expr}, {separator} ORDER BY {order})"),
        }
    }

    /// The text form of an expression, for detail columns whose type a source cannot decode.
    pub fn as_text(self, expr: &str) -> String {
        format!("CAST({expr} AS TEXT)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_each_part_and_doubles_embedded_quotes() {
        assert_eq!(Dialect::Sqlite.quote("orders"), "\"orders\"");
        assert_eq!(
            Dialect::Postgres.quote("sales.orders"),
            "\"sales\".\"orders\""
        );
        assert_eq!(Dialect::Sqlite.quote("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn placeholders_per_dialect() {
        assert_eq!(Dialect::Sqlite.param(2), "?2");
        assert_eq!(Dialect::Postgres.param(2), "$2");
    }
}
