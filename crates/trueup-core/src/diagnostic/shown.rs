//! How much of its file a diagnostic shows, and how: a long quoted value is cut, a long line
//! is cut around the column, secrets are written `***` and control characters as visible
//! escapes, and the underline is measured on the line as shown, so that neither a 5 MB value
//! nor the length of a hidden password comes through.

use std::borrow::Cow;
use std::ops::Range;

use crate::redact::HIDDEN;
use crate::text::escape;

/// Most characters of a quoted value (`"…"` or `` `…` ``) a message or hint keeps.
pub const MAX_QUOTED: usize = 200;
/// Most characters a message or hint keeps.
pub const MAX_MESSAGE: usize = 2_000;
/// Most characters of a file's line shown; a longer line is cut around the column.
pub const MAX_LINE: usize = 160;
/// How many characters before the column a cut line keeps.
const LINE_LEAD: usize = 40;
/// What stands for a cut part.
const CUT: char = '…';

/// `message` with each quoted value cut to [`MAX_QUOTED`] characters, and the whole to
/// [`MAX_MESSAGE`].
pub fn shorten(message: &str) -> String {
    if message.len() <= MAX_QUOTED {
        return message.to_owned();
    }
    let mut out = String::with_capacity(message.len().min(4 * MAX_MESSAGE));
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = if rest.as_bytes()[open] == b'"' {
            '"'
        } else {
            '`'
        };
        out.push_str(&rest[..=open]);
        let inner = &rest[open + 1..];
        let close = closing(inner, quote);
        push_cut(&mut out, &inner[..close], MAX_QUOTED);
        rest = &inner[close..];
        if let Some(after) = rest.strip_prefix(quote) {
            out.push(quote);
            rest = after;
        }
    }
    out.push_str(rest);
    let mut whole = String::with_capacity(out.len().min(4 * MAX_MESSAGE));
    push_cut(&mut whole, &out, MAX_MESSAGE);
    whole
}

/// Where the quoted text starting `inner` ends: at its closing `quote` (a `"` escaped with
/// `\` does not close), or at the end.
fn closing(inner: &str, quote: char) -> usize {
    let mut escaped = false;
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quote == '"' => escaped = true,
            c if c == quote => return i,
            _ => {}
        }
    }
    inner.len()
}

/// Appends at most `max` characters of `text`, and `…` when it was longer.
fn push_cut(out: &mut String, text: &str, max: usize) {
    match text.char_indices().nth(max) {
        Some((end, _)) => {
            out.push_str(&text[..end]);
            out.push(CUT);
        }
        None => out.push_str(text),
    }
}

/// A line of a file as a diagnostic shows it.
#[derive(Debug, PartialEq, Eq)]
pub struct ShownLine {
    pub text: String,
    /// Where the underline starts in `text`, in characters.
    pub caret: usize,
    /// How many characters of `text` are underlined.
    pub width: usize,
    /// Where the span starts in the line with its secrets written `***`, in characters
    /// (0-based): the column a diagnostic names.
    pub column: usize,
}

/// `line` with its `hidden` byte ranges (sorted, apart) written `***` and its control
/// characters escaped, cut to [`MAX_LINE`] characters around `span` (byte offsets in `line`).
pub fn line(line: &str, hidden: &[Range<usize>], span: Range<usize>) -> ShownLine {
    let mut text = String::with_capacity(line.len().min(4 * MAX_LINE));
    let (mut shown, mut redacted) = (0, 0);
    let (mut caret, mut column, mut end) = (None, 0, 0);
    let mut hidden = hidden.iter().peekable();
    let mut at = 0;
    while at < line.len() {
        while hidden.next_if(|range| range.end <= at).is_some() {}
        let (next, unit, line_chars): (usize, Cow<'_, str>, usize) =
            match hidden.next_if(|range| range.start <= at) {
                Some(range) => (range.end, Cow::Borrowed(HIDDEN), HIDDEN.len()),
                None => {
                    let len = line[at..].chars().next().map_or(1, char::len_utf8);
                    (at + len, escape(&line[at..at + len]), 1)
                }
            };
        let unit_chars = unit.chars().count();
        if caret.is_none() && next > span.start {
            caret = Some(shown);
            column = redacted;
        }
        if at < span.end {
            end = shown + unit_chars;
        }
        text.push_str(&unit);
        shown += unit_chars;
        redacted += line_chars;
        at = next;
    }
    let caret = caret.unwrap_or_else(|| {
        column = redacted;
        shown
    });
    let shown_line = ShownLine {
        text,
        caret,
        width: end.saturating_sub(caret),
        column,
    };
    window(shown_line, shown)
}

/// `line` (of `total` characters) cut to [`MAX_LINE`] characters around its caret.
fn window(line: ShownLine, total: usize) -> ShownLine {
    if total <= MAX_LINE {
        return line;
    }
    let from = line.caret.saturating_sub(LINE_LEAD).min(total - MAX_LINE);
    let to = from + MAX_LINE;
    let mut text = String::with_capacity(4 * MAX_LINE + 8);
    if from > 0 {
        text.push(CUT);
    }
    text.extend(line.text.chars().skip(from).take(MAX_LINE));
    if to < total {
        text.push(CUT);
    }
    ShownLine {
        text,
        caret: line.caret - from + usize::from(from > 0),
        width: line.width.min(to - line.caret),
        column: line.column,
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    #[test]
    fn hardening_7_the_underline_is_measured_on_the_redacted_line() {
        let text = r#"url = "postgres://app:hunter2@db/shop""#;
        let secret = text.find("hunter2").unwrap();
        let shown = line(text, &[secret..secret + 7], 6..text.len());
        assert_eq!(shown.text, r#"url = "postgres://app:***@db/shop""#);
        assert_eq!((shown.caret, shown.column), (6, 6));
        assert_eq!(shown.width, shown.text.chars().count() - 6);
        // After a secret on the same line, the column counts it as `***` too.
        let after = line(text, &[secret..secret + 7], secret + 8..secret + 10);
        assert_eq!((after.caret, after.column, after.width), (26, 26, 2));
        // A span inside the secret underlines `***`, whatever its length.
        let inside = line(text, &[secret..secret + 7], secret + 2..secret + 3);
        assert_eq!((inside.caret, inside.width), (22, 3));
    }

    #[test]
    fn hardening_14_control_characters_are_escaped_and_measured() {
        let shown = line("a = \"\u{1b}[2Jx\"", &[], 5..10);
        assert_eq!(shown.text, r#"a = "\e[2Jx""#);
        assert_eq!((shown.caret, shown.width, shown.column), (5, 6, 5));
    }

    #[test]
    fn hardening_14_a_long_line_is_cut_around_the_column() {
        let value = "x".repeat(5_000_000);
        let text = format!("severity = \"{value}\" # end");
        let shown = line(&text, &[], 11..text.len() - 6);
        assert_eq!(shown.text.chars().count(), MAX_LINE + 1);
        assert!(shown.text.starts_with("severity = \"xxx") && shown.text.ends_with('…'));
        assert_eq!((shown.caret, shown.width), (11, MAX_LINE - 11));

        let far = line(&text, &[], text.len() - 5..text.len());
        assert!(far.text.starts_with('…') && far.text.ends_with("\" # end"));
        assert_eq!(far.text.chars().count(), MAX_LINE + 1);
        assert_eq!(
            far.text.chars().skip(far.caret).collect::<String>(),
            "# end"
        );
        assert_eq!(far.column, text.len() - 5);
    }

    #[test]
    fn hardening_14_long_quoted_values_are_cut() {
        let value = "x".repeat(5_000_000);
        let message = format!("invalid type: string \"{value}\", expected `a` or `b`");
        let short = shorten(&message);
        assert_eq!(
            short,
            format!(
                "invalid type: string \"{}…\", expected `a` or `b`",
                "x".repeat(MAX_QUOTED)
            )
        );
        let escaped = format!("`{}\\\"", "y".repeat(300));
        assert!(shorten(&escaped).ends_with("y…"));
        assert!(shorten(&"z ".repeat(5_000)).chars().count() <= MAX_MESSAGE + 1);
        assert_eq!(shorten("unknown field `x`"), "unknown field `x`");
    }
}
