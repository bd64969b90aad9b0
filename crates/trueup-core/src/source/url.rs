//! Connection URLs: their scheme, and their printable form with secrets removed.

/// The scheme of a URL (`sqlite`, `postgres`, ...), lower-cased text before the first `:`.
pub fn scheme(url: &str) -> &str {
    url.split_once(':').map_or("", |(scheme, _)| scheme)
}

/// `url` with the password of its authority and any `password=` parameter replaced by
/// `***`, safe for logs, errors and reports.
pub fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    // The password runs from the first `:` after the scheme to the last `@`: a password may
    // hold `/`, `#` or `?` that its author did not percent-encode, so over-redact rather
    // than cut it short.
    if let Some(rest_start) = out.find("://").map(|i| i + 3)
        && let Some(at) = out[rest_start..].rfind('@').map(|i| rest_start + i)
        && let Some(colon) = out[rest_start..at].find(':').map(|i| rest_start + i)
        && !out[colon + 1..at].starts_with("${")
    {
        out.replace_range(colon + 1..at, "***");
    }
    if let Some(query_start) = out.find('?') {
        let (base, query) = out.split_at(query_start + 1);
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, value))
                    if !value.starts_with("${")
                        && (key.eq_ignore_ascii_case("password")
                            || key.eq_ignore_ascii_case("sslpassword")) =>
                {
                    format!("{key}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{base}{}", redacted.join("&"));
    }
    out
}

/// `text` with every URL in it redacted, for lines of configuration shown in diagnostics.
pub fn redact_urls_in(text: &str) -> String {
    if !text.contains("://") {
        return text.to_owned();
    }
    let is_boundary =
        |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | ',' | '(' | ')' | '[' | ']');
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    for c in text.chars() {
        if is_boundary(c) {
            out.push_str(&redact(&token));
            token.clear();
            out.push(c);
        } else {
            token.push(c);
        }
    }
    out.push_str(&redact(&token));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_passwords_in_authority_and_query() {
        assert_eq!(
            redact("postgres://app:hunter2@db:5432/shop"),
            "postgres://app:***@db:5432/shop"
        );
        assert_eq!(
            redact("postgres://app@db/shop?sslmode=require&password=hunter2"),
            "postgres://app@db/shop?sslmode=require&password=***"
        );
        assert_eq!(
            redact("postgres://p%40ss:x@y@db/shop"),
            "postgres://p%40ss:***@db/shop"
        );
    }

    #[test]
    fn hides_passwords_with_unencoded_special_characters() {
        assert_eq!(
            redact("postgres://trueup:a/b#c@127.0.0.1:5432/db"),
            "postgres://trueup:***@127.0.0.1:5432/db"
        );
        assert_eq!(redact("postgres://u:p?q@h/db"), "postgres://u:***@h/db");
    }

    #[test]
    fn keeps_variable_references_which_are_not_secrets() {
        assert_eq!(
            redact_urls_in(r#"url = "postgres://app:${PW}@db/shop?password=${PW}""#),
            r#"url = "postgres://app:${PW}@db/shop?password=${PW}""#
        );
    }

    #[test]
    fn redacts_urls_inside_lines_of_text() {
        assert_eq!(
            redact_urls_in(r#"url = "postgres://app:hunter2@db/shop" # main"#),
            r#"url = "postgres://app:***@db/shop" # main"#
        );
    }

    #[test]
    fn leaves_urls_without_secrets_alone() {
        assert_eq!(redact("sqlite://shop.db"), "sqlite://shop.db");
        assert_eq!(redact("postgres://app@db/shop"), "postgres://app@db/shop");
        assert_eq!(scheme("postgresql://x"), "postgresql");
    }
}
