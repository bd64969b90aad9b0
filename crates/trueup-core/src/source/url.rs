//! Connection URLs: their scheme, and their printable form with secrets removed.

/// The scheme of a URL (`sqlite`, `postgres`, ...), lower-cased text before the first `:`.
pub fn scheme(url: &str) -> &str {
    url.split_once(':').map_or("", |(scheme, _)| scheme)
}

/// `url` with the password of its authority and any `password=` parameter replaced by
/// `***`, safe for logs, errors and reports.
pub fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(authority_start) = out.find("://").map(|i| i + 3) {
        let authority_end = out[authority_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| authority_start + i);
        if let Some(at) = out[authority_start..authority_end].rfind('@') {
            let userinfo = &out[authority_start..authority_start + at];
            if let Some(colon) = userinfo.find(':') {
                let start = authority_start + colon + 1;
                out.replace_range(start..authority_start + at, "***");
            }
        }
    }
    if let Some(query_start) = out.find('?') {
        let (base, query) = out.split_at(query_start + 1);
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _))
                    if key.eq_ignore_ascii_case("password")
                        || key.eq_ignore_ascii_case("sslpassword") =>
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
    fn leaves_urls_without_secrets_alone() {
        assert_eq!(redact("sqlite://shop.db"), "sqlite://shop.db");
        assert_eq!(redact("postgres://app@db/shop"), "postgres://app@db/shop");
        assert_eq!(scheme("postgresql://x"), "postgresql");
    }
}
