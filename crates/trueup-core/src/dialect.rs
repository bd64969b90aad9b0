//! What differs between SQL dialects when trueup generates SQL: quoting, placeholders and
//! the few functions built-in checks need. Everything dialect-specific in generated SQL goes
//! through here, so adding a source means adding a variant, not hunting for `if sqlite`.

/// A SQL dialect trueup generates queries for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    /// MySQL and MariaDB.
    Mysql,
}

/// What a source is, known from its URL's scheme before connecting: a SQL database of a
/// dialect, or a server with a query language of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Sql(Dialect),
    /// A Prometheus HTTP API (`prometheus://host:9090`, `prometheus+https://host`), read
    /// with PromQL by `promql` rules.
    Prometheus,
    /// A Redis server (`redis://host:6379/0`, `rediss://…` over TLS), read by
    /// `cache-consistency` rules.
    Redis,
}

impl SourceKind {
    /// The kind of source a URL names, by its scheme; `None` for a scheme trueup does not
    /// read.
    pub fn of_url(url: &str) -> Option<SourceKind> {
        match crate::redact::scheme(url) {
            "prometheus" | "prometheus+http" | "prometheus+https" => Some(SourceKind::Prometheus),
            "redis" | "rediss" => Some(SourceKind::Redis),
            _ => Dialect::of_url(url).map(SourceKind::Sql),
        }
    }

    /// The SQL dialect, for a SQL source.
    pub fn dialect(self) -> Option<Dialect> {
        match self {
            SourceKind::Sql(dialect) => Some(dialect),
            SourceKind::Prometheus | SourceKind::Redis => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Sql(dialect) => dialect.name(),
            SourceKind::Prometheus => "Prometheus",
            SourceKind::Redis => "Redis",
        }
    }
}

impl Dialect {
    /// The dialect a connection URL speaks, by its scheme; `None` for a scheme trueup does
    /// not read.
    pub fn of_url(url: &str) -> Option<Dialect> {
        match crate::redact::scheme(url) {
            "sqlite" => Some(Dialect::Sqlite),
            "postgres" | "postgresql" => Some(Dialect::Postgres),
            "mysql" | "mariadb" => Some(Dialect::Mysql),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "PostgreSQL",
            Dialect::Mysql => "MySQL",
        }
    }

    /// Quotes an identifier. A dotted name (`sales.orders`) is a schema-qualified name and
    /// each part is quoted on its own: in double quotes, in backticks on MySQL.
    pub fn quote(self, ident: &str) -> String {
        let mark = match self {
            Dialect::Mysql => '`',
            Dialect::Sqlite | Dialect::Postgres => '"',
        };
        ident
            .split('.')
            .map(|part| {
                let mut quoted = String::with_capacity(part.len() + 2);
                quoted.push(mark);
                for c in part.chars() {
                    if c == mark {
                        quoted.push(mark);
                    }
                    quoted.push(c);
                }
                quoted.push(mark);
                quoted
            })
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The placeholder of the `n`-th bound value, counting from 1. MySQL's placeholders are
    /// `?` in order, without numbers: trueup writes `$n` there too, and the MySQL source
    /// turns them into `?` with the values in their order (`source::mysql::positional`).
    pub fn param(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres | Dialect::Mysql => format!("${n}"),
        }
    }

    /// Text expressions joined end to end (NULL if any is NULL): `a || b`, `CONCAT(a, b)`
    /// on MySQL, where `||` is `OR`.
    pub fn concat(self, parts: &[&str]) -> String {
        match self {
            Dialect::Mysql => format!("CONCAT({})", parts.join(", ")),
            Dialect::Sqlite | Dialect::Postgres => parts.join(" || "),
        }
    }

    /// An `ORDER BY` item that sorts `expr` ascending with NULLs last on every backend
    /// (SQLite and MySQL sort them first, and MySQL has no `NULLS LAST`).
    pub fn nulls_last(self, expr: &str) -> String {
        match self {
            Dialect::Mysql => format!("{expr} IS NULL, {expr}"),
            Dialect::Sqlite | Dialect::Postgres => format!("{expr} NULLS LAST"),
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
            // MySQL sessions of trueup's run in UTC (`source::mysql`).
            Dialect::Mysql => format!(
                "{expr} < NOW(6) - INTERVAL CAST({seconds} * 1000000 AS SIGNED) MICROSECOND"
            ),
        }
    }

    /// Whole seconds from timestamp `expr` to now (NULL for NULL).
    pub fn seconds_since(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => {
                format!("CAST((julianday('now') - julianday({expr})) * 86400 AS INTEGER)")
            }
            Dialect::Postgres => format!("CAST(EXTRACT(EPOCH FROM now() - {expr}) AS BIGINT)"),
            Dialect::Mysql => format!("TIMESTAMPDIFF(SECOND, {expr}, NOW(6))"),
        }
    }

    /// The aggregate joining text `expr` of a group's rows with `separator` (an SQL string
    /// literal), in the order of `order`. SQLite's `group_concat … ORDER BY` needs 3.44
    /// (trueup links 3.51).
    pub fn ordered_text_agg(self, expr: &str, separator: &str, order: &str) -> String {
        match self {
            Dialect::Sqlite => format!("group_concat({expr}, {separator} ORDER BY {order})"),
            Dialect::Postgres => format!("string_agg({expr}, {separator} ORDER BY {order})"),
            Dialect::Mysql => {
                format!("GROUP_CONCAT({expr} ORDER BY {order} SEPARATOR {separator})")
            }
        }
    }

    /// `text` (a text expression) made to sort by its bytes, as trueup compares text keys:
    /// `COLLATE "C"` on PostgreSQL, `BINARY` on MySQL; SQLite's own default.
    pub fn bytewise(self, text: &str) -> String {
        match self {
            Dialect::Sqlite => format!("{text} COLLATE BINARY"),
            Dialect::Postgres => format!("{text} COLLATE \"C\""),
            Dialect::Mysql => format!("CAST({text} AS BINARY)"),
        }
    }

    /// The text form of an expression, for detail columns whose type a source cannot decode.
    pub fn as_text(self, expr: &str) -> String {
        match self {
            Dialect::Mysql => format!("CAST({expr} AS CHAR)"),
            Dialect::Sqlite | Dialect::Postgres => format!("CAST({expr} AS TEXT)"),
        }
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
        assert_eq!(Dialect::Mysql.quote("shop.we`ird\""), "`shop`.`we``ird\"`");
    }

    #[test]
    fn placeholders_per_dialect() {
        assert_eq!(Dialect::Sqlite.param(2), "?2");
        assert_eq!(Dialect::Postgres.param(2), "$2");
        assert_eq!(Dialect::Mysql.param(2), "$2");
    }
}
