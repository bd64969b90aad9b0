//! PromQL a user writes (a `promql` detector's `query`), parsed with `promql-parser` when
//! the rule is loaded: a malformed query, or one whose value is not an instant vector, is a
//! problem at its place in the rule file rather than a failed run.

use promql_parser::parser::value::ValueType;

/// The longest query trueup parses; a rule's query is a line or a few.
pub const MAX_LEN: usize = 64 * 1024;

/// The deepest nesting of brackets parsed: the parser recurses, and a stack overflow is an
/// abort, not an error.
pub const MAX_DEPTH: usize = 64;

/// Why `query` cannot be a `promql` detector's query, with what to do about it; `None`
/// when it parses and its value is an instant vector.
pub fn problem(query: &str) -> Option<(String, Option<&'static str>)> {
    if query.trim().is_empty() {
        return Some(("the query is empty".to_owned(), None));
    }
    if query.len() > MAX_LEN {
        return Some((
            format!("the query is longer than {MAX_LEN} bytes"),
            Some("a recording rule in Prometheus can hold the heavy part"),
        ));
    }
    if depth(query) > MAX_DEPTH {
        return Some((
            format!("the query nests brackets more than {MAX_DEPTH} deep"),
            None,
        ));
    }
    // The parser is a dependency: a panic in it is this query's error, not trueup's crash.
    let parsed = std::panic::catch_unwind(|| promql_parser::parser::parse(query))
        .unwrap_or_else(|_| Err("the PromQL parser failed on it".to_owned()));
    let expr = match parsed {
        Ok(expr) => expr,
        Err(message) => {
            return Some((
                format!("the query is not PromQL: {message}"),
                Some(
                    "check brackets, quotes and operators; `promtool` or Prometheus' query page show where",
                ),
            ));
        }
    };
    match expr.value_type() {
        ValueType::Vector => None,
        ValueType::Matrix => Some((
            "the query's value is a range vector (samples over time), not an instant vector"
                .to_owned(),
            Some(
                "turn it into one value per series, e.g. `increase(x[10m])` or `max_over_time(x[10m])`",
            ),
        )),
        ValueType::Scalar => Some((
            "the query's value is a scalar, which has no labels to key a finding by".to_owned(),
            Some(
                "select series instead, e.g. `sum by (topic) (x) > 10`, or wrap it: `vector(...)`",
            ),
        )),
        ValueType::String => Some((
            "the query's value is a string, not an instant vector".to_owned(),
            None,
        )),
    }
}

/// Whether `name` is a label name PromQL accepts: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// How deep brackets nest in `query`, outside quoted strings.
fn depth(query: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in query.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q != '`' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' | '`' => quote = Some(c),
                '(' | '[' | '{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_vectors_pass_and_the_rest_is_refused_with_a_reason() {
        for query in [
            "kafka_consumergroup_lag > 10000",
            "sum by (consumergroup, topic) (kafka_consumergroup_lag) > 10000",
            r#"increase(kafka_topic_partition_current_offset{topic=~".*(dlq|dead-letter).*"}[10m]) > 0"#,
            "up == 0",
        ] {
            assert_eq!(problem(query), None, "{query}");
        }
        let refused = |query: &str| problem(query).expect(query).0;
        assert!(refused("sum(rate(x[5m])").starts_with("the query is not PromQL"));
        assert!(refused("x{a=\"b}").starts_with("the query is not PromQL"));
        assert!(refused("x[5m]").contains("range vector"));
        assert!(refused("1 + 2").contains("scalar"));
        assert!(refused("\"text\"").contains("string"));
        assert!(refused("  ").contains("empty"));
        let deep = format!("{}x{}", "(".repeat(100), ")".repeat(100));
        assert!(refused(&deep).contains("nests"));
        // Brackets in strings do not count.
        assert_eq!(problem(&format!("x{{a=\"{}\"}}", "(".repeat(100))), None);
    }

    #[test]
    fn label_names() {
        assert!(is_label_name("consumergroup"));
        assert!(is_label_name("__name__"));
        assert!(!is_label_name("1a"));
        assert!(!is_label_name("a-b"));
        assert!(!is_label_name(""));
    }
}
