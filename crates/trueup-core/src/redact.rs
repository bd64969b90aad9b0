//! Secrets out of connection URLs: a URL's printable form, and the URLs inside a text.
//!
//! What is secret is decided on the URL as its driver reads it. sqlx parses a PostgreSQL URL
//! with the `url` crate and reads its query with `form_urlencoded`, so the password of the
//! userinfo is a secret, and so is every query parameter whose *decoded* name holds `pass`,
//! `pwd`, `secret` or `token` in any case: `password`, `%70assword`, `sslpassword`,
//! `PASSWORD`. The fragment is hidden too (no driver reads it, but it is where a password
//! with an unencoded `#` ends up). The parts are found in the URL as written, with the
//! parser's own boundaries (authority up to the first `/`, `?` or `#`; userinfo up to its
//! last `@`; password after its first `:`), so what is hidden is exactly what was written.
//!
//! Whatever cannot be read with confidence is hidden whole: a URL that does not parse, one
//! whose `user:pass@` is not its userinfo (a password holding `/`, `?` or `#`, or a URL
//! without `//`), and text without a scheme (it may be a password pasted where a URL goes).
//! Each is shown as its scheme and `***`.

use std::borrow::Cow;
use std::ops::Range;

/// What a hidden part is shown as.
pub const HIDDEN: &str = "***";

/// The scheme of a URL (`sqlite`, `postgres`, ...), lower-cased text before the first `:`.
pub fn scheme(url: &str) -> &str {
    url.split_once(':').map_or("", |(scheme, _)| scheme)
}

/// `url` with its password, its secret parameters' values and its fragment replaced by
/// `***`, safe for logs, errors and reports (see the module's documentation).
pub fn redact(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut shown = 0;
    for range in secret_ranges(url) {
        out.push_str(&url[shown..range.start]);
        out.push_str(HIDDEN);
        shown = range.end;
    }
    out.push_str(&url[shown..]);
    out
}

/// The secrets `url` holds, as written in it, in the order they appear: what [`redact`]
/// hides. Their decoded forms are [`spellings`].
pub fn secret_parts(url: &str) -> impl Iterator<Item = &str> {
    secret_ranges(url).into_iter().map(move |range| &url[range])
}

/// `secret` as written in a URL and as a driver decodes it (`%XX`, and `+` for a space in a
/// query), without repeats.
pub fn spellings(secret: &str) -> Vec<String> {
    let mut all = vec![secret.to_owned()];
    let decoded = percent_encoding::percent_decode_str(secret).decode_utf8_lossy();
    let form_decoded = percent_encoding::percent_decode_str(&secret.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned();
    for spelling in [decoded.into_owned(), form_decoded] {
        if !all.contains(&spelling) {
            all.push(spelling);
        }
    }
    all
}

/// Characters a password may hold that a URL reads as structure, and how to write them.
const MISREAD: [(char, &str); 4] = [('/', "%2F"), ('?', "%3F"), ('#', "%23"), ('+', "%2B")];

/// Why the password of `url` as written is not the password the driver reads, when that can
/// be seen, as a hint that names the characters and never the password: "the password
/// contains `#`, which must be written %23 in a URL". Before the `@` (the text from the
/// first `:` after `//` to the last `@`), a `/`, `?` or `#` ends the authority, so the
/// driver reads another password and another host: named whatever failed. In a `password=`
/// parameter, `#` starts the fragment and `+` is a space, which only the password suffers:
/// named when `authentication_failed`. `@` and `:` in a password read as written (the
/// parser takes the last `@` and the first `:`), so they are not named.
pub fn password_encoding_hint(url: &str, authentication_failed: bool) -> Option<String> {
    let body = url.split_once("://")?.1;
    let mut found = Vec::new();
    let after_userinfo = match body.rfind('@') {
        Some(at) => {
            if let Some((_, password)) = body[..at].split_once(':') {
                found.extend(password.chars().filter(|c| matches!(c, '/' | '?' | '#')));
            }
            &body[at + 1..]
        }
        None => body,
    };
    if let Some((_, query)) = after_userinfo
        .split_once('?')
        .filter(|_| authentication_failed)
    {
        for pair in query.split('&') {
            if let Some((name, value)) = pair.split_once('=')
                && parameter_name(name).is_some_and(|name| name == "password")
            {
                found.extend(value.chars().filter(|c| matches!(c, '#' | '+')));
            }
        }
    }
    let named: Vec<(char, &str)> = MISREAD
        .into_iter()
        .filter(|(c, _)| found.contains(c))
        .collect();
    let list = |items: Vec<String>| match items.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    let characters = list(named.iter().map(|(c, _)| format!("`{c}`")).collect());
    let encodings = list(named.iter().map(|(_, e)| (*e).to_owned()).collect());
    match named.len() {
        0 => None,
        1 => Some(format!(
            "the password contains {characters}, which must be written {encodings} in a URL"
        )),
        _ => Some(format!(
            "the password contains {characters}, which must be written {encodings} in a URL \
             (percent-encoding)"
        )),
    }
}

/// Whether a query parameter or a field called `name` holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_lowercase();
    ["pass", "pwd", "secret", "token"]
        .iter()
        .any(|word| name.contains(word))
}

/// Whether `text` reads as a URL that may hold a secret: a scheme, then `//` or an `@`.
pub fn looks_like_url(text: &str) -> bool {
    scheme_end(text).is_some_and(|colon| {
        let rest = &text[colon + 1..];
        rest.starts_with("//") || rest.contains('@')
    })
}

/// The byte ranges of `url` that hold secrets, in order and apart.
fn secret_ranges(url: &str) -> Vec<Range<usize>> {
    // One range: all of it (`vec![range]` reads as a vector of its numbers to clippy).
    let hide_from = |start: usize| std::iter::once(start..url.len()).collect();
    let Some(colon) = scheme_end(url) else {
        return if url.is_empty() {
            Vec::new()
        } else {
            hide_from(0)
        };
    };
    let slashes = url[colon + 1..].starts_with("//");
    let body_start = colon + 1 + if slashes { 2 } else { 0 };
    let body = &url[body_start..];
    if body.is_empty() {
        return Vec::new();
    }
    // The authority runs to the first `/`, `?` or `#`; only a URL with `//` has one.
    let authority_len = if slashes {
        body.find(['/', '?', '#']).unwrap_or(body.len())
    } else {
        0
    };
    // A `user:pass@` that the parser does not read as userinfo: the password holds `/`,
    // `?` or `#`, or there is no `//`. Where the password ends cannot be known.
    if let Some(at) = body.rfind('@')
        && at >= authority_len
        && body[..at].contains(':')
    {
        return hide_from(body_start);
    }
    // sqlx reads a SQLite URL itself (a path, then parameters), not with the `url` crate,
    // and a file name may hold what a URL may not (a space): do not ask it to parse.
    if !url[..colon].eq_ignore_ascii_case("sqlite") && url::Url::parse(url).is_err() {
        return hide_from(body_start);
    }

    let mut ranges = Vec::new();
    let authority = &body[..authority_len];
    if let Some(at) = authority.rfind('@')
        && let Some(password) = authority[..at].find(':').map(|i| i + 1)
        && password < at
    {
        ranges.push(body_start + password..body_start + at);
    }
    let after = &body[authority_len..];
    let after_start = body_start + authority_len;
    let fragment = after.find('#');
    let before_fragment = &after[..fragment.unwrap_or(after.len())];
    if let Some(question) = before_fragment.find('?') {
        let mut pair_start = after_start + question + 1;
        for pair in before_fragment[question + 1..].split('&') {
            if let Some((name, value)) = pair.split_once('=')
                && !value.is_empty()
                && parameter_name(name).is_some_and(|name| is_secret_name(&name))
            {
                let value_start = pair_start + name.len() + 1;
                ranges.push(value_start..value_start + value.len());
            }
            pair_start += pair.len() + 1;
        }
    }
    if let Some(hash) = fragment.filter(|&hash| hash + 1 < after.len()) {
        ranges.push(after_start + hash + 1..url.len());
    }
    ranges
}

/// A query parameter's name as the driver reads it (`%70assword` is `password`).
fn parameter_name(raw: &str) -> Option<Cow<'_, str>> {
    url::form_urlencoded::parse(raw.as_bytes())
        .next()
        .map(|(name, _)| name)
}

/// The index of the `:` that ends `text`'s scheme, when it starts with one (a letter, then
/// letters, digits, `+`, `-` or `.`).
fn scheme_end(text: &str) -> Option<usize> {
    let colon = text.find(':')?;
    let scheme = &text[..colon];
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(colon)
}

/// Where the scheme ends by the `://` at `separator` of `text` starts.
pub fn scheme_start(text: &str, separator: usize) -> usize {
    text[..separator]
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
        .map_or(0, |i| i + 1)
}

/// `text` with every URL in it redacted, for messages that may quote one (a driver's
/// error). A URL is taken to run from its scheme's `://` to the next space, quote or bracket.
pub fn redact_urls_in(text: &str) -> String {
    if !text.contains("://") {
        return text.to_owned();
    }
    let is_boundary =
        |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | ',' | '(' | ')' | '[' | ']');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(is_boundary).unwrap_or(rest.len());
        let (token, after) = rest.split_at(end);
        out.push_str(&redact_token(token));
        let boundary = after.chars().next().map_or(0, char::len_utf8);
        out.push_str(&after[..boundary]);
        rest = &after[boundary..];
    }
    out
}

/// A word of text with the URL in it (from its scheme on) redacted.
fn redact_token(token: &str) -> Cow<'_, str> {
    let Some(separator) = token.find("://") else {
        return Cow::Borrowed(token);
    };
    let start = scheme_start(token, separator);
    Cow::Owned(format!("{}{}", &token[..start], redact(&token[start..])))
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
            redact("mysql://billing:hunter2@db:3306/billing?ssl-mode=required"),
            "mysql://billing:***@db:3306/billing?ssl-mode=required"
        );
        assert_eq!(
            redact("mariadb://billing:p%40ss@db/billing"),
            "mariadb://billing:***@db/billing"
        );
        assert_eq!(
            redact("postgres://p%40ss:x@y@db/shop"),
            "postgres://p%40ss:***@db/shop"
        );
    }

    #[test]
    fn hardening_6_percent_encoded_password_parameter_is_redacted() {
        // sqlx decodes parameter names: `%70assword` is `password` to it.
        assert_eq!(
            redact("postgres://u@h/db?%70assword=hunter2"),
            "postgres://u@h/db?%70assword=***"
        );
        assert_eq!(
            redact("postgres://u@h/db?sslpassword=hunter2&SSLPassword=hunter2&PASSWORD=x"),
            "postgres://u@h/db?sslpassword=***&SSLPassword=***&PASSWORD=***"
        );
        assert_eq!(
            redact("postgres://u@h/db?pass%77ord=hunter2&sslmode=require"),
            "postgres://u@h/db?pass%77ord=***&sslmode=require"
        );
        assert_eq!(
            redact("postgresql://u:hunter2@h/db?application_name=x"),
            "postgresql://u:***@h/db?application_name=x"
        );
    }

    #[test]
    fn hardening_6_what_does_not_parse_is_hidden_after_its_scheme() {
        // No `//`: no authority to read a password from, but it looks like one.
        assert_eq!(redact("postgres:u:hunter2@h/db"), "postgres:***");
        // A password with `/`, `?` or `#`: the parser would cut it short.
        assert_eq!(
            redact("postgres://trueup:a/b#c@127.0.0.1:5432/db"),
            "postgres://***"
        );
        assert_eq!(redact("postgres://u:p?q@h/db"), "postgres://***");
        assert_eq!(redact("postgres://u:123?x@h/db"), "postgres://***");
        // Not a URL the driver can parse (a bad port).
        assert_eq!(redact("postgres://u:hunter2@h:port/db"), "postgres://***");
        // No scheme at all: it may be a password where a URL should be.
        assert_eq!(redact("hunter2"), "***");
        assert_eq!(redact(""), "");
    }

    #[test]
    fn hardening_6_a_fragment_is_hidden() {
        assert_eq!(
            redact("postgres://u@h/db?password=ab#cd"),
            "postgres://u@h/db?password=***#***"
        );
    }

    #[test]
    fn secrets_are_found_as_written_and_decoded() {
        let url = "postgres://u:p%40ss+w@h/db?%70assword=a+b%21";
        assert_eq!(
            secret_parts(url).collect::<Vec<_>>(),
            ["p%40ss+w", "a+b%21"]
        );
        assert_eq!(spellings("p%40ss+w"), ["p%40ss+w", "p@ss+w", "p@ss w"]);
        assert_eq!(spellings("hunter2"), ["hunter2"]);
    }

    #[test]
    fn connection_words_hint_names_the_characters_a_url_misreads() {
        let hint = |url: &str| password_encoding_hint(url, true);
        assert_eq!(
            hint("postgres://u:pa#ss@h:5432/db").as_deref(),
            Some("the password contains `#`, which must be written %23 in a URL")
        );
        assert_eq!(
            hint("postgres://u:a/b?c@h/db").as_deref(),
            Some(
                "the password contains `/` and `?`, which must be written %2F and %3F in a URL \
                 (percent-encoding)"
            )
        );
        assert_eq!(
            hint("postgres://u@h/db?sslmode=disable&password=a+b#c").as_deref(),
            Some(
                "the password contains `#` and `+`, which must be written %23 and %2B in a URL \
                 (percent-encoding)"
            )
        );
        // Read as written: `@` and `:` in the password, encoded characters, no password.
        assert_eq!(hint("postgres://u:p@ss:w@h/db"), None);
        assert_eq!(hint("postgres://u:p%23ss%2F@h/db?password=a%2Bb"), None);
        assert_eq!(hint("postgres://u@h/db?application_name=a+b"), None);
        assert_eq!(hint("sqlite://shop.db"), None);
        // A misread parameter changes the password only: named for a failed login only.
        assert_eq!(
            password_encoding_hint("postgres://u@h/db?password=a#b", false),
            None
        );
        assert!(password_encoding_hint("postgres://u:a#b@h/db", false).is_some());
        // The hint never holds the password.
        let secret = hint("postgres://u:hunter2#x@h/db").unwrap();
        assert!(!secret.contains("hunter2"), "{secret}");
    }

    #[test]
    fn hides_passwords_with_a_space() {
        assert_eq!(
            redact("mysql://app:hunter2 and more@127.0.0.1:3306/shop"),
            "mysql://app:***@127.0.0.1:3306/shop"
        );
    }

    #[test]
    fn redacts_urls_inside_lines_of_text() {
        assert_eq!(
            redact_urls_in(r#"url = "postgres://app:hunter2@db/shop" # main"#),
            r#"url = "postgres://app:***@db/shop" # main"#
        );
        assert_eq!(
            redact_urls_in("error (url=postgres://u@h/db?%70assword=hunter2): refused"),
            "error (url=postgres://u@h/db?%70assword=***): refused"
        );
        assert_eq!(redact_urls_in("no url: here"), "no url: here");
    }

    #[test]
    fn leaves_urls_without_secrets_alone() {
        assert_eq!(redact("sqlite://shop.db"), "sqlite://shop.db");
        assert_eq!(
            redact("sqlite://my shop.db?mode=ro"),
            "sqlite://my shop.db?mode=ro"
        );
        assert_eq!(redact("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(redact("postgres://app@db/shop"), "postgres://app@db/shop");
        assert_eq!(
            redact("postgres://app@db/shop?sslmode=require&sslkey=/k"),
            "postgres://app@db/shop?sslmode=require&sslkey=/k"
        );
        assert_eq!(scheme("postgresql://x"), "postgresql");
    }
}
