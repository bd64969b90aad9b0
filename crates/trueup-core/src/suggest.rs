//! "Did you mean …?": the likely intended word among the known ones, for hints on typos.

/// The candidate closest to `word`, when it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, c)| *distance <= (c.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// ``did you mean `close`?`` for the candidate [`closest`] to `word`, if any.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(word, candidates).map(|close| format!("did you mean `{close}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_finds_its_word_and_a_stranger_finds_none() {
        let words = ["orders", "customers", "payments"];
        assert_eq!(closest("ordres", words), Some("orders"));
        assert_eq!(
            did_you_mean("custmers", words).as_deref(),
            Some("did you mean `customers`?")
        );
        assert_eq!(closest("inventory", words), None);
    }
}
