//! Just enough lexing of SQL text to tell statements apart and see how each begins,
//! skipping comments and quoted text. This is a guard for clear early errors; read-only
//! connections are what actually keep detectors from writing.

/// The statements of `sql`, split on semicolons outside quotes and comments, each with its
/// comments removed and trimmed. Empty statements are dropped.
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        current.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                for c in chars.by_ref() {
                    if previous == '*' && c == '/' {
                        break;
                    }
                    previous = c;
                }
                current.push(' ');
            }
            '\'' | '"' | '`' => {
                current.push(c);
                for inner in chars.by_ref() {
                    current.push(inner);
                    if inner == c {
                        break;
                    }
                }
            }
            ';' => out.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    out.push(current);
    out.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The first keyword of a statement, upper-cased, skipping opening parentheses.
pub fn first_keyword(statement: &str) -> String {
    statement
        .trim_start_matches(|c: char| c == '(' || c.is_whitespace())
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase()
}

/// Statements that change data or schema; none belongs in a detector.
const WRITES: [&str; 13] = [
    "INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "DROP", "ALTER", "CREATE", "GRANT",
    "REVOKE", "COPY", "CALL", "VACUUM",
];

/// The words of `statement` outside quoted text, upper-cased.
fn words(statement: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in statement.chars() {
        match quote {
            Some(open) if c == open => quote = None,
            Some(_) => {}
            None if matches!(c, '\'' | '"' | '`') => quote = Some(c),
            None if c.is_ascii_alphanumeric() || c == '_' => {
                word.push(c.to_ascii_uppercase());
                continue;
            }
            None => {}
        }
        if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
    }
    words.extend((!word.is_empty()).then_some(word));
    words
}

/// Why `sql` cannot be a detector query, if it cannot: it must be one statement that only
/// reads (a write hidden in a `WITH` or a `SELECT … FOR UPDATE` is refused here too).
pub fn detector_problem(sql: &str) -> Option<String> {
    let statements = statements(sql);
    match statements.as_slice() {
        [] => Some("the query is empty".to_owned()),
        [one] => {
            let keyword = first_keyword(one);
            if !matches!(keyword.as_str(), "SELECT" | "WITH" | "VALUES") {
                return Some(format!(
                    "a detector must only read, but this query starts with `{keyword}`; write a \
                     SELECT whose rows are the violations (repairs go in [rule.repair])"
                ));
            }
            words(one).into_iter().find(|w| WRITES.contains(&w.as_str())).map(|write| {
                format!("a detector must only read, but this query contains `{write}`; repairs go in [rule.repair]")
            })
        }
        many => Some(format!(
            "a detector is one query, but this has {} statements",
            many.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_quotes_and_comments() {
        let sql = "SELECT ';' -- a; comment\n FROM t; /* ; */ SELECT 2;";
        assert_eq!(statements(sql), ["SELECT ';' \n FROM t", "SELECT 2"]);
    }

    #[test]
    fn accepts_reads_and_rejects_writes_and_batches() {
        assert_eq!(
            detector_problem("  -- find them\n with x as (select 1) select * from x"),
            None
        );
        assert_eq!(detector_problem("(SELECT 1)"), None);
        assert!(
            detector_problem("DELETE FROM orders")
                .unwrap()
                .contains("`DELETE`")
        );
        assert!(
            detector_problem("SELECT 1; DROP TABLE orders")
                .unwrap()
                .contains("2 statements")
        );
        assert!(detector_problem(" ; ").unwrap().contains("empty"));
        assert!(
            detector_problem("WITH d AS (DELETE FROM t RETURNING id) SELECT id FROM d")
                .unwrap()
                .contains("`DELETE`")
        );
        assert!(
            detector_problem("SELECT id FROM t FOR UPDATE")
                .unwrap()
                .contains("`UPDATE`")
        );
        assert_eq!(
            detector_problem("SELECT 'delete me', \"update\" FROM t WHERE note <> 'DROP'"),
            None
        );
    }
}
