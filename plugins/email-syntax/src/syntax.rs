//! The email check itself, as pure functions of the text: no SDK, no allocation.

/// The longest address allowed, in bytes (RFC 5321's path limit less the angle brackets).
pub const MAX_LEN: usize = 254;
/// The longest local part allowed, in bytes (RFC 5321).
pub const MAX_LOCAL_LEN: usize = 64;

/// What is wrong with `email`, in a few words, or `None` when it is well-formed.
///
/// Checks run in this order, and the first that fails is the answer: length, the `@`,
/// whitespace and control characters, the local part, the domain. Allocates nothing.
pub fn problem(email: &str) -> Option<&'static str> {
    let bytes = email.as_bytes();
    if bytes.len() > MAX_LEN {
        return Some("longer than 254 bytes");
    }

    // One pass: where the `@` is, how many there are, and whether an ASCII space or
    // control character (or any non-ASCII byte, checked below) appears.
    let mut at = 0;
    let mut ats = 0usize;
    let mut ascii_bad = false;
    let mut non_ascii = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'@' => {
                ats += 1;
                at = i;
            }
            // Controls 0x00–0x1F (which hold every ASCII whitespace but the space), the
            // space, and DEL.
            0x00..=0x20 | 0x7F => ascii_bad = true,
            0x80.. => non_ascii = true,
            _ => {}
        }
    }
    match ats {
        0 => return Some("no @"),
        1 => {}
        _ => return Some("more than one @"),
    }
    if ascii_bad || (non_ascii && email.chars().any(char::is_whitespace)) {
        return Some("whitespace or control character");
    }

    let local = &bytes[..at];
    let domain = &bytes[at + 1..];

    if local.is_empty() {
        return Some("empty local part");
    }
    if local.len() > MAX_LOCAL_LEN {
        return Some("local part longer than 64 bytes");
    }
    if local[0] == b'.' || local[local.len() - 1] == b'.' {
        return Some("local part starts or ends with a dot");
    }
    if has_double_dot(local) {
        return Some("local part contains ..");
    }

    let (Some(&first), Some(&last)) = (domain.first(), domain.last()) else {
        return Some("empty domain");
    };
    let mut dot = false;
    let mut previous = 0u8;
    for &b in domain {
        match b {
            b'.' => {
                if previous == b'.' {
                    return Some("domain contains ..");
                }
                dot = true;
            }
            b'-' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => {}
            _ => return Some("invalid character in domain"),
        }
        previous = b;
    }
    if !dot {
        return Some("no dot in domain");
    }
    if matches!(first, b'.' | b'-') || matches!(last, b'.' | b'-') {
        return Some("domain starts or ends with . or -");
    }
    None
}

fn has_double_dot(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|w| w == b"..")
}
