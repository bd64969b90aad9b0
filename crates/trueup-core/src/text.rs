//! Text taken from data (column values, keys, plugin messages, database errors) made safe to
//! show to a person: no control character reaches a terminal or a Markdown file raw.
//!
//! A value is data, so it must never be able to move the cursor, clear the screen, set a
//! window title (ESC sequences), start a line of its own (CR, LF) or reorder what is shown
//! around it (Unicode bidirectional overrides). Each such character is written as a visible
//! escape instead: `\n`, `\r`, `\t`, `\e`, `\x7f`, `\u{202e}`. JSON output needs none of
//! this: its encoder escapes control characters exactly.

use std::borrow::Cow;
use std::fmt::Write;

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
    for c in text.chars() {
        if !is_unsafe(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{1b}' => out.push_str("\\e"),
            c if u32::from(c) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    Cow::Owned(out)
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
    fn no_escaped_output_holds_an_unsafe_character() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        assert!(!escape(&all).chars().any(is_unsafe));
    }
}
