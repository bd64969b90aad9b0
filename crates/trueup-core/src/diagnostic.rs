//! Problems found in rule and project files, each pointing at `file:line:column` with the
//! offending line, the way a compiler reports them.
//!
//! Parse errors come with a byte span from the `toml` crate. Problems found after parsing
//! (an unknown source, a misspelt column) carry a [`FieldPath`] instead, which
//! [`SourceFile::locate`] turns back into a span by re-reading the file with positions.
//!
//! A diagnostic quotes its file (the line, and serde's messages, which quote values), so it
//! could carry what the file holds: a password, a 5 MB value, control characters. Every
//! diagnostic about a file is therefore made from the file's [`Secrets`] (what its parsed
//! values hold that must not be shown), which are replaced by `***` in its message, line and
//! hints; long quoted values are cut, the line is cut around the column, and the line,
//! message and hints are shown with control characters escaped. The underline is measured
//! on the line as shown.

mod secrets;
mod shown;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use secrets::Secrets;

use crate::text::escape;

/// One problem, with where it is and what to do about it.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    pub message: String,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
    /// What the file it is about holds that must not be shown: hints added later are
    /// scrubbed of it too.
    #[serde(skip)]
    secrets: Secrets,
}

/// Where a diagnostic points.
#[derive(Debug, Clone, Serialize)]
pub struct Location {
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters of the line with its secrets written `***`.
    pub column: usize,
    /// The line the problem is on, as shown: secrets replaced, control characters escaped,
    /// cut around the column when long.
    #[serde(skip)]
    pub snippet: String,
    /// Where the underline starts in `snippet`, in characters from its start.
    #[serde(skip)]
    pub caret: usize,
    /// How many characters of the snippet to underline.
    #[serde(skip)]
    pub width: usize,
}

impl Diagnostic {
    /// A diagnostic about no particular place.
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            message: shown::shorten(&message.into()),
            location: None,
            hints: Vec::new(),
            secrets: Secrets::default(),
        }
    }

    /// A diagnostic about a whole file. [`SourceFile::at_file`] also keeps the file's
    /// secrets out of it.
    pub fn in_file(file: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            location: Some(Location::file(file)),
            ..Diagnostic::new(message)
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        let hint = tidy(&self.secrets, &hint.into());
        self.hints.push(hint);
        self
    }

    /// `file:line:col: message` on one line, without the snippet and hints.
    pub fn headline(&self) -> String {
        match &self.location {
            Some(loc) => format!(
                "{}:{}:{}: {}",
                loc.file.display(),
                loc.line,
                loc.column,
                self.message
            ),
            None => self.message.clone(),
        }
    }
}

impl Location {
    fn file(file: &Path) -> Location {
        Location {
            file: file.to_owned(),
            line: 1,
            column: 1,
            snippet: String::new(),
            caret: 0,
            width: 0,
        }
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: message`, then the line with the span underlined, then `hint:` lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = escape(&self.message);
        match &self.location {
            Some(loc) => write!(
                f,
                "{}:{}:{}: {message}",
                escape(&loc.file.display().to_string()),
                loc.line,
                loc.column,
            )?,
            None => f.write_str(&message)?,
        }
        if let Some(loc) = self.location.as_ref().filter(|loc| !loc.snippet.is_empty()) {
            let gutter = " ".repeat(loc.line.to_string().len());
            let pad = " ".repeat(loc.caret);
            let marks = "^".repeat(loc.width.max(1));
            write!(
                f,
                "\n{gutter} |\n{} | {}\n{gutter} | {pad}{marks}",
                loc.line, loc.snippet
            )?;
        }
        for hint in &self.hints {
            write!(f, "\n  = hint: {}", escape(hint))?;
        }
        Ok(())
    }
}

/// A step in a path to a value inside a TOML document: a key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Where a value sits in a TOML document, e.g. `rule[2].detector.columns[0]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Step>);

impl FieldPath {
    pub fn key(&self, key: &str) -> FieldPath {
        let mut steps = self.0.clone();
        steps.push(Step::Key(key.to_owned()));
        FieldPath(steps)
    }

    pub fn index(&self, index: usize) -> FieldPath {
        let mut steps = self.0.clone();
        steps.push(Step::Index(index));
        FieldPath(steps)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(key) if i == 0 => f.write_str(key)?,
                Step::Key(key) => write!(f, ".{key}")?,
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// A file's name and text, kept to point diagnostics into it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

impl SourceFile {
    /// A diagnostic pointing at a byte span of this file.
    pub fn at_span(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        let start = floor_char_boundary(&self.text, span.start.min(self.text.len()));
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let text = self.text[line_start..line_end].trim_end_matches('\r');
        // A span may start at the `\r` or `\n` that ends the line.
        let line_limit = (line_start + text.len()).max(start);
        let end = floor_char_boundary(&self.text, span.end.clamp(start, line_limit));
        let secrets = Secrets::of_toml(&self.text);
        let shown = shown::line(
            text,
            &secrets.ranges_in(text),
            start - line_start..end.max(start) - line_start,
        );
        let location = Location {
            file: self.path.clone(),
            line: self.text[..start].matches('\n').count() + 1,
            column: shown.column + 1,
            snippet: shown.text,
            caret: shown.caret,
            width: shown.width,
        };
        Diagnostic {
            message: tidy(&secrets, &message.into()),
            location: Some(location),
            hints: Vec::new(),
            secrets,
        }
    }

    /// A diagnostic about this file as a whole, without its secrets.
    pub fn at_file(&self, message: impl Into<String>) -> Diagnostic {
        let secrets = Secrets::of_toml(&self.text);
        Diagnostic {
            message: tidy(&secrets, &message.into()),
            location: Some(Location::file(&self.path)),
            hints: Vec::new(),
            secrets,
        }
    }

    /// A diagnostic pointing at the value at `path`, or at the nearest enclosing value that
    /// exists (a missing field points at its table).
    pub fn at_path(&self, path: &FieldPath, message: impl Into<String>) -> Diagnostic {
        match self.locate(path) {
            Some(span) => self.at_span(span, message),
            None => self.at_file(message),
        }
    }

    /// The byte span of the value at `path`, or of its deepest existing ancestor.
    pub fn locate(&self, path: &FieldPath) -> Option<Range<usize>> {
        self.find(path, false)
    }

    /// A diagnostic pointing at the key `path` ends with (e.g. a misspelt option), not at
    /// its value; at its deepest existing ancestor's value when there is no such key.
    pub fn at_key(&self, path: &FieldPath, message: impl Into<String>) -> Diagnostic {
        match self.find(path, true) {
            Some(span) => self.at_span(span, message),
            None => self.at_file(message),
        }
    }

    /// The span of the value at `path` (or of its last key, with `key`), or of its deepest
    /// existing ancestor's value.
    fn find(&self, path: &FieldPath, key: bool) -> Option<Range<usize>> {
        let document = toml::de::DeTable::parse(&self.text).ok()?;
        let mut span = None;
        let mut table = Some(document.get_ref());
        let mut value: Option<&toml::de::DeValue<'_>> = None;
        for (at, step) in path.0.iter().enumerate() {
            let next = match (step, table, value) {
                (Step::Key(name), Some(t), _) => t
                    .get_key_value(name.as_str())
                    .map(|(k, v)| (Some(k.span()), v)),
                (Step::Index(i), _, Some(toml::de::DeValue::Array(items))) => {
                    items.get(*i).map(|item| (None, item))
                }
                _ => None,
            };
            let Some((key_span, next)) = next else { break };
            if key && at + 1 == path.0.len() && key_span.is_some() {
                return key_span;
            }
            // A table's span is the whole table; point at its header or first key instead.
            span = Some(next.span());
            value = Some(next.get_ref());
            table = next.get_ref().as_table();
        }
        span.map(|s| self.trim_table_span(s))
    }

    /// Array-of-tables and table values span many lines; keep the first line only.
    fn trim_table_span(&self, span: Range<usize>) -> Range<usize> {
        let text = &self.text[span.clone()];
        match text.find('\n') {
            Some(newline) => span.start..span.start + newline,
            None => span,
        }
    }
}

/// `text` of a message or hint: secrets hidden, then long values cut.
fn tidy(secrets: &Secrets, text: &str) -> String {
    shown::shorten(&secrets.hide(text))
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> SourceFile {
        SourceFile {
            path: "rules/x.toml".into(),
            text: text.to_owned(),
        }
    }

    #[test]
    fn locates_nested_values_in_arrays_of_tables() {
        let f = file(
            "[[rule]]\nid = \"a\"\n\n[[rule]]\nid = \"b\"\n[rule.detector]\ntable = \"orders\"\n",
        );
        let path = FieldPath::default()
            .key("rule")
            .index(1)
            .key("detector")
            .key("table");
        let d = f.at_path(&path, "no such table");
        let loc = d.location.unwrap();
        assert_eq!((loc.line, loc.column, loc.width), (7, 9, 8));
    }

    #[test]
    fn a_span_at_the_end_of_a_crlf_line_points_after_it() {
        let f = file("rules = [1\r\nx = 2\r\n");
        for at in [10, 11] {
            let loc = f.at_span(at..at + 1, "unclosed array").location.unwrap();
            assert_eq!((loc.line, loc.column, loc.caret), (1, 11, 10));
        }
    }

    #[test]
    fn renders_line_column_and_caret() {
        let f = file("id = \"x\"\nseverity = \"urgent\"\n");
        let d = f
            .at_span(20..28, "unknown severity")
            .with_hint("use critical, high, medium or low");
        insta::assert_snapshot!(d.to_string(), @r#"
        rules/x.toml:2:12: unknown severity
          |
        2 | severity = "urgent"
          |            ^^^^^^^^
          = hint: use critical, high, medium or low
        "#);
    }
}
