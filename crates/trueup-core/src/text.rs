//! Text taken from data (column values, keys, plugin messages, database errors) made safe to
//! show to a person: no control character reaches a terminal or a Markdown file raw.
//!
//! A value is data, so it must never be able to move the cursor, clear the screen, set a
//! window title (ESC sequences), start a line of its own (CR, LF) or reorder what is shown
//! around it (Unicode bidirectional overrides). Each such character is written as a visible
//! escape instead: `\n`, `\r`, `\t`, `\e`, `\x7f`, `\u{202e}`. A backslash is left as it
//! is, so a value that holds the two characters `\n` reads the same as one that holds a
//! newline: JSON output, whose encoder escapes control characters exactly, tells them apart.
//!
//! Every renderer for people uses this module and nothing else for data: [`Escaped`] around
//! a value in a `write!` (terminal output), [`markdown_code`] and [`markdown_cell_code`]
//! for a value in Markdown, which always sits in an inline code span.

use std::borrow::Cow;
use std::fmt::{self, Write};

/// Whether `c` must not reach a terminal or a Markdown file as it is.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}')
        // Bidirectional embeddings, overrides and isolates (CVE-2021-42574).
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// `text` with every control character (and bidi control) written as a visible escape.
/// Borrows when there is nothing to escape, which is the common case.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    // Writing to a String cannot fail.
    let _ = write_escaped(&mut out, text);
    Cow::Owned(out)
}

/// [`escape`] for text whose line breaks are its own, such as a query a rule file writes
/// over several lines: newlines and tabs are kept (a carriage return only right before a
/// newline), every other control character is escaped.
pub fn escape_keeping_lines(text: &str) -> Cow<'_, str> {
    let kept = |c: char| matches!(c, '\n' | '\t');
    let crlf_free = text.replace("\r\n", "\n");
    if !crlf_free.chars().any(|c| is_unsafe(c) && !kept(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for piece in text.split_inclusive('\n') {
        let (line, end) = match piece.strip_suffix("\r\n") {
            Some(line) => (line, "\r\n"),
            None => piece
                .strip_suffix('\n')
                .map_or((piece, ""), |line| (line, "\n")),
        };
        for (i, part) in line.split('\t').enumerate() {
            if i > 0 {
                out.push('\t');
            }
            let _ = write_escaped(&mut out, part);
        }
        out.push_str(end);
    }
    Cow::Owned(out)
}

/// Writes `text` to `out` the way [`escape`] returns it, without allocating.
pub fn write_escaped(out: &mut (impl Write + ?Sized), text: &str) -> fmt::Result {
    let mut rest = text;
    while let Some((at, c)) = rest.char_indices().find(|&(_, c)| is_unsafe(c)) {
        out.write_str(&rest[..at])?;
        match c {
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            '\u{1b}' => out.write_str("\\e")?,
            c if u32::from(c) < 0x80 => write!(out, "\\x{:02x}", u32::from(c))?,
            c => write!(out, "\\u{{{:x}}}", u32::from(c))?,
        }
        rest = &rest[at + c.len_utf8()..];
    }
    out.write_str(rest)
}

/// A value shown escaped: `Escaped(&err)` displays as `err` does, with every control
/// character written as [`escape`] writes it, streamed without a copy. What a renderer
/// wraps every piece of data in (keys, messages, errors, file names) and never its own
/// text and colours. Width and alignment (`{:<20}`) apply to the escaped text.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<T>(pub T);

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.width().is_some() || f.precision().is_some() {
            return f.pad(&escape(&self.0.to_string()));
        }
        write!(Escaping(f), "{}", self.0)
    }
}

/// A writer that escapes what goes through it.
struct Escaping<'a, W: ?Sized>(&'a mut W);

impl<W: Write + ?Sized> Write for Escaping<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        write_escaped(self.0, text)
    }
}

/// `text` as a Markdown inline code span that nothing in it can leave: control characters
/// escaped (so it cannot end its line, and with it the list item or table row), a fence of
/// one backtick more than the longest run of backticks inside, and a space inside each
/// fence when the text would otherwise touch it with a backtick or lose an edge space.
/// Everything else (`#`, `-`, `*`, `<`, `[`, `|`) is literal inside a code span. Not for a
/// table cell: see [`markdown_cell_code`].
pub fn markdown_code(text: &str) -> String {
    code_span(&escape(text))
}

/// [`markdown_code`] for a cell of a GitHub-flavoured Markdown table, where a `|` ends the
/// cell even inside a code span: each is written `\|`, which the table reads back as `|`.
/// A backslash right before a `|` is doubled, so that the two cannot pair up as an escaped
/// backslash that leaves the `|` bare (the cell then shows that backslash twice).
pub fn markdown_cell_code(text: &str) -> String {
    let text = escape(text);
    let mut cell = String::with_capacity(text.len() + 4);
    let mut backslashes = 0;
    for c in text.chars() {
        match c {
            '|' => {
                cell.extend(std::iter::repeat_n('\\', backslashes + 1));
                backslashes = 0;
            }
            '\\' => backslashes += 1,
            _ => backslashes = 0,
        }
        cell.push(c);
    }
    code_span(&cell)
}

fn code_span(text: &str) -> String {
    if text.is_empty() {
        return "` `".to_owned(); // a span cannot be empty: a space stands for nothing
    }
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    // CommonMark strips one space from each end of a span that begins and ends with one.
    let pad = text.starts_with('`')
        || text.ends_with('`')
        || (text.starts_with(' ') && text.ends_with(' ') && !text.trim().is_empty());
    let space = if pad { " " } else { "" };
    format!("{fence}{space}{text}{space}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(
            escape("id=42 ünïcode ✓"),
            Cow::Borrowed("id=42 ünïcode ✓")
        ));
    }

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(
            escape("a\nb\rc\td\u{1b}[2J\u{7}\u{7f}\u{85}"),
            "a\\nb\\rc\\td\\e[2J\\x07\\x7f\\u{85}"
        );
        assert_eq!(escape("x\u{202e}gnp.exe"), "x\\u{202e}gnp.exe");
        assert_eq!(escape("\u{2028}"), "\\u{2028}");
    }

    #[test]
    fn escaped_displays_stream_the_same_text_and_pad_it() {
        let error = std::io::Error::other("bad JSON path: '\u{1b}]0;title\u{7}'\n✓ ok");
        assert_eq!(
            Escaped(&error).to_string(),
            escape(&error.to_string()).as_ref()
        );
        assert_eq!(format!("[{:<8}]", Escaped("a\tb")), "[a\\tb    ]");
        assert_eq!(format!("[{:>3}]", Escaped("ab")), "[ ab]");
    }

    #[test]
    fn text_of_many_lines_keeps_its_lines_and_tabs() {
        let sql = "SELECT id\r\n\tFROM t\nWHERE a = '\u{1b}[2J\r'";
        assert_eq!(
            escape_keeping_lines(sql),
            "SELECT id\r\n\tFROM t\nWHERE a = '\\e[2J\\r'"
        );
        assert!(matches!(
            escape_keeping_lines("SELECT 1\r\n\tFROM t"),
            Cow::Borrowed(_)
        ));
        assert_eq!(escape_keeping_lines("a\r"), "a\\r");
        assert_eq!(escape_keeping_lines("a\rb\n"), "a\\rb\n");
    }

    #[test]
    fn markdown_code_spans_cannot_be_left() {
        assert_eq!(markdown_code("id=7"), "`id=7`");
        assert_eq!(markdown_code("a`b"), "``a`b``");
        assert_eq!(markdown_code("`# x`\n- item"), "`` `# x`\\n- item ``");
        assert_eq!(markdown_code("a``b`"), "``` a``b` ```");
        assert_eq!(markdown_code(" a "), "`  a  `");
        assert_eq!(markdown_code("  "), "`  `");
        assert_eq!(markdown_code(""), "` `");
        // Outside a table, a `|` needs nothing.
        assert_eq!(markdown_code("a|b"), "`a|b`");
    }

    #[test]
    fn markdown_cells_escape_their_pipes() {
        assert_eq!(markdown_cell_code("a|b"), "`a\\|b`");
        // A backslash of the value cannot take the `|`'s escape away.
        assert_eq!(markdown_cell_code("a\\|b"), "`a\\\\\\|b`");
        assert_eq!(markdown_cell_code("a\\b"), "`a\\b`");
        for text in ["|", "\\|", "\\\\|x|", "`|`"] {
            let cell = markdown_cell_code(text);
            // Every `|` is escaped: an odd number of backslashes before it.
            for (at, _) in cell.match_indices('|') {
                let before = cell[..at].chars().rev().take_while(|&c| c == '\\').count();
                assert_eq!(before % 2, 1, "{cell}");
            }
        }
    }

    #[test]
    fn no_escaped_output_holds_an_unsafe_character() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        assert!(!escape(&all).chars().any(is_unsafe));
    }
}
