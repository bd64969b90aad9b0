//! Text from data made safe for HTML and XML: control characters first written as visible
//! escapes ([`crate::text::escape`]: XML 1.0 cannot hold most of them at all, not even as
//! character references), then the five markup characters as entities. The result is
//! safe as element content and inside a double- or single-quoted attribute value.

use std::fmt::Write;

/// `text` for HTML or XML element content or an attribute value.
pub fn html_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in crate::text::escape(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Not characters XML allows (text::escape leaves them, being no controls).
            '\u{fffe}' | '\u{ffff}' => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_control_characters_are_escaped() {
        assert_eq!(
            html_text("<script>alert('x' & \"y\")</script>"),
            "&lt;script&gt;alert(&#39;x&#39; &amp; &quot;y&quot;)&lt;/script&gt;"
        );
        assert_eq!(html_text("a\u{1b}[2J\nb\u{0}"), "a\\e[2J\\nb\\x00");
        assert_eq!(html_text("x\u{fffe}\u{202e}"), "x\\u{fffe}\\u{202e}");
        assert_eq!(html_text("plain ✓"), "plain ✓");
    }
}
