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

/// Why `sql` cannot be a detector query, if it cannot: it must be one statement that reads.
pub fn detector_problem(sql: &str) -> Option<String> {
    let statements = statements(sql);
    match statements.as_slice() {
        [] => Some("the query is empty".to_owned()),
        [one] => {
            let keyword = first_keyword(one);
            (!matches!(keyword.as_str(), "SELECT" | "WITH" | "VALUES")).then(|| {
                format!(
                    "a detector must only read, but this query starts with `{keyword}`; write a \
                     SELECT whose rows are the violations (repairs go in [rule.repair])"
                )
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
    }
}
