// The check logic both guests share (included with `#[path]`).

/// The trivial check flags one row id in 1000.
pub fn flag_id(id: i64) -> bool {
    id % 1000 == 0
}

/// Email syntax: one '@', a non-empty local part, a domain with a dot (not at either end),
/// no spaces.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !s.contains(' ')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}
