//! The secrets a TOML file holds, found from its parsed values, so that no diagnostic about
//! the file shows them: not in its message (serde quotes values), its line, or its hints.
//!
//! A secret is what [`crate::redact::redact`] would hide in a string value that is a
//! URL (a `url` field, or any value or key that reads as `scheme://…` or `scheme:…@…`), or
//! the whole value of a field named for a secret (`password`, `db-token`, …). `${NAME}`
//! references are not secrets: the value comes from the environment, never from the file.
//! Each secret is kept in every spelling a diagnostic may show: as written in the URL,
//! percent-decoded, escaped as serde quotes it (`{:?}`), and, when the TOML string is
//! written with escapes, the literal as it stands in the file.
//!
//! A file that does not parse may have values its parser skipped: in such a file, any
//! `scheme://` URL written on any line is also taken as it stands, up to the next quote.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use toml::de::{DeTable, DeValue};

use crate::redact;

/// The strings that must not be shown, longest first.
#[derive(Clone, Default)]
pub struct Secrets(Arc<[String]>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} hidden)", self.0.len())
    }
}

impl Secrets {
    /// The secrets of the TOML document `text`, parsed as far as it parses.
    pub fn of_toml(text: &str) -> Secrets {
        if !may_hold_secrets(text) {
            return Secrets::default();
        }
        let (document, errors) = DeTable::parse_recoverable(text);
        let mut found = Found {
            text,
            all: Vec::new(),
        };
        found.table(document.get_ref());
        // Recovery after an error may skip values: read every line of a broken file as well.
        if !errors.is_empty() {
            for line in text.lines() {
                found.unparsed_line(line);
            }
        }
        let mut all = found.all;
        all.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        all.dedup();
        Secrets(all.into())
    }

    /// The byte ranges of `text` that hold a secret, in order, merged where they touch.
    pub fn ranges_in(&self, text: &str) -> Vec<Range<usize>> {
        let mut ranges: Vec<Range<usize>> = self
            .0
            .iter()
            .flat_map(|secret| {
                text.match_indices(secret.as_str())
                    .map(|(start, found)| start..start + found.len())
            })
            .collect();
        ranges.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
        let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
        for range in ranges {
            match merged.last_mut() {
                Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
                _ => merged.push(range),
            }
        }
        merged
    }

    /// `text` with each secret in it replaced by `***`.
    pub fn hide(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut shown = 0;
        for range in self.ranges_in(text) {
            out.push_str(&text[shown..range.start]);
            out.push_str(redact::HIDDEN);
            shown = range.end;
        }
        out.push_str(&text[shown..]);
        out
    }
}

/// Whether `text` can hold a secret at all: a URL, an `@`, a field named for a secret, or
/// a TOML escape (which could spell any of those). Saves parsing most rule files again.
fn may_hold_secrets(text: &str) -> bool {
    let bytes = text.as_bytes();
    let contains = |word: &str| {
        bytes
            .windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
    };
    text.contains(':') && (text.contains('@') || text.contains("://"))
        || text.contains("\\u")
        || text.contains("\\U")
        || ["url", "pass", "pwd", "secret", "token"]
            .iter()
            .any(|word| contains(word))
}

/// Whether a field called `key` holds a secret as a whole: its last word is one.
fn is_secret_field(key: &str) -> bool {
    key.rsplit(['-', '_', '.']).next().is_some_and(|word| {
        [
            "password",
            "passwd",
            "pass",
            "pwd",
            "sslpassword",
            "secret",
            "token",
        ]
        .iter()
        .any(|secret| word.eq_ignore_ascii_case(secret))
    })
}

/// Secrets found so far in a document.
struct Found<'t> {
    text: &'t str,
    all: Vec<String>,
}

impl Found<'_> {
    fn table(&mut self, table: &DeTable<'_>) {
        for (key, value) in table.iter() {
            if redact::looks_like_url(key.get_ref()) {
                self.url(key.get_ref(), key.span());
            }
            self.value(key.get_ref(), value.get_ref(), value.span());
        }
    }

    /// A value under `key` (an array's items are under their array's key).
    fn value(&mut self, key: &str, value: &DeValue<'_>, span: Range<usize>) {
        match value {
            DeValue::Table(table) => self.table(table),
            DeValue::Array(items) => {
                for item in items.iter() {
                    self.value(key, item.get_ref(), item.span());
                }
            }
            DeValue::String(text) if is_secret_field(key) && !text.contains("${") => {
                self.add(text);
                self.as_written(text, span);
            }
            DeValue::String(_) if is_secret_field(key) => {}
            DeValue::String(text)
                if key.eq_ignore_ascii_case("url") || redact::looks_like_url(text) =>
            {
                self.url(text, span);
            }
            _ => {}
        }
    }

    /// The secrets of the URL `text`, written at `span` of the document.
    fn url(&mut self, text: &str, span: Range<usize>) {
        if self.url_parts(text) {
            self.as_written(text, span);
        }
    }

    /// The secrets of the URL `text`, in each spelling; whether it holds any.
    fn url_parts(&mut self, text: &str) -> bool {
        let mut any = false;
        for part in redact::secret_parts(text).filter(|part| !part.contains("${")) {
            for spelling in redact::spellings(part) {
                self.add(&spelling);
            }
            any = true;
        }
        any
    }

    /// A secret-holding string written with escapes or on several lines is not found as
    /// it is in the file: hide its literal (each of its lines) whole.
    fn as_written(&mut self, value: &str, span: Range<usize>) {
        let Some(written) = self.text.get(span) else {
            return;
        };
        let inner = ["\"\"\"", "'''", "\"", "'"]
            .iter()
            .find_map(|quote| {
                // An unclosed string has its opening quote only.
                let inner = written.strip_prefix(quote)?;
                Some(inner.strip_suffix(quote).unwrap_or(inner))
            })
            .unwrap_or(written);
        if inner != value {
            let lines: Vec<&str> = inner.lines().map(str::trim).collect();
            for line in lines.into_iter().filter(|line| !line.is_empty()) {
                self.add(line);
            }
        }
    }

    /// A line of a file that did not parse: each `scheme://` URL on it, up to the next quote.
    fn unparsed_line(&mut self, line: &str) {
        let mut rest = line;
        while let Some(separator) = rest.find("://") {
            let start = redact::scheme_start(rest, separator);
            let end = rest[separator..]
                .find(['"', '\''])
                .map_or(rest.len(), |i| separator + i);
            self.url_parts(&rest[start..end]);
            // `end` is past the `://`, so each turn moves on.
            rest = &rest[end..];
        }
    }

    /// `secret`, and `secret` as serde quotes it in a message.
    fn add(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let quoted = format!("{secret:?}");
        let quoted = &quoted[1..quoted.len() - 1];
        if quoted != secret {
            self.all.push(quoted.to_owned());
        }
        self.all.push(secret.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hidden(document: &str, text: &str) -> String {
        Secrets::of_toml(document).hide(text)
    }

    #[test]
    fn hardening_7_passwords_of_urls_anywhere_are_secrets() {
        let document = r#"
rules = ["rules"]
[sources]
main = "postgres://app:hunter2@db/shop"
[sources.other]
url = "postgres://app@db/shop?%70assword=s%40cret&sslmode=require"
[x]
list = ["mysql://u:pa ss@h/db"]
"#;
        let line = r#"invalid type: string "postgres://app:hunter2@db/shop" s%40cret s@cret pa ss"#;
        assert_eq!(
            hidden(document, line),
            r#"invalid type: string "postgres://app:***@db/shop" *** *** ***"#
        );
    }

    #[test]
    fn hardening_7_references_and_plain_values_are_not_secrets() {
        let document = r#"
[sources.shop]
url = "postgres://app:${PW}@db/shop?password=${PW}"
title = "Orders: the total mismatch"
"#;
        let text = "postgres://app:${PW}@db/shop?password=${PW} Orders: the total mismatch";
        assert_eq!(hidden(document, text), text);
        assert!(Secrets::of_toml("[[rule]]\nid = \"a\"\n").0.is_empty());
    }

    #[test]
    fn hardening_7_fields_named_for_secrets_and_escaped_literals() {
        let document = r#"
[sources.shop]
url = "postgres://app:hun\u0074er2@db/shop"
password = "a\"b"
password-column = "pw_hash"
"#;
        // As decoded, as serde quotes it, and as written in the file.
        assert_eq!(
            hidden(document, r#"hunter2 a"b a\"b pw_hash"#),
            "*** *** *** pw_hash"
        );
        assert_eq!(
            hidden(document, r#"url = "postgres://app:hun\u0074er2@db/shop""#),
            r#"url = "***""#
        );
    }

    #[test]
    fn hardening_7_urls_on_lines_that_do_not_parse() {
        let document = "[sources.shop]\nurl = \"postgres://app:hunter2@db/shop\nx = 1\n";
        assert_eq!(
            hidden(document, "url = \"postgres://app:hunter2@db/shop"),
            "url = \"postgres://app:***@db/shop"
        );
        // Not a string at all: the parser has no value, the line is read as it stands.
        for document in [
            "[sources.shop]\nurl = postgres://app:hunter2@db/shop\n",
            "[sources.shop]\nurl = 'postgres://app:hunter2@db/shop' 'x'\n",
            "[sources.shop\nurl = \"postgres://app:hunter2@db/shop\"\n",
        ] {
            assert!(
                !hidden(document, document).contains("hunter2"),
                "{document}: {:?}",
                Secrets::of_toml(document)
            );
        }
    }
}
