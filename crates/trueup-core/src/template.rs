//! Finding messages written as templates: `"order {id} totals {total_amount}"`, where
//! `{column}` is that column's value in the finding's row and `{{`/`}}` are literal braces.

use std::fmt::Write;

use crate::value::Value;

/// A parsed message template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Column(String),
}

impl Template {
    /// Parses a template; an unclosed `{` is an error.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    if name.is_empty() || name.contains('{') {
                        return Err(format!(
                            "`{{{name}` is not a column placeholder; write {{column}}"
                        ));
                    }
                    if !text.contains(&format!("{{{name}}}")) {
                        return Err(format!("`{{{name}` is not closed with `}}`"));
                    }
                    parts.push(Part::Text(std::mem::take(&mut literal)));
                    parts.push(Part::Column(name.trim().to_owned()));
                }
                c => literal.push(c),
            }
        }
        parts.push(Part::Text(literal));
        parts.retain(|p| !matches!(p, Part::Text(t) if t.is_empty()));
        Ok(Template { parts })
    }

    /// The column names the template refers to.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Column(name) => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Fills the template; `value` maps a column name to its value.
    pub fn render<'a>(&self, value: impl Fn(&str) -> Option<&'a Value>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Column(name) => match value(name) {
                    Some(v) => {
                        let _ = write!(out, "{v}");
                    }
                    None => {
                        let _ = write!(out, "{{{name}}}");
                    }
                },
            }
        }
        out
    }

    /// Whether two placeholders follow each other with no text between (`{a}{b}`): such
    /// a template cannot be read back ([`Template::captures`]).
    pub fn has_adjacent_columns(&self) -> bool {
        self.parts
            .windows(2)
            .any(|w| matches!(w, [Part::Column(_), Part::Column(_)]))
    }

    /// The values a rendered `text` was made of, by placeholder, when `text` fits the
    /// template: each placeholder takes the text up to the next literal's first occurrence
    /// (or the end). `customer:{id}` reads `customer:42` as `id = "42"`.
    pub fn captures<'t>(&self, text: &'t str) -> Option<Vec<(&str, &'t str)>> {
        let mut rest = text;
        let mut out = Vec::new();
        let mut parts = self.parts.iter().peekable();
        while let Some(part) = parts.next() {
            match part {
                Part::Text(literal) => rest = rest.strip_prefix(literal.as_str())?,
                Part::Column(name) => {
                    let end = match parts.peek() {
                        Some(Part::Text(next)) => rest.find(next.as_str())?,
                        _ => rest.len(),
                    };
                    out.push((name.as_str(), &rest[..end]));
                    rest = &rest[end..];
                }
            }
        }
        rest.is_empty().then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_columns_and_escaped_braces() {
        let t = Template::parse("order {id} totals {total} {{not a column}}").unwrap();
        assert_eq!(t.columns().collect::<Vec<_>>(), ["id", "total"]);
        let id = Value::Int(7);
        let total = Value::Float(12.5);
        let rendered = t.render(|name| match name {
            "id" => Some(&id),
            "total" => Some(&total),
            _ => None,
        });
        assert_eq!(rendered, "order 7 totals 12.5 {not a column}");
    }

    #[test]
    fn captures_read_a_rendered_key_back() {
        let t = Template::parse("tenant:{tenant}:customer:{id}").unwrap();
        assert_eq!(
            t.captures("tenant:acme:customer:42"),
            Some(vec![("tenant", "acme"), ("id", "42")])
        );
        assert_eq!(t.captures("tenant:acme:order:42"), None);
        assert_eq!(t.captures("customer:42"), None);
        assert!(!t.has_adjacent_columns());
        assert!(Template::parse("{a}{b}").unwrap().has_adjacent_columns());
    }

    #[test]
    fn rejects_unclosed_placeholders() {
        assert!(Template::parse("order {id").is_err());
        assert!(Template::parse("order {}").is_err());
    }
}
